"""The entry point: :func:`render_report` and :class:`RenderResult`."""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

from studyval.errors import RenderError
from studyval.render.common import _atomic_write, _check_self_contained, _stage
from studyval.render.jupyter import _render_jupyter
from studyval.render.pandoc import _check_with_pandoc
from studyval.render.params import _plain_params
from studyval.render.qmd import parse_qmd
from studyval.render.quarto import QUARTO_ENV, _render_quarto, find_quarto

__all__ = ["ENGINES", "RenderResult", "render_report"]

#: Accepted values of ``engine``.
ENGINES = ("auto", "quarto", "jupyter")


@dataclasses.dataclass(frozen=True)
class RenderResult:
    """What :func:`render_report` produced.

    Attributes
    ----------
    output : pathlib.Path
        The self-contained HTML file that was written.
    engine : str
        ``"quarto"`` or ``"jupyter-pandoc"``.
    version : str
        Version of the converting tool (``"quarto 1.7.34"``, ``"pandoc 3.9"``).
    n_cells : int
        Code cells of the report that were executed (cells with ``eval: false``
        and the injected setup and parameter cells are not counted).
    pdf : pathlib.Path or None
        The PDF written beside ``output`` (same name, ``.pdf``), or ``None``
        when it was not asked for.

    """

    output: Path
    engine: str
    version: str
    n_cells: int
    pdf: Path | None = None


def render_report(
    qmd: Path,
    output: Path,
    *,
    params: Mapping[str, object],
    engine: str = "auto",
    timeout: int = 600,
    pdf: bool = True,
) -> RenderResult:
    """Render a report into one self-contained HTML file and a PDF beside it.

    Parameters
    ----------
    qmd : pathlib.Path
        The report source (``reports/<slug>/report.qmd``).  Its directory, and
        a sibling ``_common`` directory of that directory if there is one, are
        copied to a temporary directory, which is the working directory of the
        code cells.
    output : pathlib.Path
        The HTML file to write (``.html``).  It is replaced atomically; when
        rendering fails nothing is left there nor at its ``.pdf`` (a stale
        report from an earlier render is removed, so it cannot be mistaken for
        this one).
    params : Mapping[str, object]
        Values that override the assignments of the cell tagged
        ``parameters``.  Paths are passed as absolute path strings; other
        values must be str, int, float, bool, None, or lists/mappings of those.
        Pass absolute paths: the cells run in a temporary directory.
    engine : {"auto", "quarto", "jupyter"}
        ``"quarto"`` needs the Quarto CLI (``STUDYVAL_QUARTO`` or ``quarto``
        on PATH); ``"jupyter"`` executes the cells in a Jupyter kernel and
        converts with pandoc; ``"auto"`` uses Quarto when it is found.
    timeout : int
        Seconds the whole render may take.
    pdf : bool
        Also write the PDF, ``output`` with the suffix ``.pdf``: the same
        content (banner, summary, sections, tables, figures) as a fixed A4
        document with its fonts embedded.  Quarto renders its ``typst`` format;
        the fallback converts the same Markdown with pandoc's typst writer and
        compiles it with the ``typst`` package (:mod:`studyval.render.pdf`).
        Like the HTML, it is replaced atomically and removed when the render
        fails.

    Returns
    -------
    RenderResult
        The output path, the engine used, its version, the number of
        executed code cells and the PDF's path.

    Raises
    ------
    RenderError
        If the source uses something the fallback cannot honour, a parameter is
        unknown, a cell fails (the message names the cell, its first lines and
        the last line of the traceback), the time runs out, or the engine is
        missing.

    """
    output = Path(output).resolve()
    if output.suffix.lower() not in (".html", ".htm"):
        raise RenderError(f"output must be an .html file, not {output}")
    qmd = Path(qmd).resolve()
    pdf_output = output.with_suffix(".pdf")
    try:
        if engine not in ENGINES:
            raise RenderError(f"engine must be one of {ENGINES}, not {engine!r}")
        if not isinstance(timeout, (int, float)) or timeout <= 0:
            raise RenderError(f"timeout must be a positive number of seconds, not {timeout!r}")
        deadline = time.monotonic() + timeout
        doc = parse_qmd(qmd)
        values = _plain_params(doc, params)
        quarto = find_quarto() if engine in ("auto", "quarto") else None
        if engine == "quarto" and quarto is None:
            raise RenderError(
                "engine='quarto' but the Quarto CLI was not found: install Quarto "
                f"(https://quarto.org) so that 'quarto' is on PATH, set {QUARTO_ENV} to "
                "a Quarto launcher, or use engine='jupyter' (or 'auto')"
            )
        with tempfile.TemporaryDirectory(prefix="studyval-render-") as tmp:
            staged = _stage(doc, Path(tmp))
            _check_with_pandoc(doc, Path(tmp), deadline)
            if quarto is not None:
                html, version, pdf_bytes = _render_quarto(
                    doc, staged, values, quarto, deadline, with_pdf=pdf
                )
                used = "quarto"
            else:
                html, version, pdf_bytes = _render_jupyter(
                    doc, staged, values, deadline, with_pdf=pdf
                )
                used = "jupyter-pandoc"
            _check_self_contained(html, used)
            _atomic_write(output, html)
            if pdf_bytes is not None:
                _atomic_write(pdf_output, pdf_bytes)
            else:  # a PDF of an earlier render would no longer match the page
                with contextlib.suppress(FileNotFoundError):
                    pdf_output.unlink()
    except BaseException:
        for stale in (output, pdf_output):
            with contextlib.suppress(OSError):
                stale.unlink()
        raise
    written = pdf_output if pdf_bytes is not None else None
    return RenderResult(output, used, version, len(doc.executed_cells()), written)
