r"""Bland-Altman agreement between two methods of measurement.

* :func:`bland_altman` -- bias and limits of agreement between two methods
  (Bland & Altman 1986, 1999), with interval estimates of each limit, a
  proportional-bias regression, and the Bland & Altman (2007) analysis for
  several measurement pairs per patient (``clusters=``, with a patient-level
  cluster bootstrap). Formulas in :class:`BlandAltmanResult`.

:func:`bland_altman` takes plain arrays, validates them (unequal lengths,
missing or non-finite values are errors that name the position), and returns
a frozen :class:`~studyval.results.Result`. Figures are drawn from the tables
this result returns (:mod:`studyval.figures.agreement`), never here.

Oracles: base R (``mean``, ``sd``, ``qt``, ``lm``, ``aov``) and the published
values of Bland & Altman (1986); see ``tests/test_bland_altman.py``. Part of
:mod:`studyval.analysis.agreement` (the facade).
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha, check_option, check_scores
from studyval.analysis._checks import z_critical as _z
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "BlandAltmanResult",
    "bland_altman",
]

# =========================================================================== Bland-Altman


@dataclasses.dataclass(frozen=True)
class BlandAltmanResult(Result):
    r"""Bias and limits of agreement between two methods of measurement.

    With differences :math:`d_i = a_i - b_i` and means :math:`m_i = (a_i +
    b_i)/2` of :math:`n` measurement pairs, bias :math:`\bar d`, standard
    deviation :math:`s` (divisor :math:`n - 1`) and :math:`z = \Phi^{-1}(1 -
    (1 - c)/2)` for limits meant to cover a proportion :math:`c` of differences
    (:math:`z = 1.959964` for :math:`c = 0.95`), the limits of agreement are
    :math:`\bar d \pm z s` (Bland & Altman 1986, Lancet 327:307-310,
    doi:10.1016/S0140-6736(86)90837-8; 1999, Stat Methods Med Res 8:135-160,
    doi:10.1177/096228029900800204).

    Intervals (level :math:`1 - \alpha`):

    * bias: :math:`\bar d \pm t_{1-\alpha/2,\,n-1}\, s/\sqrt n`;
    * limits, ``ci_method="approximate"``: :math:`\bar d \pm z s \pm
      t_{1-\alpha/2,\,n-1} \sqrt{3 s^2 / n}` (Bland & Altman 1986, 1999; the
      factor 3 approximates :math:`1 + z^2/2` for :math:`z \approx 2`);
    * limits, ``ci_method="exact"``: :math:`\bar d + s\, t'_{q}/\sqrt n` for
      the upper limit with :math:`t'_q` the :math:`q = \alpha/2, 1-\alpha/2`
      quantiles of the noncentral :math:`t` distribution with :math:`n - 1`
      degrees of freedom and noncentrality :math:`z\sqrt n`, mirrored for the
      lower limit (Carkeet 2015, Optom Vis Sci 92:e71-e80,
      doi:10.1097/OPX.0000000000000513); exact under normally distributed
      differences;
    * ``ci_method="bootstrap"`` (several pairs per patient): cluster-bootstrap
      BCa intervals of bias and limits (see :func:`bland_altman`).

    Proportional bias: least-squares regression of :math:`d` on :math:`m`
    (Bland & Altman 1999, §3.2); ``slope`` and its two-sided p-value for
    :math:`H_0`: slope = 0 (t with :math:`n - 2` df; with clusters, a
    cluster-robust standard error and t with :math:`G - 1` df).

    :meth:`to_frame` is the tidy table (one row per quantity: bias, limits,
    slope); :meth:`summary_frame` the one-row table of the scalar fields;
    :meth:`points_frame` the per-pair plot coordinates.

    Attributes
    ----------
    n : int
        Measurement pairs.
    n_clusters : int
        Patients (equal to ``n`` without clusters).
    bias, bias_se, bias_ci_low, bias_ci_high : float
        Mean difference (a - b), its standard error and interval.
    bias_p_value : float
        Paired t test of bias = 0 (NaN with clusters: use the interval).
    sd : float
        Standard deviation of the differences (with clusters, the total SD
        :math:`\sqrt{\sigma^2_b + \sigma^2_w}` of Bland & Altman 2007).
    sd_between, sd_within : float
        With clusters, the between- and within-patient SDs of the differences;
        NaN without clusters.
    loa_coverage, loa_z : float
        Intended coverage :math:`c` of the limits and the normal quantile :math:`z`.
    lower_loa, upper_loa : float
        :math:`\bar d \mp z s`.
    lower_loa_ci_low, lower_loa_ci_high, upper_loa_ci_low, upper_loa_ci_high : float
        Confidence limits of each limit of agreement.
    lower_loa_se, upper_loa_se : float
        Standard errors of the limits: :math:`\sqrt{3 s^2/n}` (both) for
        ``"approximate"``, bootstrap SEs for ``"bootstrap"``, NaN for ``"exact"``.
    ci_level : float
        :math:`1 - \alpha`.
    ci_method : str
        ``"approximate"``, ``"exact"`` or ``"bootstrap"``.
    method : str
        ``"paired"`` (one pair per patient) or ``"repeated pairs (Bland-Altman 2007)"``.
    slope, slope_se, slope_p_value, intercept : float
        Regression of difference on mean.
    n_resamples : int or None
        Bootstrap resamples (None without clusters).
    seed : int or None
        Bootstrap seed (None without clusters).
    mean, difference : tuple of float
        Per-pair :math:`m_i` and :math:`d_i` (see :meth:`points_frame`).
    clusters : tuple or None
        Per-pair patient id, if given.

    """

    n: int
    n_clusters: int
    bias: float
    bias_se: float
    bias_ci_low: float
    bias_ci_high: float
    bias_p_value: float
    sd: float
    sd_between: float
    sd_within: float
    loa_coverage: float
    loa_z: float
    lower_loa: float
    upper_loa: float
    lower_loa_ci_low: float
    lower_loa_ci_high: float
    upper_loa_ci_low: float
    upper_loa_ci_high: float
    lower_loa_se: float
    upper_loa_se: float
    ci_level: float
    ci_method: str
    method: str
    slope: float
    slope_se: float
    slope_p_value: float
    intercept: float
    n_resamples: int | None
    seed: int | None
    mean: tuple[float, ...] = dataclasses.field(repr=False)
    difference: tuple[float, ...] = dataclasses.field(repr=False)
    clusters: tuple[Any, ...] | None = dataclasses.field(default=None, repr=False)

    def to_frame(self) -> pd.DataFrame:
        """Tidy summary: bias, limits of agreement and proportional-bias slope.

        Returns
        -------
        pandas.DataFrame
            One row per ``quantity`` (``bias``, ``lower_loa``, ``upper_loa``,
            ``slope``) with columns ``quantity, estimate, se, ci_low, ci_high,
            p_value, ci_level, ci_method, loa_coverage, n, n_clusters``. The
            slope row has a t interval (cluster-robust with clusters).

        """
        if self.n_clusters < self.n:
            t_slope = stats.t.ppf(0.5 + self.ci_level / 2.0, self.n_clusters - 1)
        else:
            t_slope = stats.t.ppf(0.5 + self.ci_level / 2.0, self.n - 2)
        rows = [
            (
                "bias",
                self.bias,
                self.bias_se,
                self.bias_ci_low,
                self.bias_ci_high,
                self.bias_p_value,
            ),
            (
                "lower_loa",
                self.lower_loa,
                self.lower_loa_se,
                self.lower_loa_ci_low,
                self.lower_loa_ci_high,
                math.nan,
            ),
            (
                "upper_loa",
                self.upper_loa,
                self.upper_loa_se,
                self.upper_loa_ci_low,
                self.upper_loa_ci_high,
                math.nan,
            ),
            (
                "slope",
                self.slope,
                self.slope_se,
                self.slope - t_slope * self.slope_se,
                self.slope + t_slope * self.slope_se,
                self.slope_p_value,
            ),
        ]
        frame = pd.DataFrame(
            rows, columns=["quantity", "estimate", "se", "ci_low", "ci_high", "p_value"]
        )
        frame["ci_level"] = self.ci_level
        frame["ci_method"] = [self.ci_method, self.ci_method, self.ci_method, "t"]
        frame["loa_coverage"] = self.loa_coverage
        frame["n"] = self.n
        frame["n_clusters"] = self.n_clusters
        return frame

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (per-pair arrays left out)."""
        return Result.to_frame(self)

    def points_frame(self) -> pd.DataFrame:
        """Per-pair coordinates of the Bland-Altman plot.

        Returns
        -------
        pandas.DataFrame
            Columns ``mean, difference`` (and ``cluster`` when clusters were
            given), one row per pair in input order.

        """
        frame = pd.DataFrame({"mean": self.mean, "difference": self.difference})
        if self.clusters is not None:
            frame["cluster"] = list(self.clusters)
        return frame


