"""Reading CT images: DICOM series and NIfTI through MONAI loaders.

:func:`load_image` reads a DICOM series (a directory), a single DICOM file or
a NIfTI file with MONAI's ``LoadImage`` (``PydicomReader`` / ``NibabelReader``,
i.e. pydicom and nibabel underneath), reorients it to RAS and optionally
resamples it to a target spacing. The voxel spacing travels with the array
(:class:`Volume`) so that areas and volumes are reported in mm² and mm³.

A DICOM series is checked before MONAI reads it (:func:`check_dicom_series`):
a 0-byte file, a file pydicom cannot parse, a file without pixel data, files
from several series, differing in-plane geometry, duplicated positions,
missing slices and mixed slice spacing each raise :class:`ImageReadError`
naming the file. MONAI itself would stack such a series silently.

Intensities stay in Hounsfield units; :func:`apply_window` maps a HU window
from a model config to [0, 1].
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studyval.errors import StudyvalError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


class ImageReadError(StudyvalError):
    """An image or series cannot be read, or is inconsistent.

    Attributes
    ----------
    file : str
        The offending file (or directory when the problem spans files).

    """

    def __init__(self, file: str | Path, problem: str) -> None:
        self.file = str(file)
        self.problem = problem
        super().__init__(f"{self.file}: {problem}")


@dataclass(frozen=True)
class Volume:
    """An image in RAS orientation with its geometry.

    Attributes
    ----------
    array : ndarray of float32
        Intensities in HU, indexed ``[x, y]`` or ``[x, y, z]`` (RAS: the index
        grows towards the patient's right, anterior, superior).
    spacing : tuple of float
        Voxel size in mm along each array axis.
    affine : ndarray of float64, shape (4, 4)
        Voxel index to RAS world coordinates in mm.
    source : str
        The file or directory read.
    sha256 : str
        SHA-256 (64 hex) of the bytes read: the file, or the series files in
        slice order. This is the ``input_sha256`` of the prediction table.

    """

    array: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray
    source: str
    sha256: str

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel (area of one pixel for a 2-D image), in mm³ (mm²)."""
        return float(np.prod(self.spacing))


def sha256_files(paths: Iterable[str | Path]) -> str:
    """SHA-256 of the concatenated bytes of ``paths``, in the given order."""
    h = hashlib.sha256()
    for p in paths:
        with open(p, "rb") as fh:
            for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def _read_header(path: Path):
    import pydicom
    from pydicom.errors import InvalidDicomError

    if path.stat().st_size == 0:
        raise ImageReadError(path, "file is empty (0 bytes)")
    try:
        ds = pydicom.dcmread(path, stop_before_pixels=False)
    except (InvalidDicomError, OSError, EOFError, ValueError) as exc:
        raise ImageReadError(path, f"not a readable DICOM file ({exc})") from exc
    if "PixelData" not in ds:
        raise ImageReadError(path, "DICOM file has no pixel data")
    return ds


def check_dicom_series(directory: str | Path, *, tolerance_mm: float = 0.01) -> list[Path]:
    """Check that a directory holds one consistent, complete DICOM series.

    Parameters
    ----------
    directory : str or Path
        Directory of the series; every regular file in it is read (hidden
        files are skipped).
    tolerance_mm : float
        Allowed deviation of a slice gap from the series' slice spacing.

    Returns
    -------
    list of Path
        The files sorted along the slice normal (inferior to superior for an
        axial series).

    Raises
    ------
    ImageReadError
        Naming the first offending file: empty, unreadable, no pixel data,
        another series, other in-plane geometry, duplicated position, a
        missing slice (a gap that is a multiple of the slice spacing) or
        mixed slice spacing.

    """
    directory = Path(directory)
    if not directory.is_dir():
        raise ImageReadError(directory, "DICOM series directory does not exist")
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise ImageReadError(directory, "directory holds no files")
    headers = [(p, _read_header(p)) for p in files]
    ref_path, ref = headers[0]

    def geometry(ds) -> tuple:
        return (
            str(ds.get("SeriesInstanceUID", "")),
            int(ds.Rows),
            int(ds.Columns),
            tuple(round(float(v), 4) for v in ds.get("PixelSpacing", (1.0, 1.0))),
            tuple(
                round(float(v), 4) for v in ds.get("ImageOrientationPatient", (1, 0, 0, 0, 1, 0))
            ),
        )

    ref_geo = geometry(ref)
    names = ("SeriesInstanceUID", "Rows", "Columns", "PixelSpacing", "ImageOrientationPatient")
    for path, ds in headers[1:]:
        geo = geometry(ds)
        for name, a, b in zip(names, ref_geo, geo, strict=True):
            if a != b:
                what = (
                    "belongs to another series"
                    if name == "SeriesInstanceUID"
                    else "has other in-plane geometry"
                )
                raise ImageReadError(
                    path, f"{what}: {name} {b!r} differs from {a!r} in {ref_path.name}"
                )
    if len(headers) == 1:
        return files
    iop = np.asarray(ref_geo[4], dtype=float)
    normal = np.cross(iop[:3], iop[3:])
    pos = []
    for path, ds in headers:
        if "ImagePositionPatient" not in ds:
            raise ImageReadError(
                path, "DICOM file has no ImagePositionPatient; the slice order is unknown"
            )
        pos.append(float(np.dot(normal, np.asarray(ds.ImagePositionPatient, dtype=float))))
    order = np.argsort(pos, kind="stable")
    files_sorted = [files[i] for i in order]
    z = np.asarray(pos)[order]
    gaps = np.diff(z)
    for i, g in enumerate(gaps):
        if g <= tolerance_mm:
            raise ImageReadError(
                files_sorted[i + 1],
                f"duplicated slice position {z[i + 1]:g} mm (same as {files_sorted[i].name})",
            )
    step = float(np.min(gaps))
    for i, g in enumerate(gaps):
        if abs(g - step) <= tolerance_mm:
            continue
        ratio = g / step
        if abs(ratio - round(ratio)) * step <= tolerance_mm:
            n_missing = round(ratio) - 1
            raise ImageReadError(
                files_sorted[i + 1],
                f"{n_missing} missing slice(s) between {files_sorted[i].name} and this file "
                f"(gap {g:g} mm, slice spacing {step:g} mm)",
            )
        raise ImageReadError(
            files_sorted[i + 1],
            f"mixed slice spacing: gap {g:g} mm to {files_sorted[i].name}, elsewhere {step:g} mm",
        )
    return files_sorted


def _is_dicom_file(path: Path) -> bool:
    if path.suffix.lower() in (".dcm", ".dicom", ".ima"):
        return True
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:] == b"DICM"


