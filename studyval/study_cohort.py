"""The plan's ``cohort:`` section: who is analysed, derived variables and the baseline table, as YAML.

A study of a generic type (:mod:`studyval.study_types`) has no Python of its
own, so the rules a registered study would code in its runner are declared in
its plan instead::

    cohort:
      exclusion:                    # the column that says why a row is excluded
        column: exclusion_reason    # (rows whose value is `included` are analysed)
        included: none
      constant_within_patient: [site, age, sex]
      rules:                        # checked on the included rows; a breach is an input error
        - column: age
          min: 50
          reason: age_under_50      # the exclusion the row should have had
        - interval: [ct_date, mri_date]
          max_days: 13              # |mri_date - ct_date| <= 13 days
          reason: ct_mri_interval_14d_or_more
      derived:                      # subgroup/baseline variables computed from columns
        - name: age_band
          from: age
          breaks: [65, 80]          # left-closed bins: < 65, [65, 80), >= 80
          labels: ["50-64", "65-79", ">=80"]
        - name: region
          from: vertebral_level
          map: {T11: thoracolumbar, T12: thoracolumbar, L1: thoracolumbar}
          other: other              # levels the map does not name (omit: they stay missing)
      baseline:
        by: [outcome, site]         # `outcome` is the plan's outcome variable
        continuous: [age]
        categorical: [sex]

Every function here is pure: the clinical table in, violations or a new table out.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from studyval.errors import Violation

__all__ = [
    "BaselineSpec",
    "CohortRule",
    "CohortSpec",
    "DerivedVariable",
    "ExclusionSpec",
    "check_cohort_rules",
    "derive_variables",
    "included_rows",
    "spec_columns",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ExclusionSpec(_Strict):
    """The column recording why a row is excluded, and the value that means included."""

    column: str = "exclusion_reason"
    included: str = "none"


class CohortRule(_Strict):
    """An eligibility rule every included row must meet (else an input error naming the row).

    Either a bound on one column (``column`` with ``min`` and/or ``max``,
    inclusive) or a maximum interval between two date columns (``interval``
    and ``max_days``, inclusive, either order).
    """

    column: str | None = None
    min: float | None = None
    max: float | None = None
    interval: tuple[str, str] | None = None
    max_days: int | None = Field(None, ge=0)
    reason: str = Field(description="The exclusion reason a breaching row should carry")

    @model_validator(mode="after")
    def _one_kind(self) -> CohortRule:
        bound = self.column is not None
        interval = self.interval is not None
        if bound == interval:
            raise ValueError("a rule has either `column` (with min/max) or `interval` (with max_days)")
        if bound and self.min is None and self.max is None:
            raise ValueError("a column rule needs `min` and/or `max`")
        if interval and self.max_days is None:
            raise ValueError("an interval rule needs `max_days`")
        if bound and self.max_days is not None:
            raise ValueError("`max_days` belongs to an interval rule")
        if interval and (self.min is not None or self.max is not None):
            raise ValueError("`min`/`max` belong to a column rule")
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns the rule reads."""
        return tuple(self.interval) if self.interval is not None else (str(self.column),)


class DerivedVariable(_Strict):
    """A variable computed from one column: numeric bins or a mapping of levels.

    ``breaks`` are the inner cut points of left-closed bins (``[65, 80]``:
    below 65, 65 to below 80, 80 and above), one more label than breaks. ``map``
    maps levels (as text) to groups; ``other`` names the group of levels the map
    does not list (without it they are missing). A missing source value stays
    missing (shown as its own level in the tables, never tested).
    """

    name: str
    source: str = Field(alias="from")
    breaks: list[float] | None = None
    labels: list[str] | None = None
    map: dict[str, str] | None = None
    other: str | None = None
    definition: str = ""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_kind(self) -> DerivedVariable:
        if (self.breaks is None) == (self.map is None):
            raise ValueError("a derived variable has either `breaks` (with `labels`) or `map`")
        if self.breaks is not None:
            if self.labels is None or len(self.labels) != len(self.breaks) + 1:
                raise ValueError("`labels` must have one more entry than `breaks`")
            if list(self.breaks) != sorted(set(self.breaks)):
                raise ValueError("`breaks` must be strictly increasing")
        if self.map is not None and (self.labels is not None):
            raise ValueError("`labels` belong to `breaks`; a map names its groups itself")
        return self

    @property
    def levels(self) -> list[str]:
        """The levels in order (bins in order; map groups in order of first mention)."""
        if self.labels is not None:
            return list(self.labels)
        groups = list(dict.fromkeys((self.map or {}).values()))
        if self.other is not None and self.other not in groups:
            groups.append(self.other)
        return groups


class BaselineSpec(_Strict):
    """The baseline table: its groupings and variables (STARD 20 / TRIPOD 23a)."""

    by: list[str] = ["outcome"]
    continuous: list[str] = []
    categorical: list[str] = []


class CohortSpec(_Strict):
    """The plan's ``cohort`` section (see the module docstring)."""

    exclusion: ExclusionSpec | None = None
    constant_within_patient: list[str] = []
    rules: list[CohortRule] = []
    derived: list[DerivedVariable] = []
    baseline: BaselineSpec = BaselineSpec()


