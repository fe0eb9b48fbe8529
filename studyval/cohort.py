"""Joining a validated clinical table to the prediction table, with every rule checked.

Both tables are first validated against their own data dictionaries
(:func:`studyval.dictionary.read_table`); this module checks the rules that
span the two tables and the plan, and reports every violation at once:

* every prediction refers to a case of the clinical table, with the same
  patient and site;
* every *included* case (``exclusion_reason == "none"``) has exactly one row
  for every model the plan names (a model that could not score a case says so
  with ``status = failed``; nothing is silently missing);
* the prediction table names only the plan's models, each with one weights
  version, and its ``positive_class`` is the plan's positive class;
* a score is present exactly when ``status`` is ``ok``; a failure has a reason;
* no patient is in two splits, and the external split holds exactly the
  plan's external sites.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from studyval.errors import InputValidationError, Violation
from studyval.plan import AnalysisPlan

__all__ = [
    "MAX_LISTED",
    "Cohort",
    "join_predictions",
    "missing_prediction_violations",
    "prediction_row_violations",
]

#: Violations of one kind listed at most (a count of the rest follows where it matters).
MAX_LISTED = 20


@dataclass(frozen=True)
class Cohort:
    """Validated inputs of one protocol run.

    Attributes
    ----------
    clinical : DataFrame
        The typed clinical table, every screened case (direct identifiers
        already removed).
    predictions : DataFrame
        Long table: one row per included case per model, joined with the
        clinical columns the analyses need, and a boolean ``positive`` column
        (reference standard equals the plan's positive class).

    """

    clinical: pd.DataFrame
    predictions: pd.DataFrame


def _row(index: int) -> int:
    return int(index) + 2


def join_predictions(
    clinical: pd.DataFrame,
    predictions: pd.DataFrame,
    plan: AnalysisPlan,
    *,
    clinical_label: str,
    predictions_label: str,
) -> Cohort:
    """Check the cross-table rules and return the joined cohort.

    Parameters
    ----------
    clinical, predictions : DataFrame
        Typed tables from :func:`studyval.dictionary.read_table`.
    plan : AnalysisPlan
        The protocol's plan (models, positive class, sites).
    clinical_label, predictions_label : str
        File names used in messages.

    Raises
    ------
    InputValidationError
        Listing every violated rule with file, column and row.

    """
    problems: list[Violation] = []
    pl = predictions_label
    plan_models = plan.model_names
    problems += prediction_row_violations(
        predictions,
        clinical,
        model_names=plan_models,
        required_models=plan_models,
        positive=plan.outcome.positive,
        strict_probabilities=getattr(plan, "calibration", None) is not None,
        predictions_label=pl,
        clinical_label=clinical_label,
    )
    # ---- every included case scored (or failed) by every plan model present
    included = clinical.index[clinical["exclusion_reason"] == "none"]
    present_models = [m for m in plan_models if (predictions["model_name"] == m).any()]
    problems += missing_prediction_violations(
        [(idx, clinical.at[idx, "case_id"], m) for idx in included for m in present_models],
        predictions,
        predictions_label=pl,
        clinical_label=clinical_label,
    )

    # ---- splits: one per patient, external <=> external site
    split_per_patient = predictions.groupby("patient_id", observed=True)["split"].nunique()
    for pid in split_per_patient.index[split_per_patient > 1]:
        idx = predictions.index[predictions["patient_id"] == pid][0]
        splits = sorted(
            predictions.loc[predictions["patient_id"] == pid, "split"].astype(str).unique()
        )
        problems.append(
            Violation(
                pl,
                "split",
                _row(idx),
                f"patient {pid} is in more than one split ({', '.join(splits)}): splits must be by patient",
            )
        )
    ext_sites = set(plan.sets.external_sites)
    is_ext_split = predictions["split"] == "external"
    is_ext_site = predictions["site"].isin(ext_sites)
    for idx in predictions.index[is_ext_split != is_ext_site][:20]:
        problems.append(
            Violation(
                pl,
                "split",
                _row(idx),
                f"split 'external' must be used exactly for the external sites ({', '.join(sorted(ext_sites))})",
                f"{predictions.at[idx, 'split']} at {predictions.at[idx, 'site']}",
            )
        )
    InputValidationError.collect(problems)

    keep = [c for c in clinical.columns if c not in ("patient_id", "site", "vertebral_level")]
    joined = predictions.merge(clinical[keep], on="case_id", how="inner", validate="many_to_one")
    joined = joined[joined["exclusion_reason"] == "none"].reset_index(drop=True)
    joined["positive"] = joined[plan.outcome.variable].astype(str) == plan.outcome.positive
    return Cohort(clinical=clinical, predictions=joined)


def prediction_row_violations(
    predictions: pd.DataFrame,
    clinical: pd.DataFrame,
    *,
    model_names: Sequence[str],
    required_models: Sequence[str],
    positive: str,
    strict_probabilities: bool,
    predictions_label: str,
    clinical_label: str,
    unit: str = "case",
    max_listed: int = MAX_LISTED,
) -> list[Violation]:
    """The rules every prediction table obeys against its plan and clinical table.

    Models named by the plan (an unknown one with a "did you mean"), every
    required model present, one weight version per model, the plan's positive
    class, a score exactly when ``status`` is ``ok``, probabilities strictly
    inside (0, 1) when the plan calibrates (``strict_probabilities``), a
    ``failure_reason`` for every failed row, every row's case in the clinical
    table with the same patient and site, and one row per (case, model).
    Protocol rules (splits, periods, which cases must be scored) are checked
    by the caller. ``unit`` names a row in messages ("case", "scan").
    """
    problems: list[Violation] = []
    pl = predictions_label
    clin = clinical.set_index("case_id", drop=False)
    for model in sorted(set(predictions["model_name"].dropna()) - set(model_names)):
        rows = predictions.index[predictions["model_name"] == model]
        close = difflib.get_close_matches(model, list(model_names), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        problems.append(
            Violation(
                pl,
                "model_name",
                _row(rows[0]),
                f"model is not named in the analysis plan ({', '.join(model_names)}){hint}",
                model,
            )
        )
    for model in required_models:
        if not (predictions["model_name"] == model).any():
            problems.append(
                Violation(
                    pl,
                    "model_name",
                    None,
                    f"the plan's required model {model!r} has no predictions",
                )
            )
    for model, versions in predictions.groupby("model_name", observed=True)["model_version"]:
        distinct = versions.dropna().unique()
        if len(distinct) > 1:
            first_other = versions.index[versions != distinct[0]][0]
            problems.append(
                Violation(
                    pl,
                    "model_version",
                    _row(first_other),
                    f"model {model!r} has {len(distinct)} weight versions; one run evaluates one version",
                    str(versions[first_other]),
                )
            )
    for idx in predictions.index[predictions["positive_class"] != positive][:max_listed]:
        problems.append(
            Violation(
                pl,
                "positive_class",
                _row(idx),
                f"the plan's positive class is {positive!r}; the score must refer to it",
                str(predictions.at[idx, "positive_class"]),
            )
        )
    ok = predictions["status"] == "ok"
    has_score = predictions["score"].notna()
    for idx in predictions.index[ok & ~has_score][:max_listed]:
        problems.append(Violation(pl, "score", _row(idx), "status is ok but the score is empty"))
    for idx in predictions.index[~ok & has_score][:max_listed]:
        problems.append(
            Violation(
                pl,
                "score",
                _row(idx),
                "status is failed but a score is given",
                str(predictions.at[idx, "score"]),
            )
        )
    if strict_probabilities:
        extreme = ok & has_score & predictions["score"].isin([0.0, 1.0]).fillna(False)
        for idx in predictions.index[extreme][:max_listed]:
            problems.append(
                Violation(
                    pl,
                    "score",
                    _row(idx),
                    f"probability of exactly 0 or 1 for {unit} {predictions.at[idx, 'case_id']} "
                    f"(model {predictions.at[idx, 'model_name']}): the plan's calibration analysis needs "
                    "probabilities strictly between 0 and 1 (their logit is infinite); export the model's "
                    "probabilities at full precision, they are never clipped",
                    str(predictions.at[idx, "score"]),
                )
            )
    for idx in predictions.index[~ok & predictions["failure_reason"].isna()][:max_listed]:
        problems.append(
            Violation(pl, "failure_reason", _row(idx), "a failed case needs a failure_reason")
        )
    for idx, case in predictions["case_id"].items():
        if case not in clin.index:
            problems.append(
                Violation(
                    pl,
                    "case_id",
                    _row(idx),
                    f"{unit} is not in {clinical_label} (model {predictions.at[idx, 'model_name']})",
                    str(case),
                )
            )
            continue
        for col in ("patient_id", "site"):
            a, b = str(predictions.at[idx, col]), str(clin.at[case, col])
            if a != b:
                problems.append(
                    Violation(
                        pl, col, _row(idx), f"{clinical_label} has {b!r} for {unit} {case}", a
                    )
                )
    dup = predictions.duplicated(["case_id", "model_name"], keep="first")
    for idx in predictions.index[dup][:max_listed]:
        problems.append(
            Violation(
                pl,
                "case_id",
                _row(idx),
                f"second prediction for this {unit} by model {predictions.at[idx, 'model_name']!r}",
                str(predictions.at[idx, "case_id"]),
            )
        )
    return problems


def missing_prediction_violations(
    expected: Iterable[tuple[Any, str, str]],
    predictions: pd.DataFrame,
    *,
    predictions_label: str,
    clinical_label: str,
    unit: str = "case",
    max_listed: int = MAX_LISTED,
) -> list[Violation]:
    """Expected (clinical row index, case, model) triples without a prediction row.

    A case a model could not score must still have a row (``status`` failed),
    so that it is counted in the flow diagram rather than silently missing.
    """
    have = set(zip(predictions["case_id"], predictions["model_name"], strict=True))
    problems: list[Violation] = []
    missing = 0
    for idx, case, model in expected:
        if (case, model) in have:
            continue
        missing += 1
        if missing <= max_listed:
            problems.append(
                Violation(
                    clinical_label,
                    "case_id",
                    _row(idx),
                    f"included {unit} has no row in {predictions_label} for model {model!r} "
                    f"(a {unit} a model could not score needs status 'failed')",
                    str(case),
                )
            )
    if missing > max_listed:
        problems.append(
            Violation(
                clinical_label,
                "case_id",
                None,
                f"... {missing - max_listed} more included {unit}s without predictions",
            )
        )
    return problems
