"""Rates of two periods against published baselines and targets (drawn from a result table)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from studyval.figures.style import MARKERS, PALETTE, RC, SINGLE_COLUMN_MM, new_figure

__all__ = ["rates_vs_baseline_figure"]

_REQUIRED = (
    "period",
    "measure",
    "estimate",
    "ci_low",
    "ci_high",
    "numerator",
    "denominator",
    "baseline",
    "target",
)


def rates_vs_baseline_figure(rates: pd.DataFrame, *, width_mm: float = SINGLE_COLUMN_MM) -> Figure:
    """Point estimates with CIs per measure and period; baseline dashed, target dotted.

    Parameters
    ----------
    rates : DataFrame
        Columns ``period, measure, estimate, ci_low, ci_high, numerator,
        denominator, baseline, target`` (one row per period and measure).
    width_mm : float
        Figure width.

    """
    missing = [c for c in _REQUIRED if c not in rates.columns]
    if missing:
        raise ValueError(f"rates table lacks column(s): {', '.join(missing)}")
    measures = list(dict.fromkeys(rates["measure"]))
    periods = list(dict.fromkeys(rates["period"]))
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, 0.75 * width_mm)
        ax = fig.add_subplot(1, 1, 1)
        offsets = np.linspace(-0.15, 0.15, len(periods))
        for i, m in enumerate(measures):
            sub = rates[rates["measure"] == m].set_index("period")
            b, t = float(sub["baseline"].iloc[0]), float(sub["target"].iloc[0])
            ax.hlines(
                b,
                i - 0.35,
                i + 0.35,
                colors="black",
                linestyles="--",
                lw=0.8,
                label="baseline" if i == 0 else None,
            )
            ax.hlines(
                t,
                i - 0.35,
                i + 0.35,
                colors="grey",
                linestyles=":",
                lw=1.0,
                label="target" if i == 0 else None,
            )
            for j, p in enumerate(periods):
                r = sub.loc[p]
                x = i + offsets[j]
                ax.errorbar(
                    x,
                    r["estimate"],
                    yerr=[[r["estimate"] - r["ci_low"]], [r["ci_high"] - r["estimate"]]],
                    fmt=MARKERS[j],
                    color=PALETTE[j],
                    ms=4,
                    capsize=2,
                    lw=1,
                    label=p if i == 0 else None,
                )
                ax.annotate(
                    f"{int(r['numerator'])}/{int(r['denominator'])}",
                    (x, r["estimate"]),
                    xytext=(5, 0),
                    textcoords="offset points",
                    ha="left",
                    va="center",
                    fontsize=6,
                )
        ax.set_xticks(range(len(measures)), [m.capitalize() for m in measures])
        ax.set_xlim(-0.5, len(measures) - 0.5)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Proportion of VCF-positive scans")
        ax.legend(loc="lower left", frameon=False, ncol=2)
    return fig
