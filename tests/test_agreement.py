"""Tests for studyval.analysis.agreement and studyval.figures.agreement.

Oracles
-------
* R 4.x with psych 2.2.9 (``irr`` is not installed, so it is not used):
  ``psych::cohen.kappa`` and ``psych::ICC(x, lmer = FALSE)``. The exact R call
  sits beside each expected value, printed with ``sprintf("%.17g", ...)``.
  R is a development oracle only; nothing here runs R.
* ``psych::cohen.kappa`` *patched* for the weighted variance: psych 2.2.9 has
  ``roww <- rowSums(w * rs)`` where Fleiss, Cohen & Everitt (1969) need
  ``sum_i p_i. w_ij``, i.e. ``colSums(w * rs)``. The patch is

  .. code-block:: r

      f <- psych:::cohen.kappa1; b <- deparse(body(f))
      i <- grep("roww <- rowSums", b); b[i] <- sub("rowSums", "colSums", b[i])
      body(f) <- parse(text = b)[[1]]       # then f(x, w, ...) as cohen.kappa

  and is cross-checked against ``statsmodels.stats.inter_rater.cohens_kappa``
  (run live) and a numerical delta-method variance written here.
* Published values: Cohen (1968) kappa .492 and weighted kappa .348; Shrout &
  Fleiss (1979) Table 4 ICCs; Bland & Altman (1986) PEFR example (bias -2.1,
  SD 38.8, lower limit -79.7 with CI -114.3 to -45.1, using 2 SD).
* Base R for Bland-Altman (``mean``, ``sd``, ``qt``, ``qt(..., ncp=)`` for
  Carkeet's exact limits, ``lm``, ``aov`` for the repeated-pairs ANOVA).
* ``sklearn.metrics.cohen_kappa_score`` for kappa point estimates.
* Cluster bootstrap of kappa, same resamples in R: the KL knees (``KL_A``,
  ``KL_B``) are 20 patients with two knees each (rows ``2p``, ``2p + 1`` =
  patient ``p``, 0-based); the patient draws of the engine
  (:mod:`studyval.analysis.resampling`) are exported with

  .. code-block:: python

      d = numpy.random.Generator(numpy.random.PCG64(20240611)).integers(0, 20, size=(200, 20))
      numpy.savetxt("kl_draws.csv", d, fmt="%d", delimiter=",")

  and in R every resample's kappa is ``psych::cohen.kappa`` of the drawn
  patients' knees; the interval is R's ``quantile(type = 7)`` (numpy's
  default, the engine's percentile rule)::

      k <- data.frame(a = KL_A, b = KL_B, pid = (0:39) %/% 2)
      D <- as.matrix(read.csv("kl_draws.csv", header = FALSE))
      lin <- 1 - abs(outer(0:4, 0:4, "-")) / 4
      kq <- sapply(1:200, function(r) {
        i <- unlist(lapply(D[r, ], function(g) which(k$pid == g)))
        cohen.kappa(cbind(k$a[i], k$b[i]), levels = 0:4)$weighted.kappa  # w = lin; $kappa
      })
      sprintf("%.17g", c(quantile(kq, c(0.025, 0.975), type = 7), sd(kq)))

Deliberate deviations from psych (documented in the module):
* weighted-kappa standard error: formula of Fleiss et al. (1969), not psych's
  (see above); ``test_weighted_se_differs_from_unpatched_psych`` shows the gap;
* ICC: ``psych::ICC``'s default ``lmer = TRUE`` uses REML variance components;
  we match ``lmer = FALSE`` (identical to REML unless a component estimate is
  negative, and lmer agrees to ~1e-6 here); missing ratings are an error.
"""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from studyval.analysis.agreement import (
    BlandAltmanResult,
    ICCResult,
    KappaResult,
    _repeated_pairs_statistic,
    bland_altman,
    cohen_kappa,
    icc,
    kappa_from_table,
    weighted_kappa,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.figures.agreement import bland_altman_figure, confusion_matrix_figure

REL = 1e-9  # the requirement is 1e-6; observed agreement is ~1e-15

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
# Fleiss, Cohen & Everitt (1969), Psychol Bull 72:323-327: 200 patients, three
# diagnostic categories, and their agreement weights (as in ?psych::cohen.kappa).
FCE_TABLE = [[106, 10, 4], [22, 28, 10], [2, 12, 6]]
FCE_WEIGHTS = [[1.0, 0.0, 0.4444], [0.0, 1.0, 0.6667], [0.4444, 0.6667, 1.0]]
# Cohen (1968), Psychol Bull 70:213-220: proportions x 200 and disagreement weights.
COHEN_TABLE = [[88, 14, 18], [10, 40, 10], [2, 6, 12]]
COHEN_DISAGREEMENT = np.array([[0, 1, 3], [1, 0, 6], [3, 6, 0]], dtype=float)
# ?psych::cohen.kappa, "with thanks to Tim Bates"
BATES_1 = [1, 2, 3, 4, 5, 6, 7, 8, 9]
BATES_2 = [1, 3, 1, 6, 1, 5, 5, 6, 7]
# 40 knees graded (Kellgren-Lawrence 0..4) by two readers; generated once with
# numpy (seed 7); grade 4 is used by nobody.
KL_A = [2, 3, 2, 0, 1, 3, 0, 2, 2, 1, 1, 0, 0, 1, 1, 1, 3, 2, 2, 3,
        0, 0, 2, 0, 0, 1, 1, 3, 2, 1, 1, 0, 0, 0, 2, 0, 1, 0, 2, 0]  # fmt: skip
KL_B = [2, 3, 3, 1, 0, 3, 1, 3, 2, 1, 0, 0, 0, 0, 1, 1, 3, 2, 2, 3,
        0, 0, 2, 0, 0, 0, 1, 3, 2, 1, 1, 0, 0, 1, 2, 0, 1, 1, 2, 0]  # fmt: skip
KL = list(range(5))
LINEAR_5 = 1.0 - np.abs(np.subtract.outer(np.arange(5), np.arange(5))) / 4.0

# Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges (?psych::ICC).
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
# 12 targets x 3 raters, generated once with numpy (seed 20240611) and rounded.
RND = np.array([
    [49.6, 48.0, 44.5], [41.4, 46.0, 45.8], [53.8, 54.4, 50.3], [33.1, 38.8, 32.2],
    [53.0, 54.2, 53.8], [48.0, 54.0, 45.2], [46.5, 47.4, 48.3], [44.9, 55.9, 46.7],
    [31.8, 36.8, 28.9], [45.1, 49.7, 46.8], [38.4, 44.0, 42.7], [52.9, 53.8, 52.3],
])  # fmt: skip

# Bland & Altman (1986), Lancet 327:307-310, Table 1: PEFR (l/min) of 17
# subjects, two readings with the Wright and with the mini Wright meter.
WRIGHT_1 = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
WRIGHT_2 = [490, 397, 512, 401, 470, 611, 415, 431, 638, 429, 420, 633, 275, 492, 165, 372, 421]
MINI_1 = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]
MINI_2 = [525, 415, 508, 444, 500, 625, 460, 390, 642, 432, 420, 605, 227, 467, 268, 370, 443]


def _long(y: np.ndarray) -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame(
        [(f"S{i + 1}", f"J{j + 1}", y[i, j]) for i in range(n) for j in range(k)],
        columns=["target", "rater", "rating"],
    )


def _icc(y: np.ndarray, **kw) -> ICCResult:
    return icc(_long(y), targets="target", raters="rater", ratings="rating", **kw)


# =========================================================================== kappa


