"""Results anyone can re-verify: ``studyval verify``, and byte-identical bundles across
thread counts, hash seeds and working directories."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.bundle import read_manifest
from studyval.cli import verify
from studyval.verify import compare_bundles, verify_bundle

SLUG = "ovcf-chronicity"


def hashed_tree(root: Path) -> dict[str, str]:
    """SHA-256 of the manifest, every table and figure and the study copies (report/ is not hashed)."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
        and p.relative_to(root).parts[0] in ("tables", "figures", "study", "manifest.json")
    }


@pytest.fixture(scope="module")
def shared(demo_bundle):
    """The session's demo bundle of ovcf-chronicity and its inputs (tests/conftest.py)."""
    return demo_bundle


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
    assert kinds == {"table", "figure", "study"}  # study/plan.yml and study/dictionary.yml
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
    """A bundle made by another commit with another plan: a cause, not an edit."""
    bundle, inputs = shared
    _, recomputed = verified
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["protocol"]["plan_sha256"] = "0" * 64
    manifest["git"]["commit"] = "1" * 40
    manifest["environment"]["packages"]["numpy"] = "1.0.0"
    (copy / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    report = compare_bundles(
        copy, recomputed, clinical=inputs["clinical"], predictions=inputs["predictions"]
    )
    causes = "\n".join(report.causes)
    assert "analysis plan changed: reports/ovcf-chronicity/plan.yml" in causes
    assert "package versions changed: numpy 1.0.0 -> " in causes
    assert report.manifest_reproduced is False
    assert report.manifest_edits == ()


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
    shared, verified, protocol_bundle
):
    """Three runs, byte for byte the same tables, figures and manifest.

    * the shared bundle: subprocess, 2 BLAS/OpenMP threads, hash seed 2, run from the inputs'
      directory with relative paths, report rendered;
    * the session's bundle of the bundled plan (tests/conftest.py): subprocess, 1 thread, hash
      seed 1, run from another directory with absolute paths, no report;
    * the in-process recomputation of ``studyval verify`` (default threads).
    """
    bundle, _ = shared
    _, recomputed = verified
    out = protocol_bundle(SLUG)
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


# --------------------------------------------------------------------------------- tampering
#
# Each case copies the shared bundle into tmp_path, tampers with the copy and runs the command
# through CliRunner. The recomputation is replaced by a copy of the real one made above
# (``verified``), so that every case takes well under a second.


def _write_manifest(bundle: Path, manifest: dict) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _edit_manifest(bundle: Path, edit) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    edit(manifest)
    _write_manifest(bundle, manifest)


