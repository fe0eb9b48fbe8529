"""Re-verify a results bundle: recompute it from its inputs and compare byte for byte.

A reviewer who receives a bundle and the two input tables runs::

    studyval verify BUNDLE --clinical C.csv --predictions P.csv

:func:`verify_bundle` first checks that the bundle's manifest holds the fields
every studyval manifest records (``protocol``, ``seed``, ``inputs``,
``models``, ``outputs``, ``environment``, ``git``, ``dictionary``; a missing or
malformed one is an error naming the field). It then recomputes the bundle
(without rendering) into a temporary directory from the given inputs and the
plan the bundle keeps (``study/plan.yml`` and ``study/dictionary.yml``, when the
manifest records them unchanged; otherwise the protocol's shipped plan),
**with the plan's pre-registered seed** (not the seed
the manifest states: an edited seed must not steer the check), and reports
table by table and figure by figure whether each output reproduces the SHA-256
recorded in the bundle's manifest.

Every table and figure file gets one status:

* ``reproduced``: bundle, manifest and recomputation agree;
* ``modified in bundle``: the bundle's file no longer matches its manifest
  (and the recomputation does not reproduce the file as it is now): the file
  was edited after the run;
* ``manifest hash edited``: the bundle's file and the recomputation agree but
  the manifest records another SHA-256 (or lists a file neither has, or lacks
  one both have byte for byte): the manifest was edited, not the file;
* ``not in manifest: added after the run``: a file under ``tables/`` or
  ``figures/`` that the manifest does not list;
* ``missing from bundle``, ``not recomputed``, ``not in manifest (written by the
  recomputation only)`` and ``differs`` (recomputed bytes differ).

Files under the bundle's ``imaging/`` (an imaging chain's tables, figures and
``manifest.json``, copied into the bundle by ``studyval run --imaging``) are
not recomputed: each is checked against the SHA-256 the manifest records
under ``imaging`` *before* recomputing, and gets the status ``as recorded``,
``modified in bundle``, ``missing from bundle`` or ``not in manifest: added
after the run``; any but the first fails the verification. Only an intact
``imaging/`` is handed to the recomputation; otherwise it runs without it
(tables and figures do not depend on it).

Manifest fields that contradict the recomputation are reported as the manifest
having been edited, and fail the verification even when every output
reproduces:

* ``protocol.slug``, when the manifest's ``plan_sha256`` is the SHA-256 of
  another protocol's bundled plan, or the bundle's ``tables/dictionary`` is
  another protocol's data dictionary (the bundle is then verified as that
  protocol);
* ``seed``, when it is not the plan's (and the plan is unchanged);
* ``models`` entries (model name and ``model_version``, the SHA-256 of its
  weights) that differ from those the recomputation takes from the given
  prediction table;
* ``inputs.<role>.sha256`` and ``bytes``: when the given input's SHA-256 is
  the one recorded but its size is not; or when its SHA-256 differs from the
  record (same file format) yet every table and figure reproduces byte for
  byte from it (an input that changed would not reproduce the outputs);
* ``protocol.plan_sha256``, ``plan_version``, ``registry_*`` and
  ``dictionary.*``: when every table and figure reproduces and the
  recomputation, made by the studyval version and git commit the manifest
  records, records other values (a plan-derived field also when the recorded
  ``plan_sha256`` is the current plan's).

When outputs do not reproduce for other reasons, the likely cause is named: an
input whose SHA-256 differs from the manifest's ``inputs``, a changed plan
(``plan_sha256``), another data dictionary version, or another studyval version
or commit. Differences of ``environment`` (Python, implementation, machine and
package versions) may be legitimate on a reviewer's machine: they are listed as
provenance differences and never fail the verification by themselves.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studyval.errors import StudyvalError

if TYPE_CHECKING:  # pandas is imported only when needed, so that the CLI starts fast
    import pandas as pd

__all__ = [
    "REQUIRED_MANIFEST_FIELDS",
    "ManifestError",
    "OutputCheck",
    "VerifyReport",
    "check_manifest",
    "compare_bundles",
    "verify_bundle",
]

#: Status of one output file.
REPRODUCED = "reproduced"
DIFFERS = "differs"  # recomputed bytes differ from the manifest
MODIFIED = "modified in bundle"  # the bundle's file differs from its own manifest
MANIFEST_EDITED = "manifest hash edited"  # bundle file == recomputation != manifest
MISSING = "missing from bundle"  # in the manifest, not in the bundle
NOT_RECOMPUTED = "not recomputed"  # in the manifest, the recomputation did not write it
ADDED = "not in manifest: added after the run"  # in the bundle, the manifest does not list it
UNEXPECTED = "not in manifest (written by the recomputation only)"
#: An ``imaging/`` file whose SHA-256 is the one the manifest records (it is copied, not recomputed).
AS_RECORDED = "as recorded"
#: Statuses that pass.
_PASS = (REPRODUCED, AS_RECORDED)

#: Top-level fields every studyval manifest records, with the JSON type each must have.
#: Other fields (``studyval_version``, ``imaging``, ...) may be present and are not required.
REQUIRED_MANIFEST_FIELDS: dict[str, str] = {
    "protocol": "object",
    "seed": "integer",
    "inputs": "object",
    "models": "list",
    "outputs": "object",
    "environment": "object",
    "git": "object",
    "dictionary": "object",
}


class ManifestError(StudyvalError):
    """A bundle's manifest lacks a required field or holds one of the wrong type."""


def _short(digest: object) -> str:
    text = str(digest)
    return text if len(text) <= 19 else text[:19] + "..."


