"""The main job: inputs -> validation -> the plan's analyses -> results bundle -> report.

``run_protocol`` is what ``studyval run`` and ``studyval demo`` call. It reads
the inputs (never modifying them), validates both tables against their data
dictionaries and the protocol's cross-table rules (every violation listed at
once), removes direct identifiers, runs the protocol's analyses, draws the
figures from the result tables, renders the report from the bundle, and moves
the complete bundle into place atomically.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from studyval import __version__
from studyval.bundle import (
    atomic_bundle,
    check_out,
    environment_info,
    file_sha256,
    git_info,
    write_table,
)
from studyval.cohort import Cohort, join_predictions
from studyval.dictionary import DataDictionary, load_dictionary, read_table
from studyval.errors import EstimationError, InputValidationError, StudyvalError, Violation
from studyval.plan import AnalysisPlan, load_plan, plan_path
from studyval.privacy import refuse_if_identifiers, scan_for_input_identifiers
from studyval.protocol import PROTOCOLS, protocol
from studyval.study_files import DICTIONARY_COPY, PLAN_COPY, REPORT_COPY, StudyFiles, study_files

__all__ = [
    "PROTOCOLS",
    "RunResult",
    "has_imaging_chain",
    "imaging_chain",
    "load_inputs",
    "protocol_module",
    "report_path",
    "run_protocol",
]

Progress = Callable[[str], None]


def protocol_module(slug: str) -> ModuleType:
    """The module implementing protocol ``slug`` (checked: it declares its :class:`StudyProtocol`)."""
    protocol(slug)
    return importlib.import_module(PROTOCOLS[slug])


def report_path(slug: str) -> Path:
    """The protocol's Quarto report source."""
    return plan_path(slug).parent / "report.qmd"


@dataclass(frozen=True)
class LoadedInputs:
    """Validated inputs and the counts of what was removed on the way."""

    plan: AnalysisPlan
    dictionary: DataDictionary
    cohort: Cohort
    study: StudyFiles
    removed_identifier_columns: tuple[str, ...]
    identifiers: dict[str, frozenset[str]] = field(default_factory=dict)
    withheld: dict[str, int] = field(default_factory=dict)


def load_inputs(
    slug: str,
    clinical: Path,
    predictions: Path | None,
    *,
    plan: AnalysisPlan | Path | None = None,
    dictionary: Path | None = None,
    study: StudyFiles | None = None,
) -> LoadedInputs:
    """Read and validate the inputs of protocol ``slug``; raise listing every violation.

    With ``predictions=None`` only the clinical table is checked (``studyval
    validate``) and the returned cohort has an empty prediction table.
    ``plan`` and ``dictionary`` are a study team's own files (or a plan
    object); by default the protocol's shipped ones
    (:func:`studyval.study_files.study_files`); ``study`` is those files
    already read (then ``plan`` and ``dictionary`` are not used).
    """
    if study is None:
        study = study_files(slug, plan=plan, dictionary=dictionary)
    plan = study.plan
    spec = protocol(slug, plan.registry.study_type)
    dictionary = study.dictionary
    violations: list[Violation] = []
    clin_df = pred_df = None
    try:
        clin_df = read_table(clinical, dictionary)
    except InputValidationError as exc:
        violations.extend(exc.violations)
    if predictions is not None:
        try:
            pred_df = read_table(predictions, load_dictionary("predictions"))
        except InputValidationError as exc:
            violations.extend(exc.violations)
    if clin_df is not None:
        violations.extend(spec.check_eligibility(clin_df, plan, label=Path(clinical).name))
    InputValidationError.collect(violations)
    if clin_df is None:  # pragma: no cover - collect() raised already
        raise StudyvalError(f"{clinical} could not be read")
    direct = tuple(
        v.name for v in dictionary.with_role("direct_identifier") if v.name in clin_df.columns
    )
    identifiers = _identifier_values(clin_df, dictionary, "clinical table")
    withheld = {
        f"clinical table: {k}": int(n) for k, n in clin_df.attrs.get("withheld", {}).items()
    }
    if pred_df is not None:
        identifiers |= _identifier_values(
            pred_df, load_dictionary("predictions"), "prediction table"
        )
        withheld |= {
            f"prediction table: {k}": int(n) for k, n in pred_df.attrs.get("withheld", {}).items()
        }
    clin_df = clin_df.drop(columns=list(direct))
    if pred_df is None:
        cohort = Cohort(clinical=clin_df, predictions=pd.DataFrame())
    else:
        join = spec.join if spec.join is not None else join_predictions
        cohort = join(
            clin_df,
            pred_df,
            plan,
            clinical_label=Path(clinical).name,
            predictions_label=Path(predictions).name,
        )
    return LoadedInputs(
        plan=plan,
        dictionary=dictionary,
        cohort=cohort,
        study=study,
        removed_identifier_columns=direct,
        identifiers=identifiers,
        withheld=withheld,
    )


