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

Optimisers
----------
The profiled REML criterion is maximised by the optimisers of
:data:`OPTIMISERS`, in that order, stopping at the first that converges (the
first, L-BFGS, converges on ordinary data; small data sets can make it step
onto a singular random-effects covariance, ``LinAlgError``, and BFGS or Powell
then finds the optimum). Nothing about this is silent: the result records the
optimiser that produced the reported fit (:attr:`MixedModelResult.optimiser`)
and every optimiser tried with its outcome
(:attr:`MixedModelResult.optimisers_tried`); every warning statsmodels raises
while fitting (``ConvergenceWarning``, ``SingularMatrixWarning``, ...) is
re-issued in its own category with the model formula and the optimiser in its
message, and a :class:`~studyval.errors.StatisticalWarning` says so when the
reported fit is not the first optimiser's.
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "BOUNDARY_ICC",
    "OPTIMISERS",
    "MixedModelResult",
    "OptimiserAttempt",
    "PopulationMeansResult",
    "data_fingerprint",
    "n_followed",
    "population_means",
    "random_intercept_lmm",
]

#: ``MixedLM.fit(method=...)`` optimisers tried in turn, until one converges.
OPTIMISERS = ("lbfgs", "bfgs", "powell")

#: The patient variance is "on the boundary" when the ICC is at most this (scale-free).
BOUNDARY_ICC = 1e-8


@dataclasses.dataclass(frozen=True)
class OptimiserAttempt:
    """One optimiser's attempt at the REML fit.

    Attributes
    ----------
    optimiser : str
        The ``method`` passed to ``MixedLM.fit`` (one of :data:`OPTIMISERS`).
    outcome : str
        ``"converged"``, ``"not converged"`` (the optimiser stopped without
        meeting its criterion) or ``"failed"`` (it raised; see ``detail``).
    detail : str
        For ``"failed"``: the exception, ``"<type>: <message>"``; otherwise empty.
    warnings : tuple of str
        The warnings raised during the attempt, ``"<category>: <message>"``,
        in order (each was also re-issued).
    """

    optimiser: str
    outcome: str
    detail: str = ""
    warnings: tuple[str, ...] = ()

    def __str__(self) -> str:
        text = f"{self.optimiser}: {self.outcome}"
        if self.detail:
            text += f" ({self.detail})"
        if self.warnings:
            n = len(self.warnings)
            text += f" [{n} warning{'s' if n > 1 else ''}: " + "; ".join(self.warnings) + "]"
        return text


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
        Whether the optimiser that produced the reported fit converged; always
        ``True`` (a fit that no optimiser brings to convergence raises
        :class:`~studyval.errors.EstimationError`), kept for the tables.
    ci_level : float
    formula : str
    optimiser : str
        The optimiser (``MixedLM.fit`` ``method``) whose fit is reported.
    optimisers_tried : tuple of OptimiserAttempt
        Every optimiser tried, in order, with its outcome and warnings; the
        last is :attr:`optimiser`.
    cov_fixed : numpy.ndarray, shape (p, p)
        Estimated covariance of the fixed effects, in the order of
        :attr:`fixed` (``vcov(fit)`` in lme4); used by :func:`population_means`.
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
    optimiser: str
    optimisers_tried: tuple[OptimiserAttempt, ...] = dataclasses.field(repr=False)
    method: str = "REML, random patient intercept (statsmodels MixedLM)"
    cov_fixed: np.ndarray | None = dataclasses.field(default=None, repr=False)
    #: The fixed part's design specification (statsmodels' formula backend), for new data.
    _design: Any = dataclasses.field(default=None, repr=False)
    #: :func:`data_fingerprint` of the data and the grouping column the model was fitted to, so
    #: that a later analysis reusing this fit (the random-slope model's likelihood-ratio test)
    #: can check it was made from exactly its own data.
    _data_key: str = dataclasses.field(default="", repr=False)

    def optimisers_frame(self) -> pd.DataFrame:
        """One row per optimiser tried: ``formula, optimiser, outcome, detail, warnings, reported``.

        ``warnings`` joins the attempt's warnings with ``" | "``; ``reported``
        is true for the optimiser whose fit is reported.
        """
        return pd.DataFrame(
            [
                {
                    "formula": self.formula,
                    "optimiser": a.optimiser,
                    "outcome": a.outcome,
                    "detail": a.detail,
                    "warnings": " | ".join(a.warnings),
                    "reported": a.optimiser == self.optimiser,
                }
                for a in self.optimisers_tried
            ],
            columns=["formula", "optimiser", "outcome", "detail", "warnings", "reported"],
        )

    def to_frame(self) -> pd.DataFrame:
        """Fixed effects, then the two variance components (``term`` = ``var_patient``, ``var_residual``).

        Every row also carries ``n_obs, n_patients, ci_level, converged,
        formula, optimiser`` (the optimiser of the reported fit),
        ``optimisers_tried`` (every attempt, ``"lbfgs: failed (LinAlgError:
        Singular matrix) [...]; bfgs: converged"``) and ``method``.
        """
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
        out["optimiser"] = self.optimiser
        out["optimisers_tried"] = "; ".join(str(a) for a in self.optimisers_tried)
        out["method"] = self.method
        return out


