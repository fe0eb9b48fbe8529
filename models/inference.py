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

:func:`predict_from_manifest` scores every image of an image manifest
(``data_dictionary/images.yml``) with an image-level classifier, in this process
(``engine="local"``) or on Ray Data (``engine="ray"``,
:mod:`studyval.models.predict_ray`), writing results incrementally under
``<out>/results/`` and the prediction table ``<out>/predictions.csv``;
a rerun skips the cases already scored. Vertebra-level scoring runs it on the
crops of :mod:`studyval.models.crops` (segment each image once, crop each
case's vertebra), the path of ``studyval models crop`` + ``predict`` and of
the demo; :func:`predict_vertebrae` does both in one call, in memory, for
small tables.
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

    from studyval.models.training import channel_argmax

    x = torch.as_tensor(image01, dtype=torch.float32)[None, None].to(device)
    with torch.no_grad():
        logits = sliding_window_inference(
            x,
            roi_size=tuple(roi_size),
            sw_batch_size=sw_batch_size,
            predictor=model,
            overlap=overlap,
        )
    return channel_argmax(logits)[0].cpu().numpy().astype(np.int64)


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
    fill: float = 0.0,
) -> list[Crop]:
    """Crops centred on each connected vertebral body, inferior to superior.

    Bodies smaller than ``min_voxels`` are dropped as noise. Levels are
    assigned upwards from ``lowest_level`` along the last (superior) axis.
    Where a box leaves the image it is filled with ``fill`` (0: a windowed
    image's floor; crops in HU use air, -1024).
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
    padded = np.pad(image01, pad, constant_values=fill)
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


# --------------------------------------------------------------------------- manifest scoring

#: Columns of the result part files under ``<out>/results/`` (both engines).
RESULT_COLUMNS = (
    "case_id",
    "input_key",
    "input_sha256",
    "model_version",
    "model_name",
    "score",
    "status",
    "failure_reason",
)
RESULTS_DIR = "results"
TABLE_NAME = "predictions.csv"
ENGINES = ("local", "ray")


def _part_schema():
    import pyarrow as pa

    return pa.schema([(c, pa.float64() if c == "score" else pa.string()) for c in RESULT_COLUMNS])


@dataclass(frozen=True)
class PredictResult:
    """Outcome of :func:`predict_from_manifest`.

    Attributes
    ----------
    table : DataFrame
        The prediction table (:data:`PREDICTION_COLUMNS`), in manifest order.
    table_path : Path
        ``<out>/predictions.csv``.
    model_version : str
        ``"sha256:<hex>"`` of the weights.
    n_cases : int
        Rows of the table: the manifest's, and those of ``failed`` when given.
    n_scored : int
        Cases scored by this call.
    n_skipped : int
        Cases found already scored (same case, input bytes and model version).
    n_failed : int
        Rows of the table with ``status = failed``.
    engine : str
        ``"local"`` or ``"ray"``.
    seconds : float
        Wall time of the call.

    """

    table: pd.DataFrame
    table_path: Path
    model_version: str
    n_cases: int
    n_scored: int
    n_skipped: int
    n_failed: int
    engine: str
    seconds: float


def input_key(path: str | Path) -> str:
    """SHA-256 of an image's bytes, files in name order: what a rerun compares to skip a case.

    For a file it equals the table's ``input_sha256``; for a series folder the table's
    ``input_sha256`` orders the files by slice position, which needs the headers parsed, so the
    cheaper name order is kept beside it in the result files.
    """
    return _input_sha(Path(path))


def image_reason(exc: ImageReadError) -> str:
    """The failure reason of an image problem: the file's name, never its path."""
    # folders are often named by patient id or record number, and this text reaches reports
    return f"image unreadable: {exc.problem} ({Path(exc.file).name})"


#: SHA-256 of no bytes: the ``input_sha256`` of an image that does not exist or was not read
#: to the end (a read that timed out).
NO_BYTES_SHA256 = hashlib.sha256(b"").hexdigest()
#: Failure reasons retried by a rerun without ``retry_failed`` (the cause may be transient).
RETRIED_REASONS = ("processing error", "timeout")


class CaseTimeout(Exception):
    """A case's reading did not finish within its time limit (:func:`call_within`)."""


