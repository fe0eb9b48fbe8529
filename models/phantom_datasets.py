"""Training sets drawn from phantoms: a spine phantom's layout, segmentation slabs, fracture crops.

Library code of the imaging demo (:mod:`studyval.imaging_demo`, which builds
the phantoms, writes these training sets to disk with their image manifests,
trains on them with :func:`studyval.models.training.train_from_manifest` and
writes the demo's tables):

* :func:`spine_layout` -- the levels and patterns of a spine phantom for a
  patient's fractured vertebrae (an intact body below and above);
* :func:`write_segmentation_manifest` -- slabs of spine phantoms in HU with
  their body masks, and their manifest, for a 3-D segmentation network
  (:func:`segmentation_slabs` gives the same slabs windowed, in memory);
* :func:`write_fracture_manifest` -- crops in HU of the fractured vertebrae
  of spine phantoms, labelled with their reference class, and their manifest,
  for a fracture classifier (:func:`fracture_crops`: windowed, in memory).

The crops are cut as the crop stage (:mod:`studyval.models.crops`) cuts them
at prediction time (a box around the body, air outside the image), around
the phantom's true body instead of the segmented one.
:func:`spine_layout` and :func:`segmentation_slabs` work without torch;
the crops are cut by :func:`studyval.models.inference.vertebra_crops`, which
needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from studyval.models.imaging import apply_window
from studyval.models.phantoms import LEVELS, SpinePhantom

__all__ = [
    "fracture_crops",
    "segmentation_slabs",
    "spine_layout",
    "write_fracture_manifest",
    "write_segmentation_manifest",
]


def spine_layout(levels: Sequence[str], classes: Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """First level and the pattern of each body: the fractured levels plus an intact one each side.

    Parameters
    ----------
    levels : sequence of str
        The fractured levels (``"L1"``), in any order.
    classes : sequence of str
        The pattern of each of ``levels`` (``"acute"`` or ``"chronic"``).

    Returns
    -------
    tuple
        The lowest level of the phantom and the pattern of every body from it
        upwards (``"intact"`` for the bodies that are not in ``levels``), as
        :func:`studyval.models.phantoms.spine_phantom` takes them.

    """
    idx = sorted(LEVELS.index(lv) for lv in levels)
    lo, hi = max(0, idx[0] - 1), min(len(LEVELS) - 1, idx[-1] + 1)
    by_level = dict(zip(levels, classes, strict=True))
    patterns = tuple(by_level.get(LEVELS[k], "intact") for k in range(lo, hi + 1))
    return LEVELS[lo], patterns


def segmentation_slabs(
    phantoms: Iterable[SpinePhantom], *, hu_window: Sequence[float], roi_size: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Slabs of ``roi_size`` from the bottom, middle and top of each phantom, with their labels.

    Parameters
    ----------
    phantoms : iterable of SpinePhantom
        The training scans.
    hu_window : sequence of two float
        The network's HU window (:func:`studyval.models.imaging.apply_window`).
    roi_size : sequence of three int
        The network's input size; each slab is the phantom's first
        ``roi_size[0] x roi_size[1]`` voxels in plane.

    Returns
    -------
    tuple of ndarray
        Images, float32 of shape ``(N, 1, *roi_size)``, and body labels, int64
        of the same shape (one slab per distinct position: 1 to 3 per phantom).

    """
    xs, ys = [], []
    roi = roi_size
    for ph in phantoms:
        img = apply_window(ph.image, hu_window)
        for z0 in _slab_starts(img.shape[2], roi[2]):
            xs.append(img[None, : roi[0], : roi[1], z0 : z0 + roi[2]])
            ys.append(ph.label[None, : roi[0], : roi[1], z0 : z0 + roi[2]].astype(np.int64))
    return np.stack(xs).astype(np.float32), np.stack(ys)


