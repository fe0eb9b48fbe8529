r"""Synthetic cohort for the msk-aging protocol (PKUPH IRB 2026PHB097-001), with documented truth.

No real patient data exist in this repository. This generator builds a cohort
shaped like the registered study (about 1,500 retrospective + 500 prospective
patients at two hospitals, one row per knee) so that the whole chain runs and
tests can check that the estimates recover the truth.

Design (all numbers are in :data:`TRUE_PARAMETERS`)
---------------------------------------------------
* Included patients by cohort and hospital (``included``); further screened
  patients excluded for the registry's reasons (``excluded_patients``).
  ``one_knee_fraction`` of included patients have one assessed knee only (the
  other has an implant and no row).
* Age ~ N(63, 10) clipped to [40, 90], 70% women, BMI ~ N(24, 3.5).
* **True T-score model** (patient level):

  .. math::

     T = \gamma_0 + \gamma_{age}(age - 60) + \gamma_F\,female + \gamma_{BMI}(BMI - 24)
         + \varepsilon, \quad \varepsilon \sim N(0, \sigma_T^2),

  staged by the WHO cut-offs (normal :math:`T \ge -1`, osteopenia
  :math:`-2.5 < T < -1`, osteoporosis :math:`T \le -2.5`).
* Laboratory: log beta-CTX and log P1NP fall linearly with T (``lab_per_t``, per
  T-score unit, centred at -1.7; log-scale SD 0.3);
  calcium and phosphorus carry no signal.
* Image features: ``op_img_k = w_k (T - T_c)/s_T + N(0, 1)`` (spine/hip CNN
  embedding, ``op_img_weights``; dimension 4 is noise) and per knee
  ``kl_img_k = v_k (L - 1.2) + N(0, 1)`` where ``L`` is the knee's latent OA
  severity (``kl_img_weights``).
* **KL grade per knee**: patient latent
  :math:`o_i = \beta_{age}(age-60) + \beta_{BMI}(BMI-24) + \beta_F female + u_i`,
  :math:`u_i \sim N(0, \sigma_u^2)`; knee latent :math:`L = o_i + e_{knee}`,
  :math:`e \sim N(0, \sigma_{knee}^2)`; grade = number of ``kl_cutpoints``
  below :math:`L`. The two knees of a patient are correlated through
  :math:`o_i` (why every knee-level interval is patient-clustered).
* **New fragility fracture**: exponential hazard per month by the true DXA
  stage, ``fracture_rate_per_year`` for normal, ``fracture_hr`` for the other
  stages (so the true hazard ratios vs normal are 2 and 4); censoring uniform
  administrative follow-up on ``[admin_followup_months]`` and exponential
  loss (``loss_rate_per_year``).
* **Death, the competing event** (``death``): the exponential loss of
  follow-up is split into death and loss by a Bernoulli draw per patient
  whose follow-up ended by loss, with probability
  :math:`p(age) = \operatorname{expit}\{a + b\,(age - 63)\}` (``death``:
  ``logit_share``, ``logit_share_per_year``). Given age this is the same as
  independent exponential death and loss hazards
  :math:`0.03\,p(age)` and :math:`0.03\,\{1 - p(age)\}` per year, so the
  deaths are recorded without changing any fracture time of version 1 (the
  draws come after all others). ``death_without_fracture`` is true for them.
  Older patients (lower T-scores) die more often, so the Kaplan-Meier
  "1 - KM" of fractures overstates the cumulative incidence.
* **Anti-osteoporosis treatment after the index DXA**
  (``osteoporosis_treatment``): Bernoulli by the true DXA stage
  (``treatment_probability``); it has **no effect** on the fracture hazard
  (true hazard ratio 1), so adjusting for it must leave the stage hazard
  ratios unchanged up to sampling error (it is the DXA-driven treatment a
  real cohort would need adjusting for).
* **VAS and OKS** (patient level, radiographic OA :math:`g` = highest
  reference KL grade of the patient >= 2), visit month :math:`m`, years
  :math:`t = m/12`:

  .. math::

     y_{im} = \beta_0 + \beta_t t + \beta_g g + \beta_{tg}\, t g + b_i + e_{im},
     \quad b_i \sim N(0, \sigma_b^2),\ e_{im} \sim N(0, \sigma_e^2),

  (``lmm``), VAS rounded to 0.1 and OKS to integers (adds about 1/12 to the
  OKS residual variance), both clipped to their range (rare by design).
  Visits are missing completely at random with monotone drop-out:
  ``visit_retention`` is the probability of still being followed.
* **Encoder provenance** (``op_encoder_training``, ``kl_encoder_training``):
  no encoder is trained here (the image features are drawn from the truth as
  above), so no patient was in an encoder's training set: both flags are
  false for everyone. A real study marks the patients its CNN was trained or
  fine-tuned on, and a run refuses any of them among the evaluated patients.
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

__all__ = ["TRUE_PARAMETERS", "SyntheticCohort", "generate", "stage_from_t"]

TRUE_PARAMETERS: dict[str, Any] = {
    "included": {
        "retrospective": {"PKUPH": 1050, "SYSMH": 450},
        "prospective": {"PKUPH": 300, "SYSMH": 200},
    },
    "excluded_patients": {
        "age_outside_18_90": 6,
        "deformity_or_implant": 10,
        "pathological_fracture_history": 9,
        "malignancy": 8,
        "long_term_steroids": 12,
        "recent_radiochemotherapy": 4,
        "insufficient_image_quality": 11,
        "missing_dxa": 14,
    },
    "one_knee_fraction": 0.03,
    "proportion_female": 0.70,
    "t_score_model": {
        "intercept": -1.2,
        "age_per_year": -0.05,
        "female": -0.5,
        "bmi_per_unit": 0.08,
        "sd": 0.9,
    },
    "t_thresholds": {"normal_min": -1.0, "osteoporosis_max": -2.5},
    "lab_per_t": {"log_ctx": -0.45, "log_p1np": -0.30},
    "op_img_weights": [0.9, 0.6, 0.3, 0.0],
    "kl_latent_model": {
        "age_per_year": 0.05,
        "bmi_per_unit": 0.08,
        "female": 0.3,
        "patient_sd": 0.8,
        "knee_sd": 0.6,
    },
    "kl_cutpoints": [0.3, 1.1, 1.9, 2.7],
    "kl_img_weights": [1.0, 0.7, 0.4, 0.0],
    "fracture_rate_per_year": {"normal": 0.02},
    "fracture_hr": {"osteopenia": 2.0, "osteoporosis": 4.0},
    "admin_followup_months": [12.0, 60.0],
    "loss_rate_per_year": 0.03,
    # share of the losses of follow-up that are deaths: expit(logit_share + per_year * (age - 63))
    "death": {"logit_share": 1.4, "logit_share_per_year": 0.08},
    # anti-osteoporosis treatment after the index DXA, by true DXA stage; no effect on fractures
    "treatment_probability": {"normal": 0.05, "osteopenia": 0.30, "osteoporosis": 0.80},
    "treatment_fracture_hr": 1.0,
    "visits_months": [6, 12, 24, 36],
    "visit_retention": {"6": 0.95, "12": 0.88, "24": 0.78, "36": 0.65},
    # fixed effects on the year scale (t = month / 12); group = radiographic OA (KL >= 2)
    "lmm": {
        "vas": {
            "intercept": 3.0,
            "years": 0.10,
            "oa": 2.5,
            "years:oa": 0.30,
            "patient_sd": 1.0,
            "residual_sd": 0.8,
        },
        "oks": {
            "intercept": 36.0,
            "years": -0.8,
            "oa": -8.0,
            "years:oa": -1.0,
            "patient_sd": 5.0,
            "residual_sd": 3.0,
        },
    },
}


def stage_from_t(t: Any, *, normal_min: float = -1.0, osteoporosis_max: float = -2.5) -> np.ndarray:
    """WHO stage of a T-score: normal >= normal_min, osteoporosis <= osteoporosis_max."""
    t = np.asarray(t, float)
    return np.where(
        t >= normal_min, "normal", np.where(t <= osteoporosis_max, "osteoporosis", "osteopenia")
    )


@dataclass(frozen=True)
class SyntheticCohort:
    """A generated cohort.

    Attributes
    ----------
    clinical : DataFrame
        One row per knee of every screened patient (the ``msk-aging`` dictionary).
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