def call_within(seconds: float | None, fn, *args):
    """``fn(*args)``, or :class:`CaseTimeout` when it has not returned after ``seconds``.

    ``None`` calls ``fn`` directly. Otherwise it runs in a daemon thread; a call that does not
    return in time (a read blocked on a stalled network share, say) is abandoned, since Python
    cannot stop a thread: it keeps its thread, blocked, until it returns or the process ends,
    and its result is discarded. An exception raised by ``fn`` in time is raised here.
    """
    if seconds is None:
        return fn(*args)
    import threading

    box: dict = {}

    def run() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    worker = threading.Thread(target=run, name="studyval-case-read", daemon=True)
    worker.start()
    worker.join(float(seconds))
    if worker.is_alive():
        raise CaseTimeout(seconds)
    if "error" in box:
        raise box["error"]
    return box["value"]


def _current_keys(images: Sequence[str], *, timeout: float | None) -> dict[str, str | None]:
    """:func:`input_key` of each image, hashed by a pool of threads (the resume check).

    Hashing re-reads every byte already scored: for a study of CTs it is the whole cost of a
    resume, bound by the disk, and both the reads and ``hashlib`` release the GIL, so threads
    hash several series at once (four per core, up to 32: network storage rewards more reads in
    flight than cores). An image whose hashing outlasts
    ``timeout`` gets ``None``: it is scored again, and fails there as a timeout row.
    """
    import os
    from concurrent.futures import ThreadPoolExecutor

    def key(image: str) -> str | None:
        try:
            return call_within(timeout, input_key, image)
        except CaseTimeout:
            return None

    unique = list(dict.fromkeys(images))
    if len(unique) < 2:
        return {image: key(image) for image in unique}
    threads = min(32, 4 * (os.cpu_count() or 1), len(unique))
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="studyval-hash") as pool:
        return dict(zip(unique, pool.map(key, unique), strict=True))


def timeout_reason(seconds: float) -> str:
    """The failure reason of a case whose reading timed out."""
    return f"timeout: reading the image took more than {seconds:g} s"


def prepare_case(case: dict, config: ModelConfig, *, timeout: float | None = None) -> dict:
    """Read and preprocess one manifest case; never raises (the error becomes the row's reason).

    ``timeout`` (seconds) bounds the reading, hashing and preprocessing of the case
    (:func:`call_within`): a case that takes longer is a failed row whose reason starts with
    ``timeout`` and whose ``input_sha256`` is the SHA-256 of no bytes (nothing was read to the
    end); a rerun tries it again.

    Returns a dict with ``case_id``, ``input_key``, ``input_sha256``, ``image`` (float32 tensor
    ``(1, *roi)`` or ``None``) and ``error`` (``None`` or the failure reason).
    """
    from studyval.models.datasets import preprocess

    path = Path(case["image"])
    out = {"case_id": case["case_id"], "image": None, "error": None}

    def read() -> tuple[torch.Tensor, str, str]:
        vol = load_image(path, spacing=config.spacing)
        image = torch.from_numpy(preprocess(vol.array, config, source=str(path)))
        return image, vol.sha256, vol.sha256 if path.is_file() else input_key(path)

    try:
        out["image"], out["input_sha256"], out["input_key"] = call_within(timeout, read)
    except CaseTimeout:
        out["error"] = timeout_reason(float(timeout))  # type: ignore[arg-type]
        out["input_sha256"] = out["input_key"] = NO_BYTES_SHA256
        return out
    except ImageReadError as exc:
        out["error"] = image_reason(exc)
    except Exception as exc:  # a case never stops the run
        out["error"] = f"processing error: exception {type(exc).__name__} while reading the image"
    if out["error"] is not None:
        try:
            out["input_sha256"] = out["input_key"] = call_within(timeout, input_key, path)
        except CaseTimeout:
            out["error"] = timeout_reason(float(timeout))  # type: ignore[arg-type]
            out["input_sha256"] = out["input_key"] = NO_BYTES_SHA256
    return out


