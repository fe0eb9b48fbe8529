"""Oracle tests of studyval.analysis.standardised_comparison (adjusted OR, g-computation).

The data: 160 rows (80 patients of 2 rows each), one token per row
<group 0/1><outcome 0/1><Genant grade 1-3><age><sex F/M><region c/a/b>, drawn once
with numpy.random.default_rng(7) from a logistic model and pasted here.

R 4.2 oracle (the script, run on these rows written as d.csv; its printed values are
the constants below)::

    d <- read.csv("d.csv")   # columns a, y (True/False), grade, age, sex, region, patient
    d$a <- as.numeric(d$a == "True"); d$y <- as.numeric(d$y == "True")
    d$grade <- factor(d$grade, levels = c(1, 2, 3)); d$sex <- factor(d$sex, levels = c("F", "M"))
    d$region <- factor(d$region, levels = c("chest", "abdomen_pelvis", "chest_abdomen_pelvis"))
    f <- y ~ a + age + grade + sex + region
    fit <- glm(f, family = binomial, data = d)
    print(summary(fit)$coefficients)
    gcomp <- function(fit, d, w = rep(1, nrow(d))) {
      d1 <- d; d1$a <- 1; d0 <- d; d0$a <- 0
      m1 <- predict(fit, d1, type = "response"); m0 <- predict(fit, d0, type = "response")
      c(r1 = sum(w * m1) / sum(w), r0 = sum(w * m0) / sum(w))
    }
    r <- gcomp(fit, d); rd <- unname(r[1] - r[2])
    X1 <- model.matrix(f, transform(d, a = 1)); X0 <- model.matrix(f, transform(d, a = 0))
    m1 <- plogis(X1 %*% coef(fit)); m0 <- plogis(X0 %*% coef(fit))
    g <- colMeans(as.vector(m1 * (1 - m1)) * X1 - as.vector(m0 * (1 - m0)) * X0)
    vfix <- as.numeric(t(g) %*% vcov(fit) %*% g); n <- nrow(d)
    v <- vfix + sum((m1 - m0 - rd)^2) / n^2
    # r1 0.814721632247463 r0 0.563527244725279 rd 0.251194387522184
    # se_fixed 0.0689589136322001 se 0.0690589826376063
    exp(coef(fit)["a"] + c(0, -1, 1) * qnorm(.975) * sqrt(vcov(fit)["a", "a"]))
    # 3.65961440873435 1.7144481572543 7.81171338657723
    # cluster bootstrap on the engine's resamples (resampling_weights(patient, n_resamples=40,
    # seed=11) written to w.csv): a weighted refit and standardisation per resample
    W <- as.matrix(read.csv("w.csv", header = FALSE))
    rds <- apply(W, 1, function(w) { dw <- d; dw$ww <- w
      fw <- suppressWarnings(glm(f, family = binomial, data = dw, weights = ww))
      rr <- gcomp(fw, d, w); unname(rr[1] - rr[2]) })
    quantile(rds, c(0.025, 0.975), type = 7); sd(rds)
    # 0.113537529762426 0.382385526386715; sd 0.0676968452727005

R's glm stops at a deviance change below 1e-8, a little before this Newton fit (step
below 1e-10): the SEs agree to about 1e-7 relative, the estimates to 1e-12.
"""

from __future__ import annotations

import pandas as pd
import pytest

from studyval.analysis import resampling
from studyval.analysis.standardised_comparison import (
    design_matrix,
    standardised_comparison,
    standardised_comparison_bootstrap,
    standardised_difference_statistic,
)
from studyval.errors import EstimationError, StudyvalError