def generate(seed: int = 20260317) -> SyntheticCohort:
    """Generate the synthetic msk-aging cohort (same seed, same table)."""
    tp = TRUE_PARAMETERS
    rng = np.random.default_rng(seed)
    cohort, site, reason = [], [], []
    for c, by_site in tp["included"].items():
        for s, n in by_site.items():
            cohort += [c] * n
            site += [s] * n
            reason += ["none"] * n
    for r, n in tp["excluded_patients"].items():
        for k in range(n):
            cohort.append("retrospective" if k % 4 else "prospective")
            site.append("PKUPH" if k % 3 else "SYSMH")
            reason.append(r)
    n = len(cohort)
    cohort_a, site_a, reason_a = np.array(cohort), np.array(site), np.array(reason)
    female = rng.random(n) < tp["proportion_female"]
    age = np.clip(np.round(rng.normal(63, 10, n)), 40, 90).astype(int)
    age[reason_a == "age_outside_18_90"] = rng.integers(
        91, 96, (reason_a == "age_outside_18_90").sum()
    )
    bmi = np.round(np.clip(rng.normal(24, 3.5, n), 15, 45), 1)
    tm = tp["t_score_model"]
    t_true = (
        tm["intercept"]
        + tm["age_per_year"] * (age - 60)
        + tm["female"] * female
        + tm["bmi_per_unit"] * (bmi - 24)
        + tm["sd"] * rng.standard_normal(n)
    )
    t_score = np.round(np.clip(t_true, -5.9, 4.9), 1)
    th = tp["t_thresholds"]
    stage = stage_from_t(
        t_score, normal_min=th["normal_min"], osteoporosis_max=th["osteoporosis_max"]
    )
    t_c, t_s = -1.7, 1.1
    z = (t_score - t_c) / t_s
    ctx = np.round(
        np.exp(
            np.log(0.40)
            + tp["lab_per_t"]["log_ctx"] * (t_score - t_c)
            + 0.3 * rng.standard_normal(n)
        ),
        3,
    )
    p1np = np.round(
        np.exp(
            np.log(50)
            + tp["lab_per_t"]["log_p1np"] * (t_score - t_c)
            + 0.3 * rng.standard_normal(n)
        ),
        1,
    )
    ctx = np.clip(ctx, 0.02, 4.9)
    p1np = np.clip(p1np, 2, 490)
    calcium = np.round(np.clip(rng.normal(2.35, 0.10, n), 1.8, 3.0), 2)
    phos = np.round(np.clip(rng.normal(1.15, 0.15, n), 0.5, 2.0), 2)
    op_img = np.column_stack(
        [np.round(w * z + rng.standard_normal(n), 4) for w in tp["op_img_weights"]]
    )
    km = tp["kl_latent_model"]
    o = (
        km["age_per_year"] * (age - 60)
        + km["bmi_per_unit"] * (bmi - 24)
        + km["female"] * female
        + km["patient_sd"] * rng.standard_normal(n)
    ) + 1.2
    # fracture follow-up (months) by true stage
    rate_y = tp["fracture_rate_per_year"]["normal"] * np.select(
        [stage == "osteopenia", stage == "osteoporosis"],
        [tp["fracture_hr"]["osteopenia"], tp["fracture_hr"]["osteoporosis"]],
        1.0,
    )
    t_event = rng.exponential(12.0 / rate_y)
    lo, hi = tp["admin_followup_months"]
    admin = rng.uniform(lo, hi, n)
    loss = rng.exponential(12.0 / tp["loss_rate_per_year"], n)
    cens = np.minimum(admin, loss)
    fracture = t_event <= cens
    follow = np.round(np.maximum(np.where(fracture, t_event, cens), 0.1), 1)
    # knees
    n_knees = np.where(rng.random(n) < tp["one_knee_fraction"], 1, 2)
    rows = []
    kl_max = np.full(n, -1)
    for i in range(n):
        sides = ["left", "right"] if n_knees[i] == 2 else [["left", "right"][rng.integers(2)]]
        for side in sides:
            latent = o[i] + km["knee_sd"] * rng.standard_normal()
            grade = int(np.searchsorted(tp["kl_cutpoints"], latent))
            kl_max[i] = max(kl_max[i], grade)
            img = [
                round(float(v * (latent - 1.2) + rng.standard_normal()), 4)
                for v in tp["kl_img_weights"]
            ]
            rows.append((i, side, grade, img))
    # VAS / OKS visits by radiographic OA (highest reference KL >= 2)
    oa = (kl_max >= 2).astype(float)
    visits: dict[str, np.ndarray] = {}
    last = np.zeros(n, dtype=int)  # number of visits attended (monotone drop-out)
    u = rng.random(n)
    for m in tp["visits_months"]:
        last += u < tp["visit_retention"][str(m)]
    for score, lo_, hi_, digits in (("vas", 0.0, 10.0, 1), ("oks", 0.0, 48.0, 0)):
        p = tp["lmm"][score]
        b = p["patient_sd"] * rng.standard_normal(n)
        for k, m in enumerate(tp["visits_months"]):
            yrs = m / 12.0
            y = (
                p["intercept"]
                + p["years"] * yrs
                + p["oa"] * oa
                + p["years:oa"] * yrs * oa
                + b
                + p["residual_sd"] * rng.standard_normal(n)
            )
            y = np.clip(np.round(y, digits), lo_, hi_)
            visits[f"{score}_m{m}"] = np.where(last > k, y, np.nan)
    dob = pd.Timestamp("2024-06-30") - pd.to_timedelta(
        age * 365.25 + rng.integers(0, 300, n), unit="D"
    )
    order = rng.permutation(n)
    rank = np.empty(n, dtype=int)
    rank[order] = np.arange(n)
    pid = np.array([f"MSK{rank[i] + 1:05d}" for i in range(n)])
    names = [f"{_FAMILY[rng.integers(10)]} {_GIVEN[rng.integers(10)]}{k}" for k in range(n)]
    mrn = [f"MRN{8100000 + 17 * k}" for k in range(n)]
    dob_s = pd.Series(dob).dt.strftime("%Y-%m-%d").to_numpy()
    # competing death and treatment: drawn after every other draw (the rest is as in version 1)
    by_loss = ~fracture & (loss < admin)
    dp = tp["death"]
    share = 1.0 / (1.0 + np.exp(-(dp["logit_share"] + dp["logit_share_per_year"] * (age - 63))))
    died = by_loss & (rng.random(n) < share)
    p_treat = np.select(
        [stage == "osteopenia", stage == "osteoporosis"],
        [tp["treatment_probability"]["osteopenia"], tp["treatment_probability"]["osteoporosis"]],
        tp["treatment_probability"]["normal"],
    )
    treated = rng.random(n) < p_treat
    recs = []
    for i, side, grade, img in rows:
        rec = {
            "knee_id": f"{pid[i]}-{side[0].upper()}",
            "patient_id": pid[i],
            "patient_name": names[i],
            "medical_record_number": mrn[i],
            "date_of_birth": dob_s[i],
            "site": site_a[i],
            "cohort": cohort_a[i],
            "knee_side": side,
            "age": int(age[i]),
            "sex": "F" if female[i] else "M",
            "bmi_kg_m2": bmi[i],
            "ctx_ng_ml": ctx[i],
            "p1np_ng_ml": p1np[i],
            "calcium_mmol_l": calcium[i],
            "phosphorus_mmol_l": phos[i],
        }
        for k in range(4):
            rec[f"op_img_{k + 1}"] = op_img[i, k]
        for k in range(4):
            rec[f"kl_img_{k + 1}"] = img[k]
        # no encoder was trained: the features are drawn from the truth (see the module docstring)
        rec["op_encoder_training"] = "false"
        rec["kl_encoder_training"] = "false"
        rec["dxa_t_score"] = t_score[i]
        rec["kl_grade"] = grade
        rec["fracture_followup_months"] = follow[i]
        rec["new_fragility_fracture"] = "true" if fracture[i] else "false"
        rec["death_without_fracture"] = "true" if died[i] else "false"
        rec["osteoporosis_treatment"] = "true" if treated[i] else "false"
        for key, vals in visits.items():
            rec[key] = vals[i]
        rec["exclusion_reason"] = reason_a[i]
        recs.append((rank[i], side, rec))
    recs.sort(key=lambda r: (r[0], r[1]))
    clinical = pd.DataFrame([r[2] for r in recs])
    for col in [c for c in clinical.columns if c.startswith("oks_m")]:
        clinical[col] = clinical[col].astype("Int64")
    clinical["kl_grade"] = clinical["kl_grade"].astype("Int64")
    # excluded patients lack what their exclusion reason says is missing
    ex = clinical["exclusion_reason"]
    clinical.loc[ex == "missing_dxa", "dxa_t_score"] = np.nan
    img_cols = [f"op_img_{k}" for k in range(1, 5)] + [f"kl_img_{k}" for k in range(1, 5)]
    clinical.loc[ex == "insufficient_image_quality", img_cols] = np.nan
    clinical.loc[ex != "none", [c for c in visits]] = np.nan
    return SyntheticCohort(clinical=clinical, truth={**tp, "seed": seed})
