"""Exact one-sample binomial test and two independent proportions, against R and Newcombe (1998a)."""

from __future__ import annotations

import pytest

from studyval.analysis.binomial_tests import binomial_test, newcombe_difference_ci, two_proportions
from studyval.errors import EstimationError, StudyvalError

REL = 1e-9


@pytest.mark.parametrize(
    ("x", "n", "p0", "alt", "p", "lo", "hi"),
    [
        # binom.test(682, 925, p = 0.75)
        pytest.param(
            682,
            925,
            0.75,
            "two-sided",
            0.382491559574852,
            0.707668264079039,
            0.765406558241525,
            id="two-sided",
        ),
        # binom.test(160, 180, p = 0.77, alternative = "greater")
        pytest.param(
            160, 180, 0.77, "greater", 3.46107984794856e-05, 0.842648480090401, 1.0, id="greater"
        ),
        # binom.test(60, 180, p = 0.43, alternative = "less")
        pytest.param(60, 180, 0.43, "less", 0.00506997954837325, 0.0, 0.395680505638478, id="less"),
        # binom.test(3, 10, p = 0.77)
        pytest.param(
            3,
            10,
            0.77,
            "two-sided",
            0.00208851897583868,
            0.0667395111777345,
            0.652452850059997,
            id="small-n",
        ),
        # binom.test(145, 180, p = 0.77)
        pytest.param(
            145,
            180,
            0.77,
            "two-sided",
            0.288008117001474,
            0.740094890199305,
            0.860667077297536,
            id="above-baseline",
        ),
    ],
)
def test_binomial_test_against_R_binom_test(x, n, p0, alt, p, lo, hi):
    r = binomial_test(x, n, p0=p0, alternative=alt)
    assert r.p_value == pytest.approx(p, rel=REL)
    assert r.ci_low == pytest.approx(lo, rel=REL, abs=1e-15)
    assert r.ci_high == pytest.approx(hi, rel=REL)
    assert (r.numerator, r.denominator) == (x, n)


def test_binomial_test_at_the_mean_has_p_one():
    assert binomial_test(50, 100, p0=0.5).p_value == 1.0


@pytest.mark.parametrize(
    ("test", "alt", "stat", "p"),
    [
        # prop.test(c(150, 140), c(170, 180), correct = FALSE)
        pytest.param("score", "two-sided", 6.73127488543310, 0.00947368647695183, id="score"),
        # prop.test(c(150, 140), c(170, 180), correct = TRUE)
        pytest.param("score-cc", "two-sided", 6.01517307114417, 0.0141833874365573, id="score-cc"),
        # prop.test(c(150, 140), c(170, 180), correct = FALSE, alternative = "greater")
        pytest.param("score", "greater", 6.73127488543310, 0.00473684323847591, id="score-greater"),
        # fisher.test(matrix(c(150, 20, 140, 40), 2, byrow = TRUE))
        pytest.param("fisher", "two-sided", None, 0.0106085554354878, id="fisher"),
        # fisher.test(matrix(c(150, 20, 140, 40), 2, byrow = TRUE), alternative = "greater")
        pytest.param("fisher", "greater", None, 0.0067660569007704, id="fisher-greater"),
    ],
)
def test_two_proportions_against_R(test, alt, stat, p):
    r = two_proportions(150, 170, 140, 180, test=test, alternative=alt)
    assert r.p_value == pytest.approx(p, rel=1e-8)
    if stat is not None:
        assert r.statistic == pytest.approx(stat, rel=1e-10)
    assert r.difference == pytest.approx(150 / 170 - 140 / 180)


def test_score_cc_caps_the_correction_like_R():
    # prop.test(c(15, 10), c(25, 30), correct = TRUE): X-squared 2.9095, p 0.0880591712850344
    r = two_proportions(15, 25, 10, 30, test="score-cc")
    assert r.statistic == pytest.approx(2.9095, rel=1e-10)
    assert r.p_value == pytest.approx(0.0880591712850344, rel=1e-9)


@pytest.mark.parametrize(
    ("counts", "lo", "hi"),
    [
        # Newcombe (1998a) Stat Med 17:873-890, table II, method 10 (hybrid score, no CC), to 4 dp.
        pytest.param((56, 70, 48, 80), 0.0524, 0.3339, id="newcombe-a"),
        pytest.param((9, 10, 3, 10), 0.1705, 0.8090, id="newcombe-b"),
        pytest.param((5, 56, 0, 29), -0.0381, 0.1926, id="newcombe-d"),
        pytest.param((0, 10, 0, 20), -0.1611, 0.2775, id="newcombe-e"),
        pytest.param((0, 10, 0, 10), -0.2775, 0.2775, id="newcombe-f"),
        pytest.param((10, 10, 0, 20), 0.6791, 1.0, id="newcombe-g"),
        pytest.param((10, 10, 0, 10), 0.6075, 1.0, id="newcombe-h"),
        # Fagerland, Lydersen & Laake (2017) ch. 4, Perondi et al. 2004: 7/34 vs 1/34 -> 0.0189 to 0.3404
        pytest.param((7, 34, 1, 34), 0.0189, 0.3404, id="fagerland-perondi"),
    ],
)
def test_newcombe_hybrid_score_against_published_examples(counts, lo, hi):
    low, high = newcombe_difference_ci(*counts)
    assert round(low, 4) == pytest.approx(lo, abs=1e-12)
    assert round(high, 4) == pytest.approx(hi, abs=1e-12)


