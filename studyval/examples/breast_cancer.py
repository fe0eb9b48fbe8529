"""Worked diagnostic-accuracy study on public data: Wisconsin Diagnostic Breast Cancer (WDBC).

The data ship inside scikit-learn (:func:`sklearn.datasets.load_breast_cancer`,
a copy of the UCI Machine Learning Repository's *Breast Cancer Wisconsin
(Diagnostic)* data set, Wolberg, Street & Mangasarian 1995,
doi:10.24432/C5DW2B): 569 fine-needle aspirates of breast masses from the
University of Wisconsin Hospitals, Madison, each with 30 features of the cell
nuclei in the digitised image and the diagnosis (212 malignant, 357 benign).

What this module does is fixed in the plan (``breast-cancer-diagnostic/plan.yml``)
before any test-set number is seen:

* the reference standard is the data set's diagnosis; scikit-learn codes
  malignant as ``target == 0`` and benign as ``1``: recoded here explicitly
  (:data:`TARGET_CODES`), positive class malignant;
* one case per patient (each aspirate is its own case and patient);
* a seeded stratified split by case: within each class, a permutation by
  ``numpy.random.default_rng(SPLIT_SEED)`` sends the first ``round(n / 3)``
  cases to the internal test set and the rest to development
  (:func:`stratified_split`);
* two models fitted on the development split only (:func:`fit_models`): the
  primary, a maximum-likelihood logistic regression on three named features
  (:data:`PRIMARY_FEATURES`), and the comparator, an L2-penalised logistic
  regression (C = :data:`RIDGE_C`, fixed, not tuned) on all 30 features
  standardised with the development split's means and SDs; both with the
  deterministic ``newton-cholesky`` solver to tolerance 1e-10;
* every case (development too, so the flow shows the split) is scored by both
  models into the prediction-table format (``data_dictionary/predictions.yml``):
  ``model_version`` is the SHA-256 of the fitted coefficients serialised as JSON
  (:func:`coefficients_sha256`), ``input_sha256`` the SHA-256 of the feature
  values the model read.

Running it writes the same bytes every time (same scikit-learn data, same seed).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "FOLDER",
    "MODELS",
    "PRIMARY_FEATURES",
    "RIDGE_C",
    "SITE",
    "SLUG",
    "SOURCE",
    "SPLIT_SEED",
    "TARGET_CODES",
    "FittedModel",
    "coefficients_sha256",
    "fit_models",
    "load_cases",
    "stratified_split",
    "write_inputs",
]

SLUG = "breast-cancer-diagnostic"
FOLDER = Path(__file__).parent / SLUG
SOURCE = (
    "Breast Cancer Wisconsin (Diagnostic), Wolberg, Street & Mangasarian 1995, UCI Machine "
    "Learning Repository (archive.ics.uci.edu/dataset/17, licence CC BY 4.0), as shipped in "
    "scikit-learn (sklearn.datasets.load_breast_cancer, BSD-3-Clause)"
)
#: scikit-learn's target codes -> the diagnosis (``load_breast_cancer().target_names``).
TARGET_CODES = {0: "malignant", 1: "benign"}
#: The centre every aspirate comes from (the data set is single-centre).
SITE = "UW-Madison"
#: Seed of the stratified development / internal-test split.
SPLIT_SEED = 20261207
#: Primary model: one feature each of nuclear size, shape and chromatin texture.
PRIMARY_FEATURES = ("worst_radius", "worst_concave_points", "worst_texture")
#: Inverse penalty of the comparator: strong shrinkage for 30 collinear features (the mean, SE
#: and worst value of ten measurements) and about 141 development events (under 5 per feature).
RIDGE_C = 0.1
#: Model names as the plan names them.
MODELS = {"primary": "logistic-3", "comparator": "ridge-30"}


def _column(name: str) -> str:
    """scikit-learn's feature name as a column name (``mean concave points`` -> ``mean_concave_points``).

    The standard errors (``radius error``) become ``radius_se``.
    """
    return "_".join(str(name).replace(" error", " se").split())


def load_cases() -> pd.DataFrame:
    """The 569 cases: ``case_id, patient_id, site, diagnosis, exclusion_reason`` and 30 features.

    ``diagnosis`` is recoded from scikit-learn's ``target`` with
    :data:`TARGET_CODES` (0 = malignant), checked against its ``target_names``.
    """
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    if [str(n) for n in data.target_names] != [TARGET_CODES[0], TARGET_CODES[1]]:
        raise ValueError(
            f"scikit-learn's target_names are {list(data.target_names)}, not "
            f"{[TARGET_CODES[0], TARGET_CODES[1]]}: the recoding of the diagnosis would be wrong"
        )
    n = len(data.target)
    ids = [f"{i + 1:04d}" for i in range(n)]
    frame = pd.DataFrame(
        {
            "case_id": [f"WDBC-{i}" for i in ids],
            "patient_id": [f"P{i}" for i in ids],
            "site": SITE,
            "diagnosis": [TARGET_CODES[int(t)] for t in data.target],
            "exclusion_reason": "none",
        }
    )
    features = pd.DataFrame(data.data, columns=[_column(c) for c in data.feature_names])
    return pd.concat([frame, features], axis=1)


def stratified_split(diagnosis: pd.Series, *, seed: int = SPLIT_SEED) -> pd.Series:
    """``development`` or ``internal`` for each case: one third of each class to the test set.

    Within each class (in the order malignant, benign) the case positions are
    permuted by one ``numpy.random.default_rng(seed)`` stream; the first
    ``round(n_class / 3)`` go to the internal test set.
    """
    rng = np.random.default_rng(seed)
    split = pd.Series("development", index=diagnosis.index, dtype=object)
    for cls in (TARGET_CODES[0], TARGET_CODES[1]):
        idx = diagnosis.index[diagnosis == cls].to_numpy()
        order = rng.permutation(len(idx))
        split.loc[idx[order[: round(len(idx) / 3)]]] = "internal"
    return split


@dataclass(frozen=True)
class FittedModel:
    """A fitted logistic model: features, centring/scaling, intercept and coefficients."""

    name: str
    features: tuple[str, ...]
    center: tuple[float, ...]
    scale: tuple[float, ...]
    intercept: float
    coef: tuple[float, ...]
    penalty: str

    def linear_predictor(self, frame: pd.DataFrame) -> np.ndarray:
        """Intercept + sum of coef * (x - center) / scale."""
        x = frame[list(self.features)].to_numpy(float)
        z = (x - np.asarray(self.center)) / np.asarray(self.scale)
        return self.intercept + z @ np.asarray(self.coef)

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted probability of malignancy, ``1 / (1 + exp(-lp))``."""
        return 1.0 / (1.0 + np.exp(-self.linear_predictor(frame)))

    def serialised(self) -> str:
        """The fitted model as canonical JSON (floats as Python's shortest round-trip text)."""
        return json.dumps(
            {
                "name": self.name,
                "features": list(self.features),
                "center": [repr(float(v)) for v in self.center],
                "scale": [repr(float(v)) for v in self.scale],
                "intercept": repr(float(self.intercept)),
                "coef": [repr(float(v)) for v in self.coef],
                "penalty": self.penalty,
            },
            sort_keys=True,
        )


