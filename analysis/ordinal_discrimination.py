r"""Discrimination of an ordinal outcome: cumulative AUCs and the ordinal c-indices.

A one-vs-rest AUC treats ordered classes (osteoporosis stage, Kellgren-Lawrence
grade) as nominal. Two views respect the order:

* :func:`cumulative_auc` -- for each cut point :math:`k`, the AUC of
  "class :math:`\ge k`" against "class :math:`< k`" with the cumulative
  probability :math:`P(Y \ge k) = \sum_{j \ge k} p_j` as the score (e.g.
  KL :math:`\ge 2` = radiographic osteoarthritis; T-score :math:`\le -2.5` =
  osteoporosis), with the DeLong interval of
  :func:`~studyval.analysis.discrimination.auc` or, for units clustered in
  patients, the clustered DeLong interval of
  :func:`~studyval.analysis.clustered.auc_clustered` (Obuchowski 1997).
* :func:`ordinal_c_index` -- with one ordinal score per case (the expected
  class :math:`\sum_j j\,p_j`, Van Calster et al. 2012), Harrell's c over every
  pair of cases with different classes (:math:`c_H`, Harrell 2015; as
  ``Hmisc::rcorr.cens``) and the ordinal c-statistic ORC of Van Calster, Van
  Belle, Vergouwe & Steyerberg (2012, Biom J 54:674-685,
  doi:10.1002/bimj.201200026), the unweighted mean of the pairwise AUCs of
  every pair of categories. :math:`c_H` weights each category pair by its
  number of case pairs, so it is dominated by the common categories; the ORC
  weights the category pairs equally (the probability that the score orders
  two cases drawn from two random different categories). Both are 0.5 for an
  uninformative score and 1 for a perfect one.

Oracles (R 4.2, pROC 1.18, Hmisc 5.1): ``pROC::ci.auc(roc(y >= k, s,
direction = "<"), method = "delong")``, ``Hmisc::rcorr.cens(s, y)["C Index"]``
and the ORC as the mean of ``pROC::auc`` over category pairs; the calls are in
``tests/test_ordinal_discrimination.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis._checks import check_alpha, check_scores
from studyval.analysis.clustered import auc_clustered
from studyval.analysis.discrimination import auc
from studyval.analysis.multiclass import _check_classes, _encode
from studyval.analysis.resampling import bootstrap_many, weighted_auc_statistic
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = [
    "CumulativeAUCResult",
    "OrdinalCIndexResult",
    "cumulative_auc",
    "expected_class",
    "ordinal_c_index",
]

#: Tolerance on the row sums of a probability matrix.
_ROW_SUM_TOL = 1e-6


def _check_probability_matrix(prob: Any, n: int, k: int) -> np.ndarray:
    """``prob`` as an (n, k) matrix of probabilities whose rows sum to 1."""
    arr = np.asarray(prob, dtype=np.float64)
    if arr.ndim != 2 or arr.shape != (n, k):
        raise StudyvalError(
            f"prob must have shape ({n}, {k}) (cases x classes, columns in class order), got "
            f"{arr.shape}"
        )
    cols = [check_scores(arr[:, j], n, name=f"prob[:, {j}]") for j in range(k)]
    arr = np.stack(cols, axis=1)
    if (arr < 0).any() or (arr > 1).any():
        raise StudyvalError("prob must lie in [0, 1]: cumulative AUCs need class probabilities")
    dev = np.abs(arr.sum(axis=1) - 1.0)
    if (dev > _ROW_SUM_TOL).any():
        i = int(np.argmax(dev))
        raise StudyvalError(
            f"the rows of prob must sum to 1 (class probabilities); row {i} sums to "
            f"{arr[i].sum():.6g}. Scores that are not probabilities (e.g. SVM decision values) "
            "have no cumulative probability"
        )
    return arr


def expected_class(prob: Any, *, classes: Sequence[Any]) -> np.ndarray:
    r"""Expected class position :math:`\sum_{j=0}^{K-1} j\,p_j` of each case.

    The ordinal score of Van Calster et al. (2012): higher means a more severe
    class. Positions are 0..K-1 in the order of ``classes`` (mildest first).

    Parameters
    ----------
    prob : array-like, shape (n, K)
        Class probabilities (rows summing to 1), columns in the order of ``classes``.
    classes : sequence
        Class labels, mildest first.

    Returns
    -------
    numpy.ndarray, shape (n,)

    Examples
    --------
    >>> expected_class([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]], classes=["a", "b", "c"]).tolist()
    [0.5, 2.0]

    """
    cls = _check_classes(classes)
    arr = np.asarray(prob, dtype=np.float64)
    n = arr.shape[0] if arr.ndim == 2 else -1
    p = _check_probability_matrix(arr, n, len(cls))
    return p @ np.arange(len(cls), dtype=np.float64)


# --------------------------------------------------------------------------- cumulative AUCs
@dataclasses.dataclass(frozen=True, eq=False)
class CumulativeAUCResult(Result):
    r"""AUCs of the cumulative splits "class :math:`\ge k`" vs "class :math:`< k`".

    The score of the split at class :math:`k` is :math:`P(Y \ge k) =
    \sum_{j \ge k} p_j`; the AUC is
    :math:`P(S_i > S_j) + \tfrac12 P(S_i = S_j)` over cases :math:`i` with
    class :math:`\ge k` and :math:`j` with class :math:`< k`, with the DeLong
    (1988, doi:10.2307/2531595) or, with clusters, the clustered DeLong
    (Obuchowski 1997, doi:10.2307/2533958) Wald interval.

    Attributes
    ----------
    classes : tuple
        Class labels, mildest first.
    ci_level : float
        ``1 - alpha``.
    clustered : bool
        True when the intervals are the clustered DeLong ones.
    table : pandas.DataFrame
        One row per cut: ``cut`` (the first class of the positive side),
        ``split`` (in words), ``estimate, se, ci_low, ci_high, n_positive,
        n_negative, n_clusters, method``. Also :meth:`to_frame`.

    """

    classes: tuple[Any, ...]
    ci_level: float
    clustered: bool
    table: pd.DataFrame = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The per-cut table (a copy)."""
        return self.table.copy()


