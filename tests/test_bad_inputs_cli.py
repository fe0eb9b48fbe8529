"""A catalogue of hostile inputs, run through the command line as a user runs it.

Every case runs ``studyval run ovcf-chronicity ... --no-render`` (click's
CliRunner, in process) and asserts: exit code 1, no traceback, a message naming
the file, column, row and rule (or the file and rule for whole-file problems),
nothing written at ``--out`` (nor anywhere beside it), and the input files'
bytes unchanged.

Plan errors cannot be reached through the CLI (it reads the bundled plan), so
they are tested through :func:`studyval.plan.load_plan` on edited copies of the
plan (``test_plan_errors_name_the_yaml_path``).
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from studyval.cli import main
from studyval.errors import InputValidationError
from studyval.plan import load_plan, plan_path

SLUG = "ovcf-chronicity"


@pytest.fixture(scope="module")
def source(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs (tests/conftest.py): read here, never written."""
    return protocol_inputs(SLUG)


class Ctx:
    """One case's working copy: the two tables as text frames, and where they go."""

    def __init__(self, source: dict[str, Path], d: Path) -> None:
        self.d = d
        self.clin = pd.read_csv(source["clinical"], dtype=str, keep_default_na=False)
        self.pred = pd.read_csv(source["predictions"], dtype=str, keep_default_na=False)
        self.clinical = d / "clinical.csv"
        self.predictions = d / "predictions.csv"
        self.out = d / "out"
        self.raw: dict[str, bytes] = {}
        self.absent: set[str] = set()

    # helpers used by the cases -------------------------------------------------------------
    def crow(self, mask) -> int:
        """Index of the first clinical row where ``mask`` holds."""
        return int(self.clin.index[mask][0])

    def prow(self, mask) -> int:
        """Index of the first prediction row where ``mask`` holds."""
        return int(self.pred.index[mask][0])

    def included(self):
        return self.clin["exclusion_reason"] == "none"

    def write(self) -> None:
        for name, frame in (("clinical", self.clin), ("predictions", self.pred)):
            path = getattr(self, name)
            if path.exists() or name in self.absent:
                continue
            if name in self.raw:
                path.write_bytes(self.raw[name])
            elif path.suffix == ".parquet":
                frame.replace({"": None}).to_parquet(path)
            else:
                frame.to_csv(path, index=False, lineterminator="\n")


def line(df: pd.DataFrame, sep: str = ",") -> bytes:
    return df.to_csv(index=False, sep=sep, lineterminator="\n").encode()


def sheet(i: int) -> int:
    """Spreadsheet row of frame index ``i`` (header is row 1)."""
    return i + 2


# ------------------------------------------------------------------------------- whole files


def wrong_delimiter_semicolon(c: Ctx):
    c.raw["clinical"] = line(c.clin, sep=";")
    return [r"clinical\.csv, row 1: the header has no commas .*semicolon-delimited"]


def wrong_delimiter_tab(c: Ctx):
    c.raw["predictions"] = line(c.pred, sep="\t")
    return [r"predictions\.csv, row 1: .*tab-delimited"]


def non_utf8_latin1(c: Ctx):
    c.clin.loc[3, "patient_name"] = "Müller^José"
    c.raw["clinical"] = c.clin.to_csv(index=False, lineterminator="\n").encode("latin-1")
    return [r"clinical\.csv, row 5: is not valid UTF-8 \(byte 0xfc at offset \d+\)"]


def utf16_file(c: Ctx):
    c.raw["clinical"] = c.clin.to_csv(index=False, lineterminator="\n").encode("utf-16")
    return [r"clinical\.csv, row 1: is not valid UTF-8 \(byte 0xff at offset 0\)"]


def empty_clinical(c: Ctx):
    c.raw["clinical"] = b""
    return [r"clinical\.csv: file is empty \(0 bytes\)"]


def empty_predictions(c: Ctx):
    c.raw["predictions"] = b""
    return [r"predictions\.csv: file is empty \(0 bytes\)"]


