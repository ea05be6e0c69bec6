"""The whole sync in one process (the CLI, tests, benchmarks): the steps of ``docsync.steps``
in the order the DAG runs them, optionally with batches processed by worker processes."""

from __future__ import annotations

import logging
import os
import queue
import threading
from typing import TYPE_CHECKING

from docsync import state
from docsync.steps.finalize import finish
from docsync.steps.plan import PlanRef, plan
from docsync.steps.process import process_batch
from docsync.steps.updates import apply_updates
from docsync.steps.write import write_batch

if TYPE_CHECKING:
    from collections.abc import Iterator

    from docsync.config import Settings

log = logging.getLogger(__name__)

# Worker processes are replaced after about this many batches each: RSS creeps up over thousands
# of documents in one process; a fresh one costs one model load (~10 s).
WORKER_BATCHES = 40
# A walk that ends within this long after its first batch is staged has its deletions and ACL
# changes applied before any batch is processed (revocations first, as in the DAG); a longer
# walk (a share of millions of files) is processed while it goes on, and its updates are
# applied as soon as it ends: no later than when the whole walk came first.
WALK_GRACE_S = 5.0


def _init_worker(threads: int) -> None:
    """A batch worker process: its share of the cores for torch/OpenMP (set before torch loads)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


def run_sync(
    settings: Settings, root: str | None = None, run_id: str | None = None, cleanup: bool = True,
    workers: int | None = None, full: bool = False,
) -> dict:
    """plan -> updates -> process -> write -> finalize -> reconcile, from this process.

    The plan walks the source in a thread and hands each batch over as soon as it is staged:
    batches are processed while the walk goes on (the first within seconds of the start, not
    after a walk of hours); the updates (deletes, ACL changes, moves) are applied as soon as the
    walk is over, before the next batch. With ``workers`` > 1 (``DOCSYNC_WORKERS``) batches are
    processed by that many worker processes at once, as the DAG's mapped ``process`` tasks are;
    this process writes their results one at a time, in plan order (embedded Qdrant has one
    writer). ``full``: a forced full re-sync (every document re-hashed).
    """
    run_id = run_id or f"cli__{state.utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    walk = _Walk(settings, run_id, root, full)
    first = walk.next_ref()
    if first is None:  # the walk is over and staged no batch
        planned = walk.planned
        if planned.counts.changes_nothing:  # no batches, updates or deletes: Qdrant is not even opened
            return finish(settings, planned.plan, [], {}, run_id, cleanup)
    from docsync import index

    batch_workers = _Workers(workers or settings.sync.workers, settings)
    with index.keep_open(settings), batch_workers:
        if first is None or walk.over(WALK_GRACE_S):  # revocations before any processing
            walk.applied()
        reports = _process_and_write(settings, walk, first, batch_workers) if first is not None else []
        # The canary's embedding and the Data Docs run in a batch worker, where the embedder
        # and GX are loaded already (this process would load them for that alone: ~8 s).
        return finish(settings, walk.planned.plan, reports, walk.applied(), run_id, cleanup, batch_workers.call)


class _Walk:
    """The plan running in a thread; batch references come through an unbounded queue of
    strings (~100 bytes each: the batches themselves are on disk), so the walk never waits for
    processing and deletions and revocations are not held back beyond the walk."""

    def __init__(self, settings: Settings, run_id: str, root: str | None, full: bool) -> None:
        self.settings = settings
        self.refs: queue.Queue[str | None] = queue.Queue()
        self._outcome: dict = {}
        self._updates: dict | None = None
        self._thread = threading.Thread(target=self._walk, args=(run_id, root, full), name="docsync-plan", daemon=True)
        self._thread.start()

    def _walk(self, run_id: str, root: str | None, full: bool) -> None:
        try:
            self._outcome["plan"] = plan(self.settings, run_id, root, full=full, on_batch=self.refs.put)
        except BaseException as exc:  # re-raised in the runner's thread
            self._outcome["error"] = exc
        finally:
            self.refs.put(None)

    def next_ref(self, timeout: float | None = None) -> str | None:
        """The next staged batch; None when the walk is over (its error raised here); "" when
        ``timeout`` passed without one."""
        try:
            ref = self.refs.get(timeout=timeout)
        except queue.Empty:
            return ""
        if ref is None:
            self._thread.join()
            if "error" in self._outcome:
                raise self._outcome["error"]
        return ref

    def over(self, timeout: float) -> bool:
        """Whether the walk ended within ``timeout`` seconds (its error raised here)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return False
        if "error" in self._outcome:
            raise self._outcome["error"]
        return True

    @property
    def planned(self) -> PlanRef:
        return self._outcome["plan"]

    def applied(self) -> dict:
        """The plan's updates and deletes, applied once (call when the walk is over)."""
        if self._updates is None:
            self._updates = apply_updates(self.settings, self.planned.plan).to_json()
        return self._updates


