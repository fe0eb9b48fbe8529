"""Tests for studyval.analysis.calibration_multinomial (Van Hoorde et al. 2014, 2015).

Oracle: R 4.2.2, VGAM 1.1-7 and splines, on the data of :func:`_data` (written to CSV with 17
significant digits)::

    d <- read.csv("d.csv"); lp1 <- log(d$p2/d$p1); lp2 <- log(d$p3/d$p1); y <- factor(d$y)
    f <- vglm(y ~ ns(lp1, df = 3) + ns(lp2, df = 3), multinomial(refLevel = 1),
              control = vglm.control(epsilon = 1e-13, maxit = 100))
    deviance(f); fitted(f)[c(1, 2, 58, 400), ]

``nnet::multinom`` (nnet 7.3-18) on the same bases (``reltol = 1e-14``) agrees with VGAM to 1.3e-6 (its
BFGS stops earlier); VGAM's IRLS is the oracle. The spline basis here differs from ``ns``'s
(restricted cubic splines on the same knots span the same space): the fitted probabilities
agree, the coefficients do not.
"""

from __future__ import annotations

import numpy as np
import pytest

from studyval.analysis.calibration_multinomial import (
    MultinomialCalibrationResult,
    multinomial_calibration,
    natural_spline_basis,
)
from studyval.errors import EstimationError, StudyvalError


def _data(n: int = 400, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Miscalibrated three-class predictions: true log-ratios non-linear in the predicted ones."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 2))
    true = np.column_stack(
        [np.zeros(n), 0.3 + 1.2 * x[:, 0] + 0.4 * x[:, 0] ** 2, -0.5 + 0.8 * x[:, 1]]
    )
    pt = np.exp(true)
    pt /= pt.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(pt, 1)).sum(1)
    pred = np.column_stack([np.zeros(n), 0.5 * x[:, 0] + 0.2, 1.5 * x[:, 1] - 0.2])
    p = np.exp(pred)
    p /= p.sum(1, keepdims=True)
    return y, p


ROWS = [0, 1, 57, 399]


@pytest.mark.parametrize(
    ("df", "deviance", "fitted"),
    [
        pytest.param(
            3,
            741.271746591906,
            [
                [0.317490693921025, 0.384976048235816, 0.2975332578431591],
                [0.449060794586734, 0.406496453917025, 0.1444427514962414],
                [0.383559114205947, 0.502175892261421, 0.1142649935326324],
                [0.571482008865806, 0.377915945519720, 0.0506020456144741],
            ],
            id="splines-df3",
        ),
        # R: vglm(y ~ lp1 + lp2, multinomial(refLevel = 1), ...) (the parametric framework)
        pytest.param(
            1,
            750.198213886923,
            [
                [0.320356527223969, 0.435356148910253, 0.2442873238657775],
                [0.409811414204498, 0.456543550085790, 0.1336450357097124],
                [0.353085040553174, 0.542223307039729, 0.1046916524070968],
                [0.506825496625610, 0.417687567143328, 0.0754869362310621],
            ],
            id="linear-df1",
        ),
    ],
)
def test_calibrated_probabilities_against_vgam(df, deviance, fitted):
    y, p = _data()
    r = multinomial_calibration(y, p, classes=[0, 1, 2], df=df)
    assert isinstance(r, MultinomialCalibrationResult)
    assert r.deviance == pytest.approx(deviance, rel=1e-9)
    np.testing.assert_allclose(r.calibrated[ROWS], np.array(fitted), rtol=1e-6, atol=0)
    np.testing.assert_allclose(r.calibrated.sum(axis=1), 1.0, rtol=1e-12)


def test_the_reference_class_matters_for_df_above_one_only():
    """Issue 16 (review round two): with df = 1 the calibrated probabilities do not depend on the
    reference class; with df = 2 they do (natural splines of different log-ratios span different
    spaces), as VGAM shows on the same data::

        f1 <- vglm(y ~ ns(log(p2/p1), df = 2) + ns(log(p3/p1), df = 2), multinomial(refLevel = 1),
                   control = vglm.control(epsilon = 1e-13, maxit = 100))
        f3 <- vglm(y ~ ns(log(p1/p3), df = 2) + ns(log(p2/p3), df = 2), multinomial(refLevel = 3),
                   control = vglm.control(epsilon = 1e-13, maxit = 100))
        print(c(deviance(f1), deviance(f3)), digits = 15)
        # [1] 741.859734814447 747.610458354810
    """
    y, p = _data()
    a = multinomial_calibration(y, p, classes=[0, 1, 2], df=2)
    perm = [2, 0, 1]
    b = multinomial_calibration(y, p[:, perm], classes=perm, df=2)
    assert a.deviance == pytest.approx(741.859734814447, rel=1e-6)
    assert b.deviance == pytest.approx(747.610458354810, rel=1e-6)
    assert np.max(np.abs(a.calibrated - b.calibrated[:, np.argsort(perm)])) > 0.05
    # with df = 1 (linear) the model is invariant to the reference category
    a1 = multinomial_calibration(y, p, classes=[0, 1, 2], df=1)
    b1 = multinomial_calibration(y, p[:, perm], classes=perm, df=1)
    np.testing.assert_allclose(a1.calibrated, b1.calibrated[:, np.argsort(perm)], atol=1e-9)
    assert a.n_events == (int((y == 0).sum()), int((y == 1).sum()), int((y == 2).sum()))
    assert b.classes == (2, 0, 1)


