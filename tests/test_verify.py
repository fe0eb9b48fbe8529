"""Results anyone can re-verify: ``studyval verify``, and byte-identical bundles across
thread counts, hash seeds and working directories."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.bundle import read_manifest
from studyval.verify import compare_bundles, verify, verify_bundle

SLUG = "ovcf-chronicity"


def shared_bundle(tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """The demo bundle of ovcf-chronicity, rendered with Jupyter, built once per session.

    test_privacy, test_verify and test_faults all use this same directory (it lives under
    the session's base temporary directory), so the run is paid for once. It is made by
    ``studyval run`` in a subprocess with 2 BLAS/OpenMP threads, hash seed 2 and relative
    paths; the determinism test compares it with a run made with 1 thread.
    """
    import os
    import subprocess
    import sys

    from studyval.synthetic.ovcf_chronicity import generate

    root = tmp_path_factory.getbasetemp() / "studyval-shared-demo"
    inputs = {"clinical": root / "inputs" / "clinical.csv"}
    inputs["predictions"] = root / "inputs" / "predictions.csv"
    if not (root / "DONE").is_file():
        shutil.rmtree(root, ignore_errors=True)
        generate().write(root / "inputs")
        env = dict(os.environ)
        env.update(
            OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", MKL_NUM_THREADS="2", PYTHONHASHSEED="2"
        )
        cmd = [sys.executable, "-m", "studyval.cli", "run", SLUG, "-c", "clinical.csv"]
        cmd += ["-p", "predictions.csv", "-o", "../bundle", "--engine", "jupyter", "-q"]
        done = subprocess.run(cmd, cwd=root / "inputs", env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        (root / "DONE").write_text("complete\n")
    return root / "bundle", inputs


def hashed_tree(root: Path) -> dict[str, str]:
    """SHA-256 of the manifest and of every table and figure (report/ is not hashed)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).parts[0] in ("tables", "figures", "manifest.json")
    }


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    return shared_bundle(tmp_path_factory)


@pytest.fixture(scope="module")
def verified(shared, tmp_path_factory):
    bundle, inputs = shared
    work = tmp_path_factory.mktemp("verify")
    report = verify_bundle(
        bundle, clinical=inputs["clinical"], predictions=inputs["predictions"], workdir=work
    )
    return report, work / "recomputed"


@pytest.mark.slow
def test_fresh_bundle_verifies_table_by_table(shared, verified):
    bundle, _ = shared
    report, recomputed = verified
    assert report.ok, report.format()
    manifest = read_manifest(bundle)
    assert {o.path for o in report.outputs} == set(manifest["outputs"])
    kinds = {k for k, _, _ in report.items()}
    assert kinds == {"table", "figure"}
    text = report.format()
    for kind, name, formats in report.items():
        assert set(formats.values()) == {"reproduced"}
        assert any(line.split()[:3] == [kind, name, "reproduced"] for line in text.splitlines())
    n = len(report.items())
    assert f"OK: all {n} tables and figures reproduce byte for byte" in text
    assert n >= 30
    assert not (recomputed / "report").exists(), "verify does not render by default"


@pytest.mark.slow
def test_tampered_table_is_named(shared, verified, tmp_path):
    bundle, inputs = shared
    _, recomputed = verified
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    auc = copy / "tables" / "auc.csv"
    auc.write_text(auc.read_text().replace("0.9", "0.95", 1))
    report = compare_bundles(
        copy, recomputed, clinical=inputs["clinical"], predictions=inputs["predictions"]
    )
    assert not report.ok
    assert [(o.path, o.status) for o in report.failed] == [("tables/auc.csv", "modified in bundle")]
    assert report.causes[0].startswith(
        "the bundle was modified after it was written: tables/auc.csv"
    )
    text = report.format()
    assert "table  auc" in text and "NOT REPRODUCED" in text
    assert "FAILED: 1 of" in text


