"""Tests for studyval.analysis.clustered (Obuchowski's clustered DeLong).

Oracles
-------
* The reference R implementation of Obuchowski (1997, Biometrics 53:567-578,
  doi:10.2307/2533958): ``doAUCcluster`` from the FDA/DIDSR package
  ``mitoticFigureCounts`` (file ``R/doAUCcluster.R``, commit 5675b0b), itself an
  adaptation of the Cleveland Clinic's ``funcs_clusteredROC.R`` written with
  Obuchowski. It was sourced into R 4.x as a development oracle on the
  ``VERT_*`` data below (saved as ``vert.csv`` with columns patient, y, a, b);
  the calls and outputs (``sprintf("%.17g", ...)``) sit beside the expected
  values. Nothing here runs R.
* R pROC 1.18.0 for the unclustered DeLong variance and paired test, which the
  clustered estimator must reproduce with one unit per cluster (exactly: see the
  module docstring for the algebra; there is no extra factor).
* A hand calculation (3 patients, 6 vertebrae) worked in fractions in the test.
* An explicit O(n^2) implementation of Obuchowski's formulas written here,
  with loops over clusters and pairs, on random tied data.
* The cluster bootstrap of studyval.analysis.resampling (Monte-Carlo agreement).

Deliberate deviation from the R reference: our AUC interval is truncated to
[0, 1] (the reference reports e.g. an upper limit of 1.005 for the MRA data of
Obuchowski 1997); no case below reaches the bound.

The published worked example (Obuchowski 1997, Table 3: MRA of 65 carotid
arteries in 36 patients; AUC 0.9837, SE 0.0108 for reader 1) could not be used:
the table's data are not available to us.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.clustered import (
    ClusteredAUCResult,
    ClusteredPairedAUCComparison,
    auc_clustered,
    compare_auc_clustered,
)
from studyval.analysis.discrimination import auc, compare_auc
from studyval.analysis.resampling import bootstrap, bootstrap_many, weighted_auc_statistic
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

REL = 1e-12

# 57 vertebrae of 24 patients, two readers' 5-point ratings (heavy ties), outcome 1 = positive.
# Simulated once (numpy default_rng(20240611), patient random effect) and frozen here.
# fmt: off
VERT_PATIENT = [
    "P01", "P01", "P02", "P03", "P03", "P04", "P04", "P05", "P05", "P06", "P07", "P07", "P08",
    "P09", "P10", "P11", "P11", "P11", "P12", "P12", "P12", "P12", "P13", "P13", "P13", "P13",
    "P14", "P14", "P15", "P15", "P15", "P15", "P16", "P16", "P16", "P17", "P18", "P18", "P18",
    "P19", "P19", "P19", "P19", "P20", "P20", "P20", "P21", "P21", "P21", "P22", "P23", "P23",
    "P23", "P24", "P24", "P24", "P24",
]
VERT_Y = [
    0, 0, 0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 1, 0, 1, 0,
    1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1,
]
VERT_A = [
    1, 1, 1, 1, 4, 3, 2, 5, 3, 3, 1, 2, 4, 3, 2, 1, 2, 2, 4, 5, 4, 5, 5, 4, 2, 3, 5, 1, 5, 3,
    3, 2, 1, 1, 1, 3, 3, 3, 3, 2, 2, 2, 1, 4, 4, 3, 3, 2, 3, 3, 5, 5, 5, 5, 3, 1, 4,
]
VERT_B = [
    3, 2, 2, 1, 3, 2, 4, 5, 5, 1, 1, 2, 2, 1, 3, 1, 2, 1, 5, 3, 5, 5, 2, 2, 1, 4, 4, 3, 5, 4,
    5, 3, 1, 3, 2, 4, 3, 4, 2, 3, 4, 2, 1, 3, 5, 4, 5, 3, 5, 2, 3, 3, 5, 4, 2, 4, 3,
]
# fmt: on


# ------------------------------------------------------------------ naive oracle


def _psi(x: float, y: float) -> float:
    return 1.0 if x > y else (0.5 if x == y else 0.0)


def obuchowski_naive(y, score, clusters):
    """Obuchowski (1997) written out with explicit loops: (theta, var, naive DeLong var)."""
    y = list(y)
    ids = sorted(set(clusters))
    pos = [(c, s) for c, s, t in zip(clusters, score, y, strict=True) if t]
    neg = [(c, s) for c, s, t in zip(clusters, score, y, strict=True) if not t]
    m_all, n_all = len(pos), len(neg)
    theta = sum(_psi(x, yy) for _, x in pos for _, yy in neg) / (m_all * n_all)
    v10 = {c: 0.0 for c in ids}
    v01 = {c: 0.0 for c in ids}
    m_i = {c: 0 for c in ids}
    n_i = {c: 0 for c in ids}
    v10_unit, v01_unit = [], []
    for c, x in pos:
        v = sum(_psi(x, yy) for _, yy in neg) / n_all
        v10[c] += v
        m_i[c] += 1
        v10_unit.append(v)
    for c, yy in neg:
        v = sum(_psi(x, yy) for _, x in pos) / m_all
        v01[c] += v
        n_i[c] += 1
        v01_unit.append(v)
    n_cl = len(ids)
    i10 = sum(1 for c in ids if m_i[c] > 0)
    i01 = sum(1 for c in ids if n_i[c] > 0)
    s10 = i10 / ((i10 - 1) * m_all) * sum((v10[c] - m_i[c] * theta) ** 2 for c in ids)
    s01 = i01 / ((i01 - 1) * n_all) * sum((v01[c] - n_i[c] * theta) ** 2 for c in ids)
    s11 = (
        n_cl / (n_cl - 1) * sum((v10[c] - m_i[c] * theta) * (v01[c] - n_i[c] * theta) for c in ids)
    )
    var = s10 / m_all + s01 / n_all + 2 * s11 / (m_all * n_all)
    naive = sum((v - theta) ** 2 for v in v10_unit) / ((m_all - 1) * m_all) + sum(
        (v - theta) ** 2 for v in v01_unit
    ) / ((n_all - 1) * n_all)
    return theta, var, naive


def _clustered_data(seed, n_patients, *, max_units=5, rho=0.7, shift=1.0, ties=None):
    """Patients with 1..max_units vertebrae; disease and score share a patient effect.

    40 % of patients are "sick" (each vertebra positive with probability 0.7, else
    0.05), and a patient effect with correlation ``rho`` shifts all their scores.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, max_units + 1, n_patients)
    patient = np.repeat(np.arange(n_patients), sizes)
    sick = (rng.random(n_patients) < 0.4)[patient]
    y = rng.random(patient.size) < np.where(sick, 0.7, 0.05)
    u = rng.normal(size=n_patients)[patient]
    e = math.sqrt(1 - rho**2)
    score = shift * y + rho * u + e * rng.normal(size=patient.size)
    score2 = 0.6 * shift * y + rho * u + e * rng.normal(size=patient.size)
    if ties is not None:
        score, score2 = np.round(score, ties), np.round(score2, ties)
    return y, score, score2, np.array([f"pt{p:04d}" for p in patient])


