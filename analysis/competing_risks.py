r"""Competing risks: cumulative incidence, Gray's test, Fine-Gray and cause-specific Cox.

* :func:`cumulative_incidence` -- Aalen-Johansen cumulative incidence of one
  cause, with the variance ``cmprsk::cuminc`` reports and log(-log) limits.
* :func:`gray_test` -- Gray's (1988) K-sample test of equal cumulative
  incidence, as ``cmprsk::cuminc(ftime, fstatus, group)$Tests``.
* :func:`fine_gray` -- Fine & Gray (1999) proportional subdistribution-hazards
  regression with censoring weights and the robust variance of
  ``cmprsk::crr`` (own implementation; no R or cmprsk needed).
* :func:`cause_specific_cox` -- the companion cause-specific Cox model (other
  causes censored), fitted by :func:`studyval.analysis.survival.cox`.
* :func:`predict_cumulative_incidence` -- predicted cumulative incidence at
  horizons from one cause-specific Cox model per cause (Benichou & Gail 1990),
  as ``riskRegression::predictRisk`` of a ``CSC`` fit.
* :func:`brier_competing` -- IPCW Brier score of a predicted cumulative
  incidence at a horizon, its Aalen-Johansen null model and the IPA (Graf et
  al. 1999; Schoop et al. 2011), as ``riskRegression::Score``.

Event coding
------------
``event_code`` is 0 for censored and a positive integer 1..K for the cause of
the event; the cause of interest is always an explicit ``cause=``. The
declared causes are ``causes=`` when given (any other code is an error naming
its position) and otherwise 1..K with K the largest code present. Codes that
are negative, fractional or missing are errors. With ``cause=k``, every other
positive code is a competing event.

Ties in time: at a time with events and censorings the events come first
(censored subjects are still at risk), as in ``survival`` and ``cmprsk``.

Oracles: R 4.2 with cmprsk 2.2-11 (``cuminc``, ``timepoints``, ``crr``),
survival 3.5 (``coxph``, ``survfit(Surv(time, factor(status)) ~ 1)``) and
riskRegression 2022.11.28 (``CSC``, ``predictRisk``, ``Score``); R calls
beside the expected values in ``tests/test_competing_risks.py``.

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
* Fine JP, Gray RJ (1999). A proportional hazards model for the subdistribution
  of a competing risk. JASA 94:496-509. doi:10.1080/01621459.1999.10474144
* Pintilie M (2006). *Competing Risks: A Practical Perspective*. Wiley.
  doi:10.1002/9780470870709 (the log(-log) interval).
* Putter H, Fiocco M, Geskus RB (2007). Tutorial in biostatistics: competing
  risks and multi-state models. Stat Med 26:2389-2430. doi:10.1002/sim.2712
* Austin PC, Lee DS, Fine JP (2016). Introduction to the analysis of survival
  data in the presence of competing risks. Circulation 133:601-609.
  doi:10.1161/CIRCULATIONAHA.115.017719
* Benichou J, Gail MH (1990). Estimates of absolute cause-specific risk in
  cohort studies. Biometrics 46:813-826. doi:10.2307/2532151
* Graf E, Schmoor C, Sauerbrei W, Schumacher M (1999). Assessment and
  comparison of prognostic classification schemes for survival data. Stat Med
  18:2529-2545. doi:10.1002/(SICI)1097-0258(19990915/30)18:17/18<2529::AID-SIM274>3.0.CO;2-5
* Schoop R, Beyersmann J, Schumacher M, Binder H (2011). Quantifying the
  predictive accuracy of time-to-event models in the presence of competing
  risks. Biom J 53:88-112. doi:10.1002/bimj.201000073
* Kattan MW, Gerds TA (2018). The index of prediction accuracy: an intuitive
  measure useful for evaluating risk prediction models. Diagn Progn Res 2:7.
  doi:10.1186/s41512-018-0029-2
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_follow_up_time
from studyval.analysis._checks import z_critical as _z
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "CompetingRisksBrierResult",
    "CumulativeIncidenceResult",
    "FineGrayResult",
    "GrayTestResult",
    "PredictedCumulativeIncidence",
    "brier_competing",
    "cause_specific_cox",
    "cumulative_incidence",
    "fine_gray",
    "gray_test",
    "predict_cumulative_incidence",
]


# --------------------------------------------------------------------------- checks
def _check_cause_value(value: Any, name: str = "cause") -> int:
    integral = isinstance(value, numbers.Integral | np.integer) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
    )
    if isinstance(value, bool | np.bool_) or not integral:
        raise StudyvalError(f"{name} must be a positive integer event code, got {value!r}")
    v = int(value)
    if v < 1:
        raise StudyvalError(f"{name} must be a positive integer event code (0 = censored), got {v}")
    return v


def _check_event_codes(
    event_code: Any,
    n: int,
    *,
    cause: Any,
    causes: Sequence[int] | None = None,
    name: str = "event_code",
) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Validate competing-risk event codes: 0 = censored, 1..K = causes.

    Returns the codes as int64, the cause of interest and the declared causes.
    With ``causes=None`` the declared set is ``1..K``, ``K`` the largest code
    present (or ``cause`` if larger); a code outside ``{0} | causes`` is an error.
    """
    e = np.asarray(event_code)
    if e.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {e.shape}")
    if e.shape[0] != n:
        raise StudyvalError(f"{name} has {e.shape[0]} values but time has {n}")
    if e.dtype.kind == "b" or e.dtype.kind not in "iuf":
        raise StudyvalError(
            f"{name} must hold integer codes (0 = censored, 1..K = causes), got dtype {e.dtype}"
        )
    ef = e.astype(np.float64)
    bad = ~np.isfinite(ef)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} has {int(bad.sum())} missing value(s); first at position {i}: {e[i]!r}"
        )
    bad = (ef != np.floor(ef)) | (ef < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} must hold non-negative integer codes (0 = censored, 1..K = causes); "
            f"{int(bad.sum())} other value(s), first at position {i}: {e[i]!r}"
        )
    codes = ef.astype(np.int64)
    k = _check_cause_value(cause)
    if causes is None:
        top = max(int(codes.max()), k)
        declared = tuple(range(1, top + 1))
    else:
        if isinstance(causes, str | bytes) or not isinstance(causes, Sequence | np.ndarray):
            raise StudyvalError(
                f"causes must be a sequence of positive integer codes, got {causes!r}"
            )
        declared = tuple(sorted({_check_cause_value(c, "causes") for c in causes}))
        if not declared:
            raise StudyvalError("causes must name at least one cause")
        allowed = np.isin(codes, (0, *declared))
        if not allowed.all():
            i = int(np.flatnonzero(~allowed)[0])
            raise StudyvalError(
                f"{name} has {int((~allowed).sum())} code(s) outside the declared set "
                f"0 (censored), {', '.join(map(str, declared))}; first at position {i}: {codes[i]}"
            )
    if k not in declared:
        raise StudyvalError(
            f"cause={k} is not among the declared causes {', '.join(map(str, declared))}"
        )
    return codes, k, declared


