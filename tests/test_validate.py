"""docsync.validate: the real Great Expectations suites in expectations/, no mocks.

Document rows are generated from the suite itself: one row violating each expectation,
so a new expectation is covered automatically."""

from __future__ import annotations

import json

import pytest

from docsync.config import PROJECT_ROOT, load_settings
from docsync.errors import Failure
from docsync.validate import CHUNK_SUITE, DOCUMENT_SUITE, Validation, validate_chunks, validate_documents

SUITES = PROJECT_ROOT / "expectations"
DOC_SUITE = json.loads((SUITES / DOCUMENT_SUITE).read_text())
CHUNK_SUITE_DICT = json.loads((SUITES / CHUNK_SUITE).read_text())


@pytest.fixture(scope="module")
def vsettings(tmp_path_factory):
    home = tmp_path_factory.mktemp("validate-home")
    return load_settings().replace(home=home, expectations_dir=SUITES, ocr_min_confidence=55.0)


def good_row(doc_id: str, **changes) -> dict:
    row = {
        "doc_id": doc_id,
        "mime": "application/pdf",
        "text_length": 1200,
        "replacement_ratio": 0.0,
        "ocr_confidence": None,
        "allowed_count": 2,
        "pii_rescan_hits": 0,
        "markup_ratio": 0.0,
    }
    row.update(changes)
    return row


def _label(item: dict) -> str:
    return f"{item['type']}({item['kwargs'].get('column', '')})"


def _violation(item: dict, settings) -> tuple[str, object]:
    """(column, value) that violates one expectation of the document suite."""
    kwargs = item["kwargs"]
    column = kwargs["column"]
    kind = item["type"]
    if kind == "expect_column_values_to_not_be_null":
        return column, None
    if kind == "expect_column_values_to_be_in_set":
        return column, "application/x-not-allowed"
    if kind == "expect_column_values_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        if low == "$OCR_MIN_CONFIDENCE":
            low = settings.ocr.min_confidence
        if low is not None:
            return column, low - 1 if isinstance(low, int) else low - 0.5
        return column, high + 1 if isinstance(high, int) else high + 0.5
    raise AssertionError(f"no violation generator for {kind}; extend this test")


def _doc_cases(settings) -> list[tuple[str, dict, dict]]:
    """(doc_id, row, expectation) per expectation; the doc_id-null case has doc_id None."""
    cases = []
    for n, item in enumerate(DOC_SUITE["expectations"]):
        column, value = _violation(item, settings)
        doc_id = f"doc-{n}-{column}"
        row = good_row(doc_id)
        row[column] = value
        cases.append((None if column == "doc_id" else doc_id, row, item))
    return cases


def test_suite_shape():
    names = {_label(i) for i in DOC_SUITE["expectations"]}
    assert "expect_column_values_to_be_between(ocr_confidence)" in names
    assert "expect_column_values_to_be_between(allowed_count)" in names
    assert all("reason" in i["meta"] and "overridable" in i["meta"] for i in DOC_SUITE["expectations"])


def test_good_rows_pass(vsettings):
    rows = [good_row("a"), good_row("b", ocr_confidence=91.5, mime="image/png"), good_row("c", mime="text/markdown")]
    assert validate_documents(rows, vsettings) == {}
    assert validate_documents([], vsettings) == {}


def test_validation_returns_results_and_writes_nothing(vsettings):
    """Pure: the failures and the GX result come back; nothing is written (Data Docs are
    recorded by the process step, docsync.data_docs.record)."""
    before = sorted(p for p in vsettings.home.rglob("*"))
    validation = validate_documents([good_row("ok"), good_row("no-acl", allowed_count=0)], vsettings)
    assert isinstance(validation, Validation) and set(validation.failures) == {"no-acl"}
    assert validation["no-acl"] is validation.failures["no-acl"] and "ok" not in validation
    assert validation.result.success is False and validation.result.suite_name == DOC_SUITE["name"]
    chunks = validate_chunks([chunk_row("p1", "clean")], vsettings)
    assert chunks.failures == {} and chunks.result.success is True
    assert sorted(p for p in vsettings.home.rglob("*")) == before


def test_each_document_expectation_maps_failure_to_its_doc(vsettings):
    cases = _doc_cases(vsettings)
    rows = [good_row("good-1")] + [row for _doc, row, _item in cases] + [good_row("good-2", ocr_confidence=99.0)]
    failures = validate_documents(rows, vsettings)
    assert set(failures) == {doc for doc, _row, _item in cases}
    for doc_id, _row, item in cases:
        failure = failures[doc_id]
        assert isinstance(failure, Failure)
        assert failure.stage == "validate"
        assert _label(item) in failure.reason, (doc_id, failure.reason)
        assert item["meta"]["reason"] in failure.reason
        assert DOC_SUITE["name"] in failure.reason


def test_first_failing_expectation_wins_and_others_unaffected(vsettings):
    rows = [good_row("two-problems", allowed_count=0, ocr_confidence=10.0), good_row("fine")]
    failures = validate_documents(rows, vsettings)
    assert list(failures) == ["two-problems"]
    assert "allowed_count" in failures["two-problems"].reason  # suite order: access before OCR


