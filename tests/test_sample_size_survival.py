"""Tests for studyval.analysis.sample_size_survival.

Oracles
-------
* ``pmsampsize`` 1.1.3 (Ensor, Martin & Riley; CRAN mirror cran/pmsampsize,
  commit fbb1472): its R sources ``pmsampsize.R``, ``pmsampsize_surv.R`` and
  ``pmsampsize_errorcheck.R`` were sourced into R 4.2.2 (the package cannot
  be installed offline) and called as ``pmsampsize(type = "s", ...)``. The
  package's own unit tests (``tests/testthat/test_surv.R``, "Test 3.1" to
  "Test 3.9") are reproduced below with their expected sample sizes and EPP.
* The published worked example: recurrent venous thromboembolism, Riley et
  al. (2020) BMJ 368:m441 and the ``pmsampsize`` help page: R2_CS 0.051, 30
  parameters, rate 0.065, time point 2, mean follow-up 2.07 -> 5143
  participants, 692 events (691.99), EPP 23.07; Riley et al. (2019) Stat Med
  38:1276-1296 report "an EPP of at least 23" for this model.
* ``powerSurvEpi`` 0.1.5 (CRAN mirror cran/powerSurvEpi): ``R/powerEpi.R``
  sourced into R; ``numDEpi.default`` and ``ssizeEpi.default``. Published
  example: Latouche, Porcher & Chevret (2004) Stat Med 23:3263-3274,
  section 5.2 (HR 2, power 0.8, p = 0.39, rho = 0.132, psi = 0.505 -> 139
  subjects), the example of the ``ssizeEpi.default`` help page.
* Criterion (iii) solved for n, and the Schoenfeld formula, evaluated in R::

      n3 <- function(rate, t, fu) { r <- 1 - exp(-rate * t)
        lu <- -log(1 - r - 0.05) / t; 1.96^2 * rate / (fu * (lu - rate)^2) }

Registered sizes: NCT06379243 (re-fracture within 1 year after PVP/PKP, 560
participants) and NCT06531200 (cirrhosis, about 1000 patients; liver
transplant competes with death). Neither registration states the planning
values; the values below are illustrative assumptions, named as such.
"""

from __future__ import annotations

import math

import pytest

from studyval.analysis.sample_size import check_registered
from studyval.analysis.sample_size_survival import (
    RileySurvivalResult,
    SchoenfeldResult,
    riley_survival,
    schoenfeld_events,
)
from studyval.errors import StudyvalError


# --------------------------------------------------------------------------- #
# Riley criteria against pmsampsize
# --------------------------------------------------------------------------- #
def test_riley_vte_worked_example():
    # pmsampsize(type = "s", csrsquared = 0.051, parameters = 30, rate = 0.065,
    #            timepoint = 2, meanfup = 2.07)
    # results_table[, 1] = 5143 1039 5143 5143; events = 691.99064999999996;
    # max_r2a = 0.55472649355297177; nag_r2 = 0.091937198948890519;
    # int_lci/int_uci/int_cuminc = 0.113 0.130 0.122; EPP 23.07; shrinkage of crit. 2 0.648
    r = riley_survival(r2_cs=0.051, parameters=30, rate=0.065, timepoint=2, mean_follow_up=2.07)
    assert isinstance(r, RileySurvivalResult)
    assert (r.required, r.required_criterion_1, r.required_criterion_2) == (5143, 5143, 1039)
    assert r.governing == "i"
    assert r.events == pytest.approx(691.99064999999996, rel=1e-12)
    assert r.required_events == 692
    assert round(r.epp, 2) == 23.07
    assert r.max_r2_cs == pytest.approx(0.55472649355297177, rel=1e-12)
    assert r.r2_nagelkerke == pytest.approx(0.091937198948890519, rel=1e-12)
    assert round(r.shrinkage_criterion_2, 3) == 0.648 and r.final_shrinkage == 0.9
    # unrounded: pt <- round(2.07 * 5143, 1)
    # 1 - exp(-(0.065 -+ 1.96 * sqrt(0.065 / pt)) * 2); 1 - exp(-0.065 * 2)
    assert (r.risk_ci_low, r.risk_ci_high, r.risk_at_timepoint) == pytest.approx(
        (0.11335791272433315, 0.13036884119416070, 0.12190456907943870), rel=1e-12
    )
    assert (round(r.risk_ci_low, 3), round(r.risk_ci_high, 3)) == (0.113, 0.130)
    # n3(0.065, 2, 2.07) = 140.38529919616511
    assert r.n_criterion_3 == pytest.approx(140.38529919616511, rel=1e-12)
    assert r.n == pytest.approx(30 / (0.1 * -math.log(1 - 0.051 / 0.9)), rel=1e-12)
    tab = r.to_frame()
    assert tab["criterion"].tolist() == ["i", "ii", "iii", "final"]
    assert tab["required"].tolist() == [5143, 1039, 141, 5143]