@pytest.fixture
def run_verify(shared, verified, tmp_path, monkeypatch):
    """``run_verify(tamper) -> (result, copy, calls)``: tamper with a copy, verify it."""
    import studyval.pipeline

    bundle, inputs = shared
    _, recomputed = verified
    calls: list[dict] = []

    def fake_run(slug, *, out, **kwargs):
        calls.append({"slug": slug, **kwargs})
        shutil.copytree(recomputed, out)

    monkeypatch.setattr(studyval.pipeline, "run_protocol", fake_run)

    def run(tamper):
        copy = tmp_path / "bundle"
        shutil.copytree(bundle, copy)
        tamper(copy)
        args = [str(copy), "-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])]
        res = CliRunner().invoke(verify, args)
        # no traceback
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        assert "Traceback" not in res.output
        return res, copy, calls

    return run


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow
def test_edited_seed_is_named_as_manifest_tampering(run_verify):
    from studyval.plan import load_plan

    plan_seed = load_plan(SLUG).seed
    assert plan_seed != 7
    res, _, calls = run_verify(lambda b: _edit_manifest(b, lambda m: m.update(seed=7)))
    assert res.exit_code == 1, res.output
    assert calls[0]["seed"] is None  # the recomputation used the plan's seed, not the manifest's
    out = _flat(res.output)
    assert (
        f"manifest field 'seed' says 7, the plan's seed is {plan_seed} and the recomputation "
        "used it" in out
    )
    assert f"the bundle's tables and figures reproduce with seed {plan_seed}" in out
    assert "the manifest's seed was edited after the run" in out
    assert "FAILED: the bundle's manifest was edited after the run (all" in out
    assert "NOT REPRODUCED" not in out
    assert "not deterministic" not in out


def _add_file(rel: str):
    def tamper(bundle: Path) -> None:
        src = bundle / ("tables/auc.csv" if rel.startswith("tables/") else "figures/flow.svg")
        (bundle / rel).write_bytes(src.read_bytes())

    return tamper


@pytest.mark.slow
@pytest.mark.parametrize(
    ("rel", "line"),
    [
        pytest.param("tables/extra.csv", "table extra NOT REPRODUCED", id="extra-table"),
        pytest.param("figures/extra.svg", "figure extra NOT REPRODUCED", id="extra-figure"),
    ],
)
def test_file_added_after_the_run_is_named(run_verify, rel, line):
    res, _, _ = run_verify(_add_file(rel))
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert line in out
    assert "not in manifest: added after the run" in out
    assert (
        f"files were added to the bundle after it was written (not in its manifest): {rel}" in out
    )
    assert "FAILED: 1 of" in out
    assert "not deterministic" not in out


def _set_output_hash(rel: str, digest: str):
    return lambda b: _edit_manifest(b, lambda m: m["outputs"].__setitem__(rel, digest))


def _drop_output(rel: str):
    return lambda b: _edit_manifest(b, lambda m: m["outputs"].pop(rel))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(
            _set_output_hash("tables/auc.csv", "0" * 64),
            [
                "table auc MANIFEST EDITED (csv: manifest hash edited, parquet: reproduced)",
                "manifest field 'outputs', entry 'tables/auc.csv', records SHA-256 "
                "0000000000000000000..., but the bundle's file and its recomputation both have",
                "the file is intact, the manifest was edited",
            ],
            id="hash-edited",
        ),
        pytest.param(
            _drop_output("tables/auc.csv"),
            [
                "table auc MANIFEST EDITED",
                "manifest field 'outputs', entry 'tables/auc.csv', lacks an entry for it, yet "
                "the bundle has it and the recomputation writes it byte for byte",
            ],
            id="entry-removed",
        ),
        pytest.param(
            _set_output_hash("tables/ghost.csv", "1" * 64),
            [
                "table ghost MANIFEST EDITED",
                "entry 'tables/ghost.csv', lists it with SHA-256 1111111111111111111..., yet "
                "neither the bundle nor the recomputation has the file",
            ],
            id="entry-added",
        ),
    ],
)
def test_edited_output_hash_is_blamed_on_the_manifest_not_the_table(run_verify, tamper, expected):
    res, _, _ = run_verify(tamper)
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    for text in expected:
        assert text in out
    assert "FAILED: the bundle's manifest was edited after the run (all" in out
    assert "modified after it was written" not in out
    assert "not deterministic" not in out


@pytest.mark.slow
def test_table_edited_after_the_run_is_modified_in_bundle(run_verify):
    def tamper(bundle: Path) -> None:
        auc = bundle / "tables" / "auc.csv"
        auc.write_text(auc.read_text().replace("0.9", "0.95", 1))

    res, _, _ = run_verify(tamper)
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert "table auc NOT REPRODUCED (csv: modified in bundle, parquet: reproduced)" in out
    assert "tables/auc.csv no longer match(es) the bundle's own manifest" in out
    assert "FAILED: 1 of" in out
    assert "manifest was edited" not in out


@pytest.mark.slow
def test_model_hash_edited_in_manifest_fails_naming_model_and_both_hashes(shared, run_verify):
    bundle, inputs = shared
    model = read_manifest(bundle)["models"][0]
    pred = pd.read_csv(inputs["predictions"], dtype=str, keep_default_na=False)
    real = pred.loc[pred["model_name"] == model["model"], "model_version"].unique().tolist()
    assert real == [model["model_version"]]  # the manifest is the prediction table's
    fake = "sha256:" + "0" * 64

    def tamper(b: Path) -> None:
        _edit_manifest(b, lambda m: m["models"][0].update(model_version=fake))

    res, _, _ = run_verify(tamper)
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert (
        f"manifest field 'models': model {model['model']!r} has model_version {fake} in the "
        f"manifest but {real[0]} in the given prediction table predictions.csv" in out
    )
    assert (
        "its SHA-256 matches the manifest's inputs.predictions, so the manifest was edited" in out
    )
    assert "FAILED: the bundle's manifest was edited after the run (all" in out


