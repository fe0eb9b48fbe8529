"""Cross-table rules: predictions against the clinical table and the plan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from studyval.cohort import absent_column_violations, failure_reason_summary, join_predictions
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
    pytest.param(
        lambda c, p: (
            c,
            p.assign(
                vertebral_level=p["vertebral_level"].where(
                    p.index != 0, "L5" if p.loc[0, "vertebral_level"] != "L5" else "L4"
                )
            ),
        ),
        r"predictions\.csv, column 'vertebral_level', row 2: clinical\.csv has '\w+' for case",
        id="vertebral-level-mismatch",
    ),
    pytest.param(
        lambda c, p: (c, p.drop(columns=["score"])),
        r"predictions\.csv, column 'score': column is missing: it is needed by every analysis",
        id="score-column-left-out",
    ),
    pytest.param(
        lambda c, p: (c, p.drop(columns=["failure_reason"])),
        r"predictions\.csv, column 'failure_reason': column is missing: .*participant flow.*"
        r"\(3 rows have status failed\)",
        id="failure-reason-column-left-out-with-failures",
    ),
    pytest.param(
        lambda c, p: (
            c.assign(site="CQMU"),
            p.assign(site="CQMU", split=p["split"].replace({"external": "internal"})),
        ),
        r"predictions\.csv, column 'split': the prediction table has no included index vertebra "
        r"in the external set \(split = external\): the plan's primary analysis needs it.*"
        r"sites found: CQMU; the plan's external sites: EXT",
        id="no-external-set",
    ),
    pytest.param(
        lambda c, p: (c, p[p["split"] != "internal"]),
        r"no included index vertebra in the internal set \(split = internal\): the plan's "
        r"secondary analysis needs it \(endpoints S3\); splits found: development \(\d+ index "
        r"vertebrae\), external \(\d+ index vertebrae\)",
        id="no-internal-set",
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


def test_copy_of_vertebral_level_is_optional_and_the_clinical_one_is_used(tmp_path, demo, plan):
    clin, pred = _tables(demo)
    cohort = _join(tmp_path, clin, pred.drop(columns=["vertebral_level"]), plan)
    levels = clin.set_index("case_id")["vertebral_level"]
    joined = cohort.predictions
    assert (joined["vertebral_level"].astype(str) == joined["case_id"].map(levels)).all()


def test_failure_reason_left_out_without_failures_is_an_empty_column(tmp_path, demo, plan):
    clin, pred = _tables(demo)
    pred = pred[pred["status"] == "ok"].drop(columns=["failure_reason"])
    cohort = _join(tmp_path, clin[~clin["case_id"].isin(_failed_cases(demo))], pred, plan)
    assert cohort.predictions["failure_reason"].isna().all()


def _failed_cases(demo) -> set[str]:
    _, pred = _tables(demo)
    return set(pred.loc[pred["status"] == "failed", "case_id"])


@pytest.mark.parametrize(
    ("reasons", "expected"),
    [
        pytest.param([], "", id="none"),
        pytest.param(
            ["segmentation failed", "image unreadable", "image unreadable"],
            "image unreadable (2); segmentation failed (1)",
            id="most-frequent-first",
        ),
        pytest.param(
            ["segmentation failed", "image missing"],
            "image missing (1); segmentation failed (1)",
            id="ties-alphabetical",
        ),
        pytest.param(
            ["other (text withheld)", None], "not given (1); other (text withheld) (1)", id="empty"
        ),
    ],
)
def test_failure_reason_summary(reasons, expected):
    assert failure_reason_summary(pd.Series(reasons, dtype="string")) == expected


def test_absent_column_violations_name_file_column_and_use():
    frame = pd.DataFrame({"a": [1]})
    found = absent_column_violations(
        frame, {"a": "x", "dxa_t_score": "baseline table"}, label="clinical.csv"
    )
    assert [str(v) for v in found] == [
        "clinical.csv, column 'dxa_t_score': column is missing: it is needed by the plan's "
        "baseline table; the dictionary lets some of its cells be empty, not the column be left out"
    ]
