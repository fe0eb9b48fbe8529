"""TRIPOD+AI 2024 checklist filled from the plan, the result tables and the protocol module.

Same design as :func:`studyval.checklists.stard_2015`: every item has a class
(see ``../shared/reference/guidelines.md``):

* ``A`` -- computed from the data or the pipeline: the protocol module passes
  the number and the report section where it is shown;
* ``S`` -- drafted from the analysis plan or the model metadata: a person
  confirms it;
* ``H`` -- only a person can write it: the report shows
  :data:`~studyval.checklists.PLACEHOLDER`, never invented text.

Mixed items keep both parts: ``A/S`` (item 11: counts from the data, method
from the plan) is drafted for confirmation; ``A/H`` (12e: measures from the
pipeline, their rationale by a person) and ``S/H`` (14: fairness approach)
show the drafted part followed by the placeholder for the human part. As in
STARD, contents are plain text that a report escapes
(:func:`studyval.reporting.md_checklist_content`).

TRIPOD+AI: Collins et al., BMJ 2024;385:e078378, doi:10.1136/bmj-2023-078378.
Item texts are short paraphrases; the published checklist is the authority.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from studyval.checklists import PLACEHOLDER
from studyval.plan import AnalysisPlan, PredictionModelPlan

__all__ = ["PLACEHOLDER", "STATUS", "TRIPOD_AI_ITEMS", "tripod_ai_2024"]

# (item, section, topic, class)
TRIPOD_AI_ITEMS: list[tuple[str, str, str, str]] = [
    (
        "1",
        "Title",
        "Identification as developing or evaluating a prediction model, target population and outcome",
        "S",
    ),
    ("2", "Abstract", "Structured summary (TRIPOD+AI for Abstracts)", "S"),
    (
        "3a",
        "Introduction: background",
        "Healthcare context, rationale for the model and existing models",
        "H",
    ),
    (
        "3b",
        "Introduction: background",
        "Target population, role of the model in the care pathway, intended users",
        "S",
    ),
    ("3c", "Introduction: background", "Known health inequalities between groups", "H"),
    ("4", "Introduction: objectives", "Study objectives: development and/or evaluation", "S"),
    (
        "5a",
        "Methods: data",
        "Sources of data for development and evaluation; representativeness",
        "S",
    ),
    ("5b", "Methods: data", "Dates: start and end of accrual, end of follow-up", "A"),
    ("6a", "Methods: participants", "Setting, number and location of centres", "A"),
    ("6b", "Methods: participants", "Eligibility criteria", "S"),
    ("6c", "Methods: participants", "Treatments received and how they were handled", "H"),
    (
        "7",
        "Methods: data preparation",
        "Data pre-processing and quality checking, including across groups",
        "S",
    ),
    (
        "8a",
        "Methods: outcome",
        "Outcome definition, time horizon, how and when assessed, consistency across groups",
        "S",
    ),
    ("8b", "Methods: outcome", "Qualifications and demographics of outcome assessors", "H"),
    ("8c", "Methods: outcome", "Blinding of outcome assessment", "S"),
    ("9a", "Methods: predictors", "Choice of initial predictors and pre-selection", "H"),
    (
        "9b",
        "Methods: predictors",
        "Definition of predictors, how and when measured (imaging protocol, scanner)",
        "S",
    ),
    ("9c", "Methods: predictors", "Qualifications and demographics of predictor assessors", "H"),
    ("10", "Methods: sample size", "Sample-size justification and calculation", "A"),
    (
        "11",
        "Methods: missing data",
        "How missing data were handled (method) and how many were missing (counts)",
        "A/S",
    ),
    (
        "12a",
        "Methods: analytical methods",
        "How data were used (development, evaluation), partitioning",
        "A",
    ),
    (
        "12b",
        "Methods: analytical methods",
        "How predictors were handled in the analyses (functional form, rescaling, transformation)",
        "S",
    ),
    (
        "12c",
        "Methods: analytical methods",
        "Model type, building steps, hyperparameter tuning and internal validation",
        "S",
    ),
    (
        "12d",
        "Methods: analytical methods",
        "How heterogeneity across clusters (centres) in model parameters and performance was handled",
        "A",
    ),
    (
        "12e",
        "Methods: analytical methods",
        "Performance measures and plots, with the rationale for their choice",
        "A/H",
    ),
    ("12f", "Methods: analytical methods", "Model updating or recalibration", "A"),
    (
        "12g",
        "Methods: analytical methods",
        "How predictions were calculated (code, object, software, version)",
        "A",
    ),
    (
        "13",
        "Methods: class imbalance",
        "Methods to handle class imbalance and their rationale",
        "S",
    ),
    ("14", "Methods: fairness", "Approaches to address model fairness and their rationale", "S/H"),
    (
        "15",
        "Methods: model output",
        "Form of the model output and derivation of any decision thresholds",
        "A",
    ),
    (
        "16",
        "Methods: training vs evaluation",
        "Differences between development and evaluation data (setting, eligibility, outcome, predictors)",
        "S",
    ),
    ("17", "Methods: ethics", "Ethics committee approval and participant consent", "H"),
    ("18a", "Open science", "Sources of funding and role of the funders", "H"),
    ("18b", "Open science", "Conflicts of interest and financial disclosures", "H"),
    ("18c", "Open science", "Where the study protocol can be accessed", "S"),
    ("18d", "Open science", "Study registration: registry and number", "S"),
    ("18e", "Open science", "Data sharing: availability of the study data", "H"),
    ("18f", "Open science", "Code sharing: availability of the analytical code", "A"),
    ("19", "Patient and public involvement", "Details of patient and public involvement", "H"),
    (
        "20a",
        "Results: participants",
        "Flow of participants, number with and without the outcome, follow-up summary",
        "A",
    ),
    (
        "20b",
        "Results: participants",
        "Characteristics overall and by data source or setting, including missing data",
        "A",
    ),
    (
        "20c",
        "Results: participants",
        "Comparison of predictor and outcome distributions between development and evaluation data",
        "A",
    ),
    (
        "21",
        "Results: model development",
        "Number of participants and outcome events in each analysis",
        "A",
    ),
    (
        "22",
        "Results: model specification",
        "Full model specification (coefficients, baseline hazard) or how to access it",
        "S",
    ),
    (
        "23a",
        "Results: model performance",
        "Performance estimates with confidence intervals, including key subgroups, with plots",
        "A",
    ),
    (
        "23b",
        "Results: model performance",
        "Heterogeneity of performance across clusters (centres)",
        "A",
    ),
    ("24", "Results: model updating", "Results of any model updating and its performance", "A"),
    (
        "25",
        "Discussion: interpretation",
        "Overall interpretation of the main results, including fairness",
        "H",
    ),
    (
        "26",
        "Discussion: limitations",
        "Limitations (non-representative sample, sample size, overfitting, missing data)",
        "H",
    ),
    (
        "27a",
        "Discussion: usability",
        "How poor-quality or unavailable input data are handled when the model is used",
        "S",
    ),
    (
        "27b",
        "Discussion: usability",
        "Whether users need to interact with the model and the expertise required",
        "H",
    ),
    ("27c", "Discussion: usability", "Directions for future research", "H"),
]

#: status shown for each class
STATUS: dict[str, str] = {
    "A": "filled",
    "S": "drafted: confirm",
    "A/S": "drafted: confirm",
    "A/H": "partly filled: complete",
    "S/H": "partly drafted: complete",
    "H": "to write",
}


def _defaults(
    plan: AnalysisPlan | PredictionModelPlan, tables: Mapping[str, pd.DataFrame]
) -> dict[str, tuple[str, str]]:
    """Drafts every plan can give; the protocol module's ``content`` overrides them."""
    reg = plan.registry
    out: dict[str, tuple[str, str]] = {
        "1": (reg.title, "Title"),
        "4": (
            "; ".join(f"{e.id.replace('_', ' ')} ({e.kind}): {e.measure}" for e in plan.endpoints),
            "Registered outcomes",
        ),
        "18c": (reg.url or f"Registry record {reg.id}", "Title"),
        "18d": (f"{reg.id}{f' ({reg.acronym})' if reg.acronym else ''}.", "Title"),
    }
    if plan.intended_use:
        out["3b"] = (plan.intended_use.strip(), "Protocol")
    if isinstance(plan, PredictionModelPlan):
        o = plan.outcome
        codes = ", ".join(f"{k} = {v}" for k, v in sorted(o.event_codes.items()))
        comp = (
            "; competing: " + ", ".join(o.event_codes[c] for c in o.competing)
            if o.competing
            else ""
        )
        out["8a"] = (
            f"{o.definition.strip() or o.event_codes[o.cause]} Event codes: {codes}; "
            f"event of interest: {o.event_codes[o.cause]}{comp}. Horizon: {o.horizon_label}.",
            "Protocol",
        )
    ss = tables.get("sample_size")
    if ss is not None and {"check", "message"} <= set(ss.columns):
        reg_rows = ss[ss["check"] == "registered"]
        if len(reg_rows):
            out["10"] = (str(reg_rows["message"].iloc[0]), "Sample size")
    return out