@pytest.mark.slow
def test_cli_exit_codes_and_report(shared, verified, tmp_path, monkeypatch):
    """The command's glue: exit 0 when all reproduces, 1 with the table named otherwise.

    The recomputation itself is replaced by a copy of the one made above (it is tested
    for real in test_fresh_bundle_verifies_table_by_table and test_changed_input_is_named).
    """
    import studyval.pipeline

    bundle, inputs = shared
    _, recomputed = verified

    def fake_run(slug, *, out, **kwargs):
        shutil.copytree(recomputed, out)

    monkeypatch.setattr(studyval.pipeline, "run_protocol", fake_run)
    args = ["-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])]
    res = CliRunner().invoke(verify, [str(bundle), *args])
    assert res.exit_code == 0, res.output
    assert "OK: all" in res.output

    copy = tmp_path / "b"
    shutil.copytree(bundle, copy)
    (copy / "figures" / "roc_external.svg").write_bytes(b"<svg/>")
    res = CliRunner().invoke(verify, [str(copy), *args])
    assert res.exit_code == 1
    assert "figure roc_external" in " ".join(res.output.split())
    assert "figures/roc_external.svg no longer match(es) the bundle's own manifest" in res.output


def test_cli_on_a_directory_that_is_not_a_bundle(tmp_path):
    res = CliRunner().invoke(verify, [str(tmp_path), "-c", str(tmp_path / "c.csv")])
    assert res.exit_code == 1
    assert "is not a results bundle: manifest.json is missing" in res.output


@pytest.mark.slow
def test_changed_plan_and_packages_are_named(shared, verified, tmp_path):
    bundle, inputs = shared
    _, recomputed = verified
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["protocol"]["plan_sha256"] = "0" * 64
    manifest["environment"]["packages"]["numpy"] = "1.0.0"
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    report = compare_bundles(
        copy, recomputed, clinical=inputs["clinical"], predictions=inputs["predictions"]
    )
    causes = "\n".join(report.causes)
    assert "analysis plan changed: reports/ovcf-chronicity/plan.yml" in causes
    assert "package versions changed: numpy 1.0.0 -> " in causes
    assert report.manifest_reproduced is False


@pytest.mark.slow
def test_changed_input_is_named(shared, tmp_path):
    """A real recomputation from an edited prediction table, through the command."""
    bundle, inputs = shared
    pred = pd.read_csv(inputs["predictions"], dtype=str, keep_default_na=False)
    row = pred.index[
        (pred["model_name"] == "DenseNet-121")
        & (pred["split"] == "external")
        & (pred["status"] == "ok")
    ][0]
    pred.loc[row, "score"] = "0.012345" if float(pred.loc[row, "score"]) > 0.5 else "0.987654"
    changed = tmp_path / "predictions.csv"
    pred.to_csv(changed, index=False, lineterminator="\n")
    res = CliRunner().invoke(
        verify, [str(bundle), "-c", str(inputs["clinical"]), "-p", str(changed)]
    )
    assert res.exit_code == 1, res.output
    out = res.output
    assert "input predictions changed: predictions.csv has SHA-256" in out
    lines = {" ".join(line.split()[:2]): line for line in out.splitlines()}
    assert "NOT REPRODUCED" in lines["table auc"]
    assert "NOT REPRODUCED" in lines["figure roc_external"]
    assert "reproduced" in lines["table dictionary"] and "NOT" not in lines["table dictionary"]
    assert out.index("likely causes:") < out.index("input predictions changed")


# ------------------------------------------------------------------------------ determinism


@pytest.mark.slow
def test_bundles_are_byte_identical_across_threads_hash_seeds_and_working_directories(
    shared, verified, tmp_path
):
    """Three runs, byte for byte the same tables, figures and manifest.

    * the shared bundle: subprocess, 2 BLAS/OpenMP threads, hash seed 2, run from the inputs'
      directory with relative paths, report rendered;
    * here: subprocess, 1 thread, hash seed 1, run from another directory with absolute paths,
      no report;
    * the in-process recomputation of ``studyval verify`` (default threads).
    """
    bundle, inputs = shared
    _, recomputed = verified
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.update(PYTHONHASHSEED="1")
    out = tmp_path / "one-thread"
    cmd = [sys.executable, "-m", "studyval.cli", "run", SLUG, "-c", str(inputs["clinical"])]
    cmd += ["-p", str(inputs["predictions"]), "-o", str(out), "--no-render", "-q"]
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    trees = [hashed_tree(p) for p in (bundle, out, recomputed)]
    assert len(trees[0]) > 60
    manifests = [read_manifest(p) for p in (bundle, out, recomputed)]
    if len({m["git"]["dirty"] for m in manifests}) > 1:
        # other work in this checkout changed a tracked file between the runs: the manifest
        # rightly records it; everything else must still be identical
        for t, m in zip(trees, manifests, strict=True):
            t.pop("manifest.json")
            m["git"].pop("dirty")
        assert manifests[0] == manifests[1] == manifests[2]
    assert trees[0] == trees[1] == trees[2]
