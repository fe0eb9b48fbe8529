r"""Tests for studyval.analysis.resampling (patient-clustered bootstrap engine).

Oracles
-------
* ``scipy.stats.bootstrap`` (SciPy 1.17) with
  ``rng=numpy.random.Generator(numpy.random.PCG64(seed))``: for an unclustered
  one-sample statistic scipy draws ``rng.integers(0, n, (B, n))`` in one call,
  which are exactly our draws, so the replicates, percentile and BCa intervals
  agree to rounding (the weighted mean sums in a different order than scipy's
  mean of the resampled data: agreement ~1e-15, required 1e-12).
* The closed form of the jackknife acceleration for the mean (Efron &
  Tibshirani 1993, An Introduction to the Bootstrap, eq. 14.15 with
  :math:`\hat\theta_{(i)} - \bar\theta_{(\cdot)} = (\bar x - x_i)/(n - 1)`):
  :math:`a = \sum (x_i - \bar x)^3 / (6 [\sum (x_i - \bar x)^2]^{3/2})`.
* A naive loop written here: for each resample, the patients drawn
  (``rng.integers(0, G, (B, G))``, patients numbered in sorted id order), their rows
  concatenated, and the AUC computed by counting pairs; with the same draws the
  replicates are identical, so the percentile interval is identical.
* :func:`studyval.analysis.discrimination.auc` and explicit row replication for
  the weighted AUC and proportion (hypothesis property tests).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from studyval.analysis.discrimination import auc
from studyval.analysis.resampling import (
    FAILED_WARN_FRACTION,
    BootstrapManyResult,
    BootstrapResult,
    bootstrap,
    bootstrap_many,
    jackknife_weights,
    resampling_weights,
    weighted_auc,
    weighted_auc_statistic,
    weighted_proportion,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

# ---------------------------------------------------------------------- data


def _vertebrae(seed=0, n_patients=40, max_units=4):
    """Patients with 1..max_units vertebrae, labels, tied scores, string patient ids."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_units + 1, n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    u = rng.normal(size=n_patients)[patient]
    sick = (rng.random(n_patients) < 0.4)[patient]
    y = rng.random(patient.size) < np.where(sick, 0.7, 0.1)
    score = np.round(y + 0.7 * u + 0.7 * rng.normal(size=patient.size), 1)
    ids = np.array([f"P{p:03d}" for p in patient])
    return y, score, ids


def _naive_auc(y, s):
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    gt = np.sum(pos[:, None] > neg[None, :])
    eq = np.sum(pos[:, None] == neg[None, :])
    return (2.0 * gt + eq) / (2.0 * pos.size * neg.size)


def _all_weights(clusters, **kw):
    return np.concatenate(list(resampling_weights(clusters, **kw)))


# --------------------------------------------------------------- determinism


def test_same_seed_identical_results():
    y, s, pt = _vertebrae()
    f = weighted_auc_statistic(y, s)
    r1 = bootstrap(f, n_rows=y.size, clusters=pt, n_resamples=500, seed=3)
    r2 = bootstrap(f, n_rows=y.size, clusters=pt, n_resamples=500, seed=3)
    assert r1 == r2
    r3 = bootstrap(f, n_rows=y.size, clusters=pt, n_resamples=500, seed=4)
    assert not np.array_equal(r1.replicates, r3.replicates)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 500, 10_000])
def test_chunk_size_does_not_change_results(chunk_size):
    y, s, pt = _vertebrae()
    f = weighted_auc_statistic(y, s)
    ref = bootstrap(f, n_rows=y.size, clusters=pt, n_resamples=500, seed=3)
    r = bootstrap(f, n_rows=y.size, clusters=pt, n_resamples=500, seed=3, chunk_size=chunk_size)
    assert r == ref


