"""Longitudinal steps of the multimodal-staging study type: VAS and OKS over follow-up.

The random-intercept mixed model by knee-OA group, its random-slope sensitivity
analysis, the MNAR delta adjustment with its tipping point and the MMRM
sensitivity analysis (see :mod:`studyval.steps.multimodal_staging`, whose
:data:`REGISTRY` includes them).

The unit of every model is the **patient**: VAS and OKS are patient-level
columns (the OKS of the more symptomatic knee, see the data dictionary), and
the group is the patient's predicted radiographic OA (highest predicted KL
grade of the patient's knees >= the plan's ``oa_min_grade``), so no knee-level
clustering arises.

Each random-intercept model is fitted **once per run**: step ``mixed_model``
hands its fits to later steps as the artefact ``lmm_fits`` (outcome ->
:class:`~studyval.analysis.mixed_models.MixedModelResult`), which
``delta_adjustment`` and ``mixed_model_slope`` (the base model of its
likelihood-ratio test, checked against its own data by fingerprint) read
instead of refitting (issue 12).
"""

from __future__ import annotations

from types import MappingProxyType

import pandas as pd

from studyval.analysis import (
    delta_adjustment,
    descriptive,
    mmrm,
    random_slope,
)
from studyval.analysis import mixed_models as lmm
from studyval.cohort import Cohort, estimating
from studyval.plan_msk_aging import MskAgingPlan
from studyval.steps.multimodal_models import (
    Tables,
    _columns,
    _frames,
    _keyed,
    _predicted,
)
from studyval.steps.registry import StepContext, StepRegistry, TableSpec

#: The longitudinal steps.
REGISTRY = StepRegistry("multimodal_staging_longitudinal")

LMM = TableSpec(
    "lmm",
    "REML mixed model (random patient intercept) of each functional score by radiographic OA: "
    "fixed effects and variance components",
    _columns(
        "outcome grouping term estimate se ci_low ci_high p_value n_obs n_patients optimiser "
        "optimisers_tried icc"
    ),
)
LMM_FOLLOWED = TableSpec(
    "lmm_followed",
    "Patients with each functional score at each visit, by radiographic OA and overall",
    _columns("outcome grouping month oa n_followed n_included"),
)
LMM_MEANS = TableSpec(
    "lmm_means",
    "Observed mean (SD, n, t-interval) and mixed-model fitted mean of each functional score per "
    "visit and radiographic OA",
    _columns("outcome grouping month oa mean std count fitted ci_low ci_high ci_level"),
)
_OA = {1.0: "OA", 0.0: "no OA"}


def _scores_long(
    cohort: Cohort, plan: MskAgingPlan
) -> tuple[pd.Series, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Predicted radiographic OA per patient, the patients, and each score's observed visits.

    The long tables have ``patient_id, month, years, y, set``, one row per
    observed visit (missing visits left out).
    """
    knees, patients = _frames(cohort, plan)
    oa_min = plan.kl.oa_min_grade - plan.kl.classes[0]
    pred = pd.Series(_predicted(cohort, plan, "kl"), index=knees["patient_id"])
    grp = (pred.groupby(level=0).max() >= oa_min).astype(float)
    pats = patients.set_index("patient_id")
    longs = {}
    for outcome, cols in plan.longitudinal.outcomes.items():
        long = []
        for col, month in cols.items():
            v = pats[col].astype(float)
            obs = v.notna()
            long.append(
                pd.DataFrame(
                    {
                        "patient_id": v.index[obs],
                        "month": month,
                        "years": month / 12.0,
                        "y": v[obs].to_numpy(float),
                        "set": pats.loc[obs, "set"].to_numpy(),
                    }
                )
            )
        longs[outcome] = pd.concat(long, ignore_index=True)
    return grp, pats, longs


#: The artefact of step ``mixed_model``: outcome -> its random-intercept fit (never written).
LMM_FITS = "lmm_fits"


def _model_data(long_df: pd.DataFrame, grp: pd.Series) -> pd.DataFrame:
    """The random-intercept and random-slope models' data: ``patient_id, years, oa, y``."""
    dfg = long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy())
    return dfg[["patient_id", "years", "oa", "y"]]


