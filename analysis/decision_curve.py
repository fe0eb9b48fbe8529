r"""Decision curve analysis: net benefit of treating by predicted risk.

A patient is treated (e.g. referred for MRI, biopsied) when the model's
predicted probability of the positive class reaches the threshold
probability :math:`t`: **treat if** :math:`p_i \ge t` (as ``dcurves``).
The threshold expresses how a clinician weighs harms against benefits: at
:math:`t` a false positive costs :math:`t / (1 - t)` true positives. With
:math:`n` patients, :math:`\mathrm{TP}(t)` and :math:`\mathrm{FP}(t)` the
treated patients with and without the condition, and prevalence
:math:`\pi = n_1 / n`,

.. math::

    \mathrm{NB}(t) = \frac{\mathrm{TP}(t)}{n} - \frac{\mathrm{FP}(t)}{n}\,\frac{t}{1 - t}

(Vickers & Elkin 2006, Med Decis Making 26:565-574,
doi:10.1177/0272989X06295361; Vickers, van Calster & Steyerberg 2019, Diagn
Progn Res 3:18, doi:10.1186/s41512-019-0064-7). The reference strategies are
**treat all**, :math:`\mathrm{NB} = \pi - (1 - \pi)\, t / (1 - t)`, and
**treat none**, :math:`\mathrm{NB} = 0`. Also reported:

* standardized net benefit :math:`\mathrm{NB}(t) / \pi` (Kerr et al. 2016,
  Med Decis Making 36:1065-1079, doi:10.1177/0272989X16635390): the
  fraction of the maximum possible benefit (1 = a perfect test);
* net interventions avoided per 100 patients,
  :math:`100\,(\mathrm{NB}(t) - \mathrm{NB}_{\text{all}}(t)) \,(1 - t) / t`
  (``dcurves``' ``net_intervention_avoided`` with ``nper = 100``).

A model is useful at :math:`t` when its net benefit exceeds both reference
strategies. Higher net benefit is better. The values agree with the Python
package ``dcurves`` 1.1.7 (``dca``).

:func:`net_benefit_difference` adds what ``dcurves`` lacks: the difference in
net benefit between two models on the same patients at each threshold, with a
(patient-)cluster bootstrap interval from
:mod:`studyval.analysis.resampling`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis._checks import (
    check_alpha,
    check_binary_outcome,
    check_option,
    check_probabilities,
)
from studyval.analysis.resampling import bootstrap_many
from studyval.errors import StudyvalError
from studyval.results import Result

__all__ = [
    "DECISION_RULE",
    "DEFAULT_THRESHOLDS",
    "TREAT_ALL",
    "TREAT_NONE",
    "DecisionCurveResult",
    "NetBenefitDifference",
    "net_benefit",
    "net_benefit_difference",
    "threshold_grid",
]

TREAT_ALL = "treat all"
TREAT_NONE = "treat none"
DECISION_RULE = "treat if predicted probability >= threshold"

#: 0.01, 0.02, ..., 0.99 as correctly rounded decimals. ``np.arange(0.01, 1.0,
#: 0.01)`` gives the same 99 thresholds up to rounding (its 0.06 is
#: 0.060000000000000005, so a prediction of exactly 0.06 would not be treated
#: there); this is why the default is built as ``np.arange(1, 100) / 100``.
DEFAULT_THRESHOLDS = np.arange(1, 100) / 100
DEFAULT_THRESHOLDS.setflags(write=False)


def threshold_grid(start: float, stop: float, step: float) -> np.ndarray:
    r"""Threshold probabilities ``start, start + step, ..., stop`` as the decimals they name.

    The grid of a plan's decision curve (``threshold_from``, ``threshold_to``,
    ``threshold_step``), ``stop`` included: :math:`t_k = \operatorname{round}_{10}(\text{start} +
    k\,\text{step})` for :math:`k = 0, 1, \dots` while :math:`t_k < \text{stop} +
    \text{step}/2`. Rounding to 10 decimals removes the error that repeated
    addition leaves (``np.arange(0.05, 0.96, 0.01)[7]`` is 0.12000000000000001,
    ``seq(0.05, 0.95, by = 0.01)[8]`` in R likewise), so that every threshold is
    the float nearest its decimal and a prediction equal to a threshold is
    treated, as the decision rule says; the half step makes ``stop`` part of
    the grid whatever the rounding of the last addition. Where ``stop - start``
    is not a whole number of steps the grid ends at the last threshold below ``stop``.

    Parameters
    ----------
    start, stop : float
        First and last threshold, ``0 < start < stop < 1``.
    step : float
        Spacing, ``> 0``.

    Returns
    -------
    numpy.ndarray of float, read-only
        Strictly increasing thresholds in (0, 1), ready for :func:`net_benefit`.

    Raises
    ------
    StudyvalError
        ``start``, ``stop`` or ``step`` not finite, outside the ranges above.

    Examples
    --------
    >>> threshold_grid(0.05, 0.1, 0.01).tolist()
    [0.05, 0.06, 0.07, 0.08, 0.09, 0.1]

    """
    values = {"start": start, "stop": stop, "step": step}
    for name, v in values.items():
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
            raise StudyvalError(f"{name} must be a number, got {v!r}")
        if not np.isfinite(v):
            raise StudyvalError(f"{name} must be finite, got {v!r}")
    if not 0.0 < start < stop < 1.0:
        raise StudyvalError(
            f"threshold_grid needs 0 < start < stop < 1, got start={start!r}, stop={stop!r}"
        )
    if step <= 0.0:
        raise StudyvalError(f"step must be > 0, got {step!r}")
    grid = np.round(np.arange(start, stop + step / 2, step), 10)
    grid = grid[grid <= np.round(stop, 10)]  # a stop off the grid is not passed
    grid.setflags(write=False)
    return grid


_FRAME_COLUMNS = [
    "model",
    "threshold",
    "net_benefit",
    "standardized_net_benefit",
    "interventions_avoided_per_100",
    "tp",
    "fp",
    "n",
]


def _readonly(a: Any, dtype: Any = np.float64) -> np.ndarray:
    a = np.array(a, dtype=dtype)
    a.setflags(write=False)
    return a


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return bool(np.array_equal(x, y, equal_nan=True))
    return bool(x == y)


class _ValueEq:
    """Field-wise equality (arrays element-wise); unhashable."""

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(
            _same(getattr(self, f.name), getattr(other, f.name))
            for f in dataclasses.fields(self)  # type: ignore[arg-type]
        )

    __hash__ = None  # type: ignore[assignment]


# ------------------------------------------------------------------------ checks


def _check_thresholds(thresholds: Any) -> np.ndarray:
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim == 0:
        t = t[None]
    if t.ndim != 1 or t.size == 0:
        raise StudyvalError(f"thresholds must be a non-empty 1-D array, got shape {t.shape}")
    bad = ~np.isfinite(t) | (t <= 0.0) | (t >= 1.0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"thresholds must lie strictly between 0 and 1 (at t = 0 or 1 the harm-to-"
            f"benefit odds t/(1-t) is 0 or infinite); position {i} is {t[i]!r}"
        )
    if np.any(np.diff(t) <= 0.0):
        i = int(np.flatnonzero(np.diff(t) <= 0.0)[0]) + 1
        raise StudyvalError(
            f"thresholds must be strictly increasing (no duplicates); position {i} is "
            f"{t[i]!r} after {t[i - 1]!r}"
        )
    return t


def _odds(t: np.ndarray) -> np.ndarray:
    return t / (1.0 - t)


# ----------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class DecisionCurveResult(_ValueEq, Result):
    r"""Net benefit of models and of treat all / treat none over thresholds.

    Formulas in :mod:`studyval.analysis.decision_curve`. Arrays are
    read-only; :meth:`to_frame` is the tidy table.

    Attributes
    ----------
    models : tuple of str
        The models, in the order given, followed by ``"treat all"`` and
        ``"treat none"``.
    thresholds : numpy.ndarray, shape (T,)
        Threshold probabilities, increasing.
    tp, fp : numpy.ndarray of int, shape (len(models), T)
        Treated patients with / without the condition.
    net_benefit : numpy.ndarray, shape (len(models), T)
        Net benefit.
    n : int
        Patients (rows).
    n_events : int
        Rows of the positive class.
    prevalence : float
        ``n_events / n``.
    positive : label
        The positive class.
    decision_rule : str
        :data:`DECISION_RULE`.

    """

    models: tuple[str, ...]
    thresholds: np.ndarray = dataclasses.field(repr=False)
    tp: np.ndarray = dataclasses.field(repr=False)
    fp: np.ndarray = dataclasses.field(repr=False)
    net_benefit: np.ndarray = dataclasses.field(repr=False)
    n: int
    n_events: int
    prevalence: float
    positive: Any
    decision_rule: str = DECISION_RULE

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per model and threshold.

        Columns: ``model, threshold, net_benefit, standardized_net_benefit,
        interventions_avoided_per_100, tp, fp, n``; models in the order of
        :attr:`models`, thresholds increasing within a model.
        """
        k, nt = self.net_benefit.shape
        nb_all = self.net_benefit[self.models.index(TREAT_ALL)]
        avoided = 100.0 * (self.net_benefit - nb_all[None, :]) / _odds(self.thresholds)[None, :]
        frame = pd.DataFrame(
            {
                "model": np.repeat(np.array(self.models, dtype=object), nt),
                "threshold": np.tile(self.thresholds, k),
                "net_benefit": self.net_benefit.ravel(),
                "standardized_net_benefit": self.net_benefit.ravel() / self.prevalence,
                "interventions_avoided_per_100": avoided.ravel(),
                "tp": self.tp.ravel(),
                "fp": self.fp.ravel(),
                "n": self.n,
            },
            columns=_FRAME_COLUMNS,
        )
        return frame


