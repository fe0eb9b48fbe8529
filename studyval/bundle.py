"""Results bundles: tidy tables, figures and a provenance manifest, written atomically.

Layout of a bundle directory::

    manifest.json          provenance (inputs' SHA-256, plan, dictionary, versions, git, seed,
                           and the SHA-256 of every table and figure)
    tables/<name>.parquet  every table, also as tables/<name>.csv
    figures/<name>.png     300 dpi, plus .pdf and .svg (vector, fonts embedded)
    report/report.html     the rendered report, and report/report.pdf, its PDF (not hashed: it
                           records how it was rendered in report/render.json)

Determinism: the same inputs and seed give byte-identical tables, figures and
manifest. The manifest holds no timestamps, absolute paths or host names.

Atomicity: everything is written into a hidden sibling directory that is moved
into place only when complete; a failed or interrupted run leaves the previous
complete bundle (or nothing), never a mix.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from studyval.errors import StudyvalError

__all__ = [
    "MANIFEST",
    "MARKER",
    "BundleWriteError",
    "atomic_bundle",
    "check_out",
    "environment_info",
    "file_sha256",
    "foreign_files",
    "git_info",
    "is_bundle",
    "read_manifest",
    "read_table",
    "write_table",
]

MANIFEST = "manifest.json"
#: Marks a folder as a studyval results bundle (the only kind of folder a run replaces).
MARKER = ".studyval-bundle"
_MARKER_TEXT = (
    "studyval results bundle. The next 'studyval run' into this folder replaces it whole;\n"
    "keep nothing else here (a folder holding other files is never replaced).\n"
)
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


#: First characters with which a spreadsheet reads a text cell as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def csv_safe_text(value: object) -> object:
    """A text cell as a spreadsheet shows it but never runs it.

    A string starting with ``=``, ``+``, ``-``, ``@`` (or their full-width
    forms), a tab or a carriage return (other than a plain number such as ``-0.5``) is prefixed with an
    apostrophe, which spreadsheets read as "text follows". Other values are
    returned unchanged.

    Examples
    --------
    >>> print(csv_safe_text('=HYPERLINK("http://x")'))
    '=HYPERLINK("http://x")
    >>> csv_safe_text("-0.5"), csv_safe_text("acute")
    ('-0.5', 'acute')

    """
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        if not _PLAIN_NUMBER.match(value):
            return "'" + value
    return value


def write_table(frame: pd.DataFrame, directory: Path, name: str) -> list[Path]:
    """Write ``frame`` as ``name.parquet`` and ``name.csv`` (deterministic bytes).

    The parquet file keeps every value as it is; in the CSV, text cells that a
    spreadsheet would run as a formula are neutralised (:func:`csv_safe_text`).
    """
    directory.mkdir(parents=True, exist_ok=True)
    pq = directory / f"{name}.parquet"
    csv = directory / f"{name}.csv"
    frame = frame.reset_index(drop=True)
    frame.to_parquet(pq, index=False, engine="pyarrow", compression="snappy")
    text = frame.copy()
    for col in text.columns:
        dtype = text[col].dtype
        textual = pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
        if textual or isinstance(dtype, pd.CategoricalDtype):
            text[col] = text[col].astype(object).map(csv_safe_text)
    text.columns = [csv_safe_text(str(c)) for c in text.columns]
    text.to_csv(csv, index=False, lineterminator="\n")
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


class BundleWriteError(StudyvalError):
    """The bundle cannot be written where asked (a refused ``--out``, a filesystem fault)."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _walk(root: Path) -> tuple[list[str], list[str]]:
    """Files (and symbolic links) and folders under ``root``, as POSIX paths relative to it.

    Symbolic links are listed as files and never followed.
    """
    files: list[str] = []
    folders: list[str] = []
    for base, dirs, names in os.walk(root, followlinks=False):
        rel = Path(base).relative_to(root)
        for d in list(dirs):
            p = Path(base) / d
            if p.is_symlink():
                dirs.remove(d)
                files.append((rel / d).as_posix())
            else:
                folders.append((rel / d).as_posix())
        files.extend((rel / n).as_posix() for n in names)
    return sorted(files), sorted(folders)


