"""Steps of the prognostic-model study type: Cox models developed and validated internally.

A study of this type (TRIPOD+AI) fits the Cox models its plan names on the
included patients (:func:`studyval.study_cohort.included_rows`: ``exclusion_reason ==
"none"``, or the plan's ``cohort.exclusion``) and reports, at the plan's
horizon, how well they discriminate and calibrate, corrected for optimism by
Harrell's bootstrap. Every step is parameterised by the
:class:`~studyval.plan.PredictionModelPlan` alone; a protocol of this type adds
its own flow, baseline and checklist steps and registers
``REGISTRY.including(<its registry>)``.

What a step reads from the plan
-------------------------------
* ``outcome``: follow-up time and event columns, the event codes, the cause of
  interest and the horizon. The Cox models estimate the cause-specific hazard
  (other events censored); the time-dependent AUC counts a competing event
  before the horizon as a control (Blanche et al. 2013, "definition 2"); the
  Kaplan-Meier based measures (Brier, calibration, decision curve, risk groups)
  censor it.
* ``models``: name, role (one ``primary``; ``comparator`` models are compared
  with it) and covariates (dictionary columns; a categorical column enters as
  indicators against its first level, named ``column[level]``).
* ``sets.n_bootstrap``, ``seed``, ``alpha``; ``sample_size`` (Riley criteria).
* ``extra`` (each optional): ``calibration_groups`` (5), ``risk_groups`` (cuts of
  predicted risk, ``[0.1, 0.2]``) and ``risk_group_labels``, ``km_ticks`` (times
  of the numbers at risk, in the outcome time unit), ``decision_thresholds``
  (``[from, to, step]``, ``[0.02, 0.5, 0.01]``), ``zph_transform`` (``"km"``),
  ``apply_to_new_patients`` (``"shrunk"`` or ``"unshrunk"``: which version of the
  models the plan says new patients should be scored with; shown by ``shrunk_model``,
  "not stated in the plan" when absent).

Steps and tables
----------------
============================  ==========================================================
``sample_size``               ``sample_size``, ``sample_size_criteria``
``cox_models``                ``models``, ``cox_coefficients``, ``cox_fit``, ``baseline_survival``
``ph_check``                  ``zph``, ``zph_residuals``, ``zph_smooth``
``performance``               ``performance``, ``td_auc_counts``
``optimism``                  ``optimism``
``shrunk_model``              ``shrunk_model`` (needs ``optimism``)
``calibration``               ``calibration_groups``, ``calibration_curve``, ``calibration_summary``
``risk_groups``               ``km_risk_groups``, ``km_at_risk``, ``risk_groups``, ``risk_group_logrank``
``decision_curve``            ``decision_curve``
``model_comparison``          ``comparison``
``linearity``                 ``cox_linearity`` (``extra.linearity_predictors``, ``linearity_knots``)
============================  ==========================================================

Each step refits the plan's Cox models (deterministic and fast), so that a
step depends on the cohort and the plan only.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis import sample_size
from studyval.analysis.concordance import harrell_c, uno_c
from studyval.analysis.cox import CoxResult, cox, nested_cox_test
from studyval.analysis.cox_linearity import cox_linearity
from studyval.analysis.cox_shrinkage import shrink_cox
from studyval.analysis.cox_zph import cox_zph, zph_smooth
from studyval.analysis.decision_curve_survival import net_benefit_survival
from studyval.analysis.internal_validation import cox_optimism
from studyval.analysis.paired_bootstrap import harrell_c_difference
from studyval.analysis.sample_size_survival import riley_survival
from studyval.analysis.survival_validation import (
    brier,
    calibration_at_horizon,
    compare_time_dependent_auc,
    risk_groups_at_horizon,
    time_dependent_auc,
)
from studyval.cohort import Cohort, estimating
from studyval.errors import EstimationError, StudyvalError
from studyval.plan import PredictionModelPlan
from studyval.steps.common import MODELS, SAMPLE_SIZE, sample_size_row
from studyval.steps.registry import StepContext, StepRegistry, TableSpec
from studyval.study_cohort import included_rows

__all__ = [
    "MEASURE_LABELS",
    "REGISTRY",
    "DevelopmentData",
    "design_frame",
    "development_data",
    "fit_models",
    "model_terms",
    "predicted_risk",
]

REGISTRY = StepRegistry("prognostic-model")

#: Labels of the performance measures (tables and report).
MEASURE_LABELS = {
    "harrell_c": "Harrell's C",
    "somers_dxy": "Somers' Dxy (2C - 1)",
    "uno_c": "Uno's C (to the horizon)",
    "auc_horizon": "Time-dependent AUC at the horizon",
    "brier": "Brier score at the horizon",
    "ipa": "IPA (scaled Brier)",
    "calibration_slope": "Calibration slope",
}

# ----------------------------------------------------------------------------- tables

SAMPLE_SIZE_CRITERIA = TableSpec(
    "sample_size_criteria",
    "Riley criteria for a time-to-event model, one row per criterion, with the planning values",
    ("criterion", "n", "required", "events", "epp", "assumptions", "assumptions_source"),
)
COX_COEFFICIENTS = TableSpec(
    "cox_coefficients",
    "Coefficients of each Cox model, one row per model and term",
    ("model", "role", "term", "coef", "se", "hr", "ci_low", "ci_high", "z", "p_value", "ci_level"),
)
COX_FIT = TableSpec(
    "cox_fit",
    "Fit of each Cox model: patients, events, likelihood-ratio test, concordance, convergence",
    ("model", "n", "n_events", "parameters", "loglik_null", "loglik", "lr_chisq", "lr_df",
     "lr_p", "concordance", "converged", "ties"),
)  # fmt: skip
BASELINE_SURVIVAL = TableSpec(
    "baseline_survival",
    "Baseline survival at the horizon of each Cox model (covariates 0, not centred)",
    ("model", "horizon", "cumhaz_at_horizon", "baseline_survival_at_horizon", "note"),
)
ZPH = TableSpec(
    "zph",
    "cox.zph test of proportional hazards of the primary model, one row per term and GLOBAL",
    ("term", "chisq", "df", "p_value", "transform"),
)
ZPH_RESIDUALS = TableSpec(
    "zph_residuals",
    "Scaled Schoenfeld residuals of the primary model, one row per event and term",
    ("time", "g_time", "term", "residual"),
)
ZPH_SMOOTH = TableSpec(
    "zph_smooth",
    "Spline smooth of the scaled Schoenfeld residuals (plot.cox.zph) with its pointwise interval",
    ("term", "time", "g_time", "fit", "ci_low", "ci_high", "coef"),
)
PERFORMANCE = TableSpec(
    "performance",
    "Apparent performance of each model: Harrell's and Uno's C, AUC, Brier score and IPA",
    ("model", "measure", "label", "estimate", "se", "ci_low", "ci_high", "ci_level"),
)
TD_AUC_COUNTS = TableSpec(
    "td_auc_counts",
    "Cases, controls and patients censored before the horizon behind the time-dependent AUC",
    ("horizon", "n_cases", "n_controls", "n_censored_before_horizon"),
)
OPTIMISM = TableSpec(
    "optimism",
    "Harrell's bootstrap optimism correction, one row per model and measure",
    ("model", "measure", "label", "apparent", "optimism", "corrected", "n_resamples", "n_failed"),
)
SHRUNK_MODEL = TableSpec(
    "shrunk_model",
    "Each Cox model uniformly shrunk by its optimism-corrected calibration slope, one row per model "
    "and term: coefficients and hazard ratios unshrunk and shrunk, and the baseline survival at "
    "the horizon of both (shrunk: re-estimated with the shrunk linear predictor as an offset)",
    ("model", "role", "term", "shrinkage", "shrinkage_source", "coef", "hr", "coef_shrunk",
     "hr_shrunk", "horizon", "cumhaz_at_horizon", "baseline_survival_at_horizon",
     "cumhaz_shrunk_at_horizon", "baseline_survival_shrunk_at_horizon", "apply_to_new_patients"),
)  # fmt: skip
CALIBRATION_GROUPS = TableSpec(
    "calibration_groups",
    "Kaplan-Meier observed against mean predicted risk at the horizon, by quantile group (primary)",
    ("group", "n", "n_events", "mean_predicted", "observed", "ci_low", "ci_high"),
)
CALIBRATION_CURVE = TableSpec(
    "calibration_curve",
    "Smooth calibration curve at the horizon of the primary model",
    ("predicted", "observed"),
)
CALIBRATION_SUMMARY = TableSpec(
    "calibration_summary",
    "ICI, E50, E90, Emax and mean predicted against observed risk at the horizon (primary)",
    ("model", "horizon", "ici", "e50", "e90", "emax", "mean_predicted", "observed_risk", "n",
     "n_events", "n_groups"),
)  # fmt: skip
KM_RISK_GROUPS = TableSpec(
    "km_risk_groups",
    "Kaplan-Meier curves by group of predicted risk at the horizon (primary model)",
    ("group", "time", "n_risk", "n_event", "n_censor", "survival", "se", "ci_low", "ci_high"),
)
KM_AT_RISK = TableSpec(
    "km_at_risk", "Numbers at risk under the risk-group curves", ("group", "time", "n_risk")
)
RISK_GROUPS = TableSpec(
    "risk_groups",
    "Each group of predicted risk: patients, mean predicted and Kaplan-Meier risk at the horizon",
    ("group", "order", "n", "mean_predicted", "km_risk", "ci_low", "ci_high"),
)
RISK_GROUP_LOGRANK = TableSpec(
    "risk_group_logrank",
    "Log-rank test across the groups of predicted risk",
    ("chisq", "df", "p_value", "cuts"),
)
DECISION_CURVE = TableSpec(
    "decision_curve",
    "Net benefit at the horizon of each model, treat all and treat none, by threshold risk",
    ("strategy", "threshold", "net_benefit", "n_treated", "km_risk_treated"),
)
COMPARISON = TableSpec(
    "comparison",
    "The primary model against each comparator: likelihood ratio, difference in C and in AUC",
    ("comparison", "terms_added", "estimate", "se", "ci_low", "ci_high", "df", "p_value",
     "n_resamples", "n_failed", "failures", "method"),
)  # fmt: skip

# ----------------------------------------------------------------------------- data


def _term_columns(clin: pd.DataFrame, variables: list[str]) -> pd.DataFrame:
    """Numeric model terms from dictionary columns; categorical -> indicators vs the first level."""
    out: dict[str, pd.Series] = {}
    for v in variables:
        col = clin[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            for lev in [str(c) for c in col.cat.categories][1:]:
                out[f"{v}[{lev}]"] = (col.astype(str) == lev).astype(float)
        else:
            out[v] = col.astype(float)
    return pd.DataFrame(out, index=clin.index)


def design_frame(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """Included patients: model terms, ``time``, ``event_code``, ``status`` (1 = cause), ``patient_id``."""
    clin = cohort.clinical
    inc = clin[included_rows(clin, plan.cohort).to_numpy(bool)].copy()
    variables = list(dict.fromkeys(v for m in plan.models for v in m.covariates))
    terms = _term_columns(inc, variables)
    o = plan.outcome
    terms["time"] = inc[o.time].astype(float)
    terms["event_code"] = inc[o.event].astype(int)
    terms["status"] = (terms["event_code"] == o.cause).astype(int)
    # patient_id is carried for the cluster bootstrap's bookkeeping; a study without one has
    # one row per patient
    ids = inc["patient_id"] if "patient_id" in inc.columns else pd.Series(inc.index, index=inc.index)
    terms["patient_id"] = ids.astype(str)
    return terms.reset_index(drop=True)


def model_terms(cohort: Cohort, plan: PredictionModelPlan) -> dict[str, list[str]]:
    """Model name -> its term columns in :func:`design_frame` (in the order of its covariates)."""
    head = cohort.clinical.head(1)
    return {m.name: list(_term_columns(head, m.covariates).columns) for m in plan.models}


def _check_outcome(d: pd.DataFrame, plan: PredictionModelPlan) -> None:
    o = plan.outcome
    if len(d) == 0:
        raise EstimationError("no included patients (every screened patient is excluded)")
    if int(d["status"].sum()) == 0:
        raise EstimationError(
            f"no {o.event_codes[o.cause]} events among the {len(d)} included patients "
            "(all censored or competing): the Cox model and every performance measure are undefined"
        )
    last = float(d["time"].max())
    if o.horizon >= last:
        raise EstimationError(
            f"horizon {o.horizon:g} {o.time_unit} ({o.horizon_label}) is at or beyond the last "
            f"follow-up time {last:g} {o.time_unit}: risks at the horizon are not estimable "
            "(nobody is observed past it)"
        )


@dataclass(frozen=True)
class DevelopmentData:
    """The included patients as the Cox models see them.

    Attributes
    ----------
    frame : DataFrame
        :func:`design_frame`.
    terms : dict of str to list of str
        :func:`model_terms`.
    horizon : float
        The plan's horizon, in the outcome's time unit.
    """

    frame: pd.DataFrame
    terms: dict[str, list[str]]
    horizon: float

    @property
    def time(self) -> np.ndarray:
        """Follow-up times."""
        return self.frame["time"].to_numpy(float)

    @property
    def status(self) -> np.ndarray:
        """1 = the event of interest, 0 = censored or a competing event."""
        return self.frame["status"].to_numpy(int)

    @property
    def event_code(self) -> np.ndarray:
        """The plan's event code (0 censored, the cause, competing codes)."""
        return self.frame["event_code"].to_numpy(int)