def test_swapping_groups_flips_the_difference_and_interval():
    a = two_proportions(30, 50, 20, 45, test="score")
    b = two_proportions(20, 45, 30, 50, test="score")
    assert a.difference == pytest.approx(-b.difference)
    assert a.ci_low == pytest.approx(-b.ci_high)
    assert a.p_value == pytest.approx(b.p_value)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: binomial_test(5, 10, p0=0.5, alternative="greater than"),
            "did you mean 'greater'",
            id="alt-typo",
        ),
        pytest.param(lambda: binomial_test(5, 10, p0=1.0), "strictly between 0 and 1", id="p0-one"),
        pytest.param(
            lambda: binomial_test(11, 10, p0=0.5), r"successes must lie in \[0, n\]", id="x-above-n"
        ),
        pytest.param(lambda: binomial_test(0, 0, p0=0.5), "denominator is zero", id="n-zero"),
        pytest.param(
            lambda: two_proportions(1, 5, 1, 5, test="fischer"),
            "did you mean 'fisher'",
            id="test-typo",
        ),
        pytest.param(
            lambda: two_proportions(5, 5, 7, 7, test="score"),
            "undefined when both groups",
            id="score-degenerate",
        ),
    ],
)
def test_errors_name_the_problem(call, match):
    with pytest.raises((StudyvalError, EstimationError), match=match):
        call()


def test_two_sided_p_values_for_every_count_against_R():
    """sapply(0:20, function(x) binom.test(x, 20, p = 0.3)$p.value), R 4.2.2, digits = 17."""
    import numpy as np

    from studyval.analysis.binomial_tests import binomial_two_sided_p_values

    expected = [
        0.0010589696700355855, 0.012775421309321397, 0.052627948729727092, 0.22041826738070938,
        0.46523598145944089, 0.80836101724655718, 1, 0.62949796667667735, 0.33481500708557038,
        0.1488145951754471, 0.083445029629812109, 0.024782076205458421, 0.0059360841980975144,
        0.0020768022671963358, 0.00026104700705946698, 4.2940021953591667e-05,
        5.550253078298753e-06, 5.4269474678630885e-07, 3.7730881423709988e-08,
        1.6620338978099931e-09, 3.4867844009999923e-11,
    ]  # fmt: skip
    np.testing.assert_allclose(binomial_two_sided_p_values(20, 0.3), expected, rtol=1e-12)


# ----------------------------------------------------------------------------- historical and concurrent


def test_historical_and_concurrent_on_the_vcf_demo_counts_against_r():
    from studyval.analysis.binomial_tests import historical_and_concurrent

    r = historical_and_concurrent(188, 214, p0=0.77, x_control=143, n_control=174)
    # binom.test(188, 214, 0.77)$p.value
    assert r.historical_p_value == pytest.approx(8.5266113422556849e-05, rel=1e-6)
    # binom.test(143, 174, 0.77)$p.value
    assert r.control_vs_historical_p_value == pytest.approx(0.12506387824695761, rel=1e-6)
    # fisher.test(matrix(c(188, 26, 143, 31), 2, byrow = TRUE))$p.value
    assert r.concurrent_p_value == pytest.approx(0.1489347339207612, rel=1e-6)
    assert r.historical_reject and not r.concurrent_reject and not r.agree
    assert r.difference == pytest.approx(188 / 214 - 143 / 174)
    assert r.ci_low < 0 < r.ci_high  # Newcombe's interval of the concurrent difference includes 0


@pytest.mark.parametrize(
    ("alternative", "concurrent_p"),
    [
        # fisher.test(matrix(c(30, 10, 22, 16), 2, byrow = TRUE))$p.value
        pytest.param("two-sided", 0.15004288907799504, id="two-sided"),
        # fisher.test(..., alternative = "greater")$p.value
        pytest.param("greater", 0.086499274927482786, id="greater"),
    ],
)
def test_historical_and_concurrent_small_counts_against_r(alternative, concurrent_p):
    from studyval.analysis.binomial_tests import historical_and_concurrent

    r = historical_and_concurrent(
        30, 40, p0=0.6, x_control=22, n_control=38, alternative=alternative
    )
    assert r.concurrent_p_value == pytest.approx(concurrent_p, rel=1e-6)
    if alternative == "two-sided":
        # binom.test(30, 40, 0.6): p 0.054133233573739004, CI 0.58803801984857007 0.87308520106715504
        assert r.historical_p_value == pytest.approx(0.054133233573739004, rel=1e-6)
        # binom.test(22, 38, 0.6)$p.value
        assert r.control_vs_historical_p_value == pytest.approx(0.86880869293864649, rel=1e-6)
        assert r.agree  # neither rejects at 0.05


def test_historical_and_concurrent_agree_when_both_reject():
    from studyval.analysis.binomial_tests import historical_and_concurrent

    r = historical_and_concurrent(95, 100, p0=0.5, x_control=50, n_control=100)
    assert r.historical_reject and r.concurrent_reject and r.agree


def test_historical_and_concurrent_bad_test_is_named():
    from studyval.analysis.binomial_tests import historical_and_concurrent

    with pytest.raises(StudyvalError, match="did you mean 'fisher'"):
        historical_and_concurrent(5, 10, p0=0.5, x_control=4, n_control=10, test="fischer")