# ------------------------------------------------------------ reference R code


def test_auc_clustered_against_obuchowski_reference_R():
    r = auc_clustered(VERT_Y, VERT_A, VERT_PATIENT, positive=1)
    # source("doAUCcluster.R"); d <- read.csv("vert.csv")
    # r1 <- doAUCcluster(predictor1 = d$a, response = d$y, clusterID = d$patient,
    #                    alpha = 0.05, level = 1, print.all = TRUE)
    # sprintf("%.17g", c(r1$auc, r1$auc.var, r1$auc.se))
    #   0.84188034188034189 0.0033071044862852898 0.05750742983550039
    # print.all: I 24, I10 12, I01 22, M 18, N 39
    assert r.estimate == pytest.approx(0.84188034188034189, rel=REL)
    assert r.se**2 == pytest.approx(0.0033071044862852898, rel=1e-12)
    assert r.se == pytest.approx(0.05750742983550039, rel=1e-12)
    assert (r.n_clusters, r.n_clusters_with_positive, r.n_clusters_with_negative) == (24, 12, 22)
    assert (r.n_positive, r.n_negative) == (18, 39)
    z = 1.959963984540054
    assert r.ci_low == pytest.approx(r.estimate - z * r.se, rel=REL)
    assert r.ci_high == pytest.approx(r.estimate + z * r.se, rel=REL)
    # naive DeLong: var(roc(d$y, d$a, levels = c(0, 1), direction = "<"), method = "delong")
    #   0.0023270701408353231
    assert r.design_effect == pytest.approx(
        0.0033071044862852898 / 0.0023270701408353231, rel=1e-12
    )


