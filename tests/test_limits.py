"""docsync.limits and the memory bombs of issue 13 (item 8): pixel caps per rendered page and
image frame, frames decoded one at a time, PDFs measured before pdfium opens them, and a
memory budget around one document.

The bombs are built here, small on disk, and parsed in a child process (fresh peak-RSS
counter; a 3 GiB safety cap so that old code fails the test instead of the machine).
Before: the 333-byte PDF went past 9 GiB, the multi-frame TIFF decoded every frame first.
"""

from __future__ import annotations

import io
import json
import os
import resource
import subprocess
import sys
import textwrap
import zlib
from typing import TYPE_CHECKING

import pytest

from docsync import limits, memory_budget
from docsync.config import load_settings
from docsync.errors import DocumentError, Stage
from docsync.parse import ParseError, parse_document

if TYPE_CHECKING:
    from pathlib import Path

MiB = 2**20


# --- bombs, built small -------------------------------------------------------------------


def _pdf(objects: list[bytes]) -> bytes:
    """A minimal PDF with a correct xref table from its objects (1 = catalog, 2 = pages)."""
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _page_pdf(content: bytes, filters: int = 1, media_box: bytes = b"0 0 612 792") -> bytes:
    """One page whose content stream is ``content``, FlateDecode'd ``filters`` times."""
    data = content
    for _ in range(filters):
        data = zlib.compress(data, 9)
    names = b"/FlateDecode" * filters
    return _pdf([
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[" + media_box + b"]/Resources<</Font<</F1 5 0 R>>>>/Contents 4 0 R>>",
        b"<</Length %d/Filter[%s]>>stream\n" % (len(data), names) + data + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ])


def huge_page_pdf() -> bytes:
    """The issue's 333-byte PDF: one empty 200 x 200 inch page (3.6 Gpx at 300 dpi)."""
    return (
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>"
        b"endobj\n3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 14400 14400]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF"
    )


def flate_bomb_pdf(expanded: int = 2**30) -> bytes:
    """A few KB whose content stream, FlateDecode'd twice, expands to ``expanded`` bytes."""
    inner = zlib.compressobj(9)
    first = bytearray(inner.compress(b"BT /F1 12 Tf 72 700 Td (Hello) Tj ET\n"))
    piece = b" " * (16 * MiB)
    for _ in range(expanded // len(piece)):
        first += inner.compress(piece)
    first += inner.flush()
    data = zlib.compress(bytes(first), 9)
    return _pdf([
        b"<</Type/Catalog/Pages 2 0 R>>",
        b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</Font<</F1 5 0 R>>>>/Contents 4 0 R>>",
        b"<</Length %d/Filter[/FlateDecode/FlateDecode]>>stream\n" % len(data) + data + b"\nendstream",
        b"<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>",
    ])


def rectangles_pdf(count: int = 10_000_000) -> bytes:
    """~250 KB: a content stream of ten million filled rectangles (pdfium keeps ~340 bytes of
    objects per rectangle: 3.4 GB, and it aborts the process when an allocation fails)."""
    return _page_pdf(b"0 0 1 1 re f\n" * count)


def text_objects_pdf(count: int = 80_000) -> bytes:
    """~220 KB: 80,000 positioned text objects of 24 characters on one page (3.7 MB of content,
    within the page-content cap of a 256 MiB budget), whose text extraction needs more."""
    lines = [b"BT /F1 1 Tf"] + [
        b"1 0 0 1 %d %d Tm (ABCDEFGHIJKLMNOPQRSTUVWX) Tj" % (i % 600, (i // 600) % 780) for i in range(count)
    ]
    return _page_pdf(b"\n".join([*lines, b"ET"]))


def tiff(frames: list[tuple[int, int]]) -> bytes:
    """A multi-frame bilevel CCITT G4 TIFF (blank pages compress to almost nothing)."""
    from PIL import Image, ImageDraw

    images = []
    for width, height in frames:
        image = Image.new("1", (width, height), 1)
        ImageDraw.Draw(image).rectangle((10, 10, 60, 40), fill=0)
        images.append(image)
    buffer = io.BytesIO()
    images[0].save(buffer, "TIFF", compression="group4", save_all=True, append_images=images[1:])
    return buffer.getvalue()


CHILD = textwrap.dedent(
    """
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_DATA, (3 * 2**30, resource.RLIM_INFINITY))  # safety net only
    import pypdfium2, PIL.Image, pikepdf
    from docsync.config import load_settings
    from docsync.parse import parse_document
    path, overrides = sys.argv[1], json.loads(sys.argv[2])
    if path.endswith("layout.pdf"):
        import unstructured.partition.pdf  # its import is not the document's memory
    settings = load_settings().replace(**overrides)
    data = open(path, "rb").read()

    def peak_mb():  # VmHWM: this process's own peak RSS (ru_maxrss keeps the parent's after exec)
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    out = {"base_mb": peak_mb()}
    try:
        doc = parse_document(data, path.rsplit("/", 1)[-1], settings)
        out |= {"parsed": True, "pages": doc.pages}
    except BaseException as exc:
        failure = getattr(exc, "failure", None)
        out |= {"type": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
                "stage": getattr(failure, "stage", None), "reason": getattr(failure, "reason", str(exc))}
    out["peak_mb"] = peak_mb()
    print(json.dumps(out))
    """
)


def parse_in_child(tmp_path: Path, name: str, data: bytes, timeout: int = 300, **overrides) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), json.dumps(overrides)],
        capture_output=True, text=True, timeout=timeout,
    )
    assert proc.returncode == 0, f"the parse crashed the process ({proc.returncode}): {proc.stderr[-2000:]}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["growth_mb"] = result["peak_mb"] - result["base_mb"]
    return result


