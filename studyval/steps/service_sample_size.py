"""The sample-size step of the service-evaluation study type.

Power of the tests the plan actually runs (exact binomial against the historical
baseline, Fisher's exact test of the two periods by enumeration, the McNemar test
of the paired readers) and the weeks needed at the planned scan volume, each from
:mod:`studyval.analysis.sample_size_binomial`, against the registered numbers.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis import sample_size_binomial as ssb
from studyval.analysis.sample_size import RegisteredCheck, check_registered
from studyval.cohort import Cohort
from studyval.plan_vcf_opportunistic import OpportunisticPlan
from studyval.steps.common import SAMPLE_SIZE, sample_size_row
from studyval.steps.registry import StepContext, StepRegistry
from studyval.steps.service_unit import (
    MEASURES,
    PERIODS,
    first_scans,
)

__all__ = ["REGISTRY"]

#: The sample-size step (included in :data:`studyval.steps.service_evaluation.REGISTRY`).
REGISTRY = StepRegistry("service-evaluation-sample-size")

@REGISTRY.step("sample_size", produces=[SAMPLE_SIZE])
def _sample_size_step(cohort: Cohort, plan: OpportunisticPlan, ctx: StepContext) -> dict:
    """Power of the tests the analysis runs, exact by enumeration, and prospective weeks needed.

    Rows, for each measure: Fisher's exact power of the before/after (concurrent)
    comparison at the planned counts (the score approximation beside it); weeks
    needed for it; weeks needed for the supportive one-sample test against the
    historical, fixed baseline; and, for detection, the power of McNemar's test
    of the AI tool against the report on the planned retrospective scans (exact
    by enumeration, Connor's approximation beside it). The same powers at the
    observed numbers of VCF-positive first scans follow.
    """
    ctx.progress("sample size and power")
    first = first_scans(cohort, plan)
    ss, alt, alpha = plan.sample_size, plan.tests.alternative, plan.alpha
    n_retro = round(ss.planned_retrospective_scans * ss.assumed_prevalence)
    n_pro = ss.registered_prospective_weeks * ss.assumed_weekly_scans * ss.assumed_prevalence
    n_pro_whole = round(n_pro)
    reg_weeks = ss.registered_prospective_weeks
    obs = {
        period: int(((first[plan.columns.period] == period) & first["positive"]).sum())
        for period in PERIODS
    }
    pp = ss.paired
    p10, p01 = ssb.discordant_probabilities(pp.tool_sensitivity, pp.report_sensitivity, phi=pp.phi)
    rows = []
    for measure in MEASURES:
        b = plan.baseline(measure)
        change = f"{b.value:g} -> {b.target:g}"
        assumption = (
            f"{measure} {change}, VCF prevalence {ss.assumed_prevalence:g}, "
            f"{ss.assumed_weekly_scans:g} scans a week, power {ss.target_power:g}, {alt} alpha {alpha:g}"
        )
        common = {
            "measure": measure,
            "baseline": b.value,
            "target": b.target,
            "alpha": alpha,
            "alternative": alt,
            "assumed_prevalence": ss.assumed_prevalence,
            "assumed_weekly_scans": ss.assumed_weekly_scans,
            "target_power": ss.target_power,
            "planned_retrospective_scans": ss.planned_retrospective_scans,
            "registered_prospective_weeks": reg_weeks,
        }
        row = partial(_sample_size_row, common, assumption)
        two = ssb.two_proportion_periods_needed(
            p1=b.target,
            p2=b.value,
            n2=n_retro,
            volume_per_period=ss.assumed_weekly_scans,
            prevalence=ss.assumed_prevalence,
            power=ss.target_power,
            alpha=alpha,
            max_periods=_FIVE_YEARS_OF_WEEKS,
        )

        rows.append(
            _fisher_power_row(
                row,
                b,
                two,
                n_pro_whole,
                n_retro,
                "registered",
                "power of the planned scans for the before/after comparison",
                float(reg_weeks * ss.assumed_weekly_scans),
                alt=alt,
            )
        )
        p_reg = ssb.two_proportion_power(p1=b.target, p2=b.value, n1=n_pro, n2=n_retro, alpha=alpha)
        rows.append(
            row(
                check_registered(two.periods_unrounded, reg_weeks, label="prospective weeks")
                if two.reached
                else reg_weeks,
                quantity="prospective weeks for the before/after comparison",
                method=p_reg.method,
                comparison="before/after (concurrent), the primary test",
                scans=float(reg_weeks * ss.assumed_weekly_scans),
                vcf_scans=n_pro,
                power=p_reg.power,
                power_approximation=p_reg.power,
                required_vcf_scans=two.n1,
                weeks=float(two.periods) if two.reached else np.nan,
                message=f"Registered {reg_weeks} weeks ({n_pro:.0f} expected VCF-positive scans) "
                f"against {n_retro} retrospective: score-test power {p_reg.power:.3f} for {change}; "
                + (
                    f"{two.periods} week(s) reach power {ss.target_power:g}."
                    if two.reached
                    else "power not reached within 5 years."
                ),
            )
        )
        need = ssb.exact_binomial_sample_size(
            p0=b.value,
            p1=b.target,
            power=ss.target_power,
            alpha=alpha,
            alternative=alt,
            n_max=ss.n_max,
        )
        weeks = ssb.periods_needed(
            need.n_stable,
            volume_per_period=ss.assumed_weekly_scans,
            prevalence=ss.assumed_prevalence,
        )
        chk = check_registered(weeks.periods_unrounded, reg_weeks, label="prospective weeks")
        rows.append(
            row(
                chk,
                quantity="prospective weeks for the one-sample test against the historical baseline",
                method="exact binomial test; smallest n with power >= target for every larger n",
                comparison="against the historical, fixed baseline (supportive)",
                scans=weeks.periods * ss.assumed_weekly_scans,
                vcf_scans=weeks.periods * weeks.events_per_period,
                power=need.power_at_n_stable,
                power_approximation=np.nan,
                required_vcf_scans=float(need.n_stable),
                weeks=float(weeks.periods),
                message=f"{need.n_stable} VCF-positive scans give power >= {ss.target_power:g} "
                f"against the historical, fixed baseline {b.value:g} taken as known (first reached "
                f"at n = {need.n_first}); at {weeks.events_per_period:.1f} VCF-positive scans a week "
                f"that is {weeks.periods} week(s), {'within' if chk.adequate else 'more than'} the "
                f"registered {reg_weeks}.",
            )
        )
        rows.append(
            _fisher_power_row(
                row,
                b,
                two,
                obs["prospective"],
                obs["retrospective"],
                "observed (prospective)",
                "observed VCF-positive first scans, before/after comparison",
                float(len(first)),
                alt=alt,
            )
        )
        if measure != "detection":
            continue  # the tools call VCFs; they do not refer: no paired referral comparison

        rows.append(
            _mcnemar_power_row(
                row,
                plan,
                (p10, p01),
                n_retro,
                "registered",
                "power of the planned retrospective scans for the paired comparison",
            )
        )
        rows.append(
            _mcnemar_power_row(
                row,
                plan,
                (p10, p01),
                obs["retrospective"],
                "observed (retrospective)",
                "observed VCF-positive first scans, paired comparison",
            )
        )
    return {"sample_size": pd.DataFrame(rows)}


def _fisher_power_row(
    row: Any,
    b: Any,
    two: Any,
    n1: int,
    n2: int,
    check: str,
    quantity: str,
    scans: float,
    *,
    alt: str,
) -> dict[str, Any]:
    """A ``sample_size`` row: Fisher's exact power of the before/after comparison at ``n1``, ``n2``."""
    alpha = two.alpha
    fp = ssb.fisher_exact_power(n1, n2, p1=b.target, p2=b.value, alpha=alpha, alternative=alt)
    approx = (
        f"; the score-test approximation gives {fp.power_score_approx:.3f}"
        if alt == "two-sided"
        else ""
    )
    return row(
        check_registered(two.n1_unrounded, n1, label="VCF-positive AI-assisted scans")
        if two.reached
        else n1,
        check=check,
        quantity=quantity,
        method=fp.method,
        comparison="before/after (concurrent), the primary test",
        scans=scans,
        vcf_scans=float(n1),
        power=fp.power,
        power_approximation=fp.power_score_approx,
        required_vcf_scans=two.n1_unrounded,
        weeks=np.nan,
        message=f"{n1} AI-assisted against {n2} standard-care VCF-positive scans: "
        f"Fisher's exact test has power {fp.power:.3f} (exact, by enumeration) for "
        f"{b.measure} {b.value:g} -> {b.target:g} ({alt}, alpha {alpha:g}){approx}.",
    )


def _mcnemar_power_row(
    row: Any,
    plan: OpportunisticPlan,
    discordant: tuple[float, float],
    n: int,
    check: str,
    quantity: str,
) -> dict[str, Any]:
    """A ``sample_size`` row: power of the plan's McNemar test with ``n`` pairs (AI tool vs report)."""
    ss, pp = plan.sample_size, plan.sample_size.paired
    mp = ssb.mcnemar_power(
        n,
        p10=discordant[0],
        p01=discordant[1],
        alpha=plan.alpha,
        method=plan.tests.mcnemar,
        target_power=ss.target_power,
    )
    return row(
        check_registered(mp.n_connor, n, label="VCF-positive standard-care scans"),
        check=check,
        quantity=quantity,
        method=f"McNemar's test ({mp.method}), exact power by enumeration of the "
        "discordant pairs; Connor (1987) approximation",
        comparison="AI tool vs the standard-care report on the same scans (paired)",
        scans=float(ss.planned_retrospective_scans),
        vcf_scans=float(n),
        power=mp.power,
        power_approximation=mp.power_connor,
        required_vcf_scans=mp.n_connor,
        weeks=np.nan,
        message=f"{n} VCF-positive scans read by both the AI tool and the report: "
        f"McNemar's test ({mp.method}) has power {mp.power:.3f} (exact, by enumeration; "
        f"Connor's approximation {mp.power_connor:.3f}) for sensitivity "
        f"{pp.tool_sensitivity:g} vs {pp.report_sensitivity:g} with phi = {pp.phi:g} "
        f"(discordant probabilities {mp.p10:.3f} and {mp.p01:.3f}); Connor's formula needs "
        f"{mp.n_connor:.1f} pairs for power {ss.target_power:g}.",
    )


#: The before/after search stops after 260 weeks ("power not reached within 5 years").
_FIVE_YEARS_OF_WEEKS = 260


def _sample_size_row(
    common: dict[str, Any],
    assumption: str,
    chk: RegisteredCheck | int,
    *,
    check: str = "registered",
    **values: Any,
) -> dict[str, Any]:
    """One ``sample_size`` row: the protocol's columns, then the shared ones of ``chk``.

    ``chk`` is the number available where no number reaches the target (the
    requirement and the shortfall are then empty and the row is not adequate).
    """
    if not isinstance(chk, RegisteredCheck):
        shared: dict[str, Any] = dict.fromkeys(SAMPLE_SIZE.columns, np.nan)
        shared.update(check=check, assumption=assumption, available=chk, adequate=False)
    else:
        shared = sample_size_row(
            chk,
            check=check,
            quantity=values["quantity"],
            assumption=assumption,
            method=values["method"],
        )
    own = ("quantity", "method", "message")
    return {**common, **values, **{k: v for k, v in shared.items() if k not in own}}
