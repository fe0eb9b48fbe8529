r"""Synthetic cohort for NCT07306858 (ovcf-chronicity), with documented true parameters.

No real patient data exist in this repository. This generator builds a cohort
shaped like the registered study so that the whole chain (validation, analysis,
report) runs, and so that tests can check that estimates recover the truth.

Design (all numbers are in :data:`TRUE_PARAMETERS`)
---------------------------------------------------
* 276 included patients, 138 acute and 138 chronic (the registered numbers),
  classified by their *index vertebra*. 196 at the development centre
  ``CQMU`` (98 + 98; per class 68 in the development split, 30 held out as the
  internal test set) and 80 at the external centre ``EXT`` (40 + 40).
* 39 further screened patients excluded for the protocol's reasons (age under
  50, infection or malignancy, foreign material, poor image quality, CT-MRI
  interval of 14 days or more, incomplete clinical data), so that the STARD flow
  diagram has real counts.
* Each patient has 1, 2 or 3 fractured vertebrae (probabilities 0.65, 0.25,
  0.10) at contiguous levels around the thoracolumbar junction; a non-index
  vertebra has the index vertebra's class with probability 0.75.
* Three classifiers (DenseNet-121, ViT, VGG-16) score every vertebra of every
  included patient. Their latent score is binormal with equal variances:

  .. math::

     s_{im} = \\delta_{m,c}\\, y_i + \\sqrt{\\rho}\\, u_i + \\sqrt{\\tau^2}\\, w_{p(i)}
              + \\sqrt{1-\\rho-\\tau^2}\\, e_{im},

  with :math:`u_i` a case effect shared by the three models (their correlation),
  :math:`w_p` a patient effect (vertebrae of one patient are correlated), and
  all effects standard normal. The true AUC of model *m* at centre *c* is
  :math:`\\Phi(\\delta_{m,c}/\\sqrt 2)`. The reported probability is

  .. math::

     p_{im} = \\operatorname{expit}\\{\\gamma_m (\\delta s_{im} - \\delta^2/2)\\},

  which is perfectly calibrated at prevalence 0.5 when :math:`\\gamma_m = 1`;
  VGG-16 has :math:`\\gamma = 1.6` (over-confident). At the pre-specified
  threshold 0.5 the true sensitivity and specificity both equal
  :math:`\\Phi(\\delta/2)`.
* One external index vertebra has a failed segmentation (status ``failed`` for
  all three models), so the flow diagram shows a missing index-test result.
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
from scipy import stats

from studyval.synthetic._io import FAMILY_NAMES, GIVEN_NAMES, write_cohort

__all__ = ["TRUE_PARAMETERS", "SyntheticCohort", "generate"]

LEVELS = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12",
          "L1", "L2", "L3", "L4", "L5"]  # fmt: skip

#: True AUCs by model and centre; deltas follow as sqrt(2) * Phi^-1(AUC).
TRUE_AUC = {
    "DenseNet-121": {"CQMU": 0.92, "EXT": 0.90},
    "ViT": {"CQMU": 0.89, "EXT": 0.86},
    "VGG-16": {"CQMU": 0.84, "EXT": 0.80},
}
CALIBRATION_GAMMA = {"DenseNet-121": 1.0, "ViT": 1.0, "VGG-16": 1.6}

TRUE_PARAMETERS: dict[str, Any] = {
    "n_included_patients": 276,
    "n_acute_patients": 138,
    "n_chronic_patients": 138,
    "patients_by_site_and_class": {
        "CQMU": {"acute": 98, "chronic": 98},
        "EXT": {"acute": 40, "chronic": 40},
    },
    "cqmu_split_per_class": {"development": 68, "internal": 30},
    "excluded_patients": {
        "age_under_50": 6,
        "infection_or_malignancy": 9,
        "foreign_material": 7,
        "poor_image_quality": 5,
        "ct_mri_interval_14d_or_more": 8,
        "incomplete_clinical_data": 4,
    },
    "vertebrae_per_patient_probs": {"1": 0.65, "2": 0.25, "3": 0.10},
    "p_non_index_same_class": 0.75,
    "true_auc": TRUE_AUC,
    "calibration_gamma": CALIBRATION_GAMMA,
    "rho_shared_case_effect": 0.4,
    "tau2_patient_effect": 0.2,
    "failed_index_tests_external": 1,
    "threshold": 0.5,
    "note": "true sensitivity = specificity = Phi(delta/2) at threshold 0.5 for calibrated models",
}


def true_delta(model: str, site: str) -> float:
    """Binormal separation delta = sqrt(2) * Phi^-1(true AUC)."""
    return float(np.sqrt(2.0) * stats.norm.ppf(TRUE_AUC[model][site]))


def true_sensitivity(model: str, site: str) -> float:
    """True sensitivity (= specificity) at threshold 0.5 for a calibrated model."""
    # p >= 0.5 <=> delta*s - delta^2/2 >= 0 for any gamma > 0, so gamma does not matter here.
    return float(stats.norm.cdf(true_delta(model, site) / 2.0))


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated cohort.

    Attributes
    ----------
    clinical : DataFrame
        One row per fractured vertebra of every screened patient (the
        ``ovcf-chronicity`` data dictionary).
    predictions : DataFrame
        One row per vertebra of each included patient per model (the
        ``predictions`` contract).
    truth : dict
        :data:`TRUE_PARAMETERS` plus the seed.

    """

    clinical: pd.DataFrame
    predictions: pd.DataFrame
    truth: dict[str, Any]

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``clinical.csv``, ``predictions.csv`` and ``truth.json`` to ``directory``."""
        return write_cohort(
            directory, clinical=self.clinical, truth=self.truth, predictions=self.predictions
        )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


_GIVEN = GIVEN_NAMES
_FAMILY = FAMILY_NAMES


def generate(seed: int = 20251216) -> SyntheticCohort:
    """Generate the synthetic ovcf-chronicity cohort.

    Parameters
    ----------
    seed : int
        Seed of the numpy ``PCG64`` generator; the same seed gives the same tables.

    Returns
    -------
    SyntheticCohort

    """
    rng = np.random.Generator(np.random.PCG64(seed))
    tp = TRUE_PARAMETERS
    patients: list[dict[str, Any]] = []

    def add_patient(site: str, cls: str, split: str | None, exclusion: str) -> None:
        patients.append({"site": site, "cls": cls, "split": split, "exclusion": exclusion})

    for site, by_class in tp["patients_by_site_and_class"].items():
        for cls, n in by_class.items():
            for k in range(n):
                if site == "CQMU":
                    split = (
                        "development"
                        if k < tp["cqmu_split_per_class"]["development"]
                        else "internal"
                    )
                else:
                    split = "external"
                add_patient(site, cls, split, "none")
    for reason, n in tp["excluded_patients"].items():
        for _ in range(n):
            site = "CQMU" if rng.random() < 0.7 else "EXT"
            cls = "acute" if rng.random() < 0.5 else "chronic"
            add_patient(site, cls, None, reason)
    order = rng.permutation(len(patients))
    patients = [patients[i] for i in order]

    start = pd.Timestamp("2023-01-01")
    span_days = (pd.Timestamp("2025-09-15") - start).days
    rows: list[dict[str, Any]] = []
    for pid_num, pat in enumerate(patients, start=1):
        pid = f"P{pid_num:04d}"
        excl = pat["exclusion"]
        age = int(np.clip(np.round(rng.normal(72, 8)), 50, 98))
        if excl == "age_under_50":
            age = int(rng.integers(41, 50))
        sex = "F" if rng.random() < 0.75 else "M"
        t_score = float(np.round(np.clip(rng.normal(-2.8, 0.9), -6.5, 1.5), 1))
        t_missing = rng.random() < 0.05 or excl == "incomplete_clinical_data"
        ct = start + pd.Timedelta(days=int(rng.integers(0, span_days)))
        interval = (
            int(rng.integers(14, 45))
            if excl == "ct_mri_interval_14d_or_more"
            else int(rng.integers(0, 14))
        )
        mri = ct + pd.Timedelta(days=interval)
        dob = ct - pd.Timedelta(days=int(age * 365.25 + rng.integers(0, 365)))
        n_vert = int(rng.choice([1, 2, 3], p=[0.65, 0.25, 0.10]))
        centre = int(np.clip(np.round(rng.normal(12.5, 2.2)), 4, 16))  # around T12-L1
        first = int(np.clip(centre - rng.integers(0, n_vert), 0, len(LEVELS) - n_vert))
        name = f"{_FAMILY[rng.integers(0, 10)]}^{_GIVEN[rng.integers(0, 10)]}"
        mrn = f"MRN{rng.integers(10_000_000, 99_999_999)}"
        for v in range(n_vert):
            is_index = v == 0
            if is_index:
                cls = pat["cls"]
            else:
                same = rng.random() < tp["p_non_index_same_class"]
                cls = pat["cls"] if same else ("chronic" if pat["cls"] == "acute" else "acute")
            rows.append(
                {
                    "case_id": f"{pid}-V{v + 1}",
                    "patient_id": pid,
                    "patient_name": name,
                    "medical_record_number": mrn,
                    "date_of_birth": dob.strftime("%Y-%m-%d"),
                    "site": pat["site"],
                    "age": age,
                    "sex": sex,
                    "dxa_t_score": None if t_missing else t_score,
                    "vertebral_level": LEVELS[first + v],
                    "index_vertebra": "true" if is_index else "false",
                    "chronicity": cls,
                    "ct_date": ct.strftime("%Y-%m-%d"),
                    "mri_date": mri.strftime("%Y-%m-%d"),
                    "exclusion_reason": excl,
                    "_split": pat["split"],
                }
            )
    clinical = pd.DataFrame(rows)

    # ---------------------------------------------------------------- predictions
    included = clinical[clinical["exclusion_reason"] == "none"].reset_index(drop=True)
    n = len(included)
    y = (included["chronicity"] == "acute").to_numpy(dtype=float)
    rho, tau2 = tp["rho_shared_case_effect"], tp["tau2_patient_effect"]
    u = rng.standard_normal(n)
    pids = included["patient_id"].to_numpy()
    uniq, inverse = np.unique(pids, return_inverse=True)
    w = rng.standard_normal(len(uniq))[inverse]
    ext_index = included.index[(included["site"] == "EXT") & (included["index_vertebra"] == "true")]
    failed_case = included.loc[int(rng.choice(ext_index)), "case_id"]
    pred_rows = []
    for model in TRUE_AUC:
        e = rng.standard_normal(n)
        delta = np.array([true_delta(model, s) for s in included["site"]])
        s = delta * y + np.sqrt(rho) * u + np.sqrt(tau2) * w + np.sqrt(1 - rho - tau2) * e
        logit = CALIBRATION_GAMMA[model] * (delta * s - delta**2 / 2.0)
        prob = 1.0 / (1.0 + np.exp(-logit))
        version = "sha256:" + _sha256(f"synthetic-weights:{model}:{seed}")
        failed = (included["case_id"] == failed_case).to_numpy()
        pred_rows.append(
            pd.DataFrame(
                {
                    "case_id": included["case_id"],
                    "patient_id": included["patient_id"],
                    "site": included["site"],
                    "model_name": model,
                    "model_version": version,
                    "input_sha256": [
                        _sha256(f"synthetic-ct:{c}:{seed}") for c in included["case_id"]
                    ],
                    "split": included["_split"],
                    "positive_class": "acute",
                    "score": np.where(failed, np.nan, np.clip(prob, 1e-6, 1 - 1e-6)),
                    "status": np.where(failed, "failed", "ok"),
                    "failure_reason": np.where(
                        failed, "segmentation failed: vertebral body not delineated", None
                    ),
                    "vertebral_level": included["vertebral_level"],
                }
            )
        )
    predictions = pd.concat(pred_rows, ignore_index=True)
    clinical = clinical.drop(columns=["_split"])
    truth = dict(tp)
    truth["seed"] = seed
    truth["failed_case_id"] = failed_case
    truth["true_sensitivity_at_0.5"] = {
        m: {s: true_sensitivity(m, s) for s in ("CQMU", "EXT")} for m in TRUE_AUC
    }
    return SyntheticCohort(clinical=clinical, predictions=predictions, truth=truth)
