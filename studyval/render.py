"""Render a report ``.qmd`` into one self-contained HTML file, with or without Quarto.

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
"""

from __future__ import annotations

import ast
import base64
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import yaml

from studyval.errors import RenderError, StudyvalError

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

#: Accepted values of ``engine``.
ENGINES = ("auto", "quarto", "jupyter")
#: Environment variable naming a Quarto launcher to use instead of ``quarto`` on PATH.
QUARTO_ENV = "STUDYVAL_QUARTO"

_CSS_NAME = "studyval.css"

# --------------------------------------------------------------------------- #
# Public types
# --------------------------------------------------------------------------- #


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


@dataclasses.dataclass(frozen=True)
class QmdCell:
    """One cell of a parsed ``.qmd``.

    Attributes
    ----------
    kind : str
        ``"markdown"`` or ``"code"``.
    source : str
        Markdown text, or the Python code without its ``#|`` option lines.
    options : Mapping[str, Any]
        The ``#|`` options of a code cell (empty for markdown).
    line : int
        1-based line of the ``.qmd`` where the cell starts (the opening fence
        of a code cell).
    number : int
        1-based position among the code cells; 0 for markdown.

    """

    kind: str
    source: str
    options: Mapping[str, Any]
    line: int
    number: int = 0

    @property
    def label(self) -> str | None:
        """The cell's ``label`` option, if any."""
        label = self.options.get("label")
        return None if label is None else str(label)

    @property
    def tags(self) -> tuple[str, ...]:
        """The cell's ``tags`` option."""
        return tuple(self.options.get("tags") or ())

    def describe(self) -> str:
        """Name the cell for an error message (``cell 'fig-roc' (line 40)``)."""
        name = f"cell '{self.label}'" if self.label else f"cell {self.number}"
        return f"{name} (line {self.line})"

    def head(self, n_lines: int = 3) -> str:
        """The first ``n_lines`` non-blank lines of the source, indented."""
        lines = [ln for ln in self.source.splitlines() if ln.strip()]
        shown = [f"    {ln}" for ln in lines[:n_lines]]
        if len(lines) > n_lines:
            shown.append("    ...")
        return "\n".join(shown)


@dataclasses.dataclass(frozen=True)
class QmdDocument:
    """A parsed and checked ``.qmd``.

    Attributes
    ----------
    path : pathlib.Path
        The source file.
    front_matter : Mapping[str, Any]
        The YAML front matter as read.
    cells : tuple of QmdCell
        Markdown and code cells in document order.
    html : Mapping[str, Any]
        HTML format options (top level merged with ``format: html:``).
    execute : Mapping[str, Any]
        Document defaults of the execution options (``echo``, ``eval``, ...).

    """

    path: Path
    front_matter: Mapping[str, Any]
    cells: tuple[QmdCell, ...]
    html: Mapping[str, Any]
    execute: Mapping[str, Any]

    @property
    def code_cells(self) -> tuple[QmdCell, ...]:
        """The code cells, in order."""
        return tuple(c for c in self.cells if c.kind == "code")

    @property
    def parameters_cell(self) -> QmdCell | None:
        """The first code cell tagged ``parameters``, if any."""
        for cell in self.code_cells:
            if "parameters" in cell.tags:
                return cell
        return None

    @property
    def parameter_names(self) -> tuple[str, ...]:
        """Names assigned at top level of the parameters cell."""
        cell = self.parameters_cell
        if cell is None:
            return ()
        return _assigned_names(cell)

    def option(self, cell: QmdCell, name: str) -> Any:
        """Effective value of an execution option for ``cell``."""
        if name in cell.options:
            return cell.options[name]
        return self.execute.get(name, _EXECUTE_DEFAULTS[name])

    def executed_cells(self) -> tuple[QmdCell, ...]:
        """Code cells that run (``eval`` is true)."""
        return tuple(c for c in self.code_cells if self.option(c, "eval"))


# --------------------------------------------------------------------------- #
# Parsing and checking the .qmd
# --------------------------------------------------------------------------- #

_EXECUTE_DEFAULTS: dict[str, Any] = {
    "echo": True,
    "eval": True,
    "include": True,
    "output": True,
    "warning": True,
    "error": False,
}
_HTML_KEYS = frozenset(
    {
        "toc",
        "toc-depth",
        "toc-title",
        "number-sections",
        "embed-resources",
        "css",
        "fig-width",
        "fig-height",
        "fig-dpi",
        "fig-format",
    }
)
_TOP_KEYS = (
    frozenset(
        {"title", "subtitle", "author", "date", "abstract", "lang", "format", "execute", "jupyter"}
    )
    | _HTML_KEYS
)
_CELL_OPTIONS = frozenset(
    {"label", "echo", "eval", "include", "output", "warning", "error", "fig-cap", "fig-alt", "tags"}
)
_LABEL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
_FENCE_RE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_EXEC_INFO_RE = re.compile(r"^\{+\s*(?P<lang>[A-Za-z][\w-]*)(?P<rest>[^}]*)\}+$")
_OPTION_LINE_RE = re.compile(r"^#\s*\| ?")
_SHORTCODE_RE = re.compile(r"\{\{[<%]")
_INLINE_CODE_RE = re.compile(r"`\{(?P<lang>[A-Za-z][\w-]*)\}[ \t]")
_DYNAMIC_DATES = frozenset({"today", "now", "last-modified"})


def parse_qmd(qmd: Path | str) -> QmdDocument:
    """Parse a ``.qmd`` and check that the fallback renderer can honour it.

    Parameters
    ----------
    qmd : pathlib.Path or str
        The Quarto document.

    Returns
    -------
    QmdDocument
        Front matter, cells and the effective document options.

    Raises
    ------
    RenderError
        If the file cannot be read, or uses a construct (a non-Python cell, an
        unknown cell option or front-matter key, a shortcode, inline code ...)
        that the fallback cannot render the way Quarto would.

    """
    path = Path(qmd)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"cannot read report source {path}: {exc}") from exc
    where = path.name
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    front_matter, body_start = _split_front_matter(lines, where)
    html, execute = _check_front_matter(front_matter, where)
    cells = _split_cells(lines, body_start, where)
    _check_labels(cells, where)
    doc = QmdDocument(
        path=path, front_matter=front_matter, cells=tuple(cells), html=html, execute=execute
    )
    for cell in doc.code_cells:
        if "parameters" in cell.tags:
            _assigned_names(cell)  # raises on syntax errors
            break
    return doc


