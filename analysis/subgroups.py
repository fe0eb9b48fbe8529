r"""Subgroup analyses of discrimination and accuracy, with a test of heterogeneity (STARD 17).

One row per level of a grouping variable (site, sex, age band, vertebral
level, ...): the level's estimate with its interval and the counts behind it,
whether it could be estimated and, when not, why. The grouping's ``status``
(``"pre-specified"`` in the analysis plan, or ``"exploratory"``) is carried on
every row, so that a report labels post-hoc subgroups as exploratory
(STARD 2015 item 17; Bossuyt et al., BMJ 2015;351:h5527).

Independent subgroups (no ``clusters``)
---------------------------------------
Each level is analysed on its own cases: the AUC with its DeLong interval
(:func:`studyval.analysis.discrimination.auc`), or a proportion with its
binomial interval (:func:`studyval.analysis.proportions.proportion_ci`).
Heterogeneity across the :math:`K` estimable levels is tested with

* **AUC: Cochran's Q** (Cochran 1954, doi:10.2307/3001666) with
  inverse-variance weights :math:`w_i = 1/\mathrm{se}_i^2`,

  .. math::

      Q = \sum_{i=1}^K w_i(\hat\theta_i - \bar\theta)^2,\quad
      \bar\theta = \frac{\sum_i w_i\hat\theta_i}{\sum_i w_i},\quad
      Q \sim \chi^2_{K-1},\quad
      I^2 = \max\Big(0, \frac{Q - (K-1)}{Q}\Big)

  (Higgins & Thompson 2002, doi:10.1002/sim.1186). For :math:`K = 2`,
  :math:`Q = z^2` of the normal-theory unpaired comparison (Hanley & McNeil
  1983). A level whose DeLong SE is zero (perfect separation) has an infinite
  weight; it keeps its estimate but is left out of the test, and the test
  says so.
* **Proportions (sensitivity, specificity, PPV, NPV, accuracy): Pearson's
  chi-square test of homogeneity** of the :math:`K \times 2` table of
  successes and failures (e.g. for sensitivity: index-test positive and
  negative among the reference-standard positives of each level),
  :math:`X^2 = \sum (O - E)^2/E \sim \chi^2_{K-1}`. This is the score (Rao)
  test of the subgroup terms in the logistic model of the success indicator
  on subgroup, restricted to the measure's denominator (for sensitivity: a
  logistic model of index-test positivity on subgroup among the diseased). We
  chose it over the Wald test of that model and over Cochran's Q on the
  proportion scale because it stays defined when a level's proportion is 0
  or 1 (where the Wald SEs are zero or infinite). :math:`I^2` is reported for
  Cochran's Q only. A StatisticalWarning flags expected counts below 5.

Clustered data (``clusters``: e.g. vertebrae within patients)
-------------------------------------------------------------
When one patient contributes several rows, the rows are not independent, and
when the subgroups are defined at the row level (e.g. vertebral level
T12 / L1 / L2), the subgroups are not independent of one another either: the
same patients appear in several levels. DeLong and binomial intervals, and
Cochran's Q and Pearson's test, all assume independence and would be too
narrow / too liberal. With ``clusters`` every interval comes from the
**cluster bootstrap** (:func:`studyval.analysis.resampling.bootstrap`,
patients resampled with replacement, all their rows kept together), and
heterogeneity is a **bootstrap Wald test**: with :math:`\hat\theta` the
:math:`K` level estimates, :math:`\hat\Sigma` the covariance of their
bootstrap replicates (one joint resample of patients for all levels, so the
covariance between levels that share patients is estimated), and :math:`L`
the :math:`(K-1) \times K` matrix of consecutive differences,

.. math::

    W = (L\hat\theta)^\top (L\hat\Sigma L^\top)^{-1} (L\hat\theta)
    \sim \chi^2_{K-1} \text{ under } H_0: \theta_1 = \dots = \theta_K .

This is valid whether or not a patient contributes to several levels, so it
is used whenever ``clusters`` is given. :math:`I^2` is not defined for it.

Levels that cannot be estimated
-------------------------------
A level with no cases, a single class, too few cases per class for the
interval, or (with clusters) fewer than 2 patients keeps its row with
``estimable = False`` and the reason in words; its estimate and limits are
NaN and it is left out of the heterogeneity test. A test that cannot be
performed (fewer than 2 testable levels) says why. Missing group labels are
an error by default (count and first position named); ``missing="level"``
reports them as an explicit level ``"(missing)"``, which is shown but never
tested for heterogeneity (it is not a subgroup of the plan).

References
----------
Cochran WG (1954). The combination of estimates from different experiments.
Biometrics 10:101-129. doi:10.2307/3001666

Higgins JPT, Thompson SG (2002). Quantifying heterogeneity in a
meta-analysis. Stat Med 21:1539-1558. doi:10.1002/sim.1186

Hanley JA, McNeil BJ (1983). A method of comparing the areas under receiver
operating characteristic curves derived from the same cases. Radiology
148:839-843. doi:10.1148/radiology.148.3.6878708

Bossuyt PM, Reitsma JB, Bruns DE, et al. (2015). STARD 2015: an updated list
of essential items for reporting diagnostic accuracy studies. BMJ
351:h5527. doi:10.1136/bmj.h5527

Field CA, Welsh AH (2007). Bootstrapping clustered data. J R Stat Soc B
69:369-390. doi:10.1111/j.1467-9868.2007.00593.x
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

from . import resampling
from ._checks import check_alpha, check_binary_outcome, check_option, check_scores
from .discrimination import auc
from .proportions import CI_METHODS, proportion_ci
from .thresholds import DECISION_RULE, THRESHOLD_STATUSES, Threshold, check_threshold_value

__all__ = [
    "ACCURACY_MEASURES",
    "MISSING_LEVEL",
    "SUBGROUP_STATUSES",
    "HeterogeneityTest",
    "SubgroupEstimate",
    "SubgroupResult",
    "cochran_q",
    "subgroup_accuracy",
    "subgroup_auc",
]

#: Accepted values of ``status``.
SUBGROUP_STATUSES: tuple[str, ...] = ("pre-specified", "exploratory")
#: Proportions :func:`subgroup_accuracy` estimates.
ACCURACY_MEASURES: tuple[str, ...] = ("sensitivity", "specificity", "ppv", "npv", "accuracy")
#: The level that holds cases with a missing group label under ``missing="level"``.
MISSING_LEVEL = "(missing)"
_MISSING_RULES: tuple[str, ...] = ("error", "level")
_BOOTSTRAP_METHODS: tuple[str, ...] = ("bca", "percentile")

_TABLE_COLUMNS = [
    "grouping",
    "level",
    "row_type",
    "status",
    "measure",
    "n",
    "n_positive",
    "n_negative",
    "numerator",
    "denominator",
    "n_clusters",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "ci_level",
    "estimable",
    "reason",
    "method",
]


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class SubgroupEstimate(Result):
    r"""The estimate in one level of a grouping (or over all levels).

    ``estimate, ci_low, ci_high = row`` unpacks.

    Attributes
    ----------
    level : label
        The level (``"overall"`` for the row over all cases).
    n : int
        Cases in the level.
    n_positive, n_negative : int
        Reference-standard positives and negatives in the level.
    numerator, denominator : int or None
        Counts behind a proportion (``None`` for an AUC).
    n_clusters : int or None
        Distinct clusters (patients) in the level; ``None`` without clusters.
    estimate : float
        AUC or proportion; NaN when the level has no estimate (a level that
        has one but no cluster-bootstrap interval keeps it).
    se : float
        DeLong SE (AUC), binomial SE :math:`\sqrt{p(1-p)/n}` (proportion; for
        display, the interval is not built from it), or the bootstrap SE with
        clusters. NaN when not estimable.
    ci_low, ci_high : float
        Confidence limits; NaN when not estimable.
    ci_level : float
        ``1 - alpha``.
    estimable : bool
        False when the level has no cases, one class, too few cases or
        patients; ``reason`` says which.
    reason : str
        Empty when estimable; otherwise why not, in words.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    level: Any
    n: int
    n_positive: int
    n_negative: int
    numerator: int | None
    denominator: int | None
    n_clusters: int | None
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    estimable: bool
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class HeterogeneityTest(Result):
    r"""A test that an estimate is the same in every level of a grouping.

    ``statistic, p_value = test`` unpacks.

    Attributes
    ----------
    method : str
        ``"Cochran's Q (inverse-variance)"``, ``"Pearson chi-square (K x 2)"``
        or ``"cluster-bootstrap Wald"``.
    performed : bool
        False when fewer than 2 levels could be tested (``reason`` says why).
    statistic : float
        :math:`Q`, :math:`X^2` or :math:`W`; NaN when not performed.
    df : int
        Degrees of freedom (``K - 1``, or the rank of the bootstrap contrast
        covariance); 0 when not performed.
    p_value : float
        Upper-tail chi-square p-value; NaN when not performed.
    i_squared : float
        Higgins' :math:`I^2 = \max(0, (Q - df)/Q)` for Cochran's Q (0 when
        :math:`Q = 0`); NaN for the other tests and when not performed, with
        the reason in ``note``.
    levels : tuple
        The levels that entered the test.
    assumes_independence : bool
        True for Cochran's Q and Pearson's test (independent subgroups and
        cases); False for the cluster-bootstrap Wald test.
    reason : str
        Why the test was not performed; empty otherwise.
    note : str
        Caveats: levels left out and why, small expected counts, why
        :math:`I^2` is NaN.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("statistic", "p_value")

    method: str
    performed: bool
    statistic: float
    df: int
    p_value: float
    i_squared: float
    levels: tuple[Any, ...]
    assumes_independence: bool
    reason: str = ""
    note: str = ""


@dataclasses.dataclass(frozen=True)
class SubgroupResult(Result):
    """Estimates per level of a grouping, the overall estimate, and a heterogeneity test.

    Attributes
    ----------
    grouping : str
        Name of the grouping variable (e.g. ``"vertebral level"``).
    measure : str
        ``"auc"`` or one of :data:`ACCURACY_MEASURES`.
    status : {"pre-specified", "exploratory"}
        Whether the analysis plan named this subgroup analysis before the data
        were seen; carried to every row of :meth:`to_frame`.
    positive : label
        The positive class.
    levels : tuple of SubgroupEstimate
        One per level, in the order of the levels.
    overall : SubgroupEstimate
        The estimate over all cases (level ``"overall"``).
    heterogeneity : HeterogeneityTest
        Test of equal estimates across the estimable levels.
    ci_level : float
        ``1 - alpha``.
    method : str
        How the intervals were computed.
    clustered : bool
        Whether ``clusters`` were given (cluster bootstrap).
    threshold : float or None
        The threshold (accuracy measures only).
    threshold_status : str or None
        ``"pre-specified"`` or ``"exploratory"`` (accuracy measures only).
    decision_rule : str or None
        :data:`~studyval.analysis.thresholds.DECISION_RULE` (accuracy only).
    n_missing_group : int
        Cases whose group label was missing (reported as a level under
        ``missing="level"``; 0 otherwise).

    """

    grouping: str
    measure: str
    status: str
    positive: Any
    levels: tuple[SubgroupEstimate, ...] = dataclasses.field(repr=False)
    overall: SubgroupEstimate
    heterogeneity: HeterogeneityTest
    ci_level: float
    method: str
    clustered: bool
    threshold: float | None = None
    threshold_status: str | None = None
    decision_rule: str | None = None
    n_missing_group: int = 0

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per level, then the overall row.

        Columns ``grouping, level, row_type`` (``"subgroup"`` or
        ``"overall"``), ``status, measure, n, n_positive, n_negative,
        numerator, denominator, n_clusters`` (nullable integers; ``<NA>`` where
        a count does not apply), ``estimate, se, ci_low, ci_high, ci_level,
        estimable, reason, method``. This is the input of
        :func:`studyval.figures.subgroups.forest_figure`.
        """
        rows = []
        for row_type, est in [("subgroup", r) for r in self.levels] + [("overall", self.overall)]:
            d = est.to_dict()
            d.update(
                grouping=self.grouping,
                row_type=row_type,
                status=self.status,
                measure=self.measure,
                method=self.method,
                level=est.level,
            )
            rows.append(d)
        frame = pd.DataFrame(rows, columns=_TABLE_COLUMNS)
        frame["level"] = pd.Series([r["level"] for r in rows], dtype=object)
        for col in ("n", "n_positive", "n_negative", "numerator", "denominator", "n_clusters"):
            frame[col] = frame[col].astype("Int64")
        frame["estimable"] = frame["estimable"].astype(bool)
        return frame

    def heterogeneity_frame(self) -> pd.DataFrame:
        """The heterogeneity test as a one-row table (with ``grouping``, ``measure``, ``status``)."""
        d = self.heterogeneity.to_dict()
        d["levels"] = ", ".join(map(str, self.heterogeneity.levels))
        frame = pd.DataFrame([d])
        frame.insert(0, "grouping", self.grouping)
        frame.insert(1, "measure", self.measure)
        frame.insert(2, "status", self.status)
        return frame

    def level(self, value: Any) -> SubgroupEstimate:
        """The :class:`SubgroupEstimate` of level ``value``."""
        for r in self.levels:
            if r.level == value:
                return r
        raise StudyvalError(
            f"no level {value!r}; levels are {', '.join(repr(r.level) for r in self.levels)}"
        )