def check_manifest(manifest: Mapping[str, Any], path: str | Path) -> None:
    """Check that ``manifest`` has every field :func:`verify_bundle` relies on.

    Parameters
    ----------
    manifest : mapping
        A parsed ``manifest.json``.
    path : path
        Where it was read from (named in the error).

    Raises
    ------
    ManifestError
        A field of :data:`REQUIRED_MANIFEST_FIELDS` is missing or of the wrong
        type, ``protocol`` names no ``slug`` or ``plan_sha256``, a ``models``
        entry lacks ``model`` or ``model_version``, an ``inputs`` entry is not an
        object, an ``outputs`` entry is not a SHA-256 string, or ``imaging``
        (optional) is not an object of SHA-256 strings. Every problem found is
        named.

    """
    problems: list[str] = []
    missing = [k for k in REQUIRED_MANIFEST_FIELDS if k not in manifest]
    if missing:
        problems.append(
            "required field"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(repr(k) for k in missing)
            + (" are" if len(missing) > 1 else " is")
            + " missing"
        )
    checks = {
        "object": lambda v: isinstance(v, Mapping),
        "list": lambda v: isinstance(v, list),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    }
    for key, kind in REQUIRED_MANIFEST_FIELDS.items():
        if key in manifest and not checks[kind](manifest[key]):
            article = "a" if kind == "list" else "an"
            problems.append(f"field {key!r} must be {article} {kind}, got {manifest[key]!r:.60}")
    proto = manifest.get("protocol")
    if isinstance(proto, Mapping):
        for sub in ("slug", "plan_sha256"):
            if not isinstance(proto.get(sub), str) or not proto.get(sub):
                problems.append(f"field 'protocol.{sub}' is missing or empty")
    models = manifest.get("models")
    if isinstance(models, list):
        for i, entry in enumerate(models):
            if not isinstance(entry, Mapping) or not all(
                isinstance(entry.get(k), str) for k in ("model", "model_version")
            ):
                problems.append(
                    f"field 'models[{i}]' must be an object with strings 'model' and "
                    f"'model_version', got {entry!r:.60}"
                )
    inputs = manifest.get("inputs")
    if isinstance(inputs, Mapping):
        for kind, rec in inputs.items():
            if not isinstance(rec, Mapping):
                problems.append(f"field 'inputs.{kind}' must be an object, got {rec!r:.60}")
    outputs = manifest.get("outputs")
    if isinstance(outputs, Mapping):
        for rel, digest in outputs.items():
            if not isinstance(digest, str):
                problems.append(
                    f"field 'outputs' entry {rel!r} must be a SHA-256 string, got {digest!r:.60}"
                )
    imaging = manifest.get("imaging")
    if imaging is not None:
        if not isinstance(imaging, Mapping):
            problems.append(f"field 'imaging' must be an object, got {imaging!r:.60}")
        else:
            for rel, digest in imaging.items():
                if not isinstance(digest, str):
                    problems.append(
                        f"field 'imaging' entry {rel!r} must be a SHA-256 string, "
                        f"got {digest!r:.60}"
                    )
    if problems:
        raise ManifestError(
            f"{path}: not a complete studyval results manifest: "
            + "; ".join(problems)
            + " (every manifest records "
            + ", ".join(REQUIRED_MANIFEST_FIELDS)
            + "; the manifest was edited after the run or was not written by studyval)"
        )


