"""Analysis plans: the registered protocol as a machine-checked YAML file.

Each protocol's plan lives beside its report (``reports/<slug>/plan.yml``). It
names the registry entry, the outcome and its positive class, the models, the
pre-specified thresholds, the endpoints (each mapped to an analysis), the
subgroups and the sample-size assumptions with the registered numbers. The
plan is validated on load: unknown keys, a misspelt analysis name, a threshold
outside [0, 1] or a column the data dictionary lacks are errors listing every
problem, with the YAML path of each.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from studyval import yaml_text
from studyval.dictionary import DataDictionary, load_dictionary
from studyval.errors import InputValidationError, PlanError, StudyvalError, Violation
from studyval.steps.registry import requested_steps
from studyval.study_cohort import CohortSpec, spec_columns

__all__ = ["AnalysisPlan", "PredictionModelPlan", "load_plan", "plan_dictionary", "plan_path"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NamedModels:
    """``primary_model`` and ``model_names`` for a plan whose ``models`` have a name and a role."""

    @property
    def primary_model(self) -> str:
        """Name of the model with role primary."""
        return next(m.name for m in self.models if m.role == "primary")  # type: ignore[attr-defined]

    @property
    def model_names(self) -> list[str]:
        """Model names in plan order."""
        return [m.name for m in self.models]  # type: ignore[attr-defined]


class Registry(_Strict):
    """Registry entry of the protocol."""

    id: str = Field(description="Registry identifier, e.g. NCT07306858")
    acronym: str | None = None
    title: str
    brief_title: str | None = None
    sponsor: str | None = None
    version_date: str = Field(description="Date of the registry version the plan follows")
    study_type: Literal[
        "diagnostic_accuracy", "prediction_model", "multimodal_staging", "service_evaluation"
    ]
    checklist: Literal["STARD-2015", "TRIPOD+AI-2024"]
    design: str = Field(description="Design in words (retrospective, multicentre...)")
    url: str | None = None


class Outcome(_Strict):
    """The reference-standard outcome and its positive class."""

    variable: str
    positive: str
    negative: str
    reference_standard: str


class ModelSpec(_Strict):
    """A model whose predictions the plan analyses."""

    name: str
    role: Literal["primary", "comparator"]
    description: str = ""


class ThresholdSpec(_Strict):
    """A pre-specified decision threshold on the predicted probability."""

    name: str
    value: float
    rule: Literal["score >= threshold is positive"] = "score >= threshold is positive"
    source: str = Field(description="Where the threshold was fixed (protocol, SAP version...)")

    @field_validator("value")
    @classmethod
    def _in_unit_interval(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, got {v}")
        return v


class AnalysisSets(_Strict):
    """Which split is the primary evaluation set, and which are secondary."""

    primary: Literal["internal", "external"]
    secondary: list[Literal["internal", "external"]] = []
    unit: str = Field(description="Unit of the primary analysis, in words")
    primary_cases: Literal["index_vertebra", "all_cases"]
    external_sites: list[str]
    development_sites: list[str]


class Endpoint(_Strict):
    """A registered outcome measure mapped to the analysis steps that answer it.

    One type for every study. ``analyses`` names registered analysis steps
    (:mod:`studyval.steps`); a name the study's registry lacks is an error at
    plan load, with its YAML path (``endpoints[2].analyses[0]``) and the
    closest registered name. ``set`` says which analysis set answers the
    endpoint where the study has more than one; ``section`` names the report
    section that shows it.
    """

    id: str
    kind: Literal["primary", "secondary", "supplementary"]
    measure: str
    registered_text: str = ""
    analyses: list[str] = []
    set: Literal["internal", "external", "both"] | None = None
    section: str | None = None


class Subgroup(_Strict):
    """A subgroup variable for variability analyses (STARD 17).

    ``derived`` variables are computed by the protocol module from dictionary
    variables, following ``definition`` (shown in the report). ``unit`` says
    whether levels are defined per patient (index vertebra) or per vertebra
    (then every vertebra counts and intervals are patient-clustered).
    ``set: pooled`` analyses the internal and external sets together (used
    for site).
    """

    variable: str
    status: Literal["pre-specified", "exploratory"]
    derived: bool = False
    definition: str = ""
    unit: Literal["patient", "vertebra"] = "patient"
    set: Literal["primary", "pooled"] = "primary"


class CalibrationSpec(_Strict):
    """Calibration of the predicted probabilities in the primary set."""

    n_resamples: int = Field(1000, ge=0)
    ci_method: Literal["bca", "percentile"] = "bca"


class DecisionCurveSpec(_Strict):
    """Decision curves over a range of threshold probabilities."""

    threshold_from: float = Field(0.05, gt=0, lt=1)
    threshold_to: float = Field(0.95, gt=0, lt=1)
    threshold_step: float = Field(0.01, gt=0, lt=1)
    compare: list[tuple[str, str]] = []
    n_resamples: int = Field(1000, ge=1)


class ClusteredSpec(_Strict):
    """Vertebra-level (all fractured vertebrae) analyses with patient-clustered intervals."""

    n_resamples: int = Field(2000, ge=1)


class SampleSize(_Strict):
    """Registered sample-size statement and the assumptions behind it."""

    method: Literal["buderer"]
    registered_text: str
    sensitivity: float | None = None
    specificity: float | None = None
    precision: float
    alpha: float = 0.05
    registered_positives: int
    registered_negatives: int
    registered_total: int

    @model_validator(mode="after")
    def _consistent(self) -> SampleSize:
        if self.registered_positives + self.registered_negatives != self.registered_total:
            raise ValueError("registered_positives + registered_negatives != registered_total")
        if self.sensitivity is None and self.specificity is None:
            raise ValueError("give sensitivity and/or specificity")
        return self


class PredictiveValuesSpec(_Strict):
    """Clinical prevalences at which PPV and NPV are reported (case-control designs).

    In a two-gate design the sample prevalence is fixed by the investigators, so
    predictive values are reported only at the prevalences declared here, each in
    (0, 1), with ``source`` saying where they come from (literature, registry, or a
    plan assumption to be confirmed).
    """

    prevalences: list[float] = Field(min_length=1)
    source: str = Field(min_length=1)

    @field_validator("prevalences")
    @classmethod
    def _in_unit_interval(cls, value: list[float]) -> list[float]:
        for p in value:
            if not 0.0 < p < 1.0:
                raise ValueError(f"each prevalence must be in (0, 1), got {p}")
        if len(set(value)) != len(value):
            raise ValueError(f"prevalences must be distinct, got {value}")
        return value


class AnalysisPlan(NamedModels, _Strict):
    """A protocol's analysis plan (``reports/<slug>/plan.yml``)."""

    slug: str
    plan_version: str
    dictionary: str
    registry: Registry
    outcome: Outcome
    models: list[ModelSpec]
    sets: AnalysisSets
    thresholds: list[ThresholdSpec]
    endpoints: list[Endpoint]
    subgroups: list[Subgroup] = []
    calibration: CalibrationSpec | None = None
    decision_curve: DecisionCurveSpec | None = None
    vertebra_level: ClusteredSpec | None = None
    predictive_values: PredictiveValuesSpec | None = Field(
        None, description="Clinical prevalences for PPV/NPV of a case-control design"
    )
    sample_size: SampleSize
    alpha: float = 0.05
    proportion_ci: Literal["wilson", "clopper-pearson"] = "wilson"
    auc_ci: Literal["wald", "logit"] = Field(
        "wald",
        description="Interval of the DeLong AUC (step auc): Wald, truncated to [0, 1], or logit-scale",
    )
    seed: int
    intended_use: str = ""
    index_test: str = ""
    cohort: CohortSpec | None = Field(
        None, description="Eligibility rules, derived variables, baseline table (YAML-only studies)"
    )

    @model_validator(mode="after")
    def _cross(self) -> AnalysisPlan:
        primaries = [m for m in self.models if m.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(f"exactly one model must have role primary, found {len(primaries)}")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be distinct")
        if not any(e.kind == "primary" for e in self.endpoints):
            raise ValueError("at least one endpoint must be primary")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        if self.decision_curve is not None:
            for a, b in self.decision_curve.compare:
                for name in (a, b):
                    if name not in names:
                        raise ValueError(
                            f"decision_curve.compare names {name!r}, which is not a plan model"
                        )
            if self.decision_curve.threshold_from >= self.decision_curve.threshold_to:
                raise ValueError("decision_curve.threshold_from must be below threshold_to")
        return self

    def check_against(self, dictionary: DataDictionary, source: str) -> None:
        """Check that every column the plan names exists in ``dictionary`` with a fitting role.

        Raises
        ------
        InputValidationError
            Listing every inconsistency with its YAML path.

        """
        problems: list[Violation] = []
        out = self.outcome
        if out.variable not in dictionary:
            problems.append(
                Violation(
                    source,
                    "outcome.variable",
                    None,
                    f"{dictionary.name} dictionary has no variable",
                    out.variable,
                )
            )
        else:
            var = dictionary[out.variable]
            for key, label in (("positive", out.positive), ("negative", out.negative)):
                if label not in var.levels:
                    problems.append(
                        Violation(
                            source,
                            f"outcome.{key}",
                            None,
                            f"not a level of {out.variable} ({', '.join(var.levels)})",
                            label,
                        )
                    )
        for i, sg in enumerate(self.subgroups):
            if not sg.derived and sg.variable not in dictionary:
                problems.append(
                    Violation(
                        source,
                        f"subgroups[{i}].variable",
                        None,
                        f"{dictionary.name} dictionary has no variable",
                        sg.variable,
                    )
                )
        if "site" in dictionary:
            levels = dictionary["site"].levels
            for key in ("external_sites", "development_sites"):
                for site in getattr(self.sets, key):
                    if levels and site not in levels:
                        problems.append(
                            Violation(
                                source,
                                f"sets.{key}",
                                None,
                                f"not a level of site ({', '.join(levels)})",
                                site,
                            )
                        )
        problems.extend(_cohort_column_problems(self.cohort, dictionary, source))
        InputValidationError.collect(problems)


def _cohort_column_problems(
    cohort: CohortSpec | None, dictionary: DataDictionary, source: str
) -> list[Violation]:
    """A column the plan's ``cohort`` section names that ``dictionary`` lacks."""
    if cohort is None:
        return []
    return [
        Violation(source, where, None, f"{dictionary.name} dictionary has no variable", col)
        for col, where in spec_columns(cohort).items()
        if col not in dictionary
    ]


# ----------------------------------------------------------------------------- prediction models


class TimeToEventOutcome(_Strict):
    """A time-to-event outcome, with competing events declared, and the evaluation horizon."""

    time: str = Field(description="Column with the follow-up time")
    time_unit: Literal["days", "months", "years"]
    event: str = Field(description="Column with the event code (0 = censored)")
    event_codes: dict[int, str] = Field(
        description="Every code and its meaning; 0 must be censored"
    )
    cause: int = Field(description="Code of the event of interest")
    competing: list[int] = []
    horizon: float = Field(gt=0, description="Evaluation horizon, in time_unit")
    horizon_label: str = Field(description='The horizon in words, e.g. "1 year"')
    definition: str = ""

    @model_validator(mode="after")
    def _codes(self) -> TimeToEventOutcome:
        if 0 not in self.event_codes:
            raise ValueError("event_codes must declare 0 (censored)")
        if self.cause not in self.event_codes or self.cause == 0:
            raise ValueError(f"cause {self.cause} is not a declared non-zero event code")
        for c in self.competing:
            if c not in self.event_codes or c in (0, self.cause):
                raise ValueError(
                    f"competing code {c} must be a declared code other than 0 and the cause"
                )
        return self


class ModelFormula(_Strict):
    """A prediction model the plan fits (e.g. a Cox model) or evaluates."""

    name: str
    role: Literal["primary", "comparator"]
    covariates: list[str]
    description: str = ""


class PredictionSets(_Strict):
    """Development and validation data: which sites, and how internal validation is done."""

    development_sites: list[str]
    external_sites: list[str] = []
    internal_validation: Literal["bootstrap", "split"] = "bootstrap"
    n_bootstrap: int = Field(200, ge=1)


class RileySampleSize(_Strict):
    """Riley et al. (2020) criteria and the registered number."""

    method: Literal["riley"]
    registered_text: str
    parameters: int = Field(gt=0)
    r2_cs: float | None = None
    r2_nagelkerke: float | None = None
    rate: float = Field(gt=0)
    timepoint: float = Field(gt=0)
    mean_follow_up: float = Field(gt=0)
    shrinkage: float = 0.9
    registered_total: int = Field(gt=0)
    assumptions_source: str = Field(
        description="Where the planning values come from (the registry states none)"
    )
    schoenfeld_hr: float | None = None
    schoenfeld_power: float = 0.8
    schoenfeld_proportion_exposed: float | None = None


_Num = StrictFloat  # an int is a number too; the value itself is kept as written
_Unit = Annotated[_Num, Field(gt=0, lt=1)]


class ValidationSampleSizeSpec(_Strict):
    """``extra.validation_sample_size``: Riley et al. (2021) planning values (binary outcome)."""

    prevalence: _Unit
    c_statistic: Annotated[_Num, Field(gt=0.5, lt=1)]
    lp: Literal["from_c_statistic"] | tuple[_Num, Annotated[_Num, Field(gt=0)]]
    oe: Annotated[_Num, Field(gt=0)]
    oe_ci_width: Annotated[_Num, Field(gt=0)]
    slope_ci_width: Annotated[_Num, Field(gt=0)]
    c_ci_width: _Unit
    assumptions_source: str = Field(min_length=1)


#: The keys a prediction-model plan's ``extra`` section may hold, each with its type (documented
#: where it is read: studyval.steps.prognostic, studyval.steps.competing_risks,
#: studyval.study_types.prognostic_model, the protocols). A key not listed is an error, so that a
#: misspelled setting never runs silently with its default.
PREDICTION_EXTRA: dict[str, Any] = {
    "apply_to_new_patients": Literal["shrunk", "unshrunk"],
    "calibration_groups": Annotated[StrictInt, Field(ge=2)],
    "calibration_slope_censor_at_horizon": StrictBool,
    "cif_times_days": list[Annotated[_Num, Field(gt=0)]],
    "decision_thresholds": tuple[_Unit, _Unit, Annotated[_Num, Field(gt=0)]],
    "exclusion_labels": dict[str, str],
    "km_ticks": list[Annotated[_Num, Field(ge=0)]],
    "linearity_knots": Annotated[StrictInt, Field(ge=3, le=6)],
    "linearity_predictors": Annotated[list[str], Field(min_length=1)],
    "meld_tolerance": Annotated[_Num, Field(ge=0)],
    "outcome_groups": tuple[str, str],
    "ph_alpha": _Unit,
    "population": str,
    "risk_group_labels": list[str],
    "risk_group_title": str,
    "risk_groups": list[_Unit],
    "sarcopenia_cutoffs": dict[str, _Num | str],
    "smi_tolerance": Annotated[_Num, Field(ge=0)],
    "term_labels": dict[str, str],
    "time_label": str,
    "validation_sample_size": ValidationSampleSizeSpec,
    "zph_transform": Literal["km", "rank", "identity", "log"],
}
_PREDICTION_EXTRA_TYPES = {k: TypeAdapter(t) for k, t in PREDICTION_EXTRA.items()}


def check_prediction_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """``extra`` as given, once every key is known and every value has its type.

    Raises ``ValueError`` naming ``extra.<key>`` (and the nested field) and the rule.
    """
    import difflib

    for key, value in extra.items():
        if key not in _PREDICTION_EXTRA_TYPES:
            close = difflib.get_close_matches(str(key), list(PREDICTION_EXTRA), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"extra.{key}: not a setting of a prediction-model plan{hint} (known: "
                f"{', '.join(sorted(PREDICTION_EXTRA))})"
            )
        try:
            _PREDICTION_EXTRA_TYPES[key].validate_python(value)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in (key, *err["loc"]))
            raise ValueError(f"extra.{where}: {err['msg']} (got {err['input']!r})") from None
    return extra


