"""Delta-adjusted (MNAR) mixed-model contrast and its tipping point, against lme4 1.1 (R 4.2).

The data are those of tests/test_random_slope.py (:func:`_data`), fitted with a random
intercept. R (the tests do not call R):

    m0 <- lmer(y ~ years * oa + (1 | id), data = d, REML = TRUE)
    L <- c(0, 0, 1, 3)                       # OA minus no OA at 3 years
    est <- sum(L * fixef(m0)); se <- sqrt(t(L) %*% vcov(m0) %*% L)   # 3.4322888250 0.2599671508
    (-est + qnorm(0.975) * se) / 0.3         # tipping delta with pi = 0.3: -9.7425419074

statsmodels' and lme4's random-intercept covariances agree to about 1e-4 relative
(tests/test_mixed_models.py), hence the tolerance on the standard error and the tipping point.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from test_random_slope import _data

from studyval.analysis.delta_adjustment import delta_adjusted_contrast
from studyval.analysis.mixed_models import random_intercept_lmm
from studyval.errors import StudyvalError


@pytest.fixture(scope="module")
def fit():
    return random_intercept_lmm(_data(), formula="y ~ years * oa", group="id")


def test_contrast_and_tipping_point_against_lme4(fit):
    r = delta_adjusted_contrast(
        fit.fixed,
        fit.cov_fixed,
        contrast={"oa": 1, "years:oa": 3},
        n_missing=3,
        n_group=10,
        deltas=[0.0, -5.0, -10.0],
    )
    assert r.estimate_mar == pytest.approx(3.4322888250, rel=1e-6)
    assert r.se == pytest.approx(0.2599671508, rel=1e-4)
    assert r.tipping_delta == pytest.approx(-9.7425419074, rel=1e-4)
    t = r.to_frame()
    np.testing.assert_allclose(t["estimate"], r.estimate_mar + 0.3 * t["delta"], rtol=1e-12)
    # at the tipping point the interval's near limit is 0; beyond it the interval holds 0
    at = delta_adjusted_contrast(
        fit.fixed,
        fit.cov_fixed,
        contrast={"oa": 1, "years:oa": 3},
        n_missing=3,
        n_group=10,
        deltas=[r.tipping_delta],
    ).to_frame()
    assert at["ci_low"].iloc[0] == pytest.approx(0.0, abs=1e-12)
    assert at["p_value"].iloc[0] == pytest.approx(0.05, rel=1e-9)
    assert t["ci_low"].iloc[-1] < 0 < t["ci_high"].iloc[-1]
    assert t["p_value"].iloc[0] == pytest.approx(
        2 * stats.norm.sf(r.estimate_mar / r.se), rel=1e-12
    )


def test_no_tipping_point_when_mar_already_includes_zero(fit):
    r = delta_adjusted_contrast(
        fit.fixed, fit.cov_fixed, contrast={"years": 1}, n_missing=0, n_group=5, deltas=[0.0]
    )
    assert r.missing_fraction == 0.0 and np.isnan(r.tipping_delta)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"contrast": {"age": 1}}, "not fixed effects", id="unknown-term"),
        pytest.param({"n_missing": 11}, "n_missing <= n_group", id="more-missing-than-patients"),
        pytest.param({"deltas": []}, "non-empty", id="no-deltas"),
    ],
)
def test_refuses(fit, kwargs, match):
    args = {"contrast": {"oa": 1}, "n_missing": 3, "n_group": 10, "deltas": [0.0], **kwargs}
    with pytest.raises(StudyvalError, match=match):
        delta_adjusted_contrast(fit.fixed, fit.cov_fixed, **args)
