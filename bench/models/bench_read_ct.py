"""What reading one CT of clinical size costs a CPU core: the input side of the 1e5-CT projection.

    python bench/models/bench_read_ct.py [--slices 300] [--size 512] [--repeats 2] [--dir DIR]

The phantoms of ``bench_inference.py`` are tiny (32x32x16), so its rates measure orchestration.
This script writes one axial CT series of clinical size (``--size``² pixels of 0.7 mm, ``--slices``
slices of 1.25 mm, 16-bit, uncompressed, one DICOM file per slice: about 150 MB for 300 slices)
and times, with one torch thread (what a DataLoader worker or a Ray actor has), the steps a
prediction runs on every series:

* ``sha256``: hashing the files (the resume key, ``input_key``);
* ``check``: :func:`studyval.models.imaging.check_dicom_series` (every header parsed, geometry
  checked);
* ``load``: :func:`studyval.models.imaging.load_image` without resampling (MONAI PydicomReader,
  RAS);
* ``load+1mm``: ``load_image(spacing=(1, 1, 1))``, the configs' spacing (trilinear);
* ``window+crop``: the classifier's preprocessing of the resampled volume (HU window, 64³ crop).

It prints, for each, the least wall-clock and the least CPU time (``time.process_time``: user +
system of this process, which does not grow when other jobs share the machine) of ``--repeats``,
and the process's peak RSS; it never asserts.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--slices", type=int, default=300)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--dir", help="work folder (default: a temporary one, removed)")
    args = ap.parse_args(argv)
    import numpy as np
    import torch

    from studyval.models.config import load_config
    from studyval.models.datasets import preprocess
    from studyval.models.imaging import check_dicom_series, load_image, sha256_files
    from studyval.models.phantoms import write_dicom_series

    torch.set_num_threads(1)
    tmp = None
    if args.dir:
        work = Path(args.dir)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench_read_ct_")
        work = Path(tmp.name)
    spacing = (0.7, 0.7, 1.25)
    rng = np.random.default_rng(0)
    x = np.arange(args.size) - args.size / 2
    body = (x[:, None] ** 2 + (x[None, :] * 1.4) ** 2 < (0.4 * args.size) ** 2)[:, :, None]
    image = np.where(body, 40.0, -1000.0) + rng.normal(0, 20, (args.size, args.size, args.slices))
    t0 = time.perf_counter()
    files = write_dicom_series(image.astype(np.float32), work / "ct", spacing=spacing, seed=1)
    t_write = time.perf_counter() - t0
    mb = sum(f.stat().st_size for f in files) / 1e6
    del image
    cfg = load_config("densenet121_ovcf")
    steps = {
        "sha256": lambda: sha256_files(sorted(files)),
        "check": lambda: check_dicom_series(work / "ct"),
        "load": lambda: load_image(work / "ct"),
        "load+1mm": lambda: load_image(work / "ct", spacing=(1.0, 1.0, 1.0)),
    }
    best: dict[str, tuple[float, float]] = {}  # step -> (wall s, CPU s), each the least seen
    shape = None

    def timed(name: str, fn):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        old = best.get(name, (float("inf"), float("inf")))
        best[name] = (min(old[0], wall), min(old[1], cpu))
        return out

    for name, fn in steps.items():
        for _ in range(args.repeats):
            out = timed(name, fn)
        if name == "load+1mm":
            shape = out.array.shape
            timed("window+crop", lambda vol=out: preprocess(vol.array, cfg))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"one series: {args.slices} slices of {args.size}x{args.size} (0.7 x 0.7 x 1.25 mm), "
        f"{mb:.0f} MB of DICOM, written in {t_write:.1f} s; resampled to 1 mm: {shape}"
    )
    print(f"{'step':<14}{'wall s':>8}{'CPU s':>8}{'MB per CPU-s':>14}")
    for name, (wall, cpu) in best.items():
        print(f"{name:<14}{wall:>8.2f}{cpu:>8.2f}{mb / max(cpu, 1e-9):>14.0f}")
    print(f"peak RSS {peak:.0f} MiB; torch threads 1")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
