r"""Clustered DeLong: AUC of vertebra-level predictions with patients as clusters.

Several vertebrae of one patient are correlated, so DeLong's variance, which
treats every vertebra as an independent case, is too small when the
correlation is positive. Obuchowski (1997), Biometrics 53:567-578,
doi:10.2307/2533958, generalises DeLong's structural components to clusters.

Notation. Patient (cluster) :math:`i = 1, \dots, I` has :math:`m_i` positive
units with scores :math:`X_{ij}` and :math:`n_i` negative units with scores
:math:`Y_{ik}`; :math:`M = \sum_i m_i`, :math:`N = \sum_i n_i`;
:math:`I_{10}` clusters have at least one positive unit and :math:`I_{01}` at
least one negative unit. With :math:`\psi(x, y) = [x > y] + \tfrac12 [x = y]`,

.. math::

    \hat\theta = \frac{1}{MN}\sum_{i,j}\sum_{i',k} \psi(X_{ij}, Y_{i'k}),

the vertebra-level AUC (every positive-negative pair, within and between
patients, counts once: the same estimate as
:func:`~studyval.analysis.discrimination.auc`). The DeLong structural
components, summed within each cluster, are

.. math::

    V_{10}(X_{i\cdot}) = \sum_{j=1}^{m_i} \frac{1}{N}\sum_{i',k}\psi(X_{ij}, Y_{i'k}),
    \qquad
    V_{01}(Y_{i\cdot}) = \sum_{k=1}^{n_i} \frac{1}{M}\sum_{i',j}\psi(X_{i'j}, Y_{ik}),

(zero for a cluster without units of that class), and Obuchowski's variance is

.. math::

    S_{10} = \frac{I_{10}}{(I_{10} - 1) M}\sum_{i=1}^I
             \left(V_{10}(X_{i\cdot}) - m_i\hat\theta\right)^2, \qquad
    S_{01} = \frac{I_{01}}{(I_{01} - 1) N}\sum_{i=1}^I
             \left(V_{01}(Y_{i\cdot}) - n_i\hat\theta\right)^2,

.. math::

    S_{11} = \frac{I}{I - 1}\sum_{i=1}^I
             \left(V_{10}(X_{i\cdot}) - m_i\hat\theta\right)
             \left(V_{01}(Y_{i\cdot}) - n_i\hat\theta\right), \qquad
    \widehat{\mathrm{Var}}(\hat\theta) = \frac{S_{10}}{M} + \frac{S_{01}}{N}
             + \frac{2 S_{11}}{MN}.

For two models on the same units the covariance has the same form with the
products taken across models and the cross term symmetrised,
:math:`(S_{11}^{ab} + S_{11}^{ba})/(MN)`.

**One unit per cluster** reduces this exactly to DeLong's variance (no extra
factor): a singleton cluster holds either one positive (:math:`m_i = 1,
n_i = 0`) or one negative, so :math:`I_{10} = M`, :math:`I_{01} = N`, every
product in :math:`S_{11}` has a zero factor, and
:math:`S_{10} = \frac{M}{(M-1)M}\sum_i (V_{10}(X_i) - \hat\theta)^2`
is DeLong's :math:`S_{10}` with its :math:`M - 1` divisor (likewise
:math:`S_{01}`). The factors :math:`I_{10}/(I_{10}-1)` etc. are exactly the
small-sample corrections that become DeLong's :math:`n - 1` denominators.

The estimator is non-negative: per cluster it is a quadratic form with matrix
:math:`\begin{pmatrix} c_{10} & c_{11} \\ c_{11} & c_{01}\end{pmatrix}`,
:math:`c_{10} = I_{10}/(I_{10}-1) \ge c_{11} = I/(I-1) \le c_{01}`, which is
positive semi-definite. It is computed as the sum of the non-negative terms
:math:`c_{11}\sum_i (a_i/M + b_i/N)^2 + (c_{10} - c_{11})\sum_i a_i^2/M^2
+ (c_{01} - c_{11})\sum_i b_i^2/N^2` with :math:`a_i = V_{10}(X_{i\cdot}) -
m_i\hat\theta`, :math:`b_i = V_{01}(Y_{i\cdot}) - n_i\hat\theta`, from exact
integer placements (the ``_placements`` helper of
:mod:`~studyval.analysis.discrimination`), so exact zeros are detected.

Agrees with the reference R implementation of Obuchowski's estimator
(``funcs_clusteredROC.R`` of the Cleveland Clinic, as adapted in
``doAUCcluster`` of the FDA/DIDSR ``mitoticFigureCounts`` package); the one
deliberate difference is that our interval for an AUC is truncated to
[0, 1] (and for a difference to [-1, 1]), as :func:`~studyval.analysis.discrimination.auc`
does.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import numpy as np

from studyval.analysis._checks import (
    check_alpha,
    check_binary_outcome,
    check_scores,
    wald_difference,
)
from studyval.analysis._checks import z_critical as _z_crit
from studyval.analysis.discrimination import _placements
from studyval.analysis.resampling import _check_clusters
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "ClusteredAUCResult",
    "ClusteredPairedAUCComparison",
    "auc_clustered",
    "compare_auc_clustered",
]


@dataclasses.dataclass(frozen=True)
class ClusteredAUCResult(Result):
    r"""Vertebra-level AUC with Obuchowski's clustered DeLong interval.

    The interval is :math:`\hat\theta \pm z_{1-\alpha/2}\,\mathrm{se}`,
    truncated to [0, 1], with :math:`\mathrm{se}^2` Obuchowski's (1997)
    variance (see :mod:`~studyval.analysis.clustered`), doi:10.2307/2533958.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        Empirical AUC over all positive-negative unit pairs.
    se : float
        Clustered standard error.
    ci_low, ci_high : float
        Confidence limits, truncated to [0, 1].
    ci_level : float
        ``1 - alpha``.
    n_positive, n_negative : int
        Positive units :math:`M` and negative units :math:`N`.
    n_clusters : int
        Clusters (patients) :math:`I`.
    n_clusters_with_positive, n_clusters_with_negative : int
        :math:`I_{10}` and :math:`I_{01}`.
    design_effect : float
        Clustered variance divided by the naive DeLong variance that treats
        units as independent; above 1 when units of a patient are positively
        correlated. NaN if the naive variance is zero.
    method : str
        ``"Obuchowski clustered DeLong"``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    n_positive: int
    n_negative: int
    n_clusters: int
    n_clusters_with_positive: int
    n_clusters_with_negative: int
    design_effect: float
    method: str = "Obuchowski clustered DeLong"


