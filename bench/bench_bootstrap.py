"""Benchmark: 2,000 bootstrap resamples of the AUC, patient-clustered, against other tools.

Run from the repository root::

    python bench/bench_bootstrap.py [--n-rows 10000] [--n-patients 4000]
                                    [--n-resamples 2000] [--repeats 5] [--budget 30]

Data: ``--n-rows`` vertebrae of ``--n-patients`` patients (every patient has at
least one; the rest are spread at random), 30 % positive (40 % of patients are
fracture-prone, 60 % of their vertebrae positive, 10 % of the others'), continuous
scores with a patient effect, so that clustering matters. Methods, all with ``--n-resamples``
resamples:

* ``ours pct``   -- ``studyval.analysis.resampling.bootstrap`` of
  ``weighted_auc_statistic``, resampling **patients**, percentile interval,
* ``ours BCa``   -- the same with ``method="bca"`` (adds the leave-one-patient-out
  jackknife: one more AUC per patient),
* ``ours rows``  -- ``clusters=None``: ordinary bootstrap of rows, percentile,
* ``naive loop`` -- a Python loop: ``Generator.choice`` of patients, rows gathered,
  ``sklearn.metrics.roc_auc_score`` per resample (patient-clustered; a floor for
  what a straightforward implementation costs). ``Generator.choice`` draws the same
  patients as our engine for the same seed, so its interval must agree exactly,
* ``pROC``       -- R ``pROC::ci.auc(roc, method = "bootstrap", boot.n = B)``, timed
  inside R with ``system.time`` (data passed through a temporary CSV; reading it is
  not timed). **pROC resamples rows, stratified by class** (``boot.stratified =
  TRUE``, its default), **not patients**: it has no clustered bootstrap, so it
  answers a different (here: wrong) question; it is timed for scale only.

Times are medians over ``--repeats`` back-to-back runs after a warm-up run, or over
fewer once a method has used ``--budget`` seconds (the naive loop and pROC usually
run once, without warm-up). BLAS is limited to one thread (no method uses it for the
AUC). Wall-clock and process CPU time are both printed: on a shared machine the CPU
time is the steadier measure. Timings are never asserted; the benchmark only checks
that the intervals agree where they should (printed).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from studyval.analysis.clustered import auc_clustered  # noqa: E402
from studyval.analysis.resampling import bootstrap, weighted_auc_statistic  # noqa: E402

R_SCRIPT = r"""
suppressMessages(library(pROC))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
boot_n <- as.integer(args[2]); seed <- as.integer(args[3])
r <- roc(d$y, d$s, levels = c(0, 1), direction = "<")
set.seed(seed)
t <- system.time(ci <- ci.auc(r, method = "bootstrap", boot.n = boot_n,
                              progress = "none"))
cat("proc", sprintf("%.6f", t[["elapsed"]]), sprintf("%.6f", t[["user.self"]] + t[["sys.self"]]),
    sprintf("%.15g", as.numeric(ci)), "\n")
