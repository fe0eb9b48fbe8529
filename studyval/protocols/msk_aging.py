"""msk-aging (PKUPH IRB 2026PHB097-001): multimodal staging of osteoporosis and knee osteoarthritis.

The protocol fits its own fusion models (no prediction table): for each
condition, XGBoost (primary) and an RBF SVM on CNN image features + clinical
(age, sex, BMI) + laboratory (beta-CTX, P1NP, calcium, phosphorus) features.

* **Osteoporosis stage** (patient level): normal / osteopenia / osteoporosis
  from the DXA T-score with the plan's WHO cut-offs.
* **Kellgren-Lawrence grade** (knee level, 0-4): two knees per patient, so
  every knee-level interval is patient-clustered: one-vs-rest AUCs by the
  clustered DeLong of Obuchowski (1997); macro and prevalence-weighted AUC,
  Hand & Till's M, weighted kappa, accuracy, accuracy within one grade and
  per-grade sensitivity and specificity by a patient-level (cluster)
  percentile bootstrap. Each comes from its analysis function given the
  patient ids (the same seed, so the same resamples, in every call).

Development: nested, patient-grouped cross-validation on the retrospective
cohort (out-of-fold predictions); external validation: the final model
(tuned by grouped CV on the whole retrospective cohort) applied once to the
prospective cohort. Both hospitals are reported separately and together.
Secondary: modality-level SHAP, new fragility fractures by predicted stage
(Kaplan-Meier, log-rank, Cox), VAS/OKS at 6-36 months (REML mixed model with
a random patient intercept) with the number followed per visit.

:func:`analyse` is pure: validated data and plan in, tables out.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import numpy as np
import pandas as pd

from studyval.analysis import (
    agreement,
    fusion,
    multiclass,
    sample_size,
    shapley,
)
from studyval.analysis import mixed_models as lmm
from studyval.analysis import survival as sv
from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations, estimating
from studyval.errors import EstimationError, Violation
from studyval.figures.spec import FigureSpec
from studyval.plan_msk_aging import MskAgingPlan
from studyval.protocol import ProtocolTables, StudyProtocol, flow_count

__all__ = [
    "PROTOCOL",
    "SLUG",
    "analyse",
    "check_eligibility",
    "checklist",
    "figure_specs",
    "flow_stages",
    "needed_columns",
]

SLUG = "msk-aging"
SETS = ("internal", "external")
CONDITIONS = ("op", "kl")
CONDITION_LABEL = {"op": "Osteoporosis stage", "kl": "KL grade"}
MODALITIES = ("image", "clinical", "laboratory")

#: Columns that describe the patient and must agree on the rows of one patient.
PATIENT_COLUMNS = (
    "site",
    "cohort",
    "age",
    "sex",
    "bmi_kg_m2",
    "ctx_ng_ml",
    "p1np_ng_ml",
    "calcium_mmol_l",
    "phosphorus_mmol_l",
    "op_img_1",
    "op_img_2",
    "op_img_3",
    "op_img_4",
    "dxa_t_score",
    "fracture_followup_months",
    "new_fragility_fracture",
    "vas_m6",
    "vas_m12",
    "vas_m24",
    "vas_m36",
    "oks_m6",
    "oks_m12",
    "oks_m24",
    "oks_m36",
    "exclusion_reason",
)


# ----------------------------------------------------------------------------- eligibility


def _text(v: object) -> str:
    return "" if pd.isna(v) else str(v)


def needed_columns(plan: MskAgingPlan) -> dict[str, str]:
    """Clinical columns the dictionary lets be left out but the plan uses: column -> use, in words.

    The dictionary makes them optional because an excluded patient may lack
    them (and a visit may be missed); the analyses need every column.

    Parameters
    ----------
    plan : MskAgingPlan
        The protocol's plan.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    m = plan.modalities
    needs = {
        plan.osteoporosis.t_score: "osteoporosis-stage reference standard (DXA T-score, WHO "
        "cut-offs) and the baseline table",
        plan.kl.grade: "Kellgren-Lawrence reference standard (grade of each knee)",
    }
    for col in m.image_op:
        needs[col] = "osteoporosis-stage models (a CNN image feature)"
    for col in m.image_kl:
        needs[col] = "KL-grade models (a CNN image feature)"
    for col in m.clinical:
        needs[col] = "fusion models (a clinical feature) and the baseline table"
    for col in m.laboratory:
        needs[col] = "fusion models (a laboratory feature) and the baseline table"
    needs[plan.fracture.time] = (
        "analysis of new fragility fractures by predicted stage (the follow-up time, in "
        f"{plan.fracture.time_unit})"
    )
    needs[plan.fracture.event] = (
        "analysis of new fragility fractures by predicted stage (the event)"
    )
    for outcome, cols in plan.longitudinal.outcomes.items():
        label = plan.longitudinal.labels.get(outcome, outcome)
        for col, month in cols.items():
            needs[col] = f"mixed model of {label} (the visit at month {month})"
    return needs


