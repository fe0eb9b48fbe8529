"""Tests for studyval.analysis.segmentation.

Oracles
-------
* MONAI's own tests (MONAI is not installed; torch must not be required).
  Expected values are copied as literals from Project-MONAI/MONAI at commit
  d388d1c6fec8cb3a0eebee5b5a0b9776ca59ca83:

  - ``tests/metrics/test_hausdorff_distance.py`` (``HausdorffDistanceMetric``,
    ``distance_metric="euclidean"``, ``directed=False``; the symmetric value is
    the 2nd of each 6-tuple, ``percentile=95`` in one case);
  - ``tests/metrics/test_surface_distance.py`` (``SurfaceDistanceMetric``,
    ``symmetric=True``, the 1st of each pair);
  - ``tests/metrics/test_compute_meandice.py`` and ``test_compute_meaniou.py``
    (``TEST_CASE_1``, ``TEST_CASE_2``, ``TEST_CASE_3``).

  MONAI computes in float32 and its tests use ``rtol=1e-6`` / ``1e-5``; some
  expected values are printed to 4-7 digits, hence the tolerances below.
* Hand-computed cubes and squares (Dice, IoU, Hausdorff distance in mm with
  anisotropic spacing, border voxels).
* A brute-force surface-distance implementation written here (explicit
  face-neighbour edges, all pairwise distances by ``scipy.spatial.distance``)
  on random blobs with anisotropic spacing.

Deliberate deviation (documented in the module): with exactly one empty mask,
MONAI returns NaN for a percentile Hausdorff distance (MONAI issue #9095) and
``inf`` for the maximum; here both are ``inf``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist

from studyval.analysis.segmentation import (
    OverlapResult,
    PatientSummary,
    overlap,
    overlap_table,
    summarise_by_patient,
)
from studyval.errors import EstimationError, StudyvalError

MONAI_SPACING = (0.85, 1.2, 0.9)


def create_spherical_seg_3d(
    radius: float = 20.0,
    centre: tuple[int, int, int] = (49, 49, 49),
    im_shape: tuple[int, int, int] = (99, 99, 99),
    im_spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> np.ndarray:
    """Sphere exactly as MONAI's tests/metrics/test_hausdorff_distance.py builds it."""
    image = np.zeros(im_shape, dtype=np.int32)
    spy, spx, spz = np.ogrid[: im_shape[0], : im_shape[1], : im_shape[2]]
    spy = spy.astype(float) * im_spacing[0] - centre[0]
    spx = spx.astype(float) * im_spacing[1] - centre[1]
    spz = spz.astype(float) * im_spacing[2] - centre[2]
    image[(spx * spx + spy * spy + spz * spz) <= radius * radius] = 1
    return image


def sphere(radius, centre, spacing=(1.0, 1.0, 1.0)):
    return create_spherical_seg_3d(radius=radius, centre=centre, im_spacing=spacing)


