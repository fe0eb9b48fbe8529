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
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from studyval.analysis import (
    agreement,
    delta_adjustment,
    descriptive,
    fusion,
    multiclass,
    random_slope,
    sample_size,
    shap_shares,
    shapley,
)
from studyval.analysis import calibration as cal
from studyval.analysis import competing_risks as cr
from studyval.analysis import decision_curve as dca
from studyval.analysis import mixed_models as lmm
from studyval.analysis import ordinal_discrimination as ordinal
from studyval.analysis import survival as sv
from studyval.cohort import Cohort, estimating
from studyval.errors import EstimationError
from studyval.plan import requested_steps
from studyval.plan_msk_aging import EncoderTrainingOverlapError, MskAgingPlan
from studyval.steps.common import BASELINE, FLOW, MODELS, SAMPLE_SIZE, sample_size_row
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

SETS = ("internal", "external")
CONDITIONS = ("op", "kl")
CONDITION_LABEL = {"op": "Osteoporosis stage", "kl": "KL grade"}
#: What a step returns: its tables by declared name.
Tables = dict[str, pd.DataFrame]

#: The analysis steps a multimodal-staging plan may name in ``endpoints[].analyses``.
REGISTRY = StepRegistry("multimodal_staging")
#: Steps of every run: the tables the report, the checklist and the manifest always read.
ALWAYS = ("flow", "baseline", "sample_size", "fusion_models")


def _columns(names: str) -> tuple[str, ...]:
    """Column names written with spaces between them."""
    return tuple(names.split())


# ----------------------------------------------------------------------------- data


def _features(plan: MskAgingPlan, condition: str) -> tuple[list[str], dict[str, list[int]]]:
    """Feature columns of a condition's models and their modality (column indices)."""
    m = plan.modalities
    image = list(m.image_op if condition == "op" else m.image_kl)
    clinical_ = ["female" if c == "sex" else c for c in m.clinical]
    cols = image + clinical_ + list(m.laboratory)
    a, b = len(image), len(image) + len(clinical_)
    groups = {
        "image": list(range(a)),
        "clinical": list(range(a, b)),
        "laboratory": list(range(b, len(cols))),
    }
    return cols, groups


