"""One figure style for every protocol (studyval.figures.style and studyval.figures.spec).

Colour-blind-safe palette (Okabe & Ito 2008) that also reads in greyscale: the first
series of every figure differ in line style, marker or grey level; fonts embedded as
TrueType; deterministic bytes; captions files.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import itertools
import json
import re
from pathlib import Path

import matplotlib
import pytest
from matplotlib.container import ErrorbarContainer
from matplotlib.lines import Line2D
from PIL import Image

from studyval.bundle import read_table
from studyval.figures.spec import FigureSpec, captions_json, check_specs, ci_text, draw_specs
from studyval.figures.style import (
    GREY_MARGIN,
    LINESTYLES,
    MARKERS,
    PALETTE,
    RC,
    grey_level,
    new_figure,
    save_as,
    series_style,
)
from studyval.plan import load_plan
from studyval.protocol import protocol
from studyval.study_files import PLAN_COPY

SLUGS = ("ovcf-chronicity", "refracture-pvp", "cirrhosis-sarcopenia")
#: How many series of a figure must stay distinguishable in greyscale.
N_SERIES = 6

OKABE_ITO = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]


@pytest.fixture(scope="module")
def specs(shared_bundle) -> dict[str, list[FigureSpec]]:
    """Every protocol's figure specs, built from the tables of a bundle read back from disk and
    the plan it keeps (the session's bundle of each protocol, tests/conftest.py)."""
    out = {}
    for slug in SLUGS:
        bundle = shared_bundle(slug)
        tables = {p.stem: read_table(bundle, p.stem) for p in (bundle / "tables").glob("*.parquet")}
        plan = load_plan(bundle / PLAN_COPY, slug=slug, check_dictionary=False)
        out[slug] = check_specs(protocol(slug).figure_specs(tables, plan))
    return out


def test_palette_is_okabe_ito():
    assert [c.upper() for c in PALETTE] == OKABE_ITO


def test_series_styles_differ_in_line_style_and_marker():
    styles = [series_style(k, marker=True) for k in range(N_SERIES)]
    assert len({str(s["linestyle"]) for s in styles}) == N_SERIES
    assert len({s["marker"] for s in styles}) == N_SERIES
    assert len(LINESTYLES) >= N_SERIES and len(MARKERS) >= N_SERIES


@pytest.mark.parametrize(
    ("color", "grey"),
    [
        pytest.param("#000000", 0.0, id="black"),
        pytest.param("#FFFFFF", 1.0, id="white"),
        pytest.param("#0072B2", (0.587 * 0x72 + 0.114 * 0xB2) / 255, id="okabe-ito-blue"),
    ],
)
def test_grey_level_is_bt601_luma(color, grey):
    assert grey_level(color) == pytest.approx(grey)


def _style_key(handle) -> tuple:
    """Line style (dash pattern), marker and grey level of a legend entry."""
    if isinstance(handle, ErrorbarContainer):
        handle = handle.lines[0]
    if isinstance(handle, Line2D):
        ls = handle.get_linestyle()
        dashes = getattr(handle, "_unscaled_dash_pattern", (None, None))[1]
        dash = "none" if ls in ("None", "none", " ", "") else (ls, tuple(dashes or ()))
        marker = handle.get_marker()
        marker = None if marker in (None, "None", "none", "", " ") else str(marker)
        if dash == "none" and marker is None:
            dash = "invisible"
        return dash, marker, grey_level(handle.get_color())
    face = handle.get_facecolor()
    face = face[0] if hasattr(face, "ndim") and face.ndim == 2 else face
    return (
        ("patch", handle.get_hatch() if hasattr(handle, "get_hatch") else None),
        None,
        grey_level(face[:3]),
    )


def _legend_handles(fig) -> list[list]:
    """The artists behind each legend (axes legends: the plotted artists; figure legends: the
    legend's own handles)."""
    out = [ax.get_legend_handles_labels()[0] for ax in fig.axes if ax.get_legend() is not None]
    return out + [list(leg.legend_handles) for leg in fig.legends]


@pytest.mark.parametrize("slug", SLUGS)
@pytest.mark.parametrize("width_mm", [85.0, 170.0], ids=["single", "double"])
def test_first_series_stay_distinguishable_in_greyscale(specs, slug, width_mm):
    """The first N series of each legend differ in line style or marker, or in grey level by
    at least GREY_MARGIN (0.15 on a 0-1 scale)."""
    checked = 0
    for spec in specs[slug]:
        if width_mm < spec.width_mm:
            continue  # double-column figures are never drawn at single width
        fig = spec.draw(width_mm)
        for handles in _legend_handles(fig):
            keys = [_style_key(h) for h in handles[:N_SERIES]]
            for (i, a), (j, b) in itertools.combinations(enumerate(keys), 2):
                same_shape = a[0] == b[0] and a[1] == b[1]
                assert not same_shape or abs(a[2] - b[2]) >= GREY_MARGIN, (
                    f"{slug} {spec.name}: legend entries {i} and {j} have the same line style "
                    f"and marker and grey levels {a[2]:.2f} and {b[2]:.2f}"
                )
                checked += 1
    if any(spec.width_mm <= width_mm for spec in specs[slug]):
        assert checked > 0


@pytest.mark.parametrize("slug", SLUGS)
def test_figures_use_the_house_font_and_sizes(specs, slug):
    for spec in specs[slug]:
        fig = spec.draw(spec.width_mm)
        assert fig.get_figwidth() * 25.4 == pytest.approx(spec.width_mm)
        for text in fig.findobj(matplotlib.text.Text):
            if text.get_text():
                assert text.get_fontfamily() == ["DejaVu Sans"], (spec.name, text.get_text())
                assert text.get_fontsize() >= 5, (spec.name, text.get_text())


def test_rc_embeds_truetype_fonts():
    assert RC["pdf.fonttype"] == 42
    assert RC["svg.fonttype"] == "path"


def _sample_figure(width_mm: float = 85.0):
    fig = new_figure(width_mm, 60)
    ax = fig.add_subplot()
    for k in range(3):
        ax.plot([0, 1], [k, k + 1], label=f"model {k} ≥ χ²", **series_style(k, marker=True))
    ax.legend()
    ax.set_xlabel("Threshold ≥ 0.5")
    return fig


def test_pdf_embeds_truetype_even_for_unicode(tmp_path):
    data = save_as(_sample_figure(), tmp_path / "f.pdf").read_bytes()
    assert b"/FontFile2" in data
    assert b"/Type3" not in data


def test_pdf_font_subsets_are_reused_byte_for_byte(tmp_path):
    """A font subset made anew and one reused from the process's cache give the same PDF, and
    the embedded font holds no OpenType layout tables (a PDF viewer never reads them)."""
    from fontTools.ttLib import TTFont
    from matplotlib import font_manager

    style_module = importlib.import_module("studyval.figures.style")
    style_module._font_subset.cache_clear()
    fresh = save_as(_sample_figure(), tmp_path / "a.pdf").read_bytes()
    assert style_module._font_subset.cache_info().currsize > 0
    reused = save_as(_sample_figure(), tmp_path / "b.pdf").read_bytes()
    assert fresh == reused
    assert b"/FontFile2" in reused
    path = font_manager.findfont("DejaVu Sans")
    stat = Path(path).stat()
    data, mapping = style_module._font_subset(path, 0, stat.st_size, stat.st_mtime_ns, (36, 68))
    tables = set(TTFont(io.BytesIO(data)).keys())
    assert {"glyf", "cmap", "hmtx"} <= tables
    assert not {"GSUB", "GPOS", "GDEF", "kern"} & tables
    assert {36, 68} <= {old for old, _ in mapping}  # with .notdef and the recommended glyphs


def test_the_first_save_settles_the_layout(tmp_path):
    """PNG, PDF and SVG of one figure share the layout of its first save."""
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    fig = _sample_figure()
    save_as(fig, tmp_path / "f.png")
    positions = [ax.get_position().bounds for ax in fig.axes]
    assert isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine)
    save_as(fig, tmp_path / "f.pdf")
    save_as(fig, tmp_path / "f.svg")
    assert [ax.get_position().bounds for ax in fig.axes] == positions


