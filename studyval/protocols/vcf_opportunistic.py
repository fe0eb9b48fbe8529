"""vcf-opportunistic (AI Centre project AIC003): from validated inputs to the tables of the bundle.

The service evaluation: vertebral compression fractures (VCF) found
opportunistically on CTs done for other reasons. Baselines from the registry:
77% of VCF-positive scans identified by the radiology report, 43% referred.
A retrospective period (about 1,000 CTs, standard-care reports, the AI tool run
afterwards) and 2 months of prospective AI-assisted reporting. The analyses:

* detection and referral rates of each period against the baselines (exact
  binomial test, Clopper-Pearson CI) and the before/after difference (Newcombe
  hybrid score CI, Fisher's exact test);
* the AI tool against the radiology report on the same retrospective scans
  (paired sensitivity and specificity differences with Newcombe's paired CI,
  McNemar's test), and against the commercial tool when its rows are supplied;
* weekly p-charts and binomial CUSUMs of the prospective period;
* power of ~1,000 scans for the targeted improvement, and weeks needed.

Unit of the primary analyses: the first included scan of each patient in each
period (scans of one patient are correlated); every included scan, with a
patient-level cluster bootstrap, is the plan's sensitivity analysis.

:func:`analyse` is pure: it takes validated data and the plan and returns
tables; it neither reads files nor draws.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd

from studyval.analysis import binomial_tests, monitoring, paired, resampling
from studyval.analysis import sample_size_binomial as ssb
from studyval.analysis.accuracy import diagnostic_accuracy
from studyval.analysis.descriptive import baseline_table
from studyval.analysis.discrimination import auc
from studyval.checklists import stard_table
from studyval.cohort import (
    MAX_LISTED,
    Cohort,
    absent_column_violations,
    estimating,
    failure_reason_summary,
    missing_prediction_violations,
    prediction_row_violations,
    with_failure_reason,
)
from studyval.errors import EstimationError, InputValidationError, Violation
from studyval.figures.spec import FigureSpec
from studyval.plan_vcf_opportunistic import OpportunisticPlan
from studyval.protocol import ProtocolTables, StudyProtocol, flow_count

__all__ = [
    "PROTOCOL",
    "SLUG",
    "analyse",
    "check_eligibility",
    "checklist",
    "figure_specs",
    "first_scans",
    "join",
    "needed_columns",
]

SLUG = "vcf-opportunistic"
PERIODS = ("retrospective", "prospective")
MEASURES = ("detection", "referral")


def _row(index: int) -> int:
    return int(index) + 2


# ----------------------------------------------------------------------------- eligibility


def check_eligibility(
    clinical: pd.DataFrame, plan: OpportunisticPlan, *, label: str
) -> list[Violation]:
    """Protocol rules spanning rows or columns of the clinical table.

    * sex and site constant within a patient;
    * an included scan (``exclusion_reason == "none"``) is of a patient older
      than 55 and has a reference read (``genant_grade`` and ``vcf_reference``);
      ``age_55_or_under`` is used only for patients aged 55 or under;
    * ``vcf_reference`` is ``vcf`` exactly when ``genant_grade >= 1``;
    * a referral requires an identification (``referred`` implies ``report_vcf``);
    * the scan date lies in its period's window, and ``week`` is given exactly
      for prospective scans and equals the week of the scan date;
    * the columns the dictionary lets be left out but the plan uses
      (:func:`needed_columns`: ``week``, ``genant_grade``, ``vcf_reference``)
      are present; where one is absent, only that is reported (the other
      rules read it).
    """
    cols = plan.columns
    absent = absent_column_violations(clinical, needed_columns(plan), label=label)
    if absent:
        return absent
    problems: list[Violation] = []
    by_patient = clinical.groupby("patient_id", observed=True, sort=False)
    for col in ("site", "sex"):
        n_distinct = by_patient[col].nunique(dropna=False)
        for pid in n_distinct.index[n_distinct > 1]:
            idx = clinical.index[clinical["patient_id"] == pid]
            problems.append(
                Violation(
                    label,
                    col,
                    _row(idx[1]),
                    f"patient {pid} has {n_distinct[pid]} different values; it must be constant within a patient",
                )
            )
    included = clinical[cols.exclusion] == "none"
    limit = plan.eligibility.min_age_exclusive
    for idx in clinical.index[included & (clinical[cols.age] <= limit)]:
        problems.append(
            Violation(
                label,
                cols.age,
                _row(idx),
                f"included scan of a patient aged {limit} or under (the registry includes patients > {limit}); "
                f"set {cols.exclusion} to age_55_or_under",
                str(clinical.at[idx, cols.age]),
            )
        )
    wrong_age = (clinical[cols.exclusion] == "age_55_or_under") & (clinical[cols.age] > limit)
    for idx in clinical.index[wrong_age]:
        problems.append(
            Violation(
                label,
                cols.exclusion,
                _row(idx),
                f"excluded as age_55_or_under but the age is {clinical.at[idx, cols.age]}",
                "age_55_or_under",
            )
        )
    outcome = plan.outcome.variable
    for col in (cols.genant_grade, outcome):
        for idx in clinical.index[included & clinical[col].isna()][:MAX_LISTED]:
            problems.append(
                Violation(
                    label, col, _row(idx), "an included scan needs the reference read (empty cell)"
                )
            )
    both = clinical[cols.genant_grade].notna() & clinical[outcome].notna()
    expect = np.where(
        clinical[cols.genant_grade].fillna(0).astype(int) >= 1,
        plan.outcome.positive,
        plan.outcome.negative,
    )
    bad = both & (clinical[outcome].astype(str) != expect)
    for idx in clinical.index[bad][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                outcome,
                _row(idx),
                f"disagrees with {cols.genant_grade} = {clinical.at[idx, cols.genant_grade]} "
                f"({plan.reference_standard_rule})",
                str(clinical.at[idx, outcome]),
            )
        )
    ref_no_id = clinical[cols.referral].astype(bool) & ~clinical[cols.report].astype(bool)
    for idx in clinical.index[ref_no_id][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.referral,
                _row(idx),
                f"referral without an identification: {cols.report} is false; "
                "a referral follows a reported VCF",
                "true",
            )
        )
    date = clinical[cols.scan_date]
    for period in PERIODS:
        win = getattr(plan.periods, period)
        start, end = pd.Timestamp(win.start), pd.Timestamp(win.end)
        outside = (clinical[cols.period] == period) & ((date < start) | (date > end))
        for idx in clinical.index[outside][:MAX_LISTED]:
            problems.append(
                Violation(
                    label,
                    cols.scan_date,
                    _row(idx),
                    f"{period} scan dated outside the {period} window {win.start} to {win.end} (analysis plan)",
                    f"{date[idx]:%Y-%m-%d}",
                )
            )
    week = clinical[cols.week]
    pro = clinical[cols.period] == "prospective"
    for idx in clinical.index[pro & week.isna()][:MAX_LISTED]:
        problems.append(
            Violation(label, cols.week, _row(idx), "a prospective scan needs its week number")
        )
    for idx in clinical.index[~pro & week.notna()][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.week,
                _row(idx),
                "week numbers are for prospective scans only",
                str(week[idx]),
            )
        )
    n_weeks = plan.periods.prospective_weeks
    too_big = pro & week.notna() & (week > n_weeks)
    for idx in clinical.index[too_big][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.week,
                _row(idx),
                f"week out of range: the prospective period has {n_weeks} weeks",
                str(week[idx]),
            )
        )
    derived = (date - pd.Timestamp(plan.periods.prospective.start)).dt.days // 7 + 1
    mismatch = pro & week.notna() & ~too_big & (week != derived)
    for idx in clinical.index[mismatch][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.week,
                _row(idx),
                f"disagrees with scan_date {date[idx]:%Y-%m-%d}, which is in week {int(derived[idx])} "
                f"of the prospective period (from {plan.periods.prospective.start})",
                str(week[idx]),
            )
        )
    return problems


def needed_columns(plan: OpportunisticPlan) -> dict[str, str]:
    """Clinical columns the dictionary lets be left out but the plan uses: column -> use, in words.

    Parameters
    ----------
    plan : OpportunisticPlan
        The protocol's plan.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    cols = plan.columns
    return {
        cols.week: "weekly monitoring of the prospective period (p-charts and CUSUMs by week)",
        cols.genant_grade: (
            f"reference standard ({plan.reference_standard_rule}; "
            f"{plan.outcome.variable} is checked against it)"
        ),
        plan.outcome.variable: (
            "reference standard of every rate, before/after and accuracy analysis "
            f"({plan.outcome.positive} vs {plan.outcome.negative})"
        ),
    }


