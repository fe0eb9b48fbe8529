"""Tests for studyval.analysis.sample_size.

Oracles
-------
* R 4.x with pROC 1.18.0: ``pROC::power.roc.test`` for one ROC curve (numeric
  AUC) and ``pROC:::var.theta.obuchowski``; values printed with
  ``sprintf("%.17g", ...)``. The pROC source (``pROC:::power.roc.test.numeric``,
  ``solve.nd``, ``solve.zbeta``, ``power.roc.test.optimize.auc.function``) was
  read and replicated; it cites Obuchowski, Lieber & Wians (2004) formulas 2-3.
* Buderer (1996): the formula evaluated in R, ``qnorm(0.975)^2 * Se * (1 - Se) / d^2``.
* Hanley & McNeil (1982) variance written out in R (``hm`` below) and the
  half-width criterion solved with ``uniroot`` (independent of the closed-form
  quadratic root used by studyval)::

      hm <- function(A, n1, n0) {Q1 <- A/(2-A); Q2 <- 2*A^2/(1+A);
        (A*(1-A) + (n1-1)*(Q1-A^2) + (n0-1)*(Q2-A^2)) / (n1*n0)}

* The registration NCT07306858 (CT-DL-OVCF): sensitivity 0.90, alpha 0.05,
  allowable error 0.05, registered 138 acute + 138 chronic.
"""

from __future__ import annotations

import math

import pytest

from studyval.analysis.sample_size import (
    AucPowerResult,
    BudererResult,
    auc_power,
    auc_precision,
    auc_precision_cohort,
    auc_standard_error,
    buderer,
    check_registered,
)
from studyval.errors import EstimationError, StudyvalError

REL = 1e-6


# --------------------------------------------------------------------------- #
# Buderer
# --------------------------------------------------------------------------- #
def test_buderer_registered_ovcf_numbers_against_r_formula():
    r = buderer(sensitivity=0.90, precision=0.05, alpha=0.05)
    assert isinstance(r, BudererResult)
    # qnorm(0.975)^2 * 0.9 * 0.1 / 0.05^2  -> 138.29251754498844
    assert r.n == pytest.approx(138.29251754498844, rel=1e-12)
    assert r.required == 139
    assert r.n_diseased == r.n and r.required_diseased == 139
    # z to full precision: qnorm(0.975) = 1.959963984540054
    assert r.z == pytest.approx(1.959963984540054, rel=1e-15)
    assert r.n_non_diseased is None and r.n_total is None
    assert r.n_refers_to == "reference-standard positives (diseased cases)"
    assert r.sampling == "separate groups (case-control)"
    assert "Wald" in r.ci_assumption and "half-width 0.05" in r.ci_assumption
    assert "Buderer (1996)" in r.method


@pytest.mark.parametrize(
    ("kwargs", "n", "required", "field"),
    [
        # qnorm(0.975)^2 * 0.85 * 0.15 / 0.05^2
        pytest.param(
            {"specificity": 0.85, "precision": 0.05},
            195.91439985540026,
            196,
            "n_non_diseased",
            id="specificity-only",
        ),
        # qnorm(0.95)^2 * 0.8 * 0.2 / 0.1^2
        pytest.param(
            {"sensitivity": 0.8, "precision": 0.1, "alpha": 0.1},
            43.28869526552657,
            44,
            "n_diseased",
            id="alpha-0.10",
        ),
        # max(qnorm(0.975)^2*0.9*0.1/0.05^2/0.3, qnorm(0.975)^2*0.85*0.15/0.05^2/0.7)
        pytest.param(
            {"sensitivity": 0.9, "specificity": 0.85, "precision": 0.05, "prevalence": 0.3},
            460.97505848329484,
            461,
            "n_total",
            id="both-with-prevalence",
        ),
        # qnorm(0.975)^2 * 0.95 * 0.05 / 0.03^2 / (1 - 0.1)
        pytest.param(
            {"specificity": 0.95, "precision": 0.03, "prevalence": 0.1},
            225.27073331230974,
            226,
            "n_total",
            id="specificity-with-prevalence",
        ),
    ],
)
def test_buderer_against_r_formula(kwargs, n, required, field):
    r = buderer(**kwargs)
    assert r.n == pytest.approx(n, rel=1e-12)
    assert getattr(r, field) == pytest.approx(n, rel=1e-12)
    assert r.required == required


