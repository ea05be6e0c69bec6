"""Resource limits for one document: pixels per rendered page or image frame, the streams of
a PDF, and memory. Over any of them the document fails with :class:`LimitExceeded` (stage
``limits``): quarantined with the reason, the batch goes on.

A 333-byte PDF can declare a 200 x 200 inch page (3.6 Gpx at 300 dpi) and a 1.7 MB TIFF
can hold hundreds of full-size frames: the pixel caps stop those before anything is
allocated. :func:`check_pdf` measures what pdfium would hold before it opens a PDF (pdfium
aborts the process on a failed allocation). :func:`run_limited` is the backstop for what no
check anticipates: it bounds what one document's preparation may add to the process.

Why ``RLIMIT_DATA``, and only around one document: the limit is per process, and the
embedding model lives in the same process; set for good, it would fail the embedder on its
next large batch. ``RLIMIT_AS`` would count reserved but unused address space (thread
stacks, malloc arenas, torch's mappings) and fail far too early.
"""

from __future__ import annotations

import ctypes
import io
import math
import os
import resource
import threading
import time
from typing import TYPE_CHECKING, TypeVar

from docsync.errors import DocumentError, Failure, Stage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import pikepdf

T = TypeVar("T")

HARD_HEADROOM = 128 * 2**20  # RLIMIT_DATA sits this far above the watchdog's budget
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


# --- memory -----------------------------------------------------------------------------

# Bookkeeping that an exception raised asynchronously (the watchdog below, the SIGALRM document
# deadline of docsync.deadlines, which re-fires every second) cannot leave half-done: an
# exception can arrive at any bytecode, also right after a lock was acquired and before the
# `with` block that would release it exists, which left a worker blocked on its own lock for
# good (seen under load). So no blocking lock: a set of open calls (add/discard are single,
# atomic C calls) and a window owner taken without blocking.
_OPEN: set[object] = set()  # run_limited calls in progress in this process
_WINDOW: dict[str, _Window] = {}  # "open": the one open window (the limit is process-wide)


def _data_bytes() -> int | None:
    """Private writable memory of this process now (``VmData``), what ``RLIMIT_DATA`` counts."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def caused_by_memory(exc: BaseException | None) -> bool:
    """True when ``exc`` or an exception it was raised from is a ``MemoryError`` (libraries
    often wrap it in their own error types)."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, MemoryError):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def memory_reason(what: str, max_bytes: int) -> str:
    return (
        f"{what} needs more than {max_bytes / 2**20:.0f} MiB of memory to parse "
        "(DOCSYNC_MAX_DOC_MEMORY_MB): it is malformed or built to exhaust memory (a decompression "
        "bomb, huge images); check the file, or raise the limit if it is genuine"
    )


def limited() -> bool:
    """True while a :func:`run_limited` call is in progress in this process."""
    return bool(_OPEN)


def wait_unlimited(timeout: float) -> bool:
    """Wait until no :func:`run_limited` call is in progress (the embedder's retry uses this).

    Polls rather than waiting on a condition: see ``_OPEN`` (a rare path, after an allocation
    failure)."""
    until = time.monotonic() + timeout
    while _OPEN:
        if time.monotonic() >= until:
            return False
        time.sleep(0.05)
    return True


class MemoryBudgetExceeded(MemoryError):
    """Raised in the thread of a :func:`run_limited` window by its watchdog: the process went
    over the document's budget (a MemoryError, so wrapped ones are recognised too)."""


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Schedule ``exc_type`` in another thread (raised at its next bytecode); None cancels."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(exc_type) if exc_type is not None else None
    )


