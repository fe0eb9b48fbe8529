"""Tests for studyval.analysis.competing_risks.

Oracles
-------
* R 4.2.2 with cmprsk 2.2-11 (``cuminc``, ``timepoints``, ``crr``) and
  survival 3.5-3 (``coxph``, ``survfit(Surv(time, factor(status)) ~ 1)``);
  values printed with ``options(digits = 17)``, the exact call beside each
  expected value. cmprsk's Fortran (``cinc``, ``crstm``/``crst``, ``crrfsv``,
  ``crrvv``; CRAN mirror cran/cmprsk, version 2.2-12 source) was read and
  ported or re-derived.
* The log(-log) interval ``F^exp(-+ z se / (F log F))`` (Pintilie 2006, the
  formula ``tidycmprsk`` documents) evaluated in R.
* riskRegression 2022.11.28 (prodlim 2019.11.13): ``predictRisk`` of a ``CSC``
  fit (both ``product.limit`` values; the default of ``predictRisk`` and
  ``predict`` for ``CSC`` is ``TRUE``, ``CSC``'s default ``surv.type`` is
  ``"hazard"``) and ``Score(..., metrics = "brier", null.model = TRUE,
  se.fit = TRUE, summary = "ipa")``, whose censoring model for ``~ 1`` is the
  Kaplan-Meier (``cens.model = "km"``). Values printed with ``sprintf("%.17g")``.

Data (``tests/data``)
---------------------
``pbc_competing.csv`` (``survival::pbc``, 312 randomised patients, 1 =
transplant, 2 = death; see ``tests/test_survival_validation.py``) and
``competing_ties.csv``, simulated once in R (whole-day times: ties between
events of all causes and censorings; three causes)::

    set.seed(20240611); n <- 150
    x1 <- round(rnorm(n), 2); x2 <- rbinom(n, 1, 0.4)
    grp <- sample(c("a", "b", "c"), n, replace = TRUE); strat <- sample(1:2, n, replace = TRUE)
    lp <- 0.6 * x1 + 0.5 * x2
    t1 <- rexp(n, 0.08 * exp(lp)); t2 <- rexp(n, 0.05); t3 <- rexp(n, 0.03)
    cens <- runif(n, 2, 25); tt <- pmin(t1, t2, t3, cens)
    status <- ifelse(tt == cens, 0, ifelse(tt == t1, 1, ifelse(tt == t2, 2, 3)))
    time <- ceiling(tt)
    risk <- round(plogis(-1 + 0.8 * x1 + 0.5 * x2 + rnorm(n, 0, 0.5)), 2)
    d <- data.frame(time, status, x1, x2, group = grp, stratum = strat, risk)

In R: ``d <- read.csv("pbc_competing.csv")``, ``e <- read.csv("competing_ties.csv")``.

Deviations: ``crr`` stops at ``gtol = 1e-6``; studyval iterates to a relative
change of 1e-12 in the log pseudo-likelihood, so coefficients agree to ~1e-7
and are compared at 1e-6 (the requirement was 1e-4).
"""

from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.competing_risks import (
    CompetingRisksBrierResult,
    CumulativeIncidenceResult,
    FineGrayResult,
    GrayTestResult,
    PredictedCumulativeIncidence,
    brier_competing,
    cause_specific_cox,
    cumulative_incidence,
    fine_gray,
    gray_test,
    predict_cumulative_incidence,
)
from studyval.analysis.survival import CoxResult, cox, kaplan_meier
from studyval.analysis.survival_validation import brier
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    d = pd.read_csv(DATA / "pbc_competing.csv")
    d["lbili"] = np.log(d["bili"])
    return d


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "competing_ties.csv")


# --------------------------------------------------------------------------- #
# Cumulative incidence against cmprsk::cuminc / timepoints
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("cause", "est", "var"),
    [
        # ci <- cuminc(d$time, d$status, group = d$trt); timepoints(ci, c(1000, 2000, 3000, 4000))
        pytest.param(
            1,
            {
                1: [
                    0.0317386448250186262,
                    0.045905858988918365,
                    0.075947091466601779,
                    0.075947091466601779,
                ],
                2: [
                    0.0065430752453653198,
                    0.042246603222326790,
                    0.064990218943524358,
                    0.082244549056887190,
                ],
            },
            {
                1: [
                    1.9648816281123995e-04,
                    0.00029058728129610916,
                    0.00057001595306647632,
                    0.00057001595306647632,
                ],
                2: [
                    4.2863599723512536e-05,
                    0.00028927257185197206,
                    0.00053231692039320871,
                    0.00081099503337582121,
                ],
            },
            id="pbc-transplant",
        ),
        pytest.param(
            2,
            {
                1: [
                    0.1459955098264853202,
                    0.301049493425585291,
                    0.437257277408687972,
                    0.542360879583341449,
                ],
                2: [
                    0.2017448200654307633,
                    0.291154745370654444,
                    0.382871217428865207,
                    0.598923524623704129,
                ],
            },
            {
                1: [
                    7.9732007839493422e-04,
                    0.00145329874670722795,
                    0.00214653592866742050,
                    0.00330676861412419060,
                ],
                2: [
                    1.0561943693352335e-03,
                    0.00143961399452853761,
                    0.00220216020233919216,
                    0.00432068554323768172,
                ],
            },
            id="pbc-death",
        ),
    ],
)
def test_cuminc_pbc_against_cmprsk(pbc, cause, est, var):
    r = cumulative_incidence(
        pbc["time"], pbc["status"], cause=cause, groups=pbc["trt"], times=[1000, 2000, 3000, 4000]
    )
    assert isinstance(r, CumulativeIncidenceResult)
    tab = r.table()
    for g in (1, 2):
        sub = tab[tab["group"] == g]
        assert sub["estimate"].tolist() == pytest.approx(est[g], rel=REL)
        assert sub["variance"].tolist() == pytest.approx(var[g], rel=REL)