@pytest.mark.parametrize(
    ("kwargs", "n1", "n2", "final", "epp_final"),
    [
        # pmsampsize tests/testthat/test_surv.R: ss <- c(n1, n2, n3, final); SPP[4]
        pytest.param(
            dict(r2_cs=0.051, parameters=25, rate=0.065, timepoint=2, mean_follow_up=2.07),
            4286,
            866,
            4286,
            23.07,
            id="test-3.1",
        ),
        pytest.param(
            dict(r2_cs=0.065, parameters=25, rate=0.065, timepoint=2, mean_follow_up=2.07),
            3335,
            859,
            3335,
            17.95,
            id="test-3.2",
        ),
        pytest.param(
            dict(r2_cs=0.051, parameters=50, rate=0.065, timepoint=2, mean_follow_up=2.07),
            8572,
            1731,
            8572,
            23.07,
            id="test-3.3",
        ),
        pytest.param(
            dict(r2_cs=0.051, parameters=25, rate=0.1, timepoint=2, mean_follow_up=2.07),
            4286,
            731,
            4286,
            35.49,
            id="test-3.4",
        ),
        pytest.param(
            dict(r2_cs=0.051, parameters=25, rate=0.065, timepoint=4, mean_follow_up=2.07),
            4286,
            866,
            4286,
            23.07,
            id="test-3.5",
        ),
        pytest.param(
            dict(r2_cs=0.051, parameters=25, rate=0.065, timepoint=2, mean_follow_up=4),
            4286,
            679,
            4286,
            44.57,
            id="test-3.6",
        ),
        pytest.param(
            dict(r2_cs=0.06, parameters=40, rate=0.08, timepoint=3, mean_follow_up=5),
            5798,
            969,
            5798,
            57.98,
            id="test-3.7",
        ),
        pytest.param(
            dict(r2_cs=0.03, parameters=10, rate=0.09, timepoint=3, mean_follow_up=3),
            2950,
            272,
            2950,
            79.65,
            id="test-3.8",
        ),
        pytest.param(
            dict(r2_cs=0.3, parameters=80, rate=0.03, timepoint=1, mean_follow_up=5),
            1974,
            2272,
            2272,
            4.26,
            id="test-3.9-criterion-ii-governs",
        ),
    ],
)
def test_riley_against_pmsampsize_unit_tests(kwargs, n1, n2, final, epp_final):
    r = riley_survival(**kwargs)
    assert (r.required_criterion_1, r.required_criterion_2, r.required) == (n1, n2, final)
    assert round(r.epp, 2) == epp_final
    assert r.governing == ("ii" if n2 > n1 else "i")


def test_riley_precision_criterion_can_govern():
    # pmsampsize(type = "s", csrsquared = 0.2, parameters = 5, rate = 0.02, timepoint = 10,
    #            meanfup = 3): final 242, but its interval for the 10-year risk is
    # (0.093, 0.261) around 0.181: wider than +-0.05. Criterion (iii) solved for n:
    # n3(0.02, 10, 3) = 644.97062940224032 -> studyval requires 645 (documented deviation)
    r = riley_survival(r2_cs=0.2, parameters=5, rate=0.02, timepoint=10, mean_follow_up=3)
    assert (r.required_criterion_1, r.required_criterion_2) == (199, 242)
    assert r.n_criterion_3 == pytest.approx(644.97062940224032, rel=1e-12)
    assert (r.required, r.governing) == (645, "iii")
    assert r.risk_margin <= 0.05