@dataclasses.dataclass(frozen=True, eq=False)
class NetBenefitDifference(_ValueEq, Result):
    r"""Difference in net benefit between two models, per threshold, with intervals.

    :math:`\Delta(t) = \mathrm{NB}_a(t) - \mathrm{NB}_b(t)`; positive values
    favour model ``a``. Both models are evaluated on the same patients, and
    the bootstrap resamples patients, so the interval accounts for the
    pairing (and for clustering when ``clusters`` is given).

    Attributes
    ----------
    model_a, model_b : str
        Labels of the two models.
    thresholds : numpy.ndarray, shape (T,)
        Threshold probabilities.
    net_benefit_a, net_benefit_b : numpy.ndarray, shape (T,)
        Each model's net benefit.
    difference : numpy.ndarray, shape (T,)
        ``net_benefit_a - net_benefit_b``.
    ci_low, ci_high : numpy.ndarray, shape (T,)
        Bootstrap limits of the difference (pointwise, not simultaneous).
    se : numpy.ndarray, shape (T,)
        Bootstrap standard error of the difference.
    ci_level : float
        :math:`1 - \alpha`.
    ci_method : str
        ``"bootstrap percentile"``, ``"bootstrap bca"`` or the ``"cluster
        bootstrap ..."`` equivalents.
    n : int
        Rows.
    n_events : int
        Rows of the positive class.
    n_clusters : int
        Clusters (patients) resampled; ``n`` without clusters.
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Seed of the bootstrap.
    positive : label
        The positive class.
    decision_rule : str
        :data:`DECISION_RULE`.

    """

    model_a: str
    model_b: str
    thresholds: np.ndarray = dataclasses.field(repr=False)
    net_benefit_a: np.ndarray = dataclasses.field(repr=False)
    net_benefit_b: np.ndarray = dataclasses.field(repr=False)
    difference: np.ndarray = dataclasses.field(repr=False)
    ci_low: np.ndarray = dataclasses.field(repr=False)
    ci_high: np.ndarray = dataclasses.field(repr=False)
    se: np.ndarray = dataclasses.field(repr=False)
    ci_level: float
    ci_method: str
    n: int
    n_events: int
    n_clusters: int
    n_resamples: int
    seed: int
    positive: Any
    decision_rule: str = DECISION_RULE

    def to_frame(self) -> pd.DataFrame:
        """One row per threshold.

        Columns: ``model_a, model_b, threshold, net_benefit_a, net_benefit_b,
        difference, se, ci_low, ci_high, ci_level, ci_method``.
        """
        return pd.DataFrame(
            {
                "model_a": self.model_a,
                "model_b": self.model_b,
                "threshold": self.thresholds,
                "net_benefit_a": self.net_benefit_a,
                "net_benefit_b": self.net_benefit_b,
                "difference": self.difference,
                "se": self.se,
                "ci_low": self.ci_low,
                "ci_high": self.ci_high,
                "ci_level": self.ci_level,
                "ci_method": self.ci_method,
            }
        )


