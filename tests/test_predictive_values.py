"""Predictive values at a declared prevalence (Mercaldo, Lau & Zhou 2007 logit CI).

The statistic is ``accuracy_from_confusion(..., prevalence=p)``'s ``ppv_adjusted`` and
``npv_adjusted`` (one function; the ``predictive_values`` step of the diagnostic-accuracy
type calls it for each clinical prevalence the plan declares).

Oracle: the closed-form computation written independently in R (R 4.2, base only),
run once; its printed values are pasted beside the expected constants below::

    pv <- function(tp, fn, tn, fp, prev, level = 0.95) {
      n1 <- tp + fn; n0 <- tn + fp; se <- tp / n1; sp <- tn / n0
      z <- qnorm((1 + level) / 2)
      ppv <- se * prev / (se * prev + (1 - sp) * (1 - prev))
      npv <- sp * (1 - prev) / (sp * (1 - prev) + (1 - se) * prev)
      vp <- (1 - se) / (n1 * se) + sp / (n0 * (1 - sp))
      vn <- se / (n1 * (1 - se)) + (1 - sp) / (n0 * sp)
      lp <- qlogis(ppv); ln <- qlogis(npv)
      c(ppv = ppv, ppv_lo = plogis(lp - z * sqrt(vp)), ppv_hi = plogis(lp + z * sqrt(vp)),
        npv = npv, npv_lo = plogis(ln - z * sqrt(vn)), npv_hi = plogis(ln + z * sqrt(vn)))
    }
    options(digits = 15)
"""

from __future__ import annotations

import itertools
import math

import pandas as pd
import pytest

from studyval.analysis.accuracy import ConfusionMatrix, accuracy_from_confusion


def _at(tp, fn, tn, fp, prevalence, level=0.95):
    cm = ConfusionMatrix(tp=tp, fp=fp, fn=fn, tn=tn, threshold=0.5, positive="p", negative="n")
    r = accuracy_from_confusion(
        cm, threshold_status="pre-specified", alpha=1 - level, prevalence=prevalence
    )
    return r.measure("ppv_adjusted"), r.measure("npv_adjusted")


@pytest.mark.parametrize(
    ("counts", "prevalence", "level", "expected"),
    [
        pytest.param(
            # pv(31, 8, 31, 9, 0.3)
            # ppv 0.602234094220495 ppv_lo 0.454612316690243 ppv_hi 0.733336485793237
            # npv 0.898121617319325 npv_lo 0.822963086749698 npv_hi 0.943560879453270
            (31, 8, 31, 9),
            0.3,
            0.95,
            (
                0.602234094220495,
                0.454612316690243,
                0.733336485793237,
                0.898121617319325,
                0.822963086749698,
                0.943560879453270,
            ),
            id="ovcf-demo-external-densenet-prev-0.3",
        ),
        pytest.param(
            # pv(31, 8, 31, 9, 0.6)
            # ppv 0.841248303934871 ppv_lo 0.744732121146139 ppv_hi 0.905883727366239
            # npv 0.715808170515098 npv_lo 0.570475176095170 npv_hi 0.826888701672247
            (31, 8, 31, 9),
            0.6,
            0.95,
            (
                0.841248303934871,
                0.744732121146139,
                0.905883727366239,
                0.715808170515098,
                0.570475176095170,
                0.826888701672247,
            ),
            id="ovcf-demo-external-densenet-prev-0.6",
        ),
        pytest.param(
            # pv(80, 20, 90, 10, 0.1, level = 0.90)
            # ppv 0.470588235294118 ppv_lo 0.350226048605956 ppv_hi 0.594471028453400
            # npv 0.975903614457831 npv_lo 0.966682699205905 npv_hi 0.982618430250425
            (80, 20, 90, 10),
            0.1,
            0.90,
            (
                0.470588235294118,
                0.350226048605956,
                0.594471028453400,
                0.975903614457831,
                0.966682699205905,
                0.982618430250425,
            ),
            id="low-prevalence-90pct",
        ),
    ],
)
def test_mercaldo_logit_against_R(counts, prevalence, level, expected):
    ppv, npv = _at(*counts, prevalence, level)
    got = (ppv.estimate, ppv.ci_low, ppv.ci_high, npv.estimate, npv.ci_low, npv.ci_high)
    for value, want in zip(got, expected, strict=True):
        assert value == pytest.approx(want, rel=1e-9)
    assert ppv.ci_method == npv.ci_method == "logit (Mercaldo 2007)"


