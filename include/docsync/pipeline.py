"""The whole sync in one process (the CLI, tests, benchmarks): the steps of ``docsync.steps``
in the order the DAG runs them, optionally with batches processed by worker processes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from docsync import state, storage
from docsync.steps.finalize import finalize
from docsync.steps.plan import PlanRef, plan
from docsync.steps.process import process_batch
from docsync.steps.reconcile import reconcile_if_due
from docsync.steps.updates import apply_updates
from docsync.steps.write import write_batch

if TYPE_CHECKING:
    from docsync.config import Settings

# Worker processes are replaced after about this many batches each: RSS creeps up over thousands
# of documents in one process; a fresh one costs one model load (~10 s).
WORKER_BATCHES = 40


def _init_worker(threads: int) -> None:
    """A batch worker process: its share of the cores for torch/OpenMP (set before torch loads)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


def run_sync(
    settings: Settings, root: str | None = None, run_id: str | None = None, cleanup: bool = True,
    workers: int | None = None, full: bool = False,
) -> dict:
    """plan -> updates -> process -> write -> finalize -> reconcile, from this process.

    With ``workers`` > 1 (``DOCSYNC_WORKERS``) batches are processed by that many worker
    processes at once, as the DAG's mapped ``process`` tasks are; this process writes
    their results one at a time, in plan order (embedded Qdrant has one writer). ``full``: a
    forced full re-sync (every document re-hashed instead of trusting size and mtime).
    """
    run_id = run_id or f"cli__{state.utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    planned = plan(settings, run_id, root, full=full)
    if planned.counts.changes_nothing:  # no batches, updates or deletes: Qdrant is not even opened
        return _finish(settings, planned, [], {}, run_id, cleanup)
    from docsync import index

    with index.keep_open(settings):
        updates = apply_updates(settings, planned.plan).to_json()
        reports = _process_and_write(settings, planned, workers)
        return _finish(settings, planned, reports, updates, run_id, cleanup)


def _process_and_write(settings: Settings, planned: PlanRef, workers: int | None) -> list[dict]:
    workers = min(workers or settings.sync.workers, len(planned.batches))
    if workers <= 1:
        return [write_batch(settings, process_batch(settings, ref)).to_json() for ref in planned.batches]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // workers)
    reports: list[dict] = []
    step = WORKER_BATCHES * workers  # fresh worker processes for every slice of the run
    for start in range(0, len(planned.batches), step):
        # Not max_tasks_per_child: on Python 3.11 the executor can hang when it replaces a worker.
        with ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(threads,)
        ) as pool:
            futures = [pool.submit(process_batch, settings, ref) for ref in planned.batches[start : start + step]]
            reports += [write_batch(settings, future.result()).to_json() for future in futures]
    return reports


def _finish(settings: Settings, planned: PlanRef, reports: list[dict], updates: dict, run_id: str, cleanup: bool) -> dict:
    summary = finalize(settings, planned.plan, reports, updates)
    summary["reconcile"] = reconcile_if_due(settings, summary)
    if cleanup:
        storage.cleanup_run(settings, summary["source"], run_id)
    return summary
