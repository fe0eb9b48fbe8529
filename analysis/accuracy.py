r"""Diagnostic accuracy at a threshold: the 2x2 table and the measures derived from it.

Decision rule, everywhere in this module: **index test positive iff
score >= threshold** (a higher score means *more likely positive*; a score
exactly at the threshold is positive).

The 2x2 table (rows: reference standard; columns: index test)::

                              index test positive   index test negative
    reference positive               TP                    FN
    reference negative               FP                    TN

Measures, with :math:`n_1 = TP + FN` reference positives, :math:`n_0 = FP + TN`
reference negatives and :math:`n = n_1 + n_0`:

=====================  ==========================================  ===================
measure                estimate                                    CI
=====================  ==========================================  ===================
sensitivity            :math:`TP / n_1`                            ``ci_method``
specificity            :math:`TN / n_0`                            ``ci_method``
ppv                    :math:`TP / (TP + FP)`                      ``ci_method``
npv                    :math:`TN / (TN + FN)`                      ``ci_method``
accuracy               :math:`(TP + TN) / n`                       ``ci_method``
balanced_accuracy      :math:`(Se + Sp) / 2`                       none (see below)
prevalence             :math:`n_1 / n`                             ``ci_method``
lr_positive            :math:`Se / (1 - Sp)`                       log (Simel 1991)
lr_negative            :math:`(1 - Se) / Sp`                       log (Simel 1991)
dor                    :math:`(TP \cdot TN) / (FP \cdot FN)`        log (Woolf 1955)
ppv_adjusted           Bayes at an assumed prevalence :math:`\pi`  logit (Mercaldo 2007)
npv_adjusted           Bayes at an assumed prevalence :math:`\pi`  logit (Mercaldo 2007)
=====================  ==========================================  ===================

**PPV, NPV and accuracy depend on the prevalence in the sample.** In a
case-control sample (e.g. 138 acute + 138 chronic fractures, fixed by design)
the sample prevalence is set by the investigators, and the sample PPV and NPV
do not describe any clinical population. Pass ``prevalence=`` (an assumed
population prevalence) to add ``ppv_adjusted`` and ``npv_adjusted``, the
predictive values at that prevalence by Bayes' theorem.

**Several rows per patient.** Pass ``clusters=`` (patient ids) and ``seed=``
to :func:`diagnostic_accuracy`: every interval then comes from a
patient-level (cluster) bootstrap of the same estimator
(:mod:`studyval.analysis.resampling`), ``ci_method="percentile"`` (default) or
``"bca"``, and the table's ``ci_method`` says so, e.g. ``"patient-level
percentile bootstrap (2000 resamples)"``. Without ``clusters`` nothing changes.

References
----------
Simel DL, Samsa GP, Matchar DB (1991). Likelihood ratios with confidence:
sample size estimation for diagnostic test studies. J Clin Epidemiol
44:763-770. doi:10.1016/0895-4356(91)90128-V

Woolf B (1955). On estimating the relation between blood group and disease.
Ann Hum Genet 19:251-253. doi:10.1111/j.1469-1809.1955.tb01348.x

Glas AS, Lijmer JG, Prins MH, Bonsel GJ, Bossuyt PMM (2003). The diagnostic
odds ratio: a single indicator of test performance. J Clin Epidemiol
56:1129-1135. doi:10.1016/S0895-4356(03)00177-X

Mercaldo ND, Lau KF, Zhou XH (2007). Confidence intervals for predictive
values with an emphasis to case-control designs. Stat Med 26:2170-2183.
doi:10.1002/sim.2677

Altman DG, Bland JM (1994). Diagnostic tests 1: sensitivity and specificity.
BMJ 308:1552; Diagnostic tests 2: predictive values. BMJ 309:102.

"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import stats

from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

from ._checks import check_alpha, check_binary_outcome, check_option, check_scores
from .proportions import CI_METHODS, _as_count, proportion_ci
from .thresholds import DECISION_RULE, THRESHOLD_STATUSES, Threshold, check_threshold_value

__all__ = [
    "BOOTSTRAP_CI_METHODS",
    "DECISION_RULE",
    "MEASURES",
    "AccuracyResult",
    "ConfusionMatrix",
    "IntentionToDiagnose",
    "Measure",
    "accuracy_from_confusion",
    "confusion_matrix",
    "diagnostic_accuracy",
    "intention_to_diagnose",
    "intention_to_diagnose_confusion",
]

#: Measures in the order :meth:`AccuracyResult.to_frame` lists them.
MEASURES: tuple[str, ...] = (
    "sensitivity",
    "specificity",
    "ppv",
    "npv",
    "accuracy",
    "balanced_accuracy",
    "prevalence",
    "lr_positive",
    "lr_negative",
    "dor",
    "ppv_adjusted",
    "npv_adjusted",
)

_TABLE_COLUMNS = [
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


def _fmt_threshold(value: float) -> str:
    return repr(float(value))


# --------------------------------------------------------------------------- #
# Cluster-bootstrap option (shared with agreement and multiclass)
# --------------------------------------------------------------------------- #
#: Interval methods of the cluster bootstrap (``ci_method`` with ``clusters``).
BOOTSTRAP_CI_METHODS: tuple[str, ...] = ("percentile", "bca")
_BOOTSTRAP_DEFAULT_RESAMPLES = 2000


@dataclasses.dataclass(frozen=True)
class _BootstrapSpec:
    """Validated cluster-bootstrap options of a statistic (``clusters`` given)."""

    clusters: Any
    method: str
    n_resamples: int
    seed: int

    @property
    def label(self) -> str:
        """What the interval is, for the ``ci_method`` / ``method`` column."""
        name = "BCa" if self.method == "bca" else "percentile"
        return f"patient-level {name} bootstrap ({self.n_resamples} resamples)"


def _bootstrap_spec(
    *,
    clusters: Any,
    ci_method: Any,
    n_resamples: Any,
    seed: Any,
    analytic: str,
) -> _BootstrapSpec | None:
    """Check the cluster-bootstrap keywords; None without ``clusters``.

    ``analytic`` names the interval used without clusters (for messages).
    Without clusters, ``seed`` and ``n_resamples`` must be left out and
    ``ci_method`` must not be a bootstrap method; with clusters, ``seed`` is
    required and ``ci_method`` is ``"percentile"`` (default) or ``"bca"``.
    """
    if clusters is None:
        if ci_method in BOOTSTRAP_CI_METHODS:
            raise StudyvalError(
                f"ci_method={ci_method!r} is a cluster bootstrap and needs clusters= (the patient "
                "id of every row); for an ordinary bootstrap of independent rows pass "
                "clusters=numpy.arange(n)"
            )
        for name, value in (("seed", seed), ("n_resamples", n_resamples)):
            if value is not None:
                raise StudyvalError(
                    f"{name}= is used only by the cluster bootstrap, i.e. with clusters= (the "
                    f"patient id of every row); without clusters the interval is {analytic}"
                )
        return None
    method = "percentile" if ci_method is None else ci_method
    if method not in BOOTSTRAP_CI_METHODS:
        raise StudyvalError(
            f"with clusters, ci_method must be 'percentile' or 'bca' (got {ci_method!r}): "
            f"the {analytic} interval assumes independent rows, not several rows per patient"
        )
    if seed is None:
        raise StudyvalError(
            "seed= is required with clusters: the intervals come from a cluster bootstrap and "
            "must be reproducible"
        )
    b = _BOOTSTRAP_DEFAULT_RESAMPLES if n_resamples is None else n_resamples
    if isinstance(b, bool | np.bool_) or not isinstance(b, int | np.integer) or b < 2:
        raise StudyvalError(f"n_resamples must be an integer >= 2, got {n_resamples!r}")
    return _BootstrapSpec(clusters=clusters, method=method, n_resamples=int(b), seed=seed)


def _run_bootstrap(
    statistic: Any, names: list[str], n_rows: int, spec: _BootstrapSpec, alpha: float
) -> Any:
    """:func:`~studyval.analysis.resampling.bootstrap_many` with the options of ``spec``."""
    from .resampling import bootstrap_many

    return bootstrap_many(
        statistic,
        names=names,
        n_rows=n_rows,
        clusters=spec.clusters,
        n_resamples=spec.n_resamples,
        seed=spec.seed,
        alpha=alpha,
        method=spec.method,
    )


# --------------------------------------------------------------------------- #
# Confusion matrix
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class ConfusionMatrix(Result):
    """Counts of the 2x2 table at one threshold.

    Decision rule: index test positive iff score >= ``threshold``.
    :meth:`to_frame` is the tidy table (one row per cell); :meth:`matrix` the
    2x2 display table.

    Attributes
    ----------
    tp : int
        Reference positive, index test positive.
    fp : int
        Reference negative, index test positive.
    fn : int
        Reference positive, index test negative.
    tn : int
        Reference negative, index test negative.
    threshold : float
        The cut-off on the score scale.
    positive : label
        Label of the positive class (as in ``y_true``).
    negative : str
        Display label of the negative class (default ``"not <positive>"``).
    decision_rule : str
        Always :data:`DECISION_RULE`.

    Raises
    ------
    StudyvalError
        On construction: a negative or non-integral count, a non-finite
        threshold, or a negative label that displays like the positive one.

    """

    tp: int
    fp: int
    fn: int
    tn: int
    threshold: float
    positive: Any
    negative: str
    decision_rule: str = DECISION_RULE

    def __post_init__(self) -> None:
        for name in ("tp", "fp", "fn", "tn"):
            value = _as_count(getattr(self, name), name)
            if value < 0:
                raise StudyvalError(f"{name} must be >= 0, got {value}")
            object.__setattr__(self, name, value)
        object.__setattr__(self, "threshold", check_threshold_value(self.threshold))
        if str(self.negative) == str(self.positive):
            raise StudyvalError(
                f"negative={self.negative!r} displays the same as positive={self.positive!r}"
            )
        if self.decision_rule != DECISION_RULE:
            raise StudyvalError(f"decision_rule must be {DECISION_RULE!r}")

    @property
    def n(self) -> int:
        """Total number of cases."""
        return self.tp + self.fp + self.fn + self.tn

    @property
    def n_positive(self) -> int:
        """Reference-standard positives, TP + FN."""
        return self.tp + self.fn

    @property
    def n_negative(self) -> int:
        """Reference-standard negatives, FP + TN."""
        return self.fp + self.tn

    @property
    def n_test_positive(self) -> int:
        """Index-test positives (score >= threshold), TP + FP."""
        return self.tp + self.fp

    @property
    def n_test_negative(self) -> int:
        """Index-test negatives (score < threshold), FN + TN."""
        return self.fn + self.tn

    def to_frame(self) -> pd.DataFrame:
        """Tidy long table: one row per cell.

        Columns ``cell`` (tp, fn, fp, tn), ``reference_standard`` and
        ``index_test`` (class labels), ``count``, ``threshold`` and
        ``decision_rule``.
        """
        pos, neg = str(self.positive), self.negative
        rows = [
            ("tp", pos, pos, self.tp),
            ("fn", pos, neg, self.fn),
            ("fp", neg, pos, self.fp),
            ("tn", neg, neg, self.tn),
        ]
        frame = pd.DataFrame(rows, columns=["cell", "reference_standard", "index_test", "count"])
        frame["threshold"] = self.threshold
        frame["decision_rule"] = self.decision_rule
        return frame

    def matrix(self, *, margins: bool = False) -> pd.DataFrame:
        """The 2x2 table for display (:meth:`to_frame` is the tidy table).

        Rows are the reference standard (positive class first), columns the
        index test; both are labelled with the class labels. The column axis
        name states the decision rule and the threshold.

        Parameters
        ----------
        margins : bool, default False
            Add a ``total`` row and column.

        """
        pos, neg = str(self.positive), self.negative
        frame = pd.DataFrame(
            [[self.tp, self.fn], [self.fp, self.tn]],
            index=pd.Index([pos, neg], name="reference standard"),
            columns=pd.Index(
                [pos, neg],
                name=f"index test (positive iff score >= {_fmt_threshold(self.threshold)})",
            ),
        )
        if margins:
            frame["total"] = frame.sum(axis=1)
            frame.loc["total"] = frame.sum(axis=0)
        return frame


def _labels(positive: Any, negative: str | None) -> str:
    if negative is None:
        return f"not {positive}"
    if not isinstance(negative, str) or not negative.strip():
        raise StudyvalError(f"negative must be a non-empty display label, got {negative!r}")
    return negative


def confusion_matrix(
    y_true: Any,
    y_score: Any,
    *,
    positive: Any,
    threshold: float | Threshold,
    negative: str | None = None,
) -> ConfusionMatrix:
    """Cross-tabulate reference standard against index test at a threshold.

    Decision rule: index test positive iff score >= ``threshold`` (a score
    equal to the threshold is positive).

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Reference-standard labels; two classes, both present.
    y_score : array-like of float, shape (n,)
        Index-test scores; higher means *more likely positive*. Must be finite.
    positive : label
        The positive (diseased) class in ``y_true``; never inferred.
    threshold : float or Threshold
        Finite cut-off on the score scale.
    negative : str, optional
        Display label of the other class (e.g. ``"chronic"``); default
        ``"not <positive>"``. Used for display only.

    Returns
    -------
    ConfusionMatrix

    Raises
    ------
    StudyvalError
        Invalid labels, NaN/infinite scores, length mismatch, non-finite
        threshold.
    EstimationError
        ``positive`` absent or only one class present.

    """
    is_pos = check_binary_outcome(y_true, positive)
    scores = check_scores(y_score, is_pos.shape[0])
    t = check_threshold_value(threshold)
    neg_label = _labels(positive, negative)
    test_pos = scores >= t
    return ConfusionMatrix(
        tp=int(np.sum(is_pos & test_pos)),
        fp=int(np.sum(~is_pos & test_pos)),
        fn=int(np.sum(is_pos & ~test_pos)),
        tn=int(np.sum(~is_pos & ~test_pos)),
        threshold=t,
        positive=positive,
        negative=neg_label,
    )


# --------------------------------------------------------------------------- #
# Measures
# --------------------------------------------------------------------------- #
@dataclasses.dataclass(frozen=True)
class Measure(Result):
    r"""One accuracy measure with its confidence interval.

    Unpacks as ``estimate, ci_low, ci_high``.

    Attributes
    ----------
    measure : str
        Name, one of :data:`MEASURES`.
    estimate : float
        Point estimate; may be ``inf`` (e.g. LR+ with no false positives) or
        NaN (undefined, e.g. PPV with no index-test positives); ``note`` says
        why.
    ci_low, ci_high : float
        Confidence limits; NaN when no interval is defined (``note`` says why).
    ci_level : float
        :math:`1 - \alpha`.
    numerator, denominator : int or None
        Counts behind a proportion; ``None`` for ratios and model-based values.
    ci_method : str
        How the interval was computed (``"wilson"``, ``"log (Simel 1991)"``,
        ...), or ``"none"``.
    note : str
        Empty, or a sentence on a zero cell, an undefined value or a
        correction.

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    measure: str
    estimate: float
    ci_low: float
    ci_high: float
    ci_level: float
    numerator: int | None
    denominator: int | None
    ci_method: str
    note: str = ""


