"""cirrhosis-sarcopenia (NCT06531200): CT sarcopenia added to MELD-Na, death with transplant competing.

The protocol: a deep-learning segmentation of the L3 CT slice gives the
skeletal muscle index (SMI, cm2/m2); sarcopenia is SMI below a sex-specific
cut-off (plan ``extra.sarcopenia_cutoffs``). A prognostic model adding
sarcopenia to clinical data (MELD-Na) is developed at the development centre
and validated internally (bootstrap optimism correction by refitting) and
externally. Liver transplantation competes with death: it is a competing
event everywhere, never censoring.

A study of the type "prognostic model with a competing event"
(:mod:`studyval.steps.competing_risks`: cause-specific Cox models, predicted
cumulative incidence, td-AUC, Brier score and IPA, grouped calibration,
optimism, added value). What is this study's own is here: its eligibility
rules (MELD, MELD-Na, SMI and sarcopenia checked against their components),
the participant flow, the baseline table, the sarcopenia prevalence, the
sample-size checks, the cumulative incidence by sarcopenia, the models table
(with the segmentation weights) and the TRIPOD+AI checklist text; its figures
are in :mod:`studyval.figures.cirrhosis_sarcopenia`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis import competing_risks, proportions, sample_size, sample_size_survival
from studyval.analysis.descriptive import baseline_table
from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations
from studyval.errors import Violation
from studyval.figures.cirrhosis_sarcopenia import figure_specs, flow_stages
from studyval.plan import PredictionModelPlan
from studyval.protocol import StudyProtocol, flow_count, steps_analysis
from studyval.steps import competing_risks as crsteps
from studyval.steps import prognostic
from studyval.steps.common import BASELINE, FLOW, MODELS, SAMPLE_SIZE
from studyval.steps.registry import StepContext, StepRegistry, TableSpec

__all__ = [
    "ALWAYS",
    "PROTOCOL",
    "REGISTRY",
    "SLUG",
    "check_eligibility",
    "checklist",
    "figure_specs",
    "flow_counts",
    "flow_stages",
    "needed_columns",
]

SLUG = "cirrhosis-sarcopenia"
SETS = ("internal", "external")


# ----------------------------------------------------------------------------- eligibility


def _meld(bili: pd.Series, inr: pd.Series, creat: pd.Series) -> np.ndarray:
    b = np.maximum(bili.to_numpy(float), 1.0)
    i = np.maximum(inr.to_numpy(float), 1.0)
    c = np.clip(creat.to_numpy(float), 1.0, 4.0)
    return 3.78 * np.log(b) + 11.2 * np.log(i) + 9.57 * np.log(c) + 6.43


def _meld_na(meld: np.ndarray, sodium: pd.Series) -> np.ndarray:
    na = np.clip(sodium.to_numpy(float), 125.0, 137.0)
    return meld + 1.32 * (137.0 - na) - 0.033 * meld * (137.0 - na)


def needed_columns(plan: PredictionModelPlan) -> dict[str, str]:
    """Clinical columns the dictionary lets be left out but the plan uses: column -> use, in words.

    The dictionary makes the segmentation's outputs optional because an
    excluded patient (no usable L3 CT) has none; the analyses of the
    included patients need every one.

    Parameters
    ----------
    plan : PredictionModelPlan
        The protocol's plan.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    uses = {m.name for m in plan.models if "sarcopenia" in m.covariates}
    return {
        "l3_muscle_area_cm2": "baseline table and the SMI check (SMI = area / height^2)",
        "smi_cm2_m2": "baseline table, sarcopenia prevalence and the sarcopenia check "
        "(SMI below the sex-specific cut-off)",
        "sarcopenia": "sarcopenia prevalence and the Cox model"
        + ("s " if len(uses) > 1 else " ")
        + " and ".join(sorted(uses))
        + " (a covariate)",
    }