def _without(key: str):
    return lambda b: _edit_manifest(b, lambda m: m.pop(key))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        pytest.param(
            _without("protocol"), "required field 'protocol' is missing", id="no-protocol"
        ),
        pytest.param(_without("seed"), "required field 'seed' is missing", id="no-seed"),
        pytest.param(_without("outputs"), "required field 'outputs' is missing", id="no-outputs"),
        pytest.param(
            lambda b: _edit_manifest(b, lambda m: [m.pop("models"), m.pop("inputs")]),
            "required fields 'inputs', 'models' are missing",
            id="no-models-no-inputs",
        ),
        pytest.param(
            lambda b: _edit_manifest(b, lambda m: m.update(seed="7")),
            "field 'seed' must be an integer, got '7'",
            id="seed-a-string",
        ),
        pytest.param(
            lambda b: _edit_manifest(b, lambda m: m["protocol"].pop("slug")),
            "field 'protocol.slug' is missing or empty",
            id="no-slug",
        ),
        pytest.param(
            lambda b: _edit_manifest(b, lambda m: m["models"][0].pop("model_version")),
            "field 'models[0]' must be an object with strings 'model' and 'model_version'",
            id="model-without-version",
        ),
    ],
)
def test_manifest_missing_a_required_field_is_a_clear_error(run_verify, tamper, match):
    res, copy, calls = run_verify(tamper)
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert out.startswith(f"studyval: error: {copy / 'manifest.json'}: not a complete studyval")
    assert match in out
    assert "KeyError" not in out
    assert calls == []  # refused before recomputing


