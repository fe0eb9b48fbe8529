r"""Discrimination: empirical ROC curves, AUC with DeLong intervals, AUC comparisons.

Every function here takes scores where a **higher score means more likely
positive**, and the label of the positive class as a required keyword
(``positive=``). The direction of the ROC curve is never chosen from the data:
a model that ranks the classes the wrong way round gets an AUC below 0.5, as it
should in a validation study.

Notation used in the docstrings: :math:`X_1, \dots, X_m` are the scores of the
:math:`m` positive cases, :math:`Y_1, \dots, Y_n` those of the :math:`n`
negative cases, and

.. math::

    \psi(x, y) = \begin{cases} 1 & x > y \\ 1/2 & x = y \\ 0 & x < y \end{cases}

so that ties between a positive and a negative case count one half. The
empirical AUC is the Mann-Whitney statistic
:math:`\hat\theta = \frac{1}{mn} \sum_i \sum_j \psi(X_i, Y_j)`, which equals the
trapezoidal area under the empirical ROC curve.

Variances and covariances follow DeLong, DeLong & Clarke-Pearson (1988),
Biometrics 44:837-845, doi:10.2307/2531595, computed with the
:math:`O(N \log N)` algorithm of Sun & Xu (2014), IEEE Signal Processing
Letters 21(11):1389-1393, doi:10.1109/LSP.2014.2337313: one sort per model,
ties handled exactly, and the AUC an exact ratio of integer counts (never above 1).
Results agree with R's pROC 1.18 (``roc(..., direction = "<")``, ``ci.auc``,
``var``, ``cov`` and ``roc.test`` with ``method = "delong"``) to rounding,
including pROC's truncation of the AUC interval to [0, 1]. Deliberate
differences:

* fewer than 2 cases in a class: pROC returns ``NA`` for the DeLong interval;
  we raise :class:`~studyval.errors.EstimationError` (the variance divides by
  ``m - 1`` and ``n - 1``);
* a zero DeLong variance (interval of zero width, or a degenerate comparison)
  gives the same numbers as pROC plus a
  :class:`~studyval.errors.StatisticalWarning`;
* the interval of a paired difference is truncated to [-1, 1] (pROC does not
  truncate it; this only matters when a limit passes ±1);
* the unpaired comparison also reports an interval (pROC reports none), from
  the same t distribution as pROC's p-value;
* ROC thresholds are the distinct scores themselves (rule "score >= threshold"),
  where pROC reports midpoints between them; the points are the same;
* the k-model test (:func:`compare_auc_k`) has no pROC counterpart.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from collections.abc import Mapping
from itertools import combinations
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import (
    check_alpha,
    check_binary_outcome,
    check_option,
    check_scores,
    wald_difference,
)
from studyval.analysis._checks import z_critical as _z_crit
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result, results_frame

__all__ = [
    "AUC_CI_METHODS",
    "AUCResult",
    "JointAUCTest",
    "PairedAUCComparison",
    "ROCCurve",
    "UnpairedAUCComparison",
    "auc",
    "compare_auc",
    "compare_auc_k",
    "compare_auc_unpaired",
    "delong_covariance",
    "roc_curve",
]

# compare_auc_k: directions of the contrast covariance whose eigenvalue is below
# this fraction of the largest one are treated as exactly degenerate (identical or
# pair-order-equivalent models). Genuine near-collinearity gives ratios far above it.
_RANK_RTOL = 1e-10
# An AUC difference smaller than this (in AUC units) along a degenerate direction
# is rounding error, not a difference.
_DIFF_ATOL = 1e-12


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return bool(np.array_equal(x, y, equal_nan=True))
    return bool(x == y)


class _ValueEq:
    """Field-wise equality for results holding arrays (``==`` on arrays is ambiguous).

    Such results are unhashable.
    """

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _same(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class ROCCurve(_ValueEq, Result):
    r"""Empirical ROC curve: one operating point per distinct score.

    The decision rule at threshold :math:`t` is "positive if score
    :math:`\ge t`". The curve runs from :math:`(0, 0)` (threshold
    :math:`+\infty`: nobody called positive) through one point per distinct
    score, in decreasing order of threshold, to :math:`(1, 1)` (threshold = the
    smallest score: everybody called positive):

    .. math::

        \mathrm{TPR}(t) = \frac{1}{m}\sum_{i=1}^m [X_i \ge t], \qquad
        \mathrm{FPR}(t) = \frac{1}{n}\sum_{j=1}^n [Y_j \ge t].

    Tied scores form one point, so the trapezoidal area under the curve equals
    the AUC with ties counted one half (Hanley & McNeil 1982, Radiology
    143:29-36, doi:10.1148/radiology.143.1.7063747). pROC reports the same
    points but places its thresholds midway between consecutive distinct scores.

    The arrays are read-only; ``==`` compares them element-wise.

    Attributes
    ----------
    thresholds : numpy.ndarray, shape (g + 1,)
        ``+inf`` followed by the ``g`` distinct scores in decreasing order.
    fpr : numpy.ndarray, shape (g + 1,)
        False-positive rate (1 - specificity), non-decreasing from 0 to 1.
    tpr : numpy.ndarray, shape (g + 1,)
        True-positive rate (sensitivity), non-decreasing from 0 to 1.
    n_positive, n_negative : int
        Numbers of positive and negative cases behind the curve.

    """

    thresholds: np.ndarray = dataclasses.field(repr=False)
    fpr: np.ndarray = dataclasses.field(repr=False)
    tpr: np.ndarray = dataclasses.field(repr=False)
    n_positive: int
    n_negative: int

    def points_frame(self) -> pd.DataFrame:
        """Operating points as a table.

        Returns
        -------
        pandas.DataFrame
            Columns ``threshold, fpr, tpr, sensitivity, specificity``, one row
            per point, in the order of :attr:`thresholds` (decreasing).

        """
        return pd.DataFrame(
            {
                "threshold": self.thresholds,
                "fpr": self.fpr,
                "tpr": self.tpr,
                "sensitivity": self.tpr,
                "specificity": 1.0 - self.fpr,
            }
        )


@dataclasses.dataclass(frozen=True)
class AUCResult(Result):
    r"""Empirical AUC with a DeLong confidence interval.

    With the structural components (placements) of DeLong et al. (1988)

    .. math::

        V_{10}(X_i) = \frac{1}{n}\sum_{j} \psi(X_i, Y_j), \qquad
        V_{01}(Y_j) = \frac{1}{m}\sum_{i} \psi(X_i, Y_j),

    the AUC is :math:`\hat\theta = \overline{V_{10}} = \overline{V_{01}}` and its
    variance estimate is

    .. math::

        \widehat{\mathrm{Var}}(\hat\theta) = \frac{S_{10}}{m} + \frac{S_{01}}{n},
        \quad S_{10} = \frac{\sum_i (V_{10}(X_i) - \hat\theta)^2}{m - 1},
        \quad S_{01} = \frac{\sum_j (V_{01}(Y_j) - \hat\theta)^2}{n - 1}.

    The interval is the Wald interval :math:`\hat\theta \pm z_{1-\alpha/2}\,
    \mathrm{se}`, truncated to :math:`[0, 1]` exactly as pROC's
    ``ci.auc(method = "delong")`` does. DeLong, DeLong & Clarke-Pearson (1988),
    doi:10.2307/2531595; algorithm: Sun & Xu (2014), doi:10.1109/LSP.2014.2337313.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        Empirical AUC, :math:`P(X > Y) + \tfrac12 P(X = Y)`; never outside [0, 1].
    se : float
        DeLong standard error. Zero when every positive beats the same share of
        negatives and every negative is beaten by the same share of positives
        (perfect separation, or one constant score); a StatisticalWarning says so.
    ci_low, ci_high : float
        Confidence limits: the Wald interval truncated to [0, 1], or (with
        ``auc(..., ci_method="logit")``) the back-transformed logit interval.
    ci_level : float
        Confidence level, ``1 - alpha``.
    n_positive, n_negative : int
        Numbers of positive and negative cases.
    roc : ROCCurve
        The empirical ROC curve (not part of :meth:`to_frame`).
    method : str
        ``"DeLong"`` (Wald interval) or ``"DeLong (logit scale)"``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    n_positive: int
    n_negative: int
    roc: ROCCurve = dataclasses.field(repr=False)
    method: str = "DeLong"


