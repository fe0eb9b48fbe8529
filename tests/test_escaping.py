"""Data is text, never markup: every value from a bundle is escaped for the format it enters.

Unit tests of the escapers of :mod:`studyval.reporting` (checked by reading their
output back with pandoc's own readers), and one end-to-end render of a bundle
whose tables carry script tags, links, shortcodes, footnotes and formulas in
every free-text and id field that reaches the report.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.errors import RenderError
from studyval.reporting import (
    ESCAPERS,
    PLACEHOLDER,
    Bundle,
    Markup,
    escape,
    html_escape,
    latex_escape,
    md_callout,
    md_checklist_content,
    md_code,
    md_escape,
    md_image,
    md_table,
    spreadsheet_escape,
    typst_escape,
)

SCRIPT = '<b onmouseover="alert(document.cookie)">seg failed</b><script>alert(1)</script>'
IMG = "<img src=x>"
LINK = "[x](javascript:alert(1))"
IMAGE = "![x](http://e/x.png)"
SHORTCODE = "{{< include /etc/passwd >}}"
FOOTNOTE = "see note[^1]"
INLINE_NOTE = "^[an inline note]"
FORMULA = '=HYPERLINK("http://e/x","click")'
TYPST = "#set page(fill: red) $x$"
LATEX = r"\input{/etc/passwd}"
REGEX = "string pattern ^[A-Za-z0-9][A-Za-z0-9_.-]*$"
PAYLOADS = [
    SCRIPT,
    IMG,
    LINK,
    IMAGE,
    SHORTCODE,
    FOOTNOTE,
    INLINE_NOTE,
    FORMULA,
    TYPST,
    LATEX,
    REGEX,
]
# Markdown that would start a block, a citation, math, an entity, typography ...
MARKDOWN_TRAPS = [
    "- a list item",
    "+ another",
    "1. ordered",
    "(a) fancy",
    "# heading",
    "> quote",
    "| a | b |",
    ": definition",
    "---",
    "***",
    "::: {.callout-note}",
    "@fig-roc and @smith2020",
    "&amp; &lt;b&gt;",
    "**bold** _em_ ~sub~ ^sup^ ~~strike~~",
    "`{python} 1 + 1`",
    "[span]{.placeholder}",
    "x{=html}",
    "<!-- comment -->",
    "<https://example.org>",
    'it\'s "quoted" -- ... done',
    "trailing backslash \\",
    "a\\|b",
    "line one\nline two\n\n# not a heading",
    "-0.5 (-0.9 to 0.1)",
    "<0.001",
]


def _pandoc() -> str:
    import pypandoc

    return pypandoc.get_pandoc_path()


def _convert(text: str, source: str, target: str = "html") -> str:
    proc = subprocess.run(
        [_pandoc(), "-f", source, "-t", target, "--wrap=none"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return proc.stdout


class _Page(HTMLParser):
    """Tags, attributes and visible text of an HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.chunks: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    handle_startendtag = handle_starttag

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return " ".join("".join(self.chunks).split())


def _page(markup: str) -> _Page:
    page = _Page()
    page.feed(markup)
    page.close()
    return page


def _assert_inert(page: _Page) -> None:
    """Nothing in the page runs, links, embeds or numbers a note."""
    for tag, attrs in page.tags:
        assert tag not in ("script", "img", "a", "iframe", "sup", "code", "math"), (tag, attrs)
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        assert "footnote" not in (attrs.get("class") or ""), (tag, attrs)


# --------------------------------------------------------------------------- #
# Markdown
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("text", PAYLOADS + MARKDOWN_TRAPS)
def test_md_escape_reads_back_as_the_same_text(text):
    escaped = md_escape(text)
    assert "\n" not in escaped
    page = _page(_convert(escaped, "markdown"))
    _assert_inert(page)
    assert [tag for tag, _ in page.tags] == ["p"], page.tags  # one paragraph, no block
    assert page.text == " ".join(text.split())


