r"""Synthetic cohort for AIC003 (vcf-opportunistic), with documented true parameters.

No real patient data exist in this repository. This generator builds a
service evaluation shaped like the registered one so that validation,
analysis and report run end to end, and so that tests can check that the
estimates recover the truth and that the planted drift is flagged.

Design (every number is in :data:`TRUE_PARAMETERS`)
---------------------------------------------------
* Two periods of CT scans with the spine in the field of view, one site:
  retrospective (1,000 included scans dated in 2019, standard-care reports)
  and prospective (8 weeks from 2021-03-01, 160 included scans a week,
  AI-assisted reports). Further screened scans are excluded for the plan's
  reasons (age 55 or under, spine not in the field of view, poor image
  quality, no reference read), so that the flow diagram has real counts.
* About 8% of patients have a second scan in the same period; the second
  scan keeps the first one's VCF status with probability 0.9.
* Reference standard: VCF with probability 0.18 (Genant grade 1/2/3 with
  probabilities 0.45/0.35/0.20 given a VCF, 0 otherwise).
* AI tool (``VCF-AI``): latent :math:`z \sim N(\mu_y, 1)`, score
  :math:`\operatorname{expit}(z - c)` so that the flag (score >= 0.5) has
  sensitivity 0.90 and specificity 0.92; in prospective **week 6** the
  sensitivity drops to 0.10 (a planted drift, e.g. a reconstruction-kernel
  change), which the weekly charts must flag.
* Commercial tool (``BoneHealth-commercial``), retrospective scans only:
  sensitivity 0.85, specificity 0.90, independent of the AI tool given the
  reference standard.
* Retrospective reports (standard care): P(report mentions a VCF | VCF) =
  0.77, | no VCF = 0.02; P(referral | reported) = 0.43/0.77, so 43% of
  VCF-positive scans are referred (the registry's baselines).
* Prospective reports (AI-assisted): P(report | VCF, AI flag) = 0.97,
  P(report | VCF, no flag) = 0.47, so detection is 0.92 in weeks with the
  in-control AI (0.52 in week 6); P(referral | reported VCF) = 0.65/0.92,
  so referral is 0.65 (0.367 in week 6). False-positive reports: 0.10 with
  an AI flag, 0.01 without.
* Three retrospective and two prospective scans have a failed AI run
  (``status: failed``); the report then behaves as without a flag.
* **Patients in both periods:** 12 prospective patients with one included
  scan are the same people as 12 retrospective patients with one included
  scan and the same sex (chosen with a second generator seeded ``seed + 1``,
  after everything else is drawn, so no other value changes); the prospective
  row takes the earlier patient's identifiers and the age two years on. Their
  outcomes are drawn as for anyone else. The plan's rule
  (``unit.patients_in_both_periods: first_period``) analyses them in the
  retrospective period only.
* **Adjusted comparison (true values):** detection and referral depend on
  neither Genant grade, age, sex nor CT region, and these are distributed
  alike in both periods. The case mix therefore confounds nothing: the true
  standardised difference is the crude one, prospective (drift week
  averaged in) minus retrospective, 0.100 for detection (0.870 - 0.77) and
  0.185 for referral (0.615 - 0.43); the true odds ratios are 2.00 and 2.12
  (:data:`TRUE_PARAMETERS` ``adjusted_comparison``), and every covariate's
  true coefficient is 0.
* Planted direct identifiers (names, hospital numbers, dates of birth) let
  the privacy checks prove that none reaches a bundle or a report.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.synthetic._io import write_cohort

__all__ = ["TRUE_PARAMETERS", "SyntheticCohort", "expected_rates", "generate"]

AI_MODEL = "VCF-AI"
COMMERCIAL_MODEL = "BoneHealth-commercial"
PROSPECTIVE_START = dt.date(2021, 3, 1)
RETRO_START = dt.date(2019, 1, 1)

TRUE_PARAMETERS: dict[str, Any] = {
    "site": "SITE1",
    "prevalence": 0.18,
    "genant_grade_given_vcf": {"1": 0.45, "2": 0.35, "3": 0.20},
    "p_second_scan": 0.08,
    "p_second_scan_same_vcf_status": 0.9,
    "retrospective": {
        "included_scans": 1000,
        "excluded_scans": {
            "age_55_or_under": 24,
            "spine_not_in_field_of_view": 14,
            "poor_image_quality": 9,
            "no_reference_read": 8,
        },
        "report_sensitivity": 0.77,
        "report_false_positive_rate": 0.02,
        "p_referral_given_report": 0.43 / 0.77,
        "detection_rate": 0.77,
        "referral_rate": 0.43,
        "failed_ai_runs": 3,
    },
    "prospective": {
        "weeks": 8,
        "included_scans_per_week": 160,
        "excluded_scans_per_week": {
            "age_55_or_under": 4,
            "spine_not_in_field_of_view": 2,
            "poor_image_quality": 1,
            "no_reference_read": 1,
        },
        "p_report_given_vcf_and_ai_flag": 0.97,
        "p_report_given_vcf_no_ai_flag": 0.47,
        "p_report_given_no_vcf_and_ai_flag": 0.10,
        "p_report_given_no_vcf_no_ai_flag": 0.01,
        "p_referral_given_reported_vcf": 0.65 / 0.92,
        "detection_rate_in_control": 0.92,
        "referral_rate_in_control": 0.65,
        "failed_ai_runs": 2,
    },
    "ai_tool": {"sensitivity": 0.90, "specificity": 0.92, "threshold": 0.5},
    "commercial_tool": {"sensitivity": 0.85, "specificity": 0.90, "threshold": 0.5},
    "patients_in_both_periods": 12,
    "adjusted_comparison": {
        "covariate_coefficients": 0.0,
        "case_mix": "Genant grade, age, sex and CT region drawn alike in both periods",
        "standardised_difference_detection": ((7 * 0.92 + 0.1 * 0.97 + 0.9 * 0.47) / 8) - 0.77,
        "standardised_difference_referral": (
            (7 * 0.65 + (0.1 * 0.97 + 0.9 * 0.47) * 0.65 / 0.92) / 8
        )
        - 0.43,
        "odds_ratio_detection": (
            ((7 * 0.92 + 0.1 * 0.97 + 0.9 * 0.47) / 8)
            / (1 - (7 * 0.92 + 0.1 * 0.97 + 0.9 * 0.47) / 8)
        )
        / (0.77 / 0.23),
        "odds_ratio_referral": (
            ((7 * 0.65 + (0.1 * 0.97 + 0.9 * 0.47) * 0.65 / 0.92) / 8)
            / (1 - (7 * 0.65 + (0.1 * 0.97 + 0.9 * 0.47) * 0.65 / 0.92) / 8)
        )
        / (0.43 / 0.57),
        "note": "odds ratios of the period-averaged rates; the prospective rate varies by week "
        "(drift), so the true odds ratio is that of the averaged rates, not a constant "
        "conditional one",
    },
    "drift": {
        "week": 6,
        "ai_sensitivity": 0.10,
        "detection_rate": 0.1 * 0.97 + 0.9 * 0.47,
        "referral_rate": (0.1 * 0.97 + 0.9 * 0.47) * 0.65 / 0.92,
        "cause": "planted: the AI tool's sensitivity falls to 0.10 in prospective week 6",
    },
}


def expected_rates() -> dict[str, float]:
    """True detection and referral rates of each period (VCF-positive scans), drift week averaged in."""
    pro = TRUE_PARAMETERS["prospective"]
    dr = TRUE_PARAMETERS["drift"]
    w = pro["weeks"]
    return {
        "retrospective_detection": 0.77,
        "retrospective_referral": 0.43,
        "prospective_detection": ((w - 1) * pro["detection_rate_in_control"] + dr["detection_rate"])
        / w,
        "prospective_referral": ((w - 1) * pro["referral_rate_in_control"] + dr["referral_rate"])
        / w,
    }


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated cohort: the clinical table, the prediction table and the truth."""

    clinical: pd.DataFrame
    predictions: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=dict)

    def write(self, directory: str | Path) -> dict[str, Path]:
        """Write ``clinical.csv``, ``predictions.csv`` and ``truth.json`` to ``directory``."""
        return write_cohort(
            directory, clinical=self.clinical, truth=self.truth, predictions=self.predictions
        )


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


