"""vcf-opportunistic end to end: bundle tables, truth recovery, planted drift, optional commercial tool, report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.bundle import read_manifest
from studyval.pipeline import run_protocol
from studyval.plan import load_plan
from studyval.privacy import scan_for_identifiers
from studyval.synthetic.vcf_opportunistic import TRUE_PARAMETERS, expected_rates, generate

SLUG = "vcf-opportunistic"


@pytest.fixture(scope="module")
def cohort():
    return generate()


@pytest.fixture(scope="module")
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of vcf-opportunistic (tests/conftest.py): ``cohort`` written."""
    return protocol_inputs(SLUG)


@pytest.fixture(scope="module")
def bundled_plan_cohort(inputs):
    """The session's inputs read and joined under the bundled plan (``load_inputs``), once for
    the tests that run steps on them. The join reads the plan's models, outcome, columns and
    splits, not its sample-size or monitoring sections, which those tests change."""
    from studyval.pipeline import load_inputs

    return load_inputs(SLUG, inputs["clinical"], inputs["predictions"], plan=load_plan(SLUG)).cohort


@pytest.fixture(scope="module")
def bundle(rendered_bundle) -> Path:
    """The session's bundle of vcf-opportunistic (the bundled plan), its report rendered with
    Jupyter: the tables, figures and manifest are those of a run without report, and
    test_rendered_report reads its report (tests/conftest.py)."""
    return rendered_bundle(SLUG)


