"""Tests for studyval.analysis.bland_altman: bias and limits of agreement.

Oracles
-------
* Published values: Bland & Altman (1986) PEFR example (bias -2.1, SD 38.8,
  lower limit -79.7 with CI -114.3 to -45.1, using 2 SD).
* Base R for Bland-Altman (``mean``, ``sd``, ``qt``, ``qt(..., ncp=)`` for
  Carkeet's exact limits, ``lm``, ``aov`` for the repeated-pairs ANOVA).
  The exact R call sits beside each expected value; R is a development
  oracle only; nothing here runs R.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from studyval.analysis.bland_altman import _repeated_pairs_statistic, bland_altman
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

REL = 1e-9  # the requirement is 1e-6; observed agreement is ~1e-15

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
# Bland & Altman (1986), Lancet 327:307-310, Table 1: PEFR (l/min) of 17
# subjects, two readings with the Wright and with the mini Wright meter.
WRIGHT_1 = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
WRIGHT_2 = [490, 397, 512, 401, 470, 611, 415, 431, 638, 429, 420, 633, 275, 492, 165, 372, 421]
MINI_1 = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]
MINI_2 = [525, 415, 508, 444, 500, 625, 460, 390, 642, 432, 420, 605, 227, 467, 268, 370, 443]

# =========================================================================== Bland-Altman


def test_bland_altman_pefr_against_r():
    r = bland_altman(WRIGHT_1, MINI_1)
    # d <- W1 - M1; n <- 17; s <- sd(d); z <- qnorm(0.975); tq <- qt(0.975, n - 1)
    # mean(d); s/sqrt(n); mean(d) + c(-1, 1) * tq * s/sqrt(n); t.test(W1, M1, paired = TRUE)$p.value
    assert r.bias == pytest.approx(-2.1176470588235294, rel=REL)
    assert r.bias_se == pytest.approx(9.4019250035099891, rel=REL)
    assert (r.bias_ci_low, r.bias_ci_high) == pytest.approx(
        (-22.048837696645165, 17.813543578998107), rel=REL
    )
    assert r.bias_p_value == pytest.approx(0.8246476735303766, rel=REL)
    # s; mean(d) - z * s; mean(d) + z * s
    assert r.sd == pytest.approx(38.765129873607378, rel=REL)
    assert (r.lower_loa, r.upper_loa) == pytest.approx(
        (-78.09590546711172, 73.860611349464648), rel=REL
    )
    assert r.loa_z == pytest.approx(1.959963984540054, rel=1e-15)
    # se <- sqrt(3 * s^2 / n); mean(d) - z*s + c(-1,1)*tq*se; mean(d) + z*s + c(-1,1)*tq*se
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx(
        (-112.61774030715993, -43.574070627063506), rel=REL
    )
    assert (r.upper_loa_ci_low, r.upper_loa_ci_high) == pytest.approx(
        (39.338776509416434, 108.38244618951286), rel=REL
    )
    # summary(lm(d ~ I((W1 + M1)/2)))$coefficients: slope, SE, p; intercept
    assert (r.slope, r.slope_se, r.slope_p_value, r.intercept) == pytest.approx(
        (0.028687445152549246, 0.088206408276546855, 0.74949853364929397, -15.067497300038999),
        rel=1e-8,
    )
    assert (r.n, r.n_clusters, r.method, r.ci_method) == (17, 17, "paired", "approximate")


def test_bland_altman_exact_limits_against_r():
    r = bland_altman(WRIGHT_1, MINI_1, ci_method="exact")
    # q <- qt(c(0.025, 0.975), n - 1, ncp = z * sqrt(n))
    # mean(d) - s * rev(q)/sqrt(n); mean(d) + s * q/sqrt(n)
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx(
        (-124.16079829483958, -53.094931416742156), rel=1e-9
    )
    assert (r.upper_loa_ci_low, r.upper_loa_ci_high) == pytest.approx(
        (48.859637299095098, 119.92550417719251), rel=1e-9
    )
    assert math.isnan(r.lower_loa_se) and r.ci_method == "exact"


def test_bland_altman_alpha_sets_interval_and_loa_coverage():
    r = bland_altman(WRIGHT_1, MINI_1, ci_method="exact", alpha=0.1)
    # z <- qnorm(0.95); q <- qt(c(0.05, 0.95), n - 1, ncp = z * sqrt(n))
    # mean(d) - s * rev(q)/sqrt(n); mean(d) + s * q/sqrt(n); mean(d) + c(-1,1)*qt(0.95, n-1)*s/sqrt(n)
    assert r.loa_coverage == pytest.approx(0.9) and r.loa_z == pytest.approx(1.6448536269514722)
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx(
        (-98.497994776476219, -46.353226134536982), rel=1e-9
    )
    assert (r.upper_loa_ci_low, r.upper_loa_ci_high) == pytest.approx(
        (42.117932016889924, 94.262700658829147), rel=1e-9
    )
    assert (r.bias_ci_low, r.bias_ci_high) == pytest.approx(
        (-18.532314448025136, 14.297020330378079), rel=REL
    )
    # coverage can be set apart from alpha
    s = bland_altman(WRIGHT_1, MINI_1, alpha=0.1, loa_coverage=0.95)
    assert s.loa_z == pytest.approx(1.959963984540054)


def test_bland_altman_lancet_1986_published_values():
    # Bland & Altman (1986) use 2 SD: limits -79.7 to 75.5; CI of the lower limit
    # -114.3 to -45.1 (from rounded bias -2.1 and SD 38.8, hence the tolerance).
    two_sd = 2.0 * 0.9772498680518208 - 1.0  # coverage with z = 2
    r = bland_altman(WRIGHT_1, MINI_1, loa_coverage=two_sd)
    assert r.loa_z == pytest.approx(2.0, rel=1e-12)
    assert round(r.bias, 1) == -2.1 and round(r.sd, 1) == 38.8
    assert (r.lower_loa, r.upper_loa) == pytest.approx((-79.7, 75.5), abs=0.15)
    assert (r.lower_loa_ci_low, r.lower_loa_ci_high) == pytest.approx((-114.3, -45.1), abs=0.15)


def test_exact_limits_have_nominal_coverage():
    """Carkeet's interval is exact for normal differences: check by simulation."""
    rng = np.random.default_rng(2015)
    n, sims, z = 10, 20000, 1.959963984540054
    d = rng.normal(3.0, 2.0, size=(sims, n))
    theta = 3.0 + z * 2.0
    r = bland_altman(d[0] + 0.0, np.zeros(n), ci_method="exact")
    # the interval is mean + s * [q_lo, q_hi] / sqrt(n) with the same q for every sample
    q_lo = (r.upper_loa_ci_low - r.bias) / r.sd * math.sqrt(n)
    q_hi = (r.upper_loa_ci_high - r.bias) / r.sd * math.sqrt(n)
    m, s = d.mean(axis=1), d.std(axis=1, ddof=1)
    covered = (m + s * q_lo / math.sqrt(n) <= theta) & (theta <= m + s * q_hi / math.sqrt(n))
    assert covered.mean() == pytest.approx(0.95, abs=0.005)
    # the approximate interval undercovers at n = 10
    t = 2.2621571627409915  # qt(0.975, 9)
    half = t * np.sqrt(3 * s**2 / n)
    approx = (m + z * s - half <= theta) & (theta <= m + z * s + half)
    assert approx.mean() < 0.94


