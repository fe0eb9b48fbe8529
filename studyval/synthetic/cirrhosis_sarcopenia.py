r"""Synthetic cohort for NCT06531200 (cirrhosis-sarcopenia), with documented true parameters.

No real patient data exist in this repository. This generator builds a cohort
shaped like the registered study (about 1,000 patients with cirrhosis, a
development centre and an external centre) so that the whole chain runs and
tests can check that the estimates recover the truth.

Design (all numbers are in :data:`TRUE_PARAMETERS`)
---------------------------------------------------
* 700 included patients at the development centre ``PKUPH`` and 320 at the
  external centre ``EXT``; 64 further screened patients excluded for the
  registry's reasons (counts in ``excluded_patients``).
* Laboratory values are log-normal; MELD and MELD-Na follow the documented
  formulas of the data dictionary exactly (rounded to 2 decimals).
* Height is normal by sex; the L3 skeletal muscle index (SMI) is normal by
  sex, lower with higher MELD-Na; the muscle area is SMI x height^2.
  Sarcopenia = SMI below the sex-specific cut-off (Carey EJ et al., A
  multicenter study to define sarcopenia in patients with end-stage liver
  disease. Liver Transpl 2017;23:625-633, doi:10.1002/lt.24750: < 50 cm2/m2 in
  men, < 39 cm2/m2 in women).
* **Cause-specific hazards** (exponential, per day), for a patient with
  MELD-Na :math:`m` and sarcopenia indicator :math:`s`:

  .. math::

     \lambda_1(t) = \lambda_{01} \exp\{\beta_{1m} (m - 15) + \beta_{1s} s\}  \quad\text{(death)}

     \lambda_2(t) = \lambda_{02} \exp\{\beta_{2m} (m - 15) + \beta_{2s} s\}  \quad\text{(transplant)}

  so the true cause-specific hazard ratios are ``exp(beta)`` and a Cox model
  on ``meld_na`` and ``sarcopenia`` is correctly specified for both causes.
  The external centre has the same hazards (transportable model) but a
  sicker case mix (higher mean MELD-Na).
* Censoring: administrative (accrual uniform over ``accrual_days`` before the
  end of the study, ``study_days`` after the first accrual) plus random loss
  to follow-up (exponential, ``loss_rate_per_day``).
* Planted direct identifiers (names, record numbers, dates of birth) let the
  privacy checks prove that none reaches a bundle or a report.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from studyval.synthetic._io import FAMILY_NAMES, GIVEN_NAMES, write_cohort

__all__ = ["TRUE_PARAMETERS", "SyntheticCohort", "generate", "meld", "meld_na"]

TRUE_PARAMETERS: dict[str, Any] = {
    "included_by_site": {"PKUPH": 700, "EXT": 320},
    "excluded_patients": {
        "incomplete_data": 14,
        "malignancy": 12,
        "severe_organ_disease": 9,
        "neuromuscular_disease": 3,
        "metabolic_disease": 5,
        "malabsorption": 4,
        "glucocorticoids_or_immunosuppressants": 6,
        "pregnancy_or_lactation": 1,
        "no_usable_l3_ct": 10,
    },
    "proportion_male": 0.65,
    "sarcopenia_cutoffs_cm2_m2": {"M": 50.0, "F": 39.0},
    "smi_mean_cm2_m2": {"M": 52.0, "F": 42.0},
    "smi_sd_cm2_m2": 7.0,
    "smi_per_meld_na_point": -0.25,
    "log_lab_mean": {
        "PKUPH": {"bilirubin": 0.6, "inr": 0.22, "creatinine": -0.05},
        "EXT": {"bilirubin": 0.8, "inr": 0.26, "creatinine": 0.0},
    },
    "log_lab_sd": {"bilirubin": 0.8, "inr": 0.18, "creatinine": 0.35},
    "sodium_mean_sd": [136.0, 4.0],
    "meld_na_centre": 15.0,
    # cause 1 = death, cause 2 = liver transplantation (competing)
    "baseline_hazard_per_day": {"death": 0.12 / 365.25, "transplant": 0.05 / 365.25},
    "log_hr": {
        "death": {"meld_na": 0.07, "sarcopenia": float(np.log(2.0))},
        "transplant": {"meld_na": 0.09, "sarcopenia": float(np.log(0.8))},
    },
    "hr": {
        "death": {"meld_na": float(np.exp(0.07)), "sarcopenia": 2.0},
        "transplant": {"meld_na": float(np.exp(0.09)), "sarcopenia": 0.8},
    },
    "accrual_days": 730,
    "study_days": 1460,
    "loss_rate_per_day": 0.03 / 365.25,
    "first_ct_date": "2021-01-01",
    "segmentation_model_version": "sha256:"
    + hashlib.sha256(b"studyval synthetic L3 muscle segmentation v1").hexdigest(),
}


def meld(bilirubin: Any, inr: Any, creatinine: Any) -> np.ndarray:
    """UNOS MELD, unrounded (labs < 1 set to 1, creatinine capped at 4)."""
    b = np.maximum(np.asarray(bilirubin, float), 1.0)
    i = np.maximum(np.asarray(inr, float), 1.0)
    c = np.clip(np.asarray(creatinine, float), 1.0, 4.0)
    return 3.78 * np.log(b) + 11.2 * np.log(i) + 9.57 * np.log(c) + 6.43


def meld_na(meld_score: Any, sodium: Any) -> np.ndarray:
    """MELD-Na (Kim et al. 2008), sodium bounded to [125, 137]."""
    m = np.asarray(meld_score, float)
    na = np.clip(np.asarray(sodium, float), 125.0, 137.0)
    return m + 1.32 * (137.0 - na) - 0.033 * m * (137.0 - na)


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated cohort.

    Attributes
    ----------
    clinical : DataFrame
        One row per screened patient (the ``cirrhosis-sarcopenia`` dictionary).
    truth : dict
        :data:`TRUE_PARAMETERS` plus the seed.

    """

    clinical: pd.DataFrame
    truth: dict[str, Any]

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``clinical.csv`` and ``truth.json`` to ``directory``."""
        return write_cohort(directory, clinical=self.clinical, truth=self.truth)


_GIVEN = GIVEN_NAMES
_FAMILY = FAMILY_NAMES


def generate(seed: int = 20260531) -> SyntheticCohort:
    """Generate the synthetic cirrhosis-sarcopenia cohort (same seed, same table)."""
    tp = TRUE_PARAMETERS
    rng = np.random.default_rng(seed)
    sites = [s for s, n in tp["included_by_site"].items() for _ in range(n)]
    reasons = ["none"] * len(sites)
    for reason, n in tp["excluded_patients"].items():
        for k in range(n):
            sites.append("PKUPH" if k % 3 else "EXT")
            reasons.append(reason)
    n = len(sites)
    site = np.array(sites)
    reason = np.array(reasons)
    male = rng.random(n) < tp["proportion_male"]
    sex = np.where(male, "M", "F")
    age = np.clip(np.round(rng.normal(56, 11, n)), 18, 95).astype(int)
    labs = {}
    for lab in ("bilirubin", "inr", "creatinine"):
        mu = np.array([tp["log_lab_mean"][s][lab] for s in site])
        labs[lab] = np.round(np.exp(mu + tp["log_lab_sd"][lab] * rng.standard_normal(n)), 2)
    labs["inr"] = np.clip(labs["inr"], 0.8, 9.0)
    labs["bilirubin"] = np.clip(labs["bilirubin"], 0.2, 50.0)
    labs["creatinine"] = np.clip(labs["creatinine"], 0.3, 12.0)
    sodium = np.round(np.clip(rng.normal(*tp["sodium_mean_sd"], n), 118, 150), 0)
    m = np.round(meld(labs["bilirubin"], labs["inr"], labs["creatinine"]), 2)
    mna = np.round(meld_na(m, sodium), 2)
    height = np.round(np.where(male, rng.normal(1.71, 0.06, n), rng.normal(1.59, 0.055, n)), 2)
    smi_mean = np.where(male, tp["smi_mean_cm2_m2"]["M"], tp["smi_mean_cm2_m2"]["F"])
    smi_true = (
        smi_mean
        + tp["smi_per_meld_na_point"] * (mna - tp["meld_na_centre"])
        + tp["smi_sd_cm2_m2"] * rng.standard_normal(n)
    )
    area = np.round(np.clip(smi_true, 15, 110) * height**2, 1)
    smi = np.round(area / height**2, 2)
    cut = np.where(male, tp["sarcopenia_cutoffs_cm2_m2"]["M"], tp["sarcopenia_cutoffs_cm2_m2"]["F"])
    sarc = smi < cut
    # cause-specific hazards -> latent times
    lin = {
        cause: tp["log_hr"][cause]["meld_na"] * (mna - tp["meld_na_centre"])
        + tp["log_hr"][cause]["sarcopenia"] * sarc
        for cause in ("death", "transplant")
    }
    rate1 = tp["baseline_hazard_per_day"]["death"] * np.exp(lin["death"])
    rate2 = tp["baseline_hazard_per_day"]["transplant"] * np.exp(lin["transplant"])
    t_event = rng.exponential(1.0 / (rate1 + rate2))
    cause = np.where(rng.random(n) < rate1 / (rate1 + rate2), 1, 2)
    entry = rng.uniform(0, tp["accrual_days"], n)
    admin = tp["study_days"] - entry
    loss = rng.exponential(1.0 / tp["loss_rate_per_day"], n)
    cens = np.minimum(admin, loss)
    observed = t_event <= cens
    follow = np.round(np.where(observed, t_event, cens), 1)
    follow = np.maximum(follow, 0.5)
    event = np.where(observed, cause, 0)
    ct_date = pd.Timestamp(tp["first_ct_date"]) + pd.to_timedelta(np.floor(entry), unit="D")
    ascites = np.where(
        mna > 20,
        rng.choice(["mild", "moderate_severe"], n),
        np.where(rng.random(n) < 0.3, "mild", "none"),
    )
    child = np.where(mna >= 22, "C", np.where(mna >= 13, "B", "A"))
    etiology = rng.choice(
        ["hbv", "hcv", "alcohol", "masld", "autoimmune", "other"],
        n,
        p=[0.45, 0.08, 0.2, 0.12, 0.08, 0.07],
    )
    dob = ct_date - pd.to_timedelta(age * 365.25 + rng.integers(0, 300, n), unit="D")
    order = rng.permutation(n)
    clinical = pd.DataFrame(
        {
            "patient_id": [f"CS{k + 1:04d}" for k in range(n)],
            "patient_name": [
                f"{_FAMILY[rng.integers(10)]} {_GIVEN[rng.integers(10)]}{k}" for k in range(n)
            ],
            "medical_record_number": [f"MRN{7300000 + 13 * k}" for k in range(n)],
            "date_of_birth": pd.Series(dob).dt.strftime("%Y-%m-%d").to_numpy(),
            "site": site[order],
            "age": age[order],
            "sex": sex[order],
            "ct_date": pd.Series(ct_date).dt.strftime("%Y-%m-%d").to_numpy()[order],
            "height_m": height[order],
            "l3_muscle_area_cm2": area[order],
            "smi_cm2_m2": smi[order],
            "sarcopenia": np.where(sarc, "true", "false")[order],
            "segmentation_model_version": tp["segmentation_model_version"],
            "bilirubin_mg_dl": labs["bilirubin"][order],
            "inr": labs["inr"][order],
            "creatinine_mg_dl": labs["creatinine"][order],
            "sodium_mmol_l": sodium[order],
            "meld": np.maximum(m, 6.43)[order],
            "meld_na": np.maximum(mna, 6.0)[order],
            "child_pugh": child[order],
            "ascites": ascites[order],
            "etiology": etiology[order],
            "followup_days": follow[order],
            "event": event[order],
            "exclusion_reason": reason[order],
        }
    )
    # rows of patients excluded for want of an L3 image have no muscle measurement
    no_img = clinical["exclusion_reason"].isin(["no_usable_l3_ct", "incomplete_data"])
    clinical.loc[no_img, ["l3_muscle_area_cm2", "smi_cm2_m2", "sarcopenia"]] = np.nan
    return SyntheticCohort(clinical=clinical, truth={**tp, "seed": seed})
