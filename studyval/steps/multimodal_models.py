"""The data and the fitted fusion models of a multimodal-staging run, shared by its steps.

The analysis frames (patients and knees), the feature groups of each condition,
the outcome checks, and the fusion models fitted once per run
(:func:`fitted_models`, memoised per cohort and plan) whose scores every
discrimination, calibration, survival and longitudinal step reads.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from studyval.analysis import (
    fusion,
)
from studyval.cohort import Cohort
from studyval.errors import EstimationError
from studyval.plan import requested_steps
from studyval.plan_msk_aging import MskAgingPlan
from studyval.steps.registry import TableSpec

__all__ = ["CONDITIONS", "CONDITION_LABEL", "SETS", "TUNING", "FusionFits", "Tables", "fitted_models"]

SETS = ("internal", "external")
CONDITIONS = ("op", "kl")
CONDITION_LABEL = {"op": "Osteoporosis stage", "kl": "KL grade"}
#: What a step returns: its tables by declared name.
Tables = dict[str, pd.DataFrame]


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

TUNING = TableSpec(
    "tuning",
    "Mean inner macro AUC of every grid point: per outer fold (nested CV) and for the final model",
    _columns("condition model stage fold params mean_macro_auc selected"),
)



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
