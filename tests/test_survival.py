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

import importlib
from pathlib import Path

import pytest
from facade_checks import names_used_through

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
    mod = importlib.import_module(f"studyval.analysis.{({**PUBLIC, **PRIVATE})[name]}")
    assert getattr(survival, name) is getattr(mod, name)


def test_every_name_used_through_the_facade_resolves():
    used = names_used_through("survival")
    # the scan finds the known users (a guard against a scan that silently finds nothing)
    assert {"cox", "cox_zph", "harrell_c", "kaplan_meier", "uno_c", "_km_censoring"} <= set(used)
    missing = {n: where for n, where in used.items() if not hasattr(survival, n)}
    assert not missing, f"names used through the facade but not re-exported: {missing}"
    # and the facade documents each of them: public (__all__) or a listed private helper
    assert set(used) <= set(PUBLIC) | set(PRIVATE)


@pytest.mark.parametrize("name", CONCEPT_MODULES)
def test_concept_modules_are_small_and_documented(name):
    mod = importlib.import_module(f"studyval.analysis.{name}")
    assert mod.__doc__ and len(mod.__doc__.strip()) > 100
    n_lines = len(Path(mod.__file__).read_text(encoding="utf-8").splitlines())
    assert n_lines <= 1400, f"{name}.py has {n_lines} lines"
