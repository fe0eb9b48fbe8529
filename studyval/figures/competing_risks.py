"""Competing-risk figures drawn from result tables: cumulative incidence and grouped calibration."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from studyval.figures.style import DOUBLE_COLUMN_MM, LINESTYLES, MARKERS, PALETTE, RC, new_figure

__all__ = ["calibration_groups_figure", "cumulative_incidence_figure"]

_SET_LABEL = {"internal": "Development centre", "external": "External centre"}
_SHORT = {"internal": "Development", "external": "External"}

F = TypeVar("F", bound=Callable[..., Figure])


def _house_style(fn: F) -> F:
    """Draw inside the house rc context (spines, fonts, sizes apply to every axes)."""

    @functools.wraps(fn)
    def inner(*args: Any, **kwargs: Any) -> Figure:
        with matplotlib.rc_context(RC):
            return fn(*args, **kwargs)

    return inner  # type: ignore[return-value]


@_house_style
def cumulative_incidence_figure(
    curves: pd.DataFrame,
    *,
    gray: pd.DataFrame | None = None,
    horizon: float | None = None,
    time_label: str = "Time",
    at_risk_times: Sequence[float] | None = None,
    min_at_risk: int = 10,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Figure:
    """Aalen-Johansen cumulative incidence by group, one panel per set and cause.

    Parameters
    ----------
    curves : DataFrame
        ``set, cause, group, time, n_risk, estimate, ci_low, ci_high`` (the
        table of :func:`studyval.analysis.competing_risks.cumulative_incidence`
        with ``set`` and ``cause`` columns added).
    gray : DataFrame, optional
        ``set, cause, p_value``: Gray's test shown in each panel.
    horizon : float, optional
        Drawn as a dotted vertical line.
    min_at_risk : int
        Curves stop where fewer patients remain at risk (the tail is unstable).
    at_risk_times : sequence of float, optional
        Times of the numbers-at-risk rows under each panel (default yearly beyond 730 days, else quarters).

    """
    sets = list(dict.fromkeys(curves["set"]))
    causes = list(dict.fromkeys(curves["cause"]))
    groups = list(dict.fromkeys(sorted(curves["group"].astype(str).unique())))
    tmax = float(curves["time"].max())
    if at_risk_times is not None:
        ticks = [float(x) for x in at_risk_times]
    else:  # yearly when follow-up spans years (times in days), else quarters of the range
        step = 365.0 if tmax > 730 else max(tmax / 4, 1.0)
        ticks = [round(k * step) for k in range(int(tmax // step) + 1)]
    fig = new_figure(width_mm, 72 * len(sets))
    grid = fig.add_gridspec(2 * len(sets), len(causes), height_ratios=[4, 1] * len(sets))
    for i, set_ in enumerate(sets):
        for j, cause in enumerate(causes):
            ax = fig.add_subplot(grid[2 * i, j])
            tab = fig.add_subplot(grid[2 * i + 1, j], sharex=ax)
            sub = curves[(curves["set"] == set_) & (curves["cause"] == cause)]
            for k, g in enumerate(groups):
                c_all = sub[sub["group"].astype(str) == g].sort_values("time")
                # the tail where fewer than min_at_risk remain is not drawn (unstable jumps)
                c = c_all[c_all["n_risk"] >= min_at_risk]
                t = np.concatenate(([0.0], c["time"].to_numpy(float)))
                y = np.concatenate(([0.0], c["estimate"].to_numpy(float)))
                lo = np.concatenate(([0.0], c["ci_low"].fillna(0).to_numpy(float)))
                hi = np.concatenate(([0.0], c["ci_high"].fillna(0).to_numpy(float)))
                ax.step(t, y, where="post", color=PALETTE[k], linestyle=LINESTYLES[k], label=g)
                ax.fill_between(t, lo, hi, step="post", color=PALETTE[k], alpha=0.15, linewidth=0)
                n_at = []
                for tt in ticks:
                    later = c_all[c_all["time"] >= tt]
                    n_at.append(int(later["n_risk"].iloc[0]) if len(later) else 0)
                for tt, nn in zip(ticks, n_at, strict=True):
                    tab.text(
                        tt,
                        len(groups) - 1 - k,
                        str(nn),
                        ha="center",
                        va="center",
                        fontsize=6,
                        color=PALETTE[k],
                    )
            if horizon is not None:
                ax.axvline(horizon, color="0.5", linestyle=":", linewidth=0.8)
            label = str(cause).replace("liver transplantation", "transplant")
            title = f"{_SHORT.get(set_, set_)}: {label}"
            if gray is not None:
                gr = gray[(gray["set"] == set_) & (gray["cause"] == cause)]
                if len(gr):
                    p = float(gr["p_value"].iloc[0])
                    title += f"\nGray's test p {'< 0.001' if p < 0.001 else f'= {p:.3f}'}"
            ax.set_title(title)
            ax.set_ylabel("Cumulative incidence")
            ax.set_ylim(0, max(0.05, float(sub["ci_high"].max(skipna=True) or 0) * 1.05))
            ax.set_xlim(0, tmax)
            if i == 0 and j == 0:
                ax.legend(frameon=False, loc="upper left")
            tab.set_ylim(-0.5, len(groups) - 0.5)
            tab.set_yticks(range(len(groups)))
            tab.set_yticklabels(list(reversed(groups)), fontsize=6)
            tab.set_xticks(ticks)
            tab.tick_params(axis="y", length=0, pad=12)
            for side in ("left", "bottom"):
                tab.spines[side].set_visible(False)
            tab.set_xlabel(time_label if i == len(sets) - 1 else "")
            tab.set_title("Number at risk", fontsize=6, loc="left")
            ax.tick_params(labelbottom=False)
    return fig


@_house_style
def calibration_groups_figure(
    groups: pd.DataFrame,
    *,
    models: Sequence[str],
    horizon_label: str,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Figure:
    """Predicted vs observed (Aalen-Johansen) cumulative incidence by risk group, per set.

    Parameters
    ----------
    groups : DataFrame
        ``set, model, group, predicted, observed, ci_low, ci_high``.
    models : sequence of str
        Models in legend order.

    """
    sets = list(dict.fromkeys(groups["set"]))
    fig = new_figure(width_mm, 78)
    top = float(np.nanmax(groups[["predicted", "ci_high"]].to_numpy(float))) * 1.08
    for i, set_ in enumerate(sets):
        ax = fig.add_subplot(1, len(sets), i + 1)
        ax.plot([0, top], [0, top], color="0.6", linewidth=0.8, linestyle=":", label="ideal")
        for k, m in enumerate(models):
            g = groups[(groups["set"] == set_) & (groups["model"] == m)].sort_values("predicted")
            x, y = g["predicted"].to_numpy(float), g["observed"].to_numpy(float)
            err = np.vstack([y - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - y])
            ax.errorbar(
                x,
                y,
                yerr=np.nan_to_num(err),
                color=PALETTE[k],
                marker=MARKERS[k],
                markersize=3.5,
                linestyle=LINESTYLES[k],
                linewidth=0.9,
                capsize=2,
                label=m,
            )
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_aspect("equal")
        ax.set_title(_SET_LABEL.get(set_, set_) + (" (apparent)" if set_ == "internal" else ""))
        ax.set_xlabel(f"Predicted risk of death by {horizon_label}")
        ax.set_ylabel("Observed (Aalen-Johansen)")
        if i == 0:
            ax.legend(frameon=False, loc="upper left")
    return fig
