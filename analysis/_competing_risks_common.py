r"""Input checks shared by the competing-risks modules.

Used by :mod:`~studyval.analysis.cumulative_incidence`,
:mod:`~studyval.analysis.fine_gray`,
:mod:`~studyval.analysis.cause_specific_cox`,
:mod:`~studyval.analysis.competing_risks_brier` and
:mod:`~studyval.analysis.survival_validation`; not a public API.

* :func:`_check_cause_value`: a cause is a positive integer event code.
* :func:`_check_event_codes`: the event codes (see below), the cause of
  interest and the declared causes.
* :func:`_check_groups`: group and strata labels (sorted levels, integer codes).
* :func:`_check_query_times`: times at which a curve or a prediction is read.

Event coding
------------
``event_code`` is 0 for censored and a positive integer 1..K for the cause of
the event; the cause of interest is always an explicit ``cause=``. The
declared causes are ``causes=`` when given (any other code is an error naming
its position) and otherwise 1..K with K the largest code present. Codes that
are negative, fractional or missing are errors. With ``cause=k``, every other
positive code is a competing event.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import StudyvalError


def _check_cause_value(value: Any, name: str = "cause") -> int:
    integral = isinstance(value, numbers.Integral | np.integer) or (
        isinstance(value, numbers.Real) and math.isfinite(value) and float(value).is_integer()
    )
    if isinstance(value, bool | np.bool_) or not integral:
        raise StudyvalError(f"{name} must be a positive integer event code, got {value!r}")
    v = int(value)
    if v < 1:
        raise StudyvalError(f"{name} must be a positive integer event code (0 = censored), got {v}")
    return v


def _check_event_codes(
    event_code: Any,
    n: int,
    *,
    cause: Any,
    causes: Sequence[int] | None = None,
    name: str = "event_code",
) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Validate competing-risk event codes: 0 = censored, 1..K = causes.

    Returns the codes as int64, the cause of interest and the declared causes.
    With ``causes=None`` the declared set is ``1..K``, ``K`` the largest code
    present (or ``cause`` if larger); a code outside ``{0} | causes`` is an error.
    """
    e = np.asarray(event_code)
    if e.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {e.shape}")
    if e.shape[0] != n:
        raise StudyvalError(f"{name} has {e.shape[0]} values but time has {n}")
    if e.dtype.kind == "b" or e.dtype.kind not in "iuf":
        raise StudyvalError(
            f"{name} must hold integer codes (0 = censored, 1..K = causes), got dtype {e.dtype}"
        )
    ef = e.astype(np.float64)
    bad = ~np.isfinite(ef)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} has {int(bad.sum())} missing value(s); first at position {i}: {e[i]!r}"
        )
    bad = (ef != np.floor(ef)) | (ef < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} must hold non-negative integer codes (0 = censored, 1..K = causes); "
            f"{int(bad.sum())} other value(s), first at position {i}: {e[i]!r}"
        )
    codes = ef.astype(np.int64)
    k = _check_cause_value(cause)
    if causes is None:
        top = max(int(codes.max()), k)
        declared = tuple(range(1, top + 1))
    else:
        if isinstance(causes, str | bytes) or not isinstance(causes, Sequence | np.ndarray):
            raise StudyvalError(
                f"causes must be a sequence of positive integer codes, got {causes!r}"
            )
        declared = tuple(sorted({_check_cause_value(c, "causes") for c in causes}))
        if not declared:
            raise StudyvalError("causes must name at least one cause")
        allowed = np.isin(codes, (0, *declared))
        if not allowed.all():
            i = int(np.flatnonzero(~allowed)[0])
            raise StudyvalError(
                f"{name} has {int((~allowed).sum())} code(s) outside the declared set "
                f"0 (censored), {', '.join(map(str, declared))}; first at position {i}: {codes[i]}"
            )
    if k not in declared:
        raise StudyvalError(
            f"cause={k} is not among the declared causes {', '.join(map(str, declared))}"
        )
    return codes, k, declared


def _check_groups(values: Any, n: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Labels -> (sorted levels, integer codes); one-dimensional, length n, none missing."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise StudyvalError(f"{name} has {arr.shape[0]} values but time has {n}")
    missing = pd.isna(pd.Series(arr, copy=False)).to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise StudyvalError(
            f"{name} has {int(missing.sum())} missing label(s); first at position {i}"
        )
    try:
        levels, codes = np.unique(arr, return_inverse=True)
    except TypeError as exc:
        raise StudyvalError(f"{name} labels must be mutually comparable: {exc}") from None
    return levels, codes.reshape(-1).astype(np.int64)


def _check_query_times(times: Any) -> np.ndarray:
    q = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if q.ndim != 1 or q.size == 0:
        raise StudyvalError(
            f"times must be a non-empty one-dimensional sequence, got shape {q.shape}"
        )
    bad = ~np.isfinite(q) | (q < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(f"times must be finite and >= 0; position {i} is {q[i]}")
    if (np.diff(q) <= 0).any():
        raise StudyvalError("times must be strictly increasing")
    return q
