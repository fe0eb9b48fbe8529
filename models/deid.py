r"""DICOM header de-identification: the PS3.15 Basic Application Level Confidentiality Profile.

Every image that reaches a studyval model is read from a de-identified copy:
:func:`deidentify_series` copies a DICOM series (or one file) into a new
directory, applying to each header the actions of DICOM PS3.15 Annex E,
Table E.1-1 (``models/deid_basic_profile.tsv``, 621 attributes), so that no
image-derived output (prediction table, mask, Grad-CAM overlay) can carry an
identifying header value. The source files are never modified.

Actions (PS3.15 E.1.1):

* ``X`` remove; ``Z`` zero-length (or a dummy value); ``D`` a dummy value of
  the attribute's VR; ``U`` a replacement UID, consistent within the key (the
  same original UID always maps to the same new one, so a series stays a
  series and a study a study);
* compound actions (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) depend on
  the attribute's type in the IOD, which a generic tool does not know; the
  conservative member that keeps the IOD valid is applied (``Z`` for ``X/Z``,
  ``D`` when ``D`` is allowed, ``U`` for ``X/Z/U*``): the value is gone either
  way;
* private attributes are removed (the profile's default, without the Retain
  Safe Private option); curve data (50xx,xxxx) and overlay data and comments
  (60xx,3000 / 60xx,4000) are removed;
* sequences are processed recursively;
* Patient ID (0010,0020) receives the keyed pseudonym of
  :func:`studyval.privacy.pseudonymise` when ``patient_pseudonym`` is given
  (a dummy value the profile allows), and Patient Identity Removed
  (0012,0062) = ``YES`` and De-identification Method (0012,0063) are added,
  with the code sequence (0012,0064) naming the profile (DCM 113100).

Burned-in annotation in the pixels is outside the header profile: a file that
declares Burned In Annotation (0028,0301) = ``YES`` is refused.

Reference: DICOM PS3.15 Security and System Management Profiles, Annex E
(Attribute Confidentiality Profiles), Table E.1-1. NEMA, 2025.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from studyval.models.imaging import ImageReadError

__all__ = [
    "BASIC_PROFILE_METHOD",
    "DeidReport",
    "basic_profile",
    "deidentify_dataset",
    "deidentify_series",
]

BASIC_PROFILE_METHOD = "PS3.15 E.1-1 Basic Application Confidentiality Profile"

# Dummy values by VR (PS3.5 value representations), for action D.
_DUMMY = {
    "AE": "ANONYMOUS",
    "AS": "000Y",
    "CS": "ANONYMOUS",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "FL": 0.0,
    "FD": 0.0,
    "IS": "0",
    "LO": "ANONYMOUS",
    "LT": "ANONYMOUS",
    "PN": "ANONYMOUS",
    "SH": "ANONYMOUS",
    "SL": 0,
    "SS": 0,
    "ST": "ANONYMOUS",
    "TM": "000000",
    "UC": "ANONYMOUS",
    "UL": 0,
    "UN": b"",
    "UR": "",
    "US": 0,
    "UT": "ANONYMOUS",
}


@lru_cache(maxsize=1)
def basic_profile() -> dict[int, str]:
    """Table E.1-1: tag (as an int, ``0x00100010``) -> action of the Basic Profile.

    The table's wildcard rows (curves 50xx,xxxx, overlays 60xx,3000 / 60xx,4000,
    private attributes) are applied by rule in :func:`deidentify_dataset`.
    """
    text = resources.files("studyval.models").joinpath("deid_basic_profile.tsv").read_text("utf-8")
    rows = csv.DictReader(
        (ln for ln in text.splitlines() if not ln.startswith("#")), delimiter="\t"
    )
    return {
        int(r["tag"], 16): r["action"]
        for r in rows
        if len(r["tag"]) == 8 and all(c in "0123456789ABCDEF" for c in r["tag"])
    }


def _resolve(action: str) -> str:
    """The member of a compound action that is applied (see the module docstring)."""
    parts = action.replace("*", "").split("/")
    if len(parts) == 1:
        return parts[0]
    if "U" in parts:
        return "U"
    if "D" in parts:
        return "D"
    return "Z"


def _new_uid(uid: str, key: bytes) -> str:
    """A replacement UID under the ``2.25`` root (PS3.5 B.2), keyed and deterministic."""
    digest = hmac.new(key, uid.encode("ascii", "replace"), hashlib.sha256).digest()
    return "2.25." + str(int.from_bytes(digest[:16], "big"))


@dataclass(frozen=True)
class DeidReport:
    """What :func:`deidentify_series` did.

    Attributes
    ----------
    files : int
        Files written.
    actions : dict
        Count of attributes per applied action (``X``, ``Z``, ``D``, ``U``,
        ``private``, ``curve/overlay``), over all files.
    source_sha256, output_sha256 : str
        SHA-256 of the source files (in name order) and of the written files.

    """

    files: int
    actions: dict[str, int]
    source_sha256: str
    output_sha256: str


def deidentify_dataset(ds, *, key: bytes, patient_pseudonym: str | None = None) -> dict[str, int]:
    """Apply the Basic Profile to a pydicom ``Dataset`` in place; return the action counts.

    Parameters
    ----------
    ds : pydicom.Dataset
        Modified in place (pass a copy to keep the original).
    key : bytes
        Secret of the UID replacement (the same key maps a UID to the same new UID).
    patient_pseudonym : str, optional
        Written into Patient ID (0010,0020).

    """
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    profile = basic_profile()
    counts: dict[str, int] = {}

    def bump(what: str) -> None:
        counts[what] = counts.get(what, 0) + 1

    def walk(d: Dataset) -> None:
        for elem in list(d):
            tag = int(elem.tag)
            group, element = tag >> 16, tag & 0xFFFF
            if elem.tag.is_private:
                del d[elem.tag]
                bump("private")
                continue
            if (0x5000 <= group <= 0x50FF and group % 2 == 0) or (
                0x6000 <= group <= 0x60FF and group % 2 == 0 and element in (0x3000, 0x4000)
            ):
                del d[elem.tag]
                bump("curve/overlay")
                continue
            action = profile.get(tag)
            if action is None:
                if elem.VR == "SQ":
                    for item in elem.value:
                        walk(item)
                continue
            act = _resolve(action)
            if act == "X":
                del d[elem.tag]
            elif act == "U":
                if elem.VM > 1:
                    elem.value = [_new_uid(str(u), key) for u in elem.value]
                elif elem.value:
                    elem.value = _new_uid(str(elem.value), key)
            elif elem.VR == "SQ":
                elem.value = Sequence([])  # Z and D of a sequence: an empty sequence
            elif act == "Z":
                elem.value = b"" if elem.VR in ("OB", "OW", "UN") else ""
            else:  # D
                elem.value = _DUMMY.get(elem.VR, "")
            bump(act)

    walk(ds)
    if "PixelData" in ds and str(ds.get("BurnedInAnnotation", "")).upper() == "YES":
        raise ValueError("image declares burned-in annotation (0028,0301) = YES")
    if patient_pseudonym is not None:
        ds.PatientID = patient_pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = BASIC_PROFILE_METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "MediaStorageSOPInstanceUID" in meta and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return counts


def _sha(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def deidentify_series(
    source: str | Path,
    destination: str | Path,
    *,
    key: bytes,
    patient_pseudonym: str | None = None,
) -> DeidReport:
    """Copy a DICOM series directory (or one DICOM file) with de-identified headers.

    The series is checked first (:func:`studyval.models.imaging.check_dicom_series`:
    a 0-byte file, a non-DICOM file, a DICOM without pixel data, mixed series,
    missing slices or mixed spacing are refused, naming the file); nothing is
    written unless every file passes. Files keep their names; ``destination``
    must not exist yet.

    Raises
    ------
    ImageReadError
        The source cannot be read or is inconsistent, or declares burned-in
        annotation.
    FileExistsError
        ``destination`` exists.

    """
    import pydicom

    from studyval.models.imaging import _read_header, check_dicom_series

    source, destination = Path(source), Path(destination)
    if destination.exists():
        raise FileExistsError(f"{destination} exists; de-identified copies are never overwritten")
    if source.is_dir():
        files = check_dicom_series(source)
    elif source.is_file():
        if source.stat().st_size == 0:
            raise ImageReadError(source, "file is empty (0 bytes)")
        _read_header(source)
        files = [source]
    else:
        raise ImageReadError(source, "file does not exist")
    outputs: list[tuple[Path, object]] = []
    totals: dict[str, int] = {}
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except Exception as exc:  # pragma: no cover - check_dicom_series read it already
            raise ImageReadError(f, f"not readable as DICOM ({exc})") from exc
        try:
            counts = deidentify_dataset(ds, key=key, patient_pseudonym=patient_pseudonym)
        except ValueError as exc:
            raise ImageReadError(f, str(exc)) from None
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
        outputs.append((f, ds))
    tmp = destination.with_name(f".{destination.name}.tmp-deid")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
    written: list[Path] = []
    if source.is_dir():
        tmp.mkdir(parents=True)
        for f, ds in outputs:
            ds.save_as(tmp / f.name, enforce_file_format=True)  # type: ignore[attr-defined]
            written.append(destination / f.name)
    else:
        tmp.parent.mkdir(parents=True, exist_ok=True)
        outputs[0][1].save_as(tmp, enforce_file_format=True)  # type: ignore[attr-defined]
        written.append(destination)
    tmp.replace(destination)
    return DeidReport(
        files=len(written),
        actions=dict(sorted(totals.items())),
        source_sha256=_sha(files),
        output_sha256=_sha(written),
    )
