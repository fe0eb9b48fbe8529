"""msk-aging end to end: truth recovery, clustering, determinism, rendered report, privacy, steps."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from studyval.analysis.mixed_models import random_intercept_lmm
from studyval.analysis.sample_size_multinomial import pate_multinomial
from studyval.errors import InputValidationError
from studyval.figures.msk_aging import figure_specs
from studyval.pipeline import run_protocol
from studyval.plan import load_plan, plan_path, requested_steps
from studyval.plan_msk_aging import EncoderTrainingOverlapError
from studyval.privacy import scan_for_identifiers
from studyval.protocols.msk_aging import PROTOCOL
from studyval.steps.common import PIPELINE_TABLES, SAMPLE_SIZE
from studyval.steps.multimodal_staging import ALWAYS, REGISTRY
from studyval.synthetic.msk_aging import TRUE_PARAMETERS, generate

SLUG = "msk-aging"


@pytest.fixture(scope="module")
def cohort():
    return generate()


@pytest.fixture(scope="module")
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of msk-aging (tests/conftest.py): ``cohort`` written."""
    return protocol_inputs(SLUG)


@pytest.fixture(scope="module")
def bundle(rendered_bundle) -> Path:
    """One rendered end-to-end run (Jupyter + pandoc engine), with the bundled plan's patient
    bootstraps cut to 100 resamples (tests/conftest.py, ``SHARED_N_RESAMPLES``); the bundle keeps
    that plan (``study/plan.yml``). The registered counts are checked in the plan file below."""
    return rendered_bundle(SLUG)


def _ran(bundle: Path):
    """The plan the bundle ran (the one it keeps)."""
    return load_plan(bundle / "study" / "plan.yml", slug=SLUG)


def test_the_plan_registers_its_bootstrap_counts(bundle):
    """The bundled plan's registered counts; the session bundle ran its own (cut) counts."""
    registered = load_plan(SLUG)
    assert [registered.kl.n_bootstrap, registered.shap.n_bootstrap] == [500, 500]
    assert [registered.ordinal.n_bootstrap, registered.calibration.n_bootstrap] == [500, 200]
    ran = _ran(bundle)
    assert [ran.kl.n_bootstrap, ran.shap.n_bootstrap] == [100, 100]
    assert [ran.ordinal.n_bootstrap, ran.calibration.n_bootstrap] == [100, 100]