def assert_quarantined_at_limits(result: dict, *needles: str) -> None:
    assert result.get("stage") == Stage.LIMITS, result
    assert "DocumentError" in result["mro"], result
    for needle in needles:
        assert needle in result["reason"], result


# --- the bombs of the issue ------------------------------------------------------------------


def test_tiny_pdf_with_a_huge_page_is_refused_before_rendering(tmp_path):
    data = huge_page_pdf()
    assert len(data) < 400
    result = parse_in_child(tmp_path, "huge-page.pdf", data, timeout=120)
    assert_quarantined_at_limits(result, "page 1", "200 x 200 in", "DOCSYNC_MAX_PAGE_PIXELS")
    assert result["growth_mb"] < 200, result


def test_large_page_is_rendered_smaller_not_refused(tmp_path):
    """An A0 poster (33 x 47 in, 139 Mpx at 300 dpi) is OCR'd at the resolution that fits."""
    pdf = _page_pdf(b"", media_box=b"0 0 2384 3370")
    settings = load_settings()
    scale = limits.render_scale(2384, 3370, settings.ocr.dpi, settings.ocr.max_page_pixels, "poster")
    assert scale < settings.ocr.dpi / 72 and scale * 72 >= limits.MIN_RENDER_DPI
    assert (2384 * scale + 1) * (3370 * scale + 1) <= settings.ocr.max_page_pixels
    result = parse_in_child(tmp_path, "poster.pdf", pdf, timeout=300)
    assert result.get("parsed"), result
    assert result["growth_mb"] < 400, result


def test_multi_frame_tiff_decodes_one_frame_at_a_time(tmp_path):
    """60 frames of 9 Mpx: 540 MB if every frame is decoded before OCR starts (the old code).
    A short deadline stops OCR after a few frames: what matters is the peak on the way."""
    data = tiff([(3000, 3000)] * 60)
    assert len(data) < 200_000
    result = parse_in_child(tmp_path, "scans.tiff", data, timeout=300, doc_timeout_s=6)
    assert result["growth_mb"] < 250, result
    assert result.get("stage") == "timeout" or result.get("parsed"), result


def test_tiff_frame_over_the_pixel_cap_is_refused_before_decoding(tmp_path):
    data = tiff([(1000, 1000), (20000, 20000), (1000, 1000)])  # frame 2: 400 Mpx
    result = parse_in_child(tmp_path, "poster.tiff", data, timeout=300)
    assert_quarantined_at_limits(result, "frame 2", "20000 x 20000", "DOCSYNC_MAX_PAGE_PIXELS")
    assert result["growth_mb"] < 200, result


