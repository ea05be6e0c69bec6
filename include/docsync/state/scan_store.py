"""Walks of a source (scans) and the queries a streamed plan needs: it compares the listing
with the state store a chunk at a time (never the whole share in memory) and finds deletions
after a *completed* walk as the documents it did not list (docsync.walk).

A scan that does not complete (a crash, a lost share, a sliced initial load) stays open and
deletes nothing; the next plan resumes it (same id, one more attempt) and walks again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.state.schema import documents, metadata, pending, utcnow

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from datetime import datetime

    from sqlalchemy.engine import Engine

scans = sa.Table(
    "docsync_scans",
    metadata,
    sa.Column("source", sa.String(128), primary_key=True),
    sa.Column("scan_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("completed_at", sa.DateTime(timezone=True)),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("run_id", sa.String(128), nullable=False, default=""),  # the run that last walked it
)

_IN = 500  # ids per IN (...) clause


def open_scan(engine: Engine, source: str, run_id: str) -> tuple[int, bool]:
    """The scan this plan walks: the source's unfinished one (resumed: True) or a new one."""
    with engine.begin() as conn:
        row = conn.execute(sa.select(scans.c.scan_id, scans.c.completed_at, scans.c.attempts)
                           .where(scans.c.source == source).order_by(scans.c.scan_id.desc()).limit(1)).first()
        if row is not None and row.completed_at is None:
            conn.execute(sa.update(scans).where(scans.c.source == source, scans.c.scan_id == row.scan_id)
                         .values(attempts=row.attempts + 1, run_id=run_id))
            return row.scan_id, True
        scan_id = (row.scan_id if row is not None else 0) + 1
        conn.execute(sa.insert(scans).values(source=source, scan_id=scan_id, started_at=utcnow(), attempts=1,
                                             run_id=run_id))
        return scan_id, False


def complete_scan(engine: Engine, source: str, scan_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(scans).where(scans.c.source == source, scans.c.scan_id == scan_id)
                     .values(completed_at=utcnow()))


def completed_scans(engine: Engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(scans).where(
            scans.c.source == source, scans.c.completed_at.is_not(None))).scalar() or 0


def scan_history(engine: Engine, source: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(scans).where(scans.c.source == source)
                                              .order_by(scans.c.scan_id)).mappings()]


def documents_at(engine: Engine, source: str, hashes: list[str]) -> dict[str, dict]:
    """The listed documents (not parts) at these paths (given by :func:`path_hash`), keyed by
    path (a read, no write)."""
    out: dict[str, dict] = {}
    with engine.connect() as conn:
        for start in range(0, len(hashes), _IN):
            # No `parent_id == ""` in SQL: SQLite then picks the parent_id index (every listed
            # document matches) and reads the whole table per chunk instead of the unique index.
            rows = conn.execute(sa.select(documents).where(
                documents.c.source == source, documents.c.path_hash.in_(hashes[start:start + _IN]))).mappings()
            out |= {r["path"]: dict(r) for r in rows if not r["parent_id"]}
    return out


def count_documents(engine: Engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(documents).where(
            documents.c.source == source, documents.c.parent_id == "")).scalar() or 0


def unseen_doc_ids(engine: Engine, source: str, found: Callable[[list[str]], set[str]], limit: int,
                   page: int = 1000) -> list[str] | None:
    """The listed documents of a source whose path hash ``found`` does not report (after a
    completed walk: the deleted ones), read in pages of ids and hashes; None as soon as there
    are more than ``limit`` (the mass-deletion guard then needs no more)."""
    after, out = "", []
    while True:
        with engine.connect() as conn:
            # Only the primary key in SQL: with `source` or `parent_id` there SQLite picks their
            # index and sorts every row of the source for each page.
            rows = conn.execute(sa.select(documents.c.doc_id, documents.c.path_hash, documents.c.parent_id,
                                          documents.c.source).where(documents.c.doc_id > after)
                                .order_by(documents.c.doc_id).limit(page)).all()
        if not rows:
            return out
        mine = [r for r in rows if r.source == source and not r.parent_id]
        seen = found([r.path_hash for r in mine])
        out += [r.doc_id for r in mine if r.path_hash not in seen]
        if len(out) > limit:
            return None
        after = rows[-1].doc_id


def documents_by_id(engine: Engine, doc_ids: list[str]) -> list[dict]:
    out: list[dict] = []
    with engine.connect() as conn:
        for start in range(0, len(doc_ids), _IN):
            out += [dict(r) for r in conn.execute(sa.select(documents).where(
                documents.c.doc_id.in_(doc_ids[start:start + _IN]))).mappings()]
    return out


def existing_doc_ids(engine: Engine, doc_ids: Iterable[str]) -> set[str]:
    ids = list(doc_ids)
    out: set[str] = set()
    with engine.connect() as conn:
        for start in range(0, len(ids), _IN):
            out |= set(conn.execute(sa.select(documents.c.doc_id).where(
                documents.c.doc_id.in_(ids[start:start + _IN]))).scalars())
    return out


def note_pending(engine: Engine, source: str, changes: dict[str, str], at: datetime, scan_id: int) -> None:
    """Part of the backlog, as a streamed plan finds it: rows already pending keep their first
    detection time; all are marked found by ``scan_id`` (see :func:`drop_unfound_pending`)."""
    if not changes:
        return
    ids = list(changes)
    with engine.begin() as conn:
        known: dict[str, str] = {}
        for start in range(0, len(ids), _IN):
            known |= {r.doc_id: r.kind for r in conn.execute(sa.select(pending.c.doc_id, pending.c.kind).where(
                pending.c.source == source, pending.c.doc_id.in_(ids[start:start + _IN])))}
        for kind in set(changes.values()):
            same = [d for d in known if changes[d] == kind]
            for start in range(0, len(same), _IN):
                conn.execute(sa.update(pending).where(pending.c.source == source,
                                                      pending.c.doc_id.in_(same[start:start + _IN]))
                             .values(kind=kind, scan=scan_id))
        new = [{"source": source, "doc_id": d, "kind": k, "detected_at": at, "scan": scan_id}
               for d, k in changes.items() if d not in known]
        for start in range(0, len(new), 1000):
            conn.execute(sa.insert(pending), new[start:start + 1000])


def drop_unfound_pending(engine: Engine, source: str, scan_id: int) -> None:
    """After a completed walk: pending changes it no longer found went away (e.g. a new file
    deleted again before it was processed)."""
    with engine.begin() as conn:
        conn.execute(sa.delete(pending).where(pending.c.source == source,
                                              sa.func.coalesce(pending.c.scan, 0) != scan_id))
