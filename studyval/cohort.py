"""Joining a validated clinical table to the prediction table, with every rule checked.

Both tables are first validated against their own data dictionaries
(:func:`studyval.dictionary.read_table`); this module checks the rules that
span the two tables and the plan, and reports every violation at once:

* every prediction refers to a case of the clinical table, with the same
  patient and site;
* every *included* case (``exclusion_reason == "none"``, or the plan's
  ``cohort.exclusion``: :func:`studyval.study_cohort.included_rows`) has exactly one row
  for every model the plan names (a model that could not score a case says so
  with ``status = failed``; nothing is silently missing);
* the prediction table names only the plan's models, each with one weights
  version, and its ``positive_class`` is the plan's positive class;
* a score is present exactly when ``status`` is ``ok``; a failure has a reason;
* no patient is in two splits, and the external split holds exactly the
  plan's external sites;
* every evaluation set the plan analyses (its primary and secondary sets)
  holds at least one included case: a set that is empty (all cases at one
  site, a split never written) is named with the splits and sites found,
  before any analysis runs.

It also holds what the protocol modules share about the inputs: the check
that a column the plan needs but the dictionary lets be left out is present
(:func:`absent_column_violations`), the flow tables' summary of failure
reasons (:func:`failure_reason_summary`), and :func:`estimating`, which
names the model, the set and the analysis in a statistic's estimation error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pandas as pd

from studyval.errors import EstimationError, InputValidationError, Violation
from studyval.plan import AnalysisPlan
from studyval.study_cohort import included_rows

__all__ = [
    "MAX_LISTED",
    "Cohort",
    "absent_column_violations",
    "estimating",
    "evaluation_set_violations",
    "failure_reason_summary",
    "join_predictions",
    "missing_prediction_violations",
    "prediction_row_violations",
    "with_failure_reason",
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


def absent_column_violations(
    frame: pd.DataFrame, needs: Mapping[str, str], *, label: str
) -> list[Violation]:
    """Columns the plan's analyses need that the table leaves out.

    A data dictionary marks a column ``required: false`` when its *cells* may
    be empty (a missing DXA T-score, a predictor of an excluded patient);
    :func:`studyval.dictionary.read_table` then also accepts a table without
    the column. Where the plan's analyses use the column, leaving it out is an
    error, named here with what needs it.

    Parameters
    ----------
    frame : DataFrame
        The typed table (only the columns the file had).
    needs : mapping of str to str
        Column -> what needs it, in words, completing "needed by the plan's
        ..." (``"baseline table (DXA T-score by class and site)"``).
    label : str
        File name used in messages.

    Returns
    -------
    list of Violation
        One per absent column, in the order of ``needs``.

    """
    return [
        Violation(
            label,
            col,
            None,
            f"column is missing: it is needed by the plan's {why}; the dictionary lets some of "
            "its cells be empty, not the column be left out",
        )
        for col, why in needs.items()
        if col not in frame.columns
    ]


@contextmanager
def estimating(what: str) -> Iterator[None]:
    """Prefix an :class:`~studyval.errors.EstimationError` raised inside with ``what``.

    ``what`` names the model, the set and the analysis (``"model VGG-16,
    external set, calibration"``), so that the message says which estimate
    failed and why, not only why.

    Parameters
    ----------
    what : str
        The model, set and analysis, put before the error's own message.

    Raises
    ------
    EstimationError
        The one raised inside, its message prefixed with ``what``.

    """
    try:
        yield
    except EstimationError as exc:
        raise EstimationError(f"{what}: {exc}") from None


def failure_reason_summary(reasons: pd.Series) -> str:
    """Failure reasons of a flow-table row as ``"category (n); category (n)"``.

    ``failure_reason`` holds the category labels of the prediction contract's
    closed vocabulary (``image unreadable``, ``segmentation failed``, ...):
    each category is listed once with its count, the most frequent first
    (ties alphabetically). Empty cells are counted as ``not given``.

    Parameters
    ----------
    reasons : Series
        ``failure_reason`` of the failed rows of one flow-table row.

    Returns
    -------
    str
        ``"image unreadable (2); segmentation failed (1)"``; ``""`` for no rows.

    """
    if len(reasons) == 0:
        return ""
    text = reasons.astype(object).where(reasons.notna(), "not given").astype(str)
    counts = text.value_counts()
    ordered = sorted(counts.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    return "; ".join(f"{label} ({int(n)})" for label, n in ordered)


def with_failure_reason(predictions: pd.DataFrame) -> pd.DataFrame:
    """``predictions`` with an empty ``failure_reason`` column where the table had none.

    Only called after :func:`prediction_row_violations` passed, which allows
    the column to be left out only when no row has status failed (then it is
    truly unused).

    Parameters
    ----------
    predictions : DataFrame
        The typed prediction table.

    Returns
    -------
    DataFrame
        ``predictions`` itself when it has the column, else a copy with an
        empty string column ``failure_reason``.

    """
    if "failure_reason" in predictions.columns:
        return predictions
    return predictions.assign(
        failure_reason=pd.Series(pd.NA, index=predictions.index, dtype="string")
    )


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
    inc_mask = included_rows(clinical, getattr(plan, "cohort", None))
    included = clinical.index[inc_mask.to_numpy(bool)]
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
    # without a site column (a single-centre study) there is no site to hold the split to
    has_sites = "site" in predictions.columns
    is_ext_site = predictions["site"].isin(ext_sites) if has_sites else is_ext_split
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
    problems += _copied_column_violations(
        predictions,
        clinical,
        "vertebral_level",
        predictions_label=pl,
        clinical_label=clinical_label,
    )
    problems += evaluation_set_violations(predictions, clinical, plan, predictions_label=pl)
    InputValidationError.collect(problems)

    # the clinical table is the source of every clinical column (vertebral_level included: a copy
    # in the prediction table is optional and was checked against it above)
    preds = with_failure_reason(predictions)
    preds = preds.drop(
        columns=[c for c in ("vertebral_level",) if c in clinical.columns], errors="ignore"
    )
    # patient_id and site come from the prediction table (checked equal to the clinical table's
    # above); a prediction table without a site column takes the clinical table's
    keep = [
        c
        for c in clinical.columns
        if c != "patient_id" and not (c == "site" and "site" in preds.columns)
    ]
    joined = preds.merge(clinical[keep], on="case_id", how="inner", validate="many_to_one")
    joined = joined[
        joined["case_id"].isin(set(clinical.loc[inc_mask.to_numpy(bool), "case_id"]))
    ].reset_index(drop=True)
    joined["positive"] = joined[plan.outcome.variable].astype(str) == plan.outcome.positive
    return Cohort(clinical=clinical, predictions=joined)


def _copied_column_violations(
    predictions: pd.DataFrame,
    clinical: pd.DataFrame,
    column: str,
    *,
    predictions_label: str,
    clinical_label: str,
    max_listed: int = MAX_LISTED,
) -> list[Violation]:
    """Rows whose optional copy of a clinical column disagrees with the clinical table."""
    if column not in predictions.columns or column not in clinical.columns:
        return []
    truth = clinical.set_index("case_id")[column].astype(object)
    given = predictions[column].astype(object)
    expected = predictions["case_id"].map(truth)
    differs = given.notna() & expected.notna() & (given.astype(str) != expected.astype(str))
    return [
        Violation(
            predictions_label,
            column,
            _row(idx),
            f"{clinical_label} has {str(expected[idx])!r} for case {predictions.at[idx, 'case_id']}",
            str(given[idx]),
        )
        for idx in predictions.index[differs.to_numpy(bool)][:max_listed]
    ]


def evaluation_set_violations(
    predictions: pd.DataFrame,
    clinical: pd.DataFrame,
    plan: AnalysisPlan,
    *,
    predictions_label: str,
) -> list[Violation]:
    """Evaluation sets of the plan that hold no included case of the analysis unit.

    The plan analyses its primary set and its secondary sets (``sets.primary``,
    ``sets.secondary``). A set without any included case (of the primary
    unit: the index vertebra where ``sets.primary_cases`` says so) in the
    prediction table cannot be analysed; this names the set, the analyses
    that need it, and the splits and sites the table does have (all cases
    at one site is the usual cause).

    Returns
    -------
    list of Violation
        One per empty set, on column ``split`` of the prediction table.

    """
    unit, units = "case", "cases"
    eligible = included_rows(clinical, getattr(plan, "cohort", None))
    if plan.sets.primary_cases == "index_vertebra" and "index_vertebra" in clinical.columns:
        unit, units = "index vertebra", "index vertebrae"
        eligible = eligible & clinical["index_vertebra"].fillna(False).astype(bool)
    cases = set(clinical.loc[eligible.to_numpy(bool), "case_id"])
    rows = predictions[predictions["case_id"].isin(cases)]
    per_split = rows.groupby(rows["split"].astype(str))["case_id"].nunique()
    found = ", ".join(f"{k} ({int(n)} {unit if n == 1 else units})" for k, n in per_split.items())
    found = found or "none"
    sites = (
        ", ".join(sorted(predictions["site"].dropna().astype(str).unique())) or "none"
        if "site" in predictions.columns
        else "no site column"
    )
    problems = []
    for set_ in dict.fromkeys([plan.sets.primary, *plan.sets.secondary]):
        if set_ in per_split.index:
            continue
        role = "primary" if set_ == plan.sets.primary else "secondary"
        endpoints = [e.id for e in plan.endpoints if e.set in (set_, "both")]
        needs = f" (endpoints {', '.join(endpoints)})" if endpoints else ""
        where = (
            f"; the plan's external sites: {', '.join(plan.sets.external_sites)}"
            if set_ == "external"
            else f"; the plan's development sites: {', '.join(plan.sets.development_sites)}"
        )
        problems.append(
            Violation(
                predictions_label,
                "split",
                None,
                f"the prediction table has no included {unit} in the {set_} set (split = {set_}): "
                f"the plan's {role} analysis needs it{needs}; splits found: {found}; "
                f"sites found: {sites}{where}",
            )
        )
    return problems


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
    if "score" not in predictions.columns:
        problems.append(
            Violation(
                pl,
                "score",
                None,
                f"column is missing: it is needed by every analysis of the plan (the model's "
                f"score of each {unit}); add the column (its cell is empty where status is failed)",
            )
        )
    else:
        problems += _score_violations(
            predictions,
            ok,
            strict_probabilities=strict_probabilities,
            label=pl,
            unit=unit,
            max_listed=max_listed,
        )
    if "failure_reason" not in predictions.columns:
        n_failed = int((~ok).sum())
        if n_failed:
            problems.append(
                Violation(
                    pl,
                    "failure_reason",
                    None,
                    f"column is missing: it is needed by the plan's participant flow, which lists "
                    f"why each failed {unit} has no score ({n_failed} rows have status failed)",
                )
            )
    else:
        for idx in predictions.index[~ok & predictions["failure_reason"].isna()][:max_listed]:
            problems.append(
                Violation(pl, "failure_reason", _row(idx), "a failed case needs a failure_reason")
            )
    # Columns read once as Python lists (row-wise .at on arrow-backed columns is slow);
    # the values are those .at returns, and a case the lookup table does not hold as a
    # key (e.g. a duplicated clinical case_id) falls back to .at.
    link_cols = [
        c for c in ("patient_id", "site") if c in predictions.columns and c in clin.columns
    ]
    pred_vals = {c: list(predictions[c]) for c in [*link_cols, "model_name"]}
    clin_vals = (
        {c: dict(zip(clin.index, clin[c], strict=True)) for c in link_cols}
        if clin.index.is_unique
        else {c: {} for c in link_cols}
    )
    for i, (idx, case) in enumerate(predictions["case_id"].items()):
        if case not in clin.index:
            problems.append(
                Violation(
                    pl,
                    "case_id",
                    _row(idx),
                    f"{unit} is not in {clinical_label} (model {pred_vals['model_name'][i]})",
                    str(case),
                )
            )
            continue
        for col in link_cols:
            lookup = clin_vals[col]
            a = str(pred_vals[col][i])
            b = str(lookup[case]) if case in lookup else str(clin.at[case, col])
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


def _score_violations(
    predictions: pd.DataFrame,
    ok: pd.Series,
    *,
    strict_probabilities: bool,
    label: str,
    unit: str,
    max_listed: int,
) -> list[Violation]:
    """Per-row rules of ``score``: present exactly when ok, strictly inside (0, 1) when calibrated."""
    problems: list[Violation] = []
    has_score = predictions["score"].notna()
    for idx in predictions.index[ok & ~has_score][:max_listed]:
        problems.append(Violation(label, "score", _row(idx), "status is ok but the score is empty"))
    for idx in predictions.index[~ok & has_score][:max_listed]:
        problems.append(
            Violation(
                label,
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
                    label,
                    "score",
                    _row(idx),
                    f"probability of exactly 0 or 1 for {unit} {predictions.at[idx, 'case_id']} "
                    f"(model {predictions.at[idx, 'model_name']}): the plan's calibration analysis needs "
                    "probabilities strictly between 0 and 1 (their logit is infinite); export the model's "
                    "probabilities at full precision, they are never clipped",
                    str(predictions.at[idx, "score"]),
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
