"""Throughput, memory and resume cost of the manifest commands: local vs Ray, 1 and 2 workers.

    python bench/models/bench_inference.py [--n 300] [--workers 1,2] [--engines local,ray]
        [--train] [--timeout-row] [--batch-size 8] [--dicom-every 1] [--device cpu|cuda]
        [--full] [--dir DIR]

Writes ``--n`` one-vertebra spine phantoms (32x32x16, DICOM series by default: every
``--dicom-every``-th case, the others NIfTI) and their manifest, trains the tiny DenseNet-121
classifier of ``densenet121_ovcf`` (``--full``: the registered 64³ network) for one epoch, then
measures, each run in a fresh subprocess on a fresh output folder:

* **predict** (``predict_from_manifest``), for each engine and worker count: *cold* (every
  case scored; cases/s = n / wall time of the call, start-up of Ray included) and *resume* (the
  same command again, everything already scored: each input re-hashed and skipped, the cost of a
  resume). ``--timeout-row`` adds a local run with ``case_timeout`` set (one reading thread per
  case), to measure what the per-case timeout costs.
* **train** (``--train``; ``train_from_manifest``, one epoch, ``cache="none"``, batch 8: 90 % of
  the cases are development rows, trained on, and 10 % internal rows, validated on; cases/s counts
  both, every case is read once), for each worker count: ``num_workers`` DataLoader workers read
  the series. Its *resume* is the same command again once the epoch is done (the resume state
  read with ``weights_only=True``, nothing trained, the weights written again).

Memory: the peak RSS of the subprocess itself (``resource.getrusage``: the driver) and the peak
summed RSS of its whole process tree (DataLoader workers; for Ray the local cluster's processes
and the actors), sampled every 0.1 s with psutil; on CUDA also the allocator's peak. CPU: the
user + system seconds of the whole tree for both phases (cold and resume), the child's imports
excepted, and cases per CPU-second: unlike the wall-clock rate it does not depend on what else
runs on the machine, so it is the per-core cost a projection can scale. It prints a
table with ratios to the first row of each part and checks that every prediction run wrote the
same table (bit for bit). It never asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _config(full: bool):
    from studyval.models.config import load_config

    cfg = load_config("densenet121_ovcf")
    return cfg if full else cfg.smoke_version()


def _child(args: argparse.Namespace) -> None:
    """One measured run (in its own process): print a JSON line."""
    import torch

    cfg = _config(args.full)
    dev = args.device
    # the libraries imported before the clock starts: the runs are timed, not Python's imports
    import monai.data
    import monai.transforms  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import studyval.models.datasets
    import studyval.models.imaging  # noqa: F401

    out = {"cpu_before_s": sum(os.times()[:2])}
    for phase in ("cold", "resume"):
        t0 = time.perf_counter()
        if args.task == "predict":
            from studyval.models.inference import predict_from_manifest

            res = predict_from_manifest(
                cfg,
                args.weights,
                args.manifest,
                args.out,
                engine=args.engine,
                num_workers=args.nw,
                batch_size=args.batch_size,
                device=dev,
                case_timeout=args.case_timeout,
                progress=False,
            )
            out[phase] = {
                "seconds": time.perf_counter() - t0,
                "scored": res.n_scored,
                "skipped": res.n_skipped,
                "failed": res.n_failed,
            }
        else:
            from studyval.models.training import train_from_manifest

            res = train_from_manifest(
                cfg,
                args.manifest,
                args.out,
                epochs=1,
                batch_size=args.batch_size,
                num_workers=args.nw,
                device=dev,
                threads=1 if dev == "cpu" else None,
                progress=False,
            )
            out[phase] = {"seconds": time.perf_counter() - t0, "start_epoch": res.start_epoch}
    out["driver_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if dev.startswith("cuda"):
        out["cuda_peak_mib"] = torch.cuda.max_memory_allocated() / 2**20
    print("RESULT " + json.dumps(out), flush=True)


def _tree_sample(pid: int, cpu: dict[int, float]) -> float:
    """Summed RSS (MiB) of the process tree; records each process's CPU seconds in ``cpu``."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            with p.oneshot():
                total += p.memory_info().rss
                t = p.cpu_times()
                cpu[p.pid] = max(cpu.get(p.pid, 0.0), t.user + t.system)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20


