"""The image manifest: which images to train on or score, checked before anything runs.

A manifest is a CSV or parquet table with one row per image (``data_dictionary/images.yml``):
``case_id``, ``patient_id``, ``site``, ``split``, ``image_path`` (a DICOM series folder, a
``.nii`` / ``.nii.gz`` file or a single ``.dcm`` file) and, for training, a ``label``
(classification) or a ``mask_path`` (segmentation).

:func:`read_manifest` reads it with the dictionary machinery of :mod:`studyval.dictionary` (the
two steps of :func:`studyval.dictionary.read_table`: file, column, row and rule, rows named by
their file line) and adds the rules that span rows or touch the file system:

* a path is relative to the manifest's folder (or to ``root`` when given), uses ``/`` between
  folders, and does not leave that folder: ``..`` that climbs above it is refused even when the
  target exists (a manifest reaches only the image tree it was written for; pass ``root`` to
  widen it). The check is lexical, so a symbolic link inside the folder may point elsewhere:
  placing a link needs write access to the image tree, editing a manifest does not;
* the path exists and is of the right kind: an image is a folder (a DICOM series) or a
  ``.nii`` / ``.nii.gz`` / ``.dcm`` file; a mask is a ``.nii`` / ``.nii.gz`` file;
* ``case_id`` is unique (the dictionary); a patient is in one split only; one image is not
  listed for two patients;
* for training (``require="label"`` / ``"mask"``), every development and internal row has its
  label (one of the config's classes) or mask.

Every violation is listed at once in one :class:`~studyval.errors.InputValidationError`;
nothing is read beyond file metadata and nothing is written. Whether a series is complete and
readable is checked when it is read (a failed row of the prediction table, never a stopped run).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pandas as pd

from studyval.dictionary import load_dictionary, validate_frame
from studyval.errors import InputValidationError, Violation

IMAGE_SUFFIXES = (".nii", ".nii.gz", ".dcm")
MASK_SUFFIXES = (".nii", ".nii.gz")
#: Splits whose rows are trained on (development) or validated on (internal).
TRAINING_SPLITS = ("development", "internal")


@dataclass(frozen=True)
class ImageRecord:
    """One row of a validated manifest.

    Attributes
    ----------
    case_id, patient_id, site, split : str
        As in the manifest.
    image : str
        Absolute, normalised path of the image (folder or file).
    label : str or None
        Reference class (classification).
    mask : str or None
        Absolute path of the reference mask (segmentation).
    row : int
        Line of the manifest file where the record starts (parquet: position + 2).
    vertebral_level, lowest_level : str or None
        When the case is one vertebra of the image: its level, and the level of the image's most
        inferior vertebral body (:func:`studyval.models.inference.crop_vertebrae`).

    """

    case_id: str
    patient_id: str
    site: str
    split: str
    image: str
    label: str | None
    mask: str | None
    row: int
    vertebral_level: str | None = None
    lowest_level: str | None = None


@dataclass(frozen=True)
class Manifest:
    """A validated image manifest.

    Attributes
    ----------
    path : Path
        The manifest file.
    root : Path
        Folder the paths are relative to.
    records : tuple of ImageRecord
        In file order.

    """

    path: Path
    root: Path
    records: tuple[ImageRecord, ...]

    def __len__(self) -> int:
        return len(self.records)

    def __iter__(self) -> Iterator[ImageRecord]:
        return iter(self.records)

    def split(self, *names: str) -> list[ImageRecord]:
        """The records whose split is one of ``names``, in file order."""
        return [r for r in self.records if r.split in names]

    def to_frame(self) -> pd.DataFrame:
        """The records as a table (absolute paths)."""
        return pd.DataFrame([r.__dict__ for r in self.records])


def _kind_problem(path: Path, *, mask: bool) -> str | None:
    if not path.exists():
        return "file or folder does not exist"
    name = path.name.lower()
    if mask:
        if path.is_file() and name.endswith(MASK_SUFFIXES):
            return None
        return "a mask must be a .nii or .nii.gz file"
    if path.is_dir() or (path.is_file() and name.endswith(IMAGE_SUFFIXES)):
        return None
    return "an image must be a DICOM series folder or a .nii, .nii.gz or .dcm file"


def _check_path(
    text: str, root: Path, *, mask: bool, where: str = "the manifest's folder"
) -> tuple[str | None, str | None]:
    """(absolute normalised path, None) or (None, the rule broken)."""
    if "\\" in text:
        return None, "use '/' between folders, not '\\'"
    pure = PurePosixPath(text)
    if pure.is_absolute() or (len(text) > 1 and text[1] == ":"):
        return None, f"must be relative to {where} (absolute paths are refused)"
    joined = os.path.normpath(os.path.join(root, text))
    if os.path.commonpath([joined, str(root)]) != str(root) or joined == str(root):
        return None, (
            f"leaves {where} through '..' (refused even if the target exists; "
            "give an image root that contains it)"
            if ".." in pure.parts
            else f"must name a file or folder inside {where}"
        )
    problem = _kind_problem(Path(joined), mask=mask)
    return (joined, None) if problem is None else (None, problem)


def read_manifest(
    path: str | Path,
    *,
    root: str | Path | None = None,
    require: str | None = None,
    classes: Sequence[str] | None = None,
    label: str | None = None,
) -> Manifest:
    """Read and check an image manifest (``data_dictionary/images.yml`` plus the manifest rules).

    Parameters
    ----------
    path : str or Path
        CSV (UTF-8) or parquet.
    root : str or Path, optional
        Folder the paths are relative to and may not leave; the manifest's folder by default.
    require : {None, "label", "mask", "levels"}
        Training needs: ``"label"`` (classification) or ``"mask"`` (segmentation) on every
        development and internal row. ``"levels"`` (cropping vertebrae): ``vertebral_level`` and
        ``lowest_level`` on every row, the case's level not below the lowest.
    classes : sequence of str, optional
        Allowed labels (the config's classes) when ``require="label"``.
    label : str, optional
        Name of the manifest in messages; defaults to the file name.

    Returns
    -------
    Manifest

    Raises
    ------
    InputValidationError
        Every violation of the dictionary and of the manifest rules, each with the file, the
        column, the row (file line) and the rule.

    """
    if require not in (None, "label", "mask", "levels"):
        raise ValueError(f"require must be None, 'label', 'mask' or 'levels', found {require!r}")
    from studyval.dictionary import _read_raw  # read_table's first step, kept to list all rules

    path = Path(path)
    name = label or path.name
    raw = _read_raw(path, name)
    typed, problems = validate_frame(raw, load_dictionary("images"), label=name)
    base = Path(os.path.abspath(root if root is not None else path.parent))
    where = "the manifest's folder" if root is None else "the image root"
    if root is not None and not base.is_dir():
        problems.append(Violation(name, None, None, f"image root {base} is not a folder"))
        InputValidationError.collect(problems)
    if len(typed) == 0:
        problems.append(Violation(name, None, None, "manifest has no rows"))
    columns = set(raw.columns)
    records: list[ImageRecord] = []
    first_split: dict[str, tuple[str, int]] = {}
    image_owner: dict[str, tuple[str, int]] = {}
    allowed = tuple(classes) if classes is not None else None
    for idx in typed.index:
        row = int(idx) + 2
        rec = {c: (typed.at[idx, c] if c in typed.columns else None) for c in typed.columns}
        values = {k: (None if pd.isna(v) else str(v)) for k, v in rec.items()}
        image = mask = None
        if values.get("image_path") is not None:
            image, rule = _check_path(values["image_path"], base, mask=False, where=where)
            if rule:
                problems.append(Violation(name, "image_path", row, rule, values["image_path"]))
        if values.get("mask_path") is not None:
            mask, rule = _check_path(values["mask_path"], base, mask=True, where=where)
            if rule:
                problems.append(Violation(name, "mask_path", row, rule, values["mask_path"]))
        split, patient = values.get("split"), values.get("patient_id")
        if split is not None and patient is not None:
            seen = first_split.setdefault(patient, (split, row))
            if seen[0] != split:
                problems.append(
                    Violation(
                        name,
                        "split",
                        row,
                        f"patient {patient!r} is in split {seen[0]!r} in row {seen[1]}: "
                        "one split per patient",
                        split,
                    )
                )
        if image is not None and patient is not None:
            owner = image_owner.setdefault(image, (patient, row))
            if owner[0] != patient:
                problems.append(
                    Violation(
                        name,
                        "image_path",
                        row,
                        f"the same image is listed for patient {owner[0]!r} in row {owner[1]}",
                        values["image_path"],
                    )
                )
        needs = require is not None and split in TRAINING_SPLITS
        if require == "label":
            lab = values.get("label")
            if needs and lab is None and "label" in columns:
                problems.append(
                    Violation(name, "label", row, f"a {split} row needs its label for training")
                )
            elif lab is not None and allowed is not None and lab not in allowed:
                problems.append(
                    Violation(
                        name,
                        "label",
                        row,
                        f"not one of the config's classes ({', '.join(allowed)})",
                        lab,
                    )
                )
        if (
            require == "mask"
            and needs
            and values.get("mask_path") is None
            and "mask_path" in columns
        ):
            problems.append(
                Violation(name, "mask_path", row, f"a {split} row needs its mask for training")
            )
        level, lowest = values.get("vertebral_level"), values.get("lowest_level")
        if require == "levels":
            from studyval.models.phantoms import LEVELS

            for col, val in (("vertebral_level", level), ("lowest_level", lowest)):
                if val is None and col in columns:
                    problems.append(Violation(name, col, row, "cropping vertebrae needs it"))
            if level in LEVELS and lowest in LEVELS and LEVELS.index(level) < LEVELS.index(lowest):
                problems.append(
                    Violation(
                        name,
                        "vertebral_level",
                        row,
                        f"below the image's lowest level {lowest}: levels count upwards from it",
                        level,
                    )
                )
        records.append(
            ImageRecord(
                case_id=values.get("case_id") or "",
                patient_id=patient or "",
                site=values.get("site") or "",
                split=split or "",
                image=image or "",
                label=values.get("label"),
                mask=mask,
                row=row,
                vertebral_level=level,
                lowest_level=lowest,
            )
        )
    if require == "label" and "label" not in columns:
        problems.append(
            Violation(name, "label", None, "training a classifier needs a 'label' column")
        )
    if require == "levels":
        for col in ("vertebral_level", "lowest_level"):
            if col not in columns:
                problems.append(
                    Violation(name, col, None, f"cropping vertebrae needs a {col!r} column")
                )
    if require == "mask" and "mask_path" not in columns:
        problems.append(
            Violation(
                name,
                "mask_path",
                None,
                "training a segmentation network needs a 'mask_path' column",
            )
        )
    InputValidationError.collect(problems)
    return Manifest(path=path, root=base, records=tuple(records))


def write_phantom_manifest(
    folder: str | Path,
    n: int,
    *,
    shape: tuple[int, int, int] = (32, 32, 16),
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    dicom_every: int = 0,
    masks: bool = False,
    splits: Sequence[str] = ("development",),
    sites: Sequence[str] = ("A",),
    broken: dict[int, str] | None = None,
    seed: int = 0,
    name: str = "images.csv",
) -> Path:
    """Write ``n`` one-vertebra spine phantoms and their manifest (tests, benchmarks, demos).

    Case ``i`` (patient ``P<i>``) is an acute (even ``i``) or chronic (odd) vertebra, labelled
    so; its split and site cycle through ``splits`` and ``sites``. Every ``dicom_every``-th case
    is a DICOM series folder, the others ``.nii.gz`` files; ``masks`` adds the vertebral-body
    masks. ``broken`` maps a case to ``"empty"`` (a series of one 0-byte file) or
    ``"missing_slice"`` (a series with a slice removed): readable manifests, unreadable images.

    Returns
    -------
    Path
        The manifest (``folder/name``).

    """
    import numpy as np

    from studyval.models.phantoms import spine_phantom, write_dicom_series, write_nifti

    folder = Path(folder)
    (folder / "img").mkdir(parents=True, exist_ok=True)
    broken = dict(broken or {})
    rows = []
    for i in range(n):
        pattern = ("acute", "chronic")[i % 2]
        p = spine_phantom(shape=shape, spacing=spacing, patterns=(pattern,), seed=seed + i)
        kind = broken.get(i)
        if kind is not None or (dicom_every and i % dicom_every == 0):
            rel = f"img/case{i:04d}"
            files = write_dicom_series(p.image, folder / rel, spacing=spacing, seed=seed + i)
            if kind == "empty":
                for f in files:
                    f.unlink()
                (folder / rel / "slice_000.dcm").write_bytes(b"")
            elif kind == "missing_slice":
                files[len(files) // 2].unlink()
            elif kind is not None:
                raise ValueError(f"broken kind must be 'empty' or 'missing_slice', found {kind!r}")
        else:
            rel = f"img/case{i:04d}.nii.gz"
            write_nifti(p.image, folder / rel, spacing=spacing)
        row = {
            "case_id": f"C{i:04d}",
            "patient_id": f"P{i:04d}",
            "site": sites[i % len(sites)],
            "split": splits[i % len(splits)],
            "image_path": rel,
            "label": pattern,
        }
        if masks:
            row["mask_path"] = f"img/case{i:04d}-mask.nii.gz"
            write_nifti(p.label.astype(np.int16), folder / row["mask_path"], spacing=spacing)
        rows.append(row)
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
