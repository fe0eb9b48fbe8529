"""Tests for the facade studyval.analysis.competing_risks.

The competing-risks code lives in one module per concept, each with its own tests:

* ``studyval.analysis.cumulative_incidence`` -- ``tests/test_cumulative_incidence.py``
  (Aalen-Johansen cumulative incidence, Gray's test, event-code checks);
* ``studyval.analysis.fine_gray`` -- ``tests/test_fine_gray.py`` (Fine-Gray
  regression);
* ``studyval.analysis.cause_specific_cox`` -- ``tests/test_cause_specific_cox.py``
  (cause-specific Cox models and the cumulative incidence they predict);
* ``studyval.analysis.competing_risks_brier`` --
  ``tests/test_competing_risks_brier.py`` (Brier score, null model, IPA).

``studyval.analysis.competing_risks`` re-exports their public names and the
private helper that other modules imported from it. The tests here check that
the facade's ``__all__`` is unchanged, that every name is the very object of its
concept module, and -- by reading the sources -- that every name imported from
``studyval.analysis.competing_risks`` (or read as ``competing_risks.<name>`` /
``cr.<name>`` after ``from studyval.analysis import competing_risks as cr``)
anywhere in ``analysis/``, ``studyval/``, ``models/``, ``tests/`` and
``bench/`` resolves.
"""

from __future__ import annotations

import pytest
from facade_checks import check_concept_module, check_facade_name, check_names_used_resolve

from studyval.analysis import competing_risks

PUBLIC = {
    "CompetingRisksBrierResult": "competing_risks_brier",
    "CumulativeIncidenceResult": "cumulative_incidence",
    "FineGrayResult": "fine_gray",
    "GrayTestResult": "cumulative_incidence",
    "PredictedCumulativeIncidence": "cause_specific_cox",
    "brier_competing": "competing_risks_brier",
    "cause_specific_cox": "cause_specific_cox",
    "cumulative_incidence": "cumulative_incidence",
    "fine_gray": "fine_gray",
    "gray_test": "cumulative_incidence",
    "predict_cumulative_incidence": "cause_specific_cox",
}
# private helpers re-exported for callers that imported them from the facade
PRIVATE = {
    "_check_event_codes": "_competing_risks_common",  # was imported by survival_validation
}
CONCEPT_MODULES = (
    "_competing_risks_common",
    "cumulative_incidence",
    "fine_gray",
    "cause_specific_cox",
    "competing_risks_brier",
)


def test_facade_all_is_unchanged():
    assert sorted(competing_risks.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", sorted({**PUBLIC, **PRIVATE}))
def test_facade_name_is_the_concept_module_object(name):
    check_facade_name("competing_risks", {**PUBLIC, **PRIVATE}[name], name)


def test_every_name_used_through_the_facade_resolves():
    check_names_used_resolve(
        "competing_risks",
        set(PUBLIC) | set(PRIVATE),
        {"cumulative_incidence", "fine_gray", "brier_competing"},
    )


@pytest.mark.parametrize("name", CONCEPT_MODULES)
def test_concept_modules_are_small_and_documented(name):
    check_concept_module(name)
