r"""Test of proportional hazards for a Cox fit from scaled Schoenfeld residuals, as ``cox.zph``.

* :func:`cox_zph` -- per-covariate and global score tests of
  :math:`\beta_j(t) = \beta_j + \theta_j g(t)` for a
  :func:`studyval.analysis.cox.cox` fit, with the time transforms ``"km"``,
  ``"rank"``, ``"identity"`` and ``"log"``, and the scaled Schoenfeld residuals
  (the points of ``plot.cox.zph``). This is ``survival::cox.zph`` since version
  3.0, not the older per-variable correlation test.
* :func:`zph_smooth` -- the natural-spline smooth of those residuals with its
  pointwise interval, the curve of ``plot.cox.zph``.

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
from scipy import linalg, stats

from studyval.analysis._checks import check_alpha, check_option
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

__all__ = ["ZPHResult", "ZPHSmoothResult", "cox_zph", "zph_smooth"]

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

    :meth:`to_frame` is the tidy table ``term, chisq, df, p_value``, one row
    per covariate and a last row ``GLOBAL``; :meth:`summary_frame` the one-row
    table of the scalar fields (transform and global test).

    Attributes
    ----------
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
    terms : tuple of str
        The covariates, in the order of the fit (the residual columns).
    coef : numpy.ndarray, shape (p,)
        The fitted coefficients :math:`\hat\beta` (the level a flat smooth of
        the scaled residuals lies on).
    var : numpy.ndarray, shape (p, p)
        Model-based variance of one scaled residual,
        :math:`(\mathcal I_{\beta\beta}/d)^{-1}` (``cox.zph``'s ``var``; the
        per-stratum event counts replace :math:`d` as in R); the pointwise
        variance of a smooth of the residuals (:func:`zph_smooth`) scales it.

    """

    _table: pd.DataFrame = dataclasses.field(repr=False)
    residuals: pd.DataFrame = dataclasses.field(repr=False)
    transform: str
    global_chisq: float
    global_df: int
    global_p: float
    terms: tuple[str, ...] = ()
    coef: np.ndarray = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]
    var: np.ndarray = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per covariate and ``GLOBAL`` (a copy); see the class docstring."""
        return self._table.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (transform and global test)."""
        return Result.to_frame(self)


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
        _table=table,
        residuals=res,
        transform=transform,
        global_chisq=chi_g,
        global_df=int(p),
        global_p=float(stats.chi2.sf(chi_g, p)),
        terms=tuple(covs),
        coef=beta.copy(),
        var=np.linalg.inv(vmean),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ZPHSmoothResult(Result):
    r"""Spline smooth of the scaled Schoenfeld residuals with a pointwise interval, as ``plot.cox.zph``.

    For each term, the scaled residuals :math:`y_k` are regressed by least
    squares on a natural cubic spline basis :math:`B` of the transformed event
    times :math:`x_k = g(t_k)` with ``df`` degrees of freedom (intercept
    included): boundary knots at the range of :math:`x`, ``df - 2`` interior
    knots at equally spaced quantiles of the pooled grid and event times
    (``splines::ns(c(grid, x), df = df, intercept = TRUE)``). On a grid
    :math:`x^*` of ``n_points`` equally spaced values the smooth
    :math:`\hat\beta(x^*) = B(x^*)\hat\gamma` estimates :math:`\beta_j(t)`;
    its pointwise standard error is

    .. math::

        \mathrm{se}\{\hat\beta(x^*)\} = \sqrt{V_{jj}\; B(x^*)(B^\top B)^{-1}B(x^*)^\top},

    with :math:`V_{jj}` the model-based variance of one scaled residual
    (``cox.zph``'s ``var``, :math:`d\,\mathcal I_{\beta\beta}^{-1}`), not the
    residual variance of the least-squares fit (Grambsch & Therneau 1994,
    doi:10.1093/biomet/81.3.515, section 4). Limits are
    :math:`\hat\beta \pm z_{1-\alpha/2}\,\mathrm{se}`.

    :meth:`to_frame` is one row per term and grid point: ``term, time, g_time,
    fit, se, ci_low, ci_high, coef`` (``time``: the follow-up time at
    ``g_time``, interpolated between event times; ``coef``: the fitted
    constant coefficient :math:`\hat\beta_j`, the line a flat smooth lies on).

    Attributes
    ----------
    df : int
        Degrees of freedom of the spline.
    n_points : int
        Grid points per term.
    ci_level : float
        ``1 - alpha``.
    skipped : tuple of str
        Terms without a smooth because the spline fit is singular (too few
        distinct event times); a StatisticalWarning names them, as R warns.

    """

    _table: pd.DataFrame = dataclasses.field(repr=False)
    df: int
    n_points: int
    ci_level: float
    skipped: tuple[str, ...] = ()

    def to_frame(self) -> pd.DataFrame:
        """One row per term and grid point (a copy); see the class docstring."""
        return self._table.copy()


