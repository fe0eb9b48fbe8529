"""Command-line interface: ``studyval demo | run | validate | render | synthetic``.

Exit codes: 0 success; 1 bad input (the message names file, column, row and
rule), a plan error or a statistic that cannot be estimated; 2 wrong usage of
the command line; 3 the report could not be rendered. On any error nothing is
written at ``--out``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from studyval import __version__
from studyval.errors import StudyvalError
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


def _fail(exc: Exception) -> None:
    from studyval.errors import RenderError

    code = EXIT_RENDER if isinstance(exc, RenderError) else EXIT_INPUT
    click.echo(f"studyval: error: {exc}", err=True)
    sys.exit(code)


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
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Results bundle directory."
)
@click.option("--engine", type=ENGINES, default="auto", show_default=True, help="Report renderer.")
@click.option("--no-render", is_flag=True, help="Write tables and figures only.")
@click.option("--quiet", "-q", is_flag=True, help="No progress lines.")
def run(
    slug: str,
    clinical: Path,
    predictions: Path | None,
    out: Path,
    engine: str,
    no_render: bool,
    quiet: bool,
) -> None:
    """Run protocol SLUG on a clinical table and a prediction table."""
    from studyval.pipeline import run_protocol

    try:
        res = run_protocol(
            slug,
            clinical=clinical,
            predictions=predictions,
            out=out,
            render=not no_render,
            engine=engine,
            progress=_Progress(slug, quiet),
        )
    except StudyvalError as exc:
        _fail(exc)
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
def validate(slug: str, clinical: Path, predictions: Path | None) -> None:
    """Check inputs of protocol SLUG against its data dictionary; run nothing."""
    from studyval.pipeline import load_inputs

    try:
        loaded = load_inputs(slug, clinical, predictions)
    except StudyvalError as exc:
        _fail(exc)
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

    try:
        res = render_bundle(bundle, engine=engine)
    except StudyvalError as exc:
        _fail(exc)
    click.echo(f"report: {res.output} (rendered with {res.engine})")


@main.command()
@click.argument("slug")
@click.option("--out", "-o", type=click.Path(path_type=Path), required=True)
@click.option("--seed", type=int, default=None, help="Defaults to the plan's seed.")
def synthetic(slug: str, out: Path, seed: int | None) -> None:
    """Write the synthetic demo inputs of protocol SLUG (and their true parameters)."""
    from studyval.pipeline import synthetic_cohort

    try:
        paths = synthetic_cohort(slug, seed=seed).write(out)
    except StudyvalError as exc:
        _fail(exc)
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@main.command()
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), default=Path("results/demo"), show_default=True
)
@click.option("--engine", type=ENGINES, default="auto", show_default=True)
@click.option("--no-render", is_flag=True)
@click.option("--quiet", "-q", is_flag=True)
def demo(out: Path, engine: str, no_render: bool, quiet: bool) -> None:
    """Run every implemented protocol on its bundled synthetic data and render the reports."""
    from studyval.pipeline import PROTOCOLS, run_protocol, synthetic_cohort
    from studyval.plan import load_plan

    try:
        for slug in PROTOCOLS:
            progress = _Progress(slug, quiet)
            progress("generating the synthetic cohort")
            inputs = synthetic_cohort(slug, seed=load_plan(slug).seed).write(out / slug / "inputs")
            res = run_protocol(
                slug,
                clinical=inputs["clinical"],
                predictions=inputs.get("predictions"),
                out=out / slug / "bundle",
                render=not no_render,
                engine=engine,
                progress=progress,
            )
            click.echo(
                f"{slug}: bundle {res.bundle}"
                + (f", report {res.report} ({res.engine})" if res.report else "")
            )
    except StudyvalError as exc:
        _fail(exc)


main.add_command(verify)


if __name__ == "__main__":  # pragma: no cover
    main()
