"""Modality-level Shapley values: efficiency, symmetry, dummy and a hand-computed game."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.shapley import group_shapley, tree_group_shap
from studyval.errors import StudyvalError

GROUPS = {"image": [0, 1], "clinical": [2], "laboratory": [3, 4]}


def _linear(w):
    return lambda rows: np.column_stack([rows @ w, -(rows @ w)])


def test_linear_model_matches_closed_form():
    # Published result: for a linear model f(x) = w'x with independent features the
    # interventional Shapley value of feature j is w_j (x_j - E z_j) (Aas, Jullum & Loland,
    # Artif Intell 2021;298:103502, section 2; Lundberg & Lee, NeurIPS 2017, "Linear SHAP"),
    # and a group's value is the sum over its features (Jullum et al., groupShapley,
    # arXiv:2106.12228). The expected value below is that closed form.
    rng = np.random.default_rng(1)
    X, Z, w = rng.normal(size=(7, 5)), rng.normal(size=(9, 5)), rng.normal(size=5)
    r = group_shapley(_linear(w), X, Z, groups=GROUPS, classes=["a", "b"])
    for g, (name, cols) in enumerate(GROUPS.items()):
        expected = ((X[:, cols] - Z[:, cols].mean(0)) * w[cols]).sum(1)
        np.testing.assert_allclose(r.contributions[:, 0, g], expected, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(r.contributions[:, 1], -r.contributions[:, 0], atol=1e-12)


def test_interaction_split_equally_between_two_players():
    # f = x0 * x2 with background 0: v({img}) = v({clin}) = 0, v({img, clin}) = x0 x2 -> half each.
    X = np.array([[2.0, 0, 3.0, 0, 0]])
    Z = np.zeros((1, 5))
    r = group_shapley(lambda a: (a[:, 0] * a[:, 2])[:, None], X, Z, groups=GROUPS, classes=["y"])
    np.testing.assert_allclose(r.contributions[0, 0], [3.0, 3.0, 0.0])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_efficiency_property(seed):
    rng = np.random.default_rng(seed)
    X, Z = rng.normal(size=(4, 5)), rng.normal(size=(6, 5))
    f = lambda a: np.column_stack([np.tanh(a[:, 0] * a[:, 3]) + a[:, 2] ** 2, np.sin(a.sum(1))])  # noqa: E731
    r = group_shapley(f, X, Z, groups=GROUPS, classes=[0, 1])
    assert r.efficiency_gap() < 1e-12
    np.testing.assert_allclose(r.output, f(X), atol=1e-12)
    np.testing.assert_allclose(r.base[0], f(Z).mean(0), atol=1e-12)


def test_tree_shap_efficiency_and_dummy_modality():
    from xgboost import XGBClassifier

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 5))
    y = (X[:, 0] + X[:, 2] > 0).astype(int) + (X[:, 0] > 1)
    X[:, 3:] = 0.0  # laboratory constant: never split on, contributes exactly 0
    m = XGBClassifier(
        n_estimators=20, max_depth=2, random_state=1, n_jobs=1, tree_method="hist"
    ).fit(X, y)
    r = tree_group_shap(m, X[:50], groups=GROUPS, classes=[0, 1, 2])
    assert r.efficiency_gap() < 1e-4  # float32 inside xgboost
    assert np.abs(r.contributions[:, :, 2]).max() == 0.0
    tab = r.to_frame()
    assert set(tab["modality"]) == set(GROUPS)
    np.testing.assert_allclose(tab.groupby("class")["share"].sum(), 1.0)


def test_groups_must_partition_the_columns():
    with pytest.raises(StudyvalError, match="partition"):
        group_shapley(
            _linear(np.ones(5)),
            np.zeros((1, 5)),
            np.zeros((1, 5)),
            groups={"a": [0, 1]},
            classes=[0, 1],
        )
