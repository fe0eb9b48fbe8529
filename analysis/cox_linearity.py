r"""Is a continuous predictor linear in the log hazard? Restricted cubic spline checks of a Cox model.

For each declared continuous predictor :math:`x` of a Cox model, the model is
refitted with :math:`x` replaced by a restricted (natural) cubic spline with
:math:`k` knots :math:`t_1 < \dots < t_k` (Stone & Koo 1985; Harrell 2015,
§2.4.5), all other covariates unchanged (linear), and the :math:`k - 2`
nonlinear spline terms are tested by the likelihood ratio

.. math::

    \chi^2_{\text{nonlinear}} = 2\{\ell(\hat\beta_{\text{spline}}) -
    \ell(\hat\beta_{\text{linear}})\} \sim \chi^2_{k-2},

the linear model being nested in the spline model (the spline's linear term is
:math:`x` itself). A small p-value says the linear term misses curvature; a
large one is not proof of linearity.

Spline basis (``rms::rcs`` / ``Hmisc::rcspline.eval``, ``norm = 2``): the
columns are :math:`x` and, for :math:`j = 1, \dots, k - 2`,

.. math::

    \frac{(x - t_j)_+^3 - (x - t_{k-1})_+^3 \frac{t_k - t_j}{t_k - t_{k-1}}
    + (x - t_k)_+^3 \frac{t_{k-1} - t_j}{t_k - t_{k-1}}}{(t_k - t_1)^2}.

Knots (Harrell's defaults, ``rcspline.eval``): for :math:`k = 4` the sample
quantiles (R type 7) at 0.05, 0.35, 0.65, 0.95 of the non-missing values; with
fewer than 100 values the outer knots are the 5th smallest and 5th largest
value; when the lowest (highest) value holds at least 5 % of the observations
while no interior value does, that value's neighbour becomes the first (last)
knot and the other knots are placed on the values strictly inside it (the
``fractied = 0.05`` rule). Too few distinct values for :math:`k` knots is an
error here (R warns and uses fewer knots, which changes the test).

References
----------
Stone CJ, Koo CY (1985). Additive splines in statistics. Proc Stat Comp Sect
Am Stat Assoc, 45-48.

Harrell FE Jr (2015). Regression Modeling Strategies, 2nd ed., Springer,
§2.4.5-2.4.6 and §20 (Cox model). doi:10.1007/978-3-319-19425-7

Harrell FE Jr, Lee KL, Pollock BG (1988). Regression models in clinical
studies: determining relationships between predictors and response. J Natl
Cancer Inst 80:1198-1202. doi:10.1093/jnci/80.15.1198
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from .cox import cox, nested_cox_test

__all__ = [
    "CoxLinearityResult",
    "LinearityTest",
    "cox_linearity",
    "rcs_basis",
    "rcs_knots",
]

#: Quantiles of Harrell's default knots, by number of knots (``Hmisc::rcspline.eval``).
_OUTER = {3: 0.10, 4: 0.05, 5: 0.05, 6: 0.05}
_FRACTIED = 0.05
_METHOD = (
    "likelihood ratio: Cox model with the predictor as a restricted cubic spline "
    "(rms::rcs basis, Harrell knots) against the model linear in it"
)


def _check_knots_count(n_knots: Any) -> int:
    if isinstance(n_knots, bool) or not isinstance(n_knots, int | np.integer):
        raise StudyvalError(f"n_knots must be an integer from 3 to 6, got {n_knots!r}")
    if int(n_knots) not in _OUTER:
        raise StudyvalError(f"n_knots must be an integer from 3 to 6, got {n_knots}")
    return int(n_knots)


def rcs_knots(x: Any, n_knots: int = 4, *, name: str = "x") -> np.ndarray:
    """Harrell's default knot locations of a restricted cubic spline (``Hmisc::rcspline.eval``).

    Parameters
    ----------
    x : array-like of float, shape (n,)
        Values of the predictor; must be finite (no missing values).
    n_knots : int, default 4
        Number of knots, 3 to 6. For 4 knots the quantiles 0.05, 0.35, 0.65,
        0.95 (type 7); 3 knots 0.10, 0.50, 0.90; 5 and 6 knots equally spaced
        from 0.05 to 0.95.
    name : str, default "x"
        Name of the predictor, for messages.

    Returns
    -------
    numpy.ndarray, shape (n_knots,)
        Increasing knots. With fewer than 100 values the outer knots are the
        5th smallest and 5th largest value; an extreme value holding at least
        5 % of the observations (while no interior value does) is replaced by
        its neighbour as outer knot (see the module docstring).

    Raises
    ------
    StudyvalError
        Non-finite values or a bad ``n_knots``.
    EstimationError
        Fewer than 6 values, or too few distinct values for ``n_knots``
        distinct knots.

    """
    k = _check_knots_count(n_knots)
    xx = np.asarray(x, dtype=np.float64).ravel()
    if not np.all(np.isfinite(xx)):
        raise StudyvalError(f"{name} has missing or non-finite values")
    n = xx.size
    if n < 6:
        raise EstimationError(f"{name}: {n} values; spline knots need at least 6")
    xu = np.unique(xx)
    if xu.size - 2 <= k:
        raise EstimationError(
            f"{name} has {xu.size} distinct values: too few for a restricted cubic spline with "
            f"{k} knots (R's rcs would silently use {max(xu.size - 2, 0)} interior values); "
            "test it as a categorical predictor instead"
        )
    outer = _OUTER[k]
    nke = k
    first: list[float] = []
    last: list[float] = []
    f = np.unique(xx, return_counts=True)[1] / n
    if np.max(f[1:-1]) < _FRACTIED:
        if f[0] >= _FRACTIED:
            first = [float(np.min(xx[xx > xx.min()]))]
            xx = xx[xx > first[0]]
            nke -= 1
        if f[-1] >= _FRACTIED:
            last = [float(np.max(xx[xx < xx.max()]))]
            xx = xx[xx < last[0]]
            nke -= 1
    if nke == 1:
        inner = np.array([np.median(xx)])
    else:
        probs = (
            np.linspace(0.5, 1.0 - outer, nke) if nke == 2 else np.linspace(outer, 1 - outer, nke)
        )
        inner = np.quantile(xx, probs)
        if np.unique(inner).size < min(nke, 3):
            raise EstimationError(
                f"{name}: the default knot placement gives fewer than {min(nke, 3)} distinct "
                f"knots (heavily tied values); a {k}-knot spline is not estimable"
            )
        if xx.size < 100:
            s = np.sort(xx)
            if not first:
                inner[0] = s[4]
            if not last:
                inner[-1] = s[-5]
    knots = np.unique(np.concatenate([first, inner, last]))
    if knots.size != k:
        raise EstimationError(
            f"{name}: only {knots.size} distinct knots could be placed (of {k}); a {k}-knot "
            "spline is not estimable"
        )
    return knots


def rcs_basis(x: Any, knots: Any) -> np.ndarray:
    r"""Restricted cubic spline basis of ``rms::rcs`` (``Hmisc::rcspline.eval``, ``norm = 2``).

    Parameters
    ----------
    x : array-like of float, shape (n,)
        Predictor values.
    knots : array-like of float, shape (k,)
        Increasing knots, :math:`k \ge 3`.

    Returns
    -------
    numpy.ndarray, shape (n, k - 1)
        Column 0 is ``x``; column :math:`j` (1-based, :math:`j \le k - 2`) the
        nonlinear term of the module docstring: cubic between the knots,
        linear beyond the outer ones.

    """
    t = np.asarray(knots, dtype=np.float64)
    if t.ndim != 1 or t.size < 3 or np.any(np.diff(t) <= 0):
        raise StudyvalError(f"knots must be at least 3 increasing values, got {t.tolist()}")
    xv = np.asarray(x, dtype=np.float64).ravel()
    k = t.size
    kd = (t[-1] - t[0]) ** (2.0 / 3.0)
    cols = [xv]
    for j in range(k - 2):
        cols.append(
            np.maximum((xv - t[j]) / kd, 0.0) ** 3
            + (
                (t[-2] - t[j]) * np.maximum((xv - t[-1]) / kd, 0.0) ** 3
                - (t[-1] - t[j]) * np.maximum((xv - t[-2]) / kd, 0.0) ** 3
            )
            / (t[-1] - t[-2])
        )
    return np.column_stack(cols)


@dataclasses.dataclass(frozen=True)
class LinearityTest(Result):
    r"""Likelihood-ratio test of the nonlinear spline terms of one predictor.

    Attributes
    ----------
    predictor : str
        The continuous covariate tested.
    n_knots : int
        Knots of its restricted cubic spline.
    knots : str
        The knot locations, comma-separated (``repr`` of each float).
    chisq : float
        :math:`2\{\ell_{\text{spline}} - \ell_{\text{linear}}\}`.
    df : int
        ``n_knots - 2``, the nonlinear terms.
    p_value : float
        Upper tail of :math:`\chi^2_{\text{df}}`.
    loglik_linear, loglik_spline : float
        Maximised log partial likelihoods of the two fits.
    n, n_events : int
        Subjects and events.
    covariates : str
        The other covariates of both models (linear), comma-separated.
    method : str
        The test in words.

    """

    predictor: str
    n_knots: int
    knots: str
    chisq: float
    df: int
    p_value: float
    loglik_linear: float
    loglik_spline: float
    n: int
    n_events: int
    covariates: str
    method: str = _METHOD


@dataclasses.dataclass(frozen=True)
class CoxLinearityResult(Result):
    """Spline linearity tests of the continuous predictors of one Cox model.

    Attributes
    ----------
    tests : tuple of LinearityTest
        One per predictor, in the order given.
    ties : str
        Tie handling of every fit (``"efron"`` or ``"breslow"``).

    """

    tests: tuple[LinearityTest, ...]
    ties: str

    def to_frame(self) -> pd.DataFrame:
        """One row per predictor: the fields of :class:`LinearityTest`, plus ``ties``."""
        frame = pd.DataFrame([t.to_dict() for t in self.tests])
        frame["ties"] = self.ties
        return frame


def cox_linearity(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates: Sequence[str],
    predictors: Sequence[str],
    n_knots: int = 4,
    ties: str = "efron",
) -> CoxLinearityResult:
    r"""Test each continuous predictor of a Cox model for nonlinearity with a restricted cubic spline.

    For each ``p`` in ``predictors``, two Cox models are fitted with
    :func:`studyval.analysis.cox.cox` on the same rows: the model with all
    ``covariates`` linear, and the same model with ``p`` replaced by its
    ``n_knots``-knot restricted cubic spline (:func:`rcs_basis`, knots
    :func:`rcs_knots`). The nonlinear terms are tested by the likelihood ratio

    .. math::

        \chi^2 = 2\{\ell(\hat\beta_{\text{spline}}) - \ell(\hat\beta_{\text{linear}})\}
        \sim \chi^2_{k-2}

    (:func:`studyval.analysis.cox.nested_cox_test`; Harrell 2015, §2.6 and
    §20, doi:10.1007/978-3-319-19425-7; Harrell, Lee & Pollock 1988,
    doi:10.1093/jnci/80.15.1198). Agrees with R:
    ``anova(coxph(Surv(t, e) ~ x + z), coxph(Surv(t, e) ~ rms::rcs(x, 4) + z))``.
    ``rms::anova(cph(...))`` reports the *Wald* test of the same terms
    (asymptotically equivalent, not equal).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject, no missing values in the columns used.
    duration, event : str
        Follow-up time and event indicator (1 = event, 0 = censored; code a
        competing event as censored for a cause-specific model).
    covariates : sequence of str
        Numeric covariate columns of the model (all linear).
    predictors : sequence of str
        Continuous covariates to test, each one of ``covariates``.
    n_knots : int, default 4
        Knots of each spline (3 to 6); ``df = n_knots - 2``.
    ties : {"efron", "breslow"}, default "efron"
        Tie handling of both fits.

    Returns
    -------
    CoxLinearityResult

    Raises
    ------
    StudyvalError
        No predictor, a predictor not among ``covariates`` or named twice, a
        bad ``n_knots``, a missing column or value.
    EstimationError
        Too few distinct values of a predictor for the knots, or a fit that
        does not converge (:func:`~studyval.analysis.cox.cox`).

    """
    k = _check_knots_count(n_knots)
    covs = [str(c) for c in covariates]
    preds = [str(p) for p in predictors]
    if not preds:
        raise StudyvalError("predictors is empty: name the continuous covariates to test")
    if len(set(preds)) != len(preds):
        raise StudyvalError(f"predictors named twice: {preds}")
    for p in preds:
        if p not in covs:
            raise StudyvalError(
                f"predictor {p!r} is not a covariate of the model ({', '.join(covs)})"
            )
    base = cox(df, duration=duration, event=event, covariates=covs, ties=ties)
    tests = []
    for p in preds:
        x = df[p].to_numpy(dtype=np.float64)
        knots = rcs_knots(x, k, name=p)
        basis = rcs_basis(x, knots)
        names = [p + "'" * (j + 1) for j in range(k - 2)]
        taken = set(df.columns)
        for nm in names:
            if nm in taken:
                raise StudyvalError(f"column {nm!r} exists; it is the name of a spline term")
        extra = pd.DataFrame(basis[:, 1:], columns=names, index=df.index)
        wide = pd.concat([df, extra], axis=1)
        at = covs.index(p)
        spline = cox(
            wide,
            duration=duration,
            event=event,
            covariates=[*covs[: at + 1], *names, *covs[at + 1 :]],
            ties=ties,
        )
        lr = nested_cox_test(spline, base)
        others = [c for c in covs if c != p]
        tests.append(
            LinearityTest(
                predictor=p,
                n_knots=k,
                knots=", ".join(repr(float(v)) for v in knots),
                chisq=lr.chisq,
                df=lr.df,
                p_value=lr.p_value,
                loglik_linear=lr.loglik_reduced,
                loglik_spline=lr.loglik_full,
                n=lr.n,
                n_events=lr.n_events,
                covariates=", ".join(others),
            )
        )
    return CoxLinearityResult(tests=tuple(tests), ties=base.ties)
