r"""Flexible calibration of multinomial risk predictions (Van Hoorde et al. 2014, 2015).

A model that predicts the probabilities :math:`p_{i1}, \dots, p_{iK}` of
:math:`K` outcome categories is calibrated when, among cases predicted
:math:`p`, the categories occur with frequencies :math:`p`. One-vs-rest
calibration (:mod:`studyval.analysis.calibration`, per class) checks each
:math:`p_k` alone; the **multinomial logistic recalibration framework** of
Van Hoorde et al. (2014) checks them jointly. With a reference category
:math:`r` (the first class here) and the predicted log-ratios

.. math::

    \ell_{ik} = \ln(p_{ik} / p_{ir}), \qquad k \ne r,

the outcome is regressed on the :math:`K-1` log-ratios by a multinomial
logistic regression,

.. math::

    \ln\frac{\pi_{ik}}{\pi_{ir}} = \alpha_k + \sum_{j \ne r} f_{kj}(\ell_{ij}),
    \qquad k \ne r,

where each :math:`f_{kj}` is linear in the parametric framework
(``df = 1``; perfect calibration is :math:`\alpha_k = 0`,
:math:`f_{kj}(\ell) = \ell` if :math:`j = k` and 0 otherwise) and a natural
cubic regression spline with ``df`` degrees of freedom in the flexible one
(Van Hoorde et al. 2015). The parametric framework does not depend on the
reference category (changing it changes the log-ratios by linear
combinations, which span the same space); the flexible one does, because
splines of :math:`\ell_j - \ell_s` are not in the span of the splines of
:math:`\ell_j` and :math:`\ell_s`: with ``df > 1`` the reference is a choice.
The fitted :math:`\hat\pi_{ik}` are the **calibrated probabilities**: the
observed risk of category :math:`k` for cases with case :math:`i`'s
predictions. The spline of :math:`\ell_j` is R's
``splines::ns(lp_j, df = df)``: boundary knots at the range of
:math:`\ell_j`, ``df - 1`` interior knots at its quantiles
:math:`1/\mathrm{df}, \dots, (\mathrm{df}-1)/\mathrm{df}` (R ``quantile``
type 7), linear beyond the boundary knots. Every equation has its own
coefficients for every basis column (a vector GLM without constraints), so
the model has :math:`(K-1)\{1 + (K-1)\,\mathrm{df}\}` coefficients. It is
fitted by maximum likelihood (Newton-Raphson with step halving).

**Calibration curve of each category.** :math:`\hat\pi_{ik}` depends on all
log-ratios, so plotted against :math:`p_{ik}` the points scatter about a
curve; the curve is their smooth, R's ``lowess(p_k, pi_k, iter = 0)`` (span
2/3, the smoother of :func:`studyval.analysis.calibration.calibration`),
evaluated on a grid of predicted probabilities from the 1st to the 99th
percentile of :math:`p_k` and clipped to [0, 1] (the local lines of lowess
can leave [0, 1] near the ends of the grid). The summaries per category are the mean and the
largest absolute difference :math:`|p_{ik} - \hat\pi_{ik}|` over the cases
(a polytomous analogue of :math:`E_{avg}` and :math:`E_{max}`).

**Oracle.** The calibrated probabilities equal R's
``VGAM::vglm(y ~ ns(lp1, df) + ... + ns(lpK-1, df), multinomial(refLevel = 1))``
to :math:`10^{-6}` relative (``nnet::multinom`` on the same bases agrees to its
optimiser's tolerance, about :math:`10^{-6}` absolute): the natural
spline is built here as Harrell's restricted cubic spline on the same knots,
which spans the same space as ``ns``, so the fitted probabilities are the same
(the coefficients are not). Documented method differences from Van Hoorde's
``polcal`` R function: it fits smoothing splines (``VGAM::vgam(y ~ s(lp1,
df = 2) + ...)``, a penalised fit with ``df`` equivalent degrees of freedom),
here regression splines; and it draws the curve with ``smooth.spline(p_k,
fitted, spar = 1)``, here ``lowess``.

The fit needs every category observed; when the log-ratios separate the
categories (completely or quasi-completely) the maximum-likelihood estimates
do not exist and :class:`studyval.errors.EstimationError` is raised, as it is
when Newton-Raphson does not converge.

References
----------
Van Hoorde K, Vergouwe Y, Timmerman D, Van Huffel S, Steyerberg EW, Van
Calster B (2014). Assessing calibration of multinomial risk prediction models.
Stat Med 33:2585-2596. doi:10.1002/sim.6114

Van Hoorde K, Van Huffel S, Timmerman D, Bourne T, Van Calster B (2015). A
spline-based tool to assess and visualize the calibration of multiclass risk
predictions. J Biomed Inform 54:283-293. doi:10.1016/j.jbi.2014.12.016

Harrell FE Jr (2015). Regression Modeling Strategies, 2nd ed., section 2.4.5
(restricted cubic splines). Springer. doi:10.1007/978-3-319-19425-7
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from .calibration import LOWESS_FRAC, lowess_counts
from .multiclass import _check_classes, _encode

__all__ = [
    "MultinomialCalibrationResult",
    "multinomial_calibration",
    "natural_spline_basis",
]

_MAX_ITER = 100
_TOL = 1e-10
#: A fitted log-ratio beyond this (a probability below e^-30, about 1e-13) marks separation.
_ETA_LIMIT = 30.0
_CURVE_COLUMNS = ["class", "predicted", "calibrated", "n", "n_events", "df"]
_SUMMARY_COLUMNS = [
    "class",
    "n",
    "n_events",
    "mean_predicted",
    "mean_calibrated",
    "e_avg",
    "e_max",
    "df",
    "n_coefficients",
    "deviance",
    "iterations",
]


def natural_spline_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    r"""Restricted (natural) cubic spline basis of ``x`` with these knots, without intercept.

    With knots :math:`t_1 < \dots < t_m` the columns are :math:`x` and, for
    :math:`j = 1, \dots, m-2`,

    .. math::

        \Big[(x - t_j)_+^3 - (x - t_{m-1})_+^3\frac{t_m - t_j}{t_m - t_{m-1}}
        + (x - t_m)_+^3 \frac{t_{m-1} - t_j}{t_m - t_{m-1}}\Big] / (t_m - t_1)^2

    (Harrell 2015, eq. 2.25): cubic between knots, linear beyond
    :math:`t_1` and :math:`t_m`. With an intercept it spans the space of R's
    ``splines::ns(x, knots = t[2:(m-1)], Boundary.knots = t[c(1, m)])``.

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
    knots : numpy.ndarray, shape (m,), strictly increasing, m >= 2

    Returns
    -------
    numpy.ndarray, shape (n, m - 1)

    """
    t = np.asarray(knots, dtype=np.float64)
    m = t.size
    cols = [x]
    scale = (t[-1] - t[0]) ** 2
    for j in range(m - 2):
        c = (
            np.maximum(x - t[j], 0.0) ** 3
            - np.maximum(x - t[m - 2], 0.0) ** 3 * (t[m - 1] - t[j]) / (t[m - 1] - t[m - 2])
            + np.maximum(x - t[m - 1], 0.0) ** 3 * (t[m - 2] - t[j]) / (t[m - 1] - t[m - 2])
        )
        cols.append(c / scale)
    return np.column_stack(cols)


def _ns_knots(x: np.ndarray, df: int) -> np.ndarray:
    """Knots of R's ``ns(x, df)``: range and ``df - 1`` type-7 quantiles."""
    probs = np.linspace(0.0, 1.0, df + 1)
    return np.quantile(x, probs)


