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
      df = pd.DataFrame({"y": BC_Y, "a": expit(BC_LP), "b": expit(BC_LP_B)})
      res = dca(data=df, outcome="y", modelnames=["a", "b"],
                thresholds=[i / 100 for i in range(1, 100)])
      res[["model", "threshold", "net_benefit", "net_intervention_avoided"]]

  dcurves names the reference strategies ``"all"``/``"none"`` and reports
  interventions avoided per patient (``nper=1``); ours are per 100.
* The closed form of treat all, :math:`\\pi - (1 - \\pi)\\,t/(1 - t)`.
"""

from __future__ import annotations

import dataclasses

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
)
from studyval.errors import EstimationError, StudyvalError

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
BC_LP = """
1.01641 1.01075 -0.269114 0.108792 0.818569 -0.0849746 0.212173 1.49696 1.70665 -1.60368
-3.49945 2.51265 2.28275 1.21893 0.342637 -1.06419 2.23816 0.539223 -1.77775 -0.465677
-0.553996 -0.372481 1.75002 -0.0959073 -1.04642 -2.4761 2.01761 -2.17083 0.872996 -4.243
-2.31883 -3.92081 1.51484 -2.5043 -1.94509 -3.2688 -1.19875 0.130491 1.47335 -1.81529
-0.706606 4.43835 1.27855 1.98062 -0.305304 0.587112 -1.4409 2.20229 -2.66031 -0.356809
-4.20497 -2.23095 0.509501 -2.28878 -2.12186 -0.617932 -1.67941 -1.67515 0.46169
0.276294 1.25113 -1.32978 -2.18893 0.370701 3.26654 0.668739 -0.877849 -1.30938 -2.50609
-1.93709 -0.125985 -2.19633 -2.03756 -1.24606 -2.26152 -2.83941 -3.13904 -2.26832
-0.975789 -3.98337 1.0535 -1.19777 -1.41806 0.120459 -1.0673 -1.36295 -2.67241 -4.17028
0.970084 -3.02437 4.91581 -2.82695 -3.61072 -2.06002 -2.82967 -1.48986 -0.0835681
-2.46503 0.385336 -0.225304 0.636274 1.59417 -1.21183 0.0910833 -2.07533 -2.40928
1.52119 -0.853964 -3.31611 2.71781 -1.57903 0.3272 -1.52706 -1.59197 0.0651643 -2.0893
2.88501 -1.32755 1.25559 3.9408 -3.08116 -1.16838 -1.84891 -2.22818 -2.42563 -2.30737
0.702669 -0.738418 1.87091 2.69244 -0.0427359 -1.21459 3.55403 -1.55182 -1.73259
-2.86203 -3.40026 -0.46312 0.677852 -1.71257 -3.0468 0.947696 -2.6494 -3.42632 -2.39566
-0.712972 -2.51892 -2.49578 -1.80421 -1.78474 -1.80004 -2.33015 -2.01542 -4.47907
-3.03933 -2.2846 -3.83397 -2.78533 1.03688 -2.74378 1.23911 4.07863 -1.93808 -2.95939
1.36204 -1.52121 -3.54113 1.8096 0.973171 4.88346 -3.18683 2.56323 -3.06156 -1.71355
-2.2518 2.06002 0.943292 -1.51804 -2.11262 -2.87458 -1.4639 -0.2539 1.87927 -2.21135
4.34178 -2.2201 1.64185 -0.483193 -1.02143 -0.736798 -3.23012 -1.77615 -0.179093
-2.78698 2.61982 -3.53737 4.66058 -1.80564 -1.91199 -2.55301 -3.42851 -2.04764 -2.08292
-1.97269 -2.18342 -2.24972 -0.604768 -1.69582 1.06067 -2.02768 -0.872968 -1.0476 -2.9396
-2.27258 -2.46347 -1.73752 1.92073 -0.163164 -1.96169 -2.18979 0.876324 -3.06811
-0.533833 -1.51872 2.87975 2.66425 -0.720049 0.198339 -1.00379 -1.93898 6.91163 -2.54675
-1.65435 -3.43105 -0.961808 -0.846814 -1.31534 -2.16421 -2.64574 1.00005 -1.84565
-1.43753 -1.65134 2.54809 -1.0087 -1.16897 -3.4966 -0.417355 -2.22857 3.02224 0.77899
2.88828 -1.67954 -1.52522 1.60523 -2.02621 -1.51112 -1.95152 2.17081 -1.57869 4.86458
-1.14892 -3.76435 -2.8964 -2.32622 -1.83784 2.28564 3.34231 -0.162623 -2.66188 -0.262638
-0.349153 -0.990638 -2.92493 -2.22366 -1.7489 -2.60649 -1.24916 -2.28782 -1.0693
-1.74513 4.51553 3.3221 5.31263
"""
BC_LP_B = """
-1.0749 -0.390736 -1.61751 -0.272777 0.568666 -1.04344 0.545074 1.48613 -0.312097
-1.96877 -2.47206 0.306534 -1.43402 -0.424813 -1.7879 -0.831117 1.20565 -0.0735568
-0.904514 -0.275398 -0.136468 -0.416949 -1.11946 -0.841603 0.112557 -1.44975 -0.831117
-0.818011 -0.0735568 -2.64245 -0.233457 -2.09983 0.542453 -0.741993 -1.41043 -1.89537
-1.59392 -0.582092 -1.49955 -1.01461 -1.57557 1.15846 -0.878301 0.712838 -1.73809
0.233137 -0.93597 0.303913 -0.506074 -0.550637 -2.21255 -0.647625 -1.65421 -0.873058
-0.16006 -0.291126 -0.440541 -0.0892847 -1.36324 -0.487725 -1.24529 -2.87837 -1.22169
-0.77607 0.851768 -0.626655 -2.08149 0.157119 -1.69877 -2.22304 -1.0015 -1.55984
-1.89275 -0.812768 -1.0382 -0.306854 -2.3043 -1.03034 -0.631897 -2.33575 -1.5546
0.0915861 -0.553258 -0.804904 -1.28985 -0.587335 -1.87702 -1.94518 -0.461512 -2.30954
1.23186 -1.82198 -1.77217 -1.22694 -1.56509 -0.120741 1.30788 -1.45237 -0.00802391
-0.432677 -0.668596 0.492648 -1.36062 -0.422192 -2.34886 -0.768206 0.967106 -1.29509
-1.15092 2.77844 -2.08935 -0.424813 -2.20207 -1.66732 0.120421 1.36555 1.5569 -0.162682
-0.107634 4.56355 -1.79052 0.49789 -0.527045 -2.0343 -1.81935 -0.89665 -1.25577 -1.26363
-1.20597 3.06416 0.311777 -0.652868 2.42456 -0.00802391 -0.388115 -2.31478 -1.62538
-1.18237 -0.495589 -1.75382 -2.05789 -0.812768 -0.909757 -2.29381 -0.781312 -0.726265
-1.15616 -2.25449 -0.977911 0.319641 -0.519181 -0.854709 0.686625 -1.95828 -2.10508
-1.62013 -2.92293 -1.31606 -0.786555 -1.27674 -0.579471 -0.0945274 -1.1981 -1.03296
0.00246136 -0.660732 -1.85867 -0.228215 -0.115498 0.628956 -1.31868 -0.049965 -1.87702
-1.86916 -1.81149 -0.694809 1.01429 -0.734129 -1.48383 -0.930727 -0.0787995 -0.938591
-0.0237518 -1.00937 0.00770399 -2.27022 -1.185 -1.52052 1.66175 -0.79704 -1.81935
-1.15092 0.372067 -1.49693 0.351097 -1.31868 0.107314 -1.22956 -1.15616 -1.20859
-2.87312 -1.49431 -0.859952 -0.131226 -1.03558 -1.3213 0.0627516 -0.183652 -0.207244
-0.120741 -2.06838 -0.718401 -0.154818 0.0286745 -1.10111 -1.09849 0.0260532 -0.589956
-1.54412 -1.628 0.930408 -0.930727 0.791478 -1.10373 -0.354038 0.820312 -2.06838 2.31971
0.885845 1.65913 1.15322 -0.920242 -0.456269 -0.988396 -0.967426 1.64341 2.12311
-1.60965 -1.37635 -0.618791 -0.689566 -1.10898 -1.4314 -0.799662 -0.43792 -2.26498
-2.36983 -0.435299 -1.19548 -0.165303 0.686625 -0.534909 -2.28857 -1.24529 0.545074
-1.87964 -2.15226 -0.854709 -0.422192 -1.35538 -0.0709355 -0.83636 -2.29905 -2.51662
-2.20993 -0.485104 -0.314718 -0.264913 0.673518 0.93565 0.817691 1.62244 0.356339
-1.38684 0.613228 0.149255 0.0181893 1.50448 1.57525 0.539831 1.96583 0.843904 1.67224
1.95534
"""
BC_Y = (
    "11111111100111111101111100101000100011100111010101001000001110011101001000000000"
    "10010100101000001011111100110101001010110000001111111000001001000000100000000010"
    "11001001110100011000001010100100101010000000000010000000110010001100001000000001"
    "00011000011100100010100000110000000000000111"
)


def _nums(text: str) -> np.ndarray:
    return np.array([float(v) for v in text.split()])


Y = np.array([int(c) for c in BC_Y])
PA = expit(_nums(BC_LP))
PB = expit(_nums(BC_LP_B))

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
    return net_benefit(Y, {"a": PA, "b": PB}, positive=1).frame()


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
    f = r.frame().set_index(["model", "threshold"])
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
    m = r.frame().query("model == 'm'")
    assert list(m["fp"]) == [3, 1]  # 0.6, 0.3, 0.3 at t = 0.3; 0.6 at t = 0.35
    assert list(m["tp"]) == [3, 3]


def test_default_thresholds_are_exact_decimals():
    assert DEFAULT_THRESHOLDS.size == 99
    assert DEFAULT_THRESHOLDS[5] == 0.06  # np.arange(0.01, 1, 0.01)[5] is 0.060000000000000005
    r = net_benefit(Y10, {"m": np.full(10, 0.06)}, positive=1)
    m = r.frame().query("model == 'm' and threshold == 0.06")
    assert int(m["tp"].iloc[0]) == 4


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
    pd.testing.assert_frame_equal(r.to_frame(), r.frame())
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.n = 3  # type: ignore[misc]
    with pytest.raises(ValueError, match="read-only"):
        r.net_benefit[0, 0] = 1.0


def test_string_labels():
    labels = np.where(Y10 == 1, "acute", "chronic")
    a = net_benefit(labels, {"m": P10}, positive="acute", thresholds=[0.25, 0.5])
    b = net_benefit(Y10, {"m": P10}, positive=1, thresholds=[0.25, 0.5])
    pd.testing.assert_frame_equal(a.frame(), b.frame())


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
    assert r.frame().loc[0, "tp"] == 2


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
    f = diff_ab.frame()
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
