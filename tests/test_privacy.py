"""Privacy: keyed pseudonyms, and no planted direct identifier anywhere in a rendered bundle."""

from __future__ import annotations

import hashlib
import hmac
import re
import zlib

import pandas as pd
import pytest

from studyval.errors import StudyvalError
from studyval.privacy import ids_shown_in_report, pseudonymise, scan_for_identifiers

SLUG = "ovcf-chronicity"
KEY = b"site-secret-key-0123456789abcdef"


# ------------------------------------------------------------------------------ pseudonyms


def test_pseudonyms_are_keyed_hmac_sha256_short_and_prefixed():
    ids = ["P0001", "P0002", "P0001"]
    out = pseudonymise(ids, key=KEY)
    assert out[0] == out[2] != out[1]
    expected = hmac.new(KEY, b"P0001", hashlib.sha256).hexdigest()[:12]
    assert out[0] == f"PS-{expected}"
    assert all(re.fullmatch(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", p) for p in out), "valid ids"
    other = pseudonymise(ids, key=KEY[::-1])
    assert not set(out) & set(other), "another key gives unrelated pseudonyms"
    assert pseudonymise(["P0001"], key=KEY.decode(), prefix="PT", length=20)[0].startswith("PT-")
    assert len(pseudonymise(["P0001"], key=KEY, length=20)[0]) == 3 + 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"key": b"short"}, "at least 16 bytes", id="short-key"),
        pytest.param({"key": KEY, "prefix": "P S"}, "prefix must be", id="bad-prefix"),
        pytest.param({"key": KEY, "length": 4}, "between 8 and 64", id="too-short"),
    ],
)
def test_pseudonymise_refuses_weak_settings(kwargs, message):
    with pytest.raises(StudyvalError, match=message):
        pseudonymise(["P0001"], **kwargs)


def test_pseudonymise_refuses_missing_ids():
    with pytest.raises(StudyvalError, match="position 1 is missing"):
        pseudonymise(["P0001", None], key=KEY)  # type: ignore[list-item]


def test_pseudonyms_do_not_collide_on_the_synthetic_cohort():
    from studyval.synthetic.ovcf_chronicity import generate

    ids = generate().clinical["case_id"].tolist()
    assert len(set(pseudonymise(ids, key=KEY, length=8))) == len(set(ids))


# ------------------------------------------------------------------------------ the scanner


def test_scanner_finds_identifiers_wherever_a_reader_would(tmp_path):
    """Positive controls: a scanner that reads nothing would pass every privacy test."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from studyval import figures

    planted = ["Zhang^Wei", "MRN12345678", "1950-03-04"]
    fig = Figure()
    fig.add_subplot().set_title("Wei Zhang, MRN12345678")
    figures.save_figure(fig, tmp_path / "fig", "leak")  # PNG, PDF (Type 42) and SVG
    pd.DataFrame({"x": ["1950-03-04"] * 50}).to_parquet(tmp_path / "t.parquet")
    (tmp_path / "r.html").write_text("<p>Zhang&#94;Wei</p>", encoding="utf-8")
    report = scan_for_identifiers([tmp_path], planted)
    found = {(h.path.name, h.value) for h in report.hits}
    assert ("leak.pdf", "Wei Zhang") in found, report.summary()
    assert ("leak.pdf", "MRN12345678") in found
    assert ("leak.svg", "MRN12345678") in found
    assert ("t.parquet", "1950-03-04") in found
    assert ("r.html", "Zhang^Wei") in found
    assert report.n_files == 5 and not report.ok
    compressed = tmp_path / "z.pdf"
    compressed.write_bytes(b"stream\n" + zlib.compress(b"(MRN12345678) Tj") + b"\nendstream")
    assert not scan_for_identifiers([compressed], planted).ok


def test_scanner_finds_overlapping_and_nested_identifiers(tmp_path):
    """Every planted value is looked for at once: values that overlap in the text, or that
    start where a longer one starts, are all found (as one search per value would)."""
    planted = ["Wei Zhang", "Zhang Wei", "MRN1234", "MRN12345", "12345678", "Li Na"]
    (tmp_path / "a.txt").write_text("Wei Zhang Wei; MRN12345678", encoding="utf-8")
    report = scan_for_identifiers([tmp_path], planted)
    found = [h.value for h in report.hits]
    assert found == ["12345678", "MRN1234", "MRN12345", "Wei Zhang", "Zhang Wei"]
    assert {h.view for h in report.hits} == {"bytes"}


def test_scanner_refuses_needles_too_short_to_mean_anything(tmp_path):
    with pytest.raises(StudyvalError, match="too short"):
        scan_for_identifiers([tmp_path], ["Li"])


# ------------------------------------------------------------------------------ the bundle


@pytest.mark.slow
@pytest.mark.render
def test_no_planted_identifier_reaches_any_file_of_a_rendered_bundle(
    demo_bundle, record_property, capsys
):
    bundle, inputs = demo_bundle
    clinical = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    planted = (
        set(clinical["patient_name"])
        | set(clinical["medical_record_number"])
        | set(clinical["date_of_birth"])
    )
    assert len(planted) > 300
    every_file = sorted(p for p in bundle.rglob("*") if p.is_file())
    kinds = {p.suffix for p in every_file}
    assert {".parquet", ".csv", ".png", ".pdf", ".svg", ".json", ".html"} <= kinds
    assert (bundle / "report" / "report.html").is_file()

    report = scan_for_identifiers([bundle], planted)

    assert report.files == tuple(every_file), "every file of the bundle is read"
    assert report.ok, report.summary()
    record_property("privacy_files_scanned", report.n_files)
    with capsys.disabled():
        print(f"\nprivacy scan: {report.summary()}")


@pytest.mark.slow
@pytest.mark.render
def test_report_shows_no_patient_or_case_id(demo_bundle, tmp_path):
    """Everything a report shows identifies patients by keyed pseudonym only.

    The text of the rendered report (embedded images removed: base64 would give chance
    hits for 5-character ids) is searched for each patient id and case id of the inputs;
    a reader needing to trace a case uses the pseudonym.
    """
    bundle, inputs = demo_bundle
    clinical = pd.read_csv(inputs["clinical"], dtype=str, keep_default_na=False)
    ids = set(clinical["patient_id"]) | set(clinical["case_id"])
    assert ids_shown_in_report(bundle / "report" / "report.html", ids) == []
    # positive control: ids written as text are found (a case id, and the patient id inside
    # it); an id that is only part of a longer token is not
    probe = tmp_path / "probe.html"
    probe.write_text("<p>case P0001-V1 and PS-P0002x</p>", encoding="utf-8")
    assert ids_shown_in_report(probe, ids) == ["P0001", "P0001-V1"]
