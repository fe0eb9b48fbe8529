"""Re-verify a results bundle: recompute it from its inputs and compare byte for byte.

A reviewer who receives a bundle and the two input tables runs::

    studyval verify BUNDLE --clinical C.csv --predictions P.csv

:func:`verify_bundle` first checks that the bundle's manifest holds the fields
every studyval manifest records (``protocol``, ``seed``, ``inputs``,
``models``, ``outputs``, ``environment``, ``git``, ``dictionary``; a missing or
malformed one is an error naming the field). It then recomputes the bundle
(without rendering) into a temporary directory from the given inputs and the
protocol's bundled plan, **with the plan's pre-registered seed** (not the seed
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

Manifest fields that contradict the recomputation are reported as the manifest
having been edited, and fail the verification even when every output
reproduces: a ``seed`` other than the plan's (when the plan is unchanged), and
``models`` entries (model name and ``model_version``, the SHA-256 of its
weights) that differ from those the recomputation takes from the given
prediction table. When outputs do not reproduce for other reasons, the likely
cause is named: an input whose SHA-256 differs from the manifest's ``inputs``,
a changed plan (``plan_sha256``), another data dictionary version, other
package or Python versions (``environment``), or another studyval version or
commit.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

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
    "verify",
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
        object, or an ``outputs`` entry is not a SHA-256 string. Every problem
        found is named.

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
    """One table or figure file of the bundle.

    Attributes
    ----------
    path : str
        Path inside the bundle, e.g. ``tables/auc.parquet``.
    kind : {"table", "figure"}
        What it is.
    name : str
        The table or figure name (``auc``, ``roc_external``).
    status : str
        ``reproduced``, ``differs``, ``modified in bundle``, ``manifest hash
        edited``, ``missing from bundle``, ``not recomputed``, ``not in
        manifest: added after the run`` or ``not in manifest (written by the
        recomputation only)``.
    manifest_sha256, bundle_sha256, recomputed_sha256 : str or None
        The three hashes compared (None where the file is absent).

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
        """True when the file reproduces."""
        return self.status == REPRODUCED


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
        recomputed).
    causes : tuple of str
        Differences between the bundle's provenance and this recomputation,
        most likely cause first (changed inputs, plan, dictionary, packages...).
    error : str or None
        Why the recomputation failed, if it did.
    manifest_reproduced : bool or None
        Whether the recomputed manifest equals the bundle's byte for byte.
    notes : tuple of str
        Information that does not by itself fail the verification.
    manifest_edits : tuple of str
        Manifest fields found edited after the run (``seed``, ``models``,
        ``outputs`` entries), each with the recorded and the recomputed value.
        Any of them fails the verification, even when every output reproduces.

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
        """True when every table and figure reproduces and the manifest is as written."""
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
        order = {"table": 0, "figure": 1}
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
        n_bad = 0
        for kind, name, formats in items:
            statuses = set(formats.values())
            if statuses == {REPRODUCED}:
                verdict = "reproduced"
            elif statuses <= {REPRODUCED, MANIFEST_EDITED}:
                verdict = "MANIFEST EDITED"
            else:
                verdict = "NOT REPRODUCED"
                n_bad += 1
            detail = ", ".join(f"{fmt}: {st}" for fmt, st in sorted(formats.items()))
            lines.append(f"  {kind:<6} {name:<{width}}  {verdict:<15}  ({detail})")
        n_items = len(items)
        if self.manifest_reproduced is not None:
            lines.append(
                "  manifest "
                + ("reproduced" if self.manifest_reproduced else "differs (see causes)")
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.ok:
            lines.append(f"OK: all {n_items} tables and figures reproduce byte for byte")
        else:
            if n_bad or not self.manifest_edits:
                lines.append(f"FAILED: {n_bad} of {n_items} tables and figures do not reproduce")
            if self.manifest_edits:
                also = (
                    f"all {n_items} tables and figures reproduce"
                    if n_bad == 0 and self.error is None
                    else "see also above"
                )
                lines.append(f"FAILED: the bundle's manifest was edited after the run ({also}):")
                lines.extend(f"  - {e}" for e in self.manifest_edits)
        if self.causes and self.ok:
            lines.append("provenance differences (the outputs reproduce nonetheless):")
            lines.extend(f"  - {c}" for c in self.causes)
        elif self.causes:
            lines.append("likely causes:")
            lines.extend(f"  - {c}" for c in self.causes)
        elif not self.ok and not self.manifest_edits and self.error is None:
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


def _causes(
    manifest: Mapping[str, Any],
    *,
    slug: str,
    inputs: Mapping[str, Path | None],
    recomputed: Mapping[str, Any] | None,
) -> list[str]:
    """Provenance differences, most likely cause of a difference first."""
    from studyval.bundle import environment_info, file_sha256

    causes: list[str] = []
    recorded_inputs = manifest.get("inputs", {})
    for kind, path in inputs.items():
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
    plan_now = _plan_sha256(slug)
    if plan_now != proto.get("plan_sha256"):
        causes.append(
            f"analysis plan changed: reports/{slug}/plan.yml has SHA-256 {str(plan_now)[:12]}..., "
            f"the bundle recorded {str(proto.get('plan_sha256'))[:12]}... "
            f"(plan_version {proto.get('plan_version')})"
        )
    env_then = manifest.get("environment", {})
    env_now = environment_info() if recomputed is None else recomputed.get("environment", {})
    if recomputed is not None:
        d_then, d_now = manifest.get("dictionary", {}), recomputed.get("dictionary", {})
        if d_then.get("version") != d_now.get("version"):
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


def _kind_name(rel: str) -> tuple[str, str]:
    top, _, rest = rel.partition("/")
    kind = {"tables": "table", "figures": "figure"}.get(top, top)
    return kind, rest.rsplit(".", 1)[0]


def _hashes(root: Path) -> dict[str, str]:
    from studyval.bundle import file_sha256

    out: dict[str, str] = {}
    for sub in ("tables", "figures"):
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
        File by file statuses, manifest edits and likely causes.

    Raises
    ------
    ManifestError
        The bundle's manifest lacks a required field (see :func:`check_manifest`).

    """
    from studyval.bundle import MANIFEST, read_manifest

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    check_manifest(manifest, bundle / MANIFEST)
    slug = manifest["protocol"]["slug"]
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
    given = {"clinical": clinical, "predictions": predictions}
    inputs = {k: (None if v is None else Path(v)) for k, v in given.items()}
    causes = _causes(manifest, slug=slug, inputs=inputs, recomputed=new_manifest)
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
        plan_changed=_plan_sha256(slug) != manifest["protocol"].get("plan_sha256"),
        # files edited, added or removed after the run are named on their own; the seed shows
        # in files the bundle holds as written that the recomputation writes otherwise
        outputs_reproduce=recomputed is not None
        and any(c.status == REPRODUCED for c in checks)
        and not any(c.status in (DIFFERS, NOT_RECOMPUTED) for c in checks),
    )
    if seed_edit is not None:
        edits.insert(0, seed_edit)
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
    the bundle's file and its recomputation, fails as an edited manifest.

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
        :attr:`VerifyReport.ok` is True when every table and figure reproduces
        and no manifest field was found edited.

    Raises
    ------
    StudyvalError
        ``bundle`` is not a results bundle, or its protocol is unknown.
    ManifestError
        The manifest lacks a required field (checked before recomputing).

    """
    from studyval.bundle import MANIFEST, read_manifest
    from studyval.pipeline import protocol_module, run_protocol

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    check_manifest(manifest, bundle / MANIFEST)
    slug = manifest["protocol"]["slug"]
    protocol_module(slug)

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
                # the imaging chain's outputs are inputs of the analysis: the bundle's copy
                imaging=bundle / "imaging" if (bundle / "imaging").is_dir() else None,
            )
        except StudyvalError as exc:
            return compare_bundles(
                bundle, None, clinical=clinical, predictions=predictions, error=str(exc)
            )
        return compare_bundles(bundle, out, clinical=clinical, predictions=predictions)

    if workdir is not None:
        root = Path(workdir)
        root.mkdir(parents=True, exist_ok=True)
        return recompute(root)
    with tempfile.TemporaryDirectory(prefix="studyval-verify-") as tmp:
        return recompute(Path(tmp))


@click.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--clinical", "-c", type=click.Path(path_type=Path), required=True, help="Clinical table."
)
@click.option(
    "--predictions", "-p", type=click.Path(path_type=Path), default=None, help="Prediction table."
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "quarto", "jupyter"]),
    default=None,
    help="Also render the recomputed report (not compared: report/ is not hashed).",
)
def verify(bundle: Path, clinical: Path, predictions: Path | None, engine: str | None) -> None:
    """Recompute results BUNDLE from its inputs and check every table and figure byte for byte.

    The recomputation uses the plan's seed. Exit 0 when everything reproduces
    and the manifest is as written; 1 otherwise: the report names what differs
    and the likely cause (a changed input, plan or package version), or the
    manifest field that was edited after the run (seed, models, an output's
    hash) with the recorded and the recomputed value. A manifest missing a
    required field is an error (exit 1).
    """
    import sys

    try:
        report = verify_bundle(bundle, clinical=clinical, predictions=predictions, engine=engine)
    except StudyvalError as exc:
        click.echo(f"studyval: error: {exc}", err=True)
        sys.exit(1)
    click.echo(report.format())
    sys.exit(0 if report.ok else 1)
