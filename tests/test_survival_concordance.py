"""Tests for studyval.analysis.concordance: Harrell's and Uno's C.

Oracles
-------
* R 4.2.2 with survival 3.5-3: ``concordance(..., reverse = TRUE)`` (estimate,
  ``sqrt(var)`` and ``count``), with ``timewt = "n/G2", ymax = tau`` for Uno's C.
  Scalars are pasted beside the R call that produced them, printed with
  ``sprintf("%.17g", ...)``. R is a development oracle only; nothing here runs R.
* Brute-force O(n^2) pair loops (written here) for the concordance counts and
  the infinitesimal-jackknife variance, on random data with ties.
* A second, independent oracle (lifelines ``concordance_index``) is in
  ``tests/test_second_oracles.py``.

Data
----
* ``tests/data/lung.csv``: R's ``survival::lung`` (public domain), exported with
  ``write.csv(survival::lung, "lung.csv", row.names = FALSE)``; ``status`` is
  1 = censored, 2 = dead, so the tests use ``status - 1``.
* ``tests/data/survival_ties.csv``: 400 synthetic subjects (numpy seed
  20261123) with integer times (36 distinct; heavy ties), two zero follow-up
  times, three strata, three groups and a rounded risk score. Columns: time,
  status (0/1), x1, x2, group, stratum, score.

Deliberate deviations from R (documented in the module): R merges
floating-point near-tied times (``aeqSurv``), we compare exactly (integer times
here); for Uno's C the ``n_*`` counts are unweighted pairs (R's ``count`` is
weighted); the weighted counts are checked through the private helper.
Agreement with R is required to 1e-9 relative.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.analysis.concordance import (
    ConcordanceResult,
    _concordance_counts,
    _pair_sums,
    harrell_c,
    uno_c,
)
from studyval.analysis.kaplan_meier import _km_censoring
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9  # exact algorithms: R agreement is to rounding


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    return d


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_ties.csv")


def close(actual, expected, rel=REL, abs_=1e-12):
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=rel, atol=abs_
    )


# =========================================================================== #
# Concordance
# =========================================================================== #
HARRELL_CASES = [
    # fit <- concordance(Surv(time, status) ~ age, data = lung, reverse = TRUE)
    # c(fit$concordance, sqrt(fit$var), fit$count)
    pytest.param(
        "lung",
        "age",
        None,
        None,
        [0.5502398321175177, 0.025142111594332901, 10717, 8706, 591, 27, 1],
        id="lung-age",
    ),
    # concordance(Surv(time, status) ~ ph.karno, data = lung[!is.na(lung$ph.karno), ], reverse = TRUE)
    pytest.param(
        "lung",
        "ph.karno",
        None,
        "karno",
        [0.40221346270466951, 0.025951192367640288, 5741, 9611, 4436, 23, 5],
        id="lung-karno-heavy-risk-ties",
    ),
    # concordance(Surv(time, status) ~ age + strata(sex), data = lung, reverse = TRUE); colSums(fit$count)
    pytest.param(
        "lung",
        "age",
        "sex",
        None,
        [0.54589622641509439, 0.025881035226620146, 4382 + 1249, 3502 + 1156, 239 + 72, 15 + 2, 0],
        id="lung-age-strata",
    ),
    # concordance(Surv(time, status) ~ score, data = ties, reverse = TRUE)
    pytest.param(
        "ties",
        "score",
        None,
        None,
        [0.60830013675010408, 0.01770817497207074, 40123, 25551, 1602, 4568, 119],
        id="ties-score",
    ),
    # concordance(Surv(time, status) ~ score + strata(stratum), data = ties, reverse = TRUE); colSums(fit$count)
    pytest.param(
        "ties",
        "score",
        "stratum",
        None,
        [
            0.6022217381834023,
            0.01808066262594785,
            5812 + 5310 + 2424,
            3725 + 3470 + 1658,
            226 + 222 + 108,
            625 + 743 + 219,
            22 + 16 + 6,
        ],
        id="ties-score-strata",
    ),
]


@pytest.mark.parametrize(("dataset", "risk", "strata", "rows", "expected"), HARRELL_CASES)
def test_harrell_c_against_concordance(request, dataset, risk, strata, rows, expected):
    d = request.getfixturevalue(dataset)
    if rows == "karno":
        d = d[d["ph.karno"].notna()]
    r = harrell_c(d["time"], d["status"], d[risk], strata=None if strata is None else d[strata])
    assert isinstance(r, ConcordanceResult)
    close([r.estimate, r.se], expected[:2])
    assert [
        r.n_concordant,
        r.n_discordant,
        r.n_tied_risk,
        r.n_tied_time,
        r.n_tied_both,
    ] == expected[2:]
    assert r.comparable_pairs == sum(expected[2:5])
    assert r.method == "Harrell" and r.tau is None
    est, lo, hi = r
    assert lo < est < hi


UNO_CASES = [
    # fit <- concordance(Surv(time, status) ~ age, data = lung, reverse = TRUE, timewt = "n/G2", ymax = 365)
    # c(fit$concordance, sqrt(fit$var), fit$count)   (count is IPCW-weighted in R)
    pytest.param(
        "lung",
        "age",
        365,
        None,
        [
            0.54862364868330182,
            0.025666109785787219,
            11498.947829916102,
            9404.9768077522313,
            628.50946453605366,
            30.24190915501833,
            0,
        ],
        id="lung-age-365",
    ),
    # concordance(Surv(time, status) ~ ph.karno, data = lung[!is.na(lung$ph.karno), ],
    #             reverse = TRUE, timewt = "n/G2", ymax = 500)
    pytest.param(
        "lung",
        "ph.karno",
        500,
        "karno",
        [
            0.41712960825808121,
            0.025455754201365661,
            7087.1550254842487,
            10965.536605292049,
            5347.5934305405844,
            25.291124781454513,
            7.0126034422568031,
        ],
        id="lung-karno-500",
    ),
    # concordance(Surv(time, status) ~ score, data = ties, reverse = TRUE, timewt = "n/G2", ymax = 10)
    pytest.param(
        "ties",
        "score",
        10,
        None,
        [
            0.60910602568694183,
            0.017914253607821659,
            41070.79553561216,
            26068.554176122525,
            1611.3964777360709,
            4739.3630914979021,
            115.19299286460364,
        ],
        id="ties-score-10",
    ),
]


@pytest.mark.parametrize(("dataset", "risk", "tau", "rows", "expected"), UNO_CASES)
def test_uno_c_against_concordance_n_g2(request, dataset, risk, tau, rows, expected):
    d = request.getfixturevalue(dataset)
    if rows == "karno":
        d = d[d["ph.karno"].notna()]
    t, e, x = d["time"].to_numpy(float), d["status"].to_numpy(), d[risk].to_numpy(float)
    r = uno_c(t, e, x, tau=tau)
    close([r.estimate, r.se], expected[:2])
    assert r.method == "Uno" and r.tau == tau
    # R's weighted counts, through the same private routine and Uno's weights 1 / G(T-)^2
    g = _km_censoring(t, e)
    w = np.where((t <= tau) & (e == 1), 1.0 / g.left(t) ** 2, 0.0)
    c = _concordance_counts(t, e, x, w)
    close(
        [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both], expected[2:], abs_=1e-9
    )
    # unweighted counts: comparable pairs with an event at or before tau
    u = _concordance_counts(t, e, x, (t <= tau).astype(float))
    assert [r.n_concordant, r.n_discordant, r.n_tied_risk] == [
        round(u.concordant),
        round(u.discordant),
        round(u.tied_risk),
    ]


def _brute_concordance(t, e, x, w=None):
    """O(n^2) reference: counts, estimate and the IJ standard error of survival::concordance.

    Returns (estimate, se, counts); estimate and se are None without comparable pairs.
    """
    n = len(t)
    w = np.ones(n) if w is None else w
    conc = disc = tie = ty = txy = 0.0
    ic = np.zeros(n)
    idd = np.zeros(n)
    it = np.zeros(n)
    for i in range(n):
        if not e[i]:
            continue
        for j in range(n):
            if j == i:
                continue
            if t[j] > t[i] or (t[j] == t[i] and not e[j]):
                wt = w[i]
                if x[i] > x[j]:
                    conc += wt
                    ic[i] += wt
                    ic[j] += wt
                elif x[i] < x[j]:
                    disc += wt
                    idd[i] += wt
                    idd[j] += wt
                else:
                    tie += wt
                    it[i] += wt
                    it[j] += wt
            elif t[j] == t[i] and e[j] and j > i:
                if x[i] == x[j]:
                    txy += w[i]
                else:
                    ty += w[i]
    counts = [conc, disc, tie, ty, txy]
    npair = conc + disc + tie
    if npair == 0:
        return None, None, counts
    somer = (conc - disc) / npair
    dfb = (ic - idd) / npair - somer / npair * (ic + idd + it)
    return (somer + 1) / 2, math.sqrt(np.sum(dfb**2) / 4), counts


def _quiet_c(fn, *args, **kwargs):
    """Call a C-index function; the only warning allowed is the one for a zero SE."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fn(*args, **kwargs)
    assert all(issubclass(w.category, StatisticalWarning) for w in caught)
    assert any("standard error is 0" in str(w.message) for w in caught) == (r.se == 0)
    return r


