"""The main job end to end: bundle contents, determinism, atomicity, privacy, truth recovery."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from studyval.bundle import read_manifest
from studyval.errors import InputValidationError, RenderError, StudyvalError
from studyval.pipeline import run_protocol
from studyval.plan import load_plan
from studyval.synthetic.ovcf_chronicity import TRUE_AUC, generate

SLUG = "ovcf-chronicity"


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "report" not in p.parts
    }


@pytest.fixture(scope="module")
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of ovcf-chronicity (tests/conftest.py)."""
    return protocol_inputs(SLUG)


@pytest.fixture(scope="module")
def input_digests(protocol_input_digests) -> dict[str, str]:
    """SHA-256 of each input as it was written, before any bundle was made from it."""
    return protocol_input_digests(SLUG)


@pytest.fixture(scope="module")
def bundle(protocol_bundle) -> Path:
    """The session's bundle of ovcf-chronicity (no report, the bundled plan)."""
    return protocol_bundle(SLUG)


def test_bundle_layout(bundle):
    manifest = read_manifest(bundle)
    for name in (
        "auc",
        "accuracy",
        "confusion",
        "compare_paired",
        "compare_joint",
        "compare_unpaired",
        "flow",
        "baseline",
        "sample_size",
        "checklist",
        "models",
        "roc_points",
        "youden",
        "dictionary",
    ):
        assert (bundle / "tables" / f"{name}.parquet").is_file()
        assert (bundle / "tables" / f"{name}.csv").is_file()
    for fig in ("roc_external", "roc_internal", "confusion_external", "flow"):
        for ext in ("png", "pdf", "svg"):
            assert (bundle / "figures" / f"{fig}.{ext}").is_file()
    assert manifest["protocol"]["registry_id"] == "NCT07306858"
    assert manifest["protocol"]["plan_version"] == load_plan(SLUG).plan_version
    assert set(manifest["inputs"]) == {"clinical", "predictions"}
    assert len(manifest["inputs"]["clinical"]["sha256"]) == 64
    assert manifest["seed"] == 20251216
    assert "numpy" in manifest["environment"]["packages"]
    assert "commit" in manifest["git"]
    for rel, digest in manifest["outputs"].items():
        assert hashlib.sha256((bundle / rel).read_bytes()).hexdigest() == digest


def test_png_is_300_dpi(bundle):
    import matplotlib.image as mpimg

    img = mpimg.imread(bundle / "figures" / "roc_external.png")
    width_in = 85 / 25.4
    assert img.shape[1] == pytest.approx(width_in * 300, abs=2)


def test_same_inputs_give_byte_identical_bundle(inputs, bundle, tmp_path):
    """The same inputs and plan, run again in this process over a copy of the session's bundle
    (made by ``studyval run`` in a subprocess): every file is written anew (the old bundle is
    replaced, not kept) with the same bytes."""
    again = tmp_path / "again"
    shutil.copytree(bundle, again)
    before = {p: p.stat().st_ino for p in again.rglob("*") if p.is_file()}
    run_protocol(
        SLUG,
        clinical=inputs["clinical"],
        predictions=inputs["predictions"],
        out=again,
        render=False,
    )
    assert _tree_hashes(again) == _tree_hashes(bundle)
    kept = [p for p, ino in before.items() if p.is_file() and p.stat().st_ino == ino]
    assert not kept, kept[:3]


def test_inputs_are_never_modified(inputs, input_digests, bundle):
    assert (bundle / "manifest.json").is_file()
    assert {k: hashlib.sha256(v.read_bytes()).hexdigest() for k, v in inputs.items()} == (
        input_digests
    )


