"""Data dictionaries: parsing, and validation of tables with every violation listed."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from studyval.dictionary import Variable, load_dictionary, read_table
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
        "label",
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
    with pytest.raises(InputValidationError) as info:
        read_table(bad, CLIN)
    # the full list names every row; str() groups a long list (tests/test_bad_inputs_reading.py)
    assert re.search(message, info.value.full_message()), info.value.full_message()
    assert str(info.value).startswith(("1 violation", f"{len(info.value.violations)} violations"))
    assert all(v.file == "clinical.csv" for v in info.value.violations)


def test_a_whole_column_of_bad_labels_is_one_group(demo_csv, tmp_path):
    def edit(f):
        f["chronicity"] = f["chronicity"].replace({"acute": "Acute"})

    bad = _edit(demo_csv["clinical"], tmp_path / "clinical.csv", edit)
    with pytest.raises(
        InputValidationError,
        match=r"violations found, grouped by file, column and rule into 1 group .*\n"
        r"  - clinical\.csv, column 'chronicity': not an allowed level \(acute, chronic\); "
        r"did you mean 'acute'\? \(\d+ rows: \d+, \d+, \d+, \d+, \d+ and \d+ more; "
        r"first found 'Acute'\)$",
    ):
        read_table(bad, CLIN)


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
        pytest.param(
            "name: x\nversion: 1\nunit: u\nvariables:\n  a: {type: date, role: date, max: '2025-9-30'}\n",
            r"field 'variables\.a\.max': must be an ISO date YYYY-MM-DD \(found '2025-9-30'\)",
            id="date-bound-not-iso",
        ),
        pytest.param(
            "name: x\nversion: 1\nunit: u\nvariables:\n"
            "  a: {type: date, role: date, min: '２０２３-０１-０１'}\n",
            r"field 'variables\.a\.min': must be an ISO date YYYY-MM-DD",
            id="date-bound-full-width",
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


# ----------------------------------------------------------------------------- free text


SECRETS = [
    "Patient Zhang Wei, MRN 00123456, DOB 1950-01-01: image corrupt",
    "<script>alert('x')</script>",
    "called Dr Li on 555-0100, no idea",
]


def test_free_text_becomes_its_category_and_never_leaves_read_table(demo_csv, tmp_path):
    cells = {
        0: "segmentation failed: vertebral body not delineated",
        1: SECRETS[0],  # a known category, despite the identifiers around it
        2: SECRETS[1],
        3: SECRETS[2],
        4: "NA",
        5: "",
    }

    def edit(f):
        for i, text in cells.items():
            f.loc[i, "failure_reason"] = text

    path = _edit(demo_csv["predictions"], tmp_path / "predictions.csv", edit)
    typed = read_table(path, "predictions")
    got = typed["failure_reason"].iloc[:6].tolist()
    assert got[:4] == [
        "segmentation failed",
        "image unreadable",
        "other (text withheld)",
        "other (text withheld)",
    ]
    assert pd.isna(got[4]) and pd.isna(got[5])
    labels = set(load_dictionary("predictions")["failure_reason"].labels)
    assert set(typed["failure_reason"].dropna()) <= labels
    assert typed.attrs["withheld"] == {"failure_reason": 2}
    text = typed.to_csv()
    for secret in ("Zhang", "00123456", "1950-01-01", "<script>", "555-0100"):
        assert secret not in text


def test_withheld_is_zero_when_every_text_has_a_category(demo_csv):
    typed = read_table(demo_csv["predictions"], "predictions")
    assert typed.attrs["withheld"] == {"failure_reason": 0}
    assert set(typed["failure_reason"].dropna()) == {"segmentation failed"}


def test_a_bad_free_text_cell_is_reported_without_its_text(demo_csv, tmp_path):
    def edit(f):
        f.loc[3, "failure_reason"] = "Zhang Wei MRN 00123456 "

    path = _edit(demo_csv["predictions"], tmp_path / "predictions.csv", edit)
    with pytest.raises(
        InputValidationError,
        match=r"column 'failure_reason', row 5: leading or trailing whitespace is not allowed$",
    ) as info:
        read_table(path, "predictions")
    assert info.value.violations[0].value is None
    assert "Zhang" not in str(info.value) and "Zhang" not in info.value.full_message()


# Every failure reason the project's own code writes: models/inference.py wraps each
# ImageReadError of models/imaging.py as "image unreadable: <problem> (<file name>)".
MODEL_REASONS = [
    pytest.param(
        "segmentation failed: vertebral body not delineated",
        "segmentation failed",
        id="inference-segmentation",
    ),
    pytest.param(
        "series could not be read (missing slices)",
        "incomplete series",
        id="synthetic-vcf-opportunistic",
    ),
    pytest.param("file is empty (0 bytes)", "image unreadable", id="empty-file"),
    pytest.param(
        "not a readable DICOM file (File is missing DICOM File Meta Information header or the "
        "'DICM' prefix is missing from the header)",
        "image unreadable",
        id="not-dicom",
    ),
    pytest.param("DICOM file has no pixel data", "image unreadable", id="no-pixel-data"),
    pytest.param("DICOM series directory does not exist", "image missing", id="no-series-dir"),
    pytest.param("directory holds no files", "image missing", id="empty-series-dir"),
    pytest.param(
        "belongs to another series: SeriesInstanceUID '1.2.4' differs from '1.2.3' in "
        "slice_000.dcm",
        "inconsistent series",
        id="another-series",
    ),
    pytest.param(
        "has other in-plane geometry: Rows 256 differs from 512 in slice_000.dcm",
        "inconsistent series",
        id="in-plane-geometry",
    ),
    pytest.param(
        "DICOM file has no ImagePositionPatient; the slice order is unknown",
        "inconsistent series",
        id="no-position",
    ),
    pytest.param(
        "duplicated slice position 12.5 mm (same as slice_004.dcm)",
        "inconsistent series",
        id="duplicated-slice",
    ),
    pytest.param(
        "2 missing slice(s) between slice_003.dcm and this file (gap 7.5 mm, slice spacing 2.5 mm)",
        "incomplete series",
        id="missing-slices",
    ),
    pytest.param(
        "mixed slice spacing: gap 3 mm to slice_003.dcm, elsewhere 2.5 mm",
        "inconsistent series",
        id="mixed-spacing",
    ),
    pytest.param("file does not exist", "image missing", id="no-file"),
    pytest.param(
        "unknown image format (expected a DICOM series directory, .dcm or .nii[.gz])",
        "image unreadable",
        id="unknown-format",
    ),
    pytest.param(
        "cannot be read by MONAI NibabelReader (unexpected end of file)",
        "image unreadable",
        id="monai",
    ),
]


def _as_written(text: str) -> str:
    """How models/inference.py writes an image problem (other reasons are written as is)."""
    if text.startswith(("segmentation failed", "series could not")):
        return text
    return f"image unreadable: {text} (slice_003.dcm)"


@pytest.mark.parametrize(("reason", "category"), MODEL_REASONS)
def test_every_failure_reason_of_the_models_has_a_category(reason, category):
    var = load_dictionary("predictions")["failure_reason"]
    assert var.categorize(_as_written(reason)) == category


def test_the_reason_list_covers_every_image_problem_the_models_raise():
    """Each literal piece of an ImageReadError problem in models/imaging.py is listed above."""
    import ast

    source = Path(__file__).resolve().parents[1] / "models" / "imaging.py"
    listed = [p.values[0] for p in MODEL_REASONS]
    pieces = []
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "ImageReadError"
            and len(node.args) == 2
        ):
            problem = node.args[1]
            parts = problem.values if isinstance(problem, ast.JoinedStr) else [problem]
            pieces += [
                p.value.strip(" ;:(),")
                for p in parts
                if isinstance(p, ast.Constant) and len(p.value.strip(" ;:(),")) > 3
            ]
    assert len(pieces) >= 10
    for piece in pieces:
        assert any(piece in text for text in listed), f"{piece!r}: add it to MODEL_REASONS"


def test_synthetic_prediction_tables_are_valid_and_fully_categorised(tmp_path):
    from studyval.synthetic import ovcf_chronicity, vcf_opportunistic

    for module in (ovcf_chronicity, vcf_opportunistic):
        paths = module.generate().write(tmp_path / module.__name__.rsplit(".", 1)[1])
        typed = read_table(paths["predictions"], "predictions")
        assert typed.attrs["withheld"] == {"failure_reason": 0}
        assert typed["failure_reason"].notna().any()


@pytest.mark.parametrize(
    ("column", "value"),
    [
        pytest.param("site", "<b>CQMU</b>", id="site-markup"),
        pytest.param("site", "-CQMU", id="site-leading-dash"),
        pytest.param("model_name", "<script>x</script>", id="model-script"),
        pytest.param("model_name", "DenseNet-121; rm", id="model-semicolon"),
        pytest.param("positive_class", "acute\"'", id="positive-quotes"),
        pytest.param("positive_class", "[acute](http://x)", id="positive-link"),
    ],
)
def test_markup_cannot_enter_through_site_model_or_class(demo_csv, tmp_path, column, value):
    def edit(f):
        f.loc[2, column] = value

    path = _edit(demo_csv["predictions"], tmp_path / "predictions.csv", edit)
    with pytest.raises(
        InputValidationError,
        match=rf"column '{column}', row 4: must match the pattern \^\[A-Za-z0-9\]",
    ):
        read_table(path, "predictions")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("DenseNet-121", id="dash"),
        pytest.param("clinical+sarcopenia", id="plus"),
        pytest.param("Clinical + MRI", id="spaces"),
        pytest.param("ResNet50 (3D) v1.2_b", id="brackets-dot-underscore"),
    ],
)
def test_plain_model_names_pass_the_pattern(demo_csv, tmp_path, value):
    def edit(f):
        f["model_name"] = f["model_name"].replace({"ViT": value})

    path = _edit(demo_csv["predictions"], tmp_path / "predictions.csv", edit)
    typed = read_table(path, "predictions")
    assert value in set(typed["model_name"])


VOCAB_HEAD = "name: x\nversion: 1\nunit: u\nvariables:\n  why:\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            "    type: string\n    role: free_text\n",
            r"field 'variables\.why\.vocabulary': a free_text variable needs a vocabulary",
            id="free-text-without-vocabulary",
        ),
        pytest.param(
            "    type: number\n    role: free_text\n    vocabulary: {a: [x]}\n    other: o\n",
            r"field 'variables\.why\.type': a free_text variable must be of type string.*\n"
            r".*field 'variables\.why\.vocabulary': a vocabulary is only allowed for string",
            id="free-text-number",
        ),
        pytest.param(
            "    type: categorical\n    role: design\n    levels: [a]\n"
            "    vocabulary: {a: [x]}\n    other: o\n",
            r"field 'variables\.why\.vocabulary': a vocabulary is only allowed for string",
            id="vocabulary-on-categorical",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary:\n      broken: ['ok', '(unclosed']\n"
            "    other: o\n",
            r"field 'variables\.why\.vocabulary\.broken\[1\]': invalid regular expression: "
            r"missing \), unterminated subpattern.*\(found '\(unclosed'\)",
            id="bad-regex-names-its-path",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {a: [x]}\n",
            r"field 'variables\.why\.other': a vocabulary needs 'other'",
            id="no-other",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {a: [x]}\n    other: a\n",
            r"field 'variables\.why\.other': must differ from every category label",
            id="other-is-a-category",
        ),
        pytest.param(
            "    type: string\n    role: design\n    other: o\n",
            r"field 'variables\.why\.other': 'other' is only allowed with a vocabulary",
            id="other-without-vocabulary",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {}\n    other: o\n",
            r"field 'variables\.why\.vocabulary': must be a non-empty mapping",
            id="empty-vocabulary",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {a: x}\n    other: o\n",
            r"field 'variables\.why\.vocabulary\.a': must be a non-empty list of regular",
            id="patterns-not-a-list",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {a: []}\n    other: o\n",
            r"field 'variables\.why\.vocabulary\.a': must be a non-empty list of regular",
            id="no-patterns",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {yes: [x]}\n    other: o\n",
            r"field 'variables\.why\.vocabulary\.True': a category label must be a non-empty "
            r"string",
            id="label-not-a-string",
        ),
        pytest.param(
            "    type: string\n    role: free_text\n    vocabulary: {a: [x]}\n    other: ''\n",
            r"field 'variables\.why\.other': must be a non-empty string",
            id="empty-other",
        ),
    ],
)
def test_malformed_vocabulary(tmp_path, body, message):
    path = tmp_path / "d.yml"
    path.write_text(VOCAB_HEAD + body)
    with pytest.raises(InputValidationError, match=message):
        load_dictionary(path)


def test_vocabulary_is_parsed_in_declaration_order(tmp_path):
    path = tmp_path / "d.yml"
    path.write_text(
        VOCAB_HEAD + "    type: string\n    role: free_text\n    required: false\n"
        "    vocabulary:\n      zeta: ['^a']\n      alpha: ['a', 'B']\n    other: rest\n"
    )
    var = load_dictionary(path)["why"]
    assert var.vocabulary == (("zeta", ("^a",)), ("alpha", ("a", "B")))
    assert var.labels == ("zeta", "alpha", "rest")
    assert [var.categorize(t) for t in ("abc", "cab", "xbx", "xyz")] == [
        "zeta",
        "alpha",
        "alpha",  # case-insensitive search
        "rest",
    ]
    assert var.rule_text() == "free text, kept only as one of: zeta, alpha; anything else: rest"
    with pytest.raises(ValueError, match=r"variable 'x' has no vocabulary"):
        Variable(name="x", type="string", role="design").categorize("a")


def test_date_bounds_are_compared_as_dates(tmp_path):
    from studyval.dictionary import validate_frame

    path = tmp_path / "d.yml"
    path.write_text(
        "name: x\nversion: 1\nunit: u\nvariables:\n"
        "  d: {type: date, role: date, min: '2023-01-01', max: 2025-09-30}\n"
    )
    d = load_dictionary(path)
    cells = ["2025-09-30", "2025-10-01", "２０２３-１２-１２", "2022-12-31", "2023-01-01"]
    raw = pd.DataFrame({"d": cells}, dtype=object)
    typed, problems = validate_frame(raw, d, label="t.csv")
    assert [(p.row, p.rule.split(":")[0]) for p in problems] == [
        (3, "must be on or before 2025-09-30"),
        (4, "must be an ISO date YYYY-MM-DD"),
        (5, "must be on or after 2023-01-01"),
    ]
    assert "full-width digit '２'" in problems[1].rule
    assert list(typed["d"].dropna().dt.strftime("%Y-%m-%d")) == ["2025-09-30", "2023-01-01"]


@pytest.mark.parametrize(
    ("column", "cell", "rule"),
    [
        pytest.param(
            "age",
            "７６",
            r"must be an integer: contains the full-width digit",
            id="C12-full-width-age",
        ),
        pytest.param(
            "age", "76\u00a0", r"leading or trailing whitespace", id="trailing-no-break-space"
        ),
        pytest.param(
            "age",
            "7\u00a06",
            r"must be an integer: contains '\\xa0' \(U\+00A0 NO-BREAK SPACE\) at position 2$",
            id="no-break-space-inside",
        ),
        pytest.param(
            "dxa_t_score",
            "\u2212" + "2.5",
            r"must be a number: contains '−' \(U\+2212 MINUS SIGN\) at position 1: "
            r"type it in ASCII \(-2\.5\)$",
            id="minus-sign",
        ),
        pytest.param(
            "chronicity",
            "\u0430cute",
            r"not an allowed level \(acute, chronic\).*: contains 'а' "
            r"\(U\+0430 CYRILLIC SMALL LETTER A\) at position 1$",
            id="D2-cyrillic-level",
        ),
        pytest.param(
            "index_vertebra",
            "ｔｒｕｅ",
            r"must be true or false: contains 'ｔ' \(U\+FF54 FULLWIDTH LATIN SMALL LETTER T\) at position 1$",
            id="full-width-boolean",
        ),
    ],
)
def test_unicode_look_alikes_are_named(demo_csv, tmp_path, column, cell, rule):
    def edit(f):
        f.loc[0, column] = cell

    path = _edit(demo_csv["clinical"], tmp_path / "clinical.csv", edit)
    with pytest.raises(InputValidationError) as info:
        read_table(path, CLIN)
    (v,) = info.value.violations
    assert (v.column, v.row, v.value) == (column, 2, cell)
    assert re.search(rule, v.rule), v.rule


# ----------------------------------------------------------------------------- distinct texts once

EDGE_TEXTS = [
    "1", "1.5", "-0.25", "+3", ".5", "5.", "1e3", "1E-2", "0012", "inf", "nan", "1e400", "-1e400",
    " 1", "1 ", "1\n", "1,5", "1,317.9", "１２", "\u22121", "", "NA", "abc", "true", "no", "0",
    "2023-12-24", "2023-02-30", "2023-12-24 08:30", "left", "Left", "99999", "-5", "150.0001",
]


@pytest.mark.parametrize(
    "var",
    [
        Variable(name="x", type="number", role="predictor", minimum=-1, maximum=150),
        Variable(name="x", type="number", role="predictor", required=False),
        Variable(name="x", type="integer", role="predictor", minimum=0, maximum=99999),
        Variable(name="x", type="boolean", role="predictor"),
        Variable(name="x", type="date", role="predictor", minimum="2000-01-01"),
        Variable(name="x", type="categorical", role="predictor", levels=("left", "right")),
        Variable(name="x", type="string", role="predictor", pattern=r"[a-z]+"),
    ],
    ids=lambda v: f"{v.type}-{v.minimum}",
)
def test_each_distinct_text_is_checked_once_with_the_cell_by_cell_result(var):
    """The factorised check (each distinct text converted once, plain numbers vectorised) gives
    the values and refusals, in row order, that converting every cell on its own gives."""
    from studyval.dictionary import _FACTORISE_FROM, _check_cells, _check_column

    # more cells and distinct numbers than _FACTORISE_FROM, so the factorised and vectorised
    # paths run: measurements (some out of bounds), then the edge texts twice
    measurements = [f"{(k - 40) * 0.37:.4f}" for k in range(_FACTORISE_FROM + 50)]
    cells = [*measurements, *EDGE_TEXTS, None, *reversed(EDGE_TEXTS), None]
    rows = [k + 2 for k in range(len(cells))]
    column = pd.Series(cells, dtype=object)
    values, refused = _check_column(var, column, rows)
    expected_values, expected_refused = _check_cells(var, cells, rows)
    assert refused == expected_refused
    assert [type(v) for v in values] == [type(v) for v in expected_values]
    assert list(values) == list(expected_values)
    assert refused  # the edge texts break some rule of every variable


def test_a_column_of_other_than_text_is_checked_cell_by_cell():
    """A frame built in code may hold numbers or NaN: such a cell is converted from its text
    (NaN is a value, not a missing cell), as before the distinct texts were factorised."""
    from studyval.dictionary import _check_column

    var = Variable(name="x", type="number", role="predictor")
    values, refused = _check_column(var, pd.Series([1.5, float("nan"), "2", None]), [2, 3, 4, 5])
    assert list(values) == [1.5, None, 2.0, None]
    assert [(row, rule) for row, _, rule in refused] == [(3, "must be a number"), (5, None)]
