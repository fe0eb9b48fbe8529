"""Tests for studyval.analysis.competing_risks_brier: the Brier score of a predicted cumulative incidence.

Oracles
-------
* riskRegression 2022.11.28 (prodlim 2019.11.13): ``Score(..., metrics =
  "brier", null.model = TRUE, se.fit = TRUE, summary = "ipa")``, whose
  censoring model for ``~ 1`` is the Kaplan-Meier (``cens.model = "km"``), on
  ``predictRisk`` of ``CSC`` fits for the cause-specific Cox predictions.
  Values printed with ``sprintf("%.17g")``.

Data (``tests/data``)
---------------------
``pbc_competing.csv`` (``survival::pbc``: 1 = transplant, 2 = death) and
``competing_ties.csv`` (simulated, three causes, tied times), described in
``tests/test_cumulative_incidence.py``. In R: ``d <- read.csv("pbc_competing.csv")``,
``e <- read.csv("competing_ties.csv")``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.cause_specific_cox import cause_specific_cox, predict_cumulative_incidence
from studyval.analysis.competing_risks_brier import CompetingRisksBrierResult, brier_competing
from studyval.analysis.cumulative_incidence import cumulative_incidence
from studyval.analysis.survival import CoxResult
from studyval.analysis.survival_validation import brier
from studyval.errors import EstimationError, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    d = pd.read_csv(DATA / "pbc_competing.csv")
    d["lbili"] = np.log(d["bili"])
    return d


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "competing_ties.csv")


def _csc(df: pd.DataFrame, covs: list[str], causes: tuple[int, ...]) -> dict[int, CoxResult]:
    return {
        k: cause_specific_cox(df, duration="time", event="status", cause=k, covariates=covs)
        for k in causes
    }


# --------------------------------------------------------------------------- #
# Brier score of a predicted cumulative incidence
# --------------------------------------------------------------------------- #
# Score(list(m = p), formula = Hist(time, status) ~ 1, data = <data>, times = <tau>, cause = k,
#       metrics = "brier", null.model = TRUE, se.fit = TRUE, summary = "ipa")$Brier$score
# -> per model: Brier, se, lower, upper, IPA ("Null model" first)
BRIER = {
    # d, p = d$risk_b, times = 1826 (5 years)
    ("pbc", 1): ([0.042115333796683252, 0.010940552976650813, 0.020672243991495181,
                  0.063558423601871319],
                 [0.16682760044490186, 0.015233852346095708, 0.13696979850075328,
                  0.19668540238905044, -2.9612080780430663]),
    ("pbc", 2): ([0.20323009515060564, 0.011379219764301672, 0.18092723424040802,
                  0.22553295606080326],
                 [0.11347123077062594, 0.011334021666295824, 0.091256956504689485,
                  0.1356855050365624, 0.44166128207273148]),
    # e, p = e$risk, times = 5: 7 censorings and 8 events are tied at the horizon
    ("ties", 1): ([0.17899407055303934, 0.018741306179300414, 0.14226178541837259,
                   0.2157263556877061],
                  [0.15126601920135041, 0.013501504574155025, 0.12480355649890376,
                   0.17772848190379706, 0.15491044628471418]),
    ("ties", 2): ([0.1629779566663461, 0.019747904280522019, 0.12427277550637858,
                   0.20168313782631361],
                  [0.22963681626839688, 0.018975197719882729, 0.19244611213790019,
                   0.26682752039889357, -0.40900537082150956]),
    ("ties", 3): ([0.076033957443978242, 0.019213838898934799, 0.038375525197311321,
                   0.11369238969064516],
                  [0.15712675665980902, 0.013673697837906205, 0.13032680136202965,
                   0.18392671195758839, -1.0665339795785309]),
}  # fmt: skip
BRIER_COUNTS = {  # events of the cause, competing events, censored by tau, event-free after tau
    ("pbc", 1): (13, 85, 55, 159),
    ("pbc", 2): (85, 13, 55, 159),
    ("ties", 1): (34, 42, 18, 56),  # sum(e$time <= 5 & e$status == 1), ...
    ("ties", 2): (30, 46, 18, 56),
    ("ties", 3): (12, 64, 18, 56),
}


@pytest.mark.parametrize(("data", "cause"), list(BRIER), ids=lambda v: str(v))
def test_brier_competing_against_score(pbc, ties, data, cause):
    df, p, tau = (pbc, "risk_b", 1826) if data == "pbc" else (ties, "risk", 5)
    r = brier_competing(df["time"], df["status"], df[p], cause=cause, horizon=tau)
    assert isinstance(r, CompetingRisksBrierResult)
    null, model = BRIER[data, cause]
    assert [r.null_estimate, r.null_se, r.null_ci_low, r.null_ci_high] == pytest.approx(
        null, rel=REL
    )
    assert [r.estimate, r.se, r.ci_low, r.ci_high, r.ipa] == pytest.approx(model, rel=REL)
    assert (r.n_events, r.n_competing, r.n_censored_before_horizon, r.n_event_free) == (
        BRIER_COUNTS[data, cause]
    )
    assert r.n == len(df) and r.cause == cause and r.horizon == tau
    aj = cumulative_incidence(df["time"], df["status"], cause=cause, times=[tau]).to_frame()
    assert r.null_risk == aj["estimate"].iloc[0]
    est, lo, hi = r
    assert (est, lo, hi) == (r.estimate, r.ci_low, r.ci_high)


def test_brier_competing_conservative_against_score(ties):
    # Score(..., times = 5, cause = 1, ..., conservative = TRUE)
    r = brier_competing(
        ties["time"], ties["status"], ties["risk"], cause=1, horizon=5, conservative=True
    )
    assert [r.null_se, r.se] == pytest.approx([0.019019421200657659, 0.013998739724853368], rel=REL)
    assert r.estimate == pytest.approx(0.15126601920135041, rel=REL) and r.conservative


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        # fit <- CSC(Hist(time, status) ~ lbili + age + edema, data = d)
        # p <- predictRisk(fit, newdata = d, times = 1826, cause = k, product.limit = TRUE)
        # Score(list(csc = as.numeric(p)), ..., times = 1826, cause = k, ...); Score(list(csc =
        # fit), ...) gives the same numbers (Score calls predictRisk with product.limit = TRUE)
        pytest.param(1, [0.041477579327932834, 0.010020851654401962, 0.015143046754164446],
                     id="transplant"),
        pytest.param(2, [0.11006695405111387, 0.011298772760501775, 0.45841213148304794],
                     id="death"),
    ],
)  # fmt: skip
def test_brier_of_cause_specific_cox_prediction_against_score(pbc, cause, expected):
    fits = _csc(pbc, ["lbili", "age", "edema"], (1, 2))
    p = predict_cumulative_incidence(fits, pbc, cause=cause, times=[1826], product_limit=True)
    r = brier_competing(pbc["time"], pbc["status"], p.risk[:, 0], cause=cause, horizon=1826)
    # the predictions agree with predictRisk to ~1e-9 (coxph's tolerance)
    assert [r.estimate, r.se, r.ipa] == pytest.approx(expected, rel=1e-7)


def test_brier_competing_without_competing_events_is_the_ipcw_brier():
    rng = np.random.default_rng(1)
    t = rng.exponential(1.0, 300)
    c = rng.exponential(1.5, 300)
    time, code = np.minimum(t, c), (t <= c).astype(int)
    risk = rng.uniform(0.1, 0.9, 300)
    ours = brier_competing(time, code, risk, cause=1, horizon=0.8)
    ref = brier(time, code, risk, horizon=0.8)
    for name in ("estimate", "se", "ci_low", "ci_high", "null_estimate", "null_se", "null_risk",
                 "ipa"):  # fmt: skip
        assert getattr(ours, name) == pytest.approx(getattr(ref, name), rel=1e-12)
    assert ours.n_competing == 0 and ours.n_events == ref.n_events


def test_brier_competing_to_frame_is_one_row(ties):
    r = brier_competing(ties["time"], ties["status"], ties["risk"], cause=2, horizon=5)
    frame = r.to_frame()
    assert len(frame) == 1
    assert {"estimate", "null_estimate", "ipa", "n_events", "n_competing",
            "n_censored_before_horizon", "method"} <= set(frame.columns)  # fmt: skip


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        pytest.param({"risk": 1.02}, StudyvalError,
                     r"predicted_risk must be a predicted risk in \[0, 1\]", id="risk-above-1"),
        pytest.param({"horizon": 21}, EstimationError, r"at or beyond the last follow-up",
                     id="horizon-at-end"),
        pytest.param({"horizon": 0}, StudyvalError, r"horizon must be finite and > 0",
                     id="horizon-0"),
        pytest.param({"cause": 4, "causes": (1, 2, 3, 4)}, EstimationError,
                     r"no event of cause 4 at or before horizon", id="no-cases"),
        pytest.param({"cause": 4, "causes": (1, 2, 3)}, StudyvalError, r"cause=4 is not among",
                     id="undeclared-cause"),
        pytest.param({"causes": (1, 2)}, StudyvalError, r"outside the declared set",
                     id="undeclared-code"),
        pytest.param({"alpha": 1.5}, StudyvalError, r"alpha must be in", id="alpha"),
    ],
)  # fmt: skip
def test_brier_competing_errors(ties, kwargs, exc, match):
    kwargs = {"cause": 1, "horizon": 5, **kwargs}
    risk = ties["risk"].to_numpy().copy()
    if "risk" in kwargs:
        risk[3] = kwargs.pop("risk")
    with pytest.raises(exc, match=match):
        brier_competing(ties["time"], ties["status"], risk, **kwargs)
