"""Tests for studyval.analysis.calibration.

Oracles
-------
* R 4.2.2 with rms 6.5.0: ``rms::val.prob(p, y, pl = FALSE)`` for Intercept,
  Slope, Brier, Emax, E90, Eavg, S:z and S:p. The exact R calls sit beside the
  expected values, printed with ``sprintf("%.17g", ...)``. R is a development
  oracle only; nothing here runs R.
* R's ``glm`` with ``control = glm.control(epsilon = 1e-14, maxit = 100)`` for
  the calibration-in-the-large (``glm(y ~ 1, offset = qlogis(p), family =
  binomial)``), the joint recalibration (``glm(y ~ qlogis(p), family =
  binomial)``), their standard errors and ``confint.default`` (Wald).
* R's ``lowess(p, y, iter = 0)``, ``approx`` and ``quantile`` (type 7) for E50
  and the curve, mirroring the code inside ``val.prob``.

Data (exported once to R as text; embedded below)
--------------------------------------------------
* ``well``: 300 simulated predictions, ``p ~ U(0.02, 0.98)`` rounded to 4
  decimals, ``y ~ Bernoulli(p)`` (numpy ``default_rng(20240611)``).
* ``over``: 300 over-confident predictions ``p = expit(2 logit(q))``,
  ``q ~ U(0.05, 0.95)``, ``y ~ Bernoulli(q)`` (true slope 0.5).
* ``bc``: scikit-learn's breast-cancer data (malignant = positive), a ridge
  logistic model (``LogisticRegression(C=0.05)`` on standardised mean radius,
  texture, smoothness and concave points) fitted on the even rows, predictions
  (linear predictors, 6 significant digits; ``p = plogis(lp)``) on the 284 odd
  rows. Under-confident (slope about 2.9): strong shrinkage.
* ``tests/data/pima_te_glm.csv``: ``MASS::Pima.te`` (332 Pima women, diabetes
  test set; MASS 7.3-58.2, GPL-2 | GPL-3; Venables & Ripley 2002, *Modern
  Applied Statistics with S*; originally the US National Institute of
  Diabetes and Digestive and Kidney Diseases) with ``p_glm``, the fitted
  probabilities of ``glm(type ~ ., binomial, Pima.te)`` (R 4.2.2, printed
  ``%.17g``). Written by ``d <- Pima.te; d$p_glm <- sprintf("%.17g",
  fitted(glm(type ~ ., binomial, Pima.te))); write.csv(d, row.names = FALSE,
  quote = FALSE)``. Used for a separated outcome (``y = p_glm > 0.3``).

Documented differences from the oracles
----------------------------------------
* rms' ``lrm.fit`` stops early: its Intercept/Slope for ``bc`` are 1.6e-7
  (relative) from the maximum-likelihood values that ``glm`` with a tight
  tolerance and our Newton-Raphson both reach. So rms is checked at the
  required 1e-6, the tight ``glm`` at 1e-9.
* ``confint.default(glm)`` uses the information at glm's last-but-one iterate
  (2e-8 relative off for ``over``); the standard errors are therefore also
  checked against the information at glm's final coefficients, computed by
  hand in R (``solve(crossprod(X, X * (mu * (1 - mu))))``), at 1e-9.
* The lowess is our exact port of R's ``clowess`` (``statsmodels``' lowess
  differs from R by ~1e-7 on untied data and by 0.28 on the heavily tied data
  of :func:`test_lowess_against_R_heavy_ties`).
"""

from __future__ import annotations

import bisect
import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit

from studyval.analysis import calibration as calibration_module
from studyval.analysis.calibration import (
    _NEWTON_MAX_ITER,
    _NEWTON_TOL,
    LOWESS_FRAC,
    MEASURES,
    CalibrationMeasure,
    CalibrationResult,
    _logistic_fit,
    _quantile_type7,
    _separated,
    _Statistic,
    calibration,
    curves_frame,
    histograms_frame,
    lowess_counts,
)
from studyval.errors import EstimationError, StudyvalError

