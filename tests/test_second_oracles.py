"""Second, independent oracles: lifelines and pingouin, on the data of the R-oracle tests.

The first oracle of the survival and ICC code is R (``survival`` 3.5, ``psych``),
whose numbers are pasted into ``tests/test_survival_*.py`` and
``tests/test_icc.py``. Here the same data go through two Python libraries
written independently of R and of us, run live:

* lifelines (https://lifelines.readthedocs.io): ``KaplanMeierFitter``,
  ``statistics.logrank_test`` / ``multivariate_logrank_test``, ``CoxPHFitter``
  (Efron ties, its only method) and ``utils.concordance_index``;
* pingouin (https://pingouin-stats.org): ``intraclass_corr`` (all six forms).

Data
----
* ``tests/data/lung.csv`` (R's ``survival::lung``, ``status - 1``; Cox on the
  227 complete cases of ``age, sex, ph.ecog``) and ``tests/data/survival_ties.csv``
  (400 subjects, integer times with heavy ties, two zero times, three groups and
  strata), as in ``tests/test_survival_*.py``;
* the Shrout & Fleiss (1979) 6 x 4 matrix and the 12 x 3 random matrix of
  ``tests/test_icc.py`` (``SF``, ``RND``; copied here unchanged).

Agreement is required to ``REL`` = 1e-6 relative where the methods agree.

Documented differences (each is asserted, with the library's documentation cited)
---------------------------------------------------------------------------------
1. KM limits: lifelines' ``confidence_interval_`` "Uses Greenwood's Exponential
   formula ("log-log" in R)" (``KaplanMeierFitter`` docstring); ``survfit``'s and
   our default ``conf_type`` is ``"log"``. lifelines is compared with our
   ``conf_type="log-log"``; our default limits differ. Where the log-log limit is
   undefined (S = 1) lifelines fills 1.0 (``_bounds`` ends in ``fillna(1.0)``),
   R and we give NaN. lifelines exposes Greenwood's variance only through these
   limits, so the Greenwood SE is recovered from its upper limit.
2. KM median: lifelines' ``median_survival_time_`` is ``percentile(0.5)``, the
   first time the curve is at or below 0.5 (``utils.qth_survival_times``: "the
   first times the value was crossed"); ``print.survfit`` (and we) take the
   midpoint to the next drop when the curve sits exactly at 0.5.
3. Cox convergence: ``CoxPHFitter`` stops when the Newton step's norm is below
   ``precision`` = 1e-7 (``fit_options``, "step_size, precision, r_precision,
   max_steps"), earlier than R (relative log-likelihood change 1e-9) and we
   (1e-12); coefficients then agree only to ~1e-5. We pass
   ``fit_options={"precision": 1e-14}``. ``penalizer`` (default 0.0) is passed
   as 0.0 explicitly: the unpenalised partial likelihood, as ``coxph``.
4. Cox baseline: lifelines' model is :math:`h_0(t)\\exp((x - \\bar x)'\\beta)` and
   its ``baseline_cumulative_hazard_`` is "Estimated using Breslow's method"
   (``CoxPHFitter`` docstring) even for its Efron fit; ``basehaz(fit, centered =
   FALSE)`` (and ours) is at x = 0 and uses Efron's increments for an Efron fit.
   So lifelines times :math:`\\exp(-\\bar x'\\hat\\beta)` equals Breslow's
   :math:`\\sum d_j / \\sum_R e^{x'\\hat\\beta}` (computed here) and differs from
   ours exactly at tied event times.
5. Linear predictor: lifelines' ``predict_log_partial_hazard`` is centred,
   :math:`(x - \\bar x)'\\beta` ("equivalent to R's linear.predictors"); our
   ``predict_risk`` is :math:`x'\\beta`: they differ by the constant :math:`\\bar x'\\beta`.
6. Concordance direction: ``lifelines.utils.concordance_index`` takes a score
   where higher = longer survival ("multiply predictions with -1" for hazards);
   ours takes a risk, higher = worse. We pass ``-risk``.
7. pingouin ICC: the same ANOVA estimators, F tests and F-based limits (McGraw &
   Wong 1996) as ``psych::ICC(lmer = FALSE)`` and ours, but (a) the ``CI95``
   column is rounded to 2 decimals by default (``pingouin.options
   ["round.column.CI95"] = 2``; ``_postprocess_dataframe``: rounding "governed by
   options specified in pingouin.options"), so the limits are compared with that
   rounding switched off, and the default output equals ours rounded to 2
   decimals; (b) the level is fixed at 95% (no ``alpha`` argument), so only our
   ``alpha = 0.05`` limits are compared.

Not compared (no lifelines counterpart): the stratified log-rank test
(``multivariate_logrank_test`` has no strata), Breslow ties in Cox, Uno's C,
``cox.zph`` (lifelines' ``proportional_hazard_test`` is the pre-3.0 per-variable
test; see :class:`studyval.analysis.cox_zph.ZPHResult`).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from studyval.analysis.agreement import icc
from studyval.analysis.concordance import harrell_c
from studyval.analysis.cox import cox
from studyval.analysis.kaplan_meier import kaplan_meier, logrank

lifelines = pytest.importorskip("lifelines", reason="second oracle: pip install -e '.[test]'")
pingouin = pytest.importorskip("pingouin", reason="second oracle: pip install -e '.[test]'")
from lifelines.statistics import logrank_test, multivariate_logrank_test  # noqa: E402
from lifelines.utils import concordance_index  # noqa: E402

# lifelines and pingouin call pandas APIs that pandas 3 deprecates (positional
# arguments, inplace=), and lifelines' median warns that it reads the step function (which
# is exact for a Kaplan-Meier curve); that noise is theirs, not ours.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:lifelines"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pingouin"),
    pytest.mark.filterwarnings("ignore:Approximating using `survival_function_`"),
]

DATA = Path(__file__).parent / "data"
REL = 1e-6
Z95 = stats.norm.ppf(0.975)
COX_FIT_OPTIONS = {"precision": 1e-14}  # difference 3: tighter than lifelines' default 1e-7


def close(actual, expected, rel=REL, abs_=1e-12):
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=rel, atol=abs_
    )


@pytest.fixture(autouse=True)
def _restore_numpy_error_state():
    # lifelines' KaplanMeierFitter calls np.seterr(...) process-wide; undo it after each test
    with np.errstate():
        yield


@pytest.fixture(scope="module")
def lung() -> pd.DataFrame:
    d = pd.read_csv(DATA / "lung.csv")
    d["status"] = d["status"] - 1
    return d


@pytest.fixture(scope="module")
def lungcc(lung) -> pd.DataFrame:
    return lung.dropna(subset=["age", "sex", "ph.ecog"]).reset_index(drop=True)


@pytest.fixture(scope="module")
def ties() -> pd.DataFrame:
    return pd.read_csv(DATA / "survival_ties.csv")


# =========================================================================== #
# Kaplan-Meier (lifelines.KaplanMeierFitter)
# =========================================================================== #
@pytest.mark.parametrize(
    ("dataset", "group_col"),
    [pytest.param("lung", "sex", id="lung-by-sex"), pytest.param("ties", "group", id="ties")],
)
def test_km_survival_greenwood_se_and_loglog_limits_against_lifelines(request, dataset, group_col):
    d = request.getfixturevalue(dataset)
    for label, sub in d.groupby(group_col):
        ours = kaplan_meier(sub["time"], sub["status"], conf_type="log-log").to_frame()
        kmf = lifelines.KaplanMeierFitter().fit(sub["time"], sub["status"])
        # lifelines' timeline also has t = 0 (S = 1) when nobody has time 0: read it at our times
        surv = kmf.survival_function_.iloc[:, 0].reindex(ours["time"].to_numpy()).to_numpy()
        ci = kmf.confidence_interval_.reindex(ours["time"].to_numpy()).to_numpy()
        s = ours["survival"].to_numpy()
        close(surv, s)
        inside = (s > 0) & (s < 1)
        assert inside.sum() > 10, label
        # difference 1: lifelines' limits are R's "log-log" ...
        close(ci[inside, 0], ours["ci_low"].to_numpy()[inside])
        close(ci[inside, 1], ours["ci_high"].to_numpy()[inside])
        # ... from which its Greenwood SE follows: log(-log U) = log(-log S) + z sigma / log S
        sigma = (np.log(-np.log(ci[inside, 1])) - np.log(-np.log(s[inside]))) * np.log(s[inside])
        close(s[inside] * sigma / Z95, ours["se"].to_numpy()[inside])
        # ... and where log-log is undefined (S = 1) lifelines fills 1.0, R and we give NaN
        at_one = s == 1
        assert np.all(ci[at_one] == 1.0)
        assert ours.loc[at_one, ["ci_low", "ci_high"]].isna().all().all()


def test_km_default_log_limits_differ_from_lifelines(lung):
    # difference 1: survfit's default conf.type = "log" (ours too) is not lifelines' log-log
    ours = kaplan_meier(lung["time"], lung["status"]).to_frame()
    assert ours.shape[0] > 100
    ci = lifelines.KaplanMeierFitter().fit(lung["time"], lung["status"]).confidence_interval_
    ci = ci.reindex(ours["time"].to_numpy()).to_numpy()
    inside = (ours["survival"] > 0).to_numpy() & (ours["survival"] < 1).to_numpy()
    rel_gap = np.abs(ci[inside, 0] / ours["ci_low"].to_numpy()[inside] - 1)
    assert rel_gap.max() > 1e-2


def test_km_undefined_loglog_limit_at_s_one():
    # a censoring before the first event: S = 1 there (difference 1)
    ours = kaplan_meier([1, 2, 3, 4], [0, 1, 0, 1], conf_type="log-log").to_frame()
    ci = lifelines.KaplanMeierFitter().fit([1, 2, 3, 4], [0, 1, 0, 1]).confidence_interval_
    assert ours["survival"].iloc[0] == 1.0
    assert math.isnan(ours["ci_low"].iloc[0]) and math.isnan(ours["ci_high"].iloc[0])
    assert ci.loc[1.0].tolist() == [1.0, 1.0]


def test_km_median_against_lifelines(lung):
    for label, sub in [("all", lung), *lung.groupby("sex")]:
        kmf = lifelines.KaplanMeierFitter().fit(sub["time"], sub["status"])
        ours = kaplan_meier(sub["time"], sub["status"]).medians["median"].iloc[0]
        assert kmf.median_survival_time_ == ours, label
    # difference 2: at a curve sitting exactly at 0.5, R (print.survfit) and we take the
    # midpoint to the next drop (2.5), lifelines the first time S <= 0.5 (2)
    kmf = lifelines.KaplanMeierFitter().fit([1, 2, 3, 4], [1, 1, 1, 1])
    assert kmf.median_survival_time_ == 2.0
    assert kaplan_meier([1, 2, 3, 4], [1, 1, 1, 1]).median == 2.5


# =========================================================================== #
# Log-rank (lifelines.statistics)
# =========================================================================== #
def test_logrank_two_groups_against_lifelines(lung):
    a, b = lung[lung["sex"] == 1], lung[lung["sex"] == 2]
    theirs = logrank_test(a["time"], b["time"], a["status"], b["status"])
    ours = logrank(lung["time"], lung["status"], lung["sex"])
    close([ours.chisq, ours.p_value], [theirs.test_statistic, theirs.p_value])
    assert ours.df == theirs.degrees_of_freedom == 1


@pytest.mark.parametrize(
    ("dataset", "group_col"),
    [
        pytest.param("lung", "sex", id="lung-sex"),
        pytest.param("ties", "group", id="ties-3-groups"),
        pytest.param("lungcc", "ph.ecog", id="lung-ecog-4-groups"),
    ],
)
def test_logrank_k_groups_against_lifelines(request, dataset, group_col):
    d = request.getfixturevalue(dataset)
    theirs = multivariate_logrank_test(d["time"], d[group_col], d["status"])
    ours = logrank(d["time"], d["status"], d[group_col])
    close([ours.chisq, ours.p_value], [theirs.test_statistic, theirs.p_value])
    assert ours.df == theirs.degrees_of_freedom


# =========================================================================== #
# Cox, Efron ties (lifelines.CoxPHFitter)
# =========================================================================== #
COX_CASES = [
    pytest.param("lungcc", ["age", "sex", "ph.ecog"], None, id="lung"),
    pytest.param("ties", ["x1", "x2"], None, id="ties"),
    pytest.param("ties", ["x1", "x2"], "stratum", id="ties-strata"),
]


def _lifelines_cox(d, covs, strata):
    cols = ["time", "status", *covs] + ([strata] if strata else [])
    return lifelines.CoxPHFitter(penalizer=0.0).fit(
        d[cols],
        duration_col="time",
        event_col="status",
        strata=[strata] if strata else None,
        fit_options=COX_FIT_OPTIONS,
    )


@pytest.mark.parametrize(("dataset", "covs", "strata"), COX_CASES)
def test_cox_efron_against_lifelines(request, dataset, covs, strata):
    d = request.getfixturevalue(dataset)
    ours = cox(d, duration="time", event="status", covariates=covs, strata=strata)
    theirs = _lifelines_cox(d, covs, strata)
    assert list(theirs.params_.index) == covs
    close(ours.coef, theirs.params_.to_numpy())
    close(ours.summary["se"], theirs.standard_errors_.to_numpy())
    close(ours.variance, theirs.variance_matrix_.to_numpy())
    close(ours.loglik, theirs.log_likelihood_)
    lr = theirs.log_likelihood_ratio_test()
    close([ours.lr_chisq, ours.lr_p], [lr.test_statistic, lr.p_value])
    # Harrell's C of the linear predictor (within strata), as coxph reports it
    close(ours.concordance, theirs.concordance_index_)


def test_cox_default_lifelines_convergence_is_looser(lungcc):
    # difference 3: with lifelines' default fit_options the coefficients agree to ~1e-5 only
    covs = ["age", "sex", "ph.ecog"]
    ours = cox(lungcc, duration="time", event="status", covariates=covs)
    theirs = lifelines.CoxPHFitter().fit(lungcc[["time", "status", *covs]], "time", "status")
    gap = np.max(np.abs(theirs.params_.to_numpy() / ours.coef - 1))
    assert 0 < gap < 1e-4


@pytest.mark.parametrize(
    ("dataset", "covs"),
    [
        pytest.param("lungcc", ["age", "sex", "ph.ecog"], id="lung"),
        pytest.param("ties", ["x1", "x2"], id="ties"),
    ],
)
def test_cox_baseline_is_breslow_at_the_means_in_lifelines(request, dataset, covs):
    d = request.getfixturevalue(dataset)
    ours = cox(d, duration="time", event="status", covariates=covs)
    theirs = _lifelines_cox(d, covs, None)
    beta = ours.coef
    x = d[covs].to_numpy(float)
    t, e = d["time"].to_numpy(float), d["status"].to_numpy()
    # difference 4: lifelines' baseline is at the covariate means ...
    h_mean = theirs.baseline_cumulative_hazard_.iloc[:, 0]
    h0 = h_mean.to_numpy() * math.exp(-float(x.mean(axis=0) @ beta))
    # ... and Breslow's even for an Efron fit: sum over event times of d / sum_R exp(x'beta)
    w = np.exp(x @ beta)
    times = h_mean.index.to_numpy(float)
    d_j = np.array([e[t == u].sum() for u in times])
    r_j = np.array([w[t >= u].sum() for u in times])
    close(h0, np.cumsum(d_j / r_j))
    # ours is R's basehaz(centered = FALSE): Efron's increments; equal up to the first tie
    bh = ours.baseline_hazard.set_index("time")["cumhaz"].reindex(times).to_numpy()
    first_tie = int(np.flatnonzero(d_j > 1)[0])
    close(bh[:first_tie], h0[:first_tie])
    assert np.all(np.abs(bh[first_tie:] / h0[first_tie:] - 1) > 1e-6)


def test_cox_linear_predictor_is_centred_in_lifelines(lungcc):
    covs = ["age", "sex", "ph.ecog"]
    ours = cox(lungcc, duration="time", event="status", covariates=covs)
    theirs = _lifelines_cox(lungcc, covs, None)
    # difference 5: lifelines' (x - mean)'beta; ours x'beta
    shift = float(lungcc[covs].mean().to_numpy() @ ours.coef)
    close(
        theirs.predict_log_partial_hazard(lungcc[covs]).to_numpy(),
        ours.predict_risk(lungcc) - shift,
        abs_=1e-9,
    )


# =========================================================================== #
# Harrell's C (lifelines.utils.concordance_index)
# =========================================================================== #
@pytest.mark.parametrize(
    ("dataset", "risk"),
    [
        pytest.param("lung", "age", id="lung-age"),
        pytest.param("lung", "ph.karno", id="lung-karno-heavy-risk-ties"),
        pytest.param("ties", "score", id="ties-score"),
    ],
)
def test_harrell_c_against_lifelines(request, dataset, risk):
    d = request.getfixturevalue(dataset)
    d = d[d[risk].notna()]
    ours = harrell_c(d["time"], d["status"], d[risk])
    # difference 6: lifelines wants higher = longer survival; our risk is higher = worse
    theirs = concordance_index(d["time"], -d[risk], d["status"])
    close(ours.estimate, theirs)
    assert concordance_index(d["time"], d[risk], d["status"]) == pytest.approx(
        1 - ours.estimate, rel=REL
    )


# =========================================================================== #
# ICC (pingouin.intraclass_corr)
# =========================================================================== #
# The matrices of tests/test_icc.py (psych::ICC oracle there).
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
RND = np.array([
    [49.6, 48.0, 44.5], [41.4, 46.0, 45.8], [53.8, 54.4, 50.3], [33.1, 38.8, 32.2],
    [53.0, 54.2, 53.8], [48.0, 54.0, 45.2], [46.5, 47.4, 48.3], [44.9, 55.9, 46.7],
    [31.8, 36.8, 28.9], [45.1, 49.7, 46.8], [38.4, 44.0, 42.7], [52.9, 53.8, 52.3],
])  # fmt: skip
# ours -> pingouin's Type (0.6+: McGraw & Wong names; 0.5: Shrout & Fleiss names)
ICC_TYPES = {
    "ICC1": ("ICC(1,1)", "ICC1"),
    "ICC2": ("ICC(A,1)", "ICC2"),
    "ICC3": ("ICC(C,1)", "ICC3"),
    "ICC1k": ("ICC(1,k)", "ICC1k"),
    "ICC2k": ("ICC(A,k)", "ICC2k"),
    "ICC3k": ("ICC(C,k)", "ICC3k"),
}


def _long(y: np.ndarray) -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame(
        [(f"S{i + 1}", f"J{j + 1}", y[i, j]) for i in range(n) for j in range(k)],
        columns=["target", "rater", "rating"],
    )


@contextlib.contextmanager
def _pingouin_unrounded():
    """Switch off pingouin's rounding of the CI column (``CI95`` in 0.6+, ``CI95%`` before)."""
    keys = [k for k in pingouin.options if k.startswith("round.column.CI95")]
    old = {k: pingouin.options[k] for k in keys}
    try:
        for k in keys:
            pingouin.options[k] = None
        yield
    finally:
        pingouin.options.update(old)


