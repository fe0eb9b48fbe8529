"""Figures of vcf-opportunistic (AI Centre project AIC003), each drawn from the bundle's tables.

:func:`figure_specs` is the protocol's ``figure_specs``: the STARD flow
diagram of scans by period, the detection and referral rates against the
registry baselines, and the weekly p-charts and binomial CUSUMs of the
prospective period. Nothing here computes a statistic: every number is read
from a table of the bundle (``flow``, ``rates``, ``monitoring_pchart``,
``monitoring_cusum``, ``monitoring_cusum_h``) or from the plan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from studyval.figures.spec import FigureSpec
from studyval.protocol import flow_count
from studyval.steps.common import FLOW
from studyval.steps.service_evaluation import CUSUM, PCHART, RATES
from studyval.steps.service_monitoring import CUSUM_H_GRID

if TYPE_CHECKING:  # pragma: no cover - imported for annotations only
    from studyval.plan_vcf_opportunistic import OpportunisticPlan

__all__ = ["figure_specs", "flow_stages"]


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
                "text": f"Later scans of a patient\n(all-scans analysis only)\nn = {n('later_scans', period)}"
                + (
                    f"\nof which patient seen in an\nearlier period: {n('earlier_period_patient', period)}"
                    if n("earlier_period_patient", period)
                    else ""
                ),
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

    flow, rates = tables[FLOW.name], tables[RATES.name]
    pc, cu = tables[PCHART.name], tables[CUSUM.name]
    grid = tables[CUSUM_H_GRID.name]
    arl = grid[grid["chosen"].astype(bool)].set_index("measure")
    ci_pct = f"{100 * float(rates['ci_level'].iloc[0]):.0f}%"

    def counts(period: str) -> str:
        sub = rates[(rates["period"] == period) & (rates["measure"] == "detection")].iloc[0]
        return f"{period} {int(sub['denominator'])} VCF-positive first scans"

    specs = [
        FigureSpec(
            name="flow",
            caption=(
                "STARD flow diagram of CT scans by period. Counts are scans unless stated; the primary "
                "analyses use the first included scan of each patient in each period"
                + (
                    ", a patient scanned in both periods only in the period of the first scan."
                    if plan.unit.patients_in_both_periods == "first_period"
                    else "."
                )
            ),
            draw=lambda w: flow_figure(flow_stages(flow, plan), width_mm=w),
            column="double",
        ),
        FigureSpec(
            name="rates_vs_baseline",
            caption=(
                f"Detection (report mentions the VCF) and referral rates of VCF-positive scans by period, "
                f"with Clopper-Pearson {ci_pct} CIs ({counts('retrospective')}, {counts('prospective')}; "
                f"events are the numerators shown). Dashed: the registry's historical, fixed baselines "
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
                    f"h = {sub['h'].iloc[0]:g}. Signals: weeks {', '.join(flagged) or 'none'}. "
                    f"Exact average run length at {arl.at[measure, 'n_per_week']:.0f} "
                    f"VCF-positive scans a week: {arl.at[measure, 'arl_in_control']:.0f} weeks to a "
                    f"false alarm in control, {arl.at[measure, 'arl_out_of_control']:.1f} weeks to "
                    "a signal after a fall to the baseline."
                ),
                draw=lambda w, sub=sub: cusum_figure(sub, width_mm=w),
            )
        )
    return specs
