"""Analysis steps of the multimodal-staging study type (plan schema ``MskAgingPlan``).

A multimodal staging study (``registry.study_type: multimodal_staging``; today
msk-aging) fits its own fusion models (no prediction table): for each
condition, the plan's models (XGBoost, an RBF SVM) on CNN image features,
clinical and laboratory features, by nested patient-grouped cross-validation
on the development cohort (out-of-fold scores) and a final tuned model applied
once to the external cohort. Its steps, named by a plan's
``endpoints[].analyses``:

``multiclass_auc``
    one-vs-rest AUCs (DeLong; clustered DeLong at knee level), macro and
    weighted AUC, Hand & Till's M;
``confusion_matrix``
    confusion matrices, per-class sensitivity and specificity, accuracy
    (Wilson; patient-level percentile bootstrap at knee level);
``weighted_kappa``
    linear and quadratic kappa of the KL grade (patient bootstrap);
``shap``
    modality-level Shapley values (exact TreeSHAP, exact group Shapley) and
    the modality shares with bootstrap intervals;
``ordinal_discrimination``
    cumulative AUCs of the plan's cut points and Harrell's c / ORC of the
    expected class (probabilistic models only);
``calibration``, ``decision_curve``
    one-vs-rest calibration per class and the decision curve of the plan's
    osteoporosis class (probabilistic models only: the SVM gives decision
    values);
``multinomial_calibration``
    flexible multinomial recalibration of the probabilistic models (Van
    Hoorde et al.): the calibrated probability of every class against the
    predicted one, jointly for all classes;
``multinomial_sample_size``
    the development sample size of a multinomial model of each condition
    (Pate et al. 2023) against the registered and analysed numbers;
``kaplan_meier``, ``cox``
    new fragility fractures by predicted (and DXA) stage, deaths censored;
``cumulative_incidence``, ``competing_regression``
    the same with death a competing event: Aalen-Johansen cumulative
    incidence and Gray's test; cause-specific Cox and Fine-Gray models,
    unadjusted and adjusted for the plan's covariates;
``mixed_model``, ``mixed_model_slope``
    functional scores by predicted radiographic OA (REML mixed model), with
    observed means and the patients followed per visit; the random-slope
    sensitivity analysis;
``flow``, ``baseline``, ``sample_size``, ``fusion_models``
    run in every analysis (``fusion_models`` also writes the provenance of
    the image features and refuses a patient the encoder was trained on).

Every knee-level interval is patient-clustered. Each step is pure and
computes no statistic itself: it selects rows, calls :mod:`studyval.analysis`
and lays the results out as its declared tables. The fitted models are shared
by the steps through :func:`fitted_models` (memoised per cohort and plan).

The run's data and fitted fusion models are :mod:`studyval.steps.multimodal_models`;
the fracture steps are :mod:`studyval.steps.multimodal_fractures` and the VAS/OKS
steps :mod:`studyval.steps.multimodal_longitudinal`; :data:`REGISTRY` holds them all.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from studyval.analysis import (
    agreement,
    descriptive,
    multiclass,
    sample_size,
    shap_shares,
    shapley,
)
from studyval.analysis import calibration as cal
from studyval.analysis import calibration_multinomial as mcal
from studyval.analysis import decision_curve as dca
from studyval.analysis import ordinal_discrimination as ordinal
from studyval.analysis import sample_size_multinomial as ssm
from studyval.cohort import Cohort, estimating
from studyval.errors import EstimationError
from studyval.plan_msk_aging import EncoderTrainingOverlapError, MskAgingPlan
from studyval.steps import multimodal_fractures, multimodal_longitudinal
from studyval.steps.common import BASELINE, FLOW, MODELS, SAMPLE_SIZE, sample_size_row
from studyval.steps.multimodal_models import (
    CONDITION_LABEL,
    CONDITIONS,
    SETS,
    TUNING,
    FusionFits,
    Tables,
    _by_condition,
    _check_outcome,
    _classes,
    _columns,
    _features,
    _frames,
    _keyed,
    fitted_models,
)
from studyval.steps.registry import StepContext, StepRegistry, TableSpec

__all__ = [
    "ALWAYS",
    "CONDITIONS",
    "CONDITION_LABEL",
    "REGISTRY",
    "SETS",
    "FusionFits",
    "fitted_models",
]

#: The analysis steps a multimodal-staging plan may name in ``endpoints[].analyses``.
_STEPS = StepRegistry("multimodal_staging")
#: Steps of every run: the tables the report, the checklist and the manifest always read.
ALWAYS = ("flow", "baseline", "sample_size", "fusion_models")


# ----------------------------------------------------------------------------- steps


EMBEDDINGS = TableSpec(
    "embeddings",
    "Provenance of the CNN image features: encoder, weights SHA-256, training data, and the "
    "included patients the encoder was trained or fine-tuned on, per feature group and set",
    _columns(
        "features columns encoder weights_sha256 training_data training_flag overlap_checked "
        "n_internal n_internal_in_training n_external n_external_in_training"
    ),
)


def _embedding_rows(patients: pd.DataFrame, plan: MskAgingPlan) -> list[dict[str, object]]:
    """One row per declared feature group: its provenance and the flagged patients per set."""
    rows = []
    for emb in plan.embeddings:
        flag = emb.training_flag
        marked = (
            patients[flag].astype(bool).to_numpy()
            if flag is not None
            else np.zeros(len(patients), bool)
        )
        row: dict[str, object] = {
            "features": emb.features,
            "columns": ", ".join(getattr(plan.modalities, emb.features)),
            "encoder": " ".join(emb.encoder.split()),
            "weights_sha256": emb.weights_sha256 or "",
            "training_data": " ".join(emb.training_data.split()),
            "training_flag": flag or "",
            "overlap_checked": flag is not None,
        }
        for set_ in SETS:
            in_set = (patients["set"] == set_).to_numpy()
            row[f"n_{set_}"] = int(in_set.sum())
            row[f"n_{set_}_in_training"] = int((marked & in_set).sum()) if flag else -1
        rows.append(row)
    return rows


def _check_encoder_overlap(patients: pd.DataFrame, plan: MskAgingPlan) -> None:
    """Refuse a run whose evaluated patients include any the image encoder was trained on."""
    for row in _embedding_rows(patients, plan):
        if not row["overlap_checked"]:
            continue
        n_dev, n_ext = row["n_internal_in_training"], row["n_external_in_training"]
        if n_dev or n_ext:
            raise EncoderTrainingOverlapError(
                f"{row['features']} features ({row['columns']}): {n_dev} development and {n_ext} "
                f"external included patients are marked in {row['training_flag']} as patients the "
                "encoder was trained or fine-tuned on; their cross-validated and external AUCs would "
                "be optimistic. Re-extract the features with an encoder trained without them (or "
                "re-train the encoder inside each outer fold), or exclude them with a declared "
                "exclusion reason"
            )


@_STEPS.step("fusion_models", produces=[MODELS, TUNING, EMBEDDINGS])
def fusion_models_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Fusion models of both conditions: nested grouped CV, final tuned fit, hash; provenance."""
    _, patients = _frames(cohort, plan)
    _check_encoder_overlap(patients, plan)
    fits = fitted_models(cohort, plan, ctx.progress)
    rows = _embedding_rows(patients, plan)
    embeddings = pd.DataFrame(rows, columns=list(EMBEDDINGS.columns))
    return {"models": fits.models, "tuning": fits.tuning, "embeddings": embeddings}


