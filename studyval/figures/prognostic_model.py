"""Figures of a prognostic-model study (:mod:`studyval.study_types.prognostic_model`), from its tables.

Generalised from :mod:`studyval.figures.refracture_pvp`: every label comes
from the plan (outcome, horizon, models; ``extra.term_labels``,
``extra.time_label``, ``extra.risk_group_title``), and a figure is drawn only
where the plan ran the step whose tables it reads:

=======================  =======================================  =========================
figure                   tables                                    step
=======================  =======================================  =========================
``flow``                 ``flow``                                  always
``discrimination``       ``performance``, ``cox_fit``              ``performance``
``zph``                  ``zph``, ``zph_residuals``, ``zph_smooth``  ``ph_check``
``calibration_horizon``  ``calibration_*``                         ``calibration``
``km_risk_groups``       ``km_risk_groups``, ``km_at_risk``,       ``risk_groups``
                         ``risk_groups``
``decision_curve``       ``decision_curve``                        ``decision_curve``
=======================  =======================================  =========================

A registered protocol of the type (refracture-pvp) calls :func:`figure_specs`
with its own :class:`Wording` (its population, term labels, time axis, the
figures it leaves out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from studyval import figures
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.figures.style import legend_below
from studyval.figures.survival import calibration_horizon_figure, km_figure, zph_figure
from studyval.plan import PredictionModelPlan
from studyval.protocol import flow_count

__all__ = [
    "Wording",
    "discrimination_table",
    "figure_specs",
    "flow_stages",
    "term_labels",
    "time_label",
]

_TIME_SCALE = {"km": "Kaplan-Meier", "rank": "rank", "identity": "untransformed", "log": "log"}
#: Measures of the discrimination figure, in order.
_DISCRIMINATION = ("harrell_c", "uno_c", "auc_horizon")


@dataclass(frozen=True)
class Wording:
    """A study's words for the captions and flow boxes; the defaults are the generic type's.

    Attributes
    ----------
    unit : str
        Noun after a count of participants (``"patients"``: "n = 560 patients"); empty: none.
    population : str
        Who was screened ("patients treated with PVP/PKP"), in the flow caption and box.
    term_labels : mapping of str to str or None
        Model term -> label; ``None``: :func:`term_labels` (the plan's).
    time_label : str or None
        The time axis; ``None``: :func:`time_label` (the plan's).
    competing_censored : str or None
        The competing events in "... censored" ("deaths"); ``None``: their names.
    risk_group_title : str or None
        Legend title of the risk-group curves; ``None``: the plan's
        ``extra.risk_group_title``, else "Predicted <horizon> risk".
    omit : tuple of str
        Names of figures the study does not show.
    """

    unit: str = ""
    population: str = ""
    term_labels: Mapping[str, str] | None = None
    time_label: str | None = None
    competing_censored: str | None = None
    risk_group_title: str | None = None
    omit: tuple[str, ...] = ()


def term_labels(plan: PredictionModelPlan) -> dict[str, str]:
    """Model term -> label (the plan's ``extra.term_labels``; unnamed terms keep their name)."""
    return {str(k): str(v) for k, v in (plan.extra.get("term_labels") or {}).items()}


def time_label(plan: PredictionModelPlan) -> str:
    """The time axis: the plan's ``extra.time_label``, else the time unit (``Days``)."""
    return str(plan.extra.get("time_label") or plan.outcome.time_unit.capitalize())


def flow_stages(
    flow: pd.DataFrame, plan: PredictionModelPlan, *, words: Wording | None = None
) -> pd.DataFrame:
    """Boxes of the participant flow diagram (no exclusion box when nobody was excluded)."""
    words = words or Wording()
    o = plan.outcome
    who = words.population[:1].upper() + words.population[1:] + " screened" if words.population else "Screened"

    def n(stage: str, group: str | None = None) -> int:
        return flow_count(flow, stage, column="n", group=group)

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n"] > 0)]
    excl_lines = "".join(f"\n{r.detail}: {r.n}" for r in excl.itertuples())
    comp = "".join(
        f"\n{o.event_codes[c]}: {n('by_horizon', o.event_codes[c])}" for c in o.competing
    )
    main, side = 0.3, 0.75
    boxes = [
        {"key": "screened", "text": f"{who}\nn = {n('screened')}", "x": main, "row": 0,
         "parent": None, "side": False},
    ]  # fmt: skip
    if n("excluded"):
        boxes.append(
            {"key": "excluded", "text": f"Excluded, n = {n('excluded')}{excl_lines}",
             "x": side, "row": 0, "parent": "screened", "side": True}
        )  # fmt: skip
    boxes += [
        {"key": "included", "text": f"Included (model development)\nn = {n('included')}",
         "x": main, "row": 1, "parent": "screened", "side": False},
        {"key": "outcome",
         "text": f"By {o.horizon_label}:\n{o.event_codes[o.cause]}: "
         f"{n('by_horizon', o.event_codes[o.cause])}{comp}\ncensored before {o.horizon_label}: "
         f"{n('by_horizon', 'censored before the horizon')}\nevent-free beyond {o.horizon_label}: "
         f"{n('by_horizon', 'followed beyond the horizon event-free')}",
         "x": main, "row": 2, "parent": "included", "side": False},
    ]  # fmt: skip
    return pd.DataFrame(boxes)


def discrimination_table(
    performance: pd.DataFrame, cox_fit: pd.DataFrame, plan: PredictionModelPlan
) -> pd.DataFrame:
    """The apparent C and AUC of every model laid out for :func:`figures.forest_figure`.

    One block per measure (Harrell's C, Uno's C, time-dependent AUC at the
    horizon), one row per model in plan order; nothing is computed.
    """
    n = cox_fit.set_index("model")["n"]
    rows = []
    for measure in _DISCRIMINATION:
        sub = performance[performance["measure"] == measure].set_index("model")
        for model in plan.model_names:
            if model not in sub.index:
                continue
            r = sub.loc[model]
            rows.append(
                {
                    "grouping": str(r["label"]).replace("the horizon", plan.outcome.horizon_label),
                    "level": model,
                    "row_type": "subgroup",
                    "status": "pre-specified",
                    "n": int(n.get(model, 0)),
                    "estimate": float(r["estimate"]),
                    "ci_low": float(r["ci_low"]),
                    "ci_high": float(r["ci_high"]),
                    "estimable": True,
                    "reason": "",
                    "ci_level": float(r["ci_level"]),
                }
            )
    return pd.DataFrame(rows)


def figure_specs(
    tables: dict[str, pd.DataFrame], plan: PredictionModelPlan, *, words: Wording | None = None
) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables at any width, with its caption.

    Captions state what is shown, the patients and events behind it and the
    interval method, all read from the tables; ``words`` are the study's words
    (:class:`Wording`; default the generic type's).
    """
    words = words or Wording()
    unit = f" {words.unit}" if words.unit else ""
    who = f" {words.population}" if words.population else ""
    o = plan.outcome
    flow = tables["flow"]
    event = o.event_codes[o.cause]
    hz = o.horizon_label
    level = 1 - plan.alpha
    tl = words.time_label or time_label(plan)
    labels = dict(words.term_labels) if words.term_labels is not None else term_labels(plan)
    competing = words.competing_censored or "; ".join(o.event_codes[c] for c in o.competing)
    censored_too = f"; {competing} censored" if competing else ""

    def fn(stage: str, group: str | None = None) -> int:
        return flow_count(flow, stage, column="n", group=group)

    ev_h = fn("by_horizon", event)
    comp_h = "".join(
        f"; {o.event_codes[c]}, n = {count(fn('by_horizon', o.event_codes[c]))} (competing event)"
        for c in o.competing
    )
    specs = [
        FigureSpec(
            "flow",
            f"Participant flow: {count(fn('screened'))}{who} screened, {count(fn('excluded'))} "
            f"excluded, {count(fn('included'))} included in model development; by {hz}: "
            f"{event}, n = {count(ev_h)}{comp_h}; censored, n = "
            f"{count(fn('by_horizon', 'censored before the horizon'))}."
            + (f" Counts are {words.unit}." if words.unit else ""),
            lambda w: figures.flow_figure(
                flow_stages(tables["flow"], plan, words=words), width_mm=w
            ),
            "double",
        )
    ]
    if "performance" in tables and "cox_fit" in tables and "discrimination" not in words.omit:
        disc = discrimination_table(tables["performance"], tables["cox_fit"], plan)
        fit = tables["cox_fit"].set_index("model")
        ns = "; ".join(
            f"{m}: n = {count(fit.loc[m, 'n'])}, {count(fit.loc[m, 'n_events'])} events"
            for m in plan.model_names
            if m in fit.index
        )
        specs.append(
            FigureSpec(
                "discrimination",
                f"Apparent discrimination of each model ({ns}): Harrell's C (infinitesimal "
                f"jackknife SE), Uno's C (to {hz}) and the time-dependent AUC at {hz} (IPCW, "
                "influence-function SE; competing events as controls), each with "
                f"{ci_text('(normal approximation)', level)}. Not corrected for optimism.",
                lambda w: figures.forest_figure(
                    disc, estimate_label="C / AUC", null_value=0.5, width_mm=w, level_header="Model"
                ),
                "double",
            )
        )
    if {"zph", "zph_residuals", "zph_smooth", "models"} <= set(tables):
        zph = tables["zph"]
        terms = zph[zph["term"] != "GLOBAL"]
        scale = str(terms["transform"].iloc[0])
        models = tables["models"]
        prim = models[models["model"] == plan.primary_model].iloc[0]
        specs.append(
            FigureSpec(
                "zph",
                f"Scaled Schoenfeld residuals of the {len(terms)} terms of the "
                f"{plan.primary_model} model against {tl.lower()} (one point per event; n = "
                f"{count(prim['n'])}{unit}, {count(prim['n_events'])} events), with the natural cubic "
                "spline smooth of survival's plot.cox.zph (4 df, fitted on the "
                f"{_TIME_SCALE.get(scale, scale)} time scale of the test) and its pointwise "
                f"{ci_text('(normal approximation, cox.zph variance of the scaled residuals)', level)}; "
                "dashed line: the fitted coefficient; p values of the cox.zph test in the panel "
                "titles. A flat smooth means a constant log hazard ratio.",
                lambda w: zph_figure(
                    tables["zph_residuals"],
                    tables["zph_smooth"],
                    tests=tables["zph"][tables["zph"]["term"] != "GLOBAL"],
                    labels=labels,
                    time_label=tl,
                    width_mm=w,
                ),
                "double",
            )
        )
    if {"calibration_summary", "calibration_curve", "calibration_groups"} <= set(tables):
        cs = tables["calibration_summary"].iloc[0]
        specs.append(
            FigureSpec(
                "calibration_horizon",
                f"Calibration of the {plan.primary_model} model at {hz} (n = {count(cs['n'])}{unit}, "
                f"{count(cs['n_events'])} events by {hz}): smooth calibration curve (Cox model "
                "on restricted cubic splines of the complementary log-log predicted risk, Austin "
                "et al. 2020; no band) and the Kaplan-Meier observed risk in "
                f"{count(cs['n_groups'])} quantile groups of predicted risk with "
                f"{ci_text('(Greenwood variance, log(-log) scale)', level)}{censored_too}. "
                "Apparent (development data).",
                lambda w: calibration_horizon_figure(
                    tables["calibration_curve"],
                    tables["calibration_groups"].rename(columns={"mean_predicted": "predicted"}),
                    horizon_label=hz,
                    width_mm=w,
                ),
                "single",
            )
        )
    if {"risk_groups", "km_risk_groups", "km_at_risk"} <= set(tables):
        rg = tables["risk_groups"].sort_values("order")
        km = tables["km_risk_groups"]
        by_h = km[km["time"] <= float(o.horizon)].groupby("group", observed=True)["n_event"].sum()
        groups_text = "; ".join(
            f"{r.group}: n = {count(r.n)}{unit}, {count(by_h.get(r.group, 0))} events"
            for r in rg.itertuples()
        )
        specs.append(
            FigureSpec(
                "km_risk_groups",
                f"Cumulative incidence of {event} (1 - Kaplan-Meier) by group of predicted risk "
                f"at {hz} of the {plan.primary_model} model ({groups_text} by {hz}), with "
                f"pointwise {ci_text('(Greenwood variance, log scale)', level)} bands, censoring "
                f"ticks and the numbers at risk under the axis{censored_too}.",
                lambda w: km_figure(
                    tables["km_risk_groups"],
                    tables["km_at_risk"],
                    groups=list(rg["group"]),
                    cumulative=True,
                    time_label=tl,
                    y_label="Cumulative incidence (1 - KM)",
                    legend_title=words.risk_group_title
                    or str(plan.extra.get("risk_group_title") or f"Predicted {hz} risk"),
                    xmax=float(o.horizon),
                    width_mm=w,
                ),
                "single",
            )
        )
    if "decision_curve" in tables:
        dc = tables["decision_curve"].rename(columns={"strategy": "model"}).copy()
        n_dc = int(dc.loc[dc["model"] == "treat all", "n_treated"].iloc[0])
        dc["tp"] = (dc["km_risk_treated"].fillna(0.0) * dc["n_treated"]).astype(float)
        dc["n"] = n_dc
        specs.append(
            FigureSpec(
                "decision_curve",
                f"Decision curves at {hz} of {', '.join(plan.model_names)} (n = {count(n_dc)}{unit}, "
                f"{count(ev_h)} events by {hz}): net benefit (Kaplan-Meier risk among those above "
                f"the threshold{censored_too}) against the threshold risk, with treat all and "
                "treat none for reference. Apparent (development data). No intervals are drawn.",
                # legend under the panel: at 85 mm the curves fill it and a legend inside hides them
                lambda w: legend_below(
                    figures.decision_curve_figure(dc, models=plan.model_names, width_mm=w)
                ),
                "single",
            )
        )
    return specs
