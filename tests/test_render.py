"""Rendering a report .qmd without Quarto (Jupyter kernel + pandoc)."""

from __future__ import annotations

import re
import textwrap
import time
from pathlib import Path

import pytest

from studyval.errors import StudyvalError
from studyval.render import RenderResult, parse_qmd, render_report

FIXTURE = textwrap.dedent(
    """\
    ---
    title: "Fixture report"
    subtitle: "Chronicity of vertebral fractures"
    author: "Study statistician"
    date: 2024-05-01
    format:
      html:
        toc: true
        embed-resources: true
    execute:
      echo: false
    jupyter: python3
    ---

    ```{python}
    #| tags: [parameters]
    bundle = "default-bundle"
    threshold = 0.5
    ```

    # Results

    The model's discrimination is shown in @fig-roc.

    ```{python}
    #| label: metrics-text
    #| output: asis
    print(f"Bundle: **{bundle}**, threshold {threshold}.\\n")
    print("| Metric | Estimate | 95% CI |")
    print("|:-------|---------:|:-------|")
    print("| AUC | 0.871 | 0.832-0.905 |")
    print("| Sensitivity | 0.793 | 0.741-0.838 |")
    ```

    ## Figures

    ```{python}
    #| label: fig-roc
    #| fig-cap: "ROC curve of the primary model."
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 0.1, 0.3, 1], [0, 0.6, 0.85, 1])
    ax.plot([0, 1], [0, 1], "--", color="grey")
    plt.show()
    ```

    ::: {.callout-note}
    Statistics are read from the results bundle; nothing is recomputed.
    :::

    ```{python}
    #| include: false
    secret_marker = "include-false-marker"
    print(secret_marker)
    ```

    ```{python}
    import warnings
    warnings.warn("3 cases had missing dates")
    print("Cases analysed: 240")
    ```

    ```{python}
    #| warning: false
    warnings.warn("this warning is hidden on purpose")
    ```

    ## Discussion

    [Interpretation to be written by the clinical lead.]{.placeholder}
    """
)


def write_qmd(directory: Path, text: str, name: str = "report.qmd") -> Path:
    report_dir = directory / "reports" / "fixture"
    report_dir.mkdir(parents=True, exist_ok=True)
    qmd = report_dir / name
    qmd.write_text(text, encoding="utf-8")
    return qmd


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> tuple[RenderResult, bytes, Path]:
    root = tmp_path_factory.mktemp("render")
    qmd = write_qmd(root, FIXTURE)
    result = render_report(
        qmd,
        root / "out" / "report.html",
        params={"bundle": "/data/bundle-7"},
        engine="jupyter",
        timeout=120,
    )
    return result, result.output.read_bytes(), qmd


@pytest.mark.render
def test_fallback_renders_the_report(rendered: tuple[RenderResult, bytes, Path]) -> None:
    result, data, _ = rendered
    html = data.decode("utf-8")
    assert result.engine == "jupyter-pandoc"
    assert result.version.startswith("pandoc ")
    assert result.n_cells == 6
    # title block, headings and the table of contents
    assert '<h1 class="title">Fixture report</h1>' in html
    assert re.search(r"<h1[^>]*>\s*Results\s*</h1>", html)
    assert 'id="TOC"' in html and 'href="#figures"' in html
    assert "May 1, 2024" in html
    # the asis markdown table became an HTML table
    assert "<table>" in html
    assert re.search(r"<td[^>]*>0\.871</td>", html)
    assert re.search(r"<td[^>]*>0\.741-0\.838</td>", html)
    # the parameter was overridden
    assert "/data/bundle-7" in html
    assert "default-bundle" not in html
    # the figure is embedded, numbered and cross-referenced
    assert "data:image/png;base64," in html
    assert re.search(r'<figure id="fig-roc"', html)
    assert "Figure\u00a01: ROC curve of the primary model." in html
    assert 'href="#fig-roc" class="quarto-xref">Figure\u00a01</a>' in html
    # callout and placeholder
    assert "callout callout-style-default callout-note" in html
    assert '<span class="placeholder">' in html
    # include: false ran the cell but shows nothing
    assert "include-false-marker" not in html
    # warnings are visible unless warning: false
    assert "cell-output-stderr" in html
    assert "UserWarning: 3 cases had missing dates" in html
    assert "hidden on purpose" not in html
    assert "Cases analysed: 240" in html
    # echo: false, so no code at all
    assert "cell-code" not in html
    assert "plt.subplots" not in html
    assert "import matplotlib" not in html
    # self-contained: no links to local files
    assert not re.search(r'<(img|script|link)[^>]+(src|href)="(?!data:|#|https?:)', html)


