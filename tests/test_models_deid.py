"""Tests for studyval.models.deid: the DICOM PS3.15 Basic Application Level Confidentiality Profile.

Oracle: the profile's own table (PS3.15 Annex E, Table E.1-1, edition 2026c, 656 rows in
``models/deid_basic_profile.tsv``): every attribute of the table that is present in the
source is removed, emptied, replaced by a dummy or given a new UID; and the identifying
strings of pydicom's ``CT_small.dcm`` (patient name, patient id, institution, station) are
absent from the bytes written. Pixel data are unchanged. Bad inputs go through
``studyval deidentify`` as a user runs it.

Real-world shapes: every DICOM file of pydicom's own test data (``get_testdata_files``,
the files shipped with pydicom; the online ones are not downloaded) gets a planted
identifying value in every attribute the profile touches that it has (at any depth,
private and overlay/curve attributes included) and is de-identified; no planted value or
original instance UID survives (dataset walk and raw bytes), UIDs map consistently,
sequences the profile keeps (``U``, ``D``, untabled) keep their items, and the output
reads back with pydicom.
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
from studyval.models import deid as deid_module  # noqa: E402
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
    # 656 rows in Table E.1-1 (2026c), 4 of them wildcard rules (curves, overlay data and
    # comments, private attributes) applied by rule; 617 attributes in 2024b, 35 added since.
    assert len(table) == 652
    assert table[0x00100010] == "Z"  # Patient's Name
    assert table[0x00100030] == "Z"  # Patient's Birth Date
    assert table[0x00080080] == "X/Z/D"  # Institution Name
    assert table[0x0020000D] == "U"  # Study Instance UID
    assert set(table.values()) <= {"X", "Z", "D", "U", "X/Z", "X/D", "Z/D", "X/Z/D", "X/Z/U*"}
    # attributes of the current edition that the 2024b table let through
    for tag in [*range(0x00100011, 0x00100017), *range(0x00100041, 0x00100048)]:
        assert table[tag] == "X", hex(
            tag
        )  # names to use, pronouns, gender identity, sex parameters
    assert table[0x00181010] == table[0x00181011] == "X"  # secondary capture / hardcopy device IDs
    assert table[0x00700006] == "D"  # Unformatted Text Value
    assert table[0x300A0054] == "U"  # Table Top Position Alignment UID
    assert table[0x00081140] == table[0x00082112] == "X/Z/U*"
    assert table[0x0040A730] == "D"  # Content Sequence
    header = Path(deid_module.__file__).with_name("deid_basic_profile.tsv").read_text("utf-8")
    assert "edition 2026c" in header and "dicom-anonymizer 2.1.0" in header


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


# ---- pydicom's test files as real-world DICOM shapes -----------------------------------------

from unittest import mock  # noqa: E402

from pydicom.data import data_manager, get_testdata_files  # noqa: E402
from pydicom.datadict import dictionary_VR  # noqa: E402
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.errors import InvalidDicomError  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402

PYDICOM_TEST_FILES = Path(pydicom.data.__file__).parent / "test_files"


def _pydicom_files() -> list[str]:
    """Every file of pydicom's test data available here, relative to its ``test_files``.

    ``get_testdata_files`` also tries to download pydicom-data's online files; offline each
    try retries for ~20 s, so the download list is emptied: the files shipped with pydicom
    (and a locally installed pydicom-data, if any) are used.
    """
    with mock.patch.object(data_manager, "online_test_file_dummy_paths", return_value={}):
        paths = get_testdata_files("**/*")
    return sorted(
        Path(p).relative_to(PYDICOM_TEST_FILES).as_posix()
        if Path(p).is_relative_to(PYDICOM_TEST_FILES)
        else p
        for p in paths
        if Path(p).is_file()
    )


PROFILE = basic_profile()
_ALNUM = "0123456789ABCDEF"
_TEXT = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT"}
_FIXED = {  # planted values by VR: distinctive, valid for the VR
    "DA": "18830417",
    "DT": "18830417021558",
    "TM": "021558.424242",
    "AS": "083Y",
    "DS": "4242.4242",
    "IS": "424242424",
    "US": 4242,
    "SS": 4242,
    "UL": 4242,
    "SL": 4242,
    "SV": 4242,
    "UV": 4242,
    "FL": 42.42,
    "FD": 42.42,
}
#: planted strings long enough to be looked for in the raw bytes
_RAW_FIXED = [b"18830417", b"021558.424242", b"4242.4242", b"424242424"]
_PLANTED_UID_ROOT = "1.2.826.0.1.3680043.9.4242."


def _is_curve_or_overlay(tag: int) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    return (0x5000 <= group <= 0x50FF and group % 2 == 0) or (
        0x6000 <= group <= 0x60FF and group % 2 == 0 and element in (0x3000, 0x4000)
    )


def _action(tag: int) -> str | None:
    a = PROFILE.get(tag)
    return None if a is None else deid_module._resolve(a)


def _plant(ds, planted: dict, uids: set, path: tuple = ()) -> None:
    """Plant a value in every attribute the profile touches.

    ``planted``: path -> planted value; ``uids``: (UID, path of its item) of every attribute
    with action U, whose original value is kept to check the mapping.
    """
    for elem in list(ds):
        tag = int(elem.tag)
        here = (*path, tag)
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                _plant(item, planted, uids, (*here, i))
            continue
        touched = elem.tag.is_private or _is_curve_or_overlay(tag) or tag in PROFILE
        if not touched or (elem.tag.is_private and elem.tag.element < 0x1000):
            continue  # private creators keep their value (they are removed with the block)
        if _action(tag) == "U" and elem.VR == "UI":
            values = elem.value if elem.VM > 1 else [elem.value]
            uids.update((str(u), path) for u in values if str(u))
            continue
        n = len(planted)
        if elem.VR in _TEXT:
            value = f"ZQ{n:06d}PL"
        elif elem.VR == "UI":
            value = f"{_PLANTED_UID_ROOT}{n}"
        elif elem.VR in ("OB", "OW", "UN"):
            value = f"ZQ{n:06d}PL".encode()
        elif elem.VR in _FIXED:
            value = _FIXED[elem.VR]
        else:
            continue
        elem.value = value
        planted[here] = value


def _kept(path: tuple) -> bool:
    """Whether the profile keeps the sequences along ``path`` (tags and item indexes)."""
    return all(
        not pydicom.tag.Tag(tag).is_private and _action(tag) in (None, "U", "D")
        for tag in path[::2]
    )


def _element_at(ds, path: tuple):
    """The element at ``path`` (tags and item indexes), or None when it is gone."""
    node = ds
    for i, step in enumerate(path):
        if i % 2 == 0:
            if step not in node:
                return None
            node = node[step]
            if i == len(path) - 1:
                return node
            node = node.value
        else:
            if step >= len(node):
                return None
            node = node[step]
    return None


def _walk(ds, path: tuple = ()):
    """(path, element) of every element at any depth (values converted on the way)."""
    for elem in ds:
        here = (*path, int(elem.tag))
        yield here, elem
        if elem.VR == "SQ":
            for i, item in enumerate(elem.value):
                yield from _walk(item, (*here, i))


def _strings(value) -> list[bytes]:
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return [s for v in value for s in _strings(v)]
    return [str(value).encode("utf-8", "replace")]


def _read(path: Path):
    """A dataset of pydicom's test data, or None when pydicom cannot read it as DICOM."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return pydicom.dcmread(path), True
        except InvalidDicomError:
            pass
        try:  # a dataset without preamble and file meta (e.g. rtstruct.dcm)
            ds = pydicom.dcmread(path, force=True)
        except Exception:
            return None, False
        return (ds, False) if "SOPClassUID" in ds else (None, False)


