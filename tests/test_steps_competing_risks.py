"""The competing-risks prognostic-model study type (studyval.steps.competing_risks) and
cirrhosis-sarcopenia's plan over it.

Checked here as a template: every name the plan uses resolves, every table the report and
checklist read is reached, a misspelt name fails at plan load with its YAML path, and the
generic steps run on another plan of the same type (other horizon, model names, a comparator
that is not nested, no subgroups) without any cirrhosis-specific code. The numbers are checked
against R in the analysis tests (tests/test_cause_specific_cox.py, test_competing_risks_brier.py,
test_competing_risks_calibration.py, ...) and end to end in
tests/test_protocol_cirrhosis_sarcopenia.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from studyval.analysis.competing_risks_calibration import (
    calibration_groups_competing,
    calibration_slope_competing,
)
from studyval.analysis.cox import nested_cox_test
from studyval.analysis.internal_validation import bootstrap_optimism
from studyval.analysis.sample_size_validation import (
    horizon_status_counts,
    riley_validation_binary,
)
from studyval.errors import EstimationError, InputValidationError
from studyval.pipeline import load_inputs
from studyval.plan import load_plan, plan_path, requested_steps
from studyval.protocols.cirrhosis_sarcopenia import ALWAYS, PROTOCOL
from studyval.steps import competing_risks as crsteps
from studyval.steps.common import BASELINE, FLOW, MODELS, SAMPLE_SIZE

SLUG = "cirrhosis-sarcopenia"

#: Tables the report (reports/cirrhosis-sarcopenia/report.qmd), the checklist and the figures read.
READ_BY_REPORT = (
    "added_value", "baseline", "calibration_groups", "calibration_summary", "cif_at",
    "cif_curves", "cox", "fine_gray", "flow", "gray_test", "lr_test", "models", "optimism",
    "performance", "ph_test", "prevalence", "sample_size", "subgroup_performance",
    "calibration_slope", "validation_sample_size", "cox_linearity",
)  # fmt: skip


def test_generic_registry_declares_each_table_once():
    reg = crsteps.REGISTRY
    assert reg.name == "prognostic-model-competing-risks"
    assert set(reg.names) == {
        "cause_specific_models", "fine_gray", "lr_test", "predicted_incidence", "optimism",
        "performance", "calibration", "subgroup_performance", "added_value",
        "calibration_slope", "validation_sample_size",
    }  # fmt: skip
    for spec in reg.tables().values():
        assert spec.description and spec.columns, spec.name


def test_plan_steps_resolve_and_reach_every_table_the_report_reads():
    plan = load_plan(SLUG)
    names = [*ALWAYS, *(n for _, n in requested_steps(plan))]
    steps = PROTOCOL.steps.resolve(names)
    reached = {t for s in steps for t in s.table_names}
    assert set(READ_BY_REPORT) <= reached
    # every registered step is reached: nothing the protocol declares is dead
    assert {s.name for s in steps} == set(PROTOCOL.steps.names)
    # artefacts come before the steps that read them
    order = [s.name for s in steps]
    assert order.index("cause_specific_models") < order.index("models")
    assert order.index("predicted_incidence") < order.index("performance")
    assert order.index("optimism") < order.index("performance")


def test_protocol_registry_is_the_study_type_plus_its_own_steps():
    own = set(PROTOCOL.steps.names) - set(crsteps.REGISTRY.names)
    assert own == {
        "flow",
        "baseline",
        "prevalence",
        "sample_size",
        "models",
        "cumulative_incidence",
        "linearity",  # the prognostic-model type's spline check (plan 1.1, issue 16)
    }
    tables = PROTOCOL.steps.tables()
    assert tables["flow"] is FLOW and tables["baseline"] is BASELINE
    assert tables["models"] is MODELS and tables["sample_size"] is SAMPLE_SIZE


def _plan_with(tmp_path: Path, edit) -> Path:
    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def test_unknown_analysis_name_is_an_error_naming_its_yaml_path(tmp_path):
    def edit(raw):
        raw["endpoints"][1]["analyses"][3] = "perfomance"

    with pytest.raises(InputValidationError) as info:
        load_plan(_plan_with(tmp_path, edit))
    text = info.value.full_message()
    assert "endpoints[1].analyses[3]" in text
    assert "did you mean 'performance'" in text


@pytest.fixture(scope="module")
def cohort(protocol_inputs):
    plan = load_plan(SLUG)
    return load_inputs(SLUG, protocol_inputs(SLUG)["clinical"], None, plan=plan).cohort


def _other_plan():
    """A plan of the same type that cirrhosis's code never saw: 6-month horizon, other names,
    a comparator not nested in the primary model, no subgroups, 3 groups, 3 resamples."""
    plan = load_plan(SLUG)
    models = [
        plan.models[0].model_copy(update={"name": "Labs", "covariates": ["bilirubin_mg_dl", "inr"]}),
        plan.models[1].model_copy(update={"name": "Full", "covariates": ["meld", "sarcopenia", "age"]}),
    ]  # fmt: skip
    outcome = plan.outcome.model_copy(update={"horizon": 180.0, "horizon_label": "6 months"})
    sets = plan.sets.model_copy(update={"n_bootstrap": 3})
    return plan.model_copy(
        update={
            "models": models,
            "outcome": outcome,
            "sets": sets,
            "subgroups": [],
            "extra": {"calibration_groups": 3, "validation_sample_size": OTHER_VALIDATION},
        }
    )


#: Planning values of the external validation for _other_plan (LP normal, not from C).
OTHER_VALIDATION = {
    "prevalence": 0.08, "c_statistic": 0.75, "lp": [-3.0, 1.2], "oe": 1.0, "oe_ci_width": 0.3,
    "slope_ci_width": 0.3, "c_ci_width": 0.1, "assumptions_source": "test values",
}  # fmt: skip


def test_generic_steps_run_on_another_plan_of_the_type(cohort):
    plan = _other_plan()
    seen: list[str] = []
    out = crsteps.REGISTRY.run(list(crsteps.REGISTRY.names), cohort, plan, progress=seen.append)
    assert set(out["cox"]["model"]) == {"Labs", "Full"}
    assert set(out["cox"]["cause"]) == {"death", "liver transplantation"}
    assert set(out["fine_gray"]["term"]) == {"meld", "sarcopenia", "age"}
    # not nested: no likelihood-ratio row; the comparison is still made
    assert out["lr_test"].empty and list(out["lr_test"].columns) == list(crsteps.LR_TEST.columns)
    assert set(out["added_value"]["model_a"]) == {"Full"}
    assert set(out["added_value"]["model_b"]) == {"Labs"}
    assert out["subgroup_performance"].empty
    assert set(out["calibration_summary"]["groups"]) == {3}
    assert set(out["optimism"]["n_resamples"]) == {3}
    perf = out["performance"]
    assert perf.loc[perf["set"] == "external", "corrected"].isna().all()
    assert perf.loc[perf["set"] == "internal", "corrected"].notna().all()
    assert any("3 resamples" in s for s in seen)
    slope = out["calibration_slope"]
    assert set(slope["model"]) == {"Labs", "Full"}
    assert slope.loc[slope["set"] == "external", "corrected"].isna().all()
    assert set(slope.loc[slope["set"] == "internal", "n_resamples"]) == {3}
    vss = out["validation_sample_size"].set_index("criterion")
    ref = riley_validation_binary(
        prevalence=0.08, c_statistic=0.75, lp_normal=(-3.0, 1.2), oe_ci_width=0.3,
        slope_ci_width=0.3, c_ci_width=0.1,
    )  # fmt: skip
    assert vss.loc["minimum", "required"] == ref.required
    ext = crsteps.event_frame(cohort, plan).query("set == 'external'")
    assert (vss["available"] == len(ext)).all()
    # adequate is judged on the patients whose status at the 6-month horizon is known
    status = horizon_status_counts(
        ext["time"].to_numpy(float), ext["code"].to_numpy(int), cause=plan.outcome.cause,
        horizon=180.0, causes=[1, 2],
    )  # fmt: skip
    assert (vss["available_known"] == status.n_known).all()
    assert (vss["censored_before_horizon"] == len(ext) - status.n_known).all()
    assert (vss["available_events"] == status.n_event).all()
    assert (
        vss["adequate"]
        == (vss["available_known"] >= vss["required"])
        & (vss["available_events"] >= vss["required_events"])
    ).all()


def test_lr_test_and_calibration_are_the_analysis_functions(cohort):
    plan = load_plan(SLUG).model_copy(update={"subgroups": []})
    out = crsteps.REGISTRY.run(["lr_test", "calibration"], cohort, plan)
    d = crsteps.event_frame(cohort, plan)
    dev = d[d["set"] == "internal"].reset_index(drop=True)
    fits = {m.name: crsteps.fit_cause_specific(dev, list(m.covariates), plan) for m in plan.models}
    lr = out["lr_test"].set_index("cause")
    for k in [plan.outcome.cause, *plan.outcome.competing]:
        r = nested_cox_test(fits["clinical+sarcopenia"].fits[k], fits["clinical"].fits[k])
        row = lr.loc[plan.outcome.event_codes[k]]
        assert (row["chisq"], row["df"], row["p_value"], row["added"]) == (
            r.chisq, r.df, r.p_value, "sarcopenia",
        )  # fmt: skip
    ext = d[d["set"] == "external"].reset_index(drop=True)
    risk = crsteps.predicted_incidence(fits["clinical"], ext, plan)
    r = calibration_groups_competing(
        ext["time"], ext["code"], risk, cause=1, horizon=plan.outcome.horizon, n_groups=5
    )
    cal = out["calibration_groups"]
    got = cal[(cal["set"] == "external") & (cal["model"] == "clinical")]
    np.testing.assert_array_equal(got["observed"], r.groups["observed"])
    np.testing.assert_array_equal(got["n_deaths"], r.groups["n_events"])
    s = out["calibration_summary"].set_index(["set", "model"]).loc[("external", "clinical")]
    assert s["oe_ratio"] == r.oe_ratio


def test_generic_steps_stop_with_the_plans_words_when_the_horizon_is_not_estimable(cohort):
    plan = _other_plan()
    plan = plan.model_copy(
        update={
            "outcome": plan.outcome.model_copy(update={"horizon": 1e6, "horizon_label": "forever"})
        }
    )
    with pytest.raises(EstimationError, match=r"horizon 1e\+06 days \(forever\) is beyond"):
        crsteps.REGISTRY.run(["cause_specific_models"], cohort, plan)


def test_calibration_slope_step_is_the_analysis_function_and_the_bootstrap_engine(cohort):
    """Plan 1.1 (issue 16): apparent slope = calibration_slope_competing on the set; the internal
    correction = bootstrap_optimism with the optimism step's seed (hence its resamples)."""
    plan = load_plan(SLUG).model_copy(update={"subgroups": []})
    plan = plan.model_copy(update={"sets": plan.sets.model_copy(update={"n_bootstrap": 4})})
    out = crsteps.REGISTRY.run(["calibration_slope", "optimism"], cohort, plan)
    slope = out["calibration_slope"].set_index(["set", "model"])
    d = crsteps.event_frame(cohort, plan)
    sets = {s: d[d["set"] == s].reset_index(drop=True) for s in ("internal", "external")}
    m = next(m for m in plan.models if m.role == "primary")
    fit = crsteps.fit_cause_specific(sets["internal"], list(m.covariates), plan)
    for set_, frame in sets.items():
        risk = crsteps.predicted_incidence(fit, frame, plan)
        r = calibration_slope_competing(
            frame["time"], frame["code"], risk, cause=1, horizon=plan.outcome.horizon,
            censor_at_horizon=True, causes=[1, 2],
        )  # fmt: skip
        row = slope.loc[(set_, m.name)]
        assert (row["apparent"], row["se"], row["apparent_ci_low"]) == (r.slope, r.se, r.ci_low)
        assert row["n_events_by_horizon"] == r.n_events
    base = crsteps.refit_procedure(m, plan)
    proc = base.__class__(
        fit=base.fit,
        predict=base.predict,
        measures=lambda f, risk: {
            "calibration_slope": calibration_slope_competing(
                f["time"], f["code"], risk, cause=1, horizon=plan.outcome.horizon,
                censor_at_horizon=True, causes=[1, 2],
            ).slope
        },
    )  # fmt: skip
    cols = sorted({"time", "code", *m.covariates})
    b = bootstrap_optimism(sets["internal"][cols], proc, n_resamples=4, seed=plan.seed)
    row = slope.loc[("internal", m.name)]
    assert (row["optimism"], row["corrected"], row["seed"]) == (
        b.optimism[0], b.corrected[0], plan.seed,
    )  # fmt: skip
    # the same resamples as the optimism table's (same seed, same rows)
    assert set(out["optimism"]["seed"]) == {plan.seed}


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        pytest.param({}, "no extra.validation_sample_size", id="absent"),
        pytest.param(
            {"calibration_slope_censor_at_horizon": "yes"}, "true or false", id="censor-not-bool"
        ),
    ],
)
def test_issue16_steps_name_a_bad_plan_extra(cohort, extra, match):
    plan = _other_plan()
    plan = plan.model_copy(update={"extra": extra})
    step = "calibration_slope" if "censor" in match or "true" in match else "validation_sample_size"
    with pytest.raises(EstimationError, match=match):
        crsteps.REGISTRY.run([step], cohort, plan)


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        pytest.param(
            {k: v for k, v in OTHER_VALIDATION.items() if k != "oe"},
            r"extra\.validation_sample_size\.oe: Field required",
            id="missing-key",
        ),
        pytest.param(
            OTHER_VALIDATION | {"c_stat": 0.7},
            r"extra\.validation_sample_size\.c_stat: Extra inputs are not permitted",
            id="unknown-key",
        ),
    ],
)
def test_a_bad_validation_sample_size_section_is_named_before_any_step(spec, match):
    """The keys of extra.validation_sample_size are checked when the plan loads (as every extra
    setting of a prediction-model plan), so the step never sees a missing or unknown key."""
    from studyval.plan import check_prediction_extra

    with pytest.raises(ValueError, match=match):
        check_prediction_extra({"validation_sample_size": spec})

