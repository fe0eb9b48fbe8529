"""Seeded synthetic phantoms: CT-like spines and an L3 body-composition slice.

No real patient image exists in this repository. These phantoms give the
imaging pipelines inputs with a known truth:

* :func:`spine_phantom` -- a small CT-like volume (Hounsfield units) with a
  column of vertebral bodies separated by discs. Each body is *intact*,
  *acute* (an oedema-like hypodense band below the superior endplate and a
  uniform loss of height) or *chronic* (sclerotic, i.e. denser, and
  wedge-shaped: anterior height lost, posterior height kept). The label
  volume marks vertebral bodies (1) on background (0).
* :func:`l3_phantom` -- one axial slice at L3 with a vertebra, skeletal
  muscle (an elliptic ring plus two psoas ellipses) and subcutaneous and
  visceral fat, with the analytic area of every compartment in mm².

Arrays are indexed ``[x, y, z]`` in RAS orientation (the index grows towards
the patient's right, anterior and superior), matching the arrays that
:func:`studyval.models.imaging.load_image` returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PATTERNS = ("intact", "acute", "chronic")
LEVELS = ("T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8", "T9", "T10", "T11", "T12")
LEVELS += ("L1", "L2", "L3", "L4", "L5")

# Hounsfield units of the phantom tissues (typical adult CT values).
HU = {
    "air": -1000.0,
    "fat": -100.0,
    "soft_tissue": 40.0,
    "muscle": 45.0,
    "disc": 80.0,
    "cancellous": 250.0,
    "cortex": 700.0,
    "oedema_band": 60.0,
    "sclerotic": 550.0,
}


@dataclass(frozen=True)
class Vertebra:
    """One vertebral body of a :class:`SpinePhantom`.

    Attributes
    ----------
    level : str
        Vertebral level (``"L1"``...).
    pattern : str
        ``"intact"``, ``"acute"`` or ``"chronic"``.
    center : tuple of int
        Voxel index ``(x, y, z)`` of the body's centre.
    bbox : tuple of slice
        Voxel bounding box of the body (x, y, z).
    height_anterior_mm, height_posterior_mm : float
        Body heights at the anterior and posterior wall.

    """

    level: str
    pattern: str
    center: tuple[int, int, int]
    bbox: tuple[slice, slice, slice]
    height_anterior_mm: float
    height_posterior_mm: float


@dataclass(frozen=True)
class SpinePhantom:
    """A CT-like spine volume with its ground truth.

    Attributes
    ----------
    image : ndarray of float32, shape (X, Y, Z)
        Hounsfield units.
    label : ndarray of uint8, shape (X, Y, Z)
        1 inside a vertebral body, 0 elsewhere.
    spacing : tuple of float
        Voxel size in mm (x, y, z).
    vertebrae : tuple of Vertebra
        One entry per body, inferior to superior.
    seed : int
        Seed that reproduces the phantom.

    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float, float]
    vertebrae: tuple[Vertebra, ...]
    seed: int


def _check_pattern(pattern: str) -> None:
    if pattern not in PATTERNS:
        raise ValueError(f"unknown vertebral pattern {pattern!r}; allowed: {', '.join(PATTERNS)}")


