"""MMRM (visit factor, group x visit, unstructured covariance, REML) against nlme 3.1 (R 4.2).

The data (:func:`_data`, numpy ``default_rng(16)``): 40 patients alternating between
groups 0 and 1, visits at 6, 12, 24 and 36 months with monotone dropout and 7%
intermittent missing visits (131 observations),
``y = 30 - 0.1 m - 3 oa - 0.05 m oa + b0 + b1 m + e`` with ``b0 ~ N(0, 2^2)``,
``b1 ~ N(0, 0.08^2)``, ``e ~ N(0, (1.5 + 0.03 m)^2)``, written to ``oracle.csv`` and
fitted once in R (the tests do not call R):

    library(nlme)
    d <- read.csv("oracle.csv")
    d$group <- factor(d$oa, levels = c(0, 1)); d$visit <- factor(d$month, levels = c(6, 12, 24, 36))
    d$visit_index <- as.integer(d$visit)
    ctl <- glsControl(opt = "optim", msTol = 1e-14, msMaxIter = 1000)
    fit <- gls(y ~ group * visit, data = d, correlation = corSymm(form = ~ visit_index | id),
               weights = varIdent(form = ~ 1 | visit), method = "REML", control = ctl)
    coef(fit); sqrt(diag(vcov(fit))); logLik(fit); getVarCov(fit, individual = "p01")
    # the per-visit contrasts are the visit:group coefficients of the same model, re-coded
    fit2 <- update(fit, y ~ 0 + visit + visit:group)
    summary(fit2)$tTable[5:8, ]; intervals(fit2, which = "coef")$coef[5:8, ]

``opt = "optim"`` with a small ``msTol``: nlme's default optimiser (nlminb) stops
2.8e-9 short of the REML maximum here (logLik -298.747334893509 against
-298.747334890703), which moves the coefficients by up to 1e-5 relative along
the flat REML surface; this module's Newton-polished optimum agrees with the
tighter R fit (log-likelihoods within 1e-13 relative).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.mmrm import DF_METHOD, mmrm
from studyval.errors import EstimationError, StudyvalError

VISITS = (6.0, 12.0, 24.0, 36.0)


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(16)
    n = 40
    visits = np.array(VISITS)
    grp = np.tile([0.0, 1.0], n // 2)
    b0 = rng.normal(0, 2.0, n)
    b1 = rng.normal(0, 0.08, n)
    rows = []
    for i in range(n):
        drop = rng.uniform()
        for j, v in enumerate(visits):
            if j > 0 and drop < 0.08 * j:
                break
            if rng.uniform() < 0.07:
                continue
            e = rng.normal(0, 1.5 + 0.03 * v)
            y = 30 - 0.1 * v - 3 * grp[i] - 0.05 * v * grp[i] + b0[i] + b1[i] * v + e
            rows.append((f"p{i:02d}", v, grp[i], round(float(y), 2)))
    return pd.DataFrame(rows, columns=["id", "month", "oa", "y"])


def _fit(data: pd.DataFrame, **kw: object):
    args = dict(
        outcome="y", group="oa", levels=(0.0, 1.0), visit="month", visits=VISITS, subject="id"
    )
    args.update(kw)
    return mmrm(data, **args)


@pytest.fixture(scope="module")
def fit():
    return _fit(_data())


def test_data_are_the_oracle_data():
    d = _data()
    assert len(d) == 131
    assert d.groupby("month").size().tolist() == [38, 31, 33, 29]


def test_coefficients_standard_errors_loglik_against_nlme_gls(fit):
    # coef(fit)
    coef = [
        29.464500000000008,
        -3.871789372392611,
        -0.149638640401686,
        -1.563383189527420,
        -1.712448889679800,
        0.227217668776456,
        -1.259258247537109,
        -2.506500734830431,
    ]
    # sqrt(diag(vcov(fit)))
    se = [
        0.543694489230149,
        0.778257592065065,
        0.652594397143521,
        0.565945242321225,
        0.979784934939920,
        0.915952972759378,
        0.797694891291128,
        1.333637910851665,
    ]
    np.testing.assert_allclose(fit.fixed["estimate"], coef, rtol=1e-6)
    np.testing.assert_allclose(fit.fixed["se"], se, rtol=1e-6)
    # logLik(fit): 'log Lik.' -298.747334890703 (df=18)
    assert fit.reml_loglik == pytest.approx(-298.747334890703, rel=1e-9)
    assert fit.fixed["term"].tolist() == [
        "(Intercept)",
        "oa",
        "month12",
        "month24",
        "month36",
        "oa:month12",
        "oa:month24",
        "oa:month36",
    ]


def test_unstructured_covariance_against_nlme_getvarcov(fit):
    # print(unclass(getVarCov(fit, individual = "p01")), digits = 15)
    r_cov = [
        [5.91207395238466, 3.31806726159208, 5.85148178238654, 5.11098231246561],
        [3.31806726159208, 7.41984917030338, 3.36303657268719, 4.32026466888611],
        [5.85148178238654, 3.36303657268719, 10.91578357503420, 9.43710000663659],
        [5.11098231246561, 4.32026466888611, 9.43710000663659, 17.60860637963027],
    ]
    # 1e-5: R's own optimisers (nlminb, optim) disagree by about 1e-6 in Sigma on this flat surface
    np.testing.assert_allclose(fit.covariance, r_cov, rtol=1e-5)
    np.testing.assert_allclose(np.diag(fit.correlation), 1.0)


def test_per_visit_contrasts_against_nlme_cell_means_coding(fit):
    # summary(fit2)$tTable[5:8, ] and intervals(fit2, which = "coef")$coef[5:8, ]
    #                Value              Std.Error          t-value            p-value
    # visit6:group1  -3.87178937234769  0.778257591515007  -4.97494584641392  2.14512131793542e-06
    # visit12:group1 -3.64457170361268  0.950457942159446  -3.83454284713765  1.99758556584072e-04
    # visit24:group1 -5.13104762007597  1.093790516284104  -4.69106976490114  7.10862946968167e-06
    # visit36:group1 -6.37829010709060  1.480769855014249  -4.30741487982900  3.34373455911246e-05
    #                lower              upper
    # visit6:group1  -5.41230255596002  -2.33127618873535
    # visit12:group1 -5.52594492287724  -1.76319848434811
    # visit24:group1 -7.29613888139689  -2.96595635875506
    # visit36:group1 -9.30938324182579  -3.44719697235542
    t = fit.to_frame()
    assert t["visit"].tolist() == list(VISITS)
    np.testing.assert_allclose(
        t["estimate"],
        [-3.87178937234769, -3.64457170361268, -5.13104762007597, -6.37829010709060],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        t["se"],
        [0.778257591515007, 0.950457942159446, 1.093790516284104, 1.480769855014249],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        t["t"],
        [-4.97494584641392, -3.83454284713765, -4.69106976490114, -4.30741487982900],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        t["p_value"],
        [2.14512131793542e-06, 1.99758556584072e-04, 7.10862946968167e-06, 3.34373455911246e-05],
        rtol=5e-5,
    )  # p moves ~25x the t statistic
    np.testing.assert_allclose(
        t["ci_low"],
        [-5.41230255596002, -5.52594492287724, -7.29613888139689, -9.30938324182579],
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        t["ci_high"],
        [-2.33127618873535, -1.76319848434811, -2.96595635875506, -3.44719697235542],
        rtol=1e-6,
    )
    # residual df as summary.gls: N - p = 131 - 8
    assert (t["df"] == 123).all() and fit.df == 123 and fit.df_method == DF_METHOD
    assert t["ci_level"].eq(0.95).all()


def test_counts_behind_the_contrasts(fit):
    d = _data()
    t = fit.to_frame()
    n = d.groupby(["month", "oa"]).size().unstack()
    assert t["n_reference"].tolist() == n[0.0].tolist()
    assert t["n_comparison"].tolist() == n[1.0].tolist()
    assert (fit.n_obs, fit.n_patients, fit.n_params) == (131, 40, 8)


def test_swapping_levels_flips_the_contrasts(fit):
    swapped = _fit(_data(), levels=(1.0, 0.0))
    np.testing.assert_allclose(
        swapped.to_frame()["estimate"], -fit.to_frame()["estimate"], rtol=1e-6
    )
    np.testing.assert_allclose(swapped.to_frame()["se"], fit.to_frame()["se"], rtol=1e-6)
    assert swapped.reml_loglik == pytest.approx(fit.reml_loglik, rel=1e-10)


def test_rescaling_the_outcome_rescales_the_fit(fit):
    # y in other units: estimates and SEs x 1000, Sigma x 1000^2, log-likelihood - (N - p) log 1000
    big = _fit(_data().assign(y=lambda d: d["y"] * 1000.0))
    np.testing.assert_allclose(big.fixed["estimate"], fit.fixed["estimate"] * 1000.0, rtol=1e-8)
    np.testing.assert_allclose(big.fixed["se"], fit.fixed["se"] * 1000.0, rtol=1e-8)
    np.testing.assert_allclose(big.covariance, fit.covariance * 1e6, rtol=1e-8)
    assert big.reml_loglik == pytest.approx(fit.reml_loglik - 123 * np.log(1000.0), rel=1e-10)


def test_row_order_does_not_matter(fit):
    shuffled = _data().sample(frac=1.0, random_state=3)
    np.testing.assert_allclose(
        _fit(shuffled).to_frame()["estimate"], fit.to_frame()["estimate"], rtol=1e-8
    )


def test_covariance_frame(fit):
    c = fit.covariance_frame()
    assert len(c) == 10
    assert c.loc[(c["visit_1"] == 6.0) & (c["visit_2"] == 6.0), "correlation"].item() == 1.0


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        pytest.param(
            lambda d: d[~((d["oa"] == 1.0) & (d["month"] == 36.0))],
            "no y observation in group oa=1.0 at month 36",
            id="empty-cell",
        ),
        pytest.param(
            lambda d: d[~((d["month"] == 6.0) & d["id"].isin(d.loc[d["month"] == 36.0, "id"]))],
            "no patient has y at both month 6 and 36",
            id="pair-never-observed",
        ),
    ],
)
def test_not_estimable_raises(mutate, match):
    with pytest.raises(EstimationError, match=match):
        _fit(mutate(_data()))


def test_perfectly_correlated_visits_raise():
    # visit 12 = visit 6 + 1 for every patient: the unstructured covariance is singular (the REML
    # optimum on the boundary); whichever check meets it first, no fit is returned
    d = _data()
    six = d[d["month"] == 6.0].set_index("id")["y"]
    d = d[d["id"].isin(six.index)].copy()
    m12 = d["month"] == 12.0
    d.loc[m12, "y"] = six.reindex(d.loc[m12, "id"]).to_numpy() + 1.0
    with pytest.raises(
        EstimationError, match=r"could not be fitted|not positive definite|did not converge"
    ):
        _fit(d)


@pytest.mark.parametrize(
    ("kw", "data", "match"),
    [
        pytest.param({"levels": (0.0, 0.0)}, None, "two different", id="same-levels"),
        pytest.param({"levels": (0.0, 2.0)}, None, "outside levels", id="level-absent"),
        pytest.param({"visits": (6.0, 12.0, 24.0)}, None, "not planned", id="unplanned-visit"),
        pytest.param({"alpha": 1.5}, None, "alpha", id="bad-alpha"),
        pytest.param({"outcome": "vas"}, None, "not in the data", id="missing-column"),
        pytest.param(
            {},
            lambda d: d.assign(y=d["y"].where(d.index != 3)),
            "missing values",
            id="missing-value",
        ),
        pytest.param(
            {}, lambda d: pd.concat([d, d.iloc[[0]]]), "more than one row", id="duplicate-visit"
        ),
        pytest.param(
            {},
            lambda d: d.assign(oa=np.where(d.index == 0, 1.0 - d["oa"], d["oa"])),
            "varies within",
            id="group-varies",
        ),
    ],
)
def test_bad_inputs_raise(kw, data, match):
    d = _data() if data is None else data(_data())
    with pytest.raises(StudyvalError, match=match):
        _fit(d, **kw)


# ----------------------------------------------------------------------------- the msk-aging step


def _msk_names_mmrm() -> bool:
    from studyval.plan import load_plan, requested_steps

    return "mmrm" in {name for _, name in requested_steps(load_plan("msk-aging"))}


@pytest.mark.skipif(
    not _msk_names_mmrm(), reason="the msk-aging plan does not name mmrm yet (plan 1.x, issue 16)"
)
def test_msk_aging_mmrm_uses_the_patients_and_visits_of_the_mixed_model(rendered_bundle):
    # the session's rendered msk-aging bundle (shared with tests/test_protocol_msk_aging.py)
    bundle = rendered_bundle("msk-aging")

    def table(name: str) -> pd.DataFrame:
        return pd.read_parquet(bundle / "tables" / f"{name}.parquet")

    mm, lmm, followed = table("lmm_mmrm"), table("lmm"), table("lmm_followed")
    cov, delta = table("lmm_mmrm_covariance"), table("lmm_delta")
    for outcome, part in mm.groupby("outcome"):
        assert part["month"].tolist() == [6, 12, 24, 36]
        f = followed[(followed["outcome"] == outcome) & (followed["grouping"] == "predicted")]
        n = f.pivot_table(index="month", columns="oa", values="n_followed")
        assert part["n_no_oa"].tolist() == n["no OA"].tolist()
        assert part["n_oa"].tolist() == n["OA"].tolist()
        # the same observations as the random-intercept model; residual df N - p, p = 8
        assert (part["n_obs"] == lmm.loc[lmm["outcome"] == outcome, "n_obs"].iloc[0]).all()
        assert (part["df"] == part["n_obs"] - 8).all()
        # a 4 x 4 covariance, positive variances, correlations in (-1, 1)
        c = cov[cov["outcome"] == outcome]
        assert len(c) == 10 and (c.loc[c["month_1"] == c["month_2"], "covariance"] > 0).all()
        assert c.loc[c["month_1"] != c["month_2"], "correlation"].abs().lt(1).all()
        # the synthetic scores follow a random-intercept model (no MNAR): the MMRM difference at the
        # last visit and the random-intercept model's (lmm_delta at delta 0) agree within 2 SE
        last = part.iloc[-1]
        mar = delta[(delta["outcome"] == outcome) & (delta["delta"] == 0.0)].iloc[0]
        assert abs(last["estimate"] - mar["estimate"]) < 2 * last["se"]
