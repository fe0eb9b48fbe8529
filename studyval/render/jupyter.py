"""The fallback engine: the cells run in a Jupyter kernel of this interpreter, pandoc converts.

Used on machines without Quarto (CI, a new user): the parsed ``.qmd``'s Python
cells run in a kernel (nbclient + ipykernel) after a setup cell
(``templates/kernel-setup.py.in``), their outputs are reduced as Quarto
reduces them, and the assembled Markdown is converted by the pandoc binary of
``pypandoc-binary`` with the Lua filter and HTML template of ``templates/`` and
``reports/_common/studyval.css``. The page it writes runs nothing: a script, an
event handler or a script URL is refused.
"""

from __future__ import annotations

import base64
import math
import re
import sys
from collections.abc import Mapping, Sequence
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from studyval.errors import RenderError, StudyvalError
from studyval.render.common import (
    _KERNEL_ENV,
    _last_line,
    _remaining,
    _strip_ansi,
    _studyval_css,
    _template,
)
from studyval.render.pandoc import (
    _assemble,
    _cell_markdown,
    _Output,
    _pandoc_path,
    _pandoc_version,
    _run_pandoc,
)
from studyval.render.params import _injected_source
from studyval.render.pdf import _render_pdf
from studyval.render.qmd import QmdCell, QmdDocument, _authors

_WARNING_PATH_RE = re.compile(
    r"^[^\n]*?(?:ipykernel_\d+[\\/]\d+\.py|<ipython-input[^>]*>):\d+: ", re.MULTILINE
)
_DISCARDABLE_RESULTS = ("[<matplotlib", "<matplotlib", "<seaborn.", "<ggplot:")


def _render_jupyter(
    doc: QmdDocument,
    staged: Path,
    values: Mapping[str, Any],
    deadline: float,
    with_pdf: bool = True,
) -> tuple[bytes, str, bytes | None]:
    import nbformat

    workdir = staged.parent
    setup = _template("kernel-setup.py.in").format(
        width=float(doc.html.get("fig-width", 7)),
        height=float(doc.html.get("fig-height", 5)),
        dpi=int(doc.html.get("fig-dpi", 96)),
        fmt=str(doc.html.get("fig-format", "retina")),
    )
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "language": "python",
        "display_name": "Python 3",
    }
    nb.cells.append(nbformat.v4.new_code_cell(setup))
    plan: list[tuple[int, QmdCell]] = []  # notebook index -> cell (with options)
    injected: dict[int, QmdCell] = {}  # doc index after which an injected cell follows
    for index, cell in enumerate(doc.cells):
        if cell.kind != "code":
            continue
        nb.cells.append(nbformat.v4.new_code_cell(cell.source))
        plan.append((len(nb.cells) - 1, cell))
        if values and cell is doc.parameters_cell:
            options = {k: v for k, v in cell.options.items() if k != "label"}
            options["tags"] = ["injected-parameters"]
            params_cell = QmdCell("code", _injected_source(values), options, cell.line, 0)
            nb.cells.append(nbformat.v4.new_code_cell(params_cell.source))
            plan.append((len(nb.cells) - 1, params_cell))
            injected[index] = params_cell

    _execute(doc, nb, plan, workdir, deadline)

    stem = doc.path.stem
    figures_dir = f"{stem}_files/figure-html"
    (workdir / figures_dir).mkdir(parents=True, exist_ok=True)
    outputs_of = {id(cell): nb.cells[i].get("outputs", []) for i, cell in plan}
    rendered: dict[int, str] = {}
    for index, cell in enumerate(doc.cells):
        if cell.kind != "code":
            continue
        texts = []
        for part in (cell, injected.get(index)):
            if part is None:
                continue
            executed = doc.option(part, "eval")
            outs = outputs_of[id(part)] if executed else []
            name = part.label or (
                f"cell-{part.number}" if part.number else f"cell-{cell.number}-params"
            )
            reduced = _reduce_outputs(doc, part, outs, workdir, f"{figures_dir}/{name}")
            texts.append(_cell_markdown(doc, part, reduced))
        rendered[index] = "\n".join(t for t in texts if t)

    (workdir / "studyval.lua").write_text(_template("studyval.lua"), encoding="utf-8")
    (workdir / "studyval-template.html").write_text(
        _template("studyval-template.html"), encoding="utf-8"
    )
    md_name = f"{stem}.studyval.md"
    (workdir / md_name).write_text(_assemble(doc, rendered), encoding="utf-8")
    args = _pandoc_args(doc, workdir, md_name, "studyval-output.html")
    _run_pandoc(args, workdir, deadline, "converting the report to HTML", doc.path.name)
    html = (workdir / "studyval-output.html").read_bytes()
    _check_no_active_content(html, doc.path.name)
    pdf = _render_pdf(doc, workdir, md_name, deadline) if with_pdf else None
    return html, _pandoc_version(_pandoc_path()), pdf


