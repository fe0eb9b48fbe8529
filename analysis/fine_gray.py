r"""Fine-Gray proportional subdistribution-hazards regression.

* :func:`fine_gray` -- Fine & Gray (1999) proportional subdistribution-hazards
  regression with censoring weights and the robust variance of
  ``cmprsk::crr`` (own implementation; no R or cmprsk needed), returning a
  :class:`FineGrayResult`.

Report it with the cause-specific Cox model
(:func:`studyval.analysis.cause_specific_cox.cause_specific_cox`), as Austin,
Lee & Fine (2016) recommend. Event codes as
:mod:`studyval.analysis.competing_risks` describes them (0 = censored, 1..K =
cause).

Oracle: R 4.2 with cmprsk 2.2-11 (``crr``); R calls beside the expected values
in ``tests/test_fine_gray.py``.

References
----------
* Fine JP, Gray RJ (1999). A proportional hazards model for the subdistribution
  of a competing risk. JASA 94:496-509. doi:10.1080/01621459.1999.10474144
* Austin PC, Lee DS, Fine JP (2016). Introduction to the analysis of survival
  data in the presence of competing risks. Circulation 133:601-609.
  doi:10.1161/CIRCULATIONAHA.115.017719
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_follow_up_time
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._competing_risks_common import _check_event_codes
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "FineGrayResult",
    "fine_gray",
]


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
    (:func:`~studyval.analysis.cause_specific_cox.cause_specific_cox`), as
    Austin, Lee & Fine (2016) recommend.

    :meth:`to_frame` is the tidy coefficient table; :meth:`summary_frame` the
    one-row table of the scalar fields (counts, log-likelihoods, convergence).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per covariate: ``term, coef, se, shr, ci_low, ci_high, z,
        p_value`` (``shr`` = subdistribution hazard ratio; limits on the
        ratio scale, :math:`\exp(\hat\beta \pm z\,\mathrm{se})`). Also :meth:`to_frame`.
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

    def to_frame(self) -> pd.DataFrame:
        """Coefficient table (a copy of :attr:`summary`)."""
        return self.summary.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (counts, log-likelihoods, convergence)."""
        return Result.to_frame(self)


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
