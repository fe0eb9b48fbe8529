"""Data dictionaries: parsing, and validation of tables with every violation listed."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from studyval.dictionary import load_dictionary, read_table
from studyval.errors import InputValidationError, StudyvalError

CLIN = "ovcf-chronicity"


@pytest.fixture(scope="module")
def demo_csv(tmp_path_factory) -> dict[str, Path]:
    from studyval.synthetic.ovcf_chronicity import generate

    return generate(seed=7).write(tmp_path_factory.mktemp("demo"))


def _edit(src: Path, dst: Path, edit) -> Path:
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    edited = edit(frame)
    frame = frame if edited is None else edited
    frame.to_csv(dst, index=False, lineterminator="\n")
    return dst


@pytest.mark.parametrize("name", ["ovcf-chronicity", "predictions"])
def test_bundled_dictionaries_parse(name):
    d = load_dictionary(name)
    assert d.variables
    frame = d.to_frame()
    assert list(frame.columns) == [
        "variable",
        "type",
        "role",
        "unit",
        "allowed",
        "required",
        "description",
    ]
    assert frame["description"].str.len().min() > 0, "every variable is documented"


def test_every_clinical_variable_has_type_role_and_rule():
    d = load_dictionary(CLIN)
    roles = {v.role for v in d.variables}
    assert {"identifier", "cluster", "outcome", "site", "direct_identifier"} <= roles
    assert d["age"].unit == "years"
    assert d["chronicity"].levels == ("acute", "chronic")


def test_valid_demo_tables_read_with_types(demo_csv):
    clin = read_table(demo_csv["clinical"], CLIN)
    assert str(clin["age"].dtype) == "Int64"
    assert isinstance(clin["chronicity"].dtype, pd.CategoricalDtype)
    pred = read_table(demo_csv["predictions"], "predictions")
    assert pred["score"].dropna().between(0, 1).all()


def test_input_file_is_never_modified(demo_csv):
    before = demo_csv["clinical"].read_bytes()
    read_table(demo_csv["clinical"], CLIN)
    assert demo_csv["clinical"].read_bytes() == before


BAD_CASES = [
    pytest.param(
        lambda f: f.rename(columns={"chronicity": "chronicty"}),
        r"column 'chronicity': required column is missing; found 'chronicty' instead",
        id="misspelt-column",
    ),
    pytest.param(
        lambda f: f.drop(columns=["age"]),
        r"column 'age': required column is missing",
        id="missing-column",
    ),
    pytest.param(
        lambda f: f.__setitem__("chronicity", f["chronicity"].replace({"acute": "Acute"})),
        r"column 'chronicity', row \d+: not an allowed level \(acute, chronic\); did you mean 'acute'\?",
        id="label-outside-levels",
    ),
    pytest.param(
        lambda f: f.__setitem__("age", "abc"),
        r"column 'age', row 2: must be an integer \(found 'abc'\)",
        id="age-not-integer",
    ),
    pytest.param(
        lambda f: f.__setitem__("age", "130"),
        r"column 'age', row 2: must be <= 110 years",
        id="age-out-of-range",
    ),
    pytest.param(
        lambda f: f.__setitem__("dxa_t_score", "-2,5"),
        r"must be a number \(use a decimal point, not a comma\)",
        id="decimal-comma",
    ),
    pytest.param(
        lambda f: f.__setitem__("ct_date", "12/03/2024"),
        r"column 'ct_date', row 2: must be an ISO date YYYY-MM-DD",
        id="date-format",
    ),
    pytest.param(
        lambda f: f.__setitem__("ct_date", "2024-02-30"),
        r"is not a valid calendar date",
        id="impossible-date",
    ),
    pytest.param(
        lambda f: f.loc.__setitem__((1, "case_id"), f.loc[0, "case_id"]),
        r"column 'case_id', row 3: duplicate value; first seen in row 2",
        id="duplicate-case-id",
    ),
    pytest.param(
        lambda f: f.loc.__setitem__((1, "case_id"), f.loc[0, "case_id"].lower()),
        r"column 'case_id', row 3: differs from another id only in letter case",
        id="case-only-duplicate-id",
    ),
    pytest.param(
        lambda f: f.loc.__setitem__((0, "case_id"), f.loc[0, "case_id"] + " "),
        r"column 'case_id', row 2: leading or trailing whitespace",
        id="whitespace-padded-id",
    ),
    pytest.param(
        lambda f: f.__setitem__("sex", ""),
        r"column 'sex', row 2: value is required",
        id="required-value-missing",
    ),
    pytest.param(
        lambda f: f.__setitem__("extra_col", "x"),
        r"column 'extra_col', row 1: column is not in the ovcf-chronicity dictionary",
        id="unknown-column",
    ),
    pytest.param(
        lambda f: f.__setitem__("index_vertebra", "maybe"),
        r"must be true or false",
        id="bad-boolean",
    ),
]


@pytest.mark.parametrize(("edit", "message"), BAD_CASES)
def test_bad_clinical_input_names_file_column_row_and_rule(demo_csv, tmp_path, edit, message):
    bad = _edit(demo_csv["clinical"], tmp_path / "clinical.csv", edit)
    with pytest.raises(InputValidationError, match=message) as info:
        read_table(bad, CLIN)
    assert str(info.value).startswith(("1 violation", f"{len(info.value.violations)} violations"))
    assert all(v.file == "clinical.csv" for v in info.value.violations)


def test_all_violations_listed_not_only_the_first(demo_csv, tmp_path):
    def edit(f):
        f.loc[0, "age"] = "abc"
        f.loc[3, "sex"] = "X"
        f.loc[5, "chronicity"] = "subacute"

    bad = _edit(demo_csv["clinical"], tmp_path / "clinical.csv", edit)
    with pytest.raises(InputValidationError) as info:
        read_table(bad, CLIN)
    found = {(v.column, v.row) for v in info.value.violations}
    assert {("age", 2), ("sex", 5), ("chronicity", 7)} <= found


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", r"file is empty \(0 bytes\)", id="empty-file"),
        pytest.param(b"   \n\n", r"file has no content", id="blank-file"),
        pytest.param(
            b"case_id;patient_id\nA;B\n", r"looks semicolon-delimited", id="wrong-delimiter"
        ),
        pytest.param(b"case_id,patient_id\n", r"has a header but no data rows", id="header-only"),
        pytest.param(
            b"case_id,patient_id\n\xff\xfeA,B\n", r"is not valid UTF-8 \(byte 0xff", id="non-utf8"
        ),
    ],
)
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "clinical.csv"
    path.write_bytes(content)
    with pytest.raises(InputValidationError, match=message):
        read_table(path, CLIN)


def test_bom_is_accepted(demo_csv, tmp_path):
    path = tmp_path / "clinical.csv"
    path.write_bytes(b"\xef\xbb\xbf" + demo_csv["clinical"].read_bytes())
    assert len(read_table(path, CLIN)) > 0


def test_missing_file_and_wrong_type(tmp_path):
    with pytest.raises(InputValidationError, match="file does not exist"):
        read_table(tmp_path / "nope.csv", CLIN)
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(InputValidationError, match=r"unsupported file type '.xlsx'"):
        read_table(tmp_path / "x.xlsx", CLIN)


def test_truncated_parquet_is_a_clear_error(demo_csv, tmp_path):
    frame = pd.read_csv(demo_csv["clinical"], dtype=str, keep_default_na=False)
    path = tmp_path / "clinical.parquet"
    frame.to_parquet(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputValidationError, match="cannot be read as parquet"):
        read_table(path, CLIN)


def test_parquet_input_reads_like_csv(demo_csv, tmp_path):
    frame = pd.read_csv(demo_csv["predictions"], dtype=str, keep_default_na=False)
    path = tmp_path / "predictions.parquet"
    frame.replace({"": None}).to_parquet(path)
    a = read_table(path, "predictions")
    b = read_table(demo_csv["predictions"], "predictions")
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        pytest.param(
            "name: x\nversion: 1\nunit: u\nvariables:\n  a: {type: strng, role: identifier}\n",
            r"must be one of string",
            id="bad-type",
        ),
        pytest.param(
            "name: x\nversion: 1\nunit: u\nvariables:\n  a: {type: categorical, role: outcome}\n",
            r"needs its levels",
            id="no-levels",
        ),
        pytest.param(
            "name: x\nversion: 1\nunit: u\nvariables:\n  a: {type: number, role: predictor, maximum: 3}\n",
            r"unknown key; did you mean 'max'\?",
            id="misspelt-key",
        ),
        pytest.param(
            "name: x\nunit: u\nvariables:\n  a: {type: number, role: predictor}\n",
            r"'version': required top-level key is missing",
            id="no-version",
        ),
        pytest.param(
            "name: x\nversion: 1\nunit: u\nvariables:\n  a: {type: number, role: boss}\n",
            r"must be one of identifier",
            id="bad-role",
        ),
    ],
)
def test_malformed_dictionary(tmp_path, yaml_text, message):
    path = tmp_path / "d.yml"
    path.write_text(yaml_text)
    with pytest.raises(InputValidationError, match=message):
        load_dictionary(path)


def test_unknown_bundled_dictionary():
    with pytest.raises(StudyvalError, match="no bundled data dictionary 'nope'; available: "):
        load_dictionary("nope")
