"""Throughput, memory and resume cost of predict_from_manifest: local vs Ray, 1 and 2 workers.

    python bench/models/bench_inference.py [--n 200] [--workers 1,2] [--engines local,ray]
                                           [--batch-size 8] [--dicom-every 1] [--dir DIR]

Writes ``--n`` one-vertebra spine phantoms (32x32x16, DICOM series by default: every
``--dicom-every``-th case, the others NIfTI) and their manifest, trains the tiny DenseNet-121
classifier of ``densenet121_ovcf`` for one epoch, then for each engine and worker count runs
``predict_from_manifest`` twice in a fresh subprocess on a fresh output folder:

* **cold**: every case scored (cases/s = n / wall time of the call, start-up of Ray included);
* **resume**: the same command again, everything already scored (each input re-hashed and
  skipped): the cost of a resume.

Memory: the peak RSS of the subprocess itself (``resource.getrusage``: the driver) and the peak
summed RSS of its whole process tree (DataLoader workers; for Ray the local cluster's processes
and the actors), sampled every 0.1 s with psutil. It prints a table with ratios to the first row
and checks that every run wrote the same table (bit for bit). It never asserts timings.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path


def _child(args: argparse.Namespace) -> None:
    """One measured run (in its own process): print a JSON line."""
    from studyval.models.config import load_config
    from studyval.models.inference import predict_from_manifest

    cfg = load_config("densenet121_ovcf").smoke_version()
    out = {}
    for phase in ("cold", "resume"):
        t0 = time.perf_counter()
        res = predict_from_manifest(
            cfg,
            args.weights,
            args.manifest,
            args.out,
            engine=args.engine,
            num_workers=args.nw,
            batch_size=args.batch_size,
            progress=False,
        )
        out[phase] = {
            "seconds": time.perf_counter() - t0,
            "scored": res.n_scored,
            "skipped": res.n_skipped,
            "failed": res.n_failed,
        }
    out["driver_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(out), flush=True)


def _tree_rss(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        try:
            total += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return total / 2**20


def _measure(cmd: list[str]) -> tuple[dict, float]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _tree_rss(proc.pid))
            time.sleep(0.1)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    stdout, _ = proc.communicate()
    done.set()
    t.join()
    line = next((ln for ln in stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"run failed ({proc.returncode}): {' '.join(cmd)}\n{stdout[-2000:]}")
    return json.loads(line.removeprefix("RESULT ")), peak[0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--engines", default="local,ray")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dicom-every", type=int, default=1)
    ap.add_argument("--dir", help="work folder (default: a temporary one, removed)")
    # child mode
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--engine", help=argparse.SUPPRESS)
    ap.add_argument("--nw", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--weights", help=argparse.SUPPRESS)
    ap.add_argument("--manifest", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        _child(args)
        return 0
    import torch

    from studyval.models.config import load_config
    from studyval.models.manifest import write_phantom_manifest
    from studyval.models.training import phantom_training_data, train

    tmp = None
    if args.dir:
        work = Path(args.dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_inference_")
        work = Path(tmp.name)
    t0 = time.perf_counter()
    manifest = write_phantom_manifest(
        work / "study", args.n, dicom_every=args.dicom_every, splits=("external",), seed=1
    )
    t_write = time.perf_counter() - t0
    cfg = load_config("densenet121_ovcf").smoke_version()
    x, y = phantom_training_data(cfg, 2, seed=1)
    weights = train(cfg, x, y, out_dir=work / "w", epochs=1, progress=False).weights_path
    print(
        f"{args.n} phantom cases (32x32x16, {'DICOM series' if args.dicom_every == 1 else 'mixed'})"
        f" written in {t_write:.1f} s; cpu cores: {os.cpu_count()}; torch {torch.__version__}",
        flush=True,
    )
    rows = []
    tables = {}
    for engine in args.engines.split(","):
        for nw in (int(v) for v in args.workers.split(",")):
            out = work / f"out-{engine}-{nw}"
            cmd = [sys.executable, __file__, "--child", "--engine", engine, "--nw", str(nw)]
            cmd += ["--weights", str(weights), "--manifest", str(manifest), "--out", str(out)]
            cmd += ["--batch-size", str(args.batch_size)]
            res, tree_peak = _measure(cmd)
            tables[(engine, nw)] = (out / "predictions.csv").read_bytes()
            rows.append((engine, nw, res, tree_peak))
            print(f"  done {engine} x{nw}: {res['cold']['seconds']:.1f} s", flush=True)
    base_rate = args.n / rows[0][2]["cold"]["seconds"]
    base_mem = rows[0][3]
    header = (
        f"{'engine':<7}{'workers':>8}{'cases/s':>9}{'x rate':>8}{'cold s':>8}{'resume s':>10}"
        f"{'resume/cold':>13}{'driver MiB':>12}{'tree MiB':>10}{'x mem':>7}"
    )
    print()
    print(header)
    for engine, nw, res, tree_peak in rows:
        cold, resume = res["cold"]["seconds"], res["resume"]["seconds"]
        rate = args.n / cold
        print(
            f"{engine:<7}{nw:>8}{rate:>9.1f}{rate / base_rate:>8.2f}{cold:>8.1f}{resume:>10.2f}"
            f"{resume / cold:>13.3f}{res['driver_maxrss_mib']:>12.0f}{tree_peak:>10.0f}"
            f"{tree_peak / base_mem:>7.2f}"
        )
        assert res["resume"]["scored"] == 0 and res["resume"]["skipped"] == args.n
    same = len(set(tables.values())) == 1
    print(f"\nidentical prediction tables across all runs: {same}")
    if tmp is not None:
        tmp.cleanup()
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
