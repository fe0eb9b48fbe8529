"""Training sets drawn from phantoms: a spine phantom's layout, segmentation slabs, fracture crops.

Library code of the imaging demo (:mod:`studyval.imaging_demo`, which builds
the phantoms, trains on these arrays and writes the demo's tables):

* :func:`spine_layout` -- the levels and patterns of a spine phantom for a
  patient's fractured vertebrae (an intact body below and above);
* :func:`segmentation_slabs` -- windowed slabs of spine phantoms and their
  body labels, for a 3-D segmentation network;
* :func:`fracture_crops` -- crops of the fractured vertebrae of spine phantoms
  and their reference classes, for a fracture classifier.

:func:`spine_layout` and :func:`segmentation_slabs` work without torch;
:func:`fracture_crops` cuts its crops with
:func:`studyval.models.inference.vertebra_crops`, which needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from studyval.models.imaging import apply_window
from studyval.models.phantoms import LEVELS, SpinePhantom

__all__ = ["fracture_crops", "segmentation_slabs", "spine_layout"]


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
        nz = img.shape[2]
        for z0 in sorted({0, max(0, (nz - roi[2]) // 2), max(0, nz - roi[2])}):
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