@dataclass(frozen=True)
class OutputCheck:
    """One table, figure or imaging file of the bundle.

    Attributes
    ----------
    path : str
        Path inside the bundle, e.g. ``tables/auc.parquet``, ``imaging/tables/seg.csv``.
    kind : {"table", "figure", "imaging"}
        What it is.
    name : str
        The table or figure name (``auc``, ``roc_external``); for an imaging
        file its path under ``imaging/`` without suffix (``tables/seg``).
    status : str
        ``reproduced``, ``differs``, ``modified in bundle``, ``manifest hash
        edited``, ``missing from bundle``, ``not recomputed``, ``not in
        manifest: added after the run`` or ``not in manifest (written by the
        recomputation only)``; an imaging file (copied, not recomputed) is
        ``as recorded``, ``modified in bundle``, ``missing from bundle`` or
        ``not in manifest: added after the run``.
    manifest_sha256, bundle_sha256, recomputed_sha256 : str or None
        The three hashes compared (None where the file is absent; an imaging
        file that is a symbolic link has ``bundle_sha256`` ``"symbolic link"``).

    """

    path: str
    kind: str
    name: str
    status: str
    manifest_sha256: str | None
    bundle_sha256: str | None
    recomputed_sha256: str | None

    @property
    def ok(self) -> bool:
        """True when the file reproduces (an imaging file: matches the manifest)."""
        return self.status in _PASS


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of :func:`verify_bundle`.

    Attributes
    ----------
    bundle : Path
        The bundle verified.
    slug : str
        Its protocol.
    outputs : tuple of OutputCheck
        One per file under ``tables/`` and ``figures/`` (manifest, bundle or
        recomputed), then one per file under ``imaging/`` (manifest or bundle).
    causes : tuple of str
        Differences between the bundle's provenance and this recomputation,
        most likely cause first (changed inputs, plan, dictionary, packages...).
        Differences of ``environment`` (Python and package versions) are listed
        here and never fail the verification by themselves.
    error : str or None
        Why the recomputation failed, if it did.
    manifest_reproduced : bool or None
        Whether the recomputed manifest equals the bundle's byte for byte.
    notes : tuple of str
        Information that does not by itself fail the verification.
    manifest_edits : tuple of str
        Manifest fields found edited after the run (``protocol.slug``,
        ``seed``, ``outputs`` entries, ``models``, ``inputs``, plan and
        dictionary records), each with the recorded and the recomputed or
        actual value. Any of them fails the verification, even when every
        output reproduces.

    """

    bundle: Path
    slug: str
    outputs: tuple[OutputCheck, ...]
    causes: tuple[str, ...] = ()
    error: str | None = None
    manifest_reproduced: bool | None = None
    notes: tuple[str, ...] = field(default=())
    manifest_edits: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when all outputs reproduce, imaging is as recorded and the manifest as written."""
        return (
            self.error is None
            and bool(self.outputs)
            and all(o.ok for o in self.outputs)
            and not self.manifest_edits
        )

    @property
    def failed(self) -> tuple[OutputCheck, ...]:
        """The outputs that do not reproduce (or whose manifest entry was edited)."""
        return tuple(o for o in self.outputs if not o.ok)

    def to_frame(self) -> pd.DataFrame:
        """One row per output file."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "kind": o.kind,
                    "name": o.name,
                    "path": o.path,
                    "status": o.status,
                    "manifest_sha256": o.manifest_sha256,
                    "bundle_sha256": o.bundle_sha256,
                    "recomputed_sha256": o.recomputed_sha256,
                }
                for o in self.outputs
            ],
            columns=[
                "kind",
                "name",
                "path",
                "status",
                "manifest_sha256",
                "bundle_sha256",
                "recomputed_sha256",
            ],
        )

    def items(self) -> list[tuple[str, str, dict[str, str]]]:
        """``(kind, name, {format: status})`` per table or figure, tables first."""
        grouped: dict[tuple[str, str], dict[str, str]] = {}
        for o in self.outputs:
            fmt = o.path.rsplit(".", 1)[-1] if "." in o.path else ""
            grouped.setdefault((o.kind, o.name), {})[fmt] = o.status
        order = {"table": 0, "figure": 1, "imaging": 2}
        return [
            (k, n, grouped[(k, n)])
            for k, n in sorted(grouped, key=lambda kn: (order.get(kn[0], 2), kn[1]))
        ]

    def format(self) -> str:
        """The table-by-table report the CLI prints."""
        lines = [f"verifying {self.bundle} ({self.slug})"]
        if self.error is not None:
            lines.append(f"recomputation failed: {self.error}")
        items = self.items()
        width = max((len(n) for _, n, _ in items), default=10)
        kind_width = max((len(k) for k, _, _ in items), default=6)
        n_bad = n_items = n_img = n_img_bad = 0
        for kind, name, formats in items:
            imaging = kind == "imaging"
            n_img += imaging
            n_items += not imaging
            statuses = set(formats.values())
            if statuses <= set(_PASS):
                verdict = "as recorded" if imaging else "reproduced"
            elif statuses <= {*_PASS, MANIFEST_EDITED}:
                verdict = "MANIFEST EDITED"
            elif imaging:
                verdict = "NOT AS RECORDED"
                n_img_bad += 1
            else:
                verdict = "NOT REPRODUCED"
                n_bad += 1
            detail = ", ".join(f"{fmt}: {st}" for fmt, st in sorted(formats.items()))
            lines.append(f"  {kind:<{kind_width}} {name:<{width}}  {verdict:<15}  ({detail})")
        if self.manifest_reproduced is not None:
            lines.append(
                "  manifest "
                + ("reproduced" if self.manifest_reproduced else "differs (see causes)")
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        imaging_ok = f"; its {n_img} imaging files are as the manifest records" if n_img else ""
        if self.ok:
            lines.append(
                f"OK: all {n_items} tables and figures reproduce byte for byte{imaging_ok}"
            )
        else:
            if n_bad or not (self.manifest_edits or n_img_bad):
                lines.append(f"FAILED: {n_bad} of {n_items} tables and figures do not reproduce")
            if n_img_bad:
                lines.append(
                    f"FAILED: {n_img_bad} of {n_img} imaging files do not match the SHA-256 the "
                    "manifest records under 'imaging' (edited, added or removed after the run)"
                )
            if self.manifest_edits:
                also = (
                    f"all {n_items} tables and figures reproduce"
                    if n_bad == 0 and self.error is None
                    else "see also above"
                )
                lines.append(f"FAILED: the bundle's manifest was edited after the run ({also}):")
                lines.extend(f"  - {e}" for e in self.manifest_edits)
        if self.causes and not (n_bad or n_img_bad or self.error is not None):
            lines.append(
                "provenance differences (the outputs reproduce nonetheless; these alone do not "
                "fail the verification):"
            )
            lines.extend(f"  - {c}" for c in self.causes)
        elif self.causes:
            lines.append("likely causes:")
            lines.extend(f"  - {c}" for c in self.causes)
        elif not self.ok and not self.manifest_edits and self.error is None and not n_img_bad:
            lines.append(
                "likely causes: none found in the manifest (same inputs, plan, dictionary and "
                "package versions); the computation is not deterministic here, please report it"
            )
        return "\n".join(lines)


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, Mapping):
        out: dict[str, Any] = {}
        for k, v in data.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: data}


def _plan_sha256(slug: str) -> str | None:
    from studyval.bundle import file_sha256
    from studyval.plan import plan_path

    try:
        return file_sha256(plan_path(slug))
    except StudyvalError:
        return None


def _input_matches(manifest: Mapping[str, Any], kind: str, path: Path | None) -> bool:
    """Whether input ``kind`` given now has the SHA-256 the manifest recorded."""
    from studyval.bundle import file_sha256

    rec = manifest.get("inputs", {}).get(kind)
    if path is None or rec is None:
        return path is None and rec is None
    return Path(path).is_file() and file_sha256(path) == rec.get("sha256")


def _dictionary_variables(bundle: Path) -> tuple[str, ...] | None:
    """The ``variable`` column of the bundle's ``tables/dictionary.csv`` (None if unreadable)."""
    import csv

    path = bundle / "tables" / "dictionary.csv"
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return tuple(row["variable"] for row in csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, KeyError, csv.Error):
        return None


