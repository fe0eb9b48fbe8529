"""ovcf-chronicity (NCT07306858): what is this study's own, on top of the diagnostic-accuracy steps.

The protocol: a CT deep-learning classifier tells an acute from a chronic
osteoporotic vertebral compression fracture; the reference standard is MRI
within 14 days; development at CQMU, external validation at a second centre;
primary outcome the AUC; secondary sensitivity, specificity, accuracy, PPV,
NPV, ROC curves and confusion matrices; sample size 276 (138 + 138) from
sensitivity 0.90, alpha 0.05, allowable error 0.05 (Buderer).

Unit of the primary analysis: the *index vertebra* of each patient (one per
patient, so the DeLong and binomial methods' independence holds; the plan's
``sets.primary_cases``). Analyses of all fractured vertebrae with
patient-clustered intervals are the plan's ``clustered_auc`` step.

The analyses are the steps of the diagnostic-accuracy study type
(:mod:`studyval.steps.diagnostic`: AUC, ROC, accuracy, comparisons,
calibration, decision curves, subgroups, clustered AUC, sample size) that the
plan's ``endpoints[].analyses`` name. This module adds only what is the
study's own: its eligibility rules, the participant flow and the baseline
table (steps ``flow`` and ``baseline``), the derived subgroup variables (age
band, WHO bone-density category, vertebral region), the STARD items filled
from its dates, and its imaging chain. Its figures are
:mod:`studyval.figures.ovcf_chronicity`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from studyval.analysis.descriptive import baseline_table
from studyval.checklists import stard_2015
from studyval.cohort import (
    Cohort,
    absent_column_violations,
    failure_reason_summary,
    join_predictions,
)
from studyval.errors import Violation
from studyval.figures.ovcf_chronicity import figure_specs
from studyval.plan import AnalysisPlan
from studyval.protocol import StudyProtocol, steps_analysis
from studyval.steps import diagnostic
from studyval.steps.common import BASELINE, FLOW
from studyval.steps.registry import StepContext, StepRegistry

__all__ = [
    "PROTOCOL",
    "REGISTRY",
    "SLUG",
    "analyse",
    "baseline",
    "check_eligibility",
    "checklist",
    "derive_subgroup_variables",
    "figure_specs",
    "flow_counts",
    "join",
    "needed_columns",
]

SLUG = "ovcf-chronicity"
SETS = ("external", "internal")
MAX_CT_MRI_DAYS = 14
MIN_AGE = 50


def check_eligibility(clinical: pd.DataFrame, plan: AnalysisPlan, *, label: str) -> list[Violation]:
    """Protocol rules that span rows or columns of the clinical table.

    * one site, age, sex and exclusion reason per patient;
    * exactly one index vertebra per patient;
    * an included patient (``exclusion_reason == "none"``) is >= 50 years old
      and had the MRI less than 14 days from the CT (either order);
    * ``dxa_t_score`` is present as a column (its cells may be empty): the
      baseline table and the plan's ``bmd_category`` subgroup use it.
    """
    problems = absent_column_violations(clinical, needed_columns(plan), label=label)
    by_patient = clinical.groupby("patient_id", observed=True, sort=False)
    for col in ("site", "age", "sex", "exclusion_reason"):
        n_distinct = by_patient[col].nunique(dropna=False)
        for pid in n_distinct.index[n_distinct > 1]:
            idx = clinical.index[clinical["patient_id"] == pid]
            problems.append(
                Violation(
                    label,
                    col,
                    int(idx[1]) + 2,
                    f"patient {pid} has {n_distinct[pid]} different values; it must be constant within a patient",
                )
            )
    n_index = by_patient["index_vertebra"].sum()
    for pid in n_index.index[n_index != 1]:
        idx = clinical.index[clinical["patient_id"] == pid]
        problems.append(
            Violation(
                label,
                "index_vertebra",
                int(idx[0]) + 2,
                f"patient {pid} has {int(n_index[pid])} index vertebrae; exactly one is required",
            )
        )
    included = clinical["exclusion_reason"] == "none"
    young = included & (clinical["age"] < MIN_AGE)
    for idx in clinical.index[young.fillna(False)]:
        problems.append(
            Violation(
                label,
                "age",
                int(idx) + 2,
                f"included patient is younger than {MIN_AGE}; set exclusion_reason to age_under_50",
                str(clinical.at[idx, "age"]),
            )
        )
    gap = (clinical["mri_date"] - clinical["ct_date"]).dt.days.abs()
    late = included & (gap >= MAX_CT_MRI_DAYS)
    for idx in clinical.index[late.fillna(False)]:
        problems.append(
            Violation(
                label,
                "mri_date",
                int(idx) + 2,
                f"included case has CT and MRI {int(gap[idx])} days apart (must be < {MAX_CT_MRI_DAYS}); "
                "set exclusion_reason to ct_mri_interval_14d_or_more",
            )
        )
    return problems


def needed_columns(plan: AnalysisPlan) -> dict[str, str]:
    """Optional clinical columns the plan's analyses use: column -> what uses it, in words.

    Parameters
    ----------
    plan : AnalysisPlan
        The plan being run.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    uses = ["baseline table (DXA T-score by class and by site)"]
    if any(sg.variable == "bmd_category" for sg in plan.subgroups):
        uses.append("bmd_category subgroup (WHO category of the lowest DXA T-score)")
    return {"dxa_t_score": " and the ".join(uses)}