def cumulative_auc(
    y_true: Any,
    prob: Any,
    *,
    classes: Sequence[Any],
    cuts: Sequence[Any] | None = None,
    clusters: Any = None,
    alpha: float = 0.05,
) -> CumulativeAUCResult:
    r"""Cumulative AUCs of an ordinal outcome from class probabilities.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Reference class of each case (labels in ``classes``).
    prob : array-like, shape (n, K)
        Class probabilities (rows summing to 1), columns in the order of ``classes``.
    classes : sequence
        Class labels in their order, mildest first.
    cuts : sequence of labels, optional
        The first class of the positive side of each split (``classes[1:]``
        by default: every cut).
    clusters : array-like, shape (n,), optional
        Patient id of every case (knees of one patient): clustered DeLong
        intervals. ``None``: cases are independent (DeLong).
    alpha : float, default 0.05
        Intervals at level ``1 - alpha``.

    Returns
    -------
    CumulativeAUCResult

    Raises
    ------
    StudyvalError
        Labels not in ``classes``; a cut that is the mildest class or not a
        class; ``prob`` of the wrong shape or not probabilities.
    EstimationError
        A split with no case on one side.

    Notes
    -----
    Without clusters each row agrees with ``pROC::ci.auc(pROC::roc(y >= k,
    s, levels = c(FALSE, TRUE), direction = "<"), method = "delong")`` where
    ``s`` is the row sum of the probabilities of classes ``>= k``.

    Examples
    --------
    >>> r = cumulative_auc([0, 1, 2, 2, 0, 1], [[.8, .1, .1], [.2, .6, .2], [.1, .2, .7],
    ...                    [.2, .3, .5], [.2, .3, .5], [.5, .3, .2]], classes=[0, 1, 2])
    >>> r.to_frame()[["cut", "estimate"]].round(3).to_dict("list")
    {'cut': [1, 2], 'estimate': [0.75, 0.938]}

    """
    alpha = check_alpha(alpha)
    cls = _check_classes(classes)
    y = _encode(y_true, cls, "y_true")
    p = _check_probability_matrix(prob, y.shape[0], len(cls))
    wanted = list(cls[1:]) if cuts is None else list(cuts)
    if not wanted:
        raise StudyvalError("cuts must name at least one class")
    rows = []
    for cut in wanted:
        if cut not in cls or cls.index(cut) == 0:
            raise StudyvalError(
                f"cut {cut!r} must be a class of {cls!r} other than the mildest "
                f"({cls[0]!r}): the split is class >= cut vs class < cut"
            )
        k = cls.index(cut)
        is_pos = y >= k
        score = p[:, k:].sum(axis=1)
        split = f">= {cut} vs < {cut}"
        if is_pos.all() or not is_pos.any():
            raise EstimationError(f"split {split}: no case on one side; its AUC is undefined")
        if clusters is None:
            r = auc(is_pos, score, positive=True, alpha=alpha)
            n_clusters = int(is_pos.shape[0])
            method = "DeLong"
        else:
            r = auc_clustered(is_pos, score, clusters, positive=True, alpha=alpha)
            n_clusters = int(r.n_clusters)
            method = "clustered DeLong (Obuchowski)"
        rows.append(
            {
                "cut": cut,
                "split": split,
                "estimate": r.estimate,
                "se": r.se,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "n_positive": int(r.n_positive),
                "n_negative": int(r.n_negative),
                "n_clusters": n_clusters,
                "method": method,
            }
        )
    return CumulativeAUCResult(
        classes=cls,
        ci_level=1.0 - alpha,
        clustered=clusters is not None,
        table=pd.DataFrame(rows),
    )


