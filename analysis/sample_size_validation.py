r"""Minimum sample size for the external validation of a prediction model (binary outcome by a time).

* :func:`riley_validation_binary` -- the criteria of Riley et al. (2021) for
  the precise estimation, in an external validation sample, of (1) the
  observed-to-expected ratio O/E, (2) the calibration slope and (3) the
  C-statistic of an existing model predicting a binary outcome, as the R
  package ``pmvalsampsize`` 0.1.0 (``type = "b"``) computes them, with one
  deliberate difference: the expectations over the distribution of the linear
  predictor in criterion (2) are integrals computed by adaptive quadrature,
  where ``pmvalsampsize`` averages a simulated sample of 1,000,000 (so its
  criterion (2) varies with the seed by a few tenths of a percent).

* :func:`horizon_status_counts` -- how many patients of a validation sample
  have a known status at the horizon (the event of interest or a competing
  event by the horizon, or followed to the horizon), the sample the binary
  criteria are judged against for a time-to-event outcome.

A time-to-event outcome with a fixed horizon (death by 1 year) is planned here
as the binary outcome "event by the horizon", with the anticipated proportion
the anticipated cumulative incidence by the horizon. This is an approximation:
Riley et al. (2022) give the criteria for a time-to-event outcome (simulation
of the calibration slope on pseudo-observations, with assumed event and
censoring distributions), which account for censoring; the binary criteria
ignore it, so a sample is compared with them by its patients whose status at
the horizon is known (:func:`horizon_status_counts`), not by all its patients.
Net benefit (the package's criterion 4) is not offered.

Every result keeps the unrounded numbers beside the rounded-up ones.

References
----------
Riley RD, Debray TPA, Collins GS, Archer L, Ensor J, van Smeden M, Snell KIE
(2021). Minimum sample size for external validation of a clinical prediction
model with a binary outcome. Stat Med 40:4230-4251. doi:10.1002/sim.9025

Riley RD, Collins GS, Ensor J, Archer L, Booth S, Mozumder SI, Rutherford MJ,
van Smeden M, Lambert PC, Snell KIE (2022). Minimum sample size calculations
for external validation of a clinical prediction model with a time-to-event
outcome. Stat Med 41(7):1280-1295. doi:10.1002/sim.9275

Ensor J (2023). pmvalsampsize: Sample Size for External Validation of a
Prediction Model. R package version 0.1.0.

Newcombe RG (2006). Confidence intervals for an effect size measure based on
the Mann-Whitney statistic. Part 2: asymptotic methods and evaluation. Stat
Med 25:559-573. doi:10.1002/sim.2324 (the standard error of the C-statistic).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, optimize, special, stats

from studyval.analysis._checks import check_follow_up_time
from studyval.analysis._competing_risks_common import _check_event_codes
from studyval.analysis._sample_size_common import ceil_size as _ceil
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = [
    "HorizonStatusResult",
    "ValidationSampleSizeResult",
    "horizon_status_counts",
    "riley_validation_binary",
]

#: The normal quantile ``pmvalsampsize`` and Riley et al. (2021) use for 95% intervals.
Z95 = 1.96
#: Largest sample size searched by criterion (3), as ``pmvalsampsize``.
_MAX_N = 1_000_000


def _real(value: Any, name: str, low: float, high: float, *, closed: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise StudyvalError(f"{name} must be a number, got {value!r}")
    v = float(value)
    inside = (low <= v <= high) if closed else (low < v < high)
    if not (math.isfinite(v) and inside):
        bounds = f"[{low:g}, {high:g}]" if closed else f"({low:g}, {high:g})"
        raise StudyvalError(f"{name} must be in {bounds}, got {value!r}")
    return v


@dataclasses.dataclass(frozen=True)
class ValidationSampleSizeResult(Result):
    r"""Riley et al. (2021) sample size for external validation, binary outcome.

    Attributes
    ----------
    criteria : pandas.DataFrame
        One row per criterion (:meth:`to_frame`): ``criterion`` (``oe``,
        ``calibration_slope``, ``c_statistic``), ``label``, ``anticipated``
        (the anticipated value of the measure), ``target_ci_width``,
        ``se`` (the standard error that gives the target width; for the
        C-statistic, the SE at the required size), ``ci_width`` (the width that
        SE gives), ``required_unrounded``, ``required`` (patients, rounded up)
        and ``required_events`` (:math:`\lceil n\,\phi \rceil`).
    required : int
        The largest requirement (the minimum sample size).
    required_events : int
        :math:`\lceil n\,\phi \rceil` at ``required``.
    governing : str
        The criterion that sets ``required``.
    prevalence : float
        :math:`\phi`, the anticipated proportion with the outcome.
    c_statistic : float
        The anticipated C-statistic.
    oe : float
        The anticipated O/E.
    lp_distribution : str
        ``"normal"`` (``lp_mean``, ``lp_sd``) or ``"binormal from C"``
        (``lp_mean`` the mean among non-events, ``lp_sd`` the common SD).
    lp_mean, lp_sd : float
    fisher_00, fisher_01, fisher_11 : float
        :math:`I_{00}, I_{01}, I_{11}` of criterion (2) (per patient).
    """

    criteria: pd.DataFrame = dataclasses.field(repr=False)
    required: int
    required_events: int
    governing: str
    prevalence: float
    c_statistic: float
    oe: float
    lp_distribution: str
    lp_mean: float
    lp_sd: float
    fisher_00: float
    fisher_01: float
    fisher_11: float
    method: str = (
        "Riley et al. 2021 (pmvalsampsize type b): O/E, calibration slope, C-statistic; "
        "criterion 2 by quadrature"
    )

    def to_frame(self) -> pd.DataFrame:
        """The criteria table (a copy)."""
        return self.criteria.copy()


def _se_oe(oe: float, width: float, step: float | None) -> tuple[float, float]:
    """SE of ln(O/E) whose 95% interval on the O/E scale has ``width``, and the width it gives."""

    def width_at(se: float) -> float:
        return math.exp(math.log(oe) + Z95 * se) - math.exp(math.log(oe) - Z95 * se)

    if step is None:
        se = math.asinh(width / (2.0 * oe)) / Z95
        return se, width_at(se)
    # pmvalsampsize: se grows by `step` (accumulated, as the package's loop) until the width
    # reaches the target
    se, got = 0.0, 0.0
    while got < width:
        se += step
        got = width_at(se)
    return se, got


def _expect(
    density_terms: Sequence[tuple[float, float, float]], f: Callable[[float], float]
) -> float:
    """:math:`E f(LP)` for LP a mixture of normals ``(weight, mean, sd)``, by adaptive quadrature."""
    total = 0.0
    for w, mu, sd in density_terms:
        val, _ = integrate.quad(
            lambda z, mu=mu, sd=sd: f(mu + sd * z) * stats.norm.pdf(z),
            -math.inf,
            math.inf,
            epsabs=0.0,
            epsrel=1e-12,
            limit=200,
        )
        total += w * val
    return total


def riley_validation_binary(
    *,
    prevalence: float,
    c_statistic: float,
    lp_normal: tuple[float, float] | None = None,
    lp_from_c_statistic: bool = False,
    oe: float = 1.0,
    oe_ci_width: float = 0.2,
    slope_ci_width: float = 0.2,
    c_ci_width: float = 0.1,
    oe_se_step: float | None = 1e-4,
) -> ValidationSampleSizeResult:
    r"""Minimum size of an external validation sample for a binary outcome (Riley et al. 2021).

    With :math:`\phi` the anticipated outcome proportion and 95% intervals
    (:math:`z = 1.96`, as the paper and ``pmvalsampsize``):

    1. **O/E.** :math:`\mathrm{SE}(\ln O/E) \approx \sqrt{(1-\phi)/(n\phi)}`; the
       SE whose interval :math:`O/E\,e^{\pm z\,\mathrm{SE}}` has the target
       width :math:`w` gives :math:`n_1 = (1-\phi)/(\phi\,\mathrm{SE}^2)`. With
       ``oe_se_step`` the SE is found as ``pmvalsampsize`` finds it (increased
       by the step until the width is reached); with None exactly,
       :math:`\mathrm{SE} = \operatorname{asinh}\{w/(2\,O/E)\}/z`.
    2. **Calibration slope.** For the calibration model
       :math:`\operatorname{logit} p = \beta_0 + \beta_1 LP` at
       :math:`(\beta_0, \beta_1) = (0, 1)`, the per-patient Fisher information
       has :math:`I_{jk} = E[LP^{j+k}\,p(1-p)]`, :math:`p = \operatorname{expit}(LP)`,
       and :math:`\mathrm{var}(\hat\beta_1) = I_{00} / \{n(I_{00}I_{11} - I_{01}^2)\}`,
       so :math:`n_2 = I_{00} / \{\mathrm{SE}^2 (I_{00}I_{11} - I_{01}^2)\}` with
       :math:`\mathrm{SE} = w_s / (2z)`. The expectations are over the
       anticipated distribution of the linear predictor: ``lp_normal`` =
       (mean, SD), or with ``lp_from_c_statistic`` the binormal mixture
       :math:`(1-\phi)\,N(m, v) + \phi\,N(m + v, v)`, :math:`v = 2\{\Phi^{-1}(C)\}^2`
       (equal-variance normal LP in non-events and events with C-statistic
       :math:`C`), :math:`m` solved so that :math:`E[\operatorname{expit}(LP)] = \phi`
       (``pmvalsampsize``'s ``lpcstat``, which searches :math:`m` by simulation).
    3. **C-statistic.** :math:`n_3` is the smallest :math:`n \le 10^6` with
       :math:`2z\,\mathrm{SE}(C) \le w_c`,

       .. math::

           \mathrm{SE}(C)^2 = \frac{C(1-C)\bigl[1 + (\tfrac n2 - 1)\tfrac{1-C}{2-C}
           + (\tfrac n2 - 1)\tfrac{C}{1+C}\bigr]}{n^2\phi(1-\phi)}

       (Newcombe 2006).

    The minimum sample size is :math:`\max(n_1, n_2, n_3)`.

    Parameters
    ----------
    prevalence : float
        :math:`\phi` in (0, 1) (for an outcome by a horizon: the anticipated
        cumulative incidence by the horizon).
    c_statistic : float
        Anticipated C-statistic in (0.5, 1).
    lp_normal : (float, float), optional
        Mean and SD of a normal linear predictor (logit scale).
    lp_from_c_statistic : bool, default False
        Derive the LP distribution from ``c_statistic`` and ``prevalence``
        instead (exactly one of the two must be given).
    oe : float, default 1
        Anticipated O/E.
    oe_ci_width, slope_ci_width, c_ci_width : float
        Target widths of the 95% intervals (``pmvalsampsize`` defaults 0.2, 0.2, 0.1).
    oe_se_step : float or None, default 1e-4
        Step of ``pmvalsampsize``'s search for SE(ln O/E); None for the exact SE.

    Returns
    -------
    ValidationSampleSizeResult

    Raises
    ------
    StudyvalError
        A value out of range, or neither or both LP distributions given.
    EstimationError
        No sample size up to :math:`10^6` reaches the C-statistic width.

    Notes
    -----
    Agrees with ``pmvalsampsize(type = "b", prevalence = 0.018, cstatistic =
    0.8, lpnormal = c(-5, 2.5))`` (criteria 1 and 3: 20,975 and 4,252) exactly;
    criterion 2 is 4,554 here (R ``integrate``) against the package's simulated
    4,563.

    Examples
    --------
    >>> r = riley_validation_binary(prevalence=0.018, c_statistic=0.8, lp_normal=(-5, 2.5))
    >>> r.to_frame()["required"].tolist(), r.required, r.governing
    ([20975, 4554, 4252], 20975, 'oe')
    """
    phi = _real(prevalence, "prevalence", 0.0, 1.0)
    c = _real(c_statistic, "c_statistic", 0.5, 1.0)
    oe_v = _real(oe, "oe", 0.0, math.inf)
    w_oe = _real(oe_ci_width, "oe_ci_width", 0.0, math.inf)
    w_s = _real(slope_ci_width, "slope_ci_width", 0.0, math.inf)
    w_c = _real(c_ci_width, "c_ci_width", 0.0, 1.0)
    if oe_se_step is not None:
        oe_se_step = _real(oe_se_step, "oe_se_step", 0.0, 0.1)
    if (lp_normal is None) == (not lp_from_c_statistic):
        raise StudyvalError(
            "give exactly one distribution of the linear predictor: lp_normal=(mean, sd) or "
            "lp_from_c_statistic=True"
        )

    # criterion 1: O/E
    se_oe, width_oe = _se_oe(oe_v, w_oe, oe_se_step)
    n1 = (1.0 - phi) / (phi * se_oe**2)

    # criterion 2: calibration slope
    if lp_normal is not None:
        if len(lp_normal) != 2:
            raise StudyvalError(f"lp_normal must be (mean, sd), got {lp_normal!r}")
        mu = _real(lp_normal[0], "lp_normal mean", -math.inf, math.inf)
        sd = _real(lp_normal[1], "lp_normal sd", 0.0, math.inf)
        terms = [(1.0, mu, sd)]
        dist = "normal"
    else:
        v = 2.0 * stats.norm.ppf(c) ** 2
        sd = math.sqrt(v)

        def excess(m: float) -> float:
            return _expect([(1 - phi, m, sd), (phi, m + v, sd)], special.expit) - phi

        mu = optimize.brentq(excess, -50.0, 50.0, xtol=1e-14, rtol=1e-14)
        terms = [(1 - phi, mu, sd), (phi, mu + v, sd)]
        dist = "binormal from C"

    def info(k: int) -> Callable[[float], float]:
        return lambda lp: lp**k * special.expit(lp) * special.expit(-lp)

    i00, i01, i11 = (_expect(terms, info(k)) for k in (0, 1, 2))
    se_slope = w_s / (2.0 * Z95)
    n2 = i00 / (se_slope**2 * (i00 * i11 - i01**2))

    # criterion 3: C-statistic
    n = np.arange(1, _MAX_N + 1, dtype=np.float64)
    half = n / 2.0 - 1.0
    se2 = (
        c * (1 - c) * (1 + half * (1 - c) / (2 - c) + half * c / (1 + c))
        / (n**2 * phi * (1 - phi))
    )  # fmt: skip
    ok = np.flatnonzero(2.0 * Z95 * np.sqrt(se2) <= w_c)
    if ok.size == 0:
        raise EstimationError(
            f"no sample size up to {_MAX_N:,} gives a C-statistic interval {w_c:g} wide"
        )
    n3 = int(n[ok[0]])
    se_c = math.sqrt(se2[ok[0]])

    rows = [
        ("oe", "O/E ratio", oe_v, w_oe, se_oe, width_oe, n1, _ceil(n1)),
        ("calibration_slope", "Calibration slope", 1.0, w_s, se_slope, w_s, n2, _ceil(n2)),
        ("c_statistic", "C-statistic", c, w_c, se_c, 2.0 * Z95 * se_c, float(n3), n3),
    ]
    table = pd.DataFrame(
        rows,
        columns=[
            "criterion", "label", "anticipated", "target_ci_width", "se", "ci_width",
            "required_unrounded", "required",
        ],
    )  # fmt: skip
    table["required_events"] = [_ceil(r * phi) for r in table["required"]]
    j = int(table["required"].to_numpy().argmax())
    required = int(table["required"].iloc[j])
    return ValidationSampleSizeResult(
        criteria=table,
        required=required,
        required_events=_ceil(required * phi),
        governing=str(table["criterion"].iloc[j]),
        prevalence=phi,
        c_statistic=c,
        oe=oe_v,
        lp_distribution=dist,
        lp_mean=float(mu),
        lp_sd=float(sd),
        fisher_00=float(i00),
        fisher_01=float(i01),
        fisher_11=float(i11),
    )


@dataclasses.dataclass(frozen=True)
class HorizonStatusResult(Result):
    r"""Patients of a sample by their status at a horizon :math:`\tau` (competing events).

    Attributes
    ----------
    n : int
        All patients.
    n_event : int
        The event of interest at or before :math:`\tau`.
    n_competing : int
        A competing event (any other positive code) at or before :math:`\tau`.
    n_event_free : int
        Followed to :math:`\tau` with neither: follow-up beyond :math:`\tau`, or
        censored exactly at :math:`\tau`.
    n_censored_before : int
        Censored before :math:`\tau` (status at :math:`\tau` unknown).
    n_known : int
        ``n_event + n_competing + n_event_free = n - n_censored_before``.
    horizon : float
    cause : int
    """

    n: int
    n_event: int
    n_competing: int
    n_event_free: int
    n_censored_before: int
    n_known: int
    horizon: float
    cause: int


def horizon_status_counts(
    time: Any,
    event_code: Any,
    *,
    cause: int,
    horizon: float,
    causes: Sequence[int] | None = None,
) -> HorizonStatusResult:
    r"""Count the patients whose status at the horizon is known.

    With follow-up time :math:`T_i`, event code :math:`D_i` (0 censored) and
    horizon :math:`\tau`, patient :math:`i` has a known status at :math:`\tau`
    when :math:`D_i \ne 0,\ T_i \le \tau` (the event of interest or a competing
    event by :math:`\tau`) or :math:`T_i \ge \tau` (followed to :math:`\tau`);
    only :math:`D_i = 0,\ T_i < \tau` leaves it unknown. A binary outcome "event
    by :math:`\tau`" is defined for these patients alone, so the binary
    sample-size criteria of Riley et al. (2021) are judged against
    :math:`n_{\text{known}}`, not :math:`n`; the time-to-event criteria of Riley
    et al. (2022) use all patients but model the censoring.

    Parameters
    ----------
    time : array-like of shape (n,)
        Follow-up times, finite and >= 0.
    event_code : array-like of shape (n,)
        0 = censored, positive integer = cause of the event.
    cause : int
        Code of the event of interest; every other positive code is competing.
    horizon : float
        :math:`\tau > 0`, in the unit of ``time``.
    causes : sequence of int, optional
        Declared causes (a code outside ``{0} | causes`` is an error).

    Returns
    -------
    HorizonStatusResult

    Raises
    ------
    StudyvalError
        A bad time, code, cause or horizon.

    References
    ----------
    Riley RD, Debray TPA, Collins GS, et al. (2021). Stat Med 40:4230-4251.
    doi:10.1002/sim.9025. Riley RD, Collins GS, Ensor J, et al. (2022). Minimum
    sample size calculations for external validation of a clinical prediction
    model with a time-to-event outcome. Stat Med 41(7):1280-1295.
    doi:10.1002/sim.9275

    Examples
    --------
    >>> r = horizon_status_counts([1, 2, 3, 5, 5, 6], [1, 2, 0, 0, 1, 0], cause=1, horizon=5)
    >>> r.n_event, r.n_competing, r.n_event_free, r.n_censored_before, r.n_known
    (2, 1, 2, 1, 5)
    """
    t = check_follow_up_time(time)
    codes, k, _ = _check_event_codes(event_code, t.shape[0], cause=cause, causes=causes)
    tau = _real(horizon, "horizon", 0.0, math.inf)
    by = t <= tau
    n_event = int(((codes == k) & by).sum())
    n_competing = int(((codes != k) & (codes != 0) & by).sum())
    censored_before = int(((codes == 0) & (t < tau)).sum())
    n = int(t.shape[0])
    known = n - censored_before
    return HorizonStatusResult(
        n=n,
        n_event=n_event,
        n_competing=n_competing,
        n_event_free=known - n_event - n_competing,
        n_censored_before=censored_before,
        n_known=known,
        horizon=tau,
        cause=k,
    )
