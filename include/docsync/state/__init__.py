"""The state store: documents, their chunks (point IDs), runs, metrics and quarantine.

SQLite by default, PostgreSQL (or any SQLAlchemy URL) by ``DOCSYNC_STATE_URL``. Every SQL
statement on docsync's tables is a named function of this package:

- :mod:`.schema`: the tables, the engine (created and migrated on first use), value helpers;
- :mod:`.document_store`: documents and chunks, as the sync steps read and write them;
- :mod:`.run_store`: runs, summaries, metric points, reconcile times;
- :mod:`.review_store`: the quarantine and the monitoring/review queries;
- :mod:`.backlog_store`: the backlog (changes seen, not yet applied) and the lag metrics' history;
- :mod:`.eval_store`: retrieval evaluation runs (``docsync eval``) and their baseline.

The write step is the only writer of documents during a run; every write is one short transaction.
"""

from __future__ import annotations

from docsync.state.backlog_store import (
    CONTENT,
    REVOCATION,
    backlog,
    clear_pending,
    metric_sums,
    oldest_open_quarantine,
    pending_since,
    previous_scan_start,
    replace_pending,
    unfinished_run_count,
)
from docsync.state.document_store import (
    chunk_ids,
    delete_document,
    document_row,
    first_seen_of,
    get_document,
    indexed_doc_ids,
    load_documents,
    mark_for_reprocessing,
    recorded_points,
    save_document,
    unindex_document,
    update_document,
)
from docsync.state.eval_store import (
    baseline_recall,
    docs_indexed_since,
    eval_history,
    eval_runs,
    latest_eval,
    record_eval,
    run_started_at,
)
from docsync.state.review_store import (
    document_state,
    document_status_counts,
    finished_runs,
    last_successful_run,
    open_quarantine_count,
    quarantine_entries,
    quarantine_entry,
    quarantine_history,
    quarantine_stages,
    quarantine_to_reprocess,
    record_quarantine,
    resolve_quarantine,
    run_metrics,
    set_quarantine_status,
    source_names,
)
from docsync.state.run_store import (
    finish_run,
    last_reconciled,
    last_success,
    mark_reconciled,
    recent_runs,
    start_run,
    unfinished_runs,
)
from docsync.state.schema import (
    as_utc,
    chunks,
    documents,
    dumps,
    get_engine,
    loads_object,
    metadata,
    metric_points,
    path_hash,
    pending,
    quarantine,
    quarantine_actions,
    runs,
    sources,
    utcnow,
)

__all__ = [
    "CONTENT",
    "REVOCATION",
    "as_utc",
    "backlog",
    "baseline_recall",
    "chunk_ids",
    "chunks",
    "clear_pending",
    "delete_document",
    "document_row",
    "document_state",
    "document_status_counts",
    "documents",
    "docs_indexed_since",
    "dumps",
    "eval_history",
    "eval_runs",
    "finish_run",
    "finished_runs",
    "first_seen_of",
    "get_document",
    "get_engine",
    "indexed_doc_ids",
    "last_reconciled",
    "last_success",
    "last_successful_run",
    "latest_eval",
    "load_documents",
    "loads_object",
    "mark_for_reprocessing",
    "mark_reconciled",
    "metadata",
    "metric_points",
    "metric_sums",
    "oldest_open_quarantine",
    "open_quarantine_count",
    "path_hash",
    "pending",
    "pending_since",
    "previous_scan_start",
    "quarantine",
    "quarantine_actions",
    "quarantine_entries",
    "quarantine_entry",
    "quarantine_history",
    "quarantine_stages",
    "quarantine_to_reprocess",
    "recent_runs",
    "record_eval",
    "record_quarantine",
    "recorded_points",
    "replace_pending",
    "resolve_quarantine",
    "run_metrics",
    "run_started_at",
    "runs",
    "save_document",
    "set_quarantine_status",
    "source_names",
    "sources",
    "start_run",
    "unfinished_run_count",
    "unfinished_runs",
    "unindex_document",
    "update_document",
    "utcnow",
]