def data_fingerprint(data: pd.DataFrame, group: str) -> str:
    """SHA-256 of a model's data: column names, dtypes and every value, in row order, and ``group``.

    Two frames have the same fingerprint only when a mixed model fitted to
    them (with the same formula and grouping) is the same fit; used to reuse
    a fit safely (:func:`studyval.analysis.random_slope.random_slope_lmm`'s
    ``intercept_fit``).
    """
    import hashlib

    h = hashlib.sha256()
    h.update(repr((group, list(map(str, data.columns)), list(map(str, data.dtypes)))).encode())
    h.update(pd.util.hash_pandas_object(data, index=False).to_numpy().tobytes())
    return h.hexdigest()


def fit_with_optimisers(model: Any, label: str) -> tuple[Any, list[OptimiserAttempt]]:
    """Fit a statsmodels ``MixedLM`` by REML with each of :data:`OPTIMISERS` until one converges.

    Every warning an attempt raises is re-issued, prefixed with ``label`` and the
    optimiser (so that the run's warnings table keeps it); an attempt that fails
    or does not converge is recorded, never silently replaced.

    Returns
    -------
    fit : MixedLMResults or None
        The first converged fit (None when no optimiser converged).
    attempts : list of OptimiserAttempt
        Every attempt made, in order.
    """
    attempts: list[OptimiserAttempt] = []
    for optimiser in OPTIMISERS:
        with warnings.catch_warnings(record=True) as caught:
            # record every warning of this attempt (once each), to re-issue it below
            warnings.simplefilter("always")
            try:
                candidate = model.fit(reml=True, method=optimiser)
            except (np.linalg.LinAlgError, ValueError) as exc:
                candidate, outcome, detail = None, "failed", f"{type(exc).__name__}: {exc}"
            else:
                outcome = "converged" if candidate.converged else "not converged"
                detail = ""
        for w in caught:
            warnings.warn(
                f"{label}, optimiser {optimiser}: {w.message}", category=w.category, stacklevel=3
            )
        attempts.append(
            OptimiserAttempt(
                optimiser=optimiser,
                outcome=outcome,
                detail=detail,
                warnings=tuple(f"{w.category.__name__}: {w.message}" for w in caught),
            )
        )
        if candidate is not None and candidate.converged:
            return candidate, attempts
    return None, attempts


def wald_fixed_effects(
    names: list[str], estimate: np.ndarray, cov: np.ndarray, alpha: float
) -> pd.DataFrame:
    r"""Fixed effects with Wald intervals and tests, as ``summary(lmer)`` with normal quantiles.

    ``term, estimate, se, ci_low, ci_high, z, p_value``: :math:`\mathrm{se} = \sqrt{\mathrm{diag}
    (V)}`, limits :math:`\hat\beta \pm z_{1-\alpha/2}\,\mathrm{se}`, :math:`z = \hat\beta /
    \mathrm{se}`, two-sided normal p.
    """
    se = np.sqrt(np.diag(cov))
    z = estimate / se
    q = stats.norm.ppf(1 - alpha / 2)
    return pd.DataFrame(
        {
            "term": names,
            "estimate": estimate,
            "se": se,
            "ci_low": estimate - q * se,
            "ci_high": estimate + q * se,
            "z": z,
            "p_value": 2 * stats.norm.sf(np.abs(z)),
        }
    )


