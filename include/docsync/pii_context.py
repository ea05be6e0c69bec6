"""What a name is not: evidence against PERSON candidates (measured with
``python -m bench.overredaction`` on real low-PII documents and ``bench.pii_leak``).

The name rules of :mod:`docsync.pii_recognizers` and spaCy fire on capitalised words; in
legal, financial and technical prose most capitalised words are headings ("Duty to File
Documents"), defined terms ("this Handbook", "the Licensor"), citations ("Fed. R. Bankr. P.
2008"), organisations, places and products. A PERSON candidate is dropped when:

* it lies inside a citation or a code span (`` `Gala` ``);
* spaCy labels its words as an organisation, place, product, law, ... and not as a person;
* every word of it is an ordinary English word (Webster's lower-case entries, stop words)
  or an all-caps word of one, unless a cue names it ("Mr. Grant", "my name is Will") or it is
  a given name + family name pair in running text ("Grant Young said");
* a determiner stands before it ("this Handbook", "the Debtor") and it is no known name.
"""

from __future__ import annotations

import re
from functools import lru_cache

from docsync.pii_structure import (
    DocContext,
    code_like,
    document_context,
    heading_clause,
    law_name,
    math_spans,
    place_like,
    place_name,
)

_NO_CONTEXT = DocContext()
# spaCy labels that say "not a person" for the words they cover
NOT_PERSON_LABELS = frozenset(
    {"ORG", "GPE", "LOC", "FAC", "PRODUCT", "LAW", "EVENT", "WORK_OF_ART", "NORP", "LANGUAGE",
     "DATE", "TIME", "MONEY", "PERCENT", "QUANTITY", "CARDINAL", "ORDINAL"}
)
_DETERMINERS = frozenset(
    "the this that these those such said any each every a an our its their your no another either".split()
)
# Legal and bibliographic citations: chains of abbreviations ending in a number or a section
# sign ("Fed. R. Bankr. P. 2008", "11 U.S.C. § 704", "Cal. Civ. Proc. Code 1010"), including
# the reporter form "123 F.3d 456".
_ABBREV = r"(?:[A-Z][A-Za-z]{0,7}\.|[A-Z]\.(?:[A-Z]\.)+|§+)"
CITATION = re.compile(
    rf"(?<![\w.])(?:{_ABBREV}[ \t]*){{2,}}(?:[ \t]*\d[\w.()-]*)"
    rf"|\b\d+[ \t]+(?:{_ABBREV}[ \t]*){{1,4}}(?:\dd|\d)?[ \t]*\d+"
)
_CODE = re.compile(r"`[^`\n]{1,80}`")
_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")


@lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Lower-case entries of Webster's 2nd (the ``english-words`` package): ordinary words,
    proper nouns excluded (they are capitalised there)."""
    from english_words import get_english_words_set
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(w for w in get_english_words_set(["web2"], alpha=True) if w.islower()) | frozenset(STOP_WORDS)


_SUFFIXES = (("ies", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""), ("ing", "e"), ("'s", ""))


def is_common(word: str) -> bool:
    """An ordinary English word, whatever its case and inflection ("Duty", "TRUSTEE",
    "Proceedings", "Rendered"); Webster's lists base forms only."""
    words = common_words()
    low = word.lower()
    if low in words:
        return True
    return any(low.endswith(end) and len(low) - len(end) > 2 and low[: -len(end)] + add in words
               for end, add in _SUFFIXES)


def all_common(text: str) -> bool:
    words = [w for w in _WORD.findall(text) if len(w) > 1]
    return bool(words) and all(is_common(w) for w in words)


def protected_spans(text: str) -> list[tuple[int, int]]:
    """Citations, code spans and TeX mathematics: no person is named inside them."""
    return ([(m.start(), m.end()) for m in CITATION.finditer(text)] + [(m.start(), m.end()) for m in _CODE.finditer(text)]
            + math_spans(text))


