"""Helpers shared by both engines: staging, deadlines, atomic writes, the stylesheet, templates."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from studyval.errors import RenderError
from studyval.render.qmd import QmdDocument

_CSS_NAME = "studyval.css"

#: Environment of the kernel (and of Quarto): a deterministic, non-interactive run.
_KERNEL_ENV = {
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "PYTHONHASHSEED": "0",
    "SOURCE_DATE_EPOCH": "0",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


@functools.cache
def _template(name: str) -> str:
    """A file of ``studyval/render/templates`` (package data), as text.

    ``studyval-template.html`` (the pandoc HTML template), ``studyval.lua``
    (the Lua filter: callouts, figure cross-references, refusals) and
    ``kernel-setup.py.in`` (the setup cell run before the report's cells).
    """
    try:
        return (files("studyval.render") / "templates" / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RenderError(f"the render template {name} cannot be read: {exc}") from exc


_STAGE_IGNORE = shutil.ignore_patterns(
    ".quarto", "*_files", "__pycache__", ".ipynb_checkpoints", ".git", ".jupyter_cache", "_freeze"
)


def _stage(doc: QmdDocument, root: Path) -> Path:
    """Copy the report directory (and a sibling ``_common``) under ``root``.

    A report without a sibling ``_common`` (a bundle's ``study/report.qmd``, a
    study folder made by ``studyval init``) gets studyval's own, so that its
    ``css: ../_common/studyval.css`` resolves.
    """
    src_dir = doc.path.parent
    for name in ("_quarto.yml", "_quarto.yaml", "_metadata.yml", "_metadata.yaml"):
        if (src_dir / name).exists():
            raise RenderError(
                f"{src_dir / name}: Quarto project and directory metadata files are not "
                "supported (the fallback renderer would ignore them); put the options in "
                "the report's front matter"
            )
    dest_dir = root / "src" / (src_dir.name or "report")
    try:
        shutil.copytree(src_dir, dest_dir, ignore=_STAGE_IGNORE)
        common = src_dir.parent / "_common"
        if common.is_dir() and common.resolve() != src_dir.resolve():
            shutil.copytree(common, dest_dir.parent / "_common", ignore=_STAGE_IGNORE)
        else:
            shutil.copytree(_studyval_css().parent, dest_dir.parent / "_common", ignore=_STAGE_IGNORE)
    except OSError as exc:
        raise RenderError(
            f"cannot copy the report sources to a temporary directory: {exc}"
        ) from exc
    return dest_dir / doc.path.name


def _remaining(deadline: float, what: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise RenderError(f"the render ran out of time before {what}")
    return left


def _atomic_write(output: Path, data: bytes) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, output)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


_LOCAL_REF_RE = re.compile(
    rb"<(?:img|script|link|source|iframe)\b[^>]*?\s(?:src|href)\s*=\s*[\"'](?P<ref>[^\"'#][^\"']*)[\"']",
    re.IGNORECASE,
)


def _check_self_contained(html: bytes, engine: str) -> None:
    for match in _LOCAL_REF_RE.finditer(html):
        ref = match["ref"].decode("utf-8", "replace")
        if not re.match(r"^(?:data:|https?:|mailto:)", ref, re.IGNORECASE):
            raise RenderError(
                f"the {engine} output is not self-contained: it links to {ref!r}, which "
                "could not be embedded (a missing file, or an absolute path: Quarto resolves "
                "'/...' against the report's directory; use a relative path or a file:// URL)"
            )


_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _strip_ansi(text: str) -> str:
    return _ANSI_RE.sub("", text)


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in _strip_ansi(text).splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _studyval_css() -> Path:
    """``reports/_common/studyval.css`` of the installed ``studyval.reports`` package."""
    try:
        css = Path(str(files("studyval.reports") / "_common" / _CSS_NAME))
    except (ImportError, TypeError):
        css = Path(__file__).resolve().parents[2] / "reports" / "_common" / _CSS_NAME
    if not css.is_file():
        raise RenderError(f"the report stylesheet {css} is missing")
    return css
