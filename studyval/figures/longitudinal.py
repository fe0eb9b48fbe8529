"""Repeated functional scores (VAS, OKS): observed means and mixed-model fit, from the ``lmm_means`` table."""

from __future__ import annotations

from collections.abc import Mapping

import matplotlib
import pandas as pd
from matplotlib.figure import Figure

from studyval.errors import StudyvalError
from studyval.figures.style import DOUBLE_COLUMN_MM, LINESTYLES, MARKERS, PALETTE, RC, new_figure

__all__ = ["longitudinal_figure"]


def longitudinal_figure(
    means: pd.DataFrame,
    *,
    labels: Mapping[str, str],
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Figure:
    """One panel per outcome: observed mean (t-interval) per visit and group, and the fitted line.

    The figure computes nothing: the intervals are the table's ``ci_low`` and
    ``ci_high`` (:func:`studyval.analysis.descriptive.group_means`).

    Parameters
    ----------
    means : DataFrame
        Columns ``outcome, month, oa, mean, ci_low, ci_high, fitted``.
    labels : mapping
        Outcome -> axis label.
    width_mm : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = {"outcome", "month", "oa", "mean", "ci_low", "ci_high", "fitted"}
    if not need <= set(means.columns):
        raise StudyvalError(f"means lacks columns {sorted(need - set(means.columns))}")
    outcomes = list(dict.fromkeys(means["outcome"]))
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, 65)
        axes = fig.subplots(1, len(outcomes), squeeze=False)[0]
        for ax, outcome in zip(axes, outcomes, strict=True):
            sub = means[means["outcome"] == outcome]
            for k, grp in enumerate(sorted(sub["oa"].unique())):
                g = sub[sub["oa"] == grp].sort_values("month")
                x = g["month"].to_numpy(float) + (k - 0.5) * 0.6
                yerr = [g["mean"] - g["ci_low"], g["ci_high"] - g["mean"]]
                ax.errorbar(
                    x,
                    g["mean"],
                    yerr=yerr,
                    fmt=MARKERS[k],
                    color=PALETTE[k],
                    ms=3.5,
                    capsize=2,
                    lw=0.8,
                    label=f"{grp} (observed)",
                )
                ax.plot(
                    g["month"],
                    g["fitted"],
                    color=PALETTE[k],
                    ls=LINESTYLES[k],
                    label=f"{grp} (mixed model)",
                )
            ax.set_xticks(sorted(sub["month"].unique()))
            ax.set_xlabel("Months since index imaging")
            ax.set_ylabel(labels.get(outcome, outcome))
        axes[-1].legend(frameon=False, loc="best")
    return fig
