"""The format parsers (docsync.parsers) on the real public files of tests/data/formats (sources
and licences in its README): what each kind yields, containers' parts, encodings, the markup
check, and LibreOffice conversions killed when they overrun."""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
import zipfile
from pathlib import Path

import pytest

from docsync.config import load_settings
from docsync.parse import ParseError, detect_mime, parse_document

CORPUS = Path(__file__).parent / "data" / "formats"


def read(name: str) -> bytes:
    return (CORPUS / name).read_bytes()


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    home = tmp_path_factory.mktemp("parsers-home")
    return load_settings().replace(home=home, qdrant_path=home / "qdrant")


def parse(name: str, settings, data: bytes | None = None):
    return parse_document(read(name) if data is None else data, name, settings)


@pytest.mark.parametrize(("name", "mime"), [
    ("fake-email.eml", "message/rfc822"),  # libmagic: text/plain
    ("mime-html-only.eml", "message/rfc822"),
    ("email-no-utf8-2014-03-17.111517.eml", "message/rfc822"),  # mbox "From " line first; libmagic: text/html
    ("fake-email-utf-16-le.eml", "message/rfc822"),  # UTF-16 without BOM; libmagic: octet-stream
    ("fake-email.msg", "application/vnd.ms-outlook"),
    ("fake.doc", "application/msword"),
    ("eng_spa_mult-97.ppt", "application/vnd.ms-powerpoint"),  # libmagic: generic OLE storage
    ("tests-example.xls", "application/vnd.ms-excel"),
    ("simple.odt", "application/vnd.oasis.opendocument.text"),
    ("fake-doc.rtf", "text/rtf"),
    ("eng_spa_mult.epub", "application/epub+zip"),
    ("example-10k-1p.html", "text/html"),  # inline XBRL behind an XML prolog; libmagic: text/xml
    ("stanley-cups.tsv", "text/tab-separated-values"),
    ("fake-text-utf-16-be.txt", "text/plain"),  # no BOM; libmagic: octet-stream
    ("arbitrary-records.ndjson", "application/x-ndjson"),
    ("simple.zip", "application/zip"),
    ("DA-1p.heic", "image/heic"),
])
def test_types_are_detected_from_content(name, mime):
    assert detect_mime(read(name), name) == mime


def test_eml_subject_headers_body_and_attachments(settings):
    doc = parse("fake-email-attachment.eml", settings)
    assert doc.mime == "message/rfc822"
    assert doc.blocks[0].kind == "title" and doc.blocks[0].text == "Fake email with attachment"
    assert "From: Mallori Harrell <mallori@unstructured.io>" in doc.text and "Date: Fri, 23 Dec 2022" in doc.text
    assert "Here's the attachments!" in doc.text
    assert [c.name for c in doc.children] == ["attachment/1/fake-attachment.txt"]
    assert doc.children[0].read() == b"Hey this is a fake attachment!"


@pytest.mark.parametrize("name", ["fake-email-utf-16-le.eml", "mime-html-only.eml", "mime-multi-to-cc-bcc.eml"])
def test_eml_variants(name, settings):
    doc = parse(name, settings)
    assert doc.mime == "message/rfc822" and "\x00" not in doc.text
    assert doc.blocks[0].kind == "title" and "From: " in doc.text and len(doc.text) > 80
    assert "<" not in doc.text.replace("<", "", doc.text.count("@"))  # no HTML left (addresses aside)


def test_eml_attachments_of_any_type_and_mbox_line(settings):
    doc = parse("email-no-utf8-2014-03-17.111517.eml", settings)
    assert doc.blocks[0].text == "Google Account password changed"
    assert [c.name for c in doc.children] == ["attachment/1/google.png", "attachment/2/profilephoto.png"]
    assert parse("mime-attach-mp3.eml", settings).children[0].name == "attachment/1/sample-3s.mp3"


def test_outlook_msg(settings):
    doc = parse("fake-email-attachment.msg", settings)
    assert doc.mime == "application/vnd.ms-outlook"
    assert doc.blocks[0].text == "Fake email with attachment" and "To: Mallori Harrell" in doc.text
    assert "Here's the attachments!" in doc.text
    assert [(c.name, c.read()) for c in doc.children] == [
        ("attachment/1/fake-attachment.txt", b"Hey this is a fake attachment!")
    ]


