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

Rows are named by the line of the file where the record starts (header =
line 1; blank lines and quoted multi-line cells counted); the typed frame's
index is that line minus 2, so that later checks name the same row as
``index + 2``. A string variable with a ``vocabulary`` (every ``free_text``
variable) is kept only as category labels: its raw text never leaves
:func:`read_table`. Messages never quote the value of a ``direct_identifier``
(name, record number, date of birth) either.

Cells are read as text and checked strictly: digits are ASCII ``0-9`` only
(a full-width or Arabic-Indic digit is refused, and named with its code
point), date bounds are compared as dates, and a parquet file is refused
where its conversion to text would change a value silently (a
timezone-aware timestamp, a time of day in a date column).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import stat
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from studyval import yaml_text
from studyval.errors import InputValidationError, StudyvalError, Violation, escape_text

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
    "free_text",  # free text mapped to a closed vocabulary on reading; the raw text is dropped
)

#: Cell contents read as missing. Nothing else is: "n/a" or "-" are errors.
MISSING_TOKENS = frozenset({"", "NA"})
_TRUE = frozenset({"true", "TRUE", "True", "1", "yes"})
_FALSE = frozenset({"false", "FALSE", "False", "0", "no"})
# ASCII digits only: ``\d`` would match any Unicode digit (full-width, Arabic-Indic...).
_INT_RE = re.compile(r"^[+-]?[0-9]+$")
_NUM_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DATE_TIME_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]")
# 1,317.9 or 1,317 (a comma every three digits); 1.317,9 (a point every three, a decimal comma)
_THOUSANDS_COMMA_RE = re.compile(r"^[+-]?[1-9][0-9]{0,2}(,[0-9]{3})+(\.[0-9]*)?$")
_THOUSANDS_POINT_RE = re.compile(r"^[+-]?[1-9][0-9]{0,2}(\.[0-9]{3})+,[0-9]+$")


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
    vocabulary : tuple of (str, tuple of str)
        Closed vocabulary of a string variable (required for a ``free_text`` one):
        category labels in declaration order, each with the regular
        expressions searched (case-insensitive) in the raw text. On reading,
        each non-missing cell becomes the label of the first category with a
        matching expression, or :attr:`other`; the raw text is not kept.
    other : str or None
        Label of a non-missing cell that matches no category (required with
        a vocabulary).
    label : str or None
        The variable's name for readers (``"BMI"``); reports show it, with
        :attr:`unit`, wherever the variable appears. Without one, reports word
        the column name (:func:`studyval.reporting.label`).

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
    vocabulary: tuple[tuple[str, tuple[str, ...]], ...] = ()
    other: str | None = None
    label: str | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label a cell of a vocabulary variable can become: categories, then ``other``."""
        if not self.vocabulary:
            return ()
        return (*(label for label, _ in self.vocabulary), str(self.other))

    def categorize(self, text: str) -> str:
        """The vocabulary label of ``text``.

        Parameters
        ----------
        text : str
            A raw, non-missing cell.

        Returns
        -------
        str
            The label of the first category (in declaration order) with an
            expression found in ``text`` (case-insensitive search), otherwise
            :attr:`other`.

        Raises
        ------
        ValueError
            The variable has no vocabulary.

        """
        if not self.vocabulary or self.other is None:
            raise ValueError(f"variable {self.name!r} has no vocabulary")
        for label, patterns in self.vocabulary:
            if any(re.search(p, text, flags=re.IGNORECASE) for p in patterns):
                return label
        return self.other

    def rule_text(self) -> str:
        """Short description of the allowed values, for tables and messages."""
        if self.type == "categorical":
            return "levels: " + ", ".join(self.levels)
        if self.vocabulary:
            return (
                "free text, kept only as one of: "
                + ", ".join(label for label, _ in self.vocabulary)
                + f"; anything else: {self.other}"
            )
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
                    "label": v.label or "",
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
    "vocabulary",
    "other",
    "label",
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
            not_iso = [(k, b) for k, b in (("min", lo), ("max", hi)) if b and not _iso_date(b)]
            for key, bound in not_iso:
                bad(f"{where}.{key}", "must be an ISO date YYYY-MM-DD", bound)
            if not_iso:
                lo = hi = None  # reported above; not compared
        if lo is not None and hi is not None and lo > hi:
            bad(where, f"min {lo} is greater than max {hi}")
        pattern = spec.get("pattern")
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                bad(f"{where}.pattern", f"invalid regular expression: {exc}")
        vocabulary, other = _parse_vocabulary(spec, where, vtype, role, bad)
        var_label = spec.get("label")
        if var_label is not None and (not isinstance(var_label, str) or not var_label.strip()):
            bad(f"{where}.label", "must be non-empty text (the variable's name for readers)", var_label)
            var_label = None
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
                vocabulary=vocabulary,
                other=other,
                label=None if var_label is None else var_label.strip(),
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


def _parse_vocabulary(
    spec: Mapping[str, Any],
    where: str,
    vtype: Any,
    role: Any,
    bad: Callable[..., None],
) -> tuple[tuple[tuple[str, tuple[str, ...]], ...], str | None]:
    """Check ``vocabulary`` and ``other`` of one variable; report problems through ``bad``."""
    raw_vocab = spec.get("vocabulary")
    raw_other = spec.get("other")
    has_vocab = "vocabulary" in spec
    if role == "free_text":
        if vtype != "string":
            bad(f"{where}.type", "a free_text variable must be of type string", vtype)
        if not has_vocab:
            bad(
                f"{where}.vocabulary",
                "a free_text variable needs a vocabulary (category -> regular expressions): "
                "its raw text is never kept",
            )
    if not has_vocab:
        if "other" in spec:
            bad(f"{where}.other", "'other' is only allowed with a vocabulary")
        return (), None
    if vtype != "string":
        bad(f"{where}.vocabulary", "a vocabulary is only allowed for string variables")
    vocabulary: list[tuple[str, tuple[str, ...]]] = []
    if not isinstance(raw_vocab, Mapping) or not raw_vocab:
        bad(
            f"{where}.vocabulary",
            "must be a non-empty mapping of category label -> list of regular expressions",
        )
        raw_vocab = {}
    for label, patterns in raw_vocab.items():
        path = f"{where}.vocabulary.{label}"
        if not isinstance(label, str) or not label or label != label.strip():
            bad(
                path,
                "a category label must be a non-empty string without leading or trailing spaces",
                label,
            )
            continue
        if (
            not isinstance(patterns, list)
            or not patterns
            or not all(isinstance(p, str) and p for p in patterns)
        ):
            bad(path, "must be a non-empty list of regular expressions (non-empty strings)")
            continue
        for k, pattern in enumerate(patterns):
            try:
                re.compile(pattern, flags=re.IGNORECASE)
            except re.error as exc:
                bad(f"{path}[{k}]", f"invalid regular expression: {exc}", pattern)
        vocabulary.append((label, tuple(patterns)))
    other: str | None = None
    if raw_other is None:
        bad(
            f"{where}.other",
            "a vocabulary needs 'other': the label of a cell that matches no category",
        )
    elif not isinstance(raw_other, str) or not raw_other.strip() or raw_other != raw_other.strip():
        bad(
            f"{where}.other",
            "must be a non-empty string without leading or trailing spaces",
            raw_other,
        )
    elif raw_other in raw_vocab:
        bad(f"{where}.other", "must differ from every category label", raw_other)
    else:
        other = raw_other
    return tuple(vocabulary), other


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
            raise StudyvalError(escape_text(f"data dictionary {path} does not exist"))
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
        raw = yaml_text.safe_load(text)
    except yaml.YAMLError as exc:
        text = f"{source}: not valid YAML: {exc}"
        raise StudyvalError("\n".join(escape_text(ln) for ln in text.split("\n"))) from None
    return _parse_dictionary(raw, source)


# --------------------------------------------------------------------------- reading

#: How a rejected file's first bytes identify it, and what to do instead.
_EXPORT_AS_CSV = "export it as CSV UTF-8 (in Excel: File > Save As > 'CSV UTF-8 (Comma delimited)')"
#: Most line numbers named in one "not a well-formed CSV" message.
_MAX_LINES_NAMED = 20


def _binary_format(head: bytes, path: Path) -> tuple[str, str] | None:
    """Recognise a file that is not text by its magic bytes: (what it is, what to do)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        import zipfile

        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError):
            names = []
        if any(n.startswith("xl/") for n in names):
            return "an Excel workbook (.xlsx)", _EXPORT_AS_CSV
        if "content.xml" in names:
            return "an OpenDocument spreadsheet (.ods)", "export it as CSV UTF-8"
        return (
            "a zip archive (an Excel .xlsx workbook is one)",
            f"if it is a workbook, {_EXPORT_AS_CSV}; otherwise unzip it",
        )
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "a legacy Excel workbook (.xls, OLE2 compound file)", _EXPORT_AS_CSV
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed", "decompress it (e.g. gunzip) and give the plain .csv"
    if head.startswith(b"PAR1"):
        return "a parquet file", "give it the suffix .parquet"
    return None