def _check_pairs(method_a: Any, method_b: Any) -> tuple[np.ndarray, np.ndarray]:
    a = check_scores(method_a, None, name="method_a")
    b = check_scores(method_b, None, name="method_b")
    if a.shape[0] != b.shape[0]:
        raise StudyvalError(
            f"method_a has {a.shape[0]} values but method_b has {b.shape[0]}; "
            "both must measure the same cases in the same order"
        )
    if a.shape[0] < 3:
        raise EstimationError(
            f"Bland-Altman analysis needs at least 3 measurement pairs, got {a.shape[0]}"
        )
    return a, b


def _proportional_bias(
    d: np.ndarray, m: np.ndarray, groups: np.ndarray | None
) -> tuple[float, float, float, float]:
    """Slope, its SE and p-value, and intercept of the regression of d on m."""
    sxx = float(((m - m.mean()) ** 2).sum())
    if not sxx > 0.0:
        warnings.warn(
            "all pair means are equal, so the regression of difference on mean (proportional "
            "bias) is undefined; slope, its SE and p-value are NaN",
            StatisticalWarning,
            stacklevel=3,
        )
        return math.nan, math.nan, math.nan, math.nan
    if groups is None:
        fit = stats.linregress(m, d)
        return float(fit.slope), float(fit.stderr), float(fit.pvalue), float(fit.intercept)
    # OLS with the cluster-robust (CR1) sandwich variance, t with G - 1 df: what
    # statsmodels' OLS(...).fit(cov_type="cluster", use_t=True) reports.
    x = np.column_stack([np.ones_like(m), m])
    xtx_inv = np.linalg.inv(x.T @ x)
    beta = xtx_inv @ (x.T @ d)
    resid = d - x @ beta
    g = int(groups.max()) + 1
    scores = np.zeros((g, 2))
    np.add.at(scores, groups, x * resid[:, None])
    n_obs = d.size
    factor = g / (g - 1.0) * (n_obs - 1.0) / (n_obs - 2.0)
    cov = factor * xtx_inv @ (scores.T @ scores) @ xtx_inv
    se = math.sqrt(cov[1, 1])
    p_value = float(2.0 * stats.t.sf(abs(beta[1] / se), g - 1)) if se > 0 else math.nan
    return float(beta[1]), se, p_value, float(beta[0])


