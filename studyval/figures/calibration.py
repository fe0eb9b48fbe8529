"""Figures of calibration and clinical utility: calibration curves and decision curves.

Both functions draw from the tidy tables the statistics return (as stored in a
results bundle), never from raw predictions:

* :func:`calibration_figure` takes
  :func:`studyval.analysis.calibration.curves_frame` (and, optionally,
  :func:`~studyval.analysis.calibration.histograms_frame`);
* :func:`decision_curve_figure` takes
  :meth:`studyval.analysis.decision_curve.DecisionCurveResult.frame`.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from studyval.errors import StudyvalError
from studyval.figures.style import LINESTYLES, PALETTE, RC, SINGLE_COLUMN_MM, new_figure

__all__ = ["calibration_figure", "decision_curve_figure"]

_IDEAL_COLOUR = "#999999"
_TREAT_ALL = "treat all"
_TREAT_NONE = "treat none"


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise StudyvalError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StudyvalError(
            f"{name} lacks column(s) {', '.join(map(repr, missing))}; expected {', '.join(columns)}"
        )


def _require_models(frame: pd.DataFrame, models: Sequence[str], name: str) -> list[str]:
    if isinstance(models, str) or len(models) == 0:
        raise StudyvalError(f"models must be a non-empty sequence of names, got {models!r}")
    present = set(frame["model"].astype(str))
    absent = [m for m in models if m not in present]
    if absent:
        raise StudyvalError(
            f"model(s) {', '.join(map(repr, absent))} not in {name} "
            f"(found: {', '.join(map(repr, sorted(present)))})"
        )
    return list(models)


def _style(k: int) -> dict:
    return {"color": PALETTE[k % len(PALETTE)], "ls": LINESTYLES[k % len(LINESTYLES)]}


def calibration_figure(
    curves: pd.DataFrame,
    *,
    models: Sequence[str],
    histogram: pd.DataFrame | None = None,
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Flexible calibration curves with pointwise bands, the ideal diagonal and risk histograms.

    Parameters
    ----------
    curves : DataFrame
        Columns ``model, predicted, observed, ci_low, ci_high`` (and
        optionally ``ci_level``), as from
        :func:`studyval.analysis.calibration.curves_frame`. NaN band limits
        (no bootstrap) draw the curve without a band.
    models : sequence of str
        Models to draw, in legend order.
    histogram : DataFrame, optional
        Columns ``model, bin_low, bin_high, n_positive, n_negative``, as from
        :func:`studyval.analysis.calibration.histograms_frame`. Drawn in a
        panel below: predictions of positive cases above the zero line,
        negative cases below.
    title : str, optional
        Panel title.
    width_mm : float
        Figure width; a journal column is 85 mm.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    studyval.errors.StudyvalError
        A missing column, or a model absent from a table.

    """
    _require(curves, ["model", "predicted", "observed", "ci_low", "ci_high"], "curves")
    models = _require_models(curves, models, "curves")
    if histogram is not None:
        _require(
            histogram, ["model", "bin_low", "bin_high", "n_positive", "n_negative"], "histogram"
        )
        _require_models(histogram, models, "histogram")
    level = None
    if "ci_level" in curves.columns and curves["ci_level"].notna().any():
        level = float(curves["ci_level"].dropna().iloc[0])

    with matplotlib.rc_context(RC):
        height = width_mm * (1.2 if histogram is not None else 0.95)
        fig = new_figure(width_mm, height)
        if histogram is not None:
            ax, hax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [4, 1]})
        else:
            ax, hax = fig.add_subplot(), None
        ax.plot([0, 1], [0, 1], color=_IDEAL_COLOUR, lw=0.8, ls=":", label="Ideal")
        any_band = False
        for k, model in enumerate(models):
            c = curves[curves["model"].astype(str) == model].sort_values("predicted")
            x = c["predicted"].to_numpy(dtype=float)
            st = _style(k)
            lo = c["ci_low"].to_numpy(dtype=float)
            hi = c["ci_high"].to_numpy(dtype=float)
            if np.isfinite(lo).any():
                any_band = True
                ax.fill_between(x, lo, hi, color=st["color"], alpha=0.18, lw=0)
                for edge in (lo, hi):
                    ax.plot(x, edge, color=st["color"], lw=0.4, ls=st["ls"], alpha=0.8)
            ax.plot(x, c["observed"].to_numpy(dtype=float), label=model, **st)
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal" if hax is None else "auto")
        ax.set_ylabel("Observed proportion")
        if hax is None:
            ax.set_xlabel("Predicted probability")
        legend_title = "Lowess calibration curve"
        if any_band and level is not None:
            legend_title += f"\n(band: pointwise {100 * level:g}% CI)"
        ax.legend(loc="upper left", frameon=False, title=legend_title, title_fontsize=7)
        if title:
            ax.set_title(title, loc="left")

        if hax is not None:
            top = 0.0
            single = len(models) == 1
            for k, model in enumerate(models):
                h = histogram[histogram["model"].astype(str) == model].sort_values("bin_low")
                edges = np.append(h["bin_low"].to_numpy(float), h["bin_high"].to_numpy(float)[-1])
                pos = h["n_positive"].to_numpy(float)
                neg = h["n_negative"].to_numpy(float)
                top = max(top, pos.max(initial=0.0), neg.max(initial=0.0))
                st = _style(k)
                fill = {"fill": True, "alpha": 0.6} if single else {"fill": False}
                hax.stairs(pos, edges, color=st["color"], ls=st["ls"], lw=0.6, **fill)
                hax.stairs(-neg, edges, color=st["color"], ls=st["ls"], lw=0.6, **fill)
            hax.axhline(0.0, color="black", lw=0.4)
            top = max(top, 1.0) * 1.1
            hax.set_ylim(-top, top)
            hax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{abs(v):g}"))
            hax.set_ylabel("Count")
            hax.set_xlabel("Predicted probability")
            hax.text(
                0.99, 0.95, "positive", transform=hax.transAxes, ha="right", va="top", fontsize=6
            )
            hax.text(
                0.99, 0.05, "negative", transform=hax.transAxes, ha="right", va="bottom", fontsize=6
            )
    return fig


