"""Pandoc: running it, and the Markdown it converts, assembled as Quarto lays out cells.

:func:`_check_with_pandoc` runs the Lua filter (``templates/studyval.lua``)
over the document with placeholder figures before any cell runs, whichever
engine renders, so that what only pandoc's reader sees (citations, tabsets,
cross-references) fails early.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from studyval.errors import RenderError
from studyval.render.common import _remaining, _template
from studyval.render.qmd import (
    _INLINE_CODE_RE,
    _SHORTCODE_RE,
    QmdCell,
    QmdDocument,
    _authors,
    _format_date,
)


def _pandoc_path() -> str:
    try:
        import pypandoc

        return pypandoc.get_pandoc_path()
    except (ImportError, OSError) as exc:
        raise RenderError(
            "pandoc was not found; install the 'pypandoc-binary' package, which ships it"
        ) from exc


@functools.cache
def _pandoc_version(pandoc: str) -> str:
    """``"pandoc 3.9"``: the first line of ``pandoc --version``, asked once per binary."""
    proc = subprocess.run([pandoc, "--version"], capture_output=True, text=True, check=False)
    first = proc.stdout.splitlines()[0] if proc.stdout else "pandoc"
    return first.strip()


def _run_pandoc(args: Sequence[str], cwd: Path, deadline: float, what: str, source: str) -> None:
    pandoc = _pandoc_path()
    try:
        proc = subprocess.run(
            [pandoc, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_remaining(deadline, what),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"pandoc did not finish {what} in time") from exc
    if proc.returncode != 0:
        message = proc.stderr.strip()
        ours = [ln for ln in message.splitlines() if ln.startswith("studyval: ")]
        if ours:
            raise RenderError(f"{source}: " + ours[0][len("studyval: ") :])
        raise RenderError(f"{source}: pandoc failed while {what}:\n{message}")


# --------------------------------------------------------------------------- #
# Markdown assembly
# --------------------------------------------------------------------------- #


@dataclasses.dataclass
class _Output:
    """One cell output reduced to what the markdown needs."""

    kind: str  # "stdout", "stderr", "markdown", "html", "text", "image"
    text: str = ""
    path: str = ""
    width: int | None = None
    height: int | None = None


def _fence(text: str, minimum: int = 3) -> str:
    runs = [len(m) for m in re.findall(r"`+", text)]
    return "`" * max(minimum, max(runs, default=0) + 1)


def _code_block(text: str, attrs: str = "") -> str:
    fence = _fence(text)
    head = f"{fence} {{{attrs}}}" if attrs else fence
    return f"{head}\n{text.rstrip(chr(10))}\n{fence}\n"


def _raw_block(fmt: str, text: str) -> str:
    fence = _fence(text)
    return f"{fence}{{={fmt}}}\n{text.rstrip(chr(10))}\n{fence}\n"


def _attr_value(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cell_markdown(doc: QmdDocument, cell: QmdCell, outputs: Sequence[_Output]) -> str:
    """Pandoc markdown for one code cell, laid out as Quarto lays it out."""
    if not doc.option(cell, "include"):
        return ""
    asis = doc.option(cell, "output") == "asis"
    label = cell.label
    caption = cell.options.get("fig-cap")
    images = [o for o in outputs if o.kind == "image"]
    if caption is not None and len(images) != 1:
        raise RenderError(
            f"{doc.path.name}: {cell.describe()} has fig-cap but produced {len(images)} "
            "images; the fallback renders exactly one captioned figure per cell"
        )
    figure_label = label if (label and label.startswith("fig-") and len(images) == 1) else None
    parts: list[str] = []
    if doc.option(cell, "echo") and cell.source.strip():
        parts.append(_code_block(cell.source, ".python .cell-code"))
    for out in outputs:
        if (out.kind == "stdout" and asis) or out.kind == "markdown":
            _check_printed_markdown(doc, cell, out.text)
        if out.kind == "stdout" and asis:
            parts.append(out.text.rstrip("\n") + "\n")
            continue
        if out.kind == "image":
            attrs = []
            if figure_label:
                attrs.append(f"#{figure_label}")
            if out.width:
                attrs.append(f"width={out.width}")
            if out.height:
                attrs.append(f"height={out.height}")
            if "fig-alt" in cell.options:
                attrs.append(f"alt={_attr_value(cell.options['fig-alt'])}")
            alt = " ".join(str(caption).split()) if caption else ""
            body = f"![{alt}]({out.path})" + ("{" + " ".join(attrs) + "}" if attrs else "") + "\n"
        elif out.kind in ("stdout", "stderr", "text"):
            body = _code_block(out.text)
        elif out.kind == "html":
            body = _raw_block("html", out.text)
        else:  # markdown
            body = out.text.rstrip("\n") + "\n"
        if asis:
            parts.append(body)
            continue
        cls = {
            "stdout": ".cell-output .cell-output-stdout",
            "stderr": ".cell-output .cell-output-stderr",
            "markdown": ".cell-output .cell-output-display .cell-output-markdown",
        }.get(out.kind, ".cell-output .cell-output-display")
        parts.append(f"::: {{{cls}}}\n{body}:::\n")
    if not parts:
        return ""
    content = "\n".join(parts)
    div_label = label if (label and label != figure_label) else None
    if asis and div_label is None and caption is None:
        return content
    head = f"::: {{#{div_label} .cell}}" if div_label else "::: {.cell}"
    return f"{head}\n{content}\n:::\n"


def _check_printed_markdown(doc: QmdDocument, cell: QmdCell, text: str) -> None:
    """Refuse Markdown printed by a cell that Quarto would execute.

    A shortcode (``{{< include ... >}}``) or an inline expression in a cell's
    output is run by Quarto, never by the fallback, so the two engines would
    differ; in a report it almost always means that a value from the bundle
    was printed without :func:`studyval.reporting.md_escape`.
    """
    found = _SHORTCODE_RE.search(text) or _INLINE_CODE_RE.search(text)
    if found:
        line = text[: found.start()].count("\n") + 1
        raise RenderError(
            f"{doc.path.name}: {cell.describe()} printed {found.group().strip()!r} (output line "
            f"{line}), which Quarto would execute as a shortcode or inline code; a value read "
            "from the bundle must be printed through studyval.reporting.md_escape (or md_table), "
            "which shows it as text"
        )


def _front_matter_yaml(doc: QmdDocument) -> str:
    fm = doc.front_matter
    meta: dict[str, Any] = {}
    for key in ("title", "subtitle", "abstract", "lang"):
        if key in fm:
            meta[key] = fm[key]
    if "author" in fm:
        meta["author"] = _authors(fm["author"], doc.path.name)
    if "date" in fm:
        meta["date"] = _format_date(fm["date"], doc.path.name)
    if "title" not in meta:
        meta["pagetitle"] = doc.path.stem
    return "---\n" + yaml.safe_dump(meta, sort_keys=True, allow_unicode=True) + "---\n"


def _assemble(doc: QmdDocument, rendered: Mapping[int, str]) -> str:
    parts = [_front_matter_yaml(doc)]
    for index, cell in enumerate(doc.cells):
        text = cell.source if cell.kind == "markdown" else rendered.get(index, "")
        if text:
            parts.append(text)
    return "\n".join(parts)


def _check_with_pandoc(doc: QmdDocument, root: Path, deadline: float) -> None:
    """Run the Lua filter over the markdown with placeholder figures.

    This catches what only pandoc's reader sees (citations, tabsets, table and
    equation cross-references ...) before any cell runs, whichever engine
    renders.
    """
    rendered: dict[int, str] = {}
    for index, cell in enumerate(doc.cells):
        if cell.kind == "code" and "fig-cap" in cell.options:
            placeholder = [_Output("image", path="placeholder.png")]
            rendered[index] = _cell_markdown(doc, cell, placeholder)
    check_dir = root / "check"
    check_dir.mkdir()
    (check_dir / "check.md").write_text(_assemble(doc, rendered), encoding="utf-8")
    (check_dir / "studyval.lua").write_text(_template("studyval.lua"), encoding="utf-8")
    _run_pandoc(
        [
            "check.md",
            "-f",
            "markdown",
            "-t",
            "native",
            "--lua-filter",
            "studyval.lua",
            "-o",
            "check.native",
        ],
        check_dir,
        deadline,
        "checking the markdown",
        doc.path.name,
    )
