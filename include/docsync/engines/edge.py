"""The embedded engine: Qdrant's own storage engine in-process (``qdrant-edge-py``).

qdrant-client's local mode keeps every point in Python memory and scans linearly; an Edge shard
has on-disk segments, a write-ahead log, payload indexes and HNSW. :class:`EdgeClient` offers
the part of ``QdrantClient``'s interface that ``docsync.index`` and ``docsync.reindex`` use, on
qdrant-client's own model objects, so the rest of docsync does not know which engine it talks to.

Layout under the embedded index directory (``DOCSYNC_QDRANT_PATH``)::

    edge/.lock                one process at a time (flock): readers wait like writers
    edge/aliases.json         {"docsync_fileshare": "docsync_fileshare_v1"}, replaced atomically
    edge/collections/<name>/  one Edge shard per collection

A collection's keyword payload indexes are created with it (``index.create_collection``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable

    from qdrant_client import models

ALIASES = "aliases.json"
COLLECTIONS = "collections"
# Edge runs no optimiser in the background, and docsync does not optimise in its tasks: building
# HNSW for 100k points took minutes of CPU in niced threads, holding the index lock meanwhile
# (README "The embedded engine"). Every docsync search is ACL-filtered through the payload
# indexes, which the plain segments serve (measured in bench/engine.py). ``None``: never on close;
# a number: optimise on close once that many points are not in an HNSW index.
OPTIMIZE_AFTER: int | None = None


@dataclass
class Record:
    """A point as docsync reads it back (qdrant-client's Record/ScoredPoint shape)."""

    id: str
    payload: dict | None = None
    vector: Any = None
    score: float | None = None
    version: int = 0


@dataclass
class _Open:
    shard: Any
    written: int = 0
    vector_size: int = 0
    distance: str = ""
    fields: dict = field(default_factory=dict)


def _edge():
    import qdrant_edge

    return qdrant_edge


def _unindexed(shard: Any) -> int:
    info = shard.info()
    return info.points_count - info.indexed_vectors_count


def _pid(value: object) -> str:
    return str(value)


def _point_id(value: object) -> object:
    """Ids as the engine stores them: UUIDs (docsync's) or unsigned integers."""
    if isinstance(value, int):
        return value
    return uuid.UUID(str(value))


class EdgeClient:
    """Qdrant Edge shards behind the subset of ``QdrantClient`` docsync uses."""

    def __init__(self, root: str | Path, import_from: str | Path | None = None) -> None:
        """``import_from``: a qdrant-client local-mode directory whose collections and aliases are
        copied in when this engine's directory is new (the upgrade from local mode)."""
        self.root = Path(root)
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self._lock)
            # "already accessed": the wording index.open_index waits on, as for local mode.
            raise RuntimeError(f"Storage folder {self.root} is already accessed by another docsync process") from exc
        self._open: dict[str, _Open] = {}
        fresh = not (self.root / COLLECTIONS).exists()
        if fresh and import_from is not None and (Path(import_from) / "meta.json").exists():
            self._import_local(Path(import_from))  # under the lock: one process imports
        (self.root / COLLECTIONS).mkdir(mode=0o700, exist_ok=True)

    def _import_local(self, path: Path) -> None:
        """Copy every collection (points with vectors and payloads) and alias of qdrant-client's
        local mode at ``path``, which stays as it was; done once, into a staging directory."""
        from qdrant_client import QdrantClient

        from docsync.index import KEYWORD_FIELDS  # here: docsync.index opens this engine

        local = QdrantClient(path=str(path))
        final, self.root = self.root, self.root / ".importing"
        try:
            shutil.rmtree(self.root, ignore_errors=True)  # an import cut short starts again
            (self.root / COLLECTIONS).mkdir(parents=True)
            for item in local.get_collections().collections:
                info = local.get_collection(item.name)
                self.create_collection(item.name, info.config.params.vectors,
                                       sparse_vectors_config=info.config.params.sparse_vectors or None)
                for field_name in sorted(set(KEYWORD_FIELDS) | set(info.payload_schema or {})):
                    self.create_payload_index(item.name, field_name, "keyword")
                offset = None
                while True:
                    records, offset = local.scroll(item.name, limit=512, offset=offset, with_payload=True, with_vectors=True)
                    if records:
                        self.upsert(item.name, [SimpleNamespace(id=r.id, vector=r.vector, payload=r.payload) for r in records])
                    if offset is None:
                        break
            self._write_aliases({a.alias_name: a.collection_name for a in local.get_aliases().aliases})
            for state in self._open.values():
                state.shard.flush()
                state.shard.close()
            self._open.clear()
        finally:
            local.close()
            imported, self.root = self.root, final
        os.replace(imported / ALIASES, final / ALIASES)
        os.replace(imported / COLLECTIONS, final / COLLECTIONS)  # last: its presence means "imported"
        shutil.rmtree(imported, ignore_errors=True)

    # --- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Flush every shard (optimising those with many new points, see OPTIMIZE_AFTER) and release the lock."""
        if self._lock < 0:
            return
        try:
            for state in self._open.values():
                if OPTIMIZE_AFTER is not None and state.written and _unindexed(state.shard) >= OPTIMIZE_AFTER:
                    state.shard.optimize()
                state.shard.flush()
                state.shard.close()
            self._open.clear()
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)
            os.close(self._lock)
            self._lock = -1

    def _dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"invalid collection name {name!r}")
        return self.root / COLLECTIONS / name

    def _shard(self, name: str) -> _Open:
        target = self._aliases().get(name, name)
        state = self._open.get(target)
        if state is None:
            if not (self._dir(target) / "edge_config.json").exists():
                raise ValueError(f"Collection {name} not found")
            state = self._open[target] = _Open(_edge().EdgeShard.load(str(self._dir(target))))
        return state

    # --- collections and aliases --------------------------------------------------------

    def _aliases(self) -> dict[str, str]:
        path = self.root / ALIASES
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_aliases(self, aliases: dict[str, str]) -> None:
        tmp = self.root / f".{ALIASES}.tmp"
        tmp.write_text(json.dumps(aliases, sort_keys=True))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, self.root / ALIASES)  # atomic: readers see the old or the new mapping

    def _collections(self) -> list[str]:
        return sorted(p.name for p in (self.root / COLLECTIONS).iterdir() if (p / "edge_config.json").exists())

    def collection_exists(self, name: str) -> bool:
        return name in self._aliases() or name in self._collections()

    def get_collections(self) -> SimpleNamespace:
        return SimpleNamespace(collections=[SimpleNamespace(name=n) for n in self._collections()])

    def get_aliases(self) -> SimpleNamespace:
        return SimpleNamespace(aliases=[SimpleNamespace(alias_name=a, collection_name=c) for a, c in self._aliases().items()])

    def create_collection(self, name: str, vectors_config: models.VectorParams,
                          sparse_vectors_config: dict | None = None, **unsupported: Any) -> None:
        if unsupported:
            raise NotImplementedError(f"the edge engine does not support {sorted(unsupported)} yet")
        edge = _edge()
        if self.collection_exists(name):
            raise ValueError(f"Collection {name} already exists")
        distance = {"cosine": edge.Distance.Cosine, "dot": edge.Distance.Dot, "euclid": edge.Distance.Euclid}[
            str(getattr(vectors_config.distance, "value", vectors_config.distance)).lower()
        ]
        sparse = {
            vector: edge.EdgeSparseVectorParams(
                modifier=edge.Modifier.Idf if str(getattr(params.modifier, "value", params.modifier)).lower() == "idf"
                else None)
            for vector, params in (sparse_vectors_config or {}).items()
        }
        config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=vectors_config.size, distance=distance),
                                 sparse_vectors=sparse or None)
        self._open[name] = _Open(edge.EdgeShard.create(str(self._dir(name)), config))

    def get_collection(self, name: str) -> SimpleNamespace:
        state = self._shard(name)
        info = state.shard.info()
        config = json.loads((self._dir(self._aliases().get(name, name)) / "edge_config.json").read_text())
        params = config.get("vectors", {}).get("", {})
        sparse = {name: SimpleNamespace(modifier=p.get("modifier")) for name, p in (config.get("sparse_vectors") or {}).items()}
        return SimpleNamespace(
            points_count=info.points_count,
            payload_schema={k: str(v.data_type) for k, v in info.payload_schema.items()},
            config=SimpleNamespace(params=SimpleNamespace(vectors=SimpleNamespace(
                size=params.get("size"), distance=str(params.get("distance", ""))), sparse_vectors=sparse or None)),
        )

    def delete_collection(self, name: str) -> None:
        aliases = self._aliases()
        if name in aliases:  # as the server does: deleting an alias name deletes nothing else
            return
        state = self._open.pop(name, None)
        if state is not None:
            state.shard.close()
        shutil.rmtree(self._dir(name), ignore_errors=True)

    def update_collection_aliases(self, change_aliases_operations: list) -> None:
        aliases = self._aliases()
        for op in change_aliases_operations:
            if getattr(op, "delete_alias", None) is not None:
                aliases.pop(op.delete_alias.alias_name, None)
            elif getattr(op, "create_alias", None) is not None:
                aliases[op.create_alias.alias_name] = op.create_alias.collection_name
            else:
                raise NotImplementedError(f"alias operation {op!r}")
        self._write_aliases(aliases)

    def create_payload_index(self, collection_name: str, field_name: str, field_schema: Any = None, **_: Any) -> None:
        edge = _edge()
        kind = str(getattr(field_schema, "value", field_schema) or "keyword").lower()
        schema = {"keyword": edge.PayloadSchemaType.Keyword, "integer": edge.PayloadSchemaType.Integer,
                  "uuid": edge.PayloadSchemaType.Uuid}[kind]
        self._shard(collection_name).shard.update(edge.UpdateOperation.create_field_index(field_name, schema))

    # --- points ---------------------------------------------------------------------------

    def upsert(self, collection_name: str, points: list, wait: bool = True) -> None:
        edge = _edge()
        state = self._shard(collection_name)
        state.shard.update(edge.UpdateOperation.upsert_points(
            [edge.Point(_point_id(p.id), _to_edge_vector(p.vector), p.payload or {}) for p in points]
        ))
        state.written += len(points)

    def set_payload(self, collection_name: str, payload: dict, points: Any, wait: bool = True) -> None:
        edge = _edge()
        shard = self._shard(collection_name).shard
        if isinstance(points, list):
            shard.update(edge.UpdateOperation.set_payload([_point_id(p) for p in points], payload))
        else:
            shard.update(edge.UpdateOperation.set_payload_by_filter(to_edge_filter(points), payload))

    def delete(self, collection_name: str, points_selector: Any, wait: bool = True) -> None:
        edge = _edge()
        shard = self._shard(collection_name).shard
        if hasattr(points_selector, "points"):  # PointIdsList
            ids = [_point_id(p) for p in points_selector.points]
            if ids:
                shard.update(edge.UpdateOperation.delete_points(ids))
        else:  # FilterSelector
            shard.update(edge.UpdateOperation.delete_points_by_filter(to_edge_filter(points_selector.filter)))

    def retrieve(self, collection_name: str, ids: Iterable, with_payload: Any = True, with_vectors: bool = False) -> list:
        records = self._shard(collection_name).shard.retrieve(
            [_point_id(i) for i in ids], with_payload=with_payload, with_vector=with_vectors
        )
        return [Record(_pid(r.id), r.payload, _from_edge_vector(r.vector)) for r in records]

    def scroll(self, collection_name: str, limit: int = 10, offset: Any = None, with_payload: Any = True,
               with_vectors: bool = False, scroll_filter: Any = None) -> tuple[list, Any]:
        edge = _edge()
        records, next_offset = self._shard(collection_name).shard.scroll(edge.ScrollRequest(
            offset=None if offset is None else _point_id(offset), limit=limit, with_payload=with_payload,
            with_vector=with_vectors, filter=to_edge_filter(scroll_filter) if scroll_filter is not None else None,
        ))
        return [Record(_pid(r.id), r.payload, _from_edge_vector(r.vector)) for r in records], next_offset

    def count(self, collection_name: str, count_filter: Any = None, exact: bool = True) -> SimpleNamespace:
        edge = _edge()
        request = edge.CountRequest(exact=exact, filter=to_edge_filter(count_filter) if count_filter else None)
        return SimpleNamespace(count=self._shard(collection_name).shard.count(request))

    def query_points(self, collection_name: str, query: Any = None, query_filter: Any = None, limit: int = 10,
                     with_payload: Any = True, prefetch: list | None = None, using: str | None = None,
                     **unsupported: Any) -> SimpleNamespace:
        """Nearest points to a dense or sparse (``using``) vector, or a fusion (RRF, as
        qdrant-client's local mode ranks it) of ``prefetch`` searches."""
        if unsupported:
            raise NotImplementedError(f"the edge engine does not support {sorted(unsupported)} yet")
        edge = _edge()
        hits = self._shard(collection_name).shard.query(edge.QueryRequest(
            limit=limit, query=_to_edge_query(query, using), with_payload=with_payload,
            prefetches=[edge.Prefetch(limit=p.limit, query=_to_edge_query(p.query, p.using),
                                      filter=to_edge_filter(p.filter) if p.filter is not None else None)
                        for p in prefetch] if prefetch else None,
            filter=to_edge_filter(query_filter) if query_filter is not None else None,
        ))
        return SimpleNamespace(points=[Record(_pid(h.id), h.payload, _from_edge_vector(h.vector), h.score, h.version)
                                       for h in hits])

    # --- snapshots ------------------------------------------------------------------------

    def snapshot(self, collection_name: str, target: str | Path) -> Path:
        """A consistent copy of a collection as a tar archive: flushed, and taken while this
        client holds the lock, so no other process writes meanwhile."""
        name = self._aliases().get(collection_name, collection_name)
        self._shard(name).shard.flush()
        target = Path(target)
        tmp = target.with_name(f".{target.name}.tmp")
        with tarfile.open(tmp, "w") as archive:
            for part in sorted(self._dir(name).iterdir()):
                archive.add(part, arcname=part.name)
        os.replace(tmp, target)
        return target

    def restore_snapshot(self, collection_name: str, archive: str | Path) -> None:
        """A new collection from a :meth:`snapshot` archive (or a Qdrant server's shard snapshot)."""
        if self.collection_exists(collection_name):
            raise ValueError(f"Collection {collection_name} already exists; restore under a new name and switch the alias")
        tmp = self.root / COLLECTIONS / f".{collection_name}.restoring"
        shutil.rmtree(tmp, ignore_errors=True)
        _edge().EdgeShard.unpack_snapshot(str(archive), str(tmp))
        os.replace(tmp, self._dir(collection_name))

    def optimize(self, collection_name: str) -> bool:
        """Merge segments, drop deleted points and build the HNSW index now (maintenance: it holds the
        index, and the lock, for as long as it takes)."""
        state = self._shard(collection_name)
        state.written = 0
        return state.shard.optimize()