def _protocol_dictionary(slug: str) -> tuple[str, ...] | None:
    """Variable names of the data dictionary protocol ``slug``'s bundled plan names."""
    from studyval.dictionary import load_dictionary
    from studyval.plan import load_plan, plan_path

    try:
        name = load_plan(plan_path(slug), check_dictionary=False).dictionary
        return load_dictionary(name or slug).names
    except (StudyvalError, OSError, ValueError):
        return None


def _protocol_slug(manifest: Mapping[str, Any], bundle: Path) -> tuple[str, str | None]:
    """``(slug to verify as, manifest edit)``: the bundle's protocol, and an edited ``slug``.

    The manifest's ``protocol.slug`` is contradicted when its ``plan_sha256``
    is the SHA-256 of another protocol's bundled plan (and not of its own), or
    when the bundle's ``tables/dictionary`` is exactly another protocol's data
    dictionary (and not its own). The bundle is then verified as that protocol.
    """
    from studyval.protocol import PROTOCOLS

    proto = manifest["protocol"]
    said = str(proto["slug"])
    recorded_plan = proto.get("plan_sha256")
    by_plan = [s for s in PROTOCOLS if _plan_sha256(s) == recorded_plan]
    variables = _dictionary_variables(bundle)
    by_dict: list[str] = []
    if variables:
        by_dict = [s for s in PROTOCOLS if _protocol_dictionary(s) == variables]
    plan_other = [s for s in by_plan if s != said] if said not in by_plan else []
    dict_other = [s for s in by_dict if s != said] if said not in by_dict else []
    other = (plan_other or (dict_other if len(dict_other) == 1 else [None]))[0]
    if other is None:
        return said, None
    evidence = []
    if other in plan_other:
        evidence.append(f"its plan_sha256 is that of {other}'s plan")
    if other in dict_other:
        evidence.append(f"the bundle's tables/dictionary is {other}'s data dictionary")
    return other, (
        f"the manifest's protocol.slug says {said}, but "
        + " and ".join(evidence)
        + f": the manifest was edited after the run (the bundle was verified as {other})"
    )


#: What stands in for the SHA-256 of an ``imaging/`` entry that is a symbolic link.
_LINK = "symbolic link"


