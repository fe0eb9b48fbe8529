"""Issue 14: reports a PI can read in two minutes.

Data origin in the manifest, the report banner and every caption; a summary that answers the
primary endpoint first; words for people (labels, yes/no, "not estimable", "p < 0.001"); links
that resolve; tables that fit the content column. The rendered reports of every protocol are
read with ``tests/report_reader.py``.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import sys
from pathlib import Path

import pandas as pd
import pytest

from studyval.origin import MARKER_KEY, detect_origin, origin_of_manifest, origin_record
from studyval.reporting import (
    fmt_cell,
    fmt_estimate,
    label,
    md_dictionary,
    md_origin_banner,
    md_section_links,
    md_summary,
    origin_caption,
    p_text,
    target_verdict,
)
from studyval.synthetic._io import write_cohort

sys.path.insert(0, str(Path(__file__).parent))
from report_reader import problems, tables_wider_than_column, tables_wider_than_columns

SLUGS = (
    "ovcf-chronicity",
    "refracture-pvp",
    "cirrhosis-sarcopenia",
    "msk-aging",
    "vcf-opportunistic",
)
SYNTHETIC_NOTE = origin_caption(origin_record("synthetic"))


# --------------------------------------------------------------------------- data origin


def _cohort(tmp_path: Path) -> dict[str, Path]:
    clinical = pd.DataFrame({"case_id": ["a1", "a2"], "age": [61, 72]})
    preds = pd.DataFrame({"case_id": ["a1", "a2"], "score": [0.25, 0.75]})
    return write_cohort(tmp_path / "in", clinical=clinical, truth={"auc": 0.8}, predictions=preds)


def test_synthetic_writer_marks_its_files_and_a_run_knows_them(tmp_path):
    paths = _cohort(tmp_path)
    truth = json.loads(paths["truth"].read_text())
    assert truth["auc"] == 0.8 and truth[MARKER_KEY]["kind"] == "synthetic"
    origin = detect_origin(paths["clinical"], paths["predictions"])
    assert origin["kind"] == "synthetic"
    assert "clinical table and prediction table" in origin["detail"]
    # a rerun into the same folder is accepted (same bytes)
    assert _cohort(tmp_path) == paths


def test_edited_or_moved_synthetic_file_is_user_data(tmp_path):
    paths = _cohort(tmp_path)
    moved = tmp_path / "elsewhere" / "clinical.csv"
    moved.parent.mkdir()
    shutil.copy(paths["clinical"], moved)
    assert detect_origin(moved)["kind"] == "user"
    paths["clinical"].write_text(paths["clinical"].read_text() + "a3,50\n")
    assert detect_origin(paths["clinical"])["kind"] == "user"


def test_truth_json_of_an_earlier_studyval_is_updated_not_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "truth.json").write_text(json.dumps({"auc": 0.8}, indent=2, sort_keys=True) + "\n")
    paths = write_cohort(folder, clinical=pd.DataFrame({"x": [1]}), truth={"auc": 0.8})
    assert MARKER_KEY in json.loads(paths["truth"].read_text())


def test_imaging_demo_output_is_the_phantom_chain(tmp_path):
    paths = _cohort(tmp_path)
    imaging = tmp_path / "imaging"
    imaging.mkdir()
    (imaging / "manifest.json").write_text(
        json.dumps({"chain": "ovcf-chronicity imaging demo (studyval.imaging_demo.ovcf_imaging)"})
    )
    assert detect_origin(paths["clinical"], None, imaging)["kind"] == "phantom"


def test_manifest_without_origin_is_unrecorded_and_banner_texts_are_ours():
    assert origin_of_manifest({})["kind"] == "unrecorded"
    edited = {"data_origin": {"kind": "synthetic", "label": "<script>x</script>", "detail": "[^1]"}}
    origin = origin_of_manifest(edited)
    assert (
        origin["label"] == "Synthetic demonstration data"
    )  # the label is studyval's, not the file's
    banner = md_origin_banner(origin)
    assert banner.startswith("::: {.callout-important .data-origin}")
    assert "\\[\\^1\\]" in banner
    assert md_origin_banner(origin_record("user")) == ""
    assert origin_caption(origin_record("user")) == ""
    with pytest.raises(ValueError):
        origin_record("made-up")


def test_figures_captions_carry_the_origin_note(tmp_path):
    from studyval.manuscript import _captions_md

    manifest = {"protocol": {"registry_id": "X"}, "data_origin": {"kind": "phantom"}}
    records = [{"number": 1, "caption": "ROC curves; 80 patients.", "files": {}}]
    md = _captions_md("ovcf-chronicity", manifest, records)
    note = origin_caption(origin_record("phantom"))
    assert f"**Figure 1.** ROC curves; 80 patients. {note}" in md
    assert "not a clinical result" in md.split("**Figure 1.**")[0]
    user = _captions_md("ovcf-chronicity", {"data_origin": {"kind": "user"}}, records)
    assert "not a clinical result" not in user


# --------------------------------------------------------------------------- words for people


def test_estimates_are_never_inf_or_na():
    assert fmt_estimate(math.inf, math.nan, math.nan, why="no false positives") == (
        "not estimable (no false positives)"
    )
    assert fmt_estimate(0.9123, 0.8, math.inf) == "0.912 (CI not estimable)"
    assert fmt_estimate(0.9123, 0.8, 0.95) == "0.912 (0.800 to 0.950)"
    assert fmt_estimate(None) == "not estimable"


@pytest.mark.parametrize(
    ("p", "text"), [(0.0004, "p < 0.001"), (0.034, "p = 0.034"), (float("nan"), "p not computed")]
)
def test_p_values_as_phrases(p, text):
    assert p_text(p) == text


def test_cells_and_labels():
    assert [fmt_cell(v) for v in (True, False, None, float("nan"), 2.0, 2.0023148949, "True")] == [
        "yes",
        "no",
        "–",
        "–",
        "2",
        "2.002",
        "yes",
    ]
    assert fmt_cell(math.inf) == "not estimable"
    assert label("kappa_quadratic") == "Weighted kappa (quadratic)"
    assert label("years:oa") == "Years × OA"
    assert label("some_new_code") == "Some new code"
    assert label("DenseNet-121") == "DenseNet-121"


def test_target_verdict_reads_the_ci():
    assert target_verdict(0.9, 0.85, 0.95, 0.8).startswith("yes")
    assert target_verdict(0.7, 0.6, 0.75, 0.8).startswith("no")
    assert target_verdict(0.82, 0.7, 0.9, 0.8).startswith("not shown")
    assert target_verdict(0.1, 0.05, 0.15, 0.2, higher_is_better=False).startswith("yes")
    assert target_verdict(0.9, 0.8, 0.95, None) == "no target registered"


def test_shown_in_links_to_sections_that_exist():
    anchors = {"Summary": "sec-summary", "Accuracy": ("sec-accuracy", "Accuracy at the threshold")}
    assert md_section_links("Summary; Accuracy", anchors) == (
        "[Summary](#sec-summary), [Accuracy at the threshold](#sec-accuracy)"
    )
    assert md_section_links(float("nan"), anchors) == ""
    assert (
        md_section_links("Methods [^1]", anchors) == "Methods \\[\\^1\\]"
    )  # text, not a dead link
    with pytest.raises(KeyError, match="Methods"):
        md_section_links("Methods", anchors, strict=True)


def test_summary_escapes_data_and_counts_warnings():
    text = md_summary(
        [
            {
                "endpoint": "AUC [^1]",
                "result": "0.9 (0.8 to 0.95)",
                "n": "80",
                "target": "none",
                "met": "n/a",
                "section": "sec-primary",
            }
        ],
        [{"endpoint": "Sens", "result": "0.8", "section": "sec-acc"}],
        n_warnings=3,
    )
    assert "[AUC \\[\\^1\\]](#sec-primary)" in text
    assert "**3 statistical warnings**" in text and "(#sec-warnings)" in text
    assert "No statistical warnings" in md_summary([], n_warnings=0)


def test_dictionary_pattern_is_code_and_never_a_footnote():
    import pypandoc

    frame = pd.DataFrame(
        {
            "variable": ["case_id"],
            "type": ["string"],
            "role": ["direct_identifier"],
            "unit": [None],
            "allowed": ["string pattern ^[A-Za-z0-9][A-Za-z0-9_.-]*$"],
            "required": [True],
        }
    )
    md = md_dictionary(frame)
    assert "`^[A-Za-z0-9][A-Za-z0-9_.-]*$`" in md and "| yes |" in md
    html = pypandoc.convert_text(md, "html", format="markdown")
    assert "footnote" not in html and "<sup" not in html
    assert "^[A-Za-z0-9][A-Za-z0-9_.-]*$" in html


# --------------------------------------------------------------------------- rendered reports


#: The session's rendered bundle of each protocol (tests/conftest.py), shared with the modules
#: that build it: ovcf-chronicity's demo bundle (``studyval run``, read by test_privacy,
#: test_verify and test_faults), msk-aging's and vcf-opportunistic's bundles with their reports
#: (``rendered_bundle``: test_protocol_msk_aging, test_protocol_vcf_opportunistic). The two
#: survival protocols' sessions bundles have no report: they are the bundles of
#: test_protocol_cirrhosis_sarcopenia (50 resamples) and test_protocol_refracture_pvp (40),
#: copied and rendered once per session (every xdist worker shares that copy).
SHARED_RENDERED = ("msk-aging", "vcf-opportunistic")
RENDERED_COPY = {"cirrhosis-sarcopenia": 50, "refracture-pvp": 40}


@pytest.fixture(scope="module")
def rendered(protocol_bundle, rendered_bundle, demo_bundle, session_builds):
    """``rendered(slug)``: a bundle of the protocol's synthetic inputs with its report (HTML and
    PDF) rendered with the Jupyter engine, built once per session and read only."""
    from studyval.pipeline import report_path
    from studyval.render import render_report

    def get(slug: str) -> Path:
        if slug == "ovcf-chronicity":
            return demo_bundle[0]
        if slug in SHARED_RENDERED:
            return rendered_bundle(slug)
        n = RENDERED_COPY[slug]

        def build(target: Path) -> None:
            shutil.copytree(protocol_bundle(slug, n_resamples=n), target)
            render_report(
                report_path(slug),
                target / "report" / "report.html",
                params={"bundle": str(target.resolve())},
                engine="jupyter",
            )

        return session_builds.once(f"rendered-{slug}-n{n}", build)

    return get


#: Checklist text that a protocol runner writes (studyval/protocols/<slug>.py, not the report)
#: and that the reader may not flag: none left (issue 14, item 9).
RUNNER_CHECKLIST_TEXT: dict[str, tuple[str, ...]] = {}


def _reader_problems(html: str, slug: str, origin_note: str | None) -> list[str]:
    known = RUNNER_CHECKLIST_TEXT.get(slug, ())
    return [
        p
        for p in problems(html, origin_note=origin_note)
        if not (any(k in p for k in known) and ("sec-stard" in p or "sec-tripod" in p))
    ]


@pytest.mark.parametrize("slug", SLUGS)
def test_rendered_report_reads_as_a_pi_would(rendered, slug):
    bundle = rendered(slug)
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["data_origin"]["kind"] == "synthetic"
    html = (bundle / "report" / "report.html").read_text(encoding="utf-8")
    assert _reader_problems(html, slug, SYNTHETIC_NOTE) == []
    # the summary comes before the first numbered section
    assert html.index('id="sec-summary"') < html.index('id="sec-registration"')
    # every "Shown in" of the checklist is a link to a section of this report
    checklist = re.search(r'<section id="sec-(?:stard|tripod)".*?</section>', html, re.S).group()
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", checklist, re.S)[1:]:
        last = re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)[-1].strip()
        assert last == "" or re.fullmatch(r'(<a href="#[^"]+">[^<]+</a>(, )?)+', last), last


#: The widths a table must fit: a wide screen, and A4 at 96 dpi.
WIDTHS = (1400, 794)


@pytest.fixture(scope="module")
def overflowing_tables(rendered) -> dict[tuple[str, int], list[str]]:
    """The tables wider than the content column of each report at each of :data:`WIDTHS`,
    measured in one headless Chromium (report_reader.tables_wider_than_columns)."""
    keys = [(slug, width) for slug in SLUGS for width in WIDTHS]
    found = tables_wider_than_columns(
        [(rendered(slug) / "report" / "report.html", width) for slug, width in keys]
    )
    return dict(zip(keys, found, strict=True))


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the chromium package")
@pytest.mark.parametrize("slug", SLUGS)
def test_tables_fit_the_content_column(overflowing_tables, slug):
    for width in WIDTHS:
        assert overflowing_tables[(slug, width)] == [], width


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs the chromium package")
def test_width_check_finds_a_table_that_overflows(tmp_path):
    cell = "x" * 400
    page = tmp_path / "wide.html"
    page.write_text(
        "<html><body><main style='width:600px'><table><tr>"
        f"<td style='white-space:nowrap'>{cell}</td></tr></table></main></body></html>"
    )
    assert len(tables_wider_than_column(page)) == 1
    # several pages in one browser: each frame has its own width, and each result its own page
    fixed = tmp_path / "fixed.html"
    fixed.write_text(
        "<html><body><main><table style='width:1000px'><tr><td>x</td></tr></table>"
        "</main></body></html>"
    )
    fits, overflows, wide = tables_wider_than_columns([(fixed, 1400), (fixed, 794), (page, 1400)])
    assert (fits, len(overflows), len(wide)) == ([], 1, 1)


@pytest.mark.parametrize("slug", SLUGS)
def test_rendered_report_has_its_pdf(rendered, slug):
    """Issue 14, item 10: the same report as a fixed document (title, banner, summary, fonts
    embedded), and the identifier scan reads the text the PDF shows."""
    from studyval.pipeline import report_path
    from studyval.privacy import scan_for_input_identifiers
    from studyval.render import parse_qmd

    pdf = rendered(slug) / "report" / "report.pdf"
    assert pdf.read_bytes().startswith(b"%PDF-")
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(pdf)
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    title = " ".join(str(parse_qmd(report_path(slug)).front_matter["title"]).split())
    assert title in text
    assert "Synthetic demonstration data" in text  # the data-origin banner
    assert "Summary" in text and ("Primary endpoint" in text or "Primary outcome" in text)
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx((595.28, 841.89), abs=1)  # A4
    for page in reader.pages:  # every font is embedded
        for font in (page.get("/Resources", {}).get("/Font", {}) or {}).values():
            font = font.get_object()
            descendants = font.get("/DescendantFonts")
            desc = (descendants[0].get_object() if descendants else font).get("/FontDescriptor")
            assert desc is not None and any(
                k in desc.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3")
            ), font.get("/BaseFont")
    # the scan reads the PDF's text: a word shown only through its fonts is found there
    registry = json.loads((rendered(slug) / "manifest.json").read_text())["protocol"]
    registry_id = str(registry["registry_id"])
    assert registry_id in text
    scan = scan_for_input_identifiers(pdf, {"registry": [registry_id]})
    assert scan.n_files == 1 and scan.hits == {"registry": ("report.pdf",)}


# --------------------------------------------------------------------------- figure layout


def _drawn(fig):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


@pytest.mark.parametrize("width_mm", [170.0, 85.0])
def test_flow_box_text_stays_inside_its_box(width_mm):
    """Issue 14, item 7: refracture-pvp's exclusion reasons ran out of their box."""
    from studyval.figures.flow import flow_figure

    reasons = [
        "severe scoliosis, prior vertebroplasty or fixation: 5",
        "mental disease, cognitive impairment or critical illness: 6",
        "incomplete preoperative data (plan): 5",
    ]
    stages = pd.DataFrame(
        {
            "key": ["screened", "excluded", "included"],
            "text": [
                "Patients treated with PVP/PKP screened\nn = 602",
                "Excluded, n = 42\n" + "\n".join(reasons),
                "Included (model development)\nn = 560",
            ],
            "x": [0.3, 0.75, 0.3],
            "row": [0, 0, 1],
            "parent": [None, "screened", "screened"],
            "side": [False, True, False],
        }
    )
    fig = flow_figure(stages, width_mm=width_mm)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    boxes = [p.get_window_extent(renderer) for p in ax.patches]
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) == 3
    for text in texts:
        bb = text.get_window_extent(renderer)
        assert any(
            b.x0 <= bb.x0 and bb.x1 <= b.x1 and b.y0 <= bb.y0 and bb.y1 <= b.y1 for b in boxes
        ), text.get_text()
    # a count stays on the line of its label
    assert all(not line.strip().isdigit() for t in texts for line in t.get_text().split("\n"))