# --------------------------------------------------------------------- functions


def net_benefit(
    y_true: Any,
    probs: Mapping[str, Any],
    *,
    positive: Any,
    thresholds: Any = DEFAULT_THRESHOLDS,
) -> DecisionCurveResult:
    r"""Decision curves: net benefit of each model, treat all and treat none.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Observed class labels (both classes present).
    probs : mapping of str to array-like of float, shape (n,)
        Predicted probability of the **positive** class per model, in [0, 1]
        (0 and 1 allowed); higher = more likely positive. The names
        ``"treat all"`` and ``"treat none"`` are reserved.
    positive : label
        The positive class in ``y_true``; required, never inferred.
    thresholds : array-like of float, default 0.01, 0.02, ..., 0.99
        Threshold probabilities, strictly increasing, each strictly between 0
        and 1 (:data:`DEFAULT_THRESHOLDS`).

    Returns
    -------
    DecisionCurveResult
        ``.to_frame()`` is the tidy table.

    Raises
    ------
    studyval.errors.StudyvalError
        Bad labels; no models, a reserved or duplicate model name;
        probabilities NaN, outside [0, 1] or of the wrong length (with the
        first position); thresholds outside (0, 1), not increasing, or empty.
    studyval.errors.EstimationError
        One class only (the prevalence is 0 or 1).

    Examples
    --------
    >>> y = [1, 0, 1, 0, 0]
    >>> r = net_benefit(y, {"m": [0.9, 0.6, 0.4, 0.2, 0.1]}, positive=1, thresholds=[0.5])
    >>> r.to_frame()[["model", "net_benefit"]].round(12).to_dict("list")
    {'model': ['m', 'treat all', 'treat none'], 'net_benefit': [0.0, -0.2, 0.0]}

    """
    is_pos = check_binary_outcome(y_true, positive)
    n = is_pos.size
    t = _check_thresholds(thresholds)
    if not isinstance(probs, Mapping) or len(probs) == 0:
        raise StudyvalError("probs must be a non-empty mapping of model name to probabilities")
    names = [str(k) for k in probs]
    for name in names:
        if name in (TREAT_ALL, TREAT_NONE):
            raise StudyvalError(f"model name {name!r} is reserved for the reference strategy")
    if len(set(names)) != len(names):
        raise StudyvalError(f"model names must be distinct, got {names!r}")
    y = is_pos.astype(np.float64)
    n_events = int(is_pos.sum())
    tp_rows, fp_rows = [], []
    for name, prob in zip(names, probs.values(), strict=True):
        p = check_probabilities(prob, n, name=f"probs[{name!r}]", open_=False)
        treat = p[:, None] >= t[None, :]
        tp_rows.append(y @ treat)
        fp_rows.append((1.0 - y) @ treat)
    tp_rows.append(np.full(t.size, float(n_events)))
    fp_rows.append(np.full(t.size, float(n - n_events)))
    tp_rows.append(np.zeros(t.size))
    fp_rows.append(np.zeros(t.size))
    tp = np.vstack(tp_rows)
    fp = np.vstack(fp_rows)
    nb = tp / n - fp / n * _odds(t)[None, :]
    return DecisionCurveResult(
        models=(*names, TREAT_ALL, TREAT_NONE),
        thresholds=_readonly(t),
        tp=_readonly(tp, np.int64),
        fp=_readonly(fp, np.int64),
        net_benefit=_readonly(nb),
        n=n,
        n_events=n_events,
        prevalence=n_events / n,
        positive=positive,
    )