def test_flate_bomb_pdf_is_refused_before_pdfium_opens_it(tmp_path):
    """pdfium aborts the whole process on a failed allocation: the stream is measured first."""
    data = flate_bomb_pdf()
    assert len(data) < 20_000
    result = parse_in_child(tmp_path, "bomb.pdf", data, timeout=300)
    assert_quarantined_at_limits(result, "page 1", "MiB")
    assert result["growth_mb"] < 200, result


def test_object_bomb_pdf_is_refused_before_pdfium_opens_it(tmp_path):
    data = rectangles_pdf()
    assert len(data) < 400_000
    result = parse_in_child(tmp_path, "rectangles.pdf", data, timeout=300)
    assert_quarantined_at_limits(result, "page 1")
    assert result["growth_mb"] < 200, result


def test_document_over_the_memory_budget_fails_at_limits_not_the_process(tmp_path):
    """What no check anticipates hits the memory budget: MemoryError inside the parse becomes
    a stage-`limits` DocumentError and the process carries on."""
    data = text_objects_pdf()
    assert len(data) < 300_000
    result = parse_in_child(tmp_path, "layout.pdf", data, timeout=300, max_doc_memory_bytes=256 * MiB)
    assert_quarantined_at_limits(result, "layout.pdf needs more than 256 MiB", "DOCSYNC_MAX_DOC_MEMORY_MB")
    assert result["growth_mb"] < 256 + 200, result


# --- the helpers themselves ------------------------------------------------------------------


def test_render_scale_keeps_normal_pages_at_the_configured_dpi():
    assert limits.render_scale(612, 792, 300, 40_000_000, "letter") == pytest.approx(300 / 72)
    assert limits.render_scale(14400, 14400, 300, 0, "no cap") == pytest.approx(300 / 72)


def test_render_scale_refuses_what_would_be_unreadable():
    with pytest.raises(limits.LimitExceeded) as info:
        limits.render_scale(14400, 14400, 300, 40_000_000, "page 1 of x.pdf")
    assert isinstance(info.value, DocumentError) and info.value.failure.stage == "limits"
    assert info.value.failure.reason.startswith("page 1 of x.pdf is 200 x 200 in")


def test_check_pixels():
    limits.check_pixels(6000, 6000, 40_000_000, "image")
    with pytest.raises(limits.LimitExceeded, match="7000 x 7000 px"):
        limits.check_pixels(7000, 7000, 40_000_000, "image a.png")
    limits.check_pixels(70000, 70000, 0, "no cap")


def test_run_limited_turns_an_over_budget_allocation_into_a_limits_error():
    before = resource.getrlimit(resource.RLIMIT_DATA)
    with pytest.raises(limits.LimitExceeded) as info:
        memory_budget.run_limited(64 * MiB, "big.pdf", bytearray, 512 * MiB)
    failure = info.value.failure
    assert failure.stage == "limits" and failure.reason.startswith("big.pdf needs more than 64 MiB")
    assert "MemoryError" in failure.error
    assert resource.getrlimit(resource.RLIMIT_DATA) == before  # restored
    assert not memory_budget.limited()
    bytearray(512 * MiB)  # and the process allocates as before


def test_run_limited_sees_a_memory_error_wrapped_by_a_library():
    def parse() -> None:
        try:
            bytearray(512 * MiB)
        except MemoryError as exc:
            raise ParseError.at("parse", "could not parse x: the file looks corrupt") from exc

    with pytest.raises(limits.LimitExceeded):
        memory_budget.run_limited(64 * MiB, "x", parse)


def test_python_objects_growing_one_by_one_are_stopped_by_the_watchdog():
    """A hard limit alone: Python runs out of memory even to raise ("Cannot recover from
    MemoryErrors while normalizing exceptions") and aborts. The watchdog raises first."""

    def grow() -> None:
        hoard = []
        while True:
            hoard.append([0] * 16)

    with pytest.raises(limits.LimitExceeded) as info:
        memory_budget.run_limited(128 * MiB, "objects", grow)
    assert "MemoryBudgetExceeded" in info.value.failure.error
    assert not memory_budget.limited()


