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

    """

    output: Path
    engine: str
    version: str
    n_cells: int


def render_report(
    qmd: Path,
    output: Path,
    *,
    params: Mapping[str, object],
    engine: str = "auto",
    timeout: int = 600,
) -> RenderResult:
    """Render a report into one self-contained HTML file.

    Parameters
    ----------
    qmd : pathlib.Path
        The report source (``reports/<slug>/report.qmd``).  Its directory, and
        a sibling ``_common`` directory of that directory if there is one, are
        copied to a temporary directory, which is the working directory of the
        code cells.
    output : pathlib.Path
        The HTML file to write (``.html``).  It is replaced atomically; when
        rendering fails nothing is left there (a stale report from an earlier
        render is removed, so it cannot be mistaken for this one).
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

    Returns
    -------
    RenderResult
        The output path, the engine used, its version and the number of
        executed code cells.

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
                html, version = _render_quarto(doc, staged, values, quarto, deadline)
                used = "quarto"
            else:
                html, version = _render_jupyter(doc, staged, values, deadline)
                used = "jupyter-pandoc"
            _check_self_contained(html, used)
            _atomic_write(output, html)
    except BaseException:
        with contextlib.suppress(OSError):
            output.unlink()
        raise
    return RenderResult(output, used, version, len(doc.executed_cells()))
