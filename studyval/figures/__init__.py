"""Manuscript figures drawn from result tables (never from raw data).

One style for every figure (:mod:`studyval.figures.style`): fonts embedded,
journal column widths, a colour-blind-safe palette that also reads in
greyscale, deterministic file bytes. One module per topic.
"""

from studyval.figures.agreement import bland_altman_figure, confusion_matrix_figure
from studyval.figures.calibration import calibration_figure, decision_curve_figure
from studyval.figures.competing_risks import calibration_groups_figure, cumulative_incidence_figure
from studyval.figures.discrimination import confusion_figure, roc_figure
from studyval.figures.flow import flow_figure
from studyval.figures.style import DOUBLE_COLUMN_MM, PALETTE, SINGLE_COLUMN_MM, save_figure, style
from studyval.figures.subgroups import forest_figure, multiclass_confusion_figure
from studyval.figures.survival import (
    calibration_horizon_figure,
    km_figure,
    time_dependent_auc_figure,
    zph_figure,
)

__all__ = [
    "DOUBLE_COLUMN_MM",
    "PALETTE",
    "SINGLE_COLUMN_MM",
    "bland_altman_figure",
    "calibration_figure",
    "calibration_groups_figure",
    "calibration_horizon_figure",
    "confusion_figure",
    "confusion_matrix_figure",
    "cumulative_incidence_figure",
    "decision_curve_figure",
    "flow_figure",
    "forest_figure",
    "km_figure",
    "multiclass_confusion_figure",
    "roc_figure",
    "save_figure",
    "style",
    "time_dependent_auc_figure",
    "zph_figure",
]
