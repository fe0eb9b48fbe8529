"""Render a report ``.qmd`` into one self-contained HTML file and a PDF, with or without Quarto.

Every protocol report (``reports/<slug>/report.qmd``) is a Quarto document
that reads a results bundle and never recomputes statistics.
:func:`render_report` turns it into a single HTML file with its images
embedded, using one of two engines:

``"quarto"``
    The Quarto CLI (``quarto render --execute``), found on ``PATH`` or through
    the environment variable ``STUDYVAL_QUARTO`` (a path to a launcher).
``"jupyter"`` (reported as ``"jupyter-pandoc"``)
    The fallback for machines without Quarto (CI, a new user): the ``.qmd`` is
    parsed here, its Python cells run in a Jupyter kernel of this interpreter
    (nbclient + ipykernel), and the result is converted by the pandoc binary
    that ships with ``pypandoc-binary``, with a Lua filter that renders
    Quarto's callouts and figure cross-references and a template and CSS
    (``reports/_common/studyval.css``) that look like Quarto's default theme.

Both engines also write the PDF beside the page (``report.pdf``: same banner,
summary, sections, tables and figures, A4, fonts embedded): Quarto's ``typst``
format, or, in the fallback, pandoc's typst writer and the ``typst`` package
from PyPI (:mod:`studyval.render.pdf`).

Both engines start from the same source and give equivalent pages.  The
fallback is honest: a construct it cannot render the way Quarto would (an
``{r}`` cell, a shortcode, an unknown cell option, a citation, a tabset, an
image linked by absolute path ...) raises :class:`RenderError` naming it.  The
checks that need no execution also run before a Quarto render, so a report
that relies on Quarto-only features fails early with either engine.  The
fallback also refuses what an unescaped value from the bundle looks like: cell
output holding a shortcode or inline code, and a page that would run something
(a ``<script>``, an event handler, a ``javascript:`` link).  Reports print such
values through :func:`studyval.reporting.md_escape` and the writers built on it.

Parameters follow Quarto's Jupyter convention: the cell whose options contain
``#| tags: [parameters]`` holds the defaults, and the values passed to
:func:`render_report` are assigned in a cell injected right after it (with
Quarto through ``--execute-params``, which needs ``papermill`` in the Python
that Quarto runs, ``QUARTO_PYTHON``; this interpreter unless set).

The package, by concept:

``qmd``
    :func:`parse_qmd`, :class:`QmdDocument`, :class:`QmdCell`: the parser and
    its checks of cells and front matter.
``params``
    Parameters checked against the ``parameters`` cell and injected as Python.
``pandoc``
    Running pandoc; the Markdown assembled from cells and their outputs.
``jupyter``, ``quarto``
    The two engines.
``pdf``
    The fallback's PDF: Typst source from pandoc, compiled by the ``typst`` package.
``common``
    Staging, deadlines, atomic writes, the stylesheet, and the template files.
``report``
    :func:`render_report` and :class:`RenderResult`.
``templates/``
    Package data read with :mod:`importlib.resources`: the pandoc HTML template
    (``studyval-template.html``), the Lua filter (``studyval.lua``), the PDF's
    page setup (``studyval-typst.typ``) and the kernel's setup cell
    (``kernel-setup.py.in``).
"""

from __future__ import annotations

from studyval.errors import RenderError
from studyval.render.jupyter import _check_no_active_content as _check_no_active_content
from studyval.render.pandoc import _cell_markdown as _cell_markdown
from studyval.render.pandoc import _Output as _Output
from studyval.render.qmd import _INLINE_CODE_RE as _INLINE_CODE_RE
from studyval.render.qmd import _SHORTCODE_RE as _SHORTCODE_RE
from studyval.render.qmd import QmdCell, QmdDocument, parse_qmd
from studyval.render.quarto import QUARTO_ENV, find_quarto
from studyval.render.report import ENGINES, RenderResult, render_report

__all__ = [
    "ENGINES",
    "QUARTO_ENV",
    "QmdCell",
    "QmdDocument",
    "RenderError",
    "RenderResult",
    "find_quarto",
    "parse_qmd",
    "render_report",
]