def _t(bundle: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(bundle / "tables" / f"{name}.parquet")


def test_bundle_tables_figures_and_report(bundle):
    for name in (
        "flow",
        "models",
        "discrimination",
        "accuracy",
        "confusion",
        "kl_agreement",
        "shap_summary",
        "fracture_cox",
        "lmm",
        "lmm_followed",
        "sample_size",
        "checklist",
    ):
        assert (bundle / "tables" / f"{name}.parquet").is_file(), name
    for fig in (
        "flow",
        "confusion_op_external",
        "confusion_kl_external",
        "shap_modalities",
        "fracture_km_predicted",
        "fracture_km_dxa",
        "functional_scores",
    ):
        assert (bundle / "figures" / f"{fig}.png").is_file(), fig
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert "Osteoporosis staging" in html and "TRIPOD+AI" in html
    models = _t(bundle, "models")
    assert models["model_version"].str.match(r"^sha256:[0-9a-f]{64}$").all()


def test_flow_matches_the_generator(bundle):
    flow = _t(bundle, "flow")
    inc = TRUE_PARAMETERS["included"]
    for set_, cohort_ in (("internal", "retrospective"), ("external", "prospective")):
        for site, n in inc[cohort_].items():
            row = flow[
                (flow["stage"] == "included_set") & (flow["set"] == set_) & (flow["site"] == site)
            ]
            assert int(row["n_patients"].iloc[0]) == n
    ex = flow[flow["stage"] == "excluded_reason"].set_index("group")["n_patients"]
    assert ex.to_dict() == TRUE_PARAMETERS["excluded_patients"]


def test_discrimination_and_clustered_intervals(bundle):
    d = _t(bundle, "discrimination")
    sel = (d["site"] == "all") & (d["set"] == "external") & (d["measure"] == "auc_macro")
    assert (d[sel]["estimate"] > 0.75).all()
    kl = d[(d["condition"] == "kl") & (d["measure"] == "auc_ovr")]
    assert kl["method"].str.contains("clustered DeLong").all()
    k = _t(bundle, "kl_agreement")
    assert k["ci_method"].str.contains("patient-level").all()
    q = k[(k["measure"] == "kappa_quadratic") & (k["site"] == "all")]
    assert ((q["ci_low"] < q["estimate"]) & (q["estimate"] < q["ci_high"])).all()


def test_knee_level_intervals_come_from_the_patient_bootstrap(bundle):
    """KL grade: every average (macro, weighted, M) has the bootstrap SE and interval of the
    analysis function (no NaN SE patched in), per-grade AUCs the clustered DeLong; every
    knee-level accuracy and agreement measure names the same bootstrap."""
    label = f"patient-level percentile bootstrap ({_ran(bundle).kl.n_bootstrap} resamples)"
    d = _t(bundle, "discrimination")
    kl = d[d["condition"] == "kl"]
    avg = kl[kl["measure"] != "auc_ovr"]
    assert set(avg["measure"]) == {"auc_macro", "auc_weighted", "hand_till_m"}
    assert (avg["method"] == label).all()
    assert (avg["se"] > 0).all()
    assert ((avg["ci_low"] < avg["estimate"]) & (avg["estimate"] < avg["ci_high"])).all()
    op = d[(d["condition"] == "op") & (d["measure"] == "auc_ovr")]
    assert op["method"].str.startswith("DeLong").all()
    a = _t(bundle, "accuracy")
    assert (a.loc[a["condition"] == "kl", "ci_method"] == label).all()
    assert (a.loc[a["condition"] == "op", "ci_method"] == "wilson").all()
    assert (_t(bundle, "kl_agreement")["ci_method"] == label).all()


def test_mixed_models_name_their_optimiser(bundle):
    from studyval.analysis.mixed_models import OPTIMISERS

    lmm = _t(bundle, "lmm")
    assert {"optimiser", "optimisers_tried"} <= set(lmm.columns)
    assert lmm["optimiser"].isin(OPTIMISERS).all()
    assert lmm["optimisers_tried"].str.contains(": converged").all()
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert "Optimiser of the converged fit" in html


def test_fracture_hazard_ratios_by_dxa_stage_recover_truth(bundle):
    # generator: exponential hazards by the true DXA stage, HR 2 (osteopenia) and 4 (osteoporosis)
    c = _t(bundle, "fracture_cox")
    c = c[(c["grouping"] == "dxa") & (c["set"] == "all")].set_index("term")
    for stage, hr in TRUE_PARAMETERS["fracture_hr"].items():
        r = c.loc[f"{stage} vs normal"]
        assert r["ci_low"] < hr < r["ci_high"], (stage, r["hr"])


def test_competing_risk_tables_against_cmprsk_and_survival(bundle):
    """DXA stage (deterministic from the data), both cohorts, against R 4.2 on the same patients:

    d <- read.csv("clinical.csv"); d <- d[d$exclusion_reason == "none" & !duplicated(d$patient_id), ]
    code <- ifelse(d$new_fragility_fracture == "true", 1,
                   ifelse(d$death_without_fracture == "true", 2, 0))
    stage <- ifelse(d$dxa_t_score >= -1, "normal",
                    ifelse(d$dxa_t_score <= -2.5, "osteoporosis", "osteopenia"))
    X <- cbind(osteopenia = stage == "osteopenia", osteoporosis = stage == "osteoporosis",
               treat = d$osteoporosis_treatment == "true", age = d$age, female = d$sex == "F")
    fg <- cmprsk::crr(d$fracture_followup_months, code, X, failcode = 1, cencode = 0)
    cs <- survival::coxph(Surv(d$fracture_followup_months, code == 2) ~ X, ties = "efron")
    ci <- cmprsk::cuminc(d$fracture_followup_months, code, stage)
    cmprsk::timepoints(ci, c(12, 24, 36)); ci$Tests
    """
    cr = _t(bundle, "fracture_competing")
    sel = (cr["grouping"] == "dxa") & (cr["set"] == "all") & (cr["adjustment"] == "adjusted")
    fg = cr[sel & (cr["model"] == "Fine-Gray")]
    # fg$coef: 0.5711343004 1.4137268371 0.2435594335 -0.0141775359 0.0750825495
    np.testing.assert_allclose(
        fg["coef"], [0.5711343004, 1.4137268371, 0.2435594335, -0.0141775359, 0.0750825495],
        rtol=1e-6,
    )  # fmt: skip
    # sqrt(diag(fg$var)): 0.2079234292 0.2306931944 0.1531209644 0.0070550346 0.1544144310
    np.testing.assert_allclose(
        fg["se"], [0.2079234292, 0.2306931944, 0.1531209644, 0.0070550346, 0.1544144310],
        rtol=1e-6,
    )  # fmt: skip
    death = cr[sel & (cr["model"] == "cause-specific Cox") & (cr["cause"] == "death")]
    # coef(cs): -0.2139731181 -0.1643571220 0.0913981101 0.0156010914 0.2332373096
    np.testing.assert_allclose(
        death["coef"], [-0.2139731181, -0.1643571220, 0.0913981101, 0.0156010914, 0.2332373096],
        rtol=1e-6,
    )  # fmt: skip
    assert fg["term"].tolist()[:2] == ["osteopenia vs normal", "osteoporosis vs normal"]
    assert (fg["n_events"] == 236).all() and (fg["n_competing"] == 129).all()
    cif = _t(bundle, "fracture_cif")
    cif = cif[(cif["grouping"] == "dxa") & (cif["set"] == "all") & (cif["cause"] == "fracture")]
    # timepoints(ci, c(12, 24, 36))$est, cause 1, rows normal / osteopenia / osteoporosis
    np.testing.assert_allclose(
        cif["estimate"],
        [0.02211037, 0.03670211, 0.05830910, 0.03761733, 0.07355762, 0.10784620,
         0.07080647, 0.13325814, 0.22107327],
        rtol=1e-6,
    )  # fmt: skip
    # $var, normal, cause 1: 3.991419e-05 6.895523e-05 1.324281e-04
    np.testing.assert_allclose(
        cif["se"].iloc[:3] ** 2, [3.991419e-05, 6.895523e-05, 1.324281e-04], rtol=1e-6
    )
    gray = _t(bundle, "fracture_gray").set_index(["grouping", "set", "cause"])
    # ci$Tests: stat 74.9458244 (cause 1), 0.3905302 (cause 2), df 2
    assert gray.loc[("dxa", "all", "fracture"), "statistic"] == pytest.approx(74.9458244, rel=1e-7)
    assert gray.loc[("dxa", "all", "death"), "statistic"] == pytest.approx(0.3905302, rel=1e-6)


def test_competing_deaths_lower_the_incidence_below_one_minus_km(bundle):
    """Censoring deaths overstates the incidence: Aalen-Johansen <= 1 - KM at every plan time."""
    cif = _t(bundle, "fracture_cif")
    cif = cif[cif["cause"] == "fracture"].set_index(["grouping", "set", "group", "time"])
    km = _t(bundle, "fracture_risk").set_index(["grouping", "set", "group", "time"])
    both = cif.merge(km, left_index=True, right_index=True, suffixes=("", "_km"))
    assert len(both) == len(km)
    assert (both["estimate"] <= both["risk"] + 1e-12).all()
    assert (both["estimate"] < both["risk"]).any()


def test_ordinal_calibration_and_decision_curve_cover_probabilistic_models_only(bundle):
    """The SVM's decision values are not probabilities: no cumulative AUC, calibration or DCA."""
    for name in ("ordinal_discrimination", "calibration", "calibration_curve"):
        t = _t(bundle, name)
        assert set(t["model"]) == {"xgboost"}, name
    dc = _t(bundle, "decision_curve")
    assert set(dc["model"]) == {"xgboost", "treat all", "treat none"}
    o = _t(bundle, "ordinal_discrimination")
    cuts = o[o["measure"] == "cumulative_auc"].groupby("condition")["cut"].unique()
    assert sorted(cuts["op"]) == ["osteopenia", "osteoporosis"] and list(cuts["kl"]) == ["2"]
    kl = o[(o["condition"] == "kl") & (o["measure"] == "cumulative_auc")]
    assert kl["method"].str.contains("clustered").all()
    assert (o["ci_low"] < o["estimate"]).all() and (o["estimate"] < o["ci_high"]).all()
    cal = _t(bundle, "calibration")
    kl_cal = cal[cal["condition"] == "kl"]
    assert kl_cal.loc[kl_cal["measure"] == "slope", "ci_method"].str.contains("cluster").all()
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert "Cumulative incidence (1 - KM" not in html
    assert "Aalen-Johansen" in html and "ORC (Van Calster)" in html


def test_plan_refuses_competing_analyses_without_their_columns(tmp_path):
    text = plan_path(SLUG).read_text(encoding="utf-8")
    for old, message in (
        ("  competing_event: death_without_fracture\n", "fracture.competing_event is required"),
        ("  adjust_for: [osteoporosis_treatment, age, sex]\n", "fracture.adjust_for is required"),
        ("  op_cuts: [osteopenia, osteoporosis]\n", "op_cuts"),
    ):
        bad = text.replace(old, "  op_cuts: [normal]\n" if "op_cuts" in old else "", 1)
        assert bad != text
        path = tmp_path / "plan.yml"
        path.write_text(bad, encoding="utf-8")
        with pytest.raises(InputValidationError, match=message):
            load_plan(path)


def test_encoder_training_overlap_is_refused_by_name():
    """A cohort that reaches the steps with a patient the encoder was trained on is refused
    (the command line refuses it earlier, naming the row: test_bad_inputs_msk_aging)."""
    from studyval.steps.multimodal_staging import _check_encoder_overlap

    plan = load_plan(SLUG)
    patients = pd.DataFrame(
        {
            "set": ["internal", "internal", "external"],
            "op_encoder_training": [False, True, True],
            "kl_encoder_training": [False, False, False],
        }
    )
    with pytest.raises(EncoderTrainingOverlapError, match="1 development and 1 external"):
        _check_encoder_overlap(patients, plan)
    _check_encoder_overlap(patients.assign(op_encoder_training=False), plan)


def test_embedding_provenance_is_in_the_bundle_and_the_report(bundle):
    emb = _t(bundle, "embeddings").set_index("features")
    assert list(emb.index) == ["image_op", "image_kl"]
    assert emb["overlap_checked"].all()
    assert (emb[["n_internal_in_training", "n_external_in_training"]] == 0).all().all()
    assert (emb["n_internal"] == 1500).all() and (emb["n_external"] == 500).all()
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert "patients the encoder was trained or fine-tuned on among those evaluated" in html


def test_random_slope_sensitivity_and_shap_share_intervals(bundle):
    sl = _t(bundle, "lmm_slope")
    base = _t(bundle, "lmm").set_index(["outcome", "term"])
    for r in sl[sl["term"] == "oa"].itertuples():
        # the OA effect hardly moves; the intervals of both fits overlap it
        assert abs(r.estimate - base.loc[(r.outcome, "oa"), "estimate"]) < 0.1 * abs(r.estimate)
        assert r.lr_p_value <= r.lr_p_naive
    assert set(sl["term"]) >= {"var_intercept", "var_slope", "cov_intercept_slope", "var_residual"}
    sh = _t(bundle, "shap_shares")
    summary = _t(bundle, "shap_summary")
    keys = ["condition", "model", "set", "class", "modality"]
    both = summary.merge(sh, on=keys, suffixes=("", "_boot"), validate="one_to_one")
    assert len(both) == len(summary)
    np.testing.assert_allclose(both["share_boot"], both["share"], rtol=1e-9)
    assert ((both["ci_low"] <= both["share"]) & (both["share"] <= both["ci_high"])).all()
    kl = sh[sh["condition"] == "kl"]
    assert (kl["n_clusters"] < kl["n"]).all() and kl["method"].str.contains("patient").all()
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert (
        "Why the two models’ shares are not comparable" in html
        or "shares are not comparable" in html
    )


def test_delta_adjustment_starts_at_the_mar_estimate_and_tips_where_the_interval_reaches_0(bundle):
    d = _t(bundle, "lmm_delta")
    lmm_t = _t(bundle, "lmm").set_index(["outcome", "term"])["estimate"]
    for outcome, part in d.groupby("outcome"):
        mar = part.loc[part["delta"] == 0, "estimate"].iloc[0]
        # MAR: the random-intercept fit of the lmm table, oa + 3 years x oa
        expected = lmm_t[(outcome, "oa")] + 3 * lmm_t[(outcome, "years:oa")]
        assert mar == pytest.approx(expected, rel=1e-9)
        r = part.iloc[0]
        tip = r["estimate_mar"] + r["tipping_delta"] * r["missing_fraction"]
        assert abs(tip) == pytest.approx(1.959963984540054 * r["se"], rel=1e-9)


def test_generator_adds_deaths_and_treatment_without_changing_version_1(cohort):
    """Deaths are drawn after every other draw: the version-1 columns keep their values, deaths
    only among patients censored alive, never together with a fracture, and older patients die
    more often; treatment follows the DXA stage."""
    pts = cohort.clinical.drop_duplicates("patient_id")
    pts = pts[pts["exclusion_reason"] == "none"]
    died = pts["death_without_fracture"] == "true"
    assert not (died & (pts["new_fragility_fracture"] == "true")).any()
    assert 80 < died.sum() < 200
    assert pts.loc[died, "age"].mean() > pts.loc[~died, "age"].mean()
    treated = pts["osteoporosis_treatment"] == "true"
    t = pts["dxa_t_score"].astype(float)
    assert treated[t <= -2.5].mean() > 0.6 and treated[t >= -1].mean() < 0.15


def test_shap_image_dominates_kl_and_laboratory_is_small(bundle):
    s = _t(bundle, "shap_summary")
    kl = s[(s["condition"] == "kl")].groupby("modality")["share"].mean()
    assert kl["image"] > 0.6 and kl["laboratory"] < 0.1  # labs carry no KL signal in the generator
    assert (s["efficiency_gap"] < 1e-3).all()


def test_lmm_with_reference_oa_recovers_generator(cohort):
    # Fit on the reference-reader OA (what the generator used); tolerance: 3 SE for fixed effects,
    # 15% for variance components (OKS rounding adds ~1/12 to the residual variance; clipping is rare).
    clin = cohort.clinical[cohort.clinical["exclusion_reason"] == "none"]
    oa = (clin.groupby("patient_id")["kl_grade"].max() >= 2).astype(float)
    pats = clin.drop_duplicates("patient_id").set_index("patient_id")
    for outcome, truth in TRUE_PARAMETERS["lmm"].items():
        rows = []
        for m in TRUE_PARAMETERS["visits_months"]:
            v = pats[f"{outcome}_m{m}"].astype(float).dropna()
            rows.append(
                pd.DataFrame(
                    {
                        "patient": v.index,
                        "years": m / 12,
                        "oa": oa[v.index].to_numpy(),
                        "y": v.to_numpy(),
                    }
                )
            )
        r = random_intercept_lmm(
            pd.concat(rows, ignore_index=True), formula="y ~ years * oa", group="patient"
        )
        fe = r.fixed.set_index("term")
        for term, key in (
            ("Intercept", "intercept"),
            ("years", "years"),
            ("oa", "oa"),
            ("years:oa", "years:oa"),
        ):
            assert abs(fe.at[term, "estimate"] - truth[key]) < 3 * fe.at[term, "se"], (
                outcome,
                term,
            )
        assert r.var_patient == pytest.approx(truth["patient_sd"] ** 2, rel=0.15)
        assert r.var_residual == pytest.approx(truth["residual_sd"] ** 2, rel=0.15)


def test_t_score_model_recovers_generator(cohort):
    p = cohort.clinical[cohort.clinical["exclusion_reason"] == "none"].drop_duplicates("patient_id")
    X = np.column_stack(
        [np.ones(len(p)), p["age"] - 60, (p["sex"] == "F").astype(float), p["bmi_kg_m2"] - 24]
    )
    beta = np.linalg.lstsq(X.astype(float), p["dxa_t_score"].astype(float), rcond=None)[0]
    tm = TRUE_PARAMETERS["t_score_model"]
    np.testing.assert_allclose(
        beta, [tm["intercept"], tm["age_per_year"], tm["female"], tm["bmi_per_unit"]], atol=0.06
    )


def test_followed_per_visit_decreases(bundle):
    f = _t(bundle, "lmm_followed")
    allv = (
        f[(f["grouping"] == "all") & (f["outcome"] == "oks")]
        .sort_values("month")["n_followed"]
        .to_numpy()
    )
    assert (np.diff(allv) < 0).all() and allv[0] <= 2000


def test_no_planted_identifier_reaches_the_bundle(bundle, cohort):
    planted = list(cohort.clinical["patient_name"]) + list(cohort.clinical["medical_record_number"])
    report = scan_for_identifiers([bundle], planted[:400])
    assert not report.hits, report.hits[:3]


def test_same_inputs_give_identical_tables(bundle, inputs, tmp_path, monkeypatch):
    """The same inputs and plan (the one the bundle kept), run again in this process, give
    every table byte for byte.

    The second run draws no figures (``draw_specs`` replaced by a stub that records the
    specs it was given): its subject is the analyses, whose tables are compared here; the
    figures are drawn from those tables, and a figure's bytes are compared by
    test_manuscript's determinism test and by ``studyval verify`` (test_verify). Drawing
    them took a tenth of this test's time.
    """
    import studyval.figures.spec as figure_spec

    drawn: list[str] = []
    monkeypatch.setattr(
        figure_spec, "draw_specs", lambda specs, folder: drawn.extend(s.name for s in specs)
    )
    out = tmp_path / "again"
    run_protocol(
        SLUG, clinical=inputs["clinical"], predictions=None, out=out, render=False,
        plan=_ran(bundle),
    )  # fmt: skip
    monkeypatch.undo()
    assert sorted(drawn) == sorted(
        p.stem for p in (bundle / "figures").glob("*.png")
    )  # the same figures were asked for
    for p in sorted((bundle / "tables").glob("*.csv")):
        a = hashlib.sha256(p.read_bytes()).hexdigest()
        b = hashlib.sha256((out / "tables" / p.name).read_bytes()).hexdigest()
        assert a == b, p.name


def test_report_shows_no_patient_id(bundle, inputs):
    """The rendered report identifies nobody by patient id (keyed pseudonyms only)."""
    from studyval.privacy import ids_shown_in_report

    clinical = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    assert ids_shown_in_report(bundle / "report" / "report.html", clinical["patient_id"]) == []


# ----------------------------------------------------------------------------- analysis steps


def test_plan_analyses_resolve_to_the_registered_steps():
    assert PROTOCOL.steps is REGISTRY  # plans are checked against the study type's steps
    plan = load_plan(SLUG)
    asked = [name for _, name in requested_steps(plan)]
    order = [s.name for s in REGISTRY.resolve([*ALWAYS, *asked])]
    assert order == [
        "flow",
        "baseline",
        "sample_size",
        "fusion_models",
        "multiclass_auc",
        "confusion_matrix",
        "ordinal_discrimination",
        "calibration",
        "decision_curve",
        "multinomial_calibration",
        "multinomial_sample_size",
        "weighted_kappa",
        "shap",
        "kaplan_meier",
        "cox",
        "cumulative_incidence",
        "competing_regression",
        "mixed_model",
        "mixed_model_slope",
        "delta_adjustment",
        "mmrm",
    ]
    # kappa reads the accuracy table: asked alone, the models and the confusion step run first
    alone = [s.name for s in REGISTRY.resolve(["weighted_kappa"])]
    assert alone == ["fusion_models", "confusion_matrix", "weighted_kappa"]


def test_unknown_analysis_in_the_plan_names_its_yaml_path(tmp_path):
    text = plan_path(SLUG).read_text(encoding="utf-8")
    bad = text.replace(
        "analyses: [multiclass_auc, confusion_matrix, ordinal",
        "analyses: [multiclass_auc, confusion_matix, ordinal",
        1,
    )
    assert bad != text
    path = tmp_path / "plan.yml"
    path.write_text(bad, encoding="utf-8")
    with pytest.raises(InputValidationError) as info:
        load_plan(path)
    message = info.value.full_message()
    assert "endpoints[0].analyses[1]" in message
    assert "did you mean 'confusion_matrix'" in message


def test_bundle_holds_exactly_the_declared_tables_with_their_columns(bundle):
    declared = REGISTRY.tables()
    written = {p.stem for p in (bundle / "tables").glob("*.parquet")}
    assert written == set(declared) | {t.name for t in PIPELINE_TABLES} | {"dictionary"}
    for name, spec in declared.items():
        assert set(spec.columns) <= set(_t(bundle, name).columns), name


def test_sample_size_has_the_shared_columns_and_one_binding_check(bundle):
    ss = _t(bundle, "sample_size")
    assert set(SAMPLE_SIZE.columns) <= set(ss.columns)
    assert (ss["available"] == ss["registered"]).all()
    assert (ss["shortfall"] == ss["required"] - ss["registered"]).all()
    reg = ss[ss["check"] == "registered"]
    assert len(reg) == 1 and reg["set"].iloc[0] == "external"
    ext = ss[ss["set"] == "external"]
    assert reg["required_unrounded"].iloc[0] == ext["required_unrounded"].max()


def test_functional_score_means_carry_t_intervals_and_the_fitted_mean(bundle):
    """Observed means with their t-intervals (group_means) and the mixed model's fitted mean at
    each visit (population_means): the fit with the fixed effects of the lmm table."""
    means = _t(bundle, "lmm_means")
    assert ((means["ci_low"] < means["mean"]) & (means["mean"] < means["ci_high"])).all()
    fe = _t(bundle, "lmm").set_index(["outcome", "grouping", "term"])["estimate"].sort_index()
    for r in means.itertuples():
        b = fe.loc[(r.outcome, r.grouping)]
        years, oa = r.month / 12, float(r.oa == "OA")
        expected = b["Intercept"] + b["years"] * years + oa * (b["oa"] + b["years:oa"] * years)
        assert r.fitted == pytest.approx(expected, rel=1e-12)


def test_figures_follow_the_tables_the_run_wrote(bundle):
    plan = load_plan(SLUG)
    tables = {p.stem: pd.read_parquet(p) for p in (bundle / "tables").glob("*.parquet")}
    assert [s.name for s in figure_specs({"flow": tables["flow"]}, plan)] == ["flow"]
    names = [s.name for s in figure_specs(tables, plan)]
    assert names == [
        "flow",
        "confusion_op_external",
        "confusion_kl_external",
        "shap_modalities",
        "fracture_km_predicted",
        "fracture_km_dxa",
        "fracture_cif",
        "decision_curve_op",
        "multinomial_calibration",
        "functional_scores",
    ]


def test_multinomial_sample_size_follows_the_plan_and_checks_the_registry(bundle):
    """Issue 16: the Pate et al. (2023) development criterion of each condition, from the plan's
    planning values, beside (not instead of) the AUC-precision rows."""
    plan = load_plan(SLUG)
    mn = plan.sample_size.multinomial
    t = _t(bundle, "sample_size_multinomial")
    chk = _t(bundle, "sample_size_multinomial_check")
    for cond, n_pairs in (("op", 3), ("kl", 10)):
        values = getattr(mn, cond)
        r = pate_multinomial(
            proportions=list(values.proportions.values()),
            parameters=mn.parameters,
            cstatistic=list(values.cstatistic.values()),
            r2_nagelkerke_overall=mn.r2_nagelkerke_overall,
            classes=list(values.proportions),
        )
        sub = t[t["condition"] == cond]
        assert (sub["criterion"] == "i").sum() == n_pairs
        assert sub.loc[sub["criterion"] == "final", "required"].item() == r.required
        c = chk[chk["condition"] == cond].set_index("check")
        assert (c["required"] == r.required).all()
        assert c.loc["registered", "available"] == plan.sample_size.registered_development
    assert set(chk["unit"]) == {"patients", "knees"}
    assert (chk["shortfall"] == chk["required"] - chk["available"]).all()
    assert (chk["adequate"] == (chk["shortfall"] <= 0)).all()
    # review round two: the KL knees are not independent; the knee row is adequate only "if the
    # knees were independent", and a row on the development patients is the conservative judgement
    assert chk["independent_units"].tolist() == [True, True, True, False, True]
    kl = chk[(chk["condition"] == "kl") & (chk["check"] == "observed (internal)")].set_index("unit")
    knees, patients = kl.loc["knees"], kl.loc["patients"]
    assert (
        not knees["independent_units"] and "only if the knees were independent" in knees["message"]
    )
    assert patients["independent_units"] and patients["available"] < knees["available"]
    assert "only if the knees were independent" not in patients["message"]
    op = chk[(chk["condition"] == "op") & (chk["check"] == "observed (internal)")]
    assert patients["available"] == op["available"].item()  # the same development patients
    assert len(_t(bundle, "sample_size")) == 6  # the AUC-precision rows are kept
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert "development criterion" in html and "Planning assumptions" in html
    assert "conservative; adequacy judged here" in html
    assert "only if the knees were independent; not the judgement" in html


def test_multinomial_calibration_tables_and_figure(bundle):
    """The recalibration's intercepts make each class's mean calibrated probability its observed
    proportion (maximum-likelihood score equations); curves lie in [0, 1]; XGBoost only."""
    m = _t(bundle, "multinomial_calibration")
    assert set(m["model"]) == {"xgboost"}
    assert set(zip(m["condition"], m["set"], strict=True)) == {
        (c, s) for c in ("op", "kl") for s in ("internal", "external")
    }
    np.testing.assert_allclose(m["mean_calibrated"], m["n_events"] / m["n"], atol=1e-8)
    assert (m["df"] == load_plan(SLUG).calibration.multinomial_df).all()
    curve = _t(bundle, "multinomial_calibration_curve")
    assert curve["calibrated"].between(0.0, 1.0).all()
    assert (curve.groupby(["condition", "set", "class"]).size() == 100).all()
    assert (bundle / "figures" / "multinomial_calibration.png").is_file()
    # review round two: the df are labelled data-driven (from the plan) and the reference class
    # is named as a choice that matters for df > 1
    html = " ".join((bundle / "report" / "report.html").read_text(encoding="utf-8").split())
    source = " ".join(load_plan(SLUG).calibration.multinomial_df_source.split())
    assert source.startswith("Data-driven, not pre-specified")
    assert source.replace("'", "&#39;") in html or source in html
    assert "reference class, normal" in html and "reference class KL 0" in html
    assert "only the linear framework (1 degree of freedom) does not depend on it" in html


def test_report_states_the_mmrm_degrees_of_freedom_and_the_observational_comparison(bundle):
    """Review round two: nlme's residual df count visits; the patient-level df would barely
    change the intervals at this size; predicted-OA groups are an observational comparison."""
    mm = _t(bundle, "lmm_mmrm")
    assert (mm["df"] > mm["n_patients"]).all()  # visits, not patients
    html = " ".join((bundle / "report" / "report.html").read_text(encoding="utf-8").split())
    for _, d in mm.groupby("outcome", sort=False):
        n_obs, n_pat = int(d["n_obs"].iloc[0]), int(d["n_patients"].iloc[0])
        assert f"{int(d['df'].iloc[0]):,} for " in html
        assert f"({n_obs:,} visits of {n_pat:,} patients)" in html
    assert "conservative patient-level df (patients minus 2)" in html
    assert "an observational comparison" in html


def test_plan_requires_the_source_of_the_multinomial_df(tmp_path):
    """The spline df of the multinomial calibration must say how it was chosen (review round
    two: it was data-driven)."""
    raw = yaml.safe_load(plan_path(SLUG).read_text(encoding="utf-8"))
    del raw["calibration"]["multinomial_df_source"]
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputValidationError, match="multinomial_df_source is required"):
        load_plan(path)