def test_compare_auc_clustered_against_obuchowski_reference_R():
    c = compare_auc_clustered(VERT_Y, VERT_A, VERT_B, VERT_PATIENT, positive=1, names=("r1", "r2"))
    # r2 <- doAUCcluster(predictor1 = d$a, predictor2 = d$b, response = d$y,
    #                    clusterID = d$patient, alpha = 0.05, level = 1, print.all = TRUE)
    # sprintf("%.17g", c(r2$auc.A, r2$auc.B, r2$auc.var.A, r2$auc.var.B,
    #                    r2$auc.var.AminusB, r2$auc.se.AminusB, r2$p.value))
    #   0.84188034188034189 0.7471509971509972 0.0033071044862852898 0.006494530383059853
    #   0.00847800224508404 0.092076067710800943 0.30356608006288144
    assert c.auc_a == pytest.approx(0.84188034188034189, rel=REL)
    assert c.auc_b == pytest.approx(0.7471509971509972, rel=REL)
    assert c.se**2 == pytest.approx(0.00847800224508404, rel=1e-12)
    assert c.se == pytest.approx(0.092076067710800943, rel=1e-12)
    assert c.p_value == pytest.approx(0.30356608006288144, rel=1e-10)
    # the reference reports |difference|; ours is signed a - b
    assert c.difference == pytest.approx(0.84188034188034189 - 0.7471509971509972, rel=REL)
    # correlation from the reference's variances: cov = (var.A + var.B - var.AminusB) / 2
    cov = (0.0033071044862852898 + 0.006494530383059853 - 0.00847800224508404) / 2
    assert c.correlation == pytest.approx(
        cov / math.sqrt(0.0033071044862852898 * 0.006494530383059853), rel=1e-10
    )
    assert (c.name_a, c.name_b, c.n_clusters) == ("r1", "r2", 24)
    z, p = c
    assert (z, p) == (c.z, c.p_value)


# ----------------------------------------------------------- reduction to DeLong


def test_singletons_reduce_exactly_to_pROC_delong():
    # one vertebra per "patient": Obuchowski's estimator is DeLong's, no extra factor
    r = auc_clustered(VERT_Y, VERT_A, np.arange(len(VERT_Y)), positive=1)
    # var(roc(d$y, d$a, levels = c(0, 1), direction = "<"), method = "delong")
    #   0.0023270701408353231
    assert r.se**2 == pytest.approx(0.0023270701408353231, rel=1e-12)
    assert r.design_effect == pytest.approx(1.0, rel=1e-12)
    assert r.se == pytest.approx(auc(VERT_Y, VERT_A, positive=1).se, rel=1e-13)
    assert (r.n_clusters_with_positive, r.n_clusters_with_negative) == (18, 39)


