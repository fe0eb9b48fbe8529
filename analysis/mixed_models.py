r"""Linear mixed models for repeated scores (VAS, OKS) with a random patient intercept.

.. math::

    y_{ij} = x_{ij}^\top\beta + b_i + e_{ij}, \qquad b_i \sim N(0, \sigma_b^2),\quad
    e_{ij} \sim N(0, \sigma_e^2),

fitted by restricted maximum likelihood (REML; Patterson & Thompson 1971,
doi:10.1093/biomet/58.3.545) with :class:`statsmodels.regression.mixed_linear_model.MixedLM`,
the model of ``lme4::lmer(y ~ x + (1 | patient), REML = TRUE)``. Fixed-effect
CIs are Wald intervals :math:`\hat\beta \pm z_{1-\alpha/2}\,\mathrm{SE}`
(``confint(fit, method = "Wald")``); p-values are from the normal
distribution (large-sample; lmerTest's Satterthwaite df would differ in the
third decimal for these sample sizes). Missing visits are left out
(likelihood-based: valid under missing at random, no imputation).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = ["MixedModelResult", "n_followed", "random_intercept_lmm"]


@dataclasses.dataclass(frozen=True, eq=False)
class MixedModelResult(Result):
    r"""REML fit of a random-intercept linear mixed model.

    Attributes
    ----------
    fixed : DataFrame
        ``term, estimate, se, ci_low, ci_high, z, p_value`` (one row per fixed effect).
    var_patient, var_residual : float
        :math:`\\hat\sigma_b^2` and :math:`\\hat\sigma_e^2`.
    icc : float
        :math:`\sigma_b^2 / (\sigma_b^2 + \sigma_e^2)`.
    reml_loglik : float
    n_obs, n_patients : int
    converged : bool
    ci_level : float
    formula : str
    """

    fixed: pd.DataFrame = dataclasses.field(repr=False)
    var_patient: float
    var_residual: float
    icc: float
    reml_loglik: float
    n_obs: int
    n_patients: int
    converged: bool
    ci_level: float
    formula: str
    method: str = "REML, random patient intercept (statsmodels MixedLM)"

    def to_frame(self) -> pd.DataFrame:
        """Fixed effects, then the two variance components (``term`` = ``var_patient``, ``var_residual``)."""
        f = self.fixed.copy()
        extra = pd.DataFrame(
            [
                {"term": "var_patient", "estimate": self.var_patient},
                {"term": "var_residual", "estimate": self.var_residual},
            ]
        )
        out = pd.concat([f, extra], ignore_index=True)
        out["n_obs"] = self.n_obs
        out["n_patients"] = self.n_patients
        out["ci_level"] = self.ci_level
        out["converged"] = self.converged
        out["formula"] = self.formula
        out["method"] = self.method
        return out


def random_intercept_lmm(
    data: pd.DataFrame,
    *,
    formula: str,
    group: str,
    alpha: float = 0.05,
) -> MixedModelResult:
    """Fit ``formula`` with a random intercept per ``group`` by REML.

    Parameters
    ----------
    data : DataFrame
        Long table, one row per observation (rows with a missing outcome must
        already be removed; a missing covariate is an error).
    formula : str
        Patsy formula of the fixed part, e.g. ``"oks ~ years * oa"``.
    group : str
        Column with the patient id.
    alpha : float
        CI level ``1 - alpha``.

    Returns
    -------
    MixedModelResult

    Raises
    ------
    StudyvalError
        ``group`` not a column, missing values, fewer than 2 patients.
    EstimationError
        The optimiser does not converge, or the random-intercept variance is
        estimated on the boundary (0).
    """
    from statsmodels.regression.mixed_linear_model import MixedLM

    if group not in data.columns:
        raise StudyvalError(f"group column {group!r} is not in the data")
    if not 0 < alpha < 1:
        raise StudyvalError(f"alpha must be in (0, 1), got {alpha}")
    if data.isna().any().any():
        col = data.columns[data.isna().any()][0]
        raise StudyvalError(f"column {col!r} has missing values; remove unobserved visits first")
    n_pat = data[group].nunique()
    if n_pat < 2:
        raise EstimationError(f"{n_pat} patient(s): a random intercept needs at least 2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)
        model = MixedLM.from_formula(formula, data=data, groups=data[group], re_formula="1")
        fit = None
        for method in ("lbfgs", "bfgs", "powell"):
            try:
                fit = model.fit(reml=True, method=method)
            except (np.linalg.LinAlgError, ValueError):
                continue
            if fit.converged:
                break
    if fit is None or not fit.converged:
        raise EstimationError(f"the mixed model {formula} did not converge")
    var_b = float(np.asarray(fit.cov_re)[0, 0])
    var_e = float(fit.scale)
    if var_b <= 1e-10:
        raise EstimationError(
            f"{formula}: the patient random-intercept variance is estimated at 0 (boundary)"
        )
    names = list(fit.model.exog_names)
    est = np.asarray(fit.fe_params, float)
    se = np.sqrt(np.diag(np.asarray(fit.cov_params())[: len(names), : len(names)]))
    z = est / se
    q = stats.norm.ppf(1 - alpha / 2)
    fixed = pd.DataFrame(
        {
            "term": names,
            "estimate": est,
            "se": se,
            "ci_low": est - q * se,
            "ci_high": est + q * se,
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
        }
    )
    return MixedModelResult(
        fixed=fixed,
        var_patient=var_b,
        var_residual=var_e,
        icc=var_b / (var_b + var_e),
        reml_loglik=float(fit.llf),
        n_obs=len(data),
        n_patients=int(n_pat),
        converged=bool(fit.converged),
        ci_level=1 - alpha,
        formula=formula,
    )


def n_followed(long: pd.DataFrame, *, visit: str, group: Any = None) -> pd.DataFrame:
    """Patients with an observation at each visit (optionally by group).

    Columns ``visit, [group,] n_followed``.
    """
    keys = [visit] if group is None else [visit, group]
    return long.groupby(keys, observed=True).size().rename("n_followed").reset_index()
