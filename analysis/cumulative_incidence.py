r"""Aalen-Johansen cumulative incidence of one cause and Gray's K-sample test.

* :func:`cumulative_incidence` -- Aalen-Johansen cumulative incidence of one
  cause, with the variance ``cmprsk::cuminc`` reports and log(-log) limits
  (:class:`CumulativeIncidenceResult`; with groups, Gray's test across them).
* :func:`gray_test` -- Gray's (1988) K-sample test of equal cumulative
  incidence, as ``cmprsk::cuminc(ftime, fstatus, group)$Tests``
  (:class:`GrayTestResult`).
* :func:`incidence_against_km` -- the Aalen-Johansen cumulative incidence of
  one cause at a horizon beside the naive one minus Kaplan-Meier (competing
  events censored), overall and by group of predicted risk, with the excess of
  the naive estimate (:class:`IncidenceAgainstKMResult`).

Event codes as :mod:`studyval.analysis.competing_risks` describes them (0 =
censored, 1..K = cause). Ties in time: at a time with events and censorings
the events come first (censored subjects are still at risk), as in
``survival`` and ``cmprsk``.

Oracles: R 4.2 with cmprsk 2.2-11 (``cuminc``, ``timepoints``) and survival
3.5 (``survfit(Surv(time, factor(status)) ~ 1)``); R calls beside the
expected values in ``tests/test_cumulative_incidence.py``.

References
----------
* Kalbfleisch JD, Prentice RL (1980). *The Statistical Analysis of Failure
  Time Data*. Wiley. doi:10.1002/9781118032985
* Aalen OO, Johansen S (1978). An empirical transition matrix for
  non-homogeneous Markov chains based on censored observations. Scand J Stat
  5:141-150.
* Gray RJ (1988). A class of K-sample tests for comparing the cumulative
  incidence of a competing risk. Ann Stat 16:1141-1154.
  doi:10.1214/aos/1176350951
* Pintilie M (2006). *Competing Risks: A Practical Perspective*. Wiley.
  doi:10.1002/9780470870709 (the log(-log) interval).
* Gooley TA, Leisenring W, Crowley J, Storer BE (1999). Estimation of failure
  probabilities in the presence of competing risks: new representations of old
  estimators. Stat Med 18:695-706.
  doi:10.1002/(SICI)1097-0258(19990330)18:6<695::AID-SIM60>3.0.CO;2-O (one minus
  Kaplan-Meier overstates the incidence when competing events are censored).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_follow_up_time
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._competing_risks_common import (
    _check_event_codes,
    _check_groups,
    _check_query_times,
)
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = [
    "CumulativeIncidenceResult",
    "GrayTestResult",
    "IncidenceAgainstKMResult",
    "cumulative_incidence",
    "gray_test",
    "incidence_against_km",
]


# --------------------------------------------------------------------------- Aalen-Johansen
@dataclasses.dataclass(frozen=True)
class _AJ:
    time: np.ndarray  # distinct times (events and censorings)
    n_risk: np.ndarray
    n_event: np.ndarray  # cause of interest
    n_competing: np.ndarray
    n_censor: np.ndarray
    surv: np.ndarray  # overall Kaplan-Meier S(t) of any event
    cif: np.ndarray  # F_k(t)
    var: np.ndarray  # cuminc's variance of F_k(t)


def _aalen_johansen(t: np.ndarray, codes: np.ndarray, cause: int) -> _AJ:
    """Cumulative incidence and the variance of ``cmprsk``'s Fortran routine ``cinc``."""
    utime, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1)
    k = utime.shape[0]
    n_at = np.bincount(inv, minlength=k).astype(np.float64)
    d1 = np.bincount(inv, weights=(codes == cause).astype(np.float64), minlength=k)
    d2 = np.bincount(inv, weights=((codes != 0) & (codes != cause)).astype(np.float64), minlength=k)
    rs = np.cumsum(n_at[::-1])[::-1]
    fkn = np.cumprod(1.0 - (d1 + d2) / rs)  # S(u)
    fk = np.concatenate(([1.0], fkn[:-1]))  # S(u-)
    cif = np.cumsum(fk * d1 / rs)
    with np.errstate(divide="ignore", invalid="ignore"):
        t5_2 = np.where(d2 > 1, 1.0 - (d2 - 1.0) / (rs - 1.0), 1.0)
        t5_1 = np.where(d1 > 1, 1.0 - (d1 - 1.0) / (rs - 1.0), 1.0)
        inv_s = np.where(fkn > 0, 1.0 / fkn, 0.0)
    on2 = (d2 > 0) & (fkn > 0)
    on1 = d1 > 0
    t6_2 = np.where(on2, fk**2 * t5_2 * d2 / rs**2, 0.0)
    t6_1 = np.where(on1, fk**2 * t5_1 * d1 / rs**2, 0.0)
    a2, b2 = cif * inv_s, inv_s
    a1, b1 = 1.0 + inv_s * cif, inv_s
    v1 = np.cumsum(a2**2 * t6_2 + a1**2 * t6_1)
    v2 = np.cumsum(b2 * a2 * t6_2 + b1 * a1 * t6_1)
    v3 = np.cumsum(b2**2 * t6_2 + b1**2 * t6_1)
    at_jump = v1 + cif**2 * v3 - 2.0 * cif * v2
    # recorded at jumps of F_k only, carried forward (cinc / timepoints)
    last_jump = np.maximum.accumulate(np.where(on1, np.arange(k), -1))
    var = np.where(last_jump >= 0, at_jump[np.maximum(last_jump, 0)], 0.0)
    return _AJ(
        utime,
        rs.astype(np.int64),
        d1.astype(np.int64),
        d2.astype(np.int64),
        (n_at - d1 - d2).astype(np.int64),
        fkn,
        cif,
        var,
    )