def _sniff_problem(first_line: str) -> str | None:
    if "," not in first_line:
        for sep, name in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if sep in first_line:
                return (
                    f"the header has no commas but contains {name}s: the file looks "
                    f"{name}-delimited; studyval reads comma-separated UTF-8 CSV"
                )
    return None


def _fail(label: str, rule: str, row: int | None = None) -> InputValidationError:
    return InputValidationError([Violation(label, None, row, rule)])


def _read_raw(path: Path, label: str) -> pd.DataFrame:
    """Read a CSV or parquet file with every cell as text (None for missing).

    The returned frame's index is the row number minus 2: for a CSV, the
    file line where each record starts minus 2 (blank lines and the extra
    lines of quoted multi-line cells counted); for parquet, the position.
    ``frame.attrs["header_line"]`` is the file line of the header (1 unless
    blank lines precede it).
    """
    if not path.exists():
        raise _fail(label, "file does not exist")
    mode = path.stat().st_mode
    if stat.S_ISDIR(mode):
        raise _fail(label, "is a directory, not a file")
    if not stat.S_ISREG(mode):
        raise _fail(
            label,
            f"is not a regular file ({path} is {_file_kind(mode)}): the bundle records the "
            "input's SHA-256, which needs a file it can read twice; save it to a file first "
            "and give that file instead",
        )
    if path.stat().st_size == 0:
        raise _fail(label, "file is empty (0 bytes)")
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(8)
    found = _binary_format(head, path)
    if suffix == ".parquet":
        if found is not None and found[0] != "a parquet file":
            raise _fail(label, f"is {found[0]}, not a parquet file: {found[1]}")
        return _read_parquet(path, label)
    if suffix not in (".csv", ".txt"):
        hint = f" ({found[0]}: {found[1]})" if found is not None else ""
        raise _fail(label, f"unsupported file type {suffix!r}; use .csv or .parquet{hint}")
    if found is not None:
        raise _fail(label, f"is {found[0]}, not a CSV text file: {found[1]}")
    raw_bytes = path.read_bytes()
    try:
        text = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw_bytes[: exc.start].count(b"\n") + 1
        utf16 = (
            ": it is UTF-16 text (it starts with a UTF-16 byte-order mark)"
            if raw_bytes.startswith((b"\xff\xfe", b"\xfe\xff"))
            else ""
        )
        raise _fail(
            label,
            f"is not valid UTF-8 (byte 0x{raw_bytes[exc.start]:02x} at offset "
            f"{exc.start}){utf16}; save the file as UTF-8",
            line,
        ) from None
    if not text.strip():
        raise _fail(label, "file has no content")
    return _parse_csv(text, label)


