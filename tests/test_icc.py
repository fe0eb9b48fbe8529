"""Tests for studyval.analysis.icc: the six intraclass correlations (as ``psych::ICC``).

Oracles
-------
* R 4.x with psych 2.2.9: ``psych::ICC(x, lmer = FALSE)``. The exact R call
  sits beside each expected value, printed with ``sprintf("%.17g", ...)``.
  R is a development oracle only; nothing here runs R.
* Published values: Shrout & Fleiss (1979) Table 4 ICCs.

Deliberate deviations from psych (documented in the module):
* ICC: ``psych::ICC``'s default ``lmer = TRUE`` uses REML variance components;
  we match ``lmer = FALSE`` (identical to REML unless a component estimate is
  negative, and lmer agrees to ~1e-6 here); missing ratings are an error.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from studyval.analysis.icc import ICCResult, icc
from studyval.errors import EstimationError, StudyvalError

REL = 1e-9  # the requirement is 1e-6; observed agreement is ~1e-15

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
# Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges (?psych::ICC).
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
# 12 targets x 3 raters, generated once with numpy (seed 20240611) and rounded.
RND = np.array([
    [49.6, 48.0, 44.5], [41.4, 46.0, 45.8], [53.8, 54.4, 50.3], [33.1, 38.8, 32.2],
    [53.0, 54.2, 53.8], [48.0, 54.0, 45.2], [46.5, 47.4, 48.3], [44.9, 55.9, 46.7],
    [31.8, 36.8, 28.9], [45.1, 49.7, 46.8], [38.4, 44.0, 42.7], [52.9, 53.8, 52.3],
])  # fmt: skip


def _long(y: np.ndarray) -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame(
        [(f"S{i + 1}", f"J{j + 1}", y[i, j]) for i in range(n) for j in range(k)],
        columns=["target", "rater", "rating"],
    )


def _icc(y: np.ndarray, **kw) -> ICCResult:
    return icc(_long(y), targets="target", raters="rater", ratings="rating", **kw)


# =========================================================================== ICC

# ICC(sf, lmer = FALSE)$results[i, c("ICC","F","df1","df2","p","lower bound","upper bound")]
SF_PSYCH = {
    "ICC1": (0.16574176840547555, 1.794678492239469, 5, 18, 0.16476880834463961,
             -0.13293232487475087, 0.72256006232812109),
    "ICC2": (0.28976377952755922, 11.027247956403272, 5, 15, 0.00013456651648433693,
             0.018786513374712047, 0.7610843696489531),
    "ICC3": (0.71484071484071487, 11.027247956403272, 5, 15, 0.00013456651648433693,
             0.34246476503392537, 0.94585825995535955),
    "ICC1k": (0.44279713367926893, 1.794678492239469, 5, 18, 0.16476880834463961,
              -0.88444215523811898, 0.91241542034077561),
    "ICC2k": (0.62005054759898925, 11.027247956403272, 5, 15, 0.00013456651648433693,
              0.071136815302503487, 0.92723204016772198),
    "ICC3k": (0.90931554237706946, 11.027247956403272, 5, 15, 0.00013456651648433693,
              0.67567471381630473, 0.98589167816906231),
}  # fmt: skip
# y <- matrix(c(49.6, 48.0, 44.5, ...), ncol=3, byrow=TRUE)   (RND above)
# ICC(y, lmer = FALSE)$results[i, 2:8]
RND_PSYCH = {
    "ICC1": (0.81417048939633818, 14.14382984841637, 11, 24, 6.136661672188406e-08,
             0.59830453123493366, 0.93599531065321107),
    "ICC2": (0.81898297365063788, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
             0.49159477303736449, 0.94414973525626733),
    "ICC3": (0.88797116449600844, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
             0.73595311113372963, 0.96306284715553991),
    "ICC1k": (0.92929779199005513, 14.14382984841637, 11, 24, 6.136661672188406e-08,
              0.81712928548450947, 0.9777141718806609),
    "ICC2k": (0.93138007466148354, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
              0.74364264476438602, 0.98066327078825311),
    "ICC3k": (0.95964295283300394, 24.778819814592367, 11, 22, 7.2830213349198683e-10,
              0.89318086321896861, 0.98737677164167192),
}  # fmt: skip
# ICC(y, lmer = FALSE, alpha = 0.1)$results[i, 7:8]
RND_PSYCH_90 = {
    "ICC1": (0.6420776326747174, 0.92288091988153764),
    "ICC2": (0.56146844256660733, 0.93144574070780395),
    "ICC3": (0.76871968008750624, 0.95527216462980713),
    "ICC1k": (0.84330208512750693, 0.97290037450045963),
    "ICC2k": (0.7934316556915092, 0.97605418866303006),
    "ICC3k": (0.9088528681542396, 0.98463248440487738),
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(SF, SF_PSYCH, id="shrout-fleiss-1979"),
        pytest.param(RND, RND_PSYCH, id="random-12x3"),
    ],
)
def test_icc_against_psych(data, expected):
    table = _icc(data).to_frame().set_index("type")
    for name, values in expected.items():
        row = table.loc[name]
        got = (row.icc, row.f, row.df1, row.df2, row.p_value, row.ci_low, row.ci_high)
        assert got == pytest.approx(values, rel=REL), name


def test_icc_alpha_against_psych():
    table = _icc(RND, alpha=0.1).to_frame().set_index("type")
    for name, ci in RND_PSYCH_90.items():
        assert (table.loc[name, "ci_low"], table.loc[name, "ci_high"]) == pytest.approx(ci, rel=REL)
    assert np.allclose(table["ci_level"], 0.9)


def test_icc_shrout_fleiss_published_table_4():
    # Shrout & Fleiss (1979) Table 4: .17, .29, .71, .44, .62, .91
    r = _icc(SF)
    got = [round(r[name].icc, 2) for name in ("ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k")]
    assert got == [0.17, 0.29, 0.71, 0.44, 0.62, 0.91]


def test_icc_lmer_path_differs_only_slightly():
    """psych's default lmer = TRUE (REML) agrees with the ANOVA here to ~1e-6 (deviation documented)."""
    # ICC(y)$results[2, 2]   (lmer = TRUE)
    assert _icc(RND)["ICC2"].icc == pytest.approx(0.81898340042035889, rel=1e-5)


