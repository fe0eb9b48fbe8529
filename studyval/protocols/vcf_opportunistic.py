"""vcf-opportunistic (AI Centre project AIC003): its eligibility rules, join and STARD checklist.

The service evaluation: vertebral compression fractures (VCF) found
opportunistically on CTs done for other reasons. Baselines from the registry:
77% of VCF-positive scans identified by the radiology report, 43% referred.
A retrospective period (about 1,000 CTs, standard-care reports, the AI tool run
afterwards) and 2 months of prospective AI-assisted reporting. The analyses:

* primary: detection and referral of the AI-assisted period against the
  concurrent standard-care period (Newcombe hybrid score CI, Fisher's exact
  test, Holm over the two primary endpoints), shown beside the exact binomial
  test against the registry's baselines as historical, fixed values;
* the AI tool against the radiology report on the same retrospective scans
  (paired sensitivity and specificity differences with Newcombe's paired CI,
  McNemar's test), and against the commercial tool when its rows are supplied;
* weekly p-charts and binomial CUSUMs of the prospective period (with the
  decision interval chosen from the CUSUMs' exact average run lengths);
* power of the tests actually run (Fisher's exact and McNemar's, exact by
  enumeration), and weeks needed.

Unit of the primary analyses: the first included scan of each patient in each
period (scans of one patient are correlated); every included scan, with a
patient-level cluster bootstrap, is the plan's sensitivity analysis.

The analyses are the steps of the service-evaluation study type
(:mod:`studyval.steps.service_evaluation`) that the plan's
``endpoints[].analyses`` name; the figures are
:mod:`studyval.figures.vcf_opportunistic`. This module holds what is the
study's own: the rules its inputs must satisfy and the STARD 2015 items
filled from its tables.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from studyval.checklists import stard_table
from studyval.cohort import (
    MAX_LISTED,
    Cohort,
    absent_column_violations,
    missing_prediction_violations,
    prediction_row_violations,
    with_failure_reason,
)
from studyval.errors import InputValidationError, Violation
from studyval.figures.vcf_opportunistic import figure_specs
from studyval.plan_vcf_opportunistic import OpportunisticPlan
from studyval.protocol import StudyProtocol, flow_count, steps_analysis
from studyval.reporting import p_text
from studyval.steps.service_evaluation import ALWAYS, PERIODS, REGISTRY

__all__ = [
    "PROTOCOL",
    "SLUG",
    "check_eligibility",
    "checklist",
    "join",
    "needed_columns",
]

SLUG = "vcf-opportunistic"


def _row(index: int) -> int:
    return int(index) + 2


# ----------------------------------------------------------------------------- eligibility


def check_eligibility(
    clinical: pd.DataFrame, plan: OpportunisticPlan, *, label: str
) -> list[Violation]:
    """Protocol rules spanning rows or columns of the clinical table.

    * sex and site constant within a patient;
    * an included scan (``exclusion_reason == "none"``) is of a patient older
      than 55 and has a reference read (``genant_grade`` and ``vcf_reference``);
      ``age_55_or_under`` is used only for patients aged 55 or under;
    * ``vcf_reference`` is ``vcf`` exactly when ``genant_grade >= 1``;
    * a referral requires an identification (``referred`` implies ``report_vcf``);
    * the scan date lies in its period's window, and ``week`` is given exactly
      for prospective scans and equals the week of the scan date;
    * the columns the dictionary lets be left out but the plan uses
      (:func:`needed_columns`: ``week``, ``genant_grade``, ``vcf_reference``)
      are present; where one is absent, only that is reported (the other
      rules read it).
    """
    cols = plan.columns
    absent = absent_column_violations(clinical, needed_columns(plan), label=label)
    if absent:
        return absent
    problems: list[Violation] = []
    by_patient = clinical.groupby("patient_id", observed=True, sort=False)
    for col in ("site", "sex"):
        n_distinct = by_patient[col].nunique(dropna=False)
        for pid in n_distinct.index[n_distinct > 1]:
            idx = clinical.index[clinical["patient_id"] == pid]
            problems.append(
                Violation(
                    label,
                    col,
                    _row(idx[1]),
                    f"patient {pid} has {n_distinct[pid]} different values; it must be constant within a patient",
                )
            )
    included = clinical[cols.exclusion] == "none"
    limit = plan.eligibility.min_age_exclusive
    for idx in clinical.index[included & (clinical[cols.age] <= limit)]:
        problems.append(
            Violation(
                label,
                cols.age,
                _row(idx),
                f"included scan of a patient aged {limit} or under (the registry includes patients > {limit}); "
                f"set {cols.exclusion} to age_55_or_under",
                str(clinical.at[idx, cols.age]),
            )
        )
    wrong_age = (clinical[cols.exclusion] == "age_55_or_under") & (clinical[cols.age] > limit)
    for idx in clinical.index[wrong_age]:
        problems.append(
            Violation(
                label,
                cols.exclusion,
                _row(idx),
                f"excluded as age_55_or_under but the age is {clinical.at[idx, cols.age]}",
                "age_55_or_under",
            )
        )
    outcome = plan.outcome.variable
    for col in (cols.genant_grade, outcome):
        for idx in clinical.index[included & clinical[col].isna()][:MAX_LISTED]:
            problems.append(
                Violation(
                    label, col, _row(idx), "an included scan needs the reference read (empty cell)"
                )
            )
    both = clinical[cols.genant_grade].notna() & clinical[outcome].notna()
    expect = np.where(
        clinical[cols.genant_grade].fillna(0).astype(int) >= 1,
        plan.outcome.positive,
        plan.outcome.negative,
    )
    bad = both & (clinical[outcome].astype(str) != expect)
    for idx in clinical.index[bad][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                outcome,
                _row(idx),
                f"disagrees with {cols.genant_grade} = {clinical.at[idx, cols.genant_grade]} "
                f"({plan.reference_standard_rule})",
                str(clinical.at[idx, outcome]),
            )
        )
    ref_no_id = clinical[cols.referral].astype(bool) & ~clinical[cols.report].astype(bool)
    for idx in clinical.index[ref_no_id][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.referral,
                _row(idx),
                f"referral without an identification: {cols.report} is false; "
                "a referral follows a reported VCF",
                "true",
            )
        )
    date = clinical[cols.scan_date]
    for period in PERIODS:
        win = getattr(plan.periods, period)
        start, end = pd.Timestamp(win.start), pd.Timestamp(win.end)
        outside = (clinical[cols.period] == period) & ((date < start) | (date > end))
        for idx in clinical.index[outside][:MAX_LISTED]:
            problems.append(
                Violation(
                    label,
                    cols.scan_date,
                    _row(idx),
                    f"{period} scan dated outside the {period} window {win.start} to {win.end} (analysis plan)",
                    f"{date[idx]:%Y-%m-%d}",
                )
            )
    week = clinical[cols.week]
    pro = clinical[cols.period] == "prospective"
    for idx in clinical.index[pro & week.isna()][:MAX_LISTED]:
        problems.append(
            Violation(label, cols.week, _row(idx), "a prospective scan needs its week number")
        )
    for idx in clinical.index[~pro & week.notna()][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.week,
                _row(idx),
                "week numbers are for prospective scans only",
                str(week[idx]),
            )
        )
    n_weeks = plan.periods.prospective_weeks
    too_big = pro & week.notna() & (week > n_weeks)
    for idx in clinical.index[too_big][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.week,
                _row(idx),
                f"week out of range: the prospective period has {n_weeks} weeks",
                str(week[idx]),
            )
        )
    derived = (date - pd.Timestamp(plan.periods.prospective.start)).dt.days // 7 + 1
    mismatch = pro & week.notna() & ~too_big & (week != derived)
    for idx in clinical.index[mismatch][:MAX_LISTED]:
        problems.append(
            Violation(
                label,
                cols.week,
                _row(idx),
                f"disagrees with scan_date {date[idx]:%Y-%m-%d}, which is in week {int(derived[idx])} "
                f"of the prospective period (from {plan.periods.prospective.start})",
                str(week[idx]),
            )
        )
    return problems


def needed_columns(plan: OpportunisticPlan) -> dict[str, str]:
    """Clinical columns the dictionary lets be left out but the plan uses: column -> use, in words.

    Parameters
    ----------
    plan : OpportunisticPlan
        The protocol's plan.

    Returns
    -------
    dict of str to str
        Column -> what uses it, completing "needed by the plan's ...", for
        :func:`studyval.cohort.absent_column_violations`.

    """
    cols = plan.columns
    return {
        cols.week: "weekly monitoring of the prospective period (p-charts and CUSUMs by week)",
        cols.genant_grade: (
            f"reference standard ({plan.reference_standard_rule}; "
            f"{plan.outcome.variable} is checked against it)"
        ),
        plan.outcome.variable: (
            "reference standard of every rate, before/after and accuracy analysis "
            f"({plan.outcome.positive} vs {plan.outcome.negative})"
        ),
    }


# ----------------------------------------------------------------------------- join


def join(
    clinical: pd.DataFrame,
    predictions: pd.DataFrame,
    plan: OpportunisticPlan,
    *,
    clinical_label: str,
    predictions_label: str,
) -> Cohort:
    """Check the cross-table rules and join the tools' flags to the scans.

    Rules: the prediction table names only plan models; a required model has
    rows, an optional one may be absent (reported, not an error); one weights
    version per model; ``positive_class`` is the plan's positive class;
    ``split`` is the plan's evaluation split; a score exactly when ``status``
    is ok; a failure has a reason; every row refers to a scan of the clinical
    table with the same patient and site, in one of the model's periods; no
    scan twice per model; every included scan of a model's periods has a row
    of every supplied model.

    Returns
    -------
    Cohort
        ``predictions``: one row per scan per supplied model, with the
        clinical columns, a boolean ``positive`` (reference standard) and
        ``flag`` (score >= the model's threshold; False where failed).

    """
    problems: list[Violation] = []
    pl = predictions_label
    names = plan.model_names
    clin = clinical.set_index("case_id", drop=False)
    problems += prediction_row_violations(
        predictions,
        clinical,
        model_names=names,
        required_models=[m.name for m in plan.models if m.required],
        positive=plan.outcome.positive,
        strict_probabilities=False,  # no calibration analysis: a flag at the threshold is used
        predictions_label=pl,
        clinical_label=clinical_label,
        unit="scan",
    )
    for idx in predictions.index[predictions["split"] != plan.evaluation_split][:MAX_LISTED]:
        problems.append(
            Violation(
                pl,
                "split",
                _row(idx),
                f"every scan is evaluation data: split must be {plan.evaluation_split!r} (analysis plan)",
                str(predictions.at[idx, "split"]),
            )
        )
    # ---- each model only on the periods the plan evaluates it on
    period_of = clin[plan.columns.period].astype(str)
    for idx, case in predictions["case_id"].items():
        model = predictions.at[idx, "model_name"]
        if (
            case in clin.index
            and model in names
            and period_of[case] not in plan.model(model).periods
        ):
            problems.append(
                Violation(
                    pl,
                    "case_id",
                    _row(idx),
                    f"scan {case} is {period_of[case]}, but the plan evaluates {model} on "
                    f"{', '.join(plan.model(model).periods)} scans only",
                    str(case),
                )
            )
    # ---- every included scan of a model's periods scored (or failed) by each supplied model
    included = clinical[clinical[plan.columns.exclusion] == "none"]
    expected = [
        (idx, case, spec.name)
        for spec in plan.models
        if (predictions["model_name"] == spec.name).any()
        for idx, case in included.loc[
            included[plan.columns.period].isin(spec.periods), "case_id"
        ].items()
    ]
    problems += missing_prediction_violations(
        expected, predictions, predictions_label=pl, clinical_label=clinical_label, unit="scan"
    )
    InputValidationError.collect(problems)

    keep = [c for c in clinical.columns if c not in ("patient_id", "site")]
    joined = with_failure_reason(predictions).merge(
        clinical[keep], on="case_id", how="inner", validate="many_to_one"
    )
    joined = joined[joined[plan.columns.exclusion] == "none"].reset_index(drop=True)
    joined["positive"] = joined[plan.outcome.variable].astype(str) == plan.outcome.positive
    thr = joined["model_name"].map({m.name: m.threshold for m in plan.models}).astype(float)
    joined["flag"] = (joined["status"] == "ok") & (joined["score"].astype(float) >= thr)
    return Cohort(clinical=clinical, predictions=joined)


# ----------------------------------------------------------------------------- checklist

#: The plan's p-chart centre lines, in words.
_CENTRE = {
    "pooled": "trial limits pooled over the monitored weeks",
    "standard": "centre lines declared before go-live",
    "baseline_weeks": "centre lines from the first weeks, declared as baseline",
}
#: Adjustment covariates in words.
_COVARIATE = {"genant_grade": "Genant grade", "ct_region": "CT region"}
#: The plan's rule for patients in both periods, in words.
_BOTH = {
    "first_period": "analysed in the period of their first included scan only",
    "each_period": "the first scan of each period analysed",
}


def _covariates_text(plan: OpportunisticPlan) -> str:
    """The adjustment covariates in words."""
    adj = plan.adjustment
    names = [*adj.continuous, *adj.categorical] if adj is not None else []
    return ", ".join(_COVARIATE.get(c, c.replace("_", " ")) for c in names)


def _false_alarm_text(table: pd.DataFrame | None) -> str:
    """STARD 17: the charts' joint in-control false-alarm chance, when the table exists."""
    if table is None:
        return ""
    r = table[table["kind"] == "set"].iloc[0]
    return (
        f" Chance that any of the {len(table) - 1} charts gives a false alarm within the "
        f"{int(r['horizon_weeks'])} monitored weeks when all rates are in control: "
        f"{r['p_false_alarm']:.3f} (simulated)."
    )


def _adjusted_text(table: pd.DataFrame | None) -> str:
    """STARD 17: the before/after differences standardised for case mix, when the table exists."""
    if table is None:
        return ""
    return (
        " Before/after standardised for case mix: "
        + "; ".join(
            f"{r.measure} {r.difference:.3f} ({r.ci_low:.3f} to {r.ci_high:.3f}), adjusted odds ratio "
            f"{r.odds_ratio:.2f} ({r.or_ci_low:.2f} to {r.or_ci_high:.2f})"
            for r in table.itertuples()
        )
        + "."
    )


def _blinding_text(plan: OpportunisticPlan) -> str:
    """STARD 13b from the plan's ``blinding`` section (or a request to state it)."""
    b = plan.blinding
    if b is None:
        return "Not stated in the analysis plan: state what the reference read was blinded to."
    parts = [
        ("the AI output", b.reference_read_blinded_to_ai_output),
        ("the period (scan date)", b.reference_read_blinded_to_period),
        ("the radiology report and referral", b.reference_read_blinded_to_report),
    ]
    yes = [w for w, v in parts if v]
    no = [w for w, v in parts if not v]
    return (
        "Reference read blinded to "
        + (", ".join(yes) or "none of the AI output, the period and the report")
        + (f"; not blinded to {', '.join(no)}" if no else "")
        + f" (analysis plan). {b.statement.strip()}"
    )


def _failed_rule_text(plan: OpportunisticPlan) -> str:
    """STARD 15: the plan's rule for failed AI runs."""
    fr = plan.failed_ai_runs
    if fr is None:
        return "excluded from that tool's accuracy and paired comparisons."
    standalone = {
        "exclude": "left out of the tool's accuracy and paired comparisons",
        "as_negative": "counted as no flag in the tool's accuracy and paired comparisons",
    }[fr.standalone]
    pathway = {
        "intention_to_treat": "kept in the AI-assisted pathway's rates (intention to treat)",
        "exclude": "left out of the AI-assisted pathway's rates",
    }[fr.pathway]
    return f"by the plan {standalone} and {pathway}" + (
        "; the other convention as a sensitivity analysis." if fr.sensitivity_analysis else "."
    )


def checklist(
    plan: OpportunisticPlan, tables: dict[str, pd.DataFrame], cohort: Cohort
) -> pd.DataFrame:
    """STARD 2015 (Bossuyt et al. 2015) filled from the plan and the tables (items of :mod:`studyval.checklists`)."""
    flow, rates, acc = tables["flow"], tables["rates"], tables["accuracy"]
    ba, pr, ss = tables["before_after"], tables["paired"], tables["sample_size"]
    msum, avail = tables["monitoring_summary"], tables["model_availability"]
    reg = plan.registry
    cols = plan.columns

    def fn(stage: str, period: str, group: str = "", what: str = "n_scans") -> int:
        return flow_count(flow, stage, column=what, period=period, group=group)

    def rate(period: str, measure: str) -> str:
        r = rates[(rates["period"] == period) & (rates["measure"] == measure)].iloc[0]
        return (
            f"{r['estimate']:.3f} ({r['ci_low']:.3f}-{r['ci_high']:.3f}; "
            f"{r['numerator']}/{r['denominator']}; {p_text(r['p_value'])} vs the historical baseline {r['baseline']:g})"
        )

    def acc_text(reader: str, period: str) -> str:
        sub = acc[(acc["reader"] == reader) & (acc["period"] == period)].set_index("measure")
        return ", ".join(
            f"{m} {sub.at[m, 'estimate']:.3f} ({sub.at[m, 'ci_low']:.3f}-{sub.at[m, 'ci_high']:.3f})"
            for m in ("sensitivity", "specificity")
        )

    c = cohort.clinical
    dates = {p: c.loc[c[cols.period] == p, cols.scan_date] for p in PERIODS}
    excl = flow[(flow["stage"] == "excluded_reason") & (flow["n_scans"] > 0)]
    excl_text = "; ".join(
        f"{r.period} {r.group.replace('_', ' ')} {r.n_scans}" for r in excl.itertuples()
    )
    failed = flow[flow["stage"] == "index_test_failed"]
    failed_text = (
        "; ".join(
            f"{r.group}, {r.period}: {r.n_scans} ({r.detail})"
            for r in failed.itertuples()
            if r.n_scans
        )
        or "none"
    )
    missing = ", ".join(avail.loc[~avail["supplied"], "model"]) or "none"
    primary = plan.primary_model
    ba_p = ba[ba["test_role"] == "primary"].set_index("measure")
    sens_pair = pr[
        (pr["reader_a"] == primary)
        & (pr["reader_b"] == "radiology report")
        & (pr["measure"] == "sensitivity")
    ]
    pair_text = (
        f"sensitivity difference {primary} - report {sens_pair['difference'].iloc[0]:.3f} "
        f"({sens_pair['ci_low'].iloc[0]:.3f} to {sens_pair['ci_high'].iloc[0]:.3f}), McNemar "
        f"{p_text(sens_pair['p_value'].iloc[0])}"
        if len(sens_pair)
        else "not estimable"
    )
    power_rows = ss[ss["quantity"].str.startswith("power of the planned")]
    prim = tables["primary_comparison"].set_index("measure")

    def primary_text(measure: str) -> str:
        r = prim.loc[measure]
        return (
            f"{measure} {r['estimate']:.3f} vs the concurrent standard-care period "
            f"{r['control_estimate']:.3f}: difference {r['difference']:.3f} ({r['ci_low']:.3f} to "
            f"{r['ci_high']:.3f}), {r['concurrent_test']} {p_text(r['concurrent_p_value'])}, "
            f"{r['multiplicity_method']}-adjusted {p_text(r['p_adjusted'])}; against the historical, "
            f"fixed baseline {r['historical_value']:g}: exact binomial {p_text(r['historical_p_value'])}"
            + ("" if r["agree"] else " (the two comparisons disagree)")
        )

    content: dict[str, tuple[str, str]] = {
        "1": (
            f"{reg.title}. Accuracy measures: detection and referral rates of VCF-positive scans; "
            f"sensitivity and specificity of the AI tool.",
            "Title",
        ),
        "2": (
            f"Draft from the plan: {reg.design.strip()}; primary outcomes "
            f"{plan.endpoints[0].measure}; {plan.endpoints[1].measure}.",
            "Summary",
        ),
        "4": (
            "; ".join(f"{e.id} ({e.kind}): {e.measure}" for e in plan.endpoints),
            "Registered outcomes",
        ),
        "5": (
            "Retrospective period (standard care, AI run afterwards) and prospective period "
            "(AI-assisted reporting in clinic).",
            "Protocol",
        ),
        "6": (
            f"CT with the spine in the field of view, patients > "
            f"{plan.eligibility.min_age_exclusive} years; exclusions applied: {excl_text or 'none'}.",
            "Scan flow",
        ),
        "7": (
            "CTs done for other indications (chest, abdomen/pelvis); retrospective cohort selected "
            "from hospital records (CogStack in the registry).",
            "Protocol",
        ),
        "8": (
            f"Single site; retrospective scans {dates['retrospective'].min():%Y-%m-%d} to "
            f"{dates['retrospective'].max():%Y-%m-%d}, "
            f"prospective {dates['prospective'].min():%Y-%m-%d} to {dates['prospective'].max():%Y-%m-%d}.",
            "Scan flow",
        ),
        "9": ("Draft: consecutive eligible CTs in each period. Confirm.", "Protocol"),
        "10a": (
            f"{plan.index_test.strip()} Radiology report: mention of a vertebral fracture. Models: "
            + "; ".join(
                f"{r.model} ({r.model_version[:19]}...)" for r in tables["models"].itertuples()
            )
            + f". Not supplied: {missing}.",
            "Models and provenance",
        ),
        "12a": (
            "; ".join(
                f"{m.name}: score >= {m.threshold:g} ({m.threshold_source.strip()})"
                for m in plan.models
            )
            + ". No data-derived thresholds.",
            "Accuracy",
        ),
        "12b": (
            f"{plan.outcome.reference_standard}; every included scan's reference read is checked "
            "against its Genant grade (VCF exactly when the grade is 1 or more).",
            "Protocol",
        ),
        "13a": (
            "The AI tools read the CT only. Retrospective reports were written without the AI; "
            "prospective reports with the AI output available (the intervention). Confirm.",
            "Protocol",
        ),
        "13b": (_blinding_text(plan), "Protocol"),
        "14": (
            f"Primary: the AI-assisted against the concurrent standard-care period, "
            f"{plan.tests.two_period_test} test and Newcombe's hybrid score CI, "
            f"{plan.multiplicity.method} adjustment over the two primary endpoints; supportive: "
            f"exact binomial tests ({plan.tests.alternative}) against the registry baselines as "
            f"historical, fixed values, rates with Clopper-Pearson {100 * (1 - plan.alpha):.0f}% "
            f"CIs; paired differences with Newcombe's paired (method 10) CI "
            f"and {plan.tests.mcnemar} McNemar test (other versions as sensitivity); weekly p-chart "
            f"({_CENTRE[plan.monitoring.centre]}, {plan.monitoring.sigma_multiplier:g}-sigma) and "
            f"binomial CUSUM (h = {plan.monitoring.cusum_h:g}"
            + (
                f", the smallest h on the plan's grid whose exact in-control average run length "
                f"is at least {plan.monitoring.cusum_target_arl0:g} weeks for both CUSUMs"
                if plan.monitoring.cusum_target_arl0 is not None
                else ""
            )
            + "; exact and simulated average run lengths; the "
            "charts' joint false-alarm rate simulated)"
            + (
                f"; before/after adjusted for {_covariates_text(plan)} "
                "(logistic regression, standardised risk difference by g-computation)"
                if plan.adjustment is not None
                else ""
            )
            + ".",
            "Methods",
        ),
        "15": (
            f"Failed AI runs (no score): {failed_text}; reported, not imputed; "
            f"{_failed_rule_text(plan)} "
            "No indeterminate reference reads by design (a missing read excludes the scan).",
            "Scan flow; Failed AI runs",
        ),
        "16": (
            f"Scans without a reference read are excluded and counted "
            f"({fn('excluded_reason', 'retrospective', 'no_reference_read')} retrospective, "
            f"{fn('excluded_reason', 'prospective', 'no_reference_read')} prospective).",
            "Scan flow",
        ),
        "17": (
            "Variability over time: weekly p-charts and CUSUMs (pre-specified). All-scans analysis "
            "with patient-clustered CIs (pre-specified sensitivity analysis). "
            "Flagged weeks: "
            + "; ".join(
                f"{r.chart} {r.measure.replace('_', ' ')}: {r.flagged_weeks or 'none'}"
                for r in msum.itertuples()
            )
            + "."
            + _false_alarm_text(tables.get("monitoring_false_alarm"))
            + _adjusted_text(tables.get("adjusted_comparison")),
            "Monitoring; All scans; Adjusted comparison",
        ),
        "18": (" ".join(power_rows["message"]), "Sample size"),
        "19": (
            f"Retrospective: {fn('screened', 'retrospective')} scans screened, "
            f"{fn('excluded', 'retrospective')} excluded, {fn('included', 'retrospective')} included, "
            f"{fn('first_scans', 'retrospective')} first scans analysed. Prospective: "
            f"{fn('screened', 'prospective')} screened, {fn('excluded', 'prospective')} excluded, "
            f"{fn('included', 'prospective')} included, {fn('first_scans', 'prospective')} first scans"
            f"; {fn('earlier_period_patient', 'prospective')} prospective scan(s) of "
            f"{fn('earlier_period_patient', 'prospective', what='n_patients')} patient(s) already "
            f"analysed in the retrospective period ({_BOTH[plan.unit.patients_in_both_periods]}).",
            "Scan flow",
        ),
        "20": (
            "Age, sex, CT region and reference class by period (first scans).",
            "Baseline characteristics",
        ),
        "21a": (
            "Genant grade of VCF-positive scans: see the bundle's baseline tables; severity by grade 1/2/3.",
            "Baseline characteristics",
        ),
        "21b": (
            "VCF-negative scans: no vertebral fracture on the expert read; other diagnoses not recorded.",
            "Baseline characteristics",
        ),
        "22": (
            "The reference read is of the same CT as the index tests (no interval, no intervention between them).",
            "Protocol",
        ),
        "23": (
            "2x2 counts (TP, FP, FN, TN) for every reader and period in the accuracy table; paired "
            "tables in the paired comparisons.",
            "Accuracy; AI tool against the report",
        ),
        "24": (
            f"Primary: {primary_text('detection')}; {primary_text('referral')}. "
            f"Detection, prospective (AI-assisted): {rate('prospective', 'detection')}; referral: "
            f"{rate('prospective', 'referral')}. "
            f"Before/after: detection difference {ba_p.at['detection', 'difference']:.3f} "
            f"({ba_p.at['detection', 'ci_low']:.3f} to {ba_p.at['detection', 'ci_high']:.3f}). "
            f"{primary}, retrospective: {acc_text(primary, 'retrospective')}; {pair_text}.",
            "Primary comparisons; Rates; Before and after; Accuracy",
        ),
        "28": (f"{reg.id} (AI Centre project register).", "Title"),
        "29": ("AI Centre project page of AIC003 (registry text in the study file).", "Title"),
    }
    return stard_table(content)


#: This protocol, as the shared pipeline sees it.
PROTOCOL = StudyProtocol(
    slug=SLUG,
    check_eligibility=check_eligibility,
    analyse=steps_analysis(REGISTRY, always=ALWAYS),
    checklist=checklist,
    figure_specs=figure_specs,
    requires_predictions=True,
    join=join,
    steps=REGISTRY,
)
