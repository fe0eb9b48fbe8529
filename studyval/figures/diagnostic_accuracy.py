"""Figures of a diagnostic-accuracy study of the generic type, each drawn from the bundle's tables.

:func:`figure_specs` is the study type's ``figure_specs``
(:mod:`studyval.study_types.diagnostic_accuracy`): the STARD flow diagram, the
ROC curves of every evaluation set, the confusion matrices where the plan
names them and, for the primary set, the calibration curves, decision curves
and subgroup forest plots where the plan names those analyses. Generalised
from :mod:`studyval.figures.ovcf_chronicity`: the sets are the plan's
evaluation sets (an internal held-out set alone is enough), the words for a
case come from the data (patients; cases in brackets where a patient has
several). A registered protocol of the type (ovcf-chronicity) calls
:func:`figure_specs` with its own :class:`Wording` (its population, its
unit of analysis, the words of its sets). Nothing here computes a statistic:
every number is read from a table of the bundle or from the plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from studyval import figures
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.figures.style import legend_below
from studyval.plan import AnalysisPlan
from studyval.protocol import flow_count

__all__ = ["SET_WORDS", "Wording", "evaluation_sets", "figure_specs", "flow_stages"]

#: Each set in words, for captions.
SET_WORDS = {
    "internal": "internal test set (held-out patients of the development data)",
    "external": "external validation set",
}


@dataclass(frozen=True)
class Wording:
    """The words of a study's captions and flow boxes; the defaults are the generic type's.

    Attributes
    ----------
    set_words : mapping of str to str
        Each evaluation set in words (captions).
    unit : str
        Noun after a count of analysed patients (``"patients"``: "n = 79 patients"); empty: none.
    population : str
        Who was screened, in the flow caption.
    population_box : str
        Who was screened, in the flow diagram's first box.
    cases : str
        The cases in words ("vertebrae"), in brackets beside the patients.
    primary_cases : str
        The ROC captions' unit of analysis; ``{n}`` is replaced by the counts.
    score : str
        What the threshold applies to ("score", "predicted probability").
    resampled : str
        What the calibration bootstrap resamples, after "resamples" (``" of patients"``).
    analysed_box : str
        Title of the flow diagram's analysed boxes.
    flow_columns : tuple of str or None
        Left-to-right order of the sets in the flow diagram; ``None``: primary first.
    """

    set_words: Mapping[str, str] = field(default_factory=lambda: dict(SET_WORDS))
    unit: str = ""
    population: str = "patients"
    population_box: str = "Patients"
    cases: str = "cases"
    primary_cases: str = "primary cases ({n})"
    score: str = "score"
    resampled: str = ""
    analysed_box: str = "Analysed"
    flow_columns: tuple[str, ...] | None = None


def evaluation_sets(plan: AnalysisPlan) -> list[str]:
    """The plan's evaluation sets, primary first."""
    prim = plan.sets.primary
    return [prim, *[s for s in ("internal", "external") if s in plan.sets.secondary and s != prim]]


