"""Figures of subgroup analyses (forest plots) and multi-class confusion tables.

Both are drawn from the tidy tables of :mod:`studyval.analysis.subgroups` and
:mod:`studyval.analysis.multiclass`, never from raw data:

* :func:`forest_figure` takes :meth:`SubgroupResult.to_frame()
  <studyval.analysis.subgroups.SubgroupResult.to_frame>` (or several of them
  concatenated, one block per grouping);
* :func:`multiclass_confusion_figure` takes :meth:`MultiClassConfusion.matrix()
  <studyval.analysis.multiclass.MultiClassConfusion.matrix>`.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from studyval.errors import StudyvalError
from studyval.figures.style import DOUBLE_COLUMN_MM, PALETTE, RC, SINGLE_COLUMN_MM, new_figure

__all__ = ["forest_figure", "multiclass_confusion_figure"]

_FOREST_COLUMNS = (
    "level",
    "row_type",
    "status",
    "n",
    "estimate",
    "ci_low",
    "ci_high",
    "estimable",
    "reason",
)
_EXPLORATORY_MARK = "†"
_GREY = "#666666"
_TEST_SYMBOLS = {
    "Cochran": "Cochran's Q",
    "Pearson": "Pearson X²",
    "cluster-bootstrap": "bootstrap Wald W",
}


def _require_columns(table: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise StudyvalError(f"{what} must be a pandas DataFrame, got {type(table).__name__}")
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise StudyvalError(
            f"{what} lacks column(s) {', '.join(map(repr, absent))}; pass the table of "
            "SubgroupResult.to_frame()"
        )


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def _estimate_text(row: pd.Series) -> str:
    est = float(row["estimate"])
    lo, hi = float(row["ci_low"]), float(row["ci_high"])
    if math.isfinite(lo) and math.isfinite(hi):
        return f"{_fmt(est)} ({_fmt(lo)} to {_fmt(hi)})"
    return _fmt(est)


def forest_figure(
    table: pd.DataFrame,
    *,
    estimate_label: str,
    null_value: float | None = None,
    title: str | None = None,
    heterogeneity: pd.DataFrame | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
    level_header: str = "Subgroup",
) -> Figure:
    """Forest plot: one row per subgroup level, point and CI, n, and the overall estimate.

    Drawn from the tidy table of
    :meth:`~studyval.analysis.subgroups.SubgroupResult.to_frame` (several such
    tables concatenated give one block per ``grouping``). Each estimable level
    is a square with its interval and, on the right, "estimate (low to high)";
    a level that could not be estimated keeps its row and shows its
    ``reason`` instead. The overall row is drawn as a diamond spanning its
    interval, with a dotted vertical line at its estimate. Levels whose
    ``status`` is ``"exploratory"`` are drawn with open markers, their label
    carries a dagger and a footnote says they are exploratory.

    Parameters
    ----------
    table : DataFrame
        Columns ``level, row_type`` (``"subgroup"`` / ``"overall"``),
        ``status, n, estimate, ci_low, ci_high, estimable, reason``; optional
        ``grouping`` (block headers) and ``ci_level`` (axis label).
    estimate_label : str
        What is estimated, for the axis (e.g. ``"AUC"``, ``"Sensitivity"``).
    null_value : float, optional
        Draw a vertical reference line here (e.g. 0.5 for an AUC).
    title : str, optional
        Panel title.
    heterogeneity : DataFrame, optional
        :meth:`~studyval.analysis.subgroups.SubgroupResult.heterogeneity_frame`
        rows (one per grouping); the test is printed under its block.
    width_mm : float, default 170
        Figure width (a double journal column); the height follows the rows.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    studyval.errors.StudyvalError
        ``table`` is not a DataFrame, lacks a column, or has no subgroup rows.

    """
    _require_columns(table, _FOREST_COLUMNS, "table")
    if not isinstance(estimate_label, str) or not estimate_label:
        raise StudyvalError("estimate_label must be a non-empty string")
    subgroups = table[table["row_type"] == "subgroup"]
    if subgroups.empty:
        raise StudyvalError("table has no rows with row_type == 'subgroup'")
    overall = table[table["row_type"] == "overall"]
    groupings = (
        list(dict.fromkeys(subgroups["grouping"].tolist()))
        if "grouping" in table.columns
        else [None]
    )
    het = None
    if heterogeneity is not None:
        _require_columns(
            heterogeneity, ("performed", "statistic", "df", "p_value"), "heterogeneity"
        )
        het = heterogeneity

    # layout: a list of (kind, payload) lines from top to bottom
    lines: list[tuple[str, object]] = []
    for g in groupings:
        block = subgroups if g is None else subgroups[subgroups["grouping"] == g]
        if g is not None:
            lines.append(("header", (g, block)))
        lines.extend(("level", row) for _, row in block.iterrows())
        if het is not None:
            h = het if g is None or "grouping" not in het.columns else het[het["grouping"] == g]
            if not h.empty:
                lines.append(("het", h.iloc[0]))
    if not overall.empty:
        lines.append(("overall", overall.iloc[0]))
    any_exploratory = bool((subgroups["status"] == "exploratory").any())

    n_lines = len(lines)
    height = 14.0 + 5.2 * n_lines + (5.0 if any_exploratory else 0.0) + (6.0 if title else 0.0)
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, height)
        ax_left, ax, ax_right = fig.subplots(
            1, 3, sharey=True, gridspec_kw={"width_ratios": [1.15, 1.5, 1.45], "wspace": 0.02}
        )
        for a in (ax_left, ax_right):
            a.set_axis_off()
        ax.patch.set_visible(False)  # let the heterogeneity line run under the plot area
        ys = np.arange(n_lines)[::-1].astype(float)
        ax.set_ylim(-0.7, n_lines - 0.3)
        ax_left.text(0.0, n_lines - 0.3, level_header, fontweight="bold", va="bottom")
        ax_left.text(1.0, n_lines - 0.3, "n", fontweight="bold", va="bottom", ha="right")
        ax_right.text(0.04, n_lines - 0.3, f"{estimate_label} (CI)", fontweight="bold", va="bottom")
        for a in (ax_left, ax_right):
            a.set_xlim(0, 1)

        finite = []
        for kind, payload in lines:
            if kind in ("level", "overall"):
                row = payload  # type: ignore[assignment]
                for col in ("ci_low", "ci_high", "estimate"):
                    v = float(row[col])
                    if math.isfinite(v):
                        finite.append(v)
        if null_value is not None:
            finite.append(float(null_value))
        lo_all, hi_all = (min(finite), max(finite)) if finite else (0.0, 1.0)
        pad = max(0.05 * (hi_all - lo_all), 0.01)
        ax.set_xlim(lo_all - pad, hi_all + pad)

        colour = PALETTE[0]
        for y, (kind, payload) in zip(ys, lines, strict=True):
            if kind == "header":
                g, block = payload  # type: ignore[misc]
                label = str(g)
                if (block["status"] == "exploratory").all():
                    label += f" {_EXPLORATORY_MARK}"
                ax_left.text(0.0, y, label, fontweight="bold", va="center")
                continue
            if kind == "het":
                h = payload
                if bool(h["performed"]):
                    method = str(h.get("method", ""))
                    symbol = next(
                        (v for k, v in _TEST_SYMBOLS.items() if method.startswith(k)),
                        f"{method}:",
                    )
                    text = (
                        f"Heterogeneity: {symbol} = {float(h['statistic']):.2f}, "
                        f"df = {int(h['df'])}, p = {float(h['p_value']):.2g}"
                    )
                    i2 = float(h["i_squared"]) if "i_squared" in h.index else math.nan
                    if math.isfinite(i2):
                        text += f", I² = {100 * i2:.0f}%"
                else:
                    text = "Heterogeneity not tested: " + str(h.get("reason", ""))
                # spans into the (empty) plot area of its own row; kept out of the layout
                ax_left.text(
                    0.04,
                    y,
                    "\n".join(textwrap.wrap(text, 100)),
                    va="center",
                    fontsize=6,
                    color=_GREY,
                    style="italic",
                    zorder=5,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5},
                ).set_in_layout(False)
                continue
            row = payload  # type: ignore[assignment]
            is_overall = kind == "overall"
            exploratory = row["status"] == "exploratory" and not is_overall
            label = "Overall" if is_overall else str(row["level"])
            if exploratory:
                label += f" {_EXPLORATORY_MARK}"
            ax_left.text(
                0.0 if is_overall else 0.06,
                y,
                label,
                va="center",
                fontweight="bold" if is_overall else "normal",
            )
            ax_left.text(1.0, y, f"{int(row['n'])}", va="center", ha="right")
            est = float(row["estimate"])
            lo, hi = float(row["ci_low"]), float(row["ci_high"])
            if not bool(row["estimable"]):
                reason = str(row["reason"]) if isinstance(row["reason"], str) else ""
                prefix = f"{_fmt(est)}; " if math.isfinite(est) else ""
                ax_right.text(
                    0.04,
                    y,
                    "\n".join(
                        textwrap.wrap(
                            f"{prefix}not estimable: {reason}", 44, max_lines=2, placeholder=" …"
                        )
                    ),
                    va="center",
                    fontsize=5.5,
                    color=_GREY,
                    style="italic",
                )
                if math.isfinite(est):
                    ax.plot([est], [y], marker="x", color=_GREY, ms=4, ls="none")
                continue
            ax_right.text(0.04, y, _estimate_text(row), va="center")
            if is_overall:
                h = 0.32
                ax.add_patch(
                    Polygon(
                        [(lo, y), (est, y + h), (hi, y), (est, y - h)],
                        closed=True,
                        facecolor=colour,
                        edgecolor=colour,
                    )
                )
                ax.axvline(est, color=colour, lw=0.6, ls=":", zorder=0)
            else:
                ax.plot([lo, hi], [y, y], color=colour, lw=1.0, solid_capstyle="butt")
                ax.plot(
                    [est],
                    [y],
                    marker="s",
                    ms=4,
                    ls="none",
                    markeredgecolor=colour,
                    markerfacecolor="white" if exploratory else colour,
                )
        if null_value is not None:
            ax.axvline(float(null_value), color="#999999", lw=0.6, ls="--", zorder=0)
        for s in ("left", "right", "top"):
            ax.spines[s].set_visible(False)
        ax.tick_params(axis="y", left=False, labelleft=False)
        level_txt = ""
        if "ci_level" in table.columns and table["ci_level"].notna().any():
            level_txt = f" ({100 * float(table['ci_level'].dropna().iloc[0]):g}% CI)"
        ax.set_xlabel(f"{estimate_label}{level_txt}")
        if any_exploratory:
            foot_mm = 5.0
            fig.get_layout_engine().set(rect=(0.0, foot_mm / height, 1.0, 1.0 - foot_mm / height))
            fig.text(
                0.01,
                0.005,
                f"{_EXPLORATORY_MARK} exploratory (post-hoc) subgroup: not pre-specified in the "
                "analysis plan; interpret as hypothesis-generating.",
                fontsize=6,
                color=_GREY,
                ha="left",
                va="bottom",
            )
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontsize=8)
    return fig


def multiclass_confusion_figure(
    matrix: pd.DataFrame,
    *,
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Confusion table of k classes: counts and row percentages (share of each reference class).

    Drawn from :meth:`~studyval.analysis.multiclass.MultiClassConfusion.matrix`
    (rows: reference standard, columns: predicted, in the order of the
    classes; a ``total`` margin row and column are ignored). Shading is the
    row share, so the diagonal reads as per-class sensitivity.

    Parameters
    ----------
    matrix : DataFrame
        Square table of counts, rows reference standard, columns predicted,
        the same labels in the same order on both axes.
    title : str, optional
        Panel title.
    width_mm : float, default 85
        Figure width (a single journal column).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    studyval.errors.StudyvalError
        Not a DataFrame, not square, different labels on the two axes,
        negative or non-integral counts, or a reference class without cases.

    """
    if not isinstance(matrix, pd.DataFrame):
        raise StudyvalError(f"matrix must be a pandas DataFrame, got {type(matrix).__name__}")
    m = matrix.drop(index="total", errors="ignore").drop(columns="total", errors="ignore")
    if m.shape[0] != m.shape[1] or m.shape[0] < 2:
        raise StudyvalError(f"matrix must be square with at least 2 classes, got shape {m.shape}")
    if [str(x) for x in m.index] != [str(x) for x in m.columns]:
        raise StudyvalError(
            "matrix must have the same classes, in the same order, on rows (reference) and "
            f"columns (predicted); got {list(m.index)} and {list(m.columns)}"
        )
    counts = m.to_numpy(dtype=float)
    if (counts < 0).any() or not np.all(counts == np.round(counts)):
        raise StudyvalError("matrix must hold non-negative whole-number counts")
    row_sums = counts.sum(axis=1, keepdims=True)
    if (row_sums == 0).any():
        i = int(np.flatnonzero(row_sums[:, 0] == 0)[0])
        raise StudyvalError(f"reference class {m.index[i]!r} has no cases; row shares undefined")
    share = counts / row_sums
    k = counts.shape[0]
    labels = [str(x) for x in m.index]
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, width_mm * 0.9 + (6 if title else 0))
        ax = fig.add_subplot()
        ax.imshow(share, cmap="Greys", vmin=0, vmax=1.6)
        for i in range(k):
            for j in range(k):
                ax.text(
                    j,
                    i,
                    f"{int(counts[i, j])}\n({100 * share[i, j]:.0f}%)",
                    ha="center",
                    va="center",
                    fontsize=7 if k <= 4 else 6,
                    fontweight="bold" if i == j else "normal",
                )
        ax.set_xticks(range(k), labels, rotation=30 if max(map(len, labels)) > 8 else 0)
        ax.set_yticks(range(k), labels)
        ax.set_xlabel(str(m.columns.name or "Predicted").capitalize())
        ax.set_ylabel(str(m.index.name or "Reference standard").capitalize())
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        n = int(counts.sum())
        subtitle = f"n = {n}; cells: count (% of reference class)"
        ax.set_title(f"{title}\n{subtitle}" if title else subtitle, loc="left", fontsize=7)
    return fig
