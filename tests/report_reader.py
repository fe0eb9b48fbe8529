"""Read a rendered report as a principal investigator would, and list what a reader should not see.

Used by ``tests/test_report_summary.py`` (and by hand: ``python tests/report_reader.py
report.html ...``). Standard library only (``html.parser``).

What counts as a problem (issue 14):

- an internal link (``href="#id"``) to an id that no element has;
- a table cell holding ``True``/``False``/``None``/``nan``/``inf``/``NA`` as a word;
- a number with more than four decimals outside the provenance sections;
- a snake_case identifier in prose or a table cell (outside code spans and the
  appendix, provenance and warnings sections, where code names are the point);
- no summary section (``id="sec-summary"``);
- for a bundle not made from study data, no data-origin banner before the summary,
  or a figure caption that does not carry the data-origin note.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from html.parser import HTMLParser

#: Sections where code names, hashes and long numbers are what the reader looks for.
EXEMPT_SECTIONS = ("sec-provenance", "sec-dictionary", "sec-warnings")
_BAD_WORD_RE = re.compile(r"(?<![\w.])(True|False|None|nan|NaN|inf|-inf|NA)(?![\w.])")
_LONG_FLOAT_RE = re.compile(r"(?<![\w.])-?\d+\.\d{5,}(?![\w])")
_SNAKE_RE = re.compile(r"(?<![\w./:#-])[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?![\w/-])")
_VOID = {"img", "br", "hr", "meta", "link", "input", "col", "source", "wbr"}


@dataclass
class _Text:
    text: str
    sections: tuple[str, ...]
    in_code: bool
    in_cell: bool
    in_caption: bool
    in_title: bool


@dataclass
class Page:
    """What :func:`read_page` found."""

    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)
    texts: list[_Text] = field(default_factory=list)
    cells: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    figcaptions: list[str] = field(default_factory=list)
    order: list[str] = field(default_factory=list)  # "banner", "summary" in document order


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self.stack: list[tuple[str, dict[str, str]]] = []
        self.cell: list[str] | None = None
        self.caption: list[str] | None = None

    def _sections(self) -> tuple[str, ...]:
        return tuple(a.get("id", "") for t, a in self.stack if t == "section")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if a.get("id"):
            self.page.ids.add(a["id"])
            if a["id"] == "sec-summary":
                self.page.order.append("summary")
        if "data-origin" in a.get("class", "").split():
            self.page.order.append("banner")
        if tag == "a" and a.get("href", "").startswith("#"):
            self.page.links.append(a["href"][1:])
        if tag in ("td", "th"):
            self.cell = []
        if tag == "figcaption":
            self.caption = []
        if tag not in _VOID:
            self.stack.append((tag, a))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.page.cells.append((" ".join("".join(self.cell).split()), self._sections()))
            self.cell = None
        if tag == "figcaption" and self.caption is not None:
            self.page.figcaptions.append(" ".join("".join(self.caption).split()))
            self.caption = None
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def handle_data(self, data: str) -> None:
        tags = [t for t, _ in self.stack]
        if "style" in tags or "script" in tags or ("head" in tags and "title" not in tags):
            return
        if self.cell is not None:
            self.cell.append(data)
        if self.caption is not None:
            self.caption.append(data)
        self.page.texts.append(
            _Text(
                data,
                self._sections(),
                in_code=any(t in ("code", "pre", "kbd", "samp") for t in tags),
                in_cell=self.cell is not None,
                in_caption=self.caption is not None,
                in_title="nav" in tags or "title" in tags,
            )
        )


def read_page(html: str) -> Page:
    """Parse a rendered report."""
    reader = _Reader()
    reader.feed(html)
    reader.close()
    return reader.page


#: A Markdown escape that reached the page: a value escaped twice shows its backslash.
_LEAKED_ESCAPE_RE = re.compile(r"\\[!-/:-@\[-`{-~]")


def problems(html: str, *, origin_note: str | None = None) -> list[str]:
    """Everything a reader should not see in ``html``; ``origin_note``: the expected caption note."""
    page = read_page(html)
    found: list[str] = []
    for target in page.links:
        if target not in page.ids:
            found.append(f"internal link to #{target}, which no element has")
    for text, sections in page.cells:
        if "sec-warnings" in sections:  # warning messages are quoted as the analysis raised them
            continue
        m = _BAD_WORD_RE.search(text)
        if m:
            found.append(f"table cell shows {m.group(1)!r}: {text[:80]!r}")
    for t in page.texts:
        if t.in_code or t.in_title:
            continue
        exempt = any(s in EXEMPT_SECTIONS for s in t.sections)
        if not exempt:
            m = _LONG_FLOAT_RE.search(t.text)
            if m:
                found.append(f"unformatted number {m.group()} in {t.sections[-1:] or 'top'}")
            m = _SNAKE_RE.search(t.text)
            if m:
                found.append(
                    f"code name {m.group()!r} shown to readers in {t.sections[-1:] or 'top'}: "
                    f"{t.text.strip()[:80]!r}"
                )
            m = _LEAKED_ESCAPE_RE.search(t.text)
            if m:
                found.append(
                    f"escaped twice: {m.group()!r} shown to readers in "
                    f"{t.sections[-1:] or 'top'}: {t.text.strip()[:80]!r}"
                )
            if not t.in_cell:
                m = _BAD_WORD_RE.search(t.text)
                if m and m.group(1) not in ("NA",):
                    found.append(f"prose shows {m.group(1)!r}: {t.text.strip()[:80]!r}")
    if "summary" not in page.order:
        found.append("no summary section (id sec-summary)")
    if origin_note is not None:
        if "banner" not in page.order or page.order.index("banner") > page.order.index(
            "summary" if "summary" in page.order else "banner"
        ):
            found.append("no data-origin banner before the summary")
        for cap in page.figcaptions:
            if origin_note not in cap:
                found.append(f"figure caption without the data-origin note: {cap[:80]!r}")
    return found


if __name__ == "__main__":  # pragma: no cover - a reading aid
    for name in sys.argv[1:]:
        with open(name, encoding="utf-8") as fh:
            found = problems(fh.read())
        print(f"== {name}: {len(found)} problems")
        for p in found:
            print("  ", p)


_WIDTH_SCRIPT = """<script>
window.addEventListener('load', function () {
  var main = document.querySelector('main') || document.body;
  var right = main.getBoundingClientRect().right + 1;
  var out = [];
  document.querySelectorAll('main table').forEach(function (t, i) {
    var r = t.getBoundingClientRect();
    if (r.right > right || t.scrollWidth > t.clientWidth + 1) {
      var cap = t.querySelector('caption');
      out.push(i + ': ' + Math.round(r.width) + 'px > column ' + Math.round(main.getBoundingClientRect().width)
               + 'px ' + (cap ? cap.textContent.slice(0, 60) : ''));
    }
  });
  var pre = document.createElement('pre');
  pre.id = 'sv-width-result';
  pre.textContent = 'WIDTH-RESULT[' + out.join(' | ') + ']END';
  document.body.appendChild(pre);
});
</script>"""


def tables_wider_than_column(html_path, width: int = 1400, chromium: str = "chromium") -> list[str]:
    """Tables wider than the content column at ``width`` px, measured in headless Chromium."""
    return tables_wider_than_columns([(html_path, width)], chromium=chromium)[0]


def tables_wider_than_columns(
    pages: Iterable[tuple[str | os.PathLike, int]], chromium: str = "chromium"
) -> list[list[str]]:
    """:func:`tables_wider_than_column` of each ``(html_path, width)``, in one Chromium.

    Each page is measured in an iframe ``width`` px wide and 2000 px high, as the window of
    ``--window-size=width,2000`` would show it (the same viewport, scrollbar and layout: every
    table's width and right edge agreed to the hundredth of a pixel on the five reports); one
    browser start serves all the pages (a start costs about 3 s of CPU). A page that gave no
    measurement is an error, never an empty list.
    """
    import json
    import re as _re
    import subprocess
    import tempfile

    pages = list(pages)
    with tempfile.TemporaryDirectory() as tmp:
        frames = []
        for k, (html_path, width) in enumerate(pages):
            with open(html_path, encoding="utf-8") as fh:
                html = fh.read()
            with open(os.path.join(tmp, f"page{k}.html"), "w", encoding="utf-8") as fh:
                fh.write(html.replace("</body>", _WIDTH_SCRIPT + "</body>"))
            frames.append(
                f'<iframe id="f{k}" src="page{k}.html" '
                f'style="width:{int(width)}px;height:2000px;border:0;display:block"></iframe>'
            )
        wrapper = os.path.join(tmp, "pages.html")
        with open(wrapper, "w", encoding="utf-8") as fh:
            fh.write(
                '<html><body style="margin:0">' + "".join(frames) + _FRAMES_SCRIPT.replace(
                    "FRAME_IDS", json.dumps([f"f{k}" for k in range(len(pages))])
                ) + "</body></html>"
            )  # fmt: skip
        res = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--allow-file-access-from-files",  # the wrapper reads its frames' results
                "--window-size=1400,2000",
                "--virtual-time-budget=5000",
                "--dump-dom",
                "file://" + wrapper,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    found = []
    for k, (html_path, width) in enumerate(pages):
        m = _re.search(rf"FRAME-f{k}\{{WIDTH-RESULT\[(.*?)\]END\}}", res.stdout, _re.S)
        if m is None:
            raise RuntimeError(
                f"chromium gave no measurement of {html_path} at {width} px: {res.stderr[-500:]}"
            )
        found.append([x for x in m.group(1).split(" | ") if x])
    return found


#: The wrapper page's script: each frame's result, copied into the wrapper once all have loaded.
_FRAMES_SCRIPT = """<script>
window.addEventListener('load', function () {
  var pre = document.createElement('pre');
  FRAME_IDS.forEach(function (id) {
    var doc = document.getElementById(id).contentDocument;
    var got = doc && doc.getElementById('sv-width-result');
    if (got) { pre.textContent += 'FRAME-' + id + '{' + got.textContent + '}'; }
  });
  document.body.appendChild(pre);
});
</script>"""
