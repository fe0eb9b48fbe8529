"""cirrhosis-sarcopenia (NCT06531200): CT sarcopenia added to MELD-Na, death with transplant competing.

The protocol: a deep-learning segmentation of the L3 CT slice gives the
skeletal muscle index (SMI, cm2/m2); sarcopenia is SMI below a sex-specific
cut-off (plan ``extra.sarcopenia_cutoffs``). A prognostic model adding
sarcopenia to clinical data (MELD-Na) is developed at the development centre
and validated internally (bootstrap optimism correction by refitting) and
externally. Liver transplantation competes with death: it is a competing
event everywhere (cause-specific Cox models for both causes give the predicted
cumulative incidence of death; Aalen-Johansen for observed incidence; td-AUC
with ``cause=1``; IPCW Brier for the cumulative incidence), never censoring.

:func:`analyse` is pure: it takes validated data and the plan and returns the
tables of the results bundle; it neither reads files nor draws.

Every statistic comes from :mod:`studyval.analysis`: the predicted cumulative
incidence from :func:`~studyval.analysis.competing_risks.predict_cumulative_incidence`
(``product_limit=False``, riskRegression's ``predictRisk`` of a ``CSC`` fit with
``product.limit = FALSE``), the Brier score, its null model and the IPA from
:func:`~studyval.analysis.competing_risks.brier_competing` (``Score``), the
optimism from :func:`~studyval.analysis.internal_validation.bootstrap_optimism`
and the difference in Harrell's C from
:func:`~studyval.analysis.paired_bootstrap.harrell_c_difference`; their oracle
tests are in ``tests/test_competing_risks.py``, ``tests/test_internal_validation.py``
and ``tests/test_paired_bootstrap.py``.

Bootstrap resamples (internal validation): a resample fails, is counted (per
model, with its reason, in the ``optimism`` table and the warnings) and is
left out of that model's mean optimism when a cause-specific Cox model cannot
be fitted or does not converge, when the resample's last follow-up time is
before the horizon (the baseline hazards, and so the predicted incidence, are
not defined there: nothing is carried forward), when a predicted incidence is
above 1 (the exponential form does not bound it; the Brier score is then
undefined) or when a measure cannot be computed (e.g. no death by the horizon).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from studyval import figures
from studyval.analysis import competing_risks, proportions, sample_size, sample_size_survival
from studyval.analysis import survival as sv
from studyval.analysis import survival_validation as svv
from studyval.analysis.descriptive import baseline_table
from studyval.analysis.internal_validation import OptimismResult, RefitModel, bootstrap_optimism
from studyval.analysis.paired_bootstrap import harrell_c_difference
from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations, estimating
from studyval.errors import EstimationError, Violation
from studyval.figures import competing_risks as crfig
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.plan import PredictionModelPlan
from studyval.protocol import ProtocolTables, StudyProtocol, flow_count

__all__ = [
    "PROTOCOL",
    "SLUG",
    "analyse",
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
    clin = cohort.clinical
    d = clin[clin["exclusion_reason"] == "none"].copy()
    o = plan.outcome
    d["time"] = d[o.time].astype(float)
    d["code"] = d[o.event].astype(int)
    d["sarcopenia"] = d["sarcopenia"].astype(bool).astype(float)
    d["sarcopenia_label"] = np.where(d["sarcopenia"] > 0, "sarcopenia", "no sarcopenia")
    dev = d["site"].astype(str).isin(plan.sets.development_sites)
    ext = d["site"].astype(str).isin(plan.sets.external_sites)
    d["set"] = np.where(dev, "internal", np.where(ext, "external", "other"))
    return d.reset_index(drop=True)


def _check_outcome(d: pd.DataFrame, plan: PredictionModelPlan) -> None:
    o = plan.outcome
    for set_ in SETS:
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


# ----------------------------------------------------------------------------- predictions


@dataclass(frozen=True)
class _Fitted:
    """Cause-specific Cox fits of one model formula, one per cause."""

    covariates: tuple[str, ...]
    fits: dict[int, sv.CoxResult]
    #: Last follow-up time of the data the models were fitted on.
    last_time: float


def _fit(d: pd.DataFrame, covs: list[str], plan: PredictionModelPlan) -> _Fitted:
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
            causes=[c for c in o.event_codes if c != 0],
        )
    return _Fitted(covariates=tuple(covs), fits=fits, last_time=float(d["time"].max()))


def _predicted_risk(model: _Fitted, d: pd.DataFrame, plan: PredictionModelPlan) -> np.ndarray:
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


# ----------------------------------------------------------------------------- measures


def _brier(d: pd.DataFrame, risk: np.ndarray, plan: PredictionModelPlan, *, conservative: bool):
    o = plan.outcome
    return competing_risks.brier_competing(
        d["time"].to_numpy(float),
        d["code"].to_numpy(int),
        risk,
        cause=o.cause,
        horizon=o.horizon,
        alpha=plan.alpha,
        causes=[c for c in o.event_codes if c != 0],
        conservative=conservative,
    )


def _point_measures(
    d: pd.DataFrame, risk: np.ndarray, plan: PredictionModelPlan
) -> dict[str, float]:
    """Point estimates of the bootstrap's measures (the SE terms are not needed there)."""
    o = plan.outcome
    t, c = d["time"].to_numpy(float), d["code"].to_numpy(int)
    # point estimates only: skip the censoring term of the SE
    b = _brier(d, risk, plan, conservative=True)
    return {
        "td_auc": svv.time_dependent_auc(t, c, risk, horizon=o.horizon, cause=o.cause).estimate,
        "harrell_c": sv.harrell_c(t, (c == o.cause).astype(int), risk).estimate,
        "brier": b.estimate,
        "ipa": b.ipa,
    }


