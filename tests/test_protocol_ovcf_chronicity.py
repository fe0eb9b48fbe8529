"""ovcf-chronicity as steps: its plan resolves to the diagnostic-accuracy steps plus its own.

The end-to-end bundle (tables, figures, determinism, privacy) is tested in
test_pipeline; here: the registry the plan dispatches through, the plan's
analysis names checked at load with their YAML path, the tables each step
declares against the bundle, and the derived subgroup variables.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from studyval.errors import InputValidationError
from studyval.plan import load_plan, plan_path, requested_steps
from studyval.protocol import protocol
from studyval.protocols import ovcf_chronicity as ovcf
from studyval.steps import diagnostic
from studyval.steps.common import PIPELINE_TABLES

SLUG = "ovcf-chronicity"
ALWAYS = ("flow", "baseline", "models", "sample_size")


@pytest.fixture(scope="module")
def plan():
    return load_plan(SLUG)


@pytest.fixture(scope="module")
def bundle(protocol_bundle) -> Path:
    """The session's bundle of ovcf-chronicity (no report, the bundled plan)."""
    return protocol_bundle(SLUG)


# ----------------------------------------------------------------------------- the registry


def test_the_protocol_dispatches_through_its_registry():
    spec = protocol(SLUG)
    assert spec.steps is ovcf.REGISTRY
    assert spec.analyse is ovcf.analyse


def test_the_registry_is_the_study_type_plus_the_study_s_own_steps():
    from studyval.study_types import diagnostic_accuracy as study_type

    own = set(ovcf.REGISTRY.names) - set(diagnostic.REGISTRY.names)
    assert own == {"flow", "baseline"}
    assert set(diagnostic.REGISTRY.names) <= set(ovcf.REGISTRY.names)
    for name in diagnostic.REGISTRY.names:
        assert ovcf.REGISTRY[name] is diagnostic.REGISTRY[name]
    # the participant flow is the study type's; the baseline table (vertebrae per patient,
    # level of the index fracture) is the study's own declared extra
    assert ovcf.REGISTRY["flow"] is study_type.REGISTRY["flow"]
    assert ovcf.REGISTRY["baseline"] is not study_type.REGISTRY["baseline"]
    assert ovcf.flow_counts is study_type.flow_counts


def test_eligibility_bounds_are_the_plan_s_cohort_rules(plan, protocol_inputs):
    """An amended plan (age at least 60, MRI within 7 days) changes the check without Python."""
    from studyval.dictionary import load_dictionary, read_table

    clinical = read_table(protocol_inputs(SLUG)["clinical"], load_dictionary(SLUG))
    assert ovcf.check_eligibility(clinical, plan, label="c.csv") == []
    rules = [
        r.model_copy(update={"min": 60})
        if r.reason == "age_under_50"
        else r.model_copy(update={"max_days": 7})
        for r in plan.cohort.rules
    ]
    amended = plan.model_copy(update={"cohort": plan.cohort.model_copy(update={"rules": rules})})
    found = ovcf.check_eligibility(clinical, amended, label="c.csv")
    inc = clinical["exclusion_reason"] == "none"
    gap = (clinical["mri_date"] - clinical["ct_date"]).dt.days.abs()
    young = [v for v in found if v.column == "age"]
    late = [v for v in found if v.column == "mri_date"]
    assert len(young) == int((inc & (clinical["age"] < 60)).sum()) > 0
    assert len(late) == int((inc & (gap > 7)).sum()) > 0
    assert "younger than 60" in young[0].rule and "(must be < 8)" in late[0].rule


def test_every_analysis_of_the_plan_is_a_step(plan):
    names = [name for _, name in requested_steps(plan)]
    assert names == [
        "auc",
        "roc_curve",
        "auc_logit",
        "accuracy",
        "confusion_matrix",
        "predictive_values",
        "intention_to_diagnose",
        "compare_auc",
        "compare_auc_k",
        "auc",
        "compare_auc_unpaired",
        "youden",
        "calibration",
        "decision_curve",
        "subgroups",
        "clustered_auc",
    ]
    assert all(name in ovcf.REGISTRY for name in names)


