"""ovcf-chronicity (NCT07306858): the registered analyses, from validated inputs to tables.

The protocol: a CT deep-learning classifier tells an acute from a chronic
osteoporotic vertebral compression fracture; the reference standard is MRI
within 14 days; development at CQMU, external validation at a second centre;
primary outcome the AUC; secondary sensitivity, specificity, accuracy, PPV,
NPV, ROC curves and confusion matrices; sample size 276 (138 + 138) from
sensitivity 0.90, alpha 0.05, allowable error 0.05 (Buderer).

Unit of the primary analysis: the *index vertebra* of each patient (one per
patient, so the DeLong and binomial methods' independence holds). Analyses
of all fractured vertebrae with patient-clustered intervals belong to the
clustered layer.

:func:`analyse` is pure: it takes validated data and the plan and returns the
tables of the results bundle; it neither reads files nor draws.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from studyval import figures
from studyval.analysis import (
    accuracy,
    calibration,
    clustered,
    decision_curve,
    discrimination,
    resampling,
    sample_size,
    subgroups,
    thresholds,
)
from studyval.analysis.descriptive import baseline_table
from studyval.checklists import stard_2015
from studyval.cohort import (
    Cohort,
    absent_column_violations,
    estimating,
    failure_reason_summary,
)
from studyval.errors import EstimationError, Violation
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.figures.style import legend_below
from studyval.plan import AnalysisPlan
from studyval.protocol import ProtocolTables, StudyProtocol, flow_count

__all__ = [
    "PROTOCOL",
    "SLUG",
    "analyse",
    "check_eligibility",
    "checklist",
    "figure_specs",
    "flow_counts",
    "flow_stages",
    "needed_columns",
]

SLUG = "ovcf-chronicity"
SETS = ("external", "internal")
MAX_CT_MRI_DAYS = 14
MIN_AGE = 50


def check_eligibility(
    clinical: pd.DataFrame, plan: AnalysisPlan, *, label: str
) -> list[Violation]:
    """Protocol rules that span rows or columns of the clinical table.

    * one site, age, sex and exclusion reason per patient;
    * exactly one index vertebra per patient;
    * an included patient (``exclusion_reason == "none"``) is >= 50 years old
      and had the MRI less than 14 days from the CT (either order);
    * ``dxa_t_score`` is present as a column (its cells may be empty): the
      baseline table and the plan's ``bmd_category`` subgroup use it.
    """
    problems = absent_column_violations(clinical, needed_columns(plan), label=label)
    by_patient = clinical.groupby("patient_id", observed=True, sort=False)
    for col in ("site", "age", "sex", "exclusion_reason"):
        n_distinct = by_patient[col].nunique(dropna=False)
        for pid in n_distinct.index[n_distinct > 1]:
            idx = clinical.index[clinical["patient_id"] == pid]
            problems.append(
                Violation(
                    label,
                    col,
                    int(idx[1]) + 2,
                    f"patient {pid} has {n_distinct[pid]} different values; it must be constant within a patient",
                )
            )
    n_index = by_patient["index_vertebra"].sum()
    for pid in n_index.index[n_index != 1]:
        idx = clinical.index[clinical["patient_id"] == pid]
        problems.append(
            Violation(
                label,
                "index_vertebra",
                int(idx[0]) + 2,
                f"patient {pid} has {int(n_index[pid])} index vertebrae; exactly one is required",
            )
        )
    included = clinical["exclusion_reason"] == "none"
    young = included & (clinical["age"] < MIN_AGE)
    for idx in clinical.index[young.fillna(False)]:
        problems.append(
            Violation(
                label,
                "age",
                int(idx) + 2,
                f"included patient is younger than {MIN_AGE}; set exclusion_reason to age_under_50",
                str(clinical.at[idx, "age"]),
            )
        )
    gap = (clinical["mri_date"] - clinical["ct_date"]).dt.days.abs()
    late = included & (gap >= MAX_CT_MRI_DAYS)
    for idx in clinical.index[late.fillna(False)]:
        problems.append(
            Violation(
                label,
                "mri_date",
                int(idx) + 2,
                f"included case has CT and MRI {int(gap[idx])} days apart (must be < {MAX_CT_MRI_DAYS}); "
                "set exclusion_reason to ct_mri_interval_14d_or_more",
            )
        )
    return problems


def needed_columns(plan: AnalysisPlan) -> dict[str, str]:
    """Optional clinical columns the plan's analyses use: column -> what uses it, in words.

    Parameters
    ----------
    plan : AnalysisPlan
        The plan being run.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    uses = ["baseline table (DXA T-score by class and by site)"]
    if any(sg.variable == "bmd_category" for sg in plan.subgroups):
        uses.append("bmd_category subgroup (WHO category of the lowest DXA T-score)")
    return {"dxa_t_score": " and the ".join(uses)}


