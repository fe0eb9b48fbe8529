r"""Grouped calibration of a predicted cumulative incidence at a horizon (competing risks).

* :func:`calibration_groups_competing` -- mean predicted cumulative incidence
  of one cause against the Aalen-Johansen observed incidence in quantile
  groups of the prediction, with the overall observed-to-expected ratio
  (:class:`CompetingRisksCalibrationResult`).
* :func:`calibration_slope_competing` -- the calibration slope of a predicted
  cumulative incidence at a horizon: the coefficient of a Fine-Gray model on
  the complementary log-log of the prediction
  (:class:`CompetingRisksCalibrationSlopeResult`).

Event codes as :mod:`studyval.analysis.competing_risks` describes them (0 =
censored, 1..K = cause). A competing event is never censoring: the observed
incidence is the Aalen-Johansen estimate (``cmprsk::cuminc``), not one minus a
Kaplan-Meier survival.

Oracle: R 4.2 with cmprsk 2.2-11 (``cuminc`` and ``timepoints`` per group of
``findInterval`` on the ``quantile`` cut points; ``crr`` on the complementary
log-log of the prediction); R calls beside the expected values in
``tests/test_competing_risks_calibration.py``.

References
----------
* Gerds TA, Andersen PK, Kattan MW (2014). Calibration plots for risk
  prediction models in the presence of competing risks. Stat Med
  33:3191-3203. doi:10.1002/sim.6152
* Austin PC, Putter H, Giardiello D, van Klaveren D (2022). Graphical
  calibration curves and the integrated calibration index (ICI) for competing
  risk models. Diagn Progn Res 6:2. doi:10.1186/s41512-021-00114-6
* van Geloven N, Giardiello D, Bonneville EF, et al. (2022). Validation of
  prediction models in the presence of competing risks: a guide through modern
  methods. BMJ 377:e069249. doi:10.1136/bmj-2021-069249 (the calibration slope
  of a Fine-Gray model on cloglog of the predicted risk, follow-up
  administratively censored at the horizon).
* Aalen OO, Johansen S (1978). An empirical transition matrix for
  non-homogeneous Markov chains based on censored observations. Scand J Stat
  5:141-150.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis._checks import check_alpha, z_critical
from studyval.analysis.cumulative_incidence import cumulative_incidence
from studyval.analysis.fine_gray import fine_gray
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = [
    "CompetingRisksCalibrationResult",
    "CompetingRisksCalibrationSlopeResult",
    "calibration_groups_competing",
    "calibration_slope_competing",
]


@dataclasses.dataclass(frozen=True)
class CompetingRisksCalibrationResult(Result):
    r"""Predicted against observed cumulative incidence at a horizon, by quantile group.

    Attributes
    ----------
    groups : DataFrame
        One row per group (1 = lowest predictions): ``group, n, predicted``
        (mean predicted incidence), ``observed`` (Aalen-Johansen incidence of
        the cause by the horizon in the group), ``ci_low, ci_high`` (its
        log(-log) limits with the ``cuminc`` variance; NaN where the observed
        incidence is 0 or 1) and ``n_events`` (events of the cause by the
        horizon).
    observed, observed_ci_low, observed_ci_high : float
        Aalen-Johansen incidence of the cause by the horizon in all patients,
        with its limits.
    mean_predicted : float
        :math:`\bar p = n^{-1} \sum_i \hat p_i`.
    oe_ratio : float
        Observed over expected, :math:`\hat F_k(\tau) / \bar p`.
    max_abs_group_difference : float
        :math:`\max_g |\hat F_{k,g}(\tau) - \bar p_g|`.
    n_groups : int
        Number of groups.
    horizon : float
    cause : int
    method : str
    """

    groups: pd.DataFrame
    observed: float
    observed_ci_low: float
    observed_ci_high: float
    mean_predicted: float
    oe_ratio: float
    max_abs_group_difference: float
    n_groups: int
    horizon: float
    cause: int
    method: str = (
        "quantile groups of predicted risk; Aalen-Johansen observed incidence "
        "(cmprsk::cuminc variance, log(-log) limits)"
    )

    def to_frame(self) -> pd.DataFrame:
        """The per-group table (``groups``); the scalars are in :meth:`to_dict`."""
        return self.groups.copy()


def calibration_groups_competing(
    time: Any,
    event_code: Any,
    risk: Any,
    *,
    cause: int,
    horizon: float,
    n_groups: int = 5,
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
) -> CompetingRisksCalibrationResult:
    r"""Grouped calibration of a predicted cumulative incidence of ``cause`` at ``horizon``.

    The predictions are cut at their sample quantiles
    :math:`q_0 < q_1 < \dots < q_G` (``numpy.quantile``, R's type 7); patient
    :math:`i` is in group :math:`g = 1 + \#\{j \in 1..G-1 : q_j \le \hat p_i\}`
    (R: ``findInterval(p, q[2:G]) + 1``), so each group but the last is
    :math:`[q_{g-1}, q_g)` and the last is closed. In each group

    .. math::

        \bar p_g = n_g^{-1} \sum_{i \in g} \hat p_i, \qquad
        \hat F_{k,g}(\tau) = \sum_{t_j \le \tau} \hat S_g(t_j^-)\, d_{kj} / n_j

    (the Aalen-Johansen estimator of the cumulative incidence of cause
    :math:`k`, competing events not censored; Gerds et al. 2014), and over all
    patients :math:`O/E = \hat F_k(\tau) / \bar p`.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    risk : array-like, shape (n,)
        Predicted cumulative incidence of ``cause`` by ``horizon``, in [0, 1].
    cause : int
        The cause of interest.
    horizon : float
        The time of the predictions.
    n_groups : int, default 5
        Number of quantile groups (at least 2).
    alpha : float, default 0.05
        Limits at level ``1 - alpha``.
    causes : sequence of int, optional
        Declared causes (as :func:`~studyval.analysis.cumulative_incidence.cumulative_incidence`).

    Returns
    -------
    CompetingRisksCalibrationResult

    Raises
    ------
    StudyvalError
        Lengths differ, fewer than 2 groups, or a prediction outside [0, 1] or missing.
    EstimationError
        A quantile group is empty (too many tied predictions for ``n_groups``
        groups), or the horizon is after a group's last follow-up.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([1., 2, 3, 4, 5, 6, 7, 8, 9, 10])
    >>> e = np.array([1, 2, 0, 1, 1, 0, 2, 1, 0, 0])
    >>> p = np.linspace(0.1, 0.6, 10)
    >>> r = calibration_groups_competing(t, e, p, cause=1, horizon=8, n_groups=2)
    >>> r.groups["n"].tolist()
    [5, 5]
    """
    check_alpha(alpha)
    t = np.asarray(time, dtype=float)
    c = np.asarray(event_code)
    p = np.asarray(risk, dtype=float)
    if not (len(t) == len(c) == len(p)):
        raise StudyvalError(
            f"time, event_code and risk differ in length ({len(t)}, {len(c)}, {len(p)})"
        )
    if int(n_groups) < 2:
        raise StudyvalError(f"n_groups must be at least 2 (got {n_groups})")
    if np.isnan(p).any() or (p < 0).any() or (p > 1).any():
        raise StudyvalError("risk must be predicted probabilities in [0, 1], none missing")
    g_count = int(n_groups)
    q = np.quantile(p, np.linspace(0, 1, g_count + 1))
    grp = np.clip(np.searchsorted(q[1:-1], p, side="right"), 0, g_count - 1)
    sizes = np.bincount(grp, minlength=g_count)
    if (sizes == 0).any():
        empty = [int(g) + 1 for g in np.flatnonzero(sizes == 0)]
        raise EstimationError(
            f"quantile group(s) {empty} of {g_count} are empty (tied predictions); use fewer groups"
        )
    by_group = cumulative_incidence(
        t, c, cause=cause, groups=grp + 1, times=[horizon], alpha=alpha, causes=causes
    ).to_frame()
    by_group = by_group.set_index("group")
    rows = []
    for gi in range(g_count):
        m = grp == gi
        obs = by_group.loc[gi + 1]
        rows.append(
            {
                "group": gi + 1,
                "n": int(m.sum()),
                "predicted": float(p[m].mean()),
                "observed": float(obs["estimate"]),
                "ci_low": float(obs["ci_low"]),
                "ci_high": float(obs["ci_high"]),
                "n_events": int(((c == cause) & (t <= horizon) & m).sum()),
            }
        )
    groups = pd.DataFrame(rows)
    overall = cumulative_incidence(
        t, c, cause=cause, times=[horizon], alpha=alpha, causes=causes
    ).to_frame()
    observed = float(overall["estimate"].iloc[0])
    mean_p = float(p.mean())
    return CompetingRisksCalibrationResult(
        groups=groups,
        observed=observed,
        observed_ci_low=float(overall["ci_low"].iloc[0]),
        observed_ci_high=float(overall["ci_high"].iloc[0]),
        mean_predicted=mean_p,
        oe_ratio=observed / mean_p,
        max_abs_group_difference=float((groups["observed"] - groups["predicted"]).abs().max()),
        n_groups=g_count,
        horizon=float(horizon),
        cause=int(cause),
    )


@dataclasses.dataclass(frozen=True)
class CompetingRisksCalibrationSlopeResult(Result):
    r"""Calibration slope of a predicted cumulative incidence at a horizon (Fine-Gray on cloglog).

    Attributes
    ----------
    slope : float
        :math:`\hat\beta`, the Fine-Gray coefficient of
        :math:`\log\{-\log(1 - \hat p_i)\}`; 1 = the spread of the predictions
        is right, below 1 = too extreme (overfitting), above 1 = too modest.
    se : float
        Robust (``cmprsk::crr``) standard error of :math:`\hat\beta`.
    ci_low, ci_high : float
        :math:`\hat\beta \pm z_{1-\alpha/2}\,\mathrm{se}` (Wald, on the slope scale).
    n : int
        Subjects.
    n_events : int
        Events of the cause by the horizon.
    n_competing : int
        Competing events by the horizon.
    horizon : float
    cause : int
    censored_at_horizon : bool
        Whether follow-up was administratively censored at the horizon.
    converged : bool
        The Fine-Gray fit converged.
    ci_level : float
    method : str
    """

    slope: float
    se: float
    ci_low: float
    ci_high: float
    n: int
    n_events: int
    n_competing: int
    horizon: float
    cause: int
    censored_at_horizon: bool
    converged: bool
    ci_level: float
    method: str = (
        "Fine-Gray regression of the cause on cloglog(predicted cumulative incidence) "
        "(cmprsk::crr robust SE)"
    )


def calibration_slope_competing(
    time: Any,
    event_code: Any,
    risk: Any,
    *,
    cause: int,
    horizon: float,
    censor_at_horizon: bool,
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
) -> CompetingRisksCalibrationSlopeResult:
    r"""Calibration slope of a predicted cumulative incidence of ``cause`` by ``horizon``.

    The Fine-Gray model (:func:`~studyval.analysis.fine_gray.fine_gray`) of the
    cause with the complementary log-log of the prediction as its only covariate,

    .. math::

        \lambda_k(t \mid \hat p_i) = \lambda_{k0}(t)\,
        \exp\bigl[\beta \log\{-\log(1 - \hat p_i)\}\bigr],

    has :math:`\beta = 1` when the predictions are calibrated up to a shift in
    the baseline (on the subdistribution scale, :math:`1 - F_k(\tau \mid
    \hat p) = \{1 - F_{k0}(\tau)\}^{\exp(\beta\,\mathrm{cloglog}\,\hat p)}`, the
    calibration model of Austin, Putter, Giardiello & van Klaveren 2022 without
    splines); :math:`\hat\beta` is the calibration slope (van Geloven et al. 2022).
    With ``censor_at_horizon`` the follow-up is administratively censored at
    the horizon first (a time after :math:`\tau` becomes :math:`\tau`,
    censored), so that only events up to the predictions' horizon count.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    risk : array-like, shape (n,)
        Predicted cumulative incidence of ``cause`` by ``horizon``, strictly
        inside (0, 1) (its cloglog must be finite).
    cause : int
        The cause of interest.
    horizon : float
        The time of the predictions.
    censor_at_horizon : bool
        Censor follow-up at the horizon (keyword, no default: a choice of the plan).
    alpha : float, default 0.05
        Interval level ``1 - alpha``.
    causes : sequence of int, optional
        Declared causes.

    Returns
    -------
    CompetingRisksCalibrationSlopeResult

    Raises
    ------
    StudyvalError
        Lengths differ, a prediction missing or outside (0, 1), a bad horizon.
    EstimationError
        No event of the cause (by the horizon), all predictions equal, or the
        Fine-Gray fit does not converge.

    Notes
    -----
    Agrees with ``cmprsk::crr(ftime, fstatus, cov1 = log(-log(1 - p)),
    failcode = cause, cencode = 0)`` on the (censored) data (``coef``, robust
    SE) to about 1e-8 (``crr`` stops at ``gtol = 1e-6``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> p = rng.uniform(0.05, 0.6, 300)
    >>> u = rng.uniform(size=300)
    >>> code = np.where(u < p, 1, np.where(u < p + 0.1, 2, 0))
    >>> t = np.where(code > 0, rng.uniform(0, 1, 300), 1.0 + rng.uniform(0, 1, 300))
    >>> r = calibration_slope_competing(t, code, p, cause=1, horizon=1.0, censor_at_horizon=True)
    >>> bool(0.5 < r.slope < 1.5)
    True
    """
    check_alpha(alpha)
    t = np.asarray(time, dtype=float)
    c = np.asarray(event_code)
    p = np.asarray(risk, dtype=float)
    if not (t.ndim == c.ndim == p.ndim == 1 and len(t) == len(c) == len(p)):
        raise StudyvalError(
            f"time, event_code and risk must be one-dimensional of one length "
            f"({len(t)}, {len(c)}, {len(p)})"
        )
    if not np.all(np.isfinite(p)) or (p <= 0).any() or (p >= 1).any():
        raise StudyvalError(
            "risk must be predicted probabilities strictly inside (0, 1), none missing "
            "(the complementary log-log of 0 or 1 is infinite)"
        )
    tau = float(horizon)
    if not np.isfinite(tau) or tau <= 0:
        raise StudyvalError(f"horizon must be finite and > 0, got {horizon!r}")
    if not isinstance(censor_at_horizon, bool):
        raise StudyvalError(f"censor_at_horizon must be True or False, got {censor_at_horizon!r}")
    if censor_at_horizon:
        after = t > tau
        t = np.where(after, tau, t)
        c = np.where(after, 0, c)
    if np.ptp(p) == 0:
        raise EstimationError("every prediction is the same; the calibration slope is undefined")
    frame = pd.DataFrame({"time": t, "code": c, "cloglog": np.log(-np.log1p(-p))})
    fg = fine_gray(
        frame,
        duration="time",
        event="code",
        cause=cause,
        covariates=["cloglog"],
        alpha=alpha,
        causes=causes,
    )
    if not fg.converged:
        raise EstimationError("the Fine-Gray calibration model did not converge")
    row = fg.summary.iloc[0]
    slope, se = float(row["coef"]), float(row["se"])
    z = z_critical(alpha)
    by = t <= tau
    return CompetingRisksCalibrationSlopeResult(
        slope=slope,
        se=se,
        ci_low=slope - z * se,
        ci_high=slope + z * se,
        n=len(t),
        n_events=int(((c == fg.cause) & by).sum()),
        n_competing=int(((c != 0) & (c != fg.cause) & by).sum()),
        horizon=tau,
        cause=int(fg.cause),
        censored_at_horizon=censor_at_horizon,
        converged=bool(fg.converged),
        ci_level=1.0 - float(alpha),
    )