def test_unweighted_kappa_fce_table_against_psych():
    r = kappa_from_table(FCE_TABLE)
    # fleiss <- matrix(c(106,10,4, 22,28,10, 2,12,6), ncol=3, byrow=TRUE)
    # r <- cohen.kappa(fleiss, n.obs=200); r$kappa; r$var.kappa; r$confid[1, ]
    assert r.estimate == pytest.approx(0.42857142857142871, rel=REL)
    assert r.se**2 == pytest.approx(0.0028848720440557162, rel=REL)
    assert r.ci_low == pytest.approx(0.32329979345440529, rel=REL)
    assert r.ci_high == pytest.approx(0.53384306368845214, rel=REL)
    assert (r.n, r.n_categories, r.n_agree, r.weights) == (200, 3, 140, "unweighted")
    assert r.observed_agreement == pytest.approx(0.7)
    assert r.expected_agreement == pytest.approx(0.475)


def test_null_se_and_test_against_statsmodels():
    inter_rater = pytest.importorskip("statsmodels.stats.inter_rater")
    for weights, disagreement in [(None, None), (FCE_WEIGHTS, 1.0 - np.array(FCE_WEIGHTS))]:
        r = kappa_from_table(FCE_TABLE, weights=weights)
        sm = inter_rater.cohens_kappa(np.array(FCE_TABLE), weights=disagreement)
        assert r.se_null**2 == pytest.approx(sm.var_kappa0, rel=REL)
        assert r.se**2 == pytest.approx(sm.var_kappa, rel=REL)
        assert r.z == pytest.approx(sm.z_value, rel=REL)
        assert r.p_value == pytest.approx(sm.pvalue_two_sided, rel=1e-6, abs=1e-300)
    # unweighted null variance, statsmodels: cohens_kappa(table).var_kappa0
    assert kappa_from_table(FCE_TABLE).se_null ** 2 == pytest.approx(0.0030816326530612257, rel=REL)


def test_weighted_kappa_fce_weights_against_patched_psych():
    r = kappa_from_table(FCE_TABLE, weights=FCE_WEIGHTS)
    # w <- matrix(c(1,0,0.4444, 0,1,0.6667, 0.4444,0.6667,1), ncol=3)
    # r <- cohen.kappa(fleiss, w, n.obs=200); r$weighted.kappa
    assert r.estimate == pytest.approx(0.50706996486679778, rel=REL)
    assert r.weights == "custom"
    # r <- f(fleiss, w, n.obs=200)   # f = patched cohen.kappa1 (module docstring)
    # r$var.weighted; r$confid[2, ]
    assert r.se**2 == pytest.approx(0.0032483028935682248, rel=REL)
    assert r.ci_low == pytest.approx(0.3953640035093845, rel=REL)
    assert r.ci_high == pytest.approx(0.61877592622421107, rel=REL)


def test_weighted_se_differs_from_unpatched_psych():
    """Documented deviation: psych 2.2.9's weighted variance is not Fleiss et al.'s."""
    r = kappa_from_table(FCE_TABLE, weights=FCE_WEIGHTS)
    # cohen.kappa(fleiss, w, n.obs=200)$var.weighted  (unpatched psych 2.2.9)
    psych_var = 0.0027485734838914636
    assert abs(r.se**2 - psych_var) > 0.1 * psych_var
    # ... and with identity weights psych's weighted and unweighted variances coincide,
    # as they do here, which localises psych's slip to the off-diagonal weights:
    # cohen.kappa(fleiss, diag(3), n.obs=200)$var.weighted
    assert kappa_from_table(FCE_TABLE, weights=np.eye(3)).se ** 2 == pytest.approx(
        0.0028848720440557175, rel=REL
    )


def test_cohen_1968_published_kappas():
    # Cohen (1968) reports kappa = .492 and weighted kappa = .348 (?psych::cohen.kappa).
    plain = kappa_from_table(COHEN_TABLE)
    weighted = kappa_from_table(COHEN_TABLE, weights=1.0 - COHEN_DISAGREEMENT / 6.0)
    assert round(plain.estimate, 3) == 0.492
    assert round(weighted.estimate, 3) == 0.348
    # cohen <- matrix(c(.44,.07,.09, .05,.20,.05, .01,.03,.06), ncol=3, byrow=TRUE)
    # cw <- matrix(c(0,1,3, 1,0,6, 3,6,0), ncol=3)
    # r <- cohen.kappa(cohen, 1 - cw/6, n.obs=200); r$kappa; r$var.kappa; r$weighted.kappa
    assert plain.estimate == pytest.approx(0.49152542372881347, rel=REL)
    assert plain.se**2 == pytest.approx(0.0026011851920562587, rel=REL)
    assert weighted.estimate == pytest.approx(0.34782608695652162, rel=REL)
    # f(cohen, 1 - cw/6, n.obs=200)$var.weighted   (patched)
    assert weighted.se**2 == pytest.approx(0.0057008563196005351, rel=REL)
    # rescaling disagreement weights changes nothing (psych's example uses 1 - cw/9)
    other = kappa_from_table(COHEN_TABLE, weights=1.0 - COHEN_DISAGREEMENT / 9.0)
    assert other.estimate == pytest.approx(weighted.estimate, rel=1e-12)
    assert other.se == pytest.approx(weighted.se, rel=1e-9)


def test_psych_documentation_example_quadratic_default():
    # rater1 = 1:9; rater2 = c(1,3,1,6,1,5,5,6,7)
    # r <- cohen.kappa(x=cbind(rater1,rater2)); r$kappa; r$var.kappa; r$weighted.kappa
    cats = list(range(1, 10))
    plain = weighted_kappa(BATES_1, BATES_2, categories=cats)
    quad = weighted_kappa(BATES_1, BATES_2, weights="quadratic", categories=cats)
    assert plain.estimate == pytest.approx(0.0, abs=1e-15)
    assert plain.se**2 == pytest.approx(0.0088734567901234563, rel=REL)
    assert quad.estimate == pytest.approx(0.67796610169491489, rel=REL)
    # f(cbind(rater1, rater2))$var.weighted (patched; equals unpatched here)
    assert quad.se**2 == pytest.approx(0.016042149649459655, rel=REL)


@pytest.mark.parametrize(
    ("weights", "estimate", "variance", "ci"),
    [
        # r <- cohen.kappa(cbind(a, b), levels = 0:4); r$kappa; r$var.kappa; r$confid[1, ]
        pytest.param(
            None,
            0.65753424657534243,
            0.009101541656664585,
            (0.47054976198127463, 0.84451873116941023),
            id="unweighted",
        ),
        # r <- f(cbind(a, b), levels = 0:4)   (patched; quadratic is psych's default)
        pytest.param(
            "quadratic",
            0.89082969432314418,
            0.0012007074205202012,
            (0.82291454055294189, 0.95874484809334648),
            id="quadratic",
        ),
        # lin <- 1 - abs(outer(0:4, 0:4, "-"))/4; r <- f(cbind(a, b), w = lin, levels = 0:4)
        pytest.param(
            "linear",
            0.78813559322033899,
            0.0038488125567832003,
            (0.66654178192447933, 0.90972940451619866),
            id="linear",
        ),
        pytest.param(
            LINEAR_5,
            0.78813559322033899,
            0.0038488125567832003,
            (0.66654178192447933, 0.90972940451619866),
            id="linear-as-matrix",
        ),
    ],
)
def test_kellgren_lawrence_readers_against_psych(weights, estimate, variance, ci):
    r = weighted_kappa(KL_A, KL_B, weights=weights, categories=KL)
    assert r.estimate == pytest.approx(estimate, rel=REL)
    assert r.se**2 == pytest.approx(variance, rel=REL)
    assert (r.ci_low, r.ci_high) == pytest.approx(ci, rel=REL)
    assert r.n_categories == 5 and r.n == 40


