"""Qdrant access: embedded by default, a server by URL or Airflow connection.

The embedded engine (``DOCSYNC_QDRANT_ENGINE``) is Qdrant Edge (:mod:`docsync.engines.edge`,
behind the same client interface) or qdrant-client's local mode. Both allow one client per
path (a file lock), so :func:`open_index` waits for the lock and every task closes its client
when done: writes are serialized across processes.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from docsync.embed import dimension

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from qdrant_client import QdrantClient, models

    from docsync.config import Settings
    from docsync.records import ChunkRecord, DocResult

ACCESS_FIELD = "allowed_principals"
DENY_FIELD = "denied_principals"
KEYWORD_FIELDS = ("doc_id", "source", "path", ACCESS_FIELD, DENY_FIELD, "parent_id")
UPSERT_BATCH = 256
SPARSE_VECTOR = "bm25"  # the BM25-style keyword vector next to the dense one (docsync.sparse)
SEARCH_MODES = ("dense", "hybrid")
HYBRID_PREFETCH = 50  # candidates per vector before fusion


class IndexUnavailable(RuntimeError):
    pass


def _connect(settings: Settings) -> QdrantClient:
    from qdrant_client import QdrantClient

    if settings.qdrant.conn_id:
        # The provider's hook knows Airflow connections but not local mode: only servers.
        from airflow.providers.qdrant.hooks.qdrant import QdrantHook

        return QdrantHook(conn_id=settings.qdrant.conn_id).conn
    if settings.qdrant.url:
        return QdrantClient(url=settings.qdrant.url, api_key=settings.qdrant.api_key, timeout=60)
    settings.qdrant.path.mkdir(mode=0o700, parents=True, exist_ok=True)
    settings.qdrant.path.chmod(0o700)  # the embedded index holds document text: owner only
    if settings.qdrant.engine == "edge":
        from docsync.engines.edge import EdgeClient

        # A local-mode index already at the path (an upgrade) is copied in on first open.
        return EdgeClient(settings.qdrant.path / "edge", import_from=settings.qdrant.path)
    if settings.qdrant.engine != "local":
        raise IndexUnavailable(f"unknown DOCSYNC_QDRANT_ENGINE {settings.qdrant.engine!r}; use 'edge' or 'local'")
    return QdrantClient(path=str(settings.qdrant.path))


def is_local(settings: Settings) -> bool:
    """qdrant-client's local mode (which ignores payload indexes); Edge and servers index payloads."""
    return not (settings.qdrant.url or settings.qdrant.conn_id) and settings.qdrant.engine == "local"


_KEPT_OPEN: dict[str, object] = {}  # see keep_open


def _where(settings: Settings) -> str:
    return settings.qdrant.conn_id or settings.qdrant.url or str(settings.qdrant.path)


@contextmanager
def keep_open(settings: Settings) -> Iterator:
    """Within this block ``open_index`` hands out one client instead of opening a new one each
    time: a process that writes many batches (``run_sync``) opens embedded Qdrant, which loads
    every point into memory, once instead of once per batch."""
    with open_index(settings) as client:
        _KEPT_OPEN[_where(settings)] = client
        try:
            yield client
        finally:
            _KEPT_OPEN.pop(_where(settings), None)


@contextmanager
def open_index(settings: Settings, wait_s: float = 600) -> Iterator:
    """A connected client, closed on exit; waits while another process holds local mode."""
    kept = _KEPT_OPEN.get(_where(settings))
    if kept is not None:
        yield kept
        return
    deadline = time.monotonic() + wait_s
    while True:
        try:
            client = _connect(settings)
            break
        except RuntimeError as exc:
            if "already accessed" not in str(exc) or time.monotonic() > deadline:
                raise IndexUnavailable(
                    f"cannot open Qdrant at {settings.qdrant.path}: {exc}. Another docsync process holds the "
                    "embedded index; wait for it or use a Qdrant server (DOCSYNC_QDRANT_URL)."
                ) from exc
            time.sleep(0.1)  # the next writer of a DAG run waits here (dagfactory.write_tasks_at_once)
    try:
        yield client
    finally:
        client.close()


def ensure_collection(client: QdrantClient, name: str, local: bool) -> None:
    """Make ``name`` usable. A new one is the alias ``name`` -> collection ``<name>_v1``:
    reads and writes go through the alias, so `docsync reindex` can swap it atomically.
    An existing plain collection called ``name`` (older deployments) is used as it is."""
    if client.collection_exists(name):  # a collection or an alias
        return
    target = f"{name}_v1"
    if not client.collection_exists(target):
        create_collection(client, target, local)
    switch_alias(client, name, target)