def _studyval_manifest(directory: Path) -> dict[str, Any] | None:
    """The manifest of ``directory`` if it is one studyval wrote (else None)."""
    path = directory / MANIFEST
    if not path.is_file() or path.is_symlink():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, OSError):
        return None
    if not isinstance(manifest, dict) or "studyval_version" not in manifest:
        return None
    if not isinstance(manifest.get("outputs"), dict):
        return None
    return manifest


def is_bundle(directory: Path) -> bool:
    """True when ``directory`` carries the bundle marker (or is a bundle of studyval < 0.2).

    A marker is only the claim: :func:`foreign_files` then checks every file
    against the manifest, so a marker copied into a user's folder protects
    nothing of studyval's and replaces nothing of the user's.
    """
    marker = directory / MARKER
    if marker.is_file() and not marker.is_symlink():
        return True
    # bundles written before the marker existed: a manifest written by studyval
    return _studyval_manifest(directory) is not None


def foreign_files(directory: Path) -> list[str]:
    """Files under a bundle ``directory`` that are not studyval's as it wrote them.

    studyval writes the marker, ``manifest.json``, the tables and figures its
    manifest lists under ``outputs``, the imaging files it lists under
    ``imaging`` (each with its SHA-256), ``report/report.html`` and
    ``report/report.pdf``. Anything
    else is foreign: a user's file saved into the folder, a table or figure
    edited after the run (its SHA-256 no longer matches the manifest), a
    ``manifest.json`` that studyval did not write, a symbolic link, an unknown
    folder. A folder holding a foreign file is never replaced.
    """
    manifest = _studyval_manifest(directory)
    files, folders = _walk(directory)
    foreign: list[str] = []
    if manifest is None:
        # a marker with no manifest of studyval's: only the marker itself is studyval's
        own_hashes: dict[str, str] = {}
        if MANIFEST in files:
            foreign.append(f"{MANIFEST} (not written by studyval)")
            files = [f for f in files if f != MANIFEST]
    else:
        outputs = manifest.get("outputs", {})
        imaging = manifest.get("imaging", {})
        own_hashes = {str(k): str(v) for k, v in outputs.items()}
        if isinstance(imaging, dict):
            own_hashes.update({f"imaging/{k}": str(v) for k, v in imaging.items()})
    own = {MARKER, MANIFEST, "report/report.html", "report/report.pdf", *own_hashes}
    for rel in files:
        path = directory / rel
        if rel not in own or path.is_symlink():
            foreign.append(rel)
        elif rel in own_hashes and file_sha256(path) != own_hashes[rel]:
            foreign.append(f"{rel} (edited after the run)")
    own_dirs = {"report", "tables", "figures", "study"} | {
        p.as_posix() for f in own for p in Path(f).parents if p.as_posix() != "."
    }
    foreign += [d + "/" for d in folders if d not in own_dirs]
    return sorted(foreign)


