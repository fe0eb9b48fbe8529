"""Analysis steps: the registry that a plan's ``endpoints[].analyses`` dispatch through.

A **step** is a pure function ``(cohort, plan, ctx) -> {table name: DataFrame}``
registered under a name, with the tables it writes declared once as
:class:`TableSpec` (name, meaning, the columns it always has) and the tables
of earlier steps it reads declared as ``needs``. A step computes no statistic
of its own: it is a thin adapter that calls the pure functions of
:mod:`studyval.analysis` and lays their results out as tables.

A study's analysis is the steps its plan names: the protocol's ``always``
steps (participant flow, baseline table, ...) followed by every name in
``endpoints[].analyses``, in order of first mention, each preceded by the
steps that write the tables it needs. :meth:`StepRegistry.run` checks that
each step writes exactly the tables it declares, with their declared
columns, and that no table is written twice; a step sees only the tables it
declared that it needs.

A step may also hand an in-memory **artefact** to later steps (fitted models
whose scores several steps analyse): it declares the artefact's name in
``artifacts``, returns it under that name beside its tables, and a later
step lists the name in ``needs`` and reads ``ctx.artifacts[name]``.
Artefacts are never written to the bundle. An unknown name in a plan is an error at plan load
with its YAML path and the closest registered name
(:meth:`StepRegistry.check_plan`).

The registry follows MONAI's ``ComponentStore`` and scikit-learn's scorer
registry: names are looked up in one place, never with ``getattr``.

Examples
--------
>>> import pandas as pd
>>> reg = StepRegistry("example")
>>> @reg.step("counts", produces=[TableSpec("counts", "Rows per set", ("set", "n"))])
... def _counts(cohort, plan, ctx):
...     return {"counts": cohort.groupby("set").size().rename("n").reset_index()}
>>> @reg.step("share", produces=[TableSpec("share", "Share of rows per set", ("set", "share"))],
...           needs=("counts",))
... def _share(cohort, plan, ctx):
...     c = ctx.tables["counts"]
...     return {"share": c.assign(share=c["n"] / c["n"].sum())[["set", "share"]]}
>>> [s.name for s in reg.resolve(["share"])]
['counts', 'share']
>>> out = reg.run(["share"], pd.DataFrame({"set": ["a", "a", "b"]}), plan=None)
>>> out["share"]["share"].tolist()
[0.6666666666666666, 0.3333333333333333]
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import pandas as pd

from studyval.errors import InputValidationError, StudyvalError, Violation

__all__ = [
    "Step",
    "StepContext",
    "StepContractError",
    "StepFunction",
    "StepRegistry",
    "TableSpec",
    "UnknownStepError",
    "requested_steps",
]


class UnknownStepError(StudyvalError):
    """A plan or a protocol names a step that no registry holds."""


class StepContractError(StudyvalError):
    """A step wrote a table it did not declare, missed one, or lacks a declared column.

    This is a defect of the step, never of the user's data.
    """


@dataclass(frozen=True)
class TableSpec:
    """One table of a results bundle, declared once.

    Attributes
    ----------
    name : str
        File name in the bundle (``tables/<name>.parquet`` and ``.csv``);
        runner, checklist, figures and report refer to the table by this name.
    description : str
        What one row is, in words (shown in the bundle's table index).
    columns : tuple of str
        Columns the table always has (more may follow); checked after the step runs.
    """

    name: str
    description: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepContext:
    """What a step sees besides the cohort and the plan.

    Attributes
    ----------
    tables : Mapping[str, DataFrame]
        The tables of earlier steps that this step declared in ``needs``, read-only.
    progress : callable
        Called with a short message (the CLI shows it); a step never prints.
    artifacts : Mapping[str, object]
        The in-memory artefacts of earlier steps that this step declared in
        ``needs`` (never written to the bundle).
    """

    tables: Mapping[str, pd.DataFrame]
    progress: Callable[[str], None]
    artifacts: Mapping[str, Any] = field(default_factory=dict)


class StepFunction(Protocol):
    """The body of a step: pure, returns its declared tables."""

    def __call__(self, cohort: Any, plan: Any, ctx: StepContext) -> Mapping[str, pd.DataFrame]:
        """The step's tables, by declared name."""


@dataclass(frozen=True)
class Step:
    """A registered analysis step.

    Attributes
    ----------
    name : str
        The name plans use in ``endpoints[].analyses``.
    run : StepFunction
        ``(cohort, plan, ctx) -> {table name: DataFrame}``.
    produces : tuple of TableSpec
        Every table the step writes (exactly these).
    needs : tuple of str
        Tables (``ctx.tables``) and artefacts (``ctx.artifacts``) of other
        steps that the step reads.
    description : str
        One line for the bundle's step list and the docs.
    artifacts : tuple of str
        In-memory artefacts the step hands to later steps (returned beside
        its tables, never written).
    """

    name: str
    run: StepFunction
    produces: tuple[TableSpec, ...]
    needs: tuple[str, ...] = ()
    description: str = ""
    artifacts: tuple[str, ...] = ()

    @property
    def table_names(self) -> tuple[str, ...]:
        """Names of the tables the step writes."""
        return tuple(t.name for t in self.produces)


@dataclass
class StepRegistry:
    """Named analysis steps of one study type or protocol.

    Parameters
    ----------
    name : str
        What the registry serves (``"diagnostic-accuracy"``, a protocol slug).
    """

    name: str
    _steps: dict[str, Step] = field(default_factory=dict, repr=False)

    # -- building -------------------------------------------------------------------------------
    def add(self, step: Step) -> Step:
        """Register ``step``; a second step of the same name, or a table declared twice, is an error."""
        if step.name in self._steps:
            raise ValueError(f"step {step.name!r} is already registered in {self.name!r}")
        owners = self.table_owners()
        for what, name in [("table", t.name) for t in step.produces] + [
            ("artefact", a) for a in step.artifacts
        ]:
            if name in owners:
                raise ValueError(
                    f"{what} {name!r} of step {step.name!r} is already written by step "
                    f"{owners[name]!r} in {self.name!r}"
                )
        self._steps[step.name] = step
        return step

    def step(
        self,
        name: str,
        *,
        produces: Sequence[TableSpec],
        needs: Sequence[str] = (),
        description: str = "",
        artifacts: Sequence[str] = (),
    ) -> Callable[[StepFunction], StepFunction]:
        """Decorator registering a function as step ``name`` (the function is returned unchanged)."""

        def register(fn: StepFunction) -> StepFunction:
            doc = description or (fn.__doc__ or "").strip().splitlines()[0:1]
            text = doc if isinstance(doc, str) else (doc[0] if doc else "")
            self.add(Step(name, fn, tuple(produces), tuple(needs), text, tuple(artifacts)))
            return fn

        return register

    def including(self, *others: StepRegistry, name: str | None = None) -> StepRegistry:
        """A new registry holding this registry's steps and those of ``others`` (no name twice)."""
        out = StepRegistry(name or self.name)
        for reg in (self, *others):
            for step in reg._steps.values():
                out.add(step)
        return out

    # -- looking up -----------------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        """Registered step names, in registration order."""
        return tuple(self._steps)

    def __contains__(self, name: object) -> bool:
        return name in self._steps

    def __getitem__(self, name: str) -> Step:
        try:
            return self._steps[name]
        except KeyError:
            raise UnknownStepError(
                f"unknown analysis step {name!r} for {self.name}{self._hint(name)}"
            ) from None

    def _hint(self, name: str) -> str:
        close = difflib.get_close_matches(name, list(self._steps), n=1)
        if close:
            return f"; did you mean {close[0]!r}?"
        return f" (registered: {', '.join(self._steps)})"

    def table_owners(self) -> dict[str, str]:
        """Table (or artefact) name -> the step that writes it."""
        owners = {t.name: s.name for s in self._steps.values() for t in s.produces}
        owners |= {a: s.name for s in self._steps.values() for a in s.artifacts}
        return owners

    def tables(self) -> dict[str, TableSpec]:
        """Every table any step of the registry writes, by name."""
        return {t.name: t for s in self._steps.values() for t in s.produces}

    # -- planning -------------------------------------------------------------------------------
    def check_plan(self, requested: Iterable[tuple[str, str]], *, source: str) -> None:
        """Raise one error listing every unknown step name of a plan.

        Parameters
        ----------
        requested : iterable of (yaml path, step name)
            E.g. ``("endpoints[2].analyses[0]", "auc")``.
        source : str
            The plan file, for the message.

        Raises
        ------
        InputValidationError
            Every unknown name with its YAML path and the closest registered name.
        """
        problems = [
            Violation(source, where, None, f"unknown analysis step{self._hint(name)}", name)
            for where, name in requested
            if name not in self._steps
        ]
        InputValidationError.collect(problems)

    def resolve(self, requested: Iterable[str]) -> list[Step]:
        """The steps to run for ``requested``, each after the steps writing the tables it needs.

        Names keep their order of first mention; a step needed by a later one
        is placed before it. A cycle or a needed table no step writes is a
        :class:`StepContractError` (a defect of the registry).
        """
        owners = self.table_owners()
        order: list[Step] = []
        state: dict[str, str] = {}

        def visit(name: str, chain: tuple[str, ...]) -> None:
            if state.get(name) == "done":
                return
            if state.get(name) == "visiting":
                raise StepContractError(f"steps need each other: {' -> '.join((*chain, name))}")
            step = self[name]
            state[name] = "visiting"
            for table in step.needs:
                if table not in owners:
                    raise StepContractError(
                        f"step {name!r} needs table {table!r}, which no step of {self.name} writes"
                    )
                visit(owners[table], (*chain, name))
            state[name] = "done"
            order.append(step)

        for name in requested:
            visit(name, ())
        return order

    # -- running --------------------------------------------------------------------------------
    def run(
        self,
        requested: Iterable[str],
        cohort: Any,
        plan: Any,
        *,
        progress: Callable[[str], None] = lambda _: None,
    ) -> dict[str, pd.DataFrame]:
        """Run the steps ``requested`` needs, in order; return every table by name.

        Raises
        ------
        StepContractError
            A step wrote an undeclared table, missed a declared one, or a table
            lacks a declared column.
        """
        tables: dict[str, pd.DataFrame] = {}
        artifacts: dict[str, Any] = {}
        for step in self.resolve(requested):
            seen = MappingProxyType({k: tables[k] for k in step.needs if k in tables})
            held = MappingProxyType({k: artifacts[k] for k in step.needs if k in artifacts})
            out = step.run(cohort, plan, StepContext(seen, progress, held))
            _check_output(step, out)
            for spec in step.produces:
                tables[spec.name] = out[spec.name]
            for name in step.artifacts:
                artifacts[name] = out[name]
        return tables


def _check_output(step: Step, out: Mapping[str, pd.DataFrame]) -> None:
    declared = set(step.table_names) | set(step.artifacts)
    written = set(out)
    if written != declared:
        extra, missing = sorted(written - declared), sorted(declared - written)
        raise StepContractError(
            f"step {step.name!r} wrote undeclared tables {extra} and missed declared {missing}"
        )
    for spec in step.produces:
        frame = out[spec.name]
        if not isinstance(frame, pd.DataFrame):
            raise StepContractError(f"step {step.name!r}: table {spec.name!r} is not a DataFrame")
        absent = [c for c in spec.columns if c not in frame.columns]
        if absent:
            raise StepContractError(
                f"step {step.name!r}: table {spec.name!r} lacks declared columns {absent}"
            )


def requested_steps(plan: Any) -> list[tuple[str, str]]:
    """Every ``(yaml path, step name)`` in ``plan.endpoints[].analyses``, in plan order."""
    return [
        (f"endpoints[{i}].analyses[{j}]", name)
        for i, ep in enumerate(plan.endpoints)
        for j, name in enumerate(ep.analyses)
    ]
