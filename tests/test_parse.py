"""docsync.parse: type detection by content, digital/scanned/mixed PDFs, Office/text
formats and the quarantine-ready failures. Real libmagic, pypdfium2, unstructured and
tesseract; no mocks."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from docsync.config import load_settings
from docsync.errors import DocumentError, Failure
from docsync.parse import (
    MIME_PDF,
    OOXML,
    Block,
    ParsedDocument,
    ParseError,
    check_zip_bomb,
    detect_mime,
    parse_document,
)

DOCX_MIME = OOXML["docx"]


def _norm(text: str) -> str:
    return " ".join(text.split()).lower()


@pytest.fixture(scope="module")
def mod_settings(tmp_path_factory):
    home = tmp_path_factory.mktemp("parse-home")
    return load_settings().replace(home=home, qdrant_path=home / "qdrant")


@pytest.fixture(scope="module")
def demo_parsed(demo_corpus, mod_settings):
    """Parse a demo-corpus document once per module (OCR is the slow part)."""
    root, _manifest = demo_corpus
    cache: dict[str, ParsedDocument] = {}

    def get(rel: str) -> ParsedDocument:
        if rel not in cache:
            cache[rel] = parse_document((root / rel).read_bytes(), rel, mod_settings)
        return cache[rel]

    return get


def _read(demo_corpus, rel: str) -> bytes:
    root, _manifest = demo_corpus
    return (Path(root) / rel).read_bytes()


def _pdf(pages: list[list[str]]) -> bytes:
    """A small digital PDF (text layer), one list of paragraphs per page."""
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(True, margin=20)
    for paragraphs in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", "", 12)
        for text in paragraphs:
            pdf.multi_cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(3)
    return bytes(pdf.output())


def _text_image(lines: list[str], size: tuple[int, int] = (1400, 420)):
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", size, 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=44)
    for i, line in enumerate(lines):
        draw.text((40, 40 + i * 80), line, fill=0, font=font)
    return image


def _image_only_pdf(pages: list[list[str]]) -> bytes:
    """A scanned-looking PDF: every page is an image, there is no text layer."""
    images = [_text_image(lines) for lines in pages]
    buf = io.BytesIO()
    images[0].save(buf, "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    return buf.getvalue()


def _docx() -> bytes:
    import docx

    d = docx.Document()
    d.add_heading("Travel policy", level=1)
    d.add_paragraph("Employees book economy class for flights shorter than six hours.")
    d.add_heading("Reimbursement", level=2)
    d.add_paragraph("Receipts are uploaded within thirty days of the trip.")
    table = d.add_table(rows=2, cols=2)
    table.rows[0].cells[0].text = "Item"
    table.rows[0].cells[1].text = "Limit"
    table.rows[1].cells[0].text = "Hotel"
    table.rows[1].cells[1].text = "180 USD"
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _assert_fails(data: bytes, path: str, settings, stage: str, *needles: str) -> ParseError:
    with pytest.raises(ParseError) as info:
        parse_document(data, path, settings)
    failure = info.value.failure
    assert failure.stage == stage, failure
    for needle in needles:
        assert needle in failure.reason.lower(), failure.reason
    assert str(info.value) == failure.reason
    return info.value


# --- PDFs -------------------------------------------------------------------------------


def test_digital_pdf_blocks_have_page_numbers_and_no_ocr(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    rel = "finance/annual-report-2025.pdf"
    doc = demo_parsed(rel)
    assert doc.mime == MIME_PDF
    assert doc.pages == 3
    assert doc.ocr_pages == 0
    assert doc.ocr_confidence is None and doc.page_confidence == {}
    assert doc.blocks and all(not b.ocr for b in doc.blocks)
    assert {b.page for b in doc.blocks} == {1, 2, 3}
    pages = [b.page for b in doc.blocks]
    assert pages == sorted(pages)
    assert any(b.kind == "title" for b in doc.blocks)
    assert _norm(manifest["phrases"][rel]) in _norm(doc.text)


def test_small_digital_pdf_keeps_text_per_page(mod_settings):
    data = _pdf([["Alpha page speaks about the quarterly budget review."],
                 ["Bravo page describes the hiring plan for next year."]])
    doc = parse_document(data, "plans/two-pages.pdf", mod_settings)
    assert (doc.pages, doc.ocr_pages) == (2, 0)
    by_page = {p: _norm(" ".join(b.text for b in doc.blocks if b.page == p)) for p in (1, 2)}
    assert "quarterly budget review" in by_page[1] and "hiring plan" not in by_page[1]
    assert "hiring plan" in by_page[2]


def test_scanned_pdf_from_demo_corpus_is_ocrd(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    rel = "hr/scans/onboarding-form-scan.pdf"
    doc = demo_parsed(rel)
    assert doc.mime == MIME_PDF
    assert doc.pages == 1 and doc.ocr_pages == doc.pages
    assert doc.blocks and all(b.ocr and b.page == 1 for b in doc.blocks)
    assert set(doc.page_confidence) == {1}
    assert doc.ocr_confidence == doc.page_confidence[1]
    assert 55 <= doc.ocr_confidence <= 100
    assert _norm(manifest["phrases"][rel]) in _norm(doc.text)


def test_image_only_pdf_every_page_ocrd_in_order(mod_settings):
    data = _image_only_pdf([["INVOICE ALPHA", "Consulting services rendered"],
                            ["PAYROLL BRAVO", "Monthly salary statement"]])
    doc = parse_document(data, "scans/two-page-scan.pdf", mod_settings)
    assert doc.pages == 2 and doc.ocr_pages == doc.pages
    assert set(doc.page_confidence) == {1, 2}
    assert doc.ocr_confidence == min(doc.page_confidence.values())
    assert all(0 < c <= 100 for c in doc.page_confidence.values())
    assert all(b.ocr for b in doc.blocks)
    assert [b.page for b in doc.blocks] == [1, 2]
    assert "invoice alpha" in _norm(doc.blocks[0].text)
    assert "payroll bravo" in _norm(doc.blocks[1].text)


def test_mixed_pdf_only_the_scanned_page_is_ocrd(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    rel = "finance/expenses/expense-report-mixed.pdf"
    doc = demo_parsed(rel)
    assert doc.pages == 2
    assert doc.ocr_pages == 1
    assert set(doc.page_confidence) == {2}
    assert doc.ocr_confidence == doc.page_confidence[2] and doc.ocr_confidence >= 55
    page1 = [b for b in doc.blocks if b.page == 1]
    page2 = [b for b in doc.blocks if b.page == 2]
    assert page1 and not any(b.ocr for b in page1)
    assert page2 and all(b.ocr for b in page2)
    assert "expense report" in _norm(" ".join(b.text for b in page1))
    assert _norm(manifest["phrases"][rel]) in _norm(" ".join(b.text for b in page2))
    assert [b.page for b in doc.blocks] == sorted(b.page for b in doc.blocks)


def test_image_file_is_ocrd(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    rel = "engineering/whiteboard-memo.png"
    doc = demo_parsed(rel)
    assert doc.mime == "image/png"
    assert doc.pages == doc.ocr_pages == 1
    assert doc.ocr_confidence and doc.ocr_confidence >= 55
    assert _norm(manifest["phrases"][rel]) in _norm(doc.text)


# --- Office, HTML, Markdown, text ---------------------------------------------------------


def test_docx_headings_paragraphs_and_table(mod_settings):
    doc = parse_document(_docx(), "policies/travel.docx", mod_settings)
    assert doc.mime == DOCX_MIME
    assert doc.ocr_pages == 0 and doc.ocr_confidence is None
    titles = [b.text for b in doc.blocks if b.kind == "title"]
    assert titles == ["Travel policy", "Reimbursement"]
    assert any(b.kind == "table" and "Hotel" in b.text and "180 USD" in b.text for b in doc.blocks)
    assert "economy class" in doc.text and "thirty days" in doc.text
    assert doc.pages == 1


def test_demo_docx(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    rel = "hr/employee-handbook.docx"
    doc = demo_parsed(rel)
    assert doc.mime == DOCX_MIME
    assert _norm(manifest["phrases"][rel]) in _norm(doc.text)
    assert any(b.kind == "table" for b in doc.blocks)


def test_html_drops_markup_and_scripts(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    rel = "public/company-overview.html"
    doc = demo_parsed(rel)
    assert doc.mime == "text/html"
    assert _norm(manifest["phrases"][rel]) in _norm(doc.text)
    assert "<p>" not in doc.text and "analyticsQueue" not in doc.text
    assert [b.text for b in doc.blocks if b.kind == "title"][:2] == ["About Northwind Analytics", "What we do"]


def test_markdown_headings_become_titles(mod_settings):
    md = "# Release notes\n\nVersion two adds scheduled exports.\n\n## Fixes\n\n- Timezone handling in reports\n"
    doc = parse_document(md.encode(), "docs/notes.md", mod_settings)
    assert doc.mime == "text/markdown"
    assert [b.text for b in doc.blocks if b.kind == "title"] == ["Release notes", "Fixes"]
    assert "scheduled exports" in doc.text and "Timezone handling" in doc.text
    assert "#" not in doc.text


def test_demo_markdown_and_txt(demo_parsed, demo_corpus):
    _root, manifest = demo_corpus
    for rel, mime in (("public/product-faq.md", "text/markdown"),
                      ("engineering/runbooks/oncall-runbook.txt", "text/plain")):
        doc = demo_parsed(rel)
        assert doc.mime == mime
        assert _norm(manifest["phrases"][rel]) in _norm(doc.text)


def test_plain_text(mod_settings):
    text = "Meeting notes\n\nThe vendor review moved to Thursday.\n\nAction items were assigned to the data team.\n"
    doc = parse_document(text.encode(), "notes/meeting.txt", mod_settings)
    assert doc.mime == "text/plain"
    assert doc.pages == 1 and doc.ocr_pages == 0
    assert "vendor review moved to Thursday" in doc.text
    assert "assigned to the data team" in doc.text
    assert all(isinstance(b, Block) and b.text.strip() for b in doc.blocks)


# --- detection by content -----------------------------------------------------------------


def test_pdf_saved_as_txt_is_parsed_as_pdf(mod_settings):
    data = _pdf([["Disguised document about warehouse staffing levels."]])
    assert detect_mime(data, "misnamed/report.txt") == MIME_PDF
    doc = parse_document(data, "misnamed/report.txt", mod_settings)
    assert doc.mime == MIME_PDF and doc.pages == 1
    assert all(b.page == 1 for b in doc.blocks)
    assert "warehouse staffing levels" in _norm(doc.text)


def test_docx_with_wrong_extension_is_detected(mod_settings):
    assert detect_mime(_docx(), "upload.bin") == DOCX_MIME
    doc = parse_document(_docx(), "upload.bin", mod_settings)
    assert "economy class" in doc.text


def test_markdown_suffix_only_refines_plain_text():
    assert detect_mime(b"# Title\n\nbody text\n", "a.md") == "text/markdown"
    assert detect_mime(b"# Title\n\nbody text\n", "a.txt") == "text/plain"
    # a PDF named .md is still a PDF
    assert detect_mime(_pdf([["x" * 40]]), "a.md") == MIME_PDF


@pytest.mark.parametrize(
    "encoding",
    [
        "utf-16",
        "cp1252",
    ],
)
def test_non_utf8_text_is_decoded(mod_settings, encoding):
    text = "Quarterly review\n\nThe café team wrote to jane.roe@example.com about the new menu.\n"
    doc = parse_document(text.encode(encoding), "windows/notes.txt", mod_settings)
    assert "\x00" not in doc.text and "\ufffd" not in doc.text
    assert "The café team wrote to jane.roe@example.com" in doc.text


# --- failures -----------------------------------------------------------------------------


def test_empty_file(demo_corpus, mod_settings):
    _assert_fails(_read(demo_corpus, "inbox/empty.txt"), "inbox/empty.txt", mod_settings, "detect", "empty")
    _assert_fails(b"", "anything.pdf", mod_settings, "detect", "empty", "0 bytes")


def test_corrupt_pdf(demo_corpus, mod_settings):
    error = _assert_fails(_read(demo_corpus, "inbox/corrupt.pdf"), "inbox/corrupt.pdf", mod_settings, "parse", "corrupt pdf")
    assert "inbox/corrupt.pdf" in error.failure.reason
    assert error.failure.error  # technical detail kept for the reviewer


def test_truncated_pdf(demo_corpus, mod_settings):
    _assert_fails(_read(demo_corpus, "inbox/truncated.pdf"), "inbox/truncated.pdf", mod_settings, "parse", "corrupt")


def test_encrypted_pdf(demo_corpus, mod_settings):
    error = _assert_fails(
        _read(demo_corpus, "inbox/encrypted.pdf"), "inbox/encrypted.pdf", mod_settings, "parse", "encrypted", "password"
    )
    assert "payroll" not in error.failure.reason.lower()  # no document text in the reason


def test_owner_password_only_pdf_is_readable(mod_settings):
    """Permission-restricted PDFs (empty user password) open without a password."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(_pdf([["Restricted printing but readable content about audits."]]))))
    writer.encrypt(user_password="", owner_password="owner-only", algorithm="RC4-128")
    buf = io.BytesIO()
    writer.write(buf)
    doc = parse_document(buf.getvalue(), "restricted.pdf", mod_settings)
    assert "readable content about audits" in _norm(doc.text)


