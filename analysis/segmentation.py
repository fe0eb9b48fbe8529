r"""Overlap and surface-distance metrics of binary segmentation masks, and their summaries.

:func:`overlap` computes, for one case (one structure in one image), the
metrics that MONAI's ``DiceMetric``, ``MeanIoU``, ``HausdorffDistanceMetric``
(``percentile=95``) and ``SurfaceDistanceMetric`` (``symmetric=True``) compute,
with the same conventions, in millimetres, without needing torch or MONAI:

* **Surface voxels** (MONAI ``get_mask_edges``, ``spacing=None`` path): a
  mask's edge is the mask minus its binary erosion with the face-connected
  structuring element (:func:`scipy.ndimage.binary_erosion`, border value 0),
  so mask voxels on the image border count as surface.
* **Distances** (MONAI ``get_surface_distance``, ``distance_metric="euclidean"``):
  from every edge voxel of one mask to the nearest edge voxel of the other,
  by :func:`scipy.ndimage.distance_transform_edt` with ``sampling=spacing``
  (voxel centres; mm when spacing is in mm).
* **HD95** (MONAI ``compute_hausdorff_distance``, ``directed=False``): the 95th
  percentile (linear interpolation, as ``torch.quantile``) of the distances
  from prediction to reference, likewise from reference to prediction, and the
  larger of the two. ``hd`` is the same with the maximum.
* **ASSD** (MONAI ``compute_average_surface_distance``, ``symmetric=True``):
  the mean of both sets of distances pooled (not the mean of the two means).

Reference: MONAI ``monai/metrics/{meandice,meaniou,hausdorff_distance,
surface_distance,utils}.py`` at commit d388d1c6 (June 2025). Expected values
in ``tests/test_segmentation.py`` come from MONAI's own tests.

Empty masks
-----------
Dice and IoU follow MONAI's ``ignore_empty`` (default True, as MONAI): an
empty reference gives NaN ("not applicable"), whatever the prediction; with
``ignore_empty=False`` an empty reference gives 1 if the prediction is also
empty and 0 otherwise. Distances: both masks empty gives NaN; exactly one
empty gives ``inf`` for ``hd``, ``hd95`` and ``assd``.

**Deviation from MONAI**: with one empty mask MONAI returns ``inf`` for the
maximum Hausdorff distance but NaN for a percentile (``torch.quantile``
interpolates ``inf + 0 * (inf - inf)``; MONAI issue #9095, fix proposed in
pull request #9096), and its averaging then drops the case as "not
applicable". A missed structure would then silently improve the mean HD95.
Here HD95 is ``inf``, like HD.

Summaries (:func:`summarise_by_patient`) never drop NaN or ``inf`` silently.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import ndimage

from studyval.analysis._checks import check_alpha, check_option
from studyval.errors import EstimationError, StudyvalError
from studyval.results import Result

__all__ = [
    "OverlapResult",
    "PatientSummary",
    "overlap",
    "overlap_table",
    "summarise_by_patient",
]

_CASE_KEYS = ("pred", "ref", "spacing")


@dataclasses.dataclass(frozen=True)
class OverlapResult(Result):
    r"""Overlap and surface distances of one predicted mask against its reference.

    With :math:`P` and :math:`R` the sets of foreground voxels of prediction
    and reference,

    .. math::

        \mathrm{Dice} = \frac{2|P \cap R|}{|P| + |R|}, \qquad
        \mathrm{IoU} = \frac{|P \cap R|}{|P \cup R|}

    (Dice 1945, Ecology 26:297-302, doi:10.2307/1932409; higher is better, 1 =
    identical). With :math:`\partial P`, :math:`\partial R` the surface voxels and
    :math:`d(x, S) = \min_{y \in S} \lVert x - y \rVert` in mm,

    .. math::

        \mathrm{HD95} = \max\{Q_{95}(d(x, \partial R): x \in \partial P),\;
                              Q_{95}(d(y, \partial P): y \in \partial R)\},

    :math:`\mathrm{HD}` likewise with the maximum, and
    :math:`\mathrm{ASSD} = \frac{\sum_{x \in \partial P} d(x, \partial R) +
    \sum_{y \in \partial R} d(y, \partial P)}{|\partial P| + |\partial R|}`
    (lower is better, 0 = identical surfaces). Conventions, empty masks and
    the one deviation from MONAI: see the module docstring.

    Attributes
    ----------
    dice, iou : float
        NaN for an empty reference when ``ignore_empty`` (MONAI default).
    hd95, hd, assd : float
        Millimetres (units of ``spacing``); NaN if both masks are empty,
        ``inf`` if exactly one is.
    volume_pred_mm3, volume_ref_mm3 : float
        Voxel count times voxel volume.
    n_pred, n_ref, n_intersection : int
        Foreground voxels of prediction, reference, and both.
    n_surface_pred, n_surface_ref : int
        Surface (edge) voxels of each mask.
    ignore_empty : bool
        The Dice/IoU convention used.
    spacing : tuple of float
        Voxel size per axis, in mm.

    """

    dice: float
    iou: float
    hd95: float
    hd: float
    assd: float
    volume_pred_mm3: float
    volume_ref_mm3: float
    n_pred: int
    n_ref: int
    n_intersection: int
    n_surface_pred: int
    n_surface_ref: int
    ignore_empty: bool
    spacing: tuple[float, ...] = dataclasses.field(repr=False)


def _check_mask(mask: Any, name: str) -> np.ndarray:
    arr = np.asarray(mask)
    if arr.dtype == np.bool_:
        return arr
    if arr.dtype.kind not in "iuf":
        raise StudyvalError(f"{name} must be a binary mask (bool or 0/1), got dtype {arr.dtype}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise StudyvalError(
            f"{name} must be a binary mask (bool or 0/1); {int(bad.sum())} voxel(s) hold other "
            f"values, first at index {idx}: {arr[idx]!r}. Threshold or one-hot encode it first"
        )
    return arr == 1


def _check_spacing(spacing: Any, ndim: int) -> tuple[float, ...]:
    if spacing is None or np.ndim(spacing) != 1:
        raise StudyvalError(
            f"spacing must be a sequence of {ndim} voxel sizes in mm (one per axis), got {spacing!r}"
        )
    values = tuple(float(s) for s in spacing)
    if len(values) != ndim:
        raise StudyvalError(
            f"spacing has {len(values)} values but the masks have {ndim} axes: {values!r}"
        )
    for axis, s in enumerate(values):
        if not (math.isfinite(s) and s > 0):
            raise StudyvalError(f"spacing[{axis}] must be a positive finite size in mm, got {s}")
    return values


def _surface_distances(
    pred: np.ndarray, ref: np.ndarray, spacing: tuple[float, ...]
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Edge-voxel counts and distances pred-edge -> ref-edge, ref-edge -> pred-edge.

    The distance arrays are empty unless both masks have surface voxels (the
    callers turn one or two empty masks into ``inf`` or NaN, as MONAI does).
    """
    union = pred | ref
    # Crop to the bounding box of the union (MONAI crops with a 1-voxel margin; eroding
    # the crop with border value 0 is identical, and distances between edge voxels
    # inside the box do not depend on the crop).
    box = tuple(slice(int(idx.min()), int(idx.max()) + 1) for idx in np.nonzero(union))
    p, r = pred[box], ref[box]
    structure = ndimage.generate_binary_structure(p.ndim, 1)
    edge_p = p & ~ndimage.binary_erosion(p, structure=structure, border_value=0)
    edge_r = r & ~ndimage.binary_erosion(r, structure=structure, border_value=0)
    n_ep, n_er = int(edge_p.sum()), int(edge_r.sum())
    if n_ep == 0 or n_er == 0:
        return np.empty(0), np.empty(0), n_ep, n_er
    d_pr = ndimage.distance_transform_edt(~edge_r, sampling=spacing)[edge_p]
    d_rp = ndimage.distance_transform_edt(~edge_p, sampling=spacing)[edge_r]
    return d_pr, d_rp, n_ep, n_er


