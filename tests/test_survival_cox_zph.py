"""Tests for studyval.analysis.cox_zph: the proportional-hazards test (as ``cox.zph``).

Oracles
-------
* R 4.2.2 with survival 3.5-3: ``cox.zph`` (chi-squares per covariate and global, for
  the ``km``, ``rank`` and ``identity`` transforms; the scaled Schoenfeld
  residuals ``z$y`` and times ``z$x``) on ``coxph`` fits with Efron and Breslow
  ties, with and without strata. Scalars are pasted beside the R call that
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
from studyval.analysis.cox_zph import ZPHResult, cox_zph
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
    assert z.table.term.tolist() == ["age", "sex", "ph.ecog", "GLOBAL"]
    close(z.table.chisq, chisq, rel=REL_FIT)
    assert z.table.df.tolist() == [1, 1, 1, 3]
    assert z.global_chisq == z.table.chisq.iloc[-1]


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
    close(z.table.chisq, chisq, rel=REL_FIT)
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
    close(z.table.chisq, chisq, rel=REL_FIT)


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
