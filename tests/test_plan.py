"""Analysis plans are validated on load, every problem listed with its YAML path."""

from __future__ import annotations

import pytest
import yaml

from studyval.errors import InputValidationError, PlanError, StudyvalError
from studyval.plan import load_plan, plan_path


@pytest.fixture
def raw_plan():
    return yaml.safe_load(plan_path("ovcf-chronicity").read_text())


def _write(tmp_path, raw):
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def test_bundled_plan_loads():
    plan = load_plan("ovcf-chronicity")
    assert plan.registry.id == "NCT07306858"
    assert plan.outcome.positive == "acute"
    assert plan.primary_model == "DenseNet-121"
    assert plan.sample_size.registered_positives == 138
    assert plan.thresholds[0].value == 0.5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        pytest.param(
            lambda p: p["thresholds"][0].__setitem__("value", 1.5),
            r"field 'thresholds\[0\]\.value': threshold must lie strictly between 0 and 1",
            id="threshold-outside-unit-interval",
        ),
        pytest.param(
            lambda p: p["thresholds"][0].__setitem__("value", 0.0),
            r"thresholds\[0\]\.value",
            id="threshold-zero",
        ),
        pytest.param(
            lambda p: p["endpoints"][0].__setitem__("analyses", ["acu"]),
            r"endpoints\[0\]\.analyses\[0\].*unknown analysis step; did you mean 'auc'\?.*'acu'",
            id="misspelt-analysis",
        ),
        pytest.param(
            lambda p: p.__setitem__("alpah", 0.05), r"field 'alpah': unknown key", id="unknown-key"
        ),
        pytest.param(
            lambda p: p["outcome"].__setitem__("positive", "Acute"),
            r"field 'outcome\.positive': not a level of chronicity",
            id="positive-not-a-level",
        ),
        pytest.param(
            lambda p: p["outcome"].__setitem__("variable", "chronicty"),
            r"field 'outcome\.variable': ovcf-chronicity dictionary has no variable",
            id="plan-column-not-in-dictionary",
        ),
        pytest.param(
            lambda p: p["subgroups"].append({"variable": "bmi", "status": "pre-specified"}),
            r"field 'subgroups\[5\]\.variable': ovcf-chronicity dictionary has no variable",
            id="subgroup-not-in-dictionary",
        ),
        pytest.param(
            lambda p: p["models"][1].__setitem__("role", "primary"),
            r"exactly one model must have role primary",
            id="two-primary-models",
        ),
        pytest.param(
            lambda p: p["sample_size"].__setitem__("registered_total", 270),
            r"registered_positives \+ registered_negatives != registered_total",
            id="inconsistent-registered-numbers",
        ),
        pytest.param(
            lambda p: p["sets"].__setitem__("external_sites", ["EXTERNAL"]),
            r"field 'sets\.external_sites': not a level of site",
            id="unknown-site",
        ),
        pytest.param(lambda p: p.pop("seed"), r"field 'seed': Field required", id="seed-missing"),
    ],
)
def test_bad_plan(tmp_path, raw_plan, mutate, message):
    mutate(raw_plan)
    with pytest.raises(InputValidationError, match=message):
        load_plan(_write(tmp_path, raw_plan))


def test_plan_lists_every_problem(tmp_path, raw_plan):
    raw_plan["thresholds"][0]["value"] = 2
    raw_plan["alpah"] = 1
    with pytest.raises(InputValidationError) as info:
        load_plan(_write(tmp_path, raw_plan))
    assert len(info.value.violations) >= 2


def test_plan_not_yaml(tmp_path):
    path = tmp_path / "plan.yml"
    path.write_text("slug: [unclosed\n")
    with pytest.raises(PlanError, match="not valid YAML"):
        load_plan(path)


def test_unknown_protocol():
    with pytest.raises(StudyvalError, match="no analysis plan for protocol 'nope'"):
        load_plan("nope")


# ------------------------------------------------ a prediction-model plan's extra settings


@pytest.mark.parametrize(
    ("slug", "key", "value", "message"),
    [
        pytest.param(
            "cirrhosis-sarcopenia", "calibration_slope_censor_at_horizn", False,
            r"extra\.calibration_slope_censor_at_horizn: not a setting .*did you mean "
            r"'calibration_slope_censor_at_horizon'",
            id="misspelled-key",
        ),
        pytest.param(
            "refracture-pvp", "linearity_knots", 1, r"extra\.linearity_knots: .*greater than or equal to 3",
            id="knots-out-of-range",
        ),
        pytest.param(
            "refracture-pvp", "linearity_knots", "four", r"extra\.linearity_knots: .*integer",
            id="knots-not-a-number",
        ),
        pytest.param(
            "refracture-pvp", "ph_alpha", 5, r"extra\.ph_alpha: .*less than 1", id="ph-alpha-range",
        ),
        pytest.param(
            "cirrhosis-sarcopenia", "validation_sample_size",
            {"prevalence": 0.12, "c_statistic": 0.72, "lp": "from_c_statistic", "oe": 1.0,
             "oe_ci_width": "wide", "slope_ci_width": 0.2, "c_ci_width": 0.1,
             "assumptions_source": "x"},
            r"extra\.validation_sample_size\.oe_ci_width: .*number",
            id="validation-width-not-a-number",
        ),
        pytest.param(
            "cirrhosis-sarcopenia", "validation_sample_size",
            {"prevalence": 12, "c_statistic": 0.72, "lp": "from_c_statistic", "oe": 1.0,
             "oe_ci_width": 0.2, "slope_ci_width": 0.2, "c_ci_width": 0.1,
             "assumptions_source": "x"},
            r"extra\.validation_sample_size\.prevalence: .*less than 1",
            id="validation-prevalence-range",
        ),
    ],
)  # fmt: skip
def test_a_bad_extra_setting_is_named_when_the_plan_loads(tmp_path, slug, key, value, message):
    """Issue 16 review: a misspelled or ill-typed ``extra`` setting never runs with its default."""
    raw = yaml.safe_load(plan_path(slug).read_text())
    raw["extra"][key] = value
    with pytest.raises(InputValidationError, match=message) as info:
        load_plan(_write(tmp_path, raw), slug=slug)
    assert "plan.yml" in str(info.value)
