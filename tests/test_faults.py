"""Faults: a run killed with SIGKILL at any moment leaves the previous complete bundle or none.

``studyval run`` is started as a subprocess and killed after a short delay, measured
either from the start (import, validation, analysis) or from the moment its hidden
temporary bundle appears (tables, figures, manifest being written). The runs are
started together so that the whole test costs about one run.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SLUG = "ovcf-chronicity"

# (clock, seconds, previous bundle present?)
KILLS = [
    ("start", 0.3, True),  # importing
    ("start", 2.5, True),  # validating or analysing
    ("tmp", 0.0, True),  # the hidden bundle has just appeared: tables being written
    ("tmp", 0.7, True),  # tables or figures
    ("tmp", 2.0, True),  # figures
    ("tmp", 0.3, False),  # no previous bundle: nothing may appear at --out
]


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def assert_complete(bundle: Path) -> dict[str, str]:
    """Every file the manifest lists is there with its hash, and nothing else."""
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    present = {
        p.relative_to(bundle).as_posix(): _sha(p)
        for sub in ("tables", "figures", "study")
        for p in sorted((bundle / sub).rglob("*"))
        if p.is_file()
    }
    assert present == manifest["outputs"], f"{bundle} is a mix: files and manifest disagree"
    return present


@pytest.mark.slow
def test_killed_runs_leave_the_previous_bundle_or_none(demo_bundle, tmp_path):
    previous, inputs = demo_bundle
    expected = assert_complete(previous)
    manifest_bytes = (previous / "manifest.json").read_bytes()
    procs = []
    for k, (clock, delay, has_previous) in enumerate(KILLS):
        parent = tmp_path / f"kill{k}-{clock}-{delay}"
        parent.mkdir()
        out = parent / "bundle"
        if has_previous:
            shutil.copytree(previous, out)
        cmd = [sys.executable, "-m", "studyval.cli", "run", SLUG]
        cmd += ["-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])]
        cmd += ["-o", str(out), "--no-render", "-q"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(
            {"proc": proc, "parent": parent, "clock": clock, "delay": delay, "t0": time.monotonic()}
        )
    deadline = time.monotonic() + 240
    while any(p["proc"].poll() is None for p in procs):
        now = time.monotonic()
        assert now < deadline, "runs did not finish or get killed in time"
        for p in procs:
            if p["proc"].poll() is not None or p.get("killed"):
                continue
            if p["clock"] == "tmp" and "tmp_seen" not in p:
                if any(p["parent"].glob(".bundle.tmp-*")):
                    p["tmp_seen"] = now
                continue
            since = p["t0"] if p["clock"] == "start" else p["tmp_seen"]
            if now - since >= p["delay"]:
                p["proc"].send_signal(signal.SIGKILL)
                p["killed"] = now
        time.sleep(0.01)

    outcomes = []
    for p, (_, _, has_previous) in zip(procs, KILLS, strict=True):
        parent, proc = p["parent"], p["proc"]
        visible = sorted(x.name for x in parent.iterdir() if not x.name.startswith("."))
        assert visible in ([], ["bundle"]), f"stray directories in {parent.name}: {visible}"
        bundle = parent / "bundle"
        if bundle.exists():
            # the previous bundle, or (if the run won the race) an identical complete new one
            assert assert_complete(bundle) == expected
            assert (bundle / "manifest.json").read_bytes() == manifest_bytes or (
                json.loads((bundle / "manifest.json").read_text())["outputs"]
                == json.loads(manifest_bytes)["outputs"]
            )
        outcomes.append((parent.name, proc.returncode, bundle.exists()))
        if has_previous and proc.returncode == -signal.SIGKILL:
            # killed before the final rename: the previous bundle is still in place,
            # unless the kill fell between the two renames (then nothing is there)
            assert bundle.exists() or any(parent.glob(".bundle.old-*")), outcomes
        if not has_previous and proc.returncode == -signal.SIGKILL:
            assert not bundle.exists(), "a killed first run left something at --out"
    killed_mid_write = [p for p in procs if "tmp_seen" in p and p["proc"].returncode < 0]
    assert len(killed_mid_write) >= 3, outcomes
