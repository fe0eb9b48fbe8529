"""Figures of msk-aging (PKUPH IRB 2026PHB097-001), each drawn from the bundle's tables.

:func:`figure_specs` is the protocol's ``figure_specs``: the participant
flow, the external-cohort confusion matrices of both conditions, the share of
each modality in the Shapley contributions, the Aalen-Johansen cumulative
incidence of new fragility fractures (death competing) and, for reference,
1 - Kaplan-Meier (deaths censored) by predicted and by DXA stage, the decision
curve of osteoporosis, the flexible multinomial calibration curves of each
class, and the functional scores with their mixed-model fit. Nothing here computes a statistic: every number
is read from a table of the bundle (``flow``, ``confusion``,
``shap_summary``, ``fracture_km``, ``fracture_at``, ``fracture_logrank``,
``fracture_cif_curve``, ``fracture_gray``, ``decision_curve``,
``multinomial_calibration_curve``, ``lmm_means``,
``lmm_followed``) or from the plan. A figure whose tables the
plan's analyses did not write is left out.
"""

from __future__ import annotations

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from studyval.figures.spec import FigureSpec
from studyval.figures.style import LINESTYLES, PALETTE, RC, new_figure
from studyval.plan_msk_aging import MskAgingPlan
from studyval.protocol import flow_count

__all__ = ["figure_specs", "flow_stages", "multinomial_calibration_figure"]

#: Conditions staged by the fusion models, in report order.
CONDITIONS = ("op", "kl")
CONDITION_LABEL = {"op": "Osteoporosis stage", "kl": "KL grade"}


def flow_stages(flow: pd.DataFrame, plan: MskAgingPlan) -> pd.DataFrame:
    """Boxes of the flow diagram from the flow counts."""

    def n(stage: str, col: str = "n_patients", **where: str) -> int:
        return flow_count(flow, stage, column=col, **where)

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_lines = "\n".join(
        f"{r.group.replace('_', ' ')}: {r.n_patients}" for r in excl.itertuples()
    )
    boxes = [
        {
            "key": "screened",
            "text": f"Patients screened\nn = {n('screened')} ({n('screened', 'n_knees')} knees)",
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
            "text": f"Included\nn = {n('included')} patients, {n('included', 'n_knees')} knees",
            "x": 0.36,
            "row": 1,
            "parent": "screened",
            "side": False,
        },
    ]
    for set_, x, label in (
        ("internal", 0.2, "Retrospective (development,\nnested grouped CV)"),
        ("external", 0.62, "Prospective (external\nvalidation)"),
    ):
        sites = flow[
            (flow["stage"] == "included_set") & (flow["set"] == set_) & (flow["site"] != "all")
        ]
        site_lines = "\n".join(
            f"{r.site}: {r.n_patients} patients, {r.n_knees} knees" for r in sites.itertuples()
        )
        frac = n("fracture", set=set_, group="new fragility fracture")
        boxes.append(
            {
                "key": set_,
                "text": f"{label}\nn = {n('included_set', set=set_, site='all')} patients\n{site_lines}\n"
                f"new fragility fractures: {frac}",
                "x": x,
                "row": 2,
                "parent": "included",
                "side": False,
            }
        )
    return pd.DataFrame(boxes)


def figure_specs(tables: dict[str, pd.DataFrame], plan: MskAgingPlan) -> list[FigureSpec]:
    """Figures of the report, drawn from the result tables (those the run wrote)."""
    specs = [_flow_spec(tables["flow"], plan)]
    if "confusion" in tables:
        specs += [_confusion_spec(tables["confusion"], plan, cond) for cond in CONDITIONS]
    if "shap_summary" in tables:
        specs.append(_shap_spec(tables["shap_summary"], plan))
    if {"fracture_km", "fracture_at", "fracture_logrank"} <= set(tables):
        specs += [_fracture_spec(tables, plan, grouping) for grouping in ("predicted", "dxa")]
    if {"fracture_cif_curve", "fracture_gray"} <= set(tables):
        specs.append(_cif_spec(tables["fracture_cif_curve"], tables["fracture_gray"], plan))
    if "decision_curve" in tables:
        specs.append(_decision_spec(tables["decision_curve"], plan))
    if "multinomial_calibration_curve" in tables:
        specs.append(_multinomial_calibration_spec(tables["multinomial_calibration_curve"], plan))
    if {"lmm_means", "lmm_followed"} <= set(tables):
        specs.append(_functional_spec(tables["lmm_means"], tables["lmm_followed"], plan))
    return specs


def _flow_spec(flow: pd.DataFrame, plan: MskAgingPlan) -> FigureSpec:
    from studyval.figures.flow import flow_figure

    n_inc = int(flow.loc[flow["stage"] == "included", "n_patients"].iloc[0])
    return FigureSpec(
        name="flow",
        caption=f"Participant flow: screened, excluded by reason, included ({n_inc} patients) "
        "by cohort and hospital.",
        draw=lambda w: flow_figure(flow_stages(flow, plan), width_mm=w),
        column="double",
    )


