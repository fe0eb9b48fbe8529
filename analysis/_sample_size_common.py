"""Argument checks and rounding shared by the sample-size modules.

:mod:`~studyval.analysis.sample_size`, :mod:`~studyval.analysis.sample_size_survival`,
:mod:`~studyval.analysis.sample_size_multinomial` and
:mod:`~studyval.analysis.sample_size_validation` check their planning values the same way and
round a required size up the same way (ignoring floating-point error of 1e-12 relative, so that
an exact integer requirement is not pushed to the next integer).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from studyval.errors import StudyvalError

#: Relative floating-point error ignored when a required size is rounded up.
REL_TOL = 1e-12


def ceil_size(x: float) -> int:
    """Round up, ignoring floating-point error of 1e-12 relative."""
    return math.ceil(x - REL_TOL * max(1.0, abs(x)))


def real(value: Any, name: str) -> float:
    """A finite real number (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StudyvalError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise StudyvalError(f"{name} must be finite, got {v}")
    return v


def positive(value: Any, name: str) -> float:
    """A finite number > 0."""
    v = real(value, name)
    if v <= 0:
        raise StudyvalError(f"{name} must be > 0, got {v}")
    return v


def open_unit(value: Any, name: str, low: float = 0.0) -> float:
    """A number in (``low``, 1)."""
    v = real(value, name)
    if not low < v < 1.0:
        raise StudyvalError(f"{name} must be in ({low:g}, 1), got {v}")
    return v


def whole_number(value: Any, name: str, minimum: int = 1) -> int:
    """A whole number (not a bool) of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise StudyvalError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)
