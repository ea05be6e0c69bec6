"""The quarantine (recording, resolving, reviewing) and the monitoring queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from docsync.state.schema import (
    as_utc,
    documents,
    metric_points,
    quarantine,
    quarantine_actions,
    runs,
    utcnow,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Engine


def _no_nul(text: str) -> str:
    """PostgreSQL text cannot hold NUL characters."""
    return text.replace("\x00", "")


def record_quarantine(
    conn: sa.Connection, *, source: str, doc_id: str, path: str, stage: str, reason: str, error: str,
    content_hash: str, preview: str,
) -> None:
    """Insert or refresh the quarantine entry of a document (one entry per document)."""
    now = utcnow()
    row = conn.execute(
        sa.select(quarantine.c.id, quarantine.c.attempts).where(quarantine.c.source == source, quarantine.c.doc_id == doc_id)
    ).first()
    values = dict(
        path=_no_nul(path), stage=stage, reason=_no_nul(reason), error=_no_nul(error)[:4000],
        content_hash=content_hash, preview=_no_nul(preview), status="open", last_seen=now,
    )
    if row is None:
        conn.execute(sa.insert(quarantine).values(source=source, doc_id=doc_id, attempts=1, first_seen=now, **values))
    else:
        conn.execute(sa.update(quarantine).where(quarantine.c.id == row.id).values(attempts=row.attempts + 1, **values))


def resolve_quarantine(conn: sa.Connection, source: str, doc_id: str) -> None:
    """Mark a document's open entry resolved (it is indexed or gone)."""
    conn.execute(
        sa.update(quarantine)
        .where(quarantine.c.source == source, quarantine.c.doc_id == doc_id, quarantine.c.status.notin_(("resolved", "dismissed")))
        .values(status="resolved", last_seen=utcnow())
    )


def quarantine_to_reprocess(
    engine: Engine, source: str, statuses: Iterable[str], transient_stages: Iterable[str]
) -> dict[str, str]:
    """doc id -> status of entries with one of ``statuses``, or open at a transient stage."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine.c.doc_id, quarantine.c.status).where(
                quarantine.c.source == source,
                sa.or_(
                    quarantine.c.status.in_(list(statuses)),
                    sa.and_(quarantine.c.status == "open", quarantine.c.stage.in_(list(transient_stages))),
                ),
            )
        )
        return {r.doc_id: r.status for r in rows}


# --- monitoring and review queries
# The plugin pages, the JSON API, /metrics and the quarantine reviewer functions read and
# write through these; ``sources`` (when given) limits a query to the sources the caller
# may see (docsync.webapi authorises per source).


def source_names(engine: Engine) -> list[str]:
    """Every source with a run or a quarantine entry, sorted."""
    with engine.connect() as conn:
        names = {r[0] for r in conn.execute(sa.select(runs.c.source).distinct())}
        names |= {r[0] for r in conn.execute(sa.select(quarantine.c.source).distinct())}
    return sorted(names)


def last_successful_run(engine: Engine, source: str) -> dict | None:
    """``{run_id, finished_at}`` of the newest successful run of a source, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(runs.c.run_id, runs.c.finished_at)
            .where(runs.c.source == source, runs.c.status == "success")
            .order_by(runs.c.finished_at.desc())
            .limit(1)
        ).first()
    return None if row is None else {"run_id": row.run_id, "finished_at": as_utc(row.finished_at)}


def finished_runs(engine: Engine, source: str, limit: int = 50) -> list[dict]:
    """``{run_id, finished_at, status}`` of a source's finished runs, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.finished_at, runs.c.status)
            .where(runs.c.source == source, runs.c.finished_at.is_not(None))
            .order_by(runs.c.finished_at.desc())
            .limit(limit)
        ).all()
    return [{"run_id": r.run_id, "finished_at": as_utc(r.finished_at), "status": r.status} for r in rows]


def run_metrics(engine: Engine, run_ids: Iterable[str]) -> dict[str, dict[str, float]]:
    """run id -> {metric name: value} recorded by :func:`finish_run`."""
    ids = list(run_ids)
    out: dict[str, dict[str, float]] = {i: {} for i in ids}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            query = sa.select(metric_points.c.run_id, metric_points.c.name, metric_points.c.value).where(
                metric_points.c.run_id.in_(ids[start : start + 500])
            )
            for row in conn.execute(query):
                out[row.run_id][row.name] = row.value
    return out


def document_status_counts(engine: Engine, source: str) -> dict[str, int]:
    """status (indexed, quarantined) -> number of documents of a source."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents.c.status, sa.func.count()).where(documents.c.source == source).group_by(documents.c.status)
        ).all()
    return {status: count for status, count in rows}