def _pingouin_icc(y: np.ndarray, *, unrounded: bool) -> pd.DataFrame:
    with _pingouin_unrounded() if unrounded else contextlib.nullcontext():
        p = pingouin.intraclass_corr(_long(y), targets="target", raters="rater", ratings="rating")
    ci_col = next(c for c in p.columns if c.startswith("CI95"))
    ci = np.vstack(p[ci_col].to_numpy())
    return p.assign(ci_low=ci[:, 0], ci_high=ci[:, 1])


def _ours(y: np.ndarray) -> pd.DataFrame:
    return icc(_long(y), targets="target", raters="rater", ratings="rating").to_frame()


@pytest.mark.parametrize(
    "y", [pytest.param(SF, id="shrout-fleiss-1979"), pytest.param(RND, id="random-12x3")]
)
def test_icc_all_six_forms_against_pingouin(y):
    ours = _ours(y)
    theirs = _pingouin_icc(y, unrounded=True)  # difference 7a: limits compared unrounded
    assert list(ours["type"]) == list(ICC_TYPES)
    assert all(t in ICC_TYPES[o] for o, t in zip(ours["type"], theirs["Type"], strict=True))
    assert np.allclose(ours["ci_level"], 0.95)  # difference 7b: pingouin's level is fixed
    close(ours["icc"], theirs["ICC"])
    close(ours["f"], theirs["F"])
    close(ours["df1"], theirs["df1"])
    close(ours["df2"], theirs["df2"])
    close(ours["p_value"], theirs["pval"], abs_=0)
    close(ours["ci_low"], theirs["ci_low"])
    close(ours["ci_high"], theirs["ci_high"])


def test_icc_pingouin_rounds_its_limits_by_default():
    # difference 7a: pingouin.options["round.column.CI95"] = 2 out of the box
    assert [v for k, v in pingouin.options.items() if k.startswith("round.column.CI95")] == [2]
    ours = _ours(RND)
    theirs = _pingouin_icc(RND, unrounded=False)
    close(theirs["ci_low"], np.round(ours["ci_low"].to_numpy(), 2))
    close(theirs["ci_high"], np.round(ours["ci_high"].to_numpy(), 2))
    assert not np.allclose(theirs["ci_low"], ours["ci_low"], rtol=REL, atol=0)
