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
Secondary: modality-level SHAP (shares with bootstrap intervals), new
fragility fractures by predicted stage with death a competing event
(Aalen-Johansen, Gray's test, cause-specific Cox and Fine-Gray, adjusted for
the DXA-driven treatment, age and sex; Kaplan-Meier, log-rank and Cox with
deaths censored for reference), VAS/OKS at 6-36 months (REML mixed model with
a random patient intercept; random-slope sensitivity analysis) with the number
followed per visit. Also: cumulative AUCs and ordinal c-indices, per-class
calibration and the decision curve of the probabilistic models, and the
provenance of the image features (a patient the encoder was trained on is
refused among the evaluated ones).

The analysis is the registered steps of the multimodal-staging study type
(:mod:`studyval.steps.multimodal_staging`): ``flow``, ``baseline``,
``sample_size`` and ``fusion_models`` in every run, then the steps the plan's
``endpoints[].analyses`` name (``multiclass_auc``, ``confusion_matrix``,
``ordinal_discrimination``, ``calibration``, ``decision_curve``,
``weighted_kappa``, ``shap``, ``kaplan_meier``, ``cox``,
``cumulative_incidence``, ``competing_regression``, ``mixed_model``,
``mixed_model_slope``).
This module holds what is the study's own: its eligibility rules and its
TRIPOD+AI checklist; the figures are in :mod:`studyval.figures.msk_aging`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations
from studyval.errors import Violation
from studyval.figures.msk_aging import figure_specs
from studyval.plan_msk_aging import MskAgingPlan
from studyval.protocol import StudyProtocol, flow_count, steps_analysis
from studyval.steps.multimodal_staging import ALWAYS, REGISTRY

__all__ = [
    "ALWAYS",
    "PROTOCOL",
    "REGISTRY",
    "SLUG",
    "analyse",
    "check_eligibility",
    "checklist",
    "figure_specs",
    "needed_columns",
]

SLUG = "msk-aging"

