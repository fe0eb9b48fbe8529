"""Net benefit at a horizon for censored data (Vickers et al. 2008), against hand computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from studyval.analysis.decision_curve_survival import km_survival_at, net_benefit_survival
from studyval.errors import EstimationError, StudyvalError

# Six subjects; risk decreasing with time. Horizon 4.5.
TIME = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
EVENT = np.array([1, 0, 1, 0, 1, 0])
RISK = np.array([0.9, 0.8, 0.6, 0.4, 0.3, 0.1])


def _nb(res, strategy, threshold):
    t = res.to_frame()
    row = t[(t["strategy"] == strategy) & np.isclose(t["threshold"], threshold)]
    return float(row["net_benefit"].iloc[0])


def test_km_at_horizon_by_hand():
    # all six: S = (5/6) (3/4) = 5/8 at t = 4.5 (the event at 5 is after the horizon)
    s, reached = km_survival_at(TIME, EVENT, 4.5)
    assert s == pytest.approx(5 / 8)
    assert reached


def test_net_benefit_by_hand():
    res = net_benefit_survival(TIME, EVENT, {"m": RISK}, horizon=4.5, thresholds=[0.2, 0.5, 0.95])
    # treat all at p = 0.2: (1 - 5/8) - (5/8)(0.25) = 0.21875
    assert _nb(res, "treat all", 0.2) == pytest.approx(0.21875)
    # model at p = 0.2 treats the first five: KM among them S = (4/5)(2/3) = 8/15;
    # NB = (7/15)(5/6) - (8/15)(5/6)(0.25) = 5/18
    assert _nb(res, "m", 0.2) == pytest.approx(5 / 18)
    # at p = 0.5 the first three are treated: S = (2/3)(0/1) = 0, NB = 3/6
    assert _nb(res, "m", 0.5) == pytest.approx(0.5)
    # nobody above 0.95: NB = 0
    assert _nb(res, "m", 0.95) == 0.0
    assert _nb(res, "treat none", 0.5) == 0.0
    assert res.n_events == 2


def test_uncensored_data_equal_the_binary_formula():
    rng = np.random.default_rng(1)
    n = 300
    time = rng.exponential(1.0, n) + 0.01
    event = np.ones(n, dtype=int)
    risk = np.clip(1 - np.exp(-1.0 / time) + rng.normal(0, 0.05, n), 0.01, 0.99)
    h = 1.0
    y = time <= h
    res = net_benefit_survival(time, event, {"m": risk}, horizon=h, thresholds=[0.3])
    treated = risk >= 0.3
    tp = (treated & y).sum() / n
    fp = (treated & ~y).sum() / n
    assert _nb(res, "m", 0.3) == pytest.approx(tp - fp * 0.3 / 0.7)


def test_errors():
    with pytest.raises(EstimationError, match="no events"):
        net_benefit_survival(TIME, np.zeros(6, int), {"m": RISK}, horizon=3, thresholds=[0.2])
    with pytest.raises(EstimationError, match="after the last follow-up"):
        net_benefit_survival(TIME, EVENT, {"m": RISK}, horizon=6, thresholds=[0.2])
    with pytest.raises(StudyvalError, match="time must be finite and >= 0"):
        net_benefit_survival(np.r_[-1.0, TIME[1:]], EVENT, {"m": RISK}, horizon=3, thresholds=[0.2])
    with pytest.raises(StudyvalError, match="thresholds"):
        net_benefit_survival(TIME, EVENT, {"m": RISK}, horizon=3, thresholds=[1.0])


def test_net_benefit_survival_against_R_survfit():
    """Vickers et al. 2008 (BMC Med Inform Decis Mak 8:53) net benefit at a horizon, computed in R
    from Kaplan-Meier risks among the treated (pbc, death = event, transplant censored):

        d <- read.csv("tests/data/pbc_competing.csv"); d$dead <- as.integer(d$status == 2)
        nb <- function(pt, tau = 1825) { tr <- d$risk_a >= pt; if (!any(tr)) return(0)
          s <- summary(survfit(Surv(time, dead) ~ 1, data = d[tr, ]), times = tau,
                       extend = TRUE)$surv
          mean(tr) * (1 - s) - mean(tr) * s * pt / (1 - pt) }
        sapply(c(0.1, 0.2, 0.3, 0.5), nb)
        # 0.24517320046673313 0.22778606795938533 0.18895587631285574 0.15259800295857986
        S <- summary(survfit(Surv(time, dead) ~ 1, data = d), times = 1825)$surv
        # 0.71072798198747456;  treat all: (1 - S) - S * pt / (1 - pt)
        # 0.21030224223613939 0.11159002251565681 -0.015325688553535111 -0.42145596397494911
    """
    import pandas as pd

    d = pd.read_csv(Path(__file__).parent / "data" / "pbc_competing.csv")
    dead = (d["status"] == 2).astype(int).to_numpy()
    s, reaches = km_survival_at(d["time"].to_numpy(float), dead, 1825)
    assert reaches
    assert s == pytest.approx(0.71072798198747456, rel=1e-12)
    f = net_benefit_survival(
        d["time"], dead, {"a": d["risk_a"]}, horizon=1825, thresholds=[0.1, 0.2, 0.3, 0.5]
    ).to_frame()
    model = f[f["strategy"] == "a"]
    np.testing.assert_allclose(
        model["net_benefit"],
        [0.24517320046673313, 0.22778606795938533, 0.18895587631285574, 0.15259800295857986],
        rtol=1e-12,
    )
    assert list(model["n_treated"]) == [200, 132, 99, 66]
    np.testing.assert_allclose(
        f.loc[f["strategy"] == "treat all", "net_benefit"],
        [0.21030224223613939, 0.11159002251565681, -0.015325688553535111, -0.42145596397494911],
        rtol=1e-12,
    )
