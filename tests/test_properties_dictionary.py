"""Property-based tests of validation against every data dictionary in data_dictionary/*.yml.

For each dictionary, hypothesis builds random *valid* text tables (types, ranges, levels,
patterns, required and unique respected; optional columns sometimes left out, optional cells
sometimes empty) and checks three properties:

1. ``validate_frame`` accepts every valid table (a free-text cell becomes one of its
   vocabulary's labels, and ``attrs["withheld"]`` counts the ``other`` ones);
2. the same table written as a CSV file reads back through ``read_table`` with the same values;
3. one random cell mutated into an invalid value is reported exactly: one violation, with the
   file, the column and the spreadsheet row of that cell, and the rule it breaks;
4. with blank lines inserted anywhere in the CSV, that violation names the file line where the
   record starts.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studyval.dictionary import (
    DataDictionary,
    Variable,
    load_dictionary,
    read_table,
    validate_frame,
)
from studyval.errors import InputValidationError

DICT_DIR = Path(__file__).resolve().parents[1] / "data_dictionary"
DICTIONARIES = sorted(DICT_DIR.glob("*.yml"))
SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
# Writing and reading a file per example is the slow part: fewer examples for this property.
ROUND_TRIP_SETTINGS = settings(SETTINGS, max_examples=25)
LABEL = "table.csv"
TRUE_TOKENS = ["true", "TRUE", "True", "1", "yes"]
FALSE_TOKENS = ["false", "FALSE", "False", "0", "no"]
# Plain strings: printable, no leading/trailing whitespace, never a missing-value token.
_TEXT = st.text(
    alphabet=st.characters(
        min_codepoint=33, max_codepoint=0x2FF, blacklist_categories=("Cs", "Cc", "Zs")
    ),
    min_size=1,
    max_size=12,
).filter(lambda s: s not in ("NA",))


def test_there_are_dictionaries_to_check():
    assert len(DICTIONARIES) >= 2
    assert {p.stem for p in DICTIONARIES} >= {"ovcf-chronicity", "predictions"}


def _date_bounds(var: Variable) -> tuple[dt.date, dt.date]:
    lo = dt.date.fromisoformat(str(var.minimum)) if var.minimum is not None else dt.date(1900, 1, 1)
    hi = (
        dt.date.fromisoformat(str(var.maximum))
        if var.maximum is not None
        else dt.date(2100, 12, 31)
    )
    return lo, hi


_HEX64 = "[0-9a-f]{64}"
_ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _fast_pattern(pattern: str) -> st.SearchStrategy[str] | None:
    """Cheap strategies for the dictionaries' common patterns (from_regex is slow on them)."""
    body = pattern.removeprefix("^").removesuffix("$")
    if body.endswith(_HEX64) and re.fullmatch(r"[A-Za-z0-9:]*", body[: -len(_HEX64)]):
        prefix = body[: -len(_HEX64)]
        return st.binary(min_size=32, max_size=32).map(lambda b: prefix + b.hex())
    if body == "[A-Za-z0-9][A-Za-z0-9_.-]*":
        head = st.sampled_from(_ID_CHARS)
        tail = st.text(alphabet=_ID_CHARS + "_.-", max_size=10)
        return st.tuples(head, tail).map("".join).filter(lambda s: s != "NA")
    if body == "[A-Za-z0-9][A-Za-z0-9 _.+()-]*":
        head = st.sampled_from(_ID_CHARS)
        tail = st.text(alphabet=_ID_CHARS + " _.+()-", max_size=10).map(str.rstrip)
        return st.tuples(head, tail).map("".join).filter(lambda s: s != "NA")  # NA is missing
    return None


