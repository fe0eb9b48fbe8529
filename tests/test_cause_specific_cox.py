"""Tests for studyval.analysis.cause_specific_cox: cause-specific Cox models and their predictions.

Oracles
-------
* R 4.2.2 with survival 3.5-3 (``coxph(Surv(time, status == k) ~ ...)``);
  values printed with ``options(digits = 17)``, the exact call beside each
  expected value.
* riskRegression 2022.11.28 (prodlim 2019.11.13): ``predictRisk`` of a ``CSC``
  fit (both ``product.limit`` values; the default of ``predictRisk`` and
  ``predict`` for ``CSC`` is ``TRUE``, ``CSC``'s default ``surv.type`` is
  ``"hazard"``). Values printed with ``sprintf("%.17g")``.

Data (``tests/data``)
---------------------
``pbc_competing.csv`` (``survival::pbc``: 1 = transplant, 2 = death) and
``competing_ties.csv`` (simulated, three causes, tied times), described in
``tests/test_cumulative_incidence.py``. In R: ``d <- read.csv("pbc_competing.csv")``,
``e <- read.csv("competing_ties.csv")``.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.cause_specific_cox import (
    PredictedCumulativeIncidence,
    cause_specific_cox,
    predict_cumulative_incidence,
)
from studyval.analysis.survival import CoxResult
from studyval.errors import StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def pbc() -> pd.DataFrame:
    d = pd.read_csv(DATA / "pbc_competing.csv")
    d["lbili"] = np.log(d["bili"])
    return d


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "competing_ties.csv")


# --------------------------------------------------------------------------- #
# Cause-specific Cox
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    ("data", "cause", "covs", "coef", "se"),
    [
        # coxph(Surv(time, status == 1) ~ age + log(bili) + albumin, data = d)
        pytest.param(
            "pbc",
            1,
            ["age", "lbili", "albumin"],
            [-0.086996543234870743, 0.774106290843249445, -0.421727075058607515],
            [0.027781271323686341, 0.258335985467031626, 0.668274130535811750],
            id="pbc-transplant",
        ),
        # coxph(Surv(time, status == 3) ~ x1 + x2, data = e)
        pytest.param(
            "ties",
            3,
            ["x1", "x2"],
            [0.219693040688879210, 0.097989109712251332],
            [0.26270905479883461, 0.48673405813868503],
            id="ties-cause3",
        ),
    ],
)
def test_cause_specific_cox_against_coxph(pbc, ties, data, cause, covs, coef, se):
    df = pbc if data == "pbc" else ties
    r = cause_specific_cox(df, duration="time", event="status", cause=cause, covariates=covs)
    assert isinstance(r, CoxResult)
    assert r.coef.tolist() == pytest.approx(coef, rel=1e-8)
    assert r.summary["se"].tolist() == pytest.approx(se, rel=1e-8)
    assert r.event == f"status == {cause}"


# --------------------------------------------------------------------------- #
# Predicted cumulative incidence from cause-specific Cox models
# --------------------------------------------------------------------------- #
def _csc(df: pd.DataFrame, covs: list[str], causes: tuple[int, ...]) -> dict[int, CoxResult]:
    return {
        k: cause_specific_cox(df, duration="time", event="status", cause=k, covariates=covs)
        for k in causes
    }


# R (riskRegression 2022.11.28):
#   fit <- CSC(Hist(time, status) ~ lbili + age + edema, data = d)
#   p <- predictRisk(fit, newdata = d[c(1, 2, 3, 10, 50, 100), ], times = c(1000, 3000),
#                    cause = k, product.limit = pl); sprintf("%.17g", t(p))
#   fe <- CSC(Hist(time, status) ~ x1 + x2, data = e)
#   p <- predictRisk(fe, newdata = e[1:5, ], times = c(5, 12), cause = k, product.limit = pl)
# (row-major: subject 1 at both times, then subject 2, ...)
CSC_PBC = {
    (1, False): [0.0027237924582878036, 0.0029002082596686313, 0.0044855164932933777,
                 0.023162712053734109, 0.0013545070060018, 0.0049357051711987586,
                 0.00043317812359441329, 0.00044381838506856477, 0.0057587959774675294,
                 0.030036515287836893, 0.01197023274591303, 0.055983036914122319],
    (1, True): [0.0025386119846595025, 0.0026781413591176308, 0.004485391290468781,
                0.023156044944282941, 0.0013538373493267183, 0.0049154921822691612,
                0.00038186996657819705, 0.00038900056994222853, 0.0057586643287757151,
                0.030029375208406185, 0.01196922898354171, 0.055936898997897423],
    # above 1 for two subjects: predictRisk warns "Estimated risk outside the range [0,1]"
    (2, False): [1.0080445701740832, 1.0294169869197409, 0.068711903899403612,
                 0.29784911016127452, 0.26349382346399702, 0.78870690182707559,
                 1.0353637987547737, 1.040591317879958, 0.061545044817031838,
                 0.26966779691018067, 0.11366638247724853, 0.44219472997039116],
    (2, True): [0.98048105590845636, 0.99732185861596967, 0.068710377430300701,
                0.29775362234198494, 0.26339423053135635, 0.78541881701039096,
                0.99614920837401277, 0.99961099943005682, 0.061543918670098251,
                0.26959597950450215, 0.11365881147931958, 0.44179559425538328],
}  # fmt: skip
CSC_TIES = {
    (1, False): [0.019400403851182413, 0.056048200423780711, 0.68154875140440441,
                 0.95294151105221181, 0.042535628115519468, 0.12952599744924698,
                 0.1243522950359133, 0.32761817405435184, 0.15786127134740685,
                 0.41531940980763615],
    (1, True): [0.019110339051537337, 0.053818954800025791, 0.63509370216940231,
                0.79223575687938963, 0.042124439739876542, 0.12580631022675581,
                0.12262250735557736, 0.31186709871585117, 0.15593794272068814,
                0.39604969019842035],
    (2, False): [0.36994634434357843, 0.59329522131271062, 0.10145234282618826,
                 0.11395165935165925, 0.2722291825695089, 0.45114888258219477,
                 0.24012888509160479, 0.36568812286998797, 0.19448823868193418,
                 0.29613739475483525],
    (2, True): [0.3654066857245335, 0.57713621826726935, 0.095835527589873265,
                0.10299732552375625, 0.27007015686706454, 0.4422910813427523,
                0.23739506406322669, 0.35440932805166153, 0.19255451819982522,
                0.28744072369997548],
    (3, False): [0.060814198729805438, 0.11076830725319457, 0.090407758150352749,
                 0.11963367136860176, 0.064400072980969642, 0.12081357539332552,
                 0.088864096776624574, 0.15852524041052046, 0.082378794160970464,
                 0.14766036561578125],
    (3, True): [0.059987216797772733, 0.10806713149824401, 0.085098829040307883,
                0.10467023474137782, 0.063828481038530768, 0.11882703542561013,
                0.087736282090743217, 0.1545019038230403, 0.081458164436303201,
                0.14421432407114113],
}  # fmt: skip


@pytest.mark.parametrize(("cause", "product_limit"), list(CSC_PBC), ids=lambda v: str(v))
def test_predicted_cif_pbc_against_predictrisk(pbc, cause, product_limit):
    fits = _csc(pbc, ["lbili", "age", "edema"], (1, 2))
    above_one = max(CSC_PBC[cause, product_limit]) > 1
    with (
        pytest.warns(
            StatisticalWarning, match=r"above 1 for 2 of 6 subject\(s\) \(largest 1.04059\)"
        )
        if above_one
        else contextlib.nullcontext()
    ):
        r = predict_cumulative_incidence(
            fits,
            pbc.iloc[[0, 1, 2, 9, 49, 99]],
            cause=cause,
            times=[1000, 3000],
            product_limit=product_limit,
        )
    assert isinstance(r, PredictedCumulativeIncidence)
    assert r.risk.shape == (6, 2)
    # coxph stops at its own tolerance: coefficients, hence risks, agree to ~1e-9
    assert r.risk.reshape(-1).tolist() == pytest.approx(CSC_PBC[cause, product_limit], rel=1e-8)


@pytest.mark.parametrize(("cause", "product_limit"), list(CSC_TIES), ids=lambda v: str(v))
def test_predicted_cif_tied_times_three_causes_against_predictrisk(ties, cause, product_limit):
    # whole-day times: Efron baseline hazards of all three causes, tied events and censorings
    fits = _csc(ties, ["x1", "x2"], (1, 2, 3))
    r = predict_cumulative_incidence(
        fits, ties.iloc[:5], cause=cause, times=[5, 12], product_limit=product_limit
    )
    assert r.risk.reshape(-1).tolist() == pytest.approx(CSC_TIES[cause, product_limit], rel=1e-8)


def test_predicted_cif_runner_formula_against_predictrisk(pbc):
    # The cirrhosis-sarcopenia runner's call (tests/test_protocol_cirrhosis_sarcopenia.py):
    #   fit <- CSC(Hist(time, status) ~ lbili + age, data = d, cause = 1)
    #   predictRisk(fit, newdata = d[c(1, 2, 3, 10, 50), ], times = 1826, cause = k,
    #               product.limit = FALSE)
    fits = _csc(pbc, ["lbili", "age"], (1, 2))
    rows = pbc.iloc[[0, 1, 2, 9, 49]]
    expected = {
        1: [0.0176673836925, 0.0119204559179, 0.00408941498666, 0.00383335695385, 0.0154043439006],
        2: [0.965120931498, 0.171215612957, 0.338701190829, 1.00579789225, 0.154158121472],
    }
    for k, values in expected.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StatisticalWarning)  # 1.0058 for cause 2
            r = predict_cumulative_incidence(fits, rows, cause=k, times=1826.0, product_limit=False)
        assert r.risk[:, 0].tolist() == pytest.approx(values, rel=1e-8)


def test_predicted_cif_product_limit_sums_to_one_minus_event_free_survival(ties):
    # product limit: sum_k F_k(t) + S(t) = 1 with S(t) = prod_{s <= t} (1 - sum_l dLambda_l(s))
    fits = _csc(ties, ["x1", "x2"], (1, 2, 3))
    nd = ties.iloc[:20]
    times = [1, 5, 12, 20]
    total = sum(
        predict_cumulative_incidence(fits, nd, cause=k, times=times, product_limit=True).risk
        for k in (1, 2, 3)
    )
    grid = np.unique(ties["time"])
    d_total = np.zeros((len(nd), grid.size))
    for fit in fits.values():
        h0 = np.interp(grid, fit.baseline_hazard["time"], fit.baseline_hazard["cumhaz"])
        d_total += np.exp(fit.predict_risk(nd))[:, None] * np.diff(h0, prepend=0.0)[None, :]
    surv = np.cumprod(1.0 - d_total, axis=1)[:, np.searchsorted(grid, times, side="right") - 1]
    assert total + surv == pytest.approx(np.ones_like(surv), abs=1e-13)
    assert (total <= 1.0 + 1e-13).all()


def test_predicted_cif_times_before_first_event_and_at_last_follow_up(pbc):
    fits = _csc(pbc, ["lbili", "age", "edema"], (1, 2))
    last = float(pbc["time"].max())
    r = predict_cumulative_incidence(
        fits, pbc.iloc[:2], cause=1, times=[0.0, 1.0, last], product_limit=False
    )
    assert r.risk[:, :2].tolist() == [[0.0, 0.0], [0.0, 0.0]]
    # predictRisk(fit, newdata = d[1:2, ], times = max(d$time), cause = 1, product.limit = FALSE)
    assert r.risk[:, 2].tolist() == pytest.approx(
        [0.0029002082790854427, 0.0273449243369765158], rel=1e-8
    )
    assert r.times == (0.0, 1.0, last) and r.causes == (1, 2) and r.n == 2
    frame = r.to_frame()
    assert list(frame.columns) == ["row", "time", "cause", "cumulative_incidence", "product_limit"]
    assert frame["cumulative_incidence"].tolist() == r.risk.reshape(-1).tolist()
    assert not r.risk.flags.writeable


def test_predicted_cif_is_independent_of_newdata_order(ties):
    fits = _csc(ties, ["x1", "x2"], (1, 2, 3))
    a = predict_cumulative_incidence(fits, ties, cause=2, times=[3, 9], product_limit=True)
    order = np.random.default_rng(4).permutation(len(ties))
    b = predict_cumulative_incidence(
        fits, ties.iloc[order], cause=2, times=[3, 9], product_limit=True
    )
    assert b.risk == pytest.approx(a.risk[order], rel=1e-14)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        pytest.param(lambda f, d: ([f[1], f[2]], {}), r"models must be a non-empty dict", id="list"),
        pytest.param(lambda f, d: ({}, {}), r"models must be a non-empty dict", id="empty"),
        pytest.param(
            lambda f, d: ({1: f[2], 2: f[1]}, {}),
            r"models\[1\] was fitted for event 'status == 2', i.e. cause 2",
            id="swapped-keys",
        ),
        pytest.param(
            lambda f, d: ({2: f[2]}, {}), r"cause=1 has no model; models are given for causes 2",
            id="no-model-for-cause",
        ),
        pytest.param(
            lambda f, d: ({1: f[1], 2: "fit"}, {}), r"models\[2\] must be a fitted Cox model",
            id="not-a-fit",
        ),
        pytest.param(
            lambda f, d: (
                {
                    1: f[1],
                    2: cause_specific_cox(
                        d.iloc[:200], duration="time", event="status", cause=2, covariates=["x1"]
                    ),
                },
                {},
            ),
            r"fitted on different data \(subjects: cause 1: 312, cause 2: 200\)",
            id="different-data",
        ),
        pytest.param(
            lambda f, d: (
                {
                    1: f[1],
                    2: cause_specific_cox(
                        d, duration="time", event="status", cause=2, covariates=["x1"],
                        strata="trt",
                    ),
                },
                {},
            ),
            r"models\[2\] is stratified by trt",
            id="stratified",
        ),
        pytest.param(lambda f, d: (f, {"times": [5000]}), r"times: 5000 is after the last", id="beyond"),
        pytest.param(lambda f, d: (f, {"times": [3, 2]}), r"strictly increasing", id="order"),
        pytest.param(lambda f, d: (f, {"product_limit": 1}), r"product_limit must be True or False",
                     id="product-limit-int"),
        pytest.param(lambda f, d: (f, {"cause": 0}), r"cause must be a positive", id="cause-0"),
    ],
)  # fmt: skip
def test_predicted_cif_errors(pbc, change, match):
    d = pbc.assign(x1=pbc["lbili"])
    fits = _csc(d, ["x1"], (1, 2))
    models, kwargs = change(fits, d)
    kwargs = {"cause": 1, "times": [1000], "product_limit": False, **kwargs}
    with pytest.raises(StudyvalError, match=match):
        predict_cumulative_incidence(models, d.iloc[:3], **kwargs)
    with pytest.raises(StudyvalError, match=r"newdata must be a pandas DataFrame"):
        predict_cumulative_incidence(fits, d.to_numpy(), cause=1, times=[1], product_limit=True)
    with pytest.raises(StudyvalError, match=r"covariate column 'x1' is not in the data"):
        predict_cumulative_incidence(
            fits, d.drop(columns="x1"), cause=1, times=[1], product_limit=True
        )
