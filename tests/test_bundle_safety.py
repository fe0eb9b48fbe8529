"""Never delete a user's file, never publish an identifier, no traceback on a file system fault.

Each case runs ``studyval run ovcf-chronicity ... --no-render`` through click's CliRunner
(in process) as a user would, and asserts the exit code, one message naming the path and
the rule, no traceback, and that every file that was there before is still there with the
same bytes. Refusals happen before the analysis, so most cases take well under a second;
the cases that replace or render a bundle copy the session's bundle (tests/conftest.py).
"""

from __future__ import annotations

import dataclasses
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
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of ovcf-chronicity (tests/conftest.py)."""
    return protocol_inputs(SLUG)


@pytest.fixture(scope="module")
def small(minimal_plan) -> tuple[str, str]:
    """``--plan`` with a plan of few analyses (tests/conftest.py ``minimal_plan``), for the cases
    whose subject is what a run does with the files around it, not the bundle's numbers."""
    return ("--plan", str(minimal_plan(SLUG)))


@pytest.fixture(scope="module")
def built(protocol_bundle) -> Path:
    """The session's bundle of the demo inputs (not rendered, the bundled plan, as ``studyval
    run`` makes it), copied by the cases that need one."""
    return protocol_bundle(SLUG)


def copy_bundle(built: Path, dest: Path) -> Path:
    shutil.copytree(built, dest, symlinks=True)
    return dest


def no_hidden_leftovers(folder: Path) -> None:
    left = [p.name for p in folder.iterdir() if p.name.startswith(".") and ".tmp-" in p.name]
    assert not left, left


# ----------------------------------------------------------------------------- the bundle marker


def test_bundle_carries_its_marker_and_replaces_itself(built, inputs, tmp_path, small):
    """A bundle is marked as one, and a run into it replaces it whole: the session's bundle
    (the bundled plan) replaced by a run of the minimal plan is, file for file and byte for
    byte, the minimal plan's bundle made in an empty folder: none of the old bundle's tables
    and figures stays. (The bundled plan run again over its own bundle, giving the same bytes
    in new files, is test_pipeline's ``test_same_inputs_give_byte_identical_bundle``.)"""
    fresh = tmp_path / "fresh"
    assert run(inputs["clinical"], inputs["predictions"], fresh, *small).exit_code == 0
    out = copy_bundle(built, tmp_path / "out")
    assert (out / MARKER).is_file() and is_bundle(out) and foreign_files(out) == []
    assert set(tree(out)) > set(tree(fresh))  # the old bundle has more than the new one
    res = run(inputs["clinical"], inputs["predictions"], out, *small)
    assert res.exit_code == 0, res.output
    assert tree(out) == tree(fresh)
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


def test_inputs_beside_the_old_bundle_are_kept(built, inputs, tmp_path, small):
    out = copy_bundle(built, tmp_path / "out")
    clinical = shutil.copy(inputs["clinical"], tmp_path / "clinical.csv")
    predictions = shutil.copy(inputs["predictions"], tmp_path / "predictions.csv")
    res = run(clinical, predictions, out, *small)
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


def test_a_bundle_of_an_earlier_version_without_marker_is_replaced(built, inputs, tmp_path, small):
    out = copy_bundle(built, tmp_path / "out")
    (out / MARKER).unlink()
    assert is_bundle(out)
    res = run(inputs["clinical"], inputs["predictions"], out, *small)
    assert res.exit_code == 0, res.output
    assert (out / MARKER).is_file()


def test_a_linked_out_keeps_its_link_and_leaves_no_stray_link(built, inputs, tmp_path, small):
    target = copy_bundle(built, tmp_path / "target")
    link = tmp_path / "link"
    link.symlink_to(target, target_is_directory=True)
    for _ in range(2):
        res = run(inputs["clinical"], inputs["predictions"], link, *small)
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


def test_stale_old_bundle_holding_a_users_file_is_left_alone(built, inputs, tmp_path, small):
    dead_pid = 2**22 + 12346
    hidden = copy_bundle(built, tmp_path / f".out.old-{dead_pid}-deadbeef")
    (hidden / "notes.txt").write_text("mine")
    res = run(inputs["clinical"], inputs["predictions"], tmp_path / "out", *small)
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

    ran = dataclasses.replace(proto.PROTOCOL, analyse=lambda *a, **k: pytest.fail("analysis ran"))
    monkeypatch.setattr(proto, "PROTOCOL", ran)
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
    built, inputs, tmp_path, monkeypatch, where, code, message, small
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
    res = run(inputs["clinical"], inputs["predictions"], out, *small)
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