def _refit_model(m, plan: PredictionModelPlan) -> RefitModel:
    """The modelling procedure of model ``m`` to refit in every bootstrap resample."""
    o = plan.outcome
    covs = list(m.covariates)

    def fit(frame: pd.DataFrame) -> _Fitted:
        f = _fit(frame, covs, plan)
        bad = [o.event_codes[k] for k, cf in f.fits.items() if not cf.converged]
        if bad:
            raise EstimationError(
                f"the cause-specific Cox model for {', '.join(bad)} did not converge"
            )
        return f

    return RefitModel(
        fit=fit,
        predict=lambda f, frame: _predicted_risk(f, frame, plan),
        measures=lambda frame, risk: _point_measures(frame, risk, plan),
        description=(
            f"cause-specific Cox models ({', '.join(o.event_codes[k] for k in [o.cause, *o.competing])}) "
            f"on {', '.join(covs)}; predicted cumulative incidence of {o.event_codes[o.cause]} by "
            f"{o.horizon:g} {o.time_unit} (product_limit=False)"
        ),
    )


# ----------------------------------------------------------------------------- analyse


def analyse(
    cohort: Cohort,
    plan: PredictionModelPlan,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> ProtocolTables:
    """Run the plan's analyses; return the tidy tables of the bundle."""
    o = plan.outcome
    t: dict[str, pd.DataFrame] = {}
    d = _analysis_frame(cohort, plan)
    _check_outcome(d, plan)
    dev = d[d["set"] == "internal"].reset_index(drop=True)
    ext = d[d["set"] == "external"].reset_index(drop=True)
    sets = {"internal": dev, "external": ext}

    progress("participant flow and baseline characteristics")
    t["flow"] = flow_counts(cohort, plan, d)
    t["baseline"] = _baseline(d)
    t["prevalence"] = _prevalence(d, plan)
    t["sample_size"] = _sample_size(plan, d)

    progress("cause-specific Cox models (development centre)")
    fitted = {}
    for m in plan.models:
        with estimating(f"model {m.name}, development centre, cause-specific Cox models"):
            fitted[m.name] = _fit(dev, list(m.covariates), plan)
    cox_rows, zph_rows = [], []
    for m in plan.models:
        for k, fit in fitted[m.name].fits.items():
            s = fit.summary.copy()
            s.insert(0, "cause", o.event_codes[k])
            s.insert(0, "model", m.name)
            s["n"], s["n_events"] = fit.n, fit.n_events
            s["loglik"], s["ci_level"] = fit.loglik, fit.ci_level
            cox_rows.append(s)
            z = sv.cox_zph(fit, data=_cs_frame(dev, k)).table.copy()
            z.insert(0, "cause", o.event_codes[k])
            z.insert(0, "model", m.name)
            z["ph_violated"] = z["p_value"] < plan.alpha
            zph_rows.append(z)
    t["cox"] = pd.concat(cox_rows, ignore_index=True)
    t["ph_test"] = pd.concat(zph_rows, ignore_index=True)
    t["models"] = _models_table(plan, fitted, d)
    t["baseline_hazard"] = pd.concat(
        [
            fit.baseline_hazard.assign(model=m.name, cause=o.event_codes[k])[
                ["model", "cause", "time", "cumhaz"]
            ]
            for m in plan.models
            for k, fit in fitted[m.name].fits.items()
        ],
        ignore_index=True,
    )

    progress("Fine-Gray subdistribution hazards (companion analysis)")
    prim = next(m for m in plan.models if m.role == "primary")
    comp = next((m for m in plan.models if m.role != "primary"), None)
    fg_rows = []
    for k in [o.cause, *o.competing]:
        fg = competing_risks.fine_gray(
            dev,
            duration="time",
            event="code",
            cause=k,
            covariates=list(prim.covariates),
            alpha=plan.alpha,
            causes=[c for c in o.event_codes if c != 0],
        )
        s = fg.table()
        s.insert(0, "cause", o.event_codes[k])
        s["n"], s["n_events"], s["n_competing"] = fg.n, fg.n_events, fg.n_competing
        fg_rows.append(s)
    t["fine_gray"] = pd.concat(fg_rows, ignore_index=True)

    progress("likelihood-ratio test for the added term")
    t["lr_test"] = _lr_test(plan, fitted)

    progress("cumulative incidence by sarcopenia (Aalen-Johansen) and Gray's test")
    t["cif_curves"], t["cif_at"], t["gray_test"] = _cif(d, plan)

    progress("predicted cumulative incidence at the horizon")
    risks = {}
    for set_, frame in sets.items():
        for m in plan.models:
            with estimating(f"model {m.name}, {set_} set, predicted cumulative incidence"):
                risks[(set_, m.name)] = _predicted_risk(fitted[m.name], frame, plan)

    progress(
        f"bootstrap optimism correction ({plan.sets.n_bootstrap} resamples of the development "
        "centre, every model refitted)"
    )
    optimism = _optimism(dev, plan)
    t["optimism"] = pd.concat(
        [
            r.to_frame().rename(columns={"model": "procedure"}).assign(model=name)
            for name, r in optimism.items()
        ],
        ignore_index=True,
    )
    t["optimism"] = t["optimism"][["model", *t["optimism"].columns.drop("model")]]

    progress("discrimination, Brier score and calibration at the horizon")
    t["performance"] = _performance(sets, risks, optimism, plan)

    cal_rows, cal_sum = [], []
    groups = int(plan.extra.get("calibration_groups", 5))
    for set_, frame in sets.items():
        for m in plan.models:
            g, s = _calibration(frame, risks[(set_, m.name)], plan, groups)
            g.insert(0, "model", m.name)
            g.insert(0, "set", set_)
            s.update(set=set_, model=m.name)
            cal_rows.append(g)
            cal_sum.append(s)
    t["calibration_groups"] = pd.concat(cal_rows, ignore_index=True)
    t["calibration_summary"] = pd.DataFrame(cal_sum)

    if plan.subgroups:
        progress("performance in the plan's subgroups")
        t["subgroup_performance"] = _subgroups(sets, risks, plan)
    if comp is not None:
        progress("added value of sarcopenia")
        t["added_value"] = _added_value(sets, risks, plan, prim.name, comp.name)
    return ProtocolTables(tables=t)


def _cs_frame(d: pd.DataFrame, cause: int) -> pd.DataFrame:
    """The data cause_specific_cox fitted on (with its event indicator column)."""
    out = d.copy()
    out[f"code == {cause}"] = (out["code"] == cause).astype(np.int64)
    return out


# ----------------------------------------------------------------------------- pieces


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


def flow_stages(flow: pd.DataFrame, plan: PredictionModelPlan) -> pd.DataFrame:
    """Boxes of the TRIPOD+AI flow diagram from the flow counts."""

    def n(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_lines = "\n".join(
        f"{r.group.replace('_', ' ')}: {r.n_patients}" for r in excl.itertuples()
    )
    boxes = [
        {
            "key": "screened",
            "text": f"Patients with cirrhosis screened\nn = {n('screened')}",
            "x": 0.36,
            "row": 0,
            "parent": None,
            "side": False,
        },
        {
            "key": "excluded",
            "text": f"Excluded, n = {n('excluded')}\n{excl_lines}",
            "x": 0.80,
            "row": 0,
            "parent": "screened",
            "side": True,
        },
        {
            "key": "included",
            "text": f"Included\nn = {n('included')}",
            "x": 0.36,
            "row": 1,
            "parent": "screened",
            "side": False,
        },
    ]
    labels = {"internal": "Development centre", "external": "External centre"}
    for x, set_ in ((0.18, "internal"), (0.62, "external")):
        site = flow.loc[(flow["stage"] == "included_set") & (flow["set"] == set_), "site"].iloc[0]
        lines = [
            f"{r.group}: {r.n_patients}"
            for r in flow[(flow["stage"] == "outcome") & (flow["set"] == set_)].itertuples()
        ]
        boxes.append(
            {
                "key": f"set_{set_}",
                "text": f"{labels[set_]} ({site})\nn = {n('included_set', set=set_)}",
                "x": x,
                "row": 2,
                "parent": "included",
                "side": False,
            }
        )
        boxes.append(
            {
                "key": f"out_{set_}",
                "text": "Outcome (whole follow-up)\n" + "\n".join(lines),
                "x": x,
                "row": 3,
                "parent": f"set_{set_}",
                "side": False,
            }
        )
    return pd.DataFrame(boxes)


def _baseline(d: pd.DataFrame) -> pd.DataFrame:
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
    return res


def _prevalence(d: pd.DataFrame, plan: PredictionModelPlan) -> pd.DataFrame:
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
    return pd.DataFrame(rows)


def _sample_size(plan: PredictionModelPlan, d: pd.DataFrame) -> pd.DataFrame:
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
                "adequate": bool(deaths_dev >= sch.required_events),
                "message": f"{sch.required_events} deaths are needed to detect HR {ss.schoenfeld_hr} with "
                f"power {ss.schoenfeld_power}; the development centre has {deaths_dev}.",
            }
        )
    return pd.DataFrame(rows)


