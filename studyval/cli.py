"""Command-line interface: ``studyval demo | run | validate | render | synthetic | verify | figures | deidentify``.

Exit codes: 0 success; 1 bad input (the message names file, column, row and
rule), a plan error or a statistic that cannot be estimated; 2 wrong usage of
the command line; 3 the report could not be rendered. On any error nothing is
written at ``--out``.

Every command is defined here, and every error reaches the user through one
path, :func:`_errors` (or :func:`_fail`): one ``studyval: error: ...`` message
on stderr and the exit code above, never a traceback. The modules behind the
commands (:mod:`studyval.pipeline`, :mod:`studyval.verify`,
:mod:`studyval.manuscript`, ...) are libraries and import nothing from here.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click

from studyval import __version__
from studyval.errors import StudyvalError
from studyval.manuscript import (
    CAPTIONS_JSON,
    CAPTIONS_MD,
    DEFAULT_DPI,
    FORMATS,
    WIDTHS,
    default_bundle,
    write_manuscript_figures,
)

EXIT_INPUT = 1
EXIT_RENDER = 3
ENGINES = click.Choice(["auto", "quarto", "jupyter"])


class _Progress:
    """Numbered progress lines on stderr: ``[ovcf-chronicity 3] message (1.2 s)``."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label, self.quiet, self.step, self.t0 = label, quiet, 0, time.perf_counter()

    def __call__(self, message: str) -> None:
        self.step += 1
        if not self.quiet:
            dt = time.perf_counter() - self.t0
            click.echo(f"[{self.label} {self.step:>2}] {message} ({dt:.1f} s)", err=True)


def _fail(exc: Exception, *, all_errors: bool = False) -> NoReturn:
    """Print one message for ``exc`` and exit: 3 for a render error, 1 otherwise."""
    from studyval.errors import InputValidationError, RenderError

    code = EXIT_RENDER if isinstance(exc, RenderError) else EXIT_INPUT
    if isinstance(exc, OSError):
        where = f" {exc.filename}" if exc.filename else ""
        text = f"file system error at{where}: {exc.strerror or exc}"
    elif isinstance(exc, InputValidationError) and all_errors:
        text = exc.full_message()
    else:
        text = str(exc)
    click.echo(f"studyval: error: {text}", err=True)
    sys.exit(code)


@contextmanager
def _errors(*, all_errors: bool = False) -> Iterator[None]:
    """Turn studyval's errors and file system faults into one message and an exit code."""
    try:
        yield
    except (StudyvalError, OSError) as exc:
        _fail(exc, all_errors=all_errors)