def spine_phantom(
    *,
    shape: tuple[int, int, int] = (32, 32, 48),
    spacing: tuple[float, float, float] = (1.5, 1.5, 1.5),
    patterns: tuple[str, ...] = ("intact", "acute", "chronic"),
    first_level: str = "L1",
    noise_hu: float = 15.0,
    conspicuity: float | Sequence[float] = 1.0,
    seed: int = 0,
) -> SpinePhantom:
    """Build a seeded CT-like spine phantom.

    Parameters
    ----------
    shape : tuple of int
        Volume shape ``(X, Y, Z)``; Z must hold ``len(patterns)`` bodies.
    spacing : tuple of float
        Voxel size in mm.
    patterns : tuple of str
        Pattern of each body from inferior to superior; each one of
        ``"intact"``, ``"acute"``, ``"chronic"``.
    first_level : str
        Level of the most inferior body; the next ones take the following
        levels of :data:`LEVELS` (e.g. ``"L1"`` then ``"L2"``).
    noise_hu : float
        Standard deviation of the Gaussian noise in HU.
    conspicuity : float or sequence of float
        How clearly each fractured body shows its pattern, in [0, 1] (one
        value, or one per body). At 1 the patterns are as described above; at
        0 an acute and a chronic fracture look the same (a uniform 20 % height
        loss, cancellous core, no oedema band, no sclerosis); in between,
        heights and HU are interpolated linearly. It makes the acute-vs-chronic
        task as hard as a demo needs (``studyval.imaging_demo``). Intact bodies
        ignore it.
    seed : int
        Seed of the noise and of the small jitter of each body.

    Returns
    -------
    SpinePhantom

    """
    for p in patterns:
        _check_pattern(p)
    if first_level not in LEVELS:
        raise ValueError(f"unknown vertebral level {first_level!r}")
    start = LEVELS.index(first_level)
    conspic = (
        [float(conspicuity)] * len(patterns)
        if np.isscalar(conspicuity)
        else [float(c) for c in conspicuity]  # type: ignore[union-attr]
    )
    if len(conspic) != len(patterns) or not all(0.0 <= c <= 1.0 for c in conspic):
        raise ValueError("conspicuity must be one value or one per body, each in [0, 1]")
    if start + len(patterns) > len(LEVELS):
        raise ValueError(f"{len(patterns)} bodies from {first_level} run past L5")
    rng = np.random.default_rng(seed)
    nx, ny, nz = shape
    sx, sy, sz = spacing
    image = np.full(shape, HU["soft_tissue"], dtype=np.float32)
    label = np.zeros(shape, dtype=np.uint8)
    x = (np.arange(nx) - (nx - 1) / 2) * sx
    y = (np.arange(ny) - (ny - 1) / 2) * sy
    xx, yy = np.meshgrid(x, y, indexing="ij")
    # Body outline: ellipse, semi-axes in mm; RAS: the anterior wall is at y = +b.
    a_mm, b_mm = 0.32 * nx * sx, 0.28 * ny * sy
    n = len(patterns)
    pitch = nz / n  # voxels per body + disc
    vertebrae = []
    for i, pattern in enumerate(patterns):
        jitter = rng.uniform(-0.5, 0.5, size=2)
        cx, cy = jitter * sx
        inside = ((xx - cx) / a_mm) ** 2 + ((yy - cy) / b_mm) ** 2 <= 1.0
        rim = inside & ~(
            ((xx - cx) / (a_mm - 1.6 * sx)) ** 2 + ((yy - cy) / (b_mm - 1.6 * sy)) ** 2 <= 1.0
        )
        full_h = 0.72 * pitch * sz  # mm; the rest of the pitch is disc
        z0 = (i * pitch + 0.14 * pitch) * sz  # inferior endplate, mm
        # anterior-posterior fraction: 0 at the anterior wall, 1 at the posterior wall
        ap = np.clip((cy + b_mm - yy) / (2 * b_mm), 0.0, 1.0)
        # (1 - c) * (indeterminate - pattern) is exactly 0.0 at c = 1, so the default
        # phantoms are bit-for-bit those of the clear patterns.
        blur = 1.0 - conspic[i]
        if pattern == "intact":
            top = np.full_like(xx, z0 + full_h)
        elif pattern == "acute":
            top = np.full_like(xx, z0 + (0.75 + blur * 0.05) * full_h)
        else:  # chronic: wedge, anterior 55 % of posterior height
            wedge = 0.55 + 0.45 * ap
            top = z0 + full_h * (wedge + blur * (0.8 - wedge))
        zc = (np.arange(nz) + 0.5) * sz
        body = (
            inside[:, :, None] & (zc[None, None, :] >= z0) & (zc[None, None, :] < top[:, :, None])
        )
        shell = body & (
            rim[:, :, None]
            | (zc[None, None, :] < z0 + sz)
            | (zc[None, None, :] >= top[:, :, None] - sz)
        )
        core_hu = (
            HU["sclerotic"] + blur * (HU["cancellous"] - HU["sclerotic"])
            if pattern == "chronic"
            else HU["cancellous"]
        )
        image[body] = core_hu
        image[shell] = HU["cortex"]
        if pattern == "acute":
            band = body & ~shell & (zc[None, None, :] >= top[:, :, None] - 0.45 * full_h)
            image[band] = HU["oedema_band"] + blur * (HU["cancellous"] - HU["oedema_band"])
        label[body] = 1
        # disc above the body
        above = (zc[None, None, :] >= top[:, :, None]) & (
            zc[None, None, :] < (i + 1.14) * pitch * sz
        )
        disc = inside[:, :, None] & above
        image[disc & (label == 0)] = HU["disc"]
        idx = np.argwhere(body)
        lo, hi = idx.min(axis=0), idx.max(axis=0) + 1
        center = tuple(int(v) for v in (lo + hi) // 2)
        factor = {
            "intact": (1.0, 1.0),
            "acute": (0.75 + blur * 0.05, 0.75 + blur * 0.05),
            "chronic": (0.55 + blur * 0.25, 1.0 - blur * 0.2),
        }[pattern]
        vertebrae.append(
            Vertebra(
                level=LEVELS[start + i],
                pattern=pattern,
                center=center,  # type: ignore[arg-type]
                bbox=tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True)),  # type: ignore[arg-type]
                height_anterior_mm=factor[0] * full_h,
                height_posterior_mm=factor[1] * full_h,
            )
        )
    image += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)
    return SpinePhantom(
        image=image,
        label=label,
        spacing=tuple(float(s) for s in spacing),  # type: ignore[arg-type]
        vertebrae=tuple(vertebrae),
        seed=seed,
    )


