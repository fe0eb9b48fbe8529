r"""Confidence intervals for a single binomial proportion.

Five methods, named by a closed set of strings (a misspelt name gets a "did you
mean" error, never a prefix match):

``"wilson"`` (default)
    Score interval of Wilson (1927), obtained by inverting the score test.
    Equals R's ``prop.test(x, n, correct = FALSE)$conf.int``.
``"clopper-pearson"``
    The "exact" interval of Clopper & Pearson (1934) from beta quantiles.
    Equals R's ``binom.test(x, n)$conf.int``. Conservative: coverage is at
    least the nominal level.
``"agresti-coull"``
    Wald interval around the shrunken estimate :math:`\tilde p` (Agresti &
    Coull 1998, in the form of Brown, Cai & DasGupta 2001, eq. 4), truncated
    to [0, 1].
``"jeffreys"``
    Equal-tailed Bayesian interval under the Jeffreys prior Beta(1/2, 1/2),
    with the boundary modification of Brown, Cai & DasGupta (2001, §4.1.2):
    lower limit 0 when :math:`x = 0` and upper limit 1 when :math:`x = n`.
``"wald"``
    The textbook :math:`\hat p \pm z\sqrt{\hat p(1-\hat p)/n}`, truncated to
    [0, 1]. **Not recommended**: its coverage is erratic and far below the
    nominal level for small :math:`n` or :math:`p` near 0 or 1, and it is the
    degenerate interval [0, 0] at :math:`x = 0` (Brown, Cai & DasGupta 2001;
    Newcombe 1998). Offered only to reproduce published numbers.

Throughout, :math:`z = \Phi^{-1}(1 - \alpha/2)`, :math:`x` is the number of
successes and :math:`n` the number of trials.

References
----------
Wilson EB (1927). Probable inference, the law of succession, and statistical
inference. J Am Stat Assoc 22:209-212. doi:10.1080/01621459.1927.10502953

Clopper CJ, Pearson ES (1934). The use of confidence or fiducial limits
illustrated in the case of the binomial. Biometrika 26:404-413.
doi:10.1093/biomet/26.4.404

Agresti A, Coull BA (1998). Approximate is better than "exact" for interval
estimation of binomial proportions. Am Stat 52:119-126.
doi:10.1080/00031305.1998.10480550

Newcombe RG (1998). Two-sided confidence intervals for the single proportion:
comparison of seven methods. Stat Med 17:857-872.
doi:10.1002/(SICI)1097-0258(19980430)17:8<857::AID-SIM777>3.0.CO;2-E

Brown LD, Cai TT, DasGupta A (2001). Interval estimation for a binomial
proportion. Stat Sci 16:101-133. doi:10.1214/ss/1009213286

"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special, stats

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option

__all__ = [
    "CI_METHODS",
    "ProportionResult",
    "proportion_ci",
    "proportion_ci_array",
]

#: The accepted values of ``method``.
CI_METHODS: tuple[str, ...] = ("wilson", "clopper-pearson", "agresti-coull", "jeffreys", "wald")


@dataclasses.dataclass(frozen=True)
class ProportionResult(Result):
    r"""A binomial proportion with its confidence interval.

    The estimate is :math:`\hat p = x/n`; the interval formulas and papers are
    listed in :func:`proportion_ci` and the module docstring.

    Unpacks as ``estimate, ci_low, ci_high = proportion_ci(x, n)``.

    Attributes
    ----------
    estimate : float
        The sample proportion :math:`\hat p = x / n`.
    ci_low, ci_high : float
        Two-sided confidence limits, always within [0, 1].
    ci_level : float
        Confidence level :math:`1 - \alpha` (e.g. 0.95).
    numerator : int
        Number of successes :math:`x`.
    denominator : int
        Number of trials :math:`n`.
    method : str
        The interval method, one of :data:`CI_METHODS`.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    numerator: int
    denominator: int
    method: str


