"""Worked studies on public data that ship inside registry packages: plans, dictionaries, inputs.

Each example is a study of a generic type (:mod:`studyval.study_types`)
written only as YAML (plan, dictionary; optional report prose), run on real
public data nobody here generated. ``studyval example NAME --out DIR`` writes
its study folder::

    DIR/plan.yml, DIR/dictionary.yml[, DIR/report.qmd]
    DIR/data/clinical.csv, DIR/data/predictions.csv
    DIR/data/origin.json     # data set, source, licence, SHA-256 of each table

and ``studyval demo`` runs every example beside the five protocols. Each
example module defines ``SLUG``, ``FOLDER`` (its plan and dictionary, package
data), ``SOURCE`` (data set, where it ships, licence) and
``write_inputs(folder) -> {"clinical": path, "predictions": path}``.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path
from types import ModuleType

from studyval.errors import StudyvalError

__all__ = ["EXAMPLES", "example_module", "write_example"]

#: Example name -> module.
EXAMPLES: dict[str, str] = {
    "breast-cancer-diagnostic": "studyval.examples.breast_cancer",
    "gbsg2-prognostic": "studyval.examples.gbsg2",
}


def example_module(name: str) -> ModuleType:
    """The module of example ``name``."""
    if name not in EXAMPLES:
        raise StudyvalError(f"unknown example {name!r} (examples: {', '.join(EXAMPLES)})")
    return importlib.import_module(EXAMPLES[name])


#: The files an example's study folder holds, relative to it.
_WRITTEN = frozenset(
    {"plan.yml", "dictionary.yml", "report.qmd", "data/clinical.csv", "data/predictions.csv",
     "data/origin.json"}
)


def _previous_example(out: Path) -> bool:
    """Whether ``out`` holds only the files of an example written earlier (with its marker)."""
    from studyval.origin import MARKER_KEY

    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir()}
    if not files <= _WRITTEN or "data/origin.json" not in files:
        return False
    try:
        marker = json.loads((out / "data" / "origin.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and (marker.get(MARKER_KEY) or {}).get("kind") == "public"


def write_example(name: str, out: Path, *, replace_previous: bool = False) -> dict[str, Path]:
    """Write example ``name``'s study folder at ``out``.

    ``out`` must not exist or be empty; with ``replace_previous`` (``studyval
    demo``) it may also hold exactly an example written earlier, whose files are
    replaced. Nothing else is ever removed.

    Returns ``plan``, ``dictionary``, ``clinical``, ``predictions`` (and
    ``report`` where the example has its own) paths.
    """
    from studyval.origin import MARKER_KEY, public_marker

    if name not in EXAMPLES:
        example_module(name)  # raises, naming the examples
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not (replace_previous and out.is_dir() and not out.is_symlink() and _previous_example(out)):
            raise StudyvalError(
                f"{out} exists and is not an empty folder; studyval writes a new one"
            )
        for rel in _WRITTEN:
            (out / rel).unlink(missing_ok=True)
    module = example_module(name)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for src in sorted(Path(module.FOLDER).iterdir()):
        if src.suffix in (".yml", ".yaml", ".qmd", ".md") and src.is_file():
            shutil.copyfile(src, out / src.name)
            key = {"plan.yml": "plan", "dictionary.yml": "dictionary", "report.qmd": "report"}
            if src.name in key:
                paths[key[src.name]] = out / src.name
    data = out / "data"
    data.mkdir(exist_ok=True)
    written = module.write_inputs(data)
    marker = public_marker({p.name: p.read_bytes() for p in written.values()}, module.SOURCE)
    (data / "origin.json").write_text(
        json.dumps({MARKER_KEY: marker}, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return {**paths, **written}