def _cells(
    cohort: Cohort, plan: MskAgingPlan
) -> Iterator[tuple[dict[str, str], pd.DataFrame, np.ndarray, list[str], str]]:
    """Every (condition, model, set, hospital) evaluated: keys, rows, scores, classes, label."""
    frames, classes = _by_condition(cohort, plan), _classes(plan)
    fits = fitted_models(cohort, plan)
    for cond in CONDITIONS:
        d = frames[cond]
        for m in plan.models:
            s = fits.scores[(cond, m.name)]
            for set_ in SETS:
                for site in ("all", *sorted(d["site"].unique())):
                    sel = (d["set"] == set_).to_numpy()
                    if site != "all":
                        sel = sel & (d["site"] == site).to_numpy()
                    keys = {"condition": cond, "model": m.name, "set": set_, "site": site}
                    where = "" if site == "all" else f", hospital {site}"
                    label = f"model {m.name}, {CONDITION_LABEL[cond]}, {set_} set{where}"
                    yield keys, d[sel], s[sel], classes[cond], label


def _bootstrap(cond: str, d: pd.DataFrame, plan: MskAgingPlan) -> dict[str, object]:
    """Knee level (KL grade): the patient-level percentile bootstrap options; patients: none."""
    if cond != "kl":
        return {}
    return dict(
        clusters=d["patient_id"].to_numpy(),
        ci_method="percentile",
        n_resamples=plan.kl.n_bootstrap,
        seed=plan.seed,
    )


def _blank(v: object) -> str:
    return "" if pd.isna(v) else str(v)


DISCRIMINATION = TableSpec(
    "discrimination",
    "One-vs-rest AUCs, macro and weighted AUC and Hand & Till's M per condition, model, set and "
    "hospital",
    _columns(
        "condition model set site measure class estimate ci_low ci_high method unit n_patients"
    ),
)


@_STEPS.step("multiclass_auc", produces=[DISCRIMINATION], needs=("models",))
def multiclass_auc_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """One-vs-rest AUCs (DeLong; clustered DeLong at knee level) and their averages."""
    ctx.progress("multi-class discrimination (both cohorts, both hospitals)")
    out = []
    for keys, d, s, classes, label in _cells(cohort, plan):
        cond = keys["condition"]
        y = d[f"{cond}_code"].to_numpy(np.int64)
        labels = np.array(classes, dtype=object)[y]
        with estimating(label):
            auc = multiclass.one_vs_rest_auc(
                labels, s, classes=classes, alpha=plan.alpha, **_bootstrap(cond, d, plan)
            ).to_frame()
        auc["unit"] = "patient" if cond == "op" else "knee"
        auc["n_patients"] = d["patient_id"].nunique()
        auc["class"] = auc["class"].map(_blank)
        out.append(_keyed(auc, keys))
    return {"discrimination": pd.concat(out, ignore_index=True)}


