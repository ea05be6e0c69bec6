"""HTML in any flavour (HTML, XHTML, inline XBRL, HTML behind an XML prolog), other XML, and
EPUB (XHTML chapters in spine order).

Inline XBRL (SEC filings) is HTML whose numbers are wrapped in ``ix:`` elements: the visible
text and tables are partitioned as HTML; the hidden ``ix:header`` (contexts, units, hidden
facts) is taken out first, and its hidden facts are kept as ``concept: value`` text.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import PurePosixPath
from xml.etree import ElementTree

from docsync.errors import Stage
from docsync.parse import Block, ParsedDocument, elements_to_blocks, parse_failure
from docsync.parsers.text import decode_text

HTML_ROOT = re.compile(r"<html[\s>]", re.I)
_PROLOG = re.compile(r"^\s*<\?xml[^>]*\?>", re.I)
_IX_HEADER = re.compile(r"<ix:header\b.*?</ix:header\s*>", re.I | re.S)
_IX_FACT = re.compile(r"<ix:non(?:Numeric|Fraction)\b[^>]*\bname=\"([^\"]+)\"[^>]*>(.*?)</ix:non(?:Numeric|Fraction)>", re.I | re.S)
_TAGS = re.compile(r"<[^>]+>")
_DISPLAY_NONE = re.compile(r"<div\b[^>]*display:\s*none[^>]*>\s*</div>", re.I)
MAX_EPUB_CHAPTERS = 2000


def is_html(text_head: str) -> bool:
    """True for a document whose root is ``<html>`` (after any prolog, doctype or comments)."""
    return bool(HTML_ROOT.search(text_head[:65536]))


def hidden_facts(header: str) -> list[str]:
    """``concept: value`` lines of the hidden inline-XBRL facts."""
    facts = []
    for name, value in _IX_FACT.findall(header):
        value = " ".join(_TAGS.sub(" ", value).split())
        if value:
            facts.append(f"{name}: {value}")
    return facts


def _never_narrative(text: str) -> bool:
    """Stands in for unstructured's ``is_possible_narrative_text`` in its HTML partitioner, where
    it only tells ``NarrativeText`` from ``Text`` (spaCy sentence tokenisation of every
    paragraph): docsync reads the two alike (:func:`docsync.parse.elements_to_blocks`), and that
    test was 90% of the time of partitioning a Markdown document. Headings, list items,
    addresses, e-mail addresses and the texts it drops are still decided by unstructured."""
    return False


def skip_narrative_classification() -> None:
    """Make unstructured's HTML partitioner (HTML, Markdown, e-mail bodies) skip its
    NarrativeText/Text decision in this process (idempotent; the blocks docsync makes are the
    same: tests/test_parsers.py compares them)."""
    global UNSTRUCTURED_NARRATIVE_TEST
    from unstructured.partition.html import parser

    if parser.is_possible_narrative_text is not _never_narrative:
        UNSTRUCTURED_NARRATIVE_TEST = parser.is_possible_narrative_text
        parser.is_possible_narrative_text = _never_narrative


UNSTRUCTURED_NARRATIVE_TEST = None  # unstructured's own test, kept for the test that compares the two


def html_blocks(text: str, path: str) -> list[Block]:
    from unstructured.partition.html import partition_html

    skip_narrative_classification()
    text = _PROLOG.sub("", text, count=1)
    facts: list[str] = []
    if "<ix:" in text or "<IX:" in text:
        for header in _IX_HEADER.findall(text):
            facts += hidden_facts(header)
        text = _DISPLAY_NONE.sub("", _IX_HEADER.sub("", text))
    try:
        elements = partition_html(text=text, languages=["eng"])
    except TimeoutError:
        raise
    except Exception as exc:
        raise parse_failure(Stage.PARSE, f"could not parse {path} as HTML: the file looks corrupt", exc) from exc
    blocks = elements_to_blocks(elements)
    if facts:
        blocks.append(Block("Inline XBRL facts (hidden)", kind="title"))
        blocks.extend(Block(f) for f in facts)
    return blocks


def parse_html(data: bytes, path: str) -> ParsedDocument:
    blocks = html_blocks(decode_text(data, path), path)
    return ParsedDocument(mime="text/html", blocks=blocks, pages=1 if blocks else 0)


def parse_xml(data: bytes, path: str, mime: str) -> ParsedDocument:
    """XML that is not HTML: the text of each element as ``element: text`` lines."""
    text = decode_text(data, path)
    if is_html(text):
        return parse_html(data, path)
    try:
        root = ElementTree.fromstring(_PROLOG.sub("", text, count=1))
    except ElementTree.ParseError as exc:
        raise parse_failure(Stage.PARSE, f"could not parse {path} as XML: the file is not well-formed", exc) from exc
    blocks = []
    for element in root.iter():
        value = " ".join((element.text or "").split())
        if value:
            name = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
            blocks.append(Block(f"{name}: {value}" if name else value))
    return ParsedDocument(mime=mime, blocks=blocks, pages=1 if blocks else 0)


def _xml(book: zipfile.ZipFile, name: str) -> ElementTree.Element:
    return ElementTree.fromstring(book.read(name))


def parse_epub(data: bytes, path: str, mime: str) -> ParsedDocument:
    """EPUB: the chapters of the spine in reading order, one page per chapter."""
    try:
        book = zipfile.ZipFile(io.BytesIO(data))
        container = _xml(book, "META-INF/container.xml")
        rootfile = next(e.get("full-path") for e in container.iter() if e.tag.endswith("rootfile"))
        opf = _xml(book, rootfile)
        base = PurePosixPath(rootfile).parent
        manifest = {e.get("id"): e.get("href") for e in opf.iter() if e.tag.endswith("}item")}
        spine = [e.get("idref") for e in opf.iter() if e.tag.endswith("}itemref")]
    except (zipfile.BadZipFile, KeyError, StopIteration, ElementTree.ParseError) as exc:
        raise parse_failure(Stage.PARSE, f"could not read the EPUB {path}: its package files are missing or corrupt", exc) from exc
    blocks: list[Block] = []
    chapters = [manifest[i] for i in spine if manifest.get(i)][:MAX_EPUB_CHAPTERS]
    for number, href in enumerate(chapters, start=1):
        name = str(base / href) if str(base) != "." else href
        try:
            chapter = book.read(name)
        except KeyError:
            continue  # a spine entry without its file: the rest of the book is still read
        for block in html_blocks(decode_text(chapter, f"{path}#{href}"), f"{path}#{href}"):
            block.page = number
            blocks.append(block)
    return ParsedDocument(mime=mime, blocks=blocks, pages=len(chapters))