# --------------------------------------------------------------------------- ordinal c
@dataclasses.dataclass(frozen=True, eq=False)
class OrdinalCIndexResult(Result):
    r"""Harrell's ordinal c and Van Calster's ORC of one ordinal score.

    With :math:`A_{ab}` the AUC of the score between the cases of categories
    :math:`a < b` (ties one half) and :math:`n_a n_b` their number of pairs,

    .. math::

        c_H = \frac{\sum_{a<b} n_a n_b A_{ab}}{\sum_{a<b} n_a n_b}, \qquad
        \mathrm{ORC} = \binom{K}{2}^{-1} \sum_{a<b} A_{ab}.

    Attributes
    ----------
    c_index : float
        Harrell's c over every pair of cases with different classes
        (``Hmisc::rcorr.cens``'s ``C Index``).
    orc : float
        Van Calster et al.'s (2012) ordinal c-statistic.
    c_ci_low, c_ci_high, orc_ci_low, orc_ci_high : float
        Percentile bootstrap limits (NaN without a bootstrap).
    ci_level : float
        ``1 - alpha``.
    n : int
        Cases.
    n_pairs : int
        Pairs of cases with different classes.
    n_categories : int
        Categories present (all of ``classes``).
    n_resamples : int
        Bootstrap resamples (0: none).
    n_clusters : int
        Resampled units (patients with clusters, else cases).
    method : str
        Description.
    pairs : pandas.DataFrame
        ``low, high, auc, n_pairs`` per category pair (:meth:`pairs_frame`).

    """

    c_index: float
    orc: float
    c_ci_low: float
    c_ci_high: float
    orc_ci_low: float
    orc_ci_high: float
    ci_level: float
    n: int
    n_pairs: int
    n_categories: int
    n_resamples: int
    n_clusters: int
    method: str
    pairs: pd.DataFrame = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Two rows, ``measure`` (``c_harrell``, ``orc``) with estimate and limits, and counts."""
        base = {
            "ci_level": self.ci_level,
            "n": self.n,
            "n_pairs": self.n_pairs,
            "n_categories": self.n_categories,
            "n_resamples": self.n_resamples,
            "n_clusters": self.n_clusters,
            "method": self.method,
        }
        return pd.DataFrame(
            [
                {
                    "measure": "c_harrell",
                    "estimate": self.c_index,
                    "ci_low": self.c_ci_low,
                    "ci_high": self.c_ci_high,
                    **base,
                },
                {
                    "measure": "orc",
                    "estimate": self.orc,
                    "ci_low": self.orc_ci_low,
                    "ci_high": self.orc_ci_high,
                    **base,
                },
            ]
        )

    def pairs_frame(self) -> pd.DataFrame:
        """The pairwise AUCs behind both measures (a copy)."""
        return self.pairs.copy()


def ordinal_c_index(
    y_true: Any,
    score: Any,
    *,
    classes: Sequence[Any],
    clusters: Any = None,
    n_resamples: int = 0,
    seed: int | None = None,
    alpha: float = 0.05,
) -> OrdinalCIndexResult:
    r"""Harrell's c and the ORC of an ordinal score, with an optional (cluster) bootstrap.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Reference class of each case (labels in ``classes``).
    score : array-like of float, shape (n,)
        One ordinal score per case; a **higher score means a more severe
        class** (e.g. :func:`expected_class`).
    classes : sequence
        Class labels, mildest first; every class must occur.
    clusters : array-like, shape (n,), optional
        Patient id of every case: the bootstrap resamples patients.
    n_resamples : int, default 0
        Percentile bootstrap resamples (0: point estimates only).
    seed : int, optional
        Seed of the bootstrap (required with ``n_resamples > 0``).
    alpha : float, default 0.05
        Intervals at level ``1 - alpha``.

    Returns
    -------
    OrdinalCIndexResult

    Raises
    ------
    StudyvalError
        Labels not in ``classes``; a non-finite score; a bootstrap without seed.
    EstimationError
        A class of ``classes`` with no case (its pairwise AUCs are undefined).

    Notes
    -----
    ``c_index`` agrees with ``Hmisc::rcorr.cens(score, y)["C Index"]`` and
    ``orc`` with the mean over category pairs of ``pROC::auc(roc(y[y %in%
    c(a, b)] == b, score[...], direction = "<"))``.

    Examples
    --------
    >>> r = ordinal_c_index([0, 0, 1, 1, 2, 2], [0.1, 0.5, 0.4, 0.9, 0.8, 1.2], classes=[0, 1, 2])
    >>> round(r.c_index, 4), round(r.orc, 4)
    (0.8333, 0.8333)

    """
    alpha = check_alpha(alpha)
    cls = _check_classes(classes)
    y = _encode(y_true, cls, "y_true")
    s = check_scores(score, y.shape[0], name="score")
    k = len(cls)
    counts = np.bincount(y, minlength=k)
    absent = [cls[j] for j in range(k) if counts[j] == 0]
    if absent:
        raise EstimationError(
            f"class(es) {', '.join(map(repr, absent))} have no case: the pairwise AUCs that "
            "define the ordinal c-indices are undefined"
        )
    if not (isinstance(n_resamples, int | np.integer) and n_resamples >= 0):
        raise StudyvalError(f"n_resamples must be a non-negative integer, got {n_resamples!r}")
    pair_index = [(a, b) for a in range(k) for b in range(a + 1, k)]
    members = [(y == a) | (y == b) for a, b in pair_index]
    stats = [
        weighted_auc_statistic(y[m] == b, s[m])
        for m, (_, b) in zip(members, pair_index, strict=True)
    ]
    onehot = np.stack([y == j for j in range(k)], axis=1).astype(np.float64)

    def both(w: np.ndarray) -> np.ndarray:
        """(b, 2): Harrell's c and the ORC for each weight row (NaN if a pair is undefined)."""
        size = w @ onehot  # (b, k) weighted class sizes
        aucs = np.stack([st(w[:, m]) for st, m in zip(stats, members, strict=True)], axis=1)
        npairs = np.stack([size[:, a] * size[:, b] for a, b in pair_index], axis=1)
        c = (aucs * npairs).sum(axis=1) / npairs.sum(axis=1)
        return np.stack([c, aucs.mean(axis=1)], axis=1)

    ones = np.ones((1, y.shape[0]))
    est = both(ones)[0]
    aucs0 = [float(st(ones[:, m])[0]) for st, m in zip(stats, members, strict=True)]
    pairs = pd.DataFrame(
        {
            "low": [cls[a] for a, _ in pair_index],
            "high": [cls[b] for _, b in pair_index],
            "auc": aucs0,
            "n_pairs": [int(counts[a] * counts[b]) for a, b in pair_index],
        }
    )
    limits = [np.nan] * 4
    n_units = int(y.shape[0]) if clusters is None else int(pd.unique(np.asarray(clusters)).size)
    method = "Harrell's c and ORC (Van Calster 2012) of one ordinal score"
    if n_resamples:
        if seed is None:
            raise StudyvalError("seed is required with n_resamples > 0")
        b = bootstrap_many(
            both,
            names=("c_harrell", "orc"),
            n_rows=y.shape[0],
            clusters=clusters,
            n_resamples=int(n_resamples),
            seed=seed,
            alpha=alpha,
            method="percentile",
        )
        c_res, orc_res = b.results
        limits = [c_res.ci_low, c_res.ci_high, orc_res.ci_low, orc_res.ci_high]
        unit = "patient" if clusters is not None else "case"
        method += f"; {unit}-level percentile bootstrap ({int(n_resamples)} resamples)"
    return OrdinalCIndexResult(
        c_index=float(est[0]),
        orc=float(est[1]),
        c_ci_low=float(limits[0]),
        c_ci_high=float(limits[1]),
        orc_ci_low=float(limits[2]),
        orc_ci_high=float(limits[3]),
        ci_level=1.0 - alpha,
        n=int(y.shape[0]),
        n_pairs=int(pairs["n_pairs"].sum()),
        n_categories=k,
        n_resamples=int(n_resamples),
        n_clusters=n_units,
        method=method,
        pairs=pairs,
    )