# ----------------------------------------------------------------------------- flow


def flow_counts(cohort: Cohort, plan: AnalysisPlan) -> pd.DataFrame:
    """Participant-flow counts for the STARD diagram.

    Returns a tidy table with columns ``stage, set, site, group, n_patients,
    n_cases, detail``: screened; excluded by reason; included by site and
    class; split by patient; for each evaluation set the index-test failures
    of the primary model (``detail``: each failure category with its count,
    ``"image unreadable (2); segmentation failed (1)"``) and the analysed
    patients by class.
    """
    clin = cohort.clinical
    pos, neg = plan.outcome.positive, plan.outcome.negative
    rows: list[dict[str, object]] = []

    def add(
        stage: str,
        frame: pd.DataFrame,
        *,
        set_: str = "",
        site: str = "",
        group: str = "",
        detail: str = "",
    ) -> None:
        rows.append(
            {
                "stage": stage,
                "set": set_,
                "site": site,
                "group": group,
                "n_patients": int(frame["patient_id"].nunique()),
                "n_cases": len(frame),
                "detail": detail,
            }
        )

    add("screened", clin)
    excluded = clin[clin["exclusion_reason"] != "none"]
    add("excluded", excluded)
    for reason in clin["exclusion_reason"].cat.categories:
        if reason == "none":
            continue
        add("excluded_reason", excluded[excluded["exclusion_reason"] == reason], group=str(reason))
    included = clin[clin["exclusion_reason"] == "none"]
    add("included", included)
    idx_incl = included[included["index_vertebra"].astype(bool)]
    for site in clin["site"].cat.categories:
        for cls in (pos, neg):
            sub_p = idx_incl[(idx_incl["site"] == site) & (idx_incl[plan.outcome.variable] == cls)]
            pids = set(sub_p["patient_id"])
            add(
                "included_site_class",
                included[included["patient_id"].isin(pids)],
                site=str(site),
                group=cls,
            )
    preds = cohort.predictions
    primary = preds[preds["model_name"] == plan.primary_model]
    split_of = primary.drop_duplicates("patient_id").set_index("patient_id")["split"].astype(str)
    for split in ("development", "internal", "external"):
        pids = set(split_of.index[split_of == split])
        add("split", included[included["patient_id"].isin(pids)], set_=split)
    for set_ in SETS:
        in_set = primary[(primary["split"] == set_) & primary["index_vertebra"].astype(bool)]
        failed = in_set[in_set["status"] == "failed"]
        add(
            "index_test_failed",
            failed,
            set_=set_,
            detail=failure_reason_summary(failed["failure_reason"]),
        )
        ok = in_set[in_set["status"] == "ok"]
        for cls in (pos, neg):
            add("analysed", ok[ok[plan.outcome.variable] == cls], set_=set_, group=cls)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- analyses




def _set_frame(cohort: Cohort, set_: str) -> pd.DataFrame:
    p = cohort.predictions
    return p[(p["split"] == set_) & p["index_vertebra"].astype(bool)]