def _t(bundle: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(bundle / "tables" / f"{name}.parquet")


def test_plan_loads_with_its_schema():
    plan = load_plan(SLUG)
    assert type(plan).__name__ == "OpportunisticPlan"
    assert plan.primary_model == "VCF-AI" and plan.model_names == [
        "VCF-AI",
        "BoneHealth-commercial",
    ]
    assert plan.baseline("detection").value == 0.77 and plan.baseline("referral").value == 0.43


def test_bundle_tables_figures_and_manifest(bundle):
    for name in (
        "flow",
        "baseline",
        "rates",
        "primary_comparison",
        "multiplicity",
        "before_after",
        "accuracy",
        "auc",
        "paired",
        "paired_mcnemar_sensitivity",
        "monitoring_pchart",
        "monitoring_cusum",
        "monitoring_summary",
        "monitoring_cusum_h",
        "monitoring_false_alarm",
        "rates_all_scans",
        "period_differences_all_scans",
        "adjusted_comparison",
        "adjusted_coefficients",
        "failed_runs_sensitivity",
        "sample_size",
        "models",
        "model_availability",
        "checklist",
        "dictionary",
        "warnings",
    ):
        assert (bundle / "tables" / f"{name}.parquet").is_file(), name
    for fig in (
        "flow",
        "rates_vs_baseline",
        "pchart_detection",
        "pchart_referral",
        "pchart_ai_flag_rate",
        "cusum_detection",
        "cusum_referral",
    ):
        for ext in ("png", "pdf", "svg"):
            assert (bundle / "figures" / f"{fig}.{ext}").is_file(), (fig, ext)
    manifest = read_manifest(bundle)
    assert {m["model"] for m in manifest["models"]} == {"VCF-AI", "BoneHealth-commercial"}
    assert set(manifest["dictionary"]["removed_direct_identifier_columns"]) == {
        "patient_name",
        "medical_record_number",
        "date_of_birth",
    }


def test_flow_counts_match_the_truth(bundle, cohort):
    flow = _t(bundle, "flow")
    inc = flow[flow["stage"] == "included"].set_index("period")["n_scans"]
    assert inc["retrospective"] == TRUE_PARAMETERS["retrospective"]["included_scans"]
    assert inc["prospective"] == 8 * TRUE_PARAMETERS["prospective"]["included_scans_per_week"]
    ex = flow[(flow["stage"] == "excluded_reason") & (flow["period"] == "retrospective")].set_index(
        "group"
    )["n_scans"]
    assert ex.to_dict() == TRUE_PARAMETERS["retrospective"]["excluded_scans"]
    failed = flow[(flow["stage"] == "index_test_failed") & (flow["group"] == "VCF-AI")]
    assert failed["n_scans"].sum() <= 5
    first = flow[flow["stage"] == "first_scans"].set_index("period")["n_scans"]
    later = flow[flow["stage"] == "later_scans"].set_index("period")["n_scans"]
    assert (first + later).to_dict() == inc.to_dict()


def test_rates_recover_the_true_rates(bundle):
    rates = _t(bundle, "rates").set_index(["period", "measure"])
    truth = expected_rates()
    # Four 95% intervals miss the truth now and then by chance, so the check is |estimate - truth|
    # within 3.29 binomial standard errors (two-sided 0.1% each) at the true rate.
    for (period, measure), r in rates.iterrows():
        p = truth[f"{period}_{measure}"]
        se = (p * (1 - p) / r["denominator"]) ** 0.5
        assert abs(r["estimate"] - p) < 3.29 * se, (period, measure, r["estimate"], p)
        assert r["ci_method"] == "Clopper-Pearson"
    # the AI-assisted pathway beats both baselines
    assert rates.loc[("prospective", "detection"), "p_value"] < 0.05
    assert rates.loc[("prospective", "referral"), "p_value"] < 0.05


def test_tool_accuracy_recovers_the_truth(bundle):
    acc = _t(bundle, "accuracy")
    ai = acc[(acc["reader"] == "VCF-AI") & (acc["period"] == "retrospective")].set_index("measure")
    assert ai.at["sensitivity", "ci_low"] <= 0.90 <= ai.at["sensitivity", "ci_high"]
    assert ai.at["specificity", "ci_low"] <= 0.92 <= ai.at["specificity", "ci_high"]
    com = acc[acc["reader"] == "BoneHealth-commercial"].set_index("measure")
    assert com.at["sensitivity", "ci_low"] <= 0.85 <= com.at["sensitivity", "ci_high"]
    assert com.at["specificity", "ci_low"] <= 0.90 <= com.at["specificity", "ci_high"]


def test_accuracy_rows_are_those_of_the_analysis_function(bundle):
    """Every accuracy row is a row of accuracy_from_confusion of its 2x2 table (nothing recomputed)."""
    from studyval.analysis.accuracy import ConfusionMatrix, accuracy_from_confusion

    plan = load_plan(SLUG)
    acc = _t(bundle, "accuracy")
    cols = ["estimate", "ci_low", "ci_high", "ci_level", "numerator", "denominator", "ci_method"]
    for (reader, period), sub in acc.groupby(["reader", "period"]):
        r0 = sub.iloc[0]
        cm = ConfusionMatrix(
            tp=int(r0["tp"]),
            fp=int(r0["fp"]),
            fn=int(r0["fn"]),
            tn=int(r0["tn"]),
            threshold=1.0 if r0["kind"] == "report" else float(r0["threshold"]),
            positive=plan.outcome.positive,
            negative=plan.outcome.negative,
        )
        ref = accuracy_from_confusion(
            cm,
            threshold_status="pre-specified",
            alpha=plan.alpha,
            ci_method=plan.tests.proportion_ci,
        ).measures_frame()
        ref = ref.set_index("measure").loc[sub["measure"]].reset_index()
        got = sub.reset_index(drop=True)
        pd.testing.assert_frame_equal(
            got[cols].astype({"numerator": "Int64", "denominator": "Int64"}),
            ref[cols],
            check_dtype=False,
            obj=f"{reader}, {period}",
        )
        assert list(got["measure"]) == ["sensitivity", "specificity", "ppv", "npv"]


def test_paired_comparison_is_consistent_with_accuracy(bundle):
    pr = _t(bundle, "paired")
    row = pr[
        (pr["reader_a"] == "VCF-AI")
        & (pr["reader_b"] == "radiology report")
        & (pr["measure"] == "sensitivity")
    ].iloc[0]
    assert row["difference"] == pytest.approx((row["b"] - row["c"]) / row["n"])
    assert row["ci_low"] < row["difference"] < row["ci_high"]
    # true sensitivity difference 0.90 - 0.77 = 0.13
    assert row["ci_low"] <= 0.13 <= row["ci_high"]
    # one McNemar p-value per row (the plan's exact test); the other versions are sensitivity rows
    assert row["mcnemar_method"] == "exact"
    assert not {"p_exact", "p_asymptotic", "p_asymptotic_cc"} & set(pr.columns)
    sens = _t(bundle, "paired_mcnemar_sensitivity")
    assert len(sens) == 2 * len(pr) and set(sens["role"]) == {"sensitivity"}
    assert set(sens["mcnemar_method"]) == {"asymptotic", "asymptotic-cc"}
    from studyval.analysis.paired import mcnemar

    table = [[int(row["a"]), int(row["b"])], [int(row["c"]), int(row["d"])]]
    assert row["p_value"] == pytest.approx(mcnemar(table, method="exact").p_value, rel=1e-12)
    for r in sens[
        (sens["reader_a"] == "VCF-AI")
        & (sens["reader_b"] == "radiology report")
        & (sens["measure"] == "sensitivity")
    ].itertuples():
        assert r.p_value == pytest.approx(mcnemar(table, method=r.mcnemar_method).p_value)


def test_planted_drift_is_flagged(bundle):
    summary = _t(bundle, "monitoring_summary")
    week = str(TRUE_PARAMETERS["drift"]["week"])
    det_p = summary[(summary["measure"] == "detection") & (summary["chart"] == "p-chart")].iloc[0]
    assert det_p["flagged_weeks"] == week
    for measure in ("detection", "referral"):
        cu = summary[(summary["measure"] == measure) & (summary["chart"] == "CUSUM")].iloc[0]
        assert cu["flagged_weeks"] == week, measure
    flag = summary[(summary["measure"] == "ai_flag_rate")].iloc[0]
    assert week in flag["flagged_weeks"].split(", ")


def test_sample_size_table(bundle):
    """Each power answers a test the analysis runs (issue 16, item 3)."""
    ss = _t(bundle, "sample_size").set_index(["measure", "quantity"])
    fisher = ss.loc[("detection", "power of the planned scans for the before/after comparison")]
    # 8 weeks x 160 x 0.18 = 230 AI-assisted vs 1000 x 0.18 = 180 standard-care VCF-positive scans;
    # R enumeration fpow(230, 180, .9, .77) (tests/test_sample_size_binomial.py) = 0.93976853336163046;
    # issue 16: "0.940, against 0.944 from the score approximation"
    assert fisher["vcf_scans"] == 230
    assert fisher["power"] == pytest.approx(0.93976853336163046, rel=1e-6)
    assert round(fisher["power_approximation"], 3) == 0.944
    mc = ss.loc[("detection", "power of the planned retrospective scans for the paired comparison")]
    # R enumeration mpow(180, .9 * .23, .77 * .1) = 0.90010484343275377; Connor 0.9120902598557642
    assert mc["vcf_scans"] == 180
    assert mc["power"] == pytest.approx(0.90010484343275377, rel=1e-6)
    assert mc["power_approximation"] == pytest.approx(0.9120902598557642, rel=1e-6)
    assert mc["required_unrounded"] == pytest.approx(129.51516198100279, rel=1e-6)
    # no row answers "0.90 vs 0.77 on the standard-care scans" any more
    assert not ss.index.get_level_values("quantity").str.contains("one-sample test$").any()
    assert (
        "referral",
        "power of the planned retrospective scans for the paired comparison",
    ) not in ss.index
    ss = ss.reset_index()
    weeks = ss[
        (ss["measure"] == "detection")
        & (
            ss["quantity"]
            == "prospective weeks for the one-sample test against the historical baseline"
        )
    ].iloc[0]
    assert weeks["required_vcf_scans"] == 76 and weeks["weeks"] == 3  # 76 / 28.8 a week


def test_checklist_is_stard_filled_from_the_data(bundle):
    ck = _t(bundle, "checklist")
    assert set(ck["class"]) == {"A", "S", "H"}
    item19 = ck[ck["item"] == "19"].iloc[0]
    assert "1000 included" in item19["content"] and item19["status"] == "filled"
    assert (ck.loc[ck["class"] == "H", "status"] == "to write").all()


def test_no_direct_identifier_reaches_the_bundle(bundle, cohort):
    clin = cohort.clinical
    planted = list(clin["patient_name"].head(50)) + list(clin["medical_record_number"].head(50))
    report = scan_for_identifiers([bundle], planted)
    assert report.ok, report.summary()


def test_run_without_commercial_rows_reports_its_absence(cohort, tmp_path, trimmed_plan):
    """A whole run (every step and figure) on data without the commercial tool's rows. Its
    subject is which models the run reports, not resampled or simulated numbers: the bootstraps
    run the schema's minimum of 100 resamples and the CUSUM simulations 200 runs."""
    paths = generate(commercial=False).write(tmp_path / "in")
    out = tmp_path / "bundle"
    plan = trimmed_plan(SLUG, 100)
    fast = {"false_alarm_simulations": 200, "arl_simulations": 200}
    plan = plan.model_copy(update={"monitoring": plan.monitoring.model_copy(update=fast)})
    run_protocol(
        SLUG,
        clinical=paths["clinical"],
        predictions=paths["predictions"],
        out=out,
        render=False,
        plan=plan,
    )
    avail = _t(out, "model_availability").set_index("model")
    assert not avail.at["BoneHealth-commercial", "supplied"]
    assert "not supplied" in avail.at["BoneHealth-commercial", "message"]
    assert list(_t(out, "models")["model"]) == ["VCF-AI"]
    pr = _t(out, "paired")
    assert set(pr["reader_a"]) == {"VCF-AI"} and set(pr["reader_b"]) == {"radiology report"}
    assert "BoneHealth-commercial" not in set(_t(out, "accuracy")["reader"])


def test_rendered_report(inputs, bundle):
    report = bundle / "report" / "report.html"
    html = report.read_text(encoding="utf-8")
    for text in (
        "Detection and referral against the historical, fixed baselines",
        "Primary comparisons",
        "The historical baseline and the concurrent period disagree",
        "historical, fixed baseline",
        "Monitoring of the prospective period",
        "STARD 2015 checklist",
        "AI tool against the radiology report",
        "Flagged weeks: <strong>6</strong>",
    ):
        assert text in html, text
    # everything the report shows identifies patients and scans by keyed pseudonym only
    from studyval.privacy import ids_shown_in_report

    clinical = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    ids = set(clinical["patient_id"]) | set(clinical[clinical.columns[0]])
    assert ids_shown_in_report(report, ids) == []


# ----------------------------------------------------------------------------- analysis steps


def test_plan_endpoints_dispatch_every_bundle_table_through_the_steps():
    from studyval.plan import requested_steps
    from studyval.protocol import protocol
    from studyval.steps.service_evaluation import ALWAYS

    registry = protocol(SLUG).steps
    plan = load_plan(SLUG)
    assert {name for _, name in requested_steps(plan)} == {
        "rates",
        "primary",
        "before_after",
        "accuracy",
        "paired",
        "monitoring",
        "sample_size",
        "rates_all_scans",
        "adjusted",
        "failed_runs",
    }
    assert all(ep.analyses and ep.section for ep in plan.endpoints)
    assert ALWAYS == ("flow", "baseline", "models", "sample_size")
    steps = registry.resolve([*ALWAYS, *(name for _, name in requested_steps(plan))])
    written = [t for s in steps for t in s.table_names]
    assert sorted(written) == sorted(set(written)) == sorted(registry.tables())
    assert set(written) == {
        "flow",
        "baseline",
        "models",
        "model_availability",
        "sample_size",
        "rates",
        "primary_comparison",
        "multiplicity",
        "before_after",
        "accuracy",
        "auc",
        "paired",
        "paired_mcnemar_sensitivity",
        "monitoring_pchart",
        "monitoring_cusum",
        "monitoring_summary",
        "monitoring_cusum_h",
        "monitoring_false_alarm",
        "rates_all_scans",
        "period_differences_all_scans",
        "adjusted_comparison",
        "adjusted_coefficients",
        "failed_runs_sensitivity",
    }


def test_bundle_tables_have_the_declared_columns(bundle):
    from studyval.protocol import protocol

    for name, spec in protocol(SLUG).steps.tables().items():
        got = _t(bundle, name)
        assert set(spec.columns) <= set(got.columns), (name, set(spec.columns) - set(got.columns))


@pytest.mark.parametrize(
    ("endpoint", "name", "closest"),
    [
        pytest.param(0, "rate", "rates", id="typo"),
        pytest.param(4, "cusum_chart", None, id="unknown"),
    ],
)
def test_unknown_analysis_step_is_an_error_naming_its_yaml_path(tmp_path, endpoint, name, closest):
    import yaml

    from studyval.errors import InputValidationError
    from studyval.plan import plan_path

    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    raw["endpoints"][endpoint]["analyses"] = [name]
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputValidationError) as err:
        load_plan(path)
    text = str(err.value)
    assert f"endpoints[{endpoint}].analyses[0]" in text and name in text
    if closest:
        assert f"did you mean {closest!r}" in text
    else:
        assert "registered: flow, baseline" in text


