"""Tests for studyval.models.phantoms: seeded, and each pattern as described."""

from __future__ import annotations

import numpy as np
import pytest

from studyval.models.phantoms import HU, spine_phantom


def test_seeded():
    a, b = spine_phantom(seed=4), spine_phantom(seed=4)
    np.testing.assert_array_equal(a.image, b.image)
    assert not np.array_equal(a.image, spine_phantom(seed=5).image)


def test_patterns():
    p = spine_phantom(
        shape=(32, 32, 48), patterns=("intact", "acute", "chronic"), noise_hu=0.0, seed=0
    )
    intact, acute, chronic = p.vertebrae
    assert [v.level for v in p.vertebrae] == ["L1", "L2", "L3"]
    # acute: uniform height loss and an oedema-like hypodense band
    assert acute.height_anterior_mm == pytest.approx(0.75 * intact.height_anterior_mm)
    assert acute.height_posterior_mm == pytest.approx(acute.height_anterior_mm)
    assert (p.image[acute.bbox] == HU["oedema_band"]).sum() > 50
    # chronic: wedge (anterior lower than posterior) and sclerotic
    assert chronic.height_anterior_mm < 0.6 * chronic.height_posterior_mm
    assert (p.image[chronic.bbox] == HU["sclerotic"]).sum() > 50
    assert (p.image[intact.bbox] == HU["sclerotic"]).sum() == 0
    # RAS: anterior is +y, so the wedge is lower at high y
    body = p.label[chronic.bbox]
    heights = body.sum(axis=2).max(axis=0)
    nz = heights[heights > 0]
    assert nz[-1] < nz[0]


def test_bad_pattern():
    with pytest.raises(ValueError, match="unknown vertebral pattern 'subacute'"):
        spine_phantom(patterns=("subacute",))