def _resolved(path: Path, what: str) -> Path:
    """``path`` with its links resolved; a loop of links is one clear error."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise BundleWriteError(
            f"{what} {path}: cannot be resolved ({exc}); is it a loop of symbolic links?"
        ) from None


def _inside(path: Path, folder: Path) -> bool:
    try:
        _resolved(path, "the input").relative_to(_resolved(folder, "--out"))
    except ValueError:
        return False
    return True


def _describe(exc: OSError) -> str:
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno == errno.ENOSPC:
        reason = "no space left on the device"
    elif exc.errno == errno.EROFS:
        reason = "the file system is read-only"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        reason = "permission denied"
    return reason


def _write_fault(out: Path, exc: OSError, doing: str) -> BundleWriteError:
    where = f" ({exc.filename})" if exc.filename else ""
    return BundleWriteError(
        f"cannot write the bundle at --out {out}: {_describe(exc)} while {doing}{where}; "
        "nothing was written and any previous bundle there is kept"
    )


def resolve_out(out: str | Path) -> Path:
    """The folder a bundle is written into: ``out``, or the target of ``out`` when it is a link.

    A symbolically linked ``--out`` keeps its link: the bundle replaces the
    folder the link points to.
    """
    out = Path(out)
    if str(out) in ("", "."):
        raise BundleWriteError(
            "--out must name a folder of its own for the bundle, not the current folder"
        )
    return _resolved(out, "--out") if out.is_symlink() else out


def check_out(out: str | Path, *, inputs: Iterable[str | Path] = ()) -> Path:
    """Check, before any analysis, that a bundle may be written at ``out``; return the folder.

    Refused, each with one message: ``out`` (or one of its parents) is a file;
    ``out`` is a mount point (it cannot be replaced atomically); ``out`` is a
    folder that is neither empty nor a studyval bundle, or a bundle holding
    files studyval did not write (they are named); an input file lies inside
    ``out`` (replacing the folder would delete it); the nearest existing
    parent is not writable (read-only file system, no permission). Nothing
    is written by the check except a probe folder that is removed at once,
    and the cleanup of killed runs (:func:`_remove_stale`).

    Raises
    ------
    BundleWriteError
        Naming the path and the rule.

    """
    out = resolve_out(out)
    _remove_stale(out)  # a run killed between its two renames left the bundle hidden: restore it
    for path in inputs:
        if path is not None and _inside(Path(path), out):
            raise BundleWriteError(
                f"the input {Path(path).name} lies inside --out {out}, which is replaced whole "
                "by the new bundle: move the input out of that folder or choose another --out "
                "(studyval never deletes an input)"
            )
    if out.exists() or out.is_symlink():
        if not out.is_dir():
            raise BundleWriteError(f"--out {out} exists and is not a folder")
        if os.path.ismount(out):
            raise BundleWriteError(
                f"--out {out} is a mount point, which cannot be replaced atomically; "
                "choose a folder inside it"
            )
        try:
            entries = list(out.iterdir())
        except OSError as exc:
            raise BundleWriteError(f"--out {out} cannot be read: {_describe(exc)}") from None
        if entries:
            if not is_bundle(out):
                raise BundleWriteError(
                    f"--out {out} exists, is not empty and is not a studyval results bundle; "
                    "choose a new folder (studyval never overwrites other files)"
                )
            foreign = foreign_files(out)
            if foreign:
                shown = ", ".join(foreign[:5]) + (
                    f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
                )
                raise BundleWriteError(
                    f"--out {out} is a studyval bundle but also holds files studyval did not "
                    f"write ({shown}); the bundle is replaced whole, so move them out first or "
                    "choose another --out"
                )
    ancestor = out.parent
    while not ancestor.exists() and not ancestor.is_symlink():
        ancestor = ancestor.parent
    if ancestor.is_symlink() and not ancestor.exists():
        _resolved(ancestor, "--out")  # a loop of links is named as such
        raise BundleWriteError(f"--out {out} cannot be created: {ancestor} is a broken link")
    if not ancestor.is_dir():
        raise BundleWriteError(f"--out {out} cannot be created: {ancestor} is a file, not a folder")
    try:
        probe = tempfile.mkdtemp(prefix=".studyval-probe-", dir=ancestor)
    except OSError as exc:
        raise BundleWriteError(
            f"--out {out} cannot be created: {ancestor} is not writable ({_describe(exc)})"
        ) from None
    os.rmdir(probe)
    return out


def _sibling(out: Path, kind: str) -> list[tuple[Path, int]]:
    """Hidden siblings ``.<out>.<kind>-<pid>-<8 hex>`` that studyval makes, with their pid."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.{kind}-(\d+)-[0-9a-f]{{8}}")
    found = []
    try:
        names = os.listdir(out.parent)
    except OSError:
        return []
    for name in sorted(names):
        match = pattern.fullmatch(name)
        if match:
            found.append((out.parent / name, int(match.group(1))))
    return found


def _made_by_studyval(path: Path) -> bool:
    """A hidden work folder that studyval made: it holds the marker (or nothing yet)."""
    if path.is_symlink() or not path.is_dir():
        return False
    marker = path / MARKER
    if marker.is_file() and not marker.is_symlink():
        return True
    return not any(path.iterdir())


def _remove_stale(out: Path) -> None:
    """Clean up after runs that were killed (their process is gone).

    A killed run may leave its hidden temporary folder, or a killed ``render``
    its hidden render folder (removed when it holds studyval's marker: a
    look-alike folder of the user's is left alone) and, when it died between the two renames of :func:`swap_into_place`,
    the previous bundle in a hidden ``.<out>.old-*`` folder: when ``out`` is
    missing, that bundle is moved back to ``out``; when ``out`` holds the newer
    bundle, the superseded one is removed if it holds only studyval's files.
    """
    if not out.parent.is_dir():
        return
    for kind in ("tmp", "render"):
        for path, pid in _sibling(out, kind):
            if pid != os.getpid() and not _pid_alive(pid) and _made_by_studyval(path):
                shutil.rmtree(path, ignore_errors=True)
    olds = sorted(
        (p for p, pid in _sibling(out, "old") if pid != os.getpid() and not _pid_alive(pid)),
        key=lambda p: p.stat().st_mtime,
    )
    for path in reversed(olds):
        if path.is_symlink() or not path.is_dir() or not is_bundle(path) or foreign_files(path):
            continue
        if not out.exists() and not out.is_symlink():
            os.replace(path, out)
        else:
            shutil.rmtree(path, ignore_errors=True)


