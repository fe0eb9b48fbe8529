"""Nested, patient-grouped cross-validation of the fusion models."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis import fusion
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError


@settings(max_examples=30, deadline=None)
@given(
    n_patients=st.integers(10, 60),
    n_splits=st.integers(2, 5),
    seed=st.integers(0, 10_000),
)
def test_grouped_folds_never_split_a_patient(n_patients, n_splits, seed):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_patients), rng.integers(1, 3, n_patients))
    y = rng.integers(0, 3, len(groups))
    fold = fusion.grouped_folds(y, groups, n_splits=n_splits, seed=seed)
    assert fold.min() == 0 and fold.max() == n_splits - 1
    for g in np.unique(groups):
        assert len(np.unique(fold[groups == g])) == 1


def test_macro_auc_against_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 200)
    p = rng.dirichlet([1, 1, 1], 200) + np.eye(3)[y] * 0.3
    p /= p.sum(1, keepdims=True)
    assert fusion.macro_auc(y, p, 3) == pytest.approx(
        roc_auc_score(y, p, multi_class="ovr"), rel=1e-12
    )


def test_macro_auc_with_every_class_uses_all_and_does_not_warn():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 60)
    p = rng.dirichlet([1, 1, 1], 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)
        r = fusion.macro_auc_result(y, p, 3)
        assert fusion.macro_auc(y, p, 3) == r.estimate
    assert r.classes_used == (0, 1, 2) and r.classes_skipped == ()
    assert r.to_frame().loc[0, "classes_skipped"] == ""


def test_macro_auc_names_and_warns_about_a_class_without_cases():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 30)  # class 2 has no case in these rows (e.g. a small fold)
    p = rng.dirichlet([1, 1, 1], 30)
    with pytest.warns(
        StatisticalWarning,
        match=r"macro AUC over 2 of 3 classes; skipped class 2: no case of class 2 among the 30 rows",
    ):
        r = fusion.macro_auc_result(y, p, 3)
    assert r.classes_used == (0, 1)
    assert r.classes_skipped == ((2, "no case of class 2 among the 30 rows"),)
    expected = [roc_auc_score(y == c, p[:, c]) for c in (0, 1)]
    assert r.estimate == pytest.approx(np.mean(expected), rel=1e-12)
    np.testing.assert_allclose(r.auc_per_class[:2], expected, rtol=1e-12)
    assert np.isnan(r.auc_per_class[2])
    frame = r.classes_frame()
    assert frame["used"].tolist() == [True, True, False]
    assert frame["reason_skipped"].tolist() == ["", "", "no case of class 2 among the 30 rows"]
    row = r.to_frame().iloc[0]
    assert row["n_classes_used"] == 2
    assert row["classes_skipped"] == "class 2: no case of class 2 among the 30 rows"
    # the float-returning function (tuning criterion, runners) keeps its type and warns alike
    with pytest.warns(StatisticalWarning, match="skipped class 2"):
        value = fusion.macro_auc(y, p, 3)
    assert isinstance(value, float) and value == r.estimate


@pytest.mark.parametrize(
    ("y", "scores", "error", "match"),
    [
        pytest.param(
            np.zeros(10, dtype=int),
            np.full((10, 3), 1 / 3),
            EstimationError,
            r"at least two classes.*0 of 3.*class 0: all 10 rows are class 0.*class 1: no case",
            id="one-class-only",
        ),
        pytest.param(
            np.array([0, 1, 0, 1]),
            np.full((4, 2), 0.5),
            StudyvalError,
            r"scores must have shape \(rows, classes\) = \(4, 3\)",
            id="scores-wrong-shape",
        ),
    ],
)
def test_macro_auc_errors(y, scores, error, match):
    with pytest.raises(error, match=match):
        fusion.macro_auc_result(y, scores, 3)


def test_tuning_records_and_warns_about_an_inner_fold_without_a_class():
    rng = np.random.default_rng(3)
    groups = np.repeat(np.arange(20), 2)
    y = np.repeat(np.r_[np.zeros(9), np.ones(9), 2, 2].astype(int), 2)  # 2 patients of class 2
    X = rng.normal(size=(40, 3)) + y[:, None]
    with pytest.warns(
        StatisticalWarning,
        match=r"svm tuning, inner fold 2 of 3: macro AUC over 2 of 3 classes; skipped class 2: "
        r"no case of class 2 among the 12 rows",
    ):
        t = fusion.tune_and_fit(
            X,
            y,
            groups,
            kind="svm",
            fixed={},
            grid={"C": [0.5, 1.0]},
            n_classes=3,
            inner_folds=3,
            seed=1,
        )
    assert (
        t.tuning["classes_skipped"] == "inner fold 2: class 2: no case of class 2 among the 12 rows"
    ).all()


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(5)
    n = 120
    groups = np.repeat(np.arange(n // 2), 2)
    X = rng.normal(size=(n, 4))
    y = np.digitize(X[:, 0] + 0.5 * rng.normal(size=n), [-0.5, 0.5])
    return X, y, groups


@pytest.mark.parametrize(
    ("kind", "fixed", "grid"),
    [
        pytest.param(
            "xgboost",
            {"n_estimators": 10, "n_jobs": 1, "tree_method": "hist"},
            {"max_depth": [1, 2]},
            id="xgboost",
        ),
        pytest.param("svm", {"kernel": "rbf", "gamma": "scale"}, {"C": [0.5, 2.0]}, id="svm"),
    ],
)
def test_nested_cv_is_deterministic_and_complete(toy, kind, fixed, grid):
    X, y, g = toy
    a = fusion.nested_cv(
        X,
        y,
        g,
        kind=kind,
        fixed=fixed,
        grid=grid,
        n_classes=3,
        outer_folds=3,
        inner_folds=2,
        seed=9,
    )
    b = fusion.nested_cv(
        X,
        y,
        g,
        kind=kind,
        fixed=fixed,
        grid=grid,
        n_classes=3,
        outer_folds=3,
        inner_folds=2,
        seed=9,
    )
    assert np.isfinite(a.scores).all()
    np.testing.assert_array_equal(a.scores, b.scores)
    assert fusion.macro_auc(y, a.scores, 3) > 0.7
    assert a.tuning.groupby("fold")["selected"].sum().eq(1).all()
    assert (a.tuning["classes_skipped"] == "").all()
    t = fusion.tune_and_fit(
        X, y, g, kind=kind, fixed=fixed, grid=grid, n_classes=3, inner_folds=2, seed=9
    )
    assert fusion.model_sha256(t) == fusion.model_sha256(
        fusion.tune_and_fit(
            X, y, g, kind=kind, fixed=fixed, grid=grid, n_classes=3, inner_folds=2, seed=9
        )
    )


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        pytest.param({"kind": "svn"}, StudyvalError, "did you mean 'svm'", id="misspelt-kind"),
        pytest.param({"outer_folds": 100}, EstimationError, "cannot be split", id="too-many-folds"),
    ],
)
def test_errors(toy, args, error, match):
    X, y, g = toy
    kw = (
        dict(
            kind="svm",
            fixed={},
            grid={"C": [1.0]},
            n_classes=3,
            outer_folds=3,
            inner_folds=2,
            seed=1,
        )
        | args
    )
    with pytest.raises(error, match=match):
        fusion.nested_cv(X, y, g, **kw)


def test_missing_feature_is_an_error(toy):
    X, y, g = toy
    X = X.copy()
    X[4, 2] = np.nan
    with pytest.raises(StudyvalError, match=r"row 4, feature 2"):
        fusion.nested_cv(
            X,
            y,
            g,
            kind="svm",
            fixed={},
            grid={"C": [1.0]},
            n_classes=3,
            outer_folds=3,
            inner_folds=2,
            seed=1,
        )


def test_grouped_folds_are_a_pure_function_of_their_inputs():
    """A split asked for again (the same values) is the same split, and changing a returned
    split changes nothing a later call returns."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 3, 60)
    groups = np.array([f"P{i // 2:03d}" for i in range(60)], dtype=object)
    first = fusion.grouped_folds(y, groups, n_splits=3, seed=7)
    first[:] = -9
    again = fusion.grouped_folds(y.copy(), groups.copy(), n_splits=3, seed=7)
    assert set(again.tolist()) == {0, 1, 2}
    fresh = fusion._grouped_folds(y, groups, 3, 7)
    np.testing.assert_array_equal(again, fresh)
    other = fusion.grouped_folds(y, groups, n_splits=3, seed=8)
    np.testing.assert_array_equal(other, fusion._grouped_folds(y, groups, 3, 8))