def test_unpatched_psych_weighted_variance_is_zero_on_kl_data():
    """psych 2.2.9 reports var.weighted = 0 here (negative, set to 0 with a 'bad' flag)."""
    # cohen.kappa(cbind(a, b), levels = 0:4)$var.weighted  -> 0
    r = weighted_kappa(KL_A, KL_B, weights="quadratic", categories=KL)
    assert r.se > 0.03


def test_alpha_changes_only_the_interval():
    # f(cbind(a, b), w = lin, levels = 0:4, alpha = 0.1)$confid[2, ]
    r = weighted_kappa(KL_A, KL_B, weights="linear", categories=KL, alpha=0.1)
    assert (r.ci_low, r.ci_high) == pytest.approx(
        (0.68609084999931347, 0.89018033644136452), rel=REL
    )
    assert r.ci_level == pytest.approx(0.9)


def _delta_method_variance(counts: np.ndarray, w: np.ndarray) -> float:
    """Multinomial delta method with a numerical gradient (independent of the FCE algebra)."""
    p = counts / counts.sum()

    def kappa(x: np.ndarray) -> float:
        q = x.reshape(p.shape)
        po = (w * q).sum()
        pe = (w * np.outer(q.sum(1), q.sum(0))).sum()
        return (po - pe) / (1 - pe)

    x = p.ravel()
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = 1e-6
        grad[i] = (kappa(x + e) - kappa(x - e)) / 2e-6
    return float((x @ grad**2 - (x @ grad) ** 2) / counts.sum())


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"], ids=["none", "linear", "quad"])
@pytest.mark.parametrize("seed", [1, 2, 3], ids=["seed1", "seed2", "seed3"])
def test_variance_equals_numerical_delta_method(weights, seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 15, size=(4, 4)) + np.diag(rng.integers(5, 20, size=4))
    r = kappa_from_table(counts, weights=weights)
    w = np.asarray(r.weight_matrix)
    assert r.se**2 == pytest.approx(_delta_method_variance(counts.astype(float), w), rel=1e-6)


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"], ids=["none", "linear", "quad"])
@pytest.mark.parametrize("seed", [11, 12], ids=["seed11", "seed12"])
def test_estimate_equals_sklearn(weights, seed):
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 6, size=200)
    b = np.clip(a + rng.integers(-2, 3, size=200), 0, 6)  # grade 6 exists only for b
    cats = list(range(8))  # grade 7 used by nobody
    r = weighted_kappa(a, b, weights=weights, categories=cats)
    expected = metrics.cohen_kappa_score(a, b, labels=cats, weights=weights)
    assert r.estimate == pytest.approx(expected, rel=1e-12)


def test_unused_middle_grade_changes_weighted_kappa():
    metrics = pytest.importorskip("sklearn.metrics")
    a = [0, 1, 3, 4, 4, 3, 1, 0, 1, 3]
    b = [0, 1, 4, 4, 3, 3, 0, 1, 3, 1]  # nobody grades 2
    full = weighted_kappa(a, b, weights="linear", categories=[0, 1, 2, 3, 4])
    squeezed = weighted_kappa(a, b, weights="linear", categories=[0, 1, 3, 4])
    assert full.estimate != pytest.approx(squeezed.estimate, rel=1e-3)
    assert full.estimate == pytest.approx(
        metrics.cohen_kappa_score(a, b, labels=[0, 1, 2, 3, 4], weights="linear"), rel=1e-12
    )
    # an unused grade at the end of the scale leaves linear kappa unchanged
    longer = weighted_kappa(a, b, weights="linear", categories=[0, 1, 2, 3, 4, 5])
    assert longer.estimate == pytest.approx(full.estimate, rel=1e-12)
    assert longer.se == pytest.approx(full.se, rel=1e-9)


def test_string_labels_and_category_order():
    a = ["none", "mild", "severe", "mild", "none", "severe", "mild"]
    b = ["none", "severe", "severe", "mild", "mild", "severe", "mild"]
    r = weighted_kappa(a, b, weights="linear", categories=["none", "mild", "severe"])
    codes = {"none": 0, "mild": 1, "severe": 2}
    same = weighted_kappa(
        [codes[x] for x in a], [codes[x] for x in b], weights="linear", categories=[0, 1, 2]
    )
    assert r.estimate == pytest.approx(same.estimate, rel=1e-12)
    assert r.confusion_frame().loc["mild", "severe"] == 1
    assert list(r.confusion_frame().index) == ["none", "mild", "severe"]


def test_swapping_raters_keeps_kappa_and_se():
    r = weighted_kappa(KL_A, KL_B, weights="quadratic", categories=KL)
    s = weighted_kappa(KL_B, KL_A, weights="quadratic", categories=KL)
    assert s.estimate == pytest.approx(r.estimate, rel=1e-12)
    assert s.se == pytest.approx(r.se, rel=1e-10)
    assert s.se_null == pytest.approx(r.se_null, rel=1e-10)


def test_perfect_agreement_has_zero_se_and_warns():
    with pytest.warns(StatisticalWarning, match="standard error of kappa is zero"):
        r = weighted_kappa([0, 1, 2, 2, 1], [0, 1, 2, 2, 1], weights="linear", categories=[0, 1, 2])
    assert (r.estimate, r.ci_low, r.ci_high) == (1.0, 1.0, 1.0)
    assert r.p_value < 0.05


def test_unweighted_default_categories_and_alias():
    r = cohen_kappa(KL_A, KL_B)
    assert r.categories == (0, 1, 2, 3)
    assert r.estimate == pytest.approx(0.65753424657534243, rel=REL)
    assert r == weighted_kappa(KL_A, KL_B)