# --------------------------------------------------------------------------- heterogeneity


def _not_performed(method: str, reason: str, levels=(), *, independent: bool, note: str = ""):
    return HeterogeneityTest(
        method=method,
        performed=False,
        statistic=math.nan,
        df=0,
        p_value=math.nan,
        i_squared=math.nan,
        levels=tuple(levels),
        assumes_independence=independent,
        reason=reason,
        note=note,
    )


_Q_METHOD = "Cochran's Q (inverse-variance)"
_X2_METHOD = "Pearson chi-square (K x 2)"
_WALD_METHOD = "cluster-bootstrap Wald"


def cochran_q(estimates: Any, se: Any, *, labels: Sequence[Any] | None = None) -> HeterogeneityTest:
    r"""Cochran's Q test of equal effects across independent estimates, with :math:`I^2`.

    .. math::

        w_i = \frac{1}{\mathrm{se}_i^2},\quad
        \bar\theta = \frac{\sum_i w_i\hat\theta_i}{\sum_i w_i},\quad
        Q = \sum_{i=1}^K w_i(\hat\theta_i - \bar\theta)^2 \sim \chi^2_{K-1},\quad
        I^2 = \max\Big(0, \frac{Q - (K - 1)}{Q}\Big)

    (Cochran 1954, Biometrics 10:101-129, doi:10.2307/3001666; Higgins &
    Thompson 2002, Stat Med 21:1539-1558, doi:10.1002/sim.1186). :math:`I^2 =
    0` when :math:`Q = 0`. Agrees with ``metafor::rma(yi, sei = se, method =
    "FE")`` (``QE``, ``QEp``, ``I2 / 100``).

    Parameters
    ----------
    estimates : array-like of float, shape (K,)
        Independent estimates, ``K >= 2``, finite.
    se : array-like of float, shape (K,)
        Their standard errors, finite and > 0.
    labels : sequence, optional
        Names of the estimates (stored in ``levels``); default ``0..K-1``.

    Returns
    -------
    HeterogeneityTest

    Raises
    ------
    studyval.errors.StudyvalError
        Fewer than 2 estimates, lengths differ, a non-finite value or an SE
        that is not > 0 (position named).

    Examples
    --------
    >>> h = cochran_q([0.89, 0.42, 0.98], [0.065, 0.136, 0.023], labels=["A", "B", "C"])
    >>> round(h.statistic, 2), h.df, round(h.i_squared, 2)
    (17.65, 2, 0.89)

    """
    theta = check_scores(estimates, name="estimates")
    s = check_scores(se, theta.size, name="se")
    if theta.size < 2:
        raise StudyvalError(f"Cochran's Q needs at least 2 estimates, got {theta.size}")
    bad = s <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"se must be > 0 (an inverse-variance weight must be finite); position {i} is {s[i]}"
        )
    names = tuple(range(theta.size)) if labels is None else tuple(labels)
    if len(names) != theta.size:
        raise StudyvalError(f"labels has {len(names)} names but there are {theta.size} estimates")
    w = 1.0 / s**2
    pooled = float(np.sum(w * theta) / np.sum(w))
    q = float(np.sum(w * (theta - pooled) ** 2))
    df = theta.size - 1
    i2 = max(0.0, (q - df) / q) if q > 0 else 0.0
    return HeterogeneityTest(
        method=_Q_METHOD,
        performed=True,
        statistic=q,
        df=df,
        p_value=float(stats.chi2.sf(q, df)),
        i_squared=i2,
        levels=names,
        assumes_independence=True,
    )


