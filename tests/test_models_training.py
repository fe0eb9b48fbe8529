"""Tests for studyval.models.training and studyval.models.checkpoints.

Oracles: phantoms with known vertebral-body masks (Dice after short training
must beat a stated bound), and exact reproducibility: the same seed gives a
byte-identical weights file, and a run resumed from ``train_state.pt`` gives
the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from kill_helpers import kill_when  # noqa: E402

from studyval.models.checkpoints import CheckpointError, load_weights, sha256_file  # noqa: E402
from studyval.models.config import load_config  # noqa: E402
from studyval.models.training import HISTORY_COLUMNS, phantom_training_data, train  # noqa: E402

DICE_BOUND = 0.80  # foreground Dice on held-out phantoms after 5 epochs (observed ~0.9-0.96)


@pytest.fixture(scope="module")
def seg_cfg():
    return load_config("unet3d_vertebra_seg").smoke_version()


@pytest.fixture(scope="module")
def seg_data(seg_cfg):
    x, y = phantom_training_data(seg_cfg, 4, seed=11)
    xv, yv = phantom_training_data(seg_cfg, 2, seed=500)  # other phantoms ("patients")
    return x, y, xv, yv


@pytest.fixture(scope="module")
def trained(seg_cfg, seg_data, tmp_path_factory):
    x, y, xv, yv = seg_data
    out = tmp_path_factory.mktemp("seg")
    return train(
        seg_cfg,
        x,
        y,
        val_images=xv,
        val_targets=yv,
        out_dir=out,
        epochs=5,
        learning_rate=1e-2,
        progress=False,
    )


def test_loss_falls_and_dice_beats_bound(trained):
    losses = [h["train_loss"] for h in trained.history]
    assert losses[-1] < 0.6 * losses[0]
    assert trained.history[-1]["metric"] == "dice"
    assert trained.history[-1]["val_metric"] > DICE_BOUND


def test_weights_named_by_sha256_and_history_csv(trained):
    path = trained.weights_path
    sha = sha256_file(path)
    assert path.name == f"unet3d_vertebra_seg-{sha}.pt"
    assert trained.model_version == f"sha256:{sha}"
    assert path.with_suffix(".json").is_file()
    with open(path.parent / "history.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == HISTORY_COLUMNS
    assert [int(r["epoch"]) for r in rows] == list(range(5))


def test_seeded_and_resumable(tmp_path):
    seg_cfg = load_config("unet2d_l3_muscle").smoke_version()  # 2-D: fast
    x, y = phantom_training_data(seg_cfg, 4, seed=3)
    full = train(seg_cfg, x, y, out_dir=tmp_path / "full", epochs=2, progress=False)
    again = train(seg_cfg, x, y, out_dir=tmp_path / "again", epochs=2, progress=False)
    assert full.model_version == again.model_version  # byte-identical weights
    part = train(seg_cfg, x, y, out_dir=tmp_path / "part", epochs=1, progress=False)
    resumed = train(seg_cfg, x, y, out_dir=tmp_path / "part", epochs=2, progress=False)
    assert part.start_epoch == 0 and resumed.start_epoch == 1
    assert resumed.model_version == full.model_version
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]


def test_classifier_trains(tmp_path):
    cfg = load_config("vgg16_ovcf").smoke_version()
    x, y = phantom_training_data(cfg, 4, seed=1)
    assert sorted(set(y.tolist())) == [0, 1]
    res = train(cfg, x, y, out_dir=tmp_path, epochs=1, progress=False)
    assert res.history[-1]["metric"] == "accuracy"
    assert 0.0 <= res.history[-1]["val_metric"] <= 1.0


def test_deterministic_kernels_as_torchs_public_switch(monkeypatch):
    """seed_everything sets what ``torch.use_deterministic_algorithms(True, warn_only=True)``
    sets; while Inductor is not imported it leaves it so (the call would import it and
    TorchDynamo, a second of CPU) and hands Inductor's option to the environment variable
    Inductor reads when it is imported."""
    import importlib.util

    from studyval.models.training import seed_everything

    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
    )
    monkeypatch.delenv("TORCHINDUCTOR_DETERMINISTIC", raising=False)
    inductor = sys.modules.get("torch._inductor.config")
    torch._C._set_deterministic_algorithms(False, warn_only=False)
    try:
        seed_everything(5)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        if inductor is not None:  # imported by an earlier test: the public call was made
            assert inductor.deterministic is True
        else:
            assert "torch._inductor.config" not in sys.modules
            assert os.environ["TORCHINDUCTOR_DETERMINISTIC"] == "1"
            spec = importlib.util.find_spec("torch._inductor")
            config = Path(spec.submodule_search_locations[0], "config.py").read_text()
            assert 'deterministic = os.getenv("TORCHINDUCTOR_DETERMINISTIC") == "1"' in config
    finally:
        torch._C._set_deterministic_algorithms(before[0], warn_only=before[1])


def test_channel_argmax_is_torchs_argmax():
    """The label maps of segmentation (inference, Dice) equal ``argmax(dim=1)``: ties to the
    first channel, NaN the largest, 2-D and 3-D, 2 and 3 channels, a strided input."""
    from studyval.models.training import channel_argmax

    gen = torch.Generator().manual_seed(3)
    for shape in ((2, 2, 9, 7), (1, 3, 6, 5, 4), (3, 2, 5, 4, 3), (4, 3)):
        x = torch.randint(-2, 3, shape, generator=gen).float()  # many ties
        x.view(-1)[::7] = float("nan")
        for logits in (x, x.transpose(-1, -2)):
            got = channel_argmax(logits)
            assert got.dtype == torch.int64 and torch.equal(got, logits.argmax(dim=1))


def test_missing_or_tampered_checkpoint(trained, seg_cfg, tmp_path):
    net = seg_cfg.build_network()
    with pytest.raises(
        CheckpointError, match="no checkpoint given: refusing to run a network with random weights"
    ):
        load_weights(net, None)
    with pytest.raises(CheckpointError, match="checkpoint does not exist; refusing"):
        load_weights(net, tmp_path / "nope.pt")
    bad = tmp_path / trained.weights_path.name
    bad.write_bytes(trained.weights_path.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="differs from the one in the file name"):
        load_weights(net, bad)
    other = load_config("unet3d_vertebra_seg").build_network()  # full-size network
    with pytest.raises(CheckpointError, match="weights do not fit the network"):
        load_weights(other, trained.weights_path)
    assert load_weights(net, trained.weights_path) == trained.model_version


@pytest.mark.slow
def test_ddp_torchrun_one_process_gloo(tmp_path, seg_cfg):
    """The DistributedDataParallel code path, one CPU process (gloo) under torchrun."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside the interpreter")
    # one CPU thread on both sides: reductions then add in the same order, so the DDP process
    # and the plain loop agree whatever the machine's core count or load
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=1", "-m", "studyval.models.training"]
    cmd += ["--config", "unet3d_vertebra_seg", "--smoke", "--phantoms", "2", "--epochs", "1"]
    cmd += ["--out", str(tmp_path / "ddp"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backend=gloo world_size=1" in proc.stdout
    # one DDP process computes what the plain loop computes (bytes may differ with the
    # number of CPU threads, so the tensors are compared)
    x, y = phantom_training_data(seg_cfg, 2, seed=int(seg_cfg.training["seed"]))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        plain = train(seg_cfg, x, y, out_dir=tmp_path / "plain", epochs=1, progress=False)
    finally:
        torch.set_num_threads(threads)
    ddp_file = next((tmp_path / "ddp").glob("unet3d_vertebra_seg-*.pt"))
    a = torch.load(ddp_file, weights_only=True)
    b = torch.load(plain.weights_path, weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- manifest training

import dataclasses  # noqa: E402
import pickle  # noqa: E402
import time  # noqa: E402
import weakref  # noqa: E402

from studyval.errors import InputValidationError, StudyvalError  # noqa: E402
from studyval.models import datasets as datasets_mod  # noqa: E402
from studyval.models.manifest import write_phantom_manifest  # noqa: E402
from studyval.models.training import load_train_state, train_from_manifest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _seg16():
    """The tiny UNet at the 32x32x16 phantoms' own size."""
    return dataclasses.replace(
        load_config("unet3d_vertebra_seg").smoke_version(), roi_size=(32, 32, 16)
    )


@pytest.fixture(scope="module")
def seg_study(tmp_path_factory):
    d = tmp_path_factory.mktemp("segstudy")
    splits = ("development",) * 4 + ("internal",)
    return write_phantom_manifest(d, 10, masks=True, splits=splits, dicom_every=5, seed=40)


class _Payload:
    """Pickles to a call that would create a file: proof that loading ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_manifest_training_streams_volumes_within_the_batch(tmp_path, monkeypatch):
    """40 volumes on disk, cache none: never more than one batch of volumes alive at once."""
    splits = ("development",) * 9 + ("internal",)
    manifest = write_phantom_manifest(tmp_path / "data", 40, masks=True, splits=splits, seed=7)
    live: set[int] = set()
    peak = [0]
    original = datasets_mod.LoadCase.__call__

    def counting(self, item):
        out = original(self, item)
        token = id(out["image"])
        live.add(token)
        peak[0] = max(peak[0], len(live))
        weakref.finalize(out["image"], live.discard, token)
        return out

    monkeypatch.setattr(datasets_mod.LoadCase, "__call__", counting)
    # the tiny UNet on a 16x16x8 centre crop: the test is about memory, not accuracy
    cfg = dataclasses.replace(
        load_config("unet3d_vertebra_seg").smoke_version(), roi_size=(16, 16, 8)
    )
    kw = {"epochs": 1, "batch_size": 4, "progress": False}
    res = train_from_manifest(cfg, manifest, tmp_path / "none", cache="none", **kw)
    assert res.model_version and len(res.history) == 1
    assert 0 < peak[0] <= 4, peak[0]  # the batch size, whatever the number of volumes
    # the counter does see a cache that holds everything (36 development + 4 internal)
    peak[0] = 0
    live.clear()
    train_from_manifest(cfg, manifest, tmp_path / "mem", cache="memory", **kw)
    assert peak[0] == 40


def test_invalid_manifest_writes_nothing(tmp_path):
    manifest = write_phantom_manifest(tmp_path / "data", 2, masks=False)
    with pytest.raises(InputValidationError, match="needs a 'mask_path' column"):
        train_from_manifest(_seg16(), manifest, tmp_path / "out", epochs=1, progress=False)
    assert not (tmp_path / "out").exists()


def _train_until_killed(manifest: str, out: str) -> None:
    """The killed run (``kill_helpers.kill_when``): it completes an epoch, then waits to be killed."""
    from studyval.models import training

    write = training._write_train_state

    def slow(path, state):
        write(path, state)
        time.sleep(30)  # the parent kills the run here, after a complete epoch

    training._write_train_state = slow
    training.train_from_manifest(
        _seg16(),
        manifest,
        out,
        epochs=3,
        learning_rate=1e-2,
        threads=1,
        progress=False,
        cache="disk",
    )


def test_killed_training_resumes_to_identical_weights(tmp_path, seg_study):
    out = tmp_path / "killed"
    state = out / "train_state.pt"
    err = kill_when(
        _train_until_killed, (str(seg_study), str(out)), state.exists, tmp_path / "child-errors.txt"
    )
    assert state.exists(), err
    assert not list(out.glob("unet3d_vertebra_seg-*.pt"))  # killed before the end
    cfg = _seg16()
    kw = {"epochs": 3, "learning_rate": 1e-2, "threads": 1, "progress": False, "cache": "disk"}
    resumed = train_from_manifest(cfg, seg_study, out, **kw)
    assert resumed.start_epoch == 1
    full = train_from_manifest(cfg, seg_study, tmp_path / "full", **kw)
    assert resumed.model_version == full.model_version  # byte-identical weights
    assert [h["train_loss"] for h in resumed.history] == [h["train_loss"] for h in full.history]
    assert full.history[-1]["metric"] == "dice" and full.history[-1]["val_metric"] > 0.5
    # another run's settings are refused, not silently continued
    with pytest.raises(CheckpointError, match="other settings or another manifest"):
        train_from_manifest(cfg, seg_study, out, **{**kw, "learning_rate": 1e-3})


def test_resume_state_and_cache_load_no_code(tmp_path, seg_study):
    cfg = _seg16()
    kw = {"epochs": 1, "threads": 1, "progress": False}
    first = train_from_manifest(cfg, seg_study, tmp_path / "a", cache="disk", **kw)
    state = tmp_path / "a" / "train_state.pt"
    good = load_train_state(state, config_name=cfg.name)
    assert good["format"] == "studyval-train-state"
    marker = tmp_path / "code-ran"
    # a state that would run code on loading
    with open(state, "wb") as fh:
        pickle.dump({"config": cfg.name, "payload": _Payload(marker)}, fh)
    with pytest.raises(CheckpointError, match="not a studyval training state"):
        train_from_manifest(cfg, seg_study, tmp_path / "a", **kw)
    # a foreign file, and a torch file with the wrong keys
    state.write_text("not a torch file")
    with pytest.raises(CheckpointError, match="not a studyval training state"):
        train_from_manifest(cfg, seg_study, tmp_path / "a", **kw)
    torch.save({"config": cfg.name, "epoch": 0}, state)
    with pytest.raises(CheckpointError, match="missing model, optimiser, history, torch_rng"):
        train_from_manifest(cfg, seg_study, tmp_path / "a", **kw)
    # every disk-cache file replaced by code: MONAI's weights_only load refuses it, the item is
    # recomputed, and the weights are those of the first run
    cache_files = list((tmp_path / "a" / "cache").rglob("*.pt"))
    assert len(cache_files) == 5 + 5  # development and internal items
    for f in cache_files:
        with open(f, "wb") as fh:
            pickle.dump(_Payload(marker), fh)
    with pytest.warns(UserWarning, match="Corrupt cache file"):
        again = train_from_manifest(
            cfg, seg_study, tmp_path / "b", cache="disk", cache_dir=tmp_path / "a" / "cache", **kw
        )
    assert again.model_version == first.model_version
    # weights: a pickle that runs code and a non-torch file, each named by its own SHA-256
    for payload in (pickle.dumps(_Payload(marker)), b"plain text"):
        import hashlib

        p = tmp_path / f"{cfg.name}-{hashlib.sha256(payload).hexdigest()}.pt"
        p.write_bytes(payload)
        with pytest.raises(CheckpointError, match="not a readable torch checkpoint"):
            load_weights(cfg.build_network(), p)
    tensor_file = tmp_path / "t.pt"
    torch.save(torch.zeros(2), tensor_file)
    with pytest.raises(CheckpointError, match="not a weights file"):
        load_weights(cfg.build_network(), tensor_file)
    assert not marker.exists()


def test_ddp_two_gloo_processes_match_one_process(tmp_path, seg_study):
    """torchrun, 2 CPU processes (gloo), batch 2 each == one process with batch 4."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside the interpreter")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "studyval.models.training"]
    cmd += ["--config", "unet3d_vertebra_seg", "--smoke", "--manifest", str(seg_study)]
    cmd += ["--epochs", "2", "--batch-size", "2", "--learning-rate", "0.01", "--threads", "1"]
    cmd += ["--out", str(tmp_path / "ddp"), "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backend=gloo world_size=2" in proc.stdout
    cfg = load_config("unet3d_vertebra_seg").smoke_version()
    one = train_from_manifest(
        cfg,
        seg_study,
        tmp_path / "one",
        epochs=2,
        batch_size=4,
        learning_rate=1e-2,
        threads=1,
        progress=False,
    )
    ddp_file = next((tmp_path / "ddp").glob("unet3d_vertebra_seg-*.pt"))
    a = torch.load(ddp_file, weights_only=True)
    b = torch.load(one.weights_path, weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        # a conv bias followed by instance norm has no effect and a zero gradient: AdamW turns
        # its rounding noise into steps of size lr, so only the weights are compared
        if not k.endswith(".bias"):
            torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    net_a, net_b = cfg.build_network().eval(), cfg.build_network().eval()
    net_a.load_state_dict(a)
    net_b.load_state_dict(b)
    x, _ = phantom_training_data(cfg, 2, seed=99)
    with torch.no_grad():
        torch.testing.assert_close(
            net_a(torch.as_tensor(x)), net_b(torch.as_tensor(x)), rtol=1e-4, atol=1e-4
        )
    with open(tmp_path / "ddp" / "history.csv", newline="") as fh:
        ddp_hist = list(csv.DictReader(fh))
    for h, row in zip(one.history, ddp_hist, strict=True):
        assert float(row["train_loss"]) == pytest.approx(h["train_loss"], rel=1e-4)
        assert float(row["val_metric"]) == pytest.approx(h["val_metric"], rel=1e-4)


def test_segmentation_config_refused_by_prediction_and_missing_dev_rows(tmp_path):
    manifest = write_phantom_manifest(tmp_path / "d", 2, splits=("external",))
    with pytest.raises(StudyvalError, match="no development rows"):
        train_from_manifest(
            load_config("densenet121_ovcf").smoke_version(), manifest, tmp_path / "o", epochs=1
        )


def _record_training_batches(monkeypatch) -> list[int]:
    """Batch sizes the network sees in training mode (a hook on every network built)."""
    from studyval.models.config import ModelConfig

    sizes: list[int] = []
    build = ModelConfig.build_network

    def recording(self, *args, **kwargs):
        net = build(self, *args, **kwargs)
        net.register_forward_pre_hook(
            lambda module, inputs: (
                sizes.append(int(inputs[0].shape[0])) if module.training else None
            )
        )
        return net

    monkeypatch.setattr(ModelConfig, "build_network", recording)
    return sizes


def test_a_last_batch_of_one_is_dropped_not_a_batch_norm_crash(tmp_path, monkeypatch):
    """DenseNet-121 (batch norm; a 1-voxel feature map at 32³) with 3 cases in batches of 2.

    Before, the epoch's last batch held one case and batch norm raised "Expected more than 1
    value per channel when training". The last incomplete batch is dropped when the cases
    fill more than one batch; cases that fit in one batch train as that one batch; a single
    case is a clear error.
    """
    cls = load_config("densenet121_ovcf").smoke_version()
    sizes = _record_training_batches(monkeypatch)
    three = write_phantom_manifest(tmp_path / "three", 3, seed=1)
    kw = {"epochs": 2, "batch_size": 2, "threads": 1, "progress": False}
    res = train_from_manifest(cls, three, tmp_path / "o3", **kw)
    assert res.model_version and len(res.history) == 2
    assert sizes == [2, 2]  # one full batch per epoch; the third case's batch of 1 dropped
    # the array loop drops it too
    sizes.clear()
    x, y = phantom_training_data(cls, 3, seed=2)
    train(cls, x, y, out_dir=tmp_path / "arrays", epochs=2, batch_size=2, progress=False)
    assert sizes == [2, 2]
    # cases that fit in one batch: nothing dropped, one smaller batch per epoch
    sizes.clear()
    train_from_manifest(cls, three, tmp_path / "o3b", **{**kw, "batch_size": 8})
    assert sizes == [3, 3]
    # one case cannot train a batch-norm network: said clearly, no weights written
    one = write_phantom_manifest(tmp_path / "one", 1, seed=1)
    with pytest.raises(StudyvalError, match="batch normalisation needs at least 2 cases"):
        train_from_manifest(cls, one, tmp_path / "o1", **kw)
    assert not list((tmp_path / "o1").glob("densenet121_ovcf-*.pt"))