def test_a_settled_figure_is_drawn_once_per_save_with_the_same_bytes(tmp_path, monkeypatch):
    """matplotlib draws a figure with a layout engine twice per save (once only to lay it out);
    a settled figure is drawn once, keeps its placeholder engine, and its files are those of
    the double drawing."""
    from matplotlib.figure import Figure
    from matplotlib.layout_engine import PlaceHolderLayoutEngine

    style_module = importlib.import_module("studyval.figures.style")
    draws: list[str] = []
    real_draw = Figure.draw

    def counted(self, renderer):
        draws.append(type(renderer).__name__)
        return real_draw(self, renderer)

    monkeypatch.setattr(Figure, "draw", counted)
    once = {}
    fig = _sample_figure()
    for suffix in (".png", ".pdf", ".svg", ".tiff"):
        draws.clear()
        once[suffix] = save_as(fig, tmp_path / f"once{suffix}", dpi=150).read_bytes()
        assert len(draws) == (2 if suffix == ".png" else 1), (suffix, draws)  # PNG: the layout
        assert isinstance(fig.get_layout_engine(), PlaceHolderLayoutEngine)
    # the reference: every save drawn twice, as matplotlib does on its own
    monkeypatch.setattr(style_module, "_drawn_once", lambda fig: contextlib.nullcontext())
    fig = _sample_figure()
    for suffix in (".png", ".pdf", ".svg", ".tiff"):
        draws.clear()
        twice = save_as(fig, tmp_path / f"twice{suffix}", dpi=150).read_bytes()
        assert len(draws) == 2
        assert twice == once[suffix], suffix