def test_best_fold_is_scikit_learns_choice():
    """:func:`fusion._best_fold` picks the fold of ``StratifiedGroupKFold._find_best_fold`` for
    random fold tables, exact ties (equal or empty folds) and near ties (within isclose)
    included, for 2 to 11 folds and 1 to 11 classes, and leaves the fold table unchanged."""
    from sklearn.model_selection import StratifiedGroupKFold

    rng = np.random.default_rng(11)
    for case in range(600):
        n_splits, n_classes = int(rng.integers(2, 12)), int(rng.integers(1, 12))
        y_cnt = rng.integers(1, 300, n_classes)
        counts = rng.integers(0, 40, (n_splits, n_classes)).astype(float)
        if case % 4 == 1:  # equal folds: every fold ties
            counts[:] = counts[0]
        elif case % 4 == 2:  # folds equal up to one row of a large class: near ties
            y_cnt[0] = 10**7
            counts[:, 1:] = counts[0, 1:]
        elif case % 4 == 3 and case < 200:  # nothing assigned yet
            counts[:] = 0
        group = rng.integers(0, 3, n_classes).astype(float)
        before = counts.copy()
        ours = fusion._best_fold(counts, y_cnt, group)
        np.testing.assert_array_equal(counts, before)
        theirs = StratifiedGroupKFold(n_splits=n_splits)._find_best_fold(
            y_counts_per_fold=counts, y_cnt=y_cnt, group_y_counts=group
        )
        assert ours == theirs, (case, counts, y_cnt, group)