def _file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    if stat.S_ISFIFO(mode):
        return "a pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _one_line(exc: Exception, limit: int = 200) -> str:
    """The first line of an exception's message, shortened: pyarrow's can dump a whole schema."""
    lines = str(exc).strip().splitlines() or [type(exc).__name__]
    return escape_text(_short(lines[0], limit))


def _read_parquet(path: Path, label: str) -> pd.DataFrame:
    """Read a parquet file as text cells; refuse what would be converted silently.

    The schema is read first: a column name that appears twice, or a
    timezone-aware timestamp column (whose calendar date depends on a time
    zone), is named before any data is read.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise _fail(label, f"cannot be read as parquet: {_one_line(exc)}") from None
    problems: list[Violation] = []
    counts = Counter(str(n) for n in schema.names)
    for name, n in counts.items():
        if n > 1:
            times = "twice" if n == 2 else f"{n} times"
            problems.append(
                Violation(
                    label, name, None, f"column appears {times} (column names must be unique)"
                )
            )
    for fld in schema:
        if pa.types.is_timestamp(fld.type) and fld.type.tz is not None:
            problems.append(
                Violation(
                    label,
                    str(fld.name),
                    None,
                    f"holds timezone-aware timestamps ({fld.type.tz}): store calendar dates "
                    "(YYYY-MM-DD) as the hospital records them (their day would depend on the "
                    "time zone: a local midnight east of UTC falls on the day before in UTC)",
                )
            )
    InputValidationError.collect(problems)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise _fail(label, f"cannot be read as parquet: {_one_line(exc)}") from None
    if len(frame) == 0:
        raise _fail(label, "has a header but no data rows")
    out = {str(col): [_cell_to_text(v) for v in frame[col].astype(object)] for col in frame.columns}
    table = pd.DataFrame(out, dtype=object)
    table.index = pd.RangeIndex(len(table))
    table.attrs["header_line"] = 1
    return table


#: How a data line repeats the header: (said of one line, said of several).
_REPEATS_HEADER = ("repeats the header", "repeat the header")
_LOOKS_LIKE_HEADER = (
    "is a header line (every cell names a column)",
    "are header lines (every cell names a column)",
)


def _bare(cell: str) -> str:
    """A cell without byte-order marks and surrounding whitespace, to compare it with the header."""
    return cell.replace("\ufeff", "").strip()


def _header_like(record: list[str], header: list[str]) -> tuple[str, str] | None:
    """How a data record repeats the header (a pair of phrases), or None if it does not."""
    cells, names = [_bare(c) for c in record], [_bare(h) for h in header]
    if cells == names:
        return _REPEATS_HEADER
    if len(cells) > 1 and all(cells) and set(cells) <= set(names):
        return _LOOKS_LIKE_HEADER
    return None


def _parse_csv(text: str, label: str) -> pd.DataFrame:
    """Parse CSV text into a text frame indexed by (file line where the record starts) - 2."""
    import csv
    import io

    # physical lines as the csv reader counts them (\n, \r\n or \r ends one)
    first = next(
        (i, ln) for i, ln in enumerate(io.StringIO(text, newline=""), start=1) if ln.strip()
    )
    sniff = _sniff_problem(first[1])
    if sniff:
        raise _fail(label, sniff, first[0])
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[list[str]] = []
    starts: list[int] = []
    header: list[str] | None = None
    header_line = first[0]
    ragged: dict[int, list[int]] = {}
    only_space: list[int] = []
    headers_again: dict[tuple[str, str], list[int]] = {}
    names: set[str] = set()
    consumed = 0
    while True:
        start = consumed + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                rule = (
                    f"is not a well-formed CSV: the record starting on line {start} opens a "
                    'quoted cell (") that is never closed'
                )
            else:
                rule = f"is not a well-formed CSV: line {reader.line_num}: {exc}"
            raise _fail(label, rule) from None
        consumed = reader.line_num
        if not record:
            continue  # a blank line: skipped, but counted
        if header is None:
            if not "".join(record).strip():
                only_space.append(start)
                continue
            header, header_line = record, start
            names = {_bare(h) for h in header}
            continue
        # a record whose first cell is a column name may repeat the header (checked in full)
        again = _header_like(record, header) if _bare(record[0]) in names else None
        if again is not None:
            headers_again.setdefault(again, []).append(start)
            continue
        if len(record) != len(header):
            if len(header) > 1 and len(record) == 1 and not record[0].strip():
                only_space.append(start)
            else:
                ragged.setdefault(len(record), []).append(start)
            continue
        records.append(record)
        starts.append(start)
    if header is None:  # e.g. only ',,,' or '""': characters, but no column name
        raise _fail(label, "has no header: no line names a column")
    problems = [
        Violation(
            label,
            None,
            None,
            f"{_lines_text(rows)} {how[len(rows) > 1]}: two exports concatenated? Keep one "
            f"header line (line {header_line}) and check for records exported twice",
        )
        for how, rows in headers_again.items()
    ]
    problems += [
        Violation(
            label,
            None,
            None,
            f"is not a well-formed CSV: {_lines_text(rows)} "
            f"{'has' if len(rows) == 1 else 'have'} {n} {'field' if n == 1 else 'fields'} "
            f"where the header has {len(header)}",
        )
        for n, rows in sorted(ragged.items(), key=lambda kv: kv[1][0])
    ]
    if only_space:
        problems.append(
            Violation(
                label,
                None,
                None,
                f"is not a well-formed CSV: {_lines_text(only_space)} "
                f"{'holds' if len(only_space) == 1 else 'hold'} only whitespace "
                "(delete the line, or leave it empty)",
            )
        )
    seen: set[str] = set()
    dups = [h for h in header if h in seen or seen.add(h)]  # type: ignore[func-returns-value]
    problems += [
        Violation(label, d, header_line, "column appears more than once in the header")
        for d in dict.fromkeys(dups)
    ]
    problems += [
        Violation(label, None, header_line, f"header cell {k} (of {len(header)}) has no name")
        for k, h in enumerate(header, start=1)
        if not h.strip()
    ]
    InputValidationError.collect(problems)
    if not records:
        raise _fail(label, "has a header but no data rows")
    cells = np.empty((len(records), len(header)), dtype=object)
    cells[:] = records  # one block of text cells (the header's names are distinct here)
    frame = pd.DataFrame(cells, columns=header, dtype=object, copy=False)
    index = [s - 2 for s in starts]
    if index == list(range(len(index))):
        frame.index = pd.RangeIndex(len(index))
    else:
        frame.index = pd.Index(index, dtype="int64")
    frame.attrs["header_line"] = header_line
    return frame


def _lines_text(rows: list[int]) -> str:
    if len(rows) == 1:
        return f"line {rows[0]}"
    named = ", ".join(str(r) for r in rows[:_MAX_LINES_NAMED])
    more = f" and {len(rows) - _MAX_LINES_NAMED} more" if len(rows) > _MAX_LINES_NAMED else ""
    return f"{len(rows)} lines ({named}{more})"


def _cell_to_text(value: Any) -> str | None:
    """A parquet cell as the text a CSV would hold.

    A timestamp at midnight is a calendar date (``"2023-12-24"``); one with a
    time of day keeps it (``"2023-12-24 08:30:00"``), so that a date column
    refuses it as it refuses that text in a CSV. A timezone-aware timestamp
    keeps its offset (and is refused the same way).
    """
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):  # pd.Timestamp is one
        midnight = value.time() == dt.time(0) and getattr(value, "nanosecond", 0) == 0
        if value.tzinfo is None and midnight:
            return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    return str(value)


def _is_missing(cell: Any) -> bool:
    """An empty cell or ``NA``, exactly; a cell of spaces is a value (and an error)."""
    return cell is None or (isinstance(cell, str) and cell in MISSING_TOKENS)


def _comma_hint(raw: str, *, integer: bool) -> str:
    """Why a number with a comma or grouped digits is refused, in words ('' if no hint)."""
    if _THOUSANDS_POINT_RE.match(raw) and not integer:
        fixed = raw.replace(".", "").replace(",", ".")
        return f" (remove the thousands separator and use a decimal point: {fixed})"
    if _THOUSANDS_COMMA_RE.match(raw):
        fixed = raw.replace(",", "")
        if "." in raw or integer:
            return f" (remove the thousands separator: {fixed})"
        return (
            f" (remove the thousands separator if it is one: {fixed}; "
            "a decimal comma must be a decimal point)"
        )
    if "," in raw and not integer:
        return " (use a decimal point, not a comma)"
    return ""


def _iso_date(text: str) -> dt.date | None:
    """``text`` as a date if it is exactly ``YYYY-MM-DD`` (ASCII digits) and a real day."""
    if not _DATE_RE.match(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        return None


def _bound_date(bound: Any) -> dt.date | None:
    """A date variable's bound as a date (a Variable built in code may hold a date or a string)."""
    if bound is None:
        return None
    if isinstance(bound, dt.datetime):
        return bound.date()
    if isinstance(bound, dt.date):
        return bound
    day = _iso_date(str(bound))
    if day is None:
        raise StudyvalError(f"date bound {bound!r} is not an ISO date YYYY-MM-DD")
    return day