@dataclasses.dataclass(frozen=True)
class ClusteredPairedAUCComparison(Result):
    r"""Clustered DeLong test of two AUCs from models scored on the same units.

    .. math::

        \hat\Delta = \hat\theta_a - \hat\theta_b, \qquad
        \mathrm{se}^2 = \widehat{\mathrm{Var}}_a + \widehat{\mathrm{Var}}_b
                        - 2\,\widehat{\mathrm{Cov}}_{ab}, \qquad
        z = \hat\Delta/\mathrm{se}, \qquad p = 2\Phi(-|z|),

    with Obuchowski's (1997) clustered (co)variances, doi:10.2307/2533958;
    interval :math:`\hat\Delta \pm z_{1-\alpha/2}\,\mathrm{se}` truncated to
    [-1, 1]. The same fields as
    :class:`~studyval.analysis.discrimination.PairedAUCComparison`, plus the
    cluster counts. When ``se == 0`` the test is degenerate: ``z = 0, p = 1``
    if the AUCs are equal, ``z = ±inf, p = 0`` otherwise, with a
    StatisticalWarning.

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
        Clustered standard error of the difference.
    ci_low, ci_high : float
        Confidence limits of the difference.
    ci_level : float
        ``1 - alpha``.
    z : float
        ``difference / se``.
    p_value : float
        Two-sided p-value from the standard normal distribution.
    correlation : float
        Clustered correlation of the two AUC estimates; NaN if a variance is zero.
    n_positive, n_negative : int
        Positive and negative units.
    n_clusters : int
        Clusters (patients).
    n_clusters_with_positive, n_clusters_with_negative : int
        :math:`I_{10}` and :math:`I_{01}`.
    method : str
        ``"Obuchowski clustered DeLong paired"``.

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
    n_clusters: int
    n_clusters_with_positive: int
    n_clusters_with_negative: int
    method: str = "Obuchowski clustered DeLong paired"


# ------------------------------------------------------------------------ core


@dataclasses.dataclass(frozen=True)
class _ClusterComponents:
    r"""Cluster sums of the centred DeLong components of ``k`` models, as integers.

    ``a[r, i] = 2MN (V10(X_i.) - m_i theta_r)`` and
    ``b[r, i] = 2MN (V01(Y_i.) - n_i theta_r)``, exact integers (int64).
    """

    theta: np.ndarray  # (k,)
    a: np.ndarray  # (k, I) int64
    b: np.ndarray  # (k, I) int64
    m: int
    n: int
    n_clusters: int
    n_clusters_pos: int
    n_clusters_neg: int
    naive: Any  # discrimination._Placements, for the unclustered DeLong covariance

    @property
    def factors(self) -> tuple[float, float, float]:
        """:math:`c_{10} = I_{10}/(I_{10}-1)`, :math:`c_{01}`, :math:`c_{11} = I/(I-1)`."""
        i10, i01, i = self.n_clusters_pos, self.n_clusters_neg, self.n_clusters
        return i10 / (i10 - 1.0), i01 / (i01 - 1.0), i / (i - 1.0)

    def covariance(self) -> np.ndarray:
        """Obuchowski covariance matrix of the ``k`` AUCs."""
        c10, c01, c11 = self.factors
        u = self.a / float(self.m)
        v = self.b / float(self.n)
        s = c10 * (u @ u.T) + c01 * (v @ v.T) + c11 * (u @ v.T + v @ u.T)
        s = s / (2.0 * self.m * self.n) ** 2
        return (s + s.T) / 2.0

    def variance(self, weights: np.ndarray) -> float:
        """Variance of ``weights @ theta``, as a sum of non-negative terms; exact zeros kept."""
        c10, c01, c11 = self.factors
        a = weights @ self.a  # exact integers (weights are small integers)
        b = weights @ self.b
        m, n = self.m, self.n
        if self._is_zero(a, b):
            return 0.0
        ua, vb = a / float(m), b / float(n)
        total = c11 * float(np.sum((ua + vb) ** 2))
        total += (c10 - c11) * float(np.sum(ua**2)) + (c01 - c11) * float(np.sum(vb**2))
        return total / (2.0 * m * n) ** 2

    def _is_zero(self, a: np.ndarray, b: np.ndarray) -> bool:
        # zero iff N a_i + M b_i = 0 for all i, and a = 0 unless I10 = I, b = 0 unless I01 = I
        if self.n_clusters_pos < self.n_clusters and np.any(a != 0):
            return False
        if self.n_clusters_neg < self.n_clusters and np.any(b != 0):
            return False
        bound = (
            float(np.max(np.abs(a), initial=0)) * self.n
            + float(np.max(np.abs(b), initial=0)) * self.m
        )
        if bound < 2.0**62:  # int64 cannot overflow
            return not np.any(a * self.n + b * self.m)
        return all(int(x) * self.n + int(y) * self.m == 0 for x, y in zip(a, b, strict=True))


def _components(is_pos: np.ndarray, scores: np.ndarray, codes: np.ndarray, g: int):
    pl = _placements(is_pos, scores)
    m, n = pl.n_positive, pl.n_negative
    pos_cluster = codes[pl.positive_index]
    neg_cluster = codes[pl.negative_index]
    m_i = np.bincount(pos_cluster, minlength=g).astype(np.int64)
    n_i = np.bincount(neg_cluster, minlength=g).astype(np.int64)
    i10, i01 = int(np.count_nonzero(m_i)), int(np.count_nonzero(n_i))
    if i10 < 2 or i01 < 2:
        raise EstimationError(
            f"a clustered DeLong standard error needs positive units in at least 2 clusters "
            f"and negative units in at least 2 clusters; found {i10} cluster(s) with "
            f"positives and {i01} with negatives (Obuchowski's S10 divides by I10 - 1)"
        )
    k = scores.shape[0]
    a = np.empty((k, g), dtype=np.int64)
    b = np.empty((k, g), dtype=np.int64)
    total = pl.c10.sum(axis=1)  # 2 M N theta, exact
    for r in range(k):
        # cluster sums of the integer numerators 2N V10 and 2M V01 (exact in float64)
        c10_i = np.rint(np.bincount(pos_cluster, weights=pl.c10[r], minlength=g)).astype(np.int64)
        c01_i = np.rint(np.bincount(neg_cluster, weights=pl.c01[r], minlength=g)).astype(np.int64)
        # 2MN (V10(X_i.) - m_i theta) = M c10_i - m_i total, likewise for V01
        a[r] = m * c10_i - m_i * total[r]
        b[r] = n * c01_i - n_i * total[r]
    return _ClusterComponents(
        theta=pl.theta,
        a=a,
        b=b,
        m=m,
        n=n,
        n_clusters=g,
        n_clusters_pos=i10,
        n_clusters_neg=i01,
        naive=pl,
    )


def _prepare(y_true: Any, scores: list[tuple[Any, str]], clusters: Any, positive: Any):
    is_pos = check_binary_outcome(y_true, positive)
    mat = np.stack([check_scores(s, is_pos.size, name=nm) for s, nm in scores])
    codes, g = _check_clusters(clusters, is_pos.size)
    return is_pos, mat, codes, g


# ------------------------------------------------------------------- public API


def auc_clustered(
    y_true: Any, y_score: Any, clusters: Any, *, positive: Any, alpha: float = 0.05
) -> ClusteredAUCResult:
    r"""AUC of unit-level (vertebra-level) scores with a patient-clustered DeLong CI.

    .. math::

        \hat\theta \pm z_{1-\alpha/2}\sqrt{\frac{S_{10}}{M} + \frac{S_{01}}{N}
                                             + \frac{2S_{11}}{MN}}

    (Obuchowski 1997, Biometrics 53:567-578, doi:10.2307/2533958; formulas in
    :mod:`~studyval.analysis.clustered`). The estimate is the ordinary
    empirical AUC over all positive-negative unit pairs; only its variance
    accounts for the clustering. With one unit per cluster the variance is
    exactly DeLong's (doi:10.2307/2531595), as computed by
    :func:`~studyval.analysis.discrimination.auc` and pROC. Cost:
    :math:`O(N \log N)` (one sort, Sun & Xu 2014, doi:10.1109/LSP.2014.2337313).

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Unit-level class labels (e.g. fracture acute/chronic per vertebra).
    y_score : array-like of float, shape (n,)
        Unit-level scores, finite; a **higher score means more likely positive**.
    clusters : array-like, shape (n,)
        Patient id of every unit (any sortable ids, none missing).
    positive : label
        Label of the positive class. Required.
    alpha : float, default 0.05
        The interval has level ``1 - alpha``.

    Returns
    -------
    ClusteredAUCResult
        With the cluster counts and the design effect.

    Raises
    ------
    studyval.errors.EstimationError
        A single class, ``positive`` absent, or positive (negative) units in
        fewer than 2 clusters.
    studyval.errors.StudyvalError
        Length mismatch, a non-finite score, a missing cluster id, bad ``alpha``.

    Warns
    -----
    StatisticalWarning
        The clustered standard error is exactly zero.

    Examples
    --------
    >>> r = auc_clustered([1, 0, 1, 0, 0, 1], [0.9, 0.2, 0.6, 0.7, 0.1, 0.8],
    ...                   ["p1", "p1", "p2", "p2", "p3", "p3"], positive=1)
    >>> round(r.estimate, 4), r.n_clusters
    (0.8889, 3)

    """
    alpha = check_alpha(alpha)
    is_pos, mat, codes, g = _prepare(y_true, [(y_score, "y_score")], clusters, positive)
    comp = _components(is_pos, mat, codes, g)
    estimate = float(comp.theta[0])
    var = comp.variance(np.ones(1, dtype=np.int64))
    se = math.sqrt(var)
    naive = float(comp.naive.covariance()[0, 0])
    if se == 0.0:
        warnings.warn(
            f"the clustered DeLong standard error is zero (AUC = {estimate:.6g}), so the "
            "interval has zero width and understates the uncertainty",
            StatisticalWarning,
            stacklevel=2,
        )
    half = _z_crit(alpha) * se
    return ClusteredAUCResult(
        estimate=estimate,
        se=se,
        ci_low=min(1.0, max(0.0, estimate - half)),
        ci_high=min(1.0, max(0.0, estimate + half)),
        ci_level=1.0 - alpha,
        n_positive=comp.m,
        n_negative=comp.n,
        n_clusters=g,
        n_clusters_with_positive=comp.n_clusters_pos,
        n_clusters_with_negative=comp.n_clusters_neg,
        design_effect=var / naive if naive > 0.0 else math.nan,
    )


def compare_auc_clustered(
    y_true: Any,
    score_a: Any,
    score_b: Any,
    clusters: Any,
    *,
    positive: Any,
    alpha: float = 0.05,
    names: tuple[str, str] = ("a", "b"),
) -> ClusteredPairedAUCComparison:
    r"""Paired comparison of two models' AUCs on clustered units (Obuchowski 1997).

    .. math::

        z = \frac{\hat\theta_a - \hat\theta_b}
                 {\sqrt{\widehat{\mathrm{Var}}_a + \widehat{\mathrm{Var}}_b
                        - 2\widehat{\mathrm{Cov}}_{ab}}}, \qquad p = 2\Phi(-|z|),

    with Obuchowski's clustered (co)variances, doi:10.2307/2533958 (see
    :mod:`~studyval.analysis.clustered`). The variance of the difference is
    computed from the differences of the exact integer components, so it is
    exactly zero when the two models order every pair alike. With one unit
    per cluster this is DeLong's paired test
    (:func:`~studyval.analysis.discrimination.compare_auc`).

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Unit-level class labels.
    score_a, score_b : array-like of float, shape (n,)
        Scores of the two models on the same units, higher = more likely positive.
    clusters : array-like, shape (n,)
        Patient id of every unit.
    positive : label
        Label of the positive class. Required.
    alpha : float, default 0.05
        The interval of the difference has level ``1 - alpha``.
    names : (str, str), default ("a", "b")
        Model names.

    Returns
    -------
    ClusteredPairedAUCComparison

    Raises
    ------
    studyval.errors.EstimationError
        A single class, ``positive`` absent, or positive (negative) units in
        fewer than 2 clusters.
    studyval.errors.StudyvalError
        Length mismatch, non-finite score, missing cluster id, bad ``alpha`` or
        ``names``.

    Warns
    -----
    StatisticalWarning
        The variance of the difference is zero (degenerate test).

    """
    alpha = check_alpha(alpha)
    if isinstance(names, str):
        raise StudyvalError(f"names must be two distinct names, got the string {names!r}")
    names = tuple(str(x) for x in names)
    if len(names) != 2 or names[0] == names[1]:
        raise StudyvalError(f"names must be two distinct names, got {names!r}")
    is_pos, mat, codes, g = _prepare(
        y_true, [(score_a, "score_a"), (score_b, "score_b")], clusters, positive
    )
    comp = _components(is_pos, mat, codes, g)
    theta = comp.theta
    diff = float(theta[0] - theta[1])
    var = comp.variance(np.array([1, -1], dtype=np.int64))
    se = math.sqrt(var)
    cov = comp.covariance()
    z, p, ci_low, ci_high = wald_difference(diff, se, alpha)
    if se == 0.0:
        warnings.warn(
            f"the clustered variance of the AUC difference {names[0]} - {names[1]} is zero: "
            "the two models order every positive-negative pair alike; z is set to "
            f"{z} and the test is degenerate",
            StatisticalWarning,
            stacklevel=2,
        )
    denom = math.sqrt(cov[0, 0] * cov[1, 1])
    return ClusteredPairedAUCComparison(
        name_a=names[0],
        name_b=names[1],
        auc_a=float(theta[0]),
        auc_b=float(theta[1]),
        difference=diff,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=1.0 - alpha,
        z=z,
        p_value=p,
        correlation=float(cov[0, 1] / denom) if denom > 0.0 else math.nan,
        n_positive=comp.m,
        n_negative=comp.n,
        n_clusters=g,
        n_clusters_with_positive=comp.n_clusters_pos,
        n_clusters_with_negative=comp.n_clusters_neg,
    )
