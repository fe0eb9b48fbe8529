"""What a protocol's figures are: a name, a caption and a function that draws them at a width.

A protocol module exposes ``figure_specs(tables, plan) -> list[FigureSpec]``.
The same specs serve the results bundle (:func:`draw_specs`, each figure at
its own column width, PNG 300 dpi + PDF + SVG) and the manuscript command
``studyval figures`` (every width and format a journal asks for, with a
caption file). Because both draw from the bundle's tables through the same
function, a manuscript figure never disagrees with the report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from matplotlib.figure import Figure

from studyval.figures.style import DOUBLE_COLUMN_MM, SINGLE_COLUMN_MM, save_figure

__all__ = [
    "CAPTIONS",
    "COLUMN_MM",
    "FigureSpec",
    "captions_json",
    "check_specs",
    "ci_text",
    "count",
    "draw_specs",
]

#: Name of the caption file :func:`draw_specs` writes beside the figures.
CAPTIONS = "captions.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")

#: Journal column widths in mm.
COLUMN_MM: dict[str, float] = {"single": SINGLE_COLUMN_MM, "double": DOUBLE_COLUMN_MM}


@dataclass(frozen=True)
class FigureSpec:
    """One figure of a protocol.

    Attributes
    ----------
    name : str
        File stem (``roc_external``); the report refers to ``figures/<name>.png``.
    caption : str
        Self-contained caption stating what is shown, n (and events) and the CI
        method, built from the result tables.
    draw : callable
        ``draw(width_mm) -> matplotlib.figure.Figure``; must be pure (tables in,
        figure out) and deterministic.
    column : {"single", "double"}
        The journal column the figure is designed for; the bundle copy is drawn
        at this width.

    """

    name: str
    caption: str
    draw: Callable[[float], Figure]
    column: Literal["single", "double"] = "single"

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                f"figure name must be letters, digits, '_' or '-' (a file stem), not {self.name!r}"
            )
        if not isinstance(self.caption, str) or not self.caption.strip():
            raise ValueError(f"figure {self.name!r} has an empty caption")
        if self.column not in COLUMN_MM:
            raise ValueError(
                f"figure {self.name!r}: column must be 'single' or 'double', not {self.column!r}"
            )
        if not callable(self.draw):
            raise ValueError(f"figure {self.name!r}: draw must be callable draw(width_mm)")

    @property
    def width_mm(self) -> float:
        """Width of the figure's own column in mm."""
        return COLUMN_MM[self.column]


def check_specs(specs: Sequence[FigureSpec]) -> list[FigureSpec]:
    """The specs as a list; raise ``ValueError`` for a non-spec or a duplicated name."""
    specs = list(specs)
    bad = [type(s).__name__ for s in specs if not isinstance(s, FigureSpec)]
    if bad:
        raise ValueError(f"figure_specs must return FigureSpec objects, got {', '.join(bad)}")
    names = [s.name for s in specs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicated figure names: {', '.join(dupes)}")
    return specs


def captions_json(specs: Sequence[FigureSpec]) -> str:
    """``{name: {caption, column, width_mm}}`` as JSON text with sorted keys (deterministic)."""
    data = {
        s.name: {"caption": s.caption, "column": s.column, "width_mm": s.width_mm}
        for s in check_specs(specs)
    }
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def draw_specs(specs: Sequence[FigureSpec], directory: Path) -> list[Path]:
    """Draw every spec at its own column width into ``directory`` (PNG 300 dpi, PDF, SVG).

    Also writes ``directory/captions.json`` (:func:`captions_json`), so that a
    report or a paper can use the same captions as ``studyval figures``.
    """
    specs = check_specs(specs)
    directory = Path(directory)
    paths: list[Path] = []
    for spec in specs:
        paths.extend(save_figure(spec.draw(spec.width_mm), directory, spec.name))
    directory.mkdir(parents=True, exist_ok=True)
    captions = directory / CAPTIONS
    captions.write_text(captions_json(specs), encoding="utf-8", newline="\n")
    paths.append(captions)
    return paths


# ----------------------------------------------------------------------------- caption helpers


def count(n: Any) -> str:
    """An integer count as a caption prints it: ``1,000``."""
    return f"{int(n):,}"


def ci_text(method: str, level: float = 0.95) -> str:
    """The interval method in caption words: ``ci_text("DeLong", 0.95) == "DeLong 95% CI"``.

    A parenthesised detail moves after "CI" (``"cluster bootstrap (bca, 2000
    resamples)"`` gives ``"cluster bootstrap 95% CI (BCa, 2,000 resamples)"``);
    lower-case method names are capitalised as published (Wilson, Clopper-Pearson,
    Agresti-Coull, Jeffreys, Wald, BCa).
    """
    text = str(method).strip()
    detail = ""
    m = re.match(r"^(.*?)\s*\((.*)\)\s*$", text)
    if m:
        text, detail = m.group(1), m.group(2)

    def pretty(words: str) -> str:
        out = words
        for low, proper in _PROPER.items():
            out = re.sub(rf"\b{re.escape(low)}\b", proper, out, flags=re.IGNORECASE)
        return re.sub(
            r"\b(\d{4,})(?= (?:bootstrap )?(?:resamples|replicates|refits))",
            lambda g: f"{int(g.group(1)):,}",
            out,
        )

    pct = f"{100 * float(level):g}%"
    head = f"{pretty(text)} {pct} CI" if text else f"{pct} CI"
    return f"{head} ({pretty(detail)})" if detail else head


_PROPER = {
    "wilson": "Wilson",
    "clopper-pearson": "Clopper-Pearson",
    "agresti-coull": "Agresti-Coull",
    "jeffreys": "Jeffreys",
    "wald": "Wald",
    "bca": "BCa",
    "delong": "DeLong",
    "greenwood": "Greenwood",
}
