"""Tests for studyval.analysis.sample_size_multinomial (Pate et al. 2023 criteria).

Oracles
-------
* The authors' R code: ``multsampsize::pmsampsize_mult_general``
  (github.com/alexpate30/multsampsize, ``R/pmsampsize_mult.R``; not installable
  offline) re-typed into R 4.2 with ``pmsampsize:::cstat2rsq`` (pmsampsize
  1.1.3: ``n <- 1e6; set.seed(123456)``; one simulated data set, ``glm``), on
  the paper's worked example (ovarian tumours, K = 5; README of the package:
  criteria 13136, 1477, 524). The script is in the test's comment.
* The package README's second example (K = 3, Nagelkerke 0.15 everywhere:
  criteria 2660, 714, 664; see the criterion (iii) note).
* ``pmsampsize(type = "b")`` 1.1.3 formulas for the binary special case
  (Riley et al. 2020 BMJ example: R2_CS 0.288, 24 parameters, prevalence
  0.174 -> 623, 662, 221; final 662).
* The C-statistic conversion against R ``glm`` fitted to a weighted
  quadrature grid of the binormal population (an independent fit of the
  limit the simulation estimates).
"""

from __future__ import annotations

import math

import pytest

from studyval.analysis.sample_size import check_registered
from studyval.analysis.sample_size_multinomial import (
    MultinomialSampleSizeResult,
    max_r2_cs,
    pate_multinomial,
    r2_cs_from_cstatistic,
)
from studyval.errors import StudyvalError

EVENTS = [2557, 186, 176, 467, 120]
PROPS = [e / sum(EVENTS) for e in EVENTS]
CSTAT = [0.85, 0.92, 0.99, 0.95, 0.75, 0.95, 0.87, 0.87, 0.71, 0.82]
# R (pmsampsize:::cstat2rsq, seed 123456, n = 1e6), options(digits = 17):
#   r2 <- sapply(1:10, function(x) cstat2rsq(cs[x], phi[x]))
#   phi <- ev[combn(5,2)[2,]] / (ev[combn(5,2)[2,]] + ev[combn(5,2)[1,]])
R2_SIMULATED = [
    0.11621936797021870,
    0.17890363883585669,
    0.49707353232443985,
    0.16824598596640239,
    0.18483906929326877,
    0.49916757610005169,
    0.37213563093047997,
    0.32937047120528007,
    0.12792348276996190,
    0.21007883017024398,
]


def test_worked_example_reproduces_multsampsize():
    # R: m <- ceiling(17/((0.9-1)*log(1-r2/0.9)))
    #    -> 1230 768 212 822 740 211 319 374 1109 640
    #    N1 <- ceiling(max(m/pkr)) = 13136 (m/pkr[9] = 13135.65540540540678, pair 3 vs 5)
    #    mx <- 1 - prod(pk^pk)^2 = 0.84124622507526392; R <- 0.15*mx
    #    N2 <- 4*17/((R/(R+0.05*mx) - 1)*log(1 - R - 0.05*mx)) = 1476.4758072859588
    #    N3 <- max(qchisq(1-0.05/5,1)*pk*(1-pk)/0.05^2) = 523.92276260049562
    # multsampsize README: results_all 13136 1477 524 13136
    r = pate_multinomial(
        proportions=PROPS, parameters=17, r2_cs=R2_SIMULATED, r2_nagelkerke_overall=0.15
    )
    assert isinstance(r, MultinomialSampleSizeResult)
    assert r.pair_n_submodel == (1230, 768, 212, 822, 740, 211, 319, 374, 1109, 640)
    assert (r.required_criterion_1, r.required_criterion_2, r.required_criterion_3) == (
        13136,
        1477,
        524,
    )
    assert r.required == 13136 and r.governing == "i" and r.binding_pair == "3 vs 5"
    assert r.n == pytest.approx(13135.65540540540678, rel=1e-12)
    assert r.n_criterion_2 == pytest.approx(1476.4758072859588, rel=1e-12)
    assert r.n_criterion_3 == pytest.approx(523.92276260049562, rel=1e-12)
    assert r.max_r2_cs_overall == pytest.approx(0.84124622507526392, rel=1e-12)
    # README: events_expected 9580.3628 696.8899 659.4227 1749.7182 449.6064
    assert r.expected_events == pytest.approx(
        [9580.3628, 696.8899, 659.4227, 1749.7182, 449.6064], abs=1e-4
    )
    # README results_criteria1: Max_Rsq 0.391 0.380 0.577 0.306 0.750 0.697 0.738 0.691 0.741
    # 0.637; targ_shrinkage 0.988 0.993 0.998 0.992 0.945 0.991 0.972 0.985 0.900 0.971
    assert [round(v, 3) for v in r.pair_max_r2_cs] == [
        0.391,
        0.380,
        0.577,
        0.306,
        0.750,
        0.697,
        0.738,
        0.691,
        0.741,
        0.637,
    ]
    assert [round(v, 3) for v in r.pair_expected_shrinkage] == [
        0.988,
        0.993,
        0.998,
        0.992,
        0.945,
        0.991,
        0.972,
        0.985,
        0.900,
        0.971,
    ]