@pytest.mark.slow
def test_failed_recomputation_is_not_called_nondeterministic(shared, tmp_path, monkeypatch):
    import studyval.pipeline
    from studyval.errors import StudyvalError

    bundle, inputs = shared

    def failing_run(slug, **kwargs):
        raise StudyvalError("clinical.csv: column 'age' is missing")

    monkeypatch.setattr(studyval.pipeline, "run_protocol", failing_run)
    args = [str(bundle), "-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])]
    res = CliRunner().invoke(verify, args)
    assert res.exit_code == 1, res.output
    assert "recomputation failed: clinical.csv: column 'age' is missing" in res.output
    assert "not deterministic" not in res.output


@pytest.mark.slow
def test_seed_of_a_changed_plan_is_a_cause_not_tampering(shared, verified, tmp_path):
    """When the plan changed since the run, another seed is the plan's doing, not an edit."""
    bundle, inputs = shared
    _, recomputed = verified
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    _edit_manifest(
        copy,
        lambda m: (
            m.update(seed=7),
            m["protocol"].update(plan_sha256="0" * 64),
            m["git"].update(commit="1" * 40),  # made by another commit, with another plan
        ),
    )
    report = compare_bundles(
        copy, recomputed, clinical=inputs["clinical"], predictions=inputs["predictions"]
    )
    assert report.manifest_edits == ()
    causes = "\n".join(report.causes)
    assert "analysis plan changed" in causes
    assert "seed changed: the bundle was made with seed 7, the current plan of" in causes


@pytest.mark.parametrize(
    ("manifest", "match"),
    [
        pytest.param({}, r"required fields 'protocol', 'seed', .* are missing", id="empty"),
        pytest.param(
            {"protocol": "ovcf-chronicity"},
            r"field 'protocol' must be an object, got 'ovcf-chronicity'",
            id="protocol-a-string",
        ),
        pytest.param(
            {"seed": True, "models": {}, "outputs": {"tables/a.csv": 1}},
            r"field 'seed' must be an integer, got True; field 'models' must be a list",
            id="wrong-types",
        ),
        pytest.param(
            {"imaging": ["manifest.json"]},
            r"field 'imaging' must be an object, got \['manifest.json'\]",
            id="imaging-a-list",
        ),
    ],
)
def test_incomplete_manifest_is_refused_before_recomputing(tmp_path, manifest, match):
    from studyval.verify import ManifestError

    _write_manifest(tmp_path, manifest)
    with pytest.raises(ManifestError, match=match):
        verify_bundle(tmp_path, clinical=tmp_path / "clinical.csv")


@pytest.mark.slow
def test_other_seed_with_outputs_that_differ_is_still_named(shared, verified, tmp_path):
    """A bundle really made with another seed: its seed-dependent outputs do not reproduce."""
    bundle, inputs = shared
    _, recomputed = verified
    copy, again = tmp_path / "bundle", tmp_path / "recomputed"
    shutil.copytree(bundle, copy)
    shutil.copytree(recomputed, again)
    _edit_manifest(copy, lambda m: m.update(seed=7))
    auc = again / "tables" / "auc.csv"  # as if the plan's seed gave other intervals
    auc.write_text(auc.read_text().replace("0.9", "0.95", 1))
    report = compare_bundles(
        copy, again, clinical=inputs["clinical"], predictions=inputs["predictions"]
    )
    assert not report.ok
    assert [(o.path, o.status) for o in report.failed] == [("tables/auc.csv", "differs")]
    assert len(report.manifest_edits) == 1
    assert report.manifest_edits[0].startswith("manifest field 'seed' says 7, the plan's seed is")
    assert (
        "the bundle was made with another seed than the plan's, or its manifest's seed"
        in (report.manifest_edits[0])
    )
    assert "not deterministic" not in report.format()


@pytest.mark.slow
def test_model_hash_with_another_prediction_table_blames_the_table(shared, verified, tmp_path):
    bundle, inputs = shared
    _, recomputed = verified
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    _edit_manifest(copy, lambda m: m["models"][0].update(model_version="sha256:" + "0" * 64))
    other = tmp_path / "predictions-v2.csv"
    other.write_bytes(inputs["predictions"].read_bytes() + b"\n")
    again = tmp_path / "recomputed"  # another prediction table gives other results
    shutil.copytree(recomputed, again)
    auc = again / "tables" / "auc.csv"
    auc.write_text(auc.read_text().replace("0.9", "0.95", 1))
    report = compare_bundles(copy, again, clinical=inputs["clinical"], predictions=other)
    assert not report.ok
    edits = "\n".join(report.manifest_edits)
    assert "in the given prediction table predictions-v2.csv; it is not the prediction table" in (
        edits
    )
    assert "input predictions changed: predictions-v2.csv" in "\n".join(report.causes)


# ------------------------------------------------------- provenance records edited (V9, V10)


def _set(path: str, value):
    """Tamper: set manifest field ``path`` (dotted) to ``value``."""

    def edit(m: dict) -> None:
        *parents, key = path.split(".")
        for part in parents:
            m = m[part]
        m[key] = value

    return lambda b: _edit_manifest(b, edit)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("field", "value", "expected", "not_a_cause"),
    [
        pytest.param(
            "inputs.clinical.sha256",
            "0" * 64,
            "manifest field 'inputs.clinical.sha256' records 0000000000000000000..., but the "
            "given clinical.csv has {clinical}... and every table and figure reproduces from it "
            "byte for byte: the manifest's record of the clinical input was edited after the run",
            "input clinical changed",
            id="input-sha256",
        ),
        pytest.param(
            "inputs.predictions.bytes",
            1,
            "manifest field 'inputs.predictions.bytes' records 1, but the given predictions.csv "
            "has {predictions_bytes} bytes and the SHA-256 the manifest records",
            "input predictions changed",
            id="input-bytes",
        ),
        pytest.param(
            "dictionary.version",
            "9.9.9",
            "manifest field 'dictionary.version' records 9.9.9, but the recomputation, made by "
            "the studyval version ({version}) and commit ({commit}) the manifest records, records "
            "1.0.0 and every table and figure reproduces: the manifest was edited after the run",
            "data dictionary changed",
            id="dictionary-version",
        ),
        pytest.param(
            "dictionary.name",
            "other-dictionary",
            "manifest field 'dictionary.name' records other-dictionary, but the recomputation, "
            "made by the studyval version ({version})",
            None,
            id="dictionary-name",
        ),
        pytest.param(
            "protocol.plan_sha256",
            "a" * 64,
            "manifest field 'protocol.plan_sha256' records aaaaaaaaaaaaaaaaaaa..., but the "
            "recomputation, made by the studyval version ({version}) and commit ({commit})",
            "analysis plan changed",
            id="plan-sha256",
        ),
        pytest.param(
            "protocol.plan_version",
            "9.0.0",
            "manifest field 'protocol.plan_version' records 9.0.0, but the plan it records "
            "(plan_sha256 {plan}...) is the one the recomputation used, whose plan_version is "
            "{plan_version}: the manifest was edited after the run",
            None,
            id="plan-version",
        ),
    ],
)
def test_edited_input_plan_and_dictionary_records_fail_as_manifest_edits(
    shared, run_verify, field, value, expected, not_a_cause
):
    """V9: every output reproduces, so a record that disagrees with the inputs was edited."""
    bundle, inputs = shared
    manifest = read_manifest(bundle)
    res, _, _ = run_verify(_set(field, value))
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    expected = expected.format(
        clinical=hashlib.sha256(inputs["clinical"].read_bytes()).hexdigest()[:19],
        predictions_bytes=inputs["predictions"].stat().st_size,
        version=manifest["studyval_version"],
        commit=manifest["git"]["commit"][:12],
        plan=manifest["protocol"]["plan_sha256"][:19],
        plan_version=manifest["protocol"]["plan_version"],
    )
    assert expected in out
    assert "FAILED: the bundle's manifest was edited after the run (all" in out
    assert "NOT REPRODUCED" not in out
    if not_a_cause is not None:
        assert not_a_cause not in out  # named as the edit it is, not as a changed input or plan
    assert "not deterministic" not in out