TOKENS = """01193Fa 00395Mc 00361Fa 11161Fc 11269Fc 01284Mb 10292Fc 00289Ma 01170Fa 11392Ma 11266Mb
11260Mc 10273Mb 11159Fb 01183Fa 00195Mc 00260Ma 00360Fa 01263Mb 01163Fc 11377Fb 10378Mb
01394Fc 11273Mc 11393Fc 01186Mb 10190Fb 01163Fb 00174Ma 01192Fa 11186Ma 11264Fa 11189Fb
11286Fa 01161Mc 11258Fa 11166Fc 11174Ma 01362Fa 11257Fa 11360Fb 00268Fb 01271Fc 01168Mc
01273Fc 00184Fc 11365Mc 01374Ma 00385Fb 00158Mc 10193Fb 00195Ma 11167Mb 11291Ma 11266Mc
11192Fb 01382Fc 11265Fc 00158Mb 01271Fa 01385Fc 00165Mc 01276Fb 10260Fc 11272Ma 11157Fc
10295Mb 11276Mc 01389Fa 11360Mc 00162Fa 11263Fb 00378Mc 01390Fc 11180Fb 00175Ma 01293Mc
00163Fa 00262Fa 11382Fb 10190Fc 01166Fb 00266Fa 11277Ma 00187Fc 00167Fa 00188Fa 11276Fc
11384Mc 10181Mb 10175Fa 01277Fc 10195Ma 01171Fc 11193Ma 00287Fb 11163Ma 11290Fc 11271Fc
11163Fc 01166Fc 01261Mc 10169Mc 00160Fc 00177Ma 10195Fc 01394Fa 01193Fb 11165Fc 01365Fa
00283Ma 01194Mc 11189Fc 00364Mb 11185Ma 01276Fb 00173Fc 11275Ma 11277Fb 01392Mb 11287Fc
00157Ma 00186Fc 01268Fb 01269Fc 11179Mc 11195Fb 11258Ma 11276Fa 11365Fb 00192Fc 01174Fc
11290Fc 11291Mc 00260Mc 11386Fa 01387Fb 00389Fa 00295Ma 01186Fc 01289Ma 00184Mb 11267Ma
01289Mb 11284Ma 01183Fc 11194Fa 11185Fa 01169Fc 01368Fa 11269Fb 01162Mc 01259Fa 00286Fa
01187Fa 01362Fc 11371Mc 11192Fa 11189Fa 10279Fa"""

REGION = {"c": "chest", "a": "abdomen_pelvis", "b": "chest_abdomen_pelvis"}
CATEGORICAL = ["grade", "sex", "region"]
CONTINUOUS = ["age"]

# summary(glm(y ~ a + age + grade + sex + region, binomial))$coefficients (R 4.2)
R_COEF = {
    "(Intercept)": (1.13675806941183555, 1.2081272934408851, 0.346742915049052136),
    "group": (1.29735778905845645, 0.3868777897950327, 0.000798239044874532),
    "age": (-0.00952968645322265, 0.0151366508260638, 0.528971408628583717),
    "grade: 2": (0.61100835697115552, 0.4178784389733177, 0.143695259834218325),
    "grade: 3": (0.83012240120301850, 0.4998760747524039, 0.096782475294301964),
    "sex: M": (-0.62829862008161452, 0.3724950705380769, 0.091655275736381533),
    "region: abdomen_pelvis": (-0.51175632579787356, 0.4194093541774743, 0.222395363641685856),
    "region: chest_abdomen_pelvis": (
        -0.38627721694342598,
        0.4849745221968139,
        0.425747453591651337,
    ),
}


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    toks = TOKENS.split()
    d = pd.DataFrame(
        {
            "a": [t[0] == "1" for t in toks],
            "y": [t[1] == "1" for t in toks],
            "grade": pd.Categorical([t[2] for t in toks], ["1", "2", "3"]),
            "age": [int(t[3:5]) for t in toks],
            "sex": [t[5] for t in toks],
            "region": pd.Categorical(
                [REGION[t[6]] for t in toks], ["chest", "abdomen_pelvis", "chest_abdomen_pelvis"]
            ),
        }
    )
    d["patient"] = [f"P{i // 2:03d}" for i in range(len(d))]
    return d


def _fit(d: pd.DataFrame, **kw):
    return standardised_comparison(
        d["y"].to_numpy(bool),
        d["a"].to_numpy(bool),
        d,
        categorical=kw.pop("categorical", CATEGORICAL),
        continuous=kw.pop("continuous", CONTINUOUS),
        **kw,
    )


def test_coefficients_against_r_glm(data):
    r = _fit(data)
    coef = r.coefficients_frame().set_index("term")
    assert list(coef.index) == list(R_COEF)
    for term, (est, se, p) in R_COEF.items():
        assert coef.at[term, "estimate"] == pytest.approx(est, rel=1e-9, abs=1e-12)
        assert coef.at[term, "se"] == pytest.approx(se, rel=1e-6)
        assert coef.at[term, "p_value"] == pytest.approx(p, rel=1e-6)
    assert r.odds_ratio == pytest.approx(3.65961440873435, rel=1e-9)
    assert r.or_ci_low == pytest.approx(1.7144481572543, rel=1e-6)
    assert r.or_ci_high == pytest.approx(7.81171338657723, rel=1e-6)
    assert r.p_value == pytest.approx(0.000798239044874532, rel=1e-6)


