"""Seeded, resumable training of a config's network, single process or DDP.

:func:`train` runs a plain loop (no framework) so that every choice is
visible:

* seeded (``random``, NumPy, torch) and ``torch.use_deterministic_algorithms``
  when the config asks for it (``warn_only``: torch warns where it has no
  deterministic kernel);
* bf16 autocast on CUDA when available, fp32 on CPU;
* segmentation: MONAI ``DiceCELoss`` on softmax outputs, validation Dice of
  the foreground; classification: cross-entropy, validation accuracy;
* one CSV row per epoch (``history.csv``: epoch, train loss, validation
  loss and Dice / accuracy, seconds);
* a progress bar (tqdm when installed, else one line per epoch on stderr);
* resumable: ``train_state.pt`` (network, optimiser, epoch, RNG states) is
  written after every epoch and picked up by the next call with the same
  ``out_dir``;
* the final weights are written by :func:`studyval.models.checkpoints.save_weights`
  as ``<config>-<sha256>.pt``;
* DistributedDataParallel when started by ``torchrun`` (even with one
  process): gloo on CPU, NCCL on CUDA; each rank takes every ``world_size``-th batch
  and only rank 0 writes files.

Command line (used by the DDP smoke test)::

    torchrun --standalone --nproc_per_node=1 -m studyval.models.training \
        --config unet3d_vertebra_seg --smoke --phantoms 4 --epochs 2 --out DIR
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from studyval.models.checkpoints import save_weights
from studyval.models.config import ModelConfig, load_config

HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_metric", "metric", "seconds")


@dataclass(frozen=True)
class TrainResult:
    """Outcome of :func:`train`.

    Attributes
    ----------
    weights_path : Path or None
        ``<config>-<sha256>.pt`` (``None`` on ranks other than 0).
    model_version : str or None
        ``"sha256:<hex>"`` of the weights file.
    history : list of dict
        One dict per epoch (the rows of ``history.csv``), resumed epochs included.
    start_epoch : int
        First epoch run by this call (> 0 when resumed).
    epochs : int
        Total epochs after this call.

    """

    weights_path: Path | None
    model_version: str | None
    history: list[dict]
    start_epoch: int
    epochs: int


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed ``random``, NumPy and torch; request deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may draw from the global state
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        # NaN-filling of uninitialised memory is a debugging aid that slows CPU training
        # several-fold; it does not change results, so it is switched off.
        torch.utils.deterministic.fill_uninitialized_memory = False
        torch.backends.cudnn.benchmark = False


def autocast_context(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (when the GPU supports bf16), nothing on CPU (fp32)."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _progress(iterable: Sequence[int], *, enabled: bool, desc: str) -> Iterator[int]:
    if not enabled:
        yield from iterable
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        for i in iterable:
            print(f"{desc}: epoch {i + 1}/{iterable[-1] + 1}", file=sys.stderr, flush=True)
            yield i
        return
    yield from tqdm(iterable, desc=desc, file=sys.stderr)


def _distributed() -> tuple[int, int]:
    """Initialise the process group when started by torchrun; return (rank, world size).

    torchrun sets ``LOCAL_RANK``, ``RANK``, ``WORLD_SIZE`` and ``MASTER_ADDR``; then
    the DDP code path runs even with one process (the CI smoke test: gloo on CPU).
    """
    import torch.distributed as dist

    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if "LOCAL_RANK" not in os.environ or "MASTER_ADDR" not in os.environ:
        return 0, 1
    dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def _ddp_active() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def _batches(
    n: int, batch_size: int, rng: np.random.Generator, rank: int, world: int
) -> list[np.ndarray]:
    order = rng.permutation(n)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    # every rank gets the same number of batches (DDP needs matching all-reduces)
    per_rank = max(1, len(batches) // world)
    return batches[rank * per_rank : (rank + 1) * per_rank]


def foreground_dice(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Dice of the argmax foreground (label > 0) against ``target`` (N, 1, ...)."""
    pred = logits.argmax(dim=1) > 0
    true = target[:, 0] > 0
    inter = (pred & true).sum().item()
    denom = pred.sum().item() + true.sum().item()
    return 1.0 if denom == 0 else 2.0 * inter / denom


