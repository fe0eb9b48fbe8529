"""cirrhosis-sarcopenia end to end: truth recovery, competing-risk handling, eligibility rules, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis import competing_risks
from studyval.analysis import survival_validation as svv
from studyval.analysis.internal_validation import bootstrap_optimism, resample_indices
from studyval.analysis.paired_bootstrap import harrell_c_difference
from studyval.analysis.survival import harrell_c
from studyval.checklists import PLACEHOLDER
from studyval.checklists_tripod import TRIPOD_AI_ITEMS, tripod_ai_2024
from studyval.errors import EstimationError, InputValidationError, StatisticalWarning
from studyval.pipeline import load_inputs, run_protocol
from studyval.plan import load_plan
from studyval.protocols.cirrhosis_sarcopenia import _analysis_frame
from studyval.steps.competing_risks import fit_cause_specific as _fit
from studyval.steps.competing_risks import predicted_incidence as _predicted_risk
from studyval.steps.competing_risks import refit_procedure as _refit_model
from studyval.synthetic.cirrhosis_sarcopenia import TRUE_PARAMETERS, generate

SLUG = "cirrhosis-sarcopenia"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cohort():
    return generate()


@pytest.fixture(scope="module")
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of cirrhosis-sarcopenia (tests/conftest.py): ``cohort`` written."""
    return protocol_inputs(SLUG)


N_BOOTSTRAP_TEST = 50


@pytest.fixture(scope="module")
def bundle(protocol_bundle) -> Path:
    """One end-to-end run; the bootstrap is shortened to 50 resamples to keep the file under a minute
    (the plan's 200 run in ``studyval demo``): the session's bundle made with conftest's
    ``trimmed_plan``, passed to ``run_protocol``."""
    return protocol_bundle(SLUG, n_resamples=N_BOOTSTRAP_TEST)