def test_chunk_size_does_not_change_weights():
    _, _, pt = _vertebrae()
    ref = _all_weights(pt, n_resamples=101, seed=9)
    for chunk in (1, 3, 50, 101, 1000):
        assert np.array_equal(_all_weights(pt, n_resamples=101, seed=9, chunk_size=chunk), ref)
    # the documented draws: rng.integers(0, G, size=(B, G)), patients in sorted id order
    ids, codes = np.unique(pt, return_inverse=True)
    draws = np.random.Generator(np.random.PCG64(9)).integers(0, ids.size, size=(101, ids.size))
    counts = np.stack([np.bincount(d, minlength=ids.size) for d in draws])
    assert np.array_equal(ref, counts[:, codes])


def test_weights_are_read_only():
    w = next(resampling_weights(None, n_rows=5, n_resamples=2, seed=0))
    with pytest.raises(ValueError, match="read-only"):
        w[0, 0] = 3.0


# ----------------------------------------------------------- cluster integrity


def test_rows_of_a_patient_share_a_weight():
    _, _, pt = _vertebrae(n_patients=60)
    w = _all_weights(pt, n_resamples=300, seed=1, chunk_size=37)
    for p in np.unique(pt):
        rows = np.flatnonzero(pt == p)
        assert np.all(w[:, rows] == w[:, rows[:1]])
    # each resample draws exactly G patients
    first = np.unique(pt, return_index=True)[1]
    assert np.all(w[:, first].sum(axis=1) == 60)
    assert np.all(w == np.round(w)) and w.min() >= 0


def test_unclustered_is_ordinary_bootstrap():
    w = _all_weights(None, n_rows=30, n_resamples=50, seed=2)
    assert np.all(w.sum(axis=1) == 30)
    # each row its own cluster, ids sorted like the rows: the same resamples
    ids = [f"r{i:02d}" for i in range(30)]
    assert np.array_equal(_all_weights(ids, n_resamples=50, seed=2), w)
    assert np.array_equal(_all_weights(np.arange(30), n_resamples=50, seed=2), w)


def test_jackknife_weights_leave_one_patient_out():
    _, _, pt = _vertebrae(n_patients=12)
    w = np.concatenate(list(jackknife_weights(pt, chunk_size=5)))
    ids = np.unique(pt)
    assert w.shape == (12, pt.size)
    for g, p in enumerate(ids):
        assert np.array_equal(w[g], (pt != p).astype(float))


# ------------------------------------------------------- permutation invariance


def test_permuting_rows_keeps_estimate_and_interval():
    y, s, pt = _vertebrae(seed=5)
    kw = dict(n_resamples=400, seed=11, method="bca")
    r = bootstrap(weighted_auc_statistic(y, s), n_rows=y.size, clusters=pt, **kw)
    perm = np.random.default_rng(0).permutation(y.size)
    rp = bootstrap(weighted_auc_statistic(y[perm], s[perm]), n_rows=y.size, clusters=pt[perm], **kw)
    # same (row, patient) pairs -> same resamples of patients -> identical replicates
    assert rp == r


def test_relabelling_patients_same_estimate_same_distribution():
    # a relabelling that changes the sorted order maps resample r to a different
    # set of patients: same estimate, same bootstrap distribution (up to Monte Carlo)
    y, s, pt = _vertebrae(seed=6, n_patients=150)
    ids = np.unique(pt)
    new = dict(zip(ids, np.random.default_rng(2).permutation(ids.size), strict=True))
    pt2 = np.array([new[p] for p in pt])
    perm = np.random.default_rng(3).permutation(y.size)
    kw = dict(n_resamples=2000, seed=12, method="percentile")
    r = bootstrap(weighted_auc_statistic(y, s), n_rows=y.size, clusters=pt, **kw)
    r2 = bootstrap(
        weighted_auc_statistic(y[perm], s[perm]), n_rows=y.size, clusters=pt2[perm], **kw
    )
    assert r2.estimate == r.estimate
    assert not np.array_equal(np.sort(r2.replicates), np.sort(r.replicates))
    # Monte-Carlo SD of a bootstrap SE with B = 2000 is ~1.6 %; of a 2.5 % quantile ~0.5 se
    assert r2.se == pytest.approx(r.se, rel=0.08)
    assert r2.ci_low == pytest.approx(r.ci_low, abs=0.6 * r.se)
    assert r2.ci_high == pytest.approx(r.ci_high, abs=0.6 * r.se)