def overlap(
    pred: Any,
    ref: Any,
    *,
    spacing: Sequence[float],
    ignore_empty: bool = True,
) -> OverlapResult:
    """Dice, IoU, HD95, HD, ASSD and volumes of one binary mask against its reference.

    Parameters
    ----------
    pred, ref : array-like of bool or {0, 1}, shape (X, Y[, Z])
        Predicted and reference masks of one structure in one image, on the
        same voxel grid. Other values (probabilities, label maps) are an error.
    spacing : sequence of float
        Voxel size per axis in mm (e.g. from the NIfTI header), required: a
        distance in voxels is not a distance in mm when voxels are anisotropic.
    ignore_empty : bool
        MONAI's convention for Dice/IoU when the reference is empty: True
        (default, as MONAI) gives NaN; False gives 1 if the prediction is
        empty too, else 0.

    Returns
    -------
    OverlapResult

    Raises
    ------
    StudyvalError
        Masks of different shapes, non-binary values, fewer than 2 axes, or a
        bad ``spacing``.

    Examples
    --------
    Two 10-voxel cubes offset by 2 voxels along the first axis of 0.5 mm:

    >>> import numpy as np
    >>> a = np.zeros((20, 20, 20), bool); a[2:12, 5:15, 5:15] = True
    >>> b = np.zeros_like(a); b[4:14, 5:15, 5:15] = True
    >>> r = overlap(a, b, spacing=(0.5, 1.0, 1.0))
    >>> r.dice, r.hd
    (0.8, 1.0)

    """
    p = _check_mask(pred, "pred")
    r = _check_mask(ref, "ref")
    if p.shape != r.shape:
        raise StudyvalError(f"pred and ref must have the same shape, got {p.shape} and {r.shape}")
    if p.ndim < 2:
        raise StudyvalError(f"masks must be 2-D or 3-D images, got shape {p.shape}")
    spacing_t = _check_spacing(spacing, p.ndim)
    if not isinstance(ignore_empty, (bool, np.bool_)):
        raise StudyvalError(f"ignore_empty must be True or False, got {ignore_empty!r}")
    n_pred, n_ref = int(p.sum()), int(r.sum())
    n_int = int((p & r).sum())
    union = n_pred + n_ref - n_int
    if n_ref > 0:
        dice = 2.0 * n_int / (n_pred + n_ref)
        iou = n_int / union
    elif ignore_empty:
        dice = iou = math.nan
    else:
        dice = iou = 1.0 if n_pred == 0 else 0.0
    if union == 0:
        hd95 = hd = assd = math.nan
        n_ep = n_er = 0
    else:
        d_pr, d_rp, n_ep, n_er = _surface_distances(p, r, spacing_t)
        if n_ep == 0 or n_er == 0:
            hd95 = hd = assd = math.inf
        else:
            hd95 = float(max(np.percentile(d_pr, 95.0), np.percentile(d_rp, 95.0)))
            hd = float(max(d_pr.max(), d_rp.max()))
            assd = float(np.concatenate([d_pr, d_rp]).mean())
    voxel = float(np.prod(spacing_t))
    return OverlapResult(
        dice=float(dice),
        iou=float(iou),
        hd95=hd95,
        hd=hd,
        assd=assd,
        volume_pred_mm3=n_pred * voxel,
        volume_ref_mm3=n_ref * voxel,
        n_pred=n_pred,
        n_ref=n_ref,
        n_intersection=n_int,
        n_surface_pred=n_ep,
        n_surface_ref=n_er,
        ignore_empty=bool(ignore_empty),
        spacing=spacing_t,
    )