def blank_clinical(c: Ctx):
    c.raw["clinical"] = b"\n\n   \n"
    return [r"clinical\.csv: file has no content"]


def header_only_clinical(c: Ctx):
    c.raw["clinical"] = line(c.clin.iloc[:0])
    return [r"clinical\.csv: has a header but no data rows"]


def header_only_predictions(c: Ctx):
    c.raw["predictions"] = line(c.pred.iloc[:0])
    return [r"predictions\.csv: has a header but no data rows"]


def truncated_parquet_clinical(c: Ctx):
    c.clinical = c.d / "clinical.parquet"
    c.clin.replace({"": None}).to_parquet(c.clinical)
    c.clinical.write_bytes(c.clinical.read_bytes()[:300])
    return [r"clinical\.parquet: cannot be read as parquet"]


def truncated_parquet_predictions(c: Ctx):
    c.predictions = c.d / "predictions.parquet"
    c.pred.replace({"": None}).to_parquet(c.predictions)
    data = c.predictions.read_bytes()
    c.predictions.write_bytes(data[: len(data) // 2])
    return [r"predictions\.parquet: cannot be read as parquet"]


def excel_workbook(c: Ctx):
    c.clinical = c.d / "clinical.xlsx"
    c.clinical.write_bytes(b"PK\x03\x04 not really a workbook")
    return [r"clinical\.xlsx: unsupported file type '\.xlsx'; use \.csv or \.parquet"]


def missing_file(c: Ctx):
    c.clinical = c.d / "no-such-clinical.csv"
    c.absent.add("clinical")
    return [r"no-such-clinical\.csv: file does not exist"]


def directory_not_file(c: Ctx):
    c.predictions = c.d / "predictions_dir.csv"
    c.predictions.mkdir()
    return [r"predictions_dir\.csv: is a directory, not a file"]


def ragged_row(c: Ctx):
    text = line(c.clin).decode().splitlines()
    text[4] += ",surplus"
    c.raw["clinical"] = ("\n".join(text) + "\n").encode()
    return [r"clinical\.csv: is not a well-formed CSV: .*line 5"]


def duplicated_header(c: Ctx):
    c.clin.insert(len(c.clin.columns), "age ", c.clin["age"])
    data = line(c.clin).decode().replace(",age \n", ",age\n", 1).replace(",age ,", ",age,", 1)
    c.raw["clinical"] = data.encode()
    return [r"clinical\.csv, column 'age', row 1: column appears more than once"]


# ------------------------------------------------------------------------------- cells


def excel_decimal_comma(c: Ctx):
    i = c.crow(c.clin["dxa_t_score"] != "")
    c.clin.loc[i, "dxa_t_score"] = c.clin.loc[i, "dxa_t_score"].replace(".", ",")
    return [
        rf"clinical\.csv, column 'dxa_t_score', row {sheet(i)}: must be a number "
        r"\(use a decimal point, not a comma\)"
    ]


def excel_score_comma(c: Ctx):
    c.pred.loc[7, "score"] = "0,5"
    return [r"predictions\.csv, column 'score', row 9: must be a number \(use a decimal point"]


def excel_truncated_exponent(c: Ctx):
    c.pred.loc[10, "score"] = "1.5e"
    return [r"predictions\.csv, column 'score', row 12: must be a number \(found '1\.5e'\)"]


def excel_percent(c: Ctx):
    c.pred.loc[11, "score"] = "50%"
    return [r"predictions\.csv, column 'score', row 13: must be a number \(found '50%'\)"]


def excel_integer_as_float(c: Ctx):
    c.clin.loc[2, "age"] = c.clin.loc[2, "age"] + ".0"
    return [r"clinical\.csv, column 'age', row 4: must be an integer"]


def excel_date(c: Ctx):
    c.clin.loc[6, "ct_date"] = "03/12/2024"
    return [r"clinical\.csv, column 'ct_date', row 8: must be an ISO date YYYY-MM-DD"]


def mixed_date_formats(c: Ctx):
    c.clin.loc[1, "mri_date"] = "2024-3-5"
    c.clin.loc[8, "mri_date"] = "05.03.2024"
    c.clin.loc[9, "ct_date"] = "2024-03-05T00:00:00"
    return [
        r"clinical\.csv, column 'mri_date', row 3: must be an ISO date",
        r"clinical\.csv, column 'mri_date', row 10: must be an ISO date",
        r"clinical\.csv, column 'ct_date', row 11: must be an ISO date",
        r"3 violations found",
    ]


def impossible_date(c: Ctx):
    c.clin.loc[12, "ct_date"] = "2024-02-30"
    return [r"clinical\.csv, column 'ct_date', row 14: is not a valid calendar date"]


def date_outside_accrual(c: Ctx):
    c.clin.loc[13, "ct_date"] = "2019-06-01"
    return [r"clinical\.csv, column 'ct_date', row 15: must be on or after 2023-01-01"]


def duplicated_case_id(c: Ctx):
    c.clin.loc[5, "case_id"] = c.clin.loc[4, "case_id"]
    return [r"clinical\.csv, column 'case_id', row 7: duplicate value; first seen in row 6"]


def duplicated_prediction_row(c: Ctx):
    c.pred = pd.concat([c.pred, c.pred.iloc[[3]]], ignore_index=True)
    n = len(c.pred) - 1
    return [
        rf"predictions\.csv, column 'case_id', row {sheet(n)}: second prediction for this case by model"
    ]


def whitespace_padded_case_id(c: Ctx):
    c.clin.loc[0, "case_id"] = c.clin.loc[0, "case_id"] + " "
    return [
        r"clinical\.csv, column 'case_id', row 2: leading or trailing whitespace is not allowed"
    ]


def whitespace_padded_patient_id_in_predictions(c: Ctx):
    c.pred.loc[2, "patient_id"] = " " + c.pred.loc[2, "patient_id"]
    return [r"predictions\.csv, column 'patient_id', row 4: leading or trailing whitespace"]


def ids_differing_only_in_case(c: Ctx):
    c.clin.loc[3, "case_id"] = c.clin.loc[2, "case_id"].lower()
    return [r"clinical\.csv, column 'case_id', row 5: differs from another id only in letter case"]


def id_breaking_pattern(c: Ctx):
    c.clin.loc[4, "patient_id"] = "P 0001"
    return [r"clinical\.csv, column 'patient_id', row 6: must match the pattern"]


def missing_column(c: Ctx):
    c.clin = c.clin.drop(columns=["sex"])
    return [r"clinical\.csv, column 'sex': required column is missing"]


def misspelt_column(c: Ctx):
    c.pred = c.pred.rename(columns={"positive_class": "postive_class"})
    return [
        r"predictions\.csv, column 'positive_class': required column is missing; "
        r"found 'postive_class' instead \(misspelt\?\)",
    ]


def column_name_case(c: Ctx):
    c.clin = c.clin.rename(columns={"chronicity": "Chronicity"})
    return [r"clinical\.csv, column 'chronicity': required column is missing; found 'Chronicity'"]


def undeclared_column(c: Ctx):
    c.clin["bmi"] = "24.1"
    return [r"clinical\.csv, column 'bmi', row 1: column is not in the ovcf-chronicity dictionary"]


def label_outside_levels(c: Ctx):
    c.clin.loc[10, "chronicity"] = "subacute"
    return [r"clinical\.csv, column 'chronicity', row 12: not an allowed level \(acute, chronic\)"]


def label_wrong_case(c: Ctx):
    c.clin.loc[10, "sex"] = "f"
    return [r"clinical\.csv, column 'sex', row 12: not an allowed level \(F, M\) \(found 'f'\)"]


def na_spelled_out(c: Ctx):
    c.clin.loc[14, "dxa_t_score"] = "n/a"
    return [r"clinical\.csv, column 'dxa_t_score', row 16: must be a number \(found 'n/a'\)"]


def required_value_empty(c: Ctx):
    c.clin.loc[15, "vertebral_level"] = ""
    return [r"clinical\.csv, column 'vertebral_level', row 17: value is required"]


def bad_boolean(c: Ctx):
    c.clin.loc[16, "index_vertebra"] = "Y"
    return [r"clinical\.csv, column 'index_vertebra', row 18: must be true or false"]


def score_nan(c: Ctx):
    c.pred.loc[20, "score"] = "NaN"
    return [r"predictions\.csv, column 'score', row 22: must be a number \(found 'NaN'\)"]


def score_minus_inf(c: Ctx):
    c.pred.loc[21, "score"] = "-inf"
    return [r"predictions\.csv, column 'score', row 23: must be a number \(found '-inf'\)"]


def score_empty_status_ok(c: Ctx):
    i = c.prow(c.pred["status"] == "ok")
    c.pred.loc[i, "score"] = ""
    return [
        rf"predictions\.csv, column 'score', row {sheet(i)}: status is ok but the score is empty"
    ]


def score_above_one(c: Ctx):
    c.pred.loc[22, "score"] = "1.000001"
    return [r"predictions\.csv, column 'score', row 24: must be <= 1"]


def score_percent_scale(c: Ctx):
    c.pred.loc[23, "score"] = "87.5"
    return [r"predictions\.csv, column 'score', row 25: must be <= 1"]


def score_negative(c: Ctx):
    c.pred.loc[24, "score"] = "-0.01"
    return [r"predictions\.csv, column 'score', row 26: must be >= 0"]


def _external_index_ok(c: Ctx, model: str) -> int:
    idx = c.clin.loc[
        (c.clin["site"] == "EXT") & c.included() & (c.clin["index_vertebra"] == "true"),
        "case_id",
    ]
    mask = (
        c.pred["case_id"].isin(set(idx))
        & (c.pred["model_name"] == model)
        & (c.pred["status"] == "ok")
    )
    return c.prow(mask)


def score_exactly_one(c: Ctx):
    i = _external_index_ok(c, "DenseNet-121")
    c.pred.loc[i, "score"] = "1"
    return [rf"predictions\.csv, column 'score', row {sheet(i)}: .*exactly 0 or 1"]


def score_exactly_zero(c: Ctx):
    i = _external_index_ok(c, "ViT")
    c.pred.loc[i, "score"] = "0.0"
    return [rf"predictions\.csv, column 'score', row {sheet(i)}: .*exactly 0 or 1"]


def failed_without_reason(c: Ctx):
    i = c.prow(c.pred["status"] == "failed")
    c.pred.loc[i, "failure_reason"] = ""
    return [
        rf"predictions\.csv, column 'failure_reason', row {sheet(i)}: a failed case needs a failure_reason"
    ]


def failed_with_score(c: Ctx):
    i = c.prow(c.pred["status"] == "failed")
    c.pred.loc[i, "score"] = "0.4"
    return [
        rf"predictions\.csv, column 'score', row {sheet(i)}: status is failed but a score is given"
    ]


def bad_model_version(c: Ctx):
    c.pred.loc[30, "model_version"] = "v1.2"
    return [r"predictions\.csv, column 'model_version', row 32: must match the pattern"]


# ------------------------------------------------------------------------------- cross-table


def prediction_for_unknown_case(c: Ctx):
    c.pred.loc[40, "case_id"] = "P9999-V1"
    return [
        r"predictions\.csv, column 'case_id', row 42: case is not in clinical\.csv "
        r"\(model DenseNet-121\) \(found 'P9999-V1'\)"
    ]


def included_case_without_predictions(c: Ctx):
    i = c.crow(c.included())
    case = c.clin.loc[i, "case_id"]
    c.pred = c.pred[c.pred["case_id"] != case].reset_index(drop=True)
    return [
        rf"clinical\.csv, column 'case_id', row {sheet(i)}: included case has no row in "
        r"predictions\.csv for model 'DenseNet-121'"
    ]


def plan_model_absent(c: Ctx):
    c.pred = c.pred[c.pred["model_name"] != "VGG-16"].reset_index(drop=True)
    return [r"predictions\.csv, column 'model_name': the plan's required model 'VGG-16' has no predictions"]


def unknown_model(c: Ctx):
    c.pred.loc[c.pred["model_name"] == "DenseNet-121", "model_name"] = "DenseNet121"
    i = c.prow(c.pred["model_name"] == "DenseNet121")
    return [
        rf"predictions\.csv, column 'model_name', row {sheet(i)}: model is not named in the analysis "
        r"plan \(DenseNet-121, ViT, VGG-16\); did you mean 'DenseNet-121'\?"
    ]


def wrong_positive_class(c: Ctx):
    c.pred.loc[c.pred["model_name"] == "ViT", "positive_class"] = "chronic"
    i = c.prow(c.pred["model_name"] == "ViT")
    return [
        rf"predictions\.csv, column 'positive_class', row {sheet(i)}: the plan's positive class is "
        r"'acute'; the score must refer to it \(found 'chronic'\)"
    ]


def two_weight_versions(c: Ctx):
    rows = c.pred.index[c.pred["model_name"] == "ViT"]
    c.pred.loc[rows[50], "model_version"] = "sha256:" + "ab" * 32
    return [
        rf"predictions\.csv, column 'model_version', row {sheet(rows[50])}: model 'ViT' has 2 weight "
        r"versions; one run evaluates one version"
    ]


def patient_in_two_splits(c: Ctx):
    pid = c.pred.loc[c.pred["split"] == "development", "patient_id"].iloc[0]
    rows = c.pred.index[(c.pred["patient_id"] == pid) & (c.pred["model_name"] == "ViT")]
    c.pred.loc[rows, "split"] = "internal"
    first = c.prow(c.pred["patient_id"] == pid)
    return [
        rf"predictions\.csv, column 'split', row {sheet(first)}: patient {pid} is in more than one "
        r"split \(development, internal\): splits must be by patient"
    ]


def external_split_at_development_site(c: Ctx):
    i = c.prow(c.pred["split"] == "internal")
    pid = c.pred.loc[i, "patient_id"]
    c.pred.loc[c.pred["patient_id"] == pid, "split"] = "external"
    return [
        rf"predictions\.csv, column 'split', row {sheet(i)}: split 'external' must be used exactly "
        r"for the external sites \(EXT\)"
    ]


def site_disagrees(c: Ctx):
    i = c.prow(c.pred["site"] == "CQMU")
    c.pred.loc[i, "site"] = "EXT"
    return [rf"predictions\.csv, column 'site', row {sheet(i)}: clinical\.csv has 'CQMU' for case"]


def patient_disagrees(c: Ctx):
    c.pred.loc[5, "patient_id"] = "P0999"
    return [r"predictions\.csv, column 'patient_id', row 7: clinical\.csv has 'P\d+' for case"]


def single_class_external(c: Ctx):
    c.clin.loc[c.clin["site"] == "EXT", "chronicity"] = "acute"
    return [
        r"clinical\.csv.*chronicity.*external.*single class|external set.*single class.*clinical\.csv"
    ]


def age_under_50_included(c: Ctx):
    i = c.crow(c.included())
    pid = c.clin.loc[i, "patient_id"]
    c.clin.loc[c.clin["patient_id"] == pid, "age"] = "45"
    return [
        rf"clinical\.csv, column 'age', row {sheet(i)}: included patient is younger than 50; set "
        r"exclusion_reason to age_under_50 \(found '45'\)"
    ]


def ct_mri_interval_14_days_included(c: Ctx):
    i = c.crow(c.included())
    ct = pd.Timestamp(c.clin.loc[i, "ct_date"])
    c.clin.loc[i, "mri_date"] = (ct + pd.Timedelta(days=14)).strftime("%Y-%m-%d")
    return [
        rf"clinical\.csv, column 'mri_date', row {sheet(i)}: included case has CT and MRI 14 days "
        r"apart \(must be < 14\)"
    ]


def two_index_vertebrae(c: Ctx):
    multi = c.clin.groupby("patient_id")["case_id"].transform("size") > 1
    i = c.crow(multi & (c.clin["index_vertebra"] == "false"))
    pid = c.clin.loc[i, "patient_id"]
    c.clin.loc[i, "index_vertebra"] = "true"
    first = c.crow(c.clin["patient_id"] == pid)
    return [
        rf"clinical\.csv, column 'index_vertebra', row {sheet(first)}: patient {pid} has 2 index "
        r"vertebrae; exactly one is required"
    ]


def no_index_vertebra(c: Ctx):
    i = c.crow(c.clin["index_vertebra"] == "true")
    pid = c.clin.loc[i, "patient_id"]
    c.clin.loc[c.clin["patient_id"] == pid, "index_vertebra"] = "false"
    return [
        rf"clinical\.csv, column 'index_vertebra', row {sheet(i)}: patient {pid} has 0 index vertebrae"
    ]


def sex_varies_within_patient(c: Ctx):
    multi = c.clin.groupby("patient_id")["case_id"].transform("size") > 1
    i = c.crow(multi & (c.clin["index_vertebra"] == "false"))
    c.clin.loc[i, "sex"] = "M" if c.clin.loc[i, "sex"] == "F" else "F"
    pid = c.clin.loc[i, "patient_id"]
    second = int(c.clin.index[c.clin["patient_id"] == pid][1])
    return [
        rf"clinical\.csv, column 'sex', row {sheet(second)}: patient {pid} has 2 different values; "
        "it must be constant within a patient"
    ]


# ------------------------------------------------------------------------------- --out


def out_is_foreign_directory(c: Ctx):
    c.out.mkdir()
    (c.out / "thesis.docx").write_bytes(b"years of work")
    return [r"--out .*out exists, is not empty and is not a studyval results bundle"]


def out_is_a_file(c: Ctx):
    c.out.write_bytes(b"not a directory")
    return [r"--out .*out exists and is not a folder"]


CASES: list = [
    pytest.param(wrong_delimiter_semicolon, id="wrong-delimiter-semicolon"),
    pytest.param(wrong_delimiter_tab, id="wrong-delimiter-tab"),
    pytest.param(non_utf8_latin1, id="non-utf8-latin1"),
    pytest.param(utf16_file, id="utf16-file"),
    pytest.param(empty_clinical, id="empty-clinical"),
    pytest.param(empty_predictions, id="empty-predictions"),
    pytest.param(blank_clinical, id="blank-clinical"),
    pytest.param(header_only_clinical, id="header-only-clinical"),
    pytest.param(header_only_predictions, id="header-only-predictions"),
    pytest.param(truncated_parquet_clinical, id="truncated-parquet-clinical"),
    pytest.param(truncated_parquet_predictions, id="truncated-parquet-predictions"),
    pytest.param(excel_workbook, id="excel-workbook"),
    pytest.param(missing_file, id="missing-file"),
    pytest.param(directory_not_file, id="directory-not-file"),
    pytest.param(ragged_row, id="ragged-row"),
    pytest.param(duplicated_header, id="duplicated-header"),
    pytest.param(excel_decimal_comma, id="excel-decimal-comma"),
    pytest.param(excel_score_comma, id="excel-score-comma"),
    pytest.param(excel_truncated_exponent, id="excel-1.5e"),
    pytest.param(excel_percent, id="excel-percent"),
    pytest.param(excel_integer_as_float, id="excel-integer-as-float"),
    pytest.param(excel_date, id="excel-date"),
    pytest.param(mixed_date_formats, id="mixed-date-formats"),
    pytest.param(impossible_date, id="impossible-date"),
    pytest.param(date_outside_accrual, id="date-outside-accrual"),
    pytest.param(duplicated_case_id, id="duplicated-case-id"),
    pytest.param(duplicated_prediction_row, id="duplicated-prediction-row"),
    pytest.param(whitespace_padded_case_id, id="whitespace-padded-case-id"),
    pytest.param(whitespace_padded_patient_id_in_predictions, id="whitespace-padded-patient-id"),
    pytest.param(ids_differing_only_in_case, id="ids-differing-only-in-case"),
    pytest.param(id_breaking_pattern, id="id-breaking-pattern"),
    pytest.param(missing_column, id="missing-column"),
    pytest.param(misspelt_column, id="misspelt-column"),
    pytest.param(column_name_case, id="column-name-case"),
    pytest.param(undeclared_column, id="undeclared-column"),
    pytest.param(label_outside_levels, id="label-outside-levels"),
    pytest.param(label_wrong_case, id="label-wrong-case"),
    pytest.param(na_spelled_out, id="na-spelled-out"),
    pytest.param(required_value_empty, id="required-value-empty"),
    pytest.param(bad_boolean, id="bad-boolean"),
    pytest.param(score_nan, id="score-nan"),
    pytest.param(score_minus_inf, id="score-minus-inf"),
    pytest.param(score_empty_status_ok, id="score-empty-status-ok"),
    pytest.param(score_above_one, id="score-above-one"),
    pytest.param(score_percent_scale, id="score-percent-scale"),
    pytest.param(score_negative, id="score-negative"),
    pytest.param(score_exactly_one, id="score-exactly-1"),
    pytest.param(score_exactly_zero, id="score-exactly-0"),
    pytest.param(failed_without_reason, id="failed-without-reason"),
    pytest.param(failed_with_score, id="failed-with-score"),
    pytest.param(bad_model_version, id="bad-model-version"),
    pytest.param(prediction_for_unknown_case, id="prediction-for-unknown-case"),
    pytest.param(included_case_without_predictions, id="included-case-without-predictions"),
    pytest.param(plan_model_absent, id="plan-model-absent"),
    pytest.param(unknown_model, id="unknown-model"),
    pytest.param(wrong_positive_class, id="wrong-positive-class"),
    pytest.param(two_weight_versions, id="two-weight-versions"),
    pytest.param(patient_in_two_splits, id="patient-in-two-splits"),
    pytest.param(external_split_at_development_site, id="external-split-at-development-site"),
    pytest.param(site_disagrees, id="site-disagrees"),
    pytest.param(patient_disagrees, id="patient-disagrees"),
    pytest.param(single_class_external, id="single-class-external"),
    pytest.param(age_under_50_included, id="age-under-50-included"),
    pytest.param(ct_mri_interval_14_days_included, id="ct-mri-interval-14d-included"),
    pytest.param(two_index_vertebrae, id="two-index-vertebrae"),
    pytest.param(no_index_vertebra, id="no-index-vertebra"),
    pytest.param(sex_varies_within_patient, id="sex-varies-within-patient"),
    pytest.param(out_is_foreign_directory, id="out-is-foreign-directory"),
    pytest.param(out_is_a_file, id="out-is-a-file"),
]


def _snapshot(d: Path) -> dict[str, bytes | None]:
    return {
        p.relative_to(d).as_posix(): (p.read_bytes() if p.is_file() else None)
        for p in sorted(d.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_rejected_clearly_and_writes_nothing(
    source, tmp_path, case: Callable[[Ctx], list[str]]
):
    c = Ctx(source, tmp_path)
    expected = case(c)
    c.write()
    out_existed = c.out.exists()
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(
        main,
        [
            "run",
            SLUG,
            "-c",
            str(c.clinical),
            "-p",
            str(c.predictions),
            "-o",
            str(c.out),
            "--no-render",
            "-q",
        ],
    )
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        tb = "".join(traceback.format_exception(res.exception))
        pytest.fail(f"traceback instead of a message:\n{tb}")
    output = res.output
    assert res.exit_code == 1, output
    assert output.startswith("studyval: error: "), output
    for pattern in expected:
        assert re.search(pattern, output), f"{pattern!r} not in:\n{output}"
    assert "Traceback" not in output
    # nothing written: no bundle, no hidden temporary directory, inputs byte for byte
    assert c.out.exists() == out_existed
    assert _snapshot(tmp_path) == before


def test_bom_is_accepted_by_run_and_validate(source, tmp_path):
    clinical = tmp_path / "clinical.csv"
    predictions = tmp_path / "predictions.csv"
    clinical.write_bytes(b"\xef\xbb\xbf" + source["clinical"].read_bytes())
    predictions.write_bytes(b"\xef\xbb\xbf" + source["predictions"].read_bytes())
    res = CliRunner().invoke(main, ["validate", SLUG, "-c", str(clinical), "-p", str(predictions)])
    assert res.exit_code == 0, res.output
    assert "448 rows and 1173 prediction rows valid" in res.output


def test_crlf_line_endings_are_accepted(source, tmp_path):
    clinical = tmp_path / "clinical.csv"
    clinical.write_bytes(source["clinical"].read_bytes().replace(b"\n", b"\r\n"))
    res = CliRunner().invoke(main, ["validate", SLUG, "-c", str(clinical)])
    assert res.exit_code == 0, res.output


# ------------------------------------------------------------------------------- plans


def _plan_edit_threshold(p, v):
    p["thresholds"][0]["value"] = v


PLAN_CASES = [
    pytest.param(
        lambda p: _plan_edit_threshold(p, 1.5),
        r"field 'thresholds\[0\]\.value': threshold must lie strictly between 0 and 1, got 1\.5",
        id="threshold-above-1",
    ),
    pytest.param(
        lambda p: _plan_edit_threshold(p, -0.2),
        r"field 'thresholds\[0\]\.value': threshold must lie strictly between 0 and 1",
        id="threshold-negative",
    ),
    pytest.param(
        lambda p: _plan_edit_threshold(p, 0),
        r"field 'thresholds\[0\]\.value': threshold must lie strictly between 0 and 1, got 0",
        id="threshold-zero",
    ),
    pytest.param(
        lambda p: p["subgroups"].append({"variable": "bmi", "status": "exploratory"}),
        r"field 'subgroups\[5\]\.variable': ovcf-chronicity dictionary has no variable \(found 'bmi'\)",
        id="subgroup-column-not-in-dictionary",
    ),
    pytest.param(
        lambda p: p["outcome"].update(variable="chronicty"),
        r"field 'outcome\.variable': ovcf-chronicity dictionary has no variable \(found 'chronicty'\)",
        id="outcome-column-not-in-dictionary",
    ),
    pytest.param(
        lambda p: p["outcome"].update(positive="Acute"),
        r"field 'outcome\.positive': not a level of chronicity \(acute, chronic\)",
        id="positive-class-not-a-level",
    ),
    pytest.param(
        lambda p: p["sets"].update(external_sites=["EXTERNAL"]),
        r"field 'sets\.external_sites': not a level of site",
        id="external-site-not-a-level",
    ),
    pytest.param(
        lambda p: p["endpoints"][0].update(analyses=["acu"]),
        r"field 'endpoints\[0\]\.analyses\[0\]': unknown analysis step; did you mean 'auc'\?",
        id="misspelt-analysis",
    ),
    pytest.param(
        lambda p: p.update(alhpa=0.05),
        r"field 'alhpa': unknown key",
        id="unknown-top-level-key",
    ),
    pytest.param(
        lambda p: p["models"][1].update(role="primary"),
        r"exactly one model must have role primary, found 2",
        id="two-primary-models",
    ),
]


@pytest.mark.parametrize(("edit", "message"), PLAN_CASES)
def test_plan_errors_name_the_yaml_path(tmp_path, edit, message):
    """Through load_plan(path): the CLI reads only the bundled plan, so a bad plan is tested here."""
    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    before = path.read_bytes()
    with pytest.raises(InputValidationError) as info:
        load_plan(path)
    assert re.search(message, str(info.value)), str(info.value)
    assert str(path) in str(info.value)
    assert path.read_bytes() == before