@dataclasses.dataclass(frozen=True)
class PairedAUCComparison(Result):
    r"""DeLong test of two correlated AUCs (two models scored on the same cases).

    With :math:`S = S_{10}/m + S_{01}/n` the :math:`2 \times 2` DeLong covariance
    matrix of :math:`(\hat\theta_a, \hat\theta_b)` and :math:`L = (1, -1)`,

    .. math::

        \hat\Delta = \hat\theta_a - \hat\theta_b, \qquad
        \mathrm{se} = \sqrt{L S L^\top}, \qquad
        z = \hat\Delta / \mathrm{se}, \qquad p = 2\,\Phi(-|z|),

    and the interval is :math:`\hat\Delta \pm z_{1-\alpha/2}\,\mathrm{se}`,
    truncated to :math:`[-1, 1]`. DeLong, DeLong & Clarke-Pearson (1988),
    doi:10.2307/2531595. Agrees with pROC's
    ``roc.test(roc_a, roc_b, paired = TRUE, method = "delong")`` (statistic,
    p-value, and ``conf.int``; pROC does not truncate the interval, which only
    matters when a limit passes ±1).

    When ``se == 0`` (the two models order every positive-negative pair the same
    way, e.g. identical or monotonically related scores) the test is degenerate:
    ``z = 0`` and ``p = 1`` if the AUCs are equal (as pROC does), and
    ``z = ±inf``, ``p = 0`` otherwise; a StatisticalWarning is issued either way.

    ``z, p_value = result`` unpacks.

    Attributes
    ----------
    name_a, name_b : str
        Model names.
    auc_a, auc_b : float
        Empirical AUCs.
    difference : float
        ``auc_a - auc_b``.
    se : float
        DeLong standard error of the difference.
    ci_low, ci_high : float
        Confidence limits of the difference.
    ci_level : float
        ``1 - alpha``.
    z : float
        ``difference / se``.
    p_value : float
        Two-sided p-value from the standard normal distribution.
    correlation : float
        DeLong correlation of the two AUC estimates,
        :math:`S_{ab} / \sqrt{S_{aa} S_{bb}}`; NaN if either variance is zero.
    n_positive, n_negative : int
        Numbers of positive and negative cases (shared by both models).
    method : str
        ``"DeLong paired"``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("z", "p_value")

    name_a: str
    name_b: str
    auc_a: float
    auc_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    z: float
    p_value: float
    correlation: float
    n_positive: int
    n_negative: int
    method: str = "DeLong paired"


@dataclasses.dataclass(frozen=True)
class UnpairedAUCComparison(Result):
    r"""Comparison of two AUCs from independent samples (e.g. internal vs external cohort).

    With :math:`V_a, V_b` the DeLong variances of the two AUCs (see
    :class:`AUCResult`) and :math:`N_a, N_b` the cohort sizes (cases of both
    classes),

    .. math::

        D = \frac{\hat\theta_a - \hat\theta_b}{\sqrt{V_a + V_b}}, \qquad
        \nu = \frac{(V_a + V_b)^2}{V_a^2/(N_a - 1) + V_b^2/(N_b - 1)},
        \qquad p = 2\,F_{t_\nu}(-|D|).

    This is the statistic of Hanley & McNeil (1983), Radiology 148:839-843,
    doi:10.1148/radiology.148.3.6878708, with DeLong variances
    (doi:10.2307/2531595), referred to a t distribution with the
    Welch-Satterthwaite-type degrees of freedom :math:`\nu` that pROC 1.18 uses
    in ``roc.test(paired = FALSE, method = "delong")``. We follow pROC so that
    the numbers agree; as :math:`\nu` grows the test becomes the usual normal
    z-test. The interval :math:`\hat\Delta \pm t_{\nu, 1-\alpha/2}\sqrt{V_a + V_b}`
    (truncated to :math:`[-1, 1]`) uses the same reference distribution, so it
    excludes 0 exactly when :math:`p < \alpha`; pROC reports no interval here.

    ``statistic, p_value = result`` unpacks.

    Attributes
    ----------
    name_a, name_b : str
        Cohort (or model) names.
    auc_a, auc_b : float
        Empirical AUCs.
    difference : float
        ``auc_a - auc_b``.
    se : float
        :math:`\sqrt{V_a + V_b}`.
    ci_low, ci_high : float
        Confidence limits of the difference.
    ci_level : float
        ``1 - alpha``.
    statistic : float
        :math:`D` (pROC's ``D``).
    df : float
        :math:`\nu`.
    p_value : float
        Two-sided p-value.
    n_positive_a, n_negative_a, n_positive_b, n_negative_b : int
        Class counts of the two samples.
    method : str
        ``"DeLong unpaired"``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("statistic", "p_value")

    name_a: str
    name_b: str
    auc_a: float
    auc_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    statistic: float
    df: float
    p_value: float
    n_positive_a: int
    n_negative_a: int
    n_positive_b: int
    n_negative_b: int
    method: str = "DeLong unpaired"


@dataclasses.dataclass(frozen=True, eq=False)
class JointAUCTest(_ValueEq, Result):
    r"""DeLong chi-square test that :math:`k \ge 2` correlated AUCs are all equal.

    With :math:`\hat\theta` the vector of the :math:`k` AUCs, :math:`S` their
    DeLong covariance matrix (:func:`delong_covariance`) and :math:`L` the
    :math:`(k-1) \times k` matrix of consecutive differences
    (:math:`L_{r,r} = 1, L_{r,r+1} = -1`), DeLong et al. (1988, eq. 5),
    doi:10.2307/2531595:

    .. math::

        \chi^2 = (L\hat\theta)^\top (L S L^\top)^{-1} (L\hat\theta)
        \;\sim\; \chi^2_{\mathrm{rank}(L S L^\top)} \text{ under } H_0.

    The statistic does not depend on the choice of contrasts. For ``k = 2`` it
    equals :math:`z^2` of :func:`compare_auc`.

    If :math:`L S L^\top` is singular (e.g. two identical score columns), the
    inverse is taken on its non-degenerate subspace and ``df`` is its rank; a
    difference along a degenerate direction makes the statistic infinite
    (``p = 0``). Both cases issue a StatisticalWarning. Eigenvalues below
    ``1e-10 * max_eigenvalue`` count as zero; a difference below ``1e-12``
    along a degenerate direction counts as zero.

    ``statistic, p_value = result`` unpacks.

    Attributes
    ----------
    names : tuple of str
        Model names, in the order of the input mapping.
    aucs : tuple of float
        Empirical AUCs, same order.
    statistic : float
        :math:`\chi^2`.
    df : int
        Degrees of freedom, ``k - 1`` unless degenerate.
    p_value : float
        Upper-tail chi-square p-value.
    ci_level : float
        ``1 - alpha``, used for the intervals of :meth:`pairwise_frame`.
    n_positive, n_negative : int
        Numbers of positive and negative cases.
    covariance : numpy.ndarray, shape (k, k)
        DeLong covariance matrix of the AUCs (not in :meth:`to_frame`).
    pairwise : tuple of PairedAUCComparison
        All :math:`k(k-1)/2` paired comparisons, in the order of
        :func:`itertools.combinations` (not in :meth:`to_frame`).
    method : str
        ``"DeLong joint chi-square"``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("statistic", "p_value")

    names: tuple[str, ...]
    aucs: tuple[float, ...]
    statistic: float
    df: int
    p_value: float
    ci_level: float
    n_positive: int
    n_negative: int
    covariance: np.ndarray = dataclasses.field(repr=False)
    pairwise: tuple[PairedAUCComparison, ...] = dataclasses.field(repr=False)
    method: str = "DeLong joint chi-square"

    def pairwise_frame(self) -> pd.DataFrame:
        r"""All pairwise paired DeLong comparisons as a table.

        One row per pair (columns of :class:`PairedAUCComparison`) plus
        ``p_holm``. ``p_value`` is **not** adjusted for multiplicity; ``p_holm``
        is Holm's (1979, Scand J Stat 6:65-70) step-down adjustment over the
        :math:`K = k(k-1)/2` pairwise tests,

        .. math::

            p^{\mathrm{Holm}}_{(i)} = \max_{j \le i}
            \min\{1, (K - j + 1)\, p_{(j)}\},

        which controls the family-wise error rate of the pairwise tests. The
        intervals are not adjusted.

        Returns
        -------
        pandas.DataFrame

        """
        frame = results_frame(list(self.pairwise))
        frame["p_holm"] = _holm(frame["p_value"].to_numpy())
        return frame


def _holm(p: np.ndarray) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order."""
    p = np.asarray(p, dtype=np.float64)
    k = p.size
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (k - np.arange(k)) * p[order])
    adjusted = np.empty(k)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted


