"""The generic diagnostic-accuracy study type: `studyval init`, its templates, flow, baseline, eligibility.

A new study of this type is YAML only. These tests start one with ``studyval init
diagnostic-accuracy``, check that the template plan validates against the template
dictionary, and run it (trimmed resamples) on a small simulated table that matches the
template dictionary, rendering the template report and reading it as a PI would
(``tests/report_reader.py``). The statistics themselves are covered by the oracle tests of
:mod:`studyval.analysis` and by ``tests/test_example_breast_cancer.py`` (R on public data).

The simulated inputs (:func:`_simulated_inputs`) have documented true parameters: two sites,
one case per patient, prevalence 0.4, model-A's logit = -0.4 + 2.5 * (condition present) +
N(0, 1) noise, model-B's -0.2 + 1.2 * present + N(0, 1); SITE-A patients split 60/40 into
development and internal, SITE-B external; three exclusions (one per reason) and one
model-A failure in the external set.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main
from studyval.errors import InputValidationError, StatisticalWarning
from studyval.plan import load_plan
from studyval.protocol import flow_count, protocol
from studyval.study_types import type_templates
from studyval.study_types.diagnostic_accuracy import (
    ALWAYS,
    REGISTRY,
    TEMPLATES,
    check_eligibility,
    primary_case_mask,
)

sys.path.insert(0, str(Path(__file__).parent))
from report_reader import problems

N_RESAMPLES = 20


def _simulated_inputs(folder: Path, *, seed: int = 7) -> dict[str, Path]:
    """Clinical and prediction tables matching the template dictionary and plan (see module doc)."""
    rng = np.random.default_rng(seed)
    rows, preds = [], []
    for site, n in (("SITE-A", 200), ("SITE-B", 120)):
        for i in range(n):
            pid = f"{site[-1]}{i:03d}"
            present = rng.random() < 0.4
            age = int(rng.integers(30, 90))
            day = pd.Timestamp("2024-01-01") + pd.Timedelta(days=int(rng.integers(0, 600)))
            rows.append(
                {
                    "case_id": f"C{pid}",
                    "patient_id": pid,
                    "site": site,
                    "age": age,
                    "sex": "F" if rng.random() < 0.5 else "M",
                    "target_condition": "present" if present else "absent",
                    "index_test_date": day.date().isoformat(),
                    "reference_date": (day + pd.Timedelta(days=int(rng.integers(0, 20)))).date().isoformat(),
                    "exclusion_reason": "none",
                }
            )
            split = "external" if site == "SITE-B" else ("development" if i < 120 else "internal")
            for name, a, b in (("model-A", -0.4, 2.5), ("model-B", -0.2, 1.2)):
                lp = a + b * present + rng.normal()
                preds.append(
                    {
                        "case_id": f"C{pid}",
                        "patient_id": pid,
                        "site": site,
                        "model_name": name,
                        "model_version": "sha256:" + ("a" if name == "model-A" else "b") * 64,
                        "input_sha256": "c" * 64,
                        "split": split,
                        "positive_class": "present",
                        "score": 1 / (1 + np.exp(-lp)),
                        "status": "ok",
                        "failure_reason": "",
                    }
                )
    clinical = pd.DataFrame(rows)
    # three exclusions, one per reason, each breaking its rule (so the rules would catch them if included)
    clinical.loc[0, ["age", "exclusion_reason"]] = [16, "under_18"]
    clinical.loc[1, ["reference_date", "exclusion_reason"]] = ["2026-06-30", "interval_over_30_days"]
    clinical.loc[2, "exclusion_reason"] = "poor_image_quality"
    excluded = set(clinical.loc[:2, "case_id"])
    predictions = pd.DataFrame(preds)
    predictions = predictions[~predictions["case_id"].isin(excluded)].reset_index(drop=True)
    first_ext = predictions.index[
        (predictions["split"] == "external") & (predictions["model_name"] == "model-A")
    ][0]
    predictions.loc[first_ext, ["score", "status", "failure_reason"]] = [np.nan, "failed", "image unreadable"]
    folder.mkdir(parents=True, exist_ok=True)
    out = {"clinical": folder / "clinical.csv", "predictions": folder / "predictions.csv"}
    clinical.to_csv(out["clinical"], index=False)
    predictions.to_csv(out["predictions"], index=False)
    return out


def _init(out: Path) -> None:
    result = CliRunner().invoke(main, ["init", "diagnostic-accuracy", "--out", str(out)])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> dict[str, Path]:
    """`studyval init` + simulated data + a rendered bundle (resamples trimmed to N_RESAMPLES)."""
    from studyval.pipeline import run_protocol

    root = tmp_path_factory.mktemp("diag_type")
    folder = root / "study"
    _init(folder)
    plan = folder / "plan.yml"
    plan.write_text(
        plan.read_text(encoding="utf-8").replace("n_resamples: 1000", f"n_resamples: {N_RESAMPLES}"),
        encoding="utf-8",
    )
    inputs = _simulated_inputs(root / "data")
    bundle = root / "bundle"
    run_protocol(
        "my-diagnostic-study",
        clinical=inputs["clinical"],
        predictions=inputs["predictions"],
        out=bundle,
        plan=plan,
        render=True,
        engine="jupyter",
    )
    return {"folder": folder, "bundle": bundle, **inputs}


# --------------------------------------------------------------------------- init and templates


def test_init_writes_the_three_template_files(tmp_path):
    _init(tmp_path / "s")
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["dictionary.yml", "plan.yml", "report.qmd"]
    for name in ("plan.yml", "dictionary.yml", "report.qmd"):
        assert (tmp_path / "s" / name).read_bytes() == (TEMPLATES / name).read_bytes()
    assert type_templates("diagnostic_accuracy") == TEMPLATES


def test_init_refuses_a_folder_with_files(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "keep.txt").write_text("x")
    result = CliRunner().invoke(main, ["init", "diagnostic-accuracy", "--out", str(tmp_path / "s")])
    assert result.exit_code != 0
    assert "not an empty folder" in result.output


def test_template_plan_validates_against_the_template_dictionary():
    plan = load_plan(TEMPLATES / "plan.yml")  # check_dictionary=True: every column it names exists
    assert plan.registry.study_type == "diagnostic_accuracy"
    assert plan.slug not in ("ovcf-chronicity",)
    spec = protocol(plan.slug, plan.registry.study_type)
    assert spec.steps is REGISTRY
    for name in ALWAYS:
        assert name in REGISTRY


def test_template_plan_naming_a_column_the_dictionary_lacks_is_an_error_with_its_path(tmp_path):
    shutil.copytree(TEMPLATES, tmp_path / "s")
    plan = tmp_path / "s" / "plan.yml"
    plan.write_text(plan.read_text().replace("from: age", "from: age_at_scan"))
    with pytest.raises(InputValidationError, match=r"cohort\.derived\[0\]\.from"):
        load_plan(plan)


def test_example_plan_uses_only_sections_of_the_template():
    import yaml

    template = yaml.safe_load((TEMPLATES / "plan.yml").read_text())
    example = yaml.safe_load(
        (Path(__file__).parents[1] / "studyval/examples/breast-cancer-diagnostic/plan.yml").read_text()
    )
    assert set(example) <= set(template)
    assert set(example["cohort"]) <= set(template["cohort"])


# --------------------------------------------------------------------------- the run


def test_flow_counts_every_screened_patient_once(study):
    flow = pd.read_csv(study["bundle"] / "tables" / "flow.csv", keep_default_na=False)
    assert flow_count(flow, "screened") == 320
    assert flow_count(flow, "excluded") == 3
    reasons = flow[flow["stage"] == "excluded_reason"].set_index("group")["n_patients"].to_dict()
    assert reasons == {"under_18": 1, "interval_over_30_days": 1, "poor_image_quality": 1}
    assert flow_count(flow, "included") == 317
    assert flow_count(flow, "included_site_class") == 317
    splits = {s: flow_count(flow, "split", set=s) for s in ("development", "internal", "external")}
    assert sum(splits.values()) == 317
    assert splits["external"] == 120
    assert flow_count(flow, "index_test_failed", set="external") == 1
    detail = flow.loc[(flow["stage"] == "index_test_failed") & (flow["set"] == "external"), "detail"]
    assert detail.iloc[0] == "image unreadable (1)"
    assert flow_count(flow, "analysed", set="external") == 119
    assert flow_count(flow, "analysed", set="internal") == splits["internal"]
    auc = pd.read_csv(study["bundle"] / "tables" / "auc.csv")
    a = auc[(auc["set"] == "external") & (auc["model"] == "model-A")].iloc[0]
    assert a["n_positive"] + a["n_negative"] == 119


def test_baseline_has_one_block_per_grouping_of_the_plan(study):
    base = pd.read_csv(study["bundle"] / "tables" / "baseline.csv", keep_default_na=False)
    assert list(dict.fromkeys(base["grouping"])) == ["class", "site"]
    assert {"age", "sex", "age_band"} <= set(base["variable"])
    n = base[(base["grouping"] == "class") & (base["statistic"] == "count")].set_index("group")["value"]
    assert n["Overall"] == 317 and n["present"] + n["absent"] == 317


def test_checklist_is_worded_from_the_plan_not_another_study(study):
    ck = pd.read_csv(study["bundle"] / "tables" / "checklist.csv", keep_default_na=False)
    text = " ".join(ck["content"])
    for foreign in ("OVCF", "DXA", "vertebra", "MRI"):
        assert foreign not in text
    item = ck.set_index("item")["content"]
    assert "age at least 18" in item["6"] and "under 18 1" in item["6"]
    assert item["22"].startswith("index test date to reference date interval, included cases: median")
    assert "index test date of included cases 2024-" in item["8"]
    assert "1 external" in item["15"]


def test_every_figure_of_the_plan_is_drawn(study):
    names = {p.stem for p in (study["bundle"] / "figures").glob("*.png")}
    assert {"flow", "roc_external", "roc_internal", "confusion_external", "confusion_internal",
            "calibration_external", "decision_curve_external", "forest_auc"} <= names


def test_template_report_renders_and_reads_as_a_pi_would(study):
    from studyval.origin import origin_record
    from studyval.reporting import origin_caption

    html = (study["bundle"] / "report" / "report.html").read_text(encoding="utf-8")
    # the simulated files carry no origin marker: user data, no banner, no caption note
    assert problems(html, origin_note=origin_caption(origin_record("user")) or None) == []
    assert "Diagnostic accuracy of an imaging model for the target condition" in html


# --------------------------------------------------------------------------- eligibility


def _typed_clinical(path: Path, plan_file: Path) -> pd.DataFrame:
    from studyval.dictionary import load_dictionary, read_table

    return read_table(path, load_dictionary(plan_file.parent / "dictionary.yml"))


def test_an_included_row_breaking_a_rule_is_named_with_its_row(study, tmp_path):
    plan = load_plan(study["folder"] / "plan.yml")
    clinical = pd.read_csv(study["clinical"])
    clinical.loc[5, "age"] = 17  # included, under the plan's minimum of 18
    clinical.to_csv(tmp_path / "c.csv", index=False)
    typed = _typed_clinical(tmp_path / "c.csv", study["folder"] / "plan.yml")
    found = check_eligibility(typed, plan, label="c.csv")
    assert [(v.column, v.row) for v in found] == [("age", 7)]
    assert "under_18" in found[0].rule


def test_a_plan_column_left_out_of_the_table_is_named(study, tmp_path):
    plan = load_plan(study["folder"] / "plan.yml")
    typed = _typed_clinical(study["clinical"], study["folder"] / "plan.yml").drop(columns=["sex"])
    found = check_eligibility(typed, plan, label="c.csv")
    assert any(v.column == "sex" and "subgroup" in v.rule for v in found)


def test_primary_cases_column_must_mark_one_case_per_patient(study):
    plan = load_plan(study["folder"] / "plan.yml").model_copy()
    sets = plan.sets.model_copy(update={"primary_cases": "index_vertebra"})
    plan = plan.model_copy(update={"sets": sets})
    typed = _typed_clinical(study["clinical"], study["folder"] / "plan.yml")
    typed["index_vertebra"] = True
    typed.loc[typed.index[:2], "patient_id"] = typed.loc[typed.index[0], "patient_id"]
    found = [v for v in check_eligibility(typed, plan, label="c.csv") if v.column == "index_vertebra"]
    assert len(found) == 1 and "2 primary cases" in found[0].rule
    assert primary_case_mask(typed, plan).all()


# --------------------------------------------------------------------------- a study without sites


def test_a_single_centre_study_without_a_site_column_runs(tmp_path):
    """Only an internal held-out set, no external site, no `site` column in either table."""
    import re

    from studyval.dictionary import load_dictionary, read_table
    from studyval.examples import write_example
    from studyval.figures.diagnostic_accuracy import figure_specs
    from studyval.study_types.diagnostic_accuracy import join

    files = write_example("breast-cancer-diagnostic", tmp_path / "s")
    plan_file, dict_file = files["plan"], files["dictionary"]
    text = plan_file.read_text()
    text = text.replace("development_sites: [UW-Madison]", "development_sites: []")
    text = text.replace("constant_within_patient: [site, diagnosis]", "constant_within_patient: [diagnosis]")
    plan_file.write_text(text.replace("n_resamples: 1000", f"n_resamples: {N_RESAMPLES}"))
    dict_file.write_text(re.sub(r"\n  site:\n(    .*\n)+", "\n", dict_file.read_text()))
    for key in ("clinical", "predictions"):
        pd.read_csv(files[key]).drop(columns=["site"]).to_csv(files[key], index=False)
    plan = load_plan(plan_file)
    dictionary = load_dictionary(dict_file)
    assert "site" not in dictionary
    clinical = read_table(files["clinical"], dictionary)
    predictions = read_table(files["predictions"], load_dictionary("predictions"))
    assert check_eligibility(clinical, plan, label="clinical.csv") == []
    spec = protocol(plan.slug, plan.registry.study_type)
    cohort = join(clinical, predictions, plan, clinical_label="clinical.csv", predictions_label="p.csv")
    # one texture band has AUC 1 and small expected counts: the warnings the bundle would keep
    with pytest.warns(StatisticalWarning, match="standard error is zero|expected counts"):
        tables = spec.analyse(cohort, plan).tables
    flow = tables["flow"]
    included = flow[flow["stage"] == "included_site_class"]
    assert list(included["site"]) == ["", ""] and included["n_patients"].sum() == 569
    assert flow_count(flow, "analysed", set="internal") == 190
    assert set(tables["auc"]["set"]) == {"internal"}
    assert "site" not in set(tables["baseline"]["variable"])
    ck = spec.checklist(plan, tables, cohort).set_index("item")["content"]
    assert ck["8"].startswith("Sites and dates are not recorded in the data")
    names = [f.name for f in figure_specs(tables, plan)]
    assert names[:3] == ["flow", "roc_internal", "confusion_internal"]