"""


def _data(n_rows: int, n_patients: int, seed: int):
    rng = np.random.default_rng(seed)
    sizes = 1 + rng.multinomial(n_rows - n_patients, np.full(n_patients, 1.0 / n_patients))
    patient = np.repeat(np.arange(n_patients), sizes)
    u = rng.normal(size=n_patients)[patient]
    sick = (rng.random(n_patients) < 0.4)[patient]  # fracture-prone patients
    y = rng.random(n_rows) < np.where(sick, 0.6, 0.1)  # 30 % of vertebrae positive
    s = 1.0 * y + 0.7 * u + 0.7 * rng.normal(size=n_rows)
    return y, s, patient


def _time(fn: Callable[[], object], repeats: int, budget: float, warm: bool):
    if warm:
        fn()
    wall: list[float] = []
    cpu: list[float] = []
    result = None
    while len(wall) < repeats and sum(wall) <= budget:
        w0, c0 = time.perf_counter(), time.process_time()
        result = fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return float(np.median(wall)), float(np.median(cpu)), len(wall), result, min(wall)


def _naive_loop(y, s, patient, n_resamples: int, seed: int, alpha: float = 0.05):
    from sklearn.metrics import roc_auc_score

    rng = np.random.Generator(np.random.PCG64(seed))
    ids = np.unique(patient)
    order = np.argsort(patient, kind="stable")
    bounds = np.searchsorted(patient[order], np.append(ids, ids[-1] + 1))
    rows_of = [order[bounds[g] : bounds[g + 1]] for g in range(ids.size)]
    reps = np.empty(n_resamples)
    for b in range(n_resamples):
        drawn = rng.choice(ids.size, size=ids.size, replace=True)
        rows = np.concatenate([rows_of[g] for g in drawn])
        yb = y[rows]
        reps[b] = roc_auc_score(yb, s[rows]) if 0 < yb.sum() < yb.size else np.nan
    ok = reps[np.isfinite(reps)]
    return np.quantile(ok, [alpha / 2, 1 - alpha / 2])


def _proc(y, s, n_resamples: int, seed: int):
    if shutil.which("Rscript") is None:
        return None, "Rscript not found"
    probe = subprocess.run(["Rscript", "-e", "suppressMessages(library(pROC))"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    if probe.returncode != 0:
        return None, "R package pROC not installed"
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "d.csv", Path(tmp) / "b.R"
        script.write_text(R_SCRIPT)
        np.savetxt(csv, np.column_stack([y.astype(int), s]), delimiter=",", header="y,s",
                   comments="", fmt=["%d", "%.17g"])  # fmt: skip
        out = subprocess.run(["Rscript", str(script), str(csv), str(n_resamples), str(seed)],
                             capture_output=True, text=True, check=True).stdout  # fmt: skip
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "proc":
            return (float(parts[1]), float(parts[2]), [float(v) for v in parts[3:]]), None
    return None, "pROC output not understood"


def _fmt(t: float | None) -> str:
    if t is None:
        return "-"
    return f"{t * 1e3:.0f} ms" if t < 1 else f"{t:.2f} s"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n-rows", type=int, default=10_000)
    p.add_argument("--n-patients", type=int, default=4_000)
    p.add_argument("--n-resamples", type=int, default=2_000)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--budget", type=float, default=30.0, help="seconds per method (default 30)")
    p.add_argument("--seed", type=int, default=2024)
    p.add_argument("--skip-slow", action="store_true", help="skip the naive loop and pROC")
    a = p.parse_args(argv)

    y, s, patient = _data(a.n_rows, a.n_patients, a.seed)
    B = a.n_resamples
    print(f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}")  # fmt: skip
    print(f"data: {a.n_rows} rows, {a.n_patients} patients, {int(y.sum())} positive; "
          f"B = {B} resamples")  # fmt: skip

    stat = weighted_auc_statistic(y, s)
    runs: dict[str, tuple] = {}
    ours = {
        "ours pct (patients)": lambda: bootstrap(
            stat, n_rows=y.size, clusters=patient, n_resamples=B, seed=a.seed, method="percentile"
        ),
        "ours BCa (patients)": lambda: bootstrap(
            stat, n_rows=y.size, clusters=patient, n_resamples=B, seed=a.seed, method="bca"
        ),
        "ours pct (rows)": lambda: bootstrap(
            stat, n_rows=y.size, n_resamples=B, seed=a.seed, method="percentile"
        ),
    }
    for name, fn in ours.items():
        runs[name] = _time(fn, a.repeats, a.budget, warm=True)
        print(f"done {name}", file=sys.stderr, flush=True)

    notes = []
    if not a.skip_slow:
        try:
            import sklearn  # noqa: F401

            runs["naive loop (patients)"] = _time(
                lambda: _naive_loop(y, s, patient, B, a.seed), 1, a.budget, warm=False
            )
        except ImportError:
            notes.append("scikit-learn not installed: naive loop skipped")
        proc, why = _proc(y, s, B, a.seed)
        if proc is None:
            notes.append(f"{why}: pROC skipped")
        else:
            runs["pROC ci.auc boot (rows, stratified)"] = (proc[0], proc[1], 1, proc[2], proc[0])

    base = runs["ours pct (patients)"]
    print(
        "\n| method | wall (median) | wall (best) | CPU (median) | runs | CPU / ours pct | 95% CI |"
    )
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, (wall, cpu, n, res, best) in runs.items():
        if hasattr(res, "ci_low"):
            ci = f"{res.ci_low:.4f} - {res.ci_high:.4f}"
        elif name.startswith("pROC"):
            ci = f"{res[0]:.4f} - {res[2]:.4f}"
        else:
            ci = f"{res[0]:.4f} - {res[1]:.4f}"
        ratio = cpu / base[1]
        print(f"| {name} | {_fmt(wall)} | {_fmt(best)} | {_fmt(cpu)} | {n} | {ratio:.1f}x | {ci} |")
    bca = runs["ours BCa (patients)"]
    print(f"\nBCa adds {_fmt(bca[1] - base[1])} CPU ({bca[1] / base[1]:.2f}x percentile): "
          f"one AUC per left-out patient ({a.n_patients} jackknife weight rows vs {B} "
          "bootstrap rows)")  # fmt: skip
    analytic = auc_clustered(y, s, patient, positive=True)
    print(f"Obuchowski clustered DeLong: AUC {analytic.estimate:.4f}, SE {analytic.se:.5f}, "
          f"CI {analytic.ci_low:.4f} - {analytic.ci_high:.4f}, design effect "
          f"{analytic.design_effect:.2f}; cluster-bootstrap SE {base[3].se:.5f}, "
          f"row-bootstrap SE {runs['ours pct (rows)'][3].se:.5f}")  # fmt: skip
    if "naive loop (patients)" in runs:
        lo, hi = runs["naive loop (patients)"][3]
        dev = max(abs(lo - base[3].ci_low), abs(hi - base[3].ci_high))
        print(f"|naive loop - ours pct| CI (same draws): {dev:.1e}")
    print(f"load average at end {os.getloadavg()[0]:.2f}")
    for note in notes:
        print("note:", note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