ACCURACY = TableSpec(
    "accuracy",
    "Sensitivity and specificity per class, accuracy (and, KL grade, accuracy within one grade) "
    "of the highest-score class, per condition, model, set and hospital",
    _columns(
        "condition model set site class measure estimate ci_low ci_high numerator denominator "
        "ci_method"
    ),
)
CONFUSION = TableSpec(
    "confusion",
    "Confusion-matrix counts (reference class x predicted class) per condition, model, set and "
    "hospital",
    _columns("condition model set site reference predicted n"),
)
_ACCURACY_MEASURES = {
    "op": ["sensitivity", "specificity", "accuracy"],
    "kl": ["sensitivity", "specificity", "accuracy", "accuracy_within_one"],
}


@_STEPS.step("confusion_matrix", produces=[ACCURACY, CONFUSION], needs=("models",))
def confusion_matrix_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Confusion matrices and per-class accuracy (Wilson; patient bootstrap at knee level)."""
    ctx.progress("multi-class confusion (both cohorts, both hospitals)")
    acc_rows, mats = [], []
    for keys, d, s, classes, label in _cells(cohort, plan):
        cond = keys["condition"]
        y = d[f"{cond}_code"].to_numpy(np.int64)
        labels = np.array(classes, dtype=object)[y]
        pred = np.array(classes, dtype=object)[np.argmax(s, axis=1)]
        with estimating(label):
            acc = multiclass.multiclass_confusion(
                labels,
                pred,
                classes=classes,
                ordinal=cond == "kl",
                alpha=plan.alpha,
                **(_bootstrap(cond, d, plan) or {"ci_method": "wilson"}),
            )
        acc_t = acc.to_frame()
        acc_t = acc_t[acc_t["measure"].isin(_ACCURACY_MEASURES[cond])].copy()
        acc_t["class"] = acc_t["class"].map(_blank)
        mat = (
            acc.matrix()
            .reset_index()
            .melt(id_vars="reference standard", var_name="predicted", value_name="n")
            .rename(columns={"reference standard": "reference"})
        )
        acc_rows.append(_keyed(acc_t, keys))
        mats.append(_keyed(mat, keys))
    return {
        "accuracy": pd.concat(acc_rows, ignore_index=True),
        "confusion": pd.concat(mats, ignore_index=True),
    }


ORDINAL = TableSpec(
    "ordinal_discrimination",
    "Discrimination respecting the order of the classes, probabilistic models only: cumulative "
    "AUCs of the plan's splits (class >= cut vs < cut; clustered DeLong at knee level) and "
    "Harrell's c and Van Calster's ORC of the expected class (percentile bootstrap; patients "
    "resampled at knee level), per condition, model, set and hospital",
    _columns(
        "condition model set site measure cut split estimate ci_low ci_high method n_positive "
        "n_negative n_pairs n_patients"
    ),
)


def _is_probabilistic(plan: MskAgingPlan, model: str) -> bool:
    """True for the models whose scores are class probabilities (XGBoost, not the SVM)."""
    return next(m.kind for m in plan.models if m.name == model) == "xgboost"


@_STEPS.step("ordinal_discrimination", produces=[ORDINAL], needs=("models",))
def ordinal_discrimination_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Cumulative AUCs and ordinal c-indices of the probabilistic models."""
    ctx.progress("ordinal discrimination (cumulative AUCs, ordinal c-indices)")
    spec = plan.ordinal
    if spec is None:  # the plan schema requires it with this step
        raise EstimationError("the plan has no ordinal section")
    cuts = {"op": list(spec.op_cuts), "kl": [str(c) for c in spec.kl_cuts]}
    out = []
    for keys, d, s, classes, label in _cells(cohort, plan):
        if not _is_probabilistic(plan, keys["model"]):
            continue
        cond = keys["condition"]
        y = np.array(classes, dtype=object)[d[f"{cond}_code"].to_numpy(np.int64)]
        clusters = d["patient_id"].to_numpy() if cond == "kl" else None
        with estimating(f"{label}, cumulative AUC"):
            cum = ordinal.cumulative_auc(
                y, s, classes=classes, cuts=cuts[cond], clusters=clusters, alpha=plan.alpha
            ).to_frame()
        cum = cum.assign(measure="cumulative_auc", cut=cum["cut"].astype(str), n_pairs=-1)
        with estimating(f"{label}, ordinal c-index"):
            oc = ordinal.ordinal_c_index(
                y,
                ordinal.expected_class(s, classes=classes),
                classes=classes,
                clusters=clusters,
                n_resamples=spec.n_bootstrap,
                seed=plan.seed,
                alpha=plan.alpha,
            ).to_frame()
        oc = oc.assign(cut="", split="all pairs of different classes", n_positive=-1, n_negative=-1)
        frame = pd.concat([cum, oc], ignore_index=True)
        frame["n_patients"] = d["patient_id"].nunique()
        out.append(_keyed(frame[list(ORDINAL.columns[4:])], keys))
    if not out:
        raise EstimationError(
            "ordinal_discrimination: no model of the plan gives class probabilities (the SVM's "
            "decision values have no cumulative probability)"
        )
    return {"ordinal_discrimination": pd.concat(out, ignore_index=True)}


