"""The state store's tables, its engine (created and migrated on first use) and value helpers."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

metadata = sa.MetaData()

documents = sa.Table(
    "docsync_documents",
    metadata,
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(128), nullable=False),
    # Paths are unbounded text; uniqueness goes through their hash, since btree index entries
    # are limited in size (PostgreSQL: ~2.7 kB) and share paths are not.
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("path_hash", sa.String(64), nullable=False),
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
    # The processing that produced the document's points (docsync.fingerprint digests; "": it
    # was indexed before docsync recorded them).
    sa.Column("text_fp", sa.String(64), nullable=False, default=""),
    sa.Column("embed_fp", sa.String(64), nullable=False, default=""),
    # A part of a container (an e-mail's attachment, an archive's member): the id of the
    # listed document it came from; "" for a listed document. Deleted, re-processed and
    # access-updated with its parent (ARCHITECTURE.md, "Containers").
    sa.Column("parent_id", sa.String(64), nullable=False, default="", server_default="", index=True),
    sa.UniqueConstraint("source", "path_hash", name="uq_docsync_documents_source_path_hash"),
)

# Every processing fingerprint docsync has used, by digest: what a document's ``text_fp``
# stood for, so that a plan can tell a PII-stricter change from another one.
fingerprints = sa.Table(
    "docsync_fingerprints",
    metadata,
    sa.Column("fp_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # text | embedding
    sa.Column("fingerprint", sa.Text, nullable=False),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
)

# The embedding fingerprint of the vectors in each collection (an alias, or a version being
# built by `docsync reindex`): vectors of two models never share one.
collections = sa.Table(
    "docsync_collections",
    metadata,
    sa.Column("collection", sa.String(255), primary_key=True),
    sa.Column("embed_fp", sa.String(64), nullable=False),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
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

# Changes a plan has seen that are not applied to the index yet (the backlog): one row per
# document, kept with the time the change was *first* detected across runs, so that a change
# planned by a failed run, or deferred by a batch out of time, ages instead of restarting.
pending = sa.Table(
    "docsync_pending",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("doc_id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # content (process in full) | revocation (acl, delete)
    sa.Column("detected_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("scan", sa.Integer, nullable=False, default=0, server_default="0"),  # the walk that last found it
)

quarantine = sa.Table(
    "docsync_quarantine",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(128), nullable=False),
    sa.Column("doc_id", sa.String(64), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
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
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; everything we store is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
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
        def _sqlite_pragmas(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    # Stores that own their tables register them on `metadata` when imported; create_all adds a
    # missing table to an existing store too (that is the migration of a new table).
    from docsync.state import directory_store, scan_store  # noqa: F401

    metadata.create_all(engine)
    _migrate(engine)
    if url.startswith("sqlite"):
        _restrict_sqlite_files(url)
    return engine


def _restrict_sqlite_files(url: str) -> None:
    """The embedded state store holds paths and ACLs: readable by its owner only."""
    from pathlib import Path

    db_path = url.split("///", 1)[-1]
    if not db_path or db_path == ":memory:":
        return
    for candidate in (Path(db_path), Path(db_path + "-wal"), Path(db_path + "-shm")):
        if candidate.exists():
            os.chmod(candidate, 0o600)


def _migrate(engine: Engine) -> None:
    """Bring a state store created by an older docsync to this schema (idempotent):
    documents get ``path_hash`` (unique per source instead of the bounded path), their
    processing fingerprints (empty: re-processed within the budget) and ``parent_id`` (parts of
    containers), and on PostgreSQL the path columns become unbounded text."""
    columns = {c["name"] for c in sa.inspect(engine).get_columns("docsync_documents")}
    with engine.begin() as conn:
        for column in ("text_fp", "embed_fp"):
            if column not in columns:
                conn.execute(sa.text(f"ALTER TABLE docsync_documents ADD COLUMN {column} VARCHAR(64) NOT NULL DEFAULT ''"))
        if "path_hash" not in columns:
            conn.execute(sa.text("ALTER TABLE docsync_documents ADD COLUMN path_hash VARCHAR(64)"))
            for doc_id, path in conn.execute(sa.select(documents.c.doc_id, documents.c.path)).all():
                conn.execute(sa.update(documents).where(documents.c.doc_id == doc_id).values(path_hash=path_hash(path)))
            conn.execute(sa.text(
                "CREATE UNIQUE INDEX IF NOT EXISTS uq_docsync_documents_source_path_hash "
                "ON docsync_documents (source, path_hash)"
            ))
        if "parent_id" not in columns:
            conn.execute(sa.text("ALTER TABLE docsync_documents ADD COLUMN parent_id VARCHAR(64) NOT NULL DEFAULT ''"))
            conn.execute(sa.text(
                "CREATE INDEX IF NOT EXISTS ix_docsync_documents_parent_id ON docsync_documents (parent_id)"
            ))
        if "scan" not in {c["name"] for c in sa.inspect(conn).get_columns("docsync_pending")}:
            conn.execute(sa.text("ALTER TABLE docsync_pending ADD COLUMN scan INTEGER NOT NULL DEFAULT 0"))
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text(
                "ALTER TABLE docsync_documents DROP CONSTRAINT IF EXISTS uq_docsync_documents_source_path"
            ))
            for table in ("docsync_documents", "docsync_quarantine"):
                conn.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN path TYPE TEXT"))


def path_hash(path: str) -> str:
    """The key that makes a path unique within a source (paths themselves are unbounded)."""
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()


def dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def loads_object(value: str | None) -> dict:
    """A JSON object column (``doc_meta``, ``allowed``...) as stored; {} when empty or unreadable."""
    try:
        loaded = json.loads(value or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}