# ----------------------------------------------------------------- core algorithm


@dataclasses.dataclass(frozen=True, eq=False)
class _Groups:
    """Class counts per distinct score of one model (``g`` distinct scores, ascending).

    ``pos_cum[j]`` is the number of positives scoring below ``values[j]`` and
    ``pos_cum[j + 1]`` the number scoring at most ``values[j]`` (likewise
    ``neg_cum``), so both have ``g + 1`` entries from 0 to m (resp. n).
    """

    values: np.ndarray  # (g,) distinct scores, ascending
    pos_cum: np.ndarray  # (g + 1,) int64
    neg_cum: np.ndarray  # (g + 1,) int64

    @property
    def n_positive(self) -> int:
        return int(self.pos_cum[-1])

    @property
    def n_negative(self) -> int:
        return int(self.neg_cum[-1])


def _groups(is_pos: np.ndarray, score: np.ndarray) -> _Groups:
    """Sort once and count the classes within each run of tied scores.

    The positives and the negatives are sorted separately, in place (a value
    sort, much cheaper than an argsort), then merged by a stable argsort of
    their concatenation ``[positives, negatives]``, which timsort does in linear
    time because the input is two sorted runs. Stability gives the counts
    without a cumulative sum: in merged position ``p``, ``idx[p]`` is the rank
    of that case within its own class, and inside a run of ties the positives
    come first. So at the last position ``L`` of a run, if that case is a
    negative, ``idx[L] - m + 1`` negatives and ``L + 1 - (idx[L] - m + 1)``
    positives score at most the run's value; if it is a positive, the run has
    no negatives and ``idx[L] + 1`` positives score at most its value.
    """
    n_all = score.size
    m = int(np.count_nonzero(is_pos))
    merged = np.empty(n_all)
    # np.compress is several times faster than boolean indexing
    np.compress(is_pos, score, out=merged[:m])
    np.compress(~is_pos, score, out=merged[m:])
    merged[:m].sort()
    merged[m:].sort()
    idx = np.argsort(merged, kind="stable")
    s = merged[idx]
    is_last = np.empty(n_all, dtype=bool)  # last case of each run of ties
    np.not_equal(s[1:], s[:-1], out=is_last[:-1])
    is_last[-1] = True
    g = int(np.count_nonzero(is_last))
    pos_cum = np.zeros(g + 1, dtype=np.int64)
    neg_cum = np.zeros(g + 1, dtype=np.int64)
    pos_upto, total_upto = pos_cum[1:], neg_cum[1:]
    # (Written with out= buffers: fresh large temporaries cost page faults.)
    if g == n_all:  # no ties: every case is its own run
        idx_last, values = idx, s
        total_upto.fill(1)
        np.cumsum(total_upto, out=total_upto)  # cases at or below each run: 1..N
    else:
        last = np.flatnonzero(is_last)
        idx_last, values = idx[last], s[last]
        np.add(last, 1, out=total_upto)
    neg_last = idx_last >= m
    np.add(idx_last, 1, out=pos_upto)  # positives at or below, if the last case is positive
    # else (last + 1) - (negatives at or below) = total - (idx + 1) + m
    np.subtract(total_upto, pos_upto, out=pos_upto, where=neg_last)
    np.add(pos_upto, m, out=pos_upto, where=neg_last)
    np.subtract(total_upto, pos_upto, out=total_upto)  # now negatives at or below
    return _Groups(values, pos_cum, neg_cum)


