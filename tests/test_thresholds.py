"""Tests for studyval.analysis.thresholds.

Oracle: R 4.x with pROC 1.18.0::

    library(pROC)
    r <- roc(y, score, levels = c("chronic", "acute"), direction = "<", quiet = TRUE)
    coords(r, "best", best.method = "youden", transpose = FALSE)

Documented difference: pROC reports the *midpoint* between adjacent distinct
scores as its threshold; studyval reports an observed score (the smallest
score above pROC's midpoint) with the rule "positive iff score >= threshold".
Both classify every observed score the same way, so sensitivity and
specificity must agree exactly. On ties pROC returns every maximiser;
studyval returns the smallest threshold among them.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from studyval.analysis.thresholds import (
    DECISION_RULE,
    Threshold,
    prespecified,
    youden,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

ACUTE = [0.86, 0.17, 0.62, 0.64, 0.61, 0.85, 0.79, 0.66, 0.75, 0.71, 0.68, 0.68, 0.71,
         0.62, 0.50, 0.51, 0.61, 0.60, 0.59, 0.72, 0.76, 0.49, 0.99, 0.57, 0.96]  # fmt: skip
CHRONIC = [0.42, 0.39, 0.10, 0.42, 0.31, 0.56, 0.34, 0.19, 0.29, 0.32, 0.60, 0.55, 0.24,
           0.37, 0.40, 0.58, 0.66, 0.48, 0.72, 0.34, 0.25, 0.34, 0.59, 0.23, 0.25]  # fmt: skip
Y = ["acute"] * 25 + ["chronic"] * 25
S = ACUTE + CHRONIC


def _smallest_score_above(scores, t):
    arr = np.asarray(scores)
    return float(arr[arr > t].min())


def test_youden_against_pROC_coords_best():
    # coords(roc(Y, S, levels = c("chronic", "acute"), direction = "<"), "best",
    #        best.method = "youden", transpose = FALSE)
    #   threshold 0.48499999999999999, specificity 0.72, sensitivity 0.96
    pROC_threshold, pROC_sp, pROC_se = 0.48499999999999999, 0.72, 0.96
    t = youden(Y, S, positive="acute")
    assert t.value == _smallest_score_above(S, pROC_threshold) == 0.49
    assert t.sensitivity == pytest.approx(pROC_se, rel=1e-12)
    assert t.specificity == pytest.approx(pROC_sp, rel=1e-12)
    assert t.j == pytest.approx(pROC_se + pROC_sp - 1, rel=1e-12)
    assert t.n_maximisers == 1
    assert (t.n_positive, t.n_negative) == (25, 25)


def test_youden_ties_choose_smallest_threshold_against_pROC():
    # y <- c("a","a","b","a","b","b"); s <- c(0.9, 0.8, 0.7, 0.6, 0.5, 0.4)
    # coords(roc(y, s, levels = c("b","a"), direction = "<"), "best",
    #        best.method = "youden", transpose = FALSE)
    #   row 1: threshold 0.55, specificity 0.6666667, sensitivity 1
    #   row 2: threshold 0.75, specificity 1,         sensitivity 0.6666667
    y = ["a", "a", "b", "a", "b", "b"]
    s = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    t = youden(y, s, positive="a")
    assert t.n_maximisers == 2
    assert t.value == _smallest_score_above(s, 0.55) == 0.6  # the smaller of pROC's two
    assert t.sensitivity == 1.0
    assert t.specificity == pytest.approx(2 / 3, rel=1e-12)


def test_youden_is_always_exploratory():
    t = youden(Y, S, positive="acute")
    assert t.status == "exploratory"
    assert t.method == "Youden J"
    assert t.source is None
    assert t.decision_rule == DECISION_RULE == "index test positive iff score >= threshold"


def test_youden_flipping_labels_and_scores_keeps_j():
    # Swapping which class is positive and negating the scores gives the same J.
    t1 = youden(Y, S, positive="acute")
    t2 = youden(Y, [-v for v in S], positive="chronic")
    assert t2.j == pytest.approx(t1.j, rel=1e-12)


def test_youden_perfect_separation():
    t = youden([1, 1, 0, 0], [0.9, 0.8, 0.3, 0.1], positive=1)
    assert (t.value, t.sensitivity, t.specificity, t.j) == (0.8, 1.0, 1.0, 1.0)


def test_youden_uninformative_scores_warn():
    with pytest.warns(StatisticalWarning, match="maximal Youden J is 0"):
        t = youden([1, 0, 1, 0], [0.5, 0.5, 0.5, 0.5], positive=1)
    assert t.j == 0.0 and t.value == 0.5


def test_youden_does_not_warn_when_informative():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        youden(Y, S, positive="acute")


@pytest.mark.parametrize(
    ("y", "s", "exc", "match"),
    [
        pytest.param(
            [1, 0, 1], [0.2, np.nan, 0.4], StudyvalError, "non-finite", id="nan-score"
        ),
        pytest.param([1, 0, 1], [0.2, 0.3], StudyvalError, "has 2 values but y_true has 3",
                     id="length"),
        pytest.param([1, 1, 1], [0.2, 0.3, 0.4], EstimationError, "single class", id="one-class"),
        pytest.param([0, 2, 2], [0.2, 0.3, 0.4], EstimationError, "positive=1 does not occur",
                     id="positive-absent"),
    ],
)  # fmt: skip
def test_youden_errors(y, s, exc, match):
    with pytest.raises(exc, match=match):
        youden(y, s, positive=1)


# --------------------------------------------------------------------------- #
# prespecified and the Threshold invariants
# --------------------------------------------------------------------------- #
def test_prespecified_records_source():
    t = prespecified(0.5, source="SAP v1.0, section 5.2")
    assert t == Threshold(value=0.5, status="pre-specified", source="SAP v1.0, section 5.2")
    assert t.method is None and t.sensitivity is None
    assert float(t) == 0.5
    frame = t.to_frame()
    assert frame.loc[0, "status"] == "pre-specified"
    assert frame.loc[0, "decision_rule"] == DECISION_RULE


def test_data_derived_threshold_cannot_be_relabelled_prespecified():
    t = youden(Y, S, positive="acute")
    with pytest.raises(StudyvalError, match="cannot relabel an exploratory threshold"):
        prespecified(t, source="SAP")  # type: ignore[arg-type]
    with pytest.raises(StudyvalError, match="always exploratory and cannot be labelled"):
        dataclasses.replace(t, status="pre-specified", source="SAP")


def test_threshold_is_frozen():
    t = prespecified(0.5, source="SAP")
    with pytest.raises(dataclasses.FrozenInstanceError):
        t.status = "exploratory"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"value": 0.5, "status": "pre-specified"}, "needs a source", id="no-source"),
        pytest.param({"value": 0.5, "status": "pre-specified", "source": "  "}, "needs a source",
                     id="blank-source"),
        pytest.param({"value": 0.5, "status": "pre-specified", "source": "SAP",
                      "sensitivity": 0.9}, "data-derived field", id="prespecified-with-data"),
        pytest.param({"value": 0.5, "status": "exploratory"}, "needs the method",
                     id="exploratory-no-method"),
        pytest.param({"value": 0.5, "status": "prespecified", "source": "SAP"},
                     "did you mean 'pre-specified'", id="status-typo"),
        pytest.param({"value": float("nan"), "status": "pre-specified", "source": "SAP"},
                     "must be a finite number", id="nan-value"),
        pytest.param({"value": 0.5, "status": "pre-specified", "source": "SAP",
                      "decision_rule": "positive iff score > threshold"},
                     "studyval uses no other rule", id="other-rule"),
    ],
)  # fmt: skip
def test_threshold_construction_errors(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        Threshold(**kwargs)


@pytest.mark.parametrize(
    ("value", "match"),
    [
        pytest.param(float("inf"), "must be a finite number", id="inf"),
        pytest.param(float("nan"), "must be a finite number", id="nan"),
        pytest.param("0.5", "must be a finite number", id="string"),
        pytest.param(True, "must be a finite number", id="bool"),
        pytest.param(None, "must be a finite number", id="none"),
    ],
)
def test_prespecified_errors(value, match):
    with pytest.raises(StudyvalError, match=match):
        prespecified(value, source="SAP")


def test_prespecified_rejects_threshold_object():
    with pytest.raises(StudyvalError, match="already a pre-specified Threshold"):
        prespecified(prespecified(0.5, source="SAP"), source="SAP")  # type: ignore[arg-type]