def test_cuminc_ties_three_groups_against_cmprsk(ties):
    # ci <- cuminc(e$time, e$status, group = e$group); timepoints(ci, c(2, 5, 10))  ("a 1" etc.)
    r = cumulative_incidence(
        ties["time"], ties["status"], cause=3, groups=ties["group"], times=[2, 5, 10]
    )
    tab = r.table().set_index(["group", "time"])
    assert tab.loc["a", "estimate"].tolist() == pytest.approx(
        [0.020833333333333332, 0.046248778103616814, 0.10305977229601519], rel=REL
    )
    assert tab.loc["b", "variance"].tolist() == pytest.approx(
        [0.00139227288548555506, 0.0024071120295922959, 0.0032237268350601127], rel=REL
    )
    assert tab.loc["c", "variance"].tolist() == pytest.approx(
        [0.00040000000000000013, 0.0012326379745045792, 0.0024539808515209533], rel=REL
    )
    r1 = cumulative_incidence(
        ties["time"], ties["status"], cause=1, groups=ties["group"], times=[2, 5, 10]
    )
    a1 = r1.table().set_index(["group", "time"]).loc["a"]
    assert a1["estimate"].tolist() == pytest.approx(
        [0.145833333333333343, 0.256598240469208205, 0.35214400342915098], rel=REL
    )
    assert a1["variance"].tolist() == pytest.approx(
        [0.00263651840104735854, 0.0041596847879161762, 0.0058383437611471620], rel=REL
    )


def test_cuminc_overall_against_cmprsk_and_survfit(ties):
    # ci0 <- cuminc(e$time, e$status); timepoints(ci0, c(1, 3, 12, 21))
    expected = {
        1: (
            [0.073333333333333334, 0.15999999999999998, 0.41574581802810795, 0.41574581802810795],
            [
                0.00045607755406413121,
                0.00089261580318757529,
                0.00197272566141230149,
                0.0019727256614123015,
            ],
        ),
        2: (
            [0.059999999999999998, 0.14666666666666667, 0.30252908995581301, 0.34425031723482508],
            [
                0.00037852348993288600,
                0.00083093170563425765,
                0.00166829456204824027,
                0.0022393924043922347,
            ],
        ),
        3: (
            [0.033333333333333333, 0.05333333333333333, 0.13570079653953682, 0.15656141017904285],
            [
                0.00021625652498135720,
                0.00033755498926358435,
                0.00089614824010693546,
                0.0013113488982765360,
            ],
        ),
    }
    for cause, (est, var) in expected.items():
        tab = cumulative_incidence(
            ties["time"], ties["status"], cause=cause, times=[1, 3, 12, 21]
        ).table()
        assert tab["estimate"].tolist() == pytest.approx(est, rel=REL)
        assert tab["variance"].tolist() == pytest.approx(var, rel=REL)
    # summary(survfit(Surv(time, factor(status)) ~ 1, data = e), times = c(2, 5, 10, 20))$pstate
    # columns: event-free, cause 1, 2, 3
    pstate = np.array(
        [
            [0.739999999999999991, 0.12000000000000000, 0.10000000000000001, 0.040000000000000001],
            [0.478556733660389422, 0.23353062193385030, 0.20500501134145699, 0.082907633064303432],
            [0.207089000857641703, 0.37946099309151271, 0.27774920951130888, 0.135700796539536872],
            [0.083442454558024154, 0.41574581802810806, 0.34425031723482508, 0.156561410179042904],
        ]
    )
    times = [2, 5, 10, 20]
    for cause in (1, 2, 3):
        tab = cumulative_incidence(ties["time"], ties["status"], cause=cause, times=times).table()
        assert tab["estimate"].tolist() == pytest.approx(pstate[:, cause].tolist(), rel=1e-12)
        assert tab["survival"].tolist() == pytest.approx(pstate[:, 0].tolist(), rel=1e-12)


def test_cuminc_loglog_interval(ties):
    # est <- timepoints(ci, 5)$est["b 2", 1]; v <- timepoints(ci, 5)$var["b 2", 1]
    # z <- qnorm(0.975); est^exp(-z*sqrt(v)/(est*log(est))); est^exp(z*sqrt(v)/(est*log(est)))
    r = cumulative_incidence(ties["time"], ties["status"], cause=2, groups=ties["group"], times=[5])
    row = r.table().set_index("group").loc["b"]
    assert row["estimate"] == pytest.approx(0.2970085470085470081, rel=REL)
    assert row["se"] == pytest.approx(math.sqrt(0.0041520130224905367), rel=REL)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (0.1784958799826093789, 0.4251708949846632057), rel=1e-9
    )


def test_cuminc_counts_and_undefined_limits(ties):
    r = cumulative_incidence(ties["time"], ties["status"], cause=1)
    # table(e$status): 0 = 36, 1 = 53, 2 = 42, 3 = 19
    assert (r.n, r.n_events, r.n_competing, r.n_censored) == (150, 53, 61, 36)
    tab = r.table()
    last = tab.iloc[-1]
    assert (last["n_event"], last["n_competing"], last["n_censor"]) == (53, 61, 36)
    assert tab["n_risk"].iloc[0] == 150
    # before the first event of cause 1 nothing can be said on the log(-log) scale
    zero = tab[tab["estimate"] == 0]
    assert zero["ci_low"].isna().all()
    assert r.test is None and r.groups == ("all",)
    assert r.to_frame().loc[0, "n_events"] == 53


def test_cuminc_without_competing_events_is_one_minus_km(pbc):
    dead = (pbc["status"] == 2).astype(int)
    r = cumulative_incidence(pbc["time"], dead, cause=1, times=[500, 1825, 4000])
    km = kaplan_meier(pbc["time"], dead, times=[500, 1825, 4000]).table
    assert r.table()["estimate"].to_numpy() == pytest.approx(
        1 - km["survival"].to_numpy(), rel=1e-12
    )


@st.composite
def _competing_data(draw):
    n = draw(st.integers(min_value=5, max_value=60))
    time = draw(st.lists(st.integers(0, 25), min_size=n, max_size=n))
    code = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return np.array(time, dtype=float), np.array(code)


