"""The PDF beside the HTML: pandoc's typst writer, compiled by the ``typst`` package.

Ethics committees, sponsors and trial master files keep a fixed document, so
every render also writes ``report.pdf`` next to ``report.html``, with the same
content: the data-origin banner, the summary, every section, table and figure.

Without Quarto, the Markdown that the HTML was converted from (cell outputs
included, figures as PNG/SVG files in the working directory) is converted by
the pandoc binary of ``pypandoc-binary`` to Typst (``--to=typst``), with the
same Lua filter (callouts become framed blocks, figures are numbered and
cross-referenced), pandoc's own typst template and ``templates/studyval-typst.typ``
in its header as the page setup (A4,
numbered pages, compact tables that break across pages); the Typst source is
compiled in process by the ``typst`` package from PyPI, which ships the Typst
compiler and its fonts.  Only those embedded fonts are used (never the
machine's), every font is embedded in the PDF, and the document date is fixed
(``SOURCE_DATE_EPOCH``), so the same bundle gives the same PDF on every
machine.  With Quarto the PDF is Quarto's own ``typst`` format
(:mod:`studyval.render.quarto`), which runs the same two tools.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from studyval.errors import RenderError
from studyval.render.common import _template
from studyval.render.pandoc import _run_pandoc
from studyval.render.qmd import QmdDocument

_TYPST_TEMPLATE = "studyval-typst.typ"


def _typst():
    try:
        import typst
    except ImportError as exc:  # pragma: no cover - a dependency of studyval
        raise RenderError(
            "the PDF needs the 'typst' package (pip install typst), which compiles the "
            "report's Typst source; it is a dependency of studyval"
        ) from exc
    return typst


def typst_version() -> str:
    """``"typst 0.15.2"``: the version of the ``typst`` package that compiles the PDF."""
    return f"typst {getattr(_typst(), '__version__', '?')}"


def _timestamp() -> int:
    try:
        return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    except ValueError:
        return 0


def _pandoc_typst_args(doc: QmdDocument, md_name: str, out_name: str) -> list[str]:
    fmt = doc.html
    args = [
        md_name,
        "--from=markdown",
        "--to=typst",
        "--standalone",
        "--wrap=preserve",
        "--lua-filter=studyval.lua",
        f"--include-in-header={_TYPST_TEMPLATE}",
        f"--output={out_name}",
        "--variable=papersize:a4",
        "--variable=fontsize:10pt",
        "--variable=margin.x:2cm",
        "--variable=margin.y:2.2cm",
        "--variable=page-numbering:1",
    ]
    if fmt.get("toc"):
        args += ["--toc", f"--toc-depth={fmt.get('toc-depth', 3)}"]
        args.append(f"--variable=toc-title:{fmt.get('toc-title', 'Table of contents')}")
    if fmt.get("number-sections"):
        args.append("--number-sections")
    return args


def compile_typst(source: Path, root: Path) -> bytes:
    """Compile a Typst file into PDF bytes with the fonts of the ``typst`` package only."""
    typst = _typst()
    try:
        pdf = typst.compile(
            str(source),
            root=str(root),
            ignore_system_fonts=True,
            timestamp=_timestamp(),
        )
    except Exception as exc:  # typst.TypstError and the compiler's other errors
        message = str(exc).strip().splitlines()
        raise RenderError(
            f"{source.name}: Typst could not compile the PDF: "
            + (message[0] if message else exc.__class__.__name__)
        ) from exc
    if not isinstance(pdf, bytes) or not pdf.startswith(b"%PDF-"):
        raise RenderError(f"{source.name}: Typst did not return a PDF")
    return pdf


def _render_pdf(doc: QmdDocument, workdir: Path, md_name: str, deadline: float) -> bytes:
    """The PDF of the assembled Markdown ``workdir/md_name`` (figures already in ``workdir``)."""
    (workdir / _TYPST_TEMPLATE).write_text(_template(_TYPST_TEMPLATE), encoding="utf-8")
    (workdir / "studyval.lua").write_text(_template("studyval.lua"), encoding="utf-8")
    out_name = f"{doc.path.stem}.studyval.typ"
    _run_pandoc(
        _pandoc_typst_args(doc, md_name, out_name),
        workdir,
        deadline,
        "converting the report to Typst",
        doc.path.name,
    )
    source = workdir / out_name
    return compile_typst(source, _typst_root(source))


_IMAGE_RE = re.compile(r'image\("((?:[^"\\]|\\.)*)"')


def _typst_root(source: Path) -> Path:
    """The folder Typst may read: the working directory and the folders of the images.

    A report shows the bundle's figures by relative path (the bundle lies outside
    the temporary working directory), and Typst reads no file outside its root.
    """
    folders = [source.parent.resolve()]
    for match in _IMAGE_RE.finditer(source.read_text(encoding="utf-8")):
        path = match.group(1).replace('\\"', '"').replace("\\\\", "\\")
        folders.append((source.parent / path).resolve().parent)
    return Path(os.path.commonpath([str(f) for f in folders]))