#: Roles whose values identify a patient or a case: they must never reach a bundle.
_IDENTIFYING_ROLES = ("direct_identifier", "identifier", "cluster")


def _identifier_values(
    frame: pd.DataFrame, dictionary: DataDictionary, source: str
) -> dict[str, frozenset[str]]:
    """Distinct values of the identifying columns, keyed ``"<source>: <column>"``."""
    out: dict[str, frozenset[str]] = {}
    for var in dictionary.with_role(*_IDENTIFYING_ROLES):
        if var.name in frame.columns:
            values = frame[var.name].dropna()
            if var.type == "date":
                # a date of birth is looked for in the forms people and software write it
                forms = [values.dt.strftime(f) for f in _DATE_FORMS]
                forms.append(values.map(lambda d: f"{d.day}/{d.month}/{d.year}"))
                forms.append(values.map(lambda d: f"{d.month}/{d.day}/{d.year}"))
                values = pd.concat(forms, ignore_index=True)
            out[f"{source}: {var.name}"] = frozenset(values.astype(str))
    return out


#: The forms of a date the identifier scan looks for (the ISO form first).
_DATE_FORMS = ("%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y", "%d%m%Y", "%Y%m%d", "%d %B %Y", "%B %d %Y")


@dataclass(frozen=True)
class RunResult:
    """Where the bundle went and how its report was rendered."""

    bundle: Path
    report: Path | None
    engine: str | None


def _file_info(path: Path, role: str) -> dict[str, Any]:
    """An input as the manifest records it: a neutral name, its SHA-256 and size.

    The user's file name is not recorded (exports are often named after the
    patient or carry a record number); the hash identifies the file.
    """
    return {
        "file": f"{role}{path.suffix.lower()}",
        "sha256": file_sha256(path),
        "bytes": path.stat().st_size,
    }