def _scored(frame: pd.DataFrame, model: str, set_: str) -> pd.DataFrame:
    """Rows of ``frame`` that ``model`` scored; an error where it scored none or gave all one score.

    Raises
    ------
    EstimationError
        Naming the model, the set and the reason: no case with a score
        (every one failed), or every score equal (the model ranks no case
        above another: its AUC is 0.5 by construction with a DeLong interval
        of zero width, and the calibration slope is not identifiable).

    """
    rows = frame[frame["model_name"] == model]
    ok = rows[rows["status"] == "ok"]
    if len(ok) == 0:
        raise EstimationError(
            f"model {model}, {set_} set: none of the {len(rows)} index vertebrae has a score "
            "(every one has status failed); the AUC and every accuracy measure cannot be estimated"
        )
    scores = ok["score"].to_numpy(float)
    if len(ok) > 1 and np.all(scores == scores[0]):
        raise EstimationError(
            f"model {model}, {set_} set: every score is equal ({scores[0]:g}) for the {len(ok)} "
            "scored index vertebrae: the model ranks no case above another, so its AUC (0.5 by "
            "construction, with a DeLong interval of zero width), its comparison with the other "
            "models and its calibration slope cannot be estimated; check the export of the "
            "model's scores"
        )
    return ok


def _wide(frame: pd.DataFrame, models: list[str]) -> pd.DataFrame:
    """One row per case with a score column per model; cases where every model scored."""
    ok = frame[frame["status"] == "ok"]
    wide = ok.pivot(index="case_id", columns="model_name", values="score")
    truth = ok.drop_duplicates("case_id").set_index("case_id")["positive"]
    wide = wide[models].dropna()
    wide.insert(0, "positive", truth.loc[wide.index].astype(bool))
    return wide.sort_index()


def analyse(
    cohort: Cohort, plan: AnalysisPlan, *, progress: Callable[[str], None] = lambda _: None
) -> ProtocolTables:
    """Run the plan's analyses; return the tidy tables of the bundle.

    Parameters
    ----------
    cohort : Cohort
        Validated, joined inputs.
    plan : AnalysisPlan
        The ovcf-chronicity plan.
    progress : callable
        Called with a short message before each step (the CLI shows them).

    """
    models = plan.model_names
    alpha = plan.alpha
    pos, neg = plan.outcome.positive, plan.outcome.negative
    t: dict[str, pd.DataFrame] = {}

    progress("participant flow and baseline characteristics")
    t["flow"] = flow_counts(cohort, plan)
    t["baseline"] = _baseline(cohort, plan)

    auc_rows, roc_rows, acc_rows, cm_rows, youden_rows = [], [], [], [], []
    paired_rows, joint_rows = [], []
    auc_objects: dict[tuple[str, str], discrimination.AUCResult] = {}
    youden_internal: dict[str, float] = {}
    for set_ in ("internal", "external"):
        progress(f"discrimination and accuracy, {set_} set")
        frame = _set_frame(cohort, set_)
        for model in models:
            ok = _scored(frame, model, set_)
            y = np.where(ok["positive"].to_numpy(bool), pos, neg)
            s = ok["score"].to_numpy(float)
            try:
                a = discrimination.auc(y, s, positive=pos, alpha=alpha)
            except EstimationError as exc:
                raise EstimationError(
                    f"column '{plan.outcome.variable}' (reference standard), {set_} set, model {model}: {exc}"
                ) from None
            auc_objects[(set_, model)] = a
            auc_rows.append({"set": set_, "model": model, **a.to_dict()})
            pts = a.roc.points_frame()
            pts.insert(0, "model", model)
            pts.insert(0, "set", set_)
            roc_rows.append(pts)
            with estimating(f"model {model}, {set_} set, accuracy and Youden threshold"):
                for th in plan.thresholds:
                    r = accuracy.diagnostic_accuracy(
                        y,
                        s,
                        positive=pos,
                        threshold=th.value,
                        threshold_status="pre-specified",
                        alpha=alpha,
                        ci_method=plan.proportion_ci,
                    )
                    acc_rows.append(_acc_table(r, set_, model, th.name, "pre-specified", th.source))
                    cm_rows.append(_cm_row(r, set_, model, th.name, th.value, "pre-specified"))
                yd = thresholds.youden(y, s, positive=pos)
                youden_rows.append({"set": set_, "model": model, **yd.to_dict()})
                if set_ == "internal":
                    youden_internal[model] = float(yd.value)
                else:
                    r = accuracy.diagnostic_accuracy(
                        y,
                        s,
                        positive=pos,
                        threshold=youden_internal[model],
                        threshold_status="exploratory",
                        alpha=alpha,
                        ci_method=plan.proportion_ci,
                    )
                    src = "Youden index maximised on the internal set (data-derived, exploratory)"
                    acc_rows.append(
                        _acc_table(r, set_, model, "youden-internal", "exploratory", src)
                    )
                    cm_rows.append(
                        _cm_row(
                            r, set_, model, "youden-internal", youden_internal[model], "exploratory"
                        )
                    )
        wide = _wide(frame, models)
        y = np.where(wide["positive"].to_numpy(bool), pos, neg)
        for a_name, b_name in itertools.combinations(models, 2):
            with estimating(f"models {a_name} and {b_name}, {set_} set, paired DeLong comparison"):
                c = discrimination.compare_auc(
                    y,
                    wide[a_name].to_numpy(),
                    wide[b_name].to_numpy(),
                    positive=pos,
                    alpha=alpha,
                    names=(a_name, b_name),
                )
            paired_rows.append({"set": set_, **c.to_dict()})
        with estimating(f"models {', '.join(models)}, {set_} set, joint DeLong comparison"):
            j = discrimination.compare_auc_k(
                y, {m: wide[m].to_numpy() for m in models}, positive=pos, alpha=alpha
            )
        jd = j.to_dict()
        jd["names"] = ", ".join(j.names)
        jd.pop("aucs", None)
        joint_rows.append({"set": set_, "n_cases": len(wide), **jd})
    t["auc"] = pd.DataFrame(auc_rows)
    t["roc_points"] = pd.concat(roc_rows, ignore_index=True)
    t["accuracy"] = pd.concat(acc_rows, ignore_index=True)
    t["confusion"] = pd.DataFrame(cm_rows)
    t["youden"] = pd.DataFrame(youden_rows)
    t["compare_paired"] = pd.DataFrame(paired_rows)
    t["compare_joint"] = pd.DataFrame(joint_rows)

    progress("internal vs external (unpaired DeLong)")
    unpaired = []
    for model in models:
        fi = _set_frame(cohort, "internal")
        fe = _set_frame(cohort, "external")
        fi = fi[(fi["model_name"] == model) & (fi["status"] == "ok")]
        fe = fe[(fe["model_name"] == model) & (fe["status"] == "ok")]
        with estimating(f"model {model}, internal vs external set, unpaired DeLong comparison"):
            u = discrimination.compare_auc_unpaired(
                np.where(fi["positive"].to_numpy(bool), pos, neg),
                fi["score"].to_numpy(float),
                np.where(fe["positive"].to_numpy(bool), pos, neg),
                fe["score"].to_numpy(float),
                positive=pos,
                alpha=alpha,
                names=("internal", "external"),
            )
        unpaired.append({"model": model, **u.to_dict()})
    t["compare_unpaired"] = pd.DataFrame(unpaired)

    progress("sample size check")
    t["sample_size"] = _sample_size(plan, t["flow"])
    t["models"] = _models_table(cohort, plan)
    t.update(_supplementary(cohort, plan, progress))
    return ProtocolTables(tables=t)