def check_eligibility(
    clinical: pd.DataFrame, plan: MskAgingPlan, *, label: str
) -> list[Violation]:
    """Rules spanning rows or columns of the clinical (knee-level) table.

    * the columns the dictionary lets be left out but the plan uses are present
      (:func:`needed_columns`);
    * at most one row per patient and knee side;
    * patient-level columns identical on the rows of one patient (a patient in
      two cohorts or at two sites is named as such);
    * included patients are within the plan's age range and have the DXA
      T-score, the KL grade of every knee, every image, clinical and
      laboratory feature, and the fracture follow-up.
    """
    problems = absent_column_violations(clinical, needed_columns(plan), label=label)
    dup = clinical.duplicated(["patient_id", "knee_side"], keep="first")
    first = {}
    for idx, pid, side in zip(
        clinical.index, clinical["patient_id"], clinical["knee_side"], strict=True
    ):
        key = (pid, side)
        if dup[idx]:
            problems.append(
                Violation(
                    label,
                    "knee_side",
                    int(idx) + 2,
                    f"duplicated knee record: patient {pid} already has a {side} knee (row {first[key] + 2})",
                    str(side),
                )
            )
        else:
            first[key] = int(idx)
    for col in PATIENT_COLUMNS:
        if col not in clinical.columns:
            continue
        vals = clinical[col].map(_text)
        n_distinct = vals.groupby(clinical["patient_id"]).transform("nunique")
        bad = clinical.index[(n_distinct > 1).to_numpy()]
        seen: set[str] = set()
        for idx in bad:
            pid = clinical.at[idx, "patient_id"]
            if pid in seen:
                continue
            seen.add(pid)
            rows_ = clinical.index[clinical["patient_id"] == pid]
            values = ", ".join(sorted(set(vals[rows_])))
            rule = (
                f"patient {pid} is in both cohorts ({values}); a patient belongs to one cohort"
                if col == "cohort"
                else f"patient-level value differs between the knee rows of patient {pid} ({values})"
            )
            problems.append(
                Violation(label, col, int(rows_[-1]) + 2, rule, _text(clinical.at[rows_[-1], col]))
            )
    inc = clinical[clinical["exclusion_reason"] == "none"]
    lo, hi = plan.eligibility["age_min"], plan.eligibility["age_max"]
    for idx in inc.index[(inc["age"] < lo) | (inc["age"] > hi)]:
        problems.append(
            Violation(
                label,
                "age",
                int(idx) + 2,
                f"included patient outside the plan's age range {lo}-{hi} (set exclusion_reason age_outside_18_90)",
                _text(inc.at[idx, "age"]),
            )
        )
    m = plan.modalities
    needed = [
        plan.osteoporosis.t_score,
        plan.kl.grade,
        *m.image_op,
        *m.image_kl,
        *m.clinical,
        *m.laboratory,
        plan.fracture.time,
        plan.fracture.event,
    ]
    for col in needed:
        if col not in inc.columns:
            continue
        for idx in inc.index[inc[col].isna().to_numpy()]:
            problems.append(
                Violation(
                    label,
                    col,
                    int(idx) + 2,
                    "missing for an included patient; set exclusion_reason",
                )
            )
    return problems


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


def _check_outcome(knees: pd.DataFrame, patients: pd.DataFrame, plan: MskAgingPlan) -> None:
    """Raise before any model is fitted where a set lacks a class or a fracture event."""
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


# ----------------------------------------------------------------------------- analyse