def _measure(cmd: list[str]) -> tuple[dict, float]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = [0.0]
    cpu: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_sample(proc.pid, cpu))
            time.sleep(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    stdout, _ = proc.communicate()
    done.set()
    t.join()
    line = next((ln for ln in stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{stdout[-3000:]}")
    res = json.loads(line.removeprefix("RESULT "))
    # CPU seconds of the whole tree, sampled every 0.1 s (the last 0.1 s of a process is missed);
    # the child's imports, before its clock starts, are taken out with its own count
    res["tree_cpu_s"] = sum(cpu.values()) - res["cpu_before_s"]
    return res, peak[0]


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores"


def _table(title: str, rows: list, n: int, cuda: bool) -> None:
    base_rate = n / rows[0][3]["cold"]["seconds"]
    base_mem = rows[0][4]
    print(f"\n{title}")
    header = (
        f"{'engine':<9}{'workers':>8}{'cases/s':>9}{'x rate':>8}{'cold s':>8}{'resume s':>10}"
        f"{'resume/cold':>13}{'CPU s':>7}{'cases/CPU-s':>13}{'driver MiB':>12}{'tree MiB':>10}"
        f"{'x mem':>7}" + (f"{'GPU MiB':>9}" if cuda else "")
    )
    print(header)
    for engine, nw, _, res, tree_peak in rows:
        cold, resume = res["cold"]["seconds"], res["resume"]["seconds"]
        rate = n / cold
        cpu = res["tree_cpu_s"]
        print(
            f"{engine:<9}{nw:>8}{rate:>9.1f}{rate / base_rate:>8.2f}{cold:>8.1f}{resume:>10.2f}"
            f"{resume / cold:>13.3f}{cpu:>7.0f}{n / cpu:>13.1f}{res['driver_maxrss_mib']:>12.0f}"
            f"{tree_peak:>10.0f}{tree_peak / base_mem:>7.2f}"
            + (f"{res.get('cuda_peak_mib', float('nan')):>9.0f}" if cuda else "")
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--train", action="store_true", help="also time train_from_manifest")
    ap.add_argument(
        "--timeout-row", action="store_true", help="also a local run with case_timeout set"
    )
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dicom-every", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda (scoring and training)")
    ap.add_argument("--full", action="store_true", help="the registered 64³ DenseNet-121")
    ap.add_argument("--dir", help="work folder (default: a temporary one, removed)")
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--task", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--nw", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--case-timeout", type=float, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    import torch

    from studyval.models.manifest import write_phantom_manifest
    from studyval.models.training import phantom_training_data, train

    tmp = None
    if args.dir:
        work = Path(args.dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_inference_")
        work = Path(tmp.name)
    t0 = time.perf_counter()
    splits = ("development",) * 9 + ("internal",)  # training validates on the 10 % internal
    manifest = write_phantom_manifest(
        work / "study", args.n, dicom_every=args.dicom_every, splits=splits, seed=1
    )
    t_write = time.perf_counter() - t0
    cfg = _config(args.full)
    x, y = phantom_training_data(cfg, 2, seed=1)
    weights = train(cfg, x, y, out_dir=work / "w", epochs=1, progress=False).weights_path
    gpu = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None
    kind = "DICOM series" if args.dicom_every == 1 else "mixed"
    print(
        f"{args.n} phantom cases (32x32x16, {kind}) written in {t_write:.1f} s; machine: "
        f"{_machine()}{f', GPU {gpu}' if gpu else ''}; torch {torch.__version__}; network "
        f"{cfg.arch} {'x'.join(map(str, cfg.roi_size))}{'' if args.full else ' (smoke)'}; "
        f"device {args.device}",
        flush=True,
    )
    common = [sys.executable, __file__, "--child", "--manifest", str(manifest)]
    common += ["--batch-size", str(args.batch_size), "--device", args.device]
    common += ["--full"] if args.full else []
    workers = [int(v) for v in args.workers.split(",")]
    runs = [("predict", e, nw, None) for e in args.engines.split(",") for nw in workers]
    if args.timeout_row:
        runs.append(("predict", "local", max(workers), 600.0))
    if args.train:
        runs += [("train", "local", nw, None) for nw in workers]
    rows: dict[str, list] = {"predict": [], "train": []}
    tables = {}
    for task, engine, nw, timeout in runs:
        out = work / f"out-{task}-{engine}-{nw}-{timeout}"
        cmd = [*common, "--task", task, "--engine", engine, "--nw", str(nw), "--out", str(out)]
        cmd += ["--weights", str(weights)]
        cmd += ["--case-timeout", str(timeout)] if timeout else []
        res, tree_peak = _measure(cmd)
        label = engine + ("+tmo" if timeout else "")
        rows[task].append((label, nw, timeout, res, tree_peak))
        if task == "predict":
            tables[(engine, nw, timeout)] = (out / "predictions.csv").read_bytes()
            assert res["resume"]["scored"] == 0 and res["resume"]["skipped"] == args.n
        else:
            assert res["resume"]["start_epoch"] == 1
        print(f"  done {task} {label} x{nw}: {res['cold']['seconds']:.1f} s", flush=True)
    cuda = args.device.startswith("cuda")
    _table(
        "predict_from_manifest (cold: all scored; resume: all skipped)",
        rows["predict"],
        args.n,
        cuda,
    )
    if rows["train"]:
        _table(
            "train_from_manifest, 1 epoch (resume: the same command after the epoch)",
            rows["train"],
            args.n,
            cuda,
        )
    same = len(set(tables.values())) == 1
    print(f"\nidentical prediction tables across all prediction runs: {same}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