def test_buderer_both_without_prevalence_sums_rounded_groups():
    r = buderer(sensitivity=0.9, specificity=0.85, precision=0.05)
    assert r.required_diseased == 139 and r.required_non_diseased == 196
    assert r.required == 139 + 196
    assert r.n == pytest.approx(138.29251754498844 + 195.91439985540026, rel=1e-12)
    assert "each group rounded up" in r.n_refers_to


def test_buderer_prevalence_uses_unrounded_group_size():
    # N = 138.2925.../0.5 = 276.585... -> 277, not 2 * 139 = 278.
    r = buderer(sensitivity=0.9, precision=0.05, prevalence=0.5)
    assert r.n_total == pytest.approx(2 * 138.29251754498844, rel=1e-12)
    assert r.required_total == 277 == r.required


def test_buderer_exact_integer_is_not_rounded_up():
    # z = 2 exactly is impossible, so build an exact case from z itself: choose d so n = 100.
    z = buderer(sensitivity=0.5, precision=0.1).z
    d = math.sqrt(z * z * 0.25 / 100)
    assert buderer(sensitivity=0.5, precision=d).required == 100


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"precision": 0.05}, "give sensitivity, specificity or both", id="neither"),
        pytest.param(
            {"sensitivity": 1.0, "precision": 0.05}, r"sensitivity must be in \(0, 1\)", id="se-1"
        ),
        pytest.param(
            {"specificity": 0.0, "precision": 0.05}, r"specificity must be in \(0, 1\)", id="sp-0"
        ),
        pytest.param({"sensitivity": 0.9, "precision": 0.0}, "precision must be in", id="d-0"),
        pytest.param(
            {"sensitivity": 0.9, "precision": float("nan")}, "precision must be finite", id="d-nan"
        ),
        pytest.param(
            {"sensitivity": 0.9, "precision": 0.05, "prevalence": 1.2},
            r"prevalence must be in \(0, 1\)",
            id="prevalence-above-1",
        ),
        pytest.param(
            {"sensitivity": 0.9, "precision": 0.05, "alpha": 0.0},
            r"alpha must be in \(0, 1\)",
            id="alpha-0",
        ),
        pytest.param(
            {"sensitivity": "0.9", "precision": 0.05}, "sensitivity must be a number", id="se-str"
        ),
    ],
)
def test_buderer_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        buderer(**kwargs)


def test_buderer_arguments_are_keyword_only():
    with pytest.raises(TypeError):
        buderer(0.9, 0.05)  # type: ignore[misc]


# --------------------------------------------------------------------------- #
# check_registered
# --------------------------------------------------------------------------- #
def test_check_registered_ovcf_acute_cases_sentence():
    r = check_registered(buderer(sensitivity=0.90, precision=0.05), 138, label="acute cases")
    assert r.message == (
        "The registered 138 acute cases are 1 short of the 139 that the Buderer formula "
        "requires (138.3 unrounded)."
    )
    assert r.required == 139 and r.registered == 138 and r.shortfall == 1
    assert r.adequate is False
    assert r.required_unrounded == pytest.approx(138.29251754498844, rel=1e-12)
    assert r.basis == "the Buderer formula"


