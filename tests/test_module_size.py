"""Modules hold one concept: no source file over 1,400 lines, protocol runners 3,000 in all.

Issue 12 ("One analysis engine") set both limits; a step module that grows past the first
is split by concept (as the service-evaluation and multimodal-staging steps are).
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted(p for top in ("studyval", "analysis", "models") for p in (ROOT / top).rglob("*.py"))


def _lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_over_1400_lines(path: Path) -> None:
    assert _lines(path) <= 1400, f"{path.relative_to(ROOT)} has {_lines(path)} lines"


def test_protocol_runners_at_most_3000_lines_in_all() -> None:
    total = sum(_lines(p) for p in (ROOT / "studyval" / "protocols").glob("*.py"))
    assert total <= 3000, f"studyval/protocols/ holds {total} lines"