def tripod_ai_2024(
    plan: AnalysisPlan | PredictionModelPlan,
    tables: Mapping[str, pd.DataFrame],
    *,
    content: Mapping[str, tuple[str, str]],
) -> pd.DataFrame:
    """Fill the TRIPOD+AI 2024 checklist.

    Parameters
    ----------
    plan : PredictionModelPlan or AnalysisPlan
        The protocol's plan; items 1, 3b, 4, 8a, 18c, 18d are drafted from it
        unless ``content`` gives them.
    tables : mapping of str to DataFrame
        The run's tables; a ``sample_size`` table with ``check`` and
        ``message`` columns drafts item 10 (row ``check == "registered"``).
    content : mapping of item to (text, shown_in)
        The protocol module's text for A and S items (and the drafted part of
        the mixed items), keyed by item (``"12e"``); ``shown_in`` names the
        report section. Text given for an ``H`` item is ignored: only the
        investigators write those.

    Returns
    -------
    DataFrame
        Columns ``item, section, topic, class, status, content, shown_in``,
        one row per item and sub-item (27 items, 52 rows), in checklist order.
        ``status`` is ``filled`` (A), ``drafted: confirm`` (S, A/S),
        ``partly filled: complete`` (A/H), ``partly drafted: complete`` (S/H)
        or ``to write`` (H, and any A/S item nobody filled); the human part of
        an item is always :data:`PLACEHOLDER`.

    Raises
    ------
    KeyError
        ``content`` names an item TRIPOD+AI does not have.

    """
    known = {row[0] for row in TRIPOD_AI_ITEMS}
    unknown = sorted(set(content) - known)
    if unknown:
        raise KeyError(f"not TRIPOD+AI 2024 items: {', '.join(unknown)}")
    filled = {**_defaults(plan, tables), **dict(content)}
    rows = []
    for item, section, topic, cls in TRIPOD_AI_ITEMS:
        if cls == "H":
            text, where, status = PLACEHOLDER, "", STATUS["H"]
        elif item in filled:
            text, where = filled[item]
            status = STATUS[cls]
            if cls.endswith("/H"):
                text = f"{text} Rationale / human part: {PLACEHOLDER}"
        else:
            text, where, status = PLACEHOLDER, "", STATUS["H"]
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
