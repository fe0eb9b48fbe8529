"""Report formatting helpers: they format numbers read from a bundle and never compute estimates."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from studyval.reporting import fmt_ci, fmt_num, fmt_p, md_table


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(0.0004, "<0.001", id="below-0.001"),
        pytest.param(0.001, "0.001", id="at-0.001"),
        pytest.param(0.04999, "0.050", id="rounds"),
        pytest.param(float("nan"), "NA", id="nan"),
    ],
)
def test_fmt_p(value, expected):
    assert fmt_p(value) == expected


def test_fmt_ci_and_num():
    assert fmt_ci(0.8839, 0.8128, 0.9551) == "0.884 (0.813 to 0.955)"
    assert fmt_num(math.inf) == "inf"
    assert fmt_num(float("nan")) == "NA"


def test_md_table_aligns_numbers_right_and_escapes_pipes():
    frame = pd.DataFrame({"model": ["a|b", "c"], "auc": [0.9, 0.8]})
    text = md_table(frame, {"model": "Model", "auc": "AUC"}, caption="Cap.")
    lines = text.strip().splitlines()
    assert lines[0] == "| Model | AUC |"
    assert lines[1] == "|:--|--:|"
    assert lines[2] == "| a\\|b | 0.9 |"
    assert lines[-1] == ": Cap."


def test_md_table_escapes_cells_headers_and_caption():
    frame = pd.DataFrame({"site": ["<b>EXT</b>", "[^1]"], "n": [3, 4]})
    text = md_table(frame, {"site": "Site *", "n": "n"}, caption="By site: {{< x >}}")
    lines = text.strip().splitlines()
    assert lines[0] == "| Site \\* | n |"
    assert lines[2] == "| \\<b\\>EXT\\</b\\> | 3 |"
    assert lines[3] == "| \\[\\^1\\] | 4 |"
    assert lines[-1] == ": By site: \\{\\{\\< x \\>\\}\\}"


def test_md_table_writes_markup_columns_as_they_are():
    from studyval.reporting import Markup, md_code

    frame = pd.DataFrame({"file": ["a.csv"], "hash": ["x"]})
    frame["hash"] = [md_code("abc...")]  # a str column: the Markup type is lost, name it
    frame["note"] = pd.Series([Markup("**kept**")], dtype=object)  # kept in an object column
    text = md_table(frame, {"file": "File", "hash": "SHA-256", "note": "Note"}, markup=["hash"])
    assert text.splitlines()[2] == "| a.csv | `abc...` | **kept** |"
