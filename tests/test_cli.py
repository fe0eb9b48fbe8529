"""The command line as a user runs it: exit codes, messages, nothing written on error."""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from studyval.cli import main


@pytest.fixture(scope="module")
def inputs(protocol_inputs) -> dict[str, Path]:
    """The session's synthetic inputs of ovcf-chronicity (tests/conftest.py)."""
    return protocol_inputs("ovcf-chronicity")


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_validate_ok(inputs):
    res = invoke(
        "validate",
        "ovcf-chronicity",
        "--clinical",
        str(inputs["clinical"]),
        "--predictions",
        str(inputs["predictions"]),
    )
    assert res.exit_code == 0, res.output
    assert "valid against the ovcf-chronicity dictionary 1.0.0" in res.output


def test_validate_bad_clinical_exits_1_with_file_column_row_rule(inputs, tmp_path):
    frame = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    frame.loc[4, "chronicity"] = "subacute"
    bad = tmp_path / "clinical.csv"
    frame.to_csv(bad, index=False)
    res = invoke("validate", "ovcf-chronicity", "--clinical", str(bad))
    assert res.exit_code == 1
    assert "studyval: error: 1 violation found:" in res.output
    assert (
        "clinical.csv, column 'chronicity', row 6: not an allowed level (acute, chronic); "
        "did you mean 'acute'? (found 'subacute')" in res.output
    )


def test_run_bad_input_exits_1_and_writes_nothing(inputs, tmp_path):
    frame = pd.read_csv(inputs["predictions"], dtype=str, keep_default_na=False)
    frame.loc[0, "score"] = "inf"
    bad = tmp_path / "predictions.csv"
    frame.to_csv(bad, index=False)
    out = tmp_path / "out"
    res = invoke(
        "run",
        "ovcf-chronicity",
        "-c",
        str(inputs["clinical"]),
        "-p",
        str(bad),
        "-o",
        str(out),
        "-q",
    )
    assert res.exit_code == 1
    assert (
        "column 'score', row 2: must be finite" in res.output
        or "column 'score', row 2" in res.output
    )
    assert not out.exists()


def test_unknown_protocol_suggests(inputs, tmp_path):
    res = invoke(
        "run",
        "ovcf-chronicty",
        "-c",
        str(inputs["clinical"]),
        "-p",
        str(inputs["predictions"]),
        "-o",
        str(tmp_path / "o"),
    )
    assert res.exit_code == 1
    assert "did you mean 'ovcf-chronicity'?" in res.output


def test_usage_error_exits_2():
    res = invoke("run", "ovcf-chronicity")
    assert res.exit_code == 2


def test_run_without_render_prints_bundle(inputs, tmp_path, minimal_plan):
    out = tmp_path / "bundle"
    res = invoke(
        "run",
        "ovcf-chronicity",
        "-c",
        str(inputs["clinical"]),
        "-p",
        str(inputs["predictions"]),
        "-o",
        str(out),
        "--no-render",
        "-q",
        "--plan",  # few analyses (tests/conftest.py): what the command prints is the subject
        str(minimal_plan("ovcf-chronicity")),
    )
    assert res.exit_code == 0, res.output
    assert (out / "manifest.json").is_file()
    assert f"bundle: {out}" in res.output


def test_synthetic_writes_inputs_and_truth(tmp_path):
    res = invoke("synthetic", "ovcf-chronicity", "--out", str(tmp_path))
    assert res.exit_code == 0
    assert {p.name for p in tmp_path.iterdir()} == {"clinical.csv", "predictions.csv", "truth.json"}