@pytest.mark.parametrize(
    ("old", "new", "match"),
    [
        pytest.param("  multinomial_df: 2\n", "", "multinomial_df is required", id="no-df"),
        pytest.param(
            "        normal vs osteopenia: 0.75\n",
            "        osteopenia vs normal: 0.75\n",
            "must give the pairs",
            id="pair-order",
        ),
    ],
)
def test_plan_checks_the_multinomial_sections(tmp_path, old, new, match):
    text = plan_path(SLUG).read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "plan.yml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(InputValidationError, match=match):
        load_plan(path)


def _record_violations_row_by_row(clinical: pd.DataFrame, label: str) -> list:
    """The knee-record rules checked text by text, row by row: the reference that
    ``_record_violations`` (distinct values once, counts on integer codes) must equal.

    The previous code, except that each cell's own text is quoted: it used ``Series.map``,
    which under pandas 2 turns an integer column holding a missing value into floats (a
    patient's ages quoted as "47.0, 59.0" for cells written 47 and 59); under pandas 3 the
    two agree.
    """
    from studyval.errors import Violation
    from studyval.protocols.msk_aging import PATIENT_COLUMNS, _text

    problems = []
    dup = clinical.duplicated(["patient_id", "knee_side"], keep="first")
    first = {}
    for idx, pid, side in zip(
        clinical.index, clinical["patient_id"], clinical["knee_side"], strict=True
    ):
        key = (pid, side)
        if dup[idx]:
            problems.append(
                Violation(
                    label,
                    "knee_side",
                    int(idx) + 2,
                    f"duplicated knee record: patient {pid} already has a {side} knee "
                    f"(row {first[key] + 2})",
                    str(side),
                )
            )
        else:
            first[key] = int(idx)
    for col in PATIENT_COLUMNS:
        if col not in clinical.columns:
            continue
        # each cell's own text (Series.map would turn an integer column holding a missing
        # value into floats under pandas 2: "47.0" for a 47)
        vals = pd.Series([_text(v) for v in clinical[col].tolist()], index=clinical.index)
        n_distinct = vals.groupby(clinical["patient_id"]).transform("nunique")
        bad = clinical.index[(n_distinct > 1).to_numpy()]
        seen: set[str] = set()
        for idx in bad:
            pid = clinical.at[idx, "patient_id"]
            if pid in seen:
                continue
            seen.add(pid)
            rows_ = clinical.index[clinical["patient_id"] == pid]
            values = ", ".join(sorted(set(vals[rows_])))
            rule = (
                f"patient {pid} is in both cohorts ({values}); a patient belongs to one cohort"
                if col == "cohort"
                else "patient-level value differs between the knee rows of patient "
                f"{pid} ({values})"
            )
            problems.append(
                Violation(label, col, int(rows_[-1]) + 2, rule, _text(clinical.at[rows_[-1], col]))
            )
    return problems