CALIBRATION = TableSpec(
    "calibration",
    "One-vs-rest calibration of each class's probability (intercept, slope, Brier, E statistics), "
    "probabilistic models only, per condition, model and set (all hospitals); knee level: "
    "patient-bootstrap intervals",
    _columns(
        "condition model set class measure estimate ci_low ci_high ci_level ci_method note n "
        "n_events n_patients"
    ),
)
CALIBRATION_CURVE = TableSpec(
    "calibration_curve",
    "Flexible (lowess) one-vs-rest calibration curve of each class, probabilistic models, per "
    "condition, model and set",
    _columns("condition model set class predicted observed ci_low ci_high ci_level"),
)


def _calibration_cells(
    cohort: Cohort, plan: MskAgingPlan
) -> Iterator[tuple[dict[str, str], pd.DataFrame, np.ndarray, list[str], str]]:
    """The cells of :func:`_cells` that calibration reads: probabilistic models, all hospitals."""
    for keys, d, s, classes, label in _cells(cohort, plan):
        if keys["site"] == "all" and _is_probabilistic(plan, keys["model"]):
            yield keys, d, s, classes, label


@_STEPS.step("calibration", produces=[CALIBRATION, CALIBRATION_CURVE], needs=("models",))
def calibration_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """One-vs-rest calibration per class (Wald for patients, patient bootstrap for knees)."""
    ctx.progress("calibration of each class (one-vs-rest)")
    spec = plan.calibration
    if spec is None:  # the plan schema requires it with this step
        raise EstimationError("the plan has no calibration section")
    rows, curves = [], []
    for keys, d, s, classes, label in _calibration_cells(cohort, plan):
        cond = keys["condition"]
        y = d[f"{cond}_code"].to_numpy(np.int64)
        boot = (
            dict(
                clusters=d["patient_id"].to_numpy(),
                n_resamples=spec.n_bootstrap,
                seed=plan.seed,
                ci_method="percentile",
            )
            if cond == "kl"
            else dict(n_resamples=0, seed=None)
        )
        for j, c in enumerate(classes):
            with estimating(f"{label}, calibration of class {c} (one-vs-rest)"):
                r = cal.calibration(y == j, s[:, j], positive=True, alpha=plan.alpha, **boot)
            k = {**keys, "class": c}
            k.pop("site")
            t = r.to_frame().assign(
                n=r.n, n_events=r.n_events, n_patients=d["patient_id"].nunique()
            )
            rows.append(_keyed(t, k))
            curves.append(_keyed(r.curve_frame(), k))
    if not rows:
        raise EstimationError(
            "calibration: no model of the plan gives class probabilities (the SVM's decision "
            "values are not probabilities)"
        )
    return {
        "calibration": pd.concat(rows, ignore_index=True),
        "calibration_curve": pd.concat(curves, ignore_index=True),
    }


MULTINOMIAL_CALIBRATION = TableSpec(
    "multinomial_calibration",
    "Flexible multinomial recalibration (natural splines of the log-ratios; Van Hoorde et al.) of "
    "the probabilistic models: per class the mean predicted and calibrated probability and the "
    "mean and largest absolute difference, per condition, model and set (all hospitals)",
    _columns(
        "condition model set class n n_events mean_predicted mean_calibrated e_avg e_max df "
        "n_coefficients deviance iterations n_patients method"
    ),
)
MULTINOMIAL_CALIBRATION_CURVE = TableSpec(
    "multinomial_calibration_curve",
    "Flexible multinomial calibration curve of each class: the calibrated probability (lowess of "
    "the recalibration model's fitted probability) on a grid of predicted probabilities, per "
    "condition, model and set",
    _columns("condition model set class predicted calibrated n n_events df"),
)