class CaseScorer:
    """One model replica: scores prepared cases (the local engine and each Ray actor use it).

    On CPU each case runs through the network alone, so that a score does not depend on the
    cases that share its batch: the rows are bitwise identical whatever the engine, the number
    of workers, the batch size or the resume point (with the same thread count; 1 by default).
    On CUDA the cases of a batch are stacked, under bf16 autocast when supported.
    """

    def __init__(
        self,
        config: ModelConfig,
        weights: str | Path,
        *,
        device: str | torch.device | None = None,
    ) -> None:
        dev = torch.device(
            device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu")
        )
        self.config = config
        self.device = dev
        self.model, self.model_version = load_model(config, weights, device=str(dev))
        self.positive = config.classes.index(str(config.positive_class))

    def _forward(self, images: list[torch.Tensor]) -> list[float]:
        from studyval.models.training import autocast_context

        x = torch.stack(images).to(self.device)
        with torch.no_grad(), autocast_context(self.device):
            p = torch.softmax(self.model(x).float(), dim=1)[:, self.positive]
        return [float(v) for v in p.cpu().numpy().astype(np.float64)]

    def score(self, prepared: Sequence[dict]) -> list[dict]:
        """Rows of the result files (:data:`RESULT_COLUMNS`) for prepared cases, in order."""
        scores: dict[int, float | str] = {}
        ok = [i for i, p in enumerate(prepared) if p["error"] is None]
        if self.device.type == "cuda" and len(ok) > 1:
            try:
                for i, s in zip(ok, self._forward([prepared[i]["image"] for i in ok]), strict=True):
                    scores[i] = s
            except RuntimeError:  # e.g. out of memory: fall back to one case at a time
                scores.clear()
        for i in ok:
            if i in scores:
                continue
            try:
                scores[i] = self._forward([prepared[i]["image"]])[0]
            except Exception as exc:  # a case never stops the run
                scores[i] = f"processing error: runtime error {type(exc).__name__} in the network"
        rows = []
        for i, p in enumerate(prepared):
            s = scores.get(i, p["error"])
            ok_row = isinstance(s, float)
            rows.append(
                {
                    "case_id": p["case_id"],
                    "input_key": p["input_key"],
                    "input_sha256": p["input_sha256"],
                    "model_version": self.model_version,
                    "model_name": self.config.model_name,
                    "score": s if ok_row else float("nan"),
                    "status": "ok" if ok_row else "failed",
                    "failure_reason": None if ok_row else str(s),
                }
            )
        return rows


def write_part(path: Path, rows: Sequence[dict]) -> Path:
    """Write result rows as one parquet file, atomically (temporary name, fsync, rename)."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist(list(rows), schema=_part_schema())
    tmp = path.with_name(f".{path.name}.tmp-write")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def read_results(results_dir: Path, *, drop_broken: bool = False) -> tuple[pd.DataFrame, int]:
    """Every result row under ``results_dir`` and the number of unreadable part files.

    A part file that cannot be read (a write cut by a kill) is skipped, and deleted when
    ``drop_broken``; its cases count as not scored.
    """
    import pyarrow.parquet as pq

    frames, broken = [], 0
    if results_dir.is_dir():
        for f in sorted(results_dir.rglob("*.parquet")):
            if f.name.startswith("."):
                continue
            try:
                t = pq.read_table(f, columns=list(RESULT_COLUMNS))
            except Exception:  # pyarrow raises several types for a truncated file
                broken += 1
                if drop_broken:
                    f.unlink(missing_ok=True)
                continue
            frame = t.to_pandas()
            frame["part"] = str(f.relative_to(results_dir))
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=[*RESULT_COLUMNS, "part"]), broken
    return pd.concat(frames, ignore_index=True), broken


#: Columns of the crop stage's ``failed.csv`` (:mod:`studyval.models.crops`).
FAILED_COLUMNS = (
    "case_id",
    "patient_id",
    "site",
    "split",
    "vertebral_level",
    "input_sha256",
    "failure_reason",
)


def read_failed(path: str | Path) -> pd.DataFrame:
    """Read a ``failed.csv`` of :func:`studyval.models.crops.crop_vertebrae` and check its shape.

    Raises
    ------
    StudyvalError
        A missing column, an empty or duplicated case id, an ``input_sha256`` that is not 64
        hexadecimal digits, or an empty reason (file, row and rule named).

    """
    from studyval.errors import StudyvalError

    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise StudyvalError(f"{path.name}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in FAILED_COLUMNS if c not in frame.columns]
    if missing:
        raise StudyvalError(f"{path.name}: missing column(s) {', '.join(missing)}")
    problems = []
    for i, row in frame.iterrows():
        line = int(i) + 2
        if not row["case_id"]:
            problems.append(f"row {line}: case_id is empty")
        sha = row["input_sha256"]
        if not (len(sha) == 64 and set(sha) <= set("0123456789abcdef")):
            problems.append(f"row {line}: input_sha256 is not 64 hexadecimal digits")
        if not row["failure_reason"]:
            problems.append(f"row {line}: failure_reason is empty")
    dup = frame["case_id"][frame["case_id"].duplicated() & (frame["case_id"] != "")]
    problems += [f"case_id {c!r} appears more than once" for c in dup]
    if problems:
        raise StudyvalError(f"{path.name}: " + "; ".join(problems))
    return frame.replace({"": None})


class _RunLock:
    """An exclusive ``flock`` on ``<out>/.lock``: one run per output folder (freed if killed)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / ".lock"
        self.fh = None

    def __enter__(self) -> _RunLock:
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return self
        from studyval.errors import StudyvalError

        self.fh = open(self.path, "a")  # held for the whole run
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            raise StudyvalError(
                f"{self.path.parent}: another prediction run is writing to this folder"
            ) from None
        return self

    def __exit__(self, *exc) -> None:
        if self.fh is not None:
            self.fh.close()


