"""Exact binomial power, saw-tooth sample size, two-proportion power and weeks needed, against R."""

from __future__ import annotations

import math

import pytest

from studyval.analysis import sample_size_binomial as ssb
from studyval.analysis.sample_size_binomial import (
    exact_binomial_power,
    exact_binomial_sample_size,
    periods_needed,
    two_proportion_periods_needed,
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


# Hmisc::bpower is the same normal approximation plus the far tail pnorm((-ds - |p1 - p2|) / sd),
# so the whole-period search in R is
#   library(Hmisc); srch <- function(p1, p2, n2, e, pw = 0.8, wmax = 260) { w <- 1:wmax
#     p <- sapply(w, function(k) bpower(p1 = p1, p2 = p2, n1 = k * e, n2 = n2)); min(w[p >= pw]) }
# and the unrounded n1 is bsamsize's n1 at the allocation that reproduces n2:
#   root <- function(p1, p2, n2, pw = 0.8) { f <- uniroot(function(f)
#     bsamsize(p1, p2, fraction = f, power = pw)["n2"] - n2, c(0.01, 0.99), tol = 1e-14)$root
#     bsamsize(p1, p2, fraction = f, power = pw)["n1"] }
@pytest.mark.parametrize(
    ("p1", "p2", "n2", "volume", "prevalence", "weeks", "power", "n1_unrounded"),
    [
        # srch(0.9, 0.77, 180, 28.8) = 4; bpower(p1 = 0.9, p2 = 0.77, n1 = 115.2, n2 = 180)
        # = 0.83127010829934056 minus the far tail 8.5084510167967659e-08 = 0.83127002321483034;
        # root(0.9, 0.77, 180) = 102.63753177952762
        pytest.param(
            0.9,
            0.77,
            180,
            160,
            0.18,
            4,
            0.83127002321483034,
            102.63753177952762,
            id="detection-0.77-to-0.90",
        ),
        # srch(0.6, 0.43, 180, 28.8) = 4; bpower(...) = 0.81707922723259319 - 5.0815134718776833e-07
        # = 0.81707871908124596; root(0.6, 0.43, 180) = 107.29668229734501
        pytest.param(
            0.6,
            0.43,
            180,
            160,
            0.18,
            4,
            0.81707871908124596,
            107.29668229734501,
            id="referral-0.43-to-0.60",
        ),
        # srch(0.6, 0.43, 100, 10) = 21; bpower(p1 = 0.6, p2 = 0.43, n1 = 210, n2 = 100)
        # = 0.80448172046257449 - 7.4054212939755362e-07 = 0.80448097992044509;
        # root(0.6, 0.43, 100) = 202.96185885003968
        pytest.param(
            0.6,
            0.43,
            100,
            50,
            0.2,
            21,
            0.80448097992044509,
            202.96185885003968,
            id="small-fixed-group",
        ),
    ],
)
def test_two_proportion_periods_against_Hmisc(
    p1, p2, n2, volume, prevalence, weeks, power, n1_unrounded
):
    r = two_proportion_periods_needed(
        p1=p1, p2=p2, n2=n2, volume_per_period=volume, prevalence=prevalence, power=0.8
    )
    assert r.reached and r.periods == weeks
    assert r.n1 == pytest.approx(weeks * volume * prevalence, rel=1e-15)
    assert r.power == pytest.approx(power, rel=1e-10)
    assert r.n1_unrounded == pytest.approx(n1_unrounded, rel=1e-9)
    assert r.periods == math.ceil(r.periods_unrounded)


def test_two_proportion_periods_first_whole_period_reaching_the_target():
    r = two_proportion_periods_needed(
        p1=0.9, p2=0.77, n2=180, volume_per_period=160, prevalence=0.18, power=0.8
    )
    before = two_proportion_power(p1=0.9, p2=0.77, n1=(r.periods - 1) * 160 * 0.18, n2=180)
    assert before.power < 0.8 <= r.power
    at_root = two_proportion_power(p1=0.9, p2=0.77, n1=r.n1_unrounded, n2=180)
    assert at_root.power == pytest.approx(0.8, abs=1e-10)


def test_two_proportion_periods_not_reached_with_a_small_fixed_group():
    # with n2 = 20 fixed the power tends to pnorm((0.17 - qnorm(0.975) * sqrt(0.6 * 0.4 / 20)) /
    # sqrt(0.43 * 0.57 / 20)), about 0.343, as n1 grows, below the target of 0.8:
    # Hmisc::bpower(p1 = 0.6, p2 = 0.43, n1 = 1e9, n2 = 20) = 0.34342953798097747 minus its far
    # tail 0.00025531667588726554 = 0.34317422130509023
    r = two_proportion_periods_needed(
        p1=0.6, p2=0.43, n2=20, volume_per_period=160, prevalence=0.18, power=0.8
    )
    assert not r.reached and r.periods is None
    assert math.isnan(r.n1) and math.isnan(r.power) and math.isnan(r.periods_unrounded)
    assert two_proportion_power(p1=0.6, p2=0.43, n1=1e9, n2=20).power == pytest.approx(
        0.34317422130509023, rel=1e-9
    )


def test_two_proportion_periods_stop_at_max_periods():
    r = two_proportion_periods_needed(
        p1=0.9, p2=0.77, n2=180, volume_per_period=160, prevalence=0.18, power=0.8, max_periods=3
    )
    assert not r.reached and r.max_periods == 3


def test_periods_needed_unrounded():
    r = periods_needed(76, volume_per_period=160, prevalence=0.18)
    assert r.periods_unrounded == pytest.approx(76 / 28.8) and r.periods == 3


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"max_periods": 0}, "max_periods must be positive", id="max-periods"),
        pytest.param({"volume_per_period": 0}, "volume_per_period must be positive", id="volume"),
        pytest.param({"power": 1.0}, "power must lie strictly between", id="power"),
        pytest.param({"n2": 0}, "n1 and n2 must be positive", id="n2"),
    ],
)
def test_two_proportion_periods_errors(kwargs, match):
    args = {"p1": 0.9, "p2": 0.77, "n2": 180, "volume_per_period": 160, "prevalence": 0.18}
    with pytest.raises(StudyvalError, match=match):
        two_proportion_periods_needed(**{**args, "power": 0.8, **kwargs})


