r"""Minimum sample size to develop a multinomial (polytomous) prediction model.

:func:`pate_multinomial` implements the three criteria of Pate, Riley,
Collins et al. (2023) for a multinomial logistic regression with :math:`K`
outcome categories, :math:`p` candidate predictor parameters per submodel and
anticipated category proportions :math:`p_1, \dots, p_K`:

(i) **Shrinkage of every pairwise submodel.** For each pair :math:`(k, r)`,
:math:`k < r`, the distinct "one-to-one" logistic regression of category
:math:`r` against :math:`k` is fitted on the :math:`p_{k,r} = p_k + p_r`
share of the data with outcome proportion
:math:`\phi_{k,r} = p_r / (p_k + p_r)`. With its anticipated Cox-Snell
:math:`R^2_{k,r}` and target shrinkage :math:`S` (0.9), Riley et al.'s
criterion gives the participants of that submodel

.. math::

    m_{k,r} = \left\lceil \frac{p}{(S - 1)\ln(1 - R^2_{k,r}/S)} \right\rceil ,

and the study needs :math:`n_{k,r} = m_{k,r} / p_{k,r}` participants so that
the pair's share holds :math:`m_{k,r}`:
:math:`N_1 = \lceil \max_{k<r} n_{k,r} \rceil`. :math:`R^2_{k,r}` is given
directly, as a Nagelkerke :math:`R^2_{N,k,r}` times
:math:`\max R^2_{CS}(\phi_{k,r})`, or from an anticipated pairwise C-statistic
(:func:`r2_cs_from_cstatistic`).

(ii) **Optimism of the overall Nagelkerke** :math:`R^2` at most
:math:`\delta = 0.05`: with :math:`\max R^2_{CS} = 1 - (\prod_k p_k^{p_k})^2`,
the overall anticipated :math:`R^2_{CS}` of the multinomial model and
:math:`S_2 = R^2_{CS} / (R^2_{CS} + \delta\max R^2_{CS})`,

.. math::

    N_2 = \left\lceil \frac{(K-1)\,p}{(S_2 - 1)\ln(1 - R^2_{CS}/S_2)} \right\rceil .

(iii) **Precise overall risk of every category**: each :math:`p_k` within
:math:`\pm 0.05` with simultaneous 95% confidence (Bonferroni over the
:math:`K` categories),

.. math::

    N_3 = \left\lceil \max_k \chi^2_{1,\,1-0.05/K}\, p_k(1-p_k) / 0.05^2 \right\rceil ;

with :math:`K = 2` the two risks are one (:math:`p_2 = 1 - p_1`) and the
critical value is pmsampsize's :math:`1.96^2`.

The minimum sample size is :math:`N = \max(N_1, N_2, N_3)`; the expected
events of category :math:`k` are :math:`N p_k` and the expected shrinkage of
pair :math:`(k, r)` at :math:`N` is
:math:`1 + p / \{N p_{k,r} \ln(1 - R^2_{k,r}/S)\}`.

**Binary special case.** With :math:`K = 2` (one pair,
:math:`p_{1,2} = 1`) and the overall :math:`R^2_{CS}` equal to the pair's,
the three criteria are exactly those of ``pmsampsize(type = "b")`` (version
1.1.3; Riley et al. 2019, 2020).

**Reproduces** the authors' R code (``multsampsize::pmsampsize_mult_general``,
github.com/alexpate30/multsampsize, and the worked example of the paper:
``cstatistic = c(0.85, 0.92, 0.99, 0.95, 0.75, 0.95, 0.87, 0.87, 0.71,
0.82)``, ``mult_n_events = c(2557, 186, 176, 467, 120)``, ``parameters = 17``,
``mult_nagrsquared_overall = 0.15``: criteria 13136, 1477, 524), with two
documented differences:

* ``multsampsize`` hard-codes the Bonferroni divisor of criterion (iii) as 5
  (``qchisq(1 - 0.05/5, 1)``), the number of categories of its worked
  example; here it is :math:`K` (the paper's criterion). They agree for
  :math:`K = 5`.
* A C-statistic is converted to :math:`R^2_{CS}` by the large-sample limit of
  Riley, Van Calster & Collins' simulation (:func:`r2_cs_from_cstatistic`,
  deterministic quadrature) instead of one simulated data set of a million
  (``pmsampsize:::cstat2rsq``, seed 123456), whose Monte Carlo error is about
  :math:`10^{-3}` in :math:`R^2_{CS}`; pass the simulated values as
  ``r2_cs`` to reproduce ``multsampsize`` to the digit.

The criteria are for multinomial **logistic regression**; for a flexible
learner (boosted trees, SVM) they are a lower bound, not a guarantee (Riley
et al. 2024).

References
----------
Pate A, Riley RD, Collins GS, van Smeden M, Van Calster B, Ensor J, Martin GP
(2023). Minimum sample size for developing a multivariable prediction model
using multinomial logistic regression. Stat Methods Med Res 32(3):555-571.
doi:10.1177/09622802231151220

Riley RD, Snell KIE, Ensor J, Burke DL, Harrell FE Jr, Moons KGM, Collins GS
(2019). Minimum sample size for developing a multivariable prediction model:
PART II - binary and time-to-event outcomes. Stat Med 38:1276-1296.
doi:10.1002/sim.7992

Riley RD, Van Calster B, Collins GS (2021). A note on estimating the Cox-Snell
R2 from a reported C statistic (AUROC) to inform sample size calculations for
developing a prediction model with a binary outcome. Stat Med 40:859-864.
doi:10.1002/sim.8806

Riley RD, Ensor J, Snell KIE, et al. (2020). Calculating the sample size
required for developing a clinical prediction model. BMJ 368:m441.
doi:10.1136/bmj.m441
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import integrate, special, stats

from studyval.errors import StudyvalError
from studyval.results import Result

from ._sample_size_common import ceil_size as _ceil
from ._sample_size_common import open_unit as _open_unit
from ._sample_size_common import real as _real
from ._sample_size_common import whole_number as _whole_number
from .sample_size_survival import _n_for_shrinkage

__all__ = [
    "MultinomialSampleSizeResult",
    "max_r2_cs",
    "pate_multinomial",
    "r2_cs_from_cstatistic",
]

#: Acceptable optimism of Nagelkerke's R2 (criterion ii) and margin of error of each
#: category's overall risk (criterion iii), as in Pate et al. (2023) and pmsampsize.
_DELTA = 0.05
_MARGIN = 0.05
_ALPHA = 0.05
#: pmsampsize's rounded normal quantile for the binary criterion (iii).
_PMS_Z = 1.96

_PAIR_COLUMNS = [
    "criterion",
    "pair",
    "class_k",
    "class_r",
    "share",
    "phi",
    "cstatistic",
    "r2_cs",
    "max_r2_cs",
    "r2_nagelkerke",
    "n_submodel",
    "n_unrounded",
    "required",
    "expected_shrinkage",
]


def max_r2_cs(proportions: Sequence[float]) -> float:
    r"""Largest Cox-Snell :math:`R^2` a model of an outcome with these proportions can reach.

    .. math:: \max R^2_{CS} = 1 - \Big(\prod_k p_k^{p_k}\Big)^2
              = 1 - \exp\Big(2\sum_k p_k \ln p_k\Big)

    (Riley et al. 2019, eq. 23, per participant; Pate et al. 2023 for
    :math:`K > 2`).

    Parameters
    ----------
    proportions : sequence of float
        Category proportions, each in (0, 1), summing to 1.

    Returns
    -------
    float

    """
    p = np.asarray(proportions, dtype=np.float64)
    return float(1.0 - math.exp(2.0 * float(np.sum(p * np.log(p)))))


def r2_cs_from_cstatistic(cstatistic: float, prevalence: float) -> float:
    r"""Cox-Snell :math:`R^2` implied by a C-statistic and an outcome proportion.

    Riley, Van Calster & Collins (2021) simulate a large data set whose linear
    predictor is :math:`N(0, 1)` in non-events and :math:`N(\mu, 1)` in
    events, :math:`\mu = \sqrt2\,\Phi^{-1}(C)` (so the C-statistic is
    :math:`C`), fit a logistic regression of the outcome on it and read off
    :math:`R^2_{CS} = 1 - \exp(-LR/n)`. Under this binormal model the
    log-likelihood ratio is linear in the predictor, so the logistic model is
    the true one,
    :math:`\operatorname{logit} P(Y{=}1 \mid x) = \ln\{\phi/(1-\phi)\} + \mu x - \mu^2/2`,
    and the simulation's limit is

    .. math::

        R^2_{CS} = 1 - \exp\big[-2\{\phi\,E_{x\sim N(\mu,1)}\ln\pi(x)
                   + (1-\phi)\,E_{x\sim N(0,1)}\ln(1-\pi(x))
                   - \phi\ln\phi - (1-\phi)\ln(1-\phi)\}\big],

    computed here by adaptive quadrature (``scipy.integrate.quad``, absolute
    tolerance :math:`10^{-13}`): no simulation, no seed.

    Parameters
    ----------
    cstatistic : float
        Anticipated C-statistic (AUC) in (0.5, 1).
    prevalence : float
        Outcome proportion :math:`\phi` in (0, 1).

    Returns
    -------
    float

    Notes
    -----
    ``pmsampsize:::cstat2rsq`` (version 1.1.3) simulates one data set of
    :math:`10^6` (``set.seed(123456)``); its value differs from this limit by
    its Monte Carlo error (about :math:`10^{-3}`).

    """
    c = _real(cstatistic, "cstatistic")
    if not 0.5 < c < 1.0:
        raise StudyvalError(f"cstatistic must be in (0.5, 1), got {c}")
    phi = _open_unit(prevalence, "prevalence")
    mu = math.sqrt(2.0) * float(stats.norm.ppf(c))
    a = math.log(phi / (1.0 - phi)) - mu * mu / 2.0

    def events(x: float) -> float:  # phi * E[log pi(x)], x ~ N(mu, 1)
        return float(stats.norm.pdf(x - mu) * -np.logaddexp(0.0, -(a + mu * x)))

    def non_events(x: float) -> float:  # (1 - phi) * E[log(1 - pi(x))], x ~ N(0, 1)
        return float(stats.norm.pdf(x) * -np.logaddexp(0.0, a + mu * x))

    opts = dict(epsabs=1e-13, epsrel=1e-12, limit=200)
    e1 = integrate.quad(events, -np.inf, np.inf, **opts)[0]
    e0 = integrate.quad(non_events, -np.inf, np.inf, **opts)[0]
    ll_null = phi * math.log(phi) + (1.0 - phi) * math.log(1.0 - phi)
    return float(-special.expm1(-2.0 * (phi * e1 + (1.0 - phi) * e0 - ll_null)))


@dataclasses.dataclass(frozen=True)
class MultinomialSampleSizeResult(Result):
    r"""Minimum sample size to develop a multinomial prediction model (Pate et al. 2023).

    Criteria (i)-(iii) and their formulas: see :mod:`studyval.analysis.sample_size_multinomial`.
    :meth:`to_frame` is the criteria table (one row per pair for criterion i,
    then ii, iii and the final size); :meth:`summary_frame` the one-row table
    of the scalar fields.

    Attributes
    ----------
    n : float
        Unrounded value of the governing criterion (pass it to ``check_registered``).
    required : int
        Minimum number of participants, :math:`\max(N_1, N_2, N_3)`.
    governing : str
        ``"i"``, ``"ii"`` or ``"iii"`` (the first of the largest).
    binding_pair : str
        The pair ``"k vs r"`` that sets criterion (i).
    n_criterion_1, n_criterion_2, n_criterion_3 : float
        Unrounded requirements.
    required_criterion_1, required_criterion_2, required_criterion_3 : int
        Rounded up.
    classes : tuple of str
        Category labels in order.
    proportions : tuple of float
        :math:`p_k`.
    pairs : tuple of (str, str)
        The :math:`K(K-1)/2` pairs :math:`(k, r)`, :math:`k < r`, in ``combn`` order.
    pair_share, pair_phi, pair_cstatistic, pair_r2_cs, pair_max_r2_cs, pair_r2_nagelkerke : tuple of float
        Per pair: :math:`p_{k,r}`, :math:`\phi_{k,r}`, C-statistic (nan if not
        given), :math:`R^2_{CS}`, its maximum and the Nagelkerke value.
    pair_n_submodel : tuple of int
        :math:`m_{k,r}`.
    pair_n : tuple of float
        :math:`n_{k,r} = m_{k,r}/p_{k,r}`.
    pair_expected_shrinkage : tuple of float
        Expected shrinkage of each submodel at ``required``.
    parameters : int
        :math:`p`, candidate predictor parameters per submodel.
    shrinkage : float
        Target :math:`S`.
    r2_source : str
        How the pairwise :math:`R^2_{CS}` were obtained.
    r2_cs_overall, max_r2_cs_overall, r2_nagelkerke_overall : float
        Criterion (ii)'s overall :math:`R^2_{CS}`, its maximum and Nagelkerke value.
    shrinkage_criterion_2 : float
        :math:`S_2`.
    critical_value_3 : float
        Criterion (iii)'s :math:`\chi^2` critical value.
    expected_events : tuple of float
        :math:`N p_k`.
    method : str
        Description.

    """

    n: float
    required: int
    governing: str
    binding_pair: str
    n_criterion_1: float
    required_criterion_1: int
    n_criterion_2: float
    required_criterion_2: int
    n_criterion_3: float
    required_criterion_3: int
    classes: tuple[str, ...]
    proportions: tuple[float, ...]
    pairs: tuple[tuple[str, str], ...]
    pair_share: tuple[float, ...]
    pair_phi: tuple[float, ...]
    pair_cstatistic: tuple[float, ...]
    pair_r2_cs: tuple[float, ...]
    pair_max_r2_cs: tuple[float, ...]
    pair_r2_nagelkerke: tuple[float, ...]
    pair_n_submodel: tuple[int, ...]
    pair_n: tuple[float, ...]
    pair_expected_shrinkage: tuple[float, ...]
    parameters: int
    shrinkage: float
    r2_source: str
    r2_cs_overall: float
    max_r2_cs_overall: float
    r2_nagelkerke_overall: float
    shrinkage_criterion_2: float
    critical_value_3: float
    expected_events: tuple[float, ...]
    method: str = "Pate et al. (2023) criteria for a multinomial logistic regression model"

    def to_frame(self) -> pd.DataFrame:
        r"""The criteria table.

        Returns
        -------
        pandas.DataFrame
            Columns ``criterion, pair, class_k, class_r, share, phi, cstatistic,
            r2_cs, max_r2_cs, r2_nagelkerke, n_submodel, n_unrounded, required,
            expected_shrinkage``. One row per pair with ``criterion == "i"``
            (``required`` is that pair's :math:`\lceil n_{k,r}\rceil`), then
            ``"ii"`` (the overall :math:`R^2`), ``"iii"`` and ``"final"``;
            fields that do not apply are NaN (``n_submodel`` -1, labels empty).

        """
        rows: list[dict[str, Any]] = []
        for j, (k, r) in enumerate(self.pairs):
            rows.append(
                {
                    "criterion": "i",
                    "pair": f"{k} vs {r}",
                    "class_k": k,
                    "class_r": r,
                    "share": self.pair_share[j],
                    "phi": self.pair_phi[j],
                    "cstatistic": self.pair_cstatistic[j],
                    "r2_cs": self.pair_r2_cs[j],
                    "max_r2_cs": self.pair_max_r2_cs[j],
                    "r2_nagelkerke": self.pair_r2_nagelkerke[j],
                    "n_submodel": self.pair_n_submodel[j],
                    "n_unrounded": self.pair_n[j],
                    "required": _ceil(self.pair_n[j]),
                    "expected_shrinkage": self.pair_expected_shrinkage[j],
                }
            )
        blank = dict(pair="", class_k="", class_r="", share=math.nan, phi=math.nan)
        blank |= dict(cstatistic=math.nan, n_submodel=-1)
        rows.append(
            blank
            | {
                "criterion": "ii",
                "r2_cs": self.r2_cs_overall,
                "max_r2_cs": self.max_r2_cs_overall,
                "r2_nagelkerke": self.r2_nagelkerke_overall,
                "n_unrounded": self.n_criterion_2,
                "required": self.required_criterion_2,
                "expected_shrinkage": self.shrinkage_criterion_2,
            }
        )
        nan3 = dict(r2_cs=math.nan, max_r2_cs=math.nan, r2_nagelkerke=math.nan)
        rows.append(
            blank
            | nan3
            | {
                "criterion": "iii",
                "n_unrounded": self.n_criterion_3,
                "required": self.required_criterion_3,
                "expected_shrinkage": math.nan,
            }
        )
        rows.append(
            blank
            | nan3
            | {
                "criterion": "final",
                "pair": self.binding_pair if self.governing == "i" else "",
                "n_unrounded": self.n,
                "required": self.required,
                "expected_shrinkage": min(self.pair_expected_shrinkage),
            }
        )
        return pd.DataFrame(rows, columns=_PAIR_COLUMNS)

    def summary_frame(self) -> pd.DataFrame:
        """One-row tidy table of the scalar fields."""
        return Result.to_frame(self)


def _vector(values: Any, n: int, name: str, low: float, high: float) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise StudyvalError(f"{name} must be a sequence of {n} numbers, got {values!r}")
    if len(values) != n:
        raise StudyvalError(
            f"{name} must give {n} values (one per pair, combn order), got {len(values)}"
        )
    out = []
    for j, v in enumerate(values):
        x = _real(v, f"{name}[{j}]")
        if not low < x < high:
            raise StudyvalError(f"{name}[{j}] must be in ({low:g}, {high:g}), got {x}")
        out.append(x)
    return tuple(out)


def pate_multinomial(
    *,
    proportions: Sequence[float],
    parameters: int,
    cstatistic: Sequence[float] | None = None,
    r2_cs: Sequence[float] | None = None,
    r2_nagelkerke: Sequence[float] | None = None,
    r2_cs_overall: float | None = None,
    r2_nagelkerke_overall: float | None = None,
    shrinkage: float = 0.9,
    classes: Sequence[str] | None = None,
) -> MultinomialSampleSizeResult:
    r"""Minimum sample size to develop a multinomial logistic prediction model.

    Parameters
    ----------
    proportions : sequence of float
        Anticipated proportion of each of the :math:`K \ge 2` categories, in
        order; each in (0, 1), summing to 1 (to :math:`10^{-9}`). Expected
        counts may be passed after dividing by their total.
    parameters : int
        Candidate predictor parameters :math:`p` of each submodel (a spline or
        a categorical predictor counts several), :math:`\ge 1`.
    cstatistic, r2_cs, r2_nagelkerke : sequence of float
        Exactly one: the anticipated pairwise C-statistics, Cox-Snell or
        Nagelkerke :math:`R^2` of the :math:`K(K-1)/2` pairwise submodels in
        ``itertools.combinations`` (R ``combn``) order: (1,2), (1,3), ...,
        (1,K), (2,3), ... Optimism-adjusted values (from an external
        validation, or shrunk apparent ones).
    r2_cs_overall, r2_nagelkerke_overall : float
        Exactly one: the anticipated overall :math:`R^2` of the multinomial
        model for criterion (ii) (Pate et al. suggest a conservative
        Nagelkerke 0.15 when nothing is known).
    shrinkage : float, default 0.9
        Target expected shrinkage :math:`S` of criterion (i), in (0, 1).
    classes : sequence of str, optional
        Category labels (default ``"1"``, ``"2"``, ...).

    Returns
    -------
    MultinomialSampleSizeResult

    Raises
    ------
    StudyvalError
        Missing, invalid or contradictory inputs; an :math:`R^2_{CS}` not below
        :math:`S` or above its maximum.

    Examples
    --------
    The second example of the authors' package (``multsampsize`` README:
    criteria (i) 2660 and (ii) 714):

    >>> r = pate_multinomial(proportions=[1/6, 2/6, 3/6], parameters=17,
    ...                      r2_nagelkerke=[0.15, 0.15, 0.15], r2_nagelkerke_overall=0.15)
    >>> r.required_criterion_1, r.required_criterion_2, r.required
    (2660, 714, 2660)

    """
    p_par = _whole_number(parameters, "parameters")
    s = _open_unit(shrinkage, "shrinkage")
    if isinstance(proportions, (str, bytes)) or not isinstance(proportions, Sequence):
        raise StudyvalError(f"proportions must be a sequence of numbers, got {proportions!r}")
    k_cat = len(proportions)
    if k_cat < 2:
        raise StudyvalError(f"proportions must give at least 2 categories, got {k_cat}")
    pk = tuple(_open_unit(v, f"proportions[{j}]") for j, v in enumerate(proportions))
    if abs(sum(pk) - 1.0) > 1e-9:
        raise StudyvalError(f"proportions must sum to 1, got {sum(pk):.12g}")
    labels = (
        tuple(str(c) for c in classes)
        if classes is not None
        else tuple(str(j + 1) for j in range(k_cat))
    )
    if len(labels) != k_cat or len(set(labels)) != k_cat:
        raise StudyvalError(f"classes must give {k_cat} distinct labels, got {labels!r}")
    index_pairs = list(itertools.combinations(range(k_cat), 2))
    n_pairs = len(index_pairs)
    given = [v is not None for v in (cstatistic, r2_cs, r2_nagelkerke)]
    if sum(given) != 1:
        raise StudyvalError("give exactly one of cstatistic, r2_cs and r2_nagelkerke (pairwise)")
    if (r2_cs_overall is None) == (r2_nagelkerke_overall is None):
        raise StudyvalError("give exactly one of r2_cs_overall and r2_nagelkerke_overall")

    share = tuple(pk[a] + pk[b] for a, b in index_pairs)
    phi = tuple(pk[b] / (pk[a] + pk[b]) for a, b in index_pairs)
    max_pair = tuple(max_r2_cs([f, 1.0 - f]) for f in phi)
    cstat = (math.nan,) * n_pairs
    if cstatistic is not None:
        cstat = _vector(cstatistic, n_pairs, "cstatistic", 0.5, 1.0)
        r2 = tuple(r2_cs_from_cstatistic(c, f) for c, f in zip(cstat, phi, strict=True))
        source = "from pairwise C-statistics (binormal limit of Riley, Van Calster & Collins 2021)"
    elif r2_cs is not None:
        r2 = _vector(r2_cs, n_pairs, "r2_cs", 0.0, 1.0)
        source = "pairwise Cox-Snell R2 given"
    else:
        nag = _vector(r2_nagelkerke, n_pairs, "r2_nagelkerke", 0.0, 1.0)
        r2 = tuple(v * m for v, m in zip(nag, max_pair, strict=True))
        source = "pairwise Nagelkerke R2 x max R2_CS"
    for j, (a, b) in enumerate(index_pairs):
        pair = f"{labels[a]} vs {labels[b]}"
        if r2[j] > max_pair[j]:
            raise StudyvalError(
                f"pair {pair}: R2_CS={r2[j]:.4g} exceeds its maximum {max_pair[j]:.4g} for an "
                f"outcome proportion of {phi[j]:.4g} (Riley et al. 2019, eq. 23)"
            )
        if r2[j] >= s:
            raise StudyvalError(
                f"pair {pair}: R2_CS={r2[j]:.4g} must be below the target shrinkage {s:g}"
            )

    # criterion (i): pmsampsize_bin's criterion 1 per pair (rounded up), over the pair's share
    m_sub = tuple(_ceil(_n_for_shrinkage(p_par, r, s)) for r in r2)
    n_pair = tuple(m / sh for m, sh in zip(m_sub, share, strict=True))
    j_bind = max(range(n_pairs), key=lambda j: (_ceil(n_pair[j]), -j))
    n1 = n_pair[j_bind]

    # criterion (ii): overall Nagelkerke optimism
    max_all = max_r2_cs(pk)
    if r2_cs_overall is not None:
        r2_all = _open_unit(r2_cs_overall, "r2_cs_overall")
    else:
        r2_all = _open_unit(r2_nagelkerke_overall, "r2_nagelkerke_overall") * max_all
    if r2_all > max_all:
        raise StudyvalError(
            f"r2_cs_overall={r2_all:.4g} exceeds its maximum {max_all:.4g} for these proportions"
        )
    s2 = r2_all / (r2_all + _DELTA * max_all)
    n2 = _n_for_shrinkage((k_cat - 1) * p_par, r2_all, s2)

    # criterion (iii): every category's overall risk within +/- 0.05
    crit = _PMS_Z**2 if k_cat == 2 else float(stats.chi2.ppf(1.0 - _ALPHA / k_cat, 1))
    n3 = max(crit * q * (1.0 - q) for q in pk) / _MARGIN**2

    reqs = {"i": (_ceil(n1), n1), "ii": (_ceil(n2), n2), "iii": (_ceil(n3), n3)}
    governing = max(reqs, key=lambda key: (reqs[key][0], -["i", "ii", "iii"].index(key)))
    required, n_gov = reqs[governing]
    log_terms = tuple(math.log(1.0 - r / s) for r in r2)
    expected = tuple(
        1.0 + p_par / (required * sh * lt) for sh, lt in zip(share, log_terms, strict=True)
    )
    a, b = index_pairs[j_bind]
    return MultinomialSampleSizeResult(
        n=n_gov,
        required=required,
        governing=governing,
        binding_pair=f"{labels[a]} vs {labels[b]}",
        n_criterion_1=n1,
        required_criterion_1=reqs["i"][0],
        n_criterion_2=n2,
        required_criterion_2=reqs["ii"][0],
        n_criterion_3=n3,
        required_criterion_3=reqs["iii"][0],
        classes=labels,
        proportions=pk,
        pairs=tuple((labels[a], labels[b]) for a, b in index_pairs),
        pair_share=share,
        pair_phi=phi,
        pair_cstatistic=cstat,
        pair_r2_cs=r2,
        pair_max_r2_cs=max_pair,
        pair_r2_nagelkerke=tuple(r / m for r, m in zip(r2, max_pair, strict=True)),
        pair_n_submodel=m_sub,
        pair_n=n_pair,
        pair_expected_shrinkage=expected,
        parameters=p_par,
        shrinkage=s,
        r2_source=source,
        r2_cs_overall=r2_all,
        max_r2_cs_overall=max_all,
        r2_nagelkerke_overall=r2_all / max_all,
        shrinkage_criterion_2=s2,
        critical_value_3=crit,
        expected_events=tuple(required * q for q in pk),
    )