@pytest.mark.parametrize("seed", range(6))
def test_knee_record_rules_equal_the_row_by_row_check(inputs, seed):
    """Duplicated knees and patient-level values that differ between a patient's knees (another
    patient's value, missing on one knee, the other cohort), and rows without a patient id:
    the same violations, rows and messages as the row-by-row check, on the typed synthetic
    table with random damage; none on the clean table."""
    from studyval.dictionary import read_table
    from studyval.protocols.msk_aging import PATIENT_COLUMNS, _record_violations

    clean = read_table(inputs["clinical"], SLUG)
    assert _record_violations(clean, "c.csv") == []
    rng = np.random.default_rng(seed)
    df = clean.copy()
    columns = [c for c in PATIENT_COLUMNS if c in df.columns]
    for row in rng.choice(len(df), size=40, replace=False):
        col = columns[rng.integers(len(columns))]
        donor = df.at[int(rng.integers(len(df))), col]
        df.at[int(row), col] = None if rng.random() < 0.3 else donor
    extra = df.iloc[rng.choice(len(df), size=5, replace=False)]  # the same knee twice
    df = pd.concat([df, extra], ignore_index=True)
    df.loc[rng.choice(len(df), size=3, replace=False), "patient_id"] = None  # no id: no group
    found = _record_violations(df, "c.csv")
    assert found == _record_violations_row_by_row(df, "c.csv")
    assert len(found) > 10


def test_knee_record_message_quotes_whole_numbers_as_written(inputs):
    """An integer column that differs between a patient's knees and is missing on a third row
    is quoted as its cells are written ("47", not "47.0"), whatever the pandas version."""
    from studyval.dictionary import read_table
    from studyval.protocols.msk_aging import _record_violations

    df = read_table(inputs["clinical"], SLUG)
    pid = df.at[0, "patient_id"]
    rows = df.index[df["patient_id"] == pid]
    df.loc[rows[0], "age"] = 47
    df.loc[rows[-1], "age"] = 59
    df.loc[df.index[df["patient_id"] != pid][0], "age"] = None  # another patient's knee
    (found,) = [
        v for v in _record_violations(df, "c.csv") if v.column == "age" and f" {pid} " in v.rule
    ]
    assert found.rule.endswith(f"of patient {pid} (47, 59)"), found.rule
    assert found.value == "59"
