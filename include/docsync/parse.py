"""Bytes -> text blocks with page numbers: type detection by content, unstructured `fast`
for digital formats, tesseract for scanned PDF pages and images (decided page by page)."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from docsync import memory_budget
from docsync.config import Settings, apply_offline_env
from docsync.errors import DocumentError, Failure, Stage

apply_offline_env()

MIME_PDF = "application/pdf"
OOXML = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
OOXML_MARKER = {"docx": "word/", "pptx": "ppt/", "xlsx": "xl/"}
IMAGE_MIMES = {"image/png", "image/jpeg", "image/tiff", "image/bmp", "image/gif", "image/webp"}
TEXT_MIMES = {"text/plain", "text/markdown", "text/x-markdown", "text/html", "text/csv", "application/json"}
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


@dataclass
class ParsedDocument:
    mime: str
    blocks: list[Block]
    pages: int = 0
    ocr_pages: int = 0
    ocr_confidence: float | None = None  # lowest page confidence among OCR'd pages
    page_confidence: dict[int, float] = field(default_factory=dict)

    @property
    def text(self) -> str:
        return "\n\n".join(b.text for b in self.blocks if b.text.strip())


def parse_failure(stage: str, reason: str, exc: BaseException | None = None) -> ParseError:
    error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    return ParseError(Failure(stage=stage, reason=reason, error=error))


def detect_mime(data: bytes, path: str) -> str:
    """The document's type from its content (libmagic), refined for OOXML and Markdown."""
    import magic

    if not data:
        raise parse_failure(Stage.DETECT, "empty file (0 bytes): nothing to index; remove it or replace it with the real document")
    mime = magic.from_buffer(data[:65536], mime=True)
    suffix = PurePosixPath(path).suffix.lower().lstrip(".")
    if mime in ("application/zip", "application/octet-stream") and data[:2] == b"PK":
        kind = _ooxml_kind(data)
        if kind:
            return OOXML[kind]
    if mime == "text/plain" and suffix in ("md", "markdown"):
        return "text/markdown"
    return mime


def _ooxml_kind(data: bytes) -> str | None:
    try:
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return None
    for kind, marker in OOXML_MARKER.items():
        if any(n.startswith(marker) for n in names):
            return kind
    return None


_BOMS = (
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def decode_text(data: bytes) -> str:
    """Text bytes to str: byte-order mark first, then strict UTF-8, then the detected
    charset (cp1252, UTF-16 without BOM, ...). A wrong guess would smuggle PII past the
    analyzer (e.g. UTF-16 read as UTF-8 puts NULs between the characters)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    text = str(best) if best is not None else data.decode("utf-8", errors="replace")
    return text.replace("\x00", "")


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


def parse_document(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    """Turn a document into blocks, or raise ParseError with a quarantine-ready reason
    (:class:`~docsync.limits.LimitExceeded`, stage ``limits``, for a document over the pixel
    or memory limits)."""
    # Parsing runs under the per-document memory budget (a no-op inside the caller's own
    # window): what escapes the pixel and stream checks fails with MemoryError, not the worker.
    return memory_budget.run_limited(settings.sync.max_doc_memory_bytes, path, _parse, data, path, settings)


def _parse(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    mime = detect_mime(data, path)
    if mime == MIME_PDF:
        from docsync.parse_pages import parse_pdf

        return parse_pdf(data, path, settings)
    if mime in IMAGE_MIMES:
        from docsync.parse_pages import parse_image

        return parse_image(data, path, mime, settings)
    if mime in OOXML.values():
        check_zip_bomb(data, path)
        return _partition(data, path, mime)
    if mime in TEXT_MIMES or mime.startswith("text/"):
        return _partition(data, path, mime)
    raise parse_failure(
        Stage.DETECT,
        f"unsupported or unrecognised file type {mime!r} for {path} (detected from content); "
        "convert it to PDF/DOCX/text or exclude it with DOCSYNC_EXCLUDE",
    )


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


def _partition(data: bytes, path: str, mime: str) -> ParsedDocument:
    from unstructured.partition.auto import partition

    content_type = "text/plain" if mime not in OOXML.values() and mime not in ("text/html", "text/markdown") else mime
    try:
        if content_type == "text/plain":
            text = decode_text(data)
            from unstructured.partition.text import partition_text

            elements = partition_text(text=text, languages=["eng"])
        else:
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
