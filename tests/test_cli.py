"""The command line as a user runs it: exit codes, messages, nothing written on error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main
from studyval.synthetic.ovcf_chronicity import generate


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return generate().write(tmp_path_factory.mktemp("inputs"))


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_ok(inputs):
    res = invoke(
        "validate",
        "ovcf-chronicity",
        "--clinical",
        str(inputs["clinical"]),
        "--predictions",
        str(inputs["predictions"]),
    )
    assert res.exit_code == 0, res.output
    assert "valid against the ovcf-chronicity dictionary 1.0.0" in res.output


def test_validate_bad_clinical_exits_1_with_file_column_row_rule(inputs, tmp_path):
    frame = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    frame.loc[4, "chronicity"] = "subacute"
    bad = tmp_path / "clinical.csv"
    frame.to_csv(bad, index=False)
    res = invoke("validate", "ovcf-chronicity", "--clinical", str(bad))
    assert res.exit_code == 1
    assert "studyval: error: 1 violation found:" in res.output
    assert (
        "clinical.csv, column 'chronicity', row 6: not an allowed level (acute, chronic); "
        "did you mean 'acute'? (found 'subacute')" in res.output
    )


def test_run_bad_input_exits_1_and_writes_nothing(inputs, tmp_path):
    frame = pd.read_csv(inputs["predictions"], dtype=str, keep_default_na=False)
    frame.loc[0, "score"] = "inf"
    bad = tmp_path / "predictions.csv"
    frame.to_csv(bad, index=False)
    out = tmp_path / "out"
    res = invoke(
        "run",
        "ovcf-chronicity",
        "-c",
        str(inputs["clinical"]),
        "-p",
        str(bad),
        "-o",
        str(out),
        "-q",
    )
    assert res.exit_code == 1
    assert (
        "column 'score', row 2: must be finite" in res.output
        or "column 'score', row 2" in res.output
    )
    assert not out.exists()


def test_unknown_protocol_suggests(inputs, tmp_path):
    res = invoke(
        "run",
        "ovcf-chronicty",
        "-c",
        str(inputs["clinical"]),
        "-p",
        str(inputs["predictions"]),
        "-o",
        str(tmp_path / "o"),
    )
    assert res.exit_code == 1
    assert "did you mean 'ovcf-chronicity'?" in res.output


def test_usage_error_exits_2():
    res = invoke("run", "ovcf-chronicity")
    assert res.exit_code == 2


def test_run_without_render_prints_bundle(inputs, tmp_path):
    out = tmp_path / "bundle"
    res = invoke(
        "run",
        "ovcf-chronicity",
        "-c",
        str(inputs["clinical"]),
        "-p",
        str(inputs["predictions"]),
        "-o",
        str(out),
        "--no-render",
        "-q",
    )
    assert res.exit_code == 0, res.output
    assert (out / "manifest.json").is_file()
    assert f"bundle: {out}" in res.output


def test_synthetic_writes_inputs_and_truth(tmp_path):
    res = invoke("synthetic", "ovcf-chronicity", "--out", str(tmp_path))
    assert res.exit_code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"clinical.csv", "predictions.csv", "truth.json"}


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "studyval.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "studyval" in out.stdout


def test_slug_is_not_taken_for_a_folder_of_that_name(tmp_path, monkeypatch):
    """`studyval synthetic msk-aging -o msk-aging` makes a folder named like the slug; the slug
    must still name the bundled plan and dictionary."""
    from click.testing import CliRunner

    from studyval.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert (
        runner.invoke(main, ["synthetic", "refracture-pvp", "-o", "refracture-pvp"]).exit_code == 0
    )
    res = runner.invoke(main, ["validate", "refracture-pvp", "-c", "refracture-pvp/clinical.csv"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        pytest.param("{oops", "invalid JSON", id="manifest-not-json"),
        pytest.param("[]", "a JSON object is expected", id="manifest-not-an-object"),
    ],
)
def test_damaged_manifest_is_a_clear_error(tmp_path, content, rule):
    from click.testing import CliRunner

    from studyval.cli import main

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(content)
    out = tmp_path / "figs"
    res = CliRunner().invoke(
        main, ["figures", "ovcf-chronicity", "--bundle", str(bundle), "--out", str(out)]
    )
    assert res.exit_code == 1
    assert "Traceback" not in res.output and rule in res.output and "manifest.json" in res.output
    assert not out.exists()