@pytest.mark.render
def test_fallback_render_is_deterministic(
    rendered: tuple[RenderResult, bytes, Path], tmp_path: Path
) -> None:
    _, first, qmd = rendered
    again = render_report(
        qmd,
        tmp_path / "again.html",
        params={"bundle": "/data/bundle-7"},
        engine="jupyter",
        timeout=120,
    )
    assert again.output.read_bytes() == first
    assert again.pdf is not None and again.pdf.read_bytes() == rendered[0].pdf.read_bytes()


@pytest.mark.render
def test_fallback_writes_the_same_report_as_pdf(
    rendered: tuple[RenderResult, bytes, Path],
) -> None:
    """The PDF beside the page: pandoc's typst writer, compiled by the typst package."""
    result, _, _ = rendered
    assert result.pdf == result.output.with_suffix(".pdf")
    data = result.pdf.read_bytes()
    assert data.startswith(b"%PDF-")
    pypdf = pytest.importorskip("pypdf")
    reader = pypdf.PdfReader(result.pdf)
    text = " ".join(" ".join(page.extract_text() or "" for page in reader.pages).split())
    assert "Fixture report" in text and "Chronicity of vertebral fractures" in text
    assert "/data/bundle-7" in text and "default-bundle" not in text
    assert "0.871" in text and "0.741-0.838" in text  # the asis table
    assert "Figure\u00a01: ROC curve of the primary model." in text.replace(" 1:", "\u00a01:")
    assert "Statistics are read from the results bundle" in text  # the callout
    assert "UserWarning: 3 cases had missing dates" in text
    assert "include-false-marker" not in text and "hidden on purpose" not in text
    box = reader.pages[0].mediabox
    assert (float(box.width), float(box.height)) == pytest.approx((595.28, 841.89), abs=1)
    images = [img for page in reader.pages for img in page.images]
    assert len(images) == 1  # the figure
    # the identifier scan reads the text the PDF shows (its fonts' ToUnicode maps)
    from studyval.privacy import scan_for_input_identifiers

    scan = scan_for_input_identifiers(result.pdf, {"bundle": ["/data/bundle-7"]})
    assert scan.hits == {"bundle": ("report.pdf",)}


@pytest.mark.render
def test_render_without_pdf_removes_a_stale_one(
    rendered: tuple[RenderResult, bytes, Path], tmp_path: Path
) -> None:
    _, _, qmd = rendered
    output = tmp_path / "report.html"
    output.with_suffix(".pdf").write_bytes(b"%PDF- stale")
    result = render_report(qmd, output, params={}, engine="jupyter", timeout=120, pdf=False)
    assert result.pdf is None and not output.with_suffix(".pdf").exists()


@pytest.mark.render
def test_failing_cell_names_the_cell_and_leaves_no_output(tmp_path: Path) -> None:
    qmd = write_qmd(
        tmp_path,
        textwrap.dedent(
            """\
            ---
            title: "Broken"
            execute:
              echo: false
            ---

            # Section

            ```{python}
            #| label: load-bundle
            import json
            manifest = json.loads("{not json")
            ```
            """
        ),
    )
    output = tmp_path / "out" / "report.html"
    output.parent.mkdir()
    output.write_text("stale report from an earlier bundle")
    with pytest.raises(StudyvalError) as info:
        render_report(qmd, output, params={}, engine="jupyter", timeout=120)
    message = str(info.value)
    assert "load-bundle" in message
    assert "JSONDecodeError" in message
    assert 'manifest = json.loads("{not json")' in message
    assert not output.exists()
    assert list(output.parent.iterdir()) == []


