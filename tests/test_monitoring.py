"""p-chart and binomial CUSUM against hand computations of Montgomery's formulas."""

from __future__ import annotations

import math

import pytest

from studyval.analysis.monitoring import binomial_cusum, cusum_reference_value, p_chart
from studyval.errors import EstimationError, StudyvalError


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
        pytest.param({"n_per_period": 0}, "n_per_period must be a positive whole number", id="n"),
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


# ------------------------------------------------------------ exact run lengths and the choice of h

# R 4.2, an independent computation: the full Markov chain of the CUSUM on the states
# S = A - j k n (j periods since S was last 0, A their events), truncated at j = 150, solved as a
# linear system (the Python function sums an excursion forward and uses renewal instead):
#   kref <- function(p0, p1) -log((1 - p1) / (1 - p0)) / log(p1 * (1 - p0) / (p0 * (1 - p1)))
#   arl_chain <- function(n, p0, p1, h, rate, H = 8, J = 150) {
#     kn <- kref(p0, p1) * n
#     states <- data.frame(j = 0L, A = 0L)
#     for (j in 1:J) { A <- 0:(j * n); A <- A[A - j * kn > 0 & A - j * kn <= h]
#       if (length(A)) states <- rbind(states, data.frame(j = j, A = A)) }
#     key <- paste(states$j, states$A); Q <- matrix(0, nrow(states), nrow(states))
#     f <- dbinom(0:n, n, rate)
#     for (i in seq_len(nrow(states))) for (x in 0:n) {
#       A1 <- states$A[i] + x; j1 <- states$j[i] + 1L; s <- A1 - j1 * kn
#       if (s <= 0) Q[i, 1] <- Q[i, 1] + f[x + 1]
#       else if (s <= h) { t <- match(paste(j1, A1), key)
#         if (!is.na(t)) Q[i, t] <- Q[i, t] + f[x + 1] } }
#     L <- solve(diag(nrow(Q)) - Q, rep(1, nrow(Q)))
#     v <- c(1, rep(0, nrow(Q) - 1)); for (t in 1:H) v <- v %*% Q
#     c(arl = L[1], p_within = 1 - sum(v)) }
# printed with sprintf("%.10f  %.12f"): arl_chain(29, p0, p1, h, rate) ->
R_CHAIN = [
    # (n, p0, p1, h, rate, ARL, P(T <= 8))
    (29, 0.10, 0.23, 4.0, 0.10, 295.2849932156, 0.023765230893),
    (29, 0.10, 0.23, 4.0, 0.23, 2.7254321675, 0.994372102498),
    (29, 0.10, 0.23, 3.5, 0.10, 194.5778909282, 0.036033563132),
    (29, 0.10, 0.23, 5.0, 0.10, 799.7736556988, 0.008214112571),
    (29, 0.10, 0.23, 5.0, 0.23, 3.2077620626, 0.988296773351),
    (29, 0.40, 0.57, 5.0, 0.40, 193.6382599777, 0.035380447469),
    (29, 0.40, 0.57, 5.0, 0.57, 2.9167565158, 0.992793880026),
    (29, 0.40, 0.57, 4.5, 0.40, 96.8799574133, 0.073252936530),
    (29, 0.40, 0.57, 6.0, 0.40, 385.6751752162, 0.016866169736),
    (29, 0.10, 0.23, 10.0, 0.10, 105887.7635945373, 0.000041634607),
    # Bernoulli CUSUM (n = 1, one scan at a time), arl_chain(1, .01, .02, 3, .01, J = 3000),
    # printed with sprintf("%.12f %.10e"): 2293.050499534346 6.7787840363e-07
    (1, 0.01, 0.02, 3.0, 0.01, 2293.050499534346, 6.7787840363e-07),
]


