r"""Covariate-adjusted comparison of a binary outcome between two groups (e.g. two periods).

A before/after comparison is confounded when the case mix of the two periods
differs. Two adjusted summaries of one logistic model

.. math::

    \operatorname{logit} P(Y = 1 \mid A, X) = \beta_0 + \beta_A A + X^\top \beta_X,

fitted by maximum likelihood (A = 1 for the index group, e.g. the AI-assisted
period; X the covariates, categorical ones with treatment contrasts against
their first level):

:func:`standardised_comparison`
    the **adjusted odds ratio** :math:`e^{\beta_A}` with its Wald CI, and the
    **standardised (marginal) risk difference** by g-computation
    (standardisation to the covariate distribution of all analysed rows;
    Robins 1986; Hernán & Robins 2020, *Causal Inference: What If*, ch. 13)

    .. math::

        \hat\mu_a = \frac1n \sum_{i=1}^n \operatorname{expit}(\hat\beta_0 + \hat\beta_A a
        + x_i^\top\hat\beta_X), \qquad \widehat{RD} = \hat\mu_1 - \hat\mu_0,

    with a delta-method standard error (below) and a Wald CI;
:func:`standardised_difference_statistic`
    the same :math:`\widehat{RD}` for every row of a weight matrix, for the
    patient-cluster bootstrap of :mod:`studyval.analysis.resampling`
    (:func:`standardised_comparison_bootstrap`).

Standard error of the standardised difference
---------------------------------------------
With :math:`h_i = \operatorname{expit}(x_i(1)^\top\hat\beta) -
\operatorname{expit}(x_i(0)^\top\hat\beta)` (row :math:`i` with A set to 1 and
to 0), :math:`g = \frac1n\sum_i \{\mu_{i1}(1-\mu_{i1})x_i(1) -
\mu_{i0}(1-\mu_{i0})x_i(0)\}` and :math:`V = (X^\top W X)^{-1}` the
model-based covariance of :math:`\hat\beta` (R's ``vcov(glm)``),

.. math::

    \widehat{\operatorname{Var}}(\widehat{RD}) = g^\top V g
        + \frac{1}{n^2}\sum_{i=1}^n (h_i - \widehat{RD})^2 .

The first term is the delta method with the covariates held fixed (what R's
``marginaleffects::avg_comparisons`` reports); the second adds the sampling
variability of the covariate distribution the estimate is standardised to
(the two influence-function terms are uncorrelated because
:math:`E(Y - \mu \mid X, A) = 0`; Tsiatis 2006, *Semiparametric Theory and
Missing Data*, §13.1). Rows must be independent (one row per patient); with
several rows per patient use the cluster bootstrap.

References
----------
Robins J (1986). A new approach to causal inference in mortality studies with a
sustained exposure period. Math Model 7:1393-1512. doi:10.1016/0270-0255(86)90088-6

Hernán MA, Robins JM (2020). Causal Inference: What If. Chapman & Hall/CRC, ch. 13.

Muller CJ, MacLehose RF (2014). Estimating predicted probabilities from logistic
regression: different methods correspond to different target populations. Int J
Epidemiol 43:962-970. doi:10.1093/ije/dyu029
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha
from .resampling import BootstrapResult, bootstrap

__all__ = [
    "DesignMatrix",
    "StandardisedComparisonResult",
    "design_matrix",
    "standardised_comparison",
    "standardised_comparison_bootstrap",
    "standardised_difference_statistic",
]

_MAX_ITER = 50
_TOL = 1e-10
#: |linear predictor| above this on a fitted row means a fitted probability of 0 or 1
#: to double precision: the data separate and the maximum-likelihood estimate does not exist.
_SEPARATION_ETA = 30.0


@dataclasses.dataclass(frozen=True)
class DesignMatrix:
    """Model matrix of ``intercept + group + covariates`` (treatment contrasts).

    Attributes
    ----------
    x : numpy.ndarray, shape (n, p)
        Column 0 the intercept, column 1 the group indicator, then the covariates.
    terms : tuple of str
        One name per column: ``"(Intercept)"``, ``"group"``, ``"age"``,
        ``"sex: M"`` (a level against the variable's first level).
    reference_levels : dict
        Variable -> its reference (first) level.
    dropped_levels : tuple of str
        ``"variable: level"`` of declared levels with no row (no column made).

    """

    x: np.ndarray
    terms: tuple[str, ...]
    reference_levels: dict[str, str]
    dropped_levels: tuple[str, ...]


def design_matrix(
    group: Any,
    covariates: pd.DataFrame,
    *,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
) -> DesignMatrix:
    """Build the model matrix (intercept, group, continuous, categorical dummies).

    Parameters
    ----------
    group : array-like of bool, shape (n,)
        True for the index group (A = 1).
    covariates : pandas.DataFrame
        n rows; holds every named column, none missing.
    categorical : sequence of str
        Columns entered as factors. The levels are the pandas categories in
        their order when the column is categorical, else the sorted distinct
        values; the first level present is the reference (R's
        ``contr.treatment``). A declared level with no row is left out (named
        in ``dropped_levels``).
    continuous : sequence of str
        Columns entered linearly (numeric).

    Raises
    ------
    StudyvalError
        A missing column or value, a non-numeric continuous column, a group
        that is not boolean, or lengths that disagree.

    """
    a = np.asarray(group)
    if a.dtype != np.bool_ or a.ndim != 1:
        raise StudyvalError(
            f"group must be a one-dimensional boolean array (True = index group), got dtype {a.dtype}"
        )
    n = a.size
    if len(covariates) != n:
        raise StudyvalError(f"covariates has {len(covariates)} rows but group has {n}")
    cols = [np.ones(n), a.astype(float)]
    terms = ["(Intercept)", "group"]
    refs: dict[str, str] = {}
    dropped: list[str] = []
    for name in [*continuous, *categorical]:
        if name not in covariates.columns:
            raise StudyvalError(f"covariate {name!r} is not a column of the data")
        if covariates[name].isna().any():
            k = int(covariates[name].isna().sum())
            raise StudyvalError(
                f"covariate {name!r} has {k} missing value(s); the adjusted comparison needs "
                "every covariate (complete cases are not selected silently)"
            )
    for name in continuous:
        col = covariates[name]
        if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            raise StudyvalError(f"continuous covariate {name!r} must be numeric, got {col.dtype}")
        cols.append(col.to_numpy(float))
        terms.append(name)
    for name in categorical:
        col = covariates[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            levels = [str(v) for v in col.cat.categories]
        else:
            levels = sorted({str(v) for v in col}, key=_natural)
        values = col.astype(str).to_numpy()
        present = [lv for lv in levels if np.any(values == lv)]
        dropped += [f"{name}: {lv}" for lv in levels if lv not in present]
        refs[name] = present[0]
        for lv in present[1:]:
            cols.append((values == lv).astype(float))
            terms.append(f"{name}: {lv}")
    return DesignMatrix(
        x=np.column_stack(cols),
        terms=tuple(terms),
        reference_levels=refs,
        dropped_levels=tuple(dropped),
    )


def _natural(v: str) -> tuple[int, float | str]:
    try:
        return (0, float(v))
    except ValueError:
        return (1, v)


def _fit(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, *, covariance: bool = True
) -> tuple[np.ndarray, np.ndarray, int, str]:
    """Weighted logistic ML by Newton-Raphson with step halving (R's glm start: beta = 0).

    Returns (beta, covariance, iterations, problem): ``problem`` is ``""`` or
    the reason no estimate exists (singular information, no convergence,
    separation). With ``covariance=False`` (the bootstrap refits, which use
    only beta) the covariance returned is NaN; beta and problem are the same.
    """
    p = x.shape[1]
    beta = np.zeros(p)

    def loglik(b: np.ndarray) -> tuple[float, np.ndarray]:
        e = x @ b
        return float(w @ (y * e - np.logaddexp(0.0, e))), e

    ll, eta_beta = loglik(beta)
    for it in range(1, _MAX_ITER + 1):
        mu = expit(eta_beta)  # eta_beta is x @ beta, kept from the line search
        info = (x * (w * mu * (1.0 - mu))[:, None]).T @ x
        grad = x.T @ (w * (y - mu))
        try:
            step = np.linalg.solve(info, grad)
        except np.linalg.LinAlgError:
            return beta, np.full((p, p), np.nan), it, "the information matrix is singular"
        t = 1.0
        for _ in range(40):
            cand = beta + t * step
            ll_c, eta_c = loglik(cand)
            if ll_c >= ll - 1e-12 * abs(ll):
                break
            t /= 2.0
        beta, ll, eta_beta = cand, ll_c, eta_c
        if np.all(np.abs(t * step) <= _TOL * (1.0 + np.abs(beta))):
            eta = x[w > 0] @ beta
            if eta.size and np.max(np.abs(eta)) > _SEPARATION_ETA:
                return beta, np.full((p, p), np.nan), it, "fitted probabilities of 0 or 1"
            mu = expit(eta_beta)
            info = (x * (w * mu * (1.0 - mu))[:, None]).T @ x
            if np.linalg.matrix_rank(info) < p:
                return beta, np.full((p, p), np.nan), it, "the information matrix is singular"
            cov = np.linalg.inv(info) if covariance else np.full((p, p), np.nan)
            return beta, cov, it, ""
    return beta, np.full((p, p), np.nan), _MAX_ITER, f"no convergence in {_MAX_ITER} iterations"


def _standardise(
    x: np.ndarray, beta: np.ndarray, w: np.ndarray
) -> tuple[float, float, np.ndarray, np.ndarray]:
    """Weighted means of the predictions with the group set to 1 and 0, and the per-row values."""
    x1, x0 = x.copy(), x.copy()
    x1[:, 1], x0[:, 1] = 1.0, 0.0
    m1, m0 = expit(x1 @ beta), expit(x0 @ beta)
    sw = w.sum()
    return float(w @ m1 / sw), float(w @ m0 / sw), m1, m0


@dataclasses.dataclass(frozen=True)
class StandardisedComparisonResult(Result):
    r"""Adjusted odds ratio and standardised risk difference of the index group against the other.

    Attributes
    ----------
    n, n_index, n_control : int
        Rows analysed, in the index group (A = 1) and in the other group.
    events_index, events_control : int
        Outcomes (Y = 1) in each group.
    crude_index, crude_control, crude_difference : float
        Unadjusted proportions and their difference.
    odds_ratio, or_ci_low, or_ci_high : float
        :math:`e^{\hat\beta_A}` and its Wald CI :math:`e^{\hat\beta_A \pm z\,SE}`.
    log_odds_ratio, log_odds_ratio_se : float
        :math:`\hat\beta_A` and its model-based SE (R ``summary(glm)``).
    p_value : float
        Two-sided Wald test of :math:`\beta_A = 0` (R's ``Pr(>|z|)``).
    risk_index, risk_control : float
        Standardised risks :math:`\hat\mu_1, \hat\mu_0` (every row with A set
        to 1, to 0).
    difference, difference_se, ci_low, ci_high : float
        :math:`\hat\mu_1 - \hat\mu_0`, its delta-method SE (module docstring)
        and Wald CI.
    difference_se_fixed_covariates : float
        The delta-method SE with the covariates held fixed (:math:`\sqrt{g^\top V g}`).
    difference_p_value : float
        Two-sided Wald test of a zero standardised difference.
    ci_level : float
    n_parameters, n_iterations : int
    covariates : str
        The adjustment set, in words.
    dropped_levels : str
        Declared factor levels without a row, ``""`` if none.
    method : str

    ``coefficients_frame()`` gives the fitted model (term, estimate, SE, z, p).
    """

    n: int
    n_index: int
    n_control: int
    events_index: int
    events_control: int
    crude_index: float
    crude_control: float
    crude_difference: float
    odds_ratio: float
    or_ci_low: float
    or_ci_high: float
    log_odds_ratio: float
    log_odds_ratio_se: float
    p_value: float
    risk_index: float
    risk_control: float
    difference: float
    difference_se: float
    difference_se_fixed_covariates: float
    ci_low: float
    ci_high: float
    difference_p_value: float
    ci_level: float
    n_parameters: int
    n_iterations: int
    covariates: str
    dropped_levels: str
    method: str
    _coefficients: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def coefficients_frame(self) -> pd.DataFrame:
        """One row per model term: ``term, estimate, se, z, p_value`` (R's ``summary(glm)$coefficients``)."""
        return self._coefficients.copy()


def _check_outcome(outcome: Any, n: int) -> np.ndarray:
    y = np.asarray(outcome)
    if y.dtype != np.bool_ or y.shape != (n,):
        raise StudyvalError(
            f"outcome must be a boolean array of shape ({n},) (True = event), got dtype "
            f"{y.dtype} and shape {y.shape}"
        )
    return y


def standardised_comparison(
    outcome: Any,
    group: Any,
    covariates: pd.DataFrame,
    *,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    alpha: float = 0.05,
) -> StandardisedComparisonResult:
    r"""Adjusted odds ratio and standardised (g-computation) risk difference of two groups.

    Parameters
    ----------
    outcome : array-like of bool, shape (n,)
        True = event (e.g. the VCF was identified in the report).
    group : array-like of bool, shape (n,)
        True = index group (e.g. the AI-assisted period); the differences and
        the odds ratio are index against the other group.
    covariates : pandas.DataFrame
        n rows with the adjustment columns (no missing values).
    categorical, continuous : sequence of str
        Columns entered as factors (treatment contrasts, first level the
        reference) and linearly; see :func:`design_matrix`.
    alpha : float
        CI level ``1 - alpha``.

    Returns
    -------
    StandardisedComparisonResult

    Raises
    ------
    EstimationError
        Either group empty, no or only events, or a model without a
        maximum-likelihood estimate (separation: a covariate level with only
        events or only non-events; singular design), named.

    Notes
    -----
    Formulas in the module docstring. Agrees with R's
    ``glm(y ~ group + ..., family = binomial)`` (coefficients and SEs) and an
    R g-computation of the same model (tests/test_standardised_comparison.py).
    """
    alpha = check_alpha(alpha)
    dm = design_matrix(group, covariates, categorical=categorical, continuous=continuous)
    x = dm.x
    n = x.shape[0]
    y = _check_outcome(outcome, n)
    a = x[:, 1] == 1.0
    for name, mask in (("index", a), ("control", ~a)):
        if not mask.any():
            raise EstimationError(f"the {name} group has no rows; the groups cannot be compared")
    if y.all() or not y.any():
        raise EstimationError(
            f"every one of the {n} rows has outcome {bool(y[0])}; the odds ratio and the "
            "standardised difference cannot be estimated"
        )
    if np.linalg.matrix_rank(x) < x.shape[1]:
        raise EstimationError(
            "the design matrix is rank-deficient (a covariate is constant or collinear with "
            f"the group or another covariate): terms {', '.join(dm.terms)}"
        )
    yf = y.astype(float)
    w = np.ones(n)
    beta, cov, it, problem = _fit(x, yf, w)
    if problem:
        raise EstimationError(
            f"the logistic model of the outcome on group + {', '.join(dm.terms[2:]) or 'nothing'} "
            f"has no maximum-likelihood estimate ({problem}); e.g. a covariate level in which "
            "every row has the event, or none (separation, Albert & Anderson 1984)"
        )
    se = np.sqrt(np.diag(cov))
    z = beta / se
    pz = 2.0 * stats.norm.sf(np.abs(z))
    zc = float(stats.norm.ppf(1.0 - alpha / 2.0))
    r1, r0, m1, m0 = _standardise(x, beta, w)
    x1, x0 = x.copy(), x.copy()
    x1[:, 1], x0[:, 1] = 1.0, 0.0
    g = ((m1 * (1 - m1))[:, None] * x1 - (m0 * (1 - m0))[:, None] * x0).mean(axis=0)
    rd = r1 - r0
    var_fixed = float(g @ cov @ g)
    h = m1 - m0
    var = var_fixed + float(np.sum((h - rd) ** 2)) / n**2
    sd = math.sqrt(var)
    coef = pd.DataFrame({"term": list(dm.terms), "estimate": beta, "se": se, "z": z, "p_value": pz})
    names = [*continuous, *categorical]
    return StandardisedComparisonResult(
        n=n,
        n_index=int(a.sum()),
        n_control=int((~a).sum()),
        events_index=int(y[a].sum()),
        events_control=int(y[~a].sum()),
        crude_index=float(y[a].mean()),
        crude_control=float(y[~a].mean()),
        crude_difference=float(y[a].mean() - y[~a].mean()),
        odds_ratio=math.exp(beta[1]),
        or_ci_low=math.exp(beta[1] - zc * se[1]),
        or_ci_high=math.exp(beta[1] + zc * se[1]),
        log_odds_ratio=float(beta[1]),
        log_odds_ratio_se=float(se[1]),
        p_value=float(pz[1]),
        risk_index=r1,
        risk_control=r0,
        difference=rd,
        difference_se=sd,
        difference_se_fixed_covariates=math.sqrt(var_fixed),
        ci_low=rd - zc * sd,
        ci_high=rd + zc * sd,
        difference_p_value=float(2.0 * stats.norm.sf(abs(rd) / sd)),
        ci_level=1.0 - alpha,
        n_parameters=int(x.shape[1]),
        n_iterations=int(it),
        covariates=", ".join(names) if names else "none",
        dropped_levels="; ".join(dm.dropped_levels),
        method="logistic regression (ML); g-computation standardised to all analysed rows, "
        "delta-method SE including the covariate distribution",
        _coefficients=coef,
    )


def standardised_difference_statistic(
    outcome: Any, design: DesignMatrix
) -> Callable[[np.ndarray], np.ndarray]:
    r"""The standardised risk difference for every row of a weight matrix (for the bootstrap engine).

    Resample :math:`r` refits the logistic model with frequency weights
    :math:`w_r` (R's ``glm(..., weights = w)``, equal to the fit on the rows
    repeated) and standardises to the weighted covariate distribution:
    :math:`\sum_i w_{ri}\{\operatorname{expit}(x_i(1)^\top\hat\beta_r) -
    \operatorname{expit}(x_i(0)^\top\hat\beta_r)\}/\sum_i w_{ri}`. A resample
    whose model has no estimate (a group or a factor level drawn empty,
    separation) gives NaN, which the engine counts as failed.

    Parameters
    ----------
    outcome : array-like of bool, shape (n,)
    design : DesignMatrix
        From :func:`design_matrix` (column 1 the group).

    """
    x = design.x
    y = _check_outcome(outcome, x.shape[0]).astype(float)

    def statistic(weights: np.ndarray) -> np.ndarray:
        out = np.full(weights.shape[0], np.nan)
        for r, w in enumerate(weights):
            beta, _, _, problem = _fit(x, y, w, covariance=False)
            if problem:
                continue
            r1, r0, _, _ = _standardise(x, beta, w)
            out[r] = r1 - r0
        return out

    return statistic


def standardised_comparison_bootstrap(
    outcome: Any,
    group: Any,
    covariates: pd.DataFrame,
    *,
    clusters: Any,
    categorical: Sequence[str] = (),
    continuous: Sequence[str] = (),
    n_resamples: int,
    seed: int,
    alpha: float = 0.05,
    method: str = "percentile",
) -> BootstrapResult:
    """Patient-cluster bootstrap CI of the standardised risk difference.

    The estimate is that of :func:`standardised_comparison`; the resamples are
    those of :func:`studyval.analysis.resampling.bootstrap` (patients drawn
    with replacement, every row of a drawn patient kept, a patient's rows in
    both groups drawn together), each refitting the model
    (:func:`standardised_difference_statistic`).

    Parameters
    ----------
    outcome, group, covariates, categorical, continuous
        As in :func:`standardised_comparison`.
    clusters : array-like, shape (n,)
        Patient id of every row.
    n_resamples, seed, alpha, method
        As in :func:`~studyval.analysis.resampling.bootstrap`.

    """
    dm = design_matrix(group, covariates, categorical=categorical, continuous=continuous)
    stat = standardised_difference_statistic(outcome, dm)
    return bootstrap(
        stat,
        n_rows=dm.x.shape[0],
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=method,
    )
