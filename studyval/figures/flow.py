"""Participant flow diagrams (STARD 2015 item 19, TRIPOD+AI item 20a)."""

from __future__ import annotations

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from studyval.figures.style import DOUBLE_COLUMN_MM, RC, new_figure

__all__ = ["flow_figure"]


def flow_figure(stages: pd.DataFrame, *, width_mm: float = DOUBLE_COLUMN_MM) -> Figure:
    """STARD-style participant flow diagram from counts.

    Parameters
    ----------
    stages : DataFrame
        One row per box: ``key``, ``text`` (may hold line breaks), ``x`` (centre,
        as a fraction of the width), ``row`` (0 at the top), ``parent`` (key of
        the box the arrow comes from, or None) and ``side`` (True for boxes
        beside the main stream, such as exclusions, drawn shaded). A child in
        the same row as its parent gets a horizontal arrow; a child below gets
        a vertical arrow, or an elbow when it sits to one side (a fork).
    width_mm : float
        Figure width; the height follows from the number of text lines.
    """
    line_mm, pad_mm, gap_mm = 3.4, 2.6, 6.0
    box_w = 0.34 * width_mm
    lines = stages["text"].str.count("\n") + 1
    row_h = {
        int(r): float(lines[stages["row"] == r].max()) * line_mm + 2 * pad_mm
        for r in stages["row"].unique()
    }
    tops: dict[int, float] = {}
    y = gap_mm / 2
    for r in sorted(row_h):
        tops[r] = y
        y += row_h[r] + gap_mm
    height = y - gap_mm / 2
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, height)
        fig.set_layout_engine("none")
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(0, width_mm)
        ax.set_ylim(height, 0)
        ax.axis("off")
        geom: dict[str, tuple[float, float, float, float]] = {}  # cx, top, bottom, half-width
        for rec in stages.itertuples(index=False):
            r = int(rec.row)
            n_lines = rec.text.count("\n") + 1
            h = n_lines * line_mm + 2 * pad_mm
            top = tops[r] + (row_h[r] - h) / 2
            cx = float(rec.x) * width_mm
            geom[rec.key] = (cx, top, top + h, box_w / 2)
            face = "#efefef" if getattr(rec, "side", False) else "white"
            ax.add_patch(
                FancyBboxPatch(
                    (cx - box_w / 2, top),
                    box_w,
                    h,
                    boxstyle="round,pad=0,rounding_size=1.2",
                    linewidth=0.6,
                    edgecolor="black",
                    facecolor=face,
                )
            )
            ax.text(
                cx, top + h / 2, rec.text, ha="center", va="center", fontsize=7, linespacing=1.3
            )
        arrow = {
            "arrowstyle": "-|>",
            "lw": 0.6,
            "color": "black",
            "shrinkA": 0,
            "shrinkB": 0,
            "mutation_scale": 6,
        }
        for rec in stages.itertuples(index=False):
            parent = getattr(rec, "parent", None)
            if not parent or parent not in geom:
                continue
            px, ptop, pbot, phw = geom[parent]
            cx, ctop, cbot, chw = geom[rec.key]
            same_row = abs((ptop + pbot) / 2 - (ctop + cbot) / 2) < line_mm
            if same_row:
                sign = 1.0 if cx > px else -1.0
                ym = (ptop + pbot) / 2
                ax.annotate(
                    "", xy=(cx - sign * chw, ym), xytext=(px + sign * phw, ym), arrowprops=arrow
                )
            elif abs(px - cx) < 1e-6:
                ax.annotate("", xy=(cx, ctop), xytext=(px, pbot), arrowprops=arrow)
            else:
                ymid = pbot + (ctop - pbot) / 2
                ax.plot(
                    [px, px, cx], [pbot, ymid, ymid], color="black", lw=0.6, solid_capstyle="butt"
                )
                ax.annotate("", xy=(cx, ctop), xytext=(cx, ymid), arrowprops=arrow)
    return fig
