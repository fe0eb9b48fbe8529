"""Cumulative AUCs, Harrell's ordinal c and the ORC against pROC 1.18 and Hmisc 5.1 (R 4.2).

The R script behind every expected value (run once; the tests do not call R):

    library(pROC); library(Hmisc)
    y  <- c(<Y below>); p0 <- c(<P0 below>); p2 <- c(<P2 below>); p1 <- 1 - p0 - p2
    for (k in 1:2) { s <- if (k == 1) 1 - p0 else p2
      r <- roc(y >= k, s, levels = c(FALSE, TRUE), direction = "<", quiet = TRUE)
      print(ci.auc(r, method = "delong")); print(sqrt(var(r, method = "delong"))) }
    e <- p1 + 2 * p2                                   # expected class
    rcorr.cens(e, y)["C Index"]
    pairs <- list(c(0, 1), c(0, 2), c(1, 2))
    a <- sapply(pairs, function(q) { m <- y %in% q
      as.numeric(auc(roc(y[m] == q[2], e[m], levels = c(FALSE, TRUE), direction = "<",
                         quiet = TRUE))) })
    a; mean(a)                                        # the ORC
"""

from __future__ import annotations

import numpy as np
import pytest

from studyval.analysis.clustered import auc_clustered
from studyval.analysis.ordinal_discrimination import (
    cumulative_auc,
    expected_class,
    ordinal_c_index,
)
from studyval.errors import EstimationError, StudyvalError

Y = [2, 1, 2, 2, 1, 2, 2, 0, 0, 0, 0, 2, 2, 0, 1, 2, 0, 2, 0, 1,
     2, 0, 1, 0, 2, 0, 2, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 1, 1, 2]  # fmt: skip
P0 = [0.342, 0.133, 0.162, 0.009, 0.068, 0.023, 0.596, 0.538, 0.351, 0.293,
      0.819, 0.041, 0.101, 0.633, 0.012, 0.075, 0.345, 0.002, 0.555, 0.109,
      0.013, 0.31, 0.453, 0.306, 0.001, 0.823, 0.003, 0.073, 0.241, 0.002,
      0.021, 0.443, 0.079, 0.005, 0.023, 0.004, 0.018, 0.026, 0.005, 0.059]  # fmt: skip
P2 = [0.325, 0.587, 0.542, 0.9, 0.712, 0.838, 0.128, 0.164, 0.316, 0.376,
      0.028, 0.78, 0.643, 0.107, 0.887, 0.696, 0.321, 0.949, 0.154, 0.629,
      0.882, 0.357, 0.226, 0.362, 0.97, 0.027, 0.948, 0.701, 0.435, 0.959,
      0.844, 0.234, 0.688, 0.929, 0.837, 0.936, 0.857, 0.828, 0.925, 0.732]  # fmt: skip
PROB = np.column_stack([P0, 1 - np.array(P0) - np.array(P2), P2])
CLASSES = [0, 1, 2]


def test_cumulative_auc_against_pROC_delong():
    t = cumulative_auc(Y, PROB, classes=CLASSES).to_frame()
    # ci.auc(roc(y >= 1, 1 - p0, ...), method = "delong"): 0.859118174023 0.933333333333 1
    # sqrt(var(r, method = "delong")): 0.037865572988
    # ci.auc(roc(y >= 2, p2, ...)): 0.621113531712 0.772378516624 0.923643501536; se 0.077177430864
    assert t["cut"].tolist() == [1, 2]
    np.testing.assert_allclose(t["estimate"], [0.933333333333, 0.772378516624], rtol=1e-9)
    np.testing.assert_allclose(t["se"], [0.037865572988, 0.077177430864], rtol=1e-9)
    np.testing.assert_allclose(t["ci_low"], [0.859118174023, 0.621113531712], rtol=1e-9)
    np.testing.assert_allclose(t["ci_high"], [1.0, 0.923643501536], rtol=1e-9)
    assert t["n_positive"].tolist() == [
        int(np.sum(np.array(Y) >= 1)),
        int(np.sum(np.array(Y) == 2)),
    ]