def test_r_cell_is_rejected(tmp_path: Path) -> None:
    qmd = write_qmd(tmp_path, "---\ntitle: R\n---\n\n```{r}\nsummary(cars)\n```\n")
    with pytest.raises(StudyvalError, match=r"\{r\} cell"):
        render_report(qmd, tmp_path / "r.html", params={}, engine="jupyter")
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("```{python}\n#| fig-width: 3\nx = 1\n```\n", "cell option 'fig-width'"),
        ("```{python}\n#| error: true\nx = 1\n```\n", "error"),
        ("Version {{< meta version >}}\n", "shortcodes"),
        ("The AUC is `{python} auc`.\n", "inline code"),
        ("```{python echo=false}\nx = 1\n```\n", "cell header"),
        ("```{python}\nx = 1\n", "never closed"),
    ],
)
def test_constructs_the_fallback_cannot_honour_are_rejected(
    tmp_path: Path, body: str, match: str
) -> None:
    qmd = write_qmd(tmp_path, "---\ntitle: T\n---\n\n" + body)
    with pytest.raises(StudyvalError, match=match):
        parse_qmd(qmd)


def test_unknown_front_matter_is_rejected(tmp_path: Path) -> None:
    qmd = write_qmd(tmp_path, "---\ntitle: T\nbibliography: refs.bib\n---\n\nText.\n")
    with pytest.raises(StudyvalError, match="bibliography"):
        parse_qmd(qmd)


def test_plain_code_blocks_are_not_cells(tmp_path: Path) -> None:
    text = "---\ntitle: T\n---\n\n````markdown\n```{r}\nx\n```\n````\n\n```{.python}\nx = 1\n```\n"
    doc = parse_qmd(write_qmd(tmp_path, text))
    assert doc.code_cells == ()


@pytest.mark.render
@pytest.mark.parametrize(
    ("body", "match"),
    [
        ("See @smith2020 for details.\n", "citation or cross-reference"),
        ("See @fig-missing.\n", "refers to no figure"),
        ("::: {.panel-tabset}\n## A\nx\n:::\n", "panel-tabset"),
        ("::: {.callout-note collapse=true}\nx\n:::\n", "collapse"),
        ("![Flow diagram](/bundle/figures/flow.png)\n", "absolute path"),
    ],
)
def test_markdown_the_fallback_cannot_honour_is_rejected(
    tmp_path: Path, body: str, match: str
) -> None:
    qmd = write_qmd(tmp_path, "---\ntitle: T\n---\n\n" + body)
    with pytest.raises(StudyvalError, match=match):
        render_report(qmd, tmp_path / "x.html", params={}, engine="jupyter", timeout=60)


def test_unknown_parameter_is_rejected(tmp_path: Path) -> None:
    qmd = write_qmd(tmp_path, FIXTURE)
    with pytest.raises(StudyvalError, match=r"unknown parameter.*bundel"):
        render_report(qmd, tmp_path / "x.html", params={"bundel": "/x"}, engine="jupyter")


def test_quarto_engine_without_quarto_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STUDYVAL_QUARTO", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    qmd = write_qmd(tmp_path, "---\ntitle: T\n---\n\nText.\n")
    output = tmp_path / "q.html"
    with pytest.raises(StudyvalError, match="Quarto CLI was not found"):
        render_report(qmd, output, params={}, engine="quarto")
    assert not output.exists()


@pytest.mark.render
def test_timeout_stops_a_running_cell(tmp_path: Path) -> None:
    qmd = write_qmd(
        tmp_path,
        "---\ntitle: Slow\n---\n\n```{python}\n#| label: slow-cell\nimport time\n"
        "time.sleep(120)\n```\n",
    )
    output = tmp_path / "slow.html"
    started = time.monotonic()
    with pytest.raises(StudyvalError) as info:
        render_report(qmd, output, params={}, engine="jupyter", timeout=6)
    # depending on the machine's load the time runs out in the cell or just before it
    assert "slow-cell" in str(info.value)
    assert re.search(r"did not finish|ran out of time", str(info.value))
    assert time.monotonic() - started < 60
    assert not output.exists()
