"""Random-intercept linear mixed model (REML) against lme4::lmer."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM
from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning

from studyval.analysis.mixed_models import (
    OptimiserAttempt,
    data_fingerprint,
    n_followed,
    population_means,
    random_intercept_lmm,
)
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def oks() -> pd.DataFrame:
    # 60 simulated patients x 4 visits, about 15% of visits missing (tests/data/lmm_oks.csv)
    return pd.read_csv(DATA / "lmm_oks.csv")


def test_reml_fixed_effects_and_variances_against_lme4(oks):
    # R 4.x, lme4:
    #   d <- read.csv("tests/data/lmm_oks.csv")
    #   f <- lmer(y ~ years * oa + (1 | patient), data = d, REML = TRUE)
    #   fixef(f); sqrt(diag(as.matrix(vcov(f)))); as.data.frame(VarCorr(f))$vcov; logLik(f)
    # Tolerance 1e-4 relative: statsmodels (L-BFGS on the profiled REML) and lme4 (bobyqa on the
    # relative Cholesky factor) stop at slightly different points of the same flat optimum.
    r = random_intercept_lmm(oks, formula="y ~ years * oa", group="patient")
    fe = r.fixed.set_index("term")
    np.testing.assert_allclose(
        fe["estimate"].to_numpy(),
        [36.6206390065, -0.7615423643, -10.2039985622, -0.9466093325],
        rtol=1e-4,
    )
    np.testing.assert_allclose(
        fe["se"].to_numpy(), [1.0692947076, 0.3097195236, 1.4344323494, 0.4192976644], rtol=1e-4
    )
    assert r.var_patient == pytest.approx(21.3671077651, rel=1e-4)
    assert r.var_residual == pytest.approx(7.7887302858, rel=1e-4)
    assert r.reml_loglik == pytest.approx(-585.9939046489, rel=1e-6)
    assert r.n_obs == len(oks) and r.n_patients == oks["patient"].nunique()


def test_wald_interval_is_estimate_plus_minus_z_se(oks):
    r = random_intercept_lmm(oks, formula="y ~ years * oa", group="patient", alpha=0.1)
    f = r.fixed
    np.testing.assert_allclose(
        f["ci_high"] - f["estimate"], 1.6448536269514722 * f["se"], rtol=1e-12
    )
    assert r.ci_level == pytest.approx(0.9)


def test_n_followed_counts_observations_per_visit(oks):
    nf = n_followed(oks.assign(month=(oks["years"] * 12).round().astype(int)), visit="month")
    assert nf["n_followed"].sum() == len(oks)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        pytest.param(
            lambda d: d.assign(y=np.where(d.index == 3, np.nan, d["y"])),
            StudyvalError,
            "missing values",
            id="missing-outcome",
        ),
        pytest.param(
            lambda d: d[d["patient"] == 0], EstimationError, "at least 2", id="one-patient"
        ),
        pytest.param(
            lambda d: d.groupby("patient").head(1),
            EstimationError,
            "every patient has a single observation",
            id="one-observation-per-patient",
        ),
    ],
)
def test_errors(oks, change, error, match):
    with pytest.raises(error, match=match):
        random_intercept_lmm(change(oks), formula="y ~ years * oa", group="patient")


def test_unknown_group_column(oks):
    with pytest.raises(StudyvalError, match="group column"):
        random_intercept_lmm(oks, formula="y ~ years", group="subject")


# --------------------------------------------------------------------------- #
# Optimisers: which one produced the fit, and no warning muted
# --------------------------------------------------------------------------- #
# 5 patients x 2 visits, y = 1 + 0.5 x + N(0, 1) patient + N(0, 1) noise (numpy default_rng(11)),
# rounded to 6 decimals: L-BFGS steps onto a singular random-effects covariance here.
TINY = pd.DataFrame(
    {
        "patient": np.repeat(np.arange(5), 2),
        "x": np.tile([0.0, 1.0], 5),
        "y": [
            *(2.168657, 3.471607, -1.357632, 2.556242, 0.605598),
            *(1.882409, 0.336049, 0.593517, 2.032837, 2.89424),
        ],
    }
)
# 5 patients x 3 visits (default_rng(14)): no patient variance; lme4 gives a singular fit
# (R: lmer(y ~ x + (1 | patient), d3); VarCorr: patient 0, isSingular TRUE).
NO_PATIENT_VARIANCE = pd.DataFrame(
    {
        "patient": np.repeat(np.arange(5), 3),
        "x": np.tile([0.0, 1.0, 2.0], 5),
        "y": [
            *(0.725099, 1.736493, 0.331109, 2.189801, -0.839394, 0.911068, 3.562965, 1.209132),
            *(1.937678, 1.111924, 2.45833, 0.497119, 0.369728, 3.21063, 2.227862),
        ],
    }
)


def test_converged_fit_records_its_optimiser_and_emits_no_warning(oks):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = random_intercept_lmm(oks, formula="y ~ years * oa", group="patient")
    assert r.optimiser == "lbfgs" and r.converged
    assert r.optimisers_tried == (OptimiserAttempt("lbfgs", "converged"),)
    f = r.to_frame()
    assert (f["optimiser"] == "lbfgs").all()
    assert (f["optimisers_tried"] == "lbfgs: converged").all()
    o = r.optimisers_frame()
    assert o[["optimiser", "outcome", "reported"]].values.tolist() == [["lbfgs", "converged", True]]


def test_fallback_optimiser_is_recorded_and_every_warning_surfaces():
    # R 4.2.2, lme4 (bobyqa reaches the same optimum as the fallback optimiser):
    #   d <- data.frame(patient = rep(0:4, each = 2), x = rep(c(0, 1), 5), y = c(2.168657,
    #     3.471607, -1.357632, 2.556242, 0.605598, 1.882409, 0.336049, 0.593517, 2.032837, 2.89424))
    #   f <- lmer(y ~ x + (1 | patient), data = d, REML = TRUE)
    #   fixef(f); sqrt(diag(as.matrix(vcov(f)))); as.data.frame(VarCorr(f))$vcov; logLik(f)
    with (
        pytest.warns(
            StatisticalWarning,
            match=r"^y ~ x \(random intercept per patient\): the reported fit is from optimiser "
            r"bfgs, because lbfgs \(failed\) did not converge$",
        ),
        pytest.warns(
            SingularMatrixWarning,
            match=r"^y ~ x \(random intercept per patient\), optimiser lbfgs: Random effects "
            r"covariance is singular$",
        ),
    ):
        r = random_intercept_lmm(TINY, formula="y ~ x", group="patient")
    assert r.optimiser == "bfgs" and r.converged
    assert r.optimisers_tried == (
        OptimiserAttempt(
            "lbfgs",
            "failed",
            "LinAlgError: Singular matrix",
            ("SingularMatrixWarning: Random effects covariance is singular",),
        ),
        OptimiserAttempt("bfgs", "converged"),
    )
    assert r.to_frame()["optimisers_tried"].iloc[0] == (
        "lbfgs: failed (LinAlgError: Singular matrix) [1 warning: SingularMatrixWarning: "
        "Random effects covariance is singular]; bfgs: converged"
    )
    assert r.optimisers_frame()["reported"].tolist() == [False, True]
    fe = r.fixed.set_index("term")
    np.testing.assert_allclose(fe["estimate"], [0.7571018000, 1.5225012000], rtol=1e-5)
    np.testing.assert_allclose(fe["se"], [0.5737629449, 0.6270801423], rtol=1e-5)
    assert r.var_patient == pytest.approx(0.6629458226, rel=1e-5)
    assert r.var_residual == pytest.approx(0.9830737622, rel=1e-5)
    assert r.reml_loglik == pytest.approx(-14.6004030277, rel=1e-8)


def test_small_variance_convergence_warning_surfaces_with_formula_and_optimiser(oks):
    # Outcome in hundredths: statsmodels flags any variance below 0.01 ("may be on the boundary").
    # The fit is interior (lme4 agrees) and is reported; the warning is no longer muted.
    # R: d$y <- d$y / 100; f <- lmer(y ~ years * oa + (1 | patient), data = d, REML = TRUE)
    #    as.data.frame(VarCorr(f))$vcov  # 0.002136710777 0.0007788730286
    with pytest.warns(
        ConvergenceWarning,
        match=r"^y ~ years \* oa \(random intercept per patient\), optimiser lbfgs: The MLE may "
        r"be on the boundary of the parameter space\.$",
    ):
        r = random_intercept_lmm(
            oks.assign(y=oks["y"] / 100), formula="y ~ years * oa", group="patient"
        )
    assert r.optimiser == "lbfgs"
    assert r.optimisers_tried == (
        OptimiserAttempt(
            "lbfgs",
            "converged",
            warnings=(
                "ConvergenceWarning: The MLE may be on the boundary of the parameter space.",
            ),
        ),
    )
    assert r.var_patient == pytest.approx(0.002136710777, rel=1e-4)
    assert r.var_residual == pytest.approx(0.0007788730286, rel=1e-4)


def test_zero_patient_variance_raises_after_surfacing_the_warnings():
    with (
        pytest.warns(StatisticalWarning, match="reported fit is from optimiser powell"),
        pytest.warns(SingularMatrixWarning, match="optimiser lbfgs: Random effects covariance"),
        pytest.warns(ConvergenceWarning, match=r"optimiser bfgs: .*failed"),
        pytest.warns(ConvergenceWarning, match="optimiser powell: The MLE may be on the boundary"),
        pytest.raises(
            EstimationError,
            match=r"^y ~ x \(random intercept per patient\): the patient random-intercept "
            r"variance is estimated at 0 \(boundary: .* optimiser powell\)$",
        ),
    ):
        random_intercept_lmm(NO_PATIENT_VARIANCE, formula="y ~ x", group="patient")


def test_no_optimiser_converges_raises_naming_formula_and_every_attempt(oks, monkeypatch):
    fit = MixedLM.fit
    monkeypatch.setattr(MixedLM, "fit", lambda self, **kw: fit(self, maxiter=1, **kw))
    with (
        pytest.warns(ConvergenceWarning, match=r"^y ~ years \* oa .*optimiser lbfgs: "),
        pytest.warns(ConvergenceWarning, match=r"^y ~ years \* oa .*optimiser bfgs: "),
        pytest.warns(ConvergenceWarning, match=r"^y ~ years \* oa .*optimiser powell: "),
        pytest.raises(
            EstimationError,
            match=r"^the mixed model y ~ years \* oa \(random intercept per patient\) did not "
            r"converge with any optimiser \(lbfgs: not converged .*; bfgs: not converged .*; "
            r"powell: not converged .*\); no fit is reported$",
        ),
    ):
        random_intercept_lmm(oks, formula="y ~ years * oa", group="patient")


# --------------------------------------------------------------------------- #
# population_means: fitted means with the random effects at 0
# --------------------------------------------------------------------------- #
def test_population_means_against_lme4_predict(oks):
    # R 4.2.2, lme4:
    #   f <- lmer(y ~ years * oa + (1 | patient), data = d, REML = TRUE)
    #   nd <- expand.grid(years = c(0.5, 1, 2, 3), oa = c(0, 1))
    #   predict(f, newdata = nd, re.form = NA)
    #   X <- model.matrix(~ years * oa, nd); sqrt(diag(X %*% as.matrix(vcov(f)) %*% t(X)))
    # Tolerance 1e-4 relative, as for the fit itself: the two optimisers stop at slightly
    # different points of the same flat REML optimum (the means agree to 2e-8, the SEs to 5e-5).
    r = random_intercept_lmm(oks, formula="y ~ years * oa", group="patient")
    nd = pd.DataFrame({"years": [0.5, 1.0, 2.0, 3.0] * 2, "oa": [0.0] * 4 + [1.0] * 4})
    t = population_means(r, nd).to_frame()
    fitted = [
        36.239867824388988,
        35.859096642234441,
        35.097554277925340,
        34.336011913616240,
        25.562564595972493,
        24.708488747559759,
        23.000337050734288,
        21.292185353908817,
    ]
    se = [
        1.00820011586965297,
        0.96824938280784878,
        0.96097602968093854,
        1.04942620444275070,
        0.89599393847857745,
        0.85518855018276152,
        0.84158102141483615,
        0.91920534755548611,
    ]
    np.testing.assert_allclose(t["fitted"], fitted, rtol=1e-6)
    np.testing.assert_allclose(t["se"], se, rtol=1e-4)
    np.testing.assert_allclose(t["ci_high"] - t["fitted"], 1.959963984540054 * t["se"], rtol=1e-12)
    assert list(t.columns[:2]) == ["years", "oa"] and (t["ci_level"] == 0.95).all()


def test_population_mean_at_zero_covariates_is_the_intercept(oks):
    r = random_intercept_lmm(oks, formula="y ~ years * oa", group="patient")
    t = population_means(r, pd.DataFrame({"years": [0.0], "oa": [0.0]})).to_frame()
    intercept = r.fixed.set_index("term").loc["Intercept"]
    assert t["fitted"].iloc[0] == pytest.approx(intercept["estimate"], rel=1e-12)
    assert t["se"].iloc[0] == pytest.approx(intercept["se"], rel=1e-12)


@pytest.mark.parametrize(
    ("newdata", "match"),
    [
        pytest.param(pd.DataFrame({"years": [1.0]}), r"cannot build the design", id="no-oa"),
        pytest.param(
            pd.DataFrame({"years": [1.0], "oa": [np.nan]}), r"'oa' has missing", id="missing"
        ),
    ],
)
def test_population_means_rejects_incomplete_newdata(oks, newdata, match):
    r = random_intercept_lmm(oks, formula="y ~ years * oa", group="patient")
    with pytest.raises(StudyvalError, match=match):
        population_means(r, newdata)


def test_data_fingerprint_identifies_the_data_of_a_fit(oks):
    # issue 12: a fit reused by a later analysis is checked against that analysis's data
    d, group = oks, "patient"
    key = data_fingerprint(d, group)
    assert random_intercept_lmm(d, formula="y ~ years * oa", group=group)._data_key == key
    assert data_fingerprint(d.copy(), group) == key
    assert data_fingerprint(d.iloc[:-1], group) != key
    assert data_fingerprint(d.iloc[::-1], group) != key
    assert data_fingerprint(d.rename(columns={"y": "other"}), group) != key
    assert data_fingerprint(d, "oa") != key
    changed = d.copy()
    changed.iloc[0, -1] = changed.iloc[0, -1] + 1e-9
    assert data_fingerprint(changed, group) != key