def atomic_bundle(
    out: str | Path,
    build: Callable[[Path], Mapping[str, Any]],
    *,
    finish: Callable[[Path], None] | None = None,
    inputs: Iterable[str | Path] = (),
) -> Path:
    """Build a bundle in a temporary sibling directory and move it into place.

    Parameters
    ----------
    out : path
        Final bundle directory. If it exists it must be empty or a previous
        bundle holding only studyval's own files (see :func:`check_out`);
        anything else is refused so that a user's file is never deleted. A
        symbolic link is followed (the link is kept).
    build : callable
        ``build(tmpdir) -> manifest`` writes tables and figures under
        ``tmpdir`` and returns the manifest's content (without ``outputs``).
        The SHA-256 of every file under ``tables/`` and ``figures/`` is added
        as ``outputs`` and the manifest is written.
    finish : callable, optional
        ``finish(tmpdir)`` runs after the manifest is written and before the
        bundle is moved into place (the report is rendered here, so that it
        can read the complete bundle; a rendering failure leaves nothing).
    inputs : iterable of path
        Input files of the run: refused if they lie inside ``out``.

    Returns
    -------
    Path
        The bundle folder (``out``, or the folder a linked ``out`` points to).

    Raises
    ------
    BundleWriteError
        A refused ``out`` or a filesystem fault (full disk, read-only file
        system, no permission); the previous bundle is kept.

    """
    shown = Path(out)
    out = check_out(out, inputs=inputs)
    created: list[Path] = []
    tmp: Path | None = None
    try:
        for parent in reversed([out.parent, *out.parent.parents]):
            if not parent.exists():
                parent.mkdir()
                created.append(parent)
        _remove_stale(out)
        tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
        (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        manifest = dict(build(tmp))
        outputs = {}
        for sub in ("tables", "figures", "study"):
            for path in sorted((tmp / sub).rglob("*")) if (tmp / sub).exists() else []:
                if path.is_file():
                    outputs[path.relative_to(tmp).as_posix()] = file_sha256(path)
        manifest["outputs"] = outputs
        (tmp / MANIFEST).write_text(_dump_json(manifest), encoding="utf-8")
        if finish is not None:
            finish(tmp)
        swap_into_place(tmp, out, check=foreign_files)
        tmp = None
    except OSError as exc:
        raise _write_fault(shown, exc, "writing it") from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            for parent in reversed(created):
                try:
                    parent.rmdir()
                except OSError:
                    break
    return out


def swap_into_place(
    tmp: Path, out: Path, *, check: Callable[[Path], list[str]] | None = None
) -> None:
    """Move the complete directory ``tmp`` onto ``out``, keeping the previous ``out`` on failure.

    The previous ``out`` is first renamed to a hidden ``.<out>.old-<pid>-*`` sibling, so
    that at every moment ``out`` is either the old complete directory or the new one (a
    run killed between the two renames is repaired by the next one, see
    :func:`_remove_stale`). With ``check``, the previous folder is checked once more
    after the renames, before it is deleted: a file saved into it while the run was
    working (``check`` names it) puts the previous folder back, and nothing is deleted.

    Raises
    ------
    BundleWriteError
        ``check`` found files in the previous folder; it is back at ``out``.

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
    if old is None:
        return
    foreign = check(old) if check is not None else []
    if foreign:
        os.replace(out, tmp)
        os.replace(old, out)
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise BundleWriteError(
            f"--out {out}: files studyval did not write appeared in it during the run ({shown}); "
            "the previous folder is kept as it is and the new bundle was not moved into place"
        )
    shutil.rmtree(old, ignore_errors=True)


def python_command() -> str:
    """The interpreter running studyval (for messages)."""
    return sys.executable
