"""Cross-table rules: predictions against the clinical table and the plan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from studyval.cohort import join_predictions
from studyval.dictionary import read_table
from studyval.errors import InputValidationError
from studyval.plan import load_plan


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict[str, Path]:
    from studyval.synthetic.ovcf_chronicity import generate

    return generate(seed=11).write(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def plan():
    return load_plan("ovcf-chronicity")


def _tables(demo):
    clin = pd.read_csv(demo["clinical"], dtype=str, keep_default_na=False)
    pred = pd.read_csv(demo["predictions"], dtype=str, keep_default_na=False)
    return clin, pred


def _join(tmp_path, clin, pred, plan):
    cp, pp = tmp_path / "clinical.csv", tmp_path / "predictions.csv"
    clin.to_csv(cp, index=False)
    pred.to_csv(pp, index=False)
    c = read_table(cp, "ovcf-chronicity")
    p = read_table(pp, "predictions")
    return join_predictions(c, p, plan, clinical_label=cp.name, predictions_label=pp.name)


def test_demo_joins(tmp_path, demo, plan):
    clin, pred = _tables(demo)
    cohort = _join(tmp_path, clin, pred, plan)
    assert set(cohort.predictions["model_name"]) == set(plan.model_names)
    assert (cohort.predictions["exclusion_reason"] == "none").all()
    assert cohort.predictions["positive"].dtype == bool


def _first_included(clin):
    return clin.index[clin["exclusion_reason"] == "none"][0]


CASES = [
    pytest.param(
        lambda c, p: (c, p.assign(case_id=p["case_id"].where(p.index != 0, "P9999-V1"))),
        r"predictions\.csv, column 'case_id', row 2: case is not in clinical\.csv "
        r"\(model DenseNet-121\) \(found 'P9999-V1'\)",
        id="prediction-for-unknown-case",
    ),
    pytest.param(
        lambda c, p: (
            c,
            p[
                ~(
                    (p["case_id"] == c.loc[_first_included(c), "case_id"])
                    & (p["model_name"] == "ViT")
                )
            ],
        ),
        r"clinical\.csv, column 'case_id', row \d+: included case has no row in predictions\.csv for model 'ViT'",
        id="included-case-without-prediction",
    ),
    pytest.param(
        lambda c, p: (c, pd.concat([p, p.iloc[[0]]], ignore_index=True)),
        r"second prediction for this case by model",
        id="duplicate-case-model",
    ),
    pytest.param(
        lambda c, p: (c, p.assign(model_name=p["model_name"].replace({"ViT": "VIT"}))),
        r"model is not named in the analysis plan .*did you mean 'ViT'\?",
        id="unknown-model-name",
    ),
    pytest.param(
        lambda c, p: (c, p.assign(positive_class="chronic")),
        r"column 'positive_class', row 2: the plan's positive class is 'acute'",
        id="score-for-wrong-class",
    ),
    pytest.param(
        lambda c, p: (c, p.assign(score=p["score"].where(p.index != 0, ""))),
        r"column 'score', row 2: status is ok but the score is empty",
        id="missing-score-status-ok",
    ),
    pytest.param(
        lambda c, p: (c, p.assign(site=p["site"].where(p.index != 0, "XX"))),
        r"column 'site', row 2: clinical\.csv has '\w+' for case",
        id="site-mismatch",
    ),
    pytest.param(
        lambda c, p: (
            c,
            p.assign(
                split=p["split"].where(
                    p.index != 0, "external" if p.loc[0, "split"] != "external" else "internal"
                )
            ),
        ),
        r"is in more than one split",
        id="patient-in-two-splits",
    ),
    pytest.param(
        lambda c, p: (
            c,
            p.assign(model_version=p["model_version"].where(p.index != 0, "sha256:" + "0" * 64)),
        ),
        r"has 2 weight versions",
        id="two-weight-versions",
    ),
]


@pytest.mark.parametrize(("mutate", "message"), CASES)
def test_cross_table_violation(tmp_path, demo, plan, mutate, message):
    clin, pred = _tables(demo)
    clin, pred = mutate(clin, pred)
    with pytest.raises(InputValidationError, match=message):
        _join(tmp_path, clin, pred.reset_index(drop=True), plan)


def test_failed_case_is_kept_and_counted(tmp_path, demo, plan):
    clin, pred = _tables(demo)
    cohort = _join(tmp_path, clin, pred, plan)
    failed = cohort.predictions[cohort.predictions["status"] == "failed"]
    assert len(failed) == 3  # one case, three models
    assert failed["score"].isna().all()
    assert failed["failure_reason"].notna().all()