def test_the_plan_reaches_every_table_the_report_reads(plan):
    """Steps run: the always ones, then the plan's, each after those whose tables it needs."""
    steps = ovcf.REGISTRY.resolve([*ALWAYS, *(n for _, n in requested_steps(plan))])
    assert [s.name for s in steps][:5] == [*ALWAYS, "auc"]
    assert [s.name for s in steps].index("youden") < [s.name for s in steps].index("accuracy")
    tables = {t for s in steps for t in s.table_names}
    assert tables == {
        "flow",
        "baseline",
        "models",
        "sample_size",
        "auc",
        "auc_logit",
        "roc_points",
        "youden",
        "accuracy",
        "confusion",
        "predictive_values",
        "accuracy_itd",
        "compare_paired",
        "compare_joint",
        "compare_unpaired",
        "calibration",
        "calibration_curves",
        "calibration_histograms",
        "decision_curve",
        "decision_curve_difference",
        "subgroups",
        "subgroup_heterogeneity",
        "vertebra_auc",
        "vertebra_accuracy",
        "vertebra_compare",
    }


@pytest.mark.parametrize(
    ("endpoint", "position", "name", "hint"),
    [
        pytest.param(0, 1, "roc_curves", "did you mean 'roc_curve'", id="misspelt-roc"),
        pytest.param(4, 3, "clustered", "did you mean 'clustered_auc'", id="short-clustered"),
        pytest.param(1, 0, "kappa", "registered: ", id="no-close-name"),
    ],
)
def test_an_unknown_analysis_in_the_plan_names_its_yaml_path(
    tmp_path, endpoint, position, name, hint
):
    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    raw["endpoints"][endpoint]["analyses"][position] = name
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputValidationError) as info:
        load_plan(path, check_dictionary=False)
    (v,) = info.value.violations
    assert v.column == f"endpoints[{endpoint}].analyses[{position}]"
    assert v.value == name
    assert "unknown analysis step" in v.rule and hint in v.rule


# ----------------------------------------------------------------------------- the bundle


def test_every_bundle_table_is_declared_once_with_its_columns(bundle):
    declared = ovcf.REGISTRY.tables()
    pipeline = {t.name for t in PIPELINE_TABLES} | {"dictionary"}
    written = {p.stem for p in (bundle / "tables").glob("*.parquet")}
    assert written - pipeline == set(declared)
    for name, spec in declared.items():
        frame = pd.read_parquet(bundle / "tables" / f"{name}.parquet")
        assert set(spec.columns) <= set(frame.columns), name


def test_the_exploratory_youden_threshold_is_the_internal_set_s(bundle):
    youden = pd.read_parquet(bundle / "tables" / "youden.parquet")
    acc = pd.read_parquet(bundle / "tables" / "accuracy.parquet")
    rows = acc[acc["threshold_name"] == "youden-internal"]
    assert set(rows["set"]) == {"external"}
    internal = youden[youden["set"] == "internal"].set_index("model")["value"]
    for model, value in rows.groupby("model")["threshold"].first().items():
        assert value == internal[model]


def test_plan_1_1_logit_auc_interval_is_a_sensitivity_analysis(bundle, plan):
    """plan 1.1 (issue 16, after the data were seen): the pre-specified Wald interval stays the
    primary one; the logit-scale interval (same AUC and DeLong SE) is reported beside it."""
    assert plan.auc_ci == "wald"
    auc = pd.read_parquet(bundle / "tables" / "auc.parquet")
    logit = pd.read_parquet(bundle / "tables" / "auc_logit.parquet")
    assert set(auc["method"]) == {"DeLong"}
    assert set(logit["method"]) == {"DeLong (logit scale)"}
    pd.testing.assert_frame_equal(
        auc[["set", "model", "estimate", "se"]], logit[["set", "model", "estimate", "se"]]
    )
    assert ((logit["ci_low"] < logit["estimate"]) & (logit["estimate"] < logit["ci_high"])).all()
    assert (logit["ci_high"] < 1.0).all()