@_STEPS.step(
    "multinomial_calibration",
    produces=[MULTINOMIAL_CALIBRATION, MULTINOMIAL_CALIBRATION_CURVE],
    needs=("models",),
)
def multinomial_calibration_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Flexible multinomial recalibration of all classes jointly (probabilistic models)."""
    ctx.progress("flexible multinomial calibration")
    spec = plan.calibration
    if spec is None or spec.multinomial_df is None:  # the plan schema requires it with this step
        raise EstimationError("the plan has no calibration.multinomial_df")
    rows, curves = [], []
    for keys, d, s, classes, label in _calibration_cells(cohort, plan):
        cond = keys["condition"]
        y = np.array(classes, dtype=object)[d[f"{cond}_code"].to_numpy(np.int64)]
        with estimating(f"{label}, flexible multinomial calibration"):
            r = mcal.multinomial_calibration(y, s, classes=classes, df=spec.multinomial_df)
        k = {key: v for key, v in keys.items() if key != "site"}
        summary = r.summary_frame().assign(n_patients=d["patient_id"].nunique(), method=r.method)
        rows.append(_keyed(summary, k))
        curves.append(_keyed(r.to_frame(), k))
    if not rows:
        raise EstimationError(
            "multinomial_calibration: no model of the plan gives class probabilities (the SVM's "
            "decision values are not probabilities)"
        )
    return {
        "multinomial_calibration": pd.concat(rows, ignore_index=True),
        "multinomial_calibration_curve": pd.concat(curves, ignore_index=True),
    }


DECISION_CURVE = TableSpec(
    "decision_curve",
    "Net benefit of acting on the predicted probability of the plan's class (osteoporosis) against "
    "treat all and treat none, probabilistic models, per set (all hospitals)",
    _columns(
        "set class model threshold net_benefit standardized_net_benefit "
        "interventions_avoided_per_100 tp fp n"
    ),
)


@_STEPS.step("decision_curve", produces=[DECISION_CURVE], needs=("models",))
def decision_curve_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Decision curve of the probability of the plan's osteoporosis class."""
    ctx.progress("decision curve (osteoporosis)")
    spec = plan.calibration
    if spec is None:  # the plan schema requires it with this step
        raise EstimationError("the plan has no calibration section")
    grid = dca.threshold_grid(spec.threshold_from, spec.threshold_to, spec.threshold_step)
    j = plan.osteoporosis.classes.index(spec.dca_class)
    rows = []
    for set_ in SETS:
        probs, y = {}, None
        for keys, d, s, _, _ in _calibration_cells(cohort, plan):
            if keys["condition"] == "op" and keys["set"] == set_:
                probs[keys["model"]] = s[:, j]
                y = d["op_code"].to_numpy(np.int64) == j
        if not probs:
            raise EstimationError(
                "decision_curve: no model of the plan gives probabilities of "
                f"{spec.dca_class} (the SVM's decision values are not probabilities)"
            )
        with estimating(f"{set_} set, decision curve of {spec.dca_class}"):
            r = dca.net_benefit(y, probs, positive=True, thresholds=grid)
        rows.append(_keyed(r.to_frame(), {"set": set_, "class": spec.dca_class}))
    return {"decision_curve": pd.concat(rows, ignore_index=True)}


KL_AGREEMENT = TableSpec(
    "kl_agreement",
    "KL grade: weighted kappas, accuracy and accuracy within one grade (patient-bootstrap CIs) "
    "per model, set and hospital",
    _columns(
        "condition model set site measure estimate ci_low ci_high ci_method n_knees n_patients"
    ),
)


