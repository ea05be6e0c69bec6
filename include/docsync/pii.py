"""PII anonymization with Presidio (spaCy NER, offline) plus pattern recognizers.

Entities are replaced by a type tag (``<PERSON>``) or, with ``DOCSYNC_PII_HMAC_KEY`` set,
by a consistent pseudonym (``<PERSON_1a2b3c4d>``: same value, same token, in every
document). Only counts per entity type leave this module, never the values.
"""

from __future__ import annotations

import hashlib
import hmac
import sys
import unicodedata
from collections import Counter
from functools import lru_cache

from docsync.config import Settings, apply_offline_env
from docsync.pii_context import filter_persons
from docsync.pii_recognizers import docsync_recognizers, propagate_names
from docsync.pii_structure import DocContext, document_context

apply_offline_env()

SPACY_MODEL = "en_core_web_sm"
# Bump whenever a recognizer is added or made to find more (docsync.pii_recognizers, the strict
# pattern recognizers below): documents anonymized by an older version are re-processed first,
# without waiting for the re-processing budget (docsync.fingerprint.stricter_pii). A plain int
# literal: docsync.fingerprint reads it from this file without importing Presidio.
RECOGNIZER_VERSION = 2
IGNORED_NER_LABELS = ["CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY", "LAW", "WORK_OF_ART", "PRODUCT", "EVENT", "LANGUAGE", "FAC"]


# --- normalisation -------------------------------------------------------------------------
# "alice\u200b@example.com" or "123\u201145\u20116789" looks like an e-mail address or an SSN
# to a reader but not to a regular expression. PII analysis runs on normalised text, and the
# normalised text is what is returned (and so indexed): nothing invisible can split a value.

# Default-ignorable code points that are not format (Cf) characters: combining grapheme
# joiner, Hangul fillers, Khmer inherent vowels, Mongolian variation selectors, variation
# selectors (and their supplement). Cf itself is taken from unicodedata.
_IGNORABLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xE0000, 0xE0FFF),
)
_KEEP_CONTROLS = "\t\n\v\f\r"


@lru_cache(maxsize=1)
def _translation() -> dict[int, str | None]:
    """Code point -> replacement: format/ignorable and control characters removed, dash
    variants (Unicode Pd, the minus sign) mapped to '-'. Built once (~0.3 s)."""
    table: dict[int, str | None] = {}
    for code in range(sys.maxunicode + 1):
        category = unicodedata.category(chr(code))
        if category == "Cf" or (category == "Cc" and chr(code) not in _KEEP_CONTROLS):
            table[code] = None
        elif category == "Pd" and code != 0x2D:
            table[code] = "-"
    for first, last in _IGNORABLE_RANGES:
        table.update(dict.fromkeys(range(first, last + 1)))
    table[0x0085] = "\n"  # NEL is a line break, not noise
    table[0x2212] = "-"  # MINUS SIGN (Sm)
    return table


_ASCII_CONTROLS = {c: None for c in range(0x20) if chr(c) not in _KEEP_CONTROLS} | {0x7F: None}


def normalize_text(text: str) -> str:
    """The form of ``text`` that PII analysis sees and that is indexed: zero-width and other
    format characters (U+200B..U+200D, U+2060, U+FEFF, soft hyphen, bidi controls, ...) and
    control characters removed, Unicode NFKC (fullwidth and compatibility forms, no-break
    spaces and hyphens), and every dash variant mapped to '-'."""
    if text.isascii():
        return text.translate(_ASCII_CONTROLS)
    text = unicodedata.normalize("NFKC", text.translate(_translation()))
    return text.translate(_translation())  # NFKC can produce a dash variant (U+2011 -> U+2010)


# --- Presidio -------------------------------------------------------------------------------


def offline_tldextract() -> None:
    """Make ``tldextract`` use its bundled public-suffix snapshot, never the network.

    Its default extractor fetches publicsuffix.org (falling back to GitHub) on its first call,
    with no timeout, and caches under ``~/.cache``. docsync's own e-mail recognizer does not
    call it; this covers any Presidio recognizer that still would."""
    import tldextract.tldextract as module

    if module.TLD_EXTRACTOR.suffix_list_urls:
        module.TLD_EXTRACTOR = module.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)


@lru_cache(maxsize=1)
def get_analyzer():
    """Presidio analyzer on the packaged spaCy model (the default would download en_core_web_lg)."""
    from presidio_analyzer import AnalyzerEngine

    offline_tldextract()
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    provider = NlpEngineProvider(
        nlp_configuration={
            "nlp_engine_name": "spacy",
            "models": [{"lang_code": "en", "model_name": SPACY_MODEL}],
            "ner_model_configuration": {"labels_to_ignore": IGNORED_NER_LABELS},
        }
    )
    engine = provider.create_engine()
    # The dependency parser is the most expensive component and Presidio reads nothing from
    # it but sentence starts (the name rules do): the model's own, much cheaper, sentence
    # recognizer gives those. Entities, POS tags and lemmas are unchanged.
    nlp = engine.nlp["en"]
    if "parser" in nlp.pipe_names and "senter" in nlp.component_names:
        nlp.disable_pipe("parser")
        nlp.enable_pipe("senter")
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    # Presidio's e-mail recognizer drops addresses whose domain is not a public suffix
    # (corp.internal, .local, .lan) and asks tldextract, which goes to the network: the
    # strict one below replaces it.
    analyzer.registry.remove_recognizer("EmailRecognizer")
    for recognizer in _strict_recognizers() + docsync_recognizers():
        analyzer.registry.add_recognizer(recognizer)
    return analyzer


