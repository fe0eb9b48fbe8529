"""Validation statistics: pure functions returning frozen result objects.

Imported as ``studyval.analysis``. Modules:

* :mod:`~studyval.analysis.discrimination` -- AUC with DeLong CIs, paired,
  unpaired and k-model comparisons, ROC coordinates.
* :mod:`~studyval.analysis.accuracy` -- 2x2 tables, sensitivity, specificity,
  PPV, NPV, accuracy, likelihood ratios with named CI methods.
* :mod:`~studyval.analysis.proportions` -- binomial confidence intervals.
* :mod:`~studyval.analysis.thresholds` -- pre-specified and exploratory cut-offs.
* :mod:`~studyval.analysis.sample_size` -- Buderer, Obuchowski / Hanley-McNeil,
  and checks of registered numbers.

Conventions: a higher score always means *more likely positive*; the positive
class is always an explicit argument; nothing is dropped silently.
"""