def test_perfectly_calibrated_predictions_give_a_curve_near_the_diagonal():
    rng = np.random.default_rng(3)
    n = 4000
    lp = rng.normal(size=(n, 2)) * 1.2
    p = np.exp(np.column_stack([np.zeros(n), lp]))
    p /= p.sum(axis=1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(p, 1)).sum(1)
    r = multinomial_calibration(y, p, classes=[0, 1, 2], df=3)
    for k in range(3):
        assert np.max(np.abs(r.curve_calibrated[k] - r.curve_predicted[k])) < 0.06
        assert r.e_avg[k] < 0.03


def test_tables():
    y, p = _data()
    labels = np.array(["a", "b", "c"], dtype=object)[y]
    r = multinomial_calibration(labels, p, classes=["a", "b", "c"], df=3, grid_points=20)
    t = r.to_frame()
    assert list(t.columns) == ["class", "predicted", "calibrated", "n", "n_events", "df"]
    assert t.shape == (60, 6)
    assert (t.groupby("class")["predicted"].apply(lambda s: s.is_monotonic_increasing)).all()
    s = r.summary_frame()
    assert list(s["class"]) == ["a", "b", "c"]
    # the intercepts make the mean calibrated probability the observed proportion (ML score
    # equations)
    np.testing.assert_allclose(s["mean_calibrated"], np.bincount(y) / y.size, atol=1e-9)
    assert (s["n_coefficients"] == 2 * (1 + 2 * 3)).all()


def test_natural_spline_basis_is_linear_beyond_the_boundary_knots():
    t = np.array([-1.0, 0.0, 0.5, 2.0])
    x = np.array([2.0, 3.0, 4.0, 5.0])
    b = natural_spline_basis(x, t)
    second = np.diff(b, n=2, axis=0)
    np.testing.assert_allclose(second, 0.0, atol=1e-12)


def test_separation_raises():
    rng = np.random.default_rng(5)
    n = 300
    lp = rng.normal(size=(n, 2))
    p = np.exp(np.column_stack([np.zeros(n), lp]))
    p /= p.sum(axis=1, keepdims=True)
    y = np.argmax(p, axis=1)  # the predictions separate the categories perfectly
    with pytest.raises(EstimationError, match="separat"):
        multinomial_calibration(y, p, classes=[0, 1, 2], df=1)


@pytest.mark.parametrize(
    ("mutate", "kwargs", "error", "match"),
    [
        pytest.param(
            lambda y, p: (np.zeros_like(y) + (y > 0), p),
            {},
            EstimationError,
            "no case of 2",
            id="absent-class",
        ),
        pytest.param(lambda y, p: (y, p * 0.9), {}, StudyvalError, "sum to 1", id="not-summing"),
        pytest.param(
            lambda y, p: (y, np.column_stack([p[:, :2].sum(1), p[:, 2], 0 * p[:, 0]])),
            {},
            StudyvalError,
            "strictly between 0 and 1",
            id="zero-probability",
        ),
        pytest.param(lambda y, p: (y, p[:, :2]), {}, StudyvalError, "shape", id="wrong-shape"),
        pytest.param(lambda y, p: (y, p), {"df": 0}, StudyvalError, "df must be", id="df-zero"),
    ],
)
def test_bad_inputs(mutate, kwargs, error, match):
    y, p = _data()
    y2, p2 = mutate(y, p)
    with pytest.raises(error, match=match):
        multinomial_calibration(y2, p2, classes=[0, 1, 2], **kwargs)


def _data4(n: int = 600, seed: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Four classes (as the KL grade has five): three log-ratios, one of them curved."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    pred = np.column_stack([np.zeros(n), 0.8 * x[:, 0], 0.6 * x[:, 1] - 0.3, 1.1 * x[:, 2] - 0.8])
    true = np.column_stack(
        [
            np.zeros(n),
            1.2 * x[:, 0] + 0.3,
            0.4 * x[:, 1] - 0.3 + 0.3 * x[:, 1] ** 2,
            1.1 * x[:, 2] - 0.5,
        ]
    )
    pt = np.exp(true)
    pt /= pt.sum(1, keepdims=True)
    y = (rng.random(n)[:, None] > np.cumsum(pt, 1)).sum(1)
    p = np.exp(pred)
    p /= p.sum(1, keepdims=True)
    return y, p


def test_four_classes_against_vgam():
    # R: lp1 <- log(d$p2/d$p1); lp2 <- log(d$p3/d$p1); lp3 <- log(d$p4/d$p1)
    #    f <- vglm(y ~ ns(lp1, df = 2) + ns(lp2, df = 2) + ns(lp3, df = 2),
    #              multinomial(refLevel = 1), control = vglm.control(epsilon = 1e-13, maxit = 100))
    #    deviance(f) = 1356.16340891466; fitted(f)[c(1, 10, 301, 600), ]
    expected = [
        [0.1238476065783879, 0.198437782867904, 0.4521345427079807, 0.2255800678457274],
        [0.3646726117391531, 0.206076891792018, 0.2446017289549873, 0.1846487675138420],
        [0.0479219646595366, 0.210052147071867, 0.0861200495096253, 0.6559058387589708],
        [0.3151703796997950, 0.403724771799703, 0.2197801176573355, 0.0613247308431669],
    ]
    y, p = _data4()
    r = multinomial_calibration(y, p, classes=[0, 1, 2, 3], df=2)
    assert r.deviance == pytest.approx(1356.16340891466, rel=1e-9)
    np.testing.assert_allclose(r.calibrated[[0, 9, 300, 599]], np.array(expected), rtol=1e-6)
    assert r.coefficients.shape == (1 + 3 * 2, 3)
