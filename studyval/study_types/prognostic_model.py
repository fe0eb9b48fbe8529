"""The prognostic-model study type: a Cox model at a horizon, developed and validated internally, as YAML.

A study of this type (``registry.study_type: prediction_model``, TRIPOD+AI 2024)
whose slug is not a shipped protocol is run by :func:`study_protocol`. Its plan
(:class:`~studyval.plan.PredictionModelPlan`) names the outcome (follow-up
time, event codes, the cause of interest, optional competing events, the
horizon), the Cox models (one ``primary``, ``comparator`` models compared with
it), the bootstrap internal validation and the endpoints; its ``cohort:``
section (:mod:`studyval.study_cohort`) says who is analysed, the eligibility
rules checked on the included rows, derived variables and the baseline table.

What the type provides
----------------------
* the analysis steps of :mod:`studyval.steps.prognostic` (Cox models, proportional
  hazards check, apparent performance and Harrell's bootstrap optimism
  correction, calibration, risk groups and decision curve at the horizon,
  comparison with the comparators), and two steps of its own, always run:

  ``flow``       ``flow``: TRIPOD+AI 20a: screened, excluded by reason (the
                 plan's exclusion column), included; status at the end of
                 follow-up and by the horizon; follow-up (reverse Kaplan-Meier median).
  ``baseline``   ``baseline``: TRIPOD+AI 20b, the plan's ``cohort.baseline``
                 (by outcome status at the horizon by default).

* eligibility (:func:`check_eligibility`): the columns the plan uses are present,
  :func:`studyval.study_cohort.check_cohort_rules`, complete predictors and
  follow-up for included rows, no negative time and no censoring at time 0;
* the TRIPOD+AI checklist (:func:`checklist`), with the items the data and the
  plan can fill;
* the figures of :mod:`studyval.figures.prognostic_model`.

A competing event (``outcome.competing``) is handled as the prognostic-model
steps handle it: the Cox models estimate the cause-specific hazard (competing
events censored), the time-dependent AUC counts a competing event before the
horizon as a control, and the Kaplan-Meier based measures censor it. The
competing-risk steps of :mod:`studyval.steps.competing_risks` (cumulative
incidence from cause-specific models, external validation by site) are not part
of this type: their step names are those of the prognostic steps, and a study
type's steps cannot depend on the plan.

Plan ``extra`` keys read here (each optional): ``exclusion_labels`` (exclusion
reason -> words), ``outcome_groups`` (two labels of the outcome status at the
horizon, event first), ``term_labels`` (model term -> label for figures and
tables), ``time_label`` (the time axis, ``"Days since surgery"``),
``population`` (the eligible population in words), besides those of
:mod:`studyval.steps.prognostic`.

Who is included is :func:`studyval.study_cohort.included_rows`: the plan's
``cohort.exclusion`` column and value (every row when the section declares no
exclusion column; ``exclusion_reason == "none"`` without a ``cohort`` section),
as in the prognostic steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from studyval.analysis.descriptive import baseline_table, follow_up
from studyval.checklists_tripod import tripod_ai_2024
from studyval.cohort import Cohort, absent_column_violations
from studyval.errors import Violation
from studyval.figures.prognostic_model import figure_specs
from studyval.plan import PredictionModelPlan
from studyval.protocol import StudyProtocol, flow_count, steps_analysis
from studyval.steps import prognostic
from studyval.steps.common import BASELINE, FLOW
from studyval.steps.registry import StepContext, StepRegistry, TableSpec
from studyval.study_cohort import check_cohort_rules, derive_variables, included_rows

__all__ = [
    "ALWAYS",
    "FLOW_N",
    "OWN",
    "TEMPLATES",
    "baseline",
    "check_eligibility",
    "checklist",
    "eligibility_text",
    "flow_counts",
    "included_mask",
    "needed_columns",
    "rule_bounds",
    "study_protocol",
]

#: The folder ``studyval init prognostic-model`` copies.
TEMPLATES = Path(__file__).parent / "templates" / "prognostic-model"
#: Steps every run has (the plan's endpoints name the rest).
ALWAYS = ("flow", "sample_size", "baseline", "cox_models")
#: Days, months or years per person-year.
_PER_YEAR = {"days": 365.25, "months": 12.0, "years": 1.0}


# ----------------------------------------------------------------------------- cohort


def _exclusion(plan: PredictionModelPlan) -> tuple[str, str] | None:
    """The exclusion column and its included value (None: the plan declares every row included)."""
    if plan.cohort is None:
        return "exclusion_reason", "none"
    if plan.cohort.exclusion is None:
        return None
    return plan.cohort.exclusion.column, plan.cohort.exclusion.included


def included_mask(clinical: pd.DataFrame, plan: PredictionModelPlan) -> pd.Series:
    """Rows the analysis includes (:func:`studyval.study_cohort.included_rows`)."""
    return included_rows(clinical, plan.cohort)


def rule_bounds(plan: PredictionModelPlan, column: str) -> str:
    """The plan's eligibility bound on ``column`` in words: ``"50-90"``, ``"at least 18"``.

    From the ``cohort.rules`` of ``column`` (empty when the plan has none), so
    that text about eligibility follows an amended plan.
    """
    rules = [
        r for r in (plan.cohort.rules if plan.cohort is not None else []) if r.column == column
    ]
    if not rules:
        return ""
    r = rules[0]
    if r.min is not None and r.max is not None:
        return f"{r.min:g}-{r.max:g}"
    return f"at least {r.min:g}" if r.min is not None else f"at most {r.max:g}"


def eligibility_text(plan: PredictionModelPlan) -> str:
    """The plan's eligibility rules and exclusion reasons in one sentence (TRIPOD+AI 6b draft)."""
    spec = plan.cohort
    if spec is None:
        return ""
    labels = dict(plan.extra.get("exclusion_labels") or {})
    parts = []
    for r in spec.rules:
        if r.interval is not None:
            a, b = r.interval
            parts.append(
                f"{a.replace('_', ' ')} and {b.replace('_', ' ')} at most {r.max_days} days apart"
            )
        else:
            parts.append(f"{str(r.column).replace('_', ' ')} {rule_bounds(plan, str(r.column))}")
    text = f"Eligibility rules of the plan: {'; '.join(parts)}." if parts else ""
    if labels:
        text += f" Exclusion reasons recorded: {'; '.join(labels.values())}."
    return text.strip()