def _check_groups(values: Any, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels -> (sorted levels, integer codes); one-dimensional, length n, none missing."""
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
    try:
        levels, codes = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise StudyvalError(f"{name} labels must be mutually comparable: {exc}") from None
    return levels, codes.reshape(-1).astype(np.int64)


def _check_query_times(times: Any) -> np.ndarray:
    q = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if q.ndim != 1 or q.size == 0:
        raise StudyvalError(
            f"times must be a non-empty one-dimensional sequence, got shape {q.shape}"
        )
    bad = ~np.isfinite(q) | (q < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(f"times must be finite and >= 0; position {i} is {q[i]}")
    if (np.diff(q) <= 0).any():
        raise StudyvalError("times must be strictly increasing")
    return q


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
        The estimates; see :meth:`table`.
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

    def table(self) -> pd.DataFrame:
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
    >>> r.table()["estimate"].round(3).tolist()
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


# --------------------------------------------------------------------------- Fine-Gray
def _design(
    df: Any, duration: str, event: str, covariates: Sequence[str]
) -> tuple[np.ndarray, Any, np.ndarray, tuple[str, ...]]:
    if not isinstance(df, pd.DataFrame):
        raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise StudyvalError("df has no rows")
    if isinstance(covariates, str):
        covariates = [covariates]
    covs = tuple(covariates)
    if not covs:
        raise StudyvalError("covariates is empty; give at least one numeric column")
    if len(set(covs)) != len(covs):
        dup = sorted({c for c in covs if covs.count(c) > 1})
        raise StudyvalError(f"covariates lists {dup[0]!r} more than once")
    for role, name in (("duration", duration), ("event", event), *(("covariate", c) for c in covs)):
        if not isinstance(name, str):
            raise StudyvalError(f"{role} must be a column name (str), got {name!r}")
        if name not in df.columns:
            import difflib

            close = difflib.get_close_matches(name, [str(c) for c in df.columns], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise StudyvalError(f"{role} column {name!r} is not in the data{hint}")
    for c in covs:
        if c in (duration, event):
            raise StudyvalError(f"covariate {c!r} is also the duration or event column")
    cols = []
    for c in covs:
        col = df[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            raise StudyvalError(
                f"covariate {c!r} is not numeric (dtype {col.dtype}); code categories as 0/1 columns"
            )
        miss = col.isna().to_numpy()
        if miss.any():
            i = int(np.flatnonzero(miss)[0])
            raise StudyvalError(
                f"covariate {c!r} has {int(miss.sum())} missing value(s); first at position {i} "
                f"(index {col.index[i]!r}); remove or impute them before fitting"
            )
        cols.append(col.to_numpy(dtype=np.float64))
    x = np.column_stack(cols)
    if not np.isfinite(x).all():
        j = int(np.flatnonzero(~np.isfinite(x).all(axis=0))[0])
        raise StudyvalError(f"covariate {covs[j]!r} has non-finite values")
    t = check_follow_up_time(df[duration].to_numpy(), name=f"column {duration!r}")
    return t, df[event].to_numpy(), x, covs


def _survfit_censoring_left(t: np.ndarray, codes: np.ndarray) -> np.ndarray:
    r""":math:`\hat G(T_i-)` as ``crr`` computes it: ``survfit(Surv(ftime, cenind) ~ 1)``.

    :math:`\hat G(t) = \prod_{u \le t}(1 - c_u / Y_u)` with :math:`Y_u` the
    number with follow-up :math:`\ge u` (events at :math:`u` included), evaluated
    just before :math:`T_i`. This differs from ``prodlim``'s reverse
    Kaplan-Meier (:func:`studyval.analysis.survival._km_censoring`, used by
    ``riskRegression``) after times where events and censorings are tied;
    ``crr`` uses this one, so Fine-Gray does too.
    """
    utime, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1)
    k = utime.shape[0]
    n_at = np.bincount(inv, minlength=k).astype(np.float64)
    c = np.bincount(inv, weights=(codes == 0).astype(np.float64), minlength=k)
    y = np.cumsum(n_at[::-1])[::-1]
    g = np.cumprod(1.0 - c / y)
    return np.concatenate(([1.0], g))[inv]


@dataclasses.dataclass(frozen=True)
class _FGData:
    t: np.ndarray  # sorted times
    x: np.ndarray  # (n, p) centred covariates, sorted
    is1: np.ndarray  # cause of interest
    is2: np.ndarray  # competing cause
    is0: np.ndarray  # censored
    g_left: np.ndarray  # G(T_i-)
    s: np.ndarray  # distinct times of the cause of interest
    d: np.ndarray  # events at s
    g_s: np.ndarray  # G(s-)
    pos: np.ndarray  # first sorted row with t >= s


def _fg_prepare(t: np.ndarray, codes: np.ndarray, cause: int, x: np.ndarray) -> _FGData:
    order = np.argsort(t, kind="stable")
    ts = t[order]
    cs = codes[order]
    xs = x[order]
    is1 = cs == cause
    is0 = cs == 0
    is2 = ~is1 & ~is0
    g_left = _survfit_censoring_left(ts, cs)
    s, d = np.unique(ts[is1], return_counts=True)
    pos = np.searchsorted(ts, s, side="left")
    g_s = g_left[pos]
    return _FGData(ts, xs, is1, is2, is0, g_left, s, d.astype(np.float64), g_s, pos)


def _fg_sums(fd: _FGData, beta: np.ndarray):
    """Weighted risk-set sums S0, S1, S2 at the distinct event times of the cause."""
    x = fd.x
    eta = x @ beta
    r = np.exp(eta)
    rx = r[:, None] * x
    rxx = rx[:, :, None] * x[:, None, :]

    def rev(a: np.ndarray) -> np.ndarray:  # sum over rows >= i, with a zero row appended
        out = np.cumsum(a[::-1], axis=0)[::-1]
        return np.concatenate((out, np.zeros((1, *a.shape[1:]))), axis=0)

    def fwd(a: np.ndarray) -> np.ndarray:  # sum over rows < i
        out = np.cumsum(a, axis=0)
        return np.concatenate((np.zeros((1, *a.shape[1:])), out), axis=0)

    w2 = np.where(fd.is2, 1.0 / fd.g_left, 0.0)
    a0, a1, a2 = rev(r)[fd.pos], rev(rx)[fd.pos], rev(rxx)[fd.pos]
    b0, b1, b2 = (
        fwd(r * w2)[fd.pos],
        fwd(rx * w2[:, None])[fd.pos],
        fwd(rxx * w2[:, None, None])[fd.pos],
    )
    gs = fd.g_s
    s0 = a0 + gs * b0
    s1 = a1 + gs[:, None] * b1
    s2 = a2 + gs[:, None, None] * b2
    return eta, r, s0, s1, s2


def _fg_eval(fd: _FGData, beta: np.ndarray):
    eta, _, s0, s1, s2 = _fg_sums(fd, beta)
    loglik = float(eta[fd.is1].sum() - np.sum(fd.d * np.log(s0)))
    xbar = s1 / s0[:, None]
    score = fd.x[fd.is1].sum(axis=0) - (fd.d[:, None] * xbar).sum(axis=0)
    info = (
        fd.d[:, None, None] * (s2 / s0[:, None, None] - xbar[:, :, None] * xbar[:, None, :])
    ).sum(axis=0)
    return loglik, score, info


def _fg_robust(fd: _FGData, beta: np.ndarray, info: np.ndarray) -> np.ndarray:
    r"""Sandwich variance of ``crr`` (Fortran ``crrvv``): :math:`I^{-1}\sum_i(\eta_i+\psi_i)^{\otimes2}I^{-1}`."""
    _, r, s0, s1, _ = _fg_sums(fd, beta)
    x = fd.x
    p = x.shape[1]
    t = fd.t
    xbar = s1 / s0[:, None]
    ds0 = fd.d / s0
    # eta_i: dN_i part and d Lambda part
    ns = np.searchsorted(fd.s, t, side="right")  # number of event times <= t_i
    p0 = np.concatenate(([0.0], np.cumsum(ds0)))[ns]
    p1 = np.concatenate((np.zeros((1, p)), np.cumsum(ds0[:, None] * xbar, axis=0)))[ns]
    gds0 = fd.g_s * ds0
    q0_all = np.concatenate((np.cumsum(gds0[::-1])[::-1], [0.0]))
    q1_all = np.concatenate(
        (np.cumsum((gds0[:, None] * xbar)[::-1], axis=0)[::-1], np.zeros((1, p)))
    )
    q0, q1 = q0_all[ns], q1_all[ns]  # sums over event times > t_i
    own = np.searchsorted(fd.s, t, side="left")
    xbar_own = np.where(fd.is1[:, None], xbar[np.minimum(own, fd.s.shape[0] - 1)], 0.0)
    eta_i = (
        np.where(fd.is1[:, None], x - xbar_own, 0.0)
        - r[:, None] * (x * p0[:, None] - p1)
        - np.where(fd.is2, r / fd.g_left, 0.0)[:, None] * (x * q0[:, None] - q1)
    )
    # psi_i: estimated censoring distribution
    utime, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1)
    k = utime.shape[0]
    n_at = np.bincount(inv, minlength=k).astype(np.float64)
    c = np.bincount(inv, weights=fd.is0.astype(np.float64), minlength=k)
    y = np.cumsum(n_at[::-1])[::-1]
    first = np.searchsorted(t, utime, side="left")  # first sorted row at each distinct time
    w2 = np.where(fd.is2, r / fd.g_left, 0.0)
    r0 = np.concatenate(([0.0], np.cumsum(w2)))[first]  # competing events strictly before u
    r1 = np.concatenate((np.zeros((1, p)), np.cumsum(w2[:, None] * x, axis=0)))[first]
    ge = np.searchsorted(fd.s, utime, side="left")  # event times >= u start here
    k0 = q0_all[ge]
    k1 = q1_all[ge]
    q = r1 * k0[:, None] - r0[:, None] * k1  # q(u), one row per distinct time
    dpsi = np.where(c[:, None] > 0, q * (c / y**2)[:, None], 0.0)
    cum = np.cumsum(dpsi, axis=0)
    psi = -cum[inv] + np.where(fd.is0[:, None], q[inv] / y[inv][:, None], 0.0)
    u = eta_i + psi
    middle = u.T @ u
    inv_info = np.linalg.inv(info)
    return inv_info @ middle @ inv_info


@dataclasses.dataclass(frozen=True, eq=False)
class FineGrayResult(Result):
    r"""Fine-Gray proportional subdistribution-hazards model.

    The subdistribution hazard of cause :math:`k`,
    :math:`\lambda_k(t \mid x) = -\,d\log\{1 - F_k(t \mid x)\}/dt`, is modelled
    as :math:`\lambda_{k0}(t)\exp(x^\top\beta)`. Subjects who had a competing
    event stay in the risk set after their event with the weight
    :math:`w_j(t) = \hat G(t-)/\hat G(T_j-)` (Fine & Gray 1999,
    doi:10.1080/01621459.1999.10474144), :math:`\hat G` the Kaplan-Meier
    estimate of the censoring distribution. The log pseudo-likelihood
    (Breslow handling of ties)

    .. math::

        \ell(\beta) = \sum_{s} \Bigl[\sum_{i \in D_s} x_i^\top\beta
            - d_s \log \sum_j w_j(s)\,e^{x_j^\top\beta}\Bigr]

    is maximised by Newton-Raphson. The variance is the robust sandwich
    :math:`I^{-1}\bigl\{\sum_i (\hat\eta_i + \hat\psi_i)^{\otimes 2}\bigr\}I^{-1}`,
    :math:`\hat\psi_i` accounting for the estimation of :math:`G` (Fine & Gray
    1999), as ``cmprsk::crr`` computes it (Fortran ``crrvv``). Subdistribution hazard ratios
    describe the effect on the cumulative incidence, not on the cause-specific
    rate; report them with the cause-specific hazard ratios
    (:func:`cause_specific_cox`), as Austin, Lee & Fine (2016) recommend.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per covariate: ``term, coef, se, shr, ci_low, ci_high, z,
        p_value`` (``shr`` = subdistribution hazard ratio; limits on the
        ratio scale, :math:`\exp(\hat\beta \pm z\,\mathrm{se})`). Also :meth:`table`.
    coef : numpy.ndarray, shape (p,)
        :math:`\hat\beta`.
    variance : numpy.ndarray, shape (p, p)
        Robust (sandwich) variance.
    covariates : tuple of str
        Covariate columns, in order.
    cause : int
        Cause of interest.
    n, n_events, n_competing, n_censored : int
        Subjects; events of ``cause``; competing events; censored.
    loglik, loglik_null : float
        Log pseudo-likelihood at :math:`\hat\beta` and at 0 (``crr``'s
        ``loglik`` and ``loglik.null``).
    iterations : int
        Newton-Raphson iterations.
    converged : bool
        False when the iteration limit was reached.
    ci_level : float
        ``1 - alpha``.
    method : str
        Description.

    """

    summary: pd.DataFrame = dataclasses.field(repr=False)
    coef: np.ndarray = dataclasses.field(repr=False)
    variance: np.ndarray = dataclasses.field(repr=False)
    covariates: tuple[str, ...]
    cause: int
    n: int
    n_events: int
    n_competing: int
    n_censored: int
    loglik: float
    loglik_null: float
    iterations: int
    converged: bool
    ci_level: float
    method: str = "Fine-Gray subdistribution hazards, robust variance (cmprsk::crr)"

    def table(self) -> pd.DataFrame:
        """Coefficient table (a copy of :attr:`summary`)."""
        return self.summary.copy()


def fine_gray(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    cause: int,
    covariates: Sequence[str],
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
    tol: float = 1e-12,
    max_iter: int = 50,
) -> FineGrayResult:
    r"""Fine-Gray regression for the cumulative incidence of ``cause``.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject.
    duration : str
        Column of follow-up times (finite, ``>= 0``).
    event : str
        Column of event codes: 0 = censored, 1..K = cause.
    cause : int
        The cause of interest; every other non-zero code is a competing event.
    covariates : sequence of str
        **Numeric** covariate columns (categories as 0/1 columns).
    alpha : float, default 0.05
        Level of the intervals.
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.
    tol : float, default 1e-12
        Convergence tolerance on the relative change of the log
        pseudo-likelihood.
    max_iter : int, default 50
        Maximum Newton-Raphson iterations.

    Returns
    -------
    FineGrayResult

    Raises
    ------
    StudyvalError
        Missing columns or values, non-numeric covariates, invalid codes.
    EstimationError
        No event of ``cause``; a constant covariate; a singular information matrix.

    Warns
    -----
    StatisticalWarning
        No convergence within ``max_iter`` (``converged`` is then False).

    Notes
    -----
    Agrees with ``cmprsk::crr(ftime, fstatus, cov1 = X, failcode = cause,
    cencode = 0)`` (``coef``, ``sqrt(diag(var))``, ``loglik``) to about 1e-8;
    ``crr`` stops at its own tolerance (``gtol = 1e-6``), so its last digits
    can differ. One censoring distribution for all subjects (``crr``'s
    ``cengroup`` is not offered); no time-varying coefficients (``cov2``).
    Computation is O(n p^2) per iteration (cumulative sums; the competing
    events' weights factor as :math:`\hat G(s-)\cdot 1/\hat G(T_j-)`).

    """
    alpha = check_alpha(alpha)
    if not (
        isinstance(max_iter, int | np.integer) and not isinstance(max_iter, bool) and max_iter >= 1
    ):
        raise StudyvalError(f"max_iter must be a positive integer, got {max_iter!r}")
    tol = float(tol)
    if not 0.0 < tol < 1e-3:
        raise StudyvalError(f"tol must be in (0, 1e-3), got {tol}")
    t, ev, x, covs = _design(df, duration, event, covariates)
    codes, k, _ = _check_event_codes(
        ev, t.shape[0], cause=cause, causes=causes, name=f"column {event!r}"
    )
    if not (codes == k).any():
        raise EstimationError(f"no event of cause {k} in column {event!r}; nothing to model")
    sd = x.std(axis=0)
    if (sd == 0).any():
        j = int(np.flatnonzero(sd == 0)[0])
        raise EstimationError(
            f"covariate {covs[j]!r} is constant; its coefficient is not estimable"
        )
    center = x.mean(axis=0)
    fd = _fg_prepare(t, codes, k, x - center)
    p = x.shape[1]
    beta = np.zeros(p)
    ll, score, info = _fg_eval(fd, beta)
    ll_null = ll
    converged = False
    iterations = 0
    for it in range(1, int(max_iter) + 1):
        iterations = it
        try:
            step = np.linalg.solve(info, score)
        except np.linalg.LinAlgError:
            raise EstimationError(
                "the information matrix is singular (collinear covariates?)"
            ) from None
        new = beta + step
        new_ll, new_score, new_info = _fg_eval(fd, new)
        halvings = 0
        while (
            not (math.isfinite(new_ll) and new_ll >= ll - tol * max(1.0, abs(ll))) and halvings < 30
        ):
            new = (beta + new) / 2.0
            new_ll, new_score, new_info = _fg_eval(fd, new)
            halvings += 1
        done = abs(new_ll - ll) <= tol * max(1.0, abs(new_ll))
        beta, ll, score, info = new, new_ll, new_score, new_info
        if done and halvings == 0:
            converged = True
            break
    if not converged:
        warnings.warn(
            f"fine_gray: no convergence in {max_iter} iterations; converged=False, do not use the estimates",
            StatisticalWarning,
            stacklevel=2,
        )
    try:
        var = _fg_robust(fd, beta, info)
    except np.linalg.LinAlgError:
        raise EstimationError(
            "the information matrix is singular (collinear covariates?)"
        ) from None
    se = np.sqrt(np.diag(var))
    z = _z(alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        zstat = beta / se
    summary = pd.DataFrame(
        {
            "term": list(covs),
            "coef": beta,
            "se": se,
            "shr": np.exp(beta),
            "ci_low": np.exp(beta - z * se),
            "ci_high": np.exp(beta + z * se),
            "z": zstat,
            "p_value": 2.0 * stats.norm.sf(np.abs(zstat)),
        }
    )
    coef = beta.copy()
    coef.setflags(write=False)
    var.setflags(write=False)
    return FineGrayResult(
        summary=summary,
        coef=coef,
        variance=var,
        covariates=covs,
        cause=k,
        n=int(t.shape[0]),
        n_events=int(np.count_nonzero(codes == k)),
        n_competing=int(np.count_nonzero((codes != 0) & (codes != k))),
        n_censored=int(np.count_nonzero(codes == 0)),
        loglik=ll,
        loglik_null=ll_null,
        iterations=iterations,
        converged=converged,
        ci_level=1.0 - alpha,
    )


# --------------------------------------------------------------------------- cause-specific Cox
def cause_specific_cox(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    cause: int,
    covariates: Sequence[str],
    alpha: float = 0.05,
    ties: str = "efron",
    strata: str | Sequence[str] | None = None,
    causes: Sequence[int] | None = None,
) -> Any:
    r"""Cause-specific Cox model: events of other causes are treated as censored.

    The cause-specific hazard :math:`\lambda_k(t \mid x) = \lim P(t \le T <
    t + dt, \text{cause} = k \mid T \ge t, x)/dt` is modelled as
    :math:`\lambda_{k0}(t)\exp(x^\top\beta)` by an ordinary Cox model in which
    a competing event censors the subject (Putter, Fiocco & Geskus 2007,
    doi:10.1002/sim.2712). Its hazard ratios describe the rate of cause
    :math:`k` among those still event-free (aetiology); the Fine-Gray model
    (:func:`fine_gray`) describes the cumulative incidence (prediction).
    Report both (Austin, Lee & Fine 2016, doi:10.1161/CIRCULATIONAHA.115.017719).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject.
    duration : str
        Column of follow-up times.
    event : str
        Column of event codes: 0 = censored, 1..K = cause.
    cause : int
        The cause modelled.
    covariates : sequence of str
        Numeric covariate columns.
    alpha : float, default 0.05
        Level of the hazard-ratio intervals.
    ties : {"efron", "breslow"}
        Handling of tied event times.
    strata : str or sequence of str, optional
        Stratifying column(s).
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.

    Returns
    -------
    studyval.analysis.survival.CoxResult
        The fit of :func:`studyval.analysis.survival.cox` on the indicator
        ``event == cause``; its ``event`` attribute reads
        ``"<event> == <cause>"``.

    Raises
    ------
    StudyvalError, EstimationError
        As :func:`studyval.analysis.survival.cox`, and for invalid event codes.

    Notes
    -----
    Agrees with ``survival::coxph(Surv(time, status == k) ~ x)``.

    """
    from studyval.analysis.survival import cox

    if not isinstance(df, pd.DataFrame):
        raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(event, str) or event not in df.columns:
        raise StudyvalError(f"event column {event!r} is not in the data")
    codes, k, _ = _check_event_codes(
        df[event].to_numpy(), len(df), cause=cause, causes=causes, name=f"column {event!r}"
    )
    label = f"{event} == {k}"
    data = df.copy()
    data[label] = (codes == k).astype(np.int64)
    return cox(
        data,
        duration=duration,
        event=label,
        covariates=covariates,
        ties=ties,
        strata=strata,
        alpha=alpha,
    )


# --------------------------------------------------------------------------- predicted CIF
_CSC_METHOD = "cause-specific Cox (Benichou & Gail 1990; riskRegression::CSC)"


@dataclasses.dataclass(frozen=True, eq=False)
class PredictedCumulativeIncidence(Result):
    r"""Predicted cumulative incidence of one cause from cause-specific Cox models.

    With :math:`\hat H_{0l}` the (Breslow or Efron) cumulative baseline hazard
    and :math:`\hat\beta_l` the coefficients of the cause-specific Cox model of
    cause :math:`l` (every declared cause has one), the cause-specific
    cumulative hazards of a subject with covariates :math:`x` are
    :math:`\hat\Lambda_l(t \mid x) = \hat H_{0l}(t)\,e^{x^\top\hat\beta_l}`, and
    (Benichou & Gail 1990, doi:10.2307/2532151)

    .. math::

        \hat F_k(\tau \mid x) = \sum_{t_j \le \tau} \hat S(t_j- \mid x)\,
            \Delta\hat\Lambda_k(t_j \mid x),

    summed over the jump times :math:`t_j` of the baseline hazards, with the
    event-free survival just before :math:`t_j` either

    .. math::

        \hat S(t- \mid x) = \exp\Bigl\{-\sum_l \hat\Lambda_l(t- \mid x)\Bigr\}
        \quad (\text{product\_limit=False}), \qquad
        \hat S(t- \mid x) = \prod_{s < t}\Bigl\{1 - \sum_l \Delta\hat\Lambda_l(s \mid x)\Bigr\}
        \quad (\text{product\_limit=True}).

    The exponential form can give :math:`\hat F_k > 1` for subjects at very
    high risk (the hazards are not constrained); the product-limit form is
    bounded by 1 as long as every factor is non-negative.

    Attributes
    ----------
    cause : int
        The cause predicted.
    causes : tuple of int
        The causes with a model (all causes of the data).
    times : tuple of float
        The horizons :math:`\tau`, increasing.
    product_limit : bool
        Which survival formula was used (see above).
    n : int
        Rows of ``newdata``.
    risk : numpy.ndarray, shape (n, len(times))
        :math:`\hat F_k(\tau \mid x_i)`, row ``i`` of ``newdata``, column per
        horizon; read-only. Not in :meth:`to_frame` as an array: there it is
        one row per subject and horizon.
    method : str
        Description.

    """

    cause: int
    causes: tuple[int, ...]
    times: tuple[float, ...]
    product_limit: bool
    n: int
    risk: np.ndarray = dataclasses.field(repr=False)
    method: str = _CSC_METHOD

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per subject (``row``, position in ``newdata``) and horizon.

        Columns ``row, time, cause, cumulative_incidence, product_limit``.
        """
        n, k = self.risk.shape
        return pd.DataFrame(
            {
                "row": np.repeat(np.arange(n), k),
                "time": np.tile(np.asarray(self.times, dtype=np.float64), n),
                "cause": self.cause,
                "cumulative_incidence": self.risk.reshape(-1),
                "product_limit": self.product_limit,
            }
        )


def _check_models(models: Any, cause: Any) -> tuple[int, dict[int, Any]]:
    from studyval.analysis.survival import CoxResult

    if not isinstance(models, dict) or not models:
        raise StudyvalError(
            "models must be a non-empty dict {cause code: fitted cause-specific Cox model}, "
            f"one per cause (from cause_specific_cox), got {type(models).__name__}"
        )
    k = _check_cause_value(cause)
    out: dict[int, Any] = {}
    for key, fit in models.items():
        code = _check_cause_value(key, "models key")
        if not isinstance(fit, CoxResult):
            raise StudyvalError(
                f"models[{code}] must be a fitted Cox model (cause_specific_cox), "
                f"got {type(fit).__name__}"
            )
        if fit.strata:
            raise StudyvalError(
                f"models[{code}] is stratified by {', '.join(fit.strata)}; predictions from "
                "stratified cause-specific models are not implemented"
            )
        label = str(fit.event)
        if " == " in label:
            fitted_code = label.rsplit(" == ", 1)[1]
            if fitted_code != str(code):
                raise StudyvalError(
                    f"models[{code}] was fitted for event {label!r}, i.e. cause {fitted_code}; "
                    "key each model by the cause it models"
                )
        out[code] = fit
    if k not in out:
        raise StudyvalError(
            f"cause={k} has no model; models are given for causes {', '.join(map(str, sorted(out)))}"
        )
    sizes = {c: f.n for c, f in out.items()}
    if len(set(sizes.values())) > 1:
        raise StudyvalError(
            "the cause-specific models were fitted on different data (subjects: "
            + ", ".join(f"cause {c}: {m}" for c, m in sorted(sizes.items()))
            + "); fit every cause on the same rows"
        )
    return k, dict(sorted(out.items()))


def predict_cumulative_incidence(
    models: dict[int, Any],
    newdata: pd.DataFrame,
    *,
    cause: int,
    times: Any,
    product_limit: bool,
) -> PredictedCumulativeIncidence:
    r"""Predicted cumulative incidence of ``cause`` by each of ``times`` from cause-specific Cox fits.

    Parameters
    ----------
    models : dict of int to CoxResult
        ``{cause code: fit}``, one unstratified model per cause of the data,
        each from :func:`cause_specific_cox` on the same rows. A cause left
        out would be treated as impossible, which overestimates the incidence
        of the others: give every cause (the caller knows the causes; this
        function cannot check that none is missing).
    newdata : pandas.DataFrame
        Subjects to predict for; must hold the covariates of every model.
    cause : int
        The cause whose cumulative incidence is predicted.
    times : float or array-like of float
        Horizons, strictly increasing, ``>= 0`` and not after the last
        follow-up time of the fitted data.
    product_limit : bool
        Required. ``False``: :math:`\hat S(t-) = \exp\{-\sum_l
        \hat\Lambda_l(t-)\}`; ``True``: the product-limit form
        :math:`\prod_{s<t}\{1 - \sum_l \Delta\hat\Lambda_l(s)\}` (formulas in
        :class:`PredictedCumulativeIncidence`). riskRegression's
        ``predictRisk`` (and ``predict``) of a ``CSC`` fit defaults to
        ``product.limit = TRUE``.

    Returns
    -------
    PredictedCumulativeIncidence
        ``.risk[:, j]`` is the predicted incidence by ``times[j]``.

    Raises
    ------
    StudyvalError
        ``models`` not a dict of Cox fits keyed by their cause, a stratified
        fit, fits on different data, no model for ``cause``, a missing or
        non-numeric covariate in ``newdata``, bad ``times`` (or a time after
        the last follow-up time, where ``predictRisk`` returns NA).

    Warns
    -----
    StatisticalWarning
        A predicted incidence above 1 (possible with ``product_limit=False``
        for subjects at very high risk; ``predictRisk`` warns too and returns
        the values, as this function does).

    Notes
    -----
    Agrees with ``riskRegression::predictRisk(CSC(Hist(time, status) ~ x1 +
    x2, data = d), newdata = nd, times = times, cause = k, product.limit =
    FALSE)`` (and ``TRUE``) to about 1e-9 (``coxph`` stops at its own
    convergence tolerance; the formula itself is exact), Efron ties included (``CSC``
    fits ``coxph`` with ``ties = "efron"``; its baseline hazard is the Efron
    one, as :attr:`~studyval.analysis.survival.CoxResult.baseline_hazard`).
    ``CSC``'s default ``surv.type = "hazard"`` (one Cox model per cause) is
    what this implements; ``surv.type = "survival"`` (a Cox model of the
    event-free survival) is not offered.

    """
    k, fits = _check_models(models, cause)
    if not isinstance(newdata, pd.DataFrame):
        raise StudyvalError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
    if not isinstance(product_limit, bool | np.bool_):
        raise StudyvalError(
            f"product_limit must be True or False (riskRegression's default is True), "
            f"got {product_limit!r}"
        )
    q = _check_query_times(times)
    last = max(float(f.baseline_hazard["time"].max()) for f in fits.values())
    if q[-1] > last:
        raise StudyvalError(
            f"times: {q[-1]:g} is after the last follow-up time {last:g} of the fitted data, "
            "where the baseline hazards (and predictRisk) are undefined"
        )
    grid = np.unique(
        np.concatenate([f.baseline_hazard["time"].to_numpy(np.float64) for f in fits.values()])
    )
    grid = grid[grid <= q[-1]]
    n = len(newdata)
    total_left = np.zeros((n, grid.size))  # sum_l Lambda_l(t_j- | x)
    d_total = np.zeros((n, grid.size))
    d_cause = np.zeros((n, grid.size))
    for code, fit in fits.items():
        bh = fit.baseline_hazard
        idx = np.searchsorted(bh["time"].to_numpy(np.float64), grid, side="right")
        h0 = np.concatenate(([0.0], bh["cumhaz"].to_numpy(np.float64)))[idx]
        dh0 = np.diff(np.concatenate(([0.0], h0)))
        rel = np.exp(fit.predict_risk(newdata))[:, None]
        total_left += rel * (h0 - dh0)[None, :]
        d_total += rel * dh0[None, :]
        if code == k:
            d_cause = rel * dh0[None, :]
    if product_limit:
        # S(t_j-) = prod_{i < j} (1 - dLambda(t_i)), by a running product
        factors = np.concatenate((np.ones((n, 1)), 1.0 - d_total[:, :-1]), axis=1)
        surv_left = np.cumprod(factors, axis=1)
    else:
        surv_left = np.exp(-total_left)
    cum = np.concatenate((np.zeros((n, 1)), np.cumsum(surv_left * d_cause, axis=1)), axis=1)
    risk = np.ascontiguousarray(cum[:, np.searchsorted(grid, q, side="right")])
    risk.setflags(write=False)
    above = risk > 1.0
    if above.any():
        warnings.warn(
            f"predicted cumulative incidence above 1 for {int(above.any(axis=1).sum())} of {n} "
            f"subject(s) (largest {float(risk.max()):.6g}): the exponential form "
            "(product_limit=False) does not bound it; product_limit=True does",
            StatisticalWarning,
            stacklevel=2,
        )
    return PredictedCumulativeIncidence(
        cause=k,
        causes=tuple(fits),
        times=tuple(float(v) for v in q),
        product_limit=bool(product_limit),
        n=int(n),
        risk=risk,
    )


# --------------------------------------------------------------------------- Brier
_BRIER_METHOD = (
    "IPCW Brier score for competing risks, Kaplan-Meier censoring weights, "
    "influence-function SE (riskRegression::Score)"
)


@dataclasses.dataclass(frozen=True)
class CompetingRisksBrierResult(Result):
    r"""IPCW Brier score of a predicted cumulative incidence, its null model and the IPA.

    With :math:`\hat p_i` the predicted cumulative incidence of cause
    :math:`k` by :math:`\tau`, :math:`\hat G` the Kaplan-Meier estimate of the
    censoring distribution (reverse KM, events before censorings at tied
    times, as ``prodlim``) and :math:`\delta_i` the cause of subject
    :math:`i` (0 = censored),

    .. math::

        \widehat{\mathrm{BS}}_k(\tau) = \frac1n\sum_i R_i,\qquad
        R_i = \begin{cases}
            (1 - \hat p_i)^2 / \hat G(T_i-) & T_i \le \tau,\ \delta_i = k\\
            \hat p_i^2 / \hat G(T_i-) & T_i \le \tau,\ \delta_i \notin \{0, k\}\\
            \hat p_i^2 / \hat G(\tau) & T_i > \tau\\
            0 & T_i \le \tau,\ \delta_i = 0
        \end{cases}

    (Graf et al. 1999, doi:10.1002/(SICI)1097-0258(19990915/30)18:17/18<2529::AID-SIM274>3.0.CO;2-5;
    for competing risks Schoop, Beyersmann, Schumacher & Binder 2011,
    doi:10.1002/bimj.201000073): a subject with a competing event by
    :math:`\tau` has outcome 0 for cause :math:`k`. The standard error is
    :math:`\mathrm{sd}(\mathrm{IF})/\sqrt n` with
    :math:`\mathrm{IF}_j = R_j - \overline R + C_j(R)`, :math:`C_j` the term
    for estimating :math:`\hat G` (see
    :class:`~studyval.analysis.survival_validation.TimeDependentAUCResult`;
    omitted when ``conservative=True``). The null model predicts the
    Aalen-Johansen cumulative incidence :math:`\hat F_k(\tau)`
    (:func:`cumulative_incidence`) for everybody; its Brier score and SE are
    computed the same way (the Aalen-Johansen risk treated as a fixed
    prediction, as ``Score`` does). The index of prediction accuracy (Kattan &
    Gerds 2018, doi:10.1186/s41512-018-0029-2) is
    :math:`1 - \widehat{\mathrm{BS}}/\widehat{\mathrm{BS}}_{\text{null}}`.
    Intervals are Wald intervals truncated to [0, 1], as in ``Score``.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : float
        The model's Brier score (lower = better), SE and limits.
    ci_level : float
        ``1 - alpha``.
    null_estimate, null_se, null_ci_low, null_ci_high : float
        The same for the null (Aalen-Johansen) model.
    null_risk : float
        :math:`\hat F_k(\tau)`, the null model's prediction.
    ipa : float
        Index of prediction accuracy.
    horizon : float
        :math:`\tau`.
    cause : int
        The cause of interest :math:`k`.
    n : int
        Subjects.
    n_events : int
        Events of ``cause`` at or before the horizon.
    n_competing : int
        Events of other causes at or before the horizon.
    n_censored_before_horizon : int
        Subjects censored at or before the horizon (weight 0).
    n_event_free : int
        Subjects with follow-up beyond the horizon.
    conservative : bool
        True if the censoring term of the influence function was omitted.
    method : str
        Description.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    null_estimate: float
    null_se: float
    null_ci_low: float
    null_ci_high: float
    null_risk: float
    ipa: float
    horizon: float
    cause: int
    n: int
    n_events: int
    n_competing: int
    n_censored_before_horizon: int
    n_event_free: int
    conservative: bool
    method: str = _BRIER_METHOD


def brier_competing(
    time: Any,
    event_code: Any,
    predicted_risk: Any,
    *,
    cause: int,
    horizon: float,
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
    conservative: bool = False,
) -> CompetingRisksBrierResult:
    r"""IPCW Brier score of a predicted cumulative incidence at ``horizon``, null model and IPA.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    predicted_risk : array-like, shape (n,)
        Predicted cumulative incidence of ``cause`` by ``horizon``, in [0, 1]
        (e.g. ``predict_cumulative_incidence(...).risk[:, 0]``).
    cause : int
        The cause of interest; other causes are competing events (outcome 0).
    horizon : float
        :math:`\tau > 0`, before the last follow-up time.
    alpha : float, default 0.05
        Intervals have level ``1 - alpha``.
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.
    conservative : bool, default False
        Omit the censoring term of the influence function
        (``Score(conservative = TRUE)``).

    Returns
    -------
    CompetingRisksBrierResult
        Formulas there.

    Raises
    ------
    StudyvalError
        Invalid inputs; a predicted risk outside [0, 1] (a cause-specific Cox
        prediction with ``product_limit=False`` can exceed 1).
    EstimationError
        All subjects censored, the horizon at or beyond the last follow-up
        time (``1/G(horizon)`` undefined), or no event of ``cause`` by the
        horizon (the null model predicts 0 and the IPA is undefined).

    Notes
    -----
    Agrees with ``riskRegression::Score(list(m = p), formula = Hist(time,
    status) ~ 1, data = d, times = horizon, cause = k, metrics = "brier",
    null.model = TRUE, se.fit = TRUE, summary = "ipa")`` (``Brier``, ``se``,
    ``lower``, ``upper`` of the model and of the ``Null model``, and ``IPA``;
    ``cens.model = "km"``, which is what ``Score`` uses for ``~ 1``). A
    subject whose event (of any cause) is at exactly :math:`\tau` counts as an
    event by :math:`\tau`; one censored at exactly :math:`\tau` gets weight 0.

    """
    from studyval.analysis.survival_validation import (
        _censoring_correction,
        _check_horizon,
        _check_prediction,
        _ipcw,
        _se,
    )

    alpha = check_alpha(alpha)
    t = check_follow_up_time(time)
    codes, k, _ = _check_event_codes(event_code, t.shape[0], cause=cause, causes=causes)
    p = _check_prediction(predicted_risk, t.shape[0], "predicted_risk", probability=True)
    h = _check_horizon(horizon, t, codes, k)
    cons = bool(conservative)
    w = _ipcw(t, codes, k, h)
    any_event = (codes != 0).astype(np.int64)

    def fit(pred: np.ndarray) -> tuple[float, float]:
        resid = np.where(w.case > 0, (1.0 - pred) ** 2 * w.case, pred**2 * w.control)
        est = float(resid.mean())
        infl = resid - est
        if not cons:
            infl = infl + _censoring_correction(t, any_event, h, resid)
        return est, _se(infl)

    est, se = fit(p)
    aj = cumulative_incidence(t, codes, cause=k, times=[h], causes=causes)
    null_risk = float(aj.table()["estimate"].iloc[0])
    null_est, null_se = fit(np.full_like(p, null_risk))
    z = _z(alpha)
    before = t <= h
    return CompetingRisksBrierResult(
        estimate=est,
        se=se,
        ci_low=max(0.0, est - z * se),
        ci_high=min(1.0, est + z * se),
        ci_level=1.0 - alpha,
        null_estimate=null_est,
        null_se=null_se,
        null_ci_low=max(0.0, null_est - z * null_se),
        null_ci_high=min(1.0, null_est + z * null_se),
        null_risk=null_risk,
        ipa=1.0 - est / null_est,
        horizon=h,
        cause=k,
        n=int(t.shape[0]),
        n_events=int(np.count_nonzero(before & (codes == k))),
        n_competing=int(np.count_nonzero(before & (codes != 0) & (codes != k))),
        n_censored_before_horizon=int(np.count_nonzero(before & (codes == 0))),
        n_event_free=int(np.count_nonzero(~before)),
        conservative=cons,
    )
