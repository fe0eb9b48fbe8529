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
        Row as a spreadsheet shows it: the header is row 1, the first data row
        is row 2 (for a CSV this is also the line number). ``None`` when the
        rule concerns a whole column or file.
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


class InputValidationError(StudyvalError):
    """Input breaks its data dictionary, contract or plan; lists every violation."""

    def __init__(self, violations: Sequence[Violation], *, max_listed: int = 50) -> None:
        if not violations:
            raise ValueError("InputValidationError needs at least one violation")
        self.violations: tuple[Violation, ...] = tuple(violations)
        n = len(self.violations)
        shown = [f"  - {v}" for v in self.violations[:max_listed]]
        if n > max_listed:
            shown.append(f"  ... and {n - max_listed} more")
        noun = "violation" if n == 1 else "violations"
        super().__init__(f"{n} {noun} found:\n" + "\n".join(shown))

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
