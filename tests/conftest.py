"""Session fixtures: each protocol's synthetic inputs and results bundles, built once per session.

A bundle takes seconds to a minute to build (figures in three formats, bootstrap refits, a
rendered report), and many modules read the same one, so they are built here once per test
session and shared:

``protocol_inputs(slug)``
    The protocol's synthetic inputs (its generator with the plan's seed) as ``{"clinical": ...,
    "predictions": ..., "truth": ...}``; ``protocol_input_digests(slug)`` gives the SHA-256 of
    each file as it was written, before any bundle was made from it.
``protocol_bundle(slug, n_resamples=None, render=False)``
    A bundle of those inputs made by :func:`studyval.pipeline.run_protocol`. With
    ``n_resamples=None`` the bundled plan runs (the registered resample counts; the manifest
    records the plan file's SHA-256, as ``studyval figures`` and ``studyval verify`` check);
    with a number, the plan given by :func:`trimmed_plan` is passed to ``run_protocol``.
    ovcf-chronicity's bundle of the bundled plan (no report) is made by ``studyval run`` in a
    subprocess instead, with 1 BLAS/OpenMP thread, hash seed 1 and absolute paths, from a folder
    of its own: it is also the second run of test_verify's determinism test (the same tables,
    figures and manifest as ``run_protocol`` in process would make, as that test checks).
``shared_bundle(slug)``
    The bundle most modules read: ovcf-chronicity's of the bundled plan, the survival
    protocols' with the resample counts their own modules use (``SHARED_N_RESAMPLES``).
``rendered_bundle(slug)``
    msk-aging's and vcf-opportunistic's bundles with their reports, read by the protocol's
    own module, test_report_summary and (msk-aging's) test_mmrm: vcf-opportunistic's of the
    bundled plan, msk-aging's with ``SHARED_N_RESAMPLES`` resamples.
``trimmed_plan(slug, n_resamples)``
    The bundled plan with every resample count cut, for a test that passes a plan on;
    ``trimmed_plan_file(slug, n_resamples, folder)`` writes such a plan as a file (``--plan``).
``minimal_plan(slug)``
    A plan file with only the analyses the protocol's checklist needs (``MINIMAL_ANALYSES``),
    for a test of what a run does with files or the command line rather than of its numbers.
``demo_bundle``
    The ovcf-chronicity demo bundle as ``studyval run`` makes it in a subprocess (2 BLAS/OpenMP
    threads, hash seed 2, relative paths, report rendered with Jupyter), and its inputs.

Everything shared is read only: a test that changes a bundle or an input works on a copy.

Under pytest-xdist every worker has a session of its own: the builds go into the folder
above the workers' base temporary folders, each under a file lock, so that each input and
bundle is built by the first worker that needs it and read by the others.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from filelock import FileLock
from pydantic import BaseModel

#: One BLAS/OpenMP thread per test process, unless the caller sets its own. pytest-xdist runs
#: one worker per core, so a worker whose numpy, scipy or torch spread over every core would
#: compete with the others (OpenBLAS threads spin while they wait): on 2 cores the whole run took
#: 12 % less wall time and 6 % less CPU time with one thread each. Set here, at conftest import in
#: the controller, so that the workers and every subprocess a test starts inherit it; a test
#: that runs with more threads (the demo bundle's 2, conftest's ``demo``) sets them itself.
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")
if "numpy" in sys.modules:  # a plugin imported numpy before this file: limit its pools now
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=int(os.environ["OMP_NUM_THREADS"]))

#: The modules that take longest (bundles, recomputations, subprocess runs, training), in
#: decreasing order of their own time in a full run on 2 cores, run first: with ``--dist loadfile
#: --no-loadscope-reorder`` pytest-xdist hands each worker the next file as it finishes one, so
#: the longest go first and the workers finish together (longest processing time first) instead of
#: one worker running a slow module alone at the end. A module that builds a shared bundle comes
#: before the modules that only read it, so that a worker seldom waits on another's build:
#: test_bundle_safety makes ovcf-chronicity's bundle, test_verify the demo bundle (read by
#: test_report_summary, test_faults and test_privacy), test_protocol_msk_aging msk-aging's,
#: test_manuscript the survival protocols' (``shared_bundle``), test_protocol_vcf_opportunistic
#: vcf-opportunistic's. Every other module keeps its place after these.
SLOW_MODULES = (
    "test_bundle_safety.py",
    "test_protocol_msk_aging.py",
    "test_bad_inputs_protocols.py",
    "test_models_predict_engines.py",
    "test_verify.py",
    "test_manuscript.py",
    "test_user_plans.py",
    "test_models_training.py",
    "test_internal_validation.py",
    "test_properties_dictionary.py",
    "test_protocol_vcf_opportunistic.py",
    "test_report_summary.py",
    "test_example_gbsg2.py",
    "test_pipeline.py",
    "test_models_demo.py",
    "test_bad_inputs_vcf_opportunistic.py",
    "test_render.py",
    "test_cli.py",
    "test_faults.py",
    "test_study_type_diagnostic.py",
    "test_example_breast_cancer.py",
    "test_study_type_prognostic.py",
    "test_report_plan_facts.py",
    "test_bad_inputs_cli.py",
    "test_escaping.py",
    "test_bad_inputs_msk_aging.py",
    "test_figures_style.py",
    "test_privacy.py",
    "test_protocol_refracture_pvp.py",
    "test_protocol_cirrhosis_sarcopenia.py",
)
#: The resample counts of the session bundles that are not the bundled plan's. The survival
#: protocols': the ones their own modules test (test_protocol_refracture_pvp's N_BOOT_TEST,
#: test_protocol_cirrhosis_sarcopenia's N_BOOTSTRAP_TEST) and test_report_summary renders
#: (RENDERED_COPY): a module that only reads or draws a bundle's figures (test_manuscript,
#: test_figures_style) shares these (``shared_bundle``) instead of building the bundled plan's
#: 200 refits again. msk-aging's rendered bundle (``rendered_bundle``: test_protocol_msk_aging,
#: test_mmrm, test_report_summary): its patient bootstraps at the plan schema's minimum of 100
#: (the registered 500, 500, 500 and 200 are checked in the plan file and run by ``studyval
#: demo``); its intervals come from the same code at any count, and each interval's method
#: names the count it ran.
SHARED_N_RESAMPLES = {"refracture-pvp": 40, "cirrhosis-sarcopenia": 50, "msk-aging": 100}
#: Fields that set a plan's number of bootstrap resamples or refits (any section of any plan).
RESAMPLE_FIELDS = ("n_resamples", "n_bootstrap")
#: Input files a synthetic cohort writes (SyntheticCohort.write).
INPUT_FILES = {"clinical": "clinical.csv", "predictions": "predictions.csv", "truth": "truth.json"}
DEMO_SLUG = "ovcf-chronicity"
#: The analyses a minimal plan keeps (``minimal_plan_file``): the fewest with which the protocol's
#: report checklist still fills (ovcf-chronicity's STARD items read the AUC and accuracy tables).
MINIMAL_ANALYSES = {"ovcf-chronicity": ("auc", "accuracy", "confusion_matrix")}


def trimmed_plan(slug: str, n_resamples: int):
    """The bundled plan of ``slug`` with every resample count set to ``n_resamples``.

    A count below the plan schema's minimum (msk-aging's and vcf-opportunistic's patient
    bootstraps need at least 100) is raised to that minimum.

    Every section of the plan that has an ``n_resamples`` or ``n_bootstrap`` field gets the
    new count: ovcf-chronicity's calibration, decision curves and vertebra-level analyses,
    the survival protocols' bootstrap refits (``sets``), msk-aging's patient bootstrap
    (``kl``) and vcf-opportunistic's all-scans bootstrap (``unit``).
    """
    from studyval.plan import load_plan

    plan = load_plan(slug)
    update = {}
    for name in type(plan).model_fields:
        part = getattr(plan, name)
        if isinstance(part, BaseModel):
            fields = {
                f: max(n_resamples, _minimum(type(part), f))
                for f in RESAMPLE_FIELDS
                if f in type(part).model_fields
            }
            if fields:
                update[name] = part.model_copy(update=fields)
    if not update:
        raise ValueError(f"the plan of {slug} has no resample count to trim")
    # validated, as a plan file is: a count below the schema's minimum is raised to it
    return type(plan).model_validate(plan.model_copy(update=update).model_dump(by_alias=True))


def trimmed_plan_file(slug: str, n_resamples: int, folder: Path) -> Path:
    """``folder/plan.yml``: the bundled plan's text with every resample count cut, for a test
    that runs the command line (``--plan``). Every ``n_resamples`` / ``n_bootstrap`` line gets
    ``n_resamples``, raised to the largest schema minimum of the plan's resample fields (100 for
    msk-aging and vcf-opportunistic), so that one count suits every section."""
    import re

    from studyval.plan import load_plan, plan_path

    plan = load_plan(slug)
    floor = max(
        (
            _minimum(type(part), f)
            for part in (getattr(plan, name) for name in type(plan).model_fields)
            if isinstance(part, BaseModel)
            for f in RESAMPLE_FIELDS
            if f in type(part).model_fields
        ),
        default=0,
    )
    pattern = r"^(\s*(?:" + "|".join(RESAMPLE_FIELDS) + r")): \d+\s*$"
    text, n = re.subn(
        pattern, rf"\g<1>: {max(n_resamples, floor)}",
        plan_path(slug).read_text(encoding="utf-8"), flags=re.M,
    )  # fmt: skip
    if not n:
        raise ValueError(f"the plan of {slug} has no resample count to trim")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yml"
    path.write_text(text, encoding="utf-8")
    load_plan(path, slug=slug)  # still a valid plan of the protocol
    return path


def minimal_plan_file(slug: str, folder: Path) -> Path:
    """``folder/plan.yml``: the bundled plan's text with every endpoint's ``analyses`` cut to
    :data:`MINIMAL_ANALYSES` (an endpoint left with none keeps an empty list).

    For a test whose subject is what a run does with files, the command line or the bundle's
    layout, not its numbers: the run is a real ``studyval run --plan``, with the steps the
    protocol always runs (flow, baseline, checklist) and a few figures, in a fraction of the
    bundled plan's time.
    """
    import re

    from studyval.plan import load_plan, plan_path

    keep = MINIMAL_ANALYSES[slug]

    def cut(m: re.Match) -> str:
        names = [a.strip() for a in m.group(2).split(",") if a.strip()]
        return f"{m.group(1)}analyses: [{', '.join(a for a in names if a in keep)}]"

    text, n = re.subn(
        r"^(\s*)analyses: \[(.*)\]\s*$", cut, plan_path(slug).read_text(encoding="utf-8"),
        flags=re.M,
    )  # fmt: skip
    if not n:
        raise ValueError(f"the plan of {slug} names no analyses to cut")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "plan.yml"
    path.write_text(text, encoding="utf-8")
    load_plan(path, slug=slug)  # still a valid plan of the protocol
    return path


def _minimum(model: type[BaseModel], field: str) -> int:
    """The schema's lower bound (``ge``) of ``model.field``, 0 where it has none."""
    bounds = [getattr(m, "ge", None) for m in model.model_fields[field].metadata]
    return max([int(b) for b in bounds if b is not None], default=0)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class SessionBuilds:
    """Inputs and bundles built once for the whole session (all xdist workers together)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def once(self, name: str, build: Callable[[Path], None]) -> Path:
        """``root/name``, made by ``build(path)`` unless another test or worker made it."""
        target = self.root / name
        done = self.root / f"{name}.done"
        with FileLock(str(self.root / f"{name}.lock")):
            if not done.is_file():
                shutil.rmtree(target, ignore_errors=True)
                build(target)
                done.write_text("complete\n", encoding="utf-8")
        return target

    # ------------------------------------------------------------------ inputs

    def inputs(self, slug: str) -> dict[str, Path]:
        def build(target: Path) -> None:
            from studyval.pipeline import synthetic_cohort

            paths = synthetic_cohort(slug).write(target)
            digests = {kind: _sha256(p) for kind, p in paths.items()}
            (self.root / f"inputs-{slug}.sha256.json").write_text(
                json.dumps(digests, indent=2, sort_keys=True), encoding="utf-8"
            )

        folder = self.once(f"inputs-{slug}", build)
        return {k: folder / f for k, f in INPUT_FILES.items() if (folder / f).is_file()}

    def input_digests(self, slug: str) -> dict[str, str]:
        self.inputs(slug)
        path = self.root / f"inputs-{slug}.sha256.json"
        return json.loads(path.read_text(encoding="utf-8"))

    # ------------------------------------------------------------------ bundles

    def bundle(self, slug: str, n_resamples: int | None = None, render: bool = False) -> Path:
        inputs = self.inputs(slug)

        def build(target: Path) -> None:
            from studyval.pipeline import run_protocol

            run_protocol(
                slug,
                clinical=inputs["clinical"],
                predictions=inputs.get("predictions"),
                out=target / "bundle",
                render=render,
                engine="jupyter",
                plan=None if n_resamples is None else trimmed_plan(slug, n_resamples),
            )

        if slug == DEMO_SLUG and n_resamples is None and not render:
            build = self._one_thread_run(slug, inputs)
        plan = "registered" if n_resamples is None else f"n{n_resamples}"
        report = "report" if render else "no-report"
        return self.once(f"bundle-{slug}-{plan}-{report}", build) / "bundle"

    @staticmethod
    def _one_thread_run(slug: str, inputs: dict[str, Path]) -> Callable[[Path], None]:
        """``studyval run --no-render`` in a subprocess: 1 BLAS/OpenMP thread, hash seed 1, run
        from a folder of its own with absolute paths (the second run of test_verify's
        determinism test; the demo bundle is the first)."""

        def build(target: Path) -> None:
            cwd = target / "elsewhere"
            cwd.mkdir(parents=True)
            env = dict(os.environ)
            env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
            env.update(PYTHONHASHSEED="1")
            cmd = [sys.executable, "-m", "studyval.cli", "run", slug, "-c", str(inputs["clinical"])]
            cmd += ["-p", str(inputs["predictions"]), "-o", str(target / "bundle")]
            cmd += ["--no-render", "-q"]
            done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
            assert done.returncode == 0, done.stderr

        return build

    def demo(self) -> tuple[Path, dict[str, Path]]:
        """The demo bundle of ovcf-chronicity, made by ``studyval run`` in a subprocess."""
        inputs = self.inputs(DEMO_SLUG)

        def build(target: Path) -> None:
            target.mkdir(parents=True)
            env = dict(os.environ)
            env.update(
                OMP_NUM_THREADS="2",
                OPENBLAS_NUM_THREADS="2",
                MKL_NUM_THREADS="2",
                PYTHONHASHSEED="2",
            )
            out = os.path.relpath(target / "bundle", inputs["clinical"].parent)
            cmd = [sys.executable, "-m", "studyval.cli", "run", DEMO_SLUG, "-c", "clinical.csv"]
            cmd += ["-p", "predictions.csv", "-o", out, "--engine", "jupyter", "-q"]
            done = subprocess.run(
                cmd, cwd=inputs["clinical"].parent, env=env, capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr

        bundle = self.once("demo-ovcf-chronicity", build) / "bundle"
        return bundle, {k: inputs[k] for k in ("clinical", "predictions")}


def pytest_collection_modifyitems(config, items) -> None:
    """The slowest modules first (SLOW_MODULES); the order of the tests within a module is kept."""
    rank = {name: k for k, name in enumerate(SLOW_MODULES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(wrapper=True)
def pytest_collection(session):
    """The cyclic garbage collector, off while the test modules are imported and on after,
    with what was imported moved out of its reach.

    Importing the test modules (and torch, MONAI, pandas, SciPy, matplotlib with them) makes
    about 750,000 objects that live until the worker exits; each full collection traversed
    them all. While they were imported, 13 full collections took 2 of a worker's 10.6 CPU-s;
    during the tests, about 0.4 s each, 32 times a worker (31 of the workers' CPU-s, 7 %).
    So the collector is off during collection; after it, one collection frees what the imports
    left behind and ``gc.freeze`` moves the rest out of the collector's reach (the objects the
    tests make are collected as before). With so few objects left in the oldest generation,
    full collections would come every 10th collection of the middle one (its threshold: the
    rule that waits for 25 % new long-lived objects no longer holds them back); they come every
    100th instead. Young objects are collected as before (the first two thresholds are
    unchanged). Nothing a test computes depends on when the collector runs.
    """
    gc.disable()
    try:
        return (yield)
    finally:
        gc.enable()
        gc.collect()
        gc.freeze()
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, 100)


@pytest.fixture(scope="session")
def session_builds(tmp_path_factory) -> SessionBuilds:
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # shared by the workers of this run
    return SessionBuilds(base / "studyval-session")


@pytest.fixture(scope="session")
def protocol_inputs(session_builds) -> Callable[[str], dict[str, Path]]:
    """``protocol_inputs(slug)``: the protocol's synthetic inputs, written once per session."""
    return session_builds.inputs