def _model_hash(f: _Fitted) -> str:
    payload = {
        str(k): {
            "coef": [round(float(b), 12) for b in fit.coef],
            "cumhaz": [round(float(h), 12) for h in fit.baseline_hazard["cumhaz"]],
        }
        for k, fit in f.fits.items()
    }
    return "sha256:" + hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _models_table(
    plan: PredictionModelPlan, fitted: dict[str, _Fitted], d: pd.DataFrame
) -> pd.DataFrame:
    seg = str(d["segmentation_model_version"].iloc[0])
    return pd.DataFrame(
        [
            {
                "model": m.name,
                "role": m.role,
                "covariates": ", ".join(m.covariates),
                "model_version": _model_hash(fitted[m.name]),
                "segmentation_model_version": seg if "sarcopenia" in m.covariates else "",
                "description": m.description,
            }
            for m in plan.models
        ]
    )


def _lr_test(plan: PredictionModelPlan, fitted: dict[str, _Fitted]) -> pd.DataFrame:
    o = plan.outcome
    prim = next(m for m in plan.models if m.role == "primary")
    rows = []
    for m in plan.models:
        if m.role == "primary" or not set(m.covariates) < set(prim.covariates):
            continue
        for k in [o.cause, *o.competing]:
            full, red = fitted[prim.name].fits[k], fitted[m.name].fits[k]
            chisq = 2.0 * (full.loglik - red.loglik)
            df = len(prim.covariates) - len(m.covariates)
            rows.append(
                {
                    "cause": o.event_codes[k],
                    "full": prim.name,
                    "reduced": m.name,
                    "added": ", ".join(c for c in prim.covariates if c not in m.covariates),
                    "chisq": chisq,
                    "df": df,
                    "p_value": float(stats.chi2.sf(chisq, df)),
                }
            )
    return pd.DataFrame(rows)


