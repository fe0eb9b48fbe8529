"""p-chart and binomial CUSUM against hand computations of Montgomery's formulas."""

from __future__ import annotations

import math

import pytest

from studyval.analysis.monitoring import binomial_cusum, cusum_reference_value, p_chart
from studyval.errors import StudyvalError


def test_p_chart_variable_n_by_hand():
    # pbar = (10 + 20 + 5) / (100 + 100 + 25) = 35/225; limits pbar +/- 3 sqrt(pbar (1 - pbar) / n_i)
    # (Montgomery 2013, section 7.2.2, variable sample size).
    r = p_chart([10, 20, 5], [100, 100, 25])
    pbar = 35 / 225
    pts = r.points_frame()
    for i, n in enumerate([100, 100, 25]):
        half = 3 * math.sqrt(pbar * (1 - pbar) / n)
        assert pts["lcl"][i] == pytest.approx(max(0.0, pbar - half), rel=1e-12)
        assert pts["ucl"][i] == pytest.approx(pbar + half, rel=1e-12)
    assert r.centre == pytest.approx(pbar) and r.centre_source == "pooled"
    # 0.2 vs UCL 0.2644 (n=100): in control
    assert list(pts["signal"]) == ["", "", ""]


def test_p_chart_standard_centre_flags_a_low_week():
    # p0 = 0.9, n = 36: sigma = sqrt(0.09/36) = 0.05, LCL = 0.75; 25/36 = 0.694 < 0.75 -> below
    r = p_chart([33, 25, 36], [36, 36, 36], centre=0.9)
    pts = r.points_frame()
    assert pts["lcl"][0] == pytest.approx(0.75, abs=1e-12)
    assert pts["ucl"][0] == 1.0  # truncated at 1
    assert list(pts["signal"]) == ["", "below", ""]
    assert r.n_signals == 1


def test_p_chart_week_without_cases_never_signals():
    pts = p_chart([5, 0], [10, 0]).points_frame()
    assert pts["signal"][1] == "no cases" and math.isnan(pts["proportion"][1])


def test_cusum_reference_value_by_hand():
    # p0 = 0.1, p1 = 0.23: k = ln(0.9/0.77) / ln(0.23*0.9 / (0.1*0.77))
    k = cusum_reference_value(0.1, 0.23)
    assert k == pytest.approx(math.log(0.9 / 0.77) / math.log(0.207 / 0.077), rel=1e-12)
    assert 0.1 < k < 0.23


def test_cusum_recursion_by_hand():
    # k for p0 = 0.1, p1 = 0.23 is 0.157753...; n = 30 a week -> k n = 4.7326
    k = cusum_reference_value(0.1, 0.23)
    events, n = [3, 6, 12, 2], [30, 30, 30, 30]
    r = binomial_cusum(events, n, p0=0.1, p1=0.23, h=4, reset_after_signal=True)
    s1 = max(0, 3 - 30 * k)  # 0
    s2 = max(0, s1 + 6 - 30 * k)  # 1.2674
    s3 = max(0, s2 + 12 - 30 * k)  # 8.5348 > 4: signal, reset
    s4 = max(0, 0 + 2 - 30 * k)
    pts = r.points_frame()
    assert pts["cusum"].tolist() == pytest.approx([s1, s2, s3, s4], rel=1e-12, abs=1e-12)
    assert pts["signal"].tolist() == [False, False, True, False]
    assert r.first_signal == "3" and r.n_signals == 1
    # the totals behind the chart, for the reader to check against the weekly counts
    assert (r.total_events, r.total_n) == (23, 120)


