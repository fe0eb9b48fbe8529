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

Both return one row per period with the limits and a ``signal`` flag; the
statistics are pure and draw nothing (figures are drawn from these tables).

References
----------
Montgomery DC (2013). Introduction to Statistical Quality Control, 7th ed.
Wiley. Sections 7.2 (control charts for fraction nonconforming) and 9.1
(CUSUM).

Reynolds MR Jr, Stoumbos ZG (1999). A CUSUM chart for monitoring a proportion
when inspecting continuously. J Qual Technol 31:87-108.
doi:10.1080/00224065.1999.11979900
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import StudyvalError
from studyval.results import Result

from ._checks import check_option
from .proportions import _as_count_array

__all__ = [
    "CENTRE_SOURCES",
    "CusumResult",
    "PChartResult",
    "binomial_cusum",
    "cusum_reference_value",
    "p_chart",
]

#: How the centre line of a p-chart was obtained.
CENTRE_SOURCES: tuple[str, ...] = ("pooled", "standard")


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
        limits, Phase I) or ``standard`` (a given value, Phase II).
    sigma_multiplier : float
        :math:`L` (3 for Shewhart limits).
    n_periods : int
    n_signals : int
        Periods outside the limits.
    total_successes, total_n : int

    """

    centre: float
    centre_source: str
    sigma_multiplier: float
    n_periods: int
    n_signals: int
    total_successes: int
    total_n: int
    _frame: pd.DataFrame = dataclasses.field(repr=False, compare=False, default=None)

    def points_frame(self) -> pd.DataFrame:
        """One row per period: ``period, successes, n, proportion, centre, lcl, ucl, signal``.

        ``signal`` is ``below``, ``above``, ``""`` (in control) or ``no cases``
        (:math:`n_i = 0`: no proportion, never a signal).
        """
        return self._frame.copy()


def p_chart(
    successes: Any,
    n: Any,
    *,
    centre: float | None = None,
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
        is expected to achieve. ``None``: the pooled proportion of the charted
        periods (trial limits).
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

    """
    x, m, lab = _counts(successes, n, labels)
    L = float(sigma_multiplier)
    if not (math.isfinite(L) and L > 0):
        raise StudyvalError(f"sigma_multiplier must be positive, got {sigma_multiplier}")
    if centre is None:
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

    """

    p0: float
    p1: float
    k: float
    h: float
    reset_after_signal: bool
    n_periods: int
    n_signals: int
    first_signal: str
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
        _frame=frame,
    )


def check_centre_source(value: str) -> str:
    """Validate a centre-line source name (``pooled`` or ``standard``)."""
    return check_option(value, CENTRE_SOURCES, "centre")
