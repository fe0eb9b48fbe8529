"""Figures of cirrhosis-sarcopenia: each drawn from the bundle's tables at any width, with its caption.

The flow diagram's boxes (:func:`flow_stages`) and the captions are the
study's; the drawing functions are the shared ones of :mod:`studyval.figures`
and :mod:`studyval.figures.competing_risks`.
"""

from __future__ import annotations

import pandas as pd

from studyval import figures
from studyval.figures import competing_risks as crfig
from studyval.figures.spec import FigureSpec, ci_text, count
from studyval.plan import PredictionModelPlan
from studyval.protocol import flow_count

__all__ = ["figure_specs", "flow_stages"]

#: The analysis sets, in report order.
SETS = ("internal", "external")


def flow_stages(flow: pd.DataFrame, plan: PredictionModelPlan) -> pd.DataFrame:
    """Boxes of the TRIPOD+AI flow diagram from the flow counts."""

    def n(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_patients"] > 0)]
    excl_lines = "\n".join(
        f"{r.group.replace('_', ' ')}: {r.n_patients}" for r in excl.itertuples()
    )
    boxes = [
        {
            "key": "screened",
            "text": f"Patients with cirrhosis screened\nn = {n('screened')}",
            "x": 0.36,
            "row": 0,
            "parent": None,
            "side": False,
        },
        {
            "key": "excluded",
            "text": f"Excluded, n = {n('excluded')}\n{excl_lines}",
            "x": 0.80,
            "row": 0,
            "parent": "screened",
            "side": True,
        },
        {
            "key": "included",
            "text": f"Included\nn = {n('included')}",
            "x": 0.36,
            "row": 1,
            "parent": "screened",
            "side": False,
        },
    ]
    labels = {"internal": "Development centre", "external": "External centre"}
    for x, set_ in ((0.18, "internal"), (0.62, "external")):
        site = flow.loc[(flow["stage"] == "included_set") & (flow["set"] == set_), "site"].iloc[0]
        lines = [
            f"{r.group}: {r.n_patients}"
            for r in flow[(flow["stage"] == "outcome") & (flow["set"] == set_)].itertuples()
        ]
        boxes.append(
            {
                "key": f"set_{set_}",
                "text": f"{labels[set_]} ({site})\nn = {n('included_set', set=set_)}",
                "x": x,
                "row": 2,
                "parent": "included",
                "side": False,
            }
        )
        boxes.append(
            {
                "key": f"out_{set_}",
                "text": "Outcome (whole follow-up)\n" + "\n".join(lines),
                "x": x,
                "row": 3,
                "parent": f"set_{set_}",
                "side": False,
            }
        )
    return pd.DataFrame(boxes)


_SET_WORDS = {"internal": "development centre", "external": "external centre"}


def figure_specs(tables: dict[str, pd.DataFrame], plan: PredictionModelPlan) -> list[FigureSpec]:
    """The report's figures, each drawn from the result tables at any width, with its caption.

    Captions state what is shown, the patients and events behind it and the
    interval method, all read from the tables.
    """
    o = plan.outcome
    flow = tables["flow"]
    level = 1 - plan.alpha
    death, transplant = o.event_codes[o.cause], [o.event_codes[c] for c in o.competing]

    def fn(stage: str, **where: str) -> int:
        return flow_count(flow, stage, **where)

    def outcomes(set_: str, stage: str = "outcome") -> str:
        parts = [f"{count(fn(stage, set=set_, group=death))} {death}s"]
        parts += [f"{count(fn(stage, set=set_, group=c))} {c}s" for c in transplant]
        return ", ".join(parts)

    sets_text = "; ".join(
        f"{_SET_WORDS.get(s, s)} n = {count(fn('included_set', set=s))} ({outcomes(s)})"
        for s in SETS
    )
    specs = [
        FigureSpec(
            "flow",
            f"Participant flow: {count(fn('screened'))} patients with cirrhosis screened, "
            f"{count(fn('excluded'))} excluded, {count(fn('included'))} included ({sets_text} over "
            "the whole follow-up). Counts are patients.",
            lambda w: figures.flow_figure(flow_stages(tables["flow"], plan), width_mm=w),
            "double",
        )
    ]
    prev = tables["prevalence"]
    prev = prev[prev["sex"] == "all"].set_index("set")
    groups_text = "; ".join(
        f"{_SET_WORDS.get(s, s)}: n = {count(prev.loc[s, 'n'])} patients, "
        f"{count(prev.loc[s, 'n_sarcopenia'])} with sarcopenia, {outcomes(s)}"
        for s in SETS
        if s in prev.index
    )
    specs.append(
        FigureSpec(
            "cumulative_incidence",
            f"Aalen-Johansen cumulative incidence of {death} and of {', '.join(transplant)} "
            f"(competing events) by sarcopenia ({groups_text}), with pointwise "
            f"{ci_text('(cmprsk::cuminc variance, log(-log) scale)', level)} bands and the numbers "
            "at risk; curves stop where fewer than 10 patients remain at risk; dotted line: the "
            f"{o.horizon_label} horizon; Gray's test p values in the panel titles.",
            lambda w: crfig.cumulative_incidence_figure(
                tables["cif_curves"],
                gray=tables["gray_test"],
                horizon=plan.outcome.horizon,
                time_label="Days since index CT",
                width_mm=w,
            ),
            "double",
        )
    )
    cal = tables["calibration_groups"]
    first = cal[cal["model"] == cal["model"].iloc[0]]
    by_set = first.groupby("set", sort=False)[["n", "n_deaths"]].sum()
    cal_text = "; ".join(
        f"{_SET_WORDS.get(s, s)}{' (apparent)' if s == 'internal' else ''}: n = "
        f"{count(r.n)} patients, {count(r.n_deaths)} {death}s by {o.horizon_label}"
        for s, r in by_set.iterrows()
    )
    n_groups = int(first.groupby("set")["group"].nunique().max())
    specs.append(
        FigureSpec(
            "calibration",
            f"Calibration of {', '.join(plan.model_names)} at {o.horizon_label}: mean predicted "
            f"against observed (Aalen-Johansen) cumulative incidence of {death} in {n_groups} "
            f"quantile groups of predicted risk ({cal_text}); bars: "
            f"{ci_text('(cmprsk::cuminc variance, log(-log) scale)', level)} of the observed "
            "incidence; dotted line: ideal calibration.",
            lambda w: crfig.calibration_groups_figure(
                tables["calibration_groups"],
                models=plan.model_names,
                horizon_label=plan.outcome.horizon_label,
                width_mm=w,
            ),
            "double",
        )
    )
    return specs