def test_harrell_c_zero_se_warns():
    # a constant risk: every comparable pair is tied, C = 0.5 with IJ variance 0
    with pytest.warns(StatisticalWarning, match="standard error is 0"):
        r = harrell_c([1, 2, 3, 4], [1, 1, 0, 1], [2.0, 2.0, 2.0, 2.0])
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == (0.5, 0.0, 0.5, 0.5)
    assert r.n_tied_risk == r.comparable_pairs == 5


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.booleans(), st.integers(-3, 3)), min_size=2, max_size=35
    ),
)
def test_harrell_c_against_brute_force_with_ties(rows):
    t = np.array([r[0] for r in rows], float)
    e = np.array([r[1] for r in rows])
    x = np.array([r[2] for r in rows], float)
    est, se, counts = _brute_concordance(t, e, x)
    if est is None:
        with pytest.raises(EstimationError):
            harrell_c(t, e.astype(int), x)
        return
    r = _quiet_c(harrell_c, t, e.astype(int), x)
    close([r.estimate, r.se], [est, se], rel=1e-9, abs_=1e-12)
    assert [r.n_concordant, r.n_discordant, r.n_tied_risk, r.n_tied_time, r.n_tied_both] == counts


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.booleans(), st.integers(-3, 3)), min_size=2, max_size=30
    ),
    st.integers(1, 8),
)
def test_uno_weighted_counts_against_brute_force(rows, tau):
    t = np.array([r[0] for r in rows], float)
    e = np.array([r[1] for r in rows]).astype(int)
    x = np.array([r[2] for r in rows], float)
    g = _km_censoring(t, e)
    with np.errstate(divide="ignore"):
        w = np.where((t <= tau) & (e == 1), 1.0 / g.left(t) ** 2, 0.0)
    if not np.isfinite(w).all():  # G(T-) = 0 cannot happen before the last time
        raise AssertionError("infinite IPCW weight")
    c = _concordance_counts(t, e, x, w)
    counts = _brute_concordance(t, e, x, w)[2]
    close(
        [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both],
        counts,
        rel=1e-9,
        abs_=1e-9,
    )


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 60), st.integers(0, 10_000))
def test_harrell_c_property_reversed_risk(n, seed):
    rng = np.random.default_rng(seed)
    t = rng.permutation(n).astype(float) + 1  # no tied times
    e = rng.integers(0, 2, n)
    e[0] = 1
    x = rng.permutation(n).astype(float)  # no tied risks
    try:
        a = _quiet_c(harrell_c, t, e, x)
    except EstimationError:
        return
    b = _quiet_c(harrell_c, t, e, -x)
    assert b.estimate == pytest.approx(1 - a.estimate, abs=1e-12)
    assert b.se == pytest.approx(a.se, rel=1e-9, abs=1e-15)
    # invariant to a monotone transform of the risk
    c = _quiet_c(harrell_c, t, e, np.exp(x / n))
    assert c.estimate == a.estimate