@pytest.mark.parametrize("name", _pydicom_files())
def test_pydicom_test_files(tmp_path, name):
    import re
    import warnings

    ds, has_meta = _read(PYDICOM_TEST_FILES / name)
    if ds is None:
        pytest.skip("not a DICOM dataset pydicom reads (text, json, ICC profile, gzip)")
    warnings.simplefilter("ignore")  # pydicom's warnings about the files' own oddities
    if "DirectoryRecordSequence" in ds:
        before = ds.to_json_dict()
        with pytest.raises(ValueError, match="DICOMDIR"):
            deidentify_dataset(ds, key=KEY)
        assert ds.to_json_dict() == before  # refused before any change
        return
    planted: dict[tuple, object] = {}
    uid_paths: set[tuple[str, tuple]] = set()
    _plant(ds, planted, uid_paths)
    uids = {u for u, _ in uid_paths}
    source = dict(_walk(ds))
    src_values = {p: e.value for p, e in source.items() if e.VR != "SQ"}
    src_items = {p: len(e.value) for p, e in source.items() if e.VR == "SQ"}
    complete = has_meta and "TransferSyntaxUID" in ds.file_meta
    complete = complete and "SOPClassUID" in ds and "SOPInstanceUID" in ds
    if complete and "PixelData" in ds:  # the single-file path of deidentify_series
        ds.save_as(tmp_path / "src.dcm", enforce_file_format=True)
        rep = deidentify_series(tmp_path / "src.dcm", tmp_path / "out.dcm", key=KEY)
        assert rep.files == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["out.dcm", "src.dcm"]
    else:  # no pixel data (SR, RT, waveform ...) or no complete file meta: the dataset path
        deidentify_dataset(ds, key=KEY)
        ds.save_as(tmp_path / "out.dcm", enforce_file_format=complete)
    out = pydicom.dcmread(tmp_path / "out.dcm", force=not complete)  # reads back
    walked = dict(_walk(out))  # every value converted: the whole output parses
    raw = (tmp_path / "out.dcm").read_bytes()
    assert out.PatientIdentityRemoved == "YES"
    if (0x7FE00010,) in src_values:
        assert out.PixelData == src_values[(0x7FE00010,)]  # pixels untouched

    # no planted value survives: at its place, anywhere in the dataset, in the bytes
    for path, value in planted.items():
        elem = walked.get(path)
        assert elem is None or elem.value != value, (path, value)
    tokens = {t for v in planted.values() for t in _strings(v) if t.startswith(b"ZQ")}
    for path, elem in walked.items():
        if elem.VR != "SQ":
            for s in _strings(elem.value):
                assert not any(t in s for t in tokens), (path, s)
    fixed = {t for t in _RAW_FIXED if any(t in _strings(v) for v in planted.values())}
    uid_tokens = {t for v in planted.values() for t in _strings(v) if t.startswith(b"1.2.826")}
    for t in tokens | fixed | uid_tokens:
        assert t not in raw, t
    # no original UID of a U attribute survives (a UID is bounded by non-UID characters); a
    # UID that is also the file meta's Implementation Class UID (DCMTK's, as Instance Creator
    # UID of test-SR.dcm) names software, and dummy UIDs such as "0" match anywhere
    meta_uids = {str(e.value) for e in getattr(out, "file_meta", Dataset()) if e.VR == "UI"}
    for uid in uids - meta_uids:
        if len(uid) >= 8:
            pattern = rb"(?<![0-9.])" + re.escape(uid.encode()) + rb"(?![0-9.])"
            assert not re.search(pattern, raw), uid

    # UIDs replaced consistently: one original UID -> one new UID, and back
    forward: dict[str, set[str]] = {}
    for path, elem in walked.items():
        if elem.VR == "UI" and path in src_values and elem.value != src_values[path]:
            for o, n in zip(_strings(src_values[path]), _strings(elem.value), strict=True):
                assert n.startswith(b"2.25."), (path, n)
                forward.setdefault(o.decode(), set()).add(n.decode())
    assert all(len(v) == 1 for v in forward.values()), forward
    assert len({next(iter(v)) for v in forward.values()}) == len(forward)
    # every UID of a U attribute in a kept item was replaced
    expected = {u for u, item in uid_paths if _kept(item)}
    assert expected <= set(forward), expected - set(forward)

    # sequences the profile keeps (U, D, or not in the table) keep all their items, at any depth
    for path, n in src_items.items():
        if _kept(path):
            elem = walked.get(path)
            assert elem is not None and len(elem.value) == n, (path, n)


