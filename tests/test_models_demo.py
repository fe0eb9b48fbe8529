"""Tests for studyval.imaging_demo: phantoms -> CPU training -> the tables the validation layer reads.

The chains run here on a small slice of each synthetic cohort with fewer
epochs (the demo runs them whole). Oracles: the data dictionaries and the
protocols' own input validation (``studyval.pipeline.load_inputs``), the
phantoms' known truth, and byte equality of two seeded runs. The chains need
the ``models`` extra (their tests are skipped without it); the layering of
``models/`` is checked without it.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest

from studyval.dictionary import read_table
from studyval.imaging_demo import cirrhosis_imaging, ovcf_imaging
from studyval.pipeline import _imaging_files, load_inputs, run_protocol
from studyval.synthetic import cirrhosis_sarcopenia, ovcf_chronicity

MODELS = Path(__file__).resolve().parents[1] / "models"
#: The studyval layer above the models library: models/ never imports these.
ABOVE_MODELS = ("studyval.analysis", "studyval.figures", "studyval.privacy")


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside a function."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_models_library_imports_nothing_above_it():
    """The imaging demo's orchestration moved out: models/ is library code only."""
    offending = {
        path.name: sorted(
            name
            for name in _imported_modules(path)
            if any(name == m or name.startswith(f"{m}.") for m in ABOVE_MODELS)
        )
        for path in sorted(MODELS.rglob("*.py"))
    }
    assert {k: v for k, v in offending.items() if v} == {}
    assert not (MODELS / "demo.py").exists()
    assert "studyval.models.phantom_datasets" in _imported_modules(
        Path(__file__).resolve().parents[1] / "studyval" / "imaging_demo.py"
    )


def _needs_models() -> None:
    for module in ("torch", "monai", "pydicom", "nibabel"):
        pytest.importorskip(module)


FAST_OVCF = {
    "dicom_patients": 2,
    "segmentation": {"config": "unet3d_vertebra_seg", "volumes": 4, "epochs": 3, "lr": 0.01},
    "classifiers": {
        "densenet121_ovcf": {"epochs": 2, "lr": 0.003},
        "vit_ovcf": {"epochs": 2, "lr": 0.001},
        "vgg16_ovcf": {"epochs": 1, "lr": 0.001},
    },
}


def _ovcf_subset(d: Path) -> Path:
    """16 development-centre and 6 external patients of the synthetic cohort, plus the excluded."""
    paths = ovcf_chronicity.generate().write(d / "inputs")
    clin = pd.read_csv(paths["clinical"], dtype=str, keep_default_na=False)
    inc = clin[clin["exclusion_reason"] == "none"]
    keep = set(
        sorted(inc.loc[inc.site == "CQMU", "patient_id"].unique())[:16]
        + sorted(inc.loc[inc.site == "EXT", "patient_id"].unique())[:6]
    )
    sub = clin[clin["patient_id"].isin(keep) | (clin["exclusion_reason"] != "none")]
    out = d / "clinical.csv"
    sub.to_csv(out, index=False)
    return out


@pytest.fixture(scope="module")
def ovcf_run(tmp_path_factory):
    _needs_models()
    d = tmp_path_factory.mktemp("ovcf")
    clinical = _ovcf_subset(d)
    res = ovcf_imaging(clinical, d / "run", seed=7, parameters=FAST_OVCF)
    return d, clinical, res


