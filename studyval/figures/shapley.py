"""Modality contributions (Shapley) drawn from the ``shap_summary`` table."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from studyval.errors import StudyvalError
from studyval.figures.style import DOUBLE_COLUMN_MM, PALETTE, RC, new_figure

__all__ = ["modality_share_figure"]

_HATCH = ["", "///", "..."]


def modality_share_figure(
    table: pd.DataFrame,
    *,
    models: Sequence[str],
    conditions: Sequence[str] = ("op", "kl"),
    condition_labels: dict[str, str] | None = None,
    width_mm: float = DOUBLE_COLUMN_MM,
) -> Figure:
    """Stacked bars: share of the mean |phi| of each modality, per class; one panel per condition x model.

    Parameters
    ----------
    table : DataFrame
        Columns ``condition, model, class, modality, share`` (one ``set``), as
        ``GroupShapleyResult.to_frame`` with keys.
    models : sequence of str
        Panel columns, in order.
    conditions : sequence of str
        Panel rows.
    condition_labels : dict, optional
        Row titles.
    width_mm : float

    Returns
    -------
    matplotlib.figure.Figure
    """
    need = {"condition", "model", "class", "modality", "share"}
    if not need <= set(table.columns):
        raise StudyvalError(f"table lacks columns {sorted(need - set(table.columns))}")
    labels = condition_labels or {"op": "Osteoporosis stage", "kl": "KL grade"}
    modalities = list(dict.fromkeys(table["modality"]))
    with matplotlib.rc_context(RC):
        fig = new_figure(width_mm, 55 * len(conditions))
        axes = fig.subplots(len(conditions), len(models), squeeze=False)
        for r, cond in enumerate(conditions):
            for c, model in enumerate(models):
                ax = axes[r][c]
                sub = table[(table["condition"] == cond) & (table["model"] == model)]
                if sub.empty:
                    raise StudyvalError(f"no SHAP rows for {cond} / {model}")
                classes = list(dict.fromkeys(sub["class"]))
                bottom = np.zeros(len(classes))
                for k, mod in enumerate(modalities):
                    vals = (
                        sub[sub["modality"] == mod]
                        .set_index("class")
                        .reindex(classes)["share"]
                        .to_numpy(float)
                    )
                    ax.bar(
                        range(len(classes)),
                        vals,
                        bottom=bottom,
                        color=PALETTE[k % len(PALETTE)],
                        hatch=_HATCH[k % len(_HATCH)],
                        edgecolor="white",
                        linewidth=0.4,
                        label=mod,
                    )
                    bottom += vals
                ax.set_xticks(range(len(classes)), classes, rotation=20 if cond == "op" else 0)
                ax.set_ylim(0, 1)
                ax.set_ylabel("Share of mean |SHAP|" if c == 0 else "")
                ax.set_title(f"{labels.get(cond, cond)}: {model}", loc="left")
        axes[0][-1].legend(
            title="Modality", loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False
        )
    return fig
