r"""Agreement between raters and between methods of measurement (facade).

The code lives in one module per concept; this module re-exports their public
names (and the private helper that the tests imported from here), so
``from studyval.analysis.agreement import icc`` and
``agreement.weighted_kappa(...)`` keep working:

* :mod:`studyval.analysis.kappa` -- :func:`weighted_kappa` /
  :func:`cohen_kappa` / :func:`kappa_from_table` (:class:`KappaResult`):
  Cohen's kappa for two raters on an ordered categorical scale, unweighted or
  with linear / quadratic agreement weights, with the large-sample standard
  errors of Fleiss, Cohen & Everitt (1969), or with ``clusters=`` (several
  rated units per patient) a patient-level cluster-bootstrap interval
  (:mod:`studyval.analysis.resampling`).
* :mod:`studyval.analysis.icc` -- :func:`icc` (:class:`ICCResult`,
  :class:`ICCForm`): the six intraclass correlations of Shrout & Fleiss (1979)
  from a two-way ANOVA, with the F-based confidence intervals of
  ``psych::ICC`` (McGraw & Wong 1996 for ICC(A,1)).
* :mod:`studyval.analysis.bland_altman` -- :func:`bland_altman`
  (:class:`BlandAltmanResult`): bias and limits of agreement between two
  methods (Bland & Altman 1986, 1999), with interval estimates of each limit,
  a proportional-bias regression, and the Bland & Altman (2007) analysis for
  several measurement pairs per patient.

Every function takes plain arrays or a long table, validates them (a label
outside the declared categories, a missing rating, unequal lengths are errors
that name the position), and returns a frozen :class:`~studyval.results.Result`.
Figures are drawn from the tables these results return
(:mod:`studyval.figures.agreement`), never here.
"""

from __future__ import annotations

from studyval.analysis.bland_altman import BlandAltmanResult, bland_altman
from studyval.analysis.bland_altman import _repeated_pairs_statistic as _repeated_pairs_statistic
from studyval.analysis.icc import ICCForm, ICCResult, icc
from studyval.analysis.kappa import KappaResult, cohen_kappa, kappa_from_table, weighted_kappa

__all__ = [
    "BlandAltmanResult",
    "ICCForm",
    "ICCResult",
    "KappaResult",
    "bland_altman",
    "cohen_kappa",
    "icc",
    "kappa_from_table",
    "weighted_kappa",
]
