"""Analysis steps of the service-evaluation study type (plan schema ``OpportunisticPlan``).

A service evaluation (``registry.study_type: service_evaluation``; today the
vertebral-fracture pathway vcf-opportunistic) compares a clinical pathway with
registered baseline rates over a retrospective (standard care) and a
prospective (AI-assisted) period. Its steps, named by a plan's
``endpoints[].analyses``:

``rates``
    detection and referral rates of each period against the registry's
    historical, fixed baselines (exact binomial test, Clopper-Pearson CI);
``primary``
    the primary comparisons: the AI-assisted period against the concurrent
    standard-care period (the plan's two-period test) beside the one-sample
    test against the historical, fixed baseline, whether they agree, and the
    plan's multiplicity adjustment over the primary hypotheses;
``before_after``
    the prospective minus the retrospective rate (Newcombe hybrid score CI,
    Fisher's exact or the score test);
``accuracy``, ``paired``
    each reader (radiology report, AI tools) against the reference standard,
    and the tools against the report on the same scans (Newcombe's paired CI,
    the plan's McNemar test; the other McNemar versions as sensitivity);
``monitoring``
    weekly p-charts (centre lines declared before go-live, or trial limits)
    and binomial CUSUMs of the prospective period, with each CUSUM's simulated
    average run lengths and the charts' joint false-alarm rate;
``adjusted``
    the before/after comparison adjusted for the plan's covariates (adjusted
    odds ratio; standardised risk difference by g-computation, delta-method
    and patient-cluster bootstrap CIs);
``failed_runs``
    every analysis a failed AI run enters, under the plan's convention and the
    other one (sensitivity analysis);
``rates_all_scans``
    every included scan, with a patient-level cluster bootstrap, for the rates
    and for the differences between the periods;
``flow``, ``baseline``, ``models``, ``sample_size``
    run in every analysis (power of the tests actually run, exact by
    enumeration, and weeks needed).

Unit of the primary analyses (:func:`first_scans`): the first included scan
of each patient in each period, as the plan's ``unit.primary`` fixes. Each
step is pure and computes no statistic itself: it selects rows, calls
:mod:`studyval.analysis` and lays the results out as its declared tables.

The analysis unit is :mod:`studyval.steps.service_unit`; the ``monitoring`` and
``sample_size`` steps are in :mod:`studyval.steps.service_monitoring` and
:mod:`studyval.steps.service_sample_size`, and :data:`REGISTRY` holds them all.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import pandas as pd

from studyval.analysis import binomial_tests, multiplicity, paired, resampling
from studyval.analysis import standardised_comparison as stdc
from studyval.analysis.accuracy import diagnostic_accuracy
from studyval.analysis.descriptive import baseline_table
from studyval.analysis.discrimination import auc
from studyval.analysis.proportions import proportion_ci
from studyval.cohort import Cohort, estimating, failure_reason_summary
from studyval.errors import EstimationError
from studyval.plan_vcf_opportunistic import OpportunisticPlan
from studyval.steps import service_monitoring, service_sample_size
from studyval.steps.common import BASELINE, FLOW, MODELS
from studyval.steps.registry import StepContext, StepRegistry, TableSpec
from studyval.steps.service_monitoring import (
    CUSUM,
    MONITORING_FALSE_ALARM,
    MONITORING_SUMMARY,
    PCHART,
)
from studyval.steps.service_unit import (
    ALWAYS,
    MEASURES,
    PERIODS,
    _failed_primary_run,
    _failures_negative,
    _flags,
    _pathway,
    _successes,
    first_scans,
    included_scans,
    supplied_models,
)

__all__ = [
    "ACCURACY",
    "ADJUSTED",
    "ADJUSTED_COEFFICIENTS",
    "ALWAYS",
    "AUC",
    "BEFORE_AFTER",
    "CUSUM",
    "FAILED_RUNS",
    "MEASURES",
    "MODEL_AVAILABILITY",
    "MONITORING_FALSE_ALARM",
    "MONITORING_SUMMARY",
    "MULTIPLICITY",
    "PAIRED",
    "PAIRED_SENSITIVITY",
    "PCHART",
    "PERIODS",
    "PERIOD_DIFFERENCES_ALL_SCANS",
    "PRIMARY",
    "RATES",
    "RATES_ALL_SCANS",
    "REGISTRY",
    "first_scans",
    "flow_counts",
    "included_scans",
    "supplied_models",
]

# ----------------------------------------------------------------------------- flow


def flow_counts(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """Scan and patient counts for the STARD flow diagram, by period.

    Stages: ``screened``, ``excluded`` and ``excluded_reason``, ``included``,
    ``later_scans`` (not the primary unit; analysed only in the all-scans
    analysis), of which ``earlier_period_patient`` (scans of a patient already
    analysed in an earlier period, plan ``unit.patients_in_both_periods``),
    ``first_scans`` by reference class, and
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
        add(
            "earlier_period_patient",
            inc[inc["earlier_period"]],
            period,
            detail="patient analysed in an earlier period (plan unit.patients_in_both_periods)",
        )
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