def _out_path(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """An --out that names a folder (an empty string would mean the current folder)."""
    if value is not None and str(value).strip() in ("", "."):
        raise click.BadParameter("must name a folder for the output, not the current folder")
    return value


_ALL_ERRORS = click.option(
    "--all-errors",
    is_flag=True,
    help="List every input violation, one per line (default: grouped by column and rule).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="studyval")
def main() -> None:
    """Validation statistics and registered-protocol reports for imaging AI models."""


def _study_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``--plan`` and ``--dictionary``: a study team's own plan and data dictionary."""
    fn = click.option(
        "--dictionary",
        type=click.Path(path_type=Path),
        default=None,
        help="The study's own data dictionary (YAML); default: the one the plan names.",
    )(fn)
    return click.option(
        "--plan",
        type=click.Path(path_type=Path),
        default=None,
        help="The study's own analysis plan (YAML, for SLUG); default: the plan shipped for SLUG.",
    )(fn)


def _slug(slug: str | None, plan: Path | None) -> str:
    """SLUG as given, else the ``slug`` of the ``--plan`` file (a new study needs no SLUG)."""
    if slug is not None:
        return slug
    if plan is None:
        raise StudyvalError("give the protocol SLUG, or the study's own plan with --plan PLAN.yml")
    from studyval.plan import load_plan

    return str(load_plan(Path(plan), check_dictionary=False).slug)


@main.command()
@click.argument("slug", required=False)
@click.option(
    "--clinical",
    "-c",
    type=click.Path(path_type=Path),
    required=True,
    help="Clinical table (CSV or parquet).",
)
@click.option(
    "--predictions",
    "-p",
    type=click.Path(path_type=Path),
    default=None,
    help="Prediction table (CSV or parquet); not needed when the protocol fits its own models.",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    callback=_out_path,
    help="Results bundle directory.",
)
@click.option(
    "--imaging",
    type=click.Path(path_type=Path),
    default=None,
    help="Output directory of an imaging chain (manifest.json, tables/, figures/) to include.",
)
@click.option("--engine", type=ENGINES, default="auto", show_default=True, help="Report renderer.")
@click.option("--no-render", is_flag=True, help="Write tables and figures only.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
@_study_options
@_ALL_ERRORS
def run(
    slug: str | None,
    clinical: Path,
    predictions: Path | None,
    out: Path,
    imaging: Path | None,
    engine: str,
    no_render: bool,
    quiet: bool,
    plan: Path | None,
    dictionary: Path | None,
    all_errors: bool,
) -> None:
    """Run protocol SLUG (or the study of --plan) on a clinical table and a prediction table."""
    from studyval.pipeline import run_protocol

    with _errors(all_errors=all_errors):
        slug = _slug(slug, plan)
        res = run_protocol(
            slug,
            clinical=clinical,
            predictions=predictions,
            out=out,
            render=not no_render,
            engine=engine,
            imaging=imaging,
            plan=plan,
            dictionary=dictionary,
            progress=_Progress(slug, quiet),
        )
    click.echo(f"bundle: {res.bundle}")
    if res.report:
        click.echo(f"report: {res.report} (rendered with {res.engine})")


@main.command()
@click.argument("slug", required=False)
@click.option("--clinical", "-c", type=click.Path(path_type=Path), required=True)
@click.option(
    "--predictions",
    "-p",
    type=click.Path(path_type=Path),
    default=None,
    help="Also check the prediction table.",
)
@_study_options
@_ALL_ERRORS
def validate(
    slug: str | None,
    clinical: Path,
    predictions: Path | None,
    plan: Path | None,
    dictionary: Path | None,
    all_errors: bool,
) -> None:
    """Check inputs of protocol SLUG (or the study of --plan) against its dictionary; run nothing."""
    from studyval.pipeline import load_inputs

    with _errors(all_errors=all_errors):
        slug = _slug(slug, plan)
        loaded = load_inputs(slug, clinical, predictions, plan=plan, dictionary=dictionary)
    n = len(loaded.cohort.clinical)
    extra = f" and {len(loaded.cohort.predictions)} prediction rows" if predictions else ""
    click.echo(
        f"{clinical}: {n} rows{extra} valid against the {loaded.dictionary.name} dictionary {loaded.dictionary.version}"
    )


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--engine", type=ENGINES, default="auto", show_default=True)
def render(bundle: Path, engine: str) -> None:
    """Render (again) the report of an existing results BUNDLE."""
    from studyval.pipeline import render_bundle

    with _errors():
        res = render_bundle(bundle, engine=engine)
    click.echo(f"report: {res.output} (rendered with {res.engine})")
    if res.pdf is not None:
        click.echo(f"pdf: {res.pdf}")


@main.command()
@click.argument("slug")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, callback=_out_path)
@click.option("--seed", type=int, default=None, help="Defaults to the plan's seed.")
@click.option(
    "--plan",
    type=click.Path(path_type=Path),
    default=None,
    help="The study's own analysis plan (YAML, for SLUG), whose seed is used.",
)
def synthetic(slug: str, out: Path, seed: int | None, plan: Path | None) -> None:
    """Write the synthetic demo inputs of protocol SLUG (and their true parameters)."""
    from studyval.pipeline import synthetic_cohort

    with _errors():
        paths = synthetic_cohort(slug, seed=seed, plan=plan).write(out)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@main.command()
@click.argument("study_type", type=click.Choice(["diagnostic-accuracy", "prognostic-model"]))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="A new study folder."
)
def init(study_type: str, out: Path) -> None:
    """Start a new study of STUDY_TYPE: a commented plan, a dictionary and a report in OUT.

    Edit the plan and the dictionary to fit the study's data, then run it with
    ``studyval run --plan OUT/plan.yml -c CLINICAL -p PREDICTIONS -o BUNDLE``.
    """
    from studyval.study_types import INIT_NAMES, type_templates

    with _errors():
        out = Path(out)
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise StudyvalError(f"{out} exists and is not an empty folder; init writes a new one")
        templates = type_templates(INIT_NAMES[study_type])
        out.mkdir(parents=True, exist_ok=True)
        import shutil

        for name in ("plan.yml", "dictionary.yml", "report.qmd"):
            shutil.copyfile(templates / name, out / name)
            click.echo(f"{name}: {out / name}")


@main.command()
@click.argument("name")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="A new study folder."
)
def example(name: str, out: Path) -> None:
    """Write worked example NAME (a study on public data): its plan, dictionary and data."""
    from studyval.examples import write_example

    with _errors():
        paths = write_example(name, out)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@main.command()
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=Path("results/demo"),
    show_default=True,
    callback=_out_path,
)
@click.option("--engine", type=ENGINES, default="auto", show_default=True)
@click.option("--no-render", is_flag=True)
@click.option(
    "--imaging/--no-imaging",
    default=True,
    show_default=True,
    help="Build the ovcf-chronicity and cirrhosis-sarcopenia inputs with the imaging models "
    "(phantom CTs, a few CPU epochs, inference; needs the 'models' extra) instead of the "
    "synthetic score tables.",
)
@click.option("--only", multiple=True, help="Run only these protocols (repeatable); default: all.")
@click.option("--quiet", "-q", is_flag=True)
def demo(
    out: Path, engine: str, no_render: bool, imaging: bool, only: tuple[str, ...], quiet: bool
) -> None:
    """Run every protocol on its synthetic data and every worked example on its public data.

    The five registered protocols run on their synthetic demo cohorts (two of
    them through the imaging models), and the worked examples
    (``studyval example``: studies of the generic types written only as YAML)
    on the public data sets they ship with; every report is rendered.
    """
    from studyval.examples import EXAMPLES, write_example
    from studyval.pipeline import (
        PROTOCOLS,
        has_imaging_chain,
        imaging_chain,
        run_protocol,
        synthetic_cohort,
    )
    from studyval.plan import load_plan
    from studyval.protocol import protocol

    with _errors():
        for slug in only:
            if slug not in EXAMPLES:
                protocol(slug)
        selected = [s for s in PROTOCOLS if not only or s in only]
        examples = [s for s in EXAMPLES if not only or s in only]
        chained = [s for s in selected if imaging and has_imaging_chain(s)]
        if chained:
            import importlib.util

            if not all(importlib.util.find_spec(m) for m in ("torch", "monai", "pydicom")):
                raise StudyvalError(
                    "the demo trains the imaging models for "
                    + " and ".join(chained)
                    + ": install them with pip install -e '.[models]', or pass --no-imaging "
                    "to use the synthetic score tables"
                )
        inputs: dict[str, dict[str, Path]] = {}
        for slug in selected:
            inputs[slug] = synthetic_cohort(slug, seed=load_plan(slug).seed).write(
                out / slug / "inputs"
            )
        # The imaging chains (one torch thread each) run in worker processes while the other
        # protocols are analysed; each chain is seeded, so the order changes no result.
        futures = {}
        pool = None
        if chained:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            pool = ProcessPoolExecutor(
                max_workers=min(2, len(chained)), mp_context=multiprocessing.get_context("spawn")
            )
            for slug in chained:
                futures[slug] = pool.submit(
                    imaging_chain,
                    slug,
                    inputs[slug],
                    out / slug / "imaging-run",
                    seed=load_plan(slug).seed,
                    progress=_Progress(slug, quiet),
                )
        try:
            for slug in sorted(selected, key=lambda s: s in futures):
                progress = _Progress(slug, quiet)
                used = inputs[slug]
                chain = None
                if slug in futures:
                    progress("waiting for the imaging chain")
                    try:
                        chain = futures[slug].result()
                    except StudyvalError:
                        raise
                    except Exception as exc:
                        raise StudyvalError(f"{slug} imaging chain failed: {exc}") from exc
                    used = {**used, **{k: v for k, v in chain.items() if k != "imaging"}}
                res = run_protocol(
                    slug,
                    clinical=used["clinical"],
                    predictions=used.get("predictions"),
                    out=out / slug / "bundle",
                    render=not no_render,
                    engine=engine,
                    imaging=None if chain is None else chain["imaging"],
                    progress=progress,
                )
                click.echo(
                    f"{slug}: bundle {res.bundle}"
                    + (f", report {res.report} ({res.engine})" if res.report else "")
                )
            for name in examples:
                progress = _Progress(name, quiet)
                progress("writing the worked example's plan, dictionary and public data")
                files = write_example(name, out / name / "study", replace_previous=True)
                res = run_protocol(
                    _slug(None, files["plan"]),
                    clinical=files["clinical"],
                    predictions=files.get("predictions"),
                    out=out / name / "bundle",
                    render=not no_render,
                    engine=engine,
                    plan=files["plan"],
                    progress=progress,
                )
                click.echo(
                    f"{name}: bundle {res.bundle}"
                    + (f", report {res.report} ({res.engine})" if res.report else "")
                )
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option(
    "--clinical", "-c", type=click.Path(path_type=Path), required=True, help="Clinical table."
)
@click.option(
    "--predictions", "-p", type=click.Path(path_type=Path), default=None, help="Prediction table."
)
@click.option(
    "--engine",
    type=ENGINES,
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
    from studyval.verify import verify_bundle

    with _errors():
        report = verify_bundle(bundle, clinical=clinical, predictions=predictions, engine=engine)
    click.echo(report.format())
    sys.exit(0 if report.ok else 1)


@main.command(name="figures")
@click.argument("slug")
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Output directory."
)
@click.option(
    "--bundle",
    "-b",
    type=click.Path(path_type=Path),
    default=None,
    help="Results bundle to draw from [default: results/demo/SLUG/bundle].",
)
@click.option(
    "--width",
    "widths",
    type=click.Choice(list(WIDTHS)),
    multiple=True,
    help="Column width, repeatable: single (85 mm), double (170 mm) or column (each "
    "figure's own) [default: single and double].",
)
@click.option(
    "--format",
    "formats",
    type=click.Choice(list(FORMATS)),
    multiple=True,
    help="File format, repeatable [default: all].",
)
@click.option(
    "--dpi",
    type=int,
    multiple=True,
    help="Raster resolution, repeatable [default: 300 and 600].",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def figures_command(
    slug: str,
    out: Path,
    bundle: Path | None,
    widths: tuple[str, ...],
    formats: tuple[str, ...],
    dpi: tuple[int, ...],
    quiet: bool,
) -> None:
    """Write every figure of protocol SLUG for a manuscript, drawn from its results bundle.

    PDF and SVG (vector, fonts embedded) and 300 and 600 dpi PNG and TIFF at
    single (85 mm) and double (170 mm) column width, with captions.md and
    captions.json stating n, events and the interval method of each figure.
    """
    with _errors():
        paths = write_manuscript_figures(
            default_bundle(slug) if bundle is None else bundle,
            out,
            slug=slug,
            widths=widths or ("single", "double"),
            formats=formats or FORMATS,
            dpi=dpi or DEFAULT_DPI,
            progress=_Progress(slug, quiet),
        )
    n_fig = len(json.loads((Path(out) / CAPTIONS_JSON).read_text(encoding="utf-8"))["figures"])
    click.echo(f"figures: {out} ({n_fig} figures, {len(paths)} files)")
    click.echo(f"captions: {Path(out) / CAPTIONS_MD}")


@main.command()
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    callback=_out_path,
    help="Must not exist yet.",
)
@click.option(
    "--key-file",
    type=click.Path(path_type=Path),
    required=True,
    help="File with the secret key (at least 16 bytes) of the UID replacement and the pseudonym.",
)
@click.option(
    "--patient-id",
    default=None,
    help="The patient's id; its keyed pseudonym is written into Patient ID (0010,0020).",
)
def deidentify(source: Path, out: Path, key_file: Path, patient_id: str | None) -> None:
    """Copy DICOM series (or file) SOURCE to OUT with the PS3.15 Basic Profile applied.

    The source is checked first (0-byte files, files without pixel data, mixed
    series, missing slices, mixed spacing are refused, naming the file) and
    nothing is written unless every file passes. The source is never modified.
    """
    try:
        import pydicom  # noqa: F401
    except ImportError:
        _fail(StudyvalError("deidentify needs pydicom: pip install -e '.[models]'"))
    from studyval.models.deid import deidentify_series
    from studyval.privacy import pseudonymise

    with _errors():
        if not key_file.is_file():
            raise StudyvalError(f"{key_file}: key file does not exist")
        key = key_file.read_bytes().strip()
        if len(key) < 16:
            raise StudyvalError(f"{key_file}: the key must be at least 16 bytes, found {len(key)}")
        if out.exists():
            raise StudyvalError(f"{out} exists; de-identified copies are never overwritten")
        pseudonym = pseudonymise([patient_id], key=key)[0] if patient_id else None
        rep = deidentify_series(source, out, key=key, patient_pseudonym=pseudonym)
    actions = ", ".join(f"{k} {v}" for k, v in rep.actions.items())
    click.echo(f"{out}: {rep.files} file(s) de-identified ({actions})")


