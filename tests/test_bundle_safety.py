"""Never delete a user's file, never publish an identifier, no traceback on a file system fault.

Each case runs ``studyval run ovcf-chronicity ... --no-render`` through click's CliRunner
(in process) as a user would, and asserts the exit code, one message naming the path and
the rule, no traceback, and that every file that was there before is still there with the
same bytes. Refusals happen before the analysis, so most cases take well under a second;
one module-scoped bundle is built for the cases that replace or render a bundle.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import traceback
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval import bundle as bundle_mod
from studyval.bundle import MARKER, csv_safe_text, foreign_files, is_bundle, write_table
from studyval.cli import main
from studyval.privacy import PrivacyError, refuse_if_identifiers, scan_for_input_identifiers
from studyval.synthetic.ovcf_chronicity import generate

SLUG = "ovcf-chronicity"


def tree(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (hidden files included), by relative path."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def invoke(*args: str | Path):
    res = CliRunner().invoke(main, [str(a) for a in args])
    if res.exc_info and res.exc_info[0] is not SystemExit:
        raise AssertionError("".join(traceback.format_exception(*res.exc_info)))
    return res


def run(clinical: Path, predictions: Path, out: Path | str, *extra: str):
    return invoke(
        "run", SLUG, "-c", clinical, "-p", predictions, "-o", out, "--no-render", "-q", *extra
    )


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    return generate().write(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, inputs) -> Path:
    """One bundle of the demo inputs (not rendered), copied by the cases that need one."""
    out = tmp_path_factory.mktemp("built") / "bundle"
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 0, res.output
    return out


def copy_bundle(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, symlinks=True)
    return dest


def no_hidden_leftovers(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    assert not left, left


# ----------------------------------------------------------------------------- the bundle marker


def test_bundle_carries_its_marker_and_replaces_itself(built, inputs, tmp_path):
    out = copy_bundle(built, tmp_path / "out")
    assert (out / MARKER).is_file() and is_bundle(out) and foreign_files(out) == []
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 0, res.output
    assert tree(out) == tree(built)
    no_hidden_leftovers(tmp_path)


@pytest.mark.parametrize(
    "where",
    [
        pytest.param("both", id="inputs-inside-old-bundle"),
        pytest.param("clinical", id="clinical-inside-old-bundle"),
        pytest.param("tables/flow.csv", id="input-is-the-old-bundles-own-table"),
    ],
)
def test_inputs_inside_the_old_bundle_are_never_deleted(built, inputs, tmp_path, where):
    out = copy_bundle(built, tmp_path / "out")
    if where == "tables/flow.csv":
        clinical, predictions = out / "tables" / "flow.csv", inputs["predictions"]
    else:
        clinical = out / "clinical.csv"
        shutil.copy(inputs["clinical"], clinical)
        predictions = inputs["predictions"]
        if where == "both":
            predictions = out / "predictions.csv"
            shutil.copy(inputs["predictions"], predictions)
    before = tree(out)
    res = run(clinical, predictions, out)
    assert res.exit_code == 1
    assert "lies inside --out" in res.output and "never deletes an input" in res.output
    assert tree(out) == before


def test_inputs_beside_the_old_bundle_are_kept(built, inputs, tmp_path):
    out = copy_bundle(built, tmp_path / "out")
    clinical = shutil.copy(inputs["clinical"], tmp_path / "clinical.csv")
    predictions = shutil.copy(inputs["predictions"], tmp_path / "predictions.csv")
    res = run(clinical, predictions, out)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinical.csv", "out", "predictions.csv"]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param("notes.txt", id="user-file-at-top"),
        pytest.param("tables/my_analysis.csv", id="user-file-among-tables"),
        pytest.param("figures/mine/fig.png", id="user-folder-among-figures"),
        pytest.param("report/comments.docx", id="user-file-beside-report"),
    ],
)
def test_a_bundle_holding_a_users_file_is_refused(built, inputs, tmp_path, extra):
    out = copy_bundle(built, tmp_path / "out")
    (out / extra).parent.mkdir(parents=True, exist_ok=True)
    (out / extra).write_bytes(b"mine")
    before = tree(out)
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1
    assert "holds files studyval did not write" in res.output
    assert Path(extra).name in res.output
    assert tree(out) == before


def test_a_folder_that_is_no_bundle_is_refused(inputs, tmp_path):
    out = tmp_path / "results"
    out.mkdir()
    (out / "manifest.json").write_text('{"my": "own manifest"}')
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1 and "is not a studyval results bundle" in res.output
    assert (out / "manifest.json").read_text() == '{"my": "own manifest"}'


def test_a_bundle_of_an_earlier_version_without_marker_is_replaced(built, inputs, tmp_path):
    out = copy_bundle(built, tmp_path / "out")
    (out / MARKER).unlink()
    assert is_bundle(out)
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 0, res.output
    assert (out / MARKER).is_file()


def test_a_linked_out_keeps_its_link_and_leaves_no_stray_link(built, inputs, tmp_path):
    target = copy_bundle(built, tmp_path / "target")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    for _ in range(2):
        res = run(inputs["clinical"], inputs["predictions"], link)
        assert res.exit_code == 0, res.output
    assert link.is_symlink() and is_bundle(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "target"]


def test_a_run_killed_between_the_two_renames_gets_its_bundle_back(built, inputs, tmp_path):
    out = tmp_path / "out"
    # what swap_into_place leaves when killed after the first rename: only the hidden old bundle
    dead_pid = 2**22 + 12345
    hidden = copy_bundle(built, tmp_path / f".out.old-{dead_pid}-deadbeef")
    before = tree(hidden)
    # any later command that checks --out restores it first, even one that then fails
    res = run(inputs["clinical"], tmp_path / "missing.csv", out)
    assert res.exit_code == 1
    assert tree(out) == before and not hidden.exists()


def test_stale_old_bundle_holding_a_users_file_is_left_alone(built, inputs, tmp_path):
    dead_pid = 2**22 + 12346
    hidden = copy_bundle(built, tmp_path / f".out.old-{dead_pid}-deadbeef")
    (hidden / "notes.txt").write_text("mine")
    res = run(inputs["clinical"], inputs["predictions"], tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert (hidden / "notes.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- --out checked first


@pytest.mark.parametrize(
    ("out", "message"),
    [
        pytest.param("afile/out", "afile is a file, not a folder", id="parent-is-a-file"),
        pytest.param("afile", "exists and is not a folder", id="out-is-a-file"),
    ],
)
def test_a_bad_out_is_found_before_the_analysis(inputs, tmp_path, monkeypatch, out, message):
    (tmp_path / "afile").write_text("x")
    monkeypatch.chdir(tmp_path)
    import studyval.protocols.ovcf_chronicity as proto

    monkeypatch.setattr(proto, "analyse", lambda *a, **k: pytest.fail("analysis ran"))
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1 and message in res.output
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize(
    ("code", "message"),
    [
        pytest.param(errno.EROFS, "the file system is read-only", id="read-only-parent"),
        pytest.param(errno.EACCES, "permission denied", id="no-permission"),
    ],
)
def test_an_unwritable_parent_is_one_message(inputs, tmp_path, monkeypatch, code, message):
    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(tmp_path))

    monkeypatch.setattr(bundle_mod.tempfile, "mkdtemp", refuse)
    res = run(inputs["clinical"], inputs["predictions"], tmp_path / "new" / "out")
    assert res.exit_code == 1
    assert "is not writable" in res.output and message in res.output
    assert not (tmp_path / "new").exists()


def test_a_mount_point_is_refused(built, inputs, tmp_path, monkeypatch):
    out = copy_bundle(built, tmp_path / "out")
    real = os.path.ismount
    monkeypatch.setattr(bundle_mod.os.path, "ismount", lambda p: Path(p) == out or real(p))
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1 and "is a mount point" in res.output


def test_empty_out_is_a_usage_error(inputs):
    res = run(inputs["clinical"], inputs["predictions"], "")
    assert res.exit_code == 2 and "not the current folder" in res.output


@pytest.mark.parametrize(
    ("where", "code", "message"),
    [
        pytest.param(
            "savefig", errno.ENOSPC, "no space left on the device", id="disk-full-figures"
        ),
        pytest.param("swap", errno.EBUSY, "Device or resource busy", id="busy-in-the-swap"),
    ],
)
def test_a_fault_while_writing_keeps_the_previous_bundle(
    built, inputs, tmp_path, monkeypatch, where, code, message
):
    out = copy_bundle(built, tmp_path / "out")
    before = tree(out)

    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code), "x")

    if where == "savefig":
        import matplotlib.figure

        monkeypatch.setattr(matplotlib.figure.Figure, "savefig", fail)
    else:
        monkeypatch.setattr(bundle_mod, "swap_into_place", fail)
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1, res.output
    assert "cannot write the bundle" in res.output and message in res.output
    assert "previous bundle there is kept" in res.output
    assert tree(out) == before
    no_hidden_leftovers(tmp_path)


# ----------------------------------------------------------------------------- render


def test_render_of_a_manifest_without_protocol_is_one_message(built, tmp_path):
    out = copy_bundle(built, tmp_path / "out")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["protocol"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    res = invoke("render", out, "--engine", "jupyter")
    assert res.exit_code == 1 and "names no protocol" in res.output


def test_a_failed_render_keeps_the_previous_report(built, tmp_path, monkeypatch):
    out = copy_bundle(built, tmp_path / "out")
    (out / "report").mkdir()
    (out / "report" / "report.html").write_text("<p>the previous report</p>")
    from studyval import render
    from studyval.errors import RenderError

    def broken(*args, **kwargs):
        raise RenderError("cell 3 failed")

    monkeypatch.setattr(render, "render_report", broken)
    res = invoke("render", out, "--engine", "jupyter")
    assert res.exit_code == 3 and "cell 3 failed" in res.output
    assert (out / "report" / "report.html").read_text() == "<p>the previous report</p>"
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [MARKER]


# ----------------------------------------------------------------------------- --imaging


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param({"manifest.json": b"not json"}, "not valid JSON", id="manifest-not-json"),
        pytest.param({"manifest.json": b"[1, 2]"}, "a JSON object is expected", id="manifest-list"),
        pytest.param(
            {"manifest.json": b"{}", "tables/x.csv": b"\x89PNG\x00\x01\x02"},
            "not UTF-8 text",
            id="binary-csv",
        ),
        pytest.param(
            {"manifest.json": b"{}", "figures/x.png": b"<svg></svg>"},
            "not a PNG file",
            id="png-that-is-not",
        ),
        pytest.param({"manifest.json": b"{}", "weights.pt": b"x"}, "only", id="weights-file"),
    ],
)
def test_imaging_output_is_checked(inputs, tmp_path, content, message):
    imaging = tmp_path / "imaging"
    for rel, data in content.items():
        (imaging / rel).parent.mkdir(parents=True, exist_ok=True)
        (imaging / rel).write_bytes(data)
    res = run(inputs["clinical"], inputs["predictions"], tmp_path / "out", "--imaging", imaging)
    assert res.exit_code == 1 and message in res.output
    assert not (tmp_path / "out").exists()


def test_imaging_given_a_file_is_exit_1_not_a_usage_error(inputs, tmp_path):
    res = run(
        inputs["clinical"], inputs["predictions"], tmp_path / "out", "--imaging", inputs["clinical"]
    )
    assert res.exit_code == 1 and "is a file" in res.output


# ----------------------------------------------------------------------------- synthetic and demo


def test_synthetic_never_overwrites_a_users_table(tmp_path):
    mine = tmp_path / "clinical.csv"
    mine.write_text("patient_id\nmy real patient\n")
    res = invoke("synthetic", SLUG, "-o", tmp_path)
    assert res.exit_code == 1 and "exists with other contents" in res.output
    assert mine.read_text() == "patient_id\nmy real patient\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clinical.csv"]


def test_synthetic_rerun_into_the_same_folder_is_fine(tmp_path):
    for _ in range(2):
        assert invoke("synthetic", SLUG, "-o", tmp_path).exit_code == 0


def test_the_imaging_demo_never_removes_a_folder_it_did_not_make(tmp_path):
    pytest.importorskip("torch")
    from studyval.errors import StudyvalError
    from studyval.pipeline import imaging_chain

    work = tmp_path / "imaging-run"
    work.mkdir()
    (work / "mine.txt").write_text("mine")
    with pytest.raises(StudyvalError, match="was not made by the imaging demo"):
        imaging_chain(SLUG, {"clinical": tmp_path / "c.csv"}, work, seed=1, progress=print)
    assert (work / "mine.txt").read_text() == "mine"


# ----------------------------------------------------------------------------- privacy and CSV


def test_a_bundle_holding_an_identifier_is_not_published(inputs, tmp_path, monkeypatch):
    import studyval.protocols.ovcf_chronicity as proto

    name = pd.read_csv(inputs["clinical"])["patient_name"].iloc[0]
    real = proto.analyse

    def leaky(cohort, plan, **kwargs):
        result = real(cohort, plan, **kwargs)
        result.tables["flow"] = result.tables["flow"].assign(note=f"seen: {name}")
        return result

    monkeypatch.setattr(proto, "analyse", leaky)
    res = run(inputs["clinical"], inputs["predictions"], tmp_path / "out")
    assert res.exit_code == 1
    assert "refusing to publish the bundle" in res.output
    assert "clinical table: patient_name" in res.output and "tables/flow.csv" in res.output
    assert name not in res.output
    assert list(tmp_path.iterdir()) == []


def test_the_manifest_records_the_scan_and_neutral_input_names(built):
    manifest = json.loads((built / "manifest.json").read_text())
    assert manifest["inputs"]["clinical"]["file"] == "clinical.csv"
    scan = manifest["privacy"]["identifier_scan"]
    assert scan["hits"] == 0 and scan["files_scanned"] > 10
    assert scan["distinct_values_scanned"]["clinical table: patient_name"] > 0


def test_the_manifest_never_records_a_users_file_name(inputs, tmp_path):
    named = tmp_path / "ZHANG_Wei_MRN55512345_clinical.csv"
    shutil.copy(inputs["clinical"], named)
    res = run(named, inputs["predictions"], tmp_path / "out")
    assert res.exit_code == 0, res.output
    text = (tmp_path / "out" / "manifest.json").read_text()
    assert "ZHANG" not in text and "55512345" not in text


@pytest.mark.parametrize(
    ("text", "found"),
    [
        pytest.param("ZHANG Wei came", True, id="upper-case-and-space"),
        pytest.param("zhang_wei", True, id="underscore"),
        pytest.param("Zhang^Wei", True, id="dicom-caret"),
        pytest.param("Zhangwei", False, id="joined-is-another-token"),
        pytest.param("P00012", False, id="id-inside-a-longer-id"),
        pytest.param("see P0001.", True, id="id-before-a-full-stop"),
    ],
)
def test_identifier_scan_matches_whole_tokens(tmp_path, text, found):
    (tmp_path / "t.csv").write_text(text)
    scan = scan_for_input_identifiers(
        tmp_path, {"clinical: patient_name": ["Zhang Wei"], "clinical: patient_id": ["P0001", "P1"]}
    )
    assert scan.ok is not found
    assert scan.too_short == {"clinical: patient_name": 0, "clinical: patient_id": 1}
    if found:
        with pytest.raises(PrivacyError, match="values of clinical: "):
            refuse_if_identifiers(scan)


def test_identifier_scan_ignores_embedded_images(tmp_path):
    import base64

    payload = base64.b64encode(b"P0001 " * 20).decode()
    (tmp_path / "r.html").write_text(f'<img src="data:image/png;base64,{payload}">')
    assert scan_for_input_identifiers(tmp_path, {"x": ["P0001"]}).ok


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")', id="formula"),
        pytest.param("+1+2", "'+1+2", id="plus"),
        pytest.param("@SUM(A1)", "'@SUM(A1)", id="at"),
        pytest.param("-2+3", "'-2+3", id="minus-formula"),
        pytest.param("\tcmd", "'\tcmd", id="tab"),
        pytest.param("-0.5", "-0.5", id="negative-number"),
        pytest.param("+1e-3", "+1e-3", id="signed-number"),
        pytest.param("acute", "acute", id="plain-text"),
        pytest.param(3, 3, id="not-text"),
    ],
)
def test_csv_cells_never_run_as_formulas(value, expected):
    assert csv_safe_text(value) == expected


def test_write_table_neutralises_formulas_in_csv_only(tmp_path):
    frame = pd.DataFrame(
        {
            "text": ["=1+1", "-0.5", None],
            "cat": pd.Categorical(["@x", "a", "a"]),
            "n": [1, -2, 3],
        }
    )
    write_table(frame, tmp_path, "t")
    csv = (tmp_path / "t.csv").read_text().splitlines()
    assert csv == ["text,cat,n", "'=1+1,'@x,1", "-0.5,a,-2", ",a,3"]
    assert pd.read_parquet(tmp_path / "t.parquet")["text"].iloc[0] == "=1+1"
