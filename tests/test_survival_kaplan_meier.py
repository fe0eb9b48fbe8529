"""Tests for studyval.analysis.kaplan_meier: Kaplan-Meier, log-rank, censoring KM.

Oracles
-------
* R 4.2.2 with survival 3.5-3: ``survfit``, ``summary.survfit``, ``print.survfit``
  (median and its limits) and ``survdiff``. Scalars are pasted beside the R call
  that produced them, printed with ``sprintf("%.17g", ...)``. The ``survfit``
  curves are in ``tests/data/survfit_R.csv``, written by the R code in
  :data:`SURVFIT_R_CALL`. R is a development oracle only; nothing here runs R.
* prodlim 2023 ``prodlim(Hist(t, s) ~ 1, reverse = TRUE)`` for the censoring KM.
* A second, independent oracle (lifelines) is in ``tests/test_second_oracles.py``.

Data
----
* ``tests/data/lung.csv``: R's ``survival::lung`` (public domain), exported with
  ``write.csv(survival::lung, "lung.csv", row.names = FALSE)``; ``status`` is
  1 = censored, 2 = dead, so the tests use ``status - 1``.
* ``tests/data/survival_ties.csv``: 400 synthetic subjects (numpy seed
  20261123) with integer times (36 distinct; heavy ties), two zero follow-up
  times, three strata, three groups and a rounded risk score. Columns: time,
  status (0/1), x1, x2, group, stratum, score.

Deliberate deviation from R (documented in the module): R merges floating-point
near-tied times (``aeqSurv``); we compare exactly (all times here are integers,
so they agree). Agreement with R is required to 1e-9 relative.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.kaplan_meier import (
    KaplanMeierResult,
    LogRankResult,
    _km_censoring,
    kaplan_meier,
    logrank,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9  # exact algorithms: R agreement is to rounding


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    return d


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_ties.csv")


def close(actual, expected, rel=REL, abs_=1e-12):
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=rel, atol=abs_
    )


# =========================================================================== #
# Kaplan-Meier
# =========================================================================== #
SURVFIT_R_CALL = """
for (ct in c("log", "log-log", "plain")) {
  f <- survfit(Surv(time, status) ~ sex, data = lung, conf.type = ct)      # lung: status 1/2
  st <- rep(names(f$strata), f$strata)
  out <- rbind(out, data.frame(conf_type = ct, strata = st, time = f$time, n_risk = f$n.risk,
    n_event = f$n.event, n_censor = f$n.censor, surv = f$surv, std_err = f$std.err * f$surv,
    lower = f$lower, upper = f$upper))
  f <- survfit(Surv(time, status) ~ group, data = ties, conf.type = ct)
  ... (same columns)
}
write.csv(format(out, digits = 17), "survfit_R.csv", row.names = FALSE, quote = FALSE)
"""


@pytest.fixture(scope="module")
def survfit_r() -> pd.DataFrame:
    return pd.read_csv(DATA / "survfit_R.csv", skipinitialspace=True)


@pytest.mark.parametrize("conf_type", ["log", "log-log", "plain"])
@pytest.mark.parametrize(
    ("dataset", "group_col", "prefix"),
    [
        pytest.param("lung", "sex", "sex=", id="lung-by-sex"),
        pytest.param("ties", "group", "group=", id="ties-by-group"),
    ],
)
def test_km_table_against_survfit(request, survfit_r, conf_type, dataset, group_col, prefix):
    d = request.getfixturevalue(dataset)
    r = kaplan_meier(d["time"], d["status"], groups=d[group_col], conf_type=conf_type)
    assert isinstance(r, KaplanMeierResult)
    exp = survfit_r[(survfit_r.conf_type == conf_type) & survfit_r.strata.str.startswith(prefix)]
    exp = exp.assign(group=exp.strata.str[len(prefix) :])
    got = r.to_frame().assign(group=r.to_frame().group.astype(str))
    exp = exp.sort_values(["group", "time"], kind="stable").reset_index(drop=True)
    got = got.sort_values(["group", "time"], kind="stable").reset_index(drop=True)
    assert got.group.tolist() == exp.group.tolist()
    close(got.time, exp.time)
    assert got.n_risk.tolist() == exp.n_risk.tolist()
    assert got.n_event.tolist() == exp.n_event.tolist()
    assert got.n_censor.tolist() == exp.n_censor.tolist()
    close(got.survival, exp.surv)
    # R: std.err * surv is NaN where surv = 0 (Greenwood term infinite), as ours
    np.testing.assert_allclose(got.se, exp.std_err, rtol=REL, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(got.ci_low, exp.lower, rtol=REL, atol=1e-15, equal_nan=True)
    np.testing.assert_allclose(got.ci_high, exp.upper, rtol=REL, atol=1e-15, equal_nan=True)


# print(survfit(Surv(time, status) ~ 1, data = d, conf.type = ct)): median, 0.95LCL, 0.95UCL
KM_MEDIANS = [
    pytest.param("lung", "log", [310, 285, 363], id="lung-log"),
    pytest.param("lung", "log-log", [310, 284, 361], id="lung-loglog"),
    pytest.param("lung", "plain", [310, 284, 361], id="lung-plain"),
    pytest.param("ties", "log", [5, 5, 6], id="ties-log"),
    pytest.param("ties", "log-log", [5, 5, 6], id="ties-loglog"),
    pytest.param("ties", "plain", [5, 5, 6], id="ties-plain"),
]


@pytest.mark.parametrize(("dataset", "conf_type", "expected"), KM_MEDIANS)
def test_km_median_against_print_survfit(request, dataset, conf_type, expected):
    d = request.getfixturevalue(dataset)
    r = kaplan_meier(d["time"], d["status"], conf_type=conf_type)
    m = r.medians.iloc[0]
    assert [m["median"], m["ci_low"], m["ci_high"]] == expected
    assert r.median == expected[0]


@pytest.mark.parametrize(
    ("conf_type", "expected"),
    [
        # summary(survfit(Surv(time, status) ~ sex, data = lung, conf.type = ct))$table[
        #     , c("median", "0.95LCL", "0.95UCL")]
        pytest.param("log", [270, 212, 310, 426, 348, 550], id="log"),
        pytest.param("log-log", [270, 210, 306, 426, 345, 524], id="loglog"),
        pytest.param("plain", [270, 212, 306, 426, 345, 524], id="plain"),
    ],
)
def test_km_grouped_medians_against_survfit(lung, conf_type, expected):
    r = kaplan_meier(lung["time"], lung["status"], groups=lung["sex"], conf_type=conf_type)
    got = r.medians[["median", "ci_low", "ci_high"]].to_numpy().ravel().tolist()
    assert got == expected
    with pytest.raises(StudyvalError, match="several groups"):
        _ = r.median


def test_km_median_midpoint_when_curve_sits_at_half():
    # deaths at 1, 2, 3, 4: S(2) = 0.5 exactly, next drop at 3; print.survfit reports
    # the midpoint: print(survfit(Surv(1:4, rep(1, 4)) ~ 1)) gives median 2.5, LCL 1, UCL NA
    r = kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1])
    assert r.to_frame().survival.tolist()[1] == 0.5
    assert r.median == 2.5
    assert r.medians.ci_low.iloc[0] == 1
    assert math.isnan(r.medians.ci_high.iloc[0])  # NaN = not reached, as R's NA


def test_km_at_times_against_summary_survfit(lung):
    # s <- summary(survfit(Surv(time, status) ~ 1, data = lung), times = c(0, 100, 365, 730))
    r = kaplan_meier(lung["time"], lung["status"], times=[0, 100, 365, 730])
    t = r.to_frame()
    close(t.survival, [1, 0.86396896764524356, 0.4092416244600644, 0.1156930983445392])  # s$surv
    close(t.se, [0, 0.022710230434161833, 0.035823638172037771, 0.028298197317694247])  # s$std.err
    close(t.ci_low, [1, 0.82058489208125751, 0.34472158179582657, 0.071631824961796334])  # s$lower
    close(t.ci_high, [1, 0.90964674618951225, 0.48583760354728095, 0.18685679181980688])  # s$upper
    assert t.n_risk.tolist() == [228, 196, 65, 13]  # s$n.risk
    assert t.n_event.tolist() == [0, 31, 90, 38]  # s$n.event
    assert t.n_censor.tolist() == [0, 1, 41, 14]  # s$n.censor


def test_km_at_risk(lung):
    r = kaplan_meier(lung["time"], lung["status"], groups=lung["sex"])
    ar = r.at_risk([0, 365, 10_000])
    t, s = lung["time"].to_numpy(), lung["sex"].to_numpy()
    expected = [int(np.sum((s == g) & (t >= q))) for g in (1, 2) for q in (0, 365, 10_000)]
    assert ar.n_risk.tolist() == expected
    assert list(ar.columns) == ["group", "time", "n_risk"]


def test_km_undefined_logrank_warns_and_is_none():
    with pytest.warns(
        StatisticalWarning, match="no log-rank test: the log-rank variance matrix is singular"
    ):
        r = kaplan_meier([0, 0], [1, 1], groups=["a", "b"])
    assert r.logrank is None


def test_km_logrank_attached(lung):
    r = kaplan_meier(lung["time"], lung["status"], groups=lung["sex"])
    assert isinstance(r.logrank, LogRankResult)
    close(r.logrank.chisq, 10.326741954885632)
    assert kaplan_meier(lung["time"], lung["status"]).logrank is None


def test_km_all_censored_is_flat_and_median_not_reached():
    r = kaplan_meier([1, 2, 3], [0, 0, 0])
    assert r.to_frame().survival.tolist() == [1.0, 1.0, 1.0]
    assert math.isnan(r.median)
    assert r.n_events == 0


def test_km_summary_frame_is_one_row(lung):
    f = kaplan_meier(lung["time"], lung["status"]).summary_frame()
    assert f.shape[0] == 1
    assert {"n", "n_events", "conf_type", "ci_level"} <= set(f.columns)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 15), st.booleans(), st.sampled_from(["a", "b"])),
        min_size=1,
        max_size=40,
    ),
    st.sampled_from(["log", "log-log", "plain"]),
)
def test_km_property_curve_in_unit_interval_and_non_increasing(rows, conf_type):
    t = np.array([r[0] for r in rows], float)
    e = np.array([r[1] for r in rows])
    g = np.array([r[2] for r in rows])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = kaplan_meier(t, e, groups=g, conf_type=conf_type)
    # the only acceptable warning: an undefined log-rank test on degenerate draws
    assert all("no log-rank test" in str(w.message) for w in caught)
    assert (r.logrank is None) == (bool(caught) or len(set(g)) < 2 or not e.any())
    for _, sub in r.to_frame().groupby("group"):
        s = sub.survival.to_numpy()
        assert np.all((s >= 0) & (s <= 1))
        assert np.all(np.diff(s) <= 0)
        lo, hi = sub.ci_low.to_numpy(), sub.ci_high.to_numpy()
        ok = ~np.isnan(lo)
        assert np.all(lo[ok] >= 0) and np.all(hi[ok] <= 1 + 1e-15)
        assert np.all(lo[ok] <= s[ok] + 1e-15) and np.all(hi[ok] >= s[ok] - 1e-15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            dict(time=[1, -2, 3], event=[1, 0, 1]), "time must be >= 0", id="negative-time"
        ),
        pytest.param(
            dict(time=[1, np.nan, 3], event=[1, 0, 1]), "time has 1 missing", id="nan-time"
        ),
        pytest.param(
            dict(time=[1, 2, 3], event=[1, 2, 1]),
            "event must be 0 .censored. or 1",
            id="event-code-2",
        ),
        pytest.param(dict(time=[1, 2, 3], event=[1, np.nan, 1]), "event must be 0", id="nan-event"),
        pytest.param(
            dict(time=[1, 2, 3], event=["y", "n", "y"]),
            "event must be 0/1 or boolean",
            id="string-event",
        ),
        pytest.param(
            dict(time=[1, 2, 3], event=[1, 0]), "event has 2 values but time has 3", id="length"
        ),
        pytest.param(dict(time=[], event=[]), "time is empty", id="empty"),
        pytest.param(dict(time=[[1, 2]], event=[[1, 0]]), "one-dimensional", id="2d"),
        pytest.param(dict(time=["a", "b"], event=[1, 0]), "time must be numeric", id="string-time"),
        pytest.param(
            dict(time=[1, 2], event=[1, 0], conf_type="loglog"),
            "did you mean 'log-log'",
            id="conf-type",
        ),
        pytest.param(dict(time=[1, 2], event=[1, 0], alpha=1.5), "alpha must be in", id="alpha"),
        pytest.param(
            dict(time=[1, 2], event=[1, 0], times=[3]),
            "after the last follow-up time",
            id="times-beyond",
        ),
        pytest.param(
            dict(time=[1, 2], event=[1, 0], times=[2, 1]), "strictly increasing", id="times-order"
        ),
        pytest.param(
            dict(time=[1, 2], event=[1, 0], times=[-1]), "finite and >= 0", id="times-negative"
        ),
        pytest.param(
            dict(time=[1, 2], event=[1, 0], groups=["a", None]),
            "groups has 1 missing",
            id="group-missing",
        ),
    ],
)
def test_km_errors(kwargs, match):
    kw = dict(kwargs)
    with pytest.raises(StudyvalError, match=match):
        kaplan_meier(kw.pop("time"), kw.pop("event"), **kw)


def test_km_times_beyond_follow_up_allowed_when_curve_reached_zero():
    r = kaplan_meier([1, 2], [1, 1], times=[5])
    assert r.to_frame().survival.tolist() == [0.0]
    assert r.to_frame().n_risk.tolist() == [0]


# =========================================================================== #
# Censoring KM
# =========================================================================== #
def test_km_censoring_against_prodlim_reverse():
    # t <- c(1,2,2,2,3,4,5,5); s <- c(1,1,0,0,1,0,1,0)
    # prodlim(Hist(t, s) ~ 1, reverse = TRUE)$surv at time 1..5: 1, 0.6666667, 0.6666667, 0.4444444, 0
    t = [1, 2, 2, 2, 3, 4, 5, 5]
    s = [1, 1, 0, 0, 1, 0, 1, 0]
    g = _km_censoring(t, s)
    close(g.at([1, 2, 3, 4, 5]), [1, 2 / 3, 2 / 3, 4 / 9, 0.0])
    close(g([1, 2]), [1, 2 / 3])  # call = .at
    # left-continuous: G(t-) excludes a censoring at t
    close(g.left([1, 2, 2.5, 4, 5, 6]), [1, 1, 2 / 3, 2 / 3, 4 / 9, 0.0])
    close(g.at([0, 0.5]), [1, 1])
    # survfit(Surv(t, 1 - s) ~ 1) keeps the tied deaths at risk and differs: 0.714 at t = 2
    assert not math.isclose(float(g.at(2)), 5 / 7)


def test_km_censoring_errors():
    with pytest.raises(StudyvalError, match="time must be >= 0"):
        _km_censoring([-1, 2], [1, 0])


# =========================================================================== #
# Log-rank
# =========================================================================== #
LOGRANK_CASES = [
    # s <- survdiff(Surv(time, status) ~ sex, data = lung); c(s$chisq, pchisq(...)), s$obs, s$exp, s$var
    pytest.param(
        "lung",
        "sex",
        None,
        slice(None),
        [10.326741954885632, 1, 0.0013111645203554882],
        [112, 53],
        [91.581739029572802, 73.418260970427212],
        [40.37143397964261, -40.371433979642632, -40.371433979642632, 40.371433979642653],
        id="lung-sex",
    ),
    # s <- survdiff(Surv(time, status) ~ group, data = ties)
    pytest.param(
        "ties",
        "group",
        None,
        slice(None),
        [10.329194757113109, 2, 0.0057153635037267636],
        [116, 109, 99],
        [136.20821755156854, 86.3182674559731, 101.47351499245835],
        [
            69.422609533791302,
            -31.505327159936119,
            -37.917282373855187,
            -31.505327159936119,
            55.34828501646291,
            -23.842957856526798,
            -37.917282373855187,
            -23.842957856526798,
            61.760240230381989,
        ],
        id="ties-group",
    ),
    # s <- survdiff(Surv(time, status) ~ group + strata(stratum), data = ties); rowSums(s$obs), rowSums(s$exp)
    pytest.param(
        "ties",
        "group",
        "stratum",
        slice(None),
        [12.516295405277553, 2, 0.0019147892729511659],
        [116, 109, 99],
        [139.5204154702048, 85.081251875907469, 99.398332653887721],
        [
            67.614120805085179,
            -30.898120748969209,
            -36.716000056115959,
            -30.898120748969209,
            54.139067705237082,
            -23.240946956267898,
            -36.716000056115959,
            -23.240946956267898,
            59.956947012383857,
        ],
        id="ties-group-stratified",
    ),
    # s <- survdiff(Surv(time, status) ~ ph.ecog + strata(sex), data = lung[!is.na(lung$ph.ecog), ])
    pytest.param(
        "lung",
        "ph.ecog",
        "sex",
        "ecog",
        [21.596238370451633, 3, 7.9147020565325843e-05],
        [37, 82, 44, 1],
        [54.353974339119318, 83.70258462973797, 25.716163152086008, 0.22727787905670491],
        [
            35.193496744004236,
            -26.611686881687184,
            -8.5217571577007565,
            -0.060052704616310154,
            -26.611686881687184,
            39.48872644156075,
            -12.75381597334497,
            -0.12322358652857028,
            -8.5217571577007565,
            -12.75381597334497,
            21.316889252818921,
            -0.041316121773188302,
            -0.06005270461631014,
            -0.12322358652857028,
            -0.041316121773188302,
            0.22459241291806875,
        ],
        id="lung-ecog-stratified-by-sex",
    ),
]


@pytest.mark.parametrize(
    ("dataset", "group", "strata", "rows", "test", "obs", "exp", "var"), LOGRANK_CASES
)
def test_logrank_against_survdiff(request, dataset, group, strata, rows, test, obs, exp, var):
    d = request.getfixturevalue(dataset)
    if rows == "ecog":
        d = d[d["ph.ecog"].notna()]
    r = logrank(d["time"], d["status"], d[group], strata=None if strata is None else d[strata])
    # survdiff orders groups as factor levels: sorted, as we do
    close(r.chisq, test[0])
    assert r.df == test[1]
    close(r.p_value, test[2])
    assert r.to_frame().observed.tolist() == obs
    close(r.to_frame().expected, exp)
    k = len(obs)
    close(r.variance, np.reshape(var, (k, k)))
    assert r.stratified is (strata is not None)
    chisq, p = r
    assert (chisq, p) == (r.chisq, r.p_value)


def test_logrank_identical_groups_give_zero():
    t = np.array([1, 2, 3, 4, 5, 6], float)
    e = np.array([1, 0, 1, 1, 0, 1])
    r = logrank(np.r_[t, t], np.r_[e, e], ["a"] * 6 + ["b"] * 6)
    assert abs(r.chisq) < 1e-12
    assert r.p_value == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "exc", "match"),
    [
        pytest.param(([1, 2], [1, 0], ["a", "a"]), StudyvalError, "single level", id="one-group"),
        pytest.param(([1, 2], [0, 0], ["a", "b"]), EstimationError, "no events", id="no-events"),
        pytest.param(([1, 2], [1, 0], ["a"]), StudyvalError, "groups has 1 values", id="length"),
    ],
)
def test_logrank_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        logrank(*args)


def test_risk_frame_against_R_summary_survfit(lung):
    """Cumulative incidence 1 - S with the mirrored interval, as R's summary(survfit) gives it.

    library(survival)
    s <- summary(survfit(Surv(time, status) ~ 1, data = lung, conf.type = "log-log"),
                 times = c(180, 365))
    sprintf("%.17g", c(1 - s$surv, 1 - s$upper, 1 - s$lower))
    """
    r = kaplan_meier(
        lung["time"], lung["status"], conf_type="log-log", times=[180, 365]
    ).risk_frame()
    np.testing.assert_allclose(r["risk"], [0.278329346590238, 0.5907583755399356], rtol=1e-9)
    np.testing.assert_allclose(
        r["risk_ci_low"], [0.22468530928302066, 0.5216192323530856], rtol=1e-9
    )
    np.testing.assert_allclose(
        r["risk_ci_high"], [0.34169547155433866, 0.66128573091167664], rtol=1e-9
    )
