"""Inference: sliding-window segmentation, per-vertebra classification, Grad-CAM.

The OVCF pipeline (:func:`predict_vertebrae`) reads each scan
(:func:`studyval.models.imaging.load_image`), resamples it to the model
spacing, applies the config's HU window, segments vertebral bodies with
``monai.inferers.sliding_window_inference``, labels the connected bodies
from inferior to superior starting at the scan's lowest level, crops a
fixed-size box around each requested vertebra, and scores it with the
classifier (softmax probability of the config's ``positive_class``; higher =
more likely positive). It writes the prediction table of
``data_dictionary/predictions.yml``: a case that cannot be scored keeps its
row with ``status = failed`` and a ``failure_reason``.

Both networks are loaded by :func:`load_model`, which refuses to run without
a checkpoint (never random weights).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from studyval.models.checkpoints import load_weights
from studyval.models.config import ModelConfig
from studyval.models.imaging import ImageReadError, Volume, apply_window, load_image, sha256_files
from studyval.models.phantoms import LEVELS

PREDICTION_COLUMNS = (
    "case_id",
    "patient_id",
    "site",
    "model_name",
    "model_version",
    "input_sha256",
    "split",
    "positive_class",
    "score",
    "status",
    "failure_reason",
    "vertebral_level",
)
CASE_COLUMNS = (
    "case_id",
    "patient_id",
    "site",
    "split",
    "image_path",
    "vertebral_level",
    "lowest_level",
)
# Layer whose activations Grad-CAM weights, per architecture.
CAM_LAYERS = {"DenseNet121": "class_layers.relu", "VGG16": "features"}


def load_model(
    config: ModelConfig, checkpoint: str | Path | None, *, device: str = "cpu"
) -> tuple[nn.Module, str]:
    """Build the config's network and load its weights (strict, hash-checked).

    Returns
    -------
    model : torch.nn.Module
        In eval mode on ``device``.
    model_version : str
        ``"sha256:<hex>"`` of the weights file.

    Raises
    ------
    CheckpointError
        No checkpoint, a missing file, or weights that do not fit.

    """
    model = config.build_network()
    version = load_weights(model, checkpoint)
    return model.to(device).eval(), version


def segment(
    model: nn.Module,
    image01: np.ndarray,
    *,
    roi_size: Sequence[int],
    sw_batch_size: int = 2,
    overlap: float = 0.25,
    device: str = "cpu",
) -> np.ndarray:
    """Label map of a whole image by sliding-window inference.

    Parameters
    ----------
    model : torch.nn.Module
        Segmentation network (eval mode).
    image01 : ndarray, shape (X, Y[, Z])
        Windowed image in [0, 1].
    roi_size : sequence of int
        Window size (the config's ``roi_size``).
    sw_batch_size, overlap
        Passed to ``monai.inferers.sliding_window_inference``.

    Returns
    -------
    ndarray of int64
        Argmax label per voxel, same shape as ``image01``.

    """
    from monai.inferers import sliding_window_inference

    x = torch.as_tensor(image01, dtype=torch.float32)[None, None].to(device)
    with torch.no_grad():
        logits = sliding_window_inference(
            x,
            roi_size=tuple(roi_size),
            sw_batch_size=sw_batch_size,
            predictor=model,
            overlap=overlap,
        )
    return logits.argmax(dim=1)[0].cpu().numpy().astype(np.int64)


@dataclass(frozen=True)
class Crop:
    """A fixed-size box around one segmented vertebral body.

    Attributes
    ----------
    level : str
        Assigned level.
    center : tuple of int
        Centre voxel of the body in the full image.
    array : ndarray of float32
        The crop (windowed), zero-padded at the image border.
    n_voxels : int
        Size of the body in voxels.

    """

    level: str
    center: tuple[int, ...]
    array: np.ndarray
    n_voxels: int


def vertebra_crops(
    image01: np.ndarray,
    body_mask: np.ndarray,
    *,
    roi_size: Sequence[int],
    lowest_level: str,
    min_voxels: int = 50,
) -> list[Crop]:
    """Crops centred on each connected vertebral body, inferior to superior.

    Bodies smaller than ``min_voxels`` are dropped as noise. Levels are
    assigned upwards from ``lowest_level`` along the last (superior) axis.
    """
    from scipy import ndimage

    if lowest_level not in LEVELS:
        raise ValueError(f"unknown vertebral level {lowest_level!r}")
    lab, n = ndimage.label(body_mask > 0)
    comps = []
    for k in range(1, n + 1):
        idx = np.argwhere(lab == k)
        if len(idx) >= min_voxels:
            comps.append(
                (
                    float(idx[:, -1].mean()),
                    tuple(int(v) for v in np.rint(idx.mean(axis=0))),
                    len(idx),
                )
            )
    comps.sort()
    start = LEVELS.index(lowest_level)
    crops = []
    half = [r // 2 for r in roi_size]
    pad = [(h, r - h) for h, r in zip(half, roi_size, strict=True)]
    padded = np.pad(image01, pad)
    for i, (_, center, nvox) in enumerate(comps):
        if start + i >= len(LEVELS):
            break
        # centre c sits at c + half in the padded image, so the box starts at c
        sl = tuple(slice(c, c + r) for c, r in zip(center, roi_size, strict=True))
        crops.append(Crop(LEVELS[start + i], center, padded[sl].astype(np.float32), nvox))
    return crops


def classify(
    model: nn.Module, crops: Sequence[np.ndarray], *, positive_index: int, device: str = "cpu"
) -> np.ndarray:
    """Softmax probability of class ``positive_index`` for each crop."""
    if not crops:
        return np.zeros(0)
    x = torch.as_tensor(np.stack(crops), dtype=torch.float32)[:, None].to(device)
    with torch.no_grad():
        p = torch.softmax(model(x).float(), dim=1)[:, positive_index]
    return p.cpu().numpy().astype(float)


def grad_cam_png(
    model: nn.Module,
    crop: np.ndarray,
    path: str | Path,
    *,
    arch: str,
    class_index: int,
    target_layer: str | None = None,
) -> Path:
    """Save a Grad-CAM overlay of a crop as PNG (``monai.visualize.GradCAM``).

    A 3-D crop is shown on its central sagittal slice (x = centre), a 2-D
    crop as is. ViT has no convolutional feature map: pass ``target_layer``
    explicitly or use another explainer.

    Returns
    -------
    Path
        The PNG written.

    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from monai.visualize import GradCAM

    layer = target_layer or CAM_LAYERS.get(arch)
    if layer is None:
        raise ValueError(
            f"no default Grad-CAM layer for {arch!r}; pass target_layer (layers with a spatial map)"
        )
    cam = GradCAM(nn_module=model, target_layers=layer)
    x = torch.as_tensor(crop, dtype=torch.float32)[None, None].requires_grad_(True)
    with torch.enable_grad():
        heat = cam(x=x, class_idx=class_index)[0, 0].detach().cpu().numpy()
    img = crop
    if crop.ndim == 3:
        c = crop.shape[0] // 2
        img, heat = crop[c], heat[c]
    fig, ax = plt.subplots(figsize=(3, 3), dpi=100)
    ax.imshow(img.T, cmap="gray", origin="lower")
    ax.imshow(heat.T, cmap="inferno", alpha=0.4, origin="lower", vmin=0, vmax=1)
    ax.set_axis_off()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


def _input_sha(path: Path) -> str:
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        return sha256_files(files)
    if path.is_file():
        return sha256_files([path])
    return hashlib.sha256(b"").hexdigest()


def predict_vertebrae(
    cases: pd.DataFrame,
    *,
    seg_config: ModelConfig,
    seg_checkpoint: str | Path | None,
    cls_config: ModelConfig | Sequence[ModelConfig],
    cls_checkpoint: str | Path | Sequence[str | Path | None] | None,
    out_path: str | Path | None = None,
    gradcam_dir: str | Path | None = None,
    device: str = "cpu",
) -> pd.DataFrame:
    """Score every case (one vertebra of one scan) and build the prediction table.

    Parameters
    ----------
    cases : DataFrame
        Columns :data:`CASE_COLUMNS`: ``case_id``, ``patient_id``, ``site``,
        ``split``, ``image_path`` (DICOM series directory, DICOM or NIfTI),
        ``vertebral_level`` of the case and ``lowest_level`` (the level of
        the most inferior vertebral body in the scan).
    seg_config, cls_config : ModelConfig
        Segmentation and classification configs; ``cls_config`` may be a
        sequence (several classifiers scored on the same segmentation, one
        block of rows per classifier, in the order given).
    seg_checkpoint, cls_checkpoint : str or Path
        Weights files (``cls_checkpoint`` a sequence matching ``cls_config``);
        ``None`` or a missing file raises
        :class:`~studyval.models.checkpoints.CheckpointError` before any case
        is read.
    out_path : str or Path, optional
        CSV written when given.
    gradcam_dir : str or Path, optional
        Where ``<case_id>.png`` Grad-CAM overlays go (classifiers with a
        convolutional feature map).
    device : str
        Torch device.

    Returns
    -------
    DataFrame
        The prediction table (:data:`PREDICTION_COLUMNS`), one row per case
        and classifier, in the order of ``cases`` within each classifier.

    """
    missing = [c for c in CASE_COLUMNS if c not in cases.columns]
    if missing:
        raise ValueError(f"cases table lacks columns: {', '.join(missing)}")
    cls_configs = [cls_config] if isinstance(cls_config, ModelConfig) else list(cls_config)
    cls_checkpoints = (
        [cls_checkpoint] if isinstance(cls_config, ModelConfig) else list(cls_checkpoint)  # type: ignore[arg-type]
    )
    if len(cls_configs) != len(cls_checkpoints) or not cls_configs:
        raise ValueError("give one classification checkpoint per classification config")
    if seg_config.task != "segmentation" or any(c.task != "classification" for c in cls_configs):
        raise ValueError(
            "seg_config must be a segmentation config and cls_config a classification config"
        )
    seg_model, _ = load_model(seg_config, seg_checkpoint, device=device)
    loaded = [
        (cfg, *load_model(cfg, ckpt, device=device))
        for cfg, ckpt in zip(cls_configs, cls_checkpoints, strict=True)
    ]
    rows = []
    cache: dict[tuple[str, tuple[int, ...]], tuple[Volume | None, list[Crop], str | None]] = {}
    for cfg, cls_model, version in loaded:
        pos = cfg.classes.index(str(cfg.positive_class))
        for case in cases.itertuples(index=False):
            key = (f"{case.image_path}|{case.lowest_level}", tuple(cfg.roi_size))
            if key not in cache:
                try:
                    vol = load_image(case.image_path, spacing=seg_config.spacing)
                    img01 = apply_window(vol.array, seg_config.hu_window)
                    mask = (
                        segment(seg_model, img01, roi_size=seg_config.roi_size, device=device) > 0
                    )
                    crops = vertebra_crops(
                        img01, mask, roi_size=cfg.roi_size, lowest_level=case.lowest_level
                    )
                    cache[key] = (vol, crops, None)
                except ImageReadError as exc:
                    # the problem and the file's name, never its path: folders are often
                    # named by patient id or record number, and this text reaches reports
                    cache[key] = (
                        None,
                        [],
                        f"image unreadable: {exc.problem} ({Path(exc.file).name})",
                    )
            vol, crops, error = cache[key]
            row = {
                "case_id": case.case_id,
                "patient_id": case.patient_id,
                "site": case.site,
                "model_name": cfg.model_name,
                "model_version": version,
                "input_sha256": vol.sha256
                if vol is not None
                else _input_sha(Path(case.image_path)),
                "split": case.split,
                "positive_class": cfg.positive_class,
                "score": None,
                "status": "failed",
                "failure_reason": error,
                "vertebral_level": case.vertebral_level,
            }
            match = [c for c in crops if c.level == case.vertebral_level]
            if error is None and not match:
                row["failure_reason"] = "segmentation failed: vertebral body not delineated"
            elif error is None:
                score = float(
                    classify(cls_model, [match[0].array], positive_index=pos, device=device)[0]
                )
                row.update(score=score, status="ok", failure_reason=None)
                if gradcam_dir is not None and cfg.arch in CAM_LAYERS:
                    grad_cam_png(
                        cls_model,
                        match[0].array,
                        Path(gradcam_dir) / f"{case.case_id}.png",
                        arch=cfg.arch,
                        class_index=pos,
                    )
            rows.append(row)
    table = pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))
    if out_path is not None:
        table.to_csv(out_path, index=False, float_format="%.10g")
    return table