def check_eligibility(
    clinical: pd.DataFrame, plan: PredictionModelPlan, *, label: str
) -> list[Violation]:
    """Rules spanning columns of the clinical table, for included patients.

    * the columns the dictionary lets be left out but the plan uses are present
      (:func:`needed_columns`); where one is absent, only that is reported (the
      other rules read it);
    * MELD agrees with bilirubin, INR and creatinine, and MELD-Na with MELD and
      sodium (formulas in the data dictionary), within ``extra.meld_tolerance``;
    * the muscle area, the SMI and sarcopenia are present; SMI = area / height^2
      within ``extra.smi_tolerance``; sarcopenia agrees with the plan's
      sex-specific cut-offs;
    * a follow-up time of 0 days only with an event: a death or a transplant on
      the day of the index CT (``event`` 1 or 2) is real and is analysed as R's
      ``survival::coxph`` does (an event at time 0, with every patient at
      risk), while a patient censored on that day (``event`` 0) was never
      followed and is an error (the same rule as refracture-pvp's);
    * one segmentation model version in the table.
    """
    absent = absent_column_violations(clinical, needed_columns(plan), label=label)
    if absent:
        return absent
    tol = float(plan.extra.get("meld_tolerance", 0.5))
    smi_tol = float(plan.extra.get("smi_tolerance", 0.05))
    cut = plan.extra["sarcopenia_cutoffs"]
    problems: list[Violation] = []
    inc = clinical[clinical["exclusion_reason"] == "none"]
    o = plan.outcome
    never_followed = (inc[o.time].astype(float) == 0) & (inc[o.event].astype(int) == 0)
    for idx in inc.index[never_followed.to_numpy(bool)]:
        problems.append(
            Violation(
                label,
                o.time,
                int(idx) + 2,
                f"an included patient censored on the day of the index CT ({o.time} 0, {o.event} 0) "
                "was never followed: give the time to the last contact, or set exclusion_reason to "
                f"incomplete_data (a death or a transplant on that day, {o.event} 1 or 2, is "
                f"accepted with {o.time} 0)",
                "0",
            )
        )

    def flag(mask: np.ndarray, column: str, rule: str, values: pd.Series) -> None:
        for idx in inc.index[mask]:
            problems.append(Violation(label, column, int(idx) + 2, rule, f"{values[idx]:g}"))

    meld = _meld(inc["bilirubin_mg_dl"], inc["inr"], inc["creatinine_mg_dl"])
    bad = np.abs(inc["meld"].to_numpy(float) - meld) > tol
    flag(
        bad,
        "meld",
        f"MELD does not match bilirubin, INR and creatinine (UNOS formula) within {tol:g} points",
        inc["meld"],
    )
    mna = _meld_na(inc["meld"].to_numpy(float), inc["sodium_mmol_l"])
    bad = np.abs(inc["meld_na"].to_numpy(float) - mna) > tol
    flag(
        bad,
        "meld_na",
        f"MELD-Na does not match MELD and sodium (Kim 2008 formula) within {tol:g} points",
        inc["meld_na"],
    )
    for col in ("l3_muscle_area_cm2", "smi_cm2_m2", "sarcopenia"):
        for idx in inc.index[inc[col].isna()]:
            problems.append(
                Violation(
                    label,
                    col,
                    int(idx) + 2,
                    "missing for an included patient; set exclusion_reason",
                )
            )
    have = inc["smi_cm2_m2"].notna() & inc["l3_muscle_area_cm2"].notna()
    smi = inc["l3_muscle_area_cm2"] / inc["height_m"] ** 2
    bad = (have & ((inc["smi_cm2_m2"] - smi).abs() > smi_tol)).to_numpy(bool)
    flag(
        bad,
        "smi_cm2_m2",
        f"SMI is not l3_muscle_area_cm2 / height_m^2 within {smi_tol:g}",
        inc["smi_cm2_m2"],
    )
    cutoff = inc["sex"].astype(str).map({"M": float(cut["M"]), "F": float(cut["F"])})
    expected = inc["smi_cm2_m2"] < cutoff
    has_s = have & inc["sarcopenia"].notna()
    bad = (has_s & (inc["sarcopenia"].astype("boolean") != expected)).to_numpy(bool)
    for idx in inc.index[bad]:
        problems.append(
            Violation(
                label,
                "sarcopenia",
                int(idx) + 2,
                f"does not agree with SMI {inc.at[idx, 'smi_cm2_m2']:g} and the plan's cut-off for sex "
                f"{inc.at[idx, 'sex']} (< {cutoff[idx]:g} cm2/m2)",
                str(inc.at[idx, "sarcopenia"]),
            )
        )
    versions = clinical["segmentation_model_version"].dropna().unique()
    if len(versions) > 1:
        problems.append(
            Violation(
                label,
                "segmentation_model_version",
                None,
                f"{len(versions)} segmentation weight versions; one run evaluates one version",
            )
        )
    return problems


