r"""Survival analysis: Kaplan-Meier, log-rank, Cox regression, PH test, concordance.

Conventions (read these first)
------------------------------
* **Risk, higher = worse.** Every function that takes a prediction takes a
  *risk* score: a higher value means an earlier expected event (a Cox linear
  predictor, a predicted event probability at a horizon, a network's logit).
  This is ``reverse = TRUE`` in R's ``survival::concordance``, the
  ``estimate`` of scikit-survival, and the *negative* of what lifelines'
  ``concordance_index`` expects.
* ``time`` is the follow-up time (any unit, finite, ``>= 0``; a time of 0 is
  allowed as in R's ``Surv``), ``event`` is 1 (or ``True``) for an observed
  event and 0 (``False``) for right censoring. Other codes, missing values and
  negative times are errors naming the position.
* Times are compared **exactly**. R's ``survival`` (>= 3.0) first merges times
  that differ only by floating-point noise (``aeqSurv``, ``timefix = TRUE``);
  for times read from a file or computed as differences of dates the two agree.
* Nothing is dropped silently; results are frozen dataclasses
  (:class:`studyval.results.Result`) with tidy tables.

Oracles: R 4.2 with ``survival`` 3.5 (``survfit``, ``survdiff``, ``coxph``,
``basehaz``, ``cox.zph``, ``concordance``); see ``tests/test_survival.py``.

Shared helpers for sibling modules (stable API)
-----------------------------------------------
:func:`kaplan_meier` and :func:`_km_censoring` are imported by
``survival_validation.py`` and ``competing_risks.py``. ``_km_censoring(time,
event)`` returns a :class:`_CensoringKM` with ``G(t)`` (``.at`` / call) and the
left-continuous ``G(t-)`` (``.left``), the reverse Kaplan-Meier used for
inverse-probability-of-censoring weights.

References
----------
* Kaplan EL, Meier P (1958). Nonparametric estimation from incomplete
  observations. JASA 53:457-481. doi:10.1080/01621459.1958.10501452
* Greenwood M (1926). The natural duration of cancer. Reports on Public Health
  and Medical Subjects 33:1-26. HMSO, London.
* Mantel N (1966). Evaluation of survival data and two new rank order
  statistics arising in its consideration. Cancer Chemother Rep 50:163-170.
* Cox DR (1972). Regression models and life-tables. JRSS B 34:187-220.
  doi:10.1111/j.2517-6161.1972.tb00899.x
* Efron B (1977). The efficiency of Cox's likelihood function for censored
  data. JASA 72:557-565. doi:10.1080/01621459.1977.10480613
* Breslow NE (1974). Covariance analysis of censored survival data.
  Biometrics 30:89-99. doi:10.2307/2529620
* Grambsch PM, Therneau TM (1994). Proportional hazards tests and diagnostics
  based on weighted residuals. Biometrika 81:515-526. doi:10.1093/biomet/81.3.515
* Harrell FE, Califf RM, Pryor DB, Lee KL, Rosati RA (1982). Evaluating the
  yield of medical tests. JAMA 247:2543-2546. doi:10.1001/jama.1982.03320430047030
* Uno H, Cai T, Pencina MJ, D'Agostino RB, Wei LJ (2011). On the C-statistics
  for evaluating overall adequacy of risk prediction procedures with censored
  survival data. Stat Med 30:1105-1117. doi:10.1002/sim.4154
* Therneau TM, Atkinson EJ (2023). The concordance statistic. Vignette of the
  R package survival.
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

from studyval.analysis._checks import check_alpha, check_follow_up_time, check_option
from studyval.analysis._checks import z_critical as _z
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "ConcordanceResult",
    "CoxResult",
    "KaplanMeierResult",
    "LogRankResult",
    "ZPHResult",
    "cox",
    "cox_zph",
    "harrell_c",
    "kaplan_meier",
    "logrank",
    "uno_c",
]

_CONF_TYPES = ("log", "log-log", "plain")
# print.survfit's tolerance when it looks for the time the curve reaches 0.5
_MEDIAN_TOL = math.sqrt(np.finfo(float).eps)


# --------------------------------------------------------------------------- checks


def _check_time_event(
    time: Any, event: Any, names: tuple[str, str] = ("time", "event")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate follow-up times and event indicators; return float64 and int8 arrays."""
    tn, en = names
    t = check_follow_up_time(time, name=tn)
    e = np.asarray(event)
    if e.ndim != 1:
        raise StudyvalError(f"{en} must be one-dimensional, got shape {e.shape}")
    if e.shape[0] != t.shape[0]:
        raise StudyvalError(f"{en} has {e.shape[0]} values but {tn} has {t.shape[0]}")
    if e.dtype.kind == "b":
        return t, e.astype(np.int8)
    if e.dtype.kind not in "iuf":
        raise StudyvalError(
            f"{en} must be 0/1 or boolean (1 = event, 0 = censored), got dtype {e.dtype}"
        )
    ef = e.astype(np.float64)
    bad = ~((ef == 0) | (ef == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{en} must be 0 (censored) or 1 (event); {int(bad.sum())} other value(s), "
            f"first at position {i}: {e[i]!r}"
        )
    return t, ef.astype(np.int8)


def _check_labels(values: Any, n: int, name: str) -> np.ndarray:
    """Validate a grouping / strata vector: one-dimensional, length n, no missing labels."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise StudyvalError(f"{name} has {arr.shape[0]} values but time has {n}")
    missing = pd.isna(pd.Series(arr, copy=False)).to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise StudyvalError(
            f"{name} has {int(missing.sum())} missing label(s); first at position {i}"
        )
    return arr


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and integer codes (labels must be mutually comparable)."""
    try:
        levels, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:  # mixed types that do not sort
        raise StudyvalError(f"labels must be mutually comparable: {exc}") from None
    return levels, codes.reshape(-1).astype(np.int64)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------- Kaplan-Meier core


@dataclasses.dataclass(frozen=True)
class _KMSteps:
    """Kaplan-Meier steps of one sample at its distinct times (events and censorings)."""

    time: np.ndarray  # distinct times, increasing
    n_risk: np.ndarray  # number with follow-up >= time
    n_event: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray  # S(time), right-continuous
    var_log: np.ndarray  # Greenwood variance of log S(time) (= of the Nelson-type cumhaz)


def _km_steps(t: np.ndarray, e: np.ndarray) -> _KMSteps:
    """Kaplan-Meier estimate with Greenwood's variance, vectorised (one sort)."""
    utime, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1)
    k = utime.shape[0]
    n_at = np.bincount(inv, minlength=k)
    d = np.bincount(inv, weights=e, minlength=k).astype(np.int64)
    n_risk = np.cumsum(n_at[::-1])[::-1].astype(np.int64)
    c = n_at - d
    surv = np.cumprod(1.0 - d / n_risk)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(d > 0, d / (n_risk * (n_risk - d).astype(np.float64)), 0.0)
    var_log = np.cumsum(term)
    return _KMSteps(utime, n_risk, d, c, surv, var_log)


def _confint(
    surv: np.ndarray, se_log: np.ndarray, conf_type: str, z: float
) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise limits exactly as ``survival:::survfit_confint`` (logse = TRUE)."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = se_log * surv * z
            lo = np.maximum(surv - half, 0.0)
            hi = np.minimum(surv + half, 1.0)
            # R's pmax/pmin propagate NaN (S = 0 after an all-event last time)
            nan = np.isnan(half)
            lo[nan] = np.nan
            hi[nan] = np.nan
        elif conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            lo = np.exp(np.log(xx) - z * se_log)
            hi = np.minimum(np.exp(np.log(xx) + z * se_log), 1.0)
            hi[np.isnan(xx)] = np.nan
        else:  # log-log
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            half = z * se_log / np.log(xx)
            lo = np.exp(-np.exp(np.log(-np.log(xx)) - half))
            hi = np.exp(-np.exp(np.log(-np.log(xx)) + half))
    return lo, hi


def _median_crossing(time: np.ndarray, y: np.ndarray) -> float:
    """Time at which a step curve reaches 0.5, as ``print.survfit`` (``minmin``) finds it.

    The first time with ``y < 0.5 + tol``; if the curve sits exactly at 0.5
    there, the midpoint between that time and the next time it drops.
    NaN when the curve never reaches 0.5 ("not reached").
    """
    keep = ~np.isnan(y) & (y < 0.5 + _MEDIAN_TOL)
    if not keep.any():
        return math.nan
    x = time[keep]
    yk = y[keep]
    if abs(yk[0] - 0.5) < _MEDIAN_TOL:
        lower = np.flatnonzero(yk < yk[0])
        if lower.size:
            return float((x[0] + x[lower[0]]) / 2.0)
    return float(x[0])


# --------------------------------------------------------------------------- censoring KM


@dataclasses.dataclass(frozen=True, eq=False)
class _CensoringKM:
    r"""Reverse Kaplan-Meier estimate :math:`\hat G(t) = \hat P(C > t)` of the censoring time.

    Built by :func:`_km_censoring`. ``G(t)`` is right-continuous; ``G(t-)``
    (the value just before ``t``) is what IPCW estimators use at an observed
    event time :math:`T_i` (weight :math:`1/\hat G(T_i-)`), while the weight of
    a subject still at risk at a horizon :math:`\tau` is :math:`1/\hat G(\tau)`.

    Attributes
    ----------
    time : numpy.ndarray, shape (k,)
        Distinct observed times (events and censorings), increasing.
    surv : numpy.ndarray, shape (k,)
        :math:`\hat G` at ``time`` (right-continuous values).
    n_risk : numpy.ndarray, shape (k,)
        Number with follow-up ``>= time``.

    """

    time: np.ndarray
    surv: np.ndarray
    n_risk: np.ndarray

    def at(self, t: Any) -> np.ndarray:
        r""":math:`\hat G(t)`, right-continuous (includes a censoring at ``t``)."""
        q = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.time, q, side="right")
        return np.concatenate(([1.0], self.surv))[idx]

    def left(self, t: Any) -> np.ndarray:
        r""":math:`\hat G(t-)`, left-continuous (excludes a censoring at ``t``)."""
        q = np.asarray(t, dtype=np.float64)
        idx = np.searchsorted(self.time, q, side="left")
        return np.concatenate(([1.0], self.surv))[idx]

    __call__ = at