@dataclass(frozen=True)
class L3Phantom:
    """An axial L3 slice with body-composition compartments of known area.

    Attributes
    ----------
    image : ndarray of float32, shape (X, Y)
        Hounsfield units.
    label : ndarray of uint8, shape (X, Y)
        0 outside the body, 1 skeletal muscle, 2 subcutaneous fat,
        3 visceral fat, 4 bone, 5 other soft tissue.
    spacing : tuple of float
        Pixel size in mm (x, y).
    true_area_mm2 : dict of str to float
        Analytic (continuous) area of each compartment in mm²:
        ``"muscle"``, ``"subcutaneous_fat"``, ``"visceral_fat"``, ``"bone"``.
    seed : int

    """

    image: np.ndarray
    label: np.ndarray
    spacing: tuple[float, float]
    true_area_mm2: dict[str, float] = field(default_factory=dict)
    seed: int = 0


LABELS_L3 = {
    "background": 0,
    "muscle": 1,
    "subcutaneous_fat": 2,
    "visceral_fat": 3,
    "bone": 4,
    "other": 5,
}


def _ellipse(
    xx: np.ndarray, yy: np.ndarray, cx: float, cy: float, a: float, b: float
) -> np.ndarray:
    return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0


def l3_phantom(
    *,
    shape: tuple[int, int] = (256, 256),
    spacing: tuple[float, float] = (1.5, 1.5),
    muscle_thickness_mm: float = 18.0,
    fat_thickness_mm: float = 20.0,
    noise_hu: float = 8.0,
    muscle_area_mm2: float | None = None,
    seed: int = 0,
) -> L3Phantom:
    r"""Build a seeded axial L3 slice with known compartment areas.

    The body is an ellipse (semi-axes 0.42 and 0.30 of the field of view);
    from outside in: skin-to-muscle subcutaneous fat (``fat_thickness_mm``),
    an elliptic muscle wall (``muscle_thickness_mm``), and inside it
    visceral fat, soft tissue, two psoas muscles and the vertebral body.
    Areas are the analytic areas of the ellipses (:math:`\pi a b`), so a
    measurement on the rasterised image carries only the partial-volume
    error of the pixel grid.

    Parameters
    ----------
    shape : tuple of int
        Image shape ``(X, Y)``.
    spacing : tuple of float
        Pixel size in mm.
    muscle_thickness_mm, fat_thickness_mm : float
        Thickness of the muscle wall and of the subcutaneous fat.
    noise_hu : float
        Standard deviation of the Gaussian noise in HU.
    muscle_area_mm2 : float, optional
        Analytic skeletal-muscle area wanted; the wall thickness is then solved
        for it (``muscle_thickness_mm`` is ignored). With outer semi-axes
        :math:`a, b` of the muscle wall and thickness :math:`m`, the area of
        the wall plus the two psoas muscles is
        :math:`\pi\{0.0384\,ab + 0.9616\,m(a+b) - 0.9616\,m^2\}`; the
        smaller root of that quadratic is taken.
    seed : int
        Seed of the noise and of a small jitter of the body size.

    Returns
    -------
    L3Phantom

    """
    rng = np.random.default_rng(seed)
    nx, ny = shape
    sx, sy = spacing
    x = (np.arange(nx) - (nx - 1) / 2) * sx
    y = (np.arange(ny) - (ny - 1) / 2) * sy
    xx, yy = np.meshgrid(x, y, indexing="ij")
    scale = 1.0 + rng.uniform(-0.03, 0.03)
    a_body, b_body = 0.42 * nx * sx * scale, 0.30 * ny * sy * scale
    f, m = fat_thickness_mm, muscle_thickness_mm
    a_mo, b_mo = a_body - f, b_body - f  # outer muscle boundary
    if muscle_area_mm2 is not None:
        c = float(muscle_area_mm2) / math.pi - 0.0384 * a_mo * b_mo
        disc = (a_mo + b_mo) ** 2 - 4 * c / 0.9616
        if c <= 0 or disc < 0:
            raise ValueError(f"no muscle wall of area {muscle_area_mm2:g} mm2 fits this body")
        m = 0.5 * ((a_mo + b_mo) - math.sqrt(disc))
    a_mi, b_mi = a_mo - m, b_mo - m  # inner muscle boundary
    if min(a_mi, b_mi) <= 25.0:
        raise ValueError("field of view too small for the requested fat and muscle thickness")
    # vertebral body (bone) and the two psoas muscles beside it, posterior half
    vb_c, vb_a, vb_b = (0.0, -0.45 * b_mi), 0.22 * a_mi, 0.28 * b_mi
    ps_a, ps_b = 0.12 * a_mi, 0.16 * b_mi
    ps_c = [(-(vb_a + ps_a + 2.0), vb_c[1]), (vb_a + ps_a + 2.0, vb_c[1])]
    # viscera: soft tissue ellipse in the anterior half, surrounded by visceral fat
    vis_c, vis_a, vis_b = (0.0, 0.3 * b_mi), 0.55 * a_mi, 0.4 * b_mi

    label = np.zeros(shape, dtype=np.uint8)
    body = _ellipse(xx, yy, 0, 0, a_body, b_body)
    outer_m = _ellipse(xx, yy, 0, 0, a_mo, b_mo)
    inner_m = _ellipse(xx, yy, 0, 0, a_mi, b_mi)
    label[body] = LABELS_L3["subcutaneous_fat"]
    label[outer_m] = LABELS_L3["muscle"]
    label[inner_m] = LABELS_L3["visceral_fat"]
    label[_ellipse(xx, yy, *vis_c, vis_a, vis_b) & inner_m] = LABELS_L3["other"]
    for c in ps_c:
        label[_ellipse(xx, yy, *c, ps_a, ps_b)] = LABELS_L3["muscle"]
    label[_ellipse(xx, yy, *vb_c, vb_a, vb_b)] = LABELS_L3["bone"]

    hu_of = {0: HU["air"], 1: HU["muscle"], 2: HU["fat"], 3: HU["fat"], 4: 400.0, 5: 200.0}
    image = np.vectorize(hu_of.get, otypes=[np.float32])(label)
    image += rng.normal(0.0, noise_hu, size=shape).astype(np.float32)

    ring = math.pi * (a_mo * b_mo - a_mi * b_mi)
    psoas = 2 * math.pi * ps_a * ps_b
    vb = math.pi * vb_a * vb_b
    vis = math.pi * vis_a * vis_b
    true = {
        "muscle": ring + psoas,
        "subcutaneous_fat": math.pi * (a_body * b_body - a_mo * b_mo),
        "visceral_fat": math.pi * a_mi * b_mi - vis - psoas - vb,
        "bone": vb,
    }
    return L3Phantom(
        image=image.astype(np.float32),
        label=label,
        spacing=(float(sx), float(sy)),
        true_area_mm2=true,
        seed=seed,
    )