@pytest.mark.parametrize(
    ("n", "p0", "p1", "h", "rate", "r_arl", "r_p8"),
    [pytest.param(*row, id=f"n{row[0]}-p0{row[1]}-h{row[3]}-rate{row[4]}") for row in R_CHAIN],
)
def test_exact_run_length_agrees_with_an_r_markov_chain(n, p0, p1, h, rate, r_arl, r_p8):
    from studyval.analysis.monitoring import cusum_run_length_exact

    r = cusum_run_length_exact(n, p0=p0, p1=p1, h=h, true_rate=rate, horizon=8)
    assert r.arl == pytest.approx(r_arl, rel=1e-6)
    assert r.p_signal_within == pytest.approx(r_p8, rel=1e-6, abs=1e-12)
    assert r.neglected_probability < 1e-12 * r.p_excursion_signals
    assert r.k == pytest.approx(cusum_reference_value(p0, p1), rel=1e-15)


def test_exact_run_length_closed_form_when_one_event_signals():
    """n = 1 and h < 1 - k: every event signals and every non-event returns S to 0, so the run
    length is geometric: ARL = 1/p, P(T <= 8) = 1 - (1 - p)^8 (by hand)."""
    from studyval.analysis.monitoring import cusum_run_length_exact

    k = cusum_reference_value(0.1, 0.3)  # 0.186
    r = cusum_run_length_exact(1, p0=0.1, p1=0.3, h=0.5, true_rate=0.1)
    assert 0.5 < 1 - k
    assert r.arl == pytest.approx(10.0, rel=1e-12)
    assert r.p_signal_within == pytest.approx(1 - 0.9**8, rel=1e-12)


@pytest.mark.parametrize(
    ("h", "rate"),
    [
        pytest.param(4, 0.10, id="detection-in-control"),
        pytest.param(4, 0.23, id="detection-out-of-control"),
        pytest.param(2.5, 0.10, id="detection-h2.5"),
    ],
)
def test_exact_run_length_agrees_with_the_seeded_simulation(h, rate):
    """The exact value lies within 4 Monte Carlo SEs of :func:`cusum_run_length` (whose own R
    oracle is above; 5,000 runs here). 200,000 runs (seed 5) gave 296.17 (SE 0.66), 2.7255
    (0.0034) and 78.04 (0.17) against the exact 295.28, 2.7254 and 78.15."""
    from studyval.analysis.monitoring import cusum_run_length, cusum_run_length_exact

    sim = cusum_run_length(
        29, p0=0.1, p1=0.23, h=h, true_rate=rate, n_simulations=5_000, seed=20210301
    )
    ex = cusum_run_length_exact(29, p0=0.1, p1=0.23, h=h, true_rate=rate)
    assert abs(sim.arl - ex.arl) < 4 * sim.se, (sim.arl, sim.se, ex.arl)
    se_p = math.sqrt(ex.p_signal_within * (1 - ex.p_signal_within) / 5_000)
    assert abs(sim.p_signal_within - ex.p_signal_within) < 4 * se_p + 1e-4


