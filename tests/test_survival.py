"""Tests for studyval.analysis.survival.

Oracles
-------
* R 4.2.2 with survival 3.5-3: ``survfit``, ``summary.survfit``, ``print.survfit``
  (median and its limits), ``survdiff``, ``coxph``, ``basehaz(centered = FALSE)``,
  ``cox.zph`` and ``concordance``. Scalars are pasted beside the R call that
  produced them, printed with ``sprintf("%.17g", ...)``. The ``survfit`` curves
  are in ``tests/data/survfit_R.csv``, written by the R code in
  :data:`SURVFIT_R_CALL`. R is a development oracle only; nothing here runs R.
* prodlim 2023 ``prodlim(Hist(t, s) ~ 1, reverse = TRUE)`` for the censoring KM.
* Brute-force O(n^2) pair loops (written here) for the concordance counts and
  the infinitesimal-jackknife variance, on random data with ties.

Data
----
* ``tests/data/lung.csv``: R's ``survival::lung`` (public domain), exported with
  ``write.csv(survival::lung, "lung.csv", row.names = FALSE)``; ``status`` is
  1 = censored, 2 = dead, so the tests use ``status - 1``. Cox fits use the 227
  complete cases of ``age, sex, ph.ecog`` (``na.omit``, as R does).
* ``tests/data/survival_ties.csv``: 400 synthetic subjects (numpy seed
  20261123) with integer times (36 distinct; heavy ties), two zero follow-up
  times, three strata, three groups and a rounded risk score. Columns: time,
  status (0/1), x1, x2, group, stratum, score.

Deliberate deviations from R (documented in the module):
* R merges floating-point near-tied times (``aeqSurv``); we compare exactly
  (all times here are integers, so they agree);
* for Uno's C the ``n_*`` counts are unweighted pairs (R's ``count`` is
  weighted); the weighted counts are checked through the private helper;
* ``predict_risk`` is the uncentred linear predictor (R centres it).

Agreement with R is required to 1e-6 relative. Cox fits converge to 1e-12
here while R stops at its default 1e-9, so Cox-based numbers use ``REL_FIT``.
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

from studyval.analysis.survival import (
    ConcordanceResult,
    CoxResult,
    KaplanMeierResult,
    LogRankResult,
    ZPHResult,
    _concordance_counts,
    _km_censoring,
    _pair_sums,
    cox,
    cox_zph,
    harrell_c,
    kaplan_meier,
    logrank,
    uno_c,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9  # exact algorithms: R agreement is to rounding
REL_FIT = 1e-6  # iterative fits (R stops at eps = 1e-9 on the log-likelihood)


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    return d


@pytest.fixture(scope="module")
def lungcc(lung) -> pd.DataFrame:
    return lung.dropna(subset=["age", "sex", "ph.ecog"]).reset_index(drop=True)


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
    got = r.table.assign(group=r.table.group.astype(str))
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
    assert r.table.survival.tolist()[1] == 0.5
    assert r.median == 2.5
    assert r.medians.ci_low.iloc[0] == 1
    assert math.isnan(r.medians.ci_high.iloc[0])  # NaN = not reached, as R's NA


def test_km_at_times_against_summary_survfit(lung):
    # s <- summary(survfit(Surv(time, status) ~ 1, data = lung), times = c(0, 100, 365, 730))
    r = kaplan_meier(lung["time"], lung["status"], times=[0, 100, 365, 730])
    t = r.table
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
    assert r.table.survival.tolist() == [1.0, 1.0, 1.0]
    assert math.isnan(r.median)
    assert r.n_events == 0


def test_km_to_frame_is_one_row(lung):
    f = kaplan_meier(lung["time"], lung["status"]).to_frame()
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
    for _, sub in r.table.groupby("group"):
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
    assert r.table.survival.tolist() == [0.0]
    assert r.table.n_risk.tolist() == [0]


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
    assert r.table.observed.tolist() == obs
    close(r.table.expected, exp)
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


# =========================================================================== #
# Cox regression
# =========================================================================== #
COX_LUNG = [
    # lungcc <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
    # f <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lungcc, ties = tt)
    # coef(f); sqrt(diag(vcov(f))); f$loglik; c(2 * diff(f$loglik), f$wald.test, f$score)
    # f$concordance[c("concordance", "std")]
    pytest.param(
        "efron",
        [0.011066764560073482, -0.55261239570363097, 0.46372847537042766],
        [0.0092674110137005283, 0.1677390537872635, 0.11357726616199662],
        [-744.48045576144023, -729.23012137486194],
        [30.500668773156576, 29.929251209204654, 30.499922704949103],
        [0.63713549300045491, 0.02506797385307958],
        id="lung-efron",
    ),
    pytest.param(
        "breslow",
        [0.011041136349488499, -0.55188956978759729, 0.46294704059016395],
        [0.0092667701135355496, 0.16774244802101848, 0.11357405206130104],
        [-744.69281926616088, -729.48870517677403],
        [30.408228178773697, 29.839000839660855, 30.406406915329907],
        [0.63713549300045491, 0.02506797385307958],
        id="lung-breslow",
    ),
]


def _check_cox(r: CoxResult, coef, se, loglik, tests, conc):
    close(r.coef, coef, rel=REL_FIT)
    close(r.summary.se, se, rel=REL_FIT)
    close([r.loglik_null, r.loglik], loglik, rel=REL_FIT)
    close([r.lr_chisq, r.wald_chisq, r.score_chisq], tests, rel=REL_FIT)
    close([r.concordance, r.concordance_se], conc, rel=REL_FIT)
    assert r.converged


@pytest.mark.parametrize(("ties_", "coef", "se", "loglik", "tests", "conc"), COX_LUNG)
def test_cox_against_coxph_lung(lungcc, ties_, coef, se, loglik, tests, conc):
    r = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    _check_cox(r, coef, se, loglik, tests, conc)
    assert (r.n, r.n_events) == (227, 164)
    s = r.summary
    assert s.term.tolist() == ["age", "sex", "ph.ecog"]
    close(s.hr, np.exp(coef), rel=REL_FIT)
    z = 1.959963984540054
    close(s.ci_low, np.exp(np.array(coef) - z * np.array(se)), rel=REL_FIT)
    close(s.z, np.array(coef) / np.array(se), rel=REL_FIT)
    assert r.lr_df == r.wald_df == r.score_df == 3


@pytest.mark.parametrize(
    ("ties_", "times", "cumhaz"),
    [
        # b <- basehaz(f, centered = FALSE); b[c(1, 2, 50, 100, nrow(b)), ]   (f as in COX_LUNG)
        pytest.param(
            "efron",
            [5, 11, 183, 291, 1022],
            [
                0.0027628150737671994,
                0.011118182538997462,
                0.22972388526218432,
                0.4203096281249179,
                2.0776278804164319,
            ],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [5, 11, 183, 291, 1022],
            [
                0.0027674348818464106,
                0.011085385781228019,
                0.22960877685886605,
                0.42030805198158366,
                2.0785843171506539,
            ],
            id="breslow",
        ),
    ],
)
def test_cox_baseline_hazard_against_basehaz(lungcc, ties_, times, cumhaz):
    r = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    bh = r.baseline_hazard
    assert bh.shape[0] == lungcc.time.nunique()  # one row per distinct time, as basehaz
    idx = [0, 1, 49, 99, bh.shape[0] - 1]
    close(bh.time.to_numpy()[idx], times)
    close(bh.cumhaz.to_numpy()[idx], cumhaz, rel=REL_FIT)


def test_cox_stratified_against_coxph_lung(lungcc):
    # f <- coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lungcc)
    r = cox(lungcc, duration="time", event="status", covariates=["age", "ph.ecog"], strata="sex")
    _check_cox(
        r,
        [0.01056625460094952, 0.4624244343582905],  # coef(f)
        [0.0092413738930921807, 0.11476109785480394],  # sqrt(diag(vcov(f)))
        [-638.50976498423643, -628.77093950120525],  # f$loglik
        [
            19.477650966062356,
            19.625946217914837,
            19.957499743694065,
        ],  # c(2*diff(f$loglik), f$wald.test, f$score)
        [0.60584918283475098, 0.026523885144639974],  # f$concordance[c("concordance", "std")]
    )
    # b <- basehaz(f, centered = FALSE); b[c(1, 2, 50, nrow(b)), ]  strata: sex=1, sex=1, sex=1, sex=2
    bh = r.baseline_hazard
    idx = [0, 1, 49, bh.shape[0] - 1]
    assert bh.strata.to_numpy()[idx].tolist() == [1, 1, 1, 2]
    close(bh.time.to_numpy()[idx], [11, 12, 212, 965])
    close(
        bh.cumhaz.to_numpy()[idx],
        [0.0068052875574216793, 0.0091122916461164553, 0.17630278552298623, 0.80070789651694652],
        rel=REL_FIT,
    )


COX_TIES = [
    # f <- coxph(Surv(time, status) ~ x1 + x2, data = ties, ties = tt)   (integer times, two zero times)
    pytest.param(
        "efron",
        None,
        [0.55558561017224095, -0.41996536635811293],
        [0.058057427738003049, 0.11263058763160817],
        [-1690.1412038563494, -1640.5983898072031],
        [99.085628098292545, 98.33767048968987, 99.67056203834936],
        [0.66632231404958675, 0.017451199290718571],
        id="ties-efron",
    ),
    pytest.param(
        "breslow",
        None,
        [0.50850534284169413, -0.386204859587157],
        [0.057271748109977531, 0.1125447066225405],
        [-1709.027183936973, -1666.3807194005351],
        [85.292929072875722, 84.891667279063881, 85.866410122605416],
        [0.66632231404958675, 0.017451199290718571],
        id="ties-breslow",
    ),
    # f <- coxph(Surv(time, status) ~ x1 + x2 + strata(stratum), data = ties, ties = tt)
    pytest.param(
        "efron",
        "stratum",
        [0.55831201756438076, -0.45662754448885012],
        [0.058787405576893971, 0.11430310467888177],
        [-1341.3888027126202, -1291.7272506361394],
        [99.323104152961605, 98.685269446209702, 100.52765279704293],
        [0.66795905031583536, 0.018090559552315047],
        id="ties-strata-efron",
    ),
    pytest.param(
        "breslow",
        "stratum",
        [0.51031559232347834, -0.42012541731382386],
        [0.05796159724977467, 0.11411041628246156],
        [-1360.7690364920552, -1318.0423721830603],
        [85.453328617989882, 85.14354341441279, 86.492495552704028],
        [0.66795905031583536, 0.018090559552315047],
        id="ties-strata-breslow",
    ),
]


@pytest.mark.parametrize(("ties_", "strata", "coef", "se", "loglik", "tests", "conc"), COX_TIES)
def test_cox_against_coxph_heavy_ties(ties, ties_, strata, coef, se, loglik, tests, conc):
    r = cox(
        ties, duration="time", event="status", covariates=["x1", "x2"], ties=ties_, strata=strata
    )
    _check_cox(r, coef, se, loglik, tests, conc)


@pytest.mark.parametrize(
    ("ties_", "cumhaz"),
    [
        # b <- basehaz(f, centered = FALSE); b[c(1, 2, 30, nrow(b)), ]  (f stratified, as COX_TIES); strata A, A, B, C
        pytest.param(
            "efron",
            [0.0067417084851546577, 0.1734460441561709, 0.5432091761577853, 3.2211124454617068],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [0.0068467951203952677, 0.15861869878608451, 0.48917454908886915, 2.9483060608676124],
            id="breslow",
        ),
    ],
)
def test_cox_stratified_baseline_with_zero_times(ties, ties_, cumhaz):
    r = cox(
        ties, duration="time", event="status", covariates=["x1", "x2"], ties=ties_, strata="stratum"
    )
    bh = r.baseline_hazard
    idx = [0, 1, 29, bh.shape[0] - 1]
    assert bh.strata.to_numpy()[idx].tolist() == ["A", "A", "B", "C"]
    close(bh.time.to_numpy()[idx], [0, 1, 3, 37])
    close(bh.cumhaz.to_numpy()[idx], cumhaz, rel=REL_FIT)


def test_cox_predictions_consistent_with_baseline(ties):
    r = cox(ties, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
    lp = r.predict_risk(ties)
    close(lp, ties[["x1", "x2"]].to_numpy() @ r.coef)
    risk10 = r.predict_risk_at(ties, 10)
    bh = r.baseline_hazard
    for s in ["A", "B", "C"]:
        sub = bh[(bh.strata == s) & (bh.time <= 10)]
        h0 = sub.cumhaz.iloc[-1]
        m = (ties.stratum == s).to_numpy()
        close(risk10[m], 1 - np.exp(-h0 * np.exp(lp[m])))
    surv = r.predict_survival(ties.iloc[:3], [0, 5, 10])
    assert surv.shape == (3, 3)
    assert np.all(np.diff(surv, axis=1) <= 0)
    with pytest.raises(StudyvalError, match="stratum 'Z' was not in the data"):
        r.predict_risk_at(ties.assign(stratum="Z").iloc[:2], 10)


def test_cox_several_strata_columns_are_crossed(ties):
    d = ties.assign(half=(ties.x1 > 0).astype(int))
    both = cox(d, duration="time", event="status", covariates=["x2"], strata=["stratum", "half"])
    crossed = d.assign(s=d.stratum + ", " + d.half.astype(str))
    one = cox(crossed, duration="time", event="status", covariates=["x2"], strata="s")
    close(both.coef, one.coef, rel=1e-12)
    assert both.strata == ("stratum", "half")
    assert sorted(set(both.baseline_hazard.strata)) == [
        "A, 0",
        "A, 1",
        "B, 0",
        "B, 1",
        "C, 0",
        "C, 1",
    ]
    close(both.predict_risk_at(d, 5), one.predict_risk_at(crossed, 5), rel=1e-12)


def test_cox_row_order_invariance(ties):
    a = cox(ties, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
    shuffled = ties.sample(frac=1.0, random_state=7)
    b = cox(shuffled, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
    close(b.coef, a.coef, rel=1e-10)
    close(b.variance, a.variance, rel=1e-9)
    close(
        [b.loglik, b.score_chisq, b.concordance],
        [a.loglik, a.score_chisq, a.concordance],
        rel=1e-10,
    )
    pd.testing.assert_frame_equal(a.baseline_hazard, b.baseline_hazard, rtol=1e-10)


def test_cox_bool_covariate_and_to_frame(lungcc):
    d = lungcc.assign(female=lungcc["sex"] == 2)
    r = cox(d, duration="time", event="status", covariates=["age", "female", "ph.ecog"])
    close(r.coef[1], -0.55261239570363097, rel=REL_FIT)  # female = sex - 1: coef(f)["sex"]
    f = r.to_frame()
    assert f.shape[0] == 1 and "score_chisq" in f.columns and "summary" not in f.columns


def test_cox_monotone_likelihood_warns_and_flags():
    # every event is in group x = 1: the MLE of beta is +infinity
    d = pd.DataFrame(
        {
            "time": [1, 2, 3, 4, 5, 6, 7, 8],
            "status": [1, 1, 1, 0, 0, 0, 0, 0],
            "x": [1, 1, 1, 1, 0, 0, 0, 0],
        }
    )
    with pytest.warns(StatisticalWarning, match="may be infinite|no convergence"):
        r = cox(d, duration="time", event="status", covariates=["x"])
    assert r.converged is False


def test_cox_iteration_limit_warns(lungcc):
    with pytest.warns(StatisticalWarning, match="no convergence in 1 iterations"):
        r = cox(lungcc, duration="time", event="status", covariates=["age", "sex"], max_iter=1)
    assert r.converged is False


def test_cox_converged_fit_emits_no_warning(lungcc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cox(lungcc, duration="time", event="status", covariates=["age", "sex"])


def _lung_bad(lungcc, **changes):
    d = lungcc.copy()
    for k, v in changes.items():
        d[k] = v
    return d


@pytest.mark.parametrize(
    ("mutate", "kwargs", "exc", "match"),
    [
        pytest.param(
            None,
            dict(covariates=["agee"]),
            StudyvalError,
            "did you mean 'age'",
            id="missing-column",
        ),
        pytest.param(
            None,
            dict(duration="tme", covariates=["age"]),
            StudyvalError,
            "duration column 'tme' is not in the data",
            id="missing-duration",
        ),
        pytest.param(
            "string-cov",
            dict(covariates=["age", "grp"]),
            StudyvalError,
            "covariate 'grp' is not numeric",
            id="non-numeric",
        ),
        pytest.param(
            "nan-cov",
            dict(covariates=["age", "sex"]),
            StudyvalError,
            r"column 'age' has 1 missing value\(s\) at row\(s\) with index 5",
            id="nan-covariate",
        ),
        pytest.param(
            "nan-time",
            dict(covariates=["age"]),
            StudyvalError,
            "column 'time' has 1 missing",
            id="nan-time",
        ),
        pytest.param(
            "neg-time",
            dict(covariates=["age"]),
            StudyvalError,
            "duration column 'time' must be >= 0",
            id="negative-time",
        ),
        pytest.param(
            "event-2",
            dict(covariates=["age"]),
            StudyvalError,
            "event column 'status' must be 0",
            id="event-code",
        ),
        pytest.param(
            "censored",
            dict(covariates=["age"]),
            EstimationError,
            "no events in column 'status'",
            id="all-censored",
        ),
        pytest.param(
            "const",
            dict(covariates=["age", "one"]),
            EstimationError,
            "covariate 'one' is constant",
            id="constant",
        ),
        pytest.param(
            "collinear",
            dict(covariates=["age", "sex", "age2"]),
            EstimationError,
            "collinear",
            id="collinear",
        ),
        pytest.param(
            None,
            dict(covariates=["age"], ties="exact"),
            StudyvalError,
            "ties='exact' is not one of",
            id="ties-option",
        ),
        pytest.param(
            None, dict(covariates=[]), StudyvalError, "covariates is empty", id="no-covariates"
        ),
        pytest.param(
            None, dict(covariates=["age", "age"]), StudyvalError, "more than once", id="duplicate"
        ),
        pytest.param(
            None,
            dict(covariates=["age", "status"]),
            StudyvalError,
            "also the duration or event",
            id="event-as-covariate",
        ),
        pytest.param(
            None,
            dict(covariates=["age", "sex"], strata="sex"),
            StudyvalError,
            "both a covariate and a stratum",
            id="strata-covariate",
        ),
        pytest.param(
            None,
            dict(covariates=["age"], max_iter=0),
            StudyvalError,
            "max_iter must be",
            id="max-iter",
        ),
        pytest.param(
            None, dict(covariates=["age"], tol=0.5), StudyvalError, "tol must be", id="tol"
        ),
    ],
)
def test_cox_errors(lungcc, mutate, kwargs, exc, match):
    d = lungcc.copy()
    if mutate == "string-cov":
        d["grp"] = np.where(d["sex"] == 1, "m", "f")
    elif mutate == "nan-cov":
        d.loc[5, "age"] = np.nan
    elif mutate == "nan-time":
        d.loc[3, "time"] = np.nan
    elif mutate == "neg-time":
        d.loc[3, "time"] = -1
    elif mutate == "event-2":
        d.loc[3, "status"] = 2
    elif mutate == "censored":
        d["status"] = 0
    elif mutate == "const":
        d["one"] = 1.0
    elif mutate == "collinear":
        d["age2"] = 2 * d["age"] - d["sex"]
    kw = dict(duration="time", event="status")
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        cox(d, **kw)


def test_cox_rejects_non_dataframe():
    with pytest.raises(StudyvalError, match="must be a pandas DataFrame"):
        cox({"time": [1]}, duration="time", event="status", covariates=["x"])


def test_cox_zero_time_allowed():
    # coxph(Surv(time, status) ~ x, data = d) accepts a zero time; here it is the first event
    d = pd.DataFrame(
        {
            "time": [0, 1, 2, 3, 4, 5, 6],
            "status": [1, 1, 0, 1, 1, 0, 1],
            "x": [0.0, 2, 1, 0, 1, 2, 0],
        }
    )
    r = cox(d, duration="time", event="status", covariates=["x"])
    assert r.converged and r.n_events == 5
    assert r.baseline_hazard.time.iloc[0] == 0


# =========================================================================== #
# cox.zph
# =========================================================================== #
ZPH_LUNG = [
    # f as in COX_LUNG; cox.zph(f, transform = tr)$table[, "chisq"]   (age, sex, ph.ecog, GLOBAL)
    pytest.param(
        "efron",
        "km",
        [0.18798767365229005, 2.3054372274049735, 2.0542487740544062, 4.4636575887586147],
        id="efron-km",
    ),
    pytest.param(
        "efron",
        "rank",
        [0.11729150699015248, 2.0446946802356694, 2.544878392625574, 4.7106801412887682],
        id="efron-rank",
    ),
    pytest.param(
        "efron",
        "identity",
        [0.15235031725392031, 2.4919132171065668, 1.5782352383767626, 4.1193829514794782],
        id="efron-identity",
    ),
    pytest.param(
        "breslow",
        "km",
        [0.18808566115433495, 2.2971973549338056, 2.0517086117404637, 4.4510123337692953],
        id="breslow-km",
    ),
    pytest.param(
        "breslow",
        "rank",
        [0.11768973760127405, 2.0363214289968741, 2.5414104756538367, 4.6969177601550847],
        id="breslow-rank",
    ),
    pytest.param(
        "breslow",
        "identity",
        [0.15214913429209084, 2.4846004873513303, 1.5772581716958467, 4.1097342369287935],
        id="breslow-identity",
    ),
]


@pytest.mark.parametrize(("ties_", "transform", "chisq"), ZPH_LUNG)
def test_cox_zph_against_r_lung(lungcc, ties_, transform, chisq):
    f = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    z = cox_zph(f, transform=transform, data=lungcc)
    assert isinstance(z, ZPHResult)
    assert z.table.term.tolist() == ["age", "sex", "ph.ecog", "GLOBAL"]
    close(z.table.chisq, chisq, rel=REL_FIT)
    assert z.table.df.tolist() == [1, 1, 1, 3]
    assert z.global_chisq == z.table.chisq.iloc[-1]


@pytest.mark.parametrize(
    ("ties_", "y1", "y3", "ylast"),
    [
        # z <- cox.zph(f); z$y[1, ]; z$y[3, ]; z$y[nrow(z$y), ]; z$x[1:3] = 0, 0.004405286343612369 (x2)
        pytest.param(
            "efron",
            [0.059655251537313235, 3.0058950037255063, -2.2292645718606714],
            [0.28519769775925169, -1.5981262258729818, -2.5603138790765634],
            [-0.0538106111197591, -1.4082486161865355, -0.58187342849312684],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [0.059760669898863847, 3.0064155449448009, -2.2292549331716751],
            [0.28436457062518961, -1.5883334689961268, -2.559817904039916],
            [-0.053790522327245585, -1.4083286919860707, -0.58209380112565645],
            id="breslow",
        ),
    ],
)
def test_cox_zph_scaled_residuals_against_r(lungcc, ties_, y1, y3, ylast):
    f = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    res = cox_zph(f, data=lungcc).residuals
    assert res.shape[0] == f.n_events
    close(res.g_time.to_numpy()[:3], [0, 0.004405286343612369, 0.004405286343612369])
    cols = ["age", "sex", "ph.ecog"]
    close(res[cols].to_numpy()[0], y1, rel=1e-5)
    close(res[cols].to_numpy()[2], y3, rel=1e-5)
    close(res[cols].to_numpy()[-1], ylast, rel=1e-5)


@pytest.mark.parametrize(
    ("ties_", "strata", "transform", "chisq"),
    [
        # cox.zph(coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lungcc))$table[, "chisq"]
        pytest.param(
            "efron",
            "sex",
            "km",
            [0.13347072386267109, 2.1824006894795942, 2.2004789020799436],
            id="lung-strata",
        ),
    ],
)
def test_cox_zph_stratified_lung(lungcc, ties_, strata, transform, chisq):
    f = cox(
        lungcc,
        duration="time",
        event="status",
        covariates=["age", "ph.ecog"],
        strata=strata,
        ties=ties_,
    )
    z = cox_zph(f, transform=transform, data=lungcc)
    close(z.table.chisq, chisq, rel=REL_FIT)
    # z$y[1, ] = 0.12180430491928404, 1.897680727160219
    close(
        z.residuals[["age", "ph.ecog"]].to_numpy()[0],
        [0.12180430491928404, 1.897680727160219],
        rel=1e-5,
    )
    assert "strata" in z.residuals.columns


@pytest.mark.parametrize(
    ("ties_", "strata", "transform", "chisq"),
    [
        # cox.zph(coxph(Surv(time, status) ~ x1 + x2, data = ties, ties = tt), transform = tr)$table[, "chisq"]
        pytest.param(
            "efron",
            None,
            "km",
            [0.1582169407616987, 0.31837415330575258, 0.5544402522720997],
            id="efron",
        ),
        pytest.param(
            "breslow",
            None,
            "km",
            [0.23583936970124575, 0.42018954074950504, 0.7536738310977743],
            id="breslow",
        ),
        # ... + strata(stratum)
        pytest.param(
            "efron",
            "stratum",
            "km",
            [0.061159217334961345, 0.72858569422370401, 0.8533156290403574],
            id="strata-efron-km",
        ),
        pytest.param(
            "efron",
            "stratum",
            "rank",
            [0.064216376384890236, 0.72693332030204116, 0.85647291147999904],
            id="strata-efron-rank",
        ),
        pytest.param(
            "breslow",
            "stratum",
            "km",
            [0.12367688691492522, 0.86871372398283553, 1.0740837810705757],
            id="strata-breslow-km",
        ),
        pytest.param(
            "breslow",
            "stratum",
            "rank",
            [0.12610762497074085, 0.869125788212746, 1.0786843517801583],
            id="strata-breslow-rank",
        ),
    ],
)
def test_cox_zph_against_r_heavy_ties(ties, ties_, strata, transform, chisq):
    f = cox(
        ties, duration="time", event="status", covariates=["x1", "x2"], strata=strata, ties=ties_
    )
    z = cox_zph(f, transform=transform, data=ties)
    close(z.table.chisq, chisq, rel=REL_FIT)


def test_cox_zph_warns_on_unconverged_fit(lungcc):
    with pytest.warns(StatisticalWarning, match="no convergence"):
        f = cox(lungcc, duration="time", event="status", covariates=["age", "sex"], max_iter=1)
    with pytest.warns(StatisticalWarning, match="did not converge"):
        cox_zph(f, data=lungcc)


def test_cox_zph_errors(lungcc):
    f = cox(lungcc, duration="time", event="status", covariates=["age", "sex"])
    with pytest.raises(StudyvalError, match="pass the data the model was fitted on"):
        cox_zph(f, data=lungcc.iloc[:-1])
    with pytest.raises(StudyvalError, match="reproduce the fit"):
        cox_zph(f, data=lungcc.assign(age=lungcc["age"] + lungcc["sex"]))
    with pytest.raises(StudyvalError, match="did you mean 'rank'"):
        cox_zph(f, transform="ranks", data=lungcc)
    with pytest.raises(StudyvalError, match="must be a CoxResult"):
        cox_zph("fit", data=lungcc)


# =========================================================================== #
# Concordance
# =========================================================================== #
HARRELL_CASES = [
    # fit <- concordance(Surv(time, status) ~ age, data = lung, reverse = TRUE)
    # c(fit$concordance, sqrt(fit$var), fit$count)
    pytest.param(
        "lung",
        "age",
        None,
        None,
        [0.5502398321175177, 0.025142111594332901, 10717, 8706, 591, 27, 1],
        id="lung-age",
    ),
    # concordance(Surv(time, status) ~ ph.karno, data = lung[!is.na(lung$ph.karno), ], reverse = TRUE)
    pytest.param(
        "lung",
        "ph.karno",
        None,
        "karno",
        [0.40221346270466951, 0.025951192367640288, 5741, 9611, 4436, 23, 5],
        id="lung-karno-heavy-risk-ties",
    ),
    # concordance(Surv(time, status) ~ age + strata(sex), data = lung, reverse = TRUE); colSums(fit$count)
    pytest.param(
        "lung",
        "age",
        "sex",
        None,
        [0.54589622641509439, 0.025881035226620146, 4382 + 1249, 3502 + 1156, 239 + 72, 15 + 2, 0],
        id="lung-age-strata",
    ),
    # concordance(Surv(time, status) ~ score, data = ties, reverse = TRUE)
    pytest.param(
        "ties",
        "score",
        None,
        None,
        [0.60830013675010408, 0.01770817497207074, 40123, 25551, 1602, 4568, 119],
        id="ties-score",
    ),
    # concordance(Surv(time, status) ~ score + strata(stratum), data = ties, reverse = TRUE); colSums(fit$count)
    pytest.param(
        "ties",
        "score",
        "stratum",
        None,
        [
            0.6022217381834023,
            0.01808066262594785,
            5812 + 5310 + 2424,
            3725 + 3470 + 1658,
            226 + 222 + 108,
            625 + 743 + 219,
            22 + 16 + 6,
        ],
        id="ties-score-strata",
    ),
]


@pytest.mark.parametrize(("dataset", "risk", "strata", "rows", "expected"), HARRELL_CASES)
def test_harrell_c_against_concordance(request, dataset, risk, strata, rows, expected):
    d = request.getfixturevalue(dataset)
    if rows == "karno":
        d = d[d["ph.karno"].notna()]
    r = harrell_c(d["time"], d["status"], d[risk], strata=None if strata is None else d[strata])
    assert isinstance(r, ConcordanceResult)
    close([r.estimate, r.se], expected[:2])
    assert [
        r.n_concordant,
        r.n_discordant,
        r.n_tied_risk,
        r.n_tied_time,
        r.n_tied_both,
    ] == expected[2:]
    assert r.comparable_pairs == sum(expected[2:5])
    assert r.method == "Harrell" and r.tau is None
    est, lo, hi = r
    assert lo < est < hi


UNO_CASES = [
    # fit <- concordance(Surv(time, status) ~ age, data = lung, reverse = TRUE, timewt = "n/G2", ymax = 365)
    # c(fit$concordance, sqrt(fit$var), fit$count)   (count is IPCW-weighted in R)
    pytest.param(
        "lung",
        "age",
        365,
        None,
        [
            0.54862364868330182,
            0.025666109785787219,
            11498.947829916102,
            9404.9768077522313,
            628.50946453605366,
            30.24190915501833,
            0,
        ],
        id="lung-age-365",
    ),
    # concordance(Surv(time, status) ~ ph.karno, data = lung[!is.na(lung$ph.karno), ],
    #             reverse = TRUE, timewt = "n/G2", ymax = 500)
    pytest.param(
        "lung",
        "ph.karno",
        500,
        "karno",
        [
            0.41712960825808121,
            0.025455754201365661,
            7087.1550254842487,
            10965.536605292049,
            5347.5934305405844,
            25.291124781454513,
            7.0126034422568031,
        ],
        id="lung-karno-500",
    ),
    # concordance(Surv(time, status) ~ score, data = ties, reverse = TRUE, timewt = "n/G2", ymax = 10)
    pytest.param(
        "ties",
        "score",
        10,
        None,
        [
            0.60910602568694183,
            0.017914253607821659,
            41070.79553561216,
            26068.554176122525,
            1611.3964777360709,
            4739.3630914979021,
            115.19299286460364,
        ],
        id="ties-score-10",
    ),
]


@pytest.mark.parametrize(("dataset", "risk", "tau", "rows", "expected"), UNO_CASES)
def test_uno_c_against_concordance_n_g2(request, dataset, risk, tau, rows, expected):
    d = request.getfixturevalue(dataset)
    if rows == "karno":
        d = d[d["ph.karno"].notna()]
    t, e, x = d["time"].to_numpy(float), d["status"].to_numpy(), d[risk].to_numpy(float)
    r = uno_c(t, e, x, tau=tau)
    close([r.estimate, r.se], expected[:2])
    assert r.method == "Uno" and r.tau == tau
    # R's weighted counts, through the same private routine and Uno's weights 1 / G(T-)^2
    g = _km_censoring(t, e)
    w = np.where((t <= tau) & (e == 1), 1.0 / g.left(t) ** 2, 0.0)
    c = _concordance_counts(t, e, x, w)
    close(
        [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both], expected[2:], abs_=1e-9
    )
    # unweighted counts: comparable pairs with an event at or before tau
    u = _concordance_counts(t, e, x, (t <= tau).astype(float))
    assert [r.n_concordant, r.n_discordant, r.n_tied_risk] == [
        round(u.concordant),
        round(u.discordant),
        round(u.tied_risk),
    ]


def _brute_concordance(t, e, x, w=None):
    """O(n^2) reference: counts, estimate and the IJ standard error of survival::concordance.

    Returns (estimate, se, counts); estimate and se are None without comparable pairs.
    """
    n = len(t)
    w = np.ones(n) if w is None else w
    conc = disc = tie = ty = txy = 0.0
    ic = np.zeros(n)
    idd = np.zeros(n)
    it = np.zeros(n)
    for i in range(n):
        if not e[i]:
            continue
        for j in range(n):
            if j == i:
                continue
            if t[j] > t[i] or (t[j] == t[i] and not e[j]):
                wt = w[i]
                if x[i] > x[j]:
                    conc += wt
                    ic[i] += wt
                    ic[j] += wt
                elif x[i] < x[j]:
                    disc += wt
                    idd[i] += wt
                    idd[j] += wt
                else:
                    tie += wt
                    it[i] += wt
                    it[j] += wt
            elif t[j] == t[i] and e[j] and j > i:
                if x[i] == x[j]:
                    txy += w[i]
                else:
                    ty += w[i]
    counts = [conc, disc, tie, ty, txy]
    npair = conc + disc + tie
    if npair == 0:
        return None, None, counts
    somer = (conc - disc) / npair
    dfb = (ic - idd) / npair - somer / npair * (ic + idd + it)
    return (somer + 1) / 2, math.sqrt(np.sum(dfb**2) / 4), counts


def _quiet_c(fn, *args, **kwargs):
    """Call a C-index function; the only warning allowed is the one for a zero SE."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fn(*args, **kwargs)
    assert all(issubclass(w.category, StatisticalWarning) for w in caught)
    assert any("standard error is 0" in str(w.message) for w in caught) == (r.se == 0)
    return r


