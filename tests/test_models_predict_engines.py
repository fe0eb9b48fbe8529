"""Tests for predict_from_manifest: the local and Ray Data engines, resume, failures.

Oracles: ``studyval.dictionary.read_table(path, "predictions")`` (the prediction-table
contract); the SHA-256 of the files read; and exact equality: the table of an uninterrupted
local run in one process is the reference that every other run must reproduce bit for bit
(other worker counts, the Ray engine with 1 and 2 actors, a run resumed after a kill, a run
resumed across engines).
"""

from __future__ import annotations

import hashlib
import shutil
import time

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from kill_helpers import kill_when  # noqa: E402

from studyval.dictionary import read_table  # noqa: E402
from studyval.errors import InputValidationError, StudyvalError  # noqa: E402
from studyval.models.checkpoints import CheckpointError, sha256_file  # noqa: E402
from studyval.models.config import load_config  # noqa: E402
from studyval.models.imaging import load_image  # noqa: E402
from studyval.models.inference import PREDICTION_COLUMNS, predict_from_manifest  # noqa: E402
from studyval.models.manifest import write_phantom_manifest  # noqa: E402
from studyval.models.phantoms import spine_phantom, write_nifti  # noqa: E402
from studyval.models.training import phantom_training_data, train  # noqa: E402

N = 10
BROKEN = {8: "empty", 9: "missing_slice"}


@pytest.fixture(scope="module")
def cls_cfg():
    return load_config("densenet121_ovcf").smoke_version()


@pytest.fixture(scope="module")
def weights(cls_cfg, tmp_path_factory):
    x, y = phantom_training_data(cls_cfg, 2, seed=1)
    out = tmp_path_factory.mktemp("w")
    return train(cls_cfg, x, y, out_dir=out, epochs=1, progress=False).weights_path


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("study")
    splits = ("development", "internal", "external")
    return write_phantom_manifest(d, N, dicom_every=4, broken=BROKEN, splits=splits, seed=3)


@pytest.fixture(scope="module")
def reference(cls_cfg, weights, study, tmp_path_factory):
    """Local engine, everything in this process: the table every other run must reproduce."""
    out = tmp_path_factory.mktemp("ref")
    res = predict_from_manifest(
        cls_cfg, weights, study, out, engine="local", num_workers=0, batch_size=4, progress=False
    )
    return res


def test_table_passes_the_contract_with_failed_rows(reference, study):
    res = reference
    assert (res.n_cases, res.n_scored, res.n_skipped, res.n_failed) == (N, N, 0, 2)
    assert tuple(res.table.columns) == PREDICTION_COLUMNS
    typed = read_table(res.table_path, "predictions")  # raises on any violation
    assert list(typed["case_id"]) == [f"C{i:04d}" for i in range(N)]
    assert list(typed["split"])[:3] == ["development", "internal", "external"]
    ok = typed[typed["status"] == "ok"]
    assert len(ok) == N - 2 and ok["score"].between(0, 1).all()
    failed = typed.set_index("case_id").loc[["C0008", "C0009"]]
    assert failed["score"].isna().all()
    assert list(failed["failure_reason"]) == ["image unreadable", "incomplete series"]
    raw = pd.read_csv(res.table_path, dtype=str, keep_default_na=False).set_index("case_id")
    assert (
        raw.loc["C0008", "failure_reason"]
        == "image unreadable: file is empty (0 bytes) (slice_000.dcm)"
    )
    assert "missing slice" in raw.loc["C0009", "failure_reason"]
    assert str(study.parent) not in "".join(raw["failure_reason"])  # file names, never paths
    # input_sha256: the bytes read (a NIfTI file; a series in slice order; a broken series as is)
    d = study.parent
    assert raw.loc["C0001", "input_sha256"] == sha256_file(d / "img" / "case0001.nii.gz")
    assert raw.loc["C0004", "input_sha256"] == load_image(d / "img" / "case0004").sha256
    assert raw.loc["C0008", "input_sha256"] == hashlib.sha256(b"").hexdigest()
    assert set(raw["model_version"]) == {res.model_version}
    # the reasons written for cases that fail inside the program have a category too
    from studyval.dictionary import load_dictionary

    var = load_dictionary("predictions")["failure_reason"]
    for reason in (
        "processing error: exception ValueError while reading the image",
        "processing error: runtime error OutOfMemoryError in the network",
    ):
        assert var.categorize(reason) == "processing error"


def test_local_workers_give_identical_rows(reference, cls_cfg, weights, study, tmp_path):
    res = predict_from_manifest(
        cls_cfg, weights, study, tmp_path, num_workers=2, batch_size=3, progress=False
    )
    pd.testing.assert_frame_equal(res.table, reference.table)
    assert res.table_path.read_bytes() == reference.table_path.read_bytes()


