"""Figures of discrimination and accuracy: ROC curves and confusion matrices."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from studyval.figures.style import (
    DOUBLE_COLUMN_MM,
    LINESTYLES,
    PALETTE,
    RC,
    SINGLE_COLUMN_MM,
    new_figure,
)

__all__ = ["confusion_figure", "roc_figure"]


def roc_figure(
    points: pd.DataFrame,
    aucs: pd.DataFrame,
    *,
    models: Sequence[str],
    title: str | None = None,
    width_mm: float = SINGLE_COLUMN_MM,
) -> Figure:
    """Empirical ROC curves of several models with AUC (CI) in the legend.

    Parameters
    ----------
    points : DataFrame
        Columns ``model, fpr, tpr`` (one curve per model, in threshold order).
    aucs : DataFrame
        Columns ``model, estimate, ci_low, ci_high, n_positive, n_negative``.
    models : sequence of str
        Models to draw, in legend order.
    title : str, optional
        Panel title.
    width_mm : float
        Figure width (the height follows); a journal column is 85 mm.
    """
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, width_mm * 0.95)
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#999999", lw=0.6, ls=":", label="Chance")
        for k, model in enumerate(models):
            pts = points[points["model"] == model]
            row = aucs[aucs["model"] == model].iloc[0]
            label = f"{model}: {row['estimate']:.3f} ({row['ci_low']:.3f}-{row['ci_high']:.3f})"
            ax.plot(
                pts["fpr"].to_numpy(),
                pts["tpr"].to_numpy(),
                color=PALETTE[k % len(PALETTE)],
                ls=LINESTYLES[k % len(LINESTYLES)],
                drawstyle="default",
                label=label,
            )
        ax.set_xlim(-0.01, 1.01)
        ax.set_ylim(-0.01, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("Sensitivity")
        n_pos = int(aucs["n_positive"].iloc[0])
        n_neg = int(aucs["n_negative"].iloc[0])
        ax.legend(
            loc="lower right",
            frameon=False,
            title=f"AUC (95% CI), n = {n_pos} + {n_neg}",
            title_fontsize=7,
        )
        if title:
            ax.set_title(title, loc="left")
    return fig


def confusion_figure(
    confusion: pd.DataFrame,
    *,
    models: Sequence[str],
    positive: str,
    negative: str,
    threshold: float,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Figure:
    """2x2 confusion matrices, one panel per model, counts and row percentages.

    Parameters
    ----------
    confusion : DataFrame
        Columns ``model, tp, fp, fn, tn``.
    models : sequence of str
        One panel per model, in this order.
    positive, negative : str
        Class labels for the axes.
    threshold : float
        The threshold the tables were made at (shown in the title).
    width_mm : float
        Figure width; a double journal column is 170 mm.
    """
    with matplotlib.rc_context(RC):
        k = len(models)
        fig = new_figure(width_mm, width_mm / max(k, 1) * 0.95 + 8)
        axes = fig.subplots(1, k, squeeze=False)[0]
        for ax, model in zip(axes, models, strict=True):
            row = confusion[confusion["model"] == model].iloc[0]
            cells = np.array([[row["tp"], row["fn"]], [row["fp"], row["tn"]]], dtype=float)
            share = cells / cells.sum(axis=1, keepdims=True)
            ax.imshow(share, cmap="Greys", vmin=0, vmax=1.6)
            for i in range(2):
                for j in range(2):
                    ax.text(
                        j,
                        i,
                        f"{int(cells[i, j])}\n({100 * share[i, j]:.0f}%)",
                        ha="center",
                        va="center",
                        fontsize=8,
                    )
            ax.set_xticks([0, 1], [f"Index +\n({positive})", f"Index -\n({negative})"])
            ax.set_yticks([0, 1], [f"Ref. {positive}", f"Ref. {negative}"])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(model, loc="center")
        fig.suptitle(
            f"Threshold: predicted probability >= {threshold:g}", fontsize=7, x=0.01, ha="left"
        )
    return fig