# ------------------------------------------------------ oracle: naive loop


def test_percentile_ci_against_naive_loop_with_same_draws():
    y, s, pt = _vertebrae(seed=7, n_patients=30)
    n_res, seed = 300, 21
    r = bootstrap(
        lambda w: weighted_auc(y, s, w),
        n_rows=y.size,
        clusters=pt,
        n_resamples=n_res,
        seed=seed,
        method="percentile",
        alpha=0.1,
    )
    ids = np.unique(pt)  # patients numbered in sorted id order
    rows_of = [np.flatnonzero(pt == p) for p in ids]
    rng = np.random.Generator(np.random.PCG64(seed))
    draws = rng.integers(0, ids.size, size=(n_res, ids.size))
    naive = np.empty(n_res)
    for b in range(n_res):
        rows = np.concatenate([rows_of[g] for g in draws[b]])
        naive[b] = _naive_auc(y[rows], s[rows])
    np.testing.assert_array_equal(r.replicates, naive)
    ok = naive[np.isfinite(naive)]
    assert r.n_failed == n_res - ok.size
    lo, hi = np.quantile(ok, [0.05, 0.95])
    assert (r.ci_low, r.ci_high) == (lo, hi)
    assert r.se == np.std(ok, ddof=1)
    assert r.bias == np.mean(ok) - _naive_auc(y, s)
    assert r.estimate == _naive_auc(y, s)
    assert (r.n_clusters, r.n_rows, r.ci_level) == (30, y.size, pytest.approx(0.9))


# ------------------------------------------------------------ oracle: scipy


@pytest.mark.parametrize(
    "method, scipy_method",
    [pytest.param("bca", "BCa", id="bca"), pytest.param("percentile", "percentile", id="pct")],
)
def test_unclustered_ci_against_scipy_bootstrap(method, scipy_method):
    x = np.random.default_rng(0).exponential(size=40)  # skewed: BCa differs from percentile
    r = bootstrap(
        lambda w: w @ x / w.sum(axis=1), n_rows=x.size, n_resamples=999, seed=7, method=method
    )
    ref = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=999,
        method=scipy_method,
        rng=np.random.Generator(np.random.PCG64(7)),
    )
    np.testing.assert_allclose(r.replicates, ref.bootstrap_distribution, rtol=1e-12)
    assert r.ci_low == pytest.approx(ref.confidence_interval.low, rel=1e-12)
    assert r.ci_high == pytest.approx(ref.confidence_interval.high, rel=1e-12)
    assert r.se == pytest.approx(ref.standard_error, rel=1e-12)


def test_bca_acceleration_of_mean_closed_form():
    x = np.random.default_rng(1).lognormal(size=25)
    r = bootstrap(lambda w: w @ x / w.sum(axis=1), n_rows=x.size, n_resamples=200, seed=1)
    d = x - x.mean()
    assert r.acceleration == pytest.approx(np.sum(d**3) / (6 * np.sum(d**2) ** 1.5), rel=1e-10)
    p = (np.sum(r.replicates < r.estimate) + np.sum(r.replicates <= r.estimate)) / 400
    assert r.z0 == pytest.approx(stats.norm.ppf(p), rel=1e-12)


