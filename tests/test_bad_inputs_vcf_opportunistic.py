"""Bad inputs that the vcf-opportunistic tables open, run through the command line as a user runs it.

Each case runs ``studyval run vcf-opportunistic ... --no-render`` (click's CliRunner) and asserts:
exit code 1, no traceback, a message naming the file, column, row and rule, nothing written at
``--out``, and the input files unchanged byte for byte.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main

SLUG = "vcf-opportunistic"
DROP = "__drop_this_row__"  # a case marks prediction rows to remove


@pytest.fixture(scope="module")
def source(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs (tests/conftest.py): read here, never written."""
    return protocol_inputs(SLUG)


def sheet(i: int) -> int:
    return i + 2


def first(frame: pd.DataFrame, mask) -> int:
    return int(frame.index[mask][0])


def included(c):
    return c["exclusion_reason"] == "none"


def prospective_date_outside_window(c, p):
    i = first(c, (c["period"] == "prospective") & included(c))
    c.loc[i, "scan_date"] = "2021-05-10"
    return [
        rf"clinical\.csv, column 'scan_date', row {sheet(i)}: prospective scan dated outside the "
        rf"prospective window 2021-03-01 to 2021-04-25"
    ]


def retrospective_date_outside_window(c, p):
    i = first(c, c["period"] == "retrospective")
    c.loc[i, "scan_date"] = "2020-06-01"
    return [rf"clinical\.csv, column 'scan_date', row {sheet(i)}: retrospective scan dated outside"]


def referral_without_identification(c, p):
    i = first(c, included(c) & (c["report_vcf"] == "false"))
    c.loc[i, "referred"] = "true"
    return [
        rf"clinical\.csv, column 'referred', row {sheet(i)}: referral without an identification"
    ]


def included_age_55(c, p):
    i = first(c, included(c))
    c.loc[i, "age"] = "55"
    return [
        rf"clinical\.csv, column 'age', row {sheet(i)}: included scan of a patient aged 55 or under"
    ]


def age_exclusion_for_older_patient(c, p):
    i = first(c, c["exclusion_reason"] == "age_55_or_under")
    c.loc[i, "age"] = "70"
    return [
        rf"clinical\.csv, column 'exclusion_reason', row {sheet(i)}: excluded as age_55_or_under but the age is 70"
    ]


def commercial_row_for_unknown_scan(c, p):
    i = first(p, p["model_name"] == "BoneHealth-commercial")
    p.loc[i, "case_id"] = "CT999999"
    return [
        rf"predictions\.csv, column 'case_id', row {sheet(i)}: scan is not in clinical\.csv \(model "
        rf"BoneHealth-commercial\)"
    ]


def commercial_row_for_prospective_scan(c, p):
    j = first(c, (c["period"] == "prospective") & included(c))
    row = p[p["model_name"] == "BoneHealth-commercial"].iloc[[0]].copy()
    row["case_id"], row["patient_id"] = c.at[j, "case_id"], c.at[j, "patient_id"]
    p.loc[len(p)] = row.iloc[0]
    return [
        rf"predictions\.csv, column 'case_id', row {sheet(len(p) - 1)}: scan {c.at[j, 'case_id']} is "
        rf"prospective, but the plan evaluates BoneHealth-commercial on retrospective scans only"
    ]


def week_out_of_range(c, p):
    i = first(c, c["period"] == "prospective")
    c.loc[i, "week"] = "9"
    return [rf"clinical\.csv, column 'week', row {sheet(i)}: .*(9|range)"]


def week_disagrees_with_date(c, p):
    i = first(c, (c["period"] == "prospective") & (c["week"] == "2"))
    c.loc[i, "week"] = "3"
    return [
        rf"clinical\.csv, column 'week', row {sheet(i)}: disagrees with scan_date .* which is in week 2"
    ]


def week_on_retrospective_scan(c, p):
    i = first(c, c["period"] == "retrospective")
    c.loc[i, "week"] = "1"
    return [
        rf"clinical\.csv, column 'week', row {sheet(i)}: week numbers are for prospective scans only"
    ]


def prospective_scan_without_week(c, p):
    i = first(c, c["period"] == "prospective")
    c.loc[i, "week"] = ""
    return [
        rf"clinical\.csv, column 'week', row {sheet(i)}: a prospective scan needs its week number"
    ]


def reference_disagrees_with_genant(c, p):
    i = first(c, included(c) & (c["genant_grade"] == "0"))
    c.loc[i, "vcf_reference"] = "vcf"
    return [
        rf"clinical\.csv, column 'vcf_reference', row {sheet(i)}: disagrees with genant_grade = 0"
    ]


def included_without_reference_read(c, p):
    i = first(c, included(c))
    c.loc[i, "genant_grade"] = ""
    return [
        rf"clinical\.csv, column 'genant_grade', row {sheet(i)}: an included scan needs the reference read"
    ]


def genant_grade_out_of_range(c, p):
    i = first(c, included(c))
    c.loc[i, "genant_grade"] = "4"
    return [rf"clinical\.csv, column 'genant_grade', row {sheet(i)}: .*4"]


def period_misspelt(c, p):
    i = 0
    c.loc[i, "period"] = "retro"
    return [rf"clinical\.csv, column 'period', row {sheet(i)}: .*retrospective"]


def report_not_boolean(c, p):
    i = 0
    c.loc[i, "report_vcf"] = "maybe"
    return [rf"clinical\.csv, column 'report_vcf', row {sheet(i)}: .*maybe"]