def test_sample_size_rows_have_the_shared_columns(bundle):
    ss = _t(bundle, "sample_size").set_index(["measure", "quantity"])
    one = ss.loc[
        ("detection", "prospective weeks for the one-sample test against the historical baseline")
    ]
    # 76 VCF-positive scans at 28.8 a week: 2.64 weeks, rounded up to 3 of the registered 8
    assert one["required_unrounded"] == pytest.approx(76 / 28.8) and one["required"] == 3
    assert one["available"] == 8 and one["shortfall"] == -5 and one["adequate"]
    two = ss.loc[("detection", "prospective weeks for the before/after comparison")]
    # Hmisc::bsamsize at the allocation that reproduces n2 = 180: n1 = 102.63753177952762
    assert two["required_unrounded"] == pytest.approx(102.63753177952762 / 28.8, rel=1e-9)
    assert two["weeks"] == two["required"] == 4 and two["adequate"]
    assert set(ss["check"]) == {"registered", "observed (retrospective)", "observed (prospective)"}


def test_sample_size_step_alone_reports_an_unreachable_before_after_target(bundled_plan_cohort):
    """The step runs on its own; with 100 planned scans (18 VCF-positive) the before/after
    comparison never reaches 80% power, however many prospective weeks (Hmisc::bpower with
    n2 = 18 stays below 0.5 as n1 grows)."""
    from studyval.protocol import protocol

    plan = load_plan(SLUG)
    small = plan.sample_size.model_copy(update={"planned_retrospective_scans": 100})
    plan = plan.model_copy(update={"sample_size": small})
    tables = protocol(SLUG).steps.run(["sample_size"], bundled_plan_cohort, plan)
    assert list(tables) == ["sample_size"]
    ss = tables["sample_size"].set_index(["measure", "quantity"])
    for measure in ("detection", "referral"):
        row = ss.loc[(measure, "prospective weeks for the before/after comparison")]
        assert row["message"].endswith("power not reached within 5 years.")
        assert np.isnan(row["weeks"]) and np.isnan(row["required"]) and not row["adequate"]
        assert row["available"] == 8
    # 18 pairs fall short of the 130 Connor's formula needs for McNemar's test
    planned = ss.loc[
        ("detection", "power of the planned retrospective scans for the paired comparison")
    ]
    assert planned["available"] == 18 and planned["required"] == 130 and not planned["adequate"]