def _describe_char(ch: str) -> str:
    """A character as messages name it: quoted (escaped if invisible), code point, Unicode name."""
    name = unicodedata.name(ch, "")
    return f"{ch!r} (U+{ord(ch):04X} {name or 'a control character'})"


def _ascii_digits(raw: str) -> str | None:
    """``raw`` with non-ASCII digits and full-width signs typed in ASCII, or None if impossible."""
    out = []
    for ch in raw:
        if ch.isascii():
            out.append(ch)
        elif unicodedata.decimal(ch, None) is not None:
            out.append(str(unicodedata.decimal(ch)))
        elif 0xFF01 <= ord(ch) <= 0xFF5E:  # full-width forms of ASCII punctuation and letters
            out.append(chr(ord(ch) - 0xFEE0))
        elif ch == "\u2212":  # MINUS SIGN
            out.append("-")
        else:
            return None
    return "".join(out)


def _char_hint(raw: str, fits: re.Pattern[str] | None = None) -> str:
    """Name the first non-ASCII or invisible character of ``raw`` ('' if there is none).

    A value that looks right but breaks a rule often holds a look-alike: a
    Cyrillic ``Р`` for a Latin ``P``, a full-width ``０`` for ``0``, a
    no-break space. With ``fits`` (the rule's expression), non-ASCII digits
    are named as digits and the ASCII spelling is suggested when it fits.
    """
    for pos, ch in enumerate(raw, start=1):
        if ch.isascii() and ch.isprintable():
            continue
        if fits is not None and unicodedata.decimal(ch, None) is not None:
            width = "full-width " if unicodedata.name(ch, "").startswith("FULLWIDTH") else ""
            text = f": contains the {width}digit {_describe_char(ch)} at position {pos}"
            fixed = _ascii_digits(raw)
            if fixed is not None and fits.match(fixed):
                return text + f": type ASCII digits ({fixed})"
            return text + ": type ASCII digits (0-9)"
        text = f": contains {_describe_char(ch)} at position {pos}"
        if fits is not None:
            fixed = _ascii_digits(raw)
            if fixed is not None and fits.match(fixed):
                return text + f": type it in ASCII ({fixed})"
        return text
    return ""