@_STEPS.step("weighted_kappa", produces=[KL_AGREEMENT], needs=("models", "accuracy"))
def weighted_kappa_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Weighted kappas of the KL grade (patient bootstrap), beside accuracy from ``accuracy``."""
    ctx.progress("KL grade agreement (weighted kappa)")
    acc = ctx.tables["accuracy"]
    cols = ["measure", "estimate", "ci_low", "ci_high", "ci_method"]
    out = []
    for keys, d, s, _, label in _cells(cohort, plan):
        if keys["condition"] != "kl":
            continue
        y = d["kl_code"].to_numpy(np.int64) + plan.kl.classes[0]
        pred = np.argmax(s, axis=1) + plan.kl.classes[0]
        rows = []
        for wname in plan.kl.kappa_weights:
            with estimating(label):
                kp = agreement.weighted_kappa(
                    y,
                    pred,
                    weights=wname,
                    categories=plan.kl.classes,
                    alpha=plan.alpha,
                    **_bootstrap("kl", d, plan),
                )
            kappa = (f"kappa_{wname}", kp.estimate, kp.ci_low, kp.ci_high, kp.method)
            rows.append(dict(zip(cols, kappa, strict=True)))
        same = np.logical_and.reduce([acc[k] == v for k, v in keys.items()])
        overall = acc[same & acc["measure"].isin(["accuracy", "accuracy_within_one"])]
        frame = pd.concat([pd.DataFrame(rows), overall[cols]], ignore_index=True)
        frame = frame.assign(n_knees=len(d), n_patients=d["patient_id"].nunique())
        out.append(_keyed(frame, keys))
    return {"kl_agreement": pd.concat(out, ignore_index=True)}


SHAP_SUMMARY = TableSpec(
    "shap_summary",
    "Mean absolute Shapley contribution of each modality, and its share, per class, condition, "
    "model and set",
    _columns("condition model set class modality mean_abs share n efficiency_gap"),
)
SHAP_DECISIONS = TableSpec(
    "shap_decisions",
    "Per decision (the predicted class), the modality that contributed most, per condition, model"
    " and set",
    _columns("condition model set class modality n_decisions n_dominant"),
)


SHAP_SHARES = TableSpec(
    "shap_shares",
    "Share of each modality in the mean absolute Shapley contribution with percentile bootstrap "
    "intervals over the explained cases (patients resampled for knees; models held fixed), per "
    "class, condition, model and set",
    _columns(
        "condition model set class modality share ci_low ci_high se n n_clusters n_resamples method"
    ),
)


@_STEPS.step("shap", produces=[SHAP_SUMMARY, SHAP_DECISIONS, SHAP_SHARES], needs=("models",))
def shap_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Modality-level Shapley values: exact TreeSHAP (XGBoost), exact group Shapley (SVM)."""
    ctx.progress("modality contributions (SHAP)")
    frames, classes, fits = _by_condition(cohort, plan), _classes(plan), fitted_models(cohort, plan)
    rng = np.random.default_rng(plan.seed + 7)
    summary, decisions, shares = [], [], []
    for cond in CONDITIONS:
        d = frames[cond]
        cols, groups = _features(plan, cond)
        X = d[cols].to_numpy(float)
        dev = np.flatnonzero((d["set"] == "internal").to_numpy())
        background = X[
            np.sort(rng.choice(dev, size=min(plan.shap.background_size, len(dev)), replace=False))
        ]
        for m in plan.models:
            est = fits.finals[(cond, m.name)].estimator
            for set_ in plan.shap.sets:
                pool = np.flatnonzero((d["set"] == set_).to_numpy())
                pick = np.random.default_rng(plan.seed + 11).choice(
                    pool, size=min(plan.shap.max_cases, len(pool)), replace=False
                )
                sel = np.zeros(len(d), bool)
                sel[pick] = True
                if m.kind == "xgboost":
                    res = shapley.tree_group_shap(est, X[sel], groups=groups, classes=classes[cond])
                else:
                    res = shapley.group_shapley(
                        est.decision_function,
                        X[sel],
                        background,
                        groups=groups,
                        classes=classes[cond],
                        scale="SVM one-vs-rest decision value",
                    )
                keys = {"condition": cond, "model": m.name, "set": set_}
                sm = res.to_frame()
                sm["efficiency_gap"] = res.efficiency_gap()
                dc = res.decisions(np.argmax(fits.scores[(cond, m.name)][sel], axis=1))
                summary.append(_keyed(sm, keys))
                decisions.append(_keyed(dc, keys))
                with estimating(
                    f"model {m.name}, {CONDITION_LABEL[cond]}, {set_} set, SHAP shares"
                ):
                    sh = shap_shares.modality_shares(
                        res.contributions,
                        classes=res.classes,
                        groups=res.groups,
                        clusters=d.loc[sel, "patient_id"].to_numpy() if cond == "kl" else None,
                        n_resamples=plan.shap.n_bootstrap,
                        seed=plan.seed,
                        alpha=plan.alpha,
                    )
                shares.append(
                    _keyed(
                        sh.to_frame().assign(
                            n=sh.n,
                            n_clusters=sh.n_clusters,
                            n_resamples=sh.n_resamples,
                            method=f"{res.method}; {sh.method}",
                        ),
                        keys,
                    )
                )
    return {
        "shap_summary": pd.concat(summary, ignore_index=True),
        "shap_decisions": pd.concat(decisions, ignore_index=True),
        "shap_shares": pd.concat(shares, ignore_index=True),
    }


# ----------------------------------------------------------------------------- flow, baseline, sample size


