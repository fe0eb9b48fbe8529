r"""Power and sample size for tests of proportions against a baseline and between two periods.

:func:`exact_binomial_power`
    Exact power of the one-sample exact binomial test (``binom.test``) of
    :math:`H_0: p = p_0` when the true rate is :math:`p_1`.
:func:`exact_binomial_sample_size`
    The smallest :math:`n` reaching a target power, and the smallest beyond
    which the power never falls below it again (exact power is saw-toothed in
    :math:`n`).
:func:`two_proportion_power`
    Normal-approximation power of the two-sided score test of two independent
    proportions with unequal group sizes (equal sizes: R's
    ``power.prop.test``).
:func:`periods_needed`
    Periods (e.g. weeks) of accrual needed to reach a number of events, given
    the volume per period and the prevalence.

References
----------
Chernick MR, Liu CY (2002). The saw-toothed behavior of power versus sample
size and software solutions: single binomial proportion using exact methods.
Am Stat 56:149-155. doi:10.1198/000313002317572835

Fleiss JL, Levin B, Paik MC (2003). Statistical Methods for Rates and
Proportions, 3rd ed. Wiley, section 4.2.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
from scipy import stats

from studyval.errors import StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option
from .binomial_tests import ALTERNATIVES, _check_p0, binomial_two_sided_p_values
from .proportions import _as_count

__all__ = [
    "BinomialPowerResult",
    "BinomialSampleSizeResult",
    "PeriodsResult",
    "TwoProportionPowerResult",
    "exact_binomial_power",
    "exact_binomial_sample_size",
    "periods_needed",
    "two_proportion_power",
]


def _check_power(power: float) -> float:
    power = float(power)
    if not 0.0 < power < 1.0:
        raise StudyvalError(f"power must lie strictly between 0 and 1, got {power}")
    return power


@dataclasses.dataclass(frozen=True)
class BinomialPowerResult(Result):
    r"""Exact power of the one-sample binomial test.

    Attributes
    ----------
    n : int
    p0, p1 : float
        Null and true rates.
    alpha : float
    alternative : str
    power : float
        :math:`P(\text{reject } H_0 \mid p = p_1)`.
    size : float
        Attained significance level :math:`P(\text{reject} \mid p_0) \le \alpha`.
    rejection_region : str
        The values of :math:`x` that reject, in words.

    """

    n: int
    p0: float
    p1: float
    alpha: float
    alternative: str
    power: float
    size: float
    rejection_region: str


def _reject(n: int, p0: float, alpha: float, alternative: str) -> np.ndarray:
    x = np.arange(n + 1)
    if alternative == "greater":
        pv = stats.binom.sf(x - 1, n, p0)
    elif alternative == "less":
        pv = stats.binom.cdf(x, n, p0)
    else:
        pv = binomial_two_sided_p_values(n, p0)
    return pv <= alpha


def _region_text(rej: np.ndarray) -> str:
    xs = np.flatnonzero(rej)
    if xs.size == 0:
        return "none (the test cannot reject at this n)"
    runs, start = [], xs[0]
    for a, b in itertools.pairwise(xs):
        if b != a + 1:
            runs.append((start, a))
            start = b
    runs.append((start, xs[-1]))
    return " or ".join(f"{lo} <= x <= {hi}" if lo != hi else f"x = {lo}" for lo, hi in runs)


def exact_binomial_power(
    n: int, *, p0: float, p1: float, alpha: float = 0.05, alternative: str = "two-sided"
) -> BinomialPowerResult:
    r"""Exact power of ``binom.test`` with :math:`n` trials.

    Parameters
    ----------
    n : int
        Trials (e.g. VCF-positive scans), > 0.
    p0 : float
        Null rate (e.g. the baseline detection rate 0.77).
    p1 : float
        True rate under the alternative (e.g. the target 0.90).
    alpha : float
    alternative : {"two-sided", "greater", "less"}
        As the test that will be run.

    Notes
    -----
    :math:`R = \{x : p(x) \le \alpha\}` with :math:`p(x)` the p-value of
    :func:`studyval.analysis.binomial_tests.binomial_test`;
    power :math:`= \sum_{x \in R} \binom{n}{x} p_1^x (1-p_1)^{n-x}`.
    In R: ``x <- 0:n; pv <- sapply(x, function(k) binom.test(k, n, p0,
    alternative = alt)$p.value); sum(dbinom(x[pv <= alpha], n, p1))``.

    """
    m = _as_count(n, "n")
    if m <= 0:
        raise StudyvalError(f"n must be positive, got {m}")
    alternative = check_option(alternative, ALTERNATIVES, "alternative")
    alpha = check_alpha(alpha)
    p0 = _check_p0(p0)
    p1 = _check_p0(p1, "p1")
    rej = _reject(m, p0, alpha, alternative)
    x = np.arange(m + 1)
    return BinomialPowerResult(
        n=m,
        p0=p0,
        p1=p1,
        alpha=alpha,
        alternative=alternative,
        power=float(stats.binom.pmf(x[rej], m, p1).sum()),
        size=float(stats.binom.pmf(x[rej], m, p0).sum()),
        rejection_region=_region_text(rej),
    )


@dataclasses.dataclass(frozen=True)
class BinomialSampleSizeResult(Result):
    r"""Smallest number of trials for a target exact power.

    Attributes
    ----------
    n_first : int
        Smallest :math:`n` with power :math:`\ge` the target.
    n_stable : int
        Smallest :math:`n` such that every :math:`n' \ge n` up to ``n_max``
        has power :math:`\ge` the target (the saw-tooth-safe choice).
    power_at_n_first, power_at_n_stable : float
    target_power, p0, p1, alpha : float
    alternative : str
    n_max : int

    """

    n_first: int
    n_stable: int
    power_at_n_first: float
    power_at_n_stable: float
    target_power: float
    p0: float
    p1: float
    alpha: float
    alternative: str
    n_max: int


def exact_binomial_sample_size(
    *,
    p0: float,
    p1: float,
    power: float,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    n_max: int = 5000,
) -> BinomialSampleSizeResult:
    """Smallest :math:`n` for which :func:`exact_binomial_power` reaches ``power``.

    Raises
    ------
    StudyvalError
        The target is not reached by ``n_max``.

    """
    power = _check_power(power)
    n_max = _as_count(n_max, "n_max")
    pw = np.array(
        [
            exact_binomial_power(k, p0=p0, p1=p1, alpha=alpha, alternative=alternative).power
            for k in range(1, n_max + 1)
        ]
    )
    ok = pw >= power
    if not ok.any():
        raise StudyvalError(f"power {power} is not reached with n <= {n_max}")
    first = int(np.flatnonzero(ok)[0]) + 1
    bad = np.flatnonzero(~ok)
    stable = int(bad[-1]) + 2 if bad.size else 1
    if stable > n_max:  # pragma: no cover - ok[-1] is True when the target is reached at n_max
        stable = n_max
    return BinomialSampleSizeResult(
        n_first=first,
        n_stable=stable,
        power_at_n_first=float(pw[first - 1]),
        power_at_n_stable=float(pw[stable - 1]),
        target_power=power,
        p0=float(p0),
        p1=float(p1),
        alpha=float(alpha),
        alternative=alternative,
        n_max=n_max,
    )


@dataclasses.dataclass(frozen=True)
class TwoProportionPowerResult(Result):
    r"""Approximate power of the two-sided score test of :math:`p_1 = p_2`.

    Attributes
    ----------
    p1, p2 : float
    n1, n2 : float
        Group sizes (expected counts may be fractional).
    alpha, power : float
    method : str

    """

    p1: float
    p2: float
    n1: float
    n2: float
    alpha: float
    power: float
    method: str


def two_proportion_power(
    *, p1: float, p2: float, n1: float, n2: float, alpha: float = 0.05
) -> TwoProportionPowerResult:
    r"""Normal-approximation power of the two-sided two-sample score test.

    .. math::

        1 - \beta = \Phi\left(\frac{|p_1 - p_2| - z_{1-\alpha/2}
        \sqrt{\bar p\bar q(1/n_1 + 1/n_2)}}{\sqrt{p_1q_1/n_1 + p_2q_2/n_2}}\right),
        \quad \bar p = \frac{n_1p_1 + n_2p_2}{n_1 + n_2}

    (Fleiss, Levin & Paik 2003, eq. 4.14, ignoring the far tail). With
    :math:`n_1 = n_2 = n` this is R's ``power.prop.test(n, p1, p2,
    sig.level = alpha)$power``.
    """
    alpha = check_alpha(alpha)
    p1 = _check_p0(p1, "p1")
    p2 = _check_p0(p2, "p2")
    n1, n2 = float(n1), float(n2)
    if not (n1 > 0 and n2 > 0 and math.isfinite(n1) and math.isfinite(n2)):
        raise StudyvalError(f"n1 and n2 must be positive, got {n1} and {n2}")
    pbar = (n1 * p1 + n2 * p2) / (n1 + n2)
    z = stats.norm.ppf(1 - alpha / 2)
    num = abs(p1 - p2) - z * math.sqrt(pbar * (1 - pbar) * (1 / n1 + 1 / n2))
    den = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    return TwoProportionPowerResult(
        p1=p1,
        p2=p2,
        n1=n1,
        n2=n2,
        alpha=alpha,
        power=float(stats.norm.cdf(num / den)),
        method="two-sided score test, normal approximation (Fleiss et al. 2003)",
    )


@dataclasses.dataclass(frozen=True)
class PeriodsResult(Result):
    r"""Periods of accrual needed for a number of events.

    Attributes
    ----------
    required_events : int
    volume_per_period : float
        Eligible units (scans) per period.
    prevalence : float
        Fraction of units that are events (VCF-positive).
    events_per_period : float
        ``volume_per_period * prevalence``.
    periods : int
        :math:`\lceil \text{required} / \text{events per period} \rceil`.

    """

    required_events: int
    volume_per_period: float
    prevalence: float
    events_per_period: float
    periods: int


def periods_needed(
    required_events: int, *, volume_per_period: float, prevalence: float
) -> PeriodsResult:
    """Periods needed so that the expected events reach ``required_events``."""
    req = _as_count(required_events, "required_events")
    vol = float(volume_per_period)
    if not (vol > 0 and math.isfinite(vol)):
        raise StudyvalError(f"volume_per_period must be positive, got {volume_per_period}")
    prev = _check_p0(prevalence, "prevalence")
    per = vol * prev
    return PeriodsResult(
        required_events=req,
        volume_per_period=vol,
        prevalence=prev,
        events_per_period=per,
        periods=math.ceil(req / per - 1e-12),
    )