def test_a_bundle_holding_an_identifier_is_not_published(inputs, tmp_path, monkeypatch, small):
    import studyval.protocols.ovcf_chronicity as proto

    name = pd.read_csv(inputs["clinical"])["patient_name"].iloc[0]
    real = proto.analyse

    def leaky(cohort, plan, **kwargs):
        result = real(cohort, plan, **kwargs)
        result.tables["flow"] = result.tables["flow"].assign(note=f"seen: {name}")
        return result

    monkeypatch.setattr(proto, "PROTOCOL", dataclasses.replace(proto.PROTOCOL, analyse=leaky))
    res = run(inputs["clinical"], inputs["predictions"], tmp_path / "out", *small)
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


def test_the_manifest_never_records_a_users_file_name(inputs, tmp_path, small):
    named = tmp_path / "ZHANG_Wei_MRN55512345_clinical.csv"
    shutil.copy(inputs["clinical"], named)
    res = run(named, inputs["predictions"], tmp_path / "out", *small)
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


# ----------------------------------------------------------------------------- second hostile round


def test_a_loop_of_links_is_one_message(inputs, tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    for out in (tmp_path / "a", tmp_path / "a" / "out"):
        res = run(inputs["clinical"], inputs["predictions"], out)
        assert res.exit_code == 1 and "loop of symbolic links" in res.output, res.output
    res = run(tmp_path / "a", inputs["predictions"], tmp_path / "out")
    assert res.exit_code == 1 and "Traceback" not in res.output


def test_a_copied_marker_does_not_make_a_users_folder_a_bundle(built, inputs, tmp_path):
    out = tmp_path / "u"
    out.mkdir()
    shutil.copy(built / MARKER, out / MARKER)
    (out / "manifest.json").write_text('{"tool": "spss"}')
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1 and "manifest.json (not written by studyval)" in res.output
    assert (out / "manifest.json").read_text() == '{"tool": "spss"}'


def test_a_table_edited_after_the_run_is_never_overwritten(built, inputs, tmp_path):
    out = copy_bundle(built, tmp_path / "out")
    with (out / "tables" / "auc.csv").open("a") as fh:
        fh.write("reviewer comment\n")
    before = tree(out)
    res = run(inputs["clinical"], inputs["predictions"], out)
    assert res.exit_code == 1 and "tables/auc.csv (edited after the run)" in res.output
    assert tree(out) == before


def test_a_users_look_alike_hidden_folder_is_never_removed(inputs, tmp_path):
    mine = tmp_path / ".res.tmp-999999-backup"
    mine.mkdir()
    (mine / "thesis.docx").write_bytes(b"mine")
    (tmp_path / "bad.csv").write_text("x\n")
    res = run(tmp_path / "bad.csv", inputs["predictions"], tmp_path / "res")
    assert res.exit_code == 1
    assert (mine / "thesis.docx").read_bytes() == b"mine"
    # a stale work folder of studyval's own (marker inside, dead process) is removed
    dead = tmp_path / f".res.tmp-{2**22 + 7}-0123abcd"
    dead.mkdir()
    (dead / MARKER).write_text("x")
    res = run(tmp_path / "bad.csv", inputs["predictions"], tmp_path / "res")
    assert not dead.exists() and (mine / "thesis.docx").is_file()


def test_a_name_with_glob_characters_gets_its_bundle_back(built, inputs, tmp_path):
    hidden = copy_bundle(built, tmp_path / f".r[1].old-{2**22 + 8}-deadbeef")
    before = tree(hidden)
    res = run(inputs["clinical"], tmp_path / "missing.csv", tmp_path / "r[1]")
    assert res.exit_code == 1
    assert tree(tmp_path / "r[1]") == before


def test_a_file_saved_into_the_bundle_during_the_run_is_kept(built, inputs, tmp_path, small):
    from studyval.errors import StudyvalError
    from studyval.pipeline import run_protocol
    from studyval.plan import load_plan

    out = copy_bundle(built, tmp_path / "out")

    def progress(message: str) -> None:
        if message == "drawing figures":
            (out / "notes.txt").write_text("written while the run was working")

    with pytest.raises(StudyvalError, match=r"appeared in it during the run \(notes\.txt\)"):
        run_protocol(
            SLUG,
            clinical=inputs["clinical"],
            predictions=inputs["predictions"],
            out=out,
            render=False,
            progress=progress,
            plan=load_plan(small[1], slug=SLUG),
        )
    assert (out / "notes.txt").read_text() == "written while the run was working"
    assert (out / MARKER).is_file() and foreign_files(out) == ["notes.txt"]
    no_hidden_leftovers(tmp_path)
    assert not [p for p in tmp_path.iterdir() if ".old-" in p.name]


def test_a_killed_render_leaves_the_bundle_replaceable(built, inputs, tmp_path, small):
    out = copy_bundle(built, tmp_path / "out")
    killed = tmp_path / f".out.render-{2**22 + 9}-0badc0de"
    killed.mkdir()
    (killed / MARKER).write_text("studyval render in progress\n")
    (killed / "report.html").write_text("<p>half</p>")
    res = run(inputs["clinical"], inputs["predictions"], out, *small)
    assert res.exit_code == 0, res.output
    assert not killed.exists()


def test_imaging_tables_are_neutralised_and_scanned(inputs, tmp_path, small):
    """With the minimal plan (``small``): the imaging folder is checked, copied (its CSV cells
    neutralised) and scanned with the rest of the bundle whatever analyses the plan names, so
    the full plan's analyses would add nothing to what is asserted of it."""
    imaging = tmp_path / "imaging"
    (imaging / "tables").mkdir(parents=True)
    (imaging / "manifest.json").write_text("{}")
    (imaging / "tables" / "n.csv").write_text('panel,note\n1,"=HYPERLINK(""http://e"",""x"")"\n')
    out = tmp_path / "out"
    res = run(inputs["clinical"], inputs["predictions"], out, "--imaging", imaging, *small)
    assert res.exit_code == 0, res.output
    text = (tmp_path / "out" / "imaging" / "tables" / "n.csv").read_text()
    assert "'=HYPERLINK" in text
    assert '"=HYPERLINK' in (imaging / "tables" / "n.csv").read_text()  # the input is untouched


def _scan(tmp_path, name: str, data: bytes, identifiers: dict) -> bool:
    (tmp_path / name).write_bytes(data)
    return scan_for_input_identifiers(tmp_path / name, identifiers).ok


def _png_with_text(text: str) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"tEXt", b"Comment\x00" + text.encode())
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