def test_clustered_acceleration_against_explicit_cluster_jackknife():
    y, s, pt = _vertebrae(seed=8, n_patients=25)
    r = bootstrap(weighted_auc_statistic(y, s), n_rows=y.size, clusters=pt, n_resamples=300, seed=2)
    jack = np.array([_naive_auc(y[pt != p], s[pt != p]) for p in np.unique(pt)])
    d = jack.mean() - jack
    assert r.acceleration == pytest.approx(np.sum(d**3) / (6 * np.sum(d**2) ** 1.5), rel=1e-10)


# ---------------------------------------------------------- failed replicates


def _few_positive_patients():
    # 2 of 12 patients carry all positives: P(resample has none) = (10/12)^12 = 11.2 %
    pt = np.repeat([f"p{i:02d}" for i in range(12)], 2)
    y = np.zeros(pt.size, dtype=bool)
    y[[0, 1, 2]] = True
    s = np.linspace(0.0, 1.0, pt.size)[::-1].copy()
    return y, s, pt


def test_failed_replicates_counted_and_warned():
    y, s, pt = _few_positive_patients()
    with pytest.warns(StatisticalWarning, match=r"undefined in \d+ of 1000 resamples"):
        r = bootstrap(
            weighted_auc_statistic(y, s),
            n_rows=y.size,
            clusters=pt,
            n_resamples=1000,
            seed=4,
            method="percentile",
        )
    w = _all_weights(pt, n_resamples=1000, seed=4)
    expected = int(np.sum(w[:, y].sum(axis=1) == 0))
    assert r.n_failed == expected == int(np.isnan(r.replicates).sum())
    assert 0.05 < r.n_failed / 1000 < 0.2
    assert np.isfinite(r.ci_low) and np.isfinite(r.se)
    assert r.to_frame().loc[0, "n_failed"] == expected


def test_few_failures_reported_without_warning():
    x = np.arange(10.0)

    def stat(w):  # fails in exactly the resamples where row 0 is drawn 5 times or more
        out = w @ x / w.sum(axis=1)
        out[w[:, 0] >= 5] = np.nan
        return out

    w = _all_weights(None, n_rows=10, n_resamples=2000, seed=5)
    expected = int(np.sum(w[:, 0] >= 5))
    assert 0 < expected <= FAILED_WARN_FRACTION * 2000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = bootstrap(stat, n_rows=10, n_resamples=2000, seed=5, method="percentile")
    assert r.n_failed == expected


def test_all_failed_raises():
    def stat(w):  # defined on the data (one row of unit weights), never on a resample
        return np.zeros(1) if w.shape[0] == 1 else np.full(w.shape[0], np.nan)

    with pytest.raises(EstimationError, match="undefined \\(NaN\\) in 100 of 100 resamples"):
        bootstrap(stat, n_rows=5, n_resamples=100, seed=0, chunk_size=100)


def test_bca_with_undefined_jackknife_raises():
    # all positives in patient p00: leaving p00 out leaves no positive, so the
    # jackknife AUC (and the BCa acceleration) is undefined
    pt = np.repeat([f"p{i:02d}" for i in range(12)], 2)
    y = np.zeros(pt.size, dtype=bool)
    y[[0, 1]] = True
    s = np.linspace(0.0, 1.0, pt.size)
    f = weighted_auc_statistic(y, s)
    with (
        pytest.warns(StatisticalWarning, match="undefined in"),
        pytest.raises(EstimationError, match="leaving out cluster number 0"),
    ):
        bootstrap(f, n_rows=y.size, clusters=pt, seed=1, n_resamples=200)
    with pytest.warns(StatisticalWarning, match="undefined in"):
        r = bootstrap(f, n_rows=y.size, clusters=pt, seed=1, n_resamples=200, method="percentile")
    assert r.n_failed > 0