def _pearson_homogeneity(
    successes: np.ndarray, trials: np.ndarray, labels: tuple[Any, ...], measure: str
) -> HeterogeneityTest:
    r"""Pearson's chi-square test that ``K`` independent proportions are equal."""
    x = successes.astype(np.float64)
    n = trials.astype(np.float64)
    table = np.column_stack([x, n - x])
    col = table.sum(axis=0)
    no_i2 = "I² is reported for Cochran's Q only"
    if col.min() == 0:
        which = "1" if col[1] == 0 else "0"
        return _not_performed(
            _X2_METHOD,
            f"every tested level has {measure} {which}: the proportions are identical and "
            "Pearson's chi-square is 0/0 (R's chisq.test returns NaN); no evidence of "
            "heterogeneity",
            labels,
            independent=True,
            note=no_i2,
        )
    expected = np.outer(n, col) / n.sum()
    x2 = float(np.sum((table - expected) ** 2 / expected))
    df = len(labels) - 1
    note = no_i2
    small = int(np.sum(expected < 5))
    if small:
        caveat = (
            f"{small} of {expected.size} expected counts are below 5: the chi-square "
            "approximation may be poor"
        )
        note = f"{caveat}; {note}"
        warnings.warn(f"subgroup heterogeneity of {measure}: {caveat}", StatisticalWarning, 3)
    return HeterogeneityTest(
        method=_X2_METHOD,
        performed=True,
        statistic=x2,
        df=df,
        p_value=float(stats.chi2.sf(x2, df)),
        i_squared=math.nan,
        levels=labels,
        assumes_independence=True,
        note=note,
    )


