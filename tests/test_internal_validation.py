"""Tests for studyval.analysis.internal_validation (Harrell's bootstrap optimism correction).

Oracles
-------
* **Same resamples, exact.** R 4.2.2 (survival 3.5-3, riskRegression 2022.11.28) runs the
  algorithm on the resamples studyval draws: ``tests/data/r/internal_validation_lung.R``
  (Cox model; Harrell's C, Dxy, calibration slope, Uno's C, time-dependent AUC, Brier, IPA)
  and ``tests/data/r/internal_validation_pbc_csc.R`` (the generic mechanism: cause-specific
  Cox models predicting the cumulative incidence of death, as the cirrhosis-sarcopenia
  protocol). The resamples are in ``tests/data/internal_validation_lung_indices.csv`` and
  ``tests/data/internal_validation_pbc_indices.csv`` (1-based rows, one line per resample),
  written by :func:`resample_indices` (checked below). Required agreement: 1e-6 relative.
* **Own resamples, Monte Carlo error.** ``rms::validate(cph(...), B = 2000, dxy = TRUE)``
  (rms 6.5-0), script ``tests/data/r/internal_validation_lung_validate.R``. R draws with
  ``sample()``, so only agreement within Monte Carlo error can be asked: the tolerance is
  derived in :func:`test_corrected_dxy_and_slope_within_monte_carlo_error_of_rms_validate`.

Data
----
``tests/data/lung.csv`` (R's ``survival::lung``, public domain; see tests/test_survival.py):
the 227 complete cases of age, sex, ph.ecog, status recoded to 0/1.
``tests/data/pbc_competing.csv`` (``survival::pbc``, 312 randomised patients; 1 =
transplant, 2 = death).
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis import competing_risks as cr
from studyval.analysis import survival_validation as svv
from studyval.analysis.internal_validation import (
    OptimismResult,
    RefitModel,
    bootstrap_optimism,
    cox_optimism,
    cox_refit_model,
    resample_indices,
)
from studyval.analysis.survival import cox, harrell_c
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-6
COVS = ["age", "sex", "ph.ecog"]
LUNG_SEED = 20240917  # internal_validation_lung_indices.csv: 50 resamples
PBC_SEED = 20240918  # internal_validation_pbc_indices.csv: 20 resamples


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    return d.dropna(subset=COVS).reset_index(drop=True)


@pytest.fixture(scope="module")
def lung_indices() -> list[np.ndarray]:
    idx = np.loadtxt(DATA / "internal_validation_lung_indices.csv", delimiter=",", dtype=np.int64)
    return list(idx - 1)


@pytest.fixture(scope="module")
def lung_exact(lung, lung_indices) -> OptimismResult:
    return cox_optimism(
        lung, duration="time", event="status", covariates=COVS, horizon=365, indices=lung_indices
    )


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    d = pd.read_csv(DATA / "pbc_competing.csv")
    d["lbili"] = np.log(d["bili"])
    return d


# --------------------------------------------------------------------------- resamples


def test_index_files_are_the_seeded_pcg64_resamples(lung, pbc, lung_indices):
    ours = resample_indices(n_rows=len(lung), n_resamples=50, seed=LUNG_SEED)
    assert len(ours) == 50
    for a, b in zip(ours, lung_indices, strict=True):
        np.testing.assert_array_equal(a, b)
    pbc_idx = np.loadtxt(DATA / "internal_validation_pbc_indices.csv", delimiter=",", dtype=int)
    ours = resample_indices(n_rows=len(pbc), n_resamples=20, seed=PBC_SEED)
    np.testing.assert_array_equal(np.vstack(ours), pbc_idx - 1)


def test_ordinary_resamples_are_sorted_rows_of_one_pcg64_draw():
    n, b = 17, 6
    rng = np.random.Generator(np.random.PCG64(5))
    draws = rng.integers(0, n, size=(b, n))
    ours = resample_indices(n_rows=n, n_resamples=b, seed=5)
    for row, idx in zip(draws, ours, strict=True):
        np.testing.assert_array_equal(idx, np.sort(row))
        assert not idx.flags.writeable


def test_cluster_resamples_keep_every_row_of_a_drawn_patient():
    patients = np.array(["p3", "p1", "p1", "p2", "p3", "p3", "p4"])
    for idx in resample_indices(clusters=patients, n_resamples=30, seed=2):
        drawn = pd.Series(patients[idx]).value_counts()
        for pid, rows_drawn in drawn.items():
            size = int((patients == pid).sum())
            assert rows_drawn % size == 0  # whole patients, possibly several times
            assert np.bincount(idx, minlength=7)[patients == pid].std() == 0
        # as many patients drawn as there are patients
        assert sum(drawn[p] / (patients == p).sum() for p in drawn.index) == 4


# --------------------------------------------------------------------------- exact: same resamples


# Rscript tests/data/r/internal_validation_lung.R  (coxph(Surv(time, status) ~ age + sex + ph.ecog)
# refitted on d[idx[b, ], ]; concordance(reverse = TRUE), coef(coxph(Surv ~ lp)),
# concordance(timewt = "n/G2", ymax = 365), Score(times = 365, metrics = c("auc", "brier"),
# summary = "ipa")). Columns: apparent, training, test, optimism, corrected, sd(optimism_b).
R_LUNG_EXACT = {
    "harrell_c": (0.63713549300045491, 0.64420981390267795, 0.63589225248900794,
                  0.0083175614136700663, 0.6288179315867849, 0.028392954220710229),
    "somers_dxy": (0.27427098600090982, 0.28841962780535602, 0.27178450497801587,
                   0.016635122827340133, 0.25763586317356968, 0.056785908441420459),
    "calibration_slope": (0.9999999999996767, 0.99999999999892897, 0.97183071981762414,
                          0.028169280181304841, 0.97183071981837188, 0.25611519762048374),
    "uno_c": (0.63309674842465236, 0.63924164296314112, 0.63232858074721199,
              0.0069130622159291376, 0.62618368620872322, 0.027852453709069219),
    "auc_horizon": (0.64739766001536292, 0.64613833846809698, 0.644651619862883,
                    0.0014867186052139681, 0.64591094141014893, 0.040299250414634349),
    "brier": (0.22559630931723243, 0.22673438934614254, 0.22947543382719776,
              -0.002741044481055218, 0.22833735379828765, 0.012837843847719363),
    "ipa": (0.068118515636471422, 0.065555617522673693, 0.052094830154568408,
            0.013460787368105284, 0.054657728268366138, 0.047329914087325363),
}  # fmt: skip


@pytest.mark.parametrize("measure", list(R_LUNG_EXACT), ids=list(R_LUNG_EXACT))
def test_cox_optimism_equals_r_on_the_same_resamples(lung_exact, measure):
    r = lung_exact
    j = r.measures.index(measure)
    ours = (
        r.apparent[j],
        r.training[j],
        r.test[j],
        r.optimism[j],
        r.corrected[j],
        r.optimism_sd[j],
    )
    np.testing.assert_allclose(ours, R_LUNG_EXACT[measure], rtol=REL, atol=0)


def test_cox_optimism_result_bookkeeping(lung_exact, lung_indices):
    r = lung_exact
    assert r.measures == tuple(R_LUNG_EXACT)
    assert (r.n_resamples, r.n_succeeded, r.n_failed, r.failures) == (50, 50, 0, ())
    assert r.seed is None and r.n_rows == 227 and r.n_clusters is None
    np.testing.assert_allclose(r.corrected, r.apparent - r.optimism, rtol=0, atol=0)
    np.testing.assert_allclose(r.optimism_mc_se, r.optimism_sd / math.sqrt(50))
    np.testing.assert_allclose(r.optimism, np.mean(r.training_replicates - r.test_replicates, 0))
    assert r.training_replicates.shape == (50, 7) and not r.training_replicates.flags.writeable
    np.testing.assert_array_equal(r.indices[3], lung_indices[3])
    frame = r.to_frame()
    assert list(frame["measure"]) == list(R_LUNG_EXACT)
    assert list(frame.columns[:6]) == [
        "measure",
        "apparent",
        "training",
        "test",
        "optimism",
        "corrected",
    ]
    assert r["harrell_c"]["corrected"] == pytest.approx(R_LUNG_EXACT["harrell_c"][4], rel=REL)
    with pytest.raises(KeyError, match="no measure 'dxy'"):
        r["dxy"]


def test_seed_and_the_returned_indices_reproduce_the_run(lung, lung_exact):
    by_seed = cox_optimism(
        lung,
        duration="time",
        event="status",
        covariates=COVS,
        horizon=365,
        n_resamples=50,
        seed=LUNG_SEED,
    )
    assert by_seed.seed == LUNG_SEED
    np.testing.assert_array_equal(by_seed.corrected, lung_exact.corrected)
    again = cox_optimism(
        lung,
        duration="time",
        event="status",
        covariates=COVS,
        horizon=365,
        indices=by_seed.indices,
    )
    np.testing.assert_array_equal(again.test_replicates, by_seed.test_replicates)


# Rscript tests/data/r/internal_validation_pbc_csc.R  (CSC(Hist(time, status) ~ lbili + age)
# refitted on d[idx[b, ], ]; predictRisk(times = 1826, cause = 2, product.limit = TRUE);
# Score(cause = 2, metrics = c("auc", "brier")); concordance(Surv(time, status == 2) ~ p,
# reverse = TRUE)). Columns: apparent, training, test, optimism, corrected.
R_PBC_CSC = {
    "td_auc": (0.89888090816180033, 0.90517582737738644, 0.8989810259275387,
               0.0061948014498476919, 0.89268610671195259),
    "brier": (0.11397115500461312, 0.11284711975530323, 0.11486722479454856,
              -0.0020201050392453105, 0.11599126004385843),
    "harrell_c": (0.81973836860423255, 0.82012484332077817, 0.81967036044325314,
                  0.0004544828775249754, 0.81928388572670752),
}  # fmt: skip


def _csc_model(horizon: float) -> RefitModel:
    """The cirrhosis-sarcopenia pattern: cause-specific Cox models, predicted incidence of death."""

    def fit(frame: pd.DataFrame) -> dict:
        return {
            k: cr.cause_specific_cox(
                frame,
                duration="time",
                event="status",
                cause=k,
                covariates=["lbili", "age"],
                causes=[1, 2],
            )
            for k in (1, 2)
        }

    def predict(models: dict, frame: pd.DataFrame) -> np.ndarray:
        pred = cr.predict_cumulative_incidence(
            models, frame, cause=2, times=[horizon], product_limit=True
        )
        return pred.risk[:, 0]

    def measures(frame: pd.DataFrame, risk: np.ndarray) -> dict[str, float]:
        t = frame["time"].to_numpy(float)
        c = frame["status"].to_numpy(int)
        return {
            "td_auc": svv.time_dependent_auc(t, c, risk, horizon=horizon, cause=2).estimate,
            "brier": cr.brier_competing(
                t, c, risk, cause=2, horizon=horizon, causes=[1, 2]
            ).estimate,
            "harrell_c": harrell_c(t, (c == 2).astype(int), risk).estimate,
        }

    return RefitModel(fit=fit, predict=predict, measures=measures, description="CSC, death")


@pytest.fixture(scope="module")
def pbc_exact(pbc) -> OptimismResult:
    """The cause-specific Cox models refitted on the resamples shared with R (computed once)."""
    idx = np.loadtxt(DATA / "internal_validation_pbc_indices.csv", delimiter=",", dtype=np.int64)
    return bootstrap_optimism(pbc, _csc_model(1826.0), indices=list(idx - 1))


@pytest.mark.parametrize("measure", list(R_PBC_CSC), ids=list(R_PBC_CSC))
def test_caller_defined_competing_risks_model_equals_r_on_the_same_resamples(pbc_exact, measure):
    r = pbc_exact
    assert r.model == "CSC, death" and r.n_failed == 0
    j = r.measures.index(measure)
    ours = (r.apparent[j], r.training[j], r.test[j], r.optimism[j], r.corrected[j])
    np.testing.assert_allclose(ours, R_PBC_CSC[measure], rtol=REL, atol=0)


# --------------------------------------------------------------------------- Monte Carlo: rms::validate

# Rscript tests/data/r/internal_validation_lung_validate.R:
#   set.seed(20240917)
#   f <- cph(Surv(time, status) ~ age + sex + ph.ecog, data = d, x = TRUE, y = TRUE)
#   validate(f, B = 2000, dxy = TRUE)[c("Dxy", "Slope"), ]
# Columns: index.orig, training, test, optimism, index.corrected (n = 2000 for both rows).
RMS_VALIDATE = {
    "somers_dxy": (0.2742709860009096, 0.28989217021233887, 0.2738782028604636,
                   0.016013967351875269, 0.25825701864903433),
    "calibration_slope": (1.0, 1.0, 0.94603914093968389, 0.053960859060316113,
                          0.94603914093968389),
}  # fmt: skip
# Ours, computed once (about 20-40 s; recomputed in the slow test below):
#   cox_optimism(lung, duration="time", event="status", covariates=["age", "sex", "ph.ecog"],
#                n_resamples=2000, seed=20240917)
# Columns: apparent, training, test, optimism, corrected, optimism_sd.
OURS_B2000 = {
    "harrell_c": (0.63713549300045491, 0.64544531278659312, 0.63666528528831901,
                  0.0087800274982730905, 0.6283554655021818, 0.025066783644182841),
    "somers_dxy": (0.27427098600090982, 0.2908906255731874, 0.27333057057664101,
                   0.017560054996546181, 0.25671093100436365, 0.050133567288365682),
    "calibration_slope": (0.99999999999967271, 0.99999999999995226, 0.94548966936717149,
                          0.05451033063278006, 0.9454896693668926, 0.20201817493559512),
}  # fmt: skip
B_MC = 2000


def _mc_tolerance(measure: str) -> float:
    """4 standard errors of the difference of two independent B = 2000 optimism estimates.

    Each estimate is a mean of B per-resample optimisms with standard deviation sd (ours,
    OURS_B2000; rms does not report its own, and both estimate the same bootstrap
    distribution), so the difference has SE sd * sqrt(2 / B); the safety factor 4 makes a
    false failure a 6e-5 event. Dxy: 4 * 0.0501 * sqrt(2/2000) = 0.0063; slope: 0.0256.
    """
    return 4.0 * OURS_B2000[measure][5] * math.sqrt(2.0 / B_MC)


@pytest.mark.parametrize("measure", list(RMS_VALIDATE), ids=list(RMS_VALIDATE))
def test_corrected_dxy_and_slope_within_monte_carlo_error_of_rms_validate(measure):
    ours, theirs = OURS_B2000[measure], RMS_VALIDATE[measure]
    tol = _mc_tolerance(measure)
    # the apparent index does not depend on the resamples: exact (rms sets the apparent slope
    # to 1 by definition, we refit it: 1 - 3e-13; Dxy depends on the ranks only, which rms's
    # looser fit, eps = 1e-4, leaves unchanged)
    assert ours[0] == pytest.approx(theirs[0], rel=REL)
    assert abs(ours[3] - theirs[3]) <= tol  # optimism
    assert abs(ours[4] - theirs[4]) <= tol  # corrected
    # and the tolerance is tight enough to tell the optimism from 0 (or from twice its size)
    assert tol < 0.5 * abs(theirs[3])


def test_corrected_c_is_half_corrected_dxy_plus_one_as_rms_reports_it():
    # rms reports Dxy; C = (Dxy + 1) / 2, so its Monte Carlo tolerance is half that of Dxy
    ours_c = OURS_B2000["harrell_c"][4]
    rms_c = (RMS_VALIDATE["somers_dxy"][4] + 1.0) / 2.0
    assert abs(ours_c - rms_c) <= _mc_tolerance("somers_dxy") / 2.0
    assert ours_c == pytest.approx((OURS_B2000["somers_dxy"][4] + 1.0) / 2.0, rel=1e-12)


@pytest.mark.slow
def test_stored_b2000_numbers_are_what_cox_optimism_computes(lung):
    r = cox_optimism(
        lung, duration="time", event="status", covariates=COVS, n_resamples=B_MC, seed=LUNG_SEED
    )
    assert r.n_failed == 0
    for measure, expected in OURS_B2000.items():
        j = r.measures.index(measure)
        got = (r.apparent[j], r.training[j], r.test[j], r.optimism[j], r.corrected[j])
        np.testing.assert_allclose((*got, r.optimism_sd[j]), expected, rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- clusters


def test_singleton_clusters_give_the_ordinary_bootstrap(lung):
    d = lung.assign(patient=np.arange(len(lung)))
    kw = dict(duration="time", event="status", covariates=COVS, n_resamples=8, seed=3)
    plain = cox_optimism(lung, **kw)
    clustered = cox_optimism(d, cluster="patient", **kw)
    np.testing.assert_array_equal(plain.corrected, clustered.corrected)
    assert clustered.n_clusters == len(lung)


def test_cluster_column_resamples_patients(lung):
    d = lung.iloc[np.repeat(np.arange(60), 2)].reset_index(drop=True)
    d["patient"] = np.repeat([f"P{i:03d}" for i in range(60)], 2)
    r = cox_optimism(
        d,
        duration="time",
        event="status",
        covariates=COVS,
        cluster="patient",
        n_resamples=5,
        seed=11,
    )
    assert (r.n_rows, r.n_clusters) == (120, 60)
    for idx in r.indices:
        counts = np.bincount(idx, minlength=120)
        np.testing.assert_array_equal(counts[0::2], counts[1::2])  # both rows of a patient
    expected = resample_indices(clusters=d["patient"].to_numpy(), n_resamples=5, seed=11)
    for a, b in zip(r.indices, expected, strict=True):
        np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- failures


@pytest.fixture(scope="module")
def few_events() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    n = 30
    d = pd.DataFrame({"x": rng.normal(size=n), "time": rng.uniform(1, 10, size=n)})
    d["status"] = 0
    d.loc[[3, 17], "status"] = 1  # two events: many resamples have none
    return d


def test_resamples_without_events_are_counted_by_reason_and_warned(few_events):
    with pytest.warns(StatisticalWarning, match=r"resamples failed .*no events in column"):
        r = cox_optimism(
            few_events,
            duration="time",
            event="status",
            covariates=["x"],
            n_resamples=40,
            seed=1,
            max_failed_fraction=0.5,
        )
    no_event = sum(
        1 for idx in r.indices if few_events["status"].to_numpy()[np.asarray(idx)].sum() == 0
    )
    assert no_event > 0
    reasons = dict(r.failures)
    assert reasons["fit: no events in column 'status'"] == no_event
    assert r.n_failed == sum(reasons.values()) and r.n_succeeded == 40 - r.n_failed
    failed = ~np.isfinite(r.training_replicates).all(axis=1)
    assert failed.sum() == r.n_failed
    ok = ~failed
    np.testing.assert_allclose(
        r.optimism, (r.training_replicates[ok] - r.test_replicates[ok]).mean(axis=0)
    )
    frame = r.to_frame()
    assert f"fit: no events in column 'status': {no_event}" in frame["failures"].iloc[0]


def test_more_failures_than_allowed_raise(few_events):
    with pytest.raises(EstimationError, match=r"max_failed_fraction = 0.1\)"):
        cox_optimism(
            few_events,
            duration="time",
            event="status",
            covariates=["x"],
            n_resamples=40,
            seed=1,
        )


def test_failures_of_a_caller_model_are_counted_per_stage():
    d = pd.DataFrame({"y": np.arange(10.0)})
    calls = {"fit": 0}

    def fit(frame):
        calls["fit"] += 1
        if calls["fit"] == 3:
            raise EstimationError("design is singular: column y; more text")
        return float(frame["y"].mean())

    def measures(frame, pred):
        if pred > 5.4:  # happens on some resamples (not on the original: mean 4.5)
            raise EstimationError("no comparable pairs")
        if pred < 3.6:
            return {"m": math.nan}
        return {"m": pred}

    model = RefitModel(fit=fit, predict=lambda m, f: m, measures=measures)
    with pytest.warns(StatisticalWarning, match="resamples failed"):
        r = bootstrap_optimism(d, model, n_resamples=30, seed=7, max_failed_fraction=0.9)
    reasons = dict(r.failures)
    assert reasons.pop("fit: design is singular") == 1
    assert set(reasons) <= {"training: no comparable pairs", "training: m is not finite (nan)"}
    assert r.n_failed == 1 + sum(reasons.values())
    assert r.n_succeeded + r.n_failed == 30
    # the test value is the measure on the original data with the resample's model
    ok = np.isfinite(r.test_replicates[:, 0])
    np.testing.assert_array_equal(r.test_replicates[ok, 0], r.training_replicates[ok, 0])


def test_no_failure_means_no_warning(lung):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = cox_optimism(
            lung, duration="time", event="status", covariates=COVS, n_resamples=3, seed=1
        )
    assert r.failures == () and r.n_failed == 0


# --------------------------------------------------------------------------- competing-risk AUC option


def test_event_codes_give_the_cause_specific_auc_with_other_causes_as_controls(pbc):
    d = pbc.assign(dead=(pbc["status"] == 2).astype(int))
    r = cox_optimism(
        d,
        duration="time",
        event="dead",
        covariates=["lbili", "age"],
        horizon=1826,
        event_codes="status",
        cause=2,
        n_resamples=2,
        seed=1,
    )
    fit = cox(d, duration="time", event="dead", covariates=["lbili", "age"])
    risk = fit.predict_risk_at(d, 1826)
    auc = svv.time_dependent_auc(d["time"], d["status"], risk, horizon=1826, cause=2)
    assert r["auc_horizon"]["apparent"] == pytest.approx(auc.estimate, rel=1e-12)


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"n_resamples": 5}, "n_resamples and seed are required", id="no-seed"),
        pytest.param({"seed": 1}, "n_resamples and seed are required", id="no-n"),
        pytest.param(
            {"n_resamples": 5, "seed": 1, "indices": [[0, 1]]}, "either indices", id="both"
        ),
        pytest.param({"indices": [[0, 227]]}, r"outside 0\.\.226", id="index-out-of-range"),
        pytest.param({"indices": [[0.0, 1.0]]}, "integer row positions", id="float-indices"),
        pytest.param({"indices": []}, "no resample", id="no-indices"),
        pytest.param({"n_resamples": 0, "seed": 1}, "n_resamples must be", id="zero-resamples"),
        pytest.param({"n_resamples": 5, "seed": -1}, "seed must be", id="negative-seed"),
        pytest.param(
            {"n_resamples": 5, "seed": 1, "cluster": "nope"}, "cluster column", id="no-column"
        ),
        pytest.param(
            {"n_resamples": 5, "seed": 1, "max_failed_fraction": 1.0},
            "max_failed_fraction",
            id="fraction",
        ),
    ],
)
def test_bad_arguments_are_errors(lung, kwargs, message):
    with pytest.raises(StudyvalError, match=message):
        cox_optimism(lung, duration="time", event="status", covariates=COVS, **kwargs)


def test_bad_model_configuration_is_an_error(lung):
    with pytest.raises(StudyvalError, match="non-empty list"):
        cox_refit_model(duration="time", event="status", covariates=[])
    with pytest.raises(StudyvalError, match="give horizon"):
        cox_refit_model(duration="time", event="status", covariates=COVS, event_codes="status")
    with pytest.raises(StudyvalError, match="must be a RefitModel"):
        bootstrap_optimism(lung, object(), n_resamples=2, seed=1)  # type: ignore[arg-type]
    names = iter([{"a": 1.0}, {"b": 1.0}])
    model = RefitModel(
        fit=lambda f: None, predict=lambda m, f: None, measures=lambda f, p: next(names)
    )
    with pytest.raises(StudyvalError, match="same names"):
        bootstrap_optimism(lung, model, n_resamples=1, seed=1)


def test_a_model_that_cannot_be_fitted_on_the_data_is_an_estimation_error(few_events):
    d = few_events.assign(status=0)
    with pytest.raises(EstimationError, match="no events"):
        cox_optimism(d, duration="time", event="status", covariates=["x"], n_resamples=2, seed=1)


# --------------------------------------------------------------------------- the fast paths
# cox_refit_model computes what the plain composition of cox, harrell_c and the calibration-slope
# refit computes, with less work (issue 12): a refit without cox's summary and tests, Harrell's C
# of the refit reused on its own data, risk-set layouts shared by fits of one outcome, Harrell's
# pair counts by an n x n table for small n, the Brier score's null model without
# kaplan_meier's tables. Each is checked bit for bit against the path it replaces.


def _plain_refit_model(horizon=None, strata=None, ties="efron"):
    """cox_refit_model as it was composed before the fast paths: cox, harrell_c, _cox_slope."""
    from studyval.analysis.cox import _cox_slope
    from studyval.analysis.survival import uno_c

    def fit(frame):
        model = cox(
            frame, duration="time", event="status", covariates=COVS, ties=ties, strata=strata
        )
        if not model.converged:
            raise EstimationError(
                "the Cox model did not converge (iteration limit or a coefficient diverging)"
            )
        return model

    def predict(model, frame):
        lp = np.asarray(model.predict_risk(frame), dtype=np.float64)
        risk = None if horizon is None else model.predict_risk_at(frame, horizon)
        return lp, risk

    def measures(frame, prediction):
        lp, risk = prediction
        t, e = frame["time"].to_numpy(np.float64), frame["status"].to_numpy()
        st = None if strata is None else frame[strata].to_numpy()
        c = harrell_c(t, e, lp, strata=st).estimate
        slope, converged = _cox_slope(t, e, lp - lp.mean(), strata=st, ties=ties)
        if not converged:
            raise EstimationError("the calibration-slope model did not converge")
        out = {"harrell_c": c, "somers_dxy": 2.0 * c - 1.0, "calibration_slope": slope}
        if horizon is not None:
            out["uno_c"] = uno_c(t, e, lp, tau=horizon).estimate
            out["auc_horizon"] = svv.time_dependent_auc(t, e, risk, horizon=horizon).estimate
            b = svv.brier(t, e, risk, horizon=horizon, conservative=True)
            out["brier"], out["ipa"] = b.estimate, b.ipa
        return out

    return RefitModel(fit=fit, predict=predict, measures=measures)


def _warnings_of(run):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run()
    return result, [(w.category, str(w.message)) for w in caught]


@pytest.mark.parametrize(
    ("horizon", "strata", "ties"),
    [(None, None, "efron"), (365.0, None, "efron"), (365.0, "inst3", "breslow")],
    ids=["plain", "horizon", "strata-breslow"],
)
def test_ready_made_cox_model_is_the_plain_composition_bit_for_bit(lung, horizon, strata, ties):
    d = lung.assign(inst3=(lung["inst"].fillna(0) % 3).astype(int))
    kw = dict(n_resamples=6, seed=7)
    fast = cox_optimism(
        d, duration="time", event="status", covariates=COVS, horizon=horizon, strata=strata,
        ties=ties, **kw,
    )  # fmt: skip
    plain = bootstrap_optimism(d, _plain_refit_model(horizon, strata, ties), **kw)
    for name in ("apparent", "training_replicates", "test_replicates", "corrected"):
        assert getattr(fast, name).tobytes() == getattr(plain, name).tobytes(), name


def test_ready_made_cox_model_fails_and_warns_as_the_plain_composition():
    """Tiny data: refits that do not converge, have no comparable pair or a zero-SE C."""
    rng = np.random.default_rng(11)
    d = pd.DataFrame(
        {
            "time": [10.0] * 4 + [1, 2, 3, 4, 6, 7, 8, 5],
            "status": [1] * 4 + [0] * 7 + [1],
            **{c: rng.normal(size=12) for c in COVS},
        }
    )
    kw = dict(n_resamples=16, seed=12, max_failed_fraction=0.95)
    fast, fast_warned = _warnings_of(
        lambda: cox_optimism(d, duration="time", event="status", covariates=COVS, **kw)
    )
    plain, plain_warned = _warnings_of(lambda: bootstrap_optimism(d, _plain_refit_model(), **kw))
    assert fast.failures == plain.failures
    assert {reason for reason, _ in fast.failures} == {
        "fit: no comparable pairs",
        "fit: the Cox model did not converge (iteration limit or a coefficient diverging)",
    }
    assert fast_warned == plain_warned
    assert any("standard error is 0" in m for _, m in fast_warned)
    assert fast.training_replicates.tobytes() == plain.training_replicates.tobytes()
    assert fast.test_replicates.tobytes() == plain.test_replicates.tobytes()


def test_refit_predicts_what_cox_predicts(lung):
    from studyval.analysis.cox import _cox_refit

    d = lung.assign(inst3=(lung["inst"].fillna(0) % 3).astype(int))
    for strata in (None, "inst3"):
        full = cox(d, duration="time", event="status", covariates=COVS, strata=strata)
        refit = _cox_refit(d, duration="time", event="status", covariates=COVS, strata=strata)
        assert refit.coef.tobytes() == full.coef.tobytes() and refit.converged
        assert refit.concordance.estimate == full.concordance
        assert refit.concordance.se == full.concordance_se
        lp, risk = refit.predict_lp_and_risk_at(d, 365.0)
        assert lp.tobytes() == full.predict_risk(d).tobytes()
        assert risk.tobytes() == full.predict_risk_at(d, 365.0).tobytes()
        pd.testing.assert_frame_equal(refit.baseline_hazard, full.baseline_hazard, check_exact=True)
    for bad, error in ((d.assign(c=1.0), "constant"), (d.assign(status=0), "no events")):
        covs = [*COVS, "c"] if "c" in bad else COVS
        with pytest.raises(EstimationError, match=error):
            _cox_refit(bad, duration="time", event="status", covariates=covs)


def test_concordance_is_reused_only_for_the_data_it_was_computed_on(lung):
    from studyval.analysis.cox import _cox_refit

    refit = _cox_refit(lung, duration="time", event="status", covariates=COVS)
    t, e = lung["time"].to_numpy(float), lung["status"].to_numpy()
    lp = refit.predict_risk(lung)
    assert refit.concordance_if_same(t, e, lp, None) is refit.concordance
    assert refit.concordance_if_same(t, e, lp + 1e-9, None) is None
    assert refit.concordance_if_same(t[::-1], e, lp, None) is None
    assert refit.concordance_if_same(t, e, lp, np.zeros(len(t))) is None
    assert refit.concordance_if_same(t.astype(object), e, lp, None) is None


def test_shared_risk_set_layouts_give_the_same_fits():
    from studyval.analysis.cox import _cox_prepare, _cox_slope, _Layouts

    rng = np.random.default_rng(3)
    n = 150
    t = np.ceil(rng.exponential(5, n))  # many tied times
    e = (rng.random(n) < 0.7).astype(np.int8)
    codes = rng.integers(0, 3, n).astype(np.int64)
    layouts = _Layouts(size=2)
    for _ in range(6):
        x = rng.normal(size=(n, 2))
        cached = _cox_prepare(t, e, x, codes, layouts)
        fresh = _cox_prepare(t, e, x, codes)
        for field in ("x", "means", "sum_x_ev", "order", "ev_idx", "last_eb", "seg_starts"):
            assert getattr(cached, field).tobytes() == getattr(fresh, field).tobytes(), field
        lp = x[:, 0]
        for strata in (None, codes):
            assert _cox_slope(t, e, lp, strata=strata, layouts=layouts) == _cox_slope(
                t, e, lp, strata=strata
            )


def test_dense_pair_counts_are_the_radix_pass_bit_for_bit():
    from studyval.analysis.concordance import _DENSE_MAX_N, _pair_sums, _pair_sums_dense

    rng = np.random.default_rng(123)
    for trial in range(400):
        n = int(rng.integers(1, 80)) if trial < 390 else _DENSE_MAX_N
        t = rng.integers(0, rng.integers(1, 30), n).astype(float)
        e = (rng.random(n) < rng.random()).astype(np.int8)
        if trial % 2:
            risk = rng.integers(0, rng.integers(1, 20), n).astype(float)
        else:
            risk = rng.normal(size=n)
        w = np.ones(n) if trial % 3 else (rng.random(n) < 0.5).astype(float)
        _, r = np.unique(risk, return_inverse=True)
        _, trank = np.unique(t, return_inverse=True)
        r, key = r.astype(np.int64), 2 * trank.astype(np.int64) + (1 - e.astype(np.int64))
        a1, b1 = _pair_sums(np.lexsort((-r, -key)), r, w * e)
        a2, b2 = _pair_sums_dense(key, r, w * e)
        assert a1.tobytes() == a2.tobytes() and b1.tobytes() == b2.tobytes(), trial


def test_brier_null_model_is_kaplan_meier_at_the_horizon():
    from studyval.analysis.kaplan_meier import kaplan_meier
    from studyval.analysis.survival_validation import _km_survival_at

    rng = np.random.default_rng(5)
    for trial in range(60):
        n = int(rng.integers(2, 200))
        if trial % 2:
            t = rng.integers(0, rng.integers(2, 40), n).astype(float)
        else:
            t = rng.exponential(10, n)
        e = (rng.random(n) < rng.random()).astype(np.int64)
        if t.max() == t.min():
            continue
        h = float(rng.choice(t[t < t.max()])) if trial % 3 else float(rng.uniform(0, t.max()))
        if h >= t.max():
            continue
        km = kaplan_meier(t, e, times=[h]).to_frame()["survival"].iloc[0]
        assert np.float64(km).tobytes() == np.float64(_km_survival_at(t, e, h)).tobytes()


def test_layout_cache_tells_arrays_of_other_types_apart():
    """Equal bytes are not an equal array: an event vector of booleans and one of bytes (the same
    bytes) are two cache entries, never one layout served for the other."""
    from studyval.analysis.cox import _cox_prepare, _Layouts

    t = np.array([3.0, 1.0, 2.0, 5.0])
    events = np.array([True, False, True, True])
    x = np.array([[0.5], [1.0], [-0.2], [0.1]])
    codes = np.zeros(4, dtype=np.int64)
    layouts = _Layouts(size=4)
    _cox_prepare(t, events, x, codes, layouts)
    _cox_prepare(t, events.view(np.uint8), x, codes, layouts)
    assert len(layouts._store) == 2
    _cox_prepare(t, events.copy(), x, codes, layouts)  # the same outcome again: a hit
    assert len(layouts._store) == 2