def figure_specs(
    tables: dict[str, pd.DataFrame], plan: AnalysisPlan, *, words: Wording | None = None
) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables at any width, with its caption.

    ``words`` are the study's words (:class:`Wording`; default the generic type's).
    """
    words = words or Wording()
    set_words = words.set_words
    unit = f" {words.unit}" if words.unit else ""
    models = plan.model_names
    pos, neg = plan.outcome.positive, plan.outcome.negative
    prim = plan.sets.primary
    sets = evaluation_sets(plan)
    auc = tables["auc"]
    flow = tables["flow"]

    def patients(set_: str) -> str:
        a = auc[auc["set"] == set_].iloc[0]
        n_pos, n_neg = int(a["n_positive"]), int(a["n_negative"])
        return f"n = {count(n_pos + n_neg)}{unit}: {count(n_pos)} {pos}, {count(n_neg)} {neg}"

    def fn(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    specs = [
        FigureSpec(
            "flow",
            f"STARD flow diagram: {count(fn('screened'))} {words.population} screened, "
            f"{count(fn('excluded'))} excluded, {count(fn('included'))} included; "
            + ", ".join(f"{count(fn('analysed', set=s))} analysed in the {set_words[s]}" for s in sets)
            + f". Counts are patients ({words.cases} in brackets where a patient has several).",
            lambda w: figures.flow_figure(flow_stages(flow, plan, words=words), width_mm=w),
            "double",
        )
    ]
    for set_ in sets:
        a = auc[auc["set"] == set_]
        if "roc_points" not in tables:
            break
        pts = tables["roc_points"][tables["roc_points"]["set"] == set_]
        specs.append(
            FigureSpec(
                f"roc_{set_}",
                f"Empirical ROC curves of {', '.join(models)}, {set_words[set_]}, "
                f"{words.primary_cases.format(n=patients(set_))}. Legend: AUC with "
                f"{ci_text(a['method'].iloc[0], float(a['ci_level'].iloc[0]))}.",
                lambda w, pts=pts, a=a: figures.roc_figure(pts, a, models=models, width_mm=w),
                "single",
            )
        )
    th = plan.thresholds[0].value
    if "confusion" in tables:
        for set_ in sets:
            cm = tables["confusion"]
            cm = cm[(cm["set"] == set_) & (cm["threshold_status"] == "pre-specified")]
            cm = cm[cm["threshold_name"] == plan.thresholds[0].name]
            specs.append(
                FigureSpec(
                    f"confusion_{set_}",
                    f"Confusion matrices of {', '.join(models)} at the pre-specified threshold "
                    f"({words.score} of {pos} at least {th:g}), {set_words[set_]} ({patients(set_)}); counts "
                    f"and row percentages. No intervals are drawn; sensitivity and specificity with "
                    f"{ci_text(plan.proportion_ci)}s are in the accuracy table.",
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
        n_res = plan.calibration.n_resamples if plan.calibration is not None else 1000
        curves = tables["calibration_curves"]
        level = (
            float(curves["ci_level"].dropna().iloc[0]) if curves["ci_level"].notna().any() else 0.95
        )
        specs.append(
            FigureSpec(
                f"calibration_{prim}",
                f"Flexible (lowess) calibration curves of {', '.join(models)}, {set_words[prim]} "
                f"({patients(prim)}); shaded bands: pointwise "
                f"{ci_text(f'{method} ({count(n_res)} resamples{words.resampled})', level)}; "
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
                f"Decision curves of {', '.join(models)}, {set_words[prim]} (n = "
                f"{count(every['n'])}{unit}, {count(every['tp'])} {pos}): net benefit of treating as "
                f"{pos} when the predicted probability is at least the threshold, with treat all "
                "and treat none for reference. No intervals are drawn (differences in net benefit "
                "with bootstrap CIs are in the decision-curve table).",
                # legend under the panel: at 85 mm the curves fill it and a legend inside hides them
                lambda w: legend_below(
                    figures.decision_curve_figure(tables["decision_curve"], models=models, width_mm=w)
                ),
                "single",
            )
        )
    if "subgroups" in tables:
        specs.extend(_forest_specs(tables, plan, words))
    return specs


def _forest_specs(
    tables: dict[str, pd.DataFrame], plan: AnalysisPlan, words: Wording
) -> list[FigureSpec]:
    """One forest plot per measure (AUC, sensitivity, specificity) of the subgroup tables."""
    pos = plan.outcome.positive
    unit = f" {words.unit}" if words.unit else ""
    sg = tables["subgroups"]
    het = tables["subgroup_heterogeneity"]
    # Each grouping has its own overall row (a pooled site grouping, an all-cases one); the
    # diamond shows the primary set's patient-level overall.
    ref = next((s.variable for s in plan.subgroups if s.set == "primary" and s.unit == "patient"), None)
    if ref is not None:
        sg = sg[(sg["row_type"] != "overall") | (sg["grouping"] == ref)]
    specs = []
    for measure, label in (("auc", "AUC"), ("sensitivity", "Sensitivity"), ("specificity", "Specificity")):
        sub = sg[sg["measure"] == measure]
        if not len(sub):
            continue
        methods = sub.drop_duplicates("unit")
        ci = "; ".join(
            f"{r.unit}-level rows: {ci_text(r.method, float(r.ci_level))}" for r in methods.itertuples()
        )
        overall = sub[sub["row_type"] == "overall"]
        n_text = ""
        if len(overall):
            o = overall.iloc[0]
            n_text = f" (n = {count(o['n'])}{unit}, {count(o['n_positive'])} {pos})"
        model = str(sub["model"].iloc[0])
        specs.append(
            FigureSpec(
                f"forest_{measure}",
                f"{label} of {model} by subgroup, with n per subgroup beside each row; the diamond "
                f"is the {words.set_words[plan.sets.primary]} overall{n_text}. Intervals: {ci}. "
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


def flow_stages(
    flow: pd.DataFrame, plan: AnalysisPlan, *, words: Wording | None = None
) -> pd.DataFrame:
    """Boxes of the STARD flow diagram (text and layout) from the flow counts.

    Screened, excluded (by reason), included, the development split (not
    evaluated), then one column per evaluation set (``words.flow_columns``
    order, else the primary first): the set, its index-test failures and the
    analysed cases by class.
    """
    words = words or Wording()
    pos, neg = plan.outcome.positive, plan.outcome.negative
    sets = evaluation_sets(plan)
    if words.flow_columns is not None:
        sets = [s for s in words.flow_columns if s in sets]

    def n(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    def with_cases(stage: str, **where: str) -> str:
        p, c = n(stage, **where), flow_count(flow, stage, column="n_cases", **where)
        return f"n = {p}" + (f" ({c} {words.cases})" if c != p else "")

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_lines = "\n".join(f"{r.group.replace('_', ' ')}: {r.n_patients}" for r in excl.itertuples())
    main, side = 0.36, 0.80
    boxes = [
        {"key": "screened", "text": f"{words.population_box} screened\n{with_cases('screened')}",
         "x": main, "row": 0, "parent": None, "side": False},
        {"key": "excluded", "text": f"Excluded, n = {n('excluded')}" + (f"\n{excl_lines}" if excl_lines else ""),
         "x": side, "row": 0, "parent": "screened", "side": True},
        {"key": "included", "text": f"Included\n{with_cases('included')}",
         "x": main, "row": 1, "parent": "screened", "side": False},
        {"key": "development",
         "text": f"Development split, n = {n('split', set='development')}\n(model fitting; not evaluated)",
         "x": side, "row": 1, "parent": "included", "side": True},
    ]
    xs = {1: (main,), 2: (0.18, 0.62)}[len(sets)] if len(sets) in (1, 2) else (main,)
    for x, set_ in zip(xs, sets, strict=False):
        title = "Internal test set" if set_ == "internal" else "External validation set"
        boxes += [
            {"key": f"set_{set_}", "text": f"{title}\nn = {n('split', set=set_)} patients",
             "x": x, "row": 2, "parent": "included", "side": False},
            {"key": f"failed_{set_}",
             "text": f"Excluded: index test failed\n(no score), n = {n('index_test_failed', set=set_)}",
             "x": x, "row": 3, "parent": f"set_{set_}", "side": True},
            {"key": f"analysed_{set_}",
             "text": f"{words.analysed_box}\n{pos}: {n('analysed', set=set_, group=pos)}, "
                     f"{neg}: {n('analysed', set=set_, group=neg)}",
             "x": x, "row": 4, "parent": f"failed_{set_}", "side": False},
        ]
    return pd.DataFrame(boxes)
