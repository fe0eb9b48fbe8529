r"""Sample size for diagnostic accuracy studies, and checks of registered numbers.

* :func:`buderer` -- cases needed to estimate sensitivity and/or specificity
  to a given confidence-interval half-width (Buderer 1996).
* :func:`auc_power` -- one ROC curve, AUC against the null value 0.5: cases
  for a given power, power for given cases, or the detectable AUC for given
  cases and power. Replicates ``pROC::power.roc.test`` for a numeric AUC
  (Obuchowski, Lieber & Wians 2004, formulas 2 and 3), constants included.
* :func:`auc_precision` -- cases so that the CI for the AUC has at most a
  given half-width, with the Hanley & McNeil (1982) or Obuchowski variance.
* :func:`auc_precision_cohort` -- patients to enrol so that a one-vs-rest
  AUC reaches that half-width at an anticipated class prevalence.
* :func:`check_registered` -- compares a registered number with a required
  one and says so in a sentence fit for a report.

Every result keeps the unrounded number (``n``, ``n_cases``, ...) next to the
number rounded up (``required``, ``required_cases``, ...). Rounding up allows
for floating-point error of :math:`10^{-12}` relative, so that a requirement
of exactly 100 is not reported as 101.

References
----------
Buderer NMF (1996). Statistical methodology: I. Incorporating the prevalence
of disease into the sample size calculation for sensitivity and specificity.
Acad Emerg Med 3:895-900. doi:10.1111/j.1553-2712.1996.tb03538.x

Hanley JA, McNeil BJ (1982). The meaning and use of the area under a receiver
operating characteristic (ROC) curve. Radiology 143:29-36.
doi:10.1148/radiology.143.1.7063747

Obuchowski NA (1994). Computing sample size for receiver operating
characteristic studies. Invest Radiol 29:238-243.
doi:10.1097/00004424-199402000-00020

Obuchowski NA (1998). Sample size calculations in studies of test accuracy.
Stat Methods Med Res 7:371-392. doi:10.1177/096228029800700405

Obuchowski NA, Lieber ML, Wians FH Jr (2004). ROC curves in Clinical
Chemistry: uses, misuses, and possible solutions. Clin Chem 50:1118-1125.
doi:10.1373/clinchem.2004.031823

Robin X, Turck N, Hainard A, et al. (2011). pROC: an open-source package for
R and S+ to analyze and compare ROC curves. BMC Bioinformatics 12:77.
doi:10.1186/1471-2105-12-77

"""

from __future__ import annotations

import dataclasses
import math
import numbers

from scipy import optimize, stats

from studyval.analysis._sample_size_common import ceil_size as _ceil
from studyval.analysis._sample_size_common import open_unit as _open_unit
from studyval.analysis._sample_size_common import positive as _positive
from studyval.analysis._sample_size_common import real as _real
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option

__all__ = [
    "AucPowerResult",
    "AucPrecisionCohortResult",
    "AucPrecisionResult",
    "BudererResult",
    "RegisteredCheck",
    "auc_power",
    "auc_precision",
    "auc_precision_cohort",
    "auc_standard_error",
    "buderer",
    "check_registered",
]

ALTERNATIVES: tuple[str, ...] = ("two-sided", "one-sided")
AUC_VARIANCES: tuple[str, ...] = ("hanley-mcneil", "obuchowski")


