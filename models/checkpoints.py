"""Weights files named by their SHA-256, and strict loading.

A weights file holds only the network's ``state_dict`` (``torch.save``) and
is named ``<config>-<sha256>.pt`` after the SHA-256 of its own bytes; that
hash is the prediction table's ``model_version`` (``"sha256:<hex>"``). A
JSON sidecar (``<config>-<sha256>.json``) records the config, the epoch and
the training metrics, like a bundle's ``metadata.json`` ``weights`` entry.

:func:`load_weights` never returns an untrained network: a missing path, a
file whose content does not match the hash in its name, or a state dict that
does not fit the network is a :class:`CheckpointError`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from studyval.errors import StudyvalError

_NAME = re.compile(r"^(?P<config>.+)-(?P<sha>[0-9a-f]{64})\.pt$")


class CheckpointError(StudyvalError):
    """A checkpoint is missing, corrupt, or does not fit the network."""


def sha256_file(path: str | Path) -> str:
    """SHA-256 (64 hex) of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_weights(
    model: nn.Module, directory: str | Path, *, config_name: str, info: dict[str, Any] | None = None
) -> tuple[Path, str]:
    """Save ``model.state_dict()`` as ``<config_name>-<sha256>.pt`` with a JSON sidecar.

    Tensors are moved to CPU first, so the bytes (and the name) do not
    depend on the device trained on. Writing is atomic (temporary file, then
    rename).

    Returns
    -------
    path : Path
        The weights file.
    model_version : str
        ``"sha256:<hex>"``.

    """
    module = model.module if hasattr(model, "module") else model
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    buf = io.BytesIO()
    torch.save(state, buf)
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{config_name}-{sha}.pt"
    tmp = path.with_suffix(".pt.tmp-write")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    sidecar = {"config": config_name, "file": path.name, "sha256": sha, **(info or {})}
    path.with_suffix(".json").write_text(
        json.dumps(sidecar, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return path, f"sha256:{sha}"


def load_weights(model: nn.Module, path: str | Path | None) -> str:
    """Load a weights file into ``model`` (strict), after checking its hash.

    Parameters
    ----------
    model : torch.nn.Module
        Network built from the same config.
    path : str or Path or None
        Weights file. ``None`` is an error: inference never runs with the
        random initial weights.

    Returns
    -------
    str
        ``"sha256:<hex>"`` of the file: the prediction table's ``model_version``.

    Raises
    ------
    CheckpointError
        No path, a missing file, a hash that differs from the one in the file
        name, an unreadable file, or missing / unexpected / mis-shaped keys.

    """
    if path is None:
        raise CheckpointError("no checkpoint given: refusing to run a network with random weights")
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: checkpoint does not exist; refusing to run a network with random weights"
        )
    sha = sha256_file(path)
    m = _NAME.match(path.name)
    if m and m.group("sha") != sha:
        raise CheckpointError(
            f"{path}: SHA-256 of the content ({sha}) differs from the one in the file name"
        )
    try:
        # weights_only: tensors and plain containers only; a file that would run code on
        # loading (a pickled object with a reducer) is refused, never executed
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({exc})") from exc
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(
            f"{path}: not a weights file (expected a state dict of tensors, found "
            f"{type(state).__name__})"
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit the network ({exc})") from exc
    return f"sha256:{sha}"