def test_run_limited_passes_results_and_other_errors_and_can_be_nested_or_disabled():
    before = resource.getrlimit(resource.RLIMIT_DATA)

    def fail() -> None:
        raise ValueError("not about memory")

    with pytest.raises(ValueError):
        memory_budget.run_limited(64 * MiB, "x", fail)

    def outer() -> tuple:
        inner_before = resource.getrlimit(resource.RLIMIT_DATA)
        # nested: the outer window's limit applies
        inner = memory_budget.run_limited(16 * MiB, "y", lambda: (resource.getrlimit(resource.RLIMIT_DATA), len(bytearray(64 * MiB))))
        return inner_before, inner, memory_budget.limited()

    inner_before, (inner_limit, size), still = memory_budget.run_limited(256 * MiB, "x", outer)
    assert inner_limit == inner_before and size == 64 * MiB and still
    assert memory_budget.run_limited(0, "x", resource.getrlimit, resource.RLIMIT_DATA) == before  # disabled
    assert resource.getrlimit(resource.RLIMIT_DATA) == before and not memory_budget.limited()


def test_parse_document_applies_the_budget_from_settings(tmp_path):
    """Over-limit documents fail in-process too (no child): the budget comes from settings."""
    settings = load_settings().replace(max_page_pixels=1_000_000)
    with pytest.raises(limits.LimitExceeded) as info:
        parse_document(tiff([(2000, 2000)]), "scan.tiff", settings)
    assert "1 Mpx" in info.value.failure.reason


def test_large_jpeg_is_decoded_at_a_reduced_scale_not_refused():
    """A 54 Mpx photo of a page: JPEG decodes at 1/2 scale for free, so it is read, not refused."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (9000, 6000), 255)
    ImageDraw.Draw(image).text((400, 400), "Quarterly inventory count", fill=0, font=ImageFont.load_default(size=160))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=80)
    doc = parse_document(buffer.getvalue(), "photo.jpg", load_settings())
    assert doc.pages == 1 and "inventory" in doc.text.lower()


_INTERRUPTED = r"""
import resource, signal, sys
from docsync import memory_budget

class Tick(Exception):
    pass

armed = [False]

def tick(*_):
    if armed[0]:
        raise Tick()

signal.signal(signal.SIGALRM, tick)
before = resource.getrlimit(resource.RLIMIT_DATA)
memory_budget.run_limited(1 << 30, "first", sum, range(10))  # the process's watchdog starts here

def attempt(delay):
    armed[0] = True
    signal.setitimer(signal.ITIMER_REAL, delay)
    try:
        memory_budget.run_limited(1 << 30, "doc", lambda: memory_budget.run_limited(1 << 30, "inner", sum, range(300)))
    finally:
        armed[0] = False

interrupted = 0
for i in range(int(sys.argv[1])):
    try:
        attempt(0.00005 * (i % 23 + 1))
    except Tick:
        interrupted += 1
signal.setitimer(signal.ITIMER_REAL, 0)
assert interrupted > 50, interrupted
assert not memory_budget.limited() and not memory_budget._WINDOW
assert resource.getrlimit(resource.RLIMIT_DATA) == before
memory_budget.run_limited(1 << 30, "after", sum, range(10))  # windows still open and close
print("ok", interrupted)
"""


def test_exceptions_raised_asynchronously_never_leave_the_window_stuck():
    """The document deadline (SIGALRM, re-firing) and the watchdog raise at any bytecode, also
    inside run_limited's own bookkeeping. A lock left held there blocked a worker for good
    (seen under load); here a timer interrupts thousands of calls at varied points."""
    result = subprocess.run(
        [sys.executable, "-c", _INTERRUPTED, "3000"], capture_output=True, text=True, timeout=120,
        env=os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert result.returncode == 0 and result.stdout.startswith("ok"), result.stderr[-2000:]
