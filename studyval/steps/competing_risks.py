"""Steps of a prognostic model with a competing event, developed at one centre and validated at others.

A study of this type (TRIPOD+AI) predicts the cumulative incidence of one
cause of event by a horizon while other causes compete: a competing event is
never censoring. Each model of the plan is a pair (or more) of cause-specific
Cox models, one per cause (``outcome.cause`` and ``outcome.competing``, other
causes censored), fitted at the development sites; the predicted cumulative
incidence of the cause combines them (Benichou & Gail 1990, riskRegression's
``predictRisk`` of a ``CSC`` fit, exponential form ``product.limit = FALSE``).
The models are validated internally at the development sites (Harrell's
bootstrap optimism correction, every cause-specific model refitted in each
resample) and externally at the external sites (no correction, no updating).

Every step is parameterised by the :class:`~studyval.plan.PredictionModelPlan`
alone: ``outcome`` (time and event columns, ``event_codes``, ``cause``,
``competing``, ``horizon``), ``models`` (one ``primary``; the others are
compared with it), ``sets`` (``development_sites`` -> set ``internal``,
``external_sites`` -> set ``external``; ``n_bootstrap``), ``seed``, ``alpha``,
``subgroups`` and ``extra.calibration_groups`` (5). A boolean model covariate
enters as 0/1. A protocol of this type adds its own flow, baseline, sample
size and ``models`` steps and registers ``REGISTRY.including(<its registry>)``.

Steps and tables
----------------
==========================  ==========================================================
``cause_specific_models``   ``cox``, ``ph_test``, ``baseline_hazard`` (artefact ``cs_fits``)
``fine_gray``               ``fine_gray`` (the primary model's covariates, companion analysis)
``lr_test``                 ``lr_test`` (nested cause-specific models, likelihood ratio)
``predicted_incidence``     (artefact ``cs_risks``: predicted incidence by set and model)
``optimism``                ``optimism``
``performance``             ``performance``
``calibration``             ``calibration_groups``, ``calibration_summary``
``subgroup_performance``    ``subgroup_performance``
``added_value``             ``added_value``
``calibration_slope``       ``calibration_slope`` (plan 1.1, issue 16)
``validation_sample_size``  ``validation_sample_size`` (plan 1.1, issue 16)
==========================  ==========================================================

``calibration_slope`` reads ``extra.calibration_slope_censor_at_horizon`` (default
true) and ``validation_sample_size`` reads ``extra.validation_sample_size``
(``prevalence, c_statistic, lp, oe, oe_ci_width, slope_ci_width, c_ci_width,
assumptions_source``).

:data:`ABSOLUTE_RISK` holds two steps for a study of the prognostic-model type
(:mod:`studyval.steps.prognostic`, a cause-specific Cox model with deaths
censored) whose outcome has a competing event: ``competing_risk_incidence``
(table ``cr_incidence``: Aalen-Johansen incidence against one minus Kaplan-Meier,
overall and by group of predicted risk) and ``cs_absolute_risk`` (tables
``cs_absolute_risk``, ``cs_absolute_risk_groups``, ``cs_cox_competing``: the
absolute risk predicted from cause-specific Cox models of both causes).

Bootstrap resamples (internal validation): a resample fails, is counted (per
model, with its reason, in the ``optimism`` table and the warnings) and is
left out of that model's mean optimism when a cause-specific Cox model cannot
be fitted or does not converge, when the resample's last follow-up time is
before the horizon (the baseline hazards, and so the predicted incidence, are
not defined there: nothing is carried forward), when a predicted incidence is
above 1 (the exponential form does not bound it; the Brier score is then
undefined) or when a measure cannot be computed (e.g. no event by the horizon).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype

from studyval.analysis import competing_risks
from studyval.analysis import survival as sv
from studyval.analysis import survival_validation as svv
from studyval.analysis.competing_risks_calibration import (
    calibration_groups_competing,
    calibration_slope_competing,
)
from studyval.analysis.cox import nested_cox_test
from studyval.analysis.cumulative_incidence import incidence_against_km
from studyval.analysis.internal_validation import RefitModel, bootstrap_optimism
from studyval.analysis.paired_bootstrap import harrell_c_difference
from studyval.analysis.sample_size_validation import (
    horizon_status_counts,
    riley_validation_binary,
)
from studyval.cohort import Cohort, estimating
from studyval.errors import EstimationError
from studyval.plan import PredictionModelPlan, ValidationSampleSizeSpec
from studyval.steps.registry import StepContext, StepRegistry, TableSpec
from studyval.study_cohort import included_rows

__all__ = [
    "ABSOLUTE_RISK",
    "REGISTRY",
    "CauseSpecificFits",
    "event_frame",
    "fit_cause_specific",
    "model_version",
    "predicted_incidence",
    "refit_procedure",
    "set_names",
]

REGISTRY = StepRegistry("prognostic-model-competing-risks")

# ----------------------------------------------------------------------------- tables

COX = TableSpec(
    "cox",
    "Cause-specific Cox coefficients at the development sites, one row per model, cause and term",
    ("model", "cause", "term", "coef", "hr", "ci_low", "ci_high", "p_value", "n", "n_events",
     "loglik", "ci_level"),
)  # fmt: skip
PH_TEST = TableSpec(
    "ph_test",
    "cox.zph test of proportional hazards of each cause-specific model, per term and GLOBAL",
    ("model", "cause", "term", "chisq", "df", "p_value", "ph_violated"),
)
BASELINE_HAZARD = TableSpec(
    "baseline_hazard",
    "Cumulative baseline hazard of each cause-specific model (covariates 0)",
    ("model", "cause", "time", "cumhaz"),
)
FINE_GRAY = TableSpec(
    "fine_gray",
    "Fine-Gray subdistribution hazards of the primary model's covariates, one row per cause and term",
    ("cause", "n", "n_events", "n_competing"),
)
LR_TEST = TableSpec(
    "lr_test",
    "Likelihood-ratio test of the primary model against each model nested in it, per cause",
    ("cause", "full", "reduced", "added", "chisq", "df", "p_value"),
)
OPTIMISM = TableSpec(
    "optimism",
    "Harrell's bootstrap optimism at the development sites, one row per model and measure",
    ("model", "measure", "apparent", "optimism", "corrected", "n_resamples", "n_succeeded",
     "n_failed", "failures", "seed", "procedure"),
)  # fmt: skip
PERFORMANCE = TableSpec(
    "performance",
    "td-AUC, Harrell's C, Brier score and IPA at the horizon by set and model (corrected internally)",
    ("set", "model", "measure", "apparent", "apparent_ci_low", "apparent_ci_high", "optimism",
     "corrected", "null", "n", "n_deaths_by_horizon", "n_censored_before_horizon"),
)  # fmt: skip
CALIBRATION_GROUPS = TableSpec(
    "calibration_groups",
    "Mean predicted against Aalen-Johansen observed incidence at the horizon, by quantile group",
    ("set", "model", "group", "n", "predicted", "observed", "ci_low", "ci_high", "n_deaths"),
)
CALIBRATION_SUMMARY = TableSpec(
    "calibration_summary",
    "Observed and mean predicted incidence at the horizon, O/E ratio, largest group difference",
    ("observed", "observed_ci_low", "observed_ci_high", "mean_predicted", "oe_ratio",
     "max_abs_group_difference", "groups", "set", "model"),
)  # fmt: skip
SUBGROUP_PERFORMANCE = TableSpec(
    "subgroup_performance",
    "td-AUC and Harrell's C of the primary model within each level of the plan's subgroups",
    ("variable", "status", "set", "level", "n", "n_deaths_by_horizon", "td_auc", "td_auc_ci_low",
     "td_auc_ci_high", "harrell_c", "reason"),
)  # fmt: skip
ADDED_VALUE = TableSpec(
    "added_value",
    "The primary model against the comparator: difference in td-AUC and in Harrell's C, by set",
    ("set", "measure", "model_a", "model_b", "estimate_a", "estimate_b", "difference", "se",
     "ci_low", "ci_high", "p_value", "n_resamples", "n_failed", "failures", "method"),
)  # fmt: skip

# ----------------------------------------------------------------------------- data


def set_names(plan: PredictionModelPlan) -> tuple[str, ...]:
    """The analysis sets: ``internal`` (development sites), then ``external`` where the plan has some."""
    return ("internal", "external") if plan.sets.external_sites else ("internal",)


def _causes(plan: PredictionModelPlan) -> list[int]:
    return [c for c in plan.outcome.event_codes if c != 0]


def _check_outcome(d: pd.DataFrame, plan: PredictionModelPlan) -> None:
    o = plan.outcome
    for set_ in set_names(plan):
        sub = d[d["set"] == set_]
        if len(sub) == 0:
            raise EstimationError(f"the {set_} set has no included patients")
        if not (sub["code"] == o.cause).any():
            raise EstimationError(
                f"{set_} set: no {o.event_codes[o.cause]} events (every patient censored or "
                "competing); the cause-specific model and the discrimination cannot be estimated"
            )
        last = float(sub["time"].max())
        if o.horizon >= last:
            raise EstimationError(
                f"{set_} set: the horizon {o.horizon:g} {o.time_unit} ({o.horizon_label}) is beyond the "
                f"last follow-up time ({last:g} {o.time_unit}); shorten the horizon in the plan"
            )


def event_frame(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """Included patients with ``time``, ``code`` (the event code) and ``set``, checked for analysis.

    Boolean model covariates become 0/1 floats; ``set`` is ``internal``
    (development sites), ``external`` (external sites) or ``other``.

    Raises
    ------
    EstimationError
        A set without patients or without an event of the cause, or a horizon
        at or beyond a set's last follow-up time.
    """
    clin = cohort.clinical
    d = clin[included_rows(clin, plan.cohort).to_numpy(bool)].copy()
    o = plan.outcome
    d["time"] = d[o.time].astype(float)
    d["code"] = d[o.event].astype(int)
    for cov in dict.fromkeys(c for m in plan.models for c in m.covariates):
        if is_bool_dtype(d[cov].dtype):
            d[cov] = d[cov].astype(bool).astype(float)
    dev = d["site"].astype(str).isin(plan.sets.development_sites)
    ext = d["site"].astype(str).isin(plan.sets.external_sites)
    d["set"] = np.where(dev, "internal", np.where(ext, "external", "other"))
    d = d.reset_index(drop=True)
    _check_outcome(d, plan)
    return d


def _sets(cohort: Cohort, plan: PredictionModelPlan) -> dict[str, pd.DataFrame]:
    d = event_frame(cohort, plan)
    return {s: d[d["set"] == s].reset_index(drop=True) for s in set_names(plan)}


# ----------------------------------------------------------------------------- models


@dataclass(frozen=True)
class CauseSpecificFits:
    """Cause-specific Cox fits of one model formula, one per cause."""

    covariates: tuple[str, ...]
    fits: dict[int, sv.CoxResult]
    #: Last follow-up time of the data the models were fitted on.
    last_time: float


def fit_cause_specific(
    d: pd.DataFrame, covs: list[str], plan: PredictionModelPlan
) -> CauseSpecificFits:
    """One cause-specific Cox model (Efron ties) per cause of interest and competing cause."""
    o = plan.outcome
    fits = {}
    for k in [o.cause, *o.competing]:
        fits[k] = competing_risks.cause_specific_cox(
            d,
            duration="time",
            event="code",
            cause=k,
            covariates=covs,
            alpha=plan.alpha,
            causes=_causes(plan),
        )
    return CauseSpecificFits(covariates=tuple(covs), fits=fits, last_time=float(d["time"].max()))


def predicted_incidence(
    model: CauseSpecificFits, d: pd.DataFrame, plan: PredictionModelPlan
) -> np.ndarray:
    """Predicted cumulative incidence of the cause by the horizon (exponential form).

    :func:`competing_risks.predict_cumulative_incidence` with
    ``product_limit=False`` (riskRegression ``predictRisk(..., product.limit =
    FALSE)``). Raises :class:`EstimationError` (a failed bootstrap resample)
    where it is undefined: the horizon after the last follow-up time of the
    data ``model`` was fitted on, or a predicted incidence above 1 (which the
    exponential form allows and the Brier score does not).
    """
    o = plan.outcome
    if o.horizon > model.last_time:
        raise EstimationError(
            f"the last follow-up time of the fitted data ({model.last_time:g} {o.time_unit}) is "
            f"before the horizon ({o.horizon:g} {o.time_unit}); the predicted incidence is not "
            "defined there"
        )
    risk = competing_risks.predict_cumulative_incidence(
        model.fits, d, cause=o.cause, times=[o.horizon], product_limit=False
    ).risk[:, 0]
    above = int(np.count_nonzero(risk > 1.0))
    if above:
        raise EstimationError(
            f"predicted cumulative incidence above 1 for {above} of {len(risk)} patients "
            "(exponential form, product_limit=False); the Brier score is undefined"
        )
    return risk


def model_version(f: CauseSpecificFits) -> str:
    """``sha256:`` of the coefficients and cumulative baseline hazards (rounded to 12 digits)."""
    payload = {
        str(k): {
            "coef": [round(float(b), 12) for b in fit.coef],
            "cumhaz": [round(float(h), 12) for h in fit.baseline_hazard["cumhaz"]],
        }
        for k, fit in f.fits.items()
    }
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _brier(d: pd.DataFrame, risk: np.ndarray, plan: PredictionModelPlan, *, conservative: bool):
    o = plan.outcome
    return competing_risks.brier_competing(
        d["time"].to_numpy(float),
        d["code"].to_numpy(int),
        risk,
        cause=o.cause,
        horizon=o.horizon,
        alpha=plan.alpha,
        causes=_causes(plan),
        conservative=conservative,
    )


def _point_measures(
    d: pd.DataFrame, risk: np.ndarray, plan: PredictionModelPlan
) -> dict[str, float]:
    """Point estimates of the bootstrap's measures (the SE terms are not needed there)."""
    o = plan.outcome
    t, c = d["time"].to_numpy(float), d["code"].to_numpy(int)
    b = _brier(d, risk, plan, conservative=True)  # point estimates only: no censoring SE term
    return {
        "td_auc": svv.time_dependent_auc(t, c, risk, horizon=o.horizon, cause=o.cause).estimate,
        "harrell_c": sv.harrell_c(t, (c == o.cause).astype(int), risk).estimate,
        "brier": b.estimate,
        "ipa": b.ipa,
    }


