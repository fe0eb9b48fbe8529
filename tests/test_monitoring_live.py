"""p-chart limits from a declared baseline, and the joint false-alarm rate of a set of charts.

Exact oracles (R 4.2) for the simulated family-wise rate, where the charts are p-charts
judged week by week (independent weeks, so P(any alarm in H weeks) = 1 - (1 - q)^H)::

    lcl <- 0.9 - 3 * sqrt(0.9 * 0.1 / 29)      # 0.732874195640653: alarm when x <= 21 of 29
    q <- pbinom(21, 29, 0.9); 1 - (1 - q)^8     # q 0.00624660850921117; 0.0488938483548985
    l2 <- 0.2 - 3 * sqrt(0.2 * 0.8 / 160); u2 <- 0.2 + 3 * sqrt(0.2 * 0.8 / 160)
    q2 <- pbinom(ceiling(160 * l2) - 1, 160, 0.2) + pbinom(floor(160 * u2), 160, 0.2,
                                                           lower.tail = FALSE)
    1 - ((1 - q) * (1 - q2))^8                  # q2 0.00220549369200559; 0.0655461486781015

The simulation agrees within 4 Monte Carlo standard errors.
"""

from __future__ import annotations

import pytest

from studyval.analysis.monitoring import (
    binomial_cusum,
    chart_set_false_alarm,
    cusum_run_length,
    p_chart,
)
from studyval.errors import StudyvalError

X = [25, 27, 20, 26, 14, 27]
N = [29, 30, 28, 29, 28, 30]


def test_baseline_weeks_set_the_centre_and_are_not_monitored():
    r = p_chart(X, N, baseline_periods=2)
    # R: sum(c(25, 27)) / sum(c(29, 30)) = 0.881355932203390
    assert r.centre == pytest.approx(52 / 59, rel=1e-15)
    assert (r.centre_source, r.baseline_periods) == ("baseline", 2)
    pts = r.points_frame()
    assert list(pts["signal"][:2]) == ["baseline", "baseline"]
    # week 5 (14/28 = 0.5) is below 0.8814 - 3 sqrt(0.8814 * 0.1186 / 28) = 0.6996
    assert list(pts["signal"][2:]) == ["", "", "below", ""]
    assert r.n_signals == 1


def test_baseline_periods_cannot_be_combined_with_a_centre_or_cover_every_period():
    with pytest.raises(StudyvalError, match="not both"):
        p_chart(X, N, centre=0.9, baseline_periods=2)
    with pytest.raises(StudyvalError, match="from 0 to 5"):
        p_chart(X, N, baseline_periods=6)


def test_single_p_chart_against_the_exact_binomial_rate():
    r = chart_set_false_alarm(
        29, rates=[0.9], p_chart_centres=[0.9], cusums=[None], horizon=8,
        n_simulations=20000, seed=3,
    )  # fmt: skip
    assert abs(r.p_any - 0.0488938483548985) < 4 * r.se
    assert r.n_charts == 1


def test_two_independent_p_charts_against_the_exact_rate():
    r = chart_set_false_alarm(
        29, rates=[0.9], p_chart_centres=[0.9], cusums=[None],
        independent_p_charts=[(160, 0.2, 0.2)], horizon=8, n_simulations=20000, seed=4,
    )  # fmt: skip
    assert abs(r.p_any - 0.0655461486781015) < 4 * r.se


def test_a_cusum_alone_matches_its_run_length_simulation():
    p0, p1, h = 0.1, 0.23, 4.0
    r = chart_set_false_alarm(
        29, rates=[1 - p0], p_chart_centres=[None], cusums=[(p0, p1, h)], horizon=8,
        n_simulations=20000, seed=5,
    )  # fmt: skip
    ref = cusum_run_length(29, p0=p0, p1=p1, h=h, true_rate=p0, n_simulations=20000, seed=6)
    se = (r.se**2 + ref.p_signal_within * (1 - ref.p_signal_within) / 20000) ** 0.5
    assert abs(r.p_any - ref.p_signal_within) < 4 * se
    # and the CUSUM it simulates is binomial_cusum's: one run, checked by hand
    c = binomial_cusum([5, 9], [29, 29], p0=p0, p1=p1, h=h, reset_after_signal=True)
    assert c.k > p0


def test_the_set_rate_is_at_least_each_chart_and_at_most_their_sum():
    r = chart_set_false_alarm(
        29, rates=[0.9, 0.6], p_chart_centres=[0.9, 0.6],
        cusums=[(0.1, 0.23, 4.0), (0.4, 0.57, 4.0)],
        independent_p_charts=[(160, 0.23, 0.23)], horizon=8, n_simulations=5000, seed=7,
        names=["detection", "referral"],
    )  # fmt: skip
    each = r.charts_frame()
    assert list(each["stage"]) == [
        "detection",
        "detection",
        "referral",
        "referral",
        "independent 1",
    ]
    assert each["p_false_alarm"].max() <= r.p_any <= each["p_false_alarm"].sum()
    again = chart_set_false_alarm(
        29, rates=[0.9, 0.6], p_chart_centres=[0.9, 0.6],
        cusums=[(0.1, 0.23, 4.0), (0.4, 0.57, 4.0)],
        independent_p_charts=[(160, 0.23, 0.23)], horizon=8, n_simulations=5000, seed=7,
        names=["detection", "referral"],
    )  # fmt: skip
    assert again.p_any == r.p_any  # seeded: reproducible


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        pytest.param({"rates": [0.6, 0.9]}, "not increase", id="not-nested"),
        pytest.param({"cusums": [None]}, "one entry per stage", id="lengths"),
        pytest.param({"n_simulations": 10}, "at least 100", id="few-runs"),
    ],
)
def test_bad_chart_sets_are_named(kw, match):
    args = {
        "rates": [0.9, 0.6], "p_chart_centres": [0.9, 0.6], "cusums": [None, None],
        "horizon": 8, "n_simulations": 200, "seed": 1,
    }  # fmt: skip
    args.update(kw)
    with pytest.raises(StudyvalError, match=match):
        chart_set_false_alarm(29, **args)
