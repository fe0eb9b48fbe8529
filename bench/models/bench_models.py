"""Training and inference throughput of the imaging networks, eager fp32 vs optimised.

    python bench/models/bench_models.py [--tiny] [--steps 5] [--warmup 2] [--no-compile]
        [--modes fp32-eager,bf16-cl-compile] [--peak-tflops X]

Networks: the 3-D UNet of ``unet3d_vertebra_seg`` at 96³ and the 3-D
DenseNet-121 classifier of ``densenet121_ovcf`` at 64³ (their configs). Modes
(``--modes``, comma-separated; default ``fp32-eager,bf16-cl-compile``):

* ``fp32-eager``: float32, contiguous, no compilation, TF32 switched off
  (``torch.backends.cudnn.allow_tf32`` and ``...matmul.allow_tf32`` False): strict fp32;
* ``tf32-eager``: the same with TF32 on for convolutions and matmuls (torch's default
  for cuDNN convolutions: what "fp32" gives a user who changes nothing);
* ``bf16-eager``: bf16 autocast, no other change;
* ``bf16-cl-compile``: bf16 autocast, ``channels_last_3d`` memory format,
  ``torch.compile`` (``--no-compile`` drops the compilation; a compile
  failure is reported in the table and the mode runs without it; the row
  then reads ``bf16-cl``).

For each network and mode: training volumes/s (forward,
backward, AdamW step), inference volumes/s (``no_grad``), peak memory
(CUDA: ``torch.cuda.max_memory_allocated``; CPU: the process's peak RSS,
which only grows and so includes earlier rows), and the achieved fraction of
peak FLOP/s. FLOPs are counted once per network with
``torch.utils.flop_counter.FlopCounterMode`` (training = 3 x forward). Peak
FLOP/s: ``--peak-tflops`` when given; on a known GPU the dense bf16 / fp32
datasheet figure; on CPU a measured large fp32 matmul (a practical peak,
labelled as such).

Without a GPU (or with ``--tiny``) the script uses the configs' tiny
``smoke`` networks at 32³ so that it finishes in a minute on a laptop; the
table says which. It prints and never asserts timings.
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sys
import time

import torch

from studyval.models.config import load_config

# Dense (no sparsity) datasheet peaks in TFLOP/s: (bf16, tf32, fp32). First match of the
# device name wins, so the PCIe H100 comes before the SXM one.
GPU_PEAKS = {
    "H100 PCIe": (756.0, 378.0, 51.0),
    "H100": (989.0, 495.0, 67.0),
    "H200": (989.0, 495.0, 67.0),
    "A100": (312.0, 156.0, 19.5),
    "L4": (121.0, 60.0, 30.0),
}
MODES = ("fp32-eager", "tf32-eager", "bf16-eager", "bf16-cl-compile")


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _peak_memory_mib(dev: torch.device) -> float:
    if dev.type == "cuda":
        return torch.cuda.max_memory_allocated(dev) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _cpu_matmul_tflops(n: int = 2048, repeats: int = 5) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    t = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - t) / 1e12


def _peak_tflops(dev: torch.device, mode: str, override: float | None) -> tuple[float, str]:
    if override is not None:
        return override, "given"
    if dev.type == "cuda":
        name = torch.cuda.get_device_name(dev)
        for key, (p_bf16, p_tf32, p_fp32) in GPU_PEAKS.items():
            if key in name:
                if mode.startswith("bf16"):
                    return p_bf16, f"datasheet {key} bf16"
                return (
                    (p_tf32, f"datasheet {key} tf32")
                    if mode == "tf32-eager"
                    else (
                        p_fp32,
                        f"datasheet {key} fp32",
                    )
                )
        return float("nan"), f"unknown GPU {name}"
    return _cpu_matmul_tflops(), "measured CPU fp32 matmul"


@contextlib.contextmanager
def _tf32(allowed: bool):
    """TF32 for cuDNN convolutions and matmuls on or off for the block, then as before."""
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = allowed
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


def _flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    return float(fc.get_total_flops())


def bench_one(
    cfg_name: str,
    *,
    tiny: bool,
    mode: str,
    steps: int,
    warmup: int,
    batch: int,
    dev: torch.device,
    compile_ok: bool,
) -> dict:
    """Time one network in one mode; return a table row."""
    cfg = load_config(cfg_name)
    if tiny:
        cfg = cfg.smoke_version()
    torch.manual_seed(0)
    model = cfg.build_network().to(dev)
    shape = (batch, cfg.in_channels, *cfg.roi_size)
    x = torch.rand(shape, device=dev)
    if cfg.task == "segmentation":
        y = torch.randint(0, cfg.out_channels, (batch, *cfg.roi_size), device=dev)
    else:
        y = torch.randint(0, cfg.out_channels, (batch,), device=dev)
    flops_fwd = _flops(model, x)
    optimised = mode == "bf16-cl-compile"
    note = "TF32 off" if mode == "fp32-eager" and dev.type == "cuda" else ""
    if optimised:
        model = model.to(memory_format=torch.channels_last_3d)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    net = model
    compiled = False
    if optimised and compile_ok:
        try:
            net = torch.compile(model)
            with torch.no_grad():
                net(x)
            compiled = True
        except Exception as exc:  # compilation needs a working toolchain
            net, note = model, f"compile failed: {type(exc).__name__}"
    elif optimised:
        note = "not compiled"
    amp = (
        torch.autocast(dev.type, dtype=torch.bfloat16)
        if mode.startswith("bf16") and (dev.type == "cpu" or torch.cuda.is_bf16_supported())
        else contextlib.nullcontext()
    )
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)

    def train_step() -> None:
        opt.zero_grad(set_to_none=True)
        with amp:
            out = net(x)
        loss_fn(out.float(), y).backward()
        opt.step()

    for _ in range(warmup):
        train_step()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        train_step()
    _sync(dev)
    t_train = (time.perf_counter() - t) / steps
    with torch.no_grad():
        for _ in range(warmup):
            with amp:
                net(x)
        _sync(dev)
        t = time.perf_counter()
        for _ in range(steps):
            with amp:
                net(x)
        _sync(dev)
    t_inf = (time.perf_counter() - t) / steps
    peak, peak_src = _peak_tflops(dev, mode, ARGS.peak_tflops)
    achieved_train = 3 * flops_fwd / t_train / 1e12
    achieved_inf = flops_fwd / t_inf / 1e12
    return {
        "network": f"{cfg.arch} {'x'.join(map(str, cfg.roi_size))}{' (smoke)' if tiny else ''}",
        "mode": ("bf16-cl-compile" if compiled else "bf16-cl") if optimised else mode,
        "MFU %": f"{100 * achieved_train / peak:.1f} / {100 * achieved_inf / peak:.1f}",
        "batch": batch,
        "train vol/s": batch / t_train,
        "infer vol/s": batch / t_inf,
        "GFLOP/vol fwd": flops_fwd / batch / 1e9,
        "train TFLOP/s": achieved_train,
        "infer TFLOP/s": achieved_inf,
        "peak TFLOP/s": f"{peak:.2f} ({peak_src})",
        "peak mem MiB": _peak_memory_mib(dev),
        "note": note,
    }


def main() -> int:
    """Run the benchmark and print the table."""
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--tiny", action="store_true", help="smoke networks at 32^3 (default without a GPU)"
    )
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument(
        "--modes",
        default="fp32-eager,bf16-cl-compile",
        help=f"comma-separated, of {', '.join(MODES)}",
    )
    ap.add_argument(
        "--configs",
        default="unet3d_vertebra_seg,densenet121_ovcf",
        help="comma-separated config names",
    )
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="peak FLOP/s of the device, in TFLOP/s"
    )
    ARGS = ap.parse_args()
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = ARGS.tiny or dev.type == "cpu"
    name = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    print(
        f"torch {torch.__version__}, device {name}, {'tiny smoke networks' if tiny else 'full networks'}",
        file=sys.stderr,
    )
    modes = [m for m in ARGS.modes.split(",") if m]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        ap.error(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(MODES)}")
    print(
        f"TF32 by default: cudnn {torch.backends.cudnn.allow_tf32}, "
        f"matmul {torch.backends.cuda.matmul.allow_tf32}",
        file=sys.stderr,
    )
    rows = []
    for cfg_name in ARGS.configs.split(","):
        for mode in modes:  # bf16-cl-compile runs without compile when it fails
            print(f"  {cfg_name} {mode} ...", file=sys.stderr, flush=True)
            with _tf32(mode != "fp32-eager") if dev.type == "cuda" else contextlib.nullcontext():
                rows.append(
                    bench_one(
                        cfg_name,
                        tiny=tiny,
                        mode=mode,
                        steps=ARGS.steps,
                        warmup=ARGS.warmup,
                        batch=ARGS.batch,
                        dev=dev,
                        compile_ok=not ARGS.no_compile,
                    )
                )
            row = rows[-1]
            print(
                f"    train {row['train vol/s']:.3g} vol/s, infer {row['infer vol/s']:.3g} vol/s {row['note']}",
                file=sys.stderr,
            )
    from tabulate import tabulate

    print(tabulate(rows, headers="keys", floatfmt=".3g"))
    return 0


ARGS: argparse.Namespace

if __name__ == "__main__":
    raise SystemExit(main())
