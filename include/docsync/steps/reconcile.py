"""Step 6, reconcile: repair drift between the state store and Qdrant, when it is due.

Points whose document is not indexed in the state store (orphans) are deleted; documents
whose recorded points are missing from Qdrant are marked for re-processing. The full check
scrolls every point of the collection, so it runs only when drift may be anywhere: the first
run, after a run that did not finish, every ``DOCSYNC_RECONCILE_INTERVAL_H`` (drift from outside
docsync) or on every run with the interval 0. A run that finished and changed the index checks
only the documents it touched and their parts (by the payload indexes): its cost follows the
change, not the collection (a full check of 100,000 points took 3-17 s on Edge, bench "engine").
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from docsync import index, records, state
from docsync.records import PlanCounts

if TYPE_CHECKING:
    from collections.abc import Callable

    from docsync.config import Settings

log = logging.getLogger(__name__)


def reconcile(settings: Settings, source_name: str | None = None) -> dict:
    """Delete orphan points and mark documents with missing points for re-processing."""
    source_name = source_name or settings.source.name
    engine = state.get_engine(settings.state_url)
    checked_at = state.utcnow()  # runs that start after this are covered by the next check
    report = _repair(settings, source_name, state.indexed_doc_ids(engine, source_name),
                     state.recorded_points(engine, source_name), None)
    state.mark_reconciled(engine, source_name, checked_at)
    return report


def reconcile_documents(settings: Settings, source_name: str, doc_ids: set[str]) -> dict:
    """The full check's repairs, limited to ``doc_ids`` and their parts."""
    engine = state.get_engine(settings.state_url)
    known = state.documents_and_parts(engine, source_name, doc_ids)
    scope = set(doc_ids) | set(known)
    indexed = {doc for doc, status in known.items() if status == "indexed"}
    expected = {pid: doc for doc, pids in state.chunk_ids(engine, scope).items() for pid in pids}
    return _repair(settings, source_name, indexed, expected, scope) | {"documents_checked": len(scope)}


def _repair(settings: Settings, source_name: str, indexed: set[str], expected: dict[str, str],
            scope: set[str] | None) -> dict:
    """Delete the points of ``scope`` (None: the whole collection) whose document is not
    ``indexed`` or that the state store does not record (``expected``: point id -> doc id), and
    mark the documents whose recorded points are missing for re-processing."""
    engine = state.get_engine(settings.state_url)
    collection = settings.collection(source_name)
    orphans: list[str] = []
    seen: set[str] = set()
    with index.open_index(settings) as client:
        points = (index.scroll_all(client, collection, with_payload=["doc_id"]) if scope is None
                  else index.scroll_documents(client, collection, scope, with_payload=["doc_id"]))
        for record in points:
            pid = str(record.id)
            seen.add(pid)
            if (record.payload or {}).get("doc_id") not in indexed or pid not in expected:
                orphans.append(pid)
        index.delete_ids(client, collection, orphans)
    incomplete = sorted({doc for pid, doc in expected.items() if pid not in seen})
    state.mark_for_reprocessing(engine, incomplete)
    report = {"orphan_points_deleted": len(orphans), "documents_to_reindex": len(incomplete)}
    if orphans or incomplete:
        what = "all documents" if scope is None else f"the run's {len(scope)} documents"
        log.warning("reconcile %s (%s): %s", source_name, what, report)
    return report


def touched_documents(plan_ref: str) -> set[str]:
    """The documents a run's plan processed, updated or deleted (read from its staged files)."""
    plan = records.read_plan(plan_ref)
    touched = {u.doc_id for u in plan.updates} | {d.doc_id for d in plan.deletes}
    for ref in plan.batches:
        touched.update(item.doc_id for item in records.read_batch(ref).items)
    return touched


def changes_nothing(summary: dict) -> bool:
    """A run's summary with every document unchanged and nothing deleted."""
    return PlanCounts.from_json(summary).changes_nothing


def reconcile_reason(settings: Settings, summary: dict) -> str | None:
    """Why the run that produced ``summary`` needs a full state/Qdrant check, or None."""
    source_name = summary["source"]
    if settings.sync.reconcile_interval_h <= 0:
        return "DOCSYNC_RECONCILE_INTERVAL_H=0 (every run)"
    engine = state.get_engine(settings.state_url)
    last = state.last_reconciled(engine, source_name)
    if last is None:
        return "never reconciled"
    unfinished = state.unfinished_runs(engine, source_name, last, exclude=summary.get("run_id", ""))
    if unfinished:
        return f"run {unfinished[0]} did not finish"
    if (state.utcnow() - last).total_seconds() > settings.sync.reconcile_interval_h * 3600:
        return f"last full check {last:%Y-%m-%d %H:%M} UTC is over DOCSYNC_RECONCILE_INTERVAL_H old"
    return None


def reconcile_if_due(settings: Settings, summary: dict, touched: Callable[[], set[str]]) -> dict:
    """``reconcile`` when ``reconcile_reason`` says so; else, when the run changed the index,
    the check of the documents it ``touched`` (read only then). The report says which and why."""
    reason = reconcile_reason(settings, summary)
    if reason is not None:
        return reconcile(settings, summary["source"]) | {"reason": reason, "scope": "full"}
    if changes_nothing(summary):
        return {"skipped": "no change and no unfinished run since the last full check"}
    return reconcile_documents(settings, summary["source"], touched()) | {
        "reason": "the run changed the index", "scope": "the run's documents"}