def test_ovcf_chain_writes_a_contract_table(ovcf_run):
    _, clinical, res = ovcf_run
    table = read_table(res.predictions, "predictions")  # raises on any contract violation
    clin = pd.read_csv(clinical, dtype=str, keep_default_na=False)
    n_cases = int((clin["exclusion_reason"] == "none").sum())
    assert len(table) == 3 * n_cases
    assert set(table["model_name"]) == {"DenseNet-121", "ViT", "VGG-16"}
    manifest = json.loads((res.imaging / "manifest.json").read_text())
    versions = {m["model"]: m["model_version"] for m in manifest["models"]}
    for model, sub in table.groupby("model_name"):
        assert set(sub["model_version"]) == {versions[model]}
    # the first external DICOM patient has a slice without pixel data: failed, not dropped
    failed = table[table["status"] == "failed"]
    assert len(failed) >= 3
    assert "image unreadable" in set(failed["failure_reason"])
    assert not failed["failure_reason"].str.startswith("other").any()
    # the file the model wrote keeps the reason (read_table maps it to the closed vocabulary)
    raw = pd.read_csv(res.predictions, dtype=str, keep_default_na=False)
    failed = raw[raw["status"] == "failed"]
    assert failed["failure_reason"].str.contains("has no pixel data").any()
    # the file's name only: its folder is named by patient id
    assert failed["failure_reason"].str.contains(r"\(slice_\d+\.dcm\)").all()
    assert not failed["failure_reason"].str.contains("/").any()
    ok = table[table["status"] == "ok"]
    assert ok["score"].between(0, 1, inclusive="neither").all()


def test_ovcf_chain_output_passes_the_protocol_validation(ovcf_run):
    _, clinical, res = ovcf_run
    loaded = load_inputs("ovcf-chronicity", clinical, res.predictions)
    assert len(loaded.cohort.predictions) > 0
    files = _imaging_files(res.imaging)
    assert {"tables/segmentation_summary.csv", "tables/gradcam.csv", "manifest.json"} <= set(files)
    assert any(k.startswith("figures/gradcam_") for k in files)


def test_ovcf_chain_reads_dicom_from_a_deidentified_copy(ovcf_run):
    d, _, res = ovcf_run
    deid = sorted((d / "run" / "deid").iterdir())
    assert len(deid) == 1  # two DICOM patients, one refused (no pixel data)
    import pydicom

    ds = pydicom.dcmread(sorted(deid[0].iterdir())[0])
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientID.startswith("PS-")
    used = pd.read_csv(res.predictions)
    assert not used["input_sha256"].isna().any()


def test_ovcf_segmentation_beats_the_stated_bound(ovcf_run):
    _, _, res = ovcf_run
    summary = pd.read_csv(res.imaging / "tables" / "segmentation_summary.csv")
    dice = summary[summary["metric"] == "dice"]
    assert (dice["mean"] > 0.85).all(), dice  # 4 volumes, 3 epochs; the demo reaches ~0.98


def test_ovcf_chain_is_byte_reproducible(ovcf_run, tmp_path):
    _, clinical, res = ovcf_run
    again = ovcf_imaging(clinical, tmp_path / "run", seed=7, parameters=FAST_OVCF)

    def sha(p: Path) -> str:
        return hashlib.sha256(p.read_bytes()).hexdigest()

    a, b = pd.read_csv(res.predictions), pd.read_csv(again.predictions)
    # image paths differ (another working directory); everything else is equal
    pd.testing.assert_frame_equal(
        a.drop(columns="failure_reason"), b.drop(columns="failure_reason")
    )
    for name in ("segmentation_summary.csv", "gradcam.csv", "training_history.csv"):
        ta = pd.read_csv(res.imaging / "tables" / name)
        tb = pd.read_csv(again.imaging / "tables" / name)
        pd.testing.assert_frame_equal(
            ta.drop(columns=["seconds"], errors="ignore"),
            tb.drop(columns=["seconds"], errors="ignore"),
        )
    for png in sorted((res.imaging / "figures").glob("*.png")):
        assert sha(png) == sha(again.imaging / "figures" / png.name)