FAMILY = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Evans", "Thomas", "Roberts",
          "Walker", "Wright", "Hughes", "Green", "Hall", "Wood", "Harris", "Clarke", "Patel"]  # fmt: skip
GIVEN = ["Margaret", "John", "Patricia", "David", "Susan", "Peter", "Jean", "Michael", "Ann",
         "Robert", "Joan", "Brian", "Sheila", "Alan", "Doreen", "Kenneth"]  # fmt: skip


def generate(seed: int = 20210301, *, commercial: bool = True) -> SyntheticCohort:
    """Generate the cohort (deterministic for a given ``seed``).

    Parameters
    ----------
    seed : int
        Seed of the random generator.
    commercial : bool
        Include the commercial tool's prediction rows (``False``: the run must
        report its absence).

    """
    rng = np.random.default_rng(seed)
    tp = TRUE_PARAMETERS
    ai, com, drift = tp["ai_tool"], tp["commercial_tool"], tp["drift"]
    c_ai = stats.norm.ppf(ai["specificity"])
    mu_ai = c_ai + stats.norm.ppf(ai["sensitivity"])
    mu_ai_drift = c_ai + stats.norm.ppf(drift["ai_sensitivity"])
    c_com = stats.norm.ppf(com["specificity"])
    mu_com = c_com + stats.norm.ppf(com["sensitivity"])
    grades = np.array([1, 2, 3])
    grade_p = np.array([float(v) for v in tp["genant_grade_given_vcf"].values()])

    pred_rows: list[dict[str, Any]] = []
    counter = {"patient": 0, "scan": 0}

    def new_patient(age: int) -> dict[str, Any]:
        counter["patient"] += 1
        k = counter["patient"]
        family, given = FAMILY[rng.integers(len(FAMILY))], GIVEN[rng.integers(len(GIVEN))]
        sex = "F" if rng.random() < 0.62 else "M"
        return {
            "patient_id": f"P{k:05d}",
            "patient_name": f"{family.upper()}^{given}",
            "medical_record_number": f"MRN{7300000 + 37 * k:08d}",
            "age": age,
            "sex": sex,
        }

    def scan_row(
        patient: dict[str, Any], period: str, date: dt.date, exclusion: str, vcf: bool | None
    ) -> dict[str, Any]:
        counter["scan"] += 1
        dob = date - dt.timedelta(days=int(patient["age"] * 365.25 + rng.integers(1, 360)))
        week = (date - PROSPECTIVE_START).days // 7 + 1 if period == "prospective" else None
        grade = None if vcf is None else (int(rng.choice(grades, p=grade_p)) if vcf else 0)
        return {
            "case_id": f"CT{counter['scan']:06d}",
            "patient_id": patient["patient_id"],
            "patient_name": patient["patient_name"],
            "medical_record_number": patient["medical_record_number"],
            "date_of_birth": dob.isoformat(),
            "site": tp["site"],
            "period": period,
            "scan_date": date.isoformat(),
            "week": week,
            "age": patient["age"],
            "sex": patient["sex"],
            "ct_region": str(
                rng.choice(["chest", "abdomen_pelvis", "chest_abdomen_pelvis"], p=[0.4, 0.35, 0.25])
            ),
            "exclusion_reason": exclusion,
            "genant_grade": grade,
            "vcf_reference": None if vcf is None else ("vcf" if vcf else "no_vcf"),
            "report_vcf": False,
            "referred": False,
        }

    def dates(period: str, n: int, week: int | None = None) -> list[dt.date]:
        if period == "retrospective":
            return sorted(RETRO_START + dt.timedelta(days=int(d)) for d in rng.integers(0, 365, n))
        start = PROSPECTIVE_START + dt.timedelta(days=7 * (week - 1))
        return sorted(start + dt.timedelta(days=int(d)) for d in rng.integers(0, 7, n))

    def included_scans(period: str, n: int, week: int | None = None) -> list[dict[str, Any]]:
        rows = []
        ds = dates(period, n, week)
        i = 0
        while i < n:
            pat = new_patient(int(rng.integers(56, 96)))
            vcf = bool(rng.random() < tp["prevalence"])
            rows.append(scan_row(pat, period, ds[i], "none", vcf))
            i += 1
            if i < n and rng.random() < tp["p_second_scan"]:
                same = rng.random() < tp["p_second_scan_same_vcf_status"]
                vcf2 = vcf if same else bool(rng.random() < tp["prevalence"])
                rows.append(scan_row(pat, period, ds[i], "none", vcf2))
                i += 1
        return rows

    def excluded_scans(
        period: str, reasons: dict[str, int], week: int | None = None
    ) -> list[dict[str, Any]]:
        rows = []
        for reason, k in reasons.items():
            for d in dates(period, k, week):
                age = (
                    int(rng.integers(40, 56))
                    if reason == "age_55_or_under"
                    else int(rng.integers(56, 96))
                )
                vcf = (
                    None if reason == "no_reference_read" else bool(rng.random() < tp["prevalence"])
                )
                rows.append(scan_row(new_patient(age), period, d, reason, vcf))
        return rows

    retro = included_scans("retrospective", tp["retrospective"]["included_scans"])
    retro += excluded_scans("retrospective", tp["retrospective"]["excluded_scans"])
    pro: list[dict[str, Any]] = []
    pp = tp["prospective"]
    for w in range(1, pp["weeks"] + 1):
        pro += included_scans("prospective", pp["included_scans_per_week"], w)
        pro += excluded_scans("prospective", pp["excluded_scans_per_week"], w)
    rows = retro + pro

    failed = set()
    inc_retro = [r for r in retro if r["exclusion_reason"] == "none"]
    inc_pro = [r for r in pro if r["exclusion_reason"] == "none"]
    for group, k in (
        (inc_retro, tp["retrospective"]["failed_ai_runs"]),
        (inc_pro, pp["failed_ai_runs"]),
    ):
        for j in rng.choice(len(group), size=k, replace=False):
            failed.add(group[int(j)]["case_id"])

    ai_version = "sha256:" + _sha("VCF-AI weights v1.0")
    com_version = "sha256:" + _sha("BoneHealth commercial v3.2")
    rp = tp["retrospective"]
    for r in rows:
        vcf = r["vcf_reference"] == "vcf"
        included = r["exclusion_reason"] == "none"
        flag = False
        if included:
            drifted = r["period"] == "prospective" and r["week"] == drift["week"]
            mu = (mu_ai_drift if drifted else mu_ai) if vcf else 0.0
            z = rng.normal(mu, 1.0)
            score = float(1.0 / (1.0 + np.exp(-(z - c_ai))))
            ok = r["case_id"] not in failed
            flag = ok and score >= ai["threshold"]
            pred_rows.append(_pred(r, AI_MODEL, ai_version, score if ok else None))
            if commercial and r["period"] == "retrospective":
                zc = rng.normal(mu_com if vcf else 0.0, 1.0)
                flag_c = zc >= c_com
                pred_rows.append(_pred(r, COMMERCIAL_MODEL, com_version, 1.0 if flag_c else 0.0))
        if r["period"] == "retrospective":
            p_rep = rp["report_sensitivity"] if vcf else rp["report_false_positive_rate"]
            p_ref = rp["p_referral_given_report"]
        elif vcf:
            p_rep = (
                pp["p_report_given_vcf_and_ai_flag"]
                if flag
                else pp["p_report_given_vcf_no_ai_flag"]
            )
            p_ref = pp["p_referral_given_reported_vcf"]
        else:
            p_rep = (
                pp["p_report_given_no_vcf_and_ai_flag"]
                if flag
                else pp["p_report_given_no_vcf_no_ai_flag"]
            )
            p_ref = pp["p_referral_given_reported_vcf"]
        r["report_vcf"] = bool(rng.random() < p_rep)
        r["referred"] = bool(r["report_vcf"] and rng.random() < p_ref)

    clinical = pd.DataFrame(rows)
    predictions = pd.DataFrame(pred_rows)
    clinical, predictions = _patients_in_both_periods(
        clinical, predictions, tp["patients_in_both_periods"], np.random.default_rng(seed + 1)
    )
    clinical["week"] = clinical["week"].astype("Int64")
    clinical["genant_grade"] = clinical["genant_grade"].astype("Int64")
    clinical["report_vcf"] = clinical["report_vcf"].map({True: "true", False: "false"})
    clinical["referred"] = clinical["referred"].map({True: "true", False: "false"})
    truth = {
        **TRUE_PARAMETERS,
        "seed": seed,
        "commercial_rows": commercial,
        "expected_rates": expected_rates(),
    }
    return SyntheticCohort(clinical=clinical, predictions=predictions, truth=truth)


