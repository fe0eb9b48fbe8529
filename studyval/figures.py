"""Manuscript figures drawn from result tables (never from raw data).

One style for every figure: DejaVu Sans embedded as TrueType in PDF, text as
paths in SVG, sizes for journal columns (single 85 mm, double 170 mm), the
Okabe-Ito colour-blind-safe palette, and line styles and markers that keep
models apart in greyscale. Figures are built on :class:`matplotlib.figure.Figure`
objects (no pyplot global state) and saved with deterministic metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

__all__ = [
    "DOUBLE_COLUMN_MM",
    "PALETTE",
    "SINGLE_COLUMN_MM",
    "confusion_figure",
    "flow_figure",
    "roc_figure",
    "save_figure",
    "style",
]

SINGLE_COLUMN_MM = 85.0
DOUBLE_COLUMN_MM = 170.0
MM = 1 / 25.4

#: Okabe & Ito (2008) colour-blind-safe palette.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "studyval",
    "savefig.dpi": 300,
    "figure.dpi": 100,
}


def style() -> matplotlib.RcParams:
    """The rc parameters every studyval figure uses (a copy)."""
    params = matplotlib.RcParams()
    params.update(_RC)
    return params


def _figure(width_mm: float, height_mm: float) -> Figure:
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(width_mm * MM, height_mm * MM), layout="constrained")
    return fig


def save_figure(fig: Figure, directory: Path, name: str, *, dpi: Sequence[int] = (300,)) -> list[Path]:
    """Save ``fig`` as PNG (each ``dpi``), PDF and SVG with deterministic bytes.

    Returns the written paths. PNG files are named ``name.png`` for the first
    resolution and ``name_<dpi>dpi.png`` for further ones.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(_RC):
        for k, d in enumerate(dpi):
            p = directory / (f"{name}.png" if k == 0 else f"{name}_{d}dpi.png")
            fig.savefig(p, dpi=d, metadata={"Software": None})
            paths.append(p)
        p = directory / f"{name}.pdf"
        fig.savefig(p, metadata={"CreationDate": None, "Producer": None, "Creator": None})
        paths.append(p)
        p = directory / f"{name}.svg"
        fig.savefig(p, metadata={"Date": None, "Creator": None})
        paths.append(p)
    return paths


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
    """
    with matplotlib.rc_context(_RC):
        fig = _figure(width_mm, width_mm * 0.95)
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
    """
    with matplotlib.rc_context(_RC):
        k = len(models)
        fig = _figure(width_mm, width_mm / max(k, 1) * 0.95 + 8)
        axes = fig.subplots(1, k, squeeze=False)[0]
        for ax, model in zip(axes, models, strict=True):
            row = confusion[confusion["model"] == model].iloc[0]
            cells = np.array([[row["tp"], row["fn"]], [row["fp"], row["tn"]]], dtype=float)
            share = cells / cells.sum(axis=1, keepdims=True)
            ax.imshow(share, cmap="Greys", vmin=0, vmax=1.6)
            for i in range(2):
                for j in range(2):
                    ax.text(j, i, f"{int(cells[i, j])}\n({100 * share[i, j]:.0f}%)", ha="center", va="center", fontsize=8)
            ax.set_xticks([0, 1], [f"Index +\n({positive})", f"Index -\n({negative})"])
            ax.set_yticks([0, 1], [f"Ref. {positive}", f"Ref. {negative}"])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(model, loc="center")
        fig.suptitle(f"Threshold: predicted probability >= {threshold:g}", fontsize=7, x=0.01, ha="left")
    return fig


def flow_figure(stages: pd.DataFrame, *, width_mm: float = DOUBLE_COLUMN_MM) -> Figure:
    """STARD-style participant flow diagram from counts.

    Parameters
    ----------
    stages : DataFrame
        Columns ``key, text, column, row`` and optional ``side`` (True for
        exclusion boxes drawn to the right of the main column). ``row`` is the
        vertical position (0 at the top); ``column`` the horizontal slot (0 for
        the main stream, 1.., for branches). Arrows join consecutive rows of the
        same column and a branch to its parent given in ``parent``.
    """
    rows = int(stages["row"].max()) + 1
    ncols = int(stages["column"].max()) + 1
    with matplotlib.rc_context(_RC):
        fig = _figure(width_mm, 22 * rows + 6)
        ax = fig.add_subplot()
        ax.set_xlim(0, ncols)
        ax.set_ylim(rows, 0)
        ax.axis("off")
        centres: dict[str, tuple[float, float]] = {}
        for rec in stages.itertuples(index=False):
            x = float(rec.column) + 0.5
            y = float(rec.row) + 0.5
            centres[rec.key] = (x, y)
            w, h = 0.92, 0.78
            face = "#f2f2f2" if getattr(rec, "side", False) else "white"
            box = FancyBboxPatch(
                (x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.0,rounding_size=0.04",
                linewidth=0.6, edgecolor="black", facecolor=face,
            )
            ax.add_patch(box)
            ax.text(x, y, rec.text, ha="center", va="center", fontsize=6.5, wrap=False, linespacing=1.25)
        for rec in stages.itertuples(index=False):
            parent = getattr(rec, "parent", None)
            if parent and parent in centres:
                x0, y0 = centres[parent]
                x1, y1 = centres[rec.key]
                if abs(x0 - x1) < 1e-9:
                    ax.annotate("", xy=(x1, y1 - 0.39), xytext=(x0, y0 + 0.39),
                                arrowprops={"arrowstyle": "->", "lw": 0.6})
                elif abs(y0 - y1) < 1e-9:
                    ax.annotate("", xy=(x1 - 0.46 * np.sign(x1 - x0), y1), xytext=(x0 + 0.46 * np.sign(x1 - x0), y0),
                                arrowprops={"arrowstyle": "->", "lw": 0.6})
                else:
                    ax.annotate("", xy=(x1, y1 - 0.39), xytext=(x0, y0 + 0.39),
                                arrowprops={"arrowstyle": "->", "lw": 0.6, "connectionstyle": "angle,angleA=-90,angleB=180,rad=0"})
    return fig
