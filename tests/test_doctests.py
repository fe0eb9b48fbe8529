"""The docstring examples of studyval/, analysis/ and models/ run as tests.

Each docstring with ``>>>`` examples is one test, found in the installed packages
(``studyval``, ``studyval.analysis``, ``studyval.models``), so that a module is imported
under its one real name (``analysis/`` is imported as ``studyval.analysis``, never as a
second top-level ``analysis``). A module is imported only when its source has an example:
the models that need torch are not imported for nothing.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from pathlib import Path

import pytest

PACKAGES = ("studyval", "studyval.analysis", "studyval.models")
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _modules_with_examples() -> list[str]:
    """Dotted names of the modules whose source holds a ``>>>`` example, sorted."""
    found: set[str] = set()
    for package in PACKAGES:
        names = [package]
        module = importlib.import_module(package)
        names += [info.name for info in pkgutil.walk_packages(module.__path__, f"{package}.")]
        for name in names:
            spec = importlib.util.find_spec(name)
            origin = spec.origin if spec is not None else None
            if origin and origin.endswith(".py") and ">>>" in Path(origin).read_text("utf-8"):
                found.add(name)
    return sorted(found)


def _doctests() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests: list[doctest.DocTest] = []
    for name in _modules_with_examples():
        module = importlib.import_module(name)
        tests += [t for t in finder.find(module, name) if t.examples]
    return sorted(tests, key=lambda t: t.name)


DOCTESTS = _doctests()


def test_the_examples_are_found():
    """Not vacuous: the modules known to carry examples are collected, in all three packages."""
    names = {t.name.rpartition(".")[0] for t in DOCTESTS} | {t.name for t in DOCTESTS}
    assert {"studyval.bundle", "studyval.analysis.resampling"} <= names
    assert sum(len(t.examples) for t in DOCTESTS) >= 80
    assert len({t.name for t in DOCTESTS}) == len(DOCTESTS)


@pytest.mark.parametrize("test", DOCTESTS, ids=[t.name for t in DOCTESTS])
def test_docstring_examples(test: doctest.DocTest):
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    out: list[str] = []
    # test.globs is the finder's copy of the module's namespace, as doctest.testmod uses
    result = runner.run(test, out=out.append, clear_globs=True)
    assert result.failed == 0, "".join(out)
    assert result.attempted == len(test.examples)