def test_worked_example_from_cstatistics_within_simulation_error():
    # Documented difference: the C-statistic conversion is the simulation's limit. Its R2
    # differ from the simulated ones by Monte Carlo error (< 1.5e-3 here), which moves
    # criterion (i) from 13136 to 13065 (pair 3 vs 5: 1103 instead of 1109 participants).
    r = pate_multinomial(
        proportions=PROPS, parameters=17, cstatistic=CSTAT, r2_nagelkerke_overall=0.15
    )
    for got, sim in zip(r.pair_r2_cs, R2_SIMULATED, strict=True):
        assert got == pytest.approx(sim, abs=1.5e-3)
    assert r.required == 13065 and r.binding_pair == "3 vs 5"
    assert abs(r.required - 13136) / 13136 < 0.01


@pytest.mark.parametrize(
    ("cstat", "phi", "expected"),
    [
        # R: mu <- sqrt(2)*qnorm(C); grid x0 <- seq(-12,12,by=5e-4), x1 <- seq(mu-12,mu+12,...)
        #    w <- c((1-phi)*dnorm(x0)*h, phi*dnorm(x1-mu)*h)
        #    f <- glm(y ~ x, binomial, weights = w, control = glm.control(epsilon = 1e-14))
        #    1 - exp(-(f$null.deviance - f$deviance)/sum(w))
        pytest.param(0.71, 120 / 296, 0.12855890999941078, id="pair-3-5"),
        pytest.param(0.85, 186 / (2557 + 186), 0.11633409562227437, id="pair-1-2"),
        pytest.param(0.99, 467 / (2557 + 467), 0.49721462193234445, id="pair-1-4"),
        pytest.param(0.75, 0.174, 0.11495928613160278, id="binary"),
    ],
)
def test_cstatistic_conversion_against_glm_on_population_grid(cstat, phi, expected):
    assert r2_cs_from_cstatistic(cstat, phi) == pytest.approx(expected, rel=1e-9)


def test_readme_three_category_example():
    # multsampsize README: nagrsquared = c(0.15,0.15,0.15), parameters = 17,
    # mult_n_events = c(50,100,150), mult_nagrsquared_overall = 0.15
    # -> Criteria 1 2660, Criteria 2 714, Criteria 3 664 (qchisq(1-0.05/5,1): see below);
    # CS_Rsq 0.108 0.101 0.111; targ_shrinkage 0.900 0.920 0.942
    r = pate_multinomial(
        proportions=[1 / 6, 2 / 6, 3 / 6],
        parameters=17,
        r2_nagelkerke=[0.15, 0.15, 0.15],
        r2_nagelkerke_overall=0.15,
    )
    assert (r.required_criterion_1, r.required_criterion_2) == (2660, 714)
    assert [round(v, 3) for v in r.pair_r2_cs] == [0.108, 0.101, 0.111]
    assert [round(v, 3) for v in r.pair_expected_shrinkage] == [0.900, 0.920, 0.942]
    # Documented difference: multsampsize hard-codes qchisq(1 - 0.05/5, 1) (its K = 5 worked
    # example); the Bonferroni divisor here is K = 3.
    # R: qchisq(1-0.05/3,1)*0.25/0.05^2 = 573.11392819390687
    assert r.n_criterion_3 == pytest.approx(573.11392819390687, rel=1e-12)
    assert r.required_criterion_3 == 574
    # R: pk <- (1:3)/6; 1 - prod(pk^pk)^2 = 0.86771657900264998
    assert r.max_r2_cs_overall == pytest.approx(0.86771657900264998, rel=1e-12)


