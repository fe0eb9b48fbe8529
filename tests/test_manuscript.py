"""``studyval figures``: manuscript figures drawn from a results bundle (studyval.manuscript).

The bundles are the session's (tests/conftest.py: ``run_protocol(render=False)`` on each
protocol's synthetic cohort, built once per session); the command is invoked through its
click object with ``CliRunner``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from studyval.bundle import MANIFEST, read_manifest
from studyval.cli import figures_command
from studyval.figures.spec import CAPTIONS
from studyval.manuscript import (
    BundleMismatchError,
    ManuscriptError,
    MissingTableError,
    write_manuscript_figures,
)
from studyval.pipeline import PROTOCOLS

SLUGS = ("ovcf-chronicity", "refracture-pvp", "cirrhosis-sarcopenia")
MM_PER_INCH = 25.4


def _hashes(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class _Bundles(dict):
    """The session's bundle of each protocol (no report), looked up on first use (so that a
    test of one protocol does not wait for the others)."""

    def __init__(self, shared_bundle) -> None:
        super().__init__()
        self.shared_bundle = shared_bundle

    def __missing__(self, slug: str) -> Path:
        assert slug in SLUGS, slug
        self[slug] = self.shared_bundle(slug)
        return self[slug]


@pytest.fixture(scope="module")
def bundles(shared_bundle) -> dict[str, Path]:
    """One bundle per protocol (no report), from the protocol's synthetic cohort, shared with the
    other modules (tests/conftest.py ``shared_bundle``): ovcf-chronicity's made with the bundled
    plan (its captions name the registered resample counts), the survival protocols' with the
    fewer refits of their own test modules. Each bundle keeps the plan it was made with
    (study/plan.yml), which ``studyval figures`` checks against the manifest and draws with."""
    return _Bundles(shared_bundle)


@pytest.fixture(scope="module")
def cirrhosis_full(bundles, tmp_path_factory) -> Path:
    """Every format and resolution (the defaults), through the command line."""
    out = tmp_path_factory.mktemp("ms") / "cirrhosis"
    res = CliRunner().invoke(
        figures_command,
        [
            "cirrhosis-sarcopenia",
            "--out",
            str(out),
            "--bundle",
            str(bundles["cirrhosis-sarcopenia"]),
        ],
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def manuscripts(bundles, cirrhosis_full, tmp_path_factory) -> dict[str, Path]:
    """Every protocol at both widths, vector + 300 dpi raster (600 dpi only for cirrhosis)."""
    out = {"cirrhosis-sarcopenia": cirrhosis_full}
    for slug in ("ovcf-chronicity", "refracture-pvp"):
        target = tmp_path_factory.mktemp("ms") / slug
        write_manuscript_figures(bundles[slug], target, slug=slug, dpi=(300,))
        out[slug] = target
    return out


def _index(out: Path) -> dict:
    return json.loads((out / "captions.json").read_text(encoding="utf-8"))


def test_cli_writes_every_format_and_resolution(cirrhosis_full):
    names = {p.name for p in cirrhosis_full.iterdir()}
    index = _index(cirrhosis_full)
    assert [f["name"] for f in index["figures"]] == ["flow", "cumulative_incidence", "calibration"]
    expected = {"captions.md", "captions.json"}
    for fig in index["figures"]:  # all three are double-column: 170 mm only
        stem = f"{fig['name']}_170mm"
        expected |= {f"{stem}.pdf", f"{stem}.svg"}
        expected |= {f"{stem}_{d}dpi.{e}" for d in (300, 600) for e in ("png", "tiff")}
        assert list(fig["files"]) == ["170mm"]
    assert names == expected


def test_single_column_figures_come_at_both_widths(manuscripts):
    index = _index(manuscripts["ovcf-chronicity"])
    by_name = {f["name"]: f for f in index["figures"]}
    assert set(by_name["roc_external"]["files"]) == {"85mm", "170mm"}
    assert set(by_name["forest_auc"]["files"]) == {"170mm"}  # never squeezed into 85 mm
    for fig in index["figures"]:
        for files in fig["files"].values():
            for f in files:
                assert (manuscripts["ovcf-chronicity"] / f).is_file()


@pytest.mark.parametrize(
    ("slug", "name", "mm", "dpi"),
    [
        pytest.param("ovcf-chronicity", "roc_external", 85, 300, id="single-300"),
        pytest.param("ovcf-chronicity", "roc_external", 170, 300, id="single-at-double-300"),
        pytest.param("cirrhosis-sarcopenia", "calibration", 170, 300, id="double-300"),
        pytest.param("cirrhosis-sarcopenia", "calibration", 170, 600, id="double-600"),
    ],
)
def test_png_pixel_width_is_width_mm_at_dpi(manuscripts, slug, name, mm, dpi):
    with Image.open(manuscripts[slug] / f"{name}_{mm}mm_{dpi}dpi.png") as im:
        assert abs(im.width - mm / MM_PER_INCH * dpi) <= 1
        assert im.info["dpi"] == pytest.approx((dpi, dpi), abs=0.01)


@pytest.mark.parametrize("dpi", [300, 600])
def test_tiff_has_dpi_tag_lzw_and_no_alpha(cirrhosis_full, dpi):
    path = cirrhosis_full / f"cumulative_incidence_170mm_{dpi}dpi.tiff"
    with Image.open(path) as im:
        assert im.format == "TIFF"
        assert im.info["dpi"] == pytest.approx((dpi, dpi))
        assert im.info["compression"] == "tiff_lzw"
        assert im.mode == "RGB"
        assert abs(im.width - 170 / MM_PER_INCH * dpi) <= 1
        with Image.open(cirrhosis_full / f"cumulative_incidence_170mm_{dpi}dpi.png") as png:
            assert im.size == png.size


@pytest.mark.parametrize("slug", SLUGS)
def test_pdf_fonts_are_embedded_truetype_not_type3(manuscripts, slug):
    pdfs = sorted(manuscripts[slug].glob("*.pdf"))
    assert pdfs
    for pdf in pdfs:
        data = pdf.read_bytes()
        assert b"/FontFile2" in data, f"{pdf.name}: no embedded TrueType font"
        assert b"/Type3" not in data, f"{pdf.name}: Type 3 font"
        assert b"/CreationDate" not in data


def test_svg_has_text_as_paths(manuscripts):
    for svg in manuscripts["refracture-pvp"].glob("*.svg"):
        assert "<text" not in svg.read_text(encoding="utf-8")


def test_same_bundle_gives_byte_identical_output(bundles, cirrhosis_full, tmp_path, monkeypatch):
    import studyval.manuscript as manuscript

    rasters = []  # (figure, dpi) of every raster rendering: PNG and TIFF of one dpi share one

    def counting(real):
        def counted(fig, dpi):
            rasters.append((fig, dpi))
            return real(fig, dpi)

        return counted

    for name in ("png_bytes", "png_and_pixels"):
        monkeypatch.setattr(manuscript, name, counting(getattr(manuscript, name)))
    again = tmp_path / "again"
    write_manuscript_figures(bundles["cirrhosis-sarcopenia"], again)
    assert _hashes(again) == _hashes(cirrhosis_full)
    index = _index(cirrhosis_full)
    renderings = sum(len(fig["files"]) for fig in index["figures"]) * len(index["dpi"])
    assert len({(id(fig), dpi) for fig, dpi in rasters}) == len(rasters) == renderings


@pytest.mark.parametrize("slug", ["ovcf-chronicity", "refracture-pvp"])
def test_manuscript_figure_at_its_column_is_the_bundle_figure(bundles, manuscripts, slug):
    """Drawn from the bundle's tables by the same specs: byte-identical to the report's figure."""
    index = _index(manuscripts[slug])
    for fig in index["figures"]:
        stem = manuscripts[slug] / f"{fig['name']}_{fig['width_mm']:g}mm"
        own = bundles[slug] / "figures" / fig["name"]
        for mine, theirs in (
            (stem.with_name(stem.name + ".pdf"), own.with_suffix(".pdf")),
            (stem.with_name(stem.name + ".svg"), own.with_suffix(".svg")),
            (stem.with_name(stem.name + "_300dpi.png"), own.with_suffix(".png")),
        ):
            assert mine.read_bytes() == theirs.read_bytes(), f"{mine.name} != {theirs.name}"


@pytest.mark.parametrize("slug", SLUGS)
def test_every_figure_is_captioned_with_n_and_ci_method(bundles, manuscripts, slug):
    index = _index(manuscripts[slug])
    bundle_caps = json.loads((bundles[slug] / "figures" / CAPTIONS).read_text(encoding="utf-8"))
    bundle_figs = {p.stem for p in (bundles[slug] / "figures").glob("*.png")}
    assert [f["number"] for f in index["figures"]] == list(range(1, len(index["figures"]) + 1))
    assert {f["name"] for f in index["figures"]} == bundle_figs == set(bundle_caps)
    assert index["protocol"]["slug"] == slug
    md = (manuscripts[slug] / "captions.md").read_text(encoding="utf-8")
    for fig in index["figures"]:
        cap = fig["caption"]
        assert bundle_caps[fig["name"]]["caption"] == cap
        assert f"**Figure {fig['number']}.** {cap}" in md
        assert re.search(r"\d[\d,]* (patients|screened)", cap), f"{fig['name']}: no n in {cap!r}"
        draws_ci = not ("No intervals are drawn" in cap or fig["name"] == "flow")
        if draws_ci:
            assert re.search(r"\d+% CI", cap), f"{fig['name']}: no CI method in {cap!r}"
        if slug != "ovcf-chronicity" and fig["name"] not in ("flow",):
            assert re.search(r"events|deaths|death", cap), f"{fig['name']}: no events in {cap!r}"


@pytest.mark.parametrize(
    ("caption_part", "name"),
    [
        pytest.param("DeLong 95% CI", "roc_external", id="roc-delong"),
        pytest.param("Wilson 95% CI", "forest_sensitivity", id="forest-wilson"),
        pytest.param("BCa, 2,000 resamples", "forest_auc", id="forest-cluster-bootstrap"),
        pytest.param("1,000 resamples of patients", "calibration_external", id="calibration-band"),
    ],
)
def test_captions_name_the_interval_method_from_the_tables(manuscripts, caption_part, name):
    caps = {f["name"]: f["caption"] for f in _index(manuscripts["ovcf-chronicity"])["figures"]}
    assert caption_part in caps[name]


def _copy(bundle: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(bundle, dst)
    return dst


def test_plan_hash_mismatch_is_refused(bundles, tmp_path):
    copy = _copy(bundles["refracture-pvp"], tmp_path)
    manifest = read_manifest(copy)
    manifest["protocol"]["plan_sha256"] = "0" * 64
    (copy / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    out = tmp_path / "out"
    with pytest.raises(BundleMismatchError, match="would not match the report"):
        write_manuscript_figures(copy, out, slug="refracture-pvp")
    res = CliRunner().invoke(
        figures_command, ["refracture-pvp", "--out", str(out), "--bundle", str(copy)]
    )
    assert res.exit_code == 1
    assert "is not the one bundle" in " ".join(res.output.split())
    assert not out.exists()


def test_bundle_of_another_protocol_is_refused(bundles, tmp_path):
    out = tmp_path / "out"
    res = CliRunner().invoke(
        figures_command,
        ["refracture-pvp", "--out", str(out), "--bundle", str(bundles["ovcf-chronicity"])],
    )
    assert res.exit_code == 1
    assert "is a ovcf-chronicity bundle, not refracture-pvp" in " ".join(res.output.split())
    assert not out.exists()


def test_edited_table_is_refused(bundles, tmp_path):
    copy = _copy(bundles["cirrhosis-sarcopenia"], tmp_path)
    shutil.copy(copy / "tables" / "warnings.parquet", copy / "tables" / "gray_test.parquet")
    with pytest.raises(BundleMismatchError, match=r"tables/gray_test\.parquet not as recorded"):
        write_manuscript_figures(copy, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_protocol_and_missing_default_bundle(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    res = runner.invoke(figures_command, ["ovcf-chronicty", "--out", "o"])
    assert res.exit_code == 1
    assert "did you mean 'ovcf-chronicity'" in res.output
    res = runner.invoke(figures_command, ["ovcf-chronicity", "--out", "o"])
    assert res.exit_code == 1
    assert "results/demo/ovcf-chronicity/bundle does not exist" in res.output
    assert "studyval demo" in res.output
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"widths": ["singel"]}, "did you mean 'single'", id="width-typo"),
        pytest.param({"formats": ["tif"]}, "did you mean 'tiff'", id="format-typo"),
        pytest.param({"dpi": [30]}, "dpi must be whole numbers", id="dpi-too-low"),
        pytest.param({"widths": []}, "give at least one", id="no-width"),
    ],
)
def test_bad_options_are_refused(bundles, tmp_path, kwargs, match):
    with pytest.raises(ManuscriptError, match=match):
        write_manuscript_figures(bundles["cirrhosis-sarcopenia"], tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_failure_while_drawing_leaves_nothing_and_keeps_earlier_output(
    bundles, cirrhosis_full, tmp_path, monkeypatch
):
    import studyval.protocols.cirrhosis_sarcopenia as mod

    out = tmp_path / "out"
    shutil.copytree(cirrhosis_full, out)
    before = _hashes(out)
    real = mod.figure_specs

    def broken(tables, plan):
        specs = real(tables, plan)

        def boom(width_mm):
            raise ManuscriptError("drawing failed on purpose")

        failing = type(specs[1])(specs[1].name, specs[1].caption, boom, "double")
        return [specs[0], failing, *specs[2:]]

    monkeypatch.setattr(mod, "PROTOCOL", dataclasses.replace(mod.PROTOCOL, figure_specs=broken))
    with pytest.raises(ManuscriptError, match="on purpose"):
        write_manuscript_figures(bundles["cirrhosis-sarcopenia"], out, formats=["pdf"])
    assert _hashes(out) == before  # the earlier complete output is kept
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no temp dirs left
    with pytest.raises(ManuscriptError, match="on purpose"):
        write_manuscript_figures(bundles["cirrhosis-sarcopenia"], tmp_path / "new", formats=["pdf"])
    assert not (tmp_path / "new").exists()


def test_out_holding_other_files_is_refused(bundles, tmp_path):
    out = tmp_path / "paper"
    out.mkdir()
    (out / "draft.docx").write_bytes(b"mine")
    with pytest.raises(ManuscriptError, match="was not written by `studyval figures`"):
        write_manuscript_figures(bundles["cirrhosis-sarcopenia"], out, formats=["pdf"])
    assert [p.name for p in out.iterdir()] == ["draft.docx"]


def test_users_file_saved_among_earlier_figures_is_never_deleted(bundles, cirrhosis_full, tmp_path):
    out = tmp_path / "paper"
    shutil.copytree(cirrhosis_full, out)  # earlier output of `studyval figures`
    (out / "figure_1_final_edit.pdf").write_bytes(b"mine")
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ManuscriptError, match=r"did not write \(figure_1_final_edit\.pdf\)"):
        write_manuscript_figures(bundles["cirrhosis-sarcopenia"], out, formats=["pdf"])
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "figure_1_final_edit.pdf").read_bytes() == b"mine"


def test_command_is_generic_over_protocols():
    """No per-protocol code: the module names no protocol slug."""
    source = Path(__import__("studyval.manuscript").manuscript.__file__).read_text(encoding="utf-8")
    for slug in PROTOCOLS:
        assert slug not in source
        assert slug.replace("-", "_") not in source


def _remove_table(name: str, *, from_manifest: bool = False):
    def tamper(bundle: Path) -> None:
        for ext in ("parquet", "csv"):
            (bundle / "tables" / f"{name}.{ext}").unlink()
        if from_manifest:
            manifest = read_manifest(bundle)
            for ext in ("parquet", "csv"):
                del manifest["outputs"][f"tables/{name}.{ext}"]
            (bundle / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")

    return tamper


@pytest.mark.parametrize(
    ("tamper", "match"),
    [
        pytest.param(
            _remove_table("auc"),
            r"lacks table 'auc' \(listed in its manifest\.json, tables/auc\.parquet missing\)",
            id="needed-table",
        ),
        pytest.param(
            _remove_table("calibration_curves"),
            r"lacks table 'calibration_curves' \(listed in its manifest\.json",
            id="optional-table",
        ),
        pytest.param(
            _remove_table("calibration_curves", from_manifest=True),
            r"lists figure calibration_\w+ that cannot be drawn from its tables: the figures "
            r"look for table 'calibration_curves', missing from the bundle",
            id="optional-table-and-its-manifest-entry",
        ),
        pytest.param(
            _remove_table("auc", from_manifest=True),
            r"has no table 'auc' \(tables/auc\.parquet missing\), which the protocol's figures need",
            id="needed-table-and-its-manifest-entry",
        ),
    ],
)
def test_bundle_lacking_a_table_a_figure_needs_is_refused(bundles, tmp_path, tamper, match):
    copy = _copy(bundles["ovcf-chronicity"], tmp_path)
    tamper(copy)
    out = tmp_path / "out"
    with pytest.raises(MissingTableError, match=match):
        write_manuscript_figures(copy, out, formats=["svg"])
    assert not out.exists()
    res = CliRunner().invoke(
        figures_command,
        ["ovcf-chronicity", "--out", str(out), "--bundle", str(copy), "--format", "svg"],
    )
    assert res.exit_code == 1, res.output
    assert isinstance(res.exception, SystemExit)  # a message, no traceback
    flat = " ".join(res.output.split())
    assert f"bundle {copy}" in flat
    assert re.search(match, flat), flat
    assert not out.exists()