RRF_K = 2  # qdrant-client's local mode and the server rank fusion with this constant


def _to_edge_vector(vector: Any) -> Any:
    """qdrant-client's vector (a list, or named vectors with sparse ones) as Edge takes it."""
    if isinstance(vector, dict):
        edge = _edge()
        return {name: edge.SparseVector(list(v.indices), list(v.values)) if hasattr(v, "indices") else list(v)
                for name, v in vector.items()}
    return list(vector)


def _from_edge_vector(vector: Any) -> Any:
    if isinstance(vector, dict):
        from qdrant_client import models

        return {name: models.SparseVector(indices=list(v.indices), values=list(v.values)) if hasattr(v, "indices")
                else v for name, v in vector.items()}
    return vector


def _to_edge_query(query: Any, using: str | None) -> Any:
    from qdrant_client import models

    edge = _edge()
    if query is None:
        return None
    if isinstance(query, models.FusionQuery):
        return edge.Fusion.Rrf(k=RRF_K)
    if hasattr(query, "indices"):
        return edge.Query.Nearest(edge.SparseVector(list(query.indices), list(query.values)), using)
    return edge.Query.Nearest(list(query), using)


def to_edge_filter(flt: Any) -> Any:
    """qdrant-client's Filter (and the conditions docsync uses) as an Edge filter."""
    edge = _edge()

    def conditions(items: list | None) -> list | None:
        return None if items is None else [condition(c) for c in (items if isinstance(items, list) else [items])]

    def condition(c: Any) -> Any:
        kind = type(c).__name__
        if kind == "Filter":
            return to_edge_filter(c)
        if kind == "HasIdCondition":
            return edge.HasIdCondition({_point_id(i) for i in c.has_id})
        if kind == "FieldCondition" and c.match is not None:
            match = type(c.match).__name__
            if match == "MatchValue":
                return edge.FieldCondition(key=c.key, match=edge.MatchValue(c.match.value))
            if match == "MatchAny":
                return edge.FieldCondition(key=c.key, match=edge.MatchAny(list(c.match.any)))
            if match == "MatchExcept":
                return edge.FieldCondition(key=c.key, match=edge.MatchExcept(list(c.match.except_)))
        if kind == "IsEmptyCondition":
            return edge.IsEmptyCondition(c.is_empty.key)
        raise NotImplementedError(f"the edge engine does not translate the condition {c!r} yet")

    return edge.Filter(must=conditions(flt.must), should=conditions(flt.should), must_not=conditions(flt.must_not))