def test_zip_members_are_parts_within_the_bomb_limits(settings):
    doc = parse("simple.zip", settings)
    assert [c.name for c in doc.children] == ["ideas-page.html", "stanley-cups.csv"]
    assert "stanley-cups.csv" in doc.text  # the archive's own text: its table of contents
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("../../etc/x#y.txt", "a member named to escape")
        archive.writestr("bomb.txt", b"\0" * 50_000_000)
    with pytest.raises(ParseError, match="zip bomb"):
        parse("bomb.zip", settings, buffer.getvalue())
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../../etc/x#y.txt", "a member named to escape")
    assert [c.name for c in parse("a.zip", settings, buffer.getvalue()).children] == ["etc/x_y.txt"]


@pytest.mark.parametrize("name", ["stanley-cups.csv", "stanley-cups.tsv", "stanley-cups-utf-16.csv", "stanley-cups.xlsx"])
def test_tables_are_rows_with_their_header(name, settings):
    doc = parse(name, settings)
    rows = [b.text for b in doc.blocks if b.kind == "row"]
    assert rows[0] == "Team: Blues; Location: STL; Stanley Cups: 1"
    assert "Stanley Cups" in [b.text for b in doc.blocks if b.kind == "title"]


def test_xls_sheets_are_pages(settings):
    doc = parse("tests-example.xls", settings)
    assert doc.pages == 3 and {b.page for b in doc.blocks} == {1, 2, 3}
    assert any("What is 2+2?" in b.text for b in doc.blocks)


def test_a_long_row_is_chunked_between_cells_never_inside_one():
    from docsync.chunk import chunk_blocks
    from docsync.parsers.sheets import rows_to_blocks

    header = [f"Field {i}" for i in range(40)]
    row = [f"value {i} " + "word " * 12 for i in range(40)]
    blocks = rows_to_blocks([header, row, row], "Sheet1", "wide.xlsx")
    cells = {f"{h}: {' '.join(v.split())}" for h, v in zip(header, row)}
    chunks = chunk_blocks(blocks, 120, 16)
    assert len(chunks) > 4
    for chunk in chunks:
        for line in chunk.text.split("\n\n"):
            if line in ("Sheet1", " | ".join(header)):
                continue
            for part in (line.split(") ", 1)[-1] if line.startswith("(row") else line).split("; "):
                assert part in cells, part
    from docsync.chunk import _cells

    wide = "; ".join(sorted(cells))  # one row block far over the limit: split between cells by the chunker
    pieces = _cells(wide, 60, 8)
    assert len(pieces) > 5 and all(p in cells for piece in pieces for p in piece.split("; "))


@pytest.mark.parametrize("name", ["fake-text-utf-16-le.txt", "fake-text-utf-16-be.txt", "fake-text-utf-16.txt",
                                  "fake-text-utf-32.txt"])
def test_text_in_utf16_and_utf32(name, settings):
    doc = parse(name, settings)
    assert doc.text.startswith("This is a test document to use for unit tests.") and "\x00" not in doc.text


PLAIN_SHAPES = (
    "CHAPTER 3\n\nThe Long Winter\n\n" + "The team reviewed the plan and agreed on the next steps. " * 6
    + "\n\n\u2022 a bulleted point that is long enough to skip the title check of unstructured entirely\n\n"
    "\u2022\n\n- short bullet\n\n1. A numbered item\n\nSan Francisco, CA 94105\n\nfoo@example.com\n\n"
    "ITEM 1A. RISK FACTORS\n\nTo My Dearest Friends,\n\n2024\n\nline one of a wrapped\nparagraph that goes on\n",
    "one paragraph\nwrapped over\nlines without any blank line between them at all, as old text files are\n",
    "   \n\n",
)


@pytest.mark.parametrize("text", PLAIN_SHAPES)
def test_plain_text_gives_partition_texts_blocks_without_its_nlp(text):
    """Issue 14 item 3: plain text skips unstructured's per-paragraph classification where it
    cannot change the result, and yields exactly partition_text's blocks."""
    from unstructured.partition.text import partition_text

    from docsync.parse import elements_to_blocks
    from docsync.parsers.text import plain_blocks

    expected = elements_to_blocks(partition_text(text=text, languages=["eng"])) if text.strip() else []
    assert plain_blocks(text) == expected