def _confusion_spec(conf: pd.DataFrame, plan: MskAgingPlan, cond: str) -> FigureSpec:
    from studyval.figures.subgroups import multiclass_confusion_figure

    classes = plan.osteoporosis.classes if cond == "op" else [str(c) for c in plan.kl.classes]
    sub = conf[
        (conf["condition"] == cond)
        & (conf["model"] == plan.primary_model)
        & (conf["set"] == "external")
        & (conf["site"] == "all")
    ]
    mat = sub.pivot(index="reference", columns="predicted", values="n").loc[classes, classes]
    mat.index.name, mat.columns.name = "reference standard", "predicted"
    unit = "patients" if cond == "op" else "knees"
    return FigureSpec(
        name=f"confusion_{cond}_external",
        caption=f"{CONDITION_LABEL[cond]}: confusion matrix of the {plan.primary_model} model in the "
        f"prospective (external) cohort, n = {int(mat.to_numpy().sum())} {unit}; cells show counts and "
        "the share of the reference class (diagonal = sensitivity).",
        draw=lambda w: multiclass_confusion_figure(mat, width_mm=w),
    )


def _shap_spec(shap_t: pd.DataFrame, plan: MskAgingPlan) -> FigureSpec:
    from studyval.figures.shapley import modality_share_figure

    return FigureSpec(
        name="shap_modalities",
        caption="Share of the mean absolute Shapley contribution by modality (image, clinical, laboratory), per "
        f"class, condition and model, prospective cohort (n = {_n_range(shap_t['n'])} "
        "cases per panel). XGBoost: exact TreeSHAP summed within modality (log-odds scale); SVM: exact "
        "interventional group Shapley over the 3 modalities (decision-value scale): different "
        "questions on different scales, so compare shares within a model, not between models.",
        draw=lambda w: modality_share_figure(shap_t, models=plan.model_names, width_mm=w),
        column="double",
    )


def _fracture_spec(
    tables: dict[str, pd.DataFrame], plan: MskAgingPlan, grouping: str
) -> FigureSpec:
    from studyval.figures.survival import km_figure

    km, at, lr = tables["fracture_km"], tables["fracture_at"], tables["fracture_logrank"]
    sub_km = km[km["grouping"] == grouping]
    sub_at = at[at["grouping"] == grouping]
    r = lr[(lr["grouping"] == grouping) & (lr["set"] == "all")].iloc[0]
    what = (
        f"stage predicted by {plan.primary_model}"
        if grouping == "predicted"
        else "DXA stage (reference)"
    )
    return FigureSpec(
        name=f"fracture_km_{grouping}",
        caption=f"1 - Kaplan-Meier of a new fragility fracture by {what}, both cohorts, deaths censored "
        "(overstates the cumulative incidence when deaths compete: see the Aalen-Johansen figure), "
        f"n = {int(r['n'])} patients, {int(r['n_events'])} fractures; 95% log(-log) pointwise bands; "
        f"log-rank p = {r['p_value']:.2g}.",
        draw=lambda w: km_figure(
            sub_km,
            sub_at,
            groups=plan.osteoporosis.classes,
            cumulative=True,
            time_label="Months since index imaging",
            y_label="New fragility fracture",
            legend_title="Stage",
            width_mm=w,
        ),
    )


_GROUPING = {"predicted": "Predicted stage", "dxa": "DXA stage (reference)"}
_MODEL_LABEL = {"xgboost": "XGBoost", "svm": "SVM"}


