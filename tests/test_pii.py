"""docsync.pii: real Presidio + spaCy en_core_web_sm, no mocks."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from docsync import pii
from docsync.config import DEFAULT_PII_ENTITIES

PII_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "presidio_research_synth_dev.json"

NAME = "Maria Gonzalez"
EMAIL = "maria.gonzalez@northwindanalytics.com"
PHONE = "(212) 555-0147"
SSN = "532-74-1968"
CARD = "4111 1111 1111 1111"
IBAN = "DE89 3704 0044 0532 0130 00"
TEXT = (
    f"Please contact {NAME} at {EMAIL} or call {PHONE}. "
    f"Her social security number is {SSN} and the corporate card is {CARD}. "
    f"Refunds go to IBAN {IBAN}."
)
LITERALS = (NAME, EMAIL, PHONE, SSN, CARD, IBAN, "Gonzalez", "4111", "0147")
PSEUDONYM = re.compile(r"<([A-Z_]+)_([0-9a-f]{8})>")


@pytest.fixture(scope="module", autouse=True)
def _warm_analyzer():
    pii.get_analyzer()  # load spaCy once per module


@pytest.fixture()
def hmac_settings(settings):
    return settings.replace(pii_hmac_key="test-key-1")


def test_all_entity_types_removed_and_counted(settings):
    clean, counts = pii.anonymize(TEXT, settings)
    for literal in LITERALS:
        assert literal not in clean, literal
    for entity in ("PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE"):
        assert counts[entity] == 1, (entity, counts)
        assert f"<{entity}>" in clean
    assert "social security number is" in clean  # surrounding text is kept


def test_counts_only_never_values(settings):
    _clean, counts = pii.anonymize(TEXT, settings)
    assert isinstance(counts, Counter)
    assert set(counts) <= set(DEFAULT_PII_ENTITIES)
    assert all(isinstance(v, int) and v > 0 for v in counts.values())
    dumped = json.dumps(dict(counts))
    for literal in LITERALS:
        assert literal not in dumped


def test_several_values_of_one_type_are_counted(settings):
    clean, counts = pii.anonymize("Write to ann@example.com, bob@example.org and carl@example.net today.", settings)
    assert counts["EMAIL_ADDRESS"] == 3
    assert "@" not in clean


def test_strict_ssn_shape_caught_even_when_presidio_rejects_it(settings):
    # Presidio's own SSN recognizer rejects the "sample" number; the strict pattern catches it
    clean, counts = pii.anonymize("Reference number 123-45-6789 on the form.", settings)
    assert "123-45-6789" not in clean
    assert counts["US_SSN"] == 1


def test_text_without_pii_is_unchanged(settings):
    text = "The quarterly forecast improved after the pricing review."
    assert pii.anonymize(text, settings) == (text, Counter())
    assert pii.anonymize("   \n", settings) == ("   \n", Counter())


def test_entities_setting_limits_what_is_removed(settings):
    only_email = settings.replace(pii_entities=("EMAIL_ADDRESS",))
    clean, counts = pii.anonymize(f"{NAME} uses {EMAIL}.", only_email)
    assert EMAIL not in clean and NAME in clean
    assert set(counts) == {"EMAIL_ADDRESS"}


def test_anonymize_many_sums_counts(settings):
    texts = [f"Mail {EMAIL}.", f"Call {PHONE} or mail other.person@example.com.", "Nothing here."]
    out, counts = pii.anonymize_many(texts, settings)
    assert len(out) == 3 and out[2] == "Nothing here."
    assert counts["EMAIL_ADDRESS"] == 2 and counts["PHONE_NUMBER"] == 1
    assert not any(EMAIL in t or PHONE in t for t in out)


# --- HMAC pseudonyms --------------------------------------------------------------------


def _pseudonyms(text: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for entity, digest in PSEUDONYM.findall(text):
        found.setdefault(entity, set()).add(digest)
    return found


def test_hmac_pseudonyms_consistent_across_calls(hmac_settings):
    first, counts = pii.anonymize(TEXT, hmac_settings)
    second, _ = pii.anonymize(f"Follow-up: {NAME} confirmed, reply to {EMAIL}.", hmac_settings)
    for literal in LITERALS:
        assert literal not in first and literal not in second
    assert counts["EMAIL_ADDRESS"] == 1
    a, b = _pseudonyms(first), _pseudonyms(second)
    assert {"PERSON", "EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE"} <= set(a)
    assert a["EMAIL_ADDRESS"] == b["EMAIL_ADDRESS"]
    assert a["PERSON"] == b["PERSON"]
    # and across separate runs of the same text
    assert pii.anonymize(TEXT, hmac_settings)[0] == first


def test_hmac_pseudonyms_differ_for_different_values(hmac_settings):
    text = "Robert Chen wrote to robert.chen@northwindanalytics.com"
    other = _pseudonyms(pii.anonymize(text, hmac_settings)[0])
    mine = _pseudonyms(pii.anonymize(f"{NAME} wrote to {EMAIL}", hmac_settings)[0])
    assert other["EMAIL_ADDRESS"].isdisjoint(mine["EMAIL_ADDRESS"])
    assert other["PERSON"].isdisjoint(mine["PERSON"])


def test_hmac_pseudonyms_depend_on_the_key(hmac_settings):
    other_key = hmac_settings.replace(pii_hmac_key="another-key")
    a = _pseudonyms(pii.anonymize(f"Mail {EMAIL}", hmac_settings)[0])["EMAIL_ADDRESS"]
    b = _pseudonyms(pii.anonymize(f"Mail {EMAIL}", other_key)[0])["EMAIL_ADDRESS"]
    assert a and b and a.isdisjoint(b)


def test_without_key_plain_type_tags(settings):
    assert settings.pii.hmac_key is None
    clean, _ = pii.anonymize(f"Mail {EMAIL}", settings)
    assert clean == "Mail <EMAIL_ADDRESS>"


# --- rescan -----------------------------------------------------------------------------


@pytest.mark.parametrize("snippet", [f"mail {EMAIL} now", f"ssn {SSN} here", f"card {CARD} ok", f"iban {IBAN}"])
def test_rescan_counts_surviving_patterns(snippet):
    assert pii.rescan(snippet) >= 1


def test_rescan_counts_each_surviving_value():
    one = pii.rescan("Reach me at first@example.com.")
    two = pii.rescan("Reach me at first@example.com or second@example.org.")
    assert one == 1 and two == 2
    assert pii.rescan(TEXT) >= 4  # email, SSN, card, IBAN


def test_rescan_counts_one_ssn_once():
    assert pii.rescan(f"ssn {SSN} here") == 1


def test_rescan_of_anonymized_text_is_zero(settings, hmac_settings):
    assert pii.rescan(pii.anonymize(TEXT, settings)[0]) == 0
    assert pii.rescan(pii.anonymize(TEXT, hmac_settings)[0]) == 0
    assert pii.rescan("") == 0 and pii.rescan("plain words only") == 0


# --- e-mail addresses on any TLD (issue 13, item 12) -------------------------------------

INTERNAL_EMAILS = (
    "alice.admin@corp.internal",
    "printers@fileserver.local",
    "badge-desk@hq.lan",
    "it_ops@eu.acme.corp",
    "dev+alerts@build.home.arpa",
    "team@brand.photography",
    "jo.o'neil@sub.example.co.uk",
    "root@[10.20.30.40]",
)


@pytest.mark.parametrize("address", INTERNAL_EMAILS)
def test_email_addresses_on_any_tld_are_anonymized(settings, address):
    text = f"For access write to {address} before Friday."
    clean, counts = pii.anonymize(text, settings)
    assert clean == "For access write to <EMAIL_ADDRESS> before Friday.", clean
    assert counts["EMAIL_ADDRESS"] == 1
    assert pii.rescan(text) == 1  # the fail-closed re-scan sees them too
    assert pii.rescan(clean) == 0


def test_email_recognizer_does_not_take_asset_names_or_plain_at_signs(settings):
    text = "Use logo@2x.png on retina screens; meet @ noon; 3 items @ 5 EUR."
    assert pii.anonymize(text, settings)[0] == text
    assert pii.rescan(text) == 0


# --- invisible characters and dash variants (issue 13, item 13) -----------------------------

HIDDEN = {
    "zero width space": "\u200b", "zero width non-joiner": "\u200c", "zero width joiner": "\u200d",
    "word joiner": "\u2060", "byte order mark": "\ufeff", "soft hyphen": "\u00ad",
    "right-to-left override": "\u202e", "invisible separator": "\u2063", "variation selector": "\ufe0f",
}
DASHES = {
    "non-breaking hyphen": "\u2011", "hyphen": "\u2010", "en dash": "\u2013", "em dash": "\u2014",
    "minus sign": "\u2212", "small hyphen-minus": "\ufe63", "fullwidth hyphen-minus": "\uff0d",
}


@pytest.mark.parametrize("char", HIDDEN.values(), ids=HIDDEN.keys())
def test_invisible_characters_inside_an_email_do_not_hide_it(settings, char):
    text = f"Mail ali{char}ce.ad{char}min@co{char}rp.inter{char}nal and {char}bob@example.com{char} today."
    clean, counts = pii.anonymize(text, settings)
    assert clean == "Mail <EMAIL_ADDRESS> and <EMAIL_ADDRESS> today.", clean
    assert counts["EMAIL_ADDRESS"] == 2
    assert pii.rescan(text) == 2


@pytest.mark.parametrize("char", [*HIDDEN.values(), *DASHES.values()], ids=[*HIDDEN, *DASHES])
def test_invisible_characters_and_dash_variants_inside_an_ssn_do_not_hide_it(settings, char):
    dash = "-" if char in HIDDEN.values() else char
    hidden = char if char in HIDDEN.values() else ""
    ssn = f"53{hidden}2{dash}7{hidden}4{dash}19{hidden}68"
    clean, counts = pii.anonymize(f"Her SSN is {ssn} on file.", settings)
    assert clean == "Her SSN is <US_SSN> on file.", clean
    assert counts["US_SSN"] == 1
    assert pii.rescan(f"ssn {ssn}") == 1


def test_normalize_text():
    assert pii.normalize_text("plain ASCII text\n\twith tabs") == "plain ASCII text\n\twith tabs"
    assert pii.normalize_text("a\u200bb\u200c\u200dc\u2060d\ufeffe\u00adf\u202eg") == "abcdefg"
    assert pii.normalize_text("123\u201145\u20136789 \u2212 5") == "123-45-6789 - 5"
    assert pii.normalize_text("ｉｖａｎ＠ｅｘａｍｐｌｅ．ｃｏｍ") == "ivan@example.com"  # NFKC
    assert pii.normalize_text("no\u00a0break, ﬁle") == "no break, file"
    assert pii.normalize_text("bell\x07 and nul\x00") == "bell and nul"
    assert pii.normalize_text("Zoë Ångström, 東京") == "Zoë Ångström, 東京"  # letters stay (NFC-equal)
    text = "x\u200by\u2011z ｆ"
    assert pii.normalize_text(pii.normalize_text(text)) == pii.normalize_text(text)


def test_anonymize_returns_the_normalised_text(settings):
    """What is indexed is what was analysed: the normalised form, anonymized."""
    clean, counts = pii.anonymize("Quarterly\u200b report \u2013 final", settings)
    assert clean == "Quarterly report - final" and not counts
    out, _ = pii.anonymize_many(["a\u00adb", "   ", "x\ufeffy"], settings)
    assert out == ["ab", "   ", "xy"]


# --- no network (issue 13, item 15) ----------------------------------------------------------


def test_presidio_email_recognizer_and_tldextract_stay_offline():
    import tldextract.tldextract

    names = {r.name for r in pii.get_analyzer().registry.recognizers}
    assert "EmailRecognizer" not in names and "DocsyncEmail" in names  # the one that called tldextract
    extractor = tldextract.tldextract.TLD_EXTRACTOR
    assert extractor.suffix_list_urls == () and not extractor._cache.enabled


# --- leak sanity check on labelled data ---------------------------------------------------


def test_email_leak_rate_on_presidio_research_records(settings):
    records = json.loads(PII_DATA.read_text())

    def has_email(r: dict) -> bool:
        return any(s["entity_type"] == "EMAIL_ADDRESS" for s in r["spans"])

    with_email = [r for r in records if has_email(r)]
    sample = (with_email + [r for r in records if not has_email(r)])[:100]
    values = 0
    survived = 0
    for record in sample:
        clean, _counts = pii.anonymize(record["full_text"], settings)
        for span in record["spans"]:
            if span["entity_type"] == "EMAIL_ADDRESS":
                values += 1
                survived += span["entity_value"] in clean
    assert values >= 20
    assert survived / values < 0.05, f"{survived}/{values} e-mail values survived"