def _strict_recognizers() -> list:
    """Format-only recognizers: Presidio's own ones reject "invalid" values (e.g. SSNs with
    a 123 area), but anything shaped like an SSN must still not reach the index."""
    from presidio_analyzer import Pattern, PatternRecognizer

    return [
        PatternRecognizer(
            supported_entity="US_SSN",
            name="DocsyncStrictSsn",
            patterns=[Pattern("ssn-shaped", r"\b\d{3}-\d{2}-\d{4}\b", 0.6)],
        ),
        PatternRecognizer(
            supported_entity="EMAIL_ADDRESS",
            name="DocsyncEmail",
            patterns=[Pattern("email-any-tld", EMAIL_PATTERN, 1.0)],
        ),
    ]


_LOCAL_CHAR = r"[\w!#$%&'*+/=?^`{|}~-]"
# Any domain of two or more labels whose last label starts with a letter (internal TLDs such
# as .internal, .local, .lan, .corp, and every new gTLD), or an IP literal. Not "icon@2x.png".
EMAIL_PATTERN = (
    rf"(?<![\w.!#$%&'*+/=?^`{{|}}~-]){_LOCAL_CHAR}+(?:\.{_LOCAL_CHAR}+)*"
    r"@(?:(?!\d+(?:\.\d+)?x\.[a-z]{3,4}\b)(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_](?:[\w-]*[^\W_])?"
    r"|\[[0-9a-f:.]+\])(?![\w-])"
)


@lru_cache(maxsize=1)
def get_anonymizer():
    from presidio_anonymizer import AnonymizerEngine

    return AnonymizerEngine()


def _operators(entities: tuple[str, ...], hmac_key: str | None) -> dict:
    from presidio_anonymizer.entities import OperatorConfig

    if not hmac_key:
        return {"DEFAULT": OperatorConfig("replace")}  # replaces with "<ENTITY_TYPE>"
    key = hmac_key.encode()

    def pseudonym(entity: str):
        def apply(value: str) -> str:
            digest = hmac.new(key, value.strip().lower().encode(), hashlib.sha256).hexdigest()[:8]
            return f"<{entity}_{digest}>"

        return apply

    return {e: OperatorConfig("custom", {"lambda": pseudonym(e)}) for e in entities} | {
        "DEFAULT": OperatorConfig("replace")
    }


def anonymize(text: str, settings: Settings, nlp_artifacts=None, context: DocContext | None = None) -> tuple[str, Counter]:
    """Anonymized text and the number of entities found per type. The text is normalised
    first (:func:`normalize_text`): what comes back is the normalised text, anonymized.
    ``context``: what the whole document says against names (by default, this text)."""
    text = normalize_text(text)
    if not text.strip():
        return text, Counter()
    analyzer = get_analyzer()
    if nlp_artifacts is None:
        nlp_artifacts = analyzer.nlp_engine.process_text(text, "en")
    results = analyzer.analyze(
        text=text,
        language="en",
        entities=list(settings.pii.entities),
        score_threshold=settings.pii.score_threshold,
        nlp_artifacts=nlp_artifacts,
    )
    if "PERSON" in settings.pii.entities:
        # evidence against PERSON first (headings, citations, defined terms, ORG/LAW/...
        # labels), so that a false positive is not spread to every other mention
        doc = getattr(nlp_artifacts, "tokens", None)
        context = document_context([text]) if context is None else context
        results = filter_persons(text, results, doc, context)
        results += filter_persons(text, propagate_names(text, results), doc, context)
    if not results:
        return text, Counter()
    anonymized = get_anonymizer().anonymize(
        text=text,
        analyzer_results=results,
        operators=_operators(settings.pii.entities, settings.pii.hmac_key),
    )
    counts = Counter(item.entity_type for item in anonymized.items)
    return anonymized.text, counts


def anonymize_many(texts: list[str], settings: Settings) -> tuple[list[str], Counter]:
    """Anonymize several texts (e.g. the blocks of one document); counts are summed.

    spaCy runs over all of them in one ``nlp.pipe`` call, which is ~25% cheaper than one
    call per text; recognizers and the anonymizer then run per text as in ``anonymize``.
    """
    total: Counter = Counter()
    texts = [normalize_text(text) for text in texts]
    out = list(texts)
    todo = [i for i, text in enumerate(texts) if text.strip()]
    artifacts = get_analyzer().nlp_engine.process_batch([texts[i] for i in todo], language="en", batch_size=64)
    context = document_context(texts)  # a trademark or code name in one block is one in all
    for i, (_text, nlp_artifacts) in zip(todo, artifacts):
        out[i], counts = anonymize(texts[i], settings, nlp_artifacts, context)
        total.update(counts)
    return out, total


RESCAN_ENTITIES = ("EMAIL_ADDRESS", "US_SSN", "CREDIT_CARD", "IBAN_CODE")


def rescan(text: str, min_score: float = 0.5) -> int:
    """Pattern-only re-scan of anonymized text (no NER pass): hits mean PII survived.
    Runs on the normalised text, like the analysis."""
    text = normalize_text(text)
    if not text.strip():
        return 0
    registry = get_analyzer().registry
    spans: set[tuple[int, int]] = set()  # one value found by two recognizers counts once
    for recognizer in registry.get_recognizers(language="en", entities=list(RESCAN_ENTITIES)):
        if getattr(recognizer, "patterns", None) is None:
            continue
        results = recognizer.analyze(text=text, entities=list(RESCAN_ENTITIES), nlp_artifacts=None) or []
        spans.update((r.start, r.end) for r in results if r.score >= min_score)
    return len(spans)
