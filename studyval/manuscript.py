"""Manuscript figures from a results bundle: ``studyval figures SLUG --out DIR``.

Every figure of a protocol, drawn from the bundle's tables by the protocol's
``figure_specs(tables, plan)`` (the same functions that drew the bundle's own
figures, so a manuscript figure never disagrees with the report), written at
journal column widths (single 85 mm, double 170 mm) as vector PDF and SVG and
as 300 and 600 dpi PNG and TIFF, with a caption file::

    DIR/
      captions.md                     Figure 1. caption ... (files listed under each)
      captions.json                   protocol, plan, data origin, and per figure:
                                      number, name, caption, column, files by width

A bundle whose inputs are not study data (synthetic, phantom imaging chain,
public example data, or a manifest that does not record its origin) says so
at the top of ``captions.md``, at the end of every caption there, and in
``captions.json`` (``data_origin``, and each figure's ``data_origin_note``; its
``caption`` is the bundle's own, as drawn).
      <name>_85mm.pdf                 vector, TrueType fonts embedded
      <name>_85mm.svg                 vector, text as paths
      <name>_85mm_300dpi.png          and _600dpi.png
      <name>_85mm_300dpi.tiff         and _600dpi.tiff (RGB, LZW)
      <name>_170mm.*                  the same at double-column width

A single-column figure is written at 85 and 170 mm; a double-column one
(multi-panel, forest plot, flow diagram) at 170 mm only, since squeezing it
into 85 mm would clip its text.

The bundle is checked before anything is drawn: its manifest must name the
protocol asked for, the protocol's analysis plan must be the one the bundle
was made with (same SHA-256), every table the manifest lists must be present
and match the SHA-256 the manifest recorded, and every figure the bundle holds
must be drawn again: a bundle lacking a table that a figure needs is an error
naming the bundle and the table (a figure is never silently left out). Output
is written into a hidden temporary sibling of ``DIR`` and moved into place only
when complete; on any error nothing is left at ``DIR``. Every file's bytes are deterministic.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from studyval.bundle import MANIFEST, _remove_stale, file_sha256, read_manifest, swap_into_place
from studyval.errors import StudyvalError
from studyval.figures.spec import COLUMN_MM, FigureSpec, check_specs
from studyval.figures.style import png_and_pixels, png_bytes, save_as, tiff_from_pixels
from studyval.protocol import StudyProtocol

__all__ = [
    "DEFAULT_DPI",
    "FORMATS",
    "WIDTHS",
    "BundleMismatchError",
    "ManuscriptError",
    "MissingTableError",
    "default_bundle",
    "figure_files",
    "write_manuscript_figures",
]

#: File formats written; ``png`` and ``tiff`` at every resolution in ``dpi``.
FORMATS: tuple[str, ...] = ("pdf", "svg", "png", "tiff")
#: Widths: a journal column by name, or ``"column"`` for each figure's own column.
WIDTHS: tuple[str, ...] = ("single", "double", "column")
DEFAULT_DPI: tuple[int, ...] = (300, 600)
CAPTIONS_MD = "captions.md"
CAPTIONS_JSON = "captions.json"
_GENERATOR = "studyval figures"


class ManuscriptError(StudyvalError):
    """Manuscript figures cannot be written (bad option, unreadable bundle, protocol without figures)."""


class BundleMismatchError(ManuscriptError):
    """The bundle does not belong to this protocol or plan: its figures would not match the report."""


class MissingTableError(ManuscriptError):
    """The bundle lacks a table that its manifest lists or that a figure needs."""


def default_bundle(slug: str) -> Path:
    """Where ``studyval demo`` puts the bundle of protocol ``slug``."""
    return Path("results") / "demo" / slug / "bundle"


def _closed(values: Sequence[Any], allowed: Sequence[Any], what: str) -> list[Any]:
    if isinstance(values, str | int):
        values = [values]
    values = list(values)
    if not values:
        raise ManuscriptError(f"{what}: give at least one of {', '.join(map(str, allowed))}")
    for v in values:
        if v not in allowed:
            close = difflib.get_close_matches(str(v), [str(a) for a in allowed], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ManuscriptError(
                f"{what} {v!r} is not one of {', '.join(map(str, allowed))}{hint}"
            )
    return list(dict.fromkeys(values))


def _check_dpi(dpi: Sequence[int]) -> list[int]:
    if isinstance(dpi, int):
        dpi = [dpi]
    out = []
    for d in dpi:
        if isinstance(d, bool) or not isinstance(d, int) or not 72 <= d <= 2400:
            raise ManuscriptError(f"dpi must be whole numbers from 72 to 2400, got {d!r}")
        out.append(d)
    if not out:
        raise ManuscriptError("dpi: give at least one resolution")
    return list(dict.fromkeys(out))


def figure_files(
    name: str,
    width_mm: float,
    *,
    formats: Sequence[str] = FORMATS,
    dpi: Sequence[int] = DEFAULT_DPI,
) -> list[tuple[str, int | None]]:
    """File names of figure ``name`` at ``width_mm``: ``[(file name, dpi or None), ...]``."""
    stem = f"{name}_{width_mm:g}mm"
    files: list[tuple[str, int | None]] = []
    for fmt in formats:
        if fmt in ("pdf", "svg"):
            files.append((f"{stem}.{fmt}", None))
        else:
            files.extend((f"{stem}_{d}dpi.{fmt}", d) for d in dpi)
    return files


def _read_tables(bundle: Path, manifest: dict[str, Any]) -> _Tables:
    """Every table of the bundle, each checked against the SHA-256 in the manifest."""
    tdir = bundle / "tables"
    paths = sorted(tdir.glob("*.parquet")) if tdir.is_dir() else []
    if not paths:
        raise ManuscriptError(f"bundle {bundle} has no tables (tables/*.parquet missing)")
    recorded = manifest.get("outputs", {})
    if not isinstance(recorded, dict):
        raise ManuscriptError(f"{bundle / MANIFEST}: field 'outputs' is missing or not an object")
    listed = sorted(
        rel[len("tables/") : -len(".parquet")]
        for rel in recorded
        if rel.startswith("tables/") and rel.endswith(".parquet") and "/" not in rel[7:]
    )
    missing = [name for name in listed if not (tdir / f"{name}.parquet").is_file()]
    if missing:
        raise MissingTableError(
            f"bundle {bundle} lacks table{'s' if len(missing) > 1 else ''} "
            + ", ".join(repr(m) for m in missing)
            + f" (listed in its {MANIFEST}, "
            + ", ".join(f"tables/{m}.parquet" for m in missing)
            + " missing); the figures are drawn from every table the bundle was made with. "
            "Run the protocol again (studyval run) or check the bundle with studyval verify"
        )
    changed = []
    for p in paths:
        rel = f"tables/{p.name}"
        if rel not in recorded or recorded[rel] != file_sha256(p):
            changed.append(rel)
    if changed:
        raise BundleMismatchError(
            f"bundle {bundle}: {', '.join(changed)} not as recorded in its {MANIFEST} (edited or "
            "replaced after the bundle was made); figures drawn from it would not match the report. "
            "Run the protocol again (studyval run) or check the bundle with studyval verify"
        )
    return _Tables(bundle, {p.stem: pd.read_parquet(p) for p in paths})


class _Tables(dict[str, pd.DataFrame]):
    """The bundle's tables; asking for one it lacks is a :class:`MissingTableError`.

    ``figure_specs`` indexes the tables it needs (``tables["auc"]``): without this, a table
    missing from the bundle would surface as a bare ``KeyError``. Tables it merely asks
    about (``"calibration_curves" in tables``) and the bundle lacks are kept in
    :attr:`absent`, to name them when a figure of the bundle then cannot be drawn.
    """

    def __init__(self, bundle: Path, tables: dict[str, pd.DataFrame]) -> None:
        super().__init__(tables)
        self.bundle = bundle
        self.absent: set[str] = set()

    def __contains__(self, name: object) -> bool:
        found = super().__contains__(name)
        if not found and isinstance(name, str):
            self.absent.add(name)
        return found

    def __missing__(self, name: str) -> pd.DataFrame:
        raise MissingTableError(
            f"bundle {self.bundle} has no table {name!r} (tables/{name}.parquet missing), "
            "which the protocol's figures need; run the protocol again (studyval run) or "
            "check the bundle with studyval verify"
        )


def _load(bundle: Path, slug: str | None) -> tuple[str, _Tables, StudyProtocol, Any, dict]:
    """Check the bundle against protocol ``slug`` and its plan.

    Returns the slug, the tables, the protocol, the plan and the manifest.
    """
    from studyval.plan import load_plan, plan_path
    from studyval.protocol import PROTOCOLS, protocol

    if slug is not None and not Path(bundle).is_dir():
        protocol(slug)  # an unknown slug and no bundle: "did you mean" before anything else
    bundle = Path(bundle)
    if not bundle.is_dir():
        hint = ""
        if slug is not None and bundle == default_bundle(slug):
            hint = (
                " (the default is the demo's bundle: run `studyval demo` first, or give --bundle)"
            )
        raise ManuscriptError(f"bundle {bundle} does not exist{hint}")
    manifest = read_manifest(bundle)
    recorded = manifest.get("protocol")
    if not isinstance(recorded, dict) or not recorded.get("slug"):
        raise ManuscriptError(f"{bundle / MANIFEST} names no protocol (protocol.slug missing)")
    found = str(recorded["slug"])
    if slug is not None and found != slug:
        raise BundleMismatchError(
            f"bundle {bundle} is a {found} bundle, not {slug}; give the bundle of {slug} "
            f"(--bundle) or ask for the figures of {found}"
        )
    study_type = recorded.get("study_type")
    if found not in PROTOCOLS and not isinstance(study_type, str):
        raise ManuscriptError(f"bundle {bundle} is of protocol {found!r}, which is not implemented")
    spec = protocol(found, study_type if isinstance(study_type, str) else None)
    from studyval.study_files import PLAN_COPY

    copy = bundle / PLAN_COPY
    outputs = manifest.get("outputs") if isinstance(manifest.get("outputs"), dict) else {}
    now = file_sha256(plan_path(found)) if found in PROTOCOLS else None
    then = recorded.get("plan_sha256")
    if copy.exists():
        # the plan the run used, as the bundle keeps it (a study team's own plan included):
        # its SHA-256 must be the one the manifest records, among the outputs and as the plan's
        digest = file_sha256(copy) if copy.is_file() and not copy.is_symlink() else None
        if digest is None or outputs.get(PLAN_COPY) != digest:
            raise BundleMismatchError(
                f"{copy} is not the plan the manifest records (edited after the run): the "
                "figures would not match the report; run the protocol again (studyval run)"
            )
        if digest != then:
            raise BundleMismatchError(
                f"the analysis plan in {copy} (SHA-256 {digest[:12]}...) is not the one bundle "
                f"{bundle} was made with (SHA-256 {str(then)[:12]}...): the figures would not "
                "match the report; the manifest was edited. Run the protocol again (studyval run)"
            )
        plan = load_plan(copy, slug=found, check_dictionary=False)
    elif now is None:
        raise ManuscriptError(
            f"bundle {bundle} keeps no copy of its analysis plan ({PLAN_COPY}), and {found!r} is "
            "not a protocol shipped with studyval; run the study again (studyval run --plan)"
        )
    elif now != then:
        raise BundleMismatchError(
            f"the analysis plan of {found} ({plan_path(found).name}, SHA-256 {now[:12]}...) is not "
            f"the one bundle {bundle} was made with (SHA-256 {str(then)[:12]}...): the figures "
            "would not match the report. Run the protocol again with the current plan "
            "(studyval run), or use the studyval version the bundle was made with"
        )
    else:
        plan = load_plan(found)
    seed = manifest.get("seed")
    if seed is not None and getattr(plan, "seed", seed) != seed:
        plan = plan.model_copy(update={"seed": int(seed)})
    tables = _read_tables(bundle, manifest)
    return found, tables, spec, plan, manifest


def _undrawn_figures(manifest: dict[str, Any], specs: Sequence[FigureSpec]) -> list[str]:
    """Figures the bundle's manifest lists (``figures/<name>.png|pdf|svg``) that no spec draws."""
    drawn = {spec.name for spec in specs}
    listed = set()
    for rel in manifest.get("outputs", {}):
        top, _, rest = rel.partition("/")
        stem, _, ext = rest.rpartition(".")
        if top == "figures" and "/" not in rest and ext in ("png", "pdf", "svg"):
            listed.add(stem)
    return sorted(listed - drawn)


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _with_origin(caption: str, origin: dict[str, str]) -> str:
    """A caption with the data-origin note of a bundle not made from study data."""
    from studyval.reporting import origin_caption

    note = origin_caption(origin)
    return f"{caption.rstrip()} {note}".strip() if note else caption


