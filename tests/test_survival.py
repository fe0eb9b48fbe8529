"""Tests for the facade studyval.analysis.survival.

The survival code lives in one module per concept, each with its own tests:

* ``studyval.analysis.kaplan_meier`` -- ``tests/test_survival_kaplan_meier.py``
  (Kaplan-Meier, log-rank, censoring Kaplan-Meier);
* ``studyval.analysis.concordance`` -- ``tests/test_survival_concordance.py``
  (Harrell's and Uno's C);
* ``studyval.analysis.cox`` -- ``tests/test_survival_cox.py`` (Cox regression
  and its predictions);
* ``studyval.analysis.cox_zph`` -- ``tests/test_survival_cox_zph.py`` (PH test);
* second oracles (lifelines, pingouin) -- ``tests/test_second_oracles.py``.

``studyval.analysis.survival`` re-exports their public names and the private
helpers that other modules import from it. The tests here check that the
facade's ``__all__`` is unchanged, that every name is the very object of its
concept module, and -- by reading the sources -- that every name imported from
``studyval.analysis.survival`` (or read as ``sv.<name>`` / ``survival.<name>``
after ``from studyval.analysis import survival as sv``) anywhere in
``analysis/``, ``studyval/``, ``models/``, ``tests/`` and ``bench/`` resolves.
"""

from __future__ import annotations

import pytest
from facade_checks import check_concept_module, check_facade_name, check_names_used_resolve

from studyval.analysis import survival

PUBLIC = {
    "ConcordanceResult": "concordance",
    "CoxResult": "cox",
    "KaplanMeierResult": "kaplan_meier",
    "LogRankResult": "kaplan_meier",
    "ZPHResult": "cox_zph",
    "cox": "cox",
    "cox_zph": "cox_zph",
    "harrell_c": "concordance",
    "kaplan_meier": "kaplan_meier",
    "logrank": "kaplan_meier",
    "uno_c": "concordance",
}
# private helpers imported from the facade by other modules and tests
PRIVATE = {
    "_km_censoring": "kaplan_meier",  # survival_validation, competing_risks, cirrhosis_sarcopenia
    "_CensoringKM": "kaplan_meier",  # the return type of _km_censoring (documented API)
    "_concordance_counts": "concordance",  # tests
    "_pair_sums": "concordance",  # tests
}
CONCEPT_MODULES = ("_survival_common", "kaplan_meier", "concordance", "cox", "cox_zph")


def test_facade_all_is_unchanged():
    assert sorted(survival.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", sorted({**PUBLIC, **PRIVATE}))
def test_facade_name_is_the_concept_module_object(name):
    check_facade_name("survival", {**PUBLIC, **PRIVATE}[name], name)


def test_every_name_used_through_the_facade_resolves():
    check_names_used_resolve(
        "survival",
        set(PUBLIC) | set(PRIVATE),
        {"cox", "cox_zph", "harrell_c", "kaplan_meier", "uno_c", "_km_censoring"},
    )


@pytest.mark.parametrize("name", CONCEPT_MODULES)
def test_concept_modules_are_small_and_documented(name):
    check_concept_module(name)