def overlap_table(cases: Iterable[Mapping[str, Any]], *, ignore_empty: bool = True) -> pd.DataFrame:
    """Per-case overlap metrics as a tidy table.

    Parameters
    ----------
    cases : iterable of mapping
        One mapping per case with keys ``pred``, ``ref`` and ``spacing`` (as
        for :func:`overlap`) and any identifying scalars (e.g. ``patient``,
        ``vertebra``, ``reader``), which become the leading columns in their
        order of first appearance.
    ignore_empty : bool
        Passed to :func:`overlap`.

    Returns
    -------
    pandas.DataFrame
        One row per case: identifier columns, then the scalar fields of
        :class:`OverlapResult` (``dice, iou, hd95, hd, assd, volume_pred_mm3,
        ...``).

    Raises
    ------
    StudyvalError
        A case lacks ``pred``, ``ref`` or ``spacing``, an identifier clashes
        with a metric column, no cases are given, or :func:`overlap` rejects a
        case (the message names the case's position and identifiers).

    """
    rows = []
    metric_names = {f.name for f in dataclasses.fields(OverlapResult)}
    for i, case in enumerate(cases):
        if not isinstance(case, Mapping):
            raise StudyvalError(f"case {i} must be a mapping with pred, ref and spacing")
        missing = [k for k in _CASE_KEYS if k not in case]
        if missing:
            raise StudyvalError(f"case {i} lacks {', '.join(missing)}")
        ids = {k: v for k, v in case.items() if k not in _CASE_KEYS}
        clash = sorted(set(ids) & metric_names)
        if clash:
            raise StudyvalError(f"case {i}: identifier(s) {clash} clash with metric columns")
        try:
            res = overlap(
                case["pred"], case["ref"], spacing=case["spacing"], ignore_empty=ignore_empty
            )
        except StudyvalError as err:
            raise StudyvalError(f"case {i} {ids!r}: {err}") from err
        rows.append({**ids, **res.to_dict()})
    if not rows:
        raise StudyvalError("overlap_table needs at least one case")
    return pd.DataFrame(rows)