def _natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    r"""Natural cubic spline basis :math:`1, x, d_k - d_{K-1}` (Hastie et al., ESL eq. 5.4-5.5).

    It spans the same functions on ``[knots[0], knots[-1]]`` as
    ``splines::ns(x, knots = knots[1:-1], Boundary.knots = knots[[0, -1]],
    intercept = TRUE)``, so least-squares fits and their pointwise variances
    are the same; ``x`` is rescaled to the unit interval first for conditioning.
    """
    lo, hi = knots[0], knots[-1]
    u, k = (x - lo) / (hi - lo), (knots - lo) / (hi - lo)

    def d(j: int) -> np.ndarray:
        return (np.maximum(u - k[j], 0.0) ** 3 - np.maximum(u - k[-1], 0.0) ** 3) / (k[-1] - k[j])

    cols = [np.ones_like(u), u] + [d(j) - d(k.size - 2) for j in range(k.size - 2)]
    return np.column_stack(cols)


def zph_smooth(
    zph: ZPHResult, *, df: int = 4, n_points: int = 40, alpha: float = 0.05
) -> ZPHSmoothResult:
    r"""Smooth of the scaled Schoenfeld residuals of each term, as ``survival::plot.cox.zph``.

    Parameters
    ----------
    zph : ZPHResult
        From :func:`cox_zph`.
    df : int, default 4
        Degrees of freedom of the natural spline (R's ``df``), >= 2.
    n_points : int, default 40
        Grid points from the smallest to the largest transformed event time
        (R's ``nsmo``), >= 2.
    alpha : float, default 0.05
        Pointwise limits at level ``1 - alpha``.

    Returns
    -------
    ZPHSmoothResult

    Raises
    ------
    StudyvalError
        ``zph`` is not a :class:`ZPHResult`; ``df`` or ``n_points`` below 2.

    Notes
    -----
    Fits and standard errors agree with ``plot.cox.zph(cox.zph(fit), df = 4,
    nsmo = 40)`` (its ``yhat`` and ``temp / 2``; ``tests/test_survival_cox_zph.py``).
    R draws the band at :math:`\pm 2` standard errors whatever the level; here
    it is :math:`\pm z_{1-\alpha/2}` (1.96 at ``alpha = 0.05``).

    Examples
    --------
    >>> import pandas as pd
    >>> from studyval.analysis.cox import cox
    >>> rng = np.random.default_rng(1)
    >>> d = pd.DataFrame({"x": rng.normal(size=80), "time": rng.exponential(10, 80) + 0.1,
    ...                   "event": rng.integers(0, 2, 80)})
    >>> z = cox_zph(cox(d, duration="time", event="event", covariates=["x"]), data=d)
    >>> zph_smooth(z).to_frame().shape
    (40, 8)

    """
    if not isinstance(zph, ZPHResult):
        raise StudyvalError(f"zph must be a ZPHResult from cox_zph(), got {type(zph).__name__}")
    for name, value in (("df", df), ("n_points", n_points)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 2:
            raise StudyvalError(f"{name} must be a whole number >= 2, got {value!r}")
    alpha = check_alpha(alpha)
    res = zph.residuals
    x = res["g_time"].to_numpy(np.float64)
    grid = np.linspace(x.min(), x.max(), int(n_points))
    pooled = np.concatenate([grid, x])
    inner = np.quantile(pooled, np.arange(1, df - 1) / (df - 1), method="linear")
    knots = np.concatenate([[pooled.min()], inner, [pooled.max()]])
    srt = np.argsort(x, kind="stable")
    grid_time = np.interp(grid, x[srt], res["time"].to_numpy(np.float64)[srt])
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    p_grid = _natural_spline_basis(grid, knots)
    frames, skipped = [], []
    for j, term in enumerate(zph.terms):
        y = res[term].to_numpy(np.float64)
        keep = ~np.isnan(y)
        xmat = _natural_spline_basis(x[keep], knots)
        q, r = np.linalg.qr(xmat)
        diag = np.abs(np.diag(r))
        if keep.sum() < df or diag.min() <= 1e-7 * diag.max():
            skipped.append(term)
            continue
        gamma = linalg.solve_triangular(r, q.T @ y[keep])
        fit = p_grid @ gamma
        pr = linalg.solve_triangular(r, p_grid.T, trans="T").T  # B(x*) R^{-1}
        se = np.sqrt(zph.var[j, j] * np.einsum("ij,ij->i", pr, pr))
        frames.append(
            pd.DataFrame(
                {
                    "term": term,
                    "time": grid_time,
                    "g_time": grid,
                    "fit": fit,
                    "se": se,
                    "ci_low": fit - z * se,
                    "ci_high": fit + z * se,
                    "coef": float(zph.coef[j]),
                }
            )
        )
    if skipped:
        warnings.warn(
            f"zph_smooth: the spline fit is singular for {', '.join(skipped)} (too few distinct "
            "event times); no smooth is drawn for them",
            StatisticalWarning,
            stacklevel=2,
        )
    columns = ["term", "time", "g_time", "fit", "se", "ci_low", "ci_high", "coef"]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    return ZPHSmoothResult(
        _table=table,
        df=int(df),
        n_points=int(n_points),
        ci_level=1.0 - alpha,
        skipped=tuple(skipped),
    )
