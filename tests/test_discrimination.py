"""Tests for studyval.analysis.discrimination.

Oracles
-------
* R 4.x with pROC 1.18.0: ``roc(..., levels = c(neg, pos), direction = "<")``,
  ``ci.auc(method = "delong")``, ``var(method = "delong")``,
  ``cov(method = "delong")``, ``roc.test(method = "delong")``, ``coords``.
  The exact R call sits beside each expected value, printed with
  ``sprintf("%.17g", ...)``. R is a development oracle only; nothing here runs R.
* pROC's ``aSAH`` data (113 patients, the canonical pROC example), embedded
  below: ``data(aSAH); write.csv(aSAH, ...)``; ``wfns`` is an ordered factor,
  passed to pROC as ``as.numeric(aSAH$wfns)`` (a 5-point scale, heavy ties).
* scikit-learn's breast-cancer data (``load_breast_cancer``, 569 cases; target
  0 = malignant is the positive class), exported once to CSV for R.
* A naive O(m n) DeLong implementation written here, on random tied data.
* ``sklearn.metrics.roc_auc_score`` / ``roc_curve`` for the AUC and ROC points.

Deliberate deviations from pROC (documented in the module):
* one case in a class: pROC returns ``NA`` for the DeLong CI; we raise
  ``EstimationError``;
* the paired interval of the difference is truncated to [-1, 1] (pROC does not;
  no case here reaches the bound);
* the unpaired comparison also reports an interval (pROC reports none) built
  from the same t distribution as pROC's p-value.

pROC agreement is required to 1e-6 relative; the implementation agrees to
rounding, so the tests use a tighter ``REL``.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from studyval.analysis.discrimination import (
    AUCResult,
    JointAUCTest,
    PairedAUCComparison,
    ROCCurve,
    UnpairedAUCComparison,
    _holm,
    _placements,
    auc,
    compare_auc,
    compare_auc_k,
    compare_auc_unpaired,
    delong_covariance,
    roc_curve,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

REL = 1e-9  # the requirement is 1e-6; observed agreement is ~1e-15
ABS = 1e-12

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
# pROC::aSAH, row order as in R. outcome: G = "Good", P = "Poor" (positive);
# gender: F/M; wfns: as.numeric(aSAH$wfns).
ASAH_OUTCOME = (
    "GGGGPPGPGGPGPPGGPGPPPGPGGGGGGGGGPGGPPGPPGGGGGGGGGPPGGGPGGGPG"
    "PGGPPPGPPGPPPPGGGPPGPGGGGGGPGGGGGGGGGGGGPPPPPPGGGPGGG"
)
ASAH_GENDER = (
    "FFFFFMMMFFMFMMFFMFFMFFFMFFMFFMFFFFFMFFMFFFFMFMMMMFFMFFFFMFMF"
    "FMFFFMMMMFFFMFMFMMMFFFFFMFMMFMFFFFFFMFMFMFFFMFFFMMFFM"
)
ASAH_WFNS = (
    "111132541252551252252111121211342145414255112411255212512221"
    "51125214524414121421232421451154221113125225552445111"
)
ASAH_S100B = [
    0.13, 0.14, 0.1, 0.04, 0.13, 0.1, 0.47, 0.16, 0.18, 0.1, 0.12, 0.1, 0.44, 0.71, 0.04, 0.08,
    0.49, 0.04, 0.07, 0.33, 0.09, 0.09, 0.07, 0.11, 0.07, 0.17, 0.07, 0.11, 0.13, 0.19, 0.05,
    0.16, 0.41, 0.14, 0.34, 0.35, 0.48, 0.09, 0.96, 0.25, 0.5, 0.46, 0.16, 0.07, 0.43, 0.45,
    0.11, 0.08, 0.09, 0.86, 0.52, 0.08, 0.06, 0.13, 2.07, 0.1, 0.14, 0.15, 0.07, 0.06, 0.77,
    0.05, 0.09, 0.3, 0.03, 0.09, 0.04, 0.23, 0.7, 0.09, 0.27, 0.71, 0.08, 0.26, 0.08, 0.16,
    0.09, 0.13, 0.1, 0.08, 0.11, 0.33, 0.11, 0.28, 0.07, 0.1, 0.32, 0.22, 0.07, 0.05, 0.24,
    0.38, 0.1, 0.15, 0.08, 0.14, 0.1, 0.07, 0.04, 0.19, 0.56, 0.14, 0.58, 0.32, 0.82, 0.74,
    0.15, 0.47, 0.17, 0.44, 0.15, 0.5, 0.48
]
ASAH_NDKA = [
    3.01, 8.54, 8.09, 10.42, 17.4, 12.75, 6.0, 13.2, 15.54, 6.01, 15.96, 17.86, 5.18, 8.9,
    13.41, 20.75, 11.6, 16.11, 32.37, 54.82, 32.41, 49.94, 40.34, 9.47, 6.29, 12.53, 6.54, 6.3,
    80.3, 12.8, 9.8, 9.81, 9.85, 18.21, 5.03, 14.04, 21.93, 8.02, 7.42, 8.38, 6.59, 9.63, 13.12,
    7.96, 14.34, 41.43, 7.63, 7.06, 12.59, 13.56, 3.87, 9.44, 7.66, 12.98, 419.19, 27.19, 22.27,
    9.95, 21.22, 11.73, 10.4, 58.83, 6.39, 11.09, 12.22, 13.67, 17.21, 22.63, 12.9, 9.7, 21.57,
    8.23, 72.57, 15.54, 10.51, 10.6, 14.57, 5.19, 9.63, 4.61, 21.48, 17.3, 12.71, 9.44, 11.07,
    19.46, 10.83, 5.37, 11.97, 7.75, 9.83, 10.55, 28.49, 8.53, 12.57, 12.9, 46.83, 11.68, 12.67,
    9.01, 9.57, 34.06, 11.72, 14.26, 47.61, 11.67, 24.58, 10.33, 13.87, 15.89, 22.43, 6.79,
    13.45
]
READER_Y = [
    1, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 1, 0, 1, 1
]
READER_1 = [
    3, 3, 2, 1, 2, 2, 3, 1, 2, 3, 3, 2, 3, 1, 1, 3, 2, 2, 2, 2, 2, 3, 4, 3, 3, 5, 1, 5, 2, 2, 3,
    2, 3, 1, 3, 1, 3, 2, 2, 2, 3, 1, 3, 4, 1, 3, 3, 1, 2, 4, 1, 5, 3, 4, 3, 3, 5, 2, 3, 2
]
READER_2 = [
    4, 2, 4, 3, 3, 3, 4, 2, 2, 5, 1, 4, 3, 1, 2, 2, 4, 3, 2, 1, 1, 3, 3, 2, 3, 2, 4, 2, 2, 2, 2,
    3, 2, 1, 2, 3, 3, 2, 3, 1, 5, 1, 2, 3, 4, 4, 2, 4, 1, 4, 2, 4, 1, 1, 4, 4, 4, 2, 4, 4
]
UNBAL_Y = [
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0
]
UNBAL_S = [
    0.12, 1.96, -0.38, 0.54, -1.71, -0.1, -0.32, -1.29, -0.97, -0.65, -0.78, -1.9, -0.32, -0.1,
    -0.31, 0.81, -0.17, 0.1, -0.04, 0.12, -1.06, -0.29, 1.79, 0.33, 1.04, -0.45, 0.38, 0.01,
    0.22, 0.88, 0.14, -0.09, -0.61, -1.33, 1.63, 0.36, -0.66, -0.56, -1.09, -0.99, -0.35, -0.06,
    0.87, 0.56, -0.55, 0.81, -1.95, -0.39, 0.48, 1.47, -1.64, -1.21, -0.5, -1.57, -0.05, 0.26,
    -0.27, -0.88, 1.88, 1.58, 0.3, 2.67, -0.79, -1.33, 0.25, 1.8, -0.23, 0.75, 1.26, 0.04, 0.84,
    -0.66, 1.29, 0.42, 0.07, -0.63, -1.66, 0.32, 0.0, 1.08, -0.4, 1.88, -0.09, -0.08, -0.0,
    -1.07, -0.54, -0.34, 0.32, 0.6, -0.76, 1.06, -2.39, 1.51, 0.66, 0.83, 0.14, 0.41, 0.33,
    -0.35
]

ASAH_Y = np.array(["Poor" if c == "P" else "Good" for c in ASAH_OUTCOME])
ASAH_MALE = np.array([c == "M" for c in ASAH_GENDER])
ASAH_SCORES = {
    "s100b": np.array(ASAH_S100B),
    "wfns": np.array([float(c) for c in ASAH_WFNS]),
    "ndka": np.array(ASAH_NDKA),
}
# reader study (generated once with numpy, seed 20240611): 5-point confidence
# scale, 14 positives / 46 negatives, two readers. In R:
#   rd <- data.frame(y = READER_Y, r1 = READER_1, r2 = READER_2)
# unbalanced study: 5 positives / 95 negatives, scores rounded to 2 decimals
# (contains both 0.0 and -0.0, a tie). In R: ub <- data.frame(y = UNBAL_Y, s = UNBAL_S)
TRUNC_Y = [1, 1, 1, 1, 0, 0, 0, 0, 0]
TRUNC_S = [0.62, 0.71, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.65]


def _breast_cancer():
    datasets = pytest.importorskip("sklearn.datasets")
    frame = _load_breast_cancer(datasets)
    # R: bc <- read.csv("bc.csv", check.names = FALSE)  (this frame, written with to_csv)
    return frame["target"].to_numpy(), frame


@functools.cache
def _load_breast_cancer(datasets):
    return datasets.load_breast_cancer(as_frame=True).frame


def _dataset(name):
    """(y_true, scores dict, positive) of a named dataset."""
    if name == "aSAH":
        return ASAH_Y, ASAH_SCORES, "Poor"
    if name == "reader":
        return np.array(READER_Y), {"r1": READER_1, "r2": READER_2}, 1
    if name == "unbalanced":
        return np.array(UNBAL_Y), {"s": UNBAL_S}, 1
    if name == "trunc":
        return np.array(TRUNC_Y), {"s": TRUNC_S, "neg": [-v for v in TRUNC_S]}, 1
    if name == "breast-cancer":
        y, frame = _breast_cancer()
        return y, {"radius": frame["mean radius"], "texture": frame["mean texture"]}, 0
    raise KeyError(name)


# --------------------------------------------------------------------------- #
# AUC and DeLong CI against pROC::ci.auc
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("dataset", "column", "level", "expected"),
    [
        # r <- roc(aSAH$outcome, aSAH$s100b, levels = c("Good", "Poor"), direction = "<")
        # ci.auc(r, method = "delong")
        pytest.param(
            "aSAH", "s100b", 0.95,
            (0.63011821176162264, 0.73136856368563685, 0.83261891560965107),
            id="aSAH-s100b",
        ),
        # ci.auc(r, method = "delong", conf.level = 0.9)   (r as above)
        pytest.param(
            "aSAH", "s100b", 0.90,
            (0.64639658975856984, 0.73136856368563685, 0.81634053761270375),
            id="aSAH-s100b-90pct",
        ),
        # ci.auc(roc(aSAH$outcome, as.numeric(aSAH$wfns), levels = c("Good", "Poor"),
        #            direction = "<"), method = "delong")
        pytest.param(
            "aSAH", "wfns", 0.95,
            (0.74853488781945288, 0.82367886178861793, 0.89882283575778299),
            id="aSAH-wfns-5-point-ties",
        ),
        # ci.auc(roc(aSAH$outcome, aSAH$ndka, levels = c("Good", "Poor"), direction = "<"),
        #        method = "delong")
        pytest.param(
            "aSAH", "ndka", 0.95,
            (0.50124499927170263, 0.61195799457994582, 0.72267098988818901),
            id="aSAH-ndka",
        ),
        # ci.auc(roc(rd$y, rd$r1, levels = c(0, 1), direction = "<"), method = "delong")
        pytest.param(
            "reader", "r1", 0.95,
            (0.63298726406797523, 0.76319875776397506, 0.89341025145997488),
            id="reader1-5-point",
        ),
        # ci.auc(roc(rd$y, rd$r2, levels = c(0, 1), direction = "<"), method = "delong")
        pytest.param(
            "reader", "r2", 0.95,
            (0.64123909663792555, 0.77562111801242239, 0.91000313938691924),
            id="reader2-5-point",
        ),
        # ci.auc(roc(ub$y, ub$s, levels = c(0, 1), direction = "<"), method = "delong")
        # (upper limit truncated to 1 by pROC)
        pytest.param(
            "unbalanced", "s", 0.95,
            (0.40108751086586092, 0.75368421052631573, 1.0),
            id="unbalanced-5-vs-95",
        ),
        # ci.auc(roc(c(rep(1, 4), rep(0, 5)), c(0.62, 0.71, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4,
        #            0.65), levels = c(0, 1), direction = "<"), method = "delong")
        pytest.param(
            "trunc", "s", 0.95,
            (0.81140961756503227, 0.94999999999999996, 1.0),
            id="truncated-at-1",
        ),
        # same call with the scores negated: -c(0.62, ...)
        pytest.param(
            "trunc", "neg", 0.95,
            (0.0, 0.050000000000000003, 0.18859038243496778),
            id="truncated-at-0",
        ),
        # ci.auc(roc(bc$target, bc$`mean radius`, levels = c(1, 0), direction = "<"),
        #        method = "delong")
        pytest.param(
            "breast-cancer", "radius", 0.95,
            (0.91702067085333383, 0.93751651604037833, 0.95801236122742284),
            id="breast-cancer-radius",
        ),
        # ci.auc(roc(bc$target, bc$`mean texture`, levels = c(1, 0), direction = "<"),
        #        method = "delong")
        pytest.param(
            "breast-cancer", "texture", 0.95,
            (0.73714593781150239, 0.77582448073569044, 0.81450302365987848),
            id="breast-cancer-texture",
        ),
    ],
)  # fmt: skip
def test_delong_ci_against_pROC(dataset, column, level, expected):
    y, scores, positive = _dataset(dataset)
    r = auc(y, scores[column], positive=positive, alpha=1 - level)
    low, est, high = expected
    assert r.estimate == pytest.approx(est, rel=REL)
    assert r.ci_low == pytest.approx(low, rel=REL, abs=ABS)
    assert r.ci_high == pytest.approx(high, rel=REL, abs=ABS)
    assert r.ci_level == pytest.approx(level)
    assert r.method == "DeLong"


@pytest.mark.parametrize(
    ("dataset", "column", "expected"),
    [
        # var(roc(aSAH$outcome, aSAH$s100b, levels = c("Good", "Poor"), direction = "<"),
        #     method = "delong")
        pytest.param("aSAH", "s100b", 0.0026686824571724378, id="aSAH-s100b"),
        # var(roc(aSAH$outcome, as.numeric(aSAH$wfns), levels = c("Good", "Poor"),
        #         direction = "<"), method = "delong")
        pytest.param("aSAH", "wfns", 0.0014699147088236264, id="aSAH-wfns"),
        # var(roc(c(rep(1, 4), rep(0, 5)), c(0.62, 0.71, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.65),
        #         levels = c(0, 1), direction = "<"), method = "delong")
        pytest.param("trunc", "s", 0.0049999999999999992, id="truncated-at-1"),
    ],
)
def test_delong_variance_against_pROC(dataset, column, expected):
    y, scores, positive = _dataset(dataset)
    assert auc(y, scores[column], positive=positive).se ** 2 == pytest.approx(expected, rel=REL)


def test_delong_covariance_against_pROC():
    # r_s <- roc(aSAH$outcome, aSAH$s100b, levels = c("Good", "Poor"), direction = "<")
    # r_w <- roc(aSAH$outcome, as.numeric(aSAH$wfns), levels = c("Good", "Poor"), direction = "<")
    # r_n <- roc(aSAH$outcome, aSAH$ndka, levels = c("Good", "Poor"), direction = "<")
    var_s = 0.0026686824571724378  # var(r_s, method = "delong")
    var_w = 0.0014699147088236264  # var(r_w, method = "delong")
    var_n = 0.0031908105493913021  # var(r_n, method = "delong")
    cov_sw = 0.0011961556737675448  # cov(r_s, r_w, method = "delong")
    cov_sn = -0.00075616493805657884  # cov(r_s, r_n, method = "delong")
    cov_wn = -0.00053296785676243776  # cov(r_w, r_n, method = "delong")
    expected = np.array([[var_s, cov_sw, cov_sn], [cov_sw, var_w, cov_wn], [cov_sn, cov_wn, var_n]])
    mat = np.column_stack([ASAH_SCORES[c] for c in ("s100b", "wfns", "ndka")])
    aucs, cov = delong_covariance(ASAH_Y, mat, positive="Poor")
    # auc(r_s), auc(r_w), auc(r_n)
    np.testing.assert_allclose(
        aucs, [0.73136856368563685, 0.82367886178861793, 0.61195799457994582], rtol=REL
    )
    np.testing.assert_allclose(cov, expected, rtol=REL)
    np.testing.assert_array_equal(cov, cov.T)


@pytest.mark.parametrize(
    ("dataset", "column", "level", "expected"),
    [
        # pROC has no logit interval; the transform is evaluated in R on pROC's DeLong variance:
        # lg <- function(r, lev = 0.95) { a <- as.numeric(auc(r)); v <- var(r, method = "delong")
        #   plogis(qlogis(a) + c(-1, 1) * qnorm(1 - (1 - lev) / 2) * sqrt(v) / (a * (1 - a))) }
        # lg(roc(aSAH$outcome, aSAH$s100b, levels = c("Good", "Poor"), direction = "<"))
        pytest.param(
            "aSAH", "s100b", 0.95, (0.61921693899270869, 0.82008574991347316), id="aSAH-s100b"
        ),
        # lg(roc(aSAH$outcome, aSAH$s100b, ...), 0.9)
        pytest.param(
            "aSAH", "s100b", 0.90, (0.63855102956205556, 0.80753525127099479), id="aSAH-90pct"
        ),
        # lg(roc(aSAH$outcome, as.numeric(aSAH$wfns), levels = c("Good", "Poor"), direction = "<"))
        pytest.param(
            "aSAH", "wfns", 0.95, (0.73576409664730502, 0.88684184433261204), id="aSAH-wfns"
        ),
        # lg(roc(c(rep(1, 4), rep(0, 5)), c(0.62, 0.71, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.65),
        #        levels = c(0, 1), direction = "<"))   (the Wald interval is truncated at 1)
        pytest.param(
            "trunc", "s", 0.95, (0.50668628074269861, 0.99716289857946816), id="near-1"
        ),
        # the same with the scores negated (AUC 0.05; the Wald interval is truncated at 0)
        pytest.param(
            "trunc", "neg", 0.95, (0.0028371014205317334, 0.4933137192573019969), id="near-0"
        ),
    ],
)
def test_logit_delong_ci_against_R_on_pROC_variance(dataset, column, level, expected):
    y, scores, positive = _dataset(dataset)
    wald = auc(y, scores[column], positive=positive, alpha=1 - level)
    r = auc(y, scores[column], positive=positive, alpha=1 - level, ci_method="logit")
    assert r.ci_low == pytest.approx(expected[0], rel=REL)
    assert r.ci_high == pytest.approx(expected[1], rel=REL)
    assert (r.estimate, r.se, r.n_positive) == (wald.estimate, wald.se, wald.n_positive)
    assert r.method == "DeLong (logit scale)"
    assert 0.0 < r.ci_low < r.estimate < r.ci_high < 1.0


def test_logit_interval_is_the_wald_default_unchanged_and_flips_with_the_class():
    y, scores, _ = _dataset("trunc")
    assert auc(y, scores["s"], positive=1) == auc(y, scores["s"], positive=1, ci_method="wald")
    a = auc(y, scores["s"], positive=1, ci_method="logit")
    b = auc(y, scores["s"], positive=0, ci_method="logit")  # flipping the class maps theta to 1 - theta
    assert b.estimate == pytest.approx(1 - a.estimate)
    assert (b.ci_low, b.ci_high) == pytest.approx((1 - a.ci_high, 1 - a.ci_low), rel=1e-12)


def test_logit_interval_with_zero_se_is_zero_width_and_warns():
    with pytest.warns(StatisticalWarning, match="standard error is zero"):
        r = auc([1, 1, 1, 0, 0], [3, 4, 5, 1, 2], positive=1, ci_method="logit")
    assert (r.estimate, r.ci_low, r.ci_high) == (1.0, 1.0, 1.0)


def test_unknown_ci_method_is_an_error_with_a_hint():
    with pytest.raises(StudyvalError, match="did you mean 'logit'"):
        auc([1, 1, 0, 0], [0.9, 0.2, 0.4, 0.1], positive=1, ci_method="logt")


def test_perfect_separation_against_pROC():
    # ci.auc(roc(c(1, 1, 1, 0, 0), c(3, 4, 5, 1, 2), levels = c(0, 1), direction = "<"),
    #        method = "delong")  -> 1, 1, 1 with the warning
    # "ci.auc() of a ROC curve with AUC == 1 is always 1-1 and can be misleading."
    with pytest.warns(StatisticalWarning, match="standard error is zero"):
        r = auc([1, 1, 1, 0, 0], [3, 4, 5, 1, 2], positive=1)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == (1.0, 0.0, 1.0, 1.0)


def test_constant_score_has_zero_se_and_warns():
    with pytest.warns(StatisticalWarning, match="standard error is zero"):
        r = auc([1, 1, 0, 0, 0], [2.0] * 5, positive=1)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == (0.5, 0.0, 0.5, 0.5)


# --------------------------------------------------------------------------- #
# ROC curve against pROC::coords and sklearn.metrics.roc_curve
# --------------------------------------------------------------------------- #
def test_roc_points_against_pROC_coords():
    # coords(roc(aSAH$outcome, as.numeric(aSAH$wfns), levels = c("Good", "Poor"),
    #            direction = "<"), "all", ret = c("threshold", "specificity", "sensitivity"),
    #        transpose = FALSE)
    # pROC lists thresholds ascending (-Inf, 1.5, 2.5, 3.5, 4.5, Inf) as midpoints between
    # distinct scores; we list the distinct scores themselves, descending, after +inf.
    spec = [0, 0.51388888888888884, 0.79166666666666663, 0.83333333333333337,
            0.94444444444444442, 1]  # fmt: skip
    sens = [1, 0.95121951219512191, 0.65853658536585369, 0.63414634146341464,
            0.43902439024390244, 0]  # fmt: skip
    roc = roc_curve(ASAH_Y, ASAH_SCORES["wfns"], positive="Poor")
    np.testing.assert_allclose(roc.tpr, sens[::-1], rtol=REL)
    np.testing.assert_allclose(1 - roc.fpr, spec[::-1], rtol=REL, atol=ABS)
    np.testing.assert_array_equal(roc.thresholds, [np.inf, 5, 4, 3, 2, 1])
    assert (roc.n_positive, roc.n_negative) == (41, 72)


@pytest.mark.parametrize("column", ["s100b", "wfns", "ndka"])
def test_roc_points_against_sklearn_roc_curve(column):
    metrics = pytest.importorskip("sklearn.metrics")
    y = ASAH_Y == "Poor"
    fpr, tpr, thr = metrics.roc_curve(y, ASAH_SCORES[column], drop_intermediate=False)
    roc = roc_curve(ASAH_Y, ASAH_SCORES[column], positive="Poor")
    np.testing.assert_allclose(roc.fpr, fpr)
    np.testing.assert_allclose(roc.tpr, tpr)
    np.testing.assert_array_equal(roc.thresholds, thr)


def test_roc_points_frame_and_shape():
    roc = auc(READER_Y, READER_1, positive=1).roc
    frame = roc.points_frame()
    assert list(frame.columns) == ["threshold", "fpr", "tpr", "sensitivity", "specificity"]
    assert len(frame) == len(set(READER_1)) + 1
    assert (frame.iloc[0]["fpr"], frame.iloc[0]["tpr"]) == (0.0, 0.0)
    assert (frame.iloc[-1]["fpr"], frame.iloc[-1]["tpr"]) == (1.0, 1.0)
    np.testing.assert_array_equal(frame["specificity"], 1 - frame["fpr"])
    assert np.all(np.diff(roc.fpr) >= 0) and np.all(np.diff(roc.tpr) >= 0)
    assert np.all(np.diff(roc.thresholds) < 0)
    with pytest.raises(ValueError, match="read-only"):
        roc.tpr[0] = 0.5


# --------------------------------------------------------------------------- #
# Paired comparison against pROC::roc.test(paired = TRUE, method = "delong")
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("dataset", "a", "b", "level", "expected"),
    [
        # t <- roc.test(r_s, r_w, paired = TRUE, method = "delong")  (r_* as above)
        # c(t$statistic, t$p.value, t$conf.int)
        pytest.param(
            "aSAH", "s100b", "wfns", 0.95,
            (-2.2089835914409077, 0.02717578222918815, -0.17421441924947756,
             -0.010406176956484617),
            id="aSAH-s100b-vs-wfns",
        ),
        # roc.test(r_s, r_w, paired = TRUE, method = "delong", conf.level = 0.9)
        pytest.param(
            "aSAH", "s100b", "wfns", 0.90,
            (-2.2089835914409077, 0.02717578222918815, -0.16104640335427342,
             -0.023574192851688741),
            id="aSAH-s100b-vs-wfns-90pct",
        ),
        # roc.test(r_s, r_n, paired = TRUE, method = "delong")
        pytest.param(
            "aSAH", "s100b", "ndka", 0.95,
            (1.3907700257355771, 0.16429517522305448, -0.048870606422809354,
             0.28769174463419145),
            id="aSAH-s100b-vs-ndka",
        ),
        # roc.test(r_w, r_n, paired = TRUE, method = "delong")
        pytest.param(
            "aSAH", "wfns", "ndka", 0.95,
            (2.7977759186890387, 0.0051455797069109776, 0.063401170933987644,
             0.36004056348335656),
            id="aSAH-wfns-vs-ndka",
        ),
        # roc.test(roc(rd$y, rd$r1, levels = c(0, 1), direction = "<"),
        #          roc(rd$y, rd$r2, levels = c(0, 1), direction = "<"),
        #          paired = TRUE, method = "delong")
        pytest.param(
            "reader", "r1", "r2", 0.95,
            (-0.12420199115898913, 0.90115534573091427, -0.20845286235828953,
             0.18360814186139485),
            id="reader1-vs-reader2",
        ),
        # roc.test(roc(bc$target, bc$`mean radius`, levels = c(1, 0), direction = "<"),
        #          roc(bc$target, bc$`mean texture`, levels = c(1, 0), direction = "<"),
        #          paired = TRUE, method = "delong")
        pytest.param(
            "breast-cancer", "radius", "texture", 0.95,
            (7.308787404733402, 2.6956386253426865e-13, 0.11833182406377454,
             0.20505224654560125),
            id="breast-cancer-radius-vs-texture",
        ),
    ],
)  # fmt: skip
def test_delong_paired_test_against_pROC(dataset, a, b, level, expected):
    y, scores, positive = _dataset(dataset)
    r = compare_auc(y, scores[a], scores[b], positive=positive, alpha=1 - level, names=(a, b))
    z, p, low, high = expected
    assert r.z == pytest.approx(z, rel=REL)
    assert r.p_value == pytest.approx(p, rel=1e-8)
    assert r.ci_low == pytest.approx(low, rel=REL)
    assert r.ci_high == pytest.approx(high, rel=REL)
    assert (r.name_a, r.name_b) == (a, b)
    assert r.difference == pytest.approx(r.auc_a - r.auc_b, abs=1e-15)
    assert r.method == "DeLong paired"


def test_delong_correlation_against_pROC():
    # cov(r_s, r_w, method = "delong") / sqrt(var(r_s, method = "delong") *
    #                                         var(r_w, method = "delong"))
    expected = 0.0011961556737675448 / math.sqrt(0.0026686824571724378 * 0.0014699147088236264)
    r = compare_auc(ASAH_Y, ASAH_SCORES["s100b"], ASAH_SCORES["wfns"], positive="Poor")
    assert r.correlation == pytest.approx(expected, rel=1e-8)
    # reader: cov(r1, r2, method = "delong") = -0.00044441410901038228
    r = compare_auc(READER_Y, READER_1, READER_2, positive=1)
    se1 = auc(READER_Y, READER_1, positive=1).se
    se2 = auc(READER_Y, READER_2, positive=1).se
    assert r.correlation * se1 * se2 == pytest.approx(-0.00044441410901038228, rel=1e-8)


def test_identical_models_against_pROC():
    # r_s2 <- roc(aSAH$outcome, aSAH$s100b, levels = c("Good", "Poor"), direction = "<")
    # t <- roc.test(r_s, r_s2, paired = TRUE, method = "delong")
    # c(t$statistic, t$p.value, t$conf.int) -> 0, 1, 0, 0
    s = ASAH_SCORES["s100b"]
    with pytest.warns(StatisticalWarning, match="variance of the AUC difference .* is zero"):
        r = compare_auc(ASAH_Y, s, s.copy(), positive="Poor")
    assert (r.z, r.p_value, r.ci_low, r.ci_high, r.se, r.difference) == (0, 1, 0, 0, 0, 0)
    assert r.correlation == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# Unpaired comparison against pROC::roc.test(paired = FALSE, method = "delong")
# --------------------------------------------------------------------------- #
def test_delong_unpaired_test_against_pROC():
    # m <- aSAH$gender == "Male"
    # r_m <- roc(aSAH$outcome[m], aSAH$s100b[m], levels = c("Good", "Poor"), direction = "<")
    # r_f <- roc(aSAH$outcome[!m], aSAH$s100b[!m], levels = c("Good", "Poor"), direction = "<")
    # t <- roc.test(r_m, r_f, paired = FALSE, method = "delong")
    # c(t$statistic, t$parameter, t$p.value)
    d_stat, df, p = 0.50188077432671296, 106.46255002893164, 0.61678775925824181
    s, m = ASAH_SCORES["s100b"], ASAH_MALE
    r = compare_auc_unpaired(
        ASAH_Y[m], s[m], ASAH_Y[~m], s[~m], positive="Poor", names=("male", "female")
    )
    assert r.statistic == pytest.approx(d_stat, rel=REL)
    assert r.df == pytest.approx(df, rel=REL)
    assert r.p_value == pytest.approx(p, rel=REL)
    # c(auc(r_m), var(r_m)); c(auc(r_f), var(r_f))
    assert r.auc_a == pytest.approx(0.77272727272727271, rel=REL)
    assert r.auc_b == pytest.approx(0.71999999999999997, rel=REL)
    assert r.se**2 == pytest.approx(0.0051766554816794052 + 0.0058608135499097595, rel=REL)
    assert (r.n_positive_a, r.n_negative_a, r.n_positive_b, r.n_negative_b) == (20, 22, 21, 50)
    # pROC reports no interval; ours uses the same t(df) as the p-value
    from scipy.stats import t as t_dist

    half = t_dist.ppf(0.975, df) * r.se
    assert r.ci_low == pytest.approx(r.difference - half, rel=REL)
    assert r.ci_high == pytest.approx(r.difference + half, rel=REL)
    assert (r.ci_low < 0 < r.ci_high) == (r.p_value > 0.05)
    assert r.method == "DeLong unpaired"


def test_unpaired_swap_flips_sign():
    s, m = ASAH_SCORES["s100b"], ASAH_MALE
    ab = compare_auc_unpaired(ASAH_Y[m], s[m], ASAH_Y[~m], s[~m], positive="Poor")
    ba = compare_auc_unpaired(ASAH_Y[~m], s[~m], ASAH_Y[m], s[m], positive="Poor")
    assert ba.statistic == pytest.approx(-ab.statistic)
    assert (ba.p_value, ba.df, ba.se) == pytest.approx((ab.p_value, ab.df, ab.se))
    assert (ba.ci_low, ba.ci_high) == pytest.approx((-ab.ci_high, -ab.ci_low))


# --------------------------------------------------------------------------- #
# k-model joint test against the DeLong (1988) formula evaluated in R on pROC's var/cov
# --------------------------------------------------------------------------- #
def test_joint_test_against_formula_in_R():
    # rocs <- list(r_s, r_w, r_n); th <- sapply(rocs, function(r) as.numeric(auc(r)))
    # S[i, j] <- if (i == j) var(rocs[[i]], method = "delong")
    #            else cov(rocs[[i]], rocs[[j]], method = "delong")
    # L <- rbind(c(1, -1, 0), c(0, 1, -1))
    # chi <- t(L %*% th) %*% solve(L %*% S %*% t(L)) %*% (L %*% th)
    # c(chi, pchisq(chi, df = 2, lower.tail = FALSE))
    chi2, p = 12.512728282423536, 0.0019182074646105166
    r = compare_auc_k(ASAH_Y, ASAH_SCORES, positive="Poor")
    assert r.statistic == pytest.approx(chi2, rel=REL)
    assert r.p_value == pytest.approx(p, rel=1e-8)
    assert r.df == 2
    assert r.names == ("s100b", "wfns", "ndka")
    assert r.aucs == pytest.approx((0.73136856368563685, 0.82367886178861793, 0.61195799457994582))
    statistic, p_value = r
    assert (statistic, p_value) == (r.statistic, r.p_value)


def test_joint_test_pairwise_frame_matches_pROC_pairs():
    r = compare_auc_k(ASAH_Y, ASAH_SCORES, positive="Poor")
    frame = r.pairwise_frame()
    assert list(zip(frame["name_a"], frame["name_b"], strict=True)) == [
        ("s100b", "wfns"), ("s100b", "ndka"), ("wfns", "ndka"),
    ]  # fmt: skip
    # roc.test(..., paired = TRUE, method = "delong")$statistic for the three pairs (above)
    np.testing.assert_allclose(
        frame["z"], [-2.2089835914409077, 1.3907700257355771, 2.7977759186890387], rtol=REL
    )
    p = frame["p_value"].to_numpy()
    np.testing.assert_allclose(frame["p_holm"], _holm(p))
    assert np.all(frame["p_holm"] >= frame["p_value"])
    assert "p_holm" in frame.columns and len(frame) == 3


def test_holm_adjustment_by_hand():
    # p = (0.01, 0.04, 0.03, 0.20): sorted 0.01, 0.03, 0.04, 0.20 -> 4*0.01, 3*0.03,
    # max(0.09, 2*0.04), max(0.09, 1*0.20) = 0.04, 0.09, 0.09, 0.20
    # R: p.adjust(c(0.01, 0.04, 0.03, 0.20), method = "holm") -> 0.04 0.09 0.09 0.20
    np.testing.assert_allclose(_holm(np.array([0.01, 0.04, 0.03, 0.20])), [0.04, 0.09, 0.09, 0.2])


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #
def _naive_delong(y, scores):
    """O(m n k) DeLong straight from the definitions (DeLong et al. 1988)."""
    scores = np.asarray(scores, dtype=float)
    if scores.ndim == 1:
        scores = scores[:, None]
    x, yy = scores[y], scores[~y]
    psi = (x[:, None, :] > yy[None, :, :]) + 0.5 * (x[:, None, :] == yy[None, :, :])
    v10, v01 = psi.mean(axis=1), psi.mean(axis=0)
    theta = psi.mean(axis=(0, 1))
    s10 = np.atleast_2d(np.cov(v10, rowvar=False))
    s01 = np.atleast_2d(np.cov(v01, rowvar=False))
    return theta, s10 / x.shape[0] + s01 / yy.shape[0], v10, v01


@st.composite
def _tied_cases(draw, max_n=40, max_k=3):
    n = draw(st.integers(4, max_n))
    rest = draw(st.lists(st.booleans(), min_size=n - 4, max_size=n - 4))
    y = np.array([True, True, False, False, *rest])
    y = y[draw(st.permutations(range(n)))]
    k = draw(st.integers(1, max_k))
    levels = draw(st.sampled_from([1, 2, 4, 10, 1000]))
    s = draw(arrays(np.int64, (n, k), elements=st.integers(0, levels)))
    return y, s.astype(float) / levels


@settings(max_examples=50, deadline=None)
@given(_tied_cases())
def test_fast_delong_equals_naive_implementation(case):
    y, s = case
    theta, cov, v10, v01 = _naive_delong(y, s)
    aucs, fast = delong_covariance(y, s, positive=True)
    np.testing.assert_allclose(aucs, theta, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(fast, cov, rtol=1e-9, atol=1e-15)
    pl = _placements(y, s.T)
    np.testing.assert_allclose(pl.v10, v10.T, rtol=1e-12)
    np.testing.assert_allclose(pl.v01, v01.T, rtol=1e-12)
    np.testing.assert_array_equal(pl.positive_index, np.flatnonzero(y))
    for j in range(s.shape[1]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)  # zero-variance draws
            r = auc(y, s[:, j], positive=True)
        assert r.estimate == pytest.approx(theta[j], rel=1e-12, abs=1e-15)
        assert r.se == pytest.approx(math.sqrt(max(cov[j, j], 0.0)), rel=1e-9, abs=1e-12)
        assert 0.0 <= r.ci_low <= r.estimate <= r.ci_high <= 1.0


@settings(max_examples=40, deadline=None)
@given(_tied_cases(max_k=1))
def test_auc_equals_sklearn_and_trapezoid(case):
    metrics = pytest.importorskip("sklearn.metrics")
    y, s = case
    s = s[:, 0]
    roc = roc_curve(y, s, positive=True)
    assert metrics.roc_auc_score(y, s) == pytest.approx(
        float(np.trapezoid(roc.tpr, roc.fpr)), rel=1e-12, abs=1e-15
    )
    theta = _naive_delong(y, s)[0][0]
    assert float(np.trapezoid(roc.tpr, roc.fpr)) == pytest.approx(theta, rel=1e-12, abs=1e-15)
    assert roc.thresholds.size == np.unique(s).size + 1


def test_auc_equals_sklearn_on_continuous_and_big_ties():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y = rng.random(5000) < 0.2
    for s in (rng.normal(size=5000) + y, rng.integers(0, 5, 5000) + y * rng.integers(0, 2, 5000)):
        assert auc(y, s, positive=True).estimate == pytest.approx(
            metrics.roc_auc_score(y, s), rel=1e-12
        )


def test_monotone_transform_leaves_everything_unchanged():
    s = ASAH_SCORES["ndka"]
    a, b = auc(ASAH_Y, s, positive="Poor"), auc(ASAH_Y, np.log(s), positive="Poor")
    assert (a.estimate, a.se) == pytest.approx((b.estimate, b.se), rel=1e-12)


def test_flipping_positive_class():
    s = ASAH_SCORES["s100b"]
    base = auc(ASAH_Y, s, positive="Poor")
    # other class positive, scores negated: the same ranking problem, same AUC and SE
    same = auc(ASAH_Y, -s, positive="Good")
    assert (same.estimate, same.se) == pytest.approx((base.estimate, base.se), rel=1e-12)
    # other class positive, scores not negated: AUC -> 1 - AUC, same SE
    flipped = auc(ASAH_Y, s, positive="Good")
    assert flipped.estimate == pytest.approx(1 - base.estimate, rel=1e-12)
    assert flipped.se == pytest.approx(base.se, rel=1e-12)
    assert flipped.ci_low == pytest.approx(1 - base.ci_high, rel=1e-12)


def test_swapping_models_flips_the_difference():
    ab = compare_auc(ASAH_Y, ASAH_SCORES["s100b"], ASAH_SCORES["ndka"], positive="Poor")
    ba = compare_auc(ASAH_Y, ASAH_SCORES["ndka"], ASAH_SCORES["s100b"], positive="Poor")
    assert ba.difference == -ab.difference
    assert ba.z == pytest.approx(-ab.z, rel=1e-12)
    assert (ba.se, ba.p_value, ba.correlation) == pytest.approx(
        (ab.se, ab.p_value, ab.correlation), rel=1e-12
    )
    assert (ba.ci_low, ba.ci_high) == pytest.approx((-ab.ci_high, -ab.ci_low), rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(_tied_cases(max_k=1))
def test_identical_curves_give_z0_p1(case):
    y, s = case
    with pytest.warns(StatisticalWarning, match="is zero"):
        r = compare_auc(y, s[:, 0], s[:, 0].copy(), positive=True)
    assert (r.z, r.p_value, r.difference, r.se) == (0.0, 1.0, 0.0, 0.0)


def test_monotone_related_models_are_degenerate_not_nan():
    s = ASAH_SCORES["ndka"]
    with pytest.warns(StatisticalWarning, match="is zero"):
        r = compare_auc(ASAH_Y, s, np.sqrt(s), positive="Poor")
    assert (r.z, r.p_value) == (0.0, 1.0)


def test_perfect_versus_constant_model_is_infinite_z():
    y = np.array([1, 1, 1, 0, 0, 0])
    perfect, constant = np.array([4.0, 5, 6, 1, 2, 3]), np.zeros(6)
    with pytest.warns(StatisticalWarning):
        r = compare_auc(y, perfect, constant, positive=1)
    assert (r.difference, r.se, r.z, r.p_value) == (0.5, 0.0, math.inf, 0.0)
    with pytest.warns(StatisticalWarning):
        j = compare_auc_k(y, {"perfect": perfect, "constant": constant}, positive=1)
    assert (j.statistic, j.p_value) == (math.inf, 0.0)


@settings(max_examples=30, deadline=None)
@given(_tied_cases(max_k=1), st.integers(0, 2**32 - 1))
def test_joint_test_with_two_models_is_z_squared(case, seed):
    y, s = case
    other = np.random.default_rng(seed).permutation(s[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # degenerate draws
        pair = compare_auc(y, s[:, 0], other, positive=True)
        joint = compare_auc_k(y, {"a": s[:, 0], "b": other}, positive=True)
    assert joint.statistic == pytest.approx(pair.z**2, rel=1e-9, abs=1e-12)
    assert joint.p_value == pytest.approx(pair.p_value, rel=1e-7, abs=1e-12)
    assert joint.pairwise[0].z == pair.z


def test_joint_test_of_identical_models_is_degenerate_not_nan():
    s = ASAH_SCORES["s100b"]
    with (
        pytest.warns(StatisticalWarning, match="a - b is zero"),
        pytest.warns(StatisticalWarning, match=r"singular \(rank 0\)"),
    ):
        r = compare_auc_k(ASAH_Y, {"a": s, "b": s.copy()}, positive="Poor")
    assert (r.statistic, r.df, r.p_value) == (0.0, 0, 1.0)


def test_joint_test_with_duplicate_model_drops_a_degree_of_freedom():
    three = compare_auc_k(ASAH_Y, ASAH_SCORES, positive="Poor")
    scores = dict(ASAH_SCORES, s100b_again=ASAH_SCORES["s100b"].copy())
    with (
        pytest.warns(StatisticalWarning, match="s100b - s100b_again is zero"),
        pytest.warns(StatisticalWarning, match="singular"),
    ):
        four = compare_auc_k(ASAH_Y, scores, positive="Poor")
    assert four.df == 2
    assert four.statistic == pytest.approx(three.statistic, rel=1e-8)
    assert four.p_value == pytest.approx(three.p_value, rel=1e-7)


def test_result_objects_are_frozen_tidy_and_unpack():
    r = auc(ASAH_Y, ASAH_SCORES["s100b"], positive="Poor")
    assert isinstance(r, AUCResult) and isinstance(r.roc, ROCCurve)
    est, low, high = r
    assert (est, low, high) == (r.estimate, r.ci_low, r.ci_high)
    frame = r.to_frame()
    assert list(frame.columns) == [
        "estimate", "se", "ci_low", "ci_high", "ci_level", "n_positive", "n_negative", "method",
    ]  # fmt: skip
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 0.5  # type: ignore[misc]
    assert r.roc == roc_curve(ASAH_Y, ASAH_SCORES["s100b"], positive="Poor")
    assert r == auc(ASAH_Y, ASAH_SCORES["s100b"], positive="Poor")
    assert r != auc(ASAH_Y, ASAH_SCORES["ndka"], positive="Poor")
    assert r.roc != auc(ASAH_Y, ASAH_SCORES["ndka"], positive="Poor").roc
    pair = compare_auc(ASAH_Y, ASAH_SCORES["s100b"], ASAH_SCORES["wfns"], positive="Poor")
    assert isinstance(pair, PairedAUCComparison)
    assert pair.to_frame().shape == (1, 15)
    z, p = pair
    assert (z, p) == (pair.z, pair.p_value)
    assert pair == compare_auc(ASAH_Y, ASAH_SCORES["s100b"], ASAH_SCORES["wfns"], positive="Poor")
    assert pair != compare_auc(ASAH_Y, ASAH_SCORES["wfns"], ASAH_SCORES["s100b"], positive="Poor")
    s, m = ASAH_SCORES["s100b"], ASAH_MALE
    unp = compare_auc_unpaired(ASAH_Y[m], s[m], ASAH_Y[~m], s[~m], positive="Poor")
    assert isinstance(unp, UnpairedAUCComparison)
    joint = compare_auc_k(ASAH_Y, ASAH_SCORES, positive="Poor")
    assert isinstance(joint, JointAUCTest)
    assert set(joint.to_frame().columns) == {
        "statistic", "df", "p_value", "ci_level", "n_positive", "n_negative", "method",
    }  # fmt: skip
    assert isinstance(joint.pairwise_frame(), pd.DataFrame)
    assert joint == compare_auc_k(ASAH_Y, ASAH_SCORES, positive="Poor")
    assert joint.covariance.flags.writeable is False


# --------------------------------------------------------------------------- #
# Error paths
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("y", "s", "positive", "error", "match"),
    [
        pytest.param([1, 1, 1], [0.1, 0.2, 0.3], 1, EstimationError, "single class",
                     id="single-class"),
        pytest.param([0, 0, 2, 2], [0.1, 0.2, 0.3, 0.4], 1, EstimationError,
                     "positive=1 does not occur", id="positive-label-absent"),
        pytest.param([0, 1, 0, 1], [0.1, np.nan, 0.3, 0.4], 1, StudyvalError,
                     "non-finite value.*position 1", id="nan-score"),
        pytest.param([0, 1, 0, 1], [0.1, 0.2, np.inf, 0.4], 1, StudyvalError,
                     "non-finite value.*position 2", id="inf-score"),
        pytest.param([0, 1, 0, 1], [0.1, 0.2, 0.3], 1, StudyvalError,
                     "has 3 values but y_true has 4", id="length-mismatch"),
        pytest.param([0, 1, 0, 0], [0.1, 0.2, 0.3, 0.4], 1, EstimationError,
                     "at least 2 positive and 2 negative.*1 positive", id="one-positive"),
        pytest.param([0, 1, 1, 1], [0.1, 0.2, 0.3, 0.4], 1, EstimationError,
                     "at least 2 positive and 2 negative.*1 negative", id="one-negative"),
    ],
)  # fmt: skip
def test_auc_errors(y, s, positive, error, match):
    with pytest.raises(error, match=match):
        auc(y, s, positive=positive)


def test_one_positive_case_against_pROC():
    # ci.auc(roc(c(1, 0, 0, 0), c(3, 1, 2, 4), levels = c(0, 1), direction = "<"),
    #        method = "delong")  -> NA, NA, NA.  We raise instead of returning NaN.
    with pytest.raises(EstimationError, match="pROC returns NA"):
        auc([1, 0, 0, 0], [3, 1, 2, 4], positive=1)
    # the ROC curve itself exists with one positive
    assert roc_curve([1, 0, 0, 0], [3, 1, 2, 4], positive=1).n_positive == 1


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        pytest.param(lambda: roc_curve([1, 1], [0.1, 0.2], positive=1), EstimationError,
                     "single class", id="roc-single-class"),
        pytest.param(lambda: auc([0, 1, 0, 1], [1, 2, 3, 4], positive=1, alpha=1.5),
                     StudyvalError, "alpha must be in", id="bad-alpha"),
        pytest.param(lambda: auc([0, 1, 0, 1], [1, 2, 3, 4]), TypeError, "positive",
                     id="positive-is-required"),
        pytest.param(lambda: compare_auc([0, 1, 0, 1], [1, 2, 3, 4], [1, 2, np.nan, 4],
                                         positive=1), StudyvalError, "score_b has 1 non-finite",
                     id="paired-nan-in-b"),
        pytest.param(lambda: compare_auc([0, 1, 0, 1], [1, 2, 3, 4], [1, 2, 3], positive=1),
                     StudyvalError, "score_b has 3 values", id="paired-length-mismatch"),
        pytest.param(lambda: compare_auc([0, 1, 0, 1], [1, 2, 3, 4], [4, 3, 2, 1], positive=1,
                                         names=("a",)), StudyvalError, "names must hold 2",
                     id="paired-bad-names"),
        pytest.param(lambda: compare_auc_unpaired([0, 1, 0, 1], [1, 2, 3, 4], [0, 0, 0, 1],
                                                  [1, 2, 3, 4], positive=1), EstimationError,
                     "y_b has 1 positive", id="unpaired-one-positive-in-b"),
        pytest.param(lambda: compare_auc_k([0, 1, 0, 1], {"a": [1, 2, 3, 4]}, positive=1),
                     StudyvalError, "at least 2 models", id="k-one-model"),
        pytest.param(lambda: compare_auc_k([0, 1, 0, 1], [[1, 2, 3, 4]], positive=1),
                     StudyvalError, "must be a mapping", id="k-not-a-mapping"),
        pytest.param(lambda: compare_auc_k([0, 1, 0, 1], {"a": [1, 2, 3, 4], "b": [1, 2, 3]},
                                           positive=1), StudyvalError,
                     r"scores\['b'\] has 3 values", id="k-length-mismatch"),
        pytest.param(lambda: delong_covariance([0, 1, 0, 1], [1, 2, 3, 4], positive=1),
                     StudyvalError, "two-dimensional", id="cov-1d-scores"),
        pytest.param(lambda: delong_covariance([0, 1, 0, 1], [[1, 2], [2, np.inf], [3, 1],
                                                              [4, 0]], positive=1),
                     StudyvalError, r"scores\[:, 1\] has 1 non-finite", id="cov-inf"),
    ],
)  # fmt: skip
def test_other_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
