"""Time limits of one document and of one batch.

A document that takes longer than ``DOCSYNC_DOC_TIMEOUT_S`` is quarantined (stage
``timeout``). A batch as a whole gets ``DOCSYNC_BATCH_BUDGET_S``, well inside the task's
execution timeout: documents that no longer fit are deferred to the next run instead of the
task dying of its own timeout with all the batch's work lost.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from typing import TYPE_CHECKING

from docsync.errors import DocumentTimeout

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Raise :class:`DocumentTimeout` in this block after ``seconds`` (SIGALRM: main thread only)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    fired = False

    def _raise(_signum: int, _frame: object) -> None:
        nonlocal fired
        fired = True
        raise DocumentTimeout(f"processing took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    # Re-fires every second after the deadline: a library that swallows one exception
    # (a broad `except Exception` around an import, say) does not swallow them all.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:  # the work finished anyway, late: still a timeout
        raise DocumentTimeout(f"processing took longer than {seconds:g} s")


class BatchBudget:
    """The time left to a batch; each document gets at most what is left of it."""

    def __init__(self, total_s: float, per_document_s: float) -> None:
        self.ends_at = time.monotonic() + total_s if total_s > 0 else float("inf")
        self.per_document_s = per_document_s

    def left(self) -> float:
        return self.ends_at - time.monotonic()

    def exhausted(self) -> bool:
        return self.left() <= 0

    def document_s(self) -> float:
        """The deadline of the next document: its own limit, or what is left of the batch."""
        left = self.left()
        if self.per_document_s <= 0:
            return left if left != float("inf") else 0
        return min(self.per_document_s, max(left, 0.001))