@_STEPS.step("flow", produces=[FLOW])
def flow_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Screened, excluded by reason, included by cohort and hospital; knees; outcomes.

    Also checks, before any model is fitted, that every set has every class
    (and a fracture, where the plan analyses fractures).
    """
    ctx.progress("participant flow and baseline characteristics")
    knees, patients = _frames(cohort, plan)
    _check_outcome(knees, patients, plan)
    _check_encoder_overlap(patients, plan)
    clin = cohort.clinical
    pat_all = clin.drop_duplicates("patient_id")
    rows: list[dict[str, object]] = []

    def add(
        stage: str,
        n: int,
        *,
        set_: str = "",
        site: str = "",
        group: str = "",
        knees_: int | None = None,
    ) -> None:
        rows.append(
            {
                "stage": stage,
                "set": set_,
                "site": site,
                "group": group,
                "n_patients": int(n),
                "n_knees": -1 if knees_ is None else int(knees_),
            }
        )

    add("screened", len(pat_all), knees_=len(clin))
    excl = pat_all[pat_all["exclusion_reason"] != "none"]
    add("excluded", len(excl), knees_=int((clin["exclusion_reason"] != "none").sum()))
    for reason in clin["exclusion_reason"].cat.categories:
        if reason != "none":
            add(
                "excluded_reason",
                int((excl["exclusion_reason"] == reason).sum()),
                group=str(reason),
            )
    add("included", len(patients), knees_=len(knees))
    for set_, site, p, k in _set_sites(knees, patients):
        add("included_set", len(p), set_=set_, site=site, knees_=len(k))
        if site != "all":
            continue
        add("one_knee_only", int((k.groupby("patient_id").size() == 1).sum()), set_=set_, site=site)
        for i, c in enumerate(plan.osteoporosis.classes):
            add("op_stage", int((p["op_code"] == i).sum()), set_=set_, site=site, group=c)
        for i, c in enumerate(plan.kl.classes):
            add(
                "kl_grade",
                0,
                set_=set_,
                site=site,
                group=str(c),
                knees_=int((k["kl_code"] == i).sum()),
            )
        ev = p[plan.fracture.event].astype(bool)
        add("fracture", int(ev.sum()), set_=set_, site=site, group="new fragility fracture")
        add("fracture", int((~ev).sum()), set_=set_, site=site, group="censored")
    return {"flow": pd.DataFrame(rows)}


def _set_sites(
    knees: pd.DataFrame, patients: pd.DataFrame
) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame]]:
    """(set, hospital, patients, knees) for each set, all hospitals first, then each hospital."""
    for set_ in SETS:
        for site in ("all", *sorted(patients["site"].unique())):
            p = patients[
                (patients["set"] == set_) & ((patients["site"] == site) if site != "all" else True)
            ]
            k = knees[(knees["set"] == set_) & ((knees["site"] == site) if site != "all" else True)]
            yield set_, site, p, k


@_STEPS.step("baseline", produces=[BASELINE])
def baseline_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Mean (SD) and n (%) by cohort and hospital, from :func:`~studyval.analysis.descriptive.baseline_table`."""
    knees, patients = _frames(cohort, plan)
    cont = [
        *("age", "bmi_kg_m2", "ctx_ng_ml", "p1np_ng_ml", "calcium_mmol_l", "phosphorus_mmol_l"),
        plan.osteoporosis.t_score,
        plan.fracture.time,
    ]
    sites = sorted(patients["site"].unique())
    pats = patients.assign(
        sex=patients["sex"].astype(str),
        dxa_stage=pd.Categorical.from_codes(patients["op_code"], plan.osteoporosis.classes),
    )
    kl = pd.Categorical.from_codes(knees["kl_code"], [str(c) for c in plan.kl.classes])
    kn = knees.assign(**{"kl_grade (knees)": kl})
    rows = []
    for set_ in SETS:
        p, k = pats[pats["set"] == set_], kn[kn["set"] == set_]
        by_site = dict(group="site", group_order=sites)
        tab = pd.concat(
            [
                descriptive.baseline_table(p, continuous=cont, digits=2, **by_site),
                descriptive.baseline_table(p, categorical=["sex", "dxa_stage"], **by_site),
                descriptive.baseline_table(k, categorical=["kl_grade (knees)"], **by_site).assign(
                    unit="knees"
                ),
            ],
            ignore_index=True,
        )
        tab["group"] = tab["group"].replace({descriptive.OVERALL: "all"})
        for site in ("all", *sites):
            t = tab[tab["group"] == site]
            n = t[t["variable"] == "n"]
            n_patients, n_knees = n.loc[n["unit"] != "knees", "n"].iloc[0], n["n"].iloc[-1]
            shown = t[t["statistic"].isin(["mean_sd", "n_pct"])]
            shown = shown[(shown["variable"] != "sex") | (shown["level"] == "F")]
            count = {
                "variable": "n",
                "level": "",
                "value": f"{n_patients} patients, {n_knees} knees",
            }
            values = shown[["variable", "level", "display"]].rename(columns={"display": "value"})
            rows.append(pd.concat([pd.DataFrame([count]), values]).assign(column=f"{set_}:{site}"))
    out = pd.concat(rows, ignore_index=True)
    return {"baseline": out[["column", "variable", "level", "value"]]}


