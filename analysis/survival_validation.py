r"""Validation of risk predictions for a time-to-event outcome at a fixed horizon.

* :func:`time_dependent_auc` -- cumulative/dynamic AUC at a horizon with
  inverse-probability-of-censoring weights (IPCW) and an influence-function
  standard error; competing risks through ``cause=``.
* :func:`compare_time_dependent_auc` -- paired difference of two models' AUCs.
* :func:`brier` -- IPCW Brier score at the horizon, the Kaplan-Meier (null
  model) Brier score and the index of prediction accuracy (IPA, scaled Brier).
* :func:`calibration_at_horizon` -- observed (Kaplan-Meier) versus predicted
  risk in groups, a smooth calibration curve, ICI, E50, E90 and Emax.
* :func:`risk_groups_at_horizon` -- Kaplan-Meier against mean predicted risk
  in fixed groups of predicted risk, with the groups' curves and log-rank test.

Conventions
-----------
* **Risk, higher = worse.** ``risk`` / ``predicted_risk`` is the predicted
  risk of the event by the horizon (or, for the AUC, any score that is higher
  for earlier events: a Cox linear predictor, a network's logit). A survival
  probability must be turned into a risk (``1 - S``) first; passing a survival
  probability flips the AUC to ``1 - AUC``.
* ``time`` is the follow-up time (finite, ``>= 0``); ``event`` is 1 for an
  event and 0 for censoring, or, with ``cause=``, a competing-risk code
  (0 = censored, 1..K = causes).
* Cases are subjects with an event (of ``cause``) at or before the horizon
  :math:`\tau`; controls are subjects still event-free after :math:`\tau`
  (and, with competing risks, those with another cause by :math:`\tau`).
  Subjects censored at or before :math:`\tau` get weight 0; the others are
  re-weighted by the reverse Kaplan-Meier estimate :math:`\hat G` of the
  censoring distribution (:func:`studyval.analysis.survival._km_censoring`,
  ``prodlim``'s convention: at a tied time events precede censorings).
* The horizon must lie **before the last follow-up time** (someone must still
  be under observation after :math:`\tau`); otherwise :math:`1/\hat G(\tau)`
  is undefined and an :class:`~studyval.errors.EstimationError` says so. A
  horizon near the end of follow-up rests on few subjects and large weights:
  the counts in every result show how many.

Oracles: R 4.2 with riskRegression 2022.11.28 (``Score``), survival 3.5 and
rms 6.5; the R calls sit beside the expected values in
``tests/test_survival_validation.py``.

References
----------
* Blanche P, Dartigues JF, Jacqmin-Gadda H (2013). Estimating and comparing
  time-dependent areas under receiver operating characteristic curves for
  censored event times with competing risks. Stat Med 32:5381-5397.
  doi:10.1002/sim.5958
* Uno H, Cai T, Tian L, Wei LJ (2007). Evaluating prediction rules for t-year
  survivors with censored regression models. JASA 102:527-537.
  doi:10.1198/016214507000000149
* Gerds TA, Schumacher M (2006). Consistent estimation of the expected Brier
  score in general survival models with right-censored event times. Biom J
  48:1029-1040. doi:10.1002/bimj.200610301
* Kattan MW, Gerds TA (2018). The index of prediction accuracy: an intuitive
  measure useful for evaluating risk prediction models. Diagn Progn Res 2:7.
  doi:10.1186/s41512-018-0029-2
* Gerds TA, Kattan MW (2021). *Medical Risk Prediction Models: With Ties to
  Machine Learning*. Chapman & Hall/CRC. doi:10.1201/9781138384484
  (the influence functions implemented in ``riskRegression``).
* Austin PC, Harrell FE Jr, van Klaveren D (2020). Graphical calibration
  curves and the integrated calibration index (ICI) for survival models. Stat
  Med 39:2714-2742. doi:10.1002/sim.8570
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from studyval.analysis._checks import check_alpha, check_follow_up_time, wald_difference
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._competing_risks_common import _check_event_codes
from studyval.analysis.kaplan_meier import _km_steps
from studyval.analysis.survival import KaplanMeierResult, _km_censoring, cox, kaplan_meier
from studyval.errors import EstimationError, StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "BrierResult",
    "CalibrationAtHorizonResult",
    "RiskGroupsResult",
    "TimeDependentAUCComparison",
    "TimeDependentAUCResult",
    "brier",
    "calibration_at_horizon",
    "compare_time_dependent_auc",
    "risk_groups_at_horizon",
    "time_dependent_auc",
]


# --------------------------------------------------------------------------- checks
def _check_binary_event(event: Any, n: int) -> np.ndarray:
    e = np.asarray(event)
    if e.ndim != 1:
        raise StudyvalError(f"event must be one-dimensional, got shape {e.shape}")
    if e.shape[0] != n:
        raise StudyvalError(f"event has {e.shape[0]} values but time has {n}")
    if e.dtype.kind == "b":
        return e.astype(np.int64)
    if e.dtype.kind not in "iuf":
        raise StudyvalError(
            f"event must be 0/1 or boolean (1 = event, 0 = censored), got dtype {e.dtype}"
        )
    ef = e.astype(np.float64)
    bad = ~((ef == 0) | (ef == 1))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"event must be 0 (censored) or 1 (event); {int(bad.sum())} other value(s), first at "
            f"position {i}: {e[i]!r} (pass cause= for competing-risk codes)"
        )
    return ef.astype(np.int64)


def _check_outcome(time: Any, event: Any, cause: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """Return times, status codes (0 = censored, ``cause`` = case, others competing) and cause."""
    t = check_follow_up_time(time)
    if cause is None:
        return t, _check_binary_event(event, t.shape[0]), 1
    codes, k, _ = _check_event_codes(event, t.shape[0], cause=cause, name="event")
    return t, codes, k


def _check_prediction(
    values: Any, n: int, name: str, *, probability: bool, open_interval: bool = False
) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise StudyvalError(f"{name} has {arr.shape[0]} values but time has {n}")
    if arr.dtype.kind not in "biuf":
        raise StudyvalError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} has {int(bad.sum())} non-finite value(s); first at position {i}: {arr[i]}"
        )
    if probability:
        out = (arr <= 0) | (arr >= 1) if open_interval else (arr < 0) | (arr > 1)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            where = "strictly between 0 and 1" if open_interval else "in [0, 1]"
            raise StudyvalError(
                f"{name} must be a predicted risk {where}; {int(out.sum())} value(s) outside, "
                f"first at position {i}: {arr[i]}"
            )
    return arr


def _check_horizon(horizon: Any, t: np.ndarray, status: np.ndarray, cause: int) -> float:
    if isinstance(horizon, bool) or not isinstance(horizon, int | float | np.integer | np.floating):
        raise StudyvalError(f"horizon must be a number, got {horizon!r}")
    h = float(horizon)
    if not math.isfinite(h) or h <= 0:
        raise StudyvalError(f"horizon must be finite and > 0, got {h}")
    if not (status != 0).any():
        raise EstimationError(
            f"all {t.shape[0]} subjects are censored: there is no event to predict"
        )
    if not (t > h).any():
        raise EstimationError(
            f"horizon={h:g} is at or beyond the last follow-up time {t.max():g}: nobody is still "
            "under observation after the horizon, so the censoring weight 1/G(horizon) is "
            "undefined; choose a horizon before the end of follow-up"
        )
    if not ((t <= h) & (status == cause)).any():
        what = "event" if cause == 1 else f"event of cause {cause}"
        raise EstimationError(f"no {what} at or before horizon={h:g}: there are no cases")
    return h


# --------------------------------------------------------------------------- IPCW core
@dataclasses.dataclass(frozen=True)
class _Weights:
    """IPCW weights of one data set at one horizon."""

    case: np.ndarray  # 1/G(T_i-) for cases, else 0
    control: np.ndarray  # 1/G(tau) if T_i > tau; 1/G(T_i-) for other causes by tau; else 0
    g_left: np.ndarray  # G(T_i-)
    g_tau: float


def _ipcw(t: np.ndarray, status: np.ndarray, cause: int, h: float) -> _Weights:
    any_event = (status != 0).astype(np.int64)
    g = _km_censoring(t, any_event)
    g_left = g.left(t)
    g_tau = float(g.at(h))
    before = t <= h
    case = np.where(before & (status == cause), 1.0 / g_left, 0.0)
    other = before & (status != 0) & (status != cause)
    control = np.where(~before, 1.0 / g_tau, np.where(other, 1.0 / g_left, 0.0))
    return _Weights(case, control, g_left, g_tau)


def _censoring_correction(
    t: np.ndarray, any_event: np.ndarray, h: float, resid: np.ndarray
) -> np.ndarray:
    r"""Term of the influence function due to estimating :math:`G` by Kaplan-Meier.

    For a statistic :math:`\frac1n\sum_i R_i` whose terms carry a factor
    :math:`1/\hat G(T_i-)` (events at or before :math:`\tau`) or
    :math:`1/\hat G(\tau)` (:math:`T_i > \tau`), returns for every subject
    :math:`k`

    .. math::

        C_k = \frac1n\Bigl[\sum_{i:\,T_i\le\tau,\,\delta_i\ne0} R_i\, f_k(T_i-)
              + f_k(\tau)\sum_{i:\,T_i>\tau} R_i\Bigr],\qquad
        f_k(s) = \frac{n\,I(T_k < s,\ \delta_k = 0)}{Y(T_k)}
              - \sum_{u \le T_k,\ u < s} \frac{n\,c_u}{Y(u)^2}

    (read :math:`u \le \tau` for :math:`s = \tau`), :math:`f_k` being the
    influence function of the Nelson-Aalen estimate of the censoring
    cumulative hazard, :math:`Y(u)` the number with follow-up :math:`\ge u`
    and :math:`c_u` the censorings at :math:`u`. This is what
    ``riskRegression``'s C++ routines ``getInfluenceFunctionBrierKMCensoringTerm``
    and ``getInfluenceFunctionAUCKMCensoringTerm`` compute, vectorised.
    """
    n = t.shape[0]
    utime, inv = np.unique(t, return_inverse=True)
    inv = inv.reshape(-1)
    k = utime.shape[0]
    censored = any_event == 0
    n_at = np.bincount(inv, minlength=k)
    c = np.bincount(inv, weights=censored.astype(np.float64), minlength=k)
    y = np.cumsum(n_at[::-1])[::-1].astype(np.float64)
    mc = np.cumsum(n * c / y**2)
    mc_before = np.concatenate(([0.0], mc[:-1]))
    in_e = (t <= h) & ~censored
    r_e = np.where(in_e, resid, 0.0)
    cum = np.cumsum(np.bincount(inv, weights=r_e, minlength=k))
    above = cum[-1] - cum[inv]  # sum over E with T_i > T_k
    below = np.cumsum(np.bincount(inv, weights=r_e * mc_before[inv], minlength=k))[inv]
    jump = np.where(censored, n / y[inv], 0.0)
    part_e = (jump - mc[inv]) * above - below
    h_idx = int(np.searchsorted(utime, h, side="right")) - 1
    mc_h = mc[h_idx] if h_idx >= 0 else 0.0
    f_h = np.where(t <= h, jump - mc[inv], -mc_h)
    part_c = f_h * float(np.sum(np.where(t > h, resid, 0.0)))
    return (part_e + part_c) / n


@dataclasses.dataclass(frozen=True)
class _AUCFit:
    auc: float
    influence: np.ndarray
    n_cases: int
    n_controls: int
    n_censored: int


def _auc_fit(
    t: np.ndarray, status: np.ndarray, risk: np.ndarray, cause: int, h: float, conservative: bool
) -> _AUCFit:
    n = t.shape[0]
    w = _ipcw(t, status, cause, h)
    w1, w2 = w.case, w.control
    levels, rinv = np.unique(risk, return_inverse=True)
    rinv = rinv.reshape(-1)
    g1 = np.bincount(rinv, weights=w1, minlength=levels.shape[0])
    g2 = np.bincount(rinv, weights=w2, minlength=levels.shape[0])
    # A_i: control weight below risk_i plus half the ties; B_j: case weight above plus half ties
    a = (np.cumsum(g2) - g2)[rinv] + 0.5 * g2[rinv]
    b = (np.cumsum(g1[::-1])[::-1] - g1)[rinv] + 0.5 * g1[rinv]
    s1, s2 = float(w1.sum()), float(w2.sum())
    # a ratio of sums: clip rounding error (1 + 2e-16) back into [0, 1]
    auc = min(1.0, max(0.0, float(np.sum(w1 * a) / (s1 * s2))))
    mu = s1 * s2 / n**2
    d = w1 * a + w2 * b - auc * (w1 * s2 + w2 * s1)
    infl = d / n
    if not conservative:
        infl = infl + _censoring_correction(t, (status != 0).astype(np.int64), h, d) / n
    infl = infl / mu
    return _AUCFit(
        auc=auc,
        influence=infl,
        n_cases=int(np.count_nonzero(w1)),
        n_controls=int(np.count_nonzero(w2)),
        n_censored=int(np.count_nonzero((t <= h) & (status == 0))),
    )


def _se(influence: np.ndarray) -> float:
    n = influence.shape[0]
    return float(np.std(influence, ddof=1) / math.sqrt(n))


# --------------------------------------------------------------------------- AUC
_AUC_METHOD = "IPCW cumulative/dynamic AUC, influence-function SE (riskRegression::Score)"


@dataclasses.dataclass(frozen=True)
class TimeDependentAUCResult(Result):
    r"""Cumulative/dynamic AUC at a horizon with an influence-function confidence interval.

    With cases :math:`T_i \le \tau,\ \delta_i = k` (weight
    :math:`W_{1i} = 1/\hat G(T_i-)`) and controls :math:`T_j > \tau` (weight
    :math:`W_{2j} = 1/\hat G(\tau)`) -- plus, with competing risks, subjects
    with another cause by :math:`\tau` (weight :math:`1/\hat G(T_j-)`,
    Blanche et al. 2013's "definition 2" controls) --

    .. math::

        \widehat{\mathrm{AUC}}(\tau) = \frac{\sum_i\sum_j W_{1i} W_{2j}
            \{I(r_i > r_j) + \tfrac12 I(r_i = r_j)\}}{\sum_i W_{1i} \sum_j W_{2j}}.

    The standard error is :math:`\mathrm{sd}(\mathrm{IF}_k)/\sqrt n` with the
    influence function

    .. math::

        \mathrm{IF}_k = \frac{D_k + C_k(D)}{n\,\hat\mu},\quad
        D_k = W_{1k} A_k + W_{2k} B_k - \widehat{\mathrm{AUC}}\,(W_{1k} S_2 + W_{2k} S_1),
        \quad \hat\mu = S_1 S_2 / n^2,

    where :math:`A_k = \sum_j W_{2j}\{I(r_k > r_j) + \frac12 I(r_k = r_j)\}`,
    :math:`B_k = \sum_i W_{1i}\{I(r_i > r_k) + \frac12 I(r_i = r_k)\}`,
    :math:`S_1 = \sum W_1`, :math:`S_2 = \sum W_2`, and :math:`C_k(D)` is the
    correction for estimating :math:`G` by Kaplan-Meier (omitted when
    ``conservative=True``). The interval is
    :math:`\widehat{\mathrm{AUC}} \pm z_{1-\alpha/2}\,\mathrm{se}`, truncated to
    [0, 1] as ``Score`` does. Blanche et al. (2013), doi:10.1002/sim.5958.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate : float
        :math:`\widehat{\mathrm{AUC}}(\tau)`, in [0, 1].
    se : float
        Influence-function standard error.
    ci_low, ci_high : float
        Confidence limits, truncated to [0, 1].
    ci_level : float
        ``1 - alpha``.
    horizon : float
        :math:`\tau`.
    n_cases : int
        Subjects with an event (of ``cause``) at or before the horizon.
    n_controls : int
        Subjects event-free after the horizon, plus (competing risks) subjects
        with another cause at or before it.
    n_censored_before_horizon : int
        Subjects censored at or before the horizon (weight 0; their share is
        carried by the IPC weights).
    cause : int or None
        The cause of interest (None: ordinary survival outcome).
    conservative : bool
        True if the censoring term of the influence function was omitted.
    method : str
        Description of estimator and variance.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    horizon: float
    n_cases: int
    n_controls: int
    n_censored_before_horizon: int
    cause: int | None
    conservative: bool
    method: str = _AUC_METHOD


def time_dependent_auc(
    time: Any,
    event: Any,
    risk: Any,
    *,
    horizon: float,
    alpha: float = 0.05,
    cause: int | None = None,
    conservative: bool = False,
) -> TimeDependentAUCResult:
    r"""Cumulative/dynamic AUC at ``horizon`` with IPCW and an influence-function SE.

    The probability that a subject with an event by the horizon has a higher
    predicted risk than a subject without one, estimated with inverse
    probability of censoring weights (Uno et al. 2007; Blanche et al. 2013);
    see :class:`TimeDependentAUCResult` for the formulas.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event : array-like, shape (n,)
        1 = event, 0 = censored; with ``cause``: 0 = censored, 1..K = causes.
    risk : array-like, shape (n,)
        Predicted risk, **higher = worse** (a predicted event probability by
        the horizon, a linear predictor, a logit). Only the order matters.
    horizon : float
        Prediction horizon :math:`\tau > 0`, before the last follow-up time.
    alpha : float, default 0.05
        The interval has level ``1 - alpha``.
    cause : int, optional
        Competing risks: the event code of interest. Cases have this cause by
        the horizon; subjects with another cause by the horizon are controls.
    conservative : bool, default False
        Omit the term of the influence function that accounts for estimating
        the censoring distribution (``Score(conservative = TRUE)``). The
        default (False) is ``Score``'s default; the conservative SE is
        usually slightly larger.

    Returns
    -------
    TimeDependentAUCResult

    Raises
    ------
    StudyvalError
        Invalid inputs: shapes, negative or missing times, event codes other
        than 0/1 without ``cause``, non-finite risks, ``horizon <= 0``.
    EstimationError
        All subjects censored, horizon at or beyond the last follow-up time,
        or no case by the horizon.

    Notes
    -----
    Agrees with ``riskRegression::Score(list(m = risk), formula = Hist(time,
    status) ~ 1, data = d, times = horizon, metrics = "auc", se.fit = TRUE)``
    (``AUC``, ``se``, ``lower``, ``upper``; default ``conservative = FALSE``,
    Kaplan-Meier censoring model, which is what ``Score`` uses for ``~ 1``) to
    about 1e-12, ties in risk and in time included. With competing risks it
    agrees with ``Score(..., cause = k)`` when the cause of interest is the
    first cause (code 1). ``Score`` (riskRegression 2022.11.28; the current
    source has the same call) passes ``status * event`` to a C++ influence
    function that takes code 1 as the case and code 2 as a control: for
    another cause of interest its SE is wrong (pbc, death at 5 years: 0.0965
    instead of 0.0213, which ``Score`` itself gives after recoding death to the
    first state), and a third cause drops out of the influence function
    (estimate unchanged). studyval gives the value of the recoded ``Score``
    call in every case.

    Examples
    --------
    >>> r = time_dependent_auc([1, 2, 3, 4, 5, 6], [1, 1, 0, 1, 0, 0],
    ...                        [0.9, 0.8, 0.5, 0.3, 0.4, 0.1], horizon=4.5)
    >>> round(r.estimate, 4), r.n_cases, r.n_controls
    (0.8, 3, 2)

    """
    alpha = check_alpha(alpha)
    t, status, k = _check_outcome(time, event, cause)
    r = _check_prediction(risk, t.shape[0], "risk", probability=False)
    h = _check_horizon(horizon, t, status, k)
    fit = _auc_fit(t, status, r, k, h, bool(conservative))
    se = _se(fit.influence)
    half = _z(alpha) * se
    return TimeDependentAUCResult(
        estimate=fit.auc,
        se=se,
        ci_low=max(0.0, fit.auc - half),
        ci_high=min(1.0, fit.auc + half),
        ci_level=1.0 - alpha,
        horizon=h,
        n_cases=fit.n_cases,
        n_controls=fit.n_controls,
        n_censored_before_horizon=fit.n_censored,
        cause=None if cause is None else k,
        conservative=bool(conservative),
    )


@dataclasses.dataclass(frozen=True)
class TimeDependentAUCComparison(Result):
    r"""Paired comparison of two models' time-dependent AUCs on the same subjects.

    .. math::

        \hat\Delta = \widehat{\mathrm{AUC}}_a - \widehat{\mathrm{AUC}}_b,\qquad
        \mathrm{se} = \mathrm{sd}(\mathrm{IF}_a - \mathrm{IF}_b)/\sqrt n,\qquad
        z = \hat\Delta/\mathrm{se},\quad p = 2\Phi(-|z|),

    with the influence functions of :class:`TimeDependentAUCResult`. The
    interval :math:`\hat\Delta \pm z_{1-\alpha/2}\,\mathrm{se}` is truncated to
    [-1, 1]. ``Score``'s ``contrasts`` for ``list(a = , b = )`` report
    ``delta.AUC`` = :math:`\mathrm{AUC}_b - \mathrm{AUC}_a` (model minus
    reference); ``difference`` here is its negative, with the same se and p.

    ``z, p_value = result`` unpacks.

    Attributes
    ----------
    name_a, name_b : str
        Model names.
    auc_a, auc_b : float
        The two AUCs.
    difference : float
        ``auc_a - auc_b``.
    se : float
        Influence-function standard error of the difference.
    ci_low, ci_high : float
        Confidence limits of the difference.
    ci_level : float
        ``1 - alpha``.
    z : float
        ``difference / se`` (0 if both are 0, e.g. identical models).
    p_value : float
        Two-sided normal p-value (1 for identical models).
    horizon : float
        Prediction horizon.
    n_cases, n_controls, n_censored_before_horizon : int
        As in :class:`TimeDependentAUCResult` (shared by both models).
    cause : int or None
        Cause of interest.
    conservative : bool
        Whether the censoring term was omitted.
    method : str
        Description.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("z", "p_value")

    name_a: str
    name_b: str
    auc_a: float
    auc_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    z: float
    p_value: float
    horizon: float
    n_cases: int
    n_controls: int
    n_censored_before_horizon: int
    cause: int | None
    conservative: bool
    method: str = (
        "paired IPCW AUC difference, influence-function SE (riskRegression::Score contrasts)"
    )


def compare_time_dependent_auc(
    time: Any,
    event: Any,
    risk_a: Any,
    risk_b: Any,
    *,
    horizon: float,
    alpha: float = 0.05,
    cause: int | None = None,
    conservative: bool = False,
    names: tuple[str, str] = ("a", "b"),
) -> TimeDependentAUCComparison:
    r"""Paired difference of two time-dependent AUCs with an influence-function SE.

    Parameters
    ----------
    time, event : array-like, shape (n,)
        As in :func:`time_dependent_auc`.
    risk_a, risk_b : array-like, shape (n,)
        Predicted risks of the two models, **higher = worse**.
    horizon : float
        Prediction horizon, before the last follow-up time.
    alpha : float, default 0.05
        The interval of the difference has level ``1 - alpha``.
    cause : int, optional
        Competing risks: the event code of interest.
    conservative : bool, default False
        Omit the censoring term of the influence functions.
    names : tuple of two str
        Model names for the result.

    Returns
    -------
    TimeDependentAUCComparison

    Raises
    ------
    StudyvalError, EstimationError
        As :func:`time_dependent_auc`; also for equal names.

    Notes
    -----
    Agrees with ``Score(list(a = risk_a, b = risk_b), formula = Hist(time,
    status) ~ 1, data = d, times = horizon, metrics = "auc")$AUC$contrasts``
    (``delta.AUC`` = -difference, ``se``, ``p``).

    """
    alpha = check_alpha(alpha)
    names = (str(names[0]), str(names[1]))
    if names[0] == names[1]:
        raise StudyvalError(f"names must be distinct, got {names!r}")
    t, status, k = _check_outcome(time, event, cause)
    ra = _check_prediction(risk_a, t.shape[0], "risk_a", probability=False)
    rb = _check_prediction(risk_b, t.shape[0], "risk_b", probability=False)
    h = _check_horizon(horizon, t, status, k)
    fa = _auc_fit(t, status, ra, k, h, bool(conservative))
    fb = _auc_fit(t, status, rb, k, h, bool(conservative))
    diff = fa.auc - fb.auc
    se = _se(fa.influence - fb.influence)
    z, p, ci_low, ci_high = wald_difference(diff, se, alpha)
    return TimeDependentAUCComparison(
        name_a=names[0],
        name_b=names[1],
        auc_a=fa.auc,
        auc_b=fb.auc,
        difference=diff,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        ci_level=1.0 - alpha,
        z=z,
        p_value=p,
        horizon=h,
        n_cases=fa.n_cases,
        n_controls=fa.n_controls,
        n_censored_before_horizon=fa.n_censored,
        cause=None if cause is None else k,
        conservative=bool(conservative),
    )


# --------------------------------------------------------------------------- Brier
@dataclasses.dataclass(frozen=True)
class BrierResult(Result):
    r"""IPCW Brier score at a horizon, the null-model Brier score and the IPA.

    .. math::

        \widehat{\mathrm{BS}}(\tau) = \frac1n\sum_i R_i,\qquad
        R_i = \frac{I(T_i\le\tau,\delta_i=1)\,(1-\hat p_i)^2}{\hat G(T_i-)}
            + \frac{I(T_i>\tau)\,\hat p_i^2}{\hat G(\tau)}

    (Gerds & Schumacher 2006, doi:10.1002/bimj.200610301); subjects censored
    by :math:`\tau` contribute 0. The standard error is
    :math:`\mathrm{sd}(\mathrm{IF})/\sqrt n` with
    :math:`\mathrm{IF}_k = R_k - \overline R + C_k(R)`, :math:`C_k` the
    censoring term described in :class:`TimeDependentAUCResult` (omitted when
    ``conservative=True``). The null model predicts the Kaplan-Meier risk
    :math:`1 - \hat S(\tau)` for everybody; its Brier score and SE are
    computed the same way (the KM risk treated as a fixed prediction, as
    ``Score`` does). The index of prediction accuracy (Kattan & Gerds 2018,
    doi:10.1186/s41512-018-0029-2) is
    :math:`\mathrm{IPA} = 1 - \mathrm{BS}_{\text{model}}/\mathrm{BS}_{\text{null}}`
    (the scaled Brier score); 1 is perfect, 0 is no better than the KM risk,
    negative is worse. Intervals are Wald intervals truncated to [0, 1] as in
    ``Score``. No interval is given for the IPA (``Score`` gives none either).

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : float
        The model's Brier score (lower = better) with SE and limits.
    ci_level : float
        ``1 - alpha``.
    null_estimate, null_se, null_ci_low, null_ci_high : float
        The same for the null (Kaplan-Meier) model.
    null_risk : float
        The Kaplan-Meier risk :math:`1 - \hat S(\tau)` the null model predicts.
    ipa : float
        Index of prediction accuracy, :math:`1 - \text{estimate}/\text{null\_estimate}`.
    horizon : float
        :math:`\tau`.
    n_events : int
        Events at or before the horizon.
    n_event_free : int
        Subjects with follow-up beyond the horizon.
    n_censored_before_horizon : int
        Subjects censored at or before the horizon (weight 0).
    conservative : bool
        True if the censoring term of the influence function was omitted.
    method : str
        Description.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    null_estimate: float
    null_se: float
    null_ci_low: float
    null_ci_high: float
    null_risk: float
    ipa: float
    horizon: float
    n_events: int
    n_event_free: int
    n_censored_before_horizon: int
    conservative: bool
    method: str = "IPCW Brier score, influence-function SE (riskRegression::Score)"


def _km_survival_at(t: np.ndarray, e: np.ndarray, h: float) -> np.float64:
    """``kaplan_meier(t, e, times=[h]).to_frame()["survival"].iloc[0]``, without its tables.

    The same Kaplan-Meier steps (:func:`_km_steps`) read at the last time ``<= h``, as
    ``kaplan_meier`` reads them: the same number, bit for bit. For checked 0/1 events ``e`` and
    a horizon ``h`` before the last follow-up time (``_check_horizon``), where ``kaplan_meier``
    raises and warns nothing.
    """
    steps = _km_steps(t, e)
    return np.concatenate(([1.0], steps.surv))[np.searchsorted(steps.time, h, side="right")]


def _brier_fit(
    t: np.ndarray, e: np.ndarray, p: np.ndarray, h: float, w: _Weights, conservative: bool
) -> tuple[float, float]:
    resid = np.where(t > h, p**2 * w.control, np.where(e == 1, (1.0 - p) ** 2 * w.case, 0.0))
    est = float(resid.mean())
    infl = resid - est
    if not conservative:
        infl = infl + _censoring_correction(t, e, h, resid)
    return est, _se(infl)


def brier(
    time: Any,
    event: Any,
    predicted_risk: Any,
    *,
    horizon: float,
    alpha: float = 0.05,
    conservative: bool = False,
) -> BrierResult:
    r"""IPCW Brier score at ``horizon``, with the Kaplan-Meier null model and the IPA.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event : array-like, shape (n,)
        1 = event, 0 = censored.
    predicted_risk : array-like, shape (n,)
        Predicted probability of the event by the horizon, in [0, 1]
        (**risk, higher = worse**; not a survival probability).
    horizon : float
        Prediction horizon :math:`\tau > 0`, before the last follow-up time.
    alpha : float, default 0.05
        Intervals have level ``1 - alpha``.
    conservative : bool, default False
        Omit the censoring term of the influence function
        (``Score(conservative = TRUE)``).

    Returns
    -------
    BrierResult

    Raises
    ------
    StudyvalError
        Invalid inputs; a predicted risk outside [0, 1].
    EstimationError
        All censored, horizon at or beyond the last follow-up, or no event by
        the horizon.

    Notes
    -----
    Agrees with ``riskRegression::Score(list(m = predicted_risk), formula =
    Hist(time, status) ~ 1, data = d, times = horizon, metrics = "brier",
    summary = "ipa", se.fit = TRUE)`` (``Brier``, ``se``, ``lower``, ``upper``
    of the model and of the ``Null model``, and ``IPA``) to about 1e-12.

    """
    alpha = check_alpha(alpha)
    t, e, _ = _check_outcome(time, event, None)
    p = _check_prediction(predicted_risk, t.shape[0], "predicted_risk", probability=True)
    h = _check_horizon(horizon, t, e, 1)
    w = _ipcw(t, e, 1, h)
    cons = bool(conservative)
    est, se = _brier_fit(t, e, p, h, w, cons)
    null_risk = float(1.0 - _km_survival_at(t, e, h))
    null_est, null_se = _brier_fit(t, e, np.full_like(p, null_risk), h, w, cons)
    z = _z(alpha)
    return BrierResult(
        estimate=est,
        se=se,
        ci_low=max(0.0, est - z * se),
        ci_high=min(1.0, est + z * se),
        ci_level=1.0 - alpha,
        null_estimate=null_est,
        null_se=null_se,
        null_ci_low=max(0.0, null_est - z * null_se),
        null_ci_high=min(1.0, null_est + z * null_se),
        null_risk=null_risk,
        ipa=1.0 - est / null_est,
        horizon=h,
        n_events=int(np.count_nonzero((t <= h) & (e == 1))),
        n_event_free=int(np.count_nonzero(t > h)),
        n_censored_before_horizon=int(np.count_nonzero((t <= h) & (e == 0))),
        conservative=cons,
    )


# --------------------------------------------------------------------------- calibration
def _quantile7(x: np.ndarray, q: Any) -> np.ndarray:
    """R's default ``quantile(type = 7)``."""
    return np.quantile(x, q, method="linear")


def _rcs_knots(x: np.ndarray, nk: int = 3, fractied: float = 0.05) -> np.ndarray:
    """Default knots of ``Hmisc::rcspline.eval(x, nk = nk)`` (the knots of ``rms::rcs``)."""
    xx = np.sort(x)
    n = xx.shape[0]
    xu = np.unique(xx)
    if xu.shape[0] - 2 <= nk:
        raise EstimationError(
            f"the calibration spline needs more than {nk + 2} distinct predicted risks, "
            f"got {xu.shape[0]}"
        )
    outer = 0.1 if nk == 3 else (0.025 if nk > 6 else 0.05)
    nke = nk
    first: list[float] = []
    last: list[float] = []
    override_first = override_last = False
    vals, counts = np.unique(xx, return_counts=True)
    f = counts / n
    if 0 < fractied < 1 and f[1:-1].max(initial=0.0) < fractied:
        if f[0] >= fractied:
            first = [float(xx[xx > xx[0]].min())]
            xx = xx[xx > first[0]]
            nke -= 1
            override_first = True
        if f[-1] >= fractied:
            last = [float(xx[xx < vals[-1]].max())]
            xx = xx[xx < last[0]]
            nke -= 1
            override_last = True
    if nke == 1:
        inner = np.array([np.median(xx)])
    else:
        p = np.linspace(0.5, 1 - outer, nke) if nke == 2 else np.linspace(outer, 1 - outer, nke)
        inner = _quantile7(xx, p)
        if np.unique(inner).shape[0] < min(nke, 3):
            raise EstimationError(
                "the predicted risks are too heavily tied to place distinct spline knots "
                f"(knots {inner.tolist()})"
            )
        if xx.shape[0] < 100:
            inner = inner.copy()
            if not override_first:
                inner[0] = xx[4]
            if not override_last:
                inner[-1] = xx[-5]
    knots = np.unique(np.concatenate((first, inner, last)))
    if knots.shape[0] < 3:
        raise EstimationError(f"fewer than 3 distinct spline knots: {knots.tolist()}")
    return knots


def _rcs_basis(x: np.ndarray, knots: np.ndarray) -> np.ndarray:
    """Restricted cubic spline basis ``[x, x', ...]`` of ``Hmisc::rcspline.eval(norm = 2)``."""
    k = knots.shape[0]
    kd = (knots[-1] - knots[0]) ** (2.0 / 3.0)
    cols = [x]
    for j in range(k - 2):
        term = np.maximum((x - knots[j]) / kd, 0.0) ** 3 + (
            (knots[-2] - knots[j]) * np.maximum((x - knots[-1]) / kd, 0.0) ** 3
            - (knots[-1] - knots[j]) * np.maximum((x - knots[-2]) / kd, 0.0) ** 3
        ) / (knots[-1] - knots[-2])
        cols.append(term)
    return np.column_stack(cols)


_SPLINE_COLS = ("cll", "cll_nonlinear")


def _spline_frame(cll: np.ndarray, knots: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(_rcs_basis(cll, knots), columns=list(_SPLINE_COLS))


@dataclasses.dataclass(frozen=True, eq=False)
class CalibrationAtHorizonResult(Result):
    r"""Calibration of predicted risks at a horizon: grouped and smooth.

    **Grouped.** Subjects are split by the quantiles of the predicted risk
    (``groups`` groups, R's ``cut(p, quantile(p, 0:g/g), include.lowest =
    TRUE)``; fewer when quantiles coincide). In each group the observed risk is
    the Kaplan-Meier estimate :math:`1 - \hat S_g(\tau)` with a Greenwood
    log(-log) interval (``survfit(conf.type = "log-log")``), set beside the
    mean predicted risk.

    **Smooth** (Austin, Harrell & van Klaveren 2020, doi:10.1002/sim.8570,
    section 2.2 and their appendix code). A Cox model is fitted on the
    validation data with the complementary log-log transform of the predicted
    risk, :math:`c_i = \log\{-\log(1 - \hat p_i)\}`, entered as a restricted
    cubic spline with 3 knots (``rms::rcs(c, 3)``: knots at the 10th, 50th and
    90th percentiles, the 5th smallest and largest values when n < 100). The
    calibrated ("observed") risk of subject :math:`i` is
    :math:`\tilde p_i = 1 - \hat S(\tau \mid c_i)` from that model (Efron ties,
    Efron baseline hazard). Then

    .. math::

        \mathrm{ICI} = \frac1n\sum_i |\hat p_i - \tilde p_i|,\quad
        E50 = \mathrm{median}\,|\hat p_i - \tilde p_i|,\quad
        E90 = q_{0.9}\,|\hat p_i - \tilde p_i|,\quad
        E_{\max} = \max_i |\hat p_i - \tilde p_i|

    (quantiles as R's default ``quantile``). The paper's alternative, hazard
    regression (``polspline::hare``), is not offered: it has no Python
    counterpart that reproduces it. The curve (:meth:`curve_frame`) is
    evaluated, as in the paper, on 100 equally spaced predicted risks from the
    1st to the 99th percentile.

    :meth:`to_frame` is the tidy grouped table (one row per risk group);
    :meth:`summary_frame` the one-row table of ICI, E50, E90, Emax and the
    counts; :meth:`curve_frame` the smooth curve.

    Attributes
    ----------
    horizon : float
        :math:`\tau`.
    ici, e50, e90, emax : float
        Calibration error summaries (absolute risk differences).
    n : int
        Subjects.
    n_events : int
        Events at or before the horizon.
    n_groups : int
        Number of risk groups actually formed.
    mean_predicted : float
        Mean predicted risk.
    observed_risk : float
        Overall Kaplan-Meier risk :math:`1 - \hat S(\tau)`.
    knots : tuple of float
        Spline knots on the cloglog scale.
    spline_coef : tuple of float
        Coefficients of the calibration Cox model (linear, nonlinear term).
    ci_level : float
        Level of the grouped intervals.
    groups_table : pandas.DataFrame
        One row per group (see :meth:`to_frame`).
    curve : pandas.DataFrame
        The smooth curve (see :meth:`curve_frame`).
    method : str
        Description.

    """

    horizon: float
    ici: float
    e50: float
    e90: float
    emax: float
    n: int
    n_events: int
    n_groups: int
    mean_predicted: float
    observed_risk: float
    knots: tuple[float, ...]
    spline_coef: tuple[float, ...]
    ci_level: float
    groups_table: pd.DataFrame = dataclasses.field(repr=False)
    curve: pd.DataFrame = dataclasses.field(repr=False)
    method: str = (
        "Kaplan-Meier by risk group; smooth curve from a Cox model with rcs(cloglog(risk), 3) "
        "(Austin, Harrell & van Klaveren 2020)"
    )

    def to_frame(self) -> pd.DataFrame:
        """Grouped calibration table.

        Returns
        -------
        pandas.DataFrame
            Columns ``group, risk_low, risk_high, n, n_events, n_censored,
            mean_predicted, observed, se, ci_low, ci_high``: the group's
            range of predicted risk, subjects, events and censorings at or
            before the horizon, mean predicted risk, Kaplan-Meier observed
            risk with its Greenwood SE and log(-log) limits.

        """
        return self.groups_table.copy()

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (ICI, E50, E90, Emax, counts)."""
        return Result.to_frame(self)

    def curve_frame(self) -> pd.DataFrame:
        """Smooth calibration curve: columns ``predicted, observed``."""
        return self.curve.copy()


def calibration_at_horizon(
    time: Any,
    event: Any,
    predicted_risk: Any,
    *,
    horizon: float,
    groups: int = 10,
    alpha: float = 0.05,
) -> CalibrationAtHorizonResult:
    r"""Observed versus predicted risk at ``horizon``: grouped KM and a smooth curve with ICI.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event : array-like, shape (n,)
        1 = event, 0 = censored.
    predicted_risk : array-like, shape (n,)
        Predicted probability of the event by the horizon, strictly between 0
        and 1 (**risk, higher = worse**); the cloglog transform needs
        :math:`0 < \hat p < 1`.
    horizon : float
        Prediction horizon, before the last follow-up time.
    groups : int, default 10
        Number of quantile groups of predicted risk (>= 1).
    alpha : float, default 0.05
        The grouped intervals have level ``1 - alpha``.

    Returns
    -------
    CalibrationAtHorizonResult
        ``.to_frame()`` gives the groups; ``.summary_frame()`` ICI, E50, E90,
        Emax and the counts; ``.curve_frame()`` the smooth curve.

    Raises
    ------
    StudyvalError
        Invalid inputs; a predicted risk of exactly 0 or 1; ``groups < 1``.
    EstimationError
        All censored, horizon at or beyond the last follow-up, no event by the
        horizon, a risk group whose follow-up ends before the horizon (use
        fewer groups), or too few distinct risks for the spline.

    Notes
    -----
    The smooth curve and ICI/E50/E90 agree with the appendix code of Austin et
    al. (2020): ``cph(Surv(time, status) ~ rcs(log(-log(1 - p)), 3), x = TRUE,
    y = TRUE, surv = TRUE, eps = 1e-12)`` then ``1 - survest(fit, newdata =
    d, times = horizon)$surv`` (equivalently ``coxph`` + ``survfit``). With
    ``cph``'s default ``eps = 1e-4`` the fit stops earlier; calibrated risks
    then differ from the converged ones by about 1e-4. The grouped table
    agrees with ``survfit(Surv(time, status) ~ 1, subset = group, conf.type =
    "log-log")`` at the horizon.

    """
    alpha = check_alpha(alpha)
    t, e, _ = _check_outcome(time, event, None)
    p = _check_prediction(
        predicted_risk, t.shape[0], "predicted_risk", probability=True, open_interval=True
    )
    h = _check_horizon(horizon, t, e, 1)
    if isinstance(groups, bool) or not isinstance(groups, int | np.integer) or groups < 1:
        raise StudyvalError(f"groups must be a whole number >= 1, got {groups!r}")
    n = t.shape[0]

    # grouped Kaplan-Meier
    breaks = np.unique(_quantile7(p, np.linspace(0.0, 1.0, int(groups) + 1)))
    if breaks.shape[0] == 1:
        gid = np.zeros(n, dtype=np.int64)
        bounds = [(float(breaks[0]), float(breaks[0]))]
    else:
        gid = np.maximum(np.searchsorted(breaks, p, side="left"), 1) - 1
        bounds = [(float(breaks[j]), float(breaks[j + 1])) for j in range(breaks.shape[0] - 1)]
    rows = []
    for g, (lo, hi) in enumerate(bounds):
        m = gid == g
        if not m.any():
            continue
        tg, eg = t[m], e[m]
        if not (tg >= h).any() and not (eg[tg == tg.max()] == 1).all():
            raise EstimationError(
                f"risk group {g + 1} (predicted risk {lo:.4g} to {hi:.4g}) has no follow-up up to "
                f"horizon={h:g} (last time {tg.max():g}); its Kaplan-Meier risk is undefined. "
                "Use fewer groups"
            )
        km = kaplan_meier(tg, eg, conf_type="log-log", alpha=alpha, times=[h]).to_frame().iloc[0]
        rows.append(
            {
                "group": g + 1,
                "risk_low": lo,
                "risk_high": hi,
                "n": int(m.sum()),
                "n_events": int(np.count_nonzero((tg <= h) & (eg == 1))),
                "n_censored": int(np.count_nonzero((tg <= h) & (eg == 0))),
                "mean_predicted": float(p[m].mean()),
                "observed": float(1.0 - km["survival"]),
                "se": float(km["se"]),
                "ci_low": float(1.0 - km["ci_high"]),
                "ci_high": float(1.0 - km["ci_low"]),
            }
        )
    table = pd.DataFrame(rows)

    # smooth calibration: Cox on rcs(cloglog(p), 3), Efron ties (analysis.survival.cox)
    cll = np.log(-np.log1p(-p))
    knots = _rcs_knots(cll, 3)
    design = _spline_frame(cll, knots)
    design["_time"] = t
    design["_event"] = e
    with warnings.catch_warnings():
        warnings.simplefilter("error", StatisticalWarning)
        try:
            fit = cox(design, duration="_time", event="_event", covariates=list(_SPLINE_COLS))
        except StatisticalWarning as exc:
            raise EstimationError(f"the calibration Cox model failed: {exc}") from None
    observed = fit.predict_risk_at(design, h)
    err = np.abs(p - observed)
    grid = np.linspace(*_quantile7(p, [0.01, 0.99]), 100)
    grid_obs = fit.predict_risk_at(_spline_frame(np.log(-np.log1p(-grid)), knots), h)
    overall = kaplan_meier(t, e, times=[h]).to_frame()["survival"].iloc[0]
    return CalibrationAtHorizonResult(
        horizon=h,
        ici=float(err.mean()),
        e50=float(np.median(err)),
        e90=float(_quantile7(err, 0.9)),
        emax=float(err.max()),
        n=n,
        n_events=int(np.count_nonzero((t <= h) & (e == 1))),
        n_groups=len(rows),
        mean_predicted=float(p.mean()),
        observed_risk=float(1.0 - overall),
        knots=tuple(float(v) for v in knots),
        spline_coef=tuple(float(v) for v in fit.coef),
        ci_level=1.0 - alpha,
        groups_table=table,
        curve=pd.DataFrame({"predicted": grid, "observed": grid_obs}),
    )


# --------------------------------------------------------------------------- risk groups
@dataclasses.dataclass(frozen=True, eq=False)
class RiskGroupsResult(Result):
    r"""Mean predicted against Kaplan-Meier risk at a horizon, in fixed groups of predicted risk.

    Subjects are grouped by fixed cut points :math:`0 < c_1 < \dots < c_m < 1`
    of the predicted risk :math:`\hat p`: group :math:`k` (``order`` ``k``,
    from 0) holds :math:`c_k \le \hat p < c_{k+1}` with :math:`c_0 = 0`,
    :math:`c_{m+1} = 1` (R's ``findInterval(p, cuts)``; numpy's
    ``digitize``). In each group the observed risk is the Kaplan-Meier
    estimate :math:`1 - \hat S_k(\tau)` at the horizon :math:`\tau`, with the
    pointwise interval of :math:`\hat S_k(\tau)` turned over
    (:math:`1 - \text{upper}, 1 - \text{lower}`; Greenwood variance, ``conf_type``
    as ``survfit``), set beside the mean predicted risk
    :math:`\bar p_k = n_k^{-1}\sum_{i \in k}\hat p_i` (Royston & Altman 2013,
    doi:10.1186/1471-2288-13-33, on risk groups for validating survival models).

    :meth:`to_frame` is one row per non-empty group, in the order of the cut
    points: ``group, order, n, mean_predicted, km_risk, ci_low, ci_high``.

    Attributes
    ----------
    km : KaplanMeierResult
        The whole Kaplan-Meier curves by group (labels as ``groups``), with
        the log-rank test across the groups (``km.logrank``).
    groups : numpy.ndarray, shape (n,)
        Each subject's group label.
    cuts : tuple of float
        The cut points.
    labels : tuple of str
        One label per group (``len(cuts) + 1``), including empty groups.
    horizon : float
        :math:`\tau`.
    conf_type : str
        Interval of the Kaplan-Meier estimate (``"log"``, ``"log-log"``, ``"plain"``).
    ci_level : float
        ``1 - alpha``.

    """

    _table: pd.DataFrame = dataclasses.field(repr=False)
    km: KaplanMeierResult = dataclasses.field(repr=False)
    groups: np.ndarray = dataclasses.field(repr=False)
    cuts: tuple[float, ...]
    labels: tuple[str, ...]
    horizon: float
    conf_type: str
    ci_level: float

    def to_frame(self) -> pd.DataFrame:
        """One row per non-empty group (a copy); see the class docstring."""
        return self._table.copy()


def _risk_group_labels(cuts: tuple[float, ...]) -> tuple[str, ...]:
    pct = [f"{100 * c:g}%" for c in cuts]
    return (f"< {pct[0]}", *(f"{a}-{b}" for a, b in itertools.pairwise(pct)), f">= {pct[-1]}")


def risk_groups_at_horizon(
    time: Any,
    event: Any,
    predicted_risk: Any,
    *,
    horizon: float,
    cuts: Any,
    labels: Any = None,
    conf_type: str = "log",
    alpha: float = 0.05,
) -> RiskGroupsResult:
    r"""Kaplan-Meier risk at ``horizon`` beside the mean predicted risk, by group of predicted risk.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event : array-like, shape (n,)
        1 = event, 0 = censored (a competing event is censored here).
    predicted_risk : array-like, shape (n,)
        Predicted probability of the event by the horizon, in [0, 1]
        (**risk, higher = worse**).
    horizon : float
        :math:`\tau`, before the last follow-up time.
    cuts : sequence of float
        Cut points of predicted risk, strictly increasing, strictly between 0 and 1.
    labels : sequence of str, optional
        One label per group (``len(cuts) + 1``, distinct); default ``"< 10%"``,
        ``"10%-20%"``, ``">= 20%"`` style labels from the cuts.
    conf_type : {"log", "log-log", "plain"}, default "log"
        Interval of the Kaplan-Meier estimate (R's ``survfit`` default ``"log"``).
    alpha : float, default 0.05
        Intervals have level ``1 - alpha``.

    Returns
    -------
    RiskGroupsResult

    Raises
    ------
    StudyvalError
        Invalid inputs, cuts not strictly increasing inside (0, 1), or the wrong number of labels.
    EstimationError
        All censored or a horizon at or beyond the last follow-up.

    Notes
    -----
    The Kaplan-Meier part agrees with ``summary(survfit(Surv(time, event) ~ g,
    conf.type = "log"), times = horizon)`` and the means with
    ``tapply(p, g, mean)`` for ``g <- findInterval(p, cuts)``.

    Examples
    --------
    >>> t = np.array([2, 3, 5, 7, 8, 11, 12, 15.0]); e = np.array([1, 0, 1, 1, 0, 1, 0, 0])
    >>> p = np.array([0.9, 0.1, 0.6, 0.7, 0.2, 0.5, 0.05, 0.3])
    >>> r = risk_groups_at_horizon(t, e, p, horizon=10.0, cuts=[0.4])
    >>> r.to_frame()[["group", "n", "mean_predicted"]].values.tolist()
    [['< 40%', 4, 0.1625], ['>= 40%', 4, 0.675]]

    """
    alpha = check_alpha(alpha)
    t, e, _ = _check_outcome(time, event, None)
    p = _check_prediction(predicted_risk, t.shape[0], "predicted_risk", probability=True)
    h = _check_horizon(horizon, t, e, 1)
    c = np.asarray(cuts, dtype=np.float64).ravel()
    if c.size == 0 or not np.all(np.isfinite(c)) or np.any(c <= 0) or np.any(c >= 1):
        raise StudyvalError(
            f"cuts must be one or more risks strictly between 0 and 1, got {list(c)}"
        )
    if np.any(np.diff(c) <= 0):
        raise StudyvalError(f"cuts must be strictly increasing, got {list(c)}")
    cut_t = tuple(float(v) for v in c)
    labs = _risk_group_labels(cut_t) if labels is None else tuple(str(v) for v in labels)
    if len(labs) != c.size + 1 or len(set(labs)) != len(labs):
        raise StudyvalError(
            f"labels must be {c.size + 1} distinct names (one per group of {c.size} cut(s)), "
            f"got {list(labs)}"
        )
    order = np.digitize(p, c)
    groups = np.array(labs, dtype=object)[order]
    km = kaplan_meier(t, e, groups=groups, conf_type=conf_type, alpha=alpha)
    at_h = kaplan_meier(t, e, groups=groups, conf_type=conf_type, alpha=alpha, times=[h])
    # pandas' grouped mean (compensated summation): as accurate as R's long-double mean
    means = pd.Series(p).groupby(order).mean()
    rows = []
    for r in at_h.to_frame().itertuples():
        k = labs.index(str(r.group))
        rows.append(
            {
                "group": str(r.group),
                "order": k,
                "n": int(np.count_nonzero(order == k)),
                "mean_predicted": float(means[k]),
                "km_risk": 1.0 - float(r.survival),
                "ci_low": 1.0 - float(r.ci_high),
                "ci_high": 1.0 - float(r.ci_low),
            }
        )
    table = pd.DataFrame(rows).sort_values("order", kind="stable").reset_index(drop=True)
    return RiskGroupsResult(
        _table=table,
        km=km,
        groups=groups,
        cuts=cut_t,
        labels=labs,
        horizon=h,
        conf_type=km.conf_type,
        ci_level=1.0 - alpha,
    )