def test_cusum_without_reset_keeps_accumulating():
    r = binomial_cusum([3, 6, 12, 6], [30] * 4, p0=0.1, p1=0.23, h=4, reset_after_signal=False)
    assert r.points_frame()["signal"].tolist() == [False, False, True, True]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: cusum_reference_value(0.3, 0.2), "must exceed p0", id="p1-below-p0"),
        pytest.param(
            lambda: binomial_cusum([1], [10], p0=0.1, p1=0.2, h=0, reset_after_signal=True),
            "h must be positive",
            id="h-zero",
        ),
        pytest.param(
            lambda: binomial_cusum([1], [10], p0=0.1, p1=0.2, h=4, reset_after_signal="yes"),
            "True or False",
            id="reset-not-bool",
        ),
        pytest.param(lambda: p_chart([5, 11], [10, 10]), "0 <= successes <= n", id="x-above-n"),
        pytest.param(lambda: p_chart([5], [10, 10]), "one n per period", id="lengths"),
        pytest.param(lambda: p_chart([5], [10], centre=1.2), "strictly between", id="centre"),
    ],
)
def test_errors(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()


def test_p_chart_against_montgomery_example_7_1():
    """Published worked example: Montgomery, Introduction to Statistical Quality Control (6th ed.,
    Wiley 2009), Example 7.1 (frozen orange-juice cans, 30 samples of n = 50, 347 nonconforming):
    p-bar = 0.2313, UCL = 0.4102, LCL = 0.0524 (printed to 4 dp); samples 15 and 23 plot above
    the UCL (trial control limits)."""
    from studyval.analysis.monitoring import p_chart

    x = [12, 15, 8, 10, 4, 7, 16, 9, 14, 10, 5, 6, 17, 12, 22,
         8, 10, 5, 13, 11, 20, 18, 24, 15, 9, 12, 7, 13, 9, 6]  # fmt: skip
    res = p_chart(x, [50] * 30)
    f = res.points_frame()
    assert res.total_successes == 347 and res.centre_source == "pooled"
    assert round(res.centre, 4) == 0.2313
    assert round(float(f["ucl"].iloc[0]), 4) == 0.4102
    assert round(float(f["lcl"].iloc[0]), 4) == 0.0524
    assert list(f.loc[f["signal"] == "above", "period"]) == [15, 23]
    assert res.n_signals == 2


# ----------------------------------------------------------------------------- CUSUM run lengths


@pytest.mark.parametrize(
    ("p0", "p1", "rate", "r_arl", "r_se"),
    [
        # R, an independent simulation of the same chart (set.seed(1), 4000 runs):
        # k <- -log((1-p1)/(1-p0)) / log(p1*(1-p0)/(p0*(1-p1)))
        # for each run: s <- 0; t <- 0; repeat { t <- t + 1; s <- max(0, s + rbinom(1, 29, rate)
        #   - k * 29); if (s > 4) break }; mean and sd / sqrt(4000) of the run lengths
        # detection, in control (missed rate 0.10): 306.1455, SE 4.9167
        pytest.param(0.10, 0.23, 0.10, 306.1455, 4.9167, id="detection-in-control"),
        # detection, out of control (missed rate 0.23): 2.71275, SE 0.02413
        pytest.param(0.10, 0.23, 0.23, 2.71275, 0.02413, id="detection-out-of-control"),
        # referral, in control (missed rate 0.40): 99.2825, SE 1.5128
        pytest.param(0.40, 0.57, 0.40, 99.2825, 1.5128, id="referral-in-control"),
    ],
)
def test_cusum_run_length_agrees_with_an_r_simulation(p0, p1, rate, r_arl, r_se):
    """Two independent simulations agree within 4 combined Monte Carlo standard errors (the
    oracle is itself random: this is the tolerance, not 1e-6). Issue 16 quotes about 290 and 97
    weeks in control and 2.5-2.7 weeks out of control at ~29 VCF-positive scans a week."""
    from studyval.analysis.monitoring import cusum_run_length

    r = cusum_run_length(29, p0=p0, p1=p1, h=4, true_rate=rate, n_simulations=10_000, seed=20210301)
    assert abs(r.arl - r_arl) < 4 * math.hypot(r.se, r_se), (r.arl, r.se)
    assert r.n_censored == 0 and r.n_simulations == 10_000


def test_cusum_run_length_is_reproducible_and_longer_in_control():
    from studyval.analysis.monitoring import cusum_run_length

    kw = {"p0": 0.1, "p1": 0.23, "h": 4, "n_simulations": 500, "seed": 7}
    a = cusum_run_length(29, true_rate=0.1, **kw)
    assert a == cusum_run_length(29, true_rate=0.1, **kw)
    out = cusum_run_length(29, true_rate=0.23, **kw)
    assert out.arl < a.arl and out.p_signal_within > a.p_signal_within
    higher_h = cusum_run_length(29, true_rate=0.1, **{**kw, "h": 6})
    assert higher_h.arl > a.arl


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"n_per_period": 0}, "n_per_period must be positive", id="n"),
        pytest.param({"h": -1}, "h must be positive", id="h"),
        pytest.param({"true_rate": 1.0}, "true_rate", id="rate"),
        pytest.param({"n_simulations": 10}, "at least 100", id="sims"),
        pytest.param({"p1": 0.05}, "must exceed p0", id="direction"),
    ],
)
def test_cusum_run_length_bad_inputs_are_named(kwargs, match):
    from studyval.analysis.monitoring import cusum_run_length

    args = {
        "n_per_period": 29,
        "p0": 0.1,
        "p1": 0.23,
        "h": 4,
        "true_rate": 0.1,
        "n_simulations": 200,
        "seed": 1,
    }
    with pytest.raises(StudyvalError, match=match):
        cusum_run_length(**{**args, **kwargs})
