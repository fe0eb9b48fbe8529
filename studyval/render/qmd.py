"""The ``.qmd`` parser: cells, options and front matter, checked against what the fallback can render.

:func:`parse_qmd` reads a Quarto document into a :class:`QmdDocument` of
:class:`QmdCell` and refuses, with a :class:`~studyval.errors.RenderError`
naming the line, any construct that the fallback renderer (Jupyter + pandoc)
cannot render the way Quarto would: a non-Python cell, an unknown cell option
or front-matter key, a shortcode, inline code, a table cross-reference label
... These checks run before either engine renders.
"""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from studyval.errors import RenderError

__all__ = ["QmdCell", "QmdDocument", "parse_qmd"]


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
