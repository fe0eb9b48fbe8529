r"""Brier score and index of prediction accuracy of a predicted cumulative incidence.

* :func:`brier_competing` -- IPCW Brier score of a predicted cumulative
  incidence at a horizon, its Aalen-Johansen null model and the IPA (Graf et
  al. 1999; Schoop et al. 2011), as ``riskRegression::Score``
  (:class:`CompetingRisksBrierResult`).

Event codes as :mod:`studyval.analysis.competing_risks` describes them (0 =
censored, 1..K = cause). The censoring weights and influence-function terms
are those of :mod:`studyval.analysis.survival_validation`.

Oracle: R 4.2 with riskRegression 2022.11.28 (``Score``); R calls beside the
expected values in ``tests/test_competing_risks_brier.py``.

References
----------
* Graf E, Schmoor C, Sauerbrei W, Schumacher M (1999). Assessment and
  comparison of prognostic classification schemes for survival data. Stat Med
  18:2529-2545. doi:10.1002/(SICI)1097-0258(19990915/30)18:17/18<2529::AID-SIM274>3.0.CO;2-5
* Schoop R, Beyersmann J, Schumacher M, Binder H (2011). Quantifying the
  predictive accuracy of time-to-event models in the presence of competing
  risks. Biom J 53:88-112. doi:10.1002/bimj.201000073
* Kattan MW, Gerds TA (2018). The index of prediction accuracy: an intuitive
  measure useful for evaluating risk prediction models. Diagn Progn Res 2:7.
  doi:10.1186/s41512-018-0029-2
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from studyval.analysis._checks import check_alpha, check_follow_up_time
from studyval.analysis._checks import z_critical as _z
from studyval.analysis._competing_risks_common import _check_event_codes
from studyval.analysis.cumulative_incidence import cumulative_incidence
from studyval.results import Result

__all__ = [
    "CompetingRisksBrierResult",
    "brier_competing",
]


# --------------------------------------------------------------------------- Brier
_BRIER_METHOD = (
    "IPCW Brier score for competing risks, Kaplan-Meier censoring weights, "
    "influence-function SE (riskRegression::Score)"
)


@dataclasses.dataclass(frozen=True)
class CompetingRisksBrierResult(Result):
    r"""IPCW Brier score of a predicted cumulative incidence, its null model and the IPA.

    With :math:`\hat p_i` the predicted cumulative incidence of cause
    :math:`k` by :math:`\tau`, :math:`\hat G` the Kaplan-Meier estimate of the
    censoring distribution (reverse KM, events before censorings at tied
    times, as ``prodlim``) and :math:`\delta_i` the cause of subject
    :math:`i` (0 = censored),

    .. math::

        \widehat{\mathrm{BS}}_k(\tau) = \frac1n\sum_i R_i,\qquad
        R_i = \begin{cases}
            (1 - \hat p_i)^2 / \hat G(T_i-) & T_i \le \tau,\ \delta_i = k\\
            \hat p_i^2 / \hat G(T_i-) & T_i \le \tau,\ \delta_i \notin \{0, k\}\\
            \hat p_i^2 / \hat G(\tau) & T_i > \tau\\
            0 & T_i \le \tau,\ \delta_i = 0
        \end{cases}

    (Graf et al. 1999, doi:10.1002/(SICI)1097-0258(19990915/30)18:17/18<2529::AID-SIM274>3.0.CO;2-5;
    for competing risks Schoop, Beyersmann, Schumacher & Binder 2011,
    doi:10.1002/bimj.201000073): a subject with a competing event by
    :math:`\tau` has outcome 0 for cause :math:`k`. The standard error is
    :math:`\mathrm{sd}(\mathrm{IF})/\sqrt n` with
    :math:`\mathrm{IF}_j = R_j - \overline R + C_j(R)`, :math:`C_j` the term
    for estimating :math:`\hat G` (see
    :class:`~studyval.analysis.survival_validation.TimeDependentAUCResult`;
    omitted when ``conservative=True``). The null model predicts the
    Aalen-Johansen cumulative incidence :math:`\hat F_k(\tau)`
    (:func:`~studyval.analysis.cumulative_incidence.cumulative_incidence`) for
    everybody; its Brier score and SE are computed the same way (the
    Aalen-Johansen risk treated as a fixed prediction, as ``Score`` does). The
    index of prediction accuracy (Kattan & Gerds 2018,
    doi:10.1186/s41512-018-0029-2) is
    :math:`1 - \widehat{\mathrm{BS}}/\widehat{\mathrm{BS}}_{\text{null}}`.
    Intervals are Wald intervals truncated to [0, 1], as in ``Score``.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    estimate, se, ci_low, ci_high : float
        The model's Brier score (lower = better), SE and limits.
    ci_level : float
        ``1 - alpha``.
    null_estimate, null_se, null_ci_low, null_ci_high : float
        The same for the null (Aalen-Johansen) model.
    null_risk : float
        :math:`\hat F_k(\tau)`, the null model's prediction.
    ipa : float
        Index of prediction accuracy.
    horizon : float
        :math:`\tau`.
    cause : int
        The cause of interest :math:`k`.
    n : int
        Subjects.
    n_events : int
        Events of ``cause`` at or before the horizon.
    n_competing : int
        Events of other causes at or before the horizon.
    n_censored_before_horizon : int
        Subjects censored at or before the horizon (weight 0).
    n_event_free : int
        Subjects with follow-up beyond the horizon.
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
    cause: int
    n: int
    n_events: int
    n_competing: int
    n_censored_before_horizon: int
    n_event_free: int
    conservative: bool
    method: str = _BRIER_METHOD