def _split_front_matter(lines: list[str], where: str) -> tuple[dict[str, Any], int]:
    if not lines or lines[0].strip() != "---":
        return {}, 0
    for end in range(1, len(lines)):
        if lines[end].strip() in ("---", "..."):
            break
    else:
        raise RenderError(f"{where}: the YAML front matter opened on line 1 is never closed")
    try:
        data = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        raise RenderError(f"{where}: the YAML front matter is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RenderError(f"{where}: the YAML front matter must be a mapping")
    return data, end + 1


def _fail_key(where: str, key: str, detail: str) -> RenderError:
    return RenderError(
        f"{where}: front matter '{key}' {detail}; the fallback renderer (no Quarto) "
        "cannot render it the way Quarto would"
    )


def _check_front_matter(fm: Mapping[str, Any], where: str) -> tuple[dict, dict]:
    for key in fm:
        if key not in _TOP_KEYS:
            raise _fail_key(where, str(key), "is not supported")
    for key in ("title", "subtitle", "abstract", "lang"):
        if key in fm and not isinstance(fm[key], str):
            raise _fail_key(where, key, "must be a string")
    if "author" in fm:
        _authors(fm["author"], where)
    if "date" in fm:
        _format_date(fm["date"], where)
    if "jupyter" in fm and fm["jupyter"] != "python3":
        raise _fail_key(where, "jupyter", f"is {fm['jupyter']!r}; only 'python3' is supported")

    html: dict[str, Any] = {k: fm[k] for k in _HTML_KEYS if k in fm}
    fmt = fm.get("format", "html")
    if isinstance(fmt, str):
        if fmt != "html":
            raise _fail_key(where, "format", f"is {fmt!r}; only html is supported")
    elif isinstance(fmt, dict):
        extra = [k for k in fmt if k != "html"]
        if extra:
            raise _fail_key(where, "format", f"names {extra}; only html is supported")
        options = fmt.get("html")
        if isinstance(options, dict):
            for key in options:
                if key not in _HTML_KEYS:
                    raise _fail_key(where, f"format: html: {key}", "is not supported")
            html.update(options)
        elif options not in (None, "default"):
            raise _fail_key(where, "format: html", f"is {options!r}")
    else:
        raise _fail_key(where, "format", "must be 'html' or a mapping")
    _check_html_options(html, where)

    execute = fm.get("execute", {}) or {}
    if not isinstance(execute, dict):
        raise _fail_key(where, "execute", "must be a mapping")
    for key, value in execute.items():
        _check_execute_option(
            str(key), value, lambda d, k=key: _fail_key(where, f"execute: {k}", d)
        )
    return html, dict(execute)


def _check_html_options(html: Mapping[str, Any], where: str) -> None:
    checks: dict[str, tuple[Any, str]] = {
        "toc": (lambda v: isinstance(v, bool), "must be true or false"),
        "number-sections": (lambda v: isinstance(v, bool), "must be true or false"),
        "toc-depth": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 6,
            "must be an integer from 1 to 6",
        ),
        "toc-title": (lambda v: isinstance(v, str), "must be a string"),
        "embed-resources": (
            lambda v: v is True,
            "must be true: a report is always one self-contained file",
        ),
        "css": (
            lambda v: (
                isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))
            ),
            "must be a path or a list of paths",
        ),
        "fig-width": (_positive_number, "must be a positive number (inches)"),
        "fig-height": (_positive_number, "must be a positive number (inches)"),
        "fig-dpi": (
            lambda v: isinstance(v, int) and not isinstance(v, bool) and v > 0,
            "must be a positive integer",
        ),
        "fig-format": (lambda v: v in ("retina", "png", "svg"), "must be retina, png or svg"),
    }
    for key, value in html.items():
        ok, detail = checks[key]
        if not ok(value):
            raise _fail_key(where, key, f"{detail} (found {value!r})")


def _positive_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def _check_execute_option(key: str, value: Any, fail: Any) -> None:
    if key in ("echo", "eval", "include", "warning"):
        if not isinstance(value, bool):
            raise fail(f"must be true or false (found {value!r})")
    elif key == "output":
        if not (isinstance(value, bool) or value == "asis"):
            raise fail(f"must be true, false or asis (found {value!r})")
    elif key == "error":
        if value is not False:
            raise fail("must be false: a failing cell always fails the render")
    else:
        raise fail("is not supported")


def _authors(value: Any, where: str) -> list[str]:
    items = value if isinstance(value, list) else [value]
    names = []
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("name"), str) and set(item) == {"name"}:
            names.append(item["name"])
        elif isinstance(item, str):
            names.append(item)
        else:
            raise _fail_key(where, "author", f"has an entry {item!r}; use names (strings)")
    return names


def _format_date(value: Any, where: str) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        if value.strip().lower() in _DYNAMIC_DATES:
            raise _fail_key(
                where,
                "date",
                f"is {value!r}, which changes with every render; write the date, "
                "or set it from the results bundle in the text",
            )
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            return value
    if isinstance(value, dt.date):
        return f"{value:%B} {value.day}, {value.year}"
    raise _fail_key(where, "date", f"must be a date or a string (found {value!r})")


def _split_cells(lines: list[str], start: int, where: str) -> list[QmdCell]:
    cells: list[QmdCell] = []
    markdown: list[str] = []
    md_start = start + 1
    n_code = 0
    i = start
    plain_fence: str | None = None  # closing fence of a non-executable code block

    def flush(next_line: int) -> None:
        nonlocal markdown, md_start
        text = "\n".join(markdown)
        if text.strip():
            _check_markdown(text, md_start, where)
            cells.append(QmdCell("markdown", text.strip("\n") + "\n", {}, md_start))
        markdown = []
        md_start = next_line

    while i < len(lines):
        line = lines[i]
        if plain_fence is not None:
            markdown.append(line)
            if _closes(line, plain_fence):
                plain_fence = None
            i += 1
            continue
        match = _FENCE_RE.match(line)
        if match is None:
            markdown.append(line)
            i += 1
            continue
        fence, info = match["fence"], match["info"].strip()
        exec_match = _EXEC_INFO_RE.match(info) if fence[0] == "`" else None
        if exec_match is None:
            plain_fence = fence
            markdown.append(line)
            i += 1
            continue
        lineno = i + 1
        lang = exec_match["lang"]
        if info.startswith("{{"):
            raise RenderError(
                f"{where}, line {lineno}: '{info}' (a displayed, unexecuted cell) is not "
                "supported by the fallback renderer; use a plain ```python block"
            )
        if lang != "python":
            raise RenderError(
                f"{where}, line {lineno}: a {{{lang}}} cell cannot be executed by the "
                "fallback renderer (Python kernel only); reports use ```{python} cells"
            )
        if exec_match["rest"].strip():
            raise RenderError(
                f"{where}, line {lineno}: options in the cell header "
                f"'{info}' are not supported; write them as '#| key: value' lines"
            )
        if match["indent"]:
            raise RenderError(
                f"{where}, line {lineno}: an indented {{python}} cell is not supported; "
                "start code cells at the beginning of the line"
            )
        flush(lineno)
        body: list[str] = []
        i += 1
        while i < len(lines) and not _closes(lines[i], fence):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise RenderError(f"{where}, line {lineno}: the {{python}} cell is never closed")
        n_code += 1
        cells.append(_code_cell(body, lineno, n_code, where))
        i += 1
        md_start = i + 1
    flush(len(lines) + 1)
    return cells