# --------------------------------------------------------------------------- #
# MONAI's expected values
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("pred", "ref", "spacing", "metric", "expected", "rtol"),
    [
        # test_hausdorff_distance.py TEST_CASES[1]: [1.7320508075688772, 1.7320508075688772, 1, 1, 3, 3]
        pytest.param(
            ((20, 20, 20), 20), ((19, 19, 19), 20), None, "hd", 1.7320508075688772, 1e-6, id="hd-offset-r20"
        ),
        # TEST_CASES[2]: [1, 1, 1, 1, 1, 1]
        pytest.param(((19, 33, 22), 33), ((20, 33, 22), 33), None, "hd", 1.0, 1e-6, id="hd-offset-r33"),
        # TEST_CASES[3]: [20.09975124224178, 20.223748416156685, 15, 20, 24, 35]
        pytest.param(
            ((20, 33, 22), 20), ((20, 33, 22), 40), None, "hd", 20.223748416156685, 1e-6, id="hd-r20-r40"
        ),
        # TEST_CASES[6], percentile=95: [19.924858845171276, 20.09975124224178, 14, 18, 22, 33]
        pytest.param(
            ((20, 33, 22), 20), ((20, 33, 22), 40), None, "hd95", 20.09975124224178, 1e-6, id="hd95-r20-r40"
        ),
        # TEST_CASES[7], spacing (0.85, 1.2, 0.9): [2.0808651447296143, 2.2671568, 2, 2, 3, 4]
        pytest.param(
            ((20, 20, 20), 20), ((19, 19, 19), 20), MONAI_SPACING, "hd", 2.2671568, 1e-6,
            id="hd-offset-anisotropic",
        ),
        # TEST_CASES[8], spacing (0.85, 1.2, 0.9): [15.439640998840332, 15.62594, 11, 17, 20, 28]
        pytest.param(
            ((20, 33, 22), 15), ((20, 33, 22), 30), MONAI_SPACING, "hd", 15.62594, 1e-6,
            id="hd-r15-r30-anisotropic",
        ),
        # test_surface_distance.py TEST_CASES[2], euclidean: [0.350217, 0.3483278807706289]
        pytest.param(((19, 33, 22), 33), ((20, 33, 22), 33), None, "assd", 0.350217, 2e-6, id="assd-offset-r33"),
        # TEST_CASES[3], euclidean: [15.117741, 12.040033513150455]
        pytest.param(((20, 33, 22), 20), ((20, 33, 22), 40), None, "assd", 15.117741, 1e-6, id="assd-r20-r40"),
        # TEST_CASES[8], euclidean, spacing (0.85, 1.2, 0.9): [0.4951, 0.4951]
        pytest.param(
            ((42, 45, 52), 33), ((43, 45, 52), 33), MONAI_SPACING, "assd", 0.4951, 1e-4,
            id="assd-offset-anisotropic",
        ),
    ],
)  # fmt: skip
def test_distances_match_monai_tests(pred, ref, spacing, metric, expected, rtol):
    im_spacing = spacing if spacing is not None else (1.0, 1.0, 1.0)
    a = sphere(pred[1], pred[0], im_spacing)
    b = sphere(ref[1], ref[0], im_spacing)
    # MONAI passes spacing=None (unit spacing) in the isotropic cases
    r = overlap(a, b, spacing=im_spacing)
    assert getattr(r, metric) == pytest.approx(expected, rel=rtol)


def test_identical_spheres_have_zero_distance():
    # test_hausdorff_distance.py TEST_CASES[0] and test_surface_distance.py TEST_CASES[0]: all 0
    a = create_spherical_seg_3d()
    r = overlap(a, a, spacing=(1.0, 1.0, 1.0))
    assert (r.dice, r.iou, r.hd, r.hd95, r.assd) == (1.0, 1.0, 0.0, 0.0, 0.0)


def test_empty_masks_match_monai_max_hausdorff():
    # test_hausdorff_distance.py TEST_CASES[4] (pred empty) and [5] (gt empty): inf;
    # test_surface_distance.py TEST_CASES[6]: inf; TEST_CASES_NANS: both empty -> NaN
    full = sphere(40, (20, 33, 22))
    empty = np.zeros_like(full)
    for pred, ref in [(empty, full), (full, empty)]:
        r = overlap(pred, ref, spacing=(1.0, 1.0, 1.0))
        assert (r.hd, r.assd) == (math.inf, math.inf)
    both = overlap(empty, empty, spacing=MONAI_SPACING)
    assert math.isnan(both.hd) and math.isnan(both.hd95) and math.isnan(both.assd)


def test_hd95_with_one_empty_mask_is_inf_not_nan():
    """Deliberate deviation: MONAI gives NaN here (issue #9095), which its mean then drops."""
    ref = np.zeros((16, 16), bool)
    ref[4:10, 4:10] = True
    r = overlap(np.zeros_like(ref), ref, spacing=(1.0, 1.0))
    assert r.hd95 == math.inf


# test_compute_meandice.py / test_compute_meaniou.py
MONAI_2X2 = [
    # TEST_CASE_1: dice [[0.8]], iou [[0.6667]]
    pytest.param([[1, 0], [0, 1]], [[1, 0], [1, 1]], 0.8, 2 / 3, id="case1"),
    # TEST_CASE_2 (no background): dice [[0.5, 0.0], [0.6667, 0.6667]], iou [[0.3333, 0.0], [0.5, 0.5]]
    pytest.param([[0, 0], [1, 1]], [[1, 0], [1, 0]], 0.5, 1 / 3, id="case2-b0-c1"),
    pytest.param([[1, 0], [0, 0]], [[0, 1], [0, 0]], 0.0, 0.0, id="case2-b0-c2"),
    pytest.param([[1, 0], [0, 0]], [[1, 1], [0, 0]], 2 / 3, 0.5, id="case2-b1-c1"),
    pytest.param([[0, 1], [1, 0]], [[0, 0], [1, 0]], 2 / 3, 0.5, id="case2-b1-c2"),
]


