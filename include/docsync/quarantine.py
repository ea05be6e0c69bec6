"""Quarantine: documents that failed a stage, kept for human review.

Life cycle: ``open`` (failed) -> reviewer ``retry`` (re-processed at the next run),
``release`` (re-processed at the next run with document-quality checks overridden;
access and PII checks are never overridden) or ``dismiss`` (left out until the document
changes). A document that later succeeds becomes ``resolved``. Every action is audited.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from docsync.state import quarantine, quarantine_actions, utcnow

ACTIONS = {"retry": "retry", "release": "released", "dismiss": "dismissed"}
REPROCESS_STATUSES = ("retry", "released")
TRANSIENT_STAGES = ("read",)
PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class Failure:
    """Why one document could not be indexed."""

    stage: str  # read | access | detect | parse | ocr | pii | validate | chunk | embed | index
    reason: str  # one line for a person: what failed and what to do
    error: str = ""  # technical detail (exception type and message; never document text)


def _clean(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "")


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
    """Insert or refresh the quarantine entry of a document (one entry per document)."""
    now = utcnow()
    row = conn.execute(
        sa.select(quarantine.c.id, quarantine.c.attempts).where(
            quarantine.c.source == source, quarantine.c.doc_id == doc_id
        )
    ).first()
    values = dict(
        path=_clean(path),
        stage=failure.stage,
        reason=_clean(failure.reason),
        error=_clean(failure.error)[:4000],
        content_hash=content_hash,
        preview=_clean(preview)[:PREVIEW_CHARS],
        status="open",
        last_seen=now,
    )
    if row is None:
        conn.execute(
            sa.insert(quarantine).values(source=source, doc_id=doc_id, attempts=1, first_seen=now, **values)
        )
    else:
        conn.execute(
            sa.update(quarantine).where(quarantine.c.id == row.id).values(attempts=row.attempts + 1, **values)
        )


def resolve(conn: sa.Connection, source: str, doc_id: str) -> None:
    """Mark a document's quarantine entry resolved once it is indexed or gone."""
    conn.execute(
        sa.update(quarantine)
        .where(
            quarantine.c.source == source,
            quarantine.c.doc_id == doc_id,
            quarantine.c.status.notin_(("resolved", "dismissed")),
        )
        .values(status="resolved", last_seen=utcnow())
    )


def reprocess_requests(engine: Engine, source: str) -> dict[str, str]:
    """doc_id -> status for entries to process again at the next run: those a reviewer
    asked to retry or release, and transient failures (a read error or a document that
    vanished mid-run), which are retried automatically."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine.c.doc_id, quarantine.c.status).where(
                quarantine.c.source == source,
                sa.or_(
                    quarantine.c.status.in_(REPROCESS_STATUSES),
                    sa.and_(quarantine.c.status == "open", quarantine.c.stage.in_(TRANSIENT_STAGES)),
                ),
            )
        )
        return {r.doc_id: ("retry" if r.status == "open" else r.status) for r in rows}


def list_entries(
    engine: Engine,
    *,
    source: str | None = None,
    status: str | None = "open",
    stage: str | None = None,
    limit: int = 500,
) -> list[dict]:
    """Quarantine entries, newest first; ``status=None`` lists all."""
    query = sa.select(quarantine).order_by(quarantine.c.last_seen.desc()).limit(limit)
    if source:
        query = query.where(quarantine.c.source == source)
    if status:
        query = query.where(quarantine.c.status == status)
    if stage:
        query = query.where(quarantine.c.stage == stage)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def get_entry(engine: Engine, entry_id: int) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(quarantine).where(quarantine.c.id == entry_id)).mappings().first()
        return dict(row) if row else None


def act(engine: Engine, entry_id: int, action: str, actor: str, note: str = "") -> dict:
    """Apply a reviewer action (retry, release, dismiss) and audit who did it and when."""
    if action not in ACTIONS:
        raise ValueError(f"unknown quarantine action {action!r}; use one of {sorted(ACTIONS)}")
    if action == "release" and not note.strip():
        raise ValueError("release needs an override note saying why the document may be indexed")
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(quarantine.c.id).where(quarantine.c.id == entry_id)).first()
        if row is None:
            raise LookupError(f"no quarantine entry with id {entry_id}")
        conn.execute(sa.update(quarantine).where(quarantine.c.id == entry_id).values(status=ACTIONS[action]))
        conn.execute(
            sa.insert(quarantine_actions).values(quarantine_id=entry_id, action=action, actor=actor, note=note, at=now)
        )
    return get_entry(engine, entry_id) or {}


def history(engine: Engine, entry_id: int) -> list[dict]:
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine_actions)
            .where(quarantine_actions.c.quarantine_id == entry_id)
            .order_by(quarantine_actions.c.at)
        ).mappings()
        return [dict(r) for r in rows]
