"""The prognostic-model study type (studyval.steps.prognostic) and refracture-pvp's plan over it.

The steps are checked here as a template: every name the plan uses resolves,
every table the report and checklist read is reached, a misspelt name fails
at plan load with its YAML path, and the generic steps run on another plan
of the same type (other horizon, model names and a comparator that is not
nested) without any refracture-specific code. The numbers themselves are
checked against R in the analysis tests and end to end in
tests/test_protocol_refracture_pvp.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from studyval.errors import EstimationError, InputValidationError, StudyvalError
from studyval.pipeline import load_inputs
from studyval.plan import load_plan, plan_path, requested_steps
from studyval.protocols.refracture_pvp import ALWAYS, PROTOCOL
from studyval.steps import prognostic
from studyval.steps.common import MODELS, SAMPLE_SIZE

SLUG = "refracture-pvp"

#: Tables the report (reports/refracture-pvp/report.qmd), the checklist and the figures read.
READ_BY_REPORT = (
    "flow", "baseline", "sample_size", "sample_size_criteria", "cox_coefficients", "cox_fit",
    "baseline_survival", "zph", "zph_residuals", "zph_smooth", "performance", "optimism",
    "td_auc_counts", "calibration_groups", "calibration_curve", "calibration_summary",
    "risk_groups", "risk_group_logrank", "km_risk_groups", "km_at_risk", "decision_curve",
    "comparison", "models", "shrunk_model", "cox_linearity", "cr_incidence", "cs_absolute_risk",
    "cs_absolute_risk_groups", "cs_cox_competing",
)  # fmt: skip


def test_generic_registry_declares_each_table_once_with_the_shared_specs():
    reg = prognostic.REGISTRY
    assert reg.name == "prognostic-model"
    assert set(reg.names) == {
        "sample_size", "cox_models", "ph_check", "performance", "optimism", "calibration",
        "shrunk_model", "risk_groups", "decision_curve", "model_comparison", "linearity",
    }  # fmt: skip
    tables = reg.tables()
    assert tables["models"] is MODELS and tables["sample_size"] is SAMPLE_SIZE
    for spec in tables.values():
        assert spec.description and spec.columns, spec.name


def test_plan_steps_resolve_and_reach_every_table_the_report_reads():
    plan = load_plan(SLUG)
    names = [*ALWAYS, *(n for _, n in requested_steps(plan))]
    steps = PROTOCOL.steps.resolve(names)
    reached = {t for s in steps for t in s.table_names}
    assert set(READ_BY_REPORT) <= reached
    # every registered step is reached: nothing the protocol declares is dead
    assert {s.name for s in steps} == set(PROTOCOL.steps.names)


def test_protocol_registry_is_the_study_type_plus_its_own_steps():
    own = set(PROTOCOL.steps.names) - set(prognostic.REGISTRY.names)
    # the absolute risk with death competing (plan 1.1, issue 16): studyval.steps.competing_risks
    assert own == {"flow", "baseline", "competing_risk_incidence", "cs_absolute_risk"}


def _plan_with(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_unknown_analysis_name_is_an_error_naming_its_yaml_path(tmp_path):
    def edit(raw):
        raw["endpoints"][0]["analyses"][1] = "optimsm"

    with pytest.raises(InputValidationError) as info:
        load_plan(_plan_with(tmp_path, edit))
    text = info.value.full_message()
    assert "endpoints[0].analyses[1]" in text
    assert "did you mean 'optimism'" in text


@pytest.fixture(scope="module")
def cohort(protocol_inputs):
    plan = load_plan(SLUG)
    return load_inputs(SLUG, protocol_inputs(SLUG)["clinical"], None, plan=plan).cohort


def _other_plan():
    """A plan of the same type that refracture's code never saw: 6-month horizon, other names,
    a comparator that is not nested in the primary model, no optional ``extra`` settings."""
    plan = load_plan(SLUG)
    models = [
        plan.models[0].model_copy(update={"name": "Full", "covariates": ["age", "sex", "pdff_percent"]}),
        plan.models[1].model_copy(update={"name": "Bone", "covariates": ["bmd_t_score", "r2star_per_s"]}),
    ]  # fmt: skip
    outcome = plan.outcome.model_copy(update={"horizon": 180.0, "horizon_label": "6 months"})
    sets = plan.sets.model_copy(update={"n_bootstrap": 5})
    return plan.model_copy(update={"models": models, "outcome": outcome, "sets": sets, "extra": {}})


def test_generic_steps_run_on_another_plan_of_the_type(cohort):
    plan = _other_plan()
    seen: list[str] = []
    # every step but linearity, which needs the plan to declare its predictors (tested below)
    names = [n for n in prognostic.REGISTRY.names if n != "linearity"]
    out = prognostic.REGISTRY.run(names, cohort, plan, progress=seen.append)
    assert list(out["models"]["model"]) == ["Full", "Bone"]
    assert set(out["cox_coefficients"]["term"]) == {
        "age", "sex[M]", "pdff_percent", "bmd_t_score", "r2star_per_s",
    }  # fmt: skip
    assert (out["baseline_survival"]["horizon"] == 180.0).all()
    assert (out["td_auc_counts"]["horizon"] == 180.0).all()
    # not nested: no likelihood-ratio row, the two differences are still compared
    assert list(out["comparison"]["comparison"]) == [
        "difference in Harrell's C",
        "difference in time-dependent AUC at the horizon",
    ]
    assert (out["comparison"]["terms_added"] == "age, sex[M], pdff_percent").all()
    # default risk groups (10% and 20%) with labels made from the cuts
    assert set(out["risk_groups"]["group"]) <= {"< 10%", "10%-20%", ">= 20%"}
    assert out["km_at_risk"]["time"].max() == 180.0
    assert set(out["optimism"]["n_resamples"]) == {5}
    assert set(out["zph"]["transform"]) == {"km"}
    assert any("bootstrap optimism correction (5 refits" in s for s in seen)


def test_generic_steps_stop_with_the_plans_words_when_the_horizon_is_not_estimable(cohort):
    plan = _other_plan()
    plan = plan.model_copy(
        update={
            "outcome": plan.outcome.model_copy(update={"horizon": 1e6, "horizon_label": "forever"})
        }
    )
    with pytest.raises(EstimationError, match=r"horizon 1e\+06 days \(forever\) is at or beyond"):
        prognostic.REGISTRY.run(["cox_models"], cohort, plan)


def test_design_frame_expands_categories_against_their_first_level(cohort):
    plan = load_plan(SLUG)
    d = prognostic.design_frame(cohort, plan)
    terms = prognostic.model_terms(cohort, plan)
    assert terms[plan.primary_model][:2] == ["age", "sex[M]"]
    assert set(np.unique(d["sex[M]"])) <= {0.0, 1.0}
    assert list(d.columns[-4:]) == ["time", "event_code", "status", "patient_id"]
    assert (d["status"] == (d["event_code"] == plan.outcome.cause)).all()


def test_linearity_step_on_another_plan_and_alone_for_other_types(cohort):
    """The spline check reads its predictors and knots from the plan's extra; the numbers are
    those of studyval.analysis.cox_linearity (R oracle in tests/test_cox_linearity.py)."""
    from studyval.analysis.cox_linearity import cox_linearity

    plan = _other_plan()
    plan = plan.model_copy(
        update={"extra": {"linearity_predictors": ["pdff_percent", "age"], "linearity_knots": 3}}
    )
    out = prognostic.LINEARITY_STEPS.run(["linearity"], cohort, plan)
    table = out["cox_linearity"]
    assert list(table.columns) == list(prognostic.COX_LINEARITY.columns)
    assert list(table["predictor"]) == ["pdff_percent", "age"]
    assert set(table["model"]) == {"Full"} and set(table["df"]) == {1}
    assert set(table["data"]) == {"included patients of the development sites (SYSU7)"}
    d = prognostic.design_frame(cohort, plan)
    direct = cox_linearity(
        d, duration="time", event="status", covariates=["age", "sex[M]", "pdff_percent"],
        predictors=["pdff_percent", "age"], n_knots=3,
    ).to_frame()  # fmt: skip
    np.testing.assert_array_equal(table["chisq"], direct["chisq"])
    assert prognostic.REGISTRY["linearity"] is prognostic.LINEARITY_STEPS["linearity"]


def test_linearity_step_named_without_predictors_says_what_the_plan_lacks(cohort):
    with pytest.raises(StudyvalError, match=r"declares no extra\.linearity_predictors"):
        prognostic.REGISTRY.run(["linearity"], cohort, _other_plan())


def test_linearity_step_runs_only_when_named(cohort):
    plan = _other_plan()
    out = prognostic.REGISTRY.run(["cox_models"], cohort, plan)
    assert "cox_linearity" not in out