def test_kappa_result_is_a_tidy_frozen_result():
    r = weighted_kappa(KL_A, KL_B, weights="linear", categories=KL)
    est, lo, hi = r
    assert (est, lo, hi) == (r.estimate, r.ci_low, r.ci_high)
    frame = r.to_frame()
    assert frame.shape[0] == 1
    assert {"estimate", "se", "se_null", "ci_low", "ci_high", "ci_level", "z", "p_value",
            "n", "n_categories", "weights", "observed_agreement", "expected_agreement",
            "method"} <= set(frame.columns)  # fmt: skip
    assert "counts" not in frame.columns
    assert r.confusion_frame().to_numpy().sum() == 40
    assert r.weights_frame().loc[0, 4] == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.estimate = 0.0  # type: ignore[misc]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        pytest.param(
            lambda: weighted_kappa([0, 1], [0, 1, 1]),
            StudyvalError,
            "rater_a has 2 labels but rater_b has 3",
            id="unequal-length",
        ),
        pytest.param(
            lambda: weighted_kappa([0, None, 1], [0, 1, 1]),
            StudyvalError,
            "rater_a has a missing label at position 1",
            id="missing-none",
        ),
        pytest.param(
            lambda: weighted_kappa([0, 1, 1], [0, float("nan"), 1]),
            StudyvalError,
            "rater_b has a missing label at position 1",
            id="missing-nan",
        ),
        pytest.param(
            lambda: weighted_kappa([0, 1, 5], [0, 1, 1], categories=KL),
            StudyvalError,
            r"rater_a has label 5 at position 2, which is not among the categories \[0, 1, 2, 3, 4\]",
            id="label-outside-categories",
        ),
        pytest.param(
            lambda: weighted_kappa(KL_A, KL_B, weights="linear"),
            StudyvalError,
            "needs the ordered categories",
            id="weights-without-categories",
        ),
        pytest.param(
            lambda: weighted_kappa(KL_A, KL_B, weights="quadratc", categories=KL),
            StudyvalError,
            "did you mean 'quadratic'",
            id="weights-typo",
        ),
        pytest.param(
            lambda: weighted_kappa(KL_A, KL_B, categories=[0, 1, 1, 2]),
            StudyvalError,
            "repeated value 1",
            id="duplicate-category",
        ),
        pytest.param(
            lambda: weighted_kappa(KL_A, KL_B, categories=[0]),
            StudyvalError,
            "at least two categories",
            id="one-category",
        ),
        pytest.param(
            lambda: weighted_kappa([1, 1, 1], [1, 1, 1]),
            EstimationError,
            "single label 1",
            id="one-label-inferred",
        ),
        pytest.param(
            lambda: weighted_kappa([1, 1, 1], [1, 1, 1], categories=[0, 1]),
            EstimationError,
            "expected agreement is 1",
            id="one-label-declared",
        ),
        pytest.param(
            lambda: weighted_kappa(["a", 1], ["a", 1]),
            StudyvalError,
            "cannot be sorted",
            id="mixed-types",
        ),
        pytest.param(
            lambda: weighted_kappa([[0, 1]], [[0, 1]]),
            StudyvalError,
            "one-dimensional",
            id="two-dimensional",
        ),
        pytest.param(lambda: weighted_kappa([], []), StudyvalError, "rater_a is empty", id="empty"),
        pytest.param(
            lambda: weighted_kappa(KL_A, KL_B, alpha=1.5),
            StudyvalError,
            r"alpha must be in \(0, 1\)",
            id="bad-alpha",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2, 3], [4, 5, 6]]),
            StudyvalError,
            "square",
            id="table-not-square",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, -2], [3, 4]]),
            StudyvalError,
            r"counts\[0, 1\] = -2",
            id="table-negative",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2.5], [3, 4]]),
            StudyvalError,
            "non-negative integers",
            id="table-fractional",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, np.nan], [3, 4]]),
            StudyvalError,
            "non-finite",
            id="table-nan",
        ),
        pytest.param(
            lambda: kappa_from_table([[5]]),
            StudyvalError,
            "at least two categories",
            id="table-1x1",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 0], [0, 0]]),
            EstimationError,
            "at least two rated cases",
            id="table-one-case",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2], [3, 4]], categories=["a", "b", "c"]),
            StudyvalError,
            "categories has 3 labels but the table is 2 x 2",
            id="table-categories-length",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2], [3, 4]], weights=[[1, 0.5], [0.5, 0.9]]),
            StudyvalError,
            "1 on the diagonal",
            id="weights-diagonal",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2], [3, 4]], weights=[[1, 1.5], [0.5, 1]]),
            StudyvalError,
            r"weights\[0, 1\] = 1.5",
            id="weights-range",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2], [3, 4]], weights=np.eye(3)),
            StudyvalError,
            "2 x 2 matrix",
            id="weights-shape",
        ),
        pytest.param(
            lambda: kappa_from_table([[1, 2], [3, 4]], weights=[[1, np.nan], [0, 1]]),
            StudyvalError,
            "non-finite",
            id="weights-nan",
        ),
    ],
)
def test_kappa_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_kappa_upper_limit_truncated_at_one():
    # a small, almost perfect table: the Wald interval would pass 1
    r = kappa_from_table([[5, 0], [1, 4]])
    assert r.ci_high == 1.0
    assert r.estimate + 1.959963984540054 * r.se > 1.0


def test_zero_null_se_gives_nan_test_with_warning():
    # all of rater A in one category, B spread: se0 = 0, so z is undefined
    with pytest.warns(StatisticalWarning) as record:
        r = kappa_from_table([[3, 2], [0, 0]])
    messages = " | ".join(str(w.message) for w in record)
    assert "null standard error of kappa is zero" in messages
    assert "standard error of kappa is zero (e.g. perfect agreement)" in messages
    assert math.isnan(r.z) and math.isnan(r.p_value)
    assert r.estimate == pytest.approx(0.0)


# --------------------------------------------------------------- kappa: cluster bootstrap
KL_PATIENTS = np.arange(40) // 2
BOOT_SEED = 20240611


def test_kl_draws_are_the_engines_resamples():
    """The exported draws (module docstring) are the resamples the engine uses."""
    from studyval.analysis.resampling import resampling_weights

    d = np.random.Generator(np.random.PCG64(BOOT_SEED)).integers(0, 20, size=(200, 20))
    counts = np.stack([np.bincount(row, minlength=20) for row in d])
    w = np.concatenate(list(resampling_weights(KL_PATIENTS, n_resamples=200, seed=BOOT_SEED)))
    assert np.array_equal(w, counts[:, KL_PATIENTS])


@pytest.mark.parametrize(
    ("weights", "ci", "sd"),
    [
        # kq: cohen.kappa(cbind(a, b), levels = 0:4)$weighted.kappa per resample
        pytest.param("quadratic", (0.81003470804409938, 0.93928890543559251),
                     0.03638566470252217, id="quadratic"),
        # kl: cohen.kappa(cbind(a, b), w = lin, levels = 0:4)$weighted.kappa
        pytest.param("linear", (0.64299967484127107, 0.87929706971444854),
                     0.064497953750268996, id="linear"),
        # ku: cohen.kappa(cbind(a, b), levels = 0:4)$kappa
        pytest.param(None, (0.43018419489007725, 0.79987955084120166),
                     0.10029021636063208, id="unweighted"),
    ],
)  # fmt: skip
def test_kappa_cluster_bootstrap_against_psych_same_resamples(weights, ci, sd):
    r = weighted_kappa(
        KL_A, KL_B, weights=weights, categories=KL, clusters=KL_PATIENTS, n_resamples=200,
        seed=BOOT_SEED,
    )  # fmt: skip
    assert (r.ci_low, r.ci_high) == pytest.approx(ci, rel=REL)
    assert r.se == pytest.approx(sd, rel=REL)
    plain = weighted_kappa(KL_A, KL_B, weights=weights, categories=KL)
    assert r.estimate == plain.estimate and r.counts == plain.counts
    assert r.method == "patient-level percentile bootstrap (200 resamples)"
    assert (r.n_clusters, r.n_resamples, r.seed, r.bootstrap.n_failed) == (20, 200, BOOT_SEED, 0)
    assert math.isnan(r.se_null) and math.isnan(r.z) and math.isnan(r.p_value)


def test_kappa_bootstrap_first_replicates_against_psych():
    # kq[1:3]
    r = weighted_kappa(
        KL_A, KL_B, weights="quadratic", categories=KL, clusters=KL_PATIENTS, n_resamples=200,
        seed=BOOT_SEED,
    )  # fmt: skip
    assert r.bootstrap.replicates[:3].tolist() == pytest.approx(
        [0.86386138613861352, 0.87138263665594851, 0.85714285714285743], rel=REL
    )


def test_kappa_bootstrap_table_reports_the_bootstrap():
    plain = weighted_kappa(KL_A, KL_B, weights="linear", categories=KL)
    boot = weighted_kappa(KL_A, KL_B, weights="linear", categories=KL, clusters=KL_PATIENTS, seed=1)
    assert list(plain.to_frame().columns) == [
        "estimate", "se", "se_null", "ci_low", "ci_high", "ci_level", "z", "p_value", "n",
        "n_categories", "n_agree", "weights", "observed_agreement", "expected_agreement",
        "method",
    ]  # fmt: skip
    frame = boot.to_frame()
    assert list(frame.columns) == [*plain.to_frame().columns, "n_clusters", "n_resamples", "seed"]
    assert frame["method"].iloc[0] == "patient-level percentile bootstrap (2000 resamples)"
    assert frame[["n_clusters", "n_resamples", "seed"]].iloc[0].tolist() == [20, 2000, 1]
    assert plain.to_frame().equals(
        weighted_kappa(KL_A, KL_B, weights="linear", categories=KL, clusters=None).to_frame()
    )


