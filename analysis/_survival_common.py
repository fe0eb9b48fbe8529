r"""Input checks and small array helpers shared by the survival modules.

Used by :mod:`~studyval.analysis.kaplan_meier`,
:mod:`~studyval.analysis.concordance`, :mod:`~studyval.analysis.cox` and
:mod:`~studyval.analysis.cox_zph`; not a public API.

* :func:`_check_time_event`: ``time`` is the follow-up time (finite, ``>= 0``;
  0 allowed as in R's ``Surv``), ``event`` is 1 (or ``True``) for an observed
  event and 0 (``False``) for right censoring. Other codes, missing values and
  negative times are errors naming the position.
* :func:`_check_labels` / :func:`_encode`: group and strata labels (no missing
  labels; sorted levels and integer codes).
* :func:`_check_query_times`: times at which a curve is read (finite, ``>= 0``).
* :func:`_readonly`: results hold read-only arrays.
* :func:`_chol_solve`: solve a symmetric positive-definite system by Cholesky
  (None when it is not positive definite); used by the log-rank test and the
  Cox fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis._checks import check_follow_up_time
from studyval.errors import StudyvalError


def _check_time_event(
    time: Any, event: Any, names: tuple[str, str] = ("time", "event")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate follow-up times and event indicators; return float64 and int8 arrays."""
    tn, en = names
    t = check_follow_up_time(time, name=tn)
    e = np.asarray(event)
    if e.ndim != 1:
        raise StudyvalError(f"{en} must be one-dimensional, got shape {e.shape}")
    if e.shape[0] != t.shape[0]:
        raise StudyvalError(f"{en} has {e.shape[0]} values but {tn} has {t.shape[0]}")
    if e.dtype.kind == "b":
        return t, e.astype(np.int8)
    if e.dtype.kind not in "iuf":
        raise StudyvalError(
            f"{en} must be 0/1 or boolean (1 = event, 0 = censored), got dtype {e.dtype}"
        )
    ef = e.astype(np.float64)
    bad = ~((ef == 0) | (ef == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{en} must be 0 (censored) or 1 (event); {int(bad.sum())} other value(s), "
            f"first at position {i}: {e[i]!r}"
        )
    return t, ef.astype(np.int8)


def _check_labels(values: Any, n: int, name: str) -> np.ndarray:
    """Validate a grouping / strata vector: one-dimensional, length n, no missing labels."""
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
    return arr


def _encode(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique labels and integer codes (labels must be mutually comparable)."""
    try:
        levels, codes = np.unique(labels, return_inverse=True)
    except TypeError as exc:  # mixed types that do not sort
        raise StudyvalError(f"labels must be mutually comparable: {exc}") from None
    return levels, codes.reshape(-1).astype(np.int64)


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a)
    a.setflags(write=False)
    return a


def _check_query_times(times: Any) -> np.ndarray:
    q = np.atleast_1d(np.asarray(times, dtype=np.float64))
    if q.ndim != 1:
        raise StudyvalError(f"times must be one-dimensional, got shape {q.shape}")
    bad = ~np.isfinite(q) | (q < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(f"times must be finite and >= 0; position {i} is {q[i]}")
    return q


def _chol_solve(m: np.ndarray, v: np.ndarray) -> np.ndarray | None:
    try:
        c = np.linalg.cholesky(m)
    except np.linalg.LinAlgError:
        return None
    y = np.linalg.solve(c, v)
    return np.linalg.solve(c.T, y)
