"""Batches the worker host starts before any task asks for them: the DAG's plan task hands its
first batches over while it is still walking (``host_client.prefetcher``), so the host's workers
are busy during the rest of the plan and the hand-off to the first `process` tasks, instead of
idle (issue 15). The `process` task that then asks for such a batch gets its result, or joins it
while it runs; nothing is written before that task writes it (revocations still go first: the
plan task applies them before any `process` task runs).

A prefetched batch is only taken for the same staged file: a batch file that was staged again
since (a retried plan of the same run, which may have found other work) is processed again.
Entries nobody claims (the run failed before its tasks ran) are dropped after ``TTL_S`` or when
more than ``limit`` wait: their results are staged files, dropped with the run's staging.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import wait
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from concurrent.futures import Future

TTL_S = 3600.0


def batch_identity(batch_ref: str) -> tuple[int, int, int] | None:
    """What tells a staged batch file from one staged again under the same name (staging writes
    by atomic rename: a new inode); None for object storage, whose batches are not prefetched."""
    if "://" in batch_ref:
        return None
    try:
        stat = os.stat(batch_ref)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


class Prefetched:
    """The host's prefetched batches: reference -> (staged file's identity, future, its pool)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._lock = threading.Lock()
        self._items: dict[str, tuple[tuple, float, Future, object]] = {}

    def add(self, batch_ref: str, identity: tuple, future: Future, pool: object) -> None:
        with self._lock:
            now = time.monotonic()
            self._items = {ref: item for ref, item in self._items.items() if now - item[1] < TTL_S}
            self._items[batch_ref] = (identity, now, future, pool)
            while len(self._items) > self.limit:
                del self._items[next(iter(self._items))]  # the oldest

    def claim(self, batch_ref: str) -> tuple[Future, object] | None:
        """The prefetched batch's future and pool, when it was prefetched from the same staged
        file. When the file was staged again since, its early run is cancelled, or waited for when
        it already runs: it must not finish after the new one and replace the new result."""
        with self._lock:
            item = self._items.pop(batch_ref, None)
        if item is None:
            return None
        if item[0] == batch_identity(batch_ref):
            return item[2], item[3]
        if not item[2].cancel():
            wait([item[2]])
        return None

    def __len__(self) -> int:
        return len(self._items)