# ----------------------------------------------------------------------------- issue 16: review fixes


def test_primary_comparison_shows_the_concurrent_period_beside_the_historical_baseline(bundle):
    """Item 1: the concurrent standard-care comparison is primary; the one-sample test against the
    registry's rate is labelled historical and fixed; the demo's disagreement is in the table."""
    from studyval.analysis.binomial_tests import historical_and_concurrent

    prim = _t(bundle, "primary_comparison").set_index("measure")
    ba = _t(bundle, "before_after")
    rates = _t(bundle, "rates").set_index(["period", "measure"])
    for measure, endpoint in (("detection", "P1"), ("referral", "P2")):
        r = prim.loc[measure]
        assert r["endpoint"] == endpoint and r["primary_comparison"] == "concurrent"
        assert r["primary_p_value"] == r["concurrent_p_value"]
        fisher = ba[(ba["measure"] == measure) & (ba["test_role"] == "primary")].iloc[0]
        assert r["concurrent_p_value"] == pytest.approx(fisher["p_value"], rel=1e-12)
        assert r["historical_p_value"] == pytest.approx(
            rates.loc[("prospective", measure), "p_value"], rel=1e-12
        )
        assert r["control_vs_historical_p_value"] == pytest.approx(
            rates.loc[("retrospective", measure), "p_value"], rel=1e-12
        )
        ref = historical_and_concurrent(
            int(r["numerator"]),
            int(r["denominator"]),
            p0=r["historical_value"],
            x_control=int(r["control_numerator"]),
            n_control=int(r["control_denominator"]),
        )
        assert r["agree"] == ref.agree
        # the demo: the historical test rejects, the concurrent period does not (issue 16)
        assert r["historical_reject"] and not r["concurrent_reject"] and not r["agree"]
    assert set(rates["baseline_kind"]) == {"historical, fixed (taken as known without error)"}
    assert rates["test"].str.contains("historical, fixed baseline").all()