def _localizer_and_slice(tmp_path):
    """CT_small as a localizer and a slice that references it, as most CT series do."""
    loc = pydicom.dcmread(CT_SMALL)
    ref = Dataset()
    ref.ReferencedSOPClassUID = loc.SOPClassUID
    ref.ReferencedSOPInstanceUID = loc.SOPInstanceUID
    src = Dataset()
    src.ReferencedSOPClassUID = loc.SOPClassUID
    src.ReferencedSOPInstanceUID = loc.SOPInstanceUID
    sl = pydicom.dcmread(CT_SMALL)
    sl.SOPInstanceUID = loc.SOPInstanceUID + ".2"
    sl.ReferencedImageSequence = Sequence([ref])
    sl.SourceImageSequence = Sequence([src])
    sl.save_as(tmp_path / "slice.dcm", enforce_file_format=True)
    return loc, sl


def test_referenced_and_source_image_sequences_remapped(tmp_path):
    loc, sl = _localizer_and_slice(tmp_path)
    deidentify_series(CT_SMALL, tmp_path / "loc-out.dcm", key=KEY)
    deidentify_series(tmp_path / "slice.dcm", tmp_path / "slice-out.dcm", key=KEY)
    lo = pydicom.dcmread(tmp_path / "loc-out.dcm")
    so = pydicom.dcmread(tmp_path / "slice-out.dcm")
    for seq in (so.ReferencedImageSequence, so.SourceImageSequence):
        assert len(seq) == 1  # items kept
        assert seq[0].ReferencedSOPInstanceUID == lo.SOPInstanceUID  # same mapping as elsewhere
        assert seq[0].ReferencedSOPClassUID == loc.SOPClassUID  # class UIDs are not identifying
    assert so.SOPInstanceUID not in (lo.SOPInstanceUID, sl.SOPInstanceUID)
    assert loc.SOPInstanceUID.encode() not in (tmp_path / "slice-out.dcm").read_bytes()