@pytest.mark.slow
def test_environment_differences_stay_notes(run_verify):
    """V9: Python and package versions may differ on a reviewer's machine: no failure."""

    def tamper(b: Path) -> None:
        _set("environment.python", "2.7.18")(b)
        _set("environment.packages.numpy", "1.0.0")(b)

    res, _, _ = run_verify(tamper)
    assert res.exit_code == 0, res.output
    out = _flat(res.output)
    assert "OK: all" in out
    assert "provenance differences (the outputs reproduce nonetheless" in out
    assert "python changed: 2.7.18 -> " in out
    assert "package versions changed: numpy 1.0.0 -> " in out
    assert "edited" not in out


def _plan_digest(slug: str) -> str:
    from studyval.plan import plan_path

    return hashlib.sha256(plan_path(slug).read_bytes()).hexdigest()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        pytest.param(
            _set("protocol.slug", "refracture-pvp"),
            "the manifest's protocol.slug says refracture-pvp, but its plan_sha256 is that of "
            "ovcf-chronicity's plan and the bundle's tables/dictionary is ovcf-chronicity's data "
            "dictionary: the manifest was edited after the run",
            id="slug",
        ),
        pytest.param(
            lambda b: (
                _set("protocol.slug", "refracture-pvp")(b),
                _set("protocol.plan_sha256", _plan_digest("refracture-pvp"))(b),
            ),
            "the manifest's protocol.slug says refracture-pvp, but the bundle's "
            "tables/dictionary is ovcf-chronicity's data dictionary: the manifest was edited",
            id="slug-and-plan",
        ),
        pytest.param(
            _set("protocol.slug", "no-such-protocol"),
            "the manifest's protocol.slug says no-such-protocol, but its plan_sha256 is that of "
            "ovcf-chronicity's plan",
            id="unknown-slug",
        ),
    ],
)
def test_edited_protocol_slug_is_named(run_verify, tamper, expected):
    """V10: the bundle is another protocol's: the edit is named and it is verified as that one."""
    res, _, calls = run_verify(tamper)
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert expected in out
    assert f"the bundle was verified as {SLUG}" in out
    assert [c["slug"] for c in calls] == [SLUG]
    assert res.output.splitlines()[0].endswith(f"({SLUG})")
    assert "FAILED: the bundle's manifest was edited after the run" in out
    assert "analysis plan changed" not in out
    assert "manifest field 'seed'" not in out


# ---------------------------------------------------------------------- imaging/ edited (V3)


