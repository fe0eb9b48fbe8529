"""Command-line interface: ``studyval demo | run | validate | render | synthetic | verify | figures | deidentify``.

Exit codes: 0 success; 1 bad input (the message names file, column, row and
rule), a plan error or a statistic that cannot be estimated; 2 wrong usage of
the command line; 3 the report could not be rendered. On any error nothing is
written at ``--out``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from studyval import __version__
from studyval.errors import StudyvalError
from studyval.manuscript import figures_command
from studyval.verify import verify

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


@main.command()
@click.argument("slug")
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
@_ALL_ERRORS
def run(
    slug: str,
    clinical: Path,
    predictions: Path | None,
    out: Path,
    imaging: Path | None,
    engine: str,
    no_render: bool,
    quiet: bool,
    all_errors: bool,
) -> None:
    """Run protocol SLUG on a clinical table and a prediction table."""
    from studyval.pipeline import run_protocol

    with _errors(all_errors=all_errors):
        res = run_protocol(
            slug,
            clinical=clinical,
            predictions=predictions,
            out=out,
            render=not no_render,
            engine=engine,
            imaging=imaging,
            progress=_Progress(slug, quiet),
        )
    click.echo(f"bundle: {res.bundle}")
    if res.report:
        click.echo(f"report: {res.report} (rendered with {res.engine})")


@main.command()
@click.argument("slug")
@click.option("--clinical", "-c", type=click.Path(path_type=Path), required=True)
@click.option(
    "--predictions",
    "-p",
    type=click.Path(path_type=Path),
    default=None,
    help="Also check the prediction table.",
)
@_ALL_ERRORS
def validate(slug: str, clinical: Path, predictions: Path | None, all_errors: bool) -> None:
    """Check inputs of protocol SLUG against its data dictionary; run nothing."""
    from studyval.pipeline import load_inputs

    with _errors(all_errors=all_errors):
        loaded = load_inputs(slug, clinical, predictions)
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


@main.command()
@click.argument("slug")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True, callback=_out_path)
@click.option("--seed", type=int, default=None, help="Defaults to the plan's seed.")
def synthetic(slug: str, out: Path, seed: int | None) -> None:
    """Write the synthetic demo inputs of protocol SLUG (and their true parameters)."""
    from studyval.pipeline import synthetic_cohort

    with _errors():
        paths = synthetic_cohort(slug, seed=seed).write(out)
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
    """Run every implemented protocol on its bundled synthetic data and render the reports."""
    from studyval.pipeline import (
        IMAGING_CHAINS,
        PROTOCOLS,
        imaging_chain,
        protocol_module,
        run_protocol,
        synthetic_cohort,
    )
    from studyval.plan import load_plan

    with _errors():
        for slug in only:
            protocol_module(slug)
        selected = [s for s in PROTOCOLS if not only or s in only]
        chained = [s for s in selected if imaging and s in IMAGING_CHAINS]
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
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)


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


main.add_command(verify)
main.add_command(figures_command)


if __name__ == "__main__":  # pragma: no cover
    main()
