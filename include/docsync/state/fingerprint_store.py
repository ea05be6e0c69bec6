"""Processing fingerprints in the state store: the ones used (by digest), each collection's
embedding fingerprint, and which documents are on stale processing (see docsync.fingerprint)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.state.schema import collections, documents, dumps, fingerprints, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Engine


def record_fingerprints(engine: Engine, used: dict[str, tuple[str, dict]]) -> None:
    """Remember fingerprints by digest (``{fp_id: (kind, fingerprint)}``); known ones are kept."""
    with engine.begin() as conn:
        known = {r.fp_id for r in conn.execute(sa.select(fingerprints.c.fp_id).where(fingerprints.c.fp_id.in_(list(used))))}
        rows = [{"fp_id": fp_id, "kind": kind, "fingerprint": dumps(fp), "first_seen": utcnow()}
                for fp_id, (kind, fp) in used.items() if fp_id not in known]
        if rows:
            conn.execute(sa.insert(fingerprints), rows)


def fingerprints_of(engine: Engine, fp_ids: Iterable[str]) -> dict[str, dict]:
    """The fingerprints behind these digests (those recorded)."""
    ids = [i for i in set(fp_ids) if i]
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(sa.select(fingerprints.c.fp_id, fingerprints.c.fingerprint).where(fingerprints.c.fp_id.in_(ids)))
        return {r.fp_id: json.loads(r.fingerprint) for r in rows}


def collection_fingerprint(engine: Engine, collection: str) -> str | None:
    """The embedding fingerprint recorded for a collection (None: none recorded yet)."""
    with engine.connect() as conn:
        return conn.execute(sa.select(collections.c.embed_fp).where(collections.c.collection == collection)).scalar()


def set_collection_fingerprint(engine: Engine, collection: str, fp_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(collections).where(collections.c.collection == collection))
        conn.execute(sa.insert(collections).values(collection=collection, embed_fp=fp_id, recorded_at=utcnow()))


def forget_collection(engine: Engine, collection: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(collections).where(collections.c.collection == collection))


def stale_counts(engine: Engine, source: str, text_fp: str, embed_fp: str) -> dict[str, int]:
    """Indexed documents of a source on another text fingerprint, another embedding fingerprint,
    and either ("stale"), than these."""
    indexed = sa.and_(documents.c.source == source, documents.c.status == "indexed")
    text, embed = documents.c.text_fp != text_fp, documents.c.embed_fp != embed_fp
    with engine.connect() as conn:
        counts = {key: conn.execute(sa.select(sa.func.count()).where(indexed, condition)).scalar()
                  for key, condition in (("stale_text", text), ("stale_embedding", embed),
                                         ("stale", sa.or_(text, embed)))}
    return {key: int(value or 0) for key, value in counts.items()}
