"""Tests for studyval.analysis.cox_shrinkage: a uniformly shrunk Cox model and its baseline hazard.

Oracle
------
R 4.2.2 with survival 3.5-3 (development oracle only; nothing here runs R). The
model is fitted, its linear predictor ``lp`` (uncentred) is computed, and the
offset model is fitted with the same ties::

    fit <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d,
                 control = coxph.control(eps = 1e-10, toler.chol = 1e-11, iter.max = 50))
    d$lp <- as.vector(as.matrix(d[, c("age", "sex", "ph.ecog")]) %*% coef(fit))
    f <- coxph(Surv(time, status) ~ offset(s * lp), data = d)
    sf <- survfit(f, newdata = data.frame(lp = 0))   # covariates 0, offset 0
    summary(sf, times = 365)$cumhaz; summary(sf, times = 365)$surv; sf$cumhaz

Values printed with ``sprintf("%.17g", ...)``. Documented difference of method
in R: ``basehaz(f, centered = FALSE)`` of an offset-only model is still taken
at the *mean* offset (R printed ``log(basehaz(f, centered = FALSE)$hazard /
sf$cumhaz)`` = ``mean(s * lp)`` exactly: 0.32468118377382532 for s = 0.9 on
lung), so the uncentred baseline (offset 0) is read from ``survfit`` with
``newdata = data.frame(lp = 0)``; :func:`test_basehaz_is_at_mean_offset`
checks that relation.

Data: ``tests/data/lung.csv`` (R's ``survival::lung``, 227 complete cases of
``age, sex, ph.ecog``, ``status - 1``; few ties) and
``tests/data/survival_ties.csv`` (400 synthetic subjects, 36 distinct integer
times, heavy ties) -- see ``tests/test_survival_cox.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.cox import cox
from studyval.analysis.cox_shrinkage import ShrunkCoxResult, shrink_cox
from studyval.errors import EstimationError, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-6  # iterative fit (R stops at its eps); the baseline itself is exact


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    return d.dropna(subset=["age", "sex", "ph.ecog"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def lung_fit(lung):
    return cox(lung, duration="time", event="status", covariates=["age", "sex", "ph.ecog"])


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_ties.csv")


# (s, H0(365), S0(365), H0 at the 1st, 51st and last of the 185 distinct times)
LUNG = [
    # R: s = 0.9
    (0.9, 0.64205662678847009, 0.52620909470232347,
     (0.0029216891234928929, 0.24143659585778529, 2.1642247018313268)),
    # R: s = 0.75
    (0.75, 0.68447508075439423, 0.50435490569856933,
     (0.0031653977856981449, 0.25922331383398639, 2.2932270680913631)),
    # R: s = 1
    (1.0, 0.61386475102644411, 0.54125500584900377,
     (0.0027628150676267029, 0.22972388475114941, 2.0776278757337012)),
]  # fmt: skip


@pytest.mark.parametrize(("s", "h", "surv", "path"), LUNG)
def test_lung_efron_matches_r(lung, lung_fit, s, h, surv, path):
    r = shrink_cox(lung_fit, lung, shrinkage=s, horizon=365)
    assert isinstance(r, ShrunkCoxResult)
    assert r.cumhaz_shrunk_at_horizon == pytest.approx(h, rel=REL)
    assert r.baseline_survival_shrunk_at_horizon == pytest.approx(surv, rel=REL)
    bh = r.baseline_hazard_shrunk
    assert len(bh) == 185  # R: length(sf$cumhaz)
    np.testing.assert_allclose(bh["cumhaz"].to_numpy()[[0, 50, -1]], path, rtol=REL)
    np.testing.assert_allclose(r.coef_shrunk, s * lung_fit.coef, rtol=1e-15)


def test_basehaz_is_at_mean_offset(lung, lung_fit):
    # R: bh <- basehaz(f, centered = FALSE); bh$hazard[max(which(bh$time <= 365))]
    #    = 0.88834278468404582 for s = 0.9, and mean(s * lp) = 0.32468118377382532
    s = 0.9
    r = shrink_cox(lung_fit, lung, shrinkage=s, horizon=365)
    mean_offset = float(np.mean(s * lung_fit.predict_risk(lung)))
    assert mean_offset == pytest.approx(0.32468118377382532, rel=REL)
    at_mean = r.cumhaz_shrunk_at_horizon * math.exp(mean_offset)
    assert at_mean == pytest.approx(0.88834278468404582, rel=REL)


@pytest.mark.parametrize(
    ("method", "h", "surv", "path"),
    [
        # R: ties = "efron", s = 0.8, horizon 20
        ("efron", 2.7300423621759511, 0.065216526895622129,
         (0.002606070691673788, 1.6113613246227068, 3.8058478452259097)),
        # R: ties = "breslow", s = 0.8, horizon 20
        ("breslow", 2.5206174611994934, 0.080409941399029503,
         (0.0026248102807736643, 1.4735284285293724, 3.520394494102066)),
    ],
)  # fmt: skip
def test_heavy_ties_match_r(ties, method, h, surv, path):
    fit = cox(ties, duration="time", event="status", covariates=["x1", "x2"], ties=method)
    r = shrink_cox(fit, ties, shrinkage=0.8, horizon=20)
    assert r.ties == method
    assert r.cumhaz_shrunk_at_horizon == pytest.approx(h, rel=REL)
    assert r.baseline_survival_shrunk_at_horizon == pytest.approx(surv, rel=REL)
    bh = r.baseline_hazard_shrunk
    assert len(bh) == 36  # R: length(sf$cumhaz)
    np.testing.assert_allclose(bh["cumhaz"].to_numpy()[[0, 10, -1]], path, rtol=REL)


def test_s_one_gives_back_unshrunk_baseline(lung, lung_fit, ties):
    r = shrink_cox(lung_fit, lung, shrinkage=1.0, horizon=365)
    np.testing.assert_allclose(
        r.baseline_hazard_shrunk["cumhaz"], lung_fit.baseline_hazard["cumhaz"], rtol=1e-12
    )
    b0 = lung_fit.baseline_survival([365]).iloc[0]
    assert r.baseline_survival_shrunk_at_horizon == pytest.approx(b0["survival"], rel=1e-12)
    assert r.baseline_survival_at_horizon == b0["survival"]
    fit = cox(ties, duration="time", event="status", covariates=["x1", "x2"], ties="breslow")
    r2 = shrink_cox(fit, ties, shrinkage=1.0, horizon=20)
    np.testing.assert_allclose(
        r2.baseline_hazard_shrunk["cumhaz"], fit.baseline_hazard["cumhaz"], rtol=1e-12
    )


def test_shrunk_model_keeps_expected_events(lung, lung_fit):
    # The offset re-estimation keeps the sum of cumulative hazards at each
    # subject's own time equal to the number of events (Breslow ties).
    fit = cox(lung, duration="time", event="status", covariates=["age", "sex", "ph.ecog"],
              ties="breslow")  # fmt: skip
    r = shrink_cox(fit, lung, shrinkage=0.7, horizon=365)
    bh = r.baseline_hazard_shrunk
    idx = np.searchsorted(bh["time"].to_numpy(), lung["time"].to_numpy(), side="right") - 1
    expected = bh["cumhaz"].to_numpy()[idx] * np.exp(0.7 * fit.predict_risk(lung))
    assert expected.sum() == pytest.approx(lung["status"].sum(), rel=1e-10)


def test_to_frame(lung, lung_fit):
    r = shrink_cox(lung_fit, lung, shrinkage=0.9, horizon=365)
    f = r.to_frame()
    assert list(f["term"]) == ["age", "sex", "ph.ecog"]
    assert list(f.columns) == [
        "term", "coef", "hr", "shrinkage", "coef_shrunk", "hr_shrunk", "horizon",
        "cumhaz_at_horizon", "baseline_survival_at_horizon", "cumhaz_shrunk_at_horizon",
        "baseline_survival_shrunk_at_horizon",
    ]  # fmt: skip
    np.testing.assert_allclose(f["hr_shrunk"], np.exp(0.9 * lung_fit.coef))
    assert (f["baseline_survival_shrunk_at_horizon"] == r.baseline_survival_shrunk_at_horizon).all()


@pytest.mark.parametrize("s", [0.0, -0.5, math.nan, math.inf, "a"])
def test_not_estimable_shrinkage(lung, lung_fit, s):
    with pytest.raises(EstimationError, match="shrinkage"):
        shrink_cox(lung_fit, lung, shrinkage=s, horizon=365)


def test_no_events(lung, lung_fit):
    d = lung.assign(status=0)
    with pytest.raises(EstimationError, match="no events"):
        shrink_cox(lung_fit, d, shrinkage=0.9, horizon=365)


def test_other_data_rejected(lung, lung_fit):
    with pytest.raises(StudyvalError, match="fitted on"):
        shrink_cox(lung_fit, lung.iloc[:-3], shrinkage=0.9, horizon=365)


def test_stratified_rejected(ties):
    fit = cox(ties, duration="time", event="status", covariates=["x1"], strata="stratum")
    with pytest.raises(StudyvalError, match="stratified"):
        shrink_cox(fit, ties, shrinkage=0.9, horizon=20)


# ----------------------------------------------------------------------------- the step


@pytest.fixture(scope="module")
def step_tables(protocol_inputs):
    from studyval.pipeline import load_inputs
    from studyval.plan import load_plan
    from studyval.steps import prognostic

    plan = load_plan("refracture-pvp")
    plan = plan.model_copy(update={"sets": plan.sets.model_copy(update={"n_bootstrap": 5})})
    cohort = load_inputs(
        "refracture-pvp", protocol_inputs("refracture-pvp")["clinical"], None, plan=plan
    ).cohort
    out = prognostic.REGISTRY.run(["cox_models", "shrunk_model"], cohort, plan)
    return plan, out


def test_step_is_a_thin_adapter(step_tables):
    plan, out = step_tables
    shr, opt = out["shrunk_model"], out["optimism"].set_index(["model", "measure"])
    coefs, base = out["cox_coefficients"], out["baseline_survival"].set_index("model")
    assert list(shr["model"].unique()) == [m.name for m in plan.models]
    for m in plan.models:
        sub = shr[shr["model"] == m.name]
        s = opt.loc[(m.name, "calibration_slope"), "corrected"]
        assert (sub["shrinkage"] == s).all()  # each model's own factor
        c = coefs[coefs["model"] == m.name]
        assert list(sub["term"]) == list(c["term"])
        np.testing.assert_allclose(sub["coef_shrunk"], s * c["coef"].to_numpy(), rtol=1e-14)
        assert (
            sub["baseline_survival_at_horizon"] == base.loc[m.name, "baseline_survival_at_horizon"]
        ).all()
    assert (shr["apply_to_new_patients"] == "shrunk").all()  # the plan's extra setting