# ----------------------------------------------------------------------------- data


def _analysis_frame(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """:func:`studyval.steps.competing_risks.event_frame` with ``sarcopenia_label``."""
    d = crsteps.event_frame(cohort, plan)
    d["sarcopenia_label"] = np.where(d["sarcopenia"] > 0, "sarcopenia", "no sarcopenia")
    return d


# ----------------------------------------------------------------------------- steps

PREVALENCE = TableSpec(
    "prevalence",
    "Sarcopenia prevalence (Wilson CI) and median SMI by set and sex",
    ("set", "sex", "cutoff", "n", "n_sarcopenia", "estimate", "ci_low", "ci_high", "smi_median"),
)
CIF_CURVES = TableSpec(
    "cif_curves",
    "Aalen-Johansen cumulative incidence of each cause by sarcopenia, every event time, by set",
    ("set", "cause", "group", "time", "n_risk", "estimate", "se", "ci_low", "ci_high"),
)
CIF_AT = TableSpec(
    "cif_at",
    "Aalen-Johansen cumulative incidence of each cause by sarcopenia at the plan's times, by set",
    ("set", "cause", "group", "time", "n_risk", "estimate", "se", "ci_low", "ci_high"),
)
GRAY_TEST = TableSpec(
    "gray_test",
    "Gray's test of equal cumulative incidence with and without sarcopenia, by set and cause",
    ("set", "cause", "statistic", "df", "p_value"),
)
OWN = StepRegistry(SLUG)


def flow_counts(cohort: Cohort, plan: PredictionModelPlan, d: pd.DataFrame) -> pd.DataFrame:
    """Participant flow: screened, excluded by reason, included and outcomes by centre.

    Columns ``stage, set, site, group, n_patients, detail``; ``outcome`` rows
    count deaths, transplants and censored patients over the whole follow-up
    and ``outcome_by_horizon`` by the horizon.
    """
    clin = cohort.clinical
    o = plan.outcome
    rows: list[dict[str, object]] = []

    def add(stage: str, n: int, *, set_: str = "", site: str = "", group: str = "") -> None:
        rows.append(
            {"stage": stage, "set": set_, "site": site, "group": group, "n_patients": int(n)}
        )

    add("screened", len(clin))
    excl = clin[clin["exclusion_reason"] != "none"]
    add("excluded", len(excl))
    for reason in clin["exclusion_reason"].cat.categories:
        if reason != "none":
            add(
                "excluded_reason",
                int((excl["exclusion_reason"] == reason).sum()),
                group=str(reason),
            )
    add("included", len(d))
    for set_ in SETS:
        sub = d[d["set"] == set_]
        site = ", ".join(sorted(sub["site"].astype(str).unique()))
        add("included_set", len(sub), set_=set_, site=site)
        for code, name in sorted(o.event_codes.items()):
            add("outcome", int((sub["code"] == code).sum()), set_=set_, site=site, group=name)
        for code, name in sorted(o.event_codes.items()):
            if code == 0:
                n = int(
                    (sub["time"] <= o.horizon).sum()
                    - (sub["code"][sub["time"] <= o.horizon] > 0).sum()
                )
                name = "censored before horizon"
            else:
                n = int(((sub["code"] == code) & (sub["time"] <= o.horizon)).sum())
            add("outcome_by_horizon", n, set_=set_, site=site, group=name)
        add("followup_median_days", round(float(sub["time"].median())), set_=set_, site=site)
    return pd.DataFrame(rows)


@OWN.step("baseline", produces=[BASELINE])
def _baseline(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Baseline characteristics by centre and by sarcopenia."""
    d = _analysis_frame(cohort, plan)
    cont = [
        "age",
        "height_cm",
        "l3_muscle_area_cm2",
        "smi_cm2_m2",
        "bilirubin_mg_dl",
        "inr",
        "creatinine_mg_dl",
        "sodium_mmol_l",
        "meld",
        "meld_na",
        "time",
    ]
    f = d.copy()
    f["height_cm"] = f["height_m"] * 100.0
    f["centre"] = pd.Categorical(
        np.where(f["set"] == "internal", "development", "external"),
        categories=["development", "external"],
    )
    f["sarcopenia_status"] = pd.Categorical(
        f["sarcopenia_label"], categories=["no sarcopenia", "sarcopenia"]
    )
    f["outcome"] = pd.Categorical(
        f["code"].map({0: "censored", 1: "death", 2: "transplant"}),
        categories=["censored", "death", "transplant"],
    )
    out = []
    for grouping, col in (("centre", "centre"), ("sarcopenia", "sarcopenia_status")):
        other = "sarcopenia_status" if col == "centre" else "centre"
        tab = baseline_table(
            f,
            group=col,
            continuous=cont,
            categorical=["sex", "child_pugh", "ascites", "etiology", other, "outcome"],
        )
        tab.insert(0, "grouping", grouping)
        out.append(tab)
    res = pd.concat(out, ignore_index=True)
    res["variable"] = res["variable"].replace({"time": "followup_days"})
    return {"baseline": res}


@OWN.step("prevalence", produces=[PREVALENCE])
def _prevalence(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Sarcopenia prevalence (Wilson CI) by set and sex."""
    d = _analysis_frame(cohort, plan)
    cut = plan.extra["sarcopenia_cutoffs"]
    rows = []
    for set_ in (*SETS, "all"):
        sub = d if set_ == "all" else d[d["set"] == set_]
        for sex in ("M", "F", "all"):
            s = sub if sex == "all" else sub[sub["sex"].astype(str) == sex]
            x, n = int(s["sarcopenia"].sum()), len(s)
            p = proportions.proportion_ci(x, n, alpha=plan.alpha, method="wilson")
            rows.append(
                {
                    "set": set_,
                    "sex": sex,
                    "cutoff": (f"< {cut[sex]:g} cm2/m2" if sex != "all" else "sex-specific"),
                    "n": n,
                    "n_sarcopenia": x,
                    "estimate": p.estimate,
                    "ci_low": p.ci_low,
                    "ci_high": p.ci_high,
                    "smi_median": float(s["smi_cm2_m2"].median()),
                }
            )
    return {"prevalence": pd.DataFrame(rows)}


@OWN.step("sample_size", produces=[SAMPLE_SIZE])
def _sample_size(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Riley criteria and Schoenfeld events against the registered and observed numbers."""
    d = _analysis_frame(cohort, plan)
    ss = plan.sample_size
    r = sample_size_survival.riley_survival(
        parameters=ss.parameters,
        rate=ss.rate,
        timepoint=ss.timepoint,
        mean_follow_up=ss.mean_follow_up,
        r2_cs=ss.r2_cs,
        r2_nagelkerke=ss.r2_nagelkerke,
        shrinkage=ss.shrinkage,
    )
    chk = sample_size.check_registered(
        r.n, ss.registered_total, label="patients", basis=f"Riley criterion ({r.governing})"
    )
    rows = [
        {
            "check": "registered",
            "quantity": "patients (development)",
            "method": "Riley et al. 2020 (pmsampsize type s)",
            "assumption": f"{ss.parameters} parameters, R2_CS {ss.r2_cs}, rate {ss.rate}/year, "
            f"mean follow-up {ss.mean_follow_up} y, time point {ss.timepoint} y, shrinkage {ss.shrinkage}",
            "required_unrounded": float(r.n),
            "required": int(r.required),
            "required_events": int(r.required_events),
            "available": int(ss.registered_total),
            "shortfall": int(chk.shortfall),
            "adequate": bool(chk.adequate),
            "message": chk.message,
        }
    ]
    dev = d[d["set"] == "internal"]
    n_dev, deaths_dev = len(dev), int((dev["code"] == plan.outcome.cause).sum())
    rows.append(
        {
            "check": "observed (development)",
            "quantity": "patients and deaths at the development centre",
            "method": "Riley et al. 2020",
            "assumption": "as above",
            "required_unrounded": float(r.n),
            "required": int(r.required),
            "required_events": int(r.required_events),
            "available": n_dev,
            "shortfall": int(r.required) - n_dev,  # signed, as RegisteredCheck.shortfall
            "adequate": bool(n_dev >= r.required and deaths_dev >= r.required_events),
            "message": f"The development centre has {n_dev} patients and {deaths_dev} deaths; the Riley "
            f"criteria require {r.required} patients and {r.required_events} events.",
        }
    )
    if ss.schoenfeld_hr is not None:
        p_event = float((d["code"] == plan.outcome.cause).mean())
        sch = sample_size_survival.schoenfeld_events(
            ss.schoenfeld_hr,
            alpha=plan.alpha,
            power=ss.schoenfeld_power,
            proportion_exposed=ss.schoenfeld_proportion_exposed or 0.5,
            event_probability=p_event,
        )
        rows.append(
            {
                "check": "schoenfeld",
                "quantity": "deaths to detect the sarcopenia hazard ratio",
                "method": "Schoenfeld 1983",
                "assumption": f"HR {ss.schoenfeld_hr}, power {ss.schoenfeld_power}, "
                f"{ss.schoenfeld_proportion_exposed} sarcopenic, alpha {plan.alpha}",
                "required_unrounded": float(sch.events),
                "required": int(sch.required_events),
                "required_events": int(sch.required_events),
                "available": deaths_dev,
                "shortfall": int(sch.required_events) - deaths_dev,
                "adequate": bool(deaths_dev >= sch.required_events),
                "message": f"{sch.required_events} deaths are needed to detect HR {ss.schoenfeld_hr} with "
                f"power {ss.schoenfeld_power}; the development centre has {deaths_dev}.",
            }
        )
    return {"sample_size": pd.DataFrame(rows)}


@OWN.step("cumulative_incidence", produces=[CIF_CURVES, CIF_AT, GRAY_TEST])
def _cif(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Aalen-Johansen cumulative incidence of every cause by sarcopenia, and Gray's test."""
    ctx.progress("cumulative incidence by sarcopenia (Aalen-Johansen) and Gray's test")
    d = _analysis_frame(cohort, plan)
    o = plan.outcome
    causes = [c for c in o.event_codes if c != 0]
    times = [float(x) for x in plan.extra.get("cif_times_days", [o.horizon])]
    curves, at, tests = [], [], []
    for set_ in SETS:
        sub = d[d["set"] == set_]
        for k in causes:
            ci = competing_risks.cumulative_incidence(
                sub["time"],
                sub["code"],
                cause=k,
                groups=sub["sarcopenia_label"],
                alpha=plan.alpha,
                causes=causes,
            )
            c = ci.to_frame()
            c.insert(0, "cause", o.event_codes[k])
            c.insert(0, "set", set_)
            curves.append(c)
            ct = competing_risks.cumulative_incidence(
                sub["time"],
                sub["code"],
                cause=k,
                groups=sub["sarcopenia_label"],
                times=times,
                alpha=plan.alpha,
                causes=causes,
            ).to_frame()
            ct.insert(0, "cause", o.event_codes[k])
            ct.insert(0, "set", set_)
            at.append(ct)
            g = ci.test
            tests.append(
                {
                    "set": set_,
                    "cause": o.event_codes[k],
                    "statistic": g.statistic,
                    "df": g.df,
                    "p_value": g.p_value,
                }
            )
    return {
        "cif_curves": pd.concat(curves, ignore_index=True),
        "cif_at": pd.concat(at, ignore_index=True),
        "gray_test": pd.DataFrame(tests),
    }


@OWN.step("flow", produces=[FLOW])
def _flow_step(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Participant flow: screened, excluded by reason, included and outcomes by centre."""
    ctx.progress("participant flow and baseline characteristics")
    return {"flow": flow_counts(cohort, plan, _analysis_frame(cohort, plan))}


@OWN.step("models", produces=[MODELS], needs=("cs_fits",))
def _models_step(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """The plan's models: covariates, hash of the fitted models, segmentation weights used."""
    fitted = ctx.artifacts["cs_fits"]
    seg = str(_analysis_frame(cohort, plan)["segmentation_model_version"].iloc[0])
    table = pd.DataFrame(
        [
            {
                "model": m.name,
                "role": m.role,
                "covariates": ", ".join(m.covariates),
                "model_version": crsteps.model_version(fitted[m.name]),
                "segmentation_model_version": seg if "sarcopenia" in m.covariates else "",
                "description": m.description,
            }
            for m in plan.models
        ]
    )
    return {"models": table}


#: The steps a plan of this protocol may name: the competing-risks prognostic steps, this study's own
#: and the spline linearity check of the prognostic-model type (plan 1.1, issue 16).
REGISTRY = crsteps.REGISTRY.including(OWN, prognostic.LINEARITY_STEPS, name=SLUG)
#: Steps every run has (the plan's endpoints name the rest).
ALWAYS = ("flow", "baseline", "sample_size", "cause_specific_models", "models")

# ----------------------------------------------------------------------------- report pieces


def checklist(
    plan: PredictionModelPlan, tables: dict[str, pd.DataFrame], cohort: Cohort
) -> pd.DataFrame:
    """The TRIPOD+AI 2024 checklist filled from the plan and the tables."""
    o = plan.outcome
    flow = tables["flow"]
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]

    def fn(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    perf = tables["performance"]
    cut = plan.extra["sarcopenia_cutoffs"]

    def pm(set_: str, measure: str) -> str:
        r = perf[
            (perf["set"] == set_)
            & (perf["model"] == plan.primary_model)
            & (perf["measure"] == measure)
        ].iloc[0]
        level = f"{100 * (1 - plan.alpha):g}% CI"
        ci = (
            f"{level} {r['apparent_ci_low']:.3f}-{r['apparent_ci_high']:.3f}"
            if np.isfinite(r["apparent_ci_low"])
            else ""
        )
        if set_ == "internal":
            return f"{r['corrected']:.3f} optimism-corrected (apparent {r['apparent']:.3f}, {ci})"
        return f"{r['apparent']:.3f} ({ci})"

    ph = tables["ph_test"]
    ph_fail = ph[(ph["term"] != "GLOBAL") & ph["ph_violated"]]
    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_text = ", ".join(f"{r.group.replace('_', ' ')} {r.n_patients}" for r in excl.itertuples())
    seg = tables["models"]["segmentation_model_version"].replace("", np.nan).dropna()
    content = {
        "1": (
            f"{plan.registry.title}: development and external validation of a prognostic model "
            f"(death, transplant competing) in adults with cirrhosis.",
            "Title",
        ),
        "2": (f"Draft from the plan: {plan.registry.design}", "Summary"),
        "5a": (
            "Development: patients of the development centre; evaluation: patients of other centres "
            "(registry). Representativeness to be confirmed.",
            "Protocol",
        ),
        "5b": (
            f"Index CT dates of included patients {inc['ct_date'].min():%Y-%m-%d} to "
            f"{inc['ct_date'].max():%Y-%m-%d}; maximum follow-up {inc[o.time].max():.0f} days.",
            "Baseline characteristics",
        ),
        "6a": (
            f"{inc['site'].nunique()} centres: development {', '.join(plan.sets.development_sites)} "
            f"({fn('included_set', set='internal')} patients), external "
            f"{', '.join(plan.sets.external_sites)} ({fn('included_set', set='external')}).",
            "Participant flow",
        ),
        "6b": (f"Registry eligibility; exclusions applied: {excl_text}.", "Participant flow"),
        "7": (
            "Every table validated against the data dictionary; MELD, MELD-Na, SMI and sarcopenia "
            "checked against their components for every included patient.",
            "Data and methods",
        ),
        "8c": (
            "Death and transplantation are recorded from hospital records; not influenced by the "
            "predictors. Confirm.",
            "Protocol",
        ),
        "9b": (
            f"L3 skeletal muscle area from the deep-learning segmentation (weights {seg.iloc[0][:19]}...), "
            f"SMI = area / height^2; sarcopenia SMI < {cut['M']:g} (men) / < {cut['F']:g} cm2/m2 "
            "(women), Carey et al. 2017. MELD-Na from laboratory values at the index CT.",
            "Models",
        ),
        "11": (
            f"Complete-case by design: patients with incomplete data are excluded "
            f"({fn('excluded_reason', group='incomplete_data')}) and no usable L3 CT "
            f"({fn('excluded_reason', group='no_usable_l3_ct')}); no imputation.",
            "Participant flow",
        ),
        "12a": (
            "Development centre: model fitting and internal validation (bootstrap, "
            f"{plan.sets.n_bootstrap} resamples with refitting); external centre: external validation.",
            "Performance",
        ),
        "12b": (
            "MELD-Na continuous, linear; sarcopenia binary from the sex-specific SMI cut-off.",
            "Models",
        ),
        "12c": (
            "Cause-specific Cox models for death and transplant (Efron ties); predicted cumulative "
            f"incidence of death by {o.horizon_label} from both; Fine-Gray as companion; Harrell's "
            "bootstrap optimism correction.",
            "Models",
        ),
        "12d": (
            "Centres analysed separately (development vs external); no pooling across centres.",
            "Performance",
        ),
        "12e": (
            f"Time-dependent AUC (cause 1) and Harrell's C, IPCW Brier score and IPA at "
            f"{o.horizon_label}, calibration by risk group against Aalen-Johansen"
            + (
                "; calibration slope (Fine-Gray on cloglog of the predicted incidence), "
                "optimism-corrected internally."
                if "calibration_slope" in tables
                else "."
            ),
            "Performance",
        ),
        "12f": (
            "No updating or recalibration: the development model is applied unchanged to the external centre.",
            "Calibration",
        ),
        "12g": (
            f"Coefficients and baseline hazards in the bundle; model hash "
            f"{tables['models'].loc[tables['models']['role'] == 'primary', 'model_version'].iloc[0][:19]}...",
            "Models",
        ),
        "13": ("Not applicable: time-to-event outcome, no resampling for class balance.", "Models"),
        "14": (
            "Sex-specific sarcopenia cut-offs; prevalence and discrimination reported by sex.",
            "Sarcopenia prevalence",
        ),
        "15": (
            f"Predicted cumulative incidence of death by {o.horizon_label}; no decision threshold.",
            "Models",
        ),
        "16": (
            "Same eligibility and definitions at both centres; case mix compared in the baseline table.",
            "Baseline characteristics",
        ),
        "18f": ("studyval (this package); commit in the bundle manifest.", "Provenance"),
        "20a": (
            f"{fn('screened')} screened, {fn('excluded')} excluded, {fn('included')} included; deaths "
            f"{fn('outcome', group='death')}, transplants {fn('outcome', group='liver transplantation')}, "
            f"censored {fn('outcome', group='censored')}.",
            "Participant flow",
        ),
        "20b": ("By centre and by sarcopenia, with missing values.", "Baseline characteristics"),
        "20c": (
            "Development vs external: see the baseline table by centre.",
            "Baseline characteristics",
        ),
        "21": (
            "Patients and deaths by horizon per analysis in the performance and model tables.",
            "Performance",
        ),
        "22": (
            "Coefficients (cause-specific HRs) in the model table; baseline hazards in the bundle.",
            "Models",
        ),
        "23a": (
            f"Primary model: td-AUC internal {pm('internal', 'td_auc')}, "
            f"external {pm('external', 'td_auc')}; discrimination by sex in the subgroup table "
            "(calibration by subgroup is not reported).",
            "Performance",
        ),
        "23b": ("Internal vs external side by side.", "Performance"),
        "24": ("No model updating was done.", "Calibration"),
        "27a": (
            "Patients without a usable L3 CT cannot be scored (excluded); report their number.",
            "Participant flow",
        ),
    }
    if len(ph_fail):
        content["12c"] = (
            content["12c"][0] + f" PH assumption flagged for {len(ph_fail)} term(s).",
            "Models",
        )
    return tripod_ai_2024(plan, tables, content=content)


def imaging_chain(
    clinical: Path,
    work: Path,
    plan: PredictionModelPlan,
    *,
    seed: int,
    progress: Callable[[str], None],
) -> dict[str, Path]:
    """The demo's imaging chain: phantom CTs -> L3 segmentation -> measured area, SMI, sarcopenia.

    The plan's sex-specific SMI cut-offs (``extra.sarcopenia_cutoffs``) classify
    sarcopenia. See :func:`studyval.imaging_demo.cirrhosis_imaging` (needs the
    ``models`` extra).
    """
    from studyval.imaging_demo import cirrhosis_imaging

    cut = plan.extra["sarcopenia_cutoffs"]
    res = cirrhosis_imaging(
        clinical,
        work,
        seed=seed,
        cutoffs={"M": float(cut["M"]), "F": float(cut["F"])},
        progress=progress,
    )
    return {"clinical": res.clinical, "imaging": res.imaging}


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=steps_analysis(REGISTRY, always=ALWAYS),
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=False,
    imaging_chain=imaging_chain,
    steps=REGISTRY,
)
