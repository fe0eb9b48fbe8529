"""Tests for the facade studyval.analysis.agreement.

The agreement code lives in one module per concept, each with its own tests:

* ``studyval.analysis.kappa`` -- ``tests/test_kappa.py`` (Cohen's kappa,
  weighted, with a cluster bootstrap);
* ``studyval.analysis.icc`` -- ``tests/test_icc.py`` (the six intraclass
  correlations);
* ``studyval.analysis.bland_altman`` -- ``tests/test_bland_altman.py`` (bias
  and limits of agreement, repeated pairs);
* the figures drawn from their tables (``studyval.figures.agreement``) --
  ``tests/test_figures_agreement.py``.

``studyval.analysis.agreement`` re-exports their public names and the private
helper that the tests imported from it. The tests here check that the facade's
``__all__`` is unchanged, that every name is the very object of its concept
module, that every name imported from ``studyval.analysis.agreement`` (or read
as ``agreement.<name>`` after ``from studyval.analysis import agreement``)
anywhere in ``analysis/``, ``studyval/``, ``models/``, ``tests/`` and
``bench/`` resolves, and that the three results are frozen dataclasses.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd
import pytest
from facade_checks import check_concept_module, check_facade_name, check_names_used_resolve

from studyval.analysis import agreement
from studyval.analysis.agreement import (
    BlandAltmanResult,
    ICCResult,
    KappaResult,
    bland_altman,
    icc,
    weighted_kappa,
)

PUBLIC = {
    "BlandAltmanResult": "bland_altman",
    "ICCForm": "icc",
    "ICCResult": "icc",
    "KappaResult": "kappa",
    "bland_altman": "bland_altman",
    "cohen_kappa": "kappa",
    "icc": "icc",
    "kappa_from_table": "kappa",
    "weighted_kappa": "kappa",
}
# private helpers re-exported for callers that imported them from the facade
PRIVATE = {
    "_repeated_pairs_statistic": "bland_altman",  # was imported by tests/test_agreement.py
}
CONCEPT_MODULES = ("kappa", "icc", "bland_altman")

# --------------------------------------------------------------------------- #
# Data (as in tests/test_kappa.py, tests/test_icc.py, tests/test_bland_altman.py)
# --------------------------------------------------------------------------- #
# 40 knees graded (Kellgren-Lawrence 0..4) by two readers; generated once with
# numpy (seed 7); grade 4 is used by nobody.
KL_A = [2, 3, 2, 0, 1, 3, 0, 2, 2, 1, 1, 0, 0, 1, 1, 1, 3, 2, 2, 3,
        0, 0, 2, 0, 0, 1, 1, 3, 2, 1, 1, 0, 0, 0, 2, 0, 1, 0, 2, 0]  # fmt: skip
KL_B = [2, 3, 3, 1, 0, 3, 1, 3, 2, 1, 0, 0, 0, 0, 1, 1, 3, 2, 2, 3,
        0, 0, 2, 0, 0, 0, 1, 3, 2, 1, 1, 0, 0, 1, 2, 0, 1, 1, 2, 0]  # fmt: skip
KL = list(range(5))
# Shrout & Fleiss (1979) Table 2: 6 targets x 4 judges (?psych::ICC).
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
# Bland & Altman (1986), Lancet 327:307-310, Table 1: PEFR (l/min) of 17
# subjects, two readings with the Wright and with the mini Wright meter.
WRIGHT_1 = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_1 = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]


def _long(y: np.ndarray) -> pd.DataFrame:
    n, k = y.shape
    return pd.DataFrame(
        [(f"S{i + 1}", f"J{j + 1}", y[i, j]) for i in range(n) for j in range(k)],
        columns=["target", "rater", "rating"],
    )


def _icc(y: np.ndarray, **kw) -> ICCResult:
    return icc(_long(y), targets="target", raters="rater", ratings="rating", **kw)


def test_facade_all_is_unchanged():
    assert sorted(agreement.__all__) == sorted(PUBLIC)


@pytest.mark.parametrize("name", sorted({**PUBLIC, **PRIVATE}))
def test_facade_name_is_the_concept_module_object(name):
    check_facade_name("agreement", {**PUBLIC, **PRIVATE}[name], name)


def test_every_name_used_through_the_facade_resolves():
    check_names_used_resolve(
        "agreement", set(PUBLIC) | set(PRIVATE), {"bland_altman", "icc", "weighted_kappa"}
    )


@pytest.mark.parametrize("name", CONCEPT_MODULES)
def test_concept_modules_are_small_and_documented(name):
    check_concept_module(name)


def test_results_are_frozen_dataclasses():
    for result in (
        weighted_kappa(KL_A, KL_B),
        _icc(SF),
        bland_altman(WRIGHT_1, MINI_1),
    ):
        assert dataclasses.is_dataclass(result)
        with pytest.raises(dataclasses.FrozenInstanceError):
            result.n = 0  # type: ignore[misc]
    assert isinstance(weighted_kappa(KL_A, KL_B), KappaResult)
    assert isinstance(bland_altman(WRIGHT_1, MINI_1), BlandAltmanResult)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        weighted_kappa(KL_A, KL_B, weights="linear", categories=KL)  # no stray warnings
