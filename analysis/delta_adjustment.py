r"""Delta-adjusted (MNAR) sensitivity analysis of a mixed-model contrast, with its tipping point.

A likelihood-based mixed model is valid when visits are missing at random
(MAR). Under the pattern-mixture **delta adjustment** (Ratitch, O'Kelly &
Tosiello 2013, Pharm Stat 12:337-347, doi:10.1002/pst.1549; Cro et al. 2020,
Stat Med 39:2815-2842, doi:10.1002/sim.8569), the patients of group :math:`g`
who missed the visit would have scored :math:`\delta` higher than the MAR model
predicts for them. With the analysis model as the imputation model and
infinitely many imputations, the estimator of the mean at the visit in group
:math:`g` becomes the MAR mean plus :math:`\delta` times the fraction
:math:`\pi_g` of that group missing the visit, and for a contrast
:math:`\theta = L^\top\beta` between groups (OA minus no OA at the last visit)
with :math:`\delta` applied in the OA group only,

.. math::

    \hat\theta(\delta) = L^\top\hat\beta + \delta\,\pi_{\text{OA}}, \qquad
    \mathrm{SE}\{\hat\theta(\delta)\} = \sqrt{L^\top \hat V L},

the standard error conditional on the observed missingness pattern (the
shift is a constant given the pattern). The **tipping point** is the
:math:`\delta` at which the Wald interval first reaches 0,

.. math::

    \delta^* = \frac{-\,\hat\theta_{\text{MAR}} \pm z_{1-\alpha/2}\,\mathrm{SE}}{\pi_{\text{OA}}},

with the sign that moves the estimate towards 0: how much worse (or better)
the OA patients lost to follow-up would have to be, beyond MAR, for the
conclusion to change. Clinicians judge whether such a :math:`\delta` is
plausible.

Oracle: the contrast and its standard error from ``lme4::lmer`` (``fixef``,
``vcov``) in R 4.2; the calls are in ``tests/test_delta_adjustment.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from studyval.analysis._checks import check_alpha
from studyval.errors import StudyvalError
from studyval.results import Result

__all__ = ["DeltaAdjustmentResult", "delta_adjusted_contrast"]


@dataclasses.dataclass(frozen=True, eq=False)
class DeltaAdjustmentResult(Result):
    r"""A mixed-model contrast under MAR and under delta-adjusted MNAR, and its tipping point.

    Attributes
    ----------
    estimate_mar, se : float
        :math:`L^\top\hat\beta` and :math:`\sqrt{L^\top\hat V L}`.
    missing_fraction : float
        :math:`\pi` of the group whose missing visits are shifted.
    n_missing, n_group : int
        The counts behind it.
    tipping_delta : float
        :math:`\delta^*`: the shift at which the interval first includes 0
        (NaN when the MAR interval already includes 0).
    ci_level : float
    contrast : str
        The contrast in words (``term*weight + ...``).
    table : pandas.DataFrame
        ``delta, estimate, se, ci_low, ci_high, p_value`` per :math:`\delta`
        (also :meth:`to_frame`).
    """

    estimate_mar: float
    se: float
    missing_fraction: float
    n_missing: int
    n_group: int
    tipping_delta: float
    ci_level: float
    contrast: str
    table: pd.DataFrame = dataclasses.field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        """One row per delta (a copy)."""
        return self.table.copy()


def delta_adjusted_contrast(
    fixed: pd.DataFrame,
    cov_fixed: Any,
    *,
    contrast: Mapping[str, float],
    n_missing: int,
    n_group: int,
    deltas: Sequence[float],
    alpha: float = 0.05,
) -> DeltaAdjustmentResult:
    r"""Delta-adjusted contrast of a mixed model at each ``delta``, and the tipping point.

    Parameters
    ----------
    fixed : pandas.DataFrame
        The fixed effects (column ``term`` and ``estimate``, in the order of
        ``cov_fixed``), e.g. ``MixedModelResult.fixed``.
    cov_fixed : array-like, shape (p, p)
        Their covariance (``MixedModelResult.cov_fixed``).
    contrast : mapping of term to weight
        :math:`L`: e.g. ``{"oa": 1, "years:oa": 3}`` for OA minus no OA at 3 years.
    n_missing, n_group : int
        Patients of the shifted group missing the visit, and in the group:
        :math:`\pi = n_{\text{missing}} / n_{\text{group}}`.
    deltas : sequence of float
        The shifts to tabulate (score units; include 0 for MAR).
    alpha : float, default 0.05

    Returns
    -------
    DeltaAdjustmentResult

    Raises
    ------
    StudyvalError
        A term not in ``fixed``; a covariance of the wrong shape; counts that
        are not ``0 <= n_missing <= n_group``, ``n_group >= 1``; no deltas.

    Examples
    --------
    >>> import pandas as pd
    >>> fx = pd.DataFrame({"term": ["Intercept", "oa"], "estimate": [3.0, 2.0]})
    >>> r = delta_adjusted_contrast(fx, [[0.04, 0.0], [0.0, 0.25]], contrast={"oa": 1},
    ...                             n_missing=10, n_group=20, deltas=[0.0, -1.0])
    >>> r.to_frame()["estimate"].tolist(), round(r.tipping_delta, 3)
    ([2.0, 1.5], -2.04)

    """
    alpha = check_alpha(alpha)
    terms = [str(t) for t in fixed["term"]]
    v = np.asarray(cov_fixed, dtype=np.float64)
    if v.shape != (len(terms), len(terms)):
        raise StudyvalError(
            f"cov_fixed must be ({len(terms)}, {len(terms)}) like the fixed effects, got {v.shape}"
        )
    absent = [t for t in contrast if t not in terms]
    if absent:
        raise StudyvalError(f"contrast terms {absent} are not fixed effects ({terms})")
    if not (isinstance(n_group, int | np.integer) and isinstance(n_missing, int | np.integer)):
        raise StudyvalError(
            f"n_missing and n_group must be integers, got {n_missing!r}, {n_group!r}"
        )
    if not 0 <= n_missing <= n_group or n_group < 1:
        raise StudyvalError(
            f"need 0 <= n_missing <= n_group and n_group >= 1, got {n_missing} of {n_group}"
        )
    pi = int(n_missing) / int(n_group)
    d = np.asarray(list(deltas), dtype=np.float64)
    if d.size == 0 or not np.isfinite(d).all():
        raise StudyvalError("deltas must be a non-empty sequence of finite numbers")
    weights = np.array([float(contrast.get(t, 0.0)) for t in terms])
    beta = fixed["estimate"].to_numpy(float)
    est = float(weights @ beta)
    se = float(math.sqrt(weights @ v @ weights))
    z = float(stats.norm.ppf(1 - alpha / 2))
    adj = est + d * pi
    zs = adj / se
    table = pd.DataFrame(
        {
            "delta": d,
            "estimate": adj,
            "se": se,
            "ci_low": adj - z * se,
            "ci_high": adj + z * se,
            "p_value": 2 * stats.norm.sf(np.abs(zs)),
        }
    )
    if abs(est) <= z * se or pi == 0.0:
        tipping = math.nan
    else:
        tipping = (-est + math.copysign(z * se, est)) / pi
    label = " + ".join(f"{w:g}*{t}" for t, w in contrast.items())
    return DeltaAdjustmentResult(
        estimate_mar=est,
        se=se,
        missing_fraction=pi,
        n_missing=int(n_missing),
        n_group=int(n_group),
        tipping_delta=float(tipping),
        ci_level=1 - alpha,
        contrast=label,
        table=table,
    )
