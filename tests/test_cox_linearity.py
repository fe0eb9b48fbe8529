"""Spline linearity checks of continuous Cox predictors (studyval.analysis.cox_linearity).

Oracle: R 4.2, rms 6.5.0 / Hmisc 4.8.0, survival. Data: ``tests/data/lung.csv`` (R's
``survival::lung``, status recoded 0/1), complete cases of the columns used::

    lung <- read.csv("lung.csv"); lung$status <- lung$status - 1
    d <- na.omit(lung[, c("time", "status", "age", "sex", "wt.loss", "meal.cal")])  # 171 rows

The function reports the likelihood-ratio test of the nonlinear spline terms, which is
``anova(coxph(linear), coxph(rcs))`` in R; ``rms::anova(cph(...))`` reports the Wald test of
the same terms (2.39 on 2 df, p = 0.302 for age; asymptotically equivalent, not equal), shown
for reference only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.cox_linearity import (
    CoxLinearityResult,
    cox_linearity,
    rcs_basis,
    rcs_knots,
)
from studyval.errors import EstimationError, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-6  # iterative Cox fits; observed agreement ~1e-12
REL_EXACT = 1e-12  # knots and basis are closed forms
COVS = ["age", "sex", "wt.loss", "meal.cal"]


@pytest.fixture(scope="module")
def lung171() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    cols = ["time", "status", "age", "sex", "wt.loss", "meal.cal"]
    return d[cols].dropna().reset_index(drop=True)


# --------------------------------------------------------------------------- knots and basis
@pytest.mark.parametrize(
    ("column", "n_knots", "expected"),
    [
        # attr(rms::rcs(d$age, 4), "parms")
        pytest.param("age", 4, [44.5, 59.499999999999993, 67.5, 75.5], id="age-4"),
        # attr(rms::rcs(d$wt.loss, 4), "parms")
        pytest.param("wt.loss", 4, [-5.0, 2.0, 11.5, 35.0], id="wtloss-4"),
        # attr(rms::rcs(d$meal.cal, 4), "parms")
        pytest.param("meal.cal", 4, [325.5, 825.0, 1034.5, 1462.5], id="mealcal-4"),
        # attr(rms::rcs(d$meal.cal, 5), "parms")
        pytest.param(
            "meal.cal", 5, [325.5, 701.24999999999977, 975.0, 1106.25, 1462.5], id="mealcal-5"
        ),
        # attr(rms::rcs(d$age, 3), "parms")
        pytest.param("age", 3, [50.0, 64.0, 74.0], id="age-3"),
    ],
)
def test_knots_against_rms_rcs(lung171, column, n_knots, expected):
    np.testing.assert_allclose(rcs_knots(lung171[column], n_knots), expected, rtol=REL_EXACT)


def test_knots_under_100_values_use_fifth_extremes_against_rms(lung171):
    # attr(rcs(d$age[1:80], 4), "parms")  ->  48 60 68 74 (5th smallest and 5th largest outside)
    np.testing.assert_allclose(rcs_knots(lung171["age"][:80]), [48, 60, 68, 74], rtol=REL_EXACT)


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        # x <- c(rep(0, 20), 1:80, rep(200, 10)); attr(rcs(x, 4), "parms")
        pytest.param(
            np.r_[np.zeros(20), np.arange(1.0, 81), np.full(10, 200.0)],
            [1.0, 40.5, 75.149999999999991, 80.0],
            id="tied-both-ends",
        ),
        # attr(rcs(c(rep(0, 20), 1:119), 4), "parms")
        pytest.param(
            np.r_[np.zeros(20), np.arange(1.0, 120)],
            [1.0, 7.8500000000000005, 60.4999999999999929, 113.1499999999999915],
            id="tied-lowest",
        ),
    ],
)
def test_knots_with_a_heavily_tied_extreme_against_rms(x, expected):
    np.testing.assert_allclose(rcs_knots(x), expected, rtol=REL_EXACT)


def test_basis_against_rms_rcs(lung171):
    # s <- d[1:80, ]; head(rcs(s$age, 4), 3)
    x = lung171["age"][:80].to_numpy(float)
    b = rcs_basis(x[:3], rcs_knots(x))
    expected = [
        [68, 11.83431952662722608, 0.75739644970414255],
        [57, 1.07840236686390623, 0.0],
        [74, 24.61538461538463096, 3.31360946745562224],
    ]
    np.testing.assert_allclose(b, expected, rtol=REL_EXACT, atol=1e-14)


def test_basis_is_linear_beyond_the_outer_knots():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    x = np.array([3.0, 4.0, 5.0, 6.0, 7.0])
    second = np.diff(rcs_basis(x, t)[:, 1:], n=2, axis=0)
    np.testing.assert_allclose(second, 0.0, atol=1e-12)
    np.testing.assert_array_equal(rcs_basis([-1.0, 0.0], t)[:, 1:], 0.0)


# --------------------------------------------------------------------------- the test
@pytest.mark.parametrize(
    ("predictor", "chisq", "p_value", "loglik_spline"),
    [
        # f0 <- coxph(Surv(time, status) ~ age + sex + wt.loss + meal.cal, data = d)
        # fa <- coxph(Surv(time, status) ~ rcs(age, 4) + sex + wt.loss + meal.cal, data = d)
        # a <- anova(f0, fa); a[2, "Chisq"]; a[2, "Pr(>|Chi|)"]; fa$loglik[2]
        pytest.param(
            "age", 2.3014492248005354, 0.31640741355665247, -522.05173426794920, id="age"
        ),
        # fw <- coxph(Surv(time, status) ~ age + sex + rcs(wt.loss, 4) + meal.cal, data = d)
        # a <- anova(f0, fw); a[2, "Chisq"]; a[2, "Pr(>|Chi|)"]; fw$loglik[2]
        pytest.param(
            "wt.loss", 3.6869134598305209, 0.15826938491992623, -521.35900215043421, id="wt.loss"
        ),
    ],
)
def test_lr_test_of_nonlinear_terms_against_coxph_rcs(
    lung171, predictor, chisq, p_value, loglik_spline
):
    r = cox_linearity(
        lung171, duration="time", event="status", covariates=COVS, predictors=["age", "wt.loss"]
    )
    t = r.tests[["age", "wt.loss"].index(predictor)]
    assert t.predictor == predictor
    assert t.chisq == pytest.approx(chisq, rel=REL)
    assert t.p_value == pytest.approx(p_value, rel=REL)
    assert t.df == 2 and t.n_knots == 4
    assert t.loglik_spline == pytest.approx(loglik_spline, rel=REL)
    # f0$loglik[2]
    assert t.loglik_linear == pytest.approx(-523.20245888034947, rel=REL)
    assert (t.n, t.n_events) == (171, 124)


def test_small_sample_and_other_knots_against_coxph_rcs(lung171):
    # s <- d[1:80, ]; g0 <- coxph(Surv(time, status) ~ age + sex, data = s)
    # g1 <- coxph(Surv(time, status) ~ rcs(age, 4) + sex, data = s)
    # a <- anova(g0, g1); a[2, "Chisq"]; a[2, "Pr(>|Chi|)"]
    s = lung171.iloc[:80]
    t = cox_linearity(
        s, duration="time", event="status", covariates=["age", "sex"], predictors=["age"]
    ).tests[0]
    assert t.chisq == pytest.approx(3.222792350855002, rel=REL)
    assert t.p_value == pytest.approx(0.19960873063051968, rel=REL)
    assert t.knots == "48.0, 60.0, 68.0, 74.0"
    # f3 <- coxph(Surv(time, status) ~ rcs(age, 3) + sex + wt.loss + meal.cal, data = d)
    # a <- anova(f0, f3): Chisq 0.69961823484641172 on 1 df, p 0.40291200260231713
    t3 = cox_linearity(
        lung171, duration="time", event="status", covariates=COVS, predictors=["age"], n_knots=3
    ).tests[0]
    assert (t3.chisq, t3.df) == (pytest.approx(0.69961823484641172, rel=REL), 1)
    assert t3.p_value == pytest.approx(0.40291200260231713, rel=REL)
    # f1 <- coxph(Surv(time, status) ~ age + sex + wt.loss + rcs(meal.cal, 5), data = d,
    #             ties = "breslow"), against the linear breslow fit: Chisq 0.69548340976439249 (3 df)
    t5 = cox_linearity(
        lung171,
        duration="time",
        event="status",
        covariates=COVS,
        predictors=["meal.cal"],
        n_knots=5,
        ties="breslow",
    )
    assert t5.ties == "breslow"
    assert t5.tests[0].chisq == pytest.approx(0.69548340976439249, rel=REL)
    assert t5.tests[0].p_value == pytest.approx(0.87426577920793747, rel=REL)
    assert t5.tests[0].df == 3


def test_to_frame_one_row_per_predictor(lung171):
    r = cox_linearity(
        lung171, duration="time", event="status", covariates=COVS, predictors=["wt.loss", "age"]
    )
    assert isinstance(r, CoxLinearityResult)
    f = r.to_frame()
    assert list(f["predictor"]) == ["wt.loss", "age"]
    assert list(f.columns) == [
        "predictor", "n_knots", "knots", "chisq", "df", "p_value", "loglik_linear",
        "loglik_spline", "n", "n_events", "covariates", "method", "ties",
    ]  # fmt: skip
    assert f.loc[1, "covariates"] == "sex, wt.loss, meal.cal"
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.ties = "x"  # type: ignore[misc]




def test_a_u_shaped_effect_is_detected_property():
    rng = np.random.default_rng(7)
    n = 400
    x = rng.uniform(-2, 2, n)
    z = rng.integers(0, 2, n).astype(float)
    cens = rng.exponential(2.0, n)

    def frame(lp):
        t = rng.exponential(1.0 / np.exp(lp))
        return pd.DataFrame({"t": np.minimum(t, cens), "e": (t <= cens).astype(int), "x": x, "z": z})

    kw = {"duration": "t", "event": "e", "covariates": ["x", "z"], "predictors": ["x"]}
    u = cox_linearity(frame(1.2 * x**2 + 0.5 * z), **kw).tests[0]
    assert u.p_value < 1e-6
    assert u.chisq >= 0.0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"predictors": []}, StudyvalError, "predictors is empty", id="none"),
        pytest.param({"predictors": ["bmi"]}, StudyvalError, "not a covariate", id="unknown"),
        pytest.param({"predictors": ["age", "age"]}, StudyvalError, "named twice", id="twice"),
        pytest.param({"n_knots": 7}, StudyvalError, "from 3 to 6", id="knots-7"),
        pytest.param({"n_knots": True}, StudyvalError, "from 3 to 6", id="knots-bool"),
        pytest.param({"predictors": ["sex"]}, EstimationError, "2 distinct values", id="binary"),
    ],
)
def test_errors(lung171, kwargs, error, match):
    args = {"duration": "time", "event": "status", "covariates": COVS, "predictors": ["age"]}
    with pytest.raises(error, match=match):
        cox_linearity(lung171, **{**args, **kwargs})


def test_knot_errors():
    with pytest.raises(EstimationError, match="at least 6"):
        rcs_knots([1.0, 2.0, 3.0])
    with pytest.raises(StudyvalError, match="non-finite"):
        rcs_knots([1.0, 2.0, np.nan, 4.0, 5.0, 6.0, 7.0])
    with pytest.raises(StudyvalError, match="increasing"):
        rcs_basis([1.0], [1.0, 1.0, 2.0])