def _bootstrap_wald(
    theta: np.ndarray, replicates: np.ndarray, labels: tuple[Any, ...]
) -> HeterogeneityTest:
    r"""Wald test of equal level estimates from their joint bootstrap replicates (b, K)."""
    k = theta.size
    contrast = np.eye(k - 1, k) - np.eye(k - 1, k, 1)
    ok = np.all(np.isfinite(replicates), axis=1)
    reps = replicates[ok]
    note = "I² is not defined for the cluster-bootstrap Wald test"
    if reps.shape[0] < 2 * k:
        return _not_performed(
            _WALD_METHOD,
            f"only {reps.shape[0]} bootstrap replicates have every tested level estimable",
            labels,
            independent=False,
            note=note,
        )
    if not ok.all():
        note += (
            f"; {int((~ok).sum())} of {ok.size} bootstrap replicates left a tested level "
            "inestimable and were left out of the covariance"
        )
    sigma = np.cov(reps, rowvar=False, ddof=1).reshape(k, k)
    lt = contrast @ theta
    lsl = contrast @ sigma @ contrast.T
    w, u = np.linalg.eigh(lsl)
    keep = w > max(float(w.max()), 0.0) * 1e-10
    df = int(keep.sum())
    if df == 0:
        return _not_performed(
            _WALD_METHOD,
            "the bootstrap covariance of the level differences is zero",
            labels,
            independent=False,
            note=note,
        )
    proj = u.T @ lt
    stat = float(np.sum(proj[keep] ** 2 / w[keep]))
    if df < k - 1:
        note += f"; the contrast covariance has rank {df} < {k - 1}, df reduced"
    return HeterogeneityTest(
        method=_WALD_METHOD,
        performed=True,
        statistic=stat,
        df=df,
        p_value=float(stats.chi2.sf(stat, df)),
        i_squared=math.nan,
        levels=labels,
        assumes_independence=False,
        note=note,
    )


# --------------------------------------------------------------------------- input handling


@dataclasses.dataclass(frozen=True)
class _Grouping:
    codes: np.ndarray  # (N,) intp index into labels
    labels: tuple[Any, ...]
    n_missing: int
    missing_code: int | None  # code of the "(missing)" level, if any


def _is_missing(arr: np.ndarray) -> np.ndarray:
    return np.asarray(pd.isna(arr), dtype=bool)


def _check_groups(groups: Any, n: int, levels: Any, missing: str) -> _Grouping:
    check_option(missing, _MISSING_RULES, "missing")
    categories = None
    if isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        categories = list(groups.cat.categories)
    elif isinstance(groups, pd.Categorical):
        categories = list(groups.categories)
    arr = np.asarray(groups, dtype=object)
    if arr.ndim != 1:
        raise StudyvalError(f"groups must be one-dimensional, got shape {arr.shape}")
    if arr.size != n:
        raise StudyvalError(f"groups has {arr.size} values but y_true has {n}")
    miss = _is_missing(arr)
    n_missing = int(miss.sum())
    if n_missing and missing == "error":
        i = int(np.flatnonzero(miss)[0])
        raise StudyvalError(
            f"groups has {n_missing} missing label(s); first at position {i}. Fill them in, or "
            f"pass missing='level' to report them as a level named {MISSING_LEVEL!r}"
        )
    present = arr[~miss]
    if levels is not None:
        if isinstance(levels, (str, bytes)):
            raise StudyvalError(f"levels must be a sequence of group labels, got {levels!r}")
        labels = tuple(v.item() if isinstance(v, np.generic) else v for v in levels)
        if not labels:
            raise StudyvalError("levels is empty")
        if len(set(labels)) != len(labels):
            raise StudyvalError(f"levels must be distinct, got {labels!r}")
        if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in labels):
            raise StudyvalError("levels must not contain a missing value")
    elif categories is not None:
        labels = tuple(categories)
    else:
        uniq = pd.unique(present)
        try:
            labels = tuple(sorted(uniq.tolist()))
        except TypeError:
            labels = tuple(uniq.tolist())
    if missing == "level" and MISSING_LEVEL in labels:
        raise StudyvalError(
            f"{MISSING_LEVEL!r} is already a level; rename it or use missing='error'"
        )
    codes = np.full(n, -1, dtype=np.intp)
    codes[~miss] = pd.Index(list(labels), dtype=object).get_indexer(list(present))
    unknown = (codes < 0) & ~miss
    if unknown.any():
        i = int(np.flatnonzero(unknown)[0])
        raise StudyvalError(
            f"groups has {int(unknown.sum())} label(s) not in levels "
            f"({', '.join(map(repr, labels))}); first at position {i}: {arr[i]!r}"
        )
    missing_code = None
    if n_missing:
        missing_code = len(labels)
        labels = (*labels, MISSING_LEVEL)
        codes[miss] = missing_code
    return _Grouping(codes, labels, n_missing, missing_code)


