"""The prognostic-model study type: a new study as YAML only (``studyval init prognostic-model``).

The template's plan, dictionary and report are what ``init`` writes; the plan validates against
the dictionary; on data that match the dictionary the study runs and its report renders as it
is. The data here are simulated in this file (true parameters below); the statistics are the
prognostic-model steps' own, with their oracles in ``tests/test_steps_prognostic.py`` and the
analysis tests (the GBSG2 example, ``tests/test_example_gbsg2.py``, checks a whole study against R).

Simulated cohort (seed 20261207, 360 screened patients at site SITE1): age ~ round(N(62, 12))
(those under 18 excluded as ``age_under_18``), sex F/M 1:1, stage I/II/III with probabilities
0.4/0.4/0.2, imaging score ~ Beta(2, 3); 12 excluded for missing baseline imaging and 8 for a
missing stage. Event of interest: exponential with hazard 0.12/year x exp(0.02 (age - 62) +
0.3 male + 0.5 stage II + 1.0 stage III + 2 (score - 0.4)); death before it (competing):
exponential 0.03/year; censoring uniform on 1-5 years; times in whole days (at least 1).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main
from studyval.cohort import Cohort
from studyval.errors import InputValidationError
from studyval.plan import load_plan
from studyval.protocol import flow_count, protocol
from studyval.study_types import INIT_NAMES, type_module, type_templates
from studyval.study_types.prognostic_model import (
    ALWAYS,
    REGISTRY,
    TEMPLATES,
    baseline,
    check_eligibility,
    flow_counts,
    study_protocol,
)

sys.path.insert(0, str(Path(__file__).parent))
from report_reader import problems

SLUG = "my-prognostic-study"


def simulate(seed: int = 20261207, n: int = 360) -> pd.DataFrame:
    """A clinical table in the template dictionary's layout (see the module docstring)."""
    rng = np.random.default_rng(seed)
    age = np.round(rng.normal(62, 12, n)).clip(5, 100).astype(int)
    male = rng.random(n) < 0.5
    stage = rng.choice(["I", "II", "III"], size=n, p=[0.4, 0.4, 0.2])
    score = rng.beta(2, 3, n)
    lp = (
        0.02 * (age - 62) + 0.3 * male + 0.5 * (stage == "II") + 1.0 * (stage == "III")
        + 2 * (score - 0.4)
    )  # fmt: skip
    t_event = rng.exponential(365.25 / (0.12 * np.exp(lp)))
    t_death = rng.exponential(365.25 / 0.03, n)
    t_cens = rng.uniform(365.25, 5 * 365.25, n)
    t = np.minimum.reduce([t_event, t_death, t_cens])
    event = np.where(t == t_event, 1, np.where(t == t_death, 2, 0))
    reason = np.where(age < 18, "age_under_18", "none").astype(object)
    free = np.flatnonzero(reason == "none")
    no_img, no_stage = free[:12], free[12:20]
    reason[no_img], reason[no_stage] = "no_baseline_imaging", "incomplete_predictors"
    d = pd.DataFrame(
        {
            "patient_id": [f"P{i:04d}" for i in range(1, n + 1)],
            "site": "SITE1",
            "exclusion_reason": reason,
            "age": age,
            "sex": np.where(male, "M", "F"),
            "stage": pd.Series(stage, dtype=object),
            "imaging_score": np.round(score, 4),
            "followup_days": np.maximum(1, np.floor(t)).astype(int),
            "event": event,
        }
    )
    d.loc[no_img, "imaging_score"] = np.nan
    d.loc[no_stage, "stage"] = None
    return d


# --------------------------------------------------------------------------- templates and init


def test_template_plan_validates_against_the_template_dictionary():
    plan = load_plan(TEMPLATES / "plan.yml")  # checks the dictionary named beside it
    assert plan.registry.study_type == "prediction_model" and plan.slug == SLUG
    assert type_templates("prediction_model") == TEMPLATES
    assert INIT_NAMES["prognostic-model"] == "prediction_model"
    assert type_module("prediction_model").study_protocol is study_protocol