def test_kappa_bootstrap_bca_and_cohen_kappa_alias():
    pct = weighted_kappa(
        KL_A, KL_B, weights="quadratic", categories=KL, clusters=KL_PATIENTS, seed=5
    )
    bca = weighted_kappa(
        KL_A, KL_B, weights="quadratic", categories=KL, clusters=KL_PATIENTS, seed=5,
        ci_method="bca",
    )  # fmt: skip
    assert np.array_equal(pct.bootstrap.replicates, bca.bootstrap.replicates)
    assert bca.method == "patient-level BCa bootstrap (2000 resamples)"
    assert (bca.ci_low, bca.ci_high) != (pct.ci_low, pct.ci_high)
    assert math.isfinite(bca.bootstrap.acceleration)
    a = cohen_kappa(KL_A, KL_B, clusters=KL_PATIENTS, seed=5, n_resamples=300)
    b = weighted_kappa(KL_A, KL_B, clusters=KL_PATIENTS, seed=5, n_resamples=300)
    assert a == b


def test_kappa_bootstrap_is_invariant_to_row_order_and_id_type():
    a = weighted_kappa(
        KL_A, KL_B, weights="linear", categories=KL, clusters=KL_PATIENTS, seed=3, n_resamples=400
    )
    order = np.random.default_rng(0).permutation(40)
    ids = np.array([f"P{p:02d}" for p in KL_PATIENTS])  # sorts like the integers
    b = weighted_kappa(
        np.array(KL_A)[order], np.array(KL_B)[order], weights="linear", categories=KL,
        clusters=ids[order], seed=3, n_resamples=400,
    )  # fmt: skip
    assert (b.ci_low, b.ci_high, b.se) == pytest.approx((a.ci_low, a.ci_high, a.se), rel=1e-12)


def test_kappa_bootstrap_one_knee_per_patient_is_the_ordinary_bootstrap():
    """Clusters of one row each: resampling knees, weights w_i = times knee i was drawn."""
    r = weighted_kappa(
        KL_A, KL_B, weights="quadratic", categories=KL, clusters=np.arange(40), seed=9,
        n_resamples=50,
    )  # fmt: skip
    d = np.random.Generator(np.random.PCG64(9)).integers(0, 40, size=(50, 40))
    for row, value in zip(d, r.bootstrap.replicates, strict=True):
        again = weighted_kappa(
            np.array(KL_A)[row], np.array(KL_B)[row], weights="quadratic", categories=KL
        )
        assert value == pytest.approx(again.estimate, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"seed": 1}, r"seed= is used only by the cluster bootstrap", id="seed-alone"),
        pytest.param({"n_resamples": 100}, r"n_resamples= is used only", id="resamples-alone"),
        pytest.param({"ci_method": "percentile"}, r"needs clusters=", id="method-alone"),
        pytest.param({"clusters": KL_PATIENTS}, r"seed= is required with clusters",
                     id="no-seed"),
        pytest.param({"clusters": KL_PATIENTS, "seed": 1, "ci_method": "wald"},
                     r"with clusters, ci_method must be 'percentile' or 'bca'", id="wald"),
        pytest.param({"clusters": KL_PATIENTS, "seed": 1, "n_resamples": 1},
                     r"n_resamples must be an integer >= 2", id="one-resample"),
        pytest.param({"clusters": KL_PATIENTS[:-1], "seed": 1}, r"clusters has 39 values",
                     id="short-clusters"),
        pytest.param({"clusters": [None, *KL_PATIENTS[1:].tolist()], "seed": 1},
                     r"clusters has 1 missing id", id="missing-id"),
        pytest.param({"clusters": KL_PATIENTS, "seed": -1}, r"seed must be a non-negative",
                     id="negative-seed"),
    ],
)  # fmt: skip
def test_kappa_bootstrap_option_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        weighted_kappa(KL_A, KL_B, weights="linear", categories=KL, **kwargs)


def test_kappa_bootstrap_needs_two_patients():
    with pytest.raises(EstimationError, match=r"at least 2 clusters"):
        weighted_kappa(KL_A, KL_B, categories=KL, clusters=np.zeros(40), seed=1)


# =========================================================================== ICC

# ICC(sf, lmer = FALSE)$results[i, c("ICC","F","df1","df2","p","lower bound","upper bound")]
SF_PSYCH = {
    "ICC1": (0.16574176840547555, 1.794678492239469, 5, 18, 0.16476880834463961,
             -0.13293232487475087, 0.72256006232812109),
    "ICC2": (0.28976377952755922, 11.027247956403272, 5, 15, 0.00013456651648433693,
             0.018786513374712047, 0.7610843696489531),
    "ICC3": (0.71484071484071487, 11.027247956403272, 5, 15, 0.00013456651648433693,
             0.34246476503392537, 0.94585825995535955),
    "ICC1k": (0.44279713367926893, 1.794678492239469, 5, 18, 0.16476880834463961,
              -0.88444215523811898, 0.91241542034077561),
    "ICC2k": (0.62005054759898925, 11.027247956403272, 5, 15, 0.00013456651648433693,
              0.071136815302503487, 0.92723204016772198),
    "ICC3k": (0.90931554237706946, 11.027247956403272, 5, 15, 0.00013456651648433693,
              0.67567471381630473, 0.98589167816906231),
}  # fmt: skip
# y <- matrix(c(49.6, 48.0, 44.5, ...), ncol=3, byrow=TRUE)   (RND above)
# ICC(y, lmer = FALSE)$results[i, 2:8]
RND_PSYCH = {
    "ICC1": (0.81417048939633818, 14.14382984841637, 11, 24, 6.136661672188406e-08,
             0.59830453123493366, 0.93599531065321107),
    "ICC2": (0.81898297365063788, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
             0.49159477303736449, 0.94414973525626733),
    "ICC3": (0.88797116449600844, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
             0.73595311113372963, 0.96306284715553991),
    "ICC1k": (0.92929779199005513, 14.14382984841637, 11, 24, 6.136661672188406e-08,
              0.81712928548450947, 0.9777141718806609),
    "ICC2k": (0.93138007466148354, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
              0.74364264476438602, 0.98066327078825311),
    "ICC3k": (0.95964295283300394, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
              0.89318086321896861, 0.98737677164167192),
}  # fmt: skip
# ICC(y, lmer = FALSE, alpha = 0.1)$results[i, 7:8]
RND_PSYCH_90 = {
    "ICC1": (0.6420776326747174, 0.92288091988153764),
    "ICC2": (0.56146844256660733, 0.93144574070780395),
    "ICC3": (0.76871968008750624, 0.95527216462980713),
    "ICC1k": (0.84330208512750693, 0.97290037450045963),
    "ICC2k": (0.7934316556915092, 0.97605418866303006),
    "ICC3k": (0.9088528681542396, 0.98463248440487738),
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(SF, SF_PSYCH, id="shrout-fleiss-1979"),
        pytest.param(RND, RND_PSYCH, id="random-12x3"),
    ],
)
def test_icc_against_psych(data, expected):
    table = _icc(data).table().set_index("type")
    for name, values in expected.items():
        row = table.loc[name]
        got = (row.icc, row.f, row.df1, row.df2, row.p_value, row.ci_low, row.ci_high)
        assert got == pytest.approx(values, rel=REL), name


def test_icc_alpha_against_psych():
    table = _icc(RND, alpha=0.1).table().set_index("type")
    for name, ci in RND_PSYCH_90.items():
        assert (table.loc[name, "ci_low"], table.loc[name, "ci_high"]) == pytest.approx(ci, rel=REL)
    assert np.allclose(table["ci_level"], 0.9)


