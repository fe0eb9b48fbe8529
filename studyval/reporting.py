"""Formatting helpers for the Quarto reports: tables and numbers, never statistics.

A report reads its bundle's tables and lays them out with these helpers. They
format; they do not compute estimates (the only arithmetic is turning a
proportion into a percentage for display).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from studyval.bundle import read_manifest, read_table

__all__ = ["Bundle", "fmt_ci", "fmt_p", "md_table"]


def fmt_num(x: float, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NA for missing, infinity spelt out."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "NA"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3) -> str:
    """``0.912 (0.861 to 0.953)``: the word "to" avoids confusion with minus signs."""
    return f"{fmt_num(est, digits)} ({fmt_num(lo, digits)} to {fmt_num(hi, digits)})"


def fmt_p(p: float) -> str:
    """P value as journals print it: ``<0.001`` below 0.001, three decimals otherwise."""
    if p is None or np.isnan(p):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _escape(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def md_table(
    frame: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    *,
    align: Sequence[str] | None = None,
    caption: str | None = None,
) -> str:
    """A pipe-table in pandoc Markdown (works in Quarto and plain pandoc).

    Parameters
    ----------
    frame : DataFrame
        Already formatted cells (strings or numbers).
    columns : mapping, optional
        Column name -> header text, in display order.
    align : sequence of {"l", "r", "c"}, optional
        Alignment per column; text left, others right by default.
    caption : str, optional
        Table caption (pandoc ``: caption`` syntax).

    """
    if columns is not None:
        frame = frame[list(columns)].rename(columns=dict(columns))
    headers = [_escape(c) for c in frame.columns]
    if align is None:
        align = [
            "r"
            if pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
            else "l"
            for c in frame.columns
        ]
    rule = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    for row in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_escape(v) for v in row) + " |")
    text = "\n".join(lines) + "\n"
    if caption:
        text += f"\n: {caption}\n"
    return text + "\n"


class Bundle:
    """Read-only access to a results bundle from a report."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self._cache: dict[str, pd.DataFrame] = {}

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` (cached)."""
        if name not in self._cache:
            self._cache[name] = read_table(self.path, name)
        return self._cache[name]

    def figure(self, name: str, ext: str = "png") -> str:
        """Path of figure ``name`` for a Markdown image link.

        Relative to the working directory of the rendering kernel (the
        report's directory), because Quarto resolves an absolute link against
        the project, not the file system.
        """
        path = self.path / "figures" / f"{name}.{ext}"
        if not path.is_file():
            raise FileNotFoundError(f"bundle has no figure {name}.{ext}")
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()

    # ---- the imaging chain's part of the bundle (studyval.models.demo) ---------------------
    @property
    def has_imaging(self) -> bool:
        """Whether the bundle holds an imaging chain's outputs (``imaging/``)."""
        return (self.path / "imaging" / "manifest.json").is_file()

    @property
    def imaging_manifest(self) -> dict:
        """The imaging chain's manifest (models, weights hashes, epochs, scans)."""
        import json

        return json.loads((self.path / "imaging" / "manifest.json").read_text(encoding="utf-8"))

    def imaging_table(self, name: str) -> pd.DataFrame:
        """Table ``imaging/tables/<name>.csv``."""
        path = self.path / "imaging" / "tables" / f"{name}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"bundle has no imaging table {name}")
        return pd.read_csv(path)

    def imaging_figure(self, name: str, ext: str = "png") -> str:
        """Path of imaging figure ``name`` for a Markdown image link (see :meth:`figure`)."""
        path = self.path / "imaging" / "figures" / f"{name}.{ext}"
        if not path.is_file():
            raise FileNotFoundError(f"bundle has no imaging figure {name}.{ext}")
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