@pytest.mark.parametrize(
    ("required", "registered", "basis", "message", "shortfall", "adequate"),
    [
        pytest.param(
            138.29251754498844,
            138,
            "the Buderer formula",
            "The registered 138 acute cases are 1 short of the 139 that the Buderer formula "
            "requires (138.3 unrounded).",
            1,
            False,
            id="float-short-by-one",
        ),
        pytest.param(
            138.29251754498844,
            139,
            "the Buderer formula",
            "The registered 139 acute cases meet the 139 that the Buderer formula requires "
            "(138.3 unrounded).",
            0,
            True,
            id="exactly-met",
        ),
        pytest.param(
            138.29251754498844,
            150,
            "the Buderer formula",
            "The registered 150 acute cases exceed by 11 the 139 that the Buderer formula "
            "requires (138.3 unrounded).",
            -11,
            True,
            id="surplus",
        ),
        pytest.param(
            139,
            138,
            None,
            "The registered 138 acute cases are 1 short of the 139 that the sample-size "
            "calculation requires.",
            1,
            False,
            id="integer-requirement-no-unrounded",
        ),
        pytest.param(
            138.04,
            100,
            None,
            "The registered 100 acute cases are 39 short of the 139 that the sample-size "
            "calculation requires (138.04 unrounded).",
            39,
            False,
            id="unrounded-needs-two-decimals",
        ),
    ],
)
def test_check_registered_sentences(required, registered, basis, message, shortfall, adequate):
    r = check_registered(required, registered, label="acute cases", basis=basis)
    assert r.message == message
    assert r.shortfall == shortfall
    assert r.adequate is adequate


def test_check_registered_to_frame_has_every_field():
    frame = check_registered(138.29, 138, label="chronic cases").to_frame()
    assert list(frame.columns) == [
        "label",
        "basis",
        "required_unrounded",
        "required",
        "registered",
        "shortfall",
        "adequate",
        "message",
    ]


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        pytest.param((0.0, 10), {"label": "cases"}, "required must be > 0", id="required-zero"),
        pytest.param(
            (float("inf"), 10), {"label": "cases"}, "required must be finite", id="required-inf"
        ),
        pytest.param((10.0, 9.5), {"label": "cases"}, "whole number", id="registered-fraction"),
        pytest.param(
            (10.0, -1), {"label": "cases"}, "registered must be >= 0", id="registered-neg"
        ),
        pytest.param((10.0, True), {"label": "cases"}, "whole number", id="registered-bool"),
        pytest.param((10.0, 10), {"label": " "}, "label must be a non-empty", id="label-blank"),
        pytest.param(
            (10.0, 10), {"label": "cases", "basis": ""}, "basis must be a non-empty", id="basis"
        ),
    ],
)
def test_check_registered_errors(args, kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        check_registered(*args, **kwargs)


# --------------------------------------------------------------------------- #
# auc_power against pROC::power.roc.test
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "n_cases", "n_controls"),
    [
        # power.roc.test(auc=0.8, sig.level=0.05, power=0.9) -> ncases = ncontrols
        pytest.param(
            {"auc": 0.8, "power": 0.9}, 16.619199202101981, 16.619199202101981, id="auc0.8-p0.9"
        ),
        # power.roc.test(auc=0.8, sig.level=0.05, power=0.9, kappa=2)
        pytest.param(
            {"auc": 0.8, "power": 0.9, "kappa": 2},
            12.808252666347581,
            25.616505332695162,
            id="kappa-2",
        ),
        # power.roc.test(auc=0.7, sig.level=0.05, power=0.8, alternative="one.sided")
        pytest.param(
            {"auc": 0.7, "power": 0.8, "alternative": "one-sided"},
            23.778975013563382,
            23.778975013563382,
            id="one-sided",
        ),
        # power.roc.test(auc=0.9, sig.level=0.01, power=0.95, kappa=0.5)
        pytest.param(
            {"auc": 0.9, "alpha": 0.01, "power": 0.95, "kappa": 0.5},
            19.123077917700645,
            9.5615389588503223,
            id="alpha-0.01-kappa-0.5",
        ),
    ],
)
def test_auc_power_sample_size_against_pROC_power_roc_test(kwargs, n_cases, n_controls):
    r = auc_power(**kwargs)
    assert isinstance(r, AucPowerResult)
    assert r.solved_for == "n_cases"
    assert r.n_cases == pytest.approx(n_cases, rel=REL)
    assert r.n_controls == pytest.approx(n_controls, rel=REL)
    assert r.required_cases == math.ceil(n_cases)
    assert r.required_controls == math.ceil(n_controls)