def test_fake_docx_garbage(demo_corpus, mod_settings):
    _assert_fails(_read(demo_corpus, "inbox/fake.docx"), "inbox/fake.docx", mod_settings, "detect", "unsupported or unrecognised")


def test_truncated_docx_is_a_corrupt_office_file(mod_settings):
    data = _docx()
    _assert_fails(data[: len(data) // 2], "half.docx", mod_settings, "parse", "corrupt office file", "zip")


def test_docx_with_broken_xml(mod_settings):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_docx())) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            body = b"<<< not xml" if info.filename == "word/document.xml" else src.read(info.filename)
            dst.writestr(info.filename, body)
    _assert_fails(out.getvalue(), "broken.docx", mod_settings, "parse", "corrupt")


def _bomb_by_ratio() -> bytes:
    """A real small OOXML zip whose member inflates 20 MiB from ~20 KiB (ratio ~1000)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", b"\0" * (20 * 1024 * 1024))
    return buf.getvalue()


def _bomb_by_declared_size() -> bytes:
    """A tiny OOXML zip whose central directory declares a ~3.75 GiB member."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    data = bytearray(buf.getvalue())
    entry = data.find(b"PK\x01\x02", data.find(b"PK\x01\x02") + 4)  # 2nd central directory entry
    struct.pack_into("<I", data, entry + 24, 0xF0000000)  # uncompressed size
    return bytes(data)


