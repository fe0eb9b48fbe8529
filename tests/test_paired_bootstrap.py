"""Tests for studyval.analysis.paired_bootstrap (difference in a measure between two models).

Oracles
-------
R 4.2.2 (survival 3.5-3, boot 1.3-28.1), script ``tests/data/r/paired_c_difference_lung.R``:

* **Same resamples, exact.** For the 50 resamples of
  ``tests/data/internal_validation_lung_indices.csv`` (numpy PCG64, seed 20240917; the first
  50 resamples of the engine with that seed), R computes ``survival::concordance`` of each
  model on ``d[idx, ]``; the replicates are in ``tests/data/paired_c_difference_lung_R.csv``.
* **BCa on the same replicates.** ``boot::boot.ci(type = c("bca", "perc"), L = L)`` with
  ``t`` = studyval's 2000 replicates (``tests/data/paired_c_difference_lung_replicates.csv``,
  written by the call in :data:`CALL`), ``t0`` = the difference on the data and ``L`` = the
  leave-one-out jackknife influence values (computed in R with ``concordance``).
  boot and studyval share the BCa formulas (z0, acceleration, adjusted levels) but not the
  final quantile rule: boot interpolates between order statistics on the normal-quantile
  scale (``norm.inter``), studyval (numpy) linearly. The test therefore checks (a) the
  acceleration and z0 exactly, (b) that boot's ``norm.inter`` applied to studyval's adjusted
  levels reproduces boot's limits exactly, and (c) that studyval's limits lie within the
  spacing of the neighbouring order statistics of boot's.

Data: ``tests/data/lung.csv`` (R's ``survival::lung``, public domain), the 227 complete cases
of age, sex, ph.ecog; model a = Cox(age + sex + ph.ecog), model b = Cox(age + sex), risk = the
linear predictor.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from studyval.analysis.internal_validation import resample_indices
from studyval.analysis.paired_bootstrap import (
    PerformanceDifferenceResult,
    harrell_c_difference,
    paired_bootstrap_difference,
)
from studyval.analysis.survival import cox, harrell_c
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
SEED = 20240917
B = 2000
CALL = (
    "harrell_c_difference(d.time, d.status, lp_a, lp_b, n_resamples=2000, seed=20240917, "
    "labels=('full', 'reduced'))  # method='bca', alpha=0.05"
)


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    d = d.dropna(subset=["age", "sex", "ph.ecog"]).reset_index(drop=True)
    d["lp_a"] = cox(
        d, duration="time", event="status", covariates=["age", "sex", "ph.ecog"]
    ).predict_risk(d)
    d["lp_b"] = cox(d, duration="time", event="status", covariates=["age", "sex"]).predict_risk(d)
    return d


@pytest.fixture(scope="module")
def lung_diff(lung) -> PerformanceDifferenceResult:
    return harrell_c_difference(
        lung["time"],
        lung["status"],
        lung["lp_a"],
        lung["lp_b"],
        n_resamples=B,
        seed=SEED,
        labels=("full", "reduced"),
    )


# --------------------------------------------------------------------------- exact: same resamples


def test_estimates_on_the_data_equal_r(lung_diff):
    # Rscript tests/data/r/paired_c_difference_lung.R -> "data: (c_a, c_b, difference)"
    expected = (0.63713549300045491, 0.60201142164047106, 0.035124071359983855)
    got = (lung_diff.estimate_a, lung_diff.estimate_b, lung_diff.difference)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_replicates_equal_r_concordance_on_the_same_resamples(lung, lung_diff):
    r = pd.read_csv(DATA / "paired_c_difference_lung_R.csv", skipinitialspace=True)
    assert len(r) == 50
    ours = lung_diff.bootstrap.replicates[:50]
    np.testing.assert_allclose(ours, r[["c_a", "c_b", "difference"]].to_numpy(), rtol=1e-12)
    # those 50 resamples are the ones in the index file R read
    idx = np.loadtxt(DATA / "internal_validation_lung_indices.csv", delimiter=",", dtype=int)
    for b, rows in enumerate(resample_indices(n_rows=len(lung), n_resamples=50, seed=SEED)):
        np.testing.assert_array_equal(rows, idx[b] - 1)


def test_stored_replicates_are_what_the_call_computes(lung_diff):
    # the 2000 replicates boot.ci read (tests/data/paired_c_difference_lung_replicates.csv)
    stored = np.loadtxt(DATA / "paired_c_difference_lung_replicates.csv")
    np.testing.assert_allclose(lung_diff.bootstrap.replicates[:, 2], stored, rtol=0, atol=1e-15)


# --------------------------------------------------------------------------- BCa against boot.ci

# Rscript tests/data/r/paired_c_difference_lung.R:
#   boot.ci(b, conf = 0.95, type = c("bca", "perc"), L = L)  with b$t = the stored replicates,
#   b$t0 = the difference on the data, L = (n - 1) * (mean(jack) - jack)
BOOT_BCA = (-0.0074010459186902603, 0.071752128815979047)
BOOT_PERC = (-0.0037058110119700242, 0.074231011195380725)
#   sum(L^3) / (6 * sum(L^2)^1.5) and qnorm(sum(t < t0) / length(t))
BOOT_A = -0.010429009577313068
BOOT_W = -0.042625585176944369


def _norm_inter(t: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """boot:::norm.inter (boot 1.3-28.1), transcribed: interpolation on the normal scale."""
    t = np.sort(t[np.isfinite(t)])
    r = t.size
    rk = (r + 1) * alpha
    k = np.trunc(rk).astype(int)
    out = np.empty(alpha.size)
    for i in range(alpha.size):
        if k[i] == rk[i]:
            out[i] = t[k[i] - 1]
        elif k[i] == 0:
            out[i] = t[0]
        elif k[i] == r:
            out[i] = t[-1]
        else:
            z1 = norm.ppf(alpha[i])
            z2, z3 = norm.ppf(k[i] / (r + 1)), norm.ppf((k[i] + 1) / (r + 1))
            tk, tk1 = t[k[i] - 1], t[k[i]]
            out[i] = tk + (z1 - z2) / (z3 - z2) * (tk1 - tk)
    return out


def test_bca_acceleration_and_bias_correction_equal_boot(lung_diff):
    assert lung_diff.method == "bca"
    assert lung_diff.acceleration == pytest.approx(BOOT_A, rel=1e-9)
    reps = lung_diff.bootstrap.replicates[:, 2]
    assert not np.any(reps == lung_diff.difference)  # no tie: half-tie rule = boot's rule
    assert lung_diff.z0 == pytest.approx(BOOT_W, rel=1e-12)


def test_bca_levels_give_boots_limits_with_boots_quantile_rule(lung_diff):
    z0, a = lung_diff.z0, lung_diff.acceleration
    z = norm.ppf([0.025, 0.975])
    levels = norm.cdf(z0 + (z0 + z) / (1.0 - a * (z0 + z)))
    reps = lung_diff.bootstrap.replicates[:, 2]
    np.testing.assert_allclose(_norm_inter(reps, levels), BOOT_BCA, rtol=1e-12)
    np.testing.assert_allclose(_norm_inter(reps, np.array([0.025, 0.975])), BOOT_PERC, rtol=1e-12)


def test_bca_limits_within_one_order_statistic_of_boot(lung_diff):
    reps = np.sort(lung_diff.bootstrap.replicates[:, 2])
    for ours, theirs in zip((lung_diff.ci_low, lung_diff.ci_high), BOOT_BCA, strict=True):
        k = int(np.searchsorted(reps, theirs))
        spacing = reps[min(k + 1, B - 1)] - reps[max(k - 2, 0)]
        assert abs(ours - theirs) <= spacing
    assert lung_diff.ci_low < lung_diff.difference < lung_diff.ci_high


# --------------------------------------------------------------------------- result


def test_result_fields_and_frame(lung_diff):
    r = lung_diff
    assert (r.measure, r.model_a, r.model_b) == ("harrell_c", "full", "reduced")
    assert (r.n_resamples, r.n_failed, r.failures, r.n_rows, r.n_clusters, r.seed) == (
        B,
        0,
        (),
        227,
        227,
        SEED,
    )
    reps = r.bootstrap.replicates
    np.testing.assert_array_equal(reps[:, 2], reps[:, 0] - reps[:, 1])
    assert r.se == pytest.approx(np.std(reps[:, 2], ddof=1), rel=1e-12)
    assert r.bootstrap["full"].estimate == r.estimate_a
    diff, lo, hi = r
    assert (diff, lo, hi) == (r.difference, r.ci_low, r.ci_high)
    frame = r.to_frame()
    assert len(frame) == 1
    assert {"difference", "ci_low", "ci_high", "n_failed", "failures", "z0"} <= set(frame.columns)
    assert frame["failures"].iloc[0] == ""


def test_percentile_interval_is_the_quantiles_of_the_replicates(lung):
    r = harrell_c_difference(
        lung["time"],
        lung["status"],
        lung["lp_a"],
        lung["lp_b"],
        n_resamples=300,
        seed=1,
        method="percentile",
        alpha=0.1,
    )
    reps = r.bootstrap.replicates[:, 2]
    assert (r.ci_low, r.ci_high) == tuple(np.quantile(reps, [0.05, 0.95]))
    assert r.ci_level == pytest.approx(0.9) and math.isnan(r.z0)


# --------------------------------------------------------------------------- clusters


def test_singleton_clusters_give_the_ordinary_bootstrap(lung):
    args = (lung["time"], lung["status"], lung["lp_a"], lung["lp_b"])
    plain = harrell_c_difference(*args, n_resamples=50, seed=4, method="percentile")
    clustered = harrell_c_difference(
        *args, n_resamples=50, seed=4, method="percentile", clusters=np.arange(len(lung))
    )
    np.testing.assert_array_equal(plain.bootstrap.replicates, clustered.bootstrap.replicates)


def test_cluster_bootstrap_resamples_whole_patients(lung):
    d = lung.iloc[:100]
    patients = np.repeat(np.arange(50), 2)
    seen = []

    def measure(rows, risk):
        seen.append(rows)
        return harrell_c(
            d["time"].to_numpy()[rows], d["status"].to_numpy()[rows], risk[rows]
        ).estimate

    r = paired_bootstrap_difference(
        measure,
        d["lp_a"].to_numpy(),
        d["lp_b"].to_numpy(),
        n_resamples=20,
        seed=9,
        clusters=patients,
        method="percentile",
    )
    assert r.n_clusters == 50 and r.n_rows == 100
    expected = resample_indices(clusters=patients, n_resamples=20, seed=9)
    # calls: the data (a, b) to check it, the engine's estimate on the data (a, b), then
    # per resample (a, b)
    np.testing.assert_array_equal(seen[2], np.arange(100))
    for b, rows in enumerate(expected):
        np.testing.assert_array_equal(seen[4 + 2 * b], rows)
        np.testing.assert_array_equal(seen[5 + 2 * b], rows)
        counts = np.bincount(rows, minlength=100)
        np.testing.assert_array_equal(counts[0::2], counts[1::2])


# --------------------------------------------------------------------------- failures


@pytest.fixture(scope="module")
def sparse() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(12)
    n = 25
    event = np.zeros(n, dtype=int)
    event[[2, 11]] = 1  # two events: a resample has none with probability (23/25)^25 = 12 %
    return {
        "time": rng.uniform(1, 10, n),
        "event": event,
        "a": rng.normal(size=n),
        "b": rng.normal(size=n),
    }


def test_resamples_without_events_are_counted_reported_and_warned(sparse):
    with pytest.warns(StatisticalWarning, match=r"resamples have no replicate .*no events \("):
        r = harrell_c_difference(
            sparse["time"],
            sparse["event"],
            sparse["a"],
            sparse["b"],
            n_resamples=200,
            seed=3,
            method="percentile",
        )
    no_events = sum(
        1
        for rows in resample_indices(n_rows=25, n_resamples=200, seed=3)
        if sparse["event"][rows].sum() == 0
    )
    assert no_events > 0
    reasons = dict(r.failures)
    assert reasons["no events"] == no_events
    assert r.n_failed == sum(reasons.values())
    reps = r.bootstrap.replicates[:, 2]
    assert int(np.isnan(reps).sum()) == r.n_failed
    finite = reps[np.isfinite(reps)]
    assert (r.ci_low, r.ci_high) == tuple(np.quantile(finite, [0.025, 0.975]))
    assert r.se == pytest.approx(np.std(finite, ddof=1), rel=1e-12)
    assert "no events: " in r.to_frame()["failures"].iloc[0]


def test_a_failure_of_one_model_names_that_model():
    y = np.arange(12.0)

    def measure(rows, pred):
        if pred[0] == 1.0 and rows.size and np.unique(rows).size < 8:
            raise EstimationError("too few distinct cases: need 8")
        if pred[0] == 2.0 and np.unique(rows).size < 7:
            return math.nan
        return float(np.mean(y[rows]) * pred[0])

    a = np.ones(12)
    b = np.full(12, 2.0)
    with pytest.warns(StatisticalWarning, match="resamples have no replicate"):
        r = paired_bootstrap_difference(
            measure, a, b, n_resamples=100, seed=2, method="percentile", labels=("m1", "m2")
        )
    reasons = dict(r.failures)
    assert set(reasons) <= {"m1: too few distinct cases", "m2: measure not finite (nan)"}
    assert reasons["m1: too few distinct cases"] > 0
    assert r.n_failed == sum(reasons.values())


def test_no_failure_means_no_warning_of_ours(lung):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = harrell_c_difference(
            lung["time"],
            lung["status"],
            lung["lp_a"],
            lung["lp_b"],
            n_resamples=20,
            seed=1,
            method="percentile",
        )
    assert r.n_failed == 0


# --------------------------------------------------------------------------- bad inputs


def test_no_events_in_the_data_is_an_estimation_error(sparse):
    with pytest.raises(EstimationError, match="no events"):
        harrell_c_difference(
            sparse["time"], np.zeros(25, int), sparse["a"], sparse["b"], n_resamples=10, seed=1
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"labels": ("a", "a")}, "two distinct strings", id="same-labels"),
        pytest.param({"n_resamples": 1}, "n_resamples must be", id="one-resample"),
        pytest.param({"method": "bac"}, "did you mean 'bca'", id="bad-method"),
        pytest.param({"seed": 1.5}, "seed must be", id="float-seed"),
        pytest.param({"clusters": [1, 2]}, "clusters has 2 values", id="cluster-length"),
    ],
)
def test_bad_arguments_are_errors(sparse, kwargs, message):
    args = {"n_resamples": 10, "seed": 1, "method": "percentile", **kwargs}
    with pytest.raises(StudyvalError, match=message):
        harrell_c_difference(sparse["time"], sparse["event"], sparse["a"], sparse["b"], **args)


def test_predictions_for_different_cases_are_an_error():
    with pytest.raises(StudyvalError, match="same cases"):
        paired_bootstrap_difference(
            lambda rows, p: 0.0, np.zeros(5), np.zeros(6), n_resamples=10, seed=1
        )
    with pytest.raises(StudyvalError, match="callable"):
        paired_bootstrap_difference(None, np.zeros(5), np.zeros(5), n_resamples=10, seed=1)  # type: ignore[arg-type]
