"""The analysis unit of a service evaluation: which scans, which patients, which flags.

Shared by the service-evaluation steps (:mod:`studyval.steps.service_evaluation`,
:mod:`studyval.steps.service_monitoring`, :mod:`studyval.steps.service_sample_size`):
the included scans, the first included scan of each patient in each period (the
plan's ``unit.primary``), each AI tool's flags and which tools were supplied.
"""

from __future__ import annotations

import pandas as pd

from studyval.cohort import Cohort
from studyval.plan_vcf_opportunistic import OpportunisticPlan

__all__ = ["ALWAYS", "MEASURES", "PERIODS", "first_scans", "included_scans", "supplied_models"]

PERIODS = ("retrospective", "prospective")
MEASURES = ("detection", "referral")

#: Steps every analysis runs (the plan's endpoints add the rest).
ALWAYS = ("flow", "baseline", "models", "sample_size")


# ----------------------------------------------------------------------------- analysis unit


def included_scans(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """Every included scan, sorted by period, patient, date and case id, with boolean outcome columns.

    ``first_in_period``: the patient's first included scan of the period;
    ``earlier_period``: the patient has an included scan in an earlier period
    (only set under the plan's ``unit.patients_in_both_periods: first_period``);
    ``first_scan``: the primary analysis unit, ``first_in_period`` and not
    ``earlier_period``.
    """
    cols = plan.columns
    c = cohort.clinical
    inc = c[c[cols.exclusion] == "none"].copy()
    inc["positive"] = inc[plan.outcome.variable].astype(str) == plan.outcome.positive
    inc["identified"] = inc[cols.report].astype(bool)
    inc["referred_"] = inc[cols.referral].astype(bool)
    inc = inc.sort_values([cols.period, "patient_id", cols.scan_date, "case_id"], kind="mergesort")
    inc["first_in_period"] = ~inc.duplicated([cols.period, "patient_id"])
    order = inc[cols.period].astype(str).map({p: i for i, p in enumerate(PERIODS)}).astype(int)
    first_period = order.groupby(inc["patient_id"], observed=True).transform("min")
    inc["earlier_period"] = (plan.unit.patients_in_both_periods == "first_period") & (
        order > first_period
    )
    inc["first_scan"] = inc["first_in_period"] & ~inc["earlier_period"]
    return inc.reset_index(drop=True)


def first_scans(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """The primary analysis unit: the first included scan of each patient (plan ``unit``).

    Each patient's first included scan within each period, less (under
    ``unit.patients_in_both_periods: first_period``) the scans of patients
    already analysed in an earlier period. Under ``failed_ai_runs.pathway:
    exclude`` the prospective scans whose primary AI run failed are left out
    too (counted in the flow as ``index_test_failed``).
    """
    inc = included_scans(cohort, plan)
    first = inc[inc["first_scan"]]
    fr = plan.failed_ai_runs
    if fr is not None and fr.pathway == "exclude":
        first = first[~_failed_primary_run(first, cohort, plan)]
    return first.reset_index(drop=True)


def _failed_primary_run(frame: pd.DataFrame, cohort: Cohort, plan: OpportunisticPlan) -> pd.Series:
    """True for the prospective scans of ``frame`` whose primary AI tool's run failed."""
    st = _flags(cohort, plan.primary_model)["status"].reindex(frame["case_id"]).to_numpy()
    return pd.Series(
        (frame[plan.columns.period].to_numpy() == "prospective") & (st == "failed"),
        index=frame.index,
    )


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


def _pathway(period: str) -> str:
    return "standard care" if period == "retrospective" else "AI-assisted"


def _successes(frame: pd.DataFrame, measure: str) -> pd.Series:
    return frame["identified"] if measure == "detection" else frame["referred_"]


def _failures_negative(plan: OpportunisticPlan) -> bool:
    """Whether the plan counts a failed AI run as no flag in the standalone analyses."""
    return plan.failed_ai_runs is not None and plan.failed_ai_runs.standalone == "as_negative"
