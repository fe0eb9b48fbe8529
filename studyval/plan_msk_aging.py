"""Analysis-plan schema of the msk-aging protocol (study type ``multimodal_staging``).

The plan (``reports/msk-aging/plan.yml``) pre-specifies everything the
analysis would otherwise choose from the data: the staging cut-offs of the
DXA T-score, the classes and their order, the features of each modality, the
fusion models with their fixed hyper-parameters and the small tuning grid, the
nested cross-validation design, the SHAP background, the fracture and
functional-score analyses and the sample-size planning values. It is strict
(unknown keys are errors) and frozen, like :class:`studyval.plan.PredictionModelPlan`.
``endpoints[].analyses`` name the steps of the multimodal-staging study type
(:mod:`studyval.steps.multimodal_staging`), checked when the plan is loaded.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from studyval.dictionary import DataDictionary
from studyval.errors import InputValidationError, Violation
from studyval.plan import Endpoint, NamedModels, Registry, _Strict

__all__ = ["MskAgingPlan"]


class OsteoporosisStaging(_Strict):
    """Osteoporosis stage from the DXA T-score (reference standard)."""

    t_score: str
    classes: list[str] = Field(description="Stage labels, mildest first")
    normal_min: float = Field(description="T >= normal_min is normal")
    osteoporosis_max: float = Field(description="T <= osteoporosis_max is osteoporosis")
    source: str

    @model_validator(mode="after")
    def _order(self) -> OsteoporosisStaging:
        if self.osteoporosis_max >= self.normal_min:
            raise ValueError("osteoporosis_max must be below normal_min")
        if len(self.classes) != 3 or len(set(self.classes)) != 3:
            raise ValueError(
                "classes must be three distinct labels (normal, osteopenia, osteoporosis)"
            )
        return self


class KLGrading(_Strict):
    """Kellgren-Lawrence grade per knee (reference reader)."""

    grade: str
    classes: list[int]
    kappa_weights: list[Literal["linear", "quadratic"]]
    oa_min_grade: int = Field(description="Radiographic OA: highest KL grade of a patient >= this")
    n_bootstrap: int = Field(
        ge=100, description="Patient-level bootstrap resamples (knee-level CIs)"
    )


class Modalities(_Strict):
    """Features of each modality; SHAP attributions are summed within a modality."""

    image_op: list[str]
    image_kl: list[str]
    clinical: list[str] = Field(description="sex enters as female = 1 (derived)")
    laboratory: list[str]


class FusionModel(_Strict):
    """One fusion classifier, fitted once per condition."""

    name: str
    role: Literal["primary", "comparator"]
    kind: Literal["xgboost", "svm"]
    fixed: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]]
    description: str = ""


class CrossValidation(_Strict):
    """Nested, patient-grouped cross-validation on the development cohort."""

    development_cohort: str
    external_cohort: str
    outer_folds: int = Field(ge=2)
    inner_folds: int = Field(ge=2)
    tuning_metric: Literal["macro_auc"]


class ShapSpec(_Strict):
    background_size: int = Field(
        ge=5, description="SVM group-Shapley background rows (development cohort)"
    )
    max_cases: int = Field(
        ge=10, description="Cases explained per set: a seeded sample (all if fewer)"
    )
    sets: list[Literal["internal", "external"]]


class FractureSpec(_Strict):
    time: str
    event: str
    time_unit: Literal["months"]
    times: list[float]
    definition: str = ""


class LongitudinalSpec(_Strict):
    outcomes: dict[str, dict[str, int]] = Field(description="outcome -> {column: visit month}")
    labels: dict[str, str]
    visits: list[int]
    time_scale: Literal["years"]
    group_definition: str


class AucPrecisionSampleSize(_Strict):
    method: Literal["auc_precision"]
    registered_text: str
    registered_development: int = Field(gt=0)
    registered_external: int = Field(gt=0)
    auc: float = Field(gt=0.5, lt=1)
    half_width: float = Field(gt=0, le=0.5)
    prevalence: dict[str, float]
    assumptions_source: str


class MskAgingPlan(NamedModels, _Strict):
    """Analysis plan of the msk-aging protocol (TRIPOD+AI)."""

    slug: str
    plan_version: str
    dictionary: str
    registry: Registry
    intended_use: str = ""
    eligibility: dict[str, int]
    osteoporosis: OsteoporosisStaging
    kl: KLGrading
    modalities: Modalities
    models: list[FusionModel]
    cv: CrossValidation
    shap: ShapSpec
    fracture: FractureSpec
    longitudinal: LongitudinalSpec
    endpoints: list[Endpoint]
    sample_size: AucPrecisionSampleSize
    alpha: float = 0.05
    seed: int

    @model_validator(mode="after")
    def _cross(self) -> MskAgingPlan:
        primaries = [m for m in self.models if m.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(f"exactly one model must have role primary, found {len(primaries)}")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be distinct")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if set(self.sample_size.prevalence) != set(self.osteoporosis.classes):
            raise ValueError("sample_size.prevalence must give every osteoporosis class")
        for outcome, cols in self.longitudinal.outcomes.items():
            bad = sorted(set(cols.values()) - set(self.longitudinal.visits))
            if bad:
                raise ValueError(
                    f"longitudinal.outcomes.{outcome}: months {bad} are not plan visits"
                )
        return self

    def check_against(self, dictionary: DataDictionary, source: str) -> None:
        """Every column the plan names must exist in ``dictionary``; levels must match."""
        problems: list[Violation] = []

        def need(path: str, column: str) -> None:
            if column not in dictionary:
                problems.append(
                    Violation(
                        source, path, None, f"{dictionary.name} dictionary has no variable", column
                    )
                )

        need("osteoporosis.t_score", self.osteoporosis.t_score)
        need("kl.grade", self.kl.grade)
        for key in ("image_op", "image_kl", "clinical", "laboratory"):
            for j, col in enumerate(getattr(self.modalities, key)):
                need(f"modalities.{key}[{j}]", col)
        need("fracture.time", self.fracture.time)
        need("fracture.event", self.fracture.event)
        for outcome, cols in self.longitudinal.outcomes.items():
            for col in cols:
                need(f"longitudinal.outcomes.{outcome}", col)
        if "cohort" in dictionary:
            levels = dictionary["cohort"].levels
            for key in ("development_cohort", "external_cohort"):
                value = getattr(self.cv, key)
                if levels and value not in levels:
                    problems.append(
                        Violation(
                            source,
                            f"cv.{key}",
                            None,
                            f"not a level of cohort ({', '.join(levels)})",
                            value,
                        )
                    )
        if self.kl.grade in dictionary:
            var = dictionary[self.kl.grade]
            lo, hi = var.minimum, var.maximum
            if (
                lo is not None
                and hi is not None
                and self.kl.classes != list(range(int(lo), int(hi) + 1))
            ):
                problems.append(
                    Violation(
                        source,
                        "kl.classes",
                        None,
                        f"must be every grade {lo}..{hi} of {self.kl.grade}",
                        str(self.kl.classes),
                    )
                )
        InputValidationError.collect(problems)
