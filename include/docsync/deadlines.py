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


class DeadlinePassed(BaseException):
    """What the alarm raises inside the work. Not an ``Exception``: libraries catch those broadly
    (unstructured skips a PDF page's text on any ``Exception``, import machinery swallows them),
    which turned the deadline into "one page skipped per second" instead of a stop. The
    :func:`deadline` block turns it into :class:`DocumentTimeout` (``__cause__`` kept: it
    shows the work was interrupted, not merely late)."""


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
        raise DeadlinePassed(f"processing took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    # Re-fires every second after the deadline: code that swallows even a BaseException
    # (a bare `except:`) does not swallow them all.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)  # first: no alarm after this line
            signal.signal(signal.SIGALRM, previous)
    except DeadlinePassed as exc:  # raised inside the work, or at its very end before the timer stopped
        raise DocumentTimeout(str(exc)) from exc
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
