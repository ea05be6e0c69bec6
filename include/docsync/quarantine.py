"""Quarantine: documents that failed a stage, kept for human review.

Life cycle: ``open`` (failed) -> reviewer ``retry`` (re-processed at the next run),
``release`` (re-processed at the next run with document-quality checks overridden;
access and PII checks are never overridden) or ``dismiss`` (left out until the document
changes). A document that later succeeds becomes ``resolved``. Every action is audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docsync import state

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Engine

    from docsync.errors import Failure

ACTIONS = {"retry": "retry", "release": "released", "dismiss": "dismissed"}
REPROCESS_STATUSES = ("retry", "released")
TRANSIENT_STAGES = ("read",)
PREVIEW_CHARS = 2000


def record(
    conn: sa.Connection,
    *,
    source: str,
    doc_id: str,
    path: str,
    failure: Failure,
    content_hash: str = "",
    preview: str = "",
) -> None:
    """Insert or refresh the quarantine entry of a document (one entry per document).
    ``preview`` must be anonymized text; it is cut to PREVIEW_CHARS."""
    state.record_quarantine(
        conn, source=source, doc_id=doc_id, path=path, stage=failure.stage, reason=failure.reason,
        error=failure.error, content_hash=content_hash, preview=preview[:PREVIEW_CHARS],
    )


def resolve(conn: sa.Connection, source: str, doc_id: str) -> None:
    """Mark a document's quarantine entry resolved once it is indexed or gone."""
    state.resolve_quarantine(conn, source, doc_id)


def reprocess_requests(engine: Engine, source: str) -> dict[str, str]:
    """doc_id -> status for entries to process again at the next run: those a reviewer
    asked to retry or release, and transient failures (a read error or a document that
    vanished mid-run), which are retried automatically (reported as ``retry``)."""
    found = state.quarantine_to_reprocess(engine, source, REPROCESS_STATUSES, TRANSIENT_STAGES)
    return {doc_id: ("retry" if status == "open" else status) for doc_id, status in found.items()}


def list_entries(
    engine: Engine,
    *,
    source: str | None = None,
    status: str | None = "open",
    stage: str | None = None,
    limit: int = 500,
) -> list[dict]:
    """Quarantine entries, newest first; ``status=None`` lists all."""
    return state.quarantine_entries(engine, source=source, status=status, stage=stage, limit=limit)


def get_entry(engine: Engine, entry_id: int) -> dict | None:
    return state.quarantine_entry(engine, entry_id)


def act(engine: Engine, entry_id: int, action: str, actor: str, note: str = "") -> dict:
    """Apply a reviewer action (retry, release, dismiss) and audit who did it and when."""
    if action not in ACTIONS:
        raise ValueError(f"unknown quarantine action {action!r}; use one of {sorted(ACTIONS)}")
    if action == "release" and not note.strip():
        raise ValueError("release needs an override note saying why the document may be indexed")
    if not state.set_quarantine_status(engine, entry_id, ACTIONS[action], action=action, actor=actor, note=note):
        raise LookupError(f"no quarantine entry with id {entry_id}")
    return get_entry(engine, entry_id) or {}


def history(engine: Engine, entry_id: int) -> list[dict]:
    return state.quarantine_history(engine, entry_id)