def run_protocol(
    slug: str,
    *,
    clinical: Path,
    predictions: Path | None,
    out: Path,
    render: bool = True,
    engine: str = "auto",
    seed: int | None = None,
    imaging: Path | None = None,
    plan: AnalysisPlan | Path | None = None,
    dictionary: Path | None = None,
    progress: Progress = lambda _: None,
    data_origin: str | None = None,
) -> RunResult:
    """Run protocol ``slug`` on the given inputs and write a results bundle at ``out``.

    Parameters
    ----------
    slug : str
        Protocol slug (``ovcf-chronicity``).
    clinical, predictions : Path
        Input tables (CSV or parquet); read only.
    out : Path
        Bundle directory; replaced atomically if it holds a previous bundle.
    render : bool
        Render the Quarto report into ``out/report/report.html``.
    engine : {"auto", "quarto", "jupyter"}
        Rendering engine (see :func:`studyval.render.render_report`).
    seed : int, optional
        Overrides the plan's seed (recorded in the manifest).
    plan : Path or AnalysisPlan, optional
        A study team's own plan file (``--plan``; it must be for ``slug``), or a
        plan object (tests pass trimmed plans), instead of the protocol's shipped
        ``plan.yml``. The bundle keeps the plan as read (``study/plan.yml``; a
        plan object as its canonical JSON) and the manifest its SHA-256.
    dictionary : Path, optional
        A study team's own data dictionary (``--dictionary``) instead of the one
        the plan names; kept in the bundle as ``study/dictionary.yml``.
    imaging : Path, optional
        Output of an imaging chain (:mod:`studyval.imaging_demo`): a directory
        with ``manifest.json``, ``tables/*.csv`` and ``figures/*.png`` that is
        copied into the bundle's ``imaging/`` (model versions, training curves,
        segmentation quality, Grad-CAM overlays) with the SHA-256 of each
        file recorded in the manifest.
    progress : callable
        Receives a short message before each step.
    data_origin : {"synthetic", "phantom", "public", "user"}, optional
        Where the inputs came from, recorded in the manifest (``data_origin``)
        and shown by the report; by default recognised from the inputs
        (:func:`studyval.origin.detect_origin`: files written by ``studyval
        synthetic``, an imaging demo's output) and otherwise ``"user"``.

    """
    clinical = Path(clinical)
    predictions = None if predictions is None else Path(predictions)
    from studyval.protocol import is_shipped

    if plan is None:
        protocol(slug)  # an unknown slug without a plan: "did you mean" before anything else
    from studyval.origin import detect_origin, origin_record

    origin = (
        detect_origin(clinical, predictions, None if imaging is None else Path(imaging))
        if data_origin is None
        else origin_record(data_origin, "declared by the caller")
    )
    imaging_files = _imaging_files(Path(imaging)) if imaging is not None else {}
    given = [clinical, *([predictions] if predictions is not None else []), *imaging_files.values()]
    out = check_out(out, inputs=given)  # before any analysis: a bad --out is found at once
    progress("validating inputs against the data dictionaries")
    if is_shipped(slug) and predictions is None and protocol(slug).requires_predictions:
        raise StudyvalError(f"protocol {slug} needs a prediction table (--predictions)")
    study = study_files(slug, plan=plan, dictionary=dictionary)
    spec = protocol(slug, study.plan.registry.study_type)
    if predictions is None and spec.requires_predictions:
        raise StudyvalError(f"study {slug} needs a prediction table (--predictions)")
    if render and study.report is None:
        raise StudyvalError(f"study {slug}: no report source (report.qmd beside the plan)")
    inputs = load_inputs(slug, clinical, predictions, study=study)
    plan = inputs.plan if seed is None else inputs.plan.model_copy(update={"seed": int(seed)})
    input_info = {"clinical": _file_info(clinical, "clinical")}
    if predictions is not None:
        input_info["predictions"] = _file_info(predictions, "predictions")
    step = ["analysis"]
    records: list[tuple[str, warnings.WarningMessage]] = []

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def tracking(message: str) -> None:
            records.extend((step[0], w) for w in caught)
            caught.clear()
            step[0] = message
            progress(message)

        try:
            result = spec.analyse(inputs.cohort, plan, progress=tracking)
        except EstimationError as exc:
            files = ", ".join(p.name for p in (clinical, predictions) if p is not None)
            raise EstimationError(f"{slug}, step '{step[0]}': {exc} (inputs: {files})") from None
        records.extend((step[0], w) for w in caught)
    tables = dict(result.tables)
    tables["warnings"] = _warnings_table(records)
    tables["checklist"] = spec.checklist(plan, tables, inputs.cohort)
    tables["dictionary"] = inputs.dictionary.to_frame()
    used_seed = plan.seed

    engine_used: dict[str, str | None] = {"engine": None}

    def build(tmp: Path) -> dict[str, Any]:
        progress("writing tables")
        for name, frame in sorted(tables.items()):
            write_table(frame, tmp / "tables", name)
        copies = [(PLAN_COPY, inputs.study.plan_bytes), (DICTIONARY_COPY, inputs.study.dictionary_bytes)]
        if inputs.study.report is not None:
            copies.append((REPORT_COPY, inputs.study.report.read_bytes()))
        for rel, data in copies:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(data)
        if imaging_files:
            progress("copying the imaging chain's outputs")
            for rel, src in imaging_files.items():
                dst = tmp / "imaging" / rel
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.write_bytes(_imaging_copy(src))
        progress("drawing figures")
        from studyval.figures.spec import draw_specs

        draw_specs(spec.figure_specs(tables, plan), tmp / "figures")
        manifest = {
            "studyval_version": __version__,
            "protocol": {
                "slug": slug,
                "study_type": plan.registry.study_type,
                "registry_id": plan.registry.id,
                "registry_version_date": plan.registry.version_date,
                "plan_version": plan.plan_version,
                "plan_sha256": hashlib.sha256(inputs.study.plan_bytes).hexdigest(),
                "plan": PLAN_COPY,
                "plan_is_shipped": is_shipped(slug)
                and hashlib.sha256(inputs.study.plan_bytes).hexdigest()
                == file_sha256(plan_path(slug)),
            },
            "dictionary": {
                "name": inputs.dictionary.name,
                "version": inputs.dictionary.version,
                "file": DICTIONARY_COPY,
                "sha256": hashlib.sha256(inputs.study.dictionary_bytes).hexdigest(),
                "removed_direct_identifier_columns": list(inputs.removed_identifier_columns),
            },
            "inputs": input_info,
            "data_origin": origin,
            "seed": used_seed,
            "environment": environment_info(),
            "git": git_info(),
            "models": tables["models"][["model", "model_version"]].to_dict(orient="records"),
        }
        if imaging_files:
            manifest["imaging"] = {
                rel: file_sha256(tmp / "imaging" / rel) for rel in sorted(imaging_files)
            }
        progress("scanning the bundle for the inputs' identifiers")
        scan = scan_for_input_identifiers(tmp, inputs.identifiers)
        refuse_if_identifiers(scan)
        manifest["privacy"] = {
            "identifier_scan": scan.record(),
            "free_text_withheld": dict(sorted(inputs.withheld.items())),
        }
        return manifest

    def finish(tmp: Path) -> None:
        if not render:
            return
        progress("rendering the report")
        from studyval.render import render_report

        (tmp / "report").mkdir()
        res = render_report(
            tmp / REPORT_COPY,
            tmp / "report" / "report.html",
            params={"bundle": str(tmp.resolve())},
            engine=engine,
        )
        engine_used["engine"] = res.engine
        refuse_if_identifiers(
            scan_for_input_identifiers(tmp / "report", inputs.identifiers), what="the report"
        )

    out = atomic_bundle(out, build, finish=finish, inputs=given)
    report = out / "report" / "report.html" if render else None
    return RunResult(bundle=out, report=report, engine=engine_used["engine"])