def _score_until_killed(weights: str, study: str, out: str) -> None:
    """The killed run (``kill_helpers.kill_when``): it writes one batch, then waits to be killed."""
    from studyval.models import inference

    write = inference.write_part

    def slow(path, rows):
        write(path, rows)
        time.sleep(30)  # the parent kills the run here, one batch written

    inference.write_part = slow
    inference.predict_from_manifest(
        load_config("densenet121_ovcf").smoke_version(),
        weights,
        study,
        out,
        num_workers=0,
        batch_size=3,
        progress=False,
    )


def test_killed_local_run_resumes_to_the_same_table(reference, weights, study, tmp_path):
    out = tmp_path / "killed"
    err = kill_when(
        _score_until_killed,
        (str(weights), str(study), str(out)),
        lambda: bool(list((out / "results").rglob("part-*.parquet"))),
        tmp_path / "child-errors.txt",
    )
    assert len(list((out / "results").rglob("part-*.parquet"))) == 1, err
    assert not (out / "predictions.csv").exists()
    cfg = load_config("densenet121_ovcf").smoke_version()
    res = predict_from_manifest(cfg, weights, study, out, num_workers=0, progress=False)
    assert (res.n_skipped, res.n_scored) == (3, N - 3)
    assert res.table_path.read_bytes() == reference.table_path.read_bytes()


def test_rerun_skips_scored_inputs_and_rescores_changed_ones(reference, cls_cfg, weights, tmp_path):
    d = tmp_path / "study"
    study = write_phantom_manifest(
        d, N, dicom_every=4, broken=BROKEN, splits=("development", "internal", "external"), seed=3
    )
    out = tmp_path / "out"
    kw = {"num_workers": 0, "progress": False}
    first = predict_from_manifest(cls_cfg, weights, study, out, **kw)
    pd.testing.assert_frame_equal(first.table, reference.table)
    again = predict_from_manifest(cls_cfg, weights, study, out, **kw)
    assert (again.n_scored, again.n_skipped) == (0, N)
    pd.testing.assert_frame_equal(again.table, first.table)
    # new bytes for one image: only that case is scored again
    p = spine_phantom(shape=(32, 32, 16), spacing=(1.0, 1.0, 1.0), patterns=("acute",), seed=999)
    write_nifti(p.image, d / "img" / "case0002.nii.gz", spacing=(1.0, 1.0, 1.0))
    changed = predict_from_manifest(cls_cfg, weights, study, out, **kw)
    assert (changed.n_scored, changed.n_skipped) == (1, N - 1)
    row = changed.table.set_index("case_id").loc["C0002"]
    assert row["input_sha256"] == sha256_file(d / "img" / "case0002.nii.gz")
    assert row["input_sha256"] != reference.table.set_index("case_id").loc["C0002", "input_sha256"]
    # the manifest's current split is written, even for rows scored before
    frame = pd.read_csv(study, dtype=str)
    frame.loc[0, "split"] = "internal"
    frame.to_csv(study, index=False)
    moved = predict_from_manifest(cls_cfg, weights, study, out, **kw)
    assert moved.n_scored == 0 and moved.table.loc[0, "split"] == "internal"
    retried = predict_from_manifest(cls_cfg, weights, study, out, retry_failed=True, **kw)
    assert (retried.n_scored, retried.n_failed) == (2, 2)


def test_errors_come_before_anything_is_written(cls_cfg, weights, study, tmp_path):
    out = tmp_path / "out"
    bad = study.parent / "bad.csv"
    frame = pd.read_csv(study, dtype=str)
    frame.loc[1, "image_path"] = "../elsewhere.nii.gz"
    frame.to_csv(bad, index=False)
    with pytest.raises(InputValidationError, match="leaves the manifest's folder"):
        predict_from_manifest(cls_cfg, weights, bad, out, progress=False)
    bad.unlink()
    with pytest.raises(CheckpointError, match="no checkpoint given"):
        predict_from_manifest(cls_cfg, None, study, out, progress=False)
    tampered = tmp_path / weights.name
    tampered.write_bytes(weights.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="differs from the one in the file name"):
        predict_from_manifest(cls_cfg, tampered, study, out, progress=False)
    seg = load_config("unet3d_vertebra_seg").smoke_version()
    with pytest.raises(StudyvalError, match="scores image-level classifiers"):
        predict_from_manifest(seg, weights, study, out, progress=False)
    assert not out.exists()


