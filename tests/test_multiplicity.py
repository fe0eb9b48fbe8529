"""Multiplicity adjustments against R's p.adjust (R 4.2, stats), and their invariants."""

from __future__ import annotations

import numpy as np
import pytest

from studyval.analysis.multiplicity import MULTIPLICITY_METHODS, adjust_p_values
from studyval.errors import StudyvalError

P5 = [0.01, 0.04, 0.03, 0.005, 0.20]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # p <- c(0.01, 0.04, 0.03, 0.005, 0.20); p.adjust(p, "holm")
        pytest.param("holm", [0.04, 0.09, 0.09, 0.025, 0.20], id="holm"),
        # p.adjust(p, "hochberg")
        pytest.param("hochberg", [0.04, 0.08, 0.08, 0.025, 0.20], id="hochberg"),
        # p.adjust(p, "bonferroni")
        pytest.param("bonferroni", [0.05, 0.20, 0.15, 0.025, 1.0], id="bonferroni"),
    ],
)
def test_adjusted_p_values_against_r_p_adjust(method, expected):
    r = adjust_p_values(P5, method=method)
    np.testing.assert_allclose(r.hypotheses_frame()["p_adjusted"], expected, rtol=1e-6)


def test_holm_of_the_vcf_demo_primary_p_values_against_r():
    # p.adjust(c(0.148935, 0.100109), "holm")  ->  0.200218 0.200218
    r = adjust_p_values([0.148935, 0.100109], method="holm", hypotheses=["detection", "referral"])
    f = r.hypotheses_frame()
    np.testing.assert_allclose(f["p_adjusted"], [0.200218, 0.200218], rtol=1e-6)
    assert list(f["order"]) == [2, 1] and r.n_rejected == 0


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        # p.adjust(c(0.03, 0.03, 0.04), "holm")  ->  0.09 0.09 0.09
        pytest.param("holm", [0.09, 0.09, 0.09], id="holm-ties"),
        # p.adjust(c(0.03, 0.03, 0.04), "hochberg")  ->  0.04 0.04 0.04
        pytest.param("hochberg", [0.04, 0.04, 0.04], id="hochberg-ties"),
    ],
)
def test_ties_against_r(method, expected):
    r = adjust_p_values([0.03, 0.03, 0.04], method=method)
    np.testing.assert_allclose(r.hypotheses_frame()["p_adjusted"], expected, rtol=1e-6)


def test_fixed_sequence_carries_the_largest_earlier_p_forward():
    # hierarchical testing: H2 is tested only if H1 is rejected; adjusted p = running maximum
    r = adjust_p_values([0.04, 0.01, 0.30], method="fixed-sequence", hypotheses=["a", "b", "c"])
    f = r.hypotheses_frame()
    assert list(f["p_adjusted"]) == [0.04, 0.04, 0.30]
    assert list(f["reject"]) == [True, True, False] and list(f["order"]) == [1, 2, 3]
    stop = adjust_p_values([0.06, 0.001], method="fixed-sequence").hypotheses_frame()
    assert list(stop["reject"]) == [False, False]  # the first failure stops the sequence


@pytest.mark.parametrize("method", MULTIPLICITY_METHODS)
def test_adjusted_never_below_raw_and_single_hypothesis_unchanged(method):
    f = adjust_p_values(P5, method=method).hypotheses_frame()
    assert (f["p_adjusted"] >= f["p_value"] - 1e-15).all() and (f["p_adjusted"] <= 1).all()
    one = adjust_p_values([0.0312], method=method).hypotheses_frame()
    assert one["p_adjusted"].iloc[0] == pytest.approx(0.0312)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"p_values": [0.1, 1.2], "method": "holm"}, r"p_values\[1\]", id="above-one"),
        pytest.param({"p_values": [0.1, float("nan")], "method": "holm"}, "undefined", id="nan"),
        pytest.param({"p_values": [], "method": "holm"}, "non-empty", id="empty"),
        pytest.param({"p_values": [0.1], "method": "holms"}, "did you mean 'holm'", id="typo"),
        pytest.param(
            {"p_values": [0.1, 0.2], "method": "holm", "hypotheses": ["a"]}, "1 names", id="names"
        ),
        pytest.param(
            {"p_values": [0.1, 0.2], "method": "holm", "hypotheses": ["a", "a"]},
            "distinct",
            id="duplicate-names",
        ),
    ],
)
def test_bad_inputs_are_named(kwargs, match):
    with pytest.raises(StudyvalError, match=match):
        adjust_p_values(**kwargs)