def _check_clusters(clusters: Any, n: int) -> np.ndarray:
    arr = np.asarray(clusters, dtype=object)
    if arr.ndim != 1:
        raise StudyvalError(f"clusters must be one-dimensional, got shape {arr.shape}")
    if arr.size != n:
        raise StudyvalError(f"clusters has {arr.size} values but y_true has {n}")
    miss = _is_missing(arr)
    if miss.any():
        i = int(np.flatnonzero(miss)[0])
        raise StudyvalError(
            f"clusters has {int(miss.sum())} missing value(s); first at position {i}"
        )
    try:
        codes = pd.factorize(arr, sort=True)[0]
    except TypeError as exc:
        raise StudyvalError(
            f"cluster ids must be of one sortable type (all strings or all numbers): {exc}"
        ) from exc
    return np.asarray(codes, dtype=np.intp)


def _check_common(status: str, name: str, min_value: int, min_name: str, lowest: int) -> None:
    check_option(status, SUBGROUP_STATUSES, "status")
    if not isinstance(name, str) or not name.strip():
        raise StudyvalError(f"name must be a non-empty string, got {name!r}")
    if isinstance(min_value, bool) or not isinstance(min_value, (int, np.integer)):
        raise StudyvalError(f"{min_name} must be a whole number, got {min_value!r}")
    if min_value < lowest:
        raise StudyvalError(f"{min_name} must be >= {lowest}, got {min_value}")


def _negative_label(positive: Any, negative: str | None) -> str:
    if negative is None:
        return f"not {positive}"
    if not isinstance(negative, str) or not negative.strip():
        raise StudyvalError(f"negative must be a non-empty display label, got {negative!r}")
    return negative


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --------------------------------------------------------------------------- the statistics


def _row(level, n, n_pos, n_neg, n_clu, level_ci, *, num=None, den=None, **values):
    """A :class:`SubgroupEstimate`; without ``values`` an inestimable row (NaN)."""
    fields = dict(estimate=math.nan, se=math.nan, ci_low=math.nan, ci_high=math.nan)
    fields.update(estimable=False, reason="")
    fields.update(values)
    return SubgroupEstimate(
        level=level,
        n=n,
        n_positive=n_pos,
        n_negative=n_neg,
        numerator=num,
        denominator=den,
        n_clusters=n_clu,
        ci_level=level_ci,
        **fields,
    )


def _auc_reason(n: int, n_pos: int, n_neg: int, min_per_class: int, pos: str, neg: str) -> str:
    if n == 0:
        return "no cases in this level"
    if n_pos == 0 or n_neg == 0:
        present = f"{n} {neg}" if n_pos == 0 else f"{n} {pos}"
        return f"one class only ({present} cases): an AUC needs both classes"
    short = []
    if n_pos < min_per_class:
        short.append(f"fewer than {min_per_class} {pos} cases ({n_pos})")
    if n_neg < min_per_class:
        short.append(f"fewer than {min_per_class} {neg} cases ({n_neg})")
    if short:
        why = (
            "a DeLong SE needs at least 2 per class"
            if min_per_class == 2
            else f"min_per_class={min_per_class}"
        )
        return " and ".join(short) + f": {why}"
    return ""


def _denominator_text(measure: str, pos: str, neg: str, den: int, min_den: int) -> str:
    what = {
        "sensitivity": f"{pos} cases",
        "specificity": f"{neg} cases",
        "ppv": "index-test positive cases",
        "npv": "index-test negative cases",
        "accuracy": "cases",
    }[measure]
    if den == 0:
        return f"no {what}: {measure} is undefined"
    return f"fewer than {min_den} {what} ({den}): min_denominator={min_den}"


@dataclasses.dataclass(frozen=True)
class _Data:
    """Validated inputs shared by the per-level estimates."""

    measure: str
    is_pos: np.ndarray
    score: np.ndarray
    prop_masks: tuple[np.ndarray, np.ndarray] | None  # (success, denominator) for proportions
    clusters: np.ndarray | None  # raw ids, validated
    cluster_codes: np.ndarray | None
    alpha: float
    pos_label: str
    neg_label: str
    min_count: int
    ci_method: str
    n_resamples: int
    seed: Any
    bootstrap_method: str


