"""Figures of refracture-pvp (NCT06379243): the prognostic-model type's, in this study's words.

:func:`figure_specs` is the protocol's ``figure_specs``: the figures of the
study type (:func:`studyval.figures.prognostic_model.figure_specs`: flow,
proportional-hazards check, calibration at 1 year, cumulative incidence by
risk group, decision curve) with this study's :data:`WORDING`: patients
treated with PVP/PKP, the model terms and the time axis in words, deaths (the
competing event) censored in the Kaplan-Meier based figures. The apparent
discrimination figure is left out: the report gives discrimination as a table
(apparent and optimism-corrected). Nothing here computes a statistic.
"""

from __future__ import annotations

import pandas as pd

from studyval.figures import prognostic_model as study_type
from studyval.figures.spec import FigureSpec
from studyval.plan import PredictionModelPlan

__all__ = ["TERM_LABELS", "WORDING", "figure_specs", "flow_stages"]

#: Short labels of the model terms (figures).
TERM_LABELS = {
    "age": "Age (years)",
    "sex[M]": "Male",
    "bmd_t_score": "DXA T-score",
    "n_fractured_vertebrae": "Fractured vertebrae",
    "cement_leakage": "Cement leakage",
    "cement_volume_ml": "Cement volume (mL)",
    "procedure[PKP]": "PKP (vs PVP)",
    "pdff_percent": "PDFF (%)",
    "r2star_per_s": "R2* (1/s)",
}

#: This study's words for the type's captions and flow boxes.
WORDING = study_type.Wording(
    unit="patients",
    population="patients treated with PVP/PKP",
    term_labels=TERM_LABELS,
    time_label="Days since surgery",
    competing_censored="deaths",
    risk_group_title="Predicted 1-year risk",
    omit=("discrimination",),
)


def figure_specs(tables: dict[str, pd.DataFrame], plan: PredictionModelPlan) -> list[FigureSpec]:
    """The study type's figures with this study's :data:`WORDING`."""
    return study_type.figure_specs(tables, plan, words=WORDING)


def flow_stages(flow: pd.DataFrame, plan: PredictionModelPlan) -> pd.DataFrame:
    """Boxes of the participant flow diagram: the study type's, with this study's :data:`WORDING`."""
    return study_type.flow_stages(flow, plan, words=WORDING)
