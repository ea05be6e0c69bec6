"""PDF and image documents, page by page: digital pages through unstructured (in windows of
pages), scanned pages and image frames through tesseract, each within the pixel limits of
:mod:`docsync.limits` (a page is rendered at most ``DOCSYNC_MAX_PAGE_PIXELS`` large, image
frames are decoded one at a time and refused over it)."""

from __future__ import annotations

import io
import math
import time
from typing import TYPE_CHECKING

from docsync import limits
from docsync.errors import DocumentError, Stage
from docsync.parse import (
    MIME_PDF,
    Block,
    ParsedDocument,
    ParseError,
    elements_to_blocks,
    ocr_confidence,
    parse_failure,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from PIL import Image
    from pypdfium2 import PdfDocument

    from docsync.config import Settings


def _open_pdf(data: bytes, path: str):
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            raise parse_failure(
                Stage.PARSE,
                f"encrypted PDF {path}: password protected; ask the owner for an unprotected copy",
                exc,
            ) from exc
        raise parse_failure(Stage.PARSE, f"corrupt PDF {path}: cannot be opened; re-export or replace it", exc) from exc


PDF_WINDOW = 100  # digital pages handed to unstructured at a time (bounds memory on huge PDFs)


def _deadline(settings: Settings) -> float | None:
    return time.monotonic() + settings.sync.doc_timeout_s if settings.sync.doc_timeout_s > 0 else None


def _timeout(path: str, settings: Settings, exc: BaseException | None = None) -> ParseError:
    return parse_failure(
        Stage.TIMEOUT,
        f"{path}: parsing/OCR took longer than {settings.sync.doc_timeout_s} s (DOCSYNC_DOC_TIMEOUT_S); "
        "split the document or raise the limit",
        exc,
    )


def _check(deadline: float | None, path: str, settings: Settings) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise _timeout(path, settings)


def _digital_blocks(
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
            raise parse_failure(Stage.PARSE, f"could not extract text from PDF {path}: the file looks corrupt", exc) from exc
        for block in elements_to_blocks(elements):
            block.page = window[min(max((block.page or 1) - 1, 0), len(window) - 1)]
            blocks.append(block)
        del elements, buffer
    return blocks


def parse_pdf(data: bytes, path: str, settings: Settings) -> ParsedDocument:
    from docsync.ocr import OcrTimeout, ocr_images

    deadline = _deadline(settings)
    # Before pdfium sees the file: it aborts the process (no MemoryError) when an allocation
    # fails, and holds ~26 bytes per byte of page content and 4 bytes per image pixel.
    budget = settings.sync.max_doc_memory_bytes
    limits.check_pdf(data, budget // 32, budget // 8, path)
    pdf = _open_pdf(data, path)
    try:
        n_pages = len(pdf)
        if n_pages == 0:
            raise parse_failure(Stage.PARSE, f"PDF {path} has no pages")
        scanned: list[int] = []
        for index in range(n_pages):
            if index % 50 == 0:
                _check(deadline, path, settings)
            page = pdf[index]
            textpage = page.get_textpage()
            text = textpage.get_text_bounded() or ""
            textpage.close()
            page.close()
            if len(text.strip()) < settings.ocr.min_page_chars:
                scanned.append(index + 1)
        scanned_set = set(scanned)
        digital = [n for n in range(1, n_pages + 1) if n not in scanned_set]
        blocks = _digital_blocks(pdf, digital, path, settings, deadline) if digital else []
        pages: dict = {}
        if scanned:
            # Every scanned page's scale first (cheap): a page too large even at the lowest
            # useful resolution fails the document before any OCR work.
            scales = {n: _render_scale(pdf, n, path, settings) for n in scanned}

            def render():
                for number in scanned:
                    page = pdf[number - 1]
                    bitmap = page.render(scale=scales[number], grayscale=True)
                    image = bitmap.to_pil()
                    bitmap.close()
                    page.close()
                    yield number, image

            try:
                ocr = ocr_images(render(), lang=settings.ocr.lang, timeout=settings.sync.doc_timeout_s, deadline=deadline)
                for result in ocr:
                    pages[result.page] = result
                    if result.text.strip():
                        blocks.append(Block(text=result.text, page=result.page, kind="text", ocr=True))
            except DocumentError:
                raise
            except OcrTimeout as exc:
                raise _timeout(path, settings, exc) from exc
            except TimeoutError:
                raise  # the pipeline's own deadline
            except Exception as exc:
                raise parse_failure(Stage.OCR, f"OCR failed on PDF {path}", exc) from exc
            blocks.sort(key=lambda b: b.page or 0)
        return ParsedDocument(
            mime=MIME_PDF,
            blocks=blocks,
            pages=n_pages,
            ocr_pages=len(scanned),
            ocr_confidence=ocr_confidence(pages, settings.ocr.confidence_scope),
            page_confidence={n: p.confidence for n, p in pages.items()},
        )
    finally:
        pdf.close()


def _render_scale(pdf: PdfDocument, number: int, path: str, settings: Settings) -> float:
    """Pixels per PDF point for OCR of one page: ``DOCSYNC_OCR_DPI``, lowered so the bitmap
    stays within ``DOCSYNC_MAX_PAGE_PIXELS`` (a 200 x 200 in page would be 3.6 Gpx at 300 dpi)."""
    page = pdf[number - 1]
    try:
        width, height = page.get_size()
    finally:
        page.close()
    return limits.render_scale(width, height, settings.ocr.dpi, settings.ocr.max_page_pixels, f"page {number} of {path}")


def _frames(image: Image.Image, path: str, settings: Settings) -> Iterator[tuple[int, Image.Image]]:
    """The frames of an image as grayscale, decoded one at a time when OCR asks for the next
    (a TIFF can hold hundreds of pages), each checked against ``DOCSYNC_MAX_PAGE_PIXELS``
    before it is decoded."""
    from PIL import Image

    cap = settings.ocr.max_page_pixels
    for index in range(getattr(image, "n_frames", 1)):
        try:
            image.seek(index)
            width, height = image.size
            if image.format == "JPEG" and width * height > cap > 0:
                # JPEG decodes at 1/2, 1/4 or 1/8 scale for free: fit the cap instead of refusing.
                scale = 1
                while scale < 8 and (width / scale) * (height / scale) > cap:
                    scale *= 2
                image.draft("L", (math.ceil(width / scale), math.ceil(height / scale)))
        except Exception as exc:
            raise parse_failure(Stage.PARSE, f"corrupt image {path}: frame {index + 1} cannot be read", exc) from exc
        width, height = image.size
        what = f"frame {index + 1} of {path}" if getattr(image, "n_frames", 1) > 1 else f"image {path}"
        limits.check_pixels(width, height, settings.ocr.max_page_pixels, what)
        try:
            frame = image.convert("L")
        except Image.DecompressionBombError as exc:
            raise limits.LimitExceeded(f"{what} is too large to decode ({exc})") from exc
        except Exception as exc:  # a MemoryError stays in the chain: the memory window sees it
            raise parse_failure(Stage.PARSE, f"corrupt image {path}: frame {index + 1} cannot be decoded", exc) from exc
        yield index + 1, frame


def parse_image(data: bytes, path: str, mime: str, settings: Settings) -> ParsedDocument:
    from PIL import Image

    from docsync.ocr import OcrTimeout, ocr_images

    deadline = _deadline(settings)
    if mime in ("image/heic", "image/heif"):
        import pi_heif  # HEIC/HEIF photos (iPhone): a Pillow plug-in, registered on first use

        pi_heif.register_heif_opener()
    try:
        image = Image.open(io.BytesIO(data))
        n_frames = getattr(image, "n_frames", 1)
    except Image.DecompressionBombError as exc:  # Pillow's own check, far above ours
        raise limits.LimitExceeded(f"image {path} is too large to decode ({exc})") from exc
    except Exception as exc:
        raise parse_failure(Stage.PARSE, f"corrupt image {path}: cannot be decoded", exc) from exc
    blocks, pages = [], {}
    try:
        ocr = ocr_images(
            _frames(image, path, settings), lang=settings.ocr.lang, timeout=settings.sync.doc_timeout_s, deadline=deadline
        )
        for result in ocr:
            pages[result.page] = result
            if result.text.strip():
                blocks.append(Block(text=result.text, page=result.page, ocr=True))
    except DocumentError:
        raise
    except OcrTimeout as exc:
        raise _timeout(path, settings, exc) from exc
    except TimeoutError:
        raise
    except Exception as exc:
        raise parse_failure(Stage.OCR, f"OCR failed on image {path}", exc) from exc
    return ParsedDocument(
        mime=mime,
        blocks=blocks,
        pages=n_frames,
        ocr_pages=n_frames,
        ocr_confidence=ocr_confidence(pages, settings.ocr.confidence_scope),
        page_confidence={n: p.confidence for n, p in pages.items()},
    )