def _refs(walk: _Walk, first: str, timeout: float | None) -> Iterator[str]:
    """Batch references as the walk stages them ("" when none came within ``timeout``); once
    the walk is over its updates are applied before anything else is processed."""
    ref: str | None = first
    while ref is not None:
        yield ref
        ref = walk.next_ref(timeout)
    walk.applied()


class _Workers:
    """The batch worker processes of one run (``workers`` > 1): started on the first batch,
    replaced after WORKER_BATCHES each, kept until the run is finished (finalize uses them).

    When this machine's worker host answers warm at the first batch (``docsync worker-host``,
    DOCSYNC_WORKER_HOST_SOCKET, as the DAG's tasks use it), the batches and finalize's warm calls
    go to it instead, from threads of this process: no worker of this run loads the models
    (~10 s and ~1.2 GB each) next to the host's warm ones. A batch the host cannot take (it went
    away) runs in a worker process of this run after all."""

    def __init__(self, workers: int, settings: Settings | None = None) -> None:
        self.workers = workers
        self.threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        self.pool = None
        self.submitted = 0
        self.settings = settings
        self.host = None  # threads handing batches to the worker host, once one answered
        self._host_checked = False
        self._lock = threading.Lock()

    def __enter__(self) -> _Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.host is not None:
            self.host.shutdown(wait=True)
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def on_host(self) -> bool:
        """Whether this run's batches go to the worker host (decided once, at the first batch)."""
        if not self._host_checked:
            self._host_checked = True
            socket_path = self.settings.sync.host_socket if self.settings is not None else ""
            from docsync.host_client import health

            report = health(socket_path) if socket_path else None
            if report and report.get("ready"):
                from concurrent.futures import ThreadPoolExecutor

                self.workers = max(1, int(report.get("workers") or 1))
                # One request more than the host has workers: a batch already waits there when one is done.
                self.host = ThreadPoolExecutor(self.workers + 1, thread_name_prefix="docsync-host")
                log.info("batches go to the worker host at %s (%d warm workers, pid %s)", socket_path,
                         self.workers, report.get("host_pid"))
        return self.host is not None

    def submit(self, fn, *args):
        if fn is process_batch and self.on_host():
            return self.host.submit(self._on_host, *args)
        return self._submit_here(fn, *args)

    def _on_host(self, settings: Settings, batch_ref: str) -> str:
        from docsync.host_client import process_on_host

        result_ref = process_on_host(settings, batch_ref)
        if result_ref is not None:
            return result_ref
        return self._submit_here(process_batch, settings, batch_ref).result()  # the host went away

    def _submit_here(self, fn, *args):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with self._lock:  # host threads may fall back at the same time
            if self.pool is None or self.submitted >= WORKER_BATCHES * self.workers:  # fresh workers now and then
                # Not max_tasks_per_child: on Python 3.11 the executor can hang when it replaces a worker.
                if self.pool is not None:
                    self.pool.shutdown(wait=False)
                self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                                initializer=_init_worker, initargs=(self.threads,))
                self.submitted = 0
            self.submitted += 1
            return self.pool.submit(fn, *args)

    def call(self, name: str, *args: object) -> object:
        """finalize's warm calls: on the worker host, or in a worker that processed batches, else here."""
        from concurrent.futures.process import BrokenProcessPool

        from docsync.host_client import call_on_host, run_warm_call

        if self.host is not None:
            done, value = call_on_host(self.settings, name, *args)
            if done:
                return value
        if self.pool is not None:
            try:
                return self.pool.submit(run_warm_call, name, args).result()
            except BrokenProcessPool:
                pass
        return run_warm_call(name, args)


def _process_and_write(settings: Settings, walk: _Walk, first: str, workers: _Workers) -> list[dict]:
    if workers.workers <= 1 and not workers.on_host():
        return [write_batch(settings, process_batch(settings, ref)).to_json() for ref in _refs(walk, first, None)]
    from collections import deque

    reports: list[dict] = []
    inflight: deque = deque()
    for ref in _refs(walk, first, 1.0):
        while inflight and (inflight[0].done() or len(inflight) >= 2 * workers.workers):
            reports.append(write_batch(settings, inflight.popleft().result()).to_json())  # plan order
        if ref:
            inflight.append(workers.submit(process_batch, settings, ref))
    while inflight:
        reports.append(write_batch(settings, inflight.popleft().result()).to_json())
    return reports

