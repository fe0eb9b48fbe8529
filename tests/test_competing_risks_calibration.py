"""Tests for studyval.analysis.competing_risks_calibration: grouped calibration with competing risks.

Oracle
------
R 4.2, cmprsk 2.2-11, on ``tests/data/pbc_competing.csv`` (``survival::pbc``: 1 =
transplant, 2 = death; ``risk_b`` a predicted incidence of death by 5 years, see
``tests/test_cumulative_incidence.py``). Values printed with ``sprintf("%.17g")``::

    library(cmprsk)
    d <- read.csv("pbc_competing.csv"); p <- d$risk_b; tau <- 1826
    G <- 5   # and 4
    q <- quantile(p, seq(0, 1, length.out = G + 1)); g <- findInterval(p, q[2:G]) + 1
    tp <- timepoints(cuminc(d$time, d$status, group = g, cencode = 0), tau)
    est <- tp$est[paste(1:G, 2), 1]; v <- tp$var[paste(1:G, 2), 1]
    h <- qnorm(0.975) * sqrt(v) / (est * log(est))
    as.integer(table(g)); tapply(p, g, mean); est; est^exp(-h); est^exp(h)
    tapply(d$status == 2 & d$time <= tau, g, sum)
    all <- timepoints(cuminc(d$time, d$status, cencode = 0), tau)
    e <- all$est["1 2", 1]; v <- all$var["1 2", 1]; h <- qnorm(0.975) * sqrt(v) / (e * log(e))
    c(e, e^exp(-h), e^exp(h), mean(p), e / mean(p))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.competing_risks_calibration import (
    CompetingRisksCalibrationResult,
    calibration_groups_competing,
)
from studyval.errors import EstimationError, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9
NAN = float("nan")

# G -> n, mean predicted, observed, ci_low, ci_high, deaths by 1826 days
R_GROUPS = {
    5: (
        [63, 62, 62, 62, 63],
        [
            0.058471045993023399,
            0.11038266046621903,
            0.18299886867135617,
            0.35821666353109183,
            0.75376157130636778,
        ],
        [0, 0.097947976272820647, 0.073015676126295281, 0.46589213433318077, 0.78971237617854129],
        [NAN, 0.039471149882337159, 0.022830855852360853, 0.32961088881399919, 0.65152323161472525],
        [NAN, 0.1882435218286031, 0.16330979893651493, 0.59116911141064532, 0.87801481284642802],
        [0, 6, 4, 27, 48],
    ),
    4: (
        [78, 78, 78, 78],
        [0.063949590091519432, 0.13317903151140725, 0.2794087709241112, 0.69743366946423135],
        [0.038461538461538464, 0.08055559425013524, 0.24197742317473164, 0.77974358974358937],
        [0.01014971247727837, 0.032523075148533254, 0.14770956871284407, 0.66005852767576001],
        [0.099011221085499188, 0.15693213720908816, 0.34899208247131386, 0.8615733720792309],
        [3, 6, 17, 59],
    ),
}
# observed, its limits, mean(p), O/E
R_OVERALL = (0.28373649209958152, 0.23332560648178879, 0.336085208486676,
             0.29349276549781733, 0.96675804467722604)  # fmt: skip


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    return pd.read_csv(DATA / "pbc_competing.csv")


def _run(d: pd.DataFrame, groups: int) -> CompetingRisksCalibrationResult:
    return calibration_groups_competing(
        d["time"], d["status"], d["risk_b"], cause=2, horizon=1826, n_groups=groups
    )


@pytest.mark.parametrize("groups", [5, 4])
def test_groups_match_cmprsk(pbc: pd.DataFrame, groups: int) -> None:
    r = _run(pbc, groups)
    n, pred, obs, lo, hi, nev = R_GROUPS[groups]
    g = r.to_frame()
    assert g["group"].tolist() == list(range(1, groups + 1))
    assert g["n"].tolist() == n
    assert g["n_events"].tolist() == nev
    np.testing.assert_allclose(g["predicted"], pred, rtol=REL)
    np.testing.assert_allclose(g["observed"], obs, rtol=REL, atol=1e-15)
    np.testing.assert_allclose(g["ci_low"], lo, rtol=REL)
    np.testing.assert_allclose(g["ci_high"], hi, rtol=REL)
    diff = np.nanmax(np.abs(np.asarray(obs) - np.asarray(pred)))
    assert r.max_abs_group_difference == pytest.approx(diff, rel=REL)
    assert r.n_groups == groups


def test_overall_matches_cmprsk(pbc: pd.DataFrame) -> None:
    r = _run(pbc, 5)
    got = (r.observed, r.observed_ci_low, r.observed_ci_high, r.mean_predicted, r.oe_ratio)
    np.testing.assert_allclose(got, R_OVERALL, rtol=REL)
    d = r.to_dict()
    assert "groups" not in d and d["oe_ratio"] == r.oe_ratio


def test_competing_event_not_censoring(pbc: pd.DataFrame) -> None:
    # recoding transplants as censored changes the observed incidence of death (not the same estimator)
    cens = pbc.assign(status=np.where(pbc["status"] == 1, 0, pbc["status"]))
    a, b = _run(pbc, 5), _run(cens, 5)
    assert b.observed > a.observed


def test_errors(pbc: pd.DataFrame) -> None:
    t, e = pbc["time"], pbc["status"]
    with pytest.raises(StudyvalError, match="at least 2"):
        calibration_groups_competing(t, e, pbc["risk_b"], cause=2, horizon=1826, n_groups=1)
    with pytest.raises(StudyvalError, match=r"\[0, 1\]"):
        calibration_groups_competing(t, e, pbc["risk_b"] + 1, cause=2, horizon=1826)
    with pytest.raises(StudyvalError, match="length"):
        calibration_groups_competing(t[:-1], e, pbc["risk_b"], cause=2, horizon=1826)
    tied = np.where(np.arange(len(pbc)) < 300, 0.2, 0.5)
    with pytest.raises(EstimationError, match="empty"):
        calibration_groups_competing(t, e, tied, cause=2, horizon=1826, n_groups=5)


# --------------------------------------------------------------------------- calibration slope
# Rscript tests/data/r/competing_risks_calibration_slope_pbc.R  (CSC(Hist(time, status) ~ lbili
# + age) on pbc_competing.csv; p0 = predictRisk(fit0, d, times = 1826, cause = 2,
# product.limit = TRUE); crr(pmin(time, 1826), ifelse(time > 1826, 0, status),
# cov1 = log(-log(1 - p0)), failcode = 2, cencode = 0, gtol = 1e-12): coef, sqrt(var)).
# crr's default gtol = 1e-6 stops early (1.0058976750170656 uncensored, 1.4e-6 away; in the
# bootstrap it moves the optimism, a small difference, by 4.5e-6 relative):
R_SLOPE_CENSORED = (1.1041804748857373, 0.11591174640384259)
# the same without censoring at the horizon:
R_SLOPE_UNCENSORED = (1.0058991180619874, 0.099198455661904467)
# Harrell's bootstrap optimism of the slope on the 20 shared resamples
# (tests/data/internal_validation_pbc_indices.csv), CSC refitted in each; columns apparent,
# training, test, optimism, corrected:
R_SLOPE_OPTIMISM = (1.1041804748857373, 1.1183100187754993, 1.0958953936294016,
                    0.022414625146097638, 1.0817658497396396)  # fmt: skip
SLOPE_REL = 1e-6
H = 1826.0


def _csc_fit(frame: pd.DataFrame) -> dict:
    from studyval.analysis import competing_risks as cr

    return {
        k: cr.cause_specific_cox(
            frame, duration="time", event="status", cause=k, covariates=["lbili", "age"],
            causes=[1, 2],
        )
        for k in (1, 2)
    }  # fmt: skip


def _csc_predict(models: dict, frame: pd.DataFrame) -> np.ndarray:
    from studyval.analysis import competing_risks as cr

    return cr.predict_cumulative_incidence(
        models, frame, cause=2, times=[H], product_limit=True
    ).risk[:, 0]


@pytest.fixture(scope="module")
def pbc_p0(pbc: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    d = pbc.assign(lbili=np.log(pbc["bili"]))
    return d, _csc_predict(_csc_fit(d), d)


@pytest.mark.parametrize(
    ("censor", "expected"),
    [
        pytest.param(True, R_SLOPE_CENSORED, id="censored-at-horizon"),
        pytest.param(False, R_SLOPE_UNCENSORED, id="whole-follow-up"),
    ],
)
def test_calibration_slope_equals_crr_on_cloglog(pbc_p0, censor, expected) -> None:
    from studyval.analysis.competing_risks_calibration import calibration_slope_competing

    d, p = pbc_p0
    r = calibration_slope_competing(
        d["time"], d["status"], p, cause=2, horizon=H, censor_at_horizon=censor
    )
    np.testing.assert_allclose((r.slope, r.se), expected, rtol=SLOPE_REL)
    assert r.ci_low == pytest.approx(r.slope - 1.959963984540054 * r.se, rel=1e-12)
    assert r.n == len(d) and r.censored_at_horizon is censor and r.converged
    assert r.n_events == int(((d["status"] == 2) & (d["time"] <= H)).sum())
    assert r.n_competing == int(((d["status"] == 1) & (d["time"] <= H)).sum())


def test_calibration_slope_bootstrap_optimism_equals_r_on_the_same_resamples(pbc_p0) -> None:
    from studyval.analysis.competing_risks_calibration import calibration_slope_competing
    from studyval.analysis.internal_validation import RefitModel, bootstrap_optimism

    d, _ = pbc_p0
    model = RefitModel(
        fit=_csc_fit,
        predict=_csc_predict,
        measures=lambda f, p: {
            "calibration_slope": calibration_slope_competing(
                f["time"], f["status"], p, cause=2, horizon=H, censor_at_horizon=True
            ).slope
        },
    )
    idx = np.loadtxt(DATA / "internal_validation_pbc_indices.csv", delimiter=",", dtype=np.int64)
    r = bootstrap_optimism(d, model, indices=list(idx - 1))
    assert r.n_failed == 0
    got = (r.apparent[0], r.training[0], r.test[0], r.optimism[0], r.corrected[0])
    np.testing.assert_allclose(got, R_SLOPE_OPTIMISM, rtol=SLOPE_REL)


def test_calibration_slope_recovers_a_known_slope() -> None:
    # predictions exp-transformed on the cloglog scale by 1/2: the fitted slope is about 2
    from studyval.analysis.competing_risks_calibration import calibration_slope_competing

    rng = np.random.default_rng(7)
    n = 4000
    true = rng.uniform(0.05, 0.5, n)
    u = rng.uniform(size=n)
    code = np.where(u < true, 1, np.where(u < true + 0.15, 2, 0))
    t = np.where(code > 0, rng.uniform(0, 1, n), 1.0 + rng.uniform(0, 1, n))
    cll = np.log(-np.log1p(-true))
    shrunk = 1 - np.exp(-np.exp(cll / 2.0))
    good = calibration_slope_competing(t, code, true, cause=1, horizon=1.0, censor_at_horizon=True)
    flat = calibration_slope_competing(
        t, code, shrunk, cause=1, horizon=1.0, censor_at_horizon=True
    )
    assert good.ci_low < 1.0 < good.ci_high
    assert flat.slope == pytest.approx(2 * good.slope, rel=1e-9)


@pytest.mark.parametrize(
    ("risk", "kwargs", "error", "match"),
    [
        pytest.param("one", {}, StudyvalError, r"strictly inside \(0, 1\)", id="risk-one"),
        pytest.param("const", {}, EstimationError, "same", id="constant-risk"),
        pytest.param("ok", {"horizon": -1.0}, StudyvalError, "horizon", id="bad-horizon"),
        pytest.param("ok", {"censor_at_horizon": 1}, StudyvalError, "True or False", id="not-bool"),
    ],
)
def test_calibration_slope_errors(pbc_p0, risk, kwargs, error, match) -> None:
    from studyval.analysis.competing_risks_calibration import calibration_slope_competing

    d, p = pbc_p0
    r = {"one": np.where(np.arange(len(p)) == 0, 1.0, p), "const": np.full(len(p), 0.3), "ok": p}
    args = {"cause": 2, "horizon": H, "censor_at_horizon": True} | kwargs
    with pytest.raises(error, match=match):
        calibration_slope_competing(d["time"], d["status"], r[risk], **args)