def _estimate(d: _Data, level: Any, mask: np.ndarray) -> tuple[SubgroupEstimate, np.ndarray | None]:
    """The estimate of one level (``mask`` selects its rows) and, clustered, its replicates."""
    level_ci = 1.0 - d.alpha
    clustered = d.clusters is not None
    n = int(mask.sum())
    n_pos = int((d.is_pos & mask).sum())
    n_neg = n - n_pos
    n_clu = int(np.unique(d.cluster_codes[mask]).size) if clustered else None
    if d.measure == "auc":
        num = den = None
        why = _auc_reason(n, n_pos, n_neg, d.min_count, d.pos_label, d.neg_label)
    else:
        success, denominator = d.prop_masks
        num, den = int((success & mask).sum()), int((denominator & mask).sum())
        if n == 0:
            why = "no cases in this level"
        elif den < d.min_count:
            why = _denominator_text(d.measure, d.pos_label, d.neg_label, den, d.min_count)
        else:
            why = ""
    if not why and clustered and n_clu < 2:
        why = (
            f"{_plural(n_clu, 'cluster')} in this level: a cluster-bootstrap interval needs "
            "at least 2"
        )
    counts = (level, n, n_pos, n_neg, n_clu, level_ci)
    if why:
        return _row(*counts, num=num, den=den, reason=why), None

    if not clustered:
        if d.measure == "auc":
            r = auc(d.is_pos[mask], d.score[mask], positive=True, alpha=d.alpha)
            est, se, lo, hi = r.estimate, r.se, r.ci_low, r.ci_high
        else:
            r = proportion_ci(num, den, alpha=d.alpha, method=d.ci_method)
            est, lo, hi = r.estimate, r.ci_low, r.ci_high
            se = math.sqrt(est * (1.0 - est) / den)
        row = _row(*counts, num=num, den=den, estimate=est, se=se, ci_low=lo, ci_high=hi)
        return dataclasses.replace(row, estimable=True), None

    if d.measure == "auc":
        idx = np.flatnonzero(mask)
        auc_of = resampling.weighted_auc_statistic(d.is_pos[idx], d.score[idx])

        def statistic(weights: np.ndarray) -> np.ndarray:
            return auc_of(np.take(weights, idx, axis=1))

    else:
        success_in, denominator_in = success & mask, denominator & mask

        def statistic(weights: np.ndarray) -> np.ndarray:
            return resampling.weighted_proportion(success_in, denominator_in, weights)

    est = float(statistic(np.ones((1, d.is_pos.size)))[0])
    try:
        b = resampling.bootstrap(
            statistic,
            n_rows=d.is_pos.size,
            clusters=d.clusters,
            n_resamples=d.n_resamples,
            seed=d.seed,
            alpha=d.alpha,
            method=d.bootstrap_method,
        )
    except EstimationError as exc:
        reason = f"no cluster-bootstrap interval: {exc}"
        return _row(*counts, num=num, den=den, estimate=est, reason=reason), None
    row = _row(
        *counts, num=num, den=den, estimate=b.estimate, se=b.se, ci_low=b.ci_low, ci_high=b.ci_high
    )
    return dataclasses.replace(row, estimable=True), np.asarray(b.replicates, dtype=np.float64)


def _run(
    d: _Data, grouping: _Grouping
) -> tuple[list[SubgroupEstimate], SubgroupEstimate, HeterogeneityTest, str]:
    """Estimate per level and overall, then test heterogeneity. Shared by both entry points."""
    clustered = d.clusters is not None
    rows: list[SubgroupEstimate] = []
    replicate_cols: list[np.ndarray] = []
    tested: list[int] = []
    excluded: list[str] = []
    for j, label in enumerate(grouping.labels):
        row, reps = _estimate(d, label, grouping.codes == j)
        rows.append(row)
        if not row.estimable:
            continue
        if j == grouping.missing_code:
            excluded.append(f"{MISSING_LEVEL!r} (missing group label) is not a subgroup")
            continue
        if not clustered and d.measure == "auc" and row.se == 0.0:
            excluded.append(
                f"level {label!r} has a DeLong SE of 0 (AUC = {row.estimate:.4g}), so its "
                "inverse-variance weight is infinite"
            )
            continue
        tested.append(j)
        if reps is not None:
            replicate_cols.append(reps)
    overall, _ = _estimate(d, "overall", np.ones(d.is_pos.size, dtype=bool))

    labels = tuple(grouping.labels[j] for j in tested)
    if clustered:
        method = _WALD_METHOD
    else:
        method = _Q_METHOD if d.measure == "auc" else _X2_METHOD
    note = "; ".join(f"left out of the test: {e}" for e in excluded)
    n_levels = len(grouping.labels) - (grouping.missing_code is not None)
    if len(tested) < 2:
        if n_levels < 2:
            reason = "a single level: there is nothing to compare"
        else:
            n_estimable = sum(r.estimable for r in rows)
            reason = (
                f"{_plural(len(tested), 'level')} could be tested ({n_estimable} of "
                f"{len(rows)} estimable); a heterogeneity test needs at least 2"
            )
        test = _not_performed(method, reason, labels, independent=not clustered, note=note)
    else:
        theta = np.array([rows[j].estimate for j in tested])
        if clustered:
            test = _bootstrap_wald(theta, np.column_stack(replicate_cols), labels)
        elif d.measure == "auc":
            test = cochran_q(theta, [rows[j].se for j in tested], labels=labels)
        else:
            x = np.array([rows[j].numerator for j in tested])
            n = np.array([rows[j].denominator for j in tested])
            test = _pearson_homogeneity(x, n, labels, d.measure)
        if note:
            test = dataclasses.replace(test, note="; ".join(filter(None, [note, test.note])))
    if clustered:
        ci = f"cluster bootstrap ({d.bootstrap_method}, {d.n_resamples} resamples)"
    elif d.measure == "auc":
        ci = "DeLong"
    else:
        ci = d.ci_method
    return rows, overall, test, ci