# ----------------------------------------------------------------------------- flow


def flow_counts(cohort: Cohort, plan: AnalysisPlan) -> pd.DataFrame:
    """Participant-flow counts for the STARD diagram.

    Returns a tidy table with columns ``stage, set, site, group, n_patients,
    n_cases, detail``: screened; excluded by reason; included by site and
    class; split by patient; for each evaluation set the index-test failures
    of the primary model (``detail``: each failure category with its count,
    ``"image unreadable (2); segmentation failed (1)"``) and the analysed
    patients by class.
    """
    clin = cohort.clinical
    pos, neg = plan.outcome.positive, plan.outcome.negative
    rows: list[dict[str, object]] = []

    def add(
        stage: str,
        frame: pd.DataFrame,
        *,
        set_: str = "",
        site: str = "",
        group: str = "",
        detail: str = "",
    ) -> None:
        rows.append(
            {
                "stage": stage,
                "set": set_,
                "site": site,
                "group": group,
                "n_patients": int(frame["patient_id"].nunique()),
                "n_cases": len(frame),
                "detail": detail,
            }
        )

    add("screened", clin)
    excluded = clin[clin["exclusion_reason"] != "none"]
    add("excluded", excluded)
    for reason in clin["exclusion_reason"].cat.categories:
        if reason == "none":
            continue
        add("excluded_reason", excluded[excluded["exclusion_reason"] == reason], group=str(reason))
    included = clin[clin["exclusion_reason"] == "none"]
    add("included", included)
    idx_incl = included[included["index_vertebra"].astype(bool)]
    for site in clin["site"].cat.categories:
        for cls in (pos, neg):
            sub_p = idx_incl[(idx_incl["site"] == site) & (idx_incl[plan.outcome.variable] == cls)]
            pids = set(sub_p["patient_id"])
            add(
                "included_site_class",
                included[included["patient_id"].isin(pids)],
                site=str(site),
                group=cls,
            )
    preds = cohort.predictions
    primary = preds[preds["model_name"] == plan.primary_model]
    split_of = primary.drop_duplicates("patient_id").set_index("patient_id")["split"].astype(str)
    for split in ("development", "internal", "external"):
        pids = set(split_of.index[split_of == split])
        add("split", included[included["patient_id"].isin(pids)], set_=split)
    for set_ in SETS:
        in_set = primary[(primary["split"] == set_) & primary["index_vertebra"].astype(bool)]
        failed = in_set[in_set["status"] == "failed"]
        add(
            "index_test_failed",
            failed,
            set_=set_,
            detail=failure_reason_summary(failed["failure_reason"]),
        )
        ok = in_set[in_set["status"] == "ok"]
        for cls in (pos, neg):
            add("analysed", ok[ok[plan.outcome.variable] == cls], set_=set_, group=cls)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- derived variables

REGIONS = {
    **{f"T{i}": "thoracic (T1-T10)" for i in range(1, 11)},
    **{lvl: "thoracolumbar (T11-L2)" for lvl in ("T11", "T12", "L1", "L2")},
    **{lvl: "lumbar (L3-L5)" for lvl in ("L3", "L4", "L5")},
}
DERIVED_LEVELS = {
    "age_band": ["50-64", "65-79", ">=80"],
    "bmd_category": ["osteoporosis", "osteopenia", "normal"],
    "vertebral_region": ["thoracic (T1-T10)", "thoracolumbar (T11-L2)", "lumbar (L3-L5)"],
}


