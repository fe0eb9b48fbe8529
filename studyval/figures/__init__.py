"""Manuscript figures drawn from result tables (never from raw data).

One style for every figure (:mod:`studyval.figures.style`): fonts embedded,
journal column widths, a colour-blind-safe palette that also reads in
greyscale, deterministic file bytes. One module per topic.
"""

from studyval.figures.agreement import bland_altman_figure, confusion_matrix_figure
from studyval.figures.calibration import calibration_figure, decision_curve_figure
from studyval.figures.discrimination import confusion_figure, roc_figure
from studyval.figures.flow import flow_figure
from studyval.figures.style import DOUBLE_COLUMN_MM, PALETTE, SINGLE_COLUMN_MM, save_figure, style
from studyval.figures.subgroups import forest_figure, multiclass_confusion_figure

__all__ = [
    "DOUBLE_COLUMN_MM",
    "PALETTE",
    "SINGLE_COLUMN_MM",
    "bland_altman_figure",
    "calibration_figure",
    "confusion_figure",
    "confusion_matrix_figure",
    "decision_curve_figure",
    "flow_figure",
    "forest_figure",
    "multiclass_confusion_figure",
    "roc_figure",
    "save_figure",
    "style",
]