def _vocabulary_texts(var: Variable) -> st.SearchStrategy[str]:
    """Free text: arbitrary, or built around one of the vocabulary's own expressions."""
    literal = [
        p.strip("^$")
        for _, patterns in var.vocabulary
        for p in patterns
        if re.fullmatch(r"\^?[A-Za-z ]+\$?", p)
    ]
    around = st.tuples(_TEXT, st.sampled_from(literal), _TEXT).map(
        lambda t: f"{t[0]} {t[1]} {t[2]}"
    )
    return st.one_of(_TEXT, st.sampled_from(literal), around) if literal else _TEXT


def value_strategy(var: Variable) -> st.SearchStrategy[str]:
    """Valid non-missing cells of ``var``, as text."""
    t = var.type
    if t == "string":
        if var.vocabulary and not var.pattern:
            return _vocabulary_texts(var)
        if var.pattern:
            fast = _fast_pattern(var.pattern)
            if fast is not None:
                return fast
            return st.from_regex(var.pattern, fullmatch=True).filter(
                lambda s: s == s.strip() and s not in ("", "NA")
            )
        return _TEXT
    if t == "categorical":
        return st.sampled_from(list(var.levels))
    if t == "boolean":
        return st.sampled_from(TRUE_TOKENS + FALSE_TOKENS)
    if t == "integer":
        lo = -(10**9) if var.minimum is None else math.ceil(var.minimum)
        hi = 10**9 if var.maximum is None else math.floor(var.maximum)
        return st.integers(lo, hi).map(str)
    if t == "number":
        lo = -1e12 if var.minimum is None else float(var.minimum)
        hi = 1e12 if var.maximum is None else float(var.maximum)
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(repr)
    if t == "date":
        lo, hi = _date_bounds(var)
        return st.dates(lo, hi).map(lambda d: d.isoformat())
    raise AssertionError(f"untested type {t}")  # a new type needs a strategy here


def _unique_key(var: Variable):
    return (lambda s: s.casefold()) if var.type == "string" else (lambda s: s)


#: Strategies are built once per dictionary variable (and per row count) and reused: Hypothesis
#: validates each new strategy object when it is first drawn from, which cost more than drawing
#: the values. The values drawn are the same as from fresh objects.
_STRATEGIES: dict[tuple[str, str, str, int], st.SearchStrategy] = {}
_ROW_COUNTS = st.integers(1, 8)
_COIN = st.booleans()


def _cached(
    key: tuple[str, str, str, int], build: Callable[[], st.SearchStrategy]
) -> st.SearchStrategy:
    found = _STRATEGIES.get(key)
    if found is None:
        found = _STRATEGIES[key] = build()
    return found


def _column_strategy(d: DataDictionary, var: Variable, n: int) -> st.SearchStrategy:
    """The ``n`` cells of column ``var``: unique values, or values and (if optional) missing."""
    key = (d.name, d.version, var.name, n)
    if var.unique:
        return _cached(
            key,
            lambda: st.lists(
                value_strategy(var), min_size=n, max_size=n, unique_by=_unique_key(var)
            ),
        )

    def build() -> st.SearchStrategy:
        cell = value_strategy(var)
        if not var.required:
            cell = st.one_of(cell, st.sampled_from([None, "", "NA"]))
        return st.lists(cell, min_size=n, max_size=n)

    return _cached(key, build)


@st.composite
def valid_tables(draw, d: DataDictionary) -> pd.DataFrame:
    n = draw(_ROW_COUNTS)
    columns: dict[str, list[str | None]] = {}
    for var in d.variables:
        if not var.required and draw(_COIN) and draw(_COIN):
            continue  # an optional column may be absent (1 in 4)
        columns[var.name] = draw(_column_strategy(d, var, n))
    names = list(columns)
    order = draw(st.permutations(names))
    return pd.DataFrame({k: columns[k] for k in order}, dtype=object)


def _present(frame: pd.DataFrame, d: DataDictionary) -> list[tuple[int, str]]:
    return [
        (i, col)
        for col in frame.columns
        for i in range(len(frame))
        if frame.at[i, col] not in (None, "", "NA")
    ]


