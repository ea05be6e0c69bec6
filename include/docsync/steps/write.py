"""Step 4, write: one staged batch result into Qdrant, then into the state store.

Write order per document: upsert new points -> update kept points -> delete the
document's other points -> commit state. Point IDs are deterministic, so a batch killed at
any point and written again converges to the same index with no duplicates or orphans.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from typing import TYPE_CHECKING

from docsync import embedding_guard, fingerprint, index, metrics, quarantine, records, state, storage
from docsync.context import RunContext
from docsync.errors import Failure, Stage
from docsync.faults import crash_point
from docsync.records import DocResult, DocStatus, WorkKind, WriteReport

if TYPE_CHECKING:
    from datetime import datetime

    import sqlalchemy as sa
    from qdrant_client import QdrantClient

    from docsync.config import Settings

log = logging.getLogger(__name__)


def _document_row(source: str, doc: DocResult, status: str, first_seen: datetime, indexed_at: datetime | None) -> dict:
    entry = doc.item.entry
    return state.document_row(
        source=source, doc_id=doc.doc_id, path=entry.path, size=entry.size, mtime_ns=entry.mtime_ns,
        acl_fingerprint=entry.acl_fingerprint, status=status, first_seen=first_seen, indexed_at=indexed_at,
        content_hash=doc.content_hash, allowed=doc.allowed, denied=doc.denied, chunk_count=len(doc.chunks),
        doc_meta=doc.meta.to_json() if doc.meta else {}, text_fp=doc.text_fp, embed_fp=doc.embed_fp,
        parent_id=doc.item.parent,
    )


def _chunk_rows(doc: DocResult) -> list[dict]:
    return [
        {"point_id": c.point_id, "doc_id": doc.doc_id, "chunk_index": c.index, "text_hash": c.text_hash}
        for c in doc.chunks
    ]


def _quarantine(client: QdrantClient, conn: sa.Connection, collection: str, source: str, doc: DocResult,
                failure: Failure, first_seen: datetime) -> None:
    """Fail closed: a quarantined document has no points in the index."""
    index.delete_doc(client, collection, doc.doc_id)
    state.save_document(conn, _document_row(source, doc, "quarantined", first_seen, None) | {"chunk_count": 0}, [])
    quarantine.record(conn, source=source, doc_id=doc.doc_id, path=doc.path, failure=failure,
                      content_hash=doc.content_hash, preview=doc.preview)
    state.clear_pending(conn, source, [doc.doc_id])  # counted as quarantined from now on


def _commit(ctx: RunContext, client: QdrantClient, source: str, docs: list[DocResult],
            first_seen_of: dict, now: datetime) -> list[DocResult]:
    """Record the written documents in one transaction; when that fails, one by one, and a
    document the state store refuses (a path it cannot hold, say) is quarantined alone."""
    def save(conn: sa.Connection, doc: DocResult) -> None:
        state.save_document(conn, _document_row(source, doc, "indexed", first_seen_of.get(doc.doc_id) or now, now),
                            _chunk_rows(doc))
        quarantine.resolve(conn, source, doc.doc_id)
        state.clear_pending(conn, source, [doc.doc_id])

    try:
        with ctx.engine.begin() as conn:
            for doc in docs:
                save(conn, doc)
        return docs
    except Exception:  # retried per document below, where the error is logged
        log.warning("state commit of %d documents failed; committing them one by one", len(docs))
    committed = []
    for doc in docs:
        try:
            with ctx.engine.begin() as conn:
                save(conn, doc)
            committed.append(doc)
        except Exception as exc:  # one document the state store refuses never fails the batch
            failure = Failure(Stage.INDEX, f"the state store refused {doc.path[:200]}: {type(exc).__name__}; "
                              "see error, fix the database or the document and retry it", str(exc)[:500])
            log.warning("quarantine %s at index: %s", doc.path[:200], exc)
            with ctx.engine.begin() as conn:
                _quarantine(client, conn, ctx.collection, source, doc, failure, first_seen_of.get(doc.doc_id) or now)
    return committed


def _drop_stale_parts(ctx: RunContext, client: QdrantClient, collection: str, source: str,
                      documents: list[DocResult]) -> int:
    """Parts recorded for the batch's containers that this processing did not produce again
    (an attachment removed from a re-saved e-mail, a container now quarantined): their points,
    rows and quarantine entries go. Before the state commit: a run killed in between leaves
    the container modified, so it is processed again."""
    containers = [d.doc_id for d in documents if not d.item.parent]
    produced = {d.doc_id for d in documents}
    with ctx.engine.connect() as conn:
        stale = [doc_id for doc_id in state.children_of(conn, containers) if doc_id not in produced]
    for doc_id in stale:
        index.delete_doc(client, collection, doc_id)
        with ctx.engine.begin() as conn:
            state.delete_document(conn, doc_id)
            quarantine.resolve(conn, source, doc_id)
    return len(stale)


def _one_writer(ctx: RunContext, collection: str):
    """One batch written into ``collection`` at a time. The embedded index is opened by one
    process at a time already; a Qdrant server is not, and the DAG's `process` tasks each write
    their batches as they go, on every worker (the state store's lock serialises them)."""
    from contextlib import nullcontext

    settings = ctx.settings
    if settings.qdrant.url or settings.qdrant.conn_id:
        return state.writer_lock(ctx.engine, collection)
    return nullcontext()


def write_batch(settings: Settings, result_ref: str, collection: str | None = None) -> WriteReport:
    """Write one staged result to Qdrant, then commit it to the state store.
    ``collection``: another target than the source's alias (`docsync reindex`)."""
    started = time.perf_counter()
    result = records.read_result(result_ref)
    ctx = RunContext(settings, result.source, result.run_id)
    source = result.source
    vectors = storage.read_vectors(result.vectors)
    collection = collection or ctx.collection
    counts: Counter = Counter()
    documents = [d for d in result.documents if d.status is not DocStatus.DEFERRED]
    counts["deferred"] = len(result.documents) - len(documents)
    first_seen_of = state.first_seen_of(ctx.engine, [d.doc_id for d in documents])
    now = state.utcnow()
    stamp = now.isoformat()
    with _one_writer(ctx, collection), index.open_index(settings) as client:
        index.ensure_collection(client, collection, index.is_local(settings))
        # Vectors of another model than the collection's are never written (embedding_guard).
        embedding = fingerprint.embedding_fingerprint()
        embedding_guard.claim(ctx.engine, client, collection, embedding, source)
        ok_docs = [d for d in documents if d.status is DocStatus.OK]
        if any(d.embed_fp and d.embed_fp != fingerprint.digest(embedding) for d in ok_docs):
            raise fingerprint.EmbeddingChanged(
                f"batch {result.number} of run {result.run_id} ({source}) was embedded with another model than "
                "DOCSYNC_EMBED_MODEL names now; nothing of it was written. The next run plans its documents again.")
        for doc in documents:
            if doc.status is DocStatus.QUARANTINED:
                with ctx.engine.begin() as conn:
                    _quarantine(client, conn, collection, source, doc, doc.failure, first_seen_of.get(doc.doc_id) or now)
                counts["quarantined"] += 1
        # The batch's documents are written together: one upsert, one state transaction.
        # Point IDs are deterministic, so a batch killed half-way is simply written again.
        reused = [c.point_id for doc in ok_docs for c in doc.chunks if c.vector is None]
        present = index.existing_ids(client, collection, reused)
        missing = [c for doc in ok_docs for c in doc.chunks if c.vector is None and c.point_id not in present]
        reembedded: dict[str, list[float]] = {}
        if missing:  # state said the point exists but it does not (drift): embed again
            from docsync.embed import embed_texts

            reembedded = dict(zip((c.point_id for c in missing), embed_texts([c.text for c in missing])))
        points = [
            (c.point_id, reembedded.get(c.point_id) or vectors[c.vector].tolist(),
             index.point_payload(source, doc, c, stamp))
            for doc in ok_docs
            for c in doc.chunks
            if c.vector is not None or c.point_id in reembedded
        ]
        index.upsert(client, collection, points)
        crash_point("write:after_upsert")
        for doc in ok_docs:
            for c in doc.chunks:
                if c.vector is None and c.point_id in present:
                    index.set_payload(client, collection, index.point_payload(source, doc, c, stamp), [c.point_id])
            if doc.item.kind is not WorkKind.NEW:  # a new document has no older points (reconcile catches strays)
                index.delete_doc(client, collection, doc.doc_id, keep=[c.point_id for c in doc.chunks])
        removed = _drop_stale_parts(ctx, client, collection, source, documents)
        if removed:
            counts["parts_removed"] += removed
        crash_point("write:before_state_commit")
        committed = _commit(ctx, client, source, ok_docs, first_seen_of, now)
    counts["quarantined"] += len(ok_docs) - len(committed)
    # Propagation lag of changes made after docsync last looked (modified documents only: a
    # new document is backlog of an initial load or a new share, not slow propagation).
    last_scan = state.previous_scan_start(ctx.engine, source, result.run_id)
    lags: list[float] = []
    pii_counts: Counter = Counter()
    ocr_pages = 0
    for doc in committed:
        n_reused = sum(1 for c in doc.chunks if c.vector is None)
        n_missing = sum(1 for c in doc.chunks if c.point_id in reembedded)
        counts["indexed"] += 1
        if doc.item.refresh:  # an unchanged document re-processed for a stale text fingerprint
            counts["reprocessed"] += 1
        counts["chunks"] += len(doc.chunks)
        counts["chunks_embedded"] += len(doc.chunks) - n_reused + n_missing
        counts["chunks_reused"] += n_reused - n_missing
        if doc.item.kind is WorkKind.MODIFIED:
            lag = metrics.propagation_lag(now.timestamp(), doc.item.entry.mtime_ns, last_scan)
            if lag is not None:
                lags.append(round(lag, 3))
        pii_counts.update(doc.meta.pii_counts if doc.meta else {})
        ocr_pages += doc.meta.ocr_pages if doc.meta else 0
    return WriteReport(
        counts=dict(counts), propagation_lag_s=tuple(lags), pii=dict(pii_counts),
        ocr_pages=ocr_pages, process_s=result.process_s, index_s=round(time.perf_counter() - started, 3),
    )


def write_batch_json(settings: Settings, result_ref: str) -> dict:
    """:func:`write_batch`'s report as JSON (what the DAG's process task returns for each
    batch): the worker host's writer runs this for the task (host_client.WARM_CALLS)."""
    return write_batch(settings, result_ref).to_json()

