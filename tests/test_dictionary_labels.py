"""The data dictionary's ``label:``: the variable's name for readers, shown with its unit."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from studyval.dictionary import _parse_dictionary, load_dictionary
from studyval.errors import InputValidationError
from studyval.reporting import md_dictionary


def parse_dictionary_text(text: str, source: str):
    return _parse_dictionary(yaml.safe_load(text), source)


BASE = """
name: t
version: 1.0.0
unit: one patient
variables:
  patient_id: {type: string, role: identifier}
  bmi: {type: number, role: predictor, unit: kg/m2, label: %s}
"""


def test_label_is_read_and_kept_in_the_table() -> None:
    d = parse_dictionary_text(BASE % "Body-mass index", "t.yml")
    assert d["bmi"].label == "Body-mass index"
    assert d["patient_id"].label is None
    frame = d.to_frame()
    assert frame.set_index("variable").loc["bmi", "label"] == "Body-mass index"


@pytest.mark.parametrize("bad", ["''", "[a, b]", "3"])
def test_label_must_be_text(bad: str) -> None:
    with pytest.raises(InputValidationError) as err:
        parse_dictionary_text(BASE % bad, "t.yml")
    assert any(v.column == "variables.bmi.label" for v in err.value.violations)


def test_shipped_dictionaries_label_every_variable() -> None:
    for name in ("ovcf-chronicity", "refracture-pvp", "cirrhosis-sarcopenia", "vcf-opportunistic", "msk-aging"):
        d = load_dictionary(name)
        assert all(v.label for v in d.variables), name


def test_report_dictionary_shows_labels_and_words_the_rest() -> None:
    frame = pd.DataFrame(
        {"variable": ["bmi", "height_m"], "label": ["Body-mass index", ""], "type": ["number"] * 2,
         "role": ["covariate"] * 2, "unit": ["kg/m2", "m"], "allowed": ["", ""],
         "required": [True, False], "description": ["", ""]}
    )
    md = md_dictionary(frame)
    assert "Body-mass index" in md
    assert "Height m" in md