def create_collection(client: QdrantClient, name: str, local: bool) -> None:
    """A concrete collection with the configured model's vector size, the sparse keyword vector
    (IDF applied by Qdrant) and, on a server, payload indexes."""
    from qdrant_client import models

    client.create_collection(
        name, vectors_config=models.VectorParams(size=dimension(), distance=models.Distance.COSINE),
        sparse_vectors_config={SPARSE_VECTOR: models.SparseVectorParams(modifier=models.Modifier.IDF)},
    )
    if not local:  # local mode ignores payload indexes
        for field in KEYWORD_FIELDS:
            client.create_payload_index(name, field, models.PayloadSchemaType.KEYWORD)


def alias_target(client: QdrantClient, alias: str) -> str | None:
    """The collection an alias points to, or None when ``alias`` is no alias."""
    for item in client.get_aliases().aliases:
        if item.alias_name == alias:
            return item.collection_name
    return None


def switch_alias(client: QdrantClient, alias: str, collection: str) -> None:
    """Point ``alias`` at ``collection`` in one atomic alias update."""
    from qdrant_client import models

    operations = []
    if alias_target(client, alias) is not None:
        operations.append(models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias)))
    operations.append(
        models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=collection, alias_name=alias))
    )
    client.update_collection_aliases(change_aliases_operations=operations)


def has_sparse(client: QdrantClient, collection: str) -> bool:
    """Whether ``collection`` (or the alias' target) has the sparse keyword vector: collections
    created before hybrid search have not (``docsync reindex`` rebuilds one with it)."""
    sparse = client.get_collection(alias_target(client, collection) or collection).config.params.sparse_vectors
    return bool(sparse and SPARSE_VECTOR in sparse)


def upsert(client: QdrantClient, collection: str, points: list[tuple[str, list[float], dict]]) -> None:
    """Write points (id, dense vector, payload); the sparse keyword vector, where the collection
    has one, is computed from the payload's (anonymised) text."""
    from qdrant_client import models

    from docsync.sparse import document_vector

    sparse = bool(points) and has_sparse(client, collection)

    def vector(dense: list[float], payload: dict) -> list[float] | dict:
        if not sparse:
            return dense
        terms = document_vector(payload.get("text") or "")
        return {"": dense, SPARSE_VECTOR: models.SparseVector(indices=list(terms.indices), values=list(terms.values))}

    for start in range(0, len(points), UPSERT_BATCH):
        part = points[start : start + UPSERT_BATCH]
        client.upsert(
            collection,
            points=[models.PointStruct(id=pid, vector=vector(vec, payload), payload=payload) for pid, vec, payload in part],
            wait=True,
        )


def set_payload(client: QdrantClient, collection: str, payload: dict, ids: list[str]) -> None:
    if ids:
        client.set_payload(collection, payload=payload, points=ids, wait=True)


def existing_ids(client: QdrantClient, collection: str, ids: Iterable[str]) -> set[str]:
    ids = list(ids)
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        records = client.retrieve(collection, ids=ids[start : start + 1000], with_payload=False, with_vectors=False)
        found.update(str(r.id) for r in records)
    return found


def delete_ids(client: QdrantClient, collection: str, ids: Iterable[str]) -> None:
    from qdrant_client import models

    ids = list(ids)
    for start in range(0, len(ids), 1000):
        client.delete(collection, points_selector=models.PointIdsList(points=ids[start : start + 1000]), wait=True)


def document_filter(doc_id: str, keep: list[str] | None = None) -> models.Filter:
    """Points of one document, except the ids in ``keep``."""
    from qdrant_client import models

    must_not = [models.HasIdCondition(has_id=keep)] if keep else []
    return models.Filter(
        must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))], must_not=must_not
    )


def delete_doc(client: QdrantClient, collection: str, doc_id: str, keep: list[str] | None = None) -> None:
    """Delete a document's points (all, or all but ``keep``)."""
    from qdrant_client import models

    client.delete(collection, points_selector=models.FilterSelector(filter=document_filter(doc_id, keep)), wait=True)


def delete_parts(client: QdrantClient, collection: str, parent_id: str) -> None:
    """Delete the points of every part (attachment, archive member) of a container."""
    from qdrant_client import models

    selector = models.Filter(must=[models.FieldCondition(key="parent_id", match=models.MatchValue(value=parent_id))])
    client.delete(collection, points_selector=models.FilterSelector(filter=selector), wait=True)


def set_parts_payload(client: QdrantClient, collection: str, parent_id: str, payload: dict) -> None:
    """Change payload fields on every point of a container's parts (its ACL changed)."""
    from qdrant_client import models

    selector = models.Filter(must=[models.FieldCondition(key="parent_id", match=models.MatchValue(value=parent_id))])
    client.set_payload(collection, payload=payload, points=selector, wait=True)


def set_document_payload(client: QdrantClient, collection: str, doc_id: str, payload: dict) -> None:
    """Change payload fields on every point of one document (moves, ACL-only changes)."""
    client.set_payload(collection, payload=payload, points=document_filter(doc_id), wait=True)


def access_payload(allowed: Iterable[str], denied: Iterable[str]) -> dict:
    """The payload fields that decide who may read a point."""
    return {ACCESS_FIELD: list(allowed), DENY_FIELD: list(denied)}


