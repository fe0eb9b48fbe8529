"""Manuscript figures drawn from result tables (never from raw data).

One style for every figure: DejaVu Sans embedded as TrueType in PDF, text as
paths in SVG, sizes for journal columns (single 85 mm, double 170 mm), the
Okabe-Ito colour-blind-safe palette, and line styles and markers that keep
models apart in greyscale. Figures are built on :class:`matplotlib.figure.Figure`
objects (no pyplot global state) and saved with deterministic metadata.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

from cycler import cycler
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.layout_engine import PlaceHolderLayoutEngine

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "DOUBLE_COLUMN_MM",
    "GREY_MARGIN",
    "LINESTYLES",
    "MARKERS",
    "PALETTE",
    "RC",
    "SINGLE_COLUMN_MM",
    "grey_level",
    "legend_below",
    "new_figure",
    "png_and_pixels",
    "png_bytes",
    "save_as",
    "save_figure",
    "series_style",
    "style",
    "tiff_from_pixels",
    "tiff_from_png",
]

SINGLE_COLUMN_MM = 85.0
DOUBLE_COLUMN_MM = 170.0
MM = 1 / 25.4

#: Okabe & Ito (2008) colour-blind-safe palette (blue, vermillion, bluish green, reddish
#: purple, orange, sky blue, yellow, black). Several of these have nearly the same grey
#: level (orange and sky blue; blue and bluish green), so series are also told apart by
#: line style and marker: series ``k`` uses ``PALETTE[k]``, ``LINESTYLES[k]`` and
#: ``MARKERS[k]`` (:func:`series_style`), which differ for the first six series.
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
LINESTYLES = ["-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1))]
MARKERS = ["o", "s", "^", "D", "v", "P"]

#: Smallest difference of grey level (0 = black, 1 = white; :func:`grey_level`) that
#: tells two series of the same line style and marker apart in a greyscale print.
GREY_MARGIN = 0.15

RC = {
    "font.family": "DejaVu Sans",
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "studyval",
    "savefig.dpi": 300,
    "figure.dpi": 100,
    # a series drawn without an explicit colour still takes the Okabe-Ito palette; line
    # styles are not cycled (that would restyle lines given only a colour), so figure
    # functions pass series_style(k) explicitly
    "axes.prop_cycle": cycler(color=PALETTE),
}


def series_style(k: int, *, marker: bool = False) -> dict:
    """Colour, line style (and marker) of series ``k``: distinct in colour and in greyscale."""
    st: dict = {"color": PALETTE[k % len(PALETTE)], "linestyle": LINESTYLES[k % len(LINESTYLES)]}
    if marker:
        st["marker"] = MARKERS[k % len(MARKERS)]
    return st


def grey_level(color: object) -> float:
    """Grey level of ``color`` in a greyscale print, 0 (black) to 1 (white).

    ITU-R BT.601 luma of the sRGB values, as Pillow's ``convert("L")`` and most
    printers' greyscale conversion compute it.
    """
    r, g, b = to_rgb(color)
    return 0.299 * r + 0.587 * g + 0.114 * b


def style() -> matplotlib.RcParams:
    """The rc parameters every studyval figure uses (a copy)."""
    params = matplotlib.RcParams()
    params.update(RC)
    return params


def new_figure(width_mm: float, height_mm: float) -> Figure:
    """A constrained-layout figure of ``width_mm`` x ``height_mm`` in the house style."""
    with matplotlib.rc_context(RC):
        fig = Figure(figsize=(width_mm * MM, height_mm * MM), layout="constrained")
    return fig


def legend_below(fig: Figure, ax: object = None, *, ncols: int = 3) -> Figure:
    """Move ``ax``'s legend under the plot (as a figure legend) and make the figure taller.

    For figures whose curves fill the whole panel (decision curves), where a
    legend inside the axes would hide data at a single-column width. The
    figure grows by the legend's height, so the panel keeps its size.
    ``ax`` defaults to the figure's first axes.
    """
    ax = fig.axes[0] if ax is None else ax
    leg = ax.get_legend()
    if leg is None:
        return fig
    handles = list(leg.legend_handles)
    labels = [t.get_text() for t in leg.get_texts()]
    title = leg.get_title().get_text() or None
    leg.remove()
    rows = -(-len(labels) // ncols) + (1 if title else 0)
    w, h = fig.get_size_inches()
    with matplotlib.rc_context(RC):
        fig.set_size_inches(w, h + (rows * 3.6 + 2.0) * MM)
        fig.legend(
            handles,
            labels,
            title=title,
            loc="outside lower center",
            ncols=ncols,
            frameon=False,
            title_fontsize=RC["legend.fontsize"],
        )
    return fig


#: A matplotlib SVG element id: a letter and a hash of at least 8 hexadecimal digits.
_SVG_ID = r"[A-Za-z][0-9a-f]{8,}"
_SVG_ID_ATTR_RE = re.compile(rf'id="({_SVG_ID})"')
_SVG_ID_WORD_RE = re.compile(rf"\b{_SVG_ID}\b")


def _renumber_svg_ids(path: Path) -> None:
    """Replace matplotlib's hashed SVG element ids by sequential ones.

    The hashes can depend on object identities (e.g. a blended transform's
    repr), which would make two runs of the same analysis differ; sequential
    ids in document order are deterministic.

    Every id (``id="m1f2e3d4c5"``, in order of first appearance) becomes its
    letter and its number (``m000000``) wherever it stands as a whole word, in one
    pass over the text: an id is a whole word of word characters, so the words the
    pass finds are exactly the whole-word occurrences of each id.
    """
    text = path.read_text(encoding="utf-8")
    ids = dict.fromkeys(_SVG_ID_ATTR_RE.findall(text))
    new = {old: f"{old[0]}{k:06d}" for k, old in enumerate(ids)}
    if new:
        text = _SVG_ID_WORD_RE.sub(lambda m: new.get(m.group(), m.group()), text)
    path.write_text(text, encoding="utf-8")


def _settle_layout(fig: Figure) -> None:
    """Keep the layout ``fig`` was just saved with for its later saves.

    A constrained (or tight) layout is worked out again at every save, from the text
    extents of that save's renderer; after the first save the figure keeps its positions
    (matplotlib's placeholder engine), so that every format and resolution of a figure
    shows the same layout and is not laid out again (nor drawn twice: :func:`_drawn_once`).
    A figure changed after it was saved is laid out again only if asked:
    ``fig.set_layout_engine("constrained")``.
    """
    engine = fig.get_layout_engine()
    if engine is not None and not isinstance(engine, PlaceHolderLayoutEngine):
        fig.set_layout_engine("none")


@contextlib.contextmanager
def _drawn_once(fig: Figure) -> Iterator[None]:
    """While saving a figure whose layout is settled, let matplotlib draw it once, not twice.

    ``savefig`` draws a figure that has a layout engine twice: first with its output
    disabled, so that the engine can lay the figure out, then for real. A figure settled by
    its first save (:func:`_settle_layout`) has matplotlib's placeholder engine, which lays
    out nothing, so that first draw would be thrown away: for the length of the save the
    figure has no engine (the real draw is the same), and it gets its placeholder back after.
    """
    engine = fig.get_layout_engine()
    if not isinstance(engine, PlaceHolderLayoutEngine):
        yield
        return
    # no engine at all: set_layout_engine(None) would pick one from these rc parameters
    with matplotlib.rc_context(
        {"figure.autolayout": False, "figure.constrained_layout.use": False}
    ):
        fig.set_layout_engine(None)
    try:
        yield
    finally:
        fig.set_layout_engine(engine)


def png_bytes(fig: Figure, dpi: int) -> bytes:
    """``fig`` rendered as PNG at ``dpi`` (resolution recorded, no software tag).

    The figure's layout is settled by its first save (:func:`_settle_layout`).
    """
    buf = io.BytesIO()
    with matplotlib.rc_context(RC), _drawn_once(fig):
        fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    _settle_layout(fig)
    return buf.getvalue()


def png_and_pixels(fig: Figure, dpi: int) -> tuple[bytes, Image.Image]:
    """``fig`` as PNG at ``dpi`` (:func:`png_bytes`) and the RGBA pixels it was encoded from.

    One drawing gives both: the figure is saved as PNG on an Agg canvas of its own, whose
    buffer then holds the pixels that went into the file, so a TIFF of the same rendering
    (:func:`tiff_from_pixels`) needs no decoding of the PNG. The PNG bytes are those of
    :func:`png_bytes`; the figure keeps its own canvas.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from PIL import Image

    own = fig.canvas
    agg = FigureCanvasAgg(fig)  # the figure's canvas while it is saved: no switch to a new one
    try:
        png = png_bytes(fig, dpi)
        buffer = agg.buffer_rgba()
        height, width = buffer.shape[:2]
        pixels = Image.frombytes("RGBA", (width, height), buffer)  # a copy of the buffer
    finally:
        fig.set_canvas(own)
    return png, pixels


def tiff_from_pixels(pixels: Image.Image, path: Path, *, dpi: int) -> Path:
    """Write RGBA pixels as an RGB, LZW-compressed TIFF with a ``dpi`` resolution tag.

    Transparent pixels are composed over white.
    """
    from PIL import Image

    rgba = pixels if pixels.mode == "RGBA" else pixels.convert("RGBA")
    rgb = Image.new("RGB", rgba.size, (255, 255, 255))
    rgb.paste(rgba, mask=rgba.getchannel("A"))
    rgb.save(path, format="TIFF", compression="tiff_lzw", dpi=(dpi, dpi))
    return Path(path)


def tiff_from_png(png: bytes, path: Path, *, dpi: int) -> Path:
    """Write PNG bytes as an RGB, LZW-compressed TIFF with a ``dpi`` resolution tag."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as im:
        rgba = im.convert("RGBA")
    return tiff_from_pixels(rgba, path, dpi=dpi)


#: Font tables left out of the subset embedded in a PDF: matplotlib's own list (font tool
#: stamps, bitmaps, Apple layout) plus the OpenType layout tables. A PDF viewer draws each
#: glyph by its number with the metrics the PDF gives; substitution, positioning and kerning
#: tables are never read from an embedded font (matplotlib kerns from the full font while
#: laying out text), and subsetting them is most of the time a PDF takes to write.
_DROPPED_FONT_TABLES = (
    "FFTM", "PfEd", "BDF", "meta", "MERG", "TSIV", "Zapf", "bdat", "bloc", "cidg", "fdsc",
    "feat", "fmtx", "fond", "just", "kerx", "ltag", "morx", "trak", "xref",
    "GSUB", "GPOS", "GDEF", "BASE", "JSTF", "MATH", "kern",
)  # fmt: skip


@functools.lru_cache(maxsize=512)
def _font_subset(
    path: str, face_index: int, size: int, mtime_ns: int, glyphs: tuple[int, ...]
) -> tuple[bytes, tuple[tuple[int, int], ...]]:
    """The TrueType subset of a font file holding ``glyphs`` (bytes), and old-to-new glyph numbers.

    ``size`` and ``mtime_ns`` (of the font file) only key the cache to the file's contents.
    """
    from fontTools import subset

    options = subset.Options(glyph_names=True, recommended_glyphs=True)
    options.drop_tables += list(_DROPPED_FONT_TABLES)
    options.font_number = face_index
    with subset.load_font(path, options) as font:
        # the subsetter drops these tables first thing, but it reads the OpenType layout ones
        # (GDEF, GSUB, GPOS) before it does: dropped unread, the subset is the same
        for tag in [t for t in font.keys() if t.strip() in options.drop_tables]:
            del font[tag]
        subsetter = subset.Subsetter(options=options)
        subsetter.populate(gids=list(glyphs))
        subsetter.subset(font)
        buf = io.BytesIO()
        font.save(buf, reorderTables=False)
    return buf.getvalue(), tuple(sorted(subsetter.glyph_index_map.items()))


@contextlib.contextmanager
def _pdf_font_subsets() -> Iterator[None]:
    """While saving a PDF, subset embedded fonts without their layout tables, once per process.

    Replaces matplotlib's TrueType subsetter (``get_glyphs_subset`` of the PDF/PS backends,
    matplotlib 3.10 and later) by :func:`_font_subset`: the same glyphs and outlines, no
    OpenType layout tables (:data:`_DROPPED_FONT_TABLES`), and a subset already made for the
    same font and glyphs is reused. Every subset, new or reused, is read back from its bytes,
    so the PDF's bytes do not depend on what the process drew before. With another matplotlib
    (no ``SubsetResults``) its own subsetter runs.
    """
    try:
        from fontTools.ttLib import TTFont
        from matplotlib.backends import _backend_pdf_ps as pdf_ps
    except ImportError:  # pragma: no cover - matplotlib's PDF backend needs fontTools
        yield
        return
    results = getattr(pdf_ps, "SubsetResults", None)
    original = getattr(pdf_ps, "get_glyphs_subset", None)
    if results is None or original is None:
        yield
        return

    @contextlib.contextmanager
    def subset_from_cache(fontfile: str, glyphs: Iterable[int]) -> Iterator[object]:
        path = str(fontfile)
        stat = Path(path).stat()
        data, mapping = _font_subset(
            path,
            int(getattr(fontfile, "face_index", 0)),
            stat.st_size,
            stat.st_mtime_ns,
            tuple(sorted({int(g) for g in glyphs})),
        )
        font = TTFont(io.BytesIO(data), recalcTimestamp=False, recalcBBoxes=False)
        try:
            yield results(font, dict(mapping))
        finally:
            font.close()

    pdf_ps.get_glyphs_subset = subset_from_cache
    try:
        yield
    finally:
        pdf_ps.get_glyphs_subset = original


def save_as(fig: Figure, path: Path, *, dpi: int | None = None) -> Path:
    """Save ``fig`` at ``path`` with deterministic bytes; the format follows the suffix.

    * ``.pdf``: TrueType fonts embedded (``pdf.fonttype`` 42; subsets without OpenType
      layout tables, :func:`_pdf_font_subsets`), no dates or producer;
    * ``.svg``: text as paths, sequential element ids, no date;
    * ``.png``: ``dpi`` (default 300), resolution recorded, no software tag;
    * ``.tif``/``.tiff``: ``dpi`` (default 300), RGB (white background, no alpha),
      LZW-compressed, resolution tag in dots per inch, drawn through the same
      PNG rendering as ``.png``.

    The first save of a figure settles its layout: later saves (other formats or
    resolutions) draw it once, with the same positions (:func:`_settle_layout`,
    :func:`_drawn_once`).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    with matplotlib.rc_context(RC):
        if suffix == ".png":
            path.write_bytes(png_bytes(fig, int(dpi or RC["savefig.dpi"])))
        elif suffix in (".tif", ".tiff"):
            d = int(dpi or RC["savefig.dpi"])
            tiff_from_pixels(png_and_pixels(fig, d)[1], path, dpi=d)
        elif suffix == ".pdf":
            with _pdf_font_subsets(), _drawn_once(fig):
                fig.savefig(
                    path, metadata={"CreationDate": None, "Producer": None, "Creator": None}
                )
            _settle_layout(fig)
        elif suffix == ".svg":
            with _drawn_once(fig):
                fig.savefig(path, metadata={"Date": None, "Creator": None})
            _settle_layout(fig)
            _renumber_svg_ids(path)
        else:
            raise ValueError(f"cannot save a figure as {path.name}: use .pdf, .svg, .png or .tiff")
    return path


def save_figure(
    fig: Figure, directory: Path, name: str, *, dpi: Sequence[int] = (300,)
) -> list[Path]:
    """Save ``fig`` as PNG (each ``dpi``), PDF and SVG with deterministic bytes.

    Returns the written paths. PNG files are named ``name.png`` for the first
    resolution and ``name_<dpi>dpi.png`` for further ones.
    """
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, d in enumerate(dpi):
        p = directory / (f"{name}.png" if k == 0 else f"{name}_{d}dpi.png")
        paths.append(save_as(fig, p, dpi=d))
    paths.append(save_as(fig, directory / f"{name}.pdf"))
    paths.append(save_as(fig, directory / f"{name}.svg"))
    return paths
