"""Tests for studyval.models.crops: the crop stage between a vertebra manifest and the classifiers.

Oracles: the phantoms' true vertebral-body masks (the segmentation network is replaced by a
lookup of the true mask of the image it is given, so the expected crop of every case is known
exactly), the SHA-256 of the files read and written, the prediction-table contract
(``read_table(path, "predictions")``), and equality of the command line with the library.
The demo chain (tests/test_models_demo.py) runs the stage with a trained network.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from studyval.dictionary import read_table  # noqa: E402
from studyval.errors import InputValidationError, StudyvalError  # noqa: E402
from studyval.models import inference  # noqa: E402
from studyval.models.checkpoints import save_weights, sha256_file  # noqa: E402
from studyval.models.config import load_config  # noqa: E402
from studyval.models.crops import (  # noqa: E402
    CROP_FILL_HU,
    NOT_DELINEATED,
    crop_size_for,
    crop_vertebrae,
)
from studyval.models.imaging import apply_window, load_image  # noqa: E402
from studyval.models.inference import input_key, predict_from_manifest, vertebra_crops  # noqa: E402
from studyval.models.phantoms import spine_phantom, write_dicom_series, write_nifti  # noqa: E402

SIZE = (32, 32, 32)
# patient: (storage, lowest level, patterns from it upwards)
SCANS = {
    "P1": ("nifti", "L1", ("intact", "acute", "chronic")),
    "P2": ("dicom", "T12", ("chronic", "intact", "acute")),
    "P3": ("broken", "L2", ("acute", "intact", "intact")),
}
# case: (patient, level, split)
CASES = {
    "C1": ("P1", "L2", "development"),
    "C2": ("P1", "L3", "development"),
    "C3": ("P2", "T12", "external"),
    "C4": ("P2", "L2", "external"),
    "C5": ("P3", "L2", "external"),  # unreadable series (a slice missing)
    "C6": ("P1", "L5", "development"),  # not in the scan: not delineated
}


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    d = tmp_path_factory.mktemp("vertebrae")
    phantoms, paths = {}, {}
    for k, (pid, (kind, _, patterns)) in enumerate(SCANS.items()):
        ph = spine_phantom(
            shape=(32, 32, 48), spacing=(1.0, 1.0, 1.0), patterns=patterns, seed=10 + k
        )
        phantoms[pid] = ph
        if kind == "nifti":
            rel = f"scans/{pid}.nii.gz"
            (d / "scans").mkdir(exist_ok=True)
            write_nifti(ph.image, d / rel, spacing=ph.spacing)
        else:
            rel = f"scans/{pid}"
            files = write_dicom_series(ph.image, d / rel, spacing=ph.spacing, seed=10 + k)
            if kind == "broken":
                files[len(files) // 2].unlink()
        paths[pid] = rel
    rows = [
        {
            "case_id": case,
            "patient_id": pid,
            "site": "EXT" if split == "external" else "A",
            "split": split,
            "image_path": paths[pid],
            "vertebral_level": level,
            "lowest_level": SCANS[pid][1],
        }
        for case, (pid, level, split) in CASES.items()
    ]
    pd.DataFrame(rows).to_csv(d / "vertebrae.csv", index=False)
    return d, phantoms


@pytest.fixture(scope="module")
def seg_cfg():
    return load_config("unet3d_vertebra_seg").smoke_version()


@pytest.fixture(scope="module")
def seg_weights(seg_cfg, tmp_path_factory):
    torch.manual_seed(0)
    path, _ = save_weights(
        seg_cfg.build_network(), tmp_path_factory.mktemp("seg"), config_name=seg_cfg.name
    )
    return path


@pytest.fixture()
def true_masks(study, seg_cfg, monkeypatch):
    """The network replaced by the true body mask of the image it is given (read from disk)."""
    d, phantoms = study
    truth = {}
    for pid, (kind, _, _) in SCANS.items():
        if kind == "broken":
            continue
        rel = f"scans/{pid}.nii.gz" if kind == "nifti" else f"scans/{pid}"
        vol = load_image(d / rel, spacing=seg_cfg.spacing)
        img01 = apply_window(vol.array, seg_cfg.hu_window)
        truth[hashlib.sha256(img01.tobytes()).hexdigest()] = (vol, phantoms[pid].label)

    def segment(model, image01, **kw):
        return truth[hashlib.sha256(np.ascontiguousarray(image01).tobytes()).hexdigest()][1]

    monkeypatch.setattr(inference, "segment", segment)
    return truth


def test_every_case_is_cropped_or_kept_as_failed(study, seg_cfg, seg_weights, true_masks, tmp_path):
    d, phantoms = study
    res = crop_vertebrae(
        seg_cfg, seg_weights, d / "vertebrae.csv", tmp_path, crop_size=SIZE, progress=False
    )
    assert (res.n_cases, res.n_images, res.n_cropped, res.n_failed) == (6, 3, 4, 2)
    assert res.model_version == f"sha256:{sha256_file(seg_weights)}"
    crops = pd.read_csv(res.manifest, dtype=str)
    assert list(crops["case_id"]) == ["C1", "C2", "C3", "C4"]  # input order
    assert list(crops.columns) == [
        "case_id", "patient_id", "site", "split", "image_path", "vertebral_level",
    ]  # fmt: skip
    assert list(crops["image_path"]) == [f"crops/C{i}.nii.gz" for i in range(1, 5)]
    # each crop is the box around the case's true body, in HU, air outside the scan
    for case in crops.itertuples():
        pid, level, _ = CASES[case.case_id]
        vol = next(v for v, lab in true_masks.values() if lab is phantoms[pid].label)
        expected = next(
            c.array
            for c in vertebra_crops(
                vol.array,
                phantoms[pid].label,
                roi_size=SIZE,
                lowest_level=SCANS[pid][1],
                fill=CROP_FILL_HU,
            )
            if c.level == level
        )
        got = load_image(tmp_path / case.image_path).array
        np.testing.assert_array_equal(got, expected)
        assert got.min() == CROP_FILL_HU  # the box leaves the 32-voxel-wide scan
    failed = pd.read_csv(res.failed, dtype=str).set_index("case_id")
    assert list(failed.index) == ["C5", "C6"]
    assert "missing slice" in failed.loc["C5", "failure_reason"]
    assert failed.loc["C5", "failure_reason"].startswith("image unreadable")
    assert str(d) not in failed.loc["C5", "failure_reason"]  # a file name, never a path
    assert failed.loc["C5", "input_sha256"] == input_key(d / "scans" / "P3")
    assert failed.loc["C6", "failure_reason"] == NOT_DELINEATED
    p1 = next(v for v, lab in true_masks.values() if lab is phantoms["P1"].label)
    assert failed.loc["C6", "input_sha256"] == p1.sha256
    sources = pd.read_csv(tmp_path / "sources.csv", dtype=str).set_index("case_id")
    assert sources.loc["C1", "crop_sha256"] == sha256_file(tmp_path / "crops" / "C1.nii.gz")
    assert sources.loc["C3", "source_sha256"] == load_image(d / "scans" / "P2").sha256
    assert set(sources["segmentation_model_version"]) == {res.model_version}


def test_predict_on_the_crops_keeps_the_failed_cases(
    study, seg_cfg, seg_weights, true_masks, tmp_path
):
    d, _ = study
    res = crop_vertebrae(
        seg_cfg, seg_weights, d / "vertebrae.csv", tmp_path / "c", crop_size=SIZE, progress=False
    )
    cls = load_config("densenet121_ovcf").smoke_version()
    assert crop_size_for([cls]) == SIZE
    torch.manual_seed(1)
    weights, _ = save_weights(cls.build_network(), tmp_path / "w", config_name=cls.name)
    out = tmp_path / "p"
    scored = predict_from_manifest(
        cls, weights, res.manifest, out, failed=res.failed, num_workers=0, progress=False
    )
    assert (scored.n_cases, scored.n_scored, scored.n_failed) == (6, 4, 2)
    table = read_table(scored.table_path, "predictions")  # the contract holds
    assert list(table["case_id"]) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert list(table["vertebral_level"].astype(str)) == ["L2", "L3", "T12", "L2", "L2", "L5"]
    assert list(table["status"]) == ["ok"] * 4 + ["failed"] * 2
    assert list(table["failure_reason"].astype(str)[4:]) == [
        "incomplete series",
        "segmentation failed",
    ]
    raw = pd.read_csv(scored.table_path, dtype=str).set_index("case_id")
    assert raw.loc["C1", "input_sha256"] == sha256_file(tmp_path / "c" / "crops" / "C1.nii.gz")
    assert set(raw["model_version"]) == {scored.model_version}
    # a rerun skips the scored crops and keeps the failed rows as they were
    again = predict_from_manifest(
        cls, weights, res.manifest, out, failed=res.failed, num_workers=0, progress=False
    )
    assert (again.n_scored, again.n_skipped) == (0, 4)
    assert again.table_path.read_bytes() == scored.table_path.read_bytes()
    # failed cases may not also be in the manifest
    both = tmp_path / "both.csv"
    pd.read_csv(res.failed, dtype=str).assign(case_id="C1").iloc[:1].to_csv(both, index=False)
    with pytest.raises(StudyvalError, match="also in the manifest: C1"):
        predict_from_manifest(cls, weights, res.manifest, tmp_path / "x", failed=both)
    assert not (tmp_path / "x").exists()


def test_the_vertebra_manifest_is_checked_before_anything_runs(
    study, seg_cfg, seg_weights, tmp_path
):
    d, _ = study
    frame = pd.read_csv(d / "vertebrae.csv", dtype=str)
    bad = d / "bad.csv"
    try:
        frame.drop(columns="lowest_level").to_csv(bad, index=False)
        with pytest.raises(InputValidationError, match="needs a 'lowest_level' column"):
            crop_vertebrae(seg_cfg, seg_weights, bad, tmp_path / "o", progress=False)
        broken = frame.copy()
        broken.loc[0, "vertebral_level"] = "T11"  # below the scan's lowest level L1
        broken.loc[1, "lowest_level"] = None
        broken.loc[2, "vertebral_level"] = "S1"  # not a level
        broken.to_csv(bad, index=False)
        with pytest.raises(InputValidationError) as err:
            crop_vertebrae(seg_cfg, seg_weights, bad, tmp_path / "o", progress=False)
        text = str(err.value)
        assert "below the image's lowest level L1" in text
        assert "cropping vertebrae needs it" in text and "S1" in text
    finally:
        bad.unlink(missing_ok=True)
    cls = load_config("densenet121_ovcf").smoke_version()
    with pytest.raises(StudyvalError, match="not a 3-D segmentation config"):
        crop_vertebrae(cls, seg_weights, d / "vertebrae.csv", tmp_path / "o", progress=False)
    with pytest.raises(Exception, match="no checkpoint given"):
        crop_vertebrae(seg_cfg, None, d / "vertebrae.csv", tmp_path / "o", progress=False)
    assert not (tmp_path / "o").exists()


def test_the_command_line_crops_and_predicts_like_the_library(
    study, seg_cfg, seg_weights, true_masks, tmp_path
):
    from click.testing import CliRunner

    from studyval.cli import main

    d, _ = study
    lib = crop_vertebrae(
        seg_cfg, seg_weights, d / "vertebrae.csv", tmp_path / "lib", crop_size=SIZE, progress=False
    )
    args = ["models", "crop", "unet3d_vertebra_seg", "--smoke", "--weights", str(seg_weights)]
    args += ["--images", str(d / "vertebrae.csv"), "--out", str(tmp_path / "cli")]
    res = CliRunner().invoke(main, [*args, "--crop-size", "32,32,32", "-q"])
    assert res.exit_code == 0, res.output
    assert "6 cases in 3 images: 4 cropped, 2 without a crop" in res.output
    for name in ("images.csv", "failed.csv", "sources.csv", "crops/C3.nii.gz"):
        assert (tmp_path / "cli" / name).read_bytes() == (tmp_path / "lib" / name).read_bytes()
    bad = CliRunner().invoke(main, [*args, "--crop-size", "32,32", "-q"])
    assert bad.exit_code == 2 and "three positive integers" in bad.output
    cls = load_config("densenet121_ovcf").smoke_version()
    torch.manual_seed(1)
    weights, _ = save_weights(cls.build_network(), tmp_path / "w", config_name=cls.name)
    pargs = ["models", "predict", "densenet121_ovcf", "--smoke", "--weights", str(weights)]
    pargs += ["--images", str(lib.manifest), "--failed", str(lib.failed)]
    pargs += ["--out", str(tmp_path / "pred"), "-q"]
    res = CliRunner().invoke(main, pargs)
    assert res.exit_code == 0, res.output
    assert "6 cases: 4 scored, 0 already scored, 2 failed" in res.output
