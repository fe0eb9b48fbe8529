"""The Ray Data engine of :func:`studyval.models.inference.predict_from_manifest`.

The cases to score become a Ray dataset (``ray.data.from_items``), mapped in batches by a pool
of ``num_workers`` actors (:class:`RayScorer`), each holding one model replica (one GPU when
the cluster has a GPU per actor, an equal share of one when it has fewer: :func:`gpus_per_actor`;
else one CPU) and reading its own images, and written by Ray as parquet
part files into one folder per run under ``<out>/results/`` while the run streams: a killed run
keeps the blocks already written. The rows are those of the local engine, bit for bit on CPU
(the same :func:`~studyval.models.inference.prepare_case` and
:class:`~studyval.models.inference.CaseScorer`, each case through the network alone, one torch
thread per actor by default).

Ray is optional (the ``models`` extra installs ``ray[data]``); without it ``engine="ray"`` is a
clear error and the local engine still works.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from studyval.errors import StudyvalError
from studyval.models.config import ModelConfig


class RayScorer:
    """A Ray Data actor: one model replica; maps a batch of cases to result rows."""

    def __init__(
        self,
        config: ModelConfig,
        weights: str,
        threads: int | None,
        device: str | None,
        case_timeout: float | None = None,
    ) -> None:
        import torch

        from studyval.models.inference import CaseScorer

        if threads is not None:
            torch.set_num_threads(int(threads))
        self.config = config
        self.case_timeout = case_timeout
        self.scorer = CaseScorer(config, weights, device=device)

    def __call__(self, batch):
        """Score a batch (a pandas frame of ``case_id``, ``image``) into a pyarrow table."""
        import pyarrow as pa

        from studyval.models.inference import _part_schema, prepare_case

        cases = batch.to_dict("records")
        prepared = [prepare_case(c, self.config, timeout=self.case_timeout) for c in cases]
        return pa.Table.from_pylist(self.scorer.score(prepared), schema=_part_schema())


def gpus_per_actor(cluster_gpus: float, actors: int) -> float:
    """GPUs each scoring actor asks Ray for.

    One each while the cluster has a GPU per actor; with more actors than GPUs, an equal share
    ``1 / ceil(actors / gpus)``, so that the replicas pack onto whole GPUs (two actors on one GPU
    ask for 0.5 each; asking for ``gpus / actors`` could leave an actor waiting for ever on a
    cluster of 3 GPUs and 4 actors); 0 on a cluster without GPUs.
    """
    import math

    if cluster_gpus < 1 or actors < 1:
        return 0.0
    gpus = math.floor(cluster_gpus)
    if gpus >= actors:
        return 1.0
    return math.floor(1e4 / math.ceil(actors / gpus)) / 1e4  # Ray keeps 4 decimals


def run_ray(
    todo: Sequence[dict],
    config: ModelConfig,
    weights: Path,
    run_dir: Path,
    *,
    num_workers: int,
    batch_size: int,
    ray_address: str | None,
    device: str | None,
    threads: int | None,
    progress: bool,
    case_timeout: float | None = None,
) -> Path:
    """Score ``todo`` (dicts of ``case_id`` and absolute ``image`` path) with Ray Data.

    Starts a local Ray (``num_workers + 1`` CPUs: the actors and the parquet writer; no
    dashboard) unless Ray is already initialised in this process or ``ray_address`` names a
    cluster; stops only the Ray it started. At most ``num_workers`` parquet write tasks run at
    once, whatever the cluster's size.

    Returns
    -------
    Path
        ``run_dir``, holding the parquet part files.

    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise StudyvalError(
            "engine 'ray' needs Ray Data: pip install 'ray[data]' (or the models extra)"
        ) from exc

    import logging

    quiet = {} if progress else {"logging_level": logging.WARNING}
    data_logger = logging.getLogger("ray.data")
    level = data_logger.level
    if not progress:
        data_logger.setLevel(logging.WARNING)
    started = False
    if not ray.is_initialized():
        if ray_address:
            ray.init(address=ray_address, log_to_driver=progress, **quiet)
        else:
            ray.init(
                num_cpus=int(num_workers) + 1,
                include_dashboard=False,
                log_to_driver=progress,
                **quiet,
            )
        started = True
    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        use_gpu = (device is None or str(device).startswith("cuda")) and gpus >= 1
        per_actor = gpus_per_actor(gpus, int(num_workers)) if use_gpu else 0.0
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = bool(progress)
        try:
            ctx.print_on_execution_start = bool(progress)
        except AttributeError:  # older Ray
            pass
        ds = ray.data.from_items(list(todo))
        ds = ds.map_batches(
            RayScorer,
            fn_constructor_kwargs={
                "config": config,
                "weights": str(Path(weights).resolve()),
                "threads": threads,
                "device": device if device is not None else ("cuda" if use_gpu else "cpu"),
                "case_timeout": case_timeout,
            },
            compute=ray.data.ActorPoolStrategy(size=int(num_workers)),
            num_gpus=per_actor,
            num_cpus=1,
            batch_size=int(batch_size),
            batch_format="pandas",
        )
        run_dir.parent.mkdir(parents=True, exist_ok=True)
        # at most one write task per scoring actor at a time: each writes one small block of
        # rows, and without a bound Ray starts a worker process (Ray Data imported, seconds of
        # CPU) for each free CPU of the cluster to write them
        ds.write_parquet(str(run_dir), concurrency=int(num_workers))
    finally:
        data_logger.setLevel(level)
        if started:
            ray.shutdown()
    return run_dir