#: Columns that describe the patient and must agree on the rows of one patient.
PATIENT_COLUMNS = tuple(
    "site cohort age sex bmi_kg_m2 ctx_ng_ml p1np_ng_ml calcium_mmol_l phosphorus_mmol_l "
    "op_img_1 op_img_2 op_img_3 op_img_4 op_encoder_training kl_encoder_training dxa_t_score "
    "fracture_followup_months "
    "new_fragility_fracture death_without_fracture osteoporosis_treatment "
    "vas_m6 vas_m12 vas_m24 vas_m36 oks_m6 oks_m12 oks_m24 oks_m36 "
    "exclusion_reason".split()
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
    for emb in plan.embeddings:
        if emb.training_flag is not None:
            needs[emb.training_flag] = (
                f"provenance check of the {emb.features.replace('_', ' ')} features (the patients "
                "the encoder was trained or fine-tuned on)"
            )
    fr = plan.fracture
    if fr.competing_event is not None:
        needs[fr.competing_event] = (
            "competing-risk analysis of new fragility fractures (death without a fracture, the "
            "competing event)"
        )
    for col in fr.adjust_for:
        needs.setdefault(col, "adjusted competing-risk models of new fragility fractures")
    for outcome, cols in plan.longitudinal.outcomes.items():
        label = plan.longitudinal.labels.get(outcome, outcome)
        for col, month in cols.items():
            needs[col] = f"mixed model of {label} (the visit at month {month})"
    return needs


def _record_violations(clinical: pd.DataFrame, label: str) -> list[Violation]:
    """A patient's knee records: one row per knee side, one value of each patient-level column.

    A patient in two cohorts is named as such. A value's text (:func:`_text`) is computed once
    per distinct value of a column, and the number of distinct texts of each patient is
    counted on integer codes: the rows and messages are those of comparing the texts row by
    row, in a fraction of the time on a table of thousands of knees.
    """
    problems: list[Violation] = []
    dup = clinical.duplicated(["patient_id", "knee_side"], keep="first").to_numpy()
    if dup.any():
        first: dict[tuple[object, object], int] = {}
        for k, (idx, pid, side) in enumerate(
            zip(clinical.index, clinical["patient_id"], clinical["knee_side"], strict=True)
        ):
            key = (pid, side)
            if dup[k]:
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
    patient, _ = pd.factorize(clinical["patient_id"])  # -1: no patient id (not grouped)
    grouped = patient >= 0
    if not grouped.any():
        return problems
    for col in PATIENT_COLUMNS:
        if col not in clinical.columns:
            continue
        codes, uniques = pd.factorize(clinical[col], use_na_sentinel=False)
        texts = np.array([_text(u) for u in uniques], dtype=object)
        text_codes = pd.factorize(texts)[0][codes]
        pairs = np.unique(patient[grouped].astype(np.int64) * len(texts) + text_codes[grouped])
        per_patient = np.bincount(pairs // len(texts), minlength=patient.max() + 1)
        n_distinct = np.where(grouped, per_patient[np.maximum(patient, 0)], 0)
        bad = clinical.index[n_distinct > 1]
        if len(bad) == 0:
            continue
        vals = pd.Series(texts[codes], index=clinical.index)
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
    return problems


def check_eligibility(clinical: pd.DataFrame, plan: MskAgingPlan, *, label: str) -> list[Violation]:
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
    problems.extend(_record_violations(clinical, label))
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
        *([] if plan.fracture.competing_event is None else [plan.fracture.competing_event]),
        *plan.fracture.adjust_for,
        *[e.training_flag for e in plan.embeddings if e.training_flag is not None],
    ]
    for emb in plan.embeddings:
        flag = emb.training_flag
        if flag is None or flag not in inc.columns:
            continue
        for idx in inc.index[inc[flag].eq(True).fillna(False).to_numpy(bool)]:
            problems.append(
                Violation(
                    label,
                    flag,
                    int(idx) + 2,
                    f"included patient {inc.at[idx, 'patient_id']} was in the training or "
                    f"fine-tuning set of the encoder of the {emb.features.replace('_', ' ')} "
                    "features: evaluated results would be optimistic (re-extract the features "
                    "with an encoder trained without the evaluated patients, or exclude the "
                    "patient with a declared reason)",
                    "true",
                )
            )
    death = plan.fracture.competing_event
    if death is not None and {death, plan.fracture.event} <= set(inc.columns):
        both = inc[death].eq(True) & inc[plan.fracture.event].eq(True)
        for idx in inc.index[both.fillna(False).to_numpy(bool)]:
            problems.append(
                Violation(
                    label,
                    death,
                    int(idx) + 2,
                    f"true together with {plan.fracture.event}: follow-up ends at the first "
                    "event, a fracture or death without one",
                    "true",
                )
            )
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


# ----------------------------------------------------------------------------- checklist


def _fmt(est: float, lo: float, hi: float) -> str:
    return f"{est:.3f} ({lo:.3f}-{hi:.3f})"


def checklist(plan: MskAgingPlan, tables: dict[str, pd.DataFrame], cohort: Cohort) -> pd.DataFrame:
    """The TRIPOD+AI 2024 checklist filled from the plan and the tables."""
    flow = tables["flow"]

    def fn(stage: str, col: str = "n_patients", **where: str) -> int:
        return flow_count(flow, stage, column=col, **where)

    def primary(table: str, **where: str) -> str:
        """Estimate (CI) of the primary model, all hospitals, in the row matching ``where``."""
        t = tables[table]
        sel = (t["model"] == plan.primary_model) & (t["site"] == "all")
        for key, value in where.items():
            sel &= t[key] == value
        r = t[sel].iloc[0]
        return _fmt(r["estimate"], r["ci_low"], r["ci_high"])

    # item 23a from the endpoints' tables the plan's analyses wrote
    results = ""
    if "discrimination" in tables:
        macro = {"table": "discrimination", "measure": "auc_macro"}
        results = (
            f"osteoporosis macro AUC internal {primary(**macro, condition='op', set='internal')}, "
            f"external {primary(**macro, condition='op', set='external')}; KL macro AUC external "
            f"{primary(**macro, condition='kl', set='external')}"
        )
    if "kl_agreement" in tables:
        kappa = primary("kl_agreement", set="external", measure="kappa_quadratic")
        results += f"{', ' if results else ''}quadratic kappa external {kappa}"
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
            "; ".join(
                f"{m.name} ({m.kind}): tuned {_settings(m.grid)}; fixed {_settings(m.fixed)}"
                for m in plan.models
            )
            + f"; tuning criterion: mean inner macro AUC; seed {plan.seed}.",
            "Models",
        ),
        "12d": ("Hospitals reported separately and together within each cohort.", "Discrimination"),
        "12e": (
            "One-vs-rest AUC (DeLong; knee level clustered DeLong), macro AUC, Hand & Till's M, confusion "
            "matrices, sensitivity and specificity per class, weighted kappa and accuracy within one grade "
            "(patient-level bootstrap CIs for knees)"
            + (
                "; cumulative AUCs and ordinal c-indices (Harrell's c, ORC)"
                if "ordinal_discrimination" in tables
                else ""
            )
            + (
                "; one-vs-rest calibration (intercept, slope, Brier) of the probabilistic models"
                if "calibration" in tables
                else ""
            )
            + ("; decision curve of osteoporosis" if "decision_curve" in tables else "")
            + ".",
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
        "23b": ("By hospital in the discrimination tables.", "Discrimination"),
        "24": ("No model updating was done.", "Models"),
    }
    if results:
        content["23a"] = (f"{plan.primary_model}: {results}.", "Discrimination")
    return tripod_ai_2024(plan, tables, content=content)


#: This protocol, as the shared pipeline sees it.
analyse = steps_analysis(REGISTRY, always=ALWAYS)
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=False,
    steps=REGISTRY,
)


#: Hyperparameters in words, for the checklist (the plan keeps the libraries' names).
_HYPERPARAMETERS = {
    "max_depth": "maximum tree depth",
    "n_estimators": "number of trees",
    "learning_rate": "learning rate",
    "max_bin": "histogram bins",
    "subsample": "row subsample",
    "colsample_bytree": "column subsample per tree",
    "min_child_weight": "minimum child weight",
    "tree_method": "tree method",
    "n_jobs": "threads",
    "kernel": "kernel",
    "gamma": "kernel coefficient gamma",
    "C": "cost C",
}


def _settings(values: dict) -> str:
    """``{max_depth: [2, 3]}`` as "maximum tree depth 2 or 3" (none: "nothing")."""
    if not values:
        return "nothing"
    parts = []
    for key, value in values.items():
        shown = " or ".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value)
        parts.append(f"{_HYPERPARAMETERS.get(key, str(key).replace('_', ' '))} {shown}")
    return ", ".join(parts)