def _as_count(value: Any, name: str) -> int:
    """Return ``value`` as a Python int; integral floats are accepted."""
    if isinstance(value, (bool, np.bool_)):
        raise StudyvalError(f"{name} must be a whole number, got the boolean {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        v = float(value)
        if math.isfinite(v) and v == math.floor(v):
            return int(v)
    raise StudyvalError(f"{name} must be a whole number, got {value!r}")


def _as_count_array(value: Any, name: str) -> np.ndarray:
    """Return ``value`` as a 1-d int64 array of whole numbers."""
    arr = np.atleast_1d(np.asarray(value))
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind == "b":
        raise StudyvalError(f"{name} must hold whole numbers, got booleans")
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    if arr.dtype.kind != "f":
        raise StudyvalError(f"{name} must hold whole numbers, got dtype {arr.dtype}")
    bad = ~np.isfinite(arr) | (arr != np.floor(arr))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(f"{name} must hold whole numbers; position {i} is {float(arr[i])!r}")
    return arr.astype(np.int64)


def _check_counts(x: np.ndarray, n: np.ndarray) -> None:
    """Raise unless every ``0 <= x <= n`` and ``n > 0``."""
    zero = n == 0
    if zero.any():
        i = int(np.flatnonzero(zero)[0])
        where = f" at position {i}" if n.size > 1 else ""
        raise EstimationError(
            f"the denominator is zero{where} (n=0): a proportion of no trials is undefined; "
            "the caller must decide how to report it"
        )
    neg = n < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise StudyvalError(f"n must be positive, got {int(n[i])}")
    bad = (x < 0) | (x > n)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        where = f" at position {i}" if n.size > 1 else ""
        raise StudyvalError(
            f"successes must lie in [0, n]{where}: got successes={int(x[i])} with n={int(n[i])}"
        )


def _intervals(
    x: np.ndarray, n: np.ndarray, alpha: float, method: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised core: estimate and limits for validated counts."""
    xf = x.astype(np.float64)
    nf = n.astype(np.float64)
    p = xf / nf
    z = float(stats.norm.ppf(1.0 - alpha / 2.0))
    at0 = x == 0
    atn = x == n
    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "wilson":
            z2 = z * z
            centre = (xf + z2 / 2.0) / (nf + z2)
            half = z * np.sqrt(nf) / (nf + z2) * np.sqrt(p * (1.0 - p) + z2 / (4.0 * nf))
            low, high = centre - half, centre + half
        elif method == "clopper-pearson":
            low = special.betaincinv(xf, nf - xf + 1.0, alpha / 2.0)
            high = special.betaincinv(xf + 1.0, nf - xf, 1.0 - alpha / 2.0)
        elif method == "jeffreys":
            low = special.betaincinv(xf + 0.5, nf - xf + 0.5, alpha / 2.0)
            high = special.betaincinv(xf + 0.5, nf - xf + 0.5, 1.0 - alpha / 2.0)
        elif method == "agresti-coull":
            n_t = nf + z * z
            p_t = (xf + z * z / 2.0) / n_t
            half = z * np.sqrt(p_t * (1.0 - p_t) / n_t)
            low, high = p_t - half, p_t + half
        else:  # wald
            half = z * np.sqrt(p * (1.0 - p) / nf)
            low, high = p - half, p + half
    # Exact boundary values: every method here has lower limit 0 at x = 0 and
    # upper limit 1 at x = n (Clopper-Pearson by definition, Jeffreys by the
    # Brown-Cai-DasGupta modification, Wilson analytically, Wald/Agresti-Coull
    # after truncation); setting them removes rounding noise.
    low = np.where(at0, 0.0, np.clip(low, 0.0, 1.0))
    high = np.where(atn, 1.0, np.clip(high, 0.0, 1.0))
    return p, low, high


def proportion_ci(
    successes: int, n: int, *, alpha: float = 0.05, method: str = "wilson"
) -> ProportionResult:
    r"""Estimate a binomial proportion with a two-sided confidence interval.

    Parameters
    ----------
    successes : int
        Number of successes :math:`x` (e.g. true positives), ``0 <= x <= n``.
        Integral floats such as ``5.0`` are accepted.
    n : int
        Number of trials :math:`n` (e.g. reference-standard positives), ``n > 0``.
    alpha : float, default 0.05
        Two-sided error rate; the interval has level :math:`1 - \alpha`.
    method : {"wilson", "clopper-pearson", "agresti-coull", "jeffreys", "wald"}
        Interval method; see the module docstring. ``"wald"`` is not
        recommended.

    Returns
    -------
    ProportionResult
        ``estimate, ci_low, ci_high`` plus level, counts and method.

    Raises
    ------
    EstimationError
        ``n == 0``: the denominator is zero and the proportion is undefined.
        The caller decides how to report that (studyval never returns a NaN
        here silently).
    StudyvalError
        ``successes`` outside ``[0, n]``, a count that is not a whole number,
        an ``alpha`` outside (0, 1), or an unknown ``method``.

    Notes
    -----
    With :math:`\hat p = x/n` and :math:`z = \Phi^{-1}(1-\alpha/2)`:

    Wilson score interval

    .. math::

        \frac{x + z^2/2}{n + z^2} \pm \frac{z\sqrt{n}}{n + z^2}
        \sqrt{\hat p(1-\hat p) + \frac{z^2}{4n}}

    Clopper-Pearson, with :math:`B(q; a, b)` the beta quantile function

    .. math::

        \left[B(\alpha/2;\, x,\, n-x+1),\; B(1-\alpha/2;\, x+1,\, n-x)\right],

    lower limit 0 when :math:`x = 0` and upper limit 1 when :math:`x = n`.

    Agresti-Coull, with :math:`\tilde n = n + z^2` and
    :math:`\tilde p = (x + z^2/2)/\tilde n`

    .. math::

        \tilde p \pm z\sqrt{\tilde p(1-\tilde p)/\tilde n}

    Jeffreys: :math:`[B(\alpha/2;\, x+\tfrac12,\, n-x+\tfrac12),\,
    B(1-\alpha/2;\, x+\tfrac12,\, n-x+\tfrac12)]`, lower limit 0 at
    :math:`x=0` and upper limit 1 at :math:`x=n`.

    Wald: :math:`\hat p \pm z\sqrt{\hat p(1-\hat p)/n}`.

    Agresti-Coull and Wald limits are truncated to [0, 1]. R's ``binom``
    package (``binom.confint``) does not truncate, so it can report e.g. a
    negative Agresti-Coull lower limit at :math:`x = 1`; the two agree
    wherever the untruncated limit lies inside [0, 1].

    Examples
    --------
    >>> from studyval.analysis.proportions import proportion_ci
    >>> r = proportion_ci(81, 263, method="wilson")
    >>> round(r.ci_low, 4), round(r.ci_high, 4)
    (0.2553, 0.3662)
    >>> est, lo, hi = proportion_ci(0, 20, method="clopper-pearson")
    >>> lo
    0.0

    """
    alpha = check_alpha(alpha)
    method = check_option(method, CI_METHODS, "method")
    x = _as_count(successes, "successes")
    m = _as_count(n, "n")
    xa, na = np.array([x]), np.array([m])
    _check_counts(xa, na)
    p, low, high = _intervals(xa, na, alpha, method)
    return ProportionResult(
        estimate=float(p[0]),
        ci_low=float(low[0]),
        ci_high=float(high[0]),
        ci_level=1.0 - alpha,
        numerator=x,
        denominator=m,
        method=method,
    )


def proportion_ci_array(
    successes: Any, n: Any, *, alpha: float = 0.05, method: str = "wilson"
) -> pd.DataFrame:
    """Vectorised :func:`proportion_ci` for many proportions at once.

    Parameters
    ----------
    successes : array-like of int, shape (k,)
        Successes per proportion.
    n : array-like of int, shape (k,) or scalar
        Trials per proportion; a scalar applies to every proportion.
    alpha : float, default 0.05
        Two-sided error rate.
    method : str, default "wilson"
        One of :data:`CI_METHODS`; see :func:`proportion_ci`.

    Returns
    -------
    pandas.DataFrame
        One row per proportion, columns ``estimate, ci_low, ci_high, ci_level,
        numerator, denominator, method`` (the fields of
        :class:`ProportionResult`).

    Raises
    ------
    EstimationError
        Some ``n`` is zero (its position is named).
    StudyvalError
        Mismatched lengths, counts that are not whole numbers, or
        ``successes`` outside ``[0, n]`` (position named).

    """
    alpha = check_alpha(alpha)
    method = check_option(method, CI_METHODS, "method")
    x = _as_count_array(successes, "successes")
    m = _as_count_array(n, "n")
    if m.size == 1 and x.size != 1:
        m = np.full(x.shape, m[0])
    if m.shape != x.shape:
        raise StudyvalError(
            f"successes has {x.size} values but n has {m.size}; give one n per proportion"
        )
    if x.size == 0:
        raise StudyvalError("successes is empty")
    _check_counts(x, m)
    p, low, high = _intervals(x, m, alpha, method)
    return pd.DataFrame(
        {
            "estimate": p,
            "ci_low": low,
            "ci_high": high,
            "ci_level": 1.0 - alpha,
            "numerator": x,
            "denominator": m,
            "method": method,
        }
    )