def _imaging_hashes(root: Path) -> dict[str, str]:
    """SHA-256 of each file under ``root/imaging``, by path under it; links are not followed."""
    import os

    from studyval.bundle import file_sha256

    base = root / "imaging"
    if base.is_symlink():
        return {"": _LINK}
    out: dict[str, str] = {}
    if not base.is_dir():
        return out
    for here, dirs, files in os.walk(base, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(here) / name
            rel = path.relative_to(base).as_posix()
            if path.is_symlink():
                out[rel] = _LINK
            elif path.is_file():
                out[rel] = file_sha256(path)
    return dict(sorted(out.items()))


def _imaging_checks(
    manifest: Mapping[str, Any], bundle: Path, recomputed: Path | None
) -> list[OutputCheck]:
    """One check per file under the bundle's ``imaging/`` or the manifest's ``imaging``."""
    recorded = {str(k): v for k, v in (manifest.get("imaging") or {}).items()}
    present = _imaging_hashes(bundle)
    again = _imaging_hashes(recomputed) if recomputed is not None else {}
    checks = []
    for rel in sorted(set(recorded) | set(present)):
        want, have = recorded.get(rel), present.get(rel)
        if want is None:
            status = ADDED
        elif have is None:
            status = MISSING
        elif have != want:
            status = MODIFIED
        else:
            status = AS_RECORDED
        path = f"imaging/{rel}" if rel else "imaging"
        name = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
        checks.append(
            OutputCheck(path, "imaging", name or "imaging", status, want, have, again.get(rel))
        )
    return checks


def _imaging_intact(bundle: str | Path) -> bool:
    """Whether the bundle's ``imaging/`` is exactly the files its manifest's ``imaging`` lists."""
    from studyval.bundle import read_manifest

    bundle = Path(bundle)
    return all(c.ok for c in _imaging_checks(read_manifest(bundle), bundle, None))


def _build(m: Mapping[str, Any]) -> tuple[Any, Any]:
    git = m.get("git")
    return m.get("studyval_version"), git.get("commit") if isinstance(git, Mapping) else None


def _input_edits(
    manifest: Mapping[str, Any],
    inputs: Mapping[str, Path | None],
    *,
    outputs_match: bool,
) -> tuple[list[str], set[str]]:
    """Edited ``inputs.<role>.sha256`` / ``bytes``: ``(edits, roles)``.

    The given input's SHA-256 being the one recorded, a recorded size that is
    not its size was edited. Its SHA-256 differing (same file format), the
    record was edited when every table and figure reproduces byte for byte
    from the given file: a changed input would not reproduce them.
    """
    from studyval.bundle import file_sha256

    edits: list[str] = []
    roles: set[str] = set()
    for role, path in inputs.items():
        rec = manifest.get("inputs", {}).get(role)
        if path is None or rec is None or not Path(path).is_file():
            continue
        path = Path(path)
        digest, size = file_sha256(path), path.stat().st_size
        same_hash = digest == rec.get("sha256")
        same_format = Path(str(rec.get("file", ""))).suffix.lower() == path.suffix.lower()
        if same_hash:
            if rec.get("bytes") != size:
                roles.add(role)
                edits.append(
                    f"manifest field 'inputs.{role}.bytes' records {rec.get('bytes')}, but the "
                    f"given {path.name} has {size} bytes and the SHA-256 the manifest records "
                    f"({_short(digest)}): the manifest was edited after the run"
                )
            continue
        if not (outputs_match and same_format):
            continue
        roles.add(role)
        tail = (
            f"and every table and figure reproduces from it byte for byte: the manifest's "
            f"record of the {role} input was edited after the run (an input that changed would "
            "not reproduce the outputs)"
        )
        edits.append(
            f"manifest field 'inputs.{role}.sha256' records {_short(rec.get('sha256'))}, but the "
            f"given {path.name} has {_short(digest)} {tail}"
        )
        if rec.get("bytes") != size:
            edits.append(
                f"manifest field 'inputs.{role}.bytes' records {rec.get('bytes')}, but the given "
                f"{path.name} has {size} bytes {tail}"
            )
    return edits, roles


def _record_edits(
    manifest: Mapping[str, Any],
    recomputed: Mapping[str, Any] | None,
    *,
    slug: str,
    outputs_match: bool,
) -> tuple[list[str], set[str]]:
    """Edited ``protocol.*`` (but ``slug``) and ``dictionary.*`` fields: ``(edits, fields)``.

    When every table and figure reproduces and the recomputation, made by the
    studyval version and git commit the manifest records, records another
    value, the manifest was edited; a plan-derived ``protocol`` field also when
    the recorded ``plan_sha256`` is that of the plan the recomputation used.
    """
    if recomputed is None or not outputs_match:
        return [], set()
    version, commit = _build(manifest)
    same_build = (version, commit) == _build(recomputed) and isinstance(commit, str)
    then_git, now_git = manifest.get("git", {}), recomputed.get("git", {})
    dirty = bool(then_git.get("dirty")) or bool(
        now_git.get("dirty") if isinstance(now_git, Mapping) else False
    )
    edits: list[str] = []
    fields: set[str] = set()
    for section in ("protocol", "dictionary"):
        then, now = manifest.get(section, {}), recomputed.get(section, {})
        if not isinstance(now, Mapping):
            continue
        plan_same = section == "protocol" and then.get("plan_sha256") == now.get("plan_sha256")
        source = (
            f"reports/{slug}/plan.yml"
            if section == "protocol"
            else f"data_dictionary/{now.get('name', slug)}.yml"
        )
        for key in sorted(set(then) | set(now)):
            if section == "protocol" and key == "slug":
                continue
            a, b = then.get(key), now.get(key)
            if a == b:
                continue
            name = f"{section}.{key}"
            shown_a = "no value" if a is None else _short(a)
            edited = ": the manifest was edited after the run"
            if plan_same and key != "plan_sha256":
                why = (
                    f"the plan it records (plan_sha256 {_short(then.get('plan_sha256'))}) is the "
                    f"one the recomputation used, whose {key} is {_short(b)}"
                )
            elif same_build:
                why = (
                    f"the recomputation, made by the studyval version ({version}) and commit "
                    f"({str(commit)[:12]}) the manifest records, records {_short(b)} and every "
                    "table and figure reproduces"
                )
                if dirty:
                    edited += (
                        f", unless {source} was changed since without a commit (the studyval "
                        "source had uncommitted changes)"
                    )
            else:
                continue
            fields.add(name)
            edits.append(f"manifest field '{name}' records {shown_a}, but {why}{edited}")
    return edits, fields


def _causes(
    manifest: Mapping[str, Any],
    *,
    slug: str,
    inputs: Mapping[str, Path | None],
    recomputed: Mapping[str, Any] | None,
    edited: frozenset[str] = frozenset(),
) -> list[str]:
    """Provenance differences, most likely cause of a difference first.

    ``edited`` names the manifest fields found edited (``inputs.clinical``,
    ``protocol.plan_sha256``, ``dictionary.version``): they are named as edits,
    not as causes.
    """
    from studyval.bundle import environment_info, file_sha256

    causes: list[str] = []
    recorded_inputs = manifest.get("inputs", {})
    for kind, path in inputs.items():
        if f"inputs.{kind}" in edited:
            continue
        rec = recorded_inputs.get(kind)
        if path is None:
            if rec is not None:
                causes.append(
                    f"input {kind}: the bundle was computed with {rec.get('file')} but none was given"
                )
            continue
        if rec is None:
            causes.append(f"input {kind}: {Path(path).name} given, the bundle used none")
            continue
        if not Path(path).is_file():
            causes.append(f"input {kind}: {path} does not exist")
            continue
        digest = file_sha256(path)
        if digest != rec.get("sha256"):
            causes.append(
                f"input {kind} changed: {Path(path).name} has SHA-256 {digest[:12]}..., the bundle "
                f"was computed from {rec.get('file')} with {str(rec.get('sha256'))[:12]}... "
                f"({rec.get('bytes')} bytes recorded, {Path(path).stat().st_size} now)"
            )
    proto = manifest.get("protocol", {})
    # the plan the recomputation used: the bundle's own copy when intact, else the shipped one
    used = recomputed.get("protocol", {}) if recomputed is not None else {}
    plan_now = used.get("plan_sha256") or _plan_sha256(slug)
    if plan_now != proto.get("plan_sha256") and "protocol.plan_sha256" not in edited:
        causes.append(
            f"analysis plan changed: reports/{slug}/plan.yml has SHA-256 {str(plan_now)[:12]}..., "
            f"the bundle recorded {str(proto.get('plan_sha256'))[:12]}... "
            f"(plan_version {proto.get('plan_version')})"
        )
    env_then = manifest.get("environment", {})
    env_now = environment_info() if recomputed is None else recomputed.get("environment", {})
    if recomputed is not None:
        d_then, d_now = manifest.get("dictionary", {}), recomputed.get("dictionary", {})
        if d_then.get("version") != d_now.get("version") and "dictionary.version" not in edited:
            causes.append(
                f"data dictionary changed: version {d_then.get('version')} in the bundle, "
                f"{d_now.get('version')} now"
            )
    then_pk, now_pk = env_then.get("packages", {}), env_now.get("packages", {})
    changed = [
        f"{name} {then_pk.get(name)} -> {now_pk.get(name)}"
        for name in sorted(set(then_pk) | set(now_pk))
        if then_pk.get(name) != now_pk.get(name) and name != "studyval"
    ]
    if changed:
        causes.append("package versions changed: " + ", ".join(changed))
    for key in ("python", "implementation", "machine"):
        if env_then.get(key) != env_now.get(key):
            causes.append(f"{key} changed: {env_then.get(key)} -> {env_now.get(key)}")
    if recomputed is not None:
        if manifest.get("studyval_version") != recomputed.get("studyval_version"):
            causes.append(
                f"studyval version changed: {manifest.get('studyval_version')} -> "
                f"{recomputed.get('studyval_version')}"
            )
        g_then, g_now = manifest.get("git", {}), recomputed.get("git", {})
        if g_then.get("commit") != g_now.get("commit"):
            causes.append(
                f"studyval source changed: commit {g_then.get('commit')} -> {g_now.get('commit')}"
            )
        elif g_now.get("dirty") and not g_then.get("dirty"):
            causes.append(
                "studyval source has uncommitted changes now (clean when the bundle was made)"
            )
    return causes


def _seed_edit(
    manifest: Mapping[str, Any],
    *,
    slug: str,
    plan_seed: int | None,
    plan_changed: bool,
    outputs_reproduce: bool,
) -> tuple[str | None, str | None]:
    """``(manifest edit, cause)`` for a manifest ``seed`` other than the plan's (or Nones)."""
    said = manifest.get("seed")
    if plan_seed is None or said == plan_seed:
        return None, None
    if plan_changed:
        # the plan (and with it maybe its seed) changed since the run: a provenance difference
        return None, (
            f"seed changed: the bundle was made with seed {said}, the current plan of {slug} "
            f"says {plan_seed} (the recomputation used {plan_seed})"
        )
    head = (
        f"manifest field 'seed' says {said}, the plan's seed is {plan_seed} and the "
        f"recomputation used it (verify always recomputes with the plan's pre-registered seed)"
    )
    if outputs_reproduce:
        return (
            f"{head}: the bundle's tables and figures reproduce with seed {plan_seed}, so the "
            "bundle was made with the plan's seed and the manifest's seed was edited after the run",
            None,
        )
    return (
        f"{head}: the bundle was made with another seed than the plan's, or its manifest's "
        "seed was edited after the run",
        None,
    )


def _model_edits(
    manifest: Mapping[str, Any],
    recomputed: Mapping[str, Any],
    *,
    predictions: Path | None,
    predictions_match: bool,
) -> list[str]:
    """Disagreements between the manifest's ``models`` and the recomputation's."""

    def versions(m: Mapping[str, Any]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for entry in m.get("models", []):
            out.setdefault(str(entry.get("model")), []).append(str(entry.get("model_version")))
        return out

    then, now = versions(manifest), versions(recomputed)
    if predictions is not None:
        source = f"the given prediction table {Path(predictions).name}"
        why = (
            "its SHA-256 matches the manifest's inputs.predictions, so the manifest was edited "
            "after the run"
            if predictions_match
            else "it is not the prediction table the bundle was computed from (its SHA-256 "
            "differs from the manifest's inputs.predictions)"
        )
    else:
        source = "the recomputation from the given inputs"
        why = "the manifest's models do not match the models the bundle's inputs give"
    edits = []
    for model in sorted(set(then) | set(now)):
        a, b = then.get(model), now.get(model)
        if a == b:
            continue
        if a is None:
            edits.append(
                f"manifest field 'models' does not list model {model!r}, which {source} has "
                f"with model_version {', '.join(b or [])}; {why}"
            )
        elif b is None:
            edits.append(
                f"manifest field 'models' lists model {model!r} with model_version "
                f"{', '.join(a)}, which {source} does not have; {why}"
            )
        else:
            edits.append(
                f"manifest field 'models': model {model!r} has model_version {', '.join(a)} in "
                f"the manifest but {', '.join(b)} in {source}; {why}"
            )
    return edits


def _study_copies(bundle: Path, manifest: Mapping[str, Any]) -> tuple[Path | None, Path | None]:
    """The bundle's ``study/plan.yml`` and ``study/dictionary.yml`` when the manifest records them as they are."""
    from studyval.bundle import file_sha256
    from studyval.study_files import DICTIONARY_COPY, PLAN_COPY

    outputs = manifest.get("outputs")
    if not isinstance(outputs, Mapping):
        return None, None
    found = []
    for rel in (PLAN_COPY, DICTIONARY_COPY):
        path = bundle / rel
        intact = path.is_file() and not path.is_symlink() and outputs.get(rel) == file_sha256(path)
        found.append(path if intact else None)
    if found[0] is None:
        return None, None
    return found[0], found[1]


def _kind_name(rel: str) -> tuple[str, str]:
    top, _, rest = rel.partition("/")
    kind = {"tables": "table", "figures": "figure", "study": "study"}.get(top, top)
    return kind, rest.rsplit(".", 1)[0]


def _hashes(root: Path) -> dict[str, str]:
    from studyval.bundle import file_sha256

    out: dict[str, str] = {}
    for sub in ("tables", "figures", "study"):
        base = root / sub
        if base.is_dir():
            for p in sorted(base.rglob("*")):
                if p.is_file():
                    out[p.relative_to(root).as_posix()] = file_sha256(p)
    return out


def _status(
    want: str | None, have: str | None, new: str | None, *, recomputed: bool
) -> tuple[str, str | None]:
    """Status of one file, and a manifest edit in words where the manifest was edited."""
    if want is None:
        if have is None:
            return UNEXPECTED, None
        if recomputed and new == have:
            return MANIFEST_EDITED, (
                f"lacks an entry for it, yet the bundle has it and the recomputation writes it "
                f"byte for byte (SHA-256 {_short(have)}): the entry was removed from the manifest"
            )
        return ADDED, None
    if have is None:
        if recomputed and new is None:
            return MANIFEST_EDITED, (
                f"lists it with SHA-256 {_short(want)}, yet neither the bundle nor the "
                "recomputation has the file: the entry was added to the manifest"
            )
        return MISSING, None
    if have != want:
        if recomputed and new == have:
            return MANIFEST_EDITED, (
                f"records SHA-256 {_short(want)}, but the bundle's file and its recomputation "
                f"both have {_short(have)}: the file is intact, the manifest was edited"
            )
        return MODIFIED, None
    if not recomputed or new is None:
        return NOT_RECOMPUTED, None
    if new != want:
        return DIFFERS, None
    return REPRODUCED, None


def compare_bundles(
    bundle: str | Path,
    recomputed: str | Path | None,
    *,
    clinical: str | Path | None,
    predictions: str | Path | None = None,
    error: str | None = None,
) -> VerifyReport:
    """Compare ``bundle`` with a recomputation of it (``recomputed``, a bundle directory).

    :func:`verify_bundle` recomputes and then calls this; ``recomputed=None``
    (with ``error``) reports a recomputation that failed.

    Parameters
    ----------
    bundle : path
        The bundle under verification.
    recomputed : path or None
        A bundle recomputed from the given inputs with the plan's seed.
    clinical, predictions : path or None
        The inputs given for the recomputation (their SHA-256 is compared with
        the manifest's ``inputs``).
    error : str, optional
        Why the recomputation failed.

    Returns
    -------
    VerifyReport
        File by file statuses (tables and figures against the recomputation,
        ``imaging/`` files against the manifest's ``imaging``), manifest edits
        and likely causes.

    Raises
    ------
    ManifestError
        The bundle's manifest lacks a required field (see :func:`check_manifest`).

    """
    from studyval.bundle import MANIFEST, read_manifest

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    check_manifest(manifest, bundle / MANIFEST)
    slug, slug_edit = _protocol_slug(manifest, bundle)
    recorded: dict[str, str] = dict(manifest["outputs"])
    present = _hashes(bundle)
    new_manifest = None
    again: dict[str, str] = {}
    if recomputed is not None:
        recomputed = Path(recomputed)
        new_manifest = read_manifest(recomputed)
        again = _hashes(recomputed)
    checks: list[OutputCheck] = []
    edits: list[str] = []
    for rel in sorted(set(recorded) | set(present) | set(again)):
        want, have, new = recorded.get(rel), present.get(rel), again.get(rel)
        status, edit = _status(want, have, new, recomputed=recomputed is not None)
        if edit is not None:
            edits.append(f"manifest field 'outputs', entry {rel!r}, {edit}")
        kind, name = _kind_name(rel)
        checks.append(OutputCheck(rel, kind, name, status, want, have, new))
    # every file the recomputation writes is the bundle's, byte for byte (entries edited in the
    # manifest and files added to the bundle are named on their own)
    outputs_match = (
        recomputed is not None
        and error is None
        and any(c.status == REPRODUCED for c in checks)
        and all(c.status in (REPRODUCED, MANIFEST_EDITED, ADDED) for c in checks)
    )
    checks.extend(_imaging_checks(manifest, bundle, recomputed))
    given = {"clinical": clinical, "predictions": predictions}
    inputs = {k: (None if v is None else Path(v)) for k, v in given.items()}
    input_edits, edited_roles = _input_edits(manifest, inputs, outputs_match=outputs_match)
    record_edits, edited_fields = _record_edits(
        manifest, new_manifest, slug=slug, outputs_match=outputs_match
    )
    edited = frozenset({f"inputs.{r}" for r in edited_roles} | edited_fields)
    causes = _causes(manifest, slug=slug, inputs=inputs, recomputed=new_manifest, edited=edited)
    notes: list[str] = []
    if any(c.status == ADDED for c in checks):
        causes.insert(
            0,
            "files were added to the bundle after it was written (not in its manifest): "
            + ", ".join(c.path for c in checks if c.status == ADDED),
        )
    if any(c.status == MODIFIED for c in checks):
        causes.insert(
            0,
            "the bundle was modified after it was written: "
            + ", ".join(c.path for c in checks if c.status == MODIFIED)
            + " no longer match(es) the bundle's own manifest",
        )
    if any(c.status == MISSING for c in checks):
        causes.insert(
            0,
            "files listed in the manifest are missing from the bundle: "
            + ", ".join(c.path for c in checks if c.status == MISSING),
        )
    # the seed: the recomputation used the plan's; one that differs is an edit of the manifest
    # unless the plan itself changed since the run
    if new_manifest is not None and isinstance(new_manifest.get("seed"), int):
        plan_seed: int | None = new_manifest["seed"]
    else:
        from studyval.plan import load_plan

        try:
            plan_seed = getattr(load_plan(slug), "seed", None)
        except StudyvalError:
            plan_seed = None
    seed_edit, seed_cause = _seed_edit(
        manifest,
        slug=slug,
        plan_seed=plan_seed,
        plan_changed=_plan_sha256(slug) != manifest["protocol"].get("plan_sha256")
        and "protocol.plan_sha256" not in edited,
        # files edited, added or removed after the run are named on their own; the seed shows
        # in files the bundle holds as written that the recomputation writes otherwise
        outputs_reproduce=recomputed is not None
        and any(c.status == REPRODUCED for c in checks)
        and not any(c.status in (DIFFERS, NOT_RECOMPUTED) for c in checks),
    )
    if seed_edit is not None:
        edits.insert(0, seed_edit)
    if slug_edit is not None:
        edits.insert(0, slug_edit)
    if seed_cause is not None:
        causes.append(seed_cause)
    if new_manifest is not None:
        edits.extend(
            _model_edits(
                manifest,
                new_manifest,
                predictions=inputs["predictions"],
                predictions_match=_input_matches(manifest, "predictions", inputs["predictions"]),
            )
        )
    edits.extend(input_edits)
    edits.extend(record_edits)
    manifest_same = None
    if recomputed is not None:
        manifest_same = (bundle / MANIFEST).read_bytes() == (recomputed / MANIFEST).read_bytes()
        if not manifest_same:
            flat_a, flat_b = _flatten(manifest), _flatten(new_manifest)
            keys = sorted(k for k in set(flat_a) | set(flat_b) if flat_a.get(k) != flat_b.get(k))
            if keys:
                shown = ", ".join(keys[:8]) + (
                    f" and {len(keys) - 8} more" if len(keys) > 8 else ""
                )
                notes.append(f"manifest fields that differ: {shown}")
    return VerifyReport(
        bundle=bundle,
        slug=slug,
        outputs=tuple(checks),
        causes=tuple(causes),
        error=error,
        manifest_reproduced=manifest_same,
        notes=tuple(notes),
        manifest_edits=tuple(edits),
    )


def verify_bundle(
    bundle: str | Path,
    *,
    clinical: str | Path,
    predictions: str | Path | None = None,
    engine: str | None = None,
    workdir: str | Path | None = None,
) -> VerifyReport:
    """Recompute ``bundle`` from the given inputs and the bundled plan; compare byte for byte.

    The recomputation always uses the seed of the protocol's bundled plan (the
    pre-registered one), never the seed the manifest states: a manifest whose
    ``seed`` differs from the plan's (the plan being unchanged) fails the
    verification as an edited manifest, named with both values. Likewise a
    manifest whose ``models`` (name and ``model_version``, the SHA-256 of the
    weights) disagree with those the recomputation takes from the given
    prediction table, or whose ``outputs`` hash of a file disagrees with both
    the bundle's file and its recomputation, fails as an edited manifest; so do
    an edited ``protocol.slug``, ``inputs`` record, plan or dictionary record
    (see the module docstring). ``environment`` differences are only listed.

    Every file under the bundle's ``imaging/`` is checked against the
    manifest's ``imaging`` hashes before recomputing; an edited, added or
    missing one fails the verification, and the recomputation is then made
    without ``imaging/``.

    Parameters
    ----------
    bundle : path
        A results bundle (it has a ``manifest.json``).
    clinical, predictions : path
        The input tables the bundle is said to come from (only read).
    engine : {"auto", "quarto", "jupyter"}, optional
        If given, the report of the recomputation is also rendered (to check
        that it still renders; ``report/`` is not hashed, so it is not compared).
        By default nothing is rendered.
    workdir : path, optional
        Keep the recomputed bundle at ``workdir/recomputed`` (a previous
        bundle there is replaced) instead of in a temporary directory that is
        removed afterwards.

    Returns
    -------
    VerifyReport
        :attr:`VerifyReport.ok` is True when every table and figure reproduces,
        every imaging file is as recorded and no manifest field was found edited.

    Raises
    ------
    StudyvalError
        ``bundle`` is not a results bundle, or its protocol is unknown.
    ManifestError
        The manifest lacks a required field (checked before recomputing).

    """
    from studyval.bundle import MANIFEST, read_manifest
    from studyval.pipeline import run_protocol
    from studyval.protocol import protocol

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    check_manifest(manifest, bundle / MANIFEST)
    slug, _ = _protocol_slug(manifest, bundle)  # an edited protocol.slug is named by compare
    study_type = (manifest.get("protocol") or {}).get("study_type")
    protocol(slug, study_type if isinstance(study_type, str) else None)
    # imaging/ is copied into a bundle, not recomputed: checked against the manifest first, and
    # handed to the recomputation only when intact (an edited file must not be taken as input)
    imaging_ok = _imaging_intact(bundle)
    has_imaging = (bundle / "imaging").is_dir() and not (bundle / "imaging").is_symlink()
    # the plan and dictionary the run used, as the bundle keeps them (study/): used when the
    # manifest records them unchanged; otherwise (an edited copy, a bundle written before the
    # copies existed) the protocol's shipped plan, and the copies are reported as modified
    plan_copy, dictionary_copy = _study_copies(bundle, manifest)

    def recompute(root: Path) -> VerifyReport:
        out = root / "recomputed"
        try:
            run_protocol(
                slug,
                clinical=Path(clinical),
                predictions=None if predictions is None else Path(predictions),
                out=out,
                render=engine is not None,
                engine=engine or "auto",
                seed=None,  # the plan's seed, not the manifest's (see the docstring)
                # the imaging chain's outputs are copied into the bundle: the bundle's copy,
                # when it is the one the manifest records
                imaging=bundle / "imaging" if has_imaging and imaging_ok else None,
                plan=plan_copy,
                dictionary=dictionary_copy,
            )
        except StudyvalError as exc:
            report = compare_bundles(
                bundle, None, clinical=clinical, predictions=predictions, error=str(exc)
            )
        else:
            report = compare_bundles(bundle, out, clinical=clinical, predictions=predictions)
        if not imaging_ok:
            report = replace(
                report,
                notes=(
                    *report.notes,
                    "the bundle's imaging/ is not the one its manifest records: the "
                    "recomputation was made without it (tables and figures do not depend on it)",
                ),
            )
        return report

    if workdir is not None:
        root = Path(workdir)
        root.mkdir(parents=True, exist_ok=True)
        return recompute(root)
    with tempfile.TemporaryDirectory(prefix="studyval-verify-") as tmp:
        return recompute(Path(tmp))