@settings(deadline=None, max_examples=50)
@given(_competing_data())
def test_cuminc_properties(data):
    time, code = data
    tabs = [cumulative_incidence(time, code, cause=k, causes=(1, 2, 3)).table() for k in (1, 2, 3)]
    total = sum(t["estimate"].to_numpy() for t in tabs) + tabs[0]["survival"].to_numpy()
    assert total == pytest.approx(np.ones_like(total), abs=1e-12)
    for t in tabs:
        est = t["estimate"].to_numpy()
        assert (np.diff(est) >= -1e-15).all()
        assert ((est >= 0) & (est <= 1 + 1e-15)).all()
        assert (t["variance"].to_numpy() >= -1e-15).all()
        ok = t["ci_low"].notna()
        assert (t.loc[ok, "ci_low"] <= t.loc[ok, "estimate"] + 1e-15).all()
        assert (t.loc[ok, "ci_high"] >= t.loc[ok, "estimate"] - 1e-15).all()


# --------------------------------------------------------------------------- #
# Gray's test
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("cause", "kwargs", "stat"),
    [
        # cuminc(e$time, e$status, group = e$group)$Tests
        pytest.param(1, {}, 2.1912966472981923, id="cause1"),
        pytest.param(2, {}, 4.0052907366521815, id="cause2"),
        pytest.param(3, {}, 1.6089862936941359, id="cause3"),
        # cuminc(e$time, e$status, group = e$group, rho = 1)$Tests
        pytest.param(1, {"rho": 1}, 2.5125712207722937, id="cause1-rho1"),
        pytest.param(2, {"rho": 1}, 4.3842283550904444, id="cause2-rho1"),
        # cuminc(e$time, e$status, group = e$group, strata = e$stratum)$Tests
        pytest.param(1, {"strata": "stratum"}, 1.7220576738988704, id="cause1-strata"),
        pytest.param(3, {"strata": "stratum"}, 1.5839011924248465, id="cause3-strata"),
    ],
)
def test_gray_against_cmprsk(ties, cause, kwargs, stat):
    if "strata" in kwargs:
        kwargs = {"strata": ties[kwargs["strata"]]}
    r = gray_test(ties["time"], ties["status"], ties["group"], cause=cause, **kwargs)
    assert isinstance(r, GrayTestResult)
    assert r.statistic == pytest.approx(stat, rel=1e-9)
    assert r.df == 2
    _, p = r
    assert p == pytest.approx(float(np.exp(-stat / 2)), rel=1e-9)  # chi-square(2) tail


def test_gray_pbc_and_cuminc_test(pbc):
    # cuminc(d$time, d$status, group = d$trt)$Tests: stat 0.019427475530584624 (cause 1),
    # 0.066593735360748973 (cause 2); pv 0.88914791671809390, 0.79636243819415942
    r1 = gray_test(pbc["time"], pbc["status"], pbc["trt"], cause=1)
    assert (r1.statistic, r1.p_value) == pytest.approx(
        (0.019427475530584624, 0.88914791671809390), rel=1e-9
    )
    ci = cumulative_incidence(pbc["time"], pbc["status"], cause=2, groups=pbc["trt"])
    assert (ci.test.statistic, ci.test.p_value) == pytest.approx(
        (0.066593735360748973, 0.79636243819415942), rel=1e-9
    )


def test_gray_identical_groups_give_zero(ties):
    # two copies of the same data as two groups: scores are exactly 0
    t = np.concatenate([ties["time"], ties["time"]])
    s = np.concatenate([ties["status"], ties["status"]])
    g = np.repeat(["x", "y"], len(ties))
    r = gray_test(t, s, g, cause=1)
    assert r.statistic == pytest.approx(0.0, abs=1e-20)
    assert r.p_value == pytest.approx(1.0)


# --------------------------------------------------------------------------- #
# Fine-Gray against cmprsk::crr
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("data", "cause", "covs", "coef", "se", "loglik"),
    [
        # crr(d$time, d$status, cov1 = cbind(age = d$age, lbili = log(d$bili),
        #     albumin = d$albumin), failcode = 2, cencode = 0): coef, sqrt(diag(var)), loglik
        pytest.param(
            "pbc",
            2,
            ["age", "lbili", "albumin"],
            [0.042841711070004722, 0.936297448985940917, -1.072951101264068008],
            [0.010786119256224413, 0.095112356521238395, 0.215015199697439541],
            -562.06924832446157,
            id="pbc-death",
        ),
        # ... failcode = 1
        pytest.param(
            "pbc",
            1,
            ["age", "lbili", "albumin"],
            [-0.101041281394810542, 0.371509183072776861, 0.078576943521777506],
            [0.020314108255461271, 0.191132268062986915, 0.659614565318642487],
            None,
            id="pbc-transplant",
        ),
        # crr(e$time, e$status, cov1 = cbind(x1 = e$x1, x2 = e$x2), failcode = 1, cencode = 0)
        pytest.param(
            "ties",
            1,
            ["x1", "x2"],
            [0.84869721222579253, 0.80383242871746230],
            [0.16651040135102069, 0.26832575576965151],
            -230.70378203286788,
            id="ties-cause1",
        ),
        # ... failcode = 3
        pytest.param(
            "ties",
            3,
            ["x1", "x2"],
            [-0.023113459066764663, -0.156842793530684421],
            [0.20377320634827364, 0.47080865493821805],
            -91.078127634487657,
            id="ties-cause3",
        ),
    ],
)
def test_fine_gray_against_crr(pbc, ties, data, cause, covs, coef, se, loglik):
    df = pbc if data == "pbc" else ties
    r = fine_gray(df, duration="time", event="status", cause=cause, covariates=covs)
    assert isinstance(r, FineGrayResult)
    assert r.coef.tolist() == pytest.approx(coef, abs=1e-6)
    assert np.sqrt(np.diag(r.variance)).tolist() == pytest.approx(se, rel=1e-6)
    if loglik is not None:
        assert r.loglik == pytest.approx(loglik, rel=1e-9)
    assert r.converged
    tab = r.table()
    assert tab["term"].tolist() == covs
    assert tab["shr"].to_numpy() == pytest.approx(np.exp(r.coef))


