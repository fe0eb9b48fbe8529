"""Tests for studyval.models.inference: the prediction table of the contract.

Oracle: ``studyval.dictionary.read_table(path, "predictions")``, the
validator of ``data_dictionary/predictions.yml``. Scans are spine phantoms
written as a DICOM series and as NIfTI, plus an unreadable series (a 0-byte
file) whose case must keep its row with ``status = failed``.
"""

from __future__ import annotations

import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")
pytest.importorskip("pydicom")
pytest.importorskip("nibabel")

from studyval.dictionary import read_table  # noqa: E402
from studyval.models.checkpoints import CheckpointError  # noqa: E402
from studyval.models.config import load_config  # noqa: E402
from studyval.models.inference import (  # noqa: E402
    PREDICTION_COLUMNS,
    grad_cam_png,
    predict_vertebrae,
    segment,
    vertebra_crops,
)
from studyval.models.phantoms import spine_phantom, write_dicom_series, write_nifti  # noqa: E402
from studyval.models.training import phantom_training_data, train  # noqa: E402


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    seg = load_config("unet3d_vertebra_seg").smoke_version()
    cls = load_config("densenet121_ovcf").smoke_version()
    x, y = phantom_training_data(seg, 4, seed=1)
    rs = train(seg, x, y, out_dir=out / "seg", epochs=5, learning_rate=1e-2, progress=False)
    x, y = phantom_training_data(cls, 2, seed=1)
    rc = train(cls, x, y, out_dir=out / "cls", epochs=1, progress=False)
    return seg, rs, cls, rc


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    d = tmp_path_factory.mktemp("scans")
    p = spine_phantom(
        shape=(40, 40, 64), spacing=(1.0, 1.0, 1.0), patterns=("intact", "acute", "chronic"), seed=5
    )
    write_dicom_series(p.image, d / "scan1", spacing=p.spacing)
    write_nifti(p.image, d / "scan2.nii.gz", spacing=p.spacing)
    (d / "scan3").mkdir()
    (d / "scan3" / "a.dcm").write_bytes(b"")
    return d, p


def _cases(d):
    rows = [
        ("C1-L1", "P1", "A", "development", "scan1", "L1"),
        ("C1-L2", "P1", "A", "development", "scan1", "L2"),
        ("C2-L3", "P2", "B", "external", "scan2.nii.gz", "L3"),
        ("C2-L5", "P2", "B", "external", "scan2.nii.gz", "L5"),
        ("C3-L1", "P3", "B", "external", "scan3", "L1"),
    ]
    return pd.DataFrame(
        [
            {
                "case_id": c,
                "patient_id": p,
                "site": s,
                "split": sp,
                "image_path": str(d / f),
                "vertebral_level": lv,
                "lowest_level": "L1",
            }
            for c, p, s, sp, f, lv in rows
        ]
    )


def test_segmentation_finds_the_bodies(models, scans):
    seg, rs, _, _ = models
    _, p = scans
    from studyval.models.imaging import apply_window
    from studyval.models.inference import load_model

    net, version = load_model(seg, rs.weights_path)
    assert version == rs.model_version
    img = apply_window(p.image, seg.hu_window)
    mask = segment(net, img, roi_size=seg.roi_size) > 0
    inter = (mask & (p.label > 0)).sum()
    dice = 2 * inter / (mask.sum() + (p.label > 0).sum())
    assert dice > 0.7  # sliding windows over a larger volume than trained on
    crops = vertebra_crops(img, mask, roi_size=(32, 32, 32), lowest_level="L1")
    assert [c.level for c in crops] == ["L1", "L2", "L3"]
    assert all(c.array.shape == (32, 32, 32) for c in crops)


def test_prediction_table_passes_contract(models, scans, tmp_path):
    seg, rs, cls, rc = models
    d, _ = scans
    out = tmp_path / "predictions.csv"
    table = predict_vertebrae(
        _cases(d),
        seg_config=seg,
        seg_checkpoint=rs.weights_path,
        cls_config=cls,
        cls_checkpoint=rc.weights_path,
        out_path=out,
        gradcam_dir=tmp_path / "cam",
    )
    assert tuple(table.columns) == PREDICTION_COLUMNS
    checked = read_table(out, "predictions")  # raises InputValidationError on any violation
    assert list(checked["case_id"]) == ["C1-L1", "C1-L2", "C2-L3", "C2-L5", "C3-L1"]
    assert set(checked["model_version"]) == {rc.model_version}
    ok = checked[checked["status"] == "ok"]
    assert list(ok["case_id"]) == ["C1-L1", "C1-L2", "C2-L3"]
    assert ok["score"].between(0, 1).all()
    failed = checked.set_index("case_id").loc[["C2-L5", "C3-L1"]]
    assert failed["score"].isna().all()
    # read_table maps the free text to the dictionary's closed vocabulary ...
    assert failed.loc["C2-L5", "failure_reason"] == "segmentation failed"
    assert failed.loc["C3-L1", "failure_reason"] == "image unreadable"
    # ... while the table the model wrote keeps the problem and the file name, never the path
    # (folders are often named by patient)
    raw = table.set_index("case_id")
    assert raw.loc["C2-L5", "failure_reason"] == "segmentation failed: vertebral body not delineated"
    assert raw.loc["C3-L1", "failure_reason"] == "image unreadable: file is empty (0 bytes) (a.dcm)"
    # DICOM and NIfTI inputs are hashed from their own bytes
    assert checked.loc[0, "input_sha256"] != checked.loc[2, "input_sha256"]
    assert sorted(p.name for p in (tmp_path / "cam").glob("*.png")) == [
        "C1-L1.png",
        "C1-L2.png",
        "C2-L3.png",
    ]


@pytest.mark.parametrize("which", ["seg", "cls"])
def test_missing_checkpoint_is_an_error(models, scans, tmp_path, which):
    seg, rs, cls, rc = models
    d, _ = scans
    kw = {"seg_checkpoint": rs.weights_path, "cls_checkpoint": rc.weights_path}
    kw[f"{which}_checkpoint"] = tmp_path / "missing.pt"
    with pytest.raises(
        CheckpointError,
        match=r"missing\.pt: checkpoint does not exist; refusing to run a network with random weights",
    ):
        predict_vertebrae(
            _cases(d), seg_config=seg, cls_config=cls, out_path=tmp_path / "p.csv", **kw
        )
    assert not (tmp_path / "p.csv").exists()


def test_grad_cam_png(models, tmp_path):
    _, _, cls, rc = models
    from studyval.models.inference import load_model

    net, _ = load_model(cls, rc.weights_path)
    crop = phantom_training_data(cls, 1, seed=2)[0][0, 0]
    path = grad_cam_png(net, crop, tmp_path / "cam.png", arch=cls.arch, class_index=1)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no default Grad-CAM layer for 'ViT'"):
        grad_cam_png(net, crop, tmp_path / "x.png", arch="ViT", class_index=1)