@pytest.mark.parametrize("text", PAYLOADS)
def test_md_escape_in_a_table_cell_heading_and_caption(text):
    frame = pd.DataFrame({"value": [text], "n": [3]})
    table = md_table(frame, {"value": text, "n": "n"}, caption=f"Caption {text}")
    page = _page(_convert(table, "markdown"))
    allowed = {"table", "caption", "colgroup", "col", "thead", "tbody", "tr", "th", "td"}
    assert {tag for tag, _ in page.tags} <= allowed
    assert not any(name.startswith("on") for _, attrs in page.tags for name in attrs)
    flat = " ".join(text.split())
    assert page.text.count(flat) == 3  # caption, header, cell


def test_md_escape_neutralises_each_construct():
    assert "<" not in md_escape(SCRIPT).replace("\\<", "")
    assert md_escape(IMG) == "\\<img src=x\\>"
    assert md_escape(LINK) == "\\[x\\](javascript:alert(1))"
    assert md_escape(IMAGE) == "!\\[x\\](http://e/x.png)"
    assert md_escape(SHORTCODE) == "\\{\\{\\< include /etc/passwd \\>\\}\\}"
    assert md_escape(FOOTNOTE) == "see note\\[\\^1\\]"
    assert md_escape("^[note]") == "\\^\\[note\\]"
    assert md_escape(FORMULA).startswith("\\=HYPERLINK")
    assert md_escape(TYPST) == "\\#set page(fill: red) \\$x\\$"
    assert md_escape(LATEX) == "\\\\input\\{/etc/passwd\\}"
    # no Quarto shortcode or inline expression survives for Quarto's reader
    from studyval.render import _INLINE_CODE_RE, _SHORTCODE_RE

    for text in PAYLOADS + MARKDOWN_TRAPS:
        assert not _SHORTCODE_RE.search(md_escape(text))
        assert not _INLINE_CODE_RE.search(md_escape(text))


def test_md_escape_leaves_numbers_and_plain_words_alone():
    for text in ("0.912 (0.861 to 0.953)", "-0.25", "12/40 (30.0%)", "DenseNet-121", "CQMU"):
        assert md_escape(text) == text


def test_md_escape_is_idempotent_on_markup():
    once = md_escape(SCRIPT)
    assert isinstance(once, Markup)
    assert md_escape(once) == once
    assert md_escape(Markup("**bold**")) == "**bold**"


def test_md_escape_replaces_control_characters():
    assert md_escape("a\x00b\x1bc") == "a\ufffdb\ufffdc"


def test_regex_pattern_is_not_a_footnote_in_a_table():
    dictionary = pd.DataFrame({"variable": ["case_id"], "allowed": [REGEX]})
    page = _page(_convert(md_table(dictionary), "markdown"))
    assert not any(tag in ("sup", "a", "section", "aside") for tag, _ in page.tags)
    assert REGEX in page.text


def test_md_table_markup_columns_and_errors():
    frame = pd.DataFrame({"h": ["abc"], "c": ["x"]})
    frame["h"] = [md_code("sha256:abc...")]  # pandas keeps plain str here
    text = md_table(frame, {"h": "Hash", "c": "C"}, markup=["h"])
    assert "| `sha256:abc...` | x |" in text
    # not declared: pandas 3 drops the Markup type of a str column (the cell is escaped), pandas 2
    # keeps it (written as it is); a plain str cell is always escaped
    frame["h"] = pd.Series(["`sha256:abc...`"], dtype=object)
    assert "\\`sha256" in md_table(frame, {"h": "Hash", "c": "C"})
    with pytest.raises(KeyError, match="nope"):
        md_table(frame, markup=["nope"])


def test_md_code_falls_back_to_text_when_quarto_would_read_it():
    assert md_code("abc123...") == "`abc123...`"
    assert md_code("a`b") == md_escape("a`b")
    assert md_code(SHORTCODE) == md_escape(SHORTCODE)
    assert md_code("`{python} 1`") == md_escape("`{python} 1`")


