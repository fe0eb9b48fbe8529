"""Figures of ovcf-chronicity (NCT07306858): the diagnostic-accuracy type's, in this study's words.

:func:`figure_specs` is the protocol's ``figure_specs``: the figures of the
study type (:func:`studyval.figures.diagnostic_accuracy.figure_specs`: the
STARD flow diagram, the ROC curves and confusion matrices of both test sets,
and, for the primary set, the calibration curves, decision curves and subgroup
forest plots) with this study's :data:`WORDING`: patients with an
osteoporotic vertebral compression fracture, the index vertebra (one per
patient) as the unit of the primary analysis, the internal set held out at
the development centre, and the internal set drawn left of the external one
in the flow diagram. Nothing here computes a statistic.
"""

from __future__ import annotations

import pandas as pd

from studyval.figures import diagnostic_accuracy as study_type
from studyval.figures.spec import FigureSpec
from studyval.plan import AnalysisPlan

__all__ = ["WORDING", "figure_specs", "flow_stages"]

#: This study's words for the type's captions and flow boxes.
WORDING = study_type.Wording(
    set_words={
        "external": "external validation set",
        "internal": "internal test set (development centre, held-out patients)",
    },
    unit="patients",
    population="patients with an osteoporotic vertebral compression fracture",
    population_box="Patients with OVCF",
    cases="vertebrae",
    primary_cases="index vertebra (one per patient; {n})",
    score="predicted probability",
    resampled=" of patients",
    analysed_box="Analysed (index vertebra)",
    flow_columns=("internal", "external"),
)


def figure_specs(tables: dict[str, pd.DataFrame], plan: AnalysisPlan) -> list[FigureSpec]:
    """The study type's figures with this study's :data:`WORDING`."""
    return study_type.figure_specs(tables, plan, words=WORDING)


def flow_stages(flow: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    """Boxes of the STARD flow diagram: the study type's, with this study's :data:`WORDING`."""
    return study_type.flow_stages(flow, plan, words=WORDING)
