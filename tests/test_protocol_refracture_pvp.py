"""refracture-pvp end to end: bundle tables, truth recovery, sample-size message, survival bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from studyval.analysis.cox import nested_cox_test
from studyval.analysis.cox_zph import cox_zph, zph_smooth
from studyval.analysis.internal_validation import cox_optimism
from studyval.analysis.paired_bootstrap import harrell_c_difference
from studyval.analysis.survival import cox, kaplan_meier
from studyval.analysis.survival_validation import risk_groups_at_horizon
from studyval.bundle import read_manifest
from studyval.errors import EstimationError, InputValidationError
from studyval.figures.survival import calibration_horizon_figure, km_figure, zph_figure
from studyval.pipeline import load_inputs, run_protocol
from studyval.plan import load_plan
from studyval.steps.prognostic import design_frame, model_terms
from studyval.synthetic.refracture_pvp import TRUE_LOG_HR, generate

SLUG = "refracture-pvp"


@pytest.fixture(scope="module")
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of refracture-pvp (tests/conftest.py)."""
    return protocol_inputs(SLUG)


#: Bootstrap refits per model in these tests (the plan's 200 run in ``studyval demo``); keeps the file < 60 s.
N_BOOT_TEST = 40


@pytest.fixture(scope="module")
def bundle(protocol_bundle) -> Path:
    """The session's bundle made with the plan trimmed to N_BOOT_TEST refits (conftest's
    ``trimmed_plan``, passed to ``run_protocol``)."""
    return protocol_bundle(SLUG, n_resamples=N_BOOT_TEST)