def refit_procedure(m: Any, plan: PredictionModelPlan) -> RefitModel:
    """The modelling procedure of plan model ``m`` to refit in every bootstrap resample."""
    o = plan.outcome
    covs = list(m.covariates)

    def fit(frame: pd.DataFrame) -> CauseSpecificFits:
        f = fit_cause_specific(frame, covs, plan)
        bad = [o.event_codes[k] for k, cf in f.fits.items() if not cf.converged]
        if bad:
            raise EstimationError(
                f"the cause-specific Cox model for {', '.join(bad)} did not converge"
            )
        return f

    return RefitModel(
        fit=fit,
        predict=lambda f, frame: predicted_incidence(f, frame, plan),
        measures=lambda frame, risk: _point_measures(frame, risk, plan),
        description=(
            f"cause-specific Cox models ({', '.join(o.event_codes[k] for k in [o.cause, *o.competing])}) "
            f"on {', '.join(covs)}; predicted cumulative incidence of {o.event_codes[o.cause]} by "
            f"{o.horizon:g} {o.time_unit} (product_limit=False)"
        ),
    )


def _primary(plan: PredictionModelPlan) -> Any:
    return next(m for m in plan.models if m.role == "primary")


# ----------------------------------------------------------------------------- steps


@REGISTRY.step(
    "cause_specific_models",
    produces=[COX, PH_TEST, BASELINE_HAZARD],
    artifacts=("cs_fits",),
)
def _cause_specific_models(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """Cause-specific Cox models of every plan model at the development sites, with cox.zph."""
    ctx.progress("cause-specific Cox models (development centre)")
    o = plan.outcome
    dev = _sets(cohort, plan)["internal"]
    fitted = {}
    for m in plan.models:
        with estimating(f"model {m.name}, development centre, cause-specific Cox models"):
            fitted[m.name] = fit_cause_specific(dev, list(m.covariates), plan)
    cox_rows, zph_rows = [], []
    for m in plan.models:
        for k, fit in fitted[m.name].fits.items():
            s = fit.summary.copy()
            s.insert(0, "cause", o.event_codes[k])
            s.insert(0, "model", m.name)
            s["n"], s["n_events"] = fit.n, fit.n_events
            s["loglik"], s["ci_level"] = fit.loglik, fit.ci_level
            cox_rows.append(s)
            # the data cause_specific_cox fitted on (with its event indicator column)
            cs = dev.assign(**{f"code == {k}": (dev["code"] == k).astype(np.int64)})
            z = sv.cox_zph(fit, data=cs).to_frame()
            z.insert(0, "cause", o.event_codes[k])
            z.insert(0, "model", m.name)
            z["ph_violated"] = z["p_value"] < plan.alpha
            zph_rows.append(z)
    hazard = pd.concat(
        [
            fit.baseline_hazard.assign(model=m.name, cause=o.event_codes[k])[
                ["model", "cause", "time", "cumhaz"]
            ]
            for m in plan.models
            for k, fit in fitted[m.name].fits.items()
        ],
        ignore_index=True,
    )
    return {
        "cox": pd.concat(cox_rows, ignore_index=True),
        "ph_test": pd.concat(zph_rows, ignore_index=True),
        "baseline_hazard": hazard,
        "cs_fits": fitted,
    }


@REGISTRY.step("fine_gray", produces=[FINE_GRAY])
def _fine_gray(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Fine-Gray subdistribution hazards of the primary model's covariates, every cause (companion)."""
    ctx.progress("Fine-Gray subdistribution hazards (companion analysis)")
    o = plan.outcome
    dev = _sets(cohort, plan)["internal"]
    rows = []
    for k in [o.cause, *o.competing]:
        fg = competing_risks.fine_gray(
            dev,
            duration="time",
            event="code",
            cause=k,
            covariates=list(_primary(plan).covariates),
            alpha=plan.alpha,
            causes=_causes(plan),
        )
        s = fg.to_frame()
        s.insert(0, "cause", o.event_codes[k])
        s["n"], s["n_events"], s["n_competing"] = fg.n, fg.n_events, fg.n_competing
        rows.append(s)
    return {"fine_gray": pd.concat(rows, ignore_index=True)}


@REGISTRY.step("lr_test", produces=[LR_TEST], needs=("cs_fits",))
def _lr_test(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Likelihood-ratio test (nested_cox_test) of the primary model against each nested model."""
    ctx.progress("likelihood-ratio test for the added term")
    o = plan.outcome
    fitted = ctx.artifacts["cs_fits"]
    prim = _primary(plan)
    rows = []
    for m in plan.models:
        if m.role == "primary" or not set(m.covariates) < set(prim.covariates):
            continue
        for k in [o.cause, *o.competing]:
            r = nested_cox_test(fitted[prim.name].fits[k], fitted[m.name].fits[k])
            rows.append(
                {
                    "cause": o.event_codes[k],
                    "full": prim.name,
                    "reduced": m.name,
                    "added": r.terms_added,
                    "chisq": r.chisq,
                    "df": r.df,
                    "p_value": r.p_value,
                }
            )
    return {"lr_test": pd.DataFrame(rows, columns=list(LR_TEST.columns))}


@REGISTRY.step("predicted_incidence", produces=[], needs=("cs_fits",), artifacts=("cs_risks",))
def _predicted_incidence(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """Predicted cumulative incidence at the horizon of every model in every set."""
    ctx.progress("predicted cumulative incidence at the horizon")
    fitted = ctx.artifacts["cs_fits"]
    risks = {}
    for set_, frame in _sets(cohort, plan).items():
        for m in plan.models:
            with estimating(f"model {m.name}, {set_} set, predicted cumulative incidence"):
                risks[(set_, m.name)] = predicted_incidence(fitted[m.name], frame, plan)
    return {"cs_risks": risks}


@REGISTRY.step("optimism", produces=[OPTIMISM])
def _optimism(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Harrell's bootstrap optimism of every model at the development sites (models refitted).

    Every model is given the same seed, hence the same resamples
    (:func:`~studyval.analysis.internal_validation.resample_indices`); each
    counts its own failed resamples (module docstring).
    """
    ctx.progress(
        f"bootstrap optimism correction ({plan.sets.n_bootstrap} resamples of the development "
        "centre, every model refitted)"
    )
    dev = _sets(cohort, plan)["internal"]
    cols = sorted({"time", "code", *(c for m in plan.models for c in m.covariates)})
    frame = dev[cols]
    parts = []
    for m in plan.models:
        with estimating(f"model {m.name}, development centre, bootstrap optimism correction"):
            r = bootstrap_optimism(
                frame, refit_procedure(m, plan), n_resamples=plan.sets.n_bootstrap, seed=plan.seed
            )
        parts.append(r.to_frame().rename(columns={"model": "procedure"}).assign(model=m.name))
    out = pd.concat(parts, ignore_index=True)
    return {"optimism": out[["model", *out.columns.drop("model")]]}


@REGISTRY.step("performance", produces=[PERFORMANCE], needs=("cs_risks", "optimism"))
def _performance(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """td-AUC, Harrell's C, Brier score and IPA at the horizon, by set and model.

    ``apparent`` and its interval are the estimate on the set; at the
    development sites ``optimism`` and ``corrected`` are those of the
    ``optimism`` table (no interval: the bootstrap estimates the optimism, not
    the sampling distribution of the corrected value); externally they are NaN
    (no correction). ``null`` is the Brier score of the Aalen-Johansen null
    model (the IPA's reference).
    """
    ctx.progress("discrimination, Brier score and calibration at the horizon")
    o = plan.outcome
    risks = ctx.artifacts["cs_risks"]
    opt = ctx.tables["optimism"].set_index(["model", "measure"])
    rows = []
    for set_, frame in _sets(cohort, plan).items():
        t, c = frame["time"].to_numpy(float), frame["code"].to_numpy(int)
        for m in plan.models:
            risk = risks[(set_, m.name)]
            with estimating(f"model {m.name}, {set_} set, performance at the horizon"):
                auc = svv.time_dependent_auc(
                    t, c, risk, horizon=o.horizon, cause=o.cause, alpha=plan.alpha
                )
                hc = sv.harrell_c(t, (c == o.cause).astype(int), risk, alpha=plan.alpha)
                br = _brier(frame, risk, plan, conservative=False)
            internal = set_ == "internal"
            for measure, est, lo, hi in (
                ("td_auc", auc.estimate, auc.ci_low, auc.ci_high),
                ("harrell_c", hc.estimate, hc.ci_low, hc.ci_high),
                ("brier", br.estimate, br.ci_low, br.ci_high),
                ("ipa", br.ipa, np.nan, np.nan),
            ):
                rows.append(
                    {
                        "set": set_,
                        "model": m.name,
                        "measure": measure,
                        "apparent": est,
                        "apparent_ci_low": lo,
                        "apparent_ci_high": hi,
                        "optimism": opt.loc[(m.name, measure), "optimism"] if internal else np.nan,
                        "corrected": opt.loc[(m.name, measure), "corrected"]
                        if internal
                        else np.nan,
                        "null": br.null_estimate if measure in ("brier", "ipa") else np.nan,
                        "n": len(frame),
                        "n_deaths_by_horizon": auc.n_cases,
                        "n_censored_before_horizon": auc.n_censored_before_horizon,
                    }
                )
    return {"performance": pd.DataFrame(rows)}


@REGISTRY.step(
    "calibration", produces=[CALIBRATION_GROUPS, CALIBRATION_SUMMARY], needs=("cs_risks",)
)
def _calibration(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Predicted against Aalen-Johansen observed incidence by quantile group (calibration_groups_competing)."""
    o = plan.outcome
    risks = ctx.artifacts["cs_risks"]
    n_groups = int(plan.extra.get("calibration_groups", 5))
    groups, summary = [], []
    for set_, frame in _sets(cohort, plan).items():
        for m in plan.models:
            with estimating(f"model {m.name}, {set_} set, calibration at the horizon"):
                r = calibration_groups_competing(
                    frame["time"],
                    frame["code"],
                    risks[(set_, m.name)],
                    cause=o.cause,
                    horizon=o.horizon,
                    n_groups=n_groups,
                    alpha=plan.alpha,
                    causes=_causes(plan),
                )
            g = r.to_frame().rename(columns={"n_events": "n_deaths"})
            g.insert(0, "model", m.name)
            g.insert(0, "set", set_)
            groups.append(g)
            summary.append(
                {
                    "observed": r.observed,
                    "observed_ci_low": r.observed_ci_low,
                    "observed_ci_high": r.observed_ci_high,
                    "mean_predicted": r.mean_predicted,
                    "oe_ratio": r.oe_ratio,
                    "max_abs_group_difference": r.max_abs_group_difference,
                    "groups": r.n_groups,
                    "set": set_,
                    "model": m.name,
                }
            )
    return {
        "calibration_groups": pd.concat(groups, ignore_index=True),
        "calibration_summary": pd.DataFrame(summary),
    }


@REGISTRY.step("subgroup_performance", produces=[SUBGROUP_PERFORMANCE], needs=("cs_risks",))
def _subgroup_performance(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """td-AUC (the cause) and Harrell's C of the primary model within each subgroup level (apparent).

    A level where a measure cannot be estimated keeps NaN and says why in ``reason``.
    """
    ctx.progress("performance in the plan's subgroups")
    o = plan.outcome
    risks = ctx.artifacts["cs_risks"]
    sets = _sets(cohort, plan)
    rows = []
    for sg in plan.subgroups:
        for set_, frame in sets.items():
            risk = risks[(set_, plan.primary_model)]
            for level in sorted(frame[sg.variable].astype(str).unique()):
                m = (frame[sg.variable].astype(str) == level).to_numpy()
                t, c = frame["time"].to_numpy(float)[m], frame["code"].to_numpy(int)[m]
                row = {
                    "variable": sg.variable,
                    "status": sg.status,
                    "set": set_,
                    "level": level,
                    "n": int(m.sum()),
                    "n_deaths_by_horizon": int(((c == o.cause) & (t <= o.horizon)).sum()),
                    "td_auc": np.nan,
                    "td_auc_ci_low": np.nan,
                    "td_auc_ci_high": np.nan,
                    "harrell_c": np.nan,
                    "reason": "",
                }
                try:
                    a = svv.time_dependent_auc(
                        t, c, risk[m], horizon=o.horizon, cause=o.cause, alpha=plan.alpha
                    )
                    hc = sv.harrell_c(t, (c == o.cause).astype(int), risk[m], alpha=plan.alpha)
                    row.update(
                        td_auc=a.estimate,
                        td_auc_ci_low=a.ci_low,
                        td_auc_ci_high=a.ci_high,
                        harrell_c=hc.estimate,
                    )
                except EstimationError as exc:
                    row["reason"] = str(exc)
                rows.append(row)
    return {"subgroup_performance": pd.DataFrame(rows, columns=list(SUBGROUP_PERFORMANCE.columns))}


@REGISTRY.step("added_value", produces=[ADDED_VALUE], needs=("cs_risks",))
def _added_value(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """The primary model against the first other model: paired td-AUC and Harrell's C differences.

    td-AUC: :func:`~studyval.analysis.survival_validation.compare_time_dependent_auc`
    (paired influence-function SE); Harrell's C:
    :func:`~studyval.analysis.paired_bootstrap.harrell_c_difference` (percentile
    bootstrap of patients, models fixed, seed ``plan.seed + 1 + set index``; no p value).
    """
    ctx.progress("added value of the primary model's extra terms")
    o = plan.outcome
    risks = ctx.artifacts["cs_risks"]
    prim = _primary(plan).name
    comp = next((m.name for m in plan.models if m.role != "primary"), None)
    rows = []
    for j, (set_, frame) in enumerate(_sets(cohort, plan).items()):
        if comp is None:
            break
        t, c = frame["time"].to_numpy(float), frame["code"].to_numpy(int)
        ra, rb = risks[(set_, prim)], risks[(set_, comp)]
        cmp = svv.compare_time_dependent_auc(
            t, c, ra, rb, horizon=o.horizon, cause=o.cause, alpha=plan.alpha, names=(prim, comp)
        )
        rows.append(
            {
                "set": set_,
                "measure": "td_auc",
                "model_a": prim,
                "model_b": comp,
                "estimate_a": cmp.auc_a,
                "estimate_b": cmp.auc_b,
                "difference": cmp.difference,
                "se": cmp.se,
                "ci_low": cmp.ci_low,
                "ci_high": cmp.ci_high,
                "p_value": cmp.p_value,
                "n_resamples": None,
                "n_failed": None,
                "failures": "",
                "method": f"paired influence-function SE (compare_time_dependent_auc, cause {o.cause})",
            }
        )
        with estimating(f"{set_} set, difference in Harrell's C"):
            dc = harrell_c_difference(
                t,
                (c == o.cause).astype(int),
                ra,
                rb,
                n_resamples=plan.sets.n_bootstrap,
                seed=plan.seed + 1 + j,
                alpha=plan.alpha,
                method="percentile",
                labels=(prim, comp),
            )
        rows.append(
            {
                "set": set_,
                "measure": "harrell_c",
                "model_a": prim,
                "model_b": comp,
                "estimate_a": dc.estimate_a,
                "estimate_b": dc.estimate_b,
                "difference": dc.difference,
                "se": dc.se,
                "ci_low": dc.ci_low,
                "ci_high": dc.ci_high,
                "p_value": np.nan,  # no oracle-tested bootstrap p-value
                "n_resamples": dc.n_resamples,
                "n_failed": dc.n_failed,
                "failures": "; ".join(f"{r}: {k}" for r, k in dc.failures),
                "method": (
                    f"percentile bootstrap ({dc.n_resamples} resamples of patients, models fixed; "
                    "paired_bootstrap.harrell_c_difference)"
                ),
            }
        )
    out = pd.DataFrame(rows, columns=list(ADDED_VALUE.columns))
    out[["n_resamples", "n_failed"]] = out[["n_resamples", "n_failed"]].astype("Int64")
    return {"added_value": out}


# ----------------------------------------------------------------------------- issue 16 additions

CALIBRATION_SLOPE = TableSpec(
    "calibration_slope",
    "Calibration slope of the predicted incidence at the horizon (Fine-Gray on cloglog), by set "
    "and model; optimism-corrected at the development sites",
    ("set", "model", "apparent", "apparent_ci_low", "apparent_ci_high", "se", "optimism",
     "corrected", "optimism_mc_se", "n", "n_events_by_horizon", "n_competing_by_horizon",
     "censored_at_horizon", "n_resamples", "n_succeeded", "n_failed", "failures", "seed"),
)  # fmt: skip
VALIDATION_SAMPLE_SIZE = TableSpec(
    "validation_sample_size",
    "Riley et al. (2021) minimum size of the external validation sample (binary outcome by the "
    "horizon) against the external set's patients whose status at the horizon is known (adequate "
    "judged on these) and its events by the horizon; all its patients and those censored before "
    "the horizon as context",
    ("criterion", "label", "anticipated", "target_ci_width", "se", "ci_width",
     "required_unrounded", "required", "required_events", "available", "available_known",
     "censored_before_horizon", "available_events", "adequate", "assumption"),
)  # fmt: skip


def _slope_censoring(plan: PredictionModelPlan) -> bool:
    value = plan.extra.get("calibration_slope_censor_at_horizon", True)
    if not isinstance(value, bool):
        raise EstimationError(
            f"extra.calibration_slope_censor_at_horizon must be true or false, got {value!r}"
        )
    return value


def _slope(frame: pd.DataFrame, risk: np.ndarray, plan: PredictionModelPlan):
    o = plan.outcome
    return calibration_slope_competing(
        frame["time"].to_numpy(float),
        frame["code"].to_numpy(int),
        risk,
        cause=o.cause,
        horizon=o.horizon,
        censor_at_horizon=_slope_censoring(plan),
        alpha=plan.alpha,
        causes=_causes(plan),
    )


@REGISTRY.step("calibration_slope", produces=[CALIBRATION_SLOPE], needs=("cs_risks",))
def _calibration_slope(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """Calibration slope of each model's predicted incidence, optimism-corrected internally.

    :func:`~studyval.analysis.competing_risks_calibration.calibration_slope_competing`
    (Fine-Gray on the complementary log-log of the predicted incidence; follow-up
    censored at the horizon unless ``extra.calibration_slope_censor_at_horizon`` is
    false). At the development sites Harrell's bootstrap
    (:func:`~studyval.analysis.internal_validation.bootstrap_optimism`) refits the
    cause-specific models of :func:`refit_procedure` in each resample, with the
    ``optimism`` step's seed (the same resamples); it is a separate run so that the
    ``optimism`` table keeps its own failed resamples. Externally: apparent only.
    """
    ctx.progress(
        f"calibration slope of the predicted incidence ({plan.sets.n_bootstrap} bootstrap "
        "resamples of the development centre)"
    )
    risks = ctx.artifacts["cs_risks"]
    censor = _slope_censoring(plan)
    rows = []
    for set_, frame in _sets(cohort, plan).items():
        for m in plan.models:
            with estimating(f"model {m.name}, {set_} set, calibration slope"):
                r = _slope(frame, risks[(set_, m.name)], plan)
            row = {
                "set": set_,
                "model": m.name,
                "apparent": r.slope,
                "apparent_ci_low": r.ci_low,
                "apparent_ci_high": r.ci_high,
                "se": r.se,
                "optimism": np.nan,
                "corrected": np.nan,
                "optimism_mc_se": np.nan,
                "n": r.n,
                "n_events_by_horizon": r.n_events,
                "n_competing_by_horizon": r.n_competing,
                "censored_at_horizon": censor,
                "n_resamples": None,
                "n_succeeded": None,
                "n_failed": None,
                "failures": "",
                "seed": None,
            }
            if set_ == "internal":
                base = refit_procedure(m, plan)
                proc = RefitModel(
                    fit=base.fit,
                    predict=base.predict,
                    measures=lambda f, risk: {"calibration_slope": _slope(f, risk, plan).slope},
                    description=base.description + "; calibration slope (Fine-Gray on cloglog)",
                )
                cols = sorted({"time", "code", *m.covariates})
                with estimating(f"model {m.name}, development centre, optimism of the slope"):
                    b = bootstrap_optimism(
                        frame[cols], proc, n_resamples=plan.sets.n_bootstrap, seed=plan.seed
                    )
                row.update(
                    optimism=float(b.optimism[0]),
                    corrected=float(b.corrected[0]),
                    optimism_mc_se=float(b.optimism_mc_se[0]),
                    n_resamples=b.n_resamples,
                    n_succeeded=b.n_succeeded,
                    n_failed=b.n_failed,
                    failures="; ".join(f"{reason}: {k}" for reason, k in b.failures),
                    seed=b.seed,
                )
            rows.append(row)
    out = pd.DataFrame(rows, columns=list(CALIBRATION_SLOPE.columns))
    for col in ("n_resamples", "n_succeeded", "n_failed", "seed"):
        out[col] = out[col].astype("Int64")
    return {"calibration_slope": out}


#: Keys of ``extra.validation_sample_size`` (planning values of the external validation).
#: The keys of ``extra.validation_sample_size`` (typed by studyval.plan.ValidationSampleSizeSpec).
VALIDATION_KEYS = tuple(ValidationSampleSizeSpec.model_fields)


def _validation_inputs(plan: PredictionModelPlan) -> dict[str, Any]:
    spec = plan.extra.get("validation_sample_size")
    if not isinstance(spec, dict):
        raise EstimationError(
            "the plan names validation_sample_size but has no extra.validation_sample_size "
            f"(keys {', '.join(VALIDATION_KEYS)})"
        )
    return spec  # its keys and types are checked when the plan loads (plan.ValidationSampleSizeSpec)


@REGISTRY.step("validation_sample_size", produces=[VALIDATION_SAMPLE_SIZE])
def _validation_sample_size(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """Riley et al. (2021) criteria for the external validation sample, against the external set.

    The outcome is planned as binary, the cause by the horizon
    (:func:`~studyval.analysis.sample_size_validation.riley_validation_binary`, planning values
    in ``extra.validation_sample_size``; ``lp`` is ``from_c_statistic`` or ``[mean, sd]``).
    A binary outcome by the horizon is defined only for patients whose status at the horizon is
    known (:func:`~studyval.analysis.sample_size_validation.horizon_status_counts`: the cause or a
    competing event by the horizon, or followed to it), so ``adequate`` compares
    ``available_known`` (and ``available_events``, events of the cause by the horizon) with the
    requirement; ``available`` (all the external set's patients) and
    ``censored_before_horizon`` are context. A plan without external sites has nothing to
    compare.
    """
    ctx.progress("sample size of the external validation (Riley et al. 2021)")
    o = plan.outcome
    spec = _validation_inputs(plan)
    sets = _sets(cohort, plan)
    if "external" not in sets:
        raise EstimationError("validation_sample_size needs external sites in the plan")
    lp = spec["lp"]
    res = riley_validation_binary(
        prevalence=float(spec["prevalence"]),
        c_statistic=float(spec["c_statistic"]),
        lp_normal=None if lp == "from_c_statistic" else (float(lp[0]), float(lp[1])),
        lp_from_c_statistic=lp == "from_c_statistic",
        oe=float(spec["oe"]),
        oe_ci_width=float(spec["oe_ci_width"]),
        slope_ci_width=float(spec["slope_ci_width"]),
        c_ci_width=float(spec["c_ci_width"]),
    )
    ext = sets["external"]
    status = horizon_status_counts(
        ext["time"].to_numpy(float),
        ext["code"].to_numpy(int),
        cause=o.cause,
        horizon=o.horizon,
        causes=_causes(plan),
    )
    lp_text = (
        "LP binormal from the C-statistic"
        if lp == "from_c_statistic"
        else f"LP normal (mean {lp[0]}, SD {lp[1]})"
    )
    assumption = (
        f"{o.event_codes[o.cause]} by {o.horizon_label} in {spec['prevalence']:g} of patients, "
        f"C-statistic {spec['c_statistic']:g}, O/E {spec['oe']:g}, {lp_text}; 95% CI widths: "
        f"O/E {spec['oe_ci_width']:g}, slope {spec['slope_ci_width']:g}, C {spec['c_ci_width']:g}"
    )
    t = res.to_frame()
    minimum = {
        "criterion": "minimum",
        "label": f"Minimum sample size ({res.governing.replace('_', ' ')} criterion)",
        "anticipated": np.nan,
        "target_ci_width": np.nan,
        "se": np.nan,
        "ci_width": np.nan,
        "required_unrounded": float(
            t.loc[t["criterion"] == res.governing, "required_unrounded"].iloc[0]
        ),
        "required": res.required,
        "required_events": res.required_events,
    }
    t = pd.concat([t, pd.DataFrame([minimum])], ignore_index=True)
    t["available"] = status.n
    t["available_known"] = status.n_known
    t["censored_before_horizon"] = status.n_censored_before
    t["available_events"] = status.n_event
    t["adequate"] = (t["available_known"] >= t["required"]) & (
        t["available_events"] >= t["required_events"]
    )
    t["assumption"] = assumption
    return {"validation_sample_size": t[list(VALIDATION_SAMPLE_SIZE.columns)]}


# ----------------------------------------------------------------------------- absolute risk
# (a prognostic-model study whose Cox model is cause-specific, plan 1.1, issue 16)

#: Steps for a study of the prognostic-model type with a competing event (module docstring).
ABSOLUTE_RISK = StepRegistry("competing-risks-absolute-risk")

CR_INCIDENCE = TableSpec(
    "cr_incidence",
    "Aalen-Johansen incidence of the cause at the horizon (competing events not censored) beside "
    "one minus Kaplan-Meier (competing events censored), all patients and by predicted risk group",
    ("model", "group", "order", "n", "n_events", "n_competing", "aj_incidence", "aj_ci_low",
     "aj_ci_high", "km_risk", "km_ci_low", "km_ci_high", "excess"),
)  # fmt: skip
CS_ABSOLUTE_RISK = TableSpec(
    "cs_absolute_risk",
    "Absolute risk of the cause by the horizon predicted from cause-specific Cox models of every "
    "cause, against Aalen-Johansen: O/E, Brier score, IPA, calibration slope (apparent)",
    ("model", "n", "n_events_by_horizon", "n_competing_by_horizon", "observed", "observed_ci_low",
     "observed_ci_high", "mean_predicted", "mean_predicted_km", "oe_ratio", "brier",
     "brier_ci_low", "brier_ci_high", "null_brier", "ipa", "slope", "slope_ci_low",
     "slope_ci_high", "max_abs_group_difference", "groups"),
)  # fmt: skip
CS_ABSOLUTE_RISK_GROUPS = TableSpec(
    "cs_absolute_risk_groups",
    "Mean predicted absolute risk (cause-specific Cox models of every cause) against the "
    "Aalen-Johansen incidence at the horizon, by quantile group",
    ("model", "group", "n", "predicted", "observed", "ci_low", "ci_high", "n_events"),
)
CS_COX_COMPETING = TableSpec(
    "cs_cox_competing",
    "Cause-specific Cox model of each competing event (the other causes censored), per model and "
    "term: what the absolute risk needs besides the model of the cause",
    ("model", "cause", "term", "coef", "hr", "ci_low", "ci_high", "p_value", "n", "n_events",
     "converged"),
)  # fmt: skip


def _prognostic_frame(cohort: Cohort, plan: PredictionModelPlan) -> tuple[Any, pd.DataFrame]:
    """The prognostic type's development data, and its frame with ``code`` (the event code)."""
    from studyval.steps import prognostic

    data = prognostic.development_data(cohort, plan)
    return data, data.frame.assign(code=data.frame["event_code"])


def _absolute_fits(
    data: Any, frame: pd.DataFrame, plan: PredictionModelPlan
) -> dict[str, CauseSpecificFits]:
    fits = {}
    for m in plan.models:
        with estimating(f"model {m.name}, cause-specific Cox models of every cause"):
            f = fit_cause_specific(frame, list(data.terms[m.name]), plan)
        bad = [plan.outcome.event_codes[k] for k, cf in f.fits.items() if not cf.converged]
        if bad:
            raise EstimationError(
                f"model {m.name}: the cause-specific Cox model for {', '.join(bad)} did not "
                "converge; the absolute risk cannot be predicted"
            )
        fits[m.name] = f
    return fits


@ABSOLUTE_RISK.step("competing_risk_incidence", produces=[CR_INCIDENCE])
def _competing_risk_incidence(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """Aalen-Johansen incidence against one minus Kaplan-Meier, all and by predicted risk group.

    :func:`~studyval.analysis.cumulative_incidence.incidence_against_km`; the groups are those of
    the ``risk_groups`` step (the primary Cox model's predicted risk, deaths censored, cut at
    ``extra.risk_groups`` with ``extra.risk_group_labels``).
    """
    from studyval.steps import prognostic

    ctx.progress("cumulative incidence with the competing event (Aalen-Johansen) against 1 - KM")
    o = plan.outcome
    data, frame = _prognostic_frame(cohort, plan)
    fit = prognostic.fit_models(data, plan)[plan.primary_model]
    cuts = [float(c) for c in plan.extra.get("risk_groups", [0.1, 0.2])]
    labels = plan.extra.get("risk_group_labels") or None
    r = incidence_against_km(
        frame["time"].to_numpy(float),
        frame["code"].to_numpy(int),
        cause=o.cause,
        horizon=o.horizon,
        predicted_risk=prognostic.predicted_risk(fit, data),
        cuts=cuts,
        labels=labels,
        alpha=plan.alpha,
        causes=_causes(plan),
    )
    return {
        "cr_incidence": r.to_frame().assign(model=plan.primary_model)[list(CR_INCIDENCE.columns)]
    }


@ABSOLUTE_RISK.step(
    "cs_absolute_risk", produces=[CS_ABSOLUTE_RISK, CS_ABSOLUTE_RISK_GROUPS, CS_COX_COMPETING]
)
def _cs_absolute_risk(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """Absolute risk from cause-specific Cox models of every cause, with competing-risk calibration.

    Each plan model is fitted as one cause-specific Cox model per cause (the cause's model is the
    plan's Cox model; the competing event's has the same terms); the predicted cumulative
    incidence by the horizon is :func:`predicted_incidence` (Benichou & Gail, exponential form).
    Against the Aalen-Johansen incidence: O/E and quantile groups
    (:func:`~studyval.analysis.competing_risks_calibration.calibration_groups_competing`),
    the IPCW Brier score and IPA with the competing event
    (:func:`~studyval.analysis.competing_risks_brier.brier_competing`) and the calibration slope
    (:func:`~studyval.analysis.competing_risks_calibration.calibration_slope_competing`), all
    apparent (on the development data). ``mean_predicted_km`` is the mean of each model's own
    predicted risk (one minus its survival, deaths censored), as the ``calibration`` step gives
    it for the primary model
    (:func:`~studyval.analysis.survival_validation.calibration_at_horizon`).
    """
    from studyval.steps import prognostic

    ctx.progress("absolute risk from cause-specific Cox models of every cause")
    o = plan.outcome
    data, frame = _prognostic_frame(cohort, plan)
    fits = _absolute_fits(data, frame, plan)
    km_fits = prognostic.fit_models(data, plan)
    n_groups = int(plan.extra.get("calibration_groups", 5))
    rows, groups, cox_rows = [], [], []
    for m in plan.models:
        with estimating(f"model {m.name}, absolute risk at the horizon"):
            risk = predicted_incidence(fits[m.name], frame, plan)
            cal = calibration_groups_competing(
                frame["time"],
                frame["code"],
                risk,
                cause=o.cause,
                horizon=o.horizon,
                n_groups=n_groups,
                alpha=plan.alpha,
                causes=_causes(plan),
            )
            br = _brier(frame, risk, plan, conservative=False)
            sl = _slope(frame, risk, plan)
        rows.append(
            {
                "model": m.name,
                "n": len(frame),
                "n_events_by_horizon": sl.n_events,
                "n_competing_by_horizon": sl.n_competing,
                "observed": cal.observed,
                "observed_ci_low": cal.observed_ci_low,
                "observed_ci_high": cal.observed_ci_high,
                "mean_predicted": cal.mean_predicted,
                "mean_predicted_km": svv.calibration_at_horizon(
                    data.time,
                    data.status,
                    prognostic.predicted_risk(km_fits[m.name], data),
                    horizon=data.horizon,
                    groups=n_groups,
                ).mean_predicted,
                "oe_ratio": cal.oe_ratio,
                "brier": br.estimate,
                "brier_ci_low": br.ci_low,
                "brier_ci_high": br.ci_high,
                "null_brier": br.null_estimate,
                "ipa": br.ipa,
                "slope": sl.slope,
                "slope_ci_low": sl.ci_low,
                "slope_ci_high": sl.ci_high,
                "max_abs_group_difference": cal.max_abs_group_difference,
                "groups": cal.n_groups,
            }
        )
        g = cal.to_frame()
        g.insert(0, "model", m.name)
        groups.append(g)
        for k in o.competing:
            fit = fits[m.name].fits[k]
            s = fit.summary.copy()
            s.insert(0, "cause", o.event_codes[k])
            s.insert(0, "model", m.name)
            s["n"], s["n_events"], s["converged"] = fit.n, fit.n_events, bool(fit.converged)
            cox_rows.append(s)
    cox_table = pd.concat(cox_rows, ignore_index=True)
    return {
        "cs_absolute_risk": pd.DataFrame(rows, columns=list(CS_ABSOLUTE_RISK.columns)),
        "cs_absolute_risk_groups": pd.concat(groups, ignore_index=True)[
            list(CS_ABSOLUTE_RISK_GROUPS.columns)
        ],
        "cs_cox_competing": cox_table[
            [*CS_COX_COMPETING.columns, *cox_table.columns.drop(list(CS_COX_COMPETING.columns))]
        ],
    }