def test_paired_singletons_reduce_to_pROC_roc_test():
    c = compare_auc_clustered(VERT_Y, VERT_A, VERT_B, range(len(VERT_Y)), positive=1)
    # roc.test(roc(d$y, d$a, ...), roc(d$y, d$b, ...), paired = TRUE, method = "delong")
    #   statistic 1.2041602587496001, p.value 0.22852764302412751
    assert c.z == pytest.approx(1.2041602587496001, rel=1e-12)
    assert c.p_value == pytest.approx(0.22852764302412751, rel=1e-10)
    d = compare_auc(VERT_Y, VERT_A, VERT_B, positive=1)
    assert c.se == pytest.approx(d.se, rel=1e-13)
    assert c.correlation == pytest.approx(d.correlation, rel=1e-12)


# -------------------------------------------------------------- hand / naive


def test_hand_worked_three_patients():
    # P1: positive 0.9, negative 0.2; P2: positive 0.6, negative 0.7; P3: negative 0.1,
    # positive 0.8. M = N = 3, I = I10 = I01 = 3, so every factor is 3/2.
    # V10 = (1, 2/3, 1), V01 = (1, 2/3, 1) per patient; theta = 8/9;
    # a_i = b_i = (1/9, -2/9, 1/9); sum a^2 = sum ab = 6/81.
    # S10 = S01 = (3 / (2 * 3)) * 6/81 = 1/27;  S11 = (3/2) * 6/81 = 1/9
    # Var = S10/3 + S01/3 + 2 S11/9 = 1/81 + 1/81 + 2/81 = 4/81  -> se = 2/9
    # naive DeLong: S10 = S01 = (6/81)/2, Var = 2 * (3/81)/3 = 2/81 -> design effect 2
    theta = Fraction(8, 9)
    a = [Fraction(1) - theta, Fraction(2, 3) - theta, Fraction(1) - theta]
    s10 = Fraction(3, 2 * 3) * sum(x * x for x in a)
    s11 = Fraction(3, 2) * sum(x * x for x in a)
    var = s10 / 3 + s10 / 3 + 2 * s11 / 9
    assert var == Fraction(4, 81)
    r = auc_clustered(
        ["pos", "neg", "pos", "neg", "neg", "pos"],
        [0.9, 0.2, 0.6, 0.7, 0.1, 0.8],
        ["P1", "P1", "P2", "P2", "P3", "P3"],
        positive="pos",
    )
    assert r.estimate == pytest.approx(8 / 9, rel=1e-15)
    assert r.se == pytest.approx(2 / 9, rel=1e-14)
    assert r.design_effect == pytest.approx(2.0, rel=1e-14)


@pytest.mark.parametrize(
    "seed, n_patients, ties",
    [
        pytest.param(1, 12, 0, id="coarse-ties"),
        pytest.param(2, 20, 1, id="some-ties"),
        pytest.param(3, 15, None, id="continuous"),
        pytest.param(4, 30, 0, id="larger-coarse"),
    ],
)
def test_against_explicit_quadratic_implementation(seed, n_patients, ties):
    y, s, _, pt = _clustered_data(seed, n_patients, ties=ties)
    theta, var, naive = obuchowski_naive(y, s, pt)
    r = auc_clustered(y, s, pt, positive=True)
    assert r.estimate == pytest.approx(theta, rel=1e-13)
    assert r.se**2 == pytest.approx(var, rel=1e-10)
    assert r.design_effect == pytest.approx(var / naive, rel=1e-10)


# --------------------------------------------------------- agreement with bootstrap


def test_se_agrees_with_cluster_bootstrap():
    y, s, _, pt = _clustered_data(11, 300)
    r = auc_clustered(y, s, pt, positive=True)
    boot = bootstrap(
        weighted_auc_statistic(y, s),
        n_rows=y.size,
        clusters=pt,
        n_resamples=2000,
        seed=5,
        method="percentile",
    )
    # Monte-Carlo SD of a bootstrap SE with B = 2000 is about se / sqrt(2B) = 1.6 %;
    # the estimators also differ by O(1/I). 10 % is a wide margin.
    assert boot.se == pytest.approx(r.se, rel=0.10)
    # correlated vertebrae: clustering matters here, and the row bootstrap misses it
    assert r.design_effect > 1.3
    naive = auc(y, s, positive=True).se
    row_boot = bootstrap(
        weighted_auc_statistic(y, s), n_rows=y.size, n_resamples=2000, seed=5, method="percentile"
    )
    assert row_boot.se == pytest.approx(naive, rel=0.10)


