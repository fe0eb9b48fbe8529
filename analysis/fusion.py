r"""Multimodal fusion classifiers with nested, patient-grouped cross-validation.

Two model kinds, both multi-class over an explicit, ordered list of classes:

* ``"xgboost"``: gradient-boosted trees (:class:`xgboost.XGBClassifier`,
  ``multi:softprob``, ``tree_method="hist"``, fixed ``random_state``); scores
  are the predicted class probabilities.
* ``"svm"``: standardised features and an RBF support vector machine
  (:class:`sklearn.svm.SVC`, ``decision_function_shape="ovr"``); scores are the
  one-vs-rest decision values (not probabilities: no Platt scaling, whose
  internal cross-validation would ignore the patient grouping).

A higher score in column :math:`c` always means more likely class :math:`c`.

Nested cross-validation (Varma & Simon 2006, doi:10.1186/1471-2105-7-91):
the outer loop (:class:`sklearn.model_selection.StratifiedGroupKFold`, groups =
patients, stratified by class, shuffled with the seed) gives every row one
out-of-fold score from a model that never saw any row of its patient; inside
each outer training set an inner grouped K-fold picks the grid point with the
highest mean macro one-vs-rest AUC, and the model is refitted on the whole
outer training set with it. :func:`tune_and_fit` runs the inner loop alone,
for the final model that is applied once to the external cohort.

Everything is deterministic for a given seed (folds, boosting, SVM).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "KINDS",
    "MacroAUCResult",
    "NestedCVResult",
    "TunedModel",
    "grouped_folds",
    "macro_auc",
    "macro_auc_result",
    "make_estimator",
    "model_sha256",
    "nested_cv",
    "predict_scores",
    "tune_and_fit",
]

KINDS = ("xgboost", "svm")


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        import difflib

        close = difflib.get_close_matches(str(kind), KINDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StudyvalError(f"unknown model kind {kind!r} (one of {', '.join(KINDS)}){hint}")
    return kind


def _check_xy(
    X: Any, y: Any, groups: Any, n_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=float)
    y = np.asarray(y)
    groups = np.asarray(groups)
    if X.ndim != 2:
        raise StudyvalError(f"X must be 2-D (rows x features), got shape {X.shape}")
    if not (len(y) == len(groups) == X.shape[0]):
        raise StudyvalError(
            f"X ({X.shape[0]} rows), y ({len(y)}) and groups ({len(groups)}) must have the same length"
        )
    if not np.isfinite(X).all():
        r, c = np.argwhere(~np.isfinite(X))[0]
        raise StudyvalError(f"X has a missing or non-finite value (row {r}, feature {c})")
    if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= n_classes:
        raise StudyvalError(f"y must be integer class codes 0..{n_classes - 1}")
    return X, y.astype(np.int64), groups


@dataclasses.dataclass(frozen=True, eq=False)
class MacroAUCResult(Result):
    r"""Macro one-vs-rest AUC, with the classes it could and could not use.

    Attributes
    ----------
    estimate : float
        Mean one-vs-rest AUC over :attr:`classes_used`.
    n : int
        Rows.
    n_classes : int
        Classes of the outcome (codes ``0..n_classes-1``).
    classes_used : tuple of int
        Class codes with both cases and non-cases among the rows.
    classes_skipped : tuple of (int, str)
        Every class code left out, with the reason (``"no case of class 2
        among the 14 rows"``); empty when every class was used.
    auc_per_class : tuple of float
        One-vs-rest AUC of every class code, NaN for a skipped class.
    """

    estimate: float
    n: int
    n_classes: int
    classes_used: tuple[int, ...]
    classes_skipped: tuple[tuple[int, str], ...]
    auc_per_class: tuple[float, ...] = dataclasses.field(repr=False)

    def skipped_text(self) -> str:
        """The skipped classes as ``"class 2: <reason>; ..."`` (empty when none)."""
        return "; ".join(f"class {c}: {why}" for c, why in self.classes_skipped)

    def to_frame(self) -> pd.DataFrame:
        """One row: ``estimate, n, n_classes, n_classes_used, classes_skipped`` (text)."""
        return pd.DataFrame(
            [
                {
                    "estimate": self.estimate,
                    "n": self.n,
                    "n_classes": self.n_classes,
                    "n_classes_used": len(self.classes_used),
                    "classes_skipped": self.skipped_text(),
                }
            ]
        )

    def classes_frame(self) -> pd.DataFrame:
        """One row per class code: ``class_code, auc, used, reason_skipped``."""
        why = dict(self.classes_skipped)
        return pd.DataFrame(
            {
                "class_code": np.arange(self.n_classes),
                "auc": np.asarray(self.auc_per_class, float),
                "used": [c in self.classes_used for c in range(self.n_classes)],
                "reason_skipped": [why.get(c, "") for c in range(self.n_classes)],
            }
        )


def _macro_auc(y: Any, scores: Any, n_classes: int) -> MacroAUCResult:
    """:func:`macro_auc_result` without its warning (callers warn once, with their context)."""
    y = np.asarray(y)
    s = np.asarray(scores, float)
    n = len(y)
    if s.ndim != 2 or s.shape != (n, n_classes):
        raise StudyvalError(
            f"scores must have shape (rows, classes) = ({n}, {n_classes}), got {s.shape}"
        )
    aucs, used, skipped = [], [], []
    for c in range(n_classes):
        pos = y == c
        m = int(pos.sum())
        if m == 0:
            skipped.append((c, f"no case of class {c} among the {n} rows"))
            aucs.append(np.nan)
        elif m == n:
            skipped.append((c, f"all {n} rows are class {c} (no non-case)"))
            aucs.append(np.nan)
        else:
            r = rankdata(s[:, c])
            aucs.append(float((r[pos].sum() - m * (m + 1) / 2) / (m * (n - m))))
            used.append(c)
    if len(used) < 2:
        raise EstimationError(
            f"a macro AUC needs at least two classes with both cases and non-cases; "
            f"{len(used)} of {n_classes} in these {n} rows ("
            + "; ".join(f"class {c}: {why}" for c, why in skipped)
            + ")"
        )
    return MacroAUCResult(
        estimate=float(np.mean([aucs[c] for c in used])),
        n=n,
        n_classes=n_classes,
        classes_used=tuple(used),
        classes_skipped=tuple(skipped),
        auc_per_class=tuple(aucs),
    )


def _warn_skipped(res: MacroAUCResult, where: str = "", *, stacklevel: int = 3) -> None:
    if res.classes_skipped:
        warnings.warn(
            f"{where}macro AUC over {len(res.classes_used)} of {res.n_classes} classes; skipped "
            + res.skipped_text(),
            StatisticalWarning,
            stacklevel=stacklevel,
        )


def macro_auc_result(y: Any, scores: Any, n_classes: int) -> MacroAUCResult:
    r"""Mean one-vs-rest AUC over the classes present with both cases and non-cases.

    .. math:: \frac{1}{|C|}\sum_{c \in C} \hat\theta_c, \quad
        \hat\theta_c = \frac{R_c - m_c(m_c+1)/2}{m_c (N - m_c)}

    with :math:`C` the classes with :math:`0 < m_c < N` cases among the
    :math:`N` rows and :math:`R_c` the rank sum of the class-:math:`c` cases
    in score column :math:`c` (mid-ranks for ties; Mann-Whitney, Hanley &
    McNeil 1982, doi:10.1148/radiology.143.1.7063747; the unweighted macro
    average of the one-vs-rest AUCs, Fawcett 2006,
    doi:10.1016/j.patrec.2005.10.010). Used as the tuning criterion.

    A class without a case among the rows (e.g. in a small cross-validation
    fold) has no one-vs-rest AUC: it is left out of the mean, named in
    :attr:`MacroAUCResult.classes_skipped` with the reason, and a
    :class:`~studyval.errors.StatisticalWarning` says so, because the mean is
    then over fewer classes and is not comparable with a mean over all of them.

    Parameters
    ----------
    y : array-like of int, shape (n,)
        Class codes ``0..n_classes-1``.
    scores : array-like, shape (n, n_classes)
        Higher in column :math:`c` = more likely class :math:`c`.
    n_classes : int

    Returns
    -------
    MacroAUCResult

    Raises
    ------
    EstimationError
        Fewer than two classes have both cases and non-cases.
    StudyvalError
        ``scores`` is not of shape ``(n, n_classes)``.

    Warns
    -----
    StatisticalWarning
        Some class was skipped.
    """
    res = _macro_auc(y, scores, n_classes)
    _warn_skipped(res)
    return res


def macro_auc(y: Any, scores: Any, n_classes: int) -> float:
    """The :attr:`~MacroAUCResult.estimate` of :func:`macro_auc_result`, as a float.

    Kept for callers that want the number only; it warns
    (:class:`~studyval.errors.StatisticalWarning`) and raises exactly as
    :func:`macro_auc_result`, so a skipped class is never silent. Use
    :func:`macro_auc_result` to see which classes were used.
    """
    res = _macro_auc(y, scores, n_classes)
    _warn_skipped(res)
    return res.estimate


def grouped_folds(y: Any, groups: Any, *, n_splits: int, seed: int) -> np.ndarray:
    """Fold number (0..n_splits-1) of every row; all rows of a group share one fold.

    :class:`sklearn.model_selection.StratifiedGroupKFold` with ``shuffle=True``
    and ``random_state=seed`` (stratified by ``y`` as far as the groups allow);
    its search for each group's fold is done for all folds at once
    (:func:`_best_fold`), with the same folds.

    Raises
    ------
    EstimationError
        Fewer groups than folds.
    """
    y = np.asarray(y)
    groups = np.asarray(groups)
    n_groups = len(np.unique(groups))
    if n_groups < n_splits:
        raise EstimationError(f"{n_groups} patients cannot be split into {n_splits} grouped folds")
    key = (
        y.dtype.str,
        y.tobytes() if y.dtype != object else repr(y.tolist()),
        repr(groups.tolist()),
        int(n_splits),
        int(seed),
    )
    fold = _FOLDS.get(key)
    if fold is None:
        fold = _grouped_folds(y, groups, n_splits, seed)
        if len(_FOLDS) >= _FOLDS_KEPT:
            _FOLDS.pop(next(iter(_FOLDS)))
        _FOLDS[key] = fold
    return fold.copy()


#: Folds already split, by their exact inputs (the values of ``y`` and ``groups``, ``n_splits``,
#: ``seed``): the split is a pure function of these, and each model kind of a fused analysis asks
#: for the same inner folds (StratifiedGroupKFold's search is most of a small tuning run's time).
#: Bounded (oldest dropped first); a copy is returned, so no caller can change a kept split.
_FOLDS: dict[tuple[object, ...], np.ndarray] = {}
_FOLDS_KEPT = 64


def _best_fold(y_counts_per_fold: np.ndarray, y_cnt: np.ndarray, group_y_counts: np.ndarray) -> int:
    """The fold that ``StratifiedGroupKFold._find_best_fold`` gives a group, every fold at once.

    scikit-learn adds the group's class counts to each fold in turn and scores the
    resulting class proportions (``y_counts_per_fold / y_cnt``) by the mean over classes
    of their standard deviation over folds; the lowest score wins, a tie
    (:func:`numpy.isclose`) going to the fold with fewer rows, then to the first fold.
    Here the ``n_splits`` candidate tables are stacked, shape ``(n_splits, n_splits,
    n_classes)``, and scored together by the operations of :func:`numpy.std` and
    :func:`numpy.mean` (sum over folds, divide, subtract, square, sum, divide, square
    root; mean over classes), whose sums over folds add the same values in the same order
    as numpy's on scikit-learn's 2-D table, so that every score is bit for bit
    scikit-learn's; the choice, ties included, follows scikit-learn's loop
    (``tests/test_fusion.py`` checks both against scikit-learn's own class).
    ``y_counts_per_fold`` is not changed.
    """
    n_splits, n_classes = y_counts_per_fold.shape
    props = np.empty((n_splits, n_splits, n_classes))
    props[...] = y_counts_per_fold / y_cnt
    diag = np.arange(n_splits)
    props[diag, diag] = (y_counts_per_fold + group_y_counts) / y_cnt
    # numpy.std(props, axis=1), as numpy computes it (numpy/_core/_methods.py, _var)
    mean = np.add.reduce(props, axis=1, keepdims=True)
    mean /= n_splits
    dev = props - mean
    np.square(dev, out=dev)
    sd = np.add.reduce(dev, axis=1)
    sd /= n_splits
    np.sqrt(sd, out=sd)
    evals = (np.add.reduce(sd, axis=1) / n_classes).tolist()
    samples = np.add.reduce(y_counts_per_fold, axis=1).tolist()
    best, min_eval, min_samples = -1, math.inf, math.inf
    for i, (fold_eval, n_rows) in enumerate(zip(evals, samples, strict=True)):
        # numpy.isclose(fold_eval, min_eval) with its default rtol=1e-5, atol=1e-8
        close = (
            abs(fold_eval - min_eval) <= 1e-8 + 1e-5 * abs(min_eval) and math.isfinite(min_eval)
        ) or fold_eval == min_eval
        if fold_eval < min_eval or (close and n_rows < min_samples):
            best, min_eval, min_samples = i, fold_eval, n_rows
    return best


@functools.cache
def _stratified_group_kfold() -> type:
    """:class:`~sklearn.model_selection.StratifiedGroupKFold` with :func:`_best_fold`.

    The same splitter (checks, warnings, shuffling, group order, folds), with its
    per-group search for the best fold (most of a split's time, in Python loops)
    done by :func:`_best_fold`, which picks the same fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    class VectorisedStratifiedGroupKFold(StratifiedGroupKFold):
        def _find_best_fold(
            self, y_counts_per_fold: np.ndarray, y_cnt: np.ndarray, group_y_counts: np.ndarray
        ) -> int:
            return _best_fold(y_counts_per_fold, y_cnt, group_y_counts)

    return VectorisedStratifiedGroupKFold


def _grouped_folds(
    y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int, *, splitter: type | None = None
) -> np.ndarray:
    """Fold of every row by ``splitter`` (default :func:`_stratified_group_kfold`), shuffled."""
    fold = np.full(len(y), -1, dtype=np.int64)
    cls = _stratified_group_kfold() if splitter is None else splitter
    cv = cls(n_splits=n_splits, shuffle=True, random_state=seed)
    for k, (_, test) in enumerate(cv.split(np.zeros(len(y)), y, groups)):
        fold[test] = k
    return fold


def make_estimator(kind: str, params: Mapping[str, Any], *, n_classes: int, seed: int) -> Any:
    """An unfitted estimator of ``kind`` with ``params`` (fixed + tuned hyper-parameters)."""
    _check_kind(kind)
    if kind == "xgboost":
        from xgboost import XGBClassifier

        return XGBClassifier(
            objective="multi:softprob",
            num_class=n_classes,
            random_state=seed,
            eval_metric="mlogloss",
            **dict(params),
        )
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    return make_pipeline(
        StandardScaler(), SVC(decision_function_shape="ovr", random_state=seed, **dict(params))
    )


def predict_scores(estimator: Any, X: Any) -> np.ndarray:
    """Scores of shape (n, k): probabilities (XGBoost) or one-vs-rest decision values (SVM)."""
    X = np.asarray(X, float)
    if hasattr(estimator, "predict_proba") and type(estimator).__name__ == "XGBClassifier":
        return np.asarray(estimator.predict_proba(X), float)
    return np.asarray(estimator.decision_function(X), float)


def _fit(
    kind: str, params: Mapping[str, Any], X: np.ndarray, y: np.ndarray, n_classes: int, seed: int
):
    missing = sorted(set(range(n_classes)) - set(np.unique(y).tolist()))
    if missing:
        raise EstimationError(
            f"a training set has no case of class code(s) {missing}; the {kind} model cannot be fitted"
        )
    est = make_estimator(kind, params, n_classes=n_classes, seed=seed)
    est.fit(X, y)
    return est


def _grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    keys = sorted(grid)
    if not keys:
        return [{}]
    return [
        dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))
    ]


@dataclasses.dataclass(frozen=True)
class TunedModel:
    """A model tuned by grouped K-fold over the grid and refitted on all its rows.

    Attributes
    ----------
    kind : str
    params : dict
        Fixed and selected hyper-parameters.
    selected : dict
        The grid point chosen.
    tuning : DataFrame
        One row per grid point: ``params`` (JSON), ``mean_macro_auc``,
        ``classes_skipped`` (the classes left out of an inner fold's macro
        AUC, ``"inner fold 1: class 2: no case of class 2 among the 14 rows"``;
        empty when none), ``selected``.
    estimator : object
        The fitted estimator.
    n_rows, n_groups : int
    """

    kind: str
    params: dict[str, Any]
    selected: dict[str, Any]
    tuning: pd.DataFrame
    estimator: Any
    n_rows: int
    n_groups: int


def tune_and_fit(
    X: Any,
    y: Any,
    groups: Any,
    *,
    kind: str,
    fixed: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    n_classes: int,
    inner_folds: int,
    seed: int,
) -> TunedModel:
    """Pick the grid point with the best mean inner macro AUC (grouped folds), refit on all rows.

    Ties between grid points go to the first in sorted-grid order (deterministic).
    An inner fold without a case of some class has a macro AUC over the other
    classes only (:func:`macro_auc_result`): the tuning table's
    ``classes_skipped`` names them and one
    :class:`~studyval.errors.StatisticalWarning` per such fold says so (the
    folds, hence the classes skipped, are the same for every grid point).
    """
    _check_kind(kind)
    X, y, groups = _check_xy(X, y, groups, n_classes)
    folds = grouped_folds(y, groups, n_splits=inner_folds, seed=seed)
    rows = []
    best, best_auc = None, -np.inf
    skipped: dict[int, MacroAUCResult] = {}
    for point in _grid_points(grid):
        params = {**dict(fixed), **point}
        aucs = []
        for k in range(inner_folds):
            tr, te = folds != k, folds == k
            est = _fit(kind, params, X[tr], y[tr], n_classes, seed)
            res = _macro_auc(y[te], predict_scores(est, X[te]), n_classes)
            if res.classes_skipped:
                skipped[k] = res
            aucs.append(res.estimate)
        mean = float(np.mean(aucs))
        rows.append({"params": json.dumps(point, sort_keys=True), "mean_macro_auc": mean})
        if mean > best_auc:
            best, best_auc = point, mean
    assert best is not None
    for k, res in sorted(skipped.items()):
        _warn_skipped(res, f"{kind} tuning, inner fold {k} of {inner_folds}: ")
    tuning = pd.DataFrame(rows)
    tuning["classes_skipped"] = "; ".join(
        f"inner fold {k}: {res.skipped_text()}" for k, res in sorted(skipped.items())
    )
    tuning["selected"] = tuning["params"] == json.dumps(best, sort_keys=True)
    params = {**dict(fixed), **best}
    est = _fit(kind, params, X, y, n_classes, seed)
    return TunedModel(
        kind=kind,
        params=params,
        selected=dict(best),
        tuning=tuning,
        estimator=est,
        n_rows=len(y),
        n_groups=len(np.unique(groups)),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class NestedCVResult(Result):
    """Out-of-fold scores of nested, patient-grouped cross-validation.

    Attributes
    ----------
    kind : str
    scores : numpy.ndarray, shape (n, k)
        Out-of-fold scores: row ``i`` scored by the model of the outer fold
        that held out its patient.
    fold : numpy.ndarray of int, shape (n,)
        Outer fold of every row.
    tuning : DataFrame
        Per outer fold and grid point: ``fold, params, mean_macro_auc,
        classes_skipped, selected`` (see :class:`TunedModel`).
    n_rows, n_groups, outer_folds, inner_folds : int
    """

    kind: str
    scores: np.ndarray = dataclasses.field(repr=False)
    fold: np.ndarray = dataclasses.field(repr=False)
    tuning: pd.DataFrame = dataclasses.field(repr=False)
    n_rows: int
    n_groups: int
    outer_folds: int
    inner_folds: int

    def to_frame(self) -> pd.DataFrame:
        """The tuning table (one row per outer fold and grid point)."""
        return self.tuning.copy()


def nested_cv(
    X: Any,
    y: Any,
    groups: Any,
    *,
    kind: str,
    fixed: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    n_classes: int,
    outer_folds: int,
    inner_folds: int,
    seed: int,
) -> NestedCVResult:
    """Nested grouped cross-validation; returns out-of-fold scores for every row.

    Parameters
    ----------
    X : array-like, shape (n, p)
        Features, finite.
    y : array-like of int, shape (n,)
        Class codes ``0..n_classes-1`` (the order of the plan's classes).
    groups : array-like, shape (n,)
        Patient id of every row; a patient's rows are always in the same fold
        (outer and inner).
    kind : {"xgboost", "svm"}
    fixed, grid : mapping
        Fixed hyper-parameters and the pre-specified tuning grid.
    n_classes, outer_folds, inner_folds, seed : int

    Returns
    -------
    NestedCVResult
    """
    _check_kind(kind)
    X, y, groups = _check_xy(X, y, groups, n_classes)
    fold = grouped_folds(y, groups, n_splits=outer_folds, seed=seed)
    scores = np.full((len(y), n_classes), np.nan)
    tabs = []
    for k in range(outer_folds):
        tr, te = fold != k, fold == k
        tuned = tune_and_fit(
            X[tr],
            y[tr],
            groups[tr],
            kind=kind,
            fixed=fixed,
            grid=grid,
            n_classes=n_classes,
            inner_folds=inner_folds,
            seed=seed + 1 + k,
        )
        scores[te] = predict_scores(tuned.estimator, X[te])
        tabs.append(
            tuned.tuning.assign(fold=k)[
                ["fold", "params", "mean_macro_auc", "classes_skipped", "selected"]
            ]
        )
    return NestedCVResult(
        kind=kind,
        scores=scores,
        fold=fold,
        tuning=pd.concat(tabs, ignore_index=True),
        n_rows=len(y),
        n_groups=len(np.unique(groups)),
        outer_folds=outer_folds,
        inner_folds=inner_folds,
    )


def model_sha256(model: TunedModel) -> str:
    """``sha256:<hex>`` of a fitted model's parameters and hyper-parameters.

    XGBoost: the booster's JSON dump (``save_raw("json")``); SVM: the scaler's
    means and scales, the support vectors, dual coefficients and intercepts (as
    float64 bytes); both followed by the hyper-parameters as sorted JSON.
    """
    h = hashlib.sha256()
    est = model.estimator
    if model.kind == "xgboost":
        h.update(bytes(est.get_booster().save_raw("json")))
    else:
        scaler, svc = est[0], est[-1]
        for a in (
            scaler.mean_,
            scaler.scale_,
            svc.support_vectors_,
            svc.dual_coef_,
            svc.intercept_,
        ):
            h.update(np.ascontiguousarray(a, dtype=np.float64).tobytes())
    h.update(json.dumps(model.params, sort_keys=True, default=str).encode())
    return "sha256:" + h.hexdigest()
