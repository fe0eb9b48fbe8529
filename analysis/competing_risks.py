r"""Competing risks (facade): cumulative incidence, Gray's test, Fine-Gray, cause-specific Cox, Brier.

The code lives in one module per concept; this module re-exports their public
names (and the private helper that other modules import from here), so
``from studyval.analysis.competing_risks import fine_gray`` and
``competing_risks.cumulative_incidence(...)`` keep working:

* :mod:`studyval.analysis.cumulative_incidence` -- :func:`cumulative_incidence`
  (:class:`CumulativeIncidenceResult`), Aalen-Johansen cumulative incidence of
  one cause with the variance ``cmprsk::cuminc`` reports and log(-log) limits;
  :func:`gray_test` (:class:`GrayTestResult`), Gray's (1988) K-sample test of
  equal cumulative incidence, as ``cmprsk::cuminc(ftime, fstatus, group)$Tests``.
* :mod:`studyval.analysis.fine_gray` -- :func:`fine_gray`
  (:class:`FineGrayResult`), Fine & Gray (1999) proportional
  subdistribution-hazards regression with censoring weights and the robust
  variance of ``cmprsk::crr`` (own implementation; no R or cmprsk needed).
* :mod:`studyval.analysis.cause_specific_cox` -- :func:`cause_specific_cox`,
  the companion cause-specific Cox model (other causes censored), fitted by
  :func:`studyval.analysis.survival.cox`; :func:`predict_cumulative_incidence`
  (:class:`PredictedCumulativeIncidence`), predicted cumulative incidence at
  horizons from one cause-specific Cox model per cause (Benichou & Gail 1990),
  as ``riskRegression::predictRisk`` of a ``CSC`` fit.
* :mod:`studyval.analysis.competing_risks_brier` -- :func:`brier_competing`
  (:class:`CompetingRisksBrierResult`), IPCW Brier score of a predicted
  cumulative incidence at a horizon, its Aalen-Johansen null model and the IPA
  (Graf et al. 1999; Schoop et al. 2011), as ``riskRegression::Score``.
* :mod:`studyval.analysis._competing_risks_common` -- the input checks they
  share (:func:`_check_event_codes` is re-exported here).

Event coding
------------
``event_code`` is 0 for censored and a positive integer 1..K for the cause of
the event; the cause of interest is always an explicit ``cause=``. The
declared causes are ``causes=`` when given (any other code is an error naming
its position) and otherwise 1..K with K the largest code present. Codes that
are negative, fractional or missing are errors. With ``cause=k``, every other
positive code is a competing event.

Ties in time: at a time with events and censorings the events come first
(censored subjects are still at risk), as in ``survival`` and ``cmprsk``.

Oracles: R 4.2 with cmprsk 2.2-11 (``cuminc``, ``timepoints``, ``crr``),
survival 3.5 (``coxph``, ``survfit(Surv(time, factor(status)) ~ 1)``) and
riskRegression 2022.11.28 (``CSC``, ``predictRisk``, ``Score``); R calls
beside the expected values in the test file of each module
(``tests/test_cumulative_incidence.py``, ``tests/test_fine_gray.py``,
``tests/test_cause_specific_cox.py``, ``tests/test_competing_risks_brier.py``).

References are in the module of each method.
"""

from __future__ import annotations

from studyval.analysis._competing_risks_common import _check_event_codes as _check_event_codes
from studyval.analysis.cause_specific_cox import (
    PredictedCumulativeIncidence,
    cause_specific_cox,
    predict_cumulative_incidence,
)
from studyval.analysis.competing_risks_brier import CompetingRisksBrierResult, brier_competing
from studyval.analysis.cumulative_incidence import (
    CumulativeIncidenceResult,
    GrayTestResult,
    cumulative_incidence,
    gray_test,
)
from studyval.analysis.fine_gray import FineGrayResult, fine_gray

__all__ = [
    "CompetingRisksBrierResult",
    "CumulativeIncidenceResult",
    "FineGrayResult",
    "GrayTestResult",
    "PredictedCumulativeIncidence",
    "brier_competing",
    "cause_specific_cox",
    "cumulative_incidence",
    "fine_gray",
    "gray_test",
    "predict_cumulative_incidence",
]
