"""Figures of refracture-pvp: each drawn from the bundle's tables at any width, with its caption.

The flow diagram's boxes (:func:`flow_stages`) and the captions are the
study's; the drawing functions are the shared ones of
:mod:`studyval.figures`.
"""

from __future__ import annotations

import pandas as pd

from studyval import figures
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.figures.style import legend_below
from studyval.figures.survival import calibration_horizon_figure, km_figure, zph_figure
from studyval.plan import PredictionModelPlan
from studyval.protocol import flow_count

__all__ = ["TERM_LABELS", "figure_specs", "flow_stages"]

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
            f"patients, {count(prim['n_events'])} events), with the natural cubic spline smooth of "
            "survival's plot.cox.zph (4 df, fitted on the "
            f"{_TIME_SCALE.get(scale, scale)} time scale of the test) and its pointwise "
            f"{ci_text('(normal approximation, cox.zph variance of the scaled residuals)', level)}; "
            "dashed line: the "
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