@pytest.fixture
def ray_session():
    """A local Ray for one test, stopped when it ends (its processes take CPU from the tests
    that run after it)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=3, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_engine_rows_identical_to_local_and_resumable(
    ray_session, reference, cls_cfg, weights, study, tmp_path
):
    """Ray with 2 actors scores every case, and Ray with 1 actor finishes a run that the local
    engine started (resume across engines): each table is the reference, bit for bit.

    Each actor is a process that imports torch, MONAI and Ray Data (about 6 s of CPU), so the
    one-actor pool is checked on the resumed run, on the cases the local engine left to it:
    three actors in all instead of five for a full run at each pool size and then a resume.
    """
    res = predict_from_manifest(
        cls_cfg, weights, study, tmp_path / "ray2", engine="ray", num_workers=2, batch_size=2,
        progress=False,
    )  # fmt: skip
    assert (res.n_skipped, res.n_scored) == (0, N)
    assert list((tmp_path / "ray2" / "results").glob("ray-*/*.parquet"))
    pd.testing.assert_frame_equal(res.table, reference.table)  # scores to the last bit
    assert res.table_path.read_bytes() == reference.table_path.read_bytes()
    # resume across engines: half scored locally, the rest by a pool of one Ray actor
    half = study.parent / "half.csv"
    pd.read_csv(study, dtype=str).iloc[:5].to_csv(half, index=False)
    out = tmp_path / "mixed"
    predict_from_manifest(cls_cfg, weights, half, out, num_workers=0, progress=False)
    res = predict_from_manifest(
        cls_cfg, weights, study, out, engine="ray", num_workers=1, batch_size=2, progress=False
    )
    half.unlink()
    assert (res.n_skipped, res.n_scored) == (5, N - 5)
    assert list((out / "results").glob("ray-*/*.parquet"))
    pd.testing.assert_frame_equal(res.table, reference.table)
    assert res.table_path.read_bytes() == reference.table_path.read_bytes()


def test_the_command_line_writes_the_same_table(reference, weights, study, tmp_path):
    from click.testing import CliRunner

    from studyval.cli import main

    out = tmp_path / "cli"
    args = ["models", "predict", "densenet121_ovcf", "--smoke", "--weights", str(weights)]
    args += ["--images", str(study), "--out", str(out), "--batch-size", "4", "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert f"{N} cases: {N} scored, 0 already scored, 2 failed" in res.output
    assert (out / "predictions.csv").read_bytes() == reference.table_path.read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 0 and f"0 scored, {N} already scored" in again.output


def test_the_command_line_trains_from_a_manifest(study, tmp_path):
    from click.testing import CliRunner

    from studyval.cli import main

    clean = write_phantom_manifest(tmp_path / "clean", 8, splits=("development", "internal"))
    out = tmp_path / "train"
    args = ["models", "train", "densenet121_ovcf", "--smoke", "--images", str(clean)]
    args += ["--out", str(out), "--epochs", "1", "--seed", "1", "--batch-size", "2", "-q"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "weights: " in res.output and "sha256:" in res.output
    # an unreadable development series is one message naming the case, not a traceback
    args[args.index(str(clean))] = str(study)
    args[args.index(str(out))] = str(tmp_path / "train2")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1 and "case C0009" in res.output and "missing slice" in res.output


def test_the_command_line_names_a_bad_manifest(tmp_path):
    from click.testing import CliRunner

    from studyval.cli import main

    (tmp_path / "images.csv").write_text("case_id,patient_id\nC1,P1\n")
    res = CliRunner().invoke(
        main,
        [
            "models",
            "predict",
            "densenet121_ovcf",
            "--smoke",
            "--weights",
            str(tmp_path / "w.pt"),
            "--images",
            str(tmp_path / "images.csv"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == 1 and "images.csv" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def _hang_on(monkeypatch, name: str) -> list:
    """Make reading the image ``name`` block (as on a stalled network share); others read."""
    import threading

    from studyval.models import inference

    real = inference.load_image
    never = threading.Event()
    calls: list = []

    def load(path, **kw):
        if str(path).endswith(name):
            calls.append(name)
            never.wait()  # blocks for good; the read's daemon thread is abandoned
        return real(path, **kw)

    monkeypatch.setattr(inference, "load_image", load)
    return calls


#: Seconds a case may take to read in the tests of a hanging read: a case of these phantoms
#: reads in well under 0.2 s even on a loaded machine, and a hanging one waits this long (each
#: of the six waits leaves a core idle).
CASE_TIMEOUT = 1


@pytest.mark.parametrize("workers", [0, 2])
def test_a_series_that_hangs_is_a_timeout_row(
    reference, cls_cfg, weights, study, tmp_path, monkeypatch, workers
):
    """A hanging read becomes a failed row with reason 'timeout'; every other row is unchanged."""
    _hang_on(monkeypatch, "case0003.nii.gz")
    out = tmp_path / "out"
    kw = {"num_workers": workers, "batch_size": 4, "progress": False}
    t0 = time.monotonic()
    res = predict_from_manifest(cls_cfg, weights, study, out, case_timeout=CASE_TIMEOUT, **kw)
    assert time.monotonic() - t0 < 120
    assert (res.n_scored, res.n_failed) == (N, 3)
    row = res.table.set_index("case_id").loc["C0003"]
    assert row["status"] == "failed" and pd.isna(row["score"])
    assert row["failure_reason"] == f"timeout: reading the image took more than {CASE_TIMEOUT} s"
    assert row["input_sha256"] == hashlib.sha256(b"").hexdigest()  # nothing read to the end
    others = res.table["case_id"] != "C0003"
    pd.testing.assert_frame_equal(res.table[others], reference.table[others])
    typed = read_table(res.table_path, "predictions")  # the contract holds; the category:
    assert typed.set_index("case_id").loc["C0003", "failure_reason"] == "processing error"
    # the series reads again: a rerun retries the timed-out case only, and the table is the
    # reference's to the last byte
    monkeypatch.undo()
    again = predict_from_manifest(cls_cfg, weights, study, out, case_timeout=CASE_TIMEOUT, **kw)
    assert (again.n_scored, again.n_skipped) == (1, N - 1)
    assert again.table_path.read_bytes() == reference.table_path.read_bytes()


def test_the_ray_scorer_passes_the_timeout_on(cls_cfg, weights, study, monkeypatch):
    """Each Ray actor reads through the same prepare_case, with the run's case timeout."""
    from studyval.models.manifest import read_manifest
    from studyval.models.predict_ray import RayScorer

    _hang_on(monkeypatch, "case0001.nii.gz")
    cases = pd.DataFrame(
        [{"case_id": r.case_id, "image": r.image} for r in read_manifest(study).records[:3]]
    )
    rows = RayScorer(cls_cfg, str(weights), 1, "cpu", case_timeout=CASE_TIMEOUT)(cases).to_pylist()
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[1]["failure_reason"].startswith("timeout")