@pytest.fixture(scope="session")
def protocol_input_digests(session_builds) -> Callable[[str], dict[str, str]]:
    """``protocol_input_digests(slug)``: SHA-256 of each input file as it was written."""
    return session_builds.input_digests


@pytest.fixture(scope="session")
def protocol_bundle(session_builds) -> Callable[..., Path]:
    """``protocol_bundle(slug, n_resamples=None, render=False)``: a bundle of the synthetic inputs.

    Built on first use, once per session; ``n_resamples=None`` runs the bundled plan.
    """
    return session_builds.bundle


@pytest.fixture(scope="session")
def shared_bundle(session_builds) -> Callable[[str], Path]:
    """``shared_bundle(slug)``: the session's bundle of the protocol most modules read (no report).

    ovcf-chronicity's is the bundled plan's (``protocol_bundle(slug)``); the survival protocols'
    are those of their own test modules, with ``SHARED_N_RESAMPLES`` refits. Each bundle keeps
    its plan (``study/plan.yml``), which ``studyval figures`` and ``studyval verify`` use.
    """

    def get(slug: str) -> Path:
        return session_builds.bundle(slug, n_resamples=SHARED_N_RESAMPLES.get(slug))

    return get


@pytest.fixture(scope="session")
def rendered_bundle(session_builds) -> Callable[[str], Path]:
    """``rendered_bundle(slug)``: the session's bundle of the protocol with its report (HTML and
    PDF, Jupyter engine), read only: vcf-opportunistic's of the bundled plan, msk-aging's with
    ``SHARED_N_RESAMPLES`` resamples. Each keeps its plan (``study/plan.yml``)."""

    def get(slug: str) -> Path:
        return session_builds.bundle(slug, n_resamples=SHARED_N_RESAMPLES.get(slug), render=True)

    return get


