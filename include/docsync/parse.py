"""Bytes -> text blocks with page numbers: type detection by content, unstructured `fast`
for digital formats, tesseract for scanned PDF pages and images (decided page by page)."""

from __future__ import annotations

import io
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from docsync.config import Settings, apply_offline_env
from docsync.quarantine import Failure

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


class ParseError(Exception):
    """A document could not be turned into text; carries the quarantine failure."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


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


def _fail(stage: str, reason: str, exc: BaseException | None = None) -> ParseError:
    error = f"{type(exc).__name__}: {exc}" if exc is not None else ""
    return ParseError(Failure(stage=stage, reason=reason, error=error))


def detect_mime(data: bytes, path: str) -> str:
    """The document's type from its content (libmagic), refined for OOXML and Markdown."""
    import magic

    if not data:
        raise _fail("detect", "empty file (0 bytes): nothing to index; remove it or replace it with the real document")
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
        raise _fail("parse", f"corrupt Office file {path}: not a readable ZIP container", exc) from exc
    total = sum(i.file_size for i in infos)
    if total > MAX_UNZIPPED_BYTES or total > MAX_ZIP_RATIO * max(len(data), 1):
        raise _fail(
            "detect",
            f"possible zip bomb: {path} expands to {total} bytes from {len(data)}; inspect it before retrying",
        )


