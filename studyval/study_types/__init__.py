"""Generic study types: a new study of a known kind is a plan, a dictionary and a report, no Python.

A plan whose ``slug`` is not one of the shipped protocols
(:data:`studyval.protocol.PROTOCOLS`) is run by the generic protocol of its
``registry.study_type``:

=====================  ========================  ==========================================
``studyval init``      ``registry.study_type``   module
=====================  ========================  ==========================================
diagnostic-accuracy    diagnostic_accuracy       :mod:`studyval.study_types.diagnostic_accuracy`
prognostic-model       prediction_model          :mod:`studyval.study_types.prognostic_model`
=====================  ========================  ==========================================

Each type module defines ``study_protocol(slug) -> StudyProtocol`` (the
steps of the type, the participant flow and baseline table from the plan's
``cohort`` section, the checklist, the figures) and ``TEMPLATES``, the folder
that ``studyval init`` copies (a commented ``plan.yml``, ``dictionary.yml``
and ``report.qmd`` that render as they are once the data match).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

from studyval.errors import StudyvalError

__all__ = ["INIT_NAMES", "STUDY_TYPES", "type_module", "type_templates"]

#: ``registry.study_type`` -> module of the generic protocol.
STUDY_TYPES: dict[str, str] = {
    "diagnostic_accuracy": "studyval.study_types.diagnostic_accuracy",
    "prediction_model": "studyval.study_types.prognostic_model",
}
#: The names ``studyval init`` takes -> ``registry.study_type``.
INIT_NAMES: dict[str, str] = {
    "diagnostic-accuracy": "diagnostic_accuracy",
    "prognostic-model": "prediction_model",
}


def type_module(study_type: str) -> ModuleType:
    """The module of a generic study type (``registry.study_type``)."""
    if study_type not in STUDY_TYPES:
        raise StudyvalError(
            f"study type {study_type!r} has no generic protocol (generic types: "
            f"{', '.join(STUDY_TYPES)}); a study of this type needs a protocol module"
        )
    return importlib.import_module(STUDY_TYPES[study_type])


def type_templates(study_type: str) -> Path:
    """The folder ``studyval init`` copies for ``study_type``."""
    return Path(type_module(study_type).TEMPLATES)
