"""Tests for studyval.models.manifest: the image-manifest contract and its rules.

Oracle: the rules of data_dictionary/images.yml and models/manifest.py, each broken once in one
manifest: every violation must be listed at once (file, column, file line, rule) and nothing
written.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("nibabel")
pytest.importorskip("pydicom")
pytest.importorskip("monai")

from studyval.dictionary import load_dictionary
from studyval.errors import InputValidationError
from studyval.models.manifest import read_manifest, write_phantom_manifest


def _tree(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("study") / "data"
    path = write_phantom_manifest(d, 4, dicom_every=2, masks=True, splits=("development",))
    return d, path


def test_dictionary_loads_and_declares_the_columns():
    dd = load_dictionary("images")
    assert dd.names == (
        "case_id",
        "patient_id",
        "site",
        "split",
        "image_path",
        "label",
        "mask_path",
        "vertebral_level",
        "lowest_level",
    )
    assert dd["case_id"].unique and not dd["label"].required and not dd["mask_path"].required
    assert not dd["vertebral_level"].required and not dd["lowest_level"].required


def test_valid_manifest_gives_absolute_paths(study):
    d, path = study
    m = read_manifest(path, require="mask")
    assert [r.case_id for r in m] == ["C0000", "C0001", "C0002", "C0003"]
    assert [r.row for r in m] == [2, 3, 4, 5]
    first = m.records[0]
    assert Path(first.image) == d / "img" / "case0000" and Path(first.image).is_dir()
    assert Path(m.records[1].image).name == "case0001.nii.gz"
    assert Path(first.mask).is_file()
    assert read_manifest(path, require="label", classes=("chronic", "acute")).records[0].label == (
        "acute"
    )


def test_parquet_manifest_rows_are_positions_plus_two(study):
    d, path = study
    frame = pd.read_csv(path, dtype=str)
    frame.loc[2, "split"] = "validation"
    pq = d / "bad.parquet"
    frame.to_parquet(pq)
    with pytest.raises(InputValidationError) as exc:
        read_manifest(pq)
    (v,) = exc.value.violations
    assert (v.column, v.row) == ("split", 4)
    pq.unlink()


def test_every_violation_listed_at_once_and_nothing_written(tmp_path):
    d = tmp_path / "study"
    path = write_phantom_manifest(d, 4, masks=True)
    outside = tmp_path / "outside.nii.gz"
    outside.write_bytes((d / "img" / "case0001.nii.gz").read_bytes())  # exists, but outside
    (d / "notes.txt").write_text("x")
    rows = pd.read_csv(path, dtype=str, keep_default_na=False).to_dict("records")
    base = rows[0]
    bad = [
        {**base, "case_id": "A1", "patient_id": "Q1", "image_path": str(outside)},  # line 2
        {**base, "case_id": "A2", "patient_id": "Q2", "image_path": "../outside.nii.gz"},  # 3
        {**base, "case_id": "A3", "patient_id": "Q3", "image_path": "img/nope.nii.gz"},  # 4
        {**base, "case_id": "A4", "patient_id": "Q4", "image_path": "notes.txt"},  # 5
        {**base, "case_id": "A5", "patient_id": "Q5", "image_path": "img\\case0001.nii.gz"},  # 6
        {**base, "case_id": "A6", "patient_id": "Q6", "split": "development"},  # 7
        {**base, "case_id": "A6", "patient_id": "Q7", "image_path": "img/case0002.nii.gz"},  # 8
        {
            **base,
            "case_id": "A8",
            "patient_id": "Q6",
            "split": "internal",
            "image_path": "img/case0003.nii.gz",
        },  # 9: Q6 in two splits
        {
            **base,
            "case_id": "A9",
            "patient_id": "Q9",
            "label": "subacute",
            "image_path": "img/case0001.nii.gz",
            "mask_path": "img",
        },  # 10: label, mask kind
        {
            **base,
            "case_id": "A10",
            "patient_id": "Q10",
            "split": "validation",
            "image_path": "img/case0001.nii.gz",
        },  # 11: not a split (and Q10 shares an image)
        {
            **base,
            "case_id": "A11",
            "patient_id": "Q11",
            "label": "",
            "image_path": "img/case0001.nii.gz",
        },  # 12: label missing for training
    ]
    frame = pd.DataFrame(bad)
    bad_path = d / "bad.csv"
    frame.to_csv(bad_path, index=False)
    before = _tree(tmp_path)
    with pytest.raises(InputValidationError) as exc:
        read_manifest(bad_path, require="label", classes=("chronic", "acute"))
    assert _tree(tmp_path) == before  # nothing written, nothing moved
    found = {(v.column, v.row): v.rule for v in exc.value.violations}
    expected = {
        ("image_path", 2): "must be relative to the manifest's folder",
        ("image_path", 3): "leaves the manifest's folder through '..'",
        ("image_path", 4): "does not exist",
        ("image_path", 5): "an image must be a DICOM series folder or a .nii",
        ("image_path", 6): "use '/' between folders",
        ("case_id", 8): "duplicate value; first seen in row 7",
        ("split", 9): "patient 'Q6' is in split 'development' in row 7: one split per patient",
        ("label", 10): "not one of the config's classes (chronic, acute)",
        ("mask_path", 10): "a mask must be a .nii or .nii.gz file",
        ("split", 11): "not an allowed level (development, internal, external)",
        ("image_path", 11): "the same image is listed for patient 'Q9' in row 10",
        ("image_path", 12): "the same image is listed for patient 'Q9' in row 10",
        ("label", 12): "a development row needs its label for training",
    }
    for key, rule in expected.items():
        assert key in found, f"{key} not reported; found {sorted(found)}"
        assert rule in found[key], (key, found[key])
    message = exc.value.full_message()
    assert "bad.csv, column 'image_path', row 3" in message


def test_root_widens_the_tree_and_symlinks_are_followed(tmp_path):
    data = tmp_path / "data"
    write_phantom_manifest(data, 2)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    frame = pd.read_csv(data / "images.csv", dtype=str)
    frame["image_path"] = "../data/" + frame["image_path"]
    frame.to_csv(manifests / "m.csv", index=False)
    with pytest.raises(InputValidationError, match="leaves the manifest's folder through"):
        read_manifest(manifests / "m.csv")
    # with an image root, the paths are relative to it (and may not leave it)
    frame["image_path"] = frame["image_path"].str.removeprefix("../")
    frame.to_csv(manifests / "m.csv", index=False)
    m = read_manifest(manifests / "m.csv", root=tmp_path)
    assert Path(m.records[1].image) == data / "img" / "case0001.nii.gz"
    # the rule is lexical: a link placed inside the tree may point outside it
    link_dir = tmp_path / "linked"
    link_dir.mkdir()
    os.symlink(data / "img", link_dir / "img")
    pd.read_csv(data / "images.csv", dtype=str).to_csv(link_dir / "images.csv", index=False)
    assert len(read_manifest(link_dir / "images.csv")) == 2


def test_training_columns_required(study):
    d, path = study
    frame = pd.read_csv(path, dtype=str).drop(columns=["mask_path", "label"])
    p = d / "nolabels.csv"
    frame.to_csv(p, index=False)
    assert len(read_manifest(p)) == 4  # prediction needs neither
    with pytest.raises(InputValidationError, match="training a classifier needs a 'label' column"):
        read_manifest(p, require="label")
    with pytest.raises(InputValidationError, match="needs a 'mask_path' column"):
        read_manifest(p, require="mask")
    p.unlink()


def test_external_rows_need_no_reference(tmp_path):
    path = write_phantom_manifest(tmp_path, 2, splits=("development", "external"))
    frame = pd.read_csv(path, dtype=str)
    frame.loc[1, "label"] = None
    frame.to_csv(path, index=False)
    m = read_manifest(path, require="label", classes=("chronic", "acute"))
    assert m.records[1].label is None and m.records[1].split == "external"
