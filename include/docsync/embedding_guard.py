"""Vectors of two embedding models never share a collection.

Each collection (a source's alias, or a version `docsync reindex` builds) records the embedding
fingerprint of its vectors in the state store. A sync compares the configured model's with it
in the plan step (:func:`refusal`: the run then writes no points and fails with a message naming
`docsync reindex`) and again before writing (:func:`claim`), in case the model changed between
the two. A collection without a record (a new one, or one from before fingerprints) takes the
configured model's when its vector size matches.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from docsync import index, state
from docsync.config import embed_model_spec
from docsync.fingerprint import EmbeddingChanged, digest

if TYPE_CHECKING:
    from qdrant_client import QdrantClient
    from sqlalchemy.engine import Engine


def _describe(fingerprint: dict | None) -> str:
    if not fingerprint:
        return "an unrecorded model"
    backend = f", {fingerprint['backend']} backend" if fingerprint.get("backend") else ""
    return f"{fingerprint['model']} (revision {fingerprint['revision']}, {fingerprint['dimension']} dimensions{backend})"


def message(engine: Engine, collection: str, recorded: str, embedding: dict, source: str) -> str:
    """What a person reads when a sync refuses to write: what changed and what to do."""
    old = state.fingerprints_of(engine, [recorded]).get(recorded)
    return (
        f"source {source!r}: the embedding model changed: DOCSYNC_EMBED_MODEL={embed_model_spec()!r} is "
        f"{_describe(embedding)}, but collection {collection} holds vectors of {_describe(old)}. Vectors of two "
        "models never share a collection, so this sync wrote no points (deletions and ACL-only changes were "
        f"applied). Run `docsync reindex --source {source}` to build a collection version with the new model and "
        "switch the alias to it (searches keep using the old version meanwhile), or set DOCSYNC_EMBED_MODEL "
        "(and DOCSYNC_EMBED_BACKEND) back."
    )


def refusal(engine: Engine, collection: str, embedding: dict, source: str) -> str:
    """"" when ``collection`` may take vectors of the ``embedding`` fingerprint, else why not."""
    recorded = state.collection_fingerprint(engine, collection)
    if recorded is None or recorded == digest(embedding):
        return ""
    return message(engine, collection, recorded, embedding, source)


def claim(engine: Engine, client: QdrantClient, collection: str, embedding: dict, source: str) -> None:
    """Before writing vectors of ``embedding`` into ``collection`` (which exists): record it as
    the collection's, or raise :class:`EmbeddingChanged` when another model's vectors are there."""
    fp_id = digest(embedding)
    recorded = state.collection_fingerprint(engine, collection)
    if recorded == fp_id:
        return
    if recorded is not None:
        raise EmbeddingChanged(message(engine, collection, recorded, embedding, source))
    size = client.get_collection(index.alias_target(client, collection) or collection).config.params.vectors.size
    if size != embedding["dimension"]:
        raise EmbeddingChanged(
            f"source {source!r}: collection {collection} holds {size}-dimensional vectors but "
            f"DOCSYNC_EMBED_MODEL={embed_model_spec()!r} makes {embedding['dimension']}-dimensional ones; "
            f"nothing was written. Run `docsync reindex --source {source}` to rebuild it with this model."
        )
    state.record_fingerprints(engine, {fp_id: ("embedding", embedding)})
    state.set_collection_fingerprint(engine, collection, fp_id)