def _frames(cohort: Cohort, plan: MskAgingPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Included knees and included patients, with derived columns (set, female, stage)."""
    clin = cohort.clinical
    knees = clin[clin["exclusion_reason"] == "none"].copy()
    knees["female"] = (knees["sex"].astype(str) == "F").astype(float)
    knees["set"] = np.where(
        knees["cohort"].astype(str) == plan.cv.development_cohort,
        "internal",
        np.where(knees["cohort"].astype(str) == plan.cv.external_cohort, "external", "other"),
    )
    knees["site"] = knees["site"].astype(str)
    knees = knees.sort_values(["patient_id", "knee_side"]).reset_index(drop=True)
    op = plan.osteoporosis
    t = knees[op.t_score].astype(float).to_numpy()
    knees["op_code"] = np.where(t >= op.normal_min, 0, np.where(t <= op.osteoporosis_max, 2, 1))
    knees["kl_code"] = knees[plan.kl.grade].astype(int) - plan.kl.classes[0]
    patients = knees.drop_duplicates("patient_id").reset_index(drop=True)
    return knees, patients


def _by_condition(cohort: Cohort, plan: MskAgingPlan) -> dict[str, pd.DataFrame]:
    """The analysis unit of each condition: patients (osteoporosis stage), knees (KL grade)."""
    knees, patients = _frames(cohort, plan)
    return {"op": patients, "kl": knees}


def _classes(plan: MskAgingPlan) -> dict[str, list[str]]:
    return {"op": list(plan.osteoporosis.classes), "kl": [str(c) for c in plan.kl.classes]}


def _check_outcome(knees: pd.DataFrame, patients: pd.DataFrame, plan: MskAgingPlan) -> None:
    """Raise before any model is fitted where a set lacks a class or (if analysed) a fracture."""
    for set_ in SETS:
        if not (patients["set"] == set_).any():
            raise EstimationError(f"the {set_} set has no included patients")
        for cond, frame, classes in (
            ("op", patients, plan.osteoporosis.classes),
            ("kl", knees, plan.kl.classes),
        ):
            codes = set(frame.loc[frame["set"] == set_, f"{cond}_code"].tolist())
            absent = [str(c) for i, c in enumerate(classes) if i not in codes]
            if absent:
                raise EstimationError(
                    f"{set_} set: no case of {CONDITION_LABEL[cond]} {', '.join(absent)}; "
                    "one-vs-rest AUCs and per-class sensitivity cannot be estimated"
                )
    fracture_steps = {"kaplan_meier", "cox", "cumulative_incidence", "competing_regression"}
    if not fracture_steps & {name for _, name in requested_steps(plan)}:
        return
    fr = plan.fracture
    for set_ in SETS:
        sub = patients[patients["set"] == set_]
        if not sub[fr.event].astype(bool).any():
            raise EstimationError(
                f"{set_} set: no new fragility fracture ({fr.event} is false for all "
                f"{len(sub)} included patients, each censored at the end of {fr.time}): the "
                "Kaplan-Meier incidence, the log-rank test and the Cox model of fractures by "
                "predicted stage (secondary endpoint fragility_fracture) cannot be estimated"
            )


def _keyed(frame: pd.DataFrame, keys: dict[str, object]) -> pd.DataFrame:
    """``frame`` with the key columns first."""
    f = frame.copy()
    for i, (k, v) in enumerate(keys.items()):
        f.insert(i, k, v)
    return f


# ----------------------------------------------------------------------------- fusion models


@dataclass(frozen=True)
class FusionFits:
    """The fitted fusion models of one run.

    Attributes
    ----------
    scores : mapping of (condition, model) to ndarray, shape (n, k)
        Score of every analysis unit (patients for ``op``, knees for ``kl``):
        out-of-fold in the development cohort, the final model's in the external one.
    finals : mapping of (condition, model) to TunedModel
        The final models (tuned on the whole development cohort).
    tuning, models : DataFrame
        The ``tuning`` and ``models`` tables.
    """

    scores: Mapping[tuple[str, str], np.ndarray]
    finals: Mapping[tuple[str, str], fusion.TunedModel]
    tuning: pd.DataFrame
    models: pd.DataFrame


#: One run's fits, shared by its steps: ``(weak reference to the cohort, plan JSON, fits)``.
_FITTED: list[tuple[weakref.ref, str, FusionFits]] = []


def fitted_models(
    cohort: Cohort, plan: MskAgingPlan, progress: Callable[[str], None] = lambda _: None
) -> FusionFits:
    """The fusion models of ``cohort`` under ``plan``, fitted once per cohort and plan.

    Several steps use the fitted models (their scores, the final estimators
    for SHAP); a step table cannot carry an estimator, so the fits are
    memoised on the cohort object (weakly: nothing outlives the run) and the
    plan's JSON. Fitting is deterministic, so this changes no number.
    """
    key = plan.model_dump_json()
    for ref, k, fits in _FITTED:
        if ref() is cohort and k == key:
            return fits
    fits = _fit_models(cohort, plan, progress)
    # dropped with the cohort: no fit outlives its run
    _FITTED[:] = [(weakref.ref(cohort, lambda _: _FITTED.clear()), key, fits)]
    return fits


def _fit_models(cohort: Cohort, plan: MskAgingPlan, progress: Callable[[str], None]) -> FusionFits:
    """Nested grouped CV (out-of-fold scores, development) and the final model (external)."""
    frames, classes = _by_condition(cohort, plan), _classes(plan)
    scores: dict[tuple[str, str], np.ndarray] = {}
    finals: dict[tuple[str, str], fusion.TunedModel] = {}
    tuning_rows, model_rows = [], []
    for cond in CONDITIONS:
        d = frames[cond]
        cols, _ = _features(plan, cond)
        X = d[cols].to_numpy(float)
        y = d[f"{cond}_code"].to_numpy(np.int64)
        g = d["patient_id"].astype(str).to_numpy()
        dev = (d["set"] == "internal").to_numpy()
        ext = (d["set"] == "external").to_numpy()
        for k, m in enumerate(plan.models):
            progress(f"{CONDITION_LABEL[cond]}: nested grouped cross-validation of {m.name}")
            seed = plan.seed + 100 * CONDITIONS.index(cond) + 10 * k
            common = dict(kind=m.kind, fixed=m.fixed, grid=m.grid, n_classes=len(classes[cond]))
            ncv = fusion.nested_cv(
                X[dev],
                y[dev],
                g[dev],
                outer_folds=plan.cv.outer_folds,
                inner_folds=plan.cv.inner_folds,
                seed=seed,
                **common,
            )
            final = fusion.tune_and_fit(
                X[dev], y[dev], g[dev], inner_folds=plan.cv.inner_folds, seed=seed, **common
            )
            s = np.full((len(d), len(classes[cond])), np.nan)
            s[dev] = ncv.scores
            s[ext] = fusion.predict_scores(final.estimator, X[ext])
            scores[(cond, m.name)] = s
            finals[(cond, m.name)] = final
            tuning_rows.append(
                ncv.tuning.assign(condition=cond, model=m.name, stage="nested (outer fold)")
            )
            tuning_rows.append(
                final.tuning.assign(condition=cond, model=m.name, stage="final", fold=-1)
            )
            model_rows.append(
                {
                    "model": f"{cond}/{m.name}",
                    "model_version": fusion.model_sha256(final),
                    "condition": cond,
                    "name": m.name,
                    "kind": m.kind,
                    "role": m.role,
                    "features": ", ".join(cols),
                    "hyperparameters": json.dumps(final.params, sort_keys=True, default=str),
                    "selected": json.dumps(final.selected, sort_keys=True),
                    "n_train_rows": final.n_rows,
                    "n_train_patients": final.n_groups,
                    "score": "probability" if m.kind == "xgboost" else "one-vs-rest decision value",
                }
            )
    tuning = pd.concat(tuning_rows, ignore_index=True)[list(TUNING.columns)]
    return FusionFits(scores, finals, tuning, pd.DataFrame(model_rows))


def _predicted(cohort: Cohort, plan: MskAgingPlan, cond: str) -> np.ndarray:
    """Class code predicted by the primary model (highest score) for every unit of ``cond``."""
    return np.argmax(fitted_models(cohort, plan).scores[(cond, plan.primary_model)], axis=1)


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


TUNING = TableSpec(
    "tuning",
    "Mean inner macro AUC of every grid point: per outer fold (nested CV) and for the final model",
    _columns("condition model stage fold params mean_macro_auc selected"),
)


@REGISTRY.step("fusion_models", produces=[MODELS, TUNING, EMBEDDINGS])
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


@REGISTRY.step("multiclass_auc", produces=[DISCRIMINATION], needs=("models",))
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


@REGISTRY.step("confusion_matrix", produces=[ACCURACY, CONFUSION], needs=("models",))
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


@REGISTRY.step("ordinal_discrimination", produces=[ORDINAL], needs=("models",))
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


@REGISTRY.step("calibration", produces=[CALIBRATION, CALIBRATION_CURVE], needs=("models",))
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


DECISION_CURVE = TableSpec(
    "decision_curve",
    "Net benefit of acting on the predicted probability of the plan's class (osteoporosis) against "
    "treat all and treat none, probabilistic models, per set (all hospitals)",
    _columns(
        "set class model threshold net_benefit standardized_net_benefit "
        "interventions_avoided_per_100 tp fp n"
    ),
)


@REGISTRY.step("decision_curve", produces=[DECISION_CURVE], needs=("models",))
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


@REGISTRY.step("weighted_kappa", produces=[KL_AGREEMENT], needs=("models", "accuracy"))
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


@REGISTRY.step("shap", produces=[SHAP_SUMMARY, SHAP_DECISIONS, SHAP_SHARES], needs=("models",))
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


# ----------------------------------------------------------------------------- flow, baseline, sample size


@REGISTRY.step("flow", produces=[FLOW])
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


@REGISTRY.step("baseline", produces=[BASELINE])
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


@REGISTRY.step("sample_size", produces=[SAMPLE_SIZE])
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


LMM = TableSpec(
    "lmm",
    "REML mixed model (random patient intercept) of each functional score by radiographic OA: "
    "fixed effects and variance components",
    _columns(
        "outcome grouping term estimate se ci_low ci_high p_value n_obs n_patients optimiser "
        "optimisers_tried icc"
    ),
)
LMM_FOLLOWED = TableSpec(
    "lmm_followed",
    "Patients with each functional score at each visit, by radiographic OA and overall",
    _columns("outcome grouping month oa n_followed n_included"),
)
LMM_MEANS = TableSpec(
    "lmm_means",
    "Observed mean (SD, n, t-interval) and mixed-model fitted mean of each functional score per "
    "visit and radiographic OA",
    _columns("outcome grouping month oa mean std count fitted ci_low ci_high ci_level"),
)
_OA = {1.0: "OA", 0.0: "no OA"}


def _scores_long(
    cohort: Cohort, plan: MskAgingPlan
) -> tuple[pd.Series, pd.DataFrame, dict[str, pd.DataFrame]]:
    """Predicted radiographic OA per patient, the patients, and each score's observed visits.

    The long tables have ``patient_id, month, years, y, set``, one row per
    observed visit (missing visits left out).
    """
    knees, patients = _frames(cohort, plan)
    oa_min = plan.kl.oa_min_grade - plan.kl.classes[0]
    pred = pd.Series(_predicted(cohort, plan, "kl"), index=knees["patient_id"])
    grp = (pred.groupby(level=0).max() >= oa_min).astype(float)
    pats = patients.set_index("patient_id")
    longs = {}
    for outcome, cols in plan.longitudinal.outcomes.items():
        long = []
        for col, month in cols.items():
            v = pats[col].astype(float)
            obs = v.notna()
            long.append(
                pd.DataFrame(
                    {
                        "patient_id": v.index[obs],
                        "month": month,
                        "years": month / 12.0,
                        "y": v[obs].to_numpy(float),
                        "set": pats.loc[obs, "set"].to_numpy(),
                    }
                )
            )
        longs[outcome] = pd.concat(long, ignore_index=True)
    return grp, pats, longs


@REGISTRY.step("mixed_model", produces=[LMM, LMM_FOLLOWED, LMM_MEANS], needs=("models",))
def mixed_model_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """VAS and OKS by predicted radiographic OA: REML mixed model, patients followed, means."""
    ctx.progress("VAS and OKS: linear mixed models")
    grp, pats, longs = _scores_long(cohort, plan)
    fits, followed, means = [], [], []
    for outcome, long_df in longs.items():
        keys = {"outcome": outcome, "grouping": "predicted"}
        dfg = long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy())
        r = lmm.random_intercept_lmm(
            dfg[["patient_id", "years", "oa", "y"]],
            formula="y ~ years * oa",
            group="patient_id",
            alpha=plan.alpha,
        )
        fits.append(_keyed(r.to_frame(), keys).assign(icc=r.icc))
        nf = lmm.n_followed(dfg, visit="month", group="oa")
        nf["oa"] = nf["oa"].map(_OA)
        nf["n_included"] = nf["oa"].map(grp.map(_OA).value_counts()).astype(int)
        followed.append(_keyed(nf, keys))
        # observed means with t-intervals, beside the model's fitted mean at each visit
        obs = descriptive.group_means(dfg, value="y", by=["month", "oa"], alpha=plan.alpha)
        obs_t = obs.to_frame()
        at = obs_t[["month", "oa"]].assign(years=obs_t["month"] / 12.0)
        fitted = lmm.population_means(r, at).to_frame()["fitted"]
        mm = obs_t.rename(columns={"sd": "std", "n": "count"})[
            ["month", "oa", "mean", "std", "count"]
        ]
        mm = mm.assign(
            oa=mm["oa"].map(_OA),
            fitted=fitted,
            ci_low=obs_t["ci_low"],
            ci_high=obs_t["ci_high"],
            ci_level=obs_t["ci_level"],
        )
        means.append(_keyed(mm, keys))
        tot = lmm.n_followed(long_df, visit="month").assign(n_included=len(pats))
        followed.append(_keyed(tot, {"outcome": outcome, "grouping": "all"}).assign(oa="all"))
    return {
        "lmm": pd.concat(fits, ignore_index=True),
        "lmm_followed": pd.concat(followed, ignore_index=True),
        "lmm_means": pd.concat(means, ignore_index=True),
    }


LMM_DELTA = TableSpec(
    "lmm_delta",
    "MNAR sensitivity: the OA minus no-OA difference of each functional score at the last visit "
    "(random-intercept model) with the OA group's missing last visits shifted by each delta of the "
    "plan, and the tipping delta",
    _columns(
        "outcome grouping month delta estimate se ci_low ci_high p_value estimate_mar "
        "tipping_delta n_missing n_group missing_fraction"
    ),
)


@REGISTRY.step("delta_adjustment", produces=[LMM_DELTA], needs=("lmm", "lmm_followed"))
def delta_adjustment_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """Delta-adjusted (MNAR) OA difference at the last visit and its tipping point."""
    ctx.progress("VAS and OKS: MNAR delta adjustment (tipping point)")
    grp, _, longs = _scores_long(cohort, plan)
    followed = ctx.tables["lmm_followed"]
    last = max(plan.longitudinal.visits)
    years = last / 12.0
    rows = []
    for outcome, long_df in longs.items():
        dfg = long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy())
        with estimating(f"{outcome}, mixed model for the delta adjustment"):
            r = lmm.random_intercept_lmm(
                dfg[["patient_id", "years", "oa", "y"]],
                formula="y ~ years * oa",
                group="patient_id",
                alpha=plan.alpha,
            )
        f = followed[
            (followed["outcome"] == outcome)
            & (followed["grouping"] == "predicted")
            & (followed["oa"] == _OA[1.0])
            & (followed["month"] == last)
        ].iloc[0]
        n_group = int(f["n_included"])
        res = delta_adjustment.delta_adjusted_contrast(
            r.fixed,
            r.cov_fixed,
            contrast={"oa": 1.0, "years:oa": years},
            n_missing=n_group - int(f["n_followed"]),
            n_group=n_group,
            deltas=plan.longitudinal.delta_grid[outcome],
            alpha=plan.alpha,
        )
        t = res.to_frame().assign(
            estimate_mar=res.estimate_mar,
            tipping_delta=res.tipping_delta,
            n_missing=res.n_missing,
            n_group=res.n_group,
            missing_fraction=res.missing_fraction,
        )
        rows.append(_keyed(t, {"outcome": outcome, "grouping": "predicted", "month": last}))
    return {"lmm_delta": pd.concat(rows, ignore_index=True)}


LMM_SLOPE = TableSpec(
    "lmm_slope",
    "Sensitivity analysis: REML mixed model with a random patient intercept and slope in years of "
    "each functional score by predicted radiographic OA (fixed effects, variance components) and "
    "its likelihood-ratio test against the random-intercept model",
    _columns(
        "outcome grouping term estimate se ci_low ci_high p_value n_obs n_patients optimiser "
        "lr_chisq lr_p_value lr_p_naive"
    ),
)


@REGISTRY.step("mixed_model_slope", produces=[LMM_SLOPE], needs=("models",))
def mixed_model_slope_step(cohort: Cohort, plan: MskAgingPlan, ctx: StepContext) -> Tables:
    """VAS and OKS by predicted radiographic OA: random intercept and slope (sensitivity)."""
    ctx.progress("VAS and OKS: random-slope mixed models (sensitivity)")
    grp, _, longs = _scores_long(cohort, plan)
    rows = []
    for outcome, long_df in longs.items():
        dfg = long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy())
        with estimating(f"{outcome}, random-slope mixed model"):
            r = random_slope.random_slope_lmm(
                dfg[["patient_id", "years", "oa", "y"]],
                formula="y ~ years * oa",
                group="patient_id",
                slope="years",
                alpha=plan.alpha,
            )
        frame = r.to_frame().assign(
            lr_chisq=r.lr_chisq, lr_p_value=r.lr_p_value, lr_p_naive=r.lr_p_naive
        )
        rows.append(_keyed(frame, {"outcome": outcome, "grouping": "predicted"}))
    return {"lmm_slope": pd.concat(rows, ignore_index=True)}