def point_payload(source: str, doc: DocResult, chunk: ChunkRecord, indexed_at: str) -> dict:
    """The payload of one chunk's point: what RAG applications read and filter on."""
    entry = doc.item.entry
    return {
        "doc_id": doc.doc_id,
        "source": source,
        "path": entry.path,
        "chunk_index": chunk.index,
        "page": chunk.pages[0] if chunk.pages else None,
        "pages": list(chunk.pages),
        "heading": chunk.heading,
        "text": chunk.text,
        "text_hash": chunk.text_hash,
        "content_hash": doc.content_hash,
        "mime": doc.meta.mime if doc.meta else "",
        "modified_at": datetime.fromtimestamp(entry.mtime_ns / 1e9, tz=UTC).isoformat(),
        "indexed_at": indexed_at,
        # What produced the point (docsync.fingerprint digests; `docsync status` names the current ones).
        "text_fp": doc.text_fp,
        "embed_fp": doc.embed_fp,
    } | ({"parent_id": doc.item.parent} if doc.item.parent else {}) | access_payload(doc.allowed, doc.denied)


def scroll_all(client: QdrantClient, collection: str, with_payload: bool | list[str] = True,
               scroll_filter: models.Filter | None = None) -> Iterator:
    """Every point (id and payload) of a collection, or every one ``scroll_filter`` matches."""
    if not client.collection_exists(collection):
        return
    offset = None
    while True:
        records, offset = client.scroll(
            collection, scroll_filter=scroll_filter, limit=1000, offset=offset, with_payload=with_payload,
            with_vectors=False,
        )
        yield from records
        if offset is None:
            break


def scroll_documents(client: QdrantClient, collection: str, doc_ids: Iterable[str],
                     with_payload: bool | list[str] = True) -> Iterator:
    """The points of ``doc_ids`` and of their parts (``parent_id``), by the payload indexes:
    what a targeted check reads instead of the whole collection."""
    from qdrant_client import models

    ids = sorted(set(doc_ids))
    for start in range(0, len(ids), 1000):
        part = ids[start : start + 1000]
        selector = models.Filter(should=[models.FieldCondition(key=key, match=models.MatchAny(any=part))
                                         for key in ("doc_id", "parent_id")])
        yield from scroll_all(client, collection, with_payload, selector)


def access_filter(principals: list[str]) -> models.Filter:
    """Only points readable by one of ``principals`` and denied to none of them. The principals
    are canonicalised exactly as the sources canonicalise the index side (docsync.principals);
    one that is not a principal raises InvalidPrincipal rather than being guessed at."""
    from qdrant_client import models

    from docsync.principals import EVERYONE, canonical_principals

    values = canonical_principals([*principals, EVERYONE])
    return models.Filter(
        must=[models.FieldCondition(key=ACCESS_FIELD, match=models.MatchAny(any=values))],
        must_not=[models.FieldCondition(key=DENY_FIELD, match=models.MatchAny(any=values))],
    )


def search(
    client: QdrantClient, collection: str, vector: list[float], principals: list[str] | None = None, limit: int = 5,
    mode: str = "dense", text: str = "", *, user: str | None = None,
) -> list:
    """Nearest chunks the principals may read (RAG apps must always pass a filter).

    With ``user`` instead of ``principals``, the principals are the user's effective ones from
    the directory snapshot (docsync.directory); a user who resolves to none (a disabled
    account) gets no results.

    ``mode="hybrid"`` (needs the query ``text``) fuses the dense candidates with the sparse
    keyword candidates by reciprocal rank fusion in Qdrant; the access filter is applied to
    both candidate lists and to the fused result. A collection without the sparse vector
    (created before hybrid search) is searched dense."""
    from qdrant_client import models

    if user is not None:
        if principals:
            raise ValueError("index.search: pass principals or user, not both")
        from docsync.directory import effective_principals

        principals = effective_principals(user)
        if not principals:
            return []  # access_filter always adds `everyone`: a user granted nothing must not get even that
    elif principals is None:
        raise ValueError("index.search: pass the searcher's principals or user")
    if mode not in SEARCH_MODES:
        raise ValueError(f"search mode {mode!r}: use one of {', '.join(SEARCH_MODES)}")
    access = access_filter(principals)
    if mode == "dense" or not text.strip() or not has_sparse(client, collection):
        return client.query_points(collection, query=vector, query_filter=access, limit=limit, with_payload=True).points
    from docsync.sparse import query_vector

    terms = query_vector(text)
    sparse = models.SparseVector(indices=list(terms.indices), values=list(terms.values))
    depth = max(HYBRID_PREFETCH, limit)
    response = client.query_points(
        collection,
        prefetch=[models.Prefetch(query=vector, filter=access, limit=depth),
                  models.Prefetch(query=sparse, using=SPARSE_VECTOR, filter=access, limit=depth)],
        query=models.FusionQuery(fusion=models.Fusion.RRF), query_filter=access, limit=limit, with_payload=True,
    )
    return response.points
