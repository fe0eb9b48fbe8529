"""Exact binomial power, saw-tooth sample size, two-proportion power and weeks needed, against R."""

from __future__ import annotations

import pytest

from studyval.analysis.sample_size_binomial import (
    exact_binomial_power,
    exact_binomial_sample_size,
    periods_needed,
    two_proportion_power,
)
from studyval.errors import StudyvalError

# pw <- function(n, p0, p1, alt = "two.sided", a = 0.05) { x <- 0:n;
#   pv <- sapply(x, function(k) binom.test(k, n, p0, alternative = alt)$p.value); sum(dbinom(x[pv <= a], n, p1)) }


@pytest.mark.parametrize(
    ("n", "p0", "p1", "alt", "power"),
    [
        pytest.param(
            180, 0.77, 0.90, "two-sided", 0.998047858898297, id="detection-180"
        ),  # pw(180, 0.77, 0.90)
        pytest.param(
            180, 0.43, 0.60, "two-sided", 0.995851406341813, id="referral-180"
        ),  # pw(180, 0.43, 0.60)
        pytest.param(
            50, 0.77, 0.90, "greater", 0.770226841803623, id="greater-50"
        ),  # pw(50, 0.77, 0.90, "greater")
        pytest.param(
            20, 0.5, 0.2, "less", 0.804207785459550, id="less-20"
        ),  # pw(20, 0.5, 0.2, "less")
    ],
)
def test_exact_power_against_R(n, p0, p1, alt, power):
    r = exact_binomial_power(n, p0=p0, p1=p1, alternative=alt)
    assert r.power == pytest.approx(power, rel=1e-9)
    assert r.size <= 0.05


def test_sawtooth_sample_size_against_R():
    # ns <- 1:200; pp <- sapply(ns, function(n) pw(n, 0.77, 0.90))
    # c(min(ns[pp >= 0.8]), max(ns[pp < 0.8]) + 1)  ->  65 76
    r = exact_binomial_sample_size(p0=0.77, p1=0.90, power=0.8, n_max=200)
    assert (r.n_first, r.n_stable) == (65, 76)
    assert r.power_at_n_first >= 0.8


@pytest.mark.parametrize(
    ("n", "p1", "p2", "alpha", "power"),
    [
        pytest.param(
            150, 0.77, 0.9, 0.05, 0.862141944510036, id="n150"
        ),  # power.prop.test(n = 150, p1 = 0.77, p2 = 0.9)$power
        pytest.param(
            50, 0.43, 0.65, 0.01, 0.352686055555295, id="n50-alpha01"
        ),  # power.prop.test(n = 50, p1 = 0.43, p2 = 0.65, sig.level = 0.01)$power
    ],
)
def test_two_proportion_power_equal_n_against_power_prop_test(n, p1, p2, alpha, power):
    assert two_proportion_power(p1=p1, p2=p2, n1=n, n2=n, alpha=alpha).power == pytest.approx(
        power, rel=1e-10
    )


def test_two_proportion_power_is_symmetric_in_the_groups():
    a = two_proportion_power(p1=0.9, p2=0.77, n1=230, n2=180).power
    b = two_proportion_power(p1=0.77, p2=0.9, n1=180, n2=230).power
    assert a == pytest.approx(b)


def test_periods_needed_by_hand():
    r = periods_needed(
        76, volume_per_period=160, prevalence=0.18
    )  # 28.8 a week -> 76/28.8 = 2.64 -> 3
    assert r.periods == 3 and r.events_per_period == pytest.approx(28.8)
    assert periods_needed(57.6 // 1 + 0, volume_per_period=160, prevalence=0.18).periods == 2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: exact_binomial_power(0, p0=0.5, p1=0.6), "n must be positive", id="n-zero"
        ),
        pytest.param(
            lambda: exact_binomial_power(10, p0=0.5, p1=0.6, alternative="two.sided"),
            "did you mean 'two-sided'",
            id="R-spelling",
        ),
        pytest.param(
            lambda: exact_binomial_sample_size(p0=0.77, p1=0.78, power=0.9, n_max=50),
            "not reached",
            id="unreachable",
        ),
        pytest.param(
            lambda: periods_needed(10, volume_per_period=0, prevalence=0.2), "positive", id="volume"
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()


@pytest.mark.parametrize(
    ("p1", "p2", "n1", "n2", "expected"),
    [
        # Hmisc::bpower(p1 = 0.9, p2 = 0.77, n1 = 230, n2 = 180) = 0.94428075970045411, which adds
        # the far tail pnorm((-ds - |p1 - p2|) / sd) = 2.99e-08 (Fleiss eq. 4.14 leaves it out):
        # 0.94428075970045411 - 2.9895e-08 = 0.94428072980502087
        pytest.param(0.9, 0.77, 230, 180, 0.94428072980502087, id="bpower-230-180"),
        # Hmisc::bpower(p1 = 0.43, p2 = 0.60, n1 = 120, n2 = 60) = 0.57705781714384519;
        # far tail 1.4602e-05 -> 0.57704321490510835
        pytest.param(0.43, 0.60, 120, 60, 0.57704321490510835, id="bpower-120-60"),
    ],
)
def test_two_proportion_power_unequal_n_against_Hmisc_bpower(p1, p2, n1, n2, expected):
    res = two_proportion_power(p1=p1, p2=p2, n1=n1, n2=n2)
    assert res.power == pytest.approx(expected, rel=1e-10)