def _no_ci(
    name: str,
    estimate: float,
    level: float,
    method: str,
    note: str,
    numerator: int | None = None,
    denominator: int | None = None,
) -> Measure:
    """A measure without a confidence interval (limits NaN), with the reason in ``note``."""
    return Measure(
        measure=name,
        estimate=estimate,
        ci_low=math.nan,
        ci_high=math.nan,
        ci_level=level,
        numerator=numerator,
        denominator=denominator,
        ci_method=method,
        note=note,
    )


def _with_ci(
    name: str, estimate: float, low: float, high: float, level: float, method: str, note: str = ""
) -> Measure:
    """A ratio or model-based measure with its interval (no counts behind it)."""
    return Measure(
        measure=name,
        estimate=estimate,
        ci_low=low,
        ci_high=high,
        ci_level=level,
        numerator=None,
        denominator=None,
        ci_method=method,
        note=note,
    )


def _proportion(name: str, x: int, n: int, alpha: float, method: str, why_empty: str) -> Measure:
    if n == 0:
        return _no_ci(
            name,
            math.nan,
            1 - alpha,
            method,
            f"undefined: the denominator is zero ({why_empty})",
            numerator=x,
            denominator=n,
        )
    r = proportion_ci(x, n, alpha=alpha, method=method)
    return Measure(
        measure=name,
        estimate=r.estimate,
        ci_low=r.ci_low,
        ci_high=r.ci_high,
        ci_level=r.ci_level,
        numerator=x,
        denominator=n,
        ci_method=method,
    )


