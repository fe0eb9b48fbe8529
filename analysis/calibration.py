r"""Calibration of external predicted probabilities (a frozen model's output).

The probabilities :math:`p_i` come from a model that is *not* refitted here (a
deep-learning network evaluated on a validation set). With
:math:`\ell_i = \operatorname{logit}(p_i)` and :math:`y_i = 1` for the positive
class, every measure below compares :math:`p` with :math:`y`:

=====================  ========================================================  =====================
measure                definition                                                interval
=====================  ========================================================  =====================
intercept_in_large     :math:`a` in :math:`\operatorname{logit} P(y=1) = a +      Wald (GLM)
                       \ell` (slope fixed at 1; "calibration-in-the-large")
slope                  :math:`b` in :math:`\operatorname{logit} P(y=1) = a' +     Wald (GLM)
                       b\,\ell` (logistic recalibration)
intercept_joint        :math:`a'` of that joint fit (``Intercept`` of             Wald (GLM)
                       ``rms::val.prob``)
brier                  :math:`B = \frac1n\sum_i (p_i - y_i)^2`                     Wald (CLT)
scaled_brier           :math:`1 - B / (\bar y(1-\bar y))`                          bootstrap
emax, eavg, e50, e90   max, mean, median, 90th percentile of                      bootstrap
                       :math:`|p_i - \hat s(p_i)|`, :math:`\hat s` the lowess
                       calibration curve (``eavg`` is the ICI)
spiegelhalter_z, _p    :math:`Z = \frac{\sum (y_i - p_i)(1 - 2p_i)}               none (a test)
                       {\sqrt{\sum (1-2p_i)^2 p_i(1-p_i)}}`, two-sided
                       normal p-value
=====================  ========================================================  =====================

Intercepts and slope are maximum-likelihood estimates of a logistic model with
:math:`\ell` as offset (``intercept_in_large``) or covariate (``slope``,
``intercept_joint``); their Wald interval is
:math:`\hat\theta \pm z_{1-\alpha/2}\,\widehat{\mathrm{se}}` with the
model-based (inverse-information) standard error, as R's
``confint.default(glm(...))``. A well-calibrated model has intercepts 0 and
slope 1; a slope below 1 means over-confident (too extreme) predictions, above
1 under-confident ones; ``intercept_in_large`` > 0 means the model
under-estimates the risk on average (Van Calster et al. 2016, J Clin Epidemiol
74:167-176, doi:10.1016/j.jclinepi.2015.12.005; Steyerberg 2019, *Clinical
Prediction Models*, ch. 15). Lower is better for the Brier score and the E
statistics; higher is better for the scaled Brier score (1 = perfect, 0 = no
better than predicting the prevalence to everybody).

The flexible calibration curve
------------------------------
:math:`\hat s` is R's ``lowess(p, y, iter = 0)`` (Cleveland 1979, J Am Stat
Assoc 74:829-836, doi:10.1080/01621459.1979.10481038): local linear
regression of :math:`y` on :math:`p` with tricube weights over the nearest
:math:`\lfloor 2n/3 \rfloor` points, no robustness iterations, fitted exactly
only every ``delta = 0.01 * diff(range(p))`` and interpolated in between. This
is the curve ``rms::val.prob`` uses for ``Emax``, ``E90`` and ``Eavg``
(Harrell, rms 6.5): ``Sm <- lowess(p, y, iter = 0)``,
``cal <- approx(Sm, xout = p, ties = mean)$y``, ``er <- abs(p - cal)``;
``Eavg = mean(er)``, ``Emax = max(er)``, ``E90 = quantile(er, 0.9)`` (type 7),
all over the **observed** predictions (rms 6.5 computes a grid ``emax.lim`` but
does not use it). ``e50`` is ``quantile(er, 0.5)`` on the same curve.

The smoother here is an exact port of R's C routine ``clowess`` (including its
tie handling: when more than :math:`2n/3` predictions are tied, R averages
all of them; and its switch to a local mean when the local spread of
:math:`p` is below 0.1 % of its range). It agrees with R's ``lowess`` to
rounding (about 1e-15). ``statsmodels``' ``lowess`` does not: it differs by
up to ~1e-7 on untied data and grossly (0.28 in a test) when more than
:math:`2n/3` predictions are tied, so it is not used.

Difference from Austin & Steyerberg (2019, Stat Med 38:4051-4065,
doi:10.1002/sim.8281): they define ICI, E50 and E90 with R's ``loess``
(span 0.75, local quadratic). The values here use ``rms``' lowess and agree
with ``rms::val.prob``; they differ from a ``loess`` ICI by the smoother only.

Intervals
---------
Wald intervals where the estimator has a closed-form standard error
(intercepts, slope, Brier); a bootstrap (``ci_method``, BCa by default, from
:mod:`studyval.analysis.resampling`) for the rest and for the pointwise band
of the curve. With ``clusters`` (several rows per patient) the rows are not
independent, so the model-based Wald standard errors would be too small:
then **every** interval is a cluster (patient) bootstrap, and ``ci_method`` in
:meth:`CalibrationResult.to_frame` says so. Point estimates do not depend on
``clusters``. The Spiegelhalter test assumes independent rows; with clusters
its p-value is anti-conservative (its note says so).

Separation
----------
When a threshold on the predictions puts every positive case on one side and
every negative case on the other (complete separation; quasi-complete when
the two classes meet at the threshold), the maximum-likelihood slope of the
logistic recalibration is infinite (Albert & Anderson 1984, Biometrika
71:1-10, doi:10.1093/biomet/71.1.1). With the single covariate
:math:`\ell` this is decided exactly from the data: separation holds iff
:math:`\max_{y_i=0}\ell_i \le \min_{y_i=1}\ell_i` or
:math:`\max_{y_i=1}\ell_i \le \min_{y_i=0}\ell_i`. :func:`calibration`
checks it before fitting and raises :class:`~studyval.errors.EstimationError`
naming it, rather than trusting the fit: Newton-Raphson (and R's ``glm``)
can stop at a huge slope with a huge or undefined standard error and report
convergence. A bootstrap resample that is separated has no slope either; it
counts as an undefined resample (its ``note`` says how many).

Bootstrap replicates are computed from resampling *weights* (how often each
row is drawn): every statistic here is written for a weight matrix of shape
(b, n), and with integer weights equals the statistic on the data with rows
repeated (the logistic fits by vectorised Newton-Raphson, the lowess by the
exact weighted port).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit, logit

from studyval.analysis._checks import (
    check_alpha,
    check_binary_outcome,
    check_option,
    check_probabilities,
)
from studyval.analysis.resampling import bootstrap_many
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = [
    "MEASURES",
    "CalibrationMeasure",
    "CalibrationResult",
    "calibration",
    "curves_frame",
    "histograms_frame",
    "lowess_counts",
]

#: Measures of :func:`calibration`, in table order.
MEASURES = (
    "intercept_in_large",
    "slope",
    "intercept_joint",
    "brier",
    "scaled_brier",
    "emax",
    "eavg",
    "e50",
    "e90",
    "spiegelhalter_z",
    "spiegelhalter_p",
)

#: Span of R's ``lowess`` (its default ``f = 2/3``), as ``rms::val.prob`` uses it.
LOWESS_FRAC = 2.0 / 3.0

SMOOTHER = "lowess(p, y, iter = 0): f = 2/3, delta = 0.01 * range(p) (R; as rms::val.prob)"

_CI_METHODS = ("bca", "percentile")
_N_HIST_BINS = 100
_HIST_EDGES = np.linspace(0.0, 1.0, _N_HIST_BINS + 1)
_NEWTON_MAX_ITER = 100
_NEWTON_TOL = 1e-11
#: Up to this many (fitting point, window) pairs the lowess bandwidth evaluates them all;
#: beyond, a binary search per fitting point (the same result, bit for bit).
_KTH_ALL_PAIRS_MAX = 20_000
_TABLE_COLUMNS = ["measure", "estimate", "ci_low", "ci_high", "ci_level", "ci_method", "note"]


# --------------------------------------------------------------------------- helpers


def _readonly(a: Any) -> np.ndarray:
    a = np.array(a, dtype=np.float64)
    a.setflags(write=False)
    return a


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return bool(np.array_equal(x, y, equal_nan=True))
    if isinstance(x, float) and isinstance(y, float) and math.isnan(x) and math.isnan(y):
        return True
    return bool(x == y)


class _ValueEq:
    """Field-wise equality (arrays element-wise, NaN equal to NaN); unhashable."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _same(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    __hash__ = None  # type: ignore[assignment]