def test_md_callout_escapes_title_and_body():
    text = md_callout("warning", SCRIPT + ". These patients", title=IMG)
    assert text.startswith("::: {.callout-warning}\n## \\<img src=x\\>\n")
    assert text.endswith("\n:::\n")
    page = _page(_convert(text, "markdown"))
    assert {tag for tag, _ in page.tags} <= {"div", "section", "h2", "p"}
    assert SCRIPT in page.text and IMG in page.text
    assert "**b**" in md_callout("note", Markup("**b**"))
    with pytest.raises(ValueError, match="callout kind"):
        md_callout("danger", "x")


def test_md_checklist_content_marks_placeholders_and_escapes_the_rest():
    from studyval.checklists import PLACEHOLDER as CHECKLIST_PLACEHOLDER

    assert PLACEHOLDER == CHECKLIST_PLACEHOLDER
    whole = md_checklist_content(PLACEHOLDER, "to write")
    assert whole == "[\\[TO BE WRITTEN BY THE INVESTIGATORS\\]]{.placeholder}"
    mixed = md_checklist_content(f"{SCRIPT} Rationale / human part: {PLACEHOLDER}", "partly")
    page = _page(_convert(mixed, "markdown"))
    assert [tag for tag, _ in page.tags] == ["p", "span"]
    assert page.tags[1][1] == {"class": "placeholder"}
    assert page.text == f"{SCRIPT} Rationale / human part: {PLACEHOLDER}"
    assert md_checklist_content(float("nan"), "filled") == ""


def test_md_image_escapes_the_caption_and_keeps_the_path_whole():
    assert md_image("fig/a.png", IMG, "width=60%") == "![\\<img src=x\\>](fig/a.png){width=60%}"
    assert md_image("my results/a (1).png") == "![](<my results/a (1).png>)"
    with pytest.raises(ValueError):
        md_image("a>b.png")


def test_bundle_refuses_a_figure_name_that_is_no_file_name(tmp_path):
    (tmp_path / "manifest.json").write_text("{}", encoding="utf-8")
    bundle = Bundle(tmp_path)
    for name in ("../manifest", "a/b", "x)", ""):
        with pytest.raises(ValueError, match="not a figure or table name"):
            bundle.figure(name)


# --------------------------------------------------------------------------- #
# HTML, Typst, LaTeX, spreadsheets
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("text", PAYLOADS)
def test_html_escape(text):
    escaped = html_escape(text)
    assert "<" not in escaped and ">" not in escaped and '"' not in escaped
    page = _page(f'<p title="{escaped}">{escaped}</p>')
    assert page.tags == [("p", {"title": text})]
    assert page.text == text


@pytest.mark.parametrize(
    "text", [*PAYLOADS, "= heading", "- item", "+ enum", "// comment", "<label> @ref *b*", "a...b"]
)
def test_typst_escape_reads_back_as_the_same_text(text):
    escaped = typst_escape(text)
    for special in "#$":
        assert re.search(rf"(?<!\\){re.escape(special)}", escaped) is None
    assert _page(_convert(escaped, "typst")).text == text


@pytest.mark.parametrize("text", [*PAYLOADS, "100% & _a ^b ~c <d> [e] {f}", 'it\'s "q" -- x'])
def test_latex_escape_reads_back_as_the_same_text(text):
    escaped = latex_escape(text)
    assert "\\input" not in escaped
    assert _page(_convert(escaped, "latex")).text == text


def test_latex_escape_commands():
    assert latex_escape(LATEX) == r"\textbackslash{}input\{/etc/passwd\}"
    assert latex_escape("a|b`c") == r"a\textbar{}b\textasciigrave{}c"
    assert latex_escape("x\n\ny") == "x y"  # no paragraph break