class _ActiveContentFinder(HTMLParser):
    """Collects what would run in a browser: scripts, event handlers, script URLs."""

    _ELEMENTS = frozenset({"script", "iframe", "frame", "object", "embed", "applet", "base"})
    _URL_ATTRIBUTES = frozenset(
        {"href", "src", "action", "formaction", "data", "srcset", "xlink:href", "poster"}
    )
    _SCHEME_RE = re.compile(r"^\s*(?:javascript|vbscript|data\s*:\s*text/html)", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._ELEMENTS:
            self.found.append(f"a <{tag}> element")
        if tag == "meta" and any(name == "http-equiv" for name, _ in attrs):
            self.found.append("a <meta http-equiv> element")
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"an event-handler attribute {name}= on <{tag}>")
            elif (
                name in self._URL_ATTRIBUTES
                and value
                and self._SCHEME_RE.match("".join(value.split()))
            ):
                self.found.append(f"a script URL in {name}= of <{tag}>")

    handle_startendtag = handle_starttag


def _check_no_active_content(html: bytes, source: str) -> None:
    """The fallback's page runs nothing: refuse a script, an event handler, a script URL.

    The fallback's template and filter write no script, and reports may not
    show interactive outputs, so any such element comes from raw HTML that a
    cell printed: usually a value from the bundle printed without
    :func:`studyval.reporting.md_escape`. Rendering it would put the data's
    markup live into the report.
    """
    finder = _ActiveContentFinder()
    finder.feed(html.decode("utf-8", "replace"))
    finder.close()
    if finder.found:
        shown = "; ".join(dict.fromkeys(finder.found))
        raise RenderError(
            f"{source}: the rendered page would contain active content ({shown}); "
            "the fallback renderer writes none, so a cell printed raw HTML, usually a value "
            "from the bundle that was not escaped (print it through "
            "studyval.reporting.md_escape or md_table)"
        )


def _pandoc_args(doc: QmdDocument, workdir: Path, md_name: str, out_name: str) -> list[str]:
    html = doc.html
    args = [
        md_name,
        "--from=markdown",
        "--to=html5",
        "--standalone",
        "--embed-resources",
        "--section-divs",
        "--mathml",
        "--wrap=none",
        "--fail-if-warnings",
        "--template=studyval-template.html",
        "--lua-filter=studyval.lua",
        f"--resource-path={workdir}",
        f"--output={out_name}",
    ]
    for css in _stylesheets(doc, workdir):
        args.append(f"--css={css}")
    if html.get("toc"):
        args += ["--toc", f"--toc-depth={html.get('toc-depth', 3)}"]
        args.append(f"--variable=toc-title:{html.get('toc-title', 'Table of contents')}")
    if html.get("number-sections"):
        args.append("--number-sections")
    n_authors = len(_authors(doc.front_matter.get("author", []), doc.path.name))
    args.append(f"--variable=author-heading:{'Authors' if n_authors > 1 else 'Author'}")
    return args