def _check_n_resamples(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise StudyvalError(f"n_resamples must be an integer (0 or >= 2), got {value!r}")
    value = int(value)
    if value < 0 or value == 1:
        raise StudyvalError(f"n_resamples must be 0 (no bootstrap intervals) or >= 2, got {value}")
    return value


# ------------------------------------------------------------------ weighted lowess


def lowess_counts(
    x: np.ndarray, y: np.ndarray, counts: np.ndarray, *, frac: float = LOWESS_FRAC
) -> tuple[np.ndarray, np.ndarray]:
    r"""R's ``lowess(x, y, f = frac, iter = 0)`` on data with rows repeated ``counts`` times.

    An exact port of the C routine ``clowess`` of R's ``stats`` package for
    ``iter = 0`` and R's default ``delta = 0.01 * diff(range(x))``, written for
    integer row weights so that a bootstrap resample need not be materialised.
    With unit counts it is ``lowess(x, y, iter = 0)``.

    Let :math:`N = \sum_i c_i` and :math:`k = \max(2, \lfloor fN + 10^{-7}\rfloor)`.
    At a fitting point :math:`x_0`, :math:`h` is the distance to the
    :math:`k`-th nearest of the :math:`N` (repeated) points; every point with
    :math:`r = |x_j - x_0| \le 0.999h` gets the weight
    :math:`c_j (1 - (r/h)^3)^3` (1 if :math:`r \le 0.001h`; if :math:`h = 0`,
    all points tied with :math:`x_0`), and the fit at :math:`x_0` is the
    weighted least-squares line evaluated at :math:`x_0` (the weighted mean
    when the weighted SD of the :math:`x_j` is at most 0.1 % of the range).
    Fits are computed at the smallest :math:`x`, then repeatedly at the
    largest :math:`x` within ``delta`` of the last fit (or the next distinct
    :math:`x` if none), and linearly interpolated in between.

    Parameters
    ----------
    x : numpy.ndarray, shape (n,)
        Sorted (non-decreasing) predictor values.
    y : numpy.ndarray, shape (n,)
        Responses.
    counts : numpy.ndarray, shape (n,)
        Non-negative integer weights (times each row occurs); rows with count
        0 are absent. At least one must be positive.
    frac : float
        R's ``f``, the span.

    Returns
    -------
    fit_x, fit_y : numpy.ndarray
        The fitted curve at the fitting points (strictly increasing
        ``fit_x``); the curve is the linear interpolation between them, so the
        smoothed value at any observed ``x`` is
        ``numpy.interp(x, fit_x, fit_y)`` (as ``approx(lowess(x, y), xout = x)``).

    """
    keep = counts > 0
    xs, ys, ws = x[keep], y[keep], counts[keep]
    total = float(ws.sum())
    ns = int(max(2.0, min(total, math.floor(frac * total + 1e-7))))
    span = float(xs[-1] - xs[0])
    delta = 0.01 * span
    fx = _fit_points(np.unique(xs), delta)
    h = _kth_distance(np.repeat(xs, ws.astype(np.int64)), fx, ns)

    # Tricube weights of every (fitting point, row) pair, in place to spare large temporaries;
    # each element by the same floating-point operations, in the same order, as the formula.
    tied = h == 0.0  # more than ns points tied at the fitting point: R averages all ties
    hh = np.where(tied, 1.0, h)[:, None]
    r = np.subtract(xs[None, :], fx[:, None])
    np.abs(r, out=r)
    far = r > 0.999 * hh
    near = r <= 0.001 * hh
    w = np.divide(r, hh)  # u = r / h
    cube = np.multiply(w, w)
    cube *= w  # u * u * u
    np.subtract(1.0, cube, out=cube)  # 1 - u^3
    np.multiply(cube, cube, out=w)
    w *= cube  # (1 - u^3)^3
    np.copyto(w, 0.0, where=far)
    np.copyto(w, 1.0, where=near)
    if tied.any():
        w[tied] = r[tied] == 0.0
    w *= ws[None, :]

    # Weighted least-squares line at every fitting point.
    w /= w.sum(axis=1, keepdims=True)
    centre = w @ xs
    dev = np.subtract(xs[None, :], centre[:, None])
    spread = np.einsum("ij,ij->i", w, np.square(dev, out=cube))
    linear = (h > 0.0) & (np.sqrt(spread) > 0.001 * span)
    slope = np.where(linear, (fx - centre) / np.where(linear, spread, 1.0), 0.0)
    dev *= slope[:, None]
    dev += 1.0
    w *= dev
    return fx, w @ ys


def _fit_points(ux: np.ndarray, delta: float) -> np.ndarray:
    """The fitting points of ``clowess`` among the sorted distinct ``ux``.

    The first is ``ux[0]``; after a fit at ``ux[i]`` the next is the largest
    ``ux[j]`` with ``ux[j] <= ux[i] + delta``, or ``ux[i + 1]`` if that is
    ``ux[i]`` itself; the last is ``ux[-1]``.
    """
    m = ux.size
    step = np.searchsorted(ux, ux + delta, side="right") - 1
    np.maximum(step, np.arange(1, m + 1), out=step)
    nxt = step.tolist()
    fits = [0]
    i = 0
    while i < m - 1:
        i = nxt[i]
        fits.append(i)
    return ux[fits]


def _kth_distance(expanded: np.ndarray, fx: np.ndarray, ns: int) -> np.ndarray:
    r"""Distance from every ``fx`` to its ``ns``-th nearest value of the sorted ``expanded``.

    As ``clowess``: the smallest half-width
    :math:`\max(x_0 - e_L, e_{L + ns - 1} - x_0)` over the windows of ``ns``
    consecutive sorted values. For few (fitting point, window) pairs every
    pair is evaluated. Otherwise a binary search: in floating point
    :math:`x_0 - e_L` does not increase and :math:`e_{L + ns - 1} - x_0` does
    not decrease with :math:`L`, so the minimum is at the first window
    :math:`L^*` where the right distance reaches the left one, or just before
    it; the result is exactly the minimum over all windows either way.
    """
    windows = expanded.size - ns + 1
    right = expanded[ns - 1 :]
    if fx.size * windows <= _KTH_ALL_PAIRS_MAX:
        left = expanded[:windows]
        return np.maximum(fx[:, None] - left[None, :], right[None, :] - fx[:, None]).min(axis=1)

    def reached(L: np.ndarray) -> np.ndarray:
        return right[L] - fx >= fx - expanded[L]

    # Branchless lower bound over [0, windows): the first L with reached(L), else windows.
    base = np.zeros(fx.size, dtype=np.intp)
    n = windows
    while n > 1:
        half = n // 2
        mid = base + half
        base = np.where(reached(mid), base, mid)
        n -= half
    first = base + ~reached(base)
    with_right = np.where(first < windows, right[np.minimum(first, windows - 1)] - fx, np.inf)
    with_left = np.where(first > 0, fx - expanded[np.maximum(first - 1, 0)], np.inf)
    return np.minimum(with_left, with_right)


def _quantile_type7(values: np.ndarray, counts: np.ndarray, q: float) -> float:
    """R's ``quantile(rep(values, counts), q, type = 7)``."""
    return _quantiles_type7(values, counts, (q,))[0]


def _quantiles_type7(values: np.ndarray, counts: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """:func:`_quantile_type7` at every ``q`` of ``qs``, sorting ``values`` once."""
    order = np.argsort(values, kind="stable")
    v = values[order]
    cum = np.cumsum(counts[order])
    total = int(cum[-1])
    out = []
    for q in qs:
        index = 1.0 + (total - 1) * q
        lo, hi = math.floor(index), math.ceil(index)
        x_lo = v[np.searchsorted(cum, lo - 1, side="right")]
        x_hi = v[np.searchsorted(cum, hi - 1, side="right")]
        if index > lo and x_hi != x_lo:
            frac = index - lo
            out.append(float((1.0 - frac) * x_lo + frac * x_hi))
        else:
            out.append(float(x_lo))
    return out


# ---------------------------------------------------------------- logistic fitting


def _separated(lp: np.ndarray, y: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Rows of ``weights`` whose data ``logit(p)`` separates (completely or quasi-completely).

    With one covariate and an intercept, the maximum-likelihood estimate of
    ``logit P(y=1) = a + b * lp`` exists (is finite) if and only if the
    classes overlap (Albert & Anderson 1984, Biometrika 71:1-10,
    doi:10.1093/biomet/71.1.1): there is no threshold :math:`t` with
    :math:`\ell_i \le t` for every negative and :math:`\ell_i \ge t` for every
    positive row, nor the reverse. Among the rows present (weight > 0), with
    :math:`\ell^-_{\max}` the largest ``lp`` of a negative and
    :math:`\ell^+_{\min}` the smallest of a positive, the data are separated when
    :math:`\ell^-_{\max} \le \ell^+_{\min}` or :math:`\ell^+_{\max} \le
    \ell^-_{\min}` (equality: quasi-complete separation). A row with one
    class only counts as separated.

    Returns a boolean array of shape (b,).
    """
    present = weights > 0
    pos = present & (y[None, :] == 1.0)
    neg = present & (y[None, :] == 0.0)
    max_neg = np.where(neg, lp[None, :], -np.inf).max(axis=1)
    min_neg = np.where(neg, lp[None, :], np.inf).min(axis=1)
    max_pos = np.where(pos, lp[None, :], -np.inf).max(axis=1)
    min_pos = np.where(pos, lp[None, :], np.inf).min(axis=1)
    return (max_neg <= min_pos) | (max_pos <= min_neg)


def _separation_message(p: np.ndarray, lp: np.ndarray, y: np.ndarray) -> str | None:
    """Why the unit-weight recalibration has no finite slope, or None if the classes overlap."""
    pos, neg = y == 1.0, y == 0.0
    n_pos, n_neg = int(pos.sum()), int(neg.sum())
    for sign, higher, lower in ((1, pos, neg), (-1, neg, pos)):
        top_low = float(lp[lower].max())
        bottom_high = float(lp[higher].min())
        if top_low > bottom_high:
            continue
        hi_name, lo_name = ("positive", "negative") if sign == 1 else ("negative", "positive")
        p_low_max = float(p[lower][lp[lower] == top_low][0])
        p_high_min = float(p[higher][lp[higher] == bottom_high][0])
        if top_low < bottom_high:
            kind = "complete separation"
            how = (
                f"every {hi_name} case has a higher predicted probability than every "
                f"{lo_name} case ({lo_name} cases up to {p_low_max:.6g}, {hi_name} cases from "
                f"{p_high_min:.6g})"
            )
        else:
            k_hi = int((lp[higher] == top_low).sum())
            k_lo = int((lp[lower] == top_low).sum())
            kind = "quasi-complete separation"
            how = (
                f"every {hi_name} case has a predicted probability at least as high as every "
                f"{lo_name} case's, the classes meeting only at prob = {p_low_max:.6g} "
                f"({k_hi} {hi_name} and {k_lo} {lo_name} cases there)"
            )
        slope = "+infinity" if sign == 1 else "-infinity"
        return (
            f"logit(prob) separates the two classes ({kind}, Albert & Anderson 1984; "
            f"{n_pos} positive and {n_neg} negative cases): {how}. The maximum-likelihood "
            f"calibration slope does not exist (it diverges to {slope}; glm reports a huge "
            "slope and standard error or 'fitted probabilities numerically 0 or 1 "
            "occurred'), so the calibration slope and the joint intercept cannot be "
            "estimated and no calibration result is reported"
        )
    return None


def _logistic_fit(
    lp: np.ndarray, y: np.ndarray, weights: np.ndarray, *, slope: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted ML logistic recalibration for every row of ``weights`` at once.

    Model ``logit P(y=1) = a + lp`` (``slope=False``) or ``a + b * lp``.
    Newton-Raphson from ``a = 0, b = 1`` (rms' start) with step halving; a row
    that does not converge (a single class) gets NaN. With ``slope=True`` a
    row whose data ``lp`` separates (:func:`_separated`: the slope has no
    finite maximum-likelihood estimate) is not fitted and gets NaN: Newton
    would otherwise stop where every fitted probability is numerically 0 or 1
    and report an arbitrary, huge slope as converged.

    Returns ``coef`` of shape (b, 1 or 2) and ``converged`` of shape (b,).
    """
    b = weights.shape[0]
    k = 2 if slope else 1
    coef = np.zeros((b, k))
    if slope:
        coef[:, 1] = 1.0
    active = np.ones(b, dtype=bool)
    if slope:
        active &= ~_separated(lp, y, weights)
    converged = np.zeros(b, dtype=bool)

    def eta(c: np.ndarray) -> np.ndarray:
        return c[:, :1] + (c[:, 1:2] * lp[None, :] if slope else lp[None, :])

    def loglik(e: np.ndarray, w: np.ndarray) -> np.ndarray:
        terms = np.multiply(y[None, :], e)
        terms -= np.logaddexp(0.0, e)
        return np.einsum("ij,ij->i", w, terms)

    # Every quantity of a row is computed from that row alone, so a row's iterations do not
    # depend on which other rows are still active; the linear predictor and log-likelihood at
    # the accepted step are kept for the next iteration rather than computed again.
    rows = e = ll = w = None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for _ in range(_NEWTON_MAX_ITER):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            c = coef[idx]
            if rows is None:
                w = weights[idx]
                e = eta(c)
                ll = loglik(e, w)
            elif idx.size < rows.size:
                still = active[rows]
                w, e, ll = w[still], e[still], ll[still]
            mu = expit(e)
            resid = np.subtract(y[None, :], mu)
            resid *= w
            var = np.multiply(w, mu)
            var *= np.subtract(1.0, mu, out=mu)
            g0 = resid.sum(axis=1)
            h00 = var.sum(axis=1)
            if slope:
                g1 = resid @ lp
                h01 = var @ lp
                h11 = var @ (lp * lp)
                det = h00 * h11 - h01 * h01
                step = np.column_stack([(h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det])
            else:
                step = (g0 / h00)[:, None]
            bad = ~np.all(np.isfinite(step), axis=1)
            step[bad] = 0.0
            # Step halving (at most 40 evaluations) until no row's log-likelihood drops; a row
            # that does not drop keeps its step, so only the others are evaluated again.
            floor = ll - 1e-12 * np.abs(ll)
            t = np.ones(idx.size)
            cand = c + t[:, None] * step
            e = eta(cand)
            ll = loglik(e, w)
            worse = ll < floor
            for _ in range(39):
                if not worse.any():
                    break
                t = np.where(worse, t / 2.0, t)
                redo = np.flatnonzero(worse)
                cand[redo] = c[redo] + t[redo, None] * step[redo]
                e[redo] = eta(cand[redo])
                ll[redo] = loglik(e[redo], w[redo])
                worse[redo] = ll[redo] < floor[redo]
            else:  # 40 evaluations and still worse: halved once more, as after every evaluation
                t = np.where(worse, t / 2.0, t)
            coef[idx] = cand
            done = np.all(np.abs(t[:, None] * step) <= _NEWTON_TOL * (1.0 + np.abs(cand)), axis=1)
            converged[idx[done & ~bad]] = True
            active[idx[done | bad]] = False
            rows = idx
    coef[~converged] = np.nan
    return coef, converged


def _information(lp: np.ndarray, coef: np.ndarray, *, slope: bool) -> np.ndarray:
    """Fisher information of the unweighted fit at ``coef`` (1-D coefficients)."""
    e = coef[0] + (coef[1] * lp if slope else lp)
    mu = expit(e)
    v = mu * (1.0 - mu)
    if not slope:
        return np.array([[v.sum()]])
    return np.array([[v.sum(), v @ lp], [v @ lp, v @ (lp * lp)]])


# --------------------------------------------------------------- weighted statistic


class _Statistic:
    """Every bootstrapped calibration quantity, for a (b, n) matrix of row weights."""

    def __init__(
        self, y: np.ndarray, p: np.ndarray, grid: np.ndarray, columns: tuple[str, ...]
    ) -> None:
        self.order = np.argsort(p, kind="stable")
        self.x = p[self.order]
        self.y = y[self.order]
        self.lp = logit(self.x)
        self.grid = grid
        self.columns = columns

    def lowess_part(self, w: np.ndarray) -> tuple[float, float, float, float, np.ndarray]:
        """Emax, Eavg, E50, E90 and the curve on the grid, for one row of sorted weights."""
        fx, fy = lowess_counts(self.x, self.y, w)
        keep = w > 0
        er = np.abs(self.x[keep] - np.interp(self.x[keep], fx, fy))
        c = w[keep]
        e50, e90 = _quantiles_type7(er, c, (0.5, 0.9))
        return float(er.max()), float(c @ er / c.sum()), e50, e90, np.interp(self.grid, fx, fy)

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        w = np.asarray(weights, dtype=np.float64)[:, self.order]
        if not np.array_equal(w, np.round(w)):
            raise StudyvalError("calibration weights must be integer counts (resampling weights)")
        b = w.shape[0]
        out: dict[str, np.ndarray] = {}
        total = w.sum(axis=1)
        cols = set(self.columns)
        if cols & {"brier", "scaled_brier"}:
            brier = w @ (self.x - self.y) ** 2 / total
            ybar = w @ self.y / total
            out["brier"] = brier
            with np.errstate(divide="ignore", invalid="ignore"):
                scaled = 1.0 - brier / (ybar * (1.0 - ybar))
            out["scaled_brier"] = np.where((ybar > 0) & (ybar < 1), scaled, np.nan)
        if "intercept_in_large" in cols:
            out["intercept_in_large"] = _logistic_fit(self.lp, self.y, w, slope=False)[0][:, 0]
        if cols & {"slope", "intercept_joint"}:
            coef = _logistic_fit(self.lp, self.y, w, slope=True)[0]
            out["intercept_joint"], out["slope"] = coef[:, 0], coef[:, 1]
        if cols & {"emax", "eavg", "e50", "e90"} or any(c.startswith("curve") for c in cols):
            e = np.empty((b, 4))
            curve = np.empty((b, self.grid.size))
            for r in range(b):
                *e[r], curve[r] = self.lowess_part(w[r])
            out.update(emax=e[:, 0], eavg=e[:, 1], e50=e[:, 2], e90=e[:, 3])
            for j in range(self.grid.size):
                out[f"curve_{j}"] = curve[:, j]
        return np.column_stack([out[c] for c in self.columns])


# -------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationMeasure(_ValueEq, Result):
    r"""One calibration measure with its confidence interval.

    Unpacks as ``estimate, ci_low, ci_high``.

    Attributes
    ----------
    measure : str
        Name, one of :data:`MEASURES`.
    estimate : float
        Point estimate.
    se : float
        Standard error: model-based (Wald), :math:`s/\sqrt n` (Brier), the
        bootstrap SD (bootstrap intervals), or NaN (tests, no interval).
    ci_low, ci_high : float
        Confidence limits; NaN where no interval is defined.
    ci_level : float
        :math:`1 - \alpha`.
    ci_method : str
        ``"wald"``, ``"bootstrap bca"``, ``"bootstrap percentile"``,
        ``"cluster bootstrap bca"``, ``"cluster bootstrap percentile"``, or
        ``"none"``.
    note : str
        Empty, or a sentence on failed resamples or an assumption.

    ``==`` compares field by field with NaN equal to NaN.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    measure: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    note: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationResult(_ValueEq, Result):
    r"""Calibration of external predicted probabilities: measures and flexible curve.

    Definitions and interval methods are in :mod:`studyval.analysis.calibration`.
    Each measure is a :class:`CalibrationMeasure`, reachable by name
    (``result.slope.estimate``); :meth:`to_frame` stacks them (the tidy
    table, one row per measure); :meth:`summary_frame` is the one-row table of
    :meth:`to_dict`.

    Attributes
    ----------
    measures : tuple of CalibrationMeasure
        One per measure, in the order of :data:`MEASURES`.
    n : int
        Rows (predictions).
    n_events : int
        Rows of the positive class.
    n_clusters : int or None
        Clusters (patients) resampled, or None when rows were independent.
    positive : label
        The positive class in ``y_true``.
    alpha : float
        Two-sided error rate of every interval.
    ci_level : float
        :math:`1 - \alpha`.
    bootstrap_method : str
        ``"bca"``, ``"percentile"``, or ``"none"`` (``n_resamples = 0``).
    n_resamples : int
        Bootstrap resamples (0: none).
    seed : int or None
        Seed of the bootstrap.
    smoother : str
        The calibration curve's smoother (:data:`SMOOTHER`).
    curve_predicted : numpy.ndarray, shape (g,)
        Grid of predicted probabilities where the curve is reported.
    curve_observed : numpy.ndarray, shape (g,)
        Lowess-smoothed observed proportion at the grid.
    curve_ci_low, curve_ci_high : numpy.ndarray, shape (g,)
        Pointwise bootstrap band (``bootstrap_method``); NaN without bootstrap.
    histogram_n_positive, histogram_n_negative : numpy.ndarray, shape (100,)
        Counts of predictions in the bins ``[0, 0.01), ..., [0.99, 1]`` by
        outcome (the distribution of risk, for figures).

    """

    measures: tuple[CalibrationMeasure, ...] = dataclasses.field(repr=False)
    n: int
    n_events: int
    n_clusters: int | None
    positive: Any
    alpha: float
    ci_level: float
    bootstrap_method: str
    n_resamples: int
    seed: int | None
    smoother: str = dataclasses.field(repr=False)
    curve_predicted: np.ndarray = dataclasses.field(repr=False)
    curve_observed: np.ndarray = dataclasses.field(repr=False)
    curve_ci_low: np.ndarray = dataclasses.field(repr=False)
    curve_ci_high: np.ndarray = dataclasses.field(repr=False)
    histogram_n_positive: np.ndarray = dataclasses.field(repr=False)
    histogram_n_negative: np.ndarray = dataclasses.field(repr=False)

    # -- access
    def measure(self, name: str) -> CalibrationMeasure:
        """The :class:`CalibrationMeasure` called ``name`` (one of :data:`MEASURES`)."""
        check_option(name, MEASURES, "measure")
        return self.measures[MEASURES.index(name)]

    @property
    def intercept_in_large(self) -> CalibrationMeasure:
        """Calibration-in-the-large: intercept with ``logit(p)`` as offset (0 = ideal)."""
        return self.measure("intercept_in_large")

    @property
    def slope(self) -> CalibrationMeasure:
        """Logistic calibration slope (1 = ideal, < 1 over-confident)."""
        return self.measure("slope")

    @property
    def intercept_joint(self) -> CalibrationMeasure:
        """Intercept of the joint recalibration fit (``rms::val.prob``'s ``Intercept``)."""
        return self.measure("intercept_joint")

    @property
    def brier(self) -> CalibrationMeasure:
        """Brier score, mean squared error of the probabilities (lower is better)."""
        return self.measure("brier")

    @property
    def scaled_brier(self) -> CalibrationMeasure:
        """Scaled Brier score ``1 - B / (pbar (1 - pbar))`` (higher is better)."""
        return self.measure("scaled_brier")

    @property
    def emax(self) -> CalibrationMeasure:
        """Largest absolute difference between prediction and lowess curve."""
        return self.measure("emax")

    @property
    def eavg(self) -> CalibrationMeasure:
        """Mean absolute difference between prediction and lowess curve (the ICI)."""
        return self.measure("eavg")

    @property
    def ici(self) -> CalibrationMeasure:
        """Integrated calibration index; the same as :attr:`eavg`."""
        return self.measure("eavg")

    @property
    def e50(self) -> CalibrationMeasure:
        """Median absolute difference between prediction and lowess curve."""
        return self.measure("e50")

    @property
    def e90(self) -> CalibrationMeasure:
        """90th percentile of the absolute difference (R type-7 quantile)."""
        return self.measure("e90")

    @property
    def spiegelhalter_z(self) -> CalibrationMeasure:
        """Spiegelhalter's Z statistic (0 = ideal)."""
        return self.measure("spiegelhalter_z")

    @property
    def spiegelhalter_p(self) -> CalibrationMeasure:
        """Two-sided p-value of Spiegelhalter's test."""
        return self.measure("spiegelhalter_p")

    # -- tables
    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per measure.

        Columns: ``measure, estimate, ci_low, ci_high, ci_level, ci_method, note``.
        """
        return pd.DataFrame([m.to_dict() for m in self.measures], columns=_TABLE_COLUMNS)

    def summary_frame(self) -> pd.DataFrame:
        """One-row table of :meth:`to_dict` (each measure with its interval as columns)."""
        return Result.to_frame(self)

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields plus ``<measure>``, ``<measure>_ci_low``, ``<measure>_ci_high``."""
        out = super().to_dict()
        for m in self.measures:
            out[m.measure] = m.estimate
            out[f"{m.measure}_ci_low"] = m.ci_low
            out[f"{m.measure}_ci_high"] = m.ci_high
        return out

    def curve_frame(self) -> pd.DataFrame:
        """The flexible calibration curve and its pointwise band.

        Columns: ``predicted, observed, ci_low, ci_high, ci_level``, one row per
        grid point (increasing ``predicted``).
        """
        return pd.DataFrame(
            {
                "predicted": self.curve_predicted,
                "observed": self.curve_observed,
                "ci_low": self.curve_ci_low,
                "ci_high": self.curve_ci_high,
                "ci_level": self.ci_level,
            }
        )

    def histogram_frame(self, bins: int = 50) -> pd.DataFrame:
        """Distribution of the predictions by outcome, in ``bins`` equal bins on [0, 1].

        Parameters
        ----------
        bins : int
            A divisor of 100 (10, 20, 25, 50 or 100).

        Returns
        -------
        pandas.DataFrame
            Columns ``bin_low, bin_high, n_positive, n_negative``; counts only,
            no individual predictions.

        """
        allowed = (1, 2, 4, 5, 10, 20, 25, 50, 100)
        if isinstance(bins, bool) or bins not in allowed:
            raise StudyvalError(f"bins must divide 100 (one of {allowed}), got {bins!r}")
        k = _N_HIST_BINS // bins
        pos = self.histogram_n_positive.reshape(bins, k).sum(axis=1)
        neg = self.histogram_n_negative.reshape(bins, k).sum(axis=1)
        edges = np.linspace(0.0, 1.0, bins + 1)
        return pd.DataFrame(
            {
                "bin_low": edges[:-1],
                "bin_high": edges[1:],
                "n_positive": pos.astype(np.int64),
                "n_negative": neg.astype(np.int64),
            }
        )


# ----------------------------------------------------------------------- main entry


def _default_grid(p: np.ndarray) -> np.ndarray:
    lo, hi = np.quantile(p, [0.01, 0.99])
    return np.linspace(lo, hi, 100)


def _check_grid(grid: Any, p: np.ndarray) -> np.ndarray:
    if grid is None:
        return _default_grid(p)
    g = np.asarray(grid, dtype=np.float64)
    if g.ndim != 1 or g.size == 0:
        raise StudyvalError(f"grid must be a non-empty one-dimensional array, got shape {g.shape}")
    if not np.all(np.isfinite(g)):
        raise StudyvalError("grid has a non-finite value")
    if np.any(np.diff(g) <= 0):
        raise StudyvalError("grid must be strictly increasing")
    lo, hi = float(p.min()), float(p.max())
    if g[0] < lo or g[-1] > hi:
        raise StudyvalError(
            f"grid must lie within the range of the predictions [{lo:.6g}, {hi:.6g}]: the "
            f"lowess curve is not extrapolated (got [{g[0]:.6g}, {g[-1]:.6g}])"
        )
    return g


def calibration(
    y_true: Any,
    prob: Any,
    *,
    positive: Any,
    alpha: float = 0.05,
    clusters: Any = None,
    n_resamples: int = 1000,
    seed: int | None,
    ci_method: str = "bca",
    grid: Any = None,
) -> CalibrationResult:
    r"""Calibration measures, flexible calibration curve and intervals.

    Definitions, references, the agreement with ``rms::val.prob`` and the
    choice of interval per measure are in the module docstring of
    :mod:`studyval.analysis.calibration`.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Observed class labels (two classes, both present).
    prob : array-like of float, shape (n,)
        Predicted probability of the **positive** class, strictly between 0
        and 1 (higher = more likely positive). Never clipped.
    positive : label
        The positive class in ``y_true``; required, never inferred.
    alpha : float, default 0.05
        Intervals have level :math:`1 - \alpha`.
    clusters : array-like, shape (n,), optional
        Patient id of every row when a patient contributes several rows. Then
        every interval comes from the cluster (patient) bootstrap, which
        needs ``n_resamples >= 2``.
    n_resamples : int, default 1000
        Bootstrap resamples; 0 gives point estimates with Wald intervals only
        (no interval for scaled Brier and the E statistics, no band).
    seed : int or None
        Seed of the bootstrap (required when ``n_resamples > 0``).
    ci_method : {"bca", "percentile"}, default "bca"
        Bootstrap interval. Each resample runs the lowess once (about
        :math:`150 \times n` operations: roughly 1 ms at n = 300, 20-40 ms at
        n = 5000); BCa adds one run per patient (the jackknife), so for
        thousands of patients ``"percentile"`` is much faster.
    grid : array-like, optional
        Predicted probabilities at which the curve and its band are reported;
        strictly increasing, within the range of ``prob``. Default: 100 equally
        spaced points from the 1st to the 99th percentile of ``prob`` (the
        band is unreliable in the sparse tails). A resample whose range does
        not cover a grid point contributes its curve's end value there
        (``approx(..., rule = 2)``).

    Returns
    -------
    CalibrationResult

    Raises
    ------
    studyval.errors.StudyvalError
        Bad labels, probabilities (NaN, outside [0, 1], exactly 0 or 1, with the
        first position), ``alpha``, ``ci_method``, ``n_resamples``, ``seed``,
        ``clusters`` or ``grid``; ``clusters`` with ``n_resamples = 0``.
    studyval.errors.EstimationError
        One class only; all predictions equal (the slope is not identifiable:
        :math:`\operatorname{logit}(p)` has no variance); complete or
        quasi-complete separation (Albert & Anderson 1984, Biometrika 71:1-10,
        doi:10.1093/biomet/71.1.1): a threshold on ``prob`` puts every positive
        case on one side and every negative case on the other (ties allowed at
        the threshold), so the maximum-likelihood slope of
        :math:`\operatorname{logit} P(y=1) = a' + b\,\ell` is infinite; this
        is checked on the data before fitting, because the fit itself can stop
        at a huge slope and report convergence (R's ``glm`` does so, with or
        without "fitted probabilities numerically 0 or 1 occurred"); the
        recalibration does not converge, or its information matrix is
        numerically singular; an undefined bootstrap interval (see
        :func:`~studyval.analysis.resampling.bootstrap_many`).

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 0, 1, 0, 1, 1, 0, 1, 1, 0])
    >>> p = np.array([0.1, 0.3, 0.4, 0.2, 0.7, 0.9, 0.5, 0.6, 0.3, 0.6])
    >>> r = calibration(y, p, positive=1, n_resamples=0, seed=None)
    >>> round(r.brier.estimate, 4), r.slope.ci_method
    (0.186, 'wald')

    """
    is_pos = check_binary_outcome(y_true, positive)
    n = is_pos.size
    p = check_probabilities(prob, n)
    alpha = check_alpha(alpha)
    ci_method = check_option(ci_method, _CI_METHODS, "ci_method")
    n_resamples = _check_n_resamples(n_resamples)
    if clusters is not None and n_resamples == 0:
        raise StudyvalError(
            "clusters were given but n_resamples=0: with several rows per patient every "
            "interval comes from the cluster bootstrap; set n_resamples (e.g. 1000)"
        )
    if np.unique(p).size == 1:
        raise EstimationError(
            f"all {n} predicted probabilities equal {float(p[0]):.10g}: the calibration slope is not "
            "identifiable (logit(prob) has no variance) and the calibration curve is a single "
            "point; a model that predicts one value for everybody cannot be assessed for "
            "calibration beyond its mean (compare the prevalence with that value)"
        )
    grid = _check_grid(grid, p)
    y = is_pos.astype(np.float64)
    lp = logit(p)
    z = NormalDist().inv_cdf(1.0 - alpha / 2.0)
    level = 1.0 - alpha

    # --- logistic recalibration (unit weights), Wald from the information
    separation = _separation_message(p, lp, y)
    if separation is not None:
        raise EstimationError(separation)
    ones = np.ones((1, n))
    citl, ok_citl = _logistic_fit(lp, y, ones, slope=False)
    joint, ok_joint = _logistic_fit(lp, y, ones, slope=True)
    if not (ok_citl[0] and ok_joint[0]):
        raise EstimationError(
            "the logistic recalibration (maximum likelihood, Newton-Raphson) does not "
            f"converge in {_NEWTON_MAX_ITER} iterations although logit(prob) does not "
            "separate the two classes; no calibration intercept or slope is reported"
        )
    info_citl = _information(lp, citl[0], slope=False)[0, 0]
    info_joint = _information(lp, joint[0], slope=True)
    if not (
        info_citl > 0.0 and np.all(np.isfinite(info_joint)) and np.linalg.det(info_joint) > 0.0
    ):
        raise EstimationError(
            "the information matrix of the logistic recalibration is singular at its "
            "maximum-likelihood estimate (every fitted probability numerically 0 or 1: "
            "logit(prob) nearly separates the two classes), so the slope has no standard "
            "error; no calibration intercept or slope is reported"
        )
    se_citl = math.sqrt(1.0 / info_citl)
    cov_joint = np.linalg.inv(info_joint)
    se_joint = np.sqrt(np.diag(cov_joint))

    # --- Brier, Spiegelhalter
    sq = (p - y) ** 2
    brier = float(sq.mean())
    se_brier = float(sq.std(ddof=1) / math.sqrt(n))
    ybar = float(y.mean())
    scaled = 1.0 - brier / (ybar * (1.0 - ybar))
    num = float(np.sum((y - p) * (1.0 - 2.0 * p)))
    den = float(np.sqrt(np.sum((1.0 - 2.0 * p) ** 2 * p * (1.0 - p))))
    if den > 0:
        spi_z = num / den
        spi_p = 2.0 * NormalDist().cdf(-abs(spi_z))
    else:  # every prediction is 0.5 -- excluded above by the constant check
        spi_z = spi_p = math.nan

    # --- lowess curve and E statistics
    wald_cols = ("intercept_in_large", "slope", "intercept_joint", "brier")
    boot_cols = ("scaled_brier", "emax", "eavg", "e50", "e90")
    if clusters is not None:
        boot_cols = wald_cols + boot_cols
    curve_cols = tuple(f"curve_{j}" for j in range(grid.size))
    stat = _Statistic(y, p, grid, boot_cols + curve_cols)
    emax, eavg, e50, e90, observed = stat.lowess_part(np.ones(n))

    estimates = {
        "intercept_in_large": (float(citl[0, 0]), se_citl),
        "slope": (float(joint[0, 1]), float(se_joint[1])),
        "intercept_joint": (float(joint[0, 0]), float(se_joint[0])),
        "brier": (brier, se_brier),
        "scaled_brier": (scaled, math.nan),
        "emax": (emax, math.nan),
        "eavg": (eavg, math.nan),
        "e50": (e50, math.nan),
        "e90": (e90, math.nan),
        "spiegelhalter_z": (spi_z, math.nan),
        "spiegelhalter_p": (spi_p, math.nan),
    }

    boot = None
    n_clusters = None
    if n_resamples > 0:
        boot = bootstrap_many(
            stat,
            names=boot_cols + curve_cols,
            n_rows=n,
            clusters=clusters,
            n_resamples=n_resamples,
            seed=seed,  # type: ignore[arg-type]
            alpha=alpha,
            method=ci_method,
        )
        if clusters is not None:
            n_clusters = boot.n_clusters
    boot_label = ("cluster bootstrap " if clusters is not None else "bootstrap ") + ci_method

    measures = []
    for name in MEASURES:
        est, se = estimates[name]
        note = ""
        if name in ("spiegelhalter_z", "spiegelhalter_p"):
            lo = hi = math.nan
            method = "none"
            note = "test statistic, no interval"
            if clusters is not None:
                note += "; assumes independent rows, anti-conservative with clustered rows"
        elif name in boot_cols and boot is not None:
            r = boot[name]
            lo, hi, se, method = r.ci_low, r.ci_high, r.se, boot_label
            if r.n_failed:
                note = (
                    f"{r.n_failed} of {r.n_resamples} resamples undefined (e.g. separation or "
                    "one class) and left out"
                )
        elif name in boot_cols:
            lo = hi = math.nan
            method = "none"
            note = "no bootstrap (n_resamples=0)"
        else:
            lo, hi, method = est - z * se, est + z * se, "wald"
        measures.append(
            CalibrationMeasure(
                measure=name,
                estimate=est,
                se=se,
                ci_low=lo,
                ci_high=hi,
                ci_level=level,
                ci_method=method,
                note=note,
            )
        )

    if boot is not None:
        band_low = np.array([boot[c].ci_low for c in curve_cols])
        band_high = np.array([boot[c].ci_high for c in curve_cols])
    else:
        band_low = band_high = np.full(grid.size, np.nan)
    hist_pos = np.histogram(p[is_pos], bins=_HIST_EDGES)[0]
    hist_neg = np.histogram(p[~is_pos], bins=_HIST_EDGES)[0]
    return CalibrationResult(
        measures=tuple(measures),
        n=n,
        n_events=int(is_pos.sum()),
        n_clusters=n_clusters,
        positive=positive,
        alpha=alpha,
        ci_level=level,
        bootstrap_method=ci_method if n_resamples > 0 else "none",
        n_resamples=n_resamples,
        seed=None if seed is None else int(seed),
        smoother=SMOOTHER,
        curve_predicted=_readonly(grid),
        curve_observed=_readonly(observed),
        curve_ci_low=_readonly(band_low),
        curve_ci_high=_readonly(band_high),
        histogram_n_positive=_readonly(hist_pos),
        histogram_n_negative=_readonly(hist_neg),
    )


def curves_frame(results: Mapping[str, CalibrationResult]) -> pd.DataFrame:
    """Stack the curves of several models: ``model, predicted, observed, ci_low, ci_high, ci_level``.

    This is the table :func:`studyval.figures.calibration.calibration_figure` draws.
    """
    if not results:
        raise StudyvalError("results is empty: give at least one model")
    frames = []
    for model, res in results.items():
        f = res.curve_frame()
        f.insert(0, "model", str(model))
        frames.append(f)
    return pd.concat(frames, ignore_index=True)


def histograms_frame(results: Mapping[str, CalibrationResult], bins: int = 50) -> pd.DataFrame:
    """Stack the prediction histograms: ``model, bin_low, bin_high, n_positive, n_negative``."""
    if not results:
        raise StudyvalError("results is empty: give at least one model")
    frames = []
    for model, res in results.items():
        f = res.histogram_frame(bins)
        f.insert(0, "model", str(model))
        frames.append(f)
    return pd.concat(frames, ignore_index=True)
