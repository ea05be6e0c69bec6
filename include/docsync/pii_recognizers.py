"""Extra Presidio recognizers for what spaCy ``en_core_web_sm`` and Presidio's own
recognizers miss (measured with ``python -m bench.pii_leak``):

* names: a first-name gazetteer (US Census lists from the ``names`` package plus Faker's
  per-country lists) on capitalised words, the "Given I. Family" shape, cue phrases ("my
  name is", "Name:", "Mr."), first+family pairs in text without capitals, and more
  mentions of a name already found (other words of it, list members, transcript speakers);
* phone numbers, card numbers and IBANs by shape (in :mod:`docsync.pii_numbers`).

Each recognizer prefers removing a number or a name too many over letting one through:
the chunk suite quarantines anything card- or SSN-shaped that survives anyway.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from presidio_analyzer import EntityRecognizer, RecognizerResult

# --- names --------------------------------------------------------------------------------

_NON_NAMES = {  # capitalised words that are also in the census first-name list
    "JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER",
    "OCTOBER", "NOVEMBER", "DECEMBER", "MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY",
    "FRIDAY", "SATURDAY", "SUNDAY", "CHRISTMAS", "EASTER", "GOD", "LORD", "KING", "QUEEN",
    "PRINCE", "PAGE", "TABLE", "SUMMER", "WINTER", "SPRING", "AUTUMN",
}
# Family-name-like words that end organisation and place names ("Chase Bank").
_ORG_WORDS = {
    "ASSOCIATES", "AVENUE", "BANK", "BROTHERS", "CAPITAL", "CENTER", "CENTRE", "CITY", "CLINIC",
    "COLLEGE", "COMPANY", "CORP", "COUNTY", "FOUNDATION", "FUND", "GROUP", "HALL", "HOSPITAL",
    "HOTEL", "HOUSE", "INC", "INSTITUTE", "LLC", "LTD", "PARK", "PARTNERS", "ROAD", "SCHOOL",
    "SQUARE", "STREET", "UNIVERSITY",
}
# NER labels a name-shaped token keeps when it is not a person (single-token rule only).
_NOT_PERSON_LABELS = {"DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL", "LAW", "NORP"}
_L = r"[^\W\d_]"  # a letter, any script
_NAME_WORD = rf"{_L}+(?:[-'’](?![sS]\b){_L}+)*"  # "Anne-Marie", "O'Neil"; not the possessive 's
_START = r"(?<![\w'’-])"
_END = r"(?![\w-]|['’](?![sS]\b))"  # "Yefremova's" ends the name before the 's
_CUE = re.compile(
    r"(?:\b(?:[Mm]y|[Hh]er|[Hh]is|[Tt]heir|[Yy]our|[Ll]ast|[Ff]irst|[Ff]ull|[Mm]aiden)\s+name\s+is"
    r"|\b(?:[Nn]amed|[Cc]alled|[Cc]alls?\s+me)"
    r"|\b(?:Mr|Mrs|Ms|Mx|Miss|Dr|Prof)\.?|\b(?:Dear|Hi|Hello|Sincerely|Regards|Thanks),?"
    r"|\b(?:[Nn]ame|NAME|Full name|Employee|Customer|Patient|Client|Contact|Attn|Attention|From|To|Cc|"
    r"Author|Owner|Manager|Signed|Signature|Applicant|Beneficiary|Guest|Tenant|Candidate)\s*[:?])"
    rf"[ \t]+(?P<name>{_NAME_WORD}(?:[ \t]+(?:{_L}\.?|{_NAME_WORD})){{0,3}}){_END}"
)
# Given name, middle initial, family name ("Ella H. Snider"): a person whatever the words,
# unless the first word labels a document part ("Appendix B Results", "Plan B Options").
_LABEL_WORDS = {
    "APPENDIX", "ANNEX", "ARTICLE", "BLOCK", "BUILDING", "CHAPTER", "CLASS", "COLUMN", "EXHIBIT",
    "FIGURE", "FLOOR", "FORM", "GRADE", "GROUP", "ITEM", "LEVEL", "LINE", "MODEL", "OPTION", "PART",
    "PHASE", "PLAN", "ROOM", "ROW", "SCHEDULE", "SECTION", "SECTOR", "STAGE", "STEP", "TABLE",
    "TEAM", "TIER", "TYPE", "UNIT", "VERSION", "VITAMIN", "WAVE", "ZONE",
}
_WITH_INITIAL = re.compile(rf"{_START}(?P<name>{_NAME_WORD}[ \t]+{_L}\.?[ \t]+{_NAME_WORD}){_END}")
# A list of capitalised words ("Kónya, Becker and Vasquez").
_LIST = re.compile(rf"{_START}{_NAME_WORD}(?:,[ \t]+{_NAME_WORD}){{0,8}},?[ \t]+(?:and|&|or)[ \t]+{_NAME_WORD}{_END}")
# Speaker labels of a transcript or chat ("Ubul: What a wife. Nicole: Remember me").
_SPEAKER = re.compile(rf"(?:^|(?<=[\n.!?\"”])[ \t]*)(?P<name>{_NAME_WORD}):", re.MULTILINE)
_WORD_SHAPE = re.compile(_NAME_WORD)


# Where a sentence puts a person: "spoke with X", "thanks to X", "according to X", "X said".
_SLOT_BEFORE = frozenset("with to by from met ask tell thank thanks colleague according".split())
_SLOT_AFTER = frozenset(
    "said says told asked wrote approved confirmed declined reported called sent signed agreed will "
    "would has had reviews reviewed replied explained added noted".split()
)


def _person_slot(doc, i: int) -> bool:
    """A single capitalised word in a place where sentences name persons."""
    before = doc[i - 1].lower_ if i > 0 else ""
    after = doc[i + 1].lower_ if i + 1 < len(doc) else ""
    return before in _SLOT_BEFORE or after in _SLOT_AFTER


def fold(word: str) -> str:
    """Upper-case ASCII form of a word ("Sörös" -> "SOROS") for gazetteer look-ups."""
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode("ascii").upper()


def _census(key: str) -> set[str]:
    import names

    with open(names.FILES[key], encoding="ascii") as fh:
        return {line.split()[0] for line in fh if line.strip()}


@lru_cache(maxsize=1)
def census_given_names() -> frozenset[str]:
    """The US Census given names alone (~5k, folded): names people are really given, unlike
    the ordinary words some of Faker's lists hold ("General")."""
    return frozenset(_census("first:male") | _census("first:female")) - _NON_NAMES


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, family names), folded: the US Census lists of the ``names`` package
    plus the per-country lists of Faker's person providers (Latin-script locales)."""
    import importlib
    import pkgutil

    import faker.providers.person as faker_person

    first = _census("first:male") | _census("first:female")
    last = _census("last")
    for module in pkgutil.iter_modules(faker_person.__path__):
        provider = getattr(importlib.import_module(f"{faker_person.__name__}.{module.name}"), "Provider", None)
        for attr, target in (("first_names", first), ("first_names_male", first), ("first_names_female", first),
                             ("last_names", last)):
            values = getattr(provider, attr, None)
            if isinstance(values, (dict, list, tuple, set, frozenset)):
                target.update(w for w in map(fold, values) if len(w) > 1 and w.isalpha())
    return frozenset(first - _NON_NAMES), frozenset(last - _NON_NAMES)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def _capitalised(text: str) -> bool:
    return bool(_WORD_SHAPE.fullmatch(text)) and text[0].isupper() and (len(text) == 1 or not text.isupper())