def spec_columns(spec: CohortSpec) -> dict[str, str]:
    """Every input column the section names: column -> YAML path of its first mention.

    Derived variables are not input columns; a baseline or rule may name them.
    """
    out: dict[str, str] = {}
    if spec.exclusion is not None:
        out.setdefault(spec.exclusion.column, "cohort.exclusion.column")
    for i, col in enumerate(spec.constant_within_patient):
        out.setdefault(col, f"cohort.constant_within_patient[{i}]")
    for i, rule in enumerate(spec.rules):
        for col in rule.columns:
            out.setdefault(col, f"cohort.rules[{i}]")
    for i, var in enumerate(spec.derived):
        out.setdefault(var.source, f"cohort.derived[{i}].from")
    derived = {v.name for v in spec.derived}
    for key in ("continuous", "categorical"):
        for i, col in enumerate(getattr(spec.baseline, key)):
            if col not in derived:
                out.setdefault(col, f"cohort.baseline.{key}[{i}]")
    return out


def included_rows(clinical: pd.DataFrame, spec: CohortSpec | None) -> pd.Series:
    """Boolean mask of the rows the analysis includes.

    With a ``cohort`` section: the rows whose ``exclusion.column`` is
    ``exclusion.included`` (every row when the section declares no exclusion
    column). Without one (the shipped protocols): the rows whose
    ``exclusion_reason`` is ``none``, the convention of their dictionaries.
    """
    if spec is None:
        spec = CohortSpec(exclusion=ExclusionSpec())
    if spec.exclusion is None:
        return pd.Series(True, index=clinical.index)
    col = clinical[spec.exclusion.column].astype("string")
    return (col == spec.exclusion.included).fillna(False).astype(bool)


def check_cohort_rules(
    clinical: pd.DataFrame, spec: CohortSpec | None, *, label: str, patient: str = "patient_id"
) -> list[Violation]:
    """Every breach of the section's rules, as input violations naming file, column and row.

    * a ``constant_within_patient`` column with more than one value for a patient
      (reported at the patient's second row);
    * an included row outside a column rule's ``min``/``max``, or with an
      interval longer than ``max_days`` (a missing value is not a breach: the
      dictionary decides whether it may be missing).

    Rows are numbered as in the file (header is row 1).
    """
    if spec is None:
        return []
    problems: list[Violation] = []
    if spec.constant_within_patient and patient in clinical.columns:
        by_patient = clinical.groupby(patient, observed=True, sort=False)
        for col in spec.constant_within_patient:
            if col not in clinical.columns:
                continue
            n_distinct = by_patient[col].nunique(dropna=False)
            for pid in n_distinct.index[n_distinct > 1]:
                idx = clinical.index[clinical[patient] == pid]
                problems.append(
                    Violation(
                        label,
                        col,
                        int(idx[1]) + 2,
                        f"a patient has {n_distinct[pid]} different values; it must be "
                        "constant within a patient (cohort.constant_within_patient)",
                    )
                )
    inc = included_rows(clinical, spec)
    excl = spec.exclusion.column if spec.exclusion is not None else None
    fix = f"; set {excl} to {{reason}}" if excl else " ({reason})"
    for rule in spec.rules:
        if any(c not in clinical.columns for c in rule.columns):
            continue
        if rule.interval is not None:
            a, b = rule.interval
            gap = (pd.to_datetime(clinical[b]) - pd.to_datetime(clinical[a])).dt.days.abs()
            bad = inc & (gap > rule.max_days).fillna(False)
            for idx in clinical.index[bad]:
                problems.append(
                    Violation(
                        label,
                        b,
                        int(idx) + 2,
                        f"included row has {a} and {b} {int(gap[idx])} days apart "
                        f"(at most {rule.max_days} allowed){fix.format(reason=rule.reason)}",
                    )
                )
            continue
        values = pd.to_numeric(clinical[rule.column], errors="coerce")
        low = (values < rule.min) if rule.min is not None else pd.Series(False, index=values.index)
        high = (values > rule.max) if rule.max is not None else pd.Series(False, index=values.index)
        bad = inc & (low | high).fillna(False)
        bounds = " to ".join(
            f"{v:g}" for v in (rule.min, rule.max) if v is not None
        )
        what = (
            f"at least {rule.min:g}" if rule.max is None
            else f"at most {rule.max:g}" if rule.min is None
            else bounds
        )
        for idx in clinical.index[bad]:
            problems.append(
                Violation(
                    label,
                    str(rule.column),
                    int(idx) + 2,
                    f"included row must have {rule.column} {what}{fix.format(reason=rule.reason)}",
                    str(clinical.at[idx, rule.column]),
                )
            )
    return problems


def derive_variables(frame: pd.DataFrame, spec: CohortSpec | None) -> pd.DataFrame:
    """``frame`` with the section's derived variables added as ordered categoricals.

    Bins are left-closed (``breaks=[65, 80]``: ``x < 65``, ``65 <= x < 80``,
    ``x >= 80``); a map sends each level (compared as text) to its group, and
    unmapped levels to ``other`` or missing. Missing source values stay missing.
    """
    if spec is None or not spec.derived:
        return frame
    out = frame.copy()
    for var in spec.derived:
        src = out[var.source]
        if var.breaks is not None:
            x = pd.to_numeric(src, errors="coerce").to_numpy(dtype=float)
            codes = np.searchsorted(np.asarray(var.breaks, dtype=float), x, side="right")
            labels = np.asarray(var.labels, dtype=object)
            values = np.where(np.isnan(x), None, labels[np.minimum(codes, len(labels) - 1)])
        else:
            text = src.astype("string")
            mapped = text.map(var.map or {})
            if var.other is not None:
                mapped = mapped.where(mapped.notna() | text.isna(), var.other)
            values = mapped.astype(object).where(mapped.notna(), None).to_numpy()
        out[var.name] = pd.Categorical(values, categories=var.levels, ordered=var.breaks is not None)
    return out