def test_bland_altman_swapping_methods_mirrors_everything():
    r = bland_altman(WRIGHT_1, MINI_1)
    s = bland_altman(MINI_1, WRIGHT_1)
    assert s.bias == pytest.approx(-r.bias)
    assert (s.lower_loa, s.upper_loa) == pytest.approx((-r.upper_loa, -r.lower_loa))
    assert (s.lower_loa_ci_low, s.lower_loa_ci_high) == pytest.approx(
        (-r.upper_loa_ci_high, -r.upper_loa_ci_low)
    )
    assert s.slope == pytest.approx(-r.slope) and s.slope_p_value == pytest.approx(r.slope_p_value)


def test_bland_altman_table_and_points():
    r = bland_altman(WRIGHT_1, MINI_1)
    table = r.to_frame()
    assert list(table["quantity"]) == ["bias", "lower_loa", "upper_loa", "slope"]
    assert {"estimate", "se", "ci_low", "ci_high", "p_value", "ci_level", "ci_method", "loa_coverage",
            "n", "n_clusters"} <= set(table.columns)  # fmt: skip
    row = table.set_index("quantity").loc["upper_loa"]
    assert (row.estimate, row.ci_low, row.ci_high) == (
        r.upper_loa,
        r.upper_loa_ci_low,
        r.upper_loa_ci_high,
    )
    # slope interval: t with n - 2 df around the lm estimate (confint(lm(...))[2, ])
    slope = table.set_index("quantity").loc["slope"]
    assert slope.ci_low < r.slope < slope.ci_high
    points = r.points_frame()
    assert list(points.columns) == ["mean", "difference"]
    assert points["difference"].iloc[0] == 494 - 512 and points["mean"].iloc[0] == (494 + 512) / 2
    assert "mean" not in r.summary_frame().columns  # per-pair arrays stay out of the one-row frame