def test_binary_special_case_equals_pmsampsize_binary():
    # pmsampsize(type = "b", csrsquared = 0.288, parameters = 24, prevalence = 0.174),
    # formulas of pmsampsize_bin (1.1.3), R, options(digits = 17):
    #   n1 <- 24/((0.9-1)*log(1-0.288/0.9)) = 622.30580349609659 -> 623
    #   mx <- 1-exp(2*(0.174*log(0.174)+0.826*log(0.826))) = 0.60320866776703519
    #   s2 <- 0.288/(0.288+0.05*mx) = 0.90520369529564515
    #   n2 <- 24/((s2-1)*log(1-0.288/s2)) = 661.09734272610069 -> 662
    #   n3 <- (1.96/0.05)^2*0.174*0.826 = 220.85204735999997 -> 221; final 662 (BMJ 2020)
    r = pate_multinomial(
        proportions=[0.826, 0.174], parameters=24, r2_cs=[0.288], r2_cs_overall=0.288
    )
    assert r.pair_share == (1.0,)
    assert r.n_criterion_1 == 623.0  # criterion (i) is pmsampsize's rounded-up n1
    assert r.n_criterion_2 == pytest.approx(661.09734272610069, rel=1e-12)
    assert r.n_criterion_3 == pytest.approx(220.85204735999997, rel=1e-12)
    assert r.max_r2_cs_overall == pytest.approx(0.60320866776703519, rel=1e-12)
    assert r.shrinkage_criterion_2 == pytest.approx(0.90520369529564515, rel=1e-12)
    assert (r.required_criterion_1, r.required_criterion_2, r.required_criterion_3) == (
        623,
        662,
        221,
    )
    assert r.required == 662 and r.governing == "ii"


def test_binary_case_is_symmetric_in_the_labels():
    a = pate_multinomial(
        proportions=[0.7, 0.3], parameters=10, cstatistic=[0.8], r2_nagelkerke_overall=0.2
    )
    b = pate_multinomial(
        proportions=[0.3, 0.7], parameters=10, cstatistic=[0.8], r2_nagelkerke_overall=0.2
    )
    assert a.required == b.required
    assert a.pair_r2_cs[0] == pytest.approx(b.pair_r2_cs[0], rel=1e-10)


def test_more_parameters_need_more_participants():
    kw = dict(
        proportions=[0.3, 0.45, 0.25], cstatistic=[0.75, 0.9, 0.75], r2_nagelkerke_overall=0.15
    )
    assert (
        pate_multinomial(parameters=20, **kw).required
        > pate_multinomial(parameters=10, **kw).required
    )


def test_to_frame_and_registered_check():
    r = pate_multinomial(
        proportions=PROPS,
        parameters=17,
        r2_cs=R2_SIMULATED,
        r2_nagelkerke_overall=0.15,
        classes=["benign", "borderline", "stage I", "stage II-IV", "metastatic"],
    )
    t = r.to_frame()
    assert list(t["criterion"]) == ["i"] * 10 + ["ii", "iii", "final"]
    assert t.loc[t["criterion"] == "final", "required"].item() == 13136
    assert t.loc[t["criterion"] == "final", "pair"].item() == "stage I vs metastatic"
    assert (t.loc[t["criterion"] == "i", "n_submodel"] > 0).all()
    assert math.isnan(t.loc[t["criterion"] == "iii", "r2_cs"].item())
    chk = check_registered(r.n, 1500, label="development patients")
    assert chk.required == 13136 and not chk.adequate
    assert r.summary_frame().shape[0] == 1


def test_max_r2_cs_binary():
    # Riley et al. (2019) eq. 23, phi = 0.5: 1 - 0.25 = 0.75
    assert max_r2_cs([0.5, 0.5]) == pytest.approx(0.75, rel=1e-14)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(dict(cstatistic=[0.8, 0.8]), "3 values", id="wrong-length"),
        pytest.param(
            dict(cstatistic=[0.8] * 3, r2_cs=[0.1] * 3),
            "exactly one of cstatistic",
            id="two-inputs",
        ),
        pytest.param(dict(), "exactly one of cstatistic", id="no-input"),
        pytest.param(
            dict(cstatistic=[0.4, 0.8, 0.8]), r"cstatistic\[0\] must be in", id="c-below-half"
        ),
        pytest.param(dict(r2_cs=[0.9, 0.1, 0.1]), "exceeds its maximum", id="r2-too-large"),
    ],
)
def test_bad_inputs(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        pate_multinomial(
            proportions=[0.3, 0.45, 0.25], parameters=10, r2_nagelkerke_overall=0.15, **kwargs
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param(dict(proportions=[0.3, 0.3, 0.3]), "sum to 1", id="not-summing"),
        pytest.param(dict(proportions=[1.0]), "at least 2", id="one-category"),
        pytest.param(dict(parameters=0), "parameters", id="no-parameters"),
        pytest.param(dict(r2_nagelkerke_overall=None), "r2_cs_overall", id="no-overall"),
        pytest.param(dict(classes=["a", "a", "b"]), "distinct", id="duplicate-classes"),
    ],
)
def test_bad_design(kwargs, match):
    base = dict(
        proportions=[0.3, 0.45, 0.25],
        parameters=10,
        cstatistic=[0.75, 0.9, 0.75],
        r2_nagelkerke_overall=0.15,
    )
    with pytest.raises(StudyvalError, match=match):
        pate_multinomial(**(base | kwargs))
