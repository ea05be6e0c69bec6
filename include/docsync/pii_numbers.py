"""Pattern recognizers for numbers that Presidio's own recognizers miss (measured with
``python -m bench.pii_leak``), registered by :func:`docsync.pii_recognizers.docsync_recognizers`:

* phone numbers in international/local shapes that ``phonenumbers`` rejects as invalid;
* card numbers of 12-19 digits that pass the Luhn check (any issuer prefix);
* IBAN-shaped strings whose checksum fails (what OCR makes of many IBANs).
"""

from __future__ import annotations

import re

from presidio_analyzer import EntityRecognizer, RecognizerResult

# --- phone numbers ------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+.:/-])"
    r"(?P<number>(?:\+\d{1,3}|00\d{1,3}|001)?[ .-]?(?:\(0\)[ ]?)?(?:\(\d{1,4}\)[ ]?)?"
    r"(?:\d{9,15}|\d{1,8}(?:[ .-]\d{1,8}){0,5}))"
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


_ID_BEFORE = re.compile(
    r"(?i)\b(?:id|cik|isbn|issn|doi|order|invoice|account|acct|file|ref(?:erence)?|serial|case|ticket|"
    r"patent|registration|tracking|policy|customer|employee|sku|part|lot|batch)\b[^\n\d]{0,12}$"
)
# Words that label a document's or a filing's number: "Commission file number: 000-30653",
# "Case No. 2:21-cv-01234". Any number right after one, in any grouping, is that identifier
# unless a phone word says otherwise (people's own numbers, "Customer: 0176 ...", stay phones).
_DOC_ID_BEFORE = re.compile(
    r"(?i)\b(?:file|case|docket|commission|registration|patent|serial|isbn|issn|doi|cik|ticket|order|invoice|"
    r"ref(?:erence)?)\b[^\n\d]{0,12}$"
)
_PHONE_WORD = re.compile(r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|call|dial|whatsapp|sms|hotline)\b")
_PLAN_REGIONS = ("US", "GB", "DE", "FR", "IT", "ES", "NL", "PL", "SE", "CZ", "CH", "AT", "IN", "BR", "JP", "AU")


def _unbroken_phone(number: str, digits: int, context: bool) -> bool:
    if number.startswith("+") or (number.startswith("00") and number[2:3] not in ("0", "")):
        return 8 <= digits <= 15
    if number.startswith("00"):
        return False  # zero-padded identifiers ("0000320193", an SEC CIK)
    if number[0] == "0" and 9 <= digits <= 12:
        return True
    if context:
        return digits >= 8
    return 9 <= digits <= 11 and _valid_somewhere(number)


def _mobile_3_3_3(number: str) -> bool:
    import phonenumbers

    digits = re.sub(r"\D", "", number)
    if len(digits) != 9:
        return False
    for region in ("ES", "PL"):
        parsed = phonenumbers.parse(digits, region)
        if phonenumbers.is_valid_number(parsed) and phonenumbers.number_type(parsed) in (
            phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE
        ):
            return True
    return False


def _valid_somewhere(number: str) -> bool:
    import phonenumbers

    for region in _PLAN_REGIONS:
        try:
            if phonenumbers.is_valid_number(phonenumbers.parse(number, region)):
                return True
        except phonenumbers.NumberParseException:
            continue
    return False


class PhoneShapeRecognizer(EntityRecognizer):
    """Phone numbers by shape: 7-15 digits in groups, international prefixes, extensions.

    Shapes that are clearly phone numbers (a +/00 prefix, an area code in parentheses, a
    trunk 0, three or more groups, an extension) count on their own; two groups or a plain
    digit run only with a phone word nearby ("Phone:", "call me on", "... office")."""

    def __init__(self) -> None:
        super().__init__(supported_entities=["PHONE_NUMBER"], name="DocsyncPhoneShapes", supported_language="en")

    def load(self) -> None:
        pass

    def analyze(self, text, entities, nlp_artifacts=None):
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
            if amount_like and len(groups) == 3 and _mobile_3_3_3(number):
                amount_like = False  # "612 345 678": how Spain and Poland write mobile numbers
            strong = not amount_like and (
                number[0] in "+("
                or number.startswith("00")
                or bool(m.group("ext"))
                or len(groups) >= 3
                or (number[0] == "0" and len(groups) >= 2)
            )
            before = text[max(0, m.start() - 40) : m.start()]
            if number[0] not in "+(" and _DOC_ID_BEFORE.search(before[-25:]) and not _PHONE_WORD.search(before):
                continue
            context = bool(_PHONE_CONTEXT.search(before) or _PHONE_CONTEXT.search(after))
            if len(groups) == 1:
                # one unbroken run: an international prefix, a trunk 0, a phone word, or a
                # number valid in a common numbering plan ("3331234567", "512345678")
                if not (_unbroken_phone(number, digits, context) and not _ID_BEFORE.search(before[-25:])):
                    continue
            elif not (strong or context):
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

    def analyze(self, text, entities, nlp_artifacts=None):
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

    def analyze(self, text, entities, nlp_artifacts=None):
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