# ----------------------------------------------------------------------------- join


def join(
    clinical: pd.DataFrame,
    predictions: pd.DataFrame,
    plan: OpportunisticPlan,
    *,
    clinical_label: str,
    predictions_label: str,
) -> Cohort:
    """Check the cross-table rules and join the tools' flags to the scans.

    Rules: the prediction table names only plan models; a required model has
    rows, an optional one may be absent (reported, not an error); one weights
    version per model; ``positive_class`` is the plan's positive class;
    ``split`` is the plan's evaluation split; a score exactly when ``status``
    is ok; a failure has a reason; every row refers to a scan of the clinical
    table with the same patient and site, in one of the model's periods; no
    scan twice per model; every included scan of a model's periods has a row
    of every supplied model.

    Returns
    -------
    Cohort
        ``predictions``: one row per scan per supplied model, with the
        clinical columns, a boolean ``positive`` (reference standard) and
        ``flag`` (score >= the model's threshold; False where failed).

    """
    problems: list[Violation] = []
    pl = predictions_label
    names = plan.model_names
    clin = clinical.set_index("case_id", drop=False)
    problems += prediction_row_violations(
        predictions,
        clinical,
        model_names=names,
        required_models=[m.name for m in plan.models if m.required],
        positive=plan.outcome.positive,
        strict_probabilities=False,  # no calibration analysis: a flag at the threshold is used
        predictions_label=pl,
        clinical_label=clinical_label,
        unit="scan",
    )
    for idx in predictions.index[predictions["split"] != plan.evaluation_split][:MAX_LISTED]:
        problems.append(
            Violation(
                pl,
                "split",
                _row(idx),
                f"every scan is evaluation data: split must be {plan.evaluation_split!r} (analysis plan)",
                str(predictions.at[idx, "split"]),
            )
        )
    # ---- each model only on the periods the plan evaluates it on
    period_of = clin[plan.columns.period].astype(str)
    for idx, case in predictions["case_id"].items():
        model = predictions.at[idx, "model_name"]
        if (
            case in clin.index
            and model in names
            and period_of[case] not in plan.model(model).periods
        ):
            problems.append(
                Violation(
                    pl,
                    "case_id",
                    _row(idx),
                    f"scan {case} is {period_of[case]}, but the plan evaluates {model} on "
                    f"{', '.join(plan.model(model).periods)} scans only",
                    str(case),
                )
            )
    # ---- every included scan of a model's periods scored (or failed) by each supplied model
    included = clinical[clinical[plan.columns.exclusion] == "none"]
    expected = [
        (idx, case, spec.name)
        for spec in plan.models
        if (predictions["model_name"] == spec.name).any()
        for idx, case in included.loc[
            included[plan.columns.period].isin(spec.periods), "case_id"
        ].items()
    ]
    problems += missing_prediction_violations(
        expected, predictions, predictions_label=pl, clinical_label=clinical_label, unit="scan"
    )
    InputValidationError.collect(problems)

    keep = [c for c in clinical.columns if c not in ("patient_id", "site")]
    joined = with_failure_reason(predictions).merge(
        clinical[keep], on="case_id", how="inner", validate="many_to_one"
    )
    joined = joined[joined[plan.columns.exclusion] == "none"].reset_index(drop=True)
    joined["positive"] = joined[plan.outcome.variable].astype(str) == plan.outcome.positive
    thr = joined["model_name"].map({m.name: m.threshold for m in plan.models}).astype(float)
    joined["flag"] = (joined["status"] == "ok") & (joined["score"].astype(float) >= thr)
    return Cohort(clinical=clinical, predictions=joined)


# ----------------------------------------------------------------------------- helpers




