"""Tesseract OCR for scanned pages and images, page by page with per-page confidence."""

from __future__ import annotations

import io
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docsync.config import apply_offline_env

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

apply_offline_env()


# Tesseract often reads "name@host" as "name @ host"; rejoined so PII detection sees an e-mail.
_SPLIT_AT = re.compile(r"(?<=\w) ?@ ?(?=\w)")


class OcrTimeout(TimeoutError):
    """The document's OCR did not finish before its deadline (DOCSYNC_DOC_TIMEOUT_S)."""


@dataclass(frozen=True)
class OcrPage:
    page: int
    text: str
    confidence: float  # mean word confidence 0-100; 0 when nothing was read
    words: int = 0  # words read (a blank page has none: its confidence says nothing)


# One core per tesseract process (~1 s/page instead of ~6 s/page on 2 cores). Set only for
# tesseract: in the environment of the whole process it would also cap torch's OpenMP pool
# and halve the embedder's throughput.
TESSERACT_ENV = {"OMP_THREAD_LIMIT": "1"}


def _tesseract_tsv(image, lang: str, timeout: float) -> str:
    """tesseract's TSV word boxes for one image, piped through stdin as uncompressed PNM."""
    buf = io.BytesIO()
    image.convert("L" if image.mode in ("1", "L", "LA", "P") else "RGB").save(buf, format="PPM")
    try:
        done = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", lang, "tsv"],
            input=buf.getvalue(),
            capture_output=True,
            timeout=timeout if timeout and timeout > 0 else None,  # 0: no limit
            env=os.environ | TESSERACT_ENV,
            check=False,
        )
    except FileNotFoundError as exc:  # not a problem of the document: say what to install
        raise RuntimeError("tesseract is not installed on this worker (apt install tesseract-ocr)") from exc
    if done.returncode != 0:
        raise RuntimeError(f"tesseract exited {done.returncode}: {done.stderr.decode(errors='replace')[-300:]}")
    return done.stdout.decode("utf-8", errors="replace")


def ocr_image(image, page: int, lang: str = "eng", timeout: float = 120) -> OcrPage:
    """OCR one PIL image; text is rebuilt line by line from tesseract's word boxes."""
    lines: dict[tuple[int, int, int], list[str]] = {}
    confidences: list[float] = []
    for row in _tesseract_tsv(image, lang, timeout).splitlines()[1:]:
        # level page block par line word left top width height conf text
        cols = row.split("\t", 11)
        if len(cols) < 12 or cols[0] != "5":
            continue
        word = cols[11].strip()
        conf = float(cols[10])
        if not word or conf < 0:
            continue
        confidences.append(conf)
        lines.setdefault((int(cols[2]), int(cols[3]), int(cols[4])), []).append(word)
    paragraphs: dict[tuple[int, int], list[str]] = {}
    for (block, par, _line), words in sorted(lines.items()):
        paragraphs.setdefault((block, par), []).append(" ".join(words))
    text = _SPLIT_AT.sub("@", "\n\n".join("\n".join(p) for p in paragraphs.values()))
    confidence = sum(confidences) / len(confidences) if confidences else 0.0
    return OcrPage(page=page, text=text, confidence=round(confidence, 1), words=len(confidences))


def ocr_images(
    images: Iterable[tuple[int, object]],
    lang: str = "eng",
    workers: int | None = None,
    timeout: float = 120,
    deadline: float | None = None,
) -> Iterator[OcrPage]:
    """OCR (page, image) pairs in parallel, in page order, with a bounded number in flight.

    ``deadline`` (a ``time.monotonic()`` value) bounds the whole document: each tesseract
    run gets only the time left (it is killed then) and :class:`OcrTimeout` is
    raised once it has passed. On any early exit the queued pages are cancelled and this
    returns without waiting for running tesseract processes (they end by their timeout).
    """
    workers = workers or max(1, min(4, os.cpu_count() or 1))

    def budget() -> float:
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise OcrTimeout("OCR did not finish before the document deadline")
        return min(timeout, max(left, 1.0))

    def result(future) -> OcrPage:
        try:
            return future.result()
        except subprocess.TimeoutExpired as exc:
            if deadline is not None and time.monotonic() >= deadline - 1:
                raise OcrTimeout("OCR did not finish before the document deadline") from exc
            raise RuntimeError(f"tesseract did not finish one page within {exc.timeout:.0f} s") from exc

    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        pending = []
        for page, image in images:
            pending.append(pool.submit(ocr_image, image, page, lang, budget()))
            if len(pending) >= workers * 2:  # keep rendered pages in memory bounded
                yield result(pending.pop(0))
        for future in pending:
            yield result(future)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
