"""Processing quality: OCR confidence per page vs per document, the per-document timeout
really interrupting tesseract and unstructured, page windows for long PDFs, and chunks
within the embedding model's 256-token limit. Real tesseract, unstructured, Presidio,
GX and the model tokenizer; no mocks."""

from __future__ import annotations

import dataclasses
import io
import json
import threading
import time
from pathlib import Path

import psutil
import pytest

from docsync import parse_pages
from docsync.chunk import chunk_blocks
from docsync.config import load_settings
from docsync.embed import MODEL_MAX_TOKENS, get_tokenizer
from docsync.ocr import OcrPage
from docsync.parse import Block, ParseError, ocr_confidence, parse_document, warm_parsers

PII_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pii" / "presidio_research_synth_dev.json"
PARAGRAPH = (
    "Page {n}. The quarterly budget review covers cloud spending, vendor contracts and the hiring plan. "
    "Warehouse operations track inbound pallets and dock scheduling every week of the year."
)


@pytest.fixture(scope="module")
def qsettings(tmp_path_factory):
    home = tmp_path_factory.mktemp("quality-home")
    return load_settings().replace(home=home, qdrant_path=home / "qdrant")


def page_image(text: str, dpi: int = 150, blur: int = 1):
    """One Letter page of Courier text as a grayscale image; ``blur`` > 1 degrades it."""
    import pypdfium2 as pdfium
    from fpdf import FPDF
    from PIL import Image

    pdf = FPDF(format="Letter")
    pdf.set_margins(20, 20, 20)
    pdf.add_page()
    pdf.set_font("Courier", "", 12)
    pdf.multi_cell(0, 6, text)
    doc = pdfium.PdfDocument(bytes(pdf.output()))
    page = doc[0]
    image = page.render(scale=dpi / 72, grayscale=True).to_pil().convert("L")
    page.close()
    doc.close()
    if blur > 1:
        small = image.resize((image.width // blur, image.height // blur), Image.Resampling.BILINEAR)
        image = small.resize(image.size, Image.Resampling.BILINEAR)
    return image


def scanned_pdf(images: list) -> bytes:
    buffer = io.BytesIO()
    images[0].save(buffer, "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    return buffer.getvalue()


def digital_pdf(pages: int, lines: int = 1) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_font("Helvetica", "", 11)
    for n in range(1, pages + 1):
        pdf.add_page()
        for _ in range(lines):
            pdf.multi_cell(0, 6, PARAGRAPH.format(n=n), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def tesseract_children() -> list:
    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if "tesseract" in (proc.name() or ""):
                found.append(proc)
        except psutil.NoSuchProcess:  # ended between listing and asking
            pass
    return found


def wait_no_tesseract(seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not tesseract_children():
            return True
        time.sleep(0.2)
    return not tesseract_children()


# --- OCR confidence: page vs document -----------------------------------------------------


def test_confidence_scopes_on_page_results():
    pages = {1: OcrPage(1, "a", 92.0, 300), 2: OcrPage(2, "b", 40.0, 20), 3: OcrPage(3, "", 0.0, 0)}
    assert ocr_confidence(pages, "page") == 40.0  # the worst page; the blank page does not count
    assert ocr_confidence(pages, "document") == round((92 * 300 + 40 * 20) / 320, 1)
    assert ocr_confidence({3: pages[3]}, "page") == 0.0  # nothing readable at all
    assert ocr_confidence({}, "page") is None  # not OCR'd


def test_scope_setting(monkeypatch, docsync_env):
    assert load_settings().ocr.confidence_scope == "page"
    monkeypatch.setenv("DOCSYNC_OCR_CONFIDENCE_SCOPE", "document")
    assert load_settings().ocr.confidence_scope == "document"
    monkeypatch.setenv("DOCSYNC_OCR_CONFIDENCE_SCOPE", "pages")
    with pytest.raises(ValueError, match="DOCSYNC_OCR_CONFIDENCE_SCOPE"):
        load_settings()


def test_one_bad_page_quarantines_in_page_scope_only(qsettings):
    from docsync.validate import validate_documents

    good = "\n".join(PARAGRAPH.format(n=i) for i in range(1, 6))
    data = scanned_pdf([page_image(good), page_image(good, blur=4), page_image(" ")])  # clean, blurred, blank
    by_page = parse_document(data, "scans/mixed-quality.pdf", qsettings)
    document_scope = qsettings.replace(ocr_confidence_scope="document")
    by_doc = parse_document(data, "scans/mixed-quality.pdf", document_scope)
    conf = by_page.page_confidence
    assert set(conf) == {1, 2, 3} and conf[3] == 0.0  # every page recorded, the blank one too
    assert conf[2] < conf[1]
    assert by_page.ocr_confidence == conf[2]  # the worst readable page, not the blank one
    assert conf[2] < by_doc.ocr_confidence < conf[1]  # word-weighted mean of the readable pages

    threshold = (by_page.ocr_confidence + by_doc.ocr_confidence) / 2
    row = {"doc_id": "scan", "mime": "application/pdf", "text_length": 500, "replacement_ratio": 0.0,
           "allowed_count": 1, "pii_rescan_hits": 0, "markup_ratio": 0.0}
    strict = qsettings.replace(ocr_min_confidence=threshold)
    page_failure = validate_documents([row | {"ocr_confidence": by_page.ocr_confidence}], strict)
    assert "ocr_confidence" in page_failure["scan"].reason
    assert validate_documents([row | {"ocr_confidence": by_doc.ocr_confidence}], strict) == {}


def test_blank_page_does_not_fail_a_good_scan(qsettings):
    data = scanned_pdf([page_image(PARAGRAPH.format(n=1)), page_image(" ")])
    doc = parse_document(data, "scans/with-blank-back.pdf", qsettings)
    assert doc.page_confidence[2] == 0.0
    assert doc.ocr_confidence == doc.page_confidence[1] >= qsettings.ocr.min_confidence


# --- long PDFs: digital pages in windows ---------------------------------------------------


def test_digital_pages_are_partitioned_in_windows_with_their_page_numbers(qsettings, monkeypatch):
    monkeypatch.setattr(parse_pages, "PDF_WINDOW", 3)  # 8 digital pages -> 3 windows
    import pypdfium2 as pdfium

    digital = pdfium.PdfDocument(digital_pdf(8))
    scan = pdfium.PdfDocument(scanned_pdf([page_image("SCANNED INSERT page five")]))
    mixed = pdfium.PdfDocument.new()
    mixed.import_pages(digital, [0, 1, 2, 3])
    mixed.import_pages(scan)  # page 5 is a scan
    mixed.import_pages(digital, [4, 5, 6, 7])
    buffer = io.BytesIO()
    mixed.save(buffer)
    for d in (digital, scan, mixed):
        d.close()
    doc = parse_document(buffer.getvalue(), "long/mixed.pdf", qsettings)
    assert (doc.pages, doc.ocr_pages) == (9, 1)
    assert sorted({b.page for b in doc.blocks}) == list(range(1, 10))
    for page in range(1, 10):
        text = " ".join(b.text for b in doc.blocks if b.page == page)
        if page == 5:
            assert "scanned insert" in text.lower() and all(b.ocr for b in doc.blocks if b.page == 5)
        else:
            original = page if page < 5 else page - 1
            assert f"Page {original}." in text and f"Page {original + 1}." not in text, (page, text[:60])


# --- per-document timeout -----------------------------------------------------------------


@pytest.fixture(scope="module")
def long_scan() -> bytes:
    text = "\n".join(PARAGRAPH.format(n=i) for i in range(1, 9))
    image = page_image(text, dpi=200)
    return scanned_pdf([image] * 12)  # ~12 s of tesseract with OMP_THREAD_LIMIT=1


def test_timeout_stops_ocr_and_its_tesseract_processes(qsettings, long_scan):
    settings = qsettings.replace(doc_timeout_s=1)
    started = time.monotonic()
    with pytest.raises(ParseError) as caught:
        parse_document(long_scan, "scans/long.pdf", settings)
    elapsed = time.monotonic() - started
    assert caught.value.failure.stage == "timeout"
    assert "DOCSYNC_DOC_TIMEOUT_S" in caught.value.failure.reason and "scans/long.pdf" in caught.value.failure.reason
    assert elapsed < 6, f"OCR was not interrupted: {elapsed:.1f} s"
    assert wait_no_tesseract(5), "tesseract processes still running after the timeout"


def test_timeout_outside_the_main_thread(qsettings, long_scan):
    """Airflow may run a task off the main thread, where SIGALRM is impossible: parse's
    own deadline must still stop OCR."""
    settings = qsettings.replace(doc_timeout_s=1)
    outcome: dict = {}

    def work() -> None:
        try:
            parse_document(long_scan, "scans/long.pdf", settings)
        except ParseError as exc:
            outcome["failure"] = exc.failure

    worker = threading.Thread(target=work)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive() and outcome["failure"].stage == "timeout"


def test_pipeline_deadline_interrupts_ocr(qsettings, long_scan):
    from docsync.deadlines import deadline
    from docsync.errors import DocumentTimeout
    from docsync.steps.process import failure_for

    settings = qsettings.replace(doc_timeout_s=0)  # only the pipeline's SIGALRM deadline
    with pytest.raises(DocumentTimeout) as caught:  # not "OCR failed" nor "corrupt"
        with deadline(1):
            parse_document(long_scan, "scans/long.pdf", settings)
    assert _raised_by_the_alarm(caught.value)
    assert failure_for(caught.value, "scans/long.pdf").stage == "timeout"
    assert wait_no_tesseract(30)  # pages in flight finish theirs (~1 s each when the machine is idle)


def test_pipeline_deadline_interrupts_unstructured(qsettings):
    from docsync.deadlines import deadline
    from docsync.errors import DocumentTimeout

    settings = qsettings.replace(doc_timeout_s=0)
    warm_parsers(settings)  # imports and lazy model loads, outside the deadline, as process_batch does
    # ~4 s of pdfminer layout analysis even with everything warm (150 pages of 3 lines took
    # ~1.1 s warm and sometimes finished inside the 1 s deadline late in the full suite)
    data = digital_pdf(150, lines=12)
    with pytest.raises(DocumentTimeout) as caught:
        with deadline(1):
            parse_document(data, "long/report.pdf", settings)
    assert _raised_by_the_alarm(caught.value)


def test_a_library_that_catches_exception_cannot_swallow_the_deadline():
    """unstructured catches any Exception while it extracts a PDF page's text (and skips the
    page): an alarm raised as an Exception was swallowed there, page after page."""
    from docsync.deadlines import deadline
    from docsync.errors import DocumentTimeout

    swallowed = 0
    with pytest.raises(DocumentTimeout) as caught:
        with deadline(0.2):
            for _page in range(60):
                try:
                    time.sleep(0.05)
                except Exception:  # what the library does
                    swallowed += 1
    assert swallowed == 0 and _raised_by_the_alarm(caught.value)


def _raised_by_the_alarm(exc: BaseException) -> bool:
    """The timeout interrupted the work (the alarm's DeadlinePassed, raised inside it, is its
    cause), rather than being raised after the work finished late: a proof that needs no
    wall-clock bound, which a loaded machine would break."""
    from docsync.deadlines import DeadlinePassed

    return isinstance(exc.__cause__, DeadlinePassed)


def test_sync_quarantines_the_slow_document_and_indexes_the_rest(settings, tmp_path, long_scan):
    from docsync import pii, quarantine, state
    from docsync.pipeline import run_sync

    pii.get_analyzer()  # model loading is not the documents' time
    parse_document(b"warm up the text partitioner\n", "warm.txt", settings)
    share = tmp_path / "share"
    share.mkdir()
    (share / "scan.pdf").write_bytes(long_scan)
    (share / "notes.txt").write_text("The hiring plan for next year adds two analysts.\n")
    for name in ("scan.pdf", "notes.txt"):
        (share / f"{name}.acl.json").write_text(json.dumps({"allow": ["group:staff"]}))
    summary = run_sync(settings.replace(doc_timeout_s=2), root=str(share))
    assert summary["indexed"] == 1 and summary["quarantined"] == 1
    [entry] = quarantine.list_entries(state.get_engine(settings.state_url))
    assert entry["path"] == "scan.pdf" and entry["stage"] == "timeout"
    assert "DOCSYNC_DOC_TIMEOUT_S" in entry["reason"]


# --- chunks within the model's limit -------------------------------------------------------


def _assert_within_model_limit(chunks) -> int:
    tokenizer = get_tokenizer()
    worst = 0
    for chunk in chunks:
        n = len(tokenizer(chunk.text)["input_ids"])  # with [CLS] and [SEP]
        assert n <= MODEL_MAX_TOKENS, (n, chunk.text[:80])
        worst = max(worst, n)
    return worst


def test_demo_corpus_chunks_fit_the_model(demo_corpus, qsettings):
    from docsync import pii

    root, _manifest = demo_corpus
    chunks = []
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file() and not p.name.endswith(".acl.json")):
        try:
            doc = parse_document(path.read_bytes(), str(path.relative_to(root)), qsettings)
        except ParseError:
            continue  # the corpus's broken files
        texts, _counts = pii.anonymize_many([b.text for b in doc.blocks], qsettings)
        blocks = [dataclasses.replace(b, text=t) for b, t in zip(doc.blocks, texts)]
        chunks += chunk_blocks(blocks, qsettings.sync.chunk_tokens, qsettings.sync.chunk_overlap)
    assert len(chunks) > 20
    assert _assert_within_model_limit(chunks) > 100  # long chunks exist, and all fit


@pytest.mark.skipif(not PII_DATA.exists(), reason="PII evaluation data not found")
def test_pii_dataset_chunks_fit_the_model(qsettings):
    """Short records one block each, and long blocks of many records (cut into token
    windows): names in many scripts tokenize into many word pieces."""
    from docsync import pii

    records = json.loads(PII_DATA.read_text())
    texts, _counts = pii.anonymize_many([r["full_text"] for r in records[:200]], qsettings)
    raw = [r["full_text"] for r in records]
    blocks = [Block(text=t, page=1) for t in texts]
    blocks += [Block(text=" ".join(raw[i : i + 60]), page=2) for i in range(0, len(raw), 60)]
    blocks += [Block(text="\n".join(raw[i : i + 5]), page=3, kind="title") for i in range(0, 100, 5)]
    chunks = chunk_blocks(blocks, 254, 32)  # the largest chunk size the settings allow
    assert _assert_within_model_limit(chunks) > 200
