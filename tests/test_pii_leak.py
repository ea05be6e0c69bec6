"""PII leak-rate regression on the presidio-research dev split (real Presidio + spaCy +
tesseract): the per-type targets of `python -m bench.pii_leak`, with a small margin, on a
150-record sample that covers every entity type, plus a few records as scanned PDFs."""

from __future__ import annotations

import pytest

from bench.pii_leak import DATA, load_records, measure_scanned, measure_text, select
from docsync.config import load_settings

STRICT = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE")  # target < 1%

pytestmark = pytest.mark.skipif(not DATA.exists(), reason=f"PII evaluation data not found at {DATA}")


@pytest.fixture(scope="module")
def text_rows():
    tally = measure_text(select(load_records(), 150), load_settings())  # PII settings only: no home used
    return {r["entity"]: r for r in tally.rows()}, tally


def test_strict_types_do_not_leak(text_rows):
    rows, _tally = text_rows
    for kind in STRICT:
        row = rows[kind]
        assert row["values"] >= 9, row
        # < 2% on at most ~50 values means none may survive, verbatim or as a near copy
        assert row["verbatim_rate"] < 0.02 and row["fuzzy_rate"] < 0.02, row


def test_person_leak_rate(text_rows):
    rows, _tally = text_rows
    row = rows["PERSON"]
    assert row["values"] >= 60, row
    assert row["verbatim_rate"] < 0.12, row
    assert row["token_rate"] < 0.14, row


def test_over_redaction_stays_small(text_rows):
    _rows, tally = text_rows
    assert tally.background_words > 1000
    assert tally.over_redaction < 0.03, f"{tally.over_redaction:.1%} of non-PII words removed"


def test_scanned_records_ocr_then_anonymize(settings):
    """OCR misreads (an IBAN's "0" read as "O", a space in the middle) must not let a near
    copy of a card, IBAN, phone number, SSN or e-mail through."""
    records = load_records()
    sample = []
    for kind in STRICT:
        sample += [r for r in records if any(s["entity_type"] == kind for s in r["spans"]) and r not in sample][:1]
    iban = [r for r in records if any(s["entity_type"] == "IBAN_CODE" for s in r["spans"]) and r not in sample]
    sample += iban[:2]  # the type OCR garbles most
    tally = measure_scanned(sample, settings)
    for row in tally.rows():
        if row["entity"] in STRICT:
            assert row["fuzzy_leaked"] == 0 and row["verbatim_leaked"] == 0, row


# --- the extra recognizers on their own: what they must catch, what they must leave ------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Are there charges for a transfer from GB52AEIL57263335291959 abroad?", "GB52AEIL57263335291959"),  # OCR: J->I
        ("Transfer from GBO 2RVXB01271286793653 today", "2RVXB01271286793653"),  # OCR: 0->O plus a space
        ("What is the limit for card 213164126086955?", "213164126086955"),  # Luhn-valid, unusual prefix
        ("Hungary 34796 | (37) 788-063-Office", "788-063"),
        ("They're not answering at 99 668472", "668472"),
        ("Minutes by Ella H. Snider and Kónya, Becker and Vasquez.", "Snider"),
        ("Minutes by Ella H. Snider and Kónya, Becker and Vasquez.", "Becker"),
        ("my name is vitoria", "vitoria"),
    ],
)
def test_catches(text, value):
    from docsync import pii

    clean, _counts = pii.anonymize(text, load_settings())
    assert value not in clean, clean


@pytest.mark.parametrize(
    "text",
    [
        "Contact: Customer Service",
        "Chase Bank approved the loan.",
        "Revenue grew 12 345 678 in 2024 and 2025.",
        "Invoice 2024-11-05 totals 1 250 000 EUR.",
        "Our Plan B Options are limited; see Section C Summary.",
        "The board meets in May and June with the Sales team.",
    ],
)
def test_leaves_ordinary_text(text):
    from docsync import pii

    assert pii.anonymize(text, load_settings())[0] == text
