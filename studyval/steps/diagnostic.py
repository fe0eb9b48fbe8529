"""Steps of the diagnostic-accuracy study type (STARD 2015), parameterised by the plan alone.

A diagnostic-accuracy study scores cases with one or more models (a
prediction table: ``case_id, patient_id, model_name, split, status, score``
joined with the reference standard as the boolean column ``positive``) and
answers its endpoints with the steps registered here, each a thin adapter
over :mod:`studyval.analysis`:

=========================  =========================================================  ===========================
step                       what                                                       tables
=========================  =========================================================  ===========================
``models``                 the models analysed, cases scored and failed               ``models``
``sample_size``            Buderer (1996) requirement against registered/analysed     ``sample_size``
``auc``                    AUC with DeLong CI (plan ``auc_ci``: wald or logit)        ``auc``
``auc_logit``              the same AUCs with logit-scale DeLong CIs (a sensitivity   ``auc_logit``
                           analysis beside a Wald primary interval)
``roc_curve``              empirical ROC points                                       ``roc_points``
``youden``                 Youden-optimal threshold per set and model (exploratory)   ``youden``
``accuracy``               sensitivity, specificity, PPV, NPV, ... at each threshold  ``accuracy``
``confusion_matrix``       2x2 counts at each threshold                               ``confusion``
``intention_to_diagnose``  Se, Sp per protocol and counting non-evaluable as errors   ``accuracy_itd``
``predictive_values``      primary model's PPV, NPV at plan clinical prevalences      ``predictive_values``
``compare_auc``            paired DeLong comparison of each pair of models            ``compare_paired``
``compare_auc_k``          joint DeLong chi-square test of all models                 ``compare_joint``
``compare_auc_unpaired``   unpaired DeLong comparison of the two evaluation sets      ``compare_unpaired``
``calibration``            calibration-in-the-large, slope, flexible curves           ``calibration``, ...
``decision_curve``         net benefit, differences with bootstrap CIs                ``decision_curve``, ...
``subgroups``              AUC, sensitivity, specificity by subgroup, heterogeneity   ``subgroups``, ...
``clustered_auc``          all cases of a patient, patient-clustered intervals        ``vertebra_auc``, ...
=========================  =========================================================  ===========================

Everything a step needs comes from the :class:`~studyval.plan.AnalysisPlan`:
the outcome (positive class), the models (plan order, one primary), the sets
(the *evaluation sets* are the primary and secondary sets, analysed in the
order internal, external; ``primary_cases`` names the boolean column marking
the cases of the primary, independent analysis, e.g. one index vertebra per
patient, or ``all_cases``), the pre-specified thresholds, the subgroups, and
the calibration, decision-curve and clustered specifications (their schema
defaults when a plan names the step without the section). A study
contributes its own steps (participant flow, baseline table) and derives its
own subgroup variables into the cohort (its ``join``) before these run.

The ``sample_size`` step reads the study's ``flow`` table: one row per
evaluation set and class at stage ``analysed`` (columns ``stage, set, group,
n_patients``).

Seeds: calibration of model *k* uses ``seed + k``, the decision-curve
difference *k* ``seed + 100 + k``, subgroup grouping *k* ``seed + 200 + k``
and the clustered accuracy of model *k* ``seed + 300 + k``, so that every
interval is reproducible whatever the order in which the steps run.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis import (
    accuracy,
    calibration,
    clustered,
    decision_curve,
    discrimination,
    sample_size,
    subgroups,
    thresholds,
)
from studyval.cohort import Cohort, estimating
from studyval.errors import EstimationError, StudyvalError
from studyval.plan import AnalysisPlan, CalibrationSpec, ClusteredSpec, DecisionCurveSpec
from studyval.steps.common import MODELS, SAMPLE_SIZE, sample_size_row, scored_models_table
from studyval.steps.registry import StepContext, StepRegistry, TableSpec

__all__ = [
    "ACCURACY",
    "ACCURACY_ITD",
    "AUC",
    "CALIBRATION",
    "CALIBRATION_CURVES",
    "CALIBRATION_HISTOGRAMS",
    "CLUSTERED_ACCURACY",
    "CLUSTERED_AUC",
    "CLUSTERED_COMPARE",
    "COMPARE_JOINT",
    "COMPARE_PAIRED",
    "COMPARE_UNPAIRED",
    "CONFUSION",
    "DECISION_CURVE",
    "DECISION_CURVE_DIFFERENCE",
    "PREDICTIVE_VALUES",
    "REGISTRY",
    "ROC_POINTS",
    "SUBGROUPS",
    "SUBGROUP_HETEROGENEITY",
    "YOUDEN",
    "YOUDEN_FROM",
    "evaluation_sets",
    "primary_cases",
]

#: The set on which the exploratory Youden threshold is derived and then applied to the others.
YOUDEN_FROM = "internal"
#: Plural noun of the primary cases (``sets.primary_cases``), for messages.
_CASE_NOUN = {"index_vertebra": "index vertebrae", "all_cases": "cases"}

_SET = ("set", "model")
_INTERVAL = ("estimate", "ci_low", "ci_high", "ci_level")
_THRESHOLD = ("threshold_name", "threshold", "threshold_status")

AUC = TableSpec(
    "auc",
    "AUC with DeLong CI of each model in each evaluation set (primary cases)",
    (*_SET, *_INTERVAL[:1], "se", *_INTERVAL[1:], "n_positive", "n_negative", "method"),
)
AUC_LOGIT = TableSpec(
    "auc_logit",
    "The AUC of each model in each evaluation set with its DeLong CI on the logit scale "
    "(sensitivity analysis beside the plan's interval)",
    AUC.columns,
)
ROC_POINTS = TableSpec(
    "roc_points",
    "Empirical ROC curve of each model in each evaluation set, one row per distinct score",
    (*_SET, "threshold", "fpr", "tpr", "sensitivity", "specificity"),
)
YOUDEN = TableSpec(
    "youden",
    "Youden-optimal threshold of each model in each evaluation set (exploratory)",
    (*_SET, "value", "status", "method", "sensitivity", "specificity", "j"),
)
ACCURACY = TableSpec(
    "accuracy",
    "Accuracy measures with CIs of each model at each threshold (pre-specified, exploratory)",
    (*_SET, *_THRESHOLD, "threshold_source", "measure", *_INTERVAL, "numerator", "denominator"),
)
ACCURACY_ITD = TableSpec(
    "accuracy_itd",
    "Sensitivity and specificity of each model at each pre-specified threshold, per protocol "
    "(non-evaluable index-test results excluded) and by intention to diagnose (non-evaluable "
    "results counted as false negatives or false positives)",
    (*_SET, *_THRESHOLD, "analysis", "measure", *_INTERVAL, "numerator", "denominator",
     "n_nonevaluable", "ci_method"),
)  # fmt: skip
PREDICTIVE_VALUES = TableSpec(
    "predictive_values",
    "PPV and NPV of the primary model at each pre-specified threshold and each clinical "
    "prevalence declared in the plan (Bayes' theorem, Mercaldo logit CIs)",
    (
        *_SET,
        *_THRESHOLD,
        "prevalence",
        "prevalence_source",
        "measure",
        *_INTERVAL,
        "sensitivity",
        "specificity",
        "n_positive",
        "n_negative",
        "method",
        "note",
    ),
)
CONFUSION = TableSpec(
    "confusion",
    "2x2 counts of each model at each threshold (pre-specified, exploratory)",
    (*_SET, *_THRESHOLD, "tp", "fp", "fn", "tn"),
)
COMPARE_PAIRED = TableSpec(
    "compare_paired",
    "Paired DeLong comparison of the AUCs of each pair of models, per evaluation set",
    ("set", "name_a", "name_b", "difference", "se", "ci_low", "ci_high", "p_value", "method"),
)
COMPARE_JOINT = TableSpec(
    "compare_joint",
    "Joint DeLong chi-square test that all models have equal AUC, per evaluation set",
    ("set", "n_cases", "statistic", "df", "p_value", "method", "names"),
)
COMPARE_UNPAIRED = TableSpec(
    "compare_unpaired",
    "Unpaired DeLong comparison of each model's AUC between the two evaluation sets",
    ("model", "name_a", "name_b", "difference", "se", "ci_low", "ci_high", "p_value", "method"),
)
CALIBRATION = TableSpec(
    "calibration",
    "Calibration-in-the-large and slope of each model, primary set",
    (*_SET, "measure", *_INTERVAL, "ci_method"),
)
CALIBRATION_CURVES = TableSpec(
    "calibration_curves",
    "Flexible (lowess) calibration curve of each model with pointwise bootstrap band",
    ("model", "predicted", "observed", "ci_low", "ci_high", "ci_level"),
)
CALIBRATION_HISTOGRAMS = TableSpec(
    "calibration_histograms",
    "Predicted probabilities by reference standard, binned, per model",
    ("model", "bin_low", "bin_high", "n_positive", "n_negative"),
)
DECISION_CURVE = TableSpec(
    "decision_curve",
    "Net benefit of each model, treat all and treat none over the threshold grid, primary set",
    ("model", "threshold", "net_benefit", "tp", "fp", "n"),
)
DECISION_CURVE_DIFFERENCE = TableSpec(
    "decision_curve_difference",
    "Difference in net benefit of the plan's model pairs with bootstrap CIs, primary set",
    ("model_a", "model_b", "threshold", "difference", "ci_low", "ci_high", "ci_method"),
)
SUBGROUPS = TableSpec(
    "subgroups",
    "AUC, sensitivity and specificity of the primary model in each subgroup level",
    ("model", "unit", "grouping", "level", "row_type", "status", "measure", *_INTERVAL, "method"),
)
SUBGROUP_HETEROGENEITY = TableSpec(
    "subgroup_heterogeneity",
    "Test of heterogeneity across the levels of each subgrouping and measure",
    ("model", "grouping", "status", "measure", "method", "performed", "p_value"),
)
CLUSTERED_AUC = TableSpec(
    "vertebra_auc",
    "AUC over all cases of the primary set with patient-clustered (Obuchowski) CI",
    (*_SET, *_INTERVAL[:1], "se", *_INTERVAL[1:], "n_clusters", "design_effect", "method"),
)
CLUSTERED_ACCURACY = TableSpec(
    "vertebra_accuracy",
    "Sensitivity and specificity over all cases at the first pre-specified threshold, "
    "patient-level bootstrap CI",
    (
        *_SET,
        "measure",
        "threshold",
        "threshold_status",
        "numerator",
        "denominator",
        "n_patients",
        *_INTERVAL,
        "method",
        "n_resamples",
        "n_failed",
    ),
)
CLUSTERED_COMPARE = TableSpec(
    "vertebra_compare",
    "Paired comparison of each pair of models over all cases, patient-clustered",
    ("set", "name_a", "name_b", "difference", "se", "ci_low", "ci_high", "p_value", "method"),
)

REGISTRY = StepRegistry("diagnostic-accuracy")


# ----------------------------------------------------------------------------- selecting cases


def evaluation_sets(plan: AnalysisPlan) -> list[str]:
    """The sets the plan evaluates (primary and secondary), in the order internal, external."""
    named = {plan.sets.primary, *plan.sets.secondary}
    return [s for s in ("internal", "external") if s in named]


def primary_cases(cohort: Cohort, plan: AnalysisPlan, set_: str) -> pd.DataFrame:
    """Prediction rows of ``set_`` restricted to the primary cases (``sets.primary_cases``)."""
    p = cohort.predictions
    keep = p["split"] == set_
    if plan.sets.primary_cases != "all_cases":
        keep &= p[plan.sets.primary_cases].astype(bool)
    return p[keep]


def _scored(frame: pd.DataFrame, model: str, set_: str, plan: AnalysisPlan) -> pd.DataFrame:
    """Rows of ``frame`` that ``model`` scored; an error where it scored none or gave all one score.

    Raises
    ------
    EstimationError
        Naming the model, the set and the reason: no case with a score
        (every one failed), or every score equal (the model ranks no case
        above another: its AUC is 0.5 by construction with a DeLong interval
        of zero width, and the calibration slope is not identifiable).

    """
    noun = _CASE_NOUN[plan.sets.primary_cases]
    rows = frame[frame["model_name"] == model]
    ok = rows[rows["status"] == "ok"]
    if len(ok) == 0:
        raise EstimationError(
            f"model {model}, {set_} set: none of the {len(rows)} {noun} has a score "
            "(every one has status failed); the AUC and every accuracy measure cannot be estimated"
        )
    scores = ok["score"].to_numpy(float)
    if len(ok) > 1 and np.all(scores == scores[0]):
        raise EstimationError(
            f"model {model}, {set_} set: every score is equal ({scores[0]:g}) for the {len(ok)} "
            f"scored {noun}: the model ranks no case above another, so its AUC (0.5 by "
            "construction, with a DeLong interval of zero width), its comparison with the other "
            "models and its calibration slope cannot be estimated; check the export of the "
            "model's scores"
        )
    return ok


def _labels(frame: pd.DataFrame, plan: AnalysisPlan) -> np.ndarray:
    """Reference-standard labels (the plan's class names) of the rows of ``frame``."""
    return np.where(frame["positive"].to_numpy(bool), plan.outcome.positive, plan.outcome.negative)


def _wide(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per case with a score column per model; only cases that every model scored."""
    ok = frame[frame["status"] == "ok"]
    wide = ok.pivot(index="case_id", columns="model_name", values="score")
    truth = ok.drop_duplicates("case_id").set_index("case_id")["positive"]
    wide = wide[models].dropna()
    wide.insert(0, "positive", truth.loc[wide.index].astype(bool))
    return wide.sort_index()


def _each_scored(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext, what: str
) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """``(set, model, labels, scores)`` of the primary cases each model scored, set by set."""
    for set_ in evaluation_sets(plan):
        ctx.progress(f"{what}, {set_} set")
        frame = primary_cases(cohort, plan, set_)
        for model in plan.model_names:
            ok = _scored(frame, model, set_, plan)
            yield set_, model, _labels(ok, plan), ok["score"].to_numpy(float)


def _framed(table: pd.DataFrame, **first: Any) -> pd.DataFrame:
    """``table`` with the columns ``first`` (in order) put before its own."""
    out = table.copy()
    for k, (name, value) in enumerate(first.items()):
        out.insert(k, name, value)
    return out


# ----------------------------------------------------------------------------- always


@REGISTRY.step("models", produces=[MODELS])
def models_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """The models analysed, with the cases each scored and failed."""
    return {"models": scored_models_table(cohort.predictions, plan.models)}


@REGISTRY.step("sample_size", produces=[SAMPLE_SIZE], needs=("flow",))
def sample_size_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Buderer (1996) requirement against the registered and the analysed numbers."""
    ctx.progress("sample size check")
    ss = plan.sample_size
    pos, neg = plan.outcome.positive, plan.outcome.negative
    flow = ctx.tables["flow"]
    rows = []
    if ss.sensitivity is not None:
        b = sample_size.buderer(sensitivity=ss.sensitivity, precision=ss.precision, alpha=ss.alpha)
        about = {
            "assumption": f"sensitivity {ss.sensitivity}, allowable error {ss.precision}, alpha {ss.alpha}",
            "method": "Buderer 1996",
        }
        chk = sample_size.check_registered(b, ss.registered_positives, label=f"{pos} cases")
        rows.append(
            sample_size_row(chk, check="registered", quantity=f"{pos} cases (sensitivity)", **about)
        )
        analysed = flow[(flow["stage"] == "analysed") & (flow["group"] == pos)]
        for rec in analysed.itertuples(index=False):
            n = int(rec.n_patients)
            chk = sample_size.check_registered(b.n, n, label=f"{pos} cases")
            verdict = (
                f"{chk.shortfall} fewer than the {chk.required} the formula requires, so the "
                f"sensitivity CI is wider than the registered +/-{ss.precision:g}"
                if chk.shortfall > 0
                else f"at least the {chk.required} the formula requires"
            )
            row = sample_size_row(
                chk,
                check=f"observed ({rec.set})",
                quantity=f"{pos} cases analysed, {rec.set} set",
                **about,
            )
            row["message"] = f"The {rec.set} set has {n} analysed {pos} cases: {verdict}."
            rows.append(row)
    if ss.specificity is not None:
        b = sample_size.buderer(specificity=ss.specificity, precision=ss.precision, alpha=ss.alpha)
        chk = sample_size.check_registered(
            b.n_non_diseased,
            ss.registered_negatives,
            label=f"{neg} cases",
            basis="the Buderer formula",
        )
        rows.append(
            sample_size_row(
                chk,
                check="registered",
                quantity=f"{neg} cases (specificity)",
                assumption=f"specificity {ss.specificity}, allowable error {ss.precision}, alpha {ss.alpha}",
                method="Buderer 1996",
            )
        )
    return {"sample_size": pd.DataFrame(rows)}


# ----------------------------------------------------------------------------- discrimination


@REGISTRY.step("auc", produces=[AUC])
def auc_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """AUC with DeLong CI of each model in each evaluation set."""
    rows = []
    for set_, model, y, s in _each_scored(cohort, plan, ctx, "discrimination (AUC)"):
        try:
            a = discrimination.auc(
                y, s, positive=plan.outcome.positive, alpha=plan.alpha, ci_method=plan.auc_ci
            )
        except EstimationError as exc:
            raise EstimationError(
                f"column '{plan.outcome.variable}' (reference standard), {set_} set, "
                f"model {model}: {exc}"
            ) from None
        rows.append({"set": set_, "model": model, **a.to_dict()})
    return {"auc": pd.DataFrame(rows)}


@REGISTRY.step("auc_logit", produces=[AUC_LOGIT])
def auc_logit_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """The AUCs of step ``auc`` with logit-scale DeLong intervals (same AUC and SE).

    For a plan whose pre-specified interval is Wald (truncated to [0, 1]): the logit-scale
    interval stays inside (0, 1) for AUCs near 1. Reported beside the plan's interval as a
    sensitivity analysis, never in its place.
    """
    rows = []
    for set_, model, y, s in _each_scored(cohort, plan, ctx, "discrimination (AUC, logit CI)"):
        with estimating(f"model {model}, {set_} set, AUC (logit-scale interval)"):
            a = discrimination.auc(
                y, s, positive=plan.outcome.positive, alpha=plan.alpha, ci_method="logit"
            )
        rows.append({"set": set_, "model": model, **a.to_dict()})
    return {"auc_logit": pd.DataFrame(rows)}


@REGISTRY.step("roc_curve", produces=[ROC_POINTS])
def roc_curve_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Empirical ROC points of each model in each evaluation set."""
    parts = []
    for set_, model, y, s in _each_scored(cohort, plan, ctx, "ROC curves"):
        with estimating(f"model {model}, {set_} set, ROC curve"):
            roc = discrimination.roc_curve(y, s, positive=plan.outcome.positive)
        parts.append(_framed(roc.points_frame(), set=set_, model=model))
    return {"roc_points": pd.concat(parts, ignore_index=True)}


# ----------------------------------------------------------------------------- thresholds


@REGISTRY.step("youden", produces=[YOUDEN])
def youden_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Youden-optimal threshold of each model in each evaluation set (exploratory)."""
    rows = []
    for set_, model, y, s in _each_scored(cohort, plan, ctx, "Youden threshold"):
        with estimating(f"model {model}, {set_} set, Youden threshold"):
            yd = thresholds.youden(y, s, positive=plan.outcome.positive)
        rows.append({"set": set_, "model": model, **yd.to_dict()})
    return {"youden": pd.DataFrame(rows)}


@dataclass(frozen=True)
class _Rule:
    """A threshold at which accuracy is reported: the plan's, or the exploratory Youden one."""

    name: str
    value: float
    status: str
    source: str


def _rules(plan: AnalysisPlan, set_: str, model: str, youden: pd.DataFrame) -> list[_Rule]:
    """The plan's thresholds, then (on a set other than :data:`YOUDEN_FROM`) the Youden one."""
    rules = [_Rule(th.name, th.value, "pre-specified", th.source) for th in plan.thresholds]
    derived = youden[(youden["set"] == YOUDEN_FROM) & (youden["model"] == model)]
    if set_ != YOUDEN_FROM and len(derived):
        rules.append(
            _Rule(
                f"youden-{YOUDEN_FROM}",
                float(derived["value"].iloc[0]),
                "exploratory",
                f"Youden index maximised on the {YOUDEN_FROM} set (data-derived, exploratory)",
            )
        )
    return rules


def _at_thresholds(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext, what: str
) -> Iterator[tuple[str, str, _Rule, accuracy.AccuracyResult]]:
    """Accuracy of each model in each set at each threshold of :func:`_rules`."""
    for set_, model, y, s in _each_scored(cohort, plan, ctx, what):
        with estimating(f"model {model}, {set_} set, {what}"):
            for rule in _rules(plan, set_, model, ctx.tables["youden"]):
                r = accuracy.diagnostic_accuracy(
                    y,
                    s,
                    positive=plan.outcome.positive,
                    threshold=rule.value,
                    threshold_status=rule.status,
                    alpha=plan.alpha,
                    ci_method=plan.proportion_ci,
                )
                yield set_, model, rule, r


@REGISTRY.step("accuracy", produces=[ACCURACY], needs=("youden",))
def accuracy_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Sensitivity, specificity, PPV, NPV, accuracy, LRs and DOR at each threshold."""
    parts = [
        _framed(
            r.measures_frame(),
            set=set_,
            model=model,
            threshold_name=rule.name,
            threshold=float(r.threshold),
            threshold_status=rule.status,
            threshold_source=rule.source,
        )
        for set_, model, rule, r in _at_thresholds(cohort, plan, ctx, "accuracy")
    ]
    return {"accuracy": pd.concat(parts, ignore_index=True)}


@REGISTRY.step("intention_to_diagnose", produces=[ACCURACY_ITD])
def intention_to_diagnose_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Sensitivity and specificity per protocol and by intention to diagnose (STARD 24).

    The primary cases of each evaluation set that a model could not score (status other than
    ``ok``: failed, non-evaluable) are counted per reference class and passed with the
    per-protocol 2x2 table of the scored cases to
    :func:`studyval.analysis.accuracy.intention_to_diagnose`, which counts them as false
    negatives (reference positive) or false positives (reference negative). One block of rows
    per set, model and pre-specified threshold; ``n_nonevaluable`` is 0 where every case was
    scored (the two analyses then coincide).
    """
    parts = []
    for set_ in evaluation_sets(plan):
        ctx.progress(f"intention-to-diagnose accuracy, {set_} set")
        frame = primary_cases(cohort, plan, set_)
        for model in plan.model_names:
            ok = _scored(frame, model, set_, plan)
            rows = frame[frame["model_name"] == model]
            missing = frame["case_id"].nunique() - rows["case_id"].nunique()
            if missing:
                raise StudyvalError(
                    f"{set_} set: {missing} primary case(s) have no row of model {model} in the "
                    "prediction table; intention to diagnose needs every case's status (a case "
                    "the model could not score is a row with status 'failed')"
                )
            not_scored = rows[rows["status"] != "ok"]
            if not_scored["positive"].isna().any():
                raise StudyvalError(
                    f"{set_} set, model {model}: a case without a reference standard cannot be "
                    "counted by intention to diagnose"
                )
            u1 = int(not_scored["positive"].astype(bool).sum())
            u0 = len(not_scored) - u1
            y, s = _labels(ok, plan), ok["score"].to_numpy(float)
            for th in plan.thresholds:
                with estimating(f"model {model}, {set_} set, intention to diagnose"):
                    cm = accuracy.confusion_matrix(
                        y,
                        s,
                        positive=plan.outcome.positive,
                        threshold=th.value,
                        negative=plan.outcome.negative,
                    )
                    r = accuracy.intention_to_diagnose(
                        cm,
                        n_nonevaluable_positive=u1,
                        n_nonevaluable_negative=u0,
                        threshold_status="pre-specified",
                        alpha=plan.alpha,
                        ci_method=plan.proportion_ci,
                    )
                parts.append(
                    _framed(
                        r.to_frame(),
                        set=set_,
                        model=model,
                        threshold_name=th.name,
                        threshold=float(th.value),
                        threshold_status="pre-specified",
                    )
                )
    return {"accuracy_itd": pd.concat(parts, ignore_index=True)}


@REGISTRY.step("predictive_values", produces=[PREDICTIVE_VALUES], needs=("accuracy",))
def predictive_values_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """PPV and NPV of the primary model at the plan's clinical prevalences.

    Reads the 2x2 counts behind sensitivity (TP of TP + FN) and specificity (TN of
    TN + FP) from the ``accuracy`` table at each pre-specified threshold in each
    evaluation set, and calls :func:`studyval.analysis.accuracy.accuracy_from_confusion`
    with each ``prevalence`` (its ``ppv_adjusted`` and ``npv_adjusted``: Bayes'
    theorem with the Mercaldo, Lau & Zhou 2007 logit CI), so that the statistic
    exists once.
    """
    spec = plan.predictive_values
    if spec is None:
        raise StudyvalError(
            "the plan names the predictive_values step but declares no predictive_values "
            "(prevalences and their source)"
        )
    acc = ctx.tables["accuracy"]
    model = plan.primary_model
    keep = (acc["model"] == model) & (acc["threshold_status"] == "pre-specified")
    rows = acc[keep & acc["measure"].isin(["sensitivity", "specificity"])]
    parts = []
    for set_ in evaluation_sets(plan):
        ctx.progress(f"predictive values, {set_} set")
        for th in plan.thresholds:
            at = rows[(rows["set"] == set_) & (rows["threshold_name"] == th.name)]
            counts = at.set_index("measure")
            if set(counts.index) != {"sensitivity", "specificity"}:
                raise StudyvalError(
                    f"the accuracy table lacks sensitivity or specificity of model {model}, "
                    f"{set_} set, threshold {th.name}"
                )
            tp = int(counts.at["sensitivity", "numerator"])
            n1 = int(counts.at["sensitivity", "denominator"])
            tn = int(counts.at["specificity", "numerator"])
            n0 = int(counts.at["specificity", "denominator"])
            cm = accuracy.ConfusionMatrix(
                tp=tp,
                fp=n0 - tn,
                fn=n1 - tp,
                tn=tn,
                threshold=float(th.value),
                positive=plan.outcome.positive,
                negative=plan.outcome.negative,
            )
            for prevalence in spec.prevalences:
                with estimating(
                    f"model {model}, {set_} set, threshold {th.name}, prevalence {prevalence:g}"
                ):
                    r = accuracy.accuracy_from_confusion(
                        cm,
                        threshold_status="pre-specified",
                        alpha=plan.alpha,
                        ci_method=plan.proportion_ci,
                        prevalence=prevalence,
                    )
                for measure in ("ppv", "npv"):
                    m = r.measure(f"{measure}_adjusted")
                    parts.append(
                        {
                            "set": set_,
                            "model": model,
                            "threshold_name": th.name,
                            "threshold": float(th.value),
                            "threshold_status": "pre-specified",
                            "prevalence": float(prevalence),
                            "prevalence_source": spec.source,
                            "measure": measure,
                            "estimate": m.estimate,
                            "ci_low": m.ci_low,
                            "ci_high": m.ci_high,
                            "ci_level": m.ci_level,
                            "sensitivity": r.measure("sensitivity").estimate,
                            "specificity": r.measure("specificity").estimate,
                            "n_positive": n1,
                            "n_negative": n0,
                            "method": f"Bayes' theorem at a declared prevalence; {m.ci_method} CI",
                            "note": m.note,
                        }
                    )
    table = pd.DataFrame(parts)
    return {"predictive_values": table[list(PREDICTIVE_VALUES.columns)]}


@REGISTRY.step("confusion_matrix", produces=[CONFUSION], needs=("youden",))
def confusion_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """The 2x2 counts at each threshold (those the accuracy measures come from)."""
    rows = []
    for set_, model, rule, r in _at_thresholds(cohort, plan, ctx, "confusion matrix"):
        cm = r.confusion
        rows.append(
            {
                "set": set_,
                "model": model,
                "threshold_name": rule.name,
                "threshold": float(rule.value),
                "threshold_status": rule.status,
                "tp": int(cm.tp),
                "fp": int(cm.fp),
                "fn": int(cm.fn),
                "tn": int(cm.tn),
            }
        )
    return {"confusion": pd.DataFrame(rows)}


# ----------------------------------------------------------------------------- comparisons


@REGISTRY.step("compare_auc", produces=[COMPARE_PAIRED])
def compare_auc_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Paired DeLong test of each pair of models on the cases both scored."""
    rows = []
    pos = plan.outcome.positive
    for set_ in evaluation_sets(plan):
        ctx.progress(f"paired DeLong comparisons, {set_} set")
        wide = _wide(primary_cases(cohort, plan, set_), plan.model_names)
        y = _labels(wide, plan)
        for a, b in itertools.combinations(plan.model_names, 2):
            with estimating(f"models {a} and {b}, {set_} set, paired DeLong comparison"):
                c = discrimination.compare_auc(
                    y,
                    wide[a].to_numpy(),
                    wide[b].to_numpy(),
                    positive=pos,
                    alpha=plan.alpha,
                    names=(a, b),
                )
            rows.append({"set": set_, **c.to_dict()})
    return {"compare_paired": pd.DataFrame(rows)}


@REGISTRY.step("compare_auc_k", produces=[COMPARE_JOINT])
def compare_auc_k_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Joint DeLong chi-square test that every model has the same AUC."""
    rows = []
    models = plan.model_names
    for set_ in evaluation_sets(plan):
        ctx.progress(f"joint DeLong comparison, {set_} set")
        wide = _wide(primary_cases(cohort, plan, set_), models)
        with estimating(f"models {', '.join(models)}, {set_} set, joint DeLong comparison"):
            j = discrimination.compare_auc_k(
                _labels(wide, plan),
                {m: wide[m].to_numpy() for m in models},
                positive=plan.outcome.positive,
                alpha=plan.alpha,
            )
        jd = {k: v for k, v in j.to_dict().items() if k != "aucs"}
        jd["names"] = ", ".join(j.names)
        rows.append({"set": set_, "n_cases": len(wide), **jd})
    return {"compare_joint": pd.DataFrame(rows)}


@REGISTRY.step("compare_auc_unpaired", produces=[COMPARE_UNPAIRED])
def compare_auc_unpaired_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Unpaired DeLong test of each model's AUC between the two evaluation sets."""
    sets = evaluation_sets(plan)
    if len(sets) != 2:
        raise StudyvalError(
            "the compare_auc_unpaired step compares two evaluation sets; the plan's sets "
            f"(sets.primary and sets.secondary) name {len(sets)}: {', '.join(sets)}"
        )
    ctx.progress(f"{sets[0]} vs {sets[1]} (unpaired DeLong)")
    pos = plan.outcome.positive
    rows = []
    for model in plan.model_names:
        data = []
        for set_ in sets:
            f = primary_cases(cohort, plan, set_)
            f = f[(f["model_name"] == model) & (f["status"] == "ok")]
            data += [_labels(f, plan), f["score"].to_numpy(float)]
        with estimating(f"model {model}, {sets[0]} vs {sets[1]} set, unpaired DeLong comparison"):
            u = discrimination.compare_auc_unpaired(
                *data, positive=pos, alpha=plan.alpha, names=tuple(sets)
            )
        rows.append({"model": model, **u.to_dict()})
    return {"compare_unpaired": pd.DataFrame(rows)}


# ----------------------------------------------------------------------------- calibration, net benefit


@REGISTRY.step("calibration", produces=[CALIBRATION, CALIBRATION_CURVES, CALIBRATION_HISTOGRAMS])
def calibration_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Calibration of each model's predicted probabilities in the primary set."""
    spec = plan.calibration or CalibrationSpec()
    prim = plan.sets.primary
    ctx.progress(f"calibration, {prim} set")
    frame = primary_cases(cohort, plan, prim)
    results, parts = {}, []
    for k, model in enumerate(plan.model_names):
        ok = _scored(frame, model, prim, plan)
        with estimating(f"model {model}, {prim} set, calibration"):
            res = calibration.calibration(
                _labels(ok, plan),
                ok["score"].to_numpy(float),
                positive=plan.outcome.positive,
                alpha=plan.alpha,
                n_resamples=spec.n_resamples,
                seed=plan.seed + k,
                ci_method=spec.ci_method,
            )
        results[model] = res
        parts.append(_framed(res.to_frame(), set=prim, model=model))
    return {
        "calibration": pd.concat(parts, ignore_index=True),
        "calibration_curves": calibration.curves_frame(results),
        "calibration_histograms": calibration.histograms_frame(results),
    }


@REGISTRY.step("decision_curve", produces=[DECISION_CURVE, DECISION_CURVE_DIFFERENCE])
def decision_curve_step(
    cohort: Cohort, plan: AnalysisPlan, ctx: StepContext
) -> dict[str, pd.DataFrame]:
    """Net benefit over the plan's threshold grid; differences of the plan's model pairs."""
    spec = plan.decision_curve or DecisionCurveSpec()
    prim = plan.sets.primary
    pos = plan.outcome.positive
    models = plan.model_names
    ctx.progress(f"decision curves, {prim} set")
    grid = decision_curve.threshold_grid(
        spec.threshold_from, spec.threshold_to, spec.threshold_step
    )
    wide = _wide(primary_cases(cohort, plan, prim), models)
    y = _labels(wide, plan)
    with estimating(f"models {', '.join(models)}, {prim} set, decision curves"):
        dc = decision_curve.net_benefit(
            y, {m: wide[m].to_numpy() for m in models}, positive=pos, thresholds=grid
        )
    diffs = []
    for k, (a, b) in enumerate(spec.compare):
        with estimating(f"models {a} and {b}, {prim} set, difference in net benefit"):
            d = decision_curve.net_benefit_difference(
                y,
                wide[a].to_numpy(),
                wide[b].to_numpy(),
                positive=pos,
                thresholds=grid,
                n_resamples=spec.n_resamples,
                seed=plan.seed + 100 + k,
                alpha=plan.alpha,
                labels=(a, b),
            )
        diffs.append(d.to_frame())
    difference = (
        pd.concat(diffs, ignore_index=True)
        if diffs
        else pd.DataFrame(columns=list(DECISION_CURVE_DIFFERENCE.columns))
    )
    return {"decision_curve": dc.to_frame(), "decision_curve_difference": difference}


# ----------------------------------------------------------------------------- subgroups


def _subgroup_data(
    preds: pd.DataFrame, plan: AnalysisPlan, sg: Any
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Rows analysed for subgroup ``sg`` and their patient ids where rows are clustered."""
    sets = evaluation_sets(plan) if sg.set == "pooled" else [plan.sets.primary]
    data = preds[preds["split"].isin(sets)]
    if sg.unit == "patient":
        if plan.sets.primary_cases != "all_cases":
            data = data[data[plan.sets.primary_cases].astype(bool)]
        return data, None
    return data, data["patient_id"].to_numpy()


@REGISTRY.step("subgroups", produces=[SUBGROUPS, SUBGROUP_HETEROGENEITY])
def subgroups_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """AUC, sensitivity and specificity of the primary model by subgroup, with heterogeneity.

    Sensitivity and specificity are at the plan's first threshold. Subgroups
    with ``unit: patient`` use the primary cases (independent, DeLong and
    binomial intervals); others use every case of the set with
    patient-clustered bootstrap intervals. A subgroup variable is a column of
    the cohort's prediction table (a derived one is added by the study's join);
    a categorical column keeps its category order.
    """
    if not plan.subgroups:
        raise StudyvalError("the plan names the subgroups step but declares no subgroups")
    ctx.progress("subgroup analyses")
    model = plan.primary_model
    th = plan.thresholds[0]
    n_resamples = (plan.vertebra_level or ClusteredSpec()).n_resamples
    preds = cohort.predictions
    preds = preds[(preds["model_name"] == model) & (preds["status"] == "ok")]
    tables, hets = [], []
    for k, sg in enumerate(plan.subgroups):
        data, clusters = _subgroup_data(preds, plan, sg)
        if sg.variable not in data.columns:
            raise EstimationError(
                f"subgroup variable {sg.variable!r} is neither in the data nor derived by "
                f"{plan.slug}"
            )
        groups = data[sg.variable]
        levels = (
            [str(c) for c in groups.cat.categories]
            if isinstance(groups.dtype, pd.CategoricalDtype)
            else None
        )
        groups = (
            groups.astype(object)
            .where(groups.notna(), None)
            .map(lambda v: v if v is None else str(v))
        )
        y = _labels(data, plan)
        s = data["score"].to_numpy(float)
        common = {
            "positive": plan.outcome.positive,
            "negative": plan.outcome.negative,
            "status": sg.status,
            "alpha": plan.alpha,
            "name": sg.variable,
            "levels": levels,
            "missing": "level",
            "clusters": clusters,
            "n_resamples": n_resamples,
            "seed": plan.seed + 200 + k if clusters is not None else None,
        }
        where = (
            f"{' and '.join(evaluation_sets(plan))} sets"
            if sg.set == "pooled"
            else f"{plan.sets.primary} set"
        )
        with estimating(f"model {model}, {where}, subgroup analysis by {sg.variable}"):
            results = [subgroups.subgroup_auc(y, s, groups.to_numpy(), **common)]
            for measure in ("sensitivity", "specificity"):
                results.append(
                    subgroups.subgroup_accuracy(
                        y,
                        s,
                        groups.to_numpy(),
                        threshold=th.value,
                        threshold_status="pre-specified",
                        measure=measure,
                        ci_method=plan.proportion_ci,
                        **common,
                    )
                )
        for res in results:
            tab = _framed(res.to_frame(), model=model, unit=sg.unit)
            tables.append(tab)
            hets.append(
                _framed(
                    res.heterogeneity.to_frame(),
                    model=model,
                    grouping=sg.variable,
                    status=sg.status,
                    measure=tab["measure"].iloc[0],
                )
            )
    return {
        "subgroups": pd.concat(tables, ignore_index=True),
        "subgroup_heterogeneity": pd.concat(hets, ignore_index=True),
    }


# ----------------------------------------------------------------------------- clustered


@REGISTRY.step("clustered_auc", produces=[CLUSTERED_AUC, CLUSTERED_ACCURACY, CLUSTERED_COMPARE])
def clustered_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Every case of the primary set (several per patient), with patient-clustered intervals.

    AUC with the Obuchowski clustered DeLong variance, sensitivity and
    specificity at the plan's first threshold with a patient-level percentile
    bootstrap, and the paired clustered comparison of each pair of models.
    """
    prim = plan.sets.primary
    pos = plan.outcome.positive
    spec = plan.vertebra_level or ClusteredSpec()
    th = plan.thresholds[0]
    ctx.progress(f"all cases with patient-clustered intervals, {prim} set")
    p = cohort.predictions
    data = p[(p["split"] == prim) & (p["status"] == "ok")]
    auc_rows, acc_rows, cmp_rows = [], [], []
    for k, model in enumerate(plan.model_names):
        d = data[data["model_name"] == model]
        y = _labels(d, plan)
        s = d["score"].to_numpy(float)
        cl = d["patient_id"].to_numpy()
        with estimating(f"model {model}, {prim} set, all cases (patient-clustered AUC)"):
            r = clustered.auc_clustered(y, s, cl, positive=pos, alpha=plan.alpha)
        auc_rows.append({"set": prim, "model": model, **r.to_dict()})
        with estimating(f"model {model}, {prim} set, all cases (patient-clustered accuracy)"):
            acc = accuracy.diagnostic_accuracy(
                y,
                s,
                positive=pos,
                threshold=th.value,
                threshold_status="pre-specified",
                alpha=plan.alpha,
                clusters=cl,
                n_resamples=spec.n_resamples,
                seed=plan.seed + 300 + k,
                ci_method="percentile",
            )
        for measure in ("sensitivity", "specificity"):
            m = acc.measure(measure)
            b = acc.bootstrap[measure]
            acc_rows.append(
                {
                    "set": prim,
                    "model": model,
                    "measure": measure,
                    "threshold": th.value,
                    "threshold_status": "pre-specified",
                    "numerator": int(m.numerator),
                    "denominator": int(m.denominator),
                    "n_patients": int(b.n_clusters),
                    **{
                        key: b.to_dict()[key]
                        for key in (*_INTERVAL, "method", "n_resamples", "n_failed")
                    },
                }
            )
    wide = data.pivot(index="case_id", columns="model_name", values="score")[
        plan.model_names
    ].dropna()
    meta = data.drop_duplicates("case_id").set_index("case_id").loc[wide.index]
    y = _labels(meta, plan)
    for a, b in itertools.combinations(plan.model_names, 2):
        with estimating(f"models {a} and {b}, {prim} set, all cases (clustered DeLong)"):
            c = clustered.compare_auc_clustered(
                y,
                wide[a].to_numpy(),
                wide[b].to_numpy(),
                meta["patient_id"].to_numpy(),
                positive=pos,
                alpha=plan.alpha,
                names=(a, b),
            )
        cmp_rows.append({"set": prim, **c.to_dict()})
    return {
        "vertebra_auc": pd.DataFrame(auc_rows),
        "vertebra_accuracy": pd.DataFrame(acc_rows),
        "vertebra_compare": pd.DataFrame(cmp_rows),
    }
