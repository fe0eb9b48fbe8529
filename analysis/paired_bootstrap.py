r"""Paired bootstrap of the difference in a performance measure between two models.

Two models scored on the **same** cases (e.g. a model with and without an
imaging biomarker) are compared by the difference of a performance measure,

.. math::

    \hat\Delta = M(\text{risk}_a;\ D) - M(\text{risk}_b;\ D),

where :math:`M` is any measure computed from the cases (Harrell's C,
Uno's C, a time-dependent AUC, a Brier score). Its sampling distribution is
estimated by resampling the cases (patients) and recomputing both measures on
each resample (Efron & Tibshirani 1993, *An Introduction to the Bootstrap*,
Chapman & Hall, doi:10.1201/9780429246593; Davison & Hinkley 1997, §3.8,
doi:10.1017/CBO9780511802843), the models being held fixed. Because both
measures use the same resample, the replicates
:math:`\hat\Delta^*_b = M(\text{risk}_a; D^*_b) - M(\text{risk}_b; D^*_b)`
carry the correlation between the two models; the interval is the percentile
or BCa interval of :math:`\hat\Delta^*` computed by the project's bootstrap
engine (:func:`studyval.analysis.resampling.bootstrap_many`: cluster
resampling, PCG64 seeded draws, leave-one-cluster-out jackknife for the BCa
acceleration).

Resample :math:`b` consists of the rows of the resampled clusters, each row
repeated as often as its cluster was drawn (the engine's weights written as
row positions, in ascending row order;
:func:`studyval.analysis.internal_validation.resample_indices` gives them for a
seed, e.g. to run the same resamples in R).

Failed resamples
----------------
A resample in which a measure cannot be computed (the measure raises
:class:`~studyval.errors.EstimationError`, e.g. no events or no comparable
pair, or returns a non-finite value, e.g. a single class) has no replicate of
the difference. It is counted in ``n_failed`` and in ``failures`` under its
reason, reported with a :class:`~studyval.errors.StatisticalWarning`, and left
out of the standard error and the interval, which then describe the resamples
in which the difference is defined (the engine also warns when more than
:data:`~studyval.analysis.resampling.FAILED_WARN_FRACTION` fail, and raises
when fewer than 2 replicates remain).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from studyval.analysis.resampling import BootstrapManyResult, bootstrap_many
from studyval.analysis.survival import harrell_c
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "PerformanceDifferenceResult",
    "harrell_c_difference",
    "paired_bootstrap_difference",
]


@dataclasses.dataclass(frozen=True, eq=False)
class PerformanceDifferenceResult(Result):
    r"""Bootstrap of the difference in a performance measure between two models.

    ``difference`` is :math:`\hat\Delta = M_a - M_b` on the data; ``se`` the
    standard deviation of the finite replicates :math:`\hat\Delta^*_b`;
    ``ci_low, ci_high`` their percentile or BCa interval (formulas in
    :class:`studyval.analysis.resampling.BootstrapResult`). ``estimate,
    ci_low, ci_high = result`` unpacks (``estimate`` is ``difference``).

    Attributes
    ----------
    measure : str
        Name of the measure.
    model_a, model_b : str
        Names of the two models.
    estimate_a, estimate_b : float
        The measure of each model on the data.
    difference : float
        ``estimate_a - estimate_b``.
    se : float
        Bootstrap standard error of the difference.
    ci_low, ci_high : float
        Confidence limits of the difference.
    ci_level : float
        ``1 - alpha``.
    method : str
        ``"percentile"`` or ``"bca"``.
    bias : float
        Mean replicate minus ``difference``.
    z0, acceleration : float
        BCa bias correction and acceleration (NaN for percentile).
    n_resamples : int
        Resamples drawn, :math:`B`.
    n_failed : int
        Resamples without a replicate of the difference (left out of ``se``
        and the interval).
    failures : tuple of (str, int)
        Failed resamples per reason, most frequent first. A reason without a
        model name failed for both models; ``"<model>: <reason>"`` failed for
        that model (the other one either succeeded or failed differently).
    n_rows : int
        Rows (cases).
    n_clusters : int
        Clusters resampled (``n_rows`` without clusters).
    seed : int
        Seed of the PCG64 generator.
    bootstrap : studyval.analysis.resampling.BootstrapManyResult
        The engine's result for ``model_a``, ``model_b`` and the difference
        (named ``"a - b"`` with the model names), with their replicates; not
        in :meth:`to_frame`.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("difference", "ci_low", "ci_high")

    measure: str
    model_a: str
    model_b: str
    estimate_a: float
    estimate_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str
    bias: float
    z0: float
    acceleration: float
    n_resamples: int
    n_failed: int
    failures: tuple[tuple[str, int], ...]
    n_rows: int
    n_clusters: int
    seed: int
    bootstrap: BootstrapManyResult = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row: the scalar fields, ``failures`` as ``"reason: count"`` joined by ``"; "``."""
        row = self.to_dict()
        row["failures"] = "; ".join(f"{r}: {c}" for r, c in self.failures)
        return pd.DataFrame([row])


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    for sep in (":", ";", "\n"):
        text = text.split(sep)[0]
    return text.strip()[:120]


def _check_labels(labels: Any) -> tuple[str, str]:
    if (
        not isinstance(labels, (tuple, list))
        or len(labels) != 2
        or not all(isinstance(s, str) for s in labels)
        or labels[0] == labels[1]
    ):
        raise StudyvalError(f"labels must be two distinct strings, got {labels!r}")
    return labels[0], labels[1]


def _check_prediction(prediction: Any, name: str) -> np.ndarray:
    arr = np.asarray(prediction)
    if arr.ndim not in (1, 2) or arr.shape[0] < 2:
        raise StudyvalError(
            f"{name} must be an array with one row per case (shape (n,) or (n, k), n >= 2), "
            f"got shape {arr.shape}"
        )
    return arr


def paired_bootstrap_difference(
    measure: Callable[[np.ndarray, np.ndarray], float],
    prediction_a: Any,
    prediction_b: Any,
    *,
    n_resamples: int,
    seed: int,
    clusters: Any = None,
    alpha: float = 0.05,
    method: str = "bca",
    labels: tuple[str, str] = ("a", "b"),
    measure_name: str = "measure",
    chunk_size: int | None = None,
) -> PerformanceDifferenceResult:
    r"""Paired (cluster) bootstrap of the difference in a measure between two models.

    :math:`\hat\Delta = M(\text{prediction}_a) - M(\text{prediction}_b)` on the
    same cases, with the bootstrap standard error and percentile or BCa
    interval of the paired replicates (module docstring; Efron & Tibshirani
    1993, doi:10.1201/9780429246593). The models are held fixed (their
    predictions are given); to include the model fitting in the resampling,
    see :mod:`studyval.analysis.internal_validation`.

    Parameters
    ----------
    measure : callable
        ``measure(rows, prediction) -> float``: the measure of ``prediction``
        (one of the two arrays given) on the cases at the 0-based positions
        ``rows`` (a resample: positions repeat; the data itself is
        ``numpy.arange(n)``). It closes over the outcome, e.g.
        ``lambda rows, risk: harrell_c(time[rows], event[rows], risk[rows]).estimate``.
        Raise :class:`~studyval.errors.EstimationError` or return NaN where
        it is undefined.
    prediction_a, prediction_b : array-like, shape (n,) or (n, k)
        Each model's predictions for the same ``n`` cases, row ``i`` for case ``i``.
    n_resamples : int
        Number of resamples :math:`B \ge 2` (required; 2000 or more for BCa
        limits of a 95 % interval).
    seed : int
        Seed of the PCG64 generator; required.
    clusters : array-like, shape (n,), optional
        Patient id per case: whole patients are resampled. Default: every case
        on its own.
    alpha : float, default 0.05
        Interval level ``1 - alpha``.
    method : {"bca", "percentile"}, default "bca"
        Interval method (see :func:`~studyval.analysis.resampling.bootstrap`).
    labels : (str, str), default ("a", "b")
        Names of the two models.
    measure_name : str, default "measure"
        Name of the measure, copied into the result.
    chunk_size : int, optional
        Resamples per call of the engine's statistic; never changes the result.

    Returns
    -------
    PerformanceDifferenceResult

    Raises
    ------
    studyval.errors.StudyvalError
        Predictions of different or too few rows, bad labels, and the
        engine's checks (``n_resamples``, ``seed``, ``alpha``, ``method``,
        ``clusters``).
    studyval.errors.EstimationError
        The measure cannot be computed on the data (its own error); fewer than
        2 replicates of the difference; an undefined BCa correction.

    Warns
    -----
    StatisticalWarning
        When any resample failed, with the count per reason (and the engine's
        warning when more than 1 % failed).

    Examples
    --------
    >>> import numpy as np
    >>> from studyval.analysis.survival import harrell_c
    >>> rng = np.random.default_rng(0)
    >>> t = rng.exponential(size=40); e = (rng.random(40) < 0.7).astype(int)
    >>> a = -t + rng.normal(size=40); b = rng.normal(size=40)
    >>> c = lambda rows, r: harrell_c(t[rows], e[rows], r[rows]).estimate
    >>> res = paired_bootstrap_difference(c, a, b, n_resamples=200, seed=1,
    ...                                   method="percentile", measure_name="harrell_c")
    >>> round(res.difference, 3), res.n_failed
    (0.187, 0)

    """
    if not callable(measure):
        raise StudyvalError(f"measure must be callable, got {type(measure).__name__}")
    pa = _check_prediction(prediction_a, "prediction_a")
    pb = _check_prediction(prediction_b, "prediction_b")
    if pa.shape[0] != pb.shape[0]:
        raise StudyvalError(
            f"prediction_a has {pa.shape[0]} rows but prediction_b has {pb.shape[0]}; the "
            "paired comparison needs both models' predictions for the same cases"
        )
    name_a, name_b = _check_labels(labels)
    n = pa.shape[0]
    everyone = np.arange(n, dtype=np.int64)
    # On the data itself a measure's error is not a failed resample: let it propagate.
    est_a = float(measure(everyone, pa))
    est_b = float(measure(everyone, pb))
    for value, label in ((est_a, name_a), (est_b, name_b)):
        if not math.isfinite(value):
            raise EstimationError(
                f"the {measure_name} of model {label!r} is not finite on the data ({value})"
            )

    def one(rows: np.ndarray, prediction: np.ndarray) -> tuple[float, str | None]:
        try:
            value = float(measure(rows, prediction))
        except EstimationError as exc:
            return math.nan, _reason(exc)
        if not math.isfinite(value):
            return math.nan, f"{measure_name} not finite ({value})"
        return value, None

    row_reasons: list[str | None] = []  # one entry per weight row, in the engine's call order

    def statistic(weights: np.ndarray) -> np.ndarray:
        counts = weights.astype(np.int64)
        out = np.empty((counts.shape[0], 3))
        for r, cnt in enumerate(counts):
            rows = np.repeat(everyone, cnt)
            va, ra = one(rows, pa)
            vb, rb = one(rows, pb)
            out[r] = (va, vb, va - vb)
            if ra is None and rb is None:
                row_reasons.append(None)
            elif ra == rb:
                row_reasons.append(ra)
            else:
                row_reasons.append(f"{name_a}: {ra}" if ra is not None else f"{name_b}: {rb}")
        return out

    diff_name = f"{name_a} - {name_b}"
    boot = bootstrap_many(
        statistic,
        names=[name_a, name_b, diff_name],
        n_rows=n,
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=method,
        chunk_size=chunk_size,
    )
    # The engine evaluates the data (1 row), then the resamples in order, then the jackknife.
    resample_reasons = row_reasons[1 : 1 + boot.n_resamples]
    counts: dict[str, int] = {}
    for reason in resample_reasons:
        if reason is not None:
            counts[reason] = counts.get(reason, 0) + 1
    d = boot[diff_name]
    if sum(counts.values()) != d.n_failed:  # pragma: no cover - guards the engine's call order
        raise RuntimeError(
            f"internal error: {sum(counts.values())} failures recorded but the engine counts "
            f"{d.n_failed}; the resampling engine's evaluation order has changed"
        )
    failures = tuple(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    if failures:
        listing = "; ".join(f"{r} ({c})" for r, c in failures)
        warnings.warn(
            f"paired bootstrap of the {measure_name} difference: {d.n_failed} of "
            f"{boot.n_resamples} resamples have no replicate and are left out of the SE and "
            f"the interval: {listing}",
            StatisticalWarning,
            stacklevel=2,
        )
    return PerformanceDifferenceResult(
        measure=str(measure_name),
        model_a=name_a,
        model_b=name_b,
        estimate_a=est_a,
        estimate_b=est_b,
        difference=d.estimate,
        se=d.se,
        ci_low=d.ci_low,
        ci_high=d.ci_high,
        ci_level=d.ci_level,
        method=d.method,
        bias=d.bias,
        z0=d.z0,
        acceleration=d.acceleration,
        n_resamples=boot.n_resamples,
        n_failed=d.n_failed,
        failures=failures,
        n_rows=n,
        n_clusters=boot.n_clusters,
        seed=boot.seed,
        bootstrap=boot,
    )


def harrell_c_difference(
    time: Any,
    event: Any,
    risk_a: Any,
    risk_b: Any,
    *,
    n_resamples: int,
    seed: int,
    clusters: Any = None,
    strata: Any = None,
    alpha: float = 0.05,
    method: str = "bca",
    labels: Sequence[str] = ("a", "b"),
    chunk_size: int | None = None,
) -> PerformanceDifferenceResult:
    r"""Paired bootstrap of the difference in Harrell's C between two risk scores.

    :math:`\hat\Delta = \hat C_a - \hat C_b` with Harrell's C of
    :func:`studyval.analysis.survival.harrell_c` (Harrell et al. 1982,
    doi:10.1001/jama.1982.03320430047030) on each resample of the cases;
    :func:`paired_bootstrap_difference` with that measure. A resample without
    an event, or without a comparable pair, fails and is counted.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        Follow-up times and event indicators (1 = event, 0 = censored).
    risk_a, risk_b : array-like, shape (n,)
        Two risk scores (**higher = worse**) for the same cases, e.g. the
        linear predictors of two Cox models.
    n_resamples, seed, clusters, alpha, method, chunk_size
        As in :func:`paired_bootstrap_difference`.
    strata : array-like, shape (n,), optional
        Compare pairs only within strata (as for a stratified Cox model).
    labels : (str, str), default ("a", "b")
        Names of the two scores.

    Returns
    -------
    PerformanceDifferenceResult
        ``measure = "harrell_c"``.

    Raises
    ------
    studyval.errors.StudyvalError
        Invalid inputs (as :func:`~studyval.analysis.survival.harrell_c`).
    studyval.errors.EstimationError
        No events or no comparable pair in the data; as
        :func:`paired_bootstrap_difference`.

    Warns
    -----
    StatisticalWarning
        Failed resamples, with the count per reason.

    Notes
    -----
    With shared resamples
    (:func:`~studyval.analysis.internal_validation.resample_indices`, same
    ``seed`` and ``clusters``) each replicate equals
    ``survival::concordance(Surv(time, status) ~ risk, data = d[rows + 1, ],
    reverse = TRUE)$concordance`` for each score, differenced; see
    ``tests/test_paired_bootstrap.py``.

    """
    name_a, name_b = _check_labels(tuple(labels) if isinstance(labels, list) else labels)
    first = harrell_c(time, event, risk_a, strata=strata)  # validates and fails on the data
    harrell_c(time, event, risk_b, strata=strata)
    n = first.n
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event)
    s = None if strata is None else np.asarray(strata)

    def measure(rows: np.ndarray, risk: np.ndarray) -> float:
        return harrell_c(
            t[rows], e[rows], risk[rows], strata=None if s is None else s[rows]
        ).estimate

    return paired_bootstrap_difference(
        measure,
        np.asarray(risk_a, dtype=np.float64).reshape(n),
        np.asarray(risk_b, dtype=np.float64).reshape(n),
        n_resamples=n_resamples,
        seed=seed,
        clusters=clusters,
        alpha=alpha,
        method=method,
        labels=(name_a, name_b),
        measure_name="harrell_c",
        chunk_size=chunk_size,
    )