def _table(bundle: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(bundle / "tables" / f"{name}.parquet")


def test_bundle_tables_and_figures(bundle):
    manifest = read_manifest(bundle)
    assert manifest["protocol"]["slug"] == SLUG
    for name in (
        "flow",
        "baseline",
        "sample_size",
        "sample_size_criteria",
        "cox_coefficients",
        "cox_fit",
        "zph",
        "zph_residuals",
        "performance",
        "optimism",
        "calibration_groups",
        "calibration_summary",
        "km_risk_groups",
        "km_at_risk",
        "decision_curve",
        "comparison",
        "checklist",
        "models",
        "warnings",
    ):
        assert (bundle / "tables" / f"{name}.parquet").is_file(), name
    for fig in ("flow", "km_risk_groups", "calibration_horizon", "zph", "decision_curve"):
        assert (bundle / "figures" / f"{fig}.png").is_file(), fig
    assert set(manifest["dictionary"]["removed_direct_identifier_columns"]) == {
        "patient_name",
        "medical_record_number",
        "date_of_birth",
    }


def test_flow_counts(bundle):
    flow = _table(bundle, "flow").set_index(["stage", "group"])["n"]
    truth = generate().truth
    assert flow[("screened", "")] == truth["realised"]["n_screened"]
    assert flow[("included", "")] == 560
    assert flow[("excluded", "")] == sum(truth["excluded_patients"].values())
    assert (
        flow[("status_end_of_follow_up", "re-fracture of a non-operated vertebra")]
        == truth["realised"]["refractures"]
    )
    assert (
        flow[("status_end_of_follow_up", "death before re-fracture")] == truth["realised"]["deaths"]
    )


def test_true_hazard_ratios_covered(bundle):
    coefs = _table(bundle, "cox_coefficients")
    primary = coefs[coefs["model"] == "Clinical + MRI"].set_index("term")
    assert set(primary.index) == set(TRUE_LOG_HR)
    for term, beta in TRUE_LOG_HR.items():
        lo, hi = primary.loc[term, ["ci_low", "ci_high"]]
        assert lo <= np.exp(beta) <= hi, (term, lo, np.exp(beta), hi)


def test_optimism_correction_is_sane(bundle):
    opt = _table(bundle, "optimism").set_index(["model", "measure"])
    for model in ("Clinical + MRI", "Clinical only"):
        row = opt.loc[(model, "harrell_c")]
        assert row["optimism"] > 0
        assert row["corrected"] == pytest.approx(row["apparent"] - row["optimism"])
        assert 0.6 < row["corrected"] < row["apparent"]
        assert opt.loc[(model, "calibration_slope"), "corrected"] < 1.0
        assert row["n_resamples"] == N_BOOT_TEST
        assert row["n_succeeded"] + row["n_failed"] == N_BOOT_TEST
        assert opt.loc[(model, "somers_dxy"), "label"] == "Somers' Dxy (2C - 1)"
        assert opt.loc[model, "label"].notna().all()
    # more parameters, more optimism
    assert (
        opt.loc[("Clinical + MRI", "harrell_c"), "optimism"]
        > opt.loc[("Clinical only", "harrell_c"), "optimism"]
    )


@pytest.fixture(scope="module")
def design(inputs):
    plan = load_plan(SLUG)
    loaded = load_inputs(SLUG, inputs["clinical"], None, plan=plan)
    return plan, design_frame(loaded.cohort, plan), model_terms(loaded.cohort, plan)


def test_optimism_table_is_cox_optimism(bundle, design):
    # the runner's table is cox_optimism's, with the same seeds (plan.seed + model index)
    plan, d, terms = design
    k, m = next((k, m) for k, m in enumerate(plan.models) if m.role == "comparator")
    res = cox_optimism(
        d,
        duration="time",
        event="status",
        covariates=terms[m.name],
        horizon=float(plan.outcome.horizon),
        event_codes="event_code",
        cause=plan.outcome.cause,
        n_resamples=N_BOOT_TEST,
        seed=plan.seed + k,
    )
    opt = _table(bundle, "optimism")
    ours = opt[opt["model"] == m.name].reset_index(drop=True)
    expected = res.to_frame()
    for col in ("apparent", "training", "test", "optimism", "corrected", "optimism_mc_se"):
        np.testing.assert_array_equal(ours[col], expected[col], err_msg=col)
    assert list(ours["measure"]) == list(res.measures)
    assert list(ours["n_failed"]) == list(expected["n_failed"])
    assert (ours["procedure"] == res.model).all()


def test_difference_in_c_is_the_paired_bootstrap(bundle, design):
    plan, d, terms = design
    cmp = _table(bundle, "comparison").set_index("comparison")
    row = cmp.loc["difference in Harrell's C"]
    lp = {
        m.name: cox(d, duration="time", event="status", covariates=terms[m.name]).predict_risk(d)
        for m in plan.models
    }
    comp = next(m.name for m in plan.models if m.role == "comparator")
    dc = harrell_c_difference(
        d["time"].to_numpy(float),
        d["status"].to_numpy(int),
        lp[plan.primary_model],
        lp[comp],
        n_resamples=N_BOOT_TEST,
        seed=plan.seed + 500,
        method="percentile",
    )
    assert (row["estimate"], row["se"], row["ci_low"], row["ci_high"]) == (
        dc.difference,
        dc.se,
        dc.ci_low,
        dc.ci_high,
    )
    assert row["n_resamples"] == N_BOOT_TEST and row["n_failed"] == dc.n_failed == 0
    assert f"{N_BOOT_TEST} resamples" in row["method"]


def test_sample_size_message(bundle):
    ss = _table(bundle, "sample_size").set_index("check")
    reg = ss.loc["registered"]
    assert not reg["adequate"]
    assert reg["required"] == 927
    assert reg["message"] == (
        "The registered 560 participants are 367 short of the 927 that the Riley criteria "
        "(illustrative planning values) requires (926.5 unrounded)."
    )


def test_comparator_lr_test(bundle):
    cmp = _table(bundle, "comparison").set_index("comparison")
    lr = cmp.loc["likelihood ratio"]
    fit = _table(bundle, "cox_fit").set_index("model")
    expected = 2 * (fit.loc["Clinical + MRI", "loglik"] - fit.loc["Clinical only", "loglik"])
    assert lr["estimate"] == pytest.approx(expected)
    assert lr["df"] == 2


@pytest.fixture(scope="module")
def fits(design):
    plan, d, terms = design
    return {
        m.name: cox(d, duration="time", event="status", covariates=terms[m.name])
        for m in plan.models
    }


def test_lr_row_is_nested_cox_test(bundle, design, fits):
    plan, _, _ = design
    comp = next(m.name for m in plan.models if m.role == "comparator")
    lr = nested_cox_test(fits[plan.primary_model], fits[comp])
    row = _table(bundle, "comparison").set_index("comparison").loc["likelihood ratio"]
    assert (row["estimate"], row["df"], row["p_value"]) == (lr.chisq, lr.df, lr.p_value)
    assert row["terms_added"] == lr.terms_added == "pdff_percent, r2star_per_s"


def test_baseline_survival_table_is_the_fits_baseline_survival(bundle, design, fits):
    plan, _, _ = design
    tab = _table(bundle, "baseline_survival").set_index("model")
    h = float(plan.outcome.horizon)
    for name, f in fits.items():
        s0 = f.baseline_survival([h]).iloc[0]
        assert tab.loc[name, "baseline_survival_at_horizon"] == s0["survival"]
        assert tab.loc[name, "cumhaz_at_horizon"] == s0["cumhaz"]


def test_risk_group_tables_are_risk_groups_at_horizon(bundle, design, fits):
    plan, d, _ = design
    risk = np.clip(
        fits[plan.primary_model].predict_risk_at(d, float(plan.outcome.horizon)), 1e-8, 1 - 1e-8
    )
    res = risk_groups_at_horizon(
        d["time"].to_numpy(float),
        d["status"].to_numpy(int),
        risk,
        horizon=float(plan.outcome.horizon),
        cuts=plan.extra["risk_groups"],
        labels=plan.extra["risk_group_labels"],
    )
    pd.testing.assert_frame_equal(_table(bundle, "risk_groups"), res.to_frame())
    assert list(_table(bundle, "risk_groups")["group"]) == ["< 10%", "10-20%", ">= 20%"]
    lrk = _table(bundle, "risk_group_logrank").iloc[0]
    assert lrk["chisq"] == res.km.logrank.chisq and lrk["cuts"] == "0.1, 0.2"


def test_zph_smooth_table_is_zph_smooth(bundle, design, fits):
    plan, d, _ = design
    z = cox_zph(fits[plan.primary_model], transform=plan.extra["zph_transform"], data=d)
    pd.testing.assert_frame_equal(_table(bundle, "zph_smooth"), zph_smooth(z).to_frame())


# ----------------------------------------------------------------------------- bad inputs


def _rewrite(inputs, tmp_path, edit) -> Path:
    df = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    edit(df)
    path = tmp_path / "clinical.csv"
    df.to_csv(path, index=False, lineterminator="\n")
    return path


def _run(path: Path, tmp_path: Path) -> None:
    run_protocol(SLUG, clinical=path, predictions=None, out=tmp_path / "out", render=False)


def _first_included(df: pd.DataFrame) -> int:
    return int(np.flatnonzero(df["exclusion_reason"].to_numpy() == "none")[0])


def test_negative_follow_up_rejected(inputs, tmp_path):
    def edit(df):
        df.loc[_first_included(df), "followup_days"] = "-5"

    with pytest.raises(InputValidationError, match="followup_days"):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)
    assert not (tmp_path / "out").exists()