# ----------------------------------------------------------------------------- supplementary

REGIONS = {
    **{f"T{i}": "thoracic (T1-T10)" for i in range(1, 11)},
    **{lvl: "thoracolumbar (T11-L2)" for lvl in ("T11", "T12", "L1", "L2")},
    **{lvl: "lumbar (L3-L5)" for lvl in ("L3", "L4", "L5")},
}
DERIVED_LEVELS = {
    "age_band": ["50-64", "65-79", ">=80"],
    "bmd_category": ["osteoporosis", "osteopenia", "normal"],
    "vertebral_region": ["thoracic (T1-T10)", "thoracolumbar (T11-L2)", "lumbar (L3-L5)"],
}


def derive_subgroup_variables(frame: pd.DataFrame) -> pd.DataFrame:
    """Add the plan's derived subgroup variables (definitions in plan.yml).

    ``age_band``: 50-64, 65-79, >=80 years. ``bmd_category`` (WHO): T <= -2.5
    osteoporosis, -2.5 < T < -1.0 osteopenia, T >= -1.0 normal; missing stays
    missing (its own level in the tables, never tested). ``vertebral_region``:
    thoracic T1-T10, thoracolumbar T11-L2, lumbar L3-L5.
    """
    out = frame.copy()
    age = out["age"].astype(float)
    out["age_band"] = pd.Categorical(
        np.select(
            [age < 65, age < 80], DERIVED_LEVELS["age_band"][:2], DERIVED_LEVELS["age_band"][2]
        ),
        categories=DERIVED_LEVELS["age_band"],
    )
    t = out["dxa_t_score"].astype(float)
    bmd = np.select([t <= -2.5, t < -1.0, t >= -1.0], DERIVED_LEVELS["bmd_category"], default="")
    out["bmd_category"] = pd.Categorical(
        np.where(bmd == "", None, bmd), categories=DERIVED_LEVELS["bmd_category"]
    )
    out["vertebral_region"] = pd.Categorical(
        out["vertebral_level"].astype(str).map(REGIONS),
        categories=DERIVED_LEVELS["vertebral_region"],
    )
    return out


