"""Documents and their chunks (point ids): what the sync steps read and write."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from docsync.state.schema import (
    chunks,
    documents,
    dumps,
    path_hash,
)

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy.engine import Engine


def load_documents(engine: Engine, source: str) -> dict[str, dict]:
    """All listed documents of a source (not the parts of containers), keyed by path."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents).where(documents.c.source == source, documents.c.parent_id == "")
        ).mappings()
        return {r["path"]: dict(r) for r in rows}


def children_of(conn: sa.Connection, parent_ids: Iterable[str]) -> dict[str, dict]:
    """The parts (attachments, archive members) recorded for these containers, by doc id."""
    ids = list(parent_ids)
    out: dict[str, dict] = {}
    for start in range(0, len(ids), 500):
        rows = conn.execute(sa.select(documents).where(documents.c.parent_id.in_(ids[start : start + 500])))
        out |= {r["doc_id"]: dict(r) for r in rows.mappings()}
    return out


def parents_of(engine: Engine, doc_ids: Iterable[str]) -> dict[str, str]:
    """part id -> its container's id, for those of ``doc_ids`` that are parts."""
    ids = list(doc_ids)
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(sa.select(documents.c.doc_id, documents.c.parent_id).where(
                documents.c.doc_id.in_(ids[start : start + 500]), documents.c.parent_id != ""))
            out |= {r.doc_id: r.parent_id for r in rows}
    return out


def key_of(row: dict) -> str:
    """A path's uniqueness key: a part's path (``mail.eml#attachment/1/a.pdf``) lives in its
    own namespace, so a listed file that happens to bear that name never collides with it."""
    return path_hash(f"\x00part\x00{row['path']}" if row.get("parent_id") else row["path"])


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
    row = row | {"path_hash": key_of(row)}
    conn.execute(sa.delete(documents).where(documents.c.doc_id == row["doc_id"]))
    # A document moved onto the path of a deleted one: the old row (and its chunks) go first.
    replaced = [
        r.doc_id
        for r in conn.execute(
            sa.select(documents.c.doc_id).where(
                documents.c.source == row["source"], documents.c.path_hash == row["path_hash"]
            )
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


def document_row(
    *,
    source: str,
    doc_id: str,
    path: str,
    size: int,
    mtime_ns: int,
    acl_fingerprint: str,
    status: str,
    first_seen: datetime,
    indexed_at: datetime | None,
    content_hash: str = "",
    allowed: Iterable[str] = (),
    denied: Iterable[str] = (),
    chunk_count: int = 0,
    doc_meta: dict | None = None,
    text_fp: str = "",
    embed_fp: str = "",
    parent_id: str = "",
) -> dict:
    """The column values of one ``docsync_documents`` row (for :func:`save_document`)."""
    return {
        "doc_id": doc_id,
        "source": source,
        "path": path,
        "size": size,
        "mtime_ns": mtime_ns,
        "content_hash": content_hash,
        "acl_fingerprint": acl_fingerprint,
        "allowed": dumps(list(allowed)),
        "denied": dumps(list(denied)),
        "status": status,
        "chunk_count": chunk_count,
        "doc_meta": dumps(doc_meta or {}),
        "first_seen": first_seen,
        "indexed_at": indexed_at,
        "text_fp": text_fp,
        "embed_fp": embed_fp,
        "parent_id": parent_id,
    }


def first_seen_of(engine: Engine, doc_ids: Iterable[str]) -> dict[str, datetime]:
    """When docsync first saw each of these documents (those it knows)."""
    ids = list(doc_ids)
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(documents.c.doc_id, documents.c.first_seen).where(documents.c.doc_id.in_(ids)))
        return {r.doc_id: r.first_seen for r in rows}


def get_document(conn: sa.Connection, doc_id: str) -> dict | None:
    row = conn.execute(sa.select(documents).where(documents.c.doc_id == doc_id)).mappings().first()
    return dict(row) if row else None


def update_document(conn: sa.Connection, doc_id: str, **values: Any) -> None:
    """Change some columns of one document (a new ``path`` brings its hash along)."""
    if "path" in values:
        parent = conn.execute(sa.select(documents.c.parent_id).where(documents.c.doc_id == doc_id)).scalar()
        values["path_hash"] = key_of({"path": values["path"], "parent_id": parent or ""})
    for key in ("allowed", "denied", "doc_meta"):
        if key in values and not isinstance(values[key], str):
            values[key] = dumps(values[key])
    conn.execute(sa.update(documents).where(documents.c.doc_id == doc_id).values(**values))


def unindex_document(conn: sa.Connection, doc_id: str, **values: Any) -> None:
    """Mark a document quarantined: it has no points any more (its chunk rows go)."""
    update_document(conn, doc_id, status="quarantined", chunk_count=0, **values)
    conn.execute(sa.delete(chunks).where(chunks.c.doc_id == doc_id))


def indexed_doc_ids(engine: Engine, source: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(documents.c.doc_id).where(documents.c.source == source, documents.c.status == "indexed"))
        return {r.doc_id for r in rows}


def recorded_points(engine: Engine, source: str) -> dict[str, str]:
    """point id -> doc id of every chunk the state store records for a source."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(chunks.c.point_id, chunks.c.doc_id)
            .join(documents, documents.c.doc_id == chunks.c.doc_id)
            .where(documents.c.source == source)
        )
        return {r.point_id: r.doc_id for r in rows}


def documents_and_parts(engine: Engine, source: str, doc_ids: Iterable[str]) -> dict[str, str]:
    """doc id -> status of ``doc_ids`` the state store knows and of their parts: what a run that
    touched ``doc_ids`` may have changed. A part at any depth (an attachment of an e-mail inside a
    ZIP) names the listed document as its parent (steps.process.Part), so one pass finds them all."""
    ids = sorted(set(doc_ids))
    found: dict[str, str] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            rows = conn.execute(
                sa.select(documents.c.doc_id, documents.c.status)
                .where(documents.c.source == source)
                .where(sa.or_(documents.c.doc_id.in_(part), documents.c.parent_id.in_(part)))
            )
            found |= {r.doc_id: r.status for r in rows}
    return found


def mark_for_reprocessing(engine: Engine, doc_ids: Iterable[str]) -> None:
    """Forget what is known of these documents' content: the next plan processes them again."""
    ids = list(doc_ids)
    if ids:
        with engine.begin() as conn:
            conn.execute(sa.update(documents).where(documents.c.doc_id.in_(ids)).values(mtime_ns=-1, content_hash=""))