def test_bca_degenerate_z0_raises_and_percentile_works():
    # the number of distinct rows drawn is below n in every resample here (all 10
    # rows are drawn with probability 10!/10**10 = 3.6e-4): z0 = -inf
    def distinct(w):
        return (w > 0).sum(axis=1).astype(float)

    with pytest.raises(EstimationError, match="every bootstrap replicate lies below"):
        bootstrap(distinct, n_rows=10, n_resamples=100, seed=0)
    r = bootstrap(distinct, n_rows=10, n_resamples=100, seed=0, method="percentile")
    assert r.ci_high < r.estimate == 10.0
    # perfect separation: every replicate AUC equals the estimate, 1; BCa is fine (z0 = 0)
    y = np.array([False] * 10 + [True] * 10)
    f = weighted_auc_statistic(y, np.arange(20.0))
    for method in ("percentile", "bca"):
        r = bootstrap(f, n_rows=20, n_resamples=200, seed=0, method=method)
        assert (r.ci_low, r.ci_high, r.estimate, r.se) == (1.0, 1.0, 1.0, 0.0)


# ------------------------------------------------------------------ bootstrap_many


def test_bootstrap_many_matches_separate_runs_on_shared_resamples():
    y, s, pt = _vertebrae(seed=9)
    s2 = np.round(s + np.random.default_rng(0).normal(size=s.size), 1)
    fa, fb = weighted_auc_statistic(y, s), weighted_auc_statistic(y, s2)

    def both(w):
        a, b = fa(w), fb(w)
        return np.column_stack([a, b, a - b])

    kw = dict(n_rows=y.size, clusters=pt, n_resamples=300, seed=8)
    many = bootstrap_many(both, names=["a", "b", "a - b"], **kw)
    assert isinstance(many, BootstrapManyResult)
    assert many["a"] == bootstrap(fa, **kw)
    assert many[1] == bootstrap(fb, **kw)
    np.testing.assert_array_equal(
        many["a - b"].replicates, many.replicates[:, 0] - many.replicates[:, 1]
    )
    frame = many.to_frame()
    assert list(frame["statistic"]) == ["a", "b", "a - b"]
    assert list(frame.columns[:5]) == ["statistic", "estimate", "se", "ci_low", "ci_high"]
    assert "replicates" not in frame.columns
    assert len(many) == 3 and many.n_clusters == 40 and many.method == "bca"
    with pytest.raises(KeyError, match="no statistic named 'c'"):
        many["c"]


def test_bootstrap_many_several_thresholds_with_weighted_proportion():
    y, s, pt = _vertebrae(seed=10)
    thresholds = np.array([-0.5, 0.0, 0.5, 1.0])
    called = s[:, None] >= thresholds[None, :]  # (n, 4)

    def sens(w):
        return weighted_proportion(called, y, w)

    r = bootstrap_many(
        sens,
        names=[f"sens@{t}" for t in thresholds],
        n_rows=y.size,
        clusters=pt,
        n_resamples=300,
        seed=3,
        method="percentile",
    )
    est = r.to_frame()["estimate"].to_numpy()
    np.testing.assert_array_equal(est, [np.mean(s[y] >= t) for t in thresholds])
    assert np.all(np.diff(est) <= 0)  # sensitivity falls as the threshold rises


# ------------------------------------------------------------- weighted stats


