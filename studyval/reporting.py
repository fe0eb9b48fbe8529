"""Formatting helpers for the Quarto reports: tables and numbers, never statistics.

A report reads its bundle's tables and lays them out with these helpers. They
format; they do not compute estimates (the only arithmetic is turning a
proportion into a percentage for display).

Escaping
--------
Every value read from a bundle (a table cell, a model or site name, a message,
a field of the manifest) is *data*: it is shown as the text it is, never
interpreted as markup, whatever characters it holds. The report writes pandoc
Markdown (which both Quarto and the fallback renderer turn into HTML), so a
value goes into it through :func:`md_escape`, and the writers here
(:func:`md_table`, :func:`md_callout`, :func:`md_placeholder` ...) escape
every value they are given. Text that is already Markdown written by the
report itself (a bold label, a ``[...]{.placeholder}`` span) is passed as
:class:`Markup` and left as it is. The escaper for other output formats is
chosen by name with :func:`escape` (``"markdown"``, ``"html"``, ``"typst"``,
``"latex"``, ``"spreadsheet"``).
"""

from __future__ import annotations

import html as _html
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from studyval.bundle import csv_safe_text, read_manifest, read_table

__all__ = [
    "ESCAPERS",
    "Bundle",
    "Markup",
    "escape",
    "fmt_ci",
    "fmt_num",
    "fmt_p",
    "html_escape",
    "latex_escape",
    "md_callout",
    "md_checklist_content",
    "md_code",
    "md_escape",
    "md_image",
    "md_placeholder",
    "md_table",
    "spreadsheet_escape",
    "typst_escape",
]

#: Text shown for a checklist item the investigators still have to write
#: (the same string as :data:`studyval.checklists.PLACEHOLDER`).
PLACEHOLDER = "[TO BE WRITTEN BY THE INVESTIGATORS]"


def fmt_num(x: float, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NA for missing, infinity spelt out."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "NA"
    if np.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.{digits}f}"


def fmt_ci(est: float, lo: float, hi: float, digits: int = 3) -> str:
    """``0.912 (0.861 to 0.953)``: the word "to" avoids confusion with minus signs."""
    return f"{fmt_num(est, digits)} ({fmt_num(lo, digits)} to {fmt_num(hi, digits)})"


def fmt_p(p: float) -> str:
    """P value as journals print it: ``<0.001`` below 0.001, three decimals otherwise."""
    if p is None or np.isnan(p):
        return "NA"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# --------------------------------------------------------------------------- #
# Escaping: data is text, never markup
# --------------------------------------------------------------------------- #