def _bound_rule(var: Variable, *, below: bool) -> str:
    unit = f" {var.unit}" if var.unit else ""
    if below:
        return f"must be >= {var.minimum}{unit}"
    return f"must be <= {var.maximum}{unit}"


def _convert(var: Variable, cell: str) -> tuple[Any, str | None]:
    """Convert one non-missing cell; return (value, rule broken or None).

    The rule names the first non-ASCII or invisible character of a value that
    breaks a format rule, except for a direct identifier or a vocabulary
    variable (whose text is never repeated).
    """
    raw = cell
    if raw != raw.strip():
        if not raw.strip():
            return None, (
                "leading or trailing whitespace is not allowed (the cell holds only "
                "whitespace; leave it empty for a missing value)"
            )
        return None, "leading or trailing whitespace is not allowed"
    reveal = var.role != "direct_identifier" and not var.vocabulary

    def hint(fits: re.Pattern[str] | None = None) -> str:
        return _char_hint(raw, fits) if reveal else ""

    t = var.type
    if t == "string":
        if var.pattern and not re.fullmatch(var.pattern, raw):
            return None, f"must match the pattern {var.pattern}" + hint()
        if var.vocabulary:
            return var.categorize(raw), None
        return raw, None
    if t == "categorical":
        if raw not in var.levels:
            close = difflib.get_close_matches(raw, var.levels, n=1)
            did = f"; did you mean {close[0]!r}?" if close else ""
            return None, f"not an allowed level ({', '.join(var.levels)}){did}" + hint()
        return raw, None
    if t == "boolean":
        if raw in _TRUE:
            return True, None
        if raw in _FALSE:
            return False, None
        return None, "must be true or false" + hint()
    if t == "integer":
        if not _INT_RE.match(raw):
            return None, "must be an integer" + (hint(_INT_RE) or _comma_hint(raw, integer=True))
        sign = "-" if raw.startswith("-") else ""
        digits = raw.lstrip("+-").lstrip("0") or "0"
        try:
            value: Any = int(sign + digits)
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits())
            bound = var.minimum if sign else var.maximum
            rule = _bound_rule(var, below=bool(sign)) if bound is not None else "is too large"
            return None, f"{rule} (the value has {len(digits):,} digits)"
    elif t == "number":
        if not _NUM_RE.match(raw):
            return None, "must be a number" + (hint(_NUM_RE) or _comma_hint(raw, integer=False))
        value = float(raw)
        if not np.isfinite(value):  # a valid number too large for a 64-bit float
            below = raw.startswith("-")
            bound = var.minimum if below else var.maximum
            rule = _bound_rule(var, below=below) if bound is not None else "must be finite"
            return None, f"{rule} (the value is too large for a 64-bit floating-point number)"
    elif t == "date":
        if not _DATE_RE.match(raw):
            rule = "must be an ISO date YYYY-MM-DD"
            if _DATE_TIME_RE.match(raw):
                rule += " (a date, without a time of day)"
            return None, rule + hint(_DATE_RE)
        day = _iso_date(raw)
        if day is None:
            return None, "is not a valid calendar date"
        # compared as dates, never as strings (the parser checks that the bounds are ISO dates)
        lo, hi = _bound_date(var.minimum), _bound_date(var.maximum)
        if lo is not None and day < lo:
            return None, f"must be on or after {var.minimum}"
        if hi is not None and day > hi:
            return None, f"must be on or before {var.maximum}"
        try:
            return pd.Timestamp(day), None
        except (ValueError, OverflowError):  # pandas stores 1677-09-22 .. 2262-04-11
            return None, "is outside the dates studyval can store (1677-09-22 to 2262-04-11)"
    else:  # pragma: no cover - guarded by the dictionary parser
        raise StudyvalError(f"unknown type {t}")
    if var.minimum is not None and value < var.minimum:
        return None, _bound_rule(var, below=True)
    if var.maximum is not None and value > var.maximum:
        return None, _bound_rule(var, below=False)
    return value, None