def _ratio_of_proportions(
    name: str,
    a: float,
    n_a: float,
    b: float,
    n_b: float,
    z: float,
    alpha: float,
    method: str,
    zero_a: str,
    zero_b: str,
) -> tuple[Measure, float]:
    """Ratio (a/n_a)/(b/n_b) with the log CI; also returns the SE of the log."""
    level = 1 - alpha
    if a > 0 and b > 0:
        est = (a / n_a) / (b / n_b)
        se = math.sqrt(1 / a - 1 / n_a + 1 / b - 1 / n_b)
        lo, hi = est * math.exp(-z * se), est * math.exp(z * se)
        return _with_ci(name, est, lo, hi, level, method), se
    if a > 0:  # b == 0
        note = f"{name} is infinite: {zero_b}; the log-method CI is undefined"
        est = math.inf
    elif b > 0:  # a == 0
        note = f"{name} is 0: {zero_a}; the log-method CI is undefined"
        est = 0.0
    else:
        note = f"{name} is undefined (0/0): {zero_a} and {zero_b}"
        est = math.nan
    note += "; set zero_cell_correction (e.g. 0.5) for a finite estimate and CI"
    return _no_ci(name, est, level, method, note), math.nan


def _dor(tp: float, fp: float, fn: float, tn: float, z: float, alpha: float) -> Measure:
    method = "log (Woolf 1955)"
    level = 1 - alpha
    if min(tp, fp, fn, tn) > 0:
        est = (tp * tn) / (fp * fn)
        se = math.sqrt(1 / tp + 1 / fp + 1 / fn + 1 / tn)
        return _with_ci("dor", est, est * math.exp(-z * se), est * math.exp(z * se), level, method)
    zeros = [c for c, v in (("TP", tp), ("FP", fp), ("FN", fn), ("TN", tn)) if v == 0]
    num, den = tp * tn, fp * fn
    if num > 0:
        est, what = math.inf, "infinite"
    elif den > 0:
        est, what = 0.0, "0"
    else:
        est, what = math.nan, "undefined (0/0)"
    note = (
        f"dor is {what}: zero cell(s) {', '.join(zeros)}; the log-method CI is undefined; "
        "set zero_cell_correction (e.g. 0.5) for a finite estimate and CI"
    )
    return _no_ci("dor", est, level, method, note)