class PredictionModelPlan(NamedModels, _Strict):
    """Analysis plan of a prediction-model protocol (TRIPOD+AI)."""

    slug: str
    plan_version: str
    dictionary: str
    registry: Registry
    intended_use: str = ""
    outcome: TimeToEventOutcome
    models: list[ModelFormula]
    sets: PredictionSets
    endpoints: list[Endpoint]
    subgroups: list[Subgroup] = []
    sample_size: RileySampleSize
    alpha: float = 0.05
    seed: int
    extra: dict[str, Any] = Field(
        default_factory=dict, description="Protocol-specific settings, documented in the plan"
    )
    cohort: CohortSpec | None = Field(
        None, description="Eligibility rules, derived variables, baseline table (YAML-only studies)"
    )

    @field_validator("extra")
    @classmethod
    def _extra_known(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_prediction_extra(value)

    @model_validator(mode="after")
    def _cross(self) -> PredictionModelPlan:
        primaries = [m for m in self.models if m.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(f"exactly one model must have role primary, found {len(primaries)}")
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        return self

    def check_against(self, dictionary: DataDictionary, source: str) -> None:
        """Every column the plan names must exist in ``dictionary``."""
        problems: list[Violation] = []
        for key in ("time", "event"):
            col = getattr(self.outcome, key)
            if col not in dictionary:
                problems.append(
                    Violation(
                        source,
                        f"outcome.{key}",
                        None,
                        f"{dictionary.name} dictionary has no variable",
                        col,
                    )
                )
        for i, m in enumerate(self.models):
            for j, cov in enumerate(m.covariates):
                if cov not in dictionary:
                    problems.append(
                        Violation(
                            source,
                            f"models[{i}].covariates[{j}]",
                            None,
                            f"{dictionary.name} dictionary has no variable",
                            cov,
                        )
                    )
        for i, sg in enumerate(self.subgroups):
            if not sg.derived and sg.variable not in dictionary:
                problems.append(
                    Violation(
                        source,
                        f"subgroups[{i}].variable",
                        None,
                        f"{dictionary.name} dictionary has no variable",
                        sg.variable,
                    )
                )
        problems.extend(_cohort_column_problems(self.cohort, dictionary, source))
        InputValidationError.collect(problems)


def plan_path(slug: str) -> Path:
    """Path of the bundled plan of protocol ``slug``."""
    res = resources.files("studyval.reports").joinpath(slug, "plan.yml")
    if not res.is_file():
        raise StudyvalError(
            f"no analysis plan for protocol {slug!r} (looked for reports/{slug}/plan.yml)"
        )
    return Path(str(res))


#: Plan schema of each study type that does not use :class:`AnalysisPlan`
#: ("module:class", imported on first use so that a protocol's schema lives beside it).
PLAN_SCHEMAS: dict[str, str] = {
    "prediction_model": "studyval.plan:PredictionModelPlan",
    "multimodal_staging": "studyval.plan_msk_aging:MskAgingPlan",
    "service_evaluation": "studyval.plan_vcf_opportunistic:OpportunisticPlan",
}


def _plan_schema(study_type: object) -> type[BaseModel]:
    """The pydantic model that validates a plan of ``study_type``."""
    target = PLAN_SCHEMAS.get(study_type) if isinstance(study_type, str) else None
    if target is None:
        return AnalysisPlan
    import importlib

    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


#: Plan schema versions this studyval reads (a plan's optional top-level ``schema_version``).
SCHEMA_VERSIONS = (1,)


def load_plan(
    slug_or_path: str | Path,
    *,
    check_dictionary: bool = True,
    check_steps: bool = True,
    slug: str | None = None,
    dictionary: str | Path | DataDictionary | None = None,
) -> AnalysisPlan | PredictionModelPlan:
    """Load and validate an analysis plan.

    Parameters
    ----------
    slug_or_path : str or Path
        A protocol slug (bundled plan) or a path to a ``plan.yml`` (a study
        team's own plan).
    check_dictionary : bool
        Also check the plan against its data dictionary.
    check_steps : bool
        Also check that the plan's protocol is shipped (or its ``registry.study_type``
        one studyval runs) and that every name in ``endpoints[].analyses`` is one of its
        steps. The check imports the protocol's analysis steps (the whole analysis layer);
        a reader of a finished bundle, whose run made this check, passes ``False``
        (:attr:`studyval.reporting.Bundle.plan`): a bundle whose plan names a step this
        version lacks (made by another version) is still read.
    slug : str, optional
        The protocol the plan must be for (``studyval run SLUG --plan``).
    dictionary : str, Path or DataDictionary, optional
        The data dictionary to check against instead of the one the plan
        names (:func:`plan_dictionary`).

    Raises
    ------
    PlanError
        Unreadable YAML.
    InputValidationError
        Every schema violation, with the YAML path of each (``thresholds[0].value``);
        a plan for another protocol (``slug``); an unknown ``schema_version``;
        an unknown analysis step (``endpoints[0].analyses[1]``); a column the
        dictionary lacks.

    """
    path = Path(slug_or_path)
    # a bare slug names the bundled plan, even when a folder of that name is in the working
    # directory (``studyval synthetic msk-aging -o msk-aging`` makes one)
    if not (path.suffix in (".yml", ".yaml") or path.is_file()):
        path = plan_path(str(slug_or_path))
    if not path.is_file():
        raise PlanError(f"analysis plan {path} does not exist")
    source = str(path)
    try:
        raw: Any = yaml_text.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise PlanError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise PlanError(f"{source}: must be a YAML mapping")
    raw = dict(raw)
    version = raw.pop("schema_version", SCHEMA_VERSIONS[-1])
    if version not in SCHEMA_VERSIONS:
        raise InputValidationError(
            [
                Violation(
                    source,
                    "schema_version",
                    None,
                    "unknown plan schema version; this studyval reads "
                    + ", ".join(str(v) for v in SCHEMA_VERSIONS),
                    str(version),
                )
            ]
        )
    if slug is not None and raw.get("slug") != slug:
        raise InputValidationError(
            [
                Violation(
                    source,
                    "slug",
                    None,
                    f"this plan is for protocol {raw.get('slug')!r}, not {slug!r}",
                    None if raw.get("slug") is None else str(raw.get("slug")),
                )
            ]
        )
    study_type = (
        (raw.get("registry") or {}).get("study_type")
        if isinstance(raw.get("registry"), dict)
        else None
    )
    schema = _plan_schema(study_type)
    try:
        plan = schema.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ""
            for part in err["loc"]:
                loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown key"
            value = err.get("input")
            shown = None if isinstance(value, (dict, list)) or value is None else str(value)
            problems.append(Violation(source, loc or None, None, msg, shown))
        raise InputValidationError(problems) from None
    if check_steps:
        _check_steps(plan, source)
    if check_dictionary:
        if not isinstance(dictionary, DataDictionary):
            dictionary = load_dictionary(
                plan_dictionary(plan, path) if dictionary is None else dictionary
            )
        plan.check_against(dictionary, source)
    return plan


def plan_dictionary(plan: Any, plan_file: Path | None) -> str | Path:
    """Where the data dictionary a plan names is.

    ``dictionary: ovcf-chronicity`` names a dictionary shipped with studyval;
    ``dictionary: my-dictionary.yml`` (a name ending in ``.yml``/``.yaml``)
    is a file, relative to the plan's own folder, so that a study team keeps
    the two side by side.
    """
    name = str(plan.dictionary)
    if name.endswith((".yml", ".yaml")):
        path = Path(name)
        return path if path.is_absolute() or plan_file is None else plan_file.parent / path
    return name


def _check_steps(plan: Any, source: str) -> None:
    """Every name in ``endpoints[].analyses`` must be a step of the plan's protocol (or study type)."""
    from studyval.protocol import PROTOCOLS, protocol

    if plan.slug not in PROTOCOLS:
        from studyval.study_types import STUDY_TYPES

        if plan.registry.study_type not in STUDY_TYPES:
            raise InputValidationError(
                [
                    Violation(
                        source,
                        "registry.study_type",
                        None,
                        f"slug {plan.slug!r} is not a shipped protocol, and a study of this "
                        f"type needs one (a plan of a new study has study_type "
                        f"{' or '.join(STUDY_TYPES)})",
                        str(plan.registry.study_type),
                    )
                ]
            )
    registry = protocol(plan.slug, plan.registry.study_type).steps
    if registry is not None:
        registry.check_plan(requested_steps(plan), source=source)
