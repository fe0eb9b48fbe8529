"""The plan's ``cohort:`` section: schema errors, eligibility rules, derived variables."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from studyval.study_cohort import (
    CohortRule,
    CohortSpec,
    DerivedVariable,
    check_cohort_rules,
    derive_variables,
    included_rows,
    spec_columns,
)


def _spec(**kw) -> CohortSpec:
    return CohortSpec.model_validate(kw)


@pytest.fixture
def clinical() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "patient_id": ["P1", "P1", "P2", "P3", "P4"],
            "age": [70, 70, 45, 82, None],
            "sex": ["F", "M", "F", "M", "F"],
            "exclusion_reason": ["none", "none", "none", "age_under_50", "none"],
            "ct_date": pd.to_datetime(["2024-01-01"] * 5),
            "mri_date": pd.to_datetime(
                ["2024-01-05", "2024-01-05", "2024-01-30", "2024-03-01", None]
            ),
            "level": ["T12", "T12", "L4", "T3", "C5"],
        }
    )


def test_rule_needs_one_kind() -> None:
    with pytest.raises(ValidationError, match="either `column`"):
        CohortRule(reason="x")
    with pytest.raises(ValidationError, match="either `column`"):
        CohortRule(column="age", min=1, interval=("a", "b"), max_days=3, reason="x")
    with pytest.raises(ValidationError, match="min` and/or `max"):
        CohortRule(column="age", reason="x")
    with pytest.raises(ValidationError, match="needs `max_days`"):
        CohortRule(interval=("a", "b"), reason="x")


def test_derived_needs_consistent_bins() -> None:
    with pytest.raises(ValidationError, match="one more entry"):
        DerivedVariable.model_validate({"name": "b", "from": "age", "breaks": [65], "labels": ["a"]})
    with pytest.raises(ValidationError, match="strictly increasing"):
        DerivedVariable.model_validate(
            {"name": "b", "from": "age", "breaks": [80, 65], "labels": ["a", "b", "c"]}
        )
    with pytest.raises(ValidationError, match="either `breaks`"):
        DerivedVariable.model_validate({"name": "b", "from": "age"})


def test_unknown_key_is_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        _spec(rulez=[])


def test_rules_name_file_column_and_row(clinical: pd.DataFrame) -> None:
    spec = _spec(
        exclusion={"column": "exclusion_reason", "included": "none"},
        constant_within_patient=["sex"],
        rules=[
            {"column": "age", "min": 50, "reason": "age_under_50"},
            {"interval": ["ct_date", "mri_date"], "max_days": 13, "reason": "late_mri"},
        ],
    )
    found = check_cohort_rules(clinical, spec, label="clinical.csv")
    got = [(v.file, v.column, v.row) for v in found]
    # P1's second row (file row 3) changes sex; P2 (row 4) is 45 and had the MRI 29 days later;
    # P3 is excluded already; P4's missing age and MRI date are not breaches
    assert got == [
        ("clinical.csv", "sex", 3),
        ("clinical.csv", "age", 4),
        ("clinical.csv", "mri_date", 4),
    ]
    assert "set exclusion_reason to age_under_50" in found[1].rule
    assert "29 days apart" in found[2].rule


def test_included_rows(clinical: pd.DataFrame) -> None:
    spec = _spec(exclusion={"column": "exclusion_reason", "included": "none"})
    assert included_rows(clinical, spec).tolist() == [True, True, True, False, True]
    # a plan without a cohort section (the shipped protocols): their dictionaries' convention
    assert included_rows(clinical, None).tolist() == [True, True, True, False, True]
    # a cohort section that declares no exclusion column: every row is analysed
    assert included_rows(clinical, _spec()).all()


def test_derive_bins_and_map(clinical: pd.DataFrame) -> None:
    spec = _spec(
        derived=[
            {"name": "age_band", "from": "age", "breaks": [50, 65, 80],
             "labels": ["<50", "50-64", "65-79", ">=80"]},
            {"name": "region", "from": "level", "map": {"T12": "thoracolumbar", "L4": "lumbar"},
             "other": "other"},
            {"name": "region_strict", "from": "level", "map": {"T12": "thoracolumbar"}},
        ]
    )
    out = derive_variables(clinical, spec)
    assert out["age_band"].astype(object).tolist()[:4] == ["65-79", "65-79", "<50", ">=80"]
    assert pd.isna(out["age_band"].iloc[4])  # a missing age stays missing
    assert list(out["age_band"].cat.categories) == ["<50", "50-64", "65-79", ">=80"]
    assert out["age_band"].cat.ordered
    assert out["region"].astype(object).tolist() == [
        "thoracolumbar", "thoracolumbar", "lumbar", "other", "other"
    ]
    assert out["region_strict"].isna().sum() == 3  # unmapped levels without `other`: missing
    assert "age_band" not in clinical.columns  # the input is not modified


def test_left_closed_bins() -> None:
    spec = _spec(derived=[{"name": "b", "from": "x", "breaks": [65], "labels": ["lo", "hi"]}])
    out = derive_variables(pd.DataFrame({"x": [64.999, 65.0, 65.001]}), spec)
    assert out["b"].astype(object).tolist() == ["lo", "hi", "hi"]


def test_spec_columns_name_yaml_paths() -> None:
    spec = _spec(
        exclusion={"column": "why"},
        rules=[{"interval": ["a", "b"], "max_days": 3, "reason": "r"}],
        derived=[{"name": "band", "from": "age", "breaks": [1], "labels": ["x", "y"]}],
        baseline={"continuous": ["age", "band"], "categorical": ["sex"]},
    )
    assert spec_columns(spec) == {
        "why": "cohort.exclusion.column",
        "a": "cohort.rules[0]",
        "b": "cohort.rules[0]",
        "age": "cohort.derived[0].from",
        "sex": "cohort.baseline.categorical[0]",
    }