REL_R = 1e-6  # the requirement (rms' own convergence tolerance limits it)
REL = 1e-9  # against glm with a tight tolerance and R's lowess / quantile

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
WELL_P = """
0.2021 0.9799 0.5832 0.8217 0.2751 0.1280 0.7746 0.5191 0.9188 0.6387 0.2079 0.5080
0.6702 0.7709 0.2949 0.7799 0.4246 0.8331 0.5906 0.1706 0.9164 0.6405 0.1430 0.9053
0.8820 0.3518 0.8701 0.2873 0.6857 0.0724 0.3290 0.3032 0.9062 0.1615 0.2320 0.4686
0.9710 0.5445 0.0767 0.5016 0.4921 0.0891 0.4353 0.5299 0.3696 0.3229 0.7665 0.6304
0.6834 0.8608 0.6669 0.4850 0.3792 0.3153 0.0530 0.0641 0.6913 0.6563 0.3370 0.4700
0.9302 0.9243 0.1746 0.7461 0.1084 0.7692 0.5012 0.3855 0.7172 0.5534 0.7857 0.8150
0.2995 0.7075 0.2294 0.5024 0.3297 0.4416 0.7643 0.4292 0.9634 0.1972 0.3571 0.1172
0.0343 0.5432 0.5267 0.4421 0.3064 0.0433 0.1391 0.5594 0.2366 0.2553 0.7992 0.6392
0.4141 0.6890 0.5604 0.1250 0.8533 0.5149 0.3496 0.4913 0.3989 0.5603 0.1205 0.4048
0.5995 0.6705 0.1525 0.6781 0.7553 0.8390 0.2877 0.3834 0.2226 0.9290 0.3166 0.8117
0.8231 0.0754 0.5960 0.5641 0.2732 0.5459 0.4904 0.6816 0.6764 0.6321 0.2866 0.0850
0.6838 0.3489 0.5699 0.2963 0.4282 0.5057 0.2083 0.3031 0.0850 0.5136 0.2834 0.7968
0.6008 0.8342 0.9508 0.5787 0.8935 0.2721 0.8753 0.4640 0.4856 0.1441 0.1349 0.3264
0.7742 0.0373 0.9131 0.1183 0.3189 0.6967 0.7017 0.9241 0.9058 0.6914 0.0472 0.2195
0.1594 0.1245 0.4097 0.0220 0.3655 0.1523 0.6891 0.5546 0.6617 0.8344 0.1248 0.3331
0.2371 0.1917 0.8667 0.5176 0.1811 0.4244 0.8624 0.1173 0.0956 0.8569 0.9778 0.8529
0.2038 0.1930 0.8418 0.7866 0.0717 0.7706 0.2915 0.5554 0.3887 0.4962 0.1754 0.4300
0.6272 0.9640 0.8424 0.2974 0.5014 0.5834 0.3173 0.2937 0.0286 0.5162 0.3511 0.3419
0.4826 0.3004 0.8292 0.1205 0.0974 0.8308 0.5477 0.6933 0.8209 0.2664 0.7214 0.6598
0.3921 0.5478 0.4139 0.7903 0.4855 0.3768 0.6292 0.3060 0.3279 0.5944 0.7413 0.4200
0.3710 0.4306 0.8033 0.5900 0.0278 0.7538 0.5882 0.1242 0.1909 0.9528 0.1197 0.1871
0.6361 0.2827 0.1117 0.0403 0.2666 0.7439 0.0254 0.9363 0.2876 0.8133 0.9123 0.6280
0.0665 0.0361 0.2609 0.6414 0.3082 0.1598 0.2694 0.7233 0.3469 0.7980 0.1974 0.4589
0.6747 0.2436 0.2054 0.5210 0.8648 0.5855 0.9288 0.9101 0.8339 0.0958 0.9431 0.7899
0.8285 0.6936 0.2052 0.3326 0.8480 0.6241 0.0446 0.6489 0.6876 0.5855 0.3655 0.3028
"""
OVER_P = """
0.9616 0.8545 0.2182 0.9189 0.0045 0.1465 0.5485 0.0069 0.6114 0.0788 0.6088 0.5381
0.9082 0.0529 0.1081 0.4434 0.9813 0.4341 0.2008 0.9765 0.7481 0.8237 0.2694 0.1598
0.2376 0.0196 0.3233 0.1930 0.6342 0.9969 0.0210 0.0706 0.9936 0.4629 0.9539 0.8628
0.0080 0.5861 0.5450 0.9271 0.9780 0.2998 0.0208 0.8898 0.1355 0.8090 0.9702 0.0140
0.9907 0.3245 0.0158 0.8778 0.9888 0.3103 0.2061 0.7870 0.9453 0.7297 0.0598 0.1859
0.0238 0.9573 0.9956 0.4148 0.9597 0.1409 0.9855 0.9656 0.0255 0.9705 0.9735 0.8827
0.1665 0.7311 0.3444 0.9929 0.1357 0.1559 0.5408 0.0399 0.0308 0.0765 0.9073 0.0318
0.9332 0.9561 0.9949 0.2310 0.1741 0.0456 0.3228 0.0071 0.9734 0.2505 0.0613 0.8417
0.9634 0.6035 0.5986 0.4109 0.4719 0.0175 0.9967 0.9864 0.5306 0.2397 0.4480 0.0827
0.9921 0.0820 0.6263 0.0351 0.1143 0.9798 0.9453 0.4758 0.0054 0.0293 0.8416 0.9867
0.6653 0.2727 0.9788 0.4801 0.0683 0.1227 0.9561 0.7709 0.9217 0.9900 0.0305 0.3271
0.6328 0.9922 0.0690 0.8654 0.2239 0.4061 0.5078 0.8704 0.8244 0.9773 0.0251 0.9954
0.9930 0.4030 0.0253 0.9224 0.7933 0.7535 0.1695 0.1158 0.0138 0.0737 0.1431 0.0879
0.0067 0.9349 0.4196 0.8747 0.0488 0.7322 0.0464 0.0638 0.9541 0.3402 0.2501 0.4897
0.7156 0.1343 0.5370 0.9346 0.9926 0.9133 0.9881 0.9624 0.9834 0.7353 0.9802 0.9830
0.9948 0.9885 0.5651 0.4005 0.0135 0.0854 0.6229 0.9147 0.9221 0.1464 0.1000 0.0073
0.2652 0.5698 0.8378 0.0813 0.1243 0.9943 0.0170 0.9957 0.0781 0.9748 0.9186 0.8932
0.9272 0.9209 0.4245 0.6804 0.9855 0.8997 0.0252 0.1098 0.1791 0.6068 0.9196 0.8332
0.7561 0.4624 0.4715 0.2826 0.5759 0.9513 0.3741 0.1433 0.2546 0.1580 0.4570 0.4081
0.9815 0.0875 0.7370 0.7693 0.8237 0.0598 0.5827 0.9940 0.0933 0.6378 0.0189 0.4529
0.0030 0.9247 0.9939 0.8812 0.0441 0.9447 0.2923 0.9847 0.5485 0.9788 0.1122 0.8214
0.7345 0.7054 0.9263 0.0722 0.1285 0.9466 0.8541 0.9353 0.9746 0.3845 0.0034 0.2421
0.0831 0.9829 0.0300 0.8734 0.2147 0.0463 0.0288 0.6412 0.0775 0.3176 0.5132 0.9807
0.7942 0.9805 0.9695 0.5842 0.4126 0.0274 0.4963 0.6724 0.0975 0.1175 0.9447 0.9319
0.0143 0.5350 0.9332 0.9900 0.4151 0.0608 0.7233 0.8613 0.9888 0.2326 0.5548 0.3082
"""
WELL_Y = (
    "01110010100101001110110111101001100111010101000000111000011111110001111101001010"
    "10100110000101011100111001000101101001000001000011001110010011110111101100001010"
    "01110111001011110100101100100110101101010101111101100010111001110101100110101110"
    "111101000101011010010111000010110101100111111000010011011000"
)
OVER_Y = (
    "11010010001011001011110010011101100100111001011010011001111000111011110011011111"
    "01101110001011011100100110101010011000110010000111000110011101011101000000000101"
    "00001011111111111111111000011000111001110110111111100011100011010100111110111001"
    "011101011101011001111100010100010011111010010001001111011110"
)


# scikit-learn's breast-cancer data, held-out odd rows (see the module docstring); shared with
# the other test file that uses it, in tests/data/breast_cancer_holdout.csv.
BC = pd.read_csv(Path(__file__).parent / "data" / "breast_cancer_holdout.csv")


def _nums(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()])


def _bits(text: str) -> np.ndarray:
    return np.array([int(c) for c in text])


DATA = {
    "well": (_nums(WELL_P), _bits(WELL_Y)),
    "over": (_nums(OVER_P), _bits(OVER_Y)),
    "bc": (expit(BC["lp_a"].to_numpy(float)), BC["y"].to_numpy(int)),
}