# ----------------------------------------------------------------------------- Fisher and McNemar power


@pytest.mark.parametrize(
    ("n1", "n2", "p1", "p2", "alternative", "expected"),
    [
        # fpow <- function(n1, n2, p1, p2, alpha = 0.05, alt = "two.sided") { s <- 0
        #   for (a in 0:n1) for (b in 0:n2) { pv <- fisher.test(matrix(c(a, n1 - a, b, n2 - b), 2,
        #     byrow = TRUE), alternative = alt)$p.value
        #     if (pv <= alpha) s <- s + dbinom(a, n1, p1) * dbinom(b, n2, p2) }; s }
        # fpow(30, 25, .8, .5)
        pytest.param(30, 25, 0.8, 0.5, "two-sided", 0.60812020192867999, id="small-two-sided"),
        # fpow(30, 25, .8, .5, alt = "greater")
        pytest.param(30, 25, 0.8, 0.5, "greater", 0.66466991893247063, id="small-greater"),
        # fpow(230, 180, .9, .77): the vcf-opportunistic planned counts (issue 16 quotes 0.940)
        pytest.param(230, 180, 0.9, 0.77, "two-sided", 0.93976853336163046, id="vcf-planned"),
    ],
)
def test_fisher_exact_power_against_r_enumeration(n1, n2, p1, p2, alternative, expected):
    r = ssb.fisher_exact_power(n1, n2, p1=p1, p2=p2, alternative=alternative)
    assert r.power == pytest.approx(expected, rel=1e-6)
    assert r.size <= 0.05


def test_fisher_power_beside_the_score_approximation_at_the_planned_counts():
    # issue 16: "Fisher's exact power at the planned counts, by enumeration, is 0.940, against
    # 0.944 from the score approximation"
    r = ssb.fisher_exact_power(230, 180, p1=0.9, p2=0.77)
    assert round(r.power, 3) == 0.940 and round(r.power_score_approx, 3) == 0.944
    same = ssb.two_proportion_power(p1=0.9, p2=0.77, n1=230, n2=180).power
    assert r.power_score_approx == same


