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
