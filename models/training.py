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
  written atomically after every epoch and picked up by the next call with the
  same ``out_dir``; it holds only tensors and plain containers and is read with
  ``torch.load(weights_only=True)`` (:func:`load_train_state`: a foreign,
  tampered or other run's file is a :class:`CheckpointError`, never executed);
* the final weights are written by :func:`studyval.models.checkpoints.save_weights`
  as ``<config>-<sha256>.pt``;
* DistributedDataParallel when started by ``torchrun`` (even with one
  process): gloo on CPU, NCCL on CUDA; each rank takes every ``world_size``-th batch
  and only rank 0 writes files.

:func:`train_from_manifest` trains the same way on the images of a manifest
(``data_dictionary/images.yml``), streamed from disk by MONAI datasets
(:mod:`studyval.models.datasets`: no cache, a memory ``CacheDataset`` or a disk
``PersistentDataset``) through a ``DataLoader`` with a ``DistributedSampler``.

Command line (used by the DDP smoke tests)::

    torchrun --standalone --nproc_per_node=1 -m studyval.models.training \
        --config unet3d_vertebra_seg --smoke --phantoms 4 --epochs 2 --out DIR
    torchrun --standalone --nproc_per_node=2 -m studyval.models.training \
        --config unet3d_vertebra_seg --manifest images.csv --epochs 2 --out DIR
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

from studyval.models.checkpoints import CheckpointError, save_weights
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


def _use_deterministic_algorithms() -> None:
    """``torch.use_deterministic_algorithms(True, warn_only=True)``, without importing Inductor.

    Besides torch's own switch, the public call sets the ``deterministic`` option of Inductor
    (the ``torch.compile`` back end), importing ``torch._inductor`` and TorchDynamo to do so:
    about a second of CPU in every process that trains, for a compiler this package never
    calls. While Inductor is not imported, torch's switch is set directly and Inductor's
    option through the environment variable it reads when it is imported
    (``TORCHINDUCTOR_DETERMINISTIC=1``), which gives the same settings; once it is imported,
    or where torch lacks that switch, the public call is made.
    """
    set_switch = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_switch is None or "torch._inductor.config" in sys.modules:
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    os.environ["TORCHINDUCTOR_DETERMINISTIC"] = "1"
    set_switch(True, warn_only=True)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed ``random``, NumPy and torch; request deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - third-party code may draw from the global state
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        _use_deterministic_algorithms()
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


def drop_last(cases: int, batch_size: int) -> bool:
    """Whether training drops the last, incomplete batch of an epoch.

    A last batch of one case crashes batch normalisation in training mode wherever a feature
    map has shrunk to one voxel (``Expected more than 1 value per channel``: the smoke
    DenseNet-121 on 32³ crops), and a small last batch gives a noisy step. So the incomplete last
    batch is dropped whenever the cases (of this process, under DDP) fill more than one batch;
    the shuffle changes every epoch, so no case is left out for good. When they fit in one batch
    (``cases <= batch_size``) nothing is dropped: every epoch is that one batch, smaller than
    ``batch_size``; with a single case a batch-norm network fails with a clear
    :class:`~studyval.errors.StudyvalError` (:func:`_batch_norm_error`).
    """
    return cases > batch_size


def _batch_norm_error(exc: ValueError, batch: int, cases: int, batch_size: int):
    """The batch-norm error of a one-case batch, said in the terms of the command."""
    from studyval.errors import StudyvalError

    if "Expected more than 1 value per channel" not in str(exc):
        return exc
    return StudyvalError(
        f"a training batch of {batch} case: batch normalisation needs at least 2 cases per "
        f"batch at this input size; this process trains on {cases} case(s) with batch size "
        f"{batch_size}: use a batch size of at least 2 and at least 2 development cases per "
        "process"
    )


def _batches(
    n: int, batch_size: int, rng: np.random.Generator, rank: int, world: int
) -> list[np.ndarray]:
    """The batches of one epoch for this rank (the last incomplete one dropped: :func:`drop_last`)."""
    order = rng.permutation(n)
    batches = [order[i : i + batch_size] for i in range(0, n, batch_size)]
    if drop_last(n, batch_size) and len(batches[-1]) < batch_size:
        batches.pop()  # a last batch of 1 breaks batch norm; its cases come first another epoch
    # every rank gets the same number of batches (DDP needs matching all-reduces)
    per_rank = max(1, len(batches) // world)
    return batches[rank * per_rank : (rank + 1) * per_rank]


def channel_argmax(logits: torch.Tensor) -> torch.Tensor:
    """``logits.argmax(dim=1)``: the label of each voxel of ``(N, C, ...)`` logits.

    The same values (ties to the first channel, NaN the largest); on CPU it reads the channels
    from a copy in which they are the last, contiguous axis: torch's argmax over the strided
    channel axis of a segmentation's 2 or 3 channels is 4-5 times slower.
    """
    if logits.device.type != "cpu" or logits.dim() < 3:
        return logits.argmax(dim=1)
    return logits.movedim(1, -1).contiguous().argmax(dim=-1)


def foreground_dice(logits: torch.Tensor, target: torch.Tensor) -> float:
    """Dice of the argmax foreground (label > 0) against ``target`` (N, 1, ...)."""
    pred = channel_argmax(logits) > 0
    true = target[:, 0] > 0
    inter = (pred & true).sum().item()
    denom = pred.sum().item() + true.sum().item()
    return 1.0 if denom == 0 else 2.0 * inter / denom


#: ``format`` of a training state written by this module.
STATE_FORMAT = "studyval-train-state"
_STATE_TYPES: dict[str, type | tuple[type, ...]] = {
    "config": str,
    "epoch": int,
    "model": dict,
    "optimiser": dict,
    "history": list,
    "torch_rng": torch.Tensor,
}


def _numpy_state_out(state: dict) -> dict:
    """A NumPy ``bit_generator.state`` as plain containers (its 128-bit integers as text)."""
    return {
        "bit_generator": str(state["bit_generator"]),
        "state": {k: str(int(v)) for k, v in state["state"].items()},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _numpy_state_in(state: dict) -> dict:
    return {
        "bit_generator": state["bit_generator"],
        "state": {k: int(v) for k, v in state["state"].items()},
        "has_uint32": int(state["has_uint32"]),
        "uinteger": int(state["uinteger"]),
    }


def _state_dict(
    config_name: str,
    epoch: int,
    module: nn.Module,
    optimiser: torch.optim.Optimizer,
    history: list[dict],
    fingerprint: str | None = None,
) -> dict:
    """The resume state: tensors and plain containers only (``torch.load(weights_only=True)``)."""
    state: dict = {
        "format": STATE_FORMAT,
        "version": 1,
        "config": config_name,
        "epoch": int(epoch),
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "optimiser": optimiser.state_dict(),
        "history": [dict(r) for r in history],
        "torch_rng": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda_rng"] = torch.cuda.get_rng_state_all()
    if fingerprint is not None:
        state["fingerprint"] = fingerprint
    return state


def _write_train_state(path: Path, state: dict) -> None:
    """Write the resume state atomically (temporary file, fsync, rename)."""
    tmp = path.with_name(path.name + ".tmp-write")
    with open(tmp, "wb") as fh:
        torch.save(state, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_train_state(
    path: str | Path,
    *,
    config_name: str,
    fingerprint: str | None = None,
    numpy_rng: bool = False,
) -> dict:
    """Read a resume state without running code (``weights_only=True``) and check its shape.

    Raises
    ------
    CheckpointError
        Not a torch file, a file torch refuses to load without executing code, missing or
        mistyped keys, another config, or (``fingerprint`` given) another run's settings.

    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for foreign or corrupt files
        raise CheckpointError(
            f"{path}: not a studyval training state (torch cannot load it as plain tensors and "
            f"containers: {type(exc).__name__}); delete it to train from the start"
        ) from exc
    if not isinstance(state, dict):
        raise CheckpointError(
            f"{path}: not a studyval training state (holds a {type(state).__name__})"
        )
    required = dict(_STATE_TYPES)
    if numpy_rng:
        required["numpy_rng"] = dict
    missing = [k for k in required if k not in state]
    wrong = [k for k, t in required.items() if k in state and not isinstance(state[k], t)]
    if missing or wrong:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"wrong type of {', '.join(wrong)}"] if wrong else []
        )
        raise CheckpointError(f"{path}: not a studyval training state ({'; '.join(parts)})")
    if state["config"] != config_name:
        raise CheckpointError(f"{path}: state of config {state['config']!r}, not {config_name!r}")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        raise CheckpointError(
            f"{path}: written by a run with other settings or another manifest (config, "
            "batch size, learning rate, seed or cases differ); use another output folder, or "
            "delete the file to train from the start"
        )
    if len(state["history"]) != state["epoch"] + 1 or state["epoch"] < 0:
        raise CheckpointError(
            f"{path}: inconsistent training state (epoch {state['epoch']}, "
            f"{len(state['history'])} history rows)"
        )
    if not all(torch.is_tensor(v) for v in state["model"].values()):
        raise CheckpointError(f"{path}: the network's state holds values that are not tensors")
    return state


def _restore(state: dict, model: nn.Module, optimiser: torch.optim.Optimizer, path: Path) -> None:
    try:
        model.load_state_dict(state["model"], strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"{path}: the saved network does not fit this config ({exc})"
        ) from exc
    try:
        optimiser.load_state_dict(state["optimiser"])
    except (ValueError, KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path}: the saved optimiser state does not fit ({exc})") from exc
    torch.set_rng_state(state["torch_rng"])
    if "cuda_rng" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda_rng"]))


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
        state = load_train_state(state_path, config_name=config.name, numpy_rng=True)
        _restore(state, model, optimiser, state_path)
        start = int(state["epoch"]) + 1
        history = list(state["history"])
        rng.bit_generator.state = _numpy_state_in(state["numpy_rng"])
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
                try:
                    out = model(xb)
                except ValueError as exc:
                    raise _batch_norm_error(exc, len(xb), len(x_all), batch_size) from exc
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
            state = _state_dict(config.name, epoch, module, optimiser, history)
            state["numpy_rng"] = _numpy_state_out(rng.bit_generator.state)
            _write_train_state(state_path, state)
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


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Set torch's intra-op threads for the block (``None``: leave them), then restore them."""
    if n is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def resolve_config(config: ModelConfig | str | Path, *, smoke: bool = False) -> ModelConfig:
    """A :class:`ModelConfig` from itself, a config name or a config folder (``smoke``: tiny)."""
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    return cfg.smoke_version() if smoke else cfg


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)  # DataLoader workers are processes: one thread each


def _run_fingerprint(cfg: ModelConfig, target: str, settings: dict, *record_sets) -> str:
    import hashlib
    import json

    payload = {
        "config": cfg.name,
        "network": [cfg.arch, cfg.spatial_dims, cfg.in_channels, cfg.out_channels],
        "network_kwargs": repr(sorted(cfg.network_kwargs.items())),
        "input": [list(cfg.spacing), list(cfg.hu_window), list(cfg.roi_size)],
        "classes": list(cfg.classes),
        "target": target,
        "settings": settings,
        "cases": [
            [[r.case_id, r.image, r.label, r.mask] for r in records] for records in record_sets
        ],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _unwrapped(exc: RuntimeError) -> BaseException:
    """The studyval error behind a DataLoader or MONAI transform error, if there is one."""
    from studyval.errors import StudyvalError

    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, StudyvalError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return exc


def _evaluate(
    model: nn.Module, loader, loss_fn: nn.Module, *, seg: bool, dev: torch.device
) -> torch.Tensor:
    """Sums over this rank's validation cases: loss x n, n, and the metric's numerator, denominator."""
    sums = torch.zeros(4, dtype=torch.float64)
    model.eval()
    with torch.no_grad(), autocast_context(dev):
        for batch in loader:
            xb = batch["image"].to(dev, non_blocking=True)
            yb = batch["target"].to(dev, non_blocking=True)
            out = model(xb).float()
            sums[0] += float(loss_fn(out, yb)) * len(xb)
            sums[1] += len(xb)
            if seg:
                pred, true = channel_argmax(out) > 0, yb[:, 0] > 0
                sums[2] += float((pred & true).sum())
                sums[3] += float(pred.sum() + true.sum())
            else:
                sums[2] += float((out.argmax(dim=1) == yb).sum())
                sums[3] += len(xb)
    return sums


def _all_reduce(t: torch.Tensor, dev: torch.device) -> torch.Tensor:
    if not _ddp_active():
        return t
    import torch.distributed as dist

    moved = t.to(dev) if dev.type == "cuda" else t
    dist.all_reduce(moved, op=dist.ReduceOp.SUM)
    return moved.cpu()


def train_from_manifest(
    config: ModelConfig | str | Path,
    images: str | Path,
    out: str | Path,
    *,
    epochs: int | None = None,
    cache: str = "none",
    cache_rate: float = 1.0,
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
    batch_size: int | None = None,
    learning_rate: float | None = None,
    seed: int | None = None,
    val_split: str | None = "internal",
    root: str | Path | None = None,
    device: str | torch.device | None = None,
    threads: int | None = None,
    smoke: bool = False,
    progress: bool = True,
    resume: bool = True,
) -> TrainResult:
    """Train a config's network on the images of a manifest, streaming them from disk.

    The development rows are trained on, the ``val_split`` rows (``internal``: held-out
    patients of the development centres) validated on each epoch (the development rows when
    there are none); ``external`` rows are never read. Items come from a MONAI dataset
    (:func:`studyval.models.datasets.make_dataset`) through a ``DataLoader`` with a
    ``DistributedSampler`` (shuffled by ``seed + epoch``, so the order does not depend on what
    ran before: a resumed run sees the batches an uninterrupted run sees). The last,
    incomplete batch of an epoch is dropped whenever a process's cases fill more than one batch
    (a last batch of one case breaks batch normalisation; :func:`drop_last`); cases that fit in
    one batch are trained on as that one smaller batch.

    Under ``torchrun --nproc_per_node=N`` it runs DistributedDataParallel (gloo on CPU, NCCL on
    CUDA): each rank takes every N-th case of the epoch's order (the sampler pads the last
    round by repeating cases), gradients are averaged, the epoch's losses and metrics are
    summed over ranks, and only rank 0 writes files. bf16 autocast on CUDA, fp32 on CPU.

    After every epoch rank 0 writes ``out/history.csv`` and ``out/train_state.pt`` atomically
    (network, optimiser, epoch, history, torch RNG: tensors and plain containers, loaded with
    ``weights_only=True``). A rerun with the same ``out`` continues after the last complete
    epoch and ends with the weights an uninterrupted run writes (byte-identical on CPU with the
    same thread count); a state written with other settings or cases is refused.

    Parameters
    ----------
    config : ModelConfig, str or Path
        The config, its name or its folder.
    images : str or Path
        Image manifest (``data_dictionary/images.yml``); segmentation configs need
        ``mask_path``, classification configs ``label`` on development and internal rows.
    out : str or Path
        Output folder (weights, history, resume state, disk cache).
    epochs : int, optional
        Total epochs (default: the config's ``training.max_epochs``).
    cache : {"none", "memory", "disk"}
        ``none``: each volume is read when its batch is built (memory bounded by the batch and
        the workers' prefetch); ``memory``: ``CacheDataset`` keeps ``cache_rate`` of the
        preprocessed volumes (per rank under DDP); ``disk``: ``PersistentDataset`` under
        ``cache_dir`` (default ``out/cache``).
    cache_rate : float
        Fraction kept by the memory cache.
    num_workers : int
        ``DataLoader`` worker processes (one torch thread each); 0 reads in the main process.
    batch_size, learning_rate, seed : optional
        Override the config's ``training`` section (batch size per rank).
    val_split : str or None
        Split validated on; ``None`` validates on the development rows.
    root : str or Path, optional
        Image root (default: the manifest's folder).
    device : str or torch.device, optional
        Default CUDA when available (``cuda:LOCAL_RANK`` under torchrun), else CPU.
    threads : int, optional
        Torch intra-op threads during the call (restored after).
    smoke : bool
        Use the config's tiny ``smoke`` network and ROI.
    progress, resume : bool
        Progress bar on stderr; continue from ``out/train_state.pt``.

    Returns
    -------
    TrainResult

    Raises
    ------
    InputValidationError
        The manifest breaks its contract (every violation listed; nothing written).
    CheckpointError
        A resume state that is foreign, tampered, or of another run.

    """
    from monai.losses import DiceCELoss
    from torch.utils.data import DataLoader, DistributedSampler, Subset

    from studyval.errors import StudyvalError
    from studyval.models.datasets import check_item, make_dataset
    from studyval.models.manifest import read_manifest

    cfg = resolve_config(config, smoke=smoke)
    seg = cfg.task == "segmentation"
    target = "mask" if seg else "label"
    manifest = read_manifest(images, root=root, require=target, classes=cfg.classes)
    train_recs = manifest.split("development")
    val_recs = manifest.split(val_split) if val_split else []
    if not train_recs:
        raise StudyvalError(f"{manifest.path.name}: no development rows to train on")
    tr = cfg.training
    seed = int(tr.get("seed", 0) if seed is None else seed)
    batch_size = int(tr.get("batch_size", 2) if batch_size is None else batch_size)
    lr = float(tr.get("learning_rate", 1e-3) if learning_rate is None else learning_rate)
    epochs = int(tr.get("max_epochs", 1) if epochs is None else epochs)
    rank, world = _distributed()
    if len(train_recs) < world:
        raise StudyvalError(f"{len(train_recs)} development cases for {world} processes")
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dev.type == "cuda" and world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    out_dir = Path(out)
    state_path = out_dir / "train_state.pt"
    settings = {"batch_size": batch_size, "learning_rate": lr, "seed": seed, "val": val_split}
    fingerprint = _run_fingerprint(cfg, target, settings, train_recs, val_recs)
    with torch_threads(threads):
        seed_everything(seed, deterministic=bool(tr.get("deterministic", True)))
        model = cfg.build_network().to(dev)
        optimiser = torch.optim.AdamW(model.parameters(), lr=lr)
        start, history = 0, []
        if resume and state_path.is_file():
            state = load_train_state(state_path, config_name=cfg.name, fingerprint=fingerprint)
            _restore(state, model, optimiser, state_path)
            start, history = int(state["epoch"]) + 1, list(state["history"])
        if _ddp_active():
            model = nn.parallel.DistributedDataParallel(
                model, device_ids=[dev.index] if dev.type == "cuda" else None
            )
        module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
        if rank == 0:
            out_dir.mkdir(parents=True, exist_ok=True)
        cache_root = Path(cache_dir) if cache_dir is not None else out_dir / "cache"
        if start < epochs:
            common = {"target": target, "cache": cache, "cache_rate": cache_rate}
            common |= {"cache_dir": cache_root, "num_workers": num_workers}
            train_ds = make_dataset(train_recs, cfg, **common)
            val_ds = make_dataset(val_recs, cfg, **common) if val_recs else train_ds
            sampler = DistributedSampler(
                train_ds, num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False
            )
            generator = torch.Generator()
            loader_kw = {
                "batch_size": batch_size,
                "num_workers": num_workers,
                "pin_memory": dev.type == "cuda",
                "worker_init_fn": _worker_init if num_workers else None,
            }
            per_rank = len(sampler)  # this rank's cases per epoch (the sampler pads to equal)
            loader = DataLoader(
                train_ds,
                sampler=sampler,
                generator=generator,
                drop_last=drop_last(per_rank, batch_size),
                **loader_kw,
            )
            val_loader = DataLoader(
                Subset(val_ds, list(range(rank, len(val_ds), world))),
                shuffle=False,
                generator=torch.Generator().manual_seed(seed),  # not the global torch RNG
                **loader_kw,
            )
        loss_fn: nn.Module = (
            DiceCELoss(to_onehot_y=True, softmax=True) if seg else nn.CrossEntropyLoss()
        )
        where = f"{cache_root}" if cache == "disk" else manifest.path.name
        try:
            for epoch in _progress(
                range(start, epochs), enabled=progress and rank == 0, desc=cfg.name
            ):
                t0 = time.perf_counter()
                sampler.set_epoch(epoch)
                generator.manual_seed(seed + epoch)  # workers' base seed, independent of the past
                model.train()
                sums = torch.zeros(2, dtype=torch.float64)
                for batch in loader:
                    check_item(batch, target=target, where=where)
                    xb = batch["image"].to(dev, non_blocking=True)
                    yb = batch["target"].to(dev, non_blocking=True)
                    optimiser.zero_grad(set_to_none=True)
                    with autocast_context(dev):
                        try:
                            logits = model(xb)
                        except ValueError as exc:
                            raise _batch_norm_error(exc, len(xb), per_rank, batch_size) from exc
                        loss = loss_fn(logits.float(), yb)
                    loss.backward()
                    optimiser.step()
                    sums += torch.tensor(
                        [float(loss.detach()) * len(xb), len(xb)], dtype=torch.float64
                    )
                    # drop this batch before the loader builds the next: at most one batch alive
                    del batch, xb, yb, logits, loss
                val = _evaluate(module, val_loader, loss_fn, seg=seg, dev=dev)
                sums, val = _all_reduce(sums, dev), _all_reduce(val, dev)
                metric = (
                    (1.0 if val[3] == 0 else float(2 * val[2] / val[3]))
                    if seg
                    else float(val[2] / max(val[1], 1))
                )
                history.append(
                    {
                        "epoch": epoch,
                        "train_loss": float(sums[0] / sums[1]),
                        "val_loss": float(val[0] / max(val[1], 1)),
                        "val_metric": metric,
                        "metric": "dice" if seg else "accuracy",
                        "seconds": round(time.perf_counter() - t0, 3),
                    }
                )
                if rank == 0:
                    _write_history(out_dir / "history.csv", history)
                    _write_train_state(
                        state_path,
                        _state_dict(cfg.name, epoch, module, optimiser, history, fingerprint),
                    )
        except RuntimeError as exc:  # MONAI wraps a transform's error: say what it was
            raise _unwrapped(exc) from None
        weights_path = version = None
        if rank == 0:
            from studyval.models.checkpoints import sha256_file

            weights_path, version = save_weights(
                module,
                out_dir,
                config_name=cfg.name,
                info={
                    "epochs": epochs,
                    "seed": seed,
                    "batch_size": batch_size,
                    "world_size": world,
                    "learning_rate": lr,
                    "last_epoch": history[-1] if history else {},
                    "manifest": manifest.path.name,
                    "manifest_sha256": sha256_file(manifest.path),
                    "cases": {"development": len(train_recs), "validation": len(val_recs)},
                },
            )
    return TrainResult(weights_path, version, history, start, epochs)


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
    ap.add_argument("--manifest", help="train on an image manifest instead of phantoms")
    ap.add_argument("--images-root", help="folder the manifest's paths are relative to")
    ap.add_argument("--cache", choices=("none", "memory", "disk"), default="none")
    ap.add_argument("--cache-rate", type=float, default=1.0)
    ap.add_argument("--cache-dir")
    ap.add_argument("--num-workers", type=int, default=0)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--learning-rate", type=float)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--threads", type=int)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    cfg = cfg.smoke_version() if args.smoke else cfg
    if args.manifest:
        res = train_from_manifest(
            cfg,
            args.manifest,
            args.out,
            epochs=args.epochs,
            cache=args.cache,
            cache_rate=args.cache_rate,
            cache_dir=args.cache_dir,
            num_workers=args.num_workers,
            batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            seed=args.seed,
            root=args.images_root,
            threads=args.threads,
            progress=not args.no_progress,
        )
    else:
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