def test_riley_nagelkerke_input_is_not_rounded():
    # pmsampsize(type = "s", nagrsquared = 0.3, parameters = 10, rate = 0.1, timepoint = 1,
    #            meanfup = 1.5): R2_CS = round(0.3 * max_r2a, 3) = 0.174 -> 466, crit. 2 309
    rounded = riley_survival(r2_cs=0.174, parameters=10, rate=0.1, timepoint=1, mean_follow_up=1.5)
    assert (rounded.required, rounded.required_criterion_2) == (466, 309)
    exact = riley_survival(
        r2_nagelkerke=0.3, parameters=10, rate=0.1, timepoint=1, mean_follow_up=1.5
    )
    assert exact.r2_cs == pytest.approx(0.3 * exact.max_r2_cs, rel=1e-15)
    assert exact.r2_nagelkerke == pytest.approx(0.3, rel=1e-12)
    assert exact.required == 465  # unrounded R2_CS 0.17425 (pmsampsize: 466)
    assert exact.r2_source.startswith("from Nagelkerke")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(
            dict(parameters=10, rate=0.1, timepoint=1, mean_follow_up=1),
            r"exactly one of r2_cs and r2_nagelkerke",
            id="no-r2",
        ),
        pytest.param(
            dict(
                r2_cs=0.1, r2_nagelkerke=0.2, parameters=10, rate=0.1, timepoint=1, mean_follow_up=1
            ),
            r"exactly one",
            id="both-r2",
        ),
        pytest.param(
            dict(r2_cs=0.1, parameters=0, rate=0.1, timepoint=1, mean_follow_up=1),
            r"parameters must be a whole number >= 1",
            id="parameters-0",
        ),
        pytest.param(
            dict(r2_cs=0.1, parameters=2.5, rate=0.1, timepoint=1, mean_follow_up=1),
            r"parameters must be a whole number",
            id="parameters-float",
        ),
        pytest.param(
            dict(r2_cs=0.1, parameters=10, rate=0, timepoint=1, mean_follow_up=1),
            r"rate must be > 0",
            id="rate",
        ),
        pytest.param(
            dict(r2_cs=0.1, parameters=10, rate=0.1, timepoint=-1, mean_follow_up=1),
            r"timepoint must be > 0",
            id="timepoint",
        ),
        pytest.param(
            dict(r2_cs=0.1, parameters=10, rate=0.1, timepoint=1, mean_follow_up=math.inf),
            r"mean_follow_up must be finite",
            id="follow-up",
        ),
        pytest.param(
            dict(r2_cs=0.1, parameters=10, rate=0.1, timepoint=1, mean_follow_up=1, shrinkage=1.0),
            r"shrinkage must be in \(0, 1\)",
            id="shrinkage",
        ),
        pytest.param(
            dict(r2_cs=0.9, parameters=10, rate=0.1, timepoint=1, mean_follow_up=1),
            r"larger than the maximum possible Cox-Snell R2",
            id="r2-too-large",
        ),
        pytest.param(
            dict(r2_cs=0.3, parameters=10, rate=0.5, timepoint=1, mean_follow_up=2, shrinkage=0.25),
            r"must be below the target shrinkage",
            id="r2-above-shrinkage",
        ),
    ],
)
def test_riley_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        riley_survival(**kwargs)


# --------------------------------------------------------------------------- #
# Schoenfeld events
# --------------------------------------------------------------------------- #
def test_schoenfeld_latouche_published_example():
    # ssizeEpi.default(power = 0.80, theta = 2, p = 0.39, psi = 0.505, rho2 = 0.132^2) = 139
    # numDEpi.default(power = 0.80, theta = 2, p = 0.39, rho2 = 0.132^2) = 70
    # unrounded: (qnorm(0.975) + qnorm(0.8))^2 / (log(2)^2 * 0.39 * 0.61 * (1 - 0.132^2))
    #   = 69.886961423483484; divided by 0.505 = 138.39002262075937
    r = schoenfeld_events(
        2, power=0.8, proportion_exposed=0.39, r2_other=0.132**2, event_probability=0.505
    )
    assert isinstance(r, SchoenfeldResult)
    assert r.events == pytest.approx(69.886961423483484, rel=1e-12)
    assert r.subjects == pytest.approx(138.39002262075937, rel=1e-12)
    assert (r.required_events, r.required_subjects, r.required) == (70, 139, 139)
    assert r.n_refers_to == "subjects"


