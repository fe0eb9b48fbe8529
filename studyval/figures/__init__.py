"""Manuscript figures drawn from result tables (never from raw data).

One style for every figure (:mod:`studyval.figures.style`): fonts embedded,
journal column widths, a colour-blind-safe palette that also reads in
greyscale, deterministic file bytes. One module per topic.
"""

from studyval.figures.discrimination import confusion_figure, roc_figure
from studyval.figures.flow import flow_figure
from studyval.figures.style import DOUBLE_COLUMN_MM, PALETTE, SINGLE_COLUMN_MM, save_figure, style

__all__ = [
    "DOUBLE_COLUMN_MM",
    "PALETTE",
    "SINGLE_COLUMN_MM",
    "confusion_figure",
    "flow_figure",
    "roc_figure",
    "save_figure",
    "style",
]