@pytest.mark.parametrize("make", [_bomb_by_ratio, _bomb_by_declared_size], ids=["ratio", "declared"])
def test_zip_bomb_like_ooxml(mod_settings, make):
    data = make()
    assert len(data) < 64 * 1024
    assert detect_mime(data, "bomb.docx") == DOCX_MIME
    error = _assert_fails(data, "bomb.docx", mod_settings, "detect", "zip bomb")
    assert "bomb.docx" in error.failure.reason
    with pytest.raises(ParseError):
        check_zip_bomb(data, "bomb.docx")


def test_normal_docx_passes_zip_bomb_check():
    check_zip_bomb(_docx(), "ok.docx")  # no exception


def test_unsupported_binary(mod_settings):
    _assert_fails(bytes(range(256)) * 64, "blob.dat", mod_settings, "detect", "unsupported")


# --- errors: one DocumentError hierarchy, no store imports (issue 12, item 1) ----------------


def test_parse_error_is_a_document_error_carrying_an_errors_failure(mod_settings):
    with pytest.raises(DocumentError) as info:
        parse_document(b"", "empty.txt", mod_settings)
    assert isinstance(info.value, ParseError)
    assert type(info.value.failure) is Failure and info.value.failure.stage == "detect"
    assert issubclass(ParseError, DocumentError)