@REGISTRY.step(
    "mixed_model",
    produces=[LMM, LMM_FOLLOWED, LMM_MEANS],
    needs=("models",),
    artifacts=(LMM_FITS,),
)
def mixed_model_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """VAS and OKS by predicted radiographic OA: REML mixed model, patients followed, means."""
    ctx.progress("VAS and OKS: linear mixed models")
    grp, pats, longs = _scores_long(cohort, plan)
    fits, followed, means = [], [], []
    held: dict[str, lmm.MixedModelResult] = {}
    for outcome, long_df in longs.items():
        keys = {"outcome": outcome, "grouping": "predicted"}
        dfg = long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy())
        r = lmm.random_intercept_lmm(
            _model_data(long_df, grp),
            formula="y ~ years * oa",
            group="patient_id",
            alpha=plan.alpha,
        )
        held[outcome] = r
        fits.append(_keyed(r.to_frame(), keys).assign(icc=r.icc))
        nf = lmm.n_followed(dfg, visit="month", group="oa")
        nf["oa"] = nf["oa"].map(_OA)
        nf["n_included"] = nf["oa"].map(grp.map(_OA).value_counts()).astype(int)
        followed.append(_keyed(nf, keys))
        # observed means with t-intervals, beside the model's fitted mean at each visit
        obs = descriptive.group_means(dfg, value="y", by=["month", "oa"], alpha=plan.alpha)
        obs_t = obs.to_frame()
        at = obs_t[["month", "oa"]].assign(years=obs_t["month"] / 12.0)
        fitted = lmm.population_means(r, at).to_frame()["fitted"]
        mm = obs_t.rename(columns={"sd": "std", "n": "count"})[
            ["month", "oa", "mean", "std", "count"]
        ]
        mm = mm.assign(
            oa=mm["oa"].map(_OA),
            fitted=fitted,
            ci_low=obs_t["ci_low"],
            ci_high=obs_t["ci_high"],
            ci_level=obs_t["ci_level"],
        )
        means.append(_keyed(mm, keys))
        tot = lmm.n_followed(long_df, visit="month").assign(n_included=len(pats))
        followed.append(_keyed(tot, {"outcome": outcome, "grouping": "all"}).assign(oa="all"))
    return {
        "lmm": pd.concat(fits, ignore_index=True),
        "lmm_followed": pd.concat(followed, ignore_index=True),
        "lmm_means": pd.concat(means, ignore_index=True),
        LMM_FITS: MappingProxyType(held),
    }


LMM_DELTA = TableSpec(
    "lmm_delta",
    "MNAR sensitivity: the OA minus no-OA difference of each functional score at the last visit "
    "(random-intercept model) with the OA group's missing last visits shifted by each delta of the "
    "plan, and the tipping delta",
    _columns(
        "outcome grouping month delta estimate se ci_low ci_high p_value estimate_mar "
        "tipping_delta n_missing n_group missing_fraction"
    ),
)