def _check_bootstrap_options(
    clusters: Any, n_rows: int, seed: Any, n_resamples: Any, bootstrap_method: str
) -> np.ndarray | None:
    check_option(bootstrap_method, _BOOTSTRAP_METHODS, "bootstrap_method")
    if clusters is None:
        return None
    codes = _check_clusters(clusters, n_rows)
    if seed is None:
        raise StudyvalError(
            "seed is required with clusters: the cluster-bootstrap intervals must be reproducible"
        )
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, (int, np.integer)):
        raise StudyvalError(f"n_resamples must be a whole number, got {n_resamples!r}")
    return codes


def subgroup_auc(
    y_true: Any,
    y_score: Any,
    groups: Any,
    *,
    positive: Any,
    status: str,
    alpha: float = 0.05,
    name: str = "subgroup",
    levels: Sequence[Any] | None = None,
    missing: str = "error",
    min_per_class: int = 2,
    negative: str | None = None,
    clusters: Any = None,
    n_resamples: int = 2000,
    seed: Any = None,
    bootstrap_method: str = "bca",
) -> SubgroupResult:
    r"""AUC in each level of a grouping, with a test of heterogeneity across levels.

    Without ``clusters``, each level's AUC and DeLong interval equal
    :func:`studyval.analysis.discrimination.auc` on that level's cases, and
    heterogeneity is Cochran's Q with inverse-variance (DeLong) weights,

    .. math::

        Q = \sum_{i=1}^K \frac{(\hat\theta_i - \bar\theta)^2}{\mathrm{se}_i^2}
        \sim \chi^2_{K-1}, \qquad I^2 = \max\Big(0, \frac{Q - (K - 1)}{Q}\Big),

    over the :math:`K` estimable levels (Cochran 1954, doi:10.2307/3001666;
    Higgins & Thompson 2002, doi:10.1002/sim.1186). With ``clusters`` the
    intervals come from the cluster bootstrap and heterogeneity from the
    bootstrap Wald test (see :mod:`studyval.analysis.subgroups`).

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Reference-standard labels, two classes, both present overall.
    y_score : array-like of float, shape (N,)
        Scores, finite; higher = more likely positive.
    groups : array-like, shape (N,)
        Level of each case (a pandas categorical keeps its category order,
        including empty categories).
    positive : label
        The positive class. Required.
    status : {"pre-specified", "exploratory"}
        Whether the analysis plan named this subgroup analysis before the data
        were seen. Required; carried to every row.
    alpha : float, default 0.05
        Intervals have level ``1 - alpha``.
    name : str, default "subgroup"
        Name of the grouping variable, for tables and figures.
    levels : sequence, optional
        The levels in display order (e.g. from the plan). A level with no
        cases gets a row saying so; a label in ``groups`` outside ``levels`` is
        an error. Default: the categories of a categorical, else the sorted
        distinct labels.
    missing : {"error", "level"}, default "error"
        Missing group labels raise (count and first position named), or become
        the level ``"(missing)"``, shown last and never tested.
    min_per_class : int, default 2
        A level needs at least this many positives and negatives (at least 2:
        the DeLong variance divides by ``m - 1`` and ``n - 1``).
    negative : str, optional
        Display label of the negative class in reasons (default ``"not <positive>"``).
    clusters : array-like, shape (N,), optional
        Cluster (patient) of each row for clustered data, e.g. vertebrae of a
        patient; switches to the cluster bootstrap. Needs ``seed``.
    n_resamples : int, default 2000
        Bootstrap resamples (with ``clusters``).
    seed : int, optional
        Bootstrap seed; required with ``clusters``.
    bootstrap_method : {"bca", "percentile"}, default "bca"
        Bootstrap interval (with ``clusters``).

    Returns
    -------
    SubgroupResult
        ``.to_frame()`` has one row per level plus the overall row;
        ``.heterogeneity`` the test.

    Raises
    ------
    studyval.errors.EstimationError
        ``positive`` absent or one class only over all cases.
    studyval.errors.StudyvalError
        Missing group labels with ``missing="error"``; labels outside
        ``levels``; lengths differ; non-finite scores; bad options; clusters
        without a seed.

    Warns
    -----
    StatisticalWarning
        A level's DeLong SE is zero (that level is left out of Q).

    """
    alpha = check_alpha(alpha)
    _check_common(status, name, min_per_class, "min_per_class", 2)
    is_pos = check_binary_outcome(y_true, positive)
    score = check_scores(y_score, is_pos.size)
    neg_label = _negative_label(positive, negative)
    grouping = _check_groups(groups, is_pos.size, levels, missing)
    cluster_codes = _check_bootstrap_options(
        clusters, is_pos.size, seed, n_resamples, bootstrap_method
    )
    d = _Data(
        measure="auc",
        is_pos=is_pos,
        score=score,
        prop_masks=None,
        clusters=clusters if cluster_codes is not None else None,
        cluster_codes=cluster_codes,
        alpha=alpha,
        pos_label=str(positive),
        neg_label=neg_label,
        min_count=min_per_class,
        ci_method="",
        n_resamples=n_resamples,
        seed=seed,
        bootstrap_method=bootstrap_method,
    )
    rows, overall, test, ci = _run(d, grouping)
    return SubgroupResult(
        grouping=name,
        measure="auc",
        status=status,
        positive=positive,
        levels=tuple(rows),
        overall=overall,
        heterogeneity=test,
        ci_level=1.0 - alpha,
        method=ci,
        clustered=cluster_codes is not None,
        n_missing_group=grouping.n_missing,
    )


