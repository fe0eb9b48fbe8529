r"""Linear mixed model with a random patient intercept **and slope** in time (REML).

.. math::

    y_{ij} = x_{ij}^\top\beta + b_{0i} + b_{1i} t_{ij} + e_{ij}, \qquad
    (b_{0i}, b_{1i})^\top \sim N\!\left(0, \begin{pmatrix}\sigma_0^2 & \sigma_{01}\\
    \sigma_{01} & \sigma_1^2\end{pmatrix}\right),\quad e_{ij} \sim N(0, \sigma_e^2),

the model of ``lme4::lmer(y ~ x + (1 + t | patient), REML = TRUE)`` (Laird &
Ware 1982, doi:10.2307/2529876), fitted with
:class:`statsmodels.regression.mixed_linear_model.MixedLM` (``re_formula =
"~t"``). It is the sensitivity analysis of the random-intercept model of
:func:`studyval.analysis.mixed_models.random_intercept_lmm`: patients may
change at their own rate, which a random intercept alone forces to be equal
(the fixed time effects' standard errors are then too small when slopes vary).

The random slope is tested against the random-intercept model (same fixed
effects, both REML) by the likelihood ratio :math:`2(\ell_1 - \ell_0)`. The
null puts :math:`\sigma_1^2` on the boundary of its space, so the p-value is
from the 50:50 mixture of :math:`\chi^2_1` and :math:`\chi^2_2` (Self & Liang
1987, doi:10.1080/01621459.1987.10478472; Stram & Lee 1994,
doi:10.2307/2533455); the naive :math:`\chi^2_2` p-value (``anova(m0, m1,
refit = FALSE)``) is conservative and reported beside it.

Fixed-effect CIs are Wald intervals; p-values from the normal distribution,
as in :mod:`~studyval.analysis.mixed_models`. Missing visits are left out
(likelihood-based: valid under missing at random).

Optimisers are tried in the order of
:data:`studyval.analysis.mixed_models.OPTIMISERS` until one converges; every
warning statsmodels raises is re-issued with the model and the optimiser named.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis.mixed_models import (
    MixedModelResult,
    data_fingerprint,
    fit_with_optimisers,
    random_intercept_lmm,
    wald_fixed_effects,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = ["RandomSlopeResult", "random_slope_lmm"]


@dataclasses.dataclass(frozen=True, eq=False)
class RandomSlopeResult(Result):
    r"""REML fit of a random intercept and slope model, with its test against the intercept-only one.

    Attributes
    ----------
    fixed : pandas.DataFrame
        ``term, estimate, se, ci_low, ci_high, z, p_value`` per fixed effect.
    var_intercept, var_slope, cov_intercept_slope : float
        :math:`\sigma_0^2, \sigma_1^2, \sigma_{01}` (slope per unit of ``slope``).
    corr_intercept_slope : float
        :math:`\sigma_{01} / (\sigma_0 \sigma_1)`.
    var_residual : float
        :math:`\sigma_e^2`.
    reml_loglik, reml_loglik_intercept : float
        REML log-likelihoods of this model and of the random-intercept model.
    lr_chisq : float
        :math:`2(\ell_1 - \ell_0)` (REML, same fixed effects).
    lr_p_value : float
        p from :math:`\tfrac12\chi^2_1 + \tfrac12\chi^2_2` (boundary null).
    lr_p_naive : float
        p from :math:`\chi^2_2` (``anova(..., refit = FALSE)``; conservative).
    n_obs, n_patients : int
    ci_level : float
    formula, slope, optimiser, optimisers_tried : str
    """

    fixed: pd.DataFrame = dataclasses.field(repr=False)
    var_intercept: float
    var_slope: float
    cov_intercept_slope: float
    corr_intercept_slope: float
    var_residual: float
    reml_loglik: float
    reml_loglik_intercept: float
    lr_chisq: float
    lr_p_value: float
    lr_p_naive: float
    n_obs: int
    n_patients: int
    ci_level: float
    formula: str
    slope: str
    optimiser: str
    optimisers_tried: str

    def to_frame(self) -> pd.DataFrame:
        """Fixed effects, then one row per variance component (``var_*``, ``cov_*``; no SE)."""
        var = pd.DataFrame(
            {
                "term": ["var_intercept", "var_slope", "cov_intercept_slope", "var_residual"],
                "estimate": [
                    self.var_intercept,
                    self.var_slope,
                    self.cov_intercept_slope,
                    self.var_residual,
                ],
            }
        )
        out = pd.concat([self.fixed, var], ignore_index=True)
        return out.assign(n_obs=self.n_obs, n_patients=self.n_patients, optimiser=self.optimiser)


def _gls_covariance(model: object, g: np.ndarray, ve: float) -> np.ndarray:
    r"""Covariance of the fixed effects, :math:`(\sum_i X_i^\top V_i^{-1} X_i)^{-1}`.

    :math:`V_i = Z_i G Z_i^\top + \sigma_e^2 I` at the REML estimates: the
    covariance ``lme4``'s ``vcov`` reports (statsmodels' ``cov_params`` takes
    the joint Hessian with the variance parameters and differs by about 1e-3
    with a random slope).
    """
    x, z = model.exog, model.exog_re  # type: ignore[attr-defined]
    info = np.zeros((x.shape[1], x.shape[1]))
    for lab in model.group_labels:  # type: ignore[attr-defined]
        idx = model.row_indices[lab]  # type: ignore[attr-defined]
        xi, zi = x[idx], z[idx]
        vi = zi @ g @ zi.T + ve * np.eye(len(idx))
        info += xi.T @ np.linalg.solve(vi, xi)
    return np.linalg.inv(info)


def random_slope_lmm(
    data: pd.DataFrame,
    *,
    formula: str,
    group: str,
    slope: str,
    alpha: float = 0.05,
    intercept_fit: MixedModelResult | None = None,
) -> RandomSlopeResult:
    r"""Fit ``formula`` with a random intercept and a random slope in ``slope`` per ``group``.

    Parameters
    ----------
    data : DataFrame
        Long table, one row per observation, no missing values.
    formula : str
        Patsy formula of the fixed part, e.g. ``"y ~ years * oa"``.
    group : str
        Column with the patient id.
    slope : str
        Numeric column whose coefficient varies by patient (time, e.g. ``years``).
    alpha : float
        CI level ``1 - alpha``.
    intercept_fit : MixedModelResult, optional
        The random-intercept model of the likelihood-ratio test, already
        fitted by :func:`~studyval.analysis.mixed_models.random_intercept_lmm`
        to exactly these ``data`` with this ``formula``, ``group`` and
        ``alpha`` (an analysis that reports both models fits it once). It is
        checked, never trusted: a fit of other data (by
        :func:`~studyval.analysis.mixed_models.data_fingerprint`), formula or
        level is an error. Default: fitted here.

    Returns
    -------
    RandomSlopeResult

    Raises
    ------
    StudyvalError
        A missing column or value; bad ``alpha``; an ``intercept_fit`` of other
        data, formula or CI level.
    EstimationError
        Fewer than 2 patients with 2 distinct values of ``slope`` (a patient
        slope is not identifiable); no optimiser converges; the random-slope
        variance at the boundary (0).

    Warns
    -----
    statsmodels ConvergenceWarning and others
        Re-issued with the formula and optimiser named.
    StatisticalWarning
        The reported fit is not from the first optimiser.

    Notes
    -----
    Agrees with ``lme4::lmer(y ~ years * oa + (1 + years | id), REML = TRUE)``
    (fixed effects, ``sqrt(diag(vcov(m)))``, ``VarCorr``, ``logLik``) to about
    1e-5 relative where the REML surface is well curved; with a nearly flat
    surface in :math:`\sigma_1^2` the two optimisers stop at slightly
    different points and the variance components differ by up to about 1e-3
    (lme4 itself moves by that much with a tighter tolerance). The fixed-effect
    covariance is the GLS one, as ``vcov`` (see :func:`_gls_covariance`).
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    for col in (group, slope):
        if col not in data.columns:
            raise StudyvalError(f"column {col!r} is not in the data")
    if not 0 < alpha < 1:
        raise StudyvalError(f"alpha must be in (0, 1), got {alpha}")
    if data.isna().any().any():
        col = data.columns[data.isna().any()][0]
        raise StudyvalError(f"column {col!r} has missing values; remove unobserved visits first")
    if intercept_fit is not None:
        same_data = intercept_fit._data_key == data_fingerprint(data, group)
        if not same_data or (intercept_fit.formula, intercept_fit.ci_level) != (formula, 1 - alpha):
            raise StudyvalError(
                f"intercept_fit is not the random-intercept fit of {formula} per {group} to "
                f"these data at level {1 - alpha:g} (it is {intercept_fit.formula} at level "
                f"{intercept_fit.ci_level:g}, fitted to {'the same' if same_data else 'other'} data)"
            )
    n_pat = int(data[group].nunique())
    label = f"{formula} (random intercept and {slope} slope per {group})"
    n_slopes = int((data.groupby(group)[slope].nunique() >= 2).sum())
    if n_slopes < 2:
        raise EstimationError(
            f"{label}: {n_slopes} patient(s) with two distinct values of {slope}; a patient "
            "slope needs at least two visits per patient in at least two patients"
        )
    model = MixedLM.from_formula(formula, data=data, groups=data[group], re_formula=f"~{slope}")
    fit, attempts = fit_with_optimisers(model, label)
    tried = "; ".join(str(a) for a in attempts)
    if fit is None:
        raise EstimationError(f"the mixed model {label} did not converge ({tried})")
    if len(attempts) > 1:
        warnings.warn(
            f"{label}: the reported fit is from optimiser {attempts[-1].optimiser} ({tried})",
            StatisticalWarning,
            stacklevel=2,
        )
    g = np.asarray(fit.cov_re, float)
    v0, v1, c01 = float(g[0, 0]), float(g[1, 1]), float(g[0, 1])
    ve = float(fit.scale)
    if not v1 > 1e-8 * (v0 + ve):
        raise EstimationError(
            f"{label}: the random-slope variance is estimated at 0 (boundary: {v1:.3g}); the "
            "random-intercept model is the fit"
        )
    names = list(fit.model.exog_names)
    fixed = wald_fixed_effects(
        names, np.asarray(fit.fe_params, float), _gls_covariance(model, g, ve), alpha
    )
    base = (
        random_intercept_lmm(data, formula=formula, group=group, alpha=alpha)
        if intercept_fit is None
        else intercept_fit
    )
    chisq = max(0.0, 2.0 * (float(fit.llf) - base.reml_loglik))
    p_mix = 0.5 * stats.chi2.sf(chisq, 1) + 0.5 * stats.chi2.sf(chisq, 2)
    return RandomSlopeResult(
        fixed=fixed,
        var_intercept=v0,
        var_slope=v1,
        cov_intercept_slope=c01,
        corr_intercept_slope=c01 / np.sqrt(v0 * v1),
        var_residual=ve,
        reml_loglik=float(fit.llf),
        reml_loglik_intercept=float(base.reml_loglik),
        lr_chisq=chisq,
        lr_p_value=float(p_mix),
        lr_p_naive=float(stats.chi2.sf(chisq, 2)),
        n_obs=len(data),
        n_patients=n_pat,
        ci_level=1 - alpha,
        formula=formula,
        slope=slope,
        optimiser=attempts[-1].optimiser,
        optimisers_tried=tried,
    )
