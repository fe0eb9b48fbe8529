"""Manuscript figures drawn from result tables (never from raw data).

One style for every figure: DejaVu Sans embedded as TrueType in PDF, text as
paths in SVG, sizes for journal columns (single 85 mm, double 170 mm), the
Okabe-Ito colour-blind-safe palette, and line styles and markers that keep
models apart in greyscale. Figures are built on :class:`matplotlib.figure.Figure`
objects (no pyplot global state) and saved with deterministic metadata.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from matplotlib.figure import Figure

__all__ = [
    "DOUBLE_COLUMN_MM",
    "LINESTYLES",
    "MARKERS",
    "PALETTE",
    "RC",
    "SINGLE_COLUMN_MM",
    "new_figure",
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

RC = {
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
    params.update(RC)
    return params


def new_figure(width_mm: float, height_mm: float) -> Figure:
    """A constrained-layout figure of ``width_mm`` x ``height_mm`` in the house style."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width_mm * MM, height_mm * MM), layout="constrained")
    return fig


def _renumber_svg_ids(path: Path) -> None:
    """Replace matplotlib's hashed SVG element ids by sequential ones.

    The hashes can depend on object identities (e.g. a blended transform's
    repr), which would make two runs of the same analysis differ; sequential
    ids in document order are deterministic.
    """
    text = path.read_text(encoding="utf-8")
    ids = list(dict.fromkeys(re.findall(r'id="([A-Za-z][0-9a-f]{8,})"', text)))
    for k, old in enumerate(ids):
        text = re.sub(rf"\b{re.escape(old)}\b", f"{old[0]}{k:06d}", text)
    path.write_text(text, encoding="utf-8")


def save_figure(
    fig: Figure, directory: Path, name: str, *, dpi: Sequence[int] = (300,)
) -> list[Path]:
    """Save ``fig`` as PNG (each ``dpi``), PDF and SVG with deterministic bytes.

    Returns the written paths. PNG files are named ``name.png`` for the first
    resolution and ``name_<dpi>dpi.png`` for further ones.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    with matplotlib.rc_context(RC):
        for k, d in enumerate(dpi):
            p = directory / (f"{name}.png" if k == 0 else f"{name}_{d}dpi.png")
            fig.savefig(p, dpi=d, metadata={"Software": None})
            paths.append(p)
        p = directory / f"{name}.pdf"
        fig.savefig(p, metadata={"CreationDate": None, "Producer": None, "Creator": None})
        paths.append(p)
        p = directory / f"{name}.svg"
        fig.savefig(p, metadata={"Date": None, "Creator": None})
        _renumber_svg_ids(p)
        paths.append(p)
    return paths