def test_fine_gray_null_loglik_and_counts(ties):
    # crr(...failcode = 1...)$loglik.null = -248.08351424119422
    r = fine_gray(ties, duration="time", event="status", cause=1, covariates=["x1", "x2"])
    assert r.loglik_null == pytest.approx(-248.08351424119422, rel=1e-12)
    assert (r.n, r.n_events, r.n_competing, r.n_censored) == (150, 53, 61, 36)
    assert r.to_frame().loc[0, "cause"] == 1


def test_fine_gray_without_competing_events_is_breslow_cox(pbc):
    # no competing events: every weight is 1, the pseudo-likelihood is Cox's (Breslow ties)
    df = pbc.assign(dead=(pbc["status"] == 2).astype(int))
    fg = fine_gray(df, duration="time", event="dead", cause=1, covariates=["age", "lbili"])
    cx = cox(df, duration="time", event="dead", covariates=["age", "lbili"], ties="breslow")
    assert fg.coef == pytest.approx(cx.coef, rel=1e-8)
    assert fg.loglik == pytest.approx(cx.loglik, rel=1e-10)


def test_fine_gray_invariant_to_row_order(ties):
    a = fine_gray(ties, duration="time", event="status", cause=2, covariates=["x1", "x2"])
    shuffled = ties.sample(frac=1.0, random_state=3)
    b = fine_gray(shuffled, duration="time", event="status", cause=2, covariates=["x1", "x2"])
    assert b.coef == pytest.approx(a.coef, rel=1e-10)
    assert b.variance == pytest.approx(a.variance, rel=1e-8)


# --------------------------------------------------------------------------- #
# Cause-specific Cox
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("data", "cause", "covs", "coef", "se"),
    [
        # coxph(Surv(time, status == 1) ~ age + log(bili) + albumin, data = d)
        pytest.param(
            "pbc",
            1,
            ["age", "lbili", "albumin"],
            [-0.086996543234870743, 0.774106290843249445, -0.421727075058607515],
            [0.027781271323686341, 0.258335985467031626, 0.668274130535811750],
            id="pbc-transplant",
        ),
        # coxph(Surv(time, status == 3) ~ x1 + x2, data = e)
        pytest.param(
            "ties",
            3,
            ["x1", "x2"],
            [0.219693040688879210, 0.097989109712251332],
            [0.26270905479883461, 0.48673405813868503],
            id="ties-cause3",
        ),
    ],
)
def test_cause_specific_cox_against_coxph(pbc, ties, data, cause, covs, coef, se):
    df = pbc if data == "pbc" else ties
    r = cause_specific_cox(df, duration="time", event="status", cause=cause, covariates=covs)
    assert isinstance(r, CoxResult)
    assert r.coef.tolist() == pytest.approx(coef, rel=1e-8)
    assert r.summary["se"].tolist() == pytest.approx(se, rel=1e-8)
    assert r.event == f"status == {cause}"


# --------------------------------------------------------------------------- #
# Errors
# --------------------------------------------------------------------------- #
TT = [1.0, 2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    ("codes", "kwargs", "match"),
    [
        pytest.param(
            [0, 1, 2, 9, 1],
            {"causes": (1, 2)},
            r"outside the declared set.*position 3: 9",
            id="undeclared-code",
        ),
        pytest.param(
            [0, 1, -2, 1, 1], {}, r"non-negative integer codes.*position 2", id="negative"
        ),
        pytest.param(
            [0, 1, 1.5, 1, 1], {}, r"non-negative integer codes.*position 2", id="fraction"
        ),
        pytest.param([0, 1, np.nan, 1, 1], {}, r"1 missing value", id="missing"),
        pytest.param(
            [0, 1, 2, 1, 1], {"causes": (1,)}, r"outside the declared set", id="cause2-undeclared"
        ),
        pytest.param(["0", "1", "1", "1", "1"], {}, r"must hold integer codes", id="strings"),
        pytest.param(
            [0, 1, 2, 1, 1],
            {"cause_override": 3, "causes": (1, 2)},
            r"cause=3 is not among the declared causes 1, 2",
            id="cause-not-declared",
        ),
        pytest.param(
            [0, 1, 2, 1, 1], {"cause_override": 0}, r"cause must be a positive", id="cause-0"
        ),
        pytest.param(
            [0, 1, 2, 1, 1], {"cause_override": "1"}, r"cause must be a positive", id="cause-str"
        ),
        pytest.param([0, 1, 2, 1], {}, r"has 4 values but time has 5", id="length"),
    ],
)
def test_event_code_errors(codes, kwargs, match):
    kwargs = dict(kwargs)
    cause = kwargs.pop("cause_override", 1)
    with pytest.raises(StudyvalError, match=match):
        cumulative_incidence(TT, codes, cause=cause, **kwargs)


