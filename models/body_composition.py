r"""Skeletal muscle index at L3 and sarcopenia by sex-specific cut-offs.

The skeletal muscle index (SMI) is the cross-sectional area of skeletal
muscle on the axial CT slice at L3, in cm², divided by the squared height in
m² (Mitsiopoulos N et al. J Appl Physiol 1998;85:115-22,
doi:10.1152/jappl.1998.85.1.115; Prado CMM et al. Lancet Oncol
2008;9:629-35, doi:10.1016/S1470-2045(08)70153-0):

.. math:: \mathrm{SMI} = \frac{A_\text{muscle}\,[\mathrm{cm^2}]}{h^2\,[\mathrm{m^2}]}

The muscle area is counted inside a segmentation mask, optionally restricted
to the skeletal-muscle HU range (-29 to +150 HU by default), times the pixel
area from the image spacing. Cut-offs differ between populations and
protocols, so :func:`sarcopenia` takes them as a required argument and never
assumes a default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

MUSCLE_HU = (-29.0, 150.0)


@dataclass(frozen=True)
class MuscleIndex:
    """Skeletal muscle index of one slice.

    Attributes
    ----------
    muscle_area_cm2 : float
        Skeletal-muscle area in cm².
    height_m : float
        Body height in m.
    smi_cm2_m2 : float
        ``muscle_area_cm2 / height_m**2``.
    n_pixels : int
        Pixels counted as muscle.
    pixel_area_mm2 : float
        Area of one pixel in mm².

    """

    muscle_area_cm2: float
    height_m: float
    smi_cm2_m2: float
    n_pixels: int
    pixel_area_mm2: float

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table."""
        return pd.DataFrame([self.__dict__])


def muscle_area_cm2(
    mask: np.ndarray,
    spacing: Sequence[float],
    *,
    image: np.ndarray | None = None,
    hu_range: Sequence[float] | None = MUSCLE_HU,
) -> tuple[float, int]:
    """Area of a 2-D muscle mask in cm² and the pixel count.

    Parameters
    ----------
    mask : ndarray of bool or int, shape (X, Y)
        Non-zero where the segmentation says skeletal muscle.
    spacing : sequence of two float
        Pixel size in mm.
    image : ndarray, optional
        HU image of the same shape; when given, only mask pixels with HU in
        ``hu_range`` count (the usual refinement of a muscle segmentation).
    hu_range : sequence of two float or None
        Inclusive HU range, ``(-29, 150)`` by default.

    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (one axial slice), found shape {mask.shape}")
    if len(spacing) != 2 or min(spacing) <= 0:
        raise ValueError(f"spacing must be two positive values in mm, found {tuple(spacing)!r}")
    keep = mask > 0
    if image is not None and hu_range is not None:
        if image.shape != mask.shape:
            raise ValueError(f"image shape {image.shape} differs from mask shape {mask.shape}")
        keep &= (image >= hu_range[0]) & (image <= hu_range[1])
    n = int(keep.sum())
    return n * float(spacing[0]) * float(spacing[1]) / 100.0, n


def skeletal_muscle_index(
    mask: np.ndarray,
    spacing: Sequence[float],
    *,
    height_m: float,
    image: np.ndarray | None = None,
    hu_range: Sequence[float] | None = MUSCLE_HU,
) -> MuscleIndex:
    """Skeletal muscle index (cm²/m²) from an L3 muscle segmentation.

    Parameters
    ----------
    mask, spacing, image, hu_range
        As :func:`muscle_area_cm2`.
    height_m : float
        Body height in metres (0.5 to 2.5; a height in cm is refused).

    Returns
    -------
    MuscleIndex

    """
    if not 0.5 <= float(height_m) <= 2.5:
        raise ValueError(f"height_m must be in metres (0.5 to 2.5), found {height_m!r}")
    area, n = muscle_area_cm2(mask, spacing, image=image, hu_range=hu_range)
    return MuscleIndex(
        muscle_area_cm2=area,
        height_m=float(height_m),
        smi_cm2_m2=area / float(height_m) ** 2,
        n_pixels=n,
        pixel_area_mm2=float(spacing[0]) * float(spacing[1]),
    )


def sarcopenia(smi_cm2_m2: float, *, sex: str, cutoffs: Mapping[str, float]) -> bool:
    """Sarcopenia: SMI strictly below the cut-off for the patient's sex.

    Parameters
    ----------
    smi_cm2_m2 : float
        Skeletal muscle index.
    sex : str
        A key of ``cutoffs`` (e.g. ``"male"``, ``"female"``).
    cutoffs : mapping of str to float
        Cut-off per sex in cm²/m², from the protocol (e.g. Prado 2008:
        ``{"male": 52.4, "female": 38.5}``). Required: no default is assumed.

    """
    if sex not in cutoffs:
        raise ValueError(
            f"no cut-off for sex {sex!r}; cut-offs given for: {', '.join(map(str, cutoffs))}"
        )
    if not np.isfinite(smi_cm2_m2):
        raise ValueError(f"smi_cm2_m2 must be finite, found {smi_cm2_m2!r}")
    return bool(smi_cm2_m2 < float(cutoffs[sex]))