def test_icc_shrout_fleiss_published_table_4():
    # Shrout & Fleiss (1979) Table 4: .17, .29, .71, .44, .62, .91
    r = _icc(SF)
    got = [round(r[name].icc, 2) for name in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")]
    assert got == [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]


def test_icc_lmer_path_differs_only_slightly():
    """psych's default lmer = TRUE (REML) agrees with the ANOVA here to ~1e-6 (deviation documented)."""
    # ICC(y)$results[2, 2]   (lmer = TRUE)
    assert _icc(RND)["ICC2"].icc == pytest.approx(0.81898340042035889, rel=1e-5)


def test_icc_result_structure_and_lookup():
    r = _icc(SF)
    table = r.table()
    assert list(table["type"]) == ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
    assert list(table["mcgraw_wong"]) == [
        "ICC(1)",
        "ICC(A,1)",
        "ICC(C,1)",
        "ICC(k)",
        "ICC(A,k)",
        "ICC(C,k)",
    ]
    assert {"description", "icc", "f", "df1", "df2", "p_value", "ci_low", "ci_high", "ci_level",
            "n_targets", "n_raters"} <= set(table.columns)  # fmt: skip
    assert r["ICC(A,1)"] is r["ICC2"]
    summary = r.to_frame()
    assert summary.loc[0, "n_targets"] == 6 and summary.loc[0, "n_raters"] == 4
    # psych's MSW: (SS_J + SS_E) / (n (k - 1)); SF: ms_within = 6.263888...
    assert r.ms_within == pytest.approx(6.263888888888889, rel=1e-12)
    with pytest.raises(StudyvalError, match="did you mean 'ICC3'"):
        r["ICC33"]


def test_icc_row_order_and_labels_do_not_matter():
    table = _long(RND).sample(frac=1.0, random_state=3)
    a = icc(table, targets="target", raters="rater", ratings="rating").table()
    b = _icc(RND).table()
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def test_icc_consistency_forms_ignore_rater_offsets():
    shifted = SF + np.array([0.0, 10.0, -3.0, 7.0])
    a, b = _icc(SF), _icc(shifted)
    assert b["ICC3"].icc == pytest.approx(a["ICC3"].icc, rel=1e-12)
    assert b["ICC2"].icc < a["ICC2"].icc  # absolute agreement penalises offsets


def _drop(table: pd.DataFrame, target: str, rater: str) -> pd.DataFrame:
    return table[~((table["target"] == target) & (table["rater"] == rater))]


@pytest.mark.parametrize(
    ("table", "kwargs", "error", "match"),
    [
        pytest.param(
            _drop(_long(SF), "S3", "J2"),
            {},
            StudyvalError,
            "target 'S3' has no rating by rater 'J2'",
            id="missing-cell",
        ),
        pytest.param(
            _long(SF).assign(rating=lambda t: t["rating"].where(t.index != 5)),
            {},
            StudyvalError,
            "missing or non-numeric value for target 'S2', rater 'J2'",
            id="nan-rating",
        ),
        pytest.param(
            pd.concat([_long(SF), _long(SF).iloc[[0]]]),
            {},
            StudyvalError,
            "target 'S1' has more than one rating by rater 'J1'",
            id="duplicate",
        ),
        pytest.param(_long(SF[:1]), {}, StudyvalError, "at least two targets", id="one-target"),
        pytest.param(_long(SF[:, :1]), {}, StudyvalError, "at least two raters", id="one-rater"),
        pytest.param(
            _long(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])),
            {},
            EstimationError,
            "residual mean square is zero",
            id="zero-residual",
        ),
        pytest.param(
            _long(SF).rename(columns={"rating": "score"}),
            {},
            StudyvalError,
            "ratings='rating' is not a column",
            id="absent-column",
        ),
        pytest.param(
            _long(SF).assign(rater=lambda t: t["rater"].where(t.index != 2)),
            {},
            StudyvalError,
            "raters column 'rater' is missing at row 2",
            id="missing-rater-id",
        ),
        pytest.param(
            _long(SF), {"alpha": 0.0}, StudyvalError, r"alpha must be in \(0, 1\)", id="bad-alpha"
        ),
    ],
)
def test_icc_errors(table, kwargs, error, match):
    with pytest.raises(error, match=match):
        icc(table, targets="target", raters="rater", ratings="rating", **kwargs)


def test_icc_needs_a_dataframe():
    with pytest.raises(StudyvalError, match="must be a pandas DataFrame"):
        icc(SF, targets="target", raters="rater", ratings="rating")  # type: ignore[arg-type]


# =========================================================================== Bland-Altman


def test_bland_altman_pefr_against_r():
    r = bland_altman(WRIGHT_1, MINI_1)
    # d <- W1 - M1; n <- 17; s <- sd(d); z <- qnorm(0.975); tq <- qt(0.975, n - 1)
    # mean(d); s/sqrt(n); mean(d) + c(-1, 1) * tq * s/sqrt(n); t.test(W1, M1, paired = TRUE)$p.value
    assert r.bias == pytest.approx(-2.1176470588235294, rel=REL)
    assert r.bias_se == pytest.approx(9.4019250035099891, rel=REL)
    assert (r.bias_ci_low, r.bias_ci_high) == pytest.approx(
        (-22.048837696645165, 17.813543578998107), rel=REL
    )
    assert r.bias_p_value == pytest.approx(0.8246476735303766, rel=REL)
    # s; mean(d) - z * s; mean(d) + z * s
    assert r.sd == pytest.approx(38.765129873607378, rel=REL)
    assert (r.lower_loa, r.upper_loa) == pytest.approx(
        (-78.09590546711172, 73.860611349464648), rel=REL
    )
    assert r.loa_z == pytest.approx(1.959963984540054, rel=1e-15)
    # se <- sqrt(3 * s^2 / n); mean(d) - z*s + c(-1,1)*tq*se; mean(d) + z*s + c(-1,1)*tq*se
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx(
        (-112.61774030715993, -43.574070627063506), rel=REL
    )
    assert (r.upper_loa_ci_low, r.upper_loa_ci_high) == pytest.approx(
        (39.338776509416434, 108.38244618951286), rel=REL
    )
    # summary(lm(d ~ I((W1 + M1)/2)))$coefficients: slope, SE, p; intercept
    assert (r.slope, r.slope_se, r.slope_p_value, r.intercept) == pytest.approx(
        (0.028687445152549246, 0.088206408276546855, 0.74949853364929397, -15.067497300038999),
        rel=1e-8,
    )
    assert (r.n, r.n_clusters, r.method, r.ci_method) == (17, 17, "paired", "approximate")


def test_bland_altman_exact_limits_against_r():
    r = bland_altman(WRIGHT_1, MINI_1, ci_method="exact")
    # q <- qt(c(0.025, 0.975), n - 1, ncp = z * sqrt(n))
    # mean(d) - s * rev(q)/sqrt(n); mean(d) + s * q/sqrt(n)
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx(
        (-124.16079829483958, -53.094931416742156), rel=1e-9
    )
    assert (r.upper_loa_ci_low, r.upper_loa_ci_high) == pytest.approx(
        (48.859637299095098, 119.92550417719251), rel=1e-9
    )
    assert math.isnan(r.lower_loa_se) and r.ci_method == "exact"


def test_bland_altman_alpha_sets_interval_and_loa_coverage():
    r = bland_altman(WRIGHT_1, MINI_1, ci_method="exact", alpha=0.1)
    # z <- qnorm(0.95); q <- qt(c(0.05, 0.95), n - 1, ncp = z * sqrt(n))
    # mean(d) - s * rev(q)/sqrt(n); mean(d) + s * q/sqrt(n); mean(d) + c(-1,1)*qt(0.95, n-1)*s/sqrt(n)
    assert r.loa_coverage == pytest.approx(0.9) and r.loa_z == pytest.approx(1.6448536269514722)
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx(
        (-98.497994776476219, -46.353226134536982), rel=1e-9
    )
    assert (r.upper_loa_ci_low, r.upper_loa_ci_high) == pytest.approx(
        (42.117932016889924, 94.262700658829147), rel=1e-9
    )
    assert (r.bias_ci_low, r.bias_ci_high) == pytest.approx(
        (-18.532314448025136, 14.297020330378079), rel=REL
    )
    # coverage can be set apart from alpha
    s = bland_altman(WRIGHT_1, MINI_1, alpha=0.1, loa_coverage=0.95)
    assert s.loa_z == pytest.approx(1.959963984540054)


