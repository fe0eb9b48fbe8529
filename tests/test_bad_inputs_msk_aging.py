"""Hostile inputs of the msk-aging clinical table, run through the command line.

Each case runs ``studyval run msk-aging -c ... --no-render`` (click's CliRunner)
and asserts: exit code 1, no traceback, a message naming the file, column, row
and rule, nothing written at ``--out``, and the input bytes unchanged. The
cases are the ones the knee-level table opens: values outside their range, a
KL grade of 5, a visit month the plan does not have (an ``oks_m18`` column), a
patient in both cohorts, a missing image feature, a negative follow-up time, a
duplicated knee record, patient-level values differing between knees, an
included patient outside the plan's age range, a death recorded together with a
fracture, a table without the competing-event column the plan names, and a
patient the image encoder was trained on among the evaluated patients.
"""

from __future__ import annotations

import hashlib
import re
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main
from studyval.synthetic.msk_aging import generate

SLUG = "msk-aging"


@pytest.fixture(scope="module")
def clinical_text() -> pd.DataFrame:
    return generate().clinical.astype(object).where(generate().clinical.notna(), "").astype(str)


def _inc(df: pd.DataFrame) -> int:
    return int(df.index[df["exclusion_reason"] == "none"][0])


def t_score_out_of_range(df):
    i = _inc(df)
    df.loc[df["patient_id"] == df.at[i, "patient_id"], "dxa_t_score"] = "-7.5"
    return [r"dxa_t_score", rf"row {i + 2}", r"-6", r"-7\.5"]


def kl_grade_5(df):
    i = _inc(df)
    df.at[i, "kl_grade"] = "5"
    return [r"kl_grade", rf"row {i + 2}", r"4", r"'?5'?"]


def visit_month_not_planned(df):
    df.insert(len(df.columns) - 1, "oks_m18", "")
    return [r"oks_m18", r"not declared|does not declare|unknown column|not in the"]


def patient_in_both_cohorts(df):
    i = _inc(df)
    pid = df.at[i, "patient_id"]
    rows = df.index[df["patient_id"] == pid]
    df.at[rows[-1], "cohort"] = (
        "prospective" if df.at[rows[0], "cohort"] == "retrospective" else "retrospective"
    )
    return [r"cohort", rf"row {rows[-1] + 2}", r"both cohorts", re.escape(pid)]


def image_feature_missing(df):
    i = _inc(df)
    df.at[i, "kl_img_3"] = ""
    return [r"kl_img_3", rf"row {i + 2}", r"missing for an included patient"]


def negative_followup(df):
    i = _inc(df)
    df.loc[df["patient_id"] == df.at[i, "patient_id"], "fracture_followup_months"] = "-3.0"
    return [r"fracture_followup_months", rf"row {i + 2}", r"-3"]


def duplicated_knee(df):
    i = _inc(df)
    pid = df.at[i, "patient_id"]
    rows = df.index[df["patient_id"] == pid]
    df.at[rows[-1], "knee_side"] = df.at[rows[0], "knee_side"]
    return [r"knee_side", rf"row {rows[-1] + 2}", r"duplicated knee record", re.escape(pid)]


def patient_value_differs_between_knees(df):
    i = _inc(df)
    pid = df.at[i, "patient_id"]
    rows = df.index[df["patient_id"] == pid]
    df.at[rows[-1], "ctx_ng_ml"] = "1.234"
    return [r"ctx_ng_ml", rf"row {rows[-1] + 2}", r"differs between the knee rows"]


def included_patient_too_old(df):
    i = _inc(df)
    df.loc[df["patient_id"] == df.at[i, "patient_id"], "age"] = "95"
    return [r"age", rf"row {i + 2}", r"18-90"]


def death_and_fracture_both_true(df):
    i = _inc(df)
    rows = df["patient_id"] == df.at[i, "patient_id"]
    df.loc[rows, ["new_fragility_fracture", "death_without_fracture"]] = "true"
    return [
        r"death_without_fracture",
        rf"row {i + 2}",
        r"true together with new_fragility_fracture",
    ]


def competing_event_column_absent(df):
    del df["death_without_fracture"]
    return [r"death_without_fracture", r"competing-risk analysis"]


def encoder_trained_on_an_evaluated_patient(df):
    i = _inc(df)
    df.loc[df["patient_id"] == df.at[i, "patient_id"], "kl_encoder_training"] = "true"
    return [
        r"kl_encoder_training",
        rf"row {i + 2}",
        r"fine-tuning set of the encoder",
        r"optimistic",
    ]


CASES: list[Callable[[pd.DataFrame], list[str]]] = [
    t_score_out_of_range,
    kl_grade_5,
    visit_month_not_planned,
    patient_in_both_cohorts,
    image_feature_missing,
    negative_followup,
    duplicated_knee,
    patient_value_differs_between_knees,
    included_patient_too_old,
    death_and_fracture_both_true,
    competing_event_column_absent,
    encoder_trained_on_an_evaluated_patient,
]


def _snapshot(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in d.rglob("*")
        if p.is_file()
    }


@pytest.mark.parametrize("case", [pytest.param(c, id=c.__name__) for c in CASES])
def test_bad_input_is_rejected_clearly_and_writes_nothing(clinical_text, tmp_path, case):
    df = clinical_text.copy()
    expected = case(df)
    clinical = tmp_path / "clinical.csv"
    df.to_csv(clinical, index=False, lineterminator="\n")
    out = tmp_path / "out"
    before = _snapshot(tmp_path)
    res = CliRunner().invoke(
        main, ["run", SLUG, "-c", str(clinical), "-o", str(out), "--no-render", "-q"]
    )
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        pytest.fail(
            "traceback instead of a message:\n" + "".join(traceback.format_exception(res.exception))
        )
    assert res.exit_code == 1, res.output
    assert res.output.startswith("studyval: error: "), res.output
    assert "clinical.csv" in res.output
    for pattern in expected:
        assert re.search(pattern, res.output), f"{pattern!r} not in:\n{res.output}"
    assert not out.exists()
    assert _snapshot(tmp_path) == before
