"""Bytes -> text blocks with page numbers: type detection by content, then the parser of the
type: unstructured `fast` for digital formats, tesseract for scanned PDF pages and images
(decided page by page), and the format parsers of :mod:`docsync.parsers` (e-mail, archives,
spreadsheets, legacy Office and OpenDocument through LibreOffice, EPUB, HTML flavours, text in
any encoding). Containers (e-mail, ZIP) also return their parts as :class:`Child` entries."""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

from docsync import memory_budget
from docsync.config import Settings, apply_offline_env
from docsync.errors import DocumentError, Failure, Stage

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from collections.abc import Callable

apply_offline_env()

MIME_PDF = "application/pdf"
OOXML = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
OOXML_MARKER = {"docx": "word/", "pptx": "ppt/", "xlsx": "xl/"}
IMAGE_MIMES = {"image/png", "image/jpeg", "image/tiff", "image/bmp", "image/gif", "image/webp", "image/heic", "image/heif"}
TEXT_MIMES = {"text/plain", "text/markdown", "text/x-markdown", "text/html", "text/csv", "application/json"}
SUFFIX_TYPES = {  # plain text refined by its name only
    "md": "text/markdown", "markdown": "text/markdown", "csv": "text/csv", "tsv": "text/tab-separated-values",
    "tab": "text/tab-separated-values", "ndjson": "application/x-ndjson", "jsonl": "application/x-ndjson",
}
ZIPPED = {"application/zip", "application/epub+zip", "application/vnd.oasis.opendocument.text",
          "application/vnd.oasis.opendocument.spreadsheet", "application/vnd.oasis.opendocument.presentation"}
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
OLE_STREAMS = (("WordDocument", "application/msword"), ("PowerPoint Document", "application/vnd.ms-powerpoint"),
               ("Workbook", "application/vnd.ms-excel"), ("Book", "application/vnd.ms-excel"),
               ("__substg1.0_", "application/vnd.ms-outlook"))
MAX_UNZIPPED_BYTES = 512 * 1024 * 1024
MAX_ZIP_RATIO = 200


class ParseError(DocumentError):
    """A document could not be turned into text; carries the quarantine failure."""


@dataclass
class Block:
    text: str
    page: int | None = None
    kind: str = "text"  # title | text | table | list
    ocr: bool = False


@dataclass(frozen=True)
class Child:
    """A part of a container (an e-mail's attachment, an archive's member) that becomes a
    document of its own: ``name`` is its path inside the container (``attachment/1/a.pdf``,
    ``dir/b.txt``); the bytes are given, or loaded when the process step reaches it."""

    name: str
    data: bytes | None = None
    loader: Callable[[], bytes] | None = None
    size: int = 0

    def read(self) -> bytes:
        return self.data if self.data is not None else self.loader() if self.loader else b""


@dataclass
class ParsedDocument:
    mime: str
    blocks: list[Block]
    pages: int = 0
    ocr_pages: int = 0
    ocr_confidence: float | None = None  # lowest page confidence among OCR'd pages
    page_confidence: dict[int, float] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)  # containers only

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.text.strip())


def parse_failure(stage: str, reason: str, exc: BaseException | None = None) -> ParseError:
    error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    return ParseError(Failure(stage=stage, reason=reason, error=error))


def detect_mime(data: bytes, path: str) -> str:
    """The document's type from its content (libmagic), refined: OOXML by its parts, e-mail
    by its header block, HTML behind an XML prolog, text in UTF-16/32 without a BOM; the file
    name's suffix only ever refines plain text (Markdown, CSV/TSV, NDJSON)."""
    import magic

    if not data:
        raise parse_failure(Stage.DETECT, "empty file (0 bytes): nothing to index; remove it or replace it with the real document")
    mime = magic.from_buffer(data[:65536], mime=True)
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    if mime in ("application/zip", "application/octet-stream") and data[:2] == b"PK":
        kind = _ooxml_kind(data)
        if kind:
            return OOXML[kind]
    if mime in ("application/x-ole-storage", "application/CDFV2", "application/octet-stream") and data[:8] == OLE_MAGIC:
        mime = _ole_kind(data) or mime
    if mime == "application/octet-stream":
        from docsync.parsers.text import looks_like_text

        if looks_like_text(data):  # UTF-16/32 without a BOM: type the decoded text
            mime = magic.from_buffer(_head(data, 65536).encode("utf-8"), mime=True)
    if mime in ("text/plain", "text/html", "message/rfc822", "message/news", "text/x-mail"):
        from docsync.parsers.mail import looks_like_email

        if looks_like_email(_head(data, 16384)):
            return "message/rfc822"
    if mime in ("text/xml", "application/xml", "application/xhtml+xml", "text/html"):
        from docsync.parsers.markup import is_html

        return "text/html" if is_html(_head(data, 65536)) else mime
    if mime == "text/plain":
        return SUFFIX_TYPES.get(suffix, mime)
    return mime


