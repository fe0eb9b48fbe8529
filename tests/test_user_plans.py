"""A study team's own plan and dictionary (--plan, --dictionary), and the copies a bundle keeps.

The team keeps plan.yml and dictionary.yml beside its data; `studyval run SLUG --plan` runs it, the
bundle keeps both files as read (study/plan.yml, study/dictionary.yml, hashed among the manifest's
outputs), and `verify` and `figures` use the bundle's copies.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from studyval.cli import main
from studyval.plan import plan_path

SLUG = "ovcf-chronicity"
DICTIONARY = Path(__file__).parents[1] / "data_dictionary" / f"{SLUG}.yml"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _amend(text: str, **subs: str) -> str:
    """The shipped plan's text with whole lines replaced (key: regex of the line -> new line)."""
    for pattern, line in subs.items():
        text, n = re.subn(pattern, line, text, flags=re.M)
        assert n, pattern
    return text


@pytest.fixture()
def study(tmp_path) -> Path:
    """A study folder: the shipped plan amended (fewer resamples, a dictionary beside it)."""
    folder = tmp_path / "my-study"
    folder.mkdir()
    text = _amend(
        plan_path(SLUG).read_text(encoding="utf-8"),
        **{r"^dictionary: .*$": "dictionary: dictionary.yml", r"n_resamples: \d+": "n_resamples: 40"},
    )
    (folder / "plan.yml").write_text(text, encoding="utf-8")
    (folder / "dictionary.yml").write_bytes(DICTIONARY.read_bytes())
    return folder


def _validate(inputs, *args: str):
    return CliRunner().invoke(
        main, ["validate", SLUG, "--clinical", str(inputs["clinical"]), *args], catch_exceptions=False
    )


def _edited(study: Path, name: str, **subs: str) -> Path:
    path = study / name
    path.write_text(_amend((study / "plan.yml").read_text(encoding="utf-8"), **subs), encoding="utf-8")
    return path


def test_own_plan_and_dictionary_beside_it_validate(protocol_inputs, study):
    res = _validate(protocol_inputs(SLUG), "--plan", str(study / "plan.yml"))
    assert res.exit_code == 0, res.output
    assert "valid against the ovcf-chronicity dictionary" in res.output


@pytest.mark.parametrize(
    ("subs", "message"),
    [
        pytest.param(
            {r"^slug: .*$": "slug: refracture-pvp"},
            "field 'slug': this plan is for protocol 'refracture-pvp', not 'ovcf-chronicity'",
            id="plan-for-another-slug",
        ),
        pytest.param(
            {r"^slug: .*$": "schema_version: 7\nslug: ovcf-chronicity"},
            "field 'schema_version': unknown plan schema version; this studyval reads 1 (found '7')",
            id="unknown-schema-version",
        ),
        pytest.param(
            {r"^  - variable: sex$": "  - variable: sex_at_birth"},
            "field 'subgroups[1].variable': ovcf-chronicity dictionary has no variable (found 'sex_at_birth')",
            id="column-the-dictionary-lacks",
        ),
        pytest.param(
            {r"analyses: \[auc, roc_curve,": "analyses: [auc, roc_curves,"},
            "field 'endpoints[0].analyses[1]': unknown analysis step; did you mean 'roc_curve'?",
            id="unknown-analysis-step",
        ),
        pytest.param(
            {r"^dictionary: .*$": "dictionary: elsewhere.yml"},
            "elsewhere.yml: cannot be read",
            id="dictionary-file-missing",
        ),
    ],
)
def test_a_bad_own_plan_is_one_clear_error_with_its_yaml_path(protocol_inputs, study, subs, message):
    bad = _edited(study, "bad.yml", **subs)
    res = _validate(protocol_inputs(SLUG), "--plan", str(bad))
    assert res.exit_code == 1
    assert message in res.output
    assert "Traceback" not in res.output


def test_dictionary_option_overrides_the_plan_s(protocol_inputs, study, tmp_path):
    raw = yaml.safe_load(DICTIONARY.read_text(encoding="utf-8"))
    del raw["variables"]["sex"]
    other = tmp_path / "narrow.yml"
    other.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    res = _validate(
        protocol_inputs(SLUG), "--plan", str(study / "plan.yml"), "--dictionary", str(other)
    )
    assert res.exit_code == 1
    assert "field 'subgroups[1].variable': ovcf-chronicity dictionary has no variable" in res.output


@pytest.fixture()
def own_bundle(protocol_inputs, study, tmp_path) -> tuple[Path, Path, dict[str, Path]]:
    inputs = protocol_inputs(SLUG)
    out = tmp_path / "bundle"
    # the team's plan also runs fewer analyses (what a run records and reproduces of the plan is
    # the subject here, not the numbers); calibration stays, to see the amended resample count
    keep = {"auc", "roc_curve", "accuracy", "confusion_matrix", "calibration"}
    plan = study / "plan.yml"
    plan.write_text(
        re.sub(
            r"^(\s*)analyses: \[(.*)\]\s*$",
            lambda m: m.group(1) + "analyses: ["
            + ", ".join(a for a in map(str.strip, m.group(2).split(",")) if a in keep) + "]",
            plan.read_text(encoding="utf-8"),
            flags=re.M,
        ),
        encoding="utf-8",
    )
    res = CliRunner().invoke(
        main,
        [
            "run", SLUG, "-c", str(inputs["clinical"]), "-p", str(inputs["predictions"]),
            "--plan", str(study / "plan.yml"), "-o", str(out), "--no-render", "-q",
        ],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    return out, study, inputs


@pytest.mark.slow
def test_the_bundle_keeps_the_plan_it_ran_and_verify_and_figures_use_it(own_bundle, tmp_path):
    out, study, inputs = own_bundle
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    # the files as read, hashed among the outputs
    assert (out / "study/plan.yml").read_bytes() == (study / "plan.yml").read_bytes()
    assert (out / "study/dictionary.yml").read_bytes() == DICTIONARY.read_bytes()
    assert manifest["outputs"]["study/plan.yml"] == _sha(study / "plan.yml")
    assert manifest["protocol"]["plan_sha256"] == _sha(study / "plan.yml")
    assert manifest["protocol"]["plan_is_shipped"] is False
    assert manifest["dictionary"]["sha256"] == _sha(DICTIONARY)
    # the amended resample count reached the analysis
    cal = (out / "tables/calibration.csv").read_text(encoding="utf-8")
    assert cal.splitlines()[0].count("n_resamples") <= 1
    # verify recomputes with the bundle's plan, not the shipped one: everything reproduces
    res = CliRunner().invoke(
        main,
        ["verify", str(out), "-c", str(inputs["clinical"]), "-p", str(inputs["predictions"])],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    assert "study/plan.yml" in res.output or "reproduced" in res.output
    # figures read the bundle's plan too (the shipped plan differs from the one the run used)
    # (one width, format and resolution: which plan they read is the subject here)
    res = CliRunner().invoke(
        main, ["figures", SLUG, "--bundle", str(out), "--out", str(tmp_path / "fig"),
               "--width", "column", "--format", "png", "--dpi", "300"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    # a plan copy edited after the run: figures refuse, naming it
    (out / "study/plan.yml").write_text("slug: ovcf-chronicity\n", encoding="utf-8")
    res = CliRunner().invoke(
        main, ["figures", SLUG, "--bundle", str(out), "--out", str(tmp_path / "fig2")],
        catch_exceptions=False,
    )
    assert res.exit_code == 1
    assert "study/plan.yml is not the plan the manifest records" in res.output
