r"""Cause-specific Cox models and the cumulative incidence they predict.

* :func:`cause_specific_cox` -- the cause-specific Cox model (other causes
  censored), fitted by :func:`studyval.analysis.survival.cox`; the companion of
  :func:`studyval.analysis.fine_gray.fine_gray`.
* :func:`predict_cumulative_incidence` -- predicted cumulative incidence at
  horizons from one cause-specific Cox model per cause (Benichou & Gail 1990),
  as ``riskRegression::predictRisk`` of a ``CSC`` fit
  (:class:`PredictedCumulativeIncidence`).

Event codes as :mod:`studyval.analysis.competing_risks` describes them (0 =
censored, 1..K = cause).

Oracles: R 4.2 with survival 3.5 (``coxph``) and riskRegression 2022.11.28
(``CSC``, ``predictRisk``); R calls beside the expected values in
``tests/test_cause_specific_cox.py``.

References
----------
* Putter H, Fiocco M, Geskus RB (2007). Tutorial in biostatistics: competing
  risks and multi-state models. Stat Med 26:2389-2430. doi:10.1002/sim.2712
* Austin PC, Lee DS, Fine JP (2016). Introduction to the analysis of survival
  data in the presence of competing risks. Circulation 133:601-609.
  doi:10.1161/CIRCULATIONAHA.115.017719
* Benichou J, Gail MH (1990). Estimates of absolute cause-specific risk in
  cohort studies. Biometrics 46:813-826. doi:10.2307/2532151
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from studyval.analysis._competing_risks_common import (
    _check_cause_value,
    _check_event_codes,
    _check_query_times,
)
from studyval.errors import StatisticalWarning, StudyvalError
from studyval.results import Result

__all__ = [
    "PredictedCumulativeIncidence",
    "cause_specific_cox",
    "predict_cumulative_incidence",
]


# --------------------------------------------------------------------------- cause-specific Cox
def cause_specific_cox(
    df: pd.DataFrame,
    *,
    duration: str,
    event: str,
    cause: int,
    covariates: Sequence[str],
    alpha: float = 0.05,
    ties: str = "efron",
    strata: str | Sequence[str] | None = None,
    causes: Sequence[int] | None = None,
) -> Any:
    r"""Cause-specific Cox model: events of other causes are treated as censored.

    The cause-specific hazard :math:`\lambda_k(t \mid x) = \lim P(t \le T <
    t + dt, \text{cause} = k \mid T \ge t, x)/dt` is modelled as
    :math:`\lambda_{k0}(t)\exp(x^\top\beta)` by an ordinary Cox model in which
    a competing event censors the subject (Putter, Fiocco & Geskus 2007,
    doi:10.1002/sim.2712). Its hazard ratios describe the rate of cause
    :math:`k` among those still event-free (aetiology); the Fine-Gray model
    (:func:`~studyval.analysis.fine_gray.fine_gray`) describes the cumulative
    incidence (prediction). Report both (Austin, Lee & Fine 2016,
    doi:10.1161/CIRCULATIONAHA.115.017719).

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject.
    duration : str
        Column of follow-up times.
    event : str
        Column of event codes: 0 = censored, 1..K = cause.
    cause : int
        The cause modelled.
    covariates : sequence of str
        Numeric covariate columns.
    alpha : float, default 0.05
        Level of the hazard-ratio intervals.
    ties : {"efron", "breslow"}
        Handling of tied event times.
    strata : str or sequence of str, optional
        Stratifying column(s).
    causes : sequence of int, optional
        Declared causes; other non-zero codes are an error.

    Returns
    -------
    studyval.analysis.survival.CoxResult
        The fit of :func:`studyval.analysis.survival.cox` on the indicator
        ``event == cause``; its ``event`` attribute reads
        ``"<event> == <cause>"``.

    Raises
    ------
    StudyvalError, EstimationError
        As :func:`studyval.analysis.survival.cox`, and for invalid event codes.

    Notes
    -----
    Agrees with ``survival::coxph(Surv(time, status == k) ~ x)``.

    """
    from studyval.analysis.survival import cox

    if not isinstance(df, pd.DataFrame):
        raise StudyvalError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if not isinstance(event, str) or event not in df.columns:
        raise StudyvalError(f"event column {event!r} is not in the data")
    codes, k, _ = _check_event_codes(
        df[event].to_numpy(), len(df), cause=cause, causes=causes, name=f"column {event!r}"
    )
    label = f"{event} == {k}"
    data = df.copy()
    data[label] = (codes == k).astype(np.int64)
    return cox(
        data,
        duration=duration,
        event=label,
        covariates=covariates,
        ties=ties,
        strata=strata,
        alpha=alpha,
    )


# --------------------------------------------------------------------------- predicted CIF
_CSC_METHOD = "cause-specific Cox (Benichou & Gail 1990; riskRegression::CSC)"


@dataclasses.dataclass(frozen=True, eq=False)
class PredictedCumulativeIncidence(Result):
    r"""Predicted cumulative incidence of one cause from cause-specific Cox models.

    With :math:`\hat H_{0l}` the (Breslow or Efron) cumulative baseline hazard
    and :math:`\hat\beta_l` the coefficients of the cause-specific Cox model of
    cause :math:`l` (every declared cause has one), the cause-specific
    cumulative hazards of a subject with covariates :math:`x` are
    :math:`\hat\Lambda_l(t \mid x) = \hat H_{0l}(t)\,e^{x^\top\hat\beta_l}`, and
    (Benichou & Gail 1990, doi:10.2307/2532151)

    .. math::

        \hat F_k(\tau \mid x) = \sum_{t_j \le \tau} \hat S(t_j- \mid x)\,
            \Delta\hat\Lambda_k(t_j \mid x),

    summed over the jump times :math:`t_j` of the baseline hazards, with the
    event-free survival just before :math:`t_j` either

    .. math::

        \hat S(t- \mid x) = \exp\Bigl\{-\sum_l \hat\Lambda_l(t- \mid x)\Bigr\}
        \quad (\text{product\_limit=False}), \qquad
        \hat S(t- \mid x) = \prod_{s < t}\Bigl\{1 - \sum_l \Delta\hat\Lambda_l(s \mid x)\Bigr\}
        \quad (\text{product\_limit=True}).

    The exponential form can give :math:`\hat F_k > 1` for subjects at very
    high risk (the hazards are not constrained); the product-limit form is
    bounded by 1 as long as every factor is non-negative.

    Attributes
    ----------
    cause : int
        The cause predicted.
    causes : tuple of int
        The causes with a model (all causes of the data).
    times : tuple of float
        The horizons :math:`\tau`, increasing.
    product_limit : bool
        Which survival formula was used (see above).
    n : int
        Rows of ``newdata``.
    risk : numpy.ndarray, shape (n, len(times))
        :math:`\hat F_k(\tau \mid x_i)`, row ``i`` of ``newdata``, column per
        horizon; read-only. Not in :meth:`to_frame` as an array: there it is
        one row per subject and horizon.
    method : str
        Description.

    """

    cause: int
    causes: tuple[int, ...]
    times: tuple[float, ...]
    product_limit: bool
    n: int
    risk: np.ndarray = dataclasses.field(repr=False)
    method: str = _CSC_METHOD

    def to_frame(self) -> pd.DataFrame:
        """Long table: one row per subject (``row``, position in ``newdata``) and horizon.

        Columns ``row, time, cause, cumulative_incidence, product_limit``.
        """
        n, k = self.risk.shape
        return pd.DataFrame(
            {
                "row": np.repeat(np.arange(n), k),
                "time": np.tile(np.asarray(self.times, dtype=np.float64), n),
                "cause": self.cause,
                "cumulative_incidence": self.risk.reshape(-1),
                "product_limit": self.product_limit,
            }
        )


def _check_models(models: Any, cause: Any) -> tuple[int, dict[int, Any]]:
    from studyval.analysis.survival import CoxResult

    if not isinstance(models, dict) or not models:
        raise StudyvalError(
            "models must be a non-empty dict {cause code: fitted cause-specific Cox model}, "
            f"one per cause (from cause_specific_cox), got {type(models).__name__}"
        )
    k = _check_cause_value(cause)
    out: dict[int, Any] = {}
    for key, fit in models.items():
        code = _check_cause_value(key, "models key")
        if not isinstance(fit, CoxResult):
            raise StudyvalError(
                f"models[{code}] must be a fitted Cox model (cause_specific_cox), "
                f"got {type(fit).__name__}"
            )
        if fit.strata:
            raise StudyvalError(
                f"models[{code}] is stratified by {', '.join(fit.strata)}; predictions from "
                "stratified cause-specific models are not implemented"
            )
        label = str(fit.event)
        if " == " in label:
            fitted_code = label.rsplit(" == ", 1)[1]
            if fitted_code != str(code):
                raise StudyvalError(
                    f"models[{code}] was fitted for event {label!r}, i.e. cause {fitted_code}; "
                    "key each model by the cause it models"
                )
        out[code] = fit
    if k not in out:
        raise StudyvalError(
            f"cause={k} has no model; models are given for causes {', '.join(map(str, sorted(out)))}"
        )
    sizes = {c: f.n for c, f in out.items()}
    if len(set(sizes.values())) > 1:
        raise StudyvalError(
            "the cause-specific models were fitted on different data (subjects: "
            + ", ".join(f"cause {c}: {m}" for c, m in sorted(sizes.items()))
            + "); fit every cause on the same rows"
        )
    return k, dict(sorted(out.items()))


def predict_cumulative_incidence(
    models: dict[int, Any],
    newdata: pd.DataFrame,
    *,
    cause: int,
    times: Any,
    product_limit: bool,
) -> PredictedCumulativeIncidence:
    r"""Predicted cumulative incidence of ``cause`` by each of ``times`` from cause-specific Cox fits.

    Parameters
    ----------
    models : dict of int to CoxResult
        ``{cause code: fit}``, one unstratified model per cause of the data,
        each from :func:`cause_specific_cox` on the same rows. A cause left
        out would be treated as impossible, which overestimates the incidence
        of the others: give every cause (the caller knows the causes; this
        function cannot check that none is missing).
    newdata : pandas.DataFrame
        Subjects to predict for; must hold the covariates of every model.
    cause : int
        The cause whose cumulative incidence is predicted.
    times : float or array-like of float
        Horizons, strictly increasing, ``>= 0`` and not after the last
        follow-up time of the fitted data.
    product_limit : bool
        Required. ``False``: :math:`\hat S(t-) = \exp\{-\sum_l
        \hat\Lambda_l(t-)\}`; ``True``: the product-limit form
        :math:`\prod_{s<t}\{1 - \sum_l \Delta\hat\Lambda_l(s)\}` (formulas in
        :class:`PredictedCumulativeIncidence`). riskRegression's
        ``predictRisk`` (and ``predict``) of a ``CSC`` fit defaults to
        ``product.limit = TRUE``.

    Returns
    -------
    PredictedCumulativeIncidence
        ``.risk[:, j]`` is the predicted incidence by ``times[j]``.

    Raises
    ------
    StudyvalError
        ``models`` not a dict of Cox fits keyed by their cause, a stratified
        fit, fits on different data, no model for ``cause``, a missing or
        non-numeric covariate in ``newdata``, bad ``times`` (or a time after
        the last follow-up time, where ``predictRisk`` returns NA).

    Warns
    -----
    StatisticalWarning
        A predicted incidence above 1 (possible with ``product_limit=False``
        for subjects at very high risk; ``predictRisk`` warns too and returns
        the values, as this function does).

    Notes
    -----
    Agrees with ``riskRegression::predictRisk(CSC(Hist(time, status) ~ x1 +
    x2, data = d), newdata = nd, times = times, cause = k, product.limit =
    FALSE)`` (and ``TRUE``) to about 1e-9 (``coxph`` stops at its own
    convergence tolerance; the formula itself is exact), Efron ties included (``CSC``
    fits ``coxph`` with ``ties = "efron"``; its baseline hazard is the Efron
    one, as :attr:`~studyval.analysis.survival.CoxResult.baseline_hazard`).
    ``CSC``'s default ``surv.type = "hazard"`` (one Cox model per cause) is
    what this implements; ``surv.type = "survival"`` (a Cox model of the
    event-free survival) is not offered.

    """
    k, fits = _check_models(models, cause)
    if not isinstance(newdata, pd.DataFrame):
        raise StudyvalError(f"newdata must be a pandas DataFrame, got {type(newdata).__name__}")
    if not isinstance(product_limit, bool | np.bool_):
        raise StudyvalError(
            f"product_limit must be True or False (riskRegression's default is True), "
            f"got {product_limit!r}"
        )
    q = _check_query_times(times)
    last = max(float(f.baseline_hazard["time"].max()) for f in fits.values())
    if q[-1] > last:
        raise StudyvalError(
            f"times: {q[-1]:g} is after the last follow-up time {last:g} of the fitted data, "
            "where the baseline hazards (and predictRisk) are undefined"
        )
    grid = np.unique(
        np.concatenate([f.baseline_hazard["time"].to_numpy(np.float64) for f in fits.values()])
    )
    grid = grid[grid <= q[-1]]
    n = len(newdata)
    total_left = np.zeros((n, grid.size))  # sum_l Lambda_l(t_j- | x)
    d_total = np.zeros((n, grid.size))
    d_cause = np.zeros((n, grid.size))
    for code, fit in fits.items():
        bh = fit.baseline_hazard
        idx = np.searchsorted(bh["time"].to_numpy(np.float64), grid, side="right")
        h0 = np.concatenate(([0.0], bh["cumhaz"].to_numpy(np.float64)))[idx]
        dh0 = np.diff(np.concatenate(([0.0], h0)))
        rel = np.exp(fit.predict_risk(newdata))[:, None]
        total_left += rel * (h0 - dh0)[None, :]
        d_total += rel * dh0[None, :]
        if code == k:
            d_cause = rel * dh0[None, :]
    if product_limit:
        # S(t_j-) = prod_{i < j} (1 - dLambda(t_i)), by a running product
        factors = np.concatenate((np.ones((n, 1)), 1.0 - d_total[:, :-1]), axis=1)
        surv_left = np.cumprod(factors, axis=1)
    else:
        surv_left = np.exp(-total_left)
    cum = np.concatenate((np.zeros((n, 1)), np.cumsum(surv_left * d_cause, axis=1)), axis=1)
    risk = np.ascontiguousarray(cum[:, np.searchsorted(grid, q, side="right")])
    risk.setflags(write=False)
    above = risk > 1.0
    if above.any():
        warnings.warn(
            f"predicted cumulative incidence above 1 for {int(above.any(axis=1).sum())} of {n} "
            f"subject(s) (largest {float(risk.max()):.6g}): the exponential form "
            "(product_limit=False) does not bound it; product_limit=True does",
            StatisticalWarning,
            stacklevel=2,
        )
    return PredictedCumulativeIncidence(
        cause=k,
        causes=tuple(fits),
        times=tuple(float(v) for v in q),
        product_limit=bool(product_limit),
        n=int(n),
        risk=risk,
    )