def _km_censoring(time: Any, event: Any) -> _CensoringKM:
    r"""Kaplan-Meier estimate of the censoring distribution :math:`G(t) = P(C > t)`.

    .. math::

        \hat G(t) = \prod_{s \le t} \Bigl(1 - \frac{c_s}{n_s - d_s}\Bigr),

    with :math:`n_s` the number with follow-up :math:`\ge s`, :math:`d_s` the
    events and :math:`c_s` the censorings at :math:`s`. At a time with both an
    event and a censoring the censoring is taken to happen *after* the event
    (a subject censored at :math:`s` was known to survive :math:`s`), so the
    events leave the censoring risk set first. This is the convention of
    ``prodlim(..., reverse = TRUE)`` (used by ``riskRegression``'s IPCW) and of
    the ``G`` that ``survival::concordance`` uses for its ``"S/G"`` and
    ``"n/G2"`` weights (C routine ``fastkm1``); it differs from
    ``survfit(Surv(time, 1 - status) ~ 1)`` only after tied event/censoring times.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event : array-like, shape (n,)
        1 = event, 0 = censored.

    Returns
    -------
    _CensoringKM
        Step function with ``.at(t)`` (= call) for :math:`\hat G(t)` and
        ``.left(t)`` for :math:`\hat G(t-)`; both vectorised.

    """
    t, e = _check_time_event(time, event)
    utime, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1)
    k = utime.shape[0]
    n_at = np.bincount(inv, minlength=k)
    d = np.bincount(inv, weights=e, minlength=k)
    c = n_at - d
    n_risk = np.cumsum(n_at[::-1])[::-1]
    denom = n_risk - d
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(c > 0, 1.0 - c / denom, 1.0)
    return _CensoringKM(_readonly(utime), _readonly(np.cumprod(factor)), _readonly(n_risk))


# --------------------------------------------------------------------------- log-rank


