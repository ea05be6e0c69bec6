"""Staging of a streamed plan's work (and the set of paths its walk listed): batches are cut and written while the walk goes on, and
each is handed on at once (``on_batch``), so processing can start long before the walk ends.

Memory stays bounded: work waits in a window of a few batches (cut by estimated work, as
:func:`docsync.steps.plan.work_batches` does for a whole plan), new entries that may turn out
to be moves wait in a spill file on disk, not in a list."""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from docsync import records
from docsync.records import Batch, WorkItem
from docsync.sources import SourceEntry

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from docsync.config import Settings
    from docsync.context import RunContext

# Windows grow 1, 2, 4 ... up to this many batches: the first batch is staged as soon as one
# batch's worth of work is found (time to first batch), later ones are balanced over more work.
MAX_WINDOW_BATCHES = 16


class Stager:
    """Collects work items, writes batches as windows fill; ``refs`` are the batches written."""

    def __init__(self, ctx: RunContext, root: str, batch_size: int,
                 on_batch: Callable[[str], None] | None = None, spread: int = 1) -> None:
        self.ctx, self.root, self.batch_size, self.on_batch = ctx, root, batch_size, on_batch
        self.spread = spread  # heavy work is cut into at least this many batches (steps.plan.work_batches)
        self.refs: list[str] = []  # references only (~100 bytes each)
        self._window: list[WorkItem] = []
        self._window_batches = 1

    def add(self, item: WorkItem) -> None:
        self._window.append(item)
        if len(self._window) >= self._window_batches * self.batch_size:
            self.flush()
            self._window_batches = min(self._window_batches * 2, MAX_WINDOW_BATCHES)

    def flush(self) -> None:
        from docsync.steps.plan import work_batches

        window, self._window = self._window, []
        # Spread only until the run has its ``spread`` batches: later windows are large already.
        for items in work_batches(window, self.batch_size, max(1, self.spread - len(self.refs))):
            number = len(self.refs)
            ref = records.write(self.ctx.files.batch(number),
                                Batch(self.ctx.run_id, self.ctx.source_name, self.root, number, items))
            self.refs.append(ref)
            if self.on_batch is not None:
                self.on_batch(ref)


def process_parallelism(settings: Settings) -> int:
    """Batches the deployment processes at once: DOCSYNC_PROCESS_PARALLELISM, else what this
    machine's worker host runs (DOCSYNC_WORKERS when above 1, else one worker per core)."""
    return settings.sync.process_parallelism or settings.sync.host_workers


def task_groups(refs: Sequence[str], parallel: int) -> list[list[str]]:
    """Group a run's batches into the DAG's mapped tasks, guided self-scheduling: each group takes
    1/(2 * ``parallel``) of the batches still ungrouped, at least one. Large groups first (few
    tasks: each costs the scheduler and the executor about a second of CPU on the cores the
    batches need), single batches last (the workers finish together). 40 batches on 2 workers
    make 11 tasks (10, 8, 6, 4, 3, 3, 2, 1, 1, 1, 1), 12 make 7, 4 or fewer one each."""
    groups: list[list[str]] = []
    start, divisor = 0, 2 * max(1, parallel)
    while start < len(refs):
        size = max(1, -(-(len(refs) - start) // divisor))
        groups.append(list(refs[start:start + size]))
        start += size
    return groups


class Spill:
    """Source entries kept on local disk until the walk ends (new paths that may be moves)."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(mode="w+", encoding="utf-8", prefix="docsync-spill-")
        self.count = 0

    def add(self, entry: SourceEntry) -> None:
        self._file.write(json.dumps([entry.path, entry.size, entry.mtime_ns, entry.acl_fingerprint,
                                     entry.version_tag]) + "\n")
        self.count += 1

    def __iter__(self) -> Iterator[SourceEntry]:
        self._file.flush()
        self._file.seek(0)
        for line in self._file:
            path, size, mtime_ns, acl, tag = json.loads(line)
            yield SourceEntry(path, size, mtime_ns, acl, tag)

    def close(self) -> None:
        self._file.close()


class SeenSet:
    """The paths a walk listed, in a temporary SQLite file on local disk: bounded memory, no
    write to the state store per listed document, nothing to keep (a walk that does not
    complete deletes nothing, whatever it saw). A path is kept as 60 bits of its hash (an
    integer key: several times cheaper than the hex text); two paths colliding in a share of
    10^7 would leave one deletion undetected, with a probability of about 10^-4, never delete."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="docsync-seen-")
        self._db = sqlite3.connect(Path(self._dir.name) / "seen.db", isolation_level=None)
        self._db.execute("PRAGMA journal_mode=OFF")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.execute("CREATE TABLE seen (h INTEGER PRIMARY KEY)")

    @staticmethod
    def key(path_hash: str) -> int:
        return int(path_hash[:15], 16)

    def add(self, hashes: list[str]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR IGNORE INTO seen VALUES (?)", ((self.key(h),) for h in hashes))
        self._db.execute("COMMIT")

    def found(self, hashes: list[str]) -> set[str]:
        """Those of ``hashes`` (path hashes) that were listed."""
        keys = {self.key(h): h for h in hashes}
        ids = list(keys)
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            part = ids[start:start + 500]
            out |= {keys[k] for (k,) in self._db.execute(
                f"SELECT h FROM seen WHERE h IN ({','.join('?' * len(part))})", part)}
        return out

    def close(self) -> None:
        self._db.close()
        self._dir.cleanup()