#: What an imaging chain may put into a bundle (no images of patients, no weights).
_IMAGING_SUFFIXES = {
    ".csv": "tables",
    ".png": "figures",
    ".pdf": "figures",
    ".svg": "figures",
    ".json": "",
}


#: The first bytes of each kind of file an imaging output may hold.
_MAGIC = {".png": b"\x89PNG\r\n\x1a\n", ".pdf": b"%PDF-"}


def _imaging_files(directory: Path) -> dict[str, Path]:
    """The files of an imaging chain's output directory, checked: relative path -> source.

    The folder must hold a ``manifest.json`` that is a JSON object, tables as
    UTF-8 CSV, and figures that are what their names say (PNG, PDF, SVG);
    anything else is refused, naming the file.
    """
    if not directory.exists():
        raise StudyvalError(f"--imaging {directory}: no such folder")
    if not directory.is_dir():
        raise StudyvalError(
            f"--imaging {directory}: is a file; give the imaging chain's output folder "
            "(the one holding manifest.json, tables/ and figures/)"
        )
    if not (directory / "manifest.json").is_file():
        raise StudyvalError(f"{directory}: not an imaging output (it has no manifest.json)")
    files: dict[str, Path] = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() or p.is_symlink()):
        rel = path.relative_to(directory).as_posix()
        folder = _IMAGING_SUFFIXES.get(path.suffix)
        if (
            path.is_symlink()
            or folder is None
            or (folder and not rel.startswith(folder + "/"))
            or (not folder and "/" in rel)
        ):
            raise StudyvalError(
                f"{path}: an imaging output holds manifest.json, tables/*.csv and "
                "figures/*.png|pdf|svg only (no links)"
            )
        _check_imaging_file(path)
        files[rel] = path
    return files