class Markup(str):
    """Markdown written by the report itself: the writers pass it through unescaped.

    Only text the report's author wrote (or that an escaper returned) is
    ``Markup``; anything from a bundle is escaped with :func:`md_escape`
    before it is joined into one. Operations on a ``Markup`` return a plain
    ``str`` (which a writer escapes again), so mark the finished string.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Markup({str.__repr__(self)})"


_WHITESPACE_RE = re.compile(r"\s+")
# control characters other than whitespace (NUL, ESC, DEL ...) are not text
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")


def _text(value: object) -> str:
    """``value`` as one line of text: whitespace runs (newlines too) become one space."""
    text = value if isinstance(value, str) else str(value)
    text = _CONTROL_RE.sub("\ufffd", text)
    return _WHITESPACE_RE.sub(" ", text)


# Characters that start pandoc Markdown anywhere in a line: escapes, code and raw
# attributes, emphasis, links/images/spans/footnotes/citations, attributes and Quarto
# shortcodes, raw HTML and autolinks, headers and ids, tables and line blocks, math,
# citations and example lists, superscript, subscript and strikeout, entities.
_MD_SPECIALS = frozenset("\\`*_[]{}<>#|$@^~&")
# What pandoc's "smart" extension would turn into typography (curly quotes, en and
# em dashes, an ellipsis): escaped, so that data keeps its straight quotes and hyphens.
_MD_SMART_RE = re.compile(r"[\"']|-{2,}|\.{3,}")
# Characters that start a block only at the beginning of a line (lists, rules,
# setext underlines, definition lists); a following digit or point keeps a signed
# number ("-0.5", "+2") as it is.
_MD_LINE_START_RE = re.compile(r"^( ?)([-+=:])(?![0-9.])")
# Ordered-list markers of pandoc's fancy_lists: "1.", "1)", "(1)", "a.", "iv)".
_MD_ORDERED_RE = re.compile(r"^( ?\(?(?:[0-9]+|[A-Za-z]|[ivxlcdmIVXLCDM]+))([.)])(?= |$)")


def md_escape(value: object) -> Markup:
    r"""``value`` as literal text in pandoc Markdown (and Quarto's).

    Every character that Markdown could read as markup is backslash-escaped
    (pandoc's ``all_symbols_escapable``: a backslash before any ASCII
    punctuation gives the character itself). Raw HTML (``<script>``, event
    handlers, ``<img>``), links and images, footnotes (``[^1]``, ``^[...]``),
    citations (``@key``), math (``$``), attributes and raw blocks (``{=html}``),
    Quarto shortcodes (``{{< >}}``), entities (``&amp;``) and LaTeX commands
    (``\input``) are therefore shown as typed, never interpreted. Line breaks
    become spaces, so a value cannot start a block (a heading, a list, a
    fenced div, a table caption) by itself, and a value that begins with a
    list, rule or definition marker has that marker escaped. Control
    characters become U+FFFD. Quotes, ``--`` and ``...`` stay straight
    quotes, hyphens and points (pandoc's ``smart`` typography is not applied
    to data). A :class:`Markup` value is returned unchanged.

    Numbers need nothing: ``md_escape("0.912 (0.861 to 0.953)")`` is the same
    string.
    """
    if isinstance(value, Markup):
        return value
    text = _text(value)
    out = "".join("\\" + ch if ch in _MD_SPECIALS else ch for ch in text)
    out = _MD_SMART_RE.sub(lambda m: "".join("\\" + ch for ch in m.group()), out)
    out = _MD_LINE_START_RE.sub(r"\1\\\2", out, count=1)
    out = _MD_ORDERED_RE.sub(r"\1\\\2", out, count=1)
    return Markup(out)


def md_code(value: object) -> Markup:
    """``value`` as inline code (a hash, a file name); escaped text if it cannot be.

    A code span shows its content literally in pandoc, but Quarto still reads
    shortcodes and inline expressions there, so a value with a brace or a
    backtick is written as escaped text (:func:`md_escape`) instead.
    """
    text = _text(value).strip()
    if not text or any(ch in text for ch in "`{}"):
        return md_escape(text)
    return Markup(f"`{text}`")


def md_placeholder(text: object = PLACEHOLDER) -> Markup:
    """``text`` in the amber placeholder span (``[...]{.placeholder}``), escaped."""
    return Markup(f"[{md_escape(text)}]{{.placeholder}}")


def md_checklist_content(content: object, status: str) -> Markup:
    """A checklist item's content for a report table.

    An item still ``to write`` is shown whole as a placeholder; elsewhere each
    :data:`PLACEHOLDER` inside the text (the human part of a mixed item) is.
    The rest is data and is escaped.
    """
    text = (
        ""
        if content is None or (isinstance(content, float) and math.isnan(content))
        else str(content)
    )
    if status == "to write":
        return md_placeholder(text)
    return Markup(
        md_placeholder(PLACEHOLDER).join(md_escape(part) for part in text.split(PLACEHOLDER))
    )


def md_image(path: str | os.PathLike[str], caption: object = "", attrs: str = "") -> Markup:
    """A Markdown image ``![caption](path){attrs}``: the caption escaped, the path kept whole.

    ``path`` is a relative path as :meth:`Bundle.figure` returns it; it is
    written in angle brackets when it holds spaces or parentheses, so that it
    stays one link destination. ``attrs`` is the report's own attribute text
    (``"width=60%"``). A caption is shown below the figure when the image is
    alone in its paragraph.
    """
    target = Path(path).as_posix() if isinstance(path, os.PathLike) else str(path)
    if any(ch in target for ch in "<>\n\r\\"):
        raise ValueError(f"not a figure path for a report: {target!r}")
    if any(ch in target for ch in " ()[]"):
        target = f"<{target}>"
    return Markup(f"![{md_escape(caption)}]({target})" + (f"{{{attrs}}}" if attrs else ""))


_CALLOUT_KINDS = ("note", "tip", "warning", "caution", "important")


def md_callout(kind: str, body: object, title: object = None) -> Markup:
    """A Quarto callout block; ``title`` and ``body`` are escaped unless :class:`Markup`.

    ``kind`` is one of note, tip, warning, caution, important. The title
    becomes the callout's ``##`` heading.
    """
    if kind not in _CALLOUT_KINDS:
        raise ValueError(f"callout kind must be one of {', '.join(_CALLOUT_KINDS)}, not {kind!r}")
    head = f"::: {{.callout-{kind}}}\n"
    if title is not None:
        head += f"## {md_escape(title)}\n"
    return Markup(f"{head}{md_escape(body)}\n:::\n")


def html_escape(value: object) -> str:
    """``value`` as HTML text or a quoted attribute value: ``& < > " '`` become entities."""
    return _html.escape(str(value), quote=True)


_TYPST_SPECIALS = frozenset("\\#$*_`<>@[]~=-+/'\"")
_ELLIPSIS_RE = re.compile(r"\.{3,}")


def typst_escape(value: object) -> str:
    r"""``value`` as literal text in Typst markup.

    Every character that starts markup (``#`` code such as ``#set``, ``$``
    math, ``*``/``_`` emphasis, `````raw`````, ``<label>``, ``@ref``, ``[]``
    content, ``~`` nbsp, ``=``/``-``/``+``/``/`` headings, lists and comments,
    quotes) is preceded by a backslash; line breaks become spaces (a backslash
    never precedes a space or a letter, so it never makes a line break or a
    ``\u{...}`` escape).
    """
    text = _text(value)
    out = "".join("\\" + ch if ch in _TYPST_SPECIALS else ch for ch in text)
    # "..." is Typst's shorthand for an ellipsis
    return _ELLIPSIS_RE.sub(lambda m: "\\." * len(m.group()), out)


_LATEX_REPLACEMENTS = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    "[": "{[}",
    "]": "{]}",
    # quotes as typed, not as the typographic quotes of their ligatures
    "`": r"\textasciigrave{}",
    "'": r"\textquotesingle{}",
    '"': r"\textquotedbl{}",
}