def load_image(
    path: str | Path,
    *,
    spacing: Sequence[float] | None = None,
    orientation: str = "RAS",
) -> Volume:
    """Read a DICOM series, a DICOM file or a NIfTI file with MONAI loaders.

    Parameters
    ----------
    path : str or Path
        A directory (one DICOM series), a DICOM file, or ``.nii`` / ``.nii.gz``.
    spacing : sequence of float, optional
        Target voxel size in mm; the image is resampled (trilinear) when
        given, and its spacing is kept otherwise.
    orientation : str
        Axis codes of the output (MONAI ``Orientation``), ``"RAS"`` by default.

    Returns
    -------
    Volume
        HU array, spacing in mm, affine, source and SHA-256 of the input.

    Raises
    ------
    ImageReadError
        The file or series is missing, empty, unreadable or inconsistent.

    """
    from monai.transforms import LoadImage, Orientation, Spacing

    path = Path(path)
    if not path.exists():
        raise ImageReadError(path, "file does not exist")
    if path.is_dir():
        files = check_dicom_series(path)
        reader = "PydicomReader"
        # MONAI's PydicomReader reads a directory as one series, sorted along the normal
        target = str(path) if len(files) > 1 else str(files[0])
    else:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "file is empty (0 bytes)")
        files = [path]
        target = str(path)
        if path.name.lower().endswith(NIFTI_SUFFIXES):
            reader = "NibabelReader"
        elif _is_dicom_file(path):
            _read_header(path)
            reader = "PydicomReader"
        else:
            raise ImageReadError(
                path, "unknown image format (expected a DICOM series directory, .dcm or .nii[.gz])"
            )
    try:
        img = LoadImage(reader=reader, ensure_channel_first=True, image_only=True)(target)
    except Exception as exc:  # MONAI wraps reader errors in several types
        raise ImageReadError(path, f"cannot be read by MONAI {reader} ({exc})") from exc
    img = Orientation(
        axcodes=orientation[: img.ndim - 1], labels=(("L", "R"), ("P", "A"), ("I", "S"))
    )(img)
    if spacing is not None:
        img = Spacing(pixdim=spacing_for(img, spacing), mode="bilinear")(img)
    arr = np.asarray(img.array[0], dtype=np.float32)
    affine = np.asarray(img.affine, dtype=np.float64)
    spacing_out = tuple(float(v) for v in np.sqrt((affine[:-1, :-1] ** 2).sum(axis=0)))[: arr.ndim]
    if len(affine) == 3:  # 2-D affine from a single slice
        affine = np.eye(4)
    return Volume(
        array=arr, spacing=spacing_out, affine=affine, source=str(path), sha256=sha256_files(files)
    )


def spacing_for(img, spacing: Sequence[float]) -> tuple[float, ...]:
    """Target spacing for a channel-first MONAI image: ``spacing``, one value per spatial axis.

    A 3-D image of one slice (an axial slice exported as a volume) read for a 2-D model gets
    the model's in-plane ``spacing`` and keeps its own slice thickness.
    """
    dims = img.ndim - 1
    target = tuple(float(s) for s in spacing)
    if len(target) == dims - 1 and dims == 3 and img.shape[-1] == 1:
        return (*target, float(img.pixdim[-1]))
    if len(target) != dims:
        raise ValueError(f"spacing has {len(target)} values for a {dims}-D image")
    return target


def apply_window(array: np.ndarray, hu_window: Sequence[float]) -> np.ndarray:
    """Clip HU to ``[low, high]`` and scale to [0, 1] (float32).

    Parameters
    ----------
    array : ndarray
        Hounsfield units.
    hu_window : sequence of two float
        ``(low, high)`` in HU with ``low < high``, e.g. ``(-250, 1250)`` for bone.

    """
    if len(hu_window) != 2 or not float(hu_window[0]) < float(hu_window[1]):
        raise ValueError(
            f"hu_window must be (low, high) with low < high, found {tuple(hu_window)!r}"
        )
    lo, hi = float(hu_window[0]), float(hu_window[1])
    return ((np.clip(array, lo, hi) - lo) / (hi - lo)).astype(np.float32)