# --------------------------------------------------------------------------- #
# Buderer
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class BudererResult(Result):
    r"""Sample size to estimate sensitivity and/or specificity with given precision.

    Buderer (1996), doi:10.1111/j.1553-2712.1996.tb03538.x:

    .. math::

        n_{\text{diseased}} = \frac{z^2\,\mathrm{Se}(1-\mathrm{Se})}{d^2}, \quad
        n_{\text{non-diseased}} = \frac{z^2\,\mathrm{Sp}(1-\mathrm{Sp})}{d^2}, \quad
        N = \max\!\left(\frac{n_{\text{diseased}}}{p},
                         \frac{n_{\text{non-diseased}}}{1-p}\right).

    Attributes
    ----------
    n : float
        The unrounded governing number; what it counts is in ``n_refers_to``.
    required : int
        ``n`` rounded up; with both sensitivity and specificity and no
        prevalence, the sum of the two rounded-up group sizes.
    n_refers_to : str
        What ``n`` counts, in words.
    sensitivity, specificity : float or None
        Anticipated values (``None`` when not planned for).
    precision : float
        Half-width :math:`d` of the two-sided confidence interval.
    alpha : float
        Two-sided error rate; the CI has level :math:`1 - \alpha`.
    z : float
        :math:`\Phi^{-1}(1 - \alpha/2)` to full double precision.
    prevalence : float or None
        Anticipated prevalence in a consecutive (cohort) sample; ``None`` when
        the reference-standard groups are sampled separately (case-control).
    n_diseased, n_non_diseased : float or None
        Unrounded reference-standard positives / negatives needed.
    required_diseased, required_non_diseased : int or None
        The same, rounded up.
    n_total, required_total : float, int or None
        With ``prevalence``: total subjects to enrol, unrounded and rounded up.
    sampling : str
        ``"separate groups (case-control)"`` or ``"consecutive (cohort) at the
        stated prevalence"``.
    ci_assumption : str
        The interval the precision refers to.
    method : str
        The formula and its source.

    """

    n: float
    required: int
    n_refers_to: str
    sensitivity: float | None
    specificity: float | None
    precision: float
    alpha: float
    z: float
    prevalence: float | None
    n_diseased: float | None
    required_diseased: int | None
    n_non_diseased: float | None
    required_non_diseased: int | None
    n_total: float | None
    required_total: int | None
    sampling: str
    ci_assumption: str
    method: str = "Buderer (1996), Acad Emerg Med 3:895-900"


def buderer(
    *,
    sensitivity: float | None = None,
    specificity: float | None = None,
    precision: float,
    alpha: float = 0.05,
    prevalence: float | None = None,
) -> BudererResult:
    r"""Cases needed to estimate sensitivity/specificity to a CI half-width (Buderer 1996).

    Parameters
    ----------
    sensitivity : float, optional
        Anticipated sensitivity in (0, 1).
    specificity : float, optional
        Anticipated specificity in (0, 1). At least one of the two is needed.
    precision : float
        Required half-width :math:`d` of the two-sided CI, in (0, 1)
        (0.05 means "plus or minus 5 percentage points").
    alpha : float, default 0.05
        Two-sided error rate of the CI.
    prevalence : float, optional
        Anticipated prevalence in (0, 1) for consecutive (cohort) sampling;
        converts group sizes into a total to enrol. Leave ``None`` when
        positives and negatives are sampled separately (case-control).

    Returns
    -------
    BudererResult

    Raises
    ------
    StudyvalError
        Neither sensitivity nor specificity, or a value outside its range.

    Notes
    -----
    With :math:`z = \Phi^{-1}(1 - \alpha/2)` and the normal-approximation
    (Wald) interval for a binomial proportion,

    .. math::

        n_{\text{diseased}} = \frac{z^2\, \mathrm{Se}(1-\mathrm{Se})}{d^2},
        \qquad
        n_{\text{non-diseased}} = \frac{z^2\, \mathrm{Sp}(1-\mathrm{Sp})}{d^2},

    and, for a consecutive sample with prevalence :math:`p`,

    .. math::

        N = \max\!\left(\frac{n_{\text{diseased}}}{p},\;
                         \frac{n_{\text{non-diseased}}}{1 - p}\right),

    each rounded up only at the end (the division uses the unrounded group
    sizes). The planned precision refers to the Wald interval; the Wilson or
    Clopper-Pearson interval reported at analysis will have a slightly
    different width.

    Examples
    --------
    The CT-DL-OVCF registration (NCT07306858): sensitivity 0.90, alpha 0.05,
    allowable error 0.05.

    >>> r = buderer(sensitivity=0.90, precision=0.05)
    >>> round(r.n, 4), r.required
    (138.2925, 139)

    """
    if sensitivity is None and specificity is None:
        raise StudyvalError("give sensitivity, specificity or both: nothing to plan for")
    alpha = check_alpha(alpha)
    d = _open_unit(precision, "precision")
    se = None if sensitivity is None else _open_unit(sensitivity, "sensitivity")
    sp = None if specificity is None else _open_unit(specificity, "specificity")
    prev = None if prevalence is None else _open_unit(prevalence, "prevalence")
    z = float(stats.norm.ppf(1 - alpha / 2))

    n_dis = None if se is None else z * z * se * (1 - se) / (d * d)
    n_non = None if sp is None else z * z * sp * (1 - sp) / (d * d)
    req_dis = None if n_dis is None else _ceil(n_dis)
    req_non = None if n_non is None else _ceil(n_non)

    n_total = req_total = None
    if prev is not None:
        totals = []
        if n_dis is not None:
            totals.append(n_dis / prev)
        if n_non is not None:
            totals.append(n_non / (1 - prev))
        n_total = max(totals)
        req_total = _ceil(n_total)
        n, required = n_total, req_total
        refers = f"total subjects to enrol at prevalence {prev:g}"
        sampling = "consecutive (cohort) at the stated prevalence"
    else:
        sampling = "separate groups (case-control)"
        if n_dis is not None and n_non is not None:
            n = n_dis + n_non
            required = req_dis + req_non  # type: ignore[operator]
            refers = "reference-standard positives plus negatives (each group rounded up)"
        elif n_dis is not None:
            n, required = n_dis, req_dis  # type: ignore[assignment]
            refers = "reference-standard positives (diseased cases)"
        else:
            n, required = n_non, req_non  # type: ignore[assignment]
            refers = "reference-standard negatives (non-diseased cases)"
    level = 1 - alpha
    ci_assumption = (
        f"two-sided {level:.0%} Wald (normal-approximation) interval for a binomial "
        f"proportion, half-width {d:g}"
    )
    return BudererResult(
        n=float(n),  # type: ignore[arg-type]
        required=int(required),  # type: ignore[arg-type]
        n_refers_to=refers,
        sensitivity=se,
        specificity=sp,
        precision=d,
        alpha=alpha,
        z=z,
        prevalence=prev,
        n_diseased=n_dis,
        required_diseased=req_dis,
        n_non_diseased=n_non,
        required_non_diseased=req_non,
        n_total=n_total,
        required_total=req_total,
        sampling=sampling,
        ci_assumption=ci_assumption,
    )


