"""A per-document memory budget: :func:`run_limited` runs one document's preparation so that
it can add at most so much private memory to the process (``DOCSYNC_MAX_DOC_MEMORY_MB``), and
fails with :class:`~docsync.limits.LimitExceeded` (stage ``limits``) instead of taking the
worker down. The pixel and PDF-stream caps that apply before anything is decoded are in
:mod:`docsync.limits`.

Why ``RLIMIT_DATA``, and only around one document: the limit is per process, and the
embedding model lives in the same process; set for good, it would fail the embedder on its
next large batch. ``RLIMIT_AS`` would count reserved but unused address space (thread
stacks, malloc arenas, torch's mappings) and fail far too early."""

from __future__ import annotations

import ctypes
import os
import resource
import threading
import time
from typing import TYPE_CHECKING, TypeVar

from docsync.limits import LimitExceeded

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

HARD_HEADROOM = 128 * 2**20  # RLIMIT_DATA sits this far above the watchdog's budget

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