def needed_columns(plan: PredictionModelPlan) -> dict[str, str]:
    """Columns the plan's analyses use: column -> what uses it, in words.

    For :func:`studyval.cohort.absent_column_violations`: a column the
    dictionary lets be left out (``required: false``) but the plan needs.
    """
    uses: dict[str, list[str]] = {}
    for m in plan.models:
        for cov in m.covariates:
            uses.setdefault(cov, []).append(m.name)
    needs = {
        cov: f"Cox model{'s' if len(names) > 1 else ''} {' and '.join(names)} (a covariate)"
        for cov, names in uses.items()
    }
    o = plan.outcome
    needs[o.time] = f"time-to-event outcome (follow-up time in {o.time_unit})"
    needs[o.event] = (
        "time-to-event outcome (status at the end of follow-up: "
        + ", ".join(f"{k} = {v}" for k, v in sorted(o.event_codes.items()))
        + ")"
    )
    return needs


def check_eligibility(
    clinical: pd.DataFrame, plan: PredictionModelPlan, *, label: str
) -> list[Violation]:
    """Every breach of the plan's rules in the validated clinical table.

    * the columns the plan uses are present (:func:`needed_columns`); where one
      is absent only that is reported;
    * the exclusion column the plan declares exists;
    * :func:`studyval.study_cohort.check_cohort_rules` (constant within patient,
      eligibility bounds, date intervals);
    * an included row has every model covariate, the follow-up time and the
      event code;
    * the event code is one the plan declares; the follow-up time is not
      negative, and 0 only with an event (a row censored at time 0 was never
      followed).

    Rows are numbered as in the file (header is row 1).
    """
    absent = absent_column_violations(clinical, needed_columns(plan), label=label)
    if absent:
        return absent
    excl = _exclusion(plan)
    if excl is not None and excl[0] not in clinical.columns:
        return [
            Violation(
                label,
                excl[0],
                None,
                f"the table has no exclusion column (the plan's cohort.exclusion); give every row "
                f"its exclusion reason ({excl[1]} for an included row)",
            )
        ]
    problems = check_cohort_rules(clinical, plan.cohort, label=label)
    inc = included_mask(clinical, plan)
    fix = (
        f"set {excl[0]} to the reason the row is excluded"
        if excl is not None
        else "declare an exclusion column in the plan's cohort section"
    )

    def flag(mask: pd.Series, col: str, message: Callable[[Any], str]) -> None:
        for idx in clinical.index[(inc & mask.fillna(False)).to_numpy(bool)]:
            problems.append(
                Violation(label, col, int(idx) + 2, message(idx), str(clinical.at[idx, col]))
            )

    o = plan.outcome
    for col in needed_columns(plan):
        flag(
            clinical[col].isna(),
            col,
            lambda _, col=col: f"missing for an included row; {col} is needed ({fix})",
        )
    codes = pd.to_numeric(clinical[o.event], errors="coerce")
    flag(
        codes.notna() & ~codes.isin(list(o.event_codes)),
        o.event,
        lambda _: (
            "not an event code of the plan ("
            + ", ".join(f"{k} = {v}" for k, v in sorted(o.event_codes.items()))
            + ")"
        ),
    )
    t = pd.to_numeric(clinical[o.time], errors="coerce")
    flag(t < 0, o.time, lambda _: "negative follow-up time")
    flag(
        (t == 0) & (codes == 0),
        o.time,
        lambda _: (
            f"an included row censored at time 0 ({o.time} 0, {o.event} 0) was never followed; "
            "give the time of the last contact (an event at time 0 is accepted)"
        ),
    )
    return problems


