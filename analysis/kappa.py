r"""Cohen's kappa for two raters on an ordered categorical scale.

* :func:`weighted_kappa` / :func:`cohen_kappa` / :func:`kappa_from_table` --
  Cohen's kappa for two raters on an ordered categorical scale, unweighted or
  with linear / quadratic agreement weights, with the large-sample standard
  errors of Fleiss, Cohen & Everitt (1969), or with ``clusters=`` (several
  rated units per patient) a patient-level cluster-bootstrap interval
  (:mod:`studyval.analysis.resampling`). Formulas in :class:`KappaResult`.

Every function takes plain arrays or a table of counts, validates them (a
label outside the declared categories, a missing rating, unequal lengths are
errors that name the position), and returns a frozen
:class:`~studyval.results.Result`. Figures are drawn from the tables these
results return (:mod:`studyval.figures.agreement`), never here.

Oracles: R 4.x with psych 2.2.9 (``cohen.kappa``, patched for the weighted
variance), statsmodels and scikit-learn; see ``tests/test_kappa.py``.
Part of :mod:`studyval.analysis.agreement` (the facade).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_option
from studyval.analysis._checks import z_critical as _z
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "KappaResult",
    "cohen_kappa",
    "kappa_from_table",
    "weighted_kappa",
]

_WEIGHTS = ("linear", "quadratic")


# =========================================================================== kappa


@dataclasses.dataclass(frozen=True)
class KappaResult(Result):
    r"""Cohen's kappa, unweighted or weighted, with a Fleiss-Cohen-Everitt interval.

    With :math:`p_{ij} = n_{ij}/n` the proportion of cases that rater A put in
    category :math:`i` and rater B in category :math:`j`, marginals
    :math:`p_{i\cdot}`, :math:`p_{\cdot j}`, and agreement weights
    :math:`w_{ij}` (:math:`w_{ii} = 1`, :math:`0 \le w_{ij} \le 1`),

    .. math::

        p_o = \sum_{ij} w_{ij} p_{ij}, \qquad
        p_e = \sum_{ij} w_{ij} p_{i\cdot} p_{\cdot j}, \qquad
        \hat\kappa_w = \frac{p_o - p_e}{1 - p_e}.

    Unweighted kappa is the case :math:`w_{ij} = [i = j]`. With
    :math:`\bar w_{i\cdot} = \sum_j p_{\cdot j} w_{ij}` and
    :math:`\bar w_{\cdot j} = \sum_i p_{i\cdot} w_{ij}`, the large-sample
    variance (Fleiss, Cohen & Everitt 1969, Psychol Bull 72:323-327,
    doi:10.1037/h0028106) is

    .. math::

        \widehat{\mathrm{Var}}(\hat\kappa_w) = \frac{
            \sum_{ij} p_{ij}\,[w_{ij}(1 - p_e) - (\bar w_{i\cdot} + \bar w_{\cdot j})(1 - p_o)]^2
            - (p_o p_e - 2 p_e + p_o)^2}{n (1 - p_e)^4},

    which is the delta-method variance of :math:`\hat\kappa_w` under
    multinomial sampling, and under :math:`H_0: \kappa_w = 0`

    .. math::

        \widehat{\mathrm{Var}}_0(\hat\kappa_w) = \frac{
            \sum_{ij} p_{i\cdot} p_{\cdot j}\,[w_{ij} - (\bar w_{i\cdot} + \bar w_{\cdot j})]^2
            - p_e^2}{n (1 - p_e)^2}.

    The interval is the Wald interval :math:`\hat\kappa_w \pm z_{1-\alpha/2}
    \mathrm{se}`, truncated to :math:`[-1, 1]` as ``psych::cohen.kappa``
    does; the test uses the null standard error, :math:`z = \hat\kappa_w /
    \mathrm{se}_0`. Kappa is 1 for perfect agreement, 0 for agreement at the
    level expected from the two raters' marginal distributions, negative below
    it.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        :math:`\hat\kappa_w` (unweighted kappa when ``weights == "unweighted"``).
    se : float
        Fleiss-Cohen-Everitt standard error (used for the interval).
    se_null : float
        Standard error under :math:`H_0: \kappa_w = 0` (used for the test).
    ci_low, ci_high : float
        Wald confidence limits, truncated to [-1, 1].
    ci_level : float
        :math:`1 - \alpha`.
    z, p_value : float
        :math:`\hat\kappa_w / \mathrm{se}_0` and its two-sided normal p-value.
    n : int
        Number of rated cases.
    n_categories : int
        Number of categories :math:`k`, including categories no rater used.
    n_agree : int
        Cases on the diagonal (both raters chose the same category).
    weights : str
        ``"unweighted"``, ``"linear"``, ``"quadratic"`` or ``"custom"``.
    observed_agreement, expected_agreement : float
        :math:`p_o` and :math:`p_e` (weighted when weights are used).
    method : str
        Name of the variance method: ``"Fleiss-Cohen-Everitt asymptotic"``,
        or with clusters the bootstrap, e.g. ``"patient-level percentile
        bootstrap (2000 resamples)"``.
    categories : tuple
        The ordered categories (rows of :attr:`counts`, rater A; columns, rater B).
    counts : tuple of tuple of int
        The :math:`k \times k` table :math:`n_{ij}`.
    weight_matrix : tuple of tuple of float
        The agreement weights :math:`w_{ij}`.
    n_clusters, n_resamples, seed : int or None
        With clusters (:func:`weighted_kappa`): patients, bootstrap resamples
        and seed; None otherwise. In :meth:`to_frame` only with clusters.
    bootstrap : BootstrapResult or None
        With clusters, the cluster bootstrap of :math:`\hat\kappa_w`
        (replicates, failures); None otherwise.

    With clusters (several rated units per patient) ``se`` is the bootstrap
    standard error and ``ci_low``/``ci_high`` the bootstrap limits (not
    truncated: replicates lie in [-1, 1]); ``se_null``, ``z`` and ``p_value``
    are NaN, because the null variance above assumes independent cases: use
    the interval.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    se_null: float
    ci_low: float
    ci_high: float
    ci_level: float
    z: float
    p_value: float
    n: int
    n_categories: int
    n_agree: int
    weights: str
    observed_agreement: float
    expected_agreement: float
    method: str
    categories: tuple[Any, ...] = dataclasses.field(repr=False)
    counts: tuple[tuple[int, ...], ...] = dataclasses.field(repr=False)
    weight_matrix: tuple[tuple[float, ...], ...] = dataclasses.field(repr=False)
    n_clusters: int | None = dataclasses.field(default=None, repr=False)
    n_resamples: int | None = dataclasses.field(default=None, repr=False)
    seed: int | None = dataclasses.field(default=None, repr=False)
    bootstrap: Any = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields; the bootstrap fields only when there was a bootstrap."""
        out = super().to_dict()
        out.pop("bootstrap", None)  # None is scalar; the result itself is not
        if self.bootstrap is None:
            for name in ("n_clusters", "n_resamples", "seed"):
                out.pop(name, None)
        return out

    def confusion_frame(self) -> pd.DataFrame:
        r"""The :math:`k \times k` agreement table as a DataFrame.

        Returns
        -------
        pandas.DataFrame
            Counts; index (named ``rater_a``) and columns (named ``rater_b``)
            are the categories in their declared order.

        """
        index = pd.Index(list(self.categories), name="rater_a")
        columns = pd.Index(list(self.categories), name="rater_b")
        return pd.DataFrame(np.asarray(self.counts, dtype=np.int64), index=index, columns=columns)

    def weights_frame(self) -> pd.DataFrame:
        """The agreement weights :math:`w_{ij}` as a DataFrame labelled like :meth:`confusion_frame`."""
        index = pd.Index(list(self.categories), name="rater_a")
        columns = pd.Index(list(self.categories), name="rater_b")
        return pd.DataFrame(np.asarray(self.weight_matrix), index=index, columns=columns)


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # array-like labels are rejected later
        return False


def _check_labels(values: Any, name: str) -> list[Any]:
    arr = np.asarray(values, dtype=object)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise StudyvalError(f"{name} is empty")
    out = [v.item() if isinstance(v, np.generic) else v for v in arr.tolist()]
    for i, v in enumerate(out):
        if _is_missing(v):
            raise StudyvalError(f"{name} has a missing label at position {i}")
    return out


def _check_categories(categories: Any) -> tuple[Any, ...]:
    cats = _check_labels(categories, "categories")
    seen: dict[Any, int] = {}
    for i, c in enumerate(cats):
        if not isinstance(c, Hashable):
            raise StudyvalError(f"categories[{i}] = {c!r} is not hashable")
        if c in seen:
            raise StudyvalError(
                f"categories has a repeated value {c!r} at positions {seen[c]} and {i}"
            )
        seen[c] = i
    if len(cats) < 2:
        raise StudyvalError(f"categories needs at least two categories, got {cats!r}")
    return tuple(cats)


def _weight_matrix(weights: Any, k: int) -> tuple[np.ndarray, str]:
    if weights is None:
        return np.eye(k), "unweighted"
    if isinstance(weights, str):
        kind = check_option(weights, _WEIGHTS, "weights")
        i = np.arange(k)
        dist = np.abs(i[:, None] - i[None, :]) / (k - 1)
        return (1.0 - dist if kind == "linear" else 1.0 - dist**2), kind
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (k, k):
        raise StudyvalError(
            f"weights must be a {k} x {k} matrix of agreement weights, got shape {w.shape}"
        )
    if not np.isfinite(w).all():
        raise StudyvalError("weights has a non-finite entry")
    if not np.all(np.diag(w) == 1.0):
        raise StudyvalError(
            f"weights must be agreement weights with 1 on the diagonal, got diagonal {np.diag(w).tolist()}"
        )
    if (w < 0).any() or (w > 1).any():
        i, j = np.argwhere((w < 0) | (w > 1))[0]
        raise StudyvalError(f"weights must lie in [0, 1]; weights[{i}, {j}] = {w[i, j]}")
    return w, "custom"


def _kappa_core(counts: np.ndarray, w: np.ndarray) -> tuple[float, float, float, float, float]:
    """Return kappa, its variance, the null variance, p_o and p_e (Fleiss et al. 1969)."""
    n = counts.sum()
    p = counts / n
    row = p.sum(axis=1)
    col = p.sum(axis=0)
    po = float((w * p).sum())
    pe = float((w * np.outer(row, col)).sum())
    if not pe < 1.0:
        raise EstimationError(
            "kappa is undefined: the expected agreement is 1 (both raters used a single, "
            "identical category for every case)"
        )
    kappa = (po - pe) / (1.0 - pe)
    wbar_i = w @ col  # sum_j p_.j w_ij
    wbar_j = row @ w  # sum_i p_i. w_ij
    wsum = wbar_i[:, None] + wbar_j[None, :]
    first = float((p * (w * (1.0 - pe) - wsum * (1.0 - po)) ** 2).sum())
    num = first - (po * pe - 2.0 * pe + po) ** 2
    first0 = float((np.outer(row, col) * (w - wsum) ** 2).sum())
    num0 = first0 - pe**2
    # Both numerators are differences of O(1) terms: a result within rounding of zero
    # (perfect agreement; a rater using one category) is zero, not a tiny SE.
    var = num / (n * (1.0 - pe) ** 4) if num > 1e-12 * first else 0.0
    var0 = num0 / (n * (1.0 - pe) ** 2) if num0 > 1e-12 * first0 else 0.0
    return kappa, var, var0, po, pe


def kappa_from_table(
    counts: Any,
    *,
    weights: str | Any | None = None,
    categories: Sequence[Any] | None = None,
    alpha: float = 0.05,
) -> KappaResult:
    r"""Cohen's (weighted) kappa from a :math:`k \times k` table of counts.

    Parameters
    ----------
    counts : array-like, shape (k, k)
        :math:`n_{ij}`: number of cases rater A put in category :math:`i` and
        rater B in category :math:`j`; non-negative integers, categories in
        their order on the scale. Rows and columns for categories nobody used
        are zero and still count (they change linear and quadratic weights).
    weights : {None, "linear", "quadratic"} or array-like, shape (k, k)
        ``None``: unweighted kappa. ``"linear"``: :math:`w_{ij} = 1 -
        |i - j| / (k - 1)`; ``"quadratic"``: :math:`w_{ij} = 1 - (i - j)^2 /
        (k - 1)^2` (Fleiss & Cohen 1973; the default weighting of
        ``psych::cohen.kappa``). A matrix gives agreement weights directly
        (1 on the diagonal, entries in [0, 1]); a disagreement weight
        :math:`v_{ij}` as in Cohen (1968) becomes :math:`1 - v_{ij}/\max v`.
    categories : sequence, optional
        Labels of the :math:`k` rows/columns; default ``0 .. k-1``.
    alpha : float
        One minus the confidence level.

    Returns
    -------
    KappaResult
        See there for the formulas (Fleiss, Cohen & Everitt 1969,
        doi:10.1037/h0028106).

    Raises
    ------
    StudyvalError
        The table is not square, has a negative, non-integer or non-finite
        count, or ``weights`` is not a valid option or matrix.
    EstimationError
        Fewer than two cases, or kappa is undefined (expected agreement 1).

    Examples
    --------
    Fleiss, Cohen & Everitt (1969), 200 patients, three diagnostic categories:

    >>> r = kappa_from_table([[106, 10, 4], [22, 28, 10], [2, 12, 6]])
    >>> round(r.estimate, 3), round(r.se, 4)
    (0.429, 0.0537)

    """
    alpha = check_alpha(alpha)
    table = np.asarray(counts, dtype=np.float64)
    if table.ndim != 2 or table.shape[0] != table.shape[1]:
        raise StudyvalError(f"counts must be a square k x k table, got shape {table.shape}")
    k = table.shape[0]
    if k < 2:
        raise StudyvalError(f"counts needs at least two categories, got a {k} x {k} table")
    if not np.isfinite(table).all():
        raise StudyvalError("counts has a non-finite entry")
    if (table < 0).any() or (table != np.round(table)).any():
        i, j = np.argwhere((table < 0) | (table != np.round(table)))[0]
        raise StudyvalError(
            f"counts must be non-negative integers; counts[{i}, {j}] = {table[i, j]}"
        )
    cats = tuple(range(k)) if categories is None else _check_categories(categories)
    if len(cats) != k:
        raise StudyvalError(f"categories has {len(cats)} labels but the table is {k} x {k}")
    w, kind = _weight_matrix(weights, k)
    n = int(table.sum())
    if n < 2:
        raise EstimationError(f"kappa needs at least two rated cases, got {n}")
    kappa, var, var0, po, pe = _kappa_core(table, w)
    se, se0 = math.sqrt(var), math.sqrt(var0)
    z_crit = _z(alpha)
    if se == 0.0:
        warnings.warn(
            "the standard error of kappa is zero (e.g. perfect agreement); "
            "the Wald interval has zero width",
            StatisticalWarning,
            stacklevel=2,
        )
    if se0 > 0.0:
        z = kappa / se0
        p_value = float(2.0 * stats.norm.sf(abs(z)))
    else:
        warnings.warn(
            "the null standard error of kappa is zero; z and p_value are undefined (nan)",
            StatisticalWarning,
            stacklevel=2,
        )
        z, p_value = math.nan, math.nan
    return KappaResult(
        estimate=float(kappa),
        se=se,
        se_null=se0,
        ci_low=float(max(-1.0, kappa - z_crit * se)),
        ci_high=float(min(1.0, kappa + z_crit * se)),
        ci_level=1.0 - alpha,
        z=float(z),
        p_value=p_value,
        n=n,
        n_categories=k,
        n_agree=int(np.trace(table)),
        weights=kind,
        observed_agreement=po,
        expected_agreement=pe,
        method="Fleiss-Cohen-Everitt asymptotic",
        categories=cats,
        counts=tuple(tuple(int(v) for v in row) for row in table),
        weight_matrix=tuple(tuple(float(v) for v in row) for row in w),
    )


def weighted_kappa(
    rater_a: Any,
    rater_b: Any,
    *,
    weights: str | Any | None = None,
    categories: Sequence[Any] | None = None,
    alpha: float = 0.05,
    clusters: Any = None,
    ci_method: str | None = None,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> KappaResult:
    r"""Cohen's kappa between two raters, unweighted or weighted, with a confidence interval.

    Parameters
    ----------
    rater_a, rater_b : array-like, shape (n,)
        Category labels given by the two raters to the same :math:`n` cases,
        in the same order. Missing labels are an error.
    weights : {None, "linear", "quadratic"} or array-like, shape (k, k)
        ``None`` for unweighted kappa; see :func:`kappa_from_table`.
    categories : sequence, optional
        The categories in their order on the scale, e.g. ``[0, 1, 2, 3, 4]``
        for the Kellgren-Lawrence grade. A label outside them is an error;
        categories nobody used still count: an unused grade in the middle of
        the scale changes the distance between the grades either side of it
        (linear and quadratic kappa do not change when only the end of the
        scale is unused, since they are invariant to rescaling the
        disagreement weights). **Required for weighted kappa**: inferring the
        scale from the data would drop unused grades and silently change the
        weights. For unweighted kappa the default is the sorted set of
        observed labels (unweighted kappa depends neither on unused
        categories nor on their order).
    alpha : float
        One minus the confidence level.
    clusters : array-like, shape (n,), optional
        Patient id of every rated case when a patient contributes several
        (e.g. both knees). The interval then comes from a patient-level
        (cluster) bootstrap, :func:`studyval.analysis.resampling.bootstrap`:
        resample :math:`r` draws patients with replacement, weights every
        case by the number of times its patient was drawn, and recomputes
        :math:`\hat\kappa_w` from the weighted table
        :math:`n^*_{ij} = \sum_l w_{rl}[a_l = i, b_l = j]` (Davison & Hinkley
        1997, §3.8, doi:10.1017/CBO9780511802843). A resample where kappa is
        undefined (expected agreement 1) counts as failed. See
        :class:`KappaResult` for what changes in the result.
    ci_method : {"percentile", "bca"}, optional
        The bootstrap interval, with ``clusters`` only (default
        ``"percentile"``). Without clusters the interval is always the
        Fleiss-Cohen-Everitt Wald interval and ``ci_method`` must be left out.
    n_resamples : int, optional
        Bootstrap resamples (default 2000); only with ``clusters``.
    seed : int, optional
        Bootstrap seed; required with ``clusters``, refused without.

    Returns
    -------
    KappaResult
        Estimate, Fleiss-Cohen-Everitt (1969) standard error and Wald interval,
        the test of :math:`\kappa_w = 0` with the null standard error, the
        counts table and the weights (with ``clusters``: the bootstrap SE and
        interval instead, no test). Formulas in :class:`KappaResult`.

    Raises
    ------
    StudyvalError
        Unequal lengths, a missing label, a label outside ``categories``,
        weights without ``categories``, or an invalid ``weights``; bootstrap
        options without ``clusters``, a ``ci_method`` other than
        ``"percentile"``/``"bca"`` or no ``seed`` with them; bad ``clusters``.
    EstimationError
        Kappa is undefined (both raters used one identical category
        throughout); with ``clusters``, fewer than 2 patients or kappa
        undefined in all resamples.

    Warns
    -----
    StatisticalWarning
        A zero standard error; with ``clusters``, kappa undefined in more than
        1 % of the resamples.

    Notes
    -----
    Agrees with ``psych::cohen.kappa`` (R) for the estimates and for the
    unweighted interval. For the *weighted* standard error ``psych`` 2.2.9 uses
    :math:`p_{j\cdot}\sum_k w_{jk}` where Fleiss et al. have
    :math:`\bar w_{\cdot j} = \sum_i p_{i\cdot} w_{ij}` (``rowSums(w * rs)``
    instead of ``colSums(w * rs)``); the result here agrees with the formula,
    with ``statsmodels.stats.inter_rater.cohens_kappa`` and with the numerical
    delta-method variance. The point estimate equals
    ``sklearn.metrics.cohen_kappa_score(a, b, labels=categories, weights=...)``.
    With clusters, every bootstrap replicate equals ``psych::cohen.kappa`` of
    the resampled cases (the tests check the percentile limits against R
    with the same resamples).

    """
    from studyval.analysis.accuracy import _bootstrap_spec

    spec = _bootstrap_spec(
        clusters=clusters,
        ci_method=ci_method,
        n_resamples=n_resamples,
        seed=seed,
        analytic="the Fleiss-Cohen-Everitt Wald interval",
    )
    a = _check_labels(rater_a, "rater_a")
    b = _check_labels(rater_b, "rater_b")
    if len(a) != len(b):
        raise StudyvalError(
            f"rater_a has {len(a)} labels but rater_b has {len(b)}; both must rate the same cases"
        )
    if categories is None:
        if weights is not None:
            shown = weights if isinstance(weights, str) else "a matrix"
            raise StudyvalError(
                f"weights={shown!r} needs the ordered categories, e.g. categories=[0, 1, 2, 3, 4]: "
                "inferring them from the data would drop unused categories and change the weights"
            )
        try:
            cats = tuple(sorted(set(a) | set(b)))
        except TypeError as err:
            raise StudyvalError(
                "the labels cannot be sorted (mixed types); pass categories= explicitly"
            ) from err
        if len(cats) < 2:
            raise EstimationError(
                f"kappa is undefined: both raters used the single label {cats[0]!r} for every case"
            )
    else:
        cats = _check_categories(categories)
    index = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    codes = np.empty((2, len(a)), dtype=np.intp)
    for r, (name, labels) in enumerate((("rater_a", a), ("rater_b", b))):
        for pos, v in enumerate(labels):
            try:
                codes[r, pos] = index[v]
            except (KeyError, TypeError):
                raise StudyvalError(
                    f"{name} has label {v!r} at position {pos}, which is not among the "
                    f"categories {list(cats)!r}"
                ) from None
    table = np.zeros((k, k), dtype=np.int64)
    np.add.at(table, (codes[0], codes[1]), 1)
    if spec is None:
        return kappa_from_table(table, weights=weights, categories=cats, alpha=alpha)
    return _kappa_bootstrap(table, codes, weights, cats, alpha, spec)


def _kappa_bootstrap(
    table: np.ndarray,
    codes: np.ndarray,
    weights: Any,
    cats: tuple[Any, ...],
    alpha: float,
    spec: Any,
) -> KappaResult:
    """Kappa with a cluster-bootstrap interval (``weighted_kappa`` with ``clusters``)."""
    from studyval.analysis.resampling import bootstrap

    alpha = check_alpha(alpha)
    k = len(cats)
    w, kind = _weight_matrix(weights, k)
    n = int(table.sum())
    if n < 2:
        raise EstimationError(f"kappa needs at least two rated cases, got {n}")
    kappa, _, _, po, pe = _kappa_core(table.astype(np.float64), w)
    cell = codes[0] * k + codes[1]
    onehot = np.zeros((n, k * k))
    onehot[np.arange(n), cell] = 1.0
    wflat = w.reshape(-1)

    def statistic(wts: np.ndarray) -> np.ndarray:
        tab = (wts @ onehot).reshape(-1, k, k)
        p = tab / tab.sum(axis=(1, 2))[:, None, None]
        p_o = p.reshape(-1, k * k) @ wflat
        p_e = np.einsum("bi,ij,bj->b", p.sum(axis=2), w, p.sum(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(p_e < 1.0, (p_o - p_e) / (1.0 - p_e), np.nan)

    boot = bootstrap(
        statistic,
        n_rows=n,
        clusters=spec.clusters,
        n_resamples=spec.n_resamples,
        seed=spec.seed,
        alpha=alpha,
        method=spec.method,
    )
    if boot.se == 0.0:
        warnings.warn(
            "the bootstrap standard error of kappa is zero (e.g. perfect agreement in every "
            "resample); the interval has zero width",
            StatisticalWarning,
            stacklevel=3,
        )
    return KappaResult(
        estimate=float(kappa),
        se=boot.se,
        se_null=math.nan,
        ci_low=boot.ci_low,
        ci_high=boot.ci_high,
        ci_level=1.0 - alpha,
        z=math.nan,
        p_value=math.nan,
        n=n,
        n_categories=k,
        n_agree=int(np.trace(table)),
        weights=kind,
        observed_agreement=po,
        expected_agreement=pe,
        method=spec.label,
        categories=cats,
        counts=tuple(tuple(int(v) for v in row) for row in table),
        weight_matrix=tuple(tuple(float(v) for v in row) for row in w),
        n_clusters=boot.n_clusters,
        n_resamples=boot.n_resamples,
        seed=boot.seed,
        bootstrap=boot,
    )


def cohen_kappa(
    rater_a: Any,
    rater_b: Any,
    *,
    categories: Sequence[Any] | None = None,
    alpha: float = 0.05,
    clusters: Any = None,
    ci_method: str | None = None,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> KappaResult:
    """Unweighted Cohen's kappa: :func:`weighted_kappa` with ``weights=None``.

    Cohen (1960), Educ Psychol Meas 20:37-46, doi:10.1177/001316446002000104;
    standard error of Fleiss, Cohen & Everitt (1969), doi:10.1037/h0028106.
    See :func:`weighted_kappa` for parameters (the cluster bootstrap
    included), return value and errors.
    """
    return weighted_kappa(
        rater_a,
        rater_b,
        weights=None,
        categories=categories,
        alpha=alpha,
        clusters=clusters,
        ci_method=ci_method,
        n_resamples=n_resamples,
        seed=seed,
    )
