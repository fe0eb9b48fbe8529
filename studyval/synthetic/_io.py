"""What every synthetic cohort shares: how it is written, and the pool of planted names."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from studyval.errors import StudyvalError
from studyval.origin import MARKER_KEY, synthetic_marker

#: Given and family names of the planted direct identifiers (privacy tests look for them).
GIVEN_NAMES = ["Wei", "Fang", "Li", "Min", "Hua", "Jun", "Lan", "Ying", "Qiang", "Mei"]
FAMILY_NAMES = ["Zhang", "Wang", "Chen", "Liu", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu"]


def write_cohort(
    directory: str | Path,
    *,
    clinical: pd.DataFrame,
    truth: dict[str, Any],
    predictions: pd.DataFrame | None = None,
) -> dict[str, Path]:
    """Write ``clinical.csv``, ``predictions.csv`` (when given) and ``truth.json``.

    ``truth.json`` also records the SHA-256 of the tables written with it
    (:data:`studyval.origin.MARKER_KEY`), so that a run on them records
    ``data_origin: synthetic`` in its manifest and its report says so.

    LF line endings, scores with 6 decimals, sorted JSON keys: the same cohort
    always gives the same bytes. A file already there is left alone when it
    holds exactly these bytes (a rerun of the demo) and refused otherwise, so
    a user's own ``clinical.csv`` is never overwritten; each file is written
    to a temporary name and renamed.

    Raises
    ------
    StudyvalError
        A file of the same name with other contents is in ``directory``, or
        ``directory`` is a file (nothing is written).

    """
    directory = Path(directory)
    payload = {"clinical": clinical.to_csv(index=False, lineterminator="\n").encode()}
    if predictions is not None:
        payload["predictions"] = predictions.to_csv(
            index=False, lineterminator="\n", float_format="%.6f"
        ).encode()
    # the marker by which a run knows these inputs are synthetic (studyval.origin)
    names_written = {"clinical": "clinical.csv", "predictions": "predictions.csv"}
    marker = synthetic_marker(
        {names_written[k]: v for k, v in payload.items()}, "studyval synthetic-cohort generator"
    )
    payload["truth"] = (
        json.dumps({**truth, MARKER_KEY: marker}, indent=2, sort_keys=True) + "\n"
    ).encode()
    names = {"clinical": "clinical.csv", "predictions": "predictions.csv", "truth": "truth.json"}
    paths = {kind: directory / names[kind] for kind in payload}
    if directory.exists() and not directory.is_dir():
        raise StudyvalError(f"--out {directory} is a file, not a folder")
    # a truth.json of an earlier studyval (the same truth without the marker) is ours to update
    legacy_truth = (json.dumps(truth, indent=2, sort_keys=True) + "\n").encode()
    replace = set()
    for kind, path in paths.items():
        if (
            kind == "truth"
            and path.is_file()
            and not path.is_symlink()
            and path.read_bytes() == legacy_truth
        ):
            replace.add(kind)
            continue
        if (path.exists() or path.is_symlink()) and (
            not path.is_file() or path.is_symlink() or path.read_bytes() != payload[kind]
        ):
            raise StudyvalError(
                f"{path} exists with other contents; studyval never overwrites a file it "
                "did not write: choose another --out"
            )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for kind, path in paths.items():
            if path.exists() and kind not in replace:
                continue
            tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
            tmp.write_bytes(payload[kind])
            os.replace(tmp, path)
    except OSError as exc:
        raise StudyvalError(
            f"cannot write the synthetic inputs into {directory}: {exc.strerror or exc}"
        ) from None
    return paths