# ----------------------------------------------------------------------------- flow


def flow_counts(
    cohort: Cohort,
    plan: PredictionModelPlan,
    *,
    reason_labels: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Participant flow and outcome counts (TRIPOD+AI 20a): ``stage, group, n, detail``.

    Stages: ``screened``; ``excluded`` and one ``excluded_reason`` row per
    level of the exclusion column (``detail`` its label: ``reason_labels``, the
    plan's ``extra.exclusion_labels``, else the level in words); ``included``;
    ``status_end_of_follow_up`` (one row per event code); ``by_horizon`` (the
    cause, each competing event, censored before the horizon, followed beyond
    it event-free); ``follow_up`` (reverse Kaplan-Meier median, observed
    median, range, person-years, in ``detail``).
    """
    clin = cohort.clinical
    o = plan.outcome
    h = o.horizon
    labels = dict(plan.extra.get("exclusion_labels") or {})
    labels.update(reason_labels or {})
    rows: list[dict[str, Any]] = []

    def add(stage: str, n: int, group: str = "", detail: str = "") -> None:
        rows.append({"stage": stage, "group": group, "n": int(n), "detail": detail})

    inc_mask = included_mask(clin, plan)
    add("screened", len(clin))
    add("excluded", int((~inc_mask).sum()))
    excl = _exclusion(plan)
    if excl is not None and excl[0] in clin.columns:
        column, included = excl
        col = clin[column]
        levels = (
            [str(c) for c in col.cat.categories]
            if isinstance(col.dtype, pd.CategoricalDtype)
            else sorted(col.dropna().astype(str).unique())
        )
        text = col.astype("string")
        for reason in levels:
            if reason != included:
                add(
                    "excluded_reason",
                    int(((text == reason).fillna(False) & ~inc_mask).sum()),
                    reason,
                    labels.get(reason, reason.replace("_", " ")),
                )
    inc = clin[inc_mask.to_numpy(bool)]
    add("included", len(inc))
    if len(inc) == 0:
        return pd.DataFrame(rows)
    t = inc[o.time].astype(float).to_numpy()
    e = inc[o.event].astype(int).to_numpy()
    for code, label in sorted(o.event_codes.items()):
        add("status_end_of_follow_up", int((e == code).sum()), label)
    by_h = t <= h
    add("by_horizon", int(((e == o.cause) & by_h).sum()), o.event_codes[o.cause])
    for c in o.competing:
        add("by_horizon", int(((e == c) & by_h).sum()), o.event_codes[c])
    add("by_horizon", int(((e == 0) & by_h).sum()), "censored before the horizon")
    add("by_horizon", int((t > h).sum()), "followed beyond the horizon event-free")
    fu = follow_up(t, e)  # reverse Kaplan-Meier median, observed median, range, person-time
    med = fu.median_reverse_km
    digits = 0 if o.time_unit == "days" else 1
    add(
        "follow_up",
        len(inc),
        "median (reverse Kaplan-Meier)",
        f"{med:.{digits}f}" if np.isfinite(med) else "not reached",
    )
    add("follow_up", len(inc), "median (observed)", f"{fu.median_observed:.{digits}f}")
    add("follow_up", len(inc), "range", f"{fu.minimum:.{digits}f}-{fu.maximum:.{digits}f}")
    add("follow_up", len(inc), "person-years", f"{fu.total_time / _PER_YEAR[o.time_unit]:.1f}")
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- baseline


def outcome_groups(plan: PredictionModelPlan) -> tuple[str, str]:
    """Labels of the outcome status at the horizon: (event by the horizon, none observed)."""
    given = plan.extra.get("outcome_groups")
    if given:
        a, b = given
        return str(a), str(b)
    o = plan.outcome
    event = o.event_codes[o.cause]
    return f"{event} by {o.horizon_label}", f"no {event} observed by {o.horizon_label}"


def _as_category(col: pd.Series) -> pd.Series:
    """A boolean column as yes/no levels; others unchanged."""
    if is_bool_dtype(col.dtype):
        return pd.Series(
            pd.Categorical(
                np.where(col.isna(), None, np.where(col.fillna(False).astype(bool), "yes", "no")),
                categories=["yes", "no"],
            ),
            index=col.index,
        )
    return col


def baseline(cohort: Cohort, plan: PredictionModelPlan) -> pd.DataFrame:
    """Baseline characteristics of the included rows (TRIPOD+AI 20b).

    The plan's ``cohort.baseline`` gives the groupings (``by``; ``outcome`` is
    the status at the horizon, :func:`outcome_groups`) and the variables
    (derived variables allowed). Without a ``cohort`` section: by outcome
    status, the models' numeric covariates as continuous and the others as
    categorical. One :func:`~studyval.analysis.descriptive.baseline_table` per
    grouping, stacked, with the grouping named in column ``by`` (the overall
    column once, with the first grouping).
    """
    clin = derive_variables(cohort.clinical, plan.cohort)
    inc = clin[included_mask(clin, plan).to_numpy(bool)].copy()
    o = plan.outcome
    event, none = outcome_groups(plan)
    status = (inc[o.event].astype(int) == o.cause) & (inc[o.time].astype(float) <= o.horizon)
    inc["outcome"] = pd.Categorical(np.where(status, event, none), categories=[event, none])
    if plan.cohort is not None:
        spec = plan.cohort.baseline
        by, continuous, categorical = list(spec.by), list(spec.continuous), list(spec.categorical)
    else:
        covs = list(dict.fromkeys(c for m in plan.models for c in m.covariates))
        by = ["outcome"]
        continuous = [
            c for c in covs if is_numeric_dtype(inc[c].dtype) and not is_bool_dtype(inc[c].dtype)
        ]
        categorical = [c for c in covs if c not in continuous]
    for c in categorical:
        inc[c] = _as_category(inc[c])
    parts = []
    for k, group in enumerate(by or [None]):
        tab = baseline_table(inc, group=group, continuous=continuous, categorical=categorical)
        if k > 0:
            tab = tab[tab["group"] != tab["group"].iloc[0]]
        parts.append(tab.assign(by=group or ""))
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- steps

#: The participant flow (counts in column ``n``, as :mod:`studyval.figures.prognostic_model` reads them).
FLOW_N = TableSpec(FLOW.name, FLOW.description, ("stage", "group", "n", "detail"))
#: The type's own steps.
OWN = StepRegistry("prognostic-model (flow and baseline)")


@OWN.step("flow", produces=[FLOW_N])
def _flow_step(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Participant flow, outcome status at the horizon and follow-up."""
    ctx.progress("participant flow and baseline characteristics")
    return {"flow": flow_counts(cohort, plan)}


@OWN.step("baseline", produces=[BASELINE])
def _baseline_step(cohort: Cohort, plan: PredictionModelPlan, ctx: StepContext) -> dict[str, Any]:
    """Baseline characteristics by the plan's groupings (outcome status at the horizon)."""
    return {"baseline": baseline(cohort, plan)}


#: The steps a plan of this type may name.
REGISTRY = prognostic.REGISTRY.including(OWN, name="prognostic-model")


# ----------------------------------------------------------------------------- checklist


def checklist(
    plan: PredictionModelPlan, tables: dict[str, pd.DataFrame], cohort: Cohort
) -> pd.DataFrame:
    """The TRIPOD+AI 2024 checklist, with what the plan and the tables can fill."""
    return tripod_ai_2024(plan, tables, content=tripod_content(plan, tables, cohort))


def _fmt(x: float) -> str:
    return f"{x:.3f}"


def tripod_content(
    plan: PredictionModelPlan, t: Mapping[str, pd.DataFrame], cohort: Cohort
) -> dict[str, tuple[str, str]]:
    """TRIPOD+AI text of a study of this type: item -> (text, report section).

    Only what the plan and the tables say; every item a person must write
    (eligibility wording beyond the plan's rules, blinding, predictor
    measurement) is left to the checklist's placeholder.
    """
    flow = t["flow"]

    def n(stage: str, group: str | None = None) -> int:
        return flow_count(flow, stage, column="n", group=group)

    o = plan.outcome
    event = o.event_codes[o.cause]
    out: dict[str, tuple[str, str]] = {}
    if eligibility_text(plan):
        out["6b"] = (eligibility_text(plan), "Participant flow")
    out |= {
        "5a": (
            " ".join(plan.registry.design.split())
            + (
                f"; development data only, internal validation by {plan.sets.internal_validation}."
                if not plan.sets.external_sites
                else "."
            ),
            "Study and registration",
        ),
        "7": (
            f"Clinical table validated against the data dictionary {plan.dictionary} (types, "
            "ranges, levels) and the plan's eligibility rules; direct identifiers removed before "
            "analysis.",
            "Appendix: data dictionary",
        ),
        "12b": (
            "Continuous predictors entered linearly (per unit), categorical predictors as "
            "indicators against their first level, boolean predictors as 0/1; no selection. "
            "Any transformation is done in the data preparation and declared in the dictionary.",
            "Cox model",
        ),
        "12c": (
            "Cox proportional-hazards model (Efron ties)"
            + (" for the cause-specific hazard (competing events censored)" if o.competing else "")
            + "; all pre-specified predictors; proportional hazards checked with scaled "
            "Schoenfeld residuals; Harrell's bootstrap optimism correction "
            f"({plan.sets.n_bootstrap} resamples, every model refitted).",
            "Cox model",
        ),
        "12e": (
            f"Harrell's and Uno's C, time-dependent AUC (IPCW) at {o.horizon_label}, Brier score "
            f"and IPA at {o.horizon_label}, calibration at {o.horizon_label} (grouped "
            "Kaplan-Meier, smooth curve, ICI/E50/E90), decision curve.",
            "Discrimination",
        ),
        "12f": ("No updating or recalibration (development study).", "Cox model"),
        "12g": (
            f"Risk = 1 - S0({o.horizon_label})^exp(linear predictor), studyval Cox "
            "implementation; the results bundle keeps the coefficients and the baseline survival "
            "as tables, so that the model can be applied to new patients.",
            "Cox model",
        ),
        "13": (
            "No resampling or weighting for the event rate (the survival model uses all follow-up).",
            "Cox model",
        ),
        "18f": (
            "Analysis code: studyval (version and git commit in the provenance section).",
            "Provenance",
        ),
    }
    if "included" in set(flow["stage"]):
        excl = flow[(flow["stage"] == "excluded_reason") & (flow["n"] > 0)]
        reasons = "; ".join(f"{r.detail} {r.n}" for r in excl.itertuples())
        fu = flow[flow["stage"] == "follow_up"].set_index("group")["detail"]
        comp = "".join(
            f", {n('by_horizon', o.event_codes[c])} {o.event_codes[c]}" for c in o.competing
        )
        out["20a"] = (
            f"Screened {n('screened')}, excluded {n('excluded')}"
            + (f" ({reasons})" if reasons else "")
            + f", included {n('included')}; by {o.horizon_label}: "
            f"{n('by_horizon', event)} {event}{comp}, "
            f"{n('by_horizon', 'censored before the horizon')} censored before the horizon; "
            f"median follow-up {fu.get('median (reverse Kaplan-Meier)', '')} {o.time_unit} "
            "(reverse Kaplan-Meier).",
            "Participant flow",
        )
        out["12a"] = (
            f"All {n('included')} included participants develop the model; internal validation "
            f"by {plan.sets.n_bootstrap} bootstrap resamples with refitting (no data split).",
            "Discrimination",
        )
        out["11"] = (
            "Complete-case analysis: a row with a missing predictor or outcome must be excluded "
            "with its reason (counted in the flow); no imputation; no missing values among "
            "included rows.",
            "Participant flow",
        )
    if "baseline" in t:
        out["20b"] = (
            "Baseline table of the included participants by "
            + ", ".join(
                "outcome status at the horizon" if b == "outcome" else str(b)
                for b in dict.fromkeys(t["baseline"]["by"])
                if b
            )
            + ".",
            "Baseline characteristics",
        )
    if not plan.sets.external_sites:
        out["16"] = ("No separate evaluation data (internal validation only).", "Discrimination")
        out["20c"] = ("Not applicable: development data only.", "Baseline characteristics")
        out["23b"] = ("No clusters (centres) analysed separately.", "Discrimination")
    if "cox_fit" in t:
        out["21"] = (
            "; ".join(
                f"{r.model}: {int(r.n)} participants, {int(r.n_events)} events"
                for r in t["cox_fit"].itertuples()
            )
            + ".",
            "Cox model",
        )
        out["22"] = (
            f"Full coefficients and baseline survival at {o.horizon_label} in the report and "
            "bundle.",
            "Cox model",
        )
    if "optimism" in t:
        perf = t["optimism"]
        prim = perf[perf["model"] == plan.primary_model].set_index("measure")
        out["23a"] = (
            f"Harrell's C {_fmt(prim.loc['harrell_c', 'apparent'])} apparent, "
            f"{_fmt(prim.loc['harrell_c', 'corrected'])} optimism-corrected; AUC at "
            f"{o.horizon_label} {_fmt(prim.loc['auc_horizon', 'corrected'])} corrected; "
            f"calibration slope {_fmt(prim.loc['calibration_slope', 'corrected'])} corrected.",
            "Discrimination",
        )
    if "risk_groups" in t:
        cuts = ", ".join(f"{c:g}" for c in plan.extra.get("risk_groups", [0.1, 0.2]))
        out["15"] = (
            f"Output: predicted probability of {event} by {o.horizon_label}; risk groups at "
            f"{cuts} fixed in the plan (illustrative, not clinical thresholds).",
            "Risk groups",
        )
    out["24"] = ("No updating.", "Cox model")
    out["27a"] = (
        "A missing predictor prevents a prediction (complete-case model); no imputation rule "
        "is provided.",
        "Cox model",
    )
    return out


# ----------------------------------------------------------------------------- protocol


def study_protocol(slug: str, *, steps: StepRegistry | None = None) -> StudyProtocol:
    """The protocol of a prognostic-model study ``slug`` written only as YAML.

    The Cox models are fitted from the clinical table
    (``requires_predictions=False``); derived variables of the plan's
    ``cohort`` section are computed where they are used (baseline table).
    ``steps``: a registry that includes :data:`REGISTRY`'s steps (a registered
    protocol's, named after it), default :data:`REGISTRY`; every run has
    :data:`ALWAYS`. A registered protocol of the type (refracture-pvp) replaces
    the fields it has its own of (:func:`dataclasses.replace`).
    """
    registry = steps or REGISTRY
    return StudyProtocol(
        slug=slug,
        check_eligibility=check_eligibility,
        analyse=steps_analysis(registry, always=ALWAYS),
        checklist=checklist,
        figure_specs=figure_specs,
        requires_predictions=False,
        steps=registry,
    )