@st.composite
def mutated_tables(draw, d: DataDictionary):
    """A valid table with one cell made invalid; returns (frame, column, row, rule regex)."""
    frame = draw(valid_tables(d))
    cells = _present(frame, d)
    i, col = draw(st.sampled_from(cells))
    var = d[col]
    value = frame.at[i, col]
    others = [
        frame.at[j, col] for j in range(len(frame)) if j != i and frame.at[j, col] is not None
    ]
    others = [o for o in others if o not in ("", "NA")]
    kinds = ["whitespace", "blank"]
    if var.required:
        kinds.append("empty")
    if var.unique and others:
        kinds.append("duplicate")
        if var.type == "string" and any(o.swapcase() != o for o in others):
            kinds.append("case")
    kinds += {
        "string": ["pattern"] if var.pattern else [],
        "categorical": ["level"],
        "boolean": ["boolean"],
        "integer": ["not-integer", "above", "below"],
        "number": ["comma", "nan", "above", "below"],
        "date": ["not-iso", "calendar", "above", "below"],
    }[var.type]
    if var.minimum is None:
        kinds = [k for k in kinds if k != "below"]
    if var.maximum is None:
        kinds = [k for k in kinds if k != "above"]
    kind = draw(st.sampled_from(kinds))
    row = i + 2
    if kind == "whitespace":
        new, rule = draw(st.sampled_from([" " + value, value + " ", "\t" + value])), "whitespace"
    elif kind == "blank":  # only spaces is an error, not a missing value
        new, rule = draw(st.sampled_from([" ", "  ", "\t", " NA"])), "whitespace"
    elif kind == "empty":
        new, rule = draw(st.sampled_from([None, "", "NA"])), "value is required"
    elif kind in ("duplicate", "case"):
        j = draw(st.sampled_from([j for j in range(len(frame)) if j != i and frame.at[j, col]]))
        src = frame.at[j, col]
        if kind == "case":
            if src.swapcase() == src:
                kind, new = "duplicate", src
            else:
                new = src.swapcase()
        else:
            new = src
        row = max(i, j) + 2
        rule = "duplicate value" if kind == "duplicate" else "differs from another id only"
    elif kind == "pattern":
        new, rule = (
            draw(st.sampled_from(["-" + value, value + "<x>", "!"])),
            "must match the pattern",
        )
    elif kind == "level":
        new = draw(st.sampled_from([value + "x", "?", value.swapcase() + "_"]))
        rule = "not an allowed level"
    elif kind == "boolean":
        new, rule = draw(st.sampled_from(["maybe", "Y", "2", "truee"])), "must be true or false"
    elif kind == "not-integer":
        new, rule = draw(st.sampled_from([value + ".0", "1.5", "abc", "1e3"])), "must be an integer"
    elif kind == "comma":
        new, rule = value.replace(".", ",") + (",5" if "." not in value else ""), "must be a number"
    elif kind == "nan":
        new, rule = draw(st.sampled_from(["nan", "NaN", "inf", "-inf", "n/a", "-"])), "must be a"
    elif kind == "not-iso":
        d_ = dt.date.fromisoformat(value)
        new = draw(st.sampled_from([d_.strftime("%d/%m/%Y"), d_.strftime("%Y%m%d"), value + "T00"]))
        rule = "must be an ISO date"
    elif kind == "calendar":
        new, rule = value[:4] + "-02-30", "not a valid calendar date"
    elif kind == "above":
        if var.type == "date":
            new = (dt.date.fromisoformat(str(var.maximum)) + dt.timedelta(days=1)).isoformat()
            rule = "must be on or before"
        elif var.type == "integer":
            new, rule = str(math.floor(var.maximum) + 1), "must be <="
        else:
            new, rule = (
                repr(float(var.maximum) + draw(st.sampled_from([1e-9, 0.5, 100.0]))),
                ("must be <="),
            )
    else:  # below
        if var.type == "date":
            new = (dt.date.fromisoformat(str(var.minimum)) - dt.timedelta(days=1)).isoformat()
            rule = "must be on or after"
        elif var.type == "integer":
            new, rule = str(math.ceil(var.minimum) - 1), "must be >="
        else:
            new, rule = (
                repr(float(var.minimum) - draw(st.sampled_from([1e-9, 0.5, 100.0]))),
                ("must be >="),
            )
    frame = frame.copy()
    frame.at[i, col] = new
    return frame, col, row, rule