def test_init_writes_the_template(tmp_path):
    out = tmp_path / "new-study"
    res = CliRunner().invoke(main, ["init", "prognostic-model", "--out", str(out)])
    assert res.exit_code == 0, res.output
    for name in ("plan.yml", "dictionary.yml", "report.qmd"):
        assert (out / name).read_bytes() == (TEMPLATES / name).read_bytes(), name
    assert load_plan(out / "plan.yml").slug == SLUG


def test_protocol_of_a_new_slug_is_the_type(tmp_path):
    p = protocol(SLUG, "prediction_model")
    assert p.slug == SLUG and p.requires_predictions is False and p.steps is REGISTRY
    assert set(ALWAYS) <= set(REGISTRY.names)
    for step in ("performance", "optimism", "calibration", "ph_check", "risk_groups",
                 "decision_curve", "model_comparison", "flow", "baseline"):  # fmt: skip
        assert step in REGISTRY


def test_an_unknown_step_is_an_error_with_its_yaml_path(tmp_path):
    (tmp_path / "dictionary.yml").write_bytes((TEMPLATES / "dictionary.yml").read_bytes())
    text = (TEMPLATES / "plan.yml").read_text(encoding="utf-8")
    (tmp_path / "plan.yml").write_text(text.replace("[model_comparison]", "[model_comparisn]"))
    with pytest.raises(InputValidationError) as exc:
        load_plan(tmp_path / "plan.yml")
    (v,) = exc.value.violations
    assert v.column == "endpoints[1].analyses[0]" and "model_comparison" in v.rule


# --------------------------------------------------------------------------- eligibility


@pytest.fixture(scope="module")
def plan():
    return load_plan(TEMPLATES / "plan.yml")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    from studyval.dictionary import load_dictionary, validate_frame

    typed, violations = validate_frame(
        frame.astype(object).where(frame.notna(), "").astype(str),
        load_dictionary(TEMPLATES / "dictionary.yml"),
        label="clinical.csv",
    )
    assert violations == []
    return typed


def test_eligibility_finds_every_breach(plan):
    d = simulate().head(40).copy()
    inc = d.index[d["exclusion_reason"] == "none"]
    d.loc[inc[0], "age"] = 16  # included but under 18 (cohort rule)
    d.loc[inc[1], "imaging_score"] = np.nan  # a covariate missing for an included row
    d.loc[inc[2], ["followup_days", "event"]] = [0, 0]  # censored at time 0
    d.loc[inc[3], "followup_days"] = 0  # an event at time 0 is accepted
    d.loc[inc[3], "event"] = 1
    found = check_eligibility(_typed(d), plan, label="clinical.csv")
    got = {(v.column, v.row) for v in found}
    assert got == {
        ("age", int(inc[0]) + 2),
        ("imaging_score", int(inc[1]) + 2),
        ("followup_days", int(inc[2]) + 2),
    }
    assert any("age_under_18" in v.rule for v in found)


def test_eligibility_names_an_absent_column_and_another_exclusion_column(plan):
    d = simulate().head(10).drop(columns=["imaging_score"])
    found = check_eligibility(_typed(d), plan, label="clinical.csv")
    assert [v.column for v in found] == ["imaging_score"]
    from studyval.study_cohort import ExclusionSpec

    cohort = plan.cohort.model_copy(
        update={"exclusion": ExclusionSpec(column="why", included="in")}
    )
    other = plan.model_copy(update={"cohort": cohort})
    (v,) = check_eligibility(_typed(simulate().head(10)), other, label="clinical.csv")
    assert v.column == "why" and "no exclusion column" in v.rule
    # the plan's own exclusion column and value are what the flow and the steps read
    d = _typed(simulate()).rename(columns={"exclusion_reason": "why"})
    d["why"] = d["why"].astype(str).replace({"none": "in"})
    assert check_eligibility(d, other, label="clinical.csv") == []
    flow = flow_counts(Cohort(clinical=d, predictions=pd.DataFrame()), other)
    assert flow_count(flow, "included", column="n") == 340
    from studyval.steps.prognostic import design_frame

    assert len(design_frame(Cohort(clinical=d, predictions=pd.DataFrame()), other)) == 340