# --------------------------------------------------------------------------- #
# Expected values from R
# --------------------------------------------------------------------------- #
# Per data set, in R (p, y as above; ctl <- glm.control(epsilon = 1e-14, maxit = 100)):
#   v  <- rms::val.prob(p, y, pl = FALSE)
#         v[c("Intercept", "Slope", "Brier", "Emax", "E90", "Eavg", "S:z", "S:p")]
#   f1 <- glm(y ~ 1, offset = qlogis(p), family = binomial, control = ctl)
#         coef(f1); 1 / sqrt(sum(fitted(f1) * (1 - fitted(f1)))); confint.default(f1)
#   f2 <- glm(y ~ qlogis(p), family = binomial, control = ctl)
#         coef(f2); X <- cbind(1, qlogis(p)); mu <- fitted(f2)
#         sqrt(diag(solve(crossprod(X, X * (mu * (1 - mu))))))      # se at the MLE
#         t(confint.default(f2))
#   Sm <- lowess(p, y, iter = 0); er <- abs(p - approx(Sm, xout = p, ties = mean)$y)
#         quantile(er, 0.5)                                          # E50
#   B <- mean((p - y)^2); 1 - B / (mean(y) * (1 - mean(y)))          # scaled Brier
#         sd((p - y)^2) / sqrt(length(y))                            # SE of Brier
#   approx(Sm, xout = c(0.1, 0.25, 0.5, 0.75, 0.9))$y                # curve
R = {
    "well": {
        "n": 300,
        "events": 158,
        "val.prob": {
            "Intercept": 0.19645666513979937,
            "Slope": 0.83680062058794857,
            "Brier": 0.19323957276666667,
            "Emax": 0.095613339888740434,
            "E90": 0.091574455282424985,
            "Eavg": 0.054611984117710094,
            "S:z": 1.5656811900526051,
            "S:p": 0.11742327199976969,
        },
        "citl": (0.21842311892935121, 0.13754671783098199),
        "citl_confint": (-0.051163494211064392, 0.48800973206976683),
        "joint": (0.19645666513980001, 0.83680062058795202),
        "joint_se": (0.13316929388424101, 0.11314511697207681),
        "joint_confint": (
            -0.06455035471967549,
            0.45746368499927548,
            0.61504026629671182,
            1.0585609748791922,
        ),
        "e50": 0.054855431310250211,
        "scaled_brier": 0.22483680027634156,
        "brier_se": 0.012192917625899307,
        "curve": (
            0.12625772796118956,
            0.30874716564536614,
            0.5906189672574127,
            0.74805546551502555,
            0.83618579999813403,
        ),
    },
    "over": {
        "n": 300,
        "events": 168,
        "val.prob": {
            "Intercept": 0.20764123370069809,
            "Slope": 0.62204207724369176,
            "Brier": 0.16149980626666666,
            "Emax": 0.14376320197988338,
            "E90": 0.1361490194831004,
            "Eavg": 0.062141918413570432,
            "S:z": 4.7533783350898853,
            "S:p": 2.0004550363725311e-06,
        },
        "citl": (0.27867186539058753, 0.17221445418302478),
        "citl_confint": (-0.058862262425139367, 0.61620599320631442),
        "joint": (0.20764123371433071, 0.622042077263816),
        "joint_se": (0.14602671574342196, 0.072210979314484378),
        "joint_confint": (
            -0.078565863238000716,
            0.49384833066666212,
            0.48051116636456126,
            0.76357298816307073,
        ),
        "e50": 0.045056162767280306,
        "scaled_brier": 0.34456247456709954,
        "brier_se": 0.01517476231927148,
        "curve": (
            0.21743010750244629,
            0.32940063840116129,
            0.5120735787855617,
            0.7388609749758539,
            0.86640858507548935,
        ),
    },
    "bc": {
        "n": 284,
        "events": 110,
        "val.prob": {
            "Intercept": 1.5530524675215105,
            "Slope": 2.8512746649389191,
            "Brier": 0.073111868679399297,
            "Emax": 0.20391156783814457,
            "E90": 0.17756817097238428,
            "Eavg": 0.098130569990002123,
            "S:z": -4.5112131864065779,
            "S:p": 6.4457896912449265e-06,
        },
        "citl": (0.20783432358544801, 0.16274060619996708),
        "citl_confint": (-0.11113140338864269, 0.52680005055953871),
        "joint": (1.5530527184919132, 2.8512750700910621),
        "joint_se": (0.38658469962236591, 0.39895226375648135),
        "joint_confint": (
            0.79536063933389956,
            2.3107447976499267,
            2.0693430169273483,
            3.6332071232547758,
        ),
        "e50": 0.073705545927559971,
        "scaled_brier": 0.69190643259113749,
        "brier_se": 0.0075994194339451373,
        # the lowess exceeds 1 at p = 0.9 (under-confident model, sparse top end)
        "curve": (
            0.028228825887368223,
            0.20772421826571438,
            0.6922594851305387,
            0.91974707641179021,
            1.031513988907832,
        ),
    },
}
CURVE_GRID = (0.1, 0.25, 0.5, 0.75, 0.9)
Z975 = 1.959963984540054


@pytest.fixture(scope="module")
def point_results() -> dict[str, CalibrationResult]:
    return {
        k: calibration(y, p, positive=1, n_resamples=0, seed=None, grid=CURVE_GRID)
        for k, (p, y) in DATA.items()
    }


# --------------------------------------------------------------------------- #
# Agreement with rms::val.prob, glm, lowess
# --------------------------------------------------------------------------- #
VALPROB_TO_OURS = {
    "Intercept": "intercept_joint",
    "Slope": "slope",
    "Brier": "brier",
    "Emax": "emax",
    "E90": "e90",
    "Eavg": "eavg",
    "S:z": "spiegelhalter_z",
    "S:p": "spiegelhalter_p",
}


@pytest.mark.parametrize("data", ["well", "over", "bc"])
@pytest.mark.parametrize("stat", list(VALPROB_TO_OURS))
def test_against_rms_val_prob(point_results, data, stat):
    ours = point_results[data].measure(VALPROB_TO_OURS[stat]).estimate
    assert ours == pytest.approx(R[data]["val.prob"][stat], rel=REL_R)


@pytest.mark.parametrize("data", ["well", "over", "bc"])
def test_lowess_statistics_against_R_to_rounding(point_results, data):
    """Emax, E90, Eavg and E50 share rms' lowess exactly (no convergence tolerance)."""
    r = point_results[data]
    vp = R[data]["val.prob"]
    assert r.emax.estimate == pytest.approx(vp["Emax"], rel=REL)
    assert r.e90.estimate == pytest.approx(vp["E90"], rel=REL)
    assert r.eavg.estimate == pytest.approx(vp["Eavg"], rel=REL)
    assert r.e50.estimate == pytest.approx(R[data]["e50"], rel=REL)
    assert r.ici == r.eavg


@pytest.mark.parametrize("data", ["well", "over", "bc"])
def test_recalibration_against_glm(point_results, data):
    r = point_results[data]
    ref = R[data]
    assert r.intercept_in_large.estimate == pytest.approx(ref["citl"][0], rel=REL)
    assert r.intercept_in_large.se == pytest.approx(ref["citl"][1], rel=REL)
    assert r.intercept_joint.estimate == pytest.approx(ref["joint"][0], rel=REL)
    assert r.slope.estimate == pytest.approx(ref["joint"][1], rel=REL)
    assert r.intercept_joint.se == pytest.approx(ref["joint_se"][0], rel=REL)
    assert r.slope.se == pytest.approx(ref["joint_se"][1], rel=REL)


