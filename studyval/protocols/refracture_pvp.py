"""refracture-pvp (NCT06379243): a Cox model for re-fracture within 1 year after PVP/PKP.

The protocol: patients with an acute osteoporotic vertebral compression
fracture (1-3 fractured vertebrae, aged 50-90) treated by percutaneous
vertebroplasty (PVP) or kyphoplasty (PKP); outcome a new fracture of a
non-operated vertebra, evaluated at 1 year; predictors clinical risk factors
and preoperative quantitative MRI (IDEAL-IQ PDFF and R2*); 560 participants.

This protocol fits its own models (``requires_predictions=False``): the
plan's Cox models are developed on all included patients and validated
internally by Harrell's bootstrap optimism correction (refitting the model in
each resample). Deaths before a re-fracture are a competing event: the Cox
model estimates the cause-specific hazard (deaths censored), the
time-dependent AUC treats them as controls (Blanche et al. 2013, "definition
2"), and the Kaplan-Meier-based measures (Brier, calibration, decision curve,
risk-group curves) censor them, which slightly overstates the cumulative
incidence; the report says so and counts the deaths.

:func:`analyse` is pure: it takes validated data and the plan and returns the
tables of the results bundle; it neither reads files nor draws.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval import figures
from studyval.analysis import sample_size
from studyval.analysis.decision_curve_survival import net_benefit_survival
from studyval.analysis.descriptive import baseline_table
from studyval.analysis.internal_validation import cox_optimism
from studyval.analysis.paired_bootstrap import harrell_c_difference
from studyval.analysis.sample_size_survival import riley_survival
from studyval.analysis.survival import cox, cox_zph, harrell_c, kaplan_meier, uno_c
from studyval.analysis.survival_validation import (
    _rcs_basis,
    brier,
    calibration_at_horizon,
    compare_time_dependent_auc,
    time_dependent_auc,
)
from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations, estimating
from studyval.errors import EstimationError, Violation
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.figures.style import legend_below
from studyval.figures.survival import calibration_horizon_figure, km_figure, zph_figure
from studyval.plan import PredictionModelPlan
from studyval.protocol import ProtocolTables, StudyProtocol, flow_count

__all__ = [
    "PROTOCOL",
    "SLUG",
    "analyse",
    "check_eligibility",
    "checklist",
    "design_frame",
    "figure_specs",
    "flow_counts",
    "needed_columns",
]

SLUG = "refracture-pvp"
MIN_AGE, MAX_AGE = 50, 90
MIN_VERT, MAX_VERT = 1, 3
#: Readable exclusion reasons (flow table, diagram and checklist).
REASON_LABELS = {
    "age_outside_50_90": "age outside 50-90 years",
    "fractured_vertebrae_outside_1_3": "fractured vertebrae outside 1-3",
    "no_acute_fracture_on_mri": "no acute fracture on MRI",
    "scoliosis_prior_vertebroplasty_or_fixation": "severe scoliosis, prior vertebroplasty or fixation",
    "spinal_infection_or_malignancy": "spinal infection or malignancy",
    "mental_cognitive_or_critical_illness": "mental disease, cognitive impairment or critical illness",
    "incomplete_preoperative_data": "incomplete preoperative data (plan)",
}
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

    The dictionary makes them optional because an excluded patient may lack
    them; the analyses of the included patients need every one.

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
    uses: dict[str, list[str]] = {}
    for m in plan.models:
        for cov in m.covariates:
            uses.setdefault(cov, []).append(m.name)
    needs = {
        cov: f"Cox model{'s' if len(names) > 1 else ''} {' and '.join(names)} (a covariate)"
        for cov, names in uses.items()
    }
    o = plan.outcome
    needs[o.time] = f"time-to-event outcome (follow-up time in {o.time_unit})"
    needs[o.event] = (
        "time-to-event outcome (status at the end of follow-up: "
        + ", ".join(f"{k} = {v}" for k, v in sorted(o.event_codes.items()))
        + ")"
    )
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
    * age 50-90 and 1-3 fractured vertebrae (else set exclusion_reason);
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
    problems: list[Violation] = []
    inc = clinical["exclusion_reason"] == "none"

    def flag(mask: pd.Series, col: str, message: Callable[[Any], str]) -> None:
        for idx in clinical.index[(inc & mask.fillna(False)).to_numpy(bool)]:
            val = clinical.at[idx, col]
            problems.append(Violation(label, col, int(idx) + 2, message(idx), str(val)))

    age = clinical["age"].astype("Float64")
    flag(
        (age < MIN_AGE) | (age > MAX_AGE),
        "age",
        lambda _: (
            f"included patient is outside {MIN_AGE}-{MAX_AGE} years; "
            "set exclusion_reason to age_outside_50_90"
        ),
    )
    nv = clinical["n_fractured_vertebrae"].astype("Float64")
    flag(
        (nv < MIN_VERT) | (nv > MAX_VERT),
        "n_fractured_vertebrae",
        lambda _: (
            f"included patient has not {MIN_VERT}-{MAX_VERT} fractured vertebrae; "
            "set exclusion_reason to fractured_vertebrae_outside_1_3"
        ),
    )
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


# ----------------------------------------------------------------------------- data


def _term_columns(clin: pd.DataFrame, variables: list[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """Numeric model terms from dictionary columns; categorical -> indicators vs the first level."""
    out: dict[str, pd.Series] = {}
    source: dict[str, str] = {}
    for v in variables:
        col = clin[v]
        if isinstance(col.dtype, pd.CategoricalDtype):
            cats = [str(c) for c in col.cat.categories]
            for lev in cats[1:]:
                name = f"{v}[{lev}]"
                out[name] = (col.astype(str) == lev).astype(float)
                source[name] = v
        else:
            out[v] = col.astype(float)
            source[v] = v
    return pd.DataFrame(out, index=clin.index), source


def design_frame(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """Included patients: model terms, ``time``, ``event_code`` and ``status`` (1 = cause)."""
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"].copy()
    variables = list(dict.fromkeys(v for m in plan.models for v in m.covariates))
    terms, _ = _term_columns(inc, variables)
    o = plan.outcome
    terms["time"] = inc[o.time].astype(float)
    terms["event_code"] = inc[o.event].astype(int)
    terms["status"] = (terms["event_code"] == o.cause).astype(int)
    terms["patient_id"] = inc["patient_id"].astype(str)
    return terms.reset_index(drop=True)


def _model_terms(cohort: Cohort, plan: PredictionModelPlan) -> dict[str, list[str]]:
    clin = cohort.clinical
    out = {}
    for m in plan.models:
        terms, _ = _term_columns(clin.head(1), m.covariates)
        out[m.name] = list(terms.columns)
    return out


def _check_outcome(d: pd.DataFrame, plan: PredictionModelPlan) -> None:
    o = plan.outcome
    if len(d) == 0:
        raise EstimationError("no included patients (every screened patient is excluded)")
    n_cause = int(d["status"].sum())
    if n_cause == 0:
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


# ----------------------------------------------------------------------------- flow


def flow_counts(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """Participant flow and outcome counts: ``stage, group, n, detail``."""
    clin = cohort.clinical
    o = plan.outcome
    h = o.horizon
    rows: list[dict[str, Any]] = []

    def add(stage: str, n: int, group: str = "", detail: str = "") -> None:
        rows.append({"stage": stage, "group": group, "n": int(n), "detail": detail})

    add("screened", len(clin))
    excl = clin[clin["exclusion_reason"] != "none"]
    add("excluded", len(excl))
    for reason in clin["exclusion_reason"].cat.categories:
        if reason != "none":
            add(
                "excluded_reason",
                int((excl["exclusion_reason"] == reason).sum()),
                str(reason),
                REASON_LABELS.get(str(reason), str(reason).replace("_", " ")),
            )
    inc = clin[clin["exclusion_reason"] == "none"]
    add("included", len(inc))
    if len(inc) == 0:
        return pd.DataFrame(rows)
    t = inc[o.time].astype(float).to_numpy()
    e = inc[o.event].astype(int).to_numpy()
    for code, label in sorted(o.event_codes.items()):
        add("status_end_of_follow_up", int((e == code).sum()), label)
    by_h = t <= h
    add("by_horizon", int(((e == o.cause) & by_h).sum()), o.event_codes[o.cause])
    for c in o.competing:
        add("by_horizon", int(((e == c) & by_h).sum()), o.event_codes[c])
    add("by_horizon", int(((e == 0) & by_h).sum()), "censored before the horizon")
    add("by_horizon", int((t > h).sum()), "followed beyond the horizon event-free")
    # reverse Kaplan-Meier median follow-up (censoring as the event)
    rev = kaplan_meier(t, (e == 0).astype(int))
    med = rev.median
    add(
        "follow_up",
        len(inc),
        "median (reverse Kaplan-Meier)",
        f"{med:.0f}" if np.isfinite(med) else "not reached",
    )
    add("follow_up", len(inc), "median (observed)", f"{np.median(t):.0f}")
    add("follow_up", len(inc), "range", f"{t.min():.0f}-{t.max():.0f}")
    add("follow_up", len(inc), "person-years", f"{t.sum() / 365.25:.1f}")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- analyses




def _fit(d: pd.DataFrame, terms: list[str], alpha: float = 0.05):
    return cox(d, duration="time", event="status", covariates=terms, alpha=alpha)


def _risk_at(fit, d: pd.DataFrame, h: float) -> np.ndarray:
    r = fit.predict_risk_at(d, h)
    return np.clip(r, 1e-8, 1 - 1e-8)


MEASURE_LABELS = {
    "harrell_c": "Harrell's C",
    "somers_dxy": "Somers' Dxy (2C - 1)",
    "uno_c": "Uno's C (to the horizon)",
    "auc_horizon": "Time-dependent AUC at the horizon",
    "brier": "Brier score at the horizon",
    "ipa": "IPA (scaled Brier)",
    "calibration_slope": "Calibration slope",
}


def analyse(
    cohort: Cohort,
    plan: PredictionModelPlan,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> ProtocolTables:
    """Run the plan's analyses; return the tidy tables of the bundle."""
    o = plan.outcome
    h = float(o.horizon)
    alpha = plan.alpha
    t: dict[str, pd.DataFrame] = {}

    progress("participant flow and baseline characteristics")
    t["flow"] = flow_counts(cohort, plan)
    d = design_frame(cohort, plan)
    _check_outcome(d, plan)
    t["baseline"] = _baseline(cohort, plan)

    progress("sample size check (Riley criteria)")
    t["sample_size"], t["sample_size_criteria"] = _sample_size(plan, d)

    progress("Cox models")
    terms = _model_terms(cohort, plan)
    fits = {}
    rows = []
    for m in plan.models:
        with estimating(f"model {m.name}, all included patients, Cox model"):
            f = _fit(d, terms[m.name], alpha)
        fits[m.name] = f
        s = f.summary.copy()
        s.insert(0, "role", m.role)
        s.insert(0, "model", m.name)
        s["ci_level"] = f.ci_level
        rows.append(s)
    t["cox_coefficients"] = pd.concat(rows, ignore_index=True)
    t["cox_fit"] = pd.DataFrame(
        [
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
    )
    primary = fits[plan.primary_model]
    t["baseline_survival"] = pd.DataFrame(
        [
            {
                "model": name,
                "horizon": h,
                "cumhaz_at_horizon": float(
                    f.baseline_hazard.loc[f.baseline_hazard["time"] <= h, "cumhaz"].iloc[-1]
                ),
                "baseline_survival_at_horizon": float(
                    np.exp(
                        -f.baseline_hazard.loc[f.baseline_hazard["time"] <= h, "cumhaz"].iloc[-1]
                    )
                ),
                "note": "covariates at 0 (not centred): risk = 1 - S0(h)^exp(lp)",
            }
            for name, f in fits.items()
        ]
    )

    progress("proportional-hazards diagnostics (cox.zph)")
    t.update(_zph(primary, d, plan))

    progress("discrimination, calibration and accuracy at the horizon")
    comp = next(m.name for m in plan.models if m.role == "comparator")
    lp = {name: f.predict_risk(d) for name, f in fits.items()}
    risk = {name: _risk_at(f, d, h) for name, f in fits.items()}
    tt = d["time"].to_numpy(float)
    ss = d["status"].to_numpy(int)
    ec = d["event_code"].to_numpy(int)
    perf = []
    for name in fits:
        hc = harrell_c(tt, ss, lp[name], alpha=alpha)
        uc = uno_c(tt, ss, lp[name], tau=h, alpha=alpha)
        ta = time_dependent_auc(tt, ec, lp[name], horizon=h, cause=o.cause, alpha=alpha)
        br = brier(tt, ss, risk[name], horizon=h, alpha=alpha)
        for measure, r in (("harrell_c", hc), ("uno_c", uc), ("auc_horizon", ta), ("brier", br)):
            perf.append(
                {
                    "model": name,
                    "measure": measure,
                    "label": MEASURE_LABELS[measure],
                    "estimate": r.estimate,
                    "se": r.se,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "ci_level": r.ci_level,
                }
            )
        perf.append(
            {
                "model": name,
                "measure": "ipa",
                "label": MEASURE_LABELS["ipa"],
                "estimate": br.ipa,
                "se": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "ci_level": np.nan,
            }
        )
        perf.append(
            {
                "model": name,
                "measure": "brier_null",
                "label": "Brier score of the null model (Kaplan-Meier)",
                "estimate": br.null_estimate,
                "se": br.null_se,
                "ci_low": br.null_ci_low,
                "ci_high": br.null_ci_high,
                "ci_level": br.ci_level,
            }
        )
    t["performance"] = pd.DataFrame(perf)
    t["td_auc_counts"] = pd.DataFrame(
        [
            {
                "horizon": h,
                "n_cases": ta.n_cases,
                "n_controls": ta.n_controls,
                "n_censored_before_horizon": ta.n_censored_before_horizon,
            }
        ]
    )

    progress(f"bootstrap optimism correction ({plan.sets.n_bootstrap} refits per model)")
    opt = []
    for k, m in enumerate(plan.models):
        with estimating(f"model {m.name}, bootstrap optimism correction"):
            res = cox_optimism(
                d,
                duration="time",
                event="status",
                covariates=terms[m.name],
                horizon=h,
                event_codes="event_code",
                cause=o.cause,
                n_resamples=plan.sets.n_bootstrap,
                seed=plan.seed + k,
            )
        ob = res.to_frame().rename(columns={"model": "procedure"})
        ob.insert(1, "label", ob["measure"].map(MEASURE_LABELS))
        ob.insert(0, "model", m.name)
        opt.append(ob)
    t["optimism"] = pd.concat(opt, ignore_index=True)

    progress("calibration at the horizon")
    cal = calibration_at_horizon(
        tt,
        ss,
        risk[plan.primary_model],
        horizon=h,
        groups=int(plan.extra.get("calibration_groups", 5)),
    )
    t["calibration_groups"] = cal.table()
    t["calibration_curve"] = cal.curve_frame()
    t["calibration_summary"] = pd.DataFrame(
        [
            {
                "model": plan.primary_model,
                "horizon": h,
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
        ]
    )

    progress("Kaplan-Meier curves by predicted risk group")
    cuts = [float(c) for c in plan.extra.get("risk_groups", [0.1, 0.2])]
    labels = list(plan.extra.get("risk_group_labels", []))
    grp = np.digitize(risk[plan.primary_model], cuts)
    grp_lab = np.array(labels, dtype=object)[grp]
    km = kaplan_meier(tt, ss, groups=grp_lab, alpha=alpha)
    ticks = [float(x) for x in plan.extra.get("km_ticks_days", [0, 90, 180, 270, 365])]
    tab = km.table.copy()
    t["km_risk_groups"] = tab
    t["km_at_risk"] = km.at_risk(ticks)
    at_h = kaplan_meier(tt, ss, groups=grp_lab, alpha=alpha, times=[h]).table
    sizes = pd.Series(grp_lab).value_counts()
    mean_pred = pd.Series(risk[plan.primary_model]).groupby(grp_lab).mean()
    t["risk_groups"] = pd.DataFrame(
        [
            {
                "group": g,
                "order": labels.index(g),
                "n": int(sizes.get(g, 0)),
                "mean_predicted": float(mean_pred.get(g, np.nan)),
                "km_risk": 1 - float(r.survival),
                "ci_low": 1 - float(r.ci_high),
                "ci_high": 1 - float(r.ci_low),
            }
            for r in at_h.itertuples()
            for g in [str(r.group)]
        ]
    ).sort_values("order")
    t["risk_group_logrank"] = pd.DataFrame(
        [
            {
                "chisq": km.logrank.chisq if km.logrank else np.nan,
                "df": km.logrank.df if km.logrank else np.nan,
                "p_value": km.logrank.p_value if km.logrank else np.nan,
                "cuts": ", ".join(f"{c:g}" for c in cuts),
            }
        ]
    )

    progress("decision curve at the horizon")
    lo, hi, step = (float(x) for x in plan.extra.get("decision_thresholds", [0.02, 0.5, 0.01]))
    grid = np.round(np.arange(lo, hi + step / 2, step), 10)
    dc = net_benefit_survival(tt, ss, risk, horizon=h, thresholds=grid)
    t["decision_curve"] = dc.frame()

    progress("comparator model: what the MRI terms add")
    t["comparison"] = _comparison(d, fits, lp, plan, primary_name=plan.primary_model, comp=comp)

    t["models"] = _models_table(fits, plan)
    return ProtocolTables(tables=t)


def _comparison(d, fits, lp, plan, *, primary_name: str, comp: str) -> pd.DataFrame:
    h = float(plan.outcome.horizon)
    tt = d["time"].to_numpy(float)
    ss = d["status"].to_numpy(int)
    ec = d["event_code"].to_numpy(int)
    fa, fb = fits[primary_name], fits[comp]
    added = [c for c in fa.covariates if c not in fb.covariates]
    lr = 2.0 * (fa.loglik - fb.loglik)
    df = len(fa.covariates) - len(fb.covariates)
    rows = [
        {
            "comparison": "likelihood ratio",
            "terms_added": ", ".join(added),
            "estimate": lr,
            "se": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "df": df,
            "p_value": float(stats.chi2.sf(lr, df)),
            "n_resamples": None,
            "n_failed": None,
            "failures": "",
            "method": "2 x difference in log partial likelihood of the nested Cox models",
        }
    ]
    # difference in Harrell's C: paired bootstrap of patients, the two fitted models held fixed
    a = plan.alpha
    dc = harrell_c_difference(
        tt,
        ss,
        lp[primary_name],
        lp[comp],
        n_resamples=plan.sets.n_bootstrap,
        seed=plan.seed + 500,
        alpha=a,
        method="percentile",
        labels=(primary_name, comp),
    )
    rows.append(
        {
            "comparison": "difference in Harrell's C",
            "terms_added": ", ".join(added),
            "estimate": dc.difference,
            "se": dc.se,
            "ci_low": dc.ci_low,
            "ci_high": dc.ci_high,
            "df": np.nan,
            "p_value": np.nan,
            "n_resamples": dc.n_resamples,
            "n_failed": dc.n_failed,
            "failures": "; ".join(f"{r}: {c}" for r, c in dc.failures),
            "method": (
                "apparent (models fitted on these data); percentile bootstrap CI, "
                f"{dc.n_resamples} resamples of patients, models held fixed"
            ),
        }
    )
    cmp = compare_time_dependent_auc(
        tt,
        ec,
        lp[primary_name],
        lp[comp],
        horizon=h,
        cause=plan.outcome.cause,
        alpha=a,
        names=(primary_name, comp),
    )
    rows.append(
        {
            "comparison": "difference in time-dependent AUC at the horizon",
            "terms_added": ", ".join(added),
            "estimate": cmp.difference,
            "se": cmp.se,
            "ci_low": cmp.ci_low,
            "ci_high": cmp.ci_high,
            "df": np.nan,
            "p_value": cmp.p_value,
            "n_resamples": None,
            "n_failed": None,
            "failures": "",
            "method": "apparent; paired influence-function SE (Blanche et al. 2013)",
        }
    )
    out = pd.DataFrame(rows)
    out[["n_resamples", "n_failed"]] = out[["n_resamples", "n_failed"]].astype("Int64")
    return out


def _zph(fit, d: pd.DataFrame, plan: PredictionModelPlan) -> dict[str, pd.DataFrame]:
    transform = str(plan.extra.get("zph_transform", "km"))
    z = cox_zph(fit, transform=transform, data=d)
    table = z.table.copy()
    table["transform"] = transform
    res = z.residuals
    long = res.melt(
        id_vars=["time", "g_time"],
        value_vars=list(fit.covariates),
        var_name="term",
        value_name="residual",
    )
    smooth_rows = []
    for term in fit.covariates:
        r = long[long["term"] == term].dropna()
        x = r["g_time"].to_numpy(float)
        y = r["residual"].to_numpy(float)
        knots = np.quantile(x, [0.05, 0.35, 0.65, 0.95])
        if np.unique(knots).size < 4:
            continue
        basis = np.column_stack([np.ones_like(x), _rcs_basis(x, knots)])
        coef, *_ = np.linalg.lstsq(basis, y, rcond=None)
        resid = y - basis @ coef
        sigma2 = float(resid @ resid) / max(1, len(y) - basis.shape[1])
        cov = sigma2 * np.linalg.pinv(basis.T @ basis)
        grid = np.linspace(x.min(), x.max(), 60)
        gb = np.column_stack([np.ones_like(grid), _rcs_basis(grid, knots)])
        srt = np.argsort(x, kind="stable")
        grid_days = np.interp(grid, x[srt], r["time"].to_numpy(float)[srt])
        fitv = gb @ coef
        se = np.sqrt(np.einsum("ij,jk,ik->i", gb, cov, gb))
        zc = stats.norm.ppf(1 - plan.alpha / 2)
        smooth_rows.append(
            pd.DataFrame(
                {
                    "term": term,
                    "time": grid_days,
                    "g_time": grid,
                    "fit": fitv,
                    "ci_low": fitv - zc * se,
                    "ci_high": fitv + zc * se,
                    "coef": float(fit.coef[list(fit.covariates).index(term)]),
                }
            )
        )
    return {
        "zph": table,
        "zph_residuals": long,
        "zph_smooth": pd.concat(smooth_rows, ignore_index=True),
    }


def _baseline(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"].copy()
    o = plan.outcome
    h = o.horizon
    e = inc[o.event].astype(int)
    tt = inc[o.time].astype(float)
    inc["refracture_by_1y"] = pd.Categorical(
        np.where(
            (e == o.cause) & (tt <= h), "re-fracture by 1 year", "no re-fracture observed by 1 year"
        ),
        categories=["re-fracture by 1 year", "no re-fracture observed by 1 year"],
    )
    inc["cement_leakage_cat"] = pd.Categorical(
        np.where(inc["cement_leakage"].astype(bool), "yes", "no"), categories=["yes", "no"]
    )
    inc = inc.rename(columns={"cement_leakage_cat": "cement leakage"})
    tab = baseline_table(
        inc,
        group="refracture_by_1y",
        continuous=[
            "age",
            "bmd_t_score",
            "pdff_percent",
            "r2star_per_s",
            "n_fractured_vertebrae",
            "cement_volume_ml",
        ],
        categorical=["sex", "procedure", "cement leakage"],
    )
    return tab


def _sample_size(plan: PredictionModelPlan, d: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    chk = sample_size.check_registered(r.n, ss.registered_total, label="participants", basis=basis)
    n_obs = len(d)
    chk_obs = sample_size.check_registered(r.n, n_obs, label="participants", basis=basis)
    events = int(d["status"].sum())
    n_param = ss.parameters
    rows = [
        {
            "check": "registered",
            "quantity": "participants (registered enrolment)",
            "required_unrounded": float(r.n),
            "required": int(r.required),
            "available": int(ss.registered_total),
            "shortfall": int(chk.shortfall),
            "adequate": bool(chk.adequate),
            "message": chk.message,
        },
        {
            "check": "observed",
            "quantity": "participants analysed",
            "required_unrounded": float(r.n),
            "required": int(r.required),
            "available": n_obs,
            "shortfall": int(chk_obs.shortfall),
            "adequate": bool(chk_obs.adequate),
            "message": chk_obs.message.replace("registered", "analysed"),
        },
        {
            "check": "observed events",
            "quantity": "re-fracture events (all follow-up)",
            "required_unrounded": float(r.events),
            "required": int(r.required_events),
            "available": events,
            "shortfall": max(0, int(r.required_events) - events),
            "adequate": events >= int(r.required_events),
            "message": f"{events} events for {n_param} parameters: {events / n_param:.1f} events per "
            f"parameter (the Riley requirement implies {r.epp:.1f}).",
        },
    ]
    crit = r.table()
    crit["assumptions"] = (
        f"parameters {ss.parameters}, rate {ss.rate:g}/year, timepoint {ss.timepoint:g} year, "
        f"mean follow-up {ss.mean_follow_up:g} years, "
        + (f"R2_CS {ss.r2_cs:g}" if ss.r2_cs is not None else f"Nagelkerke R2 {ss.r2_nagelkerke:g}")
        + f" (R2_CS {r.r2_cs:.4f}, max R2_CS {r.max_r2_cs:.4f}), shrinkage {ss.shrinkage:g}"
    )
    crit["assumptions_source"] = " ".join(ss.assumptions_source.split())
    return pd.DataFrame(rows), crit


def _models_table(fits, plan: PredictionModelPlan) -> pd.DataFrame:
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
                "kind": "Cox proportional hazards (Efron ties), fitted in this run",
                "covariates": ", ".join(f.covariates),
                "n": f.n,
                "n_events": f.n_events,
                "description": " ".join(m.description.split()),
            }
        )
    return pd.DataFrame(rows)


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
            "Prospective single-centre cohort of consecutive patients treated with PVP/PKP (registry "
            "NCT06379243); development data only, internal validation by bootstrap.",
            "Study and registration",
        ),
        "5b": (
            f"Surgery dates {inc['surgery_date'].min():%Y-%m-%d} to {inc['surgery_date'].max():%Y-%m-%d}; "
            f"end of follow-up {inc['followup_end_date'].max():%Y-%m-%d}.",
            "Participant flow",
        ),
        "6a": (
            ", ".join(str(s) for s in inc["site"].unique())
            + " (single centre, the registry's only location).",
            "Study and registration",
        ),
        "6b": (
            "Inclusion: osteoporotic thoracolumbar vertebral fracture, acute fracture on MRI treated by "
            "PVP/PKP, 1-3 fractured vertebrae, age 50-90. Exclusion: severe scoliosis, prior "
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
        "12d": ("Single centre: no clustering across centres.", "Study and registration"),
        "12e": (
            "Harrell's and Uno's C, time-dependent AUC (IPCW) at 1 year, Brier score and IPA at 1 year, "
            "calibration at 1 year (grouped Kaplan-Meier, smooth curve, ICI/E50/E90), decision curve.",
            "Discrimination",
        ),
        "12f": ("No updating or recalibration (development study).", "Cox model"),
        "12g": (
            "Risk = 1 - S0(1 year)^exp(linear predictor), studyval Cox implementation; coefficients and "
            "baseline survival in the bundle (cox_coefficients, baseline_survival).",
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
            f"{prim.loc['calibration_slope', 'corrected']:.3f} corrected.",
            "Discrimination",
        ),
        "23b": ("Single centre: not applicable.", "Discrimination"),
        "24": ("No updating.", "Cox model"),
        "27a": (
            "A missing predictor prevents a prediction (complete-case model); no imputation rule is provided.",
            "Cox model",
        ),
    }


def flow_stages(flow: pd.DataFrame, plan: PredictionModelPlan) -> pd.DataFrame:
    """Boxes of the participant flow diagram."""
    o = plan.outcome

    def n(stage: str, group: str | None = None) -> int:
        return flow_count(flow, stage, column="n", group=group)

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n"] > 0)]
    excl_lines = "\n".join(f"{r.detail}: {r.n}" for r in excl.itertuples())
    comp = "\n".join(
        f"{o.event_codes[c]}: {n('by_horizon', o.event_codes[c])}" for c in o.competing
    )
    main, side = 0.3, 0.75
    return pd.DataFrame(
        [
            {"key": "screened", "text": f"Patients treated with PVP/PKP screened\nn = {n('screened')}",
             "x": main, "row": 0, "parent": None, "side": False},
            {"key": "excluded", "text": f"Excluded, n = {n('excluded')}\n{excl_lines}",
             "x": side, "row": 0, "parent": "screened", "side": True},
            {"key": "included", "text": f"Included (model development)\nn = {n('included')}",
             "x": main, "row": 1, "parent": "screened", "side": False},
            {"key": "outcome",
             "text": f"By {o.horizon_label}:\n{o.event_codes[o.cause]}: {n('by_horizon', o.event_codes[o.cause])}\n"
             f"{comp}\ncensored before {o.horizon_label}: {n('by_horizon', 'censored before the horizon')}\n"
             f"event-free beyond {o.horizon_label}: {n('by_horizon', 'followed beyond the horizon event-free')}",
             "x": main, "row": 2, "parent": "included", "side": False},
        ]
    )  # fmt: skip


_TIME_SCALE = {"km": "Kaplan-Meier", "rank": "rank", "identity": "untransformed", "log": "log"}


def figure_specs(tables: dict[str, pd.DataFrame], plan: PredictionModelPlan) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables at any width, with its caption.

    Captions state what is shown, the patients and events behind it and the
    interval method, all read from the tables.
    """
    o = plan.outcome
    flow = tables["flow"]
    event = o.event_codes[o.cause]

    def fn(stage: str, group: str | None = None) -> int:
        return flow_count(flow, stage, column="n", group=group)

    n_all = fn("included")
    ev_h = fn("by_horizon", event)
    deaths_h = "; ".join(
        f"{o.event_codes[c]}, n = {count(fn('by_horizon', o.event_codes[c]))}" for c in o.competing
    )
    models = tables["models"]
    prim = models[models["model"] == plan.primary_model].iloc[0]
    level = 1 - plan.alpha
    specs = [
        FigureSpec(
            "flow",
            f"Participant flow: {count(fn('screened'))} patients treated with PVP/PKP screened, "
            f"{count(fn('excluded'))} excluded, {count(n_all)} included in model development; by "
            f"{o.horizon_label}: {event}, n = {count(ev_h)}; {deaths_h} (competing event); "
            f"censored, n = {count(fn('by_horizon', 'censored before the horizon'))}. Counts are "
            "patients.",
            lambda w: figures.flow_figure(flow_stages(tables["flow"], plan), width_mm=w),
            "double",
        )
    ]
    zph = tables["zph"]
    terms = zph[zph["term"] != "GLOBAL"]
    scale = str(terms["transform"].iloc[0])
    specs.append(
        FigureSpec(
            "zph",
            f"Scaled Schoenfeld residuals of the {len(terms)} terms of the {plan.primary_model} "
            f"model against days since surgery (one point per event; n = {count(prim['n'])} "
            f"patients, {count(prim['n_events'])} events), with a restricted-cubic-spline smooth "
            f"(fitted on the {_TIME_SCALE.get(scale, scale)} time scale of the test) and its pointwise "
            f"{ci_text('(normal approximation from the least-squares fit)', level)}; dashed line: the "
            "fitted coefficient; p values of the cox.zph test in the panel titles. A flat smooth "
            "means a constant log hazard ratio.",
            lambda w: zph_figure(
                tables["zph_residuals"],
                tables["zph_smooth"],
                tests=tables["zph"][tables["zph"]["term"] != "GLOBAL"],
                labels=TERM_LABELS,
                time_label="Days since surgery",
                width_mm=w,
            ),
            "double",
        )
    )
    cs = tables["calibration_summary"].iloc[0]
    specs.append(
        FigureSpec(
            "calibration_horizon",
            f"Calibration of the {plan.primary_model} model at {o.horizon_label} (n = "
            f"{count(cs['n'])} patients, {count(cs['n_events'])} events by {o.horizon_label}): "
            "smooth calibration curve (Cox model on restricted cubic splines of the complementary "
            "log-log predicted risk, Austin et al. 2020; no band) and the Kaplan-Meier observed risk "
            f"in {count(cs['n_groups'])} quantile groups of predicted risk with "
            f"{ci_text('(Greenwood variance, log(-log) scale)', level)}; deaths censored.",
            lambda w: calibration_horizon_figure(
                tables["calibration_curve"],
                tables["calibration_groups"].rename(columns={"mean_predicted": "predicted"}),
                horizon_label=o.horizon_label,
                width_mm=w,
            ),
            "single",
        )
    )
    rg = tables["risk_groups"].sort_values("order")
    order = list(rg["group"])
    km = tables["km_risk_groups"]
    by_h = km[km["time"] <= float(o.horizon)].groupby("group", observed=True)["n_event"].sum()
    groups_text = "; ".join(
        f"{r.group}: n = {count(r.n)} patients, {count(by_h.get(r.group, 0))} events"
        for r in rg.itertuples()
    )
    specs.append(
        FigureSpec(
            "km_risk_groups",
            f"Cumulative incidence of {event} (1 - Kaplan-Meier) by group of predicted risk at "
            f"{o.horizon_label} of the {plan.primary_model} model ({groups_text} by {o.horizon_label}), with "
            f"pointwise {ci_text('(Greenwood variance, log scale)', level)} bands, censoring ticks and the numbers at "
            "risk under the axis; deaths censored.",
            lambda w: km_figure(
                tables["km_risk_groups"],
                tables["km_at_risk"],
                groups=order,
                cumulative=True,
                time_label="Days since surgery",
                y_label="Cumulative incidence (1 - KM)",
                legend_title="Predicted 1-year risk",
                xmax=float(plan.outcome.horizon),
                width_mm=w,
            ),
            "single",
        )
    )
    dc = tables["decision_curve"].rename(columns={"strategy": "model"}).copy()
    n_dc = int(dc.loc[dc["model"] == "treat all", "n_treated"].iloc[0])
    dc["tp"] = (dc["km_risk_treated"].fillna(0.0) * dc["n_treated"]).astype(float)
    dc["n"] = n_dc
    specs.append(
        FigureSpec(
            "decision_curve",
            f"Decision curves at {o.horizon_label} of {', '.join(plan.model_names)} (n = "
            f"{count(n_dc)} patients, {count(ev_h)} events by {o.horizon_label}): net benefit "
            "(Kaplan-Meier risk among those above the threshold; deaths censored) against the "
            "threshold risk, with treat all and treat none for reference. No intervals are drawn.",
            # legend under the panel: at 85 mm the curves fill it and a legend inside hides them
            lambda w: legend_below(
                figures.decision_curve_figure(dc, models=plan.model_names, width_mm=w)
            ),
            "single",
        )
    )
    return specs


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=False,
)