def test_pchart_counts_are_not_covered_by_a_flagged_week():
    """Issue 14, item 7: a flagged week near 0 covered the count printed under it."""
    from studyval.figures.monitoring import p_chart_figure

    weeks = range(1, 9)
    points = pd.DataFrame(
        {
            "week": list(weeks),
            "proportion": [0.26, 0.18, 0.26, 0.22, 0.18, 0.01, 0.16, 0.21],
            "n": [160, 158, 160, 160, 160, 160, 160, 160],
            "centre": 0.19,
            "lcl": 0.1,
            "ucl": 0.29,
            "signal": ["", "", "", "", "", "below", "", ""],
        }
    )
    fig = p_chart_figure(points)
    renderer = _drawn(fig)
    ax = fig.axes[0]
    counts = [t for t in ax.texts if t.get_text().strip().isdigit()]
    assert len(counts) == 8
    plot_area = ax.get_window_extent(renderer)
    for text in counts:
        bb = text.get_window_extent(renderer)
        assert bb.y0 >= plot_area.y1  # above the plotting area, where no marker is drawn
        assert bb.y1 <= fig.bbox.y1 + 1  # and inside the figure


def test_reader_catches_a_value_escaped_twice():
    """A Markdown escape that reached the page (a value escaped before md_summary escaped it again)."""
    page = '<main><section id="sec-summary"><p>p = 0.149 (Fisher\\&#39;s exact test)</p></section></main>'
    assert any("escaped twice" in p for p in problems(page))
    clean = page.replace("\\&#39;", "&#39;")
    assert not any("escaped twice" in p for p in problems(clean))