def test_plain_text_of_the_formats_corpus_is_unchanged(settings):
    from unstructured.partition.text import partition_text

    from docsync.parse import elements_to_blocks
    from docsync.parsers.text import decode_text, plain_blocks

    text = decode_text(read("fake-text-utf-16.txt"))
    assert plain_blocks(text) == elements_to_blocks(partition_text(text=text, languages=["eng"]))
    assert parse_document(read("fake-text-utf-16.txt"), "a.txt", settings).blocks == plain_blocks(text)


def test_undecidable_encoding_says_so(settings):
    data = bytes(b ^ 0xA5 for b in read("fake-html-cp1252.html")) * 3  # no text encoding fits
    with pytest.raises(ParseError) as caught:
        from docsync.parsers.text import decode_text

        decode_text(data, "odd.txt")
    assert "cannot tell the text encoding of odd.txt" in caught.value.failure.reason


def test_ndjson_records(settings):
    doc = parse("arbitrary-records.ndjson", settings)
    assert len(doc.blocks) == 3 and "name: Garden Trowel" in doc.blocks[0].text


def test_inline_xbrl_10k_is_html_and_the_markup_check_passes_it(settings):
    from docsync.parsers.text import markup_ratio

    doc = parse("example-10k-1p.html", settings)
    assert doc.mime == "text/html"
    assert "Galaxy Gaming, Inc." in doc.text and "Commission file number: 000-30653" in doc.text
    assert "<" not in doc.text and "font-family" not in doc.text
    assert markup_ratio(doc.text) < 0.01
    raw = read("example-10k-1p.html").decode("utf-8")
    assert markup_ratio(raw) > 0.5  # what it was indexed as when read as plain XML text


def test_inline_xbrl_hidden_facts_kept_with_their_concepts():
    from docsync.parsers.markup import html_blocks

    head = read("example-10k-1p.html").decode("utf-8")
    hidden = ('<div style="display:none"><ix:header><ix:hidden><ix:nonNumeric name="dei:DocumentType" '
              'contextRef="c1">10-K</ix:nonNumeric></ix:hidden><ix:resources><xbrli:context id="c1">'
              "<xbrli:entity>0001</xbrli:entity></xbrli:context></ix:resources></ix:header></div>")
    text = "\n\n".join(b.text for b in html_blocks(head.replace("<body>", "<body>" + hidden, 1), "10k.html"))
    assert "dei:DocumentType: 10-K" in text and "xbrli" not in text and "0001" not in text


def test_markup_expectation_quarantines_junk(settings):
    from docsync.parsers.text import markup_ratio
    from docsync.validate import validate_documents

    junk = read("example-10k-1p.html").decode("utf-8")
    rows = [{"doc_id": d, "mime": "text/html", "text_length": 100, "replacement_ratio": 0.0, "ocr_confidence": None,
             "allowed_count": 1, "pii_rescan_hits": 0, "markup_ratio": markup_ratio(t)}
            for d, t in (("junk", junk), ("prose", parse("example-10k-1p.html", settings).text))]
    failures = validate_documents(rows, settings)
    assert set(failures) == {"junk"} and "mostly markup" in failures["junk"].reason


def test_epub_chapters(settings):
    doc = parse("eng_spa_mult.epub", settings)
    assert "All human beings are born free and equal" in doc.text


@pytest.mark.slow  # LibreOffice's start-up: 2-4 s per file
@pytest.mark.parametrize(("name", "needle"), [
    ("fake.doc", "Lorem ipsum dolor sit amet."),
    ("eng_spa_mult-97.ppt", "Testing multiple languages"),
    ("stanley-cups.ods", "Team: Blues; Location: STL; Stanley Cups: 1"),
])
def test_legacy_office_and_opendocument_through_libreoffice(name, needle, settings):
    doc = parse(name, settings)
    assert needle in doc.text and doc.mime == detect_mime(read(name), name)


