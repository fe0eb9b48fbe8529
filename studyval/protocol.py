"""The contract every protocol implements, declared once.

A protocol (one registered study) is a module under :mod:`studyval.protocols`
that ends with one :class:`StudyProtocol` named ``PROTOCOL``. The pipeline,
``studyval verify`` and ``studyval figures`` use nothing else of the module:
no attribute is looked up by name and no protocol has a branch of its own in
the shared code.

The pieces every protocol needs (the tables container and the flow-table
counts) are defined here, once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from studyval.errors import StudyvalError, Violation
from studyval.steps.registry import StepRegistry, requested_steps

if TYPE_CHECKING:  # pragma: no cover - imported for annotations only
    from pathlib import Path

    from studyval.cohort import Cohort
    from studyval.figures.spec import FigureSpec

__all__ = [
    "PROTOCOLS",
    "ImagingChain",
    "ProtocolTables",
    "StudyProtocol",
    "flow_count",
    "is_shipped",
    "protocol",
    "steps_analysis",
]

#: Protocols with an implemented analysis plan: slug -> module under studyval.protocols.
PROTOCOLS: dict[str, str] = {
    "ovcf-chronicity": "studyval.protocols.ovcf_chronicity",
    "refracture-pvp": "studyval.protocols.refracture_pvp",
    "msk-aging": "studyval.protocols.msk_aging",
    "vcf-opportunistic": "studyval.protocols.vcf_opportunistic",
    "cirrhosis-sarcopenia": "studyval.protocols.cirrhosis_sarcopenia",
}


@dataclass(frozen=True)
class ProtocolTables:
    """Tables of one run, by name (each becomes ``tables/<name>.parquet`` and ``.csv``)."""

    tables: dict[str, pd.DataFrame]


class EligibilityCheck(Protocol):
    """Rules of a protocol that span rows or columns of the clinical table."""

    def __call__(self, clinical: pd.DataFrame, plan: Any, *, label: str) -> list[Violation]:
        """Every violation of the protocol's eligibility and consistency rules."""


class Join(Protocol):
    """Joins the validated clinical and prediction tables into the analysed cohort."""

    def __call__(
        self,
        clinical: pd.DataFrame,
        predictions: pd.DataFrame,
        plan: Any,
        *,
        clinical_label: str,
        predictions_label: str,
    ) -> Cohort:
        """The cohort; raises InputValidationError listing every cross-table violation."""


class Analyse(Protocol):
    """Runs the plan's analyses: pure, returns tables only."""

    def __call__(
        self, cohort: Cohort, plan: Any, *, progress: Callable[[str], None]
    ) -> ProtocolTables:
        """The analysis tables of one run."""


class ImagingChain(Protocol):
    """Builds a protocol's demo inputs with the imaging models (phantom CTs)."""

    def __call__(
        self, clinical: Path, work: Path, plan: Any, *, seed: int, progress: Callable[[str], None]
    ) -> Mapping[str, Path]:
        """``clinical``, ``predictions`` (where the chain writes them) and ``imaging``."""


@dataclass(frozen=True)
class StudyProtocol:
    """One registered study: what the shared pipeline calls, and nothing else.

    Attributes
    ----------
    slug : str
        The protocol's slug (``ovcf-chronicity``); its plan is
        ``reports/<slug>/plan.yml`` and its dictionary ``data_dictionary/<slug>.yml``.
    check_eligibility : callable
        ``(clinical, plan, *, label) -> list[Violation]``: rules spanning rows
        or columns of the validated clinical table.
    analyse : callable
        ``(cohort, plan, *, progress) -> ProtocolTables``.
    checklist : callable
        ``(plan, tables, cohort) -> DataFrame``: the STARD 2015 or TRIPOD+AI items.
    figure_specs : callable
        ``(tables, plan) -> list[FigureSpec]``: every figure, drawn from tables.
    requires_predictions : bool
        False when the plan fits its own models from the clinical table.
    join : callable or None
        ``(clinical, predictions, plan, *, clinical_label, predictions_label) -> Cohort``;
        None for :func:`studyval.cohort.join_predictions` (the pipeline's default).
    imaging_chain : callable or None
        The demo's imaging chain, for protocols whose demo inputs can come out
        of the imaging models.
    steps : StepRegistry or None
        The analysis steps a plan of this protocol may name in
        ``endpoints[].analyses`` (checked at plan load); ``analyse`` is then
        :func:`steps_analysis` over them.

    """

    slug: str
    check_eligibility: EligibilityCheck
    analyse: Analyse
    checklist: Callable[[Any, dict[str, pd.DataFrame], Cohort], pd.DataFrame]
    figure_specs: Callable[[dict[str, pd.DataFrame], Any], list[FigureSpec]]
    requires_predictions: bool = True
    join: Join | None = None
    imaging_chain: ImagingChain | None = None
    steps: StepRegistry | None = None