def _closes(line: str, fence: str) -> bool:
    stripped = line.strip()
    return (
        len(stripped) >= len(fence)
        and set(stripped) == {fence[0]}
        and len(line) - len(line.lstrip()) < 4
    )


def _check_markdown(text: str, line: int, where: str) -> None:
    for n, content in enumerate(text.split("\n"), start=line):
        if _SHORTCODE_RE.search(content):
            raise RenderError(
                f"{where}, line {n}: Quarto shortcodes ('{{{{< ... >}}}}') are not "
                "supported by the fallback renderer"
            )
        inline = _INLINE_CODE_RE.search(content)
        if inline:
            raise RenderError(
                f"{where}, line {n}: inline code '`{{{inline['lang']}}} ...`' is not "
                "supported by the fallback renderer; print the sentence from a cell "
                "with 'output: asis'"
            )


def _code_cell(body: list[str], lineno: int, number: int, where: str) -> QmdCell:
    option_lines = []
    for line in body:
        match = _OPTION_LINE_RE.match(line)
        if match is None:
            break
        option_lines.append(line[match.end() :])
    source = "\n".join(body[len(option_lines) :]).strip("\n")
    name = f"{where}, cell {number} (line {lineno})"
    try:
        options = yaml.safe_load("\n".join(option_lines)) if option_lines else {}
    except yaml.YAMLError as exc:
        raise RenderError(f"{name}: the '#|' options are not valid YAML: {exc}") from exc
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise RenderError(f"{name}: the '#|' options must be 'key: value' lines")
    if "label" in options:
        name = f"{where}, cell '{options['label']}' (line {lineno})"
    for key, value in options.items():
        key = str(key)
        if key not in _CELL_OPTIONS:
            raise RenderError(
                f"{name}: cell option '{key}' is not supported by the fallback renderer "
                f"(supported: {', '.join(sorted(_CELL_OPTIONS))})"
            )
        if key == "label":
            if not isinstance(value, str) or not _LABEL_RE.match(value):
                raise RenderError(f"{name}: label {value!r} must be letters, digits, '-' or '_'")
        elif key in ("fig-cap", "fig-alt"):
            if not isinstance(value, str):
                raise RenderError(f"{name}: {key} must be one string (one figure per cell)")
        elif key == "tags":
            if not (isinstance(value, list) and all(isinstance(t, str) for t in value)):
                raise RenderError(f"{name}: tags must be a list of strings")
        else:
            _check_execute_option(key, value, lambda d, k=key: RenderError(f"{name}: {k} {d}"))
    return QmdCell("code", source, options, lineno, number)


def _check_labels(cells: Sequence[QmdCell], where: str) -> None:
    seen: dict[str, QmdCell] = {}
    for cell in cells:
        if cell.label is None:
            continue
        if cell.label in seen:
            raise RenderError(
                f"{where}: label '{cell.label}' is used by the cells on lines "
                f"{seen[cell.label].line} and {cell.line}"
            )
        seen[cell.label] = cell
        if cell.label.startswith("tbl-"):
            raise RenderError(
                f"{where}: {cell.describe()}: table cross-reference labels (tbl-) are not "
                "supported by the fallback renderer; use a plain label and a heading"
            )
        if "fig-cap" in cell.options and not cell.label.startswith("fig-"):
            raise RenderError(
                f"{where}: {cell.describe()} has fig-cap, so its label must start "
                "with 'fig-' (or drop the label)"
            )
        if cell.label.startswith("fig-") and "fig-cap" not in cell.options:
            raise RenderError(
                f"{where}: {cell.describe()} has a figure label but no fig-cap; "
                "a cross-referenced figure needs a caption"
            )


def _assigned_names(cell: QmdCell) -> tuple[str, ...]:
    try:
        tree = ast.parse(cell.source)
    except SyntaxError as exc:
        raise RenderError(
            f"the parameters {cell.describe()} is not valid Python: {exc.msg}"
        ) from exc
    names: list[str] = []
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name) and target.id not in names:
                names.append(target.id)
    return tuple(names)


# --------------------------------------------------------------------------- #
# Parameters
# --------------------------------------------------------------------------- #


def _plain_params(doc: QmdDocument, params: Mapping[str, object]) -> dict[str, Any]:
    """Check ``params`` against the parameters cell; make values plain YAML data."""
    if not isinstance(params, Mapping):
        raise RenderError(f"params must be a mapping, not {type(params).__name__}")
    values = {str(k): _plain_value(v, str(k)) for k, v in params.items()}
    if not values:
        return values
    cell = doc.parameters_cell
    if cell is None:
        raise RenderError(
            f"{doc.path.name}: parameters {sorted(values)} were given but no cell is tagged "
            "'parameters' (add '#| tags: [parameters]' to the cell that sets the defaults)"
        )
    known = doc.parameter_names
    unknown = [k for k in values if k not in known]
    if unknown:
        raise RenderError(
            f"{doc.path.name}: unknown parameter(s) {unknown}; the parameters "
            f"{cell.describe()} defines {list(known)}"
        )
    return values


def _plain_value(value: object, name: str) -> Any:
    if isinstance(value, os.PathLike):
        return str(Path(os.fspath(value)).resolve())
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"parameter '{name}' is {value!r}; only finite numbers can be passed")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_value(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain_value(v, name) for k, v in value.items()}
    raise RenderError(
        f"parameter '{name}' has type {type(value).__name__}; pass str, int, float, bool, "
        "None, a path, or lists and mappings of those"
    )