def _labels(frame: pd.DataFrame, plan: AnalysisPlan) -> np.ndarray:
    return np.where(frame["positive"].to_numpy(bool), plan.outcome.positive, plan.outcome.negative)


def _supplementary(
    cohort: Cohort, plan: AnalysisPlan, progress: Callable[[str], None]
) -> dict[str, pd.DataFrame]:
    """Calibration, decision curves, subgroups and vertebra-level analyses (plan section A1)."""
    t: dict[str, pd.DataFrame] = {}
    pos = plan.outcome.positive
    prim = plan.sets.primary
    models = plan.model_names
    seed = plan.seed
    frame = _set_frame(cohort, prim)

    if plan.calibration is not None:
        progress(f"calibration, {prim} set")
        results = {}
        rows = []
        for k, model in enumerate(models):
            ok = _scored(frame, model, prim)
            with estimating(f"model {model}, {prim} set, calibration"):
                res = calibration.calibration(
                    _labels(ok, plan),
                    ok["score"].to_numpy(float),
                    positive=pos,
                    alpha=plan.alpha,
                    n_resamples=plan.calibration.n_resamples,
                    seed=seed + k,
                    ci_method=plan.calibration.ci_method,
                )
            results[model] = res
            tab = res.table()
            tab.insert(0, "model", model)
            tab.insert(0, "set", prim)
            rows.append(tab)
        t["calibration"] = pd.concat(rows, ignore_index=True)
        t["calibration_curves"] = calibration.curves_frame(results)
        t["calibration_histograms"] = calibration.histograms_frame(results)

    if plan.decision_curve is not None:
        progress(f"decision curves, {prim} set")
        spec = plan.decision_curve
        grid = np.round(
            np.arange(
                spec.threshold_from,
                spec.threshold_to + spec.threshold_step / 2,
                spec.threshold_step,
            ),
            10,
        )
        wide = _wide(frame, models)
        y = np.where(wide["positive"].to_numpy(bool), pos, plan.outcome.negative)
        with estimating(f"models {', '.join(models)}, {prim} set, decision curves"):
            dc = decision_curve.net_benefit(
                y, {m: wide[m].to_numpy() for m in models}, positive=pos, thresholds=grid
            )
        t["decision_curve"] = dc.frame()
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
                    seed=seed + 100 + k,
                    alpha=plan.alpha,
                    labels=(a, b),
                )
            diffs.append(d.frame())
        if diffs:
            t["decision_curve_difference"] = pd.concat(diffs, ignore_index=True)

    if plan.subgroups:
        progress("subgroup analyses")
        t.update(_subgroups(cohort, plan))

    if plan.vertebra_level is not None:
        progress(f"vertebra-level analysis with patient-clustered intervals, {prim} set")
        t.update(_vertebra_level(cohort, plan))
    return t


