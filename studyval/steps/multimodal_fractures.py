"""Fracture steps of the multimodal-staging study type: new fragility fractures by predicted stage.

Kaplan-Meier curves and Cox models with deaths censored, and, with death as a
competing event, Aalen-Johansen cumulative incidence, Gray's test and
cause-specific and Fine-Gray models adjusted for the plan's covariates (see
:mod:`studyval.steps.multimodal_staging`, whose :data:`REGISTRY` includes them).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from studyval.analysis import competing_risks as cr
from studyval.analysis import survival as sv
from studyval.cohort import Cohort, estimating
from studyval.errors import EstimationError
from studyval.plan_msk_aging import MskAgingPlan
from studyval.steps.multimodal_models import (
    SETS,
    Tables,
    _columns,
    _frames,
    _keyed,
    _predicted,
)
from studyval.steps.registry import StepContext, StepRegistry, TableSpec

#: The fracture steps.
REGISTRY = StepRegistry("multimodal_staging_fractures")


def _fracture_groups(
    cohort: Cohort, plan: MskAgingPlan
) -> Iterator[tuple[dict[str, str], np.ndarray, np.ndarray, np.ndarray, str]]:
    """Patients, follow-up, event, and each grouping (predicted, DXA) and set analysed."""
    _, patients = _frames(cohort, plan)
    fr = plan.fracture
    classes = np.array(plan.osteoporosis.classes, dtype=object)
    time = patients[fr.time].astype(float).to_numpy()
    event = patients[fr.event].astype(bool).to_numpy().astype(int)
    groupings = {
        "predicted": classes[_predicted(cohort, plan, "op")],
        "dxa": classes[patients["op_code"].to_numpy()],
    }
    for name, grp in groupings.items():
        for set_ in ("all", *SETS):
            sel = (
                np.ones(len(time), bool) if set_ == "all" else (patients["set"] == set_).to_numpy()
            )
            where = "all patients" if set_ == "all" else f"{set_} set"
            what = (
                f"model {plan.primary_model}, {where}, new fragility fractures by predicted stage"
                if name == "predicted"
                else f"{where}, new fragility fractures by DXA stage"
            )
            yield {"grouping": name, "set": set_}, time[sel], event[sel], grp[sel], what


FRACTURE_KM = TableSpec(
    "fracture_km",
    "Kaplan-Meier curve of fracture-free survival by stage (predicted, DXA), all patients",
    _columns("group time n_risk n_event n_censor survival se ci_low ci_high grouping set"),
)
FRACTURE_AT = TableSpec(
    "fracture_at",
    "Patients at risk of a new fragility fracture at the plan's times, by stage, all patients",
    _columns("group time n_risk grouping set"),
)
FRACTURE_LOGRANK = TableSpec(
    "fracture_logrank",
    "Log-rank test of new fragility fractures across stages, per grouping and set",
    _columns("grouping set chisq df p_value n n_events"),
)
FRACTURE_RISK = TableSpec(
    "fracture_risk",
    "1 - Kaplan-Meier of a new fragility fracture at the plan's times, by stage, grouping and "
    "set: deaths censored, so not a cumulative incidence when deaths compete (see fracture_cif)",
    _columns("group time n_risk risk risk_ci_low risk_ci_high grouping set"),
)


@REGISTRY.step(
    "kaplan_meier",
    produces=[FRACTURE_KM, FRACTURE_AT, FRACTURE_LOGRANK, FRACTURE_RISK],
    needs=("models",),
)
def kaplan_meier_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """New fragility fractures by predicted and DXA stage: Kaplan-Meier, log-rank, incidence."""
    ctx.progress("new fragility fractures by predicted stage: Kaplan-Meier")
    fr = plan.fracture
    ticks = [0.0, *[float(x) for x in fr.times]]
    km_rows, at_rows, lr_rows, risk_rows = [], [], [], []
    for keys, time, event, g, what in _fracture_groups(cohort, plan):
        km = sv.kaplan_meier(time, event, groups=g, alpha=plan.alpha, conf_type="log-log")
        if keys["set"] == "all":
            km_rows.append(km.to_frame().assign(**keys))
            at_rows.append(km.at_risk(ticks).assign(**keys))
        lr = km.logrank
        if lr is None:
            present = sorted(set(g.tolist()))
            raise EstimationError(
                f"{what}: the log-rank test cannot be estimated (stages present: "
                f"{', '.join(map(str, present))}; {int(event.sum())} fractures); it needs "
                "at least two stages and one fracture"
            )
        lr_rows.append(
            {
                **keys,
                "chisq": lr.chisq,
                "df": lr.df,
                "p_value": lr.p_value,
                "n": lr.n,
                "n_events": lr.n_events,
            }
        )
        kt = sv.kaplan_meier(
            time,
            event,
            groups=g,
            alpha=plan.alpha,
            conf_type="log-log",
            times=[x for x in fr.times if x < time.max()],
        ).risk_frame()
        risk_rows.append(kt[list(FRACTURE_RISK.columns[:6])].assign(**keys))
    return {
        "fracture_km": pd.concat(km_rows, ignore_index=True),
        "fracture_at": pd.concat(at_rows, ignore_index=True),
        "fracture_logrank": pd.DataFrame(lr_rows),
        "fracture_risk": pd.concat(risk_rows, ignore_index=True),
    }


FRACTURE_COX = TableSpec(
    "fracture_cox",
    "Cox model (Efron ties) of a new fragility fracture by stage against the mildest, per "
    "grouping and set, with events and patients per stage",
    _columns("term coef se hr ci_low ci_high z p_value n n_events grouping set"),
)


@REGISTRY.step("cox", produces=[FRACTURE_COX], needs=("models",))
def cox_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Cox models of new fragility fractures by predicted and DXA stage."""
    ctx.progress("new fragility fractures by predicted stage: Cox models")
    classes = plan.osteoporosis.classes
    rows = []
    for keys, time, event, g, what in _fracture_groups(cohort, plan):
        df = pd.DataFrame({"time": time, "event": event})
        for c in classes[1:]:
            df[c] = (g == c).astype(float)
        with estimating(f"{what}, Cox model"):
            fit = sv.cox(
                df, duration="time", event="event", covariates=classes[1:], alpha=plan.alpha
            )
        s = fit.summary.copy()
        s["term"] = s["term"].map(lambda v: f"{v} vs {classes[0]}")
        s["n"], s["n_events"] = fit.n, fit.n_events
        for c in classes:
            s[f"events_{c}"] = int(event[g == c].sum())
            s[f"n_{c}"] = int((g == c).sum())
        rows.append(s.assign(**keys))
    return {"fracture_cox": pd.concat(rows, ignore_index=True)}


