"""Reading hostile table files: row numbers, messages that help, no violation hidden.

* Every reported row is the file line where the record starts (header = line 1),
  whatever blank lines or quoted multi-line cells precede it; the typed frame's
  index is ``line - 2`` so that callers' ``index + 2`` names the same line
  (checked through the CLI for eligibility and cross-table rules too). For
  parquet the row is the position + 2.
* Cells of only whitespace, thousands separators, upper-case headers and
  binary files (Excel workbooks, gzip, parquet named .csv) get a message that
  says what is wrong and what to do.
* A long list of violations is grouped so that every (file, column, rule) is
  named; :meth:`InputValidationError.full_message` lists every violation.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main
from studyval.dictionary import load_dictionary, read_table, validate_frame
from studyval.errors import InputValidationError, Violation
from studyval.synthetic.ovcf_chronicity import generate

CLIN = "ovcf-chronicity"


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> dict[str, Path]:
    return generate(seed=7).write(tmp_path_factory.mktemp("pristine"))


@pytest.fixture(scope="module")
def clin_frame(source) -> pd.DataFrame:
    return pd.read_csv(source["clinical"], dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def pred_frame(source) -> pd.DataFrame:
    return pd.read_csv(source["predictions"], dtype=str, keep_default_na=False)


def _lines(frame: pd.DataFrame) -> list[str]:
    """The CSV text of ``frame``, one element per record (no cell spans lines)."""
    return frame.to_csv(index=False, lineterminator="\n").splitlines()


def _write(path: Path, lines: list[str], newline: str = "\n") -> Path:
    path.write_text(newline.join(lines) + newline, encoding="utf-8")
    return path


def _violations(path: Path, dictionary: str = CLIN) -> tuple[Violation, ...]:
    with pytest.raises(InputValidationError) as info:
        read_table(path, dictionary)
    return info.value.violations


# ----------------------------------------------------------------------------- row numbers

# Each layout: (lines inserted before record k as {k: [lines]}, line ending). The bad cell is
# in record 5 (0-based); its file line is 1 (header) + 5 + 1 + the lines inserted before it.
ROW_LAYOUTS = [
    pytest.param({}, "\n", 7, id="no-blank-line"),
    pytest.param({3: [""]}, "\n", 8, id="one-blank-line-before"),
    pytest.param({1: [""], 3: ["", ""]}, "\n", 10, id="three-blank-lines-before"),
    pytest.param({3: [""]}, "\r\n", 8, id="crlf-blank-line"),
    pytest.param({7: [""]}, "\n", 7, id="blank-line-after-only"),
    pytest.param({0: [""]}, "\n", 8, id="blank-line-right-after-header"),
]


@pytest.mark.parametrize(("inserted", "newline", "line"), ROW_LAYOUTS)
def test_reported_row_is_the_file_line_despite_blank_lines(
    clin_frame, tmp_path, inserted, newline, line
):
    frame = clin_frame.copy()
    frame.loc[5, "age"] = "abc"
    records = _lines(frame)
    out = [records[0]]
    for k, rec in enumerate(records[1:]):
        out += inserted.get(k, [])
        out.append(rec)
    path = _write(tmp_path / "clinical.csv", out, newline)
    (v,) = _violations(path)
    assert (v.column, v.row, v.value) == ("age", line, "abc")
    assert out[line - 1].split(",")[0] == frame.loc[5, "case_id"], "the line holds the record"


def test_multi_line_quoted_cell_counts_its_lines(clin_frame, tmp_path):
    frame = clin_frame.copy()
    frame.loc[1, "patient_name"] = "Zhang^Wei\nsecond line\nthird line"
    frame.loc[4, "age"] = "abc"
    frame.loc[1, "sex"] = "X"
    text = frame.to_csv(index=False, lineterminator="\n")
    path = tmp_path / "clinical.csv"
    path.write_text(text, encoding="utf-8")
    found = {(v.column, v.row) for v in _violations(path)}
    # record 1 starts on line 3 (and spans 3-5); record 4 starts on line 6 + 2 = 8
    assert found == {("sex", 3), ("age", 8)}
    assert text.splitlines()[7].startswith(frame.loc[4, "case_id"] + ",")


def test_blank_lines_before_the_header_move_the_header_line(clin_frame, tmp_path):
    frame = clin_frame.copy()
    frame.loc[0, "age"] = "abc"
    frame = frame.rename(columns={"sex": "Sex"})
    path = _write(tmp_path / "clinical.csv", ["", "", *_lines(frame)])
    found = {(v.column, v.row, v.rule.split(";")[0]) for v in _violations(path)}
    assert ("Sex", 3, "column is not in the ovcf-chronicity dictionary") in found
    assert ("age", 4, "must be an integer") in found


def test_typed_index_is_file_line_minus_two(clin_frame, tmp_path):
    records = _lines(clin_frame)
    plain = read_table(_write(tmp_path / "plain.csv", records), CLIN)
    assert isinstance(plain.index, pd.RangeIndex)
    assert list(plain.index) == list(range(len(clin_frame)))
    gapped_lines = [records[0], records[1], "", "", records[2], *records[3:]]
    gapped = read_table(_write(tmp_path / "gapped.csv", gapped_lines), CLIN)
    assert gapped.index.is_unique and gapped.index.is_monotonic_increasing
    assert pd.api.types.is_integer_dtype(gapped.index.dtype)
    assert list(gapped.index[:3]) == [0, 3, 4]
    for idx in gapped.index[:5]:
        assert gapped_lines[idx + 1].startswith(gapped.at[idx, "case_id"] + ",")
    pd.testing.assert_frame_equal(gapped.reset_index(drop=True), plain, check_index_type=False)


def test_validate_frame_reports_rows_from_the_index():
    d = load_dictionary(CLIN)
    raw = pd.DataFrame({"age": ["70", "abc", "80"]}, index=pd.Index([0, 5, 9]), dtype=object)
    typed, problems = validate_frame(raw, d, label="t.csv")
    ages = [p for p in problems if p.column == "age"]
    assert [(p.row, p.value) for p in ages] == [(7, "abc")]
    assert list(typed.index) == [0, 5, 9]


def test_validate_frame_refuses_a_non_integer_index():
    d = load_dictionary(CLIN)
    raw = pd.DataFrame({"age": ["70"]}, index=["a"], dtype=object)
    with pytest.raises(TypeError, match=r"needs a frame with an integer index"):
        validate_frame(raw, d, label="t.csv")


def test_parquet_row_is_position_plus_two(clin_frame, tmp_path):
    frame = clin_frame.copy()
    frame.loc[6, "age"] = "abc"
    path = tmp_path / "clinical.parquet"
    frame.replace({"": None}).to_parquet(path)
    (v,) = _violations(path)
    assert (v.column, v.row) == ("age", 8)


def _run_cli(clinical: Path, predictions: Path, out: Path):
    return CliRunner().invoke(
        main,
        [
            "run",
            "ovcf-chronicity",
            "-c",
            str(clinical),
            "-p",
            str(predictions),
            "-o",
            str(out),
            "--no-render",
            "-q",
        ],
    )


def test_cli_eligibility_violation_after_a_blank_line_names_the_file_line(
    source, clin_frame, tmp_path
):
    frame = clin_frame.copy()
    i = int(frame.index[frame["exclusion_reason"] == "none"][10])
    ct = pd.Timestamp(frame.loc[i, "ct_date"])
    frame.loc[i, "mri_date"] = (ct + pd.Timedelta(days=20)).strftime("%Y-%m-%d")
    records = _lines(frame)
    lines = [*records[:3], "", *records[3:]]  # a blank line 4, before record i
    assert i >= 2
    path = _write(tmp_path / "clinical.csv", lines)
    res = _run_cli(path, source["predictions"], tmp_path / "out")
    assert res.exit_code == 1, res.output
    line = i + 3  # header + i records + the blank line, 1-based
    assert lines[line - 1].startswith(frame.loc[i, "case_id"] + ",")
    assert f"clinical.csv, column 'mri_date', row {line}: included case has CT and MRI 20 days" in (
        res.output
    )
    assert not (tmp_path / "out").exists()


def test_cli_cross_table_violation_after_blank_lines_names_the_file_line(
    source, pred_frame, tmp_path
):
    frame = pred_frame.copy()
    i = 12
    frame.loc[i, "patient_id"] = "PX999"
    records = _lines(frame)
    lines = [records[0], "", *records[1:5], "", "", *records[5:]]
    path = _write(tmp_path / "predictions.csv", lines)
    res = _run_cli(source["clinical"], path, tmp_path / "out")
    assert res.exit_code == 1, res.output
    line = i + 2 + 3
    assert lines[line - 1].startswith(frame.loc[i, "case_id"] + ",")
    assert f"predictions.csv, column 'patient_id', row {line}: clinical.csv has" in res.output
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- cell messages


@pytest.mark.parametrize(
    ("column", "cell", "rule"),
    [
        pytest.param("dxa_t_score", "  ", "the cell holds only whitespace", id="two-spaces"),
        pytest.param("dxa_t_score", " ", "the cell holds only whitespace", id="one-space"),
        pytest.param("dxa_t_score", "\t", "the cell holds only whitespace", id="tab"),
        pytest.param("age", "  ", "the cell holds only whitespace", id="spaces-required"),
        pytest.param("dxa_t_score", " NA", "leading or trailing whitespace", id="padded-NA"),
    ],
)
def test_a_cell_of_only_whitespace_is_an_error_not_missing(
    clin_frame, tmp_path, column, cell, rule
):
    frame = clin_frame.copy()
    frame.loc[2, column] = cell
    path = _write(tmp_path / "clinical.csv", _lines(frame))
    (v,) = _violations(path)
    assert (v.column, v.row, v.value) == (column, 4, cell)
    assert v.rule.startswith("leading or trailing whitespace is not allowed")
    assert rule in v.rule


@pytest.mark.parametrize("cell", [pytest.param("", id="empty"), pytest.param("NA", id="NA")])
def test_empty_and_NA_remain_missing(clin_frame, tmp_path, cell):
    frame = clin_frame.copy()
    frame.loc[2, "dxa_t_score"] = cell
    typed = read_table(_write(tmp_path / "clinical.csv", _lines(frame)), CLIN)
    assert pd.isna(typed.loc[2, "dxa_t_score"])


@pytest.mark.parametrize(
    ("column", "cell", "rule"),
    [
        pytest.param(
            "dxa_t_score",
            "1,317.9",
            r"must be a number \(remove the thousands separator: 1317\.9\)",
            id="thousands-comma-and-point",
        ),
        pytest.param(
            "dxa_t_score",
            "-1,317.9",
            r"must be a number \(remove the thousands separator: -1317\.9\)",
            id="negative-thousands",
        ),
        pytest.param(
            "dxa_t_score",
            "1.317,9",
            r"must be a number \(remove the thousands separator and use a decimal point: "
            r"1317\.9\)",
            id="thousands-point-decimal-comma",
        ),
        pytest.param(
            "dxa_t_score",
            "1,317",
            r"must be a number \(remove the thousands separator if it is one: 1317; "
            r"a decimal comma must be a decimal point\)",
            id="ambiguous-comma",
        ),
        pytest.param(
            "dxa_t_score",
            "-2,5",
            r"must be a number \(use a decimal point, not a comma\)",
            id="decimal-comma",
        ),
        pytest.param(
            "dxa_t_score",
            "0,317",
            r"must be a number \(use a decimal point, not a comma\)",
            id="leading-zero-is-a-decimal-comma",
        ),
        pytest.param(
            "age",
            "1,070",
            r"must be an integer \(remove the thousands separator: 1070\)",
            id="integer-thousands",
        ),
        pytest.param("age", "70,5", r"^must be an integer$", id="integer-decimal-comma"),
    ],
)
def test_commas_in_numbers_are_explained(clin_frame, tmp_path, column, cell, rule):
    frame = clin_frame.copy()
    frame.loc[3, column] = cell
    path = _write(tmp_path / "clinical.csv", _lines(frame))
    (v,) = _violations(path)
    assert (v.column, v.row, v.value) == (column, 5, cell)
    assert re.search(rule, v.rule), v.rule


@pytest.mark.parametrize(
    ("rename", "message"),
    [
        pytest.param(
            {"case_id": "CASE_ID"},
            r"column 'CASE_ID', row 1: column is not in the ovcf-chronicity dictionary; "
            r"did you mean 'case_id'\?",
            id="upper-case-unknown",
        ),
        pytest.param(
            {"case_id": "CASE_ID"},
            r"column 'case_id': required column is missing; found 'CASE_ID' instead "
            r"\(column names are case-sensitive\)",
            id="upper-case-missing",
        ),
        pytest.param(
            {"chronicity": "Chronicity"},
            r"did you mean 'chronicity'\?",
            id="capitalised",
        ),
        pytest.param(
            {"chronicity": "CHRONICTY"},
            r"column 'CHRONICTY', row 1: .*did you mean 'chronicity'\?.*\n.*"
            r"column 'chronicity': required column is missing; found 'CHRONICTY' instead "
            r"\(misspelt\?\)",
            id="upper-case-and-misspelt",
        ),
    ],
)
def test_header_suggestions_ignore_letter_case(clin_frame, tmp_path, rename, message):
    path = _write(tmp_path / "clinical.csv", _lines(clin_frame.rename(columns=rename)))
    with pytest.raises(InputValidationError, match=message):
        read_table(path, CLIN)


# ----------------------------------------------------------------------------- whole files


def _xlsx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", "<worksheet/>")
    return buf.getvalue()


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        pytest.param(
            "clinical.csv",
            _xlsx_bytes(),
            r"clinical\.csv: is an Excel workbook \(\.xlsx\), not a CSV text file: export it "
            r"as CSV UTF-8",
            id="xlsx-named-csv",
        ),
        pytest.param(
            "clinical.csv",
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504,
            r"clinical\.csv: is a legacy Excel workbook \(\.xls, OLE2 compound file\), not a "
            r"CSV text file: export it as CSV UTF-8",
            id="xls-named-csv",
        ),
        pytest.param(
            "clinical.csv",
            gzip.compress(b"case_id,age\nA,70\n"),
            r"clinical\.csv: is gzip-compressed, not a CSV text file: decompress it",
            id="gzip-named-csv",
        ),
        pytest.param(
            "clinical.csv",
            _parquet_bytes(pd.DataFrame({"a": ["1"]})),
            r"clinical\.csv: is a parquet file, not a CSV text file: give it the suffix "
            r"\.parquet",
            id="parquet-named-csv",
        ),
        pytest.param(
            "clinical.csv",
            b"PK\x03\x04 not really a zip",
            r"clinical\.csv: is a zip archive \(an Excel \.xlsx workbook is one\), not a CSV",
            id="broken-zip-named-csv",
        ),
        pytest.param(
            "clinical.xlsx",
            _xlsx_bytes(),
            r"clinical\.xlsx: unsupported file type '\.xlsx'; use \.csv or \.parquet \(an "
            r"Excel workbook \(\.xlsx\): export it as CSV UTF-8",
            id="xlsx-suffix",
        ),
        pytest.param(
            "clinical.csv.gz",
            gzip.compress(b"case_id,age\nA,70\n"),
            r"unsupported file type '\.gz'; use \.csv or \.parquet \(gzip-compressed: "
            r"decompress it",
            id="gz-suffix",
        ),
        pytest.param(
            "clinical.parquet",
            _xlsx_bytes(),
            r"clinical\.parquet: is an Excel workbook \(\.xlsx\), not a parquet file",
            id="xlsx-named-parquet",
        ),
        pytest.param(
            "clinical.csv",
            "case_id,age\nA,70\n".encode("utf-16"),
            r"is not valid UTF-8 \(byte 0xff at offset 0\): it is UTF-16 text",
            id="utf16",
        ),
    ],
)
def test_binary_files_are_named_by_what_they_are(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputValidationError, match=message) as info:
        read_table(path, CLIN)
    assert len(info.value.violations) == 1
    assert path.read_bytes() == content


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        pytest.param(
            lambda lines: [*lines[:4], lines[4] + ",surplus", *lines[5:]],
            r"clinical\.csv: is not a well-formed CSV: line 5 has (\d+) fields where the header "
            r"has \d+",
            id="one-long-line",
        ),
        pytest.param(
            lambda lines: [*lines[:3], lines[3].rsplit(",", 1)[0], *lines[4:]],
            r"clinical\.csv: is not a well-formed CSV: line 4 has \d+ fields where the header",
            id="short-line-is-not-padded",
        ),
        pytest.param(
            lambda lines: [lines[0], *(ln + ",x" for ln in lines[1:30])],
            r"is not a well-formed CSV: 29 lines \(2, 3, 4, .*, 21 and 9 more\) have \d+ fields",
            id="many-long-lines",
        ),
        pytest.param(
            lambda lines: [*lines[:5], "   ", *lines[5:]],
            r"is not a well-formed CSV: line 6 holds only whitespace",
            id="whitespace-only-line",
        ),
        pytest.param(
            lambda lines: [*lines[:6], '"' + lines[6], *lines[7:]],
            r"is not a well-formed CSV: the record starting on line 7 opens a quoted cell",
            id="unclosed-quote",
        ),
        pytest.param(
            lambda lines: [*lines[:2], lines[2].replace(",", ',"x"y,', 1), *lines[3:]],
            r"is not a well-formed CSV: line 3: ',' expected after '\"'",
            id="text-after-closing-quote",
        ),
        pytest.param(
            lambda lines: [lines[0] + ",", *(ln + "," for ln in lines[1:])],
            r"clinical\.csv, row 1: header cell \d+ \(of \d+\) has no name",
            id="unnamed-header-cell",
        ),
    ],
)
def test_malformed_csv_names_the_lines(clin_frame, tmp_path, edit, message):
    path = _write(tmp_path / "clinical.csv", edit(_lines(clin_frame)))
    with pytest.raises(InputValidationError, match=message):
        read_table(path, CLIN)


# ----------------------------------------------------------------------------- no violation hidden


def _many(n: int) -> list[Violation]:
    return [Violation("c.csv", "age", r, "must be an integer", "abc") for r in range(2, n + 2)]


def test_few_violations_are_listed_one_per_line():
    found = [*_many(19), Violation("c.csv", "sex", 40, "bad level", "X")]
    exc = InputValidationError(found)
    assert str(exc) == exc.full_message()
    assert str(exc).startswith("20 violations found:\n")
    assert len(str(exc).splitlines()) == 21


def test_many_violations_are_grouped_and_every_column_and_rule_named():
    found = [
        *_many(60),
        Violation("c.csv", "age", 90, "must be >= 18 years", "7"),
        Violation("c.csv", "sex", 70, "bad level", "X"),
        Violation("p.csv", None, None, "file-level problem"),
        Violation("p.csv", None, None, "file-level problem"),
    ]
    exc = InputValidationError(found)
    text = str(exc)
    lines = text.splitlines()
    assert lines[0] == (
        "64 violations found, grouped by file, column and rule into 4 groups "
        "(--all-errors lists every violation):"
    )
    assert lines[1:] == [
        "  - c.csv, column 'age': must be an integer "
        "(60 rows: 2, 3, 4, 5, 6 and 55 more; first found 'abc')",
        "  - c.csv, column 'age', row 90: must be >= 18 years (found '7')",
        "  - c.csv, column 'sex', row 70: bad level (found 'X')",
        "  - p.csv: file-level problem (2 times)",
    ]
    assert exc.violations == tuple(found)
    full = exc.full_message().splitlines()
    assert full[0] == "64 violations found:"
    assert full[1:] == [f"  - {v}" for v in found]


def test_group_threshold_is_a_parameter():
    exc = InputValidationError(_many(5), group_above=3)
    assert "grouped" in str(exc)
    assert "(5 rows: 2, 3, 4, 5, 6; first found 'abc')" in str(exc)


def test_a_second_bad_column_is_named_after_many_bad_rows(clin_frame, tmp_path):
    frame = clin_frame.copy()
    frame["age"] = "abc"
    frame.loc[len(frame) - 1, "sex"] = "X"
    path = _write(tmp_path / "clinical.csv", _lines(frame))
    with pytest.raises(InputValidationError) as info:
        read_table(path, CLIN)
    text = str(info.value)
    n = len(frame)
    assert f"column 'age': must be an integer ({n} rows: 2, 3, 4, 5, 6 and {n - 5} more" in text
    assert f"column 'sex', row {n + 1}: not an allowed level" in text
    assert len(info.value.violations) == n + 1
    assert len(info.value.full_message().splitlines()) == n + 2


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(
            b",,,\n", r"clinical\.csv: has no header: no line names a column", id="commas"
        ),
        pytest.param(b'""\n', r"clinical\.csv: has no header: no line names a column", id="quotes"),
        pytest.param(
            b"  \ncase_id,age\nA,70\n",
            r"clinical\.csv: is not a well-formed CSV: line 1 holds only whitespace",
            id="spaces-before-header",
        ),
    ],
)
def test_a_file_without_a_header_is_named(tmp_path, content, message):
    path = tmp_path / "clinical.csv"
    path.write_bytes(content)
    with pytest.raises(InputValidationError, match=message):
        read_table(path, CLIN)


# ----------------------------------------------------------------------------- hostile inputs
# Cases from a hostile tester's report (their ids name the report's items). Each runs the CLI as a
# user does and checks: exit code 1, no traceback, nothing written at --out, the expected lines
# (file, column, row and rule), and that no forbidden text (raw control characters, a direct
# identifier's value, the symptoms of the bug) reaches the output.


def _set(frame: pd.DataFrame, row: int, column: str, cell: str) -> pd.DataFrame:
    out = frame.copy()
    out.loc[row, column] = cell
    return out


def _clinical_csv(frame: pd.DataFrame, d: Path, name: str = "clinical.csv") -> Path:
    return _write(d / name, _lines(frame))


def _clinical_parquet(frame: pd.DataFrame, d: Path) -> Path:
    path = d / "clinical.parquet"
    frame.to_parquet(path)
    return path


def _as_parquet_frame(clin: pd.DataFrame) -> pd.DataFrame:
    return clin.replace({"": None})


def _tz_dates(clin, pred, d):
    frame = _as_parquet_frame(clin)
    # dates recorded as local midnight in Chongqing (+08), stored in UTC: the day before in UTC
    local = pd.to_datetime(frame["mri_date"]).dt.tz_localize("Asia/Shanghai")
    frame["mri_date"] = local.dt.tz_convert("UTC")
    return _clinical_parquet(frame, d), None


def _time_of_day(clin, pred, d):
    frame = _as_parquet_frame(clin)
    frame["mri_date"] = pd.to_datetime(frame["mri_date"])
    frame.loc[3, "mri_date"] = pd.Timestamp("2023-12-24 08:30")
    return _clinical_parquet(frame, d), None


def _duplicate_parquet_column(clin, pred, d):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(_as_parquet_frame(clin), preserve_index=False)
    twice = pa.Table.from_arrays(
        [*table.columns, table.column("age")], names=[*table.column_names, "age"]
    )
    path = d / "clinical.parquet"
    pq.write_table(twice, path)
    return path, None


def _fifo(clin, pred, d):
    path = d / "clinical.csv"
    os.mkfifo(path)  # nothing writes to it: a reader that opened it would wait for ever
    return path, None


def _concatenated(clin, pred, d, *, bom: bool, header: bool = True):
    text = clin.to_csv(index=False, lineterminator="\n")
    second = text if header else text.split("\n", 1)[1]
    path = d / "clinical.csv"
    path.write_bytes(("\ufeff" + text + ("\ufeff" if bom else "") + second).encode("utf-8"))
    return path, None


def _wide(clin, pred, d):
    lines = _lines(clin)
    extra = 10_000
    out = [lines[0] + "".join(f",extra_{k}" for k in range(extra))]
    out += [ln + "," * extra for ln in lines[1:]]
    return _write(d / "clinical.csv", out), None


def _pred_cell(row: int, column: str, cell: str):
    def make(clin, pred, d):
        return None, _write(d / "predictions.csv", _lines(_set(pred, row, column, cell)))

    return make


def _clin_cell(row: int, column: str, cell: str, name: str = "clinical.csv"):
    def make(clin, pred, d):
        return _clinical_csv(_set(clin, row, column, cell), d, name), None

    return make


def _clin_rename(old: str, new: str):
    def make(clin, pred, d):
        return _clinical_csv(clin.rename(columns={old: new}), d), None

    return make


HOSTILE = [
    pytest.param(
        _clin_cell(3, "age", "1" * 5000),
        [
            r"^studyval: error: 1 violation found:\n  - clinical\.csv, column 'age', row 5: must "
            r"be <= 110 years \(the value has 5,000 digits\) \(found '1{37}\.\.\.'\)$"
        ],
        ["Exceeds the limit"],
        id="C13-integer-of-5000-digits",
    ),
    pytest.param(
        _clin_cell(3, "age", "0" * 5000 + "1000"),
        [r"clinical\.csv, column 'age', row 5: must be <= 110 years \(found '0{37}\.\.\.'\)"],
        ["digits"],
        id="C13-leading-zeros-are-not-digits-too-many",
    ),
    pytest.param(
        _pred_cell(3, "score", "9" * 5000),
        [
            r"predictions\.csv, column 'score', row 5: must be <= 1 \(the value is too large "
            r"for a 64-bit floating-point number\)"
        ],
        [],
        id="C13-number-of-5000-digits",
    ),
    pytest.param(
        _pred_cell(3, "score", "０.４３１６９１"),
        [
            r"predictions\.csv, column 'score', row 5: must be a number: contains the full-width "
            r"digit '０' \(U\+FF10 FULLWIDTH DIGIT ZERO\) at position 1: type ASCII digits "
            r"\(0\.431691\) \(found '０\.４３１６９１'\)"
        ],
        [],
        id="C11-full-width-score",
    ),
    pytest.param(
        _clin_cell(3, "age", "٧٦"),
        [
            r"clinical\.csv, column 'age', row 5: must be an integer: contains the digit '٧' "
            r"\(U\+0667 ARABIC-INDIC DIGIT SEVEN\) at position 1: type ASCII digits \(76\)"
        ],
        [],
        id="C12-arabic-indic-age",
    ),
    pytest.param(
        _clin_cell(3, "ct_date", "２０２３-１２-１２"),
        [
            r"clinical\.csv, column 'ct_date', row 5: must be an ISO date YYYY-MM-DD: contains "
            r"the full-width digit '２' \(U\+FF12 FULLWIDTH DIGIT TWO\) at position 1: type ASCII "
            r"digits \(2023-12-12\)"
        ],
        ["on or before"],
        id="C11-full-width-date",
    ),
    pytest.param(
        lambda clin, pred, d: _concatenated(clin, pred, d, bom=False),
        [
            r"^studyval: error: 1 violation found:\n  - clinical\.csv: line 466 repeats the "
            r"header: two exports concatenated\? Keep one header line \(line 1\)"
        ],
        ["duplicate value"],
        id="C3-two-exports-concatenated",
    ),
    pytest.param(
        lambda clin, pred, d: _concatenated(clin, pred, d, bom=True),
        [r"^studyval: error: 1 violation found:\n  - clinical\.csv: line 466 repeats the header"],
        ["ufeff"],
        id="C3-two-exports-concatenated-with-bom",
    ),
    pytest.param(
        lambda clin, pred, d: _concatenated(clin, pred, d, bom=False, header=False),
        [
            r"^studyval: error: 464 violations found, grouped by file, column and rule into 1 "
            r"group \(--all-errors lists every violation\):\n"
            r"  - clinical\.csv, column 'case_id': duplicate value; first seen in row N "
            r"\(464 rows: 466, 467, 468, 469, 470 and 459 more\)\n"
            r"    e\.g\. clinical\.csv, column 'case_id', row 466: duplicate value; first seen in "
            r"row 2 \(found 'P0001-V1'\)$"
        ],
        [],
        id="C3-records-exported-twice-group-as-one-rule",
    ),
    pytest.param(
        _wide,
        [
            r"^studyval: error: 10,000 violations found, grouped by file, column and rule into 1 "
            r"group \(--all-errors lists every violation\):\n"
            r"  - clinical\.csv, row 1: 10,000 columns are not in the ovcf-chronicity dictionary: "
            r"'extra_0', 'extra_1', .*'extra_9' \.\.\. \(first 10 named; --all-errors lists all\)$"
        ],
        ["extra_10"],
        id="C6-ten-thousand-undeclared-columns",
    ),
    pytest.param(
        _clin_rename("sex", "\x1b[2Jsex"),
        [
            r"clinical\.csv, column '\\x1b\[2Jsex', row 1: column is not in the ovcf-chronicity "
            r"dictionary; did you mean 'sex'\?",
            r"column 'sex': required column is missing; found '\\x1b\[2Jsex' instead",
        ],
        ["\x1b"],
        id="C18-ansi-escape-in-header",
    ),
    pytest.param(
        _clin_rename("sex", "s\x00ex"),
        [r"clinical\.csv, column 's\\x00ex', row 1: column is not in the ovcf-chronicity"],
        ["\x00"],
        id="C28-nul-in-header",
    ),
    pytest.param(
        _clin_cell(3, "sex", "\x1b[31mM", name="clin\x1b[2J.csv"),
        [
            r"clin\\x1b\[2J\.csv, column 'sex', row 5: not an allowed level \(F, M\).*\(found "
            r"'\\x1b\[31mM'\)"
        ],
        ["\x1b"],
        id="C18-ansi-escape-in-file-name-and-cell",
    ),
    pytest.param(
        _tz_dates,
        [
            r"^studyval: error: 1 violation found:\n  - clinical\.parquet, column 'mri_date': "
            r"holds timezone-aware timestamps \(UTC\): store calendar dates \(YYYY-MM-DD\) as the "
            r"hospital records them"
        ],
        [],
        id="P2-timezone-aware-dates",
    ),
    pytest.param(
        _time_of_day,
        [
            r"clinical\.parquet, column 'mri_date', row 5: must be an ISO date YYYY-MM-DD \(a "
            r"date, without a time of day\) \(found '2023-12-24 08:30:00'\)"
        ],
        [],
        id="P2-time-of-day-in-a-parquet-date",
    ),
    pytest.param(
        _clin_cell(3, "mri_date", "2023-12-24 08:30:00"),
        [
            r"clinical\.csv, column 'mri_date', row 5: must be an ISO date YYYY-MM-DD \(a "
            r"date, without a time of day\) \(found '2023-12-24 08:30:00'\)"
        ],
        [],
        id="P2-time-of-day-in-a-csv-date-same-message",
    ),
    pytest.param(
        _duplicate_parquet_column,
        [
            r"^studyval: error: 1 violation found:\n  - clinical\.parquet, column 'age': column "
            r"appears twice \(column names must be unique\)$"
        ],
        ["schema", "\n    "],
        id="P5-duplicate-parquet-column",
    ),
    pytest.param(
        lambda clin, pred, d: (_clinical_parquet(_as_parquet_frame(clin).iloc[:0], d), None),
        [
            r"^studyval: error: 1 violation found:\n  - clinical\.parquet: has a header but no data "
            r"rows$"
        ],
        [],
        id="P10-parquet-with-no-rows",
    ),
    pytest.param(
        _fifo,
        [
            r"^studyval: error: 1 violation found:\n  - clinical\.csv: is not a regular file "
            r"\(\S+clinical\.csv is a pipe\): the bundle records the input's SHA-256, which needs a "
            r"file it can read twice; save it to a file first"
        ],
        ["0 bytes"],
        id="A21-pipe",
    ),
    pytest.param(
        lambda clin, pred, d: (Path(os.devnull), None),
        [r"  - null: is not a regular file \(/dev/null is a character device\)"],
        ["0 bytes"],
        id="A21-character-device",
    ),
    pytest.param(
        _clin_cell(3, "date_of_birth", "1944-13-10"),
        [
            r"clinical\.csv, column 'date_of_birth', row 5: is not a valid calendar date \(value "
            r"not shown: the column is a direct identifier\)$"
        ],
        ["1944-13-10", "(found"],
        id="D1-date-of-birth-not-quoted",
    ),
    pytest.param(
        _clin_cell(3, "medical_record_number", " MRN84279105"),
        [
            r"clinical\.csv, column 'medical_record_number', row 5: leading or trailing "
            r"whitespace is not allowed \(value not shown: the column is a direct identifier\)$"
        ],
        ["MRN84279105", "(found"],
        id="D1-medical-record-number-not-quoted",
    ),
    pytest.param(
        _clin_cell(3, "date_of_birth", "１９４４-０４-１０"),
        [r"column 'date_of_birth', row 5: must be an ISO date YYYY-MM-DD \(value not shown"],
        ["１", "1944", "U+"],
        id="D1-no-character-of-a-direct-identifier-named",
    ),
    pytest.param(
        _clin_cell(3, "case_id", "\u0420" + "0002-V1"),
        [
            r"clinical\.csv, column 'case_id', row 5: must match the pattern "
            r"\^\[A-Za-z0-9\]\[A-Za-z0-9_\.-\]\*\$: contains 'Р' \(U\+0420 CYRILLIC CAPITAL "
            r"LETTER ER\) at position 1 \(found 'Р0002-V1'\)"
        ],
        [],
        id="D2-cyrillic-letter-in-case-id",
    ),
    pytest.param(
        _clin_cell(3, "case_id", "P0002\u200b-V1"),
        [
            r"contains '\\u200b' \(U\+200B ZERO WIDTH SPACE\) at position 6 \(found "
            r"'P0002\\u200b-V1'\)"
        ],
        ["\u200b"],
        id="D2-zero-width-space-in-case-id",
    ),
]


@pytest.mark.parametrize(("make", "expected", "forbidden"), HOSTILE)
def test_hostile_inputs_are_named_through_the_cli(
    source, clin_frame, pred_frame, tmp_path, make, expected, forbidden
):
    d = tmp_path / "in"
    d.mkdir()
    clinical, predictions = make(clin_frame, pred_frame, d)
    clinical = clinical or source["clinical"]
    predictions = predictions or source["predictions"]
    res = _run_cli(clinical, predictions, tmp_path / "out")
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output
    text = res.output.strip()
    for pattern in expected:
        assert re.search(pattern, text, flags=re.MULTILINE), text
    for bad in forbidden:
        assert bad not in text, text
    assert len(text.splitlines()) <= 8, text
    assert not (tmp_path / "out").exists()


def _undeclared(*names: str, file: str = "c.csv") -> list[Violation]:
    return [Violation(file, n, 1, "column is not in the ovcf-chronicity dictionary") for n in names]


GROUPING = [
    pytest.param(
        [
            Violation(
                "c.csv", "case_id", 100 + k, f"duplicate value; first seen in row {k + 2}", "X"
            )
            for k in range(30)
        ],
        [
            "30 violations found, grouped by file, column and rule into 1 group "
            "(--all-errors lists every violation):",
            "  - c.csv, column 'case_id': duplicate value; first seen in row N "
            "(30 rows: 100, 101, 102, 103, 104 and 25 more)",
            "    e.g. c.csv, column 'case_id', row 100: duplicate value; first seen in row 2 "
            "(found 'X')",
        ],
        id="C3-rules-naming-rows-are-one-group-with-an-example",
    ),
    pytest.param(
        [*_undeclared(*(f"x{k}" for k in range(25))), Violation("c.csv", "sex", 9, "bad", "X")],
        [
            "26 violations found, grouped by file, column and rule into 2 groups "
            "(--all-errors lists every violation):",
            "  - c.csv, row 1: 25 columns are not in the ovcf-chronicity dictionary: 'x0', 'x1', "
            "'x2', 'x3', 'x4', 'x5', 'x6', 'x7', 'x8', 'x9' ... (first 10 named; --all-errors "
            "lists all)",
            "  - c.csv, column 'sex', row 9: bad (found 'X')",
        ],
        id="C6-many-columns-one-rule-one-line",
    ),
    pytest.param(
        [
            *_undeclared("a", "b", "c"),
            Violation(
                "c.csv",
                "Sex",
                1,
                "column is not in the ovcf-chronicity dictionary; did you mean 'sex'?",
            ),
            *(Violation("c.csv", "age", r, "must be an integer", "x") for r in range(2, 22)),
        ],
        [
            "24 violations found, grouped by file, column and rule into 3 groups "
            "(--all-errors lists every violation):",
            "  - c.csv, row 1: 3 columns are not in the ovcf-chronicity dictionary: 'a', 'b', 'c'",
            "  - c.csv, column 'Sex', row 1: column is not in the ovcf-chronicity dictionary; did "
            "you mean 'sex'?",
            "  - c.csv, column 'age': must be an integer (20 rows: 2, 3, 4, 5, 6 and 15 more; "
            "first found 'x')",
        ],
        id="C6-every-distinct-rule-still-named",
    ),
    pytest.param(
        [*_undeclared("a", "b"), *(Violation("c.csv", "age", r, "bad", "x") for r in range(2, 22))],
        [
            "22 violations found, grouped by file, column and rule into 3 groups "
            "(--all-errors lists every violation):",
            "  - c.csv, column 'a', row 1: column is not in the ovcf-chronicity dictionary",
            "  - c.csv, column 'b', row 1: column is not in the ovcf-chronicity dictionary",
            "  - c.csv, column 'age': bad (20 rows: 2, 3, 4, 5, 6 and 15 more; first found 'x')",
        ],
        id="C6-two-columns-are-not-merged",
    ),
    pytest.param(
        [*_undeclared(*(f"\x1bc{k}" for k in range(21)), file="\x1b[2J.csv")],
        [
            "21 violations found, grouped by file, column and rule into 1 group "
            "(--all-errors lists every violation):",
            "  - \\x1b[2J.csv, row 1: 21 columns are not in the ovcf-chronicity dictionary: "
            + ", ".join(f"'\\x1bc{k}'" for k in range(10))
            + " ... (first 10 named; --all-errors lists all)",
        ],
        id="C18-merged-line-is-escaped",
    ),
]


@pytest.mark.parametrize(("found", "lines"), GROUPING)
def test_grouped_message(found, lines):
    exc = InputValidationError(found)
    assert str(exc).splitlines() == lines
    assert exc.full_message().splitlines()[1:] == [f"  - {v}" for v in found]


@pytest.mark.parametrize(
    ("violation", "text"),
    [
        pytest.param(
            Violation("c\x1b[2J.csv", "s\x00ex", 3, "bad \x07level", "\x1b[31mM"),
            "c\\x1b[2J.csv, column 's\\x00ex', row 3: bad \\x07level (found '\\x1b[31mM')",
            id="C18-C28-control-characters-everywhere",
        ),
        pytest.param(
            Violation("c.csv", "a\u202eb", None, "r"),
            "c.csv, column 'a\\u202eb': r",
            id="C18-bidi-override-in-column",
        ),
        pytest.param(
            Violation("c.csv", "Größe ０", 2, "r", "é"),
            "c.csv, column 'Größe ０', row 2: r (found 'é')",
            id="printable-non-ascii-kept",
        ),
    ],
)
def test_violation_text_escapes_non_printable_characters(violation, text):
    assert str(violation) == text
    assert str(violation).isprintable()


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(
            lambda rec: [*rec, rec[0].rsplit(",", 1)[0], *rec[1:3]],
            r"clinical\.csv: line 466 is a header line \(every cell names a column\): two exports "
            r"concatenated\?",
            id="C3-second-export-with-a-column-fewer",
        ),
        pytest.param(
            lambda rec: [*rec, rec[0], *rec[1:3], " " + rec[0], rec[3]],
            r"clinical\.csv: 2 lines \(466, 469\) repeat the header: two exports concatenated\?",
            id="C3-three-exports",
        ),
    ],
)
def test_a_repeated_header_is_named_first(clin_frame, tmp_path, lines, message):
    path = _write(tmp_path / "clinical.csv", lines(_lines(clin_frame)))
    (v,) = _violations(path)
    assert re.match(message, str(v)), str(v)


def test_parquet_dates_at_midnight_read_as_the_csv_dates(clin_frame, tmp_path):
    frame = clin_frame.replace({"": None})
    for col in ("ct_date", "mri_date", "date_of_birth"):
        frame[col] = pd.to_datetime(frame[col])
    frame["ct_date"] = frame["ct_date"].dt.date  # a parquet date32 column
    path = tmp_path / "clinical.parquet"
    frame.to_parquet(path)
    csv = read_table(_write(tmp_path / "clinical.csv", _lines(clin_frame)), CLIN)
    pd.testing.assert_frame_equal(read_table(path, CLIN), csv)
