"""vcf-opportunistic end to end: bundle tables, truth recovery, planted drift, optional commercial tool, report."""

from __future__ import annotations

from pathlib import Path

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
def bundle(protocol_bundle) -> Path:
    """The session's bundle of vcf-opportunistic (the bundled plan), its report rendered with
    Jupyter: the tables, figures and manifest are those of a run without report, and
    test_rendered_report reads its report (tests/conftest.py)."""
    return protocol_bundle(SLUG, render=True)


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
        "before_after",
        "accuracy",
        "auc",
        "paired",
        "monitoring_pchart",
        "monitoring_cusum",
        "monitoring_summary",
        "rates_all_scans",
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
        ).table()
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
    assert row["mcnemar_method"] == "exact" and row["p_value"] == row["p_exact"]


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
    ss = _t(bundle, "sample_size")
    row = ss[
        (ss["measure"] == "detection")
        & (ss["quantity"] == "power of the planned retrospective scans")
    ].iloc[0]
    # 1000 x 0.18 = 180 VCF-positive scans; pw(180, 0.77, 0.90) in R = 0.998047858898297
    assert row["vcf_scans"] == 180 and row["power"] == pytest.approx(0.998047858898297, rel=1e-9)
    weeks = ss[
        (ss["measure"] == "detection")
        & (ss["quantity"] == "prospective weeks for the one-sample test")
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


def test_run_without_commercial_rows_reports_its_absence(cohort, tmp_path):
    paths = generate(commercial=False).write(tmp_path / "in")
    out = tmp_path / "bundle"
    run_protocol(
        SLUG, clinical=paths["clinical"], predictions=paths["predictions"], out=out, render=False
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
        "Detection and referral against the baselines",
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