@pytest.mark.parametrize(
    ("kwargs", "power"),
    [
        # power.roc.test(ncases=41, ncontrols=67, auc=0.8, sig.level=0.05)$power
        pytest.param({"n_cases": 41, "n_controls": 67, "auc": 0.8}, 0.9999355858128175, id="41-67"),
        # power.roc.test(ncases=138, ncontrols=138, auc=0.7, sig.level=0.05)$power
        pytest.param(
            {"n_cases": 138, "n_controls": 138, "auc": 0.7}, 0.99998101882420354, id="ovcf-138"
        ),
        # power.roc.test(ncases=20, ncontrols=20, auc=0.6, sig.level=0.05)$power
        pytest.param({"n_cases": 20, "n_controls": 20, "auc": 0.6}, 0.19947295041912713, id="low"),
        # kappa fills in the controls: same as ncases=20, ncontrols=20
        pytest.param({"n_cases": 20, "auc": 0.6}, 0.19947295041912713, id="controls-from-kappa"),
    ],
)
def test_auc_power_power_against_pROC_power_roc_test(kwargs, power):
    r = auc_power(**kwargs)
    assert r.solved_for == "power"
    assert r.power == pytest.approx(power, rel=REL)


@pytest.mark.parametrize(
    ("n_cases", "n_controls", "auc_tight", "auc_pROC"),
    [
        # uniroot(pROC:::power.roc.test.optimize.auc.function, interval = c(0.5, 1 - 1e-16),
        #         ncontrols = 67, ncases = 41, zalpha = qnorm(0.975), zbeta = qnorm(0.9),
        #         tol = 1e-14)$root                      -> 0.67932592717950158
        # power.roc.test(ncases=41, ncontrols=67, sig.level=0.05, power=0.9)$auc
        #                                                 -> 0.67932516513458963
        pytest.param(41, 67, 0.67932592717950158, 0.67932516513458963, id="41-67"),
        # same calls with ncases = ncontrols = 138 -> 0.60937026612540079 / 0.60934234844635449
        pytest.param(138, 138, 0.60937026612540079, 0.60934234844635449, id="ovcf-138"),
    ],
)
def test_auc_power_detectable_auc_against_pROC(n_cases, n_controls, auc_tight, auc_pROC):
    r = auc_power(n_cases=n_cases, n_controls=n_controls, power=0.9)
    assert r.solved_for == "auc"
    # Documented difference: pROC's uniroot stops at its default tol (~1.2e-4);
    # studyval solves to 1e-13, so it matches the tight-tolerance R root.
    assert r.auc == pytest.approx(auc_tight, rel=1e-9)
    assert r.auc == pytest.approx(auc_pROC, abs=1.2e-4)


def test_auc_power_round_trips():
    n = auc_power(auc=0.75, power=0.85, kappa=1.5)
    p = auc_power(auc=0.75, n_cases=n.n_cases, n_controls=n.n_controls)
    a = auc_power(power=0.85, n_cases=n.n_cases, n_controls=n.n_controls)
    assert p.power == pytest.approx(0.85, rel=1e-12)
    assert a.auc == pytest.approx(0.75, rel=1e-10)