def _imaging_copy(path: Path) -> bytes:
    """The bytes of an imaging output as the bundle keeps them.

    A CSV table's text cells that a spreadsheet would run as a formula are
    neutralised (:func:`studyval.bundle.csv_safe_text`), as in the bundle's own
    tables; every other file is copied byte for byte.
    """
    data = path.read_bytes()
    if path.suffix != ".csv":
        return data
    import csv
    import io

    from studyval.bundle import csv_safe_text

    rows = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    safe = [[str(csv_safe_text(cell)) for cell in row] for row in rows]
    if safe == rows:
        return data
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(safe)
    return buffer.getvalue().encode("utf-8")


def _check_imaging_file(path: Path) -> None:
    """Refuse an imaging output file whose bytes are not what its name says."""
    import json

    data = path.read_bytes()
    suffix = path.suffix
    if suffix in _MAGIC:
        if not data.startswith(_MAGIC[suffix]):
            raise StudyvalError(f"{path}: not a {suffix[1:].upper()} file (wrong first bytes)")
        return
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StudyvalError(f"{path}: not UTF-8 text (a binary file?)") from None
    if "\x00" in text:
        raise StudyvalError(f"{path}: not text (it holds NUL bytes)")
    if suffix == ".json":
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise StudyvalError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
        if not isinstance(value, dict):
            raise StudyvalError(f"{path}: a JSON object is expected")
    elif suffix == ".svg" and "<svg" not in text[:4096]:
        raise StudyvalError(f"{path}: not an SVG image (no <svg> element)")
    elif suffix == ".csv":
        import csv
        import io

        try:
            rows = list(csv.reader(io.StringIO(text)))
        except csv.Error as exc:
            raise StudyvalError(f"{path}: not a well-formed CSV ({exc})") from None
        if not rows:
            raise StudyvalError(f"{path}: an empty table")


def _warnings_table(records: list[tuple[str, warnings.WarningMessage]]) -> pd.DataFrame:
    """Warnings raised during the analysis, kept in the bundle so that the report shows them.

    One row per distinct (step, category, message); ``count`` says how often it occurred.
    """
    rows: dict[tuple[str, str, str], int] = {}
    for step, w in records:
        key = (step, w.category.__name__, str(w.message))
        rows[key] = rows.get(key, 0) + 1
    return pd.DataFrame(
        [{"step": s, "category": c, "message": m, "count": n} for (s, c, m), n in rows.items()],
        columns=["step", "category", "message", "count"],
    )


#: Marks the imaging demo's work folder, which each demo replaces.
WORK_MARKER = ".studyval-imaging-work"


def has_imaging_chain(slug: str) -> bool:
    """Whether the demo inputs of protocol ``slug`` can come out of the imaging models."""
    return protocol(slug).imaging_chain is not None


