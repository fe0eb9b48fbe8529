"""Baseline tables (STARD 20 / TRIPOD+AI 20b) and observed means with t intervals, against R."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.descriptive import baseline_table, group_means
from studyval.errors import StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"

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


# --------------------------------------------------------------------------- #
# group_means: observed means with Student t intervals
# --------------------------------------------------------------------------- #
# R 4.2.2:
#   d <- read.csv("tests/data/lmm_oks.csv")
#   for (yr in sort(unique(d$years))) for (g in sort(unique(d$oa))) {
#     x <- d$y[d$years == yr & d$oa == g]; tt <- t.test(x, conf.level = 0.95)
#     cat(yr, g, length(x), mean(x), sd(x), tt$conf.int[1], tt$conf.int[2], "\n") }
T_TEST_OKS = [
    (0.5, 0.0, 24, 35.831249999999997, 6.2679996895896268, 33.184505857025734, 38.477994142974254),
    (0.5, 1.0, 27, 25.26962962962963, 4.7313459472896797, 23.397971508794196, 27.141287750465061),
    (1.0, 0.0, 25, 36.362400000000001, 6.5609484070521393, 33.654173603953886, 39.070626396046123),
    (1.0, 1.0, 30, 24.91, 5.0194786100989992, 23.035695883663013, 26.784304116336983),
    (2.0, 0.0, 24, 35.754583333333336, 5.3760588272909322, 33.484472784819737, 38.024693881846929),
    (2.0, 1.0, 32, 22.799062500000002, 4.6865437841899045, 21.109383281936616, 24.488741718063384),
    (3.0, 0.0, 22, 34.258181818181818, 6.0424889513571083, 31.579092303880568, 36.937271332483064),
    (3.0, 1.0, 28, 21.513571428571428, 4.7088586446664262, 19.687666661083874, 23.339476196058982),
]


def test_group_means_t_interval_against_r_t_test():
    d = pd.read_csv(DATA / "lmm_oks.csv")
    tab = group_means(d, value="y", by=["years", "oa"]).to_frame()
    assert list(tab.columns) == [
        "years",
        "oa",
        "mean",
        "sd",
        "n",
        "n_missing",
        "se",
        "ci_low",
        "ci_high",
        "ci_level",
    ]
    got = tab[["years", "oa", "n", "mean", "sd", "ci_low", "ci_high"]].to_numpy(float)
    np.testing.assert_allclose(got, np.array(T_TEST_OKS), rtol=1e-12)
    assert (tab["n_missing"] == 0).all() and (tab["ci_level"] == 0.95).all()


def test_group_means_level_against_r_t_test():
    # R: x <- d$y[d$years == 0.5 & d$oa == 1]; t.test(x, conf.level = 0.90)$conf.int
    #    -> 23.716582725729499 26.822676533529759
    d = pd.read_csv(DATA / "lmm_oks.csv")
    tab = group_means(d, value="y", by=["years", "oa"], alpha=0.10).to_frame()
    row = tab[(tab["years"] == 0.5) & (tab["oa"] == 1.0)].iloc[0]
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (23.716582725729499, 26.822676533529759), rel=1e-12
    )
    assert row["ci_level"] == pytest.approx(0.90)


def test_group_means_counts_missing_values_and_leaves_them_out():
    d = pd.DataFrame({"g": ["a", "a", "a", "a", "b", "b"], "y": [1.0, 2.0, np.nan, 3.0, 4.0, 6.0]})
    tab = group_means(d, value="y", by="g").to_frame().set_index("g")
    assert tab.loc["a", "n"] == 3 and tab.loc["a", "n_missing"] == 1
    assert tab.loc["a", "mean"] == pytest.approx(2.0)
    # R: t.test(c(1, 2, 3))$conf.int -> -0.48413771175032977 4.48413771175032938
    assert (tab.loc["a", "ci_low"], tab.loc["a", "ci_high"]) == pytest.approx(
        (-0.48413771175032977, 4.48413771175032938), rel=1e-12
    )


def test_group_means_single_value_warns_and_has_no_interval():
    d = pd.DataFrame({"g": ["a", "a", "b"], "y": [1.0, 2.0, 5.0]})
    with pytest.warns(StatisticalWarning, match=r"g = b has 1 value\(s\)"):
        tab = group_means(d, value="y", by=["g"]).to_frame().set_index("g")
    assert tab.loc["b", "mean"] == 5.0 and tab.loc["b", "n"] == 1
    assert np.isnan(tab.loc["b", ["sd", "se", "ci_low", "ci_high"]].to_numpy(float)).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"value": "z", "by": ["g"]}, r"column 'z' is not in the data", id="no-value"),
        pytest.param({"value": "y", "by": ["h"]}, r"column 'h' is not in the data", id="no-by"),
        pytest.param({"value": "y", "by": []}, r"at least one `by` column", id="empty-by"),
        pytest.param({"value": "y", "by": ["g"], "alpha": 1.0}, r"alpha must be in", id="alpha"),
    ],
)
def test_group_means_rejects_bad_arguments(kwargs, match):
    d = pd.DataFrame({"g": ["a", "a"], "y": [1.0, 2.0]})
    with pytest.raises(StudyvalError, match=match):
        group_means(d, **kwargs)


# ----------------------------------------------------------------- follow-up, median and range


def test_follow_up_equals_r_on_the_lung_data():
    """R 4.2, survival 3.5:
    d <- read.csv("tests/data/lung.csv"); d$e <- d$status - 1
    summary(survfit(Surv(time, 1 - e) ~ 1, data = d))$table["median"]   # 588
    median(d$time); range(d$time); sum(d$time); nrow(d)                 # 255.5; 5 1022; 69593; 228
    """
    from studyval.analysis.descriptive import follow_up

    d = pd.read_csv(DATA / "lung.csv")
    r = follow_up(d["time"], d["status"] - 1)
    assert (r.n, r.median_reverse_km, r.median_observed) == (228, 588.0, 255.5)
    assert (r.minimum, r.maximum, r.total_time) == (5.0, 1022.0, 69593.0)


def test_median_range_equals_r_and_counts_missing_values():
    """R: x <- c(3, 9, 1, 14, 6, 2); median(x); range(x)   # 4.5; 1 14"""
    from studyval.analysis.descriptive import median_range

    r = median_range([3, 9, None, 1, 14, 6, 2])
    assert (r.median, r.minimum, r.maximum, r.n, r.n_missing) == (4.5, 1.0, 14.0, 6, 1)
    with pytest.raises(StudyvalError, match="no observed value"):
        median_range([None, None])
