"""Tests for studyval.models.imaging and the phantoms' DICOM / NIfTI writers.

Oracles: the CT file that ships with pydicom (``CT_small.dcm``: 128 x 128,
pixel spacing 0.661468 mm, rescale intercept -1024, so stored 128 -> -896 HU,
read with pydicom directly), and phantoms written to DICOM / NIfTI and read
back (the round trip must return the written HU and spacing).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("monai")
pydicom = pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from studyval.models.imaging import (  # noqa: E402
    ImageReadError,
    apply_window,
    check_dicom_series,
    load_image,
)
from studyval.models.phantoms import spine_phantom, write_dicom_series, write_nifti  # noqa: E402


@pytest.fixture(scope="module")
def phantom():
    return spine_phantom(
        shape=(24, 20, 30), spacing=(1.0, 1.2, 2.0), patterns=("intact", "acute"), seed=3
    )


def test_ct_small_matches_pydicom():
    from pydicom.data import get_testdata_file

    path = get_testdata_file("CT_small.dcm")
    ds = pydicom.dcmread(path)
    hu = ds.pixel_array.astype(float) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    vol = load_image(path)
    assert vol.array.shape == (128, 128)
    assert vol.spacing == pytest.approx((0.661468, 0.661468))
    # RAS: DICOM rows/columns run along LPS +y/+x, so both axes are flipped and transposed
    np.testing.assert_allclose(vol.array, hu.T[::-1, ::-1])
    assert vol.array.min() == -896.0
    assert len(vol.sha256) == 64


def test_dicom_series_round_trip(tmp_path, phantom):
    files = write_dicom_series(phantom.image, tmp_path / "s", spacing=phantom.spacing)
    assert len(files) == phantom.image.shape[2]
    vol = load_image(tmp_path / "s")
    assert vol.array.shape == phantom.image.shape
    assert vol.spacing == pytest.approx(phantom.spacing)
    np.testing.assert_allclose(vol.array, np.rint(phantom.image), atol=0.51)
    assert vol.voxel_volume_mm3 == pytest.approx(1.0 * 1.2 * 2.0)


def test_nifti_round_trip_and_resampling(tmp_path, phantom):
    path = write_nifti(phantom.image, tmp_path / "a.nii.gz", spacing=phantom.spacing)
    vol = load_image(path)
    np.testing.assert_array_equal(vol.array, np.rint(phantom.image))
    res = load_image(path, spacing=(2.0, 2.4, 4.0))
    assert res.spacing == pytest.approx((2.0, 2.4, 4.0))
    # MONAI's Spacing keeps the field of view: half the voxels per axis, +-1 at the edge
    assert np.abs(np.array(res.array.shape) - (12, 10, 15)).max() <= 1
    # physical size is kept when resampling: body volume in mm3 within 10 %
    body_mm3 = (phantom.label > 0).sum() * 1.0 * 1.2 * 2.0
    res_mm3 = (res.array > 150).sum() * res.voxel_volume_mm3
    assert res_mm3 == pytest.approx(body_mm3, rel=0.10)


def _series(tmp_path, phantom):
    return write_dicom_series(phantom.image[:, :, :6], tmp_path / "s", spacing=phantom.spacing)


def test_missing_slice_names_file(tmp_path, phantom):
    files = _series(tmp_path, phantom)
    files[3].unlink()
    with pytest.raises(
        ImageReadError, match=r"slice_004\.dcm: 1 missing slice\(s\) between slice_002\.dcm"
    ):
        load_image(tmp_path / "s")


def test_mixed_spacing_names_file(tmp_path, phantom):
    files = _series(tmp_path, phantom)
    ds = pydicom.dcmread(files[5])
    ds.ImagePositionPatient = [0.0, 0.0, 4 * 2.0 + 2.7]
    ds.save_as(files[5])
    with pytest.raises(ImageReadError, match=r"slice_005\.dcm: mixed slice spacing"):
        check_dicom_series(tmp_path / "s")


def test_empty_file_names_file(tmp_path, phantom):
    files = _series(tmp_path, phantom)
    files[2].write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"slice_002\.dcm: file is empty \(0 bytes\)"):
        load_image(tmp_path / "s")


def test_dicom_without_pixel_data_names_file(tmp_path, phantom):
    files = _series(tmp_path, phantom)
    ds = pydicom.dcmread(files[1])
    del ds.PixelData
    ds.save_as(files[1])
    with pytest.raises(ImageReadError, match=r"slice_001\.dcm: DICOM file has no pixel data"):
        load_image(tmp_path / "s")


def test_other_series_and_garbage_name_file(tmp_path, phantom):
    files = _series(tmp_path, phantom)
    ds = pydicom.dcmread(files[4])
    ds.SeriesInstanceUID = "1.2.3.4"
    ds.save_as(files[4])
    with pytest.raises(ImageReadError, match=r"slice_004\.dcm: belongs to another series"):
        load_image(tmp_path / "s")
    files[4].write_bytes(b"not a dicom file at all")
    with pytest.raises(ImageReadError, match=r"slice_004\.dcm: not a readable DICOM file"):
        load_image(tmp_path / "s")


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        pytest.param("x.nii.gz", None, "file does not exist", id="missing"),
        pytest.param("x.nii.gz", b"", r"file is empty \(0 bytes\)", id="empty-nifti"),
        pytest.param("x.png", b"\x89PNG", "unknown image format", id="png"),
        pytest.param(
            "x.nii", b"0" * 400, "cannot be read by MONAI NibabelReader", id="corrupt-nifti"
        ),
    ],
)
def test_unreadable_files(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match):
        load_image(path)


def test_apply_window():
    out = apply_window(np.array([-2000.0, -250.0, 500.0, 1250.0, 3000.0]), (-250, 1250))
    np.testing.assert_allclose(out, [0.0, 0.0, 0.5, 1.0, 1.0])
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match="low < high"):
        apply_window(np.zeros(3), (100, 100))
