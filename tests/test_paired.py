"""McNemar's test and the paired Newcombe interval, against R's mcnemar.test/binom.test and published examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from studyval.analysis.paired import mcnemar, paired_comparison, paired_difference, paired_table
from studyval.errors import EstimationError, StudyvalError

CAVO = [[59, 6], [16, 80]]  # Fagerland, Lydersen & Laake (2017), ch. 8: Cavo et al. 2012


@pytest.mark.parametrize(
    ("table", "method", "stat", "p"),
    [
        # m <- matrix(c(59, 6, 16, 80), 2, byrow = TRUE); mcnemar.test(m)
        pytest.param(CAVO, "asymptotic-cc", 3.68181818181818, 0.0550088336292657, id="cavo-cc"),
        # mcnemar.test(m, correct = FALSE)
        pytest.param(
            CAVO, "asymptotic", 4.54545454545455, 0.0330062576612324, id="cavo-uncorrected"
        ),
        # binom.test(6, 22)$p.value
        pytest.param(CAVO, "exact", None, 0.0524787902832032, id="cavo-exact"),
        # m2 <- matrix(c(140, 25, 8, 7), 2, byrow = TRUE); mcnemar.test(m2)
        pytest.param(
            [[140, 25], [8, 7]], "asymptotic-cc", 7.75757575757576, 0.00534877052048204, id="m2-cc"
        ),
        # mcnemar.test(m2, correct = FALSE)$p.value
        pytest.param(
            [[140, 25], [8, 7]], "asymptotic", None, 0.00308318609090795, id="m2-uncorrected"
        ),
        # binom.test(25, 33)$p.value
        pytest.param([[140, 25], [8, 7]], "exact", None, 0.00455138413235546, id="m2-exact"),
    ],
)
def test_mcnemar_against_R(table, method, stat, p):
    r = mcnemar(table, method=method)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    if stat is not None:
        assert r.statistic == pytest.approx(stat, rel=1e-12)
    assert r.n_discordant == r.b + r.c


def test_paired_newcombe_against_fagerland_cavo():
    # Fagerland et al. (2017) / contingencytables::Newcombe_square_and_add_CI_paired_2x2(cavo_2012):
    # "estimate = -0.0621 (95% CI -0.1186 to -0.0046)"
    r = paired_difference(CAVO)
    assert round(r.difference, 4) == -0.0621
    assert round(r.ci_low, 4) == -0.1186
    assert round(r.ci_high, 4) == -0.0046


def test_swapping_readers_flips_the_interval():
    a = paired_difference([[40, 12], [3, 45]])
    b = paired_difference([[40, 3], [12, 45]])
    assert a.difference == pytest.approx(-b.difference)
    assert a.ci_low == pytest.approx(-b.ci_high)
    assert a.ci_high == pytest.approx(-b.ci_low)


def test_identical_readers_give_zero_difference_and_undefined_mcnemar():
    r = paired_difference([[30, 0], [0, 20]])
    assert r.difference == 0.0 and r.ci_low < 0 < r.ci_high
    with pytest.raises(EstimationError, match="without discordant pairs"):
        mcnemar([[30, 0], [0, 20]], method="exact")


def test_paired_table_from_vectors():
    a = np.array([True, True, False, False, True])
    b = np.array([True, False, True, False, False])
    assert paired_table(a, b).tolist() == [[1, 2], [1, 1]]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: mcnemar(CAVO, method="exakt"), "did you mean 'exact'", id="method-typo"
        ),
        pytest.param(lambda: mcnemar([[1, 2, 3]], method="exact"), "must be 2x2", id="shape"),
        pytest.param(lambda: paired_difference([[1, -2], [3, 4]]), ">= 0", id="negative"),
        pytest.param(
            lambda: paired_difference([[1.5, 2], [3, 4]]), "whole counts", id="fractional"
        ),
        pytest.param(
            lambda: paired_table(np.array([1, 0]), np.array([True, False])),
            "boolean",
            id="not-bool",
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises((StudyvalError, EstimationError), match=match):
        call()


def _vectors(table):
    """Case-level success vectors of A and B reproducing ``[[a, b], [c, d]]``."""
    (a, b), (c, d) = table
    sa = np.repeat([True, True, False, False], [a, b, c, d])
    sb = np.repeat([True, False, True, False], [a, b, c, d])
    return sa, sb


@pytest.mark.parametrize("method", ["exact", "asymptotic", "asymptotic-cc"])
def test_paired_comparison_against_R_on_cavo(method):
    r = paired_comparison(*_vectors(CAVO), mcnemar_method=method)
    # m <- matrix(c(59, 6, 16, 80), 2, byrow = TRUE)
    # binom.test(6, 22)$p.value; mcnemar.test(m, correct = FALSE)$p.value; mcnemar.test(m)$p.value
    assert r.p_exact == pytest.approx(0.0524787902832032, rel=1e-9)
    assert r.p_asymptotic == pytest.approx(0.0330062576612324, rel=1e-9)
    assert r.p_asymptotic_cc == pytest.approx(0.0550088336292657, rel=1e-9)
    assert r.p_value == getattr(r, "p_" + method.replace("-", "_"))
    assert r.mcnemar_method == method and r.note == ""
    # Fagerland et al. (2017): -0.0621 (95% CI -0.1186 to -0.0046)
    assert (round(r.difference, 4), round(r.ci_low, 4), round(r.ci_high, 4)) == (
        -0.0621,
        -0.1186,
        -0.0046,
    )
    assert (r.a, r.b, r.c, r.d, r.n) == (59, 6, 16, 80, 161)


def test_paired_comparison_without_discordant_pairs_says_why():
    r = paired_comparison(*_vectors([[30, 0], [0, 20]]), mcnemar_method="exact")
    assert r.difference == 0.0 and r.ci_low < 0 < r.ci_high
    assert all(math.isnan(p) for p in (r.p_exact, r.p_asymptotic, r.p_asymptotic_cc, r.p_value))
    assert r.note == "no discordant pairs: McNemar's test undefined"


def test_paired_comparison_rejects_an_unknown_method():
    with pytest.raises(StudyvalError, match="did you mean 'exact'"):
        paired_comparison(*_vectors(CAVO), mcnemar_method="exakt")
