"""Random intercept and slope mixed model against lme4 1.1 (R 4.2).

The data: 150 patients, visits at 6, 12, 24 and 36 months (15% missing at random),
``y = 3 + 0.1 t + 2.5 oa + 0.3 t oa + b0 + b1 t + e`` with ``b0 ~ N(0, 1)``,
``b1 ~ N(0, 0.4^2)``, ``e ~ N(0, 0.8^2)`` (:func:`_data`, numpy ``default_rng(2026)``),
written to ``small.csv`` and fitted once in R (the tests do not call R):

    library(lme4)
    d  <- read.csv("small.csv")
    m1 <- lmer(y ~ years * oa + (1 + years | id), data = d, REML = TRUE)
    m0 <- lmer(y ~ years * oa + (1 | id), data = d, REML = TRUE)
    fixef(m1); sqrt(diag(vcov(m1))); as.data.frame(VarCorr(m1))$vcov; logLik(m1)
    anova(m0, m1, refit = FALSE)   # Chisq and Pr(>Chisq), df 2
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studyval.analysis.mixed_models import random_intercept_lmm
from studyval.analysis.random_slope import random_slope_lmm
from studyval.errors import EstimationError, StudyvalError


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    n = 150
    oa = (rng.random(n) < 0.4).astype(float)
    b0 = rng.normal(0, 1.0, n)
    b1 = rng.normal(0, 0.4, n)
    rows = []
    for i in range(n):
        for m in (6, 12, 24, 36):
            if rng.random() < 0.15:
                continue
            t = m / 12
            y = 3 + 0.1 * t + 2.5 * oa[i] + 0.3 * t * oa[i] + b0[i] + b1[i] * t + rng.normal(0, 0.8)
            rows.append((f"p{i:03d}", t, oa[i], round(y, 3)))
    return pd.DataFrame(rows, columns=["id", "years", "oa", "y"])


@pytest.fixture(scope="module")
def fit():
    return random_slope_lmm(_data(), formula="y ~ years * oa", group="id", slope="years")


def test_fixed_effects_and_standard_errors_against_lme4(fit):
    # fixef(m1): 2.8204149841 0.2109620676 2.6753260932 0.2377223544
    np.testing.assert_allclose(
        fit.fixed["estimate"], [2.8204149841, 0.2109620676, 2.6753260932, 0.2377223544], rtol=1e-6
    )
    # sqrt(diag(vcov(m1))): 0.1412008813 0.0671290528 0.2314339358 0.1115945813
    np.testing.assert_allclose(
        fit.fixed["se"], [0.1412008813, 0.0671290528, 0.2314339358, 0.1115945813], rtol=1e-5
    )
    assert fit.fixed["term"].tolist() == ["Intercept", "years", "oa", "years:oa"]


def test_variance_components_and_likelihood_ratio_against_lme4(fit):
    # as.data.frame(VarCorr(m1))$vcov: 1.0482873811 0.1870204753 -0.0004761805 0.6910425741
    # (the covariance is nearly 0, so it is compared on the absolute scale)
    np.testing.assert_allclose(
        [fit.var_intercept, fit.var_slope, fit.var_residual],
        [1.0482873811, 0.1870204753, 0.6910425741],
        rtol=1e-5,
    )
    assert fit.cov_intercept_slope == pytest.approx(-0.0004761805, abs=1e-5)
    # logLik(m1): -840.9999314802
    assert fit.reml_loglik == pytest.approx(-840.9999314802, rel=1e-9)
    # anova(m0, m1, refit = FALSE): Chisq 38.9236609515, Pr(>Chisq) 3.5e-09 (df 2)
    assert fit.lr_chisq == pytest.approx(38.9236609515, rel=1e-6)
    assert fit.lr_p_naive == pytest.approx(stats.chi2.sf(38.9236609515, 2), rel=1e-5)
    # the boundary null: half chi2(1) + half chi2(2), smaller than the naive p
    mix = 0.5 * stats.chi2.sf(fit.lr_chisq, 1) + 0.5 * stats.chi2.sf(fit.lr_chisq, 2)
    assert fit.lr_p_value == pytest.approx(mix, rel=1e-12) and fit.lr_p_value < fit.lr_p_naive


def test_to_frame_has_fixed_effects_then_variance_components(fit):
    f = fit.to_frame()
    assert f["term"].tolist()[4:] == [
        "var_intercept",
        "var_slope",
        "cov_intercept_slope",
        "var_residual",
    ]
    assert f["se"].iloc[4:].isna().all() and (f["n_patients"] == 150).all()


def test_refuses_missing_values_and_unidentifiable_slopes():
    d = _data()
    with pytest.raises(StudyvalError, match="missing values"):
        random_slope_lmm(
            d.assign(y=d["y"].where(d.index > 0)), formula="y ~ years", group="id", slope="years"
        )
    one = d.groupby("id").head(1)
    with pytest.raises(EstimationError, match="two distinct values of years"):
        random_slope_lmm(one, formula="y ~ years", group="id", slope="years")
    with pytest.raises(StudyvalError, match="'visit' is not in the data"):
        random_slope_lmm(d, formula="y ~ years", group="id", slope="visit")


def test_a_given_intercept_fit_gives_the_same_result_as_refitting(fit):
    # issue 12: the random-intercept model of the LR test, fitted once by the caller
    d = _data()
    base = random_intercept_lmm(d, formula="y ~ years * oa", group="id")
    reused = random_slope_lmm(
        d, formula="y ~ years * oa", group="id", slope="years", intercept_fit=base
    )
    assert reused.reml_loglik_intercept == fit.reml_loglik_intercept
    assert (reused.lr_chisq, reused.lr_p_value) == (fit.lr_chisq, fit.lr_p_value)
    pd.testing.assert_frame_equal(reused.to_frame(), fit.to_frame())


@pytest.mark.parametrize(
    ("other", "match"),
    [
        pytest.param(
            dict(data=lambda d: d.assign(y=d["y"] + 0.001)), "other data", id="other-data"
        ),
        pytest.param(dict(data=lambda d: d.iloc[1:]), "other data", id="fewer-rows"),
        pytest.param(dict(formula="y ~ years + oa"), "is y ~ years \\+ oa", id="other-formula"),
        pytest.param(dict(alpha=0.1), "at level 0.9, fitted to the same", id="other-level"),
    ],
)
def test_an_intercept_fit_of_other_data_formula_or_level_is_refused(other, match):
    d = _data()
    base = random_intercept_lmm(
        other.get("data", lambda x: x)(d),
        formula=other.get("formula", "y ~ years * oa"),
        group="id",
        alpha=other.get("alpha", 0.05),
    )
    with pytest.raises(StudyvalError, match=match):
        random_slope_lmm(d, formula="y ~ years * oa", group="id", slope="years", intercept_fit=base)