@dataclasses.dataclass(frozen=True, eq=False)
class _Placements:
    r"""DeLong structural components (placements) of ``k`` models on the same cases.

    For model :math:`r`, positive case :math:`i` and negative case :math:`j`,

    .. math::

        V^{r}_{10}(X_i) = \frac{1}{n}\sum_j \psi(X^r_i, Y^r_j)
                        = \frac{c^{r}_{10,i}}{2n}, \qquad
        V^{r}_{01}(Y_j) = \frac{1}{m}\sum_i \psi(X^r_i, Y^r_j)
                        = \frac{c^{r}_{01,j}}{2m},

    with integer numerators :math:`c_{10,i} = 2\#\{j: Y_j < X_i\} +
    \#\{j: Y_j = X_i\}` and :math:`c_{01,j} = 2\#\{i: X_i > Y_j\} +
    \#\{i: X_i = Y_j\}` (Sun & Xu 2014 write them with midranks:
    :math:`V_{10}(X_i) = (T_Z(X_i) - T_X(X_i))/n`). Keeping the integers makes
    the AUC exact and lets the covariance detect exact zeros.

    These are the building blocks of the DeLong covariance and of its clustered
    generalisation (Obuchowski 1997, Biometrics 53:567-578,
    doi:10.2307/2533958), which sums :math:`V_{10}` and :math:`V_{01}` within
    clusters; ``positive_index`` / ``negative_index`` map each column back to
    its case.

    Attributes
    ----------
    c10 : numpy.ndarray of int64, shape (k, m)
        Numerators of :math:`V_{10}`, positives in input order.
    c01 : numpy.ndarray of int64, shape (k, n)
        Numerators of :math:`V_{01}`, negatives in input order.
    positive_index, negative_index : numpy.ndarray of intp, shapes (m,), (n,)
        Positions of the positive / negative cases in the input.

    """

    c10: np.ndarray
    c01: np.ndarray
    positive_index: np.ndarray
    negative_index: np.ndarray

    @property
    def n_positive(self) -> int:
        """Number of positive cases, m."""
        return int(self.c10.shape[1])

    @property
    def n_negative(self) -> int:
        """Number of negative cases, n."""
        return int(self.c01.shape[1])

    @property
    def v10(self) -> np.ndarray:
        """:math:`V_{10}`, shape (k, m): share of negatives each positive outscores."""
        return self.c10 / (2.0 * self.n_negative)

    @property
    def v01(self) -> np.ndarray:
        """:math:`V_{01}`, shape (k, n): share of positives that outscore each negative."""
        return self.c01 / (2.0 * self.n_positive)

    @property
    def theta(self) -> np.ndarray:
        """AUCs, shape (k,), computed exactly from the integer numerators."""
        return self.c10.sum(axis=1) / (2.0 * self.n_positive * self.n_negative)

    @functools.cached_property
    def _centered(self) -> tuple[np.ndarray, np.ndarray]:
        total = self.c10.sum(axis=1, keepdims=True)
        a = (self.n_positive * self.c10 - total).astype(np.float64)
        b = (self.n_negative * self.c01 - total).astype(np.float64)
        a.setflags(write=False)
        b.setflags(write=False)
        return a, b

    def centered(self, contrast: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        r"""Centred placements scaled to integers, optionally contrasted.

        Returns :math:`A = 2mn\,(V_{10} - \hat\theta)` and
        :math:`B = 2mn\,(V_{01} - \hat\theta)`, i.e. ``A = m*c10 - sum(c10)``
        and ``B = n*c01 - sum(c01)`` (exact integers below :math:`2^{53}`, i.e.
        for :math:`N` up to about :math:`1.3 \times 10^8`; returned as float64),
        multiplied on the left by ``contrast`` (shape (q, k)) if given. A row
        of an integer contrast is exactly zero when the contrasted placements
        are constant, which is how exact zero variances are detected.
        """
        a, b = self._centered
        if contrast is not None:
            a = contrast @ a
            b = contrast @ b
        return a, b

    def covariance(self, contrast: np.ndarray | None = None) -> np.ndarray:
        r"""DeLong covariance :math:`S = S_{10}/m + S_{01}/n` (of :math:`L\hat\theta` if given)."""
        m, n = self.n_positive, self.n_negative
        a, b = self.centered(contrast)
        s = (a @ a.T) / (m * (m - 1.0)) + (b @ b.T) / (n * (n - 1.0))
        s = s / (2.0 * m * n) ** 2
        return (s + s.T) / 2.0

    def pair_covariance(self, i: int, j: int) -> tuple[float, float, float, float]:
        r"""``(S_ii, S_jj, S_ij, Var(theta_i - theta_j))`` for models ``i`` and ``j``.

        The variance of the difference is computed from the exact integer
        differences of the centred placements, so it is exactly zero when the
        placement differences are constant (e.g. identical scores).
        """
        m, n = self.n_positive, self.n_negative
        a, b = self._centered
        wa, wb = 1.0 / (m * (m - 1.0)), 1.0 / (n * (n - 1.0))
        scale = 1.0 / (2.0 * m * n) ** 2

        def dot(u: np.ndarray, v: np.ndarray) -> float:
            return float(np.einsum("i,i->", u, v))

        def cov(ua, ub, va, vb) -> float:
            return (dot(ua, va) * wa + dot(ub, vb) * wb) * scale

        da, db = a[i] - a[j], b[i] - b[j]
        return (
            cov(a[i], b[i], a[i], b[i]),
            cov(a[j], b[j], a[j], b[j]),
            cov(a[i], b[i], a[j], b[j]),
            cov(da, db, da, db),
        )


def _placements(is_pos: np.ndarray, scores: np.ndarray) -> _Placements:
    """Placements of ``k`` models on the same cases, one argsort per model.

    Parameters
    ----------
    is_pos : numpy.ndarray of bool, shape (N,)
        True for the positive cases (from ``check_binary_outcome``).
    scores : numpy.ndarray of float64, shape (k, N)
        One row per model, finite, higher = more likely positive.

    Returns
    -------
    _Placements

    """
    scores = np.ascontiguousarray(scores, dtype=np.float64)
    k, n_all = scores.shape
    m = int(np.count_nonzero(is_pos))
    order = np.argsort(scores, axis=1)
    s = np.take_along_axis(scores, order, axis=1)
    lab = is_pos[order].ravel()
    new = np.empty((k, n_all), dtype=bool)
    new[:, 0] = True  # a group never spans two models
    np.not_equal(s[:, 1:], s[:, :-1], out=new[:, 1:])
    new = new.ravel()
    starts = np.flatnonzero(new)
    last = np.empty_like(starts)
    last[:-1] = starts[1:] - 1
    last[-1] = new.size - 1
    row = starts // n_all
    pos_upto_all = np.cumsum(lab, dtype=np.int64)[last]
    pos_in = np.diff(pos_upto_all, prepend=0)
    pos_upto = pos_upto_all - row * m
    neg_upto = (last + 1 - row * n_all) - pos_upto
    neg_in = (last + 1 - starts) - pos_in
    c10_group = 2 * neg_upto - neg_in  # 2 * (negatives below) + negatives tied
    c01_group = 2 * (m - pos_upto) + pos_in  # 2 * (positives above) + positives tied
    gid = np.cumsum(new) - 1
    sorted_c = np.where(lab, c10_group[gid], c01_group[gid]).reshape(k, n_all)
    c = np.empty((k, n_all), dtype=np.int64)
    np.put_along_axis(c, order, sorted_c, axis=1)
    return _Placements(
        c10=np.compress(is_pos, c, axis=1),
        c01=np.compress(~is_pos, c, axis=1),
        positive_index=np.flatnonzero(is_pos),
        negative_index=np.flatnonzero(~is_pos),
    )


def _require_two_per_class(n_pos: int, n_neg: int, what: str = "y_true") -> None:
    if n_pos < 2 or n_neg < 2:
        raise EstimationError(
            f"a DeLong standard error needs at least 2 positive and 2 negative cases; "
            f"{what} has {n_pos} positive and {n_neg} negative. The placement variance "
            f"S10 (or S01) divides by (cases - 1) and is undefined with one case "
            f"(pROC returns NA here)"
        )


def _prepare(y_true: Any, y_score: Any, positive: Any, *, score_name: str = "y_score"):
    is_pos = check_binary_outcome(y_true, positive)
    score = check_scores(y_score, is_pos.size, name=score_name)
    return is_pos, score


# -------------------------------------------------------------------- public API


def _roc_from_groups(g: _Groups) -> ROCCurve:
    m, n = g.n_positive, g.n_negative
    # Positive if score >= threshold. Walking the distinct scores from the top,
    # the cases called positive at distinct score u are those not below u:
    # m - pos_cum[j] for u = values[j]; reversing pos_cum gives the whole curve,
    # with the point (0, 0) for threshold +inf first.
    tpr = np.subtract(m, g.pos_cum[::-1], dtype=np.float64)
    tpr /= m
    fpr = np.subtract(n, g.neg_cum[::-1], dtype=np.float64)
    fpr /= n
    return ROCCurve(
        thresholds=_readonly(np.concatenate(([np.inf], g.values[::-1]))),
        fpr=_readonly(fpr),
        tpr=_readonly(tpr),
        n_positive=m,
        n_negative=n,
    )


def roc_curve(y_true: Any, y_score: Any, *, positive: Any) -> ROCCurve:
    r"""Empirical ROC curve, one point per distinct score.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Observed class labels (two classes, no missing values).
    y_score : array-like of float, shape (N,)
        Model scores, finite; a **higher score means more likely positive**.
    positive : label
        Label of the positive class. Required; never inferred.

    Returns
    -------
    ROCCurve
        Points :math:`(\mathrm{FPR}(t), \mathrm{TPR}(t))` for :math:`t = +\infty`
        and every distinct score, decision rule "positive if score
        :math:`\ge t`"; see :class:`ROCCurve` for the formula.

    Raises
    ------
    studyval.errors.EstimationError
        Only one class present, or ``positive`` absent.
    studyval.errors.StudyvalError
        Lengths differ, or a score is NaN or infinite.

    """
    is_pos, score = _prepare(y_true, y_score, positive)
    return _roc_from_groups(_groups(is_pos, score))


#: Interval methods of :func:`auc`: Wald on the AUC scale (pROC's, default) or on the logit scale.
AUC_CI_METHODS: tuple[str, ...] = ("wald", "logit")
#: ``AUCResult.method`` of each interval method.
_AUC_METHOD_LABEL = {"wald": "DeLong", "logit": "DeLong (logit scale)"}


def auc(
    y_true: Any, y_score: Any, *, positive: Any, alpha: float = 0.05, ci_method: str = "wald"
) -> AUCResult:
    r"""AUC with a DeLong confidence interval.

    .. math::

        \hat\theta = \frac{1}{mn}\sum_{i=1}^m\sum_{j=1}^n \psi(X_i, Y_j), \qquad
        \hat\theta \pm z_{1-\alpha/2}\sqrt{S_{10}/m + S_{01}/n}

    (see :class:`AUCResult` for :math:`S_{10}, S_{01}`). DeLong, DeLong &
    Clarke-Pearson (1988), doi:10.2307/2531595, computed in
    :math:`O(N \log N)` from one sort of the scores (Sun & Xu 2014,
    doi:10.1109/LSP.2014.2337313): the placement of a case depends only on the
    class counts below and within its run of tied scores, which are the
    midrank differences of Sun & Xu, so no midrank is formed explicitly. Ties
    count one half, exactly; the AUC is an exact ratio of integer counts.

    Agrees with ``pROC::ci.auc(roc(y, s, levels = c(neg, pos), direction = "<"),
    method = "delong")``, including its truncation of the interval to [0, 1].

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Observed class labels (two classes, no missing values).
    y_score : array-like of float, shape (N,)
        Model scores, finite; a **higher score means more likely positive**.
        The direction is never flipped to suit the data.
    positive : label
        Label of the positive class. Required.
    alpha : float, default 0.05
        The interval has level ``1 - alpha``.
    ci_method : {"wald", "logit"}, default "wald"
        ``"wald"``: :math:`\hat\theta \pm z\,\mathrm{se}`, truncated to [0, 1]
        (pROC's ``ci.auc``). ``"logit"``: the Wald interval of
        :math:`\operatorname{logit}\hat\theta` with the delta-method standard
        error, back-transformed,

        .. math::

            \operatorname{expit}\Bigl(\operatorname{logit}\hat\theta \pm
            z_{1-\alpha/2}\,\frac{\mathrm{se}}{\hat\theta(1 - \hat\theta)}\Bigr),

        which stays inside (0, 1) without truncation and is asymmetric near 1,
        where the Wald interval undercovers (Pepe 2003, *The Statistical
        Evaluation of Medical Tests*, §5.2.4; Qin & Hotilovac 2008,
        doi:10.1177/0962280207087173). The AUC and ``se`` are the same for
        both; ``method`` says which interval. With ``se == 0`` (then also
        whenever the AUC is 0 or 1) both give the zero-width interval
        ``[estimate, estimate]`` with the warning below.

    Returns
    -------
    AUCResult
        With the ROC curve in ``.roc``.

    Raises
    ------
    studyval.errors.EstimationError
        Only one class present, ``positive`` absent, or fewer than 2 cases in a
        class (the DeLong variance divides by ``m - 1`` and ``n - 1``; pROC
        returns NA; we raise rather than return a NaN interval).
    studyval.errors.StudyvalError
        Lengths differ, a score is NaN or infinite, or ``alpha`` not in (0, 1).

    Warns
    -----
    StatisticalWarning
        The DeLong standard error is exactly zero (e.g. perfect separation, or
        a constant score), so the interval has zero width.

    Examples
    --------
    >>> r = auc([0, 0, 1, 1, 0, 1], [0.1, 0.4, 0.35, 0.8, 0.2, 0.9], positive=1)
    >>> round(r.estimate, 4)
    0.8889

    """
    alpha = check_alpha(alpha)
    check_option(ci_method, AUC_CI_METHODS, "ci_method")
    is_pos, score = _prepare(y_true, y_score, positive)
    g = _groups(is_pos, score)
    m, n = g.n_positive, g.n_negative
    _require_two_per_class(m, n)
    # Per run of tied scores j, the integer numerators of the placements (see
    # _Placements): c10 = 2 (negatives below) + (negatives tied)
    #                    = neg_cum[j] + neg_cum[j + 1],
    #               c01 = 2 (positives above) + (positives tied)
    #                    = 2m - pos_cum[j] - pos_cum[j + 1].
    # They are integers below 2**53, so float64 holds them and their sums exactly.
    below, upto = slice(None, -1), slice(1, None)
    # (Two work arrays, reused: fresh large temporaries cost page faults.)
    w = np.subtract(g.pos_cum[upto], g.pos_cum[below], dtype=np.float64)  # positives tied
    a = np.add(g.neg_cum[below], g.neg_cum[upto], dtype=np.float64)  # c10
    # Reductions use einsum, not np.dot: a BLAS call wakes BLAS worker threads,
    # which then compete with the rest of this function for the CPUs.
    total = float(np.einsum("i,i->", w, a))  # sum c10 = sum c01 = 2 m n theta, exact
    estimate = total / (2.0 * m * n)
    a *= m
    a -= total  # m c10 - total = 2mn (V10 - theta)
    a *= a
    ss10 = float(np.einsum("i,i->", w, a))
    np.subtract(g.neg_cum[upto], g.neg_cum[below], out=w, dtype=np.float64)  # negatives tied
    np.add(g.pos_cum[below], g.pos_cum[upto], out=a, dtype=np.float64)  # 2m - c01
    a *= -n
    a += 2.0 * m * n - total  # n c01 - total = 2mn (V01 - theta)
    a *= a
    ss01 = float(np.einsum("i,i->", w, a))
    var = (ss10 / (m * (m - 1.0)) + ss01 / (n * (n - 1.0))) / (2.0 * m * n) ** 2
    se = math.sqrt(var)
    if se == 0.0:
        warnings.warn(
            f"the DeLong standard error is zero (AUC = {estimate:.6g}): every positive "
            "outscores the same share of negatives and vice versa, so the interval "
            "has zero width and understates the uncertainty",
            StatisticalWarning,
            stacklevel=2,
        )
    half = _z_crit(alpha) * se
    if ci_method == "logit" and se > 0.0:  # se > 0 implies 0 < estimate < 1
        centre = math.log(estimate / (1.0 - estimate))
        half_logit = half / (estimate * (1.0 - estimate))
        ci_low = 1.0 / (1.0 + math.exp(-(centre - half_logit)))
        ci_high = 1.0 / (1.0 + math.exp(-(centre + half_logit)))
    else:
        ci_low = min(1.0, max(0.0, estimate - half))
        ci_high = min(1.0, max(0.0, estimate + half))
    return AUCResult(
        estimate=estimate,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=1.0 - alpha,
        n_positive=m,
        n_negative=n,
        roc=_roc_from_groups(g),
        method=_AUC_METHOD_LABEL[ci_method],
    )


def _check_score_matrix(scores: Any, n: int) -> np.ndarray:
    """Validate an (N, k) score matrix column by column; return it as (k, N)."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 2:
        raise StudyvalError(
            f"scores must be two-dimensional with shape (n_cases, n_models), got shape "
            f"{arr.shape}; for a single model use auc()"
        )
    if arr.shape[1] == 0:
        raise StudyvalError("scores has no columns (models)")
    cols = [check_scores(arr[:, j], n, name=f"scores[:, {j}]") for j in range(arr.shape[1])]
    return np.stack(cols)


def delong_covariance(y_true: Any, scores: Any, *, positive: Any) -> tuple[np.ndarray, np.ndarray]:
    r"""AUCs of ``k`` models on the same cases and their DeLong covariance matrix.

    .. math::

        S = \frac{S_{10}}{m} + \frac{S_{01}}{n}, \qquad
        S_{10}^{rs} = \frac{1}{m-1}\sum_{i=1}^m
            (V^r_{10}(X_i) - \hat\theta^r)(V^s_{10}(X_i) - \hat\theta^s),

    and :math:`S_{01}` likewise over the negatives with :math:`n - 1`
    (DeLong, DeLong & Clarke-Pearson 1988, doi:10.2307/2531595). Vectorised over
    models: one argsort per model (Sun & Xu 2014, doi:10.1109/LSP.2014.2337313).
    Entries agree with pROC's ``var(roc, method = "delong")`` and
    ``cov(roc1, roc2, method = "delong")``.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Observed class labels.
    scores : array-like of float, shape (N, k)
        One column per model, finite; higher = more likely positive.
    positive : label
        Label of the positive class. Required.

    Returns
    -------
    aucs : numpy.ndarray, shape (k,)
        Empirical AUCs.
    cov : numpy.ndarray, shape (k, k)
        DeLong covariance matrix (symmetric, positive semi-definite).

    Raises
    ------
    studyval.errors.EstimationError
        Single class, ``positive`` absent, or fewer than 2 cases in a class.
    studyval.errors.StudyvalError
        ``scores`` not 2-D, wrong number of rows, or a non-finite score.

    """
    is_pos = check_binary_outcome(y_true, positive)
    mat = _check_score_matrix(scores, is_pos.size)
    _require_two_per_class(int(is_pos.sum()), int((~is_pos).sum()))
    pl = _placements(is_pos, mat)
    return pl.theta, pl.covariance()


def _check_names(names: Any, count: int) -> tuple[str, ...]:
    names = tuple(str(x) for x in names)
    if len(names) != count:
        raise StudyvalError(f"names must hold {count} names, got {len(names)}: {names!r}")
    if len(set(names)) != count:
        raise StudyvalError(f"names must be distinct, got {names!r}")
    return names


def _paired(pl: _Placements, i: int, j: int, names: tuple[str, str], alpha: float):
    """Paired DeLong comparison of models ``i`` and ``j`` of ``pl``."""
    m, n = pl.n_positive, pl.n_negative
    theta = pl.theta
    var_i, var_j, cov_ij, var = pl.pair_covariance(i, j)
    se = math.sqrt(var)
    diff = float(theta[i] - theta[j])
    z, p, ci_low, ci_high = wald_difference(diff, se, alpha)
    if se == 0.0:
        warnings.warn(
            f"the DeLong variance of the AUC difference {names[0]} - {names[1]} is zero: "
            "the placement differences between the two models are constant across cases "
            "(e.g. identical scores, scores related by an increasing function, or perfect "
            f"separation by both); z is set to {z} and the test is degenerate",
            StatisticalWarning,
            stacklevel=3,
        )
    denom = math.sqrt(var_i * var_j)
    corr = cov_ij / denom if denom > 0.0 else math.nan
    return PairedAUCComparison(
        name_a=names[0],
        name_b=names[1],
        auc_a=float(theta[i]),
        auc_b=float(theta[j]),
        difference=diff,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=1.0 - alpha,
        z=z,
        p_value=p,
        correlation=corr,
        n_positive=m,
        n_negative=n,
    )


def compare_auc(
    y_true: Any,
    score_a: Any,
    score_b: Any,
    *,
    positive: Any,
    alpha: float = 0.05,
    names: tuple[str, str] = ("a", "b"),
) -> PairedAUCComparison:
    r"""DeLong test and interval for the difference of two correlated AUCs.

    Both models are scored on the same cases. With :math:`S` the DeLong
    covariance of :math:`(\hat\theta_a, \hat\theta_b)` (:func:`delong_covariance`),

    .. math::

        z = \frac{\hat\theta_a - \hat\theta_b}
                 {\sqrt{S_{aa} + S_{bb} - 2 S_{ab}}}, \qquad p = 2\Phi(-|z|).

    DeLong, DeLong & Clarke-Pearson (1988), doi:10.2307/2531595. Agrees with
    ``pROC::roc.test(roc_a, roc_b, paired = TRUE, method = "delong")``. The
    variance of the difference is computed from the differences of the integer
    placements, so it is exactly zero when the two models order all pairs alike;
    then ``z = 0, p = 1`` if the AUCs are equal (see
    :class:`PairedAUCComparison`).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Observed class labels.
    score_a, score_b : array-like of float, shape (N,)
        Scores of the two models on the same cases, higher = more likely positive.
    positive : label
        Label of the positive class. Required.
    alpha : float, default 0.05
        The interval of the difference has level ``1 - alpha``.
    names : (str, str), default ("a", "b")
        Model names for the result.

    Returns
    -------
    PairedAUCComparison

    Raises
    ------
    studyval.errors.EstimationError
        Single class, ``positive`` absent, or fewer than 2 cases in a class.
    studyval.errors.StudyvalError
        Lengths differ, a non-finite score, bad ``alpha`` or ``names``.

    Warns
    -----
    StatisticalWarning
        The variance of the difference is zero (degenerate test).

    """
    alpha = check_alpha(alpha)
    names2 = _check_names(names, 2)
    is_pos = check_binary_outcome(y_true, positive)
    a = check_scores(score_a, is_pos.size, name="score_a")
    b = check_scores(score_b, is_pos.size, name="score_b")
    _require_two_per_class(int(is_pos.sum()), int((~is_pos).sum()))
    pl = _placements(is_pos, np.stack([a, b]))
    return _paired(pl, 0, 1, (names2[0], names2[1]), alpha)


def compare_auc_unpaired(
    y_a: Any,
    score_a: Any,
    y_b: Any,
    score_b: Any,
    *,
    positive: Any,
    alpha: float = 0.05,
    names: tuple[str, str] = ("a", "b"),
) -> UnpairedAUCComparison:
    r"""Compare two AUCs estimated on independent samples (e.g. internal vs external).

    .. math::

        D = \frac{\hat\theta_a - \hat\theta_b}{\sqrt{V_a + V_b}}
        \sim t_\nu, \qquad
        \nu = \frac{(V_a + V_b)^2}{V_a^2/(N_a - 1) + V_b^2/(N_b - 1)},

    with DeLong variances :math:`V_a, V_b` (doi:10.2307/2531595; the statistic
    is that of Hanley & McNeil 1983, doi:10.1148/radiology.148.3.6878708). Agrees
    with ``pROC::roc.test(roc_a, roc_b, paired = FALSE, method = "delong")``,
    whose t reference distribution we adopt; see
    :class:`UnpairedAUCComparison`.

    Parameters
    ----------
    y_a, y_b : array-like
        Class labels of the two samples (any lengths).
    score_a, score_b : array-like of float
        Scores of the two samples, higher = more likely positive.
    positive : label
        Label of the positive class, the same in both samples. Required.
    alpha : float, default 0.05
        Level of the interval of the difference is ``1 - alpha``.
    names : (str, str), default ("a", "b")
        Names of the two samples.

    Returns
    -------
    UnpairedAUCComparison

    Raises
    ------
    studyval.errors.EstimationError
        A sample has a single class, lacks ``positive``, or has fewer than 2
        cases in a class.
    studyval.errors.StudyvalError
        Lengths differ within a sample, non-finite score, bad ``alpha``/``names``.

    Warns
    -----
    StatisticalWarning
        Both DeLong variances are zero (degenerate test).

    """
    alpha = check_alpha(alpha)
    names2 = _check_names(names, 2)
    results = []
    for y, s, nm in ((y_a, score_a, "a"), (y_b, score_b, "b")):
        is_pos = check_binary_outcome(y, positive, name=f"y_{nm}")
        score = check_scores(s, is_pos.size, name=f"score_{nm}")
        _require_two_per_class(int(is_pos.sum()), int((~is_pos).sum()), what=f"y_{nm}")
        results.append(auc(is_pos, score, positive=True, alpha=alpha))
    ra, rb = results
    va, vb = ra.se**2, rb.se**2
    n_a = ra.n_positive + ra.n_negative
    n_b = rb.n_positive + rb.n_negative
    diff = ra.estimate - rb.estimate
    se = math.sqrt(va + vb)
    if se > 0.0:
        df = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
        stat = diff / se
        p = float(2.0 * stats.t.sf(abs(stat), df))
        half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    else:
        df = math.nan
        stat = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
        p = 1.0 if diff == 0.0 else 0.0
        half = 0.0
        warnings.warn(
            "both DeLong variances are zero; the unpaired test is degenerate "
            f"(statistic set to {stat}, p to {p})",
            StatisticalWarning,
            stacklevel=2,
        )
    return UnpairedAUCComparison(
        name_a=names2[0],
        name_b=names2[1],
        auc_a=ra.estimate,
        auc_b=rb.estimate,
        difference=diff,
        se=se,
        ci_low=max(-1.0, diff - half),
        ci_high=min(1.0, diff + half),
        ci_level=1.0 - alpha,
        statistic=stat,
        df=df,
        p_value=p,
        n_positive_a=ra.n_positive,
        n_negative_a=ra.n_negative,
        n_positive_b=rb.n_positive,
        n_negative_b=rb.n_negative,
    )


def compare_auc_k(
    y_true: Any, scores: Mapping[str, Any], *, positive: Any, alpha: float = 0.05
) -> JointAUCTest:
    r"""Joint DeLong test that ``k >= 2`` correlated AUCs are equal, plus all pairs.

    .. math::

        \chi^2 = (L\hat\theta)^\top (L S L^\top)^{-1} (L\hat\theta)
        \sim \chi^2_{k-1},

    with :math:`L` the :math:`(k-1) \times k` consecutive-difference contrast
    and :math:`S` the DeLong covariance (DeLong, DeLong & Clarke-Pearson 1988,
    Biometrics 44:837-845, doi:10.2307/2531595). For ``k = 2`` the statistic is
    :math:`z^2` of :func:`compare_auc`. pROC has no k-model test; the tests check
    it against the formula evaluated in R on pROC's ``var``/``cov``.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Observed class labels.
    scores : mapping of str to array-like of float, shape (N,)
        Model name -> scores on the same cases, higher = more likely positive.
    positive : label
        Label of the positive class. Required.
    alpha : float, default 0.05
        Level ``1 - alpha`` of the pairwise intervals.

    Returns
    -------
    JointAUCTest
        With all pairwise comparisons (unadjusted, plus a Holm column) in
        :meth:`JointAUCTest.pairwise_frame`.

    Raises
    ------
    studyval.errors.EstimationError
        Single class, ``positive`` absent, or fewer than 2 cases in a class.
    studyval.errors.StudyvalError
        Fewer than 2 models, a length mismatch or non-finite score.

    Warns
    -----
    StatisticalWarning
        The contrast covariance is singular (see :class:`JointAUCTest`), or a
        pairwise difference has zero variance.

    """
    alpha = check_alpha(alpha)
    if not isinstance(scores, Mapping):
        raise StudyvalError(
            f"scores must be a mapping of model name to scores, got {type(scores).__name__}"
        )
    if len(scores) < 2:
        raise StudyvalError(f"compare_auc_k needs at least 2 models, got {len(scores)}")
    names = _check_names(scores.keys(), len(scores))
    is_pos = check_binary_outcome(y_true, positive)
    mat = np.stack(
        [
            check_scores(v, is_pos.size, name=f"scores[{nm!r}]")
            for nm, v in zip(names, scores.values(), strict=True)
        ]
    )
    m, n = int(is_pos.sum()), int((~is_pos).sum())
    _require_two_per_class(m, n)
    pl = _placements(is_pos, mat)
    k = len(names)
    theta = pl.theta
    contrast = np.eye(k - 1, k) - np.eye(k - 1, k, 1)
    lt = contrast @ theta
    lsl = pl.covariance(contrast)
    w, u = np.linalg.eigh(lsl)
    keep = w > max(w.max(), 0.0) * _RANK_RTOL
    proj = u.T @ lt
    df = int(keep.sum())
    statistic = float(np.sum(proj[keep] ** 2 / w[keep]))
    if df < k - 1:
        if np.any(np.abs(proj[~keep]) > _DIFF_ATOL):
            statistic = math.inf
            detail = "the AUCs differ along a direction with zero variance; statistic is inf"
        else:
            detail = f"the test uses the {df} non-degenerate direction(s)"
        warnings.warn(
            f"the DeLong covariance of the {k - 1} AUC contrasts is singular (rank {df}), "
            f"e.g. two models rank all cases alike; {detail}",
            StatisticalWarning,
            stacklevel=2,
        )
    if math.isinf(statistic):
        p = 0.0
    elif df == 0:
        p = 1.0
    else:
        p = float(stats.chi2.sf(statistic, df))
    pairwise = tuple(
        _paired(pl, i, j, (names[i], names[j]), alpha) for i, j in combinations(range(k), 2)
    )
    return JointAUCTest(
        names=names,
        aucs=tuple(float(t) for t in theta),
        statistic=statistic,
        df=df,
        p_value=p,
        ci_level=1.0 - alpha,
        n_positive=m,
        n_negative=n,
        covariance=_readonly(pl.covariance()),
        pairwise=pairwise,
    )