@pytest.mark.parametrize("data", ["well", "over", "bc"])
def test_wald_intervals_against_confint_default(point_results, data):
    r = point_results[data]
    ref = R[data]
    assert (r.intercept_in_large.ci_low, r.intercept_in_large.ci_high) == pytest.approx(
        ref["citl_confint"], rel=REL_R
    )
    lo_a, hi_a, lo_b, hi_b = ref["joint_confint"]
    assert (r.intercept_joint.ci_low, r.intercept_joint.ci_high) == pytest.approx(
        (lo_a, hi_a), rel=REL_R
    )
    assert (r.slope.ci_low, r.slope.ci_high) == pytest.approx((lo_b, hi_b), rel=REL_R)
    for name in ("intercept_in_large", "slope", "intercept_joint", "brier"):
        assert r.measure(name).ci_method == "wald"


@pytest.mark.parametrize("data", ["well", "over", "bc"])
def test_brier_scaled_brier_and_wald_interval(point_results, data):
    r = point_results[data]
    ref = R[data]
    b = ref["val.prob"]["Brier"]
    assert r.brier.estimate == pytest.approx(b, rel=REL)
    assert r.brier.se == pytest.approx(ref["brier_se"], rel=REL)
    assert (r.brier.ci_low, r.brier.ci_high) == pytest.approx(
        (b - Z975 * ref["brier_se"], b + Z975 * ref["brier_se"]), rel=REL
    )
    assert r.scaled_brier.estimate == pytest.approx(ref["scaled_brier"], rel=REL)


@pytest.mark.parametrize("data", ["well", "over", "bc"])
def test_curve_against_R_lowess(point_results, data):
    r = point_results[data]
    np.testing.assert_allclose(r.curve_predicted, CURVE_GRID)
    np.testing.assert_allclose(r.curve_observed, R[data]["curve"], rtol=REL)
    assert r.n == R[data]["n"]
    assert r.n_events == R[data]["events"]


# Heavy ties: 22 of 30 predictions equal 0.3, more than the span (20 points). R
# averages all 22 tied outcomes there (7/22); statsmodels' lowess does not.
TIES_X = np.array([0.3] * 22 + [0.05, 0.1, 0.15, 0.5, 0.6, 0.7, 0.8, 0.9])
TIES_Y = np.array(
    [*(1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1), 0, 0, 1, 0, 1, 1, 0, 1],
    dtype=float,
)
# R: Sm <- lowess(x, y, iter = 0); sprintf("%.17g", Sm$y) at the sorted distinct x
# (0.05, 0.1, 0.15, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9)
TIES_R = [
    -0.15830222831752094,
    0.3280432096012007,
    0.88022772768143287,
    0.31818181818181823,
    8.9077543262322524e-17,
    0.569232263596267,
    0.61771489128580015,
    0.68835965982357217,
    0.72347804425311357,
]


def test_lowess_against_R_heavy_ties():
    order = np.argsort(TIES_X, kind="stable")
    x, y = TIES_X[order], TIES_Y[order]
    fx, fy = lowess_counts(x, y, np.ones(x.size))
    fitted = np.interp(np.unique(x), fx, fy)
    np.testing.assert_allclose(fitted, TIES_R, rtol=1e-12, atol=1e-15)
    assert fitted[3] == pytest.approx(7 / 22, rel=1e-15)


@pytest.mark.parametrize("data", ["well", "bc"])
def test_lowess_with_counts_equals_repeated_rows(data):
    """The bootstrap's weighted lowess equals the lowess of the resample itself."""
    p, y = DATA[data]
    order = np.argsort(p, kind="stable")
    x, yy = p[order], y[order].astype(float)
    counts = np.random.default_rng(3).poisson(1.0, x.size).astype(float)
    fx, fy = lowess_counts(x, yy, counts)
    rep = counts.astype(int)
    ex, ey = np.repeat(x, rep), np.repeat(yy, rep)
    gx, gy = lowess_counts(ex, ey, np.ones(ex.size))
    np.testing.assert_allclose(np.interp(ex, fx, fy), np.interp(ex, gx, gy), rtol=1e-12)


def test_quantile_type7_with_counts():
    rng = np.random.default_rng(1)
    v = rng.uniform(size=17)
    c = rng.integers(1, 4, size=17).astype(float)
    expanded = np.repeat(v, c.astype(int))
    for q in (0.0, 0.1, 0.5, 0.9, 1.0):
        # numpy's default ("linear") is R's type 7
        assert _quantile_type7(v, c, q) == pytest.approx(np.quantile(expanded, q), rel=1e-14)


# --------------------------------------------------------------------------- #
# The vectorised kernels against their straightforward versions, bit for bit
# --------------------------------------------------------------------------- #
def _lowess_counts_reference(
    x: np.ndarray, y: np.ndarray, counts: np.ndarray, *, frac: float = LOWESS_FRAC
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`lowess_counts` as first written: a Python loop over the fitting points and
    ``h`` as the minimum over every window of ``ns`` consecutive repeated points."""
    keep = counts > 0
    xs, ys, ws = x[keep], y[keep], counts[keep]
    total = float(ws.sum())
    ns = int(max(2.0, min(total, math.floor(frac * total + 1e-7))))
    span = float(xs[-1] - xs[0])
    delta = 0.01 * span
    ux = np.unique(xs)
    fits = [0]
    i, m = 0, ux.size
    ux_list = ux.tolist()
    while i < m - 1:
        j = bisect.bisect_right(ux_list, ux_list[i] + delta, lo=i + 1) - 1
        i = max(j, i + 1)
        fits.append(i)
    fx = ux[fits]
    expanded = np.repeat(xs, ws.astype(np.int64))
    left = expanded[: expanded.size - ns + 1]
    right = expanded[ns - 1 :]
    h = np.maximum(fx[:, None] - left[None, :], right[None, :] - fx[:, None]).min(axis=1)
    r = np.abs(xs[None, :] - fx[:, None])
    tied = h == 0.0
    hh = np.where(tied, 1.0, h)[:, None]
    u = r / hh
    w = 1.0 - u * u * u
    w *= w * w
    w[r > 0.999 * hh] = 0.0
    w[r <= 0.001 * hh] = 1.0
    if tied.any():
        w[tied] = r[tied] == 0.0
    w *= ws[None, :]
    w /= w.sum(axis=1, keepdims=True)
    centre = w @ xs
    spread = np.einsum("ij,ij->i", w, (xs[None, :] - centre[:, None]) ** 2)
    linear = (h > 0.0) & (np.sqrt(spread) > 0.001 * span)
    slope = np.where(linear, (fx - centre) / np.where(linear, spread, 1.0), 0.0)
    w *= slope[:, None] * (xs[None, :] - centre[:, None]) + 1.0
    return fx, w @ ys


def _logistic_fit_reference(
    lp: np.ndarray, y: np.ndarray, weights: np.ndarray, *, slope: bool
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_logistic_fit` as first written: every active row re-evaluated at every
    step-halving, the log-likelihood at the current estimate computed anew each iteration."""
    b = weights.shape[0]
    k = 2 if slope else 1
    coef = np.zeros((b, k))
    if slope:
        coef[:, 1] = 1.0
    active = np.ones(b, dtype=bool)
    if slope:
        active &= ~_separated(lp, y, weights)
    converged = np.zeros(b, dtype=bool)

    def eta(c: np.ndarray) -> np.ndarray:
        return c[:, :1] + (c[:, 1:2] * lp[None, :] if slope else lp[None, :])

    def loglik(e: np.ndarray, w: np.ndarray) -> np.ndarray:
        return np.einsum("ij,ij->i", w, y[None, :] * e - np.logaddexp(0.0, e))

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(_NEWTON_MAX_ITER):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            w = weights[idx]
            c = coef[idx]
            e = eta(c)
            mu = expit(e)
            resid = w * (y[None, :] - mu)
            var = w * mu * (1.0 - mu)
            g0 = resid.sum(axis=1)
            h00 = var.sum(axis=1)
            if slope:
                g1 = resid @ lp
                h01 = var @ lp
                h11 = var @ (lp * lp)
                det = h00 * h11 - h01 * h01
                step = np.column_stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det])
            else:
                step = (g0 / h00)[:, None]
            bad = ~np.all(np.isfinite(step), axis=1)
            step[bad] = 0.0
            ll = loglik(e, w)
            t = np.ones(idx.size)
            for _ in range(40):
                cand = c + t[:, None] * step
                worse = loglik(eta(cand), w) < ll - 1e-12 * np.abs(ll)
                if not worse.any():
                    break
                t = np.where(worse, t / 2.0, t)
            coef[idx] = cand
            done = np.all(np.abs(t[:, None] * step) <= _NEWTON_TOL * (1.0 + np.abs(cand)), axis=1)
            converged[idx[done & ~bad]] = True
            active[idx[done | bad]] = False
    coef[~converged] = np.nan
    return coef, converged


