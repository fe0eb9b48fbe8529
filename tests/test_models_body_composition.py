"""Tests for studyval.models.body_composition and the L3 phantom.

Oracle: the analytic areas of the phantom's ellipses (pi * a * b); the
measured muscle area on the rasterised, noisy slice must be within 2 % of
the truth. SMI cut-offs in the examples are Prado 2008 (52.4 / 38.5 cm²/m²),
passed in as the protocol would.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from studyval.models.body_composition import muscle_area_cm2, sarcopenia, skeletal_muscle_index
from studyval.models.phantoms import LABELS_L3, l3_phantom

PRADO = {"male": 52.4, "female": 38.5}


@pytest.mark.parametrize(
    ("spacing", "seed"),
    [
        pytest.param((1.5, 1.5), 0, id="1.5mm"),
        pytest.param((0.8, 0.8), 1, id="0.8mm"),
        pytest.param((1.0, 1.6), 2, id="anisotropic"),
    ],
)
def test_muscle_area_within_2_percent(spacing, seed):
    p = l3_phantom(shape=(int(384 / spacing[0]), int(384 / spacing[1])), spacing=spacing, seed=seed)
    truth_cm2 = p.true_area_mm2["muscle"] / 100.0
    seg = p.label == LABELS_L3["muscle"]
    area, n = muscle_area_cm2(seg, p.spacing, image=p.image)
    assert area == pytest.approx(truth_cm2, rel=0.02)
    assert n == int(seg.sum())  # noise sigma 8 HU keeps every muscle pixel in -29..150 HU
    # HU thresholding alone (no segmentation) also finds the muscle on this phantom
    area_hu, _ = muscle_area_cm2(np.ones_like(seg), p.spacing, image=p.image)
    assert area_hu == pytest.approx(truth_cm2, rel=0.02)


def test_other_compartments_match_truth():
    p = l3_phantom(seed=4)
    px = p.spacing[0] * p.spacing[1]
    for name in ("subcutaneous_fat", "visceral_fat", "bone"):
        measured = (p.label == LABELS_L3[name]).sum() * px
        assert measured == pytest.approx(p.true_area_mm2[name], rel=0.02), name


def test_smi_and_sarcopenia():
    mask = np.zeros((100, 100), dtype=bool)
    mask[:50, :40] = True  # 2000 px of 1 mm x 1.5 mm = 3000 mm2 = 30 cm2
    r = skeletal_muscle_index(mask, (1.0, 1.5), height_m=0.8)
    assert r.muscle_area_cm2 == pytest.approx(30.0)
    assert r.smi_cm2_m2 == pytest.approx(30.0 / 0.64)
    assert r.n_pixels == 2000 and r.pixel_area_mm2 == 1.5
    assert list(r.to_frame().columns) == [
        "muscle_area_cm2",
        "height_m",
        "smi_cm2_m2",
        "n_pixels",
        "pixel_area_mm2",
    ]
    assert sarcopenia(45.0, sex="male", cutoffs=PRADO) is True
    assert sarcopenia(45.0, sex="female", cutoffs=PRADO) is False
    assert sarcopenia(52.4, sex="male", cutoffs=PRADO) is False  # strictly below


@pytest.mark.parametrize(
    ("call", "match"),
    [
        pytest.param(
            lambda: skeletal_muscle_index(np.ones((4, 4)), (1, 1), height_m=170),
            "height_m must be in metres",
            id="height-cm",
        ),
        pytest.param(
            lambda: muscle_area_cm2(np.ones((4, 4, 4)), (1, 1)), "mask must be 2-D", id="3d-mask"
        ),
        pytest.param(
            lambda: muscle_area_cm2(np.ones((4, 4)), (1, 0)),
            "spacing must be two positive",
            id="zero-spacing",
        ),
        pytest.param(
            lambda: sarcopenia(40.0, sex="M", cutoffs=PRADO),
            "no cut-off for sex 'M'",
            id="unknown-sex",
        ),
        pytest.param(
            lambda: sarcopenia(math.nan, sex="male", cutoffs=PRADO), "must be finite", id="nan"
        ),
    ],
)
def test_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()