def _initial(text: str) -> bool:
    return len(text.rstrip(".")) == 1 and text[0].isupper() and text[0].isalpha()


class NameRecognizer(EntityRecognizer):
    """PERSON from cue phrases, the "Given I. Family" shape, and a first-name gazetteer on
    capitalised words (plus a known family name right after one)."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PERSON"], name="DocsyncNames", supported_language="en")

    def load(self) -> None:
        name_lists()

    def analyze(self, text, entities, nlp_artifacts=None):
        results = []
        first, last = name_lists()
        for m in _CUE.finditer(text):
            name = m.group("name")
            words = name.split()
            if text[m.start() : m.start("name")].rstrip().endswith((":", "?")):
                # a form label ("Contact: Customer Service") needs a known name or an initial
                if not (fold(words[0]) in first | last or (len(words) > 1 and _initial(words[1]))):
                    continue
            if _capitalised(words[0]):
                # the name is the run of capitalised words and initials ("Mr. Grant declined ...")
                keep = 1
                while keep < len(words) and (_capitalised(words[keep]) or _initial(words[keep])):
                    keep += 1
                end = m.start("name") + len(" ".join(words[:keep])) if keep < len(words) else m.end("name")
                results.append(self._result(m.start("name"), end, 0.6, "cue"))
            elif "name" in m.group(0).lower() or m.group(0).lower().startswith("call"):
                word = name.split()[0]  # lower-case text: "my name is vitoria"
                if word.lower() not in _stop_words():
                    results.append(self._result(m.start("name"), m.start("name") + len(word), 0.5, "cue"))
        for m in _WITH_INITIAL.finditer(text):
            words = m.group("name").split()
            if (_capitalised(words[0]) and _capitalised(words[-1]) and words[1][0].isupper()
                    and fold(words[0]) not in _LABEL_WORDS):  # "Dismissing a Case" has no initial
                results.append(self._result(m.start("name"), m.end("name"), 0.6, "initial"))
        doc = getattr(nlp_artifacts, "tokens", None)
        if doc is not None:
            results += self._gazetteer(doc)
            results += self._unlisted(doc, results)
            results += self._lowercase_names(doc)
        return results

    def _unlisted(self, doc, found: list) -> list[RecognizerResult]:
        """Names the given-name rule misses: a family name alone ("Kovács approved it"), and
        capitalised words that are no English word, in a pair or with diacritics ("Inese
        Balogun", "Ondráčková"). Places, organisations and products are left to the
        evidence against PERSON (:mod:`docsync.pii_context`)."""
        from docsync.pii_context import NOT_PERSON_LABELS, is_common

        first, last = name_lists()
        taken = [(r.start, r.end) for r in found]
        labels = {i: ent.label_ for ent in doc.ents for i in range(ent.start, ent.end)}

        def candidate(tok) -> bool:
            if len(tok.text) < 3 or is_common(tok.text) or tok.like_url or not _WORD_SHAPE.fullmatch(tok.text):
                return False
            listed = fold(tok.text) in last or fold(tok.text) in first or not tok.text.isascii()
            if not (_capitalised(tok.text) or (tok.is_upper and listed)):
                return False
            # en_core_web_sm calls many foreign family names ORG, NORP or GPE: only places veto
            # a listed one, only LOC/FAC one with diacritics ("Ondráčková" is "GPE" to it)
            veto = {"GPE", "LOC", "FAC"} if fold(tok.text) in last or fold(tok.text) in first else {"LOC", "FAC"}
            return labels.get(tok.i) not in (veto if listed else NOT_PERSON_LABELS)

        results = []
        i = 0
        while i < len(doc):
            tok = doc[i]
            if not candidate(tok) or _overlaps(tok.idx, tok.idx + len(tok.text), taken):
                i += 1
                continue
            j = i
            while j + 1 < len(doc) and j - i < 2 and candidate(doc[j + 1]):
                j += 1
            words = [t.text for t in doc[i : j + 1]]
            start, end = tok.idx, doc[j].idx + len(doc[j].text)
            if j == i and tok.is_upper:  # one all-caps word is an acronym ("IBAN"), a name comes in pairs
                i += 1
                continue
            known = any(fold(w) in last or fold(w) in first for w in words)
            foreign = any(not w.isascii() for w in words)
            if (j > i and (known or foreign or all(t.pos_ == "PROPN" for t in doc[i : j + 1]))) or (
                j == i and (known or foreign) and (tok.pos_ == "PROPN" or not tok.is_sent_start)
            ) or (j == i and (tok.pos_ == "PROPN" or tok.is_sent_start) and _person_slot(doc, i)):
                results.append(self._result(start, end, 0.5, "unlisted"))
            i = j + 1
        return results + self._lowercase_foreign(doc, taken)

    def _lowercase_foreign(self, doc, taken: list) -> list[RecognizerResult]:
        """Lower-case words with diacritics that are no English word, in English text
        ("meeting notes: zdeňka dvořáková will send the draft"): names that lost their capitals."""
        from docsync.pii_context import is_common

        words = [t.text for t in doc if t.is_alpha]
        if sum(not w.isascii() for w in words) * 3 > len(words):
            return []  # not English text: diacritics say nothing there
        results = []
        for tok in doc:
            word = tok.text
            if (tok.is_lower and len(word) > 2 and not word.isascii() and _WORD_SHAPE.fullmatch(word)
                    and not is_common(word) and not is_common(fold(word).lower())
                    and not _overlaps(tok.idx, tok.idx + len(word), taken)):
                results.append(self._result(tok.idx, tok.idx + len(word), 0.5, "lowercase"))
        return results

    def _lowercase_names(self, doc) -> list[RecognizerResult]:
        """Names written in lower case: a known first name, then a known family name (in
        text with capitals, only names that are no English word: "edgars güneş")."""
        from docsync.pii_context import is_common

        first, last = name_lists()
        stop = _stop_words()
        caps = any(c.isupper() for c in doc.text)
        results = []
        for i, tok in enumerate(doc[:-1]):
            if tok.text in stop or not tok.is_alpha or not tok.is_lower or fold(tok.text) not in first:
                continue
            if caps and (is_common(tok.text) or is_common(doc[i + 1].text)):
                continue
            j = i + 1
            if j < len(doc) - 1 and len(doc[j].text.rstrip(".")) == 1 and doc[j].text[0].isalpha():
                j += 1  # middle initial
            tail = doc[j]
            if tail.is_alpha and tail.text not in stop and len(tail.text) > 1 and fold(tail.text) in last:
                results.append(self._result(tok.idx, tail.idx + len(tail.text), 0.5, "lowercase"))
        return results

    def _gazetteer(self, doc) -> list[RecognizerResult]:
        first, last = name_lists()
        labels = {i: ent.label_ for ent in doc.ents for i in range(ent.start, ent.end)}
        results = []
        i = 0
        while i < len(doc):
            tok = doc[i]
            if not (_capitalised(tok.text) and len(tok.text) > 1 and fold(tok.text) in first
                    and labels.get(i) not in _NOT_PERSON_LABELS and not tok.is_stop):
                i += 1
                continue
            j = i + 1  # then middle initials and one family name: "Ella H. Snider"
            while j < len(doc) and j - i < 3 and _initial(doc[j].text):
                j += 1
            if j < len(doc) and _capitalised(doc[j].text) and len(doc[j].text) > 1:
                tail = doc[j]
                if fold(tail.text) in _ORG_WORDS:  # "Chase Bank"
                    i = j + 1
                    continue
                if fold(tail.text) in last or fold(tail.text) in first or tok.pos_ == tail.pos_ == "PROPN":
                    results.append(self._result(tok.idx, tail.idx + len(tail.text), 0.6, "first+last"))
                    i = j + 1
                    continue
            if tok.pos_ == "PROPN" or not tok.is_sent_start:
                results.append(self._result(tok.idx, tok.idx + len(tok.text), 0.5, "first"))
            i += 1
        return results

    def _result(self, start: int, end: int, score: float, rule: str) -> RecognizerResult:
        return RecognizerResult(
            "PERSON",
            start,
            end,
            score,
            recognition_metadata={
                RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                "rule": rule,
            },
        )


def _person(start: int, end: int) -> RecognizerResult:
    return RecognizerResult(
        "PERSON", start, end, 0.5, recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: "DocsyncNamePropagation"}
    )


def _overlaps(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def propagate_names(text: str, results: list) -> list:
    """More mentions of persons in a text: the members of a list with a person in it, or
    mostly made of known names ("Kónya, Becker and Vasquez"); the other speakers of a
    transcript with a person speaking; then every other occurrence of a found name's words
    ("Asya Godina ... Asya", "Ján M. Novák ... calls me Ján")."""
    persons = [(r.start, r.end) for r in results if r.entity_type == "PERSON"]
    first, last = name_lists()
    covered = [(r.start, r.end) for r in results]
    extra: list[RecognizerResult] = []

    def add(spans: list[tuple[int, int]]) -> None:
        for s, e in spans:
            if not any(cs <= s and e <= ce for cs, ce in covered):
                extra.append(_person(s, e))
                covered.append((s, e))
            persons.append((s, e))

    for m in _LIST.finditer(text):
        members = [(w.start() + m.start(), w.end() + m.start()) for w in _WORD_SHAPE.finditer(m.group(0))]
        members = [(s, e) for s, e in members if text[s:e] not in ("and", "or")]
        if not all(_capitalised(text[s:e]) for s, e in members):
            continue
        known = sum(1 for s, e in members if fold(text[s:e]) in first or fold(text[s:e]) in last)
        if known * 2 > len(members) or any(_overlaps(s, e, persons) for s, e in members):
            add(members)
    speakers = [(m.start("name"), m.end("name")) for m in _SPEAKER.finditer(text)]
    speakers = [(s, e) for s, e in speakers if _capitalised(text[s:e])]
    if len(speakers) > 1 and any(_overlaps(s, e, persons) for s, e in speakers):
        add(speakers)
    words: set[str] = set()
    for start, end in persons:
        words |= {w for w in _WORD_SHAPE.findall(text[start:end]) if len(w) > 2 and _capitalised(w)}
    if words:
        alternatives = "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))
        for m in re.finditer(rf"{_START}(?:{alternatives}){_END}", text):
            add([(m.start(), m.end())])
    return extra


def docsync_recognizers() -> list:
    from docsync.pii_numbers import CardNumberRecognizer, IbanShapeRecognizer, PhoneShapeRecognizer

    return [NameRecognizer(), PhoneShapeRecognizer(), CardNumberRecognizer(), IbanShapeRecognizer()]