def _loglog_limits(est: np.ndarray, se: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """``F^exp(-+ z se / (F log F))`` (Pintilie 2006); NaN where F is 0 or 1."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        f = np.where((est <= 0) | (est >= 1), np.nan, est)
        h = z * se / (f * np.log(f))
        lo = f ** np.exp(-h)
        hi = f ** np.exp(h)
    return lo, hi


# --------------------------------------------------------------------------- Gray's test
@dataclasses.dataclass(frozen=True)
class GrayTestResult(Result):
    r"""Gray's (1988) K-sample test of equal cumulative incidence of one cause.

    With :math:`d_{kg}(t)` the events of cause :math:`k` in group :math:`g` at
    time :math:`t`, :math:`Y_g(t)` the number at risk, :math:`\hat S_g` the
    Kaplan-Meier estimate of being free of any event and :math:`\hat F_{kg}` the
    cumulative incidence in group :math:`g`, the score of group :math:`g` is

    .. math::

        s_g = \sum_t \{1 - \hat F_k(t-)\}^{\rho}
              \Bigl\{d_{kg}(t) - d_k(t)\,\frac{R_g(t)}{\sum_h R_h(t)}\Bigr\},\qquad
        R_g(t) = \frac{Y_g(t)\{1 - \hat F_{kg}(t-)\}}{\hat S_g(t-)},

        X^2 = s^\top \hat V^{-1} s \sim \chi^2_{K-1}

    on the first :math:`K - 1` groups; :math:`\hat F_k` in the weight is Gray's
    pooled estimate, with increments :math:`d_k(t)/\sum_g Y_g(t)/\hat S_g(t-)`,
    and :math:`\hat V` is Gray's variance estimate (doi:10.1214/aos/1176350951).
    Scores and variances are summed over strata. Computed by a port of
    ``cmprsk``'s Fortran routine
    ``crstm``; agrees with ``cmprsk::cuminc(ftime, fstatus, group, rho =
    )$Tests`` (``stat``, ``pv``, ``df``).

    ``statistic, p_value = result`` unpacks.

    Attributes
    ----------
    statistic : float
        :math:`X^2`.
    df : int
        Number of groups minus 1.
    p_value : float
        Upper tail of :math:`\chi^2_{df}`.
    cause : int
        Cause compared.
    rho : float
        Power of the weight function (0: the log-rank-like default).
    n_groups : int
        Number of groups.
    n_strata : int
        Number of strata (1: unstratified).
    method : str
        ``"Gray (1988)"``.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("statistic", "p_value")

    statistic: float
    df: int
    p_value: float
    cause: int
    rho: float
    n_groups: int
    n_strata: int
    method: str = "Gray (1988) K-sample test (cmprsk::cuminc)"


def _crst(y: np.ndarray, m: np.ndarray, ig: np.ndarray, ng: int, rho: float):
    """Scores and variance of one stratum: port of ``cmprsk``'s ``crst`` (data sorted by y)."""
    ng1 = ng - 1
    rs = np.bincount(ig, minlength=ng).astype(np.float64)
    s = np.zeros(ng1)
    v = np.zeros((ng1, ng1))
    f1m = np.zeros(ng)
    f1 = np.zeros(ng)
    skmm = np.ones(ng)
    skm = np.ones(ng)
    v3 = np.zeros(ng)
    v2 = np.zeros((ng1, ng))
    c = np.zeros((ng, ng))
    fm = 0.0
    f = 0.0
    n = y.shape[0]
    bounds = np.flatnonzero(np.diff(y) > 0) + 1
    starts = np.concatenate(([0], bounds))
    ends = np.concatenate((bounds, [n]))
    iu = np.triu_indices(ng, 1)
    # groups with nobody at risk are masked (rs = 0 implies skmm = 0): silence 0/0 there
    with np.errstate(divide="ignore", invalid="ignore"):
        for ll, lu in zip(starts, ends, strict=True):
            mm = m[ll:lu]
            gg = ig[ll:lu]
            d1 = np.bincount(gg[mm == 1], minlength=ng).astype(np.float64)
            d2 = np.bincount(gg[mm == 2], minlength=ng).astype(np.float64)
            nd1, nd2 = d1.sum(), d2.sum()
            if nd1 > 0 or nd2 > 0:
                pos = rs > 0
                skm = np.where(pos, skmm * (rs - d1 - d2) / np.where(pos, rs, 1.0), skm)
                f1 = np.where(pos, f1m + skmm * d1 / np.where(pos, rs, 1.0), f1)
                tr = float(np.sum(np.where(pos, rs / skmm, 0.0)))
                tq = float(np.sum(np.where(pos, rs * (1.0 - f1m) / skmm, 0.0)))
                f = fm + nd1 / tr
                fb = (1.0 - fm) ** rho
                t1 = np.where(pos, rs / skmm, 0.0)
                a = np.zeros((ng, ng))
                a[np.diag_indices(ng)] = np.where(pos, fb * t1 * (1.0 - t1 / tr), 0.0)
                upper = -fb * np.outer(t1, t1) / tr
                upper = np.where(np.outer(pos, pos), upper, 0.0)
                a[iu] = upper[iu]
                a = np.triu(a) + np.triu(a, 1).T
                c = c + a * nd1 / (tr * (1.0 - fm))
                posg = pos[:ng1]
                s += np.where(
                    posg,
                    fb * (d1[:ng1] - nd1 * rs[:ng1] * (1.0 - f1m[:ng1]) / (skmm[:ng1] * tq)),
                    0.0,
                )
                if nd1 > 0:
                    for kk in np.flatnonzero(pos):
                        t4 = 1.0 - (1.0 - f) / skm[kk] if skm[kk] > 0 else 1.0
                        t5 = 1.0 - (nd1 - 1.0) / (tr * skmm[kk] - 1.0) if nd1 > 1 else 1.0
                        t3 = t5 * skmm[kk] * nd1 / (tr * rs[kk])
                        v3[kk] += t4 * t4 * t3
                        t1v = a[:ng1, kk] - t4 * c[:ng1, kk]
                        v2[:, kk] += t1v * t4 * t3
                        v += np.outer(t1v, t1v) * t3
                if nd2 > 0:
                    for kk in np.flatnonzero((skm > 0) & (d2 > 0)):
                        t4 = (1.0 - f) / skm[kk]
                        t5 = 1.0 - (d2[kk] - 1.0) / (rs[kk] - 1.0) if d2[kk] > 1 else 1.0
                        t3 = t5 * skmm[kk] ** 2 * d2[kk] / rs[kk] ** 2
                        v3[kk] += t4 * t4 * t3
                        t1v = t4 * c[:ng1, kk]
                        v2[:, kk] -= t1v * t4 * t3
                        v += np.outer(t1v, t1v) * t3
            rs -= np.bincount(gg, minlength=ng)
            fm = f
            f1m = f1.copy()
            skmm = skm.copy()
    cc = c[:ng1]
    v += (cc * v3) @ cc.T + cc @ v2.T + v2 @ cc.T
    return s, v


def _gray(
    t: np.ndarray,
    codes: np.ndarray,
    cause: int,
    gcodes: np.ndarray,
    ng: int,
    scodes: np.ndarray,
    rho: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    m = np.where(codes == cause, 1, np.where(codes == 0, 0, 2))
    s_tot = np.zeros(ng - 1)
    v_tot = np.zeros((ng - 1, ng - 1))
    for st in np.unique(scodes):
        sel = scodes == st
        order = np.argsort(t[sel], kind="stable")
        s, v = _crst(t[sel][order], m[sel][order], gcodes[sel][order], ng, rho)
        s_tot += s
        v_tot += v
    rank = np.linalg.matrix_rank(v_tot)
    if rank < ng - 1:
        raise EstimationError(
            "the variance matrix of Gray's test is singular (a group without events or "
            "subjects at risk?); the test is not defined"
        )
    stat = float(s_tot @ np.linalg.solve(v_tot, s_tot))
    return stat, s_tot, v_tot


def gray_test(
    time: Any,
    event_code: Any,
    groups: Any,
    *,
    cause: int,
    rho: float = 0.0,
    strata: Any = None,
    causes: Sequence[int] | None = None,
) -> GrayTestResult:
    r"""Gray's test that the cumulative incidence of ``cause`` is equal across groups.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    groups : array-like, shape (n,)
        Group labels (at least two groups).
    cause : int
        The cause whose cumulative incidence is compared.
    rho : float, default 0
        Power of the weight :math:`\{1 - \hat F(t-)\}^\rho` (``cuminc``'s ``rho``).
    strata : array-like, shape (n,), optional
        Strata: scores and variances are summed over strata.
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.

    Returns
    -------
    GrayTestResult

    Raises
    ------
    StudyvalError
        Invalid inputs; fewer than two groups.
    EstimationError
        Singular variance matrix.

    Notes
    -----
    Agrees with ``cmprsk::cuminc(ftime, fstatus, group, rho = rho)$Tests``
    (one row per cause) to about 1e-12.

    """
    t = check_follow_up_time(time)
    codes, k, _ = _check_event_codes(event_code, t.shape[0], cause=cause, causes=causes)
    levels, gcodes = _check_groups(groups, t.shape[0], "groups")
    if levels.shape[0] < 2:
        raise StudyvalError(f"groups must have at least two levels, found {levels.shape[0]}")
    if strata is None:
        scodes = np.zeros(t.shape[0], dtype=np.int64)
    else:
        _, scodes = _check_groups(strata, t.shape[0], "strata")
    rho_f = float(rho)
    if not math.isfinite(rho_f):
        raise StudyvalError(f"rho must be finite, got {rho!r}")
    ng = levels.shape[0]
    stat, _, _ = _gray(t, codes, k, gcodes, ng, scodes, rho_f)
    return GrayTestResult(
        statistic=stat,
        df=ng - 1,
        p_value=float(stats.chi2.sf(stat, ng - 1)),
        cause=k,
        rho=rho_f,
        n_groups=int(ng),
        n_strata=int(np.unique(scodes).shape[0]),
    )


# --------------------------------------------------------------------------- cumulative incidence
@dataclasses.dataclass(frozen=True, eq=False)
class CumulativeIncidenceResult(Result):
    r"""Aalen-Johansen cumulative incidence of one cause, per group.

    .. math::

        \hat F_k(t) = \sum_{t_j \le t} \hat S(t_j-)\,\frac{d_{kj}}{n_j}

    with :math:`\hat S` the Kaplan-Meier estimate of being free of any event,
    :math:`d_{kj}` the events of cause :math:`k` at :math:`t_j` and :math:`n_j`
    the number at risk (Kalbfleisch & Prentice 1980; Aalen & Johansen 1978).
    ``variance`` is the estimate ``cmprsk::cuminc`` returns (its Fortran routine
    ``cinc``, a delta-method variance with the
    :math:`1 - (d-1)/(n-1)` correction for tied events), recorded at the jumps
    of :math:`\hat F_k` and carried forward as ``timepoints`` does. ``cuminc``
    reports no interval; the limits here are the usual log(-log) ones
    (Pintilie 2006; as ``tidycmprsk``),

    .. math::

        \hat F^{\exp\{\mp z_{1-\alpha/2}\,\mathrm{se}/(\hat F \log \hat F)\}},

    undefined (NaN) where :math:`\hat F` is 0 or 1. ``survival`` is the overall
    Kaplan-Meier :math:`\hat S(t)`, so that the cumulative incidences of all
    causes plus ``survival`` sum to 1.

    :meth:`to_frame` is the tidy table of the curve(s); :meth:`summary_frame`
    the one-row table of the scalar fields (counts, cause, ``ci_level``).

    Attributes
    ----------
    cause : int
        The cause of interest.
    causes : tuple of int
        The declared causes.
    ci_level : float
        ``1 - alpha``.
    n : int
        Subjects.
    n_events : int
        Events of ``cause``.
    n_competing : int
        Events of the other causes.
    n_censored : int
        Censored subjects.
    groups : tuple
        Group labels in sorted order (``("all",)`` without groups).
    test : GrayTestResult or None
        Gray's test across groups (None without groups).
    curves : pandas.DataFrame
        The estimates; see :meth:`to_frame`.
    method : str
        Description.

    """

    cause: int
    causes: tuple[int, ...]
    ci_level: float
    n: int
    n_events: int
    n_competing: int
    n_censored: int
    groups: tuple[Any, ...]
    test: GrayTestResult | None = dataclasses.field(repr=False)
    curves: pd.DataFrame = dataclasses.field(repr=False)
    method: str = "Aalen-Johansen; variance as cmprsk::cuminc; log(-log) limits"

    def to_frame(self) -> pd.DataFrame:
        """The cumulative incidence curve(s) as a tidy table.

        Returns
        -------
        pandas.DataFrame
            One row per group and time (every distinct follow-up time, or the
            requested ``times``): ``group, time, n_risk, n_event, n_competing,
            n_censor, estimate, variance, se, ci_low, ci_high, survival``.
            ``n_risk`` counts subjects with follow-up ``>= time``; ``n_event``,
            ``n_competing`` and ``n_censor`` are cumulative counts up to and
            including ``time``.

        """
        return self.curves.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (counts, cause, ``ci_level``, method)."""
        return Result.to_frame(self)


def cumulative_incidence(
    time: Any,
    event_code: Any,
    *,
    cause: int,
    times: Any = None,
    groups: Any = None,
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
) -> CumulativeIncidenceResult:
    r"""Aalen-Johansen cumulative incidence of ``cause`` with ``cuminc`` variances.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    cause : int
        The cause of interest.
    times : array-like of float, optional
        Strictly increasing times at which to report the curves (as
        ``cmprsk::timepoints``). A time after a group's last follow-up is an
        error unless everyone in that group has had an event. Default: every
        distinct follow-up time of each group.
    groups : array-like, shape (n,), optional
        Group labels: one curve per group and Gray's test in ``.test``.
    alpha : float, default 0.05
        Limits at level ``1 - alpha``.
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.

    Returns
    -------
    CumulativeIncidenceResult

    Raises
    ------
    StudyvalError
        Invalid inputs (negative times, undeclared or fractional codes, a
        ``cause`` outside the declared causes, bad ``times``).

    Notes
    -----
    ``estimate`` and ``variance`` agree with ``cmprsk::timepoints(cuminc(ftime,
    fstatus, group), times)`` (``est``, ``var``) and the estimate with
    ``survival::survfit(Surv(time, factor(status)) ~ 1)`` (``pstate``) to
    about 1e-13. Naive ``1 - KM`` treating other causes as censored
    overestimates the incidence; it is not offered.

    Examples
    --------
    >>> r = cumulative_incidence([1, 2, 3, 4], [1, 2, 0, 1], cause=1)
    >>> r.to_frame()["estimate"].round(3).tolist()
    [0.25, 0.25, 0.25, 0.75]

    """
    alpha = check_alpha(alpha)
    t = check_follow_up_time(time)
    codes, k, declared = _check_event_codes(event_code, t.shape[0], cause=cause, causes=causes)
    if groups is None:
        levels = np.array(["all"], dtype=object)
        gcodes = np.zeros(t.shape[0], dtype=np.int64)
    else:
        levels, gcodes = _check_groups(groups, t.shape[0], "groups")
    q = None if times is None else _check_query_times(times)
    z = _z(alpha)
    frames = []
    for gi, lev in enumerate(levels):
        sel = gcodes == gi
        aj = _aalen_johansen(t[sel], codes[sel], k)
        if q is None:
            tt = aj.time
            idx = np.arange(aj.time.shape[0])
        else:
            last = aj.time[-1]
            beyond = q > last
            if beyond.any() and aj.surv[-1] > 0:
                raise StudyvalError(
                    f"times: {q[beyond][0]:g} is after the last follow-up time {last:g} of group "
                    f"{lev!r}, where the cumulative incidence is undefined"
                )
            tt = q
            idx = np.searchsorted(aj.time, q, side="right") - 1

        def pick(a: np.ndarray, before: float, idx: np.ndarray = idx) -> np.ndarray:
            return np.concatenate(([before], a))[idx + 1]

        est = pick(aj.cif, 0.0)
        var = pick(aj.var, 0.0)
        se = np.sqrt(var)
        lo, hi = _loglog_limits(est, se, z)
        tg = np.sort(t[sel])
        frames.append(
            pd.DataFrame(
                {
                    "group": lev,
                    "time": tt,
                    "n_risk": tg.shape[0] - np.searchsorted(tg, tt, side="left"),
                    "n_event": pick(np.cumsum(aj.n_event), 0).astype(np.int64),
                    "n_competing": pick(np.cumsum(aj.n_competing), 0).astype(np.int64),
                    "n_censor": pick(np.cumsum(aj.n_censor), 0).astype(np.int64),
                    "estimate": est,
                    "variance": var,
                    "se": se,
                    "ci_low": lo,
                    "ci_high": hi,
                    "survival": pick(aj.surv, 1.0),
                }
            )
        )
    test = None
    if groups is not None and levels.shape[0] >= 2:
        stat, _, _ = _gray(t, codes, k, gcodes, levels.shape[0], np.zeros_like(gcodes), 0.0)
        test = GrayTestResult(
            statistic=stat,
            df=int(levels.shape[0] - 1),
            p_value=float(stats.chi2.sf(stat, levels.shape[0] - 1)),
            cause=k,
            rho=0.0,
            n_groups=int(levels.shape[0]),
            n_strata=1,
        )
    return CumulativeIncidenceResult(
        cause=k,
        causes=declared,
        ci_level=1.0 - alpha,
        n=int(t.shape[0]),
        n_events=int(np.count_nonzero(codes == k)),
        n_competing=int(np.count_nonzero((codes != 0) & (codes != k))),
        n_censored=int(np.count_nonzero(codes == 0)),
        groups=tuple(levels.tolist()),
        test=test,
        curves=pd.concat(frames, ignore_index=True),
    )


@dataclasses.dataclass(frozen=True)
class IncidenceAgainstKMResult(Result):
    r"""Aalen-Johansen incidence of one cause at a horizon beside one minus Kaplan-Meier.

    Attributes
    ----------
    table : pandas.DataFrame
        One row for all subjects (``group`` ``"all"``, ``order`` -1), then one
        per group of predicted risk (``order`` 0, 1, ...): ``group, order, n,
        n_events`` (events of the cause by the horizon), ``n_competing``
        (competing events by the horizon), ``aj_incidence, aj_ci_low,
        aj_ci_high`` (Aalen-Johansen, ``cmprsk::cuminc`` variance, log(-log)
        limits), ``km_risk, km_ci_low, km_ci_high`` (:math:`1 - \hat S_k(\tau)`,
        the Kaplan-Meier estimate with competing events censored, ``survfit``
        log limits mirrored) and ``excess`` :math:`= 1 - \hat S_k(\tau) - \hat F_k(\tau)
        \ge 0`.
    cause : int
    horizon : float
    cuts : tuple of float
        Cut points of predicted risk (empty without groups).
    ci_level : float
    method : str
    """

    table: pd.DataFrame = dataclasses.field(repr=False)
    cause: int
    horizon: float
    cuts: tuple[float, ...]
    ci_level: float
    method: str = (
        "Aalen-Johansen (competing events not censored) against 1 - Kaplan-Meier "
        "(competing events censored) at the horizon"
    )

    def to_frame(self) -> pd.DataFrame:
        """The table (a copy): one row for all subjects, then one per group."""
        return self.table.copy()


def incidence_against_km(
    time: Any,
    event_code: Any,
    *,
    cause: int,
    horizon: float,
    predicted_risk: Any = None,
    cuts: Sequence[float] = (),
    labels: Sequence[str] | None = None,
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
) -> IncidenceAgainstKMResult:
    r"""The Aalen-Johansen incidence of ``cause`` by ``horizon`` beside one minus Kaplan-Meier.

    With competing events, :math:`1 - \hat S_k(\tau)`, the Kaplan-Meier
    estimate that censors them,

    .. math::

        1 - \hat S_k(\tau) = 1 - \prod_{t_j \le \tau}\Bigl(1 - \frac{d_{kj}}{n_j}\Bigr),

    estimates the risk in a world without the competing event and is never
    below the Aalen-Johansen cumulative incidence
    :math:`\hat F_k(\tau) = \sum_{t_j \le \tau} \hat S(t_j-)\, d_{kj}/n_j`
    (:math:`\hat S` free of any event), the absolute risk in the presence of
    the competing event (Gooley et al. 1999). Both are given for all subjects
    and, with ``predicted_risk`` and ``cuts``, in each group of predicted risk
    :math:`g = \#\{c \in \text{cuts}: c \le \hat p_i\}` (R's
    ``findInterval(p, cuts)``, the groups of
    :func:`~studyval.analysis.survival_validation.risk_groups_at_horizon`).

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    cause : int
        The cause of interest.
    horizon : float
        :math:`\tau`, not after the last follow-up time of any group.
    predicted_risk : array-like, shape (n,), optional
        Predicted risk of ``cause`` by ``horizon`` (**higher = worse**), in [0, 1];
        only to form the groups.
    cuts : sequence of float
        Strictly increasing cut points inside (0, 1); empty: no groups.
    labels : sequence of str, optional
        One label per group (``len(cuts) + 1``, distinct); default ``"group 1"``...
    alpha : float, default 0.05
        Limits at level ``1 - alpha``.
    causes : sequence of int, optional
        Declared causes (as :func:`cumulative_incidence`).

    Returns
    -------
    IncidenceAgainstKMResult

    Raises
    ------
    StudyvalError
        Invalid inputs; cuts without predictions or not strictly increasing in
        (0, 1); the wrong number of labels; a horizon after a group's last
        follow-up (as :func:`cumulative_incidence`).

    Notes
    -----
    Agrees with ``cmprsk::timepoints(cuminc(time, status, cencode = 0), tau)``
    (estimate, variance) and ``summary(survfit(Surv(time, status == k) ~ 1),
    times = tau)`` (survival, log limits) per group.

    Examples
    --------
    >>> r = incidence_against_km([1, 2, 3, 4, 5], [2, 1, 0, 1, 0], cause=1, horizon=4)
    >>> r.to_frame()[["aj_incidence", "km_risk"]].round(4).values.tolist()
    [[0.5, 0.625]]
    """
    from studyval.analysis.kaplan_meier import kaplan_meier

    alpha = check_alpha(alpha)
    t = check_follow_up_time(time)
    codes, k, declared = _check_event_codes(event_code, t.shape[0], cause=cause, causes=causes)
    tau = float(horizon)
    if not math.isfinite(tau) or tau < 0:
        raise StudyvalError(f"horizon must be finite and >= 0, got {horizon!r}")
    c = np.asarray(cuts, dtype=np.float64).ravel()
    if c.size:
        if predicted_risk is None:
            raise StudyvalError(
                "cuts need predicted_risk (the groups are groups of predicted risk)"
            )
        if (
            not np.all(np.isfinite(c))
            or np.any(c <= 0)
            or np.any(c >= 1)
            or np.any(np.diff(c) <= 0)
        ):
            raise StudyvalError(
                f"cuts must be strictly increasing risks strictly between 0 and 1, got {list(c)}"
            )
        p = np.asarray(predicted_risk, dtype=np.float64)
        if p.shape != t.shape or not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
            raise StudyvalError(
                f"predicted_risk must be {t.shape[0]} probabilities in [0, 1], none missing"
            )
        grp = np.searchsorted(c, p, side="right")
        labs = (
            tuple(f"group {i + 1}" for i in range(c.size + 1))
            if labels is None
            else tuple(str(v) for v in labels)
        )
        if len(labs) != c.size + 1 or len(set(labs)) != len(labs):
            raise StudyvalError(
                f"labels must be {c.size + 1} distinct names (one per group of {c.size} cut(s)), "
                f"got {list(labs)}"
            )
    else:
        grp, labs = None, ()
    parts: list[tuple[str, int, np.ndarray]] = [("all", -1, np.ones(t.shape[0], dtype=bool))]
    if grp is not None:
        parts += [(lab, g, grp == g) for g, lab in enumerate(labs)]
    rows = []
    for lab, order, m in parts:
        if not m.any():
            raise EstimationError(f"no subject in the group {lab!r} of predicted risk")
        aj = cumulative_incidence(
            t[m], codes[m], cause=k, times=[tau], alpha=alpha, causes=declared
        ).to_frame()
        km = kaplan_meier(
            t[m], (codes[m] == k).astype(np.int64), times=[tau], alpha=alpha
        ).risk_frame()
        rows.append(
            {
                "group": lab,
                "order": order,
                "n": int(m.sum()),
                "n_events": int(aj["n_event"].iloc[0]),
                "n_competing": int(aj["n_competing"].iloc[0]),
                "aj_incidence": float(aj["estimate"].iloc[0]),
                "aj_ci_low": float(aj["ci_low"].iloc[0]),
                "aj_ci_high": float(aj["ci_high"].iloc[0]),
                "km_risk": float(km["risk"].iloc[0]),
                "km_ci_low": float(km["risk_ci_low"].iloc[0]),
                "km_ci_high": float(km["risk_ci_high"].iloc[0]),
            }
        )
    table = pd.DataFrame(rows)
    table["excess"] = table["km_risk"] - table["aj_incidence"]
    return IncidenceAgainstKMResult(
        table=table,
        cause=k,
        horizon=tau,
        cuts=tuple(float(v) for v in c),
        ci_level=1.0 - alpha,
    )