@pytest.mark.parametrize(
    ("name", "sequence"),
    [
        ("examples_overlay.dcm", "ReferencedImageSequence"),
        ("JPEG2000.dcm", "SourceImageSequence"),
        ("liver_1frame.dcm", "SourceImageSequence"),
    ],
)
def test_review_files_no_longer_crash(tmp_path, name, sequence):
    path = Path(get_testdata_file(name))
    rep = deidentify_series(path, tmp_path / "out.dcm", key=KEY)
    before = pydicom.dcmread(path)
    after = pydicom.dcmread(tmp_path / "out.dcm")
    olds = [e.value for _, e in _walk(before) if e.tag == 0x00081155]
    news = [e.value for _, e in _walk(after) if e.tag == 0x00081155]
    assert len(olds) == len(news) > 0
    for o, n in zip(olds, news, strict=True):
        probe = Dataset()
        probe.SOPInstanceUID = o
        deidentify_dataset(probe, key=KEY)
        assert n == probe.SOPInstanceUID  # the keyed mapping of every other UID
    if sequence in before:
        assert len(after[sequence].value) == len(before[sequence].value)
    assert rep.actions["U"] > 0


def test_refusal_comes_before_any_change(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("examples_overlay.dcm"))
    assert "ReferencedImageSequence" in ds
    ds.BurnedInAnnotation = "YES"
    before = ds.to_json_dict()
    with pytest.raises(ValueError, match="burned-in annotation"):
        deidentify_dataset(ds, key=KEY)
    assert ds.to_json_dict() == before  # nothing was changed
    ds.save_as(tmp_path / "burned.dcm", enforce_file_format=True)
    with pytest.raises(ImageReadError, match=r"burned\.dcm: .*burned-in annotation"):
        deidentify_series(tmp_path / "burned.dcm", tmp_path / "out.dcm", key=KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["burned.dcm"]


def test_burned_in_slice_refuses_the_whole_series(tmp_path):
    files = _series(tmp_path / "src")
    ds = pydicom.dcmread(files[-1])
    ds.BurnedInAnnotation = "YES"
    ds.save_as(files[-1], enforce_file_format=True)
    with pytest.raises(ImageReadError, match="burned-in annotation") as err:
        deidentify_series(tmp_path / "src", tmp_path / "out", key=KEY)
    assert err.value.file == str(files[-1])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_sr_content_sequence_keeps_its_structure():
    src = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    ds = pydicom.dcmread(get_testdata_file("test-SR.dcm"))
    counts = deidentify_dataset(ds, key=KEY)
    assert len(ds.ContentSequence) == len(src.ContentSequence) == 5  # Type 1: items kept
    old, new = dict(_walk(src)), dict(_walk(ds))
    for path, elem in old.items():
        if elem.VR == "SQ" and path in new and basic_profile().get(path[-1]) in (None, "D"):
            assert len(new[path].value) == len(elem.value), path  # the whole tree is kept
    texts = [e.value for p, e in new.items() if e.keyword in ("TextValue", "PersonName")]
    assert texts and set(texts) == {"ANONYMOUS"}
    assert {e.value for p, e in new.items() if e.keyword in ("Date", "DateTime")} <= {
        "19000101",
        "19000101000000",
    }
    # structure kept: value and relationship types
    kinds = [(p, e.value) for p, e in old.items() if e.keyword in ("ValueType", "RelationshipType")]
    assert kinds and all(new[p].value == v for p, v in kinds)
    assert counts["content"] > 0
    data = Dataset()
    data.ContentSequence = ds.ContentSequence
    # a public code (DCM) keeps its meaning, a local one does not
    item = Dataset()
    item.ValueType = "CODE"
    item.ConceptNameCodeSequence = Sequence([Dataset()])
    item.ConceptNameCodeSequence[0].update(
        {"CodeValue": "121071", "CodingSchemeDesignator": "DCM", "CodeMeaning": "Finding"}
    )
    item.ConceptCodeSequence = Sequence([Dataset()])
    item.ConceptCodeSequence[0].update(
        {"CodeValue": "JS42", "CodingSchemeDesignator": "99HOSP", "CodeMeaning": "John Smith"}
    )
    sr = Dataset()
    sr.ContentSequence = Sequence([item])
    deidentify_dataset(sr, key=KEY)
    assert sr.ContentSequence[0].ConceptNameCodeSequence[0].CodeMeaning == "Finding"
    assert sr.ContentSequence[0].ConceptCodeSequence[0].CodeMeaning == "ANONYMOUS"
    assert sr.ContentSequence[0].ConceptCodeSequence[0].CodeValue == "ANONYMOUS"


def test_every_table_attribute_planted_in_ct_small_is_gone(tmp_path):
    """All 652 attributes, the 35 the 2024b table missed among them, with a planted value."""
    ds = pydicom.dcmread(CT_SMALL)
    planted = {}
    for tag in PROFILE:
        if tag >> 16 in (0x0000, 0x0002, 0xFFFA, 0xFFFC) or tag in (0x7FE00010,):
            continue
        try:
            vr = dictionary_VR(tag).split(" ")[0]
        except KeyError:
            vr = "LO"  # newer than pydicom's dictionary
        value = f"ZQ{len(planted):06d}PL"
        if vr == "SQ":
            item = Dataset()
            item.PatientName = value
            ds.add_new(tag, "SQ", Sequence([item]))
        elif vr == "UI":
            if tag in ds:
                continue
            ds.add_new(tag, "UI", f"{_PLANTED_UID_ROOT}{len(planted)}")
            value = f"{_PLANTED_UID_ROOT}{len(planted)}"
        elif vr in _TEXT:
            ds.add_new(tag, vr, value)
        elif vr in ("OB", "OW", "UN"):
            ds.add_new(tag, vr, value.encode())
        elif vr in _FIXED:
            ds.add_new(tag, vr, _FIXED[vr])
            continue
        else:
            continue
        planted[tag] = value
    ds.save_as(tmp_path / "planted.dcm", enforce_file_format=True)
    deidentify_series(tmp_path / "planted.dcm", tmp_path / "out.dcm", key=KEY)
    raw = (tmp_path / "out.dcm").read_bytes()
    survived = [f"{t:08X}" for t, v in planted.items() if v.encode() in raw]
    assert not survived
    new = [0x00100012, 0x00100013, 0x00100016, 0x00100042, 0x00100045, 0x00100047, 0x00181010]
    assert all(t in planted for t in new)
    out = pydicom.dcmread(tmp_path / "out.dcm")
    assert all(t not in out for t in new)
    assert len(planted) > 450