def _subgroups(cohort: Cohort, plan: AnalysisPlan) -> dict[str, pd.DataFrame]:
    pos, neg = plan.outcome.positive, plan.outcome.negative
    model = plan.primary_model
    th = plan.thresholds[0]
    preds = derive_subgroup_variables(cohort.predictions)
    preds = preds[(preds["model_name"] == model) & (preds["status"] == "ok")]
    tables, hets = [], []
    for k, sg in enumerate(plan.subgroups):
        if sg.set == "pooled":
            data = preds[
                preds["split"].isin(["internal", "external"]) & preds["index_vertebra"].astype(bool)
            ]
            groups = data["site"].astype(str) if sg.variable == "site" else data[sg.variable]
        elif sg.unit == "vertebra":
            data = preds[preds["split"] == plan.sets.primary]
        else:
            data = preds[
                (preds["split"] == plan.sets.primary) & preds["index_vertebra"].astype(bool)
            ]
        if sg.variable not in data.columns:
            raise EstimationError(
                f"subgroup variable {sg.variable!r} is neither in the data nor derived by {SLUG}"
            )
        groups = data[sg.variable]
        levels = DERIVED_LEVELS.get(sg.variable)
        if levels is None and isinstance(groups.dtype, pd.CategoricalDtype):
            levels = [str(c) for c in groups.cat.categories]
        groups = (
            groups.astype(object)
            .where(groups.notna(), None)
            .map(lambda v: v if v is None else str(v))
        )
        clusters = data["patient_id"].to_numpy() if sg.unit == "vertebra" else None
        y = _labels(data, plan)
        s = data["score"].to_numpy(float)
        common = {
            "positive": pos,
            "negative": neg,
            "status": sg.status,
            "alpha": plan.alpha,
            "name": sg.variable,
            "levels": levels,
            "missing": "level",
            "clusters": clusters,
            "n_resamples": plan.vertebra_level.n_resamples if plan.vertebra_level else 2000,
            "seed": plan.seed + 200 + k if clusters is not None else None,
        }
        where = "internal and external sets" if sg.set == "pooled" else f"{plan.sets.primary} set"
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
            tab = res.table()
            tab.insert(0, "unit", sg.unit)
            tab.insert(0, "model", model)
            tables.append(tab)
            het = res.heterogeneity.to_frame()
            het.insert(0, "measure", tab["measure"].iloc[0])
            het.insert(0, "status", sg.status)
            het.insert(0, "grouping", sg.variable)
            het.insert(0, "model", model)
            hets.append(het)
    return {
        "subgroups": pd.concat(tables, ignore_index=True),
        "subgroup_heterogeneity": pd.concat(hets, ignore_index=True),
    }


def _vertebra_level(cohort: Cohort, plan: AnalysisPlan) -> dict[str, pd.DataFrame]:
    pos = plan.outcome.positive
    prim = plan.sets.primary
    p = cohort.predictions
    data = p[(p["split"] == prim) & (p["status"] == "ok")]
    spec = plan.vertebra_level
    rows, acc_rows = [], []
    th = plan.thresholds[0]
    for k, model in enumerate(plan.model_names):
        d = data[data["model_name"] == model]
        y = _labels(d, plan)
        s = d["score"].to_numpy(float)
        cl = d["patient_id"].to_numpy()
        with estimating(
            f"model {model}, {prim} set, all fractured vertebrae (patient-clustered AUC)"
        ):
            r = clustered.auc_clustered(y, s, cl, positive=pos, alpha=plan.alpha)
        rows.append({"set": prim, "model": model, **r.to_dict()})
        is_pos = d["positive"].to_numpy(bool)
        test_pos = s >= th.value
        for measure, success, denom in (
            ("sensitivity", test_pos, is_pos),
            ("specificity", ~test_pos, ~is_pos),
        ):
            b = resampling.bootstrap(
                lambda w, success=success, denom=denom: resampling.weighted_proportion(
                    success, denom, w
                ),
                n_rows=len(d),
                clusters=cl,
                n_resamples=spec.n_resamples,
                seed=plan.seed + 300 + k,
                alpha=plan.alpha,
                method="percentile",
            )
            acc_rows.append(
                {
                    "set": prim,
                    "model": model,
                    "measure": measure,
                    "threshold": th.value,
                    "threshold_status": "pre-specified",
                    "numerator": int((success & denom).sum()),
                    "denominator": int(denom.sum()),
                    "n_patients": int(pd.unique(cl).size),
                    **{
                        key: b.to_dict()[key]
                        for key in (
                            "estimate",
                            "ci_low",
                            "ci_high",
                            "ci_level",
                            "method",
                            "n_resamples",
                            "n_failed",
                        )
                    },
                }
            )
    wide_rows = []
    ok = data.pivot(index="case_id", columns="model_name", values="score")[
        plan.model_names
    ].dropna()
    meta = data.drop_duplicates("case_id").set_index("case_id").loc[ok.index]
    y = _labels(meta, plan)
    for a, b in itertools.combinations(plan.model_names, 2):
        with estimating(
            f"models {a} and {b}, {prim} set, all fractured vertebrae (clustered DeLong)"
        ):
            c = clustered.compare_auc_clustered(
                y,
                ok[a].to_numpy(),
                ok[b].to_numpy(),
                meta["patient_id"].to_numpy(),
                positive=pos,
                alpha=plan.alpha,
                names=(a, b),
            )
        wide_rows.append({"set": prim, **c.to_dict()})
    return {
        "vertebra_auc": pd.DataFrame(rows),
        "vertebra_accuracy": pd.DataFrame(acc_rows),
        "vertebra_compare": pd.DataFrame(wide_rows),
    }


