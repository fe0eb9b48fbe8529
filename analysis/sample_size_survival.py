r"""Sample size for time-to-event studies: Riley criteria and Schoenfeld events.

* :func:`riley_survival` -- minimum sample size to **develop** a prediction
  model for a time-to-event outcome (Riley et al. 2019, Stat Med Part II;
  Riley et al. 2020, BMJ): (i) expected shrinkage :math:`\ge 0.9`, (ii) a
  small optimism (0.05) in Nagelkerke's :math:`R^2`, (iii) a precise estimate
  of the overall risk at the time point of interest. Reproduces the R package
  ``pmsampsize`` 1.1.3 (``type = "s"``).
* :func:`schoenfeld_events` -- events (and, given the probability of an
  event, subjects) for a two-sided test of a hazard ratio of a binary
  covariate in a Cox model (Schoenfeld 1983), with the variance inflation
  :math:`1/(1 - \rho^2)` for adjustment (Hsieh & Lavori 2000; Latouche,
  Porcher & Chevret 2004). Reproduces ``powerSurvEpi::numDEpi.default`` /
  ``ssizeEpi.default``.

Registered sample sizes are checked with
:func:`studyval.analysis.sample_size.check_registered`, which takes the
unrounded requirement (``result.n``) and writes the sentence for the report.

Every result keeps the unrounded numbers beside the rounded-up ones; rounding
up ignores floating-point error of :math:`10^{-12}` relative.

References
----------
Riley RD, Snell KIE, Ensor J, Burke DL, Harrell FE Jr, Moons KGM, Collins GS
(2019). Minimum sample size for developing a multivariable prediction model:
PART II - binary and time-to-event outcomes. Stat Med 38:1276-1296.
doi:10.1002/sim.7992

Riley RD, Ensor J, Snell KIE, Harrell FE Jr, Martin GP, Reitsma JB, Moons KGM,
Collins G, van Smeden M (2020). Calculating the sample size required for
developing a clinical prediction model. BMJ 368:m441. doi:10.1136/bmj.m441

Ensor J, Martin EC, Riley RD (2023). pmsampsize: Sample Size for Development
of a Prediction Model. R package version 1.1.3.

Schoenfeld DA (1983). Sample-size formula for the proportional-hazards
regression model. Biometrics 39:499-503. doi:10.2307/2531021

Hsieh FY, Lavori PW (2000). Sample-size calculations for the Cox proportional
hazards regression model with nonbinary covariates. Control Clin Trials
21:552-560. doi:10.1016/S0197-2456(00)00104-5

Latouche A, Porcher R, Chevret S (2004). Sample size formula for proportional
hazards modelling of competing risks. Stat Med 23:3263-3274.
doi:10.1002/sim.1915
"""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist

import pandas as pd

from studyval.analysis._checks import check_alpha, check_option
from studyval.analysis._sample_size_common import ceil_size as _ceil
from studyval.analysis._sample_size_common import open_unit as _open_unit
from studyval.analysis._sample_size_common import positive as _positive
from studyval.analysis._sample_size_common import real as _real
from studyval.analysis._sample_size_common import whole_number as _whole_number
from studyval.errors import StudyvalError
from studyval.results import Result

__all__ = [
    "RileySurvivalResult",
    "SchoenfeldResult",
    "riley_survival",
    "schoenfeld_events",
]

ALTERNATIVES: tuple[str, ...] = ("two-sided", "one-sided")
# pmsampsize_surv: reference sample size and z used for criterion (iii)
_PMS_N = 10000
_PMS_Z = 1.96
_OPTIMISM = 0.05
_MARGIN = 0.05