_scores = st.lists(st.integers(0, 6), min_size=2, max_size=30)  # small range: many ties


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_weighted_auc_unit_weights_equals_discrimination_auc(data):
    s = np.array(data.draw(_scores), dtype=float)
    y = np.array(data.draw(st.lists(st.booleans(), min_size=s.size, max_size=s.size)))
    if y.sum() < 2 or (~y).sum() < 2:
        return
    got = weighted_auc(y, s, np.ones((1, s.size)))[0]
    with warnings.catch_warnings():  # a zero DeLong SE (separated classes) is beside the point
        warnings.simplefilter("ignore", StatisticalWarning)
        want = auc(y, s, positive=True).estimate
    assert got == want  # exact


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_weighted_auc_integer_weights_equals_replicated_rows(data):
    s = np.array(data.draw(_scores), dtype=float)
    n = s.size
    y = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    w = np.array(
        data.draw(
            st.lists(st.lists(st.integers(0, 4), min_size=n, max_size=n), min_size=1, max_size=4)
        ),
        dtype=float,
    )
    got = weighted_auc(y, s, w)
    for r in range(w.shape[0]):
        rows = np.repeat(np.arange(n), w[r].astype(int))
        want = _naive_auc(y[rows], s[rows])
        if math.isnan(want):
            assert math.isnan(got[r])
        else:
            assert got[r] == want  # exact: integer counts in float64
    np.testing.assert_array_equal(weighted_auc_statistic(y, s)(w), got)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_weighted_proportion_integer_weights_equals_replicated_rows(data):
    n = data.draw(st.integers(1, 25))
    hit = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    den = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    w = np.array(data.draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), dtype=float)
    got = weighted_proportion(hit, den, w[None, :])[0]
    rows = np.repeat(np.arange(n), w.astype(int))
    d = den[rows]
    if d.sum() == 0:
        assert math.isnan(got)
    else:
        assert got == np.sum(hit[rows] & d) / np.sum(d)


def test_weighted_auc_undefined_rows_are_nan():
    y = np.array([True, True, False, False])
    w = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0]], dtype=float)
    got = weighted_auc(y, [0.9, 0.3, 0.5, 0.1], w)
    assert got[0] == 0.75 and math.isnan(got[1]) and math.isnan(got[2])


def test_weighted_proportion_shapes():
    y = np.array([True, True, False, True])
    called = np.array([[True, False], [True, True], [False, False], [False, False]])
    w = np.ones((3, 4))
    assert weighted_proportion(called, y, w).shape == (3, 2)
    assert weighted_proportion(called[:, 0], y, w).shape == (3,)
    np.testing.assert_array_equal(weighted_proportion(called, y, w)[0], [2 / 3, 1 / 3])
    with pytest.raises(StudyvalError, match="do not broadcast"):
        weighted_proportion(np.ones((4, 2), bool), np.ones((4, 3), bool), w)