# A word marked as a trademark (``Mac®``, ``AirPods Max®``, ``Vision Pro™``) names a product,
# not a person, wherever it stands in the same text (headings, lists without the mark).
_TRADEMARK = re.compile(r"([^\W\d_][\w’'-]*(?:[ \u00a0][^\W\d_][\w’'-]*){0,2})\s?(?:®|™|\(R\)|\(TM\)|TM\b)")
# Continents, oceans and world regions: a span of two or more words holding one ("Asia
# Pacific", "Latin America", "Sub-Saharan Africa") is a place.
REGION_WORDS = frozenset({
    "africa", "america", "americas", "antarctica", "arctic", "asia", "atlantic", "balkans", "caribbean", "eurasia",
    "europe", "levant", "mediterranean", "oceania", "pacific", "scandinavia",
})


def trademark_words(text: str) -> frozenset[str]:
    """The words the text marks as trademarks (folded)."""
    return frozenset(w.casefold() for m in _TRADEMARK.finditer(text) for w in _WORD.findall(m.group(1)))


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return any(s <= start and end <= e for s, e in spans)


PLACE_LABELS = frozenset({"GPE", "LOC", "FAC"})


def _labels(doc, start: int, end: int) -> set[str]:
    """spaCy labels of entities that cover the whole candidate (a label on one word of
    "Solveig Ødegård" says little about the pair)."""
    if doc is None:
        return set()
    return {ent.label_ for ent in doc.ents if ent.start_char <= start and end <= ent.end_char}


def _determiner_before(text: str, start: int) -> bool:
    words = text[max(0, start - 12) : start].split()
    return bool(words) and words[-1].lower() in _DETERMINERS


def _rule(result) -> str | None:
    meta = result.recognition_metadata or {}
    return meta.get("rule") or meta.get("recognizer_name")