def test_console_script_is_installed():
    out = subprocess.run(
        [sys.executable, "-m", "studyval.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "studyval" in out.stdout


def test_slug_is_not_taken_for_a_folder_of_that_name(tmp_path, monkeypatch):
    """`studyval synthetic msk-aging -o msk-aging` makes a folder named like the slug; the slug
    must still name the bundled plan and dictionary."""
    from click.testing import CliRunner

    from studyval.cli import main

    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert (
        runner.invoke(main, ["synthetic", "refracture-pvp", "-o", "refracture-pvp"]).exit_code == 0
    )
    res = runner.invoke(main, ["validate", "refracture-pvp", "-c", "refracture-pvp/clinical.csv"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    ("content", "rule"),
    [
        pytest.param("{oops", "invalid JSON", id="manifest-not-json"),
        pytest.param("[]", "a JSON object is expected", id="manifest-not-an-object"),
    ],
)
def test_damaged_manifest_is_a_clear_error(tmp_path, content, rule):
    from click.testing import CliRunner

    from studyval.cli import main

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(content)
    out = tmp_path / "figs"
    res = CliRunner().invoke(
        main, ["figures", "ovcf-chronicity", "--bundle", str(bundle), "--out", str(out)]
    )
    assert res.exit_code == 1
    assert "Traceback" not in res.output and rule in res.output and "manifest.json" in res.output
    assert not out.exists()


# ----------------------------------------------------------------------------- one CLI, no cycles

REPO = Path(__file__).resolve().parents[1]
#: Where the code of each package lives (pyproject's package-dir).
PACKAGE_DIRS = {
    "studyval": "studyval",
    "studyval.analysis": "analysis",
    "studyval.models": "models",
}


def _module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of studyval, studyval.analysis and studyval.models."""
    found: dict[str, Path] = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            found[".".join([package, *(p for p in parts if p != "__init__")])] = path
    return found


@functools.cache
def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports, top level or inside a function (not under TYPE_CHECKING).

    ``from a.b import c`` is an edge to ``a.b.c`` when that is a module, else to ``a.b``; an
    import of ``a.b.c`` does not count as an import of its parents ``a`` and ``a.b``.

    Parsed once per test process (the sources do not change during a run) and shared by the
    three tests that read it, which only read it.
    """
    import ast

    files = _module_files()

    def known(name: str) -> str | None:
        while name and name not in files:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {
            id(node)
            for branch in ast.walk(tree)
            if isinstance(branch, ast.If) and "TYPE_CHECKING" in ast.unparse(branch.test)
            for stmt in branch.body
            for node in ast.walk(stmt)
        }
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                edges.update(filter(None, (known(alias.name) for alias in node.names)))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    edges.add(target if target in files else known(base) or base)
        graph[module] = {e for e in edges if e in files and e != module}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_import_graph_sees_lazy_imports():
    """The graph is not vacuous: it has the CLI's imports, lazy ones included."""
    graph = _import_graph()
    assert {"studyval.cli", "studyval.render", "studyval.render.qmd"} <= set(graph)
    assert {"studyval.manuscript", "studyval.pipeline", "studyval.verify"} <= graph["studyval.cli"]
    assert "studyval.render" in graph["studyval.pipeline"]  # imported inside a function
    assert "studyval.render.qmd" in graph["studyval.render.jupyter"]
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    """No module of studyval/ is on an import cycle (lazy imports count too).

    The graph holds studyval.analysis and studyval.models as well, so a cycle that passes
    through them is found; a cycle wholly inside one of those packages is theirs to test.
    """
    files = _module_files()
    here = (REPO / "studyval").resolve()
    cycles = [
        c
        for c in _cycles(_import_graph())
        if any(files[m].resolve().is_relative_to(here) for m in c)
    ]
    assert cycles == [], cycles


def test_commands_are_all_defined_in_the_cli():
    """Every command lives in studyval.cli; the library modules import neither it nor click."""
    from studyval.cli import main

    assert {
        "demo",
        "run",
        "validate",
        "render",
        "synthetic",
        "verify",
        "figures",
        "deidentify",
    } <= set(main.commands)
    for name, command in main.commands.items():
        assert command.callback.__module__ == "studyval.cli", name
    graph = _import_graph()
    for module, path in _module_files().items():
        if module == "studyval.cli":
            continue
        assert "studyval.cli" not in graph[module], module
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"^\s*(import|from) click\b", source, re.MULTILINE), module
