"""Data dictionaries and the validation of tables against them.

A data dictionary is a YAML file in ``data_dictionary/`` (one per protocol,
plus ``predictions.yml`` for the prediction-table contract that every model
writes). It declares every variable: type, unit, allowed range or levels,
whether it is required, and its *role*. The format is documented in
``data_dictionary/README.md``.

:func:`read_table` reads a CSV or parquet file *as text*, checks every cell
against the dictionary and returns a typed :class:`pandas.DataFrame`. It never
stops at the first problem: every violation (file, column, row, rule, value)
is collected and raised together in one
:class:`~studyval.errors.InputValidationError`. Input files are only read,
never modified.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from studyval.errors import InputValidationError, StudyvalError, Violation

__all__ = [
    "ROLES",
    "TYPES",
    "DataDictionary",
    "Variable",
    "load_dictionary",
    "read_table",
    "validate_frame",
]

TYPES = ("string", "integer", "number", "categorical", "boolean", "date")
ROLES = (
    "identifier",  # unique id of a row (case id)
    "cluster",  # patient id: rows sharing it are correlated
    "outcome",  # reference standard / event
    "predictor",
    "score",  # model output
    "subgroup",
    "site",
    "date",
    "eligibility",  # exclusion reasons, inclusion flags
    "model",  # model name / version / hashes
    "design",  # split, index-lesion flag and other design variables
    "direct_identifier",  # name, MRN, date of birth...: never reaches a bundle or report
)

#: Cell contents read as missing. Nothing else is: "n/a" or "-" are errors.
MISSING_TOKENS = frozenset({"", "NA"})
_TRUE = frozenset({"true", "TRUE", "True", "1", "yes"})
_FALSE = frozenset({"false", "FALSE", "False", "0", "no"})
_INT_RE = re.compile(r"^[+-]?\d+$")
_NUM_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Variable:
    """One variable of a data dictionary.

    Attributes
    ----------
    name : str
        Column name, exact (case-sensitive).
    type : {"string", "integer", "number", "categorical", "boolean", "date"}
        Storage type. Numbers use a decimal point (``1.5``); dates are ISO 8601
        ``YYYY-MM-DD``; booleans are ``true``/``false`` (also ``1``/``0``,
        ``yes``/``no``).
    role : str
        One of :data:`ROLES`.
    description : str
        What the variable means, in words.
    required : bool
        If True, the column must be present and no cell may be missing.
    unit : str or None
        Unit of measurement (UCUM-style text, e.g. ``"years"``, ``"kg/m2"``).
    minimum, maximum : float or None
        Inclusive allowed range for numbers, integers and dates (dates as ISO strings).
    levels : tuple of str
        Allowed levels of a categorical variable, in display order.
    unique : bool
        If True, no value may occur twice.
    pattern : str or None
        Regular expression a string value must match in full.

    """

    name: str
    type: str
    role: str
    description: str = ""
    required: bool = True
    unit: str | None = None
    minimum: Any = None
    maximum: Any = None
    levels: tuple[str, ...] = ()
    unique: bool = False
    pattern: str | None = None

    def rule_text(self) -> str:
        """Short description of the allowed values, for tables and messages."""
        if self.type == "categorical":
            return "levels: " + ", ".join(self.levels)
        parts = [self.type]
        if self.minimum is not None or self.maximum is not None:
            lo = "-inf" if self.minimum is None else self.minimum
            hi = "inf" if self.maximum is None else self.maximum
            parts.append(f"[{lo}, {hi}]")
        if self.pattern:
            parts.append(f"pattern {self.pattern}")
        return " ".join(str(p) for p in parts)


@dataclass(frozen=True)
class DataDictionary:
    """A parsed data dictionary.

    Attributes
    ----------
    name : str
        Dictionary name (e.g. ``"ovcf-chronicity"``).
    version : str
        Dictionary version, recorded in every results bundle.
    unit : str
        What one row is (``"one fractured vertebra screened for the study"``).
    variables : tuple of Variable
        In file order.
    allow_extra_columns : bool
        If False (the default), a column the dictionary does not declare is an error.
    source : str
        Where the dictionary was read from.

    """

    name: str
    version: str
    unit: str
    variables: tuple[Variable, ...]
    allow_extra_columns: bool = False
    source: str = ""
    description: str = ""
    _by_name: dict[str, Variable] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {v.name: v for v in self.variables})

    def __getitem__(self, name: str) -> Variable:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"{self.name} dictionary has no variable {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    @property
    def names(self) -> tuple[str, ...]:
        """Variable names in file order."""
        return tuple(v.name for v in self.variables)

    def with_role(self, *roles: str) -> tuple[Variable, ...]:
        """Variables whose role is one of ``roles``."""
        return tuple(v for v in self.variables if v.role in roles)

    def to_frame(self) -> pd.DataFrame:
        """The dictionary as a tidy table (one row per variable)."""
        return pd.DataFrame(
            [
                {
                    "variable": v.name,
                    "type": v.type,
                    "role": v.role,
                    "unit": v.unit or "",
                    "allowed": v.rule_text(),
                    "required": v.required,
                    "description": v.description,
                }
                for v in self.variables
            ]
        )


_VAR_KEYS = {
    "type",
    "role",
    "description",
    "required",
    "unit",
    "min",
    "max",
    "levels",
    "unique",
    "pattern",
}


def _parse_dictionary(raw: Any, source: str) -> DataDictionary:
    problems: list[Violation] = []

    def bad(field_: str | None, rule: str, value: Any = None) -> None:
        problems.append(
            Violation(source, field_, None, rule, None if value is None else str(value))
        )

    if not isinstance(raw, Mapping):
        raise InputValidationError([Violation(source, None, None, "must be a YAML mapping")])
    for key in ("name", "version", "unit", "variables"):
        if key not in raw:
            bad(key, "required top-level key is missing")
    unknown_top = set(raw) - {
        "name",
        "version",
        "unit",
        "variables",
        "allow_extra_columns",
        "description",
    }
    for key in sorted(unknown_top):
        bad(key, "unknown top-level key")
    variables: list[Variable] = []
    raw_vars = raw.get("variables") or {}
    if not isinstance(raw_vars, Mapping) or not raw_vars:
        bad("variables", "must be a non-empty mapping of variable name -> definition")
        raw_vars = {}
    for name, spec in raw_vars.items():
        where = f"variables.{name}"
        if not isinstance(spec, Mapping):
            bad(where, "definition must be a mapping")
            continue
        for key in sorted(set(spec) - _VAR_KEYS):
            close = difflib.get_close_matches(key, sorted(_VAR_KEYS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            bad(f"{where}.{key}", f"unknown key{hint}")
        vtype = spec.get("type")
        role = spec.get("role")
        if vtype not in TYPES:
            bad(f"{where}.type", f"must be one of {', '.join(TYPES)}", vtype)
        if role not in ROLES:
            bad(f"{where}.role", f"must be one of {', '.join(ROLES)}", role)
        levels = tuple(str(x) for x in spec.get("levels") or ())
        if vtype == "categorical" and not levels:
            bad(f"{where}.levels", "a categorical variable needs its levels")
        if vtype != "categorical" and levels:
            bad(f"{where}.levels", "levels are only allowed for categorical variables")
        if len(set(levels)) != len(levels):
            bad(f"{where}.levels", "levels must be distinct")
        lo, hi = spec.get("min"), spec.get("max")
        if vtype == "date":
            lo = None if lo is None else str(lo)
            hi = None if hi is None else str(hi)
        if lo is not None and hi is not None and lo > hi:
            bad(where, f"min {lo} is greater than max {hi}")
        pattern = spec.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                bad(f"{where}.pattern", f"invalid regular expression: {exc}")
        variables.append(
            Variable(
                name=str(name),
                type=str(vtype),
                role=str(role),
                description=str(spec.get("description", "")).strip(),
                required=bool(spec.get("required", True)),
                unit=spec.get("unit"),
                minimum=lo,
                maximum=hi,
                levels=levels,
                unique=bool(spec.get("unique", False)),
                pattern=pattern,
            )
        )
    InputValidationError.collect(problems)
    return DataDictionary(
        name=str(raw["name"]),
        version=str(raw["version"]),
        unit=str(raw["unit"]),
        variables=tuple(variables),
        allow_extra_columns=bool(raw.get("allow_extra_columns", False)),
        source=source,
        description=str(raw.get("description", "")).strip(),
    )


def load_dictionary(name_or_path: str | Path) -> DataDictionary:
    """Load a data dictionary by protocol slug (bundled) or by path.

    Parameters
    ----------
    name_or_path : str or Path
        A slug such as ``"ovcf-chronicity"`` or ``"predictions"`` (read from
        the ``studyval.data_dictionary`` package), or a path to a YAML file.

    Raises
    ------
    StudyvalError
        No such dictionary, unreadable YAML, or a malformed definition (every
        problem listed).

    """
    path = Path(name_or_path)
    if path.suffix in (".yml", ".yaml") or path.is_file():  # a bare name is a bundled dictionary
        if not path.is_file():
            raise StudyvalError(f"data dictionary {path} does not exist")
        text = path.read_text(encoding="utf-8")
        source = str(path)
    else:
        res = resources.files("studyval.data_dictionary").joinpath(f"{name_or_path}.yml")
        if not res.is_file():
            available = sorted(
                p.name.removesuffix(".yml")
                for p in resources.files("studyval.data_dictionary").iterdir()
                if p.name.endswith(".yml")
            )
            raise StudyvalError(
                f"no bundled data dictionary {name_or_path!r}; available: {', '.join(available)}"
            )
        text = res.read_text(encoding="utf-8")
        source = f"data_dictionary/{name_or_path}.yml"
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StudyvalError(f"{source}: not valid YAML: {exc}") from None
    return _parse_dictionary(raw, source)


# --------------------------------------------------------------------------- reading


def _sniff_problem(text_head: str) -> str | None:
    first = text_head.splitlines()[0] if text_head else ""
    if "," not in first:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in first:
                return (
                    f"the header has no commas but contains {name}s: the file looks "
                    f"{name}-delimited; studyval reads comma-separated UTF-8 CSV"
                )
    return None


def _read_raw(path: Path, label: str) -> pd.DataFrame:
    """Read a CSV or parquet file with every cell as text (None for missing)."""
    if not path.exists():
        raise InputValidationError([Violation(label, None, None, "file does not exist")])
    if path.is_dir():
        raise InputValidationError([Violation(label, None, None, "is a directory, not a file")])
    if path.stat().st_size == 0:
        raise InputValidationError([Violation(label, None, None, "file is empty (0 bytes)")])
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several types for corrupt files
            raise InputValidationError(
                [Violation(label, None, None, f"cannot be read as parquet: {exc}")]
            ) from None
        out = {
            str(col): [_cell_to_text(v) for v in frame[col].astype(object)] for col in frame.columns
        }
        return pd.DataFrame(out, dtype=object)
    if suffix not in (".csv", ".txt"):
        raise InputValidationError(
            [
                Violation(
                    label, None, None, f"unsupported file type {suffix!r}; use .csv or .parquet"
                )
            ]
        )
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw_bytes[: exc.start].count(b"\n") + 1
        raise InputValidationError(
            [
                Violation(
                    label,
                    None,
                    line,
                    f"is not valid UTF-8 (byte 0x{raw_bytes[exc.start]:02x} at offset "
                    f"{exc.start}); save the file as UTF-8",
                )
            ]
        ) from None
    if not text.strip():
        raise InputValidationError([Violation(label, None, None, "file has no content")])
    sniff = _sniff_problem(text[:4096])
    if sniff:
        raise InputValidationError([Violation(label, None, 1, sniff)])
    import io

    try:
        frame = pd.read_csv(
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skipinitialspace=False,
        )
    except pd.errors.ParserError as exc:
        raise InputValidationError(
            [Violation(label, None, None, f"is not a well-formed CSV: {exc}")]
        ) from None
    if frame.shape[0] == 0:
        raise InputValidationError([Violation(label, None, None, "has a header but no data rows")])
    import csv

    header = next(csv.reader(io.StringIO(text.split("\n", 1)[0])))
    seen: set[str] = set()
    dups = [h for h in header if h in seen or seen.add(h)]  # type: ignore[func-returns-value]
    if dups:
        raise InputValidationError(
            [
                Violation(label, d, 1, "column appears more than once in the header")
                for d in dict.fromkeys(dups)
            ]
        )
    return frame


def _cell_to_text(value: Any) -> str | None:
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _is_missing(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and cell.strip() in MISSING_TOKENS)


def _convert(var: Variable, cell: str) -> tuple[Any, str | None]:
    """Convert one non-missing cell; return (value, rule broken or None)."""
    raw = cell
    if raw != raw.strip():
        return None, "leading or trailing whitespace is not allowed"
    t = var.type
    if t == "string":
        if var.pattern and not re.fullmatch(var.pattern, raw):
            return None, f"must match the pattern {var.pattern}"
        return raw, None
    if t == "categorical":
        if raw not in var.levels:
            close = difflib.get_close_matches(raw, var.levels, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return None, f"not an allowed level ({', '.join(var.levels)}){hint}"
        return raw, None
    if t == "boolean":
        if raw in _TRUE:
            return True, None
        if raw in _FALSE:
            return False, None
        return None, "must be true or false"
    if t == "integer":
        if not _INT_RE.match(raw):
            return None, "must be an integer"
        value: Any = int(raw)
    elif t == "number":
        if not _NUM_RE.match(raw):
            hint = " (use a decimal point, not a comma)" if "," in raw else ""
            return None, f"must be a number{hint}"
        value = float(raw)
        if not np.isfinite(value):
            return None, "must be finite"
    elif t == "date":
        if not _DATE_RE.match(raw):
            return None, "must be an ISO date YYYY-MM-DD"
        try:
            value = pd.Timestamp(raw)
        except ValueError:
            return None, "is not a valid calendar date"
        if var.minimum is not None and raw < str(var.minimum):
            return None, f"must be on or after {var.minimum}"
        if var.maximum is not None and raw > str(var.maximum):
            return None, f"must be on or before {var.maximum}"
        return value, None
    else:  # pragma: no cover - guarded by the dictionary parser
        raise StudyvalError(f"unknown type {t}")
    if var.minimum is not None and value < var.minimum:
        return None, f"must be >= {var.minimum}" + (f" {var.unit}" if var.unit else "")
    if var.maximum is not None and value > var.maximum:
        return None, f"must be <= {var.maximum}" + (f" {var.unit}" if var.unit else "")
    return value, None


_DTYPES = {
    "string": "string",
    "categorical": "string",
    "boolean": "boolean",
    "integer": "Int64",
    "number": "Float64",
    "date": "datetime64[ns]",
}


def validate_frame(
    raw: pd.DataFrame, dictionary: DataDictionary, *, label: str
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check a text table against ``dictionary``; return typed frame and violations.

    Parameters
    ----------
    raw : DataFrame
        Every cell a string (or None for missing), as :func:`read_table` reads it.
    dictionary : DataDictionary
        The rules.
    label : str
        Name of the input in messages (usually the file name).

    Returns
    -------
    typed : DataFrame
        Columns in dictionary order with pandas nullable dtypes; categorical
        variables become ordered ``category`` dtypes with the dictionary's levels.
    violations : list of Violation
        Every broken rule; empty when the table is valid.

    """
    problems: list[Violation] = []
    columns = [str(c) for c in raw.columns]
    seen: set[str] = set()
    for col in columns:
        if col in seen:
            problems.append(Violation(label, col, 1, "column appears more than once"))
        seen.add(col)
        if col != col.strip():
            problems.append(
                Violation(label, col, 1, "column name has leading or trailing whitespace")
            )
    declared = set(dictionary.names)
    if not dictionary.allow_extra_columns:
        for col in columns:
            if col not in declared and col.strip() not in declared:
                close = difflib.get_close_matches(col, dictionary.names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(
                    Violation(
                        label, col, 1, f"column is not in the {dictionary.name} dictionary{hint}"
                    )
                )
    typed: dict[str, pd.Series] = {}
    n = raw.shape[0]
    for var in dictionary.variables:
        if var.name not in columns:
            if var.required:
                close = difflib.get_close_matches(var.name, columns, n=1)
                hint = f"; found {close[0]!r} instead (misspelt?)" if close else ""
                problems.append(
                    Violation(label, var.name, None, f"required column is missing{hint}")
                )
            continue
        cells = raw[var.name].tolist()
        values: list[Any] = [None] * n
        for i, cell in enumerate(cells):
            row = i + 2  # header is row 1
            if _is_missing(cell):
                if var.required:
                    problems.append(Violation(label, var.name, row, "value is required"))
                continue
            value, rule = _convert(var, str(cell))
            if rule is not None:
                problems.append(Violation(label, var.name, row, rule, _short(str(cell))))
            else:
                values[i] = value
        series = pd.Series(values, name=var.name)
        if var.unique:
            present = series.dropna()
            dup = present[present.duplicated(keep=False)]
            first_rows: dict[Any, int] = {}
            for idx, value in dup.items():
                if value in first_rows:
                    problems.append(
                        Violation(
                            label,
                            var.name,
                            int(idx) + 2,
                            f"duplicate value; first seen in row {first_rows[value]}",
                            _short(str(value)),
                        )
                    )
                else:
                    first_rows[value] = int(idx) + 2
            if var.type == "string":
                folded = present.astype(str).str.strip().str.casefold()
                clash = folded.duplicated(keep="first") & ~present.duplicated(keep="first")
                for idx in present.index[clash.to_numpy()]:
                    problems.append(
                        Violation(
                            label,
                            var.name,
                            int(idx) + 2,
                            "differs from another id only in letter case",
                            _short(str(present[idx])),
                        )
                    )
        typed[var.name] = _typed_series(series, var)
    frame = pd.DataFrame(typed)
    return frame, problems


def _typed_series(series: pd.Series, var: Variable) -> pd.Series:
    if var.type == "categorical":
        return pd.Series(pd.Categorical(series, categories=list(var.levels)), name=var.name)
    if var.type == "date":
        return pd.to_datetime(series)
    return series.astype(_DTYPES[var.type])


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def read_table(
    path: str | Path,
    dictionary: DataDictionary | str,
    *,
    label: str | None = None,
) -> pd.DataFrame:
    """Read a CSV/parquet table and validate it against a data dictionary.

    Parameters
    ----------
    path : str or Path
        A comma-separated UTF-8 CSV (a byte-order mark is accepted) or a
        parquet file. The file is only read.
    dictionary : DataDictionary or str
        The dictionary, or a slug / path for :func:`load_dictionary`.
    label : str, optional
        Name used in messages; defaults to the file name.

    Returns
    -------
    DataFrame
        Typed table with the dictionary's columns in dictionary order.

    Raises
    ------
    InputValidationError
        Listing every violation (file, column, row, rule, value).

    """
    path = Path(path)
    if isinstance(dictionary, str):
        dictionary = load_dictionary(dictionary)
    label = label or path.name
    raw = _read_raw(path, label)
    typed, problems = validate_frame(raw, dictionary, label=label)
    InputValidationError.collect(problems)
    return typed
