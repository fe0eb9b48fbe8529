"""The crop stage of vertebra-level scoring: segment each image once, crop every case's vertebra.

A vertebral-fracture classifier scores one vertebra, not a whole CT. The image-level commands
(:func:`studyval.models.training.train_from_manifest`,
:func:`studyval.models.inference.predict_from_manifest`) therefore run on *crops*, and this stage
makes them from a *vertebra manifest*: an image manifest (``data_dictionary/images.yml``) with one
row per vertebra (case), its ``vertebral_level`` and the ``lowest_level`` of its image.

:func:`crop_vertebrae` reads each distinct image once (:func:`studyval.models.imaging.load_image`:
series checks, RAS, the segmentation config's spacing), segments the vertebral bodies with
sliding-window inference, numbers the connected bodies upwards from ``lowest_level``
(:func:`studyval.models.inference.vertebra_crops`) and writes, under ``out``:

* ``crops/<case_id>.nii.gz``: a box of ``crop_size`` voxels in HU centred on the case's body,
  float32, air (:data:`CROP_FILL_HU`) where the box leaves the image; the classifier's own
  preprocessing (HU window, centred crop to its ROI) is applied when it reads it, so one crop
  serves every classifier whose ROI is not larger than ``crop_size``;
* ``images.csv``: the crops' image manifest (``case_id``, ``patient_id``, ``site``, ``split``,
  ``image_path``, ``label`` when the input has labels, ``vertebral_level``), in input order:
  what ``studyval models predict`` (and ``train``) read;
* ``failed.csv``: the cases without a crop (an unreadable or incomplete series, a vertebra the
  segmentation did not delineate), with the SHA-256 of the image and the reason; passed to
  ``predict_from_manifest(failed=...)`` / ``studyval models predict --failed`` they keep their rows
  as ``status = failed`` in the prediction table;
* ``sources.csv``: for every crop, its SHA-256, the SHA-256 of the image it was cut from and the
  segmentation weights' version (the crop is the ``input_sha256`` of its prediction row).

One bad image never stops the stage. The command line is ``studyval models crop``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from studyval.models.config import ModelConfig
from studyval.models.inference import FAILED_COLUMNS, read_failed

__all__ = [
    "CROP_FILL_HU",
    "FAILED_COLUMNS",
    "NOT_DELINEATED",
    "CropResult",
    "crop_size_for",
    "crop_vertebrae",
    "read_failed",
]

#: HU written where a crop's box leaves the image: air, below every HU window of the configs.
CROP_FILL_HU = -1024.0
NOT_DELINEATED = "segmentation failed: vertebral body not delineated"


@dataclass(frozen=True)
class CropResult:
    """Outcome of :func:`crop_vertebrae`.

    Attributes
    ----------
    manifest : Path
        ``<out>/images.csv``, the crops' image manifest.
    failed : Path
        ``<out>/failed.csv``, the cases without a crop.
    model_version : str
        ``"sha256:<hex>"`` of the segmentation weights.
    n_cases, n_cropped, n_failed : int
        Rows of the vertebra manifest, crops written, cases without a crop.
    n_images : int
        Distinct images read and segmented.

    """

    manifest: Path
    failed: Path
    model_version: str
    n_cases: int
    n_cropped: int
    n_failed: int
    n_images: int


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-write")
    frame.to_csv(tmp, index=False)
    os.replace(tmp, path)


def crop_vertebrae(
    seg_config: ModelConfig | str | Path,
    seg_weights: str | Path | None,
    images: str | Path,
    out: str | Path,
    *,
    crop_size: Sequence[int] = (64, 64, 64),
    root: str | Path | None = None,
    device: str = "cpu",
    threads: int | None = 1,
    smoke: bool = False,
    progress: bool = True,
) -> CropResult:
    """Crop every case's vertebral body out of its segmented image (see the module docstring).

    Parameters
    ----------
    seg_config : ModelConfig, str or Path
        A 3-D segmentation config (vertebral bodies), its name or folder.
    seg_weights : str or Path
        Its weights (hash-checked, ``weights_only=True``); checked before anything is written.
    images : str or Path
        Vertebra manifest: an image manifest whose every row has ``vertebral_level`` and
        ``lowest_level`` (checked with the manifest's other rules: every violation at once,
        nothing written).
    out : str or Path
        Output folder (``crops/``, ``images.csv``, ``failed.csv``, ``sources.csv``); a rerun
        writes them again.
    crop_size : sequence of int
        Box in voxels at the segmentation config's spacing; at least the ROI of every
        classifier that will read the crops (default 64³, the registered classifiers' ROI).
    root : str or Path, optional
        Image root (default: the manifest's folder).
    device : str
        Torch device of the segmentation.
    threads : int or None
        Torch threads during the call (restored after).
    smoke : bool
        Use the config's tiny ``smoke`` network and ROI.
    progress : bool
        Progress bar on stderr.

    Returns
    -------
    CropResult

    """
    from studyval.errors import StudyvalError
    from studyval.models.checkpoints import sha256_file
    from studyval.models.imaging import ImageReadError, apply_window, load_image
    from studyval.models.inference import (
        image_reason,
        input_key,
        load_model,
        segment,
        vertebra_crops,
    )
    from studyval.models.manifest import read_manifest
    from studyval.models.phantoms import write_nifti
    from studyval.models.training import resolve_config, torch_threads

    cfg = resolve_config(seg_config, smoke=smoke)
    if cfg.task != "segmentation" or cfg.spatial_dims != 3:
        raise StudyvalError(
            f"{cfg.name} is not a 3-D segmentation config: vertebrae are cropped from a "
            "vertebral-body segmentation"
        )
    size = tuple(int(v) for v in crop_size)
    if len(size) != 3 or min(size) < 1:
        raise ValueError(f"crop_size must be three positive integers, found {tuple(crop_size)}")
    manifest = read_manifest(images, root=root, require="levels")
    out_dir = Path(out)
    with torch_threads(threads):
        model, version = load_model(cfg, seg_weights, device=device)
        (out_dir / "crops").mkdir(parents=True, exist_ok=True)
        groups: dict[tuple[str, str], list] = {}
        for rec in manifest:
            groups.setdefault((rec.image, str(rec.lowest_level)), []).append(rec)
        done: dict[str, dict] = {}  # case_id -> ok row or failed row
        sources: dict[str, dict] = {}
        items = list(groups.items())
        if progress:
            try:
                from tqdm.auto import tqdm

                items = tqdm(items, desc=f"{cfg.name} (crop)", unit="image")
            except ImportError:
                pass
        for (image, lowest), recs in items:
            reason = None
            try:
                vol = load_image(image, spacing=cfg.spacing)
                mask = segment(
                    model,
                    apply_window(vol.array, cfg.hu_window),
                    roi_size=cfg.roi_size,
                    device=device,
                )
                crops = {
                    c.level: c
                    for c in vertebra_crops(
                        vol.array, mask > 0, roi_size=size, lowest_level=lowest, fill=CROP_FILL_HU
                    )
                }
                image_sha = vol.sha256
            except ImageReadError as exc:
                reason, image_sha, crops = image_reason(exc), input_key(image), {}
            except Exception as exc:  # one image never stops the stage
                reason = f"processing error: exception {type(exc).__name__} while segmenting"
                image_sha, crops = input_key(image), {}
            for rec in recs:
                crop = crops.get(str(rec.vertebral_level))
                base = {
                    "case_id": rec.case_id,
                    "patient_id": rec.patient_id,
                    "site": rec.site,
                    "split": rec.split,
                }
                if crop is None:
                    done[rec.case_id] = {
                        **base,
                        "vertebral_level": rec.vertebral_level,
                        "input_sha256": image_sha,
                        "failure_reason": reason or NOT_DELINEATED,
                    }
                    continue
                rel = f"crops/{rec.case_id}.nii.gz"
                write_nifti(crop.array, out_dir / rel, spacing=vol.spacing, dtype="float32")
                done[rec.case_id] = {
                    **base,
                    "image_path": rel,
                    "label": rec.label,
                    "vertebral_level": rec.vertebral_level,
                }
                sources[rec.case_id] = {
                    "case_id": rec.case_id,
                    "crop_sha256": sha256_file(out_dir / rel),
                    "source_sha256": image_sha,
                    "segmentation_model_version": version,
                }
    ok = [done[r.case_id] for r in manifest if "image_path" in done[r.case_id]]
    bad = [done[r.case_id] for r in manifest if "image_path" not in done[r.case_id]]
    columns = ["case_id", "patient_id", "site", "split", "image_path", "label", "vertebral_level"]
    if all(r.label is None for r in manifest):
        columns.remove("label")
    _write_csv(pd.DataFrame(ok, columns=columns), out_dir / "images.csv")
    _write_csv(pd.DataFrame(bad, columns=list(FAILED_COLUMNS)), out_dir / "failed.csv")
    _write_csv(
        pd.DataFrame(
            [sources[r["case_id"]] for r in ok],
            columns=["case_id", "crop_sha256", "source_sha256", "segmentation_model_version"],
        ),
        out_dir / "sources.csv",
    )
    return CropResult(
        manifest=out_dir / "images.csv",
        failed=out_dir / "failed.csv",
        model_version=version,
        n_cases=len(manifest),
        n_cropped=len(ok),
        n_failed=len(bad),
        n_images=len(groups),
    )


def crop_size_for(configs: Sequence[ModelConfig]) -> tuple[int, ...]:
    """The smallest ``crop_size`` that serves every classifier config given (its largest ROI)."""
    sizes = np.array([tuple(int(v) for v in c.roi_size) for c in configs])
    return tuple(int(v) for v in sizes.max(axis=0))