def _adjusted_pv(
    name: str, lr: Measure, se_log: float, prevalence: float, z: float, alpha: float
) -> Measure:
    """Predictive value at an assumed prevalence from LR+ (ppv) or LR- (npv)."""
    method = "logit (Mercaldo 2007)"
    level = 1 - alpha
    prior_logit = math.log(prevalence / (1 - prevalence))
    sign = 1.0 if name == "ppv_adjusted" else -1.0
    context = f"at assumed prevalence {prevalence:g} (Bayes' theorem)"
    lr_est = lr.estimate
    if math.isnan(lr_est):
        return _no_ci(
            name, math.nan, level, method, f"undefined {context}: {lr.measure} is undefined"
        )
    if lr_est == 0.0 or math.isinf(lr_est):
        # PPV from LR+ = 0 is 0, from LR+ = inf is 1; NPV from LR- = 0 is 1, inf is 0.
        est = float((lr_est > 0) == (sign > 0))
        return _no_ci(
            name, est, level, method, f"{context}; CI undefined because {lr.measure} is {lr_est:g}"
        )
    centre = sign * (prior_logit + math.log(lr_est))
    est = 1 / (1 + math.exp(-centre))
    lo = 1 / (1 + math.exp(-(centre - z * se_log)))
    hi = 1 / (1 + math.exp(-(centre + z * se_log)))
    return _with_ci(name, est, lo, hi, level, method, context)


@dataclasses.dataclass(frozen=True)
class AccuracyResult(Result):
    r"""Diagnostic accuracy at one threshold.

    Decision rule: index test positive iff score >= ``threshold``. The
    formulas (Simel 1991 doi:10.1016/0895-4356(91)90128-V for the likelihood
    ratios, Woolf 1955 for the DOR, Mercaldo 2007 doi:10.1002/sim.2677 for the
    adjusted predictive values) are in :func:`accuracy_from_confusion`.
    :meth:`to_frame` is the tidy table (one row per measure, with the
    threshold); :meth:`measures_frame` the same rows without the threshold
    columns.

    Attributes
    ----------
    confusion : ConfusionMatrix
        The 2x2 counts.
    measures : tuple of Measure
        One per measure, in the order of :data:`MEASURES` (the adjusted
        predictive values only when ``prevalence`` was given).
    threshold : float
        The cut-off.
    threshold_status : {"pre-specified", "exploratory"}
        Whether the threshold was fixed before seeing these data.
    positive : label
        Positive class label.
    negative : str
        Display label of the negative class.
    alpha : float
        Two-sided error rate of every interval.
    ci_level : float
        :math:`1 - \alpha`.
    ci_method : str
        Interval method for the proportions (see
        :func:`studyval.analysis.proportions.proportion_ci`); with clusters,
        the cluster bootstrap of every measure, e.g. ``"patient-level
        percentile bootstrap (2000 resamples)"``.
    prevalence : float or None
        Assumed population prevalence for ``ppv_adjusted`` / ``npv_adjusted``.
    zero_cell_correction : float
        Constant added to every cell for the ratio measures when a cell is
        zero (0 = none).
    decision_rule : str
        Always :data:`DECISION_RULE`.
    bootstrap : BootstrapManyResult or None
        With clusters, the cluster bootstrap of the measures with a finite
        estimate (statistic names as in :data:`MEASURES`: replicates, SEs,
        failures, seed); None otherwise. Not in :meth:`to_frame`.

    """

    confusion: ConfusionMatrix
    measures: tuple[Measure, ...]
    threshold: float
    threshold_status: str
    positive: Any
    negative: str
    alpha: float
    ci_level: float
    ci_method: str
    prevalence: float | None
    zero_cell_correction: float
    decision_rule: str = DECISION_RULE
    bootstrap: Any = dataclasses.field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Scalar fields, without ``bootstrap`` (as before the bootstrap option)."""
        out = super().to_dict()
        out.pop("bootstrap", None)  # None is scalar; a bootstrap result is not
        return out

    def measures_frame(self) -> pd.DataFrame:
        """The measures alone, one row per measure (:meth:`to_frame` without the threshold).

        Columns: ``measure, estimate, ci_low, ci_high, ci_level, numerator,
        denominator, ci_method, note``. ``numerator``/``denominator`` are
        nullable integers (``<NA>`` for ratios).
        """
        frame = pd.DataFrame([m.to_dict() for m in self.measures], columns=_TABLE_COLUMNS)
        for col in ("numerator", "denominator"):
            frame[col] = frame[col].astype("Int64")
        return frame

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per measure.

        :meth:`measures_frame` with ``threshold``, ``threshold_status`` and
        ``decision_rule`` first.
        """
        frame = self.measures_frame()
        frame.insert(0, "threshold", self.threshold)
        frame.insert(1, "threshold_status", self.threshold_status)
        frame.insert(2, "decision_rule", self.decision_rule)
        return frame

    def measure(self, name: str) -> Measure:
        """The :class:`Measure` called ``name`` (one of :data:`MEASURES`)."""
        names = [m.measure for m in self.measures]
        check_option(name, names, "measure")
        return self.measures[names.index(name)]

    @property
    def sensitivity(self) -> Measure:
        """Sensitivity, TP / (TP + FN)."""
        return self.measure("sensitivity")

    @property
    def specificity(self) -> Measure:
        """Specificity, TN / (TN + FP)."""
        return self.measure("specificity")

    @property
    def ppv(self) -> Measure:
        """Positive predictive value at the sample prevalence."""
        return self.measure("ppv")

    @property
    def npv(self) -> Measure:
        """Negative predictive value at the sample prevalence."""
        return self.measure("npv")