# ----------------------------------------------------------------------------- steps

#: The analysis steps a service-evaluation plan may name in ``endpoints[].analyses``.
_STEPS = StepRegistry("service-evaluation")

RATES = TableSpec(
    "rates",
    "Detection or referral rate of the VCF-positive first scans of one period against the "
    "registry's historical, fixed baseline (exact binomial test, Clopper-Pearson CI)",
    (
        "period",
        "measure",
        "numerator",
        "denominator",
        "estimate",
        "ci_low",
        "ci_high",
        "baseline_kind",
        "p_value",
    ),
)
PRIMARY = TableSpec(
    "primary_comparison",
    "One primary measure of the AI-assisted period: against the concurrent standard-care period "
    "(two-period test, Newcombe CI) and against the historical, fixed baseline (exact binomial "
    "test), which of the two is primary, whether they agree, and the multiplicity-adjusted p",
    (
        "endpoint",
        "measure",
        "estimate",
        "control_estimate",
        "historical_value",
        "difference",
        "ci_low",
        "ci_high",
        "concurrent_p_value",
        "historical_p_value",
        "control_vs_historical_p_value",
        "primary_comparison",
        "primary_p_value",
        "p_adjusted",
        "reject_adjusted",
        "agree",
    ),
)
MULTIPLICITY = TableSpec(
    "multiplicity",
    "One primary hypothesis: its raw p-value, the plan's multiplicity adjustment and the decision",
    ("family", "hypothesis", "method", "order", "p_value", "p_adjusted", "reject", "alpha"),
)
BEFORE_AFTER = TableSpec(
    "before_after",
    "Prospective minus retrospective detection or referral rate, by test (difference, CI, p)",
    ("measure", "comparison", "test_role", "difference", "ci_low", "ci_high", "p_value"),
)
ACCURACY = TableSpec(
    "accuracy",
    "Sensitivity, specificity, PPV or NPV of one reader (report or tool) in one period, first "
    "scans, with its 2x2 table",
    (
        "reader",
        "kind",
        "period",
        "measure",
        "tp",
        "fp",
        "fn",
        "tn",
        "estimate",
        "ci_low",
        "ci_high",
    ),
)
AUC = TableSpec(
    "auc", "AUC of one tool's scores in one period, first scans (DeLong CI)", ("reader", "period")
)
PAIRED = TableSpec(
    "paired",
    "Paired sensitivity or specificity difference of two readers on the same retrospective first "
    "scans (Newcombe CI) with one McNemar p-value, the plan's method (the others: "
    "paired_mcnemar_sensitivity)",
    (
        "reader_a",
        "reader_b",
        "measure",
        "difference",
        "ci_low",
        "ci_high",
        "mcnemar_method",
        "p_value",
    ),
)
PAIRED_SENSITIVITY = TableSpec(
    "paired_mcnemar_sensitivity",
    "One paired comparison by a McNemar method other than the plan's (sensitivity analysis)",
    ("reader_a", "reader_b", "measure", "mcnemar_method", "p_value", "role"),
)
RATES_ALL_SCANS = TableSpec(
    "rates_all_scans",
    "Detection or referral rate over every included scan of one period (patient cluster bootstrap)",
    ("period", "measure", "numerator", "denominator", "estimate", "ci_low", "ci_high"),
)
ADJUSTED = TableSpec(
    "adjusted_comparison",
    "One measure (detection or referral) of the AI-assisted against the standard-care period "
    "among VCF-positive first scans, crude and adjusted for the plan's covariates: adjusted odds "
    "ratio (logistic regression, Wald CI) and standardised risk difference (g-computation; "
    "delta-method and patient-cluster bootstrap CIs)",
    (
        "measure",
        "n",
        "crude_difference",
        "odds_ratio",
        "or_ci_low",
        "or_ci_high",
        "p_value",
        "risk_index",
        "risk_control",
        "difference",
        "ci_low",
        "ci_high",
        "boot_ci_low",
        "boot_ci_high",
        "covariates",
    ),
)
ADJUSTED_COEFFICIENTS = TableSpec(
    "adjusted_coefficients",
    "One term of the logistic model of the adjusted comparison of one measure (log-odds scale)",
    ("measure", "term", "estimate", "se", "z", "p_value"),
)
FAILED_RUNS = TableSpec(
    "failed_runs_sensitivity",
    "One analysis a failed AI run enters, under one convention (the plan's or the other): "
    "estimate with its CI and the failed runs it concerns",
    (
        "analysis",
        "measure",
        "period",
        "convention",
        "role",
        "n_failed",
        "numerator",
        "denominator",
        "estimate",
        "ci_low",
        "ci_high",
    ),
)
PERIOD_DIFFERENCES_ALL_SCANS = TableSpec(
    "period_differences_all_scans",
    "Prospective minus retrospective detection or referral over every included VCF-positive "
    "scan, with a patient-cluster bootstrap CI (a patient's scans of both periods drawn together)",
    ("measure", "difference", "ci_low", "ci_high", "n_patients", "n_patients_both_periods"),
)
MODEL_AVAILABILITY = TableSpec(
    "model_availability",
    "Whether each plan model was supplied, and what its absence means",
    ("model", "required", "supplied", "message"),
)