def _tied_sample(rng: np.random.Generator, n: int, kind: int) -> np.ndarray:
    """Sorted predictions: continuous, on a coarse grid, rounded, or mostly one value."""
    if kind == 0:
        x = rng.uniform(0.01, 0.99, n)
    elif kind == 1:
        x = (rng.integers(0, max(2, n // 8), n) + 0.5) / max(2, n // 8)
    elif kind == 2:
        x = np.round(expit(rng.normal(0.0, 1.5, n)), 2).clip(0.01, 0.99)
    else:  # more than 2n/3 tied at one value: R averages all the ties there
        x = np.where(rng.uniform(size=n) < 0.75, 0.4, rng.uniform(0.05, 0.95, n))
    return np.sort(x)


@pytest.mark.parametrize("all_pairs_max", [0, None])
def test_lowess_counts_bit_identical_to_reference(all_pairs_max, monkeypatch):
    """Random data with ties, bootstrap counts (zeros included) and several spans: == only.

    The bandwidth comes from a binary search (``all_pairs_max=0``) or, at these sizes, from
    every (fitting point, window) pair (the default); both must equal the reference.
    """
    if all_pairs_max is not None:
        monkeypatch.setattr(calibration_module, "_KTH_ALL_PAIRS_MAX", all_pairs_max)
    rng = np.random.default_rng(20261207)
    for case in range(400):
        n = int(rng.integers(2, 250))
        x = _tied_sample(rng, n, case % 4)
        y = (rng.uniform(size=n) < x).astype(float) if case % 2 else rng.normal(size=n)
        counts = rng.poisson(1.0, n).astype(float) if case % 3 else np.ones(n)
        if counts.sum() < 2:
            counts[:2] = 1.0
        frac = (LOWESS_FRAC, 0.3, 0.9, 0.05)[case % 4 if case % 5 else 0]
        fx, fy = lowess_counts(x, y, counts, frac=frac)
        gx, gy = _lowess_counts_reference(x, y, counts, frac=frac)
        assert fx.shape == gx.shape and fy.shape == gy.shape, case
        assert np.array_equal(fx, gx) and np.array_equal(fy, gy), case


@pytest.mark.parametrize("slope", [False, True])
def test_logistic_fit_bit_identical_to_reference(slope):
    """Bootstrap weights (one to 40 resamples, some separated) and mixed-sign weights, which
    drive the step halving to its 40-evaluation limit: coefficients equal with ==."""
    rng = np.random.default_rng(4 + slope)
    for case in range(40):
        n = int(rng.integers(5, 300))
        p = _tied_sample(rng, n, case % 4) if case % 2 else expit(rng.normal(0.0, 2.0, n))
        y = (rng.uniform(size=n) < p).astype(float)
        if case % 5 == 0:  # nearly separated: only a few outcomes on the wrong side
            y = (p > np.median(p)).astype(float)
            y[rng.integers(0, n, 3)] = 1.0 - y[rng.integers(0, n, 3)]
        b = (1, 3, 40)[case % 3]
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=b).astype(float)
        if case % 8 == 7:
            weights = rng.normal(0.5, 1.5, (b, n))
        got = _logistic_fit(logit(p), y, weights, slope=slope)
        want = _logistic_fit_reference(logit(p), y, weights, slope=slope)
        assert np.array_equal(got[0], want[0], equal_nan=True), case
        assert np.array_equal(got[1], want[1]), case


@pytest.mark.parametrize("data", ["well", "over", "bc"])
def test_weighted_statistic_equals_repeated_data(data):
    """Every bootstrapped statistic, on integer weights, is the estimate on repeated rows."""
    p, y = DATA[data]
    counts = np.random.default_rng(7).poisson(1.0, p.size)
    names = (
        "intercept_in_large",
        "slope",
        "intercept_joint",
        "brier",
        "scaled_brier",
        "emax",
        "eavg",
        "e50",
        "e90",
    )
    stat = _Statistic(y.astype(float), p, np.array([0.3, 0.6]), names)
    weighted = stat(counts[None, :].astype(float))[0]
    rep = calibration(
        np.repeat(y, counts), np.repeat(p, counts), positive=1, n_resamples=0, seed=None
    )
    expected = [rep.measure(name).estimate for name in names]
    np.testing.assert_allclose(weighted, expected, rtol=1e-9)


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #
def _simulate(n: int, seed: int, power: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """True risk q ~ U(0.01, 0.99), y ~ Bernoulli(q), prediction expit(power * logit(q))."""
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.01, 0.99, n)
    y = (rng.uniform(size=n) < q).astype(int)
    return expit(power * logit(q)), y


def test_perfectly_calibrated_simulation():
    p, y = _simulate(20_000, seed=11)
    r = calibration(y, p, positive=1, n_resamples=0, seed=None)
    for name, target in (("slope", 1.0), ("intercept_in_large", 0.0), ("intercept_joint", 0.0)):
        m = r.measure(name)
        assert abs(m.estimate - target) < 4 * m.se, name
        assert abs(m.estimate - target) < 0.06, name
    assert r.eavg.estimate < 0.015
    assert r.e90.estimate < 0.03
    assert abs(r.spiegelhalter_z.estimate) < 4


@pytest.mark.parametrize(
    ("power", "direction"),
    [
        pytest.param(2.0, "below", id="over-confident"),
        pytest.param(0.5, "above", id="under-confident"),
    ],
)
def test_confidence_moves_the_slope(power, direction):
    p, y = _simulate(3_000, seed=12, power=power)
    r = calibration(y, p, positive=1, n_resamples=0, seed=None)
    if direction == "below":
        assert r.slope.ci_high < 1.0
        assert r.slope.estimate == pytest.approx(0.5, abs=0.1)
    else:
        assert r.slope.ci_low > 1.0
        assert r.slope.estimate == pytest.approx(2.0, abs=0.3)
    assert r.eavg.estimate > 0.03


def _rows_close(
    a: CalibrationResult, b: CalibrationResult, rtol: float = 1e-12, skip: tuple[str, ...] = ()
) -> None:
    ta, tb = a.to_frame(), b.to_frame()
    ta, tb = ta[~ta["measure"].isin(skip)], tb[~tb["measure"].isin(skip)]
    assert list(ta["ci_method"]) == list(tb["ci_method"])
    for col in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(ta[col], tb[col], rtol=rtol, atol=1e-14, err_msg=col)
    np.testing.assert_allclose(a.curve_observed, b.curve_observed, rtol=rtol)
    np.testing.assert_allclose(a.curve_ci_low, b.curve_ci_low, rtol=rtol)
    np.testing.assert_allclose(a.curve_ci_high, b.curve_ci_high, rtol=rtol)


def test_permuting_patients_changes_nothing():
    p, y = DATA["bc"]
    ids = np.array([f"pt{i:03d}" for i in range(p.size)])
    perm = np.random.default_rng(5).permutation(p.size)
    kw = {"positive": 1, "n_resamples": 60, "seed": 4, "ci_method": "percentile"}
    a = calibration(y, p, clusters=ids, **kw)
    b = calibration(y[perm], p[perm], clusters=ids[perm], **kw)
    _rows_close(a, b)
    # without clusters the resamples follow the row order, but estimates and Wald CIs do not
    c = calibration(y, p, positive=1, n_resamples=0, seed=None)
    d = calibration(y[perm], p[perm], positive=1, n_resamples=0, seed=None)
    _rows_close(c, d)


def test_singleton_clusters_change_only_the_interval_method():
    """Each row its own patient: same resamples as unclustered; Wald CIs become bootstrap."""
    p, y = DATA["well"]
    kw = {"positive": 1, "n_resamples": 60, "seed": 8, "ci_method": "percentile"}
    plain = calibration(y, p, **kw)
    single = calibration(y, p, clusters=np.arange(p.size), **kw)
    tp, ts = plain.to_frame().set_index("measure"), single.to_frame().set_index("measure")
    np.testing.assert_allclose(tp["estimate"], ts["estimate"], rtol=0, atol=0)
    boot = ["scaled_brier", "emax", "eavg", "e50", "e90"]
    pd.testing.assert_frame_equal(
        tp.loc[boot, ["ci_low", "ci_high"]], ts.loc[boot, ["ci_low", "ci_high"]]
    )
    assert set(tp.loc[boot, "ci_method"]) == {"bootstrap percentile"}
    assert set(ts.loc[boot, "ci_method"]) == {"cluster bootstrap percentile"}
    wald = ["intercept_in_large", "slope", "intercept_joint", "brier"]
    assert set(tp.loc[wald, "ci_method"]) == {"wald"}
    assert set(ts.loc[wald, "ci_method"]) == {"cluster bootstrap percentile"}
    np.testing.assert_array_equal(plain.curve_ci_low, single.curve_ci_low)
    assert plain.n_clusters is None
    assert single.n_clusters == p.size


def test_duplicated_rows_with_clusters_equal_the_patient_level_analysis():
    """Two identical rows per patient, resampled by patient = one row per patient.

    n = 150 is divisible by 3, so the lowess span of the doubled data (2n * 2/3)
    is exactly twice that of the original and every statistic is unchanged.
    """
    p, y = DATA["well"][0][:150], DATA["well"][1][:150]
    # percentile: with BCa the leave-one-patient-out E50/E90 differ slightly, because
    # R's type-7 quantile of 149 values is not that of the same 149 values doubled
    kw = {
        "positive": 1,
        "n_resamples": 50,
        "seed": 21,
        "ci_method": "percentile",
        "grid": np.linspace(0.1, 0.9, 33),  # the default grid uses quantiles of the rows
    }
    patient = calibration(y, p, clusters=np.arange(150), **kw)
    dup = calibration(np.repeat(y, 2), np.repeat(p, 2), clusters=np.repeat(np.arange(150), 2), **kw)
    _rows_close(patient, dup, rtol=1e-9, skip=("spiegelhalter_z", "spiegelhalter_p"))
    # Spiegelhalter's test assumes independent rows: duplication inflates Z by sqrt(2)
    assert dup.spiegelhalter_z.estimate == pytest.approx(
        math.sqrt(2) * patient.spiegelhalter_z.estimate, rel=1e-12
    )
    assert "anti-conservative" in dup.spiegelhalter_z.note
    assert dup.n == 300
    assert dup.n_clusters == 150
    # ignoring the duplication gives falsely narrow intervals
    naive = calibration(np.repeat(y, 2), np.repeat(p, 2), **kw)
    assert naive.slope.ci_high - naive.slope.ci_low < 0.8 * (dup.slope.ci_high - dup.slope.ci_low)
    assert naive.eavg.ci_high - naive.eavg.ci_low < dup.eavg.ci_high - dup.eavg.ci_low


def test_labels_and_positive_class():
    p, y = DATA["well"]
    labels = np.where(y == 1, "acute", "chronic")
    a = calibration(labels, p, positive="acute", n_resamples=0, seed=None)
    b = calibration(y, p, positive=1, n_resamples=0, seed=None)
    _rows_close(a, b, rtol=0)
    # the other class as positive with 1 - p mirrors the intercepts, keeps the slope
    c = calibration(labels, 1 - p, positive="chronic", n_resamples=0, seed=None)
    assert c.slope.estimate == pytest.approx(b.slope.estimate, rel=1e-10)
    assert c.intercept_in_large.estimate == pytest.approx(-b.intercept_in_large.estimate, rel=1e-9)
    assert c.brier.estimate == pytest.approx(b.brier.estimate, rel=1e-12)


# --------------------------------------------------------------------------- #
# Bootstrap intervals and the band
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def boot_result() -> CalibrationResult:
    p, y = DATA["over"]
    return calibration(y, p, positive=1, n_resamples=200, seed=2024)


def test_bootstrap_intervals(boot_result):
    r = boot_result
    assert r.bootstrap_method == "bca"
    assert r.n_resamples == 200
    assert r.seed == 2024
    for name in ("scaled_brier", "emax", "eavg", "e50", "e90"):
        m = r.measure(name)
        assert m.ci_method == "bootstrap bca"
        assert m.ci_low < m.estimate < m.ci_high, name
        assert m.se > 0
    for name in ("spiegelhalter_z", "spiegelhalter_p"):
        m = r.measure(name)
        assert m.ci_method == "none"
        assert math.isnan(m.ci_low) and math.isnan(m.ci_high)


def test_band_brackets_the_curve(boot_result):
    f = boot_result.curve_frame()
    assert list(f.columns) == ["predicted", "observed", "ci_low", "ci_high", "ci_level"]
    assert len(f) == 100
    assert (f["ci_low"] <= f["ci_high"]).all()
    inside = (f["ci_low"] <= f["observed"]) & (f["observed"] <= f["ci_high"])
    assert inside.mean() > 0.95
    assert f["predicted"].is_monotonic_increasing
    p = DATA["over"][0]
    assert f["predicted"].iloc[0] == pytest.approx(np.quantile(p, 0.01))
    assert f["predicted"].iloc[-1] == pytest.approx(np.quantile(p, 0.99))


def test_same_seed_same_result_other_seed_other_interval():
    p, y = DATA["bc"]
    kw = {"positive": 1, "n_resamples": 40, "ci_method": "percentile"}
    a = calibration(y, p, seed=1, **kw)
    assert a == calibration(y, p, seed=1, **kw)
    b = calibration(y, p, seed=2, **kw)
    assert a.eavg.estimate == b.eavg.estimate
    assert a.eavg.ci_low != b.eavg.ci_low


def test_without_bootstrap_the_bootstrap_measures_have_no_interval(point_results):
    r = point_results["well"]
    assert r.bootstrap_method == "none"
    for name in ("scaled_brier", "emax", "eavg", "e50", "e90"):
        m = r.measure(name)
        assert m.ci_method == "none"
        assert "n_resamples=0" in m.note
        assert math.isnan(m.ci_low)
    assert np.isnan(r.curve_ci_low).all()


# --------------------------------------------------------------------------- #
# Result object
# --------------------------------------------------------------------------- #
def test_table_and_frames(point_results):
    r = point_results["bc"]
    t = r.to_frame()
    assert list(t.columns) == [
        "measure",
        "estimate",
        "ci_low",
        "ci_high",
        "ci_level",
        "ci_method",
        "note",
    ]
    assert tuple(t["measure"]) == MEASURES
    assert (t["ci_level"] == 0.95).all()
    row = r.summary_frame()
    assert len(row) == 1
    assert row.loc[0, "slope"] == r.slope.estimate
    assert row.loc[0, "slope_ci_low"] == r.slope.ci_low
    assert row.loc[0, "n_events"] == 110
    est, lo, hi = r.slope
    assert (est, lo, hi) == (r.slope.estimate, r.slope.ci_low, r.slope.ci_high)
    assert isinstance(r.slope, CalibrationMeasure)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n = 3  # type: ignore[misc]
    with pytest.raises(StudyvalError, match="did you mean 'slope'"):
        r.measure("slop")


def test_histogram_frame(point_results):
    r = point_results["bc"]
    h = r.histogram_frame(bins=20)
    assert list(h.columns) == ["bin_low", "bin_high", "n_positive", "n_negative"]
    assert len(h) == 20
    assert h["n_positive"].sum() == 110
    assert h["n_negative"].sum() == 174
    assert h["bin_low"].iloc[0] == 0.0 and h["bin_high"].iloc[-1] == 1.0
    with pytest.raises(StudyvalError, match="bins must divide 100"):
        r.histogram_frame(bins=3)


def test_stacked_frames(point_results):
    res = {"A": point_results["well"], "B": point_results["over"]}
    c = curves_frame(res)
    assert list(c.columns) == ["model", "predicted", "observed", "ci_low", "ci_high", "ci_level"]
    assert list(c["model"].unique()) == ["A", "B"]
    h = histograms_frame(res, bins=10)
    assert len(h) == 20
    with pytest.raises(StudyvalError, match="empty"):
        curves_frame({})


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
P10 = np.array([0.1, 0.3, 0.4, 0.2, 0.7, 0.9, 0.5, 0.6, 0.3, 0.6])
Y10 = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 0])


