"""Benchmark: AUC with a DeLong CI, and the paired DeLong test, against other tools.

Run from the repository root::

    python bench/bench_delong.py [--max-n 1000000] [--repeats 7] [--budget 20]

Single model, at n = 1e3, 1e4, 1e5, 1e6 cases (30 % positive, continuous scores):

* ``argsort``  -- one ``numpy.argsort`` of the scores (the yardstick),
* ``sklearn``  -- ``sklearn.metrics.roc_auc_score`` (AUC only, no CI; a floor),
* ``ours``     -- ``studyval.analysis.discrimination.auc`` (AUC, DeLong SE and CI,
  input validation and the full ROC curve),
* ``pROC``     -- R ``pROC::roc()`` + ``ci.auc(method = "delong")``, timed inside R
  with ``system.time`` (data passed through a temporary CSV; reading it is not timed;
  below 1e4 cases a batch of calls is timed and divided, ``system.time`` ticking in ms).

Two models on the same cases (paired DeLong test):

* ``ours``      -- ``compare_auc``,
* ``MLstatkit`` -- ``MLstatkit.Delong_test`` (both AUCs with CIs and the test),
* ``pROC``      -- two ``roc()`` + ``roc.test(paired = TRUE, method = "delong")``.

BLAS is limited to one thread (as all the methods are single-threaded). Wall-clock and
CPU times (``time.process_time``; R's ``user.self + sys.self``) are both reported:
on a shared machine the CPU time is the steadier of the two. Times are medians
over ``--repeats`` back-to-back runs after a warm-up run (in R as in Python),
or over fewer runs when a method has used up ``--budget`` seconds at that n. The
benchmark checks that the tools agree on the numbers (printed), never on timings.
Missing tools (scikit-learn, MLstatkit, Rscript with pROC) are skipped with a note.
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
import warnings
from collections.abc import Callable
from pathlib import Path

# One BLAS thread: every method here is single-threaded (pROC included), and idle
# BLAS workers spinning after one method's call would steal CPU from the next.
# Set before numpy (and scikit-learn, MLstatkit) load their BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from studyval.analysis.discrimination import auc, compare_auc  # noqa: E402

SIZES = (1_000, 10_000, 100_000, 1_000_000)

R_SCRIPT = r"""
suppressMessages(library(pROC))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
reps <- as.integer(args[2]); budget <- as.numeric(args[3])
# system.time has a 1 ms resolution: below 1e4 cases, time a batch of calls and divide.
batch <- max(1L, as.integer(ceiling(1e4 / nrow(d))))
run <- function(expr_fun) {
  res <- expr_fun()  # warm-up
  wall <- c(); cpu <- c()
  for (i in seq_len(reps)) {
    t <- system.time(for (j in seq_len(batch)) res <- expr_fun())
    wall <- c(wall, t[["elapsed"]] / batch)
    cpu <- c(cpu, (t[["user.self"]] + t[["sys.self"]]) / batch)
    if (sum(wall) * batch > budget) break
  }
  list(wall = median(wall), cpu = median(cpu), n = length(wall), res = res)
}
single <- run(function() {
  r <- roc(d$y, d$a, levels = c(0, 1), direction = "<")
  ci.auc(r, method = "delong")
})
cat("single", sprintf("%.6f", single$wall), sprintf("%.6f", single$cpu), single$n,
    sprintf("%.15g", as.numeric(single$res)), "\n")
pair <- run(function() {
  r1 <- roc(d$y, d$a, levels = c(0, 1), direction = "<")
  r2 <- roc(d$y, d$b, levels = c(0, 1), direction = "<")
  roc.test(r1, r2, paired = TRUE, method = "delong")
})
cat("pair", sprintf("%.6f", pair$wall), sprintf("%.6f", pair$cpu), pair$n,
    sprintf("%.15g", pair$res$statistic), "\n")