# --------------------------------------------------------------------------- flow and baseline


def test_flow_counts_every_screened_row(plan):
    d = _typed(simulate())
    flow = flow_counts(Cohort(clinical=d, predictions=pd.DataFrame()), plan)
    n = flow.set_index(["stage", "group"])["n"]
    screened, included = n[("screened", "")], n[("included", "")]
    reasons = flow[flow["stage"] == "excluded_reason"]
    assert screened == 360 and screened == included + n[("excluded", "")]
    assert reasons["n"].sum() == n[("excluded", "")]
    assert reasons.set_index("group").loc["no_baseline_imaging", ["n", "detail"]].tolist() == [
        12,
        "no baseline imaging",  # the plan's extra.exclusion_labels
    ]
    inc = d[d["exclusion_reason"] == "none"]
    by_h = flow[flow["stage"] == "by_horizon"].set_index("group")["n"]
    assert by_h.sum() == included
    assert by_h["death before the event"] == int(
        ((inc["event"] == 2) & (inc["followup_days"] <= 1096)).sum()
    )
    # person-years in years whatever the time unit
    py = flow.set_index(["stage", "group"]).loc[("follow_up", "person-years"), "detail"]
    assert float(py) == pytest.approx(inc["followup_days"].sum() / 365.25, abs=0.05)


def test_baseline_by_outcome_and_site_with_derived_bands(plan):
    d = _typed(simulate())
    b = baseline(Cohort(clinical=d, predictions=pd.DataFrame()), plan)
    assert list(dict.fromkeys(b["by"])) == ["outcome", "site"]
    assert "age_band" in set(b["variable"])
    groups = list(dict.fromkeys(b.loc[b["by"] == "outcome", "group"]))
    assert groups == [
        "Overall",
        "event of interest by 3 years",
        "no event of interest observed by 3 years",
    ]
    assert "Overall" not in set(b.loc[b["by"] == "site", "group"])  # shown once


# --------------------------------------------------------------------------- a study, run and rendered


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """``studyval init`` + simulated data + ``studyval run --plan`` (20 resamples), rendered."""
    root = tmp_path_factory.mktemp("prognostic-type")
    study = root / "study"
    res = CliRunner().invoke(main, ["init", "prognostic-model", "--out", str(study)])
    assert res.exit_code == 0, res.output
    plan = study / "plan.yml"
    plan.write_text(plan.read_text(encoding="utf-8").replace("n_bootstrap: 200", "n_bootstrap: 20"))
    clinical = root / "clinical.csv"
    simulate().to_csv(clinical, index=False)
    out = root / "bundle"
    res = CliRunner().invoke(
        main, ["run", "--plan", str(plan), "-c", str(clinical), "-o", str(out), "-q"],
        catch_exceptions=False,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return out


def test_the_new_study_runs_and_its_report_reads_as_a_pi_would(bundle):
    tables = {p.stem for p in (bundle / "tables").glob("*.csv")}
    assert {"flow", "baseline", "cox_coefficients", "optimism", "comparison", "decision_curve",
            "checklist"} <= tables  # fmt: skip
    figures = {p.stem for p in (bundle / "figures").glob("*.png")}
    assert figures == {"flow", "discrimination", "zph", "calibration_horizon", "km_risk_groups",
                       "decision_curve"}  # fmt: skip
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert problems(html) == []
    assert "death before the event is a competing event" in html
    assert (bundle / "study" / "report.qmd").read_bytes() == (TEMPLATES / "report.qmd").read_bytes()
    ck = pd.read_csv(bundle / "tables" / "checklist.csv").set_index("item")
    assert ck.loc["20a", "status"] == "filled" and "Screened 360" in ck.loc["20a", "content"]


def test_figures_follow_the_steps_the_plan_ran(bundle, plan):
    from studyval.figures.prognostic_model import figure_specs

    tables = {p.stem: pd.read_parquet(p) for p in (bundle / "tables").glob("*.parquet")}
    few = {k: v for k, v in tables.items() if k in ("flow", "models", "cox_fit", "performance")}
    assert [s.name for s in figure_specs(few, plan)] == ["flow", "discrimination"]
