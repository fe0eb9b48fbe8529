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
