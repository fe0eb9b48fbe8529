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

import itertools
from typing import Any, Literal

from pydantic import Field, model_validator

from studyval.dictionary import DataDictionary
from studyval.errors import InputValidationError, StudyvalError, Violation
from studyval.plan import Endpoint, NamedModels, Registry, _Strict

__all__ = ["EncoderTrainingOverlapError", "MskAgingPlan"]


class EncoderTrainingOverlapError(StudyvalError):
    """Patients the image encoder was trained or fine-tuned on are among the evaluated patients."""


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


class EmbeddingSource(_Strict):
    """Where one modality's CNN image features come from (TRIPOD+AI item 9; reviewer: leakage).

    If the encoder was trained or fine-tuned on patients who are also
    evaluated here (with the same labels), the cross-validated and external
    AUCs are optimistic. ``training_flag`` names the boolean column that marks
    the patients the encoder was trained or fine-tuned on; a run refuses
    (:class:`EncoderTrainingOverlapError`) when any included patient is
    marked. Without it, the report states that the overlap could not be
    checked.
    """

    features: Literal["image_op", "image_kl"]
    encoder: str = Field(description="Encoder architecture, layer and version, in words")
    weights_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="SHA-256 of the encoder's weights file (null: not recorded)",
    )
    training_data: str = Field(description="What the encoder was trained / fine-tuned on, in words")
    training_flag: str | None = Field(
        default=None,
        description="Boolean column: the patient was in the encoder's training or fine-tuning set",
    )


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
    n_bootstrap: int = Field(
        ge=100,
        description="Percentile bootstrap resamples of the explained cases (patients for knees) "
        "for the modality shares' intervals",
    )


class FractureSpec(_Strict):
    """New fragility fractures: follow-up, event and (optionally) the competing event.

    ``competing_event`` names the boolean column of death before any fracture;
    with it the steps ``cumulative_incidence`` (Aalen-Johansen, Gray's test)
    and ``competing_regression`` (cause-specific Cox and Fine-Gray, unadjusted
    and adjusted for ``adjust_for``) treat deaths as a competing event instead
    of censoring them.
    """

    time: str
    event: str
    time_unit: Literal["months"]
    times: list[float]
    definition: str = ""
    competing_event: str | None = Field(
        default=None, description="Boolean column: follow-up ended by death without a fracture"
    )
    adjust_for: list[str] = Field(
        default_factory=list,
        description="Adjustment covariates of competing_regression (boolean or numeric columns; "
        "sex enters as female = 1)",
    )


class LongitudinalSpec(_Strict):
    outcomes: dict[str, dict[str, int]] = Field(description="outcome -> {column: visit month}")
    labels: dict[str, str]
    visits: list[int]
    time_scale: Literal["years"]
    group_definition: str
    delta_grid: dict[str, list[float]] = Field(
        default_factory=dict,
        description="outcome -> shifts of the OA group's missing last visit (score units) for "
        "the MNAR delta-adjustment (step delta_adjustment)",
    )


class OrdinalSpec(_Strict):
    """Discrimination that respects the order of the classes (step ``ordinal_discrimination``).

    ``op_cuts`` and ``kl_cuts`` name the first class of the positive side of
    each cumulative split ("class >= cut" vs "class < cut"); the cumulative
    score is the model's probability of a class >= cut and the ordinal score
    its expected class, so only models whose scores are probabilities
    (XGBoost) are analysed.
    """

    op_cuts: list[str] = Field(min_length=1)
    kl_cuts: list[int] = Field(min_length=1)
    n_bootstrap: int = Field(
        ge=100, description="Percentile bootstrap resamples of the ordinal c-indices"
    )


class CalibrationSpec(_Strict):
    """Per-class (one-vs-rest) calibration and the decision curve of the probabilistic models.

    Steps ``calibration`` and ``decision_curve``. The SVM's decision values
    are not probabilities (no Platt scaling, plan choice): it is not analysed.
    """

    n_bootstrap: int = Field(
        ge=100,
        description="Patient-level percentile bootstrap resamples of the knee-level (KL) "
        "calibration; patient-level (osteoporosis) intercept and slope have Wald intervals",
    )
    dca_class: str = Field(description="Osteoporosis class whose probability is the decision")
    multinomial_df: int | None = Field(
        default=None,
        ge=1,
        le=6,
        description="Degrees of freedom of the natural spline of each log-ratio in the flexible "
        "multinomial recalibration (step multinomial_calibration; 1 = linear)",
    )
    multinomial_df_source: str | None = Field(
        default=None,
        description="How multinomial_df was chosen (pre-specified or data-driven, and why); "
        "required with multinomial_df and shown in the report",
    )
    threshold_from: float = Field(gt=0, lt=1)
    threshold_to: float = Field(gt=0, lt=1)
    threshold_step: float = Field(gt=0, lt=1)
    decision: str = Field(description="What is done when the probability reaches the threshold")


class MultinomialPlanningValues(_Strict):
    """Planning assumptions of one condition's multinomial model (Pate et al. 2023).

    ``proportions`` gives every class; ``cstatistic`` every pair of classes as
    ``"<k> vs <r>"`` with ``k`` before ``r`` in the plan's class order.
    """

    proportions: dict[str, float]
    cstatistic: dict[str, float]
    source: str = Field(description="Where each planning value comes from")