def _captions_md(slug: str, manifest: dict[str, Any], records: list[dict[str, Any]]) -> str:
    from studyval.origin import origin_of_manifest

    proto = manifest.get("protocol", {})
    origin = origin_of_manifest(manifest)
    lines = [
        f"# Figures: {slug}",
        "",
    ]
    if origin["kind"] != "user":
        lines += [f"> **{origin['label']}: not a clinical result.** {origin['statement']}", ""]
    lines += [
        f"Registry {proto.get('registry_id', '?')}, analysis plan {proto.get('plan_version', '?')} "
        f"(SHA-256 {proto.get('plan_sha256', '?')}). Drawn from the results bundle's tables by "
        f"studyval {manifest.get('studyval_version', '?')}.",
        "",
    ]
    for r in records:
        lines.append(_with_origin(f"**Figure {r['number']}.** {r['caption']}", origin))
        lines.append("")
        for width, files in r["files"].items():
            lines.append(f"- {width}: " + ", ".join(f"`{f}`" for f in files))
        lines.append("")
    return "\n".join(lines)


def _prepare_out(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise ManuscriptError(f"--out {out} exists and is not a directory")
        index: Any = None
        cap = out / CAPTIONS_JSON
        if cap.is_file() and not cap.is_symlink():
            try:
                index = json.loads(cap.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                index = None
        mine = isinstance(index, dict) and index.get("generator") == _GENERATOR
        if any(out.iterdir()) and not mine:
            raise ManuscriptError(
                f"--out {out} exists, is not empty and was not written by `studyval figures`; "
                "choose a new directory (studyval never overwrites other files)"
            )
        if mine:
            own = {CAPTIONS_JSON, CAPTIONS_MD}
            for record in (
                index.get("figures", []) if isinstance(index.get("figures"), list) else []
            ):
                files = record.get("files", {}) if isinstance(record, dict) else {}
                for names in files.values() if isinstance(files, dict) else []:
                    own.update(str(n) for n in names)
            foreign = sorted(
                p.name
                for p in out.iterdir()
                if p.name not in own or not p.is_file() or p.is_symlink()
            )
            if foreign:
                shown = ", ".join(foreign[:5]) + (
                    f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
                )
                raise ManuscriptError(
                    f"--out {out} holds files `studyval figures` did not write ({shown}); the "
                    "folder is replaced whole, so move them out first or choose another --out"
                )
    out.parent.mkdir(parents=True, exist_ok=True)


def _raster(
    fig: Any, dpi: int, rendered: dict[int, tuple[bytes, Any]], *, pixels: bool
) -> tuple[bytes, Any]:
    """``fig`` as PNG at ``dpi``, and with ``pixels`` the RGBA image it was encoded from.

    Drawn once per figure and resolution (kept in ``rendered``): a PNG and a TIFF of the
    same resolution come from one rendering, the TIFF from its pixels (no PNG decoding).
    """
    if dpi not in rendered:
        rendered[dpi] = png_and_pixels(fig, dpi) if pixels else (png_bytes(fig, dpi), None)
    return rendered[dpi]


def write_manuscript_figures(
    bundle: str | Path,
    out: str | Path,
    *,
    slug: str | None = None,
    widths: Sequence[str] = ("single", "double"),
    formats: Sequence[str] = FORMATS,
    dpi: Sequence[int] = DEFAULT_DPI,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Path]:
    """Write every figure of the bundle's protocol for a manuscript into ``out``.

    Parameters
    ----------
    bundle : path
        A results bundle (``studyval run``); read only.
    out : path
        Output directory; replaced atomically if it holds earlier output of
        this function, refused if it holds anything else.
    slug : str, optional
        The protocol the bundle must belong to (default: whatever its manifest says).
    widths : sequence of {"single", "double", "column"}
        Journal column widths (85 and 170 mm); ``"column"`` draws each figure
        at the column its spec is designed for. A figure is never drawn
        narrower than its own column: a double-column figure (multi-panel,
        forest plot, flow diagram) comes at 170 mm only.
    formats : sequence of {"pdf", "svg", "png", "tiff"}
        File formats; PNG and TIFF at each of ``dpi``.
    dpi : sequence of int
        Raster resolutions (default 300 and 600).
    progress : callable
        Receives a short message per figure.

    Returns
    -------
    list of Path
        The written files, at their final place under ``out``.

    Raises
    ------
    BundleMismatchError
        The bundle is of another protocol, was made with another version of
        the plan, or its tables changed since it was made.
    MissingTableError
        The bundle lacks a table its manifest lists or a figure needs, or a
        figure of the bundle cannot be drawn from its tables.
    ManuscriptError
        An unknown width or format, a missing bundle, a protocol without
        ``figure_specs``, or an ``out`` that holds other files.

    """
    widths = _closed(widths, WIDTHS, "width")
    formats = _closed(formats, FORMATS, "format")
    dpi = _check_dpi(dpi)
    bundle, out = Path(bundle), Path(out)
    found, tables, protocol_spec, plan, manifest = _load(bundle, slug)
    from studyval.origin import origin_of_manifest

    origin = origin_of_manifest(manifest)  # not study data: every caption says so
    try:
        specs: list[FigureSpec] = check_specs(protocol_spec.figure_specs(tables, plan))
    except ValueError as exc:
        if isinstance(exc, StudyvalError):
            raise
        raise ManuscriptError(f"protocol {found}: {exc}") from exc
    if not specs:
        raise ManuscriptError(f"protocol {found} has no figures (figure_specs returned none)")
    undrawn = _undrawn_figures(manifest, specs)
    if undrawn:
        absent = sorted(tables.absent)
        raise MissingTableError(
            f"bundle {bundle}: its {MANIFEST} lists figure{'s' if len(undrawn) > 1 else ''} "
            + ", ".join(undrawn)
            + " that cannot be drawn from its tables: "
            + (
                "the figures look for table"
                + ("s " if len(absent) > 1 else " ")
                + ", ".join(repr(a) for a in absent)
                + ", missing from the bundle"
                if absent
                else "a table they need is missing from the bundle, or the bundle was made by "
                f"another studyval version ({manifest.get('studyval_version', '?')})"
            )
            + ". Run the protocol again (studyval run) or check the bundle with studyval verify"
        )
    _prepare_out(out)
    _remove_stale(out)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        records = []
        written: list[str] = []
        for number, spec in enumerate(specs, start=1):
            progress(f"figure {number} of {len(specs)}: {spec.name}")
            # a figure is never squeezed below the column it is designed for: a double-column
            # figure (multi-panel, forest, flow) asked for at single width is drawn at 170 mm
            mm_list = [
                spec.width_mm if w == "column" else max(COLUMN_MM[w], spec.width_mm) for w in widths
            ]
            files_by_width: dict[str, list[str]] = {}
            for mm in dict.fromkeys(mm_list):
                fig = spec.draw(mm)
                names = figure_files(spec.name, mm, formats=formats, dpi=dpi)
                # one raster rendering per dpi for PNG and TIFF (a TIFF from the pixels the PNG
                # was encoded from); the 300 dpi one first, as the bundle does: constrained
                # layout settles on the first draw, so the PDF and SVG drawn after it are
                # byte-identical to the bundle's
                rendered: dict[int, tuple[bytes, Any]] = {}
                _raster(fig, 300, rendered, pixels="tiff" in formats and 300 in dpi)
                for fname, d in names:
                    if d is None:
                        save_as(fig, tmp / fname)
                        continue
                    png, pixels = _raster(fig, d, rendered, pixels="tiff" in formats)
                    if fname.endswith(".png"):
                        (tmp / fname).write_bytes(png)
                    else:
                        tiff_from_pixels(pixels, tmp / fname, dpi=d)
                files_by_width[f"{mm:g}mm"] = [n for n, _ in names]
                written.extend(n for n, _ in names)
            records.append(
                {
                    "number": number,
                    "name": spec.name,
                    "caption": spec.caption,
                    # the bundle's caption as drawn; captions.md adds this note after it
                    "data_origin_note": _with_origin("", origin),
                    "column": spec.column,
                    "width_mm": spec.width_mm,
                    "files": files_by_width,
                }
            )
        proto = manifest["protocol"]
        index = {
            "generator": _GENERATOR,
            "studyval_version": manifest.get("studyval_version"),
            "protocol": {
                k: proto.get(k)
                for k in ("slug", "registry_id", "registry_version_date", "plan_version")
            }
            | {"plan_sha256": proto.get("plan_sha256")},
            "bundle_manifest_sha256": file_sha256(bundle / MANIFEST),
            "data_origin": {k: origin[k] for k in ("kind", "label", "statement")},
            "formats": formats,
            "dpi": dpi,
            "figures": records,
        }
        (tmp / CAPTIONS_JSON).write_text(_dump(index), encoding="utf-8", newline="\n")
        (tmp / CAPTIONS_MD).write_text(
            _captions_md(found, manifest, records), encoding="utf-8", newline="\n"
        )
        written += [CAPTIONS_MD, CAPTIONS_JSON]
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return [out / n for n in written]
