"""Figures of ovcf-chronicity (NCT07306858), each drawn from the bundle's tables.

:func:`figure_specs` is the protocol's ``figure_specs``: the STARD flow
diagram, the ROC curves and confusion matrices of both test sets, and, for
the primary set, the calibration curves, decision curves and subgroup forest
plots. Nothing here computes a statistic: every number is read from a table
of the bundle (``flow``, ``auc``, ``roc_points``, ``confusion``,
``calibration``, ``calibration_curves``, ``calibration_histograms``,
``decision_curve``, ``subgroups``, ``subgroup_heterogeneity``) or from the plan.
"""

from __future__ import annotations

import pandas as pd

from studyval import figures
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.figures.style import legend_below
from studyval.plan import AnalysisPlan
from studyval.protocol import flow_count

__all__ = ["figure_specs", "flow_stages"]

#: The test sets, in the order the figures show them.
SETS = ("external", "internal")

_SET_WORDS = {
    "external": "external validation set",
    "internal": "internal test set (development centre, held-out patients)",
}


def figure_specs(tables: dict[str, pd.DataFrame], plan: AnalysisPlan) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables at any width, with its caption.

    Captions state what is shown, the patients (and acute fractures) behind it
    and the interval method, all read from the tables.
    """
    models = plan.model_names
    pos, neg = plan.outcome.positive, plan.outcome.negative
    prim = plan.sets.primary
    auc = tables["auc"]

    def patients(set_: str) -> str:
        a = auc[auc["set"] == set_].iloc[0]
        n_pos, n_neg = int(a["n_positive"]), int(a["n_negative"])
        return f"n = {count(n_pos + n_neg)} patients: {count(n_pos)} {pos}, {count(n_neg)} {neg}"

    flow = tables["flow"]

    def fn(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    specs = [
        FigureSpec(
            "flow",
            "STARD flow diagram: "
            f"{count(fn('screened'))} patients with an osteoporotic vertebral compression fracture "
            f"screened, {count(fn('excluded'))} excluded, {count(fn('included'))} included; "
            + ", ".join(
                f"{count(fn('analysed', set=s))} analysed in the {s} test set" for s in SETS
            )
            + ". Counts are patients (vertebrae in brackets where shown).",
            lambda w: figures.flow_figure(flow_stages(tables["flow"], plan), width_mm=w),
            "double",
        )
    ]
    for set_ in SETS:
        a = auc[auc["set"] == set_]
        pts = tables["roc_points"][tables["roc_points"]["set"] == set_]
        specs.append(
            FigureSpec(
                f"roc_{set_}",
                f"Empirical ROC curves of {', '.join(models)}, {_SET_WORDS[set_]}, index vertebra "
                f"(one per patient; {patients(set_)}). Legend: AUC with "
                f"{ci_text(a['method'].iloc[0], float(a['ci_level'].iloc[0]))}.",
                lambda w, pts=pts, a=a: figures.roc_figure(pts, a, models=models, width_mm=w),
                "single",
            )
        )
    th = plan.thresholds[0].value
    for set_ in ("external", "internal"):
        cm = tables["confusion"]
        cm = cm[(cm["set"] == set_) & (cm["threshold_status"] == "pre-specified")]
        specs.append(
            FigureSpec(
                f"confusion_{set_}",
                f"Confusion matrices of {', '.join(models)} at the pre-specified threshold "
                f"(predicted probability of {pos} at least {th:g}), {_SET_WORDS[set_]} "
                f"({patients(set_)}); counts and row percentages. No intervals are drawn; "
                f"sensitivity and specificity with {ci_text(plan.proportion_ci)}s are in the "
                "accuracy table.",
                lambda w, cm=cm: figures.confusion_figure(
                    cm, models=models, positive=pos, negative=neg, threshold=th, width_mm=w
                ),
                "double",
            )
        )
    if "calibration_curves" in tables:
        cal = tables["calibration"]
        boot = cal[cal["ci_method"].astype(str).str.startswith("bootstrap")]
        method = str(boot["ci_method"].iloc[0]) if len(boot) else "bootstrap"
        n_res = plan.calibration.n_resamples if plan.calibration is not None else 0
        curves = tables["calibration_curves"]
        level = (
            float(curves["ci_level"].dropna().iloc[0]) if curves["ci_level"].notna().any() else 0.95
        )
        specs.append(
            FigureSpec(
                f"calibration_{prim}",
                f"Flexible (lowess) calibration curves of {', '.join(models)}, {_SET_WORDS[prim]} "
                f"({patients(prim)}); shaded bands: pointwise "
                f"{ci_text(f'{method} ({count(n_res)} resamples of patients)', level)}; "
                "histograms of the predicted probabilities by reference standard below.",
                lambda w: figures.calibration_figure(
                    tables["calibration_curves"],
                    models=models,
                    histogram=tables["calibration_histograms"],
                    width_mm=w,
                ),
                "single",
            )
        )
    if "decision_curve" in tables:
        dc = tables["decision_curve"]
        every = dc[dc["model"] == "treat all"].iloc[0]
        specs.append(
            FigureSpec(
                f"decision_curve_{prim}",
                f"Decision curves of {', '.join(models)}, {_SET_WORDS[prim]} (n = "
                f"{count(every['n'])} patients, {count(every['tp'])} {pos}): net benefit of treating "
                f"as {pos} when the predicted probability is at least the threshold, with treat all "
                "and treat none for reference. No intervals are drawn (differences in net benefit "
                "with bootstrap CIs are in the decision-curve table).",
                # legend under the panel: at 85 mm the curves fill it and a legend inside hides them
                lambda w: legend_below(
                    figures.decision_curve_figure(
                        tables["decision_curve"], models=models, width_mm=w
                    )
                ),
                "single",
            )
        )
    if "subgroups" in tables:
        sg = tables["subgroups"]
        het = tables["subgroup_heterogeneity"]
        # Each grouping has its own overall row (the pooled site grouping, the all-vertebrae one);
        # the diamond shows the primary set's patient-level overall.
        ref = next(
            (s.variable for s in plan.subgroups if s.set == "primary" and s.unit == "patient"), None
        )
        if ref is not None:
            sg = sg[(sg["row_type"] != "overall") | (sg["grouping"] == ref)]
        for measure, label in (
            ("auc", "AUC"),
            ("sensitivity", "Sensitivity"),
            ("specificity", "Specificity"),
        ):
            sub = sg[sg["measure"] == measure]
            if not len(sub):
                continue
            methods = sub.drop_duplicates("unit")
            ci = "; ".join(
                f"{r.unit}-level rows: {ci_text(r.method, float(r.ci_level))}"
                for r in methods.itertuples()
            )
            overall = sub[sub["row_type"] == "overall"]
            n_text = ""
            if len(overall):
                o = overall.iloc[0]
                n_text = f" (n = {count(o['n'])} patients, {count(o['n_positive'])} {pos})"
            model = str(sub["model"].iloc[0])
            specs.append(
                FigureSpec(
                    f"forest_{measure}",
                    f"{label} of {model} by subgroup, with n per subgroup beside each row; the "
                    f"diamond is the {_SET_WORDS[prim]} overall{n_text}. Intervals: {ci}. "
                    "Heterogeneity tests under each block; open markers are exploratory subgroups.",
                    lambda w, sub=sub, label=label, measure=measure: figures.forest_figure(
                        sub,
                        estimate_label=label,
                        heterogeneity=het[het["measure"] == measure],
                        width_mm=w,
                    ),
                    "double",
                )
            )
    return specs


def flow_stages(flow: pd.DataFrame, plan: AnalysisPlan) -> pd.DataFrame:
    """Boxes of the STARD flow diagram (text and layout) from the flow counts."""
    pos, neg = plan.outcome.positive, plan.outcome.negative

    def n(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    def cases(stage: str, **where: str) -> int:
        return flow_count(flow, stage, column="n_cases", **where)

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_lines = "\n".join(
        f"{r.group.replace('_', ' ')}: {r.n_patients}" for r in excl.itertuples()
    )
    main, side = 0.36, 0.80
    boxes = [
        {
            "key": "screened",
            "text": f"Patients with OVCF screened\nn = {n('screened')} ({cases('screened')} vertebrae)",
            "x": main,
            "row": 0,
            "parent": None,
            "side": False,
        },
        {
            "key": "excluded",
            "text": f"Excluded, n = {n('excluded')}\n{excl_lines}",
            "x": side,
            "row": 0,
            "parent": "screened",
            "side": True,
        },
        {
            "key": "included",
            "text": f"Included\nn = {n('included')} ({cases('included')} vertebrae)",
            "x": main,
            "row": 1,
            "parent": "screened",
            "side": False,
        },
        {
            "key": "development",
            "text": f"Development split, n = {n('split', set='development')}\n(model training; not evaluated)",
            "x": side,
            "row": 1,
            "parent": "included",
            "side": True,
        },
    ]
    for x, set_ in ((0.18, "internal"), (0.62, "external")):
        failed = n("index_test_failed", set=set_)
        boxes.append(
            {
                "key": f"set_{set_}",
                "text": f"{set_.capitalize()} test set\nn = {n('split', set=set_)} patients",
                "x": x,
                "row": 2,
                "parent": "included",
                "side": False,
            }
        )
        boxes.append(
            {
                "key": f"failed_{set_}",
                "text": f"Excluded: index test failed\n(no score), n = {failed}",
                "x": x,
                "row": 3,
                "parent": f"set_{set_}",
                "side": True,
            }
        )
        boxes.append(
            {
                "key": f"analysed_{set_}",
                "text": f"Analysed (index vertebra)\n{pos}: {n('analysed', set=set_, group=pos)}, "
                f"{neg}: {n('analysed', set=set_, group=neg)}",
                "x": x,
                "row": 4,
                "parent": f"failed_{set_}",
                "side": False,
            }
        )
    return pd.DataFrame(boxes)