@pytest.mark.parametrize(("pred", "ref", "dice", "iou"), MONAI_2X2)
def test_dice_iou_match_monai_tests(pred, ref, dice, iou):
    r = overlap(np.array(pred), np.array(ref), spacing=(1.0, 1.0))
    assert r.dice == pytest.approx(dice, rel=1e-12)
    assert r.iou == pytest.approx(iou, rel=1e-12)


@pytest.mark.parametrize(
    ("pred", "ref", "ignore_empty", "dice", "iou"),
    [
        # TEST_CASE_3: empty reference -> NaN with ignore_empty=True (MONAI default), whatever pred
        pytest.param(
            np.zeros((2, 2)), np.zeros((2, 2)), True, math.nan, math.nan, id="both-empty-ignore"
        ),
        pytest.param(
            np.ones((2, 2)), np.zeros((2, 2)), True, math.nan, math.nan, id="ref-empty-ignore"
        ),
        # ignore_empty=False: 1 if both empty, else 0 (DiceHelper.compute_channel, compute_iou)
        pytest.param(np.zeros((2, 2)), np.zeros((2, 2)), False, 1.0, 1.0, id="both-empty-score"),
        pytest.param(np.ones((2, 2)), np.zeros((2, 2)), False, 0.0, 0.0, id="ref-empty-score"),
        pytest.param(np.zeros((2, 2)), np.ones((2, 2)), True, 0.0, 0.0, id="pred-empty"),
    ],
)
def test_empty_reference_conventions(pred, ref, ignore_empty, dice, iou):
    r = overlap(pred, ref, spacing=(1.0, 1.0), ignore_empty=ignore_empty)
    for got, want in [(r.dice, dice), (r.iou, iou)]:
        if math.isnan(want):
            assert math.isnan(got)
        else:
            assert got == want


# --------------------------------------------------------------------------- #
# Hand-computed shapes
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("k", [1, 2, 3], ids=["offset1", "offset2", "offset3"])
def test_cubes_offset_along_one_axis(k):
    """10-voxel cubes offset by k voxels along axis 0 (voxels 0.5 x 1.0 x 2.0 mm)."""
    spacing = (0.5, 1.0, 2.0)
    a = np.zeros((24, 16, 16), bool)
    a[2:12, 3:13, 3:13] = True
    b = np.zeros_like(a)
    b[2 + k : 12 + k, 3:13, 3:13] = True
    r = overlap(a, b, spacing=spacing)
    assert r.dice == pytest.approx((10 - k) / 10, rel=1e-12)
    assert r.iou == pytest.approx((10 - k) / (10 + k), rel=1e-12)
    # farthest surface voxel: a face k slabs from the other cube's face, 0.5 mm per slab
    assert r.hd == pytest.approx(0.5 * k, rel=1e-12)
    assert r.volume_pred_mm3 == r.volume_ref_mm3 == pytest.approx(1000 * 1.0)
    assert (r.n_pred, r.n_ref, r.n_intersection) == (1000, 1000, 100 * (10 - k))
    # a cube of 10^3 voxels has 10^3 - 8^3 surface voxels
    assert r.n_surface_pred == r.n_surface_ref == 488


def test_squares_offset_diagonally_anisotropic():
    a = np.zeros((20, 20), bool)
    a[2:10, 2:10] = True
    b = np.zeros_like(a)
    b[5:13, 5:13] = True
    r = overlap(a, b, spacing=(0.7, 1.3))
    assert r.dice == pytest.approx(2 * 25 / 128, rel=1e-12)
    # corner (2, 2) of a to corner (5, 5) of b
    assert r.hd == pytest.approx(math.hypot(3 * 0.7, 3 * 1.3), rel=1e-12)


def test_mask_on_the_image_border_counts_as_surface():
    pred = np.ones((4, 4), bool)  # fills the image: its border voxels are its surface
    ref = np.zeros((4, 4), bool)
    ref[:2, :] = True
    r = overlap(pred, ref, spacing=(0.8, 1.0))
    # pred's bottom row (index 3) is surface; nearest ref surface voxel is in row 1
    assert r.hd == pytest.approx(2 * 0.8, rel=1e-12)
    assert r.n_surface_pred == 12 and r.n_surface_ref == 8


