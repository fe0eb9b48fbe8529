"""Every bundle table a report, figure module or checklist reads is declared once, as a TableSpec.

A table name is a string in several places (the step that writes it, the
report that reads it, the figure that draws it, the checklist that cites it).
The step registry declares each table once (:class:`studyval.steps.TableSpec`);
this test reads the sources that *use* tables and fails on a name that no
step of the study's registry, and not the pipeline (:data:`PIPELINE_TABLES`),
declares: a renamed table cannot leave a reader behind.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from studyval.protocol import PROTOCOLS, protocol
from studyval.steps.common import PIPELINE_TABLES
from studyval.study_types import INIT_NAMES, STUDY_TYPES, type_module

ROOT = Path(__file__).resolve().parents[1]

#: ``B.table("x")`` in a report; ``tables["x"]`` / ``tables.get("x")`` in Python (the name
#: every figure module, checklist and runner gives the bundle's tables).
_READS = (
    re.compile(r"""\bB\.table\(\s*["']([a-z0-9_]+)["']"""),
    re.compile(r"""\btables(?:\[|\.get\()\s*["']([a-z0-9_]+)["']"""),
)


def _reads(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return {m.group(1) for rx in _READS for m in rx.finditer(text)}


def _declared(slug: str) -> set[str]:
    registry = protocol(slug).steps
    assert registry is not None, f"{slug} has no step registry"
    return set(registry.tables()) | {t.name for t in PIPELINE_TABLES}


def _module(slug: str) -> str:
    return slug.replace("-", "_")


#: Protocols that are instances of a generic study type draw that type's figures.
_TYPE_FIGURES = {"ovcf-chronicity": "diagnostic_accuracy", "refracture-pvp": "prognostic_model"}


@pytest.mark.parametrize("slug", list(PROTOCOLS))
def test_report_figures_and_runner_read_declared_tables(slug: str) -> None:
    sources = [
        ROOT / "reports" / slug / "report.qmd",
        ROOT / "studyval" / "figures" / f"{_module(slug)}.py",
        ROOT / "studyval" / "protocols" / f"{_module(slug)}.py",
    ]
    if slug in _TYPE_FIGURES:
        sources.append(ROOT / "studyval" / "figures" / f"{_TYPE_FIGURES[slug]}.py")
    declared = _declared(slug)
    undeclared = {
        f"{src.relative_to(ROOT)}: {name}"
        for src in sources
        if src.is_file()
        for name in _reads(src) - declared
    }
    assert not undeclared, f"tables read but declared by no step of {slug}: {sorted(undeclared)}"


def test_shared_checklists_read_tables_some_study_declares() -> None:
    declared = set().union(*(_declared(slug) for slug in PROTOCOLS))
    for src in (ROOT / "studyval" / "checklists.py", ROOT / "studyval" / "checklists_tripod.py"):
        assert _reads(src) - declared == set(), src.name


def test_the_scanner_finds_reads() -> None:
    """The patterns above do match the ways the sources read tables (else the test is empty)."""
    qmd = _reads(ROOT / "reports" / "ovcf-chronicity" / "report.qmd")
    assert {"auc", "flow", "checklist"} <= qmd
    assert "flow" in _reads(ROOT / "studyval" / "figures" / "diagnostic_accuracy.py")


@pytest.mark.parametrize(("study_type", "init_name"), list({v: k for k, v in INIT_NAMES.items()}.items()))
def test_study_type_report_and_figures_read_declared_tables(study_type: str, init_name: str) -> None:
    """A generic type's report template and figures read only tables its steps declare."""
    registry = type_module(study_type).study_protocol("a-new-study").steps
    declared = set(registry.tables()) | {t.name for t in PIPELINE_TABLES}
    sources = [
        ROOT / "studyval" / "study_types" / "templates" / init_name / "report.qmd",
        ROOT / "studyval" / "figures" / f"{STUDY_TYPES[study_type].rsplit('.', 1)[1]}.py",
        ROOT / "studyval" / "study_types" / f"{STUDY_TYPES[study_type].rsplit('.', 1)[1]}.py",
    ]
    assert all(src.is_file() for src in sources), sources
    undeclared = {f"{src.relative_to(ROOT)}: {n}" for src in sources for n in _reads(src) - declared}
    assert not undeclared, sorted(undeclared)
