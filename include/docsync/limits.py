"""Resource limits for one document: pixels per rendered page or image frame, the streams of
a PDF, and memory. Over any of them the document fails with :class:`LimitExceeded` (stage
``limits``): quarantined with the reason, the batch goes on.

A 333-byte PDF can declare a 200 x 200 inch page (3.6 Gpx at 300 dpi) and a 1.7 MB TIFF
can hold hundreds of full-size frames: the pixel caps stop those before anything is
allocated. :func:`check_pdf` measures what pdfium would hold before it opens a PDF (pdfium
aborts the process on a failed allocation). :func:`run_limited` is the backstop for what no
check anticipates: it bounds what one document's preparation may add to the process
(:mod:`docsync.memory_budget`).

Why ``RLIMIT_DATA``, and only around one document: the limit is per process, and the
embedding model lives in the same process; set for good, it would fail the embedder on its
next large batch. ``RLIMIT_AS`` would count reserved but unused address space (thread
stacks, malloc arenas, torch's mappings) and fail far too early.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING

from docsync.errors import DocumentError, Failure, Stage

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pikepdf

MIN_RENDER_DPI = 72  # below this tesseract reads nothing of normal-size text: refuse instead


class LimitExceeded(DocumentError):
    """One document hit a resource limit (stage ``limits``): quarantined, the batch goes on."""

    def __init__(self, reason: str, error: str = "") -> None:
        super().__init__(Failure(Stage.LIMITS, reason, error))


# --- pixels -----------------------------------------------------------------------------


def render_scale(width_pt: float, height_pt: float, dpi: float, max_pixels: int, what: str) -> float:
    """The scale (pixels per PDF point) to render a page of ``width_pt`` x ``height_pt`` points
    at ``dpi``, lowered so that the bitmap has at most ``max_pixels`` pixels.

    Raises :class:`LimitExceeded` when even :data:`MIN_RENDER_DPI` would be over the cap
    (such a page is either a bomb or a poster that OCR could not read at that resolution).
    """
    scale = dpi / 72
    if max_pixels <= 0 or width_pt <= 0 or height_pt <= 0:
        return scale
    # pypdfium2 rounds each side up: keep one pixel of margin per side.
    if (width_pt * scale + 1) * (height_pt * scale + 1) <= max_pixels:
        return scale
    fit = math.sqrt(max_pixels / ((width_pt + 72 / dpi) * (height_pt + 72 / dpi)))
    fit = min(scale, fit * 0.999)
    if fit * 72 < MIN_RENDER_DPI:
        raise LimitExceeded(
            f"{what} is {width_pt / 72:.0f} x {height_pt / 72:.0f} in: rendering it for OCR at even "
            f"{MIN_RENDER_DPI} dpi would take {width_pt * height_pt * (MIN_RENDER_DPI / 72) ** 2 / 1e6:.0f} Mpx, "
            f"over DOCSYNC_MAX_PAGE_PIXELS ({max_pixels / 1e6:.0f} Mpx); crop or split the page, "
            "or raise the limit if the page is genuine"
        )
    return fit


def check_pixels(width: int, height: int, max_pixels: int, what: str) -> None:
    """Refuse an image frame of ``width`` x ``height`` before it is decoded."""
    if max_pixels > 0 and width * height > max_pixels:
        raise LimitExceeded(
            f"{what} is {width} x {height} px ({width * height / 1e6:.0f} Mpx), over "
            f"DOCSYNC_MAX_PAGE_PIXELS ({max_pixels / 1e6:.0f} Mpx); downscale the image or raise the limit"
        )


# --- PDF streams -------------------------------------------------------------------------
# pdfium aborts the whole process when an allocation fails (it cannot raise MemoryError),
# so what it will hold must be measured before it opens the file: a 4 KB PDF whose content
# stream is FlateDecode'd twice expands to gigabytes, and a 25 KB content stream of a
# million rectangles takes pdfium ~340 MB of objects (~26 bytes per decoded byte). qpdf
# (pikepdf) walks the pages instead: it raises Python exceptions, and the streams are
# inflated here incrementally, never more than ~1 MiB at a time.

_FLATE = {"/FlateDecode", "/Fl"}
_PIECE = 1 << 20
_MAX_DEPTH = 16  # nested form XObjects / Type3 glyphs followed


def _inflate_size(data: bytes, layers: int, cap: int) -> int:
    """Size of ``data`` after ``layers`` nested Flate decodings, counted in pieces (stops
    once over ``cap``)."""
    import zlib

    decoders = [zlib.decompressobj() for _ in range(layers)]
    total = 0

    def feed(level: int, chunk: bytes) -> None:
        nonlocal total
        decoder = decoders[level]
        while not decoder.eof and total <= cap:
            try:
                out = decoder.decompress(chunk, _PIECE)
            except zlib.error:
                return  # corrupt data: pdfium decodes what it can, as do we
            chunk = decoder.unconsumed_tail
            if level + 1 < layers:
                feed(level + 1, out)
            else:
                total += len(out)
            if not out and not chunk:
                return  # needs more input

    for start in range(0, len(data), _PIECE):
        feed(0, data[start : start + _PIECE])
        if total > cap or decoders[0].eof:
            break
    return total


def _stream_size(stream: pikepdf.Stream, cap: int) -> int:
    """Decoded size of a stream, up to just over ``cap``: Flate layers are counted in
    pieces; a stream with other filters is decoded by qpdf (a MemoryError there is caught
    by :func:`run_limited`), or counted raw when qpdf cannot decode it."""
    import pikepdf

    filters = stream.get("/Filter")
    names = [str(f) for f in filters] if isinstance(filters, pikepdf.Array) else [str(filters)] if filters else []
    raw = stream.read_raw_bytes()
    if not names:
        return len(raw)
    if all(name in _FLATE for name in names):
        return _inflate_size(raw, len(names), cap)
    try:
        return len(stream.read_bytes())
    except Exception:  # an unsupported filter (pdfium may know it): its raw size at least
        return len(raw) if names[0] not in _FLATE else _inflate_size(raw, 1, cap)


def _inherited(page: pikepdf.Dictionary, key: str) -> object:
    node = page
    for _ in range(_MAX_DEPTH * 4):  # the page tree's own depth
        if node is None:
            return None
        if key in node:
            return node[key]
        node = node.get("/Parent")
    return None


def _page_streams(resources: object, seen: set, depth: int, images: list) -> Iterator[pikepdf.Stream]:
    """Streams pdfium decodes to read a page's text: form XObjects (and their resources),
    embedded font programs, Type3 glyph procedures; image sizes go to ``images``."""
    import pikepdf

    if not isinstance(resources, pikepdf.Dictionary) or depth > _MAX_DEPTH:
        return
    xobjects = resources.get("/XObject")
    for _name, xobject in (xobjects.items() if isinstance(xobjects, pikepdf.Dictionary) else []):
        if not isinstance(xobject, pikepdf.Stream) or xobject.objgen in seen and xobject.objgen != (0, 0):
            continue
        seen.add(xobject.objgen)
        if xobject.get("/Subtype") == "/Image":
            width, height = xobject.get("/Width"), xobject.get("/Height")
            if isinstance(width, int) and isinstance(height, int):
                images.append((int(width), int(height)))
        elif xobject.get("/Subtype") == "/Form":
            yield xobject
            yield from _page_streams(xobject.get("/Resources"), seen, depth + 1, images)
    fonts = resources.get("/Font")
    for _name, font in (fonts.items() if isinstance(fonts, pikepdf.Dictionary) else []):
        if not isinstance(font, pikepdf.Dictionary) or font.objgen in seen and font.objgen != (0, 0):
            continue
        seen.add(font.objgen)
        descendants = font.get("/DescendantFonts")
        for part in [font, *(descendants if isinstance(descendants, pikepdf.Array) else [])]:
            descriptor = part.get("/FontDescriptor") if isinstance(part, pikepdf.Dictionary) else None
            for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                program = descriptor.get(key) if isinstance(descriptor, pikepdf.Dictionary) else None
                if isinstance(program, pikepdf.Stream):
                    yield program
        procs = font.get("/CharProcs")
        for _glyph, proc in (procs.items() if isinstance(procs, pikepdf.Dictionary) else []):
            if isinstance(proc, pikepdf.Stream):
                yield proc
        yield from _page_streams(font.get("/Resources"), seen, depth + 1, images)


def check_pdf(data: bytes, max_page_bytes: int, max_image_pixels: int, what: str) -> None:
    """Refuse a PDF before pdfium opens it when one page's streams (content, forms, fonts)
    decode to more than ``max_page_bytes``, or it holds an image declared larger than
    ``max_image_pixels``. Files qpdf cannot open are left to pdfium (which reports them
    as corrupt or encrypted)."""
    import pikepdf

    if max_page_bytes <= 0:
        return
    try:
        pdf = pikepdf.open(io.BytesIO(data))
    except MemoryError:
        raise
    except Exception:
        return
    sizes: dict[tuple[int, int], int] = {}  # fonts and forms shared by pages: measured once
    with pdf:
        for number, page in enumerate(pdf.pages, start=1):
            images: list[tuple[int, int]] = []
            seen: set = set()
            total = 0
            contents = page.obj.get("/Contents")
            streams = contents if isinstance(contents, pikepdf.Array) else [contents]
            resources = _inherited(page.obj, "/Resources")
            for stream in [*streams, *_page_streams(resources, seen, 0, images)]:
                if isinstance(stream, pikepdf.Stream):
                    key = stream.objgen
                    if key == (0, 0) or key not in sizes:
                        sizes[key] = _stream_size(stream, max_page_bytes - total)
                    total += sizes[key]
                if total > max_page_bytes:
                    raise LimitExceeded(
                        f"page {number} of {what} decodes to more than {max_page_bytes / 2**20:.0f} MiB of "
                        "page content (a decompression bomb, or far beyond DOCSYNC_MAX_DOC_MEMORY_MB); "
                        "check the file or raise the limit"
                    )
            for width, height in images:
                if max_image_pixels > 0 and width * height > max_image_pixels:
                    raise LimitExceeded(
                        f"page {number} of {what} holds an image of {width} x {height} px "
                        f"({width * height / 1e6:.0f} Mpx), more than can be decoded within "
                        "DOCSYNC_MAX_DOC_MEMORY_MB; downscale the images or raise the limit"
                    )