@pytest.mark.parametrize(
    ("time", "kwargs", "match"),
    [
        pytest.param(
            [1.0, -1.0, 3.0, 4.0, 5.0], {}, r"time must be >= 0.*position 1", id="neg-time"
        ),
        pytest.param(
            TT,
            {"times": [1, 9]},
            r"times: 9 is after the last follow-up time 5",
            id="beyond-follow-up",
        ),
        pytest.param(TT, {"times": [3, 2]}, r"strictly increasing", id="times-order"),
        pytest.param(TT, {"times": [-1]}, r"times must be finite and >= 0", id="times-neg"),
        pytest.param(TT, {"alpha": 0}, r"alpha must be in", id="alpha"),
        pytest.param(
            TT, {"groups": ["a", None, "b", "a", "b"]}, r"groups has 1 missing", id="group-missing"
        ),
    ],
)
def test_cuminc_errors(time, kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        cumulative_incidence(time, [0, 1, 2, 1, 0], cause=1, **kwargs)


def test_cuminc_beyond_follow_up_allowed_when_all_failed():
    # everyone had an event by t = 5: the curve is defined afterwards (S = 0)
    r = cumulative_incidence(TT, [1, 2, 1, 2, 1], cause=1, times=[10])
    assert r.table()["estimate"].tolist() == pytest.approx([0.6])


def test_gray_errors(ties):
    with pytest.raises(StudyvalError, match=r"at least two levels"):
        gray_test(ties["time"], ties["status"], ["a"] * len(ties), cause=1)
    with pytest.raises(StudyvalError, match=r"rho must be finite"):
        gray_test(ties["time"], ties["status"], ties["group"], cause=1, rho=math.inf)
    with pytest.raises(EstimationError, match=r"singular"):
        # a group whose only subject is censored at 0, before any event, contributes nothing
        t = np.append(ties["time"].to_numpy(), 0.0)
        s = np.append(ties["status"].to_numpy(), 0)
        g = np.append(np.full(len(ties), "a"), "z")
        gray_test(t, s, g, cause=1)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param(
            {"covariates": ["x11"]},
            StudyvalError,
            r"covariate column 'x11' is not in the data; did you mean 'x1'",
            id="unknown-column",
        ),
        pytest.param(
            {"covariates": ["group"]},
            StudyvalError,
            r"covariate 'group' is not numeric",
            id="string-cov",
        ),
        pytest.param({"covariates": []}, StudyvalError, r"covariates is empty", id="empty"),
        pytest.param(
            {"covariates": ["x1", "x1"]}, StudyvalError, r"more than once", id="duplicate"
        ),
        pytest.param(
            {"covariates": ["const"]}, EstimationError, r"'const' is constant", id="constant"
        ),
        pytest.param(
            {"covariates": ["x1"], "cause": 4, "causes": (1, 2, 3, 4)},
            EstimationError,
            r"no event of cause 4",
            id="no-events",
        ),
        pytest.param(
            {"covariates": ["x1"], "max_iter": 0}, StudyvalError, r"max_iter", id="max-iter"
        ),
        pytest.param(
            {"covariates": ["x1"], "tol": 1.0}, StudyvalError, r"tol must be in", id="tol"
        ),
    ],
)
def test_fine_gray_errors(ties, kwargs, exc, match):
    df = ties.assign(const=1.0)
    kwargs = {"cause": 1, **kwargs}
    with pytest.raises(exc, match=match):
        fine_gray(df, duration="time", event="status", **kwargs)


def test_fine_gray_missing_and_type_errors(ties):
    df = ties.copy()
    df.loc[5, "x1"] = np.nan
    with pytest.raises(StudyvalError, match=r"covariate 'x1' has 1 missing value.*position 5"):
        fine_gray(df, duration="time", event="status", cause=1, covariates=["x1"])
    with pytest.raises(StudyvalError, match=r"df must be a pandas DataFrame"):
        fine_gray(ties.to_numpy(), duration="time", event="status", cause=1, covariates=["x1"])
    with pytest.raises(StudyvalError, match=r"outside the declared set"):
        fine_gray(ties, duration="time", event="status", cause=1, covariates=["x1"], causes=(1, 2))
    with pytest.raises(StudyvalError, match=r"event column 'state' is not in the data"):
        cause_specific_cox(ties, duration="time", event="state", cause=1, covariates=["x1"])


# --------------------------------------------------------------------------- #
# Predicted cumulative incidence from cause-specific Cox models
# --------------------------------------------------------------------------- #
def _csc(df: pd.DataFrame, covs: list[str], causes: tuple[int, ...]) -> dict[int, CoxResult]:
    return {
        k: cause_specific_cox(df, duration="time", event="status", cause=k, covariates=covs)
        for k in causes
    }


# R (riskRegression 2022.11.28):
#   fit <- CSC(Hist(time, status) ~ lbili + age + edema, data = d)
#   p <- predictRisk(fit, newdata = d[c(1, 2, 3, 10, 50, 100), ], times = c(1000, 3000),
#                    cause = k, product.limit = pl); sprintf("%.17g", t(p))
#   fe <- CSC(Hist(time, status) ~ x1 + x2, data = e)
#   p <- predictRisk(fe, newdata = e[1:5, ], times = c(5, 12), cause = k, product.limit = pl)
# (row-major: subject 1 at both times, then subject 2, ...)
CSC_PBC = {
    (1, False): [0.0027237924582878036, 0.0029002082596686313, 0.0044855164932933777,
                 0.023162712053734109, 0.0013545070060018, 0.0049357051711987586,
                 0.00043317812359441329, 0.00044381838506856477, 0.0057587959774675294,
                 0.030036515287836893, 0.01197023274591303, 0.055983036914122319],
    (1, True): [0.0025386119846595025, 0.0026781413591176308, 0.004485391290468781,
                0.023156044944282941, 0.0013538373493267183, 0.0049154921822691612,
                0.00038186996657819705, 0.00038900056994222853, 0.0057586643287757151,
                0.030029375208406185, 0.01196922898354171, 0.055936898997897423],
    # above 1 for two subjects: predictRisk warns "Estimated risk outside the range [0,1]"
    (2, False): [1.0080445701740832, 1.0294169869197409, 0.068711903899403612,
                 0.29784911016127452, 0.26349382346399702, 0.78870690182707559,
                 1.0353637987547737, 1.040591317879958, 0.061545044817031838,
                 0.26966779691018067, 0.11366638247724853, 0.44219472997039116],
    (2, True): [0.98048105590845636, 0.99732185861596967, 0.068710377430300701,
                0.29775362234198494, 0.26339423053135635, 0.78541881701039096,
                0.99614920837401277, 0.99961099943005682, 0.061543918670098251,
                0.26959597950450215, 0.11365881147931958, 0.44179559425538328],
}  # fmt: skip
CSC_TIES = {
    (1, False): [0.019400403851182413, 0.056048200423780711, 0.68154875140440441,
                 0.95294151105221181, 0.042535628115519468, 0.12952599744924698,
                 0.1243522950359133, 0.32761817405435184, 0.15786127134740685,
                 0.41531940980763615],
    (1, True): [0.019110339051537337, 0.053818954800025791, 0.63509370216940231,
                0.79223575687938963, 0.042124439739876542, 0.12580631022675581,
                0.12262250735557736, 0.31186709871585117, 0.15593794272068814,
                0.39604969019842035],
    (2, False): [0.36994634434357843, 0.59329522131271062, 0.10145234282618826,
                 0.11395165935165925, 0.2722291825695089, 0.45114888258219477,
                 0.24012888509160479, 0.36568812286998797, 0.19448823868193418,
                 0.29613739475483525],
    (2, True): [0.3654066857245335, 0.57713621826726935, 0.095835527589873265,
                0.10299732552375625, 0.27007015686706454, 0.4422910813427523,
                0.23739506406322669, 0.35440932805166153, 0.19255451819982522,
                0.28744072369997548],
    (3, False): [0.060814198729805438, 0.11076830725319457, 0.090407758150352749,
                 0.11963367136860176, 0.064400072980969642, 0.12081357539332552,
                 0.088864096776624574, 0.15852524041052046, 0.082378794160970464,
                 0.14766036561578125],
    (3, True): [0.059987216797772733, 0.10806713149824401, 0.085098829040307883,
                0.10467023474137782, 0.063828481038530768, 0.11882703542561013,
                0.087736282090743217, 0.1545019038230403, 0.081458164436303201,
                0.14421432407114113],
}  # fmt: skip