def development_data(cohort: Cohort, plan: PredictionModelPlan) -> DevelopmentData:
    """The development data, after checking that the horizon and the events allow an analysis.

    Raises
    ------
    EstimationError
        No included patient, no event of interest, or a horizon at or beyond the last follow-up.
    """
    d = design_frame(cohort, plan)
    _check_outcome(d, plan)
    return DevelopmentData(d, model_terms(cohort, plan), float(plan.outcome.horizon))


def fit_models(data: DevelopmentData, plan: PredictionModelPlan) -> dict[str, CoxResult]:
    """The plan's Cox models (Efron ties) fitted on all included patients, by name."""
    fits = {}
    for m in plan.models:
        with estimating(f"model {m.name}, all included patients, Cox model"):
            fits[m.name] = cox(
                data.frame,
                duration="time",
                event="status",
                covariates=data.terms[m.name],
                alpha=plan.alpha,
            )
    return fits


def predicted_risk(fit: CoxResult, data: DevelopmentData) -> np.ndarray:
    """Predicted risk by the horizon, kept inside (1e-8, 1 - 1e-8) for the log-log transforms."""
    return np.clip(fit.predict_risk_at(data.frame, data.horizon), 1e-8, 1 - 1e-8)


def _comparators(plan: PredictionModelPlan) -> list[str]:
    return [m.name for m in plan.models if m.role == "comparator"]