def accuracy_from_confusion(
    confusion: ConfusionMatrix,
    *,
    threshold_status: str,
    alpha: float = 0.05,
    ci_method: str = "wilson",
    prevalence: float | None = None,
    zero_cell_correction: float = 0.0,
) -> AccuracyResult:
    r"""Accuracy measures from a :class:`ConfusionMatrix` (e.g. a published 2x2 table).

    Parameters and returns as for :func:`diagnostic_accuracy`, which builds the
    confusion matrix from labels and scores and calls this.

    Notes
    -----
    Likelihood ratios (Simel, Samsa & Matchar 1991), with
    :math:`z = \Phi^{-1}(1 - \alpha/2)`:

    .. math::

        \mathrm{LR}^+ = \frac{TP/n_1}{FP/n_0}, \quad
        \operatorname{SE}(\ln \mathrm{LR}^+) =
        \sqrt{\tfrac{1}{TP} - \tfrac{1}{n_1} + \tfrac{1}{FP} - \tfrac{1}{n_0}}

        \mathrm{LR}^- = \frac{FN/n_1}{TN/n_0}, \quad
        \operatorname{SE}(\ln \mathrm{LR}^-) =
        \sqrt{\tfrac{1}{FN} - \tfrac{1}{n_1} + \tfrac{1}{TN} - \tfrac{1}{n_0}}

    and the interval is :math:`\mathrm{LR}\, e^{\pm z\,\mathrm{SE}}`.
    Diagnostic odds ratio (Woolf's log method):

    .. math::

        \mathrm{DOR} = \frac{TP \cdot TN}{FP \cdot FN}, \quad
        \operatorname{SE}(\ln \mathrm{DOR}) =
        \sqrt{\tfrac{1}{TP} + \tfrac{1}{FP} + \tfrac{1}{FN} + \tfrac{1}{TN}}.

    Predictive values at an assumed prevalence :math:`\pi` (Bayes), with the
    standard logit interval of Mercaldo, Lau & Zhou (2007):

    .. math::

        \operatorname{logit} \mathrm{PPV}_\pi = \operatorname{logit}\pi + \ln \mathrm{LR}^+,
        \qquad
        \operatorname{logit} \mathrm{NPV}_\pi = -\operatorname{logit}\pi - \ln \mathrm{LR}^-,

    so their logit-scale standard errors are those of :math:`\ln \mathrm{LR}^\pm`
    above (the delta method), and the interval is back-transformed with the
    logistic function.

    **Zero cells.** With ``zero_cell_correction=0`` (the default) nothing is
    added: an LR or DOR whose denominator count is zero is reported as
    ``inf``, one whose numerator count is zero as ``0``, and 0/0 as NaN, with
    NaN confidence limits and a ``note`` naming the zero cell. With
    ``zero_cell_correction=c > 0`` and at least one zero cell, ``c`` is added
    to *every* cell (Haldane-Anscombe; ``c = 0.5`` is usual) for LR+, LR-, DOR
    and the adjusted predictive values only, and the ``note`` says so.
    Proportions (sensitivity, specificity, PPV, NPV, accuracy, prevalence)
    never use the correction: their intervals handle zero counts.

    A proportion whose denominator is zero (PPV when no case is index-test
    positive, NPV when none is negative) is NaN with NaN limits and a note.

    ``balanced_accuracy`` has no interval here (it is not a single binomial
    proportion); its limits are NaN and ``ci_method`` is ``"none"``.

    """
    if not isinstance(confusion, ConfusionMatrix):
        raise StudyvalError(f"confusion must be a ConfusionMatrix, got {type(confusion).__name__}")
    check_option(threshold_status, THRESHOLD_STATUSES, "threshold_status")
    alpha = check_alpha(alpha)
    check_option(ci_method, CI_METHODS, "ci_method")
    if prevalence is not None:
        if isinstance(prevalence, bool) or not isinstance(prevalence, (int, float, np.floating)):
            raise StudyvalError(f"prevalence must be a number in (0, 1), got {prevalence!r}")
        prevalence = float(prevalence)
        if not 0.0 < prevalence < 1.0:
            raise StudyvalError(f"prevalence must be in (0, 1), got {prevalence}")
    if isinstance(zero_cell_correction, bool) or not isinstance(
        zero_cell_correction, (int, float, np.floating)
    ):
        raise StudyvalError(
            f"zero_cell_correction must be a number >= 0, got {zero_cell_correction!r}"
        )
    c = float(zero_cell_correction)
    if not (math.isfinite(c) and c >= 0.0):
        raise StudyvalError(f"zero_cell_correction must be a finite number >= 0, got {c}")

    cm = confusion
    if cm.n_positive == 0 or cm.n_negative == 0:
        raise EstimationError(
            "the 2x2 table needs at least one reference-standard positive and one negative "
            f"(found {cm.n_positive} positive, {cm.n_negative} negative)"
        )
    z = float(stats.norm.ppf(1 - alpha / 2))
    level = 1 - alpha
    measures: list[Measure] = []
    sens = _proportion("sensitivity", cm.tp, cm.n_positive, alpha, ci_method, "")
    spec = _proportion("specificity", cm.tn, cm.n_negative, alpha, ci_method, "")
    measures += [sens, spec]
    measures.append(
        _proportion(
            "ppv",
            cm.tp,
            cm.n_test_positive,
            alpha,
            ci_method,
            f"no case has score >= {_fmt_threshold(cm.threshold)}",
        )
    )
    measures.append(
        _proportion(
            "npv",
            cm.tn,
            cm.n_test_negative,
            alpha,
            ci_method,
            f"no case has score < {_fmt_threshold(cm.threshold)}",
        )
    )
    measures.append(_proportion("accuracy", cm.tp + cm.tn, cm.n, alpha, ci_method, ""))
    measures.append(
        _no_ci(
            "balanced_accuracy",
            (sens.estimate + spec.estimate) / 2,
            level,
            "none",
            "no CI: balanced accuracy is not a single binomial proportion",
        )
    )
    measures.append(_proportion("prevalence", cm.n_positive, cm.n, alpha, ci_method, ""))

    tp, fp, fn, tn = (float(v) for v in (cm.tp, cm.fp, cm.fn, cm.tn))
    correction_note = ""
    if c > 0 and min(tp, fp, fn, tn) == 0:
        tp, fp, fn, tn = tp + c, fp + c, fn + c, tn + c
        correction_note = f"{c:g} added to every cell (zero cell present)"
    n1, n0 = tp + fn, fp + tn
    lr_pos, se_pos = _ratio_of_proportions(
        "lr_positive",
        tp,
        n1,
        fp,
        n0,
        z,
        alpha,
        "log (Simel 1991)",
        "no true positives (sensitivity = 0)",
        "no false positives (specificity = 1)",
    )
    lr_neg, se_neg = _ratio_of_proportions(
        "lr_negative",
        fn,
        n1,
        tn,
        n0,
        z,
        alpha,
        "log (Simel 1991)",
        "no false negatives (sensitivity = 1)",
        "no true negatives (specificity = 0)",
    )
    dor = _dor(tp, fp, fn, tn, z, alpha)
    ratio_measures = [lr_pos, lr_neg, dor]
    if prevalence is not None:
        ratio_measures.append(_adjusted_pv("ppv_adjusted", lr_pos, se_pos, prevalence, z, alpha))
        ratio_measures.append(_adjusted_pv("npv_adjusted", lr_neg, se_neg, prevalence, z, alpha))
    if correction_note:
        ratio_measures = [
            dataclasses.replace(m, note="; ".join(filter(None, [correction_note, m.note])))
            for m in ratio_measures
        ]
    measures += ratio_measures

    return AccuracyResult(
        confusion=cm,
        measures=tuple(measures),
        threshold=cm.threshold,
        threshold_status=threshold_status,
        positive=cm.positive,
        negative=cm.negative,
        alpha=alpha,
        ci_level=level,
        ci_method=ci_method,
        prevalence=prevalence,
        zero_cell_correction=c,
    )


