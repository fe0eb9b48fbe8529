"""Tests for studyval.figures.agreement: Bland-Altman plots and confusion (agreement) tables.

The figures are drawn from the tables of
:func:`studyval.analysis.bland_altman.bland_altman` and
:func:`studyval.analysis.kappa.weighted_kappa` (data as in
``tests/test_bland_altman.py`` and ``tests/test_kappa.py``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from studyval.analysis.bland_altman import bland_altman
from studyval.analysis.kappa import weighted_kappa
from studyval.errors import StudyvalError
from studyval.figures.agreement import bland_altman_figure, confusion_matrix_figure

# --------------------------------------------------------------------------- #
# Data
# --------------------------------------------------------------------------- #
# 40 knees graded (Kellgren-Lawrence 0..4) by two readers; generated once with
# numpy (seed 7); grade 4 is used by nobody.
KL_A = [2, 3, 2, 0, 1, 3, 0, 2, 2, 1, 1, 0, 0, 1, 1, 1, 3, 2, 2, 3,
        0, 0, 2, 0, 0, 1, 1, 3, 2, 1, 1, 0, 0, 0, 2, 0, 1, 0, 2, 0]  # fmt: skip
KL_B = [2, 3, 3, 1, 0, 3, 1, 3, 2, 1, 0, 0, 0, 0, 1, 1, 3, 2, 2, 3,
        0, 0, 2, 0, 0, 0, 1, 3, 2, 1, 1, 0, 0, 1, 2, 0, 1, 1, 2, 0]  # fmt: skip
KL = list(range(5))

# Bland & Altman (1986), Lancet 327:307-310, Table 1: PEFR (l/min) of 17
# subjects, two readings with the Wright and with the mini Wright meter.
WRIGHT_1 = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
MINI_1 = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]

# =========================================================================== figures


def test_bland_altman_figure_is_drawn_from_the_tables():
    r = bland_altman(WRIGHT_1, MINI_1)
    fig = bland_altman_figure(r.points_frame(), r.to_frame(), ylabel="Wright - mini Wright (l/min)")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    levels = sorted(line.get_ydata()[0] for line in ax.get_lines())
    assert levels == pytest.approx(sorted([r.lower_loa, r.bias, r.upper_loa, 0.0]))
    assert len(ax.collections[0].get_offsets()) == 17
    texts = " ".join(t.get_text() for t in ax.texts)
    assert f"{r.upper_loa:.2f}" in texts and "95% CI" in texts


def test_confusion_matrix_figure_writes_counts():
    r = weighted_kappa(KL_A, KL_B, weights="linear", categories=KL)
    fig = confusion_matrix_figure(r.confusion_frame())
    ax = fig.axes[0]
    cell_texts = [t.get_text() for t in ax.texts]
    assert len(cell_texts) == 25
    assert cell_texts[0] == str(r.counts[0][0])
    assert ax.get_xlabel() == "rater_b" and ax.get_ylabel() == "rater_a"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3", "4"]


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: bland_altman_figure(
                pd.DataFrame({"mean": [1.0]}), bland_altman(WRIGHT_1, MINI_1).to_frame()
            ),
            "points lacks column",
            id="points-column",
        ),
        pytest.param(
            lambda: bland_altman_figure(
                bland_altman(WRIGHT_1, MINI_1).points_frame(),
                bland_altman(WRIGHT_1, MINI_1).to_frame().iloc[[0, 1]],
            ),
            "no row with quantity == 'upper_loa'",
            id="summary-row",
        ),
        pytest.param(
            lambda: confusion_matrix_figure(pd.DataFrame([[1, 2, 3], [4, 5, 6]])),
            "square",
            id="not-square",
        ),
        pytest.param(
            lambda: confusion_matrix_figure(pd.DataFrame([[1, -2], [3, 4]])),
            "non-negative",
            id="negative",
        ),
        pytest.param(
            lambda: confusion_matrix_figure(np.eye(2)), "must be a pandas DataFrame", id="array"
        ),
    ],
)
def test_figure_errors(call, match):
    with pytest.raises(StudyvalError, match=match):
        call()