def _brute_force(pred: np.ndarray, ref: np.ndarray, spacing) -> tuple[float, float, float]:
    """Surface = voxels with a face neighbour outside the mask or the image; all-pairs distances."""

    def edges(mask: np.ndarray) -> np.ndarray:
        padded = np.pad(mask, 1)
        inner = np.ones_like(mask)
        for axis in range(mask.ndim):
            for shift in (-1, 1):
                inner &= np.roll(padded, shift, axis=axis)[
                    tuple(slice(1, -1) for _ in range(mask.ndim))
                ]
        return np.argwhere(mask & ~inner) * np.asarray(spacing)

    d = cdist(edges(pred), edges(ref))
    d_pr, d_rp = d.min(axis=1), d.min(axis=0)
    hd95 = max(np.percentile(d_pr, 95), np.percentile(d_rp, 95))
    hd = max(d_pr.max(), d_rp.max())
    assd = np.concatenate([d_pr, d_rp]).mean()
    return float(hd95), float(hd), float(assd)


@pytest.mark.parametrize("seed", [0, 1, 2, 3], ids=["seed0", "seed1", "seed2", "seed3"])
def test_distances_equal_brute_force_on_random_blobs(seed):
    rng = np.random.default_rng(seed)
    shape = (14, 12, 10)
    spacing = (0.6, 1.1, 2.5)
    grid = np.indices(shape).transpose(1, 2, 3, 0) * np.array(spacing)

    def blob() -> np.ndarray:
        centre = rng.uniform([3, 3, 5], [5, 9, 20])
        radii = rng.uniform([1.5, 2.5, 4.0], [3.5, 5.0, 9.0])
        mask = (((grid - centre) / radii) ** 2).sum(axis=-1) <= 1.0
        return mask | (rng.random(shape) < 0.02)  # a few stray voxels

    pred, ref = blob(), blob()
    r = overlap(pred, ref, spacing=spacing)
    hd95, hd, assd = _brute_force(pred, ref, spacing)
    assert r.hd95 == pytest.approx(hd95, rel=1e-12)
    assert r.hd == pytest.approx(hd, rel=1e-12)
    assert r.assd == pytest.approx(assd, rel=1e-12)


def test_swapping_pred_and_ref_keeps_symmetric_metrics():
    a = sphere(12, (30, 40, 50))
    b = sphere(14, (33, 41, 48))
    r, s = overlap(a, b, spacing=MONAI_SPACING), overlap(b, a, spacing=MONAI_SPACING)
    for name in ("dice", "iou", "hd95", "hd", "assd"):
        assert getattr(r, name) == pytest.approx(getattr(s, name), rel=1e-12), name
    assert (r.volume_pred_mm3, r.volume_ref_mm3) == (s.volume_ref_mm3, s.volume_pred_mm3)


def test_overlap_result_fields():
    a = np.zeros((6, 6), bool)
    a[1:4, 1:4] = True
    r = overlap(a.astype(np.uint8), a.astype(float), spacing=(0.5, 2.0))
    assert isinstance(r, OverlapResult)
    assert r.volume_ref_mm3 == pytest.approx(9.0)
    assert r.spacing == (0.5, 2.0)
    frame = r.to_frame()
    assert {"dice", "iou", "hd95", "hd", "assd", "volume_pred_mm3", "volume_ref_mm3"} <= set(
        frame.columns
    )
    assert "spacing" not in frame.columns


Z = np.zeros((4, 4))


