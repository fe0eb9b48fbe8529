"""Frozen result objects shared by every statistic.

Each statistic in :mod:`studyval.analysis` returns a frozen dataclass that
subclasses :class:`Result`. A result

* documents its fields in its own docstring,
* becomes its tidy :class:`pandas.DataFrame` with :meth:`Result.to_frame`, the
  one table accessor of every result: by default one row of the scalar fields
  (array-valued fields such as curve coordinates are left out); a result whose
  main output is a table (a Kaplan-Meier curve, a confusion matrix, an ICC
  table) returns that table and keeps its one-row summary as
  ``summary_frame()``; further views have descriptive ``*_frame`` names,
* unpacks like the tuple that older APIs returned where that is natural
  (``estimate, ci_low, ci_high = r`` via :meth:`Result.__iter__` when the
  subclass defines ``_unpack``).

Column names never encode alpha: ``ci_low``/``ci_high`` plus a ``ci_level``
column, never ``CI95%``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import pandas as pd


def _is_scalar(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool, int, float, np.generic)):
        return True
    return False


@dataclasses.dataclass(frozen=True)
class Result:
    """Base class for frozen statistical results."""

    _unpack: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields as a plain dict (numpy scalars become Python scalars)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name.startswith("_"):
                continue
            value = getattr(self, f.name)
            if _is_scalar(value):
                out[f.name] = value.item() if isinstance(value, np.generic) else value
        return out

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields."""
        return pd.DataFrame([self.to_dict()])

    def __iter__(self) -> Iterator[Any]:
        if not self._unpack:
            raise TypeError(f"{type(self).__name__} does not unpack; use its attributes")
        return iter(getattr(self, name) for name in self._unpack)


def results_frame(results: list[Result], **keys: list[Any] | Any) -> pd.DataFrame:
    """Stack results of one kind into a tidy table, with key columns first.

    Parameters
    ----------
    results : list of Result
        Results of the same type.
    **keys
        Extra columns; a list gives one value per result, a scalar repeats.

    """
    frame = pd.concat([r.to_frame() for r in results], ignore_index=True)
    front = []
    for name, value in keys.items():
        frame.insert(len(front), name, value)
        front.append(name)
    return frame
