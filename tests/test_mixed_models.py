"""Random-intercept linear mixed model (REML) against lme4::lmer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.mixed_models import n_followed, random_intercept_lmm
from studyval.errors import EstimationError, StudyvalError

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
    ],
)
def test_errors(oks, change, error, match):
    with pytest.raises(error, match=match):
        random_intercept_lmm(change(oks), formula="y ~ years * oa", group="patient")


def test_unknown_group_column(oks):
    with pytest.raises(StudyvalError, match="group column"):
        random_intercept_lmm(oks, formula="y ~ years", group="subject")