# --------------------------------------------------------------------------- #
# AUC variances
# --------------------------------------------------------------------------- #
def _v_obuchowski(auc: float, kappa: float) -> float:
    """Return n_cases * Var(AUC), binormal with b = 1 (pROC's ``var.theta.obuchowski``)."""
    a = float(stats.norm.ppf(auc)) * 1.414
    return 0.0099 * math.exp(-a * a / 2) * ((5 * a * a + 8) + (a * a + 8) / kappa)


def _v0_obuchowski(kappa: float) -> float:
    """The same at AUC = 0.5, as pROC writes it: 0.0792 (1 + 1/kappa)."""
    return 0.0792 * (1 + 1 / kappa)


def _hm_terms(auc: float) -> tuple[float, float]:
    q1 = auc / (2 - auc)
    q2 = 2 * auc * auc / (1 + auc)
    return q1 - auc * auc, q2 - auc * auc


def _var_hanley_mcneil(auc: float, n_cases: float, n_controls: float) -> float:
    b1, b2 = _hm_terms(auc)
    return (auc * (1 - auc) + (n_cases - 1) * b1 + (n_controls - 1) * b2) / (n_cases * n_controls)


def auc_standard_error(
    auc: float, *, n_cases: float, n_controls: float, method: str = "hanley-mcneil"
) -> float:
    r"""Planning standard error of an AUC estimate from its value and the group sizes.

    Parameters
    ----------
    auc : float
        Anticipated AUC in (0, 1).
    n_cases : float
        Reference-standard positives (> 0).
    n_controls : float
        Reference-standard negatives (> 0).
    method : {"hanley-mcneil", "obuchowski"}
        Variance formula, see Notes.

    Returns
    -------
    float

    Notes
    -----
    Hanley & McNeil (1982), eq. 1 with the exponential approximations
    :math:`Q_1 = A/(2-A)` and :math:`Q_2 = 2A^2/(1+A)`:

    .. math::

        \operatorname{Var}(\hat A) = \frac{A(1-A) + (n_1 - 1)(Q_1 - A^2)
            + (n_0 - 1)(Q_2 - A^2)}{n_1 n_0}

    Obuchowski (binormal, equal variances; as coded in pROC's
    ``var.theta.obuchowski``), with :math:`\kappa = n_0/n_1` and
    :math:`a = 1.414\,\Phi^{-1}(A)`:

    .. math::

        \operatorname{Var}(\hat A) = \frac{0.0099\, e^{-a^2/2}
            \left[(5a^2 + 8) + (a^2 + 8)/\kappa\right]}{n_1}

    The constant 1.414 (not :math:`\sqrt 2`) is kept to reproduce pROC.

    """
    check_option(method, AUC_VARIANCES, "method")
    a = _open_unit(auc, "auc")
    n1 = _positive(n_cases, "n_cases")
    n0 = _positive(n_controls, "n_controls")
    if method == "hanley-mcneil":
        return math.sqrt(_var_hanley_mcneil(a, n1, n0))
    return math.sqrt(_v_obuchowski(a, n0 / n1) / n1)


