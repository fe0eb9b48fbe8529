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
    env = dict(os.environ)
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=1", "-m", "studyval.models.training"]
    cmd += ["--config", "unet3d_vertebra_seg", "--smoke", "--phantoms", "2", "--epochs", "1"]
    cmd += ["--out", str(tmp_path / "ddp"), "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "backend=gloo world_size=1" in proc.stdout
    # one DDP process computes what the plain loop computes (bytes may differ with the
    # number of CPU threads, so the tensors are compared)
    x, y = phantom_training_data(seg_cfg, 2, seed=int(seg_cfg.training["seed"]))
    plain = train(seg_cfg, x, y, out_dir=tmp_path / "plain", epochs=1, progress=False)
    ddp_file = next((tmp_path / "ddp").glob("unet3d_vertebra_seg-*.pt"))
    a = torch.load(ddp_file, weights_only=True)
    b = torch.load(plain.weights_path, weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