def open_quarantine_count(engine: Engine, source: str) -> int:
    """Open quarantine entries of a source (awaiting review)."""
    with engine.connect() as conn:
        return conn.execute(
            sa.select(sa.func.count()).where(quarantine.c.source == source, quarantine.c.status == "open")
        ).scalar() or 0


def document_state(engine: Engine, doc_id: str) -> dict | None:
    """``{status, indexed_at, chunk_count}`` of a document in the state store, or None."""
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(documents.c.status, documents.c.indexed_at, documents.c.chunk_count).where(
                documents.c.doc_id == doc_id
            )
        ).mappings().first()
    return None if row is None else dict(row) | {"indexed_at": as_utc(row["indexed_at"])}


def quarantine_entries(
    engine: Engine,
    *,
    source: str | None = None,
    status: str | None = "open",
    stage: str | None = None,
    path_contains: str = "",
    sources: Iterable[str] | None = None,
    limit: int = 500,
) -> list[dict]:
    """Quarantine entries, newest first; ``status=None`` lists all, ``path_contains`` is
    case-insensitive, ``sources`` (when not None) keeps only those sources."""
    query = sa.select(quarantine).order_by(quarantine.c.last_seen.desc(), quarantine.c.id.desc()).limit(limit)
    if source:
        query = query.where(quarantine.c.source == source)
    if sources is not None:
        query = query.where(quarantine.c.source.in_(list(sources)))
    if status:
        query = query.where(quarantine.c.status == status)
    if stage:
        query = query.where(quarantine.c.stage == stage)
    if path_contains:
        query = query.where(sa.func.lower(quarantine.c.path).contains(path_contains.lower(), autoescape=True))
    with engine.connect() as conn:
        return [_entry(r) for r in conn.execute(query).mappings()]


def quarantine_stages(engine: Engine, sources: Iterable[str] | None = None) -> list[str]:
    """The stages of the quarantine entries (of ``sources`` when given), sorted."""
    query = sa.select(quarantine.c.stage).distinct()
    if sources is not None:
        query = query.where(quarantine.c.source.in_(list(sources)))
    with engine.connect() as conn:
        return sorted(r[0] for r in conn.execute(query))


def quarantine_entry(engine: Engine, entry_id: int) -> dict | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(quarantine).where(quarantine.c.id == entry_id)).mappings().first()
    return _entry(row) if row else None


def set_quarantine_status(engine: Engine, entry_id: int, status: str, *, action: str, actor: str, note: str) -> bool:
    """A reviewer's action: the entry's new status and its audit row, in one transaction.
    False when there is no such entry."""
    with engine.begin() as conn:
        done = conn.execute(sa.update(quarantine).where(quarantine.c.id == entry_id).values(status=status))
        if done.rowcount == 0:
            return False
        conn.execute(
            sa.insert(quarantine_actions).values(
                quarantine_id=entry_id, action=action, actor=actor, note=note, at=utcnow()
            )
        )
    return True


def quarantine_history(engine: Engine, entry_id: int) -> list[dict]:
    """Reviewer actions on an entry, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(quarantine_actions)
            .where(quarantine_actions.c.quarantine_id == entry_id)
            .order_by(quarantine_actions.c.at, quarantine_actions.c.id)
        ).mappings()
        return [dict(r) | {"at": as_utc(r["at"])} for r in rows]


def _entry(row: Any) -> dict:
    """A quarantine row as a dict, its times in UTC (SQLite returns them naive)."""
    return dict(row) | {"first_seen": as_utc(row["first_seen"]), "last_seen": as_utc(row["last_seen"])}