# --------------------------------------------------------------------------- #
# AUC: power (pROC power.roc.test, one curve)
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class AucPowerResult(Result):
    r"""Power / sample size / detectable AUC for testing one AUC against 0.5.

    Obuchowski, Lieber & Wians (2004), doi:10.1373/clinchem.2004.031823,
    formulas 2-3, as coded in ``pROC::power.roc.test``:

    .. math::

        n_1 = \frac{\left(z_\alpha\sqrt{V_0} + z_\beta\sqrt{V_A}\right)^2}{(A - 0.5)^2},
        \quad n_0 = \kappa n_1.

    Attributes
    ----------
    solved_for : {"n_cases", "power", "auc"}
        Which quantity was computed; the others were given.
    auc : float
        AUC under the alternative.
    auc_null : float
        Always 0.5.
    n_cases, n_controls : float
        Reference-standard positives and negatives (unrounded when solved for).
    required_cases, required_controls : int
        ``n_cases`` and ``n_controls`` rounded up.
    kappa : float
        :math:`\kappa = n_0 / n_1`, controls per case.
    alpha : float
        Significance level as given (two-sided unless ``alternative`` says
        otherwise).
    alternative : {"two-sided", "one-sided"}
        Two-sided uses :math:`z_{1-\alpha/2}`, one-sided :math:`z_{1-\alpha}`.
    power : float
        :math:`1 - \beta`.
    variance_null, variance_alternative : float
        :math:`V(0.5)` and :math:`V(A)`, the per-case variances (times
        :math:`n_1`).
    method : str
        Formula and source.

    """

    solved_for: str
    auc: float
    auc_null: float
    n_cases: float
    n_controls: float
    required_cases: int
    required_controls: int
    kappa: float
    alpha: float
    alternative: str
    power: float
    variance_null: float
    variance_alternative: float
    method: str = (
        "Obuchowski, Lieber & Wians (2004) formulas 2-3, as in pROC::power.roc.test (one ROC curve)"
    )


