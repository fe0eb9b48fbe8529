"""What every synthetic cohort shares: how it is written, and the pool of planted names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

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

    LF line endings, scores with 6 decimals, sorted JSON keys: the same cohort
    always gives the same bytes.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {"clinical": directory / "clinical.csv"}
    clinical.to_csv(paths["clinical"], index=False, lineterminator="\n")
    if predictions is not None:
        paths["predictions"] = directory / "predictions.csv"
        predictions.to_csv(
            paths["predictions"], index=False, lineterminator="\n", float_format="%.6f"
        )
    paths["truth"] = directory / "truth.json"
    paths["truth"].write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return paths