def test_processing_stages_never_import_the_stores(tmp_path):
    """parse/ocr/pii/chunk/embed/limits, also once they have run (their imports are lazy)."""
    script = textwrap.dedent(
        """
        import sys
        from docsync.config import load_settings
        from docsync import chunk, embed, limits, ocr, parse, pii, pii_recognizers
        settings = load_settings()
        doc = parse.parse_document(b"Alice wrote to alice@corp.internal about the plan.", "a.txt", settings)
        texts, _ = pii.anonymize_many([b.text for b in doc.blocks], settings)
        pii.rescan(texts[0])
        chunk.chunk_blocks(doc.blocks)
        print(sorted(m for m in sys.modules if m in ("docsync.state", "docsync.quarantine", "docsync.index")))
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_warm_up_by_kind_loads_what_the_kind_needs_and_not_the_pdf_path(tmp_path):
    """Issue 15: a batch of text and Markdown files warms only their parsers (a cold worker of a
    1% change no longer pays the PDF path), and parsing them afterwards loads nothing more inside
    their deadlines; a PDF's name warms the PDF path."""
    code = textwrap.dedent(
        """
        import json, sys
        from docsync.config import load_settings
        from docsync.parse import parse_document, warm_parsers
        settings = load_settings()
        warm_parsers(settings, "share/notes.txt")
        warm_parsers(settings, "share/readme.md")
        before = set(sys.modules)
        parse_document(b"Title Line\\n\\nThe team reviewed the plan and agreed on the next steps today.", "a.txt", settings)
        parse_document(b"# Title\\n\\n- item one\\n\\nThe team reviewed the plan and agreed on it.", "b.md", settings)
        new = sorted(set(sys.modules) - before)
        pdf_after_text = "pdfminer" in sys.modules or "unstructured.partition.pdf" in sys.modules
        warm_parsers(settings, "scans/report.pdf")
        print(json.dumps({"new": new, "pdf_after_text": pdf_after_text, "pdf_after_pdf": "pdfminer" in sys.modules}))
        """
    )
    env = {**os.environ, "DOCSYNC_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not result["pdf_after_text"] and result["pdf_after_pdf"]
    assert result["new"] == []