def auc_power(
    *,
    auc: float | None = None,
    n_cases: float | None = None,
    n_controls: float | None = None,
    kappa: float | None = None,
    alpha: float = 0.05,
    power: float | None = None,
    alternative: str = "two-sided",
) -> AucPowerResult:
    r"""Power calculation for one AUC against 0.5 (pROC ``power.roc.test``, numeric AUC).

    Leave exactly one of these unknown (``None``): ``power``; ``auc``; or
    both ``n_cases`` and ``n_controls``. It is computed from the others.

    Parameters
    ----------
    auc : float, optional
        AUC under the alternative, in (0.5, 1).
    n_cases : float, optional
        Reference-standard positives.
    n_controls : float, optional
        Reference-standard negatives. If only one of ``n_cases`` /
        ``n_controls`` is given, the other follows from ``kappa``.
    kappa : float, optional
        Controls per case, :math:`\kappa = n_0/n_1`; default 1 when it is
        needed. When both group sizes are given it is their ratio, and a
        different ``kappa`` is an error.
    alpha : float, default 0.05
        Significance level.
    power : float, optional
        :math:`1 - \beta`, in (0, 1).
    alternative : {"two-sided", "one-sided"}
        Two-sided divides ``alpha`` by 2 (as pROC does).

    Returns
    -------
    AucPowerResult

    Raises
    ------
    StudyvalError
        Not exactly one unknown, values out of range, inconsistent ``kappa``.
    EstimationError
        ``auc`` requested but no AUC below 1 reaches the power with these
        group sizes.

    Notes
    -----
    With :math:`\delta = A - 0.5`, :math:`z_\alpha = \Phi^{-1}(1-\alpha/2)`
    (two-sided) or :math:`\Phi^{-1}(1-\alpha)` (one-sided),
    :math:`z_\beta = \Phi^{-1}(\text{power})`, :math:`V_0 = 0.0792(1 + 1/\kappa)`
    and :math:`V_A` the Obuchowski variance (see :func:`auc_standard_error`):

    .. math::

        n_1 = \frac{\left(z_\alpha\sqrt{V_0} + z_\beta\sqrt{V_A}\right)^2}{\delta^2},
        \qquad n_0 = \kappa\, n_1,

    .. math::

        \text{power} = \Phi\!\left(\frac{\sqrt{n_1\delta^2} - z_\alpha\sqrt{V_0}}
                                      {\sqrt{V_A}}\right),

    and the detectable AUC is the root in :math:`(0.5, 1)` of the first
    equation for given :math:`n_1`. The power ignores the lower rejection
    region of a two-sided test, as pROC does.

    Differences from pROC: the AUC is solved to :math:`10^{-13}` with
    :func:`scipy.optimize.brentq`, whereas ``uniroot`` in pROC stops at its
    default tolerance (about :math:`1.2\times10^{-4}`), so the two AUCs agree to
    about 4 decimals; sig.level cannot be solved for here.

    """
    alpha = check_alpha(alpha)
    check_option(alternative, ALTERNATIVES, "alternative")
    if kappa is not None:
        kappa = _positive(kappa, "kappa")
    if n_cases is not None:
        n_cases = _positive(n_cases, "n_cases")
    if n_controls is not None:
        n_controls = _positive(n_controls, "n_controls")
    if n_cases is not None and n_controls is not None:
        ratio = n_controls / n_cases
        if kappa is not None and not math.isclose(kappa, ratio, rel_tol=1e-9):
            raise StudyvalError(
                f"kappa={kappa:g} contradicts n_controls/n_cases = {n_controls:g}/{n_cases:g} "
                f"= {ratio:g}; give kappa or both group sizes, not conflicting values"
            )
        kappa = ratio
    else:
        kappa = 1.0 if kappa is None else kappa
        if n_cases is not None:
            n_controls = kappa * n_cases
        elif n_controls is not None:
            n_cases = n_controls / kappa
    unknown = [
        name
        for name, missing in (
            ("auc", auc is None),
            ("power", power is None),
            ("n_cases", n_cases is None),
        )
        if missing
    ]
    if len(unknown) != 1:
        raise StudyvalError(
            "leave exactly one of auc, power, or (n_cases and n_controls) as None; "
            + ("all are given" if not unknown else f"unknown: {', '.join(unknown)}")
        )
    if auc is not None:
        auc = _open_unit(auc, "auc", low=0.5)
    if power is not None:
        power = _open_unit(power, "power")
    sig = alpha / 2 if alternative == "two-sided" else alpha
    z_alpha = float(stats.norm.ppf(1 - sig))
    v0 = _v0_obuchowski(kappa)
    solved = unknown[0]

    if solved == "n_cases":
        z_beta = float(stats.norm.ppf(power))
        va = _v_obuchowski(auc, kappa)
        n_cases = (z_alpha * math.sqrt(v0) + z_beta * math.sqrt(va)) ** 2 / (auc - 0.5) ** 2
        n_controls = kappa * n_cases
    elif solved == "power":
        va = _v_obuchowski(auc, kappa)
        z_beta = (math.sqrt(n_cases * (auc - 0.5) ** 2) - z_alpha * math.sqrt(v0)) / math.sqrt(va)
        power = float(stats.norm.cdf(z_beta))
    else:
        z_beta = float(stats.norm.ppf(power))
        n1 = n_cases

        def gap(x: float) -> float:
            v = _v_obuchowski(x, kappa)
            return (z_alpha * math.sqrt(v0) + z_beta * math.sqrt(v)) ** 2 / (x - 0.5) ** 2 - n1

        lo, hi = 0.5 + 1e-9, 1 - 1e-16
        if not gap(lo) > 0 > gap(hi):
            raise EstimationError(
                f"no AUC in (0.5, 1) reaches power {power:g} at alpha {alpha:g} "
                f"({alternative}) with {n_cases:g} cases and {n_controls:g} controls"
            )
        auc = float(optimize.brentq(gap, lo, hi, xtol=1e-13, rtol=1e-15, maxiter=500))
        va = _v_obuchowski(auc, kappa)
    return AucPowerResult(
        solved_for=solved,
        auc=float(auc),
        auc_null=0.5,
        n_cases=float(n_cases),
        n_controls=float(n_controls),
        required_cases=_ceil(n_cases),
        required_controls=_ceil(n_controls),
        kappa=float(kappa),
        alpha=alpha,
        alternative=alternative,
        power=float(power),  # type: ignore[arg-type]
        variance_null=v0,
        variance_alternative=va,
    )