def test_the_command_line_takes_a_case_timeout(reference, weights, study, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from studyval.cli import main

    _hang_on(monkeypatch, "case0005.nii.gz")
    out = tmp_path / "cli"
    args = ["models", "predict", "densenet121_ovcf", "--smoke", "--weights", str(weights)]
    args += ["--images", str(study), "--out", str(out), "-q", "--num-workers", "0"]
    res = CliRunner().invoke(main, [*args, "--case-timeout", str(CASE_TIMEOUT)])
    assert res.exit_code == 0, res.output
    assert f"{N} cases: {N} scored, 0 already scored, 3 failed" in res.output
    raw = pd.read_csv(out / "predictions.csv", dtype=str).set_index("case_id")
    assert raw.loc["C0005", "failure_reason"].startswith("timeout")
    bad = CliRunner().invoke(main, [*args, "--case-timeout", "0"])
    assert bad.exit_code == 2 and "case-timeout" in bad.output


def test_ray_actors_share_gpus_when_there_are_fewer_gpus_than_actors():
    from studyval.models.predict_ray import gpus_per_actor

    assert gpus_per_actor(0, 2) == 0.0  # CPU cluster
    assert gpus_per_actor(1, 1) == 1.0 and gpus_per_actor(8, 2) == 1.0
    assert gpus_per_actor(1, 2) == 0.5  # two replicas on the one GPU
    assert gpus_per_actor(3, 4) == 0.5  # packs onto whole GPUs (0.75 each would leave one waiting)
    assert gpus_per_actor(1, 3) == 0.3333 and 3 * gpus_per_actor(1, 3) <= 1
    for gpus in range(1, 9):
        for actors in range(1, 20):
            share = gpus_per_actor(gpus, actors)
            assert 0 < share <= 1 and gpus * int(1 / share + 1e-9) >= actors


def test_a_hash_that_hangs_on_resume_is_scored_again(
    reference, cls_cfg, weights, study, tmp_path, monkeypatch
):
    """The resume check hashes every scored input (in a thread pool); a hash that hangs is
    abandoned after the case timeout and its case scored again, not a stalled rerun."""
    import threading

    from studyval.models import inference

    # the uninterrupted local run's folder (the reference's results: the same bytes as a new
    # run here), to be resumed
    out = tmp_path / "out"
    shutil.copytree(reference.table_path.parent, out)
    real, never = inference.input_key, threading.Event()

    def key(path):
        if str(path).endswith("case0005.nii.gz"):
            never.wait()
        return real(path)

    monkeypatch.setattr(inference, "input_key", key)
    again = predict_from_manifest(
        cls_cfg, weights, study, out, num_workers=0, case_timeout=CASE_TIMEOUT, progress=False
    )
    assert (again.n_scored, again.n_skipped) == (1, N - 1)
    assert again.table_path.read_bytes() == reference.table_path.read_bytes()
