"""Tests for studyval.analysis.proportions.

Oracles
-------
* R 4.x ``stats::binom.test`` (Clopper-Pearson) and
  ``stats::prop.test(correct = FALSE)`` (Wilson); the exact R call sits beside
  each expected value, printed with ``sprintf("%.17g", ...)``.
* R ``stats::qbeta`` for the equal-tailed Jeffreys interval.
* Newcombe RG (1998) Stat Med 17:857-872, Table I (4 decimals).
* R package ``binom`` 1.1, ``binom.confint(x, n, tol = 1e-8)``, as published in
  statsmodels ``statsmodels/stats/tests/results/results_proportion.py`` (the
  ``binom`` package is not installed here). ``binom`` does not truncate
  Agresti-Coull / asymptotic limits to [0, 1]; studyval does (documented), so
  only limits inside [0, 1] are compared and the others must come back as 0 or 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from studyval.analysis.proportions import (
    CI_METHODS,
    ProportionResult,
    proportion_ci,
    proportion_ci_array,
)
from studyval.errors import EstimationError, StudyvalError

REL = 1e-6


# --------------------------------------------------------------------------- #
# Clopper-Pearson against binom.test
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("x", "n", "level", "low", "high"),
    [
        # binom.test(81, 263)$conf.int
        pytest.param(81, 263, 0.95, 0.25273674558527121, 0.3676219226013514, id="81of263"),
        # binom.test(15, 148)$conf.int
        pytest.param(15, 148, 0.95, 0.057844010083448555, 0.16165049034947898, id="15of148"),
        # binom.test(0, 20)$conf.int
        pytest.param(0, 20, 0.95, 0.0, 0.16843347098308536, id="zero-successes"),
        # binom.test(1, 29)$conf.int
        pytest.param(1, 29, 0.95, 0.0008726468835799228, 0.17764429548872285, id="1of29"),
        # binom.test(20, 20)$conf.int
        pytest.param(20, 20, 0.95, 0.83156652901691464, 1.0, id="all-successes"),
        # binom.test(124, 138)$conf.int  (sensitivity 0.90 on the registered 138 acute cases)
        pytest.param(124, 138, 0.95, 0.835645067189976, 0.94341769416138799, id="124of138"),
        # binom.test(1, 29, conf.level = 0.9)$conf.int
        pytest.param(1, 29, 0.90, 0.0017671710005495349, 0.15339202452618272, id="1of29-90pct"),
        # binom.test(0, 20, conf.level = 0.9)$conf.int
        pytest.param(0, 20, 0.90, 0.0, 0.13910834066826516, id="zero-successes-90pct"),
    ],
)
def test_clopper_pearson_against_binom_test(x, n, level, low, high):
    r = proportion_ci(x, n, alpha=1 - level, method="clopper-pearson")
    assert r.ci_low == pytest.approx(low, rel=REL, abs=1e-15)
    assert r.ci_high == pytest.approx(high, rel=REL)
    assert r.estimate == x / n


def test_clopper_pearson_lower_limit_is_exactly_zero_at_zero_successes():
    # binom.test(0, 20)$conf.int[1] is 0 by definition, not a small number.
    assert proportion_ci(0, 20, method="clopper-pearson").ci_low == 0.0
    assert proportion_ci(20, 20, method="clopper-pearson").ci_high == 1.0


# --------------------------------------------------------------------------- #
# Wilson against prop.test(correct = FALSE)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("x", "n", "level", "low", "high"),
    [
        # prop.test(81, 263, correct = FALSE)$conf.int
        pytest.param(81, 263, 0.95, 0.25528851987827428, 0.36620957698280016, id="81of263"),
        # prop.test(15, 148, correct = FALSE)$conf.int
        pytest.param(15, 148, 0.95, 0.062386399530736283, 0.160487241723308, id="15of148"),
        # prop.test(0, 20, correct = FALSE)$conf.int
        pytest.param(0, 20, 0.95, 0.0, 0.1611251580528193, id="zero-successes"),
        # prop.test(1, 29, correct = FALSE)$conf.int
        pytest.param(1, 29, 0.95, 0.006113214292762661, 0.17175521879320282, id="1of29"),
        # prop.test(20, 20, correct = FALSE)$conf.int
        pytest.param(20, 20, 0.95, 0.83887484194718065, 1.0, id="all-successes"),
        # prop.test(124, 138, correct = FALSE)$conf.int
        pytest.param(124, 138, 0.95, 0.83691102831952813, 0.93860271014994268, id="124of138"),
        # prop.test(81, 263, correct = FALSE, conf.level = 0.9)$conf.int
        pytest.param(81, 263, 0.90, 0.26331361718848145, 0.35656634960848815, id="81of263-90pct"),
        # prop.test(1, 29, correct = FALSE, conf.level = 0.9)$conf.int
        pytest.param(1, 29, 0.90, 0.0077308079727380153, 0.14068309513251201, id="1of29-90pct"),
    ],
)
def test_wilson_against_prop_test(x, n, level, low, high):
    r = proportion_ci(x, n, alpha=1 - level, method="wilson")
    assert r.ci_low == pytest.approx(low, rel=REL, abs=1e-15)
    assert r.ci_high == pytest.approx(high, rel=REL)


# --------------------------------------------------------------------------- #
# Jeffreys against qbeta
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("x", "n", "low", "high"),
    [
        # qbeta(c(0.025, 0.975), 81 + 0.5, 263 - 81 + 0.5)
        pytest.param(81, 263, 0.25452193499102344, 0.36564749917408246, id="81of263"),
        # qbeta(c(0.025, 0.975), 15 + 0.5, 148 - 15 + 0.5)
        pytest.param(15, 148, 0.060448517009296432, 0.1576431434787412, id="15of148"),
        # qbeta(c(0.025, 0.975), 1 + 0.5, 29 - 1 + 0.5)
        pytest.param(1, 29, 0.0037461736490570752, 0.1500776860022317, id="1of29"),
        # qbeta(c(0.025, 0.975), 124 + 0.5, 138 - 124 + 0.5)
        pytest.param(124, 138, 0.83996187788341159, 0.94065510397840757, id="124of138"),
        # qbeta(0.975, 0 + 0.5, 20 + 0.5) = 0.1166389829048754; the lower limit is
        # 0, not qbeta(0.025, 0.5, 20.5) = 2.4246478459242726e-05, by the
        # Brown-Cai-DasGupta (2001, sec. 4.1.2) boundary modification.
        pytest.param(0, 20, 0.0, 0.1166389829048754, id="zero-successes-modified"),
        # qbeta(0.025, 20 + 0.5, 0 + 0.5) = 0.8833610170951246; upper limit 1
        # (not 0.99997575352154078) by the same modification.
        pytest.param(20, 20, 0.8833610170951246, 1.0, id="all-successes-modified"),
    ],
)
def test_jeffreys_against_qbeta(x, n, low, high):
    r = proportion_ci(x, n, method="jeffreys")
    assert r.ci_low == pytest.approx(low, rel=REL, abs=1e-15)
    assert r.ci_high == pytest.approx(high, rel=REL)


# --------------------------------------------------------------------------- #
# Newcombe (1998) Table I, methods 1 (Wald), 3 (score = Wilson), 5 (exact)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("x", "n", "method", "low", "high"),
    [
        pytest.param(81, 263, "wald", 0.2522, 0.3638, id="81of263-wald"),
        pytest.param(81, 263, "wilson", 0.2553, 0.3662, id="81of263-wilson"),
        pytest.param(81, 263, "clopper-pearson", 0.2527, 0.3676, id="81of263-exact"),
        pytest.param(15, 148, "wald", 0.0527, 0.1500, id="15of148-wald"),
        pytest.param(15, 148, "wilson", 0.0624, 0.1605, id="15of148-wilson"),
        pytest.param(15, 148, "clopper-pearson", 0.0578, 0.1617, id="15of148-exact"),
        # Newcombe's Wald interval for 0/20 is the degenerate 0.0000 to 0.0000.
        pytest.param(0, 20, "wald", 0.0, 0.0, id="0of20-wald-degenerate"),
        pytest.param(0, 20, "wilson", 0.0, 0.1611, id="0of20-wilson"),
        pytest.param(0, 20, "clopper-pearson", 0.0, 0.1684, id="0of20-exact"),
        pytest.param(1, 29, "wilson", 0.0061, 0.1718, id="1of29-wilson"),
        pytest.param(1, 29, "clopper-pearson", 0.0009, 0.1776, id="1of29-exact"),
    ],
)
def test_against_newcombe_1998_table_1(x, n, method, low, high):
    r = proportion_ci(x, n, method=method)
    assert r.ci_low == pytest.approx(low, abs=5e-5)
    assert r.ci_high == pytest.approx(high, abs=5e-5)


# --------------------------------------------------------------------------- #
# Agresti-Coull and Wald against R package binom (via statsmodels' results file)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("x", "n", "method", "low", "high"),
    [
        # binom.confint(x = 18, n = 20, tol = 1e-8), row "agresti-coull"
        pytest.param(
            18, 20, "agresti-coull", 0.6867561125596077, 0.984343760998137, id="ac-18of20"
        ),
        # binom.confint(x = 4, n = 20, tol = 1e-8), row "agresti-coull"
        pytest.param(4, 20, "agresti-coull", 0.0749115102767071, 0.4217635845549845, id="ac-4of20"),
        # binom.confint(x = 4, n = 200, tol = 1e-8), row "agresti-coull"
        pytest.param(
            4, 200, "agresti-coull", 0.005991954548218395, 0.0520995587739575, id="ac-4of200"
        ),
        # binom.confint(x = 190, n = 200, tol = 1e-8), row "agresti-coull"
        pytest.param(
            190, 200, "agresti-coull", 0.909307307911624, 0.973731898348837, id="ac-190of200"
        ),
        # binom.confint(x = 1, n = 30): binom gives lower -8.305484e-03 (untruncated);
        # studyval truncates to 0. Upper 0.18091798.
        pytest.param(1, 30, "agresti-coull", 0.0, 0.18091798, id="ac-1of30-truncated"),
        # binom.confint(x = 29, n = 30): upper 1.0083055 in binom, truncated to 1 here.
        pytest.param(29, 30, "agresti-coull", 0.8190820, 1.0, id="ac-29of30-truncated"),
        # binom.confint(x = 0, n = 30): upper 0.13471170 (lower clipped to 0 in both)
        pytest.param(0, 30, "agresti-coull", 0.0, 0.13471170, id="ac-0of30"),
        # binom.confint(x = 30, n = 30): lower 0.8652883
        pytest.param(30, 30, "agresti-coull", 0.8652883, 1.0, id="ac-30of30"),
        # binom.confint(x = 4, n = 20, tol = 1e-8), row "asymptotic"
        pytest.param(4, 20, "wald", 0.0246954918846837, 0.3753045081153163, id="wald-4of20"),
        # binom.confint(x = 18, n = 20): asymptotic upper 1.031478381086487 -> truncated to 1
        pytest.param(18, 20, "wald", 0.768521618913513, 1.0, id="wald-18of20-truncated"),
        # binom.confint(x = 1, n = 30): asymptotic lower -3.090070e-02 -> truncated to 0
        pytest.param(1, 30, "wald", 0.0, 0.09756737, id="wald-1of30-truncated"),
        # binom.confint(x = 4, n = 200), row "wilson"
        pytest.param(
            4, 200, "wilson", 0.00780442641634947, 0.05028708690582643, id="wilson-4of200"
        ),
        # binom.confint(x = 4, n = 200), row "exact"
        pytest.param(
            4, 200, "clopper-pearson", 0.005475565879556443, 0.05041360908989634, id="cp-4of200"
        ),
    ],
)
def test_agresti_coull_and_wald_against_binom_confint(x, n, method, low, high):
    r = proportion_ci(x, n, method=method)
    # Values with 7-8 significant digits in the source are compared at 1e-6 relative
    # (they were printed that way), the rest at 1e-6 as well.
    assert r.ci_low == pytest.approx(low, rel=1e-6, abs=1e-9)
    assert r.ci_high == pytest.approx(high, rel=1e-6, abs=1e-9)


# --------------------------------------------------------------------------- #
# Properties
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("method", [pytest.param(m, id=m) for m in CI_METHODS])
@pytest.mark.parametrize(
    ("x", "n"),
    [
        pytest.param(0, 1, id="0of1"),
        pytest.param(1, 1, id="1of1"),
        pytest.param(0, 138, id="0of138"),
        pytest.param(138, 138, id="138of138"),
        pytest.param(3, 7, id="3of7"),
    ],
)
def test_limits_within_unit_interval_and_bracket_estimate(method, x, n):
    r = proportion_ci(x, n, method=method)
    assert 0.0 <= r.ci_low <= r.estimate <= r.ci_high <= 1.0
    if x == 0:
        assert r.ci_low == 0.0
    if x == n:
        assert r.ci_high == 1.0


@pytest.mark.parametrize("method", [pytest.param(m, id=m) for m in CI_METHODS])
def test_complement_symmetry(method):
    # CI for failures is the mirror image of the CI for successes.
    a = proportion_ci(7, 31, method=method)
    b = proportion_ci(24, 31, method=method)
    assert a.ci_low == pytest.approx(1 - b.ci_high, abs=1e-12)
    assert a.ci_high == pytest.approx(1 - b.ci_low, abs=1e-12)


def test_wider_at_higher_level():
    r95 = proportion_ci(30, 100, alpha=0.05)
    r99 = proportion_ci(30, 100, alpha=0.01)
    assert r99.ci_low < r95.ci_low and r99.ci_high > r95.ci_high
    assert r99.ci_level == pytest.approx(0.99)


def test_result_unpacks_and_tabulates():
    r = proportion_ci(124, 138, method="clopper-pearson")
    assert isinstance(r, ProportionResult)
    est, lo, hi = r
    assert (est, lo, hi) == (r.estimate, r.ci_low, r.ci_high)
    frame = r.to_frame()
    assert list(frame.columns) == [
        "estimate",
        "ci_low",
        "ci_high",
        "ci_level",
        "numerator",
        "denominator",
        "method",
    ]
    assert frame.loc[0, "numerator"] == 124 and frame.loc[0, "denominator"] == 138


def test_integral_floats_are_accepted():
    assert proportion_ci(5.0, 10.0) == proportion_ci(5, 10)
    assert proportion_ci(np.int64(5), np.int32(10)).numerator == 5


@pytest.mark.parametrize("method", [pytest.param(m, id=m) for m in CI_METHODS])
def test_array_version_matches_scalar(method):
    xs, ns = [0, 1, 15, 81, 20], [20, 29, 148, 263, 20]
    frame = proportion_ci_array(xs, ns, method=method)
    for i, (x, n) in enumerate(zip(xs, ns, strict=True)):
        r = proportion_ci(x, n, method=method)
        assert frame.loc[i, "estimate"] == r.estimate
        assert frame.loc[i, "ci_low"] == r.ci_low
        assert frame.loc[i, "ci_high"] == r.ci_high
    assert (frame["denominator"].to_numpy() == ns).all()


def test_array_version_broadcasts_scalar_n():
    frame = proportion_ci_array([0, 1, 2], 10)
    assert frame["denominator"].tolist() == [10, 10, 10]
    assert math.isclose(frame.loc[2, "estimate"], 0.2)


# --------------------------------------------------------------------------- #
# Error paths
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"successes": 0, "n": 0}, EstimationError, "denominator is zero", id="n-zero"),
        pytest.param(
            {"successes": 5, "n": 4},
            StudyvalError,
            r"successes must lie in \[0, n\]",
            id="x-above-n",
        ),
        pytest.param(
            {"successes": -1, "n": 4},
            StudyvalError,
            r"successes must lie in \[0, n\]",
            id="x-negative",
        ),
        pytest.param(
            {"successes": 1, "n": -4}, StudyvalError, "n must be positive", id="n-negative"
        ),
        pytest.param(
            {"successes": 1.5, "n": 4},
            StudyvalError,
            "successes must be a whole number",
            id="x-fractional",
        ),
        pytest.param(
            {"successes": float("nan"), "n": 4},
            StudyvalError,
            "successes must be a whole number",
            id="x-nan",
        ),
        pytest.param({"successes": True, "n": 4}, StudyvalError, "boolean", id="x-bool"),
        pytest.param(
            {"successes": "3", "n": 4},
            StudyvalError,
            "successes must be a whole number",
            id="x-string",
        ),
        pytest.param(
            {"successes": 1, "n": 4, "method": "wilsom"},
            StudyvalError,
            "did you mean 'wilson'",
            id="method-typo",
        ),
        pytest.param(
            {"successes": 1, "n": 4, "method": "exact"},
            StudyvalError,
            "method='exact' is not one of",
            id="method-unknown",
        ),
        pytest.param(
            {"successes": 1, "n": 4, "alpha": 0.0},
            StudyvalError,
            r"alpha must be in \(0, 1\)",
            id="alpha-zero",
        ),
        pytest.param(
            {"successes": 1, "n": 4, "alpha": 1.5},
            StudyvalError,
            r"alpha must be in \(0, 1\)",
            id="alpha-above-one",
        ),
    ],
)
def test_proportion_ci_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        proportion_ci(**kwargs)


def test_zero_denominator_is_a_studyval_error():
    # Callers catching StudyvalError (or ValueError) see the zero denominator.
    with pytest.raises(StudyvalError, match="denominator is zero"):
        proportion_ci(0, 0)
    with pytest.raises(ValueError, match="denominator is zero"):
        proportion_ci(0, 0)


@pytest.mark.parametrize(
    ("successes", "n", "match"),
    [
        pytest.param([1, 2], [3, 0], "denominator is zero at position 1", id="zero-n-position"),
        pytest.param([1, 5], [3, 4], r"at position 1: got successes=5 with n=4", id="x-above-n"),
        pytest.param([1, 2, 3], [3, 4], "successes has 3 values but n has 2", id="length-mismatch"),
        pytest.param([1.5, 2], [3, 4], "position 0 is 1.5", id="fractional"),
        pytest.param([], [], "successes is empty", id="empty"),
        pytest.param([[1, 2]], [[3, 4]], "one-dimensional", id="two-d"),
    ],
)
def test_proportion_ci_array_errors(successes, n, match):
    with pytest.raises(StudyvalError, match=match):
        proportion_ci_array(successes, n)


# --------------------------------------------------------------------------- #
# Property test (hypothesis)
# --------------------------------------------------------------------------- #
def test_interval_brackets_estimate_for_any_counts():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    @hypothesis.settings(deadline=None, max_examples=300)
    @hypothesis.given(
        n=st.integers(min_value=1, max_value=5000),
        frac=st.floats(min_value=0.0, max_value=1.0),
        alpha=st.floats(min_value=0.001, max_value=0.5),
        method=st.sampled_from(CI_METHODS),
    )
    def check(n, frac, alpha, method):
        x = round(frac * n)
        r = proportion_ci(x, n, alpha=alpha, method=method)
        assert 0.0 <= r.ci_low <= r.estimate <= r.ci_high <= 1.0
        if x == 0:
            assert r.ci_low == 0.0
        if x == n:
            assert r.ci_high == 1.0

    check()