# --------------------------------------------------------------------------- #
# AUC: precision (CI half-width)
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class AucPrecisionResult(Result):
    r"""Group sizes so that the CI for the AUC has at most a given half-width.

    Criterion :math:`z\sqrt{\operatorname{Var}(\hat A)} \le d`, with the
    Hanley & McNeil (1982, doi:10.1148/radiology.143.1.7063747) or Obuchowski
    variance; see :func:`auc_precision` for the closed forms.

    Attributes
    ----------
    auc : float
        Anticipated AUC.
    half_width : float
        Target half-width :math:`d` of the two-sided Wald CI for the AUC.
    kappa : float
        Controls per case, :math:`n_0/n_1`.
    alpha : float
        Two-sided error rate of the CI.
    z : float
        :math:`\Phi^{-1}(1 - \alpha/2)`.
    variance : {"hanley-mcneil", "obuchowski"}
        The variance formula (see :func:`auc_standard_error`).
    n_cases, n_controls : float
        Unrounded group sizes at which the half-width equals :math:`d`.
    required_cases, required_controls : int
        Rounded up.
    achieved_half_width : float
        :math:`z\,\mathrm{SE}` at the rounded-up group sizes (:math:`\le d`).
    method : str
        Formula and source.

    """

    auc: float
    half_width: float
    kappa: float
    alpha: float
    z: float
    variance: str
    n_cases: float
    n_controls: float
    required_cases: int
    required_controls: int
    achieved_half_width: float
    method: str


def auc_precision(
    *,
    auc: float,
    half_width: float,
    kappa: float = 1.0,
    alpha: float = 0.05,
    variance: str = "hanley-mcneil",
) -> AucPrecisionResult:
    r"""Cases and controls so that the AUC's CI half-width is at most ``half_width``.

    Parameters
    ----------
    auc : float
        Anticipated AUC in (0, 1).
    half_width : float
        Target half-width :math:`d` in (0, 0.5].
    kappa : float, default 1.0
        Controls per case, :math:`\kappa = n_0 / n_1`.
    alpha : float, default 0.05
        Two-sided error rate of the CI.
    variance : {"hanley-mcneil", "obuchowski"}
        Planning variance (see :func:`auc_standard_error`). The DeLong
        variance used at analysis needs the data; Hanley-McNeil is its usual
        planning approximation.

    Returns
    -------
    AucPrecisionResult

    Notes
    -----
    The criterion is :math:`z\sqrt{\operatorname{Var}(\hat A)} \le d` with
    :math:`z = \Phi^{-1}(1-\alpha/2)` and :math:`n_0 = \kappa n_1`.

    Obuchowski: :math:`n_1 = z^2 V_A / d^2`.

    Hanley-McNeil: with :math:`b_1 = Q_1 - A^2`, :math:`b_2 = Q_2 - A^2` and
    :math:`c = A(1-A) - b_1 - b_2`, the criterion is the quadratic
    :math:`d^2\kappa\, n_1^2 - z^2 (b_1 + \kappa b_2)\, n_1 - z^2 c \ge 0`,
    whose positive root is

    .. math::

        n_1 = \frac{z^2 (b_1 + \kappa b_2)
              + \sqrt{z^4 (b_1 + \kappa b_2)^2 + 4 d^2 \kappa z^2 c}}{2 d^2 \kappa}.

    Both group sizes are rounded up; the variance decreases in each, so the
    half-width at the rounded sizes is at most :math:`d`.

    """
    check_option(variance, AUC_VARIANCES, "variance")
    alpha = check_alpha(alpha)
    a = _open_unit(auc, "auc")
    d = _real(half_width, "half_width")
    if not 0.0 < d <= 0.5:
        raise StudyvalError(f"half_width must be in (0, 0.5], got {d}")
    k = _positive(kappa, "kappa")
    z = float(stats.norm.ppf(1 - alpha / 2))
    if variance == "obuchowski":
        n1 = z * z * _v_obuchowski(a, k) / (d * d)
        method = "Obuchowski binormal variance (as pROC var.theta.obuchowski), Wald CI"
    else:
        b1, b2 = _hm_terms(a)
        c = a * (1 - a) - b1 - b2
        b = z * z * (b1 + k * b2)
        n1 = (b + math.sqrt(b * b + 4 * d * d * k * z * z * c)) / (2 * d * d * k)
        method = "Hanley & McNeil (1982) variance with Q1 = A/(2-A), Q2 = 2A^2/(1+A), Wald CI"
    n0 = k * n1
    r1, r0 = _ceil(n1), _ceil(n0)
    achieved = z * auc_standard_error(a, n_cases=r1, n_controls=r0, method=variance)
    return AucPrecisionResult(
        auc=a,
        half_width=d,
        kappa=k,
        alpha=alpha,
        z=z,
        variance=variance,
        n_cases=n1,
        n_controls=n0,
        required_cases=r1,
        required_controls=r0,
        achieved_half_width=achieved,
        method=method,
    )


