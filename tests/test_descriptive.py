"""Baseline tables (STARD 20 / TRIPOD+AI 20b): numbers against R, every level and missing count shown."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.descriptive import baseline_table
from studyval.errors import StudyvalError

FRAME = pd.DataFrame(
    {
        "age": [72, 81, 65, np.nan, 90, 77, 68],
        "group": ["a", "a", "b", "b", "a", "b", "a"],
        "sex": pd.Categorical(["F", "M", "F", "F", None, "M", "F"], categories=["F", "M", "X"]),
    }
)


def _row(tab, **where):
    sub = tab
    for k, v in where.items():
        sub = sub[sub[k] == v]
    assert len(sub) == 1, where
    return sub.iloc[0]


def test_continuous_summaries_against_r():
    tab = baseline_table(FRAME, group="group", continuous=["age"], categorical=[])
    # R: x <- c(72, 81, 65, NA, 90, 77, 68)
    #    mean(x, na.rm=TRUE); sd(x, na.rm=TRUE); quantile(x, c(.5, .25, .75), na.rm=TRUE)
    #    -> 75.5 9.18150314491042 74.5 69 80
    overall = _row(tab, variable="age", statistic="mean_sd", group="Overall")
    assert overall["value"] == pytest.approx(75.5, rel=1e-12)
    assert overall["value2"] == pytest.approx(9.18150314491042, rel=1e-12)
    med = _row(tab, variable="age", statistic="median_iqr", group="Overall")
    assert (med["value"], med["value2"], med["value3"]) == pytest.approx((74.5, 69, 80), rel=1e-12)
    # R: xa <- x[g == "a"]  (g <- c("a","a","b","b","a","b","a"))
    #    mean(xa); sd(xa); quantile(xa, c(.5, .25, .75)) -> 77.75 9.81070843517429 76.5 71 83.25
    a = _row(tab, variable="age", statistic="mean_sd", group="a")
    assert (a["value"], a["value2"]) == pytest.approx((77.75, 9.81070843517429), rel=1e-12)
    a_med = _row(tab, variable="age", statistic="median_iqr", group="a")
    assert (a_med["value"], a_med["value2"], a_med["value3"]) == pytest.approx(
        (76.5, 71, 83.25), rel=1e-12
    )
    assert _row(tab, variable="age", statistic="missing", group="b")["value"] == 1
    assert a["display"] == "77.8 (9.8)"


def test_categorical_shows_every_level_and_missing():
    tab = baseline_table(FRAME, group="group", continuous=[], categorical=["sex"])
    # R: table(s[g == "b"], useNA = "always") -> F 2, M 1, <NA> 0
    assert _row(tab, variable="sex", level="F", group="b")["value"] == 2
    assert _row(tab, variable="sex", level="M", group="b")["value"] == 1
    empty = _row(tab, variable="sex", level="X", group="Overall")
    assert empty["value"] == 0 and empty["display"] == "0 (0.0%)"
    assert _row(tab, variable="sex", level="missing", group="Overall")["value"] == 1
    f = _row(tab, variable="sex", level="F", group="Overall")
    assert f["value2"] == pytest.approx(100 * 4 / 6)  # percent of non-missing


def test_counts_per_group():
    tab = baseline_table(FRAME, group="group", continuous=["age"], categorical=["sex"])
    counts = tab[tab["variable"] == "n"].set_index("group")["value"]
    assert counts.to_dict() == {"Overall": 7, "a": 4, "b": 3}


def test_unknown_column_is_an_error():
    with pytest.raises(StudyvalError, match="baseline_table: column 'bmi' is not in the data"):
        baseline_table(FRAME, group="group", continuous=["bmi"])
