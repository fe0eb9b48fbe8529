"""Shared checks of the analysis facades (survival, agreement, competing_risks).

A facade re-exports the names of the concept modules it was split into; these helpers find,
by reading the sources, every name that any file takes from a facade.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = ("analysis", "studyval", "models", "tests", "bench")


def facade_names_used(path: Path, module: str) -> set[str]:
    """Names one source file takes from ``studyval.analysis.<module>`` (imports and ``alias.<name>`` reads).

    A file whose text names neither the facade (``from studyval.analysis.<module> import``,
    ``import studyval.analysis.<module> as``) nor both ``studyval.analysis`` and ``<module>``
    (``from studyval.analysis import <module>``) takes nothing from it and is not parsed.
    """
    facade = f"studyval.analysis.{module}"
    text = path.read_text(encoding="utf-8")
    if facade not in text and not ("studyval.analysis" in text and module in text):
        return set()
    tree = ast.parse(text, filename=str(path))
    names: set[str] = set()
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == facade:
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "studyval.analysis":
            aliases.update(a.asname or a.name for a in node.names if a.name == module)
        elif isinstance(node, ast.Import):
            aliases.update(a.asname for a in node.names if a.name == facade and a.asname)
    if aliases:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
            ):
                names.add(node.attr)
    return {n for n in names if not n.startswith("__")}


def names_used_through(module: str) -> dict[str, list[str]]:
    """Every name taken from the facade ``module`` anywhere in the repository -> the files taking it."""
    used: dict[str, list[str]] = {}
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if path.name == f"{module}.py" and path.parent.name == "analysis":
                continue
            for name in facade_names_used(path, module):
                used.setdefault(name, []).append(str(path.relative_to(ROOT)))
    return used


def check_facade_name(facade: str, origin: str, name: str) -> None:
    """``studyval.analysis.<facade>.<name>`` is the very object of its concept module ``origin``."""
    import importlib

    mod = importlib.import_module(f"studyval.analysis.{origin}")
    assert getattr(importlib.import_module(f"studyval.analysis.{facade}"), name) is getattr(
        mod, name
    )


def check_names_used_resolve(facade: str, documented: set[str], known_users: set[str]) -> None:
    """Every name taken from the facade anywhere is re-exported and documented (public or listed)."""
    import importlib

    module = importlib.import_module(f"studyval.analysis.{facade}")
    used = names_used_through(facade)
    # the scan finds the known users (a guard against a scan that silently finds nothing)
    assert known_users <= set(used)
    missing = {n: where for n, where in used.items() if not hasattr(module, n)}
    assert not missing, f"names used through the facade but not re-exported: {missing}"
    assert set(used) <= documented


def check_concept_module(name: str) -> None:
    """A concept module is documented and at most 1,400 lines."""
    import importlib

    mod = importlib.import_module(f"studyval.analysis.{name}")
    assert mod.__doc__ and len(mod.__doc__.strip()) > 100
    n_lines = len(Path(mod.__file__).read_text(encoding="utf-8").splitlines())
    assert n_lines <= 1400, f"{name}.py has {n_lines} lines"