@_STEPS.step("flow", produces=[FLOW])
def _flow_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Scans and patients at each stage of the STARD flow diagram, by period."""
    ctx.progress("scan flow and baseline characteristics")
    return {"flow": flow_counts(cohort, plan)}


@_STEPS.step("baseline", produces=[BASELINE])
def _baseline_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Baseline characteristics of the first scans, by period."""
    table = baseline_table(
        first_scans(cohort, plan),
        group=plan.columns.period,
        continuous=plan.columns.baseline_continuous,
        categorical=[*plan.columns.baseline_categorical, plan.outcome.variable],
    )
    return {"baseline": table}


@_STEPS.step("rates", produces=[RATES])
def _rates_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Detection and referral rates of each period against the registry baselines."""
    ctx.progress("detection and referral against the baselines")
    first = first_scans(cohort, plan)
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
                    "pathway": _pathway(period),
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
                    "baseline_kind": "historical, fixed (taken as known without error)",
                    "target": b.target,
                    "alternative": r.alternative,
                    "p_value": r.p_value,
                    "test": "exact binomial test against the historical, fixed baseline",
                    "unit": "first scan per patient",
                }
            )
    return {"rates": pd.DataFrame(rows)}


def _period_counts(first: pd.DataFrame, plan: OpportunisticPlan, measure: str) -> dict[str, int]:
    """Successes and VCF-positive first scans of each period for ``measure``."""
    pos = first[first["positive"]]
    out: dict[str, int] = {}
    for period in PERIODS:
        sub = pos[pos[plan.columns.period] == period]
        if len(sub) == 0:
            raise EstimationError(
                f"no VCF-positive scans in the {period} period; the {measure} rate is undefined"
            )
        out[f"x_{period}"] = int(_successes(sub, measure).sum())
        out[f"n_{period}"] = len(sub)
    return out


_FAMILY = "primary endpoints (P1 detection, P2 referral)"


@_STEPS.step("primary", produces=[PRIMARY, MULTIPLICITY])
def _primary_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """The primary comparisons: concurrent standard-care period and historical baseline, side by side.

    Every number comes from
    :func:`studyval.analysis.binomial_tests.historical_and_concurrent` (both
    tests, their agreement) and
    :func:`studyval.analysis.multiplicity.adjust_p_values` (the plan's
    declared strategy over the primary hypotheses, on the p-values of the
    plan's primary comparison).
    """
    ctx.progress("primary comparisons: concurrent period and historical baseline")
    first = first_scans(cohort, plan)
    primary_of = {
        m: next(
            (e.id for e in plan.endpoints if e.kind == "primary" and m in e.measure.lower()), ""
        )
        for m in MEASURES
    }
    results = {}
    for measure in MEASURES:
        c = _period_counts(first, plan, measure)
        results[measure] = binomial_tests.historical_and_concurrent(
            c["x_prospective"],
            c["n_prospective"],
            p0=plan.baseline(measure).value,
            x_control=c["x_retrospective"],
            n_control=c["n_retrospective"],
            test=plan.tests.two_period_test,
            alternative=plan.tests.alternative,
            alpha=plan.alpha,
        )
    mult = plan.multiplicity
    key = (
        "concurrent_p_value"
        if plan.tests.primary_comparison == "concurrent"
        else "historical_p_value"
    )
    adj = multiplicity.adjust_p_values(
        [getattr(results[m], key) for m in mult.hypotheses],
        method=mult.method,
        hypotheses=list(mult.hypotheses),
        alpha=plan.alpha,
    )
    hyp = adj.hypotheses_frame().set_index("hypothesis")
    rows = []
    for measure in MEASURES:
        r = results[measure].to_dict()
        rows.append(
            {
                "endpoint": primary_of[measure],
                "measure": measure,
                **r,
                "comparison": "AI-assisted (prospective) vs standard care (retrospective)",
                "historical_kind": "historical, fixed baseline (taken as known without error)",
                "primary_comparison": plan.tests.primary_comparison,
                "primary_p_value": r[key],
                "multiplicity_method": adj.method,
                "p_adjusted": float(hyp.at[measure, "p_adjusted"]),
                "reject_adjusted": bool(hyp.at[measure, "reject"]),
            }
        )
    frame = adj.hypotheses_frame()
    frame.insert(0, "family", _FAMILY)
    frame.insert(2, "method", adj.method)
    frame["alpha"] = adj.alpha
    frame["comparison"] = plan.tests.primary_comparison
    frame["n_rejected"] = adj.n_rejected
    return {"primary_comparison": pd.DataFrame(rows), "multiplicity": frame}


@_STEPS.step("before_after", produces=[BEFORE_AFTER])
def _before_after_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Prospective against retrospective rates: difference with its CI, by the plan's tests."""
    first = first_scans(cohort, plan)
    tests = [(plan.tests.two_period_test, "primary")]
    if plan.tests.two_period_secondary_test:
        tests.append((plan.tests.two_period_secondary_test, "secondary"))
    pos = first[first["positive"]]
    pro = pos[pos[plan.columns.period] == "prospective"]
    ret = pos[pos[plan.columns.period] == "retrospective"]
    rows = []
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
    return {"before_after": pd.DataFrame(rows)}


@_STEPS.step("adjusted", produces=[ADJUSTED, ADJUSTED_COEFFICIENTS])
def _adjusted_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Before/after comparison adjusted for the plan's covariates (VCF-positive first scans).

    Every number comes from
    :func:`studyval.analysis.standardised_comparison.standardised_comparison`
    (adjusted odds ratio, standardised risk difference, delta-method CI) and
    :func:`~studyval.analysis.standardised_comparison.standardised_comparison_bootstrap`
    (patient-cluster bootstrap CI of the standardised difference).
    """
    ctx.progress("before/after comparison adjusted for case mix")
    adj = plan.adjustment
    first = first_scans(cohort, plan)
    pos = first[first["positive"]].reset_index(drop=True)
    group = (pos[plan.columns.period] == "prospective").to_numpy(bool)
    rows, coefs = [], []
    for j, measure in enumerate(MEASURES):
        y = _successes(pos, measure).to_numpy(bool)
        with estimating(f"adjusted comparison of {measure}"):
            r = stdc.standardised_comparison(
                y,
                group,
                pos,
                categorical=adj.categorical,
                continuous=adj.continuous,
                alpha=plan.alpha,
            )
            b = stdc.standardised_comparison_bootstrap(
                y,
                group,
                pos,
                clusters=pos["patient_id"].astype(str).to_numpy(),
                categorical=adj.categorical,
                continuous=adj.continuous,
                n_resamples=adj.n_resamples,
                seed=plan.seed + 200 + j,
                alpha=plan.alpha,
                method=adj.bootstrap_ci,
            )
        rows.append(
            {
                "measure": measure,
                "comparison": "AI-assisted (prospective) vs standard care (retrospective)",
                **r.to_dict(),
                "boot_ci_low": b.ci_low,
                "boot_ci_high": b.ci_high,
                "boot_se": b.se,
                "boot_method": b.method,
                "boot_n_resamples": b.n_resamples,
                "boot_n_failed": b.n_failed,
                "boot_n_clusters": b.n_clusters,
                "unit": "VCF-positive first scans of both periods",
                "role": "secondary (supportive of the unadjusted concurrent comparison)",
            }
        )
        cf = r.coefficients_frame()
        cf["term"] = cf["term"].replace({"group": "period: prospective"})
        cf.insert(0, "measure", measure)
        coefs.append(cf)
    return {
        "adjusted_comparison": pd.DataFrame(rows),
        "adjusted_coefficients": pd.concat(coefs, ignore_index=True),
    }


@_STEPS.step("failed_runs", produces=[FAILED_RUNS])
def _failed_runs_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Every analysis a failed AI run enters, under the plan's convention and the other one.

    Standalone (the primary tool's sensitivity and specificity in each period,
    :func:`studyval.analysis.accuracy.diagnostic_accuracy`): a failed run left
    out, or counted as no flag. Pathway (the AI-assisted detection and
    referral rates, Clopper-Pearson CI from
    :func:`studyval.analysis.proportions.proportion_ci`, and their difference
    from the standard-care period,
    :func:`studyval.analysis.binomial_tests.two_proportions`): scans with a
    failed run kept (intention to treat) or left out.
    """
    ctx.progress("failed AI runs under both conventions")
    fr = plan.failed_ai_runs
    model = plan.primary_model
    inc = included_scans(cohort, plan)
    first = inc[inc["first_scan"]]
    pos_l, neg_l = plan.outcome.positive, plan.outcome.negative
    rows = []
    other = {"exclude": "as_negative", "as_negative": "exclude"}[fr.standalone]
    conventions = [(fr.standalone, "plan")]
    if fr.sensitivity_analysis:
        conventions.append((other, "sensitivity"))
    for period in plan.model(model).periods:
        fp = first[first[plan.columns.period] == period]
        fl = _flags(cohort, model).reindex(fp["case_id"])
        ok = (fl["status"] == "ok").to_numpy()
        truth = fp["positive"].to_numpy(bool)
        for convention, role in conventions:
            keep = ok if convention == "exclude" else np.ones(ok.size, dtype=bool)
            scores = np.where(ok, fl["score"].to_numpy(float), 0.0)[keep]
            with estimating(f"model {model}, {period} period, failed runs {convention}"):
                r = diagnostic_accuracy(
                    np.where(truth[keep], pos_l, neg_l),
                    scores,
                    positive=pos_l,
                    negative=neg_l,
                    threshold=plan.model(model).threshold,
                    threshold_status="pre-specified",
                    alpha=plan.alpha,
                    ci_method=plan.tests.proportion_ci,
                )
            for m, sel in ((r.sensitivity, truth), (r.specificity, ~truth)):
                rows.append(
                    {
                        "analysis": f"standalone: {model}",
                        "measure": m.measure,
                        "period": period,
                        "convention": _CONVENTION[convention],
                        "role": role,
                        "n_failed": int((~ok & sel).sum()),
                        "numerator": m.numerator,
                        "denominator": m.denominator,
                        "estimate": m.estimate,
                        "ci_low": m.ci_low,
                        "ci_high": m.ci_high,
                        "ci_method": m.ci_method,
                    }
                )
    pos = first[first["positive"]]
    failed = _failed_primary_run(pos, cohort, plan)
    other_p = {"intention_to_treat": "exclude", "exclude": "intention_to_treat"}[fr.pathway]
    conventions = [(fr.pathway, "plan")]
    if fr.sensitivity_analysis:
        conventions.append((other_p, "sensitivity"))
    ret = pos[pos[plan.columns.period] == "retrospective"]
    for convention, role in conventions:
        pro = pos[
            (pos[plan.columns.period] == "prospective") & ~(failed & (convention == "exclude"))
        ]
        for measure in MEASURES:
            x, n = int(_successes(pro, measure).sum()), len(pro)
            ci = proportion_ci(x, n, alpha=plan.alpha, method=plan.tests.proportion_ci)
            d = binomial_tests.two_proportions(
                x,
                n,
                int(_successes(ret, measure).sum()),
                len(ret),
                test=plan.tests.two_period_test,
                alternative=plan.tests.alternative,
                alpha=plan.alpha,
            )
            rows.append(
                {
                    "analysis": "pathway: AI-assisted (prospective)",
                    "measure": measure,
                    "period": "prospective",
                    "convention": _CONVENTION[convention],
                    "role": role,
                    "n_failed": int(failed.sum()),
                    "numerator": x,
                    "denominator": n,
                    "estimate": ci.estimate,
                    "ci_low": ci.ci_low,
                    "ci_high": ci.ci_high,
                    "ci_method": ci.method,
                    "difference": d.difference,
                    "difference_ci_low": d.ci_low,
                    "difference_ci_high": d.ci_high,
                    "difference_p_value": d.p_value,
                    "difference_test": d.test,
                }
            )
    return {"failed_runs_sensitivity": pd.DataFrame(rows)}


#: Failed-run conventions in words (plan ``failed_ai_runs``).
_CONVENTION = {
    "exclude": "failed runs left out",
    "as_negative": "failed run counted as no flag",
    "intention_to_treat": "failed runs kept (intention to treat)",
}


@_STEPS.step("accuracy", produces=[ACCURACY, AUC])
def _accuracy_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Sensitivity, specificity, PPV and NPV of every reader (and the tools' AUCs), first scans.

    Every number comes from :func:`studyval.analysis.accuracy.diagnostic_accuracy`
    (and :func:`~studyval.analysis.discrimination.auc`): a tool's scores at its
    pre-specified threshold, the radiology report's call as a 0/1 score at
    threshold 1 (reported VCF = positive). The step only selects rows and adds keys.
    """
    ctx.progress("tools against the reference standard and the radiology report")
    first = first_scans(cohort, plan)
    rows, auc_rows = [], []
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
            label = f"radiology report ({_pathway(period)})"
            what = f"{label}, {period} period"
        else:
            fl = _flags(cohort, name).reindex(fp["case_id"])
            ok = (fl["status"] == "ok").to_numpy()
            n_failed = int((~ok).sum())
            keep = np.ones(ok.size, dtype=bool) if _failures_negative(plan) else ok
            truth = truth[keep]
            scores = np.where(ok, fl["score"].to_numpy(float), 0.0)[keep]
            threshold = plan.model(name).threshold
            label = name
            what = f"model {name}, {period} period"
            _check_scores(scores, name, period, plan, n_rows=len(fl))
            with estimating(what):
                a = auc(np.where(truth, pos, neg), scores, positive=pos, alpha=plan.alpha)
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
                ci_method=plan.tests.proportion_ci,
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
    return {"accuracy": pd.DataFrame(rows), "auc": pd.DataFrame(auc_rows)}


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


@_STEPS.step("paired", produces=[PAIRED, PAIRED_SENSITIVITY])
def _paired_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Each tool against the radiology report (and the comparator against the primary tool).

    On the retrospective first scans both readers called; a scan a tool failed
    on is left out of that pair and counted (``n_excluded_failed``).
    """
    first = first_scans(cohort, plan)
    ret = first[first[plan.columns.period] == "retrospective"].set_index("case_id")
    calls: dict[str, pd.Series] = {"radiology report": ret["identified"]}
    models = [m for m in supplied_models(cohort, plan) if "retrospective" in plan.model(m).periods]
    for m in models:
        fl = _flags(cohort, m).reindex(ret.index)
        calls[m] = (
            fl["flag"] if _failures_negative(plan) else fl["flag"].where(fl["status"] == "ok")
        )
    pairs = [(m, "radiology report") for m in models]
    pairs += [(models[0], m) for m in models[1:]]
    truth = ret["positive"]
    rows, sens = [], []
    others = [m for m in paired.MCNEMAR_METHODS if m != plan.tests.mcnemar]
    p_by_method = {
        "exact": "p_exact",
        "asymptotic": "p_asymptotic",
        "asymptotic-cc": "p_asymptotic_cc",
    }
    for a_name, b_name in pairs:
        ca, cb = calls[a_name], calls[b_name]
        both = ca.notna() & cb.notna()
        for measure, sel, want in (("sensitivity", truth, True), ("specificity", ~truth, False)):
            keep = both & sel
            r = paired.paired_comparison(
                ca[keep].astype(bool).to_numpy() == want,
                cb[keep].astype(bool).to_numpy() == want,
                mcnemar_method=plan.tests.mcnemar,
                alpha=plan.alpha,
            )
            keys = {"reader_a": a_name, "reader_b": b_name, "measure": measure}
            res = r.to_dict()
            for method in others:
                sens.append(
                    {
                        **keys,
                        "mcnemar_method": method,
                        "p_value": res[p_by_method[method]],
                        "role": "sensitivity",
                        "note": r.note,
                    }
                )
            rows.append(
                {
                    **keys,
                    "period": "retrospective",
                    "n_excluded_failed": int((sel & ~both).sum()),
                    **{k: v for k, v in res.items() if k not in p_by_method.values()},
                    "role": "secondary (unadjusted)",
                }
            )
    return {"paired": pd.DataFrame(rows), "paired_mcnemar_sensitivity": pd.DataFrame(sens)}


@_STEPS.step("rates_all_scans", produces=[RATES_ALL_SCANS, PERIOD_DIFFERENCES_ALL_SCANS])
def _rates_all_scans_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Detection and referral over every included scan, CIs from a patient cluster bootstrap.

    The rates of each period, and the prospective minus retrospective
    difference (:func:`studyval.analysis.binomial_tests.clustered_difference`:
    a patient's scans of both periods are drawn together).
    """
    ctx.progress("all scans, patient-level cluster bootstrap")
    inc = included_scans(cohort, plan)
    keep = ("estimate", "ci_low", "ci_high", "ci_level", "method", "n_resamples", "n_failed")
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
            ).to_dict()
            rows.append(
                {
                    "period": period,
                    "measure": measure,
                    "numerator": int((succ & is_pos).sum()),
                    "denominator": int(is_pos.sum()),
                    "n_patients": int(d.loc[is_pos, "patient_id"].nunique()),
                    **{key: b[key] for key in keep},
                    "unit": "every included scan; patient-level cluster bootstrap",
                }
            )
    pos = inc["positive"].to_numpy(bool)
    pro = (inc[plan.columns.period] == "prospective").to_numpy(bool)
    pid = inc["patient_id"].astype(str)
    periods_of = inc[pos].groupby(pid[pos], observed=True)[plan.columns.period].nunique()
    diffs = []
    for j, measure in enumerate(MEASURES):
        d = binomial_tests.clustered_difference(
            _successes(inc, measure).to_numpy(bool),
            pos & pro,
            pos & ~pro,
            clusters=pid.to_numpy(),
            n_resamples=plan.unit.n_resamples,
            seed=plan.seed + 20 + j,
            alpha=plan.alpha,
            method=plan.unit.bootstrap_ci,
        ).to_dict()
        diffs.append(
            {
                "measure": measure,
                "comparison": "prospective - retrospective",
                "difference": d["estimate"],
                **{key: d[key] for key in keep if key != "estimate"},
                "n_clusters": d["n_clusters"],
                "n_patients": int(pid[pos].nunique()),
                "n_patients_both_periods": int((periods_of > 1).sum()),
                "unit": "every included VCF-positive scan; patient-level cluster bootstrap",
            }
        )
    return {
        "rates_all_scans": pd.DataFrame(rows),
        "period_differences_all_scans": pd.DataFrame(diffs),
    }


@_STEPS.step("models", produces=[MODELS, MODEL_AVAILABILITY])
def _models_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """The tools analysed (version, threshold, scans scored) and which plan tools were supplied."""
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
                    "comparisons are not reported. The plan marks it optional, so this is not an error."
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
    cols = ["model", "role", "model_version", "threshold", "threshold_source", "periods"]
    cols += ["n_scored", "n_failed", "description"]
    return {
        "models": pd.DataFrame(rows, columns=cols),
        "model_availability": pd.DataFrame(avail),
    }


#: Every step of the study type: the ones above, monitoring and the sample size.
REGISTRY = _STEPS.including(
    service_monitoring.REGISTRY, service_sample_size.REGISTRY, name="service-evaluation"
)
