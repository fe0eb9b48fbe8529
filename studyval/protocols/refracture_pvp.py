"""refracture-pvp (NCT06379243): a Cox model for re-fracture within 1 year after PVP/PKP.

The protocol: patients with an acute osteoporotic vertebral compression
fracture (1-3 fractured vertebrae, aged 50-90) treated by percutaneous
vertebroplasty (PVP) or kyphoplasty (PKP); outcome a new fracture of a
non-operated vertebra, evaluated at 1 year; predictors clinical risk factors
and preoperative quantitative MRI (IDEAL-IQ PDFF and R2*); 560 participants.

A study of the prognostic-model type (:mod:`studyval.steps.prognostic`): the
plan's Cox models are developed on all included patients and validated
internally by Harrell's bootstrap optimism correction; deaths before a
re-fracture are a competing event (cause-specific Cox model, deaths censored
in the Kaplan-Meier based measures, controls in the time-dependent AUC); the
report says so and counts the deaths. Since plan 1.1 (issue 16) the absolute
risk accounts for death: the Aalen-Johansen incidence of re-fracture beside one
minus Kaplan-Meier, and the risk predicted from cause-specific Cox models of
both re-fracture and death, with its competing-risk calibration.

The study is an instance of the prognostic-model study type
(:mod:`studyval.study_types.prognostic_model`): its plan's ``cohort`` section
holds the registry's eligibility bounds (age 50-90, 1-3 fractured vertebrae,
checked by :func:`studyval.study_cohort.check_cohort_rules`) and the baseline
table, its ``extra`` the exclusion reasons in words; the participant flow and
the baseline table are the type's steps. What is this study's own is here:
the follow-up checks against the surgery and follow-up dates, the TRIPOD+AI
checklist text; its figures are in :mod:`studyval.figures.refracture_pvp`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd

from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations
from studyval.errors import Violation
from studyval.figures.refracture_pvp import figure_specs
from studyval.plan import PredictionModelPlan
from studyval.protocol import flow_count
from studyval.steps import competing_risks as crsteps
from studyval.steps import prognostic
from studyval.study_cohort import check_cohort_rules, included_rows
from studyval.study_types import prognostic_model

__all__ = [
    "ALWAYS",
    "PROTOCOL",
    "REGISTRY",
    "SLUG",
    "check_eligibility",
    "checklist",
    "flow_counts",
    "needed_columns",
]

SLUG = "refracture-pvp"
#: Columns an included patient must have (predictors and follow-up).
REQUIRED_INCLUDED = (
    "bmd_t_score",
    "pdff_percent",
    "r2star_per_s",
    "cement_leakage",
    "cement_volume_ml",
    "procedure",
    "followup_end_date",
    "followup_days",
    "event",
)


def needed_columns(plan: PredictionModelPlan) -> dict[str, str]:
    """Clinical columns the dictionary lets be left out but the plan uses: column -> use, in words.

    The study type's (:func:`studyval.study_types.prognostic_model.needed_columns`:
    the models' covariates, the follow-up time and the event code) and the end
    of follow-up date (this study's follow-up check). The dictionary makes them
    optional because an excluded patient may lack them; the analyses of the
    included patients need every one.

    Parameters
    ----------
    plan : PredictionModelPlan
        The plan being run.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    needs = prognostic_model.needed_columns(plan)
    needs["followup_end_date"] = (
        "follow-up check (followup_days must equal the days from surgery_date to it)"
    )
    return needs


def check_eligibility(
    clinical: pd.DataFrame, plan: PredictionModelPlan, *, label: str
) -> list[Violation]:
    """Protocol rules that span columns of the clinical table (included patients).

    * the columns the dictionary lets be left out but the plan uses are present
      (:func:`needed_columns`); where one is absent, only that is reported (the
      other rules read it);
    * the plan's ``cohort.rules`` (the registry's age 50-90 and 1-3 fractured
      vertebrae; else set exclusion_reason), by
      :func:`studyval.study_cohort.check_cohort_rules`;
    * predictors and follow-up complete;
    * follow-up time >= 0 days, and 0 only with an event: a re-fracture or a
      death on the day of surgery (``followup_days`` 0, ``event`` 1 or 2) is
      real and is analysed as R's ``survival::coxph`` does (an event at time 0,
      with every patient at risk), while a patient censored on the day of
      surgery (``event`` 0) was never followed and is an error (the same rule
      as cirrhosis-sarcopenia's);
    * ``followup_end_date`` not before ``surgery_date``; ``followup_days``
      equal to the days between the two dates.
    """
    absent = absent_column_violations(clinical, needed_columns(plan), label=label)
    if absent:
        return absent
    problems = check_cohort_rules(clinical, plan.cohort, label=label)
    inc = included_rows(clinical, plan.cohort)

    def flag(mask: pd.Series, col: str, message: Callable[[Any], str]) -> None:
        for idx in clinical.index[(inc & mask.fillna(False)).to_numpy(bool)]:
            val = clinical.at[idx, col]
            problems.append(Violation(label, col, int(idx) + 2, message(idx), str(val)))

    for col in REQUIRED_INCLUDED:
        flag(
            clinical[col].isna(),
            col,
            lambda _, col=col: (
                f"missing for an included patient; {col} is required "
                "(or set exclusion_reason to incomplete_preoperative_data)"
            ),
        )
    days = clinical["followup_days"].astype("Float64")
    flag(
        (days == 0) & (clinical["event"].astype("Float64") == 0),
        "followup_days",
        lambda _: (
            "an included patient censored on the day of surgery (followup_days 0, event 0) was "
            "never followed: give the date of the last contact after surgery as followup_end_date "
            "(a re-fracture or a death on the day of surgery, event 1 or 2, is accepted with "
            "followup_days 0)"
        ),
    )
    gap = (clinical["followup_end_date"] - clinical["surgery_date"]).dt.days
    flag(
        gap < 0,
        "followup_end_date",
        lambda i: (
            f"followup_end_date is before surgery_date ({clinical.at[i, 'surgery_date']:%Y-%m-%d}); "
            "dates in the wrong order"
        ),
    )
    flag(
        (gap >= 0) & (days != gap.astype("Float64")),
        "followup_days",
        lambda i: (
            f"followup_days differs from the {int(gap[i])} days between surgery_date and "
            "followup_end_date"
        ),
    )
    return problems


# ----------------------------------------------------------------------------- steps


def flow_counts(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """Participant flow and outcome counts: ``stage, group, n, detail`` (the type's flow)."""
    return prognostic_model.flow_counts(cohort, plan)


#: The steps a plan of this protocol may name: the prognostic-model type's (its flow and
#: baseline steps among them) and the absolute risk with death competing
#: (:data:`studyval.steps.competing_risks.ABSOLUTE_RISK`: the Aalen-Johansen incidence against
#: one minus Kaplan-Meier, and the risk predicted from cause-specific Cox models of re-fracture
#: and death; plan 1.1, issue 16).
REGISTRY = prognostic.REGISTRY.including(prognostic_model.OWN, crsteps.ABSOLUTE_RISK, name=SLUG)
#: Steps every run has (the plan's endpoints name the rest).
ALWAYS = prognostic_model.ALWAYS

# ----------------------------------------------------------------------------- report pieces


def checklist(
    plan: PredictionModelPlan, tables: dict[str, pd.DataFrame], cohort: Cohort
) -> pd.DataFrame:
    """The TRIPOD+AI 2024 checklist filled from the plan and the tables."""
    return tripod_ai_2024(plan, tables, content=_tripod_content(plan, tables, cohort))


def _tripod_content(
    plan: PredictionModelPlan, t: dict[str, pd.DataFrame], cohort: Cohort
) -> dict[str, tuple[str, str]]:
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]
    flow = t["flow"]

    def n(stage: str, group: str | None = None) -> int:
        return flow_count(flow, stage, column="n", group=group)

    o = plan.outcome
    fu = flow[flow["stage"] == "follow_up"].set_index("group")["detail"]
    perf = t["optimism"]
    prim = perf[perf["model"] == plan.primary_model].set_index("measure")
    cs = t["cox_fit"].set_index("model")
    excluded_reasons = "; ".join(
        f"{r.detail} {r.n}" for r in flow[flow["stage"] == "excluded_reason"].itertuples() if r.n
    )
    return {
        "5a": (
            "Prospective cohort of patients treated with PVP/PKP (registry NCT06379243; whether "
            "recruitment was consecutive is to be confirmed); development data only, internal "
            "validation by bootstrap.",
            "Study and registration",
        ),
        "5b": (
            f"Surgery dates {inc['surgery_date'].min():%Y-%m-%d} to {inc['surgery_date'].max():%Y-%m-%d}; "
            f"end of follow-up {inc['followup_end_date'].max():%Y-%m-%d}.",
            "Participant flow",
        ),
        "6a": (
            ", ".join(str(s) for s in inc["site"].unique())
            + " (the centre of the data; the registry also lists collaborating hospitals: confirm "
            "whether they recruit).",
            "Study and registration",
        ),
        "6b": (
            "Inclusion: osteoporotic thoracolumbar vertebral fracture, acute fracture on MRI treated by "
            f"PVP/PKP, {prognostic_model.rule_bounds(plan, 'n_fractured_vertebrae')} fractured "
            f"vertebrae, age {prognostic_model.rule_bounds(plan, 'age')}. Exclusion: severe scoliosis, prior "
            "vertebroplasty or spinal fixation; spinal infection or malignancy; mental disease, "
            "cognitive impairment or critical illness.",
            "Participant flow",
        ),
        "7": (
            "Clinical table validated against data dictionary refracture-pvp (types, ranges, levels, "
            "date order, follow-up consistency); direct identifiers removed before analysis.",
            "Appendix: data dictionary",
        ),
        "8c": (
            "Not stated in the registry; to confirm (outcome assessors blinded to PDFF/R2*?).",
            "Protocol",
        ),
        "9b": (
            "Clinical factors from the record; PDFF and R2* from preoperative IDEAL-IQ MRI (region and "
            "scanner to confirm); cement leakage and volume from the operative record and postoperative imaging.",
            "Appendix: data dictionary",
        ),
        "11": (
            f"Complete-case analysis: {n('excluded_reason', 'incomplete_preoperative_data')} patient(s) with a "
            "missing preoperative predictor excluded (no imputation); no missing values among included patients.",
            "Participant flow",
        ),
        "12a": (
            f"All {n('included')} included patients develop the model; internal validation by "
            f"{plan.sets.n_bootstrap} bootstrap resamples with refitting (no data split).",
            "Discrimination",
        ),
        "12b": (
            "Continuous predictors entered linearly (per unit), categorical as indicators against the "
            "first level; no selection, no transformation.",
            "Cox model",
        ),
        "12c": (
            "Cox proportional-hazards model (Efron ties) for the cause-specific hazard of re-fracture "
            "(deaths censored); all pre-specified predictors; PH checked with scaled Schoenfeld residuals; "
            "Harrell's bootstrap optimism correction.",
            "Cox model",
        ),
        "12d": (
            "One centre in the data: no clustering across centres (confirm that the collaborating "
            "hospitals the registry lists did not recruit).",
            "Study and registration",
        ),
        "12e": (
            "Harrell's and Uno's C, time-dependent AUC (IPCW) at 1 year, Brier score and IPA at 1 year, "
            "calibration at 1 year (grouped Kaplan-Meier, smooth curve, ICI/E50/E90), decision curve."
            + (
                " With death competing (plan 1.1): Aalen-Johansen incidence beside 1 - Kaplan-Meier, "
                "and the risk predicted from cause-specific Cox models of re-fracture and death with "
                "O/E, Brier score, IPA and calibration slope against Aalen-Johansen."
                if "cs_absolute_risk" in t
                else ""
            ),
            "Discrimination",
        ),
        "12f": (
            "No updating or recalibration (development study). The fitted coefficients are reported, "
            "and beside them the model uniformly shrunk by its optimism-corrected calibration slope "
            "with the baseline hazard re-estimated (the version the plan specifies for new patients).",
            "Cox model",
        ),
        "12g": (
            "Risk = 1 - S0(1 year)^exp(linear predictor), studyval Cox implementation; the results "
            "bundle keeps the coefficients and the baseline survival as tables, so that the model "
            "can be applied to new patients.",
            "Cox model",
        ),
        "13": (
            "No resampling or weighting for the event rate (survival model uses all follow-up).",
            "Cox model",
        ),
        "14": ("Performance by sex and age not pre-specified by the registry.", "Discrimination"),
        "15": (
            "Output: predicted probability of re-fracture by 1 year; risk groups at "
            + ", ".join(f"{c:g}" for c in plan.extra.get("risk_groups", []))
            + " fixed in the plan (illustrative, not clinical thresholds).",
            "Kaplan-Meier by risk group",
        ),
        "16": ("No separate evaluation data (internal validation only).", "Discrimination"),
        "18f": (
            "Analysis code: studyval (version and git commit in the provenance section).",
            "Provenance",
        ),
        "20a": (
            f"Screened {n('screened')}, excluded {n('excluded')} ({excluded_reasons}), included {n('included')}; "
            f"by 1 year: {n('by_horizon', o.event_codes[o.cause])} re-fractures, "
            + ", ".join(f"{n('by_horizon', o.event_codes[c])} deaths" for c in o.competing)
            + f", {n('by_horizon', 'censored before the horizon')} censored before 1 year; median follow-up "
            f"{fu.get('median (reverse Kaplan-Meier)', '')} days (reverse KM).",
            "Participant flow",
        ),
        "20b": ("Baseline table by re-fracture status at 1 year.", "Baseline characteristics"),
        "20c": ("Not applicable: development data only.", "Baseline characteristics"),
        "21": (
            "; ".join(
                f"{m}: {int(r.n)} patients, {int(r.n_events)} events" for m, r in cs.iterrows()
            )
            + ".",
            "Cox model",
        ),
        "22": (
            "Full coefficients and baseline survival at 1 year in the report and bundle.",
            "Cox model",
        ),
        "23a": (
            f"Harrell's C {prim.loc['harrell_c', 'apparent']:.3f} apparent, "
            f"{prim.loc['harrell_c', 'corrected']:.3f} optimism-corrected; AUC at 1 year "
            f"{prim.loc['auc_horizon', 'corrected']:.3f} corrected; calibration slope "
            f"{prim.loc['calibration_slope', 'corrected']:.3f} corrected. No performance by "
            "subgroup is reported (to complete).",
            "Discrimination",
        ),
        "23b": ("Single centre: not applicable.", "Discrimination"),
        "24": ("No updating.", "Cox model"),
        "27a": (
            "A missing predictor prevents a prediction (complete-case model); no imputation rule is provided.",
            "Cox model",
        ),
    }


#: This protocol, as the shared pipeline sees it: the study type's, with this study's eligibility
#: check, checklist, figures and step registry.
PROTOCOL = replace(
    prognostic_model.study_protocol(SLUG, steps=REGISTRY),
    check_eligibility=check_eligibility,
    checklist=checklist,
    figure_specs=figure_specs,
)