_DTYPES = {
    "string": "string",
    "categorical": "string",
    "boolean": "boolean",
    "integer": "Int64",
    "number": "Float64",
    "date": "datetime64[ns]",
}


def _near(name: str, candidates: list[str]) -> str | None:
    """The candidate ``name`` most likely means: equal but for case or spaces, else close."""
    folded: dict[str, str] = {}
    for c in candidates:
        folded.setdefault(c.strip().casefold(), c)
    key = name.strip().casefold()
    if key in folded:
        return folded[key]
    close = difflib.get_close_matches(key, list(folded), n=1)
    return folded[close[0]] if close else None


def validate_frame(
    raw: pd.DataFrame, dictionary: DataDictionary, *, label: str
) -> tuple[pd.DataFrame, list[Violation]]:
    """Check a text table against ``dictionary``; return typed frame and violations.

    Parameters
    ----------
    raw : DataFrame
        Every cell a string (or None for missing), as :func:`read_table` reads
        it. Its index must be integers: the row number reported for a cell is
        ``index + 2`` (for a frame read by :func:`read_table`, the file line
        where the record starts; for a frame with a default ``RangeIndex``,
        the spreadsheet row). ``raw.attrs["header_line"]`` (default 1) is the
        row reported for problems of the header.
    dictionary : DataDictionary
        The rules.
    label : str
        Name of the input in messages (usually the file name).

    Returns
    -------
    typed : DataFrame
        Columns in dictionary order with pandas nullable dtypes, and the index
        of ``raw``; categorical variables become ordered ``category`` dtypes
        with the dictionary's levels. A string variable with a vocabulary
        holds only its labels (the raw text is dropped), and
        ``typed.attrs["withheld"]`` maps each such column present to the
        number of its cells that matched no category (labelled ``other``).
    violations : list of Violation
        Every broken rule; empty when the table is valid. The value of a
        cell of a vocabulary variable or a direct identifier is never quoted.

    Raises
    ------
    TypeError
        ``raw`` has an index that is not made of integers.

    """
    if not pd.api.types.is_integer_dtype(raw.index.dtype):
        raise TypeError(
            "validate_frame needs a frame with an integer index (row number - 2), "
            f"got a {raw.index.dtype} index"
        )
    problems: list[Violation] = []
    header_row = int(raw.attrs.get("header_line", 1))
    columns = [str(c) for c in raw.columns]
    seen: set[str] = set()
    for col in columns:
        if col in seen:
            problems.append(Violation(label, col, header_row, "column appears more than once"))
        seen.add(col)
        if col != col.strip():
            problems.append(
                Violation(label, col, header_row, "column name has leading or trailing whitespace")
            )
    declared = set(dictionary.names)
    undeclared = [c for c in columns if c not in declared]
    if not dictionary.allow_extra_columns:
        for col in undeclared:
            if col.strip() in declared:
                continue  # reported above as whitespace
            close = _near(col, list(dictionary.names))
            hint = f"; did you mean {close!r}?" if close else ""
            problems.append(
                Violation(
                    label,
                    col,
                    header_row,
                    f"column is not in the {dictionary.name} dictionary{hint}",
                )
            )
    typed: dict[str, pd.Series] = {}
    withheld: dict[str, int] = {}
    rows = [int(i) + 2 for i in raw.index]
    for var in dictionary.variables:
        if var.name not in columns:
            if var.required:
                close = _near(var.name, undeclared)
                if close is None:
                    hint = ""
                elif close.strip().casefold() == var.name.casefold():
                    hint = f"; found {close!r} instead (column names are case-sensitive)"
                else:
                    hint = f"; found {close!r} instead (misspelt?)"
                problems.append(
                    Violation(label, var.name, None, f"required column is missing{hint}")
                )
            continue
        # the raw text of a vocabulary variable or a direct identifier is never repeated
        withheld_value = var.role == "direct_identifier"
        quote = not var.vocabulary and not withheld_value
        after = _WITHHELD if withheld_value else ""
        values, refused = _check_column(var, raw[var.name], rows)
        for row, cell, rule in refused:
            if rule is None:  # missing
                if var.required:
                    problems.append(Violation(label, var.name, row, "value is required"))
                continue
            shown = _short(str(cell)) if quote else None
            problems.append(Violation(label, var.name, row, rule + after, shown))
        # the converted values as they are (no dtype inference: _typed_series sets the dtype)
        series = pd.Series(values, index=raw.index, name=var.name, dtype=object)
        if var.vocabulary:
            withheld[var.name] = sum(1 for v in values if v == var.other)
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
                            f"duplicate value; first seen in row {first_rows[value]}{after}",
                            _short(str(value)) if quote else None,
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
                            "differs from another id only in letter case" + after,
                            _short(str(present[idx])) if quote else None,
                        )
                    )
        typed[var.name] = _typed_series(series, var)
    frame = pd.DataFrame(typed, index=raw.index)
    frame.attrs["withheld"] = withheld
    return frame, problems