def test_icc_result_structure_and_lookup():
    r = _icc(SF)
    table = r.to_frame()
    assert list(table["type"]) == ["ICC1", "ICC2", "ICC3", "ICC1k", "ICC2k", "ICC3k"]
    assert list(table["mcgraw_wong"]) == [
        "ICC(1)",
        "ICC(A,1)",
        "ICC(C,1)",
        "ICC(k)",
        "ICC(A,k)",
        "ICC(C,k)",
    ]
    assert {"description", "icc", "f", "df1", "df2", "p_value", "ci_low", "ci_high", "ci_level",
            "n_targets", "n_raters"} <= set(table.columns)  # fmt: skip
    assert r["ICC(A,1)"] is r["ICC2"]
    summary = r.summary_frame()
    assert summary.loc[0, "n_targets"] == 6 and summary.loc[0, "n_raters"] == 4
    # psych's MSW: (SS_J + SS_E) / (n (k - 1)); SF: ms_within = 6.263888...
    assert r.ms_within == pytest.approx(6.263888888888889, rel=1e-12)
    with pytest.raises(StudyvalError, match="did you mean 'ICC3'"):
        r["ICC33"]


def test_icc_row_order_and_labels_do_not_matter():
    table = _long(RND).sample(frac=1.0, random_state=3)
    a = icc(table, targets="target", raters="rater", ratings="rating").to_frame()
    b = _icc(RND).to_frame()
    pd.testing.assert_frame_equal(a, b, rtol=1e-12)


def test_icc_consistency_forms_ignore_rater_offsets():
    shifted = SF + np.array([0.0, 10.0, -3.0, 7.0])
    a, b = _icc(SF), _icc(shifted)
    assert b["ICC3"].icc == pytest.approx(a["ICC3"].icc, rel=1e-12)
    assert b["ICC2"].icc < a["ICC2"].icc  # absolute agreement penalises offsets


def _drop(table: pd.DataFrame, target: str, rater: str) -> pd.DataFrame:
    return table[~((table["target"] == target) & (table["rater"] == rater))]


@pytest.mark.parametrize(
    ("table", "kwargs", "error", "match"),
    [
        pytest.param(
            _drop(_long(SF), "S3", "J2"),
            {},
            StudyvalError,
            "target 'S3' has no rating by rater 'J2'",
            id="missing-cell",
        ),
        pytest.param(
            _long(SF).assign(rating=lambda t: t["rating"].where(t.index != 5)),
            {},
            StudyvalError,
            "missing or non-numeric value for target 'S2', rater 'J2'",
            id="nan-rating",
        ),
        pytest.param(
            pd.concat([_long(SF), _long(SF).iloc[[0]]]),
            {},
            StudyvalError,
            "target 'S1' has more than one rating by rater 'J1'",
            id="duplicate",
        ),
        pytest.param(_long(SF[:1]), {}, StudyvalError, "at least two targets", id="one-target"),
        pytest.param(_long(SF[:, :1]), {}, StudyvalError, "at least two raters", id="one-rater"),
        pytest.param(
            _long(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])),
            {},
            EstimationError,
            "residual mean square is zero",
            id="zero-residual",
        ),
        pytest.param(
            _long(SF).rename(columns={"rating": "score"}),
            {},
            StudyvalError,
            "ratings='rating' is not a column",
            id="absent-column",
        ),
        pytest.param(
            _long(SF).assign(rater=lambda t: t["rater"].where(t.index != 2)),
            {},
            StudyvalError,
            "raters column 'rater' is missing at row 2",
            id="missing-rater-id",
        ),
        pytest.param(
            _long(SF), {"alpha": 0.0}, StudyvalError, r"alpha must be in \(0, 1\)", id="bad-alpha"
        ),
    ],
)
def test_icc_errors(table, kwargs, error, match):
    with pytest.raises(error, match=match):
        icc(table, targets="target", raters="rater", ratings="rating", **kwargs)


def test_icc_needs_a_dataframe():
    with pytest.raises(StudyvalError, match="must be a pandas DataFrame"):
        icc(SF, targets="target", raters="rater", ratings="rating")  # type: ignore[arg-type]
