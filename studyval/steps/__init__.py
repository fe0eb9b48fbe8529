"""Analysis steps: the registry (:mod:`studyval.steps.registry`) and the shared steps of study types.

``endpoints[].analyses`` in a plan names steps; a protocol's
:class:`~studyval.protocol.StudyProtocol` holds the :class:`StepRegistry` its
plans may use. Shared steps live in one module per study type (diagnostic
accuracy, prognostic model) or per shared table (baseline, sample size);
a step only a single protocol uses is registered in that protocol's module.
"""

from studyval.steps.registry import (
    Step,
    StepContext,
    StepContractError,
    StepFunction,
    StepRegistry,
    TableSpec,
    UnknownStepError,
)

__all__ = [
    "Step",
    "StepContext",
    "StepContractError",
    "StepFunction",
    "StepRegistry",
    "TableSpec",
    "UnknownStepError",
]