def test_spreadsheet_escape():
    assert spreadsheet_escape(FORMULA) == "'" + FORMULA
    for text in ("+1+cmd", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)", "\t=1"):
        assert spreadsheet_escape(text).startswith("'")
    for text in ("-0.5", "+3", "1e-3", "plain text", ""):
        assert spreadsheet_escape(text) == text


def test_escape_picks_the_escaper_by_format():
    assert set(ESCAPERS) == {"markdown", "html", "typst", "latex", "spreadsheet"}
    assert escape(IMG) == md_escape(IMG)
    assert escape(IMG, "html") == "&lt;img src=x&gt;"
    assert escape(TYPST, "typst") == typst_escape(TYPST)
    with pytest.raises(ValueError, match="no escaper"):
        escape("x", "rtf")


# --------------------------------------------------------------------------- #
# The fallback renderer's own checks
# --------------------------------------------------------------------------- #


def test_fallback_refuses_active_content_in_its_page():
    from studyval.render import _check_no_active_content

    _check_no_active_content(b"<p>&lt;script&gt;alert(1)&lt;/script&gt; onmouseover=</p>", "r.qmd")
    for page in (
        b"<p><script>alert(1)</script></p>",
        b'<p><b onmouseover="alert(1)">x</b></p>',
        b'<p><a href=" javascript:alert(1)">x</a></p>',
        b'<p><iframe src="data:text/html,x"></iframe></p>',
    ):
        with pytest.raises(RenderError, match="active content"):
            _check_no_active_content(page, "r.qmd")


def test_fallback_refuses_a_shortcode_printed_by_a_cell(tmp_path):
    from studyval.render import _cell_markdown, _Output, parse_qmd

    qmd = tmp_path / "report.qmd"
    qmd.write_text(
        textwrap.dedent(
            """\
            ---
            title: "x"
            ---

            ```{python}
            #| output: asis
            print(value)
            ```
            """
        ),
        encoding="utf-8",
    )
    doc = parse_qmd(qmd)
    cell = doc.code_cells[0]
    assert _cell_markdown(doc, cell, [_Output("stdout", text=md_escape(SHORTCODE))])
    with pytest.raises(RenderError, match="shortcode or inline code"):
        _cell_markdown(doc, cell, [_Output("stdout", text=SHORTCODE)])


# --------------------------------------------------------------------------- #
# End to end: a bundle whose text fields carry markup, rendered by the fallback
# --------------------------------------------------------------------------- #

MODEL = "ViT"
HOSTILE_MODEL = 'ViT<script>alert("model")</script>'
SITE = "EXT"
HOSTILE_SITE = "EXT<img src=x>[^1]"
DETAIL = " ".join([SCRIPT, IMG, LINK, IMAGE, SHORTCODE, FOOTNOTE, FORMULA, TYPST, LATEX])


@pytest.fixture(scope="module")
def bundle(protocol_bundle) -> Path:
    """The session's bundle of ovcf-chronicity (no report; tests/conftest.py), copied by the test."""
    return protocol_bundle("ovcf-chronicity")


def _rename(frame: pd.DataFrame, old: str, new: str) -> pd.DataFrame:
    for col in frame.columns:
        if frame[col].dtype == object or pd.api.types.is_string_dtype(frame[col]):
            frame[col] = frame[col].map(lambda v: new if v == old else v)
    return frame


