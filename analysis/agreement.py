r"""Agreement between raters and between methods of measurement.

* :func:`weighted_kappa` / :func:`cohen_kappa` / :func:`kappa_from_table` --
  Cohen's kappa for two raters on an ordered categorical scale, unweighted or
  with linear / quadratic agreement weights, with the large-sample standard
  errors of Fleiss, Cohen & Everitt (1969), or with ``clusters=`` (several
  rated units per patient) a patient-level cluster-bootstrap interval
  (:mod:`studyval.analysis.resampling`).
* :func:`icc` -- the six intraclass correlations of Shrout & Fleiss (1979)
  from a two-way ANOVA, with the F-based confidence intervals of
  ``psych::ICC`` (McGraw & Wong 1996 for ICC(A,1)).
* :func:`bland_altman` -- bias and limits of agreement between two methods
  (Bland & Altman 1986, 1999), with interval estimates of each limit, a
  proportional-bias regression, and the Bland & Altman (2007) analysis for
  several measurement pairs per patient.

Every function takes plain arrays or a long table, validates them (a label
outside the declared categories, a missing rating, unequal lengths are errors
that name the position), and returns a frozen :class:`~studyval.results.Result`.
Figures are drawn from the tables these results return
(:mod:`studyval.figures.agreement`), never here.
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

from studyval.analysis._checks import check_alpha, check_option, check_scores
from studyval.analysis._checks import z_critical as _z
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result, results_frame

__all__ = [
    "BlandAltmanResult",
    "ICCForm",
    "ICCResult",
    "KappaResult",
    "bland_altman",
    "cohen_kappa",
    "icc",
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


# =========================================================================== ICC

_ICC_FORMS = (
    # type, McGraw & Wong (1996) name, description
    ("ICC1", "ICC(1)", "one-way random effects, absolute agreement, single rater"),
    ("ICC2", "ICC(A,1)", "two-way random effects, absolute agreement, single rater"),
    ("ICC3", "ICC(C,1)", "two-way mixed effects, consistency, single rater"),
    ("ICC1k", "ICC(k)", "one-way random effects, absolute agreement, mean of k raters"),
    ("ICC2k", "ICC(A,k)", "two-way random effects, absolute agreement, mean of k raters"),
    ("ICC3k", "ICC(C,k)", "two-way mixed effects, consistency, mean of k raters"),
)


@dataclasses.dataclass(frozen=True)
class ICCForm(Result):
    r"""One of the six Shrout & Fleiss (1979) intraclass correlations.

    Attributes
    ----------
    type : str
        Shrout & Fleiss / ``psych`` name: ``ICC1``, ``ICC2``, ``ICC3``,
        ``ICC1k``, ``ICC2k``, ``ICC3k``.
    mcgraw_wong : str
        McGraw & Wong (1996) name: ``ICC(1)``, ``ICC(A,1)``, ``ICC(C,1)``,
        ``ICC(k)``, ``ICC(A,k)``, ``ICC(C,k)``.
    description : str
        Model, definition and unit in words.
    icc : float
        Point estimate (can be negative when between-target variation is
        smaller than error).
    f, df1, df2, p_value : float
        F test of :math:`H_0`: ICC = 0 (``MSR/MSW`` for the one-way forms,
        ``MSR/MSE`` for the two-way forms; upper tail).
    ci_low, ci_high : float
        F-based confidence limits (see :func:`icc`).
    ci_level : float
        :math:`1 - \alpha`.

    """

    type: str
    mcgraw_wong: str
    description: str
    icc: float
    f: float
    df1: float
    df2: float
    p_value: float
    ci_low: float
    ci_high: float
    ci_level: float


@dataclasses.dataclass(frozen=True)
class ICCResult(Result):
    r"""The six intraclass correlations from one balanced targets x raters table.

    ``result.table()`` gives the tidy six-row table; ``result["ICC2"]`` (or
    ``result["ICC(A,1)"]``) one form. :meth:`to_frame` gives the one-row
    summary of the ANOVA below.

    Attributes
    ----------
    n_targets, n_raters : int
        :math:`n` rated targets (patients, images) and :math:`k` raters.
    ms_targets, ms_raters, ms_error, ms_within : float
        Mean squares MSR (between targets, :math:`n - 1` df), MSC (between
        raters, :math:`k - 1` df), MSE (residual, :math:`(n-1)(k-1)` df) and
        MSW (within targets, one-way, :math:`n(k-1)` df).
    ci_level : float
        :math:`1 - \alpha`.
    forms : tuple of ICCForm
        ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k in that order.

    """

    n_targets: int
    n_raters: int
    ms_targets: float
    ms_raters: float
    ms_error: float
    ms_within: float
    ci_level: float
    forms: tuple[ICCForm, ...] = dataclasses.field(repr=False)

    def table(self) -> pd.DataFrame:
        """Tidy table, one row per form.

        Returns
        -------
        pandas.DataFrame
            Columns ``type, mcgraw_wong, description, icc, f, df1, df2,
            p_value, ci_low, ci_high, ci_level, n_targets, n_raters``.

        """
        frame = results_frame(list(self.forms))
        frame["n_targets"] = self.n_targets
        frame["n_raters"] = self.n_raters
        return frame

    def __getitem__(self, name: str) -> ICCForm:
        for form in self.forms:
            if name in (form.type, form.mcgraw_wong):
                return form
        names = [f.type for f in self.forms] + [f.mcgraw_wong for f in self.forms]
        check_option(name, names, "ICC form")
        raise AssertionError  # pragma: no cover - check_option raised


def _ratings_matrix(
    table: pd.DataFrame, targets: str, raters: str, ratings: str
) -> tuple[np.ndarray, list[Any], list[Any]]:
    if not isinstance(table, pd.DataFrame):
        raise StudyvalError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    for role, col in (("targets", targets), ("raters", raters), ("ratings", ratings)):
        if col not in table.columns:
            raise StudyvalError(
                f"{role}={col!r} is not a column of table (columns: {', '.join(map(str, table.columns))})"
            )
    for role, col in (("targets", targets), ("raters", raters)):
        bad = table[col].isna().to_numpy()
        if bad.any():
            raise StudyvalError(
                f"{role} column {col!r} is missing at row {int(np.flatnonzero(bad)[0])}"
            )
    values = pd.to_numeric(table[ratings], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"ratings column {ratings!r} has a missing or non-numeric value for target "
            f"{table[targets].iloc[i]!r}, rater {table[raters].iloc[i]!r} (row {i}): "
            f"{table[ratings].iloc[i]!r}; psych::ICC would switch to a mixed model (lmer) for "
            "incomplete data, which icc() does not do"
        )
    dup = table.duplicated(subset=[targets, raters], keep=False).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise StudyvalError(
            f"target {table[targets].iloc[i]!r} has more than one rating by rater "
            f"{table[raters].iloc[i]!r}; icc() needs exactly one rating per target and rater"
        )
    target_ids = list(pd.unique(table[targets]))
    rater_ids = list(pd.unique(table[raters]))
    wide = (
        pd.DataFrame({"t": table[targets].to_numpy(), "r": table[raters].to_numpy(), "y": values})
        .pivot(index="t", columns="r", values="y")
        .reindex(index=target_ids, columns=rater_ids)
    )
    y = wide.to_numpy(dtype=np.float64)
    missing = np.isnan(y)
    if missing.any():
        i, j = np.argwhere(missing)[0]
        raise StudyvalError(
            f"{int(missing.sum())} rating(s) missing from the targets x raters table; first: "
            f"target {target_ids[i]!r} has no rating by rater {rater_ids[j]!r}. icc() needs balanced "
            "data (psych::ICC would switch to a mixed model, lmer, whose estimates differ)"
        )
    if len(target_ids) < 2:
        raise StudyvalError(f"icc() needs at least two targets, got {len(target_ids)}")
    if len(rater_ids) < 2:
        raise StudyvalError(f"icc() needs at least two raters, got {len(rater_ids)}")
    return y, target_ids, rater_ids


def icc(
    table: pd.DataFrame,
    *,
    targets: str,
    raters: str,
    ratings: str,
    alpha: float = 0.05,
) -> ICCResult:
    r"""Intraclass correlations ICC1 .. ICC3k of Shrout & Fleiss (1979) with F-based intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table, one row per (target, rater) with a numeric rating. Every
        target must be rated exactly once by every rater (balanced design).
    targets, raters, ratings : str
        Column names of the rated object (patient, image), the rater and the
        rating.
    alpha : float
        One minus the confidence level.

    Returns
    -------
    ICCResult
        Tidy six-row table via :meth:`ICCResult.table`.

    Raises
    ------
    StudyvalError
        A column is absent, a rating is missing or non-numeric, a target lacks
        a rating by some rater (named in the message), a (target, rater) pair
        occurs twice, or there are fewer than two targets or raters.
    EstimationError
        The residual mean square is zero (every rater agrees perfectly up to a
        constant), so F and the intervals are undefined.

    Notes
    -----
    With :math:`y_{ij}` the rating of target :math:`i = 1..n` by rater
    :math:`j = 1..k`, the two-way ANOVA gives MSR (targets), MSC (raters), MSE
    (residual) and the one-way within-target mean square
    :math:`\mathrm{MSW} = (\mathrm{SSC} + \mathrm{SSE}) / (n(k-1))`. Then
    (Shrout & Fleiss 1979, Psychol Bull 86:420-428, doi:10.1037/0033-2909.86.2.420;
    McGraw & Wong 1996, Psychol Methods 1:30-46, doi:10.1037/1082-989X.1.1.30)

    .. math::

        \mathrm{ICC1} = \frac{\mathrm{MSR} - \mathrm{MSW}}{\mathrm{MSR} + (k-1)\mathrm{MSW}},\quad
        \mathrm{ICC2} = \frac{\mathrm{MSR} - \mathrm{MSE}}
            {\mathrm{MSR} + (k-1)\mathrm{MSE} + k(\mathrm{MSC} - \mathrm{MSE})/n},\quad
        \mathrm{ICC3} = \frac{\mathrm{MSR} - \mathrm{MSE}}{\mathrm{MSR} + (k-1)\mathrm{MSE}},

    and for the mean of :math:`k` raters
    :math:`\mathrm{ICC1k} = 1 - \mathrm{MSW}/\mathrm{MSR}`,
    :math:`\mathrm{ICC2k} = (\mathrm{MSR} - \mathrm{MSE}) / (\mathrm{MSR} +
    (\mathrm{MSC} - \mathrm{MSE})/n)`, :math:`\mathrm{ICC3k} = 1 -
    \mathrm{MSE}/\mathrm{MSR}`.

    Intervals, exactly as ``psych::ICC``: for ICC1/ICC3 with
    :math:`F = \mathrm{MSR}/\mathrm{MSW}` (resp. MSE) on :math:`(\nu_1, \nu_2)`
    df, :math:`F_L = F / F_{1-\alpha/2}(\nu_1, \nu_2)` and :math:`F_U = F\,
    F_{1-\alpha/2}(\nu_2, \nu_1)` give :math:`[(F_L - 1)/(F_L + k - 1),
    (F_U - 1)/(F_U + k - 1)]` and for the averages :math:`[1 - 1/F_L, 1 -
    1/F_U]`. ICC2 uses the Satterthwaite approximation of McGraw & Wong (1996,
    Table 7) with :math:`v` degrees of freedom,

    .. math::

        L = \frac{n(\mathrm{MSR} - F^* \mathrm{MSE})}
            {F^*[k\,\mathrm{MSC} + (kn - k - n)\mathrm{MSE}] + n\,\mathrm{MSR}},
        \quad F^* = F_{1-\alpha/2}(n - 1, v),

    the upper limit likewise with :math:`F_{1-\alpha/2}(v, n - 1)`, and ICC2k
    is the Spearman-Brown step-up :math:`kL / (1 + (k-1)L)` of those limits.

    Agreement: ``psych::ICC(x, lmer = FALSE)`` to rounding. ``psych``'s default
    ``lmer = TRUE`` estimates the variance components by REML, which equals
    the ANOVA estimates for balanced data unless a component estimate is
    negative (REML truncates it at zero); and with missing ratings it fits a
    mixed model to incomplete data, which this function refuses to do.

    """
    alpha = check_alpha(alpha)
    y, _, _ = _ratings_matrix(table, targets, raters, ratings)
    n, k = y.shape
    grand = y.mean()
    row = y.mean(axis=1)
    col = y.mean(axis=0)
    ss_r = k * float(((row - grand) ** 2).sum())
    ss_c = n * float(((col - grand) ** 2).sum())
    ss_e = float(((y - row[:, None] - col[None, :] + grand) ** 2).sum())
    df_r, df_c, df_e, df_w = n - 1, k - 1, (n - 1) * (k - 1), n * (k - 1)
    msr, msc, mse = ss_r / df_r, ss_c / df_c, ss_e / df_e
    msw = (ss_c + ss_e) / df_w
    ss_t = float(((y - grand) ** 2).sum())
    if ss_e <= 1e-12 * ss_t or ss_t == 0.0:
        raise EstimationError(
            "the residual mean square is zero (every rater's ratings differ from the others' by a "
            "constant), so the F statistics and intervals of the ICC are undefined"
        )
    q = 1.0 - alpha / 2.0

    icc1 = (msr - msw) / (msr + (k - 1) * msw)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    icc1k = (msr - msw) / msr
    icc2k = (msr - mse) / (msr + (msc - mse) / n)
    icc3k = (msr - mse) / msr

    f1 = msr / msw
    p1 = float(stats.f.sf(f1, df_r, df_w))
    f1l = f1 / stats.f.ppf(q, df_r, df_w)
    f1u = f1 * stats.f.ppf(q, df_w, df_r)
    f3 = msr / mse
    p3 = float(stats.f.sf(f3, df_r, df_e))
    f3l = f3 / stats.f.ppf(q, df_r, df_e)
    f3u = f3 * stats.f.ppf(q, df_e, df_r)

    fj = msc / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    fs_u = stats.f.ppf(q, n - 1, v)
    fs_l = stats.f.ppf(q, v, n - 1)
    l2 = n * (msr - fs_u * mse) / (fs_u * (k * msc + (k * n - k - n) * mse) + n * msr)
    u2 = n * (fs_l * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fs_l * msr)

    values = {
        "ICC1": (icc1, f1, df_r, df_w, p1, (f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
        "ICC2": (icc2, f3, df_r, df_e, p3, l2, u2),
        "ICC3": (icc3, f3, df_r, df_e, p3, (f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
        "ICC1k": (icc1k, f1, df_r, df_w, p1, 1 - 1 / f1l, 1 - 1 / f1u),
        "ICC2k": (
            icc2k,
            f3,
            df_r,
            df_e,
            p3,
            l2 * k / (1 + l2 * (k - 1)),
            u2 * k / (1 + u2 * (k - 1)),
        ),
        "ICC3k": (icc3k, f3, df_r, df_e, p3, 1 - 1 / f3l, 1 - 1 / f3u),
    }
    forms = tuple(
        ICCForm(
            type=name,
            mcgraw_wong=mw,
            description=desc,
            icc=float(values[name][0]),
            f=float(values[name][1]),
            df1=float(values[name][2]),
            df2=float(values[name][3]),
            p_value=float(values[name][4]),
            ci_low=float(values[name][5]),
            ci_high=float(values[name][6]),
            ci_level=1.0 - alpha,
        )
        for name, mw, desc in _ICC_FORMS
    )
    return ICCResult(
        n_targets=n,
        n_raters=k,
        ms_targets=msr,
        ms_raters=msc,
        ms_error=mse,
        ms_within=msw,
        ci_level=1.0 - alpha,
        forms=forms,
    )


# =========================================================================== Bland-Altman


@dataclasses.dataclass(frozen=True)
class BlandAltmanResult(Result):
    r"""Bias and limits of agreement between two methods of measurement.

    With differences :math:`d_i = a_i - b_i` and means :math:`m_i = (a_i +
    b_i)/2` of :math:`n` measurement pairs, bias :math:`\bar d`, standard
    deviation :math:`s` (divisor :math:`n - 1`) and :math:`z = \Phi^{-1}(1 -
    (1 - c)/2)` for limits meant to cover a proportion :math:`c` of differences
    (:math:`z = 1.959964` for :math:`c = 0.95`), the limits of agreement are
    :math:`\bar d \pm z s` (Bland & Altman 1986, Lancet 327:307-310,
    doi:10.1016/S0140-6736(86)90837-8; 1999, Stat Methods Med Res 8:135-160,
    doi:10.1177/096228029900800204).

    Intervals (level :math:`1 - \alpha`):

    * bias: :math:`\bar d \pm t_{1-\alpha/2,\,n-1}\, s/\sqrt n`;
    * limits, ``ci_method="approximate"``: :math:`\bar d \pm z s \pm
      t_{1-\alpha/2,\,n-1} \sqrt{3 s^2 / n}` (Bland & Altman 1986, 1999; the
      factor 3 approximates :math:`1 + z^2/2` for :math:`z \approx 2`);
    * limits, ``ci_method="exact"``: :math:`\bar d + s\, t'_{q}/\sqrt n` for
      the upper limit with :math:`t'_q` the :math:`q = \alpha/2, 1-\alpha/2`
      quantiles of the noncentral :math:`t` distribution with :math:`n - 1`
      degrees of freedom and noncentrality :math:`z\sqrt n`, mirrored for the
      lower limit (Carkeet 2015, Optom Vis Sci 92:e71-e80,
      doi:10.1097/OPX.0000000000000513); exact under normally distributed
      differences;
    * ``ci_method="bootstrap"`` (several pairs per patient): cluster-bootstrap
      BCa intervals of bias and limits (see :func:`bland_altman`).

    Proportional bias: least-squares regression of :math:`d` on :math:`m`
    (Bland & Altman 1999, §3.2); ``slope`` and its two-sided p-value for
    :math:`H_0`: slope = 0 (t with :math:`n - 2` df; with clusters, a
    cluster-robust standard error and t with :math:`G - 1` df).

    Attributes
    ----------
    n : int
        Measurement pairs.
    n_clusters : int
        Patients (equal to ``n`` without clusters).
    bias, bias_se, bias_ci_low, bias_ci_high : float
        Mean difference (a - b), its standard error and interval.
    bias_p_value : float
        Paired t test of bias = 0 (NaN with clusters: use the interval).
    sd : float
        Standard deviation of the differences (with clusters, the total SD
        :math:`\sqrt{\sigma^2_b + \sigma^2_w}` of Bland & Altman 2007).
    sd_between, sd_within : float
        With clusters, the between- and within-patient SDs of the differences;
        NaN without clusters.
    loa_coverage, loa_z : float
        Intended coverage :math:`c` of the limits and the normal quantile :math:`z`.
    lower_loa, upper_loa : float
        :math:`\bar d \mp z s`.
    lower_loa_ci_low, lower_loa_ci_high, upper_loa_ci_low, upper_loa_ci_high : float
        Confidence limits of each limit of agreement.
    lower_loa_se, upper_loa_se : float
        Standard errors of the limits: :math:`\sqrt{3 s^2/n}` (both) for
        ``"approximate"``, bootstrap SEs for ``"bootstrap"``, NaN for ``"exact"``.
    ci_level : float
        :math:`1 - \alpha`.
    ci_method : str
        ``"approximate"``, ``"exact"`` or ``"bootstrap"``.
    method : str
        ``"paired"`` (one pair per patient) or ``"repeated pairs (Bland-Altman 2007)"``.
    slope, slope_se, slope_p_value, intercept : float
        Regression of difference on mean.
    n_resamples : int or None
        Bootstrap resamples (None without clusters).
    seed : int or None
        Bootstrap seed (None without clusters).
    mean, difference : tuple of float
        Per-pair :math:`m_i` and :math:`d_i` (see :meth:`points_frame`).
    clusters : tuple or None
        Per-pair patient id, if given.

    """

    n: int
    n_clusters: int
    bias: float
    bias_se: float
    bias_ci_low: float
    bias_ci_high: float
    bias_p_value: float
    sd: float
    sd_between: float
    sd_within: float
    loa_coverage: float
    loa_z: float
    lower_loa: float
    upper_loa: float
    lower_loa_ci_low: float
    lower_loa_ci_high: float
    upper_loa_ci_low: float
    upper_loa_ci_high: float
    lower_loa_se: float
    upper_loa_se: float
    ci_level: float
    ci_method: str
    method: str
    slope: float
    slope_se: float
    slope_p_value: float
    intercept: float
    n_resamples: int | None
    seed: int | None
    mean: tuple[float, ...] = dataclasses.field(repr=False)
    difference: tuple[float, ...] = dataclasses.field(repr=False)
    clusters: tuple[Any, ...] | None = dataclasses.field(default=None, repr=False)

    def table(self) -> pd.DataFrame:
        """Tidy summary: bias, limits of agreement and proportional-bias slope.

        Returns
        -------
        pandas.DataFrame
            One row per ``quantity`` (``bias``, ``lower_loa``, ``upper_loa``,
            ``slope``) with columns ``quantity, estimate, se, ci_low, ci_high,
            p_value, ci_level, ci_method, loa_coverage, n, n_clusters``. The
            slope row has a t interval (cluster-robust with clusters).

        """
        if self.n_clusters < self.n:
            t_slope = stats.t.ppf(0.5 + self.ci_level / 2.0, self.n_clusters - 1)
        else:
            t_slope = stats.t.ppf(0.5 + self.ci_level / 2.0, self.n - 2)
        rows = [
            (
                "bias",
                self.bias,
                self.bias_se,
                self.bias_ci_low,
                self.bias_ci_high,
                self.bias_p_value,
            ),
            (
                "lower_loa",
                self.lower_loa,
                self.lower_loa_se,
                self.lower_loa_ci_low,
                self.lower_loa_ci_high,
                math.nan,
            ),
            (
                "upper_loa",
                self.upper_loa,
                self.upper_loa_se,
                self.upper_loa_ci_low,
                self.upper_loa_ci_high,
                math.nan,
            ),
            (
                "slope",
                self.slope,
                self.slope_se,
                self.slope - t_slope * self.slope_se,
                self.slope + t_slope * self.slope_se,
                self.slope_p_value,
            ),
        ]
        frame = pd.DataFrame(
            rows, columns=["quantity", "estimate", "se", "ci_low", "ci_high", "p_value"]
        )
        frame["ci_level"] = self.ci_level
        frame["ci_method"] = [self.ci_method, self.ci_method, self.ci_method, "t"]
        frame["loa_coverage"] = self.loa_coverage
        frame["n"] = self.n
        frame["n_clusters"] = self.n_clusters
        return frame

    def points_frame(self) -> pd.DataFrame:
        """Per-pair coordinates of the Bland-Altman plot.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean, difference`` (and ``cluster`` when clusters were
            given), one row per pair in input order.

        """
        frame = pd.DataFrame({"mean": self.mean, "difference": self.difference})
        if self.clusters is not None:
            frame["cluster"] = list(self.clusters)
        return frame


def _check_pairs(method_a: Any, method_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = check_scores(method_a, None, name="method_a")
    b = check_scores(method_b, None, name="method_b")
    if a.shape[0] != b.shape[0]:
        raise StudyvalError(
            f"method_a has {a.shape[0]} values but method_b has {b.shape[0]}; "
            "both must measure the same cases in the same order"
        )
    if a.shape[0] < 3:
        raise EstimationError(
            f"Bland-Altman analysis needs at least 3 measurement pairs, got {a.shape[0]}"
        )
    return a, b


def _proportional_bias(
    d: np.ndarray, m: np.ndarray, groups: np.ndarray | None
) -> tuple[float, float, float, float]:
    """Slope, its SE and p-value, and intercept of the regression of d on m."""
    sxx = float(((m - m.mean()) ** 2).sum())
    if not sxx > 0.0:
        warnings.warn(
            "all pair means are equal, so the regression of difference on mean (proportional "
            "bias) is undefined; slope, its SE and p-value are NaN",
            StatisticalWarning,
            stacklevel=3,
        )
        return math.nan, math.nan, math.nan, math.nan
    if groups is None:
        fit = stats.linregress(m, d)
        return float(fit.slope), float(fit.stderr), float(fit.pvalue), float(fit.intercept)
    # OLS with the cluster-robust (CR1) sandwich variance, t with G - 1 df: what
    # statsmodels' OLS(...).fit(cov_type="cluster", use_t=True) reports.
    x = np.column_stack([np.ones_like(m), m])
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ (x.T @ d)
    resid = d - x @ beta
    g = int(groups.max()) + 1
    scores = np.zeros((g, 2))
    np.add.at(scores, groups, x * resid[:, None])
    n_obs = d.size
    factor = g / (g - 1.0) * (n_obs - 1.0) / (n_obs - 2.0)
    cov = factor * xtx_inv @ (scores.T @ scores) @ xtx_inv
    se = math.sqrt(cov[1, 1])
    p_value = float(2.0 * stats.t.sf(abs(beta[1] / se), g - 1)) if se > 0 else math.nan
    return float(beta[1]), se, p_value, float(beta[0])


def _repeated_pairs_statistic(d: np.ndarray, codes: np.ndarray, z: float):
    """Vectorised Bland & Altman (2007) bias and limits for weight rows (b, N)."""
    g = int(codes.max()) + 1
    first = np.zeros(g, dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.size)[::-1]  # first row of each cluster
    m_c = np.bincount(codes, minlength=g).astype(np.float64)
    sum_c = np.bincount(codes, weights=d, minlength=g)
    mean_c = sum_c / m_c
    ss_c = np.bincount(codes, weights=(d - mean_c[codes]) ** 2, minlength=g)

    def statistic(weights: np.ndarray) -> np.ndarray:
        u = np.take(weights, first, axis=1)  # (b, G): times each patient was drawn
        n_sub = u.sum(axis=1)
        n_obs = u @ m_c
        with np.errstate(invalid="ignore", divide="ignore"):
            dbar = (u @ sum_c) / n_obs
            ssb = u @ (m_c * mean_c**2) - n_obs * dbar**2
            ssw = u @ ss_c
            msb = ssb / (n_sub - 1.0)
            msw = ssw / (n_obs - n_sub)
            divisor = (n_obs**2 - u @ (m_c**2)) / ((n_sub - 1.0) * n_obs)
            var_b = np.maximum((msb - msw) / divisor, 0.0)
            sd = np.sqrt(var_b + msw)
        return np.column_stack(
            [dbar, dbar - z * sd, dbar + z * sd, sd, np.sqrt(var_b), np.sqrt(msw)]
        )

    return statistic


def bland_altman(
    method_a: Any,
    method_b: Any,
    *,
    alpha: float = 0.05,
    loa_coverage: float | None = None,
    ci_method: str | None = None,
    clusters: Any = None,
    n_resamples: int = 2000,
    seed: int | None = None,
) -> BlandAltmanResult:
    r"""Bland-Altman analysis: bias, limits of agreement with intervals, proportional bias.

    Parameters
    ----------
    method_a, method_b : array-like of float, shape (n,)
        The same quantity measured by the two methods on the same cases (in
        the same order), e.g. vertebral height in mm by the model and by a
        radiologist. Differences are ``method_a - method_b``; finite values only.
    alpha : float
        One minus the confidence level of every interval.
    loa_coverage : float, optional
        Proportion of differences the limits of agreement should contain;
        the limits are :math:`\bar d \pm z s` with :math:`z = \Phi^{-1}(1 - (1 -
        c)/2)`. Default ``1 - alpha`` (0.95: :math:`z = 1.959964`, the
        "1.96" of Bland & Altman).
    ci_method : {"approximate", "exact", "bootstrap"}, optional
        Interval for the limits. Without clusters: ``"approximate"``
        (default; Bland & Altman's :math:`\sqrt{3 s^2/n}`) or ``"exact"``
        (Carkeet 2015, noncentral t). With clusters only ``"bootstrap"``
        (the default then).
    clusters : array-like, shape (n,), optional
        Patient id of each pair when patients contribute several pairs (e.g.
        several vertebrae, or repeated scans). Switches to the Bland & Altman
        (2007) analysis for repeated pairs where the true value varies:
        bias :math:`\bar d` is the mean of all :math:`N` differences, and the
        SD of a single difference combines the between-patient variance
        :math:`\sigma^2_b` and the within-patient variance :math:`\sigma^2_w`
        from a one-way ANOVA of the differences on patient,

        .. math::

            \hat\sigma^2_w = \mathrm{MS}_w, \qquad
            \hat\sigma^2_b = \max\!\left(0, \frac{\mathrm{MS}_b - \mathrm{MS}_w}
                {(N^2 - \sum_i m_i^2)/((G - 1) N)}\right), \qquad
            s = \sqrt{\hat\sigma^2_b + \hat\sigma^2_w},

        with :math:`m_i` pairs from patient :math:`i` and :math:`G` patients
        (Bland & Altman 2007, J Biopharm Stat 17:571-582,
        doi:10.1080/10543400701329422). Intervals for bias and limits come
        from a cluster bootstrap (BCa, resampling patients) of this same
        estimator, using :func:`studyval.analysis.resampling.bootstrap_many`;
        Bland & Altman (2007) give no closed-form interval for the limits.
    n_resamples : int
        Bootstrap resamples (clusters only).
    seed : int, optional
        Bootstrap seed; required with clusters.

    Returns
    -------
    BlandAltmanResult
        ``result.table()`` is the tidy summary; ``result.points_frame()`` the
        plot coordinates. Formulas in :class:`BlandAltmanResult`.

    Raises
    ------
    StudyvalError
        Unequal lengths, a non-finite value, an invalid option (``ci_method``
        not allowed for the design, ``seed`` missing with clusters), or bad
        ``clusters``.
    EstimationError
        Fewer than 3 pairs; with clusters, fewer than 2 patients or no patient
        with 2 or more pairs (then every patient has one pair: leave out
        ``clusters``).

    Warns
    -----
    StatisticalWarning
        All pair means are equal (proportional-bias regression undefined).

    Notes
    -----
    Ignoring the clustering of several pairs per patient makes the limits too
    narrow when the bias differs between patients (Bland & Altman 2007); the
    clustered analysis reduces to the paired one when each patient has one
    pair, which is why that case is refused rather than silently switched.

    """
    alpha = check_alpha(alpha)
    coverage = 1.0 - alpha if loa_coverage is None else float(loa_coverage)
    if not 0.0 < coverage < 1.0:
        raise StudyvalError(f"loa_coverage must be in (0, 1), got {coverage}")
    z = _z(1.0 - coverage)
    a, b = _check_pairs(method_a, method_b)
    d = a - b
    m = (a + b) / 2.0
    n = d.size
    t_crit = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1))

    if clusters is None:
        ci_method = check_option(
            "approximate" if ci_method is None else ci_method, ("approximate", "exact"), "ci_method"
        )
        bias = float(d.mean())
        sd = float(d.std(ddof=1))
        bias_se = sd / math.sqrt(n)
        bias_p = float(2.0 * stats.t.sf(abs(bias / bias_se), n - 1)) if bias_se > 0 else math.nan
        lower, upper = bias - z * sd, bias + z * sd
        if ci_method == "approximate":
            loa_se = math.sqrt(3.0 * sd**2 / n)
            lo_ci = (lower - t_crit * loa_se, lower + t_crit * loa_se)
            up_ci = (upper - t_crit * loa_se, upper + t_crit * loa_se)
        else:
            loa_se = math.nan
            q_lo, q_hi = stats.nct.ppf([alpha / 2.0, 1.0 - alpha / 2.0], n - 1, z * math.sqrt(n))
            up_ci = (bias + sd * q_lo / math.sqrt(n), bias + sd * q_hi / math.sqrt(n))
            lo_ci = (bias - sd * q_hi / math.sqrt(n), bias - sd * q_lo / math.sqrt(n))
        slope, slope_se, slope_p, intercept = _proportional_bias(d, m, None)
        return BlandAltmanResult(
            n=n,
            n_clusters=n,
            bias=bias,
            bias_se=bias_se,
            bias_ci_low=bias - t_crit * bias_se,
            bias_ci_high=bias + t_crit * bias_se,
            bias_p_value=bias_p,
            sd=sd,
            sd_between=math.nan,
            sd_within=math.nan,
            loa_coverage=coverage,
            loa_z=z,
            lower_loa=lower,
            upper_loa=upper,
            lower_loa_ci_low=float(lo_ci[0]),
            lower_loa_ci_high=float(lo_ci[1]),
            upper_loa_ci_low=float(up_ci[0]),
            upper_loa_ci_high=float(up_ci[1]),
            lower_loa_se=loa_se,
            upper_loa_se=loa_se,
            ci_level=1.0 - alpha,
            ci_method=ci_method,
            method="paired",
            slope=slope,
            slope_se=slope_se,
            slope_p_value=slope_p,
            intercept=intercept,
            n_resamples=None,
            seed=None,
            mean=tuple(m.tolist()),
            difference=tuple(d.tolist()),
            clusters=None,
        )

    from studyval.analysis.resampling import bootstrap_many

    if ci_method not in (None, "bootstrap"):
        raise StudyvalError(
            f"with clusters, ci_method must be 'bootstrap' (got {ci_method!r}): the approximate "
            "and exact intervals assume one independent pair per patient"
        )
    if seed is None:
        raise StudyvalError(
            "seed= is required with clusters: the intervals come from a cluster bootstrap and "
            "must be reproducible"
        )
    ids = np.asarray(clusters, dtype=object)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise StudyvalError(
            f"clusters must give one patient id per pair: expected {n} ids, got shape {ids.shape}"
        )
    missing = pd.isna(ids)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise StudyvalError(f"clusters has a missing patient id at position {i}")
    try:
        codes, uniques = pd.factorize(ids, sort=True)
    except TypeError as err:
        raise StudyvalError("cluster ids must be of one sortable type") from err
    g = len(uniques)
    if g < 2:
        raise EstimationError("Bland-Altman with clusters needs at least 2 patients, got 1")
    if g == n:
        raise EstimationError(
            "every patient contributes exactly one pair, so there is no within-patient variation "
            "to separate; call bland_altman without clusters"
        )
    codes = np.asarray(codes, dtype=np.intp)
    statistic = _repeated_pairs_statistic(d, codes, z)
    est = statistic(np.ones((1, n)))[0]
    boot = bootstrap_many(
        lambda w: statistic(w)[:, :3],
        names=["bias", "lower_loa", "upper_loa"],
        n_rows=n,
        clusters=codes,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method="bca",
    )
    slope, slope_se, slope_p, intercept = _proportional_bias(d, m, codes)
    bias_b, lower_b, upper_b = boot["bias"], boot["lower_loa"], boot["upper_loa"]
    return BlandAltmanResult(
        n=n,
        n_clusters=g,
        bias=float(est[0]),
        bias_se=bias_b.se,
        bias_ci_low=bias_b.ci_low,
        bias_ci_high=bias_b.ci_high,
        bias_p_value=math.nan,
        sd=float(est[3]),
        sd_between=float(est[4]),
        sd_within=float(est[5]),
        loa_coverage=coverage,
        loa_z=z,
        lower_loa=float(est[1]),
        upper_loa=float(est[2]),
        lower_loa_ci_low=lower_b.ci_low,
        lower_loa_ci_high=lower_b.ci_high,
        upper_loa_ci_low=upper_b.ci_low,
        upper_loa_ci_high=upper_b.ci_high,
        lower_loa_se=lower_b.se,
        upper_loa_se=upper_b.se,
        ci_level=1.0 - alpha,
        ci_method="bootstrap",
        method="repeated pairs (Bland-Altman 2007)",
        slope=slope,
        slope_se=slope_se,
        slope_p_value=slope_p,
        intercept=intercept,
        n_resamples=boot.n_resamples,
        seed=boot.seed,
        mean=tuple(m.tolist()),
        difference=tuple(d.tolist()),
        clusters=tuple(v.item() if isinstance(v, np.generic) else v for v in ids.tolist()),
    )
