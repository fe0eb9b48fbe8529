"""Patient-level splits of a clinical table.

Cases of one patient are correlated (several vertebrae, several scans), so a
split is drawn over *patients*, never over cases: every case of a patient
lands in the same split, and patients of an external site are all
``external``. :func:`check_no_leakage` is the guard every training and
inference entry point calls.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from studyval.errors import InputValidationError, Violation

SPLITS = ("development", "internal", "external")


def patient_level_split(
    clinical: pd.DataFrame,
    *,
    internal_fraction: float,
    seed: int,
    external_sites: Sequence[str] = (),
    patient_col: str = "patient_id",
    site_col: str = "site",
    case_col: str = "case_id",
) -> pd.DataFrame:
    """Assign every case to ``development``, ``internal`` or ``external`` by patient.

    Patients of ``external_sites`` are ``external``. The other patients are
    shuffled with ``numpy.random.default_rng(seed)`` (patients sorted by id
    first, so the result does not depend on row order) and the first
    ``round(internal_fraction * n_patients)`` become ``internal``; the rest
    are ``development``.

    Parameters
    ----------
    clinical : DataFrame
        One row per case with ``case_col``, ``patient_col`` and ``site_col``.
    internal_fraction : float
        Fraction of development-centre patients held out, in [0, 1).
    seed : int
        Seed of the shuffle.
    external_sites : sequence of str
        Sites whose patients are never seen in development.
    patient_col, site_col, case_col : str
        Column names.

    Returns
    -------
    DataFrame
        ``case_col``, ``patient_col``, ``site_col``, ``split``, in the row
        order of ``clinical``.

    Raises
    ------
    InputValidationError
        A missing column, a duplicated case id, or a patient recorded at two
        sites (which would put one patient at both an external and a
        development site).

    """
    if not 0.0 <= internal_fraction < 1.0:
        raise ValueError(f"internal_fraction must be in [0, 1), found {internal_fraction!r}")
    missing = [c for c in (case_col, patient_col, site_col) if c not in clinical.columns]
    if missing:
        InputValidationError.collect(
            Violation("clinical table", c, None, "column is required") for c in missing
        )
    problems = []
    dup = clinical[case_col].duplicated(keep=False)
    for i in np.flatnonzero(dup.to_numpy()):
        problems.append(
            Violation(
                "clinical table",
                case_col,
                int(i) + 2,
                "case id must be unique",
                str(clinical[case_col].iloc[i]),
            )
        )
    n_sites = clinical.groupby(patient_col)[site_col].nunique()
    for pid in n_sites.index[n_sites > 1]:
        problems.append(
            Violation("clinical table", site_col, None, "a patient must have one site", str(pid))
        )
    InputValidationError.collect(problems)
    site_of = clinical.groupby(patient_col)[site_col].first()
    external = set(external_sites)
    ext_patients = sorted(p for p, s in site_of.items() if s in external)
    dev_patients = np.array(
        sorted(p for p, s in site_of.items() if s not in external), dtype=object
    )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(dev_patients))
    n_internal = round(internal_fraction * len(dev_patients))
    split_of = dict.fromkeys(ext_patients, "external")
    for rank, idx in enumerate(perm):
        split_of[dev_patients[idx]] = "internal" if rank < n_internal else "development"
    out = clinical[[case_col, patient_col, site_col]].copy()
    out["split"] = out[patient_col].map(split_of)
    return out.reset_index(drop=True)


def check_no_leakage(
    table: pd.DataFrame, *, patient_col: str = "patient_id", label: str = "table"
) -> None:
    """Raise if any patient appears in more than one split.

    Raises
    ------
    InputValidationError
        One violation per leaking patient, naming the splits.

    """
    per = table.groupby(patient_col)["split"].unique()
    problems = [
        Violation(
            label,
            "split",
            None,
            f"patient in several splits ({', '.join(sorted(map(str, s)))})",
            str(pid),
        )
        for pid, s in per.items()
        if len(s) > 1
    ]
    bad = sorted(set(table["split"].dropna()) - set(SPLITS))
    problems += [
        Violation(label, "split", None, f"allowed levels: {', '.join(SPLITS)}", str(b)) for b in bad
    ]
    InputValidationError.collect(problems)