# ----------------------------------------------------------------------------- steps


@REGISTRY.step("sample_size", produces=[SAMPLE_SIZE, SAMPLE_SIZE_CRITERIA])
def _sample_size(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Riley criteria against the registered and the analysed numbers."""
    ctx.progress("sample size check (Riley criteria)")
    data = development_data(cohort, plan)
    ss = plan.sample_size
    r = riley_survival(
        parameters=ss.parameters,
        rate=ss.rate,
        timepoint=ss.timepoint,
        mean_follow_up=ss.mean_follow_up,
        r2_cs=ss.r2_cs,
        r2_nagelkerke=ss.r2_nagelkerke,
        shrinkage=ss.shrinkage,
    )
    basis = "the Riley criteria (illustrative planning values)"
    assumptions = (
        f"parameters {ss.parameters}, rate {ss.rate:g}/year, timepoint {ss.timepoint:g} year, "
        f"mean follow-up {ss.mean_follow_up:g} years, "
        + (f"R2_CS {ss.r2_cs:g}" if ss.r2_cs is not None else f"Nagelkerke R2 {ss.r2_nagelkerke:g}")
        + f" (R2_CS {r.r2_cs:.4f}, max R2_CS {r.max_r2_cs:.4f}), shrinkage {ss.shrinkage:g}"
    )
    n_obs = len(data.frame)
    registered = sample_size.check_registered(
        r.n, ss.registered_total, label="participants", basis=basis
    )
    observed = sample_size.check_registered(
        r.n, n_obs, label="participants", basis=basis, counted="analysed"
    )
    events = int(data.status.sum())
    o = plan.outcome
    rows = [
        sample_size_row(
            registered,
            check="registered",
            quantity="participants (registered enrolment)",
            assumption=assumptions,
            method=r.method,
        ),
        sample_size_row(
            observed,
            check="observed",
            quantity="participants analysed",
            assumption=assumptions,
            method=r.method,
        ),
        {
            "check": "observed events",
            "quantity": f"{o.event_codes[o.cause]} events (all follow-up)",
            "assumption": assumptions,
            "method": r.method,
            "required_unrounded": float(r.events),
            "required": int(r.required_events),
            "available": events,
            "shortfall": max(0, int(r.required_events) - events),
            "adequate": events >= int(r.required_events),
            "message": f"{events} events for {ss.parameters} parameters: "
            f"{events / ss.parameters:.1f} events per parameter (the Riley requirement implies "
            f"{r.epp:.1f}).",
        },
    ]
    crit = r.to_frame()
    crit["assumptions"] = assumptions
    crit["assumptions_source"] = " ".join(ss.assumptions_source.split())
    return {"sample_size": pd.DataFrame(rows), "sample_size_criteria": crit}


@REGISTRY.step("cox_models", produces=[MODELS, COX_COEFFICIENTS, COX_FIT, BASELINE_SURVIVAL])
def _cox_models(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """The plan's Cox models: coefficients, fit statistics and baseline survival at the horizon."""
    ctx.progress("Cox models")
    data = development_data(cohort, plan)
    fits = fit_models(data, plan)
    roles = {m.name: m.role for m in plan.models}
    coefs = []
    for name, f in fits.items():
        s = f.summary.copy()
        s.insert(0, "role", roles[name])
        s.insert(0, "model", name)
        s["ci_level"] = f.ci_level
        coefs.append(s)
    fit_rows = [
        {
            "model": name,
            "n": f.n,
            "n_events": f.n_events,
            "parameters": len(f.covariates),
            "loglik_null": f.loglik_null,
            "loglik": f.loglik,
            "lr_chisq": f.lr_chisq,
            "lr_df": f.lr_df,
            "lr_p": f.lr_p,
            "concordance": f.concordance,
            "converged": f.converged,
            "ties": f.ties,
        }
        for name, f in fits.items()
    ]
    base = []
    for name, f in fits.items():
        s0 = f.baseline_survival([data.horizon]).iloc[0]
        base.append(
            {
                "model": name,
                "horizon": data.horizon,
                "cumhaz_at_horizon": float(s0["cumhaz"]),
                "baseline_survival_at_horizon": float(s0["survival"]),
                "note": "covariates at 0 (not centred): risk = 1 - S0(h)^exp(lp)",
            }
        )
    return {
        "models": _models_table(fits, plan),
        "cox_coefficients": pd.concat(coefs, ignore_index=True),
        "cox_fit": pd.DataFrame(fit_rows),
        "baseline_survival": pd.DataFrame(base),
    }


def _models_table(fits: dict[str, CoxResult], plan: PredictionModelPlan) -> pd.DataFrame:
    rows = []
    for m in plan.models:
        f = fits[m.name]
        payload = json.dumps(
            {"covariates": list(f.covariates), "coef": [round(float(c), 12) for c in f.coef]},
            sort_keys=True,
        )
        rows.append(
            {
                "model": m.name,
                "role": m.role,
                "model_version": "sha256:" + hashlib.sha256(payload.encode()).hexdigest(),
                "kind": f"Cox proportional hazards ({f.ties.capitalize()} ties), fitted in this run",
                "covariates": ", ".join(f.covariates),
                "n": f.n,
                "n_events": f.n_events,
                "description": " ".join(m.description.split()),
            }
        )
    return pd.DataFrame(rows)


@REGISTRY.step("ph_check", produces=[ZPH, ZPH_RESIDUALS, ZPH_SMOOTH])
def _ph_check(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Proportional hazards of the primary model: cox.zph tests, residuals and their smooth."""
    ctx.progress("proportional-hazards diagnostics (cox.zph)")
    data = development_data(cohort, plan)
    fit = fit_models(data, plan)[plan.primary_model]
    transform = str(plan.extra.get("zph_transform", "km"))
    z = cox_zph(fit, transform=transform, data=data.frame)
    residuals = z.residuals.melt(
        id_vars=["time", "g_time"],
        value_vars=list(fit.covariates),
        var_name="term",
        value_name="residual",
    )
    return {
        "zph": z.to_frame().assign(transform=transform),
        "zph_residuals": residuals,
        "zph_smooth": zph_smooth(z, alpha=plan.alpha).to_frame(),
    }


@REGISTRY.step("performance", produces=[PERFORMANCE, TD_AUC_COUNTS])
def _performance(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Apparent discrimination and accuracy of each model at the horizon."""
    ctx.progress("discrimination, calibration and accuracy at the horizon")
    data = development_data(cohort, plan)
    fits = fit_models(data, plan)
    o, h, a = plan.outcome, data.horizon, plan.alpha
    tt, ss, ec = data.time, data.status, data.event_code
    rows = []
    for name, f in fits.items():
        lp = f.predict_risk(data.frame)
        hc = harrell_c(tt, ss, lp, alpha=a)
        uc = uno_c(tt, ss, lp, tau=h, alpha=a)
        ta = time_dependent_auc(tt, ec, lp, horizon=h, cause=o.cause, alpha=a)
        br = brier(tt, ss, predicted_risk(f, data), horizon=h, alpha=a)
        for measure, r in (("harrell_c", hc), ("uno_c", uc), ("auc_horizon", ta), ("brier", br)):
            rows.append(_perf_row(name, measure, MEASURE_LABELS[measure], r.estimate, r.se,
                                  r.ci_low, r.ci_high, r.ci_level))  # fmt: skip
        rows.append(_perf_row(name, "ipa", MEASURE_LABELS["ipa"], br.ipa))
        rows.append(
            _perf_row(name, "brier_null", "Brier score of the null model (Kaplan-Meier)",
                      br.null_estimate, br.null_se, br.null_ci_low, br.null_ci_high, br.ci_level)
        )  # fmt: skip
    counts = {
        "horizon": h,
        "n_cases": ta.n_cases,
        "n_controls": ta.n_controls,
        "n_censored_before_horizon": ta.n_censored_before_horizon,
    }
    return {"performance": pd.DataFrame(rows), "td_auc_counts": pd.DataFrame([counts])}


def _perf_row(
    model: str,
    measure: str,
    label: str,
    estimate: float,
    se: float = np.nan,
    ci_low: float = np.nan,
    ci_high: float = np.nan,
    ci_level: float = np.nan,
) -> dict[str, Any]:
    return {
        "model": model,
        "measure": measure,
        "label": label,
        "estimate": estimate,
        "se": se,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "ci_level": ci_level,
    }


@REGISTRY.step("optimism", produces=[OPTIMISM])
def _optimism(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Harrell's bootstrap optimism correction of each model (refitted in every resample)."""
    ctx.progress(f"bootstrap optimism correction ({plan.sets.n_bootstrap} refits per model)")
    data = development_data(cohort, plan)
    o = plan.outcome
    out = []
    for k, m in enumerate(plan.models):
        with estimating(f"model {m.name}, bootstrap optimism correction"):
            res = cox_optimism(
                data.frame,
                duration="time",
                event="status",
                covariates=data.terms[m.name],
                horizon=data.horizon,
                event_codes="event_code",
                cause=o.cause,
                n_resamples=plan.sets.n_bootstrap,
                seed=plan.seed + k,
            )
        frame = res.to_frame().rename(columns={"model": "procedure"})
        frame.insert(1, "label", frame["measure"].map(MEASURE_LABELS))
        frame.insert(0, "model", m.name)
        out.append(frame)
    return {"optimism": pd.concat(out, ignore_index=True)}


#: ``plan.extra["apply_to_new_patients"]``: the plan's statement of which model to apply.
_APPLY = {"shrunk": "shrunk", "unshrunk": "unshrunk"}


@REGISTRY.step("shrunk_model", produces=[SHRUNK_MODEL], needs=("optimism",))
def _shrunk_model(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Each model shrunk by its own optimism-corrected calibration slope (no bootstrap here).

    The factor is the ``corrected`` calibration slope of the model in the
    ``optimism`` table; :func:`studyval.analysis.cox_shrinkage.shrink_cox` shrinks
    the coefficients and re-estimates the baseline hazard with the offset.
    """
    ctx.progress("uniformly shrunk Cox models")
    apply = plan.extra.get("apply_to_new_patients")
    if apply is not None and apply not in _APPLY:
        raise EstimationError(
            f"plan extra.apply_to_new_patients is {apply!r}; expected 'shrunk' or 'unshrunk'"
        )
    note = _APPLY[apply] if apply is not None else "not stated in the plan"
    data = development_data(cohort, plan)
    fits = fit_models(data, plan)
    opt = ctx.tables["optimism"].set_index(["model", "measure"])
    out = []
    for m in plan.models:
        slope = float(opt.loc[(m.name, "calibration_slope"), "corrected"])
        with estimating(f"model {m.name}, uniform shrinkage by {slope:.4g}"):
            res = shrink_cox(fits[m.name], data.frame, shrinkage=slope, horizon=data.horizon)
        frame = res.to_frame().assign(
            model=m.name,
            role=m.role,
            shrinkage_source="optimism-corrected calibration slope (bootstrap, optimism table)",
            apply_to_new_patients=note,
        )
        out.append(frame[list(SHRUNK_MODEL.columns)])
    return {"shrunk_model": pd.concat(out, ignore_index=True)}


@REGISTRY.step("calibration", produces=[CALIBRATION_GROUPS, CALIBRATION_CURVE, CALIBRATION_SUMMARY])
def _calibration(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Calibration of the primary model at the horizon: grouped Kaplan-Meier and smooth curve."""
    ctx.progress("calibration at the horizon")
    data = development_data(cohort, plan)
    fit = fit_models(data, plan)[plan.primary_model]
    cal = calibration_at_horizon(
        data.time,
        data.status,
        predicted_risk(fit, data),
        horizon=data.horizon,
        groups=int(plan.extra.get("calibration_groups", 5)),
    )
    summary = {
        "model": plan.primary_model,
        "horizon": data.horizon,
        "ici": cal.ici,
        "e50": cal.e50,
        "e90": cal.e90,
        "emax": cal.emax,
        "mean_predicted": cal.mean_predicted,
        "observed_risk": cal.observed_risk,
        "n": cal.n,
        "n_events": cal.n_events,
        "n_groups": cal.n_groups,
    }
    return {
        "calibration_groups": cal.to_frame(),
        "calibration_curve": cal.curve_frame(),
        "calibration_summary": pd.DataFrame([summary]),
    }


@REGISTRY.step(
    "risk_groups", produces=[KM_RISK_GROUPS, KM_AT_RISK, RISK_GROUPS, RISK_GROUP_LOGRANK]
)
def _risk_groups(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Kaplan-Meier curves by group of predicted risk (primary model), with the log-rank test."""
    ctx.progress("Kaplan-Meier curves by predicted risk group")
    data = development_data(cohort, plan)
    fit = fit_models(data, plan)[plan.primary_model]
    cuts = [float(c) for c in plan.extra.get("risk_groups", [0.1, 0.2])]
    labels = plan.extra.get("risk_group_labels") or None
    res = risk_groups_at_horizon(
        data.time,
        data.status,
        predicted_risk(fit, data),
        horizon=data.horizon,
        cuts=cuts,
        labels=labels,
        alpha=plan.alpha,
    )
    default_ticks = list(np.linspace(0.0, data.horizon, 5))
    ticks = plan.extra.get("km_ticks", default_ticks)
    lr = res.km.logrank
    logrank = {
        "chisq": lr.chisq if lr else np.nan,
        "df": lr.df if lr else np.nan,
        "p_value": lr.p_value if lr else np.nan,
        "cuts": ", ".join(f"{c:g}" for c in cuts),
    }
    return {
        "km_risk_groups": res.km.to_frame(),
        "km_at_risk": res.km.at_risk([float(x) for x in ticks]),
        "risk_groups": res.to_frame(),
        "risk_group_logrank": pd.DataFrame([logrank]),
    }


@REGISTRY.step("decision_curve", produces=[DECISION_CURVE])
def _decision_curve(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Decision curves of every model at the horizon (Kaplan-Meier net benefit)."""
    ctx.progress("decision curve at the horizon")
    data = development_data(cohort, plan)
    fits = fit_models(data, plan)
    lo, hi, step = (float(x) for x in plan.extra.get("decision_thresholds", [0.02, 0.5, 0.01]))
    grid = np.round(np.arange(lo, hi + step / 2, step), 10)
    risks = {name: predicted_risk(f, data) for name, f in fits.items()}
    dc = net_benefit_survival(data.time, data.status, risks, horizon=data.horizon, thresholds=grid)
    return {"decision_curve": dc.to_frame()}


@REGISTRY.step("model_comparison", produces=[COMPARISON])
def _model_comparison(
    cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext
) -> dict[str, Any]:
    """The primary model against each comparator: likelihood ratio, difference in C and AUC."""
    ctx.progress("comparison with the comparator models")
    data = development_data(cohort, plan)
    fits = fit_models(data, plan)
    prim = plan.primary_model
    full = fits[prim]
    lp_full = full.predict_risk(data.frame)
    rows: list[dict[str, Any]] = []
    for k, comp in enumerate(_comparators(plan)):
        reduced = fits[comp]
        lp_comp = reduced.predict_risk(data.frame)
        added = ", ".join(c for c in full.covariates if c not in reduced.covariates)
        if set(reduced.covariates) < set(full.covariates):
            lr = nested_cox_test(full, reduced)
            rows.append(
                _cmp_row(
                    "likelihood ratio",
                    added,
                    lr.chisq,
                    df=lr.df,
                    p_value=lr.p_value,
                    method="2 x difference in log partial likelihood of the nested Cox models",
                )
            )
        dc = harrell_c_difference(
            data.time,
            data.status,
            lp_full,
            lp_comp,
            n_resamples=plan.sets.n_bootstrap,
            seed=plan.seed + 500 + k,
            alpha=plan.alpha,
            method="percentile",
            labels=(prim, comp),
        )
        rows.append(
            _cmp_row(
                "difference in Harrell's C",
                added,
                dc.difference,
                se=dc.se,
                ci=(dc.ci_low, dc.ci_high),
                n_resamples=dc.n_resamples,
                n_failed=dc.n_failed,
                failures="; ".join(f"{r}: {c}" for r, c in dc.failures),
                method=(
                    "apparent (models fitted on these data); percentile bootstrap CI, "
                    f"{dc.n_resamples} resamples of patients, models held fixed"
                ),
            )
        )
        cmp = compare_time_dependent_auc(
            data.time,
            data.event_code,
            lp_full,
            lp_comp,
            horizon=data.horizon,
            cause=plan.outcome.cause,
            alpha=plan.alpha,
            names=(prim, comp),
        )
        rows.append(
            _cmp_row(
                "difference in time-dependent AUC at the horizon",
                added,
                cmp.difference,
                se=cmp.se,
                ci=(cmp.ci_low, cmp.ci_high),
                p_value=cmp.p_value,
                method="apparent; paired influence-function SE (Blanche et al. 2013)",
            )
        )
    out = pd.DataFrame(rows, columns=list(COMPARISON.columns))
    out[["n_resamples", "n_failed"]] = out[["n_resamples", "n_failed"]].astype("Int64")
    return {"comparison": out}


def _cmp_row(
    comparison: str,
    terms_added: str,
    estimate: float,
    *,
    se: float = np.nan,
    ci: tuple[float, float] = (np.nan, np.nan),
    df: float = np.nan,
    p_value: float = np.nan,
    n_resamples: int | None = None,
    n_failed: int | None = None,
    failures: str = "",
    method: str,
) -> dict[str, Any]:
    return {
        "comparison": comparison,
        "terms_added": terms_added,
        "estimate": estimate,
        "se": se,
        "ci_low": ci[0],
        "ci_high": ci[1],
        "df": df,
        "p_value": p_value,
        "n_resamples": n_resamples,
        "n_failed": n_failed,
        "failures": failures,
        "method": method,
    }


# ----------------------------------------------------------------------------- linearity (issue 16)

COX_LINEARITY = TableSpec(
    "cox_linearity",
    "Restricted cubic spline check of each declared continuous predictor of the primary Cox model: "
    "likelihood-ratio test of the nonlinear terms, one row per predictor",
    ("model", "data", "predictor", "n_knots", "knots", "chisq", "df", "p_value", "loglik_linear",
     "loglik_spline", "n", "n_events", "covariates", "ties", "method"),
)  # fmt: skip

#: The ``linearity`` step alone, for a protocol of another prognostic type to include
#: (e.g. the competing-risks type: ``crsteps.REGISTRY.including(OWN, LINEARITY_STEPS)``).
LINEARITY_STEPS = StepRegistry("cox-linearity")


def linearity_frame(cohort: Cohort, plan: PredictionModelPlan) -> tuple[pd.DataFrame, str]:
    """Included patients as the primary Cox model sees them, and their description in words.

    The patients of :func:`design_frame` (status 1 = the cause of interest; competing events
    censored: the cause-specific hazard), restricted to the plan's ``sets.development_sites``
    when the clinical table has a ``site`` column: the data the models are developed on.
    """
    clin = cohort.clinical
    frame = design_frame(cohort, plan)
    where = "all included patients"
    if "site" in clin.columns and plan.sets.development_sites:
        inc = clin[included_rows(clin, plan.cohort).to_numpy(bool)]
        keep = inc["site"].astype(str).isin(plan.sets.development_sites).to_numpy()
        frame = frame[keep].reset_index(drop=True)
        sites = ", ".join(plan.sets.development_sites)
        where = f"included patients of the development sites ({sites})"
    _check_outcome(frame, plan)
    return frame, where


def _linearity(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Spline linearity check of the plan's continuous predictors in the primary Cox model.

    Reads ``extra.linearity_predictors`` (required: the continuous covariates of the primary
    model to check, declared in the plan) and ``extra.linearity_knots`` (4). Each predictor is
    refitted as a restricted cubic spline (:func:`studyval.analysis.cox_linearity.cox_linearity`).
    """
    preds = plan.extra.get("linearity_predictors")
    if not preds:
        raise StudyvalError(
            "the plan names the linearity step but declares no extra.linearity_predictors (the "
            "continuous covariates of the primary model to check with a spline)"
        )
    n_knots = plan.extra.get("linearity_knots", 4)
    ctx.progress(f"linearity of continuous predictors (restricted cubic splines, {n_knots} knots)")
    frame, where = linearity_frame(cohort, plan)
    model = plan.primary_model
    covs = model_terms(cohort, plan)[model]
    unknown = [str(p) for p in preds if str(p) not in covs]
    if unknown:
        raise StudyvalError(
            f"plan field extra.linearity_predictors: {', '.join(map(repr, unknown))} is not a "
            f"numeric covariate of the primary model {model} (its covariates: {', '.join(covs)})"
        )
    with estimating(f"model {model}, spline linearity check"):
        res = cox_linearity(
            frame,
            duration="time",
            event="status",
            covariates=covs,
            predictors=[str(p) for p in preds],
            n_knots=n_knots,
        )
    table = res.to_frame()
    table.insert(0, "data", where)
    table.insert(0, "model", model)
    return {"cox_linearity": table[list(COX_LINEARITY.columns)]}


REGISTRY.step("linearity", produces=[COX_LINEARITY])(_linearity)
LINEARITY_STEPS.add(REGISTRY["linearity"])