def latex_escape(value: object) -> str:
    r"""``value`` as literal text in LaTeX (``\input{}`` is shown, not run).

    The ten special characters, ``< > |`` and quotes become their text
    commands, brackets are braced (so they cannot open an optional argument),
    hyphens do not join into dashes, and line breaks become spaces (no blank
    line, no paragraph break).
    """
    text = _text(value)
    out = "".join(_LATEX_REPLACEMENTS.get(ch, ch) for ch in text)
    # "--" and "---" are dash ligatures
    return out.replace("--", "-{}-").replace("--", "-{}-")


def spreadsheet_escape(value: object) -> str:
    """``value`` for a CSV or spreadsheet cell that must not run as a formula.

    A text that a spreadsheet would read as a formula (one starting with
    ``= + - @``, a tab or a carriage return, e.g. ``=HYPERLINK(...)``) gets a
    leading apostrophe (OWASP's advice); numbers, including signed ones, are
    left as they are. The same rule as the bundle's CSV tables
    (:func:`studyval.bundle.csv_safe_text`).
    """
    return str(csv_safe_text(str(value)))


#: The escaper of each output format.
ESCAPERS: dict[str, Callable[[object], str]] = {
    "markdown": md_escape,
    "html": html_escape,
    "typst": typst_escape,
    "latex": latex_escape,
    "spreadsheet": spreadsheet_escape,
}


def escape(value: object, fmt: str = "markdown") -> str:
    """``value`` escaped for output format ``fmt`` (a key of :data:`ESCAPERS`).

    A :class:`Markup` value is Markdown already and is returned unchanged for
    ``"markdown"``.
    """
    try:
        escaper = ESCAPERS[fmt]
    except KeyError:
        raise ValueError(f"no escaper for format {fmt!r}; known: {', '.join(ESCAPERS)}") from None
    return escaper(value)


def _md_cell(value: object) -> str:
    """One pipe-table cell: data escaped, :class:`Markup` kept (on one line)."""
    if isinstance(value, Markup):
        return value.replace("\r", " ").replace("\n", " ")
    return md_escape(value)