#: Columns (and distinct texts of a number column) up to this length are checked text by text:
#: below it, factorising and vectorising cost more than they save.
_FACTORISE_FROM = 200


def _check_column(
    var: Variable, column: pd.Series, rows: list[int]
) -> tuple[np.ndarray, list[tuple[int, Any, str | None]]]:
    """Convert every cell of ``column``: the values, and the cells without one in row order.

    Returns
    -------
    values : numpy.ndarray of objects
        One per cell: the converted value, or None for a missing or refused cell (an object
        array, which the column's Series takes as it is).
    refused : list of (row, cell, rule)
        Each missing cell (``rule`` None) and each cell that breaks a rule, in row order.

    Each distinct text is checked once (:func:`_is_missing` and :func:`_convert` are pure
    functions of the variable and the text; a column repeats its levels, dates and numbers):
    the column is factorised and only its distinct texts are converted, so a table of many
    rows costs little more than its distinct values. A column holding anything but text and
    None (never the case for :func:`read_table`) is checked cell by cell.
    """
    cells = column.to_numpy(dtype=object)
    if len(cells) <= _FACTORISE_FROM:
        return _check_cells(var, cells.tolist(), rows)
    codes, distinct = pd.factorize(cells, use_na_sentinel=True)  # None (and NaN): code -1
    if not all(type(t) is str for t in distinct) or any(c is not None for c in cells[codes < 0]):
        return _check_cells(var, cells.tolist(), rows)
    vectorise = var.type == "number" and len(distinct) > _FACTORISE_FROM
    fast = _plain_numbers(var, distinct) if vectorise else {}
    done = [
        fast[k] if k in fast else None if _is_missing(text) else _convert(var, text)
        for k, text in enumerate(distinct)
    ]
    value_of = np.empty(len(distinct) + 1, dtype=object)  # the last one: a None cell
    ok = np.zeros(len(distinct) + 1, dtype=bool)
    for k, d in enumerate(done):
        if d is not None and d[1] is None:
            value_of[k], ok[k] = d[0], True
    values = value_of[codes]
    refused = []
    for i in np.flatnonzero(~ok[codes]):
        code = codes[i]
        rule = None if code < 0 or done[code] is None else done[code][1]
        refused.append((rows[i], cells[i], rule))
    return values, refused


