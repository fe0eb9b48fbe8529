"""Worked prognostic-model study on the German Breast Cancer Study Group 2 data (lifelines).

The data: 686 women with primary node-positive breast cancer from the GBSG-2
randomised 2 x 2 trial of hormonal treatment (tamoxifen) and the duration of
chemotherapy (Schumacher et al., J Clin Oncol 1994;12:2086-93), with complete
data on the prognostic factors analysed by Sauerbrei & Royston (JRSS A
1999;162:71-94). Outcome: recurrence-free survival (recurrence or death,
whichever first) in days from study entry. The same 686 rows ship as
``lifelines.datasets.load_gbsg2`` (lifelines, MIT licence, file
``lifelines/datasets/gbsg2.csv``) and as ``GBSG2`` in R's ``TH.data`` (GPL-3).

The study (``studyval/examples/gbsg2-prognostic/plan.yml``) is YAML only: Cox
models of the published prognostic factors for recurrence or death within
5 years, bootstrap internal validation; this module only writes the data in
the layout of its dictionary. What it adds to the data set, declared in the
dictionary:

* ``patient_id``: a pseudonymous sequential id ``GBSG2-0001`` ... in the order
  of the distributed file (the data have no identifier of any kind);
* ``exclusion_reason``: ``none`` for every row (all 686 distributed patients
  have complete data; the trial's other patients are not in the data set);
* ``rfs_days`` and ``rfs_event`` are the data set's ``time`` and ``cens``
  renamed (1 = recurrence or death, 0 = censored); every other column keeps
  its published name and coding.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

__all__ = ["FOLDER", "SLUG", "SOURCE", "clinical_frame", "write_inputs"]

#: The example's name and its plan's slug.
SLUG = "gbsg2-prognostic"
#: Plan, dictionary (package data).
FOLDER = Path(__file__).parent / SLUG
#: Data set, where it ships, original source and licence (one line, shown in the report banner).
SOURCE = (
    "German Breast Cancer Study Group 2 (GBSG-2) trial, 686 patients with complete data "
    "(Schumacher et al., J Clin Oncol 1994; Sauerbrei & Royston, JRSS A 1999), as shipped in "
    "lifelines.datasets.load_gbsg2 (lifelines, MIT licence) and in R package TH.data (GBSG2, "
    "GPL-3); public teaching data, no identifiers; a pseudonymous sequential patient id added"
)

#: Column order of the written clinical table.
COLUMNS = (
    "patient_id", "exclusion_reason", "age", "menostat", "tsize", "tgrade", "pnodes", "progrec",
    "estrec", "horTh", "rfs_days", "rfs_event",
)  # fmt: skip


def _load_gbsg2() -> pd.DataFrame:
    """``lifelines.datasets.load_gbsg2()`` without importing lifelines (seconds of imports).

    lifelines reads its file ``lifelines/datasets/gbsg2.csv`` with
    ``pandas.read_csv(path, engine="python")``; this reads the same file the same way, found
    where lifelines is installed.
    """
    import importlib.util

    spec = importlib.util.find_spec("lifelines")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("No module named 'lifelines'", name="lifelines")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "gbsg2.csv"
    return pd.read_csv(path, engine="python")


def clinical_frame() -> pd.DataFrame:
    """The GBSG2 data in the example dictionary's layout (one row per patient, file order)."""
    d = _load_gbsg2()
    if len(d) != 686:  # pragma: no cover - another lifelines release
        raise ValueError(f"lifelines' GBSG2 has {len(d)} rows, not the 686 of the published data")
    out = d.rename(columns={"time": "rfs_days", "cens": "rfs_event"})
    out.insert(0, "exclusion_reason", "none")
    out.insert(0, "patient_id", [f"GBSG2-{i:04d}" for i in range(1, len(d) + 1)])
    return out[list(COLUMNS)].reset_index(drop=True)


def write_inputs(folder: Path) -> dict[str, Path]:
    """Write ``clinical.csv`` (no prediction table: the plan fits its Cox models)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "clinical.csv"
    clinical_frame().to_csv(path, index=False, lineterminator="\n")
    return {"clinical": path}
