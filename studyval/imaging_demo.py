r"""The imaging half of ``studyval demo``: phantom CT scans -> a few CPU epochs -> the input tables.

For the two protocols whose inputs come out of an imaging model, the demo does
not use a table of simulated scores: it builds a CT phantom for every patient
of the synthetic cohort, trains the networks of ``models/configs`` (their tiny
``smoke`` versions) for a few epochs on the development patients, runs
inference on every patient, and writes the tables the validation layer reads.

The chains run the code paths of the command line, on files: the phantoms are
written as NIfTI files and DICOM series with image manifests
(``data_dictionary/images.yml``), every network is trained by
:func:`studyval.models.training.train_from_manifest` (``studyval models
train``) on training sets written to disk with their manifests, vertebrae are
cropped by :func:`studyval.models.crops.crop_vertebrae` (``studyval models
crop``) and scored by :func:`studyval.models.inference.predict_from_manifest`
(``studyval models predict``). There is no in-memory shortcut.

This module orchestrates; the imaging work is done by the models library
(:mod:`studyval.models`: phantoms, training sets drawn from them in
:mod:`studyval.models.phantom_datasets`, training, cropping, inference, body
composition, de-identification). It lives in the studyval layer because the
chains also summarise their results with :mod:`studyval.analysis`, draw with
:mod:`studyval.figures` and pseudonymise with :mod:`studyval.privacy`, which
the models library never imports. Only the functions of the chains import
torch, so importing this module needs only the analysis layer.

ovcf-chronicity (:func:`ovcf_imaging`)
    One spine phantom per included patient (:func:`studyval.models.phantoms.spine_phantom`):
    the patient's fractured vertebrae with their reference class (acute or
    chronic), an intact vertebra below and above. How clearly a fracture shows
    its class is drawn per vertebra, ``conspicuity ~ Beta(a, b)``
    (:data:`PHANTOM_PARAMETERS`); at 0 an acute and a chronic fracture look
    the same, so the task has a ceiling below AUC 1 and the statistics are not
    degenerate. The scans of the development centre are NIfTI; the first
    ``dicom_patients`` external patients (by id) arrive as DICOM series and are
    read from a copy de-identified with the PS3.15 Basic Profile
    (:mod:`studyval.models.deid`); one of them has a slice without pixel data
    (``corrupt_patient``), so its cases keep their rows with ``status =
    failed`` and the STARD flow diagram counts them. Splits are by patient
    (:func:`studyval.models.splits.patient_level_split`). A 3-D UNet is
    trained to segment vertebral bodies (on slabs of the development scans)
    and the three registered classifiers (DenseNet-121, ViT, VGG-16) to tell
    acute from chronic on crops of the development vertebrae. The study's
    vertebra manifest (``vertebrae.csv``: one row per case with its level and
    the scan's lowest level) goes through the crop stage (each scan segmented
    once, each case's vertebral body cropped in HU) and each classifier scores
    the crops; the cases without a crop (the unreadable series) keep their
    failed rows. The three tables, in the clinical table's case order, are the
    prediction table of ``data_dictionary/predictions.yml``.
    Grad-CAM overlays of four external index vertebrae (the most and least
    confident correct and wrong calls of the primary model) and the per-scan
    Dice of the segmentation go to the ``imaging`` part of the bundle.

cirrhosis-sarcopenia (:func:`cirrhosis_imaging`)
    One axial L3 phantom per included patient
    (:func:`studyval.models.phantoms.l3_phantom`) whose skeletal-muscle area is
    the patient's area in the synthetic cohort (the wall thickness is solved
    for it); a 2-D UNet is trained on 48 development patients (their slices and
    muscle masks on disk with a training manifest; whole slices at the
    phantoms' 3.2 mm spacing), segments every patient's slice read from disk,
    and :func:`studyval.models.body_composition.skeletal_muscle_index` gives
    the measured area, SMI and (with the plan's sex-specific cut-offs)
    sarcopenia, which replace the cohort's values in the clinical table with
    the weights hash as ``segmentation_model_version``. The agreement of the
    measured with the phantom's true area (Bland-Altman, ICC, Dice) goes to the
    ``imaging`` part of the bundle.

Everything is seeded: the same seed and thread count give byte-identical
tables (the weights are named by their SHA-256 and recorded in the tables).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "PHANTOM_PARAMETERS",
    "ImagingOutputs",
    "cirrhosis_imaging",
    "ovcf_imaging",
]

#: The documented settings of the demo phantoms and training (true parameters of the imaging demo).
PHANTOM_PARAMETERS: dict[str, Any] = {
    "ovcf-chronicity": {
        "shape_per_vertebra": [32, 32, 16],
        "spacing_mm": [1.0, 1.0, 1.0],
        "noise_hu": 40.0,
        "conspicuity_beta": [1.2, 1.6],
        "appearance_mismatch": 0.12,
        "internal_fraction": 0.3,
        "dicom_patients": 6,
        "corrupt_patient": "the first external patient delivered as DICOM",
        "segmentation": {"config": "unet3d_vertebra_seg", "volumes": 8, "epochs": 4, "lr": 0.01},
        "classifiers": {
            "densenet121_ovcf": {"epochs": 6, "lr": 0.003},
            "vit_ovcf": {"epochs": 30, "lr": 0.001},
            "vgg16_ovcf": {"epochs": 3, "lr": 0.001},
        },
    },
    "cirrhosis-sarcopenia": {
        "shape": [128, 128],
        "spacing_mm": [3.2, 3.2],
        "noise_hu": 10.0,
        "fat_thickness_mm": [10.0, 35.0],
        "segmentation": {"config": "unet2d_l3_muscle", "slices": 48, "epochs": 12, "lr": 0.01},
    },
}

Progress = Callable[[str], None]

#: Grad-CAM layer for the smoke networks on 32³ crops (their default layer has no spatial extent).
CAM_LAYER_SMOKE = {"DenseNet121": "features.denseblock1", "VGG16": "features"}


@dataclass(frozen=True)
class ImagingOutputs:
    """What an imaging chain wrote.

    Attributes
    ----------
    clinical : Path
        The clinical table to analyse (a copy with measured values where the
        chain measures them).
    predictions : Path or None
        The prediction table written by inference.
    imaging : Path
        Directory for the bundle's ``imaging`` part: ``manifest.json`` (configs,
        weights hashes, epochs, de-identification counts), ``tables/*.csv`` and
        ``figures/*.png``.

    """

    clinical: Path
    predictions: Path | None
    imaging: Path


def _sha256_json(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()


def _write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    (directory / "manifest.json").write_text(
        json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """Run the block with one intra-op torch thread, then restore the previous setting.

    Results then do not depend on the machine's core count, and an OpenMP pool
    on a busy two-core machine spins instead of working (20x slower, measured).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# ---------------------------------------------------------------------------------------------
# ovcf-chronicity
# ---------------------------------------------------------------------------------------------


def ovcf_imaging(
    clinical_csv: str | Path,
    work: str | Path,
    *,
    seed: int,
    parameters: dict[str, Any] | None = None,
    progress: Progress = lambda _: None,
) -> ImagingOutputs:
    """Phantoms, training and inference for ovcf-chronicity; see the module docstring.

    Parameters
    ----------
    clinical_csv : str or Path
        The synthetic clinical table (read only).
    work : str or Path
        Working directory (created): ``images/``, ``deid/``, ``weights/``,
        ``predictions.csv``, ``imaging/``.
    seed : int
        Seed of the phantoms, the split and the training.
    parameters : dict, optional
        Replaces entries of ``PHANTOM_PARAMETERS["ovcf-chronicity"]`` (tests
        use fewer epochs); recorded in the imaging manifest.

    """
    with _one_torch_thread():
        return _ovcf_imaging(
            clinical_csv, work, seed=seed, parameters=parameters, progress=progress
        )


def _ovcf_imaging(
    clinical_csv: str | Path,
    work: str | Path,
    *,
    seed: int,
    parameters: dict[str, Any] | None = None,
    progress: Progress = lambda _: None,
) -> ImagingOutputs:
    """Body of :func:`ovcf_imaging`, run under one torch thread."""
    from studyval.models.config import load_config
    from studyval.models.crops import crop_size_for, crop_vertebrae
    from studyval.models.datasets import preprocess
    from studyval.models.deid import deidentify_series
    from studyval.models.imaging import ImageReadError, apply_window, load_image
    from studyval.models.inference import grad_cam_png, load_model, predict_from_manifest, segment
    from studyval.models.phantom_datasets import (
        spine_layout,
        write_fracture_manifest,
        write_segmentation_manifest,
    )
    from studyval.models.phantoms import spine_phantom, write_dicom_series, write_nifti
    from studyval.models.splits import patient_level_split
    from studyval.models.training import train_from_manifest
    from studyval.privacy import pseudonymise

    par = {**PHANTOM_PARAMETERS["ovcf-chronicity"], **(parameters or {})}
    work = Path(work)
    for sub in ("images", "deid", "weights", "imaging/tables", "imaging/figures"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    clin = pd.read_csv(clinical_csv, dtype=str, keep_default_na=False)
    inc = clin[clin["exclusion_reason"] == "none"].copy()
    split = patient_level_split(
        inc,
        internal_fraction=par["internal_fraction"],
        seed=seed,
        external_sites=["EXT"],
    )
    inc["split"] = split["split"].to_numpy()
    rng = np.random.default_rng(seed)
    seg_cfg = load_config(par["segmentation"]["config"]).smoke_version()
    key = hashlib.sha256(f"studyval-demo-deid-{seed}".encode()).digest()

    # ---- phantoms, one scan per patient ---------------------------------------------------
    progress("imaging: building one CT phantom per patient")
    patients = sorted(inc["patient_id"].unique())
    ext_patients = [p for p in patients if (inc.loc[inc.patient_id == p, "site"] == "EXT").any()]
    dicom_patients = set(ext_patients[: par["dicom_patients"]])
    corrupt = ext_patients[0] if ext_patients else None
    scans: dict[str, dict[str, Any]] = {}
    deid_rows = []
    for k, pid in enumerate(patients):
        rows = inc[inc["patient_id"] == pid]
        other = {"acute": "chronic", "chronic": "acute"}
        # CT appearance: the MRI reference class, or the other class with probability
        # appearance_mismatch (CT signs of age are imperfect; this caps the achievable AUC)
        looks = [
            other[c] if rng.random() < par["appearance_mismatch"] else c for c in rows["chronicity"]
        ]
        first, patterns = spine_layout(list(rows["vertebral_level"]), looks)
        conspic = [
            float(rng.beta(*par["conspicuity_beta"])) if p != "intact" else 1.0 for p in patterns
        ]
        shape = (*par["shape_per_vertebra"][:2], par["shape_per_vertebra"][2] * len(patterns))
        ph = spine_phantom(
            shape=tuple(shape),  # type: ignore[arg-type]
            spacing=tuple(par["spacing_mm"]),  # type: ignore[arg-type]
            patterns=patterns,
            first_level=first,
            noise_hu=par["noise_hu"],
            conspicuity=conspic,
            seed=seed + k,
        )
        if pid in dicom_patients:
            src = work / "images" / pid
            files = write_dicom_series(ph.image, src, spacing=ph.spacing, seed=seed + k)
            if pid == corrupt:
                import pydicom

                ds = pydicom.dcmread(files[len(files) // 2])
                del ds.PixelData
                ds.save_as(files[len(files) // 2], enforce_file_format=True)
            try:
                rep = deidentify_series(
                    src,
                    work / "deid" / pid,
                    key=key,
                    patient_pseudonym=pseudonymise([pid], key=key)[0],
                )
                path = work / "deid" / pid
                deid_rows.append({"scan": "dicom", "files": rep.files, **rep.actions})
            except ImageReadError as exc:
                # never read for outputs: inference reads the original and fails on it too
                path = src
                deid_rows.append({"scan": "dicom", "files": 0, "refused": exc.problem})
        else:
            path = work / "images" / f"{pid}.nii.gz"
            write_nifti(ph.image, path, spacing=ph.spacing)
        scans[pid] = {
            "path": path,
            "site": rows["site"].iloc[0],
            "phantom": ph,
            "first": first,
            "reference": dict(zip(rows["vertebral_level"], rows["chronicity"], strict=True)),
        }
    # the study's vertebra manifest: one row per case (vertebra), paths relative to `work`
    vertebrae = work / "vertebrae.csv"
    pd.DataFrame(
        {
            "case_id": inc["case_id"],
            "patient_id": inc["patient_id"],
            "site": inc["site"],
            "split": inc["split"],
            "image_path": [
                scans[p]["path"].relative_to(work).as_posix() for p in inc["patient_id"]
            ],
            "vertebral_level": inc["vertebral_level"],
            "lowest_level": [scans[p]["first"] for p in inc["patient_id"]],
        }
    ).to_csv(vertebrae, index=False)

    # ---- training: training sets written with their manifests, `studyval models train` -------
    # (train_from_manifest; the sets are small, so the MONAI CacheDataset reads each file once)
    dev = [p for p in patients if (inc.loc[inc.patient_id == p, "split"] == "development").all()]
    roi = seg_cfg.roi_size
    progress(f"imaging: training {seg_cfg.model_name} segmentation on development phantoms")
    seg_manifest = write_segmentation_manifest(
        [
            (pid, scans[pid]["site"], scans[pid]["phantom"])
            for pid in dev[: par["segmentation"]["volumes"]]
        ],
        work / "training" / "segmentation",
        roi_size=roi,
    )
    seg_res = train_from_manifest(
        seg_cfg,
        seg_manifest,
        work / "weights" / seg_cfg.name,
        epochs=par["segmentation"]["epochs"],
        learning_rate=par["segmentation"]["lr"],
        batch_size=4,
        seed=seed,
        cache="memory",
        progress=False,
    )
    history = [{"model": seg_cfg.model_name, "task": "segmentation", **h} for h in seg_res.history]
    cls_cfgs = [load_config(name).smoke_version() for name in par["classifiers"]]
    crop_size = crop_size_for(cls_cfgs)
    fracture_manifest = write_fracture_manifest(
        [
            (p, scans[p]["site"], scans[p]["phantom"], scans[p]["first"], scans[p]["reference"])
            for p in dev
        ],
        work / "training" / "fractures",
        roi_size=crop_size,
    )
    n_crops = len(pd.read_csv(fracture_manifest))
    classifiers = []
    for cfg, opts in zip(cls_cfgs, par["classifiers"].values(), strict=True):
        progress(f"imaging: training {cfg.model_name} on {n_crops} development vertebrae")
        res = train_from_manifest(
            cfg,
            fracture_manifest,
            work / "weights" / cfg.name,
            epochs=opts["epochs"],
            learning_rate=opts["lr"],
            batch_size=8,
            seed=seed,
            cache="memory",
            progress=False,
        )
        history += [{"model": cfg.model_name, "task": "classification", **h} for h in res.history]
        classifiers.append((cfg, res))

    # ---- inference: `studyval models crop`, then `studyval models predict` per classifier -----
    progress("imaging: segmenting every scan and cropping every vertebra")
    cropped = crop_vertebrae(
        seg_cfg,
        seg_res.weights_path,
        vertebrae,
        work / "crops",
        crop_size=crop_size,
        threads=None,
        progress=False,
    )
    progress("imaging: scoring every vertebra with each classifier")
    blocks = []
    for cfg, res in classifiers:
        scored = predict_from_manifest(
            cfg,
            res.weights_path,
            cropped.manifest,
            work / "scores" / cfg.name,
            failed=cropped.failed,
            num_workers=0,
            threads=None,
            progress=False,
        )
        # back to the order of the clinical table (the crops' manifest lists the cropped
        # cases, then the failed ones follow)
        blocks.append(scored.table.set_index("case_id").loc[inc["case_id"]].reset_index())
    table = pd.concat(blocks, ignore_index=True)
    predictions = work / "predictions.csv"
    table.to_csv(predictions, index=False, float_format="%.10g")

    # ---- segmentation overlap per scan (held-out patients) ------------------------------------
    from studyval.analysis.segmentation import overlap, summarise_by_patient

    seg_model, seg_version = load_model(seg_cfg, seg_res.weights_path)
    dice_rows = []
    for pid in patients:
        sp = inc.loc[inc.patient_id == pid, "split"].iloc[0]
        if sp == "development" or pid == corrupt:
            continue
        ph = scans[pid]["phantom"]
        # the scan as the crop stage read it (NIfTI, or the de-identified DICOM copy)
        vol = load_image(scans[pid]["path"], spacing=seg_cfg.spacing)
        mask = segment(seg_model, apply_window(vol.array, seg_cfg.hu_window), roi_size=roi) > 0
        ov = overlap(mask, ph.label > 0, spacing=ph.spacing)
        dice_rows.append(
            {"patient": pid, "split": sp, "dice": round(ov.dice, 6), "hd95_mm": round(ov.hd95, 4)}
        )
    dice_table = pd.DataFrame(dice_rows)
    dice_summary = []
    for sp, sub in dice_table.groupby("split", sort=True):
        for metric in ("dice", "hd95_mm"):
            res_ = summarise_by_patient(
                sub, patient_col="patient", metric=metric, n_resamples=2000, seed=seed
            )
            dice_summary.append(
                {
                    "model": seg_cfg.model_name,
                    "split": sp,
                    "metric": metric,
                    "n_scans": res_.n_cases,
                    "mean": res_.estimate,
                    "ci_low": res_.ci_low,
                    "ci_high": res_.ci_high,
                    "ci_method": f"patient bootstrap, {res_.n_resamples} resamples, {res_.method}",
                    "min": float(sub[metric].min()),
                }
            )
    dice_table = dice_table.drop(columns="patient")

    # ---- Grad-CAM of four external index vertebrae --------------------------------------------
    primary_cfg, primary_res = classifiers[0]
    cls_model, _ = load_model(primary_cfg, primary_res.weights_path)
    crop_paths = {
        r.case_id: cropped.manifest.parent / r.image_path
        for r in pd.read_csv(cropped.manifest, dtype=str).itertuples()
    }
    ext = table[
        (table["model_name"] == primary_cfg.model_name)
        & (table["split"] == "external")
        & (table["status"] == "ok")
    ].merge(inc[["case_id", "chronicity", "index_vertebra"]], on="case_id")
    ext = ext[ext["index_vertebra"] == "true"].sort_values(["score", "case_id"])
    picks = []
    for truth_class, correct, pick_high in (
        ("acute", True, True),
        ("chronic", True, False),
        ("chronic", False, True),
        ("acute", False, False),
    ):
        sub = ext[ext["chronicity"] == truth_class]
        sub = sub[
            (sub["score"] >= 0.5) == (truth_class == "acute")
            if correct
            else (sub["score"] >= 0.5) != (truth_class == "acute")
        ]
        if len(sub):
            picks.append((sub.iloc[-1] if pick_high else sub.iloc[0], correct))
    pos = primary_cfg.classes.index(str(primary_cfg.positive_class))
    cam_rows = []
    for i, (row, correct) in enumerate(picks, start=1):
        # the crop the classifier scored, preprocessed as it was (window, ROI)
        vol = load_image(crop_paths[row["case_id"]], spacing=primary_cfg.spacing)
        crop_array = preprocess(vol.array, primary_cfg)[0]
        score = float(row["score"])
        # the map of the class the model predicts at 0.5 (the positive class's map is empty
        # where the model argues for the other class)
        predicted = pos if score >= 0.5 else 1 - pos
        name = f"gradcam_{i}"
        grad_cam_png(
            cls_model,
            crop_array,
            work / "imaging" / "figures" / f"{name}.png",
            arch=primary_cfg.arch,
            class_index=predicted,
            # the smoke DenseNet's last feature map is 1 voxel for a 32³ crop; its first dense
            # block (8³) is the deepest layer with a spatial map worth showing
            target_layer=CAM_LAYER_SMOKE.get(primary_cfg.arch),
        )
        cam_rows.append(
            {
                "figure": name,
                "case": pseudonymise([str(row["case_id"])], key=key)[0],
                "reference": row["chronicity"],
                "model": primary_cfg.model_name,
                "score": round(score, 6),
                "call": "correct" if correct else "wrong",
                "map_of": primary_cfg.classes[predicted],
                "layer": CAM_LAYER_SMOKE.get(primary_cfg.arch, "default"),
            }
        )

    # ---- the imaging part of the bundle -------------------------------------------------------
    out = work / "imaging"
    pd.DataFrame(history).to_csv(out / "tables" / "training_history.csv", index=False)
    dice_table.to_csv(out / "tables" / "segmentation_overlap.csv", index=False)
    pd.DataFrame(dice_summary).to_csv(
        out / "tables" / "segmentation_summary.csv", index=False, float_format="%.6g"
    )
    pd.DataFrame(cam_rows).to_csv(out / "tables" / "gradcam.csv", index=False)
    deid_table = pd.DataFrame(deid_rows)
    counts = [c for c in deid_table.columns if c not in ("scan", "refused")]
    deid_table[counts] = deid_table[counts].fillna(0).astype(int)
    deid_table.to_csv(out / "tables" / "deidentification.csv", index=False)
    _write_manifest(
        out,
        {
            "chain": "ovcf-chronicity imaging demo (studyval.imaging_demo.ovcf_imaging)",
            "seed": seed,
            "parameters": par,
            "models": [
                {
                    "model": seg_cfg.model_name,
                    "config": seg_cfg.name,
                    "task": "segmentation",
                    "model_version": seg_res.model_version,
                    "epochs": seg_res.epochs,
                }
            ]
            + [
                {
                    "model": c.model_name,
                    "config": c.name,
                    "task": "classification",
                    "model_version": r.model_version,
                    "epochs": r.epochs,
                }
                for c, r in classifiers
            ],
            "scans": {
                "patients": len(patients),
                "nifti": len(patients) - len(dicom_patients),
                "dicom_series": len(dicom_patients),
                "unreadable": 1 if corrupt else 0,
            },
            "deidentification": "DICOM PS3.15 Basic Application Level Confidentiality Profile",
            "segmentation_version": seg_version,
            "pipeline": [
                "training sets and manifests written to disk; "
                "train_from_manifest (studyval models train), CacheDataset",
                "crop_vertebrae (studyval models crop) on the vertebra manifest",
                "predict_from_manifest (studyval models predict --failed) per classifier",
            ],
            "crops": {
                "crop_size": list(crop_size),
                "cases": cropped.n_cases,
                "cropped": cropped.n_cropped,
                "failed": cropped.n_failed,
            },
        },
    )
    return ImagingOutputs(clinical=Path(clinical_csv), predictions=predictions, imaging=out)


# ---------------------------------------------------------------------------------------------
# cirrhosis-sarcopenia
# ---------------------------------------------------------------------------------------------


def cirrhosis_imaging(
    clinical_csv: str | Path,
    work: str | Path,
    *,
    seed: int,
    cutoffs: dict[str, float],
    parameters: dict[str, Any] | None = None,
    progress: Progress = lambda _: None,
) -> ImagingOutputs:
    """L3 phantoms, training and measurement for cirrhosis-sarcopenia; see the module docstring.

    Parameters
    ----------
    clinical_csv : str or Path
        The synthetic clinical table (read only); a copy with the measured
        ``l3_muscle_area_cm2``, ``smi_cm2_m2``, ``sarcopenia`` and
        ``segmentation_model_version`` is written to ``work/clinical.csv``.
    work : str or Path
        Working directory (created).
    seed : int
        Seed of the phantoms and the training.
    cutoffs : dict
        Sex-specific SMI cut-offs (cm²/m²), from the plan: ``{"M": 50.0, "F": 39.0}``.
    parameters : dict, optional
        Replaces entries of ``PHANTOM_PARAMETERS["cirrhosis-sarcopenia"]``.

    """
    with _one_torch_thread():
        return _cirrhosis_imaging(
            clinical_csv, work, seed=seed, cutoffs=cutoffs, parameters=parameters, progress=progress
        )


def _cirrhosis_imaging(
    clinical_csv: str | Path,
    work: str | Path,
    *,
    seed: int,
    cutoffs: dict[str, float],
    parameters: dict[str, Any] | None = None,
    progress: Progress = lambda _: None,
) -> ImagingOutputs:
    """Body of :func:`cirrhosis_imaging`, run under one torch thread."""
    from studyval.analysis.agreement import bland_altman, icc
    from studyval.analysis.segmentation import summarise_by_patient
    from studyval.models.body_composition import sarcopenia, skeletal_muscle_index
    from studyval.models.config import load_config
    from studyval.models.imaging import apply_window
    from studyval.models.inference import load_model, segment
    from studyval.models.phantoms import l3_phantom, write_nifti
    from studyval.models.training import train_from_manifest

    par = {**PHANTOM_PARAMETERS["cirrhosis-sarcopenia"], **(parameters or {})}
    work = Path(work)
    for sub in ("images", "masks", "weights", "imaging/tables", "imaging/figures"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    clin = pd.read_csv(clinical_csv, dtype=str, keep_default_na=False)
    inc_idx = clin.index[clin["exclusion_reason"] == "none"]
    rng = np.random.default_rng(seed)
    shape, spacing = tuple(par["shape"]), tuple(par["spacing_mm"])
    # the network reads whole slices at the phantoms' spacing: the smoke config with its input
    # spacing and ROI set to the phantoms' (recorded in the imaging manifest)
    cfg = dataclasses.replace(
        load_config(par["segmentation"]["config"]).smoke_version(),
        spacing=spacing,
        roi_size=shape,
    )

    progress("imaging: building one L3 phantom per patient")
    phantoms = {}
    for k, i in enumerate(inc_idx):
        fat = float(rng.uniform(*par["fat_thickness_mm"]))
        target = float(clin.at[i, "l3_muscle_area_cm2"]) * 100.0
        ph = l3_phantom(
            shape=shape,  # type: ignore[arg-type]
            spacing=spacing,  # type: ignore[arg-type]
            fat_thickness_mm=fat,
            muscle_area_mm2=target,
            noise_hu=par["noise_hu"],
            seed=seed + k,
        )
        pid = clin.at[i, "patient_id"]
        write_nifti(
            ph.image[:, :, None], work / "images" / f"{pid}.nii.gz", spacing=(*spacing, 5.0)
        )
        phantoms[i] = ph

    progress(f"imaging: training {cfg.model_name} on development L3 slices")
    dev = [i for i in inc_idx if clin.at[i, "site"] != "EXT"][: par["segmentation"]["slices"]]
    # the training manifest (`studyval models train`): the slices with their muscle masks
    rows = []
    for i in dev:
        pid = clin.at[i, "patient_id"]
        write_nifti(
            (phantoms[i].label == 1).astype(np.int16)[:, :, None],
            work / "masks" / f"{pid}.nii.gz",
            spacing=(*spacing, 5.0),
        )
        rows.append(
            {
                "case_id": pid,
                "patient_id": pid,
                "site": clin.at[i, "site"],
                "split": "development",
                "image_path": f"images/{pid}.nii.gz",
                "mask_path": f"masks/{pid}.nii.gz",
            }
        )
    training = work / "training.csv"
    pd.DataFrame(rows).to_csv(training, index=False)
    res = train_from_manifest(
        cfg,
        training,
        work / "weights" / cfg.name,
        epochs=par["segmentation"]["epochs"],
        learning_rate=par["segmentation"]["lr"],
        batch_size=4,
        seed=seed,
        cache="memory",
        progress=False,
    )
    model, version = load_model(cfg, res.weights_path)

    progress("imaging: measuring the L3 skeletal muscle index of every patient")
    from studyval.models.imaging import load_image

    out = clin.copy()
    agree = []
    dev_set = set(dev)
    for i in inc_idx:
        pid = clin.at[i, "patient_id"]
        vol = load_image(work / "images" / f"{pid}.nii.gz")
        img = vol.array[:, :, 0]
        mask = segment(model, apply_window(img, cfg.hu_window), roi_size=cfg.roi_size) > 0
        height = float(clin.at[i, "height_m"])
        mi = skeletal_muscle_index(mask, vol.spacing[:2], height_m=height, image=img)
        area = round(mi.muscle_area_cm2, 1)
        smi = round(area / height**2, 2)
        sarc = sarcopenia(smi, sex=clin.at[i, "sex"], cutoffs=cutoffs)
        out.at[i, "l3_muscle_area_cm2"] = f"{area:.1f}"
        out.at[i, "smi_cm2_m2"] = f"{smi:.2f}"
        out.at[i, "sarcopenia"] = "true" if sarc else "false"
        out.at[i, "segmentation_model_version"] = version
        truth = phantoms[i].label == 1
        dice = 2 * float((mask & truth).sum()) / float(mask.sum() + truth.sum())
        if i not in dev_set:
            agree.append(
                {
                    "site": clin.at[i, "site"],
                    "true_area_cm2": round(phantoms[i].true_area_mm2["muscle"] / 100.0, 4),
                    "measured_area_cm2": round(mi.muscle_area_cm2, 4),
                    "dice": round(dice, 6),
                }
            )
    # one weights version per run: excluded patients' recorded version is the network's too
    has_version = out["segmentation_model_version"] != ""
    out.loc[has_version, "segmentation_model_version"] = version
    clinical = work / "clinical.csv"
    out.to_csv(clinical, index=False)

    ag = pd.DataFrame(agree)
    ba = bland_altman(ag["measured_area_cm2"].to_numpy(), ag["true_area_cm2"].to_numpy())
    long = pd.concat(
        [
            pd.DataFrame(
                {"target": ag.index, "rater": "network", "rating": ag["measured_area_cm2"]}
            ),
            pd.DataFrame(
                {"target": ag.index, "rater": "phantom truth", "rating": ag["true_area_cm2"]}
            ),
        ]
    )
    ic = icc(long, targets="target", raters="rater", ratings="rating")
    from studyval.figures.agreement import bland_altman_figure
    from studyval.figures.style import save_figure

    ba_table = ba.to_frame()
    save_figure(
        bland_altman_figure(
            ba.points_frame(),
            ba_table,
            xlabel="Mean of network and true area (cm²)",
            ylabel="Network − true muscle area (cm²)",
        ),
        work / "imaging" / "figures",
        "bland_altman_muscle_area",
    )
    icc_table = ic.to_frame()
    dice_res = summarise_by_patient(
        ag.assign(patient=ag.index), patient_col="patient", metric="dice", seed=seed
    )
    tables = work / "imaging" / "tables"
    pd.DataFrame(
        [{"model": cfg.model_name, "task": "segmentation", **h} for h in res.history]
    ).to_csv(tables / "training_history.csv", index=False)
    ag.assign(difference_cm2=lambda d: (d.measured_area_cm2 - d.true_area_cm2).round(4)).to_csv(
        tables / "segmentation_agreement.csv", index=False
    )
    ba_table.to_csv(tables / "bland_altman.csv", index=False, float_format="%.6g")
    icc_table.to_csv(tables / "icc.csv", index=False, float_format="%.6g")
    dice_res.to_frame().drop(columns=["patients"], errors="ignore").to_csv(
        tables / "dice_summary.csv", index=False, float_format="%.6g"
    )
    _write_manifest(
        work / "imaging",
        {
            "chain": "cirrhosis-sarcopenia imaging demo (studyval.imaging_demo.cirrhosis_imaging)",
            "seed": seed,
            "parameters": par,
            "cutoffs": cutoffs,
            "models": [
                {
                    "model": cfg.model_name,
                    "config": cfg.name,
                    "task": "segmentation",
                    "model_version": version,
                    "epochs": res.epochs,
                }
            ],
            "scans": {"patients": len(inc_idx), "nifti": len(inc_idx), "training": len(dev)},
            "network_input": {"spacing_mm": list(spacing), "roi_size": list(shape)},
            "pipeline": [
                "training slices, masks and manifest written to disk; "
                "train_from_manifest (studyval models train), CacheDataset",
                "every slice read from disk and segmented (sliding window), skeletal_muscle_index",
            ],
            "mean_dice_held_out": round(float(ag["dice"].mean()), 6),
            "max_abs_area_error_percent": round(
                float(
                    (100 * (ag.measured_area_cm2 - ag.true_area_cm2).abs() / ag.true_area_cm2).max()
                ),
                4,
            ),
            "plan_parameters_sha256": _sha256_json(cutoffs),
        },
    )
    return ImagingOutputs(clinical=clinical, predictions=None, imaging=work / "imaging")