def test_grouped_folds_are_scikit_learns():
    """The folds are exactly those of scikit-learn's own ``StratifiedGroupKFold`` (shuffled with
    the seed), with its warnings and errors: random data, groups of one class (many ties),
    string ids and labels."""
    from sklearn.model_selection import StratifiedGroupKFold

    def split(splitter, *args):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                out = fusion._grouped_folds(*args, splitter=splitter)
            except ValueError as exc:
                out = repr(exc)
        return out, [(w.category, str(w.message)) for w in caught]

    rng = np.random.default_rng(12)
    for case in range(40):
        n_splits, n_classes = int(rng.integers(2, 10)), int(rng.integers(1, 8))
        n_groups = int(rng.integers(n_splits, 60))
        sizes = rng.integers(1, 5, n_groups)
        groups = np.repeat(rng.permutation(n_groups) * 7 + 3, sizes)
        p = rng.dirichlet(np.ones(n_classes))
        y = rng.choice(n_classes, len(groups), p=p)
        if case % 3 == 0:  # one class per patient
            y = rng.choice(n_classes, n_groups, p=p)[np.repeat(np.arange(n_groups), sizes)]
        if case % 5 == 0:
            groups = np.array([f"P{g:04d}" for g in groups], dtype=object)
            y = np.array(["a", "b", "c", "d", "e", "f", "g"])[y]
        seed = int(rng.integers(0, 10_000))
        ours = split(None, y, groups, n_splits, seed)
        theirs = split(StratifiedGroupKFold, y, groups, n_splits, seed)
        assert ours[1] == theirs[1]
        if isinstance(theirs[0], str):
            assert ours[0] == theirs[0]
        else:
            np.testing.assert_array_equal(ours[0], theirs[0])