def net_benefit_difference(
    y_true: Any,
    prob_a: Any,
    prob_b: Any,
    *,
    positive: Any,
    thresholds: Any = DEFAULT_THRESHOLDS,
    clusters: Any = None,
    n_resamples: int = 1000,
    seed: int,
    alpha: float = 0.05,
    ci_method: str = "percentile",
    labels: tuple[str, str] = ("a", "b"),
) -> NetBenefitDifference:
    r"""Difference in net benefit between two models at each threshold, with bootstrap CIs.

    For resample weights :math:`w` (how often each patient is drawn),

    .. math::

        \Delta_w(t) = \frac{\sum_i w_i\, (d_{ai}(t) - d_{bi}(t))
                       \left(y_i - (1 - y_i)\frac{t}{1-t}\right)}{\sum_i w_i},
        \qquad d_{mi}(t) = [p_{mi} \ge t],

    which with unit weights is :math:`\mathrm{NB}_a(t) - \mathrm{NB}_b(t)`.
    All thresholds share the resamples
    (:func:`~studyval.analysis.resampling.bootstrap_many`); the intervals are
    pointwise.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Observed class labels (both classes present).
    prob_a, prob_b : array-like of float, shape (n,)
        Each model's predicted probability of the positive class, in [0, 1],
        for the same rows.
    positive : label
        The positive class; required.
    thresholds : array-like of float, default 0.01, ..., 0.99
        Strictly increasing, in (0, 1).
    clusters : array-like, shape (n,), optional
        Patient id per row; the bootstrap then resamples patients.
    n_resamples : int, default 1000
        Bootstrap resamples (>= 2).
    seed : int
        Seed of the bootstrap; required.
    alpha : float, default 0.05
        Intervals have level :math:`1 - \alpha`.
    ci_method : {"percentile", "bca"}, default "percentile"
        Percentile by default: :math:`\Delta(t)` is a step function of the
        data, and at thresholds where few patients change decision many
        jackknife values coincide, which makes the BCa acceleration erratic.
    labels : (str, str), default ("a", "b")
        Names of the two models in the result.

    Returns
    -------
    NetBenefitDifference

    Raises
    ------
    studyval.errors.StudyvalError
        As :func:`net_benefit`; bad ``clusters``, ``seed``, ``n_resamples``,
        ``alpha`` or ``ci_method``; labels not two distinct strings.
    studyval.errors.EstimationError
        One class only; fewer than 2 clusters.

    """
    is_pos = check_binary_outcome(y_true, positive)
    n = is_pos.size
    t = _check_thresholds(thresholds)
    alpha = check_alpha(alpha)
    ci_method = check_option(ci_method, ("percentile", "bca"), "ci_method")
    if (
        not isinstance(labels, (tuple, list))
        or len(labels) != 2
        or not all(isinstance(s, str) for s in labels)
        or labels[0] == labels[1]
    ):
        raise StudyvalError(f"labels must be two distinct strings, got {labels!r}")
    pa = check_probabilities(prob_a, n, name="prob_a", open_=False)
    pb = check_probabilities(prob_b, n, name="prob_b", open_=False)
    y = is_pos.astype(np.float64)
    odds = _odds(t)
    # Per-row contribution to n * NB at each threshold.
    gain = y[:, None] - (1.0 - y)[:, None] * odds[None, :]
    contrib_a = (pa[:, None] >= t[None, :]) * gain
    contrib_b = (pb[:, None] >= t[None, :]) * gain
    contrib = contrib_a - contrib_b

    def statistic(weights: np.ndarray) -> np.ndarray:
        return (weights @ contrib) / weights.sum(axis=1)[:, None]

    boot = bootstrap_many(
        statistic,
        names=[f"t={v!r}" for v in t.tolist()],
        n_rows=n,
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=ci_method,
    )
    label = ("cluster bootstrap " if clusters is not None else "bootstrap ") + ci_method
    return NetBenefitDifference(
        model_a=labels[0],
        model_b=labels[1],
        thresholds=_readonly(t),
        net_benefit_a=_readonly(contrib_a.sum(axis=0) / n),
        net_benefit_b=_readonly(contrib_b.sum(axis=0) / n),
        difference=_readonly([r.estimate for r in boot.results]),
        ci_low=_readonly([r.ci_low for r in boot.results]),
        ci_high=_readonly([r.ci_high for r in boot.results]),
        se=_readonly([r.se for r in boot.results]),
        ci_level=1.0 - alpha,
        ci_method=label,
        n=n,
        n_events=int(is_pos.sum()),
        n_clusters=boot.n_clusters,
        n_resamples=boot.n_resamples,
        seed=boot.seed,
        positive=positive,
    )
