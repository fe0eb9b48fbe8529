"""Private input validators shared by the statistics.

Each raises :class:`studyval.errors.StudyvalError` (a ``ValueError``) that
names the argument, the rule and an offending value or position.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import EstimationError, StudyvalError

__all__ = [
    "check_alpha",
    "check_binary_outcome",
    "check_follow_up_time",
    "check_option",
    "check_probabilities",
    "check_scores",
    "wald_difference",
    "z_critical",
]


def check_option(value: str, allowed: Sequence[str], name: str) -> str:
    """Return ``value`` if it is one of ``allowed``; else raise with a "did you mean"."""
    if value in allowed:
        return value
    import difflib

    close = difflib.get_close_matches(str(value), list(allowed), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise StudyvalError(f"{name}={value!r} is not one of {', '.join(map(repr, allowed))}{hint}")


def check_alpha(alpha: float) -> float:
    """``alpha`` must lie strictly between 0 and 1."""
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise StudyvalError(f"alpha must be in (0, 1), got {alpha}")
    return alpha


def check_binary_outcome(
    y_true: Any, positive: Any, *, name: str = "y_true", require_both: bool = True
) -> np.ndarray:
    """Return a boolean array, True where ``y_true == positive``.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Observed class labels (any hashable labels, e.g. ``"acute"``/``"chronic"``
        or 0/1). Missing values are an error.
    positive : label
        The label of the positive (diseased) class. Required: it is never
        inferred from the data.
    name : str
        Argument name used in error messages.
    require_both : bool
        If True, both classes must be present (an AUC needs both).

    Raises
    ------
    StudyvalError
        ``positive`` is not among the labels, more than two labels occur, a
        label is missing, or (with ``require_both``) one class is absent.

    """
    arr = np.asarray(y_true)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise StudyvalError(f"{name} is empty")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        i = int(np.flatnonzero(np.isnan(arr))[0])
        raise StudyvalError(f"{name} has a missing label at position {i}")
    if arr.dtype.kind == "O":
        for i, v in enumerate(arr):
            if v is None or (isinstance(v, float) and np.isnan(v)):
                raise StudyvalError(f"{name} has a missing label at position {i}")
    # Hash-based unique (O(n)); np.unique sorts, which dominated auc() at large n.
    labels = (
        np.sort(pd.unique(arr))
        if arr.dtype.kind in "biuf"
        else np.asarray(sorted(pd.unique(arr), key=str))
    )
    if positive not in set(labels.tolist()):
        if require_both or len(labels) > 1:
            raise EstimationError(
                f"positive={positive!r} does not occur in {name} "
                f"(labels found: {', '.join(map(repr, labels.tolist()))})"
            )
    if len(labels) > 2:
        raise StudyvalError(
            f"{name} must have two classes, found {len(labels)}: "
            f"{', '.join(map(repr, labels.tolist()[:10]))}"
        )
    is_pos = arr == positive
    if require_both:
        n_pos = int(is_pos.sum())
        if n_pos == 0 or n_pos == arr.size:
            only = "positive" if n_pos else "negative"
            raise EstimationError(
                f"{name} has a single class (all {arr.size} cases are {only}); "
                "discrimination needs at least one positive and one negative case"
            )
    return is_pos


def check_scores(y_score: Any, n: int | None = None, *, name: str = "y_score") -> np.ndarray:
    """Return ``y_score`` as a finite float64 array of length ``n``.

    Raises
    ------
    StudyvalError
        Wrong shape or length, or a NaN / infinite value (with its position).

    """
    arr = np.asarray(y_score, dtype=np.float64)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise StudyvalError(f"{name} has {arr.shape[0]} values but y_true has {n}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} has {int(bad.sum())} non-finite value(s); first at position {i}: {arr[i]}"
        )
    return arr


def check_probabilities(prob: Any, n: int, *, name: str = "prob", open_: bool = True) -> np.ndarray:
    """Predicted probabilities as float64; NaN, out-of-range (and exactly 0/1 if ``open_``) raise.

    Never clips: a probability of exactly 0 or 1 has an infinite logit, and
    clipping it would invent a calibration.
    """
    arr = np.asarray(prob)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    try:
        arr = arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise StudyvalError(f"{name} must be numeric probabilities: {exc}") from exc
    if arr.shape[0] != n:
        raise StudyvalError(f"{name} has {arr.shape[0]} values but y_true has {n}")
    nan = np.isnan(arr)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        raise StudyvalError(
            f"{name} has {int(nan.sum())} missing (NaN) value(s); first at position {i}"
        )
    outside = (arr < 0.0) | (arr > 1.0)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise StudyvalError(
            f"{name} must be probabilities in [0, 1]; {int(outside.sum())} value(s) outside, "
            f"first at position {i}: {arr[i]:.17g} (scores on another scale must be converted "
            "by the model, not here)"
        )
    if open_:
        edge = (arr == 0.0) | (arr == 1.0)
        if edge.any():
            i = int(np.flatnonzero(edge)[0])
            raise StudyvalError(
                f"{name} has {int(edge.sum())} probability(ies) of exactly 0 or 1; first at "
                f"position {i}: {arr[i]:.17g}. Their logit is infinite, so the logistic "
                "recalibration is undefined; they are not clipped. Export the model's "
                "probabilities (or logits) at full precision"
            )
    return arr


def check_follow_up_time(time: Any, *, name: str = "time") -> np.ndarray:
    """Follow-up times as float64: one-dimensional, numeric, finite and ``>= 0``.

    Zero is allowed (as in R's ``Surv``); a negative, missing or infinite time
    raises, naming the count and the first position.
    """
    t = np.asarray(time)
    if t.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {t.shape}")
    if t.size == 0:
        raise StudyvalError(f"{name} is empty")
    if t.dtype.kind not in "iuf":
        raise StudyvalError(f"{name} must be numeric, got dtype {t.dtype}")
    t = t.astype(np.float64)
    bad = ~np.isfinite(t)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} has {int(bad.sum())} missing or infinite value(s); first at position {i}: {t[i]}"
        )
    neg = t < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise StudyvalError(
            f"{name} must be >= 0 (a follow-up duration); {int(neg.sum())} negative value(s), "
            f"first at position {i}: {t[i]}"
        )
    return t


def z_critical(alpha: float) -> float:
    r"""The two-sided standard-normal critical value :math:`z_{1-\alpha/2}`.

    ``statistics.NormalDist`` uses Wichura's AS 241, as R's ``qnorm`` does;
    it is accurate to about 1e-16 and much cheaper than ``scipy.stats.norm.ppf``.
    """
    return NormalDist().inv_cdf(1.0 - alpha / 2.0)


def wald_difference(
    diff: float, se: float, alpha: float, *, bounds: tuple[float, float] = (-1.0, 1.0)
) -> tuple[float, float, float, float]:
    r"""Wald test and interval of a difference: ``(z, p, ci_low, ci_high)``.

    :math:`z = d / \mathrm{SE}`, :math:`p = 2\Phi(-|z|)` (computed as
    ``erfc(|z|/sqrt 2)``, accurate in the tails), interval
    :math:`d \pm z_{1-\alpha/2}\,\mathrm{SE}` clipped to ``bounds`` (an AUC
    difference lies in [-1, 1]). With a zero SE the test is degenerate:
    :math:`z = 0` for a zero difference, else :math:`\pm\infty`; the caller
    warns, naming what made the variance vanish.
    """
    if se > 0.0:
        z = diff / se
    else:
        z = 0.0 if diff == 0.0 else math.copysign(math.inf, diff)
    p = math.erfc(abs(z) / math.sqrt(2.0))
    half = z_critical(alpha) * se
    return z, p, max(bounds[0], diff - half), min(bounds[1], diff + half)
