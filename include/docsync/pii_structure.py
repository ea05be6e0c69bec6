"""Document structure as evidence against PERSON (issue 21): headings, code and places.

A heading is no sentence ("(1) In General.", "Notice and Manner of Conducting the Election",
"TERMS AND CONDITIONS"): its capitalised words are title case, not names. Code names
things too (``class Foo``, ``Cls.x``, ``try2_stmt``, ``JobBase``), and so do place
pairs ("Washington, D.C.", "Austin, Texas", "Maple Grove, MN"). Some evidence only shows
elsewhere in the same document (``Mac®`` in the text, ``Mac`` alone as a heading;
```Astropy``` in a code span, ``Astropy`` in prose): :func:`document_context` collects it
over all the blocks of a document, which :func:`docsync.pii.anonymize_many` analyses together.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
# Paragraph and section numbers that open a run-in heading: "(1)", "(a)", "(iv)", "3.",
# "2.1", "§ 704.", "Sec. 14-303.", "Rule 2008.", "Item 7.", "Section 3.", "Article III."
_ENUMERATOR = re.compile(
    r"[ \t]*(?:[(\[](?:\d{1,3}|[A-Za-z]|[ivxlcIVXLC]{1,6})[)\]]|(?:\d{1,3}|[A-Za-z])[.)]|\d{1,3}(?:\.\d{1,3})+\.?"
    r"|(?:§+|Sec\.|Section|Rule|Article|Art\.|Item|Chapter|Part|Appendix|Annex|Schedule|Exhibit)[ \t]*"
    r"[\dA-Z][\w.-]*\.?)(?=[ \t])[ \t]*"
)
_CLAUSE_END = re.compile(r"[.;:](?:\s|$)|\s-+\s?|\u2014")  # a run-in heading ends at its period or dash
# Inline TeX mathematics ("$f(x) = e^{\pi x}$"): no name inside. Needs a TeX character, so
# that "$5 to Jane Doe and $" is never taken for mathematics.
_TEX = re.compile(r"(?<![\\$\w])\$(?![\d\s])[^$\n]{0,200}?[\\^_{}=][^$\n]{0,200}?\$")


# The words title case leaves in lower case: articles, conjunctions, short prepositions.
# Any other lower-case word ("They had 6:", "Dzhambek is from ...") makes a clause a sentence.
_MINOR = frozenset(
    "a an the and or nor but of to in on at by for from with as into onto upon under over after before "
    "between against among about per via vs v than not its their his her".split()
)


def heading_clause(text: str, start: int, end: int) -> tuple[bool, list[str], bool]:
    """Whether the candidate sits in a heading (or a run-in heading), the heading's other
    content words, and whether it has lower-case minor words ("of", "to"). A heading starts its line (after a paragraph number), has at most
    14 words, and its words are all capitalised but articles, conjunctions and prepositions, as are those of the clauses before
    it on the line ("Dismissing a Case; Suspending Proceedings"); it has two or more of them
    ("Duty to File Documents", "Notice and Manner of Conducting the Election") or one after a
    paragraph number ("(1) In General.", "(a) Scope."). An all-caps line is one too."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line = text[line_start : line_end if line_end >= 0 else len(text)]
    offset = 0
    while (m := _ENUMERATOR.match(line, offset)) and m.end() > offset:  # "(a) (1) In General."
        offset = m.end()
    if start - line_start < offset:
        return False, [], False
    clauses = _CLAUSE_END.split(line[offset : start - line_start])
    before, after = clauses[-1], _CLAUSE_END.split(line[end - line_start :])[0]
    others = _WORD.findall(before) + _WORD.findall(after)
    words = others + _WORD.findall(text[start:end])
    letters = [c for c in line if c.isalpha()]
    minor = any(w in _MINOR for w in words)
    if len(letters) > 3 and all(c.isupper() for c in letters) and len(words) <= 14:
        return True, [w for w in others if w.lower() not in _MINOR], minor
    if not words or len(words) > 14 or not all(_title_case(c) for c in clauses[:-1]):
        return False, [], False
    content = [w for w in words if w.lower() not in _MINOR]
    if not content or not all(w[0].isupper() for w in content):
        return False, [], False
    others = [w for w in others if w.lower() not in _MINOR]
    # one content word: a heading only when numbered and the clause starts the line
    return len(content) >= 2 or (offset > 0 and len(clauses) == 1), others, minor


def _title_case(clause: str) -> bool:
    content = [w for w in _WORD.findall(clause) if w.lower() not in _MINOR]
    return all(w[0].isupper() for w in content)


# --- code -----------------------------------------------------------------------------------

_NAME_PREFIXES = ("Mc", "Mac", "De", "Di", "Da", "Du", "Le", "La", "Van", "Von", "Fitz", "St", "O")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2}[a-z]")
# "Cls()", "Foo(object)", "Cls.x", "Foo = f1(...)"; not "Smith(2019)" or a footnote "Smith[1]"
_IDENT_AFTER = re.compile(r"\((?:\)|[A-Za-z_][\w.]*(?:,[ \t]*[A-Za-z_][\w.=]*)*\))|\.[a-z_]\w*[.(=]|[ \t]*=(?!=)|::")
_IDENT_BEFORE = re.compile(r"(?:\b(?:class|def|import)[ \t]+|\w\.)\Z")
_CODE_SPAN = re.compile(r"`([^`\n]{1,80})`")
_DOTTED = re.compile(r"(?<![\w@.-])([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+)(?![\w@-])")
_IMPORT = re.compile(r"\b(?:import|from)[ \t]+([A-Za-z_][\w.]*)")
_URL_HOST = re.compile(r"\b(?:https?://|www\.)([\w.-]+)")