def _worker_init(_worker_id: int) -> None:
    torch.set_num_threads(1)


def _as_list(batch: list) -> list:
    return batch


def _run_local(
    todo: list[dict],
    config: ModelConfig,
    weights: Path,
    run_dir: Path,
    *,
    num_workers: int,
    batch_size: int,
    device: str | None,
    progress: bool,
    case_timeout: float | None = None,
) -> None:
    """Score ``todo`` in this process (images read by ``num_workers`` DataLoader workers).

    One parquet part per batch, written atomically: a kill loses at most the batch in flight.
    """
    from functools import partial

    from monai.data import Dataset
    from torch.utils.data import DataLoader

    scorer = CaseScorer(config, weights, device=device)
    dataset = Dataset(todo, transform=partial(prepare_case, config=config, timeout=case_timeout))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        collate_fn=_as_list,
        worker_init_fn=_worker_init if num_workers else None,
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    batches = loader
    if progress:
        try:
            from tqdm.auto import tqdm

            batches = tqdm(loader, desc=f"{config.name} (local)", unit="batch")
        except ImportError:
            pass
    for seq, batch in enumerate(batches):
        write_part(run_dir / f"part-{seq:06d}.parquet", scorer.score(batch))


def predict_from_manifest(
    config: ModelConfig | str | Path,
    weights: str | Path | None,
    images: str | Path,
    out: str | Path,
    *,
    engine: str = "local",
    num_workers: int = 1,
    batch_size: int = 8,
    ray_address: str | None = None,
    root: str | Path | None = None,
    device: str | None = None,
    threads: int | None = 1,
    retry_failed: bool = False,
    case_timeout: float | None = None,
    failed: str | Path | None = None,
    smoke: bool = False,
    progress: bool = True,
) -> PredictResult:
    """Score every image of a manifest with a classifier and write the prediction table.

    Each case is read (:func:`studyval.models.imaging.load_image`: series checks, RAS, the
    config's spacing), windowed and cropped / padded to the config's ROI exactly as in
    training (:func:`studyval.models.datasets.preprocess`), and scored (softmax probability of
    the config's ``positive_class``). An unreadable, incomplete or inconsistent image keeps its
    row with ``status = failed`` and a ``failure_reason`` naming the file's name; it never stops
    the run.

    Results go to ``<out>/results/`` as parquet part files as they are produced (the local
    engine writes one per batch atomically; Ray Data writes one per block), so a killed run
    loses only the cases in flight. A rerun with the same ``out`` skips every case already
    scored with the same input bytes and model version (a failed row whose reason is a
    ``processing error`` or a ``timeout`` is retried, and every failed row with
    ``retry_failed``), scores the
    rest, and rebuilds ``<out>/predictions.csv`` in manifest order with the manifest's current
    ``patient_id``, ``site`` and ``split``. The rows do not depend on the engine, the number of
    workers, the batch size or the resume point: on CPU each case runs through the network
    alone with ``threads`` torch threads (bitwise identical scores).

    Parameters
    ----------
    config : ModelConfig, str or Path
        A classification config (its object, name or folder).
    weights : str or Path
        Weights file (hash-checked, loaded with ``weights_only=True``); its SHA-256 is the
        table's ``model_version``.
    images : str or Path
        Image manifest (``data_dictionary/images.yml``); ``label`` and ``mask_path`` are ignored.
    out : str or Path
        Output folder: ``results/`` (part files) and ``predictions.csv``.
    engine : {"local", "ray"}
        ``local``: one process scores, ``num_workers`` DataLoader workers read images. ``ray``:
        Ray Data, ``num_workers`` model replicas (actors, one GPU each when the cluster has
        GPUs), each reading its own images.
    num_workers : int
        See ``engine`` (local: 0 reads in the scoring process).
    batch_size : int
        Cases per part file / per Ray batch (stacked through the network on CUDA only).
    ray_address : str, optional
        An existing Ray cluster (``"auto"``, ``"ray://host:10001"``); by default a local Ray is
        started (``num_workers + 1`` CPUs, no dashboard) and stopped after. Images, weights and
        ``out`` must be on storage every node sees, and studyval installed on every node.
    root : str or Path, optional
        Image root (default: the manifest's folder).
    device : str, optional
        Torch device of the scorer(s); default CUDA when available.
    threads : int or None
        Torch threads per scorer (``None``: torch's default).
    retry_failed : bool
        Rescore every failed row on a rerun.
    case_timeout : float, optional
        Seconds allowed to read, hash and preprocess one case (:func:`prepare_case`); a case
        that takes longer (a series that hangs reading) becomes a failed row whose reason
        starts with ``timeout``, and the run goes on. A rerun tries it again. ``None`` (the
        default): no limit.
    failed : str or Path, optional
        ``failed.csv`` of the crop stage (:func:`studyval.models.crops.crop_vertebrae`): cases
        that have no image to score (their series was unreadable, their vertebra not
        delineated). Each keeps its row in the table, after the manifest's rows, with
        ``status = failed``, its reason and the SHA-256 of its image. Its case ids may not be in
        the manifest.
    smoke : bool
        Use the config's tiny ``smoke`` network and ROI.
    progress : bool
        Progress on stderr.

    Returns
    -------
    PredictResult

    Raises
    ------
    InputValidationError
        The manifest breaks its contract (every violation; nothing written).
    CheckpointError
        No weights, a missing, foreign or tampered file (nothing written).

    """
    import time
    import uuid

    from studyval.errors import StudyvalError
    from studyval.models.checkpoints import sha256_file
    from studyval.models.manifest import read_manifest
    from studyval.models.training import resolve_config, torch_threads

    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, found {engine!r}")
    if int(batch_size) < 1 or int(num_workers) < 0 or (engine == "ray" and num_workers < 1):
        raise ValueError("batch_size must be >= 1 and num_workers >= 0 (>= 1 for ray)")
    if case_timeout is not None and not float(case_timeout) > 0:
        raise ValueError(f"case_timeout must be a positive number of seconds, found {case_timeout}")
    cfg = resolve_config(config, smoke=smoke)
    if cfg.task != "classification":
        raise StudyvalError(
            f"{cfg.name} is a {cfg.task} config: predict_from_manifest scores image-level "
            "classifiers (vertebrae are cropped out of a segmentation by "
            "studyval.models.crops.crop_vertebrae, 'studyval models crop')"
        )
    manifest = read_manifest(images, root=root)
    pre_failed = None
    if failed is not None:
        pre_failed = read_failed(failed)
        both = sorted(set(pre_failed["case_id"]) & {r.case_id for r in manifest})
        if both:
            raise StudyvalError(
                f"{Path(failed).name}: case(s) also in the manifest: {', '.join(both[:5])}"
            )
    # the weights are checked (hash, keys) before anything is written
    with torch_threads(threads):
        load_model(cfg, weights)
    weights = Path(weights)  # type: ignore[arg-type]
    version = f"sha256:{sha256_file(weights)}"
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results_dir = out_dir / RESULTS_DIR
    with _RunLock(out_dir):
        for tmp in results_dir.rglob(".*.tmp-write") if results_dir.is_dir() else ():
            tmp.unlink(missing_ok=True)  # a part cut by a kill before its rename
        stored, _ = read_results(results_dir, drop_broken=True)
        stored = stored[stored["model_version"] == version]
        if len(stored):
            failed = stored["status"] == "failed"
            retry = failed & (
                True
                if retry_failed
                else stored["failure_reason"].fillna("").str.startswith(RETRIED_REASONS)
            )
            stored = stored[~retry]
        by_case: dict[str, dict[str, dict]] = {}
        for row in stored.to_dict("records"):
            by_case.setdefault(row["case_id"], {}).setdefault(row["input_key"], row)
        done: dict[str, dict] = {}
        todo: list[dict] = []
        keys = _current_keys(
            [rec.image for rec in manifest if rec.case_id in by_case], timeout=case_timeout
        )
        for rec in manifest:
            found = by_case.get(rec.case_id)
            if found and keys.get(rec.image) in found:
                done[rec.case_id] = found[keys[rec.image]]
                continue
            todo.append({"case_id": rec.case_id, "image": rec.image})
        run_dir = results_dir / f"{engine}-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
        if todo:
            if engine == "local":
                with torch_threads(threads):
                    _run_local(
                        todo,
                        cfg,
                        weights,
                        run_dir,
                        num_workers=int(num_workers),
                        batch_size=int(batch_size),
                        device=device,
                        progress=progress,
                        case_timeout=case_timeout,
                    )
            else:
                from studyval.models.predict_ray import run_ray

                run_ray(
                    todo,
                    cfg,
                    weights,
                    run_dir,
                    num_workers=int(num_workers),
                    batch_size=int(batch_size),
                    ray_address=ray_address,
                    device=device,
                    threads=threads,
                    progress=progress,
                    case_timeout=case_timeout,
                )
            new, broken = read_results(run_dir)
            new = new[new["model_version"] == version]
            for row in new.to_dict("records"):
                done.setdefault(row["case_id"], row)
            missing = [t["case_id"] for t in todo if t["case_id"] not in done]
            if missing or broken:
                raise StudyvalError(
                    f"{len(missing)} case(s) have no result after the {engine} run "
                    f"({', '.join(missing[:5])}{'...' if len(missing) > 5 else ''}); "
                    "rerun the same command to score them"
                )
        rows = []
        for rec in manifest:
            r = done[rec.case_id]
            ok = r["status"] == "ok"
            rows.append(
                {
                    "case_id": rec.case_id,
                    "patient_id": rec.patient_id,
                    "site": rec.site,
                    "model_name": cfg.model_name,
                    "model_version": version,
                    "input_sha256": r["input_sha256"],
                    "split": rec.split,
                    "positive_class": cfg.positive_class,
                    "score": float(r["score"]) if ok else None,
                    "status": r["status"],
                    "failure_reason": None if ok else r["failure_reason"],
                    "vertebral_level": rec.vertebral_level,
                }
            )
        for r in pre_failed.to_dict("records") if pre_failed is not None else ():
            rows.append(
                {
                    **{c: r[c] for c in ("case_id", "patient_id", "site", "split")},
                    "model_name": cfg.model_name,
                    "model_version": version,
                    "input_sha256": r["input_sha256"],
                    "positive_class": cfg.positive_class,
                    "score": None,
                    "status": "failed",
                    "failure_reason": r["failure_reason"],
                    "vertebral_level": r["vertebral_level"],
                }
            )
        table = pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))
        table_path = out_dir / TABLE_NAME
        tmp = table_path.with_name(f".{TABLE_NAME}.tmp-write")
        table.to_csv(tmp, index=False)
        import os

        os.replace(tmp, table_path)
    return PredictResult(
        table=table,
        table_path=table_path,
        model_version=version,
        n_cases=len(table),
        n_scored=len(todo),
        n_skipped=len(manifest) - len(todo),
        n_failed=int((table["status"] == "failed").sum()),
        engine=engine,
        seconds=round(time.perf_counter() - t0, 3),
    )