def _models_extra() -> None:
    """Refuse clearly when the imaging extra is not installed."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("torch", "monai")):
        raise StudyvalError(
            "the imaging models need the 'models' extra: pip install -e '.[models]'"
        )


@main.group()
def models() -> None:
    """Train and run the imaging models on a hospital's images (an image manifest)."""


@models.command(name="train")
@click.argument("config")
@click.option("--images", type=click.Path(path_type=Path), required=True, help="Image manifest.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, callback=_out_path)
@click.option(
    "--images-root",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder the manifest's paths are relative to (default: the manifest's).",
)
@click.option("--epochs", type=int, default=None, help="Default: the config's.")
@click.option(
    "--cache",
    type=click.Choice(["none", "memory", "disk"]),
    default="none",
    show_default=True,
    help="Peak memory is bounded by the batch with 'none'.",
)
@click.option("--cache-rate", type=float, default=1.0, show_default=True)
@click.option("--cache-dir", type=click.Path(path_type=Path), default=None)
@click.option("--num-workers", type=int, default=0, show_default=True, help="DataLoader workers.")
@click.option("--batch-size", type=int, default=None)
@click.option("--learning-rate", type=float, default=None)
@click.option("--seed", type=int, default=None)
@click.option(
    "--val-split", type=click.Choice(["internal", "none"]), default="internal", show_default=True
)
@click.option("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda when available).")
@click.option("--threads", type=int, default=None)
@click.option("--smoke", is_flag=True, help="A few steps on a tiny network (tests).")
@click.option("--no-resume", is_flag=True, help="Start again instead of resuming from --out.")
@click.option("--quiet", "-q", is_flag=True)
@_ALL_ERRORS
def models_train(
    config: str,
    images: Path,
    out: Path,
    images_root: Path | None,
    epochs: int | None,
    cache: str,
    cache_rate: float,
    cache_dir: Path | None,
    num_workers: int,
    batch_size: int | None,
    learning_rate: float | None,
    seed: int | None,
    val_split: str,
    device: str | None,
    threads: int | None,
    smoke: bool,
    no_resume: bool,
    quiet: bool,
    all_errors: bool,
) -> None:
    """Train model CONFIG on the images of a manifest; write weights named by their SHA-256.

    Under ``torchrun --nproc_per_node=N --no-python studyval models train ...`` it trains
    with DistributedDataParallel; a rerun with the same --out resumes after the last epoch.
    """
    with _errors(all_errors=all_errors):
        _models_extra()
        from studyval.models.training import train_from_manifest

        res = train_from_manifest(
            config,
            images,
            out,
            epochs=epochs,
            cache=cache,
            cache_rate=cache_rate,
            cache_dir=cache_dir,
            num_workers=num_workers,
            batch_size=batch_size,
            learning_rate=learning_rate,
            seed=seed,
            val_split=None if val_split == "none" else val_split,
            root=images_root,
            device=device,
            threads=threads,
            smoke=smoke,
            progress=not quiet,
            resume=not no_resume,
        )
    if res.weights_path is not None:
        click.echo(f"weights: {res.weights_path} ({res.model_version})")
    click.echo(f"epochs: {res.start_epoch} -> {res.epochs}")