# ======================================================================== summaries


@dataclasses.dataclass(frozen=True)
class PatientSummary(Result):
    r"""Mean of per-patient means of a per-case metric, with a cluster-bootstrap interval.

    With :math:`x_{pj}` the metric of case :math:`j = 1..m_p` of patient
    :math:`p = 1..G`,

    .. math::

        \hat\theta = \frac{1}{G}\sum_{p=1}^{G} \bar x_p, \qquad
        \bar x_p = \frac{1}{m_p}\sum_j x_{pj},

    so every patient counts once, however many structures (e.g. vertebrae)
    they contribute. The interval resamples patients
    (:func:`studyval.analysis.resampling.bootstrap`, ``clusters=patient``);
    a patient drawn twice counts twice.

    ``estimate, ci_low, ci_high = result`` unpacks.

    Attributes
    ----------
    metric : str
        The summarised column.
    estimate, se, ci_low, ci_high : float
        Mean of patient means, bootstrap SE and interval.
    ci_level : float
        :math:`1 - \alpha`.
    method : str
        Bootstrap interval method (``"bca"`` or ``"percentile"``).
    n_patients, n_cases : int
        Patients and cases used.
    n_dropped : int
        Cases left out for a NaN/``inf`` value (only with ``nonfinite="drop"``).
    case_mean : float
        Plain mean over cases (weights patients by their number of cases),
        for comparison.
    n_resamples, seed : int
        Bootstrap settings.
    patients : tuple of (patient, n_cases, mean)
        Per-patient means (see :meth:`patients_frame`).

    """

    _unpack: ClassVar[tuple[str, ...]] = ("estimate", "ci_low", "ci_high")

    metric: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    ci_level: float
    method: str
    n_patients: int
    n_cases: int
    n_dropped: int
    case_mean: float
    n_resamples: int
    seed: int
    patients: tuple[tuple[Any, int, float], ...] = dataclasses.field(repr=False)

    def patients_frame(self) -> pd.DataFrame:
        """Per-patient table: ``patient, n_cases, mean``."""
        return pd.DataFrame(list(self.patients), columns=["patient", "n_cases", "mean"])


