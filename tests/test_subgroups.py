"""Tests for studyval.analysis.subgroups and studyval.figures.subgroups.forest_figure.

Oracles
-------
* R 4.2.2, pROC 1.18.0: per-level AUC and DeLong CI
  (``roc(x$y, x$score, levels = c("chronic", "acute"), direction = "<")``,
  ``ci.auc(method = "delong")``, ``sqrt(var(r, method = "delong"))``).
* R metafor 3.8.1: Cochran's Q, its p-value and I² from
  ``rma(yi = est, sei = se, method = "FE")`` (``QE``, ``QEp``, ``I2``), and the
  hand formula ``w <- 1/se^2; sum(w * (est - sum(w * est)/sum(w))^2)``; plus the
  BCG vaccine meta-analysis (``dat.bcg``, Colditz et al. 1994, JAMA
  271:698-702), the canonical metafor example: ``escalc(measure = "RR", ai =
  tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)``,
  ``rma(yi, vi, method = "FE")``: QE = 152.233, I² = 92.12 %.
* R ``chisq.test(table, correct = FALSE)`` for Pearson's test, and the Rao
  score test of the subgroup term of ``glm(pos ~ factor(site), binomial)``
  among the acute cases (``anova(m0, m1, test = "Rao")``), which is the same
  statistic (glm's IRLS tolerance leaves a 1e-7 relative difference).
* R ``prop.test(x, n, correct = FALSE)$conf.int`` for the Wilson intervals.
* :func:`studyval.analysis.discrimination.auc` and
  :func:`studyval.analysis.accuracy.diagnostic_accuracy` on each subset.
* :func:`studyval.analysis.resampling.bootstrap_many` (joint replicates on the
  same resamples) for the cluster-bootstrap Wald statistic.

Data: ``SG`` below, 67 fractures from 4 sites (A 24, B 20, C 18, D 5; D has 1
acute case), scores rounded to 2 decimals; the same lines as
``write.csv(d[, c("site", "y", "score")])`` for R.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.accuracy import diagnostic_accuracy
from studyval.analysis.discrimination import auc
from studyval.analysis.resampling import bootstrap_many, weighted_auc_statistic
from studyval.analysis.subgroups import (
    MISSING_LEVEL,
    HeterogeneityTest,
    SubgroupResult,
    cochran_q,
    subgroup_accuracy,
    subgroup_auc,
)
from studyval.analysis.thresholds import prespecified
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

REL = 1e-9  # requirement 1e-6

# One fracture per line: site, reference standard, score (higher = more likely acute).
SG = """
B acute 0.16
A acute 0.75
A chronic 0.35
A chronic 0.63
C chronic 0.58
B acute 0.85
C acute 0.59
B chronic 0.36
B chronic 0.35
B acute 0.46
C chronic 0.27
A acute 0.69
A chronic 0.51
C acute 0.78
C acute 0.81
B chronic 0.45
C acute 0.98
C chronic 0.55
A acute 0.44
A chronic 0.21
C acute 0.86
A acute 0.39
A chronic 0.22
B chronic 0.27
D chronic 0.50
C chronic 0.38
A acute 0.89
D chronic 0.76
B chronic 0.54
A chronic 0.11
B acute 0.55
A acute 0.49
B acute 0.37
B chronic 0.92
B acute 0.31
C chronic 0.26
B chronic 0.17
A chronic 0.52
C acute 0.55
B chronic 0.14
A chronic 0.42
A chronic 0.47
B chronic 0.43
C acute 0.93
A acute 0.79
A chronic 0.20
A acute 0.53
C acute 0.92
A chronic 0.05
C chronic 0.45
D acute 0.94
B acute 0.20
A acute 0.63
C chronic 0.39
B chronic 0.67
B acute 0.33
D chronic 0.29
B chronic 0.66
C chronic 0.16
A chronic 0.35
C chronic 0.54
A acute 0.51
A chronic 0.20
C chronic 0.51
B acute 0.30
A acute 0.73
D chronic 0.49
"""
_rows = [line.split() for line in SG.strip().splitlines()]
SITE = np.array([r[0] for r in _rows])
Y = np.array([r[1] for r in _rows])
SCORE = np.array([float(r[2]) for r in _rows])


def _auc(**kwargs) -> SubgroupResult:
    args = {"positive": "acute", "negative": "chronic", "status": "pre-specified", "name": "site"}
    args.update(kwargs)
    return subgroup_auc(Y, SCORE, SITE, **args)


@pytest.fixture(scope="module")
def by_site() -> SubgroupResult:
    return _auc()


def test_data_as_described():
    assert {s: int(np.sum(SITE == s)) for s in "ABCD"} == {"A": 24, "B": 20, "C": 18, "D": 5}
    assert int(np.sum((SITE == "D") & (Y == "acute"))) == 1


# --------------------------------------------------------------------------- AUC per level


# R: x <- d[d$site == s, ]; r <- roc(x$y, x$score, levels = c("chronic", "acute"),
#    direction = "<"); ci.auc(r, method = "delong"); sqrt(var(r, method = "delong"))
PROC_SITE = {
    "A": (0.88811188811188813, 0.064513411093595568, 0.76166792584861409, 1.0),
    "B": (0.4242424242424242, 0.13621390956980042, 0.1572680672922197, 0.69121678119262886),
    "C": (0.98124999999999996, 0.023011168785806797, 0.93614893793764642, 1.0),
}


@pytest.mark.parametrize("site", [pytest.param(s, id=f"site-{s}") for s in "ABC"])
def test_level_auc_against_pROC(by_site, site):
    row = by_site.level(site)
    est, se, lo, hi = PROC_SITE[site]
    assert row.estimable and row.reason == ""
    assert row.estimate == pytest.approx(est, rel=REL)
    assert row.se == pytest.approx(se, rel=REL)
    assert row.ci_low == pytest.approx(lo, rel=REL)
    assert row.ci_high == pytest.approx(hi, rel=REL)


@pytest.mark.parametrize("site", [pytest.param(s, id=f"site-{s}") for s in "ABC"])
def test_level_auc_equals_discrimination_auc_on_the_subset(by_site, site):
    keep = SITE == site
    ref = auc(Y[keep], SCORE[keep], positive="acute")
    row = by_site.level(site)
    assert (row.estimate, row.se, row.ci_low, row.ci_high) == (
        ref.estimate,
        ref.se,
        ref.ci_low,
        ref.ci_high,
    )
    assert (row.n_positive, row.n_negative, row.n) == (
        ref.n_positive,
        ref.n_negative,
        int(keep.sum()),
    )


def test_overall_row_is_the_auc_of_all_cases(by_site):
    ref = auc(Y, SCORE, positive="acute")
    assert (by_site.overall.level, by_site.overall.estimate, by_site.overall.se) == (
        "overall",
        ref.estimate,
        ref.se,
    )


def test_too_small_level_keeps_its_row_with_a_reason(by_site):
    row = by_site.level("D")
    assert not row.estimable
    assert (row.n, row.n_positive, row.n_negative) == (5, 1, 4)
    assert row.reason == "fewer than 2 acute cases (1): a DeLong SE needs at least 2 per class"
    assert all(math.isnan(v) for v in (row.estimate, row.se, row.ci_low, row.ci_high))


# --------------------------------------------------------------------------- Cochran's Q


def test_cochran_q_on_site_aucs_against_metafor(by_site):
    # R: f <- rma(yi = est, sei = se, method = "FE")  (est, se from pROC, sites A, B, C)
    h = by_site.heterogeneity
    assert h.performed and h.method == "Cochran's Q (inverse-variance)"
    assert h.levels == ("A", "B", "C")  # D is not estimable, so not tested
    assert h.df == 2
    assert h.statistic == pytest.approx(17.548016071333898, rel=REL)  # f$QE
    assert h.p_value == pytest.approx(0.00015470228411878392, rel=1e-8)  # f$QEp
    assert h.i_squared == pytest.approx(88.602700203431198 / 100, rel=REL)  # f$I2
    assert h.assumes_independence
    stat, p = h
    assert (stat, p) == (h.statistic, h.p_value)


# R: dat <- escalc(measure = "RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
#    sprintf("%.17g", dat$yi); sprintf("%.17g", dat$vi)
BCG_YI = [
    -0.88931133392020545,
    -1.5853886572014306,
    -1.3480731482996933,
    -1.4415511900213054,
    -0.21754732221129558,
    -0.78611558581886398,
    -1.6208982235983918,
    0.011952333523840508,
    -0.4694176487381494,
    -1.3713448034727844,
    -0.33935882833839059,
    0.44591340057137874,
    -0.017313948216879815,
]
BCG_VI = [
    0.32558476500396133,
    0.19458112139814385,
    0.41536796536796539,
    0.020010031902247573,
    0.051210172169630863,
    0.0069056184559087574,
    0.22301724757231517,
    0.0039615792978177295,
    0.056434210463248966,
    0.07302479361302891,
    0.01241221397155972,
    0.53250584520015276,
    0.071404659683986293,
]


def test_cochran_q_against_metafor_bcg():
    # R: fb <- rma(yi, vi, data = dat, method = "FE"); fb$QE; fb$QEp; fb$I2
    h = cochran_q(BCG_YI, np.sqrt(BCG_VI))
    assert h.df == 12
    assert h.statistic == pytest.approx(152.23300808237329, rel=REL)
    assert h.p_value == pytest.approx(1.9967645908459738e-26, rel=1e-6)
    assert h.i_squared == pytest.approx(92.117346854562058 / 100, rel=REL)
    assert h.levels == tuple(range(13))


@pytest.mark.parametrize(
    ("estimates", "se", "match"),
    [
        pytest.param([0.8], [0.1], "at least 2 estimates, got 1", id="one-estimate"),
        pytest.param([0.8, 0.7], [0.1, 0.0], "position 1 is 0.0", id="zero-se"),
        pytest.param([0.8, 0.7], [0.1], "se has 1 values but y_true has 2", id="lengths"),
        pytest.param([0.8, np.nan], [0.1, 0.1], "non-finite", id="nan-estimate"),
    ],
)
def test_cochran_q_errors(estimates, se, match):
    with pytest.raises(StudyvalError, match=match):
        cochran_q(estimates, se)


def test_cochran_q_identical_estimates():
    h = cochran_q([0.8, 0.8, 0.8], [0.05, 0.1, 0.2])
    assert h.statistic == pytest.approx(0.0, abs=1e-20)  # rounding in the pooled mean
    assert (h.p_value, h.i_squared) == (1.0, 0.0)


def test_zero_se_level_is_left_out_of_q_with_a_note():
    # site C made perfectly separable: DeLong SE 0, infinite weight
    score = SCORE.copy()
    c = SITE == "C"
    score[c] = np.where(Y[c] == "acute", 0.99, 0.01)
    with pytest.warns(StatisticalWarning, match="DeLong standard error is zero"):
        r = subgroup_auc(Y, score, SITE, positive="acute", status="pre-specified")
    assert r.level("C").estimable and r.level("C").se == 0.0
    assert r.heterogeneity.levels == ("A", "B")
    assert "left out of the test: level 'C' has a DeLong SE of 0" in r.heterogeneity.note


# --------------------------------------------------------------------------- edge cases


def test_single_level_grouping_has_no_test():
    r = subgroup_auc(Y, SCORE, ["all"] * Y.size, positive="acute", status="pre-specified")
    assert len(r.levels) == 1 and r.levels[0].estimable
    h = r.heterogeneity
    assert not h.performed
    assert h.reason == "a single level: there is nothing to compare"
    assert math.isnan(h.statistic) and math.isnan(h.p_value) and h.df == 0


def test_only_one_estimable_level_has_no_test():
    keep = np.isin(SITE, ["A", "D"])
    r = subgroup_auc(Y[keep], SCORE[keep], SITE[keep], positive="acute", status="exploratory")
    assert not r.heterogeneity.performed
    assert r.heterogeneity.reason == (
        "1 level could be tested (1 of 2 estimable); a heterogeneity test needs at least 2"
    )


def test_one_class_level_and_empty_level():
    groups = SITE.copy()
    groups[(SITE == "D") & (Y == "acute")] = "A"  # D now has chronic cases only
    r = subgroup_auc(
        Y,
        SCORE,
        groups,
        positive="acute",
        negative="chronic",
        status="pre-specified",
        levels=["A", "B", "C", "D", "E"],
    )
    assert r.level("D").reason == "one class only (4 chronic cases): an AUC needs both classes"
    assert r.level("E").reason == "no cases in this level"
    assert r.level("E").n == 0
    assert [x.level for x in r.levels] == ["A", "B", "C", "D", "E"]


def test_min_per_class_reason():
    r = _auc(min_per_class=10)
    assert r.level("C").reason == "fewer than 10 acute cases (8): min_per_class=10"
    assert r.level("B").reason == "fewer than 10 acute cases (9): min_per_class=10"


def test_missing_group_labels_are_an_error_by_default():
    groups = SITE.astype(object)
    groups[[3, 10, 11]] = None
    with pytest.raises(
        StudyvalError, match=r"groups has 3 missing label\(s\); first at position 3\. Fill"
    ):
        subgroup_auc(Y, SCORE, groups, positive="acute", status="pre-specified")


def test_missing_group_labels_as_an_explicit_level():
    groups = pd.Series(SITE, dtype=object)
    groups[groups == "A"] = np.nan  # 24 missing
    r = subgroup_auc(Y, SCORE, groups, positive="acute", status="pre-specified", missing="level")
    assert [x.level for x in r.levels] == ["B", "C", "D", MISSING_LEVEL]
    miss = r.level(MISSING_LEVEL)
    assert miss.n == 24 and miss.estimate == pytest.approx(PROC_SITE["A"][0], rel=REL)
    assert r.n_missing_group == 24
    assert r.heterogeneity.levels == ("B", "C")
    assert "'(missing)' (missing group label) is not a subgroup" in r.heterogeneity.note


def test_levels_and_categorical_order():
    r = _auc(levels=["C", "B", "A", "D"])
    assert [x.level for x in r.levels] == ["C", "B", "A", "D"]
    cat = pd.Series(pd.Categorical(SITE, categories=["D", "C", "B", "A", "Z"]))
    r = subgroup_auc(Y, SCORE, cat, positive="acute", status="pre-specified")
    assert [x.level for x in r.levels] == ["D", "C", "B", "A", "Z"]
    assert r.level("Z").reason == "no cases in this level"


def test_status_is_carried_to_every_row():
    for status in ("pre-specified", "exploratory"):
        t = _auc(status=status).to_frame()
        assert (t["status"] == status).all()


def test_table_is_tidy(by_site):
    t = by_site.to_frame()
    assert list(t["level"]) == ["A", "B", "C", "D", "overall"]
    assert list(t["row_type"]) == ["subgroup"] * 4 + ["overall"]
    assert t["estimable"].dtype == bool
    assert str(t["n"].dtype) == "Int64" and t["numerator"].isna().all()
    # no NaN without a reason
    nan_rows = t[t["estimate"].isna()]
    assert (nan_rows["reason"] != "").all()
    assert (t.loc[t["estimable"], "reason"] == "").all()
    assert (t["grouping"] == "site").all() and (t["method"] == "DeLong").all()
    assert by_site.to_frame().equals(t)
    h = by_site.heterogeneity_frame()
    assert h.loc[0, "levels"] == "A, B, C" and h.loc[0, "grouping"] == "site"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"status": "prespecified"}, "did you mean 'pre-specified'", id="status"),
        pytest.param({"missing": "drop"}, "missing='drop' is not one of", id="missing"),
        pytest.param({"min_per_class": 1}, "min_per_class must be >= 2", id="min-per-class"),
        pytest.param(
            {"levels": ["A", "B", "C"]},
            r"groups has 5 label\(s\) not in levels \('A', 'B', 'C'\); first at position 24: 'D'",
            id="levels",
        ),
        pytest.param({"levels": ["A", "A"]}, "levels must be distinct", id="dup-levels"),
        pytest.param({"name": ""}, "name must be a non-empty string", id="name"),
        pytest.param(
            {"clusters": np.arange(Y.size)}, "seed is required with clusters", id="no-seed"
        ),
        pytest.param(
            {"clusters": np.arange(3), "seed": 1},
            "clusters has 3 values but y_true has 67",
            id="cluster-length",
        ),
        pytest.param({"bootstrap_method": "bac"}, "did you mean 'bca'", id="bootstrap-method"),
    ],
)
def test_subgroup_auc_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        _auc(**kwargs)


def test_groups_of_wrong_length():
    with pytest.raises(StudyvalError, match="groups has 3 values but y_true has 67"):
        subgroup_auc(Y, SCORE, ["A", "B", "C"], positive="acute", status="exploratory")


def test_single_class_overall_is_an_estimation_error():
    with pytest.raises(EstimationError, match="single class"):
        subgroup_auc(
            ["acute"] * 4,
            [0.1, 0.2, 0.3, 0.4],
            list("ABAB"),
            positive="acute",
            status="exploratory",
        )


# --------------------------------------------------------------------------- accuracy


def _sens(**kwargs) -> SubgroupResult:
    args = {
        "positive": "acute",
        "negative": "chronic",
        "threshold": 0.5,
        "threshold_status": "pre-specified",
        "measure": "sensitivity",
        "status": "pre-specified",
        "name": "site",
    }
    args.update(kwargs)
    return subgroup_accuracy(Y, SCORE, SITE, **args)


# R: dd <- d[d$y == "acute", ]; dd$pos <- as.integer(dd$score >= 0.5)
#    prop.test(sum(x$pos), nrow(x), correct = FALSE)$conf.int for each site x
WILSON_SENS = {
    "A": (8, 11, 0.43435469882387101, 0.902539407099751),
    "B": (2, 9, 0.063225107117846749, 0.54741103089301102),
    "C": (8, 8, 0.67559243511611977, 1.0),
    "D": (1, 1, 0.2065493143772375, 1.0),
}


@pytest.mark.parametrize("site", [pytest.param(s, id=f"site-{s}") for s in "ABCD"])
def test_level_sensitivity_against_R(site):
    with pytest.warns(StatisticalWarning, match="expected counts are below 5"):
        r = _sens()
    row = r.level(site)
    x, n, lo, hi = WILSON_SENS[site]
    assert (row.numerator, row.denominator) == (x, n)
    assert row.estimate == pytest.approx(x / n, rel=REL)
    assert row.ci_low == pytest.approx(lo, rel=REL)
    assert row.ci_high == pytest.approx(hi, rel=REL)
    assert row.se == pytest.approx(math.sqrt(x / n * (1 - x / n) / n), rel=REL)


@pytest.mark.parametrize(
    "measure",
    [pytest.param(m, id=m) for m in ("sensitivity", "specificity", "ppv", "npv", "accuracy")],
)
def test_level_proportion_equals_diagnostic_accuracy(measure):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        r = _sens(measure=measure)
    for site in "ABC":
        keep = SITE == site
        ref = diagnostic_accuracy(
            Y[keep], SCORE[keep], positive="acute", threshold=0.5, threshold_status="pre-specified"
        ).measure(measure)
        row = r.level(site)
        assert (row.numerator, row.denominator) == (ref.numerator, ref.denominator)
        assert (row.estimate, row.ci_low, row.ci_high) == (ref.estimate, ref.ci_low, ref.ci_high)


def test_pearson_test_against_chisq_test_and_glm_score_test():
    # min_denominator=2 leaves out site D (1 acute case), as the R call does
    with pytest.warns(StatisticalWarning, match="expected counts are below 5"):
        r = _sens(min_denominator=2)
    assert r.level("D").reason == "fewer than 2 acute cases (1): min_denominator=2"
    h = r.heterogeneity
    assert h.method == "Pearson chi-square (K x 2)" and h.levels == ("A", "B", "C")
    # R: tab <- table(dd$site, factor(dd$pos, levels = c(1, 0)))   (sites A, B, C)
    #    chisq.test(tab, correct = FALSE)
    assert h.statistic == pytest.approx(11.721661054994387, rel=REL)
    assert h.p_value == pytest.approx(0.0028488766294874116, rel=REL)
    # R: anova(glm(pos ~ 1, binomial, dd), glm(pos ~ factor(site), binomial, dd), test = "Rao")
    assert h.statistic == pytest.approx(11.721662677317163, rel=1e-6)
    assert h.df == 2
    assert math.isnan(h.i_squared) and "I² is reported for Cochran's Q only" in h.note
    assert "expected counts are below 5" in h.note


@pytest.mark.parametrize(
    ("measure", "x2", "p"),
    [
        # R: chisq.test(table(dd$site, factor(dd$pos, levels = c(1, 0))), correct = FALSE)
        pytest.param("sensitivity", 12.457203615098353, 0.0059703454128440568, id="sensitivity"),
        # R: dn <- d[d$y == "chronic", ]; dn$neg <- as.integer(dn$score < 0.5)
        #    chisq.test(table(dn$site, factor(dn$neg, levels = c(1, 0))), correct = FALSE)
        pytest.param("specificity", 1.3306336740182896, 0.72187197897787747, id="specificity"),
    ],
)
def test_pearson_test_all_four_sites(measure, x2, p):
    with pytest.warns(StatisticalWarning, match="expected counts are below 5"):
        h = _sens(measure=measure).heterogeneity
    assert h.levels == ("A", "B", "C", "D") and h.df == 3
    assert h.statistic == pytest.approx(x2, rel=REL)
    assert h.p_value == pytest.approx(p, rel=REL)


def test_identical_proportions_have_no_test():
    # every acute case above the threshold in every site: sensitivity 1 everywhere
    r = _sens(threshold=0.0)
    h = r.heterogeneity
    assert not h.performed
    assert h.reason.startswith("every tested level has sensitivity 1")


def test_ppv_with_no_test_positives_in_a_level():
    score = SCORE.copy()
    score[SITE == "D"] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        r = subgroup_accuracy(
            Y,
            score,
            SITE,
            positive="acute",
            threshold=0.5,
            threshold_status="pre-specified",
            measure="ppv",
            status="exploratory",
        )
    assert r.level("D").reason == "no index-test positive cases: ppv is undefined"
    assert r.decision_rule == "index test positive iff score >= threshold"
    assert (r.threshold, r.threshold_status) == (0.5, "pre-specified")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"measure": "sensitvity"}, "did you mean 'sensitivity'", id="measure"),
        pytest.param({"threshold_status": "posthoc"}, "threshold_status='posthoc'", id="t-status"),
        pytest.param({"threshold": math.inf}, "threshold must be a finite number", id="inf"),
        pytest.param({"min_denominator": 0}, "min_denominator must be >= 1", id="min-den"),
        pytest.param(
            {"threshold": prespecified(0.5, source="SAP 7.3"), "threshold_status": "exploratory"},
            "contradicts the threshold",
            id="threshold-status-mismatch",
        ),
    ],
)
def test_subgroup_accuracy_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        _sens(**kwargs)


# --------------------------------------------------------------------------- clustered data


def _vertebrae(n_patients=60, seed=9):
    """Four vertebral levels per patient. The risk of a fracture, a shift of all
    scores and how well the model separates the classes vary between patients and
    are shared by all four of a patient's vertebrae, so the levels' AUCs are
    correlated through the patients they share."""
    rng = np.random.default_rng(seed)
    pid = np.repeat(np.arange(n_patients), 4)
    level = np.tile(["T11", "T12", "L1", "L2"], n_patients)
    risk = np.repeat(rng.choice([0.15, 0.75], size=n_patients), 4)
    y = rng.random(pid.size) < risk
    separation = np.repeat(rng.uniform(0.0, 3.0, size=n_patients), 4)
    shift = np.repeat(rng.normal(size=n_patients), 4)
    score = np.round(rng.normal(size=pid.size) + separation * y + shift, 2)
    return y, score, level, pid


LEVELS = ["T11", "T12", "L1", "L2"]


@pytest.fixture(scope="module")
def clustered():
    y, score, level, pid = _vertebrae()
    r = subgroup_auc(
        y,
        score,
        level,
        positive=True,
        status="pre-specified",
        levels=LEVELS,
        clusters=[f"p{i:03d}" for i in pid],
        seed=2026,
        n_resamples=1000,
        name="vertebral level",
    )
    return r, (y, score, level, pid)


def test_clustered_rows_use_the_cluster_bootstrap(clustered):
    r, (y, score, level, _) = clustered
    assert r.clustered and r.method == "cluster bootstrap (bca, 1000 resamples)"
    for row in r.levels:
        keep = level == row.level
        assert row.estimate == pytest.approx(auc(y[keep], score[keep], positive=True).estimate)
        assert row.n_clusters == 60
        assert row.ci_low < row.estimate < row.ci_high


def test_clustered_heterogeneity_is_a_bootstrap_wald_test_on_joint_replicates(clustered):
    # levels share patients, so they are not independent: the test must use the
    # covariance of the levels' estimates over the *same* resamples of patients
    r, (y, score, level, pid) = clustered
    h = r.heterogeneity
    assert h.method == "cluster-bootstrap Wald" and not h.assumes_independence
    assert math.isnan(h.i_squared) and "I² is not defined" in h.note
    stats_ = [weighted_auc_statistic(y[level == lv], score[level == lv]) for lv in LEVELS]
    cols = [np.flatnonzero(level == lv) for lv in LEVELS]
    many = bootstrap_many(
        lambda w: np.column_stack([f(w[:, c]) for f, c in zip(stats_, cols, strict=True)]),
        names=LEVELS,
        n_rows=y.size,
        clusters=[f"p{i:03d}" for i in pid],
        seed=2026,
        n_resamples=1000,
        method="percentile",
    )
    theta = np.array([row.estimate for row in r.levels])
    contrast = np.eye(3, 4) - np.eye(3, 4, 1)
    sigma = np.cov(many.replicates, rowvar=False)
    d = contrast @ theta
    w = float(d @ np.linalg.solve(contrast @ sigma @ contrast.T, d))
    assert h.statistic == pytest.approx(w, rel=1e-9)
    assert h.df == 3
    # the levels' estimates are correlated (shared patients), which is what a test
    # assuming independent subgroups would ignore
    corr = np.corrcoef(many.replicates, rowvar=False)
    assert corr[np.triu_indices(4, 1)].mean() > 0.1


def test_clustered_with_one_row_per_patient_agrees_with_delong_and_q():
    # every patient its own cluster, subgroups at the patient level: the bootstrap
    # Wald test and the cluster-bootstrap SEs estimate what Q and DeLong estimate
    ids = np.arange(Y.size)
    keep = SITE != "D"
    plain = subgroup_auc(Y[keep], SCORE[keep], SITE[keep], positive="acute", status="exploratory")
    boot = subgroup_auc(
        Y[keep],
        SCORE[keep],
        SITE[keep],
        positive="acute",
        status="exploratory",
        clusters=ids[keep],
        seed=11,
        n_resamples=2000,
        bootstrap_method="percentile",
    )
    for a, b in zip(plain.levels, boot.levels, strict=True):
        assert a.estimate == b.estimate
        assert b.se == pytest.approx(a.se, rel=0.25)
    assert boot.heterogeneity.statistic == pytest.approx(plain.heterogeneity.statistic, rel=0.35)
    assert boot.heterogeneity.p_value < 0.01 and plain.heterogeneity.p_value < 0.01


def test_clustered_reproducible_and_seed_sensitive():
    y, score, level, pid = _vertebrae(n_patients=30, seed=1)
    kw = dict(
        positive=True,
        status="exploratory",
        clusters=pid,
        n_resamples=300,
        bootstrap_method="percentile",
    )
    a = subgroup_auc(y, score, level, seed=5, **kw)
    b = subgroup_auc(y, score, level, seed=5, **kw)
    c = subgroup_auc(y, score, level, seed=6, **kw)
    assert a.to_frame().equals(b.to_frame())
    assert not a.to_frame()["ci_low"].equals(c.to_frame()["ci_low"])


def test_clustered_level_with_one_patient_is_not_estimable():
    y, score, level, pid = _vertebrae(n_patients=30, seed=1)
    level = level.astype(object)
    level[pid == 0] = "S1"  # all four vertebrae of patient 0: one cluster
    y[pid == 0] = [True, True, False, False]
    r = subgroup_auc(
        y,
        score,
        level,
        positive=True,
        status="exploratory",
        clusters=pid,
        seed=3,
        n_resamples=200,
        bootstrap_method="percentile",
    )
    row = r.level("S1")
    assert not row.estimable
    assert row.reason == "1 cluster in this level: a cluster-bootstrap interval needs at least 2"


def test_clustered_bootstrap_failure_becomes_a_reason():
    # level "S1": patient 0 (2 positive, 2 negative vertebrae) and patient 1 (4
    # negative). Leaving patient 0 out leaves no positive, so the BCa jackknife is
    # undefined; the level keeps its estimate and says why it has no interval.
    y, score, level, pid = _vertebrae(n_patients=30, seed=1)
    level = level.astype(object)
    level[pid <= 1] = "S1"
    y[pid == 0] = [True, True, False, False]
    y[pid == 1] = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        r = subgroup_auc(
            y,
            score,
            level,
            positive=True,
            status="exploratory",
            clusters=pid,
            seed=3,
            n_resamples=200,
        )
    row = r.level("S1")
    keep = level == "S1"
    assert not row.estimable
    assert row.estimate == auc(y[keep], score[keep], positive=True).estimate
    assert math.isnan(row.ci_low) and math.isnan(row.se)
    assert row.reason.startswith(
        "no cluster-bootstrap interval: the BCa acceleration of 'statistic' is undefined"
    )
    assert "S1" not in r.heterogeneity.levels and r.heterogeneity.performed


def test_clustered_accuracy_uses_weighted_proportions():
    y, score, level, pid = _vertebrae(n_patients=40, seed=2)
    r = subgroup_accuracy(
        y,
        score,
        level,
        positive=True,
        threshold=0.5,
        threshold_status="pre-specified",
        measure="sensitivity",
        status="pre-specified",
        clusters=pid,
        seed=9,
        n_resamples=500,
        bootstrap_method="percentile",
    )
    for row in r.levels:
        keep = (level == row.level) & y
        assert row.estimate == pytest.approx(np.mean(score[keep] >= 0.5), rel=1e-12)
        assert row.ci_low <= row.estimate <= row.ci_high
    assert r.heterogeneity.method == "cluster-bootstrap Wald"


# --------------------------------------------------------------------------- figure


def test_forest_figure_smoke(by_site, tmp_path):
    from studyval.figures.subgroups import forest_figure

    sex = np.where(np.arange(Y.size) % 2 == 0, "female", "male")
    other = subgroup_auc(Y, SCORE, sex, positive="acute", status="exploratory", name="sex")
    table = pd.concat([by_site.to_frame(), other.to_frame()], ignore_index=True)
    het = pd.concat([by_site.heterogeneity_frame(), other.heterogeneity_frame()])
    fig = forest_figure(
        table, estimate_label="AUC", null_value=0.5, title="AUC by subgroup", heterogeneity=het
    )
    fig.savefig(tmp_path / "forest.png", dpi=100)
    assert (tmp_path / "forest.png").stat().st_size > 0
    texts = [t.get_text() for a in fig.axes for t in a.texts]
    assert any(t.startswith("not estimable: fewer than 2 acute cases (1)") for t in texts)
    assert "female †" in texts and "sex †" in texts  # exploratory subgroups marked
    assert any("exploratory (post-hoc) subgroup" in t.get_text() for t in fig.texts)
    assert "24" in texts and "Overall" in texts  # n per level, overall row
    assert any(t.startswith("Heterogeneity: Cochran's Q = 17.55") for t in texts)


@pytest.mark.parametrize(
    ("table", "match"),
    [
        pytest.param(pd.DataFrame({"level": ["A"]}), "lacks column", id="columns"),
        pytest.param([1, 2], "must be a pandas DataFrame", id="not-a-frame"),
    ],
)
def test_forest_figure_errors(table, match):
    from studyval.figures.subgroups import forest_figure

    with pytest.raises(StudyvalError, match=match):
        forest_figure(table, estimate_label="AUC")


def test_forest_figure_needs_subgroup_rows(by_site):
    from studyval.figures.subgroups import forest_figure

    t = by_site.to_frame()
    with pytest.raises(StudyvalError, match="no rows with row_type == 'subgroup'"):
        forest_figure(t[t["row_type"] == "overall"], estimate_label="AUC")


def test_heterogeneity_test_is_a_result():
    h = cochran_q([0.7, 0.8], [0.05, 0.05], labels=["a", "b"])
    assert isinstance(h, HeterogeneityTest)
    assert h.to_frame().loc[0, "method"] == "Cochran's Q (inverse-variance)"