@pytest.mark.parametrize(("cause", "product_limit"), list(CSC_PBC), ids=lambda v: str(v))
def test_predicted_cif_pbc_against_predictrisk(pbc, cause, product_limit):
    fits = _csc(pbc, ["lbili", "age", "edema"], (1, 2))
    above_one = max(CSC_PBC[cause, product_limit]) > 1
    with (
        pytest.warns(
            StatisticalWarning, match=r"above 1 for 2 of 6 subject\(s\) \(largest 1.04059\)"
        )
        if above_one
        else contextlib.nullcontext()
    ):
        r = predict_cumulative_incidence(
            fits,
            pbc.iloc[[0, 1, 2, 9, 49, 99]],
            cause=cause,
            times=[1000, 3000],
            product_limit=product_limit,
        )
    assert isinstance(r, PredictedCumulativeIncidence)
    assert r.risk.shape == (6, 2)
    # coxph stops at its own tolerance: coefficients, hence risks, agree to ~1e-9
    assert r.risk.reshape(-1).tolist() == pytest.approx(CSC_PBC[cause, product_limit], rel=1e-8)


@pytest.mark.parametrize(("cause", "product_limit"), list(CSC_TIES), ids=lambda v: str(v))
def test_predicted_cif_tied_times_three_causes_against_predictrisk(ties, cause, product_limit):
    # whole-day times: Efron baseline hazards of all three causes, tied events and censorings
    fits = _csc(ties, ["x1", "x2"], (1, 2, 3))
    r = predict_cumulative_incidence(
        fits, ties.iloc[:5], cause=cause, times=[5, 12], product_limit=product_limit
    )
    assert r.risk.reshape(-1).tolist() == pytest.approx(CSC_TIES[cause, product_limit], rel=1e-8)


def test_predicted_cif_runner_formula_against_predictrisk(pbc):
    # The cirrhosis-sarcopenia runner's call (tests/test_protocol_cirrhosis_sarcopenia.py):
    #   fit <- CSC(Hist(time, status) ~ lbili + age, data = d, cause = 1)
    #   predictRisk(fit, newdata = d[c(1, 2, 3, 10, 50), ], times = 1826, cause = k,
    #               product.limit = FALSE)
    fits = _csc(pbc, ["lbili", "age"], (1, 2))
    rows = pbc.iloc[[0, 1, 2, 9, 49]]
    expected = {
        1: [0.0176673836925, 0.0119204559179, 0.00408941498666, 0.00383335695385, 0.0154043439006],
        2: [0.965120931498, 0.171215612957, 0.338701190829, 1.00579789225, 0.154158121472],
    }
    for k, values in expected.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)  # 1.0058 for cause 2
            r = predict_cumulative_incidence(fits, rows, cause=k, times=1826.0, product_limit=False)
        assert r.risk[:, 0].tolist() == pytest.approx(values, rel=1e-8)


def test_predicted_cif_product_limit_sums_to_one_minus_event_free_survival(ties):
    # product limit: sum_k F_k(t) + S(t) = 1 with S(t) = prod_{s <= t} (1 - sum_l dLambda_l(s))
    fits = _csc(ties, ["x1", "x2"], (1, 2, 3))
    nd = ties.iloc[:20]
    times = [1, 5, 12, 20]
    total = sum(
        predict_cumulative_incidence(fits, nd, cause=k, times=times, product_limit=True).risk
        for k in (1, 2, 3)
    )
    grid = np.unique(ties["time"])
    d_total = np.zeros((len(nd), grid.size))
    for fit in fits.values():
        h0 = np.interp(grid, fit.baseline_hazard["time"], fit.baseline_hazard["cumhaz"])
        d_total += np.exp(fit.predict_risk(nd))[:, None] * np.diff(h0, prepend=0.0)[None, :]
    surv = np.cumprod(1.0 - d_total, axis=1)[:, np.searchsorted(grid, times, side="right") - 1]
    assert total + surv == pytest.approx(np.ones_like(surv), abs=1e-13)
    assert (total <= 1.0 + 1e-13).all()