def test_paired_se_agrees_with_cluster_bootstrap():
    y, s, s2, pt = _clustered_data(12, 300)
    c = compare_auc_clustered(y, s, s2, pt, positive=True)
    fa, fb = weighted_auc_statistic(y, s), weighted_auc_statistic(y, s2)

    def stat(w):
        a, b = fa(w), fb(w)
        return np.column_stack([a, b, a - b])

    boot = bootstrap_many(
        stat,
        names=["a", "b", "a - b"],
        n_rows=y.size,
        clusters=pt,
        n_resamples=2000,
        seed=6,
        method="percentile",
    )
    assert boot["a - b"].se == pytest.approx(c.se, rel=0.10)
    assert boot["a - b"].estimate == pytest.approx(c.difference, rel=1e-12)


# ----------------------------------------------------------------- properties


def test_cluster_labels_and_row_order_do_not_matter():
    y, s, _, pt = _clustered_data(21, 40, ties=1)
    r = auc_clustered(y, s, pt, positive=True)
    perm = np.random.default_rng(0).permutation(y.size)
    relabel = {
        p: f"z{i}" for i, p in enumerate(np.random.default_rng(1).permutation(np.unique(pt)))
    }
    r2 = auc_clustered(y[perm], s[perm], [relabel[p] for p in pt[perm]], positive=True)
    assert r2.estimate == r.estimate
    assert r2.se == pytest.approx(r.se, rel=1e-13)


def test_swapping_models_flips_difference():
    y, s, s2, pt = _clustered_data(22, 40, ties=1)
    ab = compare_auc_clustered(y, s, s2, pt, positive=True)
    ba = compare_auc_clustered(y, s2, s, pt, positive=True)
    assert ba.difference == -ab.difference
    assert ba.z == pytest.approx(-ab.z, rel=1e-13)
    assert ba.p_value == pytest.approx(ab.p_value, rel=1e-12)


def test_flipping_positive_class_maps_auc_to_one_minus_auc():
    y, s, _, pt = _clustered_data(23, 40, ties=1)
    r = auc_clustered(y, s, pt, positive=True)
    f = auc_clustered(y, s, pt, positive=False)
    assert f.estimate == pytest.approx(1.0 - r.estimate, rel=1e-13)
    assert f.se == pytest.approx(r.se, rel=1e-12)
    assert f.n_positive == r.n_negative


def test_identical_models_degenerate_test_warns():
    with pytest.warns(StatisticalWarning, match="variance of the AUC difference a - b is zero"):
        c = compare_auc_clustered(VERT_Y, VERT_A, VERT_A, VERT_PATIENT, positive=1)
    assert (c.z, c.p_value, c.se, c.difference) == (0.0, 1.0, 0.0, 0.0)


def test_monotone_transform_is_degenerate_too():
    with pytest.warns(StatisticalWarning, match="is zero"):
        c = compare_auc_clustered(
            VERT_Y, VERT_A, np.exp(np.array(VERT_A, dtype=float)), VERT_PATIENT, positive=1
        )
    assert c.se == 0.0


def test_perfect_separation_warns_zero_se():
    y = [1, 0, 1, 0, 1, 0]
    s = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3]
    with pytest.warns(StatisticalWarning, match="standard error is zero"):
        r = auc_clustered(y, s, ["a", "a", "b", "b", "c", "c"], positive=1)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == (1.0, 0.0, 1.0, 1.0)
    assert math.isnan(r.design_effect)


def test_no_warning_in_ordinary_case():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        auc_clustered(VERT_Y, VERT_A, VERT_PATIENT, positive=1)
        compare_auc_clustered(VERT_Y, VERT_A, VERT_B, VERT_PATIENT, positive=1)