def parse_document(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    """Turn a document into blocks, or raise ParseError with a quarantine-ready reason."""
    mime = detect_mime(data, path)
    if mime == MIME_PDF:
        return _parse_pdf(data, path, settings)
    if mime in IMAGE_MIMES:
        return _parse_image(data, path, mime, settings)
    if mime in OOXML.values():
        check_zip_bomb(data, path)
        return _partition(data, path, mime)
    if mime in TEXT_MIMES or mime.startswith("text/"):
        return _partition(data, path, mime)
    raise _fail(
        "detect",
        f"unsupported or unrecognised file type {mime!r} for {path} (detected from content); "
        "convert it to PDF/DOCX/text or exclude it with DOCSYNC_EXCLUDE",
    )


def _elements_to_blocks(elements) -> list[Block]:  # noqa: ANN001
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
        raise _fail("parse", f"could not parse {path} as {mime}: the file looks corrupt", exc) from exc
    blocks = _elements_to_blocks(elements)
    pages = max((b.page or 1 for b in blocks), default=0)
    return ParsedDocument(mime=mime, blocks=blocks, pages=pages)


def _open_pdf(data: bytes, path: str):  # noqa: ANN202
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise _fail(
                "parse",
                f"encrypted PDF {path}: password protected; ask the owner for an unprotected copy",
                exc,
            ) from exc
        raise _fail("parse", f"corrupt PDF {path}: cannot be opened; re-export or replace it", exc) from exc


PDF_WINDOW = 100  # digital pages handed to unstructured at a time (bounds memory on huge PDFs)


def _deadline(settings: Settings) -> float | None:
    return time.monotonic() + settings.doc_timeout_s if settings.doc_timeout_s > 0 else None


def _timeout(path: str, settings: Settings, exc: BaseException | None = None) -> ParseError:
    return _fail(
        "timeout",
        f"{path}: parsing/OCR took longer than {settings.doc_timeout_s} s (DOCSYNC_DOC_TIMEOUT_S); "
        "split the document or raise the limit",
        exc,
    )


def _check(deadline: float | None, path: str, settings: Settings) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise _timeout(path, settings)


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


def _digital_blocks(  # noqa: ANN001
    pdf, numbers: list[int], path: str, settings: Settings, deadline: float | None
) -> list[Block]:
    """Blocks of the digital pages, ``PDF_WINDOW`` pages at a time (a 1,000-page PDF is
    never partitioned in one go), with the original page numbers."""
    import pypdfium2 as pdfium
    from unstructured.partition.pdf import partition_pdf

    blocks: list[Block] = []
    for start in range(0, len(numbers), PDF_WINDOW):
        _check(deadline, path, settings)
        window = numbers[start : start + PDF_WINDOW]
        part = pdfium.PdfDocument.new()
        try:
            part.import_pages(pdf, [n - 1 for n in window])
            buffer = io.BytesIO()
            part.save(buffer)
        finally:
            part.close()
        buffer.seek(0)
        try:
            elements = partition_pdf(file=buffer, strategy="fast", languages=["eng"])
        except TimeoutError:
            raise
        except Exception as exc:
            raise _fail("parse", f"could not extract text from PDF {path}: the file looks corrupt", exc) from exc
        for block in _elements_to_blocks(elements):
            block.page = window[min(max((block.page or 1) - 1, 0), len(window) - 1)]
            blocks.append(block)
        del elements, buffer
    return blocks


def _parse_pdf(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    from docsync.ocr import OcrTimeout, ocr_images

    deadline = _deadline(settings)
    pdf = _open_pdf(data, path)
    try:
        n_pages = len(pdf)
        if n_pages == 0:
            raise _fail("parse", f"PDF {path} has no pages")
        scanned: list[int] = []
        for index in range(n_pages):
            if index % 50 == 0:
                _check(deadline, path, settings)
            page = pdf[index]
            textpage = page.get_textpage()
            text = textpage.get_text_bounded() or ""
            textpage.close()
            page.close()
            if len(text.strip()) < settings.ocr_min_page_chars:
                scanned.append(index + 1)
        scanned_set = set(scanned)
        digital = [n for n in range(1, n_pages + 1) if n not in scanned_set]
        blocks = _digital_blocks(pdf, digital, path, settings, deadline) if digital else []
        pages: dict = {}
        if scanned:
            scale = settings.ocr_dpi / 72

            def render():
                for number in scanned:
                    page = pdf[number - 1]
                    bitmap = page.render(scale=scale, grayscale=True)
                    image = bitmap.to_pil()
                    bitmap.close()
                    page.close()
                    yield number, image

            try:
                ocr = ocr_images(render(), lang=settings.ocr_lang, timeout=settings.doc_timeout_s, deadline=deadline)
                for result in ocr:
                    pages[result.page] = result
                    if result.text.strip():
                        blocks.append(Block(text=result.text, page=result.page, kind="text", ocr=True))
            except ParseError:
                raise
            except OcrTimeout as exc:
                raise _timeout(path, settings, exc) from exc
            except TimeoutError:
                raise  # the pipeline's own deadline
            except Exception as exc:
                raise _fail("ocr", f"OCR failed on PDF {path}", exc) from exc
            blocks.sort(key=lambda b: b.page or 0)
        return ParsedDocument(
            mime=MIME_PDF,
            blocks=blocks,
            pages=n_pages,
            ocr_pages=len(scanned),
            ocr_confidence=ocr_confidence(pages, settings.ocr_confidence_scope),
            page_confidence={n: p.confidence for n, p in pages.items()},
        )
    finally:
        pdf.close()


def _parse_image(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from PIL import Image, ImageSequence

    from docsync.ocr import OcrTimeout, ocr_images

    deadline = _deadline(settings)
    try:
        image = Image.open(io.BytesIO(data))
        frames = [(i + 1, f.convert("L")) for i, f in enumerate(ImageSequence.Iterator(image))]
    except Exception as exc:
        raise _fail("parse", f"corrupt image {path}: cannot be decoded", exc) from exc
    blocks, pages = [], {}
    try:
        for result in ocr_images(frames, lang=settings.ocr_lang, timeout=settings.doc_timeout_s, deadline=deadline):
            pages[result.page] = result
            if result.text.strip():
                blocks.append(Block(text=result.text, page=result.page, ocr=True))
    except OcrTimeout as exc:
        raise _timeout(path, settings, exc) from exc
    except TimeoutError:
        raise
    except Exception as exc:
        raise _fail("ocr", f"OCR failed on image {path}", exc) from exc
    return ParsedDocument(
        mime=mime,
        blocks=blocks,
        pages=len(frames),
        ocr_pages=len(frames),
        ocr_confidence=ocr_confidence(pages, settings.ocr_confidence_scope),
        page_confidence={n: p.confidence for n, p in pages.items()},
    )