def _cif(
    d: pd.DataFrame, plan: PredictionModelPlan
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
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
            c = ci.table()
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
            ).table()
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
    return (
        pd.concat(curves, ignore_index=True),
        pd.concat(at, ignore_index=True),
        pd.DataFrame(tests),
    )


def _optimism(dev: pd.DataFrame, plan: PredictionModelPlan) -> dict[str, OptimismResult]:
    """Harrell's bootstrap optimism of every model at the development centre.

    :func:`bootstrap_optimism` with :func:`_refit_model`: both cause-specific
    Cox models refitted in each resample. Every model is given the same seed,
    hence the same resamples (:func:`~studyval.analysis.internal_validation.resample_indices`);
    each counts its own failed resamples (module docstring).
    """
    cols = sorted({"time", "code", *(c for m in plan.models for c in m.covariates)})
    frame = dev[cols]
    out = {}
    for m in plan.models:
        with estimating(f"model {m.name}, development centre, bootstrap optimism correction"):
            out[m.name] = bootstrap_optimism(
                frame, _refit_model(m, plan), n_resamples=plan.sets.n_bootstrap, seed=plan.seed
            )
    return out


def _performance(
    sets: dict[str, pd.DataFrame],
    risks: dict[tuple[str, str], np.ndarray],
    optimism: dict[str, OptimismResult],
    plan: PredictionModelPlan,
) -> pd.DataFrame:
    """td-AUC, Harrell's C, Brier score and IPA at the horizon, by set and model.

    ``apparent`` and its interval (``apparent_ci_low``, ``apparent_ci_high``)
    are the estimate on the set; at the development centre ``optimism`` and
    ``corrected`` are :func:`bootstrap_optimism`'s (no interval: the bootstrap
    estimates the optimism, not the sampling distribution of the corrected
    value); externally they are NaN (no correction). ``null`` is the Brier
    score of the Aalen-Johansen null model (the IPA's reference).
    """
    o = plan.outcome
    rows = []
    for set_, frame in sets.items():
        t, c = frame["time"].to_numpy(float), frame["code"].to_numpy(int)
        for m in plan.models:
            risk = risks[(set_, m.name)]
            with estimating(f"model {m.name}, {set_} set, performance at the horizon"):
                auc = svv.time_dependent_auc(
                    t, c, risk, horizon=o.horizon, cause=o.cause, alpha=plan.alpha
                )
                hc = sv.harrell_c(t, (c == o.cause).astype(int), risk, alpha=plan.alpha)
                br = _brier(frame, risk, plan, conservative=False)
            opt = optimism[m.name] if set_ == "internal" else None
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
                        "optimism": np.nan if opt is None else opt[measure]["optimism"],
                        "corrected": np.nan if opt is None else opt[measure]["corrected"],
                        "null": br.null_estimate if measure in ("brier", "ipa") else np.nan,
                        "n": len(frame),
                        "n_deaths_by_horizon": auc.n_cases,
                        "n_censored_before_horizon": auc.n_censored_before_horizon,
                    }
                )
    return pd.DataFrame(rows)