def test_harrell_c_zero_se_warns():
    # a constant risk: every comparable pair is tied, C = 0.5 with IJ variance 0
    with pytest.warns(StatisticalWarning, match="standard error is 0"):
        r = harrell_c([1, 2, 3, 4], [1, 1, 0, 1], [2.0, 2.0, 2.0, 2.0])
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == (0.5, 0.0, 0.5, 0.5)
    assert r.n_tied_risk == r.comparable_pairs == 5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.booleans(), st.integers(-3, 3)), min_size=2, max_size=35
    ),
)
def test_harrell_c_against_brute_force_with_ties(rows):
    t = np.array([r[0] for r in rows], float)
    e = np.array([r[1] for r in rows])
    x = np.array([r[2] for r in rows], float)
    est, se, counts = _brute_concordance(t, e, x)
    if est is None:
        with pytest.raises(EstimationError):
            harrell_c(t, e.astype(int), x)
        return
    r = _quiet_c(harrell_c, t, e.astype(int), x)
    close([r.estimate, r.se], [est, se], rel=1e-9, abs_=1e-12)
    assert [r.n_concordant, r.n_discordant, r.n_tied_risk, r.n_tied_time, r.n_tied_both] == counts


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.booleans(), st.integers(-3, 3)), min_size=2, max_size=30
    ),
    st.integers(1, 8),
)
def test_uno_weighted_counts_against_brute_force(rows, tau):
    t = np.array([r[0] for r in rows], float)
    e = np.array([r[1] for r in rows]).astype(int)
    x = np.array([r[2] for r in rows], float)
    g = _km_censoring(t, e)
    with np.errstate(divide="ignore"):
        w = np.where((t <= tau) & (e == 1), 1.0 / g.left(t) ** 2, 0.0)
    if not np.isfinite(w).all():  # G(T-) = 0 cannot happen before the last time
        raise AssertionError("infinite IPCW weight")
    c = _concordance_counts(t, e, x, w)
    counts = _brute_concordance(t, e, x, w)[2]
    close(
        [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both],
        counts,
        rel=1e-9,
        abs_=1e-9,
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 60), st.integers(0, 10_000))
def test_harrell_c_property_reversed_risk(n, seed):
    rng = np.random.default_rng(seed)
    t = rng.permutation(n).astype(float) + 1  # no tied times
    e = rng.integers(0, 2, n)
    e[0] = 1
    x = rng.permutation(n).astype(float)  # no tied risks
    try:
        a = _quiet_c(harrell_c, t, e, x)
    except EstimationError:
        return
    b = _quiet_c(harrell_c, t, e, -x)
    assert b.estimate == pytest.approx(1 - a.estimate, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9, abs=1e-15)
    # invariant to a monotone transform of the risk
    c = _quiet_c(harrell_c, t, e, np.exp(x / n))
    assert c.estimate == a.estimate


