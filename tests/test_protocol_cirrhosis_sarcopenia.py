"""cirrhosis-sarcopenia end to end: truth recovery, competing-risk handling, eligibility rules, bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis import competing_risks
from studyval.analysis import survival_validation as svv
from studyval.checklists import PLACEHOLDER
from studyval.checklists_tripod import TRIPOD_AI_ITEMS, tripod_ai_2024
from studyval.errors import EstimationError, InputValidationError
from studyval.pipeline import run_protocol
from studyval.plan import load_plan
from studyval.protocols.cirrhosis_sarcopenia import _Fitted, brier_competing, predicted_cif
from studyval.synthetic.cirrhosis_sarcopenia import TRUE_PARAMETERS, generate

SLUG = "cirrhosis-sarcopenia"
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def cohort():
    return generate()


@pytest.fixture(scope="module")
def inputs(cohort, tmp_path_factory) -> dict[str, Path]:
    return cohort.write(tmp_path_factory.mktemp("inputs"))


N_BOOTSTRAP_TEST = 50


@pytest.fixture(scope="module")
def bundle(inputs, tmp_path_factory) -> Path:
    """One end-to-end run; the bootstrap is shortened to 50 resamples to keep the file under a minute
    (the plan's 200 run in ``studyval demo``)."""
    import studyval.pipeline as pipeline

    plan = load_plan(SLUG)
    short = plan.model_copy(
        update={"sets": plan.sets.model_copy(update={"n_bootstrap": N_BOOTSTRAP_TEST})}
    )
    out = tmp_path_factory.mktemp("run") / "bundle"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(
            pipeline,
            "load_plan",
            lambda slug, **kw: short if slug == SLUG else load_plan(slug, **kw),
        )
        run_protocol(SLUG, clinical=inputs["clinical"], predictions=None, out=out, render=False)
    return out


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
    for set_ in ("internal", "external"):
        sub = perf[(perf["set"] == set_) & (perf["measure"] == "td_auc")]
        assert len(sub) == 2 and sub["corrected"].between(0.5, 1).all()
    internal = perf[(perf["set"] == "internal") & (perf["measure"] == "td_auc")]
    assert internal["optimism"].notna().all()
    opt = _table(bundle, "optimism")
    assert (opt["n_bootstrap"] == N_BOOTSTRAP_TEST).all()  # every refit succeeded


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


# ----------------------------------------------------------------------------- statistics


def test_predicted_cumulative_incidence_and_brier_match_riskregression():
    # R 4.2, riskRegression 2022.11.28:
    #   d <- read.csv("pbc_competing.csv"); d$lbili <- log(d$bili)
    #   fit <- CSC(Hist(time, status) ~ lbili + age, data = d, cause = 1)
    #   predictRisk(fit, newdata = d[c(1, 2, 3, 10, 50), ], times = 1826, cause = k,
    #               product.limit = FALSE)
    d = pd.read_csv(DATA / "pbc_competing.csv")
    d["lbili"] = np.log(d["bili"])
    fits = {
        k: competing_risks.cause_specific_cox(
            d, duration="time", event="status", cause=k, covariates=["lbili", "age"], causes=[1, 2]
        )
        for k in (1, 2)
    }
    model = _Fitted(covariates=("lbili", "age"), fits=fits)
    rows = d.iloc[[0, 1, 2, 9, 49]]
    expected = {
        1: [0.0176673836925, 0.0119204559179, 0.00408941498666, 0.00383335695385, 0.0154043439006],
        2: [0.965120931498, 0.171215612957, 0.338701190829, 1.00579789225, 0.154158121472],
    }
    for k, values in expected.items():
        np.testing.assert_allclose(predicted_cif(model, rows, k, 1826.0), values, rtol=1e-8)
    # Brier of the predicted cumulative incidence with transplant competing, and its null model:
    #   p <- predictRisk(fit, newdata = d, times = 1826, cause = 1, product.limit = FALSE)
    #   Score(list(csc = as.numeric(p)), formula = Hist(time, status) ~ 1, data = d,
    #         times = 1826, cause = 1, metrics = "brier", null.model = TRUE, cens.model = "km")
    #   -> csc 0.0410221504854, Null model 0.0421153337967
    risk = predicted_cif(model, d, 1, 1826.0)
    bs, null = brier_competing(
        d["time"].to_numpy(float), d["status"].to_numpy(int), risk, cause=1, horizon=1826.0
    )
    assert bs == pytest.approx(0.0410221504854, rel=1e-9)
    assert null == pytest.approx(0.0421153337967, rel=1e-9)


def test_brier_competing_equals_ipcw_brier_without_competing_events():
    rng = np.random.default_rng(1)
    n = 300
    t = rng.exponential(1.0, n)
    c = rng.exponential(1.5, n)
    time = np.minimum(t, c)
    code = (t <= c).astype(int)
    risk = rng.uniform(0.1, 0.9, n)
    ours, null = brier_competing(time, code, risk, cause=1, horizon=0.8)
    ref = svv.brier(time, code, risk, horizon=0.8)
    assert ours == pytest.approx(ref.estimate, rel=1e-10)
    assert null == pytest.approx(ref.null_estimate, rel=1e-10)


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