def summarise_by_patient(
    per_case_frame: pd.DataFrame,
    *,
    patient_col: str,
    metric: str,
    n_resamples: int = 2000,
    seed: int,
    alpha: float = 0.05,
    method: str = "bca",
    nonfinite: str = "raise",
) -> PatientSummary:
    """Average a per-case metric within patients, then across patients, with a bootstrap CI.

    Parameters
    ----------
    per_case_frame : pandas.DataFrame
        One row per case (e.g. from :func:`overlap_table`).
    patient_col : str
        Column with the patient id.
    metric : str
        Column to summarise (``"dice"``, ``"hd95"``, ...).
    n_resamples : int
        Bootstrap resamples.
    seed : int
        Bootstrap seed (required).
    alpha : float
        One minus the confidence level.
    method : {"bca", "percentile"}
        Bootstrap interval.
    nonfinite : {"raise", "drop"}
        What to do with NaN (e.g. Dice of an empty reference, distances with
        both masks empty) or ``inf`` (distances with one mask empty).
        ``"raise"`` (default) refuses, naming the cases; ``"drop"`` leaves
        those cases out and reports how many (``n_dropped``). Neither replaces
        a decision about how a missed structure should count: cap distances
        (e.g. at the image diagonal) before summarising if it should.

    Returns
    -------
    PatientSummary

    Raises
    ------
    StudyvalError
        A column is absent, a patient id is missing, the metric is not
        numeric, ``nonfinite="raise"`` and a value is NaN or infinite, or a
        bad option.
    EstimationError
        Fewer than 2 patients remain; or the bootstrap fails (see
        :func:`studyval.analysis.resampling.bootstrap`).

    """
    from studyval.analysis.resampling import bootstrap

    alpha = check_alpha(alpha)
    nonfinite = check_option(nonfinite, ("raise", "drop"), "nonfinite")
    if not isinstance(per_case_frame, pd.DataFrame):
        raise StudyvalError(
            f"per_case_frame must be a pandas DataFrame, got {type(per_case_frame).__name__}"
        )
    for role, col in (("patient_col", patient_col), ("metric", metric)):
        if col not in per_case_frame.columns:
            raise StudyvalError(
                f"{role}={col!r} is not a column (columns: {', '.join(map(str, per_case_frame.columns))})"
            )
    patients = per_case_frame[patient_col].to_numpy(dtype=object)
    missing = pd.isna(patients)
    if missing.any():
        raise StudyvalError(
            f"{patient_col!r} is missing at row {int(np.flatnonzero(missing)[0])}; every case needs a patient id"
        )
    try:
        x = per_case_frame[metric].to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise StudyvalError(f"metric column {metric!r} is not numeric") from err
    bad = ~np.isfinite(x)
    n_dropped = 0
    if bad.any():
        if nonfinite == "raise":
            i = int(np.flatnonzero(bad)[0])
            n_nan = int(np.isnan(x).sum())
            raise StudyvalError(
                f"{metric!r} is not finite in {int(bad.sum())} case(s) ({n_nan} NaN, "
                f"{int(bad.sum()) - n_nan} infinite); first at row {i} (patient {patients[i]!r}): "
                f"{x[i]}. NaN means not applicable (empty reference), inf a missed or spurious "
                "structure; decide how they count (e.g. cap distances) or pass nonfinite='drop'"
            )
        n_dropped = int(bad.sum())
        x = x[~bad]
        patients = patients[~bad]
    try:
        codes, uniques = pd.factorize(patients, sort=True)
    except TypeError as err:
        raise StudyvalError("patient ids must be of one sortable type") from err
    g = len(uniques)
    if g < 2:
        raise EstimationError(
            f"summarise_by_patient needs at least 2 patients with a finite {metric!r}, got {g}"
        )
    codes = np.asarray(codes, dtype=np.intp)
    counts = np.bincount(codes, minlength=g)
    means = np.bincount(codes, weights=x, minlength=g) / counts
    first = np.zeros(g, dtype=np.intp)
    first[codes[::-1]] = np.arange(codes.size)[::-1]

    def statistic(weights: np.ndarray) -> np.ndarray:
        u = np.take(weights, first, axis=1)
        return (u @ means) / u.sum(axis=1)

    boot = bootstrap(
        statistic,
        n_rows=x.size,
        clusters=codes,
        n_resamples=n_resamples,
        seed=seed,
        alpha=alpha,
        method=method,
    )
    return PatientSummary(
        metric=metric,
        estimate=boot.estimate,
        se=boot.se,
        ci_low=boot.ci_low,
        ci_high=boot.ci_high,
        ci_level=boot.ci_level,
        method=boot.method,
        n_patients=g,
        n_cases=int(x.size),
        n_dropped=n_dropped,
        case_mean=float(x.mean()),
        n_resamples=boot.n_resamples,
        seed=boot.seed,
        patients=tuple(
            (u.item() if isinstance(u, np.generic) else u, int(c), float(mu))
            for u, c, mu in zip(uniques, counts, means, strict=True)
        ),
    )