#: Event codes of the competing-risk analysis: 0 censored, 1 fracture, 2 death without fracture.
_CAUSES = {1: "fracture", 2: "death"}


def _competing_groups(
    cohort: Cohort, plan: MskAgingPlan
) -> Iterator[tuple[dict[str, str], pd.DataFrame, str]]:
    """Each grouping and set of :func:`_fracture_groups` as a frame with the competing-event code.

    Columns: ``time``, ``code`` (0 censored, 1 new fragility fracture, 2 death
    without one), ``stage`` and the plan's adjustment covariates (booleans as
    0/1, ``sex`` as ``female``).
    """
    _, patients = _frames(cohort, plan)
    fr = plan.fracture
    if fr.competing_event is None:
        raise EstimationError(
            "fracture.competing_event is not set: deaths cannot be a competing event"
        )
    death = patients[fr.competing_event].astype(bool).to_numpy()
    fracture = patients[fr.event].astype(bool).to_numpy()
    code = np.where(fracture, 1, np.where(death, 2, 0))
    adjust = pd.DataFrame(index=patients.index)
    for col in fr.adjust_for:
        name = "female" if col == "sex" else col
        src = patients[name]
        binary = pd.api.types.is_bool_dtype(src.dtype)
        adjust[name] = (src.astype(bool) if binary else src).astype(float)
    sets = {"all": np.ones(len(patients), bool)}
    sets.update({set_: (patients["set"] == set_).to_numpy() for set_ in SETS})
    for keys, _, _, g, what in _fracture_groups(cohort, plan):
        sel = sets[keys["set"]]
        frame = adjust[sel].assign(
            time=patients.loc[sel, fr.time].astype(float).to_numpy(), code=code[sel], stage=g
        )
        yield keys, frame.reset_index(drop=True), what


def _plan_times(plan: MskAgingPlan, time: np.ndarray) -> list[float]:
    """The plan's reporting times before the last follow-up (as the Kaplan-Meier tables)."""
    return [float(x) for x in plan.fracture.times if x < time.max()]


FRACTURE_CIF = TableSpec(
    "fracture_cif",
    "Aalen-Johansen cumulative incidence of a new fragility fracture and of death without one "
    "(each the other's competing event) at the plan's times, by stage, grouping and set",
    _columns(
        "grouping set cause group time n_risk n_event n_competing n_censor estimate se ci_low "
        "ci_high"
    ),
)
FRACTURE_CIF_CURVE = TableSpec(
    "fracture_cif_curve",
    "Aalen-Johansen cumulative incidence curve of a new fragility fracture (death competing) by "
    "stage, all patients, per grouping",
    _columns("grouping set group time n_risk estimate ci_low ci_high"),
)
FRACTURE_GRAY = TableSpec(
    "fracture_gray",
    "Gray's test of equal cumulative incidence across stages, per cause, grouping and set",
    _columns("grouping set cause statistic df p_value n n_events n_competing n_censored"),
)