def _calibration(
    frame: pd.DataFrame, risk: np.ndarray, plan: PredictionModelPlan, groups: int
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Predicted cumulative incidence vs Aalen-Johansen observed, by quantile group of predicted risk."""
    o = plan.outcome
    causes = [c for c in o.event_codes if c != 0]
    q = np.quantile(risk, np.linspace(0, 1, groups + 1))
    grp = np.clip(np.searchsorted(q[1:-1], risk, side="right"), 0, groups - 1)
    ci = competing_risks.cumulative_incidence(
        frame["time"],
        frame["code"],
        cause=o.cause,
        groups=grp + 1,
        times=[o.horizon],
        alpha=plan.alpha,
        causes=causes,
    ).table()
    rows = []
    for gi in range(groups):
        m = grp == gi
        obs = ci[ci["group"] == gi + 1].iloc[0]
        rows.append(
            {
                "group": gi + 1,
                "n": int(m.sum()),
                "predicted": float(risk[m].mean()),
                "observed": float(obs["estimate"]),
                "ci_low": float(obs["ci_low"]),
                "ci_high": float(obs["ci_high"]),
                "n_deaths": int(
                    (
                        (frame["code"].to_numpy() == o.cause)
                        & (frame["time"].to_numpy() <= o.horizon)
                        & m
                    ).sum()
                ),
            }
        )
    overall = competing_risks.cumulative_incidence(
        frame["time"],
        frame["code"],
        cause=o.cause,
        times=[o.horizon],
        alpha=plan.alpha,
        causes=causes,
    ).table()
    obs = float(overall["estimate"].iloc[0])
    g = pd.DataFrame(rows)
    summary: dict[str, object] = {
        "observed": obs,
        "observed_ci_low": float(overall["ci_low"].iloc[0]),
        "observed_ci_high": float(overall["ci_high"].iloc[0]),
        "mean_predicted": float(risk.mean()),
        "oe_ratio": obs / float(risk.mean()),
        "max_abs_group_difference": float((g["observed"] - g["predicted"]).abs().max()),
        "groups": groups,
    }
    return g, summary


def _subgroups(
    sets: dict[str, pd.DataFrame],
    risks: dict[tuple[str, str], np.ndarray],
    plan: PredictionModelPlan,
) -> pd.DataFrame:
    """td-AUC (cause 1) and Harrell's C of the primary model within each subgroup level (apparent)."""
    o = plan.outcome
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
    return pd.DataFrame(rows)


def _added_value(
    sets: dict[str, pd.DataFrame],
    risks: dict[tuple[str, str], np.ndarray],
    plan: PredictionModelPlan,
    prim: str,
    comp: str,
) -> pd.DataFrame:
    o = plan.outcome
    rows = []
    for j, (set_, frame) in enumerate(sets.items()):
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
                "method": "paired influence-function SE (compare_time_dependent_auc, cause 1)",
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
    out = pd.DataFrame(rows)
    out[["n_resamples", "n_failed"]] = out[["n_resamples", "n_failed"]].astype("Int64")
    return out


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
            f"{o.horizon_label}, calibration by risk group against Aalen-Johansen.",
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
            f"external {pm('external', 'td_auc')}; by sex in the subgroup table.",
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


_SET_WORDS = {"internal": "development centre", "external": "external centre"}


def figure_specs(tables: dict[str, pd.DataFrame], plan: PredictionModelPlan) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables at any width, with its caption.

    Captions state what is shown, the patients and events behind it and the
    interval method, all read from the tables.
    """
    o = plan.outcome
    flow = tables["flow"]
    level = 1 - plan.alpha
    death, transplant = o.event_codes[o.cause], [o.event_codes[c] for c in o.competing]

    def fn(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    def outcomes(set_: str, stage: str = "outcome") -> str:
        parts = [f"{count(fn(stage, set=set_, group=death))} {death}s"]
        parts += [f"{count(fn(stage, set=set_, group=c))} {c}s" for c in transplant]
        return ", ".join(parts)

    sets_text = "; ".join(
        f"{_SET_WORDS.get(s, s)} n = {count(fn('included_set', set=s))} ({outcomes(s)})"
        for s in SETS
    )
    specs = [
        FigureSpec(
            "flow",
            f"Participant flow: {count(fn('screened'))} patients with cirrhosis screened, "
            f"{count(fn('excluded'))} excluded, {count(fn('included'))} included ({sets_text} over "
            "the whole follow-up). Counts are patients.",
            lambda w: figures.flow_figure(flow_stages(tables["flow"], plan), width_mm=w),
            "double",
        )
    ]
    prev = tables["prevalence"]
    prev = prev[prev["sex"] == "all"].set_index("set")
    groups_text = "; ".join(
        f"{_SET_WORDS.get(s, s)}: n = {count(prev.loc[s, 'n'])} patients, "
        f"{count(prev.loc[s, 'n_sarcopenia'])} with sarcopenia, {outcomes(s)}"
        for s in SETS
        if s in prev.index
    )
    specs.append(
        FigureSpec(
            "cumulative_incidence",
            f"Aalen-Johansen cumulative incidence of {death} and of {', '.join(transplant)} "
            f"(competing events) by sarcopenia ({groups_text}), with pointwise "
            f"{ci_text('(cmprsk::cuminc variance, log(-log) scale)', level)} bands and the numbers "
            "at risk; curves stop where fewer than 10 patients remain at risk; dotted line: the "
            f"{o.horizon_label} horizon; Gray's test p values in the panel titles.",
            lambda w: crfig.cumulative_incidence_figure(
                tables["cif_curves"],
                gray=tables["gray_test"],
                horizon=plan.outcome.horizon,
                time_label="Days since index CT",
                width_mm=w,
            ),
            "double",
        )
    )
    cal = tables["calibration_groups"]
    first = cal[cal["model"] == cal["model"].iloc[0]]
    by_set = first.groupby("set", sort=False)[["n", "n_deaths"]].sum()
    cal_text = "; ".join(
        f"{_SET_WORDS.get(s, s)}{' (apparent)' if s == 'internal' else ''}: n = "
        f"{count(r.n)} patients, {count(r.n_deaths)} {death}s by {o.horizon_label}"
        for s, r in by_set.iterrows()
    )
    n_groups = int(first.groupby("set")["group"].nunique().max())
    specs.append(
        FigureSpec(
            "calibration",
            f"Calibration of {', '.join(plan.model_names)} at {o.horizon_label}: mean predicted "
            f"against observed (Aalen-Johansen) cumulative incidence of {death} in {n_groups} "
            f"quantile groups of predicted risk ({cal_text}); bars: "
            f"{ci_text('(cmprsk::cuminc variance, log(-log) scale)', level)} of the observed "
            "incidence; dotted line: ideal calibration.",
            lambda w: crfig.calibration_groups_figure(
                tables["calibration_groups"],
                models=plan.model_names,
                horizon_label=plan.outcome.horizon_label,
                width_mm=w,
            ),
            "double",
        )
    )
    return specs



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
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=False,
    imaging_chain=imaging_chain,
)