def test_pair_sums_against_brute_force():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 33, 128):
        r = rng.integers(0, max(1, n // 2), n)
        v = rng.random(n)
        perm = rng.permutation(n)
        a, b = _pair_sums(perm, r, v)
        pos = np.empty(n, int)
        pos[perm] = np.arange(n)
        for i in range(n):
            before = pos < pos[i]
            after = pos > pos[i]
            assert a[i] == np.sum(before & (r < r[i]))
            assert b[i] == pytest.approx(np.sum(v[after & (r > r[i])]), abs=1e-12)


def test_uno_with_one_event_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = uno_c([1, 2, 3, 4], [1, 0, 0, 0], [4, 3, 2, 1], tau=10)
    messages = [str(w.message) for w in caught]
    assert any("fewer than two events" in m for m in messages)
    assert any("standard error is 0" in m for m in messages)  # one event: perfect ordering
    assert r.estimate == 1.0


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "exc", "match"),
    [
        pytest.param(
            harrell_c,
            ([1, 2], [0, 0], [1, 2]),
            {},
            EstimationError,
            "no events",
            id="harrell-no-events",
        ),
        pytest.param(
            harrell_c,
            ([1, 1], [1, 1], [1, 2]),
            {},
            EstimationError,
            "no comparable pairs",
            id="harrell-no-pairs",
        ),
        pytest.param(
            harrell_c,
            ([1, 2], [1, 0], [1, np.nan]),
            {},
            StudyvalError,
            "risk has 1 non-finite",
            id="risk-nan",
        ),
        pytest.param(
            harrell_c,
            ([1, 2], [1, 0], [1, 2, 3]),
            {},
            StudyvalError,
            "risk has 3 values but time has 2",
            id="risk-length",
        ),
        pytest.param(
            harrell_c,
            ([1, 2], [1, 0], [1, 2]),
            dict(strata=["a"]),
            StudyvalError,
            "strata has 1 values",
            id="strata-length",
        ),
        pytest.param(
            uno_c,
            ([1, 2, 3], [1, 1, 0], [3, 2, 1]),
            dict(tau=0),
            StudyvalError,
            "tau must be finite and > 0",
            id="tau-zero",
        ),
        pytest.param(
            uno_c,
            ([1, 2, 3], [1, 1, 0], [3, 2, 1]),
            dict(tau="x"),
            StudyvalError,
            "tau must be a number",
            id="tau-string",
        ),
        pytest.param(
            uno_c,
            ([5, 6, 7], [1, 1, 0], [3, 2, 1]),
            dict(tau=1),
            EstimationError,
            "no comparable pairs",
            id="tau-before-events",
        ),
    ],
)
def test_concordance_errors(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_concordance_to_frame(lung):
    f = harrell_c(lung["time"], lung["status"], lung["age"]).to_frame()
    assert f.shape == (1, len(f.columns))
    assert {"estimate", "se", "ci_low", "ci_high", "comparable_pairs", "n_tied_time"} <= set(
        f.columns
    )
