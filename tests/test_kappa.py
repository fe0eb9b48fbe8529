"""Tests for studyval.analysis.kappa: Cohen's kappa, weighted and with a cluster bootstrap.

Oracles
-------
* R 4.x with psych 2.2.9 (``irr`` is not installed, so it is not used):
  ``psych::cohen.kappa``. The exact R call
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
* Published values: Cohen (1968) kappa .492 and weighted kappa .348.
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
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from studyval.analysis.kappa import cohen_kappa, kappa_from_table, weighted_kappa
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

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
