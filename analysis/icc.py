r"""Intraclass correlations from a balanced targets x raters table.

* :func:`icc` -- the six intraclass correlations of Shrout & Fleiss (1979)
  from a two-way ANOVA, with the F-based confidence intervals of
  ``psych::ICC`` (McGraw & Wong 1996 for ICC(A,1)); :class:`ICCResult` holds
  one :class:`ICCForm` per form.

Takes a long table (one row per target and rater), validates it (a missing
rating, an unbalanced design, a duplicate rating are errors that name the
target and rater), and returns a frozen :class:`~studyval.results.Result`.

Oracle: R 4.x with psych 2.2.9 (``ICC(x, lmer = FALSE)``); see
``tests/test_icc.py``. Part of :mod:`studyval.analysis.agreement` (the
facade).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_option
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result, results_frame

__all__ = [
    "ICCForm",
    "ICCResult",
    "icc",
]

# =========================================================================== ICC

_ICC_FORMS = (
    # type, McGraw & Wong (1996) name, description
    ("ICC1", "ICC(1)", "one-way random effects, absolute agreement, single rater"),
    ("ICC2", "ICC(A,1)", "two-way random effects, absolute agreement, single rater"),
    ("ICC3", "ICC(C,1)", "two-way mixed effects, consistency, single rater"),
    ("ICC1k", "ICC(k)", "one-way random effects, absolute agreement, mean of k raters"),
    ("ICC2k", "ICC(A,k)", "two-way random effects, absolute agreement, mean of k raters"),
    ("ICC3k", "ICC(C,k)", "two-way mixed effects, consistency, mean of k raters"),
)


@dataclasses.dataclass(frozen=True)
class ICCForm(Result):
    r"""One of the six Shrout & Fleiss (1979) intraclass correlations.

    Attributes
    ----------
    type : str
        Shrout & Fleiss / ``psych`` name: ``ICC1``, ``ICC2``, ``ICC3``,
        ``ICC1k``, ``ICC2k``, ``ICC3k``.
    mcgraw_wong : str
        McGraw & Wong (1996) name: ``ICC(1)``, ``ICC(A,1)``, ``ICC(C,1)``,
        ``ICC(k)``, ``ICC(A,k)``, ``ICC(C,k)``.
    description : str
        Model, definition and unit in words.
    icc : float
        Point estimate (can be negative when between-target variation is
        smaller than error).
    f, df1, df2, p_value : float
        F test of :math:`H_0`: ICC = 0 (``MSR/MSW`` for the one-way forms,
        ``MSR/MSE`` for the two-way forms; upper tail).
    ci_low, ci_high : float
        F-based confidence limits (see :func:`icc`).
    ci_level : float
        :math:`1 - \alpha`.

    """

    type: str
    mcgraw_wong: str
    description: str
    icc: float
    f: float
    df1: float
    df2: float
    p_value: float
    ci_low: float
    ci_high: float
    ci_level: float


@dataclasses.dataclass(frozen=True)
class ICCResult(Result):
    r"""The six intraclass correlations from one balanced targets x raters table.

    :meth:`to_frame` gives the tidy six-row table; ``result["ICC2"]`` (or
    ``result["ICC(A,1)"]``) one form. :meth:`summary_frame` gives the one-row
    summary of the ANOVA below.

    Attributes
    ----------
    n_targets, n_raters : int
        :math:`n` rated targets (patients, images) and :math:`k` raters.
    ms_targets, ms_raters, ms_error, ms_within : float
        Mean squares MSR (between targets, :math:`n - 1` df), MSC (between
        raters, :math:`k - 1` df), MSE (residual, :math:`(n-1)(k-1)` df) and
        MSW (within targets, one-way, :math:`n(k-1)` df).
    ci_level : float
        :math:`1 - \alpha`.
    forms : tuple of ICCForm
        ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k in that order.

    """

    n_targets: int
    n_raters: int
    ms_targets: float
    ms_raters: float
    ms_error: float
    ms_within: float
    ci_level: float
    forms: tuple[ICCForm, ...] = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per form.

        Returns
        -------
        pandas.DataFrame
            Columns ``type, mcgraw_wong, description, icc, f, df1, df2,
            p_value, ci_low, ci_high, ci_level, n_targets, n_raters``.

        """
        frame = results_frame(list(self.forms))
        frame["n_targets"] = self.n_targets
        frame["n_raters"] = self.n_raters
        return frame

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (counts, mean squares, ``ci_level``)."""
        return Result.to_frame(self)

    def __getitem__(self, name: str) -> ICCForm:
        for form in self.forms:
            if name in (form.type, form.mcgraw_wong):
                return form
        names = [f.type for f in self.forms] + [f.mcgraw_wong for f in self.forms]
        check_option(name, names, "ICC form")
        raise AssertionError  # pragma: no cover - check_option raised


def _ratings_matrix(
    table: pd.DataFrame, targets: str, raters: str, ratings: str
) -> tuple[np.ndarray, list[Any], list[Any]]:
    if not isinstance(table, pd.DataFrame):
        raise StudyvalError(f"table must be a pandas DataFrame, got {type(table).__name__}")
    for role, col in (("targets", targets), ("raters", raters), ("ratings", ratings)):
        if col not in table.columns:
            raise StudyvalError(
                f"{role}={col!r} is not a column of table (columns: {', '.join(map(str, table.columns))})"
            )
    for role, col in (("targets", targets), ("raters", raters)):
        bad = table[col].isna().to_numpy()
        if bad.any():
            raise StudyvalError(
                f"{role} column {col!r} is missing at row {int(np.flatnonzero(bad)[0])}"
            )
    values = pd.to_numeric(table[ratings], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"ratings column {ratings!r} has a missing or non-numeric value for target "
            f"{table[targets].iloc[i]!r}, rater {table[raters].iloc[i]!r} (row {i}): "
            f"{table[ratings].iloc[i]!r}; psych::ICC would switch to a mixed model (lmer) for "
            "incomplete data, which icc() does not do"
        )
    dup = table.duplicated(subset=[targets, raters], keep=False).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise StudyvalError(
            f"target {table[targets].iloc[i]!r} has more than one rating by rater "
            f"{table[raters].iloc[i]!r}; icc() needs exactly one rating per target and rater"
        )
    target_ids = list(pd.unique(table[targets]))
    rater_ids = list(pd.unique(table[raters]))
    wide = (
        pd.DataFrame({"t": table[targets].to_numpy(), "r": table[raters].to_numpy(), "y": values})
        .pivot(index="t", columns="r", values="y")
        .reindex(index=target_ids, columns=rater_ids)
    )
    y = wide.to_numpy(dtype=np.float64)
    missing = np.isnan(y)
    if missing.any():
        i, j = np.argwhere(missing)[0]
        raise StudyvalError(
            f"{int(missing.sum())} rating(s) missing from the targets x raters table; first: "
            f"target {target_ids[i]!r} has no rating by rater {rater_ids[j]!r}. icc() needs balanced "
            "data (psych::ICC would switch to a mixed model, lmer, whose estimates differ)"
        )
    if len(target_ids) < 2:
        raise StudyvalError(f"icc() needs at least two targets, got {len(target_ids)}")
    if len(rater_ids) < 2:
        raise StudyvalError(f"icc() needs at least two raters, got {len(rater_ids)}")
    return y, target_ids, rater_ids


def icc(
    table: pd.DataFrame,
    *,
    targets: str,
    raters: str,
    ratings: str,
    alpha: float = 0.05,
) -> ICCResult:
    r"""Intraclass correlations ICC1 .. ICC3k of Shrout & Fleiss (1979) with F-based intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        Long table, one row per (target, rater) with a numeric rating. Every
        target must be rated exactly once by every rater (balanced design).
    targets, raters, ratings : str
        Column names of the rated object (patient, image), the rater and the
        rating.
    alpha : float
        One minus the confidence level.

    Returns
    -------
    ICCResult
        Tidy six-row table via :meth:`ICCResult.to_frame`.

    Raises
    ------
    StudyvalError
        A column is absent, a rating is missing or non-numeric, a target lacks
        a rating by some rater (named in the message), a (target, rater) pair
        occurs twice, or there are fewer than two targets or raters.
    EstimationError
        The residual mean square is zero (every rater agrees perfectly up to a
        constant), so F and the intervals are undefined.

    Notes
    -----
    With :math:`y_{ij}` the rating of target :math:`i = 1..n` by rater
    :math:`j = 1..k`, the two-way ANOVA gives MSR (targets), MSC (raters), MSE
    (residual) and the one-way within-target mean square
    :math:`\mathrm{MSW} = (\mathrm{SSC} + \mathrm{SSE}) / (n(k-1))`. Then
    (Shrout & Fleiss 1979, Psychol Bull 86:420-428, doi:10.1037/0033-2909.86.2.420;
    McGraw & Wong 1996, Psychol Methods 1:30-46, doi:10.1037/1082-989X.1.1.30)

    .. math::

        \mathrm{ICC1} = \frac{\mathrm{MSR} - \mathrm{MSW}}{\mathrm{MSR} + (k-1)\mathrm{MSW}},\quad
        \mathrm{ICC2} = \frac{\mathrm{MSR} - \mathrm{MSE}}
            {\mathrm{MSR} + (k-1)\mathrm{MSE} + k(\mathrm{MSC} - \mathrm{MSE})/n},\quad
        \mathrm{ICC3} = \frac{\mathrm{MSR} - \mathrm{MSE}}{\mathrm{MSR} + (k-1)\mathrm{MSE}},

    and for the mean of :math:`k` raters
    :math:`\mathrm{ICC1k} = 1 - \mathrm{MSW}/\mathrm{MSR}`,
    :math:`\mathrm{ICC2k} = (\mathrm{MSR} - \mathrm{MSE}) / (\mathrm{MSR} +
    (\mathrm{MSC} - \mathrm{MSE})/n)`, :math:`\mathrm{ICC3k} = 1 -
    \mathrm{MSE}/\mathrm{MSR}`.

    Intervals, exactly as ``psych::ICC``: for ICC1/ICC3 with
    :math:`F = \mathrm{MSR}/\mathrm{MSW}` (resp. MSE) on :math:`(\nu_1, \nu_2)`
    df, :math:`F_L = F / F_{1-\alpha/2}(\nu_1, \nu_2)` and :math:`F_U = F\,
    F_{1-\alpha/2}(\nu_2, \nu_1)` give :math:`[(F_L - 1)/(F_L + k - 1),
    (F_U - 1)/(F_U + k - 1)]` and for the averages :math:`[1 - 1/F_L, 1 -
    1/F_U]`. ICC2 uses the Satterthwaite approximation of McGraw & Wong (1996,
    Table 7) with :math:`v` degrees of freedom,

    .. math::

        L = \frac{n(\mathrm{MSR} - F^* \mathrm{MSE})}
            {F^*[k\,\mathrm{MSC} + (kn - k - n)\mathrm{MSE}] + n\,\mathrm{MSR}},
        \quad F^* = F_{1-\alpha/2}(n - 1, v),

    the upper limit likewise with :math:`F_{1-\alpha/2}(v, n - 1)`, and ICC2k
    is the Spearman-Brown step-up :math:`kL / (1 + (k-1)L)` of those limits.

    Agreement: ``psych::ICC(x, lmer = FALSE)`` to rounding. ``psych``'s default
    ``lmer = TRUE`` estimates the variance components by REML, which equals
    the ANOVA estimates for balanced data unless a component estimate is
    negative (REML truncates it at zero); and with missing ratings it fits a
    mixed model to incomplete data, which this function refuses to do.

    """
    alpha = check_alpha(alpha)
    y, _, _ = _ratings_matrix(table, targets, raters, ratings)
    n, k = y.shape
    grand = y.mean()
    row = y.mean(axis=1)
    col = y.mean(axis=0)
    ss_r = k * float(((row - grand) ** 2).sum())
    ss_c = n * float(((col - grand) ** 2).sum())
    ss_e = float(((y - row[:, None] - col[None, :] + grand) ** 2).sum())
    df_r, df_c, df_e, df_w = n - 1, k - 1, (n - 1) * (k - 1), n * (k - 1)
    msr, msc, mse = ss_r / df_r, ss_c / df_c, ss_e / df_e
    msw = (ss_c + ss_e) / df_w
    ss_t = float(((y - grand) ** 2).sum())
    if ss_e <= 1e-12 * ss_t or ss_t == 0.0:
        raise EstimationError(
            "the residual mean square is zero (every rater's ratings differ from the others' by a "
            "constant), so the F statistics and intervals of the ICC are undefined"
        )
    q = 1.0 - alpha / 2.0

    icc1 = (msr - msw) / (msr + (k - 1) * msw)
    icc2 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icc3 = (msr - mse) / (msr + (k - 1) * mse)
    icc1k = (msr - msw) / msr
    icc2k = (msr - mse) / (msr + (msc - mse) / n)
    icc3k = (msr - mse) / msr

    f1 = msr / msw
    p1 = float(stats.f.sf(f1, df_r, df_w))
    f1l = f1 / stats.f.ppf(q, df_r, df_w)
    f1u = f1 * stats.f.ppf(q, df_w, df_r)
    f3 = msr / mse
    p3 = float(stats.f.sf(f3, df_r, df_e))
    f3l = f3 / stats.f.ppf(q, df_r, df_e)
    f3u = f3 * stats.f.ppf(q, df_e, df_r)

    fj = msc / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    fs_u = stats.f.ppf(q, n - 1, v)
    fs_l = stats.f.ppf(q, v, n - 1)
    l2 = n * (msr - fs_u * mse) / (fs_u * (k * msc + (k * n - k - n) * mse) + n * msr)
    u2 = n * (fs_l * msr - mse) / (k * msc + (k * n - k - n) * mse + n * fs_l * msr)

    values = {
        "ICC1": (icc1, f1, df_r, df_w, p1, (f1l - 1) / (f1l + k - 1), (f1u - 1) / (f1u + k - 1)),
        "ICC2": (icc2, f3, df_r, df_e, p3, l2, u2),
        "ICC3": (icc3, f3, df_r, df_e, p3, (f3l - 1) / (f3l + k - 1), (f3u - 1) / (f3u + k - 1)),
        "ICC1k": (icc1k, f1, df_r, df_w, p1, 1 - 1 / f1l, 1 - 1 / f1u),
        "ICC2k": (
            icc2k,
            f3,
            df_r,
            df_e,
            p3,
            l2 * k / (1 + l2 * (k - 1)),
            u2 * k / (1 + u2 * (k - 1)),
        ),
        "ICC3k": (icc3k, f3, df_r, df_e, p3, 1 - 1 / f3l, 1 - 1 / f3u),
    }
    forms = tuple(
        ICCForm(
            type=name,
            mcgraw_wong=mw,
            description=desc,
            icc=float(values[name][0]),
            f=float(values[name][1]),
            df1=float(values[name][2]),
            df2=float(values[name][3]),
            p_value=float(values[name][4]),
            ci_low=float(values[name][5]),
            ci_high=float(values[name][6]),
            ci_level=1.0 - alpha,
        )
        for name, mw, desc in _ICC_FORMS
    )
    return ICCResult(
        n_targets=n,
        n_raters=k,
        ms_targets=msr,
        ms_raters=msc,
        ms_error=mse,
        ms_within=msw,
        ci_level=1.0 - alpha,
        forms=forms,
    )
