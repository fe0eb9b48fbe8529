"""Where a run's inputs came from: synthetic demo, phantom imaging chain, public example data, user data.

The manifest of every bundle records ``data_origin`` (see :func:`detect_origin`)
and every report, figure caption and ``studyval figures`` caption of a bundle
whose inputs are not the user's own data says so. Nothing here is guessed from
the contents of a table:

``synthetic``
    A table written by ``studyval synthetic`` or ``studyval demo``
    (:func:`studyval.synthetic._io.write_cohort`): the writer records the
    SHA-256 of each file it wrote in the ``truth.json`` beside it
    (:data:`MARKER_KEY`), and an input whose bytes still have that hash is
    synthetic. A file edited after it was written, or copied without its
    ``truth.json``, is not recognised (it is the user's data from then on).
``phantom``
    The input tables were produced by the imaging demo
    (:mod:`studyval.imaging_demo`: networks trained for a few CPU epochs on CT
    phantoms of a synthetic cohort); recognised from the imaging output's
    ``manifest.json`` (its ``chain`` names the imaging demo).
``public``
    Public example data: when the caller says so
    (``run_protocol(..., data_origin="public")``), or recognised from the
    ``origin.json`` that ``studyval example`` writes beside the tables (the
    data set, its source and licence, and the SHA-256 of each file it wrote).
``user``
    Anything else: the default.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "MARKER_KEY",
    "ORIGINS",
    "detect_origin",
    "origin_of_manifest",
    "origin_record",
    "public_marker",
    "synthetic_marker",
]

#: Key of the marker that the synthetic writer puts into ``truth.json``.
MARKER_KEY = "studyval_data_origin"

#: Kind -> (short label for readers, sentence for the banner and captions).
ORIGINS: dict[str, tuple[str, str]] = {
    "synthetic": (
        "Synthetic demonstration data",
        "The inputs were simulated by studyval's synthetic-cohort generator; no patient is "
        "behind any number, and no result says anything about a clinical model.",
    ),
    "phantom": (
        "Synthetic data and phantom imaging chain",
        "The clinical table was simulated and the model scores come from small networks "
        "trained for a few CPU epochs on computer-generated CT phantoms; no patient is behind "
        "any number, and no result says anything about a clinical model.",
    ),
    "public": (
        "Public example data",
        "The inputs are a public example data set, not the study's own patients; the results "
        "illustrate the analysis and are not the study's findings.",
    ),
    "user": ("Study data", "The inputs were supplied by the user."),
    "unrecorded": (
        "Data origin not recorded",
        "This bundle's manifest does not record where its inputs came from (it was written "
        "by an earlier studyval); treat it as demonstration data until the investigators "
        "confirm otherwise.",
    ),
}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def synthetic_marker(files: Mapping[str, bytes], generator: str) -> dict[str, Any]:
    """The marker the synthetic writer stores in ``truth.json``: kind, generator, file hashes."""
    return {
        "kind": "synthetic",
        "generator": generator,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


def public_marker(files: Mapping[str, bytes], source: str) -> dict[str, Any]:
    """The marker a public example's writer stores in ``origin.json``: kind, source, file hashes.

    ``source`` names the data set, where it ships and its licence (shown in the
    banner's detail).
    """
    return {
        "kind": "public",
        "source": source,
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
    }


def origin_record(kind: str, detail: str = "") -> dict[str, str]:
    """The manifest's ``data_origin``: ``kind``, reader ``label``, ``statement`` and ``detail``."""
    if kind not in ORIGINS or kind == "unrecorded":
        known = ", ".join(k for k in ORIGINS if k != "unrecorded")
        raise ValueError(f"data origin must be one of {known}, not {kind!r}")
    label, statement = ORIGINS[kind]
    return {"kind": kind, "label": label, "statement": statement, "detail": detail}


def _marker(path: Path, kind: str) -> dict[str, Any] | None:
    """The marker of ``kind`` beside ``path`` (``truth.json`` or ``origin.json``), if any."""
    name = "truth.json" if kind == "synthetic" else "origin.json"
    try:
        data = json.loads((path.parent / name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    marker = data.get(MARKER_KEY) if isinstance(data, dict) else None
    if not isinstance(marker, dict) or marker.get("kind") != kind:
        return None
    return marker


def _synthetic_files(path: Path, kind: str = "synthetic") -> set[str]:
    """Names of ``path``'s folder that its marker of ``kind`` lists with ``path``'s SHA-256."""
    marker = _marker(path, kind)
    if marker is None:
        return set()
    hashes = marker.get("sha256")
    if not isinstance(hashes, dict):
        return set()
    try:
        digest = _sha256(path)
    except OSError:
        return set()
    return {name for name, value in hashes.items() if value == digest}


def _imaging_chain(imaging: Path | None) -> str | None:
    if imaging is None:
        return None
    try:
        manifest = json.loads((Path(imaging) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    chain = manifest.get("chain") if isinstance(manifest, dict) else None
    return chain if isinstance(chain, str) else None


def detect_origin(
    clinical: Path, predictions: Path | None = None, imaging: Path | None = None
) -> dict[str, str]:
    """``data_origin`` of a run on these inputs (see the module docstring)."""
    chain = _imaging_chain(imaging)
    if chain is not None and "imaging demo" in chain:
        return origin_record("phantom", f"imaging chain: {chain}")
    marked = [
        role
        for role, path in (("clinical table", clinical), ("prediction table", predictions))
        if path is not None and _synthetic_files(Path(path))
    ]
    if marked:
        return origin_record(
            "synthetic",
            " and ".join(marked)
            + " written by studyval's synthetic-cohort generator (SHA-256 recorded beside them)",
        )
    public = [
        role
        for role, path in (("clinical table", clinical), ("prediction table", predictions))
        if path is not None and _synthetic_files(Path(path), "public")
    ]
    if public:
        source = str((_marker(Path(clinical), "public") or {}).get("source", ""))
        return origin_record(
            "public",
            f"{source} ({' and '.join(public)} written by 'studyval example', SHA-256 recorded "
            "beside them)",
        )
    return origin_record("user")


def origin_of_manifest(manifest: Mapping[str, Any]) -> dict[str, str]:
    """The ``data_origin`` a bundle's manifest records; ``kind: unrecorded`` when it has none."""
    rec = manifest.get("data_origin") if isinstance(manifest, Mapping) else None
    if isinstance(rec, Mapping) and rec.get("kind") in ORIGINS:
        kind = str(rec["kind"])
        label, statement = ORIGINS[kind]
        return {
            "kind": kind,
            "label": label,
            "statement": statement,
            "detail": str(rec.get("detail") or ""),
        }
    label, statement = ORIGINS["unrecorded"]
    return {"kind": "unrecorded", "label": label, "statement": statement, "detail": ""}