def subgroup_accuracy(
    y_true: Any,
    y_score: Any,
    groups: Any,
    *,
    positive: Any,
    threshold: float | Threshold,
    threshold_status: str,
    measure: str,
    status: str,
    alpha: float = 0.05,
    ci_method: str = "wilson",
    name: str = "subgroup",
    levels: Sequence[Any] | None = None,
    missing: str = "error",
    min_denominator: int = 1,
    negative: str | None = None,
    clusters: Any = None,
    n_resamples: int = 2000,
    seed: Any = None,
    bootstrap_method: str = "bca",
) -> SubgroupResult:
    r"""Sensitivity, specificity, PPV, NPV or accuracy in each level, with a heterogeneity test.

    Decision rule: index test positive iff score >= ``threshold``. For each
    level, the proportion :math:`x/n` (e.g. sensitivity: index-test positives
    :math:`x` among the :math:`n` reference-standard positives of the level)
    with its binomial interval (:func:`~studyval.analysis.proportions.proportion_ci`;
    the same numbers as :func:`~studyval.analysis.accuracy.diagnostic_accuracy`
    on the level's cases). Heterogeneity: Pearson's chi-square test of
    homogeneity of the :math:`K \times 2` table :math:`(x_i, n_i - x_i)` over
    the estimable levels,

    .. math::

        X^2 = \sum_{i=1}^K\sum_{c} \frac{(O_{ic} - E_{ic})^2}{E_{ic}}
        \sim \chi^2_{K-1},

    the score test of the subgroup terms in a logistic model of the success
    indicator on subgroup within the measure's denominator (chosen because it
    stays defined when a proportion is 0 or 1; see the module docstring).
    With ``clusters``: cluster bootstrap and bootstrap Wald test.

    Parameters
    ----------
    y_true, y_score, groups, positive, status, alpha, name, levels, missing, negative
        As for :func:`subgroup_auc`.
    threshold : float or Threshold
        Finite cut-off; a :class:`~studyval.analysis.thresholds.Threshold`
        must carry the status ``threshold_status``.
    threshold_status : {"pre-specified", "exploratory"}
        Required: whether the threshold was fixed before these data were seen.
    measure : {"sensitivity", "specificity", "ppv", "npv", "accuracy"}
        The proportion to estimate. Required.
    ci_method : str, default "wilson"
        Binomial interval (without clusters), one of
        :data:`~studyval.analysis.proportions.CI_METHODS`.
    min_denominator : int, default 1
        A level needs at least this many cases in the measure's denominator.
    clusters, n_resamples, seed, bootstrap_method
        As for :func:`subgroup_auc`.

    Returns
    -------
    SubgroupResult
        With ``threshold``, ``threshold_status`` and ``decision_rule`` set.

    Raises
    ------
    studyval.errors.EstimationError
        ``positive`` absent or one class only over all cases.
    studyval.errors.StudyvalError
        As for :func:`subgroup_auc`; unknown ``measure``; a Threshold whose
        status contradicts ``threshold_status``; a non-finite threshold.

    Warns
    -----
    StatisticalWarning
        Expected counts below 5 in Pearson's test.

    """
    alpha = check_alpha(alpha)
    check_option(measure, ACCURACY_MEASURES, "measure")
    check_option(threshold_status, THRESHOLD_STATUSES, "threshold_status")
    check_option(ci_method, CI_METHODS, "ci_method")
    _check_common(status, name, min_denominator, "min_denominator", 1)
    if isinstance(threshold, Threshold) and threshold.status != threshold_status:
        raise StudyvalError(
            f"threshold_status={threshold_status!r} contradicts the threshold, which is "
            f"{threshold.status}: a threshold derived from the data is always exploratory"
        )
    t = check_threshold_value(threshold)
    is_pos = check_binary_outcome(y_true, positive)
    score = check_scores(y_score, is_pos.size)
    neg_label = _negative_label(positive, negative)
    grouping = _check_groups(groups, is_pos.size, levels, missing)
    cluster_codes = _check_bootstrap_options(
        clusters, is_pos.size, seed, n_resamples, bootstrap_method
    )
    test_pos = score >= t
    correct = test_pos == is_pos
    prop_masks = {
        "sensitivity": (is_pos & test_pos, is_pos),
        "specificity": (~is_pos & ~test_pos, ~is_pos),
        "ppv": (is_pos & test_pos, test_pos),
        "npv": (~is_pos & ~test_pos, ~test_pos),
        "accuracy": (correct, np.ones(is_pos.size, dtype=bool)),
    }[measure]
    d = _Data(
        measure=measure,
        is_pos=is_pos,
        score=score,
        prop_masks=prop_masks,
        clusters=clusters if cluster_codes is not None else None,
        cluster_codes=cluster_codes,
        alpha=alpha,
        pos_label=str(positive),
        neg_label=neg_label,
        min_count=min_denominator,
        ci_method=ci_method,
        n_resamples=n_resamples,
        seed=seed,
        bootstrap_method=bootstrap_method,
    )
    rows, overall, test, ci = _run(d, grouping)
    return SubgroupResult(
        grouping=name,
        measure=measure,
        status=status,
        positive=positive,
        levels=tuple(rows),
        overall=overall,
        heterogeneity=test,
        ci_level=1.0 - alpha,
        method=ci,
        clustered=cluster_codes is not None,
        threshold=t,
        threshold_status=threshold_status,
        decision_rule=DECISION_RULE,
        n_missing_group=grouping.n_missing,
    )
