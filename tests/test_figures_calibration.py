"""Smoke tests for studyval.figures.calibration: the figures draw from tidy tables and save."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from scipy.special import expit, logit

from studyval.analysis.calibration import calibration, curves_frame, histograms_frame
from studyval.analysis.decision_curve import net_benefit
from studyval.errors import StudyvalError
from studyval.figures.calibration import calibration_figure, decision_curve_figure
from studyval.figures.style import save_figure


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(42)
    q = rng.uniform(0.02, 0.9, 400)
    y = (rng.uniform(size=400) < q).astype(int)
    return {"y": y, "good": q, "overconfident": expit(2.0 * logit(q))}


@pytest.fixture(scope="module")
def tables(data) -> dict[str, pd.DataFrame]:
    res = {
        name: calibration(
            data["y"], data[name], positive=1, n_resamples=30, seed=1, ci_method="percentile"
        )
        for name in ("good", "overconfident")
    }
    dca = net_benefit(data["y"], {k: data[k] for k in ("good", "overconfident")}, positive=1)
    return {
        "curves": curves_frame(res),
        "histogram": histograms_frame(res, bins=25),
        "dca": dca.to_frame(),
    }


def _saved(fig: Figure, tmp_path, name: str) -> None:
    paths = save_figure(fig, tmp_path, name)
    assert [p.suffix for p in paths] == [".png", ".pdf", ".svg"]
    for p in paths:
        assert p.stat().st_size > 1000, p


def test_calibration_figure_with_histogram(tables, tmp_path):
    fig = calibration_figure(
        tables["curves"], models=["good", "overconfident"], histogram=tables["histogram"]
    )
    ax, hax = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Ideal", "good", "overconfident"]
    assert "95% CI" in ax.get_legend().get_title().get_text()
    assert ax.get_xlim() == pytest.approx((-0.01, 1.01))
    assert hax.get_xlabel() == "Predicted probability"
    _saved(fig, tmp_path, "calibration")


def test_calibration_figure_single_model_without_band_or_histogram(data, tmp_path):
    r = calibration(data["y"], data["good"], positive=1, n_resamples=0, seed=None)
    curves = curves_frame({"good": r})
    fig = calibration_figure(curves, models=["good"], title="Validation cohort")
    (ax,) = fig.axes
    assert "CI" not in ax.get_legend().get_title().get_text()  # no band without bootstrap
    assert ax.get_title(loc="left") == "Validation cohort"
    _saved(fig, tmp_path, "calibration_single")


def test_decision_curve_figure(tables, tmp_path):
    fig = decision_curve_figure(tables["dca"], models=["good", "overconfident"])
    (ax,) = fig.axes
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["Treat none", "Treat all", "good", "overconfident"]
    f = tables["dca"]
    all_rows = f[f["model"] == "treat all"]
    prevalence = all_rows["tp"].iloc[0] / all_rows["n"].iloc[0]
    low, high = ax.get_ylim()
    assert -0.2 * prevalence < low < 0 < prevalence < high < 1.1 * prevalence
    assert ax.get_xlim() == pytest.approx((0.01, 0.99))
    _saved(fig, tmp_path, "decision_curve")


def test_decision_curve_threshold_range(tables):
    fig = decision_curve_figure(tables["dca"], models=["good"], threshold_range=(0.05, 0.5))
    assert fig.axes[0].get_xlim() == pytest.approx((0.05, 0.5))
    with pytest.raises(StudyvalError, match="threshold_range"):
        decision_curve_figure(tables["dca"], models=["good"], threshold_range=(0.5, 0.2))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda t: calibration_figure(t["curves"].drop(columns="ci_low"), models=["good"]),
            "lacks column.*'ci_low'",
            id="curves-column",
        ),
        pytest.param(
            lambda t: calibration_figure(t["curves"], models=["bad"]),
            "model.*'bad'.*not in curves",
            id="curves-model",
        ),
        pytest.param(
            lambda t: calibration_figure(t["curves"], models="good"),
            "non-empty sequence",
            id="models-string",
        ),
        pytest.param(
            lambda t: calibration_figure(
                t["curves"], models=["good"], histogram=t["histogram"].drop(columns="n_negative")
            ),
            "histogram lacks column",
            id="histogram-column",
        ),
        pytest.param(
            lambda t: decision_curve_figure(t["dca"].drop(columns="tp"), models=["good"]),
            "lacks column.*'tp'",
            id="dca-column",
        ),
        pytest.param(
            lambda t: decision_curve_figure(
                t["dca"][t["dca"]["model"] != "treat all"], models=["good"]
            ),
            "'treat all'.*not in frame",
            id="dca-no-treat-all",
        ),
        pytest.param(
            lambda t: decision_curve_figure(t["curves"].to_numpy(), models=["good"]),
            "must be a pandas DataFrame",
            id="not-a-frame",
        ),
    ],
)
def test_bad_tables(tables, call, match):
    with pytest.raises(StudyvalError, match=match):
        call(tables)