@dataclasses.dataclass(frozen=True)
class AucPrecisionCohortResult(Result):
    r"""Patients to enrol so that a one-vs-rest AUC reaches a CI half-width at a given prevalence.

    Attributes
    ----------
    prevalence : float
        Anticipated share :math:`\pi` of the class (cases) among enrolled patients.
    auc, half_width, alpha, z : float
        As :class:`AucPrecisionResult`.
    variance : str
    n_cases, n_controls : float
        Unrounded group sizes (:func:`auc_precision` with :math:`\kappa = (1-\pi)/\pi`).
    required_cases, required_controls : int
        Rounded up.
    n_total : float
        Unrounded patients to enrol, :math:`\max\{n_1/\pi,\ n_0/(1-\pi)\}`.
    required_total : int
        Rounded up.
    method : str
    """

    prevalence: float
    auc: float
    half_width: float
    alpha: float
    z: float
    variance: str
    n_cases: float
    n_controls: float
    required_cases: int
    required_controls: int
    n_total: float
    required_total: int
    method: str


def auc_precision_cohort(
    *,
    auc: float,
    half_width: float,
    prevalence: float,
    alpha: float = 0.05,
    variance: str = "hanley-mcneil",
) -> AucPrecisionCohortResult:
    r"""Patients to enrol so that the CI of a one-vs-rest AUC has at most ``half_width``.

    A class of anticipated prevalence :math:`\pi` against the rest: the cases
    and controls of :func:`auc_precision` with
    :math:`\kappa = n_0/n_1 = (1-\pi)/\pi`, turned into the cohort that is
    expected to hold them,

    .. math::

        N = \max\left\{\frac{n_1}{\pi},\ \frac{n_0}{1-\pi}\right\}

    (the two coincide: the maximum only guards against rounding), so that
    :math:`\pi N` cases and :math:`(1-\pi) N` controls give the half-width
    :math:`d` with the Hanley & McNeil (1982,
    doi:10.1148/radiology.143.1.7063747) or Obuchowski (1994,
    doi:10.1097/00004424-199402000-00020) variance. For a multi-class outcome
    the binding class is the one needing the largest :math:`N`.

    Parameters
    ----------
    auc : float
        Anticipated AUC in (0, 1).
    half_width : float
        Target half-width in (0, 0.5].
    prevalence : float
        Anticipated prevalence of the class, in (0, 1).
    alpha : float, default 0.05
    variance : {"hanley-mcneil", "obuchowski"}

    Returns
    -------
    AucPrecisionCohortResult

    Raises
    ------
    StudyvalError
        ``prevalence`` outside (0, 1), or what :func:`auc_precision` rejects.

    Examples
    --------
    >>> r = auc_precision_cohort(auc=0.85, half_width=0.05, prevalence=0.25)
    >>> round(r.n_total, 4), r.required_total, r.required_cases
    (395.2152, 396, 99)
    """
    p = _open_unit(prevalence, "prevalence")
    groups = auc_precision(
        auc=auc, half_width=half_width, kappa=(1 - p) / p, alpha=alpha, variance=variance
    )
    total = max(groups.n_cases / p, groups.n_controls / (1 - p))
    return AucPrecisionCohortResult(
        prevalence=p,
        auc=groups.auc,
        half_width=groups.half_width,
        alpha=groups.alpha,
        z=groups.z,
        variance=groups.variance,
        n_cases=groups.n_cases,
        n_controls=groups.n_controls,
        required_cases=groups.required_cases,
        required_controls=groups.required_controls,
        n_total=total,
        required_total=_ceil(total),
        method=f"{groups.method}; cohort N = max(n_cases / prevalence, n_controls / (1 - prevalence))",
    )


