"""Benchmark: Cox fit (5 covariates, Efron ties) and Harrell's C against other tools.

Run from the repository root::

    python bench/bench_survival.py [--max-n 100000] [--repeats 5] [--budget 30]

Data at n = 1e3, 1e4, 1e5: five standard-normal covariates, exponential event
times (log hazard ratios 0.5, -0.3, 0.2, 0, 0.1) and uniform censoring, times
in whole days (so there are many tied event times, as in registry data; about
70 % events). For each n:

Cox proportional-hazards fit, Efron ties:

* ``ours``      -- ``studyval.analysis.survival.cox`` (coefficients, SEs, the three
  tests, Harrell's C of the linear predictor and the baseline hazard: what
  ``coxph`` computes),
* ``lifelines`` -- ``CoxPHFitter().fit`` (Efron),
* ``sksurv``    -- ``CoxPHSurvivalAnalysis(ties="efron").fit``,
* ``R``         -- ``coxph(Surv(time, status) ~ x1 + ... + x5)`` (Efron; its fit
  includes the concordance), timed inside R with ``system.time``.

Harrell's C of a risk score (the true linear predictor):

* ``ours``      -- ``harrell_c`` (estimate, infinitesimal-jackknife SE, pair counts),
* ``lifelines`` -- ``concordance_index(time, -risk, event)`` (estimate only),
* ``sksurv``    -- ``concordance_index_censored(event, time, risk)`` (estimate, counts),
* ``R``         -- ``concordance(Surv(time, status) ~ risk, reverse = TRUE)`` (estimate, SE).

Data go to R through a temporary CSV (reading it is not timed). BLAS is limited
to one thread (R's ``coxph`` and ``concordance`` are single-threaded). Times are
medians over ``--repeats`` back-to-back runs after a warm-up run, or over fewer
runs once a method has used ``--budget`` seconds at that n; wall-clock and CPU
(``time.process_time``; R's ``user.self + sys.self``) times are both reported.
The script prints the agreement of the numbers between tools, never asserts a
timing. Missing tools (lifelines, scikit-survival, Rscript) are skipped with a note.
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

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from studyval.analysis.survival import cox, harrell_c  # noqa: E402

SIZES = (1_000, 10_000, 100_000)
COVS = ["x1", "x2", "x3", "x4", "x5"]
BETA = np.array([0.5, -0.3, 0.2, 0.0, 0.1])

R_SCRIPT = r"""
suppressMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
reps <- as.integer(args[2]); budget <- as.numeric(args[3])
batch <- max(1L, as.integer(ceiling(2e4 / nrow(d))))  # system.time ticks in ms
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
fit <- run(function() coxph(Surv(time, status) ~ x1 + x2 + x3 + x4 + x5, data = d))
cat("cox", sprintf("%.6f", fit$wall), sprintf("%.6f", fit$cpu), fit$n,
    sprintf("%.15g", coef(fit$res)), "\n")
con <- run(function() concordance(Surv(time, status) ~ risk, data = d, reverse = TRUE))
cat("conc", sprintf("%.6f", con$wall), sprintf("%.6f", con$cpu), con$n,
    sprintf("%.15g", c(con$res$concordance, sqrt(con$res$var))), "\n")
