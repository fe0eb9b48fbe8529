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
from typing import Any

import numpy as np
import pandas as pd

from studyval.bundle import csv_safe_text, read_manifest, read_table
from studyval.errors import StudyvalError


class BundlePlanError(StudyvalError):
    """A bundle's analysis plan cannot be read as the one its run used (missing or edited copy)."""


__all__ = [
    "ESCAPERS",
    "LABELS",
    "Bundle",
    "BundlePlanError",
    "Markup",
    "escape",
    "fmt_cell",
    "fmt_ci",
    "fmt_estimate",
    "fmt_frame",
    "fmt_num",
    "fmt_p",
    "html_escape",
    "label",
    "latex_escape",
    "md_callout",
    "md_checklist_content",
    "md_code",
    "md_dictionary",
    "md_escape",
    "md_image",
    "md_origin_banner",
    "md_placeholder",
    "md_section_links",
    "md_summary",
    "md_table",
    "origin_caption",
    "p_text",
    "spreadsheet_escape",
    "target_verdict",
    "typst_escape",
    "unit_text",
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


def _finite(x: object) -> bool:
    if x is None or isinstance(x, (bool, np.bool_)):
        return False
    try:
        return math.isfinite(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False


#: What a report shows for an estimate that the data do not allow (never inf, NA or nan).
NOT_ESTIMABLE = "not estimable"


def fmt_estimate(
    est: object,
    lo: object = None,
    hi: object = None,
    digits: int = 3,
    *,
    why: str | None = None,
) -> str:
    """An estimate with its CI for readers: never ``inf``, ``NA`` or ``nan``.

    ``0.912 (0.861 to 0.953)`` when all three are finite; ``0.912`` when no CI
    is given; ``0.912 (CI not estimable: why)`` when the bounds are missing or
    infinite; ``not estimable (why)`` when the estimate itself is (an LR+ with
    specificity 1, a rate with no denominator). ``why`` is the reason in words.
    """
    reason = f": {why}" if why else ""
    if not _finite(est):
        return NOT_ESTIMABLE + (f" ({why})" if why else "")
    if lo is None and hi is None:
        return fmt_num(float(est), digits)  # type: ignore[arg-type]
    if _finite(lo) and _finite(hi):
        return fmt_ci(float(est), float(lo), float(hi), digits)  # type: ignore[arg-type]
    return f"{fmt_num(float(est), digits)} (CI not estimable{reason})"  # type: ignore[arg-type]


def p_text(p: object) -> str:
    """A P value as a phrase: ``p < 0.001``, ``p = 0.034``; ``p not computed`` when missing."""
    if not _finite(p):
        return "p not computed"
    text = fmt_p(float(p))  # type: ignore[arg-type]
    return f"p < {text[1:]}" if text.startswith("<") else f"p = {text}"


_MISSING_CELL = "–"


def fmt_cell(value: object, digits: int = 3) -> object:
    """One table cell for readers: booleans as yes/no, floats rounded, missing as a dash.

    A float with a fractional part gets ``digits`` decimals; a whole float is
    shown as an integer; ``inf`` is "not estimable"; ``None``/``NaN`` (and the
    strings ``"nan"``, ``"None"``, ``"True"``, ``"False"``) are never shown as
    such. Other values (strings, :class:`Markup`) are returned unchanged.
    """
    if isinstance(value, Markup):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if value is None:
        return _MISSING_CELL
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return "yes" if low == "true" else "no"
        if low in ("nan", "none", "na", "<na>", "nat"):
            return _MISSING_CELL
        if low in ("inf", "-inf", "infinity"):
            return NOT_ESTIMABLE
        return value
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return _MISSING_CELL
        if math.isinf(x):
            return NOT_ESTIMABLE
        if x == int(x) and abs(x) < 1e15:
            return str(int(x))
        return fmt_num(x, digits)
    if value is pd.NA or value is pd.NaT:
        return _MISSING_CELL
    return value


def fmt_frame(
    frame: pd.DataFrame, digits: int = 3, *, columns: Iterable[str] | None = None
) -> pd.DataFrame:
    """A copy of ``frame`` with :func:`fmt_cell` applied to ``columns`` (all by default)."""
    out = frame.copy()
    for col in list(out.columns) if columns is None else columns:
        out[col] = pd.Series([fmt_cell(v, digits) for v in out[col]], index=out.index, dtype=object)
    return out


#: Reader labels for the code names of measures, methods, model terms and variables
#: that the bundle's tables hold (one table for every report).
LABELS: dict[str, str] = {
    # discrimination and accuracy
    "auc": "AUC",
    "auc_ovr": "AUC (one vs rest)",
    "auc_macro": "Macro AUC",
    "auc_weighted": "Weighted AUC",
    "auc_horizon": "Time-dependent AUC at the horizon",
    "td_auc": "Time-dependent AUC",
    "hand_till_m": "Hand & Till's M",
    "harrell_c": "Harrell's C",
    "uno_c": "Uno's C",
    "somers_dxy": "Somers' Dxy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "ppv": "PPV",
    "npv": "NPV",
    "accuracy": "Accuracy",
    "accuracy_within_one": "Accuracy within one grade",
    "lr_positive": "LR+",
    "lr_negative": "LR−",
    "kappa_quadratic": "Weighted kappa (quadratic)",
    "kappa_linear": "Weighted kappa (linear)",
    "kappa": "Cohen's kappa",
    # calibration and overall accuracy
    "brier": "Brier score",
    "brier_null": "Brier score of the null model",
    "scaled_brier": "Scaled Brier score",
    "ipa": "IPA (scaled Brier)",
    "calibration_slope": "Calibration slope",
    "calibration_in_the_large": "Calibration-in-the-large",
    "intercept_in_large": "Calibration-in-the-large",
    "slope": "Calibration slope",
    "eavg": "Eavg (ICI)",
    "e50": "E50",
    "e90": "E90",
    "emax": "Emax",
    "oe_ratio": "Observed/expected ratio",
    # rates and monitoring
    "ai_flag_rate": "AI flag rate",
    "detection_rate": "Detection rate",
    "referral_rate": "Referral rate",
    "miss_rate": "Miss rate",
    # comparisons
    "compare_time_dependent_auc": "Difference in time-dependent AUC",
    "compare_harrell_c": "Difference in Harrell's C",
    "compare_auc": "Difference in AUC",
    "likelihood_ratio": "Likelihood-ratio test",
    # model terms and variables
    "oa": "OA (KL grade ≥ 2)",
    "years": "Years since baseline",
    "years:oa": "Years × OA",
    "(intercept)": "Intercept",
    "intercept": "Intercept",
    "var_patient": "Between-patient variance",
    "var_residual": "Residual variance",
    "meld_na": "MELD-Na",
    "meld": "MELD",
    "bmi_kg_m2": "BMI (kg/m²)",
    "ctx_ng_ml": "β-CTX (ng/mL)",
    "p1np_ng_ml": "P1NP (ng/mL)",
    "calcium_mmol_l": "Calcium (mmol/L)",
    "phosphorus_mmol_l": "Phosphorus (mmol/L)",
    "bmd_t_score": "BMD T-score",
    "dxa_t_score": "DXA T-score",
    "pdff_percent": "PDFF (%)",
    "r2star_per_s": "R2* (1/s)",
    "cement_volume_ml": "Cement volume (mL)",
    "cement_leakage": "Cement leakage",
    "n_fractured_vertebrae": "Number of fractured vertebrae",
    "smi_cm2_m2": "SMI (cm²/m²)",
    "sarcopenia": "Sarcopenia",
    "age": "Age",
    "sex": "Sex",
    "kl_grade": "KL grade",
    "kl_grade (knees)": "KL grade (knees)",
    "dxa_stage": "DXA stage",
    "fracture_followup_months": "Fracture follow-up (months)",
    "female": "Female",
    "op": "Osteoporosis stage",
    "kl": "KL grade",
    "internal": "Internal",
    "external": "External",
    "image": "Image",
    "clinical": "Clinical",
    "laboratory": "Laboratory",
}


_SNAKE_RE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$")


_UNIT_POWER_RE = re.compile(r"(?<=[A-Za-z])\^?(-?[123])(?![0-9])")
_SUPERSCRIPT = str.maketrans("-123", "\u207b\u00b9\u00b2\u00b3")


def unit_text(unit: object) -> str:
    """A dictionary unit as readers write it: ``cm2`` -> cm², ``kg/m2`` -> kg/m², ``s^-1`` -> s⁻¹.

    A power is a digit (1-3, optionally negative, optionally after ``^``)
    right after a letter; a bare ``1`` is a power only after ``^`` or ``-``.

    Examples
    --------
    >>> unit_text("kg/m2"), unit_text("s^-1"), unit_text("mmol/L"), unit_text("cm2/m2")
    ('kg/m²', 's⁻¹', 'mmol/L', 'cm²/m²')

    """

    def power(m: re.Match[str]) -> str:
        p = m.group(1)
        if p == "1":  # "m1" is not a power; "s^1" would be, and is just "s"
            return m.group(0) if not m.group(0).startswith("^") else ""
        return p.translate(_SUPERSCRIPT)

    return _UNIT_POWER_RE.sub(power, str(unit))


def label(code: object) -> str:
    """The reader label of a code name (:data:`LABELS`); other snake_case names in words.

    ``label("kappa_quadratic")`` is "Weighted kappa (quadratic)"; an unknown
    ``some_code_name`` becomes "Some code name"; anything else is returned as text.
    """
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return _MISSING_CELL
    text = str(code)
    key = text.strip()
    if key in LABELS:
        return LABELS[key]
    if key.lower() in LABELS:
        return LABELS[key.lower()]
    if _SNAKE_RE.match(key):
        words = key.replace("_", " ")
        return words[0].upper() + words[1:]
    return text


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


# --------------------------------------------------------------------------- #
# The top of a report: data-origin banner and summary; links between sections
# --------------------------------------------------------------------------- #


def origin_caption(origin: Mapping[str, str]) -> str:
    """The note added to every figure caption of a bundle not made from study data ("" for user data)."""
    if origin.get("kind") == "user":
        return ""
    return f"{origin.get('label', 'Data origin not recorded')}: not a clinical result."


def md_origin_banner(origin: Mapping[str, str]) -> Markup:
    """The callout at the top of a report whose inputs are not study data (nothing for user data).

    ``origin`` is :attr:`Bundle.origin` (:func:`studyval.origin.origin_of_manifest`):
    the label and statement are studyval's own text, the recorded detail is data.
    """
    if origin.get("kind") == "user":
        return Markup("")
    body = md_escape(origin.get("statement", ""))
    detail = origin.get("detail") or ""
    if detail:
        body = Markup(f"{body} *Recorded in the manifest:* {md_escape(detail)}.")
    return Markup(
        "::: {.callout-important .data-origin}\n"
        f"## {md_escape(origin.get('label', 'Data origin not recorded'))}: not a clinical result\n"
        f"{body}\n:::\n"
    )


def target_verdict(
    est: object, lo: object, hi: object, target: float | None, *, higher_is_better: bool = True
) -> str:
    """Whether an estimate met a registered or planned target, in words, from its 95% CI.

    "yes" when the whole CI lies on the good side of the target, "no"
    when the whole CI lies on the other side, "not shown" when the CI
    includes the target; "no target registered" when ``target`` is None.
    A comparison for display: nothing is estimated.
    """
    if target is None:
        return "no target registered"
    if not (_finite(est) and _finite(lo) and _finite(hi)):
        return "cannot be judged (no CI)"
    lo_, hi_ = float(lo), float(hi)  # type: ignore[arg-type]
    good_lo, good_hi = (lo_, hi_) if higher_is_better else (-hi_, -lo_)
    t = float(target) if higher_is_better else -float(target)
    good, bad = ("above", "below") if higher_is_better else ("below", "above")
    if good_lo > t:
        return f"yes: the whole 95% CI is {good} the target"
    if good_hi < t:
        return f"no: the whole 95% CI is {bad} the target"
    side = good if (float(est) > float(target)) == higher_is_better else bad  # type: ignore[arg-type]
    return f"not shown: the 95% CI includes the target (estimate {side} it)"


_SECTION_SPLIT_RE = re.compile(r"\s*;\s*")


def md_section_links(
    text: object, anchors: Mapping[str, str | tuple[str, str]], *, strict: bool = False
) -> Markup:
    """Section names (``"Summary; Participant flow"``) as links to the report's sections.

    ``anchors`` maps each name a checklist may use to the id of a heading of
    this report (``{"Summary": "sec-summary"}``), or to the id and the title
    to show (``{"Methods": ("sec-outcomes", "Registered outcomes")}``); names
    that lead to one section give one link. A name that is not in
    ``anchors`` is shown as plain (escaped) text, never as a link to nothing;
    with ``strict=True`` it raises ``KeyError``. Empty text gives an empty cell.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return Markup("")
    names = [n for n in _SECTION_SPLIT_RE.split(_text(text).strip()) if n]
    links: dict[str, str] = {}
    for name in names:
        if name not in anchors:
            if strict:
                raise KeyError(f"'Shown in' names {name!r}, which is not a section of this report")
            links.setdefault(name, md_escape(name))  # shown as text, never as a dead link
            continue
        where = anchors[name]
        ident, title = (where, name) if isinstance(where, str) else where
        links.setdefault(ident, f"[{md_escape(title)}](#{ident})")
    return Markup(", ".join(links.values()))


def md_summary(
    primary: Sequence[Mapping[str, object]],
    secondary: Sequence[Mapping[str, object]] = (),
    *,
    n_warnings: int,
    warnings_anchor: str = "sec-warnings",
    note: object = None,
) -> Markup:
    """The opening summary: the primary endpoint answered, key secondary results, warnings.

    Parameters
    ----------
    primary : sequence of mappings
        One per registered primary endpoint: ``endpoint`` (what was measured),
        ``result`` (the formatted estimate and 95% CI), ``n`` (who it rests
        on), ``target`` (the registered or planned target, or a sentence that
        none was registered), ``met`` (whether it was met, in words) and
        ``section`` (the id of the section that shows it).
    secondary : sequence of mappings
        ``endpoint``, ``result`` and ``section`` of the key secondary results.
    n_warnings : int
        Rows of the bundle's warnings table.
    note : str, optional
        One more sentence (a caveat the reader must see first).

    Every value is data and is escaped.
    """
    lines = [
        "| Primary endpoint | Result (95% CI) | n | Registered target | Target met? |",
        "|:--|:--|:--|:--|:--|",
    ]
    for row in primary:
        endpoint = Markup(f"[{md_escape(row['endpoint'])}](#{row['section']})")
        cells = [endpoint] + [_md_cell(row.get(k, "")) for k in ("result", "n", "target", "met")]
        lines.append("| " + " | ".join(cells) + " |")
    out = ["::: {.sv-summary}", "\n".join(lines) + "\n", ":::\n"]
    if secondary:
        out.append("**Key secondary results**\n")
        out.extend(
            f"- [{md_escape(row['endpoint'])}](#{row['section']}): {md_escape(row['result'])}"
            for row in secondary
        )
        out.append("")
    if n_warnings:
        out.append(
            f"**{int(n_warnings)} statistical warning{'s' if n_warnings != 1 else ''}** were raised "
            f"while the statistics were computed; see [Statistical warnings](#{warnings_anchor}).\n"
            if n_warnings != 1
            else f"**1 statistical warning** was raised while the statistics were computed; see "
            f"[Statistical warnings](#{warnings_anchor}).\n"
        )
    else:
        out.append(
            f"No statistical warnings were raised ([Statistical warnings](#{warnings_anchor})).\n"
        )
    if note:
        out.append(f"{md_escape(note)}\n")
    return Markup("\n".join(out) + "\n")


_PATTERN_RE = re.compile(r"^(?P<head>.*?\bpattern\s+)(?P<pattern>\S.*)$")


def _allowed_cell(value: object) -> Markup:
    """The "allowed values" of a dictionary row; a regular expression as inline code.

    A pattern such as ``^[A-Za-z0-9][A-Za-z0-9_.-]*$`` is code: in a code span
    every pandoc version (and Quarto's reader) shows it literally, where
    escaped text could still be read as an inline footnote (``^[...]``).
    """
    text = "" if value is None or (isinstance(value, float) and math.isnan(value)) else _text(value)
    m = _PATTERN_RE.match(text)
    if m is None:
        return md_escape(text)
    return Markup(f"{md_escape(m['head'])}{md_code(m['pattern'])}")


def md_dictionary(frame: pd.DataFrame, *, caption: str | None = None) -> str:
    """The bundle's data-dictionary table for a report's appendix.

    Variable names are shown as code (they are the column names an input file
    must have) beside their label for readers (the dictionary's ``label``, else
    the name in words), regular expressions as code, ``required`` as yes/no and
    roles in words.
    """
    d = frame.copy()
    d["Variable"] = [md_code(v) for v in d["variable"]]
    if "label" not in d.columns:  # a bundle of an earlier studyval: no labels
        d["label"] = ""
    d["Label"] = [
        label(v) if fmt_cell(lab) == _MISSING_CELL or not str(lab).strip() else str(lab)
        for v, lab in zip(d["variable"], d["label"], strict=True)
    ]
    d["Role"] = [str(r).replace("_", " ") for r in d["role"]]
    d["Allowed values"] = [_allowed_cell(v) for v in d["allowed"]]
    d["Required"] = [fmt_cell(v) for v in d["required"]]
    d["Unit"] = ["" if fmt_cell(u) == _MISSING_CELL else unit_text(u) for u in d["unit"]]
    cols = {
        "Variable": "Variable",
        "Label": "Label",
        "type": "Type",
        "Role": "Role",
        "Unit": "Unit",
        "Allowed values": "Allowed values",
        "Required": "Required",
    }
    return md_table(d, cols, caption=caption, markup=["Variable", "Allowed values"])


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
        self._plan: Any = None
        self._plan_source: str | None = None

    # ---- the analysis plan the run used (study/plan.yml) ---------------------------------------
    @property
    def plan_source(self) -> str:
        """Where :attr:`plan` comes from.

        ``"bundle"``: the bundle's own copy ``study/plan.yml``, its SHA-256 the
        one the manifest records. ``"shipped"``: a bundle written before
        bundles kept their plan (no ``study/plan.yml``, no manifest entry for
        it): the plan shipped with this studyval for the protocol, used only
        because its SHA-256 is the manifest's ``protocol.plan_sha256`` (the
        same bytes); :meth:`md_plan_statement` says so in the report.

        Raises
        ------
        BundlePlanError
            The copy is missing although the manifest lists it, it was edited
            (its SHA-256 is not the manifest's), or an old bundle's plan is
            not the one shipped with this studyval.
        """
        if self._plan_source is None:
            self._plan_source = self._locate_plan()[0]
        return self._plan_source

    def _locate_plan(self) -> tuple[str, Path]:
        from studyval.bundle import file_sha256
        from studyval.study_files import PLAN_COPY

        proto = self.manifest.get("protocol") or {}
        outputs = self.manifest.get("outputs") or {}
        recorded = proto.get("plan_sha256")
        copy = self.path / PLAN_COPY
        listed = PLAN_COPY in outputs or "plan" in proto
        if not listed and not copy.exists():
            # written before bundles kept their plan: the shipped plan, only if it is that plan
            from studyval.plan import plan_path

            slug = str(proto.get("slug"))
            try:
                shipped = plan_path(slug)
            except StudyvalError:
                shipped = None
            if shipped is not None and recorded and file_sha256(shipped) == recorded:
                return "shipped", shipped
            raise BundlePlanError(
                f"{self.path}: the bundle keeps no copy of its analysis plan ({PLAN_COPY}; it was "
                "written before bundles kept one), and the plan shipped with this studyval for "
                f"{slug!r} is not the plan it records (plan_sha256 {str(recorded)[:12]}...); "
                "re-run the analysis to make a bundle that carries its plan"
            )
        if not copy.is_file() or copy.is_symlink():
            raise BundlePlanError(
                f"{self.path}: the manifest records the analysis plan {PLAN_COPY}, but the bundle "
                "has no such file; the bundle is incomplete (re-run the analysis)"
            )
        digest = file_sha256(copy)
        for where, want in (
            (f"outputs[{PLAN_COPY!r}]", outputs.get(PLAN_COPY)),
            ("protocol.plan_sha256", recorded),
        ):
            if want != digest:
                raise BundlePlanError(
                    f"{self.path / PLAN_COPY}: SHA-256 {digest[:12]}... is not the manifest's "
                    f"{where} ({str(want)[:12]}...); the plan copy (or the manifest) was edited "
                    "after the run, so the report cannot say which plan the results follow"
                )
        return "bundle", copy

    @property
    def plan(self) -> Any:
        """The validated analysis plan this bundle's run used.

        Read from the bundle's ``study/plan.yml`` (checked against the
        manifest's SHA-256) with :func:`studyval.plan.load_plan`, for the
        manifest's protocol, without the dictionary and step checks (the run
        checked the bundle's plan against its dictionary and resolved every
        step name, and a report does not import the analysis layer that
        holds the steps). A report reads every plan fact
        (registry, title, design, primary set, thresholds, planning values)
        from here, never from its own text. See :attr:`plan_source` for old
        bundles and the errors.
        """
        if self._plan is None:
            from studyval.plan import load_plan

            source, path = self._locate_plan()
            self._plan_source = source
            slug = (self.manifest.get("protocol") or {}).get("slug")
            try:
                self._plan = load_plan(path, slug=slug, check_dictionary=False, check_steps=False)
            except StudyvalError as exc:
                raise BundlePlanError(
                    f"the analysis plan of bundle {self.path} ({source} copy) is not a valid "
                    f"plan for this studyval: {exc}"
                ) from None
        return self._plan

    def md_plan_statement(self) -> Markup:
        """One Markdown line for the report's registration section: which plan, its version and SHA-256."""
        proto = self.manifest.get("protocol") or {}
        plan = self.plan
        sha = str(proto.get("plan_sha256", ""))
        version = md_escape(plan.plan_version)
        if self.plan_source == "shipped":
            which = (
                "the plan shipped with studyval for this protocol (this bundle predates bundles "
                "that keep their plan; the shipped file was used because its SHA-256 is the one "
                "the manifest records)"
            )
        elif proto.get("plan_is_shipped") is True:
            which = "the plan shipped with studyval for this protocol, unamended"
        elif proto.get("plan_is_shipped") is False and not self._shipped_slug(proto.get("slug")):
            which = (
                "**the study's own plan** (a study of a generic type, "
                f"{md_escape(str(proto.get('study_type', '')).replace('_', ' '))}), as the bundle keeps it "
                "in `study/plan.yml`"
            )
        elif proto.get("plan_is_shipped") is False:
            which = (
                "**the study's own plan** (amended: not the plan shipped with studyval), "
                "as the bundle keeps it in `study/plan.yml`"
            )
        else:
            which = "the plan the bundle keeps in `study/plan.yml`"
        return Markup(f"- **Analysis plan:** {which}; version {version}, SHA-256 {md_code(sha)}")

    @staticmethod
    def _shipped_slug(slug: object) -> bool:
        from studyval.protocol import is_shipped

        return isinstance(slug, str) and is_shipped(slug)

    @property
    def origin(self) -> dict[str, str]:
        """Where the inputs came from (the manifest's ``data_origin``; ``unrecorded`` if absent)."""
        from studyval.origin import origin_of_manifest

        return origin_of_manifest(self.manifest)

    def caption(self, text: object) -> str:
        """A figure caption with the data-origin note when the data are not study data."""
        note = origin_caption(self.origin)
        text = _text(text).strip()
        return f"{text} {note}".strip() if note else text

    def image(
        self, name: str, caption: object = "", attrs: str = "", *, imaging: bool = False
    ) -> Markup:
        """:func:`md_image` of figure ``name`` with :meth:`caption` (``imaging``: an imaging figure)."""
        path = self.imaging_figure(name) if imaging else self.figure(name)
        return md_image(path, self.caption(caption), attrs)

    def label(self, code: object) -> str:
        """The reader label of ``code``: a variable's dictionary ``label``, else :func:`label`.

        A dictionary label is shown with the variable's unit; anything else
        comes from the shared table of measures, methods and terms.
        ``B.label("bmi_kg_m2")`` is "BMI (kg/m2)" when the dictionary says so.
        """
        labels = self._variable_labels()
        key = str(code).strip()
        return labels[key] if key in labels else label(code)

    def _variable_labels(self) -> dict[str, str]:
        if "_labels" not in self.__dict__:
            out: dict[str, str] = {}
            path = self.path / "tables" / "dictionary.parquet"
            if path.is_file():
                d = self.table("dictionary")
                if "label" in d.columns:
                    for _, row in d.iterrows():
                        text = "" if pd.isna(row["label"]) else str(row["label"]).strip()
                        if not text:
                            continue
                        unit = "" if pd.isna(row.get("unit")) else str(row.get("unit") or "").strip()
                        with_unit = unit and unit not in text
                        out[str(row["variable"])] = f"{text} ({unit_text(unit)})" if with_unit else text
            self.__dict__["_labels"] = out
        return self.__dict__["_labels"]

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
