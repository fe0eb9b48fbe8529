"""Tests for studyval.analysis.sample_size_validation (Riley et al. 2021, pmvalsampsize type "b").

Oracles
-------
* The worked example of ``pmvalsampsize`` 0.1.0 (the package's default input, printed in the
  README of raminrzn/pmvalsampsizepexa, a wrapper of the CRAN package)::

      pmvalsampsize(type = "b", prevalence = 0.018, cstatistic = 0.8, lpnormal = c(-5, 2.5))
      #>                 criterion Samp_size Perf    SE CI_width
      #> 1        Criteria 1 - O/E     20975  1.0 0.051      0.2
      #> 2     Criteria 2 - C-slope      4563  1.0 0.051      0.2
      #> 3 Criteria 3 - C statistic      4252  0.8 0.026      0.1
      #> 4                Final SS     20975  1.0 0.051      0.2

  Criteria 1 and 3 are deterministic and agree exactly. Criterion 2 is a simulation in the
  package (1,000,000 draws of the LP, seed 123456); here it is the integral, 4,554 (below).
* R 4.2 for the integrals (the package's formulas with ``integrate`` in place of the simulated
  mean)::

      # LP ~ N(-5, 2.5)
      f <- function(k) integrate(function(z) { lp <- -5 + 2.5 * z; p <- plogis(lp)
             lp^k * p * (1 - p) * dnorm(z) }, -Inf, Inf, rel.tol = 1e-12)$value
      I00 <- f(0); I01 <- f(1); I11 <- f(2); se <- 0.2 / (2 * 1.96)
      I00 / (se^2 * (I00 * I11 - I01^2))
      # criterion 1 by the package's loop, criterion 3 by its search over n = 1..1e6:
      width_oe <- 0; se_oe <- 0
      while (width_oe < 0.2) { se_oe <- se_oe + 1e-4
                               width_oe <- exp(1.96 * se_oe) - exp(-1.96 * se_oe) }
      n <- 1:1000000; C <- 0.8; prev <- 0.018
      se2 <- C * (1 - C) * (1 + (n / 2 - 1) * (1 - C) / (2 - C) + (n / 2 - 1) * C / (1 + C)) /
             (n^2 * prev * (1 - prev))
      n3 <- min(n[2 * 1.96 * sqrt(se2) <= 0.1]); sqrt(se2[n3])

      # binormal LP from C = 0.72, prevalence 0.12 (pmvalsampsize's lpcstat, solved exactly)
      prev <- 0.12; C <- 0.72; v <- 2 * qnorm(C)^2; s <- sqrt(v)
      E <- function(g, m) (1 - prev) * integrate(function(z) g(m + s * z) * dnorm(z), -Inf, Inf,
             rel.tol = 1e-12)$value + prev * integrate(function(z) g(m + v + s * z) * dnorm(z),
             -Inf, Inf, rel.tol = 1e-12)$value
      m <- uniroot(function(m) E(plogis, m) - prev, c(-50, 50), tol = 1e-14)$root
      I <- sapply(0:2, function(k) E(function(lp) lp^k * plogis(lp) * plogis(-lp), m))
      se <- 0.2 / (2 * 1.96); I[1] / (se^2 * (I[1] * I[3] - I[2]^2))
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from studyval.analysis.sample_size_validation import riley_validation_binary
from studyval.errors import StudyvalError

REL = 1e-6
# R: se_oe, width_oe of the loop; I00, I01, I11, n2 (unrounded); n3 and its SE
R_OE = (0.051000000000000434, 0.20025309986649076)
R_NORMAL = (0.033818321302520271, -0.057063652406029827, 0.18064575585551262, 4553.8773080509281)
R_C = (4252, 0.025508295939123592)
# R: m, sqrt(v), I00, I01, I11, n2 for the binormal LP from C = 0.72, prevalence 0.12
R_BINORMAL = (-2.3321343872883893, 0.82426236429693089, 0.097374418698946877,
              -0.17224020577273455, 0.36548646900774556, 6316.309358356044)  # fmt: skip


@pytest.fixture(scope="module")
def example():
    return riley_validation_binary(prevalence=0.018, c_statistic=0.8, lp_normal=(-5, 2.5))


def test_worked_example_of_pmvalsampsize(example) -> None:
    t = example.to_frame().set_index("criterion")
    assert t.loc["oe", "required"] == 20975  # pmvalsampsize: 20975
    assert t.loc["c_statistic", "required"] == 4252  # pmvalsampsize: 4252
    assert round(t.loc["c_statistic", "se"], 3) == 0.026  # pmvalsampsize: 0.026
    assert round(t.loc["oe", "se"], 3) == 0.051  # pmvalsampsize: 0.051
    # criterion 2: the package's simulated 4563 against the exact integral (difference in method:
    # Monte Carlo error of the simulated Fisher information, 0.2%)
    assert t.loc["calibration_slope", "required"] == 4554
    assert abs(4563 / 4554 - 1) < 0.005
    assert example.required == 20975 and example.governing == "oe"  # pmvalsampsize: 20975
    assert example.required_events == math.ceil(20975 * 0.018)  # the package prints 377.55


def test_criteria_equal_r(example) -> None:
    t = example.to_frame().set_index("criterion")
    np.testing.assert_allclose((t.loc["oe", "se"], t.loc["oe", "ci_width"]), R_OE, rtol=1e-12)
    got = (example.fisher_00, example.fisher_01, example.fisher_11,
           t.loc["calibration_slope", "required_unrounded"])  # fmt: skip
    np.testing.assert_allclose(got, R_NORMAL, rtol=REL)
    assert t.loc["c_statistic", "required"] == R_C[0]
    assert t.loc["c_statistic", "se"] == pytest.approx(R_C[1], rel=1e-12)


def test_binormal_lp_from_c_statistic_equals_r() -> None:
    r = riley_validation_binary(prevalence=0.12, c_statistic=0.72, lp_from_c_statistic=True)
    got = (r.lp_mean, r.lp_sd, r.fisher_00, r.fisher_01, r.fisher_11,
           r.to_frame().set_index("criterion").loc["calibration_slope", "required_unrounded"])  # fmt: skip
    np.testing.assert_allclose(got, R_BINORMAL, rtol=REL)
    assert r.lp_distribution == "binormal from C"


def test_exact_oe_se_is_the_closed_form_and_needs_no_more_patients() -> None:
    grid = riley_validation_binary(prevalence=0.018, c_statistic=0.8, lp_normal=(-5, 2.5))
    exact = riley_validation_binary(
        prevalence=0.018, c_statistic=0.8, lp_normal=(-5, 2.5), oe_se_step=None
    )
    e = exact.to_frame().set_index("criterion").loc["oe"]
    assert e["ci_width"] == pytest.approx(0.2, rel=1e-12)
    assert e["se"] == pytest.approx(math.asinh(0.1) / 1.96, rel=1e-12)
    assert e["required"] >= grid.to_frame().set_index("criterion").loc["oe", "required"]


def test_narrower_targets_need_more_patients() -> None:
    a = riley_validation_binary(prevalence=0.1, c_statistic=0.75, lp_from_c_statistic=True)
    b = riley_validation_binary(
        prevalence=0.1, c_statistic=0.75, lp_from_c_statistic=True,
        oe_ci_width=0.1, slope_ci_width=0.1, c_ci_width=0.05,
    )  # fmt: skip
    assert (b.to_frame()["required"] > a.to_frame()["required"]).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"lp_normal": None}, "exactly one", id="no-lp"),
        pytest.param({"lp_from_c_statistic": True}, "exactly one", id="two-lp"),
        pytest.param({"prevalence": 1.0}, "prevalence", id="prevalence"),
        pytest.param({"c_statistic": 0.4}, "c_statistic", id="c-below-half"),
        pytest.param({"lp_normal": (0.0, -1.0)}, "sd", id="negative-sd"),
        pytest.param({"oe_ci_width": 0}, "oe_ci_width", id="zero-width"),
        pytest.param({"prevalence": True}, "number", id="bool"),
    ],
)
def test_errors(kwargs, match) -> None:
    args = {"prevalence": 0.1, "c_statistic": 0.75, "lp_normal": (-2.5, 1.0)} | kwargs
    with pytest.raises(StudyvalError, match=match):
        riley_validation_binary(**args)