def train(
    config: ModelConfig,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    out_dir: str | Path,
    epochs: int,
    val_images: np.ndarray | None = None,
    val_targets: np.ndarray | None = None,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    resume: bool = True,
) -> TrainResult:
    """Train the config's network on arrays and write the weights.

    Parameters
    ----------
    config : ModelConfig
        Model config (use ``config.smoke_version()`` for tiny runs).
    images : ndarray of float32, shape (N, C, *spatial)
        Preprocessed inputs (HU window applied, spacing normalised).
    targets : ndarray
        Segmentation: label maps ``(N, 1, *spatial)`` of integers; classification:
        class indices ``(N,)`` in the order of ``config.classes``.
    out_dir : str or Path
        Where ``history.csv``, ``train_state.pt`` and the weights go.
    epochs : int
        Total number of epochs (a resumed run continues up to it).
    val_images, val_targets : ndarray, optional
        Validation data (patients of another split); the training data are
        used when omitted.
    batch_size, learning_rate, seed : optional
        Override the config's ``training`` section.
    device : str or torch.device, optional
        Defaults to CUDA when available, else CPU.
    progress : bool
        Show a progress bar on stderr.
    resume : bool
        Continue from ``out_dir/train_state.pt`` when it exists.

    Returns
    -------
    TrainResult

    """
    from monai.losses import DiceCELoss

    tr = config.training
    seed = int(tr.get("seed", 0) if seed is None else seed)
    batch_size = int(tr.get("batch_size", 2) if batch_size is None else batch_size)
    lr = float(tr.get("learning_rate", 1e-3) if learning_rate is None else learning_rate)
    if images.ndim != config.spatial_dims + 2:
        raise ValueError(
            f"images must have shape (N, C, *spatial) with {config.spatial_dims} spatial dims, found {images.shape}"
        )
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} targets")
    rank, world = _distributed()
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    seed_everything(seed, deterministic=bool(tr.get("deterministic", True)))
    model = config.build_network().to(dev)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
    out_dir = Path(out_dir)
    state_path = out_dir / "train_state.pt"
    history_path = out_dir / "history.csv"
    start = 0
    history: list[dict] = []
    rng = np.random.default_rng(seed)
    if resume and state_path.is_file():
        state = torch.load(state_path, map_location="cpu", weights_only=False)
        if state["config"] != config.name:
            raise ValueError(
                f"{state_path}: state of config {state['config']!r}, not {config.name!r}"
            )
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        start = int(state["epoch"]) + 1
        history = list(state["history"])
        rng.bit_generator.state = state["numpy_rng"]
        torch.set_rng_state(state["torch_rng"])
    if _ddp_active():
        model = nn.parallel.DistributedDataParallel(
            model, device_ids=[dev.index] if dev.type == "cuda" else None
        )
    seg = config.task == "segmentation"
    loss_fn: nn.Module = (
        DiceCELoss(to_onehot_y=True, softmax=True) if seg else nn.CrossEntropyLoss()
    )
    x_all = torch.as_tensor(images, dtype=torch.float32)
    y_all = torch.as_tensor(targets, dtype=torch.long)
    xv = x_all if val_images is None else torch.as_tensor(val_images, dtype=torch.float32)
    yv = y_all if val_targets is None else torch.as_tensor(val_targets, dtype=torch.long)
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
    for epoch in _progress(range(start, epochs), enabled=progress and rank == 0, desc=config.name):
        t0 = time.perf_counter()
        model.train()
        losses = []
        for idx in _batches(len(x_all), batch_size, rng, rank, world):
            xb, yb = x_all[idx].to(dev), y_all[idx].to(dev)
            optimiser.zero_grad(set_to_none=True)
            with autocast_context(dev):
                out = model(xb)
                loss = loss_fn(out.float(), yb)
            loss.backward()
            optimiser.step()
            losses.append(float(loss.detach()))
        model.eval()
        with torch.no_grad(), autocast_context(dev):
            vout = torch.cat(
                [
                    model(xv[i : i + batch_size].to(dev)).float()
                    for i in range(0, len(xv), batch_size)
                ]
            )
            vloss = float(loss_fn(vout, yv.to(dev)))
            metric = (
                foreground_dice(vout, yv.to(dev))
                if seg
                else float((vout.argmax(1) == yv.to(dev)).float().mean())
            )
        row = {
            "epoch": epoch,
            "train_loss": float(np.mean(losses)),
            "val_loss": vloss,
            "val_metric": metric,
            "metric": "dice" if seg else "accuracy",
            "seconds": round(time.perf_counter() - t0, 3),
        }
        history.append(row)
        if rank == 0:
            _write_history(history_path, history)
            module = (
                model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
            )
            state = {
                "config": config.name,
                "epoch": epoch,
                "model": module.state_dict(),
                "optimiser": optimiser.state_dict(),
                "history": history,
                "numpy_rng": rng.bit_generator.state,
                "torch_rng": torch.get_rng_state(),
            }
            tmp = state_path.with_suffix(".pt.tmp-write")
            torch.save(state, tmp)
            os.replace(tmp, state_path)
    weights_path = version = None
    if rank == 0:
        last = history[-1] if history else {}
        weights_path, version = save_weights(
            model,
            out_dir,
            config_name=config.name,
            info={"epochs": epochs, "seed": seed, "last_epoch": last},
        )
    return TrainResult(weights_path, version, history, start, epochs)