def _acc_table(
    r: accuracy.AccuracyResult, set_: str, model: str, name: str, status: str, source: str
) -> pd.DataFrame:
    tab = r.table().copy() if callable(getattr(r, "table", None)) else r.table.copy()
    tab.insert(0, "threshold_source", source)
    tab.insert(0, "threshold_status", status)
    tab.insert(0, "threshold", float(r.threshold))
    tab.insert(0, "threshold_name", name)
    tab.insert(0, "model", model)
    tab.insert(0, "set", set_)
    return tab


def _cm_row(
    r: accuracy.AccuracyResult, set_: str, model: str, name: str, value: float, status: str
) -> dict[str, object]:
    cm = r.confusion
    return {
        "set": set_,
        "model": model,
        "threshold_name": name,
        "threshold": float(value),
        "threshold_status": status,
        "tp": int(cm.tp),
        "fp": int(cm.fp),
        "fn": int(cm.fn),
        "tn": int(cm.tn),
    }


def _baseline(cohort: Cohort, plan: AnalysisPlan) -> pd.DataFrame:
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]
    per_patient = inc[inc["index_vertebra"].astype(bool)].copy()
    n_vert = inc.groupby("patient_id", observed=True).size()
    per_patient["fractured_vertebrae"] = per_patient["patient_id"].map(n_vert).astype(float)
    per_patient["index_level_region"] = pd.Categorical(
        np.select(
            [per_patient["vertebral_level"].astype(str).isin(["T11", "T12", "L1", "L2"])],
            ["thoracolumbar (T11-L2)"],
            default="other",
        ),
        categories=["thoracolumbar (T11-L2)", "other"],
    )
    out = []
    for grouping, col in (("class", plan.outcome.variable), ("site", "site")):
        tab = baseline_table(
            per_patient,
            group=col,
            continuous=["age", "dxa_t_score", "fractured_vertebrae"],
            categorical=["sex", "index_level_region"]
            + (["site"] if col != "site" else [plan.outcome.variable]),
        )
        tab.insert(0, "grouping", grouping)
        out.append(tab)
    return pd.concat(out, ignore_index=True)