def test_harrell_c_and_orc_against_hmisc_and_pROC():
    r = ordinal_c_index(Y, expected_class(PROB, classes=CLASSES), classes=CLASSES)
    # rcorr.cens(e, y)["C Index"]: 0.809980806142
    assert r.c_index == pytest.approx(0.809980806142, rel=1e-9)
    # pairwise pROC::auc: 0.923076923077 0.941176470588 0.642533936652; mean 0.835595776772
    np.testing.assert_allclose(
        r.pairs_frame()["auc"], [0.923076923077, 0.941176470588, 0.642533936652], rtol=1e-9
    )
    assert r.orc == pytest.approx(0.835595776772, rel=1e-9)
    n = np.bincount(Y)
    assert r.n_pairs == n[0] * n[1] + n[0] * n[2] + n[1] * n[2]
    assert np.isnan(r.c_ci_low) and r.n_resamples == 0


def test_clustered_cumulative_auc_is_the_clustered_delong_of_the_cumulative_score():
    clusters = np.repeat(np.arange(20), 2)
    t = cumulative_auc(Y, PROB, classes=CLASSES, cuts=[2], clusters=clusters).to_frame()
    ref = auc_clustered(np.array(Y) >= 2, PROB[:, 2], clusters, positive=True)
    assert t["estimate"].iloc[0] == ref.estimate and t["ci_low"].iloc[0] == ref.ci_low
    assert t["n_clusters"].iloc[0] == 20 and "clustered" in t["method"].iloc[0]


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    clusters = np.repeat(np.arange(20), 2)
    score = expected_class(PROB, classes=CLASSES)
    a = ordinal_c_index(Y, score, classes=CLASSES, clusters=clusters, n_resamples=200, seed=3)
    b = ordinal_c_index(Y, score, classes=CLASSES, clusters=clusters, n_resamples=200, seed=3)
    assert a.c_ci_low < a.c_index < a.c_ci_high and a.orc_ci_low < a.orc < a.orc_ci_high
    assert a.to_frame().equals(b.to_frame()) and a.n_clusters == 20


def test_properties_perfect_reversed_and_constant_scores():
    y = np.array(Y)
    assert ordinal_c_index(Y, y.astype(float), classes=CLASSES).orc == 1.0
    rev = ordinal_c_index(Y, -expected_class(PROB, classes=CLASSES), classes=CLASSES)
    assert rev.c_index == pytest.approx(1 - 0.809980806142, rel=1e-9)
    flat = ordinal_c_index(Y, np.zeros(len(Y)), classes=CLASSES)
    assert flat.c_index == 0.5 and flat.orc == 0.5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"prob": PROB[:, :2]}, StudyvalError, "shape", id="wrong-shape"),
        pytest.param({"prob": PROB * 2}, StudyvalError, r"\[0, 1\]", id="not-probabilities"),
        pytest.param(
            {"prob": PROB * 0.9}, StudyvalError, "sum to 1", id="svm-like-decision-values"
        ),
        pytest.param({"cuts": [0]}, StudyvalError, "other than the mildest", id="cut-mildest"),
    ],
)
def test_cumulative_auc_refuses(kwargs, error, match):
    args = {"prob": PROB, **kwargs}
    with pytest.raises(error, match=match):
        cumulative_auc(Y, args.pop("prob"), classes=CLASSES, **args)


def test_ordinal_c_refuses_an_absent_class_and_a_bootstrap_without_seed():
    with pytest.raises(EstimationError, match="no case"):
        ordinal_c_index([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4], classes=[0, 1, 2])
    with pytest.raises(StudyvalError, match="seed"):
        ordinal_c_index(Y, np.array(Y, float), classes=CLASSES, n_resamples=10)
