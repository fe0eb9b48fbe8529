"""The diagnostic-accuracy steps (studyval.steps.diagnostic) on a study that is not ovcf-chronicity.

A made-up two-model wrist-fracture study (two sites, several radiographs per
patient, one index radiograph each) run through the generic steps: each step
must be a faithful adapter of its :mod:`studyval.analysis` function (same
numbers as calling the function on the same rows), follow the plan (sets,
primary cases, thresholds, subgroups, specs), and fail with a message naming
the model, the set and the reason.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from studyval.analysis import accuracy, discrimination, sample_size, thresholds
from studyval.cohort import Cohort
from studyval.errors import EstimationError, StudyvalError
from studyval.plan import AnalysisPlan
from studyval.steps import diagnostic
from studyval.steps.common import FLOW
from studyval.steps.diagnostic import REGISTRY, evaluation_sets, primary_cases
from studyval.steps.registry import StepContractError, StepRegistry, UnknownStepError

MODELS = ("ResNet", "Radiologist-score")


def _plan(**changes) -> AnalysisPlan:
    raw = {
        "slug": "wrist-fracture",
        "plan_version": "0.1.0",
        "dictionary": "wrist-fracture",
        "seed": 7,
        "registry": {
            "id": "NCT00000000",
            "title": "Radiograph AI for scaphoid fracture",
            "version_date": "2026-01-01",
            "study_type": "diagnostic_accuracy",
            "checklist": "STARD-2015",
            "design": "Retrospective, two sites",
        },
        "outcome": {
            "variable": "fracture",
            "positive": "yes",
            "negative": "no",
            "reference_standard": "CT within 10 days",
        },
        "models": [
            {"name": MODELS[0], "role": "primary"},
            {"name": MODELS[1], "role": "comparator"},
        ],
        "sets": {
            "primary": "external",
            "secondary": ["internal"],
            "unit": "one index radiograph per patient",
            "primary_cases": "index_vertebra",
            "external_sites": ["B"],
            "development_sites": ["A"],
        },
        "thresholds": [{"name": "t40", "value": 0.4, "source": "plan 0.1.0"}],
        "endpoints": [{"id": "P1", "kind": "primary", "measure": "AUC", "analyses": ["auc"]}],
        "subgroups": [{"variable": "sex", "status": "pre-specified"}],
        "calibration": {"n_resamples": 20, "ci_method": "percentile"},
        "decision_curve": {
            "threshold_from": 0.1,
            "threshold_to": 0.5,
            "threshold_step": 0.1,
            "compare": [list(MODELS)],
            "n_resamples": 20,
        },
        "vertebra_level": {"n_resamples": 50},
        "sample_size": {
            "method": "buderer",
            "registered_text": "40 with and 40 without a fracture",
            "sensitivity": 0.8,
            "specificity": 0.8,
            "precision": 0.1,
            "registered_positives": 40,
            "registered_negatives": 40,
            "registered_total": 80,
        },
    }
    for key, value in changes.items():
        raw[key] = value if not isinstance(value, dict) else {**raw[key], **value}
    return AnalysisPlan.model_validate(raw)


def _cohort(seed: int = 3, n_patients: int = 60) -> Cohort:
    """Two sets of patients with 1-3 radiographs each; models score positives higher."""
    rng = np.random.default_rng(seed)
    rows = []
    for split in ("internal", "external"):
        for p in range(n_patients):
            pid = f"{split[:3]}{p:03d}"
            positive = bool(p % 2)
            for v in range(1 + rng.integers(3)):
                case = f"{pid}-{v}"
                for m, (a, b) in zip(MODELS, ((4, 2), (3, 2)), strict=True):
                    mean = rng.beta(a, b) if positive else rng.beta(b, a)
                    rows.append(
                        {
                            "case_id": case,
                            "patient_id": pid,
                            "model_name": m,
                            "model_version": "v1",
                            "split": split,
                            "site": "B" if split == "external" else "A",
                            "status": "ok",
                            "score": round(float(mean), 6),
                            "positive": positive,
                            "index_vertebra": v == 0,
                            "sex": "F" if p % 3 else "M",
                        }
                    )
    preds = pd.DataFrame(rows)
    preds["sex"] = pd.Categorical(preds["sex"], categories=["F", "M"])
    return Cohort(clinical=pd.DataFrame(), predictions=preds)


def _run(names, cohort=None, plan=None):
    return REGISTRY.run(names, _cohort() if cohort is None else cohort, plan or _plan())


def _labels(frame: pd.DataFrame) -> np.ndarray:
    return np.where(frame["positive"], "yes", "no")


def _ok(cohort: Cohort, plan: AnalysisPlan, set_: str, model: str) -> pd.DataFrame:
    f = primary_cases(cohort, plan, set_)
    return f[(f["model_name"] == model) & (f["status"] == "ok")]


# ----------------------------------------------------------------------------- the registry


def test_the_study_type_registers_its_generic_steps_and_declares_each_table_once():
    assert set(REGISTRY.names) == {
        "models",
        "sample_size",
        "auc",
        "auc_logit",
        "roc_curve",
        "youden",
        "accuracy",
        "confusion_matrix",
        "intention_to_diagnose",
        "predictive_values",
        "compare_auc",
        "compare_auc_k",
        "compare_auc_unpaired",
        "calibration",
        "decision_curve",
        "subgroups",
        "clustered_auc",
    }
    declared = [t.name for name in REGISTRY.names for t in REGISTRY[name].produces]
    assert len(declared) == len(set(declared))


def test_the_study_type_has_nothing_of_a_particular_study():
    source = inspect.getsource(diagnostic).lower()
    for word in ("ovcf", "chronicity", "acute", "densenet", "nct0", "cqmu"):
        assert word not in source


def test_an_unknown_step_suggests_the_closest():
    with pytest.raises(UnknownStepError, match="did you mean 'compare_auc'"):
        REGISTRY.resolve(["compare_aucc"])


def test_sample_size_needs_the_study_s_flow_table():
    with pytest.raises(StepContractError, match="needs table 'flow'"):
        REGISTRY.resolve(["sample_size"])
    own = StepRegistry("study")

    @own.step("flow", produces=[FLOW])
    def _flow(cohort, plan, ctx):
        return {
            "flow": pd.DataFrame(
                {
                    "stage": ["analysed"] * 4,
                    "set": ["internal", "internal", "external", "external"],
                    "group": ["yes", "no", "yes", "no"],
                    "n_patients": [30, 30, 25, 35],
                }
            )
        }

    tables = REGISTRY.including(own).run(["sample_size"], _cohort(), _plan())
    ss = tables["sample_size"]
    assert list(ss["check"]) == [
        "registered",
        "observed (internal)",
        "observed (external)",
        "registered",
    ]
    b = sample_size.buderer(sensitivity=0.8, precision=0.1, alpha=0.05)
    reg = sample_size.check_registered(b, 40, label="yes cases")
    assert ss["required_unrounded"].iloc[0] == b.n and ss["message"].iloc[0] == reg.message
    assert ss["available"].tolist()[:3] == [40, 30, 25]
    assert ss["message"].iloc[2].startswith("The external set has 25 analysed yes cases: ")
    spec = sample_size.buderer(specificity=0.8, precision=0.1, alpha=0.05)
    assert ss["required_unrounded"].iloc[3] == spec.n_non_diseased


# ----------------------------------------------------------------------------- faithful adapters


def test_evaluation_sets_follow_the_plan_in_a_fixed_order():
    assert evaluation_sets(_plan()) == ["internal", "external"]
    only = _plan(sets={"primary": "external", "secondary": []})
    assert evaluation_sets(only) == ["external"]


@pytest.mark.parametrize(
    ("primary_cases_", "expected"),
    [
        pytest.param("index_vertebra", 60, id="index-case-per-patient"),
        pytest.param("all_cases", None, id="all-cases"),
    ],
)
def test_primary_cases_follow_sets_primary_cases(primary_cases_, expected):
    cohort = _cohort()
    plan = _plan(sets={"primary_cases": primary_cases_})
    auc = _run(["auc"], cohort, plan)["auc"]
    ext = cohort.predictions[
        (cohort.predictions["split"] == "external")
        & (cohort.predictions["model_name"] == MODELS[0])
    ]
    n = len(ext) if expected is None else expected
    row = auc[(auc["set"] == "external") & (auc["model"] == MODELS[0])].iloc[0]
    assert row["n_positive"] + row["n_negative"] == n


def test_auc_and_roc_steps_equal_the_analysis_functions_on_the_same_rows():
    cohort, plan = _cohort(), _plan()
    t = _run(["auc", "roc_curve"], cohort, plan)
    assert list(t["auc"][["set", "model"]].itertuples(index=False, name=None)) == [
        (s, m) for s in ("internal", "external") for m in MODELS
    ]
    for row in t["auc"].itertuples():
        ok = _ok(cohort, plan, row.set, row.model)
        ref = discrimination.auc(_labels(ok), ok["score"].to_numpy(), positive="yes")
        assert (row.estimate, row.se, row.ci_low, row.ci_high) == tuple(
            ref.to_dict()[k] for k in ("estimate", "se", "ci_low", "ci_high")
        )
        pts = t["roc_points"]
        pts = pts[(pts["set"] == row.set) & (pts["model"] == row.model)]
        pd.testing.assert_frame_equal(
            pts.drop(columns=["set", "model"]).reset_index(drop=True), ref.roc.points_frame()
        )


def test_auc_step_uses_the_plan_s_interval_method():
    cohort = _cohort()
    wald = _run(["auc"], cohort, _plan())["auc"]
    logit = _run(["auc"], cohort, _plan(auc_ci="logit"))["auc"]
    assert set(wald["method"]) == {"DeLong"}
    assert set(logit["method"]) == {"DeLong (logit scale)"}
    pd.testing.assert_series_equal(wald["estimate"], logit["estimate"])
    pd.testing.assert_series_equal(wald["se"], logit["se"])
    for row in logit.itertuples():
        ok = _ok(cohort, _plan(), row.set, row.model)
        ref = discrimination.auc(
            _labels(ok), ok["score"].to_numpy(), positive="yes", ci_method="logit"
        )
        assert (row.ci_low, row.ci_high) == (ref.ci_low, ref.ci_high)



def test_auc_logit_step_is_the_plan_s_aucs_with_the_logit_interval():
    """Step auc_logit: the AUCs of a Wald plan with logit-scale intervals, beside them."""
    cohort = _cohort()
    plan = _plan()
    out = _run(["auc", "auc_logit"], cohort, plan)
    as_logit = _run(["auc"], cohort, _plan(auc_ci="logit"))["auc"]
    assert set(out["auc"]["method"]) == {"DeLong"}
    pd.testing.assert_frame_equal(out["auc_logit"], as_logit)

def _fail_some(preds, split, n_pos, n_neg, model=MODELS[0]):
    """Mark the first ``n_pos`` positive and ``n_neg`` negative index cases of ``split`` failed."""
    idx = preds[
        (preds["model_name"] == model) & (preds["split"] == split) & preds["index_vertebra"]
    ]
    chosen = [*idx[idx["positive"]].index[:n_pos], *idx[~idx["positive"]].index[:n_neg]]
    preds.loc[chosen, "status"] = "failed"
    preds.loc[chosen, "score"] = np.nan


def test_intention_to_diagnose_counts_the_failures_of_each_class_as_errors():
    cohort, plan = _cohort(), _plan()
    _fail_some(cohort.predictions, "external", 3, 2)
    out = _run(["intention_to_diagnose", "accuracy"], cohort, plan)
    t = out["accuracy_itd"]
    assert list(t.columns[: len(diagnostic.ACCURACY_ITD.columns)]) == list(
        diagnostic.ACCURACY_ITD.columns
    )
    ext = t[(t["set"] == "external") & (t["model"] == MODELS[0])].set_index(["analysis", "measure"])
    # per protocol: the rows of the accuracy table (the failed cases left out)
    acc = out["accuracy"]
    acc = acc[
        (acc["set"] == "external")
        & (acc["model"] == MODELS[0])
        & (acc["threshold_status"] == "pre-specified")
    ].set_index("measure")
    for measure in ("sensitivity", "specificity"):
        row = ext.loc[("per-protocol", measure)]
        cols = ["estimate", "ci_low", "ci_high", "numerator", "denominator"]
        assert row[cols].tolist() == acc.loc[measure, cols].tolist()
    # by intention to diagnose: 3 failed positives are false negatives, 2 failed negatives false
    # positives; the numbers are accuracy.intention_to_diagnose's on the same counts
    ok = _ok(cohort, plan, "external", MODELS[0])
    cm = accuracy.confusion_matrix(
        _labels(ok), ok["score"].to_numpy(), positive="yes", threshold=0.4
    )
    ref = accuracy.intention_to_diagnose(
        cm, n_nonevaluable_positive=3, n_nonevaluable_negative=2, threshold_status="pre-specified"
    ).to_frame()
    sens = ext.loc[("intention-to-diagnose", "sensitivity")]
    spec = ext.loc[("intention-to-diagnose", "specificity")]
    assert (sens["numerator"], sens["denominator"], sens["n_nonevaluable"]) == (cm.tp, 30, 3)
    assert (spec["numerator"], spec["denominator"], spec["n_nonevaluable"]) == (cm.tn, 30, 2)
    np.testing.assert_array_equal(ext["estimate"].to_numpy(), ref["estimate"].to_numpy())
    # the other model and the internal set lost nothing: 0 counted, both analyses equal
    rest = t[(t["set"] == "internal") | (t["model"] == MODELS[1])]
    assert set(rest["n_nonevaluable"]) == {0}
    for _, grp in rest.groupby(["set", "model", "measure"]):
        assert grp["estimate"].nunique() == 1 and grp["denominator"].nunique() == 1


def test_youden_threshold_of_the_internal_set_is_applied_exploratorily_elsewhere():
    cohort, plan = _cohort(), _plan()
    t = _run(["accuracy", "confusion_matrix"], cohort, plan)
    assert "youden" in t  # needed, so run first
    acc, cm = t["accuracy"], t["confusion"]
    exploratory = acc[acc["threshold_status"] == "exploratory"]
    assert set(exploratory["set"]) == {"external"}
    assert set(exploratory["threshold_name"]) == {"youden-internal"}
    for model in MODELS:
        ok = _ok(cohort, plan, "internal", model)
        j = thresholds.youden(_labels(ok), ok["score"].to_numpy(), positive="yes")
        used = exploratory.loc[exploratory["model"] == model, "threshold"].unique()
        assert used.tolist() == [float(j.value)]
        ext = _ok(cohort, plan, "external", model)
        ref = accuracy.diagnostic_accuracy(
            _labels(ext),
            ext["score"].to_numpy(),
            positive="yes",
            threshold=float(j.value),
            threshold_status="exploratory",
        )
        row = cm[(cm["model"] == model) & (cm["threshold_name"] == "youden-internal")].iloc[0]
        assert (row.tp, row.fp, row.fn, row.tn) == (
            ref.confusion.tp,
            ref.confusion.fp,
            ref.confusion.fn,
            ref.confusion.tn,
        )
    # the counts behind each sensitivity are the confusion matrix's
    sens = acc[acc["measure"] == "sensitivity"].reset_index(drop=True)
    assert (sens["numerator"] == cm["tp"]).all()
    assert (sens["denominator"] == cm["tp"] + cm["fn"]).all()


def test_clustered_accuracy_is_the_cluster_bootstrap_of_diagnostic_accuracy():
    cohort, plan = _cohort(), _plan()
    t = _run(["clustered_auc"], cohort, plan)
    va = t["vertebra_accuracy"]
    for k, model in enumerate(MODELS):
        d = cohort.predictions
        d = d[(d["split"] == "external") & (d["model_name"] == model)]
        ref = accuracy.diagnostic_accuracy(
            _labels(d),
            d["score"].to_numpy(),
            positive="yes",
            threshold=0.4,
            threshold_status="pre-specified",
            clusters=d["patient_id"].to_numpy(),
            n_resamples=50,
            seed=plan.seed + 300 + k,
            ci_method="percentile",
        )
        for measure in ("sensitivity", "specificity"):
            row = va[(va["model"] == model) & (va["measure"] == measure)].iloc[0]
            b = ref.bootstrap[measure]
            assert (row.ci_low, row.ci_high, row.n_patients) == (b.ci_low, b.ci_high, 60)
            assert row.numerator == ref.measure(measure).numerator


# ----------------------------------------------------------------------------- plan-driven options


def test_decision_curve_without_comparisons_writes_an_empty_difference_table():
    plan = _plan(decision_curve={"compare": []})
    t = _run(["decision_curve"], plan=plan)
    assert t["decision_curve_difference"].empty
    assert list(t["decision_curve_difference"].columns) == list(
        diagnostic.DECISION_CURVE_DIFFERENCE.columns
    )
    assert sorted(t["decision_curve"]["threshold"].unique()) == [0.1, 0.2, 0.3, 0.4, 0.5]


def test_a_step_named_without_its_plan_section_uses_the_schema_defaults():
    t = _run(["calibration"], plan=_plan(calibration=None, seed=11))
    assert set(t["calibration"]["model"]) == set(MODELS)


def test_subgroups_step_without_subgroups_is_an_error():
    with pytest.raises(StudyvalError, match="declares no subgroups"):
        _run(["subgroups"], plan=_plan(subgroups=[]))


def test_a_subgroup_variable_missing_from_the_cohort_is_named():
    plan = _plan(subgroups=[{"variable": "age_band", "status": "exploratory", "derived": True}])
    with pytest.raises(EstimationError, match="'age_band' is neither in the data nor derived"):
        _run(["subgroups"], plan=plan)


def test_subgroups_keep_the_category_order_and_cluster_by_patient_where_asked():
    plan = _plan(
        subgroups=[
            {"variable": "sex", "status": "pre-specified"},
            {"variable": "site", "status": "pre-specified", "set": "pooled"},
            {"variable": "sex", "status": "exploratory", "unit": "vertebra"},
        ]
    )
    sg = _run(["subgroups"], plan=plan)["subgroups"]
    auc = sg[(sg["measure"] == "auc") & (sg["row_type"] == "subgroup")]
    assert auc.loc[auc["unit"] == "patient", "level"].tolist() == ["F", "M", "A", "B"]
    assert (auc.loc[auc["unit"] == "vertebra", "n_clusters"] > 0).all()


def test_unpaired_comparison_needs_two_sets():
    plan = _plan(sets={"primary": "external", "secondary": []})
    with pytest.raises(StudyvalError, match="compares two evaluation sets"):
        _run(["compare_auc_unpaired"], plan=plan)


# ----------------------------------------------------------------------------- clear failures


def _all_failed(preds):
    sel = (preds["model_name"] == MODELS[1]) & (preds["split"] == "internal")
    preds.loc[sel, "status"] = "failed"
    preds.loc[sel, "score"] = np.nan
    return rf"model {MODELS[1]}, internal set: none of the 60 index vertebrae has a score"


def _constant(preds):
    sel = (preds["model_name"] == MODELS[0]) & (preds["split"] == "external")
    preds.loc[sel, "score"] = 0.3
    return rf"model {MODELS[0]}, external set: every score is equal \(0\.3\) for the 60 scored"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(_all_failed, id="every-case-failed"),
        pytest.param(_constant, id="constant-scores"),
    ],
)
@pytest.mark.parametrize("step", ["auc", "roc_curve", "accuracy", "calibration"])
def test_unusable_scores_name_the_model_and_the_set(spoil, step):
    cohort = _cohort()
    message = spoil(cohort.predictions)
    plan = _plan()
    if spoil is _all_failed and step == "calibration":
        plan = _plan(sets={"primary": "internal", "secondary": ["external"]})
    with pytest.raises(EstimationError, match=message):
        _run([step], cohort, plan)


def test_a_single_class_set_names_the_reference_standard_column():
    cohort = _cohort()
    cohort.predictions.loc[cohort.predictions["split"] == "external", "positive"] = True
    with pytest.raises(
        EstimationError, match=r"column 'fracture' \(reference standard\), external set, model "
    ):
        _run(["auc"], cohort)