@pytest.fixture(scope="module")
def imaging_bundle(shared, tmp_path_factory, minimal_plan):
    """A bundle with an imaging/ folder: ``studyval run ... --no-render --imaging DIR``.

    Run with the minimal plan (conftest's ``minimal_plan``): the cases below check the imaging/
    files against the manifest's hashes, never recomputed (the recomputation is a copy of this
    bundle), and what verify does with imaging/ is the same whatever analyses the plan names.
    """
    from studyval.cli import main

    _, inputs = shared
    root = tmp_path_factory.mktemp("imaging-bundle")
    chain = root / "chain"
    (chain / "tables").mkdir(parents=True)
    (chain / "manifest.json").write_text("{}\n")
    (chain / "tables" / "seg.csv").write_text("model,dice\nunet,0.61\n")
    bundle = root / "bundle"
    args = ["run", SLUG, "-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])]
    args += ["-o", str(bundle), "--no-render", "--imaging", str(chain), "-q"]
    args += ["--plan", str(minimal_plan(SLUG))]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert set(read_manifest(bundle)["imaging"]) == {"manifest.json", "tables/seg.csv"}
    return bundle


@pytest.fixture
def run_verify_imaging(shared, imaging_bundle, tmp_path, monkeypatch):
    """``run(tamper) -> (result, copy, calls)`` on a copy of the imaging bundle.

    The recomputation is replaced by a copy of the untouched bundle, with its imaging/ and
    manifest entry dropped when verify passes no imaging folder (as ``run_protocol`` would).
    """
    import studyval.pipeline

    _, inputs = shared
    calls: list[dict] = []

    def fake_run(slug, *, out, imaging=None, **kwargs):
        calls.append({"slug": slug, "imaging": imaging, **kwargs})
        shutil.copytree(imaging_bundle, out)
        if imaging is None:
            shutil.rmtree(out / "imaging")
            _edit_manifest(out, lambda m: m.pop("imaging"))

    monkeypatch.setattr(studyval.pipeline, "run_protocol", fake_run)

    def run(tamper):
        copy = tmp_path / "bundle"
        shutil.copytree(imaging_bundle, copy)
        tamper(copy)
        args = [str(copy), "-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])]
        res = CliRunner().invoke(verify, args)
        assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
        assert "Traceback" not in res.output
        return res, copy, calls

    return run


@pytest.mark.slow
def test_intact_imaging_is_checked_and_passes(run_verify_imaging):
    res, copy, calls = run_verify_imaging(lambda b: None)
    assert res.exit_code == 0, res.output
    out = _flat(res.output)
    assert "imaging tables/seg as recorded (csv: as recorded)" in out
    assert "imaging manifest as recorded (json: as recorded)" in out
    assert "reproduce byte for byte; its 2 imaging files are as the manifest records" in out
    assert calls[0]["imaging"] == copy / "imaging"


def _replace_in(rel: str, old: str, new: str):
    def tamper(bundle: Path) -> None:
        path = bundle / rel
        path.write_text(path.read_text().replace(old, new))

    return tamper


@pytest.mark.slow
@pytest.mark.parametrize(
    ("tamper", "line", "cause"),
    [
        pytest.param(
            _replace_in("imaging/tables/seg.csv", "0.61", "0.97"),
            "imaging tables/seg NOT AS RECORDED (csv: modified in bundle)",
            "imaging/tables/seg.csv no longer match(es) the bundle's own manifest",
            id="table-edited",
        ),
        pytest.param(
            lambda b: (b / "imaging" / "manifest.json").write_text('{"dice": 0.97}\n'),
            "imaging manifest NOT AS RECORDED (json: modified in bundle)",
            "imaging/manifest.json no longer match(es) the bundle's own manifest",
            id="manifest-edited",
        ),
        pytest.param(
            lambda b: (b / "imaging" / "tables" / "extra.csv").write_text("a\n1\n"),
            "imaging tables/extra NOT AS RECORDED (csv: not in manifest: added after the run)",
            "files were added to the bundle after it was written (not in its manifest): "
            "imaging/tables/extra.csv",
            id="file-added",
        ),
        pytest.param(
            lambda b: (b / "imaging" / "tables" / "seg.csv").unlink(),
            "imaging tables/seg NOT AS RECORDED (csv: missing from bundle)",
            "files listed in the manifest are missing from the bundle: imaging/tables/seg.csv",
            id="file-removed",
        ),
    ],
)
def test_imaging_edited_after_the_run_fails(run_verify_imaging, tamper, line, cause):
    """V3: imaging/ files are checked against the manifest's hashes, not recomputed from."""
    res, _, calls = run_verify_imaging(tamper)
    assert res.exit_code == 1, res.output
    out = _flat(res.output)
    assert line in out
    assert cause in out
    assert "FAILED: 1 of" in out and "imaging files do not match the SHA-256 the manifest" in out
    assert "the recomputation was made without it" in out
    assert calls[0]["imaging"] is None  # an edited imaging/ is not handed to the recomputation
    assert "OK:" not in out
    assert "not deterministic" not in out
