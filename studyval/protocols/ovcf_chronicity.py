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

The study is an instance of the diagnostic-accuracy study type
(:mod:`studyval.study_types.diagnostic_accuracy`): its analyses are the
type's steps (:mod:`studyval.steps.diagnostic`: AUC, ROC, accuracy,
comparisons, calibration, decision curves, subgroups, clustered AUC, sample
size) that the plan's ``endpoints[].analyses`` name, its participant flow is
the type's ``flow`` step, and its eligibility bounds (age, CT-MRI interval),
the values constant within a patient and the derived age band and vertebral
region are the plan's ``cohort:`` section. This module adds only what is the
study's own, as declared extras: the messages of its eligibility check (read
from the plan's rules) with exactly one index vertebra per patient, the WHO
bone-density category (mixed open and closed bounds, which bins cannot
express), two extra rows of the type's baseline table (vertebrae per patient,
level of the index fracture: step ``baseline``), the STARD items filled from
its dates and its imaging chain. Its figures are :mod:`studyval.figures.ovcf_chronicity`.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from studyval.checklists import stard_2015
from studyval.cohort import Cohort, absent_column_violations
from studyval.errors import StudyvalError, Violation
from studyval.figures.ovcf_chronicity import figure_specs
from studyval.plan import AnalysisPlan
from studyval.protocol import StudyProtocol, steps_analysis
from studyval.steps import diagnostic
from studyval.steps.common import BASELINE
from studyval.steps.registry import StepContext, StepRegistry
from studyval.study_cohort import CohortRule, CohortSpec, derive_variables, included_rows
from studyval.study_types import diagnostic_accuracy as study_type

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


def _rule(plan: AnalysisPlan, reason: str) -> CohortRule:
    """The plan's ``cohort.rules`` entry with exclusion reason ``reason``."""
    for rule in plan.cohort.rules if plan.cohort is not None else []:
        if rule.reason == reason:
            return rule
    raise StudyvalError(
        f"the plan of {SLUG} has no cohort rule with reason {reason!r} (cohort.rules); its "
        "eligibility check reads the bound from there"
    )


def check_eligibility(clinical: pd.DataFrame, plan: AnalysisPlan, *, label: str) -> list[Violation]:
    """Protocol rules that span rows or columns of the clinical table, bounds from the plan's ``cohort``.

    * the columns of ``cohort.constant_within_patient`` (site, age, sex,
      exclusion reason) are constant within a patient;
    * exactly one index vertebra per patient;
    * an included patient (``cohort.exclusion``) meets the ``cohort.rules``:
      age at least the ``age_under_50`` rule's minimum (50) and MRI at most the
      ``ct_mri_interval_14d_or_more`` rule's ``max_days`` (13) from the CT, either order;
    * ``dxa_t_score`` is present as a column (its cells may be empty): the
      baseline table and the plan's ``bmd_category`` subgroup use it.
    """
    problems = absent_column_violations(clinical, needed_columns(plan), label=label)
    spec = plan.cohort or CohortSpec()
    by_patient = clinical.groupby("patient_id", observed=True, sort=False)
    for col in spec.constant_within_patient:
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
    included = included_rows(clinical, plan.cohort)
    age_rule = _rule(plan, "age_under_50")
    young = included & (clinical[str(age_rule.column)] < age_rule.min)
    for idx in clinical.index[young.fillna(False)]:
        problems.append(
            Violation(
                label,
                "age",
                int(idx) + 2,
                f"included patient is younger than {age_rule.min:g}; set exclusion_reason to "
                f"{age_rule.reason}",
                str(clinical.at[idx, "age"]),
            )
        )
    gap_rule = _rule(plan, "ct_mri_interval_14d_or_more")
    ct, mri = gap_rule.interval
    gap = (clinical[mri] - clinical[ct]).dt.days.abs()
    late = included & (gap > gap_rule.max_days)
    for idx in clinical.index[late.fillna(False)]:
        problems.append(
            Violation(
                label,
                mri,
                int(idx) + 2,
                f"included case has CT and MRI {int(gap[idx])} days apart (must be < "
                f"{gap_rule.max_days + 1}); set exclusion_reason to {gap_rule.reason}",
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

#: Participant-flow counts for the STARD diagram: the study type's (see its docstring).
flow_counts = study_type.flow_counts


# ----------------------------------------------------------------------------- derived variables

#: Levels of the WHO bone-density category, in order of the T-score.
BMD_LEVELS = ["osteoporosis", "osteopenia", "normal"]


def derive_subgroup_variables(frame: pd.DataFrame, cohort: CohortSpec | None) -> pd.DataFrame:
    """Add the plan's derived subgroup variables (definitions in plan.yml).

    ``age_band`` and ``vertebral_region`` are the plan's ``cohort.derived``
    (:func:`studyval.study_cohort.derive_variables`). ``bmd_category`` (WHO) is
    this protocol's own: T <= -2.5 osteoporosis, -2.5 < T < -1.0 osteopenia,
    T >= -1.0 normal; missing stays missing (its own level in the tables, never
    tested).
    """
    out = derive_variables(frame, cohort)
    t = out["dxa_t_score"].astype(float)
    bmd = np.select([t <= -2.5, t < -1.0, t >= -1.0], BMD_LEVELS, default="")
    out["bmd_category"] = pd.Categorical(np.where(bmd == "", None, bmd), categories=BMD_LEVELS)
    return out


#: The study type's join, with the protocol's bone-density category added to both tables: the
#: plan's subgroup steps read ``age_band``, ``bmd_category`` and ``vertebral_region`` from the
#: cohort's prediction table like any other column.
join = partial(study_type.join, derive=lambda frame: derive_subgroup_variables(frame, None))


# ----------------------------------------------------------------------------- own steps

_OWN = StepRegistry(SLUG)


@_OWN.step("baseline", produces=[BASELINE])
def baseline(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Baseline characteristics of the included patients (index vertebra), by class and by site.

    The study type's baseline table (:func:`studyval.study_types.diagnostic_accuracy.baseline_counts`)
    of the plan's ``cohort.baseline`` (age, DXA T-score, sex; by class and by site), with this
    study's two extras: fractured vertebrae per patient (continuous) and the level of the index
    fracture (thoracolumbar T11-L2 or other).
    """
    clin = cohort.clinical
    inc = clin[included_rows(clin, plan.cohort).to_numpy(bool)]
    n_vert = inc.groupby("patient_id", observed=True).size()
    extra = clin.assign(
        fractured_vertebrae=clin["patient_id"].map(n_vert).astype(float),
        index_level_region=pd.Categorical(
            np.select(
                [clin["vertebral_level"].astype(str).isin(["T11", "T12", "L1", "L2"])],
                ["thoracolumbar (T11-L2)"],
                default="other",
            ),
            categories=["thoracolumbar (T11-L2)", "other"],
        ),
    )
    spec = (plan.cohort or CohortSpec()).baseline
    with_extras = spec.model_copy(
        update={
            "continuous": [*spec.continuous, "fractured_vertebrae"],
            "categorical": [*spec.categorical, "index_level_region"],
        }
    )
    cohort_spec = (plan.cohort or CohortSpec()).model_copy(update={"baseline": with_extras})
    table = study_type.baseline_counts(
        Cohort(clinical=extra, predictions=cohort.predictions),
        plan.model_copy(update={"cohort": cohort_spec}),
    )
    return {"baseline": table}


#: The plan's steps: the diagnostic-accuracy study type's (its flow included) and this study's own.
REGISTRY = diagnostic.REGISTRY.including(study_type.FLOW_STEPS, _OWN, name=SLUG)
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