def keep_person(text: str, result, doc, protected: list[tuple[int, int]], names: tuple,
                context: DocContext = _NO_CONTEXT) -> bool:
    """Whether a PERSON candidate survives the evidence against it."""
    start, end = result.start, result.end
    value = text[start:end]
    if _inside(start, end, protected):
        return False
    rule = _rule(result)
    if rule == "cue":
        return True
    folded = [w.casefold() for w in _WORD.findall(value) if len(w) > 1]
    if folded and all(w in context.trademarks for w in folded):
        return False  # "Mac", "AirPods Max": marked as trademarks in this document
    if folded and all(w in context.code for w in folded):
        return False  # "Astropy": the document uses it as code (`Astropy`, astropy.units)
    if len(folded) > 1 and any(w in REGION_WORDS for w in folded):
        return False  # "Asia Pacific", "Latin America", "Rest of Asia Pacific"
    if code_like(text, start, end):
        return False  # "class Foo", "Cls.x", "try2_stmt", "JobBase"
    if law_name(text, start, end):
        return False  # "Sarbanes-Oxley Act": a law named after persons
    if place_like(text, start, end):
        return False  # "Washington, D.C.", "Austin, Texas", "Maple Grove, MN"
    propagated = rule == "DocsyncNamePropagation"  # another mention of a name kept already
    first, last = names
    words = [w for w in _WORD.findall(value) if len(w) > 1]
    known = [w for w in words if _fold(w) in first or _fold(w) in last or not w.isascii()]
    listed_pair = (len(words) > 1 and _fold(words[0]) in first
                   and all(_fold(w) in first or _fold(w) in last for w in words[1:]))
    common = all_common(value)
    in_heading, content, minor = heading_clause(text, start, end)
    # a heading of ordinary words ("Notice and Manner of Conducting the Election", "(1) In
    # General."); two capitalised words alone ("Maha Cazares") or a list of names ("Minutes
    # by Ella H. Snider and Kónya, Becker and Vasquez") are no such heading
    plain_heading = in_heading and all(is_common(w) for w in content) and (len(content) != 1 or minor)
    heading = common and (value.isupper() or plain_heading)
    labels = _labels(doc, start, end)
    if rule == "initial":  # "Ella H. Snider": the shape is strong evidence, whatever spaCy says
        return not heading
    if plain_heading and content and not (listed_pair or (known and "PERSON" in labels)):
        # a heading is no sentence: its capitalised words are title case, not names ("Support
        # for Astropy"), unless a given name + family name pair ("Letter from John Smith") or
        # a listed name spaCy calls PERSON ("Report of Kowalski")
        return False
    if place_name(value) and "PERSON" not in labels:
        return False  # "India", "Hong Kong", "Oregon"
    # a place is a place; on names that are no English word, en_core_web_sm's ORG/NORP/...
    # labels are weak (it calls many foreign family names ORG or GPE, "Kathryn Johnston" FAC)
    if propagated:  # another mention of a name kept elsewhere in the text
        against = labels & PLACE_LABELS
        if heading:
            return False  # "Notice and Manner of ...": a list in a heading
    elif listed_pair and not common:
        against = labels & {"LOC"}
    elif len(words) > 1 and (len(known) == len(words) or _fold(words[0]) in first):
        # "Elle Sandström", "Hanna Ukkonen": a known given name beats the small model's ORG/GPE
        against = labels & ({"LOC", "FAC"} if not common else NOT_PERSON_LABELS)
    elif len(words) == 1 and known and not is_common(words[0]):
        listed = _fold(words[0]) in first or _fold(words[0]) in last
        against = labels & ({"LOC", "FAC"} if _fold(words[0]) in first or not listed else PLACE_LABELS)
    else:
        against = labels & NOT_PERSON_LABELS
    if against and "PERSON" not in labels:
        return False
    if propagated:
        return True
    if _determiner_before(text, start) and not known and "PERSON" not in labels:
        return False  # "this Handbook", "the Licensor"
    if common:
        # "Frank", "Grant Young" in running text are names; "Duty to File Documents", "this
        # Handbook", "DISTRIBUTION", "Incompetent Person" are not; one ordinary word alone
        # ("Prior to Python 3.8", "in a Consumer Case": census family names only) must be a
        # census given name ("Mary", "Frank"), or spaCy or the sentence must say so ("thanks
        # to Reed", "White said")
        if heading or _determiner_before(text, start) or len(known) != len(words):
            return False
        return (len(words) > 1 or _fold(words[0]) in census_given_names() or "PERSON" in labels
                or person_slot(text, start, end))
    return True


_SLOT_WORD = re.compile(r"[A-Za-z]+")


def person_slot(text: str, start: int, end: int) -> bool:
    """A place where sentences name a person: "thanks to X", "according to X", "X said"."""
    from docsync.pii_recognizers import _SLOT_AFTER, _SLOT_BEFORE

    before = _SLOT_WORD.findall(text[max(0, start - 20) : start])
    after = _SLOT_WORD.match(text[end : end + 20].lstrip(" \t"))
    return bool(before and before[-1].lower() in _SLOT_BEFORE) or bool(after and after.group(0).lower() in _SLOT_AFTER)


def census_given_names() -> frozenset[str]:
    from docsync.pii_recognizers import census_given_names

    return census_given_names()


def _fold(word: str) -> str:
    from docsync.pii_recognizers import fold

    return fold(word)


@lru_cache(maxsize=1)
def _stop() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def filter_persons(text: str, results: list, doc, context: DocContext | None = None) -> list:
    """``results`` without the PERSON candidates that the evidence says are no person;
    ``context`` is what the whole document says (:func:`docsync.pii_structure.document_context`),
    by default this text alone."""
    from docsync.pii_recognizers import name_lists

    protected = protected_spans(text)
    names = name_lists()
    context = document_context([text]) if context is None else context
    return [r for r in results
            if r.entity_type != "PERSON" or keep_person(text, r, doc, protected, names, context)]