def _head(data: bytes, size: int) -> str:
    """The start of a document as text for sniffing ("" when it is not text)."""
    try:
        return decode_text(data[:size])
    except ParseError:
        return ""


def _ole_kind(data: bytes) -> str | None:
    """The Office type of an OLE2 compound file libmagic leaves generic, by its streams."""
    import olefile

    try:
        with olefile.OleFileIO(io.BytesIO(data)) as ole:
            names = {"/".join(entry) for entry in ole.listdir(streams=True, storages=False)}
    except Exception:  # not a readable compound file: stays generic (unsupported)
        return None
    for stream, mime in OLE_STREAMS:
        if any(n == stream or n.startswith(stream) for n in names):
            return mime
    return None


def _ooxml_kind(data: bytes) -> str | None:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return None
    for kind, marker in OOXML_MARKER.items():
        if any(n.startswith(marker) for n in names):
            return kind
    return None


def decode_text(data: bytes, path: str = "document") -> str:
    """Text bytes to str in any common encoding (see :mod:`docsync.parsers.text`)."""
    from docsync.parsers.text import decode_text as decode

    return decode(data, path)


def check_zip_bomb(data: bytes, path: str) -> None:
    """Refuse Office files whose declared uncompressed size or ratio is absurd."""
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except zipfile.BadZipFile as exc:
        raise parse_failure(Stage.PARSE, f"corrupt Office file {path}: not a readable ZIP container", exc) from exc
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise parse_failure(
            "detect",
            f"possible zip bomb: {path} expands to {total} bytes from {len(data)}; inspect it before retrying",
        )


# What parsing a document loads lazily on its first use, by kind: plain text (docsync's format
# parsers, unstructured's partitioner and its spaCy sentence model, which decides titles among
# short paragraphs), Markdown/HTML (the Markdown converter's extensions, unstructured's HTML
# partitioner), Word (its partitioner), and the PDF path (unstructured's, pikepdf, pypdfium2 and
# what numba compiles: ~2.4 s after the text step, whose ~7 s are mostly importing Presidio through
# spaCy's registry and loading unstructured's sentence model).
WARM_STEPS = ("text", "markup", "office", "pdf")
# The steps a document needs by its file name's suffix. A file whose name says nothing (no or
# an unknown suffix, containers whose parts can be anything) gets every step.
WARM_BY_SUFFIX: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("txt", "text", "log", "csv", "tsv", "tab", "json", "ndjson", "jsonl"), ("text",)),
    **dict.fromkeys(("md", "markdown", "html", "htm", "xhtml", "xml"), ("text", "markup")),
    **dict.fromkeys(("docx", "doc", "docm", "dot", "dotx", "odt", "rtf", "pptx", "ppt", "odp", "xlsx", "xls", "xlsm",
                     "ods"), ("text", "markup", "office")),
    **dict.fromkeys(("pdf", "png", "jpg", "jpeg", "tif", "tiff", "bmp", "gif", "webp", "heic", "heif"), ("text", "pdf")),
}
_warmed: set[str] = set()


def warm_parsers(settings: Settings, path: str | None = None) -> None:
    """Load, outside any document deadline, what parsing loads lazily on its first document
    (of all kinds, or of the kind ``path``'s suffix says): an alarm that lands inside an import
    or a model load is swallowed by the libraries' own ``except`` clauses, so a first document
    would run past its limit (and a half-done import could stay broken). Each step runs once per
    process; a batch of text files no longer pays the PDF path (~2.4 s of a cold CLI worker's
    start, issue 15). A file whose content is not what its name says (a PDF named .txt)
    loads what it needs inside its own deadline, as before any warm-up existed."""
    suffix = PurePosixPath(path).suffix.lower().lstrip(".") if path else ""  # "": every step
    for step in WARM_BY_SUFFIX.get(suffix, WARM_STEPS):
        if step in _warmed:
            continue
        try:
            _warm_step(step, settings)
        except Exception:  # a warm-up never fails a batch: the documents will say what is wrong
            log.warning("warming up the parsers (%s) failed; the first documents load what they need", step,
                        exc_info=True)
        _warmed.add(step)