def included_scans(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """Every included scan, sorted by period, patient, date and case id, with boolean outcome columns."""
    cols = plan.columns
    c = cohort.clinical
    inc = c[c[cols.exclusion] == "none"].copy()
    inc["positive"] = inc[plan.outcome.variable].astype(str) == plan.outcome.positive
    inc["identified"] = inc[cols.report].astype(bool)
    inc["referred_"] = inc[cols.referral].astype(bool)
    inc = inc.sort_values([cols.period, "patient_id", cols.scan_date, "case_id"], kind="mergesort")
    inc["first_scan"] = ~inc.duplicated([cols.period, "patient_id"])
    return inc.reset_index(drop=True)


def first_scans(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """The primary analysis unit: the first included scan of each patient within each period."""
    inc = included_scans(cohort, plan)
    return inc[inc["first_scan"]].reset_index(drop=True)


def _flags(cohort: Cohort, model: str) -> pd.DataFrame:
    p = cohort.predictions
    sub = p[p["model_name"] == model]
    return sub.set_index("case_id")[["status", "score", "flag"]]


def supplied_models(cohort: Cohort, plan: OpportunisticPlan) -> list[str]:
    """Plan models with rows in the prediction table, in plan order."""
    present = (
        set(cohort.predictions["model_name"].astype(str)) if len(cohort.predictions) else set()
    )
    return [m for m in plan.model_names if m in present]


# ----------------------------------------------------------------------------- flow


def flow_counts(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """Scan and patient counts for the STARD flow diagram, by period.

    Stages: ``screened``, ``excluded`` and ``excluded_reason``, ``included``,
    ``later_scans`` (not the patient's first in the period; analysed only in
    the all-scans analysis), ``first_scans`` by reference class, and
    ``index_test_failed`` per model (``detail``: each failure category with its
    count, ``"image unreadable (2); segmentation failed (1)"``).
    """
    cols = plan.columns
    c = cohort.clinical
    rows: list[dict[str, object]] = []

    def add(
        stage: str, frame: pd.DataFrame, period: str, group: str = "", detail: str = ""
    ) -> None:
        rows.append(
            {
                "stage": stage,
                "period": period,
                "group": group,
                "n_scans": len(frame),
                "n_patients": int(frame["patient_id"].nunique()),
                "detail": detail,
            }
        )

    inc_all = included_scans(cohort, plan)
    for period in PERIODS:
        cp = c[c[cols.period] == period]
        add("screened", cp, period)
        ex = cp[cp[cols.exclusion] != "none"]
        add("excluded", ex, period)
        for reason in c[cols.exclusion].cat.categories:
            if reason != "none":
                add("excluded_reason", ex[ex[cols.exclusion] == reason], period, str(reason))
        inc = inc_all[inc_all[cols.period] == period]
        add("included", inc, period)
        add("later_scans", inc[~inc["first_scan"]], period)
        first = inc[inc["first_scan"]]
        add("first_scans", first, period)
        for cls, mask in (
            (plan.outcome.positive, first["positive"]),
            (plan.outcome.negative, ~first["positive"]),
        ):
            add("first_scans_class", first[mask], period, cls)
        for model in supplied_models(cohort, plan):
            if period not in plan.model(model).periods:
                continue
            fl = _flags(cohort, model)
            st = fl["status"].reindex(first["case_id"])
            failed = first[st.to_numpy() == "failed"]
            p = cohort.predictions
            reasons = p[(p["model_name"] == model) & p["case_id"].isin(failed["case_id"])][
                "failure_reason"
            ]
            add("index_test_failed", failed, period, model, failure_reason_summary(reasons))
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- analyses


def analyse(
    cohort: Cohort, plan: OpportunisticPlan, *, progress: Callable[[str], None] = lambda _: None
) -> ProtocolTables:
    """Run the plan's analyses; return the tidy tables of the bundle."""
    t: dict[str, pd.DataFrame] = {}
    progress("scan flow and baseline characteristics")
    t["flow"] = flow_counts(cohort, plan)
    first = first_scans(cohort, plan)
    t["baseline"] = baseline_table(
        first,
        group=plan.columns.period,
        continuous=plan.columns.baseline_continuous,
        categorical=[*plan.columns.baseline_categorical, plan.outcome.variable],
    )
    progress("detection and referral against the baselines")
    t["rates"] = _rates(first, plan)
    t["before_after"] = _before_after(first, plan)
    progress("tools against the reference standard and the radiology report")
    t["accuracy"], t["auc"] = _accuracy(first, cohort, plan)
    t["paired"] = _paired(first, cohort, plan)
    progress("weekly monitoring of the prospective period")
    t["monitoring_pchart"], t["monitoring_cusum"], t["monitoring_summary"] = _monitoring(
        cohort, plan
    )
    progress("all scans, patient-level cluster bootstrap")
    t["rates_all_scans"] = _rates_all_scans(cohort, plan)
    progress("sample size and power")
    t["sample_size"] = _sample_size(first, plan)
    t["models"], t["model_availability"] = _models(cohort, plan)
    return ProtocolTables(tables=t)


def _successes(frame: pd.DataFrame, measure: str) -> pd.Series:
    return frame["identified"] if measure == "detection" else frame["referred_"]


def _rates(first: pd.DataFrame, plan: OpportunisticPlan) -> pd.DataFrame:
    rows = []
    for period in PERIODS:
        pos = first[(first[plan.columns.period] == period) & first["positive"]]
        for measure in MEASURES:
            b = plan.baseline(measure)
            x, n = int(_successes(pos, measure).sum()), len(pos)
            if n == 0:
                raise EstimationError(
                    f"no VCF-positive scans in the {period} period; the {measure} rate is undefined"
                )
            r = binomial_tests.binomial_test(
                x, n, p0=b.value, alternative=plan.tests.alternative, alpha=plan.alpha
            )
            rows.append(
                {
                    "period": period,
                    "pathway": "standard care" if period == "retrospective" else "AI-assisted",
                    "measure": measure,
                    "numerator": x,
                    "denominator": n,
                    "estimate": r.estimate,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "ci_level": r.ci_level,
                    "ci_method": "Clopper-Pearson",
                    "baseline": b.value,
                    "baseline_source": b.source,
                    "target": b.target,
                    "alternative": r.alternative,
                    "p_value": r.p_value,
                    "test": "exact binomial test against the baseline",
                    "unit": "first scan per patient",
                }
            )
    return pd.DataFrame(rows)


def _before_after(first: pd.DataFrame, plan: OpportunisticPlan) -> pd.DataFrame:
    rows = []
    tests = [(plan.tests.two_period_test, "primary")]
    if plan.tests.two_period_secondary_test:
        tests.append((plan.tests.two_period_secondary_test, "secondary"))
    pro = first[(first[plan.columns.period] == "prospective") & first["positive"]]
    ret = first[(first[plan.columns.period] == "retrospective") & first["positive"]]
    for measure in MEASURES:
        for test, role in tests:
            r = binomial_tests.two_proportions(
                int(_successes(pro, measure).sum()),
                len(pro),
                int(_successes(ret, measure).sum()),
                len(ret),
                test=test,
                alternative=plan.tests.alternative,
                alpha=plan.alpha,
            )
            rows.append(
                {
                    "measure": measure,
                    "comparison": "prospective - retrospective",
                    "test_role": role,
                    **r.to_dict(),
                }
            )
    return pd.DataFrame(rows)


def _accuracy(
    first: pd.DataFrame, cohort: Cohort, plan: OpportunisticPlan
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sensitivity, specificity, PPV and NPV of every reader (and the tools' AUCs), first scans.

    Every number comes from :func:`studyval.analysis.accuracy.diagnostic_accuracy`
    (and :func:`~studyval.analysis.discrimination.auc`): a tool's scores at its
    pre-specified threshold, the radiology report's call as a 0/1 score at
    threshold 1 (reported VCF = positive). The runner only selects rows and adds keys.
    """
    rows, auc_rows = [], []
    method = plan.tests.proportion_ci
    pos, neg = plan.outcome.positive, plan.outcome.negative
    readers: list[tuple[str, str, str]] = [("radiology report", "report", p) for p in PERIODS]
    for model in supplied_models(cohort, plan):
        readers += [(model, "tool", p) for p in plan.model(model).periods]
    for name, kind, period in readers:
        fp = first[first[plan.columns.period] == period]
        n_failed = 0
        truth = fp["positive"].to_numpy(bool)
        if kind == "report":
            scores = fp["identified"].to_numpy(bool).astype(float)
            threshold = 1.0
            label = (
                "radiology report (standard care)"
                if period == "retrospective"
                else "radiology report (AI-assisted)"
            )
            what = f"{label}, {period} period"
        else:
            fl = _flags(cohort, name).reindex(fp["case_id"])
            ok = (fl["status"] == "ok").to_numpy()
            n_failed = int((~ok).sum())
            truth = truth[ok]
            scores = fl["score"].to_numpy(float)[ok]
            threshold = plan.model(name).threshold
            label = name
            what = f"model {name}, {period} period"
            _check_scores(scores, name, period, plan, n_rows=len(fl))
            y = np.where(truth, pos, neg)
            with estimating(what):
                a = auc(y, scores, positive=pos, alpha=plan.alpha)
            auc_rows.append({"reader": name, "period": period, **a.to_dict()})
        with estimating(what):
            r = diagnostic_accuracy(
                np.where(truth, pos, neg),
                scores,
                positive=pos,
                negative=neg,
                threshold=threshold,
                threshold_status="pre-specified",
                alpha=plan.alpha,
                ci_method=method,
            )
        cm = r.confusion
        for m in (r.sensitivity, r.specificity, r.ppv, r.npv):
            rows.append(
                {
                    "reader": label,
                    "kind": kind,
                    "period": period,
                    "measure": m.measure,
                    "numerator": m.numerator,
                    "denominator": m.denominator,
                    "tp": cm.tp,
                    "fp": cm.fp,
                    "fn": cm.fn,
                    "tn": cm.tn,
                    "n_failed": n_failed,
                    "threshold": threshold if kind == "tool" else np.nan,
                    "estimate": m.estimate,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "ci_level": m.ci_level,
                    "ci_method": m.ci_method,
                    "note": m.note,
                }
            )
    return pd.DataFrame(rows), pd.DataFrame(auc_rows)


def _check_scores(
    scores: np.ndarray, model: str, period: str, plan: OpportunisticPlan, *, n_rows: int
) -> None:
    """Raise where ``model`` scored no first scan of ``period`` or gave every one the same score.

    Raises
    ------
    EstimationError
        Naming the model, the period and the reason (an optional model's
        rows can be left out to run without it).

    """
    hint = (
        f"; {model} is optional in the plan: leave its rows out of the prediction table to run "
        "without it"
        if not plan.model(model).required
        else ""
    )
    if scores.size == 0:
        raise EstimationError(
            f"model {model}, {period} period: none of the {n_rows} first scans has a score (every "
            f"one has status failed); its sensitivity, specificity and AUC cannot be estimated{hint}"
        )
    if scores.size > 1 and np.all(scores == scores[0]):
        raise EstimationError(
            f"model {model}, {period} period: every score is equal ({scores[0]:g}) for the "
            f"{scores.size} scored first scans: the model ranks no scan above another, so its AUC "
            "(0.5 by construction, with a DeLong interval of zero width) cannot be estimated; "
            f"check the export of the model's scores{hint}"
        )


def _paired(first: pd.DataFrame, cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """Paired comparisons on the retrospective first scans every reader scored."""
    ret = first[first[plan.columns.period] == "retrospective"]
    calls: dict[str, pd.Series] = {"radiology report": ret.set_index("case_id")["identified"]}
    models = [m for m in supplied_models(cohort, plan) if "retrospective" in plan.model(m).periods]
    for m in models:
        fl = _flags(cohort, m).reindex(ret["case_id"])
        calls[m] = fl["flag"].where(fl["status"] == "ok")
    pairs = [(m, "radiology report") for m in models]
    if len(models) > 1:
        pairs += [(models[0], m) for m in models[1:]]
    truth = ret.set_index("case_id")["positive"]
    rows = []
    for a_name, b_name in pairs:
        ca, cb = calls[a_name], calls[b_name]
        both = ca.notna() & cb.notna()
        for measure, sel, want in (("sensitivity", truth, True), ("specificity", ~truth, False)):
            keep = both & sel
            sa = ca[keep].astype(bool).to_numpy() == want
            sb = cb[keep].astype(bool).to_numpy() == want
            table = paired.paired_table(sa, sb)
            base = {
                "reader_a": a_name,
                "reader_b": b_name,
                "period": "retrospective",
                "measure": measure,
                "n_excluded_failed": int((sel & ~both).sum()),
            }
            d = paired.paired_difference(table, alpha=plan.alpha)
            row = {**base, **d.to_dict()}
            for method in paired.MCNEMAR_METHODS:
                key = "p_" + method.replace("-", "_")
                try:
                    row[key] = paired.mcnemar(table, method=method).p_value
                except EstimationError:
                    row[key] = np.nan
            row["mcnemar_method"] = plan.tests.mcnemar
            row["p_value"] = row["p_" + plan.tests.mcnemar.replace("-", "_")]
            row["note"] = "" if d.b + d.c else "no discordant pairs: McNemar's test undefined"
            rows.append(row)
    return pd.DataFrame(rows)


def _weekly(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    inc = included_scans(cohort, plan)
    pro = inc[inc[plan.columns.period] == "prospective"].copy()
    weeks = list(range(1, plan.periods.prospective_weeks + 1))
    fl = _flags(cohort, plan.primary_model).reindex(pro["case_id"])
    pro["ai_ok"] = (fl["status"] == "ok").to_numpy()
    pro["ai_flag"] = fl["flag"].fillna(False).to_numpy(bool)
    rows = []
    for w in weeks:
        wk = pro[pro[plan.columns.week] == w]
        pos = wk[wk["positive"]]
        rows.append(
            {
                "week": w,
                "scans": len(wk),
                "vcf_scans": len(pos),
                "identified": int(pos["identified"].sum()),
                "referred": int(pos["referred_"].sum()),
                "ai_scored": int(wk["ai_ok"].sum()),
                "ai_flagged": int((wk["ai_ok"] & wk["ai_flag"]).sum()),
            }
        )
    return pd.DataFrame(rows)


def _monitoring(
    cohort: Cohort, plan: OpportunisticPlan
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    mon = plan.monitoring
    wk = _weekly(cohort, plan)
    charts = [
        ("detection", "identified", "vcf_scans", "VCF-positive scans identified in the report"),
        ("referral", "referred", "vcf_scans", "VCF-positive scans referred"),
    ]
    if mon.chart_ai_flag_rate:
        charts.append(
            ("ai_flag_rate", "ai_flagged", "ai_scored", f"scans flagged by {plan.primary_model}")
        )
    pc_rows, cu_rows, summary = [], [], []
    for measure, num, den, label in charts:
        centre = None
        if mon.centre == "standard" and measure in MEASURES:
            centre = plan.baseline(measure).target
        r = monitoring.p_chart(
            wk[num],
            wk[den],
            centre=centre,
            sigma_multiplier=mon.sigma_multiplier,
            labels=wk["week"],
        )
        pts = r.points_frame().rename(columns={"period": "week"})
        pts.insert(0, "measure", measure)
        pts["label"] = label
        pts["centre_source"] = r.centre_source
        pc_rows.append(pts)
        flagged = pts.loc[pts["signal"].isin(["below", "above"]), "week"].astype(str)
        srow = {
            "measure": measure,
            "label": label,
            "chart": "p-chart",
            "centre": r.centre,
            "centre_source": r.centre_source,
            "sigma_multiplier": r.sigma_multiplier,
            "n_weeks": r.n_periods,
            "n_signals": r.n_signals,
            "flagged_weeks": ", ".join(flagged),
            "total_successes": r.total_successes,
            "total_n": r.total_n,
            "k": np.nan,
            "h": np.nan,
            "p0": np.nan,
            "p1": np.nan,
        }
        summary.append(srow)
        if measure in MEASURES:
            b = plan.baseline(measure)
            c = monitoring.binomial_cusum(
                wk[den] - wk[num],
                wk[den],
                p0=1 - b.target,
                p1=1 - b.value,
                h=mon.cusum_h,
                reset_after_signal=mon.reset_after_signal,
                labels=wk["week"],
            )
            cp = c.points_frame().rename(columns={"period": "week"})
            cp.insert(0, "measure", measure)
            cp["k"] = c.k
            cp["p0"] = c.p0
            cp["p1"] = c.p1
            cu_rows.append(cp)
            flagged_c = cp.loc[cp["signal"], "week"].astype(str)
            summary.append(
                {
                    "measure": measure,
                    "label": f"missed: {label}",
                    "chart": "CUSUM",
                    "centre": np.nan,
                    "centre_source": "",
                    "sigma_multiplier": np.nan,
                    "n_weeks": c.n_periods,
                    "n_signals": c.n_signals,
                    "flagged_weeks": ", ".join(flagged_c),
                    "total_successes": int((wk[den] - wk[num]).sum()),
                    "total_n": int(wk[den].sum()),
                    "k": c.k,
                    "h": c.h,
                    "p0": c.p0,
                    "p1": c.p1,
                }
            )
    return (
        pd.concat(pc_rows, ignore_index=True),
        pd.concat(cu_rows, ignore_index=True),
        pd.DataFrame(summary),
    )


def _rates_all_scans(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    inc = included_scans(cohort, plan)
    rows = []
    for k, period in enumerate(PERIODS):
        d = inc[inc[plan.columns.period] == period]
        is_pos = d["positive"].to_numpy(bool)
        for j, measure in enumerate(MEASURES):
            succ = _successes(d, measure).to_numpy(bool)
            b = resampling.bootstrap(
                partial(resampling.weighted_proportion, succ, is_pos),
                n_rows=len(d),
                clusters=d["patient_id"].astype(str).to_numpy(),
                n_resamples=plan.unit.n_resamples,
                seed=plan.seed + 10 * k + j,
                alpha=plan.alpha,
                method=plan.unit.bootstrap_ci,
            )
            bd = b.to_dict()
            rows.append(
                {
                    "period": period,
                    "measure": measure,
                    "numerator": int((succ & is_pos).sum()),
                    "denominator": int(is_pos.sum()),
                    "n_patients": int(d.loc[is_pos, "patient_id"].nunique()),
                    **{
                        key: bd[key]
                        for key in (
                            "estimate",
                            "ci_low",
                            "ci_high",
                            "ci_level",
                            "method",
                            "n_resamples",
                            "n_failed",
                        )
                    },
                    "unit": "every included scan; patient-level cluster bootstrap",
                }
            )
    return pd.DataFrame(rows)


def _sample_size(first: pd.DataFrame, plan: OpportunisticPlan) -> pd.DataFrame:
    ss = plan.sample_size
    alt = plan.tests.alternative
    n_retro = round(ss.planned_retrospective_scans * ss.assumed_prevalence)
    n_pro = ss.registered_prospective_weeks * ss.assumed_weekly_scans * ss.assumed_prevalence
    rows = []
    for measure in MEASURES:
        b = plan.baseline(measure)
        pw = ssb.exact_binomial_power(
            n_retro, p0=b.value, p1=b.target, alpha=plan.alpha, alternative=alt
        )
        need = ssb.exact_binomial_sample_size(
            p0=b.value,
            p1=b.target,
            power=ss.target_power,
            alpha=plan.alpha,
            alternative=alt,
            n_max=ss.n_max,
        )
        weeks = ssb.periods_needed(
            need.n_stable,
            volume_per_period=ss.assumed_weekly_scans,
            prevalence=ss.assumed_prevalence,
        )
        common = {
            "measure": measure,
            "baseline": b.value,
            "target": b.target,
            "alpha": plan.alpha,
            "alternative": alt,
            "assumed_prevalence": ss.assumed_prevalence,
            "assumed_weekly_scans": ss.assumed_weekly_scans,
            "target_power": ss.target_power,
        }
        rows.append(
            {
                **common,
                "quantity": "power of the planned retrospective scans",
                "method": "exact binomial test (binom.test), exact power",
                "scans": ss.planned_retrospective_scans,
                "vcf_scans": float(n_retro),
                "power": pw.power,
                "required_vcf_scans": np.nan,
                "weeks": np.nan,
                "message": f"{ss.planned_retrospective_scans} scans x prevalence "
                f"{ss.assumed_prevalence:g} = {n_retro} VCF-positive scans: "
                f"exact power {pw.power:.3f} to show a {measure} rate of {b.target:g} against the baseline {b.value:g} "
                f"({alt}, alpha {plan.alpha:g}).",
            }
        )
        adequate = weeks.periods <= ss.registered_prospective_weeks
        rows.append(
            {
                **common,
                "quantity": "prospective weeks for the one-sample test",
                "method": "exact binomial test; smallest n with power >= target for every larger n",
                "scans": weeks.periods * ss.assumed_weekly_scans,
                "vcf_scans": weeks.periods * weeks.events_per_period,
                "power": need.power_at_n_stable,
                "required_vcf_scans": float(need.n_stable),
                "weeks": float(weeks.periods),
                "message": f"{need.n_stable} VCF-positive scans give power >= {ss.target_power:g} "
                f"(first reached at n = {need.n_first}); "
                f"at {weeks.events_per_period:.1f} VCF-positive scans a week that is {weeks.periods} week(s), "
                + ("within" if adequate else "more than")
                + f" the registered {ss.registered_prospective_weeks}.",
            }
        )
        weeks2 = next(
            (
                w
                for w in range(1, 261)
                if ssb.two_proportion_power(
                    p1=b.target,
                    p2=b.value,
                    n1=w * ss.assumed_weekly_scans * ss.assumed_prevalence,
                    n2=n_retro,
                    alpha=plan.alpha,
                ).power
                >= ss.target_power
            ),
            None,
        )
        p_reg = ssb.two_proportion_power(
            p1=b.target, p2=b.value, n1=n_pro, n2=n_retro, alpha=plan.alpha
        )
        rows.append(
            {
                **common,
                "quantity": "prospective weeks for the before/after comparison",
                "method": p_reg.method,
                "scans": float(ss.registered_prospective_weeks * ss.assumed_weekly_scans),
                "vcf_scans": n_pro,
                "power": p_reg.power,
                "required_vcf_scans": np.nan
                if weeks2 is None
                else weeks2 * ss.assumed_weekly_scans * ss.assumed_prevalence,
                "weeks": np.nan if weeks2 is None else float(weeks2),
                "message": f"Registered {ss.registered_prospective_weeks} weeks ({n_pro:.0f} "
                f"expected VCF-positive scans) against "
                f"{n_retro} retrospective: power {p_reg.power:.3f} for {b.value:g} -> {b.target:g}; "
                + (
                    f"{weeks2} week(s) reach power {ss.target_power:g}."
                    if weeks2
                    else "power not reached within 5 years."
                ),
            }
        )
        for period in PERIODS:
            n_obs = int(((first[plan.columns.period] == period) & first["positive"]).sum())
            po = ssb.exact_binomial_power(
                max(n_obs, 1), p0=b.value, p1=b.target, alpha=plan.alpha, alternative=alt
            )
            rows.append(
                {
                    **common,
                    "quantity": f"observed VCF-positive first scans, {period}",
                    "method": "exact binomial test, exact power",
                    "scans": float(int((first[plan.columns.period] == period).sum())),
                    "vcf_scans": float(n_obs),
                    "power": po.power,
                    "required_vcf_scans": float(need.n_stable),
                    "weeks": np.nan,
                    "message": f"{n_obs} VCF-positive first scans in the {period} period: power "
                    f"{po.power:.3f} for {b.value:g} -> {b.target:g}.",
                }
            )
    return pd.DataFrame(rows)


def _models(cohort: Cohort, plan: OpportunisticPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = cohort.predictions
    rows, avail = [], []
    for spec in plan.models:
        sub = p[p["model_name"] == spec.name] if len(p) else p
        supplied = len(sub) > 0
        avail.append(
            {
                "model": spec.name,
                "role": spec.role,
                "required": spec.required,
                "supplied": supplied,
                "message": (
                    f"{spec.name}: {len(sub)} scans in the prediction table."
                    if supplied
                    else f"{spec.name} was not supplied (no rows in the prediction table); its "
                    f"comparisons are not reported. "
                    "The plan marks it optional, so this is not an error."
                ),
            }
        )
        if supplied:
            rows.append(
                {
                    "model": spec.name,
                    "role": spec.role,
                    "model_version": str(sub["model_version"].iloc[0]),
                    "threshold": spec.threshold,
                    "threshold_source": spec.threshold_source,
                    "periods": ", ".join(spec.periods),
                    "n_scored": int((sub["status"] == "ok").sum()),
                    "n_failed": int((sub["status"] == "failed").sum()),
                    "description": spec.description,
                }
            )
    cols = [
        "model",
        "role",
        "model_version",
        "threshold",
        "threshold_source",
        "periods",
        "n_scored",
        "n_failed",
        "description",
    ]
    return pd.DataFrame(rows, columns=cols), pd.DataFrame(avail)


# ----------------------------------------------------------------------------- checklist


def checklist(
    plan: OpportunisticPlan, tables: dict[str, pd.DataFrame], cohort: Cohort
) -> pd.DataFrame:
    """STARD 2015 (Bossuyt et al. 2015) filled from the plan and the tables (items of :mod:`studyval.checklists`)."""
    flow, rates, acc = tables["flow"], tables["rates"], tables["accuracy"]
    ba, pr, ss = tables["before_after"], tables["paired"], tables["sample_size"]
    msum, avail = tables["monitoring_summary"], tables["model_availability"]
    reg = plan.registry
    cols = plan.columns

    def fn(stage: str, period: str, group: str = "", what: str = "n_scans") -> int:
        return flow_count(flow, stage, column=what, period=period, group=group)

    def rate(period: str, measure: str) -> str:
        r = rates[(rates["period"] == period) & (rates["measure"] == measure)].iloc[0]
        return (
            f"{r['estimate']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f}; "
            f"{r['numerator']}/{r['denominator']}; p = {r['p_value']:.3g} vs {r['baseline']:g})"
        )

    def acc_text(reader: str, period: str) -> str:
        sub = acc[(acc["reader"] == reader) & (acc["period"] == period)].set_index("measure")
        return ", ".join(
            f"{m} {sub.at[m, 'estimate']:.3f} ({sub.at[m, 'ci_low']:.3f}-{sub.at[m, 'ci_high']:.3f})"
            for m in ("sensitivity", "specificity")
        )

    c = cohort.clinical
    dates = {p: c.loc[c[cols.period] == p, cols.scan_date] for p in PERIODS}
    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_scans"] > 0)]
    excl_text = "; ".join(
        f"{r.period} {r.group.replace('_', ' ')} {r.n_scans}" for r in excl.itertuples()
    )
    failed = flow[flow["stage"] == "index_test_failed"]
    failed_text = (
        "; ".join(
            f"{r.group}, {r.period}: {r.n_scans} ({r.detail})"
            for r in failed.itertuples()
            if r.n_scans
        )
        or "none"
    )
    missing = ", ".join(avail.loc[~avail["supplied"], "model"]) or "none"
    primary = plan.primary_model
    ba_p = ba[ba["test_role"] == "primary"].set_index("measure")
    sens_pair = pr[
        (pr["reader_a"] == primary)
        & (pr["reader_b"] == "radiology report")
        & (pr["measure"] == "sensitivity")
    ]
    pair_text = (
        f"sensitivity difference {primary} - report {sens_pair['difference'].iloc[0]:.3f} "
        f"({sens_pair['ci_low'].iloc[0]:.3f} to {sens_pair['ci_high'].iloc[0]:.3f}), McNemar p = "
        f"{sens_pair['p_value'].iloc[0]:.3g}"
        if len(sens_pair)
        else "not estimable"
    )
    power_rows = ss[ss["quantity"] == "power of the planned retrospective scans"]
    content: dict[str, tuple[str, str]] = {
        "1": (
            f"{reg.title}. Accuracy measures: detection and referral rates of VCF-positive scans; "
            f"sensitivity and specificity of the AI tool.",
            "Title",
        ),
        "2": (
            f"Draft from the plan: {reg.design.strip()}; primary outcomes "
            f"{plan.endpoints[0].measure}; {plan.endpoints[1].measure}.",
            "Summary",
        ),
        "4": (
            "; ".join(f"{e.id} ({e.kind}): {e.measure}" for e in plan.endpoints),
            "Registered outcomes",
        ),
        "5": (
            "Retrospective period (standard care, AI run afterwards) and prospective period "
            "(AI-assisted reporting in clinic).",
            "Protocol",
        ),
        "6": (
            f"CT with the spine in the field of view, patients > "
            f"{plan.eligibility.min_age_exclusive} years; exclusions applied: {excl_text or 'none'}.",
            "Scan flow",
        ),
        "7": (
            "CTs done for other indications (chest, abdomen/pelvis); retrospective cohort selected "
            "from hospital records (CogStack in the registry).",
            "Protocol",
        ),
        "8": (
            f"Single site; retrospective scans {dates['retrospective'].min():%Y-%m-%d} to "
            f"{dates['retrospective'].max():%Y-%m-%d}, "
            f"prospective {dates['prospective'].min():%Y-%m-%d} to {dates['prospective'].max():%Y-%m-%d}.",
            "Scan flow",
        ),
        "9": ("Draft: consecutive eligible CTs in each period. Confirm.", "Protocol"),
        "10a": (
            f"{plan.index_test.strip()} Radiology report: mention of a vertebral fracture. Models: "
            + "; ".join(
                f"{r.model} ({r.model_version[:19]}...)" for r in tables["models"].itertuples()
            )
            + f". Not supplied: {missing}.",
            "Models and provenance",
        ),
        "12a": (
            "; ".join(
                f"{m.name}: score >= {m.threshold:g} ({m.threshold_source.strip()})"
                for m in plan.models
            )
            + ". No data-derived thresholds.",
            "Accuracy",
        ),
        "12b": (f"{plan.outcome.reference_standard}; {plan.reference_standard_rule}.", "Protocol"),
        "13a": (
            "The AI tools read the CT only. Retrospective reports were written without the AI; "
            "prospective reports with the AI output available (the intervention). Confirm.",
            "Protocol",
        ),
        "13b": (
            "Draft: the expert reference read was blinded to the report, referral and AI output. Confirm.",
            "Protocol",
        ),
        "14": (
            f"Rates with Clopper-Pearson {100 * (1 - plan.alpha):.0f}% CIs and exact binomial tests "
            f"({plan.tests.alternative}) against the baselines; "
            f"period difference with Newcombe's hybrid score CI and {plan.tests.two_period_test} "
            f"test; paired differences with Newcombe's paired (method 10) CI "
            f"and {plan.tests.mcnemar} McNemar test; weekly p-chart ({plan.monitoring.centre} "
            f"centre, {plan.monitoring.sigma_multiplier:g}-sigma) and binomial CUSUM "
            f"(h = {plan.monitoring.cusum_h:g}).",
            "Methods",
        ),
        "15": (
            f"Failed AI runs (no score): {failed_text}; reported, not imputed, excluded from that "
            f"tool's accuracy and paired comparisons. "
            "No indeterminate reference reads by design (a missing read excludes the scan).",
            "Scan flow",
        ),
        "16": (
            f"Scans without a reference read are excluded and counted "
            f"({fn('excluded_reason', 'retrospective', 'no_reference_read')} retrospective, "
            f"{fn('excluded_reason', 'prospective', 'no_reference_read')} prospective).",
            "Scan flow",
        ),
        "17": (
            "Variability over time: weekly p-charts and CUSUMs (pre-specified). All-scans analysis "
            "with patient-clustered CIs (pre-specified sensitivity analysis). "
            "Flagged weeks: "
            + "; ".join(
                f"{r.chart} {r.measure}: {r.flagged_weeks or 'none'}" for r in msum.itertuples()
            )
            + ".",
            "Monitoring; All scans",
        ),
        "18": (" ".join(power_rows["message"]), "Sample size"),
        "19": (
            f"Retrospective: {fn('screened', 'retrospective')} scans screened, "
            f"{fn('excluded', 'retrospective')} excluded, {fn('included', 'retrospective')} included, "
            f"{fn('first_scans', 'retrospective')} first scans analysed. Prospective: "
            f"{fn('screened', 'prospective')} screened, {fn('excluded', 'prospective')} excluded, "
            f"{fn('included', 'prospective')} included, {fn('first_scans', 'prospective')} first scans.",
            "Scan flow",
        ),
        "20": (
            "Age, sex, CT region and reference class by period (first scans).",
            "Baseline characteristics",
        ),
        "21a": (
            "Genant grade of VCF-positive scans: see the bundle's baseline tables; severity by grade 1/2/3.",
            "Baseline characteristics",
        ),
        "21b": (
            "VCF-negative scans: no vertebral fracture on the expert read; other diagnoses not recorded.",
            "Baseline characteristics",
        ),
        "22": (
            "The reference read is of the same CT as the index tests (no interval, no intervention between them).",
            "Protocol",
        ),
        "23": (
            "2x2 counts (TP, FP, FN, TN) for every reader and period in the accuracy table; paired "
            "tables in the paired comparisons.",
            "Accuracy; AI tool against the report",
        ),
        "24": (
            f"Detection, prospective (AI-assisted): {rate('prospective', 'detection')}; referral: "
            f"{rate('prospective', 'referral')}. "
            f"Before/after: detection difference {ba_p.at['detection', 'difference']:.3f} "
            f"({ba_p.at['detection', 'ci_low']:.3f} to {ba_p.at['detection', 'ci_high']:.3f}). "
            f"{primary}, retrospective: {acc_text(primary, 'retrospective')}; {pair_text}.",
            "Rates; Before and after; Accuracy",
        ),
        "28": (f"{reg.id} (AI Centre project register).", "Title"),
        "29": ("AI Centre project page of AIC003 (registry text in the study file).", "Title"),
    }
    return stard_table(content)


# ----------------------------------------------------------------------------- figures


def flow_stages(flow: pd.DataFrame, plan: OpportunisticPlan) -> pd.DataFrame:
    """Boxes of the STARD flow diagram (one column per period) from the flow counts."""

    def n(stage: str, period: str, group: str = "", what: str = "n_scans") -> int:
        return flow_count(flow, stage, column=what, period=period, group=group)

    boxes = []
    for x, period in ((0.2, "retrospective"), (0.62, "prospective")):
        excl = flow[
            (flow["stage"] == "excluded_reason")
            & (flow["period"] == period)
            & (flow["n_scans"] > 0)
        ]
        lines = "\n".join(f"{r.group.replace('_', ' ')}: {r.n_scans}" for r in excl.itertuples())
        failed = flow[(flow["stage"] == "index_test_failed") & (flow["period"] == period)]
        fail_lines = "\n".join(f"{r.group}: {r.n_scans}" for r in failed.itertuples()) or "none"
        p = period.capitalize()
        boxes += [
            {
                "key": f"screened_{period}",
                "text": f"{p} CTs screened\nn = {n('screened', period)} "
                f"scans\n({n('screened', period, what='n_patients')} patients)",
                "x": x,
                "row": 0,
                "parent": None,
                "side": False,
            },
            {
                "key": f"excluded_{period}",
                "text": f"Excluded, n = {n('excluded', period)}\n{lines}",
                "x": x + 0.2,
                "row": 1,
                "parent": f"screened_{period}",
                "side": True,
            },
            {
                "key": f"included_{period}",
                "text": f"Included\n{n('included', period)} scans, {n('included', period, what='n_patients')} patients",
                "x": x,
                "row": 2,
                "parent": f"screened_{period}",
                "side": False,
            },
            {
                "key": f"later_{period}",
                "text": f"Later scans of a patient\n(all-scans analysis only)\nn = {n('later_scans', period)}",
                "x": x + 0.2,
                "row": 3,
                "parent": f"included_{period}",
                "side": True,
            },
            {
                "key": f"first_{period}",
                "text": f"First scan per patient\nn = {n('first_scans', period)}\nVCF "
                f"{n('first_scans_class', period, plan.outcome.positive)}, "
                f"no VCF {n('first_scans_class', period, plan.outcome.negative)}\nAI run failed:\n{fail_lines}",
                "x": x,
                "row": 4,
                "parent": f"included_{period}",
                "side": False,
            },
        ]
    return pd.DataFrame(boxes)


def figure_specs(tables: dict[str, pd.DataFrame], plan: OpportunisticPlan) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables only."""
    from studyval.figures.flow import flow_figure
    from studyval.figures.monitoring import cusum_figure, p_chart_figure
    from studyval.figures.rates import rates_vs_baseline_figure

    flow, rates = tables["flow"], tables["rates"]
    pc, cu = tables["monitoring_pchart"], tables["monitoring_cusum"]
    ci_pct = f"{100 * float(rates['ci_level'].iloc[0]):.0f}%"

    def counts(period: str) -> str:
        sub = rates[(rates["period"] == period) & (rates["measure"] == "detection")].iloc[0]
        return f"{period} {int(sub['denominator'])} VCF-positive first scans"

    specs = [
        FigureSpec(
            name="flow",
            caption=(
                "STARD flow diagram of CT scans by period. Counts are scans unless stated; the primary "
                "analyses use the first included scan of each patient in each period."
            ),
            draw=lambda w: flow_figure(flow_stages(flow, plan), width_mm=w),
            column="double",
        ),
        FigureSpec(
            name="rates_vs_baseline",
            caption=(
                f"Detection (report mentions the VCF) and referral rates of VCF-positive scans by period, "
                f"with Clopper-Pearson {ci_pct} CIs ({counts('retrospective')}, {counts('prospective')}; "
                f"events are the numerators shown). Dashed: registry baselines "
                f"({plan.baseline('detection').value:g}, {plan.baseline('referral').value:g}); dotted: plan targets."
            ),
            draw=lambda w: rates_vs_baseline_figure(rates, width_mm=w),
        ),
    ]
    for measure in pc["measure"].unique():
        sub = pc[pc["measure"] == measure]
        label = str(sub["label"].iloc[0])
        flagged = sub.loc[sub["signal"].isin(["below", "above"]), "week"].astype(str).tolist()
        specs.append(
            FigureSpec(
                name=f"pchart_{measure}",
                caption=(
                    f"Weekly p-chart, prospective period: {label} ({int(sub['successes'].sum())} of "
                    f"{int(sub['n'].sum())} over {len(sub)} weeks). Centre line {sub['centre'].iloc[0]:.3f} "
                    f"({sub['centre_source'].iloc[0]}); {plan.monitoring.sigma_multiplier:g}-sigma "
                    f"binomial limits for each "
                    f"week's n. Flagged weeks: {', '.join(flagged) or 'none'}."
                ),
                draw=lambda w, sub=sub: p_chart_figure(sub, width_mm=w),
            )
        )
    for measure in cu["measure"].unique():
        sub = cu[cu["measure"] == measure]
        flagged = sub.loc[sub["signal"], "week"].astype(str).tolist()
        specs.append(
            FigureSpec(
                name=f"cusum_{measure}",
                caption=(
                    f"Binomial CUSUM of missed {measure} among VCF-positive scans, prospective period "
                    f"({int(sub['events'].sum())} missed of {int(sub['n'].sum())}); in control "
                    f"{sub['p0'].iloc[0]:.2f}, out of control {sub['p1'].iloc[0]:.2f}, k = "
                    f"{sub['k'].iloc[0]:.3f} per scan, "
                    f"h = {sub['h'].iloc[0]:g}. Signals: weeks {', '.join(flagged) or 'none'}."
                ),
                draw=lambda w, sub=sub: cusum_figure(sub, width_mm=w),
            )
        )
    return specs


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=True,
    join=join,
)