@dataclasses.dataclass(frozen=True, eq=False)
class LogRankResult(Result):
    r"""Log-rank test of equal survival across groups (optionally stratified).

    At each distinct event time :math:`t` (within a stratum) with :math:`n`
    at risk and :math:`d` events, of which :math:`d_g` in group :math:`g` with
    :math:`n_g` at risk,

    .. math::

        O_g - E_g = \sum_t \Bigl(d_{g} - d\,\frac{n_{g}}{n}\Bigr), \qquad
        V_{gh} = \sum_t \frac{d (n - d)}{n - 1}\,
                 \frac{n_g}{n}\Bigl(\delta_{gh} - \frac{n_h}{n}\Bigr),

    summed over strata, and :math:`\chi^2 = (O - E)^\top V^{-}(O - E)` with
    :math:`k - 1` degrees of freedom, the generalised inverse taken by dropping
    the first group (and any group with :math:`E_g = 0`) exactly as
    ``survival::survdiff`` (rho = 0) does. Mantel (1966); Peto & Peto (1972),
    doi:10.2307/2344317.

    ``chisq, p_value = result`` unpacks.

    Attributes
    ----------
    chisq : float
        Log-rank chi-square statistic.
    df : int
        Degrees of freedom: groups with :math:`E_g > 0`, minus one.
    p_value : float
        Upper tail of the chi-square distribution.
    n : int
        Number of subjects.
    n_events : int
        Number of events.
    n_groups : int
        Number of groups.
    stratified : bool
        Whether the test was stratified.
    table : pandas.DataFrame
        One row per group: ``group, n, observed, expected, o_minus_e,
        oe2_over_e, oe2_over_v`` (the last two as ``print.survdiff`` shows them:
        :math:`(O-E)^2/E` and :math:`(O-E)^2/V_{gg}`). Not part of :meth:`to_frame`.
    variance : numpy.ndarray, shape (k, k)
        :math:`V`, as ``survdiff(...)$var``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("chisq", "p_value")

    chisq: float
    df: int
    p_value: float
    n: int
    n_events: int
    n_groups: int
    stratified: bool
    table: pd.DataFrame = dataclasses.field(repr=False)
    variance: np.ndarray = dataclasses.field(repr=False)
    method: str = "log-rank"


def logrank(time: Any, event: Any, groups: Any, *, strata: Any = None) -> LogRankResult:
    """Log-rank (Mantel-Haenszel) test, optionally stratified; agrees with ``survdiff``.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times (finite, ``>= 0``).
    event : array-like, shape (n,)
        1 = event, 0 = censored.
    groups : array-like, shape (n,)
        Group labels (at least two distinct). Groups are reported in sorted order.
    strata : array-like, shape (n,), optional
        Stratum labels: the test compares groups *within* strata and sums the
        observed, expected and variance over strata (``survdiff(Surv(time,
        status) ~ group + strata(s))``).

    Returns
    -------
    LogRankResult
        See the class for the formula.

    Raises
    ------
    StudyvalError
        Invalid times, events or labels; fewer than two groups.
    EstimationError
        No events, so there is nothing to compare.

    """
    t, e = _check_time_event(time, event)
    n = t.shape[0]
    glev, g = _encode(_check_labels(groups, n, "groups"))
    k = glev.shape[0]
    if k < 2:
        raise StudyvalError(f"groups has a single level ({glev[0]!r}); the log-rank test needs two")
    if strata is None:
        s = np.zeros(n, dtype=np.int64)
        n_strata = 1
    else:
        slev, s = _encode(_check_labels(strata, n, "strata"))
        n_strata = slev.shape[0]
    if e.sum() == 0:
        raise EstimationError("no events: the log-rank test needs at least one event")

    observed = np.bincount(g, weights=e, minlength=k)
    expected = np.zeros(k)
    var = np.zeros((k, k))
    for si in range(n_strata):
        m = s == si
        ts, es, gs = t[m], e[m], g[m]
        utime, inv = np.unique(ts, return_inverse=True)
        inv = inv.reshape(-1)
        nt = utime.shape[0]
        # counts per (time, group)
        at = np.zeros((nt, k))
        np.add.at(at, (inv, gs), 1.0)
        dg = np.zeros((nt, k))
        np.add.at(dg, (inv, gs), es.astype(np.float64))
        n_g = np.cumsum(at[::-1], axis=0)[::-1]  # at risk per group
        n_all = n_g.sum(axis=1)
        d_all = dg.sum(axis=1)
        ev = d_all > 0
        n_g, n_all, d_all = n_g[ev], n_all[ev], d_all[ev]
        p = n_g / n_all[:, None]
        expected += (d_all[:, None] * p).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = np.where(n_all > 1, d_all * (n_all - d_all) / (n_all - 1.0), 0.0)
        var += np.diag((w[:, None] * p).sum(axis=0)) - (p * w[:, None]).T @ p
    keep = expected > 0
    df = int(keep.sum()) - 1
    if df < 1:
        chisq = 0.0
    else:
        diff = (observed - expected)[keep][1:]
        vv = var[np.ix_(keep, keep)][1:, 1:]
        sol = _chol_solve(vv, diff)
        if sol is None:
            raise EstimationError(
                "the log-rank variance matrix is singular (e.g. every event time has all "
                "subjects at risk failing); the test is undefined (R's survdiff fails too)"
            )
        chisq = float(diff @ sol)
    p_value = float(stats.chi2.sf(chisq, df)) if df >= 1 else 1.0
    o_e = observed - expected
    with np.errstate(divide="ignore", invalid="ignore"):
        table = pd.DataFrame(
            {
                "group": glev,
                "n": np.bincount(g, minlength=k),
                "observed": observed,
                "expected": expected,
                "o_minus_e": o_e,
                "oe2_over_e": o_e**2 / expected,
                "oe2_over_v": o_e**2 / np.diag(var),
            }
        )
    return LogRankResult(
        chisq=chisq,
        df=max(df, 0),
        p_value=p_value,
        n=int(n),
        n_events=int(e.sum()),
        n_groups=int(k),
        stratified=strata is not None,
        table=table,
        variance=_readonly(var),
    )


# --------------------------------------------------------------------------- Kaplan-Meier


@dataclasses.dataclass(frozen=True, eq=False)
class KaplanMeierResult(Result):
    r"""Kaplan-Meier survival curve(s) with Greenwood standard errors.

    .. math::

        \hat S(t) = \prod_{t_j \le t}\Bigl(1 - \frac{d_j}{n_j}\Bigr), \qquad
        \widehat{\mathrm{Var}}\{\log \hat S(t)\} = \sum_{t_j \le t}
            \frac{d_j}{n_j (n_j - d_j)}

    (Kaplan & Meier 1958, doi:10.1080/01621459.1958.10501452; Greenwood 1926).
    ``se`` is the Greenwood standard error of :math:`\hat S` itself,
    :math:`\hat S(t)\sqrt{\sum d_j/(n_j(n_j-d_j))}` (what ``summary.survfit``
    prints as ``std.err``). Pointwise limits follow ``survfit``'s ``conf.type``:

    * ``"log"`` (R's default): :math:`\exp\{\log\hat S \pm z\,\sigma\}`, upper limit capped at 1;
    * ``"log-log"``: :math:`\exp[-\exp\{\log(-\log\hat S) \pm z\,\sigma/\log\hat S\}]`;
    * ``"plain"``: :math:`\hat S \pm z\,\hat S\sigma`, truncated to [0, 1];

    with :math:`\sigma^2 = \widehat{\mathrm{Var}}\{\log\hat S\}`. Where
    :math:`\hat S = 0` (everyone at risk failed) ``se`` and the limits are NaN,
    as in R; with ``"log-log"`` they are also NaN where :math:`\hat S = 1`.

    The median is the first time the curve is at or below 0.5 (midpoint to the
    next drop if it sits exactly at 0.5); its limits are where the lower and
    upper pointwise curves reach 0.5 (Brookmeyer & Crowley 1982,
    doi:10.2307/2530286), exactly as ``print.survfit`` reports them. NaN means
    *not reached*.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group (``"all"`` without groups) and distinct time (events
        and censorings; or per requested time when ``times`` was given): ``group, time, n_risk,
        n_event, n_censor, survival, se, ci_low, ci_high``. With ``times``,
        ``n_event`` and ``n_censor`` count the events and censorings in
        ``(previous requested time, time]`` as ``summary(fit, times =)`` does.
    medians : pandas.DataFrame
        One row per group: ``group, n, n_events, median, ci_low, ci_high``.
    logrank : LogRankResult or None
        The log-rank test across ``groups``. None without groups, with a single
        group, with no events, or when the test is undefined (then a
        StatisticalWarning says why).
    n : int
        Number of subjects.
    n_events : int
        Number of events.
    conf_type : str
        ``"log"``, ``"log-log"`` or ``"plain"``.
    ci_level : float
        ``1 - alpha``.

    """

    table: pd.DataFrame = dataclasses.field(repr=False)
    medians: pd.DataFrame = dataclasses.field(repr=False)
    logrank: LogRankResult | None = dataclasses.field(repr=False)
    n: int
    n_events: int
    conf_type: str
    ci_level: float
    _time: np.ndarray = dataclasses.field(repr=False)
    _codes: np.ndarray = dataclasses.field(repr=False)
    _levels: np.ndarray = dataclasses.field(repr=False)
    _grouped: bool = dataclasses.field(repr=False)

    @property
    def median(self) -> float:
        """Median survival of an ungrouped curve (NaN if not reached)."""
        if self._grouped:
            raise StudyvalError("this result has several groups; read .medians instead")
        return float(self.medians["median"].iloc[0])

    def at_risk(self, times: Any) -> pd.DataFrame:
        """Numbers at risk (follow-up ``>= t``) at the given times, per group.

        Parameters
        ----------
        times : array-like of float
            Times at which to count, e.g. the ticks under a KM plot.

        Returns
        -------
        pandas.DataFrame
            Columns ``group, time, n_risk`` (one row per group and time).

        """
        q = _check_query_times(times)
        rows = []
        for gi, lev in enumerate(self._levels):
            tg = np.sort(self._time[self._codes == gi])
            n_risk = tg.shape[0] - np.searchsorted(tg, q, side="left")
            rows.append(pd.DataFrame({"group": lev, "time": q, "n_risk": n_risk}))
        return pd.concat(rows, ignore_index=True)


def _check_query_times(times: Any) -> np.ndarray:
    q = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if q.ndim != 1:
        raise StudyvalError(f"times must be one-dimensional, got shape {q.shape}")
    bad = ~np.isfinite(q) | (q < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(f"times must be finite and >= 0; position {i} is {q[i]}")
    return q


def _km_group_table(
    steps: _KMSteps, conf_type: str, z: float, times: np.ndarray | None, label: Any
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        se_log = np.sqrt(steps.var_log)
        se = steps.surv * se_log
    lo, hi = _confint(steps.surv, se_log, conf_type, z)
    full = pd.DataFrame(
        {
            "group": label,
            "time": steps.time,
            "n_risk": steps.n_risk,
            "n_event": steps.n_event,
            "n_censor": steps.n_censor,
            "survival": steps.surv,
            "se": se,
            "ci_low": lo,
            "ci_high": hi,
        }
    )
    if times is None:
        return full, steps.surv, lo, hi
    last = steps.time[-1]
    beyond = times > last
    if beyond.any() and steps.surv[-1] > 0:
        raise StudyvalError(
            f"times: {times[beyond][0]} is after the last follow-up time {last} of group "
            f"{label!r}, where the Kaplan-Meier curve is undefined"
        )
    idx = np.searchsorted(steps.time, times, side="right") - 1  # last step <= t
    at = np.searchsorted(steps.time, times, side="left")
    n_risk = np.concatenate((steps.n_risk, [0]))[at]
    cum_d = np.concatenate(([0], np.cumsum(steps.n_event)))[idx + 1]
    cum_c = np.concatenate(([0], np.cumsum(steps.n_censor)))[idx + 1]
    n_event = np.diff(np.concatenate(([0], cum_d)))
    n_censor = np.diff(np.concatenate(([0], cum_c)))

    def pick(a: np.ndarray, before: float) -> np.ndarray:
        return np.concatenate(([before], a))[idx + 1]

    sub = pd.DataFrame(
        {
            "group": label,
            "time": times,
            "n_risk": n_risk,
            "n_event": n_event,
            "n_censor": n_censor,
            "survival": pick(steps.surv, 1.0),
            "se": pick(se, 0.0),
            "ci_low": pick(lo, 1.0),
            "ci_high": pick(hi, 1.0),
        }
    )
    return sub, steps.surv, lo, hi


def kaplan_meier(
    time: Any,
    event: Any,
    *,
    groups: Any = None,
    conf_type: str = "log",
    alpha: float = 0.05,
    times: Any = None,
) -> KaplanMeierResult:
    r"""Kaplan-Meier survival with Greenwood SEs and ``survfit``-style confidence limits.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times (finite, ``>= 0``; 0 allowed).
    event : array-like, shape (n,)
        1 (or True) = event, 0 (or False) = censored.
    groups : array-like, shape (n,), optional
        Group labels; one curve per group (sorted order) and a log-rank test
        (:func:`logrank`) in ``.logrank``.
    conf_type : {"log", "log-log", "plain"}
        Scale of the pointwise interval, as ``survfit(conf.type = )``; R's
        default is ``"log"``.
    alpha : float
        Two-sided level; limits are at ``1 - alpha``.
    times : array-like of float, optional
        Increasing times at which to report the curve (``summary(fit, times =)``).
        A time after a group's last follow-up is an error unless the curve has
        reached 0 there. Without ``times`` the table has every distinct time.

    Returns
    -------
    KaplanMeierResult
        ``.table``, ``.medians`` (with CIs), ``.at_risk(times)``, ``.logrank``.

    Raises
    ------
    StudyvalError
        Invalid inputs or options (messages name the position or option).

    Notes
    -----
    Agrees with ``survival::survfit(Surv(time, status) ~ group, conf.type = )``
    (survival, std.err times surv, lower, upper, and the median with its limits
    from ``print``) to rounding. All-censored data give a flat curve at 1 and a
    median "not reached" (NaN).

    Examples
    --------
    >>> r = kaplan_meier([1, 2, 2, 3, 4], [1, 1, 0, 1, 0])
    >>> r.table["survival"].round(3).tolist()
    [0.8, 0.6, 0.3, 0.3]

    """
    t, e = _check_time_event(time, event)
    n = t.shape[0]
    conf_type = check_option(conf_type, _CONF_TYPES, "conf_type")
    alpha = check_alpha(alpha)
    z = _z(alpha)
    q = None if times is None else _check_query_times(times)
    if q is not None and np.any(np.diff(q) <= 0):
        raise StudyvalError("times must be strictly increasing")
    if groups is None:
        levels = np.array(["all"], dtype=object)
        codes = np.zeros(n, dtype=np.int64)
    else:
        levels, codes = _encode(_check_labels(groups, n, "groups"))
    tables, med_rows = [], []
    for gi, lev in enumerate(levels):
        m = codes == gi
        steps = _km_steps(t[m], e[m])
        tab, surv, lo, hi = _km_group_table(steps, conf_type, z, q, lev)
        tables.append(tab)
        med_rows.append(
            {
                "group": lev,
                "n": int(m.sum()),
                "n_events": int(e[m].sum()),
                "median": _median_crossing(steps.time, surv),
                "ci_low": _median_crossing(steps.time, lo),
                "ci_high": _median_crossing(steps.time, hi),
            }
        )
    lr = None
    if groups is not None and levels.shape[0] >= 2 and e.sum() > 0:
        try:
            lr = logrank(t, e, groups)
        except EstimationError as exc:
            warnings.warn(
                f"kaplan_meier: no log-rank test: {exc}", StatisticalWarning, stacklevel=2
            )
    return KaplanMeierResult(
        table=pd.concat(tables, ignore_index=True),
        medians=pd.DataFrame(med_rows),
        logrank=lr,
        n=int(n),
        n_events=int(e.sum()),
        conf_type=conf_type,
        ci_level=1.0 - alpha,
        _time=_readonly(t),
        _codes=_readonly(codes),
        _levels=levels,
        _grouped=groups is not None,
    )


# --------------------------------------------------------------------------- concordance


def _pair_sums(perm: np.ndarray, r: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dominance counts along a sequence, in O(n log K) vectorised numpy.

    With the sequence ``perm`` (a permutation of ``0..n-1``), integer ranks
    ``r`` in ``[0, K)`` and weights ``v``, returns for every element ``i``

    * ``A[i] = #{j before i in perm : r[j] < r[i]}`` and
    * ``B[i] = sum(v[j] for j after i in perm if r[j] > r[i])``.

    Algorithm: a most-significant-bit-first radix partition (a wavelet tree).
    At bit level ``L`` the elements are grouped by ``r >> (L + 1)``, kept in
    sequence order within a group; a pair whose ranks first differ at bit ``L``
    lies in one group, the smaller rank having bit 0 there. Each level is a few
    cumulative sums and a stable partition, so the whole is ``O(n log K)`` with
    no Python loop over elements: what a Fenwick tree computes, in one pass for
    both directions.
    """
    n = perm.shape[0]
    ro = r[perm].astype(np.int64)
    pos = perm.astype(np.int64)
    vo = v[perm].astype(np.float64)
    acc_a = np.zeros(n)
    acc_b = np.zeros(n)
    if n == 0:
        return acc_a, acc_b
    gstart = np.zeros(n, dtype=np.int64)  # first position of each element's group
    gend = np.full(n, n - 1, dtype=np.int64)  # last position of each element's group
    idx = np.arange(n, dtype=np.int64)
    nbits = max(1, int(ro.max()).bit_length())
    for level in range(nbits - 1, -1, -1):
        bit = (ro >> level) & 1
        zero = 1 - bit
        cz = np.cumsum(zero)
        ecz = cz - zero
        base = ecz[gstart]
        zr = ecz - base  # bit-0 elements earlier in the group
        acc_a += zr * bit
        cv = np.cumsum(vo * bit)
        acc_b += (cv[gend] - cv) * zero  # v of bit-1 elements later in the group
        if level == 0:
            break
        # stable partition of every group: bit-0 elements first
        nz = cz[gend] - base
        newpos = gstart + zr + bit * (nz + idx - gstart - 2 * zr)
        new_gstart = gstart + bit * nz
        new_gend = gstart + nz - 1 + bit * (gend - gstart - nz + 1)
        moved = []
        for arr in (ro, pos, vo, acc_a, acc_b, new_gstart, new_gend):
            out = np.empty_like(arr)
            out[newpos] = arr
            moved.append(out)
        ro, pos, vo, acc_a, acc_b, gstart, gend = moved
    a = np.empty(n)
    b = np.empty(n)
    a[pos] = acc_a
    b[pos] = acc_b
    return a, b


@dataclasses.dataclass(frozen=True)
class _ConcCounts:
    """Weighted pair counts and per-subject influence counts (one stratum or summed)."""

    concordant: float
    discordant: float
    tied_risk: float
    tied_time: float
    tied_both: float
    infl_conc: np.ndarray
    infl_disc: np.ndarray
    infl_tied: np.ndarray


def _concordance_counts(
    t: np.ndarray, e: np.ndarray, risk: np.ndarray, wt: np.ndarray
) -> _ConcCounts:
    """Pair counts of ``survival::concordance`` for one stratum.

    A pair (i, j) is comparable when i has an event at :math:`t_i` and j is
    still at risk: :math:`t_j > t_i`, or :math:`t_j = t_i` and j censored.
    It is concordant when :math:`r_i > r_j` (the earlier event has the higher
    risk), discordant when :math:`r_i < r_j`, tied on risk when equal; it
    carries the weight ``wt[i]`` of the event. Pairs of events at the same
    time are counted apart (tied on time, or on time and risk).
    """
    n = t.shape[0]
    _, r = np.unique(risk, return_inverse=True)
    r = r.reshape(-1).astype(np.int64)
    kmax = int(r.max()) if n else 0
    _, trank = np.unique(t, return_inverse=True)
    trank = trank.reshape(-1).astype(np.int64)
    key = 2 * trank + (1 - e.astype(np.int64))
    # the risk set of an event i is {j : key_j > key_i}
    v = wt * e  # weight carried by an event, 0 for the censored
    # concordant: A = #{key_j > key_i, r_j < r_i} (i as the event),
    #             B = sum of v_i over {key_i < key_j, r_i > r_j} (j as the one at risk)
    perm = np.lexsort((-r, -key))
    conc_d, conc_m = _pair_sums(perm, r, v)
    conc_d *= v
    # all comparable pairs (key_j > key_i), as counts by key: O(n)
    nkey = int(key.max()) + 1
    cnt_key = np.bincount(key, minlength=nkey)
    tot_d = (n - np.cumsum(cnt_key))[key] * v
    v_key = np.bincount(key, weights=v, minlength=nkey)
    tot_m = (np.cumsum(v_key) - v_key)[key]
    # pairs tied on risk: within a run of equal r (sorted by r, then key)
    order = np.lexsort((key, r))
    rs, ks, vs = r[order], key[order], v[order]
    idx = np.arange(n)
    new_r = np.r_[True, rs[1:] != rs[:-1]]
    new_rk = new_r | np.r_[True, ks[1:] != ks[:-1]]
    end_r = np.r_[new_r[1:], True]
    end_rk = np.r_[new_rk[1:], True]
    r_last = np.minimum.accumulate(np.where(end_r, idx, n)[::-1])[::-1]
    rk_last = np.minimum.accumulate(np.where(end_rk, idx, n)[::-1])[::-1]
    r_first = np.maximum.accumulate(np.where(new_r, idx, 0))
    rk_first = np.maximum.accumulate(np.where(new_rk, idx, 0))
    cv = np.concatenate(([0.0], np.cumsum(vs)))
    tie_d = np.empty(n)
    tie_m = np.empty(n)
    tie_d[order] = (r_last - rk_last) * vs  # same r, larger key
    tie_m[order] = cv[rk_first] - cv[r_first]  # v of same r, smaller key
    disc_d = tot_d - conc_d - tie_d
    disc_m = tot_m - conc_m - tie_m
    # events tied on time: pairs within (time) and within (time, risk)
    ev = e == 1
    tt = trank[ev]
    _, first_t, cnt_t = np.unique(tt, return_index=True, return_counts=True)
    pairs_t = float(np.sum(v[ev][first_t] * cnt_t * (cnt_t - 1) / 2.0))
    _, first_b, cnt_b = np.unique(tt * (kmax + 1) + r[ev], return_index=True, return_counts=True)
    pairs_b = float(np.sum(v[ev][first_b] * cnt_b * (cnt_b - 1) / 2.0))
    return _ConcCounts(
        concordant=float(conc_d.sum()),
        discordant=float(disc_d.sum()),
        tied_risk=float(tie_d.sum()),
        tied_time=pairs_t - pairs_b,
        tied_both=pairs_b,
        infl_conc=conc_d + conc_m,
        infl_disc=disc_d + disc_m,
        infl_tied=tie_d + tie_m,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ConcordanceResult(Result):
    r"""Concordance (C-index) of a risk score with a censored outcome.

    A pair of subjects is *comparable* when the one with the shorter
    follow-up, :math:`i`, had the event and the other, :math:`j`, was still at
    risk (:math:`T_j > T_i`, or :math:`T_j = T_i` and :math:`j` censored). The
    risk score is *concordant* on that pair when :math:`r_i > r_j` (higher risk
    = earlier event). With pair weights :math:`w_{ij}` (1 for Harrell; Uno's
    :math:`\hat G(T_i-)^{-2}` and the horizon for :func:`uno_c`),

    .. math::

        \hat C = \frac{\sum w_{ij}\{I(r_i > r_j) + \tfrac12 I(r_i = r_j)\}}
                      {\sum w_{ij}}.

    The standard error is the infinitesimal-jackknife (IJ) estimate of
    ``survival::concordance``: with :math:`N = \sum w_{ij}` the total weight,
    :math:`D = (\text{concordant} - \text{discordant})/N` Somers' :math:`d`,
    and for each subject :math:`k` the weights :math:`c_k, d_k, t_k` of the
    concordant, discordant and risk-tied comparable pairs it belongs to,

    .. math::

        \frac{\partial D}{\partial w_k} = \frac{c_k - d_k}{N} - \frac{D}{N}(c_k + d_k + t_k),
        \qquad \widehat{\mathrm{Var}}(\hat C) = \frac14 \sum_k
        \Bigl(\frac{\partial D}{\partial w_k}\Bigr)^2.

    The interval is :math:`\hat C \pm z_{1-\alpha/2}\,\mathrm{se}` truncated to
    [0, 1] (R reports no interval). For :func:`uno_c` the IJ variance treats
    the censoring weights as fixed, as R does.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        The C-index; 0.5 = no discrimination, 1 = perfect ranking.
    se : float
        Infinitesimal-jackknife standard error (``sqrt(fit$var)`` in R). When it
        is 0 (constant risk, perfect ordering) a StatisticalWarning is issued.
    ci_low, ci_high : float
        Wald limits truncated to [0, 1].
    ci_level : float
        ``1 - alpha``.
    n : int
        Number of subjects.
    n_events : int
        Number of events.
    n_concordant, n_discordant, n_tied_risk : int
        Comparable pairs by outcome (unweighted counts; for Uno's C only the
        pairs with :math:`T_i \le \tau` are counted).
    n_tied_time : int
        Pairs of events at the same time with different risks (not comparable).
    n_tied_both : int
        Pairs of events at the same time with equal risks (not comparable).
    comparable_pairs : int
        ``n_concordant + n_discordant + n_tied_risk``.
    method : str
        ``"Harrell"`` or ``"Uno"``.
    tau : float or None
        Uno's truncation time (None for Harrell).

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    n: int
    n_events: int
    n_concordant: int
    n_discordant: int
    n_tied_risk: int
    n_tied_time: int
    n_tied_both: int
    comparable_pairs: int
    method: str
    tau: float | None = None


def _concordance(
    t: np.ndarray,
    e: np.ndarray,
    risk: np.ndarray,
    strata: np.ndarray | None,
    weight_fn: Any,
    alpha: float,
    method: str,
    tau: float | None,
) -> ConcordanceResult:
    n = t.shape[0]
    if e.sum() == 0:
        raise EstimationError("no events: concordance needs at least one event")
    codes = np.zeros(n, dtype=np.int64) if strata is None else strata
    infl = np.zeros((n, 3))
    tot = np.zeros(5)
    cnt = np.zeros(5)
    for s in np.unique(codes):
        m = np.flatnonzero(codes == s)
        ts, es, rs = t[m], e[m], risk[m]
        wt, wt_count = weight_fn(ts, es)
        c = _concordance_counts(ts, es, rs, wt)
        tot += [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both]
        infl[m, 0] = c.infl_conc
        infl[m, 1] = c.infl_disc
        infl[m, 2] = c.infl_tied
        if wt_count is wt:
            cnt += [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both]
        else:
            cu = _concordance_counts(ts, es, rs, wt_count)
            cnt += [cu.concordant, cu.discordant, cu.tied_risk, cu.tied_time, cu.tied_both]
    npair = tot[0] + tot[1] + tot[2]
    if npair <= 0:
        raise EstimationError(
            "no comparable pairs: every event is tied in time with all later follow-up "
            "(or lies after tau)"
        )
    somer = (tot[0] - tot[1]) / npair
    dfbeta = (infl[:, 0] - infl[:, 1]) / npair - (somer / npair) * infl.sum(axis=1)
    se = math.sqrt(float(np.sum(dfbeta**2)) / 4.0)
    est = (somer + 1.0) / 2.0
    if se == 0.0:
        warnings.warn(
            f"{method} C: the standard error is 0 (every subject's comparable pairs have the same "
            "make-up, e.g. a constant risk or a perfect ordering); the interval is degenerate",
            StatisticalWarning,
            stacklevel=3,
        )
    z = _z(alpha)
    rnd = np.rint(cnt).astype(np.int64)
    return ConcordanceResult(
        estimate=float(est),
        se=se,
        ci_low=float(max(0.0, est - z * se)),
        ci_high=float(min(1.0, est + z * se)),
        ci_level=1.0 - alpha,
        n=int(n),
        n_events=int(e.sum()),
        n_concordant=int(rnd[0]),
        n_discordant=int(rnd[1]),
        n_tied_risk=int(rnd[2]),
        n_tied_time=int(rnd[3]),
        n_tied_both=int(rnd[4]),
        comparable_pairs=int(rnd[0] + rnd[1] + rnd[2]),
        method=method,
        tau=tau,
    )


def _check_risk(risk: Any, n: int) -> np.ndarray:
    arr = np.asarray(risk, dtype=np.float64)
    if arr.ndim != 1:
        raise StudyvalError(f"risk must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise StudyvalError(f"risk has {arr.shape[0]} values but time has {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"risk has {int(bad.sum())} non-finite value(s); first at position {i}: {arr[i]}"
        )
    return arr


def harrell_c(
    time: Any, event: Any, risk: Any, *, strata: Any = None, alpha: float = 0.05
) -> ConcordanceResult:
    r"""Harrell's C-index of a risk score (higher = worse), with its IJ standard error.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times (finite, ``>= 0``).
    event : array-like, shape (n,)
        1 = event, 0 = censored.
    risk : array-like, shape (n,)
        Predicted **risk: higher = earlier event** (a Cox linear predictor, a
        predicted event probability). Pass ``-score`` for a predicted survival
        time or survival probability.
    strata : array-like, shape (n,), optional
        Compare pairs only within strata (as ``coxph`` does for a stratified model).
    alpha : float
        Two-sided level of the interval.

    Returns
    -------
    ConcordanceResult
        Estimate, IJ standard error, interval and the pair counts.

    Raises
    ------
    StudyvalError
        Invalid inputs.
    EstimationError
        No events or no comparable pairs.

    Notes
    -----
    Agrees with ``survival::concordance(Surv(time, status) ~ risk, reverse =
    TRUE)`` (estimate, ``sqrt(var)`` and the counts) for times without
    floating-point near-ties. Pairs tied on risk count one half; pairs of events
    at the same time are not comparable; an event and a censoring at the same
    time are comparable (the censored subject was at risk). ``O(n log n)``:
    a few sorts and one radix (wavelet-tree) pass that counts, for every
    subject, the concordant pairs it belongs to from both sides (see
    :func:`_pair_sums`); discordant pairs follow from the totals and the risk
    ties. Harrell et al.
    (1982), doi:10.1001/jama.1982.03320430047030.

    Examples
    --------
    >>> harrell_c([1, 2, 3, 4], [1, 1, 0, 1], [4, 3, 2, 1]).estimate
    1.0

    """
    t, e = _check_time_event(time, event)
    r = _check_risk(risk, t.shape[0])
    alpha = check_alpha(alpha)
    codes = None
    if strata is not None:
        _, codes = _encode(_check_labels(strata, t.shape[0], "strata"))

    def unit(ts: np.ndarray, es: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        w = np.ones(ts.shape[0])
        return w, w

    return _concordance(t, e, r, codes, unit, alpha, "Harrell", None)


def uno_c(
    time: Any, event: Any, risk: Any, *, tau: float, alpha: float = 0.05
) -> ConcordanceResult:
    r"""Uno's IPCW C-index up to a horizon ``tau`` (risk: higher = worse).

    .. math::

        \hat C_\tau = \frac{\sum_{i,j} \Delta_i\, \hat G(T_i-)^{-2}\,
            I(T_i < T_j,\ T_i \le \tau)\,\{I(r_i > r_j) + \tfrac12 I(r_i = r_j)\}}
            {\sum_{i,j} \Delta_i\, \hat G(T_i-)^{-2}\, I(T_i < T_j,\ T_i \le \tau)}

    with :math:`\hat G` the Kaplan-Meier estimate of the censoring
    distribution (:func:`_km_censoring`), evaluated just before the event time.
    Uno et al. (2011), doi:10.1002/sim.4154.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up times (``>= 0``) and event indicators (1 = event).
    risk : array-like, shape (n,)
        Predicted **risk: higher = earlier event**.
    tau : float
        Horizon (required, pre-specified): only events at :math:`T_i \le \tau`
        form pairs. Choose it where :math:`\hat G(\tau)` is still well above 0.
    alpha : float
        Two-sided level of the interval.

    Returns
    -------
    ConcordanceResult
        ``method = "Uno"``; the counts are unweighted comparable pairs with
        :math:`T_i \le \tau`.

    Raises
    ------
    StudyvalError
        Invalid inputs or ``tau``.
    EstimationError
        No events, or no comparable pair before ``tau``.

    Notes
    -----
    This is R's definition, ``survival::concordance(Surv(time, status) ~ risk,
    reverse = TRUE, timewt = "n/G2", ymax = tau)``, which differs from the
    formula printed in Uno et al. in two documented ways: a pair tied on risk
    counts one half (the paper counts it 0 in the numerator), and an event tied
    in time with a censoring is comparable (the same rule as Harrell's C).
    :math:`\hat G(t-)` treats a censoring tied with an event as happening after
    it. With fewer than two events R silently falls back to unit weights; we
    do the same and say so in the warning. The IJ standard error treats
    :math:`\hat G` as known, as R does.

    """
    t, e = _check_time_event(time, event)
    r = _check_risk(risk, t.shape[0])
    alpha = check_alpha(alpha)
    try:
        tau_f = float(tau)
    except (TypeError, ValueError):
        raise StudyvalError(f"tau must be a number, got {tau!r}") from None
    if not math.isfinite(tau_f) or tau_f <= 0:
        raise StudyvalError(f"tau must be finite and > 0, got {tau!r}")
    if e.sum() < 2:
        warnings.warn(
            "fewer than two events: Uno's weights are undefined; unit weights are used "
            "(as survival::concordance does)",
            StatisticalWarning,
            stacklevel=2,
        )
    gkm = _km_censoring(t, e)

    def ipcw(ts: np.ndarray, es: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        inside = ts <= tau_f
        if es.sum() < 2:
            w = inside.astype(np.float64)
        else:
            g = gkm.left(ts)
            with np.errstate(divide="ignore"):
                w = np.where(inside & (es == 1), 1.0 / g**2, 0.0)
        return w, inside.astype(np.float64)

    return _concordance(t, e, r, None, ipcw, alpha, "Uno", tau_f)


# --------------------------------------------------------------------------- Cox model

_TIES = ("efron", "breslow")
# Flag a coefficient as possibly infinite (monotone likelihood) when, after the
# log-likelihood has converged, the next Newton step for it is still this large:
# R's coxph rule (toler.inf = sqrt(eps), eps = 1e-9).
_INF_STEP_ABS = 1e-6
_INF_STEP_REL = math.sqrt(1e-9)


@dataclasses.dataclass(frozen=True, eq=False)
class _CoxData:
    """Design sorted by (stratum, time, events first), with the risk-set bookkeeping.

    Rows are sorted by stratum, then time, and within a tied time the events
    come first, so the events of one time form one contiguous run of rows.
    """

    x: np.ndarray  # (n, p) covariates centred at their means, sorted
    means: np.ndarray  # (p,)
    time: np.ndarray  # sorted
    event: np.ndarray  # sorted, int8
    strata: np.ndarray  # sorted codes
    order: np.ndarray  # sorted position -> original row
    slices: list[tuple[int, int]]  # contiguous row range of each stratum
    block_start: np.ndarray  # (B,) first row of each distinct (stratum, time)
    block_time: np.ndarray
    block_stratum: np.ndarray
    eb_of_block: np.ndarray  # (B,) event-block index of a block, -1 if it has no event
    ev_rows: np.ndarray  # (m,) rows with an event
    ev_block: np.ndarray  # (m,) event-block index 0..G-1 of each event
    eb_first: np.ndarray  # (G,) first position in ev_rows of each event block
    eb_size: np.ndarray  # (G,) tied events per event block
    eb_start: np.ndarray  # (G,) first row (start of the risk set) of each event block
    eb_stratum: np.ndarray  # (G,)
    seg_starts: np.ndarray  # row segments: event-block starts and stratum starts
    seg_slices: list[tuple[int, int]]  # segment range of each stratum
    eb_seg: np.ndarray  # (G,) segment of each event block
    ev_idx: np.ndarray  # reduceat indices: [start, end) of each event run, interleaved
    last_eb: np.ndarray  # (n,) last event block with time <= t_i in i's stratum, -1 if none
    frac: dict[str, np.ndarray]  # ties -> (m,) Efron fractions l/d (zeros for Breslow)
    sum_x_ev: np.ndarray  # (p,) sum of x over the events


def _df_column(df: pd.DataFrame, name: str, role: str) -> pd.Series:
    if not isinstance(name, str):
        raise StudyvalError(f"{role} must be a column name (str), got {name!r}")
    if name not in df.columns:
        import difflib

        close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StudyvalError(f"{role} column {name!r} is not in the data{hint}")
    return df[name]


def _no_missing(col: pd.Series, name: str) -> None:
    miss = col.isna().to_numpy()
    if miss.any():
        pos = np.flatnonzero(miss)
        labels = ", ".join(repr(v) for v in col.index[pos[:5]].tolist())
        more = f" (and {pos.size - 5} more)" if pos.size > 5 else ""
        raise StudyvalError(
            f"column {name!r} has {pos.size} missing value(s) at row(s) with index {labels}{more} "
            f"(first at position {int(pos[0])}); remove or impute them before fitting"
        )


def _cox_design(
    df: Any,
    duration: str,
    event: str,
    covariates: Sequence[str],
    strata: str | Sequence[str] | None,
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, tuple[str, ...], tuple[str, ...]
]:
    """Validated arrays (time, event, X, strata codes, strata levels) in original row order."""
    if not isinstance(df, pd.DataFrame):
        raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise StudyvalError("df has no rows")
    if isinstance(covariates, str):
        covariates = [covariates]
    covs = tuple(covariates)
    if len(covs) == 0:
        raise StudyvalError("covariates is empty; give at least one numeric column")
    dup = sorted({c for c in covs if covs.count(c) > 1})
    if dup:
        raise StudyvalError(f"covariates lists {dup[0]!r} more than once")
    for c in covs:
        if c in (duration, event):
            raise StudyvalError(f"covariate {c!r} is also the duration or event column")
    strata_cols: tuple[str, ...] = ()
    if strata is not None:
        strata_cols = (strata,) if isinstance(strata, str) else tuple(strata)
        for c in strata_cols:
            if c in covs:
                raise StudyvalError(f"column {c!r} is both a covariate and a stratum")
    tcol = _df_column(df, duration, "duration")
    ecol = _df_column(df, event, "event")
    _no_missing(tcol, duration)
    _no_missing(ecol, event)
    t, e = _check_time_event(
        tcol.to_numpy(),
        ecol.to_numpy(),
        (f"duration column {duration!r}", f"event column {event!r}"),
    )
    cols = []
    for c in covs:
        col = _df_column(df, c, "covariate")
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise StudyvalError(
                f"covariate {c!r} is not numeric (dtype {col.dtype}); encode categorical "
                "covariates as numeric indicator (dummy) columns before fitting"
            )
        _no_missing(col, c)
        arr = col.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(arr)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise StudyvalError(
                f"covariate {c!r} has an infinite value at row with index {col.index[i]!r}"
            )
        cols.append(arr)
    x = np.column_stack(cols)
    if strata_cols:
        for c in strata_cols:
            _no_missing(_df_column(df, c, "strata"), c)
        if len(strata_cols) == 1:
            lab = df[strata_cols[0]].to_numpy()
        else:
            lab = df[list(strata_cols)].astype(str).agg(", ".join, axis=1).to_numpy()
        levels, codes = _encode(lab)
    else:
        levels, codes = np.array([None], dtype=object), np.zeros(t.shape[0], dtype=np.int64)
    return t, e, x, codes, levels, covs, strata_cols


def _cox_prepare(t: np.ndarray, e: np.ndarray, x: np.ndarray, codes: np.ndarray) -> _CoxData:
    n = t.shape[0]
    order = np.lexsort((-e.astype(np.int64), t, codes))
    ts, es, ss = t[order], e[order], codes[order]
    means = x.mean(axis=0)
    xs = x[order] - means
    new_block = np.empty(n, dtype=bool)
    new_block[0] = True
    new_block[1:] = (ts[1:] != ts[:-1]) | (ss[1:] != ss[:-1])
    block = np.cumsum(new_block) - 1
    block_start = np.flatnonzero(new_block)
    has_ev = np.bincount(block, weights=es) > 0
    eb_of_block = np.full(block_start.shape[0], -1, dtype=np.int64)
    eb_of_block[has_ev] = np.arange(int(has_ev.sum()))
    ev_rows = np.flatnonzero(es == 1)
    ev_block = eb_of_block[block[ev_rows]]
    eb_size = np.bincount(ev_block).astype(np.int64)
    eb_first = np.concatenate(([0], np.cumsum(eb_size)[:-1])).astype(np.int64)
    eb_start = block_start[has_ev]
    eb_stratum = ss[eb_start]
    # last event block at or before each row's time, within its stratum
    last = (np.cumsum(has_ev) - 1)[block]
    valid = last >= 0
    valid[valid] = eb_stratum[last[valid]] == ss[valid]
    last_eb = np.where(valid, last, -1)
    within = np.arange(ev_rows.shape[0]) - eb_first[ev_block]
    frac = {"efron": within / eb_size[ev_block], "breslow": np.zeros(ev_rows.shape[0])}
    bounds = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1], True])
    slices = [(int(bounds[i]), int(bounds[i + 1])) for i in range(bounds.shape[0] - 1)]
    seg_starts = np.union1d(eb_start, bounds[:-1])
    eb_seg = np.searchsorted(seg_starts, eb_start)
    seg_bounds = np.searchsorted(seg_starts, bounds)
    seg_slices = [(int(seg_bounds[i]), int(seg_bounds[i + 1])) for i in range(len(slices))]
    ev_idx = np.empty(2 * eb_start.shape[0], dtype=np.int64)
    ev_idx[0::2] = eb_start
    ev_idx[1::2] = eb_start + eb_size
    if ev_idx[-1] == n:
        ev_idx = ev_idx[:-1]
    return _CoxData(
        x=xs,
        means=means,
        time=ts,
        event=es,
        strata=ss,
        order=order,
        slices=slices,
        block_start=block_start,
        block_time=ts[block_start],
        block_stratum=ss[block_start],
        eb_of_block=eb_of_block,
        ev_rows=ev_rows,
        ev_block=ev_block,
        eb_first=eb_first,
        eb_size=eb_size,
        eb_start=eb_start,
        eb_stratum=eb_stratum,
        seg_starts=seg_starts,
        seg_slices=seg_slices,
        eb_seg=eb_seg,
        ev_idx=ev_idx,
        last_eb=last_eb,
        frac=frac,
        sum_x_ev=xs[ev_rows].sum(axis=0),
    )


def _cumsum_by_stratum(v: np.ndarray, strat: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each stratum (v sorted by stratum)."""
    out = np.empty_like(v)
    bounds = np.flatnonzero(np.r_[True, strat[1:] != strat[:-1], True])
    for i in range(bounds.shape[0] - 1):
        a, b = bounds[i], bounds[i + 1]
        out[a:b] = np.cumsum(v[a:b], axis=0)
    return out


def _risk_set_sums(v: np.ndarray, cd: _CoxData) -> np.ndarray:
    """Sum of ``v`` over the risk set of each event block (rows at or after it, same stratum).

    Segment sums (``np.add.reduceat``) between consecutive event times, then a
    reverse cumulative sum over the segments of each stratum: accumulated
    backwards in time, as R's C code does, to avoid cancellation.
    """
    seg = np.add.reduceat(v, cd.seg_starts, axis=0)
    out = np.empty_like(seg)
    for a, b in cd.seg_slices:
        out[a:b] = np.cumsum(seg[a:b][::-1], axis=0)[::-1]
    return out[cd.eb_seg]


@dataclasses.dataclass(frozen=True)
class _CoxEval:
    """Partial likelihood and its derivatives at one beta, with per-event-block pieces."""

    loglik: float
    score: np.ndarray
    info: np.ndarray | None
    w: np.ndarray  # exp(eta - shift), sorted rows
    shift: float
    s1: np.ndarray  # (G, p) risk-set sums of w x
    d1: np.ndarray  # (G, p) tied-event sums of w x
    c1: np.ndarray  # (G,) sum_l 1/den_l
    c2: np.ndarray  # (G,) sum_l f_l/den_l
    q: tuple[np.ndarray, np.ndarray, np.ndarray]  # (G,) sum_l f_l^k / den_l^2, k = 0, 1, 2


def _cox_eval(beta: np.ndarray, cd: _CoxData, ties: str, info: bool = True) -> _CoxEval:
    r"""Partial log-likelihood, score and information at ``beta`` (Efron or Breslow).

    For an event block with risk-set sums :math:`S_0, S_1, S_2` and tied-event
    sums :math:`D_0, D_1, D_2` (of :math:`w = e^{x\beta}`, :math:`w x`,
    :math:`w x x^\top`), term :math:`l = 0..d-1` has fraction :math:`f_l = l/d`
    (0 for Breslow), denominator :math:`\mathrm{den}_l = S_0 - f_l D_0` and mean
    :math:`a_l = (S_1 - f_l D_1)/\mathrm{den}_l`. Sums over :math:`l` of
    :math:`a_l` and :math:`a_l a_l^\top` expand into per-block scalars times
    :math:`S_1, D_1`, and the :math:`S_2, D_2` parts of the information are
    accumulated per row as :math:`X^\top \mathrm{diag}(w\,c) X`; no
    (n, p, p) or (events, p) array is formed: O(n p^2) per evaluation.
    """
    eta = cd.x @ beta
    shift = float(eta.max())
    w = np.exp(eta - shift)
    f = cd.frac[ties]
    g = cd.ev_block
    wx = w[:, None] * cd.x
    s0 = _risk_set_sums(w, cd)
    s1 = _risk_set_sums(wx, cd)
    d0 = np.add.reduceat(w, cd.ev_idx)[0::2]
    d1 = np.add.reduceat(wx, cd.ev_idx, axis=0)[0::2]
    with np.errstate(divide="ignore", invalid="ignore"):
        den = s0[g] - f * d0[g]
        loglik = float(cd.sum_x_ev @ beta - shift * den.shape[0] - np.sum(np.log(den)))
        inv = 1.0 / den
    c1 = np.add.reduceat(inv, cd.eb_first)
    c2 = np.add.reduceat(f * inv, cd.eb_first)
    inv2 = inv * inv
    q = (
        np.add.reduceat(inv2, cd.eb_first),
        np.add.reduceat(f * inv2, cd.eb_first),
        np.add.reduceat(f * f * inv2, cd.eb_first),
    )
    score = cd.sum_x_ev - (s1.T @ c1 - d1.T @ c2)
    ev = _CoxEval(loglik, score, None, w, shift, s1, d1, c1, c2, q)
    if info:
        ev = dataclasses.replace(ev, info=_weighted_info(cd, ev, None))
    return ev


def _weighted_info(cd: _CoxData, ev: _CoxEval, gw: np.ndarray | None) -> np.ndarray:
    r"""Information :math:`\sum_{\text{blocks}} g \sum_l V_l` with per-event-block weights ``gw``.

    :math:`V_l = (S_2 - f_l D_2)/\mathrm{den}_l - a_l a_l^\top`; ``gw = None`` means 1
    (the usual information matrix); the PH test uses :math:`g(t)` and :math:`g(t)^2`.
    """
    one = np.ones_like(ev.c1) if gw is None else gw
    cum = _cumsum_by_stratum(ev.c1 * one, cd.eb_stratum)
    rowc = np.where(cd.last_eb >= 0, cum[np.maximum(cd.last_eb, 0)], 0.0)
    rowc[cd.ev_rows] -= (ev.c2 * one)[cd.ev_block]
    first = (cd.x * (ev.w * rowc)[:, None]).T @ cd.x
    q0, q1, q2 = (qk * one for qk in ev.q)
    s1, d1 = ev.s1, ev.d1
    cross = s1.T @ (d1 * q1[:, None])
    second = s1.T @ (s1 * q0[:, None]) - cross - cross.T + d1.T @ (d1 * q2[:, None])
    out = first - second
    return (out + out.T) / 2.0


def _chol_solve(m: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    try:
        c = np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(c, v)
    return np.linalg.solve(c.T, y)


@dataclasses.dataclass(frozen=True, eq=False)
class CoxResult(Result):
    r"""Cox proportional-hazards fit (Newton-Raphson on the partial likelihood).

    The hazard of subject :math:`i` in stratum :math:`s` is
    :math:`h_s(t)\exp(x_i^\top\beta)`. With Efron's handling of :math:`d`
    events tied at a time (Efron 1977, doi:10.1080/01621459.1977.10480613),
    the log partial likelihood is

    .. math::

        \ell(\beta) = \sum_{\text{event times}} \Bigl[\sum_{i \in D} x_i^\top\beta
            - \sum_{l=0}^{d-1} \log\Bigl(\sum_{j \in R} e^{x_j^\top\beta}
            - \tfrac{l}{d} \sum_{j \in D} e^{x_j^\top\beta}\Bigr)\Bigr]

    (:math:`R` the risk set, :math:`D` the tied events; Breslow's version drops
    the :math:`l/d` term; Cox 1972, doi:10.1111/j.2517-6161.1972.tb00899.x).

    Tests (each on ``p`` df): likelihood ratio :math:`2\{\ell(\hat\beta) - \ell(0)\}`;
    Wald :math:`\hat\beta^\top I(\hat\beta)\hat\beta`; score
    :math:`U(0)^\top I(0)^{-1} U(0)` at :math:`\beta = 0`, as ``summary(coxph)``
    reports them. Hazard-ratio limits are :math:`\exp(\hat\beta \pm z\,\mathrm{se})`.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per covariate: ``term, coef, se, hr, ci_low, ci_high, z, p_value``.
    coef : numpy.ndarray, shape (p,)
        :math:`\hat\beta` (log hazard ratios per unit of each covariate).
    variance : numpy.ndarray, shape (p, p)
        :math:`I(\hat\beta)^{-1}` (model-based, as ``vcov(coxph)``).
    covariates : tuple of str
        Covariate columns, in order.
    strata : tuple of str
        Stratifying columns (empty if none).
    ties : str
        ``"efron"`` or ``"breslow"``.
    n, n_events : int
        Subjects and events used.
    loglik_null, loglik : float
        :math:`\ell(0)` and :math:`\ell(\hat\beta)`.
    lr_chisq, lr_df, lr_p : float, int, float
        Likelihood-ratio test.
    wald_chisq, wald_df, wald_p : float, int, float
        Wald test.
    score_chisq, score_df, score_p : float, int, float
        Score (log-rank) test at :math:`\beta = 0`.
    concordance, concordance_se : float
        Harrell's C of the linear predictor (within strata) with its IJ standard
        error, as ``coxph`` reports it (see :func:`harrell_c`).
    iterations : int
        Newton-Raphson iterations.
    converged : bool
        False when the iteration limit was hit or a coefficient diverges
        (monotone likelihood); a StatisticalWarning was issued.
    ci_level : float
        ``1 - alpha``.
    baseline_hazard : pandas.DataFrame
        Cumulative baseline hazard :math:`H_{0s}(t)` at covariates 0 (not at
        their means), one row per stratum and distinct time (events and
        censorings): ``strata`` (if stratified), ``time, cumhaz``. Equals
        ``basehaz(fit, centered = FALSE)``: Breslow's estimator
        :math:`\sum_{t_j \le t} d_j / \sum_R e^{x^\top\hat\beta}` for
        ``ties="breslow"``, and for Efron
        :math:`\sum_{t_j\le t}\sum_{l=0}^{d_j-1} 1/(\sum_R e^{x^\top\hat\beta}
        - \tfrac{l}{d_j}\sum_D e^{x^\top\hat\beta})`.

    """

    summary: pd.DataFrame = dataclasses.field(repr=False)
    coef: np.ndarray = dataclasses.field(repr=False)
    variance: np.ndarray = dataclasses.field(repr=False)
    covariates: tuple[str, ...]
    strata: tuple[str, ...]
    ties: str
    n: int
    n_events: int
    loglik_null: float
    loglik: float
    lr_chisq: float
    lr_df: int
    lr_p: float
    wald_chisq: float
    wald_df: int
    wald_p: float
    score_chisq: float
    score_df: int
    score_p: float
    concordance: float
    concordance_se: float
    iterations: int
    converged: bool
    ci_level: float
    baseline_hazard: pd.DataFrame = dataclasses.field(repr=False)
    duration: str = ""
    event: str = ""
    _strata_levels: np.ndarray = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]

    def _design(self, df: pd.DataFrame) -> np.ndarray:
        if not isinstance(df, pd.DataFrame):
            raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
        cols = []
        for c in self.covariates:
            col = _df_column(df, c, "covariate")
            if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
                raise StudyvalError(f"covariate {c!r} is not numeric (dtype {col.dtype})")
            _no_missing(col, c)
            cols.append(col.to_numpy(dtype=np.float64))
        return np.column_stack(cols)

    def predict_risk(self, df: pd.DataFrame) -> np.ndarray:
        r"""Linear predictor :math:`x^\top\hat\beta` (risk score: higher = worse).

        Not centred (R's ``predict(fit, type = "lp")`` subtracts the mean
        linear predictor; the difference is a constant that changes no ranking
        and no C-index). It is the scale of :attr:`baseline_hazard`.

        Parameters
        ----------
        df : pandas.DataFrame
            Rows to score; must hold the numeric covariate columns, no missing values.

        Returns
        -------
        numpy.ndarray, shape (n,)

        """
        return self._design(df) @ self.coef

    def predict_survival(self, df: pd.DataFrame, times: Any) -> np.ndarray:
        r"""Predicted survival :math:`\exp\{-H_{0s}(t)\,e^{x^\top\hat\beta}\}`.

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates (and the strata columns for a stratified fit).
        times : array-like of float, shape (k,)
            Times (``>= 0``). :math:`H_{0s}` is a step function; past the last
            time of a stratum it stays at its last value, so pick horizons within
            follow-up.

        Returns
        -------
        numpy.ndarray, shape (n, k)

        """
        q = _check_query_times(times)
        lp = self.predict_risk(df)
        h = np.empty((lp.shape[0], q.shape[0]))
        bh = self.baseline_hazard
        if self.strata:
            lab = (
                df[self.strata[0]].to_numpy()
                if len(self.strata) == 1
                else df[list(self.strata)].astype(str).agg(", ".join, axis=1).to_numpy()
            )
            for c in self.strata:
                _no_missing(_df_column(df, c, "strata"), c)
            for lev in pd.unique(lab):
                if lev not in set(self._strata_levels.tolist()):
                    raise StudyvalError(
                        f"stratum {lev!r} was not in the data the model was fitted on"
                    )
                sub = bh[bh["strata"] == lev]
                h0 = _step_at(sub["time"].to_numpy(), sub["cumhaz"].to_numpy(), q)
                m = lab == lev
                h[m] = h0[None, :]
        else:
            h[:] = _step_at(bh["time"].to_numpy(), bh["cumhaz"].to_numpy(), q)[None, :]
        return np.exp(-h * np.exp(lp)[:, None])

    def predict_risk_at(self, df: pd.DataFrame, horizon: float) -> np.ndarray:
        """Predicted probability of the event by ``horizon``: ``1 - S(horizon | x)``.

        Parameters
        ----------
        df : pandas.DataFrame
            Covariates (and strata columns if stratified).
        horizon : float
            Time horizon, e.g. 365 days for 1-year risk.

        Returns
        -------
        numpy.ndarray, shape (n,)

        """
        return 1.0 - self.predict_survival(df, [horizon])[:, 0]


def _step_at(x: np.ndarray, y: np.ndarray, q: np.ndarray) -> np.ndarray:
    idx = np.searchsorted(x, q, side="right")
    return np.concatenate(([0.0], y))[idx]


def _baseline(
    cd: _CoxData, ev: _CoxEval, beta: np.ndarray, levels: np.ndarray, stratified: bool
) -> pd.DataFrame:
    # Breslow: d / S0; Efron: sum_l 1 / (S0 - l/d D0) -- both are c1
    dh = np.zeros(cd.block_start.shape[0])
    has = cd.eb_of_block >= 0
    dh[has] = ev.c1[cd.eb_of_block[has]]
    # back from the shifted, centred weights to exp(x beta) at x = 0
    scale = math.exp(-(ev.shift + float(cd.means @ beta)))
    cum = _cumsum_by_stratum(dh, cd.block_stratum) * scale
    out = pd.DataFrame({"time": cd.block_time, "cumhaz": cum})
    if stratified:
        out.insert(0, "strata", levels[cd.block_stratum])
    return out


def _collinearity_check(cd: _CoxData, covs: tuple[str, ...]) -> None:
    """Raise if a covariate is constant (within every stratum) or a linear combination of others."""
    p = cd.x.shape[1]
    varies = np.zeros(p, dtype=bool)
    cross = np.zeros((p, p))
    for a, b in cd.slices:
        xs = cd.x[a:b]
        varies |= (xs != xs[0]).any(axis=0)
        xc = xs - xs.mean(axis=0)
        cross += xc.T @ xc
    if not varies.all():
        j = int(np.flatnonzero(~varies)[0])
        where = " within every stratum" if len(cd.slices) > 1 else ""
        raise EstimationError(
            f"covariate {covs[j]!r} is constant{where}; its coefficient is not estimable"
        )
    sd = np.sqrt(np.diag(cross))
    corr = cross / np.outer(sd, sd)
    from scipy.linalg import lapack

    _, piv, rank, _ = lapack.dpstrf(corr, tol=1e-10)
    if rank < p:
        dropped = [covs[j - 1] for j in piv[rank:]]
        raise EstimationError(
            "covariates are collinear: "
            + ", ".join(repr(c) for c in dropped)
            + " is (are) a linear combination of the others; remove it"
        )


def cox(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates: Sequence[str],
    ties: str = "efron",
    strata: str | Sequence[str] | None = None,
    alpha: float = 0.05,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> CoxResult:
    r"""Fit a Cox proportional-hazards model; agrees with ``survival::coxph``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject.
    duration : str
        Column of follow-up times (finite, ``>= 0``; a time of 0 is allowed, as
        in ``coxph``: such a subject is in the risk set only at time 0).
    event : str
        Column of event indicators (1/True = event, 0/False = censored).
    covariates : sequence of str
        **Numeric** covariate columns (bool allowed). Categorical covariates
        must be passed as indicator columns (choose the reference level
        yourself); a non-numeric column is an error naming it.
    ties : {"efron", "breslow"}
        Handling of tied event times; ``"efron"`` is R's default.
    strata : str or sequence of str, optional
        Stratifying column(s): a separate baseline hazard per stratum
        (``+ strata(s)`` in R); several columns are crossed.
    alpha : float
        Two-sided level for the hazard-ratio intervals.
    tol : float
        Convergence tolerance on the relative change of the log partial
        likelihood, :math:`|\ell_{k} - \ell_{k-1}| \le \mathrm{tol}\,\max(1, |\ell_k|)`.
        R's default is 1e-9; the tighter 1e-12 costs an iteration or two.
    max_iter : int
        Maximum Newton-Raphson iterations.

    Returns
    -------
    CoxResult
        Coefficients, SEs, HRs with CIs, the three global tests, Harrell's C,
        the baseline cumulative hazard, ``predict_risk`` and ``predict_risk_at``.

    Raises
    ------
    StudyvalError
        A missing column, a non-numeric covariate, a missing value (the message
        names the column and the row's index label), a negative time, an event
        code other than 0/1.
    EstimationError
        No events; a constant or collinear covariate.

    Warns
    -----
    StatisticalWarning
        No convergence within ``max_iter``, or a coefficient that appears to be
        infinite (monotone likelihood, e.g. a binary covariate whose one level
        has no events). ``converged`` is then False; the estimates are not usable.

    Notes
    -----
    Newton-Raphson from :math:`\beta = 0` with step-halving when the partial
    likelihood decreases (as ``coxph.fit``). Covariates are centred at their
    means internally (this changes no estimate). One sort; risk-set sums are
    reverse cumulative sums; Efron's tied-event corrections are segment sums
    (``np.add.reduceat``): O(n p^2) per iteration. The monotone-likelihood rule
    is R's: after convergence, a coefficient whose next Newton step is still
    larger than ``sqrt(1e-9) * |beta|`` is flagged.

    """
    ties = check_option(ties, _TIES, "ties")
    alpha = check_alpha(alpha)
    if not (isinstance(max_iter, (int, np.integer)) and max_iter >= 1):
        raise StudyvalError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not (0.0 < tol < 1e-3):
        raise StudyvalError(f"tol must be in (0, 1e-3), got {tol}")
    t, e, x, codes, levels, covs, strata_cols = _cox_design(df, duration, event, covariates, strata)
    n, p = x.shape
    if e.sum() == 0:
        raise EstimationError(
            f"no events in column {event!r}: all {n} subjects are censored; a Cox model needs events"
        )
    cd = _cox_prepare(t, e, x, codes)
    _collinearity_check(cd, covs)

    beta = np.zeros(p)
    cur = _cox_eval(beta, cd, ties)
    null = cur
    converged = False
    iterations = 0
    failure = ""
    for it in range(1, max_iter + 1):
        iterations = it
        step = _chol_solve(cur.info, cur.score)
        if step is None or not np.all(np.isfinite(step)):
            failure = "the information matrix became singular"
            break
        new_beta = beta + step
        new = _cox_eval(new_beta, cd, ties)
        halvings = 0
        thresh = tol * max(1.0, abs(cur.loglik))
        while (
            not (math.isfinite(new.loglik) and new.loglik >= cur.loglik - thresh) and halvings < 30
        ):
            new_beta = (beta + new_beta) / 2.0
            new = _cox_eval(new_beta, cd, ties)
            halvings += 1
        done = abs(new.loglik - cur.loglik) <= tol * max(1.0, abs(new.loglik))
        beta, cur = new_beta, new
        if done and halvings == 0:
            converged = True
            break
    info = cur.info
    var = np.full((p, p), np.nan)
    if info is not None:
        try:
            var = np.linalg.inv(info)
        except np.linalg.LinAlgError:
            failure = failure or "the information matrix is singular"
            converged = False
    if converged:
        step = var @ cur.score
        inf = (np.abs(step) > _INF_STEP_ABS) & (np.abs(step) > _INF_STEP_REL * np.abs(beta))
        if inf.any():
            converged = False
            failure = (
                "the log-likelihood converged before coefficient(s) "
                + ", ".join(repr(covs[j]) for j in np.flatnonzero(inf))
                + "; they may be infinite (monotone likelihood: e.g. a level with no events)"
            )
    elif not failure:
        failure = f"no convergence in {max_iter} iterations"
    if not converged:
        warnings.warn(
            f"cox: {failure}; converged=False, do not use the estimates",
            StatisticalWarning,
            stacklevel=2,
        )

    se = np.sqrt(np.diag(var))
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        zstat = beta / se
        pz = 2.0 * stats.norm.sf(np.abs(zstat))
        hr, hr_lo, hr_hi = np.exp(beta), np.exp(beta - z * se), np.exp(beta + z * se)
    summary = pd.DataFrame(
        {
            "term": list(covs),
            "coef": beta,
            "se": se,
            "hr": hr,
            "ci_low": hr_lo,
            "ci_high": hr_hi,
            "z": zstat,
            "p_value": pz,
        }
    )
    lr = 2.0 * (cur.loglik - null.loglik)
    wald = float(beta @ info @ beta) if info is not None else math.nan
    u0 = _chol_solve(null.info, null.score)
    score_stat = float(null.score @ u0) if u0 is not None else math.nan
    lp = x @ beta
    conc = harrell_c(t, e, lp, strata=codes if strata_cols else None)
    stratified = bool(strata_cols)
    return CoxResult(
        summary=summary,
        coef=_readonly(beta.copy()),
        variance=_readonly(var),
        covariates=covs,
        strata=strata_cols,
        ties=ties,
        n=int(n),
        n_events=int(e.sum()),
        loglik_null=float(null.loglik),
        loglik=float(cur.loglik),
        lr_chisq=float(lr),
        lr_df=int(p),
        lr_p=float(stats.chi2.sf(lr, p)),
        wald_chisq=wald,
        wald_df=int(p),
        wald_p=float(stats.chi2.sf(wald, p)),
        score_chisq=score_stat,
        score_df=int(p),
        score_p=float(stats.chi2.sf(score_stat, p)),
        concordance=conc.estimate,
        concordance_se=conc.se,
        iterations=int(iterations),
        converged=bool(converged),
        ci_level=1.0 - alpha,
        baseline_hazard=_baseline(cd, cur, beta, levels, stratified),
        duration=duration,
        event=event,
        _strata_levels=levels,
    )


# --------------------------------------------------------------------------- PH test

_ZPH_TRANSFORMS = ("km", "rank", "identity", "log")


@dataclasses.dataclass(frozen=True, eq=False)
class ZPHResult(Result):
    r"""Test of proportional hazards from scaled Schoenfeld residuals.

    For a time transform :math:`g(t)` centred at its mean over the events,
    the model :math:`\beta_j(t) = \beta_j + \theta_j g(t)` is tested with the
    score test of :math:`\theta = 0` at :math:`(\hat\beta, 0)`, using the full
    :math:`2p \times 2p` information matrix

    .. math::

        \mathcal I = \sum_k \begin{pmatrix} V_k & g_k V_k \\ g_k V_k & g_k^2 V_k
            \end{pmatrix}, \qquad
        U_\theta = \sum_k g_k\,(x_k - \bar x_k),

    :math:`\chi^2_j = (0, U_{\theta j})\,\mathcal I_{[\beta,\theta_j]}^{-1}(0, U_{\theta j})^\top`
    on 1 df per covariate, and the global test with all :math:`\theta` on
    :math:`p` df. This is ``survival::cox.zph`` since version 3.0 (Grambsch &
    Therneau 1994, doi:10.1093/biomet/81.3.515); it is not the older
    per-variable correlation test that lifelines implements.

    Attributes
    ----------
    table : pandas.DataFrame
        ``term, chisq, df, p_value``, one row per covariate and a last row
        ``GLOBAL``.
    residuals : pandas.DataFrame
        One row per event in (stratum, time) order: ``time``, ``g_time`` (the
        transformed time :math:`g(t)` before centring, the x-axis of
        ``plot.cox.zph``), ``strata`` (if stratified), and one column per
        covariate with the scaled Schoenfeld residual
        :math:`\hat\beta_j + (\mathcal V^{-1} r_k)_j`, whose smooth against
        ``g_time`` estimates :math:`\beta_j(t)`. NaN where a covariate is
        constant within the stratum.
    transform : str
        The time transform.
    global_chisq, global_df, global_p : float, int, float
        The global test.

    """

    table: pd.DataFrame = dataclasses.field(repr=False)
    residuals: pd.DataFrame = dataclasses.field(repr=False)
    transform: str
    global_chisq: float
    global_df: int
    global_p: float


def cox_zph(fit: CoxResult, *, transform: str = "km", data: pd.DataFrame) -> ZPHResult:
    r"""Proportional-hazards test for a :func:`cox` fit; agrees with ``survival::cox.zph``.

    Parameters
    ----------
    fit : CoxResult
        The fitted model.
    transform : {"km", "rank", "identity", "log"}
        Time scale :math:`g(t)`: ``"km"`` (R's default) is :math:`1 - \hat S(t-)`
        from the pooled Kaplan-Meier curve; ``"rank"`` the average rank of the
        follow-up times; ``"identity"`` the time; ``"log"`` its logarithm.
    data : pandas.DataFrame
        The data the model was fitted on (same rows, same columns).

    Returns
    -------
    ZPHResult
        Per-covariate and global chi-square tests and the scaled residuals.

    Raises
    ------
    StudyvalError
        ``data`` is not the data of the fit, or an unknown transform.

    Notes
    -----
    Schoenfeld residuals for Efron ties use the average of the Efron means over
    the tied events, and the scaling matrix is
    :math:`\mathcal I_{\beta\beta}/d` (per stratum, over covariates that vary),
    exactly as R's C routine ``zph1``.

    """
    if not isinstance(fit, CoxResult):
        raise StudyvalError(f"fit must be a CoxResult from cox(), got {type(fit).__name__}")
    if not fit.converged:
        warnings.warn(
            "cox_zph: the Cox fit did not converge; the PH test is computed at its last iterate",
            StatisticalWarning,
            stacklevel=2,
        )
    transform = check_option(transform, _ZPH_TRANSFORMS, "transform")
    t, e, x, codes, _, covs, _ = _cox_design(
        data, fit.duration, fit.event, list(fit.covariates), list(fit.strata) or None
    )
    if t.shape[0] != fit.n or int(e.sum()) != fit.n_events:
        raise StudyvalError(
            f"data has {t.shape[0]} rows and {int(e.sum())} events but the fit used "
            f"{fit.n} and {fit.n_events}; pass the data the model was fitted on"
        )
    beta = np.asarray(fit.coef, dtype=np.float64)
    cd = _cox_prepare(t, e, x, codes)
    ev = _cox_eval(beta, cd, fit.ties)
    if not np.isclose(ev.loglik, fit.loglik, rtol=1e-8, atol=1e-8):
        raise StudyvalError(
            "data does not reproduce the fit's log-likelihood; pass the data it was fitted on"
        )
    p = beta.shape[0]
    # transformed time for every subject (original order), centred over events
    if transform == "km":
        steps = _km_steps(t, e)
        idx = np.searchsorted(steps.time, t, side="left")  # number of times < t
        ttimes = 1.0 - np.concatenate(([1.0], steps.surv))[idx]
    elif transform == "rank":
        ttimes = stats.rankdata(t, method="average")
    elif transform == "identity":
        ttimes = t.copy()
    else:
        if np.any(t <= 0):
            raise StudyvalError("transform='log' needs all times > 0")
        ttimes = np.log(t)
    gtime = ttimes - ttimes[e == 1].mean()
    g_sorted = gtime[cd.order]
    gb = g_sorted[cd.eb_start]  # one value per event block (a time)
    i_bb = _weighted_info(cd, ev, None)
    i_bg = _weighted_info(cd, ev, gb)
    i_gg = _weighted_info(cd, ev, gb**2)
    imat = np.block([[i_bb, i_bg], [i_bg.T, i_gg]])
    sum_a = ev.s1 * ev.c1[:, None] - ev.d1 * ev.c2[:, None]  # (G, p): sum over l of a_l
    schoen = cd.x[cd.ev_rows] - (sum_a / cd.eb_size[:, None])[cd.ev_block]  # mean of Efron means
    u_g = g_sorted[cd.ev_rows] @ cd.x[cd.ev_rows] - gb @ sum_a
    rows = []
    for j in range(p):
        kk = [*range(p), p + j]
        u = np.zeros(p + 1)
        u[-1] = u_g[j]
        chi = float(u @ np.linalg.solve(imat[np.ix_(kk, kk)], u))
        rows.append((covs[j], chi, 1, float(stats.chi2.sf(chi, 1))))
    u = np.concatenate((np.zeros(p), u_g))
    chi_g = float(u @ np.linalg.solve(imat, u))
    rows.append(("GLOBAL", chi_g, p, float(stats.chi2.sf(chi_g, p))))
    table = pd.DataFrame(rows, columns=["term", "chisq", "df", "p_value"])
    # scaled Schoenfeld residuals (per stratum, covariates that vary in it)
    ev_strat = cd.strata[cd.ev_rows]
    n_strata = int(codes.max()) + 1
    used = np.zeros((n_strata, p))
    for s in range(n_strata):
        a, b = cd.slices[s]
        xs = cd.x[a:b]
        varies = (xs != xs[0]).any(axis=0) if b > a else np.zeros(p, dtype=bool)
        used[s] = np.where(varies, float(np.sum(ev_strat == s)), 0.0)
    wtmat = np.zeros((p, p))
    for s in range(n_strata):
        wtmat += np.minimum.outer(used[s], used[s])
    vmean = i_bb / np.where(wtmat == 0, 1.0, wtmat)
    sres = np.full_like(schoen, np.nan)
    for s in range(n_strata):
        k = np.flatnonzero(used[s] > 0)
        m = ev_strat == s
        if k.size and m.any():
            sres[np.ix_(m, k)] = np.linalg.solve(vmean[np.ix_(k, k)], schoen[np.ix_(m, k)].T).T
    sres = sres + beta[None, :]
    res = pd.DataFrame({"time": cd.time[cd.ev_rows], "g_time": ttimes[cd.order][cd.ev_rows]})
    if fit.strata:
        res["strata"] = fit._strata_levels[ev_strat]
    for j, c in enumerate(covs):
        res[c] = sres[:, j]
    return ZPHResult(
        table=table,
        residuals=res,
        transform=transform,
        global_chisq=chi_g,
        global_df=int(p),
        global_p=float(stats.chi2.sf(chi_g, p)),
    )
