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

* ``horizon_status_counts`` on ``tests/data/pbc_competing.csv`` (``survival::pbc``, 312 patients;
  0 = censored, 1 = transplant, 2 = death), death the cause, R 4.2.2, survival 3.5-3::

      d <- read.csv("tests/data/pbc_competing.csv"); h <- 1826
      with(d, c(event = sum(status == 2 & time <= h), competing = sum(status == 1 & time <= h),
                followed = sum(time > h | (time == h & status == 0)),
                censored_before = sum(status == 0 & time < h)))
      #>           event       competing        followed censored_before
      #>              85              13             159              55
      # independently, from the Aalen-Johansen fit: censored before h, and at risk at h
      fit <- survfit(Surv(time, factor(status)) ~ 1, data = d)
      sum(fit$n.censor[fit$time < h]); summary(fit, times = h)$n.risk
      #> 55   159
      sapply(c(400, 1000, 1826, 3000), function(h) nrow(d) - sum(fit$n.censor[fit$time < h]))
      #> 312 308 257 189
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.sample_size_validation import (
    horizon_status_counts,
    riley_validation_binary,
)
from studyval.errors import StudyvalError

PBC = Path(__file__).parent / "data" / "pbc_competing.csv"

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


# ----------------------------------------------------------------------------- status at the horizon


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    return pd.read_csv(PBC)


def test_horizon_status_counts_equal_r_on_pbc(pbc) -> None:
    r = horizon_status_counts(pbc["time"], pbc["status"], cause=2, horizon=1826, causes=(1, 2))
    # R: event 85, competing 13, followed 159, censored_before 55 (n.risk at 1826: 159)
    assert (r.n_event, r.n_competing, r.n_event_free, r.n_censored_before) == (85, 13, 159, 55)
    assert r.n == 312 and r.n_known == 257  # R: 312 - 55
    frame = r.to_frame()
    assert frame.shape == (1, 8) and int(frame["n_known"].iloc[0]) == 257


@pytest.mark.parametrize(
    ("horizon", "expected"),
    [
        pytest.param(400, 312, id="early"),
        pytest.param(1000, 308, id="1000-days"),
        pytest.param(1826, 257, id="5-years"),
        pytest.param(3000, 189, id="late"),
    ],
)
def test_known_status_equals_r_survfit_censoring_before_the_horizon(pbc, horizon, expected) -> None:
    # R: nrow(d) - sum(fit$n.censor[fit$time < h]) for h = 400, 1000, 1826, 3000: 312 308 257 189
    r = horizon_status_counts(pbc["time"], pbc["status"], cause=2, horizon=horizon)
    assert r.n_known == expected
    assert r.n_event + r.n_competing + r.n_event_free + r.n_censored_before == r.n


def test_horizon_status_at_exactly_the_horizon() -> None:
    # an event at tau counts by tau; censoring at tau is followed to tau; an event after tau is
    # event-free at tau; the cause of interest decides which events compete
    t = [5.0, 5.0, 5.0, 7.0, 4.9]
    code = [1, 2, 0, 1, 0]
    r = horizon_status_counts(t, code, cause=1, horizon=5.0)
    assert (r.n_event, r.n_competing, r.n_event_free, r.n_censored_before) == (1, 1, 2, 1)
    swapped = horizon_status_counts(t, code, cause=2, horizon=5.0)
    assert (swapped.n_event, swapped.n_competing, swapped.n_known) == (1, 1, r.n_known)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"horizon": 0}, "horizon", id="zero-horizon"),
        pytest.param({"horizon": float("nan")}, "horizon", id="nan-horizon"),
        pytest.param({"time": [1.0, -1.0, 2.0]}, "negative", id="negative-time"),
        pytest.param({"event_code": [0, 1, 3], "causes": (1, 2)}, "outside", id="undeclared-code"),
        pytest.param({"cause": 0}, "positive integer", id="cause-zero"),
        pytest.param({"event_code": [0, 1]}, "values", id="lengths"),
    ],
)
def test_horizon_status_errors(kwargs, match) -> None:
    args = {"time": [1.0, 2.0, 3.0], "event_code": [0, 1, 2], "cause": 1, "horizon": 2.0} | kwargs
    with pytest.raises(StudyvalError, match=match):
        horizon_status_counts(**args)
