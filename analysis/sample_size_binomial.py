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
:func:`fisher_exact_power`
    Exact power of Fisher's exact test of two independent proportions, by
    enumeration of every 2x2 table.
:func:`mcnemar_power`
    Power of McNemar's test of two paired proportions: exact by enumeration,
    and Connor's (1987) approximation and sample size.
:func:`periods_needed`
    Periods (e.g. weeks) of accrual needed to reach a number of events, given
    the volume per period and the prevalence.
:func:`two_proportion_periods_needed`
    Periods of accrual of one group for :func:`two_proportion_power` to reach
    a target against a fixed, complete comparison group (e.g. a prospective
    period against a finished retrospective one).

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
from scipy import optimize, stats

from studyval.errors import StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option
from .binomial_tests import _REL_ERR, ALTERNATIVES, _check_p0, binomial_two_sided_p_values
from .proportions import _as_count

__all__ = [
    "BinomialPowerResult",
    "BinomialSampleSizeResult",
    "FisherPowerResult",
    "McNemarPowerResult",
    "PeriodsResult",
    "TwoProportionPeriodsResult",
    "TwoProportionPowerResult",
    "discordant_probabilities",
    "exact_binomial_power",
    "exact_binomial_sample_size",
    "fisher_exact_power",
    "mcnemar_power",
    "periods_needed",
    "two_proportion_periods_needed",
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


_CURVE_BLOCK = 2_000_000  # probabilities evaluated per vectorised call of _power_curve


def _power_curve(n_max: int, p0: float, p1: float, alpha: float, alternative: str) -> np.ndarray:
    """``exact_binomial_power(n, ...).power`` for every ``n = 1, ..., n_max`` (checked arguments).

    The same scipy probabilities, element by element, as :func:`exact_binomial_power`
    (and :func:`~studyval.analysis.binomial_tests.binomial_two_sided_p_values`), evaluated
    in one vectorised call per block of ``n`` instead of several calls per ``n``: the
    powers are identical to the bit.
    """
    out = np.empty(n_max)
    start = 1
    while start <= n_max:
        stop = start
        total = 0
        while stop <= n_max and (stop == start or total + stop + 1 <= _CURVE_BLOCK):
            total += stop + 1
            stop += 1
        ns = np.arange(start, stop)
        sizes = ns + 1
        nn = np.repeat(ns, sizes)
        offsets = np.concatenate(([0], np.cumsum(sizes)))
        xx = np.arange(total) - np.repeat(offsets[:-1], sizes)
        f1 = stats.binom.pmf(xx, nn, p1)
        if alternative == "greater":
            pv_all = stats.binom.sf(xx - 1, nn, p0)
        elif alternative == "less":
            pv_all = stats.binom.cdf(xx, nn, p0)
        else:
            f0_all = stats.binom.pmf(xx, nn, p0)
        for i, n in enumerate(ns.tolist()):
            a, b = offsets[i], offsets[i + 1]
            if alternative == "two-sided":  # binomial_two_sided_p_values, step for step
                f = f0_all[a:b]
                x = np.arange(n + 1)
                order = np.argsort(f, kind="stable")
                f_sorted = f[order]
                cum = np.cumsum(f_sorted)
                k = np.searchsorted(f_sorted, f * _REL_ERR, side="right")
                pv = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
                pv = np.where(x == n * p0, 1.0, pv)
                pv = np.minimum(1.0, pv)
            else:
                pv = pv_all[a:b]
            out[n - 1] = float(f1[a:b][pv <= alpha].sum())
        start = stop
    return out


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
    if n_max >= 1:  # the checks (and messages) of exact_binomial_power
        alternative = check_option(alternative, ALTERNATIVES, "alternative")
        alpha = check_alpha(alpha)
        p0 = _check_p0(p0)
        p1 = _check_p0(p1, "p1")
    pw = _power_curve(n_max, p0, p1, alpha, alternative)
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
    periods_unrounded : float
        :math:`\text{required} / \text{events per period}`.
    periods : int
        :math:`\lceil \text{required} / \text{events per period} \rceil`.

    """

    required_events: int
    volume_per_period: float
    prevalence: float
    events_per_period: float
    periods_unrounded: float
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
        periods_unrounded=req / per,
        periods=math.ceil(req / per - 1e-12),
    )


@dataclasses.dataclass(frozen=True)
class TwoProportionPeriodsResult(Result):
    r"""Periods of accrual a two-proportion comparison needs against a fixed comparison group.

    Attributes
    ----------
    p1 : float
        Rate of the group that accrues (e.g. the target of a new pathway).
    p2 : float
        Rate of the fixed group (e.g. the baseline of a completed period).
    n2 : float
        Size of the fixed group.
    volume_per_period, prevalence : float
        Eligible units per period and the fraction of them counted in :math:`n_1`.
    events_per_period : float
        ``volume_per_period * prevalence``.
    target_power, alpha : float
    max_periods : int
        The search stops here.
    reached : bool
        Whether some whole number of periods up to ``max_periods`` reaches the target.
    periods : int or None
        Smallest whole number of periods whose :math:`n_1` reaches the target
        power; None when not reached.
    n1 : float
        ``periods * volume_per_period * prevalence`` (NaN when not reached).
    power : float
        Power at ``n1`` (NaN when not reached).
    n1_unrounded : float
        The :math:`n_1` at which the power equals the target, in
        ``((periods - 1) * events_per_period, n1]`` (NaN when not reached).
    periods_unrounded : float
        ``n1_unrounded / events_per_period``; ``periods`` is its ceiling.
    method : str

    """

    p1: float
    p2: float
    n2: float
    volume_per_period: float
    prevalence: float
    events_per_period: float
    target_power: float
    alpha: float
    max_periods: int
    reached: bool
    periods: int | None
    n1: float
    power: float
    n1_unrounded: float
    periods_unrounded: float
    method: str


def two_proportion_periods_needed(
    *,
    p1: float,
    p2: float,
    n2: float,
    volume_per_period: float,
    prevalence: float,
    power: float,
    alpha: float = 0.05,
    max_periods: int = 260,
) -> TwoProportionPeriodsResult:
    r"""Periods of accrual of group 1 for the two-sample score test to reach ``power`` against a fixed group 2.

    Group 2 is complete (:math:`n_2` fixed, e.g. the VCF-positive scans of a
    retrospective period); group 1 accrues :math:`v\pi` units a period
    (volume :math:`v`, prevalence :math:`\pi`). The answer is the smallest
    whole number of periods :math:`w \le w_{\max}` with

    .. math::

        1 - \beta(n_1 = w v \pi, n_2) \ge 1 - \beta_0,

    where :math:`1 - \beta(n_1, n_2)` is :func:`two_proportion_power`
    (Fleiss, Levin & Paik 2003, eq. 4.14). The search runs over whole periods
    because the power need not rise monotonically in :math:`n_1` (the pooled
    rate moves with it) and, with :math:`n_2` fixed, it tends to a limit
    below 1 as :math:`n_1 \to \infty`, so the target may never be reached
    (``reached`` False). The unrounded :math:`n_1` solves
    :math:`1 - \beta(n_1, n_2) = 1 - \beta_0` (Brent's method) between
    :math:`(w - 1) v\pi` and :math:`w v\pi`; it is the :math:`n_1` of
    Hmisc's ``bsamsize(p1, p2, fraction = n1 / (n1 + n2), alpha, power)``,
    which inverts the same formula for a given allocation.

    Parameters
    ----------
    p1, p2 : float
        Rates of the accruing and the fixed group, in (0, 1).
    n2 : float
        Size of the fixed group, > 0.
    volume_per_period : float
        Eligible units per period, > 0.
    prevalence : float
        Fraction of the units counted in :math:`n_1`, in (0, 1).
    power : float
        Target power, in (0, 1).
    alpha : float
        Two-sided level.
    max_periods : int
        Largest number of periods searched, > 0.

    Returns
    -------
    TwoProportionPeriodsResult

    Examples
    --------
    >>> r = two_proportion_periods_needed(p1=0.9, p2=0.77, n2=180, volume_per_period=160,
    ...                                   prevalence=0.18, power=0.8)
    >>> r.periods, round(r.periods_unrounded, 3)
    (4, 3.564)

    """
    target = _check_power(power)
    alpha = check_alpha(alpha)
    w_max = _as_count(max_periods, "max_periods")
    if w_max <= 0:
        raise StudyvalError(f"max_periods must be positive, got {w_max}")
    vol = float(volume_per_period)
    if not (vol > 0 and math.isfinite(vol)):
        raise StudyvalError(f"volume_per_period must be positive, got {volume_per_period}")
    prev = _check_p0(prevalence, "prevalence")

    def power_at(n1: float) -> float:
        return two_proportion_power(p1=p1, p2=p2, n1=n1, n2=n2, alpha=alpha).power

    per = vol * prev
    nan = float("nan")
    found = next((w for w in range(1, w_max + 1) if power_at(w * vol * prev) >= target), None)
    common = {
        "p1": float(p1),
        "p2": float(p2),
        "n2": float(n2),
        "volume_per_period": vol,
        "prevalence": prev,
        "events_per_period": per,
        "target_power": target,
        "alpha": alpha,
        "max_periods": w_max,
        "method": "smallest whole number of periods with two-sided score-test power >= target "
        "(Fleiss et al. 2003)",
    }
    if found is None:
        return TwoProportionPeriodsResult(
            **common,
            reached=False,
            periods=None,
            n1=nan,
            power=nan,
            n1_unrounded=nan,
            periods_unrounded=nan,
        )
    n1 = found * vol * prev
    low = (found - 1) * per if found > 1 else per * 1e-9
    gap = power_at(low) - target
    root = (
        low
        if gap >= 0
        else optimize.brentq(lambda x: power_at(x) - target, low, n1, xtol=1e-12, rtol=1e-14)
    )
    return TwoProportionPeriodsResult(
        **common,
        reached=True,
        periods=found,
        n1=n1,
        power=power_at(n1),
        n1_unrounded=float(root),
        periods_unrounded=float(root) / per,
    )


# ----------------------------------------------------------------------------- exact power of the tests actually run


@dataclasses.dataclass(frozen=True)
class FisherPowerResult(Result):
    r"""Exact power of Fisher's exact test of two independent proportions, by enumeration.

    Attributes
    ----------
    n1, n2 : int
        Group sizes.
    p1, p2 : float
        True rates of the two groups.
    alpha : float
    alternative : str
        ``two-sided``, ``greater`` (:math:`p_1 > p_2`) or ``less``.
    power : float
        :math:`P(\text{Fisher's test rejects at } \alpha \mid p_1, p_2)`.
    size : float
        Attained level at the common rate :math:`(n_1p_1 + n_2p_2)/(n_1+n_2)`.
    power_score_approx : float
        The normal-approximation power of the score test
        (:func:`two_proportion_power`) at the same counts, for comparison
        (two-sided only; NaN otherwise).
    method : str

    """

    n1: int
    n2: int
    p1: float
    p2: float
    alpha: float
    alternative: str
    power: float
    size: float
    power_score_approx: float
    method: str


def _fisher_rejects_all(
    n1: int, n2: int, alpha: float, alternative: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Whether Fisher's test rejects at each ``x1`` of the support, for every total ``t``.

    Given ``t = x1 + x2`` successes, ``x1`` is hypergeometric on
    ``max(0, t - n2), ..., min(t, n1)``. Returns ``(x1, offsets, rejects)``:
    ``x1`` and ``rejects`` concatenated over ``t = 0, ..., n1 + n2`` (``x1``
    ascending within each ``t``), the entries of ``t`` at
    ``offsets[t]:offsets[t + 1]``. The probabilities of all ``t`` come from one
    vectorised scipy call (the same values, element by element, as one call
    per ``t``); the two-sided rule is applied per ``t``.
    """
    ts = np.arange(n1 + n2 + 1)
    lo, hi = np.maximum(0, ts - n2), np.minimum(ts, n1)
    sizes = hi - lo + 1
    offsets = np.concatenate(([0], np.cumsum(sizes)))
    tt = np.repeat(ts, sizes)
    x = np.arange(offsets[-1]) - np.repeat(offsets[:-1], sizes) + np.repeat(lo, sizes)
    if alternative == "greater":
        pv = stats.hypergeom.sf(x - 1, n1 + n2, n1, tt)
    elif alternative == "less":
        pv = stats.hypergeom.cdf(x, n1 + n2, n1, tt)
    else:  # R's fisher.test: sum of the probabilities no more likely than the observed (relErr 1e-7)
        d_all = stats.hypergeom.pmf(x, n1 + n2, n1, tt)
        pv = np.empty_like(d_all)
        for i in range(ts.size):
            a, b = offsets[i], offsets[i + 1]
            d = d_all[a:b]
            order = np.argsort(d, kind="stable")
            cum = np.cumsum(d[order])
            k = np.searchsorted(d[order], d * (1.0 + 1e-7), side="right")
            pv[a:b] = np.where(k > 0, cum[np.maximum(k - 1, 0)], 0.0)
    return x, offsets, np.minimum(1.0, pv) <= alpha


def fisher_exact_power(
    n1: int,
    n2: int,
    *,
    p1: float,
    p2: float,
    alpha: float = 0.05,
    alternative: str = "two-sided",
) -> FisherPowerResult:
    r"""Exact power of Fisher's exact test with :math:`n_1` and :math:`n_2` trials, by enumeration.

    Parameters
    ----------
    n1, n2 : int
        Trials of group 1 (e.g. VCF-positive scans of the AI-assisted
        period) and group 2 (the standard-care period), > 0.
    p1, p2 : float
        True rates under the alternative, in (0, 1).
    alpha : float
    alternative : {"two-sided", "greater", "less"}
        As the test that will be run (``greater``: :math:`p_1 > p_2`).

    Notes
    -----
    Every table :math:`(x_1, x_2)` is enumerated: Fisher's test conditions on
    :math:`t = x_1 + x_2`, under which :math:`x_1` is hypergeometric; the
    two-sided p-value is R's rule (the total probability of the tables no
    more likely than the observed, relative tolerance :math:`10^{-7}`). Then

    .. math::

        1 - \beta = \sum_{x_1, x_2:\ p(x_1 \mid t) \le \alpha}
        \binom{n_1}{x_1} p_1^{x_1} q_1^{n_1 - x_1} \binom{n_2}{x_2} p_2^{x_2} q_2^{n_2 - x_2}.

    In R: ``sum(outer(0:n1, 0:n2, Vectorize(function(a, b) (fisher.test(
    matrix(c(a, n1 - a, b, n2 - b), 2, byrow = TRUE))$p.value <= alpha) *
    dbinom(a, n1, p1) * dbinom(b, n2, p2))))``.

    Examples
    --------
    >>> round(fisher_exact_power(230, 180, p1=0.9, p2=0.77).power, 3)
    0.94

    """
    m1, m2 = _as_count(n1, "n1"), _as_count(n2, "n2")
    if m1 <= 0 or m2 <= 0:
        raise StudyvalError(f"n1 and n2 must be positive, got {m1} and {m2}")
    alternative = check_option(alternative, ALTERNATIVES, "alternative")
    alpha = check_alpha(alpha)
    p1 = _check_p0(p1, "p1")
    p2 = _check_p0(p2, "p2")
    pbar = (m1 * p1 + m2 * p2) / (m1 + m2)
    f1, f2 = stats.binom.pmf(np.arange(m1 + 1), m1, p1), stats.binom.pmf(np.arange(m2 + 1), m2, p2)
    g1, g2 = (
        stats.binom.pmf(np.arange(m1 + 1), m1, pbar),
        stats.binom.pmf(np.arange(m2 + 1), m2, pbar),
    )
    power = size = 0.0
    x_all, offsets, rej_all = _fisher_rejects_all(m1, m2, alpha, alternative)
    for t in range(m1 + m2 + 1):
        rej = rej_all[offsets[t] : offsets[t + 1]]
        if not rej.any():
            continue
        x1 = x_all[offsets[t] : offsets[t + 1]][rej]
        power += float(np.sum(f1[x1] * f2[t - x1]))
        size += float(np.sum(g1[x1] * g2[t - x1]))
    approx = (
        two_proportion_power(p1=p1, p2=p2, n1=m1, n2=m2, alpha=alpha).power
        if alternative == "two-sided"
        else float("nan")
    )
    return FisherPowerResult(
        n1=m1,
        n2=m2,
        p1=p1,
        p2=p2,
        alpha=alpha,
        alternative=alternative,
        power=min(1.0, power),
        size=min(1.0, size),
        power_score_approx=approx,
        method="Fisher's exact test, exact power by enumeration of every 2x2 table",
    )


def discordant_probabilities(p_a: float, p_b: float, *, phi: float = 0.0) -> tuple[float, float]:
    r"""Discordant cell probabilities of a paired 2x2 table from its margins and correlation.

    .. math::

        \pi_{10} = p_A(1 - p_B) - \phi\sigma_A\sigma_B,\quad
        \pi_{01} = p_B(1 - p_A) - \phi\sigma_A\sigma_B,\quad
        \sigma = \sqrt{p(1-p)}

    (SAS PROC POWER, PAIREDFREQ). :math:`\phi = 0` is conditional
    independence of the two readers given the reference standard.

    Returns
    -------
    (p10, p01) : tuple of float
        :math:`P(A \text{ success}, B \text{ failure})` and the reverse.

    Raises
    ------
    StudyvalError
        A probability outside (0, 1), or a :math:`\phi` that makes a cell
        negative.

    """
    pa, pb = _check_p0(p_a, "p_a"), _check_p0(p_b, "p_b")
    phi = float(phi)
    s = phi * math.sqrt(pa * (1 - pa) * pb * (1 - pb))
    p10, p01 = pa * (1 - pb) - s, pb * (1 - pa) - s
    p11 = pa - p10
    if min(p10, p01, p11, 1 - p11 - p10 - p01) < -1e-12 or not -1 <= phi <= 1:
        raise StudyvalError(
            f"phi = {phi} is not attainable with margins p_a = {pa} and p_b = {pb} (a cell of the "
            "paired table would be negative)"
        )
    return max(p10, 0.0), max(p01, 0.0)


@dataclasses.dataclass(frozen=True)
class McNemarPowerResult(Result):
    r"""Power of McNemar's test for :math:`n` pairs.

    Attributes
    ----------
    n : int
        Pairs.
    p10, p01 : float
        Discordant probabilities (A success and B failure; the reverse).
    alpha : float
    method : str
        The McNemar test whose power is computed (``exact``, ``asymptotic``,
        ``asymptotic-cc``).
    power : float
        Exact power of that test, by enumeration of the discordant counts.
    power_connor : float
        Connor's (1987) normal approximation at :math:`n`.
    n_connor : float
        Connor's unrounded :math:`n` for ``target_power`` (NaN without a target).
    target_power : float
        NaN when none was given.

    """

    n: int
    p10: float
    p01: float
    alpha: float
    method: str
    power: float
    power_connor: float
    n_connor: float
    target_power: float


def mcnemar_power(
    n: int,
    *,
    p10: float,
    p01: float,
    alpha: float = 0.05,
    method: str = "exact",
    target_power: float | None = None,
) -> McNemarPowerResult:
    r"""Power of the two-sided McNemar test with :math:`n` pairs: exact by enumeration, and Connor's approximation.

    Parameters
    ----------
    n : int
        Pairs (e.g. VCF-positive scans read by both the tool and the report), > 0.
    p10, p01 : float
        Discordant probabilities, > 0, with :math:`p_{10} + p_{01} \le 1`
        (:func:`discordant_probabilities`).
    alpha : float
        Two-sided level.
    method : {"exact", "asymptotic", "asymptotic-cc"}
        The test of :func:`studyval.analysis.paired.mcnemar` the analysis runs.
    target_power : float, optional
        Also return Connor's :math:`n` for this power.

    Notes
    -----
    Enumeration: the discordant count :math:`M \sim \mathrm{Bin}(n, \psi)`,
    :math:`\psi = p_{10} + p_{01}`, and :math:`B \mid M = m \sim
    \mathrm{Bin}(m, p_{10}/\psi)`; power :math:`= \sum_m \sum_{b \in R_m}
    P(M = m) P(B = b \mid m)` with :math:`R_m` the counts the test rejects
    (exact: ``binom.test(b, m)$p.value <= alpha``).

    Connor (1987), with :math:`\delta = p_{10} - p_{01}`:

    .. math::

        1 - \beta = \Phi\left(\frac{|\delta|\sqrt n - z_{1-\alpha/2}\sqrt\psi}
        {\sqrt{\psi - \delta^2}}\right),\qquad
        n = \frac{\left(z_{1-\alpha/2}\sqrt\psi + z_{1-\beta}\sqrt{\psi - \delta^2}\right)^2}{\delta^2}.

    Connor RJ (1987). Sample size for testing differences in proportions for
    the paired-sample design. Biometrics 43:207-211. doi:10.2307/2531961

    """
    from .paired import MCNEMAR_METHODS

    m = _as_count(n, "n")
    if m <= 0:
        raise StudyvalError(f"n must be positive, got {m}")
    method = check_option(method, MCNEMAR_METHODS, "method")
    alpha = check_alpha(alpha)
    p10, p01 = float(p10), float(p01)
    if not (p10 > 0 and p01 > 0 and p10 + p01 <= 1):
        raise StudyvalError(
            f"p10 and p01 must be positive with p10 + p01 <= 1, got {p10} and {p01}"
        )
    psi, delta = p10 + p01, p10 - p01
    power = 0.0
    pm = stats.binom.pmf(np.arange(m + 1), m, psi)
    for k in range(1, m + 1):
        b = np.arange(k + 1)
        if method == "exact":
            pv = np.minimum(1.0, 2.0 * stats.binom.cdf(np.minimum(b, k - b), k, 0.5))
        else:
            cc = 1.0 if method == "asymptotic-cc" else 0.0
            pv = stats.chi2.sf((np.abs(2 * b - k) - cc) ** 2 / k, 1)
        rej = pv <= alpha
        if rej.any():
            power += float(pm[k] * stats.binom.pmf(b[rej], k, p10 / psi).sum())
    z = stats.norm.ppf(1 - alpha / 2)
    sd1 = math.sqrt(psi - delta**2)
    connor = float(stats.norm.cdf((abs(delta) * math.sqrt(m) - z * math.sqrt(psi)) / sd1))
    n_connor = float("nan")
    tp = float("nan")
    if target_power is not None:
        tp = _check_power(target_power)
        if delta == 0:
            raise StudyvalError("p10 equals p01: no difference, no sample size reaches any power")
        n_connor = (z * math.sqrt(psi) + stats.norm.ppf(tp) * sd1) ** 2 / delta**2
    return McNemarPowerResult(
        n=m,
        p10=p10,
        p01=p01,
        alpha=alpha,
        method=method,
        power=min(1.0, power),
        power_connor=connor,
        n_connor=n_connor,
        target_power=tp,
    )
