"""Re-verify a results bundle: recompute it from its inputs and compare byte for byte.

A reviewer who receives a bundle and the two input tables runs::

    studyval verify BUNDLE --clinical C.csv --predictions P.csv

:func:`verify_bundle` recomputes the bundle (without rendering) into a
temporary directory from the given inputs and the protocol's bundled plan,
then reports table by table and figure by figure whether each output
reproduces the SHA-256 recorded in the bundle's manifest. When something does
not reproduce it names the likely cause: an input whose SHA-256 differs from
the manifest's ``inputs``, a changed plan (``plan_sha256``), another data
dictionary version, other package or Python versions (``environment``), or
another studyval version or commit. A file of the bundle that no longer
matches its own manifest is reported as modified after the run.
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

__all__ = ["OutputCheck", "VerifyReport", "compare_bundles", "verify", "verify_bundle"]

#: Status of one output file.
REPRODUCED = "reproduced"
DIFFERS = "differs"  # recomputed bytes differ from the manifest
MODIFIED = "modified in bundle"  # the bundle's file differs from its own manifest
MISSING = "missing from bundle"  # in the manifest, not in the bundle
NOT_RECOMPUTED = "not recomputed"  # in the manifest, the recomputation did not write it
UNEXPECTED = "not in manifest"  # the recomputation wrote it, the manifest does not list it


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
        ``reproduced``, ``differs``, ``modified in bundle``, ``missing from
        bundle``, ``not recomputed`` or ``not in manifest``.
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
        One per file under ``tables/`` and ``figures/`` (manifest or recomputed).
    causes : tuple of str
        Differences between the bundle's provenance and this recomputation,
        most likely cause first (changed inputs, plan, dictionary, packages...).
    error : str or None
        Why the recomputation failed, if it did.
    manifest_reproduced : bool or None
        Whether the recomputed manifest equals the bundle's byte for byte.

    """

    bundle: Path
    slug: str
    outputs: tuple[OutputCheck, ...]
    causes: tuple[str, ...] = ()
    error: str | None = None
    manifest_reproduced: bool | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """True when every table and figure reproduces byte for byte."""
        return self.error is None and bool(self.outputs) and all(o.ok for o in self.outputs)

    @property
    def failed(self) -> tuple[OutputCheck, ...]:
        """The outputs that do not reproduce."""
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
        for kind, name, formats in items:
            statuses = set(formats.values())
            if statuses == {REPRODUCED}:
                verdict = "reproduced"
            else:
                verdict = "NOT REPRODUCED"
            detail = ", ".join(f"{fmt}: {st}" for fmt, st in sorted(formats.items()))
            lines.append(f"  {kind:<6} {name:<{width}}  {verdict:<14}  ({detail})")
        n_items = len(items)
        n_bad = sum(1 for _, _, f in items if set(f.values()) != {REPRODUCED})
        if self.manifest_reproduced is not None:
            lines.append(
                "  manifest "
                + ("reproduced" if self.manifest_reproduced else "differs (see causes)")
            )
        lines.extend(f"  note: {n}" for n in self.notes)
        if self.ok:
            lines.append(f"OK: all {n_items} tables and figures reproduce byte for byte")
        else:
            lines.append(f"FAILED: {n_bad} of {n_items} tables and figures do not reproduce")
        if self.causes and self.ok:
            lines.append("provenance differences (the outputs reproduce nonetheless):")
            lines.extend(f"  - {c}" for c in self.causes)
        elif self.causes:
            lines.append("likely causes:")
            lines.extend(f"  - {c}" for c in self.causes)
        elif not self.ok:
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


def _causes(
    manifest: Mapping[str, Any],
    *,
    slug: str,
    inputs: Mapping[str, Path | None],
    recomputed: Mapping[str, Any] | None,
) -> list[str]:
    """Provenance differences, most likely cause of a difference first."""
    from studyval.bundle import environment_info, file_sha256
    from studyval.plan import plan_path

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
        digest = file_sha256(path)
        if digest != rec.get("sha256"):
            causes.append(
                f"input {kind} changed: {Path(path).name} has SHA-256 {digest[:12]}..., the bundle "
                f"was computed from {rec.get('file')} with {str(rec.get('sha256'))[:12]}... "
                f"({rec.get('bytes')} bytes recorded, {Path(path).stat().st_size} now)"
            )
    proto = manifest.get("protocol", {})
    try:
        plan_now = file_sha256(plan_path(slug))
    except StudyvalError:
        plan_now = None
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
        if manifest.get("seed") != recomputed.get("seed"):
            causes.append(f"seed changed: {manifest.get('seed')} -> {recomputed.get('seed')}")
    return causes


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
    """
    from studyval.bundle import MANIFEST, read_manifest

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    slug = manifest.get("protocol", {}).get("slug", "?")
    recorded: dict[str, str] = dict(manifest.get("outputs", {}))
    present = _hashes(bundle)
    new_manifest = None
    again: dict[str, str] = {}
    if recomputed is not None:
        recomputed = Path(recomputed)
        new_manifest = read_manifest(recomputed)
        again = _hashes(recomputed)
    checks: list[OutputCheck] = []
    for rel in sorted(set(recorded) | set(present) | set(again)):
        want, have, new = recorded.get(rel), present.get(rel), again.get(rel)
        if want is None:
            status = UNEXPECTED
        elif have is None:
            status = MISSING
        elif have != want:
            status = MODIFIED
        elif recomputed is None or new is None:
            status = NOT_RECOMPUTED
        elif new != want:
            status = DIFFERS
        else:
            status = REPRODUCED
        kind, name = _kind_name(rel)
        checks.append(OutputCheck(rel, kind, name, status, want, have, new))
    inputs = {"clinical": clinical, "predictions": predictions}
    inputs = {k: (None if v is None else Path(v)) for k, v in inputs.items()}
    causes = _causes(manifest, slug=slug, inputs=inputs, recomputed=new_manifest)
    notes: list[str] = []
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
        :attr:`VerifyReport.ok` is True when every table and figure reproduces.

    Raises
    ------
    StudyvalError
        ``bundle`` is not a results bundle, or its protocol is unknown.

    """
    from studyval.bundle import MANIFEST, read_manifest
    from studyval.pipeline import protocol_module, run_protocol

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    slug = manifest.get("protocol", {}).get("slug")
    if not slug:
        raise StudyvalError(f"{bundle / MANIFEST} names no protocol slug")
    protocol_module(slug)
    seed = manifest.get("seed")

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
                seed=seed,
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

    Exit 0 when everything reproduces, 1 otherwise (the report names what
    differs and the likely cause: a changed input, plan or package version).
    """
    import sys

    try:
        report = verify_bundle(bundle, clinical=clinical, predictions=predictions, engine=engine)
    except StudyvalError as exc:
        click.echo(f"studyval: error: {exc}", err=True)
        sys.exit(1)
    click.echo(report.format())
    sys.exit(0 if report.ok else 1)