def _with(i: int, value: float) -> np.ndarray:
    p = P10.copy()
    p[i] = value
    return p


@pytest.mark.parametrize(
    ("prob", "match"),
    [
        pytest.param(_with(3, 0.0), "exactly 0 or 1; first at position 3", id="zero"),
        pytest.param(_with(7, 1.0), "exactly 0 or 1; first at position 7", id="one"),
        pytest.param(_with(2, -0.1), "outside, first at position 2", id="negative"),
        pytest.param(_with(5, 1.2), "outside, first at position 5", id="above-one"),
        pytest.param(_with(4, np.nan), "missing .NaN. value.s.; first at position 4", id="nan"),
        pytest.param(P10[:9], "has 9 values but y_true has 10", id="length"),
        pytest.param(P10.reshape(2, 5), "one-dimensional", id="two-d"),
        pytest.param(["a"] * 10, "numeric probabilities", id="strings"),
    ],
)
def test_bad_probabilities(prob, match):
    with pytest.raises(StudyvalError, match=match):
        calibration(Y10, prob, positive=1, n_resamples=0, seed=None)


def test_constant_predictions_raise():
    with pytest.raises(EstimationError, match="slope is not identifiable"):
        calibration(Y10, np.full(10, 0.4), positive=1, n_resamples=0, seed=None)