def test_bland_altman_lancet_1986_published_values():
    # Bland & Altman (1986) use 2 SD: limits -79.7 to 75.5; CI of the lower limit
    # -114.3 to -45.1 (from rounded bias -2.1 and SD 38.8, hence the tolerance).
    two_sd = 2.0 * 0.9772498680518208 - 1.0  # coverage with z = 2
    r = bland_altman(WRIGHT_1, MINI_1, loa_coverage=two_sd)
    assert r.loa_z == pytest.approx(2.0, rel=1e-12)
    assert round(r.bias, 1) == -2.1 and round(r.sd, 1) == 38.8
    assert (r.lower_loa, r.upper_loa) == pytest.approx((-79.7, 75.5), abs=0.15)
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx((-114.3, -45.1), abs=0.15)


def test_exact_limits_have_nominal_coverage():
    """Carkeet's interval is exact for normal differences: check by simulation."""
    rng = np.random.default_rng(2015)
    n, sims, z = 10, 20000, 1.959963984540054
    d = rng.normal(3.0, 2.0, size=(sims, n))
    theta = 3.0 + z * 2.0
    r = bland_altman(d[0] + 0.0, np.zeros(n), ci_method="exact")
    # the interval is mean + s * [q_lo, q_hi] / sqrt(n) with the same q for every sample
    q_lo = (r.upper_loa_ci_low - r.bias) / r.sd * math.sqrt(n)
    q_hi = (r.upper_loa_ci_high - r.bias) / r.sd * math.sqrt(n)
    m, s = d.mean(axis=1), d.std(axis=1, ddof=1)
    covered = (m + s * q_lo / math.sqrt(n) <= theta) & (theta <= m + s * q_hi / math.sqrt(n))
    assert covered.mean() == pytest.approx(0.95, abs=0.005)
    # the approximate interval undercovers at n = 10
    t = 2.2621571627409915  # qt(0.975, 9)
    half = t * np.sqrt(3 * s**2 / n)
    approx = (m + z * s - half <= theta) & (theta <= m + z * s + half)
    assert approx.mean() < 0.94


def test_bland_altman_swapping_methods_mirrors_everything():
    r = bland_altman(WRIGHT_1, MINI_1)
    s = bland_altman(MINI_1, WRIGHT_1)
    assert s.bias == pytest.approx(-r.bias)
    assert (s.lower_loa, s.upper_loa) == pytest.approx((-r.upper_loa, -r.lower_loa))
    assert (s.lower_loa_ci_low, s.lower_loa_ci_high) == pytest.approx(
        (-r.upper_loa_ci_high, -r.upper_loa_ci_low)
    )
    assert s.slope == pytest.approx(-r.slope) and s.slope_p_value == pytest.approx(r.slope_p_value)


def test_bland_altman_table_and_points():
    r = bland_altman(WRIGHT_1, MINI_1)
    table = r.table()
    assert list(table["quantity"]) == ["bias", "lower_loa", "upper_loa", "slope"]
    assert {"estimate", "se", "ci_low", "ci_high", "p_value", "ci_level", "ci_method", "loa_coverage",
            "n", "n_clusters"} <= set(table.columns)  # fmt: skip
    row = table.set_index("quantity").loc["upper_loa"]
    assert (row.estimate, row.ci_low, row.ci_high) == (
        r.upper_loa,
        r.upper_loa_ci_low,
        r.upper_loa_ci_high,
    )
    # slope interval: t with n - 2 df around the lm estimate (confint(lm(...))[2, ])
    slope = table.set_index("quantity").loc["slope"]
    assert slope.ci_low < r.slope < slope.ci_high
    points = r.points_frame()
    assert list(points.columns) == ["mean", "difference"]
    assert points["difference"].iloc[0] == 494 - 512 and points["mean"].iloc[0] == (494 + 512) / 2
    assert "mean" not in r.to_frame().columns  # per-pair arrays stay out of the one-row frame


def test_bland_altman_equal_means_warns():
    with pytest.warns(StatisticalWarning, match="all pair means are equal"):
        r = bland_altman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert math.isnan(r.slope)
    assert r.bias == 0.0


def test_bland_altman_identical_methods():
    r = bland_altman([1.0, 2.0, 5.0, 7.0], [1.0, 2.0, 5.0, 7.0])
    assert (r.bias, r.sd, r.lower_loa, r.upper_loa) == (0.0, 0.0, 0.0, 0.0)
    assert math.isnan(r.bias_p_value)


# --------------------------------------------------------------- repeated pairs (clusters)