def _write_history(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".csv.tmp-write")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=HISTORY_COLUMNS)
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


def phantom_training_data(
    config: ModelConfig, n: int, *, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tiny training arrays from seeded phantoms at the config's ROI size.

    Segmentation: spine phantoms (image, vertebral-body mask); 2-D configs
    use L3 phantoms (image, skeletal-muscle mask). Classification: crops of
    acute and chronic phantom vertebrae, class index in ``config.classes``.
    """
    from studyval.models.imaging import apply_window
    from studyval.models.phantoms import PATTERNS, l3_phantom, spine_phantom

    roi = config.roi_size
    xs, ys = [], []
    for i in range(n):
        if config.task == "segmentation" and config.spatial_dims == 2:
            p = l3_phantom(
                shape=roi,
                spacing=(400.0 / roi[0],) * 2,
                muscle_thickness_mm=30,
                fat_thickness_mm=25,
                seed=seed + i,
            )
            xs.append(apply_window(p.image, config.hu_window)[None])
            ys.append((p.label == 1).astype(np.int64)[None])
        elif config.task == "segmentation":
            p = spine_phantom(
                shape=roi,
                spacing=config.spacing,
                patterns=(PATTERNS[i % 3], PATTERNS[(i + 1) % 3]),
                seed=seed + i,
            )
            xs.append(apply_window(p.image, config.hu_window)[None])
            ys.append(p.label.astype(np.int64)[None])
        else:
            pattern = ("chronic", "acute")[i % 2]
            shape = roi if config.spatial_dims == 3 else (*roi, 16)
            p = spine_phantom(
                shape=shape, spacing=(*config.spacing, 1.0)[:3], patterns=(pattern,), seed=seed + i
            )
            img = apply_window(p.image, config.hu_window)
            if config.spatial_dims == 2:
                img = img[:, img.shape[1] // 2, :]
                img = (
                    np.pad(img, [(0, 0), (0, roi[1] - img.shape[1])])
                    if img.shape[1] < roi[1]
                    else img[:, : roi[1]]
                )
            xs.append(img[None])
            ys.append(config.classes.index(pattern))
    return np.stack(xs).astype(np.float32), np.asarray(
        ys
    ) if config.task == "classification" else np.stack(ys)


def main(argv: Sequence[str] | None = None) -> int:
    """Train a config on phantoms (the torchrun / DDP smoke entry point)."""
    ap = argparse.ArgumentParser(
        prog="python -m studyval.models.training", description=main.__doc__
    )
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--phantoms", type=int, default=4)
    ap.add_argument(
        "--smoke", action="store_true", help="tiny network and ROI from the config's smoke section"
    )
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    cfg = cfg.smoke_version() if args.smoke else cfg
    x, y = phantom_training_data(cfg, args.phantoms, seed=int(cfg.training.get("seed", 0)))
    res = train(cfg, x, y, out_dir=args.out, epochs=args.epochs, progress=not args.no_progress)
    rank = int(os.environ.get("RANK", "0"))
    import torch.distributed as dist

    if rank == 0:
        backend = dist.get_backend() if dist.is_initialized() else "none"
        world = os.environ.get("WORLD_SIZE", "1")
        print(
            f"weights={res.weights_path} version={res.model_version} backend={backend} world_size={world}"
        )
    if dist.is_initialized():
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