def test_censored_on_the_day_of_surgery_rejected(inputs, tmp_path):
    # day-0 events are accepted (tests/test_bad_inputs_protocols.py runs one); day-0 censoring is not
    def edit(df):
        i = _first_included(df)
        df.loc[i, "followup_days"] = "0"
        df.loc[i, "followup_end_date"] = df.loc[i, "surgery_date"]
        df.loc[i, "event"] = "0"

    with pytest.raises(
        InputValidationError,
        match=r"followup_days', row \d+: an included patient censored on the day of surgery",
    ):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)
    assert not (tmp_path / "out").exists()


def test_event_code_outside_dictionary_rejected(inputs, tmp_path):
    def edit(df):
        df.loc[_first_included(df), "event"] = "3"

    with pytest.raises(InputValidationError, match=r"event"):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)


def test_dates_in_wrong_order_rejected(inputs, tmp_path):
    def edit(df):
        i = _first_included(df)
        end = pd.Timestamp(df.loc[i, "surgery_date"]) - pd.Timedelta(days=10)
        df.loc[i, "followup_end_date"] = end.strftime("%Y-%m-%d")

    with pytest.raises(InputValidationError, match=r"before surgery_date"):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)


def test_follow_up_days_inconsistent_with_dates_rejected(inputs, tmp_path):
    def edit(df):
        i = _first_included(df)
        df.loc[i, "followup_days"] = str(int(df.loc[i, "followup_days"]) + 7)

    with pytest.raises(InputValidationError, match=r"differs from the \d+ days"):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)


def test_all_censored_is_a_clear_error(inputs, tmp_path):
    def edit(df):
        inc = df["exclusion_reason"] == "none"
        df.loc[inc, "event"] = "0"

    with pytest.raises(EstimationError, match=r"no re-fracture of a non-operated vertebra events"):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)
    assert not (tmp_path / "out").exists()


def test_horizon_beyond_last_follow_up_is_a_clear_error(inputs, tmp_path):
    def edit(df):
        inc = df["exclusion_reason"] == "none"
        days = df.loc[inc, "followup_days"].astype(int)
        cut = days > 300
        df.loc[inc & cut.reindex(df.index, fill_value=False), "event"] = "0"
        new = days.clip(upper=300)
        df.loc[inc, "followup_days"] = new.astype(str)
        ends = pd.to_datetime(df.loc[inc, "surgery_date"]) + pd.to_timedelta(new, unit="D")
        df.loc[inc, "followup_end_date"] = ends.dt.strftime("%Y-%m-%d")

    with pytest.raises(
        EstimationError, match=r"horizon 365 days \(1 year\) is at or beyond the last"
    ):
        _run(_rewrite(inputs, tmp_path, edit), tmp_path)