def _stylesheets(doc: QmdDocument, workdir: Path) -> list[str]:
    """The studyval stylesheet, then the report's own ``css`` (without duplicates)."""
    sheets = [_studyval_css()]
    declared = doc.html.get("css", [])
    for entry in [declared] if isinstance(declared, str) else declared:
        path = (workdir / entry).resolve()
        if not path.is_file():
            raise RenderError(f"{doc.path.name}: css file {entry!r} was not found")
        if all(path.read_bytes() != s.read_bytes() for s in sheets):
            sheets.append(path)
    return [str(s) for s in sheets]


def _reduce_outputs(
    doc: QmdDocument, cell: QmdCell, outputs: Sequence[Any], workdir: Path, stem: str
) -> list[_Output]:
    """Turn nbformat outputs into markdown-ready outputs, as Quarto chooses them."""
    if not doc.option(cell, "output"):
        return []
    show_warnings = doc.option(cell, "warning")
    have_image = any(
        o.get("output_type") in ("display_data", "execute_result")
        and _pick_mime(o.get("data", {})) in ("image/svg+xml", "image/png", "image/jpeg")
        for o in outputs
    )
    reduced: list[_Output] = []
    for position, out in enumerate(outputs, start=1):
        kind = out.get("output_type")
        if kind == "stream":
            text = _strip_ansi(out.get("text", ""))
            if out.get("name") == "stderr":
                if not show_warnings:
                    continue
                reduced.append(_Output("stderr", _WARNING_PATH_RE.sub("", text)))
            else:
                reduced.append(_Output("stdout", text))
            continue
        if kind not in ("display_data", "execute_result"):
            continue  # errors stop the render before this point
        data = out.get("data", {})
        if _discardable(out, have_image):
            continue
        mime = _pick_mime(data)
        if mime is None:
            raise RenderError(
                f"{doc.path.name}: {cell.describe()} displays {sorted(data)}, which the "
                "fallback renderer cannot show the way Quarto would (use a table, "
                "markdown or a static figure)"
            )
        value = data[mime]
        value = "".join(value) if isinstance(value, list) else value
        if mime == "text/html":
            reduced.append(_Output("html", value))
        elif mime == "text/markdown":
            reduced.append(_Output("markdown", value))
        elif mime == "text/plain":
            reduced.append(_Output("text", _strip_ansi(value)))
        else:
            ext = {"image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpg"}[mime]
            rel = f"{stem}-output-{position}.{ext}"
            target = workdir / rel
            width = height = None
            if ext == "svg":
                target.write_text(value, encoding="utf-8")
            else:
                data = base64.b64decode(value)
                target.write_bytes(data)
                if ext == "png":
                    width, height = _retina_size(data, doc)
            reduced.append(_Output("image", path=rel, width=width, height=height))
    return reduced


def _retina_size(png: bytes, doc: QmdDocument) -> tuple[int | None, int | None]:
    """Display size of a retina PNG, decided as Quarto decides it.

    Quarto sets an image's width and height only when the figure format is
    ``retina`` and the PNG's resolution is twice ``fig-dpi``: then the image
    is shown at half its pixel size.  Width metadata of the output is ignored.
    """
    if doc.html.get("fig-format", "retina") != "retina" or png[:8] != b"\x89PNG\r\n\x1a\n":
        return None, None
    target = 2 * int(doc.html.get("fig-dpi", 96))
    width = height = dpi_x = dpi_y = -1
    pos = 8
    while pos + 8 <= len(png):
        length = int.from_bytes(png[pos : pos + 4], "big")
        kind = png[pos + 4 : pos + 8]
        body = png[pos + 8 : pos + 8 + length]
        if kind == b"IHDR" and len(body) >= 8:
            width = int.from_bytes(body[0:4], "big")
            height = int.from_bytes(body[4:8], "big")
        elif kind == b"pHYs" and len(body) >= 9 and body[8] == 1:
            dpi_x = math.floor(int.from_bytes(body[0:4], "big") * 0.0254 + 0.5)
            dpi_y = math.floor(int.from_bytes(body[4:8], "big") * 0.0254 + 0.5)
        elif kind == b"IDAT":
            break
        pos += 12 + length
    if width > 0 and dpi_x == target and dpi_y == target:
        return math.floor(width / 2 + 0.5), math.floor(height / 2 + 0.5)
    return None, None