def _sample_size(plan: AnalysisPlan, flow: pd.DataFrame) -> pd.DataFrame:
    ss = plan.sample_size
    rows = []
    if ss.sensitivity is not None:
        b = sample_size.buderer(sensitivity=ss.sensitivity, precision=ss.precision, alpha=ss.alpha)
        chk = sample_size.check_registered(
            b, ss.registered_positives, label=f"{plan.outcome.positive} cases"
        )
        rows.append(
            {
                "check": "registered",
                "quantity": f"{plan.outcome.positive} cases (sensitivity)",
                "assumption": f"sensitivity {ss.sensitivity}, allowable error {ss.precision}, alpha {ss.alpha}",
                "method": "Buderer 1996",
                "required_unrounded": float(b.n),
                "required": int(np.ceil(b.n)),
                "available": int(ss.registered_positives),
                "shortfall": int(chk.shortfall),
                "adequate": bool(chk.adequate),
                "message": chk.message,
            }
        )
        analysed = flow[(flow["stage"] == "analysed") & (flow["group"] == plan.outcome.positive)]
        for rec in analysed.itertuples(index=False):
            chk2 = sample_size.check_registered(
                b.n, int(rec.n_patients), label=f"{plan.outcome.positive} cases"
            )
            verdict = (
                f"{chk2.shortfall} fewer than the {chk2.required} the formula requires, so the sensitivity CI "
                f"is wider than the registered +/-{ss.precision:g}"
                if chk2.shortfall > 0
                else f"at least the {chk2.required} the formula requires"
            )
            message = f"The {rec.set} set has {int(rec.n_patients)} analysed {plan.outcome.positive} cases: {verdict}."
            rows.append(
                {
                    "check": f"observed ({rec.set})",
                    "quantity": f"{plan.outcome.positive} cases analysed, {rec.set} set",
                    "assumption": f"sensitivity {ss.sensitivity}, allowable error {ss.precision}, alpha {ss.alpha}",
                    "method": "Buderer 1996",
                    "required_unrounded": float(b.n),
                    "required": int(np.ceil(b.n)),
                    "available": int(rec.n_patients),
                    "shortfall": int(chk2.shortfall),
                    "adequate": bool(chk2.adequate),
                    "message": message,
                }
            )
    if ss.specificity is not None:
        b = sample_size.buderer(specificity=ss.specificity, precision=ss.precision, alpha=ss.alpha)
        chk = sample_size.check_registered(
            b.n_non_diseased,
            ss.registered_negatives,
            label=f"{plan.outcome.negative} cases",
            basis="the Buderer formula",
        )
        rows.append(
            {
                "check": "registered",
                "quantity": f"{plan.outcome.negative} cases (specificity)",
                "assumption": f"specificity {ss.specificity}, allowable error {ss.precision}, alpha {ss.alpha}",
                "method": "Buderer 1996",
                "required_unrounded": float(b.n_non_diseased),
                "required": int(np.ceil(b.n_non_diseased)),
                "available": int(ss.registered_negatives),
                "shortfall": int(chk.shortfall),
                "adequate": bool(chk.adequate),
                "message": chk.message,
            }
        )
    return pd.DataFrame(rows)


def _models_table(cohort: Cohort, plan: AnalysisPlan) -> pd.DataFrame:
    p = cohort.predictions
    rows = []
    for spec in plan.models:
        sub = p[p["model_name"] == spec.name]
        rows.append(
            {
                "model": spec.name,
                "role": spec.role,
                "model_version": str(sub["model_version"].iloc[0]),
                "n_cases_scored": int((sub["status"] == "ok").sum()),
                "n_failed": int((sub["status"] == "failed").sum()),
                "description": spec.description,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- report pieces


def checklist(plan: AnalysisPlan, tables: dict[str, pd.DataFrame], cohort: Cohort) -> pd.DataFrame:
    """The STARD 2015 checklist filled from the plan and the tables."""
    return stard_2015(plan, tables, extra=_stard_extra(cohort))


def _stard_extra(cohort: Cohort) -> dict[str, str]:
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]
    first, last = inc["ct_date"].min(), inc["ct_date"].max()
    gap = (inc["mri_date"] - inc["ct_date"]).dt.days.abs()
    sites = ", ".join(str(s) for s in inc["site"].cat.categories)
    return {
        "8": f"Sites {sites}; CT dates of included patients {first:%Y-%m-%d} to {last:%Y-%m-%d}.",
        "22": (
            f"CT to MRI interval, included cases: median {gap.median():.0f} days "
            f"(range {gap.min():.0f}-{gap.max():.0f}); no intervention between the tests by design."
        ),
    }


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



def imaging_chain(
    clinical: Path, work: Path, plan: AnalysisPlan, *, seed: int, progress: Callable[[str], None]
) -> dict[str, Path]:
    """The demo's imaging chain: phantom CTs -> the three classifiers -> the prediction table.

    See :func:`studyval.imaging_demo.ovcf_imaging` (needs the ``models`` extra).
    """
    from studyval.imaging_demo import ovcf_imaging

    res = ovcf_imaging(clinical, work, seed=seed, progress=progress)
    return {"clinical": res.clinical, "predictions": res.predictions, "imaging": res.imaging}


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=analyse,
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=True,
    imaging_chain=imaging_chain,
)