def analyse(
    cohort: Cohort,
    plan: MskAgingPlan,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> ProtocolTables:
    """Run the plan's analyses; return the tidy tables of the bundle."""
    t: dict[str, pd.DataFrame] = {}
    knees, patients = _frames(cohort, plan)
    _check_outcome(knees, patients, plan)
    progress("participant flow and baseline characteristics")
    t["flow"] = _flow(cohort, knees, patients, plan)
    t["baseline"] = _baseline(knees, patients, plan)
    t["sample_size"] = _sample_size(plan, patients)

    frames = {"op": patients, "kl": knees}
    classes = {"op": list(plan.osteoporosis.classes), "kl": [str(c) for c in plan.kl.classes]}
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
    t["tuning"] = pd.concat(tuning_rows, ignore_index=True)[
        ["condition", "model", "stage", "fold", "params", "mean_macro_auc", "selected"]
    ]
    t["models"] = pd.DataFrame(model_rows)

    progress("multi-class discrimination and confusion (both cohorts, both hospitals)")
    disc, conf, mats, kappa = [], [], [], []
    for cond in CONDITIONS:
        d = frames[cond]
        for m in plan.models:
            s = scores[(cond, m.name)]
            for set_ in SETS:
                for site in ("all", *sorted(d["site"].unique())):
                    sel = (d["set"] == set_).to_numpy()
                    if site != "all":
                        sel = sel & (d["site"] == site).to_numpy()
                    keys = {"condition": cond, "model": m.name, "set": set_, "site": site}
                    where = "" if site == "all" else f", hospital {site}"
                    with estimating(f"model {m.name}, {CONDITION_LABEL[cond]}, {set_} set{where}"):
                        a, c, mt, kp = _evaluate(cond, d[sel], s[sel], classes[cond], plan, keys)
                    disc.append(a)
                    conf.append(c)
                    mats.append(mt)
                    if kp is not None:
                        kappa.append(kp)
    t["discrimination"] = pd.concat(disc, ignore_index=True)
    t["accuracy"] = pd.concat(conf, ignore_index=True)
    t["confusion"] = pd.concat(mats, ignore_index=True)
    t["kl_agreement"] = pd.concat(kappa, ignore_index=True)

    progress("modality contributions (SHAP)")
    t["shap_summary"], t["shap_decisions"] = _shap(frames, scores, finals, classes, plan)

    progress("new fragility fractures by predicted stage")
    pred_op = np.argmax(scores[("op", plan.primary_model)], axis=1)
    (
        t["fracture_km"],
        t["fracture_at"],
        t["fracture_logrank"],
        t["fracture_cox"],
        t["fracture_risk"],
    ) = _fractures(patients, pred_op, plan)

    progress("VAS and OKS: linear mixed models")
    pred_kl = np.argmax(scores[("kl", plan.primary_model)], axis=1)
    t["lmm"], t["lmm_followed"], t["lmm_means"] = _longitudinal(knees, patients, pred_kl, plan)
    return ProtocolTables(tables=t)


# ----------------------------------------------------------------------------- evaluation


def _evaluate(
    cond: str,
    d: pd.DataFrame,
    s: np.ndarray,
    classes: list[str],
    plan: MskAgingPlan,
    keys: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """Discrimination, accuracy, confusion counts and (KL grade) agreement of one model on one set.

    Every number comes from the analysis functions: at knee level (KL grade)
    they are given the patient ids, so the one-vs-rest AUCs get the clustered
    DeLong interval and every other measure a patient-level percentile
    bootstrap (``plan.kl.n_bootstrap`` resamples, seed ``plan.seed``: the same
    resamples in every call). The runner only selects rows and adds keys.
    """
    y = d[f"{cond}_code"].to_numpy(np.int64)
    labels = np.array(classes, dtype=object)[y]
    pred_idx = np.argmax(s, axis=1)
    pred = np.array(classes, dtype=object)[pred_idx]
    n_patients = d["patient_id"].nunique()
    boot = (
        dict(
            clusters=d["patient_id"].to_numpy(),
            ci_method="percentile",
            n_resamples=plan.kl.n_bootstrap,
            seed=plan.seed,
        )
        if cond == "kl"
        else {}
    )
    auc = multiclass.one_vs_rest_auc(labels, s, classes=classes, alpha=plan.alpha, **boot).table()
    auc["unit"] = "patient" if cond == "op" else "knee"
    auc["n_patients"] = n_patients
    acc = multiclass.multiclass_confusion(
        labels,
        pred,
        classes=classes,
        ordinal=cond == "kl",
        alpha=plan.alpha,
        **(boot or {"ci_method": "wilson"}),
    )
    acc_t = acc.table()
    mat = (
        acc.matrix()
        .reset_index()
        .melt(id_vars="reference standard", var_name="predicted", value_name="n")
    )
    mat = mat.rename(columns={"reference standard": "reference"})
    kappa_t = None
    if cond == "kl":
        acc_t = acc_t[
            acc_t["measure"].isin(["sensitivity", "specificity", "accuracy", "accuracy_within_one"])
        ]
        rows = []
        for wname in plan.kl.kappa_weights:
            kp = agreement.weighted_kappa(
                y + plan.kl.classes[0],
                pred_idx + plan.kl.classes[0],
                weights=wname,
                categories=plan.kl.classes,
                alpha=plan.alpha,
                **boot,
            )
            rows.append(
                {
                    "measure": f"kappa_{wname}",
                    "estimate": kp.estimate,
                    "ci_low": kp.ci_low,
                    "ci_high": kp.ci_high,
                    "ci_method": kp.method,
                }
            )
        for m in (acc.accuracy, acc.accuracy_within_one):
            rows.append(
                {
                    "measure": m.measure,
                    "estimate": m.estimate,
                    "ci_low": m.ci_low,
                    "ci_high": m.ci_high,
                    "ci_method": m.ci_method,
                }
            )
        kappa_t = pd.DataFrame(rows).assign(n_knees=len(y), n_patients=n_patients)
    else:
        acc_t = acc_t[acc_t["measure"].isin(["sensitivity", "specificity", "accuracy"])]
    auc["class"] = auc["class"].map(lambda v: "" if pd.isna(v) else str(v))
    acc_t = acc_t.copy()
    acc_t["class"] = acc_t["class"].map(lambda v: "" if pd.isna(v) else str(v))
    out = []
    for frame in (auc, acc_t, mat, kappa_t):
        if frame is None:
            out.append(None)
            continue
        f = frame.copy()
        for i, (kk, v) in enumerate(keys.items()):
            f.insert(i, kk, v)
        out.append(f)
    return out[0], out[1], out[2], out[3]


# ----------------------------------------------------------------------------- SHAP


def _shap(frames, scores, finals, classes, plan: MskAgingPlan) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(plan.seed + 7)
    summary, decisions = [], []
    for cond in CONDITIONS:
        d = frames[cond]
        cols, groups = _features(plan, cond)
        X = d[cols].to_numpy(float)
        dev = np.flatnonzero((d["set"] == "internal").to_numpy())
        background = X[
            np.sort(rng.choice(dev, size=min(plan.shap.background_size, len(dev)), replace=False))
        ]
        for m in plan.models:
            est = finals[(cond, m.name)].estimator
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
                dc = res.decisions(np.argmax(scores[(cond, m.name)][sel], axis=1))
                for i, (kk, v) in enumerate(keys.items()):
                    sm.insert(i, kk, v)
                    dc.insert(i, kk, v)
                summary.append(sm)
                decisions.append(dc)
    return pd.concat(summary, ignore_index=True), pd.concat(decisions, ignore_index=True)


# ----------------------------------------------------------------------------- fractures


def _fractures(patients: pd.DataFrame, pred: np.ndarray, plan: MskAgingPlan):
    fr = plan.fracture
    classes = plan.osteoporosis.classes
    time = patients[fr.time].astype(float).to_numpy()
    event = patients[fr.event].astype(bool).to_numpy().astype(int)
    groupings = {
        "predicted": np.array(classes, dtype=object)[pred],
        "dxa": np.array(classes, dtype=object)[patients["op_code"].to_numpy()],
    }
    km_rows, at_rows, lr_rows, cox_rows, risk_rows = [], [], [], [], []
    ticks = [0.0, *[float(x) for x in fr.times]]
    for name, grp in groupings.items():
        for set_ in ("all", *SETS):
            sel = (
                np.ones(len(time), bool) if set_ == "all" else (patients["set"] == set_).to_numpy()
            )
            g = grp[sel]
            km = sv.kaplan_meier(
                time[sel], event[sel], groups=g, alpha=plan.alpha, conf_type="log-log"
            )
            keys = {"grouping": name, "set": set_}
            if set_ == "all":
                tab = km.table.copy()
                km_rows.append(tab.assign(**keys))
                at = km.at_risk(ticks).copy()
                at_rows.append(at.assign(**keys))
            lr = km.logrank
            where = "all patients" if set_ == "all" else f"{set_} set"
            what = (
                f"model {plan.primary_model}, {where}, new fragility fractures by predicted stage"
                if name == "predicted"
                else f"{where}, new fragility fractures by DXA stage"
            )
            if lr is None:
                present = sorted(set(g.tolist()))
                raise EstimationError(
                    f"{what}: the log-rank test cannot be estimated (stages present: "
                    f"{', '.join(map(str, present))}; {int(event[sel].sum())} fractures); it needs "
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
            horizon_ok = [x for x in fr.times if x < time[sel].max()]
            kt = sv.kaplan_meier(
                time[sel],
                event[sel],
                groups=g,
                alpha=plan.alpha,
                conf_type="log-log",
                times=horizon_ok,
            ).table
            kt = kt.assign(
                risk=1 - kt["survival"],
                risk_ci_low=1 - kt["ci_high"],
                risk_ci_high=1 - kt["ci_low"],
            )
            risk_rows.append(
                kt[["group", "time", "n_risk", "risk", "risk_ci_low", "risk_ci_high"]].assign(
                    **keys
                )
            )
            df = pd.DataFrame({"time": time[sel], "event": event[sel]})
            covs = []
            for c in classes[1:]:
                df[c] = (g == c).astype(float)
                covs.append(c)
            with estimating(f"{what}, Cox model"):
                fit = sv.cox(df, duration="time", event="event", covariates=covs, alpha=plan.alpha)
            s = fit.summary.copy()
            s["term"] = s["term"].map(lambda v: f"{v} vs {classes[0]}")
            s["n"], s["n_events"] = fit.n, fit.n_events
            for c in classes:
                s[f"events_{c}"] = int(event[sel][g == c].sum())
                s[f"n_{c}"] = int((g == c).sum())
            cox_rows.append(s.assign(**keys))
    km_t = pd.concat(km_rows, ignore_index=True)
    return (
        km_t,
        pd.concat(at_rows, ignore_index=True),
        pd.DataFrame(lr_rows),
        pd.concat(cox_rows, ignore_index=True),
        pd.concat(risk_rows, ignore_index=True),
    )


# ----------------------------------------------------------------------------- VAS / OKS


def _longitudinal(
    knees: pd.DataFrame,
    patients: pd.DataFrame,
    pred_kl: np.ndarray,
    plan: MskAgingPlan,
    *,
    include_reference: bool = False,
):
    """Mixed models of VAS and OKS by predicted radiographic OA (and by the reference KL, if asked)."""
    lo = plan.longitudinal
    oa_min = plan.kl.oa_min_grade - plan.kl.classes[0]
    k2 = knees[["patient_id"]].copy()
    k2["pred"] = pred_kl
    k2["ref"] = knees["kl_code"].to_numpy()
    mx = k2.groupby("patient_id").max()
    pats = patients.set_index("patient_id")
    oa = {"predicted": (mx["pred"] >= oa_min).astype(float)}
    if include_reference:
        oa["reference"] = (mx["ref"] >= oa_min).astype(float)
    fits, followed, means = [], [], []
    for outcome, cols in lo.outcomes.items():
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
        long_df = pd.concat(long, ignore_index=True)
        n_inc = len(pats)
        for name, grp in oa.items():
            dfg = long_df.assign(oa=grp.reindex(long_df["patient_id"]).to_numpy())
            r = lmm.random_intercept_lmm(
                dfg[["patient_id", "years", "oa", "y"]],
                formula="y ~ years * oa",
                group="patient_id",
                alpha=plan.alpha,
            )
            f = r.to_frame()
            f.insert(0, "grouping", name)
            f.insert(0, "outcome", outcome)
            f["icc"] = r.icc
            fits.append(f)
            nf = lmm.n_followed(dfg, visit="month", group="oa")
            nf["oa"] = nf["oa"].map({1.0: "OA", 0.0: "no OA"})
            base_n = grp.map({1.0: "OA", 0.0: "no OA"}).value_counts()
            nf["n_included"] = nf["oa"].map(base_n).astype(int)
            nf.insert(0, "grouping", name)
            nf.insert(0, "outcome", outcome)
            followed.append(nf)
            mm = dfg.groupby(["month", "oa"])["y"].agg(["mean", "std", "count"]).reset_index()
            mm["oa"] = mm["oa"].map({1.0: "OA", 0.0: "no OA"})
            fe = r.fixed.set_index("term")["estimate"]
            mm["fitted"] = (
                fe["Intercept"]
                + fe["years"] * mm["month"] / 12
                + (mm["oa"] == "OA") * (fe["oa"] + fe["years:oa"] * mm["month"] / 12)
            )
            mm.insert(0, "grouping", name)
            mm.insert(0, "outcome", outcome)
            means.append(mm)
        tot = long_df.groupby("month").size().rename("n_followed").reset_index()
        tot["n_included"] = n_inc
        tot.insert(0, "grouping", "all")
        tot.insert(0, "outcome", outcome)
        tot["oa"] = "all"
        followed.append(tot)
    return (
        pd.concat(fits, ignore_index=True),
        pd.concat(followed, ignore_index=True),
        pd.concat(means, ignore_index=True),
    )


# ----------------------------------------------------------------------------- flow, baseline, sample size


def _flow(
    cohort: Cohort, knees: pd.DataFrame, patients: pd.DataFrame, plan: MskAgingPlan
) -> pd.DataFrame:
    """Screened, excluded by reason, included by cohort and hospital; knees; outcomes."""
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
    ):
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
    for set_ in SETS:
        for site in ("all", *sorted(patients["site"].unique())):
            p = patients[
                (patients["set"] == set_) & ((patients["site"] == site) if site != "all" else True)
            ]
            k = knees[(knees["set"] == set_) & ((knees["site"] == site) if site != "all" else True)]
            add("included_set", len(p), set_=set_, site=site, knees_=len(k))
            if site == "all":
                add(
                    "one_knee_only",
                    int((k.groupby("patient_id").size() == 1).sum()),
                    set_=set_,
                    site=site,
                )
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
    return pd.DataFrame(rows)


def _baseline(knees: pd.DataFrame, patients: pd.DataFrame, plan: MskAgingPlan) -> pd.DataFrame:
    rows = []
    cont = [
        "age",
        "bmi_kg_m2",
        "ctx_ng_ml",
        "p1np_ng_ml",
        "calcium_mmol_l",
        "phosphorus_mmol_l",
        plan.osteoporosis.t_score,
        plan.fracture.time,
    ]
    for set_ in SETS:
        for site in ("all", *sorted(patients["site"].unique())):
            p = patients[
                (patients["set"] == set_) & ((patients["site"] == site) if site != "all" else True)
            ]
            k = knees[(knees["set"] == set_) & ((knees["site"] == site) if site != "all" else True)]
            col = f"{set_}:{site}"
            rows.append(
                {
                    "column": col,
                    "variable": "n",
                    "level": "",
                    "value": f"{len(p)} patients, {len(k)} knees",
                }
            )
            for v in cont:
                x = p[v].astype(float)
                rows.append(
                    {
                        "column": col,
                        "variable": v,
                        "level": "",
                        "value": f"{x.mean():.2f} ({x.std():.2f})",
                    }
                )
            nf = int((p["sex"].astype(str) == "F").sum())
            rows.append(
                {
                    "column": col,
                    "variable": "sex",
                    "level": "F",
                    "value": f"{nf} ({100 * nf / len(p):.1f}%)",
                }
            )
            for i, c in enumerate(plan.osteoporosis.classes):
                n = int((p["op_code"] == i).sum())
                rows.append(
                    {
                        "column": col,
                        "variable": "dxa_stage",
                        "level": c,
                        "value": f"{n} ({100 * n / len(p):.1f}%)",
                    }
                )
            for i, c in enumerate(plan.kl.classes):
                n = int((k["kl_code"] == i).sum())
                rows.append(
                    {
                        "column": col,
                        "variable": "kl_grade (knees)",
                        "level": str(c),
                        "value": f"{n} ({100 * n / len(k):.1f}%)",
                    }
                )
    return pd.DataFrame(rows)


def _sample_size(plan: MskAgingPlan, patients: pd.DataFrame) -> pd.DataFrame:
    """AUC-precision requirement per osteoporosis stage (one-vs-rest), against registered and observed."""
    ss = plan.sample_size
    rows = []
    for i, c in enumerate(plan.osteoporosis.classes):
        prev = ss.prevalence[c]
        r = sample_size.auc_precision(
            auc=ss.auc, half_width=ss.half_width, kappa=(1 - prev) / prev, alpha=plan.alpha
        )
        total = max(r.n_cases / prev, r.n_controls / (1 - prev))
        for set_, registered in (
            ("development", ss.registered_development),
            ("external", ss.registered_external),
        ):
            obs_set = "internal" if set_ == "development" else "external"
            p = patients[patients["set"] == obs_set]
            chk = sample_size.check_registered(
                total,
                registered,
                label=f"{set_} patients",
                basis=f"a one-vs-rest AUC of {ss.auc:g} for {c} estimated to +/- {ss.half_width:g} "
                f"(prevalence {prev:g}, Hanley-McNeil)",
            )
            rows.append(
                {
                    "check": "class",
                    "set": set_,
                    "class": c,
                    "prevalence": prev,
                    "auc": ss.auc,
                    "half_width": ss.half_width,
                    "required_cases": r.required_cases,
                    "required_controls": r.required_controls,
                    "required_unrounded": total,
                    "required": int(np.ceil(total - 1e-9)),
                    "registered": registered,
                    "observed_patients": len(p),
                    "observed_cases": int((p["op_code"] == i).sum()),
                    "adequate": bool(registered >= np.ceil(total - 1e-9)),
                    "message": chk.message,
                }
            )
    out = pd.DataFrame(rows)
    ext = out[out["set"] == "external"]
    worst = ext["required_unrounded"].idxmax()
    out.loc[worst, "check"] = "registered"
    return out


# ----------------------------------------------------------------------------- report pieces


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


def _fmt(est: float, lo: float, hi: float) -> str:
    return f"{est:.3f} ({lo:.3f}-{hi:.3f})"


def checklist(plan: MskAgingPlan, tables: dict[str, pd.DataFrame], cohort: Cohort) -> pd.DataFrame:
    """The TRIPOD+AI 2024 checklist filled from the plan and the tables."""
    flow = tables["flow"]

    def fn(stage: str, col: str = "n_patients", **where: str) -> int:
        return flow_count(flow, stage, column=col, **where)

    disc = tables["discrimination"]

    def auc_of(cond: str, set_: str, measure: str = "auc_macro") -> str:
        r = disc[
            (disc["condition"] == cond)
            & (disc["model"] == plan.primary_model)
            & (disc["set"] == set_)
            & (disc["site"] == "all")
            & (disc["measure"] == measure)
        ].iloc[0]
        return _fmt(r["estimate"], r["ci_low"], r["ci_high"])

    kap = tables["kl_agreement"]
    kq = kap[
        (kap["model"] == plan.primary_model)
        & (kap["set"] == "external")
        & (kap["site"] == "all")
        & (kap["measure"] == "kappa_quadratic")
    ].iloc[0]
    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_text = ", ".join(f"{r.group.replace('_', ' ')} {r.n_patients}" for r in excl.itertuples())
    models = tables["models"]
    prim = models[(models["name"] == plan.primary_model)]
    op = plan.osteoporosis
    content = {
        "1": (
            f"{plan.registry.title}: development and external validation of multimodal AI models staging "
            "osteoporosis and grading knee osteoarthritis.",
            "Title",
        ),
        "2": (f"Draft from the plan: {plan.registry.design}", "Summary"),
        "5a": (
            "Development: retrospective cohort (nested grouped cross-validation); evaluation: prospective "
            "cohort at the same two hospitals. Representativeness to be confirmed.",
            "Protocol",
        ),
        "6a": (
            f"2 hospitals (PKUPH, SYSMH); retrospective {fn('included_set', set='internal', site='all')} "
            f"patients, prospective {fn('included_set', set='external', site='all')}.",
            "Participant flow",
        ),
        "6b": (
            f"Registry eligibility (adults {plan.eligibility['age_min']}-{plan.eligibility['age_max']}); "
            f"exclusions applied: {excl_text}.",
            "Participant flow",
        ),
        "7": (
            "Every row validated against the data dictionary; patient-level values checked identical across a "
            "patient's knee rows; no patient in both cohorts.",
            "Data and methods",
        ),
        "8a": (
            f"Osteoporosis stage from the lowest DXA T-score: normal >= {op.normal_min:g}, osteopenia between, "
            f"osteoporosis <= {op.osteoporosis_max:g} (WHO). KL grade 0-4 per knee by the reference reader.",
            "Protocol",
        ),
        "9a": (
            "Image (CNN embeddings), clinical (age, sex, BMI), laboratory (beta-CTX, P1NP, calcium, phosphorus); "
            "the same features for both model kinds.",
            "Models",
        ),
        "11": (
            f"Complete-case by design: patients with missing DXA ({fn('excluded_reason', group='missing_dxa')}) "
            f"or unusable images ({fn('excluded_reason', group='insufficient_image_quality')}) are excluded; "
            "no imputation.",
            "Participant flow",
        ),
        "12a": (
            f"Retrospective cohort: nested cross-validation ({plan.cv.outer_folds} outer x {plan.cv.inner_folds} "
            "inner StratifiedGroupKFold, grouped by patient); prospective cohort: external validation of the "
            "final model once.",
            "Models",
        ),
        "12b": (
            "Continuous features entered untransformed (SVM: standardised); sex as female = 1.",
            "Models",
        ),
        "12c": (
            "; ".join(f"{m.name}: {m.kind}, grid {m.grid}, fixed {m.fixed}" for m in plan.models)
            + f"; tuning criterion: mean inner macro AUC; seed {plan.seed}.",
            "Models",
        ),
        "12d": ("Hospitals reported separately and together within each cohort.", "Discrimination"),
        "12e": (
            "One-vs-rest AUC (DeLong; knee level clustered DeLong), macro AUC, Hand & Till's M, confusion "
            "matrices, sensitivity and specificity per class, weighted kappa and accuracy within one grade "
            "(patient-level bootstrap CIs for knees).",
            "Discrimination",
        ),
        "12f": (
            "No recalibration or updating; SVM scores are decision values (no probabilities).",
            "Models",
        ),
        "12g": (
            f"Model hashes in the model table, e.g. {prim['model_version'].iloc[0][:19]}...",
            "Models",
        ),
        "13": ("Not applicable: no resampling for class imbalance.", "Models"),
        "15": ("Predicted class = highest score (argmax); no other threshold.", "Models"),
        "16": (
            "Same eligibility and definitions in both cohorts; case mix in the baseline table.",
            "Baseline",
        ),
        "18f": ("studyval (this package); commit in the bundle manifest.", "Provenance"),
        "20a": (
            f"{fn('screened')} screened, {fn('excluded')} excluded, {fn('included')} included "
            f"({fn('included', 'n_knees')} knees).",
            "Participant flow",
        ),
        "20b": ("By cohort and hospital.", "Baseline"),
        "20c": ("Development vs external: see the baseline table.", "Baseline"),
        "21": ("Patients, knees and events per analysis in every table.", "Discrimination"),
        "23a": (
            f"{plan.primary_model}: osteoporosis macro AUC internal {auc_of('op', 'internal')}, external "
            f"{auc_of('op', 'external')}; KL macro AUC external {auc_of('kl', 'external')}, quadratic kappa "
            f"external {_fmt(kq['estimate'], kq['ci_low'], kq['ci_high'])}.",
            "Discrimination",
        ),
        "23b": ("By hospital in the discrimination tables.", "Discrimination"),
        "24": ("No model updating was done.", "Models"),
    }
    return tripod_ai_2024(plan, tables, content=content)


def figure_specs(tables: dict[str, pd.DataFrame], plan: MskAgingPlan) -> list[FigureSpec]:
    """Figures of the report, drawn from the result tables."""
    from studyval.figures.flow import flow_figure
    from studyval.figures.longitudinal import longitudinal_figure
    from studyval.figures.shapley import modality_share_figure
    from studyval.figures.subgroups import multiclass_confusion_figure
    from studyval.figures.survival import km_figure

    specs: list[FigureSpec] = []
    flow = tables["flow"]
    n_inc = int(flow.loc[flow["stage"] == "included", "n_patients"].iloc[0])
    specs.append(
        FigureSpec(
            name="flow",
            caption=f"Participant flow: screened, excluded by reason, included ({n_inc} patients) "
            "by cohort and hospital.",
            draw=lambda w: flow_figure(flow_stages(flow, plan), width_mm=w),
            column="double",
        )
    )
    conf = tables["confusion"]
    for cond in CONDITIONS:
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
        specs.append(
            FigureSpec(
                name=f"confusion_{cond}_external",
                caption=f"{CONDITION_LABEL[cond]}: confusion matrix of the {plan.primary_model} model in the "
                f"prospective (external) cohort, n = {int(mat.to_numpy().sum())} {unit}; cells show counts and "
                "the share of the reference class (diagonal = sensitivity).",
                draw=lambda w, mat=mat: multiclass_confusion_figure(mat, width_mm=w),
            )
        )
    shap_t = tables["shap_summary"]
    specs.append(
        FigureSpec(
            name="shap_modalities",
            caption="Share of the mean absolute Shapley contribution by modality (image, clinical, laboratory), per "
            f"class, condition and model, prospective cohort (n = {_n_range(shap_t['n'])} "
            "cases per panel). XGBoost: exact TreeSHAP summed within modality (log-odds scale); SVM: exact "
            "interventional group Shapley over the 3 modalities (decision-value scale).",
            draw=lambda w: modality_share_figure(shap_t, models=plan.model_names, width_mm=w),
            column="double",
        )
    )
    km = tables["fracture_km"]
    at = tables["fracture_at"]
    lr = tables["fracture_logrank"]
    for grouping in ("predicted", "dxa"):
        sub_km = km[km["grouping"] == grouping]
        sub_at = at[at["grouping"] == grouping]
        r = lr[(lr["grouping"] == grouping) & (lr["set"] == "all")].iloc[0]
        what = (
            f"stage predicted by {plan.primary_model}"
            if grouping == "predicted"
            else "DXA stage (reference)"
        )
        specs.append(
            FigureSpec(
                name=f"fracture_km_{grouping}",
                caption=f"Cumulative incidence (1 - Kaplan-Meier) of a new fragility fracture by {what}, both cohorts, "
                f"n = {int(r['n'])} patients, {int(r['n_events'])} fractures; 95% log(-log) pointwise bands; "
                f"log-rank p = {r['p_value']:.2g}.",
                draw=lambda w, a=sub_km, b=sub_at: km_figure(
                    a,
                    b,
                    groups=plan.osteoporosis.classes,
                    cumulative=True,
                    time_label="Months since index imaging",
                    y_label="New fragility fracture",
                    legend_title="Stage",
                    width_mm=w,
                ),
            )
        )
    means = tables["lmm_means"]
    fol = tables["lmm_followed"]
    n_all = fol[fol["grouping"] == "all"]
    followed_text = ", ".join(str(int(x)) for x in n_all[n_all["outcome"] == "oks"]["n_followed"])
    specs.append(
        FigureSpec(
            name="functional_scores",
            caption="Mean VAS and OKS at 6, 12, 24 and 36 months by predicted radiographic OA (highest "
            f"predicted KL >= {plan.kl.oa_min_grade}), with the REML mixed-model fit (lines) and 95% "
            f"t-intervals of the observed means; patients followed per visit: {followed_text}.",
            draw=lambda w: longitudinal_figure(
                means[means["grouping"] == "predicted"], labels=plan.longitudinal.labels, width_mm=w
            ),
            column="double",
        )
    )
    return specs


def _n_range(n: pd.Series) -> str:
    """``200`` when every panel has the same n, else ``180-200``."""
    lo, hi = int(n.min()), int(n.max())
    return f"{lo}" if lo == hi else f"{lo}-{hi}"


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=False,
)