def _pefr_repeated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both readings as two pairs per subject, second pair dropped for subjects 1-5."""
    a = np.array(WRIGHT_1 + WRIGHT_2, dtype=float)
    b = np.array(MINI_1 + MINI_2, dtype=float)
    subject = np.array(list(range(1, 18)) * 2)
    keep = ~((subject <= 5) & (np.arange(34) >= 17))
    return a[keep], b[keep], subject[keep]


def test_repeated_pairs_point_estimates_against_r_aov():
    a, b, subject = _pefr_repeated()
    r = bland_altman(a, b, clusters=subject, seed=1, n_resamples=200)
    # dd <- c(W1 - M1, W2 - M2); subj <- factor(c(1:17, 1:17)); drop 2nd pair of 1..5
    # a <- anova(aov(dd ~ subj)); msb <- a[1, 3]; msw <- a[2, 3]
    # div <- (N^2 - sum(m^2)) / ((G - 1) * N); vb <- max(0, (msb - msw) / div)
    # mean(dd); sqrt(vb); sqrt(msw); sqrt(vb + msw); mean(dd) -/+ qnorm(0.975) * sqrt(vb + msw)
    assert r.bias == pytest.approx(-2.8620689655172415, rel=REL)
    assert r.sd_between == pytest.approx(28.031489122105299, rel=REL)
    assert r.sd_within == pytest.approx(27.560539423845338, rel=REL)
    assert r.sd == pytest.approx(39.310910899342446, rel=REL)
    assert (r.lower_loa, r.upper_loa) == pytest.approx(
        (-79.910038527691484, 74.185900596657007), rel=REL
    )
    assert (r.n, r.n_clusters, r.ci_method) == (29, 17, "bootstrap")
    assert r.method == "repeated pairs (Bland-Altman 2007)"


def test_repeated_pairs_weighted_statistic_equals_replicated_data():
    """Integer weights = patients repeated as new patients (what the bootstrap needs)."""
    a, b, subject = _pefr_repeated()
    d = a - b
    codes = subject - 1
    stat = _repeated_pairs_statistic(d, codes, 1.959963984540054)
    u = np.array([2, 0, 1, 3, 1, 0, 1, 1, 2, 1, 0, 1, 1, 1, 1, 1, 1], dtype=float)
    rows_a, rows_b, rows_s = [], [], []
    new_id = 0
    for patient in range(17):
        for _ in range(int(u[patient])):
            mask = codes == patient
            rows_a.append(a[mask])
            rows_b.append(b[mask])
            rows_s.append(np.full(mask.sum(), new_id))
            new_id += 1
    replicated = bland_altman(
        np.concatenate(rows_a),
        np.concatenate(rows_b),
        clusters=np.concatenate(rows_s),
        seed=0,
        n_resamples=20,
    )
    got = stat(u[codes][None, :])[0]
    assert got[:3] == pytest.approx(
        [replicated.bias, replicated.lower_loa, replicated.upper_loa], rel=1e-12
    )
    assert got[4:] == pytest.approx([replicated.sd_between, replicated.sd_within], rel=1e-12)


def test_repeated_pairs_reduce_to_paired_when_balanced_and_no_between_variance():
    # one pair per patient would be refused; with two identical-bias pairs per patient
    # sd_between is truncated at 0 and the limits use the within-patient SD only
    a = np.array([10.0, 11.0, 20.0, 21.5, 30.0, 29.0, 40.0, 41.0])
    b = np.array([10.5, 10.0, 20.5, 20.0, 29.5, 29.5, 40.5, 40.0])
    r = bland_altman(
        a,
        b,
        clusters=[1, 1, 2, 2, 3, 3, 4, 4],
        seed=3,
        n_resamples=200,
    )
    assert r.sd_between == 0.0
    assert r.sd == pytest.approx(r.sd_within)


def test_repeated_pairs_bootstrap_is_reproducible_and_sensible():
    a, b, subject = _pefr_repeated()
    r1 = bland_altman(a, b, clusters=subject, seed=42, n_resamples=500)
    r2 = bland_altman(a, b, clusters=subject.astype(str), seed=42, n_resamples=500)
    shuffled = np.random.default_rng(0).permutation(a.size)
    r3 = bland_altman(
        a[shuffled], b[shuffled], clusters=subject[shuffled], seed=42, n_resamples=500
    )
    assert r1.upper_loa_ci_high == r3.upper_loa_ci_high  # row order does not matter
    assert r1.bias == r2.bias  # id type does not change the estimate
    assert r1.lower_loa_ci_low < r1.lower_loa < r1.lower_loa_ci_high
    assert r1.upper_loa_ci_low < r1.upper_loa < r1.upper_loa_ci_high
    assert r1.bias_ci_low < r1.bias < r1.bias_ci_high
    assert (r1.n_resamples, r1.seed) == (500, 42)
    assert math.isnan(r1.bias_p_value)
    assert r1.table().set_index("quantity").loc["lower_loa", "se"] == r1.lower_loa_se
    assert list(r1.points_frame().columns) == ["mean", "difference", "cluster"]


def test_repeated_pairs_slope_against_statsmodels_cluster_robust():
    sm = pytest.importorskip("statsmodels.api")
    a, b, subject = _pefr_repeated()
    r = bland_altman(a, b, clusters=subject, seed=1, n_resamples=100)
    d, m = a - b, (a + b) / 2
    fit = sm.OLS(d, sm.add_constant(m)).fit(
        cov_type="cluster", cov_kwds={"groups": subject}, use_t=True
    )
    assert (r.slope, r.intercept) == pytest.approx((fit.params[1], fit.params[0]), rel=1e-10)
    assert r.slope_se == pytest.approx(fit.bse[1], rel=1e-10)
    assert r.slope_p_value == pytest.approx(fit.pvalues[1], rel=1e-10)
    assert r.slope_se != pytest.approx(sm.OLS(d, sm.add_constant(m)).fit().bse[1], rel=1e-3)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        pytest.param(([1.0, 2.0], [1.0, 2.0, 3.0]), {}, StudyvalError, "method_a has 2 values but method_b has 3",
                     id="unequal-length"),
        pytest.param(([1.0, np.nan, 2.0], [1.0, 2.0, 3.0]), {}, StudyvalError, "method_a has 1 non-finite",
                     id="nan"),
        pytest.param(([1.0, 2.0], [1.0, 2.0]), {}, EstimationError, "at least 3 measurement pairs",
                     id="two-pairs"),
        pytest.param((WRIGHT_1, MINI_1), {"ci_method": "bootstrap"}, StudyvalError, "'bootstrap' is not one of",
                     id="bootstrap-without-clusters"),
        pytest.param((WRIGHT_1, MINI_1), {"ci_method": "exakt"}, StudyvalError, "did you mean 'exact'",
                     id="ci-method-typo"),
        pytest.param((WRIGHT_1, MINI_1), {"loa_coverage": 1.0}, StudyvalError, r"loa_coverage must be in \(0, 1\)",
                     id="bad-coverage"),
        pytest.param((WRIGHT_1, MINI_1), {"alpha": -0.1}, StudyvalError, r"alpha must be in \(0, 1\)",
                     id="bad-alpha"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 8 + [2] * 9}, StudyvalError, "seed= is required",
                     id="clusters-without-seed"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 8 + [2] * 9, "seed": 1, "ci_method": "exact"},
                     StudyvalError, "with clusters, ci_method must be 'bootstrap'", id="exact-with-clusters"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": list(range(17)), "seed": 1}, EstimationError,
                     "every patient contributes exactly one pair", id="one-pair-per-patient"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 17, "seed": 1}, EstimationError, "at least 2 patients",
                     id="one-patient"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 16, "seed": 1}, StudyvalError, "expected 17 ids",
                     id="clusters-length"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 8 + [None] + [2] * 8, "seed": 1}, StudyvalError,
                     "missing patient id at position 8", id="clusters-missing"),
    ],
)  # fmt: skip
def test_bland_altman_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        bland_altman(*args, **kwargs)


# =========================================================================== figures


def test_bland_altman_figure_is_drawn_from_the_tables():
    r = bland_altman(WRIGHT_1, MINI_1)
    fig = bland_altman_figure(r.points_frame(), r.table(), ylabel="Wright - mini Wright (l/min)")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    levels = sorted(line.get_ydata()[0] for line in ax.get_lines())
    assert levels == pytest.approx(sorted([r.lower_loa, r.bias, r.upper_loa, 0.0]))
    assert len(ax.collections[0].get_offsets()) == 17
    texts = " ".join(t.get_text() for t in ax.texts)
    assert f"{r.upper_loa:.2f}" in texts and "95% CI" in texts


def test_confusion_matrix_figure_writes_counts():
    r = weighted_kappa(KL_A, KL_B, weights="linear", categories=KL)
    fig = confusion_matrix_figure(r.confusion_frame())
    ax = fig.axes[0]
    cell_texts = [t.get_text() for t in ax.texts]
    assert len(cell_texts) == 25
    assert cell_texts[0] == str(r.counts[0][0])
    assert ax.get_xlabel() == "rater_b" and ax.get_ylabel() == "rater_a"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: bland_altman_figure(
                pd.DataFrame({"mean": [1.0]}), bland_altman(WRIGHT_1, MINI_1).table()
            ),
            "points lacks column",
            id="points-column",
        ),
        pytest.param(
            lambda: bland_altman_figure(
                bland_altman(WRIGHT_1, MINI_1).points_frame(),
                bland_altman(WRIGHT_1, MINI_1).table().iloc[[0, 1]],
            ),
            "no row with quantity == 'upper_loa'",
            id="summary-row",
        ),
        pytest.param(
            lambda: confusion_matrix_figure(pd.DataFrame([[1, 2, 3], [4, 5, 6]])),
            "square",
            id="not-square",
        ),
        pytest.param(
            lambda: confusion_matrix_figure(pd.DataFrame([[1, -2], [3, 4]])),
            "non-negative",
            id="negative",
        ),
        pytest.param(
            lambda: confusion_matrix_figure(np.eye(2)), "must be a pandas DataFrame", id="array"
        ),
    ],
)
def test_figure_errors(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()


def test_results_are_frozen_dataclasses():
    for result in (
        weighted_kappa(KL_A, KL_B),
        _icc(SF),
        bland_altman(WRIGHT_1, MINI_1),
    ):
        assert dataclasses.is_dataclass(result)
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.n = 0  # type: ignore[misc]
    assert isinstance(weighted_kappa(KL_A, KL_B), KappaResult)
    assert isinstance(bland_altman(WRIGHT_1, MINI_1), BlandAltmanResult)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weighted_kappa(KL_A, KL_B, weights="linear", categories=KL)  # no stray warnings
