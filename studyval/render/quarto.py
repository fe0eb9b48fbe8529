"""The Quarto engine: ``quarto render --execute``, found on PATH or through ``STUDYVAL_QUARTO``.

Parameters reach Quarto through ``--execute-params`` (which needs
``papermill`` in the Python that Quarto runs, ``QUARTO_PYTHON``; this
interpreter unless set), and Quarto loads the same stylesheet as the fallback.
A failing cell is named as the fallback names it.  The PDF is Quarto's
``typst`` format, rendered in a second run (Quarto ships Typst).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from studyval.errors import RenderError
from studyval.render.common import _KERNEL_ENV, _last_line, _remaining, _strip_ansi, _studyval_css
from studyval.render.qmd import _OPTION_LINE_RE, QmdCell, QmdDocument

#: Environment variable naming a Quarto launcher to use instead of ``quarto`` on PATH.
QUARTO_ENV = "STUDYVAL_QUARTO"


def find_quarto() -> list[str] | None:
    """The command that runs Quarto here, or ``None`` when there is none.

    ``STUDYVAL_QUARTO`` (a path to a launcher) wins over ``quarto`` on PATH.

    Raises
    ------
    RenderError
        If ``STUDYVAL_QUARTO`` is set but names no executable file.

    """
    launcher = os.environ.get(QUARTO_ENV, "").strip()
    if launcher:
        found = shutil.which(launcher)
        if found is None:
            raise RenderError(f"{QUARTO_ENV}={launcher!r} is not an executable file")
        return [found]
    found = shutil.which("quarto")
    return None if found is None else [found]


def _render_quarto(
    doc: QmdDocument,
    staged: Path,
    values: Mapping[str, Any],
    quarto: Sequence[str],
    deadline: float,
    with_pdf: bool = True,
) -> tuple[bytes, str, bytes | None]:
    """The HTML page and, with ``with_pdf``, the PDF (Quarto's ``typst`` format).

    Quarto renders one format per run, so the PDF is a second ``quarto render
    --to typst`` of the same staged source and parameters (the cells run again;
    the bundle they read is the same).
    """
    workdir = staged.parent
    env = dict(os.environ)
    env.setdefault("QUARTO_PYTHON", sys.executable)
    env.update(_KERNEL_ENV)
    version = _quarto_version(quarto, env, deadline)
    params: list[str] = []
    if values:
        params_file = workdir.parent / "studyval-params.yml"
        params_file.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
        params = ["--execute-params", str(params_file)]
    html = _quarto_run(
        doc, staged, quarto, env, deadline, "html", [*_quarto_style_args(doc, workdir), *params]
    )
    pdf = None
    if with_pdf:
        pdf = _quarto_run(doc, staged, quarto, env, deadline, "typst", [*_QUARTO_PDF_ARGS, *params])
        if not pdf.startswith(b"%PDF-"):
            raise RenderError(f"{doc.path.name}: quarto render --to typst wrote no PDF")
    return html, version, pdf


#: Quarto's ``typst`` format as the fallback's PDF: A4, 10 pt, numbered sections and pages
#: (the Jupyter + pandoc engine's settings, studyval/render/pdf.py).
_QUARTO_PDF_ARGS = (
    "--metadata",
    "papersize:a4",
    "--metadata",
    "fontsize:10pt",
    "--metadata",
    "page-numbering:1",
    "--metadata",
    "keep-typ:false",
)


def _quarto_run(
    doc: QmdDocument,
    staged: Path,
    quarto: Sequence[str],
    env: Mapping[str, str],
    deadline: float,
    fmt: str,
    extra: Sequence[str],
) -> bytes:
    """``quarto render --to fmt --execute`` of the staged source; the output file's bytes."""
    workdir = staged.parent
    suffix = "pdf" if fmt == "typst" else fmt
    out_name = f"{staged.stem}.studyval-output.{suffix}"
    cmd = [*quarto, "render", staged.name, "--to", fmt, "--execute", "--output", out_name]
    cmd += list(extra)
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=_remaining(deadline, f"running Quarto ({fmt})"),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(
            f"{doc.path.name}: quarto render --to {fmt} did not finish within the timeout"
        ) from exc
    except OSError as exc:
        raise RenderError(f"cannot run Quarto ({quarto[0]}): {exc}") from exc
    output = workdir / out_name
    if proc.returncode != 0 or not output.is_file():
        raise _quarto_failure(doc, proc.stdout + "\n" + proc.stderr)
    return output.read_bytes()


def _quarto_style_args(doc: QmdDocument, workdir: Path) -> list[str]:
    """Metadata that makes Quarto's page match the fallback's.

    The output is always one self-contained file, and Quarto loads the same
    stylesheet as the fallback (after its own theme, so that ``.placeholder``
    overrides Bootstrap's class of that name).
    """
    css = _studyval_css()
    return [
        "--metadata",
        "embed-resources:true",
        "--metadata",
        "css:" + json.dumps(str(css)),
    ]


def _quarto_version(quarto: Sequence[str], env: Mapping[str, str], deadline: float) -> str:
    try:
        proc = subprocess.run(
            [*quarto, "--version"],
            env=env,
            capture_output=True,
            text=True,
            timeout=min(120.0, _remaining(deadline, "asking Quarto its version")),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RenderError(f"cannot run Quarto ({quarto[0]}): {exc}") from exc
    if proc.returncode != 0:
        raise RenderError(f"'{quarto[0]} --version' failed: {_last_line(proc.stderr)}")
    return f"quarto {proc.stdout.strip()}"


_QUARTO_CELL_ERROR = "An error occurred while executing the following cell:"


def _quarto_failure(doc: QmdDocument, log: str) -> RenderError:
    log = _strip_ansi(log)
    if "papermill package is required" in log:
        return RenderError(
            "Quarto needs the 'papermill' package in the Python it uses (QUARTO_PYTHON) "
            "to inject parameters: pip install papermill"
        )
    if _QUARTO_CELL_ERROR in log:
        after = log.split(_QUARTO_CELL_ERROR, 1)[1]
        # the cell source sits between two rules of dashes; the traceback follows
        blocks = re.split(r"^-{10,}\s*$", after, maxsplit=2, flags=re.MULTILINE)
        source = blocks[1].strip("\n") if len(blocks) > 1 else ""
        traceback = blocks[2] if len(blocks) > 2 else after
        tb_lines = [ln for ln in traceback.splitlines() if ln.strip()]
        last = ""
        for ln in reversed(tb_lines):
            if re.match(r"^\s*[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit|Warning)\b", ln):
                last = ln.strip()
                break
        last = last or (tb_lines[-1].strip() if tb_lines else "")
        cell = _match_cell(doc, source)
        if cell is not None:
            return RenderError(f"{doc.path.name}: {cell.describe()} failed: {last}\n{cell.head()}")
        head = "\n".join(f"    {ln}" for ln in source.splitlines()[:3])
        return RenderError(f"{doc.path.name}: a cell failed: {last}\n{head}")
    tail = "\n".join(log.strip().splitlines()[-20:])
    return RenderError(f"{doc.path.name}: quarto render failed:\n{tail}")


def _match_cell(doc: QmdDocument, source: str) -> QmdCell | None:
    lines = [
        ln.strip() for ln in source.splitlines() if ln.strip() and not _OPTION_LINE_RE.match(ln)
    ]
    if not lines:
        return None
    for cell in doc.code_cells:
        cell_lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
        if cell_lines == lines:
            return cell
    return None
