"""Reporting-guideline checklists filled from the plan and the result tables.

Each item has a class (see ``../shared/reference/guidelines.md``):

* ``A`` -- computed from the data or the pipeline: filled with the number and
  the report section where it is shown;
* ``S`` -- drafted from the analysis plan or the model metadata: a person
  confirms it;
* ``H`` -- only a person can write it: the report shows a visible placeholder,
  never invented text.

STARD 2015: Bossuyt et al., BMJ 2015;351:h5527, doi:10.1136/bmj.h5527. Item
texts are short paraphrases; the published checklist is the authority.

Contents are plain text, never Markdown or HTML: they quote the data (failure
reasons, site and model names, registry titles), so a report shows them through
:func:`studyval.reporting.md_checklist_content`, which escapes them and marks
:data:`PLACEHOLDER` in amber.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from studyval.plan import AnalysisPlan
from studyval.protocol import flow_count

__all__ = ["PLACEHOLDER", "stard_2015", "stard_table"]

PLACEHOLDER = "[TO BE WRITTEN BY THE INVESTIGATORS]"

# (item, section, topic, class)
STARD_ITEMS: list[tuple[str, str, str, str]] = [
    (
        "1",
        "Title or abstract",
        "Identification as a study of diagnostic accuracy with at least one accuracy measure",
        "S",
    ),
    ("2", "Abstract", "Structured summary of design, methods, results and conclusions", "S"),
    (
        "3",
        "Introduction",
        "Scientific and clinical background, intended use and clinical role of the index test",
        "H",
    ),
    ("4", "Introduction", "Study objectives and hypotheses", "S"),
    ("5", "Methods: study design", "Prospective or retrospective data collection", "S"),
    ("6", "Methods: participants", "Eligibility criteria", "S"),
    ("7", "Methods: participants", "Basis for identifying potentially eligible participants", "S"),
    (
        "8",
        "Methods: participants",
        "Where and when potentially eligible participants were identified",
        "A",
    ),
    ("9", "Methods: participants", "Consecutive, random or convenience series", "S"),
    ("10a", "Methods: test methods", "Index test, in sufficient detail to allow replication", "A"),
    (
        "10b",
        "Methods: test methods",
        "Reference standard, in sufficient detail to allow replication",
        "H",
    ),
    ("11", "Methods: test methods", "Rationale for choosing the reference standard", "H"),
    (
        "12a",
        "Methods: test methods",
        "Definition of and rationale for index-test positivity cut-offs, pre-specified vs exploratory",
        "A",
    ),
    (
        "12b",
        "Methods: test methods",
        "Definition of and rationale for reference-standard positivity cut-offs",
        "S",
    ),
    (
        "13a",
        "Methods: test methods",
        "Whether clinical information and reference-standard results were available to the index-test assessors",
        "S",
    ),
    (
        "13b",
        "Methods: test methods",
        "Whether clinical information and index-test results were available to the reference-standard assessors",
        "S",
    ),
    (
        "14",
        "Methods: analysis",
        "Methods for estimating or comparing measures of diagnostic accuracy",
        "A",
    ),
    (
        "15",
        "Methods: analysis",
        "How indeterminate index-test or reference-standard results were handled",
        "A",
    ),
    (
        "16",
        "Methods: analysis",
        "How missing data on the index test and reference standard were handled",
        "A",
    ),
    (
        "17",
        "Methods: analysis",
        "Analyses of variability in diagnostic accuracy, pre-specified vs exploratory",
        "A",
    ),
    ("18", "Methods: analysis", "Intended sample size and how it was determined", "A"),
    ("19", "Results: participants", "Flow of participants, using a diagram", "A"),
    ("20", "Results: participants", "Baseline demographic and clinical characteristics", "A"),
    (
        "21a",
        "Results: participants",
        "Distribution of severity of disease in those with the target condition",
        "A",
    ),
    (
        "21b",
        "Results: participants",
        "Distribution of alternative diagnoses in those without the target condition",
        "S",
    ),
    (
        "22",
        "Results: participants",
        "Time interval and clinical interventions between index test and reference standard",
        "A",
    ),
    (
        "23",
        "Results: test results",
        "Cross tabulation of the index-test results by the reference-standard results",
        "A",
    ),
    (
        "24",
        "Results: test results",
        "Estimates of diagnostic accuracy and their precision (such as 95% CIs)",
        "A",
    ),
    (
        "25",
        "Results: test results",
        "Adverse events from performing the index test or the reference standard",
        "H",
    ),
    (
        "26",
        "Discussion",
        "Study limitations, including sources of potential bias, statistical uncertainty and generalisability",
        "H",
    ),
    (
        "27",
        "Discussion",
        "Implications for practice, including the intended use and clinical role of the index test",
        "H",
    ),
    ("28", "Other information", "Registration number and name of registry", "S"),
    ("29", "Other information", "Where the full study protocol can be accessed", "S"),
    ("30", "Other information", "Sources of funding and other support; role of funders", "H"),
]


def _item17(plan: AnalysisPlan, tables: Mapping[str, pd.DataFrame]) -> str:
    het = tables.get("subgroup_heterogeneity")
    parts = []
    for sg in plan.subgroups:
        text = f"{sg.variable.replace('_', ' ')} ({sg.status}"
        if sg.unit == "vertebra":
            text += ", all vertebrae, patient-clustered"
        if het is not None:
            row = het[(het["grouping"] == sg.variable) & (het["measure"] == "auc")]
            if len(row) and bool(row["performed"].iloc[0]):
                p = float(row["p_value"].iloc[0])
                text += f"; AUC heterogeneity {'p < 0.001' if p < 0.001 else f'p = {p:.3f}'}"
            elif len(row):
                text += f"; no heterogeneity test: {row['reason'].iloc[0]}"
        parts.append(text + ")")
    return (
        "Subgroups: "
        + "; ".join(parts)
        + ". Internal vs external AUC compared (pre-specified secondary). "
        "Exploratory subgroups are labelled as such wherever shown."
    )


def stard_2015(
    plan: AnalysisPlan,
    tables: Mapping[str, pd.DataFrame],
    *,
    extra: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Fill the STARD 2015 checklist from the plan and the bundle's tables.

    Parameters
    ----------
    plan : AnalysisPlan
        The protocol's plan (S items are drafted from it).
    tables : mapping of str to DataFrame
        The run's tables: ``flow``, ``auc``, ``accuracy``, ``confusion``,
        ``sample_size``, ``models``, ``baseline`` (A items are filled from them).
    extra : mapping, optional
        Further text for items, keyed by item number (e.g. dates computed by
        the protocol module).

    Returns
    -------
    DataFrame
        Columns ``item, section, topic, class, status, content, shown_in``;
        ``status`` is ``filled`` (A), ``drafted: confirm`` (S) or ``to write``
        (H, with :data:`PLACEHOLDER` as content).

    """
    extra = dict(extra or {})
    flow = tables["flow"]
    auc = tables["auc"]
    acc = tables["accuracy"]
    ss = tables["sample_size"]
    models = tables["models"]
    pos, neg = plan.outcome.positive, plan.outcome.negative
    reg = plan.registry
    prim_set = plan.sets.primary
    prim = auc[(auc["set"] == prim_set) & (auc["model"] == plan.primary_model)].iloc[0]
    th = plan.thresholds[0]
    n_failed = {s: flow_count(flow, "index_test_failed", set=s) for s in ("internal", "external")}
    fail_detail = "; ".join(
        sorted({d for d in flow.loc[flow["stage"] == "index_test_failed", "detail"] if d})
    )
    excl = flow[flow["stage"] == "excluded_reason"]
    excl_text = ", ".join(
        f"{r.group.replace('_', ' ')} {r.n_patients}" for r in excl.itertuples() if r.n_patients
    )
    primary_model_row = models[models["model"] == plan.primary_model].iloc[0]
    acc_prim = acc[
        (acc["set"] == prim_set)
        & (acc["model"] == plan.primary_model)
        & (acc["threshold_status"] == "pre-specified")
    ]

    def measure(name: str) -> str:
        r = acc_prim[acc_prim["measure"] == name].iloc[0]
        return f"{r['estimate']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f})"

    ss_reg = ss[ss["check"] == "registered"].iloc[0]
    content: dict[str, tuple[str, str]] = {
        "1": (
            f"{reg.title}. Accuracy measure: AUC of the {plan.primary_model} classifier (primary).",
            "Title",
        ),
        "2": (
            f"Draft from the plan: {reg.design}; primary outcome {plan.endpoints[0].measure}.",
            "Summary",
        ),
        "4": (
            "; ".join(f"{e.id.replace('_', ' ')} ({e.kind}): {e.measure}" for e in plan.endpoints),
            "Registered outcomes",
        ),
        "5": (reg.design, "Protocol"),
        "6": (
            f"Registered eligibility (see protocol {reg.id}); applied as exclusion reasons in the data: {excl_text}.",
            "Participant flow",
        ),
        "7": (
            "Patients with an OVCF who had both CT and MRI at a participating centre (hospital records).",
            "Protocol",
        ),
        "8": (
            extra.get("8", "Centres and dates: see the baseline table."),
            "Participant flow; Baseline characteristics",
        ),
        "9": (
            "Registry: non-probability sample (retrospective case-control). Confirm whether consecutive.",
            "Protocol",
        ),
        "10a": (
            f"{plan.index_test.strip()} Primary model {plan.primary_model}, weights "
            f"{primary_model_row['model_version'][:19]}...; full hashes in the model table.",
            "Models",
        ),
        "12a": (
            f"Pre-specified: predicted probability >= {th.value:g} ({th.source.strip()}) Exploratory: Youden-optimal "
            "threshold derived on the internal set, labelled exploratory wherever shown.",
            "Accuracy at the pre-specified threshold",
        ),
        "12b": (
            f"Reference standard: {plan.outcome.reference_standard}; positive = {pos}.",
            "Protocol",
        ),
        "13a": (
            "The model reads CT only; no clinical information or MRI enters the index test. "
            "Confirm for any human readers.",
            "Models",
        ),
        "13b": (
            "Draft: MRI readers were blinded to the model output (retrospective; model trained after "
            "reference labelling). Confirm.",
            "Protocol",
        ),
        "14": (
            "AUC with DeLong standard errors (Sun & Xu fast algorithm); paired DeLong tests and a joint "
            "chi-square test "
            f"between models; unpaired DeLong test internal vs external; proportions with {plan.proportion_ci.title()} "
            f"{100 * (1 - plan.alpha):.0f}% CIs; likelihood ratios with log-method CIs.",
            "Methods",
        ),
        "15": (
            f"Index test failed (no score) for {n_failed['external']} external and "
            f"{n_failed['internal']} internal index vertebrae"
            f"{f' ({fail_detail})' if fail_detail else ''}; these are reported, not imputed, and excluded from "
            "the accuracy estimates. No indeterminate reference-standard results were recorded.",
            "Participant flow",
        ),
        "16": (
            "Missing index-test results: counted in the flow diagram (item 15). "
            "Missing DXA T-scores are counted in the "
            "baseline table; DXA does not enter the index test. Reference standard complete by eligibility.",
            "Participant flow; Baseline characteristics",
        ),
        "17": (_item17(plan, tables), "Subgroup analyses; Model comparison"),
        "18": (str(ss_reg["message"]), "Sample size"),
        "19": (
            f"{flow_count(flow, 'screened')} patients screened, {flow_count(flow, 'excluded')} excluded, "
            f"{flow_count(flow, 'included')} included; analysed in the {prim_set} set: "
            f"{flow_count(flow, 'analysed', set=prim_set, group=pos)} {pos} + "
            f"{flow_count(flow, 'analysed', set=prim_set, group=neg)} {neg}.",
            "Participant flow",
        ),
        "20": (
            "Age, sex, DXA T-score, number of fractured vertebrae, level of the index fracture, by class and by site.",
            "Baseline characteristics",
        ),
        "21a": (
            "Number of fractured vertebrae per patient and level of the index fracture, by class.",
            "Baseline characteristics",
        ),
        "21b": (
            "Negatives are chronic fractures by definition of the case-control design; no other diagnoses recorded.",
            "Baseline characteristics",
        ),
        "22": (
            extra.get("22", "CT-MRI interval: see the baseline table."),
            "Baseline characteristics",
        ),
        "23": (
            f"2x2 tables for every model at the pre-specified threshold, {prim_set} and internal sets.",
            "Confusion matrices",
        ),
        "24": (
            f"{plan.primary_model}, {prim_set} set: AUC {prim['estimate']:.3f} "
            f"({prim['ci_low']:.3f}-{prim['ci_high']:.3f}); "
            f"sensitivity {measure('sensitivity')}; specificity {measure('specificity')}.",
            "Primary outcome; Accuracy",
        ),
        "28": (f"{reg.id} ({reg.acronym or ''}), ClinicalTrials.gov.", "Title"),
        "29": (reg.url or f"ClinicalTrials.gov record {reg.id}", "Title"),
    }
    return stard_table(content)


def stard_table(content: Mapping[str, tuple[str, str]]) -> pd.DataFrame:
    """The 30 STARD 2015 items with the given ``item -> (text, where shown)`` filled in.

    Items of class ``H`` (for the investigators to write) get the placeholder;
    items of class ``A`` given in ``content`` are ``filled``, others
    ``drafted: confirm``; an item missing from ``content`` gets the placeholder.
    """
    rows = []
    for item, section, topic, cls in STARD_ITEMS:
        if cls == "H":
            text, where, status = PLACEHOLDER, "", "to write"
        else:
            text, where = content.get(item, (PLACEHOLDER, ""))
            status = "filled" if cls == "A" else "drafted: confirm"
        rows.append(
            {
                "item": item,
                "section": section,
                "topic": topic,
                "class": cls,
                "status": status,
                "content": text,
                "shown_in": where,
            }
        )
    return pd.DataFrame(rows)