@REGISTRY.step("delta_adjustment", produces=[LMM_DELTA], needs=("lmm", "lmm_followed", LMM_FITS))
def delta_adjustment_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Delta-adjusted (MNAR) OA difference at the last visit and its tipping point."""
    ctx.progress("VAS and OKS: MNAR delta adjustment (tipping point)")
    followed = ctx.tables["lmm_followed"]
    last = max(plan.longitudinal.visits)
    years = last / 12.0
    rows = []
    for outcome in plan.longitudinal.outcomes:
        # the random-intercept fit of step mixed_model (the same model, fitted once)
        r = ctx.artifacts[LMM_FITS][outcome]
        f = followed[
            (followed["outcome"] == outcome)
            & (followed["grouping"] == "predicted")
            & (followed["oa"] == _OA[1.0])
            & (followed["month"] == last)
        ].iloc[0]
        n_group = int(f["n_included"])
        res = delta_adjustment.delta_adjusted_contrast(
            r.fixed,
            r.cov_fixed,
            contrast={"oa": 1.0, "years:oa": years},
            n_missing=n_group - int(f["n_followed"]),
            n_group=n_group,
            deltas=plan.longitudinal.delta_grid[outcome],
            alpha=plan.alpha,
        )
        t = res.to_frame().assign(
            estimate_mar=res.estimate_mar,
            tipping_delta=res.tipping_delta,
            n_missing=res.n_missing,
            n_group=res.n_group,
            missing_fraction=res.missing_fraction,
        )
        rows.append(_keyed(t, {"outcome": outcome, "grouping": "predicted", "month": last}))
    return {"lmm_delta": pd.concat(rows, ignore_index=True)}


LMM_SLOPE = TableSpec(
    "lmm_slope",
    "Sensitivity analysis: REML mixed model with a random patient intercept and slope in years of "
    "each functional score by predicted radiographic OA (fixed effects, variance components) and "
    "its likelihood-ratio test against the random-intercept model",
    _columns(
        "outcome grouping term estimate se ci_low ci_high p_value n_obs n_patients optimiser "
        "lr_chisq lr_p_value lr_p_naive"
    ),
)


@REGISTRY.step("mixed_model_slope", produces=[LMM_SLOPE], needs=("models", LMM_FITS))
def mixed_model_slope_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """VAS and OKS by predicted radiographic OA: random intercept and slope (sensitivity)."""
    ctx.progress("VAS and OKS: random-slope mixed models (sensitivity)")
    grp, _, longs = _scores_long(cohort, plan)
    rows = []
    for outcome, long_df in longs.items():
        with estimating(f"{outcome}, random-slope mixed model"):
            r = random_slope.random_slope_lmm(
                _model_data(long_df, grp),
                formula="y ~ years * oa",
                group="patient_id",
                slope="years",
                alpha=plan.alpha,
                intercept_fit=ctx.artifacts[LMM_FITS][outcome],
            )
        frame = r.to_frame().assign(
            lr_chisq=r.lr_chisq, lr_p_value=r.lr_p_value, lr_p_naive=r.lr_p_naive
        )
        rows.append(_keyed(frame, {"outcome": outcome, "grouping": "predicted"}))
    return {"lmm_slope": pd.concat(rows, ignore_index=True)}


LMM_MMRM = TableSpec(
    "lmm_mmrm",
    "Sensitivity analysis: mixed model for repeated measures (visit as a factor, OA by visit, "
    "unstructured within-patient covariance, REML, every available visit) of each functional "
    "score; the OA minus no-OA difference at each visit (t on the residual df N - p, as nlme)",
    _columns(
        "outcome grouping month estimate se df t ci_low ci_high p_value ci_level n_no_oa n_oa "
        "sd_visit reml_loglik n_obs n_patients df_method"
    ),
)
LMM_MMRM_COV = TableSpec(
    "lmm_mmrm_covariance",
    "Sensitivity analysis: the MMRM's estimated unstructured within-patient covariance and "
    "correlation of each functional score between each pair of visits",
    _columns("outcome grouping month_1 month_2 covariance correlation"),
)


@REGISTRY.step("mmrm", produces=[LMM_MMRM, LMM_MMRM_COV], needs=("models",))
def mmrm_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """VAS and OKS by predicted radiographic OA: MMRM, unstructured covariance (sensitivity)."""
    ctx.progress("VAS and OKS: MMRM, unstructured covariance (sensitivity)")
    grp, _, longs = _scores_long(cohort, plan)
    rows, covs = [], []
    for outcome, long_df in longs.items():
        keys = {"outcome": outcome, "grouping": "predicted"}
        with estimating(f"{outcome}, MMRM (unstructured covariance)"):
            r = mmrm.mmrm(
                long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy()),
                outcome="y",
                group="oa",
                levels=(0.0, 1.0),
                visit="month",
                visits=plan.longitudinal.visits,
                subject="patient_id",
                alpha=plan.alpha,
            )
        t = r.to_frame().rename(
            columns={"visit": "month", "n_reference": "n_no_oa", "n_comparison": "n_oa"}
        )
        t = t.assign(
            month=t["month"].astype(int),
            reml_loglik=r.reml_loglik,
            n_obs=r.n_obs,
            n_patients=r.n_patients,
            df_method=r.df_method,
        )
        rows.append(_keyed(t, keys))
        c = r.covariance_frame().rename(columns={"visit_1": "month_1", "visit_2": "month_2"})
        c = c.assign(month_1=c["month_1"].astype(int), month_2=c["month_2"].astype(int))
        covs.append(_keyed(c, keys))
    return {
        "lmm_mmrm": pd.concat(rows, ignore_index=True),
        "lmm_mmrm_covariance": pd.concat(covs, ignore_index=True),
    }