def derive_subgroup_variables(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the plan's derived subgroup variables (definitions in plan.yml).

    ``age_band``: 50-64, 65-79, >=80 years. ``bmd_category`` (WHO): T <= -2.5
    osteoporosis, -2.5 < T < -1.0 osteopenia, T >= -1.0 normal; missing stays
    missing (its own level in the tables, never tested). ``vertebral_region``:
    thoracic T1-T10, thoracolumbar T11-L2, lumbar L3-L5.
    """
    out = frame.copy()
    age = out["age"].astype(float)
    out["age_band"] = pd.Categorical(
        np.select(
            [age < 65, age < 80], DERIVED_LEVELS["age_band"][:2], DERIVED_LEVELS["age_band"][2]
        ),
        categories=DERIVED_LEVELS["age_band"],
    )
    t = out["dxa_t_score"].astype(float)
    bmd = np.select([t <= -2.5, t < -1.0, t >= -1.0], DERIVED_LEVELS["bmd_category"], default="")
    out["bmd_category"] = pd.Categorical(
        np.where(bmd == "", None, bmd), categories=DERIVED_LEVELS["bmd_category"]
    )
    out["vertebral_region"] = pd.Categorical(
        out["vertebral_level"].astype(str).map(REGIONS),
        categories=DERIVED_LEVELS["vertebral_region"],
    )
    return out


def join(
    clinical: pd.DataFrame,
    predictions: pd.DataFrame,
    plan: AnalysisPlan,
    *,
    clinical_label: str,
    predictions_label: str,
) -> Cohort:
    """:func:`studyval.cohort.join_predictions`, then the derived subgroup variables.

    The plan's subgroup steps read ``age_band``, ``bmd_category`` and
    ``vertebral_region`` from the cohort's prediction table like any other column.
    """
    cohort = join_predictions(
        clinical,
        predictions,
        plan,
        clinical_label=clinical_label,
        predictions_label=predictions_label,
    )
    return Cohort(
        clinical=cohort.clinical, predictions=derive_subgroup_variables(cohort.predictions)
    )


# ----------------------------------------------------------------------------- own steps

_OWN = StepRegistry(SLUG)


@_OWN.step("flow", produces=[FLOW])
def _flow_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Participant flow (STARD item 19)."""
    ctx.progress("participant flow and baseline characteristics")
    return {"flow": flow_counts(cohort, plan)}


@_OWN.step("baseline", produces=[BASELINE])
def baseline(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Baseline characteristics of the included patients (index vertebra), by class and by site.

    Age, DXA T-score, fractured vertebrae per patient, sex, index level
    (thoracolumbar or other) and site (by class) or class (by site).
    """
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]
    per_patient = inc[inc["index_vertebra"].astype(bool)].copy()
    n_vert = inc.groupby("patient_id", observed=True).size()
    per_patient["fractured_vertebrae"] = per_patient["patient_id"].map(n_vert).astype(float)
    per_patient["index_level_region"] = pd.Categorical(
        np.select(
            [per_patient["vertebral_level"].astype(str).isin(["T11", "T12", "L1", "L2"])],
            ["thoracolumbar (T11-L2)"],
            default="other",
        ),
        categories=["thoracolumbar (T11-L2)", "other"],
    )
    out = []
    for grouping, col in (("class", plan.outcome.variable), ("site", "site")):
        tab = baseline_table(
            per_patient,
            group=col,
            continuous=["age", "dxa_t_score", "fractured_vertebrae"],
            categorical=["sex", "index_level_region"]
            + (["site"] if col != "site" else [plan.outcome.variable]),
        )
        tab.insert(0, "grouping", grouping)
        out.append(tab)
    return {"baseline": pd.concat(out, ignore_index=True)}


#: The plan's steps: the diagnostic-accuracy study type and this study's own.
REGISTRY = diagnostic.REGISTRY.including(_OWN, name=SLUG)
#: Runs the steps every run has, then those the plan's endpoints name.
analyse = steps_analysis(REGISTRY, always=("flow", "baseline", "models", "sample_size"))


# ----------------------------------------------------------------------------- report pieces


def checklist(plan: AnalysisPlan, tables: dict[str, pd.DataFrame], cohort: Cohort) -> pd.DataFrame:
    """The STARD 2015 checklist filled from the plan and the tables."""
    return stard_2015(plan, tables, extra=_stard_extra(cohort))


def _stard_extra(cohort: Cohort) -> dict[str, str]:
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]
    first, last = inc["ct_date"].min(), inc["ct_date"].max()
    gap = (inc["mri_date"] - inc["ct_date"]).dt.days.abs()
    sites = ", ".join(str(s) for s in inc["site"].cat.categories)
    return {
        "8": f"Sites {sites}; CT dates of included patients {first:%Y-%m-%d} to {last:%Y-%m-%d}.",
        "22": (
            f"CT to MRI interval, included cases: median {gap.median():.0f} days "
            f"(range {gap.min():.0f}-{gap.max():.0f}); no intervention between the tests by design."
        ),
    }


def imaging_chain(
    clinical: Path, work: Path, plan: AnalysisPlan, *, seed: int, progress: Callable[[str], None]
) -> dict[str, Path]:
    """The demo's imaging chain: phantom CTs -> the three classifiers -> the prediction table.

    See :func:`studyval.imaging_demo.ovcf_imaging` (needs the ``models`` extra).
    """
    from studyval.imaging_demo import ovcf_imaging

    res = ovcf_imaging(clinical, work, seed=seed, progress=progress)
    return {"clinical": res.clinical, "predictions": res.predictions, "imaging": res.imaging}


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=True,
    join=join,
    imaging_chain=imaging_chain,
    steps=REGISTRY,
)
