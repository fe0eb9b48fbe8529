"""Tests for studyval.models.splits: no patient in two splits, by construction.

Property: for any seed, fraction and table (several cases per patient, rows
shuffled), every patient's cases share one split, external-site patients are
all ``external``, and the result does not depend on row order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studyval.errors import InputValidationError
from studyval.models.splits import check_no_leakage, patient_level_split


def _clinical(n_patients: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for p in range(n_patients):
        site = "ext" if p % 4 == 0 else "dev"
        for v in range(int(rng.integers(1, 4))):
            rows.append({"case_id": f"P{p:03d}-V{v}", "patient_id": f"P{p:03d}", "site": site})
    return pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10_000), frac=st.floats(0.0, 0.9))
def test_no_patient_in_two_splits(n, seed, frac):
    clin = _clinical(n, seed)
    out = patient_level_split(clin, internal_fraction=frac, seed=seed, external_sites=["ext"])
    assert (out.groupby("patient_id")["split"].nunique() == 1).all()
    assert (out.loc[out["site"] == "ext", "split"] == "external").all()
    assert not (out.loc[out["site"] == "dev", "split"] == "external").any()
    check_no_leakage(out)  # does not raise
    shuffled = patient_level_split(
        clin.iloc[::-1], internal_fraction=frac, seed=seed, external_sites=["ext"]
    )
    assert (
        shuffled.set_index("case_id")["split"]
        .sort_index()
        .equals(out.set_index("case_id")["split"].sort_index())
    )


def test_internal_fraction_counts_patients():
    clin = _clinical(40, 1)
    out = patient_level_split(clin, internal_fraction=0.25, seed=7, external_sites=["ext"])
    per = out.drop_duplicates("patient_id")["split"].value_counts()
    assert (
        per["external"] == 10
        and per["internal"] == round(0.25 * 30)
        and per["development"] == 30 - 8
    )


def test_leak_is_reported():
    t = pd.DataFrame(
        {"patient_id": ["P1", "P1", "P2"], "split": ["development", "internal", "external"]}
    )
    with pytest.raises(
        InputValidationError, match=r"patient in several splits \(development, internal\).*'P1'"
    ):
        check_no_leakage(t)


@pytest.mark.parametrize(
    ("clin", "match"),
    [
        pytest.param(
            pd.DataFrame(
                {"case_id": ["a", "b"], "patient_id": ["P1", "P1"], "site": ["dev", "ext"]}
            ),
            "a patient must have one site",
            id="two-sites",
        ),
        pytest.param(
            pd.DataFrame(
                {"case_id": ["a", "a"], "patient_id": ["P1", "P2"], "site": ["dev", "dev"]}
            ),
            "case id must be unique",
            id="dup-case",
        ),
        pytest.param(
            pd.DataFrame({"case_id": ["a"], "site": ["dev"]}),
            "column 'patient_id': column is required",
            id="no-patient",
        ),
    ],
)
def test_bad_tables(clin, match):
    with pytest.raises(InputValidationError, match=match):
        patient_level_split(clin, internal_fraction=0.2, seed=1, external_sites=["ext"])