def test_multiplicity_is_holm_over_the_two_primary_tests(bundle):
    """Item 4: the plan's declared strategy (Holm over P1 and P2) applied to the primary p-values."""
    from studyval.analysis.multiplicity import adjust_p_values

    plan = load_plan(SLUG)
    assert plan.multiplicity.method == "holm"
    mult = _t(bundle, "multiplicity").set_index("hypothesis")
    prim = _t(bundle, "primary_comparison").set_index("measure")
    raw = [prim.at[m, "concurrent_p_value"] for m in ("detection", "referral")]
    ref = adjust_p_values(raw, method="holm", hypotheses=["detection", "referral"])
    ref = ref.hypotheses_frame().set_index("hypothesis")
    for m in ("detection", "referral"):
        assert mult.at[m, "p_adjusted"] == pytest.approx(ref.at[m, "p_adjusted"], rel=1e-12)
        assert prim.at[m, "p_adjusted"] == mult.at[m, "p_adjusted"]
        assert prim.at[m, "reject_adjusted"] == mult.at[m, "reject"]
    # Holm with two hypotheses: both adjusted p-values are 2 x the smaller raw one here
    assert mult["p_adjusted"].tolist() == pytest.approx([2 * min(raw)] * 2)


def test_cusum_average_run_lengths_are_reported_beside_the_chart(bundle):
    """Item 5: in-control ARL (false alarms) and out-of-control ARL (delay) of the chosen h
    (plan 1.3.0: h = 5), simulated beside the exact values of the grid."""
    summary = _t(bundle, "monitoring_summary")
    cu = summary[summary["chart"] == "CUSUM"].set_index("measure")
    grid = _t(bundle, "monitoring_cusum_h")
    exact = grid[grid["chosen"]].set_index("measure")
    assert cu.at["detection", "arl_n_per_week"] == 29
    for m in ("detection", "referral"):
        assert cu.at[m, "h"] == exact.at[m, "h"] == 5
        # the seeded simulation agrees with the exact run lengths within 4 Monte Carlo SEs
        for state in ("in", "out_of"):
            sim, se = cu.at[m, f"arl_{state}_control"], cu.at[m, f"arl_{state}_control_se"]
            assert abs(sim - exact.at[m, f"arl_{state}_control"]) < 4 * se, (m, state)
        assert 0 < cu.at[m, "p_false_alarm_in_period"] < 0.1
    assert summary.loc[summary["chart"] == "p-chart", "arl_in_control"].isna().all()


def test_cusum_h_is_chosen_from_its_exact_run_lengths(bundle):
    """Issue 16: h is the smallest value on the plan's grid whose exact in-control ARL reaches
    the plan's target for both CUSUMs; the table's rows are those of the analysis function."""
    from studyval.analysis.monitoring import choose_cusum_h

    plan = load_plan(SLUG)
    mon = plan.monitoring
    grid = _t(bundle, "monitoring_cusum_h")
    res = choose_cusum_h(
        29,
        rates={
            m: (1 - plan.baseline(m).target, 1 - plan.baseline(m).value)
            for m in ("detection", "referral")
        },
        target_arl0=mon.cusum_target_arl0,
        h_grid=mon.cusum_h_grid.values(),
        horizon=plan.periods.prospective_weeks,
    )
    ref = res.to_frame()
    assert len(grid) == len(ref) == 2 * 20
    for col in ("h", "arl_in_control", "arl_out_of_control"):
        assert grid[col].tolist() == pytest.approx(ref[col].tolist(), rel=1e-12)
    assert grid["p_false_alarm_in_period"].tolist() == pytest.approx(
        ref["p_false_alarm_within"].tolist(), rel=1e-12
    )
    assert res.h == mon.cusum_h == 5
    own = grid[grid["smallest_for_chart"]].set_index("measure")["h"]
    assert own.to_dict() == {"detection": 3.5, "referral": 5.0}
    # every chosen row reaches the target; the grid value below does not for referral
    chosen = grid[grid["chosen"]].set_index("measure")
    assert (chosen["arl_in_control"] >= mon.cusum_target_arl0).all()
    ref_rows = grid[grid["measure"] == "referral"].set_index("h")
    assert ref_rows.at[4.5, "arl_in_control"] < mon.cusum_target_arl0
    assert set(grid["target_arl_in_control"]) == {160.0}
    # review 46: the union bound on a false alarm of either CUSUM within the 8 weeks is the
    # analysis function's column (at h = 5: 0.0082 + 0.0354, R chain in tests/test_monitoring.py)
    assert grid["p_false_alarm_union_bound"].tolist() == pytest.approx(
        ref["p_false_alarm_union_bound"].tolist(), rel=1e-12
    )
    assert set(chosen["p_false_alarm_union_bound"]) == {res.p_false_alarm_union_bound}
    assert res.p_false_alarm_union_bound == pytest.approx(0.043594560040, rel=1e-6)
    for col in ("h_source", "n_per_week", "horizon_weeks", "method"):
        assert grid[col].notna().all(), col
    cusum = _t(bundle, "monitoring_cusum")
    assert set(cusum["h"]) == {5.0}