def fracture_crops(
    scans: Iterable[tuple[SpinePhantom, str, Mapping[str, str]]],
    *,
    hu_window: Sequence[float],
    roi_size: Sequence[int],
    classes: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the fractured vertebrae of spine phantoms, labelled with their reference class.

    Parameters
    ----------
    scans : iterable of (SpinePhantom, str, mapping)
        Per scan: the phantom, its lowest level, and the reference class of
        each fractured level (``{"L1": "acute"}``). Bodies are found in the
        phantom's true label; bodies without a reference class are left out.
    hu_window : sequence of two float
        The classifier's HU window.
    roi_size : sequence of three int
        The classifier's input size.
    classes : sequence of str
        The classifier's classes; a target is the index of the reference class in them.

    Returns
    -------
    tuple of ndarray
        Crops, float32 of shape ``(N, 1, *roi_size)``, and targets, integer of shape ``(N,)``.

    """
    from studyval.models.inference import vertebra_crops

    crops, targets = [], []
    for ph, lowest_level, reference_by_level in scans:
        img = apply_window(ph.image, hu_window)
        for c in vertebra_crops(img, ph.label, roi_size=roi_size, lowest_level=lowest_level):
            reference = reference_by_level.get(c.level)
            if reference is not None:  # fractured vertebrae, labelled by the MRI reference
                crops.append(c.array[None])
                targets.append(classes.index(reference))
    return np.stack(crops).astype(np.float32), np.asarray(targets)


def _slab_starts(nz: int, depth: int) -> list[int]:
    return sorted({0, max(0, (nz - depth) // 2), max(0, nz - depth)})


def write_segmentation_manifest(
    scans: Iterable[tuple[str, str, SpinePhantom]],
    folder: str | Path,
    *,
    roi_size: Sequence[int],
    name: str = "images.csv",
) -> Path:
    """Write the slabs of :func:`segmentation_slabs` in HU with their masks, and their manifest.

    Parameters
    ----------
    scans : iterable of (str, str, SpinePhantom)
        Per development scan: patient id, site, phantom.
    folder : str or Path
        Created; the slabs go to ``slabs/<patient>-<k>.nii.gz`` (HU, int16 as the phantoms'
        scans are stored) and ``slabs/<patient>-<k>-mask.nii.gz``.
    roi_size : sequence of three int
        The network's input size: each slab is the phantom's first ``roi_size[0] x
        roi_size[1]`` voxels in plane and ``roi_size[2]`` slices at the bottom, middle and top.
    name : str
        File name of the manifest.

    Returns
    -------
    Path
        The manifest (``development`` rows with ``mask_path``).

    """
    import pandas as pd

    from studyval.models.phantoms import write_nifti

    folder = Path(folder)
    (folder / "slabs").mkdir(parents=True, exist_ok=True)
    rows = []
    for patient, site, ph in scans:
        for k, z0 in enumerate(_slab_starts(ph.image.shape[2], roi_size[2])):
            box = (slice(0, roi_size[0]), slice(0, roi_size[1]), slice(z0, z0 + roi_size[2]))
            rel = f"slabs/{patient}-{k}"
            write_nifti(ph.image[box], folder / f"{rel}.nii.gz", spacing=ph.spacing)
            write_nifti(
                ph.label[box].astype(np.int16), folder / f"{rel}-mask.nii.gz", spacing=ph.spacing
            )
            rows.append(
                {
                    "case_id": f"{patient}-{k}",
                    "patient_id": patient,
                    "site": site,
                    "split": "development",
                    "image_path": f"{rel}.nii.gz",
                    "mask_path": f"{rel}-mask.nii.gz",
                }
            )
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def write_fracture_manifest(
    scans: Iterable[tuple[str, str, SpinePhantom, str, Mapping[str, str]]],
    folder: str | Path,
    *,
    roi_size: Sequence[int],
    name: str = "images.csv",
) -> Path:
    """Write crops in HU of the fractured vertebrae, labelled with their class, and their manifest.

    Parameters
    ----------
    scans : iterable of (str, str, SpinePhantom, str, mapping)
        Per development scan: patient id, site, phantom, its lowest level and the reference
        class of each fractured level (``{"L1": "acute"}``). Bodies are found in the phantom's
        true label; bodies without a reference class are left out.
    folder : str or Path
        Created; crops go to ``crops/<patient>-<level>.nii.gz``: a ``roi_size`` box of the
        scan as stored (HU rounded to int16) centred on the body, air
        (:data:`studyval.models.crops.CROP_FILL_HU`) outside the scan, as the crop stage cuts
        them from a segmentation.
    roi_size : sequence of three int
        The classifier's input size.
    name : str
        File name of the manifest.

    Returns
    -------
    Path
        The manifest (``development`` rows with ``label``).

    """
    import pandas as pd

    from studyval.models.crops import CROP_FILL_HU
    from studyval.models.inference import vertebra_crops
    from studyval.models.phantoms import write_nifti

    folder = Path(folder)
    (folder / "crops").mkdir(parents=True, exist_ok=True)
    rows = []
    for patient, site, ph, lowest_level, reference_by_level in scans:
        stored = np.rint(ph.image).astype(np.float32)  # the scan's values as written (int16)
        for c in vertebra_crops(
            stored, ph.label, roi_size=roi_size, lowest_level=lowest_level, fill=CROP_FILL_HU
        ):
            reference = reference_by_level.get(c.level)
            if reference is None:
                continue
            rel = f"crops/{patient}-{c.level}.nii.gz"
            write_nifti(c.array, folder / rel, spacing=ph.spacing)
            rows.append(
                {
                    "case_id": f"{patient}-{c.level}",
                    "patient_id": patient,
                    "site": site,
                    "split": "development",
                    "image_path": rel,
                    "label": reference,
                }
            )
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
