"""Tests for studyval.models.deid: the DICOM PS3.15 Basic Application Level Confidentiality Profile.

Oracle: the profile's own table (PS3.15 Annex E, Table E.1-1, 621 attributes in
``models/deid_basic_profile.tsv``): every attribute of the table that is present
in the source is removed, emptied, replaced by a dummy or given a new UID; and
the identifying strings of pydicom's ``CT_small.dcm`` (patient name, patient id,
institution, station) are absent from the bytes written. Pixel data are
unchanged. Bad inputs go through ``studyval deidentify`` as a user runs it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pydicom = pytest.importorskip("pydicom")
pytest.importorskip("monai")

from pydicom.data import get_testdata_file  # noqa: E402

from studyval.cli import main  # noqa: E402
from studyval.models.deid import basic_profile, deidentify_dataset, deidentify_series  # noqa: E402
from studyval.models.imaging import ImageReadError  # noqa: E402
from studyval.models.phantoms import spine_phantom, write_dicom_series  # noqa: E402

KEY = b"a-test-key-of-32-bytes-----------"
CT_SMALL = Path(get_testdata_file("CT_small.dcm"))
#: Identifying values in CT_small.dcm's header (PatientName, PatientID, InstitutionName,
#: StationName, StudyID, ContrastBolusAgent).
PLANTED = [b"CompressedSamples", b"1CT1", b"JFK IMAGING CENTER", b"CT01_OC0", b"ISOVUE300"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_table_e11_is_complete():
    table = basic_profile()
    # 621 rows in Table E.1-1, 4 of them wildcard rules (curves, overlay data and
    # comments, private attributes) applied by rule.
    assert len(table) == 617
    assert table[0x00100010] == "Z"  # Patient's Name
    assert table[0x00100030] == "Z"  # Patient's Birth Date
    assert table[0x00080080] == "X/Z/D"  # Institution Name
    assert table[0x0020000D] == "U"  # Study Instance UID
    assert set(table.values()) <= {"X", "Z", "D", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}


def test_ct_small_every_profile_attribute_handled(tmp_path):
    before = pydicom.dcmread(CT_SMALL)
    source_sha = _sha(CT_SMALL)
    rep = deidentify_series(CT_SMALL, tmp_path / "out.dcm", key=KEY, patient_pseudonym="PS-0001")
    assert _sha(CT_SMALL) == source_sha  # the source is never modified
    after = pydicom.dcmread(tmp_path / "out.dcm")
    table = basic_profile()
    for elem in before:
        tag = int(elem.tag)
        if elem.tag.is_private:
            assert elem.tag not in after, f"private {elem.tag} kept"
            continue
        action = table.get(tag)
        if action is None or tag == 0x00100020:
            continue
        if action == "X":
            assert elem.tag not in after, f"{elem.keyword} not removed"
        elif action == "U":
            assert str(after[elem.tag].value) != str(elem.value)
            assert str(after[elem.tag].value).startswith("2.25.")
        elif elem.value not in ("", None, b""):
            assert after[elem.tag].value != elem.value, f"{elem.keyword} kept its value"
    assert after.PatientID == "PS-0001"
    assert after.PatientIdentityRemoved == "YES"
    assert after.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
    np.testing.assert_array_equal(after.pixel_array, before.pixel_array)
    data = (tmp_path / "out.dcm").read_bytes()
    for planted in PLANTED:
        assert planted not in data, planted
    assert rep.actions["private"] > 0 and rep.files == 1


def test_series_uids_stay_consistent(tmp_path):
    p = spine_phantom(shape=(16, 16, 12), spacing=(1.0, 1.0, 1.0), patterns=("acute",), seed=1)
    write_dicom_series(p.image, tmp_path / "src", spacing=p.spacing, seed=3)
    deidentify_series(tmp_path / "src", tmp_path / "a", key=KEY)
    deidentify_series(tmp_path / "src", tmp_path / "b", key=KEY)
    deidentify_series(tmp_path / "src", tmp_path / "c", key=b"another-key-of-sixteen+")
    a = [pydicom.dcmread(f) for f in sorted((tmp_path / "a").iterdir())]
    src = [pydicom.dcmread(f) for f in sorted((tmp_path / "src").iterdir())]
    assert len({d.SeriesInstanceUID for d in a}) == 1  # still one series
    assert len({d.SOPInstanceUID for d in a}) == len(a)  # instances still distinct
    assert a[0].SeriesInstanceUID != src[0].SeriesInstanceUID
    # same key, same mapping (byte-identical copies); another key, other UIDs
    assert all(
        _sha(x) == _sha(y)
        for x, y in zip(
            sorted((tmp_path / "a").iterdir()), sorted((tmp_path / "b").iterdir()), strict=True
        )
    )
    c0 = pydicom.dcmread(sorted((tmp_path / "c").iterdir())[0])
    assert c0.SeriesInstanceUID != a[0].SeriesInstanceUID


def test_curves_overlays_and_sequences(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    ds.add_new(0x50000010, "US", 3)  # curve group
    ds.add_new(0x60003000, "OW", b"\x00\x01")  # overlay data
    ds.add_new(0x60004000, "LT", "overlay comment naming a patient")
    ds.add_new(0x60000010, "US", 512)  # overlay rows: not in the profile, kept
    counts = deidentify_dataset(ds, key=KEY)
    assert 0x50000010 not in ds and 0x60003000 not in ds and 0x60004000 not in ds
    assert 0x60000010 in ds
    assert counts["curve/overlay"] == 3
    assert "OtherPatientIDsSequence" not in ds  # X of a sequence


def test_burned_in_annotation_refused(tmp_path):
    ds = pydicom.dcmread(CT_SMALL)
    ds.BurnedInAnnotation = "YES"
    ds.save_as(tmp_path / "burned.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"burned\.dcm: .*burned-in annotation"):
        deidentify_series(tmp_path / "burned.dcm", tmp_path / "out.dcm", key=KEY)
    assert not (tmp_path / "out.dcm").exists()


# ---- bad image inputs through the CLI ---------------------------------------------------------


def _series(d: Path) -> list[Path]:
    p = spine_phantom(shape=(16, 16, 12), spacing=(1.0, 1.0, 1.0), patterns=("acute",), seed=1)
    return write_dicom_series(p.image, d, spacing=p.spacing, seed=3)


def _empty_file(d: Path) -> Path:
    d.mkdir()
    (d / "a.dcm").write_bytes(b"")
    return d / "a.dcm"


def _no_pixels(d: Path) -> Path:
    files = _series(d)
    ds = pydicom.dcmread(files[4])
    del ds.PixelData
    ds.save_as(files[4], enforce_file_format=True)
    return files[4]


def _missing_slice(d: Path) -> Path:
    files = _series(d)
    files[5].unlink()
    return d


def _not_dicom(d: Path) -> Path:
    files = _series(d)
    files[2].write_text("patient,score\nP1,0.3\n")
    return files[2]


def _mixed_spacing(d: Path) -> Path:
    files = _series(d)
    ds = pydicom.dcmread(files[-1])
    ds.ImagePositionPatient = [0.0, 0.0, float(ds.ImagePositionPatient[2]) + 2.5]
    ds.save_as(files[-1], enforce_file_format=True)
    return d


BAD_IMAGES = [
    pytest.param(_empty_file, "0 bytes|empty", id="zero-byte-image"),
    pytest.param(_no_pixels, "no pixel data", id="dicom-without-pixel-data"),
    pytest.param(_missing_slice, "missing slice|gap", id="missing-slice"),
    pytest.param(_not_dicom, "not a DICOM|DICOM", id="non-dicom-file-in-series"),
    pytest.param(_mixed_spacing, "spacing", id="mixed-slice-spacing"),
]


@pytest.mark.parametrize(("make", "rule"), BAD_IMAGES)
def test_bad_images_through_the_cli(tmp_path, make, rule):
    src = tmp_path / "series"
    named = make(src)
    key = tmp_path / "key"
    key.write_bytes(KEY)
    before = {p: _sha(p) for p in sorted(src.rglob("*")) if p.is_file()}
    out = tmp_path / "deid"
    res = CliRunner().invoke(
        main, ["deidentify", str(src), "--out", str(out), "--key-file", str(key)]
    )
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert str(named) in res.output, res.output
    import re

    assert re.search(rule, res.output, flags=re.IGNORECASE), res.output
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["key", "series"]  # no temp left
    assert {p: _sha(p) for p in sorted(src.rglob("*")) if p.is_file()} == before


def test_cli_refuses_short_key_and_existing_output(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(b"short")
    res = CliRunner().invoke(
        main,
        ["deidentify", str(CT_SMALL), "--out", str(tmp_path / "o.dcm"), "--key-file", str(key)],
    )
    assert res.exit_code == 1 and "at least 16 bytes" in res.output
    key.write_bytes(KEY)
    (tmp_path / "o.dcm").write_bytes(b"x")
    res = CliRunner().invoke(
        main,
        ["deidentify", str(CT_SMALL), "--out", str(tmp_path / "o.dcm"), "--key-file", str(key)],
    )
    assert res.exit_code == 1 and "never overwritten" in res.output
    assert (tmp_path / "o.dcm").read_bytes() == b"x"


def test_cli_writes_pseudonymous_copy(tmp_path):
    key = tmp_path / "key"
    key.write_bytes(KEY)
    res = CliRunner().invoke(
        main,
        [
            "deidentify",
            str(CT_SMALL),
            "--out",
            str(tmp_path / "o.dcm"),
            "--key-file",
            str(key),
            "--patient-id",
            "1CT1",
        ],
    )
    assert res.exit_code == 0, res.output
    ds = pydicom.dcmread(tmp_path / "o.dcm")
    assert ds.PatientID.startswith("PS-") and ds.PatientID != "1CT1"
