r"""Test of proportional hazards for a Cox fit from scaled Schoenfeld residuals, as ``cox.zph``.

* :func:`cox_zph` -- per-covariate and global score tests of
  :math:`\beta_j(t) = \beta_j + \theta_j g(t)` for a
  :func:`studyval.analysis.cox.cox` fit, with the time transforms ``"km"``,
  ``"rank"``, ``"identity"`` and ``"log"``, and the scaled Schoenfeld residuals
  (the points of ``plot.cox.zph``). This is ``survival::cox.zph`` since version
  3.0, not the older per-variable correlation test.

Oracles: R 4.2 with ``survival`` 3.5 (``cox.zph``); see
``tests/test_survival_cox_zph.py``.

References
----------
* Grambsch PM, Therneau TM (1994). Proportional hazards tests and diagnostics
  based on weighted residuals. Biometrika 81:515-526. doi:10.1093/biomet/81.3.515
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_option
from studyval.analysis.cox import (
    CoxResult,
    _cox_design,
    _cox_eval,
    _cox_prepare,
    _weighted_info,
)
from studyval.analysis.kaplan_meier import _km_steps
from studyval.errors import StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = ["ZPHResult", "cox_zph"]

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
