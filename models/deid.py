r"""DICOM header de-identification: the PS3.15 Basic Application Level Confidentiality Profile.

Every image that reaches a studyval model is read from a de-identified copy:
:func:`deidentify_series` copies a DICOM series (or one file) into a new
directory, applying to each header the actions of DICOM PS3.15 Annex E,
Table E.1-1 (``models/deid_basic_profile.tsv``: the 2026c edition, 652
attributes and 4 rule rows), so that no image-derived output (prediction
table, mask, Grad-CAM overlay) can carry an identifying header value. The
source files are never modified.

Actions (PS3.15 E.1.1):

* ``X`` remove; ``Z`` zero-length (or a dummy value); ``D`` a dummy value of
  the attribute's VR; ``U`` a replacement UID, consistent within the key (the
  same original UID always maps to the same new one, wherever it occurs, so a
  series stays a series, a study a study, and a reference to another instance
  still points at that instance's new UID);
* compound actions (``X/Z``, ``X/D``, ``Z/D``, ``X/Z/D``, ``X/Z/U*``) depend on
  the attribute's type in the IOD, which a generic tool does not know; the
  conservative member that keeps the IOD valid is applied (``Z`` for ``X/Z``,
  ``D`` when ``D`` is allowed, ``U`` for ``X/Z/U*``): the value is gone either
  way;
* private attributes are removed (the profile's default, without the Retain
  Safe Private option); curve data (50xx,xxxx) and overlay data and comments
  (60xx,3000 / 60xx,4000) are removed; so are the retired group lengths
  (gggg,0000) outside the file meta, which the edits would make wrong;
* sequences not in the table are processed recursively (the table applies to
  the attributes of their items, at any depth);
* ``U`` on a sequence (Referenced Image Sequence (0008,1140), Source Image
  Sequence (0008,2112), ``X/Z/U*``): the items are kept and the instance UIDs
  they contain are replaced with the same keyed mapping as everywhere else
  (Referenced SOP Instance UID (0008,1155) is itself ``U``; Referenced SOP
  Class UID (0008,1150) identifies no one and is kept); the rest of the items
  goes through the table. Attributes the table does not list that point at an
  instance or a frame of reference (keyword ending in ``InstanceUID`` or
  ``FrameOfReferenceUID``, e.g. Multi-frame Source SOP Instance UID, SOP
  Instance UID of Concatenation Source) are remapped with the same mapping,
  anywhere, unless their value is a registered DICOM UID: they name instances
  whose own UIDs are replaced, so a kept value would leak the original UID and
  break the reference;
* ``D`` on a sequence (Content Sequence (0040,A730), Graphic Annotation
  Sequence (0070,0001), Verifying Observer Sequence (0040,A073), Person
  Identification Code Sequence (0040,1101), Flow Identifier Sequence
  (0034,0001), Waveform Annotation Sequence (0040,B020) ...): an empty
  sequence would break IODs where it is Type 1 (an SR document without its
  Content Sequence), and a generic dummy item would not be a valid item of any
  of them either. So the items, their number and nesting are kept, and their
  *values* are replaced: the table applies to the attributes it lists, and
  every other value that can carry free text is given the dummy of its VR
  (text and name VRs AE, AS, DA, DT, TM, LO, LT, PN, SH, ST, UC, UR, UT and
  binary OB, OW, UN). Kept: the structure (code strings CS such as Value Type
  and Relationship Type, numbers, UIDs, remapped as above) and coded entries
  of public coding schemes (``DCM``, ``SCT``, ``LN``, ``UCUM`` ...: Code
  Value, Coding Scheme Designator and Version, Code Meaning), whose meaning is
  fixed by the scheme and cannot name a person; a code of any other scheme (a
  local code for a person, for example) gets dummy values. An SR thus keeps
  its tree, concept names, units and measurements, but no text, name, date or
  time;
* Patient ID (0010,0020) receives the keyed pseudonym of
  :func:`studyval.privacy.pseudonymise` when ``patient_pseudonym`` is given
  (a dummy value the profile allows), and Patient Identity Removed
  (0012,0062) = ``YES`` and De-identification Method (0012,0063) are added,
  with the code sequence (0012,0064) naming the profile (DCM 113100).

Refusals come before any change to the dataset: a file with pixel data that
declares Burned In Annotation (0028,0301) = ``YES`` is refused (burned-in text
is outside the header profile), and so is a DICOMDIR (its record offsets would
be wrong once values change: de-identify the files it indexes and rebuild it).

Reference: DICOM PS3.15 Security and System Management Profiles, Annex E
(Attribute Confidentiality Profiles), Table E.1-1, edition 2026c. NEMA, 2026.
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
    "AT": 0,
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
    "SV": 0,
    "TM": "000000",
    "UC": "ANONYMOUS",
    "UL": 0,
    "UR": "ANONYMOUS",
    "US": 0,
    "UT": "ANONYMOUS",
    "UV": 0,
}
# Binary VRs: 8 zero bytes (a whole number of OW words, OF/OL/OD/OV values).
_BINARY = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})

# Inside a D sequence: VRs whose values are replaced even where the table does not list the
# attribute (free text, names, dates, times, ages, opaque bytes) ...
_SCRUB_IN_D = frozenset(
    {"AE", "AS", "DA", "DT", "TM", "LO", "LT", "PN", "SH", "ST", "UC", "UR", "UT", "OB", "OW", "UN"}
)
# ... except the attributes of a coded entry of a public coding scheme (PS3.16 Table 8-1).
_CODE_ATTRIBUTES = frozenset(
    {
        0x00080100,  # Code Value
        0x00080102,  # Coding Scheme Designator
        0x00080103,  # Coding Scheme Version
        0x00080104,  # Code Meaning
        0x00080119,  # Long Code Value
        0x00080120,  # URN Code Value
    }
)
_PUBLIC_SCHEMES = frozenset(
    {
        "DCM", "SCT", "SRT", "SNM3", "LN", "UCUM", "FMA", "NCIT", "RADLEX", "MDC", "UMLS",
        "NEU", "NCDR", "BI", "ACR", "ICD10", "I10", "I9C", "ICDO3", "HL7", "ISO3166_1", "ISO639_1",
        "ISO639_2", "RXNORM", "NDC", "UBERON", "MA",
    }
)  # fmt: skip
_PIXEL_DATA = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel, Float and Double Float Pixel Data
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"  # Media Storage Directory Storage


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


def _uid_text(value) -> str:
    if isinstance(value, bytes):  # a UID read as UN (implicit VR, tag unknown to the dictionary)
        value = value.decode("ascii", "replace")
    return str(value).strip("\x00 ")


_INSTANCE_UID_KEYWORDS = (
    "InstanceUID",
    "FrameOfReferenceUID",
    "SOPInstanceUIDOfConcatenationSource",
)


@lru_cache(maxsize=4096)
def _is_instance_uid(tag: int, uid: str) -> bool:
    """An attribute not in the table that points at an instance (or frame of reference).

    Its keyword names an instance or a frame of reference (Multi-frame Source SOP Instance
    UID, Volume Frame of Reference UID ...) and its value is not a registered DICOM UID (a
    well-known colour palette, for example). SOP Class, Transfer Syntax, Coding Scheme and
    Context UIDs and the like identify no one and are kept.
    """
    from pydicom.datadict import keyword_for_tag
    from pydicom.uid import UID

    return keyword_for_tag(tag).endswith(_INSTANCE_UID_KEYWORDS) and UID(uid).name == uid


def _refusal(ds) -> str | None:
    """Why ``ds`` must not be de-identified (checked before anything is changed), or None."""
    if any(t in ds for t in _PIXEL_DATA):
        if str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
            return "image declares burned-in annotation (0028,0301) = YES"
    meta = getattr(ds, "file_meta", None)
    sop_class = meta.get("MediaStorageSOPClassUID", "") if meta is not None else ""
    if "DirectoryRecordSequence" in ds or str(sop_class) == _DICOMDIR_SOP_CLASS:
        return (
            "a DICOMDIR (file-set index) is not de-identified in place: its record offsets "
            "would be wrong; de-identify the files it indexes and rebuild it"
        )
    return None


@dataclass(frozen=True)
class DeidReport:
    """What :func:`deidentify_series` did.

    Attributes
    ----------
    files : int
        Files written.
    actions : dict
        Count of attributes per applied action (``X``, ``Z``, ``D``, ``U``,
        ``private``, ``curve/overlay``, ``group length``, and ``content``: values
        not listed by the table replaced inside ``D`` sequences), over all files.
    source_sha256, output_sha256 : str
        SHA-256 of the source files (in name order) and of the written files.

    """

    files: int
    actions: dict[str, int]
    source_sha256: str
    output_sha256: str


def deidentify_dataset(ds, *, key: bytes, patient_pseudonym: str | None = None) -> dict[str, int]:
    """Apply the Basic Profile to a pydicom ``Dataset`` in place; return the action counts.

    Works on any dataset pydicom reads (image or not: SR, RT, waveform,
    presentation state ...). The refusals (burned-in annotation, DICOMDIR) are
    checked first, so a refused dataset is left unchanged.

    Parameters
    ----------
    ds : pydicom.Dataset
        Modified in place (pass a copy to keep the original).
    key : bytes
        Secret of the UID replacement (the same key maps a UID to the same new UID).
    patient_pseudonym : str, optional
        Written into Patient ID (0010,0020).

    Raises
    ------
    ValueError
        The dataset is refused (see the module docstring), before any change.

    """
    from pydicom.dataelem import empty_value_for_VR
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    problem = _refusal(ds)
    if problem is not None:
        raise ValueError(problem)
    profile = basic_profile()
    counts: dict[str, int] = {}

    def bump(what: str) -> None:
        counts[what] = counts.get(what, 0) + 1

    def new_uids(elem) -> None:
        if elem.VM > 1:
            elem.value = [_new_uid(_uid_text(u), key) for u in elem.value]
        elif elem.value not in (None, "", b""):
            elem.value = _new_uid(_uid_text(elem.value), key)

    def dummy(elem) -> None:
        if elem.VR == "UI":
            # a dummy UID must stay a UID, and stay consistent: a keyed replacement
            if elem.value not in (None, "", b""):
                new_uids(elem)
            else:
                elem.value = _new_uid("", key)
        elif elem.VR in _BINARY:
            elem.value = b"\x00" * 8
        else:
            elem.value = _DUMMY.get(elem.VR, "ANONYMOUS")

    def walk(d: Dataset, in_d: bool) -> None:
        # in_d: inside a D sequence, where values the table does not list are dummied too
        public_code = str(d.get("CodingSchemeDesignator", "")).strip().upper() in _PUBLIC_SCHEMES
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
            if element == 0x0000 and group > 0x0002:
                del d[elem.tag]  # retired group length, wrong once values change
                bump("group length")
                continue
            action = profile.get(tag)
            if action is None:
                if elem.VR == "SQ":
                    for item in elem.value:
                        walk(item, in_d)
                elif elem.value in (None, "", b"") or (elem.VM > 1 and not any(elem.value)):
                    pass
                elif elem.VR == "UI":
                    values = elem.value if elem.VM > 1 else [elem.value]
                    if any(_is_instance_uid(tag, _uid_text(u)) for u in values):
                        new_uids(elem)
                        bump("U")
                elif in_d and elem.VR in _SCRUB_IN_D:
                    if not (public_code and tag in _CODE_ATTRIBUTES):
                        dummy(elem)
                        bump("content")
                continue
            act = _resolve(action)
            if act == "X":
                del d[elem.tag]
            elif elem.VR == "SQ":
                if act == "Z":
                    elem.value = Sequence([])
                else:  # U keeps the items and remaps their UIDs; D keeps them and dummies values
                    for item in elem.value:
                        walk(item, in_d or act == "D")
            elif act == "U":
                new_uids(elem)
            elif act == "Z":
                elem.value = empty_value_for_VR(elem.VR)
            else:  # D
                dummy(elem)
            bump(act)

    walk(ds, False)
    if patient_pseudonym is not None:
        ds.PatientID = patient_pseudonym
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = BASIC_PROFILE_METHOD
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
    code.CodeMeaning = "Basic Application Confidentiality Profile"
    ds.DeidentificationMethodCodeSequence = Sequence([code])
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        if "MediaStorageSOPClassUID" not in meta and "SOPClassUID" in ds:
            meta.MediaStorageSOPClassUID = ds.SOPClassUID
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
    missing slices or mixed spacing are refused, naming the file; one file goes
    through the same reading check); then every file is checked for the
    refusals of :func:`deidentify_dataset` before any is changed; nothing is
    written unless every file passes. Files keep their names; ``destination``
    must not exist yet.

    Raises
    ------
    ImageReadError
        The source cannot be read or is inconsistent, declares burned-in
        annotation, or a file cannot be de-identified or written (the file is
        named, and nothing is left at ``destination``).
    FileExistsError
        ``destination`` exists.

    """
    import shutil

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
    datasets: list[tuple[Path, object]] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f)
        except Exception as exc:  # pragma: no cover - check_dicom_series read it already
            raise ImageReadError(f, f"not readable as DICOM ({exc})") from exc
        problem = _refusal(ds)
        if problem is not None:
            raise ImageReadError(f, problem)
        datasets.append((f, ds))
    totals: dict[str, int] = {}
    for f, ds in datasets:
        try:
            counts = deidentify_dataset(ds, key=key, patient_pseudonym=patient_pseudonym)
        except Exception as exc:
            raise ImageReadError(
                f, f"cannot be de-identified ({type(exc).__name__}: {exc})"
            ) from exc
        for k, v in counts.items():
            totals[k] = totals.get(k, 0) + v
    tmp = destination.with_name(f".{destination.name}.tmp-deid")

    def clear_tmp() -> None:
        if tmp.is_dir():
            shutil.rmtree(tmp)
        elif tmp.exists():
            tmp.unlink()

    clear_tmp()
    written: list[Path] = []
    current = files[0]
    try:
        if source.is_dir():
            tmp.mkdir(parents=True)
            for f, ds in datasets:
                current = f
                ds.save_as(tmp / f.name, enforce_file_format=True)  # type: ignore[attr-defined]
                written.append(destination / f.name)
        else:
            tmp.parent.mkdir(parents=True, exist_ok=True)
            datasets[0][1].save_as(tmp, enforce_file_format=True)  # type: ignore[attr-defined]
            written.append(destination)
    except Exception as exc:
        clear_tmp()
        raise ImageReadError(
            current, f"de-identified copy cannot be written ({type(exc).__name__}: {exc})"
        ) from exc
    tmp.replace(destination)
    return DeidReport(
        files=len(written),
        actions=dict(sorted(totals.items())),
        source_sha256=_sha(files),
        output_sha256=_sha(written),
    )