def _patients_in_both_periods(
    clinical: pd.DataFrame, predictions: pd.DataFrame, k: int, rng: np.random.Generator
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Make ``k`` prospective patients the same people as ``k`` retrospective ones.

    Both have exactly one scan, included; the pairs share a sex. The
    prospective row takes the retrospective patient's identifiers (id, name,
    hospital number, date of birth) and the age two years on.
    """
    clinical = clinical.copy()
    predictions = predictions.copy()
    inc = clinical[clinical["exclusion_reason"] == "none"]
    once = inc["patient_id"].map(clinical["patient_id"].value_counts()) == 1
    single = inc[once]
    moved = 0
    for sex in ("F", "M"):
        want = k // 2 if sex == "F" else k - k // 2
        ret = single[(single["period"] == "retrospective") & (single["sex"] == sex)].index
        pro = single[(single["period"] == "prospective") & (single["sex"] == sex)].index
        for i, j in zip(
            rng.choice(ret, size=want, replace=False),
            rng.choice(pro, size=want, replace=False),
            strict=True,
        ):
            old = clinical.at[j, "patient_id"]
            for col in ("patient_id", "patient_name", "medical_record_number", "date_of_birth"):
                clinical.at[j, col] = clinical.at[i, col]
            clinical.at[j, "age"] = int(clinical.at[i, "age"]) + 2
            predictions.loc[predictions["patient_id"] == old, "patient_id"] = clinical.at[
                i, "patient_id"
            ]
            moved += 1
    if moved != k:
        raise RuntimeError(f"made {moved} patients in both periods, wanted {k}")
    return clinical, predictions


def _pred(r: dict[str, Any], model: str, version: str, score: float | None) -> dict[str, Any]:
    return {
        "case_id": r["case_id"],
        "patient_id": r["patient_id"],
        "site": r["site"],
        "model_name": model,
        "model_version": version,
        "input_sha256": _sha(f"{r['case_id']}-series"),
        "split": "external",
        "positive_class": "vcf",
        "score": score,
        "status": "ok" if score is not None else "failed",
        "failure_reason": None
        if score is not None
        else "series could not be read (missing slices)",
    }
