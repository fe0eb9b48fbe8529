"""Participant flow diagrams (STARD 2015 item 19, TRIPOD+AI item 20a)."""

from __future__ import annotations

import re

import matplotlib
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import FancyBboxPatch
from matplotlib.textpath import TextToPath

from studyval.figures.style import DOUBLE_COLUMN_MM, RC, new_figure

__all__ = ["flow_figure"]

#: Font size of the box text (points), the smallest it may shrink to, and line spacing.
FONT_PT, MIN_FONT_PT, LINE_SPACING = 7.0, 5.5, 1.3
#: Height of one line of box text at FONT_PT, in mm (a little more than the line spacing).
LINE_MM = 3.4
_MM_PER_PT = 25.4 / 72


def _text_width_mm(text: str, size: float) -> float:
    """Width of one line of text at ``size`` points, in the current rc font, in mm."""
    width, _, _ = TextToPath().get_text_width_height_descent(
        text, FontProperties(size=size), ismath=False
    )
    return width * _MM_PER_PT


#: Spaces that never break: "n = 12", and a count after its label ("quality: 5").
_KEEP_TOGETHER = re.compile(r"(?<=\S) (?==)|(?<==) (?=\d)|(?<=:) (?=\d[\d,.]*(?:\s|$))")


def _wrap(text: str, size: float, max_mm: float) -> list[str]:
    lines: list[str] = []
    for paragraph in _KEEP_TOGETHER.sub("\u00a0", text).split("\n"):
        current = ""
        for word in paragraph.split(" "):
            trial = f"{current} {word}" if current else word
            if not current or _text_width_mm(trial, size) <= max_mm:
                current = trial
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return [ln.replace("\u00a0", " ") for ln in lines]


def fit_box_text(text: str, max_mm: float) -> tuple[str, float]:
    """``text`` wrapped at word boundaries so that every line fits ``max_mm``, and its size.

    Lines are wrapped at the box font size (7 pt); only when a single word is
    wider than the box does the size shrink, in half points, down to 5.5 pt.
    Wrapped lines keep the line breaks the text already had.
    """
    size = FONT_PT
    while True:
        lines = _wrap(text, size, max_mm)
        if size <= MIN_FONT_PT or all(_text_width_mm(ln, size) <= max_mm for ln in lines):
            return "\n".join(lines), size
        size -= 0.5


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
        Figure width; the height follows from the number of text lines.  Box
        text wider than its box is wrapped at word boundaries (and shrunk to
        no less than 5.5 pt only when one word is wider than the box), so it
        always stays inside (:func:`fit_box_text`).
    """
    pad_mm, gap_mm, pad_x_mm = 2.6, 6.0, 2.0
    box_w = 0.34 * width_mm
    with matplotlib.rc_context(RC):  # the box text is measured in the figure's font
        fitted = [fit_box_text(str(t), box_w - 2 * pad_x_mm) for t in stages["text"]]
    stages = stages.assign(text=[t for t, _ in fitted], size=[z for _, z in fitted]).reset_index(
        drop=True
    )

    def box_height(text: str, size: float) -> float:
        return (text.count("\n") + 1) * LINE_MM * size / FONT_PT + 2 * pad_mm

    heights = pd.Series([box_height(t, z) for t, z in fitted])
    line_mm = LINE_MM
    row_h = {int(r): float(heights[stages["row"] == r].max()) for r in stages["row"].unique()}
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
            h = box_height(rec.text, rec.size)
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
                cx,
                top + h / 2,
                rec.text,
                ha="center",
                va="center",
                fontsize=rec.size,
                linespacing=LINE_SPACING,
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