@pytest.fixture(scope="session", name="trimmed_plan")
def trimmed_plan_fixture() -> Callable[[str, int], object]:
    """``trimmed_plan(slug, n_resamples)``: the bundled plan with fewer resamples, to pass on."""
    return trimmed_plan


@pytest.fixture(scope="session", name="trimmed_plan_file")
def trimmed_plan_file_fixture() -> Callable[[str, int, Path], Path]:
    """``trimmed_plan_file(slug, n_resamples, folder)``: a plan file with fewer resamples, for
    ``--plan`` on the command line."""
    return trimmed_plan_file


@pytest.fixture(scope="session")
def minimal_plan(tmp_path_factory) -> Callable[[str], Path]:
    """``minimal_plan(slug)``: a plan file of the protocol with only :data:`MINIMAL_ANALYSES`
    (``minimal_plan_file``), written once per session, for ``--plan`` on the command line."""
    folder = tmp_path_factory.mktemp("minimal-plans")
    made: dict[str, Path] = {}

    def get(slug: str) -> Path:
        if slug not in made:
            made[slug] = minimal_plan_file(slug, folder / slug)
        return made[slug]

    return get


@pytest.fixture(scope="session")
def demo_bundle(session_builds) -> tuple[Path, dict[str, Path]]:
    """The ovcf-chronicity demo bundle made by ``studyval run`` in a subprocess, and its inputs.

    test_privacy, test_verify and test_faults read it; the determinism test of test_verify
    compares it with a run made with 1 thread, hash seed 1 and absolute paths.
    """
    return session_builds.demo()