def test_fisher_power_is_symmetric_in_the_groups():
    a = ssb.fisher_exact_power(20, 15, p1=0.7, p2=0.3).power
    b = ssb.fisher_exact_power(15, 20, p1=0.3, p2=0.7).power
    assert a == pytest.approx(b, rel=1e-12)


@pytest.mark.parametrize(
    ("n", "p10", "p01", "method", "expected"),
    [
        # mpow <- function(n, p10, p01, alpha = 0.05) { psi <- p10 + p01; s <- 0
        #   for (m in 1:n) for (b in 0:m) if (binom.test(b, m)$p.value <= alpha)
        #     s <- s + dbinom(m, n, psi) * dbinom(b, m, p10 / psi); s }
        # mpow(40, .2, .05)
        pytest.param(40, 0.2, 0.05, "exact", 0.36370554212668899, id="exact-40"),
        # mpow(180, .9 * .23, .77 * .1): the vcf-opportunistic planned retrospective scans
        pytest.param(180, 0.207, 0.077, "exact", 0.90010484343275377, id="exact-vcf"),
        # the same loop with mcnemar.test(matrix(c(0, b, m - b, 0), 2, byrow = TRUE))$p.value
        pytest.param(30, 0.3, 0.1, "asymptotic-cc", 0.30116034230299543, id="cc-30"),
        # ... mcnemar.test(..., correct = FALSE)$p.value
        pytest.param(30, 0.3, 0.1, "asymptotic", 0.39674641344940942, id="nocc-30"),
    ],
)
def test_mcnemar_power_against_r_enumeration(n, p10, p01, method, expected):
    r = ssb.mcnemar_power(n, p10=p10, p01=p01, method=method)
    assert r.power == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    ("n", "p10", "p01", "power", "expected_power", "expected_n"),
    [
        # Connor (1987) as coded in ajfhelpR::pwr_mcnemar (rdrr.io):
        # pnorm((abs(d) * sqrt(n) - qnorm(.975) * sqrt(psi)) / sqrt(psi - d^2)) and
        # ((qnorm(.975) * sqrt(psi) + qnorm(power) * sqrt(psi - d^2)) / d)^2
        pytest.param(180, 0.207, 0.077, 0.8, 0.9120902598557642, 129.51516198100279, id="vcf"),
        pytest.param(40, 0.2, 0.05, 0.9, 0.47384022541426318, 112.53576449951603, id="n40"),
    ],
)
def test_mcnemar_connor_approximation_against_r(n, p10, p01, power, expected_power, expected_n):
    r = ssb.mcnemar_power(n, p10=p10, p01=p01, target_power=power)
    assert r.power_connor == pytest.approx(expected_power, rel=1e-6)
    assert r.n_connor == pytest.approx(expected_n, rel=1e-6)


def test_discordant_probabilities_under_conditional_independence_and_correlation():
    p10, p01 = ssb.discordant_probabilities(0.9, 0.77)
    assert (p10, p01) == pytest.approx((0.9 * 0.23, 0.77 * 0.1))
    q10, q01 = ssb.discordant_probabilities(0.9, 0.77, phi=0.2)
    assert q10 - q01 == pytest.approx(0.9 - 0.77) and q10 < p10  # margins kept, fewer discordant
    with pytest.raises(StudyvalError, match="not attainable"):
        ssb.discordant_probabilities(0.9, 0.2, phi=0.9)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(lambda: ssb.fisher_exact_power(0, 10, p1=0.5, p2=0.4), "positive", id="n1"),
        pytest.param(lambda: ssb.mcnemar_power(10, p10=0.0, p01=0.1), "p10 and p01", id="p10"),
        pytest.param(
            lambda: ssb.mcnemar_power(10, p10=0.1, p01=0.1, method="exakt"), "did you mean", id="m"
        ),
        pytest.param(
            lambda: ssb.mcnemar_power(10, p10=0.1, p01=0.1, target_power=0.8),
            "no difference",
            id="no-difference",
        ),
    ],
)
def test_power_bad_inputs_are_named(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()