def diagnostic_accuracy(
    y_true: Any,
    y_score: Any,
    *,
    positive: Any,
    threshold: float | Threshold,
    threshold_status: str,
    alpha: float = 0.05,
    ci_method: str | None = None,
    negative: str | None = None,
    prevalence: float | None = None,
    zero_cell_correction: float = 0.0,
    clusters: Any = None,
    n_resamples: int | None = None,
    seed: int | None = None,
) -> AccuracyResult:
    r"""Sensitivity, specificity, predictive values, LRs and DOR at a threshold.

    Decision rule: index test positive iff score >= ``threshold`` (a score
    equal to the threshold is positive).

    Parameters
    ----------
    y_true : array-like, shape (n,)
        Reference-standard labels; two classes, both present.
    y_score : array-like of float, shape (n,)
        Index-test scores; higher means *more likely positive*. Must be finite.
    positive : label
        The positive (diseased) class in ``y_true``; never inferred.
    threshold : float or Threshold
        Finite cut-off. A :class:`~studyval.analysis.thresholds.Threshold`
        must carry the same status as ``threshold_status``.
    threshold_status : {"pre-specified", "exploratory"}
        Required. ``"pre-specified"`` only for a threshold fixed before these
        data were seen; a threshold chosen on these data (e.g. by Youden's J)
        is ``"exploratory"`` and its accuracy is optimistic.
    alpha : float, default 0.05
        Two-sided error rate of every interval.
    ci_method : str, optional
        Without ``clusters``: the interval method for the proportions, one of
        :data:`~studyval.analysis.proportions.CI_METHODS` (default
        ``"wilson"``). With ``clusters``: ``"percentile"`` (default) or
        ``"bca"``, the interval of the cluster bootstrap.
    negative : str, optional
        Display label of the other class (e.g. ``"chronic"``); default
        ``"not <positive>"``.
    prevalence : float, optional
        Assumed population prevalence in (0, 1); adds ``ppv_adjusted`` and
        ``npv_adjusted`` (Bayes' theorem, logit CI). The plain ``ppv``/``npv``
        rows always use the sample prevalence.
    zero_cell_correction : float, default 0.0
        Added to every cell for LR+, LR-, DOR and adjusted predictive values
        when a cell is zero; 0 adds nothing (zero cells give ``inf``/0/NaN
        with a note). See :func:`accuracy_from_confusion`.
    clusters : array-like, shape (n,), optional
        Patient id of every row when a patient contributes several rows
        (vertebrae, knees, lesions). Every measure with a finite estimate
        then gets the interval of a patient-level (cluster) bootstrap:
        :func:`studyval.analysis.resampling.bootstrap_many` resamples
        patients with replacement and recomputes the measure from the
        weighted 2x2 table of each resample,

        .. math::

            TP^{*}_r = \sum_i w_{ri}\,[\text{pos}_i \wedge \text{test}_i],
            \quad\dots,\qquad w_{ri} = \text{times patient } g(i)
            \text{ was drawn in resample } r,

        with the same zero-cell rule per resample (Davison & Hinkley 1997,
        §3.8, doi:10.1017/CBO9780511802843; Field & Welsh 2007,
        doi:10.1111/j.1467-9868.2007.00593.x). Resamples where a measure is
        undefined or infinite (e.g. no false positive for LR+) are counted as
        failed and left out (the engine warns above 1 %); the estimate is
        that of the data. ``ci_method`` of every row then names the bootstrap
        (``"patient-level percentile bootstrap (2000 resamples)"``); a measure
        whose estimate is not finite keeps NaN limits, with a note.
    n_resamples : int, optional
        Bootstrap resamples (default 2000); only with ``clusters``.
    seed : int, optional
        Seed of the bootstrap; required with ``clusters``, refused without.

    Returns
    -------
    AccuracyResult
        ``.to_frame()`` gives one row per measure; ``.confusion`` the 2x2 counts;
        ``.bootstrap`` the bootstrap (with ``clusters``).

    Raises
    ------
    StudyvalError
        Missing or unknown ``threshold_status``, a Threshold whose status
        differs from ``threshold_status``, non-finite threshold, NaN/infinite
        scores, invalid labels, invalid ``alpha``/``ci_method``/
        ``prevalence``/``zero_cell_correction``; a bootstrap ``ci_method``,
        ``seed`` or ``n_resamples`` without ``clusters``; a proportion method
        with ``clusters``; bad ``clusters``.
    EstimationError
        ``positive`` absent or only one class present; with ``clusters``,
        fewer than 2 patients or a measure undefined in all resamples.

    Warns
    -----
    StatisticalWarning
        With ``clusters``, a measure undefined in more than 1 % of the resamples.

    See Also
    --------
    accuracy_from_confusion : the formulas and the zero-cell rules.

    """
    check_option(threshold_status, THRESHOLD_STATUSES, "threshold_status")
    spec = _bootstrap_spec(
        clusters=clusters,
        ci_method=ci_method,
        n_resamples=n_resamples,
        seed=seed,
        analytic="a binomial (Wilson) interval",
    )
    if isinstance(threshold, Threshold) and threshold.status != threshold_status:
        raise StudyvalError(
            f"threshold_status={threshold_status!r} contradicts the threshold, which is "
            f"{threshold.status}"
            + (f" ({threshold.method})" if threshold.method else "")
            + ": a threshold derived from the data is always exploratory"
        )
    cm = confusion_matrix(
        y_true, y_score, positive=positive, threshold=threshold, negative=negative
    )
    result = accuracy_from_confusion(
        cm,
        threshold_status=threshold_status,
        alpha=alpha,
        ci_method="wilson" if ci_method is None or spec is not None else ci_method,
        prevalence=prevalence,
        zero_cell_correction=zero_cell_correction,
    )
    if spec is None:
        return result
    is_pos = check_binary_outcome(y_true, positive)
    test_pos = check_scores(y_score, is_pos.shape[0]) >= cm.threshold
    cells = np.column_stack(
        [is_pos & test_pos, ~is_pos & test_pos, is_pos & ~test_pos, ~is_pos & ~test_pos]
    ).astype(np.float64)
    names = [m.measure for m in result.measures if math.isfinite(m.estimate)]
    c = result.zero_cell_correction

    def statistic(weights: np.ndarray) -> np.ndarray:
        tp, fp, fn, tn = (weights @ cells).T
        values = _weighted_measures(tp, fp, fn, tn, c, result.prevalence)
        return np.column_stack([values[name] for name in names])

    boot = _run_bootstrap(statistic, names, cells.shape[0], spec, result.alpha)
    corrected = c > 0 and min(cm.tp, cm.fp, cm.fn, cm.tn) == 0
    notes = {}
    for name in ("lr_positive", "lr_negative", "dor", "ppv_adjusted", "npv_adjusted"):
        parts = [f"{c:g} added to every cell (zero cell present)"] if corrected else []
        if name.endswith("_adjusted") and result.prevalence is not None:
            parts.append(f"at assumed prevalence {result.prevalence:g} (Bayes' theorem)")
        notes[name] = "; ".join(parts)
    return dataclasses.replace(
        result,
        measures=_bootstrapped(result.measures, boot, spec.label, notes),
        ci_method=spec.label,
        bootstrap=boot,
    )