@pytest.mark.parametrize(
    ("pred", "ref", "kwargs", "match"),
    [
        pytest.param(Z, np.zeros((4, 5)), {}, r"same shape, got \(4, 4\) and \(4, 5\)", id="shape"),
        pytest.param(np.full((4, 4), 0.7), Z, {}, r"pred must be a binary mask .* first at index \(0, 0\)",
                     id="probabilities"),
        pytest.param(Z, np.full((4, 4), 2), {}, "ref must be a binary mask", id="label-map"),
        pytest.param(np.array([["a"]]), np.zeros((1, 1)), {}, "got dtype <U1", id="strings"),
        pytest.param(np.zeros(4), np.zeros(4), {"spacing": (1.0,)}, "2-D or 3-D", id="one-dimensional"),
        pytest.param(Z, Z, {"spacing": (1.0, 1.0, 1.0)}, "spacing has 3 values but", id="spacing-length"),
        pytest.param(Z, Z, {"spacing": (1.0, -1.0)}, r"spacing\[1\] must be a positive", id="spacing-negative"),
        pytest.param(Z, Z, {"spacing": (1.0, np.nan)}, "positive finite", id="spacing-nan"),
        pytest.param(Z, Z, {"spacing": None}, "sequence of 2 voxel sizes", id="spacing-none"),
        pytest.param(Z, Z, {"spacing": 1.0}, "sequence of 2 voxel sizes", id="spacing-scalar"),
        pytest.param(Z, Z, {"ignore_empty": "yes"}, "ignore_empty must be True or False", id="ignore-empty"),
    ],
)  # fmt: skip
def test_overlap_errors(pred, ref, kwargs, match):
    kwargs = {"spacing": (1.0,) * np.ndim(pred), **kwargs}
    with pytest.raises(StudyvalError, match=match):
        overlap(pred, ref, **kwargs)


# --------------------------------------------------------------------------- #
# Tables and patient summaries
# --------------------------------------------------------------------------- #


def _cube_case(patient: str, vertebra: str, offset: int) -> dict:
    ref = np.zeros((12, 12, 12), bool)
    ref[2:8, 2:8, 2:8] = True
    pred = np.zeros_like(ref)
    pred[2 + offset : 8 + offset, 2:8, 2:8] = True
    return {
        "patient": patient,
        "vertebra": vertebra,
        "pred": pred,
        "ref": ref,
        "spacing": (1.0, 1.0, 2.0),
    }


# per-patient offsets (voxels) of each vertebra; Dice of a 6-voxel cube offset k = (6 - k) / 6
OFFSETS = {"P1": [0, 1, 2], "P2": [3], "P3": [0, 0], "P4": [1, 3, 3, 0], "P5": [2]}


def _frame() -> pd.DataFrame:
    cases = [
        _cube_case(p, f"L{i + 1}", k)
        for p, offsets in OFFSETS.items()
        for i, k in enumerate(offsets)
    ]
    return overlap_table(cases)


def test_overlap_table_is_tidy():
    frame = _frame()
    assert list(frame.columns[:3]) == ["patient", "vertebra", "dice"]
    assert len(frame) == 11
    assert frame.loc[1, "dice"] == pytest.approx(5 / 6)
    assert frame.loc[1, "hd"] == pytest.approx(1.0)
    assert (frame["volume_ref_mm3"] == 216 * 2.0).all()


@pytest.mark.parametrize(
    ("cases", "match"),
    [
        pytest.param(
            [{"pred": np.zeros((2, 2)), "ref": np.zeros((2, 2))}],
            "case 0 lacks spacing",
            id="no-spacing",
        ),
        pytest.param(
            [
                {
                    "pred": np.zeros((2, 2)),
                    "ref": np.zeros((2, 3)),
                    "spacing": (1, 1),
                    "patient": "P9",
                }
            ],
            r"case 0 \{'patient': 'P9'\}: pred and ref must have the same shape",
            id="bad-case-named",
        ),
        pytest.param(
            [{"pred": np.zeros((2, 2)), "ref": np.zeros((2, 2)), "spacing": (1, 1), "dice": 1}],
            "clash with metric columns",
            id="clash",
        ),
        pytest.param([np.zeros((2, 2))], "case 0 must be a mapping", id="not-mapping"),
        pytest.param([], "at least one case", id="empty"),
    ],
)
def test_overlap_table_errors(cases, match):
    with pytest.raises(StudyvalError, match=match):
        overlap_table(cases)