def _repeated_pairs_statistic(d: np.ndarray, codes: np.ndarray, z: float):
    """Vectorised Bland & Altman (2007) bias and limits for weight rows (b, N)."""
    g = int(codes.max()) + 1
    first = np.zeros(g, dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.size)[::-1]  # first row of each cluster
    m_c = np.bincount(codes, minlength=g).astype(np.float64)
    sum_c = np.bincount(codes, weights=d, minlength=g)
    mean_c = sum_c / m_c
    ss_c = np.bincount(codes, weights=(d - mean_c[codes]) ** 2, minlength=g)

    def statistic(weights: np.ndarray) -> np.ndarray:
        u = np.take(weights, first, axis=1)  # (b, G): times each patient was drawn
        n_sub = u.sum(axis=1)
        n_obs = u @ m_c
        with np.errstate(invalid="ignore", divide="ignore"):
            dbar = (u @ sum_c) / n_obs
            ssb = u @ (m_c * mean_c**2) - n_obs * dbar**2
            ssw = u @ ss_c
            msb = ssb / (n_sub - 1.0)
            msw = ssw / (n_obs - n_sub)
            divisor = (n_obs**2 - u @ (m_c**2)) / ((n_sub - 1.0) * n_obs)
            var_b = np.maximum((msb - msw) / divisor, 0.0)
            sd = np.sqrt(var_b + msw)
        return np.column_stack(
            [dbar, dbar - z * sd, dbar + z * sd, sd, np.sqrt(var_b), np.sqrt(msw)]
        )

    return statistic