"""


def _data(n: int, seed: int, continuous: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    lp = x @ BETA
    t_event = rng.exponential(500.0 * np.exp(-lp))
    t_cens = rng.uniform(30.0, 2000.0, size=n)
    time_ = np.minimum(t_event, t_cens)
    if not continuous:
        time_ = np.ceil(time_)  # whole days: many tied event times
    d = pd.DataFrame(x, columns=COVS)
    d["time"] = time_
    d["status"] = (t_event <= t_cens).astype(np.int64)
    d["risk"] = lp
    return d


def _time_block(
    fns: dict[str, Callable[[], object]], repeats: int, budget: float
) -> dict[str, tuple[float, float, int]]:
    """Median wall-clock and CPU time of each function (after a warm-up run)."""
    out = {}
    for name, fn in fns.items():
        w0 = time.perf_counter()
        fn()  # warm-up
        if time.perf_counter() - w0 > budget:  # too slow to repeat: one timed run
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            out[name] = (time.perf_counter() - w0, time.process_time() - c0, 1)
            continue
        wall: list[float] = []
        cpu: list[float] = []
        while len(wall) < repeats and sum(wall) <= budget:
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        out[name] = (float(np.median(wall)), float(np.median(cpu)), len(wall))
    return out


def _r_available() -> str | None:
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    probe = subprocess.run(
        ["Rscript", "-e", "suppressMessages(library(survival))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return None if probe.returncode == 0 else "R package survival not installed"


def _run_r(d: pd.DataFrame, repeats: int, budget: float) -> dict[str, tuple]:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT)
        d.to_csv(csv, index=False, float_format="%.17g")
        out = subprocess.run(
            ["Rscript", str(script), str(csv), str(repeats), str(budget)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("cox", "conc"):
            result[parts[0]] = (
                float(parts[1]),
                float(parts[2]),
                int(parts[3]),
                [float(v) for v in parts[4:]],
            )
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
    parser.add_argument("--max-n", type=float, default=1e5, help="largest n (default 1e5)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per method (default 5)")
    parser.add_argument(
        "--budget", type=float, default=30.0, help="seconds per method and n (default 30)"
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--continuous-times",
        action="store_true",
        help="untied (continuous) times instead of whole days",
    )
    parser.add_argument(
        "--no-sksurv", action="store_true", help="skip scikit-survival (slow at 1e5)"
    )
    args = parser.parse_args(argv)
    sizes = [n for n in SIZES if n <= args.max_n]

    notes = []
    try:
        from lifelines import CoxPHFitter
        from lifelines.utils import concordance_index
    except ImportError:
        CoxPHFitter = concordance_index = None
        notes.append("lifelines not installed (pip install lifelines): columns skipped")
    try:
        if args.no_sksurv:
            raise ImportError
        from sksurv.linear_model import CoxPHSurvivalAnalysis
        from sksurv.metrics import concordance_index_censored
    except ImportError:
        CoxPHSurvivalAnalysis = concordance_index_censored = None
        why = "--no-sksurv" if args.no_sksurv else "not installed (pip install scikit-survival)"
        notes.append(f"scikit-survival {why}: columns skipped")
    r_missing = _r_available()
    if r_missing:
        notes.append(f"{r_missing}: R columns skipped")

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.2f}"
    )
    for note in notes:
        print("note:", note)
    print("times:", "continuous (untied)" if args.continuous_times else "whole days (tied)")

    rows: dict[str, dict[str, list[list[str]]]] = {
        "cox": {"wall": [], "cpu": []},
        "c": {"wall": [], "cpu": []},
    }
    checks = []
    for n in sizes:
        d = _data(n, args.seed, args.continuous_times)
        t, e, risk = d["time"].to_numpy(), d["status"].to_numpy(), d["risk"].to_numpy()
        fns: dict[str, Callable[[], object]] = {
            "ours_cox": lambda d=d: cox(d, duration="time", event="status", covariates=COVS),
            "ours_c": lambda t=t, e=e, risk=risk: harrell_c(t, e, risk),
        }
        if CoxPHFitter is not None:
            fns["ll_cox"] = lambda d=d: CoxPHFitter().fit(
                d[[*COVS, "time", "status"]], "time", "status"
            )
            fns["ll_c"] = lambda t=t, e=e, risk=risk: concordance_index(t, -risk, e)
        if CoxPHSurvivalAnalysis is not None:
            ys = np.array(
                list(zip(e.astype(bool), t, strict=True)), dtype=[("event", "?"), ("time", "<f8")]
            )
            xs = d[COVS].to_numpy()
            fns["sk_cox"] = lambda xs=xs, ys=ys: CoxPHSurvivalAnalysis(ties="efron").fit(xs, ys)
            fns["sk_c"] = lambda t=t, e=e, risk=risk: concordance_index_censored(
                e.astype(bool), t, risk
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # comparator chatter (convergence notes); timings only
            tm = _time_block(fns, args.repeats, args.budget)
        rr = {} if r_missing else _run_r(d, args.repeats, args.budget)

        for metric, col in (("wall", 0), ("cpu", 1)):

            def get(name: str, tm=tm, rr=rr, col=col) -> float | None:
                if name in tm:
                    return tm[name][col]
                key = {"r_cox": "cox", "r_c": "conc"}.get(name)
                return rr[key][col] if key in rr else None

            rows["cox"][metric].append(
                [
                    f"{n:.0e}",
                    _fmt_t(get("ours_cox")),
                    _fmt_t(get("r_cox")),
                    _fmt_t(get("ll_cox")),
                    _fmt_t(get("sk_cox")),
                    _ratio(get("ours_cox"), get("r_cox")),
                    _ratio(get("ll_cox"), get("ours_cox")),
                    _ratio(get("sk_cox"), get("ours_cox")),
                ]
            )
            rows["c"][metric].append(
                [
                    f"{n:.0e}",
                    _fmt_t(get("ours_c")),
                    _fmt_t(get("r_c")),
                    _fmt_t(get("ll_c")),
                    _fmt_t(get("sk_c")),
                    _ratio(get("ours_c"), get("r_c")),
                    _ratio(get("ll_c"), get("ours_c")),
                    _ratio(get("sk_c"), get("ours_c")),
                ]
            )

        # agreement of the numbers (not timings)
        ours = cox(d, duration="time", event="status", covariates=COVS)
        oc = harrell_c(t, e, risk)
        runs = {k: v[2] for k, v in tm.items()} | {f"R_{k}": v[2] for k, v in rr.items()}
        msg = [
            f"n={n:.0e} ({int(e.sum())} events, {len(np.unique(t[e == 1]))} distinct event times): runs "
        ]
        msg[0] += ", ".join(f"{k}={v}" for k, v in runs.items())
        if "cox" in rr:
            msg.append(
                f"max|coef ours - R| = {np.max(np.abs(np.array(rr['cox'][3]) - ours.coef)):.1e}"
            )
        if "conc" in rr:
            c_r, se_r = rr["conc"][3]
            msg.append(
                f"|C ours - R| = {abs(oc.estimate - c_r):.1e}, |SE ours - R| = {abs(oc.se - se_r):.1e}"
            )
        if CoxPHFitter is not None:
            ll = CoxPHFitter().fit(d[[*COVS, "time", "status"]], "time", "status")
            msg.append(
                f"max|coef ours - lifelines| = {np.max(np.abs(ll.params_.to_numpy() - ours.coef)):.1e}"
            )
            msg.append(
                f"|C ours - lifelines| = {abs(oc.estimate - concordance_index(t, -risk, e)):.1e}"
            )
        if CoxPHSurvivalAnalysis is not None:
            sk = CoxPHSurvivalAnalysis(ties="efron").fit(xs, ys)
            msg.append(f"max|coef ours - sksurv| = {np.max(np.abs(sk.coef_ - ours.coef)):.1e}")
            msg.append(
                f"|C ours - sksurv| = {abs(oc.estimate - concordance_index_censored(e.astype(bool), t, risk)[0]):.1e}"
            )
        checks.append("; ".join(msg))
        print(f"done n={n:.0e}", file=sys.stderr, flush=True)

    titles = {"wall": "median wall-clock time", "cpu": "median CPU time of the process"}
    for metric, title in titles.items():
        print(f"\nCox fit, 5 covariates, Efron ties ({title})\n")
        print(
            _table(
                [
                    "n",
                    "ours cox()",
                    "R coxph",
                    "lifelines",
                    "sksurv",
                    "ours/R",
                    "lifelines/ours",
                    "sksurv/ours",
                ],
                rows["cox"][metric],
            )
        )
        print(f"\nHarrell's C ({title})\n")
        print(
            _table(
                [
                    "n",
                    "ours harrell_c()",
                    "R concordance",
                    "lifelines",
                    "sksurv",
                    "ours/R",
                    "lifelines/ours",
                    "sksurv/ours",
                ],
                rows["c"][metric],
            )
        )
    print(f"\nload average at end {os.getloadavg()[0]:.2f}")
    print("\nAgreement and run counts")
    for line in checks:
        print(" ", line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
