"""Kill a run mid-way, as a crash or an operator would: in a forked child, with SIGKILL.

A fork starts with the test process's modules (torch, MONAI) already imported, where a new
interpreter would spend seconds importing them again; it is as separate a process as one
started by ``subprocess``, and the parent kills it with SIGKILL all the same.
"""

from __future__ import annotations

import multiprocessing
import signal
import time
import traceback
from collections.abc import Callable
from pathlib import Path


def _child(run: Callable[..., object], errors: str, args: tuple) -> None:
    try:
        run(*args)
    except BaseException:
        Path(errors).write_text(traceback.format_exc())
        raise


def kill_when(
    run: Callable[..., object],
    args: tuple,
    ready: Callable[[], bool],
    errors: Path,
    timeout: float = 120,
) -> str:
    """Run ``run(*args)`` in a forked child and SIGKILL it as soon as ``ready()`` holds.

    Asserts that the child died by SIGKILL (not by finishing or failing first) and returns
    what a failure message should show: the child's traceback, if it raised, else its exit code.
    """
    proc = multiprocessing.get_context("fork").Process(
        target=_child, args=(run, str(errors), args)
    )
    proc.start()
    deadline = time.monotonic() + timeout
    while proc.is_alive() and time.monotonic() < deadline and not ready():
        time.sleep(0.05)
    proc.kill()  # SIGKILL
    proc.join()
    err = errors.read_text()[-2000:] if errors.exists() else f"exit code {proc.exitcode}"
    assert proc.exitcode == -signal.SIGKILL, err
    return err
