"""Report parameters: checked against the cell tagged ``parameters``, injected as Python.

Parameters follow Quarto's Jupyter convention: the values passed to
:func:`~studyval.render.render_report` must be names assigned in the cell
tagged ``parameters``; the fallback assigns them in a cell injected right after
it, spelled as papermill spells them for Quarto.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from studyval.errors import RenderError
from studyval.render.qmd import QmdDocument


def _plain_params(doc: QmdDocument, params: Mapping[str, object]) -> dict[str, Any]:
    """Check ``params`` against the parameters cell; make values plain YAML data."""
    if not isinstance(params, Mapping):
        raise RenderError(f"params must be a mapping, not {type(params).__name__}")
    values = {str(k): _plain_value(v, str(k)) for k, v in params.items()}
    if not values:
        return values
    cell = doc.parameters_cell
    if cell is None:
        raise RenderError(
            f"{doc.path.name}: parameters {sorted(values)} were given but no cell is tagged "
            "'parameters' (add '#| tags: [parameters]' to the cell that sets the defaults)"
        )
    known = doc.parameter_names
    unknown = [k for k in values if k not in known]
    if unknown:
        raise RenderError(
            f"{doc.path.name}: unknown parameter(s) {unknown}; the parameters "
            f"{cell.describe()} defines {list(known)}"
        )
    return values


def _plain_value(value: object, name: str) -> Any:
    if isinstance(value, os.PathLike):
        return str(Path(os.fspath(value)).resolve())
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RenderError(f"parameter '{name}' is {value!r}; only finite numbers can be passed")
        return value
    if isinstance(value, (list, tuple)):
        return [_plain_value(v, name) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain_value(v, name) for k, v in value.items()}
    raise RenderError(
        f"parameter '{name}' has type {type(value).__name__}; pass str, int, float, bool, "
        "None, a path, or lists and mappings of those"
    )


def _python_literal(value: Any) -> str:
    """Python source for a plain value, spelled as papermill spells it for Quarto."""
    if isinstance(value, str):
        escaped = value.encode("unicode_escape").decode("utf-8").replace('"', '\\"')
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_python_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{_python_literal(k)}: {_python_literal(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return repr(value)


def _injected_source(values: Mapping[str, Any]) -> str:
    lines = ["# Injected Parameters"]
    lines += [f"{name} = {_python_literal(value)}" for name, value in values.items()]
    return "\n".join(lines)