def decision_curve_figure(
    frame: pd.DataFrame,
    *,
    models: Sequence[str],
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
    threshold_range: tuple[float, float] | None = None,
) -> Figure:
    """Net benefit against threshold probability for models, treat all and treat none.

    The y-axis runs from slightly below 0 to slightly above the prevalence
    (the net benefit of a perfect model); the treat-all curve, which falls
    steeply, is clipped at the bottom.

    Parameters
    ----------
    frame : DataFrame
        Columns ``model, threshold, net_benefit, tp, n`` with rows for
        ``"treat all"`` and ``"treat none"``, as from
        :meth:`studyval.analysis.decision_curve.DecisionCurveResult.frame`.
    models : sequence of str
        Models to draw (not the reference strategies), in legend order.
    title : str, optional
        Panel title.
    width_mm : float
        Figure width; a journal column is 85 mm.
    threshold_range : (float, float), optional
        x-axis limits (the clinically sensible thresholds); default the range
        of the thresholds in ``frame``.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    studyval.errors.StudyvalError
        A missing column; a model, or treat all / treat none, absent.

    """
    _require(frame, ["model", "threshold", "net_benefit", "tp", "n"], "frame")
    models = _require_models(frame, models, "frame")
    _require_models(frame, [_TREAT_ALL, _TREAT_NONE], "frame")
    names = frame["model"].astype(str)
    all_rows = frame[names == _TREAT_ALL]
    prevalence = float(all_rows["tp"].iloc[0]) / float(all_rows["n"].iloc[0])
    if threshold_range is None:
        threshold_range = (float(frame["threshold"].min()), float(frame["threshold"].max()))
    lo_t, hi_t = (float(v) for v in threshold_range)
    if not 0.0 <= lo_t < hi_t <= 1.0:
        raise StudyvalError(
            f"threshold_range must satisfy 0 <= low < high <= 1, got {threshold_range!r}"
        )

    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, width_mm * 0.8)
        ax = fig.add_subplot()
        none_rows = frame[names == _TREAT_NONE].sort_values("threshold")
        ax.plot(
            none_rows["threshold"].to_numpy(float),
            none_rows["net_benefit"].to_numpy(float),
            color="black",
            lw=0.8,
            label="Treat none",
        )
        a = all_rows.sort_values("threshold")
        ax.plot(
            a["threshold"].to_numpy(float),
            a["net_benefit"].to_numpy(float),
            color=_IDEAL_COLOUR,
            lw=1.6,
            label="Treat all",
        )
        for k, model in enumerate(models):
            m = frame[names == model].sort_values("threshold")
            ax.plot(
                m["threshold"].to_numpy(float),
                m["net_benefit"].to_numpy(float),
                label=model,
                **_style(k),
            )
        margin = 0.1 * prevalence
        ax.set_ylim(-margin, prevalence + 0.5 * margin)
        ax.set_xlim(lo_t, hi_t)
        ax.set_xlabel("Threshold probability")
        ax.set_ylabel("Net benefit")
        ax.legend(
            loc="upper right", frameon=False, title=f"Prevalence {prevalence:.3f}", title_fontsize=7
        )
        if title:
            ax.set_title(title, loc="left")
    return fig
