r"""Tests for binomial proportions: one proportion against a baseline, two independent proportions.

:func:`binomial_test`
    Exact test of :math:`H_0: p = p_0` with the Clopper-Pearson interval, as R's
    ``binom.test`` (same two-sided p-value rule, same one-sided intervals).
:func:`two_proportions`
    Difference :math:`p_1 - p_2` of two independent proportions with Newcombe's
    hybrid score interval (1998a, method 10), tested by Fisher's exact test or
    the Pearson chi-square (score) test, as R's ``fisher.test`` and
    ``prop.test``.
:func:`historical_and_concurrent`
    A rate against a historical, fixed baseline (exact binomial test) and
    against the study's concurrent control group (two-sample test), side by
    side, with whether the two decisions agree.
:func:`clustered_difference`
    The difference of two proportions when a patient contributes several rows,
    possibly to both groups, with a patient-cluster bootstrap CI
    (:mod:`studyval.analysis.resampling`).

References
----------
Clopper CJ, Pearson ES (1934). Biometrika 26:404-413. doi:10.1093/biomet/26.4.404

Newcombe RG (1998a). Interval estimation for the difference between independent
proportions: comparison of eleven methods. Stat Med 17:873-890.
doi:10.1002/(SICI)1097-0258(19980430)17:8<873::AID-SIM779>3.0.CO;2-I

Fagerland MW, Lydersen S, Laake P (2017). Statistical Analysis of Contingency
Tables. Chapman & Hall/CRC, chapter 4.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import special, stats

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option
from .proportions import _as_count, _check_counts, proportion_ci
from .resampling import BootstrapResult, bootstrap, weighted_proportion

__all__ = [
    "ALTERNATIVES",
    "BinomialTestResult",
    "HistoricalConcurrentResult",
    "TwoProportionResult",
    "binomial_test",
    "binomial_two_sided_p_values",
    "clustered_difference",
    "historical_and_concurrent",
    "newcombe_difference_ci",
    "two_proportions",
]

#: Accepted values of ``alternative``.
ALTERNATIVES: tuple[str, ...] = ("two-sided", "greater", "less")
#: Accepted values of ``test`` in :func:`two_proportions`.
TWO_SAMPLE_TESTS: tuple[str, ...] = ("fisher", "score", "score-cc")

#: Relative tolerance R's binom.test and fisher.test use when comparing probabilities.
_REL_ERR = 1.0 + 1e-7


def _check_p0(p0: float, name: str = "p0") -> float:
    p0 = float(p0)
    if not 0.0 < p0 < 1.0 or not math.isfinite(p0):
        raise StudyvalError(f"{name} must lie strictly between 0 and 1, got {p0}")
    return p0


@dataclasses.dataclass(frozen=True)
class BinomialTestResult(Result):
    r"""Exact binomial test of one proportion against a fixed value.

    Attributes
    ----------
    estimate : float
        :math:`\hat p = x/n`.
    null_value : float
        :math:`p_0` (e.g. the published baseline rate).
    alternative : str
        ``two-sided``, ``greater`` (:math:`p > p_0`) or ``less``.
    p_value : float
        Exact p-value (see :func:`binomial_test`).
    ci_low, ci_high : float
        Clopper-Pearson limits; one-sided (the other limit 0 or 1) for a
        one-sided alternative, as in R.
    ci_level : float
        :math:`1 - \alpha`.
    numerator, denominator : int
        :math:`x` and :math:`n`.
    method : str
        Test and interval, in words.

    """

    estimate: float
    null_value: float
    alternative: str
    p_value: float
    ci_low: float
    ci_high: float
    ci_level: float
    numerator: int
    denominator: int
    method: str


def binomial_two_sided_p_values(n: int, p0: float) -> np.ndarray:
    r"""Two-sided exact p-values of ``binom.test`` for every :math:`x = 0, \dots, n` at once.

    The p-value of :math:`x` is the total probability of the outcomes no more
    likely than :math:`x` under :math:`H_0`:
    :math:`\sum_{y:\, f(y) \le f(x)(1 + 10^{-7})} f(y)` with
    :math:`f` the Binomial(:math:`n, p_0`) probability function (R's rule,
    including its relative tolerance), capped at 1.

    Returns
    -------
    numpy.ndarray, shape (n + 1,)

    """
    n = _as_count(n, "n")
    p0 = _check_p0(p0)
    x = np.arange(n + 1)
    f = stats.binom.pmf(x, n, p0)
    order = np.argsort(f, kind="stable")
    f_sorted = f[order]
    cum = np.cumsum(f_sorted)
    # number of outcomes with probability <= f(x) * relErr
    k = np.searchsorted(f_sorted, f * _REL_ERR, side="right")
    p = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
    # R returns exactly 1 when x equals the mean n * p0
    p = np.where(x == n * p0, 1.0, p)
    return np.minimum(1.0, p)


def binomial_test(
    successes: int,
    n: int,
    *,
    p0: float,
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> BinomialTestResult:
    r"""Exact binomial test of :math:`H_0: p = p_0` with the Clopper-Pearson interval.

    Parameters
    ----------
    successes : int
        :math:`x`, e.g. VCF-positive scans that the pathway identified.
    n : int
        :math:`n`, e.g. VCF-positive scans (reference standard).
    p0 : float
        The null value, strictly between 0 and 1 (e.g. the baseline 0.77).
    alternative : {"two-sided", "greater", "less"}
        ``greater`` tests :math:`p > p_0`.
    alpha : float
        The interval has level :math:`1 - \alpha`.

    Returns
    -------
    BinomialTestResult

    Notes
    -----
    With :math:`X \sim \mathrm{Bin}(n, p_0)`: ``greater``
    :math:`P(X \ge x)`; ``less`` :math:`P(X \le x)`; two-sided as
    :func:`binomial_two_sided_p_values`. The interval is
    :math:`[B(\alpha/2; x, n-x+1),\, B(1-\alpha/2; x+1, n-x)]` for a two-sided
    alternative, and :math:`[B(\alpha; x, n-x+1), 1]` or
    :math:`[0, B(1-\alpha; x+1, n-x)]` for ``greater`` / ``less``, exactly
    as R's ``binom.test(x, n, p = p0, alternative = ...)``.

    """
    alternative = check_option(alternative, ALTERNATIVES, "alternative")
    alpha = check_alpha(alpha)
    p0 = _check_p0(p0)
    x = _as_count(successes, "successes")
    m = _as_count(n, "n")
    _check_counts(np.array([x]), np.array([m]))
    if alternative == "greater":
        p = float(stats.binom.sf(x - 1, m, p0))
        low = 0.0 if x == 0 else float(special.betaincinv(x, m - x + 1, alpha))
        high = 1.0
    elif alternative == "less":
        p = float(stats.binom.cdf(x, m, p0))
        low = 0.0
        high = 1.0 if x == m else float(special.betaincinv(x + 1, m - x, 1.0 - alpha))
    else:
        p = float(binomial_two_sided_p_values(m, p0)[x])
        ci = proportion_ci(x, m, alpha=alpha, method="clopper-pearson")
        low, high = ci.ci_low, ci.ci_high
    return BinomialTestResult(
        estimate=x / m,
        null_value=p0,
        alternative=alternative,
        p_value=min(1.0, p),
        ci_low=low,
        ci_high=high,
        ci_level=1.0 - alpha,
        numerator=x,
        denominator=m,
        method="exact binomial test, Clopper-Pearson interval",
    )


# ----------------------------------------------------------------------------- two proportions


@dataclasses.dataclass(frozen=True)
class TwoProportionResult(Result):
    r"""Difference of two independent proportions, :math:`p_1 - p_2`.

    Attributes
    ----------
    difference : float
        :math:`\hat p_1 - \hat p_2`.
    ci_low, ci_high : float
        Newcombe's hybrid score interval (method 10), two-sided.
    ci_level : float
    ci_method : str
    p1, p2 : float
        The two proportions.
    x1, n1, x2, n2 : int
        Their counts.
    test : str
        ``fisher`` (exact conditional), ``score`` (Pearson chi-square) or
        ``score-cc`` (with Yates' continuity correction).
    alternative : str
        ``two-sided``, ``greater`` (:math:`p_1 > p_2`) or ``less``.
    statistic : float
        Chi-square statistic (df 1) for the score tests; NaN for Fisher.
    p_value : float

    """

    difference: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    p1: float
    p2: float
    x1: int
    n1: int
    x2: int
    n2: int
    test: str
    alternative: str
    statistic: float
    p_value: float


def newcombe_difference_ci(
    x1: int, n1: int, x2: int, n2: int, *, alpha: float = 0.05
) -> tuple[float, float]:
    r"""Newcombe's (1998a) hybrid score interval for :math:`p_1 - p_2` (method 10).

    With :math:`(l_i, u_i)` the Wilson score limits of :math:`\hat p_i`:

    .. math::

        L = \hat p_1 - \hat p_2 - \sqrt{(\hat p_1 - l_1)^2 + (u_2 - \hat p_2)^2},\quad
        U = \hat p_1 - \hat p_2 + \sqrt{(u_1 - \hat p_1)^2 + (\hat p_2 - l_2)^2}.

    """
    alpha = check_alpha(alpha)
    r1 = proportion_ci(x1, n1, alpha=alpha, method="wilson")
    r2 = proportion_ci(x2, n2, alpha=alpha, method="wilson")
    d = r1.estimate - r2.estimate
    low = d - math.sqrt((r1.estimate - r1.ci_low) ** 2 + (r2.ci_high - r2.estimate) ** 2)
    high = d + math.sqrt((r1.ci_high - r1.estimate) ** 2 + (r2.estimate - r2.ci_low) ** 2)
    return max(-1.0, low), min(1.0, high)


def two_proportions(
    x1: int,
    n1: int,
    x2: int,
    n2: int,
    *,
    test: str = "fisher",
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> TwoProportionResult:
    r"""Compare two independent proportions: difference, Newcombe CI and a test.

    Parameters
    ----------
    x1, n1 : int
        Successes and trials of group 1 (e.g. the prospective, AI-assisted period).
    x2, n2 : int
        Successes and trials of group 2 (e.g. the retrospective period).
    test : {"fisher", "score", "score-cc"}
        ``fisher``: Fisher's exact test (R ``fisher.test`` on
        ``matrix(c(x1, n1 - x1, x2, n2 - x2), 2, byrow = TRUE)``);
        ``score``: Pearson chi-square, R ``prop.test(c(x1, x2), c(n1, n2),
        correct = FALSE)``; ``score-cc``: the same with Yates' correction
        (``correct = TRUE``).
    alternative : {"two-sided", "greater", "less"}
        ``greater`` tests :math:`p_1 > p_2`.
    alpha : float
        Level of the (always two-sided) Newcombe interval is :math:`1-\alpha`.

    Notes
    -----
    Score test: with :math:`\bar p = (x_1 + x_2)/(n_1 + n_2)`,
    :math:`X^2 = (|\hat p_1 - \hat p_2| - c)^2 / \{\bar p(1-\bar p)(1/n_1 + 1/n_2)\}`,
    :math:`c = 0` or, with the correction, :math:`\min\{(1/n_1 + 1/n_2)/2,\,
    |\hat p_1 - \hat p_2|\}` (R's rule). One-sided p-values use
    :math:`z = \operatorname{sign}(\hat p_1 - \hat p_2)\sqrt{X^2}`.
    The interval is :func:`newcombe_difference_ci`.

    Raises
    ------
    EstimationError
        A zero denominator, or a score test with both groups all successes or
        all failures (the statistic is 0/0).

    """
    test = check_option(test, TWO_SAMPLE_TESTS, "test")
    alternative = check_option(alternative, ALTERNATIVES, "alternative")
    alpha = check_alpha(alpha)
    counts = [_as_count(v, k) for v, k in ((x1, "x1"), (n1, "n1"), (x2, "x2"), (n2, "n2"))]
    x1, n1, x2, n2 = counts
    _check_counts(np.array([x1, x2]), np.array([n1, n2]))
    p1, p2 = x1 / n1, x2 / n2
    low, high = newcombe_difference_ci(x1, n1, x2, n2, alpha=alpha)
    if test == "fisher":
        table = [[x1, n1 - x1], [x2, n2 - x2]]
        stat = float("nan")
        p = float(stats.fisher_exact(table, alternative=alternative).pvalue)
    else:
        pbar = (x1 + x2) / (n1 + n2)
        if pbar in (0.0, 1.0):
            raise EstimationError(
                "the score test is undefined when both groups are all successes or all failures "
                f"(x1={x1}/{n1}, x2={x2}/{n2}); use test='fisher'"
            )
        diff = abs(p1 - p2)
        c = min(0.5 * (1 / n1 + 1 / n2), diff) if test == "score-cc" else 0.0
        stat = (diff - c) ** 2 / (pbar * (1 - pbar) * (1 / n1 + 1 / n2))
        if alternative == "two-sided":
            p = float(stats.chi2.sf(stat, 1))
        else:
            z = math.copysign(math.sqrt(stat), p1 - p2)
            p = float(stats.norm.sf(z) if alternative == "greater" else stats.norm.cdf(z))
    return TwoProportionResult(
        difference=p1 - p2,
        ci_low=low,
        ci_high=high,
        ci_level=1.0 - alpha,
        ci_method="Newcombe hybrid score (1998, method 10)",
        p1=p1,
        p2=p2,
        x1=x1,
        n1=n1,
        x2=x2,
        n2=n2,
        test=test,
        alternative=alternative,
        statistic=stat,
        p_value=min(1.0, p),
    )


# ----------------------------------------------------------------------------- historical and concurrent


@dataclasses.dataclass(frozen=True)
class HistoricalConcurrentResult(Result):
    r"""One rate tested against a historical, fixed baseline and against a concurrent control group.

    Attributes
    ----------
    estimate : float
        :math:`\hat p = x/n` of the group evaluated (e.g. the AI-assisted period).
    numerator, denominator : int
        :math:`x` and :math:`n`.
    historical_value : float
        The fixed baseline :math:`p_0` (e.g. a registry's 77 %), taken as known without error.
    historical_p_value : float
        Exact binomial test of :math:`p = p_0` (:func:`binomial_test`).
    historical_reject : bool
        ``historical_p_value <= alpha``.
    control_estimate : float
        :math:`\hat p_c = x_c/n_c` of the concurrent control group (e.g. the
        study's own standard-care period).
    control_numerator, control_denominator : int
    control_vs_historical_p_value : float
        Exact binomial test of the control group against :math:`p_0`: a small
        value says the study's own control does not reproduce the historical baseline.
    difference : float
        :math:`\hat p - \hat p_c`.
    ci_low, ci_high : float
        Newcombe's hybrid score interval of the difference (:func:`two_proportions`).
    ci_level : float
    concurrent_test : str
        The two-sample test (:func:`two_proportions`).
    concurrent_p_value : float
    concurrent_reject : bool
        ``concurrent_p_value <= alpha``.
    agree : bool
        Whether the two comparisons reach the same decision at ``alpha``.
    alternative : str
    alpha : float

    """

    estimate: float
    numerator: int
    denominator: int
    historical_value: float
    historical_p_value: float
    historical_reject: bool
    control_estimate: float
    control_numerator: int
    control_denominator: int
    control_vs_historical_p_value: float
    difference: float
    ci_low: float
    ci_high: float
    ci_level: float
    concurrent_test: str
    concurrent_p_value: float
    concurrent_reject: bool
    agree: bool
    alternative: str
    alpha: float


def historical_and_concurrent(
    x: int,
    n: int,
    *,
    p0: float,
    x_control: int,
    n_control: int,
    test: str = "fisher",
    alternative: str = "two-sided",
    alpha: float = 0.05,
) -> HistoricalConcurrentResult:
    r"""Test a rate against a historical, fixed baseline and against the study's concurrent control.

    A one-sample test against a published rate treats that rate as known
    without error and as valid for this population and period; a control
    group observed in the same study does neither. This function runs both,
    so that a report shows them side by side and states when they disagree.

    Parameters
    ----------
    x, n : int
        Successes and trials of the group evaluated (e.g. VCF-positive scans
        identified, and VCF-positive scans, of the AI-assisted period).
    p0 : float
        The historical baseline, in (0, 1).
    x_control, n_control : int
        Successes and trials of the concurrent control group (e.g. the
        standard-care period of the same study).
    test : {"fisher", "score", "score-cc"}
        Two-sample test of :func:`two_proportions`.
    alternative : {"two-sided", "greater", "less"}
        Of both tests (``greater``: the group evaluated is higher).
    alpha : float
        Level of both decisions and of the intervals.

    Returns
    -------
    HistoricalConcurrentResult

    Notes
    -----
    In R: ``binom.test(x, n, p0)$p.value`` (historical),
    ``binom.test(x_control, n_control, p0)$p.value`` (control against the
    baseline) and ``fisher.test(matrix(c(x, n - x, x_control, n_control -
    x_control), 2, byrow = TRUE))$p.value`` (concurrent).

    Examples
    --------
    >>> r = historical_and_concurrent(188, 214, p0=0.77, x_control=143, n_control=174)
    >>> r.historical_reject, r.concurrent_reject, r.agree
    (True, False, False)

    """
    alpha = check_alpha(alpha)
    hist = binomial_test(x, n, p0=p0, alternative=alternative, alpha=alpha)
    ctrl = binomial_test(x_control, n_control, p0=p0, alternative=alternative, alpha=alpha)
    conc = two_proportions(
        x, n, x_control, n_control, test=test, alternative=alternative, alpha=alpha
    )
    h_rej, c_rej = hist.p_value <= alpha, conc.p_value <= alpha
    return HistoricalConcurrentResult(
        estimate=hist.estimate,
        numerator=hist.numerator,
        denominator=hist.denominator,
        historical_value=hist.null_value,
        historical_p_value=hist.p_value,
        historical_reject=bool(h_rej),
        control_estimate=ctrl.estimate,
        control_numerator=ctrl.numerator,
        control_denominator=ctrl.denominator,
        control_vs_historical_p_value=ctrl.p_value,
        difference=conc.difference,
        ci_low=conc.ci_low,
        ci_high=conc.ci_high,
        ci_level=conc.ci_level,
        concurrent_test=conc.test,
        concurrent_p_value=conc.p_value,
        concurrent_reject=bool(c_rej),
        agree=bool(h_rej == c_rej),
        alternative=alternative,
        alpha=alpha,
    )


def clustered_difference(
    success: Any,
    in_index: Any,
    in_control: Any,
    *,
    clusters: Any,
    n_resamples: int,
    seed: int,
    alpha: float = 0.05,
    method: str = "percentile",
) -> BootstrapResult:
    r"""Difference of two proportions over correlated rows, with a patient-cluster bootstrap CI.

    .. math::

        \hat\delta = \frac{\sum_i [s_i \wedge a_i]}{\sum_i a_i}
                    - \frac{\sum_i [s_i \wedge c_i]}{\sum_i c_i},

    where :math:`a_i` (:math:`c_i`) marks the rows of the index (control)
    group, e.g. VCF-positive scans of the AI-assisted (standard-care) period.
    Each resample draws **patients** with replacement and keeps all their rows
    in both groups (:func:`studyval.analysis.resampling.bootstrap`), so a
    patient scanned more than once, or in both periods, moves as one unit
    (Davison & Hinkley 1997, section 3.8). A resample with an empty group gives
    NaN and is counted as failed by the engine.

    Parameters
    ----------
    success : array-like of bool, shape (n,)
        The event (e.g. the report identified the VCF).
    in_index, in_control : array-like of bool, shape (n,)
        Rows of the index and the control group (disjoint).
    clusters : array-like, shape (n,)
        Patient id of every row.
    n_resamples, seed, alpha, method
        As in :func:`~studyval.analysis.resampling.bootstrap`.

    Returns
    -------
    BootstrapResult
        ``estimate`` is :math:`\hat\delta` on the data.

    Raises
    ------
    StudyvalError
        Masks that are not boolean, of different lengths, or that overlap.

    """
    a, c = np.asarray(in_index), np.asarray(in_control)
    s = np.asarray(success)
    for name, v in (("success", s), ("in_index", a), ("in_control", c)):
        if v.dtype != np.bool_ or v.ndim != 1 or v.shape != s.shape:
            raise StudyvalError(
                f"{name} must be a one-dimensional boolean array of the same length as success"
            )
    if np.any(a & c):
        raise StudyvalError(
            f"in_index and in_control overlap in {int(np.sum(a & c))} row(s); a row belongs to one group"
        )

    def statistic(weights: np.ndarray) -> np.ndarray:
        return weighted_proportion(s, a, weights) - weighted_proportion(s, c, weights)

    return bootstrap(
        statistic,
        n_rows=s.size,
        clusters=clusters,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=method,
    )
