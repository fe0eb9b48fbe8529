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

__all__ = ["PLACEHOLDER", "stard_2015", "stard_2015_generic", "stard_table"]

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
    return stard_table(_stard_content(plan, tables, extra=extra))


def _stard_content(
    plan: AnalysisPlan,
    tables: Mapping[str, pd.DataFrame],
    *,
    extra: Mapping[str, str] | None = None,
) -> dict[str, tuple[str, str]]:
    """Item -> (text, where shown) of :func:`stard_2015`."""
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
            "AUC with DeLong standard errors (Sun & Xu fast algorithm)"
            + (", logit-scale CIs" if plan.auc_ci == "logit" else "")
            + "; paired DeLong tests and a joint "
            "chi-square test "
            f"between models; unpaired DeLong test internal vs external; proportions with {plan.proportion_ci.title()} "
            f"{100 * (1 - plan.alpha):.0f}% CIs; likelihood ratios with log-method CIs.",
            "Methods",
        ),
        "15": (
            f"Index test failed (no score) for {n_failed['external']} external and "
            f"{n_failed['internal']} internal index vertebrae"
            f"{f' ({fail_detail})' if fail_detail else ''}; these are reported, not imputed, and excluded from "
            "the accuracy estimates"
            + (
                " (per protocol; the intention-to-diagnose estimates count each as an error: a "
                "false negative if the reference is positive, a false positive if negative)"
                if "accuracy_itd" in tables
                else ""
            )
            + ". No indeterminate reference-standard results were recorded.",
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
    return content


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


def _words(names: list[str]) -> str:
    names = [n.replace("_", " ") for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def stard_2015_generic(
    plan: AnalysisPlan,
    tables: Mapping[str, pd.DataFrame],
    *,
    facts: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """STARD 2015 for a study of the generic diagnostic-accuracy type, worded from its plan.

    The items of :func:`stard_2015` whose text there is a registered study's
    own (eligibility, identification, blinding, methods, missing data,
    baseline variables, time interval) are written here from the plan's
    ``cohort`` section, its evaluation sets and the tables the run wrote.

    Parameters
    ----------
    plan : AnalysisPlan
        The study's plan.
    tables : mapping of str to DataFrame
        The run's tables (``flow``, ``auc``, ``accuracy``, ``sample_size``,
        ``models`` at least; comparisons, calibration, decision curves,
        subgroups where the plan named them).
    facts : mapping, optional
        Text read from the data, keyed by item (``"8"``: sites and dates,
        ``"22"``: interval between the tests).

    Returns
    -------
    DataFrame
        As :func:`stard_2015`.

    """
    facts = dict(facts or {})
    content = _stard_content(plan, tables, extra=facts)
    flow = tables["flow"]
    pos, neg = plan.outcome.positive, plan.outcome.negative
    reg = plan.registry
    sets = [s for s in ("internal", "external") if s in {plan.sets.primary, *plan.sets.secondary}]
    cohort = plan.cohort
    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_text = (
        "; exclusions recorded in the data: "
        + ", ".join(f"{r.group.replace('_', ' ')} {r.n_patients}" for r in excl.itertuples())
        if len(excl)
        else "; no exclusions recorded in the data"
    )
    rules = []
    for rule in cohort.rules if cohort is not None else []:
        if rule.interval is not None:
            a, b = (c.replace("_", " ") for c in rule.interval)
            rules.append(f"{a} to {b} at most {rule.max_days} days")
        else:
            bounds = [f"at least {rule.min:g}" if rule.min is not None else "",
                      f"at most {rule.max:g}" if rule.max is not None else ""]
            rules.append(f"{str(rule.column).replace('_', ' ')} {' and '.join(b for b in bounds if b)}")
    rule_text = f"Eligibility rules of the plan: {'; '.join(rules)}" if rules else (
        "The plan states no eligibility rule beyond the data set's own inclusion"
    )
    n_failed = {s: flow_count(flow, "index_test_failed", set=s) for s in sets}
    fail_detail = "; ".join(
        sorted({d for d in flow.loc[flow["stage"] == "index_test_failed", "detail"] if d})
    )
    methods = [
        "AUC with DeLong standard errors (Sun & Xu fast algorithm)"
        + (", logit-scale CIs" if plan.auc_ci == "logit" else ""),
        f"proportions with {plan.proportion_ci.title()} {100 * (1 - plan.alpha):.0f}% CIs, "
        "likelihood ratios with log-method CIs",
    ]
    if "compare_paired" in tables:
        methods.append("paired DeLong tests between models")
    if "compare_joint" in tables:
        methods.append("a joint DeLong chi-square test of all models")
    if "compare_unpaired" in tables:
        methods.append("an unpaired DeLong test internal vs external")
    if "calibration" in tables:
        methods.append("calibration intercept and slope by logistic recalibration, lowess curves")
    if "decision_curve" in tables:
        methods.append("net benefit (decision curves)")
    het_note = (
        " Internal vs external AUC compared." if "compare_unpaired" in tables else ""
    )
    item17 = (
        _item17(plan, tables).replace(
            " Internal vs external AUC compared (pre-specified secondary).", het_note
        )
        if plan.subgroups
        else "No subgroup analyses in the plan."
    )
    baseline = cohort.baseline if cohort is not None else None
    variables = [*baseline.continuous, *baseline.categorical] if baseline is not None else []
    by = [("class" if b == "outcome" else b) for b in baseline.by] if baseline is not None else ["class"]
    th = plan.thresholds[0]
    youden = (
        " Exploratory: Youden-optimal threshold derived on the internal set, labelled exploratory "
        "wherever shown."
        if "external" in sets and "internal" in sets
        else " No data-derived threshold is applied."
    )
    content.update(
        {
            "1": (
                f"{reg.title}. Accuracy measure: AUC of the primary model {plan.primary_model}.",
                "Title",
            ),
            "6": (f"{rule_text}{excl_text}.", "Participant flow"),
            "7": (
                f"Draft from the plan: {reg.design}. Confirm how potentially eligible cases were "
                "identified.",
                "Protocol",
            ),
            "8": (
                facts.get("8", "Sites and dates are not recorded in the data; state them."),
                "Participant flow; Baseline characteristics",
            ),
            "9": (
                f"Draft from the plan: {reg.design}. Confirm whether the series was consecutive, "
                "random or a convenience sample.",
                "Protocol",
            ),
            "12a": (
                f"Pre-specified: score >= {th.value:g} ({th.source.strip()}){youden}",
                "Accuracy at the pre-specified threshold",
            ),
            "13a": (
                f"Index test: {plan.index_test.strip() or 'see the models table'} Confirm whether "
                "clinical information or reference-standard results were available to it.",
                "Models",
            ),
            "13b": (
                "Draft: confirm whether the reference-standard assessors knew the index-test results.",
                "Protocol",
            ),
            "14": ("; ".join(methods) + ".", "Methods"),
            "15": (
                "Index test failed (no score) for "
                + ", ".join(f"{n_failed[s]} {s}" for s in sets)
                + f" primary cases{f' ({fail_detail})' if fail_detail else ''}; these are reported, "
                "not imputed, and excluded from the accuracy estimates"
                + (
                    " (per protocol; the intention-to-diagnose estimates count each as an error: a "
                    "false negative if the reference is positive, a false positive if negative)"
                    if "accuracy_itd" in tables
                    else ""
                )
                + ".",
                "Participant flow",
            ),
            "16": (
                "Missing index-test results are counted in the flow diagram (item 15), not imputed. "
                "Missing values of the baseline variables are counted in the baseline table. A "
                "case without a reference standard cannot be included (the outcome column is required).",
                "Participant flow; Baseline characteristics",
            ),
            "17": (item17, "Subgroup analyses; Model comparison"),
            "20": (
                (f"{_words(variables)}, by {_words(by)}." if variables
                 else f"Counts by {_words(by)}."),
                "Baseline characteristics",
            ),
            "21a": (
                f"The baseline variables among the {pos} cases: see the baseline table by class.",
                "Baseline characteristics",
            ),
            "21b": (
                f"Negatives are {neg} by the reference standard; alternative diagnoses are not "
                "recorded. Confirm.",
                "Baseline characteristics",
            ),
            "22": (
                facts.get(
                    "22",
                    "The interval between index test and reference standard is not recorded in "
                    "the data; state it.",
                ),
                "Baseline characteristics",
            ),
            "23": (
                f"2x2 tables for every model at the pre-specified threshold, {_words(sets)} set."
                if "confusion" in tables
                else "Numerators and denominators of sensitivity and specificity in the accuracy table.",
                "Confusion matrices" if "confusion" in tables else "Accuracy",
            ),
            "28": (f"{reg.id}" + (f" ({reg.acronym})" if reg.acronym else "") + ".", "Title"),
            "29": (
                reg.url or "The analysis plan as run is kept in the results bundle (study/plan.yml).",
                "Title",
            ),
        }
    )
    return stard_table(content)
