"""How a study that is not a shipped protocol is found, started and recognised.

The generic types themselves are tested in test_study_type_diagnostic.py and
test_study_type_prognostic.py, the worked examples in test_example_*.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from studyval.cli import main
from studyval.errors import StudyvalError
from studyval.examples import EXAMPLES, _previous_example, write_example
from studyval.origin import MARKER_KEY, detect_origin, public_marker
from studyval.protocol import PROTOCOLS, is_shipped, protocol
from studyval.study_types import INIT_NAMES, STUDY_TYPES, type_module


def test_unknown_slug_without_type_points_to_plan() -> None:
    with pytest.raises(StudyvalError, match=r"--plan PLAN\.yml"):
        protocol("my-new-study")


def test_type_without_generic_protocol_is_named() -> None:
    with pytest.raises(StudyvalError, match="no generic protocol"):
        protocol("my-new-study", "multimodal_staging")
    with pytest.raises(StudyvalError, match="no generic protocol"):
        type_module("service_evaluation")


def test_shipped_slug_wins_over_type() -> None:
    assert protocol("ovcf-chronicity", "prediction_model") is protocol("ovcf-chronicity")
    assert all(is_shipped(s) for s in PROTOCOLS)
    assert not is_shipped("breast-cancer-diagnostic")


def test_every_init_name_has_a_type() -> None:
    assert set(INIT_NAMES.values()) == set(STUDY_TYPES)
    assert all(name not in PROTOCOLS for name in EXAMPLES)


def test_init_refuses_a_folder_with_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    res = CliRunner().invoke(main, ["init", "diagnostic-accuracy", "--out", str(tmp_path)])
    assert res.exit_code != 0
    assert "not an empty folder" in res.output
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_run_without_slug_or_plan_is_an_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        main, ["run", "-c", str(tmp_path / "c.csv"), "-o", str(tmp_path / "out")]
    )
    assert res.exit_code != 0
    assert "--plan" in res.output
    assert not (tmp_path / "out").exists()


def test_example_never_replaces_other_files(tmp_path: Path) -> None:
    mine = tmp_path / "study"
    (mine / "data").mkdir(parents=True)
    (mine / "plan.yml").write_text("slug: mine\n", encoding="utf-8")
    (mine / "data" / "clinical.csv").write_text("a\n1\n", encoding="utf-8")
    # no origin.json marker: not an example written earlier, even with replace_previous
    with pytest.raises(StudyvalError, match="not an empty folder"):
        write_example(next(iter(EXAMPLES)), mine, replace_previous=True)
    assert (mine / "plan.yml").read_text(encoding="utf-8") == "slug: mine\n"
    # a marker beside a file an example never writes: still refused
    (mine / "data" / "origin.json").write_text(
        json.dumps({MARKER_KEY: {"kind": "public"}}), encoding="utf-8"
    )
    assert _previous_example(mine)
    (mine / "analysis.R").write_text("# mine\n", encoding="utf-8")
    assert not _previous_example(mine)
    with pytest.raises(StudyvalError, match="not an empty folder"):
        write_example(next(iter(EXAMPLES)), mine, replace_previous=True)
    assert (mine / "analysis.R").is_file()


def test_public_marker_is_recognised_only_for_the_files_it_lists(tmp_path: Path) -> None:
    clinical = tmp_path / "clinical.csv"
    clinical.write_text("id,x\n1,2\n", encoding="utf-8")
    marker = public_marker({"clinical.csv": clinical.read_bytes()}, "a public data set (CC BY 4.0)")
    (tmp_path / "origin.json").write_text(json.dumps({MARKER_KEY: marker}), encoding="utf-8")
    found = detect_origin(clinical)
    assert found["kind"] == "public"
    assert "CC BY 4.0" in found["detail"]
    clinical.write_text("id,x\n1,3\n", encoding="utf-8")  # edited after it was written
    assert detect_origin(clinical)["kind"] == "user"