# ----------------------------------------------------------------------------- figures


def test_survival_figures_smoke(tmp_path):
    rng = np.random.default_rng(3)
    n = 200
    g = rng.integers(0, 2, n)
    t = rng.exponential(300 / (1 + g))
    c = rng.uniform(50, 400, n)
    time = np.minimum(t, c)
    event = (t <= c).astype(int)
    km = kaplan_meier(time, event, groups=np.array(["low", "high"])[g])
    fig = km_figure(km.to_frame(), km.at_risk([0, 100, 200, 300]), groups=["low", "high"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # curves and the numbers-at-risk table
    texts = {t.get_text() for t in fig.axes[1].texts}
    assert str(int((g == 1).sum())) in texts  # number at risk at time 0 in group "high"
    fig = km_figure(km.to_frame(), km.at_risk([0, 100, 200]), cumulative=True, xmax=200)
    assert fig.axes[0].get_xlim() == (0.0, 200.0)
    curve = pd.DataFrame(
        {"predicted": np.linspace(0.05, 0.5, 20), "observed": np.linspace(0.04, 0.55, 20)}
    )
    groups = pd.DataFrame(
        {
            "predicted": [0.1, 0.3],
            "observed": [0.12, 0.28],
            "ci_low": [0.05, 0.2],
            "ci_high": [0.2, 0.36],
        }
    )
    assert isinstance(calibration_horizon_figure(curve, groups, horizon_label="1 year"), Figure)
    res = pd.DataFrame(
        {
            "term": ["a"] * 30 + ["b"] * 30,
            "time": np.tile(np.arange(30.0), 2),
            "residual": rng.normal(size=60),
        }
    )
    smooth = pd.DataFrame(
        {"term": ["a", "a", "b", "b"], "time": [0.0, 29.0, 0.0, 29.0], "fit": [0.1, 0.0, -0.1, 0.2]}
    )
    fig = zph_figure(
        res, smooth, tests=pd.DataFrame({"term": ["a", "b"], "p_value": [0.5, 0.0001]})
    )
    assert [ax.get_title() for ax in fig.axes] == ["a  (p = 0.500)", "b  (p < 0.001)"]


def test_day_zero_events_enter_the_survival_decision_curve_as_recorded():
    # a re-fracture or death on the day of surgery (time 0) is accepted; its Kaplan-Meier risk at
    # the horizon is that of survival::survfit on the times as recorded
    from studyval.analysis.decision_curve_survival import net_benefit_survival

    t = np.array([0, 0, 3, 5, 5, 8, 12, 15, 20, 30.0])
    e = np.array([1, 0, 1, 0, 1, 1, 0, 1, 0, 0])
    risk = np.linspace(0.05, 0.5, t.size)
    dc = net_benefit_survival(t, e, {"m": risk}, horizon=10.0, thresholds=[0.1]).to_frame()
    every = dc[dc["strategy"] == "treat all"].iloc[0]
    recorded = kaplan_meier(t, e, times=[10.0]).to_frame()["survival"].iloc[0]
    assert every["km_risk_treated"] == pytest.approx(1 - recorded, abs=1e-12)


# ----------------------------------------------------------------------------- an instance of the type


def test_eligibility_bounds_are_the_plans_cohort_rules(inputs):
    """The registry's age 50-90 is the plan's cohort rule: an amended bound moves the check."""
    from studyval.protocols.refracture_pvp import check_eligibility
    from studyval.study_cohort import CohortRule

    loaded = load_inputs(SLUG, inputs["clinical"], None)
    clin, plan = loaded.cohort.clinical.copy(), loaded.plan
    i = int(np.flatnonzero(clin["exclusion_reason"].astype(str).to_numpy() == "none")[0])
    clin.loc[clin.index[i], "age"] = 93
    (v,) = check_eligibility(clin, plan, label="clinical.csv")
    assert (v.column, v.row) == ("age", i + 2) and "age_outside_50_90" in v.rule
    wider = [
        r.model_copy(update={"max": 95.0}) if r.column == "age" else r for r in plan.cohort.rules
    ]
    amended = plan.model_copy(update={"cohort": plan.cohort.model_copy(update={"rules": wider})})
    assert check_eligibility(clin, amended, label="clinical.csv") == []
    assert isinstance(plan.cohort.rules[0], CohortRule)


def test_flow_and_baseline_are_the_types_steps(bundle, inputs):
    """The participant flow and baseline table are the prognostic-model type's, from the plan."""
    from studyval.study_types import prognostic_model

    loaded = load_inputs(SLUG, inputs["clinical"], None)
    flow = prognostic_model.flow_counts(loaded.cohort, loaded.plan)
    pd.testing.assert_frame_equal(flow, _table(bundle, "flow"), check_dtype=False)
    reasons = flow[flow["stage"] == "excluded_reason"].set_index("group")["detail"]
    assert reasons["age_outside_50_90"] == "age outside 50-90 years"  # the plan's words
    base = _table(bundle, "baseline")
    assert set(base["by"]) == {"outcome"}
    assert list(dict.fromkeys(base["group"])) == [
        "Overall",
        "re-fracture by 1 year",
        "no re-fracture observed by 1 year",
    ]
    assert {"cement_leakage", "pdff_percent", "procedure"} <= set(base["variable"])


# ----------------------------------------------------------------------------- plan 1.1 (issue 16)


def test_competing_risk_tables_are_the_analysis_functions(bundle, design, fits):
    """cr_incidence = incidence_against_km on the risk groups of the risk_groups step;
    cs_absolute_risk = cause-specific Cox models of re-fracture and death combined (R oracles in
    tests/test_cumulative_incidence.py, test_cause_specific_cox.py, test_competing_risks_brier.py,
    test_competing_risks_calibration.py)."""
    from studyval.analysis.competing_risks_calibration import (
        calibration_groups_competing,
        calibration_slope_competing,
    )
    from studyval.analysis.cumulative_incidence import incidence_against_km
    from studyval.steps import competing_risks as crsteps

    plan, d, terms = design
    h = float(plan.outcome.horizon)
    risk_km = np.clip(fits[plan.primary_model].predict_risk_at(d, h), 1e-8, 1 - 1e-8)
    ref = incidence_against_km(
        d["time"], d["event_code"], cause=1, horizon=h, predicted_risk=risk_km,
        cuts=plan.extra["risk_groups"], labels=plan.extra["risk_group_labels"], causes=[1, 2],
    )  # fmt: skip
    cri = _table(bundle, "cr_incidence")
    pd.testing.assert_frame_equal(cri.drop(columns="model"), ref.to_frame())
    assert cri["group"].tolist() == ["all", "< 10%", "10-20%", ">= 20%"]
    # death competes: one minus Kaplan-Meier overstates the absolute risk
    assert (cri["excess"] >= 0).all() and cri["excess"].iloc[0] > 0
    # the groups are those of the risk_groups table
    rg = _table(bundle, "risk_groups")
    assert cri["n"].iloc[1:].tolist() == rg["n"].tolist()
    np.testing.assert_array_equal(cri["km_risk"].iloc[1:], rg["km_risk"])

    frame = d.assign(code=d["event_code"])
    cs = crsteps.fit_cause_specific(frame, terms[plan.primary_model], plan)
    assert set(cs.fits) == {1, 2}
    risk = crsteps.predicted_incidence(cs, frame, plan)
    cal = calibration_groups_competing(frame["time"], frame["code"], risk, cause=1, horizon=h,
                                       n_groups=5, causes=[1, 2])  # fmt: skip
    sl = calibration_slope_competing(frame["time"], frame["code"], risk, cause=1, horizon=h,
                                     censor_at_horizon=True, causes=[1, 2])  # fmt: skip
    row = _table(bundle, "cs_absolute_risk").set_index("model").loc[plan.primary_model]
    assert (row["observed"], row["mean_predicted"], row["oe_ratio"]) == (
        cal.observed, cal.mean_predicted, cal.oe_ratio,
    )  # fmt: skip
    assert (row["slope"], row["slope_ci_low"]) == (sl.slope, sl.ci_low)
    assert row["observed"] == cri["aj_incidence"].iloc[0]
    # the deaths-censored mean beside it is the calibration step's (one analysis function)
    cal_km = _table(bundle, "calibration_summary").set_index("model").loc[plan.primary_model]
    assert row["mean_predicted_km"] == cal_km["mean_predicted"] == float(np.mean(risk_km))
    grp = _table(bundle, "cs_absolute_risk_groups")
    np.testing.assert_array_equal(
        grp.loc[grp["model"] == plan.primary_model, "observed"], cal.groups["observed"]
    )
    death = _table(bundle, "cs_cox_competing")
    prim = death[death["model"] == plan.primary_model]
    assert prim["term"].tolist() == terms[plan.primary_model]
    assert (prim["cause"] == "death before re-fracture").all() and prim["converged"].all()
    np.testing.assert_array_equal(prim["coef"], cs.fits[2].coef)
