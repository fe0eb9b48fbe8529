"""Exceptions and warning categories.

Every domain exception subclasses :class:`ValueError`, so callers that only
know "bad input" can catch that, while the CLI catches :class:`StudyvalError`
and turns it into a one-paragraph message and a non-zero exit code.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


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
        The offending value as read, truncated for display.

    """

    file: str
    column: str | None
    row: int | None
    rule: str
    value: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.column is not None:
            noun = "field" if self.file.endswith((".yml", ".yaml")) else "column"
            where.append(f"{noun} '{self.column}'")
        if self.row is not None:
            where.append(f"row {self.row}")
        text = ", ".join(where) + f": {self.rule}"
        if self.value is not None:
            text += f" (found {self.value!r})"
        return text


#: Above this many violations ``str(InputValidationError)`` groups them.
GROUP_ABOVE = 20
#: Row numbers shown per group in the grouped message.
ROWS_PER_GROUP = 5


class InputValidationError(StudyvalError):
    """Input breaks its data dictionary, contract or plan; lists every violation.

    ``str(exc)`` lists every violation, one per line, when there are at most
    ``group_above`` of them. A longer list is grouped: every distinct (file,
    column, rule) is named once with its count and its first row numbers, so
    that no column and no rule is ever left out of the message.
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
        return f"{n} {'violation' if n == 1 else 'violations'} found"

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
            groups.setdefault((v.file, v.column, v.rule), []).append(v)
        lines = []
        for members in groups.values():
            first = members[0]
            if len(members) == 1:
                lines.append(f"  - {first}")
                continue
            rows = list(dict.fromkeys(v.row for v in members if v.row is not None))
            if rows:
                count = f"{len(members)} rows: " + ", ".join(str(r) for r in rows[:ROWS_PER_GROUP])
                if len(rows) > ROWS_PER_GROUP:
                    count += f" and {len(rows) - ROWS_PER_GROUP} more"
            else:
                count = f"{len(members)} times"
            if first.value is not None:
                count += f"; first found {first.value!r}"
            place = Violation(first.file, first.column, None, first.rule)
            lines.append(f"  - {place} ({count})")
        noun = "group" if len(groups) == 1 else "groups"
        return (
            f"{self._head()}, grouped by file, column and rule into {len(groups)} {noun} "
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