def test_obuchowski_variance_against_pROC():
    # pROC:::var.theta.obuchowski(0.8, 1) = 0.11946067809240248
    se = auc_standard_error(0.8, n_cases=1, n_controls=1, method="obuchowski")
    assert se**2 == pytest.approx(0.11946067809240248, rel=1e-12)
    # pROC:::var.theta.obuchowski(0.85, 2) = 0.080550029553587629; n_cases = 10, n_controls = 20
    se = auc_standard_error(0.85, n_cases=10, n_controls=20, method="obuchowski")
    assert se**2 * 10 == pytest.approx(0.080550029553587629, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"auc": 0.8}, StudyvalError, "unknown: power, n_cases", id="two-unknowns"),
        pytest.param(
            {"auc": 0.8, "power": 0.9, "n_cases": 10}, StudyvalError, "all are given", id="none"
        ),
        pytest.param(
            {"n_cases": 10, "n_controls": 20, "kappa": 1.0, "auc": 0.8},
            StudyvalError,
            "kappa=1 contradicts n_controls/n_cases",
            id="kappa-conflict",
        ),
        pytest.param(
            {"auc": 0.5, "power": 0.9}, StudyvalError, r"auc must be in \(0.5, 1\)", id="auc-null"
        ),
        pytest.param(
            {"auc": 0.8, "power": 1.0}, StudyvalError, r"power must be in \(0, 1\)", id="power-1"
        ),
        pytest.param(
            {"auc": 0.8, "power": 0.9, "alternative": "greater"},
            StudyvalError,
            "alternative='greater' is not one of",
            id="alternative",
        ),
        pytest.param(
            {"auc": 0.8, "power": 0.9, "alternative": "two.sided"},
            StudyvalError,
            "did you mean 'two-sided'",
            id="alternative-R-spelling",
        ),
        pytest.param(
            {"n_cases": -5, "auc": 0.8}, StudyvalError, "n_cases must be > 0", id="n-negative"
        ),
        pytest.param(
            {"n_cases": 2, "n_controls": 2, "power": 0.99, "alpha": 0.001},
            EstimationError,
            "no AUC in",
            id="auc-unreachable",
        ),
    ],
)
def test_auc_power_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        auc_power(**kwargs)


# --------------------------------------------------------------------------- #
# auc_precision
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("kwargs", "n_cases"),
    [
        # uniroot(function(n) qnorm(.975)*sqrt(hm(.8, n, n)) - .05, c(2, 1e5), tol = 1e-13)$root
        pytest.param({"auc": 0.8, "half_width": 0.05}, 150.87741364977495, id="hm-0.8"),
        # uniroot(function(n) qnorm(.975)*sqrt(hm(.85, n, 2*n)) - .04, c(2, 1e5), tol = 1e-13)$root
        pytest.param(
            {"auc": 0.85, "half_width": 0.04, "kappa": 2}, 161.00198099214364, id="hm-kappa-2"
        ),
        # qnorm(.975)^2 * pROC:::var.theta.obuchowski(0.8, 1) / 0.05^2
        pytest.param(
            {"auc": 0.8, "half_width": 0.05, "variance": "obuchowski"},
            183.56131023366424,
            id="obuchowski-0.8",
        ),
        # qnorm(.975)^2 * pROC:::var.theta.obuchowski(0.85, 2) / 0.04^2
        pytest.param(
            {"auc": 0.85, "half_width": 0.04, "kappa": 2, "variance": "obuchowski"},
            193.39351345987598,
            id="obuchowski-kappa-2",
        ),
    ],
)
def test_auc_precision_against_r(kwargs, n_cases):
    r = auc_precision(**kwargs)
    assert r.n_cases == pytest.approx(n_cases, rel=1e-9)
    assert r.n_controls == pytest.approx(n_cases * kwargs.get("kappa", 1.0), rel=1e-9)
    assert r.required_cases == math.ceil(n_cases)
    assert r.achieved_half_width <= kwargs["half_width"]


@pytest.mark.parametrize(
    "variance", [pytest.param(v, id=v) for v in ("hanley-mcneil", "obuchowski")]
)
def test_auc_precision_rounded_sizes_are_minimal(variance):
    r = auc_precision(auc=0.75, half_width=0.06, kappa=1.0, variance=variance)
    smaller = r.z * auc_standard_error(
        0.75, n_cases=r.required_cases - 1, n_controls=r.required_controls - 1, method=variance
    )
    assert r.achieved_half_width <= 0.06 < smaller