# --------------------------------------------------------------------------- #
# Registered numbers
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class RegisteredCheck(Result):
    """A registered sample size compared with the required one.

    Attributes
    ----------
    label : str
        What is counted, plural (``"acute cases"``).
    basis : str
        What requires the number (``"the Buderer formula"``).
    required_unrounded : float
        The requirement before rounding.
    required : int
        The requirement rounded up.
    registered : int
        The number in the registration or protocol.
    shortfall : int
        ``required - registered``; positive means under-powered / too few,
        zero or negative means adequate.
    adequate : bool
        ``registered >= required``.
    message : str
        One plain-English sentence stating the comparison.

    """

    label: str
    basis: str
    required_unrounded: float
    required: int
    registered: int
    shortfall: int
    adequate: bool
    message: str


def _fmt_unrounded(x: float) -> str:
    """One decimal, more if one decimal would look like a whole number."""
    for digits in range(1, 7):
        text = f"{x:.{digits}f}"
        if not text.endswith("0"):
            return text
    return f"{x:.6f}"


def check_registered(
    required: float | BudererResult,
    registered: int,
    *,
    label: str,
    basis: str | None = None,
    counted: str = "registered",
) -> RegisteredCheck:
    """Compare a registered sample size with what a calculation requires.

    Parameters
    ----------
    required : float or BudererResult
        The unrounded requirement (e.g. ``buderer(...).n``); a
        :class:`BudererResult` gives its ``n``.
    registered : int
        The registered number (whole, >= 0).
    label : str
        Plural noun phrase for what is counted, e.g. ``"acute cases"``.
    basis : str, optional
        What requires it, used in the sentence; default ``"the Buderer
        formula"`` for a :class:`BudererResult`, else ``"the sample-size
        calculation"``.
    counted : str
        How the number was obtained, first word of the sentence after "The":
        ``"registered"`` (the registry's number) or ``"analysed"`` (the number
        a run analysed).

    Returns
    -------
    RegisteredCheck

    Raises
    ------
    StudyvalError
        ``required`` not a positive finite number, ``registered`` not a
        whole number >= 0, or an empty ``label``/``basis``.

    Examples
    --------
    >>> check_registered(buderer(sensitivity=0.9, precision=0.05), 138,
    ...                  label="acute cases").message
    'The registered 138 acute cases are 1 short of the 139 that the Buderer formula requires (138.3 unrounded).'

    """
    if isinstance(required, BudererResult):
        basis = "the Buderer formula" if basis is None else basis
        required = required.n
    basis = "the sample-size calculation" if basis is None else basis
    req_unrounded = _positive(required, "required")
    if isinstance(registered, (bool,)) or not isinstance(registered, numbers.Real):
        raise StudyvalError(f"registered must be a whole number, got {registered!r}")
    if not (math.isfinite(float(registered)) and float(registered) == math.floor(registered)):
        raise StudyvalError(f"registered must be a whole number, got {registered!r}")
    reg = int(registered)
    if reg < 0:
        raise StudyvalError(f"registered must be >= 0, got {reg}")
    for name, text in (("label", label), ("basis", basis), ("counted", counted)):
        if not isinstance(text, str) or not text.strip():
            raise StudyvalError(f"{name} must be a non-empty string, got {text!r}")
    req = _ceil(req_unrounded)
    shortfall = req - reg
    unrounded = "" if req_unrounded == req else f" ({_fmt_unrounded(req_unrounded)} unrounded)"
    tail = f"the {req} that {basis} requires{unrounded}"
    if shortfall > 0:
        message = f"The {counted} {reg} {label} are {shortfall} short of {tail}."
    elif shortfall == 0:
        message = f"The {counted} {reg} {label} meet {tail}."
    else:
        message = f"The {counted} {reg} {label} exceed by {-shortfall} {tail}."
    return RegisteredCheck(
        label=label,
        basis=basis,
        required_unrounded=req_unrounded,
        required=req,
        registered=reg,
        shortfall=shortfall,
        adequate=shortfall <= 0,
        message=message,
    )