def _python_literal(value: Any) -> str:
    """Python source for a plain value, spelled as papermill spells it for Quarto."""
    if isinstance(value, str):
        escaped = value.encode("unicode_escape").decode("utf-8").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_python_literal(k)}: {_python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)


def _injected_source(values: Mapping[str, Any]) -> str:
    lines = ["# Injected Parameters"]
    lines += [f"{name} = {_python_literal(value)}" for name, value in values.items()]
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #


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


# --------------------------------------------------------------------------- #
# Shared helpers
# --------------------------------------------------------------------------- #

_STAGE_IGNORE = shutil.ignore_patterns(
    ".quarto", "*_files", "__pycache__", ".ipynb_checkpoints", ".git", ".jupyter_cache", "_freeze"
)


def _stage(doc: QmdDocument, root: Path) -> Path:
    """Copy the report directory (and a sibling ``_common``) under ``root``."""
    src_dir = doc.path.parent
    for name in ("_quarto.yml", "_quarto.yaml", "_metadata.yml", "_metadata.yaml"):
        if (src_dir / name).exists():
            raise RenderError(
                f"{src_dir / name}: Quarto project and directory metadata files are not "
                "supported (the fallback renderer would ignore them); put the options in "
                "the report's front matter"
            )
    dest_dir = root / "src" / (src_dir.name or "report")
    try:
        shutil.copytree(src_dir, dest_dir, ignore=_STAGE_IGNORE)
        common = src_dir.parent / "_common"
        if common.is_dir() and common.resolve() != src_dir.resolve():
            shutil.copytree(common, dest_dir.parent / "_common", ignore=_STAGE_IGNORE)
    except OSError as exc:
        raise RenderError(
            f"cannot copy the report sources to a temporary directory: {exc}"
        ) from exc
    return dest_dir / doc.path.name


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RenderError(f"the render ran out of time before {what}")
    return left


def _atomic_write(output: Path, data: bytes) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


_LOCAL_REF_RE = re.compile(
    rb"<(?:img|script|link|source|iframe)\b[^>]*?\s(?:src|href)\s*=\s*[\"'](?P<ref>[^\"'#][^\"']*)[\"']",
    re.IGNORECASE,
)


def _check_self_contained(html: bytes, engine: str) -> None:
    for match in _LOCAL_REF_RE.finditer(html):
        ref = match["ref"].decode("utf-8", "replace")
        if not re.match(r"^(?:data:|https?:|mailto:)", ref, re.IGNORECASE):
            raise RenderError(
                f"the {engine} output is not self-contained: it links to {ref!r}, which "
                "could not be embedded (a missing file, or an absolute path: Quarto resolves "
                "'/...' against the report's directory; use a relative path or a file:// URL)"
            )


_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in _strip_ansi(text).splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _pandoc_path() -> str:
    try:
        import pypandoc

        return pypandoc.get_pandoc_path()
    except (ImportError, OSError) as exc:
        raise RenderError(
            "pandoc was not found; install the 'pypandoc-binary' package, which ships it"
        ) from exc


def _pandoc_version(pandoc: str) -> str:
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
# Markdown assembly (fallback engine)
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
    (check_dir / "studyval.lua").write_text(_LUA_FILTER, encoding="utf-8")
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


# --------------------------------------------------------------------------- #
# Fallback engine: Jupyter kernel + pandoc
# --------------------------------------------------------------------------- #

