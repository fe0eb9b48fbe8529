"""The analysis plan and data dictionary a run uses, with the exact bytes the bundle keeps.

A study team keeps its own plan (``studyval run SLUG --plan PLAN.yml``) and
dictionary (``--dictionary DICT.yml``) beside its data, under version control.
Without them a run uses the plan and dictionary shipped with studyval for the
protocol. Either way the bundle gets a copy of both files as they were read
(``study/plan.yml`` and ``study/dictionary.yml``, with their SHA-256 among the
manifest's outputs), and ``verify`` and ``figures`` use the bundle's copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from studyval.dictionary import DataDictionary, load_dictionary
from studyval.errors import StudyvalError
from studyval.plan import load_plan, plan_dictionary, plan_path

__all__ = ["DICTIONARY_COPY", "PLAN_COPY", "REPORT_COPY", "StudyFiles", "report_source", "study_files"]

#: Where a bundle keeps the plan, the dictionary and the report source its run used.
PLAN_COPY = "study/plan.yml"
DICTIONARY_COPY = "study/dictionary.yml"
REPORT_COPY = "study/report.qmd"


@dataclass(frozen=True)
class StudyFiles:
    """The plan and the dictionary of one run.

    Attributes
    ----------
    plan : AnalysisPlan (or the protocol's plan schema)
        The validated plan.
    plan_bytes : bytes
        The plan file as read (a plan given as an object: its canonical JSON,
        which YAML reads too).
    plan_source : str
        Where the plan came from, for messages and the manifest.
    dictionary : DataDictionary
        The validated data dictionary the plan was checked against.
    dictionary_bytes : bytes
        The dictionary file as read.
    dictionary_source : str
        Where the dictionary came from.
    report : Path or None
        The report source the run renders (:func:`report_source`).
    """

    plan: Any
    plan_bytes: bytes
    plan_source: str
    dictionary: DataDictionary
    dictionary_bytes: bytes
    dictionary_source: str
    report: Path | None = None


def report_source(slug: str, plan: Any, plan_file: Path | None) -> Path | None:
    """The report source of a run (see the module docstring); None where there is none."""
    from studyval.protocol import is_shipped

    if plan_file is not None and (plan_file.parent / "report.qmd").is_file():
        return plan_file.parent / "report.qmd"
    if is_shipped(slug):
        return plan_path(slug).parent / "report.qmd"
    from studyval.study_types import STUDY_TYPES, type_templates

    if plan.registry.study_type in STUDY_TYPES:
        template = type_templates(plan.registry.study_type) / "report.qmd"
        return template if template.is_file() else None
    return None


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise StudyvalError(f"{what} {path}: cannot be read ({exc.strerror or exc})") from None


def _dictionary_bytes(location: str | Path) -> tuple[bytes, str]:
    if isinstance(location, Path):
        return _read(location, "data dictionary"), str(location)
    res = resources.files("studyval.data_dictionary").joinpath(f"{location}.yml")
    return res.read_bytes(), f"data_dictionary/{location}.yml (shipped with studyval)"


def _validated(plan: Any, slug: str) -> Any:
    """``plan`` checked against its own schema (every error with its path) and its slug."""
    from pydantic import ValidationError

    from studyval.errors import InputValidationError, Violation

    try:
        checked = type(plan).model_validate(plan.model_dump(by_alias=True))
    except ValidationError as exc:
        raise InputValidationError(
            [
                Violation(
                    "the plan given by the caller",
                    ".".join(str(part) for part in err["loc"]) or None,
                    None,
                    err["msg"].removeprefix("Value error, "),
                    None,
                )
                for err in exc.errors()
            ]
        ) from None
    if checked.slug != slug:
        raise InputValidationError(
            [
                Violation(
                    "the plan given by the caller",
                    "slug",
                    None,
                    f"this plan is for protocol {checked.slug!r}, not {slug!r}",
                    str(checked.slug),
                )
            ]
        )
    return checked


def study_files(
    slug: str, *, plan: Path | Any | None = None, dictionary: Path | None = None
) -> StudyFiles:
    """The plan and the dictionary protocol ``slug`` runs with.

    Parameters
    ----------
    slug : str
        The protocol.
    plan : Path or plan object, optional
        A study team's plan file (it must be for ``slug``), or a validated plan
        object (tests pass trimmed plans); default: the plan shipped for ``slug``.
    dictionary : Path, optional
        A study team's data dictionary; default: the one the plan names
        (:func:`studyval.plan.plan_dictionary`).

    Raises
    ------
    InputValidationError
        A plan for another protocol, an unknown schema version, an unknown
        analysis step, a column the dictionary lacks: each with its YAML path.
    StudyvalError
        A file that does not exist or cannot be read.
    """
    from studyval.protocol import is_shipped

    if plan is None and not is_shipped(slug):
        raise StudyvalError(
            f"{slug!r} is not a protocol shipped with studyval: give its plan with "
            "--plan PLAN.yml (a new study starts with 'studyval init')"
        )
    if plan is None or isinstance(plan, (str, Path)):
        path = plan_path(slug) if plan is None else Path(plan)
        if not path.is_file():
            raise StudyvalError(f"analysis plan {path} does not exist")
        plan_bytes = _read(path, "analysis plan")
        loaded = load_plan(path, slug=slug, check_dictionary=False)
        source = str(path) if plan is not None else f"reports/{slug}/plan.yml (shipped with studyval)"
    else:
        path = None
        # validated again: a plan object built with model_copy skips its schema's checks, and
        # the bundle must never keep a plan that studyval would refuse to load
        loaded = _validated(plan, slug)
        plan_bytes = loaded.model_dump_json(by_alias=True).encode("utf-8")
        source = "a plan given by the caller"
    location: str | Path = Path(dictionary) if dictionary is not None else plan_dictionary(loaded, path)
    dict_bytes, dict_source = _dictionary_bytes(location)
    loaded_dictionary = load_dictionary(location)
    loaded.check_against(loaded_dictionary, str(path) if path is not None else source)
    return StudyFiles(
        plan=loaded,
        plan_bytes=plan_bytes,
        plan_source=source,
        dictionary=loaded_dictionary,
        dictionary_bytes=dict_bytes,
        dictionary_source=dict_source,
        report=report_source(slug, loaded, path if plan is not None else None),
    )