def test_result_frames_and_unpacking():
    r = auc_clustered(VERT_Y, VERT_A, VERT_PATIENT, positive=1, alpha=0.1)
    assert isinstance(r, ClusteredAUCResult)
    est, lo, hi = r
    assert lo < est < hi
    frame = r.to_frame()
    assert list(frame.columns) == [
        "estimate", "se", "ci_low", "ci_high", "ci_level", "n_positive", "n_negative",
        "n_clusters", "n_clusters_with_positive", "n_clusters_with_negative",
        "design_effect", "method",
    ]  # fmt: skip
    assert frame.loc[0, "ci_level"] == pytest.approx(0.9)
    c = compare_auc_clustered(VERT_Y, VERT_A, VERT_B, VERT_PATIENT, positive=1)
    assert isinstance(c, ClusteredPairedAUCComparison)
    assert c.to_frame().loc[0, "method"] == "Obuchowski clustered DeLong paired"


def test_pandas_inputs():
    d = pd.DataFrame({"pt": VERT_PATIENT, "y": VERT_Y, "a": VERT_A})
    r = auc_clustered(d["y"], d["a"], d["pt"], positive=1)
    assert r.se == auc_clustered(VERT_Y, VERT_A, VERT_PATIENT, positive=1).se


# ------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    "clusters, match",
    [
        pytest.param(["p1", None, "p2", "p2"], "missing id.*position 1", id="none-id"),
        pytest.param([1.0, 1.0, np.nan, 2.0], "missing id.*position 2", id="nan-id"),
        pytest.param(pd.Series(["a", "a", pd.NA, "b"]), "missing id", id="pandas-na-id"),
        pytest.param(
            ["p1", "p1", "p2"], "clusters has 3 values but the data have 4 rows", id="short"
        ),
        pytest.param([[1, 1], [2, 2]], "one-dimensional", id="two-d"),
        pytest.param(["p1", 1, "p2", 2], "one sortable type", id="mixed-types"),
    ],
)
def test_cluster_errors(clusters, match):
    with pytest.raises(StudyvalError, match=match):
        auc_clustered([1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], clusters, positive=1)


def test_score_length_mismatch():
    with pytest.raises(StudyvalError, match="y_score has 3 values but y_true has 4"):
        auc_clustered([1, 0, 1, 0], [0.9, 0.1, 0.8], ["a", "a", "b", "b"], positive=1)
    with pytest.raises(StudyvalError, match="score_b has 3 values"):
        compare_auc_clustered(
            [1, 0, 1, 0], [0.9, 0.1, 0.8, 0.2], [1, 2, 3], ["a", "a", "b", "b"], positive=1
        )


def test_single_class_raises():
    with pytest.raises(EstimationError, match="single class"):
        auc_clustered([1, 1, 1], [0.1, 0.2, 0.3], ["a", "b", "c"], positive=1)


def test_positives_in_one_cluster_only_raises():
    with pytest.raises(EstimationError, match="found 1 cluster\\(s\\) with positives"):
        auc_clustered(
            [1, 1, 0, 0, 0], [0.9, 0.8, 0.1, 0.2, 0.3], ["a", "a", "b", "c", "c"], positive=1
        )


def test_bad_names_and_alpha():
    with pytest.raises(StudyvalError, match="two distinct names"):
        compare_auc_clustered(VERT_Y, VERT_A, VERT_B, VERT_PATIENT, positive=1, names=("x", "x"))
    with pytest.raises(StudyvalError, match="two distinct names, got the string 'ab'"):
        compare_auc_clustered(VERT_Y, VERT_A, VERT_B, VERT_PATIENT, positive=1, names="ab")
    with pytest.raises(StudyvalError, match="alpha must be in"):
        auc_clustered(VERT_Y, VERT_A, VERT_PATIENT, positive=1, alpha=1.5)