def test_cirrhosis_summary_answers_the_reviewer(rendered):
    """Issue 16 (reviewer's read of cirrhosis-sarcopenia): no p value for the apparent difference
    of nested models fitted on the same patients (the likelihood-ratio test is the test; Pepe et
    al. 2013), the sample-size row speaks of development and of the external events, and the
    estimand (risk under the centre's transplant practice) is stated."""
    html = (rendered("cirrhosis-sarcopenia") / "report" / "report.html").read_text(encoding="utf-8")
    summary = html[html.index('id="sec-summary"') : html.index('id="sec-registration"')]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", summary))
    dev = text[text.index("development centre (apparent)") :][:200]
    assert "likelihood-ratio test of the added term" in dev
    assert "p = " not in dev.split("likelihood-ratio")[0]
    assert "The external centre has" in text
    assert "absence of transplantation" in text


def test_ovcf_summary_answers_the_reviewer(rendered):
    """Issue 16 (reviewer's read of ovcf-chronicity): the Buderer sensitivity is a planning
    assumption, not a target met or missed; the sample-size row is the analysed external set's;
    the two-gate (case-control) design and its consequences are stated before the results."""
    html = (rendered("ovcf-chronicity") / "report" / "report.html").read_text(encoding="utf-8")
    summary = html[html.index('id="sec-summary"') : html.index('id="sec-registration"')]
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", summary)).replace("&#39;", "'")
    assert "planning assumption, not a target" in text
    assert "whole 95% CI is below" not in text
    assert "Sample size, external set" in text and "cover development and validation together" in text
    assert "two-gate, case-control design" in text


def test_refracture_summary_answers_the_reviewer(rendered):
    """Issue 16 (reviewer's read of refracture-pvp): the added value of the MRI is shown as
    optimism-corrected differences beside the likelihood-ratio test, the apparent AUC difference
    of nested models carries no p value, and the estimand (risk if nobody died; coefficients not
    shrunk) is stated."""
    html = (rendered("refracture-pvp") / "report" / "report.html").read_text(encoding="utf-8")
    part = html[html.index('id="sec-summary"') : html.index('id="sec-registration"')]
    summary = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", part)).replace("&#39;", "'")
    assert "optimism-corrected, Harrell's C" in summary and "IPA" in summary
    assert "risk of re-fracture if nobody died" in summary
    comparator = html[html.index('id="sec-comparator"') :][:8000]
    assert "effect sizes, not tests" in comparator