def test_png_and_pixels_are_the_png_and_what_it_decodes_to(tmp_path):
    from studyval.figures.style import png_and_pixels, png_bytes, tiff_from_pixels, tiff_from_png

    fig, reference = _sample_figure(), _sample_figure()
    canvas = fig.canvas
    for dpi in (300, 150):  # the first save settles the layout, the second reuses it
        png, pixels = png_and_pixels(fig, dpi)
        assert fig.canvas is canvas
        assert png == png_bytes(reference, dpi)
        with Image.open(io.BytesIO(png)) as decoded:
            assert decoded.mode == "RGBA"
            assert pixels.size == decoded.size and pixels.tobytes() == decoded.tobytes()
        a = tiff_from_pixels(pixels, tmp_path / f"pixels_{dpi}.tiff", dpi=dpi)
        b = tiff_from_png(png, tmp_path / f"png_{dpi}.tiff", dpi=dpi)
        assert a.read_bytes() == b.read_bytes()


def _renumber_one_id_at_a_time(text: str) -> str:
    """The SVG id renumbering as first written: one substitution over the text per id."""
    ids = list(dict.fromkeys(re.findall(r'id="([A-Za-z][0-9a-f]{8,})"', text)))
    for k, old in enumerate(ids):
        text = re.sub(rf"\b{re.escape(old)}\b", f"{old[0]}{k:06d}", text)
    return text


def test_svg_ids_are_renumbered_as_one_substitution_per_id_would(tmp_path):
    style_module = importlib.import_module("studyval.figures.style")
    fig = _sample_figure()
    raw = tmp_path / "raw.svg"
    with matplotlib.rc_context(RC):
        fig.savefig(raw, metadata={"Date": None, "Creator": None})
    made_up = (
        '<g id="p0123456789a"><use xlink:href="#m1234abcd5678"/></g><path id="m1234abcd5678"/>'
        '<clipPath id="p0123456789ab"/><g clip-path="url(#p0123456789ab)"/><g id="a12345678"/>'
        "p0123456789a_x xp0123456789a p0123456789a-y m1234abcd5678 deadbeef00 q99999999z "
        '<g id="not-an-id"/><g id="B0000000000"/><g id="b00000000000000000000"/>'
    )
    for text in (raw.read_text(encoding="utf-8"), made_up, "<svg/>"):
        path = tmp_path / "f.svg"
        path.write_text(text, encoding="utf-8")
        style_module._renumber_svg_ids(path)
        assert path.read_text(encoding="utf-8") == _renumber_one_id_at_a_time(text)
    assert "m000000" in _renumber_one_id_at_a_time(raw.read_text(encoding="utf-8"))


def test_font_subsets_leave_the_layout_tables_unread_and_are_the_subsetters(tmp_path):
    """The subset made with the dropped tables removed before subsetting is byte for byte the
    one fontTools' subsetter makes when it drops them itself."""
    from fontTools import subset
    from matplotlib import font_manager

    style_module = importlib.import_module("studyval.figures.style")
    fonts = [font_manager.findfont("DejaVu Sans"), font_manager.findfont("DejaVu Sans Mono")]
    for path in fonts:
        stat = Path(path).stat()
        for glyphs in ((36, 68), tuple(range(3, 120)), (1, 500, 1200, 2500)):
            options = subset.Options(glyph_names=True, recommended_glyphs=True)
            options.drop_tables += list(style_module._DROPPED_FONT_TABLES)
            with subset.load_font(path, options) as font:
                subsetter = subset.Subsetter(options=options)
                subsetter.populate(gids=list(glyphs))
                subsetter.subset(font)
                buf = io.BytesIO()
                font.save(buf, reorderTables=False)
            expected = (buf.getvalue(), tuple(sorted(subsetter.glyph_index_map.items())))
            made = style_module._font_subset.__wrapped__(
                path, 0, stat.st_size, stat.st_mtime_ns, glyphs
            )
            assert made == expected, (Path(path).name, glyphs)


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg", ".tiff"])
def test_save_as_is_byte_deterministic(tmp_path, suffix):
    a = save_as(_sample_figure(), tmp_path / f"a{suffix}", dpi=300)
    b = save_as(_sample_figure(), tmp_path / f"b{suffix}", dpi=300)
    assert a.read_bytes() == b.read_bytes()


