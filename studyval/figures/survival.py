"""Figures of time-to-event analyses, drawn from result tables (never from raw data).

* :func:`km_figure` takes :meth:`studyval.analysis.survival.KaplanMeierResult.to_frame`
  and :meth:`~studyval.analysis.survival.KaplanMeierResult.at_risk`, and draws the
  curves with their pointwise bands, censoring ticks and the numbers at risk in
  a table under the x-axis;
* :func:`calibration_horizon_figure` takes the curve and grouped tables of a
  calibration at a fixed horizon (predicted vs observed risk);
* :func:`zph_figure` takes the scaled Schoenfeld residuals and their smooth
  (one panel per term);
* :func:`time_dependent_auc_figure` takes time-dependent AUCs over a grid of times.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from studyval.errors import StudyvalError
from studyval.figures.style import (
    DOUBLE_COLUMN_MM,
    LINESTYLES,
    MARKERS,
    PALETTE,
    RC,
    SINGLE_COLUMN_MM,
    new_figure,
)

__all__ = [
    "calibration_horizon_figure",
    "km_figure",
    "time_dependent_auc_figure",
    "zph_figure",
]

_IDEAL_COLOUR = "#999999"


def _require(frame: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise StudyvalError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise StudyvalError(
            f"{name} lacks column(s) {', '.join(map(repr, missing))}; expected {', '.join(columns)}"
        )
    if len(frame) == 0:
        raise StudyvalError(f"{name} is empty")


def _style(k: int) -> dict:
    return {"color": PALETTE[k % len(PALETTE)], "ls": LINESTYLES[k % len(LINESTYLES)]}


def km_figure(
    table: pd.DataFrame,
    at_risk: pd.DataFrame,
    *,
    groups: Sequence[str] | None = None,
    cumulative: bool = False,
    time_label: str = "Time",
    y_label: str | None = None,
    legend_title: str | None = None,
    ci: bool = True,
    censor_marks: bool = True,
    xmax: float | None = None,
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
    height_mm: float | None = None,
) -> Figure:
    """Kaplan-Meier curves with pointwise bands and the numbers at risk under the x-axis.

    Parameters
    ----------
    table : DataFrame
        Columns ``group, time, survival, ci_low, ci_high, n_censor`` (one row
        per group and distinct time), as ``KaplanMeierResult.to_frame()``. Each
        curve starts at (0, 1).
    at_risk : DataFrame
        Columns ``group, time, n_risk``, as ``KaplanMeierResult.at_risk(ticks)``;
        its times become the x-axis ticks and the columns of the at-risk table.
    groups : sequence of str, optional
        Groups to draw, in legend order (default: order of first appearance).
    cumulative : bool
        Draw the cumulative incidence 1 - S(t) (curves rise) instead of S(t).
    time_label, y_label, legend_title, title : str
        Axis labels, legend title and panel title.
    ci : bool
        Shade the pointwise confidence band (NaN limits are left out).
    censor_marks : bool
        Mark censoring times with a small vertical tick.
    xmax : float, optional
        Right end of the x-axis (default: the last at-risk time).
    width_mm, height_mm : float
        Figure size (height defaults to 0.8 x width plus the at-risk rows).

    Returns
    -------
    matplotlib.figure.Figure

    """
    _require(table, ["group", "time", "survival", "ci_low", "ci_high"], "table")
    _require(at_risk, ["group", "time", "n_risk"], "at_risk")
    tab = table.copy()
    tab["group"] = tab["group"].astype(str)
    risk = at_risk.copy()
    risk["group"] = risk["group"].astype(str)
    present = list(dict.fromkeys(tab["group"]))
    if groups is None:
        groups = present
    else:
        groups = [str(g) for g in groups]
        absent = [g for g in groups if g not in present]
        if absent:
            raise StudyvalError(
                f"group(s) {', '.join(map(repr, absent))} not in table "
                f"(found: {', '.join(map(repr, present))})"
            )
    ticks = np.sort(risk["time"].astype(float).unique())
    right = float(xmax) if xmax is not None else float(ticks.max())
    n_groups = len(groups)
    if height_mm is None:
        height_mm = 0.8 * width_mm + 5.0 + 3.5 * n_groups
    fig = new_figure(width_mm, height_mm)
    with matplotlib.rc_context(RC):
        gs = fig.add_gridspec(2, 1, height_ratios=[0.8 * width_mm, 5.0 + 3.5 * n_groups])
        ax = fig.add_subplot(gs[0])
        ax_tab = fig.add_subplot(gs[1], sharex=ax)
        for k, g in enumerate(groups):
            sub = tab[tab["group"] == g].sort_values("time", kind="stable")
            t = np.concatenate(([0.0], sub["time"].to_numpy(float)))
            s = np.concatenate(([1.0], sub["survival"].to_numpy(float)))
            lo = np.concatenate(([1.0], sub["ci_low"].to_numpy(float)))
            hi = np.concatenate(([1.0], sub["ci_high"].to_numpy(float)))
            keep = t <= right
            if not keep.all():  # extend the last step to the right edge
                last = int(np.flatnonzero(keep)[-1])
                t, s, lo, hi = (
                    np.append(t[: last + 1], right),
                    np.append(s[: last + 1], s[last]),
                    np.append(lo[: last + 1], lo[last]),
                    np.append(hi[: last + 1], hi[last]),
                )
            if cumulative:
                s, lo, hi = 1.0 - s, 1.0 - hi, 1.0 - lo
            st = _style(k)
            ax.step(t, s, where="post", color=st["color"], ls=st["ls"], label=g)
            if ci:
                ok = np.isfinite(lo) & np.isfinite(hi)
                ax.fill_between(
                    t[ok], lo[ok], hi[ok], step="post", color=st["color"], alpha=0.15, lw=0
                )
            if censor_marks and "n_censor" in sub.columns:
                cm = (sub["n_censor"].to_numpy() > 0) & (sub["time"].to_numpy(float) <= right)
                ct = sub["time"].to_numpy(float)[cm]
                cs = sub["survival"].to_numpy(float)[cm]
                if cumulative:
                    cs = 1.0 - cs
                ax.plot(ct, cs, ls="none", marker="|", ms=3, mew=0.6, color=st["color"])
        ax.set_xlim(0, right)
        top = 1.0
        if cumulative:
            vals = tab[tab["group"].isin(groups) & (tab["time"] <= right)]
            peak = (
                float(np.nanmax(1.0 - vals["ci_low"]))
                if ci
                else float(np.nanmax(1.0 - vals["survival"]))
            )
            top = min(1.0, max(0.05, 1.1 * peak)) if np.isfinite(peak) else 1.0
        ax.set_ylim(0, top)
        ax.set_ylabel(y_label or ("Cumulative incidence" if cumulative else "Survival probability"))
        ax.set_xticks(ticks)
        ax.tick_params(labelbottom=True)
        ax.set_xlabel(time_label)
        if n_groups > 1:
            ax.legend(title=legend_title, frameon=False, loc="best")
        if title:
            ax.set_title(title)
        # numbers at risk: one row per group under the axis
        ax_tab.set_ylim(-0.5, n_groups - 0.5)
        ax_tab.invert_yaxis()
        for k, g in enumerate(groups):
            sub = risk[risk["group"] == g]
            for tm, nr in zip(sub["time"].astype(float), sub["n_risk"].astype(int), strict=True):
                if tm <= right:
                    ax_tab.text(
                        tm, k, str(nr), ha="center", va="center", color=_style(k)["color"],
                        fontsize=RC["xtick.labelsize"],
                    )  # fmt: skip
        ax_tab.set_yticks(range(n_groups))
        ax_tab.set_yticklabels(groups)
        for k, lab in enumerate(ax_tab.get_yticklabels()):
            lab.set_color(_style(k)["color"])
        ax_tab.tick_params(axis="both", length=0, labelbottom=False)
        ax_tab.tick_params(axis="y", pad=14)
        for side in ("left", "bottom", "top", "right"):
            ax_tab.spines[side].set_visible(False)
        ax_tab.set_title("Number at risk", loc="left", fontsize=RC["legend.fontsize"])
    return fig


def calibration_horizon_figure(
    curve: pd.DataFrame,
    groups: pd.DataFrame | None = None,
    *,
    horizon_label: str = "the horizon",
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Predicted vs observed risk at a horizon: a smooth curve and grouped Kaplan-Meier points.

    Parameters
    ----------
    curve : DataFrame
        Columns ``predicted, observed`` (and optionally ``ci_low, ci_high``):
        the smooth calibration curve (observed risk at the horizon as a
        function of the predicted risk).
    groups : DataFrame, optional
        Columns ``predicted, observed, ci_low, ci_high``: mean predicted risk and
        the Kaplan-Meier risk (1 - S) of each risk group, drawn as points with
        vertical error bars.
    horizon_label : str
        The horizon in words, used in the axis labels.

    """
    _require(curve, ["predicted", "observed"], "curve")
    fig = new_figure(width_mm, width_mm)
    with matplotlib.rc_context(RC):
        ax = fig.add_subplot(1, 1, 1)
        hi = float(np.nanmax(curve[["predicted", "observed"]].to_numpy()))
        if groups is not None and len(groups):
            _require(groups, ["predicted", "observed", "ci_low", "ci_high"], "groups")
            hi = max(hi, float(np.nanmax(groups[["predicted", "ci_high"]].to_numpy())))
        lim = min(1.0, 1.05 * hi) if np.isfinite(hi) and hi > 0 else 1.0
        ax.plot([0, lim], [0, lim], color=_IDEAL_COLOUR, lw=0.8, ls=":", label="ideal")
        c = curve.sort_values("predicted")
        if {"ci_low", "ci_high"} <= set(c.columns) and c["ci_low"].notna().any():
            ax.fill_between(
                c["predicted"], c["ci_low"], c["ci_high"], color=PALETTE[0], alpha=0.15, lw=0
            )
        ax.plot(c["predicted"], c["observed"], color=PALETTE[0], ls="-", label="smoothed")
        if groups is not None and len(groups):
            g = groups
            ax.errorbar(
                g["predicted"],
                g["observed"],
                yerr=[
                    np.clip(g["observed"] - g["ci_low"], 0, None),
                    np.clip(g["ci_high"] - g["observed"], 0, None),
                ],
                fmt=MARKERS[1],
                ms=3,
                color=PALETTE[1],
                elinewidth=0.6,
                capsize=1.5,
                label="risk groups (Kaplan-Meier)",
            )
        ax.set_xlim(0, lim)
        ax.set_ylim(0, lim)
        ax.set_aspect("equal")
        ax.set_xlabel(f"Predicted risk at {horizon_label}")
        ax.set_ylabel(f"Observed risk at {horizon_label}")
        ax.legend(frameon=False, loc="upper left")
        if title:
            ax.set_title(title)
    return fig