def test_separation_raises():
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.8])
    y = np.array([0, 0, 0, 1, 1, 1])
    with pytest.raises(EstimationError, match="separates the two classes"):
        calibration(y, p, positive=1, n_resamples=0, seed=None)


PIMA = pd.read_csv(Path(__file__).parent / "data" / "pima_te_glm.csv")
# 10 + 10 predictions at 0.4 and 0.6, y = 1 exactly when p > 0.5, in the row order that gave
# (before the separation check) a "converged" slope of 136 with a standard error of 2.6e15.
SEP_BITS = _bits("00001110101000110111")


def _pima(order_by: str | None) -> tuple[np.ndarray, np.ndarray]:
    d = PIMA if order_by is None else PIMA.sort_values(order_by, kind="stable")
    p = d["p_glm"].to_numpy(float)
    return (p > 0.3).astype(int), p


@pytest.mark.parametrize(
    ("data", "match"),
    [
        # R: p <- c(.4, .6)[bits + 1]; y <- bits; glm(y ~ qlogis(p), family = binomial)
        #    -> converged, slope 63.05 (SE 119120), no warning
        pytest.param(
            (SEP_BITS, np.where(SEP_BITS == 1, 0.6, 0.4)),
            r"\(complete separation, Albert & Anderson 1984; 10 positive and 10 negative cases\)"
            r".*negative cases up to 0\.4, positive cases from 0\.6.*\+infinity",
            id="p-0.4-0.6-interleaved",
        ),
        pytest.param(
            (np.repeat([0, 1], 10), np.repeat([0.4, 0.6], 10)),
            r"complete separation.*negative cases up to 0\.4, positive cases from 0\.6",
            id="p-0.4-0.6-sorted",
        ),
        # R: d <- read.csv("tests/data/pima_te_glm.csv"); p <- d$p_glm; y <- as.integer(p > 0.3)
        #    glm(y ~ qlogis(p), family = binomial): slope 2665 (SE 51420), warnings "algorithm
        #    did not converge" and "fitted probabilities numerically 0 or 1 occurred"
        pytest.param(
            _pima(None),
            r"complete separation.*134 positive and 198 negative.*negative cases up to 0\.29876, "
            r"positive cases from 0\.300758",
            id="pima-te-above-0.3",
        ),
        # the same data in row orders that gave, before the check, a "converged" slope of 7882
        # with a NaN standard error (sorted by npreg) and a raw LinAlgError (sorted by ped)
        pytest.param(_pima("npreg"), "complete separation", id="pima-te-sorted-by-npreg"),
        pytest.param(_pima("ped"), "complete separation", id="pima-te-sorted-by-ped"),
        # R: p <- rep(c(.3, .5, .7), c(6, 4, 6)); y <- c(rep(0, 6), 0, 1, 0, 1, rep(1, 6))
        #    glm(y ~ qlogis(p), family = binomial): converged, slope 24.27 (SE 6041), no warning
        pytest.param(
            (
                np.r_[np.zeros(6), 0, 1, 0, 1, np.ones(6)].astype(int),
                np.repeat([0.3, 0.5, 0.7], [6, 4, 6]),
            ),
            r"quasi-complete separation.*meeting only at prob = 0\.5 "
            r"\(2 positive and 2 negative cases there\)",
            id="quasi-complete",
        ),
        pytest.param(
            (np.repeat([1, 0], 5), np.repeat([0.2, 0.7], 5)),
            r"complete separation.*every negative case has a higher predicted probability than "
            r"every positive case.*-infinity",
            id="positives-predicted-lower",
        ),
    ],
)
def test_separation_raises_naming_it(data, match):
    y, p = data
    with pytest.raises(EstimationError, match=match):
        calibration(y, p, positive=1, n_resamples=0, seed=None)


