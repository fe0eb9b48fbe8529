"""Tests for studyval.analysis.cox: Cox regression (Efron, Breslow, strata) and its predictions.

Oracles
-------
* R 4.2.2 with survival 3.5-3: ``coxph`` (coefficients, ``vcov``, ``loglik``, the three
  global tests, ``concordance``) and ``basehaz(centered = FALSE)``. Scalars are
  pasted beside the R call that produced them, printed with
  ``sprintf("%.17g", ...)``. R is a development oracle only; nothing here runs R.
* A second, independent oracle (lifelines ``CoxPHFitter``) is in
  ``tests/test_second_oracles.py``.

Data
----
* ``tests/data/lung.csv``: R's ``survival::lung`` (public domain), exported with
  ``write.csv(survival::lung, "lung.csv", row.names = FALSE)``; ``status`` is
  1 = censored, 2 = dead, so the tests use ``status - 1``. Cox fits use the 227
  complete cases of ``age, sex, ph.ecog`` (``na.omit``, as R does).
* ``tests/data/survival_ties.csv``: 400 synthetic subjects (numpy seed
  20261123) with integer times (36 distinct; heavy ties), two zero follow-up
  times, three strata, three groups and a rounded risk score. Columns: time,
  status (0/1), x1, x2, group, stratum, score.

Deliberate deviations from R (documented in the module): R merges
floating-point near-tied times (``aeqSurv``), we compare exactly (integer times
here); ``predict_risk`` is the uncentred linear predictor (R centres it).

Cox fits converge to 1e-12 here while R stops at its default 1e-9, so
Cox-based numbers are compared to ``REL_FIT`` = 1e-6 relative.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.cox import CoxResult, cox, nested_cox_test
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"
REL = 1e-9  # exact algorithms: R agreement is to rounding
REL_FIT = 1e-6  # iterative fits (R stops at eps = 1e-9 on the log-likelihood)


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


def close(actual, expected, rel=REL, abs_=1e-12):
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=rel, atol=abs_
    )


# =========================================================================== #
# Cox regression
# =========================================================================== #
COX_LUNG = [
    # lungcc <- na.omit(lung[, c("time", "status", "age", "sex", "ph.ecog")])
    # f <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lungcc, ties = tt)
    # coef(f); sqrt(diag(vcov(f))); f$loglik; c(2 * diff(f$loglik), f$wald.test, f$score)
    # f$concordance[c("concordance", "std")]
    pytest.param(
        "efron",
        [0.011066764560073482, -0.55261239570363097, 0.46372847537042766],
        [0.0092674110137005283, 0.1677390537872635, 0.11357726616199662],
        [-744.48045576144023, -729.23012137486194],
        [30.500668773156576, 29.929251209204654, 30.499922704949103],
        [0.63713549300045491, 0.02506797385307958],
        id="lung-efron",
    ),
    pytest.param(
        "breslow",
        [0.011041136349488499, -0.55188956978759729, 0.46294704059016395],
        [0.0092667701135355496, 0.16774244802101848, 0.11357405206130104],
        [-744.69281926616088, -729.48870517677403],
        [30.408228178773697, 29.839000839660855, 30.406406915329907],
        [0.63713549300045491, 0.02506797385307958],
        id="lung-breslow",
    ),
]


def _check_cox(r: CoxResult, coef, se, loglik, tests, conc):
    close(r.coef, coef, rel=REL_FIT)
    close(r.summary.se, se, rel=REL_FIT)
    close([r.loglik_null, r.loglik], loglik, rel=REL_FIT)
    close([r.lr_chisq, r.wald_chisq, r.score_chisq], tests, rel=REL_FIT)
    close([r.concordance, r.concordance_se], conc, rel=REL_FIT)
    assert r.converged


@pytest.mark.parametrize(("ties_", "coef", "se", "loglik", "tests", "conc"), COX_LUNG)
def test_cox_against_coxph_lung(lungcc, ties_, coef, se, loglik, tests, conc):
    r = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    _check_cox(r, coef, se, loglik, tests, conc)
    assert (r.n, r.n_events) == (227, 164)
    s = r.summary
    assert s.term.tolist() == ["age", "sex", "ph.ecog"]
    close(s.hr, np.exp(coef), rel=REL_FIT)
    z = 1.959963984540054
    close(s.ci_low, np.exp(np.array(coef) - z * np.array(se)), rel=REL_FIT)
    close(s.z, np.array(coef) / np.array(se), rel=REL_FIT)
    assert r.lr_df == r.wald_df == r.score_df == 3


@pytest.mark.parametrize(
    ("ties_", "times", "cumhaz"),
    [
        # b <- basehaz(f, centered = FALSE); b[c(1, 2, 50, 100, nrow(b)), ]   (f as in COX_LUNG)
        pytest.param(
            "efron",
            [5, 11, 183, 291, 1022],
            [
                0.0027628150737671994,
                0.011118182538997462,
                0.22972388526218432,
                0.4203096281249179,
                2.0776278804164319,
            ],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [5, 11, 183, 291, 1022],
            [
                0.0027674348818464106,
                0.011085385781228019,
                0.22960877685886605,
                0.42030805198158366,
                2.0785843171506539,
            ],
            id="breslow",
        ),
    ],
)
def test_cox_baseline_hazard_against_basehaz(lungcc, ties_, times, cumhaz):
    r = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    bh = r.baseline_hazard
    assert bh.shape[0] == lungcc.time.nunique()  # one row per distinct time, as basehaz
    idx = [0, 1, 49, 99, bh.shape[0] - 1]
    close(bh.time.to_numpy()[idx], times)
    close(bh.cumhaz.to_numpy()[idx], cumhaz, rel=REL_FIT)


def test_cox_stratified_against_coxph_lung(lungcc):
    # f <- coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lungcc)
    r = cox(lungcc, duration="time", event="status", covariates=["age", "ph.ecog"], strata="sex")
    _check_cox(
        r,
        [0.01056625460094952, 0.4624244343582905],  # coef(f)
        [0.0092413738930921807, 0.11476109785480394],  # sqrt(diag(vcov(f)))
        [-638.50976498423643, -628.77093950120525],  # f$loglik
        [
            19.477650966062356,
            19.625946217914837,
            19.957499743694065,
        ],  # c(2*diff(f$loglik), f$wald.test, f$score)
        [0.60584918283475098, 0.026523885144639974],  # f$concordance[c("concordance", "std")]
    )
    # b <- basehaz(f, centered = FALSE); b[c(1, 2, 50, nrow(b)), ]  strata: sex=1, sex=1, sex=1, sex=2
    bh = r.baseline_hazard
    idx = [0, 1, 49, bh.shape[0] - 1]
    assert bh.strata.to_numpy()[idx].tolist() == [1, 1, 1, 2]
    close(bh.time.to_numpy()[idx], [11, 12, 212, 965])
    close(
        bh.cumhaz.to_numpy()[idx],
        [0.0068052875574216793, 0.0091122916461164553, 0.17630278552298623, 0.80070789651694652],
        rel=REL_FIT,
    )


COX_TIES = [
    # f <- coxph(Surv(time, status) ~ x1 + x2, data = ties, ties = tt)   (integer times, two zero times)
    pytest.param(
        "efron",
        None,
        [0.55558561017224095, -0.41996536635811293],
        [0.058057427738003049, 0.11263058763160817],
        [-1690.1412038563494, -1640.5983898072031],
        [99.085628098292545, 98.33767048968987, 99.67056203834936],
        [0.66632231404958675, 0.017451199290718571],
        id="ties-efron",
    ),
    pytest.param(
        "breslow",
        None,
        [0.50850534284169413, -0.386204859587157],
        [0.057271748109977531, 0.1125447066225405],
        [-1709.027183936973, -1666.3807194005351],
        [85.292929072875722, 84.891667279063881, 85.866410122605416],
        [0.66632231404958675, 0.017451199290718571],
        id="ties-breslow",
    ),
    # f <- coxph(Surv(time, status) ~ x1 + x2 + strata(stratum), data = ties, ties = tt)
    pytest.param(
        "efron",
        "stratum",
        [0.55831201756438076, -0.45662754448885012],
        [0.058787405576893971, 0.11430310467888177],
        [-1341.3888027126202, -1291.7272506361394],
        [99.323104152961605, 98.685269446209702, 100.52765279704293],
        [0.66795905031583536, 0.018090559552315047],
        id="ties-strata-efron",
    ),
    pytest.param(
        "breslow",
        "stratum",
        [0.51031559232347834, -0.42012541731382386],
        [0.05796159724977467, 0.11411041628246156],
        [-1360.7690364920552, -1318.0423721830603],
        [85.453328617989882, 85.14354341441279, 86.492495552704028],
        [0.66795905031583536, 0.018090559552315047],
        id="ties-strata-breslow",
    ),
]


@pytest.mark.parametrize(("ties_", "strata", "coef", "se", "loglik", "tests", "conc"), COX_TIES)
def test_cox_against_coxph_heavy_ties(ties, ties_, strata, coef, se, loglik, tests, conc):
    r = cox(
        ties, duration="time", event="status", covariates=["x1", "x2"], ties=ties_, strata=strata
    )
    _check_cox(r, coef, se, loglik, tests, conc)


@pytest.mark.parametrize(
    ("ties_", "cumhaz"),
    [
        # b <- basehaz(f, centered = FALSE); b[c(1, 2, 30, nrow(b)), ]  (f stratified, as COX_TIES); strata A, A, B, C
        pytest.param(
            "efron",
            [0.0067417084851546577, 0.1734460441561709, 0.5432091761577853, 3.2211124454617068],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [0.0068467951203952677, 0.15861869878608451, 0.48917454908886915, 2.9483060608676124],
            id="breslow",
        ),
    ],
)
def test_cox_stratified_baseline_with_zero_times(ties, ties_, cumhaz):
    r = cox(
        ties, duration="time", event="status", covariates=["x1", "x2"], ties=ties_, strata="stratum"
    )
    bh = r.baseline_hazard
    idx = [0, 1, 29, bh.shape[0] - 1]
    assert bh.strata.to_numpy()[idx].tolist() == ["A", "A", "B", "C"]
    close(bh.time.to_numpy()[idx], [0, 1, 3, 37])
    close(bh.cumhaz.to_numpy()[idx], cumhaz, rel=REL_FIT)


def test_cox_predictions_consistent_with_baseline(ties):
    r = cox(ties, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
    lp = r.predict_risk(ties)
    close(lp, ties[["x1", "x2"]].to_numpy() @ r.coef)
    risk10 = r.predict_risk_at(ties, 10)
    bh = r.baseline_hazard
    for s in ["A", "B", "C"]:
        sub = bh[(bh.strata == s) & (bh.time <= 10)]
        h0 = sub.cumhaz.iloc[-1]
        m = (ties.stratum == s).to_numpy()
        close(risk10[m], 1 - np.exp(-h0 * np.exp(lp[m])))
    surv = r.predict_survival(ties.iloc[:3], [0, 5, 10])
    assert surv.shape == (3, 3)
    assert np.all(np.diff(surv, axis=1) <= 0)
    with pytest.raises(StudyvalError, match="stratum 'Z' was not in the data"):
        r.predict_risk_at(ties.assign(stratum="Z").iloc[:2], 10)


def test_cox_several_strata_columns_are_crossed(ties):
    d = ties.assign(half=(ties.x1 > 0).astype(int))
    both = cox(d, duration="time", event="status", covariates=["x2"], strata=["stratum", "half"])
    crossed = d.assign(s=d.stratum + ", " + d.half.astype(str))
    one = cox(crossed, duration="time", event="status", covariates=["x2"], strata="s")
    close(both.coef, one.coef, rel=1e-12)
    assert both.strata == ("stratum", "half")
    assert sorted(set(both.baseline_hazard.strata)) == [
        "A, 0",
        "A, 1",
        "B, 0",
        "B, 1",
        "C, 0",
        "C, 1",
    ]
    close(both.predict_risk_at(d, 5), one.predict_risk_at(crossed, 5), rel=1e-12)


def test_cox_row_order_invariance(ties):
    a = cox(ties, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
    shuffled = ties.sample(frac=1.0, random_state=7)
    b = cox(shuffled, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
    close(b.coef, a.coef, rel=1e-10)
    close(b.variance, a.variance, rel=1e-9)
    close(
        [b.loglik, b.score_chisq, b.concordance],
        [a.loglik, a.score_chisq, a.concordance],
        rel=1e-10,
    )
    pd.testing.assert_frame_equal(a.baseline_hazard, b.baseline_hazard, rtol=1e-10)


def test_cox_bool_covariate_and_to_frame(lungcc):
    d = lungcc.assign(female=lungcc["sex"] == 2)
    r = cox(d, duration="time", event="status", covariates=["age", "female", "ph.ecog"])
    close(r.coef[1], -0.55261239570363097, rel=REL_FIT)  # female = sex - 1: coef(f)["sex"]
    f = r.to_frame()
    assert f.shape[0] == 1 and "score_chisq" in f.columns and "summary" not in f.columns


def test_cox_monotone_likelihood_warns_and_flags():
    # every event is in group x = 1: the MLE of beta is +infinity
    d = pd.DataFrame(
        {
            "time": [1, 2, 3, 4, 5, 6, 7, 8],
            "status": [1, 1, 1, 0, 0, 0, 0, 0],
            "x": [1, 1, 1, 1, 0, 0, 0, 0],
        }
    )
    with pytest.warns(StatisticalWarning, match="may be infinite|no convergence"):
        r = cox(d, duration="time", event="status", covariates=["x"])
    assert r.converged is False


def test_cox_iteration_limit_warns(lungcc):
    with pytest.warns(StatisticalWarning, match="no convergence in 1 iterations"):
        r = cox(lungcc, duration="time", event="status", covariates=["age", "sex"], max_iter=1)
    assert r.converged is False


def test_cox_converged_fit_emits_no_warning(lungcc):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cox(lungcc, duration="time", event="status", covariates=["age", "sex"])


def _lung_bad(lungcc, **changes):
    d = lungcc.copy()
    for k, v in changes.items():
        d[k] = v
    return d


@pytest.mark.parametrize(
    ("mutate", "kwargs", "exc", "match"),
    [
        pytest.param(
            None,
            dict(covariates=["agee"]),
            StudyvalError,
            "did you mean 'age'",
            id="missing-column",
        ),
        pytest.param(
            None,
            dict(duration="tme", covariates=["age"]),
            StudyvalError,
            "duration column 'tme' is not in the data",
            id="missing-duration",
        ),
        pytest.param(
            "string-cov",
            dict(covariates=["age", "grp"]),
            StudyvalError,
            "covariate 'grp' is not numeric",
            id="non-numeric",
        ),
        pytest.param(
            "nan-cov",
            dict(covariates=["age", "sex"]),
            StudyvalError,
            r"column 'age' has 1 missing value\(s\) at row\(s\) with index 5",
            id="nan-covariate",
        ),
        pytest.param(
            "nan-time",
            dict(covariates=["age"]),
            StudyvalError,
            "column 'time' has 1 missing",
            id="nan-time",
        ),
        pytest.param(
            "neg-time",
            dict(covariates=["age"]),
            StudyvalError,
            "duration column 'time' must be >= 0",
            id="negative-time",
        ),
        pytest.param(
            "event-2",
            dict(covariates=["age"]),
            StudyvalError,
            "event column 'status' must be 0",
            id="event-code",
        ),
        pytest.param(
            "censored",
            dict(covariates=["age"]),
            EstimationError,
            "no events in column 'status'",
            id="all-censored",
        ),
        pytest.param(
            "const",
            dict(covariates=["age", "one"]),
            EstimationError,
            "covariate 'one' is constant",
            id="constant",
        ),
        pytest.param(
            "collinear",
            dict(covariates=["age", "sex", "age2"]),
            EstimationError,
            "collinear",
            id="collinear",
        ),
        pytest.param(
            None,
            dict(covariates=["age"], ties="exact"),
            StudyvalError,
            "ties='exact' is not one of",
            id="ties-option",
        ),
        pytest.param(
            None, dict(covariates=[]), StudyvalError, "covariates is empty", id="no-covariates"
        ),
        pytest.param(
            None, dict(covariates=["age", "age"]), StudyvalError, "more than once", id="duplicate"
        ),
        pytest.param(
            None,
            dict(covariates=["age", "status"]),
            StudyvalError,
            "also the duration or event",
            id="event-as-covariate",
        ),
        pytest.param(
            None,
            dict(covariates=["age", "sex"], strata="sex"),
            StudyvalError,
            "both a covariate and a stratum",
            id="strata-covariate",
        ),
        pytest.param(
            None,
            dict(covariates=["age"], max_iter=0),
            StudyvalError,
            "max_iter must be",
            id="max-iter",
        ),
        pytest.param(
            None, dict(covariates=["age"], tol=0.5), StudyvalError, "tol must be", id="tol"
        ),
    ],
)
def test_cox_errors(lungcc, mutate, kwargs, exc, match):
    d = lungcc.copy()
    if mutate == "string-cov":
        d["grp"] = np.where(d["sex"] == 1, "m", "f")
    elif mutate == "nan-cov":
        d.loc[5, "age"] = np.nan
    elif mutate == "nan-time":
        d.loc[3, "time"] = np.nan
    elif mutate == "neg-time":
        d.loc[3, "time"] = -1
    elif mutate == "event-2":
        d.loc[3, "status"] = 2
    elif mutate == "censored":
        d["status"] = 0
    elif mutate == "const":
        d["one"] = 1.0
    elif mutate == "collinear":
        d["age2"] = 2 * d["age"] - d["sex"]
    kw = dict(duration="time", event="status")
    kw.update(kwargs)
    with pytest.raises(exc, match=match):
        cox(d, **kw)


def test_cox_rejects_non_dataframe():
    with pytest.raises(StudyvalError, match="must be a pandas DataFrame"):
        cox({"time": [1]}, duration="time", event="status", covariates=["x"])


def test_cox_zero_time_allowed():
    # coxph(Surv(time, status) ~ x, data = d) accepts a zero time; here it is the first event
    d = pd.DataFrame(
        {
            "time": [0, 1, 2, 3, 4, 5, 6],
            "status": [1, 1, 0, 1, 1, 0, 1],
            "x": [0.0, 2, 1, 0, 1, 2, 0],
        }
    )
    r = cox(d, duration="time", event="status", covariates=["x"])
    assert r.converged and r.n_events == 5
    assert r.baseline_hazard.time.iloc[0] == 0


# -- nested models: likelihood-ratio test -----------------------------------------------------
# library(survival)
# d <- na.omit(lung[, c("time","status","age","sex","ph.ecog")]); d$status <- d$status - 1
# f1 <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = d)
# f0 <- coxph(Surv(time, status) ~ age, data = d)
# a <- anova(f0, f1); sprintf("%.17g", c(a$Chisq[2], a[["Pr(>|Chi|)"]][2]))
@pytest.mark.parametrize(
    ("ties", "chisq", "p"),
    [
        pytest.param("efron", 26.174800142118329, 2.0711634176493417e-06, id="efron"),
        # same with ties = "breslow" in both coxph calls
        pytest.param("breslow", 26.094727658619604, 2.1557673275659886e-06, id="breslow"),
    ],
)
def test_nested_cox_test_against_R_anova(lungcc, ties, chisq, p):
    kw = {"duration": "time", "event": "status", "ties": ties}
    full = cox(lungcc, covariates=["age", "sex", "ph.ecog"], **kw)
    red = cox(lungcc, covariates=["age"], **kw)
    t = nested_cox_test(full, red)
    assert t.chisq == pytest.approx(chisq, rel=REL_FIT)
    assert t.p_value == pytest.approx(p, rel=REL_FIT)
    assert (t.df, t.terms_added, t.n, t.n_events) == (2, "sex, ph.ecog", 227, 164)
    if ties == "efron":  # sprintf("%.17g", f1$loglik[2]); sprintf("%.17g", f0$loglik[2])
        assert t.loglik_full == pytest.approx(-729.23012137486194, rel=REL_FIT)
        assert t.loglik_reduced == pytest.approx(-742.3175214459211, rel=REL_FIT)
    assert list(t.to_frame().columns)[:3] == ["full", "reduced", "terms_added"]


def test_nested_cox_test_refuses_models_that_are_not_nested_or_not_comparable(lungcc, lung):
    kw = {"duration": "time", "event": "status"}
    a = cox(lungcc, covariates=["age", "sex"], **kw)
    b = cox(lungcc, covariates=["age", "ph.ecog"], **kw)
    with pytest.raises(StudyvalError, match="models are not nested"):
        nested_cox_test(a, b)
    with pytest.raises(StudyvalError, match="models are not nested"):
        nested_cox_test(a, a)
    other_rows = cox(lung.dropna(subset=["age"]), covariates=["age"], **kw)
    with pytest.raises(StudyvalError, match=r"not comparable .* subjects \(227 vs 228\)"):
        nested_cox_test(a, other_rows)
    breslow = cox(lungcc, covariates=["age"], ties="breslow", **kw)
    with pytest.raises(StudyvalError, match=r"ties \(efron vs breslow\)"):
        nested_cox_test(a, breslow)


# =========================================================================== #
# Baseline survival at chosen times
# =========================================================================== #
@pytest.mark.parametrize(
    ("ties_", "surv"),
    [
        # f <- coxph(Surv(time, status) ~ age + sex + ph.ecog, data = lungcc, ties = tt)
        # summary(survfit(f, newdata = data.frame(age = 0, sex = 0, ph.ecog = 0)),
        #         times = c(5, 180, 365, 730))$surv
        # (the same as exp(-basehaz(f, centered = FALSE)$hazard) at the last time <= each)
        pytest.param(
            "efron",
            [0.99724099798739607, 0.80889043739250666, 0.54125500510164437, 0.21918371515247995],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [0.99723639093601857, 0.80897933776151998, 0.54133521574108812, 0.21914064684667192],
            id="breslow",
        ),
    ],
)
def test_cox_baseline_survival_against_survfit_at_zero_covariates(lungcc, ties_, surv):
    r = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    s0 = r.baseline_survival([5, 180, 365, 730])
    assert list(s0.columns) == ["time", "cumhaz", "survival"]
    close(s0["survival"], surv, rel=REL_FIT)
    close(s0["survival"], np.exp(-s0["cumhaz"]))
    # before the first event nothing has happened; the survival never rises
    assert r.baseline_survival([0.0])["survival"].iloc[0] == 1.0
    assert np.all(np.diff(r.baseline_survival(np.arange(0, 1000, 7.0))["survival"]) <= 0)
    # a subject's predicted survival is S0(t) ** exp(lp)
    one = lungcc.iloc[:3]
    s365 = s0["survival"].iloc[2]
    close(r.predict_survival(one, [365])[:, 0], s365 ** np.exp(r.predict_risk(one)), rel=1e-12)


def test_cox_baseline_survival_stratified_against_basehaz(lungcc):
    # f <- coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lungcc)
    # bh <- basehaz(f, centered = FALSE)
    # for each stratum: exp(-bh$hazard[max(which(bh$time <= h))]) at h = 180, 365
    r = cox(lungcc, duration="time", event="status", covariates=["age", "ph.ecog"], strata="sex")
    s0 = r.baseline_survival([180, 365])
    assert list(s0.columns) == ["strata", "time", "cumhaz", "survival"]
    close(
        s0["survival"],
        [0.87047375849739339, 0.69701900890612112, 0.94644472129349699, 0.81336609672758475],
        rel=REL_FIT,
    )
    assert list(s0["strata"]) == [1, 1, 2, 2]


@pytest.mark.parametrize(
    ("times", "match"),
    [
        pytest.param([-1.0], "times", id="negative"),
        pytest.param([np.nan], "times", id="nan"),
    ],
)
def test_cox_baseline_survival_rejects_bad_times(lungcc, times, match):
    r = cox(lungcc, duration="time", event="status", covariates=["age"])
    with pytest.raises(StudyvalError, match=match):
        r.baseline_survival(times)