@pytest.mark.parametrize("dpi", [300, 600])
def test_tiff_resolution_and_size(tmp_path, dpi):
    with Image.open(save_as(_sample_figure(85.0), tmp_path / "f.tiff", dpi=dpi)) as im:
        assert im.info["dpi"] == pytest.approx((dpi, dpi))
        assert im.info["compression"] == "tiff_lzw"
        assert abs(im.width - 85.0 / 25.4 * dpi) <= 1


def test_save_as_refuses_unknown_format(tmp_path):
    with pytest.raises(ValueError, match=r"use \.pdf, \.svg, \.png or \.tiff"):
        save_as(_sample_figure(), tmp_path / "f.jpg")


@pytest.mark.parametrize(
    ("method", "text"),
    [
        pytest.param("DeLong", "DeLong 95% CI", id="delong"),
        pytest.param("wilson", "Wilson 95% CI", id="wilson"),
        pytest.param(
            "cluster bootstrap (bca, 2000 resamples)",
            "cluster bootstrap 95% CI (BCa, 2,000 resamples)",
            id="cluster-bootstrap",
        ),
        pytest.param(
            "(Greenwood variance, log scale)",
            "95% CI (Greenwood variance, log scale)",
            id="detail-only",
        ),
        pytest.param("log (Simel 1991)", "log 95% CI (Simel 1991)", id="year-not-a-count"),
    ],
)
def test_ci_text(method, text):
    assert ci_text(method, 0.95) == text


def test_ci_text_level():
    assert ci_text("wilson", 0.9) == "Wilson 90% CI"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        pytest.param({"name": "roc external"}, "file stem", id="space-in-name"),
        pytest.param({"name": "../roc"}, "file stem", id="path-in-name"),
        pytest.param({"caption": "  "}, "empty caption", id="empty-caption"),
        pytest.param({"column": "triple"}, "column must be", id="bad-column"),
        pytest.param({"draw": None}, "draw must be callable", id="draw-not-callable"),
    ],
)
def test_figure_spec_is_validated(kwargs, match):
    args = {"name": "roc", "caption": "ROC, n = 10 patients.", "draw": _sample_figure}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        FigureSpec(**args)


def test_draw_specs_writes_captions_json_deterministically(tmp_path):
    specs = [
        FigureSpec("zeta", "Z, n = 3 patients.", _sample_figure, "single"),
        FigureSpec("alpha", "A, n = 4 patients; Wilson 95% CI.", _sample_figure, "double"),
    ]
    paths = draw_specs(specs, tmp_path / "a")
    draw_specs(specs, tmp_path / "b")
    text = (tmp_path / "a" / "captions.json").read_text(encoding="utf-8")
    assert text == (tmp_path / "b" / "captions.json").read_text(encoding="utf-8")
    assert text == captions_json(specs)
    data = json.loads(text)
    assert list(data) == ["alpha", "zeta"]  # sorted keys
    assert data["alpha"] == {
        "caption": "A, n = 4 patients; Wilson 95% CI.",
        "column": "double",
        "width_mm": 170.0,
    }
    assert {p.name for p in paths} >= {"zeta.png", "zeta.pdf", "zeta.svg", "captions.json"}
    for name in ("zeta", "alpha"):
        assert (tmp_path / "a" / f"{name}.png").read_bytes() == (
            tmp_path / "b" / f"{name}.png"
        ).read_bytes()


def test_duplicated_figure_names_are_refused(tmp_path):
    spec = FigureSpec("roc", "ROC, n = 10.", _sample_figure)
    with pytest.raises(ValueError, match="duplicated figure names: roc"):
        draw_specs([spec, spec], tmp_path)
