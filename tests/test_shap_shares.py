"""Modality shares of mean |SHAP| with a patient bootstrap, against R 4.2 on the same resamples.

``phi`` (30 cases = 15 patients x 2 knees, 2 classes, 3 modalities) is drawn below; the
resample counts are ``resampling_weights(clusters, n_resamples=200, seed=5)`` (the draws
``bootstrap_many`` makes with that seed), written to w.csv, and ``abs(phi)`` to a.csv. R:

    W <- as.matrix(read.csv("w.csv", header = FALSE)); A <- as.matrix(read.csv("a.csv", header = FALSE))
    share <- function(w) { num <- as.vector(w %*% A)
      den <- c(rep(sum(num[1:3]), 3), rep(sum(num[4:6]), 3)); num / den }
    est <- share(rep(1, nrow(A))); reps <- t(apply(W, 1, share))
    est; apply(reps, 2, quantile, probs = c(0.025, 0.975), type = 7); apply(reps, 2, sd)
"""

from __future__ import annotations

import numpy as np
import pytest

from studyval.analysis.shap_shares import modality_shares
from studyval.errors import EstimationError, StudyvalError

CLASSES = ["c0", "c1"]
GROUPS = ["image", "clinical", "laboratory"]


def _phi() -> np.ndarray:
    rng = np.random.default_rng(31)
    return np.round(rng.normal(0, 1, (30, 2, 3)) * np.array([2.0, 1.0, 0.3]), 4)


CLUSTERS = np.repeat([f"p{i:02d}" for i in range(15)], 2)


def test_shares_and_patient_bootstrap_against_R():
    t = modality_shares(
        _phi(), classes=CLASSES, groups=GROUPS, clusters=CLUSTERS, n_resamples=200, seed=5
    ).to_frame()
    # est
    np.testing.assert_allclose(
        t["share"],
        [0.5723223052, 0.3380030110, 0.0896746838, 0.6329815316, 0.2968428622, 0.0701756062],
        rtol=1e-9,
    )
    # quantile(..., 0.025, type = 7)
    np.testing.assert_allclose(
        t["ci_low"],
        [0.4880783586, 0.2722404229, 0.0705380243, 0.5733114258, 0.2367518740, 0.0519237338],
        rtol=1e-9,
    )
    # quantile(..., 0.975, type = 7)
    np.testing.assert_allclose(
        t["ci_high"],
        [0.6294441307, 0.4189674235, 0.1133341891, 0.6895663377, 0.3544592055, 0.0941033017],
        rtol=1e-9,
    )
    # sd
    np.testing.assert_allclose(
        t["se"],
        [0.0359607410, 0.0372386279, 0.0116375065, 0.0306957956, 0.0302290516, 0.0104389716],
        rtol=1e-8,
    )
    assert t.groupby("class")["share"].sum().round(12).tolist() == [1.0, 1.0]


def test_shares_equal_the_shapley_result_table():
    """The point estimates are GroupShapleyResult.to_frame()'s share column."""
    from studyval.analysis.shapley import GroupShapleyResult

    phi = _phi()
    res = GroupShapleyResult(
        groups=tuple(GROUPS),
        classes=tuple(CLASSES),
        contributions=phi,
        base=np.zeros((30, 2)),
        output=phi.sum(-1),
        method="test",
        scale="test",
    )
    t = modality_shares(phi, classes=CLASSES, groups=GROUPS, n_resamples=20, seed=1)
    np.testing.assert_allclose(t.to_frame()["share"], res.to_frame()["share"], rtol=1e-12)
    assert t.n_clusters == 30 and "case-level" in t.method


def test_refuses_bad_shapes_and_an_all_zero_class():
    with pytest.raises(StudyvalError, match=r"shape \(n, K, G\)"):
        modality_shares(np.zeros((3, 2)), classes=CLASSES, groups=GROUPS, n_resamples=10, seed=1)
    with pytest.raises(StudyvalError, match="class labels"):
        modality_shares(_phi(), classes=["a"], groups=GROUPS, n_resamples=10, seed=1)
    phi = _phi()
    phi[:, 1, :] = 0.0
    with pytest.raises(EstimationError, match="'c1'"):
        modality_shares(phi, classes=CLASSES, groups=GROUPS, n_resamples=10, seed=1)
