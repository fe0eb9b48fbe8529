"""The reports read every plan fact from the bundle's own plan (issue 13, item 2).

A study team may run its own amended plan (``studyval run SLUG --plan PLAN.yml``); the bundle
keeps that plan as ``study/plan.yml`` with its SHA-256 in the manifest, and the report shows
the amended values, never the shipped ones. ``Bundle.plan`` is how a report reads it: a
missing or edited copy is a clear error, and a bundle written before bundles kept their plan
falls back to the shipped plan only when its SHA-256 is the one the manifest records.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from studyval.errors import InputValidationError
from studyval.plan import load_plan, plan_path
from studyval.reporting import Bundle, BundlePlanError

REPORTS = Path(__file__).resolve().parents[1] / "reports"
#: The reports whose plan facts are read from the bundle: all five.
SLUGS = (
    "ovcf-chronicity",
    "refracture-pvp",
    "msk-aging",
    "cirrhosis-sarcopenia",
    "vcf-opportunistic",
)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _fake_bundle(root: Path, slug: str, plan_bytes: bytes | None, *, shipped: bool) -> Path:
    """A bundle folder with only what Bundle.plan reads: the manifest and study/plan.yml."""
    root.mkdir(parents=True)
    proto = {"slug": slug, "plan_version": "1.0.0", "plan_sha256": None}
    outputs = {}
    if plan_bytes is not None:
        (root / "study").mkdir()
        (root / "study" / "plan.yml").write_bytes(plan_bytes)
        outputs["study/plan.yml"] = _sha(plan_bytes)
        proto.update(plan="study/plan.yml", plan_sha256=_sha(plan_bytes), plan_is_shipped=shipped)
    (root / "manifest.json").write_text(json.dumps({"protocol": proto, "outputs": outputs}))
    return root


def _amended_ovcf_yaml(n_resamples: int = 0) -> tuple[bytes, dict]:
    """ovcf-chronicity's shipped plan with amended threshold, planning values, registry facts."""
    raw = yaml.safe_load(plan_path("ovcf-chronicity").read_text(encoding="utf-8"))
    raw["plan_version"] = "1.1.0-amended"
    raw["seed"] = 987654
    raw["registry"]["acronym"] = "AMENDED-ACRO"
    raw["registry"]["title"] = "An Amended Title For The Test Of Plan Facts"
    raw["registry"]["design"] = "Amended design sentence written for the test"
    raw["thresholds"][0]["value"] = 0.37
    ss = raw["sample_size"]
    ss.update(
        sensitivity=0.83,
        precision=0.07,
        registered_positives=151,
        registered_negatives=149,
        registered_total=300,
    )
    if n_resamples:
        raw["calibration"]["n_resamples"] = n_resamples
        raw["calibration"]["ci_method"] = "percentile"  # BCa needs more resamples than a test runs
        raw["decision_curve"]["n_resamples"] = n_resamples
        raw["vertebra_level"]["n_resamples"] = n_resamples
    return yaml.safe_dump(raw, sort_keys=False, allow_unicode=True).encode("utf-8"), raw


# ---- Bundle.plan ---------------------------------------------------------------------------


def test_plan_is_read_from_the_bundle_copy(tmp_path: Path) -> None:
    data, _ = _amended_ovcf_yaml()
    b = Bundle(_fake_bundle(tmp_path / "b", "ovcf-chronicity", data, shipped=False))
    plan = b.plan
    assert b.plan_source == "bundle"
    assert plan.thresholds[0].value == 0.37
    assert plan.registry.acronym == "AMENDED-ACRO"
    assert plan.sample_size.registered_total == 300
    line = str(b.md_plan_statement())
    assert "study's own plan" in line and "amended" in line and _sha(data) in line


def test_shipped_plan_copy_is_named_as_such(tmp_path: Path) -> None:
    data = plan_path("refracture-pvp").read_bytes()
    b = Bundle(_fake_bundle(tmp_path / "b", "refracture-pvp", data, shipped=True))
    assert b.plan.registry.id
    line = str(b.md_plan_statement())
    assert "shipped with studyval" in line and "unamended" in line and _sha(data) in line


def test_edited_plan_copy_is_a_clear_error(tmp_path: Path) -> None:
    data, _ = _amended_ovcf_yaml()
    root = _fake_bundle(tmp_path / "b", "ovcf-chronicity", data, shipped=False)
    (root / "study" / "plan.yml").write_bytes(data.replace(b"0.37", b"0.38"))
    with pytest.raises(BundlePlanError, match=r"SHA-256 .* is not the manifest's .*edited"):
        _ = Bundle(root).plan