@REGISTRY.step(
    "cumulative_incidence",
    produces=[FRACTURE_CIF, FRACTURE_CIF_CURVE, FRACTURE_GRAY],
    needs=("models",),
)
def cumulative_incidence_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Aalen-Johansen cumulative incidence of fractures and deaths by stage, Gray's test."""
    ctx.progress("new fragility fractures by stage: cumulative incidence, death competing")
    cif_rows, curve_rows, gray_rows = [], [], []
    for keys, f, what in _competing_groups(cohort, plan):
        t, code, g = f["time"].to_numpy(), f["code"].to_numpy(), f["stage"].to_numpy()
        times = _plan_times(plan, t)
        for cause, label in _CAUSES.items():
            common = dict(cause=cause, groups=g, alpha=plan.alpha, causes=tuple(_CAUSES))
            with estimating(f"{what}, cumulative incidence of {label}"):
                at = cr.cumulative_incidence(t, code, times=times, **common)
            tab = at.to_frame()[list(FRACTURE_CIF.columns[3:])]
            cif_rows.append(_keyed(tab, {**keys, "cause": label}))
            gt = at.test
            gray_rows.append(
                {
                    **keys,
                    "cause": label,
                    "statistic": gt.statistic,
                    "df": gt.df,
                    "p_value": gt.p_value,
                    "n": at.n,
                    "n_events": at.n_events,
                    "n_competing": at.n_competing,
                    "n_censored": at.n_censored,
                }
            )
            if cause == 1 and keys["set"] == "all":
                curve = cr.cumulative_incidence(t, code, **common).to_frame()
                cols = list(FRACTURE_CIF_CURVE.columns[2:])
                curve_rows.append(_keyed(curve[cols], keys))
    return {
        "fracture_cif": pd.concat(cif_rows, ignore_index=True),
        "fracture_cif_curve": pd.concat(curve_rows, ignore_index=True),
        "fracture_gray": pd.DataFrame(gray_rows),
    }


FRACTURE_COMPETING = TableSpec(
    "fracture_competing",
    "Cause-specific Cox models (Efron ties) of a new fragility fracture and of death, and the "
    "Fine-Gray model of a new fragility fracture, by stage against the mildest, unadjusted and "
    "adjusted for the plan's covariates, per grouping and set",
    _columns(
        "grouping set model cause adjustment term coef se ratio ci_low ci_high z p_value n "
        "n_events n_competing"
    ),
)
_COMPETING_MODELS = (
    ("cause-specific Cox", 1),
    ("cause-specific Cox", 2),
    ("Fine-Gray", 1),
)


@REGISTRY.step("competing_regression", produces=[FRACTURE_COMPETING], needs=("models",))
def competing_regression_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Cause-specific Cox and Fine-Gray models of fractures by stage, unadjusted and adjusted."""
    ctx.progress("new fragility fractures by stage: cause-specific Cox and Fine-Gray models")
    classes = plan.osteoporosis.classes
    adjust = ["female" if c == "sex" else c for c in plan.fracture.adjust_for]
    rows = []
    for keys, f, what in _competing_groups(cohort, plan):
        for c in classes[1:]:
            f[c] = (f["stage"] == c).astype(float)
        code = f["code"].to_numpy()
        for adjustment, covs in (
            ("unadjusted", classes[1:]),
            ("adjusted", [*classes[1:], *adjust]),
        ):
            for model, cause in _COMPETING_MODELS:
                common = dict(
                    duration="time",
                    event="code",
                    cause=cause,
                    covariates=list(covs),
                    alpha=plan.alpha,
                    causes=tuple(_CAUSES),
                )
                label = f"{what}, {model} of {_CAUSES[cause]}, {adjustment}"
                with estimating(label):
                    if model == "Fine-Gray":
                        fit = cr.fine_gray(f, **common)
                        tab = fit.to_frame().rename(columns={"shr": "ratio"})
                    else:
                        fit = cr.cause_specific_cox(f, **common)
                        tab = fit.summary.rename(columns={"hr": "ratio"})
                tab = tab[["term", "coef", "se", "ratio", "ci_low", "ci_high", "z", "p_value"]]
                tab = tab.assign(
                    term=tab["term"].map(
                        lambda v: f"{v} vs {classes[0]}" if v in classes[1:] else v
                    ),
                    n=len(f),
                    n_events=int((code == cause).sum()),
                    n_competing=int(((code != cause) & (code > 0)).sum()),
                )
                keyed = {
                    **keys,
                    "model": model,
                    "cause": _CAUSES[cause],
                    "adjustment": adjustment,
                }
                rows.append(_keyed(tab, keyed))
    return {"fracture_competing": pd.concat(rows, ignore_index=True)}