def random_intercept_lmm(
    data: pd.DataFrame,
    *,
    formula: str,
    group: str,
    alpha: float = 0.05,
) -> MixedModelResult:
    r"""Fit ``formula`` with a random intercept per ``group`` by REML.

    The REML criterion (Patterson & Thompson 1971) is maximised by each
    optimiser of :data:`OPTIMISERS` in turn until one converges; the first
    converged fit is reported and the optimisers after it are not tried.

    Convergence and its record:

    * the result names the optimiser of the reported fit
      (:attr:`~MixedModelResult.optimiser`) and every optimiser tried with
      its outcome (:attr:`~MixedModelResult.optimisers_tried`, also in
      :meth:`~MixedModelResult.to_frame` and
      :meth:`~MixedModelResult.optimisers_frame`);
    * every warning raised by statsmodels during a fit (``ConvergenceWarning``:
      optimisation failed, "MLE may be on the boundary", Hessian not positive
      definite; ``SingularMatrixWarning``; ...) is caught only to be recorded
      and is re-issued in its own category as ``"<formula> (random intercept
      per <group>), optimiser <name>: <message>"``, so the pipeline's
      warnings table shows it;
    * when the reported fit is not the first optimiser's, a
      :class:`~studyval.errors.StatisticalWarning` names the optimisers that
      failed and the one used.

    When no optimiser converges, :class:`~studyval.errors.EstimationError`
    is raised (as documented before; no non-converged fit is returned, even
    flagged): the estimates and standard errors at the point where an
    optimiser stopped are not REML estimates, and a validation report should
    carry no number for that model rather than a number with a footnote. The
    error message lists every optimiser's outcome.

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
        ``group`` not a column, missing values.
    EstimationError
        Fewer than 2 patients, or no patient with 2 observations (the two
        variances are not separately identifiable); no optimiser converges;
        or the random-intercept variance is estimated on the boundary:
        :math:`\hat\sigma_b^2 \le 10^{-8}\,(\hat\sigma_b^2 +
        \hat\sigma_e^2)` (an ICC of at most :data:`BOUNDARY_ICC`; scale-free,
        so the criterion does not depend on the unit of the outcome), where
        the REML estimate of a variance is 0 and its Wald theory does not hold.

    Warns
    -----
    statsmodels.tools.sm_exceptions.ConvergenceWarning, SingularMatrixWarning
        Re-issued from statsmodels with the formula and optimiser named.
    StatisticalWarning
        The reported fit is not from the first optimiser.
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
    if int(data[group].value_counts().max()) < 2:
        raise EstimationError(
            f"{formula}: every patient has a single observation, so the patient and residual "
            "variances are not separately identifiable; a random intercept needs repeated "
            "observations"
        )
    model = MixedLM.from_formula(formula, data=data, groups=data[group], re_formula="1")
    label = f"{formula} (random intercept per {group})"
    fit, attempts = fit_with_optimisers(model, label)
    tried = "; ".join(str(a) for a in attempts)
    if fit is None:
        raise EstimationError(
            f"the mixed model {label} did not converge with any optimiser ({tried}); "
            "no fit is reported"
        )
    if len(attempts) > 1:
        failed = ", ".join(f"{a.optimiser} ({a.outcome})" for a in attempts[:-1])
        warnings.warn(
            f"{label}: the reported fit is from optimiser {attempts[-1].optimiser}, because "
            f"{failed} did not converge",
            StatisticalWarning,
            stacklevel=2,
        )
    var_b = float(np.asarray(fit.cov_re)[0, 0])
    var_e = float(fit.scale)
    if not var_b > BOUNDARY_ICC * (var_b + var_e):
        raise EstimationError(
            f"{label}: the patient random-intercept variance is estimated at 0 (boundary: "
            f"{var_b:.3g} against a residual variance of {var_e:.3g}; optimiser "
            f"{attempts[-1].optimiser})"
        )
    names = list(fit.model.exog_names)
    cov = np.asarray(fit.cov_params(), float)[: len(names), : len(names)]
    fixed = wald_fixed_effects(names, np.asarray(fit.fe_params, float), cov, alpha)
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
        optimiser=attempts[-1].optimiser,
        optimisers_tried=tuple(attempts),
        cov_fixed=cov,
        _design=model.data.model_spec,
        _data_key=data_fingerprint(data, group),
    )


@dataclasses.dataclass(frozen=True, eq=False)
class PopulationMeansResult(Result):
    r"""Population-level fitted means :math:`x^\top\hat\beta` of a mixed model at given covariates.

    Attributes
    ----------
    formula : str
        The fixed part of the model.
    ci_level : float
    method : str
    """

    formula: str
    ci_level: float
    method: str
    _frame: pd.DataFrame = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """The covariates given, then ``fitted, se, ci_low, ci_high, ci_level``."""
        return self._frame.copy()


def population_means(
    fit: MixedModelResult, newdata: pd.DataFrame, *, alpha: float | None = None
) -> PopulationMeansResult:
    r"""Fitted means of a mixed model with the random effects at zero (population level).

    For covariates :math:`x` (one row of the fixed-effect design built from
    ``newdata`` with the model's own formula, transformations and coding),

    .. math::

        \hat\mu(x) = x^\top\hat\beta, \qquad
        \mathrm{SE}\{\hat\mu(x)\} = \sqrt{x^\top \widehat{\operatorname{Var}}(\hat\beta)\, x},

    with a Wald interval :math:`\hat\mu \pm z_{1-\alpha/2}\,\mathrm{SE}`, as
    ``predict(fit, newdata, re.form = NA)`` of lme4 (Bates et al. 2015,
    doi:10.18637/jss.v067.i01) and the same quadratic form with ``vcov(fit)``.

    Parameters
    ----------
    fit : MixedModelResult
        From :func:`random_intercept_lmm`.
    newdata : DataFrame
        One row per point, with every covariate of the model's fixed part.
    alpha : float, optional
        CI level ``1 - alpha``; default the fit's own level.

    Returns
    -------
    PopulationMeansResult
        ``to_frame()``: ``newdata``'s columns, then ``fitted, se, ci_low, ci_high, ci_level``.

    Raises
    ------
    StudyvalError
        ``newdata`` lacks a covariate of the model or has missing values,
        ``alpha`` is outside (0, 1), or ``fit`` was not made by
        :func:`random_intercept_lmm`.

    Examples
    --------
    The intercept alone (``years = 0``, ``oa = 0``) is the intercept's estimate:

    >>> d = pd.DataFrame({"p": np.repeat(np.arange(8), 3), "years": np.tile([0.5, 1.0, 2.0], 8),
    ...                   "oa": np.repeat([0.0, 1.0], 12)})
    >>> d["y"] = 30 - 2 * d["years"] - 5 * d["oa"] + 1.5 * d["p"] + 0.3 * (d.index * 7 % 5 - 2)
    >>> fit = random_intercept_lmm(d, formula="y ~ years * oa", group="p")
    >>> means = population_means(fit, pd.DataFrame({"years": [0.0], "oa": [0.0]})).to_frame()
    >>> bool(np.isclose(means["fitted"].iloc[0], fit.fixed["estimate"].iloc[0]))
    True
    """
    from statsmodels.formula._manager import FormulaManager

    if fit._design is None or fit.cov_fixed is None:
        raise StudyvalError(
            f"the fit of {fit.formula} carries no design or covariance (a result of "
            "random_intercept_lmm has both)"
        )
    alpha = 1 - fit.ci_level if alpha is None else alpha
    if not 0 < alpha < 1:
        raise StudyvalError(f"alpha must be in (0, 1), got {alpha}")
    if newdata.isna().any().any():
        col = newdata.columns[newdata.isna().any()][0]
        raise StudyvalError(f"newdata column {col!r} has missing values")
    try:
        X = FormulaManager().get_matrices(fit._design, newdata, pandas=True, prediction=True)
    except Exception as exc:  # the formula backend's own error: name the model instead
        raise StudyvalError(
            f"cannot build the design of {fit.formula} from newdata "
            f"(columns {', '.join(map(str, newdata.columns))}): {exc}"
        ) from None
    X = pd.DataFrame(X)
    terms = list(fit.fixed["term"])
    if list(X.columns) != terms:
        raise StudyvalError(
            f"newdata gives design columns {list(X.columns)}, the model has {terms}"
        )
    x = X.to_numpy(float)
    beta = fit.fixed["estimate"].to_numpy(float)
    fitted = x @ beta
    se = np.sqrt(np.einsum("ij,jk,ik->i", x, fit.cov_fixed, x))
    q = stats.norm.ppf(1 - alpha / 2)
    out = newdata.reset_index(drop=True).copy()
    out["fitted"] = fitted
    out["se"] = se
    out["ci_low"] = fitted - q * se
    out["ci_high"] = fitted + q * se
    out["ci_level"] = 1 - alpha
    return PopulationMeansResult(
        formula=fit.formula,
        ci_level=1 - alpha,
        method="population-level mean x'beta (random effects at 0), Wald CI",
        _frame=out,
    )


def n_followed(long: pd.DataFrame, *, visit: str, group: Any = None) -> pd.DataFrame:
    """Patients with an observation at each visit (optionally by group).

    Columns ``visit, [group,] n_followed``.
    """
    keys = [visit] if group is None else [visit, group]
    return long.groupby(keys, observed=True).size().rename("n_followed").reset_index()
