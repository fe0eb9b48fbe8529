"""Tables every study has, declared once, and the builders they share.

* ``flow`` (participant flow, STARD 2015 item 19 / TRIPOD+AI item 20), ``baseline``
  (item 20 / 22), ``sample_size`` (the registered numbers checked) and ``models`` (what was
  analysed): each protocol writes them from its own steps, with the columns declared here.
* ``warnings`` and ``checklist`` are written by the pipeline after the steps
  (:data:`PIPELINE_TABLES`).

The builders compute no statistic: :func:`sample_size_row` lays out a
:class:`~studyval.analysis.sample_size.RegisteredCheck`, and
:func:`scored_models_table` counts the prediction table's rows per model.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from studyval.analysis.sample_size import RegisteredCheck
from studyval.steps.registry import TableSpec

__all__ = [
    "BASELINE",
    "CHECKLIST",
    "DICTIONARY",
    "FLOW",
    "MODELS",
    "PIPELINE_TABLES",
    "SAMPLE_SIZE",
    "WARNINGS",
    "sample_size_row",
    "scored_models_table",
]

FLOW = TableSpec(
    "flow",
    "Participant flow: patients (and cases) at each stage, by set and group",
    ("stage", "n_patients"),
)
BASELINE = TableSpec(
    "baseline",
    "Baseline characteristics, one row per variable and level, by group",
    ("variable",),
)
SAMPLE_SIZE = TableSpec(
    "sample_size",
    "Each registered or planned number against what its calculation requires",
    (
        "check",
        "quantity",
        "assumption",
        "method",
        "required_unrounded",
        "required",
        "available",
        "shortfall",
        "adequate",
        "message",
    ),
)
MODELS = TableSpec(
    "models",
    "The models analysed: name, role and what was scored or fitted",
    ("model",),
)
WARNINGS = TableSpec(
    "warnings",
    "Every statistical warning raised during the run, with the step that raised it",
    (),
)
CHECKLIST = TableSpec(
    "checklist",
    "STARD 2015 or TRIPOD+AI items, each with where the report answers it",
    (),
)
DICTIONARY = TableSpec(
    "dictionary",
    "The data dictionary the inputs were validated against, one row per variable",
    ("variable",),
)
#: Written by :func:`studyval.pipeline.run_protocol` after the steps, for every protocol.
PIPELINE_TABLES = (WARNINGS, CHECKLIST, DICTIONARY)


def sample_size_row(
    chk: RegisteredCheck, *, check: str, quantity: str, assumption: str, method: str
) -> dict[str, Any]:
    """One row of the ``sample_size`` table from a registered-number check.

    Parameters
    ----------
    chk : RegisteredCheck
        From :func:`studyval.analysis.sample_size.check_registered`.
    check : str
        ``"registered"`` (the registry's number) or ``"observed (<set>)"``
        (the number analysed).
    quantity, assumption, method : str
        What is counted, the planning values, and the method with its paper.
    """
    return {
        "check": check,
        "quantity": quantity,
        "assumption": assumption,
        "method": method,
        "required_unrounded": float(chk.required_unrounded),
        "required": int(chk.required),
        "available": int(chk.registered),
        "shortfall": int(chk.shortfall),
        "adequate": bool(chk.adequate),
        "message": chk.message,
    }


def scored_models_table(predictions: pd.DataFrame, models: Any) -> pd.DataFrame:
    """The ``models`` table of a study that analyses prediction tables.

    Parameters
    ----------
    predictions : DataFrame
        The validated prediction table (``model_name``, ``model_version``, ``status``).
    models : sequence of plan model specs
        Each with ``name``, ``role`` and ``description``, in plan order.

    Returns
    -------
    DataFrame
        ``model, role, model_version, n_cases_scored, n_failed, description``.
    """
    rows = []
    for spec in models:
        sub = predictions[predictions["model_name"] == spec.name]
        rows.append(
            {
                "model": spec.name,
                "role": spec.role,
                "model_version": str(sub["model_version"].iloc[0]),
                "n_cases_scored": int((sub["status"] == "ok").sum()),
                "n_failed": int((sub["status"] == "failed").sum()),
                "description": spec.description,
            }
        )
    return pd.DataFrame(rows)