class MultinomialSampleSize(_Strict):
    """Development sample size of the multinomial staging models (step ``multinomial_sample_size``).

    The criteria of Pate, Riley, Collins et al. (2023) for a multinomial
    logistic regression: shrinkage of every pairwise submodel, optimism of the
    overall Nagelkerke R2 and precision of each class's overall risk
    (:func:`studyval.analysis.sample_size_multinomial.pate_multinomial`).
    Every value is a planning assumption.
    """

    parameters: int = Field(ge=1, description="Candidate predictor parameters per submodel")
    parameters_source: str
    r2_nagelkerke_overall: float = Field(gt=0, lt=1)
    r2_source: str
    op: MultinomialPlanningValues
    kl: MultinomialPlanningValues


class AucPrecisionSampleSize(_Strict):
    method: Literal["auc_precision"]
    registered_text: str
    registered_development: int = Field(gt=0)
    registered_external: int = Field(gt=0)
    auc: float = Field(gt=0.5, lt=1)
    half_width: float = Field(gt=0, le=0.5)
    prevalence: dict[str, float]
    assumptions_source: str
    multinomial: MultinomialSampleSize | None = None


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
    embeddings: list[EmbeddingSource] = Field(default_factory=list)
    ordinal: OrdinalSpec | None = None
    calibration: CalibrationSpec | None = None
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
        groups = [e.features for e in self.embeddings]
        if len(set(groups)) != len(groups):
            raise ValueError(f"embeddings: each feature group once, got {groups}")
        steps = {name for ep in self.endpoints for name in ep.analyses}
        competing = sorted(steps & {"cumulative_incidence", "competing_regression"})
        if competing and self.fracture.competing_event is None:
            raise ValueError(
                f"fracture.competing_event is required by the analyses {', '.join(competing)} "
                "(the boolean column of death without a fracture)"
            )
        if "ordinal_discrimination" in steps:
            if self.ordinal is None:
                raise ValueError("ordinal is required by the analysis ordinal_discrimination")
            for key, cuts, classes in (
                ("op_cuts", self.ordinal.op_cuts, self.osteoporosis.classes),
                ("kl_cuts", self.ordinal.kl_cuts, self.kl.classes),
            ):
                bad = [c for c in cuts if c not in classes[1:]]
                if bad:
                    raise ValueError(
                        f"ordinal.{key}: {bad} are not classes above the mildest ({classes})"
                    )
        if {"calibration", "decision_curve"} & steps:
            if self.calibration is None:
                raise ValueError(
                    "calibration is required by the analyses calibration and decision_curve"
                )
            if self.calibration.dca_class not in self.osteoporosis.classes:
                raise ValueError(
                    f"calibration.dca_class {self.calibration.dca_class!r} is not an osteoporosis "
                    f"class ({self.osteoporosis.classes})"
                )
            if self.calibration.threshold_from >= self.calibration.threshold_to:
                raise ValueError("calibration.threshold_from must be below threshold_to")
        if "multinomial_calibration" in steps and (
            self.calibration is None or self.calibration.multinomial_df is None
        ):
            raise ValueError(
                "calibration.multinomial_df is required by the analysis multinomial_calibration"
            )
        if (
            self.calibration is not None
            and self.calibration.multinomial_df is not None
            and not (self.calibration.multinomial_df_source or "").strip()
        ):
            raise ValueError(
                "calibration.multinomial_df_source is required with calibration.multinomial_df "
                "(say whether the degrees of freedom were pre-specified or data-driven)"
            )
        if "multinomial_sample_size" in steps:
            self._check_multinomial_sample_size()
        if "delta_adjustment" in steps and set(self.longitudinal.delta_grid) != set(
            self.longitudinal.outcomes
        ):
            raise ValueError(
                "longitudinal.delta_grid must give the shifts of every outcome "
                f"({sorted(self.longitudinal.outcomes)}) for the analysis delta_adjustment"
            )
        if "competing_regression" in steps and not self.fracture.adjust_for:
            raise ValueError(
                "fracture.adjust_for is required by competing_regression (the adjusted model's "
                "covariates, e.g. the treatment started after the index DXA, age and sex)"
            )
        for outcome, cols in self.longitudinal.outcomes.items():
            bad = sorted(set(cols.values()) - set(self.longitudinal.visits))
            if bad:
                raise ValueError(
                    f"longitudinal.outcomes.{outcome}: months {bad} are not plan visits"
                )
        return self

    def _check_multinomial_sample_size(self) -> None:
        """Every class and every pair of classes of both conditions has its planning value."""
        spec = self.sample_size.multinomial
        if spec is None:
            raise ValueError(
                "sample_size.multinomial is required by the analysis multinomial_sample_size"
            )
        for key, classes in (
            ("op", list(self.osteoporosis.classes)),
            ("kl", [str(c) for c in self.kl.classes]),
        ):
            values = getattr(spec, key)
            if list(values.proportions) != classes:
                raise ValueError(
                    f"sample_size.multinomial.{key}.proportions must give the classes {classes} "
                    f"in this order, got {list(values.proportions)}"
                )
            if abs(sum(values.proportions.values()) - 1.0) > 1e-9:
                raise ValueError(f"sample_size.multinomial.{key}.proportions must sum to 1")
            pairs = [f"{a} vs {b}" for a, b in itertools.combinations(classes, 2)]
            if list(values.cstatistic) != pairs:
                raise ValueError(
                    f"sample_size.multinomial.{key}.cstatistic must give the pairs {pairs} in "
                    f"this order, got {list(values.cstatistic)}"
                )

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
        for j, emb in enumerate(self.embeddings):
            if emb.training_flag is not None:
                need(f"embeddings[{j}].training_flag", emb.training_flag)
        if self.fracture.competing_event is not None:
            need("fracture.competing_event", self.fracture.competing_event)
        for j, col in enumerate(self.fracture.adjust_for):
            need(f"fracture.adjust_for[{j}]", col)
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