def camel_case(word: str) -> bool:
    """An identifier written in CamelCase ("JobBase", "PostgreSQL", "NumPy"), not a name
    with an inner capital ("McDonald", "DeVito", "MacArthur", "O'Neil")."""
    if not _CAMEL.search(word[1:]) or not word.isalpha():
        return False
    humps = re.findall(r"[A-Z][a-z]*", word)
    return len(humps) > 2 or not any(word.startswith(p) and word[len(p) : len(p) + 1].isupper() for p in _NAME_PREFIXES)


def code_like(text: str, start: int, end: int) -> bool:
    """The candidate is code: an identifier with an underscore, an assignment or a call in
    it (``try2_stmt``, ``Foo = f1(arg)``, ``f1(arg)(f2(Foo``), in CamelCase, followed by a call or
    an attribute (``Cls()``, ``Cls.x``), or after a keyword (``class Foo``, ``import foo``)."""
    value = text[start:end]
    # not digits or brackets alone: OCR reads "Wi11iam", spaCy takes "Smith[1"
    if re.search(r"[_=]|\b[a-z_]\w*\(", value):
        return True
    words = _WORD.findall(value)
    if words and all(camel_case(w) for w in words):
        return True
    return bool(_IDENT_AFTER.match(text, end)) or bool(_IDENT_BEFORE.search(text[max(0, start - 12) : start]))


def code_words(text: str) -> set[str]:
    """Words the text uses as code (folded): in code spans, dotted identifiers, imports and
    URL host names. E-mail addresses are left out: their words are often a person's name."""
    from docsync.pii import EMAIL_PATTERN
    from docsync.pii_recognizers import fold, name_lists

    first, last = name_lists()
    text = re.sub(EMAIL_PATTERN, " ", text, flags=re.IGNORECASE)
    found: set[str] = set()
    for pattern in (_CODE_SPAN, _DOTTED, _IMPORT, _URL_HOST):
        for m in pattern.finditer(text):
            words = [w for w in re.findall(r"[^\W\d_]+", m.group(1)) if len(w) > 2]
            if all(fold(w) in first or fold(w) in last for w in words):
                continue  # a user name ("login: anna.berg") is a person's name, not code
            found.update(w.casefold() for w in words)
    return found


# --- names of things named after persons --------------------------------------------------

# A statute, rule or doctrine named after persons ("the Sarbanes-Oxley Act", "Dodd-Frank Wall
# Street Reform Act", "Miranda Rule") names the law, not the persons.
_LAW_AFTER = re.compile(
    r"(?:-[A-Z][\w'’]*)*(?:[ \t]+[A-Z][\w'’-]*){0,4}[ \t]+(?:Act|Acts|Amendment|Amendments|Treaty|Doctrine|Rule|Rules|Code|Convention)\b"
)


def law_name(text: str, start: int, end: int) -> bool:
    """The candidate is part of the name of a law ("Sarbanes-Oxley Act")."""
    return bool(_LAW_AFTER.match(text, end))


# --- places ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def place_names() -> tuple[frozenset[str], frozenset[str]]:
    """(country and US state names, folded; US state and territory abbreviations), from
    Faker's English address providers."""
    import faker.providers.address.en as en
    import faker.providers.address.en_US as en_us

    names = {n.casefold() for n in list(en.Provider.countries) + list(en_us.Provider.states)}
    names |= {"district of columbia", "england", "scotland", "wales", "northern ireland", "hong kong", "taiwan"}
    abbreviations = set(en_us.Provider.states_abbr) | {"DC", "D.C.", "PR", "GU", "VI"}
    return frozenset(names), frozenset(abbreviations)


_STATE_AFTER = re.compile(r",?[ \t]+([A-Z][A-Za-z.]*(?:[ \t]+[A-Z][a-z]+){0,2})")


def place_name(value: str) -> bool:
    """A country or US state ("India", "Hong Kong", "Oregon")."""
    return " ".join(_WORD.findall(value)).casefold() in place_names()[0]


def place_like(text: str, start: int, end: int) -> bool:
    """The candidate holds a country or US state after a comma ("Austin, Texas"), or is
    followed by one ("Washington, D.C.", "Maple Grove, MN 55369", "Eugene, Oregon")."""
    names, abbreviations = place_names()
    if any(part.strip().casefold() in names for part in text[start:end].split(",")[1:]):
        return True
    m = _STATE_AFTER.match(text, end)
    if not m or "," not in text[end : m.start(1)]:
        return False
    follower = m.group(1)
    words = follower.split()
    return (words[0] in abbreviations or words[0].rstrip(".,;") in abbreviations
            or any(" ".join(words[:n]).rstrip(".,;").casefold() in names for n in range(1, len(words) + 1)))


# --- the document ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DocContext:
    """Evidence that holds for a whole document: the words it marks as trademarks and the
    words it uses as code (both folded)."""

    trademarks: frozenset[str] = frozenset()
    code: frozenset[str] = frozenset()


def document_context(texts: list[str]) -> DocContext:
    from docsync.pii_context import trademark_words

    trademarks: set[str] = set()
    code: set[str] = set()
    for text in texts:
        trademarks |= trademark_words(text)
        code |= code_words(text)
    return DocContext(frozenset(trademarks), frozenset(code))


def math_spans(text: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _TEX.finditer(text)]