"""


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(np.int64)
    a = rng.normal(size=n) + 1.0 * y
    b = 0.6 * a + 0.8 * rng.normal(size=n) + 0.3 * y
    return y, a, b


def _time_block(
    fns: dict[str, Callable[[], object]], repeats: int, budget: float
) -> dict[str, tuple[float, float, int]]:
    """Median wall-clock and CPU time of each function over back-to-back runs.

    Back-to-back after one warm-up run, as ``system.time`` is used in R, so
    that every method runs with the same (warm) caches; a method stops early
    once it has used ``budget`` seconds. Returns ``(wall, cpu, runs)``.
    """
    out = {}
    for name, fn in fns.items():
        fn()  # warm-up (imports, first-call caches)
        wall: list[float] = []
        cpu: list[float] = []
        while len(wall) < repeats and sum(wall) <= budget:
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        out[name] = (float(np.median(wall)), float(np.median(cpu)), len(wall))
    return out


def _proc_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    probe = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(pROC))"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return "R package pROC not installed"
    return None


def _run_proc(y, a, b, repeats: int, budget: float) -> dict[str, tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        np.savetxt(csv, np.column_stack([y, a, b]), delimiter=",", header="y,a,b",
                   comments="", fmt=["%d", "%.17g", "%.17g"])  # fmt: skip
        out = subprocess.run(
            ["Rscript", str(script), str(csv), str(repeats), str(budget)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("single", "pair"):
            wall, cpu, runs = float(parts[1]), float(parts[2]), int(parts[3])
            result[parts[0]] = (wall, cpu, runs, [float(v) for v in parts[4:]])
    return result


def _fmt_t(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def _ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "| " + " | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)) + " |"
    sep = "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|"
    body = [
        "| " + " | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) + " |" for r in rows
    ]
    return "\n".join([line, sep, *body])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=float, default=1e6, help="largest n (default 1e6)")
    parser.add_argument("--repeats", type=int, default=7, help="runs per method (default 7)")
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds per method and n (default 20)"
    )
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args(argv)
    sizes = [n for n in SIZES if n <= args.max_n]

    notes = []
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        roc_auc_score = None
        notes.append("scikit-learn not installed: sklearn column skipped")
    try:
        from MLstatkit import Delong_test
    except ImportError:
        Delong_test = None
        notes.append("MLstatkit not installed (pip install MLstatkit): column skipped")
    proc_missing = _proc_available()
    if proc_missing:
        notes.append(f"{proc_missing}: pROC columns skipped")

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average at start {os.getloadavg()[0]:.2f}")  # fmt: skip
    for note in notes:
        print("note:", note)

    single_rows: dict[str, list[list[str]]] = {"wall": [], "cpu": []}
    pair_rows: dict[str, list[list[str]]] = {"wall": [], "cpu": []}
    checks = []
    for n in sizes:
        y, a, b = _data(n, args.seed)
        fns: dict[str, Callable[[], object]] = {
            "argsort": lambda a=a: np.argsort(a),
            "ours": lambda y=y, a=a: auc(y, a, positive=1),
        }
        if roc_auc_score is not None:
            fns["sklearn"] = lambda y=y, a=a: roc_auc_score(y, a)
        fns["ours_pair"] = lambda y=y, a=a, b=b: compare_auc(y, a, b, positive=1)
        if Delong_test is not None:
            fns["mlstatkit_pair"] = lambda y=y, a=a, b=b: Delong_test(y, a, b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # MLstatkit/sklearn chatter; timings only
            t = _time_block(fns, args.repeats, args.budget)
        proc = {}
        if not proc_missing:
            proc = _run_proc(y, a, b, args.repeats, args.budget)

        for metric, col in (("wall", 0), ("cpu", 1)):

            def get(name: str, t=t, proc=proc, col=col) -> float | None:
                if name in t:
                    return t[name][col]
                key = {"proc": "single", "proc_pair": "pair"}.get(name)
                return proc[key][col] if key in proc else None

            single_rows[metric].append([
                f"{n:.0e}", _fmt_t(get("argsort")), _fmt_t(get("sklearn")), _fmt_t(get("ours")),
                _fmt_t(get("proc")), _ratio(get("ours"), get("argsort")),
                _ratio(get("ours"), get("sklearn")), _ratio(get("proc"), get("ours")),
            ])  # fmt: skip
            pair_rows[metric].append([
                f"{n:.0e}", _fmt_t(get("ours_pair")), _fmt_t(get("mlstatkit_pair")),
                _fmt_t(get("proc_pair")), _ratio(get("mlstatkit_pair"), get("ours_pair")),
                _ratio(get("proc_pair"), get("ours_pair")),
            ])  # fmt: skip

        # agreement of the numbers (not timings)
        ours = auc(y, a, positive=1)
        pair = compare_auc(y, a, b, positive=1)
        runs = {k: v[2] for k, v in t.items()} | {f"pROC_{k}": v[2] for k, v in proc.items()}
        msg = [f"n={n:.0e}: runs " + ", ".join(f"{k}={v}" for k, v in runs.items())]
        if "single" in proc:
            lo, est, hi = proc["single"][3]
            dev = max(abs(lo - ours.ci_low), abs(est - ours.estimate), abs(hi - ours.ci_high))
            msg.append(f"|ours - pROC| CI = {dev:.1e}")
        if "pair" in proc:
            msg.append(f"|z ours - z pROC| = {abs(proc['pair'][3][0] - pair.z):.1e}")
        if Delong_test is not None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                z_ml = Delong_test(y, a, b)[0]
            # MLstatkit signs z as (AUC_B - AUC_A) / SE
            msg.append(f"|z ours + z MLstatkit| = {abs(pair.z + z_ml):.1e}")
        if roc_auc_score is not None:
            msg.append(f"|AUC ours - sklearn| = {abs(ours.estimate - roc_auc_score(y, a)):.1e}")
        checks.append("; ".join(msg))
        print(f"done n={n:.0e}", file=sys.stderr, flush=True)

    titles = {"wall": "median wall-clock time", "cpu": "median CPU time of the process"}
    for metric, title in titles.items():
        print(f"\nSingle model: AUC + DeLong 95% CI ({title})\n")
        print(_table(
            ["n", "argsort", "sklearn AUC", "ours auc()", "pROC roc+ci.auc",
             "ours/argsort", "ours/sklearn", "pROC/ours"],
            single_rows[metric],
        ))  # fmt: skip
        print(f"\nTwo models, paired DeLong test ({title})\n")
        print(_table(
            ["n", "ours compare_auc()", "MLstatkit Delong_test", "pROC roc.test",
             "MLstatkit/ours", "pROC/ours"],
            pair_rows[metric],
        ))  # fmt: skip
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    print("\nAgreement and run counts")
    for line in checks:
        print(" ", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