@_STEPS.step("sample_size", produces=[SAMPLE_SIZE])
def sample_size_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Patients needed for each one-vs-rest AUC of the osteoporosis stage, against the registry.

    :func:`~studyval.analysis.sample_size.auc_precision_cohort` per stage,
    checked against the registered development and external numbers; the
    binding check (``check == "registered"``) is the external number against
    the stage that needs the most patients.
    """
    _, patients = _frames(cohort, plan)
    ss = plan.sample_size
    classes = plan.osteoporosis.classes
    need = {
        c: sample_size.auc_precision_cohort(
            auc=ss.auc, half_width=ss.half_width, prevalence=ss.prevalence[c], alpha=plan.alpha
        )
        for c in classes
    }
    binding = max(classes, key=lambda c: need[c].n_total)
    rows = []
    for i, c in enumerate(classes):
        r = need[c]
        basis = (
            f"a one-vs-rest AUC of {ss.auc:g} for {c} estimated to +/- {ss.half_width:g} "
            f"(prevalence {r.prevalence:g}, Hanley-McNeil)"
        )
        for set_, registered, obs_set in (
            ("development", ss.registered_development, "internal"),
            ("external", ss.registered_external, "external"),
        ):
            p = patients[patients["set"] == obs_set]
            label = f"{set_} patients"
            chk = sample_size.check_registered(r.n_total, registered, label=label, basis=basis)
            check = "registered" if (set_, c) == ("external", binding) else "class"
            row = sample_size_row(
                chk, check=check, quantity=label, assumption=basis, method=r.method
            )
            rows.append(
                {
                    "check": check,
                    "set": set_,
                    "class": c,
                    "prevalence": r.prevalence,
                    "auc": r.auc,
                    "half_width": r.half_width,
                    "required_cases": r.required_cases,
                    "required_controls": r.required_controls,
                    "required_unrounded": chk.required_unrounded,
                    "required": chk.required,
                    "registered": chk.registered,
                    "observed_patients": len(p),
                    "observed_cases": int((p["op_code"] == i).sum()),
                    "adequate": chk.adequate,
                    "message": chk.message,
                    **row,
                }
            )
    return {"sample_size": pd.DataFrame(rows)}


SAMPLE_SIZE_MULTINOMIAL = TableSpec(
    "sample_size_multinomial",
    "Development sample size of a multinomial model of each condition (Pate et al. 2023): "
    "criterion (i) per pair of classes, (ii), (iii) and the final size, from the plan's planning "
    "assumptions",
    _columns(
        "condition unit criterion pair class_k class_r share phi cstatistic r2_cs max_r2_cs "
        "r2_nagelkerke n_submodel n_unrounded required expected_shrinkage"
    ),
)
SAMPLE_SIZE_MULTINOMIAL_CHECK = TableSpec(
    "sample_size_multinomial_check",
    "The development sample size of each condition's multinomial model against the registered "
    "development patients and the development patients analysed; for the KL grade (unit the "
    "knee) also the development knees analysed, adequate only if the two knees of a patient were "
    "independent (independent_units false): adequacy is judged on the patients (conservative)",
    _columns(
        "condition unit check quantity required_unrounded required available shortfall adequate "
        "governing binding_pair parameters r2_source message independent_units"
    ),
)

#: Appended to the verdict of a count of knees: the criteria assume independent units.
_KNEES_NOT_INDEPENDENT = (
    " This holds only if the knees were independent: the two knees of a patient are correlated, "
    "so adequacy is judged on the development patients (conservative)."
)


@_STEPS.step(
    "multinomial_sample_size", produces=[SAMPLE_SIZE_MULTINOMIAL, SAMPLE_SIZE_MULTINOMIAL_CHECK]
)
def multinomial_sample_size_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Pate et al. (2023) development sample size of each condition, against the registry."""
    ctx.progress("development sample size of the multinomial models (Pate et al.)")
    spec = plan.sample_size.multinomial
    if spec is None:  # the plan schema requires it with this step
        raise EstimationError("the plan has no sample_size.multinomial")
    knees, patients = _frames(cohort, plan)
    observed = {"op": patients, "kl": knees}
    unit = {"op": "patients", "kl": "knees"}
    tables, checks = [], []
    for cond in CONDITIONS:
        values = getattr(spec, cond)
        r = ssm.pate_multinomial(
            proportions=list(values.proportions.values()),
            parameters=spec.parameters,
            cstatistic=list(values.cstatistic.values()),
            r2_nagelkerke_overall=spec.r2_nagelkerke_overall,
            classes=list(values.proportions),
        )
        tables.append(_keyed(r.to_frame(), {"condition": cond, "unit": unit[cond]}))
        basis = f"the Pate et al. (2023) calculation for a {len(r.classes)}-class model"
        n_dev = int((observed[cond]["set"] == "internal").sum())
        rows = [
            (
                "registered",
                unit[cond],
                "development patients"
                if cond == "op"
                else "development patients (taken as one knee each)",
                plan.sample_size.registered_development,
                True,
            ),
            ("observed (internal)", unit[cond], f"development {unit[cond]}", n_dev, cond == "op"),
        ]
        if cond == "kl":
            # the conservative judgement, one independent knee per patient: the effective number
            # of independent knees (knees / design effect 1 + (m - 1) rho, m <= 2 knees per
            # patient) is at least the number of patients for any within-patient correlation rho
            n_patients = int(knees.loc[knees["set"] == "internal", "patient_id"].nunique())
            rows.append(
                (
                    "observed (internal)",
                    "patients",
                    "development patients (taken as one knee each)",
                    n_patients,
                    True,
                )
            )
        for check, row_unit, quantity, available, independent in rows:
            chk = sample_size.check_registered(
                r.n,
                available,
                label=quantity,
                basis=basis,
                counted="registered" if check == "registered" else "analysed",
            )
            checks.append(
                {
                    "condition": cond,
                    "unit": row_unit,
                    "check": check,
                    "quantity": quantity,
                    "required_unrounded": float(chk.required_unrounded),
                    "required": int(chk.required),
                    "available": int(chk.registered),
                    "shortfall": int(chk.shortfall),
                    "adequate": bool(chk.adequate),
                    "governing": r.governing,
                    "binding_pair": r.binding_pair,
                    "parameters": r.parameters,
                    "r2_source": r.r2_source,
                    "message": chk.message + ("" if independent else _KNEES_NOT_INDEPENDENT),
                    "independent_units": independent,
                }
            )
    return {
        "sample_size_multinomial": pd.concat(tables, ignore_index=True),
        "sample_size_multinomial_check": pd.DataFrame(checks),
    }


#: Every step of the study type: the ones above, the fracture and the longitudinal steps.
REGISTRY = _STEPS.including(
    multimodal_fractures.REGISTRY, multimodal_longitudinal.REGISTRY, name="multimodal_staging"
)