NAMES = {"clinical table: patient_name": ["Huang^Li", "黄丽", "José^García"]}


@pytest.mark.parametrize(
    ("name", "data", "identifiers"),
    [
        pytest.param("x.pdf", b"%PDF-1.4\nBT (Huang Li) Tj ET\n%%EOF", NAMES, id="pdf-text"),
        pytest.param("x.png", _png_with_text("patient Huang Li"), NAMES, id="png-text-chunk"),
        pytest.param("x.csv", "note\n患者黄丽\n".encode(), NAMES, id="cjk-name-in-a-sentence"),
        pytest.param(
            "x.csv", "note\nJose\u0301 Garci\u0301a\n".encode(), NAMES, id="decomposed-accents"
        ),
        pytest.param("x.csv", "note\nHu\u200bang Li\n".encode(), NAMES, id="zero-width-space"),
        pytest.param(
            "x.csv",
            b"note\nMRN 44524599\n",
            {"clinical table: medical_record_number": ["0044524599"]},
            id="mrn-without-leading-zeros",
        ),
        pytest.param(
            "x.csv",
            "note\nＨＵＡＮＧ ＬＩ\n".encode(),
            NAMES,
            id="full-width-letters",
        ),
        pytest.param("x.html", b"<p>Huang<b>Li</b></p>", NAMES, id="html-name-split-by-tags"),
        pytest.param("x.html", b'<img alt="Huang Li" src="a.png">', NAMES, id="html-alt-text"),
    ],
)
def test_identifier_scan_finds_what_a_reader_sees(tmp_path, name, data, identifiers):
    assert not _scan(tmp_path, name, data, identifiers)


def test_html_tag_names_are_not_read_as_words(tmp_path):
    """``(Qingyu Huang)</li><li>`` is not the name Huang Li: tag names are markup, not text."""
    page = b"<ul><li>Sponsor: (Qingyu Huang)</li>\n<li>Design: cohort</li></ul>"
    (tmp_path / "r.html").write_bytes(page)
    assert scan_for_input_identifiers(tmp_path / "r.html", NAMES).ok


def test_numeric_ids_are_not_found_in_svg_geometry_or_counts(tmp_path):
    svg = b'<svg><path d="M 1000 1001 L 1002 1003"/><text x="1004">n = 1005</text></svg>'
    ids = {"clinical table: patient_id": [str(i) for i in range(1000, 1200)]}
    (tmp_path / "f.svg").write_bytes(svg)
    scan = scan_for_input_identifiers(tmp_path / "f.svg", ids)
    assert scan.ok and scan.too_short == {"clinical table: patient_id": 200}
    long_ids = {"clinical table: patient_id": ["1000001"]}
    (tmp_path / "g.svg").write_bytes(b'<svg><text x="1">patient 1000001</text></svg>')
    assert not scan_for_input_identifiers(tmp_path / "g.svg", long_ids).ok


def test_a_date_of_birth_is_found_in_other_forms(inputs, tmp_path):
    from studyval.dictionary import load_dictionary, read_table
    from studyval.pipeline import _identifier_values

    clin = read_table(inputs["clinical"], "ovcf-chronicity")
    values = _identifier_values(clin, load_dictionary("ovcf-chronicity"), "clinical table")
    dob = clin["date_of_birth"].iloc[0]
    (tmp_path / "t.csv").write_text(f"note\nborn {dob.day:02d}/{dob.month:02d}/{dob.year}\n")
    scan = scan_for_input_identifiers(tmp_path / "t.csv", values)
    assert "clinical table: date_of_birth" in scan.hits