def _pick_mime(data: Mapping[str, Any]) -> str | None:
    unsupported = (
        "application/vnd.jupyter.widget-state+json",
        "application/vnd.jupyter.widget-view+json",
        "application/javascript",
    )
    if any(m in data for m in unsupported):
        return None
    for mime in ("text/html", "text/markdown", "image/svg+xml", "image/png", "image/jpeg"):
        if mime in data:
            return mime
    if "text/latex" in data:
        return None
    return "text/plain" if "text/plain" in data else None


def _discardable(out: Mapping[str, Any], have_image: bool) -> bool:
    if out.get("output_type") != "execute_result":
        return False
    data = out.get("data", {})
    if set(data) != {"text/plain"}:
        return False
    text = data["text/plain"]
    text = "".join(text) if isinstance(text, list) else text
    if have_image and "\n" not in text.strip():
        return re.match(r"^([<(\[]).*?([>)\]])$", text.strip()) is not None
    return text.startswith(_DISCARDABLE_RESULTS)


def _execute(
    doc: QmdDocument,
    nb: Any,
    plan: Sequence[tuple[int, QmdCell]],
    workdir: Path,
    deadline: float,
) -> None:
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    class _ThisPythonKernels(KernelSpecManager):
        """Resolve every kernel name to ipykernel of this very interpreter."""

        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            return KernelSpec(
                argv=[sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                display_name="Python 3 (studyval)",
                language="python",
                env=dict(_KERNEL_ENV),
            )

    km = AsyncKernelManager(kernel_name="python3", kernel_spec_manager=_ThisPythonKernels())
    client = NotebookClient(
        nb,
        km=km,
        kernel_name="python3",
        timeout=max(1, int(_remaining(deadline, "starting the kernel"))),
        allow_errors=False,
        record_timing=False,
        # every output is in the notebook when the kernel is shut down, and a report's kernel
        # writes nothing at exit: stopped at once, not asked to tear its interpreter down
        # (the graceful shutdown took the kernel of a protocol report about a second of CPU)
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(workdir)}},
    )
    kernel_log = workdir.parent / "kernel.log"
    cell_of = dict(plan)
    with open(kernel_log, "wb") as log:
        try:
            with client.setup_kernel(cleanup_kc=True, stdout=log, stderr=log):
                for index in range(len(nb.cells)):
                    cell = cell_of.get(index)
                    if cell is not None and not doc.option(cell, "eval"):
                        continue
                    what = "the setup cell" if cell is None else cell.describe()
                    client.timeout = max(1, math.ceil(_remaining(deadline, f"running {what}")))
                    try:
                        client.execute_cell(nb.cells[index], index)
                    except CellExecutionError as exc:
                        raise _cell_failure(doc, cell, nb.cells[index], exc) from None
                    except CellTimeoutError as exc:
                        raise RenderError(
                            f"{doc.path.name}: {what} did not finish within the render "
                            f"timeout\n{cell.head() if cell else ''}"
                        ) from exc
        except DeadKernelError as exc:
            log.flush()
            tail = _last_line(kernel_log.read_text(encoding="utf-8", errors="replace"))
            raise RenderError(
                f"{doc.path.name}: the Python kernel died: {exc} {tail}".strip()
            ) from exc
        except RuntimeError as exc:
            if isinstance(exc, StudyvalError):
                raise
            raise RenderError(f"{doc.path.name}: cannot run the Python kernel: {exc}") from exc


def _cell_failure(
    doc: QmdDocument, cell: QmdCell | None, nb_cell: Any, exc: Exception
) -> RenderError:
    errors = [o for o in nb_cell.get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        last = _last_line("\n".join(errors[-1].get("traceback", [])))
        last = last or f"{errors[-1].get('ename')}: {errors[-1].get('evalue')}"
    else:
        last = _last_line(str(exc))
    if cell is None:
        return RenderError(f"{doc.path.name}: the setup cell failed: {last}")
    what = "the injected parameters cell" if "injected-parameters" in cell.tags else cell.describe()
    return RenderError(f"{doc.path.name}: {what} failed: {last}\n{cell.head()}")