def protocol(slug: str, study_type: str | None = None) -> StudyProtocol:
    """The :class:`StudyProtocol` of ``slug``.

    A shipped protocol (:data:`PROTOCOLS`) is its module's ``PROTOCOL``. Any
    other slug is a study of a generic type (:mod:`studyval.study_types`): its
    plan's ``registry.study_type`` picks the type, whose protocol runs it.

    Raises
    ------
    StudyvalError
        An unknown slug with no study type (the closest known one is
        suggested), or a study type without a generic protocol.

    """
    if slug not in PROTOCOLS:
        if study_type is not None:
            from studyval.study_types import type_module

            return type_module(study_type).study_protocol(slug)
        import difflib

        close = difflib.get_close_matches(slug, list(PROTOCOLS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise StudyvalError(
            f"unknown protocol {slug!r} (shipped: {', '.join(PROTOCOLS)}){hint}; "
            "a study of a generic type runs with its own plan (--plan PLAN.yml, see "
            "'studyval init')"
        )
    module = importlib.import_module(PROTOCOLS[slug])
    spec = module.PROTOCOL
    if not isinstance(spec, StudyProtocol) or spec.slug != slug:  # pragma: no cover - a bug
        raise TypeError(f"{PROTOCOLS[slug]}.PROTOCOL is not the StudyProtocol of {slug}")
    return spec


def is_shipped(slug: str) -> bool:
    """Whether ``slug`` is a protocol shipped with studyval (its plan, report and module)."""
    return slug in PROTOCOLS


def steps_analysis(registry: StepRegistry, *, always: Sequence[str]) -> Analyse:
    """The ``analyse`` of a protocol whose analysis is its plan's steps.

    Runs ``always`` (the steps every run has: participant flow, baseline
    table, ...) and then every step named in ``endpoints[].analyses``, in
    order of first mention, each after the steps it needs
    (:meth:`StepRegistry.run`).
    """
    for name in always:
        registry[name]  # an unknown name is a defect of the protocol: fail at import

    def analyse(
        cohort: Cohort, plan: Any, *, progress: Callable[[str], None] = lambda _: None
    ) -> ProtocolTables:
        names = [*always, *(name for _, name in requested_steps(plan))]
        return ProtocolTables(tables=registry.run(names, cohort, plan, progress=progress))

    return analyse


def flow_count(flow: pd.DataFrame, stage: str, *, column: str = "n_patients", **where: Any) -> int:
    """Sum of ``column`` over the rows of a flow table at ``stage`` matching ``where``.

    A ``where`` value of ``None`` (or ``""``) matches every row, so a caller
    can pass an optional filter through.

    Examples
    --------
    >>> flow = pd.DataFrame(
    ...     {"stage": ["analysed"] * 3, "set": ["external", "external", "internal"],
    ...      "group": ["acute", "chronic", "acute"], "n_patients": [30, 40, 25]}
    ... )
    >>> flow_count(flow, "analysed", set="external")
    70
    >>> flow_count(flow, "analysed", group="acute", set=None)
    55

    """
    sub = flow[flow["stage"] == stage]
    for key, value in where.items():
        if value is None or (isinstance(value, str) and value == ""):
            continue
        sub = sub[sub[key] == value]
    return int(sub[column].sum())
