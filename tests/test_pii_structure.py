"""docsync.pii_structure (issue 21): headings, code and places are evidence against PERSON,
through docsync.pii with real Presidio + spaCy en_core_web_sm, and through the parsers for the
issue's two documents: a trustee handbook as DOCX and an SEC 10-K in inline XBRL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from docsync import pii
from docsync.config import load_settings
from docsync.parse import parse_document
from docsync.pii_structure import camel_case, code_like, document_context, heading_clause, place_like
from tests.test_pii_context import clean

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    pii.get_analyzer()  # load spaCy once per module
    home = tmp_path_factory.mktemp("pii-structure-home")
    return load_settings().replace(home=home, qdrant_path=home / "qdrant")




@pytest.mark.parametrize(
    "text",
    [
        "(1) In General. On motion under § 707(b), the court may dismiss the case.",
        "(a) In General.",
        "(1) Proposed Use, Sale, or Lease of Property. Subject to Rule 6004, a notice must include:",
        "(2) Notice and Manner of Conducting the Election. A trustee's election must be conducted as Rule 2006 provides.",
        "(n) Notice of an Order for Relief in a Consumer Case. In a voluntary case the clerk gives notice.",
        "(5) to the Secretary of the Treasury at Washington, D.C.",
        "The company is headquartered in Austin, Texas, with plants in Cork, Ireland and Eugene, Oregon.",
        "Write to 12800 Arbor Lakes Parkway, Maple Grove, MN 55369.",
        "Net sales grew in India, Hong Kong and Taiwan.",
        "Changed in version 3.8: Prior to Python 3.8, the class could not be used.",
        "    class Foo(object):\n        pass\n    inst = Cls()\n    inst.x = Cls.x + 1",
        "try_stmt ::= try1_stmt | try2_stmt | try3_stmt",
        "Each job subclasses JobBase and uses the HarborTestClient fixture.",
        "where $f(x) = e^{\\pi x}$ holds.",
        "Compliance under Section 404(b) of the Sarbanes-Oxley Act is required.",
        "Commission file number: 000-30653",
    ],
)
def test_no_person_in_headings_code_places_and_laws(text, settings):
    assert "<PERSON>" not in clean(text, settings)
    assert "<PHONE_NUMBER>" not in clean(text, settings)


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("Letter from John Smith", ["John", "Smith"]),
        ("Dr. Anna Berg's report", ["Anna", "Berg"]),
        ("Chapter 3. Memorandum of Mr. Kowalczyk", ["Kowalczyk"]),
        ("Judge Maria Kowalski ruled that the commission is a cap.", ["Maria", "Kowalski"]),
        ("For questions contact jan.novak@example.com or Jan Novák in Human Resources.", ["novak", "Novák"]),
        ("They had 6: Romi, Erik, Amy, Nathaniel, Donald and Kristen.", ["Amy", "Erik"]),
        ("I gave the drawings to Rose; Frank said they were late.", ["Rose", "Frank"]),
        ("We acknowledge support from Kathryn Johnston during the genesis of this project.", ["Kathryn"]),
        ("Maha Cazares\n\nChiclana de la Frontera\nSpain", ["Cazares"]),
        ("John Smith[1] said so; Smith(2019) agreed.", ["John", "Smith"]),
    ],
)
def test_names_in_headings_and_sentences_are_still_caught(text, names, settings):
    out = clean(text, settings)
    for name in names:
        assert name not in out, out


def test_document_context_spans_blocks(settings):
    """A trademark or a code name in one block of a document is one in every block."""
    blocks = ["Mac", "Mac® is the Company's line of personal computers.",
              "Astropy", "`Gala` builds on `Astropy` and astropy.units."]
    out, _ = pii.anonymize_many(blocks, settings)
    assert out == blocks
    context = document_context(blocks)
    assert "mac" in context.trademarks and "astropy" in context.code
    # e-mail addresses are no code: their words are names
    assert "novak" not in document_context(["mail jan.novak@example.com"]).code
    # nor user names
    out, _ = pii.anonymize_many(["Log in as anna.berg on the portal.", "Ask Anna Berg for access."], settings)
    assert "Berg" not in out[1]


def test_helpers():
    text = "(a) (1) In General. The court may act."
    start = text.index("General")
    assert heading_clause(text, start, start + 7)[0]
    sentence = "They had 6: Gaetane, Hannah and Derek."
    assert not heading_clause(sentence, sentence.index("Derek"), sentence.index("Derek") + 5)[0]
    assert camel_case("JobBase") and camel_case("PostgreSQL") and not camel_case("McDonald") and not camel_case("DeVito")
    assert code_like("x = Cls()", 4, 7) and not code_like("ask Anna (HR)", 4, 8)
    dc = "at Washington, D.C."
    assert place_like(dc, 3, 13) and not place_like("Anna, who called", 0, 4)


def _handbook_docx() -> bytes:
    """tests/data/pii/trustee_handbook.txt as a Word document: '#' lines are headings."""
    import docx

    document = docx.Document()
    for line in (DATA / "pii" / "trustee_handbook.txt").read_text(encoding="utf-8").splitlines():
        level = len(line) - len(line.lstrip("#"))
        if level:
            document.add_heading(line[level:].strip(), level=level)
        elif line.strip():
            document.add_paragraph(line)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def test_trustee_handbook_docx_is_readable_text_without_persons(settings):
    """Issue 21's done criterion, on a handbook-style DOCX: headings ("Duty to File Documents",
    "Conversion or Dismissal", "Termination of Trustee", "(1) In General."), citations ("Fed.
    R. Bankr. P. 2008") and defined terms ("this Handbook") are indexed as written."""
    parsed = parse_document(_handbook_docx(), "handbook.docx", settings)
    texts, counts = pii.anonymize_many([b.text for b in parsed.blocks], settings)
    text = "\n".join(texts)
    assert "<PERSON>" not in text and not counts, counts
    for phrase in ("Duty to File Documents", "Conversion or Dismissal", "Termination of Trustee", "(1) In General.",
                   "Fed. R. Bankr. P. 2008", "this Handbook", "Washington, D.C.", "Notice and Manner of Reporting"):
        assert phrase in text


def test_sec_10k_inline_xbrl_is_readable_text_without_persons(settings):
    parsed = parse_document((DATA / "formats" / "example-10k-1p.html").read_bytes(), "10k.html", settings)
    texts, counts = pii.anonymize_many([b.text for b in parsed.blocks], settings)
    text = "\n".join(texts)
    assert "PERSON" not in counts and "<PERSON>" not in text
    assert "Sarbanes-Oxley Act" in text and "Commission file number: 000-30653" in text and "Galaxy Gaming, Inc." in text
