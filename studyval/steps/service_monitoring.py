"""Monitoring steps of the service-evaluation study type: weekly p-charts and binomial CUSUMs.

The ``monitoring`` step of a service evaluation (see
:mod:`studyval.steps.service_evaluation`): p-charts with centre lines declared
before go-live (or trial limits), binomial CUSUMs with their simulated average run
lengths, the decision interval chosen from the exact run lengths on the plan's grid (plan
1.3.0), and the joint false-alarm rate of the set of charts, each from
:mod:`studyval.analysis.monitoring`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from studyval.analysis import monitoring
from studyval.analysis.proportions import proportion_ci
from studyval.cohort import Cohort
from studyval.errors import EstimationError
from studyval.plan_vcf_opportunistic import OpportunisticPlan
from studyval.steps.registry import StepContext, StepRegistry, TableSpec
from studyval.steps.service_unit import (
    MEASURES,
    _failures_negative,
    _flags,
    included_scans,
)

__all__ = [
    "CUSUM",
    "CUSUM_H_GRID",
    "MONITORING_FALSE_ALARM",
    "MONITORING_SUMMARY",
    "PCHART",
    "REGISTRY",
]

#: The monitoring step (included in :data:`studyval.steps.service_evaluation.REGISTRY`).
REGISTRY = StepRegistry("service-evaluation-monitoring")

PCHART = TableSpec(
    "monitoring_pchart",
    "One week of a prospective p-chart: proportion, centre line, limits and signal",
    ("measure", "week", "successes", "n", "proportion", "centre", "lcl", "ucl", "signal"),
)
CUSUM = TableSpec(
    "monitoring_cusum",
    "One week of a binomial CUSUM of missed detections or referrals: increment, sum and signal",
    ("measure", "week", "events", "n", "cusum", "h", "signal", "k", "p0", "p1"),
)
MONITORING_SUMMARY = TableSpec(
    "monitoring_summary",
    "One chart of the prospective period: its parameters, totals and flagged weeks; a CUSUM's "
    "simulated in-control and out-of-control average run lengths at the planned weekly scans",
    (
        "measure",
        "chart",
        "n_signals",
        "flagged_weeks",
        "arl_in_control",
        "arl_out_of_control",
        "p_false_alarm_in_period",
    ),
)
CUSUM_H_GRID = TableSpec(
    "monitoring_cusum_h",
    "One candidate decision interval h of one CUSUM: its exact in-control and out-of-control "
    "average run lengths and chances of a signal within the monitored weeks at the planned weekly "
    "scans, the union (Boole) bound on a false alarm of any CUSUM within those weeks, whether it "
    "reaches the plan's in-control target, and whether it is the chosen h",
    (
        "measure",
        "h",
        "arl_in_control",
        "arl_out_of_control",
        "p_false_alarm_in_period",
        "p_signal_in_period_out_of_control",
        "meets_target",
        "smallest_for_chart",
        "chosen",
        "p_false_alarm_union_bound",
        "target_arl_in_control",
        "h_source",
        "n_per_week",
        "horizon_weeks",
        "method",
    ),
)
MONITORING_FALSE_ALARM = TableSpec(
    "monitoring_false_alarm",
    "One chart of the prospective period, or the set of all charts: the chance of a false "
    "alarm within the monitored weeks when every rate is in control (seeded simulation)",
    ("chart", "kind", "measure", "p_false_alarm", "se", "horizon_weeks"),
)


def _weekly(cohort: Cohort, plan: OpportunisticPlan) -> pd.DataFrame:
    """Counts of each week of the prospective period (included scans; the primary tool's flags)."""
    inc = included_scans(cohort, plan)
    pro = inc[inc[plan.columns.period] == "prospective"].copy()
    fl = _flags(cohort, plan.primary_model).reindex(pro["case_id"])
    # a failed run: not scored (plan failed_ai_runs.standalone exclude) or scored as no flag
    pro["ai_ok"] = True if _failures_negative(plan) else (fl["status"] == "ok").to_numpy()
    pro["ai_flag"] = fl["flag"].fillna(False).to_numpy(bool)
    rows = []
    for w in range(1, plan.periods.prospective_weeks + 1):
        wk = pro[pro[plan.columns.week] == w]
        pos = wk[wk["positive"]]
        rows.append(
            {
                "week": w,
                "vcf_scans": len(pos),
                "identified": int(pos["identified"].sum()),
                "referred": int(pos["referred_"].sum()),
                "ai_scored": int(wk["ai_ok"].sum()),
                "ai_flagged": int((wk["ai_ok"] & wk["ai_flag"]).sum()),
            }
        )
    return pd.DataFrame(rows)


def _points(frame: pd.DataFrame, measure: str) -> pd.DataFrame:
    pts = frame.rename(columns={"period": "week"})
    pts.insert(0, "measure", measure)
    return pts


def _weeks(pts: pd.DataFrame, flagged: pd.Series) -> str:
    return ", ".join(pts.loc[flagged, "week"].astype(str))


def _retrospective_flag_rate(cohort: Cohort, plan: OpportunisticPlan) -> float:
    """The primary tool's flag rate on the scored retrospective included scans (known before go-live)."""
    model = plan.primary_model
    if "retrospective" not in plan.model(model).periods:
        raise EstimationError(
            f"monitoring.centre standard charts the AI flag rate around {model}'s flag rate on the "
            f"retrospective scans, but the plan evaluates {model} on prospective scans only; set "
            "monitoring.chart_ai_flag_rate to false or use centre baseline_weeks"
        )
    inc = included_scans(cohort, plan)
    ret = inc[inc[plan.columns.period] == "retrospective"]
    fl = _flags(cohort, model).reindex(ret["case_id"])
    ok = fl["status"] == "ok"
    scored = len(fl) if _failures_negative(plan) else int(ok.sum())  # the plan's failed-run rule
    return proportion_ci(int((ok & fl["flag"].astype(bool)).sum()), scored).estimate


def _centre(cohort: Cohort, plan: OpportunisticPlan, measure: str) -> tuple[float | None, int, str]:
    """Centre line, baseline weeks and the centre's source in words, for one chart (plan ``monitoring.centre``)."""
    mon = plan.monitoring
    if mon.centre == "pooled":
        return None, 0, "pooled over the charted weeks (trial limits; not available live)"
    if mon.centre == "baseline_weeks":
        k = mon.baseline_weeks
        return None, k, f"pooled over weeks 1-{k} (declared baseline; not monitored)"
    if measure in MEASURES:
        return plan.baseline(measure).target, 0, "the plan's target rate (declared before go-live)"
    return (
        _retrospective_flag_rate(cohort, plan),
        0,
        f"{plan.primary_model}'s flag rate on the retrospective scans (known before go-live)",
    )


def _cusum_h(plan: OpportunisticPlan, per_week: int) -> tuple[float, pd.DataFrame]:
    """The CUSUMs' decision interval and its grid table (plan ``monitoring.cusum_target_arl0``).

    With a target, :func:`studyval.analysis.monitoring.choose_cusum_h` chooses h on the plan's
    grid and the plan's ``cusum_h`` must be that h (else :class:`EstimationError`); without one
    (plans before 1.3.0) the table gives the exact run lengths of the declared h.
    """
    mon = plan.monitoring
    rates = {m: (1 - plan.baseline(m).target, 1 - plan.baseline(m).value) for m in MEASURES}
    horizon = plan.periods.prospective_weeks
    res = monitoring.choose_cusum_h(
        per_week,
        rates=rates,
        target_arl0=mon.cusum_target_arl0,
        h_grid=[mon.cusum_h] if mon.cusum_target_arl0 is None else mon.cusum_h_grid.values(),
        horizon=horizon,
    )
    if mon.cusum_target_arl0 is None:
        source = "declared in the plan (no target)"
    else:
        if abs(res.h - mon.cusum_h) > 1e-9:
            at = res.chosen_frame().set_index("chart")["arl_in_control"]
            raise EstimationError(
                f"monitoring.cusum_h is {mon.cusum_h:g}, but the smallest h on "
                f"monitoring.cusum_h_grid at which every CUSUM's exact in-control average run "
                f"length reaches cusum_target_arl0 = {mon.cusum_target_arl0:g} weeks (at "
                f"{per_week} VCF-positive scans a week) is {res.h:g} ("
                + ", ".join(f"{m} {v:.1f} weeks" for m, v in at.items())
                + f"): set cusum_h to {res.h:g}, or change the target"
            )
        source = (
            "the smallest h on the plan's grid whose in-control average run length is at least "
            f"{mon.cusum_target_arl0:g} weeks for every CUSUM"
        )
    grid, h, method = res.to_frame(), res.h, res.method
    grid = grid.rename(
        columns={
            "chart": "measure",
            "p_false_alarm_within": "p_false_alarm_in_period",
            "p_signal_within_out_of_control": "p_signal_in_period_out_of_control",
        }
    ).assign(
        target_arl_in_control=(
            np.nan if mon.cusum_target_arl0 is None else float(mon.cusum_target_arl0)
        ),
        h_source=source,
        n_per_week=float(per_week),
        horizon_weeks=horizon,
        method=method,
    )
    return float(h), grid


@REGISTRY.step(
    "monitoring",
    produces=[PCHART, CUSUM, MONITORING_SUMMARY, CUSUM_H_GRID, MONITORING_FALSE_ALARM],
)
def _monitoring_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Weekly p-charts (detection, referral, the AI flag rate) and binomial CUSUMs of misses.

    The p-charts' centre lines follow the plan's ``monitoring.centre``
    (:func:`_centre`); the CUSUMs' decision interval is the plan's, checked to be the
    one chosen from the exact run lengths on the plan's grid (:func:`_cusum_h`); the
    charts' joint in-control false-alarm rate within the
    monitored weeks comes from
    :func:`studyval.analysis.monitoring.chart_set_false_alarm`.
    """
    ctx.progress("weekly monitoring of the prospective period")
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
    no_cusum = {"k": np.nan, "h": np.nan, "p0": np.nan, "p1": np.nan}
    arl_keys = (
        "arl_in_control",
        "arl_in_control_se",
        "arl_out_of_control",
        "arl_out_of_control_se",
        "p_false_alarm_in_period",
        "arl_n_per_week",
        "arl_simulations",
    )
    no_arl = dict.fromkeys(arl_keys, np.nan)
    ss = plan.sample_size
    per_week = round(ss.assumed_weekly_scans * ss.assumed_prevalence)
    cusum_h, h_grid = _cusum_h(plan, per_week)
    pc_rows, cu_rows, summary = [], [], []
    centres: dict[str, float] = {}
    cusum_of: dict[str, tuple[float, float, float]] = {}
    for measure, num, den, label in charts:
        centre, base, source = _centre(cohort, plan, measure)
        r = monitoring.p_chart(
            wk[num],
            wk[den],
            centre=centre,
            baseline_periods=base,
            sigma_multiplier=mon.sigma_multiplier,
            labels=wk["week"],
        )
        centres[measure] = r.centre
        pts = _points(r.points_frame(), measure)
        pts["label"] = label
        pts["centre_source"] = source
        pc_rows.append(pts)
        chart = r.to_dict()
        summary.append(
            {
                "measure": measure,
                "label": label,
                "chart": "p-chart",
                "centre": chart["centre"],
                "centre_source": source,
                "sigma_multiplier": chart["sigma_multiplier"],
                "baseline_weeks": r.baseline_periods,
                "n_weeks": r.n_periods,
                "n_signals": r.n_signals,
                "flagged_weeks": _weeks(pts, pts["signal"].isin(["below", "above"])),
                "total_successes": r.total_successes,
                "total_n": r.total_n,
                **no_cusum,
                **no_arl,
            }
        )
        if measure not in MEASURES:
            continue
        b = plan.baseline(measure)
        c = monitoring.binomial_cusum(
            wk[den] - wk[num],
            wk[den],
            p0=1 - b.target,
            p1=1 - b.value,
            h=cusum_h,
            reset_after_signal=mon.reset_after_signal,
            labels=wk["week"],
        )
        cp = _points(c.points_frame(), measure).assign(k=c.k, p0=c.p0, p1=c.p1)
        cu_rows.append(cp)
        cusum_of[measure] = (c.p0, c.p1, c.h)
        arl = {
            state: monitoring.cusum_run_length(
                per_week,
                p0=c.p0,
                p1=c.p1,
                h=c.h,
                true_rate=rate,
                n_simulations=mon.arl_simulations,
                seed=plan.seed + 100 + 2 * MEASURES.index(measure) + j,
                horizon=plan.periods.prospective_weeks,
            )
            for j, (state, rate) in enumerate((("in", c.p0), ("out", c.p1)))
        }
        summary.append(
            {
                "measure": measure,
                "label": f"missed: {label}",
                "chart": "CUSUM",
                "centre": np.nan,
                "centre_source": "",
                "baseline_weeks": np.nan,
                "sigma_multiplier": np.nan,
                "n_weeks": c.n_periods,
                "n_signals": c.n_signals,
                "flagged_weeks": _weeks(cp, cp["signal"]),
                "total_successes": c.total_events,
                "total_n": c.total_n,
                **{k: getattr(c, k) for k in no_cusum},
                "arl_in_control": arl["in"].arl,
                "arl_in_control_se": arl["in"].se,
                "arl_out_of_control": arl["out"].arl,
                "arl_out_of_control_se": arl["out"].se,
                "p_false_alarm_in_period": arl["in"].p_signal_within,
                "arl_n_per_week": float(per_week),
                "arl_simulations": float(mon.arl_simulations),
            }
        )
    horizon = plan.periods.prospective_weeks - (
        mon.baseline_weeks if mon.centre == "baseline_weeks" else 0
    )
    fa = monitoring.chart_set_false_alarm(
        per_week,
        rates=[plan.baseline(m).target for m in MEASURES],
        p_chart_centres=[centres[m] for m in MEASURES],
        cusums=[cusum_of[m] for m in MEASURES],
        independent_p_charts=(
            [(round(ss.assumed_weekly_scans), centres["ai_flag_rate"], centres["ai_flag_rate"])]
            if "ai_flag_rate" in centres
            else []
        ),
        sigma_multiplier=mon.sigma_multiplier,
        horizon=horizon,
        n_simulations=mon.false_alarm_simulations,
        seed=plan.seed + 300,
        names=list(MEASURES),
    )
    each = fa.charts_frame().rename(columns={"stage": "measure"})
    each["measure"] = each["measure"].replace({"independent 1": "ai_flag_rate"})
    each["chart"] = each["chart"].str.replace("independent 1", "ai_flag_rate", regex=False)
    each["role"] = "single chart"
    total = pd.DataFrame(
        [
            {
                "chart": "all charts together",
                "kind": "set",
                "measure": ", ".join(each["measure"].unique()),
                "p_false_alarm": fa.p_any,
                "se": fa.se,
                "role": "family-wise",
                "p_if_independent": fa.p_any_if_independent,
            }
        ]
    )
    false_alarm = pd.concat([each, total], ignore_index=True).assign(
        horizon_weeks=fa.horizon,
        n_per_week=float(per_week),
        in_control="plan targets (detection, referral); the chart's centre (AI flag rate)",
        n_simulations=fa.n_simulations,
        seed=fa.seed,
        method=fa.method,
    )
    return {
        "monitoring_pchart": pd.concat(pc_rows, ignore_index=True),
        "monitoring_cusum": pd.concat(cu_rows, ignore_index=True),
        "monitoring_summary": pd.DataFrame(summary),
        "monitoring_cusum_h": h_grid,
        "monitoring_false_alarm": false_alarm,
    }