def test_predicted_cif_times_before_first_event_and_at_last_follow_up(pbc):
    fits = _csc(pbc, ["lbili", "age", "edema"], (1, 2))
    last = float(pbc["time"].max())
    r = predict_cumulative_incidence(
        fits, pbc.iloc[:2], cause=1, times=[0.0, 1.0, last], product_limit=False
    )
    assert r.risk[:, :2].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # predictRisk(fit, newdata = d[1:2, ], times = max(d$time), cause = 1, product.limit = FALSE)
    assert r.risk[:, 2].tolist() == pytest.approx(
        [0.0029002082790854427, 0.0273449243369765158], rel=1e-8
    )
    assert r.times == (0.0, 1.0, last) and r.causes == (1, 2) and r.n == 2
    frame = r.to_frame()
    assert list(frame.columns) == ["row", "time", "cause", "cumulative_incidence", "product_limit"]
    assert frame["cumulative_incidence"].tolist() == r.risk.reshape(-1).tolist()
    assert not r.risk.flags.writeable


def test_predicted_cif_is_independent_of_newdata_order(ties):
    fits = _csc(ties, ["x1", "x2"], (1, 2, 3))
    a = predict_cumulative_incidence(fits, ties, cause=2, times=[3, 9], product_limit=True)
    order = np.random.default_rng(4).permutation(len(ties))
    b = predict_cumulative_incidence(
        fits, ties.iloc[order], cause=2, times=[3, 9], product_limit=True
    )
    assert b.risk == pytest.approx(a.risk[order], rel=1e-14)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(lambda f, d: ([f[1], f[2]], {}), r"models must be a non-empty dict", id="list"),
        pytest.param(lambda f, d: ({}, {}), r"models must be a non-empty dict", id="empty"),
        pytest.param(
            lambda f, d: ({1: f[2], 2: f[1]}, {}),
            r"models\[1\] was fitted for event 'status == 2', i.e. cause 2",
            id="swapped-keys",
        ),
        pytest.param(
            lambda f, d: ({2: f[2]}, {}), r"cause=1 has no model; models are given for causes 2",
            id="no-model-for-cause",
        ),
        pytest.param(
            lambda f, d: ({1: f[1], 2: "fit"}, {}), r"models\[2\] must be a fitted Cox model",
            id="not-a-fit",
        ),
        pytest.param(
            lambda f, d: (
                {
                    1: f[1],
                    2: cause_specific_cox(
                        d.iloc[:200], duration="time", event="status", cause=2, covariates=["x1"]
                    ),
                },
                {},
            ),
            r"fitted on different data \(subjects: cause 1: 312, cause 2: 200\)",
            id="different-data",
        ),
        pytest.param(
            lambda f, d: (
                {
                    1: f[1],
                    2: cause_specific_cox(
                        d, duration="time", event="status", cause=2, covariates=["x1"],
                        strata="trt",
                    ),
                },
                {},
            ),
            r"models\[2\] is stratified by trt",
            id="stratified",
        ),
        pytest.param(lambda f, d: (f, {"times": [5000]}), r"times: 5000 is after the last", id="beyond"),
        pytest.param(lambda f, d: (f, {"times": [3, 2]}), r"strictly increasing", id="order"),
        pytest.param(lambda f, d: (f, {"product_limit": 1}), r"product_limit must be True or False",
                     id="product-limit-int"),
        pytest.param(lambda f, d: (f, {"cause": 0}), r"cause must be a positive", id="cause-0"),
    ],
)  # fmt: skip
def test_predicted_cif_errors(pbc, change, match):
    d = pbc.assign(x1=pbc["lbili"])
    fits = _csc(d, ["x1"], (1, 2))
    models, kwargs = change(fits, d)
    kwargs = {"cause": 1, "times": [1000], "product_limit": False, **kwargs}
    with pytest.raises(StudyvalError, match=match):
        predict_cumulative_incidence(models, d.iloc[:3], **kwargs)
    with pytest.raises(StudyvalError, match=r"newdata must be a pandas DataFrame"):
        predict_cumulative_incidence(fits, d.to_numpy(), cause=1, times=[1], product_limit=True)
    with pytest.raises(StudyvalError, match=r"covariate column 'x1' is not in the data"):
        predict_cumulative_incidence(
            fits, d.drop(columns="x1"), cause=1, times=[1], product_limit=True
        )


# --------------------------------------------------------------------------- #
# Brier score of a predicted cumulative incidence
# --------------------------------------------------------------------------- #
# Score(list(m = p), formula = Hist(time, status) ~ 1, data = <data>, times = <tau>, cause = k,
#       metrics = "brier", null.model = TRUE, se.fit = TRUE, summary = "ipa")$Brier$score
# -> per model: Brier, se, lower, upper, IPA ("Null model" first)
BRIER = {
    # d, p = d$risk_b, times = 1826 (5 years)
    ("pbc", 1): ([0.042115333796683252, 0.010940552976650813, 0.020672243991495181,
                  0.063558423601871319],
                 [0.16682760044490186, 0.015233852346095708, 0.13696979850075328,
                  0.19668540238905044, -2.9612080780430663]),
    ("pbc", 2): ([0.20323009515060564, 0.011379219764301672, 0.18092723424040802,
                  0.22553295606080326],
                 [0.11347123077062594, 0.011334021666295824, 0.091256956504689485,
                  0.1356855050365624, 0.44166128207273148]),
    # e, p = e$risk, times = 5: 7 censorings and 8 events are tied at the horizon
    ("ties", 1): ([0.17899407055303934, 0.018741306179300414, 0.14226178541837259,
                   0.2157263556877061],
                  [0.15126601920135041, 0.013501504574155025, 0.12480355649890376,
                   0.17772848190379706, 0.15491044628471418]),
    ("ties", 2): ([0.1629779566663461, 0.019747904280522019, 0.12427277550637858,
                   0.20168313782631361],
                  [0.22963681626839688, 0.018975197719882729, 0.19244611213790019,
                   0.26682752039889357, -0.40900537082150956]),
    ("ties", 3): ([0.076033957443978242, 0.019213838898934799, 0.038375525197311321,
                   0.11369238969064516],
                  [0.15712675665980902, 0.013673697837906205, 0.13032680136202965,
                   0.18392671195758839, -1.0665339795785309]),
}  # fmt: skip
BRIER_COUNTS = {  # events of the cause, competing events, censored by tau, event-free after tau
    ("pbc", 1): (13, 85, 55, 159),
    ("pbc", 2): (85, 13, 55, 159),
    ("ties", 1): (34, 42, 18, 56),  # sum(e$time <= 5 & e$status == 1), ...
    ("ties", 2): (30, 46, 18, 56),
    ("ties", 3): (12, 64, 18, 56),
}