def test_direct_identifiers_never_reach_the_bundle(inputs, bundle):
    clinical = pd.read_csv(inputs["clinical"], dtype=str)
    planted = (
        set(clinical["patient_name"])
        | set(clinical["medical_record_number"])
        | set(clinical["date_of_birth"])
    )
    assert len(planted) > 100
    manifest = read_manifest(bundle)
    assert manifest["dictionary"]["removed_direct_identifier_columns"] == [
        "patient_name",
        "medical_record_number",
        "date_of_birth",
    ]
    scanned = 0
    for path in bundle.rglob("*"):
        if path.is_file() and path.suffix in (".csv", ".json", ".svg"):
            text = path.read_text(errors="replace")
            scanned += 1
            hits = [p for p in planted if p in text]
            assert not hits, f"{path.name} contains direct identifiers: {hits[:3]}"
    assert scanned >= 15


def test_failed_run_leaves_no_partial_bundle_and_keeps_the_previous_one(
    inputs, bundle, tmp_path, monkeypatch, minimal_plan
):
    """The run fails at its last stage (the report) after its tables and figures are written to
    its temporary folder; the subject is what it leaves behind, not its numbers, so it runs the
    minimal plan (tests/conftest.py: ``minimal_plan``)."""
    import shutil

    out = tmp_path / "b"
    shutil.copytree(bundle, out)
    before = _tree_hashes(out)

    import studyval.render

    def boom(*args, **kwargs):
        raise RenderError("cell 3 failed")

    monkeypatch.setattr(studyval.render, "render_report", boom)
    with pytest.raises(RenderError, match="cell 3 failed"):
        run_protocol(
            SLUG,
            clinical=inputs["clinical"],
            predictions=inputs["predictions"],
            out=out,
            render=True,
            plan=minimal_plan(SLUG),
        )
    assert _tree_hashes(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"], "no temporary directories left behind"


def test_bad_input_writes_nothing(inputs, tmp_path):
    bad = tmp_path / "predictions.csv"
    frame = pd.read_csv(inputs["predictions"], dtype=str, keep_default_na=False)
    frame.loc[0, "score"] = "nan"
    frame.to_csv(bad, index=False)
    out = tmp_path / "out"
    with pytest.raises(
        InputValidationError, match=r"predictions\.csv, column 'score', row 2: must be a number"
    ):
        run_protocol(SLUG, clinical=inputs["clinical"], predictions=bad, out=out, render=False)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["predictions.csv"]


def test_violations_of_both_tables_are_listed_together(inputs, tmp_path):
    clin = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    clin.loc[0, "sex"] = "X"
    pred = pd.read_csv(inputs["predictions"], dtype=str, keep_default_na=False)
    pred.loc[0, "score"] = "1.7"
    clin.to_csv(tmp_path / "clinical.csv", index=False)
    pred.to_csv(tmp_path / "predictions.csv", index=False)
    with pytest.raises(InputValidationError) as info:
        run_protocol(
            SLUG,
            clinical=tmp_path / "clinical.csv",
            predictions=tmp_path / "predictions.csv",
            out=tmp_path / "o",
            render=False,
        )
    files = {v.file for v in info.value.violations}
    assert files == {"clinical.csv", "predictions.csv"}


def test_refuses_to_overwrite_a_directory_that_is_not_a_bundle(inputs, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious")
    with pytest.raises(StudyvalError, match="is not a studyval results bundle"):
        run_protocol(
            SLUG,
            clinical=inputs["clinical"],
            predictions=inputs["predictions"],
            out=out,
            render=False,
        )
    assert (out / "notes.txt").read_text() == "precious"


def test_single_class_external_set_is_a_clear_error(inputs, tmp_path):
    clin = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    clin.loc[clin["site"] == "EXT", "chronicity"] = "acute"
    clin.to_csv(tmp_path / "clinical.csv", index=False)
    with pytest.raises(
        StudyvalError,
        match=(
            r"ovcf-chronicity, step '.*external set': column .chronicity. "
            r"\(reference standard\), external set, model DenseNet-121: .*single class"
        ),
    ):
        run_protocol(
            SLUG,
            clinical=tmp_path / "clinical.csv",
            predictions=inputs["predictions"],
            out=tmp_path / "o",
            render=False,
        )
    assert not (tmp_path / "o").exists()


def test_registered_sample_size_shortfall_is_reported(bundle):
    ss = pd.read_parquet(bundle / "tables" / "sample_size.parquet")
    reg = ss[ss["check"] == "registered"].iloc[0]
    assert reg["required_unrounded"] == pytest.approx(138.29251754498844, rel=1e-12)
    assert reg["required"] == 139 and reg["available"] == 138 and reg["shortfall"] == 1
    assert reg["message"] == (
        "The registered 138 acute cases are 1 short of the 139 that the Buderer formula requires (138.3 unrounded)."
    )


def test_flow_counts_add_up(bundle):
    flow = pd.read_parquet(bundle / "tables" / "flow.parquet")

    def n(stage, **kw):
        sub = flow[flow["stage"] == stage]
        for k, v in kw.items():
            sub = sub[sub[k] == v]
        return int(sub["n_patients"].sum())

    assert n("screened") == n("excluded") + n("included")
    assert n("excluded") == n("excluded_reason")
    assert n("included") == 276 == n("split")
    for set_ in ("internal", "external"):
        assert n("split", set=set_) == n("index_test_failed", set=set_) + n("analysed", set=set_)
    assert n("index_test_failed", set="external") == 1


def test_stard_checklist_classes(bundle):
    ck = pd.read_parquet(bundle / "tables" / "checklist.parquet")
    assert len(ck) == 34
    assert (ck.loc[ck["class"] == "H", "content"] == "[TO BE WRITTEN BY THE INVESTIGATORS]").all()
    assert (ck.loc[ck["class"] != "H", "content"] != "[TO BE WRITTEN BY THE INVESTIGATORS]").all()
    item18 = ck[ck["item"] == "18"].iloc[0]
    assert "1 short of the 139" in item18["content"]


def test_thresholds_are_labelled(bundle):
    acc = pd.read_parquet(bundle / "tables" / "accuracy.parquet")
    assert set(acc["threshold_status"]) == {"pre-specified", "exploratory"}
    assert (
        acc.loc[acc["threshold_name"] == "youden-internal", "threshold_status"] == "exploratory"
    ).all()
    youden = pd.read_parquet(bundle / "tables" / "youden.parquet")
    assert (youden["status"] == "exploratory").all()


def test_estimates_recover_the_true_aucs_across_seeds():
    """Synthetic truth: mean estimate near the true AUC, and DeLong CIs cover it."""
    from studyval.analysis.discrimination import auc

    est, cover = [], []
    for seed in range(20):
        c = generate(seed)
        p = c.predictions.merge(
            c.clinical[["case_id", "index_vertebra", "chronicity"]], on="case_id"
        )
        p = p[
            (p["index_vertebra"] == "true") & (p["status"] == "ok") & (p["split"] != "development")
        ]
        p = p[p["model_name"] == "DenseNet-121"]
        for split, site in (("internal", "CQMU"), ("external", "EXT")):
            g = p[p["split"] == split]
            r = auc(g["chronicity"].to_numpy(), g["score"].to_numpy(float), positive="acute")
            est.append(r.estimate - TRUE_AUC["DenseNet-121"][site])
            cover.append(r.ci_low <= TRUE_AUC["DenseNet-121"][site] <= r.ci_high)
    assert abs(np.mean(est)) < 0.015
    assert (
        np.mean(cover) >= 0.8
    )  # Wald-type DeLong CIs under-cover a little near AUC 0.9 at n = 30 + 30


def test_manifest_has_no_timestamps_or_absolute_paths(bundle):
    text = (bundle / "manifest.json").read_text()
    assert str(bundle.parent) not in text
    data = json.loads(text)
    assert all("/" not in v["file"] for v in data["inputs"].values())
