"""Privacy: keyed pseudonyms for identifiers, and a scanner for leaked direct identifiers.

:func:`pseudonymise` replaces patient or case identifiers by keyed HMAC-SHA256
pseudonyms: the same id and key always give the same pseudonym (so tables
pseudonymised separately still join), nobody without the key can recompute or
reverse them, and a different key gives unrelated pseudonyms. The key is a
secret of the site that holds the identifiers; it never enters a bundle.

:func:`scan_for_identifiers` reads every file under the given paths and looks
for planted (or known) direct identifiers, not only in the raw bytes but in
what a reader would see: parquet cells, the decompressed streams of a PDF, the
text of an SVG and the images embedded in an HTML report.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import AnyStr

from studyval.errors import StudyvalError

__all__ = [
    "Hit",
    "IdentifierScan",
    "PrivacyError",
    "ScanReport",
    "ids_shown_in_report",
    "pseudonymise",
    "refuse_if_identifiers",
    "scan_for_identifiers",
    "scan_for_input_identifiers",
]

_MIN_KEY_BYTES = 16
_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")


def pseudonymise(
    ids: Iterable[str], *, key: bytes | str, prefix: str = "PS", length: int = 12
) -> list[str]:
    """Keyed HMAC-SHA256 pseudonyms of ``ids``, e.g. ``PS-3f9a0c1b27de``.

    Parameters
    ----------
    ids : iterable of str
        Identifiers (patient ids, record numbers...). Missing values are refused.
    key : bytes or str
        Secret key, at least 16 bytes (a str is encoded as UTF-8).
    prefix : str
        Letters and digits put before the pseudonym, so that it is never
        mistaken for an original id.
    length : int
        Hex digits kept from the HMAC (8 to 64; 12 digits = 48 bits).

    Returns
    -------
    list of str
        One pseudonym per id, in order; equal ids give equal pseudonyms. The
        pseudonyms match the data dictionaries' id pattern.

    Raises
    ------
    StudyvalError
        Short key, bad prefix or length, a missing or non-string id, or two
        distinct ids that would share a pseudonym (then use a larger ``length``).

    """
    raw_key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
    if len(raw_key) < _MIN_KEY_BYTES:
        raise StudyvalError(
            f"pseudonymisation key must be at least {_MIN_KEY_BYTES} bytes, got {len(raw_key)}"
        )
    if not _PREFIX_RE.match(prefix):
        raise StudyvalError(f"prefix must be letters and digits starting with a letter: {prefix!r}")
    if not 8 <= int(length) <= 64:
        raise StudyvalError(f"length must be between 8 and 64 hex digits, got {length}")
    out: list[str] = []
    seen: dict[str, str] = {}
    for i, value in enumerate(ids):
        if not isinstance(value, str) or value == "":
            raise StudyvalError(f"id at position {i} is missing or not a string: {value!r}")
        digest = hmac.new(raw_key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        pseudo = f"{prefix}-{digest[: int(length)]}"
        other = seen.setdefault(pseudo, value)
        if other != value:
            raise StudyvalError(
                f"two ids share the pseudonym {pseudo} at length {length}; use a larger length"
            )
        out.append(pseudo)
    return out


@dataclass(frozen=True)
class Hit:
    """One planted identifier found in one file.

    Attributes
    ----------
    path : Path
        The file.
    value : str
        The identifier found.
    view : str
        Where it was seen: ``bytes``, ``text``, ``parquet cells``, ``pdf stream``,
        ``embedded image``.

    """

    path: Path
    value: str
    view: str


@dataclass(frozen=True)
class ScanReport:
    """What :func:`scan_for_identifiers` read and found.

    Attributes
    ----------
    files : tuple of Path
        Every file read.
    bytes_read : int
        Their total size.
    hits : tuple of Hit
        Every planted identifier found (empty when clean).

    """

    files: tuple[Path, ...]
    bytes_read: int
    hits: tuple[Hit, ...]

    @property
    def n_files(self) -> int:
        """Number of files read."""
        return len(self.files)

    @property
    def ok(self) -> bool:
        """True when no planted identifier was found."""
        return not self.hits

    def summary(self, limit: int = 10) -> str:
        """One paragraph for a message or a test failure."""
        head = f"scanned {self.n_files} files ({self.bytes_read} bytes): "
        if self.ok:
            return head + "no planted identifier found"
        shown = "; ".join(f"{h.path.name} [{h.view}]: {h.value!r}" for h in self.hits[:limit])
        more = f" ... and {len(self.hits) - limit} more" if len(self.hits) > limit else ""
        return head + f"{len(self.hits)} hit(s): {shown}{more}"


_STREAM_RE = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.DOTALL)
_TJ_RE = re.compile(
    rb"\[((?:\((?:\\.|[^\\)])*\)|[^\](])*)\]\s*TJ|(\((?:\\.|[^\\)])*\))\s*Tj", re.DOTALL
)
_PDF_STRING_RE = re.compile(rb"\((?:\\.|[^\\)])*\)", re.DOTALL)
_PDF_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _pdf_unescape(literal: bytes) -> bytes:
    body = literal[1:-1]
    if b"\\" not in body:
        return body
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i : i + 1]
        if ch != b"\\":
            out += ch
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt in _PDF_ESCAPES:
            out += _PDF_ESCAPES[nxt]
            i += 2
        elif nxt.isdigit():
            digits = re.match(rb"[0-7]{1,3}", body[i + 1 : i + 4])
            n = len(digits.group(0)) if digits else 1
            out.append(int(body[i + 1 : i + 1 + n], 8) & 0xFF if digits else 0)
            i += 1 + n
        elif nxt in (b"\n", b"\r"):
            i += 2
        else:
            out += nxt
            i += 2
    return bytes(out)


def _pdf_text(content: bytes) -> bytes:
    """Text shown by a PDF content stream, one line per text operator.

    Strings are decoded as two-byte codes (UTF-16BE, as matplotlib writes
    Type 42 fonts with Identity-H encoding and an identity ToUnicode map)
    when they look like it, else as Latin-1.
    """
    lines: list[str] = []
    for match in _TJ_RE.finditer(content):
        raw = b"".join(_pdf_unescape(m.group(0)) for m in _PDF_STRING_RE.finditer(match.group(0)))
        if raw and len(raw) % 2 == 0 and raw[0::2].count(0) >= len(raw) // 4:
            text = raw.decode("utf-16-be", errors="replace")
        else:
            text = raw.decode("latin-1")
        lines.append(text)
    return "\n".join(lines).encode("utf-8")


#: A PDF object (``12 0 obj ... endobj``), its dictionary and its stream, if any.
_OBJ_RE = re.compile(
    rb"(?<![0-9])(\d+)\s+\d+\s+obj\b(.*?)(?:\bstream\r?\n(.*?)\r?\nendstream\s*)?endobj\b",
    re.DOTALL,
)
_IMAGE_STREAM_RE = re.compile(rb"/Subtype\s*/Image\b")
_TEXT_OP_RE = re.compile(
    rb"/([^\s/<>\[\]()]+)\s+[-+\d.]+\s+Tf"
    rb"|\[((?:\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>|[^\](<])*)\]\s*TJ"
    rb"|(\((?:\\.|[^\\)])*\)|<[0-9A-Fa-f\s]*>)\s*(?:Tj|'|\")",
    re.DOTALL,
)
_STRING_RE = re.compile(rb"\((?:\\.|[^\\)])*\)|<([0-9A-Fa-f\s]*)>", re.DOTALL)


def _inflate(stream: bytes) -> bytes:
    try:
        return zlib.decompress(stream)
    except zlib.error:
        return stream


def _is_image_stream(data: bytes, start: int) -> bool:
    """Whether the stream starting at ``start`` is an image (pixels, never text).

    Its dictionary lies between the ``obj`` keyword before it and the stream.
    Image streams are left out of the text views: they hold no text, and the
    text operators' patterns are slow on megabytes of pixels.
    """
    head = data[max(0, start - 4096) : start]
    return bool(_IMAGE_STREAM_RE.search(head[head.rfind(b" obj") :]))


def _to_unicode(cmap: bytes) -> dict[int, str]:
    """A ToUnicode CMap: character code to text (``bfchar`` and ``bfrange`` entries)."""
    out: dict[int, str] = {}

    def text(hexa: bytes) -> str:
        raw = bytes.fromhex(re.sub(rb"\s", b"", hexa).decode("ascii"))
        return raw.decode("utf-16-be", errors="replace")

    for block in re.finditer(rb"beginbfchar(.*?)endbfchar", cmap, re.DOTALL):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f\s]*)>", block.group(1)):
            out[int(src, 16)] = text(dst)
    for block in re.finditer(rb"beginbfrange(.*?)endbfrange", cmap, re.DOTALL):
        for lo, hi, dst in re.findall(
            rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f\s]+)>", block.group(1)
        ):
            base = text(dst)
            first, last = int(lo, 16), int(hi, 16)
            if base and last - first < 65536:
                for code in range(first, last + 1):
                    out[code] = base[:-1] + chr(min(0x10FFFF, ord(base[-1]) + code - first))
    return out


def _pdf_mapped_text(data: bytes) -> str:
    """The text a PDF shows through its fonts' ToUnicode maps (two-byte codes).

    PDFs written by Typst (studyval's PDF reports) draw glyph numbers of
    subset fonts, which read as nothing without the font's ToUnicode map: each
    page's and form's content is read with the fonts of its own resources.
    """
    objects: dict[int, tuple[bytes, bytes | None]] = {}
    for match in _OBJ_RE.finditer(data):
        stream = match.group(3)
        if stream is not None and not _IMAGE_STREAM_RE.search(match.group(2)):
            stream = _inflate(stream)
        elif stream is not None:
            stream = b""
        objects[int(match.group(1))] = (match.group(2), stream)
    if not objects or not any(b"/ToUnicode" in d for d, _ in objects.values()):
        return ""
    cmaps: dict[int, dict[int, str]] = {}

    def font_map(num: int) -> dict[int, str]:
        if num not in cmaps:
            ref = re.search(rb"/ToUnicode\s+(\d+)\s+\d+\s+R", objects.get(num, (b"", None))[0])
            stream = objects.get(int(ref.group(1)), (b"", None))[1] if ref else None
            cmaps[num] = _to_unicode(stream) if stream else {}
        return cmaps[num]

    def fonts(dictionary: bytes) -> dict[bytes, dict[int, str]]:
        res = re.search(rb"/Resources\s+(\d+)\s+\d+\s+R", dictionary)
        if res:
            dictionary = objects.get(int(res.group(1)), (b"", None))[0]
        ref = re.search(rb"/Font\s+(\d+)\s+\d+\s+R", dictionary)
        if ref:
            dictionary = b"/Font" + objects.get(int(ref.group(1)), (b"", None))[0]
        inline = re.search(rb"/Font\s*<<(.*?)>>", dictionary, re.DOTALL)
        if not inline:
            return {}
        pairs = re.findall(rb"/([^\s/<>\[\]()]+)\s*(\d+)\s+\d+\s+R", inline.group(1))
        return {name: font_map(int(num)) for name, num in pairs}

    lines: list[str] = []
    for dictionary, stream in objects.values():
        if re.search(rb"/Type\s*/Page\b", dictionary):
            contents = re.search(rb"/Contents\s*(\[[^\]]*\]|\d+\s+\d+\s+R)", dictionary)
            refs = re.findall(rb"(\d+)\s+\d+\s+R", contents.group(1)) if contents else []
            content = b"\n".join(objects.get(int(r), (b"", None))[1] or b"" for r in refs)
        elif stream and re.search(rb"/Subtype\s*/Form\b", dictionary):
            content = stream
        else:
            continue
        by_name = fonts(dictionary)
        current: dict[int, str] = {}
        for op in _TEXT_OP_RE.finditer(content):
            if op.group(1) is not None:
                current = by_name.get(op.group(1), {})
                continue
            if not current:
                continue
            shown = op.group(2) if op.group(2) is not None else op.group(3)
            codes = b""
            for string in _STRING_RE.finditer(shown):
                if string.group(1) is not None:
                    hexa = re.sub(rb"\s", b"", string.group(1))
                    codes += bytes.fromhex((hexa + b"0" * (len(hexa) % 2)).decode("ascii"))
                else:
                    codes += _pdf_unescape(string.group(0))
            lines.append(
                "".join(
                    current.get(int.from_bytes(codes[i : i + 2], "big"), "")
                    for i in range(0, len(codes) - 1, 2)
                )
            )
    return "\n".join(lines)


_DATA_URI_RE = re.compile(rb"data:([a-z]+/[a-z0-9.+-]+);base64,([A-Za-z0-9+/=\s]+)")


def _views(path: Path, data: bytes) -> list[tuple[str, bytes]]:
    """The byte strings in which an identifier could be read in this file."""
    views: list[tuple[str, bytes]] = [("bytes", data)]
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm", ".svg", ".xml", ".csv", ".json", ".txt", ".md", ".qmd"):
        text = data.decode("utf-8", errors="replace")
        views.append(("text", html.unescape(text).encode("utf-8")))
    if suffix == ".parquet":
        try:
            import pandas as pd

            frame = pd.read_parquet(path)
            cells = frame.astype(str).to_csv(index=False) + ",".join(map(str, frame.columns))
            views.append(("parquet cells", cells.encode("utf-8")))
        except Exception as exc:  # a scanner must not stop at an unreadable file
            views.append(("parquet cells", f"<unreadable parquet: {exc}>".encode()))
    if suffix == ".pdf":
        for match in _STREAM_RE.finditer(data):
            content = _inflate(match.group(1))
            views.append(("pdf stream", content))
            if not _is_image_stream(data, match.start()):
                views.append(("pdf text", _pdf_text(content)))
        views.append(("pdf text", _pdf_mapped_text(data).encode("utf-8")))
    if suffix in (".html", ".htm", ".svg"):
        for match in _DATA_URI_RE.finditer(data):
            try:
                payload = base64.b64decode(re.sub(rb"\s", b"", match.group(2)))
            except ValueError:
                continue
            views.append(("embedded image", payload))
            if match.group(1) == b"application/pdf":
                for stream in _STREAM_RE.finditer(payload):
                    try:
                        views.append(("embedded pdf stream", zlib.decompress(stream.group(1))))
                    except zlib.error:
                        continue
    return views


def _files(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found.extend(sorted(q for q in p.rglob("*") if q.is_file()))
        elif p.is_file():
            found.append(p)
        else:
            raise StudyvalError(f"cannot scan {p}: no such file or directory")
    return found


def _trie_pattern(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words`` (non-empty), the longest first.

    The words are merged into a trie (one branch per shared prefix), so that a search tries
    a few characters at each position instead of every word: ``{ab, abc, b}`` gives
    ``(?:ab(?:c)?|b)``. At a position where several words start, the longest matches.
    """
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[None] = True

    def branch(node: dict) -> str:
        alternatives = [
            re.escape(char) + branch(child)
            for char, child in sorted((k, v) for k, v in node.items() if k is not None)
        ]
        if not alternatives:
            return ""
        body = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        return "(?:" + body + ")?" if None in node else body

    return branch(trie)


def _needle_starts(needles: Iterable[AnyStr]) -> Callable[[AnyStr], Iterator[tuple[int, list]]]:
    """``starts(text)``: each position of ``text`` where (non-empty) needles start, with them.

    One pass over ``text`` whatever the number of needles: a search of their trie pattern
    (:func:`_trie_pattern`) from each position after the last start found gives every
    position where a needle starts and the longest needle there; the other needles starting
    there are that match's prefixes. Needles are all ``str`` or all ``bytes``, as ``text``.
    """
    wanted = {n for n in needles if n}
    lengths = sorted({len(n) for n in wanted})
    if not wanted:
        return lambda text: iter(())
    if isinstance(next(iter(wanted)), bytes):  # one byte per character, both ways
        trie = _trie_pattern(n.decode("latin-1") for n in wanted)  # type: ignore[union-attr]
        pattern = re.compile(trie.encode("latin-1"))
    else:
        pattern = re.compile(_trie_pattern(wanted))  # type: ignore[arg-type]

    def starts(text: AnyStr) -> Iterator[tuple[int, list]]:
        pos = 0
        while (match := pattern.search(text, pos)) is not None:
            longest = match.group(0)
            yield match.start(), [t for n in lengths if (t := longest[:n]) in wanted]
            pos = match.start() + 1

    return starts


def _substring_finder(needles: Iterable[bytes]) -> Callable[[bytes], set[bytes]]:
    """``find(blob)``: the ``needles`` in ``blob``, as ``needle in blob`` says, in one pass."""
    needles = set(needles)
    starts = _needle_starts(needles)
    always = needles & {b""}  # the empty needle is in every blob

    def find(blob: bytes) -> set[bytes]:
        found = set(always)
        for _, there in starts(blob):
            found.update(there)
        return found

    return find


def scan_for_identifiers(paths: Iterable[str | Path], planted: Iterable[str]) -> ScanReport:
    """Look for every ``planted`` identifier in every file under ``paths``.

    Parameters
    ----------
    paths : iterable of path
        Files, or directories (read recursively, hidden files included).
    planted : iterable of str
        Direct identifiers that must not appear (names, record numbers, dates
        of birth). A name written ``Family^Given`` (DICOM style) is also
        looked for as ``Family Given`` and ``Given Family``.

    Returns
    -------
    ScanReport
        Files read and every hit; :attr:`ScanReport.ok` is True when clean.

    """
    needles: set[str] = set()
    for value in planted:
        value = str(value).strip()
        if len(value) < 4:
            raise StudyvalError(
                f"planted identifier {value!r} is too short to scan for without false hits"
            )
        needles.add(value)
        if "^" in value:
            parts = [s for s in value.split("^") if s]
            needles.add(" ".join(parts))
            needles.add(" ".join(reversed(parts)))
    encoded = sorted((n.encode("utf-8"), n) for n in needles)
    find = _substring_finder(raw for raw, _ in encoded)
    files = _files(paths)
    hits: list[Hit] = []
    total = 0
    for path in files:
        data = path.read_bytes()
        total += len(data)
        found: set[str] = set()
        for view, blob in _views(path, data):
            present = find(blob)  # every needle at once, one pass over the view
            for raw, value in encoded:
                if value not in found and raw in present:
                    found.add(value)
                    hits.append(Hit(path, value, view))
    return ScanReport(files=tuple(files), bytes_read=total, hits=tuple(hits))


def ids_shown_in_report(report: str | Path, ids: Iterable[str]) -> list[str]:
    """The ``ids`` (patient, case or scan ids) that a rendered HTML report shows as text.

    Embedded images (``data:`` URIs) are left out before searching: base64 text
    would give chance hits for short ids. An id counts when it stands as a whole
    token (not inside a longer id or pseudonym). Everything a report shows should
    identify patients by keyed pseudonym only, so the expected answer is ``[]``.
    """
    text = Path(report).read_text(encoding="utf-8")
    text = html.unescape(_DATA_URI_RE.sub(b"", text.encode("utf-8")).decode("utf-8"))
    wanted = {str(v) for v in ids}
    # every id at once (one pass, :func:`_needle_starts`); standing alone means no ASCII
    # letter or digit just before or just after it
    shown = {
        i
        for pos, there in _needle_starts(wanted)(text)
        if pos == 0 or text[pos - 1] not in _ASCII_ALNUM
        for i in there
        if pos + len(i) == len(text) or text[pos + len(i)] not in _ASCII_ALNUM
    }
    if "" in wanted and re.search(r"(?<![A-Za-z0-9])(?![A-Za-z0-9])", text):
        shown.add("")
    return sorted(shown)


_ASCII_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")


_TOKEN_RE = re.compile(r"[^\W_]+")
#: Letters and digits a value needs to be looked for without chance hits; a CJK character counts 2.
_MIN_SCANNED_CHARS = 4
#: A value of digits only is looked for when it has at least this many (shorter numbers are counts).
_MIN_SCANNED_DIGITS = 6
#: Files whose text a reader can see: tables, vector figures, manifests, the report, images' text.
_TEXT_SUFFIXES = (".csv", ".json", ".svg", ".html", ".htm", ".md", ".txt", ".pdf", ".png")
#: Characters that render as nothing (zero-width, soft hyphen, BOM): removed before matching.
_INVISIBLE_RE = re.compile("[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]")
#: Scripts written without spaces between words: a value in them is looked for as a substring.
_UNSPACED_RE = re.compile("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\u3040-\u30ff]")
#: SVG/HTML attributes that hold geometry or style, never text a reader sees.
_GEOMETRY_ATTR_RE = re.compile(
    r'\s(?:d|points|transform|viewBox|style|x|y|x1|x2|y1|y2|cx|cy|r|rx|ry|width|height|'
    r'stroke-[a-z-]+|fill-opacity|font-size|offset|clip-path)="[^"]*"'
)
_COMMENT_RE = re.compile(r"<!--(.*?)-->", re.DOTALL)
#: An HTML or SVG tag: its name and attribute names are markup, not text a reader sees.
_TAG_RE = re.compile(r"</?[A-Za-z][^\s/>]*((?:[^>\"']|\"[^\"]*\"|'[^']*')*)/?>")
_ATTR_VALUE_RE = re.compile(r"""=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")


def _tag_values(match: re.Match[str]) -> str:
    """A tag replaced by the values of its (non-geometry) attributes, spaced apart.

    The values stay (a ``title``, ``alt`` or ``aria-label`` may hold a name); the tag
    and attribute names go, so that markup such as ``</li>`` next to ``Liu`` is not
    read as the name ``Liu Li``, and a name split by tags (``Zhang<b>Wei</b>``) is
    still read as two adjacent words.
    """
    values = [a or b or c for a, b, c in _ATTR_VALUE_RE.findall(match.group(1))]
    return " " + " ".join(values) + " "
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


class PrivacyError(StudyvalError):
    """A bundle would publish an identifier of the inputs; it is not written."""


@dataclass(frozen=True)
class IdentifierScan:
    """What :func:`scan_for_input_identifiers` looked for and where it found it.

    Attributes
    ----------
    n_files : int
        Files read.
    scanned : dict of str to int
        Per source column (``"clinical: patient_name"``), the number of
        distinct values looked for.
    too_short : dict of str to int
        Per source column, distinct values too short to look for without chance
        hits (fewer than 4 letters or digits, or a number of fewer than 6 digits).
    hits : dict of str to tuple of str
        Per source column with a hit, the files (relative paths) where one of
        its values was found. Values are never recorded.

    """

    n_files: int
    scanned: dict[str, int]
    too_short: dict[str, int]
    hits: dict[str, tuple[str, ...]]

    @property
    def ok(self) -> bool:
        """True when no value was found."""
        return not self.hits

    def record(self) -> dict[str, object]:
        """The scan as the manifest records it (counts only, no values)."""
        return {
            "files_scanned": self.n_files,
            "distinct_values_scanned": dict(sorted(self.scanned.items())),
            "distinct_values_too_short_to_scan": dict(sorted(self.too_short.items())),
            "hits": sum(len(v) for v in self.hits.values()),
        }


def _normalise(text: str) -> str:
    """Text as compared: NFKC (full-width and composed forms folded), case-folded, invisibles gone."""
    return _INVISIBLE_RE.sub("", unicodedata.normalize("NFKC", text)).casefold()


def _tokens(text: str) -> list[str]:
    return _TOKEN_RE.findall(_normalise(text))


def _png_text(data: bytes) -> str:
    """The text chunks (tEXt, zTXt, iTXt) of a PNG file."""
    out: list[str] = []
    pos = 8
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind in _PNG_TEXT_CHUNKS:
            if kind == b"zTXt":
                key, _, rest = body.partition(b"\x00")
                try:
                    body = key + b" " + zlib.decompress(rest[1:])
                except zlib.error:
                    pass
            out.append(body.replace(b"\x00", b" ").decode("utf-8", errors="replace"))
        pos += 12 + length
    return "\n".join(out)


def _visible_text(path: Path) -> str:
    """What a reader can read in a file: text nodes and labels, not geometry or embedded images."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".png":
        return _png_text(data)
    if suffix == ".pdf":
        parts = [_pdf_text(_STREAM_RE.sub(b"", data)).decode("utf-8", errors="replace")]
        for match in _STREAM_RE.finditer(data):
            if _is_image_stream(data, match.start()):
                continue
            content = _inflate(match.group(1))
            parts.append(_pdf_text(content).decode("utf-8", errors="replace"))
        parts.append(_pdf_mapped_text(data))
        # strings outside the content streams (document information: title, author...)
        parts += [
            _pdf_unescape(m.group(0)).decode("latin-1")
            for m in _PDF_STRING_RE.finditer(_STREAM_RE.sub(b"", data))
        ]
        return "\n".join(parts)
    if suffix in (".html", ".htm", ".svg"):
        data = _DATA_URI_RE.sub(b"", data)
        text = data.decode("utf-8", errors="replace")
        text = _COMMENT_RE.sub(lambda m: " " + m.group(1) + " ", text)
        text = _GEOMETRY_ATTR_RE.sub(" ", text)
        text = _TAG_RE.sub(_tag_values, text)
        return html.unescape(text)
    return data.decode("utf-8", errors="replace")


def _weight(value: str) -> int:
    """Letters and digits of ``value``, a CJK character (never ASCII) counting 2."""
    alnum = [c for c in value if c.isalnum()]
    if value.isascii():
        return len(alnum)
    return len(alnum) + sum(1 for c in alnum if _UNSPACED_RE.match(c))


def scan_for_input_identifiers(
    root: str | Path, identifiers: Mapping[str, Iterable[object]]
) -> IdentifierScan:
    """Look for the inputs' identifiers in every readable file under ``root``.

    Used inside every run, before a bundle is published. Text is compared
    after Unicode NFKC normalisation and case folding, with zero-width
    characters removed. Each value is split into its runs of letters and
    digits, and a hit is the same runs, in order, standing next to each other
    in a file's visible text. So ``Zhang^Wei``, ``ZHANG Wei``, ``zhang_wei``
    and ``Zha\u200bng Wei`` are all found, while ``P0001`` is not found inside
    ``P00012``. A value in a script written without spaces (Chinese,
    Japanese, Korean) is looked for as a substring. A number is looked for
    only when it has at least 6 digits (shorter ones are counts and
    coordinates), also without its leading zeros.

    Visible text means: CSV, JSON, Markdown and text files as they are; the
    text nodes, comments and labelling attributes of SVG and HTML (geometry
    attributes and embedded images left out); the text a PDF shows and its
    document strings; the text chunks of a PNG (pixels are not read).

    Parameters
    ----------
    root : path
        A folder (read recursively) or a file.
    identifiers : mapping of str to iterable
        Source column (``"clinical: patient_name"``) to its values (names,
        record numbers, dates of birth in the forms to look for, patient and
        case ids). Missing values are ignored.

    Returns
    -------
    IdentifierScan
        Counts and, per column, the files with a hit (never the values).

    """
    root = Path(root)
    wanted: dict[tuple[str, ...], set[str]] = {}
    substrings: dict[str, set[str]] = {}
    scanned: dict[str, int] = {}
    too_short: dict[str, int] = {}
    for column, values in identifiers.items():
        distinct = {str(v) for v in values if v is not None and str(v).strip() and str(v) != "nan"}
        n_short = 0
        for value in distinct:
            norm = _normalise(value)
            toks = tuple(_TOKEN_RE.findall(norm))
            digits_only = bool(toks) and all(t.isdigit() for t in toks)
            if digits_only and sum(map(len, toks)) < _MIN_SCANNED_DIGITS:
                n_short += 1
                continue
            if _weight(norm) < _MIN_SCANNED_CHARS:
                n_short += 1
                continue
            if _UNSPACED_RE.search(norm):
                substrings.setdefault(re.sub(r"[\W_]+", "", norm), set()).add(column)
                continue
            wanted.setdefault(toks, set()).add(column)
            if digits_only and len(toks) == 1 and toks[0].startswith("0"):
                bare = toks[0].lstrip("0")
                if len(bare) >= _MIN_SCANNED_DIGITS:
                    wanted.setdefault((bare,), set()).add(column)
        scanned[column] = len(distinct) - n_short
        too_short[column] = n_short
    first = {t[0] for t in wanted}
    lengths = sorted({len(t) for t in wanted})
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    files = [p for p in files if p.suffix.lower() in _TEXT_SUFFIXES]
    hits: dict[str, set[str]] = {}
    for path in files:
        text = _normalise(_visible_text(path))
        toks = _TOKEN_RE.findall(text)
        rel = path.name if path == root else path.relative_to(root).as_posix()
        for i, tok in enumerate(toks):
            if tok not in first:
                continue
            for n in lengths:
                for column in wanted.get(tuple(toks[i : i + n]), ()):
                    hits.setdefault(column, set()).add(rel)
        if substrings:
            joined = re.sub(r"[\W_]+", "", text)
            for needle, columns in substrings.items():
                if needle in joined:
                    for column in columns:
                        hits.setdefault(column, set()).add(rel)
    return IdentifierScan(
        n_files=len(files),
        scanned=scanned,
        too_short=too_short,
        hits={c: tuple(sorted(f)) for c, f in sorted(hits.items())},
    )


def refuse_if_identifiers(scan: IdentifierScan, *, what: str = "the bundle") -> None:
    """Raise :class:`PrivacyError` naming each column (never the value) found in ``what``."""
    if scan.ok:
        return
    parts = []
    for column, files in scan.hits.items():
        shown = ", ".join(files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
        parts.append(f"values of {column} appear in {shown}")
    raise PrivacyError(
        f"refusing to publish {what}: " + "; ".join(parts) + ". Nothing was written. "
        "An identifier reached the results through a column that should hold none "
        "(free text, a site or model name, a label): remove it from the input."
    )