def _hostile_copy(bundle: Path, dest: Path) -> Path:
    """A copy of ``bundle`` whose free-text and id fields carry markup.

    The manifest's output hashes no longer match; ``render`` does not check them.
    """
    shutil.copytree(bundle, dest)
    tables = dest / "tables"
    for path in sorted(tables.glob("*.parquet")):
        frame = pd.read_parquet(path)
        frame = _rename(_rename(frame, MODEL, HOSTILE_MODEL), SITE, HOSTILE_SITE)
        name = path.stem
        if name == "flow":
            failed = frame["stage"] == "index_test_failed"
            frame.loc[failed, "detail"] = DETAIL
            frame.loc[failed & (frame["set"] == "external"), "n_patients"] = 1
            reason = frame.index[frame["stage"] == "excluded_reason"][0]
            frame.loc[reason, "group"] = LINK
        elif name == "checklist":
            frame.loc[frame["item"] == "15", "content"] = DETAIL
            frame.loc[frame["item"] == "15", "shown_in"] = SHORTCODE
        elif name == "dictionary":
            frame.loc[0, "unit"] = FOOTNOTE
            frame.loc[0, "description"] = SCRIPT
        elif name == "warnings":
            frame.loc[0, "message"] = SCRIPT + " " + INLINE_NOTE
        elif name == "sample_size":
            frame.loc[frame["check"] == "registered", "message"] = SCRIPT + " " + LATEX
        elif name == "accuracy":
            frame["threshold_source"] = TYPST + " " + FORMULA
        frame.to_parquet(path, index=False)
    manifest_path = dest / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["dictionary"]["name"] = SHORTCODE
    manifest["dictionary"]["removed_direct_identifier_columns"] = [IMG, FOOTNOTE]
    manifest["inputs"]["clinical"]["file"] = "clinical`{python} 1+1`.csv"
    manifest["protocol"]["registry_id"] = LINK
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    return dest


@pytest.mark.render
@pytest.mark.slow
def test_report_shows_hostile_bundle_text_as_text(bundle, tmp_path):
    from studyval.cli import main

    copy = _hostile_copy(bundle, tmp_path / "hostile")
    res = CliRunner().invoke(main, ["render", str(copy), "--engine", "jupyter"])
    assert res.exit_code == 0, res.output
    page_html = (copy / "report" / "report.html").read_text(encoding="utf-8")
    without_images = re.sub(r'"data:[^"]*"', '"data:"', page_html)

    # nothing live: no script element, no event handler, no fetched image, no script link
    assert "<script" not in page_html
    assert not re.search(r"<[^>]*\sonmouseover\s*=", without_images)
    assert '<img src="x"' not in page_html and "<img src=x" not in page_html
    page = _page(without_images)
    for tag, attrs in page.tags:
        assert not any(name.startswith("on") for name in attrs), (tag, attrs)
        if tag == "img":
            assert attrs.get("src", "").startswith("data:"), attrs
        if tag == "a":
            assert not (attrs.get("href") or "").lower().startswith("javascript:"), attrs
        assert tag not in ("iframe", "object", "embed"), tag
    # no footnotes, no include
    assert not any("footnote" in (attrs.get("class") or "") for _, attrs in page.tags)
    assert not any(attrs.get("id") == "footnotes" for _, attrs in page.tags)
    assert "root:" not in page.text

    # every hostile text is shown as typed: in a callout, the flow and STARD tables,
    # the dictionary, the warnings, the prose, a table header and a caption
    text = page.text
    assert text.count(DETAIL) >= 2  # callout and STARD item 15
    assert f"{DETAIL}. These patients have no score" in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_html  # escaped in the HTML source
    for shown in (
        HOSTILE_MODEL,
        HOSTILE_SITE,
        LINK,
        SHORTCODE,
        FOOTNOTE,
        SCRIPT + " " + INLINE_NOTE,
        SCRIPT + " " + LATEX,
        TYPST + " " + FORMULA,
        f"Data dictionary {SHORTCODE}",
        f"{IMG}, {FOOTNOTE}",
        "clinical`{python} 1+1`.csv",
        REGEX,
    ):
        assert shown in text, shown
    # a table header built from a model name, and the model's row of the models table
    headers = {html.unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", page_html, re.S)}
    assert HOSTILE_MODEL in headers
    cells = {html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", page_html, re.S)}
    assert HOSTILE_MODEL in cells and HOSTILE_SITE in cells