def test_standardised_difference_against_r_gcomputation(data):
    r = _fit(data)
    assert r.risk_index == pytest.approx(0.814721632247463, rel=1e-9)
    assert r.risk_control == pytest.approx(0.563527244725279, rel=1e-9)
    assert r.difference == pytest.approx(0.251194387522184, rel=1e-9)
    assert r.difference_se_fixed_covariates == pytest.approx(0.0689589136322001, rel=1e-6)
    assert r.difference_se == pytest.approx(0.0690589826376063, rel=1e-6)
    assert r.ci_low == pytest.approx(
        0.251194387522184 - 1.959963984540054 * 0.0690589826376063, rel=1e-6
    )
    assert (r.n, r.n_index, r.events_index, r.events_control) == (160, 75, 61, 48)
    assert r.crude_difference == pytest.approx(61 / 75 - 48 / 85)


def test_cluster_bootstrap_against_r_on_the_engine_resamples(data):
    b = standardised_comparison_bootstrap(
        data["y"].to_numpy(bool),
        data["a"].to_numpy(bool),
        data,
        clusters=data["patient"].to_numpy(),
        categorical=CATEGORICAL,
        continuous=CONTINUOUS,
        n_resamples=40,
        seed=11,
    )
    assert b.estimate == pytest.approx(0.251194387522184, rel=1e-9)
    assert b.ci_low == pytest.approx(0.113537529762426, rel=1e-7)
    assert b.ci_high == pytest.approx(0.382385526386715, rel=1e-7)
    assert b.se == pytest.approx(0.0676968452727005, rel=1e-7)
    assert (b.n_clusters, b.n_failed) == (80, 0)


def test_weighted_statistic_equals_the_fit_on_repeated_rows(data):
    dm = design_matrix(
        data["a"].to_numpy(bool), data, categorical=CATEGORICAL, continuous=CONTINUOUS
    )
    stat = standardised_difference_statistic(data["y"].to_numpy(bool), dm)
    w = next(resampling.resampling_weights(data["patient"].to_numpy(), n_resamples=1, seed=3))
    rep = data.loc[data.index.repeat(w[0].astype(int))].reset_index(drop=True)
    assert stat(w)[0] == pytest.approx(_fit(rep).difference, rel=1e-9)


def test_swapping_the_groups_flips_the_difference_and_inverts_the_odds_ratio(data):
    r = _fit(data)
    s = _fit(data.assign(a=~data["a"]))
    assert s.difference == pytest.approx(-r.difference, rel=1e-9)
    assert s.odds_ratio == pytest.approx(1 / r.odds_ratio, rel=1e-9)
    assert s.difference_se == pytest.approx(r.difference_se, rel=1e-9)


def test_without_covariates_the_standardised_difference_is_the_crude_one(data):
    r = _fit(data, categorical=[], continuous=[])
    assert r.difference == pytest.approx(r.crude_difference, rel=1e-9)
    assert r.risk_index == pytest.approx(61 / 75, rel=1e-9)
    assert r.covariates == "none"


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        pytest.param(lambda d: d.assign(y=d["a"]), "no maximum-likelihood", id="separation"),
        pytest.param(lambda d: d.assign(a=True), "no rows", id="one-group"),
        pytest.param(lambda d: d.assign(y=True), "every one of the 160 rows", id="all-events"),
        pytest.param(lambda d: d.assign(age=70), "rank-deficient", id="constant-covariate"),
    ],
)
def test_inestimable_comparisons_raise(data, edit, match):
    with pytest.raises(EstimationError, match=match):
        _fit(edit(data))


def test_bad_inputs_are_named(data):
    with pytest.raises(StudyvalError, match="missing value"):
        _fit(data.assign(age=data["age"].where(data.index > 0)))
    with pytest.raises(StudyvalError, match="must be numeric"):
        _fit(data, continuous=["sex"])
    with pytest.raises(StudyvalError, match="boolean"):
        standardised_comparison(data["y"].to_numpy(bool), data["a"].astype(int), data)


def test_a_declared_level_without_rows_is_named(data):
    d = data.assign(
        region=pd.Categorical(
            ["chest"] * 80 + ["abdomen_pelvis"] * 80,
            ["chest", "abdomen_pelvis", "chest_abdomen_pelvis"],
        )
    )
    assert _fit(d).dropped_levels == "region: chest_abdomen_pelvis"