def test_intention_to_diagnose_counts_the_demo_s_unscored_index_vertebra(bundle):
    """The demo's one external acute index vertebra with a failed segmentation (flow table) is a
    false negative by intention to diagnose; the internal set lost none (0 counted)."""
    itd = pd.read_parquet(bundle / "tables" / "accuracy_itd.parquet")
    models = pd.read_parquet(bundle / "tables" / "models.parquet")
    assert len(itd) == 2 * len(models) * 2 * 2  # sets x models x analyses x measures
    internal = itd[itd["set"] == "internal"]
    assert set(internal["n_nonevaluable"]) == {0}
    ext = itd[(itd["set"] == "external") & (itd["model"] == "DenseNet-121")]
    ext = ext.set_index(["analysis", "measure"])
    pp, it = (
        ext.loc[("per-protocol", "sensitivity")],
        ext.loc[("intention-to-diagnose", "sensitivity")],
    )
    assert (pp["numerator"], pp["denominator"]) == (it["numerator"], it["denominator"] - 1)
    assert it["n_nonevaluable"] == 1 and it["estimate"] < pp["estimate"]
    spec = ext.xs("specificity", level="measure")
    assert spec["estimate"].nunique() == 1 and set(spec["n_nonevaluable"]) == {0}


# ----------------------------------------------------------------------------- derived variables


def test_derived_subgroup_variables_follow_the_plan_s_definitions():
    frame = pd.DataFrame(
        {
            "age": [50, 64.9, 65, 79.9, 80, 93],
            "dxa_t_score": [-2.5, -2.49, -1.01, -1.0, np.nan, 0.3],
            "vertebral_level": ["T10", "T11", "L2", "L3", "L5", "T1"],
        }
    )
    out = ovcf.derive_subgroup_variables(frame, load_plan(SLUG).cohort)
    assert out["age_band"].tolist() == ["50-64", "50-64", "65-79", "65-79", ">=80", ">=80"]
    bmd = out["bmd_category"].tolist()
    assert bmd[:4] == ["osteoporosis", "osteopenia", "osteopenia", "normal"]
    assert isinstance(bmd[4], float) and math.isnan(bmd[4])  # missing stays missing
    assert out["vertebral_region"].tolist() == [
        "thoracic (T1-T10)",
        "thoracolumbar (T11-L2)",
        "thoracolumbar (T11-L2)",
        "lumbar (L3-L5)",
        "lumbar (L3-L5)",
        "thoracic (T1-T10)",
    ]
    levels = {
        "age_band": ["50-64", "65-79", ">=80"],
        "bmd_category": ovcf.BMD_LEVELS,
        "vertebral_region": ["thoracic (T1-T10)", "thoracolumbar (T11-L2)", "lumbar (L3-L5)"],
    }
    for name, want in levels.items():
        assert out[name].cat.categories.tolist() == want
    assert list(frame.columns) == ["age", "dxa_t_score", "vertebral_level"]  # input untouched


def test_the_join_adds_the_derived_variables_to_the_cohort(protocol_inputs):
    from studyval.pipeline import load_inputs

    inputs = protocol_inputs(SLUG)
    cohort = load_inputs(SLUG, inputs["clinical"], inputs["predictions"]).cohort
    plan = load_plan(SLUG)
    derived = [sg.variable for sg in plan.subgroups if sg.derived]
    assert derived == ["age_band", "bmd_category", "vertebral_region"]
    for name in derived:
        assert isinstance(cohort.predictions[name].dtype, pd.CategoricalDtype)
    assert cohort.predictions["vertebral_region"].notna().all()