def test_bland_altman_equal_means_warns():
    with pytest.warns(StatisticalWarning, match="all pair means are equal"):
        r = bland_altman([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])
    assert math.isnan(r.slope)
    assert r.bias == 0.0


def test_bland_altman_identical_methods():
    r = bland_altman([1.0, 2.0, 5.0, 7.0], [1.0, 2.0, 5.0, 7.0])
    assert (r.bias, r.sd, r.lower_loa, r.upper_loa) == (0.0, 0.0, 0.0, 0.0)
    assert math.isnan(r.bias_p_value)


# --------------------------------------------------------------- repeated pairs (clusters)


def _pefr_repeated() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Both readings as two pairs per subject, second pair dropped for subjects 1-5."""
    a = np.array(WRIGHT_1 + WRIGHT_2, dtype=float)
    b = np.array(MINI_1 + MINI_2, dtype=float)
    subject = np.array(list(range(1, 18)) * 2)
    keep = ~((subject <= 5) & (np.arange(34) >= 17))
    return a[keep], b[keep], subject[keep]


def test_repeated_pairs_point_estimates_against_r_aov():
    a, b, subject = _pefr_repeated()
    r = bland_altman(a, b, clusters=subject, seed=1, n_resamples=200)
    # dd <- c(W1 - M1, W2 - M2); subj <- factor(c(1:17, 1:17)); drop 2nd pair of 1..5
    # a <- anova(aov(dd ~ subj)); msb <- a[1, 3]; msw <- a[2, 3]
    # div <- (N^2 - sum(m^2)) / ((G - 1) * N); vb <- max(0, (msb - msw) / div)
    # mean(dd); sqrt(vb); sqrt(msw); sqrt(vb + msw); mean(dd) -/+ qnorm(0.975) * sqrt(vb + msw)
    assert r.bias == pytest.approx(-2.8620689655172415, rel=REL)
    assert r.sd_between == pytest.approx(28.031489122105299, rel=REL)
    assert r.sd_within == pytest.approx(27.560539423845338, rel=REL)
    assert r.sd == pytest.approx(39.310910899342446, rel=REL)
    assert (r.lower_loa, r.upper_loa) == pytest.approx(
        (-79.910038527691484, 74.185900596657007), rel=REL
    )
    assert (r.n, r.n_clusters, r.ci_method) == (29, 17, "bootstrap")
    assert r.method == "repeated pairs (Bland-Altman 2007)"


def test_repeated_pairs_weighted_statistic_equals_replicated_data():
    """Integer weights = patients repeated as new patients (what the bootstrap needs)."""
    a, b, subject = _pefr_repeated()
    d = a - b
    codes = subject - 1
    stat = _repeated_pairs_statistic(d, codes, 1.959963984540054)
    u = np.array([2, 0, 1, 3, 1, 0, 1, 1, 2, 1, 0, 1, 1, 1, 1, 1, 1], dtype=float)
    rows_a, rows_b, rows_s = [], [], []
    new_id = 0
    for patient in range(17):
        for _ in range(int(u[patient])):
            mask = codes == patient
            rows_a.append(a[mask])
            rows_b.append(b[mask])
            rows_s.append(np.full(mask.sum(), new_id))
            new_id += 1
    replicated = bland_altman(
        np.concatenate(rows_a),
        np.concatenate(rows_b),
        clusters=np.concatenate(rows_s),
        seed=0,
        n_resamples=20,
    )
    got = stat(u[codes][None, :])[0]
    assert got[:3] == pytest.approx(
        [replicated.bias, replicated.lower_loa, replicated.upper_loa], rel=1e-12
    )
    assert got[4:] == pytest.approx([replicated.sd_between, replicated.sd_within], rel=1e-12)


def test_repeated_pairs_reduce_to_paired_when_balanced_and_no_between_variance():
    # one pair per patient would be refused; with two identical-bias pairs per patient
    # sd_between is truncated at 0 and the limits use the within-patient SD only
    a = np.array([10.0, 11.0, 20.0, 21.5, 30.0, 29.0, 40.0, 41.0])
    b = np.array([10.5, 10.0, 20.5, 20.0, 29.5, 29.5, 40.5, 40.0])
    r = bland_altman(
        a,
        b,
        clusters=[1, 1, 2, 2, 3, 3, 4, 4],
        seed=3,
        n_resamples=200,
    )
    assert r.sd_between == 0.0
    assert r.sd == pytest.approx(r.sd_within)


def test_repeated_pairs_bootstrap_is_reproducible_and_sensible():
    a, b, subject = _pefr_repeated()
    r1 = bland_altman(a, b, clusters=subject, seed=42, n_resamples=500)
    r2 = bland_altman(a, b, clusters=subject.astype(str), seed=42, n_resamples=500)
    shuffled = np.random.default_rng(0).permutation(a.size)
    r3 = bland_altman(
        a[shuffled], b[shuffled], clusters=subject[shuffled], seed=42, n_resamples=500
    )
    assert r1.upper_loa_ci_high == r3.upper_loa_ci_high  # row order does not matter
    assert r1.bias == r2.bias  # id type does not change the estimate
    assert r1.lower_loa_ci_low < r1.lower_loa < r1.lower_loa_ci_high
    assert r1.upper_loa_ci_low < r1.upper_loa < r1.upper_loa_ci_high
    assert r1.bias_ci_low < r1.bias < r1.bias_ci_high
    assert (r1.n_resamples, r1.seed) == (500, 42)
    assert math.isnan(r1.bias_p_value)
    assert r1.to_frame().set_index("quantity").loc["lower_loa", "se"] == r1.lower_loa_se
    assert list(r1.points_frame().columns) == ["mean", "difference", "cluster"]


def test_repeated_pairs_slope_against_statsmodels_cluster_robust():
    sm = pytest.importorskip("statsmodels.api")
    a, b, subject = _pefr_repeated()
    r = bland_altman(a, b, clusters=subject, seed=1, n_resamples=100)
    d, m = a - b, (a + b) / 2
    fit = sm.OLS(d, sm.add_constant(m)).fit(
        cov_type="cluster", cov_kwds={"groups": subject}, use_t=True
    )
    assert (r.slope, r.intercept) == pytest.approx((fit.params[1], fit.params[0]), rel=1e-10)
    assert r.slope_se == pytest.approx(fit.bse[1], rel=1e-10)
    assert r.slope_p_value == pytest.approx(fit.pvalues[1], rel=1e-10)
    assert r.slope_se != pytest.approx(sm.OLS(d, sm.add_constant(m)).fit().bse[1], rel=1e-3)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        pytest.param(([1.0, 2.0], [1.0, 2.0, 3.0]), {}, StudyvalError, "method_a has 2 values but method_b has 3",
                     id="unequal-length"),
        pytest.param(([1.0, np.nan, 2.0], [1.0, 2.0, 3.0]), {}, StudyvalError, "method_a has 1 non-finite",
                     id="nan"),
        pytest.param(([1.0, 2.0], [1.0, 2.0]), {}, EstimationError, "at least 3 measurement pairs",
                     id="two-pairs"),
        pytest.param((WRIGHT_1, MINI_1), {"ci_method": "bootstrap"}, StudyvalError, "'bootstrap' is not one of",
                     id="bootstrap-without-clusters"),
        pytest.param((WRIGHT_1, MINI_1), {"ci_method": "exakt"}, StudyvalError, "did you mean 'exact'",
                     id="ci-method-typo"),
        pytest.param((WRIGHT_1, MINI_1), {"loa_coverage": 1.0}, StudyvalError, r"loa_coverage must be in \(0, 1\)",
                     id="bad-coverage"),
        pytest.param((WRIGHT_1, MINI_1), {"alpha": -0.1}, StudyvalError, r"alpha must be in \(0, 1\)",
                     id="bad-alpha"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 8 + [2] * 9}, StudyvalError, "seed= is required",
                     id="clusters-without-seed"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 8 + [2] * 9, "seed": 1, "ci_method": "exact"},
                     StudyvalError, "with clusters, ci_method must be 'bootstrap'", id="exact-with-clusters"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": list(range(17)), "seed": 1}, EstimationError,
                     "every patient contributes exactly one pair", id="one-pair-per-patient"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 17, "seed": 1}, EstimationError, "at least 2 patients",
                     id="one-patient"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 16, "seed": 1}, StudyvalError, "expected 17 ids",
                     id="clusters-length"),
        pytest.param((WRIGHT_1, MINI_1), {"clusters": [1] * 8 + [None] + [2] * 8, "seed": 1}, StudyvalError,
                     "missing patient id at position 8", id="clusters-missing"),
    ],
)  # fmt: skip
def test_bland_altman_errors(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        bland_altman(*args, **kwargs)
