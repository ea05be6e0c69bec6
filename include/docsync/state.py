"""The state store: documents, their chunks (point IDs), runs, metrics and quarantine.

SQLite by default, PostgreSQL (or any SQLAlchemy URL) by ``DOCSYNC_STATE_URL``.
The index task is its only writer during a run; every write is one short transaction.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

metadata = sa.MetaData()

documents = sa.Table(
    "docsync_documents",
    metadata,
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("path", sa.String(2048), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("mtime_ns", sa.BigInteger, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("acl_fingerprint", sa.String(512), nullable=False, default=""),
    sa.Column("allowed", sa.Text, nullable=False, default="[]"),
    sa.Column("denied", sa.Text, nullable=False, default="[]"),
    sa.Column("status", sa.String(16), nullable=False),  # indexed | quarantined
    sa.Column("chunk_count", sa.Integer, nullable=False, default=0),
    sa.Column("doc_meta", sa.Text, nullable=False, default="{}"),  # mime, pages, ocr, pii counts
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("indexed_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("source", "path", name="uq_docsync_documents_source_path"),
)

chunks = sa.Table(
    "docsync_chunks",
    metadata,
    sa.Column("point_id", sa.String(36), primary_key=True),
    sa.Column("doc_id", sa.String(64), nullable=False, index=True),
    sa.Column("chunk_index", sa.Integer, nullable=False),
    sa.Column("text_hash", sa.String(64), nullable=False),
)

sources = sa.Table(
    "docsync_sources",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("last_reconciled_at", sa.DateTime(timezone=True)),
)

runs = sa.Table(
    "docsync_runs",
    metadata,
    sa.Column("run_id", sa.String(128), primary_key=True),
    sa.Column("source", sa.String(128), nullable=False, index=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),  # running | success | failed
    sa.Column("summary", sa.Text, nullable=False, default="{}"),
)

metric_points = sa.Table(
    "docsync_metrics",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(128), nullable=False, index=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

quarantine = sa.Table(
    "docsync_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("doc_id", sa.String(64), nullable=False),
    sa.Column("path", sa.String(2048), nullable=False),
    sa.Column("stage", sa.String(32), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("error", sa.Text, nullable=False, default=""),
    sa.Column("content_hash", sa.String(64), nullable=False, default=""),
    sa.Column("preview", sa.Text, nullable=False, default=""),  # anonymized text only
    sa.Column("status", sa.String(16), nullable=False),  # open | retry | released | dismissed | resolved
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("source", "doc_id", name="uq_docsync_quarantine_source_doc"),
)

quarantine_actions = sa.Table(
    "docsync_quarantine_actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("quarantine_id", sa.Integer, nullable=False, index=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("note", sa.Text, nullable=False, default=""),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One engine per URL per process; creates the tables on first use."""
    kwargs: dict[str, Any] = {"future": True}
    if url.startswith("sqlite"):
        from pathlib import Path

        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 60}
    else:
        kwargs["pool_pre_ping"] = True
    engine = sa.create_engine(url, **kwargs)
    if url.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # noqa: ANN001
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    metadata.create_all(engine)
    return engine


# --- documents -------------------------------------------------------------------------


def load_documents(engine: Engine, source: str) -> dict[str, dict]:
    """All known documents of a source, keyed by path."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(documents).where(documents.c.source == source)).mappings()
        return {r["path"]: dict(r) for r in rows}


def chunk_ids(engine: Engine, doc_ids: Iterable[str]) -> dict[str, set[str]]:
    """Point IDs currently recorded per document."""
    ids = list(doc_ids)
    out: dict[str, set[str]] = {d: set() for d in ids}
    if not ids:
        return out
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            for row in conn.execute(
                sa.select(chunks.c.doc_id, chunks.c.point_id).where(chunks.c.doc_id.in_(part))
            ):
                out[row.doc_id].add(row.point_id)
    return out


def save_document(conn: sa.Connection, row: dict, chunk_rows: list[dict] | None) -> None:
    """Insert or replace a document row and (when given) its full chunk list."""
    conn.execute(sa.delete(documents).where(documents.c.doc_id == row["doc_id"]))
    # A document moved onto the path of a deleted one: the old row (and its chunks) go first.
    replaced = [
        r.doc_id
        for r in conn.execute(
            sa.select(documents.c.doc_id).where(documents.c.source == row["source"], documents.c.path == row["path"])
        )
    ]
    if replaced:
        conn.execute(sa.delete(chunks).where(chunks.c.doc_id.in_(replaced)))
        conn.execute(sa.delete(documents).where(documents.c.doc_id.in_(replaced)))
    conn.execute(sa.insert(documents).values(**row))
    if chunk_rows is not None:
        conn.execute(sa.delete(chunks).where(chunks.c.doc_id == row["doc_id"]))
        if chunk_rows:
            conn.execute(sa.insert(chunks), chunk_rows)


def delete_document(conn: sa.Connection, doc_id: str) -> None:
    conn.execute(sa.delete(chunks).where(chunks.c.doc_id == doc_id))
    conn.execute(sa.delete(documents).where(documents.c.doc_id == doc_id))


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# --- runs and metrics -------------------------------------------------------------------


def start_run(engine: Engine, run_id: str, source: str) -> None:
    with engine.begin() as conn:
        existing = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
        if existing is None:
            conn.execute(
                sa.insert(runs).values(run_id=run_id, source=source, started_at=utcnow(), status="running", summary="{}")
            )


def finish_run(engine: Engine, run_id: str, status: str, summary: dict, metrics: dict[str, float]) -> None:
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(runs.c.source).where(runs.c.run_id == run_id)).first()
        source = row.source if row else summary.get("source", "")
        conn.execute(
            sa.update(runs).where(runs.c.run_id == run_id).values(finished_at=now, status=status, summary=dumps(summary))
        )
        conn.execute(sa.delete(metric_points).where(metric_points.c.run_id == run_id))
        if metrics:
            conn.execute(
                sa.insert(metric_points),
                [
                    {"run_id": run_id, "source": source, "name": k, "value": float(v), "recorded_at": now}
                    for k, v in metrics.items()
                ],
            )


def last_reconciled(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(sa.select(sources.c.last_reconciled_at).where(sources.c.source == source)).scalar()
    return as_utc(value)


def mark_reconciled(engine: Engine, source: str, at: datetime) -> None:
    with engine.begin() as conn:
        done = conn.execute(sa.update(sources).where(sources.c.source == source).values(last_reconciled_at=at))
        if done.rowcount == 0:
            conn.execute(sa.insert(sources).values(source=source, last_reconciled_at=at))


def unfinished_runs(engine: Engine, source: str, since: datetime, exclude: str = "") -> list[str]:
    """Runs of ``source`` started since ``since`` that did not succeed (killed, failed, still running)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.started_at)
            .where(runs.c.source == source, runs.c.status != "success", runs.c.run_id != exclude)
            .order_by(runs.c.started_at)
        ).all()
    return [r.run_id for r in rows if as_utc(r.started_at) >= since]


def last_success(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.max(runs.c.finished_at)).where(runs.c.source == source, runs.c.status == "success")
        ).scalar()
    return as_utc(value)


def recent_runs(engine: Engine, source: str | None = None, limit: int = 20) -> list[dict]:
    query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
    if source:
        query = query.where(runs.c.source == source)
    with engine.connect() as conn:
        return [dict(r) | {"summary": json.loads(r["summary"] or "{}")} for r in conn.execute(query).mappings()]
