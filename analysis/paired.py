r"""Two binary tests on the same cases: McNemar's test and the paired difference of proportions.

The paired 2x2 table counts the cases by the result of test A (rows) and test
B (columns), where "success" is whatever the proportion counts (a true
positive among diseased cases for sensitivity, a true negative among
non-diseased cases for specificity):

=============  ==============  ==============
               B success       B failure
=============  ==============  ==============
A success      :math:`a`       :math:`b`
A failure      :math:`c`       :math:`d`
=============  ==============  ==============

:math:`\hat p_A = (a + b)/n`, :math:`\hat p_B = (a + c)/n` and the paired
difference is :math:`\hat p_A - \hat p_B = (b - c)/n`; only the discordant
cases :math:`b` and :math:`c` carry information about it.

References
----------
McNemar Q (1947). Note on the sampling error of the difference between
correlated proportions or percentages. Psychometrika 12:153-157.
doi:10.1007/BF02295996

Newcombe RG (1998b). Improved confidence intervals for the difference between
binomial proportions based on paired data. Stat Med 17:2635-2650.
doi:10.1002/(SICI)1097-0258(19981130)17:22<2635::AID-SIM954>3.0.CO;2-C

Fagerland MW, Lydersen S, Laake P (2017). Statistical Analysis of Contingency
Tables. Chapman & Hall/CRC, chapter 8 (worked examples).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy import stats

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option
from .proportions import proportion_ci

__all__ = [
    "MCNEMAR_METHODS",
    "McNemarResult",
    "PairedComparisonResult",
    "PairedDifferenceResult",
    "mcnemar",
    "paired_comparison",
    "paired_difference",
    "paired_table",
]

#: Accepted values of ``method`` in :func:`mcnemar`.
MCNEMAR_METHODS: tuple[str, ...] = ("exact", "asymptotic", "asymptotic-cc")


def _check_table(table: Any) -> tuple[int, int, int, int]:
    arr = np.asarray(table)
    if arr.shape != (2, 2):
        raise StudyvalError(f"table must be 2x2 [[a, b], [c, d]], got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.floor(arr)):
            raise StudyvalError(f"table must hold whole counts, got {arr.tolist()}")
    elif arr.dtype.kind not in "iu":
        raise StudyvalError(f"table must hold whole counts, got dtype {arr.dtype}")
    if np.any(arr < 0):
        raise StudyvalError(f"table counts must be >= 0, got {arr.tolist()}")
    a, b, c, d = (int(v) for v in arr.ravel())
    if a + b + c + d == 0:
        raise EstimationError("the paired table is empty (n = 0)")
    return a, b, c, d


def paired_table(success_a: Any, success_b: Any) -> np.ndarray:
    """The paired 2x2 table ``[[a, b], [c, d]]`` from two boolean vectors over the same cases.

    Parameters
    ----------
    success_a, success_b : array-like of bool, shape (n,)
        Success of test A and of test B for each case (same order).

    """
    a_ = np.asarray(success_a)
    b_ = np.asarray(success_b)
    if a_.dtype.kind != "b" or b_.dtype.kind != "b":
        raise StudyvalError("success_a and success_b must be boolean arrays")
    if a_.shape != b_.shape or a_.ndim != 1:
        raise StudyvalError(
            f"success_a and success_b must be 1-d of the same length, got {a_.shape} and {b_.shape}"
        )
    return np.array(
        [
            [int(np.sum(a_ & b_)), int(np.sum(a_ & ~b_))],
            [int(np.sum(~a_ & b_)), int(np.sum(~a_ & ~b_))],
        ]
    )


@dataclasses.dataclass(frozen=True)
class McNemarResult(Result):
    r"""McNemar's test of marginal homogeneity, :math:`H_0: p_A = p_B`.

    Attributes
    ----------
    method : str
        ``exact`` (conditional binomial), ``asymptotic`` or ``asymptotic-cc``.
    statistic : float
        :math:`X^2` (df 1) for the asymptotic tests; NaN for the exact test.
    df : float
        1 for the asymptotic tests; NaN for the exact test.
    p_value : float
        Two-sided.
    b, c : int
        Discordant counts (A success and B failure; A failure and B success).
    n_discordant : int
        :math:`b + c`.
    n : int
        All pairs.

    """

    method: str
    statistic: float
    df: float
    p_value: float
    b: int
    c: int
    n_discordant: int
    n: int


def mcnemar(table: Any, *, method: str) -> McNemarResult:
    r"""McNemar's test on a paired 2x2 table.

    Parameters
    ----------
    table : array-like, shape (2, 2)
        ``[[a, b], [c, d]]`` (see the module docstring).
    method : {"exact", "asymptotic", "asymptotic-cc"}
        Required; there is no default, because the three differ at small
        :math:`b + c`.

    Notes
    -----
    ``exact``: conditional on :math:`b + c`, :math:`b \sim
    \mathrm{Bin}(b + c, 1/2)` under :math:`H_0`; the two-sided p-value is
    :math:`\min\{1, 2 P(B \le \min(b, c))\}`, which equals R's
    ``binom.test(b, b + c)$p.value``.

    ``asymptotic``: :math:`X^2 = (b - c)^2/(b + c)` on 1 df, R's
    ``mcnemar.test(table, correct = FALSE)``.

    ``asymptotic-cc``: :math:`X^2 = (|b - c| - 1)^2/(b + c)`, R's
    ``mcnemar.test(table)`` (its default ``correct = TRUE``).

    Raises
    ------
    EstimationError
        No discordant pairs (:math:`b + c = 0`): the test is undefined
        (the tests agree on every case).

    """
    method = check_option(method, MCNEMAR_METHODS, "method")
    a, b, c, d = _check_table(table)
    m = b + c
    if m == 0:
        raise EstimationError(
            "McNemar's test is undefined without discordant pairs (b + c = 0): "
            "the two tests agree on every case"
        )
    if method == "exact":
        stat = df = float("nan")
        p = min(1.0, 2.0 * float(stats.binom.cdf(min(b, c), m, 0.5)))
    else:
        num = abs(b - c) - (1.0 if method == "asymptotic-cc" else 0.0)
        stat = num**2 / m
        df = 1.0
        p = float(stats.chi2.sf(stat, 1))
    return McNemarResult(
        method=method,
        statistic=stat,
        df=df,
        p_value=p,
        b=b,
        c=c,
        n_discordant=m,
        n=a + b + c + d,
    )


@dataclasses.dataclass(frozen=True)
class PairedDifferenceResult(Result):
    r"""Paired difference :math:`p_A - p_B` with Newcombe's (1998b) method-10 interval.

    Attributes
    ----------
    difference : float
        :math:`(b - c)/n`.
    ci_low, ci_high : float
        Two-sided limits.
    ci_level : float
    ci_method : str
    p_a, p_b : float
        :math:`(a + b)/n` and :math:`(a + c)/n`.
    a, b, c, d, n : int
        The table and its total.
    phi : float
        The (corrected) correlation :math:`\hat\phi` used in the interval.

    """

    difference: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    p_a: float
    p_b: float
    a: int
    b: int
    c: int
    d: int
    n: int
    phi: float


def paired_difference(table: Any, *, alpha: float = 0.05) -> PairedDifferenceResult:
    r"""Difference of two paired proportions with Newcombe's hybrid score interval (method 10).

    Parameters
    ----------
    table : array-like, shape (2, 2)
        ``[[a, b], [c, d]]`` (see the module docstring).
    alpha : float
        Two-sided level :math:`1 - \alpha`.

    Notes
    -----
    With :math:`(l_A, u_A)`, :math:`(l_B, u_B)` the Wilson score limits of
    :math:`\hat p_A = (a+b)/n` and :math:`\hat p_B = (a+c)/n`, and
    :math:`\hat\theta = \hat p_A - \hat p_B`:

    .. math::

        L = \hat\theta - \sqrt{(\hat p_A - l_A)^2 - 2\hat\phi(\hat p_A - l_A)(u_B - \hat p_B)
                              + (u_B - \hat p_B)^2}

        U = \hat\theta + \sqrt{(u_A - \hat p_A)^2 - 2\hat\phi(u_A - \hat p_A)(\hat p_B - l_B)
                              + (\hat p_B - l_B)^2}

    where :math:`\hat\phi = C/\sqrt{(a+b)(c+d)(a+c)(b+d)}` with
    :math:`C = ad - bc - n/2` if :math:`ad - bc > n/2`, :math:`C = ad - bc` if
    :math:`ad - bc < 0`, and :math:`C = 0` otherwise; :math:`\hat\phi = 0` when
    a margin is zero (Newcombe 1998b). Limits are truncated to [-1, 1].

    """
    alpha = check_alpha(alpha)
    a, b, c, d = _check_table(table)
    n = a + b + c + d
    ra = proportion_ci(a + b, n, alpha=alpha, method="wilson")
    rb = proportion_ci(a + c, n, alpha=alpha, method="wilson")
    pa, la, ua = ra.estimate, ra.ci_low, ra.ci_high
    pb, lb, ub = rb.estimate, rb.ci_low, rb.ci_high
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if margins > 0:
        num = a * d - b * c
        if num > n / 2:
            corrected = num - n / 2
        elif num < 0:
            corrected = num
        else:
            corrected = 0.0
        phi = corrected / math.sqrt(margins)
    theta = pa - pb
    dl = (pa - la) ** 2 - 2 * phi * (pa - la) * (ub - pb) + (ub - pb) ** 2
    du = (ua - pa) ** 2 - 2 * phi * (ua - pa) * (pb - lb) + (pb - lb) ** 2
    low = theta - math.sqrt(max(dl, 0.0))
    high = theta + math.sqrt(max(du, 0.0))
    return PairedDifferenceResult(
        difference=theta,
        ci_low=max(-1.0, low),
        ci_high=min(1.0, high),
        ci_level=1.0 - alpha,
        ci_method="Newcombe hybrid score for paired data (1998, method 10)",
        p_a=pa,
        p_b=pb,
        a=a,
        b=b,
        c=c,
        d=d,
        n=n,
        phi=phi,
    )


@dataclasses.dataclass(frozen=True)
class PairedComparisonResult(Result):
    r"""Two binary tests on the same cases: the paired difference and McNemar's test by every method.

    Attributes
    ----------
    difference, ci_low, ci_high, ci_level, ci_method, p_a, p_b, a, b, c, d, n, phi
        As :class:`PairedDifferenceResult` (Newcombe's method 10).
    p_exact, p_asymptotic, p_asymptotic_cc : float
        Two-sided p-values of :func:`mcnemar` by each method; NaN without
        discordant pairs (the test is undefined, see ``note``).
    mcnemar_method : str
        The method the analysis reports.
    p_value : float
        The p-value of ``mcnemar_method``.
    note : str
        ``"no discordant pairs: McNemar's test undefined"`` when
        :math:`b + c = 0`, else empty.

    """

    difference: float
    ci_low: float
    ci_high: float
    ci_level: float
    ci_method: str
    p_a: float
    p_b: float
    a: int
    b: int
    c: int
    d: int
    n: int
    phi: float
    p_exact: float
    p_asymptotic: float
    p_asymptotic_cc: float
    mcnemar_method: str
    p_value: float
    note: str


def paired_comparison(
    success_a: Any, success_b: Any, *, mcnemar_method: str, alpha: float = 0.05
) -> PairedComparisonResult:
    r"""Compare two binary tests read on the same cases: difference with its CI, and McNemar's test.

    Parameters
    ----------
    success_a, success_b : array-like of bool, shape (n,)
        Whether test A (B) succeeded on each case (e.g. called a diseased case
        positive, for sensitivity), in the same case order.
    mcnemar_method : {"exact", "asymptotic", "asymptotic-cc"}
        The McNemar test the analysis reports in ``p_value`` (all three are
        returned).
    alpha : float
        Two-sided level of the interval.

    Notes
    -----
    The table is :func:`paired_table`; the difference :math:`(b - c)/n` and
    its interval are :func:`paired_difference`, the tests :func:`mcnemar`.
    Without discordant pairs (:math:`b + c = 0`) the difference is 0 with
    Newcombe's interval, and McNemar's test is undefined: its p-values are
    NaN and ``note`` says why (never a p-value of 1).

    Examples
    --------
    >>> a = np.array([True, True, True, False, True])
    >>> r = paired_comparison(a, np.array([True, False, False, False, True]), mcnemar_method="exact")
    >>> r.b, r.c, r.difference, r.p_value
    (2, 0, 0.4, 0.5)

    """
    method = check_option(mcnemar_method, MCNEMAR_METHODS, "mcnemar_method")
    table = paired_table(success_a, success_b)
    diff = paired_difference(table, alpha=alpha)
    discordant = diff.b + diff.c > 0
    p = {
        m: mcnemar(table, method=m).p_value if discordant else float("nan") for m in MCNEMAR_METHODS
    }
    return PairedComparisonResult(
        **diff.to_dict(),
        p_exact=p["exact"],
        p_asymptotic=p["asymptotic"],
        p_asymptotic_cc=p["asymptotic-cc"],
        mcnemar_method=method,
        p_value=p[method],
        note="" if discordant else "no discordant pairs: McNemar's test undefined",
    )