def test_missing_plan_copy_is_a_clear_error(tmp_path: Path) -> None:
    data, _ = _amended_ovcf_yaml()
    root = _fake_bundle(tmp_path / "b", "ovcf-chronicity", data, shipped=False)
    (root / "study" / "plan.yml").unlink()
    with pytest.raises(
        BundlePlanError, match=r"records the analysis plan study/plan\.yml.*no such file"
    ):
        _ = Bundle(root).plan


def test_plan_copy_that_is_not_a_valid_plan_is_a_clear_error(tmp_path: Path) -> None:
    raw = yaml.safe_load(plan_path("msk-aging").read_text(encoding="utf-8"))
    raw["kl"]["n_bootstrap"] = 20  # below the schema's minimum of 100
    data = yaml.safe_dump(raw, sort_keys=False).encode("utf-8")
    root = _fake_bundle(tmp_path / "b", "msk-aging", data, shipped=False)
    with pytest.raises(BundlePlanError, match=r"(?s)not a valid plan.*kl\.n_bootstrap"):
        _ = Bundle(root).plan


def test_plan_is_read_without_the_analysis_layer(tmp_path: Path) -> None:
    """A report reads its bundle's plan without importing the protocol's steps: the run
    resolved every step name (``load_plan(check_steps=False)``), and a report kernel that
    imported the analysis layer (scipy.stats, the figures) spent 1.5 s of its time on it.
    A fresh interpreter, since this process has the analysis layer loaded."""
    root = _fake_bundle(
        tmp_path / "b", "ovcf-chronicity", plan_path("ovcf-chronicity").read_bytes(), shipped=True
    )
    code = (
        "import sys\n"
        "from studyval.reporting import Bundle\n"
        f"plan = Bundle({str(root)!r}).plan\n"
        "assert plan.slug == 'ovcf-chronicity', plan.slug\n"
        "loaded = sorted(m for m in ('studyval.analysis', 'studyval.steps.common', "
        "'studyval.steps.diagnostic', 'studyval.protocols', 'studyval.study_types', "
        "'scipy.stats', 'matplotlib') if m in sys.modules)\n"
        "print(loaded)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "[]"


def test_load_plan_checks_step_names_unless_told_not_to(tmp_path: Path) -> None:
    """An unknown analysis step is an error naming its YAML path when a plan is loaded to run;
    ``check_steps=False`` (a finished bundle's reader) leaves the names to the run that made it."""
    raw = yaml.safe_load(plan_path("ovcf-chronicity").read_text(encoding="utf-8"))
    raw["endpoints"][0]["analyses"] = ["auc", "no_such_step"]
    path = tmp_path / "plan.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    with pytest.raises(InputValidationError, match=r"endpoints\[0\]\.analyses\[1\]"):
        load_plan(path, check_dictionary=False)
    plan = load_plan(path, check_dictionary=False, check_steps=False)
    assert list(plan.endpoints[0].analyses) == ["auc", "no_such_step"]


def test_old_bundle_uses_the_shipped_plan_only_when_it_is_the_recorded_one(tmp_path: Path) -> None:
    slug = "cirrhosis-sarcopenia"
    root = _fake_bundle(tmp_path / "old", slug, None, shipped=True)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["protocol"]["plan_sha256"] = _sha(plan_path(slug).read_bytes())
    (root / "manifest.json").write_text(json.dumps(manifest))
    b = Bundle(root)
    assert b.plan.slug == slug
    assert b.plan_source == "shipped"
    assert "predates bundles that keep their plan" in str(b.md_plan_statement())

    manifest["protocol"]["plan_sha256"] = "0" * 64  # a plan this studyval does not ship
    (root / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundlePlanError, match="keeps no copy of its analysis plan"):
        _ = Bundle(root).plan


# ---- the .qmd files hard-code no plan fact ----------------------------------------------


def _plan_facts(slug: str) -> list[str]:
    """Registry ids and registered / planning numbers of the shipped plan, as a report would write them."""
    raw = yaml.safe_load(plan_path(slug).read_text(encoding="utf-8"))
    reg = raw["registry"]
    facts = [reg["id"], reg["title"]]
    if reg.get("acronym"):
        facts.append(reg["acronym"])
    # sponsor protocol numbers (e.g. "2023PHB214-001") quoted in the sponsor field
    facts += re.findall(r"\b\d{4}[A-Z]{2,}\d+-\d+\b", reg.get("sponsor") or "")
    ss = raw["sample_size"]
    for key in ("registered_total", "registered_development", "registered_external"):
        if key in ss:
            n = int(ss[key])
            facts += [f"{n:,}", str(n)] if n >= 1000 else [str(n)]
    return sorted(set(facts))


def _code_and_prose(text: str) -> str:
    """The .qmd without comment lines (a comment may say what a value was)."""
    return "\n".join(
        line
        for line in text.splitlines()
        if not line.lstrip().startswith("#") or (line.lstrip().startswith("# ") and "{#" in line)
    )


@pytest.mark.parametrize("slug", SLUGS)
def test_report_hard_codes_no_registry_fact_or_registered_number(slug: str) -> None:
    text = _code_and_prose((REPORTS / slug / "report.qmd").read_text(encoding="utf-8"))
    found = [
        f for f in _plan_facts(slug) if re.search(rf"(?<![\w.,]){re.escape(f)}(?![\w,]|\.\d)", text)
    ]
    assert not found, f"{slug}/report.qmd hard-codes plan facts {found}; read them from B.plan"
    assert "B.plan" in text and "B.md_plan_statement()" in text


@pytest.mark.parametrize(
    ("slug", "pattern"),
    [
        ("ovcf-chronicity", r"planned_se\s*=\s*0\.9|PRIMARY_SET\s*=\s*\"external\""),
        ("ovcf-chronicity", r"sensitivity of 0\.90|138 acute"),
        ("msk-aging", r"PLANNED_AUC\s*=\s*0\.\d|AUC 0\.85|half-width 0\.05"),
        ("refracture-pvp", r"PH_ALPHA\s*=\s*0\.\d|\b1 year\b|day 365"),
        ("cirrhosis-sarcopenia", r"\b1 year\b|< 50 cm|< 39 cm"),
        ("vcf-opportunistic", r"\b77 ?%|\b43 ?%|2 months|1,000"),
    ],
)
def test_report_hard_codes_no_planning_value(slug: str, pattern: str) -> None:
    text = _code_and_prose((REPORTS / slug / "report.qmd").read_text(encoding="utf-8"))
    hits = [m.group() for m in re.finditer(pattern, text)]
    assert not hits, f"{slug}/report.qmd hard-codes {hits}; read the value from B.plan"


# ---- a report of a bundle made with an amended plan shows the amended values --------------


def _visible_text(page: str) -> str:
    page = re.sub(r"<(style|script)\b.*?</\1>", "", page, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


@pytest.fixture(scope="module")
def amended_report(tmp_path_factory, protocol_inputs) -> tuple[str, dict, Path]:
    from studyval.pipeline import run_protocol
    from studyval.render import render_report

    slug = "ovcf-chronicity"
    root = tmp_path_factory.mktemp("amended")
    data, raw = _amended_ovcf_yaml(n_resamples=40)
    plan_file = root / "my-plan.yml"
    plan_file.write_bytes(data)
    inputs = protocol_inputs(slug)
    bundle = root / "bundle"
    run_protocol(
        slug,
        clinical=inputs["clinical"],
        predictions=inputs["predictions"],
        out=bundle,
        render=False,
        engine="jupyter",
        plan=plan_file,
    )
    out = root / "report.html"
    render_report(
        REPORTS / slug / "report.qmd",
        out,
        params={"bundle": str(bundle.resolve())},
        engine="jupyter",
        pdf=False,
        timeout=600,
    )
    return _visible_text(out.read_text(encoding="utf-8")), raw, bundle


def test_amended_plan_is_kept_and_named(amended_report) -> None:
    text, _, bundle = amended_report
    assert (bundle / "study" / "plan.yml").is_file()
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["protocol"]["plan_is_shipped"] is False
    assert re.search(r"the study['’]s own plan \(amended", text)
    assert manifest["protocol"]["plan_sha256"] in text
    assert "version 1.1.0-amended" in text


def test_report_shows_the_amended_registry_facts(amended_report) -> None:
    text, raw, _ = amended_report
    assert "AMENDED-ACRO" in text and "CT-DL-OVCF" not in text
    assert raw["registry"]["title"] in text
    assert raw["registry"]["design"] in text


def test_report_shows_the_amended_threshold_and_planning_values(amended_report) -> None:
    text, _, _ = amended_report
    assert "probability ≥ 0.37" in text and "Threshold 0.37" in text
    assert "0.83 was the sample-size calculation's planning assumption" in text.replace("&#39;", "'")
    assert "0.9 was the" not in text and "0.90 was the" not in text
    assert "allowable error 0.07" in text
    assert "Sample size 300 (151 + 149)" in text and "276 (138 + 138)" not in text
    assert "registered 151 acute and 149 chronic" in text
    assert "Seed 987654" in text
