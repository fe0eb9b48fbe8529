"""MONAI datasets over an image manifest: memory bounded by the cache setting, not the study size.

Each item is read from disk by :class:`LoadCase` (a MONAI ``Transform``):
:func:`studyval.models.imaging.load_image` (series checks, RAS, the config's spacing), the
config's HU window, then a centred crop or zero pad to the config's ``roi_size``
(:func:`preprocess`, shared with inference so that a model sees at prediction time exactly what
it saw in training). A mask is read on the same grid (nearest-neighbour resampling).

:func:`make_dataset` picks the MONAI dataset by ``cache``:

* ``"none"``: ``monai.data.Dataset``; nothing is kept, a volume lives from its read to the end of
  its batch's collation, so memory is bounded by the batch (and the ``DataLoader`` workers'
  prefetch), whatever the number of volumes;
* ``"memory"``: ``monai.data.CacheDataset``; the first ``cache_rate`` of the items are read once
  and kept (memory grows with ``cache_rate`` x the number of volumes);
* ``"disk"``: ``monai.data.PersistentDataset``; each preprocessed item is written once to
  ``cache_dir/<fingerprint>/`` and read back with ``torch.load(weights_only=True)`` (a cache file
  cannot run code; MONAI deletes and recomputes a file it cannot load). The fingerprint covers the
  preprocessing settings, and each item's key covers its paths, sizes and modification times, so
  a changed image or config never reads a stale cache.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from studyval.errors import StudyvalError
from studyval.models.config import ModelConfig
from studyval.models.imaging import ImageReadError, apply_window, load_image
from studyval.models.manifest import ImageRecord

CACHE_MODES = ("none", "memory", "disk")


def preprocess(array: np.ndarray, config: ModelConfig, *, source: str = "") -> np.ndarray:
    """Window a HU array and crop / pad it (centred) to the config's ROI; shape ``(1, *roi)``.

    A 3-D image with one slice is accepted by a 2-D config (the slice axis is dropped).

    Raises
    ------
    ImageReadError
        The image's dimensions do not fit the config's ``spatial_dims``.

    """
    from monai.transforms import ResizeWithPadOrCrop

    arr = array
    if arr.ndim == config.spatial_dims + 1 and 1 in arr.shape:
        arr = arr.squeeze(axis=arr.shape.index(1))
    if arr.ndim != config.spatial_dims:
        raise ImageReadError(
            source or "image",
            f"image has {arr.ndim} dimensions {tuple(arr.shape)}; the model reads "
            f"{config.spatial_dims}-D images",
        )
    win = apply_window(arr, config.hu_window)[None]
    out = ResizeWithPadOrCrop(spatial_size=tuple(config.roi_size), mode="constant")(win)
    return np.ascontiguousarray(np.asarray(out, dtype=np.float32))


def load_mask(path: str | Path, spacing: Sequence[float]) -> np.ndarray:
    """A label map in RAS, resampled to ``spacing`` with nearest neighbours (int64)."""
    from monai.transforms import LoadImage, Orientation, Spacing

    from studyval.models.imaging import spacing_for

    path = Path(path)
    try:
        img = LoadImage(reader="NibabelReader", ensure_channel_first=True, image_only=True)(
            str(path)
        )
    except Exception as exc:  # MONAI wraps reader errors in several types
        raise ImageReadError(path, f"mask cannot be read ({type(exc).__name__})") from exc
    img = Orientation(axcodes="RAS"[: img.ndim - 1], labels=(("L", "R"), ("P", "A"), ("I", "S")))(
        img
    )
    img = Spacing(pixdim=spacing_for(img, spacing), mode="nearest")(img)
    return np.rint(np.asarray(img.array[0])).astype(np.int64)


def preprocess_mask(mask: np.ndarray, config: ModelConfig) -> np.ndarray:
    """Crop / pad a label map like :func:`preprocess` (background 0); shape ``(1, *roi)``."""
    from monai.transforms import ResizeWithPadOrCrop

    arr = mask
    if arr.ndim == config.spatial_dims + 1 and 1 in arr.shape:
        arr = arr.squeeze(axis=arr.shape.index(1))
    out = ResizeWithPadOrCrop(spatial_size=tuple(config.roi_size), mode="constant")(arr[None])
    return np.ascontiguousarray(np.asarray(out, dtype=np.int64))


def files_stamp(path: str | Path) -> str:
    """Digest of the names, sizes and modification times of an image's files (cache keys)."""
    p = Path(path)
    files = (
        sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        if p.is_dir()
        else [p]
    )
    h = hashlib.sha256()
    for f in files:
        st = f.stat()
        h.update(f"{f.name}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def preprocessing_fingerprint(config: ModelConfig, target: str | None) -> str:
    """SHA-256 of everything that decides an item's preprocessed content."""
    payload = {
        "spacing": list(config.spacing),
        "hu_window": list(config.hu_window),
        "roi_size": list(config.roi_size),
        "spatial_dims": config.spatial_dims,
        "orientation": config.orientation,
        "classes": list(config.classes),
        "target": target,
        "format": 1,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _transform_base():
    from monai.transforms import Transform

    return Transform


class LoadCase(_transform_base()):
    """Read and preprocess one manifest item (a MONAI ``Transform``: cached by ``CacheDataset``).

    The item is a dict made by :func:`items_from_records`; the output holds ``index`` (position
    in the list), ``case_id``, ``image`` (float32 tensor ``(1, *roi)``) and ``target``
    (int64: a ``(1, *roi)`` label map, or a class index) when ``target`` is ``"mask"`` or
    ``"label"``.
    """

    def __init__(self, config: ModelConfig, target: str | None) -> None:
        if target not in (None, "mask", "label"):
            raise ValueError(f"target must be None, 'mask' or 'label', found {target!r}")
        self.config = config
        self.target = target

    def __call__(self, item: dict[str, Any]) -> dict[str, Any]:
        """Read the item's image (and mask); errors name the case."""
        cfg = self.config
        try:
            vol = load_image(item["image"], spacing=cfg.spacing)
            image = preprocess(vol.array, cfg, source=item["image"])
            out: dict[str, Any] = {
                "index": int(item["index"]),
                "case_id": item["case_id"],
                "image": torch.from_numpy(image),
            }
            if self.target == "mask":
                mask = load_mask(item["mask"], cfg.spacing)
                if mask.shape != vol.array.shape:
                    raise ImageReadError(
                        item["mask"],
                        f"mask shape {mask.shape} differs from the image's {vol.array.shape} "
                        "after resampling",
                    )
                out["target"] = torch.from_numpy(preprocess_mask(mask, cfg))
            elif self.target == "label":
                out["target"] = torch.tensor(cfg.classes.index(item["label"]), dtype=torch.int64)
        except ImageReadError as exc:
            raise StudyvalError(
                f"case {item['case_id']}: {exc.problem} ({Path(exc.file).name}); training needs "
                "every development and internal image readable: fix or remove the row"
            ) from exc
        return out


def items_from_records(
    records: Sequence[ImageRecord], *, stamp: bool = False
) -> list[dict[str, Any]]:
    """Plain dicts for MONAI datasets (``stamp`` adds the files' size/mtime digest: disk cache keys)."""
    items = []
    for i, r in enumerate(records):
        item: dict[str, Any] = {
            "index": i,
            "case_id": r.case_id,
            "image": r.image,
            "label": r.label,
            "mask": r.mask,
        }
        if stamp:
            item["stamp"] = files_stamp(r.image) + (files_stamp(r.mask) if r.mask else "")
        items.append(item)
    return items


def make_dataset(
    records: Sequence[ImageRecord],
    config: ModelConfig,
    *,
    target: str | None,
    cache: str = "none",
    cache_rate: float = 1.0,
    cache_dir: str | Path | None = None,
    num_workers: int = 0,
):
    """A MONAI dataset over ``records`` (see the module docstring for ``cache``).

    Parameters
    ----------
    records : sequence of ImageRecord
        Manifest rows.
    config : ModelConfig
        Preprocessing (spacing, window, ROI) and classes.
    target : {None, "mask", "label"}
        What the items carry besides the image.
    cache : {"none", "memory", "disk"}
        Dataset kind.
    cache_rate : float
        Fraction of the items kept by ``"memory"`` (0..1).
    cache_dir : str or Path
        Required for ``"disk"``; the items go to ``cache_dir/<fingerprint>/``.
    num_workers : int
        Threads that fill a ``"memory"`` cache.

    """
    from monai.data import CacheDataset, Dataset, PersistentDataset

    if cache not in CACHE_MODES:
        raise ValueError(f"cache must be one of {', '.join(CACHE_MODES)}, found {cache!r}")
    if not 0.0 <= float(cache_rate) <= 1.0:
        raise ValueError(f"cache_rate must be in [0, 1], found {cache_rate}")
    transform = LoadCase(config, target)
    if cache == "none":
        return Dataset(items_from_records(records), transform=transform)
    if cache == "memory":
        return CacheDataset(
            items_from_records(records),
            transform=transform,
            cache_rate=float(cache_rate),
            num_workers=max(1, int(num_workers)),
            progress=False,
            copy_cache=False,
        )
    if cache_dir is None:
        raise ValueError("cache='disk' needs a cache_dir")
    folder = Path(cache_dir) / preprocessing_fingerprint(config, target)
    folder.mkdir(parents=True, exist_ok=True)
    return PersistentDataset(
        items_from_records(records, stamp=True),
        transform=transform,
        cache_dir=folder,
        weights_only=True,
    )


def check_item(item: Any, *, target: str | None, where: str) -> None:
    """Refuse an item (or collated batch) of unexpected content: a foreign file in a disk cache."""
    keys = {"index", "case_id", "image"} | ({"target"} if target else set())
    if not isinstance(item, dict) or not keys <= set(item) or not torch.is_tensor(item["image"]):
        found = sorted(item) if isinstance(item, dict) else type(item).__name__
        raise StudyvalError(
            f"{where}: a cached item has unexpected content ({found}); delete the cache "
            "folder and rerun"
        )