def test_pair_sums_against_brute_force():
    rng = np.random.default_rng(3)
    for n in (1, 2, 5, 33, 128):
        r = rng.integers(0, max(1, n // 2), n)
        v = rng.random(n)
        perm = rng.permutation(n)
        a, b = _pair_sums(perm, r, v)
        pos = np.empty(n, int)
        pos[perm] = np.arange(n)
        for i in range(n):
            before = pos < pos[i]
            after = pos > pos[i]
            assert a[i] == np.sum(before & (r < r[i]))
            assert b[i] == pytest.approx(np.sum(v[after & (r > r[i])]), abs=1e-12)


def test_uno_with_one_event_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = uno_c([1, 2, 3, 4], [1, 0, 0, 0], [4, 3, 2, 1], tau=10)
    messages = [str(w.message) for w in caught]
    assert any("fewer than two events" in m for m in messages)
    assert any("standard error is 0" in m for m in messages)  # one event: perfect ordering
    assert r.estimate == 1.0


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "exc", "match"),
    [
        pytest.param(
            harrell_c,
            ([1, 2], [0, 0], [1, 2]),
            {},
            EstimationError,
            "no events",
            id="harrell-no-events",
        ),
        pytest.param(
            harrell_c,
            ([1, 1], [1, 1], [1, 2]),
            {},
            EstimationError,
            "no comparable pairs",
            id="harrell-no-pairs",
        ),
        pytest.param(
            harrell_c,
            ([1, 2], [1, 0], [1, np.nan]),
            {},
            StudyvalError,
            "risk has 1 non-finite",
            id="risk-nan",
        ),
        pytest.param(
            harrell_c,
            ([1, 2], [1, 0], [1, 2, 3]),
            {},
            StudyvalError,
            "risk has 3 values but time has 2",
            id="risk-length",
        ),
        pytest.param(
            harrell_c,
            ([1, 2], [1, 0], [1, 2]),
            dict(strata=["a"]),
            StudyvalError,
            "strata has 1 values",
            id="strata-length",
        ),
        pytest.param(
            uno_c,
            ([1, 2, 3], [1, 1, 0], [3, 2, 1]),
            dict(tau=0),
            StudyvalError,
            "tau must be finite and > 0",
            id="tau-zero",
        ),
        pytest.param(
            uno_c,
            ([1, 2, 3], [1, 1, 0], [3, 2, 1]),
            dict(tau="x"),
            StudyvalError,
            "tau must be a number",
            id="tau-string",
        ),
        pytest.param(
            uno_c,
            ([5, 6, 7], [1, 1, 0], [3, 2, 1]),
            dict(tau=1),
            EstimationError,
            "no comparable pairs",
            id="tau-before-events",
        ),
    ],
)
def test_concordance_errors(fn, args, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        fn(*args, **kwargs)


def test_concordance_to_frame(lung):
    f = harrell_c(lung["time"], lung["status"], lung["age"]).to_frame()
    assert f.shape == (1, len(f.columns))
    assert {"estimate", "se", "ci_low", "ci_high", "comparable_pairs", "n_tied_time"} <= set(
        f.columns
    )
