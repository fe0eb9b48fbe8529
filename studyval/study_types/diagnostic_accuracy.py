"""The diagnostic-accuracy study type: a new STARD 2015 study written only as YAML.

A plan whose ``registry.study_type`` is ``diagnostic_accuracy`` and whose slug
is not a shipped protocol runs here. The analyses are the steps of the type
(:mod:`studyval.steps.diagnostic`: AUC, ROC, accuracy at pre-specified
thresholds, paired and joint DeLong comparisons, calibration, decision curves,
subgroups, clustered AUC, Buderer sample size); this module adds the steps
every diagnostic-accuracy study has and a registered protocol would otherwise
code itself, all driven by the plan's ``cohort:`` section
(:mod:`studyval.study_cohort`):

* ``flow`` -- participant flow (STARD item 19): screened, excluded by reason
  (``cohort.exclusion``), included (by site where the data have one, and by
  reference-standard class), split (development, internal, external), for each
  evaluation set the index-test failures of the primary model and the analysed
  cases by class. Columns as :data:`studyval.steps.common.FLOW` with
  ``stage, set, site, group, n_patients, n_cases, detail``, the layout every
  diagnostic protocol writes.
* ``baseline`` -- baseline characteristics (STARD item 20) of the included
  primary cases, one block per grouping of ``cohort.baseline.by``
  (``outcome`` is the plan's reference standard, ``split`` the analysis set,
  any other name a clinical or derived column).

Eligibility is the section's rules (:func:`~studyval.study_cohort.check_cohort_rules`),
one primary case per patient where ``sets.primary_cases`` names a column, and
the columns the plan needs; the prediction table is checked by the join
(:func:`studyval.cohort.join_predictions`), after which the section's derived
variables are added (:func:`~studyval.study_cohort.derive_variables`) so that
subgroups may name them. Every run has the flow, the baseline table, the
models, the sample-size check, the AUC and the accuracy at the pre-specified
thresholds (what STARD items 19-24 require); the plan's endpoints add the rest.

A study may have only an internal held-out set (``sets.primary: internal``,
no secondary set, ``external_sites: []``) and no ``site`` column: nothing here
needs an external set or a site.

The registered study ovcf-chronicity is an instance of this type
(:mod:`studyval.protocols.ovcf_chronicity`): it includes :data:`FLOW_STEPS`
and the type's join (its bone-density category passed as ``derive``), derives
its variables from its plan's ``cohort`` section, adds its own baseline extras
through :func:`baseline_counts`, and draws the type's figures in its own words
(:class:`studyval.figures.diagnostic_accuracy.Wording`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from studyval.analysis.descriptive import baseline_table, median_range
from studyval.checklists import stard_2015_generic
from studyval.cohort import (
    Cohort,
    absent_column_violations,
    failure_reason_summary,
    join_predictions,
)
from studyval.errors import Violation
from studyval.figures.diagnostic_accuracy import figure_specs
from studyval.plan import AnalysisPlan
from studyval.protocol import StudyProtocol, steps_analysis
from studyval.steps import diagnostic
from studyval.steps.common import BASELINE, FLOW
from studyval.steps.registry import StepContext, StepRegistry
from studyval.study_cohort import check_cohort_rules, derive_variables, included_rows

__all__ = [
    "ALWAYS",
    "FLOW_STEPS",
    "REGISTRY",
    "TEMPLATES",
    "baseline_counts",
    "check_eligibility",
    "checklist",
    "flow_counts",
    "join",
    "primary_case_mask",
    "study_protocol",
]

#: The folder ``studyval init diagnostic-accuracy`` copies.
TEMPLATES = Path(__file__).parent / "templates" / "diagnostic-accuracy"
#: The splits of the prediction contract, in flow order.
SPLITS = ("development", "internal", "external")
#: The exclusion column and included value of a plan without a ``cohort`` section.
_EXCLUSION = "exclusion_reason"
_INCLUDED = "none"


# ----------------------------------------------------------------------------- cohort helpers


def _exclusion(plan: AnalysisPlan) -> tuple[str | None, str]:
    """The exclusion column and its included value, as :func:`~studyval.study_cohort.included_rows` reads them.

    A ``cohort`` section's ``exclusion`` (``None``: every row included); without a
    ``cohort`` section the convention of the shipped dictionaries, ``exclusion_reason``
    with ``none`` for included rows.
    """
    spec = plan.cohort
    if spec is None:
        return _EXCLUSION, _INCLUDED
    if spec.exclusion is None:
        return None, _INCLUDED
    return spec.exclusion.column, spec.exclusion.included


def primary_case_mask(frame: pd.DataFrame, plan: AnalysisPlan) -> pd.Series:
    """Rows of ``frame`` that are primary cases (``sets.primary_cases``; every row for ``all_cases``)."""
    col = plan.sets.primary_cases
    if col == "all_cases":
        return pd.Series(True, index=frame.index)
    return frame[col].fillna(False).astype(bool)


def _included(clinical: pd.DataFrame, plan: AnalysisPlan) -> pd.Series:
    return included_rows(clinical, plan.cohort)


def _class_of(frame: pd.DataFrame, plan: AnalysisPlan) -> pd.Series:
    return frame[plan.outcome.variable].astype("string")


# ----------------------------------------------------------------------------- eligibility


def _needed_columns(plan: AnalysisPlan) -> dict[str, str]:
    """Optional clinical columns the plan uses: column -> what uses it, in words."""
    needs: dict[str, str] = {}
    derived = {v.name for v in plan.cohort.derived} if plan.cohort is not None else set()
    for sg in plan.subgroups:
        if sg.variable not in derived and sg.variable != "site":
            needs.setdefault(sg.variable, f"subgroup analysis by {sg.variable}")
    if plan.cohort is not None:
        for v in plan.cohort.derived:
            needs.setdefault(v.source, f"derived variable {v.name}")
        for key in ("continuous", "categorical"):
            for col in getattr(plan.cohort.baseline, key):
                if col not in derived:
                    needs.setdefault(col, "baseline table")
    if plan.sets.primary_cases != "all_cases":
        needs.setdefault(plan.sets.primary_cases, "primary analysis (sets.primary_cases)")
    return needs


def check_eligibility(clinical: pd.DataFrame, plan: AnalysisPlan, *, label: str) -> list[Violation]:
    """The plan's eligibility rules on the clinical table.

    * every column the plan uses is present (subgroups, derived variables,
      baseline, the primary-case column);
    * the ``cohort`` section's rules (:func:`~studyval.study_cohort.check_cohort_rules`):
      values constant within a patient, bounds and date intervals of the
      included rows;
    * where ``sets.primary_cases`` names a boolean column, exactly one primary
      case per patient (the independence the DeLong and binomial methods need).

    The prediction table's rules are checked when it is joined (:func:`join`).
    """
    problems = absent_column_violations(clinical, _needed_columns(plan), label=label)
    problems += check_cohort_rules(clinical, plan.cohort, label=label)
    col = plan.sets.primary_cases
    if col != "all_cases" and col in clinical.columns and "patient_id" in clinical.columns:
        n = clinical[col].fillna(False).astype(bool).groupby(clinical["patient_id"], observed=True).sum()
        for pid in n.index[n != 1]:
            idx = clinical.index[clinical["patient_id"] == pid]
            problems.append(
                Violation(
                    label,
                    col,
                    int(idx[0]) + 2,
                    f"patient {pid} has {int(n[pid])} primary cases ({col} true); exactly one is "
                    "required (sets.primary_cases)",
                )
            )
    return problems


# ----------------------------------------------------------------------------- join


def join(
    clinical: pd.DataFrame,
    predictions: pd.DataFrame,
    plan: AnalysisPlan,
    *,
    clinical_label: str,
    predictions_label: str,
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> Cohort:
    """:func:`studyval.cohort.join_predictions`, then the ``cohort`` section's derived variables.

    The join reads inclusion from the plan's ``cohort.exclusion``
    (:func:`~studyval.study_cohort.included_rows`). A prediction table without
    ``site`` gets it from the clinical table (subgroups by site read it there).

    The derived variables are added to both the clinical table (flow and
    baseline) and the joined prediction table (subgroups read them there);
    ``derive``, where given, then adds a registered protocol's own variables
    (those the ``cohort`` section cannot express) to both tables. A protocol
    passes it with :func:`functools.partial`.
    """
    cohort = join_predictions(
        clinical,
        predictions,
        plan,
        clinical_label=clinical_label,
        predictions_label=predictions_label,
    )
    preds = cohort.predictions
    if "site" in clinical.columns and "site" not in preds.columns:
        # a prediction table may leave `site` out; the clinical table is the source of it
        preds = preds.assign(site=preds["case_id"].map(clinical.set_index("case_id")["site"]))
    def derived(frame: pd.DataFrame) -> pd.DataFrame:
        out = derive_variables(frame, plan.cohort)
        return derive(out) if derive is not None else out

    return Cohort(clinical=derived(clinical), predictions=derived(preds))


# ----------------------------------------------------------------------------- flow


def _sets_primary_first(plan: AnalysisPlan) -> list[str]:
    """The evaluation sets, the primary first (the order of the flow diagram's columns)."""
    sets = diagnostic.evaluation_sets(plan)
    return [plan.sets.primary, *(s for s in sets if s != plan.sets.primary)]


def flow_counts(cohort: Cohort, plan: AnalysisPlan) -> pd.DataFrame:
    """Participant-flow counts for the STARD diagram (item 19).

    Returns
    -------
    DataFrame
        ``stage, set, site, group, n_patients, n_cases, detail``; stages
        ``screened``, ``excluded``, ``excluded_reason`` (group = the reason, one
        row per level of the exclusion column), ``included``,
        ``included_site_class`` (site where the table has one, else empty;
        group = reference-standard class of the primary cases),
        ``split`` (set = development, internal, external; patients of the
        primary model's prediction rows), and per evaluation set (the primary first)
        ``index_test_failed`` (primary cases the primary model could not score,
        ``detail`` = failure categories with counts) and ``analysed``
        (group = class).
    """
    clin = cohort.clinical
    pos, neg = plan.outcome.positive, plan.outcome.negative
    rows: list[dict[str, object]] = []

    def add(stage: str, frame: pd.DataFrame, *, set_: str = "", site: str = "",
            group: str = "", detail: str = "") -> None:
        rows.append(
            {
                "stage": stage,
                "set": set_,
                "site": site,
                "group": group,
                "n_patients": int(frame["patient_id"].nunique()),
                "n_cases": len(frame),
                "detail": detail,
            }
        )

    inc = _included(clin, plan).to_numpy(bool)
    add("screened", clin)
    column, included_value = _exclusion(plan)
    excluded = clin[~inc]
    add("excluded", excluded)
    if column is not None:
        values = clin[column]
        levels = (
            [str(c) for c in values.cat.categories]
            if isinstance(values.dtype, pd.CategoricalDtype)
            else sorted(values.dropna().astype(str).unique())
        )
        text = excluded[column].astype("string")
        for reason in levels:
            if reason != included_value:
                add("excluded_reason", excluded[(text == reason).fillna(False).to_numpy(bool)], group=reason)
        if excluded[column].isna().any():
            add("excluded_reason", excluded[excluded[column].isna()], group="not given")
    included = clin[inc]
    add("included", included)
    prim = included[primary_case_mask(included, plan).to_numpy(bool)]
    sites: list[str] = (
        [str(s) for s in clin["site"].cat.categories]
        if "site" in clin.columns and isinstance(clin["site"].dtype, pd.CategoricalDtype)
        else sorted(clin["site"].dropna().astype(str).unique()) if "site" in clin.columns
        else [""]
    )
    cls = _class_of(prim, plan)
    for site in sites:
        at_site = prim if site == "" else prim[(prim["site"].astype(str) == site).to_numpy(bool)]
        cls_site = cls.loc[at_site.index]
        for c in (pos, neg):
            pids = set(at_site.loc[(cls_site == c).fillna(False).to_numpy(bool), "patient_id"])
            add("included_site_class", included[included["patient_id"].isin(pids)], site=site, group=c)
    preds = cohort.predictions
    primary = preds[preds["model_name"] == plan.primary_model]
    split_of = primary.drop_duplicates("patient_id").set_index("patient_id")["split"].astype(str)
    for split in SPLITS:
        pids = set(split_of.index[split_of == split])
        add("split", included[included["patient_id"].isin(pids)], set_=split)
    for set_ in _sets_primary_first(plan):
        in_set = diagnostic.primary_cases(cohort, plan, set_)
        in_set = in_set[in_set["model_name"] == plan.primary_model]
        failed = in_set[in_set["status"] == "failed"]
        add("index_test_failed", failed, set_=set_,
            detail=failure_reason_summary(failed["failure_reason"]))
        ok = in_set[in_set["status"] == "ok"]
        for c in (pos, neg):
            add("analysed", ok[ok["positive"] == (c == pos)], set_=set_, group=c)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- baseline


def _grouping_column(name: str, plan: AnalysisPlan) -> tuple[str, str]:
    """``cohort.baseline.by`` entry -> (grouping label, column)."""
    if name == "outcome":
        return "class", plan.outcome.variable
    return name, name


def baseline_counts(cohort: Cohort, plan: AnalysisPlan) -> pd.DataFrame:
    """Baseline characteristics of the included primary cases, one block per grouping.

    Groupings are ``cohort.baseline.by`` (``outcome`` -> the reference
    standard, labelled ``class``; ``split`` -> the analysis set of the primary
    model's prediction; any other name a column of the clinical table or a
    derived variable). Variables are ``cohort.baseline.continuous`` and
    ``categorical``; without a ``cohort`` section the table has the class
    counts only. Summaries: :func:`studyval.analysis.descriptive.baseline_table`.
    """
    clin = cohort.clinical
    rows = clin[_included(clin, plan).to_numpy(bool)]
    rows = rows[primary_case_mask(rows, plan).to_numpy(bool)].copy()
    preds = cohort.predictions
    primary = preds[preds["model_name"] == plan.primary_model]
    split_of = primary.drop_duplicates("case_id").set_index("case_id")["split"]
    rows["split"] = pd.Categorical(
        rows["case_id"].map(split_of.astype(str)),
        categories=[s for s in SPLITS if s in set(split_of.astype(str))],
    )
    spec = plan.cohort
    by = list(spec.baseline.by) if spec is not None else ["outcome"]
    continuous = list(spec.baseline.continuous) if spec is not None else []
    categorical = list(spec.baseline.categorical) if spec is not None else []
    parts = []
    for name in by:
        grouping, col = _grouping_column(name, plan)
        others = [_grouping_column(o, plan)[1] for o in by if o != name]
        order = (
            [plan.outcome.positive, plan.outcome.negative] if col == plan.outcome.variable else None
        )
        tab = baseline_table(
            rows,
            group=col,
            continuous=continuous,
            categorical=[c for c in [*categorical, *others] if c != col],
            group_order=order,
        )
        tab.insert(0, "grouping", grouping)
        parts.append(tab)
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------- steps

#: The type's participant-flow step (a registered protocol of this type may include it alone).
FLOW_STEPS = StepRegistry("diagnostic-accuracy flow")
_BASELINE_STEPS = StepRegistry("diagnostic-accuracy baseline")


@FLOW_STEPS.step("flow", produces=[FLOW])
def _flow_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Participant flow (STARD item 19), from the plan's ``cohort.exclusion`` and the splits."""
    ctx.progress("participant flow and baseline characteristics")
    return {"flow": flow_counts(cohort, plan)}


@_BASELINE_STEPS.step("baseline", produces=[BASELINE])
def _baseline_step(cohort: Cohort, plan: AnalysisPlan, ctx: StepContext) -> dict[str, pd.DataFrame]:
    """Baseline characteristics (STARD item 20), from the plan's ``cohort.baseline``."""
    return {"baseline": baseline_counts(cohort, plan)}


#: The steps a plan of this type may name: the diagnostic-accuracy steps and the type's own.
REGISTRY = diagnostic.REGISTRY.including(FLOW_STEPS, _BASELINE_STEPS, name="diagnostic-accuracy")
#: Steps of every run (STARD items 18-24 need their tables).
ALWAYS = ("flow", "baseline", "models", "sample_size", "auc", "accuracy")
_analyse = steps_analysis(REGISTRY, always=ALWAYS)


# ----------------------------------------------------------------------------- checklist


def _stard_facts(plan: AnalysisPlan, cohort: Cohort) -> dict[str, str]:
    """Checklist text read from the data: where and when (item 8), test interval (item 22)."""
    clin = cohort.clinical
    inc = clin[_included(clin, plan).to_numpy(bool)]
    facts: dict[str, str] = {}
    where = []
    if "site" in inc.columns:
        where.append("Sites " + ", ".join(sorted(inc["site"].dropna().astype(str).unique())))
    dates = [c for c in inc.columns if pd.api.types.is_datetime64_any_dtype(inc[c])]
    if dates:
        d = inc[dates[0]]
        where.append(f"{dates[0].replace('_', ' ')} of included cases {d.min():%Y-%m-%d} to {d.max():%Y-%m-%d}")
    if where:
        facts["8"] = "; ".join(where) + "."
    for rule in plan.cohort.rules if plan.cohort is not None else []:
        if rule.interval is not None and all(c in inc.columns for c in rule.interval):
            a, b = rule.interval
            gap = median_range((pd.to_datetime(inc[b]) - pd.to_datetime(inc[a])).dt.days.abs())
            facts["22"] = (
                f"{a.replace('_', ' ')} to {b.replace('_', ' ')} interval, included cases: median "
                f"{gap.median:.0f} days (range {gap.minimum:.0f}-{gap.maximum:.0f}; at most "
                f"{rule.max_days} by eligibility)."
            )
            break
    return facts


def checklist(plan: AnalysisPlan, tables: dict[str, pd.DataFrame], cohort: Cohort) -> pd.DataFrame:
    """The STARD 2015 checklist filled from the plan, the tables and the data (generic wording)."""
    return stard_2015_generic(plan, tables, facts=_stard_facts(plan, cohort))


# ----------------------------------------------------------------------------- the protocol


def study_protocol(slug: str) -> StudyProtocol:
    """The generic diagnostic-accuracy protocol of study ``slug`` (a plan with no Python of its own)."""
    return StudyProtocol(
        slug=slug,
        check_eligibility=check_eligibility,
        analyse=_analyse,
        checklist=checklist,
        figure_specs=figure_specs,
        requires_predictions=True,
        join=join,
        steps=REGISTRY,
    )