def test_hanley_mcneil_se_against_r():
    # hm(0.893, 51, 58) in R, sqrt -> 0.032511581767646583 (the Hanley & McNeil 1982
    # CT example has 51 abnormal, 58 normal images and A = 0.893)
    se = auc_standard_error(0.893, n_cases=51, n_controls=58)
    assert se == pytest.approx(0.032511581767646583, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"auc": 1.0, "half_width": 0.05}, r"auc must be in \(0, 1\)", id="auc-1"),
        pytest.param({"auc": 0.8, "half_width": 0.6}, r"half_width must be in \(0, 0.5\]", id="d"),
        pytest.param(
            {"auc": 0.8, "half_width": 0.05, "kappa": 0}, "kappa must be > 0", id="kappa-0"
        ),
        pytest.param(
            {"auc": 0.8, "half_width": 0.05, "variance": "delong"},
            "variance='delong' is not one of",
            id="variance-unknown",
        ),
    ],
)
def test_auc_precision_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        auc_precision(**kwargs)


# --------------------------------------------------------------------------- #
# auc_precision_cohort: patients to enrol at a class prevalence
# --------------------------------------------------------------------------- #
# R 4.2.2, the total N solved directly (not through the cases), Hanley-McNeil variance:
#   hm <- function(A, n1, n0) { Q1 <- A/(2-A); Q2 <- 2*A^2/(1+A)
#     (A*(1-A) + (n1-1)*(Q1-A^2) + (n0-1)*(Q2-A^2))/(n1*n0) }
#   uniroot(function(N) qnorm(1 - a/2)*sqrt(hm(A, p*N, (1-p)*N)) - d, c(10, 1e6), tol = 1e-13)$root
@pytest.mark.parametrize(
    ("kwargs", "n_total", "required"),
    [
        # A = .85, d = .05, a = .05: the msk-aging planning values, one stage each
        pytest.param({"prevalence": 0.30}, 337.68786330864867, (338, 102, 237), id="msk-normal"),
        pytest.param(
            {"prevalence": 0.45}, 247.80465249561885, (248, 112, 137), id="msk-osteopenia"
        ),
        pytest.param(
            {"prevalence": 0.25}, 395.21521125524612, (396, 99, 297), id="msk-osteoporosis"
        ),
        # A = .75, d = .04, p = .1, a = .1 -> 1430.182654631634
        pytest.param(
            {"auc": 0.75, "half_width": 0.04, "prevalence": 0.1, "alpha": 0.1},
            1430.182654631634,
            (1431, 144, 1288),
            id="rare-class-alpha-0.1",
        ),
    ],
)
def test_auc_precision_cohort_against_r_uniroot(kwargs, n_total, required):
    args = {"auc": 0.85, "half_width": 0.05, "alpha": 0.05, **kwargs}
    r = auc_precision_cohort(**args)
    assert r.n_total == pytest.approx(n_total, rel=1e-9)
    assert (r.required_total, r.required_cases, r.required_controls) == required
    # the cohort holds the cases and controls of auc_precision at kappa = (1 - p) / p
    p = args["prevalence"]
    groups = auc_precision(
        auc=args["auc"], half_width=args["half_width"], kappa=(1 - p) / p, alpha=args["alpha"]
    )
    assert r.n_cases == groups.n_cases and r.n_controls == groups.n_controls
    assert r.n_total * p == pytest.approx(groups.n_cases, rel=1e-12)
    assert r.to_frame()["required_total"].iloc[0] == required[0]


@pytest.mark.parametrize(
    "prevalence",
    [pytest.param(0.0, id="zero"), pytest.param(1.0, id="one"), pytest.param(-0.2, id="negative")],
)
def test_auc_precision_cohort_rejects_a_prevalence_outside_0_1(prevalence):
    with pytest.raises(StudyvalError, match=r"prevalence must be in \(0, 1\)"):
        auc_precision_cohort(auc=0.85, half_width=0.05, prevalence=prevalence)


def test_check_registered_names_how_the_number_was_counted():
    """The sentence for an analysed count says 'analysed', not 'registered' (no string edit after)."""
    from studyval.analysis.sample_size import check_registered

    assert check_registered(138.3, 150, label="cases", counted="analysed").message == (
        "The analysed 150 cases exceed by 11 the 139 that the sample-size calculation requires "
        "(138.3 unrounded)."
    )
    with pytest.raises(StudyvalError, match="counted must be a non-empty string"):
        check_registered(138.3, 150, label="cases", counted=" ")
