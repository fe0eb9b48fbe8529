"""Tests for studyval.analysis.accuracy.

Oracles
-------
* Altman DG, Bland JM (1994) BMJ 308:1552 and 309:102, liver scan against
  pathology: TP 231, FP 32, FN 27, TN 54 (sensitivity 0.895, specificity
  0.628, PPV 0.878, NPV 0.667 as published, 3 decimals).
* Scott IA, Greenberg PB, Poole PJ (2008) Intern Med J 38:120-129, Table 1, as
  worked in the epiR documentation (``?epiR::epi.tests``): TP 670, FP 202,
  FN 74, TN 640; "The likelihood ratio of a positive test is 3.75 (95% CI 3.32
  to 4.24)" -- Simel et al. (1991) log method.
* R 4.x: ``prop.test(x, n, correct = FALSE)`` (Wilson), ``binom.test(x, n)``
  (Clopper-Pearson), and the Simel / Woolf / Mercaldo formulas written out in
  R with ``z <- qnorm(0.975)``::

      lrp <- (tp/n1)/(fp/n0); se <- sqrt(1/tp - 1/n1 + 1/fp - 1/n0)
      lrp * exp(c(-1, 1) * z * se)                                # LR+
      lrn <- (fn/n1)/(tn/n0); se <- sqrt(1/fn - 1/n1 + 1/tn - 1/n0)
      lrn * exp(c(-1, 1) * z * se)                                # LR-
      dor <- tp*tn/(fp*fn); se <- sqrt(1/tp + 1/fp + 1/fn + 1/tn)
      dor * exp(c(-1, 1) * z * se)                                # DOR
      plogis(qlogis(p) + log(lrp) + c(0, -1, 1) * z * se_lrp)     # PPV at prevalence p
      plogis(-qlogis(p) - log(lrn) + c(0, -1, 1) * z * se_lrn)    # NPV at prevalence p

  all printed with ``sprintf("%.17g", ...)``.
* Cluster bootstrap, same resamples in R: the table TP 20, FN 5, FP 6, TN 41
  laid out by ``_scores_for`` (rows in the order TP, FN, FP, TN), two rows per
  patient (``pid = (0:71) %/% 2``), the engine's draws exported with

  .. code-block:: python

      d = numpy.random.Generator(numpy.random.PCG64(20240611)).integers(0, 36, size=(200, 36))
      numpy.savetxt("draws.csv", d, fmt="%d", delimiter=",")

  and every measure recomputed in R from the drawn patients' rows, with the
  zero-cell correction 0.5 added to every cell of a resample with a zero cell
  (7 of the 200) for the ratio measures; limits ``quantile(type = 7)`` (numpy's
  default, the engine's percentile rule) of the finite replicates::

      D <- as.matrix(read.csv("draws.csv", header = FALSE))
      pos <- rep(c(TRUE, FALSE), c(25, 47)); tst <- rep(c(TRUE, FALSE, TRUE, FALSE), c(20, 5, 6, 41))
      pid <- (0:71) %/% 2
      stat <- function(i) {
        a <- sum(pos[i] & tst[i]); b <- sum(!pos[i] & tst[i]); c <- sum(pos[i] & !tst[i])
        d <- sum(!pos[i] & !tst[i]); se <- a / (a + c); sp <- d / (b + d); n <- a + b + c + d
        v <- c(se, sp, a / (a + b), d / (c + d), (a + d) / n, (se + sp) / 2, (a + c) / n)
        if (min(a, b, c, d) == 0) { a <- a + 0.5; b <- b + 0.5; c <- c + 0.5; d <- d + 0.5 }
        lrp <- (a / (a + c)) / (b / (b + d)); lrn <- (c / (a + c)) / (d / (b + d))
        c(v, lrp, lrn, a * d / (b * c), plogis(qlogis(0.1) + log(lrp)),
          plogis(-qlogis(0.1) - log(lrn)))
      }
      res <- t(sapply(1:200, function(r)
        stat(unlist(lapply(D[r, ], function(g) which(pid == g))))))
      apply(res, 2, function(x) { x <- x[is.finite(x)]
        sprintf("%.17g", c(quantile(x, c(0.025, 0.975), type = 7), sd(x))) })
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.accuracy import (
    MEASURES,
    AccuracyResult,
    ConfusionMatrix,
    accuracy_from_confusion,
    confusion_matrix,
    diagnostic_accuracy,
    intention_to_diagnose,
    intention_to_diagnose_confusion,
)
from studyval.analysis.resampling import resampling_weights
from studyval.analysis.thresholds import prespecified, youden
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

REL = 1e-6


def _table(tp, fp, fn, tn, **kwargs):
    cm = ConfusionMatrix(
        tp=tp, fp=fp, fn=fn, tn=tn, threshold=0.5, positive="acute", negative="chronic"
    )
    kwargs.setdefault("threshold_status", "pre-specified")
    return accuracy_from_confusion(cm, **kwargs)


def _scores_for(tp, fp, fn, tn, threshold=0.5):
    """Labels and scores that give exactly this 2x2 table at ``threshold``."""
    y = ["acute"] * (tp + fn) + ["chronic"] * (fp + tn)
    s = [threshold] * tp + [threshold - 0.25] * fn + [threshold + 0.25] * fp + [0.0] * tn
    return y, s


LIVER = {"tp": 231, "fp": 32, "fn": 27, "tn": 54}
SCOTT = {"tp": 670, "fp": 202, "fn": 74, "tn": 640}


# --------------------------------------------------------------------------- #
# Published worked examples
# --------------------------------------------------------------------------- #
def test_liver_scan_against_altman_bland_1994():
    r = _table(**LIVER)
    assert round(r.sensitivity.estimate, 3) == 0.895
    assert round(r.specificity.estimate, 3) == 0.628
    assert round(r.ppv.estimate, 3) == 0.878
    assert round(r.npv.estimate, 3) == 0.667
    assert r.measure("prevalence").estimate == 258 / 344


def test_lr_positive_against_epiR_scott_2008_worked_example():
    # epiR ?epi.tests: "The likelihood ratio of a positive test is 3.75 (95% CI 3.32 to 4.24)"
    lr = _table(**SCOTT).measure("lr_positive")
    assert (round(lr.estimate, 2), round(lr.ci_low, 2), round(lr.ci_high, 2)) == (3.75, 3.32, 4.24)
    assert lr.ci_method == "log (Simel 1991)"


# --------------------------------------------------------------------------- #
# Proportions against prop.test / binom.test
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("cells", "measure", "low", "high"),
    [
        # prop.test(231, 258, correct = FALSE)$conf.int
        pytest.param(LIVER, "sensitivity", 0.85202140623280043, 0.92707599460965651, id="liver-se"),
        # prop.test(54, 86, correct = FALSE)$conf.int
        pytest.param(LIVER, "specificity", 0.52233831641482509, 0.72253749358184549, id="liver-sp"),
        # prop.test(231, 263, correct = FALSE)$conf.int
        pytest.param(LIVER, "ppv", 0.8332807314898486, 0.91248044400169803, id="liver-ppv"),
        # prop.test(54, 81, correct = FALSE)$conf.int
        pytest.param(LIVER, "npv", 0.5585283506058687, 0.75971228758332621, id="liver-npv"),
        # prop.test(285, 344, correct = FALSE)$conf.int
        pytest.param(LIVER, "accuracy", 0.78508099842417323, 0.86464028772216528, id="liver-acc"),
        # prop.test(258, 344, correct = FALSE)$conf.int
        pytest.param(LIVER, "prevalence", 0.70165050476631741, 0.79282764221231194,
                     id="liver-prev"),
        # prop.test(670, 744, correct = FALSE)$conf.int
        pytest.param(SCOTT, "sensitivity", 0.8769319125038284, 0.92002844984337284, id="scott-se"),
        # prop.test(640, 842, correct = FALSE)$conf.int
        pytest.param(SCOTT, "specificity", 0.73011176252985344, 0.78771577528163783,
                     id="scott-sp"),
        # prop.test(640, 714, correct = FALSE)$conf.int
        pytest.param(SCOTT, "npv", 0.87184006371725065, 0.91663487464846194, id="scott-npv"),
    ],
)  # fmt: skip
def test_wilson_proportions_against_prop_test(cells, measure, low, high):
    m = _table(**cells).measure(measure)
    assert m.ci_method == "wilson"
    assert m.ci_low == pytest.approx(low, rel=REL)
    assert m.ci_high == pytest.approx(high, rel=REL)


@pytest.mark.parametrize(
    ("measure", "low", "high"),
    [
        # binom.test(231, 258)$conf.int
        pytest.param("sensitivity", 0.85139766590721244, 0.92989342042764223, id="se"),
        # binom.test(54, 86)$conf.int
        pytest.param("specificity", 0.51695963766576725, 0.72977487458788648, id="sp"),
        # binom.test(231, 263)$conf.int
        pytest.param("ppv", 0.83259335314329164, 0.91526755556231965, id="ppv"),
        # binom.test(54, 81)$conf.int
        pytest.param("npv", 0.55317335012011715, 0.76756670654760606, id="npv"),
    ],
)
def test_clopper_pearson_proportions_against_binom_test(measure, low, high):
    m = _table(**LIVER, ci_method="clopper-pearson").measure(measure)
    assert m.ci_method == "clopper-pearson"
    assert m.ci_low == pytest.approx(low, rel=REL)
    assert m.ci_high == pytest.approx(high, rel=REL)


def test_alpha_changes_level_against_binom_test():
    # binom.test(231, 258, conf.level = 0.9)$conf.int
    m = _table(**LIVER, alpha=0.10, ci_method="clopper-pearson").sensitivity
    assert m.ci_level == pytest.approx(0.90)
    assert m.ci_low == pytest.approx(0.85857847844316226, rel=REL)
    assert m.ci_high == pytest.approx(0.92509913755120654, rel=REL)


# --------------------------------------------------------------------------- #
# Ratios against the formulas in R
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("cells", "measure", "estimate", "low", "high"),
    [
        pytest.param(LIVER, "lr_positive", 2.40625, 1.8227906278318322, 3.1764696252509919,
                     id="liver-lr+"),
        pytest.param(LIVER, "lr_negative", 0.16666666666666669, 0.11258965856552886,
                     0.24671695546186159, id="liver-lr-"),
        pytest.param(LIVER, "dor", 14.4375, 7.9896362987849079, 26.088973071490191,
                     id="liver-dor"),
        pytest.param(SCOTT, "lr_positive", 3.75372617906952, 3.3206884355074813,
                     4.2432346488051342, id="scott-lr+"),
        pytest.param(SCOTT, "lr_negative", 0.1308551747311828, 0.10506432351192251,
                     0.16297708091163113, id="scott-lr-"),
        pytest.param(SCOTT, "dor", 28.686111854428685, 21.518191656635153, 38.241736408693718,
                     id="scott-dor"),
    ],
)  # fmt: skip
def test_ratio_measures_against_simel_and_woolf_formulas_in_r(cells, measure, estimate, low, high):
    m = _table(**cells).measure(measure)
    assert m.estimate == pytest.approx(estimate, rel=1e-12)
    assert m.ci_low == pytest.approx(low, rel=REL)
    assert m.ci_high == pytest.approx(high, rel=REL)
    assert m.numerator is None and m.denominator is None
    assert m.note == ""


@pytest.mark.parametrize(
    ("cells", "measure", "estimate", "low", "high"),
    [
        # plogis(qlogis(0.3) + log(lrp) + c(0, -1, 1) * z * se_lrp), liver table
        pytest.param(LIVER, "ppv_adjusted", 0.50769230769230766, 0.43857946607560144,
                     0.57651238150032613, id="liver-ppv"),
        # plogis(-qlogis(0.3) - log(lrn) + c(0, -1, 1) * z * se_lrn), liver table
        pytest.param(LIVER, "npv_adjusted", 0.93333333333333335, 0.90437513697569405,
                     0.95396843688929012, id="liver-npv"),
        pytest.param(SCOTT, "ppv_adjusted", 0.61667315251658272, 0.5873144057930092,
                     0.6452050157969148, id="scott-ppv"),
        pytest.param(SCOTT, "npv_adjusted", 0.94689725469340724, 0.93471281456760447,
                     0.95691255558051491, id="scott-npv"),
    ],
)  # fmt: skip
def test_prevalence_adjusted_pv_against_mercaldo_logit_in_r(cells, measure, estimate, low, high):
    m = _table(**cells, prevalence=0.3).measure(measure)
    assert m.estimate == pytest.approx(estimate, rel=1e-12)
    assert m.ci_low == pytest.approx(low, rel=REL)
    assert m.ci_high == pytest.approx(high, rel=REL)
    assert m.ci_method == "logit (Mercaldo 2007)"
    assert "assumed prevalence 0.3" in m.note


def test_adjusted_pv_at_sample_prevalence_equals_sample_pv():
    # Bayes at the sample prevalence reproduces the sample PPV and NPV exactly.
    r = _table(**LIVER, prevalence=258 / 344)
    assert r.measure("ppv_adjusted").estimate == pytest.approx(r.ppv.estimate, rel=1e-12)
    assert r.measure("npv_adjusted").estimate == pytest.approx(r.npv.estimate, rel=1e-12)


def test_adjusted_rows_only_with_prevalence():
    assert [m.measure for m in _table(**LIVER).measures] == list(MEASURES[:-2])
    assert [m.measure for m in _table(**LIVER, prevalence=0.2).measures] == list(MEASURES)


# --------------------------------------------------------------------------- #
# Zero cells
# --------------------------------------------------------------------------- #
ZERO_FP = {"tp": 20, "fp": 0, "fn": 3, "tn": 15}  # specificity 1


def test_zero_false_positives_lr_positive_infinite_with_note():
    r = _table(**ZERO_FP)
    lr = r.measure("lr_positive")
    assert lr.estimate == math.inf
    assert math.isnan(lr.ci_low) and math.isnan(lr.ci_high)
    assert "infinite: no false positives (specificity = 1)" in lr.note
    assert "zero_cell_correction" in lr.note
    dor = r.measure("dor")
    assert dor.estimate == math.inf and math.isnan(dor.ci_low)
    assert "zero cell(s) FP" in dor.note
    # the LR- is finite and has its CI
    assert math.isfinite(r.measure("lr_negative").ci_low)
    # specificity 15/15 is a proportion: exact upper limit 1, no correction;
    # prop.test(15, 15, correct = FALSE)$conf.int -> 0.79611669896415138 1
    sp = r.specificity
    assert sp.estimate == 1.0 and sp.ci_high == 1.0
    assert sp.ci_low == pytest.approx(0.79611669896415138, rel=REL)
    assert sp.note == ""


def test_zero_false_negatives_lr_negative_zero_with_note():
    lr = _table(tp=20, fp=3, fn=0, tn=15).measure("lr_negative")
    assert lr.estimate == 0.0 and math.isnan(lr.ci_low)
    assert "is 0: no false negatives (sensitivity = 1)" in lr.note


def test_zero_true_positives_lr_positive_zero_and_dor_zero():
    r = _table(tp=0, fp=5, fn=10, tn=15)
    assert r.measure("lr_positive").estimate == 0.0
    assert "no true positives (sensitivity = 0)" in r.measure("lr_positive").note
    assert r.measure("dor").estimate == 0.0


def test_no_test_positives_ppv_undefined_lr_undefined():
    r = _table(tp=0, fp=0, fn=10, tn=15)
    ppv = r.ppv
    assert math.isnan(ppv.estimate) and math.isnan(ppv.ci_low)
    assert ppv.denominator == 0
    assert "denominator is zero (no case has score >= 0.5)" in ppv.note
    lr = r.measure("lr_positive")
    assert math.isnan(lr.estimate) and "undefined (0/0)" in lr.note


def test_no_test_negatives_npv_undefined():
    npv = _table(tp=10, fp=15, fn=0, tn=0).npv
    assert math.isnan(npv.estimate) and "no case has score < 0.5" in npv.note


def test_zero_cell_correction_against_r():
    # 0.5 added to every cell: tp 20.5, fp 0.5, fn 3.5, tn 15.5, then the formulas in R
    r = _table(**ZERO_FP, zero_cell_correction=0.5)
    expected = {
        "lr_positive": (27.333333333333332, 1.777039411374884, 420.42461541867323),
        "lr_negative": (0.15053763440860216, 0.056938779368021025, 0.39799903729698782),
        "dor": (181.57142857142858, 8.7225507911283984, 3779.6493781384379),
    }
    for name, (est, lo, hi) in expected.items():
        m = r.measure(name)
        assert (m.estimate, m.ci_low, m.ci_high) == pytest.approx((est, lo, hi), rel=REL)
        assert m.note.startswith("0.5 added to every cell (zero cell present)")
    # proportions never use the correction: prop.test(20, 23, correct = FALSE)$conf.int
    se = r.sensitivity
    assert se.estimate == 20 / 23 and se.numerator == 20 and se.denominator == 23
    assert (se.ci_low, se.ci_high) == pytest.approx(
        (0.67872517729904036, 0.95462340906368759), rel=REL
    )


def test_zero_cell_correction_not_applied_without_zero_cell():
    plain = _table(**LIVER)
    corrected = _table(**LIVER, zero_cell_correction=0.5)
    assert plain.measure("dor") == corrected.measure("dor")


# --------------------------------------------------------------------------- #
# From labels and scores
# --------------------------------------------------------------------------- #
def test_threshold_boundary_score_equal_to_threshold_is_positive():
    cm = confusion_matrix([1, 1, 0, 0], [0.5, 0.4999999, 0.5, 0.2], positive=1, threshold=0.5)
    assert (cm.tp, cm.fn, cm.fp, cm.tn) == (1, 1, 1, 1)
    assert cm.decision_rule == "index test positive iff score >= threshold"


def test_diagnostic_accuracy_reproduces_table_from_scores():
    y, s = _scores_for(**LIVER)
    r = diagnostic_accuracy(
        y, s, positive="acute", threshold=0.5, threshold_status="pre-specified",
        negative="chronic",
    )  # fmt: skip
    assert isinstance(r, AccuracyResult)
    c = r.confusion
    assert (c.tp, c.fp, c.fn, c.tn) == (231, 32, 27, 54)
    assert r.measures_frame().equals(_table(**LIVER).measures_frame())


def test_table_columns_and_dtypes():
    table = _table(**LIVER).measures_frame()
    assert list(table.columns) == [
        "measure", "estimate", "ci_low", "ci_high", "ci_level", "numerator", "denominator",
        "ci_method", "note",
    ]  # fmt: skip
    assert table["measure"].tolist() == list(MEASURES[:-2])
    assert str(table["numerator"].dtype) == "Int64"
    assert table.loc[table.measure == "sensitivity", "numerator"].item() == 231
    assert table.loc[table.measure == "sensitivity", "denominator"].item() == 258
    assert pd.isna(table.loc[table.measure == "dor", "numerator"].item())
    assert (table["ci_level"] == 0.95).all()


def test_to_frame_states_threshold_status_and_rule():
    frame = _table(**LIVER, threshold_status="exploratory").to_frame()
    assert (frame["threshold_status"] == "exploratory").all()
    assert (frame["threshold"] == 0.5).all()
    assert (frame["decision_rule"] == "index test positive iff score >= threshold").all()


def test_balanced_accuracy_has_no_ci_and_says_so():
    m = _table(**LIVER).measure("balanced_accuracy")
    assert m.estimate == pytest.approx((231 / 258 + 54 / 86) / 2, rel=1e-12)
    assert math.isnan(m.ci_low) and m.ci_method == "none"
    assert "not a single binomial proportion" in m.note


def test_confusion_table_layout_and_labels():
    cm = ConfusionMatrix(tp=231, fp=32, fn=27, tn=54, threshold=0.5, positive="acute",
                         negative="chronic")  # fmt: skip
    table = cm.matrix()
    assert table.index.name == "reference standard"
    assert table.columns.name == "index test (positive iff score >= 0.5)"
    assert table.loc["acute", "acute"] == 231 and table.loc["acute", "chronic"] == 27
    assert table.loc["chronic", "acute"] == 32 and table.loc["chronic", "chronic"] == 54
    with_margins = cm.matrix(margins=True)
    assert with_margins.loc["total", "total"] == 344
    assert with_margins.loc["acute", "total"] == 258


def test_confusion_long_frame():
    cm = ConfusionMatrix(tp=3, fp=2, fn=1, tn=4, threshold=0.25, positive=1, negative="0")
    frame = cm.to_frame()
    assert frame["cell"].tolist() == ["tp", "fn", "fp", "tn"]
    assert frame["count"].tolist() == [3, 1, 2, 4]
    assert frame["reference_standard"].tolist() == ["1", "1", "0", "0"]
    assert frame["index_test"].tolist() == ["1", "0", "1", "0"]
    assert (frame["decision_rule"] == "index test positive iff score >= threshold").all()


def test_default_negative_label():
    cm = confusion_matrix(["acute", "chronic"], [0.9, 0.1], positive="acute", threshold=0.5)
    assert cm.negative == "not acute"
    assert cm.matrix().index.tolist() == ["acute", "not acute"]


def test_threshold_objects_are_accepted_with_matching_status():
    y, s = _scores_for(**LIVER)
    t = prespecified(0.5, source="SAP v1.0, section 5.2")
    r = diagnostic_accuracy(y, s, positive="acute", threshold=t, threshold_status="pre-specified")
    assert r.threshold == 0.5 and r.threshold_status == "pre-specified"
    tj = youden(y, s, positive="acute")
    rj = diagnostic_accuracy(y, s, positive="acute", threshold=tj, threshold_status="exploratory")
    assert rj.threshold_status == "exploratory"


def test_flipping_positive_class_swaps_sensitivity_and_specificity():
    y, s = _scores_for(**LIVER)
    a = diagnostic_accuracy(y, s, positive="acute", threshold=0.5, threshold_status="exploratory")
    # negate scores so that "chronic" is the high-score class; threshold -0.5 + tiny
    b = diagnostic_accuracy(
        y, [-v for v in s], positive="chronic", threshold=-0.5 + 1e-9,
        threshold_status="exploratory",
    )  # fmt: skip
    assert a.sensitivity.estimate == b.specificity.estimate
    assert a.specificity.estimate == b.sensitivity.estimate
    assert a.measure("dor").estimate == pytest.approx(b.measure("dor").estimate, rel=1e-12)


# --------------------------------------------------------------------------- #
# Error paths
# --------------------------------------------------------------------------- #
GOOD = {"y_true": [1, 0, 1, 0], "y_score": [0.9, 0.1, 0.6, 0.4], "positive": 1}


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"threshold_status": "prespecified"}, StudyvalError,
                     "did you mean 'pre-specified'", id="status-typo"),
        pytest.param({"threshold_status": "final"}, StudyvalError,
                     "threshold_status='final' is not one of", id="status-unknown"),
        pytest.param({"threshold_status": None}, StudyvalError,
                     "threshold_status=None is not one of", id="status-none"),
        pytest.param({"threshold": float("nan")}, StudyvalError,
                     "threshold must be a finite number", id="threshold-nan"),
        pytest.param({"threshold": float("inf")}, StudyvalError,
                     "threshold must be a finite number", id="threshold-inf"),
        pytest.param({"threshold": "0.5"}, StudyvalError, "threshold must be a finite number",
                     id="threshold-string"),
        pytest.param({"y_score": [0.9, np.nan, 0.6, 0.4]}, StudyvalError,
                     "y_score has 1 non-finite value", id="nan-score"),
        pytest.param({"y_score": [0.9, 0.1, 0.6]}, StudyvalError,
                     "y_score has 3 values but y_true has 4", id="length-mismatch"),
        pytest.param({"y_true": [1, 1, 1, 1]}, EstimationError, "single class", id="one-class"),
        pytest.param({"positive": 2}, EstimationError, "positive=2 does not occur",
                     id="positive-absent"),
        pytest.param({"ci_method": "exact"}, StudyvalError, "ci_method='exact' is not one of",
                     id="ci-method"),
        pytest.param({"alpha": 1.0}, StudyvalError, r"alpha must be in \(0, 1\)", id="alpha"),
        pytest.param({"prevalence": 0.0}, StudyvalError, r"prevalence must be in \(0, 1\)",
                     id="prevalence-0"),
        pytest.param({"prevalence": "0.2"}, StudyvalError, "prevalence must be a number",
                     id="prevalence-str"),
        pytest.param({"zero_cell_correction": -0.5}, StudyvalError,
                     "zero_cell_correction must be a finite number >= 0", id="correction-neg"),
        pytest.param({"zero_cell_correction": True}, StudyvalError,
                     "zero_cell_correction must be a number", id="correction-bool"),
        pytest.param({"negative": ""}, StudyvalError, "negative must be a non-empty",
                     id="negative-blank"),
        pytest.param({"negative": "1"}, StudyvalError, "displays the same as positive",
                     id="negative-same-as-positive"),
    ],
)  # fmt: skip
def test_diagnostic_accuracy_errors(kwargs, exc, match):
    args = {**GOOD, "threshold": 0.5, "threshold_status": "pre-specified", **kwargs}
    with pytest.raises(exc, match=match):
        diagnostic_accuracy(**args)


def test_threshold_status_is_required():
    with pytest.raises(TypeError, match="threshold_status"):
        diagnostic_accuracy(**GOOD, threshold=0.5)  # type: ignore[call-arg]


def test_exploratory_threshold_cannot_be_reported_as_prespecified():
    t = youden(GOOD["y_true"], GOOD["y_score"], positive=1)
    with pytest.raises(StudyvalError, match="a threshold derived from the data is always"):
        diagnostic_accuracy(**GOOD, threshold=t, threshold_status="pre-specified")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"tp": -1}, "tp must be >= 0", id="negative-count"),
        pytest.param({"fn": 1.5}, "fn must be a whole number", id="fractional-count"),
        pytest.param({"threshold": math.inf}, "threshold must be a finite number", id="inf"),
    ],
)
def test_confusion_matrix_construction_errors(kwargs, match):
    base = {"tp": 1, "fp": 1, "fn": 1, "tn": 1, "threshold": 0.5, "positive": "a",
            "negative": "b"}  # fmt: skip
    with pytest.raises(StudyvalError, match=match):
        ConfusionMatrix(**{**base, **kwargs})


def test_accuracy_from_confusion_needs_both_reference_classes():
    cm = ConfusionMatrix(tp=5, fp=0, fn=1, tn=0, threshold=0.5, positive="a", negative="b")
    with pytest.raises(EstimationError, match="at least one reference-standard positive"):
        accuracy_from_confusion(cm, threshold_status="pre-specified")


def test_accuracy_from_confusion_rejects_other_objects():
    with pytest.raises(StudyvalError, match="confusion must be a ConfusionMatrix"):
        accuracy_from_confusion((1, 2, 3, 4), threshold_status="pre-specified")  # type: ignore[arg-type]


def test_unknown_measure_name_suggests():
    with pytest.raises(StudyvalError, match="did you mean 'sensitivity'"):
        _table(**LIVER).measure("sensitivty")


# --------------------------------------------------------------------------- #
# Cluster bootstrap
# --------------------------------------------------------------------------- #
BOOT_SEED = 20240611
PATIENTS = np.arange(72) // 2
# apply(res, 2, ...) of the module docstring: 2.5 % and 97.5 % quantiles and sd
CLUSTER_BOOT_R = {
    "sensitivity": (0.53833333333333333, 0.96637931034482782, 0.11643066173420748),
    "specificity": (0.72896075581395348, 0.97781249999999997, 0.068158460430408949),
    "ppv": (0.5, 0.96007407407407408, 0.11600797366991177),
    "npv": (0.76918604651162792, 0.9816037735849058, 0.062206116262295615),
    "accuracy": (0.70833333333333337, 0.95833333333333337, 0.06236962175141221),
    "balanced_accuracy": (0.68756856497539731, 0.95659048101999411, 0.070573214753987937),
    "prevalence": (0.20798611111111112, 0.5, 0.076896377801009358),
    "lr_positive": (2.5258241758241762, 37.505357142857143, 10.958623740551905),
    "lr_negative": (0.037061244494575138, 0.51326923076923092, 0.13689287167479985),
    "dor": (5.3818681318681323, 518.70000000000039, 153.89711315395587),
    "ppv_adjusted": (0.21914415134899976, 0.80647380881917741, 0.15342557708021384),
    "npv_adjusted": (0.94604710128374991, 0.99589897166394326, 0.014316042157800702),
}


def _clustered(**kwargs):
    y, s = _scores_for(20, 6, 5, 41)
    args = {"positive": "acute", "threshold": 0.5, "threshold_status": "pre-specified",
            "prevalence": 0.1, "zero_cell_correction": 0.5, "clusters": PATIENTS,
            "n_resamples": 200, "seed": BOOT_SEED, **kwargs}  # fmt: skip
    return diagnostic_accuracy(y, s, **args)


def test_exported_draws_are_the_engines_resamples():
    d = np.random.Generator(np.random.PCG64(BOOT_SEED)).integers(0, 36, size=(200, 36))
    counts = np.stack([np.bincount(row, minlength=36) for row in d])
    w = np.concatenate(list(resampling_weights(PATIENTS, n_resamples=200, seed=BOOT_SEED)))
    assert np.array_equal(w, counts[:, PATIENTS])


def test_cluster_bootstrap_against_R_same_resamples():
    r = _clustered()
    frame = r.bootstrap.to_frame().set_index("statistic")
    assert list(frame.index) == list(MEASURES)
    for name, (lo, hi, sd) in CLUSTER_BOOT_R.items():
        assert frame.loc[name, ["ci_low", "ci_high", "se"]].tolist() == pytest.approx(
            [lo, hi, sd], rel=1e-9
        )
        assert frame.loc[name, "n_failed"] == 0
        m = r.measure(name)
        assert (m.ci_low, m.ci_high) == pytest.approx((lo, hi), rel=1e-9)
    label = "patient-level percentile bootstrap (200 resamples)"
    assert r.ci_method == label and (r.measures_frame()["ci_method"] == label).all()


def test_cluster_bootstrap_keeps_estimates_counts_and_relevant_notes():
    plain = _clustered(clusters=None, n_resamples=None, seed=None)
    boot = _clustered()
    cols = ["measure", "estimate", "ci_level", "numerator", "denominator"]
    pd.testing.assert_frame_equal(plain.measures_frame()[cols], boot.measures_frame()[cols])
    notes = boot.measures_frame().set_index("measure")["note"]
    assert notes["balanced_accuracy"] == ""  # the bootstrap gives it an interval
    assert notes["ppv_adjusted"] == "at assumed prevalence 0.1 (Bayes' theorem)"
    assert plain.bootstrap is None and plain.ci_method == "wilson"
    assert math.isnan(plain.measure("balanced_accuracy").ci_low)


def test_cluster_bootstrap_with_infinite_estimate_and_zero_cell_note():
    # no false positive in the data: LR+ and DOR are infinite, no interval
    y, s = _scores_for(12, 0, 4, 20)
    r = diagnostic_accuracy(y, s, positive="acute", threshold=0.5,
                            threshold_status="pre-specified", clusters=np.arange(36) // 2,
                            seed=3, n_resamples=100)  # fmt: skip
    lr = r.measure("lr_positive")
    assert math.isinf(lr.estimate) and math.isnan(lr.ci_low)
    assert lr.note.endswith("; no bootstrap interval: the estimate is not finite")
    assert lr.ci_method == "patient-level percentile bootstrap (100 resamples)"
    assert "lr_positive" not in r.bootstrap.names and "dor" not in r.bootstrap.names
    assert r.measure("lr_negative").note == ""
    corrected = diagnostic_accuracy(y, s, positive="acute", threshold=0.5,
                                    threshold_status="pre-specified", zero_cell_correction=0.5,
                                    clusters=np.arange(36) // 2, seed=3,
                                    n_resamples=100)  # fmt: skip
    m = corrected.measure("lr_positive")
    assert math.isfinite(m.estimate) and m.ci_low < m.estimate < m.ci_high
    assert m.note == "0.5 added to every cell (zero cell present)"


def test_cluster_bootstrap_bca_and_row_order():
    a = _clustered(ci_method="bca", n_resamples=500, seed=1)
    assert a.ci_method == "patient-level BCa bootstrap (500 resamples)"
    y, s = _scores_for(20, 6, 5, 41)
    order = np.random.default_rng(2).permutation(72)
    b = diagnostic_accuracy(
        np.array(y)[order], np.array(s)[order], positive="acute", threshold=0.5,
        threshold_status="pre-specified", prevalence=0.1, zero_cell_correction=0.5,
        clusters=PATIENTS[order], n_resamples=500, seed=1, ci_method="bca",
    )  # fmt: skip
    pd.testing.assert_frame_equal(a.measures_frame(), b.measures_frame(), rtol=1e-12)


def test_cluster_bootstrap_warns_when_a_measure_often_fails():
    # three positive patients of twelve: resamples without a positive, sensitivity undefined
    y = ["acute"] * 6 + ["chronic"] * 18
    s = [0.9, 0.2, 0.8, 0.7, 0.6, 0.1] + [0.1, 0.6] * 9
    with pytest.warns(StatisticalWarning) as record:
        r = diagnostic_accuracy(y, s, positive="acute", threshold=0.5,
                                threshold_status="pre-specified",
                                clusters=np.arange(24) // 2, seed=4, n_resamples=400)  # fmt: skip
    assert any("'sensitivity' is undefined in" in str(w.message) for w in record)
    assert r.bootstrap["sensitivity"].n_failed > 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"clusters": None, "n_resamples": None}, r"seed= is used only",
                     id="seed-without-clusters"),
        pytest.param({"clusters": None, "seed": None}, r"n_resamples= is used only",
                     id="resamples-without-clusters"),
        pytest.param({"clusters": None, "n_resamples": None, "seed": None,
                      "ci_method": "percentile"}, r"needs clusters=", id="percentile-alone"),
        pytest.param({"ci_method": "wilson"}, r"ci_method must be 'percentile' or 'bca'",
                     id="wilson-with-clusters"),
        pytest.param({"seed": None}, r"seed= is required with clusters", id="no-seed"),
        pytest.param({"n_resamples": 1.5}, r"n_resamples must be an integer >= 2",
                     id="fractional-resamples"),
        pytest.param({"clusters": PATIENTS[:-2]}, r"clusters has 70 values", id="short"),
    ],
)  # fmt: skip
def test_cluster_bootstrap_option_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        _clustered(**kwargs)


# --------------------------------------------------------------------------- #
# Intention to diagnose (non-evaluable results counted as errors)
# --------------------------------------------------------------------------- #
def _cm(tp, fp, fn, tn):
    return ConfusionMatrix(tp=tp, fp=fp, fn=fn, tn=tn, threshold=0.5, positive="acute",
                           negative="chronic")  # fmt: skip


@pytest.mark.parametrize(
    ("cells", "u1", "u0", "ci_method", "expected"),
    [
        # the ovcf-chronicity demo, external set, DenseNet-121 at 0.5: TP 31, FN 8, FP 9, TN 31 and
        # one acute index vertebra the model could not score (failed segmentation):
        # prop.test(31, 40, correct = FALSE)$conf.int  (ITD sensitivity 31/40)
        # prop.test(31, 40, correct = FALSE)$conf.int  (ITD specificity 31/40, nothing added)
        pytest.param(
            (31, 9, 8, 31), 1, 0, "wilson",
            {"sensitivity": (31, 40, 0.62496903257689984, 0.87683908676459255),
             "specificity": (31, 40, 0.62496903257689984, 0.87683908676459255)},
            id="demo-one-failure",
        ),
        # TP 27, FN 3, FP 3, TN 27 with 2 non-evaluable positives and 3 negatives:
        # prop.test(27, 32, correct = FALSE)$conf.int; prop.test(27, 33, correct = FALSE)$conf.int
        pytest.param(
            (27, 3, 3, 27), 2, 3, "wilson",
            {"sensitivity": (27, 32, 0.68245850402469610, 0.93135579717494288),
             "specificity": (27, 33, 0.65611768365330092, 0.91389231791059344)},
            id="both-classes-wilson",
        ),
        # binom.test(27, 32)$conf.int; binom.test(27, 33)$conf.int
        pytest.param(
            (27, 3, 3, 27), 2, 3, "clopper-pearson",
            {"sensitivity": (27, 32, 0.67212123431795812, 0.94724943559786590),
             "specificity": (27, 33, 0.64539944054973108, 0.93021211633369005)},
            id="both-classes-clopper-pearson",
        ),
    ],
)  # fmt: skip
def test_intention_to_diagnose_against_prop_test_and_binom_test(cells, u1, u0, ci_method, expected):
    r = intention_to_diagnose(
        _cm(*cells), n_nonevaluable_positive=u1, n_nonevaluable_negative=u0,
        threshold_status="pre-specified", ci_method=ci_method,
    )  # fmt: skip
    for measure, (x, n, low, high) in expected.items():
        m = r.intention_to_diagnose.measure(measure)
        assert (m.numerator, m.denominator) == (x, n)
        assert m.estimate == pytest.approx(x / n, rel=1e-12)
        assert (m.ci_low, m.ci_high) == (pytest.approx(low, rel=REL), pytest.approx(high, rel=REL))
        assert m.ci_method == ci_method
    # the per-protocol rows are accuracy_from_confusion of the evaluable cases
    pp = accuracy_from_confusion(_cm(*cells), threshold_status="pre-specified", ci_method=ci_method)
    assert r.per_protocol == pp


def test_intention_to_diagnose_table_with_zero_non_evaluable_rows_equals_per_protocol():
    r = intention_to_diagnose(
        _cm(27, 3, 3, 27), n_nonevaluable_positive=0, n_nonevaluable_negative=0,
        threshold_status="pre-specified",
    )  # fmt: skip
    f = r.to_frame()
    assert list(f.columns) == [
        "analysis", "measure", "estimate", "ci_low", "ci_high", "ci_level", "numerator",
        "denominator", "n_nonevaluable", "ci_method", "note",
    ]  # fmt: skip
    assert list(f["analysis"]) == ["per-protocol"] * 2 + ["intention-to-diagnose"] * 2
    assert list(f["n_nonevaluable"]) == [0, 0, 0, 0]
    cols = ["estimate", "ci_low", "ci_high", "numerator", "denominator"]
    pd.testing.assert_frame_equal(
        f.iloc[:2][cols].reset_index(drop=True), f.iloc[2:][cols].reset_index(drop=True)
    )


def test_intention_to_diagnose_never_raises_accuracy():
    r = intention_to_diagnose(
        _cm(10, 2, 1, 12), n_nonevaluable_positive=3, n_nonevaluable_negative=1,
        threshold_status="pre-specified",
    )  # fmt: skip
    f = r.to_frame().set_index(["analysis", "measure"])
    for measure, u in (("sensitivity", 3), ("specificity", 1)):
        assert f.loc[("intention-to-diagnose", measure), "estimate"] < f.loc[
            ("per-protocol", measure), "estimate"
        ]
        assert f.loc[("intention-to-diagnose", measure), "n_nonevaluable"] == u
    cm = intention_to_diagnose_confusion(_cm(10, 2, 1, 12), n_nonevaluable_positive=3,
                                         n_nonevaluable_negative=1)  # fmt: skip
    assert (cm.tp, cm.fp, cm.fn, cm.tn, cm.threshold) == (10, 3, 4, 12, 0.5)


@pytest.mark.parametrize(
    ("u1", "u0", "error", "match"),
    [
        pytest.param(-1, 0, StudyvalError, "n_nonevaluable_positive must be >= 0", id="negative"),
        pytest.param(0, 1.5, StudyvalError, "n_nonevaluable_negative", id="fractional"),
    ],
)
def test_intention_to_diagnose_bad_counts(u1, u0, error, match):
    with pytest.raises(error, match=match):
        intention_to_diagnose(
            _cm(1, 1, 1, 1), n_nonevaluable_positive=u1, n_nonevaluable_negative=u0,
            threshold_status="pre-specified",
        )  # fmt: skip
