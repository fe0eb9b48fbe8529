"""Tests for studyval.analysis.cumulative_incidence: Aalen-Johansen cumulative incidence and Gray's test.

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
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.cumulative_incidence import (
    CumulativeIncidenceResult,
    GrayTestResult,
    cumulative_incidence,
    gray_test,
)
from studyval.analysis.survival import kaplan_meier
from studyval.errors import EstimationError, StudyvalError

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
    tab = r.to_frame()
    for g in (1, 2):
        sub = tab[tab["group"] == g]
        assert sub["estimate"].tolist() == pytest.approx(est[g], rel=REL)
        assert sub["variance"].tolist() == pytest.approx(var[g], rel=REL)


def test_cuminc_ties_three_groups_against_cmprsk(ties):
    # ci <- cuminc(e$time, e$status, group = e$group); timepoints(ci, c(2, 5, 10))  ("a 1" etc.)
    r = cumulative_incidence(
        ties["time"], ties["status"], cause=3, groups=ties["group"], times=[2, 5, 10]
    )
    tab = r.to_frame().set_index(["group", "time"])
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
    a1 = r1.to_frame().set_index(["group", "time"]).loc["a"]
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
        ).to_frame()
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
        tab = cumulative_incidence(
            ties["time"], ties["status"], cause=cause, times=times
        ).to_frame()
        assert tab["estimate"].tolist() == pytest.approx(pstate[:, cause].tolist(), rel=1e-12)
        assert tab["survival"].tolist() == pytest.approx(pstate[:, 0].tolist(), rel=1e-12)


def test_cuminc_loglog_interval(ties):
    # est <- timepoints(ci, 5)$est["b 2", 1]; v <- timepoints(ci, 5)$var["b 2", 1]
    # z <- qnorm(0.975); est^exp(-z*sqrt(v)/(est*log(est))); est^exp(z*sqrt(v)/(est*log(est)))
    r = cumulative_incidence(ties["time"], ties["status"], cause=2, groups=ties["group"], times=[5])
    row = r.to_frame().set_index("group").loc["b"]
    assert row["estimate"] == pytest.approx(0.2970085470085470081, rel=REL)
    assert row["se"] == pytest.approx(math.sqrt(0.0041520130224905367), rel=REL)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (0.1784958799826093789, 0.4251708949846632057), rel=1e-9
    )


def test_cuminc_counts_and_undefined_limits(ties):
    r = cumulative_incidence(ties["time"], ties["status"], cause=1)
    # table(e$status): 0 = 36, 1 = 53, 2 = 42, 3 = 19
    assert (r.n, r.n_events, r.n_competing, r.n_censored) == (150, 53, 61, 36)
    tab = r.to_frame()
    last = tab.iloc[-1]
    assert (last["n_event"], last["n_competing"], last["n_censor"]) == (53, 61, 36)
    assert tab["n_risk"].iloc[0] == 150
    # before the first event of cause 1 nothing can be said on the log(-log) scale
    zero = tab[tab["estimate"] == 0]
    assert zero["ci_low"].isna().all()
    assert r.test is None and r.groups == ("all",)
    assert r.summary_frame().loc[0, "n_events"] == 53


def test_cuminc_without_competing_events_is_one_minus_km(pbc):
    dead = (pbc["status"] == 2).astype(int)
    r = cumulative_incidence(pbc["time"], dead, cause=1, times=[500, 1825, 4000])
    km = kaplan_meier(pbc["time"], dead, times=[500, 1825, 4000]).to_frame()
    assert r.to_frame()["estimate"].to_numpy() == pytest.approx(
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
    tabs = [
        cumulative_incidence(time, code, cause=k, causes=(1, 2, 3)).to_frame() for k in (1, 2, 3)
    ]
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
    assert r.to_frame()["estimate"].tolist() == pytest.approx([0.6])


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


# --------------------------------------------------------------------------- Aalen-Johansen against 1 - KM
# R 4.2, cmprsk 2.2-11, survival 3.5 on pbc_competing.csv (2 = death, 1 = transplant competing),
# groups g <- findInterval(d$risk_b, c(0.2, 0.5)), tau <- 1826, for all and each group s:
#   tp <- timepoints(cuminc(d$time[s], d$status[s], cencode = 0), tau)
#   e <- tp$est["1 2", 1]; v <- tp$var["1 2", 1]; h <- qnorm(0.975) * sqrt(v) / (e * log(e))
#   k <- summary(survfit(Surv(time, status == 2) ~ 1, data = d[s, ]), times = tau)
#   c(sum(s), e, e^exp(-h), e^exp(h), 1 - k$surv, 1 - k$upper, 1 - k$lower)
R_AJ_KM = [
    (312, 0.28373649209958152, 0.23332560648178879, 0.336085208486676, 0.28927201801252544,
     0.23481268082134188, 0.33985541615850046),
    (170, 0.05526777592438626, 0.027031257091450673, 0.098074243188087842, 0.055887661432173052,
     0.0195792166002976, 0.090851476296558431),
    (84, 0.39136204567630661, 0.28201369402634546, 0.49893942472117353, 0.41199323881294958,
     0.28606167972255658, 0.5157117339389734),
    (58, 0.80854373383109124, 0.66176723979877095, 0.89637153863866326, 0.8185261595223281,
     0.66745609920600768, 0.90096719651425206),
]  # fmt: skip


def test_incidence_against_km_equals_cuminc_and_survfit() -> None:
    from studyval.analysis.cumulative_incidence import incidence_against_km

    d = pd.read_csv(Path(__file__).parent / "data" / "pbc_competing.csv")
    r = incidence_against_km(
        d["time"], d["status"], cause=2, horizon=1826, predicted_risk=d["risk_b"],
        cuts=[0.2, 0.5], labels=["low", "mid", "high"], causes=[1, 2],
    )  # fmt: skip
    t = r.to_frame()
    assert t["group"].tolist() == ["all", "low", "mid", "high"]
    assert t["order"].tolist() == [-1, 0, 1, 2]
    assert t["n"].tolist() == [row[0] for row in R_AJ_KM]
    cols = ["aj_incidence", "aj_ci_low", "aj_ci_high", "km_risk", "km_ci_low", "km_ci_high"]
    np.testing.assert_allclose(t[cols].to_numpy(), [row[1:] for row in R_AJ_KM], rtol=1e-9)
    # one minus Kaplan-Meier is never below the Aalen-Johansen incidence (Gooley et al. 1999)
    assert (t["excess"] >= 0).all()
    np.testing.assert_allclose(t["excess"], t["km_risk"] - t["aj_incidence"], rtol=0, atol=0)
    by = d["time"] <= 1826
    assert t["n_events"].iloc[0] == int(((d["status"] == 2) & by).sum())
    assert t["n_competing"].iloc[0] == int(((d["status"] == 1) & by).sum())


def test_incidence_against_km_without_competing_events_is_one_minus_km() -> None:
    from studyval.analysis.cumulative_incidence import incidence_against_km

    r = incidence_against_km([1, 2, 3, 4, 5], [1, 0, 1, 0, 1], cause=1, horizon=4.5)
    assert r.to_frame()["excess"].iloc[0] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"cuts": [0.5]}, "need predicted_risk", id="cuts-without-risk"),
        pytest.param(
            {"cuts": [0.5, 0.2], "predicted_risk": [0.1] * 5}, "increasing", id="cuts-order"
        ),
        pytest.param(
            {"cuts": [0.5], "predicted_risk": [0.1] * 5, "labels": ["a"]}, "2 distinct", id="labels"
        ),
        pytest.param({"cuts": [0.5], "predicted_risk": [1.2] * 5}, r"\[0, 1\]", id="risk-range"),
        pytest.param({"horizon": float("nan")}, "horizon", id="horizon"),
    ],
)
def test_incidence_against_km_errors(kwargs, match) -> None:
    from studyval.analysis.cumulative_incidence import incidence_against_km

    args = {"cause": 1, "horizon": 4.0} | kwargs
    with pytest.raises(StudyvalError, match=match):
        incidence_against_km([1, 2, 3, 4, 5], [2, 1, 0, 1, 0], **args)