def _cif_spec(curves: pd.DataFrame, gray: pd.DataFrame, plan: MskAgingPlan) -> FigureSpec:
    from studyval.figures.competing_risks import cumulative_incidence_figure

    sub = curves[curves["set"] == "all"]
    panels = sub.assign(set=sub["grouping"].map(_GROUPING), cause="New fragility fracture")
    g = gray[(gray["set"] == "all") & (gray["cause"] == "fracture")]
    g = g.assign(set=g["grouping"].map(_GROUPING), cause="New fragility fracture")
    r = g.iloc[0]
    return FigureSpec(
        name="fracture_cif",
        caption="Aalen-Johansen cumulative incidence of a new fragility fracture, death without a "
        f"fracture a competing event, by stage predicted by {plan.primary_model} and by DXA stage, "
        f"both cohorts, n = {int(r['n'])} patients, {int(r['n_events'])} fractures, "
        f"{int(r['n_competing'])} deaths; 95% log(-log) pointwise bands; Gray's test p in each panel.",
        draw=lambda w: cumulative_incidence_figure(
            panels,
            gray=g[["set", "cause", "p_value"]],
            time_label="Months since index imaging",
            at_risk_times=[12.0 * k for k in range(int(panels["time"].max() // 12) + 1)],
            width_mm=w,
        ),
        column="double",
    )


def _decision_spec(dc: pd.DataFrame, plan: MskAgingPlan) -> FigureSpec:
    from studyval.figures.calibration import decision_curve_figure

    ext = dc[dc["set"] == "external"]
    models = [_MODEL_LABEL.get(m, m) for m in plan.model_names if m in set(ext["model"])]
    ext = ext.assign(model=ext["model"].map(lambda m: _MODEL_LABEL.get(m, m)))
    cls = str(ext["class"].iloc[0])
    return FigureSpec(
        name="decision_curve_op",
        caption=f"Decision curve of the predicted probability of {cls} in the prospective (external) "
        f"cohort, n = {int(ext['n'].iloc[0])} patients: net benefit of acting when the probability "
        "reaches the threshold, against treat all and treat none. Models with probabilities only "
        "(the SVM's decision values are not probabilities).",
        draw=lambda w: decision_curve_figure(ext, models=models, width_mm=w),
    )


def multinomial_calibration_figure(
    curve: pd.DataFrame, *, conditions: list[str], width_mm: float
) -> Figure:
    """One panel per condition: each class's calibrated against predicted probability.

    ``curve`` has the columns ``condition, class, predicted, calibrated`` of
    the ``multinomial_calibration_curve`` table (one model and set).
    """
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, width_mm * 0.5)
        axes = fig.subplots(1, len(conditions), squeeze=False)[0]
        for ax, cond in zip(axes, conditions, strict=True):
            sub = curve[curve["condition"] == cond]
            # a dotted pattern none of the class lines uses (LINESTYLES)
            ax.plot([0, 1], [0, 1], color="black", lw=0.6, ls=(0, (1, 3)), label="Ideal")
            for k, cls in enumerate(dict.fromkeys(sub["class"].astype(str))):
                c = sub[sub["class"].astype(str) == cls].sort_values("predicted")
                ax.plot(
                    c["predicted"].to_numpy(float),
                    c["calibrated"].to_numpy(float),
                    color=PALETTE[k % len(PALETTE)],
                    ls=LINESTYLES[k % len(LINESTYLES)],
                    label=cls if cond == "op" else f"KL {cls}",
                )
            ax.set_xlim(-0.01, 1.01)
            ax.set_ylim(-0.01, 1.01)
            ax.set_aspect("equal")
            ax.set_title(CONDITION_LABEL[cond], loc="left")
            ax.set_xlabel("Predicted probability")
            ax.legend(loc="upper left", frameon=False, fontsize=6)
        axes[0].set_ylabel("Calibrated probability")
    return fig


def _multinomial_calibration_spec(curve: pd.DataFrame, plan: MskAgingPlan) -> FigureSpec:
    ext = curve[(curve["set"] == "external") & (curve["model"] == plan.primary_model)]
    conditions = [c for c in CONDITIONS if c in set(ext["condition"])]
    n = {c: int(ext.loc[ext["condition"] == c, "n"].iloc[0]) for c in conditions}
    df = int(ext["df"].iloc[0])
    sizes = "; ".join(
        f"{CONDITION_LABEL[c]}: n = {n[c]} {'patients' if c == 'op' else 'knees'}"
        for c in conditions
    )
    return FigureSpec(
        name="multinomial_calibration",
        caption=f"Flexible multinomial calibration of the {_MODEL_LABEL.get(plan.primary_model, plan.primary_model)} "
        "model in the prospective (external) cohort: for each class, the calibrated probability "
        "(multinomial logistic recalibration on natural splines of the log-ratios, "
        f"{df} degrees of freedom each, smoothed by lowess) against the predicted probability; "
        f"the dotted diagonal is perfect calibration ({sizes}).",
        draw=lambda w: multinomial_calibration_figure(ext, conditions=conditions, width_mm=w),
        column="double",
    )


def _functional_spec(means: pd.DataFrame, fol: pd.DataFrame, plan: MskAgingPlan) -> FigureSpec:
    from studyval.figures.longitudinal import longitudinal_figure

    n_all = fol[fol["grouping"] == "all"]
    followed_text = ", ".join(str(int(x)) for x in n_all[n_all["outcome"] == "oks"]["n_followed"])
    return FigureSpec(
        name="functional_scores",
        caption="Mean VAS and OKS at 6, 12, 24 and 36 months by predicted radiographic OA (highest "
        f"predicted KL >= {plan.kl.oa_min_grade}), with the REML mixed-model fit (lines) and 95% "
        f"t-intervals of the observed means; patients followed per visit: {followed_text}.",
        draw=lambda w: longitudinal_figure(
            means[means["grouping"] == "predicted"], labels=plan.longitudinal.labels, width_mm=w
        ),
        column="double",
    )


def _n_range(n: pd.Series) -> str:
    """``200`` when every panel has the same n, else ``180-200``."""
    lo, hi = int(n.min()), int(n.max())
    return f"{lo}" if lo == hi else f"{lo}-{hi}"
