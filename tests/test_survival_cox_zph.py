"""Tests for studyval.analysis.cox_zph: the proportional-hazards test (as ``cox.zph``).

Oracles
-------
* R 4.2.2 with survival 3.5-3: ``cox.zph`` (chi-squares per covariate and global, for
  the ``km``, ``rank`` and ``identity`` transforms; the scaled Schoenfeld
  residuals ``z$y`` and times ``z$x``) on ``coxph`` fits with Efron and Breslow
  ties, with and without strata; the smooth of ``plot.cox.zph`` (its body without the
  drawing, pasted beside the expected values). Scalars are pasted beside the R call that
  produced them. R is a development oracle only; nothing here runs R.

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

The fits converge to 1e-12 here while R stops at its default 1e-9, so the
chi-squares are compared to ``REL_FIT`` = 1e-6 relative (the residuals to 1e-5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.cox import cox
from studyval.analysis.cox_zph import ZPHResult, cox_zph, zph_smooth
from studyval.errors import StatisticalWarning, StudyvalError

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
# cox.zph
# =========================================================================== #
ZPH_LUNG = [
    # f as in COX_LUNG; cox.zph(f, transform = tr)$table[, "chisq"]   (age, sex, ph.ecog, GLOBAL)
    pytest.param(
        "efron",
        "km",
        [0.18798767365229005, 2.3054372274049735, 2.0542487740544062, 4.4636575887586147],
        id="efron-km",
    ),
    pytest.param(
        "efron",
        "rank",
        [0.11729150699015248, 2.0446946802356694, 2.544878392625574, 4.7106801412887682],
        id="efron-rank",
    ),
    pytest.param(
        "efron",
        "identity",
        [0.15235031725392031, 2.4919132171065668, 1.5782352383767626, 4.1193829514794782],
        id="efron-identity",
    ),
    pytest.param(
        "breslow",
        "km",
        [0.18808566115433495, 2.2971973549338056, 2.0517086117404637, 4.4510123337692953],
        id="breslow-km",
    ),
    pytest.param(
        "breslow",
        "rank",
        [0.11768973760127405, 2.0363214289968741, 2.5414104756538367, 4.6969177601550847],
        id="breslow-rank",
    ),
    pytest.param(
        "breslow",
        "identity",
        [0.15214913429209084, 2.4846004873513303, 1.5772581716958467, 4.1097342369287935],
        id="breslow-identity",
    ),
]


@pytest.mark.parametrize(("ties_", "transform", "chisq"), ZPH_LUNG)
def test_cox_zph_against_r_lung(lungcc, ties_, transform, chisq):
    f = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    z = cox_zph(f, transform=transform, data=lungcc)
    assert isinstance(z, ZPHResult)
    assert z.to_frame().term.tolist() == ["age", "sex", "ph.ecog", "GLOBAL"]
    close(z.to_frame().chisq, chisq, rel=REL_FIT)
    assert z.to_frame().df.tolist() == [1, 1, 1, 3]
    assert z.global_chisq == z.to_frame().chisq.iloc[-1]


@pytest.mark.parametrize(
    ("ties_", "y1", "y3", "ylast"),
    [
        # z <- cox.zph(f); z$y[1, ]; z$y[3, ]; z$y[nrow(z$y), ]; z$x[1:3] = 0, 0.004405286343612369 (x2)
        pytest.param(
            "efron",
            [0.059655251537313235, 3.0058950037255063, -2.2292645718606714],
            [0.28519769775925169, -1.5981262258729818, -2.5603138790765634],
            [-0.0538106111197591, -1.4082486161865355, -0.58187342849312684],
            id="efron",
        ),
        pytest.param(
            "breslow",
            [0.059760669898863847, 3.0064155449448009, -2.2292549331716751],
            [0.28436457062518961, -1.5883334689961268, -2.559817904039916],
            [-0.053790522327245585, -1.4083286919860707, -0.58209380112565645],
            id="breslow",
        ),
    ],
)
def test_cox_zph_scaled_residuals_against_r(lungcc, ties_, y1, y3, ylast):
    f = cox(
        lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"], ties=ties_
    )
    res = cox_zph(f, data=lungcc).residuals
    assert res.shape[0] == f.n_events
    close(res.g_time.to_numpy()[:3], [0, 0.004405286343612369, 0.004405286343612369])
    cols = ["age", "sex", "ph.ecog"]
    close(res[cols].to_numpy()[0], y1, rel=1e-5)
    close(res[cols].to_numpy()[2], y3, rel=1e-5)
    close(res[cols].to_numpy()[-1], ylast, rel=1e-5)


@pytest.mark.parametrize(
    ("ties_", "strata", "transform", "chisq"),
    [
        # cox.zph(coxph(Surv(time, status) ~ age + ph.ecog + strata(sex), data = lungcc))$table[, "chisq"]
        pytest.param(
            "efron",
            "sex",
            "km",
            [0.13347072386267109, 2.1824006894795942, 2.2004789020799436],
            id="lung-strata",
        ),
    ],
)
def test_cox_zph_stratified_lung(lungcc, ties_, strata, transform, chisq):
    f = cox(
        lungcc,
        duration="time",
        event="status",
        covariates=["age", "ph.ecog"],
        strata=strata,
        ties=ties_,
    )
    z = cox_zph(f, transform=transform, data=lungcc)
    close(z.to_frame().chisq, chisq, rel=REL_FIT)
    # z$y[1, ] = 0.12180430491928404, 1.897680727160219
    close(
        z.residuals[["age", "ph.ecog"]].to_numpy()[0],
        [0.12180430491928404, 1.897680727160219],
        rel=1e-5,
    )
    assert "strata" in z.residuals.columns


@pytest.mark.parametrize(
    ("ties_", "strata", "transform", "chisq"),
    [
        # cox.zph(coxph(Surv(time, status) ~ x1 + x2, data = ties, ties = tt), transform = tr)$table[, "chisq"]
        pytest.param(
            "efron",
            None,
            "km",
            [0.1582169407616987, 0.31837415330575258, 0.5544402522720997],
            id="efron",
        ),
        pytest.param(
            "breslow",
            None,
            "km",
            [0.23583936970124575, 0.42018954074950504, 0.7536738310977743],
            id="breslow",
        ),
        # ... + strata(stratum)
        pytest.param(
            "efron",
            "stratum",
            "km",
            [0.061159217334961345, 0.72858569422370401, 0.8533156290403574],
            id="strata-efron-km",
        ),
        pytest.param(
            "efron",
            "stratum",
            "rank",
            [0.064216376384890236, 0.72693332030204116, 0.85647291147999904],
            id="strata-efron-rank",
        ),
        pytest.param(
            "breslow",
            "stratum",
            "km",
            [0.12367688691492522, 0.86871372398283553, 1.0740837810705757],
            id="strata-breslow-km",
        ),
        pytest.param(
            "breslow",
            "stratum",
            "rank",
            [0.12610762497074085, 0.869125788212746, 1.0786843517801583],
            id="strata-breslow-rank",
        ),
    ],
)
def test_cox_zph_against_r_heavy_ties(ties, ties_, strata, transform, chisq):
    f = cox(
        ties, duration="time", event="status", covariates=["x1", "x2"], strata=strata, ties=ties_
    )
    z = cox_zph(f, transform=transform, data=ties)
    close(z.to_frame().chisq, chisq, rel=REL_FIT)


def test_cox_zph_warns_on_unconverged_fit(lungcc):
    with pytest.warns(StatisticalWarning, match="no convergence"):
        f = cox(lungcc, duration="time", event="status", covariates=["age", "sex"], max_iter=1)
    with pytest.warns(StatisticalWarning, match="did not converge"):
        cox_zph(f, data=lungcc)


def test_cox_zph_errors(lungcc):
    f = cox(lungcc, duration="time", event="status", covariates=["age", "sex"])
    with pytest.raises(StudyvalError, match="pass the data the model was fitted on"):
        cox_zph(f, data=lungcc.iloc[:-1])
    with pytest.raises(StudyvalError, match="reproduce the fit"):
        cox_zph(f, data=lungcc.assign(age=lungcc["age"] + lungcc["sex"]))
    with pytest.raises(StudyvalError, match="did you mean 'rank'"):
        cox_zph(f, transform="ranks", data=lungcc)
    with pytest.raises(StudyvalError, match="must be a CoxResult"):
        cox_zph("fit", data=lungcc)


# =========================================================================== #
# zph_smooth: the smooth of plot.cox.zph
# =========================================================================== #
# R: the body of survival:::plot.cox.zph without the drawing, for z <- cox.zph(f, transform = tr):
#   xx <- z$x; yy <- z$y; pred.x <- seq(min(xx), max(xx), length = 40)
#   lmat <- splines::ns(c(pred.x, xx), df = 4, intercept = TRUE)
#   pmat <- lmat[1:40, ]; xmat <- lmat[-(1:40), ]
#   for each term i: qmat <- qr(xmat); yhat <- pmat %*% qr.coef(qmat, yy[, i])
#     bk <- backsolve(qmat$qr[1:4, 1:4], diag(4)); xtx <- bk %*% t(bk)
#     seval <- ((pmat %*% xtx) * pmat) %*% rep(1, 4)
#     se <- sqrt(z$var[i, i] * seval)          # R draws yhat +- 2 * se
#   printed at grid points idx <- c(1, 2, 13, 27, 40) with sprintf("%.17g", ...)
ZPH_SMOOTH = [
    pytest.param(
        "lung",
        "km",
        {
            "age": (
                [
                    0,
                    0.023912227189254898,
                    0.28694672627105877,
                    0.62171790692062734,
                    0.93257686038094101,
                ],
                [
                    0.10119549718723603,
                    0.083293390527565292,
                    -0.036858549843565389,
                    0.040128373186105709,
                    -0.015232617661639896,
                ],
                [
                    0.029884228848335321,
                    0.025750706190633802,
                    0.016610696926611487,
                    0.017902655446198866,
                    0.037031442810917595,
                ],
            ),
            "sex": (
                None,
                [
                    -1.0074646677449857,
                    -0.96517795322798583,
                    -0.61803598037390939,
                    -0.42391745504731665,
                    0.1974431237979058,
                ],
                [
                    0.54090104159308117,
                    0.46608476567890789,
                    0.30065166863730647,
                    0.32403596650513639,
                    0.67026477710953958,
                ],
            ),
            "ph.ecog": (
                None,
                [
                    0.086114650077915161,
                    0.21539501905215053,
                    0.92805398166516828,
                    -0.065024761436524733,
                    0.70750567846278356,
                ],
                [
                    0.36624781278564311,
                    0.31558919816432557,
                    0.20357331116327418,
                    0.21940697996597489,
                    0.45384088719929266,
                ],
            ),
        },
        id="lung-efron-km",
    ),
    pytest.param(
        "lung",
        "identity",
        {
            "age": (
                [5, 27.512820512820515, 275.15384615384619, 590.33333333333337, 883],
                [
                    0.10315995921270012,
                    0.079927577671628044,
                    -0.014037091037137031,
                    0.041444673517162689,
                    -0.066458343119785324,
                ],
                [
                    0.030262827479749965,
                    0.024939153025790074,
                    0.013312158609894426,
                    0.018850762953571146,
                    0.055329320494551124,
                ],
            ),
            "sex": (
                None,
                [
                    -1.0177009783396955,
                    -0.96009401098053271,
                    -0.54686290319092523,
                    -0.19161924659148455,
                    0.43230685082112252,
                ],
                [
                    0.54775363247361519,
                    0.45139574845848907,
                    0.24094851148703142,
                    0.34119660132969715,
                    1.0014542198169258,
                ],
            ),
            "ph.ecog": (
                None,
                [
                    0.1701807383092469,
                    0.30317773658999475,
                    0.55605400829524843,
                    -0.0074506944702600053,
                    1.1414402851446697,
                ],
                [
                    0.370887749167571,
                    0.30564316364920574,
                    0.16314789312694578,
                    0.23102656374787625,
                    0.67809153506646402,
                ],
            ),
        },
        id="lung-efron-identity",
    ),
    pytest.param(
        # f <- coxph(Surv(time, status) ~ x1 + x2 + strata(stratum), data = ties); transform = "rank"
        "ties",
        "rank",
        {
            "x1": (
                [1.5, 11.576923076923077, 122.42307692307692, 263.5, 394.5],
                [
                    0.22784040088018509,
                    0.28634380696419726,
                    0.7145504385331205,
                    0.47304834236163928,
                    0.71425444514703207,
                ],
                [
                    0.20555686879231283,
                    0.17800319188858008,
                    0.11345153041666764,
                    0.11229771489752316,
                    0.24219371260860384,
                ],
            ),
            "x2": (
                None,
                [
                    0.084618125171965264,
                    0.0020187493537709433,
                    -0.6214959901079089,
                    -0.39042295324141635,
                    -0.83947044964438988,
                ],
                [
                    0.39967384272977302,
                    0.34609993885514223,
                    0.22058912159737562,
                    0.21834570406991927,
                    0.47090857324292407,
                ],
            ),
        },
        id="ties-strata-rank",
    ),
]


@pytest.mark.parametrize(("data", "transform", "expected"), ZPH_SMOOTH)
def test_zph_smooth_against_plot_cox_zph(lungcc, ties, data, transform, expected):
    if data == "lung":
        fit = cox(lungcc, duration="time", event="status", covariates=["age", "sex", "ph.ecog"])
        z = cox_zph(fit, transform=transform, data=lungcc)
    else:
        fit = cox(ties, duration="time", event="status", covariates=["x1", "x2"], strata="stratum")
        z = cox_zph(fit, transform=transform, data=ties)
    sm = zph_smooth(z, alpha=0.05)
    tab = sm.to_frame()
    assert list(tab.columns) == ["term", "time", "g_time", "fit", "se", "ci_low", "ci_high", "coef"]
    idx = [0, 1, 12, 26, 39]
    for term, (x, fit_r, se_r) in expected.items():
        rows = tab[tab["term"] == term].reset_index(drop=True)
        assert len(rows) == 40
        if x is not None:
            close(rows["g_time"].to_numpy()[idx], x)
        # residuals agree with R to 1e-5 (REL_FIT fits), so do their smooths
        close(rows["fit"].to_numpy()[idx], fit_r, rel=1e-5, abs_=1e-7)
        close(rows["se"].to_numpy()[idx], se_r, rel=1e-5)
        # R draws +- 2 se; the level here is the plan's (1.96 at alpha = 0.05)
        close(rows["ci_high"] - rows["fit"], 1.959963984540054 * rows["se"], rel=1e-12)
        assert (rows["coef"] == fit.coef[list(fit.covariates).index(term)]).all()


def test_zph_smooth_grid_time_and_options(lungcc):
    fit = cox(lungcc, duration="time", event="status", covariates=["age", "sex"])
    z = cox_zph(fit, data=lungcc)
    tab = zph_smooth(z, df=3, n_points=25, alpha=0.1).to_frame()
    assert tab.groupby("term").size().to_dict() == {"age": 25, "sex": 25}
    # the grid's follow-up times run from the first to the last event, never backwards
    age = tab[tab["term"] == "age"]
    assert age["time"].iloc[0] == z.residuals["time"].min()
    assert age["time"].iloc[-1] == z.residuals["time"].max()
    assert np.all(np.diff(age["time"]) >= 0)
    close(age["ci_high"] - age["fit"], 1.6448536269514722 * age["se"], rel=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"df": 1}, "df must be a whole number >= 2", id="df"),
        pytest.param({"n_points": 1}, "n_points must be a whole number >= 2", id="points"),
        pytest.param({"alpha": 1.5}, "alpha", id="alpha"),
    ],
)
def test_zph_smooth_rejects_bad_options(lungcc, kwargs, match):
    fit = cox(lungcc, duration="time", event="status", covariates=["age"])
    z = cox_zph(fit, data=lungcc)
    with pytest.raises(StudyvalError, match=match):
        zph_smooth(z, **kwargs)


def test_zph_smooth_rejects_what_is_not_a_zph_result():
    with pytest.raises(StudyvalError, match="zph must be a ZPHResult"):
        zph_smooth(pd.DataFrame())


def test_zph_smooth_warns_and_skips_a_singular_term():
    # three distinct event times cannot carry a 4-df spline (R: "spline fit is singular")
    d = pd.DataFrame(
        {"time": [1, 1, 2, 2, 3, 3, 4, 5, 6, 7.0], "event": [1, 1, 1, 1, 1, 1, 0, 0, 0, 0],
         "x": [0.1, 0.5, 0.2, 0.9, 0.4, 0.3, 0.8, 0.6, 0.7, 0.0]}
    )  # fmt: skip
    z = cox_zph(cox(d, duration="time", event="event", covariates=["x"]), data=d)
    with pytest.warns(StatisticalWarning, match="spline fit is singular for x"):
        sm = zph_smooth(z)
    assert sm.skipped == ("x",)
    assert sm.to_frame().empty