def _table(bundle: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(bundle / "tables" / f"{name}.parquet")


def _run_modified(inputs, tmp_path, change) -> None:
    clin = pd.read_csv(inputs["clinical"], keep_default_na=False, na_values=[""])
    change(clin)
    path = tmp_path / "clinical.csv"
    clin.to_csv(path, index=False)
    run_protocol(SLUG, clinical=path, predictions=None, out=tmp_path / "out", render=False)


# ----------------------------------------------------------------------------- end to end


def test_bundle_has_every_table_and_figure(bundle):
    for name in (
        "flow",
        "baseline",
        "prevalence",
        "sample_size",
        "cox",
        "ph_test",
        "fine_gray",
        "lr_test",
        "cif_curves",
        "gray_test",
        "performance",
        "calibration_groups",
        "added_value",
        "checklist",
        "models",
    ):
        assert (bundle / "tables" / f"{name}.parquet").is_file(), name
    for fig in ("flow", "cumulative_incidence", "calibration"):
        assert (bundle / "figures" / f"{fig}.png").is_file(), fig


def test_direct_identifiers_never_reach_the_bundle(bundle, cohort):
    planted = set(cohort.clinical["patient_name"]) | set(cohort.clinical["medical_record_number"])
    text = "".join(p.read_text() for p in (bundle / "tables").glob("*.csv"))
    text += (bundle / "manifest.json").read_text()
    assert not [s for s in list(planted)[:200] if s in text]


def test_flow_counts_deaths_transplants_and_censored(bundle, cohort):
    flow = _table(bundle, "flow")
    clin = cohort.clinical
    inc = clin[clin["exclusion_reason"] == "none"]
    out = flow[flow["stage"] == "outcome"].groupby("group")["n_patients"].sum()
    assert out["death"] == (inc["event"] == 1).sum()
    assert out["liver transplantation"] == (inc["event"] == 2).sum()
    assert out["censored"] == (inc["event"] == 0).sum()
    assert int(flow.loc[flow["stage"] == "screened", "n_patients"].iloc[0]) == len(clin)


def test_true_cause_specific_hazard_ratios_are_covered(bundle):
    cox = _table(bundle, "cox")
    prim = cox[cox["model"] == "clinical+sarcopenia"]
    for cause, label in (("death", "death"), ("transplant", "liver transplantation")):
        for term in ("meld_na", "sarcopenia"):
            r = prim[(prim["cause"] == label) & (prim["term"] == term)].iloc[0]
            true = TRUE_PARAMETERS["hr"][cause][term]
            assert r["ci_low"] <= true <= r["ci_high"], (cause, term, r["hr"], true)
    death_sarc = prim[(prim["cause"] == "death") & (prim["term"] == "sarcopenia")].iloc[0]
    assert death_sarc["ci_low"] > 1.0  # the planted effect is detected


def test_sarcopenia_adds_value_and_calibration_is_reported(bundle):
    lr = _table(bundle, "lr_test")
    assert lr.loc[lr["cause"] == "death", "p_value"].iloc[0] < 0.05
    added = _table(bundle, "added_value")
    ext = added[(added["set"] == "external") & (added["measure"] == "td_auc")].iloc[0]
    assert ext["difference"] > 0
    cal = _table(bundle, "calibration_summary")
    internal = cal[cal["set"] == "internal"]
    assert np.allclose(internal["oe_ratio"], 1.0, atol=0.1)  # apparent calibration in the large


def test_performance_has_internal_corrected_and_external(bundle):
    perf = _table(bundle, "performance")
    internal = perf[(perf["set"] == "internal") & (perf["measure"] == "td_auc")]
    assert len(internal) == 2 and internal["corrected"].between(0.5, 1).all()
    assert internal["optimism"].notna().all()
    external = perf[(perf["set"] == "external") & (perf["measure"] == "td_auc")]
    assert len(external) == 2 and external["apparent"].between(0.5, 1).all()
    # no correction externally: optimism and corrected are missing, never a copy of the apparent
    assert external["optimism"].isna().all() and external["corrected"].isna().all()
    opt = _table(bundle, "optimism")
    assert (opt["n_resamples"] == N_BOOTSTRAP_TEST).all()
    assert (opt["n_succeeded"] == N_BOOTSTRAP_TEST).all()  # every refit succeeded
    assert (opt["n_failed"] == 0).all() and (opt["failures"] == "").all()


@pytest.fixture(scope="module")
def frames(inputs):
    """The development and external frames and the development fits, as the runner builds them."""
    plan = load_plan(SLUG)
    loaded = load_inputs(SLUG, inputs["clinical"], None, plan=plan)
    d = _analysis_frame(loaded.cohort, plan)
    dev = d[d["set"] == "internal"].reset_index(drop=True)
    ext = d[d["set"] == "external"].reset_index(drop=True)
    fits = {m.name: _fit(dev, list(m.covariates), plan) for m in plan.models}
    return plan, dev, ext, fits


def test_performance_and_added_value_come_from_the_analysis_functions(bundle, frames):
    plan, _, ext, fits = frames
    o = plan.outcome
    perf = _table(bundle, "performance").set_index(["set", "model", "measure"])
    t, c = ext["time"].to_numpy(float), ext["code"].to_numpy(int)
    risk = {}
    for name, f in fits.items():
        risk[name] = competing_risks.predict_cumulative_incidence(
            f.fits, ext, cause=o.cause, times=[o.horizon], product_limit=False
        ).risk[:, 0]
        br = competing_risks.brier_competing(t, c, risk[name], cause=o.cause, horizon=o.horizon)
        auc = svv.time_dependent_auc(t, c, risk[name], horizon=o.horizon, cause=o.cause)
        hc = harrell_c(t, (c == o.cause).astype(int), risk[name])
        for measure, res in (("brier", br), ("td_auc", auc), ("harrell_c", hc)):
            row = perf.loc[("external", name, measure)]
            assert row["apparent"] == res.estimate
            assert (row["apparent_ci_low"], row["apparent_ci_high"]) == (res.ci_low, res.ci_high)
        assert perf.loc[("external", name, "ipa"), "apparent"] == br.ipa
        assert perf.loc[("external", name, "brier"), "null"] == br.null_estimate
    # internal: apparent from the data, optimism and corrected from bootstrap_optimism's table
    opt = _table(bundle, "optimism").set_index(["model", "measure"])
    internal = perf.loc["internal"]
    for (name, measure), row in internal.iterrows():
        assert row["corrected"] == opt.loc[(name, measure), "corrected"]
        assert row["optimism"] == opt.loc[(name, measure), "optimism"]
        assert row["apparent"] == pytest.approx(opt.loc[(name, measure), "apparent"], abs=1e-12)
    # difference in Harrell's C, external centre: harrell_c_difference, no p value
    added = _table(bundle, "added_value").set_index(["set", "measure"])
    row = added.loc[("external", "harrell_c")]
    prim, comp = row["model_a"], row["model_b"]
    dc = harrell_c_difference(
        t,
        (c == o.cause).astype(int),
        risk[prim],
        risk[comp],
        n_resamples=N_BOOTSTRAP_TEST,
        seed=plan.seed + 2,
        method="percentile",
        labels=(prim, comp),
    )
    assert (row["difference"], row["ci_low"], row["ci_high"], row["se"]) == (
        dc.difference,
        dc.ci_low,
        dc.ci_high,
        dc.se,
    )
    assert row["n_resamples"] == N_BOOTSTRAP_TEST and row["n_failed"] == dc.n_failed == 0
    assert added.xs("harrell_c", level="measure")["p_value"].isna().all()


def test_every_model_gets_the_same_resamples(bundle):
    opt = _table(bundle, "optimism")
    plan = load_plan(SLUG)
    assert set(opt["seed"]) == {plan.seed}  # same seed, same resample_indices for every model
    assert (
        opt.groupby("model")["measure"]
        .apply(list)
        .map(lambda m: m == ["td_auc", "harrell_c", "brier", "ipa"])
        .all()
    )


def test_a_resample_ending_before_the_horizon_is_a_counted_failure(frames):
    # The predicted incidence is not defined after the last follow-up time of the data the
    # models were fitted on: such a resample fails (counted, with its reason), it is never
    # given the incidence carried forward.
    plan, dev, _, _ = frames
    model = next(m for m in plan.models if m.role != "primary")
    early = np.flatnonzero(dev["time"].to_numpy(float) < 300.0)  # deaths and transplants, all < 1 y
    indices = [*resample_indices(n_rows=len(dev), n_resamples=19, seed=1), np.sort(early)]
    with pytest.warns(StatisticalWarning, match="1 of 20 resamples failed"):
        r = bootstrap_optimism(dev, _refit_model(model, plan), indices=indices)
    assert r.n_failed == 1 and r.n_succeeded == 19
    ((reason, count),) = r.failures
    assert count == 1
    assert reason.startswith("predict: the last follow-up time of the fitted data")
    assert np.isnan(r.training_replicates[19]).all()


def test_a_predicted_incidence_above_one_is_an_estimation_error(frames):
    plan, dev, _, fits = frames
    nd = dev.head(3).copy()
    nd["meld_na"] = [15.0, 20.0, 200.0]  # far outside the data: exp(x beta) explodes
    f = fits["clinical"]
    with pytest.warns(StatisticalWarning, match="above 1"):
        with pytest.raises(EstimationError, match="above 1 for 1 of 3 patients"):
            _predicted_risk(f, nd, plan)


def test_tripod_checklist_has_all_items_with_classes(bundle):
    ck = _table(bundle, "checklist")
    assert list(ck["item"]) == [i[0] for i in TRIPOD_AI_ITEMS]
    assert len(ck) == 52
    assert {i.rstrip("abcdefg") for i in ck["item"]} == {str(k) for k in range(1, 28)}
    assert set(ck["class"]) <= {"A", "S", "H", "A/S", "A/H", "S/H"}
    h = ck[ck["class"] == "H"]
    assert (h["content"] == PLACEHOLDER).all() and (h["status"] == "to write").all()
    filled = ck[ck["class"] == "A"]
    assert (filled["status"] == "filled").all()
    assert ck.loc[ck["item"] == "12e", "content"].iloc[0].endswith(PLACEHOLDER)


def test_tripod_rejects_unknown_items_and_never_fills_h_items():
    plan = load_plan(SLUG)
    with pytest.raises(KeyError, match="not TRIPOD"):
        tripod_ai_2024(plan, {}, content={"99": ("x", "y")})
    ck = tripod_ai_2024(plan, {}, content={"3a": ("invented text", "Intro")})
    assert ck.loc[ck["item"] == "3a", "content"].iloc[0] == PLACEHOLDER


# ----------------------------------------------------------------------------- rules and bad inputs


def test_meld_na_inconsistent_with_components_is_rejected(inputs, tmp_path):
    def change(c):
        i = c.index[c["exclusion_reason"] == "none"][0]
        c.loc[i, "meld_na"] = c.loc[i, "meld_na"] + 3

    with pytest.raises(InputValidationError, match="MELD-Na does not match MELD and sodium"):
        _run_modified(inputs, tmp_path, change)


def test_meld_inconsistent_with_labs_is_rejected(inputs, tmp_path):
    def change(c):
        i = c.index[c["exclusion_reason"] == "none"][1]
        c.loc[i, "bilirubin_mg_dl"] = c.loc[i, "bilirubin_mg_dl"] * 4 + 2

    with pytest.raises(InputValidationError, match="MELD does not match bilirubin"):
        _run_modified(inputs, tmp_path, change)


def test_sarcopenia_disagreeing_with_cutoff_is_rejected(inputs, tmp_path):
    def change(c):
        i = c.index[(c["exclusion_reason"] == "none") & (c["sarcopenia"].astype(str) == "True")][0]
        c.loc[i, "sarcopenia"] = False

    with pytest.raises(InputValidationError, match="cut-off for sex"):
        _run_modified(inputs, tmp_path, change)


def test_negative_followup_is_rejected(inputs, tmp_path):
    def change(c):
        c.loc[4, "followup_days"] = -3.0

    with pytest.raises(InputValidationError, match=r"followup_days.*must be >= 0"):
        _run_modified(inputs, tmp_path, change)


def test_event_code_outside_dictionary_is_rejected(inputs, tmp_path):
    def change(c):
        c.loc[7, "event"] = 3

    with pytest.raises(InputValidationError, match=r"'event'.*must be <= 2"):
        _run_modified(inputs, tmp_path, change)


def test_all_censored_is_an_estimation_error(inputs, tmp_path):
    def change(c):
        c["event"] = 0

    with pytest.raises(EstimationError, match="no death events"):
        _run_modified(inputs, tmp_path, change)
    assert not (tmp_path / "out").exists()


def test_horizon_beyond_last_followup_is_an_estimation_error(inputs, tmp_path):
    def change(c):
        c["followup_days"] = c["followup_days"].clip(upper=300.0)

    with pytest.raises(EstimationError, match="beyond the last follow-up"):
        _run_modified(inputs, tmp_path, change)


# ----------------------------------------------------------------------------- plan 1.1 (issue 16)


def test_calibration_slope_table_is_the_analysis_function_and_the_bootstrap(bundle, frames):
    """Apparent slope = calibration_slope_competing on each set; internally the optimism is
    bootstrap_optimism with the plan's seed and the trimmed count (R oracles of both in
    tests/test_competing_risks_calibration.py)."""
    from studyval.analysis.competing_risks_calibration import calibration_slope_competing
    from studyval.analysis.internal_validation import RefitModel

    plan, dev, ext, fits = frames
    tab = _table(bundle, "calibration_slope").set_index(["set", "model"])
    m = next(m for m in plan.models if m.role == "primary")

    def slope(frame, risk):
        return calibration_slope_competing(
            frame["time"], frame["code"], risk, cause=plan.outcome.cause,
            horizon=plan.outcome.horizon, censor_at_horizon=True, causes=[1, 2],
        )  # fmt: skip

    for set_, frame in (("internal", dev), ("external", ext)):
        r = slope(frame, _predicted_risk(fits[m.name], frame, plan))
        row = tab.loc[(set_, m.name)]
        assert (row["apparent"], row["se"], row["apparent_ci_high"]) == (r.slope, r.se, r.ci_high)
        assert row["n_events_by_horizon"] == r.n_events and row["censored_at_horizon"]
    base = _refit_model(m, plan)
    proc = RefitModel(
        fit=base.fit,
        predict=base.predict,
        measures=lambda f, risk: {"calibration_slope": slope(f, risk).slope},
    )
    cols = sorted({"time", "code", *m.covariates})
    b = bootstrap_optimism(dev[cols], proc, n_resamples=N_BOOTSTRAP_TEST, seed=plan.seed)
    row = tab.loc[("internal", m.name)]
    assert (row["optimism"], row["corrected"]) == (b.optimism[0], b.corrected[0])
    assert row["n_resamples"] == N_BOOTSTRAP_TEST and row["n_failed"] == b.n_failed
    assert tab.xs("external", level="set")["corrected"].isna().all()


def test_validation_sample_size_table_is_riley_2021_against_the_external_centre(bundle, frames):
    from studyval.analysis.sample_size_validation import (
        horizon_status_counts,
        riley_validation_binary,
    )

    plan, _, ext, _ = frames
    vs = plan.extra["validation_sample_size"]
    assert vs["lp"] == "from_c_statistic"
    ref = riley_validation_binary(
        prevalence=vs["prevalence"], c_statistic=vs["c_statistic"], lp_from_c_statistic=True,
        oe=vs["oe"], oe_ci_width=vs["oe_ci_width"], slope_ci_width=vs["slope_ci_width"],
        c_ci_width=vs["c_ci_width"],
    )  # fmt: skip
    tab = _table(bundle, "validation_sample_size").set_index("criterion")
    crit = ref.to_frame().set_index("criterion")
    for c in ("oe", "calibration_slope", "c_statistic"):
        assert tab.loc[c, "required"] == crit.loc[c, "required"]
        assert tab.loc[c, "se"] == crit.loc[c, "se"]
    assert tab.loc["minimum", "required"] == ref.required
    deaths = int(((ext["code"] == 1) & (ext["time"] <= plan.outcome.horizon)).sum())
    assert (tab["available"] == len(ext)).all() and (tab["available_events"] == deaths).all()
    # adequate is judged on the patients whose status at the horizon is known (issue 16, review
    # round two): those censored before it are counted and left out of the comparison
    status = horizon_status_counts(
        ext["time"].to_numpy(float), ext["code"].to_numpy(int), cause=1,
        horizon=plan.outcome.horizon, causes=[1, 2],
    )  # fmt: skip
    assert (tab["available_known"] == status.n_known).all()
    assert (tab["censored_before_horizon"] == status.n_censored_before).all()
    assert (tab["available_known"] + tab["censored_before_horizon"] == tab["available"]).all()
    assert (tab["available_known"] < tab["available"]).all()  # the demo censors some before 1 year
    assert not tab.loc["minimum", "adequate"]  # 320 patients against thousands planned