def bland_altman(
    method_a: Any,
    method_b: Any,
    *,
    alpha: float = 0.05,
    loa_coverage: float | None = None,
    ci_method: str | None = None,
    clusters: Any = None,
    n_resamples: int = 2000,
    seed: int | None = None,
) -> BlandAltmanResult:
    r"""Bland-Altman analysis: bias, limits of agreement with intervals, proportional bias.

    Parameters
    ----------
    method_a, method_b : array-like of float, shape (n,)
        The same quantity measured by the two methods on the same cases (in
        the same order), e.g. vertebral height in mm by the model and by a
        radiologist. Differences are ``method_a - method_b``; finite values only.
    alpha : float
        One minus the confidence level of every interval.
    loa_coverage : float, optional
        Proportion of differences the limits of agreement should contain;
        the limits are :math:`\bar d \pm z s` with :math:`z = \Phi^{-1}(1 - (1 -
        c)/2)`. Default ``1 - alpha`` (0.95: :math:`z = 1.959964`, the
        "1.96" of Bland & Altman).
    ci_method : {"approximate", "exact", "bootstrap"}, optional
        Interval for the limits. Without clusters: ``"approximate"``
        (default; Bland & Altman's :math:`\sqrt{3 s^2/n}`) or ``"exact"``
        (Carkeet 2015, noncentral t). With clusters only ``"bootstrap"``
        (the default then).
    clusters : array-like, shape (n,), optional
        Patient id of each pair when patients contribute several pairs (e.g.
        several vertebrae, or repeated scans). Switches to the Bland & Altman
        (2007) analysis for repeated pairs where the true value varies:
        bias :math:`\bar d` is the mean of all :math:`N` differences, and the
        SD of a single difference combines the between-patient variance
        :math:`\sigma^2_b` and the within-patient variance :math:`\sigma^2_w`
        from a one-way ANOVA of the differences on patient,

        .. math::

            \hat\sigma^2_w = \mathrm{MS}_w, \qquad
            \hat\sigma^2_b = \max\!\left(0, \frac{\mathrm{MS}_b - \mathrm{MS}_w}
                {(N^2 - \sum_i m_i^2)/((G - 1) N)}\right), \qquad
            s = \sqrt{\hat\sigma^2_b + \hat\sigma^2_w},

        with :math:`m_i` pairs from patient :math:`i` and :math:`G` patients
        (Bland & Altman 2007, J Biopharm Stat 17:571-582,
        doi:10.1080/10543400701329422). Intervals for bias and limits come
        from a cluster bootstrap (BCa, resampling patients) of this same
        estimator, using :func:`studyval.analysis.resampling.bootstrap_many`;
        Bland & Altman (2007) give no closed-form interval for the limits.
    n_resamples : int
        Bootstrap resamples (clusters only).
    seed : int, optional
        Bootstrap seed; required with clusters.

    Returns
    -------
    BlandAltmanResult
        ``result.to_frame()`` is the tidy summary; ``result.points_frame()`` the
        plot coordinates. Formulas in :class:`BlandAltmanResult`.

    Raises
    ------
    StudyvalError
        Unequal lengths, a non-finite value, an invalid option (``ci_method``
        not allowed for the design, ``seed`` missing with clusters), or bad
        ``clusters``.
    EstimationError
        Fewer than 3 pairs; with clusters, fewer than 2 patients or no patient
        with 2 or more pairs (then every patient has one pair: leave out
        ``clusters``).

    Warns
    -----
    StatisticalWarning
        All pair means are equal (proportional-bias regression undefined).

    Notes
    -----
    Ignoring the clustering of several pairs per patient makes the limits too
    narrow when the bias differs between patients (Bland & Altman 2007); the
    clustered analysis reduces to the paired one when each patient has one
    pair, which is why that case is refused rather than silently switched.

    """
    alpha = check_alpha(alpha)
    coverage = 1.0 - alpha if loa_coverage is None else float(loa_coverage)
    if not 0.0 < coverage < 1.0:
        raise StudyvalError(f"loa_coverage must be in (0, 1), got {coverage}")
    z = _z(1.0 - coverage)
    a, b = _check_pairs(method_a, method_b)
    d = a - b
    m = (a + b) / 2.0
    n = d.size
    t_crit = float(stats.t.ppf(1.0 - alpha / 2.0, n - 1))

    if clusters is None:
        ci_method = check_option(
            "approximate" if ci_method is None else ci_method, ("approximate", "exact"), "ci_method"
        )
        bias = float(d.mean())
        sd = float(d.std(ddof=1))
        bias_se = sd / math.sqrt(n)
        bias_p = float(2.0 * stats.t.sf(abs(bias / bias_se), n - 1)) if bias_se > 0 else math.nan
        lower, upper = bias - z * sd, bias + z * sd
        if ci_method == "approximate":
            loa_se = math.sqrt(3.0 * sd**2 / n)
            lo_ci = (lower - t_crit * loa_se, lower + t_crit * loa_se)
            up_ci = (upper - t_crit * loa_se, upper + t_crit * loa_se)
        else:
            loa_se = math.nan
            q_lo, q_hi = stats.nct.ppf([alpha / 2.0, 1.0 - alpha / 2.0], n - 1, z * math.sqrt(n))
            up_ci = (bias + sd * q_lo / math.sqrt(n), bias + sd * q_hi / math.sqrt(n))
            lo_ci = (bias - sd * q_hi / math.sqrt(n), bias - sd * q_lo / math.sqrt(n))
        slope, slope_se, slope_p, intercept = _proportional_bias(d, m, None)
        return BlandAltmanResult(
            n=n,
            n_clusters=n,
            bias=bias,
            bias_se=bias_se,
            bias_ci_low=bias - t_crit * bias_se,
            bias_ci_high=bias + t_crit * bias_se,
            bias_p_value=bias_p,
            sd=sd,
            sd_between=math.nan,
            sd_within=math.nan,
            loa_coverage=coverage,
            loa_z=z,
            lower_loa=lower,
            upper_loa=upper,
            lower_loa_ci_low=float(lo_ci[0]),
            lower_loa_ci_high=float(lo_ci[1]),
            upper_loa_ci_low=float(up_ci[0]),
            upper_loa_ci_high=float(up_ci[1]),
            lower_loa_se=loa_se,
            upper_loa_se=loa_se,
            ci_level=1.0 - alpha,
            ci_method=ci_method,
            method="paired",
            slope=slope,
            slope_se=slope_se,
            slope_p_value=slope_p,
            intercept=intercept,
            n_resamples=None,
            seed=None,
            mean=tuple(m.tolist()),
            difference=tuple(d.tolist()),
            clusters=None,
        )

    from studyval.analysis.resampling import bootstrap_many

    if ci_method not in (None, "bootstrap"):
        raise StudyvalError(
            f"with clusters, ci_method must be 'bootstrap' (got {ci_method!r}): the approximate "
            "and exact intervals assume one independent pair per patient"
        )
    if seed is None:
        raise StudyvalError(
            "seed= is required with clusters: the intervals come from a cluster bootstrap and "
            "must be reproducible"
        )
    ids = np.asarray(clusters, dtype=object)
    if ids.ndim != 1 or ids.shape[0] != n:
        raise StudyvalError(
            f"clusters must give one patient id per pair: expected {n} ids, got shape {ids.shape}"
        )
    missing = pd.isna(ids)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise StudyvalError(f"clusters has a missing patient id at position {i}")
    try:
        codes, uniques = pd.factorize(ids, sort=True)
    except TypeError as err:
        raise StudyvalError("cluster ids must be of one sortable type") from err
    g = len(uniques)
    if g < 2:
        raise EstimationError("Bland-Altman with clusters needs at least 2 patients, got 1")
    if g == n:
        raise EstimationError(
            "every patient contributes exactly one pair, so there is no within-patient variation "
            "to separate; call bland_altman without clusters"
        )
    codes = np.asarray(codes, dtype=np.intp)
    statistic = _repeated_pairs_statistic(d, codes, z)
    est = statistic(np.ones((1, n)))[0]
    boot = bootstrap_many(
        lambda w: statistic(w)[:, :3],
        names=["bias", "lower_loa", "upper_loa"],
        n_rows=n,
        clusters=codes,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method="bca",
    )
    slope, slope_se, slope_p, intercept = _proportional_bias(d, m, codes)
    bias_b, lower_b, upper_b = boot["bias"], boot["lower_loa"], boot["upper_loa"]
    return BlandAltmanResult(
        n=n,
        n_clusters=g,
        bias=float(est[0]),
        bias_se=bias_b.se,
        bias_ci_low=bias_b.ci_low,
        bias_ci_high=bias_b.ci_high,
        bias_p_value=math.nan,
        sd=float(est[3]),
        sd_between=float(est[4]),
        sd_within=float(est[5]),
        loa_coverage=coverage,
        loa_z=z,
        lower_loa=float(est[1]),
        upper_loa=float(est[2]),
        lower_loa_ci_low=lower_b.ci_low,
        lower_loa_ci_high=lower_b.ci_high,
        upper_loa_ci_low=upper_b.ci_low,
        upper_loa_ci_high=upper_b.ci_high,
        lower_loa_se=lower_b.se,
        upper_loa_se=upper_b.se,
        ci_level=1.0 - alpha,
        ci_method="bootstrap",
        method="repeated pairs (Bland-Altman 2007)",
        slope=slope,
        slope_se=slope_se,
        slope_p_value=slope_p,
        intercept=intercept,
        n_resamples=boot.n_resamples,
        seed=boot.seed,
        mean=tuple(m.tolist()),
        difference=tuple(d.tolist()),
        clusters=tuple(v.item() if isinstance(v, np.generic) else v for v in ids.tolist()),
    )