def write_nifti(
    image: np.ndarray, path: str | Path, *, spacing: tuple[float, ...], dtype: str = "int16"
) -> Path:
    """Write an ``[x, y, z]`` array in RAS orientation as NIfTI (nibabel).

    Parameters
    ----------
    image : ndarray
        Volume indexed ``[x, y, z]`` (HU or labels).
    path : str or Path
        Destination, ``.nii`` or ``.nii.gz``.
    spacing : tuple of float
        Voxel size in mm, written into the affine.
    dtype : str
        Stored data type (HU fits ``int16``).

    Returns
    -------
    Path

    """
    import nibabel as nib

    affine = np.diag([*spacing, 1.0]).astype(np.float64)
    path = Path(path)
    data = np.rint(image).astype(dtype) if np.dtype(dtype).kind in "iu" else image.astype(dtype)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path


def write_dicom_series(
    image: np.ndarray,
    directory: str | Path,
    *,
    spacing: tuple[float, float, float],
    series_uid: str | None = None,
    seed: int = 0,
) -> list[Path]:
    """Write an ``[x, y, z]`` HU volume as an axial CT DICOM series (pydicom).

    The header is taken from ``CT_small.dcm``, the CT file that ships with
    pydicom, so the files carry real CT attributes (rescale slope and
    intercept, patient orientation); pixel data, geometry and UIDs are
    replaced. One file per z slice, named ``slice_000.dcm``...

    Parameters
    ----------
    image : ndarray, shape (X, Y, Z)
        Hounsfield units, RAS-indexed as the phantoms are.
    directory : str or Path
        Created if absent.
    spacing : tuple of float
        Voxel size in mm (x, y, z).
    series_uid : str, optional
        SeriesInstanceUID; generated from ``seed`` when omitted.
    seed : int
        Seed of the generated UIDs.

    Returns
    -------
    list of Path
        The written files, inferior to superior.

    """
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    series_uid = series_uid or generate_uid(entropy_srcs=[f"series-{seed}"])
    slope, intercept = float(template.RescaleSlope), float(template.RescaleIntercept)
    nx, ny, nz = image.shape
    sx, sy, sz = spacing
    paths = []
    for k in range(nz):
        ds = template.copy()
        # DICOM (LPS): columns run along +x (to the patient's left), rows along +y
        # (posterior). The RAS-indexed volume is flipped in x and y and transposed.
        stored = np.rint((image[::-1, ::-1, k].T - intercept) / slope).astype(np.int16)
        ds.Rows, ds.Columns = ny, nx
        ds.PixelData = stored.tobytes()
        ds.PixelSpacing = [f"{sy:g}", f"{sx:g}"]
        ds.SliceThickness = f"{sz:g}"
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0.0, 0.0, float(k * sz)]
        ds.SliceLocation = float(k * sz)
        ds.InstanceNumber = k + 1
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[f"{series_uid}-{k}"])
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        path = directory / f"slice_{k:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