# --------------------------------------------------------------------------- Riley
@dataclasses.dataclass(frozen=True)
class RileySurvivalResult(Result):
    r"""Minimum sample size to develop a time-to-event prediction model (Riley criteria).

    With :math:`p` candidate predictor parameters, anticipated Cox-Snell
    :math:`R^2_{CS}`, target shrinkage :math:`S = 0.9`, overall event rate
    :math:`\lambda` (events per person-time), mean follow-up :math:`\bar f`
    and time point :math:`t`:

    (i) shrinkage :math:`\ge S`:
    :math:`n_1 = p / \{(S - 1)\ln(1 - R^2_{CS}/S)\}`;

    (ii) optimism of Nagelkerke's :math:`R^2` at most 0.05: with
    :math:`\max R^2_{CS} = 1 - \exp(2\ln L_0/n)`,
    :math:`\ln L_0 = E\ln(E/n) - E`, the shrinkage
    :math:`S_2 = R^2_{CS}/(R^2_{CS} + 0.05\max R^2_{CS})` and
    :math:`n_2 = p / \{(S_2 - 1)\ln(1 - R^2_{CS}/S_2)\}`;

    (iii) the overall risk at :math:`t`, :math:`1 - e^{-\lambda t}`, estimated
    within :math:`\pm 0.05`: the upper limit
    :math:`1 - \exp\{-(\lambda + 1.96\sqrt{\lambda/(n\bar f)})\,t\}` minus the
    risk at most 0.05, i.e.
    :math:`n_3 = 1.96^2\lambda / \{\bar f(\lambda_u - \lambda)^2\}`,
    :math:`\lambda_u = -\ln(1 - r_t - 0.05)/t` (0 when
    :math:`r_t + 0.05 \ge 1`).

    The requirement is the largest of :math:`\lceil n_1\rceil`,
    :math:`\lceil n_2\rceil`, :math:`\lceil n_3\rceil`; events
    :math:`= n\lambda\bar f`; EPP = events / :math:`p`. Riley et al. (2019),
    doi:10.1002/sim.7992, and (2020), doi:10.1136/bmj.m441.

    :meth:`to_frame` is the tidy criteria table (one row per criterion, as
    ``pmsampsize``'s ``results_table``); :meth:`summary_frame` the one-row
    table of the scalar fields.

    Attributes
    ----------
    n : float
        Unrounded value of the governing criterion (pass it to
        ``check_registered``).
    required : int
        Minimum number of participants.
    governing : str
        ``"i"``, ``"ii"`` or ``"iii"``: the criterion that sets ``required``.
    n_criterion_1, n_criterion_2, n_criterion_3 : float
        Unrounded requirements of the three criteria.
    required_criterion_1, required_criterion_2, required_criterion_3 : int
        The same, rounded up.
    events : float
        Expected events among ``required`` participants, :math:`n\lambda\bar f`.
    required_events : int
        ``events`` rounded up.
    epp : float
        Events per candidate predictor parameter.
    person_time : float
        Total follow-up of ``required`` participants, :math:`n\bar f`.
    parameters : int
        Candidate predictor parameters :math:`p`.
    r2_cs : float
        Anticipated Cox-Snell :math:`R^2` used.
    r2_source : str
        ``"Cox-Snell R2 given"`` or ``"from Nagelkerke R2 x max R2_CS"``.
    max_r2_cs : float
        :math:`\max R^2_{CS}` (as ``pmsampsize`` computes it, see Notes).
    r2_nagelkerke : float
        :math:`R^2_{CS}/\max R^2_{CS}`.
    shrinkage : float
        Target shrinkage :math:`S` of criterion (i).
    shrinkage_criterion_2 : float
        :math:`S_2`.
    final_shrinkage : float
        Expected shrinkage at ``required``: :math:`\max(S, S_2)`.
    rate, timepoint, mean_follow_up : float
        Inputs :math:`\lambda`, :math:`t`, :math:`\bar f`.
    risk_at_timepoint : float
        :math:`1 - e^{-\lambda t}`.
    risk_ci_low, risk_ci_high : float
        Its 95% limits at ``required`` (criterion iii's formula).
    risk_margin : float
        ``risk_ci_high - risk_at_timepoint`` at ``required`` (at most 0.05).
    method : str
        Description.

    """

    n: float
    required: int
    governing: str
    n_criterion_1: float
    required_criterion_1: int
    n_criterion_2: float
    required_criterion_2: int
    n_criterion_3: float
    required_criterion_3: int
    events: float
    required_events: int
    epp: float
    person_time: float
    parameters: int
    r2_cs: float
    r2_source: str
    max_r2_cs: float
    r2_nagelkerke: float
    shrinkage: float
    shrinkage_criterion_2: float
    final_shrinkage: float
    rate: float
    timepoint: float
    mean_follow_up: float
    risk_at_timepoint: float
    risk_ci_low: float
    risk_ci_high: float
    risk_margin: float
    method: str = "Riley et al. (2019, 2020) criteria for a time-to-event model (pmsampsize)"

    def to_frame(self) -> pd.DataFrame:
        """The criteria side by side, as ``pmsampsize``'s ``results_table``.

        Returns
        -------
        pandas.DataFrame
            Columns ``criterion, n, required, shrinkage, events, epp``; rows
            ``i`` (shrinkage), ``ii`` (optimism of R2), ``iii`` (precision of
            the overall risk) and ``final``.

        """
        rows = []
        rate_f = self.rate * self.mean_follow_up
        for name, n, req, shr in (
            ("i", self.n_criterion_1, self.required_criterion_1, self.shrinkage),
            ("ii", self.n_criterion_2, self.required_criterion_2, self.shrinkage_criterion_2),
            ("iii", self.n_criterion_3, self.required_criterion_3, math.nan),
            ("final", self.n, self.required, self.final_shrinkage),
        ):
            rows.append(
                {
                    "criterion": name,
                    "n": n,
                    "required": req,
                    "shrinkage": shr,
                    "events": req * rate_f,
                    "epp": req * rate_f / self.parameters,
                }
            )
        return pd.DataFrame(rows)

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields (requirement, criteria, inputs)."""
        return Result.to_frame(self)


def _n_for_shrinkage(parameters: int, r2: float, s: float) -> float:
    return parameters / ((s - 1.0) * math.log(1.0 - r2 / s))


def _max_r2_cs(rate: float, mean_follow_up: float) -> float:
    # pmsampsize_surv: n = 10000, events = ceiling(rate * meanfup * n)
    events = math.ceil(rate * mean_follow_up * _PMS_N)
    ln_l0 = events * math.log(events / _PMS_N) - events
    return 1.0 - math.exp(2.0 * ln_l0 / _PMS_N)


def riley_survival(
    *,
    parameters: int,
    rate: float,
    timepoint: float,
    mean_follow_up: float,
    r2_cs: float | None = None,
    r2_nagelkerke: float | None = None,
    shrinkage: float = 0.9,
) -> RileySurvivalResult:
    r"""Minimum sample size to develop a prediction model for a time-to-event outcome.

    Parameters
    ----------
    parameters : int
        Number of candidate predictor **parameters** (a spline or a categorical
        predictor counts several), :math:`\ge 1`.
    rate : float
        Anticipated overall event rate per unit of time (events / person-time),
        in the time unit of ``timepoint`` and ``mean_follow_up``.
    timepoint : float
        Time point of interest for prediction (e.g. 1 for 1-year risk).
    mean_follow_up : float
        Anticipated mean follow-up per participant.
    r2_cs : float, optional
        Anticipated Cox-Snell :math:`R^2` (optimism-adjusted, from a previous
        model), in (0, max R2_CS). Give exactly one of ``r2_cs`` and
        ``r2_nagelkerke``.
    r2_nagelkerke : float, optional
        Anticipated Nagelkerke :math:`R^2` in (0, 1); converted as
        :math:`R^2_{CS} = R^2_N \max R^2_{CS}`.
    shrinkage : float, default 0.9
        Target expected shrinkage of criterion (i), in (0, 1).

    Returns
    -------
    RileySurvivalResult

    Raises
    ------
    StudyvalError
        Missing, invalid or contradictory inputs; ``r2_cs`` not below the
        target shrinkage or above the maximum possible :math:`R^2_{CS}`.

    Notes
    -----
    Reproduces ``pmsampsize::pmsampsize(type = "s", csrsquared =, parameters
    =, rate =, timepoint =, meanfup =)`` (version 1.1.3): criteria (i) and
    (ii), the final size and events, and the interval of criterion (iii).
    Deviations, all documented:

    * ``pmsampsize`` only *reports* the precision of criterion (iii) at
      :math:`\max(n_1, n_2)`; here (iii) is also solved for :math:`n_3`
      (Riley et al. 2020 state it as a requirement), so the final size can
      exceed ``pmsampsize``'s when that precision is not met. It is met in
      every example of the papers.
    * ``pmsampsize`` rounds :math:`R^2_{CS}` from a Nagelkerke input to 3
      decimals; studyval does not.
    * :math:`\max R^2_{CS}` is computed as ``pmsampsize`` does, with a
      reference :math:`n = 10000` and the events rounded up,
      :math:`E = \lceil \lambda\bar f\, n\rceil`; the exact value
      :math:`1 - \exp\{2\lambda\bar f(\ln(\lambda\bar f) - 1)\}` differs in the
      5th significant digit.

    No C-statistic input: ``pmsampsize`` converts a C-statistic to
    :math:`R^2_{CS}` only for binary outcomes (Riley, Van Calster & Collins
    2021, doi:10.1002/sim.8806), and no conversion for time-to-event models
    is implemented here.

    Examples
    --------
    Recurrent venous thromboembolism (Riley et al. 2020, BMJ; ``pmsampsize``
    help page):

    >>> r = riley_survival(r2_cs=0.051, parameters=30, rate=0.065, timepoint=2,
    ...                    mean_follow_up=2.07)
    >>> r.required, r.required_events, round(r.epp, 2)
    (5143, 692, 23.07)

    """
    p = _whole_number(parameters, "parameters")
    lam = _positive(rate, "rate")
    tp = _positive(timepoint, "timepoint")
    fu = _positive(mean_follow_up, "mean_follow_up")
    s = _open_unit(shrinkage, "shrinkage")
    if (r2_cs is None) == (r2_nagelkerke is None):
        raise StudyvalError("give exactly one of r2_cs and r2_nagelkerke")
    max_r2 = _max_r2_cs(lam, fu)
    if r2_cs is not None:
        r2 = _open_unit(r2_cs, "r2_cs")
        source = "Cox-Snell R2 given"
    else:
        r2 = _open_unit(r2_nagelkerke, "r2_nagelkerke") * max_r2
        source = "from Nagelkerke R2 x max R2_CS"
    if r2 > max_r2:
        raise StudyvalError(
            f"r2_cs={r2:.4g} is larger than the maximum possible Cox-Snell R2 ({max_r2:.4g}) for "
            f"rate={lam:g} and mean_follow_up={fu:g} (Riley et al. 2019, eq. 23)"
        )
    if r2 >= s:
        raise StudyvalError(
            f"r2_cs={r2:.4g} must be below the target shrinkage {s:g}; the shrinkage formula is undefined"
        )
    n1 = _n_for_shrinkage(p, r2, s)
    s2 = r2 / (r2 + _OPTIMISM * max_r2)
    n2 = _n_for_shrinkage(p, r2, s2)
    risk = 1.0 - math.exp(-lam * tp)
    if risk + _MARGIN >= 1.0:
        n3 = 0.0
    else:
        lam_u = -math.log(1.0 - risk - _MARGIN) / tp
        n3 = _PMS_Z**2 * lam / (fu * (lam_u - lam) ** 2)
    reqs = {"i": (_ceil(n1), n1), "ii": (_ceil(n2), n2), "iii": (_ceil(n3), n3)}
    governing = max(reqs, key=lambda key: (reqs[key][0], -"i ii iii".split().index(key)))
    required, n_gov = reqs[governing]
    person_time = fu * required
    # pmsampsize: person-time rounded to 1 decimal in the interval
    pt = round(fu * required, 1)
    half = _PMS_Z * math.sqrt(lam / pt)
    hi = 1.0 - math.exp(-(lam + half) * tp)
    lo = 1.0 - math.exp(-(lam - half) * tp)
    events = required * lam * fu
    return RileySurvivalResult(
        n=n_gov,
        required=required,
        governing=governing,
        n_criterion_1=n1,
        required_criterion_1=reqs["i"][0],
        n_criterion_2=n2,
        required_criterion_2=reqs["ii"][0],
        n_criterion_3=n3,
        required_criterion_3=reqs["iii"][0],
        events=events,
        required_events=_ceil(events),
        epp=events / p,
        person_time=person_time,
        parameters=p,
        r2_cs=r2,
        r2_source=source,
        max_r2_cs=max_r2,
        r2_nagelkerke=r2 / max_r2,
        shrinkage=s,
        shrinkage_criterion_2=s2,
        final_shrinkage=max(s, s2),
        rate=lam,
        timepoint=tp,
        mean_follow_up=fu,
        risk_at_timepoint=risk,
        risk_ci_low=lo,
        risk_ci_high=hi,
        risk_margin=hi - risk,
    )


# --------------------------------------------------------------------------- Schoenfeld
@dataclasses.dataclass(frozen=True)
class SchoenfeldResult(Result):
    r"""Events (and subjects) to detect a hazard ratio of a binary covariate.

    Schoenfeld (1983), doi:10.2307/2531021, with the variance inflation for a
    covariate correlated with the others (Hsieh & Lavori 2000; Latouche et al.
    2004):

    .. math::

        D = \frac{(z_{1-\alpha/k} + z_{1-\beta})^2}
                 {(\ln \mathrm{HR})^2\, q(1-q)\,(1 - \rho^2)},\qquad
        N = D / \psi,

    with :math:`k = 2` for a two-sided and 1 for a one-sided test, :math:`q`
    the proportion exposed, :math:`\rho^2` the squared multiple correlation of
    the covariate with the other covariates (0 in a randomised comparison) and
    :math:`\psi` the probability that a subject has the event during the
    study. With competing risks, ``hr`` is the cause-specific (Schoenfeld) or
    subdistribution (Latouche et al.) hazard ratio and :math:`\psi` the
    probability of the event of interest.

    Attributes
    ----------
    n : float
        Unrounded governing number: subjects if ``event_probability`` was
        given, else events (see ``n_refers_to``).
    required : int
        ``n`` rounded up.
    n_refers_to : str
        ``"events"`` or ``"subjects"``.
    events : float
        Unrounded events :math:`D`.
    required_events : int
        :math:`\lceil D\rceil`.
    subjects : float or None
        Unrounded :math:`N = D/\psi` (None without ``event_probability``).
    required_subjects : int or None
        :math:`\lceil D/\psi\rceil` (``powerSurvEpi::ssizeEpi.default``
        rounds :math:`D/\psi` up the same way).
    hr, alpha, power, proportion_exposed, r2_other : float
        Inputs.
    event_probability : float or None
        :math:`\psi`.
    alternative : str
        ``"two-sided"`` or ``"one-sided"``.
    method : str
        Description.

    """

    n: float
    required: int
    n_refers_to: str
    events: float
    required_events: int
    subjects: float | None
    required_subjects: int | None
    hr: float
    alpha: float
    power: float
    proportion_exposed: float
    r2_other: float
    event_probability: float | None
    alternative: str
    method: str = "Schoenfeld (1983); Latouche, Porcher & Chevret (2004)"


def schoenfeld_events(
    hr: float,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    proportion_exposed: float = 0.5,
    r2_other: float = 0.0,
    event_probability: float | None = None,
    alternative: str = "two-sided",
) -> SchoenfeldResult:
    r"""Events needed to detect hazard ratio ``hr`` for a binary covariate (Schoenfeld 1983).

    Parameters
    ----------
    hr : float
        Hazard ratio to detect (exposed vs unexposed), > 0 and not 1.
    alpha : float, default 0.05
        Type I error rate.
    power : float, default 0.8
        Power :math:`1 - \beta`, in (0, 1).
    proportion_exposed : float, default 0.5
        Proportion :math:`q` with the covariate (allocation ratio), in (0, 1).
    r2_other : float, default 0
        Squared multiple correlation :math:`\rho^2` of the covariate with the
        other covariates of the model, in [0, 1).
    event_probability : float, optional
        Probability :math:`\psi` that a subject has the event during the study;
        gives the number of subjects :math:`D/\psi`.
    alternative : {"two-sided", "one-sided"}
        Test; ``alpha`` is split over both tails for ``"two-sided"``.

    Returns
    -------
    SchoenfeldResult

    Raises
    ------
    StudyvalError
        Invalid inputs (``hr`` = 1 has no finite answer).

    Notes
    -----
    Agrees with ``powerSurvEpi::numDEpi.default(power, theta = hr, p =
    proportion_exposed, rho2 = r2_other, alpha)`` (which rounds up) and
    ``ssizeEpi.default(..., psi = event_probability)``; the published example
    of Latouche et al. (2004, section 5.2): HR 2, power 0.8, :math:`q = 0.39`,
    :math:`\rho = 0.132`, :math:`\psi = 0.505` gives 139 subjects.

    Examples
    --------
    >>> r = schoenfeld_events(2, power=0.8, proportion_exposed=0.39, r2_other=0.132**2,
    ...                       event_probability=0.505)
    >>> r.required_events, r.required_subjects
    (70, 139)

    """
    hr_v = _positive(hr, "hr")
    if hr_v == 1.0:
        raise StudyvalError("hr must differ from 1: a hazard ratio of 1 cannot be detected")
    alpha = check_alpha(alpha)
    pw = _open_unit(power, "power")
    q = _open_unit(proportion_exposed, "proportion_exposed")
    rho2 = _real(r2_other, "r2_other")
    if not 0.0 <= rho2 < 1.0:
        raise StudyvalError(f"r2_other must be in [0, 1), got {rho2}")
    alternative = check_option(alternative, ALTERNATIVES, "alternative")
    psi = None if event_probability is None else _open_unit(event_probability, "event_probability")
    nd = NormalDist()
    z_a = nd.inv_cdf(1.0 - alpha / 2.0) if alternative == "two-sided" else nd.inv_cdf(1.0 - alpha)
    z_b = nd.inv_cdf(pw)
    events = (z_a + z_b) ** 2 / (math.log(hr_v) ** 2 * q * (1.0 - q) * (1.0 - rho2))
    subjects = None if psi is None else events / psi
    n = events if subjects is None else subjects
    return SchoenfeldResult(
        n=n,
        required=_ceil(n),
        n_refers_to="events" if subjects is None else "subjects",
        events=events,
        required_events=_ceil(events),
        subjects=subjects,
        required_subjects=None if subjects is None else _ceil(subjects),
        hr=hr_v,
        alpha=alpha,
        power=pw,
        proportion_exposed=q,
        r2_other=rho2,
        event_probability=psi,
        alternative=alternative,
    )
