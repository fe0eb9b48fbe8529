"""Weekly monitoring charts (p-chart with variable limits, binomial CUSUM) drawn from result tables."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from studyval.figures.style import PALETTE, RC, SINGLE_COLUMN_MM, new_figure

__all__ = ["cusum_figure", "p_chart_figure"]


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} table lacks column(s): {', '.join(missing)}")


def p_chart_figure(points: pd.DataFrame, *, width_mm: float = SINGLE_COLUMN_MM) -> Figure:
    """A p-chart: weekly proportions, centre line, stepped 3-sigma limits, flagged weeks marked.

    Parameters
    ----------
    points : DataFrame
        One chart's rows: ``week, proportion, n, centre, lcl, ucl, signal``
        (``signal`` ``below``/``above`` marks a flagged week).  The weekly
        counts ``n`` are printed in a row above the plotting area.

    """
    _require(points, ("week", "proportion", "n", "centre", "lcl", "ucl", "signal"), "p-chart")
    p = points.sort_values("week")
    wk = p["week"].to_numpy(float)
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, 0.62 * width_mm)
        ax = fig.add_subplot(1, 1, 1)
        edges = np.concatenate([wk - 0.5, [wk[-1] + 0.5]])
        for col, lab in (("ucl", "limits (3 sigma)"), ("lcl", None)):
            ax.stairs(
                p[col].to_numpy(float),
                edges,
                color="grey",
                lw=0.8,
                ls="--",
                label=lab,
                baseline=None,
            )
        ax.axhline(float(p["centre"].iloc[0]), color="black", lw=0.8, label="centre")
        ax.plot(
            wk, p["proportion"], marker="o", ms=3.5, color=PALETTE[0], lw=1, label="weekly rate"
        )
        flag = p["signal"].isin(["below", "above"]).to_numpy()
        if flag.any():
            ax.plot(
                wk[flag],
                p["proportion"].to_numpy(float)[flag],
                ls="none",
                marker="X",
                ms=8,
                color=PALETTE[1],
                label="flagged week",
            )
        # the weekly counts sit in a row above the plotting area, where no point, limit or
        # flag marker can cover them (a flagged week near 0 or 1 used to hide its count)
        counts = {"ha": "center", "va": "bottom", "fontsize": 5, "annotation_clip": False}
        for w, n in zip(wk, p["n"], strict=True):
            ax.annotate(
                str(int(n)),
                (w, 1.0),
                xytext=(0, 2),
                textcoords="offset points",
                xycoords=("data", "axes fraction"),
                **counts,
            )
        ax.annotate(
            "n:",
            (wk[0] - 0.45, 1.0),
            xytext=(0, 2),
            textcoords="offset points",
            xycoords=("data", "axes fraction"),
            **{**counts, "ha": "right"},
        )
        ax.set_xticks(wk, [str(int(w)) for w in wk])
        ax.set_xlabel("Week of the prospective period")
        ax.set_ylabel("Proportion")
        ax.set_ylim(0, 1.05)
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False, fontsize=6
        )
    return fig


def cusum_figure(points: pd.DataFrame, *, width_mm: float = SINGLE_COLUMN_MM) -> Figure:
    """A binomial CUSUM: the statistic by week, the decision interval h, signals marked.

    Parameters
    ----------
    points : DataFrame
        ``week, cusum, h, signal`` (boolean).

    """
    _require(points, ("week", "cusum", "h", "signal"), "CUSUM")
    p = points.sort_values("week")
    wk = p["week"].to_numpy(float)
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, 0.55 * width_mm)
        ax = fig.add_subplot(1, 1, 1)
        ax.plot(wk, p["cusum"], marker="o", ms=3.5, color=PALETTE[0], lw=1, label="CUSUM (missed)")
        ax.axhline(float(p["h"].iloc[0]), color="black", ls="--", lw=0.8, label="h")
        sig = p["signal"].to_numpy(bool)
        if sig.any():
            ax.plot(
                wk[sig],
                p["cusum"].to_numpy(float)[sig],
                ls="none",
                marker="X",
                ms=8,
                color=PALETTE[1],
                label="signal",
            )
        ax.set_xticks(wk, [str(int(w)) for w in wk])
        ax.set_xlabel("Week of the prospective period")
        ax.set_ylabel("CUSUM (missed scans)")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", frameon=False)
    return fig
