"""Analysis-plan schema of the service evaluation vcf-opportunistic (AI Centre project AIC003).

``load_plan`` (:mod:`studyval.plan`) dispatches plans whose ``registry.study_type``
is ``service_evaluation`` to :class:`OpportunisticPlan`. Like the other plan
schemas it is strict (unknown keys are errors) and frozen, and
:meth:`OpportunisticPlan.check_against` names every column the data dictionary
lacks.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from studyval.dictionary import DataDictionary
from studyval.errors import InputValidationError, Violation
from studyval.plan import Endpoint, NamedModels, Outcome, Registry, _Strict

__all__ = ["OpportunisticPlan"]

Alternative = Literal["two-sided", "greater", "less"]
Measure = Literal["detection", "referral"]


class Window(_Strict):
    """A period of scan dates (both ends inclusive)."""

    start: dt.date
    end: dt.date

    @model_validator(mode="after")
    def _ordered(self) -> Window:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self


class Periods(_Strict):
    """The two evaluation periods; weeks of the prospective period count from its start."""

    retrospective: Window
    prospective: Window
    prospective_weeks: int = Field(gt=0, description="Number of weeks of the prospective period")

    @model_validator(mode="after")
    def _weeks(self) -> Periods:
        days = (self.prospective.end - self.prospective.start).days + 1
        if days > 7 * self.prospective_weeks:
            raise ValueError(
                f"the prospective window has {days} days, more than prospective_weeks "
                f"({self.prospective_weeks}) x 7"
            )
        if self.retrospective.end >= self.prospective.start:
            raise ValueError(
                "the retrospective period must end before the prospective period starts"
            )
        return self


class Baseline(_Strict):
    """A published baseline rate, the improvement the project aims for, and their sources."""

    measure: Measure
    definition: str
    value: float = Field(gt=0, lt=1)
    source: str
    target: float = Field(gt=0, lt=1)
    target_source: str

    @model_validator(mode="after")
    def _improvement(self) -> Baseline:
        if self.target <= self.value:
            raise ValueError(f"target {self.target} must exceed the baseline {self.value}")
        return self


class Tests(_Strict):
    """Which tests are run, and their sidedness."""

    alternative: Alternative
    alternative_rationale: str
    two_period_test: Literal["fisher", "score", "score-cc"]
    two_period_secondary_test: Literal["fisher", "score", "score-cc"] | None = None
    mcnemar: Literal["exact", "asymptotic", "asymptotic-cc"]
    proportion_ci: Literal["clopper-pearson", "wilson"] = "clopper-pearson"
    primary_comparison: Literal["concurrent", "historical"] = Field(
        description="Which comparison of the AI-assisted period is the primary inference: the "
        "study's own concurrent standard-care period, or the registry's historical, fixed baseline"
    )
    primary_comparison_rationale: str


class Multiplicity(_Strict):
    """How the family-wise error rate over the primary hypotheses is controlled."""

    method: Literal["holm", "hochberg", "bonferroni", "fixed-sequence"]
    hypotheses: list[Measure] = Field(
        description="The primary hypotheses (one per measure); for fixed-sequence, in testing order"
    )
    rationale: str

    @field_validator("hypotheses")
    @classmethod
    def _both(cls, v: list[str]) -> list[str]:
        if sorted(v) != ["detection", "referral"]:
            raise ValueError(f"the family is detection and referral, once each; got {', '.join(v)}")
        return v


class ModelSpec(_Strict):
    """A tool whose flags the plan analyses (rows of the prediction table)."""

    name: str
    role: Literal["primary", "comparator"]
    required: bool = Field(description="False: the tool's absence is reported, not an error")
    threshold: float = Field(description="score >= threshold is a positive flag")
    threshold_source: str
    periods: list[Literal["retrospective", "prospective"]]
    description: str = ""

    @field_validator("threshold")
    @classmethod
    def _unit(cls, v: float) -> float:
        if not 0.0 < v < 1.0:
            raise ValueError(f"threshold must lie strictly between 0 and 1, got {v}")
        return v


class Columns(_Strict):
    """Clinical-table columns the analyses use."""

    period: str = "period"
    scan_date: str = "scan_date"
    week: str = "week"
    age: str = "age"
    exclusion: str = "exclusion_reason"
    genant_grade: str = "genant_grade"
    report: str = "report_vcf"
    referral: str = "referred"
    baseline_continuous: list[str] = Field(default_factory=lambda: ["age"])
    baseline_categorical: list[str] = Field(default_factory=lambda: ["sex", "ct_region"])


class Unit(_Strict):
    """Unit of the primary analysis and how clustering is handled."""

    primary: Literal["first_scan_per_patient"]
    description: str
    sensitivity_analysis: Literal["all_scans_patient_bootstrap"]
    n_resamples: int = Field(ge=100)
    bootstrap_ci: Literal["percentile", "bca"] = "percentile"
    patients_in_both_periods: Literal["first_period", "each_period"] = Field(
        "each_period",
        description="A patient with included scans in both periods: first_period = analysed "
        "in the period of the first included scan only (the later period's scans are counted "
        "in the flow and left out of the first-scan analyses); each_period = the first scan "
        "of each period (plans before 1.2.0)",
    )
    patients_in_both_periods_rationale: str = ""


class FailedRuns(_Strict):
    """How a failed AI run (no score) enters the standalone and the pathway analyses."""

    standalone: Literal["exclude", "as_negative"] = Field(
        description="The tool's accuracy and paired comparisons: leave the scan out (counted) "
        "or count it as no flag"
    )
    pathway: Literal["intention_to_treat", "exclude"] = Field(
        description="The AI-assisted pathway rates: keep the scan (its report was written "
        "without the AI output) or leave it out"
    )
    sensitivity_analysis: bool = Field(
        True, description="Also report every analysis under the other convention"
    )
    rationale: str


class Adjustment(_Strict):
    """Covariates of the adjusted (standardised) comparison of the periods."""

    categorical: list[str]
    continuous: list[str]
    n_resamples: int = Field(ge=100, description="Patient-cluster bootstrap resamples")
    bootstrap_ci: Literal["percentile", "bca"] = "percentile"
    rationale: str


class Blinding(_Strict):
    """What the reference (expert) read was blinded to."""

    reference_read_blinded_to_ai_output: bool
    reference_read_blinded_to_period: bool
    reference_read_blinded_to_report: bool
    statement: str


class Eligibility(_Strict):
    """Registered inclusion rule checked on included scans."""

    min_age_exclusive: int


class HGrid(_Strict):
    """Candidate CUSUM decision intervals: ``start``, ``start + step``, ... up to ``stop``."""

    start: float = Field(gt=0)
    stop: float = Field(gt=0)
    step: float = Field(gt=0)

    @model_validator(mode="after")
    def _span(self) -> HGrid:
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop:g} is below start {self.start:g}")
        steps = (self.stop - self.start) / self.step
        if abs(steps - round(steps)) > 1e-9:
            raise ValueError(
                f"stop - start ({self.stop - self.start:g}) is not a whole number of steps "
                f"({self.step:g})"
            )
        if round(steps) + 1 > 1000:
            raise ValueError(f"the grid has {round(steps) + 1} values; at most 1000")
        return self

    def values(self) -> list[float]:
        """The grid values, rounded to 10 decimals (no floating-point drift)."""
        return [
            round(self.start + i * self.step, 10)
            for i in range(round((self.stop - self.start) / self.step) + 1)
        ]


class Monitoring(_Strict):
    """Weekly control charts of the prospective period."""

    centre: Literal["pooled", "standard", "baseline_weeks"] = Field(
        description="pooled: trial limits from the charted weeks (not live-capable); standard: "
        "the plan's target rates (and, for the AI flag rate, the tool's retrospective flag "
        "rate, known before go-live); baseline_weeks: the first baseline_weeks weeks"
    )
    centre_rationale: str
    baseline_weeks: int = Field(0, ge=0, description="Weeks that set the centre (baseline_weeks)")
    sigma_multiplier: float = Field(3.0, gt=0)
    cusum_h: float = Field(
        gt=0,
        description="Decision interval in missed events; with cusum_target_arl0 it must be the "
        "h chosen from the grid (checked when the monitoring step runs)",
    )
    cusum_target_arl0: float | None = Field(
        None,
        gt=1,
        description="In-control average run length (weeks) that h must reach for every CUSUM, "
        "at the planned weekly VCF-positive scans (plan 1.3.0); None: h is declared only",
    )
    cusum_h_grid: HGrid | None = Field(
        None, description="Candidate decision intervals (with cusum_target_arl0)"
    )
    cusum_rationale: str
    reset_after_signal: bool
    chart_ai_flag_rate: bool = True
    arl_simulations: int = Field(
        10000, ge=100, description="Simulated runs per average-run-length estimate of a CUSUM"
    )
    false_alarm_simulations: int = Field(
        10000,
        ge=100,
        description="Simulated in-control runs for the charts' joint false-alarm rate",
    )

    @model_validator(mode="after")
    def _baseline(self) -> Monitoring:
        if (self.centre == "baseline_weeks") != (self.baseline_weeks > 0):
            raise ValueError("baseline_weeks > 0 exactly when centre is baseline_weeks")
        if (self.cusum_target_arl0 is None) != (self.cusum_h_grid is None):
            raise ValueError(
                "cusum_target_arl0 and cusum_h_grid go together: h is chosen as the smallest "
                "grid value whose in-control average run length reaches the target"
            )
        if self.cusum_h_grid is not None and not any(
            abs(v - self.cusum_h) < 1e-9 for v in self.cusum_h_grid.values()
        ):
            raise ValueError(
                f"cusum_h ({self.cusum_h:g}) is not a value of cusum_h_grid "
                f"({self.cusum_h_grid.start:g} to {self.cusum_h_grid.stop:g} by "
                f"{self.cusum_h_grid.step:g}), so it cannot be the h chosen from it"
            )
        return self


class PairedPlanning(_Strict):
    """Planning values of the paired comparison (AI tool vs the report, McNemar's test)."""

    tool_sensitivity: float = Field(gt=0, lt=1)
    report_sensitivity: float = Field(gt=0, lt=1)
    phi: float = Field(
        0.0,
        ge=-1,
        le=1,
        description="Correlation of the two readers' calls among VCF-positive scans",
    )
    source: str


class SampleSize(_Strict):
    """Planning assumptions (the registry states only ~1,000 scans and 2 months)."""

    registered_text: str
    planned_retrospective_scans: int = Field(gt=0)
    registered_prospective_weeks: int = Field(gt=0)
    assumed_prevalence: float = Field(gt=0, lt=1)
    assumed_weekly_scans: float = Field(gt=0)
    target_power: float = Field(gt=0, lt=1)
    assumptions_source: str
    n_max: int = Field(2000, gt=0)
    paired: PairedPlanning


class OpportunisticPlan(NamedModels, _Strict):
    """Analysis plan of vcf-opportunistic (``reports/vcf-opportunistic/plan.yml``)."""

    slug: str
    plan_version: str
    dictionary: str
    registry: Registry
    intended_use: str = ""
    index_test: str = ""
    seed: int
    alpha: float = 0.05
    outcome: Outcome
    reference_standard_rule: str
    unit: Unit
    periods: Periods
    baselines: list[Baseline]
    tests: Tests
    models: list[ModelSpec]
    evaluation_split: Literal["external", "internal"]
    columns: Columns = Columns()
    eligibility: Eligibility
    monitoring: Monitoring
    sample_size: SampleSize
    multiplicity: Multiplicity
    failed_ai_runs: FailedRuns | None = None
    adjustment: Adjustment | None = None
    blinding: Blinding | None = None
    endpoints: list[Endpoint]

    @model_validator(mode="after")
    def _cross(self) -> OpportunisticPlan:
        if not 0 < self.alpha < 1:
            raise ValueError("alpha must be in (0, 1)")
        primaries = [m for m in self.models if m.role == "primary"]
        if len(primaries) != 1:
            raise ValueError(f"exactly one model must have role primary, found {len(primaries)}")
        if not primaries[0].required:
            raise ValueError("the primary model must be required")
        names = [m.name for m in self.models]
        if len(set(names)) != len(names):
            raise ValueError("model names must be distinct")
        measures = [b.measure for b in self.baselines]
        if sorted(measures) != ["detection", "referral"]:
            raise ValueError(
                f"baselines must give detection and referral once each, got {', '.join(measures)}"
            )
        if not any(e.kind == "primary" for e in self.endpoints):
            raise ValueError("at least one endpoint must be primary")
        if self.registry.checklist != "STARD-2015":
            raise ValueError("this service evaluation reports with STARD-2015")
        named = {a for e in self.endpoints for a in e.analyses}
        for step, section in (("adjusted", "adjustment"), ("failed_runs", "failed_ai_runs")):
            if step in named and getattr(self, section) is None:
                raise ValueError(
                    f"an endpoint names the {step} analysis, so the plan needs {section}"
                )
        if self.monitoring.baseline_weeks >= self.periods.prospective_weeks:
            raise ValueError(
                f"monitoring.baseline_weeks ({self.monitoring.baseline_weeks}) leaves no week of "
                f"the {self.periods.prospective_weeks} prospective weeks to monitor"
            )
        return self

    def model(self, name: str) -> ModelSpec:
        """The plan's spec of model ``name``."""
        return next(m for m in self.models if m.name == name)

    def baseline(self, measure: str) -> Baseline:
        """The baseline of ``measure`` (detection or referral)."""
        return next(b for b in self.baselines if b.measure == measure)

    def check_against(self, dictionary: DataDictionary, source: str) -> None:
        """Every column the plan names must exist in ``dictionary``; outcome levels must match.

        Raises
        ------
        InputValidationError
            Listing every inconsistency with its YAML path.

        """
        problems: list[Violation] = []

        def need(path: str, column: str) -> bool:
            if column not in dictionary:
                problems.append(
                    Violation(
                        source, path, None, f"{dictionary.name} dictionary has no variable", column
                    )
                )
                return False
            return True

        out = self.outcome
        if need("outcome.variable", out.variable):
            levels = dictionary[out.variable].levels
            for key, label in (("positive", out.positive), ("negative", out.negative)):
                if label not in levels:
                    problems.append(
                        Violation(
                            source,
                            f"outcome.{key}",
                            None,
                            f"not a level of {out.variable} ({', '.join(levels)})",
                            label,
                        )
                    )
        cols = self.columns
        for key in (
            "period",
            "scan_date",
            "week",
            "age",
            "exclusion",
            "genant_grade",
            "report",
            "referral",
        ):
            need(f"columns.{key}", getattr(cols, key))
        for key in ("baseline_continuous", "baseline_categorical"):
            for i, col in enumerate(getattr(cols, key)):
                need(f"columns.{key}[{i}]", col)
        if self.adjustment is not None:
            for key in ("categorical", "continuous"):
                for i, col in enumerate(getattr(self.adjustment, key)):
                    need(f"adjustment.{key}[{i}]", col)
        if cols.period in dictionary:
            levels = dictionary[cols.period].levels
            for i, m in enumerate(self.models):
                for j, p in enumerate(m.periods):
                    if p not in levels:
                        problems.append(
                            Violation(
                                source,
                                f"models[{i}].periods[{j}]",
                                None,
                                f"not a level of {cols.period} ({', '.join(levels)})",
                                p,
                            )
                        )
        if cols.week in dictionary:
            wmax = dictionary[cols.week].maximum
            if wmax is not None and float(wmax) < self.periods.prospective_weeks:
                problems.append(
                    Violation(
                        source,
                        "periods.prospective_weeks",
                        None,
                        f"exceeds the dictionary's maximum week ({wmax})",
                        str(self.periods.prospective_weeks),
                    )
                )
        InputValidationError.collect(problems)
