r"""Uniform shrinkage of a fitted Cox model, with its baseline hazard re-estimated.

* :func:`shrink_cox` -- multiply every coefficient of a Cox model by a
  shrinkage factor :math:`s` (e.g. the optimism-corrected calibration slope of
  :func:`studyval.analysis.internal_validation.cox_optimism`) and re-estimate
  the baseline cumulative hazard with the shrunk linear predictor as an offset,
  so that the shrunk model's predicted risks stay calibrated-in-the-large.

A model fitted by maximum likelihood predicts too extreme risks for new
patients (regression to the mean); multiplying the linear predictor by a
heuristic or bootstrap estimate of the calibration slope pulls the predictions
towards the average (van Houwelingen & le Cessie 1990; Steyerberg 2019,
ch. 13). Shrinking :math:`\hat\beta` alone would change the mean predicted
risk, hence the baseline hazard is re-estimated given the offset
:math:`s\,x^\top\hat\beta` (Steyerberg 2019, sec. 13.2).

Oracle: R 4.2 with ``survival`` 3.5: ``f <- coxph(Surv(t, d) ~ offset(s * lp))``,
``survfit(f, newdata = data.frame(lp = 0))``; see ``tests/test_cox_shrinkage.py``.
R's ``basehaz(f, centered = FALSE)`` of an offset-only model is taken at the
*mean* offset, i.e. equals :math:`H_0^{(s)}(t)\,e^{\overline{s\,\mathrm{lp}}}`
(checked in the tests).

References
----------
* van Houwelingen JC, le Cessie S (1990). Predictive value of statistical
  models. Stat Med 9:1303-1325. doi:10.1002/sim.4780091109
* Steyerberg EW (2019). Clinical Prediction Models, 2nd ed., ch. 13
  (Modern estimation methods: uniform shrinkage). Springer.
  doi:10.1007/978-3-030-16399-0
* Breslow NE (1974). Covariance analysis of censored survival data.
  Biometrics 30:89-99. doi:10.2307/2529620
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from studyval.analysis._survival_common import _check_query_times, _readonly
from studyval.analysis.cox import (
    CoxResult,
    _baseline,
    _cox_design,
    _cox_eval,
    _cox_prepare,
    _step_at,
)
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = ["ShrunkCoxResult", "shrink_cox"]


@dataclasses.dataclass(frozen=True, eq=False)
class ShrunkCoxResult(Result):
    r"""A Cox model with uniformly shrunk coefficients and its re-estimated baseline hazard.

    Attributes
    ----------
    shrinkage : float
        The factor :math:`s` (``0 < s``; usually ``<= 1``).
    covariates : tuple of str
        Terms, in the model's order.
    coef, coef_shrunk : numpy.ndarray, shape (p,)
        :math:`\hat\beta` and :math:`s\hat\beta`.
    horizon : float
        Time at which the baseline survival is reported.
    cumhaz_at_horizon, baseline_survival_at_horizon : float
        :math:`H_0(h)` and :math:`S_0(h) = e^{-H_0(h)}` of the unshrunk model
        (:meth:`CoxResult.baseline_survival`).
    cumhaz_shrunk_at_horizon, baseline_survival_shrunk_at_horizon : float
        :math:`H_0^{(s)}(h)` and :math:`S_0^{(s)}(h)` re-estimated with the offset
        :math:`s\,x^\top\hat\beta`.
    baseline_hazard_shrunk : pandas.DataFrame
        ``time, cumhaz``: :math:`H_0^{(s)}(t)` at every distinct time (covariates 0,
        not centred), as ``survfit(coxph(Surv(t, d) ~ offset(s * lp)), newdata =
        data.frame(lp = 0))``.
    ties : str
        ``"efron"`` or ``"breslow"`` (that of the fit).
    n, n_events : int
        Subjects and events of the data.
    """

    shrinkage: float
    covariates: tuple[str, ...]
    coef: np.ndarray = dataclasses.field(repr=False)
    coef_shrunk: np.ndarray = dataclasses.field(repr=False)
    horizon: float
    cumhaz_at_horizon: float
    baseline_survival_at_horizon: float
    cumhaz_shrunk_at_horizon: float
    baseline_survival_shrunk_at_horizon: float
    baseline_hazard_shrunk: pd.DataFrame = dataclasses.field(repr=False)
    ties: str
    n: int
    n_events: int

    def to_frame(self) -> pd.DataFrame:
        """One row per term: coefficients and hazard ratios, unshrunk and shrunk.

        The baseline survival at the horizon of both models is repeated on each row.

        Columns: ``term, coef, hr, shrinkage, coef_shrunk, hr_shrunk, horizon,
        cumhaz_at_horizon, baseline_survival_at_horizon, cumhaz_shrunk_at_horizon,
        baseline_survival_shrunk_at_horizon``.
        """
        return pd.DataFrame(
            {
                "term": list(self.covariates),
                "coef": self.coef,
                "hr": np.exp(self.coef),
                "shrinkage": self.shrinkage,
                "coef_shrunk": self.coef_shrunk,
                "hr_shrunk": np.exp(self.coef_shrunk),
                "horizon": self.horizon,
                "cumhaz_at_horizon": self.cumhaz_at_horizon,
                "baseline_survival_at_horizon": self.baseline_survival_at_horizon,
                "cumhaz_shrunk_at_horizon": self.cumhaz_shrunk_at_horizon,
                "baseline_survival_shrunk_at_horizon": self.baseline_survival_shrunk_at_horizon,
            }
        )


def shrink_cox(
    fit: CoxResult, df: pd.DataFrame, *, shrinkage: float, horizon: float
) -> ShrunkCoxResult:
    r"""Uniformly shrink a Cox model and re-estimate its baseline hazard (offset model).

    With shrinkage factor :math:`s`, the shrunk coefficients are
    :math:`\tilde\beta = s\hat\beta` (van Houwelingen & le Cessie 1990) and the
    baseline cumulative hazard is re-estimated with the shrunk linear predictor
    :math:`o_i = s\,x_i^\top\hat\beta` as a fixed offset (Steyerberg 2019,
    ch. 13). For Breslow ties this is Breslow's estimator

    .. math::

        H_0^{(s)}(t) = \sum_{t_j \le t} \frac{d_j}{\sum_{i \in R_j} e^{o_i}},

    and for Efron ties (R's default, which :func:`studyval.analysis.cox.cox` uses)
    :math:`\sum_{t_j\le t}\sum_{l=0}^{d_j-1} 1/(\sum_{R_j} e^{o_i} - \tfrac{l}{d_j}
    \sum_{D_j} e^{o_i})`, both at covariates 0 (not centred). A new patient's
    predicted survival is :math:`S_0^{(s)}(t)^{\exp(s\,x^\top\hat\beta)}`,
    :math:`S_0^{(s)} = e^{-H_0^{(s)}}`. With :math:`s = 1` this is the fit's own
    :attr:`CoxResult.baseline_hazard`.

    Parameters
    ----------
    fit : CoxResult
        The unshrunk model (:func:`studyval.analysis.cox.cox`), not stratified.
    df : pandas.DataFrame
        The data the model was fitted on (its ``duration``, ``event`` and covariate
        columns); checked to have the fit's numbers of subjects and events.
    shrinkage : float
        The factor :math:`s > 0`, e.g. the optimism-corrected calibration slope.
    horizon : float
        Time (``>= 0``) at which the baseline survival of both models is reported.

    Returns
    -------
    ShrunkCoxResult

    Raises
    ------
    EstimationError
        ``shrinkage`` not a finite number ``> 0``, or no events in ``df``.
    StudyvalError
        A stratified fit (not supported), a fit without its column names, or
        ``df`` not the data of the fit (other numbers of subjects or events).

    References
    ----------
    van Houwelingen JC, le Cessie S (1990). Stat Med 9:1303-1325.
    doi:10.1002/sim.4780091109. Steyerberg EW (2019). Clinical Prediction
    Models, 2nd ed., ch. 13. doi:10.1007/978-3-030-16399-0
    """
    if not isinstance(fit, CoxResult):
        raise StudyvalError(f"fit must be a CoxResult, got {type(fit).__name__}")
    try:
        s = float(shrinkage)
    except (TypeError, ValueError):
        raise EstimationError(f"shrinkage must be a number > 0, got {shrinkage!r}") from None
    if not (math.isfinite(s) and s > 0):
        raise EstimationError(
            f"shrinkage must be a finite number > 0, got {shrinkage!r}: the shrunk model is "
            "not estimable (a calibration slope <= 0 means the model has no usable discrimination)"
        )
    q = _check_query_times([horizon])
    if fit.strata:
        raise StudyvalError("shrink_cox does not support stratified Cox models")
    if not fit.duration or not fit.event:
        raise StudyvalError("fit has no duration/event column names; fit it with cox()")
    t, e, x, codes, levels, _covs, _ = _cox_design(
        df, fit.duration, fit.event, fit.covariates, None
    )
    if int(e.sum()) == 0:
        raise EstimationError("no events in df: the baseline hazard is not estimable")
    if t.shape[0] != fit.n or int(e.sum()) != fit.n_events:
        raise StudyvalError(
            f"df has {t.shape[0]} subjects and {int(e.sum())} events, the fit "
            f"{fit.n} and {fit.n_events}: pass the data the model was fitted on"
        )
    beta_s = s * np.asarray(fit.coef, dtype=np.float64)
    cd = _cox_prepare(t, e, x, codes)
    ev = _cox_eval(beta_s, cd, fit.ties, info=False)
    bh = _baseline(cd, ev, beta_s, levels, False)
    h_s = float(_step_at(bh["time"].to_numpy(), bh["cumhaz"].to_numpy(), q)[0])
    b0 = fit.baseline_survival(q).iloc[0]
    return ShrunkCoxResult(
        shrinkage=s,
        covariates=tuple(fit.covariates),
        coef=_readonly(np.asarray(fit.coef, dtype=np.float64).copy()),
        coef_shrunk=_readonly(beta_s),
        horizon=float(q[0]),
        cumhaz_at_horizon=float(b0["cumhaz"]),
        baseline_survival_at_horizon=float(b0["survival"]),
        cumhaz_shrunk_at_horizon=h_s,
        baseline_survival_shrunk_at_horizon=math.exp(-h_s),
        baseline_hazard_shrunk=bh,
        ties=fit.ties,
        n=int(t.shape[0]),
        n_events=int(e.sum()),
    )
