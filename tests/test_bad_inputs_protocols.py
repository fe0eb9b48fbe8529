"""Bad inputs of every protocol that used to end in a bare error or a traceback, run through the CLI.

Each case runs ``studyval run SLUG ... --no-render`` (click's CliRunner) as a user runs it and
asserts the exit code, no traceback, a message naming the file, column, model, set and rule as the
case calls for, and that nothing was written at ``--out``. The cases ("Trust, round two"):

* ovcf-chronicity with every case at one site: the empty external set is named, with the splits
  and sites found, by the validation (before any analysis);
* a model whose scores are all equal, or that scored no case of a set: the model, the set and the
  reason are named (ovcf-chronicity, vcf-opportunistic);
* a follow-up time of 0 days: an event on the day of surgery / of the index CT is accepted by
  refracture-pvp and cirrhosis-sarcopenia alike; censoring on that day is rejected by both;
* every column of every protocol's inputs left out in turn: exit 0 only for a column the analyses
  never read (a direct identifier, which the pipeline drops anyway; the prediction table's copy of
  ``vertebral_level``), otherwise exit 1 with a message naming the file and the column;
* msk-aging without any fragility fracture: a clear estimation error before any model is fitted;
* the flow tables list each failure category with its count.

Synthetic inputs are the session's (tests/conftest.py); msk-aging cases all fail before its analysis.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result

from studyval import pipeline
from studyval.cli import main
from studyval.dictionary import load_dictionary
from studyval.plan import load_plan
from studyval.protocol import protocol
from studyval.protocols.ovcf_chronicity import needed_columns as ovcf_needed_columns

SLUGS = (
    "ovcf-chronicity",
    "refracture-pvp",
    "msk-aging",
    "vcf-opportunistic",
    "cirrhosis-sarcopenia",
)
#: Columns whose absence is accepted although they are not direct identifiers: the analyses never
#: read them (the join takes vertebral_level from the clinical table and checks the copy if given).
#: Columns of a prediction table that only copy the clinical table's (checked equal when
#: present; the clinical table is their source), so a table without them is analysed the same.
TRULY_OPTIONAL = {
    ("ovcf-chronicity", "predictions", "vertebral_level"),
    ("ovcf-chronicity", "predictions", "site"),
    ("vcf-opportunistic", "predictions", "site"),
}
#: Truly optional columns whose absence leaves the cohort the analyses read unchanged: the
#: ovcf-chronicity join (cohort.join_predictions) always takes ``vertebral_level`` from the
#: clinical table, and ``site`` from it when the prediction table has none, so with or without
#: these copies every analysis gets the same values (the bundled plan's tables and figures are
#: byte for byte the same either way). The join is then the only code that meets the missing
#: column, and a run of the minimal plan (conftest's ``minimal_plan``) goes through it as the
#: full plan does. vcf-opportunistic's join keeps no ``site`` without the prediction table's,
#: so there every analysis runs (the bundled plan with its resample counts cut).
SAME_COHORT_WITHOUT = {
    ("ovcf-chronicity", "predictions", "vertebral_level"),
    ("ovcf-chronicity", "predictions", "site"),
}


@pytest.fixture(scope="module")
def sources(protocol_inputs) -> Callable[[str], dict[str, Path]]:
    """The synthetic inputs of a protocol: the session's, written once (tests/conftest.py)."""
    return protocol_inputs