@pytest.fixture(params=DICTIONARIES, ids=[p.stem for p in DICTIONARIES])
def dictionary(request) -> DataDictionary:
    return load_dictionary(request.param)


def test_valid_tables_are_accepted(dictionary):
    @SETTINGS
    @given(valid_tables(dictionary))
    def check(frame):
        typed, problems = validate_frame(frame, dictionary, label=LABEL)
        assert problems == [], [str(p) for p in problems]
        assert len(typed) == len(frame)
        for var in dictionary.variables:
            if var.name in frame.columns:
                present = frame[var.name].map(lambda c: c not in (None, "", "NA"))
                assert typed[var.name].notna().tolist() == present.tolist()
                if var.vocabulary:
                    kept = typed[var.name].dropna()
                    assert set(kept) <= set(var.labels)
                    assert typed.attrs["withheld"][var.name] == int((kept == var.other).sum())
                    raw = {c for c in frame[var.name] if c not in (None, "", "NA")}
                    assert not (raw - set(var.labels)) & set(kept), "raw text kept"

    check()


def test_valid_tables_survive_a_csv_round_trip(dictionary, tmp_path):
    @ROUND_TRIP_SETTINGS
    @given(valid_tables(dictionary))
    def check(frame):
        path = tmp_path / LABEL
        frame.to_csv(path, index=False, lineterminator="\n")
        before = path.read_bytes()
        typed = read_table(path, dictionary)
        expected, _ = validate_frame(frame.fillna(""), dictionary, label=LABEL)
        pd.testing.assert_frame_equal(typed, expected)
        assert path.read_bytes() == before

    check()


def test_one_invalid_cell_is_reported_exactly(dictionary):
    @SETTINGS
    @given(mutated_tables(dictionary))
    def check(case):
        frame, col, row, rule = case
        _, problems = validate_frame(frame, dictionary, label=LABEL)
        assert len(problems) == 1, [str(p) for p in problems]
        (p,) = problems
        assert (p.file, p.column, p.row) == (LABEL, col, row), str(p)
        assert rule in p.rule, str(p)

    check()


@st.composite
def blank_lines(draw, n_records: int) -> list[int]:
    """How many blank lines to put before each record (and after the last)."""
    return draw(
        st.lists(st.sampled_from([0, 0, 0, 1, 2]), min_size=n_records + 1, max_size=n_records + 1)
    )


def test_rows_are_file_lines_despite_blank_lines(dictionary, tmp_path):
    @ROUND_TRIP_SETTINGS
    @given(mutated_tables(dictionary), st.data())
    def check(case, data):
        frame, col, row, rule = case
        records = frame.to_csv(index=False, lineterminator="\n").splitlines()
        assume_one_line = len(records) == len(frame) + 1
        assert assume_one_line, "no generated cell spans lines"
        blanks = data.draw(blank_lines(len(frame)))
        lines = [records[0]]
        line_of: list[int] = []
        for k, rec in enumerate(records[1:]):
            lines += [""] * blanks[k]
            lines.append(rec)
            line_of.append(len(lines))
        lines += [""] * blanks[-1]
        path = tmp_path / LABEL
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        try:
            read_table(path, dictionary)
        except InputValidationError as exc:
            problems = exc.violations
        else:
            raise AssertionError("the mutated cell was accepted")
        assert len(problems) == 1, [str(p) for p in problems]
        (p,) = problems
        assert (p.file, p.column, p.row) == (LABEL, col, line_of[row - 2]), str(p)
        assert rule in p.rule, str(p)

    check()