_SETUP_SOURCE = """\
try:
    import matplotlib as _studyval_mpl
    import matplotlib.pyplot as _studyval_plt
    from matplotlib_inline.backend_inline import set_matplotlib_formats as _studyval_fmt
    _studyval_plt.rcParams["figure.figsize"] = ({width!r}, {height!r})
    _studyval_plt.rcParams["figure.dpi"] = {dpi!r}
    _studyval_plt.rcParams["savefig.dpi"] = {dpi!r}
    _studyval_plt.rcParams["svg.hashsalt"] = "studyval"
    _studyval_fmt({fmt!r})
    del _studyval_mpl, _studyval_plt, _studyval_fmt
except ImportError:
    pass
"""
_KERNEL_ENV = {
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYTHONHASHSEED": "0",
    "SOURCE_DATE_EPOCH": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
_WARNING_PATH_RE = re.compile(
    r"^[^\n]*?(?:ipykernel_\d+[\\/]\d+\.py|<ipython-input[^>]*>):\d+: ", re.MULTILINE
)
_DISCARDABLE_RESULTS = ("[<matplotlib", "<matplotlib", "<seaborn.", "<ggplot:")


def _render_jupyter(
    doc: QmdDocument, staged: Path, values: Mapping[str, Any], deadline: float
) -> tuple[bytes, str]:
    import nbformat

    workdir = staged.parent
    setup = _SETUP_SOURCE.format(
        width=float(doc.html.get("fig-width", 7)),
        height=float(doc.html.get("fig-height", 5)),
        dpi=int(doc.html.get("fig-dpi", 96)),
        fmt=str(doc.html.get("fig-format", "retina")),
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    nb.cells.append(nbformat.v4.new_code_cell(setup))
    plan: list[tuple[int, QmdCell]] = []  # notebook index -> cell (with options)
    injected: dict[int, QmdCell] = {}  # doc index after which an injected cell follows
    for index, cell in enumerate(doc.cells):
        if cell.kind != "code":
            continue
        nb.cells.append(nbformat.v4.new_code_cell(cell.source))
        plan.append((len(nb.cells) - 1, cell))
        if values and cell is doc.parameters_cell:
            options = {k: v for k, v in cell.options.items() if k != "label"}
            options["tags"] = ["injected-parameters"]
            params_cell = QmdCell("code", _injected_source(values), options, cell.line, 0)
            nb.cells.append(nbformat.v4.new_code_cell(params_cell.source))
            plan.append((len(nb.cells) - 1, params_cell))
            injected[index] = params_cell

    _execute(doc, nb, plan, workdir, deadline)

    stem = doc.path.stem
    figures_dir = f"{stem}_files/figure-html"
    (workdir / figures_dir).mkdir(parents=True, exist_ok=True)
    outputs_of = {id(cell): nb.cells[i].get("outputs", []) for i, cell in plan}
    rendered: dict[int, str] = {}
    for index, cell in enumerate(doc.cells):
        if cell.kind != "code":
            continue
        texts = []
        for part in (cell, injected.get(index)):
            if part is None:
                continue
            executed = doc.option(part, "eval")
            outs = outputs_of[id(part)] if executed else []
            name = part.label or (
                f"cell-{part.number}" if part.number else f"cell-{cell.number}-params"
            )
            reduced = _reduce_outputs(doc, part, outs, workdir, f"{figures_dir}/{name}")
            texts.append(_cell_markdown(doc, part, reduced))
        rendered[index] = "\n".join(t for t in texts if t)

    (workdir / "studyval.lua").write_text(_LUA_FILTER, encoding="utf-8")
    (workdir / "studyval-template.html").write_text(_HTML_TEMPLATE, encoding="utf-8")
    md_name = f"{stem}.studyval.md"
    (workdir / md_name).write_text(_assemble(doc, rendered), encoding="utf-8")
    args = _pandoc_args(doc, workdir, md_name, "studyval-output.html")
    _run_pandoc(args, workdir, deadline, "converting the report to HTML", doc.path.name)
    html = (workdir / "studyval-output.html").read_bytes()
    _check_no_active_content(html, doc.path.name)
    return html, _pandoc_version(_pandoc_path())


class _ActiveContentFinder(HTMLParser):
    """Collects what would run in a browser: scripts, event handlers, script URLs."""

    _ELEMENTS = frozenset({"script", "iframe", "frame", "object", "embed", "applet", "base"})
    _URL_ATTRIBUTES = frozenset(
        {"href", "src", "action", "formaction", "data", "srcset", "xlink:href", "poster"}
    )
    _SCHEME_RE = re.compile(r"^\s*(?:javascript|vbscript|data\s*:\s*text/html)", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._ELEMENTS:
            self.found.append(f"a <{tag}> element")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            self.found.append("a <meta http-equiv> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"an event-handler attribute {name}= on <{tag}>")
            elif (
                name in self._URL_ATTRIBUTES
                and value
                and self._SCHEME_RE.match("".join(value.split()))
            ):
                self.found.append(f"a script URL in {name}= of <{tag}>")

    handle_startendtag = handle_starttag


def _check_no_active_content(html: bytes, source: str) -> None:
    """The fallback's page runs nothing: refuse a script, an event handler, a script URL.

    The fallback's template and filter write no script, and reports may not
    show interactive outputs, so any such element comes from raw HTML that a
    cell printed: usually a value from the bundle printed without
    :func:`studyval.reporting.md_escape`. Rendering it would put the data's
    markup live into the report.
    """
    finder = _ActiveContentFinder()
    finder.feed(html.decode("utf-8", "replace"))
    finder.close()
    if finder.found:
        shown = "; ".join(dict.fromkeys(finder.found))
        raise RenderError(
            f"{source}: the rendered page would contain active content ({shown}); "
            "the fallback renderer writes none, so a cell printed raw HTML, usually a value "
            "from the bundle that was not escaped (print it through "
            "studyval.reporting.md_escape or md_table)"
        )


def _pandoc_args(doc: QmdDocument, workdir: Path, md_name: str, out_name: str) -> list[str]:
    html = doc.html
    args = [
        md_name,
        "--from=markdown",
        "--to=html5",
        "--standalone",
        "--embed-resources",
        "--section-divs",
        "--mathml",
        "--wrap=none",
        "--fail-if-warnings",
        "--template=studyval-template.html",
        "--lua-filter=studyval.lua",
        f"--resource-path={workdir}",
        f"--output={out_name}",
    ]
    for css in _stylesheets(doc, workdir):
        args.append(f"--css={css}")
    if html.get("toc"):
        args += ["--toc", f"--toc-depth={html.get('toc-depth', 3)}"]
        args.append(f"--variable=toc-title:{html.get('toc-title', 'Table of contents')}")
    if html.get("number-sections"):
        args.append("--number-sections")
    n_authors = len(_authors(doc.front_matter.get("author", []), doc.path.name))
    args.append(f"--variable=author-heading:{'Authors' if n_authors > 1 else 'Author'}")
    return args


def _studyval_css() -> Path:
    """``reports/_common/studyval.css`` of the installed ``studyval.reports`` package."""
    try:
        from importlib.resources import files

        css = Path(str(files("studyval.reports") / "_common" / _CSS_NAME))
    except (ImportError, TypeError):
        css = Path(__file__).resolve().parent.parent / "reports" / "_common" / _CSS_NAME
    if not css.is_file():
        raise RenderError(f"the report stylesheet {css} is missing")
    return css


def _stylesheets(doc: QmdDocument, workdir: Path) -> list[str]:
    """The studyval stylesheet, then the report's own ``css`` (without duplicates)."""
    sheets = [_studyval_css()]
    declared = doc.html.get("css", [])
    for entry in [declared] if isinstance(declared, str) else declared:
        path = (workdir / entry).resolve()
        if not path.is_file():
            raise RenderError(f"{doc.path.name}: css file {entry!r} was not found")
        if all(path.read_bytes() != s.read_bytes() for s in sheets):
            sheets.append(path)
    return [str(s) for s in sheets]


def _reduce_outputs(
    doc: QmdDocument, cell: QmdCell, outputs: Sequence[Any], workdir: Path, stem: str
) -> list[_Output]:
    """Turn nbformat outputs into markdown-ready outputs, as Quarto chooses them."""
    if not doc.option(cell, "output"):
        return []
    show_warnings = doc.option(cell, "warning")
    have_image = any(
        o.get("output_type") in ("display_data", "execute_result")
        and _pick_mime(o.get("data", {})) in ("image/svg+xml", "image/png", "image/jpeg")
        for o in outputs
    )
    reduced: list[_Output] = []
    for position, out in enumerate(outputs, start=1):
        kind = out.get("output_type")
        if kind == "stream":
            text = _strip_ansi(out.get("text", ""))
            if out.get("name") == "stderr":
                if not show_warnings:
                    continue
                reduced.append(_Output("stderr", _WARNING_PATH_RE.sub("", text)))
            else:
                reduced.append(_Output("stdout", text))
            continue
        if kind not in ("display_data", "execute_result"):
            continue  # errors stop the render before this point
        data = out.get("data", {})
        if _discardable(out, have_image):
            continue
        mime = _pick_mime(data)
        if mime is None:
            raise RenderError(
                f"{doc.path.name}: {cell.describe()} displays {sorted(data)}, which the "
                "fallback renderer cannot show the way Quarto would (use a table, "
                "markdown or a static figure)"
            )
        value = data[mime]
        value = "".join(value) if isinstance(value, list) else value
        if mime == "text/html":
            reduced.append(_Output("html", value))
        elif mime == "text/markdown":
            reduced.append(_Output("markdown", value))
        elif mime == "text/plain":
            reduced.append(_Output("text", _strip_ansi(value)))
        else:
            ext = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}[mime]
            rel = f"{stem}-output-{position}.{ext}"
            target = workdir / rel
            width = height = None
            if ext == "svg":
                target.write_text(value, encoding="utf-8")
            else:
                data = base64.b64decode(value)
                target.write_bytes(data)
                if ext == "png":
                    width, height = _retina_size(data, doc)
            reduced.append(_Output("image", path=rel, width=width, height=height))
    return reduced


def _retina_size(png: bytes, doc: QmdDocument) -> tuple[int | None, int | None]:
    """Display size of a retina PNG, decided as Quarto decides it.

    Quarto sets an image's width and height only when the figure format is
    ``retina`` and the PNG's resolution is twice ``fig-dpi``: then the image
    is shown at half its pixel size.  Width metadata of the output is ignored.
    """
    if doc.html.get("fig-format", "retina") != "retina" or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None, None
    target = 2 * int(doc.html.get("fig-dpi", 96))
    width = height = dpi_x = dpi_y = -1
    pos = 8
    while pos + 8 <= len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 8:
            width = int.from_bytes(body[0:4], "big")
            height = int.from_bytes(body[4:8], "big")
        elif kind == b"pHYs" and len(body) >= 9 and body[8] == 1:
            dpi_x = math.floor(int.from_bytes(body[0:4], "big") * 0.0254 + 0.5)
            dpi_y = math.floor(int.from_bytes(body[4:8], "big") * 0.0254 + 0.5)
        elif kind == b"IDAT":
            break
        pos += 12 + length
    if width > 0 and dpi_x == target and dpi_y == target:
        return math.floor(width / 2 + 0.5), math.floor(height / 2 + 0.5)
    return None, None


def _pick_mime(data: Mapping[str, Any]) -> str | None:
    unsupported = (
        "application/vnd.jupyter.widget-state+json",
        "application/vnd.jupyter.widget-view+json",
        "application/javascript",
    )
    if any(m in data for m in unsupported):
        return None
    for mime in ("text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg"):
        if mime in data:
            return mime
    if "text/latex" in data:
        return None
    return "text/plain" if "text/plain" in data else None


def _discardable(out: Mapping[str, Any], have_image: bool) -> bool:
    if out.get("output_type") != "execute_result":
        return False
    data = out.get("data", {})
    if set(data) != {"text/plain"}:
        return False
    text = data["text/plain"]
    text = "".join(text) if isinstance(text, list) else text
    if have_image and "\n" not in text.strip():
        return re.match(r"^([<(\[]).*?([>)\]])$", text.strip()) is not None
    return text.startswith(_DISCARDABLE_RESULTS)


def _execute(
    doc: QmdDocument,
    nb: Any,
    plan: Sequence[tuple[int, QmdCell]],
    workdir: Path,
    deadline: float,
) -> None:
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    class _ThisPythonKernels(KernelSpecManager):
        """Resolve every kernel name to ipykernel of this very interpreter."""

        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python 3 (studyval)",
                language="python",
                env=dict(_KERNEL_ENV),
            )

    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_ThisPythonKernels())
    client = NotebookClient(
        nb,
        km=km,
        kernel_name="python3",
        timeout=max(1, int(_remaining(deadline, "starting the kernel"))),
        allow_errors=False,
        record_timing=False,
        resources={"metadata": {"path": str(workdir)}},
    )
    kernel_log = workdir.parent / "kernel.log"
    cell_of = dict(plan)
    with open(kernel_log, "wb") as log:
        try:
            with client.setup_kernel(cleanup_kc=True, stdout=log, stderr=log):
                for index in range(len(nb.cells)):
                    cell = cell_of.get(index)
                    if cell is not None and not doc.option(cell, "eval"):
                        continue
                    what = "the setup cell" if cell is None else cell.describe()
                    client.timeout = max(1, math.ceil(_remaining(deadline, f"running {what}")))
                    try:
                        client.execute_cell(nb.cells[index], index)
                    except CellExecutionError as exc:
                        raise _cell_failure(doc, cell, nb.cells[index], exc) from None
                    except CellTimeoutError as exc:
                        raise RenderError(
                            f"{doc.path.name}: {what} did not finish within the render "
                            f"timeout\n{cell.head() if cell else ''}"
                        ) from exc
        except DeadKernelError as exc:
            log.flush()
            tail = _last_line(kernel_log.read_text(encoding="utf-8", errors="replace"))
            raise RenderError(
                f"{doc.path.name}: the Python kernel died: {exc} {tail}".strip()
            ) from exc
        except RuntimeError as exc:
            if isinstance(exc, StudyvalError):
                raise
            raise RenderError(f"{doc.path.name}: cannot run the Python kernel: {exc}") from exc


def _cell_failure(
    doc: QmdDocument, cell: QmdCell | None, nb_cell: Any, exc: Exception
) -> RenderError:
    errors = [o for o in nb_cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        last = _last_line("\n".join(errors[-1].get("traceback", [])))
        last = last or f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}"
    else:
        last = _last_line(str(exc))
    if cell is None:
        return RenderError(f"{doc.path.name}: the setup cell failed: {last}")
    what = "the injected parameters cell" if "injected-parameters" in cell.tags else cell.describe()
    return RenderError(f"{doc.path.name}: {what} failed: {last}\n{cell.head()}")


# --------------------------------------------------------------------------- #
# Quarto engine
# --------------------------------------------------------------------------- #


def _render_quarto(
    doc: QmdDocument,
    staged: Path,
    values: Mapping[str, Any],
    quarto: Sequence[str],
    deadline: float,
) -> tuple[bytes, str]:
    workdir = staged.parent
    env = dict(os.environ)
    env.setdefault("QUARTO_PYTHON", sys.executable)
    env.update(_KERNEL_ENV)
    version = _quarto_version(quarto, env, deadline)
    out_name = f"{staged.stem}.studyval-output.html"
    cmd = [*quarto, "render", staged.name, "--to", "html", "--execute", "--output", out_name]
    cmd += _quarto_style_args(doc, workdir)
    if values:
        params_file = workdir.parent / "studyval-params.yml"
        params_file.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
        cmd += ["--execute-params", str(params_file)]
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=_remaining(deadline, "running Quarto"),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise RenderError(
            f"{doc.path.name}: quarto render did not finish within the timeout"
        ) from exc
    except OSError as exc:
        raise RenderError(f"cannot run Quarto ({quarto[0]}): {exc}") from exc
    html = workdir / out_name
    if proc.returncode != 0 or not html.is_file():
        raise _quarto_failure(doc, proc.stdout + "\n" + proc.stderr)
    return html.read_bytes(), version


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


# --------------------------------------------------------------------------- #
# Pandoc template and Lua filter (fallback engine)
# --------------------------------------------------------------------------- #

_HTML_TEMPLATE = """\
<!DOCTYPE html>
<html lang="$if(lang)$$lang$$else$en$endif$" class="studyval">
<head>
<meta charset="utf-8">
<meta name="generator" content="studyval (jupyter + pandoc)">
<meta name="viewport" content="width=device-width, initial-scale=1.0, user-scalable=yes">
$for(author-meta)$
<meta name="author" content="$author-meta$">
$endfor$
<title>$pagetitle$</title>
<style>
$styles.html()$
</style>
$for(css)$
<link rel="stylesheet" href="$css$">
$endfor$
$if(math)$
$math$
$endif$
</head>
<body class="studyval-report$if(toc)$ has-toc$endif$">
<div id="quarto-content" class="page-layout">
$if(toc)$
<nav id="TOC" role="doc-toc" class="toc-right">
<h2 id="toc-title">$toc-title$</h2>
$table-of-contents$
</nav>
$endif$
<main class="content" id="quarto-document-content">
$if(title)$
<header id="title-block-header" class="quarto-title-block">
<div class="quarto-title">
<h1 class="title">$title$</h1>
$if(subtitle)$
<p class="subtitle lead">$subtitle$</p>
$endif$
</div>
$if(author)$
<div class="quarto-title-meta">
<div>
<div class="quarto-title-meta-heading">$author-heading$</div>
<div class="quarto-title-meta-contents">
$for(author)$
<p>$author$</p>
$endfor$
</div>
</div>
$if(date)$
<div>
<div class="quarto-title-meta-heading">Published</div>
<div class="quarto-title-meta-contents"><p class="date">$date$</p></div>
</div>
$endif$
</div>
$else$
$if(date)$
<div class="quarto-title-meta">
<div>
<div class="quarto-title-meta-heading">Published</div>
<div class="quarto-title-meta-contents"><p class="date">$date$</p></div>
</div>
</div>
$endif$
$endif$
$if(abstract)$
<div class="abstract">
<div class="block-title">Abstract</div>
<div class="abstract-text">
$abstract$
</div>
</div>
$endif$
</header>
$endif$
$body$
</main>
</div>
</body>
</html>
"""

_LUA_FILTER = r"""
-- studyval: render Quarto callouts and figure cross-references with plain pandoc,
-- and refuse what Quarto would render differently.
local NBSP = "\u{00A0}"
local UNSUPPORTED = " is not supported by the fallback renderer"
local CALLOUT_TITLES = {
  note = "Note", tip = "Tip", warning = "Warning", caution = "Caution", important = "Important",
}
local CALLOUT_ATTRIBUTES = { title = true, appearance = true, icon = true }
local CROSSREF_PREFIXES = {
  fig = true, tbl = true, lst = true, eq = true, sec = true, thm = true, lem = true,
  cor = true, prp = true, cnj = true, def = true, exm = true, exr = true, sol = true,
  rem = true, nte = true, tip = true, wrn = true, cau = true, imp = true,
}
local LAYOUT_ATTRIBUTES = {
  layout = true, ["layout-ncol"] = true, ["layout-nrow"] = true,
  ["layout-align"] = true, ["layout-valign"] = true,
}

local function fail(message, ...)
  error("studyval: " .. message:format(...), 0)
end

local function crossref_prefix(id)
  local prefix = id:match("^(%a+)%-")
  if prefix and CROSSREF_PREFIXES[prefix:lower()] then
    return prefix:lower()
  end
  return nil
end

local function quarto_only_class(class)
  return class:match("^panel%-") or class:match("^column%-") or class:match("^content%-")
    or class == "page-columns" or class == "aside" or class == "margin-aside"
    or class == "callout" or class:match("^fig%-")
end

local function check_attr(el, what)
  for _, class in ipairs(el.classes) do
    if quarto_only_class(class) then
      fail("the %s class '.%s' (a Quarto feature)" .. UNSUPPORTED, what, class)
    end
  end
  for key, _ in pairs(el.attributes) do
    if LAYOUT_ATTRIBUTES[key] then
      fail("the %s attribute '%s' (Quarto layout)" .. UNSUPPORTED, what, key)
    end
  end
end

local function callout_kind(div)
  for _, class in ipairs(div.classes) do
    local kind = class:match("^callout%-(.+)$")
    if kind then
      if not CALLOUT_TITLES[kind] then
        fail("unknown callout '.callout-%s' (note, tip, warning, caution, important)", kind)
      end
      return kind
    end
  end
  return nil
end

local function callout(div, kind)
  for key, _ in pairs(div.attributes) do
    if not CALLOUT_ATTRIBUTES[key] then
      fail("callout attribute '%s'" .. UNSUPPORTED .. " (use title, appearance, icon)", key)
    end
  end
  if div.identifier ~= "" and crossref_prefix(div.identifier) then
    fail("callout cross-reference id '#%s'" .. UNSUPPORTED, div.identifier)
  end
  local appearance = div.attributes.appearance or "default"
  if appearance ~= "default" and appearance ~= "simple" and appearance ~= "minimal" then
    fail("callout appearance '%s' must be default, simple or minimal", appearance)
  end
  local body = pandoc.List(div.content)
  local title = nil
  if div.attributes.title then
    local parsed = pandoc.read(div.attributes.title, "markdown").blocks
    title = (#parsed > 0 and parsed[1].content) or pandoc.Inlines({})
  elseif #body > 0 and body[1].t == "Header" then
    title = body[1].content
    body:remove(1)
  elseif appearance ~= "minimal" then
    title = pandoc.Inlines({ pandoc.Str(CALLOUT_TITLES[kind]) })
  end
  local show_icon = div.attributes.icon ~= "false" and appearance ~= "minimal"
  local classes = pandoc.List({ "callout", "callout-style-" .. appearance, "callout-" .. kind })
  if title then classes:insert("callout-titled") end
  if not show_icon then classes:insert("no-icon") end
  for _, class in ipairs(div.classes) do
    if class ~= "callout-" .. kind then classes:insert(class) end
  end
  local blocks = pandoc.List({})
  if title then
    local header = pandoc.List({})
    if show_icon then
      header:insert(pandoc.RawBlock(
        "html", '<div class="callout-icon-container"><i class="callout-icon"></i></div>'
      ))
    end
    local title_attr = pandoc.Attr("", { "callout-title-container" })
    header:insert(pandoc.Div({ pandoc.Plain(title) }, title_attr))
    blocks:insert(pandoc.Div(header, pandoc.Attr("", { "callout-header" })))
  end
  local body_attr = pandoc.Attr("", { "callout-body-container", "callout-body" })
  blocks:insert(pandoc.Div(body, body_attr))
  return pandoc.Div(blocks, pandoc.Attr(div.identifier, classes))
end

local function check_blocks(doc)
  return doc:walk({
    Div = function(div)
      local kind = callout_kind(div)
      if kind then
        return callout(div, kind)
      end
      check_attr(div, "div")
      if div.identifier ~= "" and crossref_prefix(div.identifier) then
        fail("'#%s' makes a Quarto cross-reference float, which the fallback renderer "
          .. "cannot number; use a {python} cell with label and fig-cap", div.identifier)
      end
    end,
    Span = function(span)
      check_attr(span, "span")
    end,
    Table = function(tbl)
      if tbl.identifier ~= "" and crossref_prefix(tbl.identifier) then
        fail("table cross-reference '#%s'" .. UNSUPPORTED, tbl.identifier)
      end
      -- Quarto's HTML default, tbl-colwidths: auto, drops pandoc's relative column
      -- widths from tables that contain a link
      local has_link = false
      pandoc.Blocks({ tbl }):walk({
        Link = function()
          has_link = true
        end,
      })
      if has_link then
        local colspecs = tbl.colspecs
        for i, spec in ipairs(colspecs) do
          colspecs[i] = { spec[1], pandoc.ColWidthDefault }
        end
        tbl.colspecs = colspecs
        return tbl
      end
    end,
    Str = function(str)
      local id = str.text:match("^{#([%w_-]+)}")
      if id and crossref_prefix(id) then
        fail("cross-reference id '{#%s}'" .. UNSUPPORTED, id)
      end
    end,
  })
end

local function number_figures(doc)
  local numbers = {}
  local count = 0
  doc = doc:walk({
    Figure = function(fig)
      local prefix = fig.identifier ~= "" and crossref_prefix(fig.identifier)
      if prefix == "fig" then
        count = count + 1
        numbers[fig.identifier] = count
        local label = "Figure" .. NBSP .. count
        local caption = fig.caption.long
        if #caption == 0 or #caption[1].content == 0 then
          fig.caption.long = { pandoc.Plain({ pandoc.Str(label) }) }
        else
          local first = caption[1]
          local prefix_inlines = pandoc.Inlines({ pandoc.Str(label .. ":"), pandoc.Space() })
          first.content = prefix_inlines .. first.content
          caption[1] = first
          fig.caption.long = caption
        end
        fig.classes:insert("quarto-float")
        return fig
      elseif prefix then
        fail("figure id '#%s' must start with 'fig-'", fig.identifier)
      end
    end,
  })
  doc:walk({
    Image = function(img)
      if img.src:match("^/") or img.src:match("^%a:[/\\]") then
        fail("image '%s' has an absolute path, which Quarto resolves against the report's "
          .. "directory, not the file system, so Quarto's report would miss it; link it with "
          .. "a path relative to the working directory (os.path.relpath) or a file:// URL, "
          .. "or show it with IPython.display.Image in a cell", img.src)
      end
      if img.identifier ~= "" and crossref_prefix(img.identifier) then
        fail("image '#%s' is not alone in its paragraph, so it is no figure", img.identifier)
      end
    end,
  })
  return doc, numbers
end

local function resolve_references(doc, numbers)
  return doc:walk({
    Cite = function(cite)
      local first = cite.citations[1]
      local id = first.id
      if #cite.citations == 1 and crossref_prefix(id) == "fig" then
        local key = "fig-" .. id:sub(5)
        local number = numbers[key]
        if not number then
          fail("'@%s' refers to no figure (no cell or image has label '%s')", id, key)
        end
        if #first.prefix > 0 or #first.suffix > 0 then
          fail("'@%s' with a prefix or suffix" .. UNSUPPORTED, id)
        end
        local text = "Figure" .. NBSP .. number
        if first.mode == "SuppressAuthor" then
          text = tostring(number)
        end
        local attr = pandoc.Attr("", { "quarto-xref" })
        return pandoc.Link({ pandoc.Str(text) }, "#" .. key, "", attr)
      end
      fail("'@%s' is a citation or cross-reference that the fallback renderer cannot "
        .. "resolve (only '@fig-...' references to labelled figures); "
        .. "write '\\@' for a literal '@'", id)
    end,
  })
end

-- HTML tables in cell output (pandas) become pandoc tables, as Quarto's
-- html-table-processing makes them, so that they are styled like the others.
local function html_tables(doc)
  return doc:walk({
    RawBlock = function(raw)
      if raw.format ~= "html" or not raw.text:lower():find("<table") then
        return nil
      end
      local ok, parsed = pcall(pandoc.read, raw.text, "html")
      if not ok then
        return nil
      end
      return parsed.blocks:walk({
        RawBlock = function(inner)
          if inner.format == "html" and inner.text:match("^%s*<style") then
            return {}
          end
        end,
        RawInline = function(inner)
          if inner.format == "html" and inner.text:match("^%s*<style") then
            return {}
          end
        end,
        Table = function(tbl)
          if tbl.classes:includes("dataframe") then
            tbl.classes:extend({ "table-sm", "table-striped", "small" })
          end
          local head = tbl.head
          local rows = head.rows
          for i, row in ipairs(rows) do
            row.attr = pandoc.Attr()
            rows[i] = row
          end
          head.rows = rows
          tbl.head = head
          return tbl
        end,
      })
    end,
  })
end

function Pandoc(doc)
  doc = html_tables(doc)
  doc = check_blocks(doc)
  local numbers
  doc, numbers = number_figures(doc)
  return resolve_references(doc, numbers)
end
"""