@pytest.mark.parametrize(("data", "cause"), list(BRIER), ids=lambda v: str(v))
def test_brier_competing_against_score(pbc, ties, data, cause):
    df, p, tau = (pbc, "risk_b", 1826) if data == "pbc" else (ties, "risk", 5)
    r = brier_competing(df["time"], df["status"], df[p], cause=cause, horizon=tau)
    assert isinstance(r, CompetingRisksBrierResult)
    null, model = BRIER[data, cause]
    assert [r.null_estimate, r.null_se, r.null_ci_low, r.null_ci_high] == pytest.approx(
        null, rel=REL
    )
    assert [r.estimate, r.se, r.ci_low, r.ci_high, r.ipa] == pytest.approx(model, rel=REL)
    assert (r.n_events, r.n_competing, r.n_censored_before_horizon, r.n_event_free) == (
        BRIER_COUNTS[data, cause]
    )
    assert r.n == len(df) and r.cause == cause and r.horizon == tau
    aj = cumulative_incidence(df["time"], df["status"], cause=cause, times=[tau]).table()
    assert r.null_risk == aj["estimate"].iloc[0]
    est, lo, hi = r
    assert (est, lo, hi) == (r.estimate, r.ci_low, r.ci_high)


def test_brier_competing_conservative_against_score(ties):
    # Score(..., times = 5, cause = 1, ..., conservative = TRUE)
    r = brier_competing(
        ties["time"], ties["status"], ties["risk"], cause=1, horizon=5, conservative=True
    )
    assert [r.null_se, r.se] == pytest.approx([0.019019421200657659, 0.013998739724853368], rel=REL)
    assert r.estimate == pytest.approx(0.15126601920135041, rel=REL) and r.conservative


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        # fit <- CSC(Hist(time, status) ~ lbili + age + edema, data = d)
        # p <- predictRisk(fit, newdata = d, times = 1826, cause = k, product.limit = TRUE)
        # Score(list(csc = as.numeric(p)), ..., times = 1826, cause = k, ...); Score(list(csc =
        # fit), ...) gives the same numbers (Score calls predictRisk with product.limit = TRUE)
        pytest.param(1, [0.041477579327932834, 0.010020851654401962, 0.015143046754164446],
                     id="transplant"),
        pytest.param(2, [0.11006695405111387, 0.011298772760501775, 0.45841213148304794],
                     id="death"),
    ],
)  # fmt: skip
def test_brier_of_cause_specific_cox_prediction_against_score(pbc, cause, expected):
    fits = _csc(pbc, ["lbili", "age", "edema"], (1, 2))
    p = predict_cumulative_incidence(fits, pbc, cause=cause, times=[1826], product_limit=True)
    r = brier_competing(pbc["time"], pbc["status"], p.risk[:, 0], cause=cause, horizon=1826)
    # the predictions agree with predictRisk to ~1e-9 (coxph's tolerance)
    assert [r.estimate, r.se, r.ipa] == pytest.approx(expected, rel=1e-7)


def test_brier_competing_without_competing_events_is_the_ipcw_brier():
    rng = np.random.default_rng(1)
    t = rng.exponential(1.0, 300)
    c = rng.exponential(1.5, 300)
    time, code = np.minimum(t, c), (t <= c).astype(int)
    risk = rng.uniform(0.1, 0.9, 300)
    ours = brier_competing(time, code, risk, cause=1, horizon=0.8)
    ref = brier(time, code, risk, horizon=0.8)
    for name in ("estimate", "se", "ci_low", "ci_high", "null_estimate", "null_se", "null_risk",
                 "ipa"):  # fmt: skip
        assert getattr(ours, name) == pytest.approx(getattr(ref, name), rel=1e-12)
    assert ours.n_competing == 0 and ours.n_events == ref.n_events


def test_brier_competing_to_frame_is_one_row(ties):
    r = brier_competing(ties["time"], ties["status"], ties["risk"], cause=2, horizon=5)
    frame = r.to_frame()
    assert len(frame) == 1
    assert {"estimate", "null_estimate", "ipa", "n_events", "n_competing",
            "n_censored_before_horizon", "method"} <= set(frame.columns)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"risk": 1.02}, StudyvalError,
                     r"predicted_risk must be a predicted risk in \[0, 1\]", id="risk-above-1"),
        pytest.param({"horizon": 21}, EstimationError, r"at or beyond the last follow-up",
                     id="horizon-at-end"),
        pytest.param({"horizon": 0}, StudyvalError, r"horizon must be finite and > 0",
                     id="horizon-0"),
        pytest.param({"cause": 4, "causes": (1, 2, 3, 4)}, EstimationError,
                     r"no event of cause 4 at or before horizon", id="no-cases"),
        pytest.param({"cause": 4, "causes": (1, 2, 3)}, StudyvalError, r"cause=4 is not among",
                     id="undeclared-cause"),
        pytest.param({"causes": (1, 2)}, StudyvalError, r"outside the declared set",
                     id="undeclared-code"),
        pytest.param({"alpha": 1.5}, StudyvalError, r"alpha must be in", id="alpha"),
    ],
)  # fmt: skip
def test_brier_competing_errors(ties, kwargs, exc, match):
    kwargs = {"cause": 1, "horizon": 5, **kwargs}
    risk = ties["risk"].to_numpy().copy()
    if "risk" in kwargs:
        risk[3] = kwargs.pop("risk")
    with pytest.raises(exc, match=match):
        brier_competing(ties["time"], ties["status"], risk, **kwargs)