def _warm_step(step: str, settings: Settings) -> None:
    """One kind's warm-up: a small document of that kind parsed (what it imports and loads is
    what that kind's documents need)."""
    import importlib

    if step == "text":
        parse_document(b"Warm-up notes\n\nThe sentence model loads once per process, before any deadline.",
                       "warm-up.txt", settings)
    elif step == "markup":  # a Markdown file is partitioned as HTML: both partitioners
        parse_document(b"# Warm-up\n\n- an item\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode\n```\n",
                       "warm-up.md", settings)
    elif step == "office":
        importlib.import_module("unstructured.partition.docx")
    elif step == "pdf":
        parse_document(_warm_up_pdf(), "warm-up.pdf", settings)


def _warm_up_pdf() -> bytes:
    """A one-page PDF with one line of text, written by hand (no PDF library needed)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,  # the content stream, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    text = b"BT /F1 12 Tf 72 720 Td (The quarterly report was approved by the board.) Tj ET"
    objects[3] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text)
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def parse_document(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    """Turn a document into blocks, or raise ParseError with a quarantine-ready reason
    (:class:`~docsync.limits.LimitExceeded`, stage ``limits``, for a document over the pixel
    or memory limits)."""
    # Parsing runs under the per-document memory budget (a no-op inside the caller's own
    # window): what escapes the pixel and stream checks fails with MemoryError, not the worker.
    return memory_budget.run_limited(settings.sync.max_doc_memory_bytes, path, _parse, data, path, settings)


def _parse(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    from docsync import parsers as p

    mime = detect_mime(data, path)
    if mime == MIME_PDF:
        from docsync.parse_pages import parse_pdf

        return parse_pdf(data, path, settings)
    if mime in IMAGE_MIMES:
        from docsync.parse_pages import parse_image

        return parse_image(data, path, mime, settings)
    if mime in OOXML.values() or mime in ZIPPED:
        check_zip_bomb(data, path)
    handler = p.handler(mime)
    if handler is not None:
        return handler(data, path, mime, settings)
    if mime in OOXML.values():
        return _partition(data, path, mime)
    if mime in TEXT_MIMES:
        return _partition(data, path, mime)
    if mime.startswith("text/"):  # libmagic's guesses at source code and the like: read as plain text
        return _partition(data, path, "text/plain")
    raise parse_failure(Stage.DETECT, p.unsupported_reason(mime, path))


def elements_to_blocks(elements) -> list[Block]:
    blocks = []
    for element in elements:
        text = (element.text or "").strip()
        if not text:
            continue
        category = getattr(element, "category", "")
        kind = "title" if category in ("Title", "Header") else "table" if category == "Table" else "text"
        blocks.append(Block(text=text, page=getattr(element.metadata, "page_number", None), kind=kind))
    return blocks


def _partition(data: bytes, path: str, mime: str, as_type: str | None = None) -> ParsedDocument:
    """unstructured `fast` on OOXML, Markdown and plain text (``as_type``: the OOXML type of
    a converted file; the document keeps its own ``mime``)."""
    from unstructured.partition.auto import partition

    as_type = as_type or mime
    content_type = as_type if as_type in OOXML.values() or as_type == "text/markdown" else "text/plain"
    try:
        if content_type == "text/plain":
            from docsync.parsers.text import plain_blocks

            blocks = plain_blocks(decode_text(data, path))  # partition_text's blocks, without its per-paragraph NLP
            return ParsedDocument(mime=mime, blocks=blocks, pages=1 if blocks else 0)
        if content_type == "text/markdown":  # Markdown is partitioned as the HTML it converts to
            from docsync.parsers.markup import skip_narrative_classification

            skip_narrative_classification()
        elements = partition(file=io.BytesIO(data), content_type=content_type, strategy="fast", languages=["eng"])
    except TimeoutError:  # the document deadline (pipeline.deadline), not a broken file
        raise
    except Exception as exc:  # unstructured raises many types for broken files
        raise parse_failure(Stage.PARSE, f"could not parse {path} as {mime}: the file looks corrupt", exc) from exc
    blocks = elements_to_blocks(elements)
    pages = max((b.page or 1 for b in blocks), default=0)
    return ParsedDocument(mime=mime, blocks=blocks, pages=pages)


def ocr_confidence(pages: dict, scope: str) -> float | None:
    """The document's OCR confidence from its pages' :class:`~docsync.ocr.OcrPage`:
    ``page`` scope = the lowest page (one unreadable page fails the document),
    ``document`` scope = mean over all words read. Blank pages (no words) do not count."""
    if not pages:
        return None
    read = [p for p in pages.values() if p.words]
    if not read:
        return 0.0
    if scope == "document":
        return round(sum(p.confidence * p.words for p in read) / sum(p.words for p in read), 1)
    return min(p.confidence for p in read)