def test_summarise_by_patient_weights_patients_equally():
    frame = _frame()
    r = summarise_by_patient(frame, patient_col="patient", metric="dice", n_resamples=400, seed=5)
    per_patient = {p: np.mean([(6 - k) / 6 for k in ks]) for p, ks in OFFSETS.items()}
    assert r.estimate == pytest.approx(np.mean(list(per_patient.values())), rel=1e-12)
    assert r.case_mean == pytest.approx(frame["dice"].mean(), rel=1e-12)
    assert r.estimate != pytest.approx(r.case_mean, rel=1e-3)
    assert (r.n_patients, r.n_cases, r.n_dropped) == (5, 11, 0)
    assert r.ci_low < r.estimate < r.ci_high
    table = r.patients_frame()
    assert list(table["patient"]) == ["P1", "P2", "P3", "P4", "P5"]
    assert list(table["n_cases"]) == [3, 1, 2, 4, 1]
    assert table["mean"].to_numpy() == pytest.approx([per_patient[p] for p in table["patient"]])
    est, lo, hi = r
    assert (est, lo, hi) == (r.estimate, r.ci_low, r.ci_high)
    assert isinstance(r, PatientSummary)


def test_summary_equals_bootstrap_of_patient_means():
    """Resampling patients: the cases behind a patient's mean do not change the interval."""
    frame = _frame()
    r = summarise_by_patient(frame, patient_col="patient", metric="dice", n_resamples=300, seed=9)
    means = frame.groupby("patient", as_index=False)["dice"].mean()
    s = summarise_by_patient(means, patient_col="patient", metric="dice", n_resamples=300, seed=9)
    assert (r.estimate, r.se, r.ci_low, r.ci_high) == pytest.approx(
        (s.estimate, s.se, s.ci_low, s.ci_high), rel=1e-12
    )


def test_summary_is_reproducible_and_order_free():
    frame = _frame()
    a = summarise_by_patient(frame, patient_col="patient", metric="hd95", n_resamples=300, seed=1,
                             method="percentile")  # fmt: skip
    b = summarise_by_patient(frame.sample(frac=1.0, random_state=2), patient_col="patient", metric="hd95",
                             n_resamples=300, seed=1, method="percentile")  # fmt: skip
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.method == "percentile" and a.seed == 1


def test_nonfinite_values_are_refused_or_dropped_explicitly():
    frame = _frame()
    empty = _cube_case("P6", "L1", 0)
    empty["pred"] = np.zeros_like(empty["ref"])
    frame = pd.concat([frame, overlap_table([empty])], ignore_index=True)
    assert frame["hd95"].iloc[-1] == math.inf
    with pytest.raises(
        StudyvalError,
        match=r"'hd95' is not finite in 1 case\(s\) \(0 NaN, 1 infinite\); first at row 11 \(patient 'P6'\)",
    ):
        summarise_by_patient(frame, patient_col="patient", metric="hd95", seed=1)
    r = summarise_by_patient(frame, patient_col="patient", metric="hd95", seed=1, n_resamples=200,
                             nonfinite="drop")  # fmt: skip
    assert (r.n_dropped, r.n_patients, r.n_cases) == (1, 5, 11)


@pytest.mark.parametrize(
    ("frame", "kwargs", "error", "match"),
    [
        pytest.param(_frame(), {"metric": "dise"}, StudyvalError, "metric='dise' is not a column", id="metric-column"),
        pytest.param(_frame(), {"patient_col": "pid"}, StudyvalError, "patient_col='pid' is not a column",
                     id="patient-column"),
        pytest.param(_frame().assign(patient=lambda f: f["patient"].where(f.index != 3)), {}, StudyvalError,
                     "'patient' is missing at row 3", id="missing-patient"),
        pytest.param(_frame().assign(dice=lambda f: f["vertebra"]), {}, StudyvalError, "not numeric", id="not-numeric"),
        pytest.param(_frame().assign(patient="P1"), {}, EstimationError, "at least 2 patients", id="one-patient"),
        pytest.param(_frame(), {"nonfinite": "ignore"}, StudyvalError, "nonfinite='ignore' is not one of",
                     id="bad-nonfinite"),
        pytest.param(_frame(), {"method": "bcaa"}, StudyvalError, "did you mean 'bca'", id="bad-method"),
        pytest.param(_frame(), {"seed": None}, StudyvalError, "seed must be a non-negative integer", id="no-seed"),
        pytest.param(_frame().to_numpy(), {}, StudyvalError, "must be a pandas DataFrame", id="not-frame"),
    ],
)  # fmt: skip
def test_summarise_errors(frame, kwargs, error, match):
    kwargs = {"patient_col": "patient", "metric": "dice", "seed": 1, "n_resamples": 50, **kwargs}
    with pytest.raises(error, match=match):
        summarise_by_patient(frame, **kwargs)