def test_a_declared_h_that_is_not_the_chosen_one_is_an_error(bundled_plan_cohort):
    """No silent choice: cusum_h 4 with the 160-week target names the chosen h; without a
    target (plans before 1.3.0) the declared h is used and its exact run lengths reported."""
    from studyval.errors import EstimationError
    from studyval.protocol import protocol

    plan = load_plan(SLUG)
    cohort = bundled_plan_cohort
    fast = {"false_alarm_simulations": 200, "arl_simulations": 200}
    wrong = plan.model_copy(
        update={"monitoring": plan.monitoring.model_copy(update={"cusum_h": 4.0, **fast})}
    )
    with pytest.raises(EstimationError, match=r"cusum_h is 4, .* is 5 \(detection 799\.8"):
        protocol(SLUG).steps.run(["flow", "monitoring"], cohort, wrong)
    legacy = plan.model_copy(
        update={
            "monitoring": plan.monitoring.model_copy(
                update={"cusum_h": 4.0, "cusum_target_arl0": None, "cusum_h_grid": None, **fast}
            )
        }
    )
    t = protocol(SLUG).steps.run(["flow", "monitoring"], cohort, legacy)
    grid = t["monitoring_cusum_h"].set_index("measure")
    assert grid["h"].tolist() == [4.0, 4.0] and grid["chosen"].all()
    # exact run lengths of h = 4 (tests/test_monitoring.py: R Markov chain 295.2849932156)
    assert grid.at["detection", "arl_in_control"] == pytest.approx(295.2849932156, rel=1e-9)
    assert grid["h_source"].eq("declared in the plan (no target)").all()
    assert grid["p_false_alarm_union_bound"].tolist() == pytest.approx(
        [grid["p_false_alarm_in_period"].sum()] * 2, rel=1e-12
    )
    assert set(t["monitoring_cusum"]["h"]) == {4.0}


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        pytest.param(
            lambda raw: raw["multiplicity"].update(hypotheses=["detection"]),
            "detection and referral, once each",
            id="family-incomplete",
        ),
        pytest.param(
            lambda raw: raw["multiplicity"].update(method="holms"),
            "multiplicity",
            id="unknown-method",
        ),
        pytest.param(
            lambda raw: raw["tests"].pop("primary_comparison"),
            "primary_comparison",
            id="primary-comparison-undeclared",
        ),
        pytest.param(
            lambda raw: raw["sample_size"]["paired"].update(tool_sensitivity=1.2),
            "tool_sensitivity",
            id="paired-planning-value",
        ),
        pytest.param(
            lambda raw: raw.pop("adjustment"),
            "needs adjustment",
            id="adjusted-step-without-covariates",
        ),
        pytest.param(
            lambda raw: raw.pop("failed_ai_runs"),
            "needs failed_ai_runs",
            id="failed-runs-step-without-rule",
        ),
        pytest.param(
            lambda raw: raw["monitoring"].update(centre="baseline_weeks"),
            "baseline_weeks > 0 exactly when",
            id="baseline-centre-without-weeks",
        ),
        pytest.param(
            lambda raw: raw["monitoring"].update(centre="baseline_weeks", baseline_weeks=8),
            "leaves no week",
            id="baseline-covers-every-week",
        ),
        pytest.param(
            lambda raw: raw["monitoring"].pop("cusum_h_grid"),
            "go together",
            id="cusum-target-without-grid",
        ),
        pytest.param(
            lambda raw: raw["monitoring"].update(cusum_h=4.25),
            "not a value of cusum_h_grid",
            id="cusum-h-off-the-grid",
        ),
        pytest.param(
            lambda raw: raw["monitoring"].update(
                cusum_h_grid={"start": 1, "stop": 2.2, "step": 0.5}
            ),
            "whole number of steps",
            id="cusum-grid-uneven",
        ),
        pytest.param(
            lambda raw: raw["monitoring"].update(cusum_target_arl0=1),
            "cusum_target_arl0",
            id="cusum-target-not-above-1",
        ),
        pytest.param(
            lambda raw: raw["unit"].update(patients_in_both_periods="second_period"),
            "patients_in_both_periods",
            id="unknown-both-periods-rule",
        ),
        pytest.param(
            lambda raw: raw["blinding"].pop("reference_read_blinded_to_period"),
            "reference_read_blinded_to_period",
            id="blinding-to-period-undeclared",
        ),
    ],
)
def test_review_fields_of_the_plan_are_validated(tmp_path, edit, match):
    import yaml

    from studyval.errors import InputValidationError
    from studyval.plan import plan_path

    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    edit(raw)
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises((InputValidationError, ValueError), match=match):
        load_plan(path)


