"""Extra Presidio recognizers for what spaCy ``en_core_web_sm`` and Presidio's own
recognizers miss (measured with ``python -m bench.pii_leak``):

* names: a first-name gazetteer (US Census lists from the ``names`` package plus Faker's
  per-country lists) on capitalised words, the "Given I. Family" shape, cue phrases ("my
  name is", "Name:", "Mr."), first+family pairs in text without capitals, and more
  mentions of a name already found (other words of it, list members, transcript speakers);
* phone numbers in international/local shapes that ``phonenumbers`` rejects as invalid;
* card numbers of 12-19 digits that pass the Luhn check (any issuer prefix);
* IBAN-shaped strings whose checksum fails (what OCR makes of many IBANs).

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


def fold(word: str) -> str:
    """Upper-case ASCII form of a word ("Sörös" -> "SOROS") for gazetteer look-ups."""
    return unicodedata.normalize("NFKD", word).encode("ascii", "ignore").decode("ascii").upper()


@lru_cache(maxsize=1)
def name_lists() -> tuple[frozenset[str], frozenset[str]]:
    """(first names, family names), folded: the US Census lists of the ``names`` package
    plus the per-country lists of Faker's person providers (Latin-script locales)."""
    import importlib
    import pkgutil

    import faker.providers.person as faker_person
    import names

    def census(key: str) -> set[str]:
        with open(names.FILES[key], encoding="ascii") as fh:
            return {line.split()[0] for line in fh if line.strip()}

    first = census("first:male") | census("first:female")
    last = census("last")
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

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001, ANN201
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
                results.append(self._result(m.start("name"), m.end("name"), 0.6, "cue"))
            elif "name" in m.group(0).lower() or m.group(0).lower().startswith("call"):
                word = name.split()[0]  # lower-case text: "my name is vitoria"
                if word.lower() not in _stop_words():
                    results.append(self._result(m.start("name"), m.start("name") + len(word), 0.5, "cue"))
        for m in _WITH_INITIAL.finditer(text):
            words = m.group("name").split()
            if _capitalised(words[0]) and _capitalised(words[-1]) and fold(words[0]) not in _LABEL_WORDS:
                results.append(self._result(m.start("name"), m.end("name"), 0.6, "initial"))
        doc = getattr(nlp_artifacts, "tokens", None)
        if doc is not None:
            results += self._gazetteer(doc)
            if not any(c.isupper() for c in text):
                results += self._lowercase_names(doc)
        return results

    def _lowercase_names(self, doc) -> list[RecognizerResult]:  # noqa: ANN001
        """Text that lost its capitals: a known first name, then a known family name."""
        first, last = name_lists()
        stop = _stop_words()
        results = []
        for i, tok in enumerate(doc[:-1]):
            if tok.text in stop or not tok.is_alpha or fold(tok.text) not in first:
                continue
            j = i + 1
            if j < len(doc) - 1 and len(doc[j].text.rstrip(".")) == 1 and doc[j].text[0].isalpha():
                j += 1  # middle initial
            tail = doc[j]
            if tail.is_alpha and tail.text not in stop and len(tail.text) > 1 and fold(tail.text) in last:
                results.append(self._result(tok.idx, tail.idx + len(tail.text), 0.5, "lowercase"))
        return results

    def _gazetteer(self, doc) -> list[RecognizerResult]:  # noqa: ANN001
        first, last = name_lists()
        labels = {i: ent.label_ for ent in doc.ents for i in range(ent.start, ent.end)}
        results = []
        i = 0
        while i < len(doc):
            tok = doc[i]
            if not (_capitalised(tok.text) and len(tok.text) > 1 and fold(tok.text) in first
                    and labels.get(i) not in _NOT_PERSON_LABELS):
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


# --- phone numbers ------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+.:/-])"
    r"(?P<number>(?:\+\d{1,3}|00\d{1,3}|001)?[ .-]?(?:\(0\)[ ]?)?(?:\(\d{1,4}\)[ ]?)?"
    r"\d{1,8}(?:[ .-]\d{1,8}){0,5})"
    r"(?P<ext>[ ]?(?:x|ext\.?|#)[ ]?\d{1,5})?"
    r"(?!\w|[.,-]\d)"
)
_PHONE_CONTEXT = re.compile(
    r"(?i)\b(?:phone|tel|telephone|mobile|cell|cellphone|fax|call(?:ed|ing)?|office|desk|contact|reach|"
    r"text|sms|whatsapp|dial|ring|answer(?:ing)?|messages?|number|no\.?|hotline|extension)\b"
)
_AMOUNT_AFTER = re.compile(
    r"\s?(?:%|[$€£¥]|(?:EUR|USD|GBP|CHF|JPY|SEK|NOK|DKK|PLN|CZK|HUF)\b|(?:per ?cent|percent)\b)", re.I
)
_DATE_LIKE = re.compile(r"(?:\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4})")
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_SSN_SHAPE = re.compile(r"\d{3}-\d{2}-\d{4}")


