"""Figures of agreement: Bland-Altman plots and ordinal confusion (agreement) tables.

Both are drawn from tables that the statistics return
(:meth:`studyval.analysis.agreement.BlandAltmanResult.points_frame` and
``.to_frame()``; :meth:`studyval.analysis.agreement.KappaResult.confusion_frame`),
never from raw measurements.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure

from studyval.errors import StudyvalError
from studyval.figures.style import PALETTE, RC, SINGLE_COLUMN_MM, new_figure

__all__ = ["bland_altman_figure", "confusion_matrix_figure"]

_BA_ROWS = ("bias", "lower_loa", "upper_loa")


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise StudyvalError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StudyvalError(
            f"{name} lacks column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns))})"
        )


def bland_altman_figure(
    points: pd.DataFrame,
    summary: pd.DataFrame,
    *,
    xlabel: str = "Mean of the two methods",
    ylabel: str = "Difference (A - B)",
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Bland-Altman plot: differences against means, bias and limits of agreement with CIs.

    Parameters
    ----------
    points : DataFrame
        Columns ``mean, difference``, one row per measurement pair
        (:meth:`~studyval.analysis.agreement.BlandAltmanResult.points_frame`).
    summary : DataFrame
        Columns ``quantity, estimate, ci_low, ci_high, ci_level, loa_coverage``
        with rows ``bias``, ``lower_loa``, ``upper_loa``
        (:meth:`~studyval.analysis.agreement.BlandAltmanResult.to_frame`).
    xlabel, ylabel : str
        Axis labels; put the unit in them (e.g. ``"Difference (model - reader), mm"``).
    title : str, optional
        Panel title.
    width_mm : float
        Figure width (the height follows); a journal column is 85 mm.

    Returns
    -------
    matplotlib.figure.Figure
        Points; solid line at the bias, dashed lines at the limits, each with a
        shaded confidence band; the values are written at the right margin.

    Raises
    ------
    StudyvalError
        A required column or row is missing.

    """
    _require_columns(points, ("mean", "difference"), "points")
    _require_columns(
        summary,
        ("quantity", "estimate", "ci_low", "ci_high", "ci_level", "loa_coverage"),
        "summary",
    )
    rows = {}
    for q in _BA_ROWS:
        hit = summary[summary["quantity"] == q]
        if hit.empty:
            raise StudyvalError(f"summary has no row with quantity == {q!r}")
        rows[q] = hit.iloc[0]
    level = float(rows["bias"]["ci_level"])
    coverage = float(rows["bias"]["loa_coverage"])
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, width_mm * 0.75)
        ax = fig.add_subplot()
        ax.scatter(
            points["mean"].to_numpy(),
            points["difference"].to_numpy(),
            s=9,
            color=PALETTE[0],
            alpha=0.7,
            linewidths=0,
            label="Pairs",
        )
        styles = {
            "bias": ("-", PALETTE[1]),
            "lower_loa": ("--", PALETTE[2]),
            "upper_loa": ("--", PALETTE[2]),
        }
        names = {
            "bias": "Bias",
            "lower_loa": "Lower LoA",
            "upper_loa": "Upper LoA",
        }
        for q in _BA_ROWS:
            row = rows[q]
            ls, colour = styles[q]
            ax.axhspan(float(row["ci_low"]), float(row["ci_high"]), color=colour, alpha=0.15, lw=0)
            ax.axhline(float(row["estimate"]), color=colour, ls=ls, lw=1.0)
            ax.annotate(
                f"{names[q]} {float(row['estimate']):.2f}\n"
                f"({float(row['ci_low']):.2f} to {float(row['ci_high']):.2f})",
                xy=(1.0, float(row["estimate"])),
                xycoords=("axes fraction", "data"),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                ha="left",
                fontsize=6,
                color=colour,
            )
        ax.axhline(0.0, color="#999999", lw=0.5, ls=":")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.text(
            0.01,
            0.99,
            f"Limits of agreement cover {100 * coverage:g}% of differences;\n"
            f"bands: {100 * level:g}% CI; n = {len(points)}",
            transform=ax.transAxes,
            va="top",
            ha="left",
            fontsize=6,
        )
        if title:
            ax.set_title(title, loc="left")
    return fig


def confusion_matrix_figure(
    table: pd.DataFrame,
    *,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Heat table of a k x k ordinal agreement table, with counts in the cells.

    Parameters
    ----------
    table : DataFrame
        Square table of non-negative counts; rows: categories of rater A,
        columns: of rater B, both in scale order
        (:meth:`~studyval.analysis.agreement.KappaResult.confusion_frame`).
        The index and column names label the axes unless ``xlabel``/``ylabel``
        are given.
    xlabel, ylabel : str, optional
        Axis labels (default: the column and index names).
    title : str, optional
        Panel title.
    width_mm : float
        Figure width (square panel).

    Returns
    -------
    matplotlib.figure.Figure
        Cells shaded by count (white to blue), counts written in each cell,
        the agreement diagonal outlined.

    Raises
    ------
    StudyvalError
        The table is not square or holds a negative or non-finite count.

    """
    if not isinstance(table, pd.DataFrame):
        raise StudyvalError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    counts = table.to_numpy(dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or counts.shape[0] < 2:
        raise StudyvalError(
            f"table must be a square k x k table with k >= 2, got shape {counts.shape}"
        )
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise StudyvalError("table must hold non-negative finite counts")
    k = counts.shape[0]
    cmap = LinearSegmentedColormap.from_list("studyval_counts", ["#FFFFFF", PALETTE[0]])
    vmax = max(float(counts.max()), 1.0)
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, width_mm * 0.95)
        ax = fig.add_subplot()
        ax.imshow(counts, cmap=cmap, vmin=0.0, vmax=vmax)
        for i in range(k):
            for j in range(k):
                value = counts[i, j]
                ax.text(
                    j,
                    i,
                    f"{value:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 0.6 * vmax else "black",
                )
            ax.add_patch(
                matplotlib.patches.Rectangle(
                    (i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor=PALETTE[1], lw=0.8
                )
            )
        ax.set_xticks(range(k), [str(c) for c in table.columns])
        ax.set_yticks(range(k), [str(c) for c in table.index])
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.set_xlabel(xlabel if xlabel is not None else str(table.columns.name or "Rater B"))
        ax.set_ylabel(ylabel if ylabel is not None else str(table.index.name or "Rater A"))
        ax.xaxis.set_label_position("top")
        ax.xaxis.tick_top()
        if title:
            ax.set_title(title, loc="left")
    return fig