@pytest.mark.slow
def test_concurrent_conversions_use_private_profiles():
    from docsync.parsers.convert import convert

    results: list = []
    threads = [threading.Thread(target=lambda: results.append(convert(read("fake-doc.rtf"), "a.rtf", "text/rtf", 120)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [kind for _data, kind in results] == ["docx", "docx"]


def test_a_conversion_that_overruns_is_killed_with_its_process_group():
    from docsync.parsers.convert import convert

    with pytest.raises(ParseError) as caught:
        convert(read("simple.odt"), "slow.odt", "application/vnd.oasis.opendocument.text", 0.3)
    assert caught.value.failure.stage == "timeout" and "was killed" in caught.value.failure.reason
    assert not _outlived_their_conversion(), "a LibreOffice process outlived its conversion"


def _outlived_their_conversion(grace_s: float = 5) -> set[int]:
    """soffice processes whose conversion folder is gone: the conversion ended and they did not.
    Conversions still running elsewhere (other tests, other workers) keep their folder."""
    deadline = time.monotonic() + grace_s
    while True:
        orphans = set()
        for entry in os.listdir("/proc"):
            try:
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0") if entry.isdigit() else []
            except OSError:
                continue
            work = [a.split(b"/profile")[0].split(b"file://")[-1] for a in argv if b"docsync-convert-" in a]
            if b"soffice" in b" ".join(argv) and work and not os.path.isdir(work[0]):
                orphans.add(int(entry))
        if not orphans or time.monotonic() > deadline:
            return orphans
        time.sleep(0.2)


@pytest.mark.slow
def test_heic_photo_is_ocrd(settings):
    doc = parse("DA-1p.heic", settings)
    assert doc.ocr_pages == 1 and "CREATURES" in doc.text


@pytest.mark.parametrize(("name", "words"), [("CantinaBand3.wav", "audio holds no text")])
def test_unsupported_means_unreadable_and_says_why(name, words, settings):
    with pytest.raises(ParseError) as caught:
        parse(name, settings)
    assert caught.value.failure.stage == "detect" and words in caught.value.failure.reason
    with pytest.raises(ParseError, match="a program, library or binary"):
        parse_document(Path(shutil.which("true")).read_bytes(), "tool.bin", settings)


def test_xhtml_behind_an_xml_prolog_is_html(settings):
    """A real XHTML page (a chapter of the EPUB above, typed text/xml by libmagic)."""
    from docsync.parsers.text import markup_ratio

    data = zipfile.ZipFile(CORPUS / "eng_spa_mult.epub").read("GoogleDoc/Untitleddocument.xhtml")
    assert detect_mime(data, "chapter.xhtml") == "text/html"
    doc = parse("chapter.xhtml", settings, data)
    assert "All human beings are born free and equal" in doc.text
    assert markup_ratio(doc.text) == 0 and "margin" not in doc.text


MARKUP_SHAPES = (
    "# Quarterly report\n\nThe team reviewed the plan and agreed on the next steps. " * 3
    + "\n\n## Risks\n\n- a bullet that says a lot about the risks we see\n- short one\n\n1. first\n2. second\n\n"
    "San Francisco, CA 94105\n\nfoo@example.com\n\nITEM 1A. RISK FACTORS\n\nTo My Dearest Friends,\n\nx\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n\n> quoted text from an e-mail that was forwarded\n\n```\ncode block\n```\n",
    "Plain line\nwrapped over\nlines without a blank line, as **bold** and _italic_ text and a [link](http://x).\n",
    "<html><body><h1>Title</h1><p>CHAPTER 3</p><p>The Long Winter</p><p>A sentence. Another one.</p>"
    "<ul><li>item</li></ul><div>2024</div><p>\u2022 bullet in a paragraph</p><p>a</p></body></html>",
)


@pytest.mark.parametrize("text", MARKUP_SHAPES)
def test_markdown_and_html_give_unstructureds_blocks_without_its_nlp(text, settings, monkeypatch):
    """Issue 15 item 3: Markdown and HTML skip unstructured's NarrativeText/Text decision (spaCy
    sentence tokenisation of every paragraph), which docsync's blocks do not depend on."""
    from unstructured.partition.html import parser

    from docsync.parsers import markup

    is_html = text.startswith("<html>")
    name, data = ("a.html", text.encode()) if is_html else ("a.md", text.encode())
    fast = parse_document(data, name, settings).blocks
    assert parser.is_possible_narrative_text is markup._never_narrative
    monkeypatch.setattr(parser, "is_possible_narrative_text", markup.UNSTRUCTURED_NARRATIVE_TEST)
    monkeypatch.setattr(markup, "skip_narrative_classification", lambda: None)
    slow = parse_document(data, name, settings).blocks
    assert fast and fast == slow