class PhoneShapeRecognizer(EntityRecognizer):
    """Phone numbers by shape: 7-15 digits in groups, international prefixes, extensions.

    Shapes that are clearly phone numbers (a +/00 prefix, an area code in parentheses, a
    trunk 0, three or more groups, an extension) count on their own; two groups or a plain
    digit run only with a phone word nearby ("Phone:", "call me on", "... office")."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER"], name="DocsyncPhoneShapes", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001, ANN201
        results = []
        for m in _PHONE.finditer(text):
            number = m.group("number").strip(" .-")
            digits = sum(c.isdigit() for c in number)
            if not 7 <= digits <= 15 or _DATE_LIKE.fullmatch(number) or _IPV4.fullmatch(number):
                continue
            if _SSN_SHAPE.fullmatch(number) or text[max(0, m.start() - 1) : m.start()] in ("$", "€", "£", "¥"):
                continue
            groups = re.split(r"[ .()-]+", number.lstrip("+"))
            groups = [g for g in groups if g]
            after = text[m.end() : m.end() + 12]
            if _AMOUNT_AFTER.match(after):
                continue
            # "1 250 000" is an amount with thousands separators unless a phone word says otherwise
            amount_like = len(groups) >= 2 and len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])
            strong = not amount_like and (
                number[0] in "+("
                or number.startswith("00")
                or bool(m.group("ext"))
                or len(groups) >= 3
                or (number[0] == "0" and len(groups) >= 2)
            )
            before = text[max(0, m.start() - 40) : m.start()]
            context = bool(_PHONE_CONTEXT.search(before) or _PHONE_CONTEXT.search(after))
            if not (strong or context) or (len(groups) == 1 and (not context or digits < 8)):
                continue
            score = 0.7 if context else 0.5
            start = m.start() + m.group(0).find(number)
            results.append(
                RecognizerResult(
                    "PHONE_NUMBER", start, m.end() if m.group("ext") else start + len(number), score,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results


# --- card numbers -------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){11,18}(?![\w-]|[.,]\d)")
_CARD_CONTEXT = re.compile(r"(?i)\b(?:card|cc|credit|debit|visa|master ?card|amex|maestro|payment|pan)\b")


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class CardNumberRecognizer(EntityRecognizer):
    """12-19 digit numbers that pass the Luhn check, whatever the issuer prefix (Presidio's
    recognizer knows only some prefixes); 12-digit ones need a card word nearby. Any
    16-digit number counts too: the chunk suite would quarantine it otherwise."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["CREDIT_CARD"], name="DocsyncCardNumbers", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001, ANN201
        results = []
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group(0))
            valid = luhn_ok(digits)
            context = bool(_CARD_CONTEXT.search(text[max(0, m.start() - 40) : m.start()]))
            if len(digits) == 16:
                score = 0.7 if valid else 0.4
            elif valid and (len(digits) >= 13 or context):
                score = 0.6
            else:
                continue
            results.append(
                RecognizerResult(
                    "CREDIT_CARD", m.start(), m.end(), score,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results


# --- IBANs --------------------------------------------------------------------------------

_IBAN_COUNTRIES = set(
    "AD AE AL AT AZ BA BE BG BH BI BR BY CH CR CY CZ DE DJ DK DO EE EG ES FI FK FO FR GB GE GI GL GR GT "
    "HR HU IE IL IQ IS IT JO KW KZ LB LC LI LT LU LV LY MC MD ME MK MN MR MT MU NI NL NO OM PK PL PS PT "
    "QA RO RS RU SA SC SD SE SI SK SM SO ST SV TL TN TR UA VA VG XK YE".split()
)
# OCR reads "0" as "O", "G" as "C" and splits long tokens: "CBO 2RVXB0127...", "GB56HXDO8 81677...".
_IBAN_SHAPE = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}[0-9O][ ]?[0-9O](?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])")


_OCR_LOOKALIKES = {"C": "G", "G": "C", "D": "O", "O": "DQ", "Q": "O", "I": "LT", "L": "I", "T": "I",
                   "E": "F", "F": "EP", "P": "F", "U": "V", "V": "U", "H": "N", "N": "H", "B": "E"}
_IBAN_CONTEXT = re.compile(r"(?i)\b(?:iban|bic|swift|bank|account|transfer|wire|payment|remit)")


def _iban_country(code: str) -> bool:
    """A known IBAN country, also after undoing one OCR look-alike ("CB" for "GB")."""
    if code in _IBAN_COUNTRIES:
        return True
    return any(f"{a}{code[1]}" in _IBAN_COUNTRIES for a in _OCR_LOOKALIKES.get(code[0], "")) or any(
        f"{code[0]}{b}" in _IBAN_COUNTRIES for b in _OCR_LOOKALIKES.get(code[1], "")
    )


class IbanShapeRecognizer(EntityRecognizer):
    """IBAN-shaped strings whose checksum fails, which is what OCR makes of many IBANs
    (Presidio's recognizer requires a valid checksum): a known country code (or one OCR
    look-alike of it, or a bank word before it), 15-34 characters, at least 8 digits."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["IBAN_CODE"], name="DocsyncIbanShapes", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):  # noqa: ANN001, ANN201
        results = []
        for m in _IBAN_SHAPE.finditer(text):
            compact = m.group(0).replace(" ", "")
            if not 15 <= len(compact) <= 34:
                continue
            context = _IBAN_CONTEXT.search(text[max(0, m.start() - 60) : m.start()])
            if not (_iban_country(compact[:2]) or context):
                continue
            if sum(c.isdigit() for c in compact[4:]) < 8:
                continue
            results.append(
                RecognizerResult(
                    "IBAN_CODE", m.start(), m.end(), 0.6,
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: self.name,
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results


def docsync_recognizers() -> list:
    return [NameRecognizer(), PhoneShapeRecognizer(), CardNumberRecognizer(), IbanShapeRecognizer()]
