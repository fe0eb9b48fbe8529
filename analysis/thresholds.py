r"""Decision thresholds: pre-specified cut-offs and exploratory (data-derived) ones.

Every threshold in studyval applies the same decision rule, stated wherever a
threshold is used:

    **index test positive iff score >= threshold**

(a higher score means *more likely positive*). A threshold carries its
*status*:

``"pre-specified"``
    Fixed before the validation data were seen, with a ``source`` naming where
    it was fixed (e.g. ``"SAP v1.2, section 7.3"``). Only :func:`prespecified`
    makes one.
``"exploratory"``
    Derived from the data being analysed (e.g. by :func:`youden`). Accuracy
    estimated at such a threshold on the same data is optimistic. A
    data-derived threshold is **always** exploratory: :class:`Threshold`
    refuses a pre-specified status for any threshold that carries a derivation
    method or data-derived operating characteristics, and :func:`prespecified`
    refuses to relabel a :class:`Threshold`.

References
----------
Youden WJ (1950). Index for rating diagnostic tests. Cancer 3:32-35.
doi:10.1002/1097-0142(1950)3:1<32::AID-CNCR2820030106>3.0.CO;2-3

Leeflang MMG, Moons KGM, Reitsma JB, Zwinderman AH (2008). Bias in sensitivity
and specificity caused by data-driven selection of optimal cutoff values:
mechanisms, magnitude, and solutions. Clin Chem 54:729-737.
doi:10.1373/clinchem.2007.096032

"""

from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from typing import Any

import numpy as np

from studyval.errors import StatisticalWarning, StudyvalError
from studyval.results import Result

from ._checks import check_binary_outcome, check_option, check_scores

__all__ = [
    "DECISION_RULE",
    "THRESHOLD_STATUSES",
    "Threshold",
    "check_threshold_value",
    "prespecified",
    "youden",
]

#: The one decision rule used with every threshold in studyval.
DECISION_RULE = "index test positive iff score >= threshold"

#: The accepted threshold statuses.
THRESHOLD_STATUSES: tuple[str, ...] = ("pre-specified", "exploratory")

_DATA_FIELDS = (
    "method",
    "sensitivity",
    "specificity",
    "j",
    "n_positive",
    "n_negative",
    "n_maximisers",
)


def check_threshold_value(threshold: Any, name: str = "threshold") -> float:
    """Return ``threshold`` as a finite float, or raise naming the bad value.

    A :class:`Threshold` gives its ``value``.

    Raises
    ------
    StudyvalError
        ``threshold`` is not a real number (booleans and strings included), or
        is NaN or infinite.

    """
    if isinstance(threshold, Threshold):
        return threshold.value
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, numbers.Real):
        raise StudyvalError(f"{name} must be a finite number, got {threshold!r}")
    value = float(threshold)
    if not math.isfinite(value):
        raise StudyvalError(f"{name} must be a finite number, got {value}")
    return value


@dataclasses.dataclass(frozen=True)
class Threshold(Result):
    r"""A decision threshold with its status and provenance.

    Decision rule: index test positive iff score >= ``value``.

    Attributes
    ----------
    value : float
        The cut-off on the score scale (finite).
    status : {"pre-specified", "exploratory"}
        Whether it was fixed before seeing the data or derived from them.
    source : str or None
        Pre-specified thresholds: where it was fixed (protocol, SAP, prior
        publication). ``None`` for data-derived thresholds.
    method : str or None
        Data-derived thresholds: how it was derived (``"Youden J"``).
    sensitivity, specificity : float or None
        Data-derived thresholds: empirical sensitivity and specificity at
        ``value`` in the data it was derived from (optimistic for those data).
    j : float or None
        Youden's :math:`J = \text{sensitivity} + \text{specificity} - 1` at ``value``.
    n_positive, n_negative : int or None
        Reference-standard positives and negatives in the derivation data.
    n_maximisers : int or None
        Number of distinct score values attaining the maximal J (1 if unique).
    decision_rule : str
        Always :data:`DECISION_RULE`.

    Raises
    ------
    StudyvalError
        On construction: a non-finite ``value``, an unknown ``status``, a
        pre-specified threshold without a ``source`` or with any data-derived
        field set, an exploratory threshold without a ``method``, or a
        different ``decision_rule``.

    """

    value: float
    status: str
    source: str | None = None
    method: str | None = None
    sensitivity: float | None = None
    specificity: float | None = None
    j: float | None = None
    n_positive: int | None = None
    n_negative: int | None = None
    n_maximisers: int | None = None
    decision_rule: str = DECISION_RULE

    def __post_init__(self) -> None:
        if isinstance(self.value, Threshold):
            raise StudyvalError("Threshold value must be a number, not another Threshold")
        object.__setattr__(self, "value", check_threshold_value(self.value, "Threshold value"))
        check_option(self.status, THRESHOLD_STATUSES, "status")
        if self.decision_rule != DECISION_RULE:
            raise StudyvalError(
                f"decision_rule must be {DECISION_RULE!r}; studyval uses no other rule"
            )
        if self.status == "pre-specified":
            derived = [f for f in _DATA_FIELDS if getattr(self, f) is not None]
            if derived:
                raise StudyvalError(
                    "a threshold derived from data is always exploratory and cannot be "
                    f"labelled pre-specified (it has data-derived field(s): {', '.join(derived)})"
                )
            if not isinstance(self.source, str) or not self.source.strip():
                raise StudyvalError(
                    "a pre-specified threshold needs a source naming where it was fixed "
                    "(e.g. 'SAP v1.0, section 5.2')"
                )
        elif not isinstance(self.method, str) or not self.method.strip():
            raise StudyvalError("an exploratory threshold needs the method that derived it")

    def __float__(self) -> float:
        return self.value