@pytest.mark.parametrize(
    "call, match",
    [
        pytest.param(
            lambda: weighted_auc([1, 0, 1], [0.1, 0.2, 0.3], np.ones((1, 3))),
            "is_pos must be a boolean array",
            id="auc-int-labels",
        ),
        pytest.param(
            lambda: weighted_auc(np.array([True, False]), [0.1, 0.2], np.ones(2)),
            r"weights must have shape \(n_resamples, 2\)",
            id="auc-1d-weights",
        ),
        pytest.param(
            lambda: weighted_auc(np.array([True, False]), [0.1, 0.2], -np.ones((1, 2))),
            "non-negative",
            id="auc-negative-weights",
        ),
        pytest.param(
            lambda: weighted_auc(np.array([True, False]), [0.1, np.nan], np.ones((1, 2))),
            "non-finite",
            id="auc-nan-score",
        ),
        pytest.param(
            lambda: weighted_proportion([1, 0], np.array([True, True]), np.ones((1, 2))),
            "success_mask must be a boolean array",
            id="prop-int-mask",
        ),
    ],
)
def test_weighted_statistic_errors(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()


# --------------------------------------------------------------------- results


def test_result_fields_and_frame():
    y, s, pt = _vertebrae()
    r = bootstrap(weighted_auc_statistic(y, s), n_rows=y.size, clusters=pt, n_resamples=200, seed=1)
    assert isinstance(r, BootstrapResult)
    est, lo, hi = r
    assert lo <= est <= hi
    frame = r.to_frame()
    assert list(frame.columns) == [
        "estimate", "se", "ci_low", "ci_high", "ci_level", "method", "n_resamples",
        "n_failed", "n_clusters", "n_rows", "seed", "bias", "z0", "acceleration",
    ]  # fmt: skip
    assert r.replicates.shape == (200,) and not r.replicates.flags.writeable
    assert (r.seed, r.n_resamples, r.method, r.n_clusters) == (1, 200, "bca", 40)
    p = bootstrap(
        weighted_auc_statistic(y, s),
        n_rows=y.size,
        clusters=pd.Series(pt),
        n_resamples=200,
        seed=1,
        method="BCa",  # the spelling of the literature is accepted
    )
    assert p == r


# ---------------------------------------------------------------------- errors


def _stat(w):
    return w.sum(axis=1)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        pytest.param(
            dict(clusters=["a", "a", "b"]),
            "clusters has 3 values but the data have 4 rows",
            id="clusters-wrong-length",
        ),
        pytest.param(dict(clusters=["a", None, "b", "b"]), "missing id.*position 1", id="none-id"),
        pytest.param(dict(clusters=[1.0, 2.0, np.nan, 2.0]), "missing id.*position 2", id="nan-id"),
        pytest.param(dict(clusters=["a", 1, "b", 2]), "one sortable type", id="mixed-id-types"),
        pytest.param(
            dict(n_resamples=0), "n_resamples must be an integer >= 2", id="zero-resamples"
        ),
        pytest.param(dict(n_resamples=2.5), "n_resamples must be an integer", id="float-resamples"),
        pytest.param(dict(method="percentil"), "did you mean 'percentile'", id="method-typo"),
        pytest.param(dict(method="bcaa"), "did you mean 'bca'", id="method-typo-bca"),
        pytest.param(dict(seed=None), "seed must be a non-negative integer", id="no-seed"),
        pytest.param(dict(seed=-1), "seed must be a non-negative integer", id="negative-seed"),
        pytest.param(dict(alpha=0.0), "alpha must be in", id="alpha"),
        pytest.param(dict(chunk_size=0), "chunk_size must be an integer >= 1", id="chunk-size"),
    ],
)
def test_bootstrap_errors(kwargs, match):
    args = dict(n_rows=4, n_resamples=10, seed=0)
    args.update(kwargs)
    with pytest.raises(StudyvalError, match=match):
        bootstrap(_stat, **args)


def test_resampling_weights_errors():
    with pytest.raises(StudyvalError, match="n_resamples must be an integer >= 1"):
        resampling_weights(["a", "b"], n_resamples=0, seed=0)
    with pytest.raises(StudyvalError, match="n_rows is required"):
        resampling_weights(None, n_resamples=5, seed=0)
    with pytest.raises(StudyvalError, match="missing id"):
        resampling_weights(["a", pd.NA], n_resamples=5, seed=0)
    with pytest.raises(StudyvalError, match="seed"):
        resampling_weights(["a", "b"], n_resamples=5, seed=1.5)


def test_statistic_shape_and_names_errors():
    with pytest.raises(StudyvalError, match=r"shape \(1,\) \(one value per resample\)"):
        bootstrap(lambda w: w, n_rows=3, seed=0, n_resamples=10)
    with pytest.raises(StudyvalError, match="names has 1"):
        bootstrap_many(
            lambda w: np.column_stack([w.sum(1), w.sum(1)]), names=["x"], n_rows=3, seed=0
        )
    with pytest.raises(StudyvalError, match="distinct"):
        bootstrap_many(
            lambda w: np.column_stack([w.sum(1), w.sum(1)]), names=["x", "x"], n_rows=3, seed=0
        )
    with pytest.raises(StudyvalError, match="must be callable"):
        bootstrap(3.0, n_rows=3, seed=0)


def test_estimation_errors():
    with pytest.raises(EstimationError, match="at least 2 clusters"):
        bootstrap(_stat, n_rows=3, clusters=["a", "a", "a"], seed=0)
    with pytest.raises(EstimationError, match="not finite on the data"):
        bootstrap(lambda w: np.full(w.shape[0], np.nan), n_rows=3, seed=0)