def imaging_chain(
    slug: str, inputs: dict[str, Path], work: Path, *, seed: int, progress: Progress
) -> dict[str, Path]:
    """Run the imaging chain of protocol ``slug`` on its synthetic inputs.

    Returns the inputs to analyse instead (``clinical``, ``predictions`` where
    the chain writes them) and ``imaging``, the directory for the bundle.
    The previous contents of ``work`` are removed first.
    """
    import shutil

    chain = protocol(slug).imaging_chain
    if chain is None:
        raise StudyvalError(f"protocol {slug} has no imaging chain")
    if work.exists():
        if not (work / WORK_MARKER).is_file():
            raise StudyvalError(
                f"{work} exists and was not made by the imaging demo; "
                "choose another --out (studyval never deletes other files)"
            )
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / WORK_MARKER).write_text("studyval imaging demo work folder, replaced by each demo\n")
    return dict(chain(inputs["clinical"], work, load_plan(slug), seed=seed, progress=progress))


def synthetic_cohort(slug: str, *, seed: int | None = None, plan: Path | None = None) -> Any:
    """The synthetic cohort generator of protocol ``slug``.

    Seeded with ``seed``, else with the seed of ``plan`` (a study team's own
    plan file for ``slug``), else with the seed of the shipped plan.
    """
    protocol(slug)
    module = importlib.import_module(f"studyval.synthetic.{slug.replace('-', '_')}")
    if seed is None:
        seed = load_plan(slug if plan is None else Path(plan), slug=slug, check_dictionary=False).seed
    return module.generate(seed=seed)


def render_bundle(bundle: Path, *, engine: str = "auto") -> Any:
    """Render the report of an existing bundle again (the bundle's tables are not touched).

    The report is rendered into a hidden temporary folder of the bundle and
    moved onto ``bundle/report/report.html`` only when complete: a failed
    render keeps the previous report.
    """
    import shutil
    import uuid

    from studyval.bundle import MANIFEST, MARKER, _remove_stale, is_bundle, read_manifest
    from studyval.render import render_report

    bundle = Path(bundle)
    manifest = read_manifest(bundle)
    recorded = manifest.get("protocol")
    slug = recorded.get("slug") if isinstance(recorded, dict) else None
    if not isinstance(slug, str):
        raise StudyvalError(
            f"{bundle / MANIFEST}: the manifest names no protocol (field 'protocol.slug' is "
            "missing); it was not written by studyval run or it was edited"
        )
    source = bundle / REPORT_COPY
    if not source.is_file():
        protocol(slug)  # a bundle of an earlier studyval: the shipped report of its protocol
        source = report_path(slug)
    if not is_bundle(bundle):
        raise StudyvalError(f"{bundle} is not a studyval results bundle")
    _remove_stale(bundle)
    report = bundle / "report"
    if report.exists() and (not report.is_dir() or report.is_symlink()):
        raise StudyvalError(f"{report} is not a folder; studyval does not replace it")
    # rendered beside the bundle (never inside it, so a killed render leaves the bundle clean);
    # the marker lets the next command at this bundle remove a killed render's folder
    tmp = bundle.parent / f".{bundle.name}.render-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
        (tmp / MARKER).write_text("studyval render in progress\n", encoding="utf-8")
        res = render_report(
            source,
            tmp / "report.html",
            params={"bundle": str(bundle.resolve())},
            engine=engine,
        )
        report.mkdir(exist_ok=True)
        os.replace(tmp / "report.html", report / "report.html")
        if res.pdf is not None:
            os.replace(tmp / "report.pdf", report / "report.pdf")
        elif (report / "report.pdf").exists():
            (report / "report.pdf").unlink()  # never a PDF of an earlier render beside this page
    except OSError as exc:
        raise StudyvalError(
            f"cannot write the report into {report}: {exc.strerror or exc}; "
            "the previous report is kept"
        ) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return replace(
        res,
        output=report / "report.html",
        pdf=report / "report.pdf" if res.pdf is not None else None,
    )