@models.command(name="predict")
@click.argument("config")
@click.option("--weights", type=click.Path(path_type=Path), required=True)
@click.option("--images", type=click.Path(path_type=Path), required=True, help="Image manifest.")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, callback=_out_path)
@click.option("--images-root", type=click.Path(path_type=Path), default=None)
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option(
    "--num-workers",
    type=int,
    default=1,
    show_default=True,
    help="Model replicas (Ray actors; one per GPU where there are GPUs).",
)
@click.option("--batch-size", type=int, default=8, show_default=True)
@click.option("--ray-address", default=None, help="An existing Ray cluster (default: local Ray).")
@click.option("--device", default=None)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--retry-failed", is_flag=True, help="Score failed rows again.")
@click.option(
    "--case-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Limit on reading one case; a case that takes longer is a failed row "
    "(reason 'timeout'), tried again by a rerun. Default: no limit.",
)
@click.option(
    "--failed",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="failed.csv of 'studyval models crop': cases without a crop keep their failed rows.",
)
@click.option("--smoke", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@_ALL_ERRORS
def models_predict(
    config: str,
    weights: Path,
    images: Path,
    out: Path,
    images_root: Path | None,
    engine: str,
    num_workers: int,
    batch_size: int,
    ray_address: str | None,
    device: str | None,
    threads: int,
    retry_failed: bool,
    case_timeout: float | None,
    failed: Path | None,
    smoke: bool,
    quiet: bool,
    all_errors: bool,
) -> None:
    """Score the images of a manifest with model CONFIG; write the prediction table.

    Resumable: a rerun with the same --out skips every case already scored with the same
    input bytes and model version. An unreadable series is a failed row, never a stop.
    """
    with _errors(all_errors=all_errors):
        _models_extra()
        from studyval.models.inference import predict_from_manifest

        res = predict_from_manifest(
            config,
            weights,
            images,
            out,
            engine=engine,
            num_workers=num_workers,
            batch_size=batch_size,
            ray_address=ray_address,
            root=images_root,
            device=device,
            threads=threads,
            retry_failed=retry_failed,
            case_timeout=case_timeout,
            failed=failed,
            smoke=smoke,
            progress=not quiet,
        )
    click.echo(
        f"{res.n_cases} cases: {res.n_scored} scored, {res.n_skipped} already scored, "
        f"{res.n_failed} failed; model {res.model_version}"
    )
    click.echo(f"predictions: {res.table_path}")


def _crop_size(_ctx, _param, value: str) -> tuple[int, int, int]:
    try:
        size = tuple(int(v) for v in value.split(","))
    except ValueError:
        size = ()
    if len(size) != 3 or min(size) < 1:
        raise click.BadParameter(f"three positive integers X,Y,Z, found {value!r}")
    return size  # type: ignore[return-value]


@models.command(name="crop")
@click.argument("config")
@click.option("--weights", type=click.Path(path_type=Path), required=True)
@click.option(
    "--images",
    type=click.Path(path_type=Path),
    required=True,
    help="Vertebra manifest: an image manifest with vertebral_level and lowest_level.",
)
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, callback=_out_path)
@click.option("--images-root", type=click.Path(path_type=Path), default=None)
@click.option(
    "--crop-size",
    default="64,64,64",
    show_default=True,
    callback=_crop_size,
    help="Box in voxels: at least the ROI of every classifier that reads the crops.",
)
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--smoke", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
@_ALL_ERRORS
def models_crop(
    config: str,
    weights: Path,
    images: Path,
    out: Path,
    images_root: Path | None,
    crop_size: tuple[int, int, int],
    device: str,
    threads: int,
    smoke: bool,
    quiet: bool,
    all_errors: bool,
) -> None:
    """Segment each image with CONFIG and crop every case's vertebra for the classifiers.

    Writes OUT/crops/, OUT/images.csv (the crops' manifest, for 'studyval models predict') and
    OUT/failed.csv (cases without a crop, for its --failed).
    """
    with _errors(all_errors=all_errors):
        _models_extra()
        from studyval.models.crops import crop_vertebrae

        res = crop_vertebrae(
            config,
            weights,
            images,
            out,
            crop_size=crop_size,
            root=images_root,
            device=device,
            threads=threads,
            smoke=smoke,
            progress=not quiet,
        )
    click.echo(
        f"{res.n_cases} cases in {res.n_images} images: {res.n_cropped} cropped, "
        f"{res.n_failed} without a crop; segmentation {res.model_version}"
    )
    click.echo(f"crops: {res.manifest}")
    click.echo(f"failed: {res.failed}")


if __name__ == "__main__":  # pragma: no cover
    main()