def test_choose_cusum_h_is_the_smallest_grid_value_reaching_the_target():
    from studyval.analysis.monitoring import choose_cusum_h

    grid = [0.5 * i for i in range(1, 21)]
    both = {"detection": (0.10, 0.23), "referral": (0.40, 0.57)}
    r = choose_cusum_h(29, rates=both, target_arl0=160, h_grid=grid, horizon=8)
    # R chain above: detection 108.3 at 3.0 < 160 <= 194.6 at 3.5; referral 96.9 at 4.5 < 160
    # <= 193.6 at 5.0; one h for both charts: 5
    assert r.h == 5.0 and r.n_charts == 2 and r.n_grid == 20
    f = r.to_frame()
    own = f[f["smallest_for_chart"]].set_index("chart")["h"].to_dict()
    assert own == {"detection": 3.5, "referral": 5.0}
    chosen = r.chosen_frame().set_index("chart")
    assert chosen.at["referral", "arl_in_control"] == pytest.approx(193.6382599777, rel=1e-6)
    assert chosen.at["detection", "arl_out_of_control"] == pytest.approx(3.2077620626, rel=1e-6)
    # the in-control ARL never falls along the grid; each chart's rule read in order
    for _, sub in f.groupby("chart"):
        arl0 = sub["arl_in_control"].to_numpy()
        assert (arl0[1:] >= arl0[:-1] - 1e-9 * arl0[:-1]).all()
        assert (sub["meets_target"] == (sub["arl_in_control"] >= 160)).all()
    one = choose_cusum_h(29, rates={"detection": (0.1, 0.23)}, target_arl0=160, h_grid=grid)
    assert one.h == 3.5
    assert r.summary_frame()["h"].tolist() == [5.0]
    assert choose_cusum_h(29, rates=both, target_arl0=160, h_grid=grid, horizon=8) == r
    # the union (Boole) bound on a false alarm of either chart within 8 weeks at h = 5: the sum
    # of the R chain's P(T <= 8) above, arl_chain(29, .1, .23, 5, .1)["p_within"] +
    # arl_chain(29, .4, .57, 5, .4)["p_within"] = 0.008214112571 + 0.035380447469
    assert r.p_false_alarm_union_bound == pytest.approx(0.043594560040, rel=1e-6)
    assert set(r.chosen_frame()["p_false_alarm_union_bound"]) == {r.p_false_alarm_union_bound}
    # at h = 0.5 the sum exceeds 1: the bound is capped at 1
    assert f.loc[f["h"] == 0.5, "p_false_alarm_union_bound"].tolist() == [1.0, 1.0]
    assert one.p_false_alarm_union_bound == pytest.approx(0.036033563132, rel=1e-6)  # h = 3.5


def test_choose_cusum_h_without_a_target_reports_the_declared_h():
    """Plans before 1.3.0 declare h: its exact run lengths (R chain above, h = 4: 295.2849932156
    and P(T <= 8) 0.023765230893 for detection) and the union bound, with no target columns."""
    from studyval.analysis.monitoring import choose_cusum_h

    both = {"detection": (0.10, 0.23), "referral": (0.40, 0.57)}
    r = choose_cusum_h(29, rates=both, target_arl0=None, h_grid=[4.0], horizon=8)
    f = r.to_frame().set_index("chart")
    assert r.h == 4.0 and r.target_arl0 is None and f["chosen"].all()
    assert f["meets_target"].isna().all() and f["smallest_for_chart"].isna().all()
    assert f.at["detection", "arl_in_control"] == pytest.approx(295.2849932156, rel=1e-6)
    assert r.p_false_alarm_union_bound == pytest.approx(
        f.at["detection", "p_false_alarm_within"] + f.at["referral", "p_false_alarm_within"],
        rel=1e-12,
    )
    with pytest.raises(StudyvalError, match="must hold one value"):
        choose_cusum_h(29, rates=both, target_arl0=None, h_grid=[4.0, 5.0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"h_grid": [0.5, 1, 2]}, EstimationError, "extend the grid", id="grid-short"),
        pytest.param({"h_grid": [1, 1, 2]}, StudyvalError, "strictly increasing", id="grid-order"),
        pytest.param({"h_grid": [0, 1]}, StudyvalError, "positive values", id="grid-zero"),
        pytest.param({"target_arl0": 1}, StudyvalError, "above 1", id="target"),
        pytest.param({"rates": {}}, StudyvalError, "at least one chart", id="no-chart"),
    ],
)
def test_choose_cusum_h_bad_inputs_are_named(kwargs, error, match):
    from studyval.analysis.monitoring import choose_cusum_h

    args = {"rates": {"detection": (0.1, 0.23)}, "target_arl0": 160, "h_grid": [3, 3.5, 4]}
    with pytest.raises(error, match=match):
        choose_cusum_h(29, **{**args, **kwargs})