def zph_figure(
    residuals: pd.DataFrame,
    smooth: pd.DataFrame,
    *,
    tests: pd.DataFrame | None = None,
    labels: dict[str, str] | None = None,
    time_label: str = "Time",
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Figure:
    """Scaled Schoenfeld residuals against time with a smooth, one panel per term.

    Parameters
    ----------
    residuals : DataFrame
        Columns ``term, time, residual`` (one row per event per term);
        ``time`` on the transformed scale the test used.
    smooth : DataFrame
        Columns ``term, time, fit`` (and optionally ``ci_low, ci_high``): the
        smooth of the residuals; a flat line at the coefficient means
        proportional hazards.
    tests : DataFrame, optional
        Columns ``term, p_value``, shown in each panel's title.
    labels : dict, optional
        Panel titles by term.

    """
    _require(residuals, ["term", "time", "residual"], "residuals")
    _require(smooth, ["term", "time", "fit"], "smooth")
    terms = list(dict.fromkeys(residuals["term"].astype(str)))
    ncol = min(3, len(terms))
    nrow = int(np.ceil(len(terms) / ncol))
    fig = new_figure(width_mm, 45.0 * nrow)
    pvals = {}
    if tests is not None:
        pvals = dict(zip(tests["term"].astype(str), tests["p_value"].astype(float), strict=True))
    with matplotlib.rc_context(RC):
        for k, term in enumerate(terms):
            ax = fig.add_subplot(nrow, ncol, k + 1)
            r = residuals[residuals["term"].astype(str) == term]
            ax.plot(
                r["time"], r["residual"], ls="none", marker="o", ms=1.5, color="#777777", alpha=0.6
            )
            s = smooth[smooth["term"].astype(str) == term].sort_values("time")
            if {"ci_low", "ci_high"} <= set(s.columns):
                ax.fill_between(s["time"], s["ci_low"], s["ci_high"], color=PALETTE[0], alpha=0.2)
            ax.plot(s["time"], s["fit"], color=PALETTE[0])
            if "coef" in s.columns and len(s):
                ax.axhline(float(s["coef"].iloc[0]), color=_IDEAL_COLOUR, lw=0.8, ls="--")
            lo, hi = np.nanquantile(r["residual"], [0.02, 0.98])
            if s.shape[0]:
                lo = min(lo, float(np.nanmin(s.get("ci_low", s["fit"]))))
                hi = max(hi, float(np.nanmax(s.get("ci_high", s["fit"]))))
            pad = 0.05 * (hi - lo if hi > lo else 1.0)
            ax.set_ylim(lo - pad, hi + pad)
            head = labels.get(term, term) if labels else term
            if term in pvals:
                p = pvals[term]
                head += f"  (p = {p:.3f})" if p >= 0.001 else "  (p < 0.001)"
            ax.set_title(head)
            ax.set_xlabel(time_label)
            ax.set_ylabel("Beta(t)")
    return fig


def time_dependent_auc_figure(
    table: pd.DataFrame,
    *,
    models: Sequence[str],
    time_label: str = "Time",
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Time-dependent AUC against time with pointwise bands, one line per model.

    ``table`` has columns ``model, time, estimate, ci_low, ci_high``.
    """
    _require(table, ["model", "time", "estimate", "ci_low", "ci_high"], "table")
    fig = new_figure(width_mm, 0.75 * width_mm)
    with matplotlib.rc_context(RC):
        ax = fig.add_subplot(1, 1, 1)
        for k, m in enumerate(models):
            sub = table[table["model"] == m].sort_values("time")
            st = _style(k)
            ax.fill_between(
                sub["time"], sub["ci_low"], sub["ci_high"], color=st["color"], alpha=0.15, lw=0
            )
            ax.plot(
                sub["time"],
                sub["estimate"],
                marker=MARKERS[k % len(MARKERS)],
                ms=2.5,
                label=m,
                **st,
            )
        ax.axhline(0.5, color=_IDEAL_COLOUR, lw=0.8, ls=":")
        ax.set_ylim(0.4, 1.0)
        ax.set_xlabel(time_label)
        ax.set_ylabel("Time-dependent AUC")
        ax.legend(frameon=False, loc="lower right")
    return fig
