"""Results bundles: tidy tables, figures and a provenance manifest, written atomically.

Layout of a bundle directory::

    manifest.json          provenance (inputs' SHA-256, plan, dictionary, versions, git, seed,
                           and the SHA-256 of every table and figure)
    tables/<name>.parquet  every table, also as tables/<name>.csv
    figures/<name>.png     300 dpi, plus .pdf and .svg (vector, fonts embedded)
    report/report.html     the rendered report (not hashed: it records how it was rendered
                           in report/render.json)

Determinism: the same inputs and seed give byte-identical tables, figures and
manifest. The manifest holds no timestamps, absolute paths or host names.

Atomicity: everything is written into a hidden sibling directory that is moved
into place only when complete; a failed or interrupted run leaves the previous
complete bundle (or nothing), never a mix.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from studyval.errors import StudyvalError

__all__ = [
    "MANIFEST",
    "atomic_bundle",
    "environment_info",
    "file_sha256",
    "git_info",
    "read_manifest",
    "read_table",
    "write_table",
]

MANIFEST = "manifest.json"
_PACKAGES = ("studyval", "numpy", "scipy", "pandas", "pyarrow", "matplotlib", "pydantic", "pyyaml")


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def environment_info() -> dict[str, Any]:
    """Python and package versions (no host names, no paths)."""
    versions = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "packages": versions,
    }


def git_info() -> dict[str, Any]:
    """Commit of the studyval source tree, and whether tracked files differ from it."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
        return {"commit": commit, "dirty": bool(status.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown (not a git checkout)", "dirty": None}


def write_table(frame: pd.DataFrame, directory: Path, name: str) -> list[Path]:
    """Write ``frame`` as ``name.parquet`` and ``name.csv`` (deterministic bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    pq = directory / f"{name}.parquet"
    csv = directory / f"{name}.csv"
    frame = frame.reset_index(drop=True)
    frame.to_parquet(pq, index=False, engine="pyarrow", compression="snappy")
    frame.to_csv(csv, index=False, lineterminator="\n")
    return [pq, csv]


def read_table(bundle: str | Path, name: str) -> pd.DataFrame:
    """Read table ``name`` of a bundle (from parquet)."""
    path = Path(bundle) / "tables" / f"{name}.parquet"
    if not path.is_file():
        raise StudyvalError(f"bundle {bundle} has no table {name!r} ({path} missing)")
    return pd.read_parquet(path)


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """Read the manifest of a bundle."""
    path = Path(bundle) / MANIFEST
    if not path.is_file():
        raise StudyvalError(f"{bundle} is not a results bundle: {MANIFEST} is missing")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StudyvalError(
            f"{path}: not a readable results manifest (invalid JSON: {exc})"
        ) from None
    if not isinstance(manifest, dict):
        raise StudyvalError(f"{path}: not a results manifest (a JSON object is expected)")
    return manifest


def _dump_json(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Remove hidden temporary siblings left by runs that were killed (their process is gone)."""
    for kind in ("tmp", "old"):
        for path in out.parent.glob(f".{out.name}.{kind}-*"):
            try:
                pid = int(path.name.rsplit("-", 2)[-2])
            except (ValueError, IndexError):
                continue
            if pid != os.getpid() and not _pid_alive(pid) and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)


def atomic_bundle(
    out: str | Path,
    build: Callable[[Path], Mapping[str, Any]],
    *,
    finish: Callable[[Path], None] | None = None,
) -> Path:
    """Build a bundle in a temporary sibling directory and move it into place.

    Parameters
    ----------
    out : path
        Final bundle directory. If it exists it must be a previous bundle (it
        has a ``manifest.json``) or empty; anything else is refused so that a
        user's directory is never overwritten.
    build : callable
        ``build(tmpdir) -> manifest`` writes tables and figures under
        ``tmpdir`` and returns the manifest's content (without ``outputs``).
        The SHA-256 of every file under ``tables/`` and ``figures/`` is added
        as ``outputs`` and the manifest is written.
    finish : callable, optional
        ``finish(tmpdir)`` runs after the manifest is written and before the
        bundle is moved into place (the report is rendered here, so that it
        can read the complete bundle; a rendering failure leaves nothing).

    Returns
    -------
    Path
        ``out``.

    """
    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise StudyvalError(f"--out {out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise StudyvalError(
                f"--out {out} exists, is not empty and is not a studyval results bundle; "
                "choose a new directory (studyval never overwrites other files)"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        manifest = dict(build(tmp))
        outputs = {}
        for sub in ("tables", "figures"):
            for path in sorted((tmp / sub).rglob("*")) if (tmp / sub).exists() else []:
                if path.is_file():
                    outputs[path.relative_to(tmp).as_posix()] = file_sha256(path)
        manifest["outputs"] = outputs
        (tmp / MANIFEST).write_text(_dump_json(manifest), encoding="utf-8")
        if finish is not None:
            finish(tmp)
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def swap_into_place(tmp: Path, out: Path) -> None:
    """Move the complete directory ``tmp`` onto ``out``, keeping the previous ``out`` on failure.

    The previous ``out`` is first renamed to a hidden ``.<out>.old-<pid>-*`` sibling, so
    that at every moment ``out`` is either the old complete directory or the new one.
    """
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        os.replace(out, old)
    try:
        os.replace(tmp, out)
    except BaseException:
        if old is not None:
            os.replace(old, out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def python_command() -> str:
    """The interpreter running studyval (for messages)."""
    return sys.executable