def test_ocr_threshold_comes_from_settings(vsettings):
    row = good_row("scan", ocr_confidence=80.0)
    assert validate_documents([row], vsettings) == {}
    strict = vsettings.replace(ocr_min_confidence=90.0)
    assert "ocr_confidence" in validate_documents([row], strict)["scan"].reason


def test_overrides_waive_only_overridable_expectations(vsettings):
    cases = [(d, r, i) for d, r, i in _doc_cases(vsettings) if d is not None]
    rows = [row for _doc, row, _item in cases]
    everyone = {doc for doc, _row, _item in cases}
    failures = validate_documents(rows, vsettings, overrides=everyone)
    for doc_id, _row, item in cases:
        if item["meta"]["overridable"]:
            assert doc_id not in failures, (doc_id, failures.get(doc_id))
        else:
            assert doc_id in failures and _label(item) in failures[doc_id].reason


def test_override_ocr_yes_access_never(vsettings):
    rows = [good_row("blurry", ocr_confidence=20.0), good_row("no-acl", allowed_count=0),
            good_row("blurry-no-acl", ocr_confidence=20.0, allowed_count=0)]
    assert set(validate_documents(rows, vsettings)) == {"blurry", "no-acl", "blurry-no-acl"}
    released = validate_documents(rows, vsettings, overrides={"blurry", "no-acl", "blurry-no-acl"})
    assert set(released) == {"no-acl", "blurry-no-acl"}
    assert "allowed_count" in released["blurry-no-acl"].reason
    # an override applies only to the document it names
    assert "blurry" in validate_documents(rows, vsettings, overrides={"other"})


def test_many_failing_rows_all_mapped(vsettings):
    rows = [good_row(f"d{i}", allowed_count=i % 2) for i in range(600)]
    failures = validate_documents(rows, vsettings)
    assert set(failures) == {f"d{i}" for i in range(0, 600, 2)}


def test_missing_column_fails_closed(vsettings):
    rows = [good_row("a"), good_row("b")]
    for row in rows:
        del row["pii_rescan_hits"]
    failures = validate_documents(rows, vsettings)
    assert set(failures) == {"a", "b"}
    assert "pii_rescan_hits" in failures["a"].reason and failures["a"].error


@pytest.mark.parametrize("column", ["allowed_count", "pii_rescan_hits", "text_length", "mime"])
def test_null_in_required_column_fails_closed(vsettings, column):
    failures = validate_documents([good_row("null-value", **{column: None}), good_row("ok")], vsettings)
    assert set(failures) == {"null-value"}


# --- chunks -----------------------------------------------------------------------------


def chunk_row(point_id: str, doc_id: str, text: str = "A clean chunk of text.", token_count: int = 6) -> dict:
    return {"point_id": point_id, "doc_id": doc_id, "token_count": token_count, "text": text}


def test_chunk_suite_is_not_overridable():
    assert all(not i["meta"]["overridable"] for i in CHUNK_SUITE_DICT["expectations"])


def test_chunk_suite_catches_pii_patterns_and_token_limits(vsettings):
    rows = [
        chunk_row("p1", "clean"),
        chunk_row("p2", "clean", "Another clean chunk about <EMAIL_ADDRESS> and <US_SSN>."),
        chunk_row("p3", "email", "Write to jane.roe@example.com for details."),
        chunk_row("p4", "ssn", "Number 532-74-1968 on file."),
        chunk_row("p5", "card-spaced", "Card 4111 1111 1111 1111 charged."),
        chunk_row("p6", "card-plain", "Card 4111111111111111 charged."),
        chunk_row("p7", "too-long", token_count=255),
        chunk_row("p8", "at-limit", token_count=254),
        chunk_row("p9", "empty", "", token_count=0),
        chunk_row("p10", "phone-ok", "Call (212) 555-0147 or 12-digit ref 123456789012."),
    ]
    failures = validate_chunks(rows, vsettings)
    assert set(failures) == {"email", "ssn", "card-spaced", "card-plain", "too-long", "empty"}
    assert "e-mail" in failures["email"].reason
    assert "SSN" in failures["ssn"].reason
    assert "16-digit" in failures["card-spaced"].reason and "16-digit" in failures["card-plain"].reason
    assert "expect_column_values_to_be_between(token_count)" in failures["too-long"].reason
    assert all(f.stage == "validate" for f in failures.values())


def test_chunk_failure_quarantines_the_whole_document(vsettings):
    rows = [chunk_row("a1", "doc-a"), chunk_row("a2", "doc-a", "SSN 532-74-1968"), chunk_row("b1", "doc-b")]
    assert set(validate_chunks(rows, vsettings)) == {"doc-a"}


def test_duplicate_point_ids(vsettings):
    rows = [chunk_row("same", "doc-a"), chunk_row("same", "doc-b"), chunk_row("other", "doc-c")]
    failures = validate_chunks(rows, vsettings)
    assert set(failures) == {"doc-a", "doc-b"}
    assert "point_id" in failures["doc-a"].reason


def test_chunk_overrides_do_not_waive_pii(vsettings):
    rows = [chunk_row("p", "released", "mail jane.roe@example.com")]
    assert "released" in validate_chunks(rows, vsettings, overrides={"released"})
