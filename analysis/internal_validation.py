r"""Internal validation of a prediction model: Harrell's bootstrap optimism correction.

A model's performance on the data it was fitted on (the *apparent*
performance) is optimistic. Harrell's bootstrap estimate of the optimism
(Efron 1983; Harrell, Lee & Mark 1996; Steyerberg 2019, ch. 17) refits the
whole modelling procedure in each bootstrap resample and compares the refitted
model on the resample with the same model on the original data:

.. math::

    O_b = M(\hat f_b;\ D^*_b) - M(\hat f_b;\ D), \qquad
    \bar O = \frac{1}{B'} \sum_{b \in \text{succeeded}} O_b, \qquad
    M_{\text{corrected}} = M(\hat f;\ D) - \bar O,

where :math:`D` is the original data, :math:`D^*_b` the :math:`b`-th
resample, :math:`\hat f` the model fitted on :math:`D`, :math:`\hat f_b` the
model refitted on :math:`D^*_b`, :math:`M` a performance measure (higher or
lower = better, it does not matter: the optimism keeps its sign) and
:math:`B'` the number of resamples in which the fit and every measure
succeeded. This is what ``rms::validate`` computes (``index.orig`` =
apparent, ``training`` and ``test`` averaged over the resamples, ``optimism =
training - test``, ``index.corrected = index.orig - optimism``).

One mechanism, any model
------------------------
:func:`bootstrap_optimism` takes a :class:`RefitModel`: three callables,
``fit(frame) -> model``, ``predict(model, frame) -> prediction`` and
``measures(frame, prediction) -> {name: value}``. :func:`cox_refit_model` is
the ready-made configuration for a Cox model (Harrell's C, Somers' Dxy, the
calibration slope and, at a horizon, Uno's C, the time-dependent AUC, the
Brier score and the IPA); :func:`cox_optimism` runs it. A cause-specific Cox
model predicting cumulative incidence (competing risks) plugs in its own
``fit`` / ``predict`` / ``measures``.

Resamples
---------
Resample :math:`b` consists of the rows of :func:`resample_indices`: the
cluster (patient) bootstrap of :mod:`studyval.analysis.resampling`
(``numpy.random.Generator(numpy.random.PCG64(seed))``, ``G`` cluster numbers
drawn with replacement per resample, clusters numbered in sorted order of
their ids), each drawn cluster contributing all its rows, as many times as it
was drawn; rows are listed in ascending row order. Without a cluster column
every row is a cluster, and resample :math:`b` holds the rows
``rng.integers(0, n, size=(B, n))[b]`` (sorted). The indices are returned
with the result and can be given back (``indices=``), e.g. to run the same
resamples in R.

Failed resamples
----------------
A resample fails when the fit, the prediction or a measure raises
:class:`~studyval.errors.EstimationError` (e.g. no events in the resample, a
covariate constant in the resample, a Cox model that does not converge), or
when a measure is not finite. A failed resample counts in ``n_failed`` and in
``failures`` under its reason (the stage: ``fit``, ``predict``, ``training``
(measures on the resample) or ``test`` (on the original data), and the first
clause of the error message); it is left out of
the mean optimism of every measure, so that all measures average over the
same resamples (as ``rms::validate`` does with fits that fail). Any failure
is reported with a :class:`~studyval.errors.StatisticalWarning`; more than
``max_failed_fraction`` failures raise an
:class:`~studyval.errors.EstimationError`. Warnings raised by the fit (e.g.
``cox``'s non-convergence warning) are not muted.

References
----------
* Efron B (1983). Estimating the error rate of a prediction rule: improvement
  on cross-validation. J Am Stat Assoc 78:316-331. doi:10.1080/01621459.1983.10477973
* Harrell FE Jr, Lee KL, Mark DB (1996). Multivariable prognostic models:
  issues in developing models, evaluating assumptions and adequacy, and
  measuring and reducing errors. Stat Med 15:361-387.
  doi:10.1002/(SICI)1097-0258(19960229)15:4<361::AID-SIM168>3.0.CO;2-4
* Steyerberg EW (2019). *Clinical Prediction Models*, 2nd ed., ch. 17.
  Springer. doi:10.1007/978-3-030-16399-0
* Van Houwelingen JC, Le Cessie S (1990). Predictive value of statistical
  models. Stat Med 9:1303-1325. doi:10.1002/sim.4780091109 (the calibration
  slope).

Oracles: ``rms::validate`` (R 4.2, rms 6.x) on ``survival::lung``, exactly
with shared resample indices and within Monte Carlo error on its own
resamples; see ``tests/test_internal_validation.py``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from studyval.analysis import survival_validation as _sv
from studyval.analysis.concordance import _zero_se_warning
from studyval.analysis.cox import _cox_refit, _cox_slope, _Layouts
from studyval.analysis.resampling import resampling_weights
from studyval.analysis.survival import harrell_c, uno_c
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "DEFAULT_MAX_FAILED_FRACTION",
    "CoxPrediction",
    "OptimismResult",
    "RefitModel",
    "bootstrap_optimism",
    "cox_optimism",
    "cox_refit_model",
    "resample_indices",
]

#: Default share of failed resamples above which :func:`bootstrap_optimism` raises.
DEFAULT_MAX_FAILED_FRACTION = 0.1


# ------------------------------------------------------------------- resamples


def _check_count(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise StudyvalError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if int(value) < minimum:
        raise StudyvalError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def resample_indices(
    *,
    n_rows: int | None = None,
    clusters: Any = None,
    n_resamples: int,
    seed: int,
) -> tuple[np.ndarray, ...]:
    r"""Row indices of ``n_resamples`` cluster-bootstrap resamples (PCG64, seeded).

    The resamples of :func:`studyval.analysis.resampling.resampling_weights`
    (the project's one bootstrap engine) written as row positions: resample
    :math:`b` lists row :math:`i` :math:`w_{bi}` times, where :math:`w_{bi}`
    is the number of times row :math:`i`'s cluster was drawn, in ascending
    row order. With ``clusters=None`` this is the ordinary bootstrap:
    resample :math:`b` is ``numpy.sort(rng.integers(0, n, size=(B, n))[b])``
    with ``rng = numpy.random.Generator(numpy.random.PCG64(seed))``.

    Parameters
    ----------
    n_rows : int, optional
        Number of rows; required when ``clusters`` is None.
    clusters : array-like, shape (n,), optional
        Cluster (patient) id of every row; any sortable ids, none missing.
    n_resamples : int
        Number of resamples :math:`B \ge 1`.
    seed : int
        Seed of the PCG64 generator (required; no global random state).

    Returns
    -------
    tuple of numpy.ndarray of int64
        One read-only array of 0-based row positions per resample (add 1 for R).

    Raises
    ------
    studyval.errors.StudyvalError
        Bad ``clusters``, ``n_rows``, ``n_resamples`` or ``seed``.

    Examples
    --------
    >>> idx = resample_indices(n_rows=5, n_resamples=2, seed=1)
    >>> [len(i) for i in idx]
    [5, 5]

    """
    if clusters is None and n_rows is None:
        raise StudyvalError("give n_rows (ordinary bootstrap) or clusters (cluster bootstrap)")
    if clusters is not None and n_rows is not None and len(np.asarray(clusters)) != n_rows:
        raise StudyvalError(
            f"clusters has {len(np.asarray(clusters))} values but n_rows is {n_rows}"
        )
    out: list[np.ndarray] = []
    for w in resampling_weights(clusters, n_resamples=n_resamples, seed=seed, n_rows=n_rows):
        counts = w.astype(np.int64)
        rows = np.arange(counts.shape[1], dtype=np.int64)
        for row in counts:
            idx = np.repeat(rows, row)
            idx.setflags(write=False)
            out.append(idx)
    return tuple(out)


def _check_indices(indices: Any, n: int) -> tuple[np.ndarray, ...]:
    if isinstance(indices, np.ndarray) and indices.ndim == 2:
        indices = list(indices)
    if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence):
        raise StudyvalError(
            "indices must be a sequence of integer arrays (0-based row positions, one array "
            f"per resample), got {type(indices).__name__}"
        )
    if len(indices) < 1:
        raise StudyvalError("indices holds no resample")
    out = []
    for b, raw in enumerate(indices):
        arr = np.asarray(raw)
        if arr.ndim != 1 or arr.size == 0:
            raise StudyvalError(
                f"indices[{b}] must be a non-empty one-dimensional array, got shape {arr.shape}"
            )
        if arr.dtype.kind not in "iu":
            raise StudyvalError(
                f"indices[{b}] must hold integer row positions, got dtype {arr.dtype}"
            )
        if arr.min() < 0 or arr.max() >= n:
            raise StudyvalError(
                f"indices[{b}] has row positions outside 0..{n - 1} (min {arr.min()}, max "
                f"{arr.max()}); indices are 0-based positions of the data's rows"
            )
        idx = arr.astype(np.int64)
        idx.setflags(write=False)
        out.append(idx)
    return tuple(out)


# ------------------------------------------------------------------- the model


@dataclasses.dataclass(frozen=True)
class RefitModel:
    """A modelling procedure to refit in every resample, and how to measure it.

    Attributes
    ----------
    fit : callable
        ``fit(frame) -> model``: fits the model on a data frame (the original
        data or a resample, index reset to 0..n-1). Raise
        :class:`~studyval.errors.EstimationError` when the model cannot be
        fitted (the resample is then counted as failed).
    predict : callable
        ``predict(model, frame) -> prediction``: predictions of a fitted model
        for the rows of ``frame`` (any object ``measures`` understands, e.g. an
        array of risks).
    measures : callable
        ``measures(frame, prediction) -> {name: value}``: the performance
        measures of the predictions on ``frame``, finite floats, the same
        names every time. Raise :class:`~studyval.errors.EstimationError` when
        a measure cannot be computed.
    description : str
        One line naming the model and the measures, copied into the result.

    """

    fit: Callable[[pd.DataFrame], Any]
    predict: Callable[[Any, pd.DataFrame], Any]
    measures: Callable[[pd.DataFrame, Any], Mapping[str, float]]
    description: str = ""


class CoxPrediction(NamedTuple):
    r"""Predictions of a Cox model for the rows of a frame (:func:`cox_refit_model`).

    Attributes
    ----------
    lp : numpy.ndarray
        Linear predictor :math:`x^\top\hat\beta` (uncentred; risk, higher = worse).
    risk_at_horizon : numpy.ndarray or None
        Predicted probability of the event by the horizon, ``1 - S(horizon | x)``;
        None without a horizon.

    """

    lp: np.ndarray
    risk_at_horizon: np.ndarray | None


def cox_refit_model(
    *,
    duration: str,
    event: str,
    covariates: Sequence[str],
    horizon: float | None = None,
    event_codes: str | None = None,
    cause: int = 1,
    ties: str = "efron",
    strata: str | None = None,
) -> RefitModel:
    r"""The ready-made :class:`RefitModel` of a Cox model and its performance measures.

    ``fit`` fits the model as :func:`studyval.analysis.survival.cox` does (a fit
    that does not converge raises :class:`~studyval.errors.EstimationError`,
    after ``cox``'s own warning) and returns what the predictions need: the
    coefficients with ``CoxResult``'s ``predict_risk`` and ``predict_risk_at``
    (see Notes), ``predict`` returns a :class:`CoxPrediction`, and
    ``measures`` gives, for predictions on a frame with follow-up :math:`T`,
    event :math:`\delta` and linear predictor :math:`\eta`:

    * ``harrell_c``: Harrell's C of :math:`\eta` (within strata for a
      stratified model; :func:`~studyval.analysis.survival.harrell_c`);
    * ``somers_dxy``: Somers' :math:`D_{xy} = 2C - 1` (``rms``'s ``Dxy``);
    * ``calibration_slope``: :math:`\hat\gamma` of the Cox model
      :math:`h(t) = h_0(t)\exp(\gamma\eta)` refitted on the frame (van
      Houwelingen & Le Cessie 1990, doi:10.1002/sim.4780091109; ``rms``'s
      ``Slope``); 1 on the data the model was fitted on;

    and, with a ``horizon`` :math:`\tau`:

    * ``uno_c``: Uno's C of :math:`\eta` truncated at :math:`\tau`
      (:func:`~studyval.analysis.survival.uno_c`);
    * ``auc_horizon``: the time-dependent AUC at :math:`\tau` of the predicted
      risk :math:`1 - \hat S(\tau \mid x)`
      (:func:`~studyval.analysis.survival_validation.time_dependent_auc`; with
      ``event_codes``, Blanche's definition 2 for ``cause``: subjects with
      another cause by :math:`\tau` are controls);
    * ``brier``: the IPCW Brier score at :math:`\tau` of the predicted risk,
      and ``ipa``, the index of prediction accuracy
      (:func:`~studyval.analysis.survival_validation.brier`; only the point
      estimates are used, so the censoring term of their SE is skipped).

    Parameters
    ----------
    duration, event : str
        Columns of follow-up time and event (1 = event, 0 = censored) used to
        fit the model and for every measure but ``auc_horizon`` with
        ``event_codes``.
    covariates : sequence of str
        Numeric covariate columns.
    horizon : float, optional
        Prediction horizon for ``uno_c``, ``auc_horizon``, ``brier`` and ``ipa``.
    event_codes : str, optional
        Column of competing-risk codes (0 = censored, 1..K causes) for the
        time-dependent AUC; default: the ``event`` column.
    cause : int, default 1
        Cause of interest in ``event_codes``.
    ties : {"efron", "breslow"}, default "efron"
        Tie handling of the Cox fits.
    strata : str, optional
        Stratifying column of the Cox model (the concordance and the
        calibration-slope model are then stratified too).

    Returns
    -------
    RefitModel

    Raises
    ------
    studyval.errors.StudyvalError
        ``covariates`` empty, ``event_codes`` without a horizon, a bad horizon.

    Notes
    -----
    The numbers are those of the plain composition of ``cox``, ``harrell_c`` and the
    calibration-slope refit, bit for bit, and a resample fails or warns exactly when that
    composition would (``tests/test_internal_validation.py``), with less work per resample:
    the refit skips ``cox``'s summary table and global tests; Harrell's C of the refit on its
    own resample, which ``cox`` computes, is not computed again for the training measures;
    the fits of one outcome (a refit and its calibration-slope model; the slope models on the
    original data) share their sort order and risk sets.

    """
    covs = [str(c) for c in covariates] if not isinstance(covariates, str) else []
    if not covs:
        raise StudyvalError(
            f"covariates must be a non-empty list of column names, got {covariates!r}"
        )
    h: float | None = None
    if horizon is not None:
        h = float(horizon)
        if not (math.isfinite(h) and h > 0):
            raise StudyvalError(f"horizon must be finite and > 0, got {horizon!r}")
    elif event_codes is not None:
        raise StudyvalError("event_codes is used only for the AUC at a horizon; give horizon")
    codes_col = event if event_codes is None else event_codes
    auc_cause = None if event_codes is None else int(cause)
    strata_cols = None if strata is None else str(strata)
    # risk-set layouts shared by the fits of one outcome: a refit and the calibration-slope
    # model on its resample, the slope models on the original data (same numbers, less work)
    layouts = _Layouts()
    last_fit: list[Any] = []  # the last model fitted: its Harrell's C on its own data

    def fit(frame: pd.DataFrame) -> Any:
        # cox's fit without its summary and tests (what predict uses, bit for bit)
        model = _cox_refit(
            frame,
            duration=duration,
            event=event,
            covariates=covs,
            ties=ties,
            strata=strata_cols,
            baseline=h is not None,
            layouts=layouts,
        )
        last_fit[:] = [model]
        if not model.converged:
            raise EstimationError(
                "the Cox model did not converge (iteration limit or a coefficient diverging)"
            )
        return model

    def predict(model: Any, frame: pd.DataFrame) -> CoxPrediction:
        lp, risk = model.predict_lp_and_risk_at(frame, h)
        return CoxPrediction(lp=lp, risk_at_horizon=risk)

    def measures(frame: pd.DataFrame, prediction: CoxPrediction) -> dict[str, float]:
        t = frame[duration].to_numpy(np.float64)
        e = frame[event].to_numpy()
        lp = prediction.lp
        st = None if strata_cols is None else frame[strata_cols].to_numpy()
        # on the data the model was fitted on, the fit has computed this C already
        conc = last_fit[0].concordance_if_same(t, e, lp, st) if last_fit else None
        if conc is None:
            conc = harrell_c(t, e, lp, strata=st)
        elif conc.se == 0.0:
            _zero_se_warning("Harrell", stacklevel=2)  # as harrell_c warns
        c = conc.estimate
        slope, converged = _cox_slope(t, e, lp - lp.mean(), strata=st, ties=ties, layouts=layouts)
        if not converged:
            raise EstimationError("the calibration-slope model did not converge")
        out = {
            "harrell_c": c,
            "somers_dxy": 2.0 * c - 1.0,
            "calibration_slope": slope,
        }
        if h is not None:
            risk = prediction.risk_at_horizon
            out["uno_c"] = uno_c(t, e, lp, tau=h).estimate
            out["auc_horizon"] = _sv.time_dependent_auc(
                t, frame[codes_col].to_numpy(), risk, horizon=h, cause=auc_cause
            ).estimate
            b = _sv.brier(t, e, risk, horizon=h, conservative=True)
            out["brier"] = b.estimate
            out["ipa"] = b.ipa
        return out

    text = f"Cox model ({ties} ties) on {', '.join(covs)}" + (
        f", stratified by {strata_cols}" if strata_cols else ""
    )
    if h is not None:
        text += f"; horizon {h:g}"
    return RefitModel(fit=fit, predict=predict, measures=measures, description=text)


# ------------------------------------------------------------------- the result


@dataclasses.dataclass(frozen=True, eq=False)
class OptimismResult(Result):
    r"""Harrell's bootstrap optimism correction of several performance measures.

    For measure :math:`M` with apparent value :math:`A = M(\hat f; D)`, per
    resample optimism :math:`O_b = M(\hat f_b; D^*_b) - M(\hat f_b; D)` and
    :math:`B'` succeeded resamples (module docstring):

    * ``optimism`` :math:`\bar O = \sum_b O_b / B'` and ``corrected``
      :math:`A - \bar O`;
    * ``training`` and ``test``: the means of :math:`M(\hat f_b; D^*_b)` and
      :math:`M(\hat f_b; D)` (``rms::validate``'s columns of those names);
    * ``optimism_sd``: the standard deviation of :math:`O_b` (divisor
      :math:`B' - 1`), and ``optimism_mc_se`` :math:`= \text{sd}/\sqrt{B'}`,
      the Monte Carlo standard error of :math:`\bar O` (and of ``corrected``)
      due to the finite number of resamples. It is not a standard error of
      the corrected performance.

    Arrays are in the order of ``measures``; :meth:`to_frame` gives one row
    per measure.

    Attributes
    ----------
    measures : tuple of str
        Measure names.
    apparent, training, test, optimism, corrected : numpy.ndarray
        One value per measure (read-only).
    optimism_sd, optimism_mc_se : numpy.ndarray
        Per measure; NaN when fewer than 2 resamples succeeded.
    n_resamples : int
        Resamples drawn (or given), :math:`B`.
    n_succeeded : int
        Resamples used, :math:`B'`.
    n_failed : int
        Resamples left out, :math:`B - B'`.
    failures : tuple of (str, int)
        Count of failed resamples per reason (``"stage: first clause of the
        message"``), most frequent first; empty if none failed.
    max_failed_fraction : float
        The share of failures above which the function would have raised.
    n_rows : int
        Rows of the data.
    n_clusters : int or None
        Clusters (patients) resampled; ``n_rows`` without a cluster column;
        None when ``indices`` were given (the caller drew the resamples).
    seed : int or None
        Seed of the PCG64 generator; None when ``indices`` were given.
    model : str
        The :class:`RefitModel`'s description.
    training_replicates, test_replicates : numpy.ndarray, shape (B, k)
        :math:`M(\hat f_b; D^*_b)` and :math:`M(\hat f_b; D)` per resample and
        measure, NaN rows for failed resamples; read-only, not in :meth:`to_frame`.
    indices : tuple of numpy.ndarray
        The resamples (0-based row positions); not in :meth:`to_frame`.

    """

    measures: tuple[str, ...]
    apparent: np.ndarray = dataclasses.field(repr=False)
    training: np.ndarray = dataclasses.field(repr=False)
    test: np.ndarray = dataclasses.field(repr=False)
    optimism: np.ndarray = dataclasses.field(repr=False)
    corrected: np.ndarray = dataclasses.field(repr=False)
    optimism_sd: np.ndarray = dataclasses.field(repr=False)
    optimism_mc_se: np.ndarray = dataclasses.field(repr=False)
    n_resamples: int
    n_succeeded: int
    n_failed: int
    failures: tuple[tuple[str, int], ...]
    max_failed_fraction: float
    n_rows: int
    n_clusters: int | None
    seed: int | None
    model: str
    training_replicates: np.ndarray = dataclasses.field(repr=False)
    test_replicates: np.ndarray = dataclasses.field(repr=False)
    indices: tuple[np.ndarray, ...] = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per measure.

        Columns ``measure, apparent, training, test, optimism, corrected,
        optimism_sd, optimism_mc_se, n_resamples, n_succeeded, n_failed,
        failures`` (reasons as ``"reason: count"`` joined by ``"; "``),
        ``n_rows, n_clusters, seed, model``.
        """
        k = len(self.measures)
        return pd.DataFrame(
            {
                "measure": list(self.measures),
                "apparent": self.apparent,
                "training": self.training,
                "test": self.test,
                "optimism": self.optimism,
                "corrected": self.corrected,
                "optimism_sd": self.optimism_sd,
                "optimism_mc_se": self.optimism_mc_se,
                "n_resamples": [self.n_resamples] * k,
                "n_succeeded": [self.n_succeeded] * k,
                "n_failed": [self.n_failed] * k,
                "failures": ["; ".join(f"{r}: {c}" for r, c in self.failures)] * k,
                "n_rows": [self.n_rows] * k,
                "n_clusters": [self.n_clusters] * k,
                "seed": [self.seed] * k,
                "model": [self.model] * k,
            }
        )

    def __getitem__(self, measure: str) -> dict[str, float]:
        """``result["harrell_c"]``: apparent, training, test, optimism, corrected of one measure."""
        if measure not in self.measures:
            raise KeyError(f"no measure {measure!r}; measures: {', '.join(self.measures)}")
        j = self.measures.index(measure)
        return {
            name: float(getattr(self, name)[j])
            for name in ("apparent", "training", "test", "optimism", "corrected")
        }


# ------------------------------------------------------------------- the engine


def _reason(stage: str, exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for sep in (":", ";", "\n"):
        text = text.split(sep)[0]
    return f"{stage}: {text.strip()[:120]}"


def _as_measures(values: Any, stage: str, names: tuple[str, ...] | None) -> dict[str, float]:
    if not isinstance(values, Mapping) or not values:
        raise StudyvalError(
            f"measures must return a non-empty mapping of measure name to value ({stage}), "
            f"got {type(values).__name__}"
        )
    try:
        out = {str(k): float(v) for k, v in values.items()}
    except (TypeError, ValueError) as exc:
        raise StudyvalError(
            f"measures must return numbers ({stage}), got {dict(values)!r}"
        ) from exc
    if names is not None and tuple(out) != names:
        raise StudyvalError(
            f"measures returned {tuple(out)!r} ({stage}) but {names!r} on the original data; "
            "it must return the same names in the same order every time"
        )
    return out


class _Failed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _evaluate(
    model: RefitModel, frame: pd.DataFrame, fitted: Any, stage: str, names: tuple[str, ...]
) -> np.ndarray:
    try:
        prediction = model.predict(fitted, frame)
    except EstimationError as exc:
        raise _Failed(_reason("predict", exc)) from exc
    try:
        values = model.measures(frame, prediction)
    except EstimationError as exc:
        raise _Failed(_reason(stage, exc)) from exc
    row = np.array(list(_as_measures(values, stage, names).values()))
    bad = ~np.isfinite(row)
    if bad.any():
        j = int(np.flatnonzero(bad)[0])
        raise _Failed(f"{stage}: {names[j]} is not finite ({row[j]})")
    return row


def bootstrap_optimism(
    data: pd.DataFrame,
    model: RefitModel,
    *,
    n_resamples: int | None = None,
    seed: int | None = None,
    cluster: str | None = None,
    indices: Sequence[Any] | None = None,
    max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION,
    progress: Callable[[int, int], None] | None = None,
) -> OptimismResult:
    r"""Harrell's bootstrap optimism-corrected performance of a refitted model.

    Fits ``model`` on ``data`` (apparent performance), then in each resample
    refits it and measures it on the resample (training) and on ``data``
    (test); optimism = training - test, corrected = apparent - mean optimism
    (Harrell, Lee & Mark 1996, doi:10.1002/(SICI)1097-0258(19960229)15:4<361::AID-SIM168>3.0.CO;2-4;
    Efron 1983, doi:10.1080/01621459.1983.10477973). See the module docstring
    for the resamples and the handling of failures, and
    :class:`OptimismResult` for the formulas.

    Parameters
    ----------
    data : pandas.DataFrame
        The development data, one row per subject (or per unit of a cluster).
    model : RefitModel
        ``fit``, ``predict`` and ``measures`` (e.g. :func:`cox_refit_model`).
    n_resamples : int
        Number of bootstrap resamples :math:`B \ge 1` (Harrell's ``B``; 200 to
        2000 are usual; the Monte Carlo SE in the result shows whether it is
        enough). Required unless ``indices`` are given.
    seed : int
        Seed of the PCG64 generator; required unless ``indices`` are given.
    cluster : str, optional
        Column of cluster (patient) ids: whole clusters are resampled
        (:func:`resample_indices`). Default: each row is resampled alone.
    indices : sequence of array-like of int, optional
        Resamples to use instead of drawing them: one array of 0-based row
        positions per resample (e.g. the ``indices`` of an earlier result, or
        resamples shared with R). Then ``n_resamples``, ``seed`` and
        ``cluster`` must not be given.
    max_failed_fraction : float, default 0.1
        Raise if more than this share of the resamples fail; in [0, 1).
    progress : callable, optional
        ``progress(done, total)`` is called after every resample (for a
        progress bar); it must not change anything.

    Returns
    -------
    OptimismResult

    Raises
    ------
    studyval.errors.StudyvalError
        ``data`` not a DataFrame; missing or conflicting ``n_resamples`` /
        ``seed`` / ``indices`` / ``cluster``; bad indices; ``measures``
        returning something other than the same names of numbers each time.
    studyval.errors.EstimationError
        The model cannot be fitted or measured on ``data``; more than
        ``max_failed_fraction`` of the resamples failed, or none succeeded.

    Warns
    -----
    StatisticalWarning
        When any resample failed, with the count per reason.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> d = pd.DataFrame({"x": rng.normal(size=60)})
    >>> d["time"] = rng.exponential(np.exp(-d["x"])); d["status"] = 1
    >>> r = cox_optimism(d, duration="time", event="status", covariates=["x"],
    ...                  n_resamples=5, seed=1)
    >>> r.measures
    ('harrell_c', 'somers_dxy', 'calibration_slope')

    """
    if not isinstance(data, pd.DataFrame):
        raise StudyvalError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if not isinstance(model, RefitModel):
        raise StudyvalError(
            f"model must be a RefitModel (fit, predict, measures), got {type(model).__name__}"
        )
    n = len(data)
    if n < 2:
        raise StudyvalError(f"data has {n} row(s); the bootstrap needs at least 2")
    frac = float(max_failed_fraction)
    if not 0.0 <= frac < 1.0:
        raise StudyvalError(f"max_failed_fraction must be in [0, 1), got {max_failed_fraction!r}")
    clusters = None
    if cluster is not None:
        if cluster not in data.columns:
            raise StudyvalError(f"cluster column {cluster!r} is not in the data")
        clusters = data[cluster].to_numpy()
    if indices is not None:
        if n_resamples is not None or seed is not None or cluster is not None:
            raise StudyvalError(
                "give either indices or n_resamples, seed (and cluster), not both: the "
                "indices already are the resamples"
            )
        idx = _check_indices(indices, n)
        n_clusters = None  # unknown: the caller drew the resamples
        used_seed = None
    else:
        if n_resamples is None or seed is None:
            raise StudyvalError(
                "n_resamples and seed are required (or give indices); there is no default "
                "number of resamples and no global random state"
            )
        n_res = _check_count(n_resamples, "n_resamples", 1)
        used_seed = _check_count(seed, "seed", 0)
        idx = resample_indices(
            n_rows=n if clusters is None else None,
            clusters=clusters,
            n_resamples=n_res,
            seed=used_seed,
        )
        n_clusters = n if clusters is None else int(pd.unique(clusters).size)

    original = data.reset_index(drop=True)
    fitted = model.fit(original)
    apparent_values = _as_measures(
        model.measures(original, model.predict(fitted, original)), "apparent", None
    )
    names = tuple(apparent_values)
    apparent = np.array(list(apparent_values.values()))
    if not np.all(np.isfinite(apparent)):
        j = int(np.flatnonzero(~np.isfinite(apparent))[0])
        raise EstimationError(
            f"the measure {names[j]!r} is not finite on the original data ({apparent[j]}); "
            "nothing to correct"
        )

    b_total = len(idx)
    k = len(names)
    train = np.full((b_total, k), np.nan)
    test = np.full((b_total, k), np.nan)
    reasons: dict[str, int] = {}
    for b, rows in enumerate(idx):
        frame = original.iloc[rows].reset_index(drop=True)
        try:
            try:
                fit_b = model.fit(frame)
            except EstimationError as exc:
                raise _Failed(_reason("fit", exc)) from exc
            train_b = _evaluate(model, frame, fit_b, "training", names)
            test_b = _evaluate(model, original, fit_b, "test", names)
        except _Failed as failure:
            reasons[failure.reason] = reasons.get(failure.reason, 0) + 1
        else:
            train[b] = train_b
            test[b] = test_b
        if progress is not None:
            progress(b + 1, b_total)

    ok = np.all(np.isfinite(train), axis=1)
    n_ok = int(ok.sum())
    n_failed = b_total - n_ok
    failures = tuple(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    listing = "; ".join(f"{r} ({c})" for r, c in failures)
    if n_ok == 0 or n_failed > frac * b_total:
        raise EstimationError(
            f"{n_failed} of {b_total} bootstrap resamples failed (more than "
            f"max_failed_fraction = {frac:g}): {listing}"
        )
    if n_failed:
        warnings.warn(
            f"bootstrap optimism: {n_failed} of {b_total} resamples failed and are left out of "
            f"the mean optimism ({100.0 * n_failed / b_total:.1f} %): {listing}",
            StatisticalWarning,
            stacklevel=2,
        )
    opt_b = train[ok] - test[ok]
    optimism = opt_b.mean(axis=0)
    if n_ok >= 2:
        sd = opt_b.std(axis=0, ddof=1)
        mc_se = sd / math.sqrt(n_ok)
    else:
        sd = mc_se = np.full(k, np.nan)

    def ro(a: np.ndarray) -> np.ndarray:
        a = np.array(a, dtype=np.float64)
        a.setflags(write=False)
        return a

    return OptimismResult(
        measures=names,
        apparent=ro(apparent),
        training=ro(train[ok].mean(axis=0)),
        test=ro(test[ok].mean(axis=0)),
        optimism=ro(optimism),
        corrected=ro(apparent - optimism),
        optimism_sd=ro(sd),
        optimism_mc_se=ro(mc_se),
        n_resamples=b_total,
        n_succeeded=n_ok,
        n_failed=n_failed,
        failures=failures,
        max_failed_fraction=frac,
        n_rows=n,
        n_clusters=n_clusters,
        seed=used_seed,
        model=model.description,
        training_replicates=ro(train),
        test_replicates=ro(test),
        indices=idx,
    )


def cox_optimism(
    data: pd.DataFrame,
    *,
    duration: str,
    event: str,
    covariates: Sequence[str],
    horizon: float | None = None,
    event_codes: str | None = None,
    cause: int = 1,
    ties: str = "efron",
    strata: str | None = None,
    n_resamples: int | None = None,
    seed: int | None = None,
    cluster: str | None = None,
    indices: Sequence[Any] | None = None,
    max_failed_fraction: float = DEFAULT_MAX_FAILED_FRACTION,
    progress: Callable[[int, int], None] | None = None,
) -> OptimismResult:
    r"""Harrell's optimism-corrected performance of a Cox model (``rms::validate`` for ``cph``).

    :func:`bootstrap_optimism` with :func:`cox_refit_model`: the Cox model is
    refitted in every resample; measures ``harrell_c``, ``somers_dxy``
    (:math:`2C - 1`), ``calibration_slope`` and, with ``horizon``, ``uno_c``,
    ``auc_horizon``, ``brier`` and ``ipa``. Harrell et al. 1996,
    doi:10.1002/(SICI)1097-0258(19960229)15:4<361::AID-SIM168>3.0.CO;2-4.

    Parameters
    ----------
    data : pandas.DataFrame
        Development data.
    duration, event, covariates, horizon, event_codes, cause, ties, strata
        As in :func:`cox_refit_model`.
    n_resamples, seed, cluster, indices, max_failed_fraction, progress
        As in :func:`bootstrap_optimism`.

    Returns
    -------
    OptimismResult

    Raises
    ------
    studyval.errors.StudyvalError
        As :func:`cox_refit_model` and :func:`bootstrap_optimism`.
    studyval.errors.EstimationError
        As :func:`bootstrap_optimism`.

    Warns
    -----
    StatisticalWarning
        Failed resamples (with the count per reason); ``cox``'s own warnings.

    Notes
    -----
    ``rms::validate(cph(..., x = TRUE, y = TRUE), B = B, dxy = TRUE)`` reports
    ``Dxy`` and ``Slope`` with the same definitions; ``C = (Dxy + 1) / 2``.
    Three differences in detail, none of which moves the numbers beyond the
    Monte Carlo error (tested): rms refits with ``eps = 1e-4, iter.max = 10``
    (here the fits converge to 1e-12); rms sets the training slope to 1 by
    definition (here it is refitted, 1 to about 1e-12); for a model with
    strata rms computes ``Dxy`` from predicted survival at a time ``u``,
    here Harrell's C is computed within strata. rms draws with R's
    ``sample()``; to run R on the same resamples, export ``result.indices``
    (``tests/data/r/internal_validation_lung.R`` shows how).

    """
    refit = cox_refit_model(
        duration=duration,
        event=event,
        covariates=covariates,
        horizon=horizon,
        event_codes=event_codes,
        cause=cause,
        ties=ties,
        strata=strata,
    )
    return bootstrap_optimism(
        data,
        refit,
        n_resamples=n_resamples,
        seed=seed,
        cluster=cluster,
        indices=indices,
        max_failed_fraction=max_failed_fraction,
        progress=progress,
    )