class _Window:
    """One open memory window: ``RLIMIT_DATA`` set a little above the budget, and the budget
    the watchdog holds the process's ``VmData`` to."""

    def __init__(self, max_bytes: int) -> None:
        self.target = threading.get_ident()
        self.max_bytes = max_bytes
        self.budget: int | None = None  # set once open: the watchdog ignores the window until then
        self.previous: tuple[int, int] | None = None

    def open(self) -> None:
        used = _data_bytes() or 0
        previous = resource.getrlimit(resource.RLIMIT_DATA)
        soft = used + self.max_bytes + max(HARD_HEADROOM, self.max_bytes // 4)
        if previous[1] != resource.RLIM_INFINITY:
            soft = min(soft, previous[1])
        if previous[0] == resource.RLIM_INFINITY or soft < previous[0]:  # else: an operator's tighter limit stays
            self.previous = previous  # first: close() restores it even if interrupted right here
            resource.setrlimit(resource.RLIMIT_DATA, (soft, previous[1]))
        self.budget = used + self.max_bytes

    def close(self) -> None:
        """Idempotent: cancel an exception not yet delivered, restore the limit."""
        _raise_in(self.target, None)
        if self.previous is not None:
            resource.setrlimit(resource.RLIMIT_DATA, self.previous)
            self.previous = None


class _Watchdog(threading.Thread):
    """One per process, started with the first window: watches ``VmData`` while a window is
    open and, over its budget, raises :class:`MemoryBudgetExceeded` in the window's thread
    (delivered at its next bytecode; during a long C call, once that returns), then waits
    half a second before raising again (a library may swallow one).

    Long-lived rather than a thread per window: starting and joining threads takes locks that
    an asynchronous exception can leave held (see ``_OPEN``). It polls with ``time.sleep`` for
    the same reason (no Event or Condition shared with the window's thread).
    """

    INTERVAL_S = 0.02
    IDLE_S = 0.1

    def __init__(self) -> None:
        super().__init__(name="docsync-memory-watchdog", daemon=True)

    def run(self) -> None:
        while True:
            window = _WINDOW.get("open")
            if window is None or window.budget is None:
                time.sleep(self.IDLE_S)
                continue
            used = _data_bytes()
            if used is not None and used > window.budget and _WINDOW.get("open") is window:
                _raise_in(window.target, MemoryBudgetExceeded)
                time.sleep(0.5)
            else:
                time.sleep(self.INTERVAL_S)


_WATCHDOG_PID = [0]  # the process whose watchdog runs (a forked child starts its own)


def _ensure_watchdog() -> None:
    """Start this process's watchdog once (again in a forked child: threads do not survive a
    fork). Marked as started only once ``start`` returned: a start interrupted by an
    asynchronous exception is retried by the next window (at worst two watchdogs, which
    raise the same exception; never none)."""
    if _WATCHDOG_PID[0] != os.getpid():
        _Watchdog().start()
        _WATCHDOG_PID[0] = os.getpid()


def run_limited(max_bytes: int, what: str, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
    """``fn(*args, **kwargs)`` allowed to add at most ``max_bytes`` of private memory to the
    process; over it, :class:`LimitExceeded` (stage ``limits``) instead of what ``fn`` raised.

    Around one document's preparation (parse, OCR, PII); ``what`` names the document in the
    reason. Two guards, measured from the process's ``VmData`` when the window opens: a
    watchdog raises :class:`MemoryBudgetExceeded` in this thread once usage passes
    ``max_bytes`` (Python code that grows object by object: a hard limit alone leaves Python
    no memory even to raise, "Cannot recover from MemoryErrors"), and ``RLIMIT_DATA`` a little
    above that makes one huge allocation fail at once (zlib, numpy, PIL, ctypes buffers).
    The previous limit is restored on return, whatever happens.

    A function rather than a ``with`` block: the watchdog's exception can arrive at any
    bytecode, also at the start of a context manager's ``__exit__``, which would skip its
    clean-up; here the clean-up is retried by the caller-side ``except``.

    Nested or concurrent calls share the first one's window (the limit belongs to the
    process); nothing here blocks, so an exception raised asynchronously cannot leave a lock
    held (see ``_OPEN``). ``max_bytes <= 0`` disables it; so does a platform without ``/proc`` (the
    pixel caps still apply). Other threads (the background embedder) share the budget while
    the window is open; the embedder retries an allocation failure once it has closed
    (:func:`wait_unlimited`).
    """
    token = object()
    window = None
    if max_bytes > 0 and _data_bytes() is not None:
        _ensure_watchdog()
        window = _Window(max_bytes)
    try:
        try:
            _OPEN.add(token)
            # setdefault is one atomic step: the first call in opens the window, the others
            # (nested, or on other threads) run inside it.
            if window is not None and _WINDOW.setdefault("open", window) is window:
                window.open()
            return fn(*args, **kwargs)
        finally:
            _leave(window, token)
    except LimitExceeded:
        raise
    except BaseException as exc:
        _leave(window, token)  # again, if a late asynchronous exception interrupted it above
        if max_bytes > 0 and caused_by_memory(exc):
            raise LimitExceeded(memory_reason(what, max_bytes), f"{type(exc).__name__}: {exc}"[:500]) from exc
        raise


def _leave(window: _Window | None, token: object) -> None:
    """End a call (and close its window if it opened the process's); safe to call again
    after an interruption: every step is idempotent."""
    if window is not None and _WINDOW.get("open") is window:
        _WINDOW.pop("open", None)  # first: the watchdog stops looking at it
        window.close()
    elif window is not None and window.previous is not None:
        window.close()  # interrupted between the two steps above
    _OPEN.discard(token)
