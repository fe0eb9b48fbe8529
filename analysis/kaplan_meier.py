r"""Kaplan-Meier survival curves, the log-rank test and the censoring Kaplan-Meier.

* :func:`kaplan_meier` -- Kaplan-Meier curves with Greenwood standard errors,
  ``survfit``-style pointwise limits (``conf.type`` log, log-log, plain), the
  median with its Brookmeyer-Crowley limits and numbers at risk.
* :func:`logrank` -- the (stratified) log-rank test, as ``survdiff`` (rho = 0).
* :func:`_km_censoring` -- the reverse Kaplan-Meier :math:`\hat G(t) = \hat
  P(C > t)` of the censoring time, with ``G(t)`` (``.at`` / call) and the
  left-continuous ``G(t-)`` (``.left``), used for inverse-probability-of-censoring
  weights by :func:`studyval.analysis.concordance.uno_c`,
  ``survival_validation.py`` and ``competing_risks.py`` (stable API).
* :func:`_km_steps` -- the Kaplan-Meier steps of one sample, also used by
  :func:`studyval.analysis.cox_zph.cox_zph` for its ``"km"`` time transform.

Conventions: ``time`` is the follow-up time (any unit, finite, ``>= 0``; a time
of 0 is allowed as in R's ``Surv``), ``event`` is 1 (or ``True``) for an
observed event and 0 (``False``) for right censoring. Times are compared
**exactly**: R's ``survival`` (>= 3.0) first merges times that differ only by
floating-point noise (``aeqSurv``, ``timefix = TRUE``); for times read from a
file or computed as differences of dates the two agree.

Oracles: R 4.2 with ``survival`` 3.5 (``survfit``, ``summary.survfit``,
``print.survfit``, ``survdiff``) and ``prodlim`` (``reverse = TRUE``); see
``tests/test_survival_kaplan_meier.py``. Second oracle: lifelines
(``tests/test_second_oracles.py``).

References
----------
* Kaplan EL, Meier P (1958). Nonparametric estimation from incomplete
  observations. JASA 53:457-481. doi:10.1080/01621459.1958.10501452
* Greenwood M (1926). The natural duration of cancer. Reports on Public Health
  and Medical Subjects 33:1-26. HMSO, London.
* Mantel N (1966). Evaluation of survival data and two new rank order
  statistics arising in its consideration. Cancer Chemother Rep 50:163-170.
* Peto R, Peto J (1972). Asymptotically efficient rank invariant test
  procedures. JRSS A 135:185-207. doi:10.2307/2344317
* Brookmeyer R, Crowley J (1982). A confidence interval for the median
  survival time. Biometrics 38:29-41. doi:10.2307/2530286
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_option
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._survival_common import (
    _check_labels,
    _check_query_times,
    _check_time_event,
    _chol_solve,
    _encode,
    _readonly,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = ["KaplanMeierResult", "LogRankResult", "kaplan_meier", "logrank"]

_CONF_TYPES = ("log", "log-log", "plain")
# print.survfit's tolerance when it looks for the time the curve reaches 0.5
_MEDIAN_TOL = math.sqrt(np.finfo(float).eps)


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

    ``chisq, p_value = result`` unpacks. :meth:`to_frame` is the tidy table,
    one row per group: ``group, n, observed, expected, o_minus_e, oe2_over_e,
    oe2_over_v`` (the last two as ``print.survdiff`` shows them:
    :math:`(O-E)^2/E` and :math:`(O-E)^2/V_{gg}`); :meth:`summary_frame` the
    one-row table of the test.

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
    _table: pd.DataFrame = dataclasses.field(repr=False)
    variance: np.ndarray = dataclasses.field(repr=False)
    method: str = "log-rank"

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per group (a copy); see the class docstring."""
        return self._table.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the test (chi-square, df, p-value, counts)."""
        return Result.to_frame(self)


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
        _table=table,
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

    :meth:`to_frame` is the tidy table of the curve(s): one row per group
    (``"all"`` without groups) and distinct time (events and censorings; or
    per requested time when ``times`` was given): ``group, time, n_risk,
    n_event, n_censor, survival, se, ci_low, ci_high``. With ``times``,
    ``n_event`` and ``n_censor`` count the events and censorings in
    ``(previous requested time, time]`` as ``summary(fit, times =)`` does.
    :meth:`summary_frame` is the one-row table of the scalar fields.

    Attributes
    ----------
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

    _table: pd.DataFrame = dataclasses.field(repr=False)
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

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the curve(s), one row per group and time (a copy); see the class docstring."""
        return self._table.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (counts, ``conf_type``, ``ci_level``)."""
        return Result.to_frame(self)

    def risk_frame(self) -> pd.DataFrame:
        r"""The curve(s) as cumulative incidence, :math:`1 - \hat S(t)`, with the mirrored interval.

        ``risk = 1 - survival``, ``risk_ci_low = 1 - ci_high``, ``risk_ci_high = 1 - ci_low``,
        as ``summary(survfit(...))`` gives them with ``fun = "event"`` (without competing
        events this is the Kaplan-Meier estimate of the probability of the event by ``t``).
        Columns: those of :meth:`to_frame` plus ``risk, risk_ci_low, risk_ci_high``.
        """
        t = self._table.copy()
        return t.assign(
            risk=1.0 - t["survival"], risk_ci_low=1.0 - t["ci_high"], risk_ci_high=1.0 - t["ci_low"]
        )

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
        ``.to_frame()``, ``.medians`` (with CIs), ``.at_risk(times)``, ``.logrank``.

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
    >>> r.to_frame()["survival"].round(3).tolist()
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
        _table=pd.concat(tables, ignore_index=True),
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