@dataclasses.dataclass(frozen=True)
class MultinomialCalibrationResult(Result):
    r"""Flexible multinomial calibration of one set of predictions.

    :meth:`to_frame` is the curve table (one row per class and grid point);
    :meth:`summary_frame` one row per class.

    Attributes
    ----------
    classes : tuple
        Category labels; the first is the reference of the log-ratios.
    df : int
        Degrees of freedom of each log-ratio's natural spline (1: linear, the
        parametric framework).
    predicted : numpy.ndarray, shape (n, K)
        The predictions (renormalised to sum to 1).
    calibrated : numpy.ndarray, shape (n, K)
        The calibrated probabilities :math:`\hat\pi_{ik}`.
    coefficients : numpy.ndarray, shape (1 + (K-1) df, K-1)
        Coefficients of each non-reference equation (intercept, then the basis
        of :math:`\ell_2`, ..., :math:`\ell_K`), in this module's basis.
    knots : tuple of tuple of float
        Knots of each log-ratio's spline (boundary knots included).
    deviance : float
        :math:`-2` log-likelihood of the recalibration model.
    iterations : int
        Newton-Raphson iterations.
    n : int
        Cases.
    n_events : tuple of int
        Cases of each category.
    curve_predicted, curve_calibrated : tuple of numpy.ndarray
        Per category, the grid of predicted probabilities and the smoothed
        calibrated probability there.
    e_avg, e_max : tuple of float
        Per category, mean and largest :math:`|p_{ik} - \hat\pi_{ik}|`.
    method : str
        Description.

    """

    classes: tuple[Any, ...]
    df: int
    predicted: np.ndarray
    calibrated: np.ndarray
    coefficients: np.ndarray
    knots: tuple[tuple[float, ...], ...]
    deviance: float
    iterations: int
    n: int
    n_events: tuple[int, ...]
    curve_predicted: tuple[np.ndarray, ...]
    curve_calibrated: tuple[np.ndarray, ...]
    e_avg: tuple[float, ...]
    e_max: tuple[float, ...]
    method: str = ""

    def to_frame(self) -> pd.DataFrame:
        """The calibration curve of every category.

        Returns
        -------
        pandas.DataFrame
            Columns ``class, predicted, calibrated, n, n_events, df``; one row
            per category and grid point (increasing ``predicted``).

        """
        frames = []
        for k, c in enumerate(self.classes):
            frames.append(
                pd.DataFrame(
                    {
                        "class": c,
                        "predicted": self.curve_predicted[k],
                        "calibrated": self.curve_calibrated[k],
                        "n": self.n,
                        "n_events": self.n_events[k],
                        "df": self.df,
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)[_CURVE_COLUMNS]

    def summary_frame(self) -> pd.DataFrame:
        """One row per category: mean predicted and calibrated probability, E_avg, E_max, fit."""
        rows = []
        for k, c in enumerate(self.classes):
            rows.append(
                {
                    "class": c,
                    "n": self.n,
                    "n_events": self.n_events[k],
                    "mean_predicted": float(self.predicted[:, k].mean()),
                    "mean_calibrated": float(self.calibrated[:, k].mean()),
                    "e_avg": self.e_avg[k],
                    "e_max": self.e_max[k],
                    "df": self.df,
                    "n_coefficients": int(self.coefficients.size),
                    "deviance": self.deviance,
                    "iterations": self.iterations,
                }
            )
        return pd.DataFrame(rows, columns=_SUMMARY_COLUMNS)


def _check_prob_matrix(prob: Any, k: int, n: int) -> np.ndarray:
    p = np.asarray(prob, dtype=np.float64)
    if p.ndim != 2 or p.shape != (n, k):
        raise StudyvalError(f"prob must have shape ({n}, {k}) (cases x classes), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise StudyvalError("prob has a missing or non-finite value")
    bad = np.argwhere((p <= 0.0) | (p >= 1.0))
    if bad.size:
        i, j = bad[0]
        raise StudyvalError(
            f"prob must be strictly between 0 and 1 (the log-ratios must be finite): "
            f"{len(bad)} entries are not, the first at row {i}, column {j} ({p[i, j]!r})"
        )
    sums = p.sum(axis=1)
    worst = int(np.argmax(np.abs(sums - 1.0)))
    if abs(sums[worst] - 1.0) > 1e-6:
        raise StudyvalError(
            f"each row of prob must sum to 1 (class probabilities), row {worst} sums to "
            f"{sums[worst]:.9g}"
        )
    return p / sums[:, None]


def _fit(
    x: np.ndarray, y: np.ndarray, k: int, labels: tuple[Any, ...]
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Multinomial logit ML fit (reference class 0): coefficients, fitted probabilities, deviance."""
    n, q = x.shape
    # standardised columns (intercept kept) for a well-conditioned Newton-Raphson
    centre = np.r_[0.0, x[:, 1:].mean(axis=0)]
    spread = np.r_[1.0, x[:, 1:].std(axis=0)]
    if np.any(spread == 0.0):
        raise EstimationError(
            "a spline column of the log-ratios is constant; the fit is not identified"
        )
    z = (x - centre) / spread
    z[:, 0] = 1.0
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    beta = np.zeros((q, k - 1))
    # start: intercepts at the marginal log-odds
    freq = onehot.mean(axis=0)
    beta[0] = np.log(freq[1:] / freq[0])

    def state(b: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        eta = np.column_stack([np.zeros(n), z @ b])
        logp = eta - logsumexp(eta, axis=1, keepdims=True)
        return eta, np.exp(logp), float(-2.0 * np.sum(logp[np.arange(n), y]))

    eta, mu, dev = state(beta)
    it, converged = 0, False
    while it < _MAX_ITER:
        it += 1
        r = onehot[:, 1:] - mu[:, 1:]
        grad = (z.T @ r).reshape(-1, order="F")
        m = k - 1
        hess = np.zeros((q * m, q * m))
        for a in range(m):
            for b in range(a, m):
                w = mu[:, a + 1] * ((a == b) - mu[:, b + 1])
                blk = z.T @ (z * w[:, None])
                hess[a * q : (a + 1) * q, b * q : (b + 1) * q] = blk
                hess[b * q : (b + 1) * q, a * q : (a + 1) * q] = blk.T
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:
            raise EstimationError(
                "multinomial recalibration: the information matrix is singular (the log-ratio "
                "splines are collinear or the categories are separated)"
            ) from exc
        step = step.reshape(q, m, order="F")
        t = 1.0
        for _ in range(40):
            cand = beta + t * step
            dev_c = state(cand)[2]
            if np.isfinite(dev_c) and dev_c <= dev + 1e-12 * abs(dev):
                break
            t /= 2.0
        change = abs(dev - dev_c)
        beta = cand
        eta, mu, dev = state(beta)
        if change <= _TOL * (abs(dev) + 0.1) and np.max(np.abs(t * step)) <= 1e-7 * (
            1.0 + np.max(np.abs(beta))
        ):
            converged = True
            break
        if np.max(np.abs(eta - eta.max(axis=1, keepdims=True))) > 2 * _ETA_LIMIT + 40.0:
            break
    spreadest = np.max(eta, axis=1) - np.min(eta, axis=1)
    if not converged or float(spreadest.max()) > 2 * _ETA_LIMIT:
        tiny = mu[np.arange(n), y] < math.exp(-_ETA_LIMIT)
        detail = (
            f"{int(tiny.sum())} cases get a fitted probability of their own category below "
            f"{math.exp(-_ETA_LIMIT):.1e}"
            if tiny.any()
            else "fitted log-ratios diverge"
        )
        raise EstimationError(
            "multinomial recalibration did not converge"
            + ("" if converged else f" in {_MAX_ITER} Newton-Raphson iterations")
            + f": the log-ratios separate the categories {', '.join(map(str, labels))} "
            f"(complete or quasi-complete separation; {detail}); the maximum-likelihood "
            "recalibration does not exist. Use fewer spline degrees of freedom or more cases"
        )
    # back to the unstandardised columns
    coef = beta / spread[:, None]
    coef[0] = beta[0] - (centre[1:] / spread[1:]) @ beta[1:]
    return coef, mu, dev, it


def multinomial_calibration(
    y_true: Any,
    prob: Any,
    *,
    classes: Sequence[Any],
    df: int = 3,
    grid_points: int = 100,
) -> MultinomialCalibrationResult:
    r"""Flexible multinomial logistic recalibration and the calibration curve of each class.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Observed category of each case (labels in ``classes``).
    prob : array-like, shape (n, K)
        Predicted probability of each category (columns in the order of
        ``classes``), strictly between 0 and 1, rows summing to 1 (to
        :math:`10^{-6}`; renormalised). A higher probability means the
        category is more likely.
    classes : sequence
        The :math:`K \ge 2` categories in order; the first is the reference
        of the log-ratios. With ``df = 1`` the fitted probabilities do not
        depend on it (the linear spans of the log-ratios are the same for every
        reference); with ``df > 1`` they do (natural splines of different
        log-ratios span different spaces), so the reference is a choice to
        report.
    df : int, default 3
        Degrees of freedom of the natural cubic spline of each log-ratio
        (``ns(lp, df)``); 1 gives the parametric (linear) framework.
    grid_points : int, default 100
        Points of each class's curve, equally spaced from the 1st to the 99th
        percentile of its predicted probability.

    Returns
    -------
    MultinomialCalibrationResult

    Raises
    ------
    StudyvalError
        Invalid inputs.
    EstimationError
        A category is not observed; too few distinct log-ratios for ``df``;
        separation or non-convergence of the recalibration model.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> lp = rng.normal(size=(300, 2))
    >>> p = np.exp(np.column_stack([np.zeros(300), lp]))
    >>> p /= p.sum(axis=1, keepdims=True)
    >>> y = np.array([rng.choice(3, p=row) for row in p])
    >>> r = multinomial_calibration(y, p, classes=[0, 1, 2], df=2)
    >>> r.calibrated.shape, r.to_frame().shape
    ((300, 3), (300, 6))

    """
    labels = _check_classes(classes)
    k = len(labels)
    y = _encode(y_true, labels, "y_true")
    n = y.size
    p = _check_prob_matrix(prob, k, n)
    if isinstance(df, bool) or not isinstance(df, numbers.Integral) or df < 1:
        raise StudyvalError(f"df must be a whole number >= 1, got {df!r}")
    if (
        isinstance(grid_points, bool)
        or not isinstance(grid_points, numbers.Integral)
        or (grid_points < 2)
    ):
        raise StudyvalError(f"grid_points must be a whole number >= 2, got {grid_points!r}")
    counts = np.bincount(y, minlength=k)
    absent = [str(labels[j]) for j in range(k) if counts[j] == 0]
    if absent:
        raise EstimationError(
            f"multinomial recalibration: no case of {', '.join(absent)}; its equation cannot "
            "be estimated"
        )
    lp = np.log(p[:, 1:]) - np.log(p[:, :1])
    blocks, knots = [np.ones((n, 1))], []
    for j in range(k - 1):
        t = _ns_knots(lp[:, j], int(df))
        if np.any(np.diff(t) <= 0.0):
            raise EstimationError(
                f"the log-ratio of {labels[j + 1]} to {labels[0]} has too few distinct values "
                f"for a natural spline with df = {df} (knots {np.round(t, 6).tolist()})"
            )
        knots.append(tuple(float(v) for v in t))
        blocks.append(natural_spline_basis(lp[:, j], t))
    x = np.hstack(blocks)
    if n <= x.shape[1] * (k - 1):
        raise EstimationError(
            f"multinomial recalibration: {n} cases for {x.shape[1] * (k - 1)} coefficients"
        )
    coef, mu, dev, it = _fit(x, y, k, labels)
    grids, curves, e_avg, e_max = [], [], [], []
    for j in range(k):
        order = np.argsort(p[:, j], kind="stable")
        ps, pis = p[order, j], mu[order, j]
        fx, fy = lowess_counts(ps, pis, np.ones(n), frac=LOWESS_FRAC)
        lo, hi = np.quantile(ps, [0.01, 0.99])
        g = np.linspace(lo, hi, int(grid_points))
        grids.append(g)
        # a probability: the lowess line may leave [0, 1] near the ends of the grid
        curves.append(np.clip(np.interp(g, fx, fy), 0.0, 1.0))
        diff = np.abs(p[:, j] - mu[:, j])
        e_avg.append(float(diff.mean()))
        e_max.append(float(diff.max()))
    spline = "linear log-ratios (parametric)" if df == 1 else f"natural cubic splines, df = {df}"
    method = (
        f"multinomial logistic recalibration on the log-ratios log(p_k/p_{labels[0]}) "
        f"({spline}; Van Hoorde et al. 2014, 2015); curve: lowess of the calibrated on the "
        "predicted probability"
    )
    return MultinomialCalibrationResult(
        classes=labels,
        df=int(df),
        predicted=p,
        calibrated=mu,
        coefficients=coef,
        knots=tuple(knots),
        deviance=dev,
        iterations=it,
        n=int(n),
        n_events=tuple(int(c) for c in counts),
        curve_predicted=tuple(grids),
        curve_calibrated=tuple(curves),
        e_avg=tuple(e_avg),
        e_max=tuple(e_max),
        method=method,
    )