@pytest.mark.parametrize(
    ("tp", "fn", "tn", "fp"),
    [
        pytest.param(31, 8, 31, 9, id="ovcf-demo"),
        pytest.param(80, 20, 90, 10, id="balanced"),
        pytest.param(12, 3, 140, 45, id="unbalanced"),
    ],
)
def test_sample_prevalence_gives_sample_predictive_values(tp, fn, tn, fp):
    n1, n0 = tp + fn, tn + fp
    ppv, npv = _at(tp, fn, tn, fp, n1 / (n1 + n0))
    assert ppv.estimate == pytest.approx(tp / (tp + fp), rel=1e-12)
    assert npv.estimate == pytest.approx(tn / (tn + fn), rel=1e-12)


def test_monotone_in_prevalence():
    prevs = [0.05, 0.2, 0.5, 0.8, 0.95]
    rs = [_at(31, 8, 31, 9, p) for p in prevs]
    assert all(a[0].estimate < b[0].estimate for a, b in itertools.pairwise(rs))
    assert all(a[1].estimate > b[1].estimate for a, b in itertools.pairwise(rs))


def test_specificity_one_gives_ppv_one_without_ci_and_says_why():
    ppv, npv = _at(30, 10, 40, 0, 0.3)
    assert ppv.estimate == 1.0
    assert math.isnan(ppv.ci_low) and math.isnan(ppv.ci_high)
    assert "CI undefined" in ppv.note
    assert npv.ci_low < npv.estimate < npv.ci_high


# ----------------------------------------------------------------------------- the step


def _accuracy_table(plan, counts_by_set):
    """An ``accuracy`` table as the accuracy step writes it, from 2x2 counts per set."""
    parts = []
    for set_, (tp, fn, tn, fp) in counts_by_set.items():
        for model in plan.model_names:
            cm = ConfusionMatrix(
                tp=tp, fp=fp, fn=fn, tn=tn, threshold=0.5, positive="acute", negative="chronic"
            )
            f = accuracy_from_confusion(cm, threshold_status="pre-specified").measures_frame()
            f.insert(0, "set", set_)
            f.insert(1, "model", model)
            f.insert(2, "threshold_name", plan.thresholds[0].name)
            f.insert(3, "threshold_status", "pre-specified")
            parts.append(f)
    return pd.concat(parts, ignore_index=True)


def test_step_reads_the_accuracy_counts_of_the_primary_model():
    from studyval.plan import load_plan
    from studyval.steps.diagnostic import PREDICTIVE_VALUES, predictive_values_step
    from studyval.steps.registry import StepContext

    plan = load_plan("ovcf-chronicity")
    assert plan.predictive_values is not None
    prevalences = plan.predictive_values.prevalences
    acc = _accuracy_table(plan, {"internal": (27, 3, 27, 3), "external": (31, 8, 31, 9)})
    ctx = StepContext(tables={"accuracy": acc}, progress=lambda _msg: None)
    out = predictive_values_step(None, plan, ctx)["predictive_values"]
    assert tuple(out.columns) == PREDICTIVE_VALUES.columns
    assert set(out["model"]) == {plan.primary_model}
    assert len(out) == 2 * len(prevalences) * 2  # sets x prevalences x (ppv, npv)
    ext = out[(out["set"] == "external") & (out["prevalence"] == 0.3)].set_index("measure")
    # pv(31, 8, 31, 9, 0.3) above: ppv 0.602234094220495, npv 0.898121617319325
    assert ext.at["ppv", "estimate"] == pytest.approx(0.602234094220495, rel=1e-9)
    assert ext.at["npv", "estimate"] == pytest.approx(0.898121617319325, rel=1e-9)


def test_plan_rejects_a_prevalence_outside_the_unit_interval():
    from pydantic import ValidationError

    from studyval.plan import PredictiveValuesSpec

    with pytest.raises(ValidationError, match=r"each prevalence must be in \(0, 1\)"):
        PredictiveValuesSpec(prevalences=[0.3, 1.0], source="x")