@pytest.mark.parametrize(
    ("kwargs", "events", "required"),
    [
        # numDEpi.default(power = 0.9, theta = 0.7, p = 0.5, rho2 = 0) = 331;
        # (qnorm(0.975) + qnorm(0.9))^2 / (log(0.7)^2 * 0.25) = 330.37791396380959
        pytest.param(dict(hr=0.7, power=0.9), 330.37791396380959, 331, id="hr0.7-90pct"),
        # (qnorm(0.95) + qnorm(0.9))^2 / (log(0.7)^2 * 0.25) = 269.26735572311395
        pytest.param(
            dict(hr=0.7, power=0.9, alternative="one-sided"),
            269.26735572311395,
            270,
            id="one-sided",
        ),
        # (qnorm(0.975) + qnorm(0.8))^2 / (log(1.5)^2 * 0.4 * 0.6) = 198.925041858322
        pytest.param(dict(hr=1.5, proportion_exposed=0.4), 198.925041858322, 199, id="hr1.5"),
    ],
)
def test_schoenfeld_against_r(kwargs, events, required):
    r = schoenfeld_events(**kwargs)
    assert r.events == pytest.approx(events, rel=1e-12)
    assert (r.required_events, r.required) == (required, required)
    assert r.subjects is None and r.n_refers_to == "events"


def test_schoenfeld_symmetric_in_hr_and_exposure():
    a = schoenfeld_events(1.8, proportion_exposed=0.3)
    b = schoenfeld_events(1 / 1.8, proportion_exposed=0.7)
    assert a.events == pytest.approx(b.events, rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(dict(hr=1.0), r"hr must differ from 1", id="hr-1"),
        pytest.param(dict(hr=-2.0), r"hr must be > 0", id="hr-negative"),
        pytest.param(dict(hr=2.0, power=1.0), r"power must be in \(0, 1\)", id="power"),
        pytest.param(dict(hr=2.0, proportion_exposed=0.0), r"proportion_exposed", id="exposed"),
        pytest.param(dict(hr=2.0, r2_other=1.0), r"r2_other must be in \[0, 1\)", id="r2"),
        pytest.param(dict(hr=2.0, event_probability=0), r"event_probability", id="psi"),
        pytest.param(dict(hr=2.0, alternative="two.sided"), r"did you mean 'two-sided'", id="alt"),
        pytest.param(dict(hr=2.0, alpha=0.0), r"alpha must be in", id="alpha"),
    ],
)
def test_schoenfeld_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        schoenfeld_events(**kwargs)


# --------------------------------------------------------------------------- #
# Registered sample sizes
# --------------------------------------------------------------------------- #
def test_registered_refracture_pvp_560():
    # NCT06379243 registers 560 participants and a 1-year re-fracture model but no planning
    # values. Illustrative assumptions: 12 candidate parameters, R2_CS 0.10, 0.12
    # re-fractures per person-year, 1 year of follow-up each.
    # pmsampsize(type = "s", csrsquared = 0.10, parameters = 12, rate = 0.12, timepoint = 1,
    #            meanfup = 1): 1019 426 1019 1019; events 122.28
    # 12 / ((0.9 - 1) * log(1 - 0.10 / 0.9)) = 1018.8224418844511
    r = riley_survival(r2_cs=0.10, parameters=12, rate=0.12, timepoint=1, mean_follow_up=1)
    assert r.required == 1019 and r.events == pytest.approx(122.28, rel=1e-12)
    check = check_registered(r.n, 560, label="participants", basis="the Riley et al. criteria")
    assert check.shortfall == 459 and not check.adequate
    assert check.message == (
        "The registered 560 participants are 459 short of the 1019 that the Riley et al. "
        "criteria requires (1018.8 unrounded)."
    )


def test_registered_cirrhosis_1000():
    # NCT06531200 (~1000 patients). Illustrative: sarcopenia in 40%, cause-specific HR 1.5
    # for death (transplant competing), power 0.8, 20% die during follow-up.
    # ssizeEpi.default(power = 0.8, theta = 1.5, p = 0.4, psi = 0.2, rho2 = 0) = 995
    r = schoenfeld_events(1.5, power=0.8, proportion_exposed=0.4, event_probability=0.2)
    assert (r.required_events, r.required_subjects) == (199, 995)
    check = check_registered(r.n, 1000, label="patients", basis="Schoenfeld's formula")
    assert check.adequate and check.shortfall == -5
    assert check.message == (
        "The registered 1000 patients exceed by 5 the 995 that Schoenfeld's formula requires "
        "(994.6 unrounded)."
    )
