"""Oracle test of studyval.analysis.binomial_tests.clustered_difference (patient-cluster bootstrap).

64 rows of 30 patients, one token per row <patient><group a/c><success 0/1> (drawn once
with numpy.random.default_rng(5)); some patients have rows in both groups.

R 4.2 oracle on the engine's resamples (resampling_weights(patient, n_resamples=50,
seed=4) written to cw.csv, the rows to cd.csv)::

    d <- read.csv("cd.csv"); d$s <- d$s == "True"
    W <- as.matrix(read.csv("cw.csv", header = FALSE))
    diffw <- function(w) sum(w * (d$s & d$group == "a")) / sum(w * (d$group == "a")) -
      sum(w * (d$s & d$group == "c")) / sum(w * (d$group == "c"))
    est <- diffw(rep(1, nrow(d))); reps <- apply(W, 1, diffw)
    c(est, quantile(reps, c(.025, .975), type = 7), sd(reps))
    # -0.101661779081134 -0.265 0.186160714285714 0.122740269713549
"""

from __future__ import annotations

import numpy as np
import pytest

from studyval.analysis.binomial_tests import clustered_difference
from studyval.errors import StudyvalError

TOKENS = """00c1 00a1 00a1 01a1 01c0 01a1 02c0 03a1 03c1 03c1 04a1 04c1 05c0 05a0 05a0 06a1 06c1
07a1 07a0 08a0 08c0 08a1 09c1 10a0 10a0 10c1 11c1 11c1 11a0 12c1 12a0 13a1 14a0 15c0
15c0 15c1 16c1 16c1 17c1 17a1 17a0 18c1 18c1 19c1 19a1 19c0 20c1 20a0 21a0 22a1 22a1
22a0 23c1 24c0 24a0 25a1 25c0 26c1 27a1 27a1 27a1 28c1 29a1 29c0"""


@pytest.fixture(scope="module")
def rows():
    toks = TOKENS.split()
    patient = np.array([f"P{t[:2]}" for t in toks])
    group_a = np.array([t[2] == "a" for t in toks])
    success = np.array([t[3] == "1" for t in toks])
    return success, group_a, patient


def test_against_r_on_the_engine_resamples(rows):
    s, a, pid = rows
    r = clustered_difference(s, a, ~a, clusters=pid, n_resamples=50, seed=4)
    assert r.estimate == pytest.approx(-0.101661779081134, rel=1e-12)
    assert r.ci_low == pytest.approx(-0.265, rel=1e-12)
    assert r.ci_high == pytest.approx(0.186160714285714, rel=1e-12)
    assert r.se == pytest.approx(0.122740269713549, rel=1e-9)
    assert (r.n_clusters, r.n_failed) == (30, 0)


def test_swapping_the_groups_flips_the_interval(rows):
    s, a, pid = rows
    r = clustered_difference(s, a, ~a, clusters=pid, n_resamples=200, seed=1)
    q = clustered_difference(s, ~a, a, clusters=pid, n_resamples=200, seed=1)
    assert q.estimate == pytest.approx(-r.estimate)
    assert (q.ci_low, q.ci_high) == pytest.approx((-r.ci_high, -r.ci_low))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        pytest.param(lambda s, a: (s, a, a), "overlap", id="overlapping-groups"),
        pytest.param(lambda s, a: (s.astype(int), a, ~a), "boolean", id="integer-success"),
    ],
)
def test_bad_masks_are_named(rows, edit, match):
    s, a, pid = rows
    s2, a2, c2 = edit(s, a)
    with pytest.raises(StudyvalError, match=match):
        clustered_difference(s2, a2, c2, clusters=pid, n_resamples=50, seed=1)