def ai_rows_missing(c, p):
    i = first(p, p["model_name"] == "VCF-AI")
    case = p.at[i, "case_id"]
    p.loc[i, "case_id"] = DROP
    j = first(c, c["case_id"] == case)
    return [
        rf"clinical\.csv, column 'case_id', row {sheet(j)}: included scan has no row in "
        rf"predictions\.csv for model 'VCF-AI'"
    ]


def ai_model_absent(c, p):
    p.loc[p["model_name"] == "VCF-AI", "case_id"] = DROP
    return [
        r"predictions\.csv, column 'model_name': the plan's required model 'VCF-AI' has no predictions"
    ]


def misspelt_model(c, p):
    i = first(p, p["model_name"] == "BoneHealth-commercial")
    p.loc[p["model_name"] == "BoneHealth-commercial", "model_name"] = "BoneHealth-comercial"
    return [
        rf"predictions\.csv, column 'model_name', row {sheet(i)}: model is not named in the analysis "
        rf"plan .*did you mean 'BoneHealth-commercial'"
    ]


def wrong_split(c, p):
    i = 0
    p.loc[i, "split"] = "internal"
    return [
        rf"predictions\.csv, column 'split', row {sheet(i)}: every scan is evaluation data: split must be 'external'"
    ]


def wrong_positive_class(c, p):
    i = 0
    p.loc[i, "positive_class"] = "fracture"
    return [
        rf"predictions\.csv, column 'positive_class', row {sheet(i)}: the plan's positive class is 'vcf'"
    ]


def sex_varies_within_patient(c, p):
    dup = c[c.duplicated("patient_id", keep=False)]
    pid = dup["patient_id"].iloc[0]
    rows = c.index[c["patient_id"] == pid]
    c.loc[rows[1], "sex"] = "M" if c.at[rows[0], "sex"] == "F" else "F"
    return [
        rf"clinical\.csv, column 'sex', row {sheet(rows[1])}: patient {pid} has 2 different values"
    ]


CASES = [
    pytest.param(prospective_date_outside_window, id="prospective-date-outside-window"),
    pytest.param(retrospective_date_outside_window, id="retrospective-date-outside-window"),
    pytest.param(referral_without_identification, id="referral-without-identification"),
    pytest.param(included_age_55, id="included-age-55"),
    pytest.param(age_exclusion_for_older_patient, id="age-exclusion-for-older-patient"),
    pytest.param(commercial_row_for_unknown_scan, id="commercial-row-unknown-scan"),
    pytest.param(commercial_row_for_prospective_scan, id="commercial-row-prospective-scan"),
    pytest.param(week_out_of_range, id="week-out-of-range"),
    pytest.param(week_disagrees_with_date, id="week-disagrees-with-date"),
    pytest.param(week_on_retrospective_scan, id="week-on-retrospective-scan"),
    pytest.param(prospective_scan_without_week, id="prospective-scan-without-week"),
    pytest.param(reference_disagrees_with_genant, id="reference-disagrees-with-genant"),
    pytest.param(included_without_reference_read, id="included-without-reference-read"),
    pytest.param(genant_grade_out_of_range, id="genant-grade-out-of-range"),
    pytest.param(period_misspelt, id="period-misspelt"),
    pytest.param(report_not_boolean, id="report-not-boolean"),
    pytest.param(ai_rows_missing, id="ai-row-missing"),
    pytest.param(ai_model_absent, id="ai-model-absent"),
    pytest.param(misspelt_model, id="misspelt-model"),
    pytest.param(wrong_split, id="wrong-split"),
    pytest.param(wrong_positive_class, id="wrong-positive-class"),
    pytest.param(sex_varies_within_patient, id="sex-varies-within-patient"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_rejected_through_the_cli(case, source, tmp_path):
    clin = pd.read_csv(source["clinical"], dtype=str, keep_default_na=False)
    pred = pd.read_csv(source["predictions"], dtype=str, keep_default_na=False)
    patterns = case(clin, pred)
    pred = pred[pred["case_id"] != DROP]
    cpath, ppath, out = tmp_path / "clinical.csv", tmp_path / "predictions.csv", tmp_path / "out"
    clin.to_csv(cpath, index=False, lineterminator="\n")
    pred.to_csv(ppath, index=False, lineterminator="\n")
    before = {p: p.read_bytes() for p in (cpath, ppath)}
    res = CliRunner().invoke(
        main, ["run", SLUG, "-c", str(cpath), "-p", str(ppath), "-o", str(out), "--no-render"]
    )
    text = res.output + (res.stderr if res.stderr_bytes is not None else "")
    assert res.exit_code == 1, text
    assert "Traceback" not in text
    for pat in patterns:
        assert re.search(pat, text), f"{pat!r} not in:\n{text}"
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinical.csv", "predictions.csv"]
    assert all(p.read_bytes() == b for p, b in before.items())


def test_missing_commercial_rows_are_accepted(source, tmp_path, trimmed_plan_file):
    """Every analysis of the bundled plan runs without the optional model, with the plan's
    resample counts cut to 100 (conftest's ``trimmed_plan_file``): the same steps meet the
    missing model, only the bootstraps draw fewer resamples, and the exit code is all
    that is asserted."""
    pred = pd.read_csv(source["predictions"], dtype=str, keep_default_na=False)
    pred = pred[pred["model_name"] != "BoneHealth-commercial"]
    ppath = tmp_path / "predictions.csv"
    pred.to_csv(ppath, index=False, lineterminator="\n")
    res = CliRunner().invoke(
        main,
        [
            "run",
            SLUG,
            "-c",
            str(source["clinical"]),
            "-p",
            str(ppath),
            "-o",
            str(tmp_path / "out"),
            "--no-render",
            "--plan",
            str(trimmed_plan_file(SLUG, 100, tmp_path / "plan")),
        ],
    )
    assert res.exit_code == 0, res.output
