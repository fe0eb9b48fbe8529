r"""Statistical process control for a rate observed in consecutive periods (e.g. weeks).

:func:`p_chart`
    Shewhart p-chart with variable subgroup sizes: every period gets its own
    3-sigma limits around the centre line (Montgomery 2013, section 7.2.2).
:func:`binomial_cusum`
    Upper CUSUM of binomial counts of an adverse event (e.g. VCFs the pathway
    missed), built from the log-likelihood ratio of an out-of-control rate
    :math:`p_1` against the in-control rate :math:`p_0` (Reynolds & Stoumbos
    1999; Montgomery 2013, section 9.1.7), written in count units with the
    reference value :math:`k` and decision interval :math:`h`.
:func:`cusum_run_length`
    Average run length of that CUSUM in and out of control, by seeded
    simulation.
:func:`cusum_run_length_exact`
    The same average run length (and the chance of a signal within a horizon)
    computed exactly on the lattice of values the CUSUM can take (Brook &
    Evans 1972, without discretisation), with no Monte Carlo error.
:func:`choose_cusum_h`
    The decision interval :math:`h`: the smallest value on a declared grid
    whose exact in-control average run length reaches a declared target, for
    one CUSUM or for several watched with one :math:`h`.
:func:`chart_set_false_alarm`
    Chance that a set of charts watched together (p-charts and CUSUMs of nested
    rates, e.g. detection and referral, and an independent flag rate) gives at
    least one false alarm within a horizon, in control, by seeded simulation.

The charts return one row per period with the limits and a ``signal`` flag; the
statistics are pure and draw nothing (figures are drawn from these tables).

References
----------
Brook D, Evans DA (1972). An approach to the probability distribution of cusum
run length. Biometrika 59:539-549. doi:10.1093/biomet/59.3.539

Montgomery DC (2013). Introduction to Statistical Quality Control, 7th ed.
Wiley. Sections 7.2 (control charts for fraction nonconforming) and 9.1
(CUSUM).

Reynolds MR Jr, Stoumbos ZG (1999). A CUSUM chart for monitoring a proportion
when inspecting continuously. J Qual Technol 31:87-108.
doi:10.1080/00224065.1999.11979900
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_option
from .proportions import _as_count_array

__all__ = [
    "CENTRE_SOURCES",
    "ChartSetFalseAlarmResult",
    "CusumDecisionIntervalResult",
    "CusumResult",
    "ExactRunLengthResult",
    "PChartResult",
    "RunLengthResult",
    "binomial_cusum",
    "chart_set_false_alarm",
    "choose_cusum_h",
    "cusum_reference_value",
    "cusum_run_length",
    "cusum_run_length_exact",
    "p_chart",
]

#: How the centre line of a p-chart was obtained.
CENTRE_SOURCES: tuple[str, ...] = ("pooled", "standard", "baseline")


def _counts(
    successes: Any, n: Any, labels: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    x = _as_count_array(successes, "successes")
    m = _as_count_array(n, "n")
    if x.shape != m.shape:
        raise StudyvalError(
            f"successes has {x.size} values but n has {m.size}; give one n per period"
        )
    if x.size == 0:
        raise StudyvalError("no periods given")
    if np.any(m < 0) or np.any(x < 0) or np.any(x > m):
        i = int(np.flatnonzero((m < 0) | (x < 0) | (x > m))[0])
        raise StudyvalError(
            f"period {i}: counts must satisfy 0 <= successes <= n, got {int(x[i])} of {int(m[i])}"
        )
    lab = list(range(1, x.size + 1)) if labels is None else list(labels)
    if len(lab) != x.size:
        raise StudyvalError(f"labels has {len(lab)} values but there are {x.size} periods")
    return x, m, lab


@dataclasses.dataclass(frozen=True)
class PChartResult(Result):
    r"""A p-chart with variable subgroup sizes.

    Attributes
    ----------
    centre : float
        Centre line :math:`\bar p`.
    centre_source : str
        ``pooled`` (:math:`\sum x_i / \sum n_i` of the charted periods; trial
        limits, Phase I), ``standard`` (a given value, Phase II) or
        ``baseline`` (pooled over the first ``baseline_periods``, which are not
        monitored; Phase II for the later periods).
    sigma_multiplier : float
        :math:`L` (3 for Shewhart limits).
    baseline_periods : int
        Periods that set the centre and are not monitored (0: none).
    n_periods : int
    n_signals : int
        Periods outside the limits (baseline periods never count).
    total_successes, total_n : int

    """

    centre: float
    centre_source: str
    sigma_multiplier: float
    baseline_periods: int
    n_periods: int
    n_signals: int
    total_successes: int
    total_n: int
    _frame: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def points_frame(self) -> pd.DataFrame:
        """One row per period: ``period, successes, n, proportion, centre, lcl, ucl, signal``.

        ``signal`` is ``below``, ``above``, ``""`` (in control), ``no cases``
        (:math:`n_i = 0`: no proportion, never a signal) or ``baseline`` (a
        period that set the centre, not monitored).
        """
        return self._frame.copy()


def p_chart(
    successes: Any,
    n: Any,
    *,
    centre: float | None = None,
    baseline_periods: int = 0,
    sigma_multiplier: float = 3.0,
    labels: Sequence[Any] | None = None,
) -> PChartResult:
    r"""Shewhart p-chart for proportions with variable subgroup sizes.

    Parameters
    ----------
    successes, n : array-like of int, shape (m,)
        Events and trials in each period (e.g. VCF-positive scans identified,
        and VCF-positive scans, per week).
    centre : float, optional
        A standard (given) centre line :math:`p_0`, e.g. the rate the pathway
        is expected to achieve. ``None`` with ``baseline_periods = 0``: the
        pooled proportion of the charted periods (trial limits, Phase I: they
        use the monitored data, so they cannot be drawn live).
    baseline_periods : int
        ``k > 0``: the centre is the pooled proportion of the first ``k``
        periods (a declared baseline), which are not monitored (``signal``
        ``baseline``); the later periods are judged against it, as they would
        be live (Phase II). Not with ``centre``.
    sigma_multiplier : float
        :math:`L` in the limits (3 = Shewhart).
    labels : sequence, optional
        Period labels (default 1..m).

    Notes
    -----
    For period :math:`i` with :math:`n_i` trials (Montgomery 2013, eq. 7.8
    and section 7.2.2):

    .. math::

        \mathrm{UCL}_i = \min\{1, \bar p + L\sqrt{\bar p(1-\bar p)/n_i}\},\quad
        \mathrm{LCL}_i = \max\{0, \bar p - L\sqrt{\bar p(1-\bar p)/n_i}\}.

    A period signals when :math:`\hat p_i > \mathrm{UCL}_i` or
    :math:`\hat p_i < \mathrm{LCL}_i` (a point on a limit does not signal).
    A period with :math:`n_i = 0` has no proportion and never signals.
    With ``baseline_periods = k``, :math:`\bar p = \sum_{i \le k} x_i /
    \sum_{i \le k} n_i` and periods :math:`1..k` are marked ``baseline``.

    """
    x, m, lab = _counts(successes, n, labels)
    L = float(sigma_multiplier)
    if not (math.isfinite(L) and L > 0):
        raise StudyvalError(f"sigma_multiplier must be positive, got {sigma_multiplier}")
    k = int(baseline_periods)
    if k != baseline_periods or k < 0 or k >= x.size:
        raise StudyvalError(
            f"baseline_periods must be a whole number from 0 to {x.size - 1} (periods charted "
            f"{x.size}), got {baseline_periods}"
        )
    if k and centre is not None:
        raise StudyvalError("give either centre or baseline_periods, not both")
    if k:
        if m[:k].sum() == 0:
            raise StudyvalError(f"the {k} baseline period(s) have n = 0; no centre line")
        pbar = float(x[:k].sum() / m[:k].sum())
        if not 0.0 < pbar < 1.0:
            raise StudyvalError(
                f"the baseline periods give a centre of {pbar:g}: limits around 0 or 1 are "
                "degenerate; declare a centre instead"
            )
        source = "baseline"
    elif centre is None:
        if m.sum() == 0:
            raise StudyvalError("every period has n = 0; there is nothing to chart")
        pbar = float(x.sum() / m.sum())
        source = "pooled"
    else:
        pbar = float(centre)
        if not 0.0 < pbar < 1.0:
            raise StudyvalError(f"centre must lie strictly between 0 and 1, got {centre}")
        source = "standard"
    with np.errstate(divide="ignore", invalid="ignore"):
        p = np.where(m > 0, x / np.where(m > 0, m, 1), np.nan)
        half = np.where(m > 0, L * np.sqrt(pbar * (1 - pbar) / np.where(m > 0, m, 1)), np.nan)
    lcl = np.maximum(0.0, pbar - half)
    ucl = np.minimum(1.0, pbar + half)
    signal = np.where(
        m == 0, "no cases", np.where(p < lcl, "below", np.where(p > ucl, "above", ""))
    )
    signal[:k] = "baseline"
    frame = pd.DataFrame(
        {
            "period": lab,
            "successes": x,
            "n": m,
            "proportion": p,
            "centre": pbar,
            "lcl": lcl,
            "ucl": ucl,
            "signal": signal,
        }
    )
    return PChartResult(
        centre=pbar,
        centre_source=source,
        sigma_multiplier=L,
        baseline_periods=k,
        n_periods=int(x.size),
        n_signals=int(np.isin(signal, ["below", "above"]).sum()),
        total_successes=int(x.sum()),
        total_n=int(m.sum()),
        _frame=frame,
    )


def cusum_reference_value(p0: float, p1: float) -> float:
    r"""Reference value :math:`k` (per trial) of the binomial CUSUM for a shift from :math:`p_0` to :math:`p_1 > p_0`.

    .. math::

        k = \frac{-\ln\{(1-p_1)/(1-p_0)\}}{\ln\{p_1(1-p_0)/(p_0(1-p_1))\}}

    (Reynolds & Stoumbos 1999); :math:`p_0 < k < p_1`.
    """
    p0, p1 = float(p0), float(p1)
    if not (0.0 < p0 < 1.0 and 0.0 < p1 < 1.0):
        raise StudyvalError(f"p0 and p1 must lie strictly between 0 and 1, got {p0} and {p1}")
    if not p1 > p0:
        raise StudyvalError(
            f"the CUSUM detects an increase of the event rate: p1 ({p1}) must exceed p0 ({p0}); "
            "to detect a fall in a success rate, chart the failures (1 - rate)"
        )
    return -math.log((1 - p1) / (1 - p0)) / math.log(p1 * (1 - p0) / (p0 * (1 - p1)))


@dataclasses.dataclass(frozen=True)
class CusumResult(Result):
    r"""An upper binomial CUSUM.

    Attributes
    ----------
    p0, p1 : float
        In-control and out-of-control event rates.
    k : float
        Reference value per trial (:func:`cusum_reference_value`).
    h : float
        Decision interval, in events.
    reset_after_signal : bool
        Whether :math:`S` restarts at 0 after a signal.
    n_periods, n_signals : int
    first_signal : str
        Label of the first signalling period, ``""`` if none.
    total_events, total_n : int
        Events and trials over every period.

    """

    p0: float
    p1: float
    k: float
    h: float
    reset_after_signal: bool
    n_periods: int
    n_signals: int
    first_signal: str
    total_events: int
    total_n: int
    _frame: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def points_frame(self) -> pd.DataFrame:
        """One row per period: ``period, events, n, expected_in_control, increment, cusum, h, signal``."""
        return self._frame.copy()


def binomial_cusum(
    events: Any,
    n: Any,
    *,
    p0: float,
    p1: float,
    h: float,
    reset_after_signal: bool,
    labels: Sequence[Any] | None = None,
) -> CusumResult:
    r"""Upper CUSUM of binomial event counts with variable numbers of trials.

    Parameters
    ----------
    events, n : array-like of int, shape (m,)
        Adverse events (e.g. VCF-positive scans the pathway missed) and trials
        (VCF-positive scans) per period.
    p0 : float
        In-control event rate (e.g. 1 - the detection rate the pathway should
        achieve).
    p1 : float
        Out-of-control event rate to detect, :math:`p_1 > p_0` (e.g. 1 - the
        baseline detection rate: the pathway falling back to standard care).
    h : float
        Decision interval (in events), > 0.
    reset_after_signal : bool
        Restart at 0 after a signal (Montgomery's practice once the cause is
        investigated); required, no default.
    labels : sequence, optional
        Period labels (default 1..m).

    Notes
    -----
    With :math:`k` from :func:`cusum_reference_value`,

    .. math::

        S_0 = 0,\quad S_t = \max\{0,\ S_{t-1} + X_t - k\,n_t\},

    and period :math:`t` signals when :math:`S_t > h`. This is the
    log-likelihood-ratio CUSUM of Bernoulli trials (Reynolds & Stoumbos 1999)
    aggregated by period and divided by
    :math:`\ln\{p_1(1-p_0)/(p_0(1-p_1))\}`, so it is exact for any
    :math:`n_t`. :math:`h` should be chosen for an acceptable in-control
    average run length; this function does not choose it.

    """
    x, m, lab = _counts(events, n, labels)
    hh = float(h)
    if not (math.isfinite(hh) and hh > 0):
        raise StudyvalError(f"h must be positive, got {h}")
    if not isinstance(reset_after_signal, bool):
        raise StudyvalError("reset_after_signal must be True or False")
    k = cusum_reference_value(p0, p1)
    s = 0.0
    rows = []
    for xi, ni, li in zip(x, m, lab, strict=True):
        inc = float(xi) - k * float(ni)
        s = max(0.0, s + inc)
        sig = s > hh
        rows.append(
            {
                "period": li,
                "events": int(xi),
                "n": int(ni),
                "expected_in_control": float(p0) * float(ni),
                "increment": inc,
                "cusum": s,
                "h": hh,
                "signal": bool(sig),
            }
        )
        if sig and reset_after_signal:
            s = 0.0
    frame = pd.DataFrame(rows)
    signals = frame.loc[frame["signal"], "period"]
    return CusumResult(
        p0=float(p0),
        p1=float(p1),
        k=k,
        h=hh,
        reset_after_signal=reset_after_signal,
        n_periods=int(x.size),
        n_signals=int(frame["signal"].sum()),
        first_signal=str(signals.iloc[0]) if len(signals) else "",
        total_events=int(x.sum()),
        total_n=int(m.sum()),
        _frame=frame,
    )


def check_centre_source(value: str) -> str:
    """Validate a centre-line source name (``pooled`` or ``standard``)."""
    return check_option(value, CENTRE_SOURCES, "centre")


@dataclasses.dataclass(frozen=True)
class RunLengthResult(Result):
    r"""Average run length of an upper binomial CUSUM, by simulation.

    Attributes
    ----------
    p0, p1 : float
        In-control and out-of-control event rates of the chart (its ``k``).
    k, h : float
        Reference value per trial and decision interval.
    true_rate : float
        Event rate the runs are simulated at (``p0``: in control; ``p1``: out of control).
    n_per_period : int
        Trials per period (e.g. VCF-positive scans a week).
    arl : float
        Mean number of periods to the first signal (:math:`S_t > h`, from :math:`S_0 = 0`).
    se : float
        Monte Carlo standard error of ``arl`` (SD / sqrt(runs)).
    median_run_length : float
    p_signal_within : float
        Share of runs that signal within ``horizon`` periods.
    horizon : int
        The number of periods of ``p_signal_within`` (e.g. the 8 weeks of a study).
    n_simulations : int
    n_censored : int
        Runs without a signal by ``max_periods`` (counted at ``max_periods``; ``arl`` is then a lower bound).
    seed : int
    method : str

    """

    p0: float
    p1: float
    k: float
    h: float
    true_rate: float
    n_per_period: int
    arl: float
    se: float
    median_run_length: float
    p_signal_within: float
    horizon: int
    n_simulations: int
    n_censored: int
    seed: int
    method: str


def cusum_run_length(
    n_per_period: int,
    *,
    p0: float,
    p1: float,
    h: float,
    true_rate: float,
    n_simulations: int,
    seed: int,
    horizon: int = 8,
    max_periods: int = 100_000,
) -> RunLengthResult:
    r"""Average run length (ARL) of :func:`binomial_cusum` by seeded simulation.

    Parameters
    ----------
    n_per_period : int
        Trials per period, > 0 (fixed; e.g. the planned VCF-positive scans a week).
    p0, p1 : float
        The chart's in-control and out-of-control event rates (:math:`k` from
        :func:`cusum_reference_value`).
    h : float
        Decision interval, > 0.
    true_rate : float
        Rate the events are drawn at: ``p0`` gives the in-control ARL (mean
        time to a false alarm), ``p1`` the out-of-control ARL (mean delay to
        detect the shift from period 1).
    n_simulations : int
        Independent runs, >= 100.
    seed : int
        Seed of :func:`numpy.random.default_rng`; required so that the
        bundle is reproducible.
    horizon : int
        Also report the share of runs signalling within this many periods.
    max_periods : int
        A run is stopped (censored) here.

    Notes
    -----
    Each run draws :math:`X_t \sim \mathrm{Bin}(n, p)` and follows
    :math:`S_t = \max\{0, S_{t-1} + X_t - kn\}` from :math:`S_0 = 0` until
    :math:`S_t > h`; the run length is that :math:`t` (Montgomery 2013,
    section 9.1.3; Reynolds & Stoumbos 1999). The estimate is the mean over
    runs with its Monte Carlo standard error.

    """
    n, hh, rate = _check_run_length_args(n_per_period, h, true_rate)
    sims = int(n_simulations)
    if sims < 100:
        raise StudyvalError(f"n_simulations must be at least 100, got {n_simulations}")
    if int(horizon) <= 0 or int(max_periods) <= 0:
        raise StudyvalError("horizon and max_periods must be positive")
    k = cusum_reference_value(p0, p1)
    rng = np.random.default_rng(seed)
    length = np.full(sims, int(max_periods))
    active = np.arange(sims)
    s = np.zeros(sims)  # S_t of the active runs, in the order of ``active``
    kn = k * n
    for t in range(1, int(max_periods) + 1):
        x = rng.binomial(n, rate, size=active.size)
        s = np.maximum(0.0, s + x - kn)
        hit = s > hh
        if hit.any():
            length[active[hit]] = t
            keep = ~hit
            active, s = active[keep], s[keep]
            if active.size == 0:
                break
    rl = length.astype(float)
    return RunLengthResult(
        p0=float(p0),
        p1=float(p1),
        k=k,
        h=hh,
        true_rate=rate,
        n_per_period=n,
        arl=float(rl.mean()),
        se=float(rl.std(ddof=1) / math.sqrt(sims)),
        median_run_length=float(np.median(rl)),
        p_signal_within=float(np.mean(rl <= int(horizon))),
        horizon=int(horizon),
        n_simulations=sims,
        n_censored=int(active.size),
        seed=int(seed),
        method="simulation of the binomial CUSUM from S = 0, fixed trials per period",
    )


@dataclasses.dataclass(frozen=True)
class ExactRunLengthResult(Result):
    r"""Average run length of an upper binomial CUSUM, computed exactly.

    Attributes
    ----------
    p0, p1 : float
        In-control and out-of-control event rates of the chart (its ``k``).
    k, h : float
        Reference value per trial and decision interval.
    true_rate : float
        Event rate of the computation (``p0``: in control; ``p1``: out of control).
    n_per_period : int
        Trials per period.
    arl : float
        Mean number of periods to the first signal, from :math:`S_0 = 0`.
    p_signal_within : float
        Chance of a signal within ``horizon`` periods.
    horizon : int
    cycle_periods : int
        Periods followed within one excursion of :math:`S` above 0 before the
        computation stopped.
    neglected_probability : float
        Chance that an excursion is still running (neither back at 0 nor
        signalled) after ``cycle_periods`` periods: the only approximation
        (the relative error of ``arl`` is of the order of
        ``neglected_probability / p_excursion_signals``).
    p_excursion_signals : float
        Chance that one excursion from 0 ends in a signal.
    method : str

    """

    p0: float
    p1: float
    k: float
    h: float
    true_rate: float
    n_per_period: int
    arl: float
    p_signal_within: float
    horizon: int
    cycle_periods: int
    neglected_probability: float
    p_excursion_signals: float
    method: str


def _check_run_length_args(
    n_per_period: int, h: float, true_rate: float
) -> tuple[int, float, float]:
    n = int(n_per_period)
    if n <= 0 or n != n_per_period:
        raise StudyvalError(f"n_per_period must be a positive whole number, got {n_per_period}")
    hh = float(h)
    if not (math.isfinite(hh) and hh > 0):
        raise StudyvalError(f"h must be positive, got {h}")
    rate = float(true_rate)
    if not 0.0 < rate < 1.0:
        raise StudyvalError(f"true_rate must lie strictly between 0 and 1, got {true_rate}")
    return n, hh, rate


def cusum_run_length_exact(
    n_per_period: int,
    *,
    p0: float,
    p1: float,
    h: float,
    true_rate: float,
    horizon: int = 8,
    tolerance: float = 1e-13,
    max_periods: int = 100_000,
) -> ExactRunLengthResult:
    r"""Average run length (ARL) of :func:`binomial_cusum`, exact on the CUSUM's own lattice.

    Parameters
    ----------
    n_per_period : int
        Trials per period, > 0 (fixed; e.g. the planned VCF-positive scans a week).
    p0, p1 : float
        The chart's in-control and out-of-control event rates (:math:`k` from
        :func:`cusum_reference_value`).
    h : float
        Decision interval, > 0.
    true_rate : float
        Rate of the events: ``p0`` gives the in-control ARL (mean time to a
        false alarm), ``p1`` the out-of-control ARL (mean delay to detect a
        shift present from period 1).
    horizon : int
        Also give the chance of a signal within this many periods.
    tolerance : float
        Stop following an excursion when the chance that it is still running
        is below ``tolerance`` times the chance that it signals.
    max_periods : int
        Longest excursion followed; longer is an :class:`EstimationError`.

    Notes
    -----
    :math:`S_0 = 0`, :math:`S_t = \max\{0, S_{t-1} + X_t - kn\}`,
    :math:`X_t \sim \mathrm{Bin}(n, p)`, signal when :math:`S_t > h`. While
    :math:`S` stays above 0, after :math:`j` periods it equals
    :math:`A_j - jkn` with :math:`A_j` the integer sum of the :math:`j`
    counts, so the state of an excursion is the pair :math:`(j, A_j)` and the
    chain on these pairs is exact (Brook & Evans 1972 discretise :math:`S`
    instead; here nothing is rounded). Forward from :math:`S = 0`, the
    distribution of :math:`A_j` among excursions still running is convolved
    with the binomial probabilities period by period; each period splits
    off the chance :math:`r_j` that the excursion returns to 0
    (:math:`A_j - jkn \le 0`) and :math:`s_j` that it signals
    (:math:`A_j - jkn > h`). Every return to 0 renews the process, so with
    :math:`q = \sum_j s_j` and the mean excursion length
    :math:`m = \sum_{j \ge 0} P(\text{excursion lasts} > j)`, by Wald's
    identity

    .. math::

        \mathrm{ARL} = m / q,

    and the chance of a signal by period :math:`H` follows from the renewal
    recursion :math:`u_0 = 1`, :math:`u_t = \sum_{i<t} u_i r_{t-i}`,
    :math:`P(T \le H) = \sum_{t \le H} \sum_{i<t} u_i s_{t-i}`.
    :math:`S` is compared with 0 and :math:`h` as the floating-point value
    :math:`A_j - jkn`; a tie (possible only when :math:`jkn` is a whole number
    or differs from :math:`h` by one) follows that value.

    """
    n, hh, rate = _check_run_length_args(n_per_period, h, true_rate)
    H = int(horizon)
    if H <= 0:
        raise StudyvalError(f"horizon must be positive, got {horizon}")
    if not 0.0 < float(tolerance) < 1e-3:
        raise StudyvalError(f"tolerance must lie in (0, 0.001), got {tolerance}")
    k = cusum_reference_value(p0, p1)
    kn = k * n
    pmf = stats.binom.pmf(np.arange(n + 1), n, rate)
    lo, alive = 0, np.array([1.0])  # A = lo, lo + 1, ... of the excursions still running
    back, signal, running = [0.0], [0.0], [1.0]  # r_j, s_j, P(excursion lasts > j); j = 0 first
    q_now = 0.0
    for j in range(1, int(max_periods) + 1):
        new = np.convolve(alive, pmf)
        s_val = (lo + np.arange(new.size)) - j * kn
        back.append(float(new[s_val <= 0].sum()))
        signal.append(float(new[s_val > hh].sum()))
        keep = np.flatnonzero((s_val > 0) & (s_val <= hh))  # contiguous: s_val rises with A
        if keep.size == 0:
            running.append(0.0)
            break
        alive = new[keep[0] : keep[-1] + 1]
        lo += int(keep[0])
        running.append(float(alive.sum()))
        q_now += signal[-1]
        if q_now > 0 and running[-1] <= float(tolerance) * q_now:
            break
    else:
        raise EstimationError(
            f"an excursion of the CUSUM (h = {hh:g}, rate {rate:g}, n = {n}) is still running "
            f"after {max_periods} periods with probability {running[-1]:.3g}; raise max_periods"
        )
    q = math.fsum(signal)
    if q <= 0:
        raise EstimationError(f"the CUSUM (h = {hh:g}) cannot signal at rate {rate:g}")
    m = math.fsum(running)
    r_arr = np.zeros(H + 1)
    s_arr = np.zeros(H + 1)
    J = min(H, len(back) - 1)
    r_arr[1 : J + 1] = back[1 : J + 1]
    s_arr[1 : J + 1] = signal[1 : J + 1]
    u = np.zeros(H + 1)
    u[0] = 1.0
    p_within = 0.0
    for t in range(1, H + 1):
        u[t] = float(np.dot(u[:t], r_arr[t:0:-1]))
        p_within += float(np.dot(u[:t], s_arr[t:0:-1]))
    return ExactRunLengthResult(
        p0=float(p0),
        p1=float(p1),
        k=k,
        h=hh,
        true_rate=rate,
        n_per_period=n,
        arl=m / q,
        p_signal_within=p_within,
        horizon=H,
        cycle_periods=len(running) - 1,
        neglected_probability=running[-1],
        p_excursion_signals=q,
        method="exact chain on the CUSUM's lattice (renewal at 0), fixed trials per period",
    )


@dataclasses.dataclass(frozen=True)
class CusumDecisionIntervalResult(Result):
    r"""The decision interval of one or more binomial CUSUMs chosen from their run lengths.

    Attributes
    ----------
    h : float
        The chosen decision interval: the smallest value on the grid whose
        in-control ARL reaches ``target_arl0`` for every chart (without a
        target, the one declared value).
    target_arl0 : float or None
        Declared in-control average run length to reach (periods); None when
        ``h`` is declared rather than chosen.
    n_per_period : int
    horizon : int
        Periods of the ``p_*_within`` columns.
    n_charts, n_grid : int
    grid_min, grid_max : float
    p_false_alarm_union_bound : float
        At the chosen ``h``: Boole's (union) bound on the chance that at least
        one chart gives a false alarm within ``horizon`` periods,
        :math:`\min\{1, \sum_c P(T_c \le H)\}`, whatever the dependence
        between the charts.
    method : str

    ``to_frame()`` is the grid: one row per chart and grid value with
    ``chart, p0, p1, k, h, arl_in_control, arl_out_of_control,
    p_false_alarm_within, p_signal_within_out_of_control, meets_target,
    smallest_for_chart, chosen, p_false_alarm_union_bound`` (the last the
    same on every chart's row of one ``h``); ``summary_frame()`` the one-row
    summary.
    """

    h: float
    target_arl0: float | None
    n_per_period: int
    horizon: int
    n_charts: int
    n_grid: int
    grid_min: float
    grid_max: float
    p_false_alarm_union_bound: float
    method: str
    _frame: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def to_frame(self) -> pd.DataFrame:
        """The grid table (one row per chart and candidate ``h``)."""
        return self._frame.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One row: the chosen ``h``, the target and the grid."""
        return super().to_frame()

    def chosen_frame(self) -> pd.DataFrame:
        """The grid rows of the chosen ``h`` (one per chart)."""
        return self._frame[self._frame["chosen"]].reset_index(drop=True)


def choose_cusum_h(
    n_per_period: int,
    *,
    rates: Mapping[str, tuple[float, float]],
    target_arl0: float | None,
    h_grid: Sequence[float],
    horizon: int = 8,
) -> CusumDecisionIntervalResult:
    r"""Decision interval :math:`h` of binomial CUSUMs: the smallest grid value with in-control ARL >= a target.

    Parameters
    ----------
    n_per_period : int
        Trials per period (e.g. the planned VCF-positive scans a week).
    rates : mapping of str to (p0, p1)
        Each chart's in-control and out-of-control event rates (its
        :math:`k`, :func:`cusum_reference_value`); one chart, or several
        watched with one :math:`h`.
    target_arl0 : float or None
        In-control average run length (periods) that :math:`h` must reach,
        > 1. None: :math:`h` is declared, not chosen (``h_grid`` holds the
        one declared value, reported with its run lengths; ``meets_target``
        and ``smallest_for_chart`` are None).
    h_grid : sequence of float
        Candidate decision intervals, positive and strictly increasing.
    horizon : int
        Periods for the chance of a signal within the monitored period.

    Returns
    -------
    CusumDecisionIntervalResult
        The chosen :math:`h` and the grid with each value's exact ARLs
        (:func:`cusum_run_length_exact`; no Monte Carlo error).

    Raises
    ------
    EstimationError
        No grid value reaches the target for every chart.

    Notes
    -----
    For chart :math:`c`, :math:`h_c = \min\{h \in G : \mathrm{ARL}_0^{(c)}(h)
    \ge \mathrm{ARL}_0^{\ast}\}`; the chosen value is
    :math:`\max_c h_c`, the smallest grid value at which every chart
    reaches the target. Each path's first passage above :math:`h` comes no
    earlier for a larger :math:`h`, so the in-control ARL does not fall
    along the grid (it is flat between lattice values of a discrete
    CUSUM); every grid value is computed and reported. The
    out-of-control ARL (a shift to :math:`p_1` from period 1) is reported,
    not used. The chance of a false alarm within :math:`H` periods,
    :math:`P(T \le H)`, is about :math:`H/\mathrm{ARL}_0` per chart
    (Montgomery 2013, section 9.1.3; Reynolds & Stoumbos 1999), a heuristic
    for choosing the target, not a bound. For each :math:`h` the exact chance
    that at least one of the charts gives a false alarm within :math:`H`
    periods is bounded by Boole's inequality,

    .. math::

        P\Big(\bigcup_c \{T_c \le H\}\Big) \le
        \min\Big\{1, \sum_c P(T_c \le H)\Big\},

    whatever the dependence between the charts (column and attribute
    ``p_false_alarm_union_bound``).

    """
    if not rates:
        raise StudyvalError("rates needs at least one chart")
    target = None if target_arl0 is None else float(target_arl0)
    if target is not None and not (math.isfinite(target) and target > 1):
        raise StudyvalError(f"target_arl0 must be a finite number above 1, got {target_arl0}")
    grid = [float(v) for v in h_grid]
    if not grid or any(not (math.isfinite(v) and v > 0) for v in grid):
        raise StudyvalError(f"h_grid must hold positive values, got {list(h_grid)}")
    if any(b <= a for a, b in itertools.pairwise(grid)):
        raise StudyvalError("h_grid must be strictly increasing")
    if target is None and len(grid) != 1:
        raise StudyvalError(
            f"without target_arl0, h is declared: h_grid must hold one value, got {grid}"
        )
    n = int(n_per_period)
    rows = []
    for chart, (p0, p1) in rates.items():
        for hv in grid:
            arl0 = cusum_run_length_exact(n, p0=p0, p1=p1, h=hv, true_rate=p0, horizon=horizon)
            arl1 = cusum_run_length_exact(n, p0=p0, p1=p1, h=hv, true_rate=p1, horizon=horizon)
            rows.append(
                {
                    "chart": str(chart),
                    "p0": arl0.p0,
                    "p1": arl0.p1,
                    "k": arl0.k,
                    "h": hv,
                    "arl_in_control": arl0.arl,
                    "arl_out_of_control": arl1.arl,
                    "p_false_alarm_within": arl0.p_signal_within,
                    "p_signal_within_out_of_control": arl1.p_signal_within,
                    "meets_target": None if target is None else bool(arl0.arl >= target),
                }
            )
    frame = pd.DataFrame(rows)
    union = {
        hv: min(1.0, math.fsum(sub["p_false_alarm_within"]))
        for hv, sub in frame.groupby("h", sort=False)
    }
    if target is None:
        frame["smallest_for_chart"] = None
        frame["chosen"] = True
        frame["p_false_alarm_union_bound"] = frame["h"].map(union)
        return CusumDecisionIntervalResult(
            h=grid[0],
            target_arl0=None,
            n_per_period=n,
            horizon=int(horizon),
            n_charts=len(rates),
            n_grid=1,
            grid_min=grid[0],
            grid_max=grid[0],
            p_false_alarm_union_bound=union[grid[0]],
            method="declared h (no target), exact run lengths",
            _frame=frame,
        )
    own: dict[str, float] = {}
    for chart, sub in frame.groupby("chart", sort=False):
        ok = sub.loc[sub["meets_target"], "h"]
        if ok.empty:
            best = sub.loc[sub["arl_in_control"].idxmax()]
            raise EstimationError(
                f"no h on the grid ({grid[0]:g} to {grid[-1]:g}) gives CUSUM {chart!r} an "
                f"in-control average run length of {target:g}; the largest is "
                f"{best['arl_in_control']:.1f} at h = {best['h']:g}: extend the grid"
            )
        own[str(chart)] = float(ok.iloc[0])
    chosen = max(own.values())
    frame["smallest_for_chart"] = [
        hv == own[c] for c, hv in zip(frame["chart"], frame["h"], strict=True)
    ]
    frame["chosen"] = frame["h"] == chosen
    frame["p_false_alarm_union_bound"] = frame["h"].map(union)
    return CusumDecisionIntervalResult(
        h=chosen,
        target_arl0=target,
        n_per_period=n,
        horizon=int(horizon),
        n_charts=len(own),
        n_grid=len(grid),
        grid_min=grid[0],
        grid_max=grid[-1],
        p_false_alarm_union_bound=union[chosen],
        method="smallest grid h whose exact in-control ARL reaches the target for every chart",
        _frame=frame,
    )


@dataclasses.dataclass(frozen=True)
class ChartSetFalseAlarmResult(Result):
    r"""Chance of at least one false alarm from a set of charts watched together.

    Attributes
    ----------
    p_any : float
        Share of simulated in-control runs in which at least one chart signals
        within ``horizon`` periods (the family-wise false-alarm rate).
    se : float
        Its Monte Carlo standard error :math:`\sqrt{p(1-p)/R}`.
    p_any_if_independent : float
        :math:`1 - \prod_c (1 - p_c)` from the single charts' rates, as if the
        charts were independent (an upper reference when they are positively
        dependent, as nested rates are).
    horizon, n_charts, n_simulations, seed : int
    method : str

    ``charts_frame()`` gives each chart's own false-alarm rate within the horizon.
    """

    p_any: float
    se: float
    p_any_if_independent: float
    horizon: int
    n_charts: int
    n_simulations: int
    seed: int
    method: str
    _frame: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def charts_frame(self) -> pd.DataFrame:
        """One row per chart: ``chart, kind, stage, p_false_alarm, se``."""
        return self._frame.copy()


def _limits(centre: float, n: int, L: float) -> tuple[float, float]:
    half = L * math.sqrt(centre * (1.0 - centre) / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def chart_set_false_alarm(
    n_per_period: int,
    *,
    rates: Sequence[float],
    p_chart_centres: Sequence[float | None],
    cusums: Sequence[tuple[float, float, float] | None],
    independent_p_charts: Sequence[tuple[int, float, float]] = (),
    sigma_multiplier: float = 3.0,
    horizon: int,
    n_simulations: int,
    seed: int,
    names: Sequence[str] | None = None,
) -> ChartSetFalseAlarmResult:
    r"""In-control chance that any chart of a set signals within ``horizon`` periods, by simulation.

    The charts watch **nested** rates of the same trials (e.g. of the
    VCF-positive scans of a week: identified, and identified and referred),
    each with a p-chart of its successes and/or a CUSUM of its misses
    (:func:`binomial_cusum`), plus p-charts of **independent** rates (e.g. the
    share of all scans the AI flags).

    Parameters
    ----------
    n_per_period : int
        Trials per period of the nested stages (fixed), > 0.
    rates : sequence of float
        In-control rates of the nested stages, non-increasing: stage
        :math:`j`'s successes are a subset of stage :math:`j-1`'s.
    p_chart_centres : sequence of (float or None)
        Centre line of each stage's p-chart (``None``: no p-chart); taken as
        fixed (a standard or declared baseline, not re-estimated).
    cusums : sequence of ((p0, p1, h) or None)
        Each stage's CUSUM of misses (``n - successes``): in- and out-of-control
        miss rates and decision interval (``None``: no CUSUM).
    independent_p_charts : sequence of (n, rate, centre)
        Further p-charts of independent binomial counts: trials per period,
        in-control rate, centre line.
    sigma_multiplier : float
        :math:`L` of every p-chart.
    horizon : int
        Periods monitored (e.g. the 8 weeks of the prospective period).
    n_simulations : int
        Independent in-control runs, >= 100.
    seed : int
        Seed of :func:`numpy.random.default_rng` (required).
    names : sequence of str, optional
        Stage names for the table (default ``stage 1``, ...).

    Notes
    -----
    Per period :math:`t`: :math:`S_{1t} \sim \mathrm{Bin}(n, r_1)`,
    :math:`S_{jt} \mid S_{j-1,t} \sim \mathrm{Bin}(S_{j-1,t}, r_j / r_{j-1})`
    (so :math:`S_{jt} \sim \mathrm{Bin}(n, r_j)` marginally), independent
    across periods. A p-chart signals when :math:`S_{jt}/n` lies strictly
    outside :math:`c \pm L\sqrt{c(1-c)/n}` (clipped to [0, 1], as
    :func:`p_chart`); a CUSUM when :math:`S > h` (as :func:`binomial_cusum`).
    ``p_any`` is the share of runs with any signal in periods
    :math:`1..\text{horizon}` (Montgomery 2013, section 9.3 on several charts
    at once; the charts of nested rates are dependent, so the family-wise rate
    is not the independence product).

    """
    n = int(n_per_period)
    if n <= 0:
        raise StudyvalError(f"n_per_period must be positive, got {n_per_period}")
    r = [float(v) for v in rates]
    if not r or len(p_chart_centres) != len(r) or len(cusums) != len(r):
        raise StudyvalError("rates, p_chart_centres and cusums need one entry per stage")
    if any(not 0.0 < v < 1.0 for v in r) or any(b > a for a, b in itertools.pairwise(r)):
        raise StudyvalError(
            f"rates must lie in (0, 1) and not increase from stage to stage (nested), got {r}"
        )
    L = float(sigma_multiplier)
    H, sims = int(horizon), int(n_simulations)
    if H <= 0:
        raise StudyvalError(f"horizon must be positive, got {horizon}")
    if sims < 100:
        raise StudyvalError(f"n_simulations must be at least 100, got {n_simulations}")
    stage_names = list(names) if names is not None else [f"stage {j + 1}" for j in range(len(r))]
    rng = np.random.default_rng(seed)
    charts: list[tuple[str, str, str, np.ndarray]] = []  # name, kind, stage, signalled (sims,)
    succ = np.empty((len(r), sims, H), dtype=np.int64)
    prev = np.full((sims, H), n)
    prev_rate = 1.0
    for j, rate in enumerate(r):
        succ[j] = rng.binomial(prev, rate / prev_rate)
        prev, prev_rate = succ[j], rate
    for j, name in enumerate(stage_names):
        c = p_chart_centres[j]
        if c is not None:
            lo, hi = _limits(float(c), n, L)
            p = succ[j] / n
            charts.append(
                (f"p-chart, {name}", "p-chart", name, np.any((p < lo) | (p > hi), axis=1))
            )
        cu = cusums[j]
        if cu is not None:
            p0, p1, h = (float(v) for v in cu)
            k = cusum_reference_value(p0, p1)
            s = np.zeros(sims)
            hit = np.zeros(sims, dtype=bool)
            for t in range(H):
                s = np.maximum(0.0, s + (n - succ[j][:, t]) - k * n)
                hit |= s > h
            charts.append((f"CUSUM of misses, {name}", "CUSUM", name, hit))
    for i, (m, rate, c) in enumerate(independent_p_charts):
        m = int(m)
        if m <= 0 or not 0.0 < float(rate) < 1.0:
            raise StudyvalError(f"independent p-chart {i + 1}: n must be > 0 and rate in (0, 1)")
        lo, hi = _limits(float(c), m, L)
        p = rng.binomial(m, float(rate), size=(sims, H)) / m
        charts.append(
            (f"p-chart, independent {i + 1}", "p-chart", f"independent {i + 1}",
             np.any((p < lo) | (p > hi), axis=1))
        )  # fmt: skip
    if not charts:
        raise StudyvalError("no chart given")
    hits = np.column_stack([c[3] for c in charts])
    any_hit = hits.any(axis=1)
    p_each = hits.mean(axis=0)
    p_any = float(any_hit.mean())
    frame = pd.DataFrame(
        {
            "chart": [c[0] for c in charts],
            "kind": [c[1] for c in charts],
            "stage": [c[2] for c in charts],
            "p_false_alarm": p_each,
            "se": np.sqrt(p_each * (1 - p_each) / sims),
        }
    )
    return ChartSetFalseAlarmResult(
        p_any=p_any,
        se=math.sqrt(p_any * (1 - p_any) / sims),
        p_any_if_independent=float(1.0 - np.prod(1.0 - p_each)),
        horizon=H,
        n_charts=len(charts),
        n_simulations=sims,
        seed=int(seed),
        method="simulation of the nested in-control counts, charts evaluated together",
        _frame=frame,
    )
