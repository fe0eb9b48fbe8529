r"""Synthetic cohort for NCT06379243 (refracture-pvp), with documented true parameters.

No real patient data exist in this repository. This generator builds a cohort
shaped like the registered study (560 patients treated with PVP/PKP for an
acute osteoporotic vertebral compression fracture, followed for re-fracture of
a non-operated vertebra within 1 year) so that the whole chain runs and tests
can check that the Cox model recovers the true hazard ratios.

Design (all numbers are in :data:`TRUE_PARAMETERS`)
---------------------------------------------------
* 560 included patients at one centre (``SYSU7``), surgery dates uniform over
  the accrual window 2023-12-01 to 2025-11-30, and screened patients excluded
  for the registry's reasons (age outside 50-90, more than 3 fractured
  vertebrae, no acute fracture on MRI, scoliosis / prior vertebroplasty or
  fixation, infection or malignancy, mental / cognitive / critical illness) and
  the plan's (incomplete preoperative data).
* Predictors: age, sex, DXA T-score, PDFF and R2* (correlated with the T-score:
  fattier, less mineralised marrow), number of fractured vertebrae (1-3),
  cement leakage, cement volume and procedure (PVP/PKP).
* Re-fracture (cause 1) has a Weibull cause-specific hazard

  .. math::

     h_1(t \mid x) = \lambda k t^{k-1} \exp\{\beta^\top (x - \bar x)\}, \quad t \text{ in years},

  with :math:`k` = ``weibull_shape`` < 1 (risk highest soon after surgery),
  :math:`\lambda` = ``weibull_scale`` (so that the 1-year risk at the centring
  values :math:`\bar x`, ignoring death, is ``risk_1y_at_centre``) and
  :math:`\beta` = ``true_log_hr`` per unit of each model term (``sex[M]``:
  male vs female; ``procedure[PKP]``: PKP vs PVP; ``cement_leakage``: yes vs no).
  Because the hazard is proportional in :math:`x`, the Cox model with these
  terms is correctly specified for the cause-specific hazard, which is what it
  estimates when deaths are censored.
* Death (cause 2, competing) has an exponential hazard ``death_rate_per_year``
  times :math:`\exp\{0.07(\text{age} - 71)\}`, independent of the predictors
  otherwise; loss to follow-up is exponential (``loss_rate_per_year``); planned
  follow-up ends at 1 year plus a visit window (uniform 0-60 days) and no later
  than the data cut-off ``data_cutoff`` (administrative censoring for the
  latest patients).
* Times are in whole days (``ceil`` of years x 365.25, at least 1).
* Planted direct identifiers (names, record numbers, dates of birth) let the
  privacy checks prove that none reaches a bundle or a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyval.synthetic._io import FAMILY_NAMES, GIVEN_NAMES, write_cohort

__all__ = ["TRUE_PARAMETERS", "SyntheticCohort", "generate"]

#: True log hazard ratios of re-fracture per unit of each Cox model term.
TRUE_LOG_HR: dict[str, float] = {
    "age": 0.03,  # per year
    "sex[M]": -0.30,  # male vs female
    "bmd_t_score": -0.40,  # per SD of T-score
    "pdff_percent": 0.035,  # per percentage point of fat fraction
    "r2star_per_s": -0.012,  # per s^-1
    "n_fractured_vertebrae": 0.35,  # per fractured vertebra
    "cement_leakage": 0.50,  # leakage vs none
    "cement_volume_ml": 0.05,  # per mL
    "procedure[PKP]": 0.0,  # PKP vs PVP: no effect
}

#: Centring values x-bar of the linear predictor (population means of the generator).
CENTRE: dict[str, float] = {
    "age": 71.0,
    "sex[M]": 0.2,
    "bmd_t_score": -3.0,
    "pdff_percent": 60.0,
    "r2star_per_s": 75.0,
    "n_fractured_vertebrae": 1.52,
    "cement_leakage": 0.3,
    "cement_volume_ml": 6.0,
    "procedure[PKP]": 0.5,
}

_SHAPE = 0.8
_RISK_1Y = 0.15

TRUE_PARAMETERS: dict[str, Any] = {
    "n_included_patients": 560,
    "site": "SYSU7",
    "excluded_patients": {
        "age_outside_50_90": 9,
        "fractured_vertebrae_outside_1_3": 7,
        "no_acute_fracture_on_mri": 6,
        "scoliosis_prior_vertebroplasty_or_fixation": 5,
        "spinal_infection_or_malignancy": 4,
        "mental_cognitive_or_critical_illness": 6,
        "incomplete_preoperative_data": 5,
    },
    "accrual": ["2023-12-01", "2025-11-30"],
    "data_cutoff": "2026-06-30",
    "horizon_days": 365,
    "true_log_hr": TRUE_LOG_HR,
    "centre": CENTRE,
    "weibull_shape": _SHAPE,
    "weibull_scale": float(-np.log(1.0 - _RISK_1Y)),
    "risk_1y_at_centre": _RISK_1Y,
    "death_rate_per_year": 0.04,
    "death_age_log_hr_per_year": 0.07,
    "loss_rate_per_year": 0.06,
    "visit_window_days": [0, 60],
    "predictors": {
        "age": "normal(71, 8) rounded, clipped to 50-90",
        "sex": "M with probability 0.2",
        "bmd_t_score": "normal(-3.0, 0.8), clipped to [-6, 0]",
        "pdff_percent": "60 - 5 (T + 3) + normal(0, 8.5), clipped to [20, 90]",
        "r2star_per_s": "75 + 8 (T + 3) + normal(0, 15), clipped to [20, 150]",
        "n_fractured_vertebrae": "1, 2, 3 with probabilities 0.6, 0.28, 0.12",
        "cement_leakage": "probability 0.3",
        "cement_volume_ml": "normal(4, 1) x fractured vertebrae, clipped to [1, 20]",
        "procedure": "PKP with probability 0.5",
    },
}


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated cohort.

    Attributes
    ----------
    clinical : DataFrame
        One row per screened patient (the ``refracture-pvp`` data dictionary).
    truth : dict
        :data:`TRUE_PARAMETERS` plus the seed and realised counts.

    """

    clinical: pd.DataFrame
    truth: dict[str, Any]

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``clinical.csv`` and ``truth.json`` to ``directory``."""
        return write_cohort(directory, clinical=self.clinical, truth=self.truth)


_GIVEN = GIVEN_NAMES
_FAMILY = FAMILY_NAMES


def design_terms(frame: pd.DataFrame) -> pd.DataFrame:
    """The numeric Cox model terms of :data:`TRUE_LOG_HR` from dictionary columns."""
    return pd.DataFrame(
        {
            "age": frame["age"].astype(float),
            "sex[M]": (frame["sex"].astype(str) == "M").astype(float),
            "bmd_t_score": frame["bmd_t_score"].astype(float),
            "pdff_percent": frame["pdff_percent"].astype(float),
            "r2star_per_s": frame["r2star_per_s"].astype(float),
            "n_fractured_vertebrae": frame["n_fractured_vertebrae"].astype(float),
            "cement_leakage": frame["cement_leakage"]
            .astype(str)
            .isin(["true", "True"])
            .astype(float),
            "cement_volume_ml": frame["cement_volume_ml"].astype(float),
            "procedure[PKP]": (frame["procedure"].astype(str) == "PKP").astype(float),
        },
        index=frame.index,
    )


def generate(seed: int = 20240423) -> SyntheticCohort:
    """Generate the synthetic refracture-pvp cohort.

    Parameters
    ----------
    seed : int
        Seed of the numpy ``PCG64`` generator; the same seed gives the same table.

    """
    rng = np.random.Generator(np.random.PCG64(seed))
    tp = TRUE_PARAMETERS
    reasons = ["none"] * tp["n_included_patients"]
    for reason, n in tp["excluded_patients"].items():
        reasons += [reason] * n
    reasons = [reasons[i] for i in rng.permutation(len(reasons))]
    n = len(reasons)
    excl = np.array(reasons, dtype=object)

    age = np.clip(np.round(rng.normal(71, 8, n)), 50, 90).astype(int)
    bad_age = excl == "age_outside_50_90"
    age[bad_age] = np.where(
        rng.random(bad_age.sum()) < 0.6,
        rng.integers(42, 50, bad_age.sum()),
        rng.integers(91, 96, bad_age.sum()),
    )
    sex = np.where(rng.random(n) < 0.2, "M", "F")
    t_score = np.round(np.clip(rng.normal(-3.0, 0.8, n), -6.0, 0.0), 1)
    pdff = np.round(np.clip(60 - 5 * (t_score + 3) + rng.normal(0, 8.5, n), 20, 90), 1)
    r2s = np.round(np.clip(75 + 8 * (t_score + 3) + rng.normal(0, 15, n), 20, 150), 1)
    n_vert = rng.choice([1, 2, 3], size=n, p=[0.6, 0.28, 0.12])
    bad_nv = excl == "fractured_vertebrae_outside_1_3"
    n_vert[bad_nv] = rng.integers(4, 6, bad_nv.sum())
    leakage = rng.random(n) < 0.3
    volume = np.round(np.clip(rng.normal(4.0, 1.0, n) * n_vert, 1.0, 20.0), 1)
    procedure = np.where(rng.random(n) < 0.5, "PKP", "PVP")

    start = pd.Timestamp(tp["accrual"][0])
    span = (pd.Timestamp(tp["accrual"][1]) - start).days
    surgery = start + pd.to_timedelta(rng.integers(0, span + 1, n), unit="D")
    cutoff = pd.Timestamp(tp["data_cutoff"])

    x = pd.DataFrame(
        {
            "age": age.astype(float),
            "sex[M]": (sex == "M").astype(float),
            "bmd_t_score": t_score,
            "pdff_percent": pdff,
            "r2star_per_s": r2s,
            "n_fractured_vertebrae": n_vert.astype(float),
            "cement_leakage": leakage.astype(float),
            "cement_volume_ml": volume,
            "procedure[PKP]": (procedure == "PKP").astype(float),
        }
    )
    beta = np.array([TRUE_LOG_HR[c] for c in x.columns])
    centre = np.array([CENTRE[c] for c in x.columns])
    lp = (x.to_numpy() - centre) @ beta
    lam, k = tp["weibull_scale"], tp["weibull_shape"]
    t_fx = (rng.exponential(1.0, n) / (lam * np.exp(lp))) ** (1.0 / k)
    t_death = rng.exponential(1.0, n) / (
        tp["death_rate_per_year"] * np.exp(tp["death_age_log_hr_per_year"] * (age - 71))
    )
    t_loss = rng.exponential(1.0 / tp["loss_rate_per_year"], n)
    planned = (365 + rng.integers(0, 61, n)) / 365.25
    admin = ((cutoff - surgery).days.to_numpy()) / 365.25
    t_cens = np.minimum.reduce([t_loss, planned, admin])
    t_obs = np.minimum.reduce([t_fx, t_death, t_cens])
    event = np.select([t_obs == t_fx, t_obs == t_death], [1, 2], default=0)
    days = np.maximum(1, np.ceil(t_obs * 365.25)).astype(int)
    end = surgery + pd.to_timedelta(days, unit="D")

    rows: list[dict[str, Any]] = []
    missing_pick = np.flatnonzero(excl == "incomplete_preoperative_data")
    for i in range(n):
        included = excl[i] == "none"
        screened_out = not included and excl[i] != "incomplete_preoperative_data"
        dob = surgery[i] - pd.Timedelta(days=int(age[i] * 365.25 + rng.integers(0, 365)))
        row = {
            "patient_id": f"RF{i + 1:04d}",
            "patient_name": f"{_FAMILY[rng.integers(0, 10)]}^{_GIVEN[rng.integers(0, 10)]}",
            "medical_record_number": f"MRN{rng.integers(10_000_000, 99_999_999)}",
            "date_of_birth": dob.strftime("%Y-%m-%d"),
            "site": tp["site"],
            "age": int(age[i]),
            "sex": sex[i],
            "bmd_t_score": t_score[i],
            "pdff_percent": pdff[i],
            "r2star_per_s": r2s[i],
            "n_fractured_vertebrae": int(n_vert[i]),
            "cement_leakage": "true" if leakage[i] else "false",
            "cement_volume_ml": volume[i],
            "procedure": procedure[i],
            "surgery_date": surgery[i].strftime("%Y-%m-%d"),
            "followup_end_date": end[i].strftime("%Y-%m-%d"),
            "followup_days": int(days[i]),
            "event": int(event[i]),
            "exclusion_reason": excl[i],
        }
        if screened_out:  # not operated in the study: no surgery details or follow-up
            for col in ("cement_leakage", "cement_volume_ml", "procedure", "followup_end_date"):
                row[col] = None
            row["followup_days"] = None
            row["event"] = None
        rows.append(row)
    clinical = pd.DataFrame(rows)
    for j, i in enumerate(missing_pick):  # a missing preoperative MRI or DXA value
        col = ("pdff_percent", "r2star_per_s", "bmd_t_score")[j % 3]
        clinical.loc[i, col] = None
    for col in ("followup_days", "event"):
        clinical[col] = clinical[col].astype("Int64")
    inc = clinical["exclusion_reason"] == "none"
    ev = clinical.loc[inc, "event"].astype(int)
    d = clinical.loc[inc, "followup_days"].astype(int)
    truth = dict(tp)
    truth["seed"] = seed
    truth["realised"] = {
        "n_screened": int(n),
        "n_included": int(inc.sum()),
        "refractures": int((ev == 1).sum()),
        "refractures_by_1y": int(((ev == 1) & (d <= 365)).sum()),
        "deaths": int((ev == 2).sum()),
        "censored": int((ev == 0).sum()),
    }
    return SyntheticCohort(clinical=clinical, truth=truth)