def md_table(
    frame: pd.DataFrame,
    columns: Mapping[str, str] | None = None,
    *,
    align: Sequence[str] | None = None,
    caption: str | None = None,
    markup: Iterable[str] = (),
) -> str:
    """A pipe-table in pandoc Markdown (works in Quarto and plain pandoc).

    Every header, cell and the caption is data: it is escaped with
    :func:`md_escape` (so ``|``, ``<script>``, ``[^1]`` or ``{{< >}}`` are shown
    as typed). Only the cells of the ``markup`` columns, and a :class:`Markup`
    value, are written as they are.

    Parameters
    ----------
    frame : DataFrame
        Already formatted cells (strings or numbers).
    columns : mapping, optional
        Column name -> header text, in display order.
    align : sequence of {"l", "r", "c"}, optional
        Alignment per column; text left, others right by default.
    caption : str, optional
        Table caption (pandoc ``: caption`` syntax).
    markup : iterable of str, optional
        Columns (names in ``frame``, before ``columns`` renames them) whose
        cells the report has already written as Markdown, escaping the data in
        them: :func:`md_code`, :func:`md_checklist_content`, or text joined
        from :func:`md_escape` pieces. (A column of strings loses the
        :class:`Markup` type of its cells in pandas, so name it here.)

    """
    markup = set(markup)
    missing = markup - set(frame.columns)
    if missing:
        raise KeyError(f"markup names columns the frame does not have: {sorted(missing)}")
    names = list(columns) if columns is not None else list(frame.columns)
    raw = [name in markup for name in names]
    if columns is not None:
        frame = frame[list(columns)].rename(columns=dict(columns))
    headers = [_md_cell(c) for c in frame.columns]
    if align is None:
        align = [
            "r"
            if pd.api.types.is_numeric_dtype(frame.iloc[:, i])
            and not pd.api.types.is_bool_dtype(frame.iloc[:, i])
            else "l"
            for i in range(frame.shape[1])
        ]
    rule = {"l": ":--", "r": "--:", "c": ":-:"}
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(rule[a] for a in align) + "|"]
    for row in frame.itertuples(index=False):
        cells = (_md_cell(Markup(v) if is_raw else v) for v, is_raw in zip(row, raw, strict=True))
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    if caption:
        text += f"\n: {_md_cell(caption)}\n"
    return text + "\n"


_FILE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _file_name(name: object) -> str:
    """A figure or table name (it may come from a bundle table): one plain file name."""
    text = str(name)
    if not _FILE_NAME_RE.fullmatch(text) or ".." in text:
        raise ValueError(f"not a figure or table name of a bundle: {text!r}")
    return text


class Bundle:
    """Read-only access to a results bundle from a report."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self._cache: dict[str, pd.DataFrame] = {}

    def table(self, name: str) -> pd.DataFrame:
        """Table ``name`` (cached)."""
        if name not in self._cache:
            self._cache[name] = read_table(self.path, name)
        return self._cache[name]

    def figure(self, name: str, ext: str = "png") -> str:
        """Path of figure ``name`` for a Markdown image link.

        Relative to the working directory of the rendering kernel (the
        report's directory), because Quarto resolves an absolute link against
        the project, not the file system.
        """
        path = self.path / "figures" / f"{_file_name(name)}.{ext}"
        if not path.is_file():
            raise FileNotFoundError(f"bundle has no figure {name}.{ext}")
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()

    # ---- the imaging chain's part of the bundle (studyval.imaging_demo) ---------------------
    @property
    def has_imaging(self) -> bool:
        """Whether the bundle holds an imaging chain's outputs (``imaging/``)."""
        return (self.path / "imaging" / "manifest.json").is_file()

    @property
    def imaging_manifest(self) -> dict:
        """The imaging chain's manifest (models, weights hashes, epochs, scans)."""
        import json

        return json.loads((self.path / "imaging" / "manifest.json").read_text(encoding="utf-8"))

    def imaging_table(self, name: str) -> pd.DataFrame:
        """Table ``imaging/tables/<name>.csv``."""
        path = self.path / "imaging" / "tables" / f"{_file_name(name)}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"bundle has no imaging table {name}")
        return pd.read_csv(path)

    def imaging_figure(self, name: str, ext: str = "png") -> str:
        """Path of imaging figure ``name`` for a Markdown image link (see :meth:`figure`)."""
        path = self.path / "imaging" / "figures" / f"{_file_name(name)}.{ext}"
        if not path.is_file():
            raise FileNotFoundError(f"bundle has no imaging figure {name}.{ext}")
        return Path(os.path.relpath(path.resolve(), Path.cwd())).as_posix()