# ----------------------------------------------------------------------------- review, round 2


def test_adjusted_comparison_recovers_the_truth(bundle):
    adj = _t(bundle, "adjusted_comparison").set_index("measure")
    coef = _t(bundle, "adjusted_coefficients")
    prim = _t(bundle, "primary_comparison").set_index("measure")
    truth = TRUE_PARAMETERS["adjusted_comparison"]
    for m in ("detection", "referral"):
        r = adj.loc[m]
        # the same VCF-positive first scans as the primary comparison
        assert r["n_index"] == prim.at[m, "denominator"]
        assert r["n_control"] == prim.at[m, "control_denominator"]
        assert r["crude_difference"] == pytest.approx(prim.at[m, "difference"], abs=1e-12)
        # true standardised difference within 3.29 SEs; both CIs cover the estimate
        assert (
            abs(r["difference"] - truth[f"standardised_difference_{m}"]) < 3.29 * r["difference_se"]
        )
        assert r["ci_low"] < r["difference"] < r["ci_high"]
        assert r["boot_ci_low"] < r["difference"] < r["boot_ci_high"]
        assert r["boot_n_failed"] == 0
        # no confounding in the synthetic data: standardised and crude agree closely
        assert abs(r["difference"] - r["crude_difference"]) < 0.02
        period = coef[(coef["measure"] == m) & (coef["term"] == "period: prospective")].iloc[0]
        assert np.exp(period["estimate"]) == pytest.approx(r["odds_ratio"], rel=1e-12)
        terms = set(coef.loc[coef["measure"] == m, "term"])
        assert {"age", "genant_grade: 2", "genant_grade: 3", "sex: M"} <= terms
        assert {"ct_region: abdomen_pelvis", "ct_region: chest_abdomen_pelvis"} <= terms


def test_patients_in_both_periods_are_analysed_in_their_first_period(bundle, cohort):
    flow = _t(bundle, "flow")
    both = flow[flow["stage"] == "earlier_period_patient"].set_index("period")
    k = TRUE_PARAMETERS["patients_in_both_periods"]
    assert both.at["prospective", "n_scans"] == both.at["prospective", "n_patients"] == k
    assert both.at["retrospective", "n_scans"] == 0
    c = cohort.clinical
    inc = c[c["exclusion_reason"] == "none"]
    twice = inc.groupby("patient_id")["period"].nunique()
    assert int((twice > 1).sum()) == k
    diffs = _t(bundle, "period_differences_all_scans").set_index("measure")
    assert (diffs["n_patients_both_periods"] <= k).all()
    for m in ("detection", "referral"):
        r = diffs.loc[m]
        assert r["ci_low"] < r["difference"] < r["ci_high"]
        assert r["n_failed"] == 0


def test_p_chart_centres_are_declared_before_go_live(bundle, cohort):
    summary = _t(bundle, "monitoring_summary")
    pc = summary[summary["chart"] == "p-chart"].set_index("measure")
    plan = load_plan(SLUG)
    assert plan.monitoring.centre == "standard"
    for m in ("detection", "referral"):
        assert pc.at[m, "centre"] == plan.baseline(m).target
        assert "before go-live" in pc.at[m, "centre_source"]
    # the AI flag rate's centre: the tool's flag rate on the retrospective included scans
    c, p = cohort.clinical, cohort.predictions
    ret = c[(c["period"] == "retrospective") & (c["exclusion_reason"] == "none")]["case_id"]
    ai = p[(p["model_name"] == "VCF-AI") & p["case_id"].isin(ret) & (p["status"] == "ok")]
    assert pc.at["ai_flag_rate", "centre"] == pytest.approx((ai["score"] >= 0.5).mean(), rel=1e-12)
    fa = _t(bundle, "monitoring_false_alarm")
    one = fa[fa["kind"] != "set"]
    total = fa[fa["kind"] == "set"].iloc[0]
    assert len(one) == 5 and total["horizon_weeks"] == 8
    assert one["p_false_alarm"].max() <= total["p_false_alarm"] <= one["p_false_alarm"].sum()
    assert 0.08 < total["p_false_alarm"] < 0.25