def test_overlap_by_one_pair_is_estimated():
    # Not separated (the positive at 0.4 lies below the negative at 0.5): the slope is finite.
    # R: p <- c(.1, .2, .3, .4, .5, .6, .7, .8); y <- c(0, 0, 0, 1, 0, 1, 1, 1)
    #    g <- glm(y ~ qlogis(p), family = binomial,
    #             control = glm.control(epsilon = 1e-14, maxit = 100))
    #    sprintf("%.17g", c(coef(g), sqrt(diag(vcov(g)))))
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    r = calibration(y, p, positive=1, n_resamples=0, seed=None)
    assert r.intercept_joint.estimate == pytest.approx(0.64737158715700116, rel=1e-8)
    assert r.slope.estimate == pytest.approx(2.9879798614350483, rel=1e-8)
    assert r.intercept_joint.se == pytest.approx(1.2112829269003909, rel=1e-6)
    assert r.slope.se == pytest.approx(2.1176011199669418, rel=1e-6)


def test_separated_resample_has_no_slope():
    """A bootstrap resample that logit(p) separates is undefined (NaN), not a huge slope."""
    p = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])
    y = np.array([0, 0, 0, 1, 0, 1, 1, 1])
    stat = _Statistic(y.astype(float), p, np.array([0.3, 0.6]), ("slope", "intercept_joint"))
    weights = np.array(
        [
            [1, 1, 1, 1, 1, 1, 1, 1],  # the data: overlapping
            [2, 1, 1, 0, 1, 1, 1, 1],  # without the positive at 0.4: complete separation
            [1, 1, 1, 2, 0, 1, 1, 1],  # without the negative at 0.5: complete separation
        ],
        dtype=float,
    )
    out = stat(weights)
    assert out[0, 0] == pytest.approx(2.9879798614350483, rel=1e-8)
    assert np.isnan(out[1:]).all()


@pytest.mark.parametrize(
    ("y", "positive", "error", "match"),
    [
        pytest.param(np.zeros(10), 1, EstimationError, "does not occur", id="positive-absent"),
        pytest.param(np.ones(10), 1, EstimationError, "single class", id="one-class"),
        pytest.param(np.arange(10) % 3, 1, StudyvalError, "two classes", id="three-classes"),
    ],
)
def test_bad_outcome(y, positive, error, match):
    with pytest.raises(error, match=match):
        calibration(y, P10, positive=positive, n_resamples=0, seed=None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"ci_method": "bcaa"}, "did you mean 'bca'", id="ci-method"),
        pytest.param({"alpha": 0.0}, "alpha must be in", id="alpha-zero"),
        pytest.param({"alpha": 1.5}, "alpha must be in", id="alpha-big"),
        pytest.param({"n_resamples": 1}, "0 .no bootstrap intervals. or >= 2", id="one-resample"),
        pytest.param({"n_resamples": -5}, "0 .no bootstrap intervals. or >= 2", id="negative"),
        pytest.param({"n_resamples": 2.5}, "must be an integer", id="float-resamples"),
        pytest.param(
            {"clusters": np.arange(10), "n_resamples": 0}, "clusters were given", id="clusters-0"
        ),
        pytest.param({"n_resamples": 10, "seed": None}, "seed must be", id="no-seed"),
        pytest.param({"grid": [0.05, 0.5]}, "within the range", id="grid-below"),
        pytest.param({"grid": [0.5, 0.3]}, "strictly increasing", id="grid-order"),
        pytest.param(
            {"clusters": np.arange(9), "seed": 1, "n_resamples": 10},
            "clusters has 9 values",
            id="clusters",
        ),
    ],
)
def test_bad_options(kwargs, match):
    args = {"positive": 1, "n_resamples": 0, "seed": None, **kwargs}
    with pytest.raises(StudyvalError, match=match):
        calibration(Y10, P10, **args)


def test_docstring_example():
    r = calibration(Y10, P10, positive=1, n_resamples=0, seed=None)
    assert r.brier.estimate == pytest.approx(0.186, abs=1e-12)
    assert r.slope.ci_method == "wald"