def brier_competing(
    time: Any,
    event_code: Any,
    predicted_risk: Any,
    *,
    cause: int,
    horizon: float,
    alpha: float = 0.05,
    causes: Sequence[int] | None = None,
    conservative: bool = False,
) -> CompetingRisksBrierResult:
    r"""IPCW Brier score of a predicted cumulative incidence at ``horizon``, null model and IPA.

    Parameters
    ----------
    time : array-like, shape (n,)
        Follow-up times, finite and ``>= 0``.
    event_code : array-like, shape (n,)
        0 = censored, 1..K = cause of the event.
    predicted_risk : array-like, shape (n,)
        Predicted cumulative incidence of ``cause`` by ``horizon``, in [0, 1]
        (e.g. ``predict_cumulative_incidence(...).risk[:, 0]``).
    cause : int
        The cause of interest; other causes are competing events (outcome 0).
    horizon : float
        :math:`\tau > 0`, before the last follow-up time.
    alpha : float, default 0.05
        Intervals have level ``1 - alpha``.
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.
    conservative : bool, default False
        Omit the censoring term of the influence function
        (``Score(conservative = TRUE)``).

    Returns
    -------
    CompetingRisksBrierResult
        Formulas there.

    Raises
    ------
    StudyvalError
        Invalid inputs; a predicted risk outside [0, 1] (a cause-specific Cox
        prediction with ``product_limit=False`` can exceed 1).
    EstimationError
        All subjects censored, the horizon at or beyond the last follow-up
        time (``1/G(horizon)`` undefined), or no event of ``cause`` by the
        horizon (the null model predicts 0 and the IPA is undefined).

    Notes
    -----
    Agrees with ``riskRegression::Score(list(m = p), formula = Hist(time,
    status) ~ 1, data = d, times = horizon, cause = k, metrics = "brier",
    null.model = TRUE, se.fit = TRUE, summary = "ipa")`` (``Brier``, ``se``,
    ``lower``, ``upper`` of the model and of the ``Null model``, and ``IPA``;
    ``cens.model = "km"``, which is what ``Score`` uses for ``~ 1``). A
    subject whose event (of any cause) is at exactly :math:`\tau` counts as an
    event by :math:`\tau`; one censored at exactly :math:`\tau` gets weight 0.

    """
    from studyval.analysis.survival_validation import (
        _censoring_correction,
        _check_horizon,
        _check_prediction,
        _ipcw,
        _se,
    )

    alpha = check_alpha(alpha)
    t = check_follow_up_time(time)
    codes, k, _ = _check_event_codes(event_code, t.shape[0], cause=cause, causes=causes)
    p = _check_prediction(predicted_risk, t.shape[0], "predicted_risk", probability=True)
    h = _check_horizon(horizon, t, codes, k)
    cons = bool(conservative)
    w = _ipcw(t, codes, k, h)
    any_event = (codes != 0).astype(np.int64)

    def fit(pred: np.ndarray) -> tuple[float, float]:
        resid = np.where(w.case > 0, (1.0 - pred) ** 2 * w.case, pred**2 * w.control)
        est = float(resid.mean())
        infl = resid - est
        if not cons:
            infl = infl + _censoring_correction(t, any_event, h, resid)
        return est, _se(infl)

    est, se = fit(p)
    aj = cumulative_incidence(t, codes, cause=k, times=[h], causes=causes)
    null_risk = float(aj.to_frame()["estimate"].iloc[0])
    null_est, null_se = fit(np.full_like(p, null_risk))
    z = _z(alpha)
    before = t <= h
    return CompetingRisksBrierResult(
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
        cause=k,
        n=int(t.shape[0]),
        n_events=int(np.count_nonzero(before & (codes == k))),
        n_competing=int(np.count_nonzero(before & (codes != 0) & (codes != k))),
        n_censored_before_horizon=int(np.count_nonzero(before & (codes == 0))),
        n_event_free=int(np.count_nonzero(~before)),
        conservative=cons,
    )
