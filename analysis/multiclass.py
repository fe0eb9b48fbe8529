r"""Multi-class discrimination and confusion: one-vs-rest AUCs, Hand & Till's M, k x k tables.

Written for ordinal staging such as osteoporosis staging by DXA T-score
(normal / osteopenia / osteoporosis) in the ``msk-aging`` protocol, but
nothing here assumes three classes or a particular label type.

Conventions, as everywhere in :mod:`studyval.analysis`:

* ``classes`` is always explicit and ordered. A label in ``y_true`` (or
  ``y_pred``) outside ``classes`` is an error naming how many there are and
  the first position; a missing label is an error. The order of ``classes``
  is the column order of a probability matrix, the row/column order of every
  table and, for ordinal outcomes, the ordering of the categories.
* Scores: column :math:`c` of ``prob`` is the score for class :math:`c`; a
  **higher score means more likely class c**. Scores need not be
  probabilities (they need not sum to one); they must be finite.

One-vs-rest AUCs and their averages
-----------------------------------
For class :math:`c` with :math:`m_c` cases ("positives") and :math:`n_c = N -
m_c` others ("negatives"), :math:`\hat\theta_c` is the empirical AUC of score
:math:`c` for "class c vs the rest" with its DeLong interval (exactly
:func:`studyval.analysis.discrimination.auc` on that split). Three summaries:

.. math::

    \hat\theta_{\text{macro}} = \frac1k\sum_c \hat\theta_c, \qquad
    \hat\theta_{\text{weighted}} = \sum_c \frac{m_c}{N}\hat\theta_c, \qquad
    \hat M = \frac{1}{k(k-1)}\sum_{i \ne j} \hat A(i \mid j),

where :math:`\hat A(i \mid j)` is the AUC of score :math:`i` for class
:math:`i` (positives) against class :math:`j` (negatives), cases of other
classes left out, and :math:`M` is the multi-class AUC of Hand & Till (2001).

**Variances of the averages.** The :math:`k` one-vs-rest AUCs are computed on
the same cases but with *different* positive sets, so DeLong's covariance
(which assumes one positive and one negative sample shared by all AUCs) does
not apply. We use each case's contribution to each AUC instead. For a
two-sample AUC with positives :math:`P` (:math:`m` cases), negatives
:math:`Q` (:math:`n` cases) and DeLong placements :math:`V_{10}, V_{01}`
(see :class:`studyval.analysis.discrimination.AUCResult`), define for every
case :math:`\ell` of the study

.. math::

    \psi(\ell) = \begin{cases}
        \dfrac{V_{10}(\ell) - \hat\theta}{\sqrt{m(m-1)}} & \ell \in P \\[1ex]
        \dfrac{V_{01}(\ell) - \hat\theta}{\sqrt{n(n-1)}} & \ell \in Q \\[1ex]
        0 & \text{otherwise.}
    \end{cases}

Then :math:`\sum_\ell \psi(\ell)^2` is exactly DeLong's variance
:math:`S_{10}/m + S_{01}/n`, and for two AUCs with the same positive and
negative sets :math:`\sum_\ell \psi_a(\ell)\psi_b(\ell)` is exactly DeLong's
covariance. For AUCs with different positive sets the same sum is the
empirical covariance of their influence functions under sampling of cases
(independent cases, class membership random, as in a cohort):
:math:`\hat\theta - \theta \approx \sum_\ell \psi(\ell)` is the linear
(Hájek) part of the two-sample U-statistic, whose influence function is
:math:`D(V_{10} - \theta)/\pi + (1 - D)(V_{01} - \theta)/(1 - \pi)` with
:math:`D` the indicator of the positive class and :math:`\pi` its
prevalence (DeLong, DeLong & Clarke-Pearson 1988, doi:10.2307/2531595;
Hájek projection as in Lee 1990, *U-Statistics*, ch. 3). A linear
combination :math:`\sum_r w_r \hat\theta_r` therefore has variance

.. math::

    \widehat{\mathrm{Var}} = \sum_{\ell=1}^N \Big(\sum_r w_r \psi_r(\ell)\Big)^2 .

For the prevalence-weighted average the weights :math:`\hat\pi_c = m_c/N`
are estimated too; their contribution adds
:math:`(\hat\theta_{y_\ell} - \hat\theta_{\text{weighted}})/\sqrt{N(N-1)}` to
case :math:`\ell`'s term (the multinomial delta method). For :math:`\hat M`
the sum runs over the :math:`k(k-1)` pairwise AUCs :math:`\hat A(i\mid j)`
with :math:`w = 1/(k(k-1))`. Intervals are Wald intervals truncated to
[0, 1], as for a single AUC. The estimator agrees with the delete-one
jackknife and with the row bootstrap (:func:`studyval.analysis.resampling.bootstrap`),
which the tests check; summing the one-vs-rest variances as if the AUCs were
independent understates it (the AUCs are positively correlated).

Several cases per patient
-------------------------
With ``clusters=`` (patient ids) and ``seed=``, :func:`one_vs_rest_auc` gives
each one-vs-rest AUC the clustered DeLong interval (Obuchowski 1997,
:func:`studyval.analysis.clustered.auc_clustered`) and the three averages a
patient-level (cluster) bootstrap interval, and :func:`multiclass_confusion`
gives every measure a patient-level bootstrap interval
(:mod:`studyval.analysis.resampling`; ``ci_method="percentile"`` or
``"bca"``). The tables name the method (``"patient-level percentile bootstrap
(2000 resamples)"``). Without ``clusters`` nothing changes.

References
----------
Hand DJ, Till RJ (2001). A simple generalisation of the area under the ROC
curve for multiple class classification problems. Machine Learning
45:171-186. doi:10.1023/A:1010920819831

DeLong ER, DeLong DM, Clarke-Pearson DL (1988). Comparing the areas under two
or more correlated receiver operating characteristic curves: a nonparametric
approach. Biometrics 44:837-845. doi:10.2307/2531595

Robin X, Turck N, Hainard A, et al. (2011). pROC: an open-source package for R
and S+ to analyze and compare ROC curves. BMC Bioinformatics 12:77.
doi:10.1186/1471-2105-12-77 (``multiclass.roc``)

Wilson EB (1927). Probable inference, the law of succession, and statistical
inference. J Am Stat Assoc 22:209-212. doi:10.1080/01621459.1927.10502953
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from studyval.analysis._checks import z_critical as _z_crit
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_option, check_scores
from .accuracy import Measure, _bootstrap_spec, _run_bootstrap
from .discrimination import AUCResult, _placements, auc
from .proportions import CI_METHODS, proportion_ci

__all__ = [
    "TIE_RULES",
    "AveragedAUC",
    "MultiClassAUCResult",
    "MultiClassConfusion",
    "multiclass_confusion",
    "one_vs_rest_auc",
    "predict_argmax",
]

#: Accepted values of ``ties`` in :func:`predict_argmax`.
TIE_RULES: tuple[str, ...] = ("error", "first", "last")

_AUC_TABLE_COLUMNS = [
    "measure",
    "class",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "ci_level",
    "n",
    "n_positive",
    "n_negative",
    "method",
]

_CONFUSION_TABLE_COLUMNS = [
    "class",
    "measure",
    "estimate",
    "ci_low",
    "ci_high",
    "ci_level",
    "numerator",
    "denominator",
    "ci_method",
    "note",
]


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


# --------------------------------------------------------------------------- input checks


def _check_classes(classes: Any) -> tuple[Any, ...]:
    """Return ``classes`` as a tuple of at least two distinct, non-missing labels."""
    if classes is None or isinstance(classes, (str, bytes)) or not isinstance(classes, Iterable):
        raise StudyvalError(
            f"classes must be a sequence of class labels in their order, got {classes!r}"
        )
    out = tuple(c.item() if isinstance(c, np.generic) else c for c in classes)
    if len(out) < 2:
        raise StudyvalError(f"classes must hold at least 2 labels, got {len(out)}: {out!r}")
    for i, c in enumerate(out):
        if c is None or (isinstance(c, float) and math.isnan(c)):
            raise StudyvalError(f"classes has a missing label at position {i}")
    seen: dict[Any, int] = {}
    for i, c in enumerate(out):
        if c in seen:
            raise StudyvalError(
                f"classes must be distinct: {c!r} occurs at positions {seen[c]} and {i}"
            )
        seen[c] = i
    return out


def _encode(y: Any, classes: tuple[Any, ...], name: str) -> np.ndarray:
    """Position of each label of ``y`` in ``classes`` (intp array); errors name positions."""
    arr = np.asarray(y, dtype=object) if not isinstance(y, np.ndarray) else y
    if arr.ndim != 1:
        raise StudyvalError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise StudyvalError(f"{name} is empty")
    missing = np.asarray(pd.isna(arr), dtype=bool)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise StudyvalError(
            f"{name} has {int(missing.sum())} missing label(s); first at position {i}"
        )
    codes = pd.Index(list(classes), dtype=object).get_indexer(list(arr))
    bad = codes < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StudyvalError(
            f"{name} has {int(bad.sum())} label(s) not in classes "
            f"({', '.join(map(repr, classes))}); first at position {i}: {arr[i]!r}"
        )
    return codes.astype(np.intp)


def _check_prob(prob: Any, classes: tuple[Any, ...], n: int | None) -> np.ndarray:
    """Return the scores as a finite (N, k) float64 matrix, columns in the order of ``classes``.

    ``n`` is the number of cases in ``y_true``; ``None`` accepts any number.
    """
    k = len(classes)
    if isinstance(prob, pd.DataFrame):
        if not prob.columns.is_unique:
            raise StudyvalError("prob has duplicated column names")
        prob = {col: prob[col].to_numpy() for col in prob.columns}
    if isinstance(prob, Mapping):
        if n is None and len(prob):
            n = len(np.atleast_1d(np.asarray(next(iter(prob.values())))))
        wanted = set(classes)
        absent = [c for c in classes if c not in prob]
        extra = [key for key in prob if key not in wanted]
        if absent or extra:
            parts = []
            if absent:
                parts.append(f"no scores for class(es) {', '.join(map(repr, absent))}")
            if extra:
                parts.append(f"scores for unknown class(es) {', '.join(map(repr, extra))}")
            raise StudyvalError(
                "prob must map every class in classes, and nothing else, to its scores: "
                + "; ".join(parts)
            )
        cols = [check_scores(prob[c], n, name=f"prob[{c!r}]") for c in classes]
        return np.stack(cols, axis=1)
    arr = np.asarray(prob, dtype=np.float64)
    if arr.ndim != 2:
        raise StudyvalError(
            f"prob must be a 2-D array of shape (n_cases, n_classes) or a mapping of class to "
            f"scores, got shape {arr.shape}"
        )
    if arr.shape[1] != k:
        raise StudyvalError(
            f"prob has {arr.shape[1]} columns but classes has {k} labels; column j holds the "
            "scores of classes[j]"
        )
    if n is None:
        n = arr.shape[0]
    if arr.shape[0] != n:
        raise StudyvalError(f"prob has {arr.shape[0]} rows but y_true has {n}")
    if n == 0:
        raise StudyvalError("prob has no rows")
    cols = [check_scores(arr[:, j], n, name=f"prob[:, {j}] ({classes[j]!r})") for j in range(k)]
    return np.stack(cols, axis=1)


# --------------------------------------------------------------------------- influence terms


def _influence(pos: np.ndarray, neg: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray]:
    r"""AUC of ``score`` for ``pos`` vs ``neg`` and the per-case terms :math:`\psi(\ell)`.

    ``pos`` and ``neg`` are disjoint boolean masks over all N cases; cases in
    neither get :math:`\psi = 0`. See the module docstring for the formula;
    :math:`\sum_\ell \psi(\ell)^2` is DeLong's variance.
    """
    idx = np.flatnonzero(pos | neg)
    pl = _placements(pos[idx], score[idx][None, :])
    m, n = pl.n_positive, pl.n_negative
    a, b = pl.centered()  # 2mn (V10 - theta), 2mn (V01 - theta), exact integers
    psi = np.zeros(score.size)
    psi[idx[pl.positive_index]] = a[0] / (2.0 * m * n * math.sqrt(m * (m - 1.0)))
    psi[idx[pl.negative_index]] = b[0] / (2.0 * m * n * math.sqrt(n * (n - 1.0)))
    return float(pl.theta[0]), psi


# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True, eq=False)
class AveragedAUC(Result):
    r"""A summary of several AUCs (macro, prevalence-weighted, Hand & Till's M) with a CI.

    The standard error comes from the per-case influence terms described in
    :mod:`studyval.analysis.multiclass`; the interval is
    :math:`\hat\theta \pm z_{1-\alpha/2}\,\mathrm{se}` truncated to [0, 1].

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    measure : str
        ``"auc_macro"``, ``"auc_weighted"`` or ``"hand_till_m"``.
    estimate : float
        The average.
    se : float
        Standard error (influence-function / DeLong-type, see the module).
    ci_low, ci_high : float
        Wald limits truncated to [0, 1].
    ci_level : float
        ``1 - alpha``.
    method : str
        How the interval was computed.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    measure: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str


def _averaged(measure: str, estimate: float, phi: np.ndarray, alpha: float, method: str):
    se = math.sqrt(float(np.einsum("i,i->", phi, phi)))
    half = _z_crit(alpha) * se
    return AveragedAUC(
        measure=measure,
        estimate=estimate,
        se=se,
        ci_low=min(1.0, max(0.0, estimate - half)),
        ci_high=min(1.0, max(0.0, estimate + half)),
        ci_level=1.0 - alpha,
        method=method,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class MultiClassAUCResult(Result):
    r"""One-vs-rest AUCs of ``k`` classes, their averages and Hand & Till's M.

    See :func:`one_vs_rest_auc` for the definitions and the module docstring
    for the variances.

    Attributes
    ----------
    classes : tuple
        Class labels, in the order given.
    per_class : tuple of AUCResult
        One-vs-rest AUC of each class with its DeLong CI (class ``c`` positive,
        score column ``c``), in the order of ``classes``; identical to
        :func:`studyval.analysis.discrimination.auc` on that split.
    macro : AveragedAUC
        Unweighted mean of the one-vs-rest AUCs (scikit-learn's
        ``roc_auc_score(multi_class="ovr", average="macro")``).
    weighted : AveragedAUC
        Prevalence-weighted mean, weights :math:`m_c/N`
        (``roc_auc_score(multi_class="ovr", average="weighted")``).
    hand_till : AveragedAUC
        Hand & Till's :math:`M` (``pROC::multiclass.roc`` with a probability
        matrix; ``roc_auc_score(multi_class="ovo", average="macro")``).
    class_counts : tuple of int
        Number of cases of each class.
    n : int
        Number of cases.
    ci_level : float
        ``1 - alpha``.
    covariance : numpy.ndarray, shape (k, k)
        Covariance matrix of the one-vs-rest AUCs (diagonal: DeLong
        variances); read-only, not in :meth:`to_frame`.
    pairwise_auc : numpy.ndarray, shape (k, k)
        ``pairwise_auc[i, j]`` is :math:`\hat A(i \mid j)` for ``i != j``; the
        diagonal is undefined and holds NaN (use :meth:`pairwise_frame`).
    per_class_method : str
        How the one-vs-rest intervals were computed (the ``method`` of their
        rows in :meth:`to_frame`).
    bootstrap : BootstrapManyResult or None
        With clusters, the cluster bootstrap of the one-vs-rest AUCs
        (``auc_ovr:<j>``, ``j`` the position of the class) and of
        ``auc_macro``, ``auc_weighted`` and ``hand_till_m``; None otherwise.

    With clusters (:func:`one_vs_rest_auc`), ``per_class`` holds
    :class:`~studyval.analysis.clustered.ClusteredAUCResult` (clustered
    DeLong, Obuchowski 1997), the three averages have bootstrap SEs and
    limits, and ``covariance`` is the bootstrap covariance of the one-vs-rest
    AUCs (``numpy.cov`` of their replicates).

    """

    classes: tuple[Any, ...]
    per_class: tuple[AUCResult, ...] = dataclasses.field(repr=False)
    macro: AveragedAUC
    weighted: AveragedAUC
    hand_till: AveragedAUC
    class_counts: tuple[int, ...]
    n: int
    ci_level: float
    covariance: np.ndarray = dataclasses.field(repr=False)
    pairwise_auc: np.ndarray = dataclasses.field(repr=False)
    per_class_method: str = dataclasses.field(default="DeLong (class vs rest)", repr=False)
    bootstrap: Any = dataclasses.field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields, without ``bootstrap`` and ``per_class_method`` (as before the bootstrap option)."""
        out = super().to_dict()
        out.pop("bootstrap", None)  # None is scalar; a bootstrap result is not
        out.pop("per_class_method", None)  # the ``method`` column of :meth:`to_frame`
        return out

    def to_frame(self) -> pd.DataFrame:
        """Tidy table: one row per class (one-vs-rest), then macro, weighted and M.

        Columns ``measure`` (``auc_ovr``, ``auc_macro``, ``auc_weighted``,
        ``hand_till_m``), ``class`` (the class label; ``<NA>`` for the
        averages, which concern all classes), ``estimate, se, ci_low, ci_high,
        ci_level, n, n_positive, n_negative`` (nullable integers; the class
        counts are ``<NA>`` for the averages) and ``method``.
        """
        rows = []
        for c, r in zip(self.classes, self.per_class, strict=True):
            rows.append(
                {
                    "measure": "auc_ovr",
                    "class": c,
                    "estimate": r.estimate,
                    "se": r.se,
                    "ci_low": r.ci_low,
                    "ci_high": r.ci_high,
                    "ci_level": r.ci_level,
                    "n": self.n,
                    "n_positive": r.n_positive,
                    "n_negative": r.n_negative,
                    "method": self.per_class_method,
                }
            )
        for a in (self.macro, self.weighted, self.hand_till):
            rows.append(
                {
                    "measure": a.measure,
                    "class": pd.NA,
                    "estimate": a.estimate,
                    "se": a.se,
                    "ci_low": a.ci_low,
                    "ci_high": a.ci_high,
                    "ci_level": a.ci_level,
                    "n": self.n,
                    "n_positive": pd.NA,
                    "n_negative": pd.NA,
                    "method": a.method,
                }
            )
        frame = pd.DataFrame(rows, columns=_AUC_TABLE_COLUMNS)
        frame["class"] = pd.Series([r["class"] for r in rows], dtype=object)
        for col in ("n", "n_positive", "n_negative"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def pairwise_frame(self) -> pd.DataFrame:
        r"""Hand & Till's pairwise AUCs, one row per unordered pair of classes.

        Columns ``class_i, class_j`` (``i`` before ``j`` in ``classes``),
        ``a_i_given_j`` (:math:`\hat A(i\mid j)`: score of class ``i``, class
        ``i`` positive vs class ``j``), ``a_j_given_i`` and ``a_pair``
        (:math:`\hat A(i,j)`, their mean), ``n_i, n_j``.
        """
        rows = []
        k = len(self.classes)
        for i in range(k):
            for j in range(i + 1, k):
                aij, aji = float(self.pairwise_auc[i, j]), float(self.pairwise_auc[j, i])
                rows.append(
                    {
                        "class_i": self.classes[i],
                        "class_j": self.classes[j],
                        "a_i_given_j": aij,
                        "a_j_given_i": aji,
                        "a_pair": (aij + aji) / 2.0,
                        "n_i": self.class_counts[i],
                        "n_j": self.class_counts[j],
                    }
                )
        return pd.DataFrame(rows)

    def covariance_frame(self) -> pd.DataFrame:
        """The covariance matrix of the one-vs-rest AUCs labelled by class."""
        labels = pd.Index(list(self.classes), name="class")
        return pd.DataFrame(np.array(self.covariance), index=labels, columns=labels)


# --------------------------------------------------------------------------- AUCs


def one_vs_rest_auc(
    y_true: Any,
    prob: Any,
    *,
    classes: Any,
    alpha: float = 0.05,
    clusters: Any = None,
    ci_method: str | None = None,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> MultiClassAUCResult:
    r"""One-vs-rest AUCs with DeLong CIs, their macro and weighted means, and Hand & Till's M.

    For each class :math:`c` (positives: the :math:`m_c` cases of class
    :math:`c`; negatives: all others; score: column :math:`c`)

    .. math::

        \hat\theta_c = \frac{1}{m_c (N - m_c)}\sum_{i: y_i = c}\sum_{j: y_j \ne c}
            \psi(s_{ic}, s_{jc}), \qquad
        \psi(x, y) = [x > y] + \tfrac12 [x = y],

    with its DeLong interval (DeLong, DeLong & Clarke-Pearson 1988,
    doi:10.2307/2531595). The macro mean is :math:`\frac1k\sum_c\hat\theta_c`,
    the prevalence-weighted mean :math:`\sum_c (m_c/N)\,\hat\theta_c`, and
    Hand & Till's (2001, doi:10.1023/A:1010920819831) multi-class AUC

    .. math::

        \hat M = \frac{2}{k(k-1)}\sum_{i<j}\hat A(i, j), \qquad
        \hat A(i, j) = \frac{\hat A(i\mid j) + \hat A(j\mid i)}{2},

    where :math:`\hat A(i\mid j)` is the probability that a case of class
    :math:`i` has a higher score for class :math:`i` than a case of class
    :math:`j` (ties one half). This is how ``pROC::multiclass.roc(response,
    predictor_matrix)`` computes it: for each pair it fits
    ``roc(c(rep(i, .), rep(j, .)), c(p[y == i, i], p[y == j, i]), levels =
    c(i, j), direction = ">")`` and averages the two directions; and it is
    scikit-learn's ``roc_auc_score(y, p, multi_class="ovo",
    average="macro")`` (which also demands rows summing to one). The standard
    errors of the three averages are derived in the module docstring.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Reference-standard class of each case; every label must be in
        ``classes``; no missing labels.
    prob : array-like of float, shape (N, k), or mapping / DataFrame
        Scores, higher = more likely that class. A 2-D array's column ``j``
        belongs to ``classes[j]``; a mapping (or a DataFrame) is keyed by class
        label and must cover exactly ``classes``. Finite; need not sum to one.
    classes : sequence of labels
        The ``k >= 2`` classes in order; required (never inferred from the data).
    alpha : float, default 0.05
        Every interval has level ``1 - alpha``.
    clusters : array-like, shape (N,), optional
        Patient id of every case when a patient contributes several (e.g.
        both knees). Then each one-vs-rest AUC gets the clustered DeLong
        interval of :func:`studyval.analysis.clustered.auc_clustered`
        (Obuchowski 1997, doi:10.2307/2533958; method ``"clustered DeLong
        (Obuchowski 1997), patients as clusters"``), and the macro mean, the
        weighted mean and :math:`\hat M` get the interval of a patient-level
        (cluster) bootstrap, :func:`studyval.analysis.resampling.bootstrap_many`:
        each resample weights every case by the number of times its patient
        was drawn and recomputes the weighted AUCs
        (:func:`~studyval.analysis.resampling.weighted_auc`), the class
        shares :math:`m_c/N` and the averages, so the averages keep the
        correlation between the AUCs. A resample without a class (an AUC
        undefined) counts as failed and is left out (the engine warns above
        1 %). The ``method`` of those rows names it, e.g. ``"patient-level
        percentile bootstrap (2000 resamples)"``; ``se`` is the bootstrap SE.
    ci_method : {"percentile", "bca"}, optional
        The bootstrap interval, with ``clusters`` only (default
        ``"percentile"``); must be left out without clusters.
    n_resamples : int, optional
        Bootstrap resamples (default 2000); only with ``clusters``.
    seed : int, optional
        Bootstrap seed; required with ``clusters``, refused without.

    Returns
    -------
    MultiClassAUCResult
        ``.to_frame()`` is the tidy summary; ``.pairwise_frame()`` lists
        :math:`\hat A(i\mid j)`.

    Raises
    ------
    studyval.errors.EstimationError
        A class has fewer than 2 cases (its DeLong variance is undefined), or
        the rest has fewer than 2; with ``clusters``, a class (or the rest)
        in fewer than 2 patients, or an average undefined in all resamples.
    studyval.errors.StudyvalError
        Bad ``classes``; a label outside ``classes`` or missing (count and
        first position named); ``prob`` of the wrong shape, keyed by the wrong
        classes, or not finite; bad ``alpha``; bootstrap options without
        ``clusters`` or a bad ``ci_method``/``seed``/``clusters`` with them.

    Warns
    -----
    StatisticalWarning
        A one-vs-rest (clustered) DeLong standard error is exactly zero (see
        :func:`~studyval.analysis.discrimination.auc`); with ``clusters``, an
        average undefined in more than 1 % of the resamples.

    Examples
    --------
    >>> r = one_vs_rest_auc(
    ...     ["a", "a", "a", "b", "b", "b", "c", "c", "c"],
    ...     [[.6, .3, .1], [.3, .5, .2], [.5, .2, .3], [.2, .6, .2], [.4, .4, .2],
    ...      [.3, .3, .4], [.1, .3, .6], [.2, .2, .6], [.3, .4, .3]],
    ...     classes=["a", "b", "c"],
    ... )
    >>> round(r.hand_till.estimate, 4), round(r.macro.estimate, 4)
    (0.8519, 0.8519)
    >>> r.to_frame()["measure"].tolist()
    ['auc_ovr', 'auc_ovr', 'auc_ovr', 'auc_macro', 'auc_weighted', 'hand_till_m']

    """
    alpha = check_alpha(alpha)
    spec = _bootstrap_spec(
        clusters=clusters,
        ci_method=ci_method,
        n_resamples=n_resamples,
        seed=seed,
        analytic="DeLong's (with influence-function SEs for the averages)",
    )
    cls = _check_classes(classes)
    codes = _encode(y_true, cls, "y_true")
    n_all = codes.size
    mat = _check_prob(prob, cls, n_all)
    k = len(cls)
    counts = np.bincount(codes, minlength=k)
    too_few = [(c, int(m)) for c, m in zip(cls, counts, strict=True) if m < 2]
    if too_few:
        listed = ", ".join(f"{c!r}: {m}" for c, m in too_few)
        raise EstimationError(
            f"every class needs at least 2 cases for a DeLong standard error; too few in "
            f"{listed} (class counts: "
            + ", ".join(f"{c!r}: {int(m)}" for c, m in zip(cls, counts, strict=True))
            + ")"
        )
    if n_all - counts.max() < 2:
        raise EstimationError("the rest (all other classes together) needs at least 2 cases")
    masks = [codes == j for j in range(k)]

    per_class = []
    psi_ovr = np.empty((k, n_all))
    theta = np.empty(k)
    for j in range(k):
        r = auc(masks[j], mat[:, j], positive=True, alpha=alpha)
        per_class.append(r)
        _, psi_ovr[j] = _influence(masks[j], ~masks[j], mat[:, j])
        theta[j] = r.estimate  # identical to the placements' AUC, taken from auc()

    pairwise = np.full((k, k), np.nan)
    phi_m = np.zeros(n_all)
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            pairwise[i, j], psi = _influence(masks[i], masks[j], mat[:, i])
            phi_m += psi
    n_pairs = k * (k - 1)
    phi_m /= n_pairs
    m_hat = float(np.nansum(pairwise) / n_pairs)

    macro_est = float(theta.mean())
    phi_macro = psi_ovr.mean(axis=0)
    w = counts / n_all
    weighted_est = float(w @ theta)
    phi_weighted = w @ psi_ovr + (theta[codes] - weighted_est) / math.sqrt(n_all * (n_all - 1.0))

    cov = psi_ovr @ psi_ovr.T
    cov = (cov + cov.T) / 2.0
    influence = "Wald, influence-function SE on shared cases"
    if spec is not None:
        return _ovr_clustered(cls, codes, mat, masks, theta, pairwise, counts, alpha, spec)
    return MultiClassAUCResult(
        classes=cls,
        per_class=tuple(per_class),
        macro=_averaged("auc_macro", macro_est, phi_macro, alpha, influence),
        weighted=_averaged(
            "auc_weighted", weighted_est, phi_weighted, alpha, influence + " (weights estimated)"
        ),
        hand_till=_averaged("hand_till_m", m_hat, phi_m, alpha, influence),
        class_counts=tuple(int(x) for x in counts),
        n=int(n_all),
        ci_level=1.0 - alpha,
        covariance=_readonly(cov),
        pairwise_auc=_readonly(pairwise),
    )


def _ovr_clustered(
    cls: tuple[Any, ...],
    codes: np.ndarray,
    mat: np.ndarray,
    masks: list[np.ndarray],
    theta: np.ndarray,
    pairwise: np.ndarray,
    counts: np.ndarray,
    alpha: float,
    spec: Any,
) -> MultiClassAUCResult:
    """:func:`one_vs_rest_auc` with clusters: clustered DeLong per class, bootstrap averages."""
    from .clustered import auc_clustered
    from .resampling import weighted_auc_statistic

    k = len(cls)
    n_all = codes.size
    clustered = tuple(
        auc_clustered(masks[j], mat[:, j], spec.clusters, positive=True, alpha=alpha)
        for j in range(k)
    )
    ovr = [weighted_auc_statistic(masks[j], mat[:, j]) for j in range(k)]
    pairs = []
    for i in range(k):
        for j in range(k):
            if i != j:
                rows = np.flatnonzero(masks[i] | masks[j])
                pairs.append((rows, weighted_auc_statistic(masks[i][rows], mat[rows, i])))
    onehot = np.zeros((n_all, k))
    onehot[np.arange(n_all), codes] = 1.0
    names = [f"auc_ovr:{j}" for j in range(k)] + ["auc_macro", "auc_weighted", "hand_till_m"]

    def statistic(w: np.ndarray) -> np.ndarray:
        aucs = np.column_stack([f(w) for f in ovr])
        share = (w @ onehot) / w.sum(axis=1)[:, None]
        m = np.mean(np.column_stack([f(np.take(w, rows, axis=1)) for rows, f in pairs]), axis=1)
        return np.column_stack([aucs, aucs.mean(axis=1), (share * aucs).sum(axis=1), m])

    boot = _run_bootstrap(statistic, names, n_all, spec, alpha)

    def averaged(name: str, estimate: float) -> AveragedAUC:
        b = boot[name]
        return AveragedAUC(
            measure=name,
            estimate=estimate,
            se=b.se,
            ci_low=b.ci_low,
            ci_high=b.ci_high,
            ci_level=1.0 - alpha,
            method=spec.label,
        )

    n_pairs = k * (k - 1)
    reps = np.asarray(boot.replicates[:, :k])
    reps = reps[np.isfinite(reps).all(axis=1)]
    cov = np.cov(reps, rowvar=False) if reps.shape[0] > 1 else np.full((k, k), np.nan)
    w = counts / n_all
    return MultiClassAUCResult(
        classes=cls,
        per_class=clustered,  # type: ignore[arg-type]
        macro=averaged("auc_macro", float(theta.mean())),
        weighted=averaged("auc_weighted", float(w @ theta)),
        hand_till=averaged("hand_till_m", float(np.nansum(pairwise) / n_pairs)),
        class_counts=tuple(int(x) for x in counts),
        n=int(n_all),
        ci_level=1.0 - alpha,
        covariance=_readonly(cov),
        pairwise_auc=_readonly(pairwise),
        per_class_method="clustered DeLong (Obuchowski 1997), patients as clusters",
        bootstrap=boot,
    )


# --------------------------------------------------------------------------- prediction


def predict_argmax(prob: Any, classes: Any, *, ties: str = "error") -> np.ndarray:
    """Predicted class = the class with the highest score in each row.

    Parameters
    ----------
    prob : array-like of float, shape (N, k), or mapping / DataFrame
        Scores as for :func:`one_vs_rest_auc`; column ``j`` belongs to
        ``classes[j]``.
    classes : sequence of labels
        The ``k`` classes in order.
    ties : {"error", "first", "last"}, default "error"
        What to do when two or more classes share the highest score in a row:
        ``"error"`` raises (naming the number of tied rows and the first);
        ``"first"`` picks the tied class that comes first in ``classes``,
        ``"last"`` the one that comes last. For ordered stages listed from
        mild to severe (``normal, osteopenia, osteoporosis``), ``"first"``
        resolves a tie towards the milder stage and ``"last"`` towards the
        more severe one; the choice belongs in the analysis plan.

    Returns
    -------
    numpy.ndarray of object, shape (N,)
        The predicted labels (elements of ``classes``).

    Raises
    ------
    studyval.errors.StudyvalError
        A tie with ``ties="error"``; bad ``ties``; bad shape or non-finite
        scores; bad ``classes``.

    """
    check_option(ties, TIE_RULES, "ties")
    cls = _check_classes(classes)
    mat = _check_prob(prob, cls, None)
    top = mat.max(axis=1, keepdims=True)
    is_top = mat == top
    n_top = is_top.sum(axis=1)
    tied = n_top > 1
    if tied.any() and ties == "error":
        i = int(np.flatnonzero(tied)[0])
        names = [cls[j] for j in np.flatnonzero(is_top[i])]
        raise StudyvalError(
            f"{int(tied.sum())} row(s) of prob have a tie for the highest score; first at row "
            f"{i} (classes {', '.join(map(repr, names))} at {float(top[i, 0])!r}); pass "
            "ties='first' or ties='last' to resolve ties by the order of classes"
        )
    if ties == "last":
        idx = mat.shape[1] - 1 - np.argmax(is_top[:, ::-1], axis=1)
    else:
        idx = np.argmax(is_top, axis=1)  # first maximum
    out = np.empty(mat.shape[0], dtype=object)
    for j, c in enumerate(cls):
        out[idx == j] = c
    return out


# --------------------------------------------------------------------------- confusion


@dataclasses.dataclass(frozen=True, eq=False)
class MultiClassConfusion(Result):
    r"""A k x k confusion table with per-class and overall accuracy measures.

    Rows are the reference standard, columns the prediction, both in the order
    of ``classes``. For class :math:`c`, with :math:`C` the table,

    .. math::

        TP_c = C_{cc},\; FN_c = \textstyle\sum_{j\ne c} C_{cj},\;
        FP_c = \textstyle\sum_{i\ne c} C_{ic},\; TN_c = N - TP_c - FN_c - FP_c,

    and sensitivity :math:`TP_c/(TP_c+FN_c)`, specificity
    :math:`TN_c/(TN_c+FP_c)`, PPV :math:`TP_c/(TP_c+FP_c)`, NPV
    :math:`TN_c/(TN_c+FN_c)`. Overall accuracy is :math:`\sum_c C_{cc}/N`; for
    ordinal classes, accuracy within one category is
    :math:`\sum_{|i-j|\le 1} C_{ij}/N`. Every proportion has a binomial
    interval from :func:`studyval.analysis.proportions.proportion_ci` (Wilson
    by default). A proportion whose denominator is zero (e.g. PPV of a class
    never predicted) is NaN with NaN limits and a ``note``.

    Attributes
    ----------
    classes : tuple
        Class labels in order.
    counts : numpy.ndarray of int64, shape (k, k)
        ``counts[i, j]``: cases of reference class ``i`` predicted as ``j``
        (read-only).
    per_class : tuple of tuple of Measure
        For each class, its sensitivity, specificity, ppv and npv.
    accuracy : Measure
        Overall accuracy.
    accuracy_within_one : Measure or None
        Share of cases predicted within one category of the reference
        (``ordinal=True`` only).
    ordinal : bool
        Whether ``classes`` was declared ordered.
    n : int
        Number of cases.
    ci_level : float
        ``1 - alpha``.
    ci_method : str
        Interval method of every proportion; with clusters the cluster
        bootstrap, e.g. ``"patient-level percentile bootstrap (2000 resamples)"``.
    bootstrap : BootstrapManyResult or None
        With clusters, the cluster bootstrap of every measure with a finite
        estimate (names ``"<measure>:<j>"`` with ``j`` the position of the
        class, ``"accuracy"``, ``"accuracy_within_one"``); None otherwise.

    """

    classes: tuple[Any, ...]
    counts: np.ndarray = dataclasses.field(repr=False)
    per_class: tuple[tuple[Measure, ...], ...] = dataclasses.field(repr=False)
    accuracy: Measure
    accuracy_within_one: Measure | None
    ordinal: bool
    n: int
    ci_level: float
    ci_method: str
    bootstrap: Any = dataclasses.field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields, without ``bootstrap`` (as before the bootstrap option)."""
        out = super().to_dict()
        out.pop("bootstrap", None)  # None is scalar; a bootstrap result is not
        return out

    def matrix(self, *, margins: bool = False) -> pd.DataFrame:
        """The k x k table, rows ``reference standard``, columns ``predicted``.

        Parameters
        ----------
        margins : bool, default False
            Add a ``total`` row and column.

        """
        labels = list(self.classes)
        frame = pd.DataFrame(
            np.array(self.counts),
            index=pd.Index(labels, name="reference standard", dtype=object),
            columns=pd.Index(labels, name="predicted", dtype=object),
        )
        if margins:
            frame["total"] = frame.sum(axis=1)
            frame.loc["total"] = frame.sum(axis=0)
        return frame

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per class and measure, then the overall measures.

        Columns ``class`` (``<NA>`` for the overall rows), ``measure``
        (sensitivity, specificity, ppv, npv, accuracy, accuracy_within_one),
        ``estimate, ci_low, ci_high, ci_level, numerator, denominator``
        (nullable integers), ``ci_method`` and ``note``.
        """
        rows = []
        for c, measures in zip(self.classes, self.per_class, strict=True):
            for m in measures:
                rows.append({"class": c, **m.to_dict()})
        for m in (self.accuracy, self.accuracy_within_one):
            if m is not None:
                rows.append({"class": pd.NA, **m.to_dict()})
        frame = pd.DataFrame(rows, columns=_CONFUSION_TABLE_COLUMNS)
        frame["class"] = pd.Series([r["class"] for r in rows], dtype=object)
        for col in ("numerator", "denominator"):
            frame[col] = frame[col].astype("Int64")
        return frame


def _prop(name: str, x: int, n: int, alpha: float, method: str, why_empty: str) -> Measure:
    if n == 0:
        return Measure(
            measure=name,
            estimate=math.nan,
            ci_low=math.nan,
            ci_high=math.nan,
            ci_level=1.0 - alpha,
            numerator=int(x),
            denominator=0,
            ci_method=method,
            note=f"undefined: the denominator is zero ({why_empty})",
        )
    r = proportion_ci(int(x), int(n), alpha=alpha, method=method)
    return Measure(
        measure=name,
        estimate=r.estimate,
        ci_low=r.ci_low,
        ci_high=r.ci_high,
        ci_level=r.ci_level,
        numerator=int(x),
        denominator=int(n),
        ci_method=method,
    )


def multiclass_confusion(
    y_true: Any,
    y_pred: Any,
    *,
    classes: Any,
    ordinal: bool = False,
    alpha: float = 0.05,
    ci_method: str | None = None,
    clusters: Any = None,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> MultiClassConfusion:
    r"""Cross-tabulate reference standard against predicted class, with accuracy measures.

    Parameters
    ----------
    y_true : array-like, shape (N,)
        Reference-standard classes (e.g. DXA-based stage).
    y_pred : array-like, shape (N,)
        Predicted classes (e.g. from :func:`predict_argmax`).
    classes : sequence of labels
        The ``k >= 2`` classes, in order (for ``ordinal=True``: from lowest to
        highest category). Labels outside it are an error.
    ordinal : bool, default False
        The classes are ordered categories; adds ``accuracy_within_one``.
    alpha : float, default 0.05
        Every interval has level ``1 - alpha``.
    ci_method : str, optional
        Without ``clusters``: one of
        :data:`~studyval.analysis.proportions.CI_METHODS` (default
        ``"wilson"``). With ``clusters``: ``"percentile"`` (default) or
        ``"bca"``, the interval of the cluster bootstrap.
    clusters : array-like, shape (N,), optional
        Patient id of every case when a patient contributes several (e.g.
        both knees). Every measure with a finite estimate then gets the
        interval of a patient-level (cluster) bootstrap,
        :func:`studyval.analysis.resampling.bootstrap_many`: resample
        :math:`r` weights case :math:`l` by :math:`w_{rl}`, the number of
        times its patient was drawn, the table becomes
        :math:`C^*_{ij} = \sum_l w_{rl}[y_l = i, \hat y_l = j]` and every
        measure is recomputed from it with the formulas of
        :class:`MultiClassConfusion` (Davison & Hinkley 1997, §3.8,
        doi:10.1017/CBO9780511802843). A resample where a measure is
        undefined (e.g. no case of a class drawn) counts as failed and is left
        out (the engine warns above 1 %). ``ci_method`` of every row then
        names the bootstrap, e.g. ``"patient-level percentile bootstrap (2000
        resamples)"``; a measure whose estimate is undefined keeps NaN limits,
        with a note.
    n_resamples : int, optional
        Bootstrap resamples (default 2000); only with ``clusters``.
    seed : int, optional
        Bootstrap seed; required with ``clusters``, refused without.

    Returns
    -------
    MultiClassConfusion
        ``.matrix()`` is the k x k table; ``.to_frame()`` the tidy measures. The
        formulas are in :class:`MultiClassConfusion`.

    Raises
    ------
    studyval.errors.StudyvalError
        Missing labels or labels outside ``classes`` (count and first position
        named), lengths differ, bad ``classes``, ``alpha`` or ``ci_method``;
        bootstrap options without ``clusters``; a proportion method,
        no ``seed`` or bad ``clusters`` with ``clusters``.
    studyval.errors.EstimationError
        With ``clusters``: fewer than 2 patients, or a measure undefined in
        all resamples.

    Warns
    -----
    StatisticalWarning
        With ``clusters``, a measure undefined in more than 1 % of the resamples.

    """
    alpha = check_alpha(alpha)
    spec = _bootstrap_spec(
        clusters=clusters,
        ci_method=ci_method,
        n_resamples=n_resamples,
        seed=seed,
        analytic="a binomial (Wilson) interval",
    )
    ci_method = check_option(
        "wilson" if ci_method is None or spec is not None else ci_method, CI_METHODS, "ci_method"
    )
    if not isinstance(ordinal, (bool, np.bool_)):
        raise StudyvalError(f"ordinal must be True or False, got {ordinal!r}")
    cls = _check_classes(classes)
    t = _encode(y_true, cls, "y_true")
    p = _encode(y_pred, cls, "y_pred")
    if t.size != p.size:
        raise StudyvalError(f"y_pred has {p.size} labels but y_true has {t.size}")
    k = len(cls)
    n_all = int(t.size)
    counts = np.bincount(t * k + p, minlength=k * k).reshape(k, k).astype(np.int64)
    per_class = []
    for j, c in enumerate(cls):
        tp = int(counts[j, j])
        fn = int(counts[j].sum()) - tp
        fp = int(counts[:, j].sum()) - tp
        tn = n_all - tp - fn - fp
        per_class.append(
            (
                _prop("sensitivity", tp, tp + fn, alpha, ci_method, f"no reference {c!r} cases"),
                _prop(
                    "specificity", tn, tn + fp, alpha, ci_method, f"every case is reference {c!r}"
                ),
                _prop("ppv", tp, tp + fp, alpha, ci_method, f"no case predicted {c!r}"),
                _prop("npv", tn, tn + fn, alpha, ci_method, f"every case predicted {c!r}"),
            )
        )
    correct = int(np.trace(counts))
    acc = _prop("accuracy", correct, n_all, alpha, ci_method, "no cases")
    within = None
    if ordinal:
        i, j = np.indices((k, k))
        near = int(counts[np.abs(i - j) <= 1].sum())
        within = _prop("accuracy_within_one", near, n_all, alpha, ci_method, "no cases")
    boot = None
    if spec is not None:
        boot = _confusion_bootstrap(t, p, k, per_class, acc, within, alpha, spec)
        per_class = [
            tuple(_with_bootstrap(m, f"{m.measure}:{j}", boot, spec.label) for m in ms)
            for j, ms in enumerate(per_class)
        ]
        acc = _with_bootstrap(acc, "accuracy", boot, spec.label)
        if within is not None:
            within = _with_bootstrap(within, "accuracy_within_one", boot, spec.label)
        ci_method = spec.label
    return MultiClassConfusion(
        classes=cls,
        counts=_readonly(counts),
        per_class=tuple(per_class),
        accuracy=acc,
        accuracy_within_one=within,
        ordinal=bool(ordinal),
        n=n_all,
        ci_level=1.0 - alpha,
        ci_method=ci_method,
        bootstrap=boot,
    )


def _confusion_bootstrap(
    t: np.ndarray,
    p: np.ndarray,
    k: int,
    per_class: list[tuple[Measure, ...]],
    acc: Measure,
    within: Measure | None,
    alpha: float,
    spec: Any,
) -> Any:
    """Cluster bootstrap of the measures of :func:`multiclass_confusion` with a finite estimate."""
    n_all = t.size
    onehot = np.zeros((n_all, k * k))
    onehot[np.arange(n_all), t * k + p] = 1.0
    i, j = np.indices((k, k))
    near = (np.abs(i - j) <= 1).astype(np.float64)
    columns: list[tuple[str, Measure]] = [
        (f"{m.measure}:{c}", m) for c, ms in enumerate(per_class) for m in ms
    ]
    columns.append(("accuracy", acc))
    if within is not None:
        columns.append(("accuracy_within_one", within))
    names = [name for name, m in columns if math.isfinite(m.estimate)]

    def statistic(w: np.ndarray) -> np.ndarray:
        tab = (w @ onehot).reshape(-1, k, k)
        tot = tab.sum(axis=(1, 2))
        values: dict[str, np.ndarray] = {}
        with np.errstate(divide="ignore", invalid="ignore"):
            for c in range(k):
                tp = tab[:, c, c]
                row = tab[:, c, :].sum(axis=1)  # TP + FN
                col = tab[:, :, c].sum(axis=1)  # TP + FP
                tn = tot - row - col + tp
                values[f"sensitivity:{c}"] = tp / row
                values[f"specificity:{c}"] = tn / (tot - row)
                values[f"ppv:{c}"] = tp / col
                values[f"npv:{c}"] = tn / (tot - col)
            values["accuracy"] = np.trace(tab, axis1=1, axis2=2) / tot
            values["accuracy_within_one"] = (tab * near).sum(axis=(1, 2)) / tot
        return np.column_stack([values[name] for name in names])

    return _run_bootstrap(statistic, names, n_all, spec, alpha)


def _with_bootstrap(m: Measure, name: str, boot: Any, label: str) -> Measure:
    """``m`` with the bootstrap limits of statistic ``name`` and ``ci_method`` = ``label``."""
    if name in boot.names:
        b = boot[name]
        return dataclasses.replace(m, ci_low=b.ci_low, ci_high=b.ci_high, ci_method=label)
    note = "; ".join(filter(None, [m.note, "no bootstrap interval: the estimate is undefined"]))
    return dataclasses.replace(m, ci_method=label, note=note)