def _weighted_measures(
    tp: np.ndarray,
    fp: np.ndarray,
    fn: np.ndarray,
    tn: np.ndarray,
    c: float,
    prevalence: float | None,
) -> dict[str, np.ndarray]:
    """Every measure of :func:`accuracy_from_confusion` from (weighted) cell counts, vectorised.

    The same formulas and zero-cell rule as the scalar code: NaN where a
    measure is undefined (0/0), ``inf`` where it is infinite.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        n1, n0 = tp + fn, fp + tn
        n = n1 + n0
        out = {
            "sensitivity": tp / n1,
            "specificity": tn / n0,
            "ppv": tp / (tp + fp),
            "npv": tn / (tn + fn),
            "accuracy": (tp + tn) / n,
            "prevalence": n1 / n,
        }
        out["balanced_accuracy"] = (out["sensitivity"] + out["specificity"]) / 2
        if c > 0:
            zero = np.minimum(np.minimum(tp, fp), np.minimum(fn, tn)) == 0
            tp, fp, fn, tn = (np.where(zero, v + c, v) for v in (tp, fp, fn, tn))
        n1, n0 = tp + fn, fp + tn
        lr_pos = (tp / n1) / (fp / n0)
        lr_neg = (fn / n1) / (tn / n0)
        out["lr_positive"] = lr_pos
        out["lr_negative"] = lr_neg
        out["dor"] = (tp * tn) / (fp * fn)
        if prevalence is not None:
            prior = math.log(prevalence / (1 - prevalence))
            out["ppv_adjusted"] = 1 / (1 + np.exp(-(prior + np.log(lr_pos))))
            out["npv_adjusted"] = 1 / (1 + np.exp(prior + np.log(lr_neg)))
    return out


def _bootstrapped(
    measures: Any, boot: Any, label: str, notes: dict[str, str] | None = None
) -> tuple[Measure, ...]:
    """``measures`` with the bootstrap limits of those in ``boot`` and ``ci_method`` = ``label``.

    A bootstrapped measure's note becomes ``notes.get(name, "")``: the notes of
    the analytic intervals (zero cells, "no CI") no longer apply.
    """
    notes = notes or {}
    out = []
    for m in measures:
        if m.measure in boot.names:
            b = boot[m.measure]
            out.append(
                dataclasses.replace(
                    m,
                    ci_low=b.ci_low,
                    ci_high=b.ci_high,
                    ci_method=label,
                    note=notes.get(m.measure, ""),
                )
            )
        else:
            note = "; ".join(
                filter(None, [m.note, "no bootstrap interval: the estimate is not finite"])
            )
            out.append(dataclasses.replace(m, ci_method=label, note=note))
    return tuple(out)


# --------------------------------------------------------------------------- #
# Intention to diagnose: non-evaluable index-test results counted as errors
# --------------------------------------------------------------------------- #
#: Measures of the intention-to-diagnose comparison (:class:`IntentionToDiagnose`).
ITD_MEASURES: tuple[str, ...] = ("sensitivity", "specificity")
_ITD_COLUMNS = [
    "analysis",
    "measure",
    "estimate",
    "ci_low",
    "ci_high",
    "ci_level",
    "numerator",
    "denominator",
    "n_nonevaluable",
    "ci_method",
    "note",
]


def intention_to_diagnose_confusion(
    confusion: ConfusionMatrix, *, n_nonevaluable_positive: int, n_nonevaluable_negative: int
) -> ConfusionMatrix:
    r"""The 2x2 table with every non-evaluable index-test result counted as a wrong call.

    A case the index test could not score (failed segmentation, unreadable
    series, an indeterminate output) is counted as a false negative when the
    reference standard is positive and as a false positive when it is negative
    (the intention-to-diagnose 3x2 table of Schuetz, Schlattmann & Dewey 2012,
    BMJ 345:e6717, doi:10.1136/bmj.e6717; STARD 2015 item 24, Bossuyt et al.,
    doi:10.1136/bmj.h5527):

    .. math::

        TP' = TP, \quad FN' = FN + u_1, \quad FP' = FP + u_0, \quad TN' = TN,

    with :math:`u_1, u_0` the non-evaluable reference positives and negatives.

    Parameters
    ----------
    confusion : ConfusionMatrix
        The per-protocol table of the evaluable cases.
    n_nonevaluable_positive, n_nonevaluable_negative : int
        Non-evaluable cases among the reference positives and negatives (0 allowed).

    Returns
    -------
    ConfusionMatrix
        Same threshold and labels, cells as above.

    Raises
    ------
    StudyvalError
        ``confusion`` not a ConfusionMatrix, or a count that is negative or not an integer.

    """
    if not isinstance(confusion, ConfusionMatrix):
        raise StudyvalError(f"confusion must be a ConfusionMatrix, got {type(confusion).__name__}")
    u1 = _as_count(n_nonevaluable_positive, "n_nonevaluable_positive")
    u0 = _as_count(n_nonevaluable_negative, "n_nonevaluable_negative")
    for name, value in (("n_nonevaluable_positive", u1), ("n_nonevaluable_negative", u0)):
        if value < 0:
            raise StudyvalError(f"{name} must be >= 0, got {value}")
    return dataclasses.replace(confusion, fn=confusion.fn + u1, fp=confusion.fp + u0)


@dataclasses.dataclass(frozen=True)
class IntentionToDiagnose(Result):
    """Sensitivity and specificity per protocol and by intention to diagnose, side by side.

    Attributes
    ----------
    per_protocol : AccuracyResult
        The evaluable cases only (non-evaluable results excluded).
    intention_to_diagnose : AccuracyResult
        Every non-evaluable result counted as a wrong call
        (:func:`intention_to_diagnose_confusion`).
    n_nonevaluable_positive, n_nonevaluable_negative : int
        Non-evaluable reference positives (counted as false negatives) and
        negatives (counted as false positives).

    """

    per_protocol: AccuracyResult
    intention_to_diagnose: AccuracyResult
    n_nonevaluable_positive: int
    n_nonevaluable_negative: int

    def to_frame(self) -> pd.DataFrame:
        """Four rows: ``analysis`` (per-protocol, intention-to-diagnose) by ``measure``.

        Columns ``analysis, measure, estimate, ci_low, ci_high, ci_level,
        numerator, denominator, n_nonevaluable, ci_method, note``;
        ``n_nonevaluable`` is the number of non-evaluable cases in that
        measure's reference class (excluded per protocol, counted as errors by
        intention to diagnose).
        """
        uncounted = {
            "sensitivity": self.n_nonevaluable_positive,
            "specificity": self.n_nonevaluable_negative,
        }
        rows = []
        for analysis, res in (
            ("per-protocol", self.per_protocol),
            ("intention-to-diagnose", self.intention_to_diagnose),
        ):
            for name in ITD_MEASURES:
                m = res.measure(name)
                rows.append(
                    {
                        "analysis": analysis,
                        "measure": name,
                        "estimate": m.estimate,
                        "ci_low": m.ci_low,
                        "ci_high": m.ci_high,
                        "ci_level": m.ci_level,
                        "numerator": m.numerator,
                        "denominator": m.denominator,
                        "n_nonevaluable": uncounted[name],
                        "ci_method": m.ci_method,
                        "note": m.note,
                    }
                )
        frame = pd.DataFrame(rows, columns=_ITD_COLUMNS)
        for col in ("numerator", "denominator", "n_nonevaluable"):
            frame[col] = frame[col].astype("Int64")
        return frame


def intention_to_diagnose(
    confusion: ConfusionMatrix,
    *,
    n_nonevaluable_positive: int,
    n_nonevaluable_negative: int,
    threshold_status: str,
    alpha: float = 0.05,
    ci_method: str = "wilson",
) -> IntentionToDiagnose:
    r"""Sensitivity and specificity per protocol and by intention to diagnose.

    Per protocol, the non-evaluable results are excluded:
    :math:`Se = TP/(TP + FN)`, :math:`Sp = TN/(TN + FP)`. By intention to
    diagnose they count as errors (:func:`intention_to_diagnose_confusion`):

    .. math::

        Se_{ITD} = \frac{TP}{TP + FN + u_1}, \qquad
        Sp_{ITD} = \frac{TN}{TN + FP + u_0},

    each with the same binomial interval (``ci_method``) as the per-protocol
    estimate, from :func:`accuracy_from_confusion`. Schuetz GM, Schlattmann P,
    Dewey M (2012), Use of 3x2 tables with an intention to diagnose approach
    to assess clinical performance of diagnostic tests: meta-analytical
    evaluation of coronary CT angiography studies, BMJ 345:e6717,
    doi:10.1136/bmj.e6717; STARD 2015 item 24 (Cohen et al. 2016,
    doi:10.1136/bmjopen-2016-012799). With no non-evaluable case the two
    analyses coincide.

    Parameters
    ----------
    confusion : ConfusionMatrix
        The per-protocol 2x2 table of the evaluable cases.
    n_nonevaluable_positive, n_nonevaluable_negative : int
        Non-evaluable cases among the reference-standard positives and negatives.
    threshold_status : {"pre-specified", "exploratory"}
        As for :func:`accuracy_from_confusion`.
    alpha : float, default 0.05
        Two-sided error rate of the intervals.
    ci_method : str, default "wilson"
        Binomial interval, one of :data:`~studyval.analysis.proportions.CI_METHODS`.

    Returns
    -------
    IntentionToDiagnose

    Raises
    ------
    StudyvalError
        Invalid counts, ``threshold_status``, ``alpha`` or ``ci_method``.
    EstimationError
        No evaluable reference positive or negative.

    """
    kwargs = {"threshold_status": threshold_status, "alpha": alpha, "ci_method": ci_method}
    itd_cm = intention_to_diagnose_confusion(
        confusion,
        n_nonevaluable_positive=n_nonevaluable_positive,
        n_nonevaluable_negative=n_nonevaluable_negative,
    )
    return IntentionToDiagnose(
        per_protocol=accuracy_from_confusion(confusion, **kwargs),
        intention_to_diagnose=accuracy_from_confusion(itd_cm, **kwargs),
        n_nonevaluable_positive=int(n_nonevaluable_positive),
        n_nonevaluable_negative=int(n_nonevaluable_negative),
    )