def _plain_numbers(var: Variable, texts: np.ndarray) -> dict[int, tuple[float, None]]:
    """The texts of a number variable that :func:`_convert` accepts as they are, converted.

    A text qualifies when it matches the number rule, has no surrounding whitespace and is a
    finite number within the variable's bounds; its value is ``float(text)``, as
    :func:`_convert` computes it. The rest (missing, refused or needing a message) are left to
    :func:`_convert`. Vectorised: a column of measurements has nearly as many distinct texts
    as rows.
    """
    series = pd.Series(texts, dtype=object)
    fits = series.str.match(_NUM_RE).to_numpy(dtype=bool) & (series == series.str.strip()).to_numpy(
        dtype=bool
    )
    index = np.flatnonzero(fits)
    values = series.iloc[index].to_numpy(dtype=object).astype(float)  # float() of each text
    keep = np.isfinite(values)
    if var.minimum is not None:
        keep &= values >= var.minimum
    if var.maximum is not None:
        keep &= values <= var.maximum
    return {int(k): (v, None) for k, v in zip(index[keep], values[keep].tolist(), strict=True)}


def _check_cells(
    var: Variable, cells: list[Any], rows: list[int]
) -> tuple[np.ndarray, list[tuple[int, Any, str | None]]]:
    """:func:`_check_column` cell by cell, for a short column or one of more than text and None.

    A text seen before is looked up, not converted again.
    """
    values = np.full(len(cells), None, dtype=object)
    refused = []
    converted: dict[str, tuple[Any, str | None] | None] = {}
    for i, (cell, row) in enumerate(zip(cells, rows, strict=True)):
        text = type(cell) is str
        if text and cell in converted:
            done = converted[cell]
        else:
            done = None if _is_missing(cell) else _convert(var, str(cell))
            if text:
                converted[cell] = done
        if done is None or done[1] is not None:
            refused.append((row, cell, None if done is None else done[1]))
        else:
            values[i] = done[0]
    return values, refused


#: Said of a value not quoted because its column is a direct identifier.
_WITHHELD = " (value not shown: the column is a direct identifier)"


def _typed_series(series: pd.Series, var: Variable) -> pd.Series:
    if var.type == "categorical":
        return pd.Series(
            pd.Categorical(series, categories=list(var.levels)), index=series.index, name=var.name
        )
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
        Typed table with the dictionary's columns in dictionary order. Its
        index is the row number of each record minus 2, so that
        ``index + 2`` is the row to name in a message: for a CSV, the file
        line where the record starts (the header is line 1; blank lines,
        which are skipped, and the extra lines of quoted multi-line cells
        count), which is ``0 .. n-1`` when there are no such lines; for
        parquet, the position. A string variable with a vocabulary (every
        ``free_text`` variable) holds only its category labels, never the
        raw text; ``frame.attrs["withheld"]`` maps each such column to the
        number of cells labelled ``other`` (text that matched no category).

    Raises
    ------
    InputValidationError
        Listing every violation (file, column, row, rule, value). The value of
        a cell of a vocabulary variable or a direct identifier is not quoted.
        A CSV line that repeats the header (two exports concatenated) is
        reported, with malformed lines, before any cell is checked.

    """
    path = Path(path)
    if isinstance(dictionary, str):
        dictionary = load_dictionary(dictionary)
    label = label or path.name
    raw = _read_raw(path, label)
    typed, problems = validate_frame(raw, dictionary, label=label)
    InputValidationError.collect(problems)
    return typed
