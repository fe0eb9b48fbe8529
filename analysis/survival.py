r"""Survival analysis (facade): Kaplan-Meier, log-rank, Cox regression, PH test, concordance.

The code lives in one module per concept; this module re-exports their public
names (and the private helpers that other modules and tests import from here),
so ``from studyval.analysis.survival import cox`` and ``sv._km_censoring`` keep
working:

* :mod:`studyval.analysis.kaplan_meier` -- :func:`kaplan_meier`
  (:class:`KaplanMeierResult`), :func:`logrank` (:class:`LogRankResult`) and
  the censoring Kaplan-Meier :func:`_km_censoring` (:class:`_CensoringKM`).
* :mod:`studyval.analysis.concordance` -- :func:`harrell_c`, :func:`uno_c`
  (:class:`ConcordanceResult`) and the pair counts :func:`_concordance_counts`,
  :func:`_pair_sums`.
* :mod:`studyval.analysis.cox` -- :func:`cox` (:class:`CoxResult`, with
  ``predict_risk``, ``predict_survival``, ``predict_risk_at``).
* :mod:`studyval.analysis.cox_zph` -- :func:`cox_zph` (:class:`ZPHResult`).
* :mod:`studyval.analysis._survival_common` -- the input checks they share.

Conventions (read these first)
------------------------------
* **Risk, higher = worse.** Every function that takes a prediction takes a
  *risk* score: a higher value means an earlier expected event (a Cox linear
  predictor, a predicted event probability at a horizon, a network's logit).
  This is ``reverse = TRUE`` in R's ``survival::concordance``, the
  ``estimate`` of scikit-survival, and the *negative* of what lifelines'
  ``concordance_index`` expects.
* ``time`` is the follow-up time (any unit, finite, ``>= 0``; a time of 0 is
  allowed as in R's ``Surv``), ``event`` is 1 (or ``True``) for an observed
  event and 0 (``False``) for right censoring. Other codes, missing values and
  negative times are errors naming the position.
* Times are compared **exactly**. R's ``survival`` (>= 3.0) first merges times
  that differ only by floating-point noise (``aeqSurv``, ``timefix = TRUE``);
  for times read from a file or computed as differences of dates the two agree.
* Nothing is dropped silently; results are frozen dataclasses
  (:class:`studyval.results.Result`) with tidy tables.

Oracles: R 4.2 with ``survival`` 3.5 (``survfit``, ``survdiff``, ``coxph``,
``basehaz``, ``cox.zph``, ``concordance``); see ``tests/test_survival_*.py``.
Second oracles: lifelines and pingouin, ``tests/test_second_oracles.py``.

Shared helpers for sibling modules (stable API)
-----------------------------------------------
:func:`kaplan_meier` and :func:`_km_censoring` are imported by
``survival_validation.py`` and ``competing_risks.py``. ``_km_censoring(time,
event)`` returns a :class:`_CensoringKM` with ``G(t)`` (``.at`` / call) and the
left-continuous ``G(t-)`` (``.left``), the reverse Kaplan-Meier used for
inverse-probability-of-censoring weights.

References are in the module of each method.
"""

from __future__ import annotations

from studyval.analysis.concordance import ConcordanceResult, harrell_c, uno_c
from studyval.analysis.concordance import _concordance_counts as _concordance_counts
from studyval.analysis.concordance import _pair_sums as _pair_sums
from studyval.analysis.cox import CoxResult, cox
from studyval.analysis.cox_zph import ZPHResult, cox_zph
from studyval.analysis.kaplan_meier import KaplanMeierResult, LogRankResult, kaplan_meier, logrank
from studyval.analysis.kaplan_meier import _CensoringKM as _CensoringKM
from studyval.analysis.kaplan_meier import _km_censoring as _km_censoring

__all__ = [
    "ConcordanceResult",
    "CoxResult",
    "KaplanMeierResult",
    "LogRankResult",
    "ZPHResult",
    "cox",
    "cox_zph",
    "harrell_c",
    "kaplan_meier",
    "logrank",
    "uno_c",
]