def coefficients_sha256(model: FittedModel) -> str:
    """``sha256:<hex>`` of :meth:`FittedModel.serialised` (the prediction table's ``model_version``)."""
    return "sha256:" + hashlib.sha256(model.serialised().encode("utf-8")).hexdigest()


def fit_models(development: pd.DataFrame, features: tuple[str, ...]) -> dict[str, FittedModel]:
    """Fit the plan's two models on the development cases only.

    * ``logistic-3``: maximum-likelihood logistic regression on
      :data:`PRIMARY_FEATURES` (no penalty, raw units);
    * ``ridge-30``: L2-penalised logistic regression, C = :data:`RIDGE_C`, on all 30
      features standardised with the development means and population SDs.

    Both with ``solver="newton-cholesky"``, ``tol=1e-10`` (deterministic).
    """
    from sklearn.linear_model import LogisticRegression

    y = (development["diagnosis"] == TARGET_CODES[0]).to_numpy(int)
    out: dict[str, FittedModel] = {}
    x = development[list(PRIMARY_FEATURES)].to_numpy(float)
    lr = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-10, max_iter=200)
    lr.fit(x, y)
    out[MODELS["primary"]] = FittedModel(
        MODELS["primary"], PRIMARY_FEATURES, (0.0,) * 3, (1.0,) * 3,
        float(lr.intercept_[0]), tuple(float(c) for c in lr.coef_[0]), "none",
    )
    x = development[list(features)].to_numpy(float)
    center, scale = x.mean(axis=0), x.std(axis=0)
    ridge = LogisticRegression(C=RIDGE_C, solver="newton-cholesky", tol=1e-10, max_iter=200)
    ridge.fit((x - center) / scale, y)
    out[MODELS["comparator"]] = FittedModel(
        MODELS["comparator"], features, tuple(float(v) for v in center),
        tuple(float(v) for v in scale), float(ridge.intercept_[0]),
        tuple(float(c) for c in ridge.coef_[0]), f"l2, C = {RIDGE_C:g}",
    )
    return out


def _input_sha256(frame: pd.DataFrame, features: tuple[str, ...]) -> list[str]:
    """SHA-256 of each case's feature values as the model read them (JSON list of floats)."""
    values = frame[list(features)].to_numpy(float)
    return [
        hashlib.sha256(json.dumps([repr(float(v)) for v in row]).encode("utf-8")).hexdigest()
        for row in values
    ]


def predictions_table(cases: pd.DataFrame, split: pd.Series, models: dict[str, FittedModel]) -> pd.DataFrame:
    """Every case scored by every model, in the prediction-table format."""
    parts = []
    for name, model in models.items():
        parts.append(
            pd.DataFrame(
                {
                    "case_id": cases["case_id"],
                    "patient_id": cases["patient_id"],
                    "site": cases["site"],
                    "model_name": name,
                    "model_version": coefficients_sha256(model),
                    "input_sha256": _input_sha256(cases, model.features),
                    "split": split.to_numpy(),
                    "positive_class": TARGET_CODES[0],
                    "score": model.predict(cases),
                    "status": "ok",
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def write_inputs(folder: Path) -> dict[str, Path]:
    """Write ``clinical.csv`` and ``predictions.csv`` of the worked study into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cases = load_cases()
    split = stratified_split(cases["diagnosis"])
    features = tuple(str(c) for c in cases.columns[5:])
    models = fit_models(cases[(split == "development").to_numpy()], features)
    preds = predictions_table(cases, split, models)
    out = {"clinical": folder / "clinical.csv", "predictions": folder / "predictions.csv"}
    cases.to_csv(out["clinical"], index=False, lineterminator="\n")
    preds.to_csv(out["predictions"], index=False, lineterminator="\n")
    return out
