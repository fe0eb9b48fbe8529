"""Exceptions and warning categories.

Every domain exception subclasses :class:`ValueError`, so callers that only
know "bad input" can catch that, while the CLI catches :class:`StudyvalError`
and turns it into a one-paragraph message and a non-zero exit code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


def escape_text(text: str) -> str:
    r"""``text`` with every non-printable character escaped as Python writes it (``\x1b``).

    Input text (a file name, a column name, a cell) reaches a terminal through
    error messages: an ANSI escape sequence (``ESC[2J`` clears the screen), a
    NUL, a bidirectional override or a zero-width space would act on the
    terminal or hide in it. Printable characters, including non-ASCII
    letters, are kept as they are.

    Parameters
    ----------
    text : str
        Any text.

    Returns
    -------
    str
        ``text`` where each character for which :meth:`str.isprintable` is
        False is replaced by ``\xNN``, ``\uNNNN`` or ``\UNNNNNNNN``.

    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            code = ord(ch)
            if code < 0x100:
                out.append(f"\\x{code:02x}")
            elif code < 0x10000:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
    return "".join(out)


#: Row and line references inside a rule ("first seen in row 12"), replaced to group rules.
_ROW_REF = re.compile(r"\b(rows?|lines?) [0-9]+\b")


def _rule_key(rule: str) -> str:
    """``rule`` with every row or line number replaced by ``N``: the key that groups rules."""
    return _ROW_REF.sub(lambda m: f"{m.group(1)} N", rule)


class StudyvalError(ValueError):
    """Base class of every error studyval raises on purpose."""


@dataclass(frozen=True)
class Violation:
    """One broken rule in one place of one input.

    Attributes
    ----------
    file : str
        The input file (or logical source such as ``"plan"``) that breaks the rule.
    column : str or None
        The column or field; ``None`` when the rule concerns the whole file.
    row : int or None
        For a CSV, the line of the file where the record starts (the header
        is line 1; blank lines and the extra lines of quoted multi-line cells
        count, so this is the line an editor shows). For parquet, the
        position of the row plus 2 (the header counts as row 1). Callers
        that work on a frame from :func:`studyval.dictionary.read_table`
        compute it as ``index + 2``: that frame's index is ``line - 2``.
        ``None`` when the rule concerns a whole column or file.
    rule : str
        The rule, in words (``"allowed levels: acute, chronic"``).
    value : str or None
        The offending value as read, truncated for display; None where it
        must not be repeated (free text, a direct identifier). Messages
        escape every non-printable character of the file, column, rule and
        value (:func:`escape_text`), so that input text never acts on a terminal.

    """

    file: str
    column: str | None
    row: int | None
    rule: str
    value: str | None = None

    def __str__(self) -> str:
        text = f"{self.place()}: {escape_text(self.rule)}"
        if self.value is not None:
            text += f" (found {self.value!r})"
        return text

    def place(self, *, row: bool = True) -> str:
        """File, column (or field) and row, as messages name them; input text escaped."""
        where = [escape_text(self.file)]
        if self.column is not None:
            noun = "field" if self.file.endswith((".yml", ".yaml")) else "column"
            where.append(f"{noun} '{escape_text(self.column)}'")
        if row and self.row is not None:
            where.append(f"row {self.row}")
        return ", ".join(where)


#: Above this many violations ``str(InputValidationError)`` groups them.
GROUP_ABOVE = 20
#: Row numbers shown per group in the grouped message.
ROWS_PER_GROUP = 5
#: Columns that break one rule at one place (with no value) merged into one line from this many.
COLUMNS_MERGED_FROM = 3
#: Column names shown in such a merged line.
COLUMNS_NAMED = 10


def _group_lines(members: list[Violation], rule_key: str) -> str:
    """One group of the grouped message: its place, rule, count, first rows and an example."""
    first = members[0]
    if len(members) == 1:
        return f"  - {first}"
    rows = list(dict.fromkeys(v.row for v in members if v.row is not None))
    if rows:
        count = f"{len(members)} rows: " + ", ".join(str(r) for r in rows[:ROWS_PER_GROUP])
        if len(rows) > ROWS_PER_GROUP:
            count += f" and {len(rows) - ROWS_PER_GROUP} more"
    else:
        count = f"{len(members)} times"
    same_rule = all(v.rule == first.rule for v in members)
    if first.value is not None and same_rule:
        count += f"; first found {first.value!r}"
    line = f"  - {first.place(row=False)}: {escape_text(rule_key)} ({count})"
    if not same_rule:  # the rule names rows: show the first violation in full
        line += f"\n    e.g. {first}"
    return line


def _columns_line(members: list[Violation]) -> str:
    """One line for many columns that break one rule at one place: their count and first names."""
    first = members[0]
    n = len(members)
    rule = first.rule
    if rule.startswith("column is "):
        phrase = f"{n:,} columns are {rule.removeprefix('column is ')}"
    elif rule.startswith("column appears "):
        phrase = f"{n:,} columns appear {rule.removeprefix('column appears ')}"
    elif rule.startswith("required column is "):
        phrase = f"{n:,} required columns are {rule.removeprefix('required column is ')}"
    else:
        phrase = f"{n:,} columns: {rule}"
    names = ", ".join(f"'{escape_text(str(v.column))}'" for v in members[:COLUMNS_NAMED])
    if n > COLUMNS_NAMED:
        names += f" ... (first {COLUMNS_NAMED} named; --all-errors lists all)"
    place = Violation(first.file, None, first.row, rule).place()
    return f"  - {place}: {escape_text(phrase)}: {names}"


class InputValidationError(StudyvalError):
    """Input breaks its data dictionary, contract or plan; lists every violation.

    ``str(exc)`` lists every violation, one per line, when there are at most
    ``group_above`` of them. A longer list is grouped: every distinct (file,
    column, rule) is named once with its count and its first row numbers, so
    that no column and no rule is ever left out of the message (row numbers
    inside a rule are replaced by ``N`` to group it, and many columns that
    break one rule at one place share one line).
    :meth:`full_message` always lists every violation.

    Parameters
    ----------
    violations : sequence of Violation
        At least one.
    group_above : int
        Group the message when there are more violations than this.

    Attributes
    ----------
    violations : tuple of Violation
        Every violation, in the order found.

    """

    def __init__(self, violations: Sequence[Violation], *, group_above: int = GROUP_ABOVE) -> None:
        if not violations:
            raise ValueError("InputValidationError needs at least one violation")
        self.violations: tuple[Violation, ...] = tuple(violations)
        if len(self.violations) > group_above:
            text = self.grouped_message()
        else:
            text = self.full_message()
        super().__init__(text)

    def _head(self) -> str:
        n = len(self.violations)
        return f"{n:,} {'violation' if n == 1 else 'violations'} found"

    def full_message(self) -> str:
        """Every violation, one per line, in the order found.

        Returns
        -------
        str
            ``"<n> violations found:"`` followed by one ``"  - "`` line per violation.

        """
        return f"{self._head()}:\n" + "\n".join(f"  - {v}" for v in self.violations)

    def grouped_message(self) -> str:
        """The violations grouped by (file, column, rule), each group named once.

        Row and line numbers inside a rule (``"duplicate value; first seen in
        row 12"``) are replaced by ``N`` to group rules, and such a group shows
        its first violation in full as an example. Rules broken once each by
        :data:`COLUMNS_MERGED_FROM` or more columns at the same place with no
        value (a whole column, such as ``"column is not in the ... dictionary"``)
        are merged into one line naming the first :data:`COLUMNS_NAMED` columns.

        Returns
        -------
        str
            ``"<n> violations found (grouped ...):"`` followed by one line per
            distinct (file, column, rule), in the order first found: the place
            and rule, the number of rows (or times) and the first
            :data:`ROWS_PER_GROUP` row numbers, and the first value found.

        """
        groups: dict[tuple[str, str | None, str], list[Violation]] = {}
        for v in self.violations:
            groups.setdefault((v.file, v.column, _rule_key(v.rule)), []).append(v)

        def merge_key(members: list[Violation]) -> tuple[str, str, int | None] | None:
            v = members[0]
            if len(members) == 1 and v.column is not None and v.value is None:
                return v.file, v.rule, v.row
            return None

        by_key: dict[tuple[str, str, int | None], list[Violation]] = {}
        for members in groups.values():
            key = merge_key(members)
            if key is not None:
                by_key.setdefault(key, []).append(members[0])
        lines: list[str] = []
        done: set[tuple[str, str, int | None]] = set()
        for (_, _, rule_key), members in groups.items():
            key = merge_key(members)
            if key is not None and len(by_key[key]) >= COLUMNS_MERGED_FROM:
                if key not in done:
                    done.add(key)
                    lines.append(_columns_line(by_key[key]))
                continue
            lines.append(_group_lines(members, rule_key))
        noun = "group" if len(lines) == 1 else "groups"
        return (
            f"{self._head()}, grouped by file, column and rule into {len(lines)} {noun} "
            "(--all-errors lists every violation):\n" + "\n".join(lines)
        )

    @classmethod
    def collect(cls, violations: Iterable[Violation]) -> None:
        """Raise with all ``violations`` if there is at least one."""
        found = list(violations)
        if found:
            raise cls(found)


class PlanError(StudyvalError):
    """The analysis plan is malformed or inconsistent with the data dictionary."""


class EstimationError(StudyvalError):
    """A statistic cannot be estimated from these data (e.g. a single-class outcome)."""


class StatisticalWarning(UserWarning):
    """A statistical caveat: the estimate exists but deserves a second look."""


class RenderError(StudyvalError):
    """A report could not be rendered (a failing cell, pandoc or Quarto error)."""