def test_imaging_outputs_go_into_the_bundle(ovcf_run, tmp_path, minimal_plan):
    """The chain's outputs are copied into bundle/imaging with their hashes in the manifest.

    The subset is too small for the protocol's analyses (one internal class can be empty,
    briefly trained networks can score every case alike), so the bundle is built from the
    whole synthetic cohort and its score table here; the demo runs the whole chain into
    the report. The subject is the bundle's files, not its numbers: the plan is the minimal
    one (tests/conftest.py ``minimal_plan``), whose run copies the imaging outputs as the
    bundled plan's does.
    """
    d, _, res = ovcf_run
    out = tmp_path / "bundle"
    run_protocol(
        "ovcf-chronicity",
        clinical=d / "inputs" / "clinical.csv",
        predictions=d / "inputs" / "predictions.csv",
        out=out,
        render=False,
        imaging=res.imaging,
        plan=minimal_plan("ovcf-chronicity"),
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert "tables/gradcam.csv" in manifest["imaging"]
    for rel, sha in manifest["imaging"].items():
        assert hashlib.sha256((out / "imaging" / rel).read_bytes()).hexdigest() == sha


def test_an_imaging_directory_with_other_files_is_refused(ovcf_run, tmp_path):
    import shutil

    from studyval.errors import StudyvalError

    _, _, res = ovcf_run
    bad = tmp_path / "imaging"
    shutil.copytree(res.imaging, bad)
    (bad / "figures" / "scan.nii.gz").write_bytes(b"image")
    with pytest.raises(StudyvalError, match=r"scan\.nii\.gz: an imaging output holds"):
        _imaging_files(bad)


# ---- cirrhosis-sarcopenia ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def cirrhosis_run(tmp_path_factory):
    _needs_models()
    d = tmp_path_factory.mktemp("cs")
    paths = cirrhosis_sarcopenia.generate().write(d / "inputs")
    clin = pd.read_csv(paths["clinical"], dtype=str, keep_default_na=False)
    inc = clin[clin["exclusion_reason"] == "none"]
    keep = list(inc.index[inc.site == "PKUPH"][:40]) + list(inc.index[inc.site == "EXT"][:20])
    sub = pd.concat([clin.loc[keep], clin[clin["exclusion_reason"] != "none"]])
    clinical = d / "clinical.csv"
    sub.to_csv(clinical, index=False)
    res = cirrhosis_imaging(
        clinical,
        d / "run",
        seed=11,
        cutoffs={"M": 50.0, "F": 39.0},
        parameters={
            "segmentation": {"config": "unet2d_l3_muscle", "slices": 24, "epochs": 10, "lr": 0.01}
        },
    )
    return clinical, res


def test_cirrhosis_chain_measures_close_to_the_truth(cirrhosis_run):
    _, res = cirrhosis_run
    ag = pd.read_csv(res.imaging / "tables" / "segmentation_agreement.csv")
    rel = (ag["measured_area_cm2"] - ag["true_area_cm2"]).abs() / ag["true_area_cm2"]
    assert rel.median() < 0.05, rel.describe()  # short training; the demo is closer
    assert (ag["dice"] > 0.8).all()


def test_cirrhosis_chain_table_passes_the_protocol_rules(cirrhosis_run):
    clinical, res = cirrhosis_run
    loaded = load_inputs("cirrhosis-sarcopenia", res.clinical, None)  # SMI = area/h², cut-offs
    measured = pd.read_csv(res.clinical, dtype=str, keep_default_na=False)
    original = pd.read_csv(clinical, dtype=str, keep_default_na=False)
    assert len(measured) == len(original)
    inc = measured["exclusion_reason"] == "none"
    versions = set(
        measured.loc[measured["segmentation_model_version"] != "", "segmentation_model_version"]
    )
    manifest = json.loads((res.imaging / "manifest.json").read_text())
    assert versions == {manifest["models"][0]["model_version"]}
    # outcomes untouched; only the imaging-derived columns change
    same = [
        c
        for c in original.columns
        if c not in ("l3_muscle_area_cm2", "smi_cm2_m2", "sarcopenia", "segmentation_model_version")
    ]
    pd.testing.assert_frame_equal(measured[same], original[same])
    assert inc.sum() == len(
        loaded.cohort.clinical[loaded.cohort.clinical["exclusion_reason"] == "none"]
    )


def test_imaging_outputs_carry_no_identifier(ovcf_run):
    """No planted identifier, patient id or case id in anything the chain hands to a bundle."""
    from studyval.privacy import scan_for_identifiers

    _, clinical, res = ovcf_run
    clin = pd.read_csv(clinical, dtype=str, keep_default_na=False)
    planted = set(clin["patient_name"]) | set(clin["medical_record_number"])
    planted |= set(clin["date_of_birth"]) | set(clin["patient_id"]) | set(clin["case_id"])
    report = scan_for_identifiers([res.imaging], planted)
    assert report.n_files >= 8
    assert report.ok, report.summary()
