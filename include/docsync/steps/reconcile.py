"""Step 6, reconcile: repair drift between the state store and Qdrant, when it is due.

Points whose document is not indexed in the state store (orphans) are deleted; documents
whose recorded points are missing from Qdrant are marked for re-processing. The check scrolls
every point of the collection (embedded mode loads them all to open it), so a run that changed
nothing skips it unless an earlier run may have left drift.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from docsync import index, state
from docsync.records import PlanCounts

if TYPE_CHECKING:
    from docsync.config import Settings

log = logging.getLogger(__name__)


def reconcile(settings: Settings, source_name: str | None = None) -> dict:
    """Delete orphan points and mark documents with missing points for re-processing."""
    source_name = source_name or settings.source.name
    engine = state.get_engine(settings.state_url)
    collection = settings.collection(source_name)
    checked_at = state.utcnow()  # runs that start after this are covered by the next check
    indexed = state.indexed_doc_ids(engine, source_name)
    expected = state.recorded_points(engine, source_name)
    orphans: list[str] = []
    seen: set[str] = set()
    with index.open_index(settings) as client:
        for record in index.scroll_all(client, collection, with_payload=["doc_id"]):
            pid = str(record.id)
            seen.add(pid)
            if (record.payload or {}).get("doc_id") not in indexed or pid not in expected:
                orphans.append(pid)
        index.delete_ids(client, collection, orphans)
    incomplete = sorted({doc for pid, doc in expected.items() if pid not in seen})
    state.mark_for_reprocessing(engine, incomplete)
    state.mark_reconciled(engine, source_name, checked_at)
    report = {"orphan_points_deleted": len(orphans), "documents_to_reindex": len(incomplete)}
    if orphans or incomplete:
        log.warning("reconcile %s: %s", source_name, report)
    return report


def changes_nothing(summary: dict) -> bool:
    """A run's summary with every document unchanged and nothing deleted."""
    return PlanCounts.from_json(summary).changes_nothing


def reconcile_reason(settings: Settings, summary: dict) -> str | None:
    """Why the run that produced ``summary`` needs a full state/Qdrant check, or None."""
    source_name = summary["source"]
    if settings.sync.reconcile_interval_h <= 0:
        return "DOCSYNC_RECONCILE_INTERVAL_H=0 (every run)"
    if not changes_nothing(summary):
        return "the run changed the index"
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


def reconcile_if_due(settings: Settings, summary: dict) -> dict:
    """``reconcile`` when ``reconcile_reason`` says so; the report says which and why."""
    reason = reconcile_reason(settings, summary)
    if reason is None:
        return {"skipped": "no change and no unfinished run since the last full check"}
    return reconcile(settings, summary["source"]) | {"reason": reason}