def test_failed_runs_under_both_conventions(bundle):
    fr = _t(bundle, "failed_runs_sensitivity")
    acc = _t(bundle, "accuracy")
    rates = _t(bundle, "rates").set_index(["period", "measure"])
    plan_rows = fr[fr["role"] == "plan"]
    for r in plan_rows[plan_rows["analysis"] == "standalone: VCF-AI"].itertuples():
        a = acc[
            (acc["reader"] == "VCF-AI")
            & (acc["period"] == r.period)
            & (acc["measure"] == r.measure)
        ]
        assert a["estimate"].iloc[0] == pytest.approx(r.estimate, abs=1e-12)
    for r in plan_rows[plan_rows["analysis"].str.startswith("pathway")].itertuples():
        assert r.estimate == pytest.approx(
            rates.at[("prospective", r.measure), "estimate"], abs=1e-12
        )
    sens = fr[fr["role"] == "sensitivity"]
    assert set(sens["convention"]) == {"failed run counted as no flag", "failed runs left out"}
    # counting a failure as no flag keeps every scan: denominators grow by the failures
    for period in ("retrospective", "prospective"):
        for m in ("sensitivity", "specificity"):
            sel = fr[(fr["period"] == period) & (fr["measure"] == m)].set_index("role")
            assert sel.at["sensitivity", "denominator"] == (
                sel.at["plan", "denominator"] + sel.at["plan", "n_failed"]
            )


def test_checklist_states_the_planned_blinding_of_the_reference_read(bundle):
    ck = _t(bundle, "checklist").set_index("item")
    text = ck.at["13b", "content"]
    assert "blinded to the AI output, the period (scan date)" in text
    assert "not blinded" not in text
    from studyval.protocols.vcf_opportunistic import _blinding_text

    plan = load_plan(SLUG)
    open_read = plan.blinding.model_copy(update={"reference_read_blinded_to_period": False})
    assert "not blinded to the period" in _blinding_text(
        plan.model_copy(update={"blinding": open_read})
    )
    assert "Not stated" in _blinding_text(plan.model_copy(update={"blinding": None}))


def test_report_hard_codes_no_plan_fact():
    """The report reads registry facts, baselines, planned counts and rules from B.plan."""
    import re

    import yaml

    from studyval.plan import plan_path

    text = (Path(__file__).resolve().parents[1] / "reports" / SLUG / "report.qmd").read_text(
        encoding="utf-8"
    )
    code = "\n".join(
        line
        for line in text.splitlines()
        if not line.lstrip().startswith("#") or (line.lstrip().startswith("# ") and "{#" in line)
    )
    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    facts = [raw["registry"]["id"], raw["registry"]["title"], "1,000", "Dika", "ZebraMed"]
    found = [f for f in facts if re.search(rf"(?<![\w.,]){re.escape(f)}(?![\w,]|\.\d)", code)]
    assert not found, found
    for pattern in (r"\b77 ?%|\b43 ?%|0\.77|0\.43", r"2 months|8 weeks", r"0\.90\b|0\.60\b"):
        assert not re.findall(pattern, code), pattern
    assert "B.plan" in code and "B.md_plan_statement()" in code


def test_the_plans_other_options_run_through_the_steps(inputs):
    """Baseline-week centres, failures as no flag, the pathway without failed runs, and each
    period's first scan: each changes what the plan says and nothing else."""
    from studyval.pipeline import load_inputs
    from studyval.protocol import protocol

    plan = load_plan(SLUG)
    plan = plan.model_copy(
        update={
            "monitoring": plan.monitoring.model_copy(
                update={
                    "centre": "baseline_weeks",
                    "baseline_weeks": 2,
                    "false_alarm_simulations": 500,
                }
            ),
            "failed_ai_runs": plan.failed_ai_runs.model_copy(
                update={"standalone": "as_negative", "pathway": "exclude"}
            ),
            "unit": plan.unit.model_copy(update={"patients_in_both_periods": "each_period"}),
        }
    )
    cohort = load_inputs(SLUG, inputs["clinical"], inputs["predictions"], plan=plan).cohort
    steps = ["flow", "rates", "accuracy", "monitoring", "failed_runs"]
    t = protocol(SLUG).steps.run(steps, cohort, plan)
    pts = t["monitoring_pchart"]
    assert (pts.loc[pts["week"] <= 2, "signal"] == "baseline").all()
    det = pts[pts["measure"] == "detection"]
    assert det["centre"].iloc[0] == pytest.approx(
        det["successes"][:2].sum() / det["n"][:2].sum(), rel=1e-12
    )
    assert set(t["monitoring_false_alarm"]["horizon_weeks"]) == {6}
    flow = t["flow"]
    assert flow.loc[flow["stage"] == "earlier_period_patient", "n_scans"].sum() == 0
    # failed runs counted as no flag: every first scan stays in the tool's accuracy
    acc = t["accuracy"]
    ai = acc[(acc["reader"] == "VCF-AI") & (acc["period"] == "retrospective")].set_index("measure")
    plan_fr = t["failed_runs_sensitivity"]
    own = plan_fr[(plan_fr["role"] == "plan") & (plan_fr["period"] == "retrospective")]
    assert own["convention"].eq("failed run counted as no flag").all()
    for r in own.itertuples():
        assert ai.at[r.measure, "denominator"] == r.denominator
    # the pathway without the prospective scans whose AI run failed
    pathway = plan_fr[plan_fr["analysis"].str.startswith("pathway") & (plan_fr["role"] == "plan")]
    rates = t["rates"].set_index(["period", "measure"])
    for r in pathway.itertuples():
        assert r.convention == "failed runs left out"
        assert rates.at[("prospective", r.measure), "denominator"] == r.denominator