def _text(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _write(
    tmp_path: Path, slug: str, src: dict[str, Path], **tables: pd.DataFrame
) -> dict[str, Path]:
    """Inputs for one case: the given tables written into ``tmp_path``, the others as generated."""
    paths = {}
    for kind in ("clinical", "predictions"):
        if kind not in src:
            continue
        if kind in tables:
            paths[kind] = tmp_path / f"{kind}.csv"
            tables[kind].to_csv(paths[kind], index=False, lineterminator="\n")
        else:
            paths[kind] = src[kind]
    return paths


def _run(
    slug: str, paths: dict[str, Path], out: Path, command: str = "run", plan: Path | None = None
) -> tuple[Result, str]:
    args = [command, slug, "-c", str(paths["clinical"])]
    if "predictions" in paths:
        args += ["-p", str(paths["predictions"])]
    if plan is not None:
        args += ["--plan", str(plan)]
    if command == "run":
        args += ["-o", str(out), "--no-render", "-q"]
    res = CliRunner().invoke(main, args)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        pytest.fail(
            "traceback instead of a message:\n" + "".join(traceback.format_exception(res.exception))
        )
    return res, res.output


def _assert_rejected(res: Result, text: str, out: Path, patterns: list[str]) -> None:
    assert res.exit_code == 1, text
    assert "Traceback" not in text
    assert text.startswith("studyval: error: "), text
    for pattern in patterns:
        assert re.search(pattern, text), f"{pattern!r} not in:\n{text}"
    assert not out.exists()
    assert {p.name for p in out.parent.iterdir()} <= {"clinical.csv", "predictions.csv"}


@pytest.fixture
def short_bootstrap(monkeypatch, trimmed_plan) -> None:
    """The survival protocols' bootstrap refits cut to 20 (the plans' 200 run in the demo).

    The command reads the bundled plan, so ``run_protocol`` is handed the trimmed plan
    (conftest's ``trimmed_plan``) on its way from the command to the pipeline; the bundle's
    manifest then records the plan that ran.
    """
    real = pipeline.run_protocol

    def with_trimmed_plan(slug, **kwargs):
        if slug in ("refracture-pvp", "cirrhosis-sarcopenia") and kwargs.get("plan") is None:
            kwargs["plan"] = trimmed_plan(slug, 20)
        return real(slug, **kwargs)

    monkeypatch.setattr(pipeline, "run_protocol", with_trimmed_plan)


# ----------------------------------------------------------------------------- empty set (item 1)


def test_every_case_at_one_site_names_the_empty_external_set(sources, tmp_path):
    src = sources("ovcf-chronicity")
    clin, pred = _text(src["clinical"]), _text(src["predictions"])
    clin["site"] = "CQMU"
    pred["site"] = "CQMU"
    pred.loc[pred["split"] == "external", "split"] = "internal"
    paths = _write(tmp_path, "ovcf-chronicity", src, clinical=clin, predictions=pred)
    expected = [
        r"predictions\.csv, column 'split': the prediction table has no included index vertebra "
        r"in the external set \(split = external\): the plan's primary analysis needs it "
        r"\(endpoints P1, ",
        r"splits found: development \(\d+ index vertebrae\), internal \(\d+ index vertebrae\)",
        r"sites found: CQMU; the plan's external sites: EXT",
    ]
    res, text = _run("ovcf-chronicity", paths, tmp_path / "out")
    _assert_rejected(res, text, tmp_path / "out", expected)
    # a validation error: `studyval validate` finds it too, before any analysis
    res, text = _run("ovcf-chronicity", paths, tmp_path / "out", command="validate")
    _assert_rejected(res, text, tmp_path / "out", expected)


# ----------------------------------------------------------------------------- scores (item 2)


def _ovcf_constant_vgg(clin, pred):
    ext = (
        (pred["model_name"] == "VGG-16") & (pred["status"] == "ok") & (pred["split"] == "external")
    )
    pred.loc[ext, "score"] = "0.5"
    return [
        r"model VGG-16, external set: every score is equal \(0\.5\) for the \d+ scored index "
        r"vertebrae: the model ranks no case above another, so its AUC \(0\.5 by construction",
    ]


def _ovcf_vit_scored_nothing(clin, pred):
    ext = (pred["model_name"] == "ViT") & (pred["split"] == "internal")
    pred.loc[ext, ["score", "status", "failure_reason"]] = ["", "failed", "image unreadable"]
    return [
        r"model ViT, internal set: none of the \d+ index vertebrae has a score \(every one has "
        r"status failed\); the AUC and every accuracy measure cannot be estimated",
    ]


def _vcf_constant_ai(clin, pred):
    retro = set(clin.loc[clin["period"] == "retrospective", "case_id"])
    sel = (pred["model_name"] == "VCF-AI") & (pred["status"] == "ok") & pred["case_id"].isin(retro)
    pred.loc[sel, "score"] = "0.7"
    return [
        r"model VCF-AI, retrospective period: every score is equal \(0\.7\) for the \d+ scored "
        r"first scans: the model ranks no scan above another",
    ]


def _vcf_commercial_flags_nothing(clin, pred):
    sel = (pred["model_name"] == "BoneHealth-commercial") & (pred["status"] == "ok")
    pred.loc[sel, "score"] = "0.0"
    return [
        r"model BoneHealth-commercial, retrospective period: every score is equal \(0\)",
        r"BoneHealth-commercial is optional in the plan: leave its rows out of the prediction "
        r"table to run without it",
    ]


@pytest.mark.parametrize(
    ("slug", "case"),
    [
        pytest.param("ovcf-chronicity", _ovcf_constant_vgg, id="ovcf-constant-vgg16-external"),
        pytest.param("ovcf-chronicity", _ovcf_vit_scored_nothing, id="ovcf-vit-no-score-internal"),
        pytest.param("vcf-opportunistic", _vcf_constant_ai, id="vcf-constant-ai-retrospective"),
        pytest.param(
            "vcf-opportunistic", _vcf_commercial_flags_nothing, id="vcf-commercial-flags-nothing"
        ),
    ],
)
def test_unusable_scores_name_the_model_the_set_and_the_reason(sources, tmp_path, slug, case):
    src = sources(slug)
    clin, pred = _text(src["clinical"]), _text(src["predictions"])
    expected = case(clin, pred)
    paths = _write(tmp_path, slug, src, predictions=pred)
    res, text = _run(slug, paths, tmp_path / "out")
    _assert_rejected(res, text, tmp_path / "out", expected)
    assert not re.search(r"error: clinical\.csv, ", text), "the clinical table is not to blame"


# ----------------------------------------------------------------------------- day 0 (item 3)


def _day_zero(slug: str, clin: pd.DataFrame, event: str) -> int:
    """Give the first included patient a follow-up of 0 days ending with ``event``; its index."""
    i = int(clin.index[clin["exclusion_reason"] == "none"][0])
    clin.loc[i, "followup_days"] = "0"
    clin.loc[i, "event"] = event
    if slug == "refracture-pvp":
        clin.loc[i, "followup_end_date"] = clin.loc[i, "surgery_date"]
    return i


@pytest.mark.parametrize(
    ("slug", "event"),
    [
        pytest.param("refracture-pvp", "2", id="refracture-death-on-the-day-of-surgery"),
        pytest.param("cirrhosis-sarcopenia", "1", id="cirrhosis-death-on-the-day-of-the-ct"),
    ],
)
def test_event_on_day_zero_is_analysed(sources, tmp_path, short_bootstrap, slug, event):
    src = sources(slug)
    clin = _text(src["clinical"])
    _day_zero(slug, clin, event)
    paths = _write(tmp_path, slug, src, clinical=clin)
    res, text = _run(slug, paths, tmp_path / "out")
    assert res.exit_code == 0, text
    flow = pd.read_parquet(tmp_path / "out" / "tables" / "flow.parquet")
    n = "n" if slug == "refracture-pvp" else "n_patients"
    # the patient is analysed, not dropped
    assert (
        flow.loc[flow["stage"] == "included", n].iloc[0]
        == (clin["exclusion_reason"] == "none").sum()
    )
    if slug == "refracture-pvp":
        span = flow[(flow["stage"] == "follow_up") & (flow["group"] == "range")]["detail"].iloc[0]
        assert span.startswith("0-"), span


@pytest.mark.parametrize(
    ("slug", "rule"),
    [
        pytest.param(
            "refracture-pvp",
            r"an included patient censored on the day of surgery \(followup_days 0, event 0\) "
            r"was never followed",
            id="refracture-censored-on-the-day-of-surgery",
        ),
        pytest.param(
            "cirrhosis-sarcopenia",
            r"an included patient censored on the day of the index CT \(followup_days 0, event 0\) "
            r"was never followed",
            id="cirrhosis-censored-on-the-day-of-the-ct",
        ),
    ],
)
def test_censored_on_day_zero_is_rejected(sources, tmp_path, slug, rule):
    src = sources(slug)
    clin = _text(src["clinical"])
    i = _day_zero(slug, clin, "0")
    paths = _write(tmp_path, slug, src, clinical=clin)
    res, text = _run(slug, paths, tmp_path / "out")
    _assert_rejected(
        res,
        text,
        tmp_path / "out",
        [
            rf"clinical\.csv, column 'followup_days', row {i + 2}: {rule}",
            r"event 1 or 2.* accepted",
        ],
    )


# ----------------------------------------------------------------------------- absent columns (item 4)


@pytest.mark.parametrize(
    ("slug", "kind"),
    [
        pytest.param(slug, kind, id=f"{slug}-{kind}")
        for slug in SLUGS
        for kind in ("clinical", "predictions")
        if kind == "clinical"
        or protocol(slug).requires_predictions
    ],
)
def test_every_column_left_out_in_turn(
    sources, trimmed_plan_file, minimal_plan, tmp_path, slug, kind
):
    """Leaving out any column: exit 0 only where no analysis reads it, else exit 1 naming it.

    A truly optional column's case runs to the end, as only the exit code is asserted: with
    the bundled plan's resample counts cut (conftest's ``trimmed_plan_file``), or, where the
    join gives the analyses the same cohort without the column (``SAME_COHORT_WITHOUT``), with
    the minimal plan: the missing column meets the same validation and join, and no analysis
    could tell the difference, so the full plan's analyses would check nothing more.
    """
    src = sources(slug)
    table = _text(src[kind])
    dictionary = load_dictionary("predictions" if kind == "predictions" else slug)
    problems = []
    for k, col in enumerate(table.columns):
        case_dir = tmp_path / f"c{k}"
        case_dir.mkdir()
        paths = _write(case_dir, slug, src, **{kind: table.drop(columns=[col])})
        out = case_dir / "out"
        if dictionary[col].role == "direct_identifier":
            # dropped by the pipeline right after validation: validation passing is the whole story
            res, text = _run(slug, paths, out, command="validate")
            if res.exit_code != 0:
                problems.append(f"{col}: validate exit {res.exit_code}: {text}")
            continue
        if (slug, kind, col) in TRULY_OPTIONAL:
            if (slug, kind, col) in SAME_COHORT_WITHOUT:
                plan = minimal_plan(slug)
            else:
                plan = trimmed_plan_file(slug, 50, case_dir / "plan")
            res, text = _run(slug, paths, out, plan=plan)
            if res.exit_code != 0:
                problems.append(f"{col}: truly optional, but exit {res.exit_code}: {text}")
            continue
        res, text = _run(slug, paths, out)
        if res.exit_code != 1 or f"{kind}.csv, column '{col}'" not in text or out.exists():
            problems.append(f"{col}: exit {res.exit_code}, out written {out.exists()}: {text}")
    assert not problems, "\n".join(problems)


def test_dxa_t_score_left_out_names_what_needs_it(sources, tmp_path):
    src = sources("ovcf-chronicity")
    paths = _write(
        tmp_path,
        "ovcf-chronicity",
        src,
        clinical=_text(src["clinical"]).drop(columns=["dxa_t_score"]),
    )
    assert "bmd_category subgroup" in ovcf_needed_columns(load_plan("ovcf-chronicity"))["dxa_t_score"]
    res, text = _run("ovcf-chronicity", paths, tmp_path / "out")
    _assert_rejected(
        res,
        text,
        tmp_path / "out",
        [
            r"clinical\.csv, column 'dxa_t_score': column is missing: it is needed by the plan's "
            r"baseline table .* and the bmd_category subgroup"
        ],
    )


def test_msk_image_feature_left_out_fails_at_validation(sources, tmp_path):
    src = sources("msk-aging")
    paths = _write(
        tmp_path, "msk-aging", src, clinical=_text(src["clinical"]).drop(columns=["kl_img_3"])
    )
    res, text = _run("msk-aging", paths, tmp_path / "out", command="validate")
    _assert_rejected(
        res,
        text,
        tmp_path / "out",
        [
            r"clinical\.csv, column 'kl_img_3': column is missing: it is needed by the plan's KL-grade"
        ],
    )


def test_failure_reason_left_out_without_failures_is_accepted(sources, minimal_plan, tmp_path):
    """The flow table only, with the minimal plan (conftest's ``minimal_plan``).

    Every plan makes the flow table, the one table that reads ``failure_reason``; without the
    column the join adds an empty one (cohort.with_failure_reason) before any analysis, so the
    full plan's analyses get the cohort a table with an empty column gives (their tables and
    figures are byte for byte the same either way): the minimal plan meets the missing column
    where the full plan does, and the exit code and the flow table are the same.
    """
    src = sources("ovcf-chronicity")
    pred = _text(src["predictions"])
    failed = pred["status"] == "failed"
    pred.loc[failed, ["status", "score"]] = ["ok", "0.4"]
    paths = _write(
        tmp_path, "ovcf-chronicity", src, predictions=pred.drop(columns=["failure_reason"])
    )
    plan = minimal_plan("ovcf-chronicity")
    res, text = _run("ovcf-chronicity", paths, tmp_path / "out", plan=plan)
    assert res.exit_code == 0, text
    flow = pd.read_parquet(tmp_path / "out" / "tables" / "flow.parquet")
    assert (flow.loc[flow["stage"] == "index_test_failed", "n_cases"] == 0).all()


# ----------------------------------------------------------------------------- msk-aging (item 5)


def test_msk_without_fragility_fractures_is_a_clear_error(sources, tmp_path):
    src = sources("msk-aging")
    clin = _text(src["clinical"])
    clin["new_fragility_fracture"] = clin["new_fragility_fracture"].replace(
        {"true": "false", "True": "False"}
    )
    paths = _write(tmp_path, "msk-aging", src, clinical=clin)
    res, text = _run("msk-aging", paths, tmp_path / "out")
    _assert_rejected(
        res,
        text,
        tmp_path / "out",
        [
            r"internal set: no new fragility fracture \(new_fragility_fracture is false for all "
            r"\d+ included patients",
            r"the Kaplan-Meier incidence, the log-rank test and the Cox model of fractures by "
            r"predicted stage \(secondary endpoint fragility_fracture\) cannot be estimated",
        ],
    )


# ----------------------------------------------------------------------------- failure categories (item 6)


def test_ovcf_flow_lists_each_failure_category_with_its_count(sources, minimal_plan, tmp_path):
    """The flow table only, with the minimal plan (conftest's ``minimal_plan``): every plan makes
    the flow table, from the cohort alone, so it is byte for byte the same as the bundled plan's."""
    src = sources("ovcf-chronicity")
    clin, pred = _text(src["clinical"]), _text(src["predictions"])
    index_cases = set(clin.loc[clin["index_vertebra"].str.lower() == "true", "case_id"])
    ext = pred[
        (pred["model_name"] == "DenseNet-121")
        & (pred["split"] == "external")
        & (pred["status"] == "ok")
        & pred["case_id"].isin(index_cases)
    ].index[:3]
    failed_before = (
        (pred["model_name"] == "DenseNet-121")
        & (pred["split"] == "external")
        & (pred["status"] == "failed")
        & pred["case_id"].isin(index_cases)
    )
    pred.loc[failed_before, "failure_reason"] = "image unreadable"
    reasons = ["image unreadable", "segmentation failed", "image unreadable"]
    for i, reason in zip(ext, reasons, strict=True):
        pred.loc[i, ["status", "score", "failure_reason"]] = ["failed", "", reason]
    paths = _write(tmp_path, "ovcf-chronicity", src, predictions=pred)
    plan = minimal_plan("ovcf-chronicity")
    res, text = _run("ovcf-chronicity", paths, tmp_path / "out", plan=plan)
    assert res.exit_code == 0, text
    flow = pd.read_parquet(tmp_path / "out" / "tables" / "flow.parquet")
    row = flow[(flow["stage"] == "index_test_failed") & (flow["set"] == "external")].iloc[0]
    n_unreadable = 2 + int(failed_before.sum())
    assert row["n_cases"] == n_unreadable + 1
    assert row["detail"] == f"image unreadable ({n_unreadable}); segmentation failed (1)"


def test_vcf_flow_lists_each_failure_category_with_its_count(sources, trimmed_plan_file, tmp_path):
    """The flow table only: the plan's resample counts cut (conftest's ``trimmed_plan_file``)."""
    src = sources("vcf-opportunistic")
    plan = trimmed_plan_file("vcf-opportunistic", 100, tmp_path / "plan")
    res, text = _run("vcf-opportunistic", src, tmp_path / "out", plan=plan)
    assert res.exit_code == 0, text
    flow = pd.read_parquet(tmp_path / "out" / "tables" / "flow.parquet")
    rows = flow[(flow["stage"] == "index_test_failed") & (flow["n_scans"] > 0)]
    assert len(rows)
    for r in rows.itertuples():
        parts = re.findall(r"([^;()]+?) \((\d+)\)(?:; |$)", r.detail)
        assert parts and "; ".join(f"{c} ({n})" for c, n in parts) == r.detail, r.detail
        assert sum(int(n) for _, n in parts) == r.n_scans