def prespecified(threshold: float, *, source: str) -> Threshold:
    """Declare a threshold fixed before the validation data were seen.

    Parameters
    ----------
    threshold : float
        The cut-off on the score scale; index test positive iff
        score >= threshold.
    source : str
        Where it was fixed, e.g. ``"SAP v1.0, section 5.2"`` or a citation.

    Returns
    -------
    Threshold
        ``status="pre-specified"``.

    Raises
    ------
    StudyvalError
        ``threshold`` is a :class:`Threshold` (a data-derived one can never be
        relabelled pre-specified), not a finite number, or ``source`` is
        empty.

    """
    if isinstance(threshold, Threshold):
        if threshold.status == "exploratory":
            raise StudyvalError(
                f"cannot relabel an exploratory threshold ({threshold.method}, value "
                f"{threshold.value!r}) as pre-specified: a threshold derived from the data "
                "is always exploratory"
            )
        raise StudyvalError("threshold is already a pre-specified Threshold; pass its number")
    return Threshold(value=check_threshold_value(threshold), status="pre-specified", source=source)


def youden(y_true: Any, y_score: Any, *, positive: Any) -> Threshold:
    r"""Exploratory threshold maximising Youden's J on the empirical ROC curve.

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Reference-standard labels (two classes, both present).
    y_score : array-like of float, shape (n,)
        Index-test scores; a higher score means *more likely positive*.
        Must be finite.
    positive : label
        The label of the positive class in ``y_true`` (never inferred).

    Returns
    -------
    Threshold
        ``status="exploratory"``, ``method="Youden J"``, with the empirical
        sensitivity, specificity and J at the chosen value.

    Raises
    ------
    StudyvalError
        Invalid labels or scores (see :func:`check_binary_outcome`,
        :func:`check_scores`).
    EstimationError
        Only one class present.

    Warns
    -----
    StatisticalWarning
        The maximal J is 0: no threshold separates the classes better than
        chance.

    Notes
    -----
    Candidate thresholds are the distinct observed scores :math:`t`, with the
    rule *positive iff score >= t*. At each,

    .. math::

        J(t) = \frac{TP(t)}{P} + \frac{TN(t)}{N} - 1
             = \frac{TP(t)\,N - FP(t)\,P}{P\,N},

    and the maximum is found on the integer numerator, so ties are detected
    exactly. **Ties:** when several thresholds attain the maximal J, the
    smallest of them is returned (the most sensitive operating point among the
    maximisers); ``n_maximisers`` reports how many there were. The threshold
    "above every score" (all negative, J = 0) never beats the smallest score
    (all positive, J = 0), so it is never returned.

    pROC (``coords(roc, "best", best.method = "youden")``) reports the
    *midpoint* between adjacent distinct scores as its threshold. Both rules
    classify every observed score identically, so sensitivity, specificity and
    J agree; the studyval threshold is the smallest observed score above the
    pROC midpoint. pROC returns every tied maximiser.

    The threshold is chosen on the data and accuracy measured on the same data
    at it is optimistically biased (Leeflang et al. 2008); it is therefore
    always labelled exploratory.

    """
    is_pos = check_binary_outcome(y_true, positive)
    scores = check_scores(y_score, is_pos.shape[0])
    n_pos = int(is_pos.sum())
    n_neg = int(is_pos.size - n_pos)

    order = np.argsort(-scores, kind="mergesort")
    s_sorted = scores[order]
    pos_sorted = is_pos[order]
    tp_cum = np.cumsum(pos_sorted, dtype=np.int64)
    fp_cum = np.cumsum(~pos_sorted, dtype=np.int64)
    # last index of each block of equal scores (descending order)
    block_end = np.r_[s_sorted[1:] != s_sorted[:-1], True]
    thresholds = s_sorted[block_end]
    tp = tp_cum[block_end]
    fp = fp_cum[block_end]
    j_num = tp * n_neg - fp * n_pos  # exact integers
    best = j_num.max()
    maximisers = np.flatnonzero(j_num == best)
    i = int(maximisers[-1])  # thresholds descend: the last maximiser is the smallest
    if best == 0:
        warnings.warn(
            "the maximal Youden J is 0: no threshold separates the classes better than chance",
            StatisticalWarning,
            stacklevel=2,
        )
    return Threshold(
        value=float(thresholds[i]),
        status="exploratory",
        method="Youden J",
        sensitivity=int(tp[i]) / n_pos,
        specificity=(n_neg - int(fp[i])) / n_neg,
        j=int(j_num[i]) / (n_pos * n_neg),
        n_positive=n_pos,
        n_negative=n_neg,
        n_maximisers=int(maximisers.size),
    )
