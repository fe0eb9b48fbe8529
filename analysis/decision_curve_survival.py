r"""Net benefit at a horizon for a censored time-to-event outcome (decision curve analysis).

:func:`studyval.analysis.decision_curve.net_benefit` needs a binary outcome for
every subject; with censoring, the outcome by the horizon is unknown for
subjects censored before it. Vickers et al. (2008) estimate the true- and
false-positive fractions with the Kaplan-Meier estimator among the subjects
"treated" at threshold :math:`p_t` (predicted risk :math:`\ge p_t`):

.. math::

    \mathrm{NB}(p_t) = \underbrace{\{1 - \hat S(\tau \mid r \ge p_t)\}\,P(r \ge p_t)}_{\text{true positives}/n}
        - \underbrace{\hat S(\tau \mid r \ge p_t)\,P(r \ge p_t)}_{\text{false positives}/n}
          \,\frac{p_t}{1 - p_t},

with :math:`\hat S(\tau \mid r \ge p_t)` the Kaplan-Meier survival at the horizon
:math:`\tau` among those subjects, and :math:`\mathrm{NB} = 0` when nobody is
above the threshold. "Treat all" is the same with everybody treated; "treat
none" is 0. This is ``stdca`` (Vickers' R/Stata code) and
``dcurves::dca(Surv(time, status) ~ ..., time = )`` without competing risks.

Competing events must be coded as censoring by the caller (the Kaplan-Meier
risk then estimates the cause-specific "risk in the absence of the competing
event", which overstates the cumulative incidence when the competing event is
common; say so where it is used).

Vickers AJ, Cronin AM, Elkin EB, Gonen M (2008). Extensions to decision curve
analysis, a novel method for evaluating diagnostic tests, prediction models
and molecular markers. BMC Med Inform Decis Mak 8:53. doi:10.1186/1472-6947-8-53
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from studyval.errors import EstimationError, StudyvalError

__all__ = ["SurvivalDecisionCurve", "km_survival_at", "net_benefit_survival"]


def km_survival_at(time: np.ndarray, event: np.ndarray, horizon: float) -> tuple[float, bool]:
    """Kaplan-Meier survival at ``horizon`` and whether follow-up reaches it.

    Returns ``(S(horizon), reached)``; ``reached`` is False when the last
    follow-up time is before the horizon and the curve has not reached 0 (the
    value is then the curve's last value, carried forward).
    """
    if time.size == 0:
        return 1.0, False
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    uniq, first = np.unique(t, return_index=True)
    n_risk = t.size - first
    d = np.add.reduceat(e.astype(float), first)
    keep = (uniq <= horizon) & (d > 0)
    s = float(np.prod(1.0 - d[keep] / n_risk[keep]))
    reached = bool(t[-1] >= horizon or s == 0.0)
    return s, reached


@dataclasses.dataclass(frozen=True)
class SurvivalDecisionCurve:
    """Net benefit at a horizon over a grid of thresholds.

    :meth:`to_frame` is the tidy table, one row per strategy and threshold:
    ``strategy, threshold, net_benefit, n_treated, km_risk_treated,
    follow_up_reaches_horizon``; strategies are the models, ``treat all`` and
    ``treat none``.

    Attributes
    ----------
    horizon : float
    n : int
    n_events : int
        Events at or before the horizon.
    method : str

    """

    _table: pd.DataFrame = dataclasses.field(repr=False)
    horizon: float
    n: int
    n_events: int
    method: str = "Kaplan-Meier net benefit at the horizon (Vickers et al. 2008)"

    def to_frame(self) -> pd.DataFrame:
        """The net-benefit table (a copy); see the class docstring."""
        return self._table.copy()


def net_benefit_survival(
    time: Any,
    event: Any,
    risks: Mapping[str, Any],
    *,
    horizon: float,
    thresholds: Any,
) -> SurvivalDecisionCurve:
    """Net benefit at ``horizon`` of treating subjects whose predicted risk is >= threshold.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and >= 0 (an event at time 0, e.g. a death on the day
        of surgery, has every subject at risk, as in R's ``survival::survfit``).
    event : array-like, shape (n,)
        1 = event, 0 = censored (competing events coded 0 by the caller).
    risks : mapping of str to array-like, shape (n,)
        Predicted risks of the event by the horizon, in [0, 1], one per model.
    horizon : float
        Horizon, > 0 and before the last follow-up time.
    thresholds : array-like of float
        Threshold probabilities, strictly between 0 and 1.

    Raises
    ------
    StudyvalError
        Invalid inputs (the message names the problem).
    EstimationError
        No events; horizon at or after the last follow-up time.

    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event)
    if t.ndim != 1 or e.shape != t.shape:
        raise StudyvalError("time and event must be one-dimensional and of equal length")
    if not np.all(np.isfinite(t)) or np.any(t < 0):
        raise StudyvalError("time must be finite and >= 0")
    if not np.isin(e, (0, 1)).all():
        raise StudyvalError("event must be 0 (censored) or 1 (event)")
    e = e.astype(np.int64)
    h = float(horizon)
    if not np.isfinite(h) or h <= 0:
        raise StudyvalError(f"horizon must be > 0, got {horizon}")
    if e.sum() == 0:
        raise EstimationError("no events: every subject is censored, net benefit is undefined")
    if h >= t.max():
        raise EstimationError(
            f"horizon {h:g} is at or after the last follow-up time {t.max():g}; "
            "the Kaplan-Meier risk at the horizon is not estimable"
        )
    th = np.atleast_1d(np.asarray(thresholds, dtype=np.float64))
    if th.ndim != 1 or th.size == 0 or np.any((th <= 0) | (th >= 1)) or not np.isfinite(th).all():
        raise StudyvalError("thresholds must be a non-empty 1-d array strictly inside (0, 1)")
    n = t.size
    rows: list[dict[str, Any]] = []
    s_all, _ = km_survival_at(t, e, h)
    for p in th:
        w = p / (1.0 - p)
        rows.append(
            {
                "strategy": "treat all",
                "threshold": p,
                "net_benefit": (1.0 - s_all) - s_all * w,
                "n_treated": n,
                "km_risk_treated": 1.0 - s_all,
                "follow_up_reaches_horizon": True,
            }
        )
        rows.append(
            {
                "strategy": "treat none",
                "threshold": p,
                "net_benefit": 0.0,
                "n_treated": 0,
                "km_risk_treated": np.nan,
                "follow_up_reaches_horizon": True,
            }
        )
    for name, r in risks.items():
        r = np.asarray(r, dtype=np.float64)
        if r.shape != t.shape:
            raise StudyvalError(f"risks[{name!r}] has shape {r.shape}, expected {t.shape}")
        if not np.all(np.isfinite(r)) or np.any((r < 0) | (r > 1)):
            raise StudyvalError(f"risks[{name!r}] must be probabilities in [0, 1]")
        for p in th:
            m = r >= p
            k = int(m.sum())
            if k == 0:
                nb, risk_t, reached = 0.0, np.nan, True
            else:
                s, reached = km_survival_at(t[m], e[m], h)
                frac = k / n
                nb = (1.0 - s) * frac - s * frac * p / (1.0 - p)
                risk_t = 1.0 - s
            rows.append(
                {
                    "strategy": str(name),
                    "threshold": p,
                    "net_benefit": nb,
                    "n_treated": k,
                    "km_risk_treated": risk_t,
                    "follow_up_reaches_horizon": reached,
                }
            )
    table = pd.DataFrame(rows)
    return SurvivalDecisionCurve(
        _table=table, horizon=h, n=int(n), n_events=int(((t <= h) & (e == 1)).sum())
    )
