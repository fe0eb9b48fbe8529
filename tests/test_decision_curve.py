"""Tests for studyval.analysis.decision_curve.

Oracles
-------
* Hand computation on a 10-patient example (below, with the arithmetic).
* The Python package ``dcurves`` 1.1.7 (a development oracle only; not needed
  to run these tests), on scikit-learn's breast-cancer data: two logistic
  models fitted on the even rows, predictions on the 284 odd rows (linear
  predictors to 6 significant digits, ``p = expit(lp)``; the same data as
  ``tests/test_calibration.py``). The call, in a separate virtual environment::

      import pandas as pd
      from dcurves import dca
      df = pd.DataFrame({"y": BC.y, "a": expit(BC.lp_a), "b": expit(BC.lp_b)})
      res = dca(data=df, outcome="y", modelnames=["a", "b"],
                thresholds=[i / 100 for i in range(1, 100)])
      res[["model", "threshold", "net_benefit", "net_intervention_avoided"]]

  dcurves names the reference strategies ``"all"``/``"none"`` and reports
  interventions avoided per patient (``nper=1``); ours are per 100.
* The closed form of treat all, :math:`\\pi - (1 - \\pi)\\,t/(1 - t)`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from studyval.analysis.decision_curve import (
    DEFAULT_THRESHOLDS,
    TREAT_ALL,
    TREAT_NONE,
    DecisionCurveResult,
    NetBenefitDifference,
    net_benefit,
    net_benefit_difference,
    threshold_grid,
)
from studyval.errors import EstimationError, StudyvalError

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #


# scikit-learn's breast-cancer data, held-out odd rows (see the module docstring); shared with
# the other test file that uses it, in tests/data/breast_cancer_holdout.csv.
BC = pd.read_csv(Path(__file__).parent / "data" / "breast_cancer_holdout.csv")
Y = BC["y"].to_numpy(int)
PA = expit(BC["lp_a"].to_numpy(float))
PB = expit(BC["lp_b"].to_numpy(float))

# dcurves 1.1.7, dca(...) as in the module docstring; sprintf-like repr of the floats:
# (threshold, model) -> (net_benefit, net_intervention_avoided)
DCURVES = {
    (0.05, "a"): (0.36045218680504076, 0.10211267605633777),
    (0.1, "a"): (0.34898278560250390, 0.26760563380281727),
    (0.2, "a"): (0.35211267605633800, 0.47183098591549300),
    (0.3, "a"): (0.33148893360160964, 0.48239436619718318),
    (0.5, "a"): (0.29929577464788731, 0.52464788732394374),
    (0.7, "a"): (0.22887323943661972, 0.54476861167002022),
    (0.9, "a"): (0.10563380281690139, 0.58137715179968696),
    (0.05, "b"): (0.35507783543365457, 0.0),
    (0.1, "b"): (0.32785602503912359, 0.07746478873239449),
    (0.2, "b"): (0.26936619718309862, 0.14084507042253547),
    (0.3, "b"): (0.21981891348088525, 0.22183098591549297),
    (0.5, "b"): (0.04225352112676053, 0.26760563380281699),
    (0.7, "b"): (-0.03873239436619719, 0.43008048289738443),
    (0.9, "b"): (-0.01760563380281692, 0.56768388106416279),
    (0.05, "all"): (0.35507783543365457, 0.0),
    (0.1, "all"): (0.31924882629107976, 0.0),
    (0.2, "all"): (0.23415492957746475, 0.0),
    (0.3, "all"): (0.12474849094567397, 0.0),
    (0.5, "all"): (-0.22535211267605643, 0.0),
    (0.7, "all"): (-1.04225352112676073, 0.0),
    (0.9, "all"): (-5.12676056338028285, 0.0),
    (0.05, "none"): (0.0, -6.74647887323943607),
    (0.1, "none"): (0.0, -2.87323943661971759),
    (0.2, "none"): (0.0, -0.93661971830985902),
    (0.3, "none"): (0.0, -0.29107981220657259),
    (0.5, "none"): (0.0, 0.22535211267605643),
    (0.7, "none"): (0.0, 0.44668008048289753),
    (0.9, "none"): (0.0, 0.56964006259780908),
}
OURS = {"a": "a", "b": "b", "all": TREAT_ALL, "none": TREAT_NONE}


@pytest.fixture(scope="module")
def bc_curves() -> pd.DataFrame:
    return net_benefit(Y, {"a": PA, "b": PB}, positive=1).to_frame()


@pytest.mark.parametrize(("threshold", "model"), list(DCURVES))
def test_against_dcurves(bc_curves, threshold, model):
    f = bc_curves
    row = f[(f["model"] == OURS[model]) & np.isclose(f["threshold"], threshold)]
    assert len(row) == 1
    nb, avoided = DCURVES[(threshold, model)]
    assert row["net_benefit"].iloc[0] == pytest.approx(nb, rel=1e-12, abs=1e-15)
    assert row["interventions_avoided_per_100"].iloc[0] == pytest.approx(
        100 * avoided, rel=1e-12, abs=1e-12
    )


# Hand-computed: 10 patients, 4 positive (prevalence 0.4).
#   y  = 1    1    1    1    0    0    0    0    0    0
#   p  = 0.9  0.7  0.35 0.2  0.6  0.3  0.3  0.1  0.05 0.02
# t = 0.25 (odds 1/3): treated p >= 0.25: TP = 3 (0.9, 0.7, 0.35), FP = 3 (0.6, 0.3, 0.3)
#   NB = 3/10 - 3/10 * 1/3 = 0.2; treat all: 0.4 - 0.6/3 = 0.2; avoided = 0
#   sNB = 0.2 / 0.4 = 0.5
# t = 0.5 (odds 1): TP = 2, FP = 1: NB = 0.2 - 0.1 = 0.1; treat all 0.4 - 0.6 = -0.2
#   avoided per 100 = 100 * (0.1 + 0.2) / 1 = 30; treat none: 100 * 0.2 = 20
# t = 0.8 (odds 4): TP = 1, FP = 0: NB = 0.1; treat all 0.4 - 2.4 = -2.0
#   avoided = 100 * 2.1 / 4 = 52.5
Y10 = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
P10 = np.array([0.9, 0.7, 0.35, 0.2, 0.6, 0.3, 0.3, 0.1, 0.05, 0.02])


def test_hand_computed():
    r = net_benefit(Y10, {"m": P10}, positive=1, thresholds=[0.25, 0.5, 0.8])
    f = r.to_frame().set_index(["model", "threshold"])
    m = f.loc["m"]
    np.testing.assert_allclose(m["net_benefit"], [0.2, 0.1, 0.1], rtol=1e-14)
    np.testing.assert_allclose(m["standardized_net_benefit"], [0.5, 0.25, 0.25], rtol=1e-14)
    np.testing.assert_allclose(
        m["interventions_avoided_per_100"], [0.0, 30.0, 52.5], rtol=1e-13, atol=1e-12
    )
    assert list(m["tp"]) == [3, 2, 1]
    assert list(m["fp"]) == [3, 1, 0]
    a = f.loc[TREAT_ALL]
    np.testing.assert_allclose(a["net_benefit"], [0.2, -0.2, -2.0], rtol=1e-14)
    assert list(a["tp"]) == [4, 4, 4] and list(a["fp"]) == [6, 6, 6]
    assert list(f.loc[TREAT_NONE, "net_benefit"]) == [0.0, 0.0, 0.0]
    assert f.loc[(TREAT_NONE, 0.5), "interventions_avoided_per_100"] == pytest.approx(20.0)
    assert (f["n"] == 10).all()
    assert r.prevalence == 0.4
    assert r.n_events == 4


def test_threshold_ties_count_as_treated():
    """Decision rule p >= t: a prediction equal to the threshold is treated (as dcurves)."""
    r = net_benefit(Y10, {"m": P10}, positive=1, thresholds=[0.3, 0.35])
    m = r.to_frame().query("model == 'm'")
    assert list(m["fp"]) == [3, 1]  # 0.6, 0.3, 0.3 at t = 0.3; 0.6 at t = 0.35
    assert list(m["tp"]) == [3, 3]


def test_default_thresholds_are_exact_decimals():
    assert DEFAULT_THRESHOLDS.size == 99
    assert DEFAULT_THRESHOLDS[5] == 0.06  # np.arange(0.01, 1, 0.01)[5] is 0.060000000000000005
    r = net_benefit(Y10, {"m": np.full(10, 0.06)}, positive=1)
    m = r.to_frame().query("model == 'm' and threshold == 0.06")
    assert int(m["tp"].iloc[0]) == 4


def test_threshold_grid_against_R_seq():
    """The plan grid of ovcf-chronicity, against R's ``seq`` rounded to the decimals.

    R 4.2::

        x <- round(seq(0.05, 0.95, by = 0.01), 10)
        length(x)                               # 91
        sprintf("%.17g", x[c(1, 3, 8, 91)])     # "0.050000000000000003" "0.070000000000000007"
                                                # "0.12" "0.94999999999999996"
        sum(x != seq(0.05, 0.95, by = 0.01))    # 29: unrounded, seq() misses 29 decimals
    """
    g = threshold_grid(0.05, 0.95, 0.01)
    assert g.size == 91
    assert [g[0], g[2], g[7], g[90]] == [0.05, 0.07, 0.12, 0.95]  # the floats R prints above
    assert np.array_equal(g, np.arange(5, 96) / 100)  # every threshold the float of its decimal
    assert not g.flags.writeable
    assert int((np.arange(0.05, 0.95 + 0.005, 0.01) != g).sum()) > 0  # what the rounding fixes


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param((0.1, 0.5, 0.1), [0.1, 0.2, 0.3, 0.4, 0.5], id="stop-included"),
        pytest.param((0.2, 0.95, 0.2), [0.2, 0.4, 0.6, 0.8], id="stop-off-the-grid"),
        pytest.param((0.3, 0.31, 0.5), [0.3], id="step-beyond-stop"),
    ],
)
def test_threshold_grid_ends_at_stop(args, expected):
    assert threshold_grid(*args).tolist() == expected


@pytest.mark.parametrize(
    ("args", "match"),
    [
        pytest.param((0.0, 0.5, 0.1), "0 < start < stop < 1", id="start-zero"),
        pytest.param((0.5, 0.4, 0.1), "0 < start < stop < 1", id="reversed"),
        pytest.param((0.1, 1.0, 0.1), "0 < start < stop < 1", id="stop-one"),
        pytest.param((0.1, 0.5, 0.0), "step must be > 0", id="zero-step"),
        pytest.param((0.1, float("nan"), 0.1), "stop must be finite", id="nan-stop"),
        pytest.param((0.1, "0.5", 0.1), "stop must be a number", id="text-stop"),
    ],
)
def test_threshold_grid_bad_arguments(args, match):
    with pytest.raises(StudyvalError, match=match):
        threshold_grid(*args)


def test_treat_all_closed_form(bc_curves):
    f = bc_curves[bc_curves["model"] == TREAT_ALL]
    prev = Y.mean()
    t = f["threshold"].to_numpy()
    np.testing.assert_allclose(f["net_benefit"], prev - (1 - prev) * t / (1 - t), rtol=1e-12)
    np.testing.assert_allclose(f["standardized_net_benefit"], f["net_benefit"] / prev)
    assert (f["interventions_avoided_per_100"] == 0).all()


def test_frame_layout(bc_curves):
    f = bc_curves
    assert list(f.columns) == [
        "model",
        "threshold",
        "net_benefit",
        "standardized_net_benefit",
        "interventions_avoided_per_100",
        "tp",
        "fp",
        "n",
    ]
    assert list(f["model"].unique()) == ["a", "b", TREAT_ALL, TREAT_NONE]
    assert len(f) == 4 * 99
    # a perfect-information bound: net benefit never exceeds the prevalence
    assert (f["net_benefit"] <= Y.mean() + 1e-15).all()


def test_result_object():
    r = net_benefit(Y10, {"m": P10}, positive=1, thresholds=[0.5])
    assert isinstance(r, DecisionCurveResult)
    assert r.models == ("m", TREAT_ALL, TREAT_NONE)
    assert r.decision_rule == "treat if predicted probability >= threshold"
    pd.testing.assert_frame_equal(r.to_frame(), r.to_frame())
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        r.net_benefit[0, 0] = 1.0


def test_string_labels():
    labels = np.where(Y10 == 1, "acute", "chronic")
    a = net_benefit(labels, {"m": P10}, positive="acute", thresholds=[0.25, 0.5])
    b = net_benefit(Y10, {"m": P10}, positive=1, thresholds=[0.25, 0.5])
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())


@pytest.mark.parametrize(
    ("thresholds", "match"),
    [
        pytest.param([0.0, 0.5], "strictly between 0 and 1.*position 0", id="zero"),
        pytest.param([0.5, 1.0], "strictly between 0 and 1.*position 1", id="one"),
        pytest.param([-0.1], "strictly between 0 and 1", id="negative"),
        pytest.param([0.2, np.nan], "strictly between 0 and 1.*position 1", id="nan"),
        pytest.param([0.3, 0.2], "strictly increasing.*position 1", id="decreasing"),
        pytest.param([0.3, 0.3], "strictly increasing", id="duplicate"),
        pytest.param([], "non-empty", id="empty"),
        pytest.param([[0.1, 0.2]], "1-D", id="two-d"),
    ],
)
def test_bad_thresholds(thresholds, match):
    with pytest.raises(StudyvalError, match=match):
        net_benefit(Y10, {"m": P10}, positive=1, thresholds=thresholds)


def _with(i: int, value: float) -> np.ndarray:
    p = P10.copy()
    p[i] = value
    return p


@pytest.mark.parametrize(
    ("probs", "match"),
    [
        pytest.param({}, "non-empty mapping", id="no-models"),
        pytest.param({TREAT_ALL: P10}, "reserved", id="reserved-all"),
        pytest.param({TREAT_NONE: P10}, "reserved", id="reserved-none"),
        pytest.param(
            {"m": _with(3, np.nan)}, "probs\\['m'\\] has 1 missing .*position 3", id="nan"
        ),
        pytest.param({"m": _with(2, 1.5)}, "outside, first at position 2", id="above-one"),
        pytest.param({"m": _with(6, -0.01)}, "outside, first at position 6", id="negative"),
        pytest.param({"m": P10[:8]}, "has 8 values but y_true has 10", id="length"),
        pytest.param({"m": ["x"] * 10}, "numeric", id="strings"),
        pytest.param({1: P10, "1": P10}, "distinct", id="duplicate-names"),
    ],
)
def test_bad_probabilities(probs, match):
    with pytest.raises(StudyvalError, match=match):
        net_benefit(Y10, probs, positive=1, thresholds=[0.5])


def test_probabilities_of_zero_and_one_are_allowed():
    p = _with(0, 1.0)
    p[9] = 0.0
    r = net_benefit(Y10, {"m": p}, positive=1, thresholds=[0.5])
    assert r.to_frame().loc[0, "tp"] == 2


def test_single_class_raises():
    with pytest.raises(EstimationError, match="single class"):
        net_benefit(np.zeros(10), {"m": P10}, positive=0, thresholds=[0.5])


# --------------------------------------------------------------------------- #
# Difference in net benefit with bootstrap intervals
# --------------------------------------------------------------------------- #
T5 = [0.05, 0.1, 0.2, 0.3, 0.5]


@pytest.fixture(scope="module")
def diff_ab() -> NetBenefitDifference:
    return net_benefit_difference(Y, PA, PB, positive=1, thresholds=T5, n_resamples=200, seed=7)


def test_difference_point_estimates(diff_ab):
    expected = [DCURVES[(t, "a")][0] - DCURVES[(t, "b")][0] for t in T5]
    np.testing.assert_allclose(diff_ab.difference, expected, rtol=1e-12)
    np.testing.assert_allclose(diff_ab.net_benefit_a, [DCURVES[(t, "a")][0] for t in T5])
    np.testing.assert_allclose(diff_ab.net_benefit_b, [DCURVES[(t, "b")][0] for t in T5])
    f = diff_ab.to_frame()
    assert list(f.columns) == [
        "model_a",
        "model_b",
        "threshold",
        "net_benefit_a",
        "net_benefit_b",
        "difference",
        "se",
        "ci_low",
        "ci_high",
        "ci_level",
        "ci_method",
    ]
    assert (f["ci_method"] == "bootstrap percentile").all()
    assert diff_ab.n_clusters == 284
    assert diff_ab.n_resamples == 200


def test_difference_intervals(diff_ab):
    d = diff_ab
    assert np.all(d.ci_low <= d.difference) and np.all(d.difference <= d.ci_high)
    # model a is clearly better from t = 0.2 on (see the decision curve)
    assert np.all(d.ci_low[2:] > 0)
    # at t = 0.05 model b treats everybody and a nearly so: a small difference
    assert abs(d.difference[0]) < 0.01


def test_swapping_models_flips_the_sign(diff_ab):
    ba = net_benefit_difference(
        Y, PB, PA, positive=1, thresholds=T5, n_resamples=200, seed=7, labels=("b", "a")
    )
    np.testing.assert_allclose(ba.difference, -diff_ab.difference, rtol=1e-12)
    np.testing.assert_allclose(ba.ci_low, -diff_ab.ci_high, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ba.ci_high, -diff_ab.ci_low, rtol=1e-10, atol=1e-14)
    assert (ba.model_a, ba.model_b) == ("b", "a")


def test_identical_models_differ_by_exactly_zero():
    d = net_benefit_difference(Y, PA, PA, positive=1, thresholds=T5, n_resamples=50, seed=1)
    assert np.all(d.difference == 0)
    assert np.all(d.ci_low == 0) and np.all(d.ci_high == 0)


def test_clusters_resample_patients():
    """Rows duplicated per patient and resampled by patient = one row per patient."""
    kw = {"positive": 1, "thresholds": T5, "n_resamples": 100, "seed": 3}
    patient = net_benefit_difference(Y, PA, PB, clusters=np.arange(Y.size), **kw)
    plain = net_benefit_difference(Y, PA, PB, **kw)
    np.testing.assert_array_equal(patient.ci_low, plain.ci_low)
    assert patient.ci_method == "cluster bootstrap percentile"
    ids = np.repeat(np.arange(Y.size), 2)
    dup = net_benefit_difference(
        np.repeat(Y, 2), np.repeat(PA, 2), np.repeat(PB, 2), clusters=ids, **kw
    )
    np.testing.assert_allclose(dup.difference, patient.difference, rtol=1e-12)
    np.testing.assert_allclose(dup.ci_low, patient.ci_low, rtol=1e-12)
    np.testing.assert_allclose(dup.ci_high, patient.ci_high, rtol=1e-12)
    assert dup.n == 2 * Y.size and dup.n_clusters == Y.size
    naive = net_benefit_difference(np.repeat(Y, 2), np.repeat(PA, 2), np.repeat(PB, 2), **kw)
    assert np.all(naive.se[1:] < 0.85 * dup.se[1:])


def test_difference_bca():
    d = net_benefit_difference(
        Y, PA, PB, positive=1, thresholds=T5, n_resamples=100, seed=2, ci_method="bca"
    )
    assert d.ci_method == "bootstrap bca"
    assert np.all(d.ci_low <= d.ci_high)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"seed": None}, "seed must be", id="no-seed"),
        pytest.param({"n_resamples": 1}, "n_resamples must be", id="one-resample"),
        pytest.param({"alpha": 1.0}, "alpha must be in", id="alpha"),
        pytest.param({"ci_method": "percentil"}, "did you mean 'percentile'", id="method"),
        pytest.param({"labels": ("a", "a")}, "two distinct strings", id="labels"),
        pytest.param({"clusters": np.arange(5)}, "clusters has 5 values", id="clusters"),
        pytest.param({"thresholds": [0.5, 1.0]}, "strictly between 0 and 1", id="thresholds"),
    ],
)
def test_difference_bad_options(kwargs, match):
    args = {"positive": 1, "thresholds": [0.5], "n_resamples": 10, "seed": 1, **kwargs}
    with pytest.raises(StudyvalError, match=match):
        net_benefit_difference(Y10, P10, P10[::-1], **args)


def test_difference_bad_probabilities():
    with pytest.raises(StudyvalError, match="prob_b has 1 missing"):
        net_benefit_difference(Y10, P10, _with(2, np.nan), positive=1, thresholds=[0.5], seed=1)
