"""Tests for studyval.analysis.multiclass and studyval.figures.subgroups.multiclass_confusion_figure.

Oracles
-------
* R 4.2.2 with pROC 1.18.0: per-class one-vs-rest AUC and DeLong CI
  (``roc(as.integer(y == cl), p[, cl], levels = c(0, 1), direction = "<")``,
  ``ci.auc(method = "delong")``, ``var(method = "delong")``), and Hand & Till's
  M with its pairwise A(i|j) (``multiclass.roc(y, P)``, which for a matrix
  uses ``direction = ">"`` with class i as controls, i.e. A(i|j) = P(p_i of a
  class-i case > p_i of a class-j case)). Printed with ``sprintf("%.17g")``.
* R ``prop.test(x, n, correct = FALSE)$conf.int`` for the Wilson intervals.
* scikit-learn ``roc_auc_score(y, P, multi_class="ovo" | "ovr", average=...)``
  (live, skipped if sklearn is absent; values also pasted).
* The SEs of the averages: the delete-one jackknife (computed here) and the
  row bootstrap of :func:`studyval.analysis.resampling.bootstrap`.

Data: ``MC`` below, 72 cases (30 normal, 24 osteopenia, 18 osteoporosis),
probabilities from a cumulative-logit model rounded to 2 decimals (many ties),
rows summing to 1. Written to CSV for R as columns ``y, normal, osteopenia,
osteoporosis`` (``write.csv`` of the same four columns).

Deliberate deviations: pROC drops a class that has no cases (with a warning);
we raise. pROC gives no CI for M or the averages.

Cluster bootstrap, same resamples in R: ``MC`` as 36 patients with two cases
each (rows ``2p``, ``2p + 1`` = patient ``p``, 0-based), predicted class =
``predict_argmax`` (no ties in ``MC``; R: ``cl[max.col(P)]``). The engine's
patient draws are exported with

.. code-block:: python

    d = numpy.random.Generator(numpy.random.PCG64(20240611)).integers(0, 36, size=(200, 36))
    numpy.savetxt("mc_draws.csv", d, fmt="%d", delimiter=",")

and every resample is recomputed in R from the drawn patients' rows, the
limits being ``quantile(x, c(0.025, 0.975), type = 7)`` (numpy's default, the
engine's percentile rule)::

    m <- read.csv("mc.csv")        # y, normal, osteopenia, osteoporosis, pred, pid = (0:71) %/% 2
    D <- as.matrix(read.csv("mc_draws.csv", header = FALSE)); cl <- levels(factor(m$y))
    stat <- function(i) {
      y <- factor(m$y[i], levels = cl); p <- factor(m$pred[i], levels = cl)
      P <- as.matrix(m[i, cl]); tab <- table(y, p); N <- sum(tab); v <- c()
      for (c in 1:3) { tp <- tab[c, c]; row <- sum(tab[c, ]); col <- sum(tab[, c])
        tn <- N - row - col + tp; v <- c(v, tp / row, tn / (N - row), tp / col, tn / (N - col)) }
      v <- c(v, sum(diag(tab)) / N, sum(tab[abs(outer(1:3, 1:3, "-")) <= 1]) / N)
      ovr <- sapply(1:3, function(c) as.numeric(auc(roc(as.integer(y == cl[c]), P[, c],
                    levels = c(0, 1), direction = "<", quiet = TRUE))))
      c(v, ovr, mean(ovr), sum(as.numeric(table(y)) / N * ovr),
        as.numeric(multiclass.roc(y, P, quiet = TRUE)$auc))
    }
    res <- t(sapply(1:200, function(r)
      stat(unlist(lapply(D[r, ], function(g) which(m$pid == g))))))
    apply(res, 2, function(x) sprintf("%.17g", c(quantile(x, c(0.025, 0.975), type = 7), sd(x))))
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.clustered import auc_clustered
from studyval.analysis.discrimination import auc, delong_covariance
from studyval.analysis.multiclass import (
    AveragedAUC,
    MultiClassAUCResult,
    MultiClassConfusion,
    _influence,
    multiclass_confusion,
    one_vs_rest_auc,
    predict_argmax,
)
from studyval.analysis.resampling import bootstrap, resampling_weights, weighted_auc_statistic
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

REL = 1e-9  # requirement 1e-6; observed ~1e-15

CLASSES = ("normal", "osteopenia", "osteoporosis")
# One case per line: reference class, then the scores for normal, osteopenia, osteoporosis.
MC = """
osteoporosis 0.50 0.40 0.10
osteoporosis 0.07 0.34 0.59
normal 0.99 0.01 0.00
osteopenia 0.02 0.11 0.87
osteopenia 0.01 0.06 0.93
osteoporosis 0.19 0.49 0.32
osteopenia 0.01 0.10 0.89
normal 0.57 0.35 0.08
normal 0.88 0.10 0.02
normal 0.78 0.19 0.03
normal 0.93 0.06 0.01
normal 0.15 0.46 0.39
osteoporosis 0.07 0.32 0.61
osteoporosis 0.31 0.49 0.20
normal 0.93 0.06 0.01
osteoporosis 0.01 0.08 0.91
osteopenia 0.06 0.32 0.62
normal 0.90 0.09 0.01
osteoporosis 0.00 0.01 0.99
normal 0.55 0.37 0.08
normal 0.27 0.50 0.23
osteopenia 0.01 0.10 0.89
osteoporosis 0.00 0.02 0.98
osteopenia 0.19 0.48 0.33
normal 0.91 0.08 0.01
normal 0.75 0.21 0.04
osteopenia 0.13 0.43 0.44
osteopenia 0.12 0.42 0.46
osteopenia 0.28 0.50 0.22
normal 0.85 0.13 0.02
osteopenia 0.23 0.50 0.27
osteoporosis 0.09 0.38 0.53
osteopenia 0.94 0.05 0.01
osteoporosis 0.01 0.06 0.93
normal 0.93 0.06 0.01
normal 0.99 0.01 0.00
normal 0.92 0.07 0.01
normal 0.89 0.10 0.01
normal 0.98 0.02 0.00
osteoporosis 0.01 0.04 0.95
normal 0.98 0.02 0.00
osteopenia 0.54 0.38 0.08
osteoporosis 0.04 0.25 0.71
osteoporosis 0.01 0.04 0.95
normal 0.55 0.37 0.08
osteopenia 0.37 0.47 0.16
normal 0.87 0.11 0.02
osteopenia 0.63 0.31 0.06
osteoporosis 0.33 0.49 0.18
osteopenia 0.22 0.50 0.28
normal 0.80 0.17 0.03
osteopenia 0.09 0.38 0.53
normal 0.75 0.21 0.04
osteopenia 0.09 0.37 0.54
osteopenia 0.17 0.48 0.35
osteopenia 0.67 0.28 0.05
normal 0.14 0.45 0.41
osteopenia 0.71 0.25 0.04
osteopenia 0.09 0.38 0.53
normal 0.97 0.03 0.00
osteoporosis 0.00 0.01 0.99
osteopenia 0.07 0.34 0.59
normal 0.17 0.48 0.35
osteopenia 0.66 0.28 0.06
normal 0.91 0.08 0.01
osteoporosis 0.03 0.20 0.77
normal 0.99 0.01 0.00
normal 0.89 0.10 0.01
normal 0.92 0.07 0.01
osteoporosis 0.14 0.46 0.40
osteoporosis 0.01 0.08 0.91
osteopenia 0.09 0.37 0.54
"""
_rows = [line.split() for line in MC.strip().splitlines()]
Y = np.array([r[0] for r in _rows])
P = np.array([[float(v) for v in r[1:]] for r in _rows])


@pytest.fixture(scope="module")
def result() -> MultiClassAUCResult:
    return one_vs_rest_auc(Y, P, classes=CLASSES)


def test_data_as_described():
    assert [int(np.sum(Y == c)) for c in CLASSES] == [30, 24, 18]
    np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=1e-12)


# --------------------------------------------------------------------------- pROC


# R: d <- read.csv("mc.csv"); P <- as.matrix(d[, c("normal", "osteopenia", "osteoporosis")])
#    r <- roc(as.integer(d$y == cl), P[, cl], levels = c(0, 1), direction = "<")
#    ci <- ci.auc(r, method = "delong"); sqrt(var(r, method = "delong"))
PROC_OVR = {
    "normal": (0.92777777777777781, 0.030330804122847898, 0.86833049407485696, 0.98722506148069866),
    "osteopenia": (
        0.72743055555555547,
        0.060413453611768073,
        0.60902236229480877,
        0.84583874881630217,
    ),
    "osteoporosis": (
        0.87242798353909468,
        0.043705196705826656,
        0.78676737205843583,
        0.95808859501975352,
    ),
}


@pytest.mark.parametrize("cls", [pytest.param(c, id=c) for c in CLASSES])
def test_one_vs_rest_auc_against_pROC(result, cls):
    r = result.per_class[CLASSES.index(cls)]
    est, se, lo, hi = PROC_OVR[cls]
    assert r.estimate == pytest.approx(est, rel=REL)
    assert r.se == pytest.approx(se, rel=REL)
    assert r.ci_low == pytest.approx(lo, rel=REL)
    assert r.ci_high == pytest.approx(hi, rel=REL)


def test_hand_till_m_against_pROC_multiclass_roc(result):
    # R: as.numeric(auc(multiclass.roc(d$y, P)))  (direction ">" for a matrix)
    assert result.hand_till.estimate == pytest.approx(0.83568672839506175, rel=REL)


# R: mr <- multiclass.roc(d$y, P); for (nm in names(mr$rocs))
#    c(auc(mr$rocs[[nm]][[1]]), auc(mr$rocs[[nm]][[2]]))   # A(i|j), A(j|i)
PROC_PAIRS = [
    ("normal", "osteopenia", 0.89513888888888893, 0.76875000000000004),
    ("normal", "osteoporosis", 0.97129629629629632, 0.97037037037037033),
    ("osteopenia", "osteoporosis", 0.65856481481481477, 0.75),
]


def test_pairwise_a_ij_against_pROC(result):
    frame = result.pairwise_frame()
    assert list(zip(frame["class_i"], frame["class_j"], strict=True)) == [
        (i, j) for i, j, _, _ in PROC_PAIRS
    ]
    for (_, _, aij, aji), (_, row) in zip(PROC_PAIRS, frame.iterrows(), strict=True):
        assert row["a_i_given_j"] == pytest.approx(aij, rel=REL)
        assert row["a_j_given_i"] == pytest.approx(aji, rel=REL)
        assert row["a_pair"] == pytest.approx((aij + aji) / 2, rel=REL)


def test_pairwise_a_ij_is_binary_auc_on_the_two_classes(result):
    # A(i|j): class i positive vs class j, score column i, other classes dropped
    for i, j in itertools.permutations(range(3), 2):
        keep = (Y == CLASSES[i]) | (Y == CLASSES[j])
        r = auc(Y[keep], P[keep, i], positive=CLASSES[i])
        assert result.pairwise_auc[i, j] == pytest.approx(r.estimate, rel=REL)


# --------------------------------------------------------------------------- sklearn


# sklearn 1.9.1: roc_auc_score(y, P, labels=CLASSES, multi_class=..., average=...)
SKLEARN = {
    ("ovo", "macro"): 0.8356867283950619,
    ("ovr", "macro"): 0.842545438957476,
    ("ovr", "weighted"): 0.8471579218106996,
}


@pytest.mark.parametrize(
    ("multi_class", "average", "attr"),
    [
        pytest.param("ovo", "macro", "hand_till", id="ovo-macro-is-hand-till"),
        pytest.param("ovr", "macro", "macro", id="ovr-macro"),
        pytest.param("ovr", "weighted", "weighted", id="ovr-prevalence-weighted"),
    ],
)
def test_averages_against_sklearn(result, multi_class, average, attr):
    got = getattr(result, attr).estimate
    assert got == pytest.approx(SKLEARN[(multi_class, average)], rel=REL)
    metrics = pytest.importorskip("sklearn.metrics")
    live = metrics.roc_auc_score(
        Y, P, labels=list(CLASSES), multi_class=multi_class, average=average
    )
    assert got == pytest.approx(live, rel=REL)


# --------------------------------------------------------------------------- exactness


def test_per_class_is_discrimination_auc(result):
    for j, c in enumerate(CLASSES):
        ref = auc(Y == c, P[:, j], positive=True)
        got = result.per_class[j]
        assert (got.estimate, got.se, got.ci_low, got.ci_high) == (
            ref.estimate,
            ref.se,
            ref.ci_low,
            ref.ci_high,
        )
        assert (got.n_positive, got.n_negative) == (ref.n_positive, ref.n_negative)


def test_covariance_diagonal_is_delong_variance(result):
    np.testing.assert_allclose(
        np.diag(result.covariance), [r.se**2 for r in result.per_class], rtol=1e-12
    )


def test_influence_cross_products_equal_delong_covariance_for_shared_positives():
    # same positive and negative sets (two score columns): the per-case formula
    # must reproduce DeLong's covariance matrix exactly
    is_pos = Y == "osteoporosis"
    scores = np.column_stack([P[:, 2], P[:, 2] + 0.5 * P[:, 1]])
    _, cov = delong_covariance(is_pos, scores, positive=True)
    psi = np.stack([_influence(is_pos, ~is_pos, scores[:, r])[1] for r in range(2)])
    np.testing.assert_allclose(psi @ psi.T, cov, rtol=1e-12)


# --------------------------------------------------------------------------- the SE of averages


def _simulated(n=300, seed=11):
    rng = np.random.default_rng(seed)
    y_idx = rng.choice(3, size=n, p=[0.45, 0.35, 0.20])
    logits = rng.normal(size=(n, 3)) + 1.2 * np.eye(3)[y_idx]
    prob = np.round(np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True), 2)
    return np.array(CLASSES)[y_idx], prob


@pytest.fixture(scope="module")
def jackknife():
    """Data, fit, and the delete-one jackknife SE of each average."""
    y, prob = _simulated(n=90, seed=3)
    n = y.size
    vals = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        for i in range(n):
            keep = np.arange(n) != i
            r = one_vs_rest_auc(y[keep], prob[keep], classes=CLASSES)
            vals.append([r.macro.estimate, r.weighted.estimate, r.hand_till.estimate])
    vals = np.array(vals)
    se = np.sqrt((n - 1) / n * np.sum((vals - vals.mean(axis=0)) ** 2, axis=0))
    fit = one_vs_rest_auc(y, prob, classes=CLASSES)
    return fit, dict(zip(("macro", "weighted", "hand_till"), se, strict=True))


@pytest.mark.parametrize(
    "summary", [pytest.param(s, id=s) for s in ("macro", "weighted", "hand_till")]
)
def test_average_se_against_jackknife(jackknife, summary):
    # the delete-one jackknife estimates the same (unconditional) variance
    fit, jack = jackknife
    assert getattr(fit, summary).se == pytest.approx(jack[summary], rel=0.05)


def _bootstrap_se(y, prob, summary):
    k = len(CLASSES)
    masks = [y == c for c in CLASSES]
    ovr = [weighted_auc_statistic(masks[j], prob[:, j]) for j in range(k)]
    pairs = []
    for i, j in itertools.permutations(range(k), 2):
        keep = np.flatnonzero(masks[i] | masks[j])
        pairs.append((keep, weighted_auc_statistic(masks[i][keep], prob[keep, i])))
    onehot = np.column_stack(masks).astype(float)

    def statistic(w):
        if summary == "macro":
            return np.mean([f(w) for f in ovr], axis=0)
        if summary == "weighted":
            counts = w @ onehot
            return np.sum([counts[:, j] * ovr[j](w) for j in range(k)], axis=0) / w.sum(1)
        return np.mean([f(w[:, keep]) for keep, f in pairs], axis=0)

    b = bootstrap(statistic, n_rows=y.size, n_resamples=2000, seed=20260517, method="percentile")
    return b


@pytest.mark.parametrize(
    "summary", [pytest.param(s, id=s) for s in ("macro", "weighted", "hand_till")]
)
def test_average_se_against_row_bootstrap(summary):
    y, prob = _simulated()
    r = one_vs_rest_auc(y, prob, classes=CLASSES)
    b = _bootstrap_se(y, prob, summary)
    avg = getattr(r, summary)
    assert b.estimate == pytest.approx(avg.estimate, rel=1e-12)
    # 2000 resamples: Monte Carlo error of the bootstrap SE is about 1.6 %
    assert avg.se == pytest.approx(b.se, rel=0.08)
    assert avg.ci_low == pytest.approx(b.ci_low, abs=0.01)
    assert avg.ci_high == pytest.approx(b.ci_high, abs=0.01)


def test_ignoring_the_covariance_would_understate_the_macro_se():
    # the one-vs-rest AUCs are positively correlated here; their independent-sum
    # variance is too small, which is why the covariance is needed at all
    y, prob = _simulated()
    r = one_vs_rest_auc(y, prob, classes=CLASSES)
    naive = math.sqrt(sum(x.se**2 for x in r.per_class)) / 3
    assert r.macro.se > 1.1 * naive
    assert r.macro.se**2 == pytest.approx(np.sum(r.covariance) / 9, rel=1e-12)


def test_interval_is_wald_truncated(result):
    for a in (result.macro, result.weighted, result.hand_till):
        assert isinstance(a, AveragedAUC)
        assert a.ci_low == pytest.approx(a.estimate - 1.959963984540054 * a.se, rel=1e-12)
        assert a.ci_high == pytest.approx(min(1.0, a.estimate + 1.959963984540054 * a.se))
        est, lo, hi = a
        assert lo <= est <= hi


# --------------------------------------------------------------------------- properties


@pytest.mark.parametrize(
    "order",
    [pytest.param(p, id="-".join(x[:4] for x in p)) for p in itertools.permutations(CLASSES)],
)
def test_reordering_classes_permutes_per_class_and_keeps_averages(result, order):
    idx = [CLASSES.index(c) for c in order]
    r = one_vs_rest_auc(Y, P[:, idx], classes=order)
    assert [x.estimate for x in r.per_class] == [result.per_class[i].estimate for i in idx]
    for attr in ("macro", "weighted", "hand_till"):
        assert getattr(r, attr).estimate == pytest.approx(getattr(result, attr).estimate, rel=1e-12)
        assert getattr(r, attr).se == pytest.approx(getattr(result, attr).se, rel=1e-9)
    np.testing.assert_allclose(r.covariance, result.covariance[np.ix_(idx, idx)], rtol=1e-12)


def test_relabelling_classes_changes_nothing_but_names(result):
    rename = {"normal": 0, "osteopenia": 1, "osteoporosis": 2}
    r = one_vs_rest_auc([rename[v] for v in Y], P, classes=[0, 1, 2])
    assert [x.estimate for x in r.per_class] == [x.estimate for x in result.per_class]
    assert r.hand_till.estimate == result.hand_till.estimate


@st.composite
def _multiclass_cases(draw):
    k = draw(st.integers(2, 5))
    n_per = draw(st.lists(st.integers(2, 6), min_size=k, max_size=k))
    y = np.repeat(np.arange(k), n_per)
    n = y.size
    vals = draw(st.lists(st.integers(0, 4), min_size=n * k, max_size=n * k))
    prob = np.array(vals, dtype=float).reshape(n, k)
    perm = draw(st.permutations(list(range(k))))
    return y, prob, list(perm)


@settings(max_examples=25, deadline=None)
@given(_multiclass_cases())
def test_property_m_invariant_to_class_order(case):
    y, prob, perm = case
    k = prob.shape[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        a = one_vs_rest_auc(y, prob, classes=list(range(k)))
        b = one_vs_rest_auc(y, prob[:, perm], classes=perm)
    assert b.hand_till.estimate == pytest.approx(a.hand_till.estimate, abs=1e-12)
    assert b.hand_till.se == pytest.approx(a.hand_till.se, abs=1e-12)
    assert [x.estimate for x in b.per_class] == [a.per_class[j].estimate for j in perm]
    assert 0.0 <= a.hand_till.ci_low <= a.hand_till.estimate <= a.hand_till.ci_high <= 1.0


def test_two_classes_m_equals_the_binary_auc():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 60)
    s = rng.normal(size=60) + y
    prob = np.column_stack([-s, s])  # scores need not be probabilities
    r = one_vs_rest_auc(y, prob, classes=[0, 1])
    ref = auc(y, s, positive=1)
    assert r.hand_till.estimate == pytest.approx(ref.estimate, rel=1e-12)
    assert r.per_class[0].estimate == pytest.approx(ref.estimate, rel=1e-12)
    assert r.macro.estimate == pytest.approx(ref.estimate, rel=1e-12)
    # the two one-vs-rest AUCs are the same statistic: the macro SE is DeLong's
    assert r.macro.se == pytest.approx(ref.se, rel=1e-12)


# --------------------------------------------------------------------------- input forms


def test_mapping_and_dataframe_inputs_match_the_matrix(result):
    mapping = {c: P[:, j] for j, c in enumerate(CLASSES)}
    frame = pd.DataFrame(mapping)[["osteoporosis", "normal", "osteopenia"]]  # other order
    for prob in (mapping, frame):
        r = one_vs_rest_auc(pd.Series(Y), prob, classes=CLASSES)
        assert [x.estimate for x in r.per_class] == [x.estimate for x in result.per_class]
        assert r.hand_till.estimate == result.hand_till.estimate


def test_table_is_tidy(result):
    t = result.to_frame()
    assert list(t["measure"]) == ["auc_ovr"] * 3 + ["auc_macro", "auc_weighted", "hand_till_m"]
    assert list(t["class"][:3]) == list(CLASSES)
    assert t["class"][3:].isna().all()
    assert t["n_positive"][:3].tolist() == [30, 24, 18]
    assert t["n_positive"][3:].isna().all()
    assert (t["n"] == 72).all()
    assert not t[["estimate", "se", "ci_low", "ci_high"]].isna().any().any()
    assert not any("95" in c for c in t.columns)
    assert result.to_frame().equals(t)
    cov = result.covariance_frame()
    assert list(cov.index) == list(CLASSES)
    with pytest.raises(ValueError, match="read-only"):
        result.covariance[0, 0] = 1.0


def test_zero_se_class_warns():
    y = np.repeat(["a", "b", "c"], 4)
    prob = np.zeros((12, 3))
    prob[np.arange(12), np.repeat([0, 1, 2], 4)] = 1.0  # perfect separation
    with pytest.warns(StatisticalWarning, match="DeLong standard error is zero"):
        r = one_vs_rest_auc(y, prob, classes=["a", "b", "c"])
    assert r.hand_till.estimate == 1.0
    assert r.hand_till.se == 0.0


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("y", "prob", "classes", "exc", "match"),
    [
        pytest.param(
            ["a", "b", "x", "b", "x"],
            np.ones((5, 2)),
            ["a", "b"],
            StudyvalError,
            r"y_true has 2 label\(s\) not in classes \('a', 'b'\); first at position 2: 'x'",
            id="label-outside-classes",
        ),
        pytest.param(
            ["a", None, "b", "b"],
            np.ones((4, 2)),
            ["a", "b"],
            StudyvalError,
            r"y_true has 1 missing label\(s\); first at position 1",
            id="missing-label",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            np.ones((4, 3)),
            ["a", "b"],
            StudyvalError,
            "prob has 3 columns but classes has 2 labels",
            id="wrong-number-of-columns",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            np.ones((3, 2)),
            ["a", "b"],
            StudyvalError,
            "prob has 3 rows but y_true has 4",
            id="wrong-number-of-rows",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            {"a": [1, 2, 3, 4], "c": [1, 2, 3, 4]},
            ["a", "b"],
            StudyvalError,
            r"no scores for class\(es\) 'b'; scores for unknown class\(es\) 'c'",
            id="mapping-wrong-keys",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            [[0.1, 0.9], [np.nan, 0.5], [0.3, 0.7], [0.2, 0.8]],
            ["a", "b"],
            StudyvalError,
            r"prob\[:, 0\] \('a'\) has 1 non-finite value\(s\); first at position 1",
            id="nan-score",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            np.ones((4, 2)),
            ["a", "a"],
            StudyvalError,
            "classes must be distinct: 'a' occurs at positions 0 and 1",
            id="duplicate-classes",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            np.ones((4, 2)),
            "ab",
            StudyvalError,
            "classes must be a sequence of class labels",
            id="classes-string",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            np.ones((4, 1)),
            ["a"],
            StudyvalError,
            "classes must hold at least 2 labels",
            id="one-class",
        ),
        pytest.param(
            ["a", "a", "b", "b", "b", "c"],
            np.ones((6, 3)),
            ["a", "b", "c"],
            EstimationError,
            r"too few in 'c': 1 \(class counts: 'a': 2, 'b': 3, 'c': 1\)",
            id="class-with-one-case",
        ),
        pytest.param(
            ["a", "a", "b", "b"],
            np.ones((4, 3)),
            ["a", "b", "c"],
            EstimationError,
            "too few in 'c': 0",
            id="class-without-cases",
        ),
    ],
)
def test_one_vs_rest_auc_errors(y, prob, classes, exc, match):
    with pytest.raises(exc, match=match):
        one_vs_rest_auc(y, prob, classes=classes)


def test_bad_alpha():
    with pytest.raises(StudyvalError, match=r"alpha must be in \(0, 1\)"):
        one_vs_rest_auc(Y, P, classes=CLASSES, alpha=1.5)


# --------------------------------------------------------------------------- predict_argmax


TIED = np.array([[0.2, 0.4, 0.4], [0.5, 0.3, 0.2], [0.3, 0.3, 0.4], [0.1, 0.45, 0.45]])


@pytest.mark.parametrize(
    ("ties", "expected"),
    [
        pytest.param("first", ["b", "a", "c", "b"], id="first-in-class-order"),
        pytest.param("last", ["c", "a", "c", "c"], id="last-in-class-order"),
    ],
)
def test_predict_argmax_tie_rules(ties, expected):
    assert predict_argmax(TIED, ["a", "b", "c"], ties=ties).tolist() == expected


def test_predict_argmax_ties_are_an_error_by_default():
    with pytest.raises(
        StudyvalError,
        match=r"2 row\(s\) of prob have a tie for the highest score; first at row 0 "
        r"\(classes 'b', 'c' at 0.4\)",
    ):
        predict_argmax(TIED, ["a", "b", "c"])


def test_predict_argmax_without_ties_and_mapping():
    out = predict_argmax(P, CLASSES)
    assert out.tolist() == [CLASSES[j] for j in P.argmax(axis=1)]
    mapping = {c: P[:, j] for j, c in enumerate(CLASSES)}
    assert predict_argmax(mapping, CLASSES).tolist() == out.tolist()


def test_predict_argmax_bad_rule():
    with pytest.raises(StudyvalError, match="did you mean 'first'"):
        predict_argmax(TIED, ["a", "b", "c"], ties="frist")


# --------------------------------------------------------------------------- confusion


@pytest.fixture(scope="module")
def confusion() -> MultiClassConfusion:
    return multiclass_confusion(Y, predict_argmax(P, CLASSES), classes=CLASSES, ordinal=True)


def test_confusion_counts_match_crosstab(confusion):
    pred = predict_argmax(P, CLASSES)
    ref = pd.crosstab(
        pd.Categorical(Y, categories=CLASSES), pd.Categorical(pred, categories=CLASSES)
    )
    np.testing.assert_array_equal(confusion.counts, ref.to_numpy())
    np.testing.assert_array_equal(confusion.counts, [[26, 4, 0], [6, 6, 12], [1, 4, 13]])
    m = confusion.matrix(margins=True)
    assert m.index.name == "reference standard" and m.columns.name == "predicted"
    assert m.loc["total", "total"] == 72


# R: prop.test(x, n, correct = FALSE)$conf.int
@pytest.mark.parametrize(
    ("cls", "measure", "x", "n", "lo", "hi"),
    [
        pytest.param(
            "normal",
            "sensitivity",
            26,
            30,
            0.7031867331796372,
            0.94690344515945257,
            id="normal-sens",
        ),
        pytest.param(
            "normal",
            "specificity",
            35,
            42,
            0.69395997255351138,
            0.91684083353601908,
            id="normal-spec",
        ),
        pytest.param(
            "osteopenia",
            "ppv",
            6,
            14,
            0.21380798904474124,
            0.67409355420349248,
            id="osteopenia-ppv",
        ),
        pytest.param(
            None, "accuracy", 45, 72, 0.50952899026926979, 0.72780821658161576, id="accuracy"
        ),
        pytest.param(
            None,
            "accuracy_within_one",
            71,
            72,
            0.92543397852523857,
            0.9975440481170943,
            id="within-one",
        ),
    ],
)
def test_confusion_wilson_against_R(confusion, cls, measure, x, n, lo, hi):
    t = confusion.to_frame()
    row = t[(t["measure"] == measure) & (t["class"].isna() if cls is None else t["class"] == cls)]
    assert len(row) == 1
    row = row.iloc[0]
    assert (row["numerator"], row["denominator"]) == (x, n)
    assert row["estimate"] == pytest.approx(x / n, rel=REL)
    assert row["ci_low"] == pytest.approx(lo, rel=REL)
    assert row["ci_high"] == pytest.approx(hi, rel=REL)


def test_per_class_measures_are_one_vs_rest_2x2():
    pred = predict_argmax(P, CLASSES)
    c = multiclass_confusion(Y, pred, classes=CLASSES)
    for j, cls in enumerate(CLASSES):
        sens, spec, ppv, npv = c.per_class[j]
        tp = int(np.sum((Y == cls) & (pred == cls)))
        assert sens.numerator == tp and sens.denominator == int(np.sum(Y == cls))
        assert ppv.numerator == tp and ppv.denominator == int(np.sum(pred == cls))
        assert spec.numerator == npv.numerator == int(np.sum((Y != cls) & (pred != cls)))
    assert c.accuracy_within_one is None
    assert "accuracy_within_one" not in set(c.to_frame()["measure"])


def test_class_never_predicted_has_undefined_ppv_with_a_note():
    y = ["a", "a", "b", "b", "c", "c"]
    pred = ["a", "b", "b", "b", "a", "a"]
    c = multiclass_confusion(y, pred, classes=["a", "b", "c"])
    t = c.to_frame().set_index(["class", "measure"])
    row = t.loc[("c", "ppv")]
    assert math.isnan(row["estimate"]) and math.isnan(row["ci_low"])
    assert row["note"] == "undefined: the denominator is zero (no case predicted 'c')"
    assert t.loc[("c", "sensitivity"), "estimate"] == 0.0


def test_within_one_for_ordinal_stages():
    y = ["n", "n", "p", "o", "o"]
    pred = ["o", "p", "p", "n", "p"]  # n->o and o->n are two categories off
    c = multiclass_confusion(y, pred, classes=["n", "p", "o"], ordinal=True)
    assert (c.accuracy_within_one.numerator, c.accuracy_within_one.denominator) == (3, 5)
    assert c.accuracy.numerator == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            {"y_pred": ["a", "z", "b"]},
            r"y_pred has 1 label\(s\) not in classes \('a', 'b'\); first at position 1: 'z'",
            id="pred-outside-classes",
        ),
        pytest.param({"y_pred": ["a", "b"]}, "y_pred has 2 labels but y_true has 3", id="length"),
        pytest.param(
            {"y_pred": ["a", "b", "b"], "ci_method": "wilsen"},
            "did you mean 'wilson'",
            id="ci-method",
        ),
        pytest.param(
            {"y_pred": ["a", "b", "b"], "ordinal": "yes"},
            "ordinal must be True or False",
            id="ordinal-not-bool",
        ),
    ],
)
def test_confusion_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        multiclass_confusion(["a", "b", "b"], classes=["a", "b"], **kwargs)


# --------------------------------------------------------------------------- figure


def test_multiclass_confusion_figure_smoke(confusion, tmp_path):
    from studyval.figures.subgroups import multiclass_confusion_figure

    fig = multiclass_confusion_figure(confusion.matrix(margins=True), title="Staging")
    fig.savefig(tmp_path / "staging.png", dpi=100)
    assert (tmp_path / "staging.png").stat().st_size > 0
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "26\n(87%)" in texts and "12\n(50%)" in texts


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        pytest.param(pd.DataFrame([[1, 2]]), "must be square", id="not-square"),
        pytest.param(
            pd.DataFrame([[1, 2], [3, 4]], index=["a", "b"], columns=["b", "a"]),
            "same classes, in the same order",
            id="label-order",
        ),
        pytest.param(
            pd.DataFrame([[0, 0], [3, 4]], index=["a", "b"], columns=["a", "b"]),
            "reference class 'a' has no cases",
            id="empty-row",
        ),
        pytest.param(np.eye(2), "must be a pandas DataFrame", id="not-a-frame"),
    ],
)
def test_multiclass_confusion_figure_errors(matrix, match):
    from studyval.figures.subgroups import multiclass_confusion_figure

    with pytest.raises(StudyvalError, match=match):
        multiclass_confusion_figure(matrix)


# --------------------------------------------------------------------------- cluster bootstrap
PATIENTS = np.arange(72) // 2
BOOT_SEED = 20240611
# apply(res, 2, ...) of the module docstring: 2.5 % and 97.5 % quantiles, sd of the replicates
CLUSTER_BOOT_R = {
    "sensitivity:0": (0.75, 1, 0.057746671679479201),
    "specificity:0": (0.72972972972972971, 0.92861295681063127, 0.052279873521733432),
    "ppv:0": (0.66666666666666663, 0.91307453416149065, 0.060295547870920854),
    "npv:0": (0.79385930047694753, 1, 0.050488162586961177),
    "sensitivity:1": (0.07678571428571429, 0.42110323886639672, 0.090640518485794769),
    "specificity:1": (0.71731366459627321, 0.92156862745098034, 0.05207244512048273),
    "ppv:1": (0.21361607142857142, 0.68762019230769234, 0.12575785667949541),
    "npv:1": (0.5787593984962407, 0.78705438459536825, 0.058423702553106811),
    "sensitivity:2": (0.5714285714285714, 0.91682692307692304, 0.095329073661420266),
    "specificity:2": (0.67291666666666672, 0.88684486373165616, 0.060248117645063916),
    "ppv:2": (0.33300000000000002, 0.72026923076923077, 0.103987453049888),
    "npv:2": (0.79988636363636367, 0.97780141843971624, 0.045906278310630509),
    "accuracy": (0.51319444444444451, 0.73611111111111116, 0.058792330211457286),
    "accuracy_within_one": (0.95833333333333337, 1, 0.0133921499581386),
    "auc_ovr:0": (0.86902888777888776, 0.9807960007026898, 0.02934069227978503),
    "auc_ovr:1": (0.61021112040133785, 0.83822947090974076, 0.062621291016167396),
    "auc_ovr:2": (0.78219318181818176, 0.96060633704311871, 0.046109484609801819),
    "auc_macro": (0.77294435270189576, 0.90746718216122635, 0.036646460548482106),
    "auc_weighted": (0.76628453873712499, 0.91397236543677518, 0.039076228146091421),
    "hand_till_m": (0.76563369568257411, 0.906942975097624, 0.038021991693187623),
}
BOOT_LABEL = "patient-level percentile bootstrap (200 resamples)"
_BOOT = {"clusters": PATIENTS, "n_resamples": 200, "seed": BOOT_SEED}


def test_mc_draws_are_the_engines_resamples():
    d = np.random.Generator(np.random.PCG64(BOOT_SEED)).integers(0, 36, size=(200, 36))
    counts = np.stack([np.bincount(row, minlength=36) for row in d])
    w = np.concatenate(list(resampling_weights(PATIENTS, n_resamples=200, seed=BOOT_SEED)))
    assert np.array_equal(w, counts[:, PATIENTS])


@pytest.fixture(scope="module")
def clustered_confusion() -> MultiClassConfusion:
    pred = predict_argmax(P, CLASSES)
    return multiclass_confusion(Y, pred, classes=CLASSES, ordinal=True, **_BOOT)


@pytest.fixture(scope="module")
def clustered_auc() -> MultiClassAUCResult:
    return one_vs_rest_auc(Y, P, classes=CLASSES, **_BOOT)


def test_confusion_cluster_bootstrap_against_R_same_resamples(clustered_confusion):
    c = clustered_confusion
    frame = c.bootstrap.to_frame().set_index("statistic")
    names = [n for n in CLUSTER_BOOT_R if not n.startswith(("auc", "hand"))]
    assert list(frame.index) == names
    for name in names:
        lo, hi, sd = CLUSTER_BOOT_R[name]
        assert frame.loc[name, ["ci_low", "ci_high", "se"]].tolist() == pytest.approx(
            [lo, hi, sd], rel=REL
        )
        assert frame.loc[name, "n_failed"] == 0
    t = c.to_frame()
    assert (t["ci_method"] == BOOT_LABEL).all() and c.ci_method == BOOT_LABEL
    row = t[(t["class"] == "osteopenia") & (t["measure"] == "ppv")].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(CLUSTER_BOOT_R["ppv:1"][:2], rel=REL)
    row = t[t["measure"] == "accuracy_within_one"].iloc[0]
    assert (row["numerator"], row["denominator"], row["ci_high"]) == (71, 72, 1.0)


def test_confusion_bootstrap_keeps_estimates_and_counts(clustered_confusion):
    plain = multiclass_confusion(Y, predict_argmax(P, CLASSES), classes=CLASSES, ordinal=True)
    a, b = plain.to_frame(), clustered_confusion.to_frame()
    cols = ["class", "measure", "estimate", "ci_level", "numerator", "denominator", "note"]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    np.testing.assert_array_equal(plain.matrix(), clustered_confusion.matrix())
    assert plain.bootstrap is None and plain.ci_method == "wilson"


def test_ovr_cluster_bootstrap_against_pROC_same_resamples(clustered_auc):
    r = clustered_auc
    frame = r.bootstrap.to_frame().set_index("statistic")
    for name in ("auc_ovr:0", "auc_ovr:1", "auc_ovr:2", "auc_macro", "auc_weighted",
                 "hand_till_m"):  # fmt: skip
        lo, hi, sd = CLUSTER_BOOT_R[name]
        assert frame.loc[name, ["ci_low", "ci_high", "se"]].tolist() == pytest.approx(
            [lo, hi, sd], rel=REL
        )
    t = r.to_frame().set_index("measure")
    for name, avg in (("auc_macro", r.macro), ("auc_weighted", r.weighted),
                      ("hand_till_m", r.hand_till)):  # fmt: skip
        lo, hi, sd = CLUSTER_BOOT_R[name]
        assert (avg.ci_low, avg.ci_high, avg.se) == pytest.approx((lo, hi, sd), rel=REL)
        assert t.loc[name, "method"] == BOOT_LABEL
    plain = one_vs_rest_auc(Y, P, classes=CLASSES)
    assert (r.macro.estimate, r.weighted.estimate, r.hand_till.estimate) == (
        plain.macro.estimate,
        plain.weighted.estimate,
        plain.hand_till.estimate,
    )
    np.testing.assert_array_equal(r.pairwise_auc, plain.pairwise_auc)


def test_ovr_per_class_rows_are_clustered_delong(clustered_auc):
    t = clustered_auc.to_frame()
    ovr = t[t["measure"] == "auc_ovr"]
    assert (ovr["method"] == "clustered DeLong (Obuchowski 1997), patients as clusters").all()
    for j, cls in enumerate(CLASSES):
        ref = auc_clustered(Y == cls, P[:, j], PATIENTS, positive=True)
        row = ovr.iloc[j]
        assert row["class"] == cls
        assert [row["estimate"], row["se"], row["ci_low"], row["ci_high"]] == [
            ref.estimate, ref.se, ref.ci_low, ref.ci_high,
        ]  # fmt: skip
        assert clustered_auc.per_class[j] == ref


def test_ovr_bootstrap_covariance_is_that_of_the_replicates(clustered_auc):
    reps = clustered_auc.bootstrap.replicates[:, :3]
    np.testing.assert_allclose(clustered_auc.covariance, np.cov(reps, rowvar=False), rtol=1e-14)
    assert np.diag(clustered_auc.covariance) == pytest.approx(
        [CLUSTER_BOOT_R[f"auc_ovr:{j}"][2] ** 2 for j in range(3)], rel=1e-9
    )


def test_default_auc_table_is_unchanged_by_the_new_options(result):
    again = one_vs_rest_auc(Y, P, classes=CLASSES, clusters=None)
    pd.testing.assert_frame_equal(result.to_frame(), again.to_frame())
    assert (result.to_frame()["method"].iloc[:3] == "DeLong (class vs rest)").all()
    assert result.bootstrap is None


@pytest.mark.filterwarnings("ignore::studyval.errors.StatisticalWarning")
def test_confusion_bootstrap_leaves_undefined_measures_undefined():
    y = ["a", "a", "b", "b", "c", "c", "a", "b", "c", "a", "b", "c"]
    pred = ["a", "b", "b", "b", "a", "a", "a", "b", "b", "a", "a", "b"]  # 'c' never predicted
    c = multiclass_confusion(y, pred, classes=["a", "b", "c"], clusters=np.arange(12) // 2, seed=1,
                             n_resamples=300)  # fmt: skip
    t = c.to_frame().set_index(["class", "measure"])
    row = t.loc[("c", "ppv")]
    assert math.isnan(row["estimate"]) and math.isnan(row["ci_low"]) and math.isnan(row["ci_high"])
    assert row["note"] == (
        "undefined: the denominator is zero (no case predicted 'c'); "
        "no bootstrap interval: the estimate is undefined"
    )
    assert row["ci_method"] == "patient-level percentile bootstrap (300 resamples)"
    assert "ppv:2" not in c.bootstrap.names and "sensitivity:2" in c.bootstrap.names


def test_bootstrap_warns_when_resamples_lack_a_class():
    # class 'c' in one patient of six: about a third of the resamples have no 'c'
    y = ["a", "a", "b", "b", "a", "b", "b", "a", "c", "c", "a", "b"]
    pred = ["a", "b", "b", "b", "a", "a", "b", "a", "c", "b", "a", "b"]
    with pytest.warns(StatisticalWarning) as record:
        c = multiclass_confusion(y, pred, classes=["a", "b", "c"], clusters=np.arange(12) // 2,
                                 seed=2, n_resamples=200)  # fmt: skip
    messages = [str(w.message) for w in record]
    assert any(m.startswith("the statistic 'sensitivity:2' is undefined in") for m in messages)
    b = c.bootstrap["sensitivity:2"]
    assert 40 < b.n_failed < 120


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: one_vs_rest_auc(Y, P, classes=CLASSES, seed=1),
                     r"seed= is used only by the cluster bootstrap", id="auc-seed-alone"),
        pytest.param(lambda: one_vs_rest_auc(Y, P, classes=CLASSES, ci_method="bca"),
                     r"needs clusters=", id="auc-bca-alone"),
        pytest.param(lambda: one_vs_rest_auc(Y, P, classes=CLASSES, clusters=PATIENTS),
                     r"seed= is required", id="auc-no-seed"),
        pytest.param(lambda: one_vs_rest_auc(Y, P, classes=CLASSES, clusters=PATIENTS, seed=1,
                                             ci_method="delong"),
                     r"ci_method must be 'percentile' or 'bca'", id="auc-delong"),
        pytest.param(lambda: multiclass_confusion(Y, Y, classes=CLASSES, clusters=PATIENTS,
                                                  seed=1, ci_method="wilson"),
                     r"with clusters, ci_method must be 'percentile' or 'bca' \(got 'wilson'\)",
                     id="confusion-wilson"),
        pytest.param(lambda: multiclass_confusion(Y, Y, classes=CLASSES, n_resamples=10),
                     r"n_resamples= is used only", id="confusion-resamples-alone"),
        pytest.param(lambda: multiclass_confusion(Y, Y, classes=CLASSES, ci_method="percentile"),
                     r"needs clusters=", id="confusion-percentile-alone"),
        pytest.param(lambda: multiclass_confusion(Y, Y, classes=CLASSES, clusters=PATIENTS[:10],
                                                  seed=1),
                     r"clusters has 10 values but the data have 72 rows", id="confusion-length"),
    ],
)  # fmt: skip
def test_cluster_bootstrap_option_errors(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()


def test_ovr_clustered_needs_each_class_in_two_patients():
    y = np.array(["a", "a", "b", "b", "c", "c", "a", "b"])
    p = np.random.default_rng(0).random((8, 3))
    with pytest.raises(EstimationError, match=r"2 clusters|clusters"):
        one_vs_rest_auc(y, p, classes=["a", "b", "c"], clusters=[0, 0, 1, 1, 2, 2, 3, 4], seed=1)
