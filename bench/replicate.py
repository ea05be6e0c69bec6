"""A large synced state without paying for a large initial load: copies of a synced share.

:func:`replicate` copies a share ``copies`` times (``c000/``, ``c001/``, ... keeping mtimes
and modes) together with the state-store rows and Qdrant points of its docsync home,
rewritten for each copy's paths, document IDs, point IDs and ACL fingerprints. That is exactly what an
initial load of the copies would have stored (same rows, same vectors), so a re-sync
measures the real no-change path at that scale."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from pathlib import Path

SOURCE = "fileshare"


def _copy_share(src: Path, dst: Path, copies: int) -> None:
    shutil.rmtree(dst, ignore_errors=True)
    for k in range(copies):
        shutil.copytree(src, dst / f"c{k:03d}")  # copy2: mtime and mode kept, so size/mtime/ACL match


def replicate(src_share: Path, src_home: Path, dst_share: Path, dst_home: Path, copies: int) -> int:
    """Build the replicated share and home; returns the number of documents."""
    from docsync import index, state
    from docsync.chunk import point_id
    from docsync.config import load_settings
    from docsync.sources import open_source
    from docsync.steps.plan import new_doc_id

    _copy_share(src_share, dst_share, copies)
    # ACL fingerprints include the sidecar's ctime, which a copy cannot keep: take the copies' own.
    # The copy is a root no run configured: allow it explicitly (open_source refuses other roots).
    settings = load_settings().with_overrides(allowed_roots=(str(dst_share),))
    fingerprints = {e.path: e.acl_fingerprint for e in open_source(settings, str(dst_share)).list()}
    shutil.rmtree(dst_home, ignore_errors=True)
    src = sa.create_engine(f"sqlite:///{src_home / 'state.db'}")
    with src.connect() as conn:
        docs = [dict(r) for r in conn.execute(sa.select(state.documents).where(state.documents.c.source == SOURCE)).mappings()]
        chunks = [dict(r) for r in conn.execute(sa.select(state.chunks).order_by(state.chunks.c.chunk_index)).mappings()]
    src.dispose()
    # Both indexes in the configured embedded engine (DOCSYNC_QDRANT_ENGINE), as the runs use them.
    collection = f"docsync_{SOURCE}"
    points, offset = {}, None
    with index.open_index(settings.replace(qdrant_path=src_home / "qdrant", qdrant_url=None, qdrant_conn_id=None)) as reader:
        while True:
            records, offset = reader.scroll(collection, limit=1000, offset=offset, with_payload=True, with_vectors=True)
            points.update((str(r.id), r) for r in records)
            if offset is None:
                break

    engine = state.get_engine(f"sqlite:///{dst_home / 'state.db'}")
    dst = settings.replace(qdrant_path=dst_home / "qdrant", qdrant_url=None, qdrant_conn_id=None)
    by_doc: dict[str, list[dict]] = {}
    for c in chunks:
        by_doc.setdefault(c["doc_id"], []).append(c)
    with index.open_index(dst) as writer:
        index.ensure_collection(writer, collection, index.is_local(dst))
        for k in range(copies):
            doc_rows, chunk_rows, new_points = [], [], []
            for doc in docs:
                path = f"c{k:03d}/{doc['path']}"
                doc_id = new_doc_id(SOURCE, path, set())
                doc_rows.append(doc | {"doc_id": doc_id, "path": path, "acl_fingerprint": fingerprints[path]})
                seen: dict[str, int] = {}
                for c in by_doc.get(doc["doc_id"], []):
                    pid = point_id(doc_id, c["text_hash"], seen.get(c["text_hash"], 0))
                    seen[c["text_hash"]] = seen.get(c["text_hash"], 0) + 1
                    chunk_rows.append(c | {"point_id": pid, "doc_id": doc_id})
                    old = points[c["point_id"]]
                    new_points.append((pid, list(old.vector), old.payload | {"doc_id": doc_id, "path": path}))
            with engine.begin() as conn:
                conn.execute(sa.insert(state.documents), doc_rows)
                conn.execute(sa.insert(state.chunks), chunk_rows)
            index.upsert(writer, collection, new_points)
    # A synced index was checked by the run that wrote it (see steps.reconcile.reconcile_reason); without
    # this the first no-change re-sync of the copy would run the full check it never needs.
    state.mark_reconciled(engine, SOURCE, state.utcnow())
    return len(docs) * copies
