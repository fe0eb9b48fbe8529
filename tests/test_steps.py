"""The analysis-step registry (studyval.steps): dispatch, declared tables, plan checks."""

from __future__ import annotations

import pandas as pd
import pytest

from studyval.errors import InputValidationError
from studyval.steps.registry import StepContractError, StepRegistry, TableSpec, UnknownStepError


def _registry() -> StepRegistry:
    reg = StepRegistry("test")

    @reg.step("counts", produces=[TableSpec("counts", "rows per set", ("set", "n"))])
    def _counts(cohort, plan, ctx):
        return {"counts": cohort.groupby("set").size().rename("n").reset_index()}

    @reg.step(
        "share", produces=[TableSpec("share", "share per set", ("set", "share"))], needs=("counts",)
    )
    def _share(cohort, plan, ctx):
        c = ctx.tables["counts"]
        return {"share": c.assign(share=c["n"] / c["n"].sum())[["set", "share"]]}

    @reg.step("peek", produces=[TableSpec("peek", "tables this step can see", ("name",))])
    def _peek(cohort, plan, ctx):
        return {"peek": pd.DataFrame({"name": sorted(ctx.tables)})}

    return reg


COHORT = pd.DataFrame({"set": ["a", "a", "b", "b", "b"]})


def test_needed_steps_run_first_and_in_order_of_mention():
    reg = _registry()
    assert [s.name for s in reg.resolve(["peek", "share"])] == ["peek", "counts", "share"]
    assert [s.name for s in reg.resolve(["counts", "share", "counts"])] == ["counts", "share"]


def test_run_returns_every_table_and_a_step_sees_only_what_it_needs():
    out = _registry().run(["share", "peek"], COHORT, plan=None)
    assert set(out) == {"counts", "share", "peek"}
    assert out["share"]["share"].tolist() == pytest.approx([0.4, 0.6])
    assert out["peek"]["name"].tolist() == []  # declared no needs: sees no table


def test_progress_reaches_the_caller():
    reg = StepRegistry("p")
    seen: list[str] = []

    @reg.step("x", produces=[TableSpec("x", "x")])
    def _x(cohort, plan, ctx):
        ctx.progress("working on x")
        return {"x": pd.DataFrame()}

    reg.run(["x"], COHORT, None, progress=seen.append)
    assert seen == ["working on x"]


def test_unknown_step_suggests_the_closest_name():
    with pytest.raises(
        UnknownStepError, match=r"unknown analysis step 'shares' for test; did you mean 'share'\?"
    ):
        _registry()["shares"]


def test_plan_with_unknown_steps_lists_each_with_its_yaml_path():
    with pytest.raises(InputValidationError) as info:
        _registry().check_plan(
            [("endpoints[0].analyses[0]", "counts"), ("endpoints[1].analyses[2]", "sahre")],
            source="plan.yml",
        )
    text = info.value.full_message()
    assert "endpoints[1].analyses[2]" in text
    assert "did you mean 'share'" in text
    assert "endpoints[0]" not in text


@pytest.mark.parametrize(
    ("returned", "match"),
    [
        pytest.param({}, r"missed declared \['t'\]", id="missing-table"),
        pytest.param(
            {"t": pd.DataFrame({"a": [1]}), "u": pd.DataFrame()},
            r"wrote undeclared tables \['u'\]",
            id="undeclared-table",
        ),
        pytest.param(
            {"t": pd.DataFrame({"b": [1]})}, r"lacks declared columns \['a'\]", id="column"
        ),
        pytest.param({"t": [1, 2]}, "is not a DataFrame", id="not-a-frame"),
    ],
)
def test_a_step_that_breaks_its_declaration_is_a_contract_error(returned, match):
    reg = StepRegistry("c")
    reg.step("t", produces=[TableSpec("t", "t", ("a",))])(lambda cohort, plan, ctx: returned)
    with pytest.raises(StepContractError, match=match):
        reg.run(["t"], COHORT, None)


def test_a_table_is_declared_by_one_step_only():
    reg = _registry()
    with pytest.raises(
        ValueError, match="table 'counts' of step 'again' is already written by step 'counts'"
    ):
        reg.step("again", produces=[TableSpec("counts", "dup")])(lambda c, p, x: {})
    with pytest.raises(ValueError, match="step 'share' is already registered"):
        reg.step("share", produces=[TableSpec("other", "o")])(lambda c, p, x: {})


def test_a_need_no_step_writes_and_a_cycle_are_defects():
    reg = StepRegistry("d")
    reg.step("a", produces=[TableSpec("ta", "")], needs=("nowhere",))(lambda c, p, x: {})
    with pytest.raises(StepContractError, match="needs table 'nowhere', which no step of d writes"):
        reg.resolve(["a"])
    cyc = StepRegistry("cyc")
    cyc.step("a", produces=[TableSpec("ta", "")], needs=("tb",))(lambda c, p, x: {})
    cyc.step("b", produces=[TableSpec("tb", "")], needs=("ta",))(lambda c, p, x: {})
    with pytest.raises(StepContractError, match="steps need each other: a -> b -> a"):
        cyc.resolve(["a"])


def test_including_merges_registries_without_duplicates():
    base = _registry()
    extra = StepRegistry("extra")
    extra.step("more", produces=[TableSpec("more", "")])(lambda c, p, x: {"more": pd.DataFrame()})
    merged = base.including(extra, name="merged")
    assert merged.names == ("counts", "share", "peek", "more")
    assert set(merged.tables()) == {"counts", "share", "peek", "more"}
    with pytest.raises(ValueError, match="already registered"):
        merged.including(extra)


def test_an_artefact_reaches_the_steps_that_need_it_and_never_the_tables():
    reg = StepRegistry("art")

    @reg.step("fit", produces=[TableSpec("fit_summary", "", ("n",))], artifacts=("fitted",))
    def _fit(cohort, plan, ctx):
        return {"fit_summary": pd.DataFrame({"n": [len(cohort)]}), "fitted": {"mean": 2.5}}

    @reg.step("use", produces=[TableSpec("used", "", ("mean",))], needs=("fitted",))
    def _use(cohort, plan, ctx):
        assert list(ctx.tables) == []
        return {"used": pd.DataFrame({"mean": [ctx.artifacts["fitted"]["mean"]]})}

    out = reg.run(["use"], COHORT, None)
    assert set(out) == {"fit_summary", "used"}
    assert out["used"]["mean"].tolist() == [2.5]
    with pytest.raises(ValueError, match="artefact 'fitted' of step 'again' is already written"):
        reg.step("again", produces=[], artifacts=("fitted",))(lambda c, p, x: {})
    missing = StepRegistry("m")
    missing.step("fit", produces=[], artifacts=("fitted",))(lambda c, p, x: {})
    with pytest.raises(StepContractError, match=r"missed declared \['fitted'\]"):
        missing.run(["fit"], COHORT, None)
