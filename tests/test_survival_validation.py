"""Tests for studyval.analysis.survival_validation.

Oracles
-------
* R 4.2.2 with riskRegression 2022.11.28, survival 3.5-3, prodlim 2019.11.13
  and rms 6.5-0. Values printed with ``options(digits = 17)``; the exact R
  call sits beside each expected value. R is a development oracle only.
* riskRegression's influence functions were read in its C++ source
  (``getIC0AUC``, ``getInfluenceFunctionAUCKMCensoringTerm``,
  ``getInfluenceFunctionBrierKMCensoringTerm``, ``getInfluenceFunctionKM``;
  tagteam/riskRegression at the commit of 2022-11-29) and re-derived in
  closed form; see the module docstring.
* Austin, Harrell & van Klaveren (2020) appendix code for the smooth
  calibration curve (``cph`` + ``rcs(cll, 3)`` + ``survest``).
* ``survival::survfit`` / ``survdiff`` for the Kaplan-Meier risk by group of
  predicted risk (``risk_groups_at_horizon``).

Data (``tests/data``)
---------------------
``pbc_competing.csv``: the 312 randomised patients of ``survival::pbc``
(status 0 = censored, 1 = liver transplant, 2 = death) with two frozen
predicted 5-year risks of death, exported once::

    d <- pbc[!is.na(pbc$trt), c("id","time","status","trt","age","sex","edema",
                                  "bili","albumin","protime")]
    d$sex <- as.integer(d$sex == "f"); d$dead <- as.integer(d$status == 2)
    fa <- coxph(Surv(time, dead) ~ age + log(bili) + albumin + edema + log(protime), d)
    fb <- coxph(Surv(time, dead) ~ age + log(bili), d)
    d$risk_a <- 1 - summary(survfit(fa, newdata = d), times = 1825)$surv
    d$risk_b <- 1 - summary(survfit(fb, newdata = d), times = 1825)$surv
    # written with sprintf("%.17g") for age, risk_a, risk_b

``competing_ties.csv``: 150 simulated subjects with whole-day times (many
ties, also between events and censorings), three causes and risks rounded to
2 decimals (many tied risks); ``set.seed(20240611)``, script in
``tests/test_cumulative_incidence.py``.

``survival_ties.csv`` (described in ``tests/test_survival_cox.py``): 400 subjects with
integer times and a rounded score; the risk-group tests use ``plogis(score)`` as the
predicted risk.

In R, ``d <- read.csv("pbc_competing.csv"); d$dead <- as.integer(d$status == 2)``
and ``e <- read.csv("competing_ties.csv"); e$ev <- as.integer(e$status == 1)``.

Deliberate deviations (documented in the module):
* riskRegression 2022.11.28 (and its current source) passes ``status * event``
  to the C++ influence function, which hard-codes code 1 = case and 2 =
  control: for ``cause = 2`` the SE is wrong and for a third cause the
  competing events drop out of the influence function. studyval gives what
  ``Score`` gives after recoding the cause of interest to the first state.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.discrimination import auc as binary_auc
from studyval.analysis.survival_validation import (
    BrierResult,
    CalibrationAtHorizonResult,
    TimeDependentAUCComparison,
    TimeDependentAUCResult,
    brier,
    calibration_at_horizon,
    compare_time_dependent_auc,
    risk_groups_at_horizon,
    time_dependent_auc,
)
from studyval.errors import EstimationError, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9  # observed agreement with R is ~1e-14


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    d = pd.read_csv(DATA / "pbc_competing.csv")
    d["dead"] = (d["status"] == 2).astype(int)
    return d


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    e = pd.read_csv(DATA / "competing_ties.csv")
    e["ev"] = (e["status"] == 1).astype(int)
    return e


# --------------------------------------------------------------------------- #
# time_dependent_auc against riskRegression::Score
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("column", "horizon", "conservative", "expected"),
    [
        # Score(list(a = d$risk_a, b = d$risk_b), formula = Hist(time, dead) ~ 1, data = d,
        #       times = 1825, metrics = "auc", se.fit = TRUE)$AUC$score
        pytest.param(
            "risk_a",
            1825,
            False,
            (0.91536210400020657, 0.020981448574541001, 0.87423922045062696, 0.95648498754978617),
            id="pbc-a-5y",
        ),
        pytest.param(
            "risk_b",
            1825,
            False,
            (0.90478857985119188, 0.020931081493757400, 0.86376441396595460, 0.94581274573642915),
            id="pbc-b-5y",
        ),
        # Score(list(a = d$risk_a), formula = Hist(time, dead) ~ 1, data = d, times = 3000,
        #       metrics = "auc", se.fit = TRUE)$AUC$score
        pytest.param(
            "risk_a",
            3000,
            False,
            (0.81413270139981442, 0.034668722541464442, 0.74618325382853223, 0.8820821489710966),
            id="pbc-a-3000d",
        ),
        # ... the same with conservative = TRUE
        pytest.param(
            "risk_a",
            3000,
            True,
            (0.81413270139981442, 0.034887274877480744, 0.74575489912120319, 0.88251050367842565),
            id="pbc-a-3000d-conservative",
        ),
    ],
)
def test_auc_against_score(pbc, column, horizon, conservative, expected):
    r = time_dependent_auc(
        pbc["time"], pbc["dead"], pbc[column], horizon=horizon, conservative=conservative
    )
    assert isinstance(r, TimeDependentAUCResult)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx(expected, rel=REL)
    assert r.conservative is conservative and r.cause is None and r.ci_level == 0.95


def test_auc_counts_pbc(pbc):
    r = time_dependent_auc(pbc["time"], pbc["dead"], pbc["risk_a"], horizon=1825)
    # sum(d$time <= 1825 & d$dead == 1); sum(d$time > 1825); sum(d$time <= 1825 & d$dead == 0)
    assert (r.n_cases, r.n_controls, r.n_censored_before_horizon) == (85, 159, 68)
    assert r.n_cases + r.n_controls + r.n_censored_before_horizon == len(pbc)
    est, lo, hi = r
    assert lo < est < hi


def test_auc_ties_against_score(ties):
    # Score(list(r = e$risk), formula = Hist(time, ev) ~ 1, data = e, times = 8,
    #       metrics = "auc", se.fit = TRUE)$AUC$score   (90 tied risks, tied times)
    r = time_dependent_auc(ties["time"], ties["ev"], ties["risk"], horizon=8)
    expected = (0.75359216012495267, 0.059843765749325498, 0.63630053455702307, 0.87088378569288227)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx(expected, rel=REL)


def test_compare_against_score_contrasts(pbc):
    # Score(list(a = d$risk_a, b = d$risk_b), formula = Hist(time, dead) ~ 1, data = d,
    #       times = 1825, metrics = "auc", se.fit = TRUE)$AUC$contrasts
    # delta.AUC (b - a) = -0.01057352414901469, se = 0.01365857015689359,
    # p = 0.43885325877085035
    c = compare_time_dependent_auc(
        pbc["time"], pbc["dead"], pbc["risk_a"], pbc["risk_b"], horizon=1825
    )
    assert isinstance(c, TimeDependentAUCComparison)
    assert c.difference == pytest.approx(0.01057352414901469, rel=1e-9)
    assert c.se == pytest.approx(0.01365857015689359, rel=REL)
    assert c.p_value == pytest.approx(0.43885325877085035, rel=REL)
    # Score's interval of delta (b - a) is [-0.037343829736839716, 0.016196781438810336]
    assert (c.ci_low, c.ci_high) == pytest.approx(
        (-0.016196781438810336, 0.037343829736839716), rel=REL
    )
    assert c.auc_a == pytest.approx(0.91536210400020657, rel=REL)
    z, _ = c
    assert z == pytest.approx(c.difference / c.se)


def test_compare_conservative_against_score(pbc):
    # same Score call with conservative = TRUE: se = 0.013659053460849235, p = 0.43886945549391887
    c = compare_time_dependent_auc(
        pbc["time"], pbc["dead"], pbc["risk_a"], pbc["risk_b"], horizon=1825, conservative=True
    )
    assert c.se == pytest.approx(0.013659053460849235, rel=REL)
    assert c.p_value == pytest.approx(0.43886945549391887, rel=REL)


# --------------------------------------------------------------------------- #
# Competing risks AUC
# --------------------------------------------------------------------------- #
def test_competing_auc_cause1_against_score(pbc):
    # Score(list(a = d$risk_a), formula = Hist(time, status) ~ 1, data = d, times = 1825,
    #       metrics = "auc", cause = 1, se.fit = TRUE)$AUC$score   (1 = transplant)
    r = time_dependent_auc(pbc["time"], pbc["status"], pbc["risk_a"], horizon=1825, cause=1)
    expected = (0.59786841039446825, 0.045258467988930136, 0.50916344314070627, 0.68657337764823023)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx(expected, rel=REL)
    assert r.cause == 1


def test_competing_auc_cause2_against_score_recoded(pbc):
    # Score reports for cause = 2 the AUC 0.91143763958923363 but se 0.096529976619797023
    # (its C++ influence function treats code 1 as the case). With the cause of interest
    # recoded to the first state it agrees with studyval:
    # d$sw <- ifelse(d$status == 0, 0, 3 - d$status)
    # Score(list(a = d$risk_a, b = d$risk_b), formula = Hist(time, sw) ~ 1, data = d,
    #       times = 1825, metrics = "auc", cause = 1, se.fit = TRUE)
    r = time_dependent_auc(pbc["time"], pbc["status"], pbc["risk_a"], horizon=1825, cause=2)
    expected = (0.91143763958923363, 0.021301594375042199, 0.86968728180086996, 0.9531879973775973)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx(expected, rel=REL)
    c = compare_time_dependent_auc(
        pbc["time"], pbc["status"], pbc["risk_a"], pbc["risk_b"], horizon=1825, cause=2
    )
    # contrasts: delta.AUC = -0.0132532664508479, se = 0.013684521966459057,
    # p = 0.33280176194751071
    assert c.difference == pytest.approx(0.0132532664508479, rel=1e-9)
    assert c.se == pytest.approx(0.013684521966459057, rel=REL)
    assert c.p_value == pytest.approx(0.33280176194751071, rel=REL)


def test_competing_auc_three_causes(ties):
    # Three causes: studyval equals Score with causes 2 and 3 merged (both competing):
    # e2 <- e; e2$status2 <- pmin(e2$status, 2)
    # Score(list(r = e2$risk), formula = Hist(time, status2) ~ 1, data = e2, times = 8,
    #       metrics = "auc", cause = 1, se.fit = TRUE)$AUC$score
    # Score on the three-cause data gives the same AUC but se 0.046020730579911358.
    r3 = time_dependent_auc(ties["time"], ties["status"], ties["risk"], horizon=8, cause=1)
    merged = np.minimum(ties["status"], 2)
    r2 = time_dependent_auc(ties["time"], merged, ties["risk"], horizon=8, cause=1)
    expected = (0.7574994389300963, 0.04504298213078347, 0.66921681619747952, 0.84578206166271308)
    assert (r3.estimate, r3.se, r3.ci_low, r3.ci_high) == pytest.approx(expected, rel=REL)
    assert (r2.estimate, r2.se) == pytest.approx((r3.estimate, r3.se), rel=1e-12)


def test_competing_auc_equals_survival_auc_without_competing_events(pbc):
    # with no competing events, cause=1 on 0/1 data is the ordinary AUC
    a = time_dependent_auc(pbc["time"], pbc["dead"], pbc["risk_a"], horizon=1825)
    b = time_dependent_auc(pbc["time"], pbc["dead"], pbc["risk_a"], horizon=1825, cause=1)
    assert (a.estimate, a.se) == pytest.approx((b.estimate, b.se), rel=1e-13)


# --------------------------------------------------------------------------- #
# Properties of the AUC
# --------------------------------------------------------------------------- #
@st.composite
def _survival_data(draw):
    n = draw(st.integers(min_value=8, max_value=40))
    time = draw(
        st.lists(st.integers(min_value=1, max_value=30), min_size=n, max_size=n).map(np.array)
    )
    event = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).map(np.array))
    risk = draw(st.permutations(list(range(n)))).copy()
    return time.astype(float), event, np.asarray(risk, dtype=float) / n


@settings(deadline=None, max_examples=60)
@given(_survival_data(), st.integers(min_value=3, max_value=25))
def test_auc_of_negated_risk_is_one_minus_auc(data, horizon):
    time, event, risk = data
    if not ((time <= horizon) & (event == 1)).any() or not (time > horizon).any():
        return
    a = time_dependent_auc(time, event, risk, horizon=horizon)
    b = time_dependent_auc(time, event, -risk, horizon=horizon)
    assert b.estimate == pytest.approx(1.0 - a.estimate, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9, abs=1e-14)
    assert 0.0 <= a.estimate <= 1.0


@settings(deadline=None, max_examples=40)
@given(_survival_data(), st.integers(min_value=3, max_value=25))
def test_compare_swapping_models_flips_sign(data, horizon):
    time, event, risk = data
    if not ((time <= horizon) & (event == 1)).any() or not (time > horizon).any():
        return
    other = np.roll(risk, 1)
    ab = compare_time_dependent_auc(time, event, risk, other, horizon=horizon)
    ba = compare_time_dependent_auc(time, event, other, risk, horizon=horizon)
    assert ba.difference == pytest.approx(-ab.difference, abs=1e-12)
    assert ba.se == pytest.approx(ab.se, rel=1e-9, abs=1e-14)
    assert ba.p_value == pytest.approx(ab.p_value, rel=1e-9)


def test_compare_identical_models_is_degenerate(pbc):
    c = compare_time_dependent_auc(
        pbc["time"], pbc["dead"], pbc["risk_a"], pbc["risk_a"], horizon=1825
    )
    assert (c.difference, c.se, c.z, c.p_value) == (0.0, 0.0, 0.0, 1.0)


def test_auc_invariant_to_monotone_transform_and_row_order(pbc):
    base = time_dependent_auc(pbc["time"], pbc["dead"], pbc["risk_a"], horizon=1825)
    # risk_a reaches 1.0 for one patient, so use a transform defined on [0, 1]
    t = time_dependent_auc(pbc["time"], pbc["dead"], np.sqrt(pbc["risk_a"]) * 7 - 2, horizon=1825)
    perm = np.random.default_rng(1).permutation(len(pbc))
    p = time_dependent_auc(
        pbc["time"].to_numpy()[perm],
        pbc["dead"].to_numpy()[perm],
        pbc["risk_a"].to_numpy()[perm],
        horizon=1825,
    )
    assert (t.estimate, t.se) == pytest.approx((base.estimate, base.se), rel=1e-12)
    assert (p.estimate, p.se) == pytest.approx((base.estimate, base.se), rel=1e-12)


def test_auc_without_censoring_is_the_binary_auc():
    # no censoring before the horizon: all IPC weights are 1 and the AUC is Mann-Whitney's
    rng = np.random.default_rng(7)
    time = rng.integers(1, 50, 200).astype(float)
    event = np.where(time <= 20, 1, rng.integers(0, 2, 200))
    risk = -time + rng.normal(0, 10, 200)
    r = time_dependent_auc(time, event, risk, horizon=20)
    b = binary_auc((time <= 20).astype(int), risk, positive=1)
    assert r.estimate == pytest.approx(b.estimate, rel=1e-12)
    assert r.n_censored_before_horizon == 0


# --------------------------------------------------------------------------- #
# Brier score
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("conservative", "model", "null"),
    [
        # Score(list(a = d$risk_a), formula = Hist(time, dead) ~ 1, data = d, times = 1825,
        #       metrics = "brier", summary = "ipa", se.fit = TRUE)$Brier$score
        pytest.param(
            False,
            (0.10032026616320817, 0.011548888335348248, 0.077684860964450875, 0.12295567136196547),
            (0.20559371760748674, 0.011301419915810964, 0.183443341598333559, 0.22774409361663991),
            id="default",
        ),
        # ... conservative = TRUE
        pytest.param(
            True,
            (0.10032026616320817, 0.011739680468960720, 0.077310915254036883, 0.12332961707237947),
            (0.20559371760748674, 0.011847126822581655, 0.182373775714948255, 0.22881365950002522),
            id="conservative",
        ),
    ],
)
def test_brier_against_score(pbc, conservative, model, null):
    r = brier(pbc["time"], pbc["dead"], pbc["risk_a"], horizon=1825, conservative=conservative)
    assert isinstance(r, BrierResult)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx(model, rel=REL)
    assert (r.null_estimate, r.null_se, r.null_ci_low, r.null_ci_high) == pytest.approx(
        null, rel=REL
    )
    # IPA column: 0.51204605213308818
    assert r.ipa == pytest.approx(0.51204605213308818, rel=REL)
    # 1 - summary(survfit(Surv(time, dead) ~ 1, d), times = 1825)$surv
    assert r.null_risk == pytest.approx(1 - 0.71072798198747456, rel=1e-9)
    assert (r.n_events, r.n_event_free, r.n_censored_before_horizon) == (85, 159, 68)


def test_brier_ties_against_score(ties):
    # Score(list(r = e$risk), formula = Hist(time, ev) ~ 1, data = e, times = 8,
    #       metrics = "brier", summary = "ipa", se.fit = TRUE)$Brier$score
    r = brier(ties["time"], ties["ev"], ties["risk"], horizon=8)
    assert (r.estimate, r.se) == pytest.approx(
        (0.21908642456064867, 0.0241794083362697511), rel=REL
    )
    assert (r.null_estimate, r.null_se) == pytest.approx(
        (0.24786835231259810, 0.0057426337764342533), rel=REL
    )
    assert r.ipa == pytest.approx(0.11611779996685989, rel=REL)


def test_brier_without_censoring_is_mean_squared_error():
    rng = np.random.default_rng(3)
    time = rng.integers(1, 30, 100).astype(float)
    event = np.ones(100, dtype=int)
    p = rng.uniform(0, 1, 100)
    r = brier(time, event, p, horizon=10)
    y = (time <= 10).astype(float)
    assert r.estimate == pytest.approx(np.mean((y - p) ** 2), rel=1e-12)
    assert r.null_risk == pytest.approx(y.mean(), rel=1e-12)
    assert r.null_estimate == pytest.approx(y.mean() * (1 - y.mean()), rel=1e-12)
    assert r.to_frame().shape[0] == 1
    est, lo, hi = r
    assert lo <= est <= hi


# --------------------------------------------------------------------------- #
# Calibration at the horizon
# --------------------------------------------------------------------------- #
def test_calibration_smooth_against_austin_code(pbc):
    # d$cll <- log(-log(1 - d$risk_b))
    # f <- cph(Surv(time, dead) ~ rcs(cll, 3), data = d, x = TRUE, y = TRUE, surv = TRUE,
    #          eps = 1e-12)
    # obs <- 1 - survest(f, newdata = d, times = 1825)$surv; err <- abs(obs - d$risk_b)
    # c(mean(err), median(err), quantile(err, 0.9), max(err))
    r = calibration_at_horizon(pbc["time"], pbc["dead"], pbc["risk_b"], horizon=1825)
    assert isinstance(r, CalibrationAtHorizonResult)
    assert (r.ici, r.e50, r.e90, r.emax) == pytest.approx(
        (0.021304364307574035, 0.019500116680804813, 0.043511020443386256, 0.046525051992855282),
        rel=1e-9,
    )
    # attr(rcs(d$cll, 3), "parms"); coef(f)
    assert r.knots == pytest.approx(
        (-2.81461539066829047, -1.64983225143351975, 0.27515662890278225), rel=1e-12
    )
    assert r.spline_coef == pytest.approx((1.54106167442661302, -0.62808575192505811), rel=1e-8)
    # grid <- seq(quantile(d$risk_b, .01), quantile(d$risk_b, .99), length = 100)
    # 1 - survest(f, newdata = data.frame(cll = log(-log(1 - grid))), times = 1825)$surv
    curve = r.curve_frame()
    assert curve.shape == (100, 2)
    assert curve["predicted"].iloc[[0, 49, 99]].tolist() == pytest.approx(
        [0.037163213624746845, 0.508713958445340508, 0.989888187854109591], rel=1e-12
    )
    assert curve["observed"].iloc[[0, 49, 99]].tolist() == pytest.approx(
        [0.018401638487501981, 0.549569685273519681, 0.977498162716003760], rel=1e-9
    )


def test_calibration_small_sample_knots(pbc):
    # s <- d[1:80, ]: n < 100, so the outer knots are the 5th smallest and largest values
    # attr(rcs(s$cll, 3), "parms"); then the Austin code above on s
    s = pbc.iloc[:80]
    r = calibration_at_horizon(s["time"], s["dead"], s["risk_b"], horizon=1825, groups=4)
    assert r.knots == pytest.approx(
        (-2.8837337405172212, -1.5733182498271387, 1.1970156093661852), rel=1e-12
    )
    assert (r.ici, r.e50, r.e90, r.emax) == pytest.approx(
        (0.037578706995233073, 0.025674811959839505, 0.098560509482968309, 0.138352163846197196),
        rel=1e-9,
    )


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        # g <- cut(d$risk_b, quantile(d$risk_b, seq(0, 1, 0.1)), include.lowest = TRUE)
        # s <- summary(survfit(Surv(time, dead) ~ 1, d, subset = g == levels(g)[k],
        #              conf.type = "log-log"), times = 1825)
        # c(1 - s$surv, s$std.err, 1 - s$upper, 1 - s$lower, mean(d$risk_b[g == levels(g)[k]]))
        pytest.param(
            3,
            (
                0.129032258064516014,
                0.060210098403702124,
                0.050490636859105598,
                0.308142963378287615,
                0.093368302085159574,
            ),
            id="decile-3",
        ),
        pytest.param(
            7,
            (
                0.372776726995089125,
                0.097155852076362112,
                0.215964083311436128,
                0.591097091612111436,
                0.294012415387411907,
            ),
            id="decile-7",
        ),
        pytest.param(
            10,
            (
                0.775000000000000022,
                0.081081556164148694,
                0.605063811207698254,
                0.908827796846717662,
                0.901186985152327535,
            ),
            id="decile-10",
        ),
    ],
)
def test_calibration_groups_against_survfit(pbc, group, expected):
    r = calibration_at_horizon(pbc["time"], pbc["dead"], pbc["risk_b"], horizon=1825)
    row = r.to_frame().set_index("group").loc[group]
    got = (row["observed"], row["se"], row["ci_low"], row["ci_high"], row["mean_predicted"])
    assert got == pytest.approx(expected, rel=1e-9)


def test_calibration_table_counts(pbc):
    r = calibration_at_horizon(pbc["time"], pbc["dead"], pbc["risk_b"], horizon=1825)
    tab = r.to_frame()
    # table(cut(...)): 32 31 31 31 31 31 31 31 31 32
    assert tab["n"].tolist() == [32, 31, 31, 31, 31, 31, 31, 31, 31, 32]
    assert r.n_groups == 10 and r.n == 312 and r.n_events == 85
    assert tab["n_events"].sum() == r.n_events
    assert r.observed_risk == pytest.approx(1 - 0.71072798198747456, rel=1e-9)
    frame = r.summary_frame()
    assert {"ici", "e50", "e90", "emax", "horizon"} <= set(frame.columns)
    assert "groups_table" not in frame.columns


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
T = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
E = [1, 1, 0, 1, 0, 0]
R = [0.9, 0.8, 0.5, 0.3, 0.4, 0.1]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"horizon": 0}, StudyvalError, r"horizon must be finite and > 0", id="zero"),
        pytest.param({"horizon": -1.0}, StudyvalError, r"horizon must be finite and > 0", id="neg"),
        pytest.param({"horizon": math.nan}, StudyvalError, r"horizon must be finite", id="nan"),
        pytest.param({"horizon": "1"}, StudyvalError, r"horizon must be a number", id="str"),
        pytest.param(
            {"horizon": 6.0},
            EstimationError,
            r"at or beyond the last follow-up time 6",
            id="at-end",
        ),
        pytest.param(
            {"horizon": 60.0}, EstimationError, r"at or beyond the last follow-up", id="beyond"
        ),
        pytest.param({"horizon": 0.5}, EstimationError, r"no event at or before", id="no-case"),
        pytest.param({"horizon": 3, "alpha": 1.5}, StudyvalError, r"alpha must be in", id="alpha"),
    ],
)
def test_auc_horizon_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        time_dependent_auc(T, E, R, **kwargs)


@pytest.mark.parametrize(
    ("time", "event", "risk", "kwargs", "exc", "match"),
    [
        pytest.param(
            [1.0, -2.0, 3.0],
            [1, 0, 1],
            [0.1, 0.2, 0.3],
            {},
            StudyvalError,
            r"time must be >= 0.*position 1: -2.0",
            id="negative-time",
        ),
        pytest.param(
            [1.0, np.nan, 3.0],
            [1, 0, 1],
            [0.1, 0.2, 0.3],
            {},
            StudyvalError,
            r"time has 1 missing",
            id="missing-time",
        ),
        pytest.param(
            T, [0] * 6, R, {}, EstimationError, r"all 6 subjects are censored", id="all-censored"
        ),
        pytest.param(
            T,
            [1, 2, 0, 1, 0, 0],
            R,
            {},
            StudyvalError,
            r"event must be 0 \(censored\) or 1.*pass cause=",
            id="codes-without-cause",
        ),
        pytest.param(
            T,
            E,
            [0.1, np.inf, 0.3, 0.4, 0.5, 0.6],
            {},
            StudyvalError,
            r"risk has 1 non-finite value\(s\); first at position 1",
            id="inf-risk",
        ),
        pytest.param(
            T, E, R[:5], {}, StudyvalError, r"risk has 5 values but time has 6", id="length"
        ),
        pytest.param(
            T,
            [1, 2, 0, 1, 0, -1],
            R,
            {"cause": 1},
            StudyvalError,
            r"non-negative integer codes",
            id="negative-code",
        ),
        pytest.param(
            T, E, R, {"cause": 0}, StudyvalError, r"cause must be a positive", id="cause-0"
        ),
    ],
)
def test_auc_input_errors(time, event, risk, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        time_dependent_auc(time, event, risk, horizon=3.5, **kwargs)


def test_compare_errors():
    with pytest.raises(StudyvalError, match=r"names must be distinct"):
        compare_time_dependent_auc(T, E, R, R, horizon=3.5, names=("m", "m"))
    with pytest.raises(StudyvalError, match=r"risk_b has 5 values"):
        compare_time_dependent_auc(T, E, R, R[:5], horizon=3.5)


@pytest.mark.parametrize(
    ("p", "match"),
    [
        pytest.param([0.9, 0.8, 0.5, 0.3, 1.2, 0.1], r"in \[0, 1\].*position 4: 1.2", id="above-1"),
        pytest.param([0.9, 0.8, -0.5, 0.3, 0.2, 0.1], r"in \[0, 1\].*position 2", id="below-0"),
    ],
)
def test_brier_errors(p, match):
    with pytest.raises(StudyvalError, match=match):
        brier(T, E, p, horizon=3.5)


def test_calibration_errors(pbc):
    with pytest.raises(StudyvalError, match=r"strictly between 0 and 1.*position 0: 0.0"):
        calibration_at_horizon(T, E, [0.0, 0.8, 0.5, 0.3, 0.2, 0.1], horizon=3.5)
    with pytest.raises(StudyvalError, match=r"groups must be a whole number >= 1"):
        calibration_at_horizon(T, E, R, horizon=3.5, groups=0)
    # risk groups whose follow-up ends before the horizon
    d = pbc.sort_values("risk_b")
    early = d["time"].where(d["risk_b"] > 0.06, np.minimum(d["time"], 1000))
    with pytest.raises(EstimationError, match=r"risk group 1 .* no follow-up up to horizon=1825"):
        calibration_at_horizon(
            early, d["dead"].where(early == d["time"], 0), d["risk_b"], horizon=1825
        )
    with pytest.raises(EstimationError, match=r"more than 5 distinct predicted risks"):
        calibration_at_horizon(T, E, [0.2, 0.2, 0.3, 0.3, 0.2, 0.3], horizon=3.5)


# --------------------------------------------------------------------------- #
# risk_groups_at_horizon against survival::survfit
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def survival_ties() -> pd.DataFrame:
    """``survival_ties.csv`` (tests/test_survival_cox.py): 400 subjects, integer times, a score."""
    return pd.read_csv(DATA / "survival_ties.csv")


def close(actual, expected, rel=REL):
    np.testing.assert_allclose(np.asarray(actual, float), np.asarray(expected, float), rtol=rel)


def test_risk_groups_at_horizon_against_survfit(survival_ties):
    # d <- read.csv("survival_ties.csv"); p <- plogis(d$score); g <- findInterval(p, c(0.3, 0.6))
    # s <- summary(survfit(Surv(time, status) ~ g, data = d, conf.type = "log"), times = 8)
    # 1 - s$surv; 1 - s$upper; 1 - s$lower; tapply(p, g, mean); table(g)
    # survdiff(Surv(time, status) ~ g, data = d)$chisq
    p = 1.0 / (1.0 + np.exp(-survival_ties["score"].to_numpy(float)))
    r = risk_groups_at_horizon(
        survival_ties["time"],
        survival_ties["status"],
        p,
        horizon=8.0,
        cuts=[0.3, 0.6],
        labels=["low", "mid", "high"],
    )
    tab = r.to_frame()
    assert list(tab.columns) == [
        "group",
        "order",
        "n",
        "mean_predicted",
        "km_risk",
        "ci_low",
        "ci_high",
    ]
    assert list(tab["group"]) == ["low", "mid", "high"] and list(tab["order"]) == [0, 1, 2]
    assert list(tab["n"]) == [98, 172, 130]
    close(tab["km_risk"], [0.51590945530339472, 0.59756366269925454, 0.79448974447197684])
    close(tab["ci_low"], [0.39892261572339582, 0.51528144111093033, 0.70995181997448598])
    close(tab["ci_high"], [0.61012731206533699, 0.66587826562443708, 0.85438810502628137])
    close(tab["mean_predicted"], [0.18433216797748167, 0.44531840975657022, 0.74646007990906726])
    close(r.km.logrank.chisq, 32.477666519854253)
    assert r.horizon == 8.0 and r.ci_level == 0.95 and r.conf_type == "log"
    # every subject is in the group of its risk
    assert list(pd.Series(r.groups).value_counts().reindex(["low", "mid", "high"])) == [
        98,
        172,
        130,
    ]
    # log-log limits: summary(survfit(..., conf.type = "log-log"), times = 8); 1 - s$upper
    ll = risk_groups_at_horizon(
        survival_ties["time"],
        survival_ties["status"],
        p,
        horizon=8.0,
        cuts=[0.3, 0.6],
        conf_type="log-log",
    ).to_frame()
    close(ll["ci_low"], [0.41628123803614037, 0.52382313940847558, 0.7199092843006436])
    assert list(ll["group"]) == ["< 30%", "30%-60%", ">= 60%"]


def test_risk_groups_leave_out_an_empty_group_and_keep_the_order(survival_ties):
    p = np.full(survival_ties.shape[0], 0.5)
    p[:10] = 0.05
    tab = risk_groups_at_horizon(
        survival_ties["time"], survival_ties["status"], p, horizon=8.0, cuts=[0.1, 0.2, 0.9]
    ).to_frame()
    assert list(tab["group"]) == ["< 10%", "20%-90%"]
    assert list(tab["order"]) == [0, 2]
    assert tab["n"].sum() == survival_ties.shape[0]


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"cuts": []}, StudyvalError, "cuts must be one or more", id="no-cuts"),
        pytest.param({"cuts": [0.0, 0.5]}, StudyvalError, "strictly between 0 and 1", id="cut-0"),
        pytest.param({"cuts": [0.5, 0.2]}, StudyvalError, "strictly increasing", id="order"),
        pytest.param({"cuts": [0.5], "labels": ["a"]}, StudyvalError, "labels must be 2 distinct", id="labels"),
        pytest.param({"cuts": [0.5], "labels": ["a", "a"]}, StudyvalError, "distinct", id="dup-labels"),
        pytest.param({"cuts": [0.5], "horizon": 1e3}, EstimationError, "at or beyond the last", id="horizon"),
    ],
)  # fmt: skip
def test_risk_groups_errors(survival_ties, kwargs, exc, match):
    p = np.linspace(0.01, 0.99, survival_ties.shape[0])
    args = {"horizon": 8.0, **kwargs}
    with pytest.raises(exc, match=match):
        risk_groups_at_horizon(survival_ties["time"], survival_ties["status"], p, **args)


def test_risk_groups_reject_a_risk_outside_0_1(survival_ties):
    p = np.linspace(0.01, 1.5, survival_ties.shape[0])
    with pytest.raises(StudyvalError, match="predicted_risk must be a predicted risk in"):
        risk_groups_at_horizon(
            survival_ties["time"], survival_ties["status"], p, horizon=8.0, cuts=[0.5]
        )
