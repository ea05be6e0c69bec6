"""Walks of a source (scans) and the seen-marks they leave, so a plan can stream the listing:
it compares the listing with the state store a chunk at a time (never the whole share in
memory) and finds deletions afterwards as the documents a *completed* scan did not see.

A scan that does not complete (a crash, a sliced initial load) stays open; the next plan
resumes it under the same id (seen-marks kept), so an interrupted walk never deletes anything.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.state.schema import documents, metadata, path_hash, pending, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
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


def latest_scan(conn: sa.Connection, source: str) -> int:
    """The source's newest scan id (0: never walked): what a document row written now counts
    as seen by (it was planned by that scan, or by an earlier, completed one)."""
    return conn.execute(sa.select(sa.func.max(scans.c.scan_id)).where(scans.c.source == source)).scalar() or 0


def completed_scans(engine: Engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(scans).where(
            scans.c.source == source, scans.c.completed_at.is_not(None))).scalar() or 0


def scan_history(engine: Engine, source: str) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(scans).where(scans.c.source == source)
                                              .order_by(scans.c.scan_id)).mappings()]


def documents_at(engine: Engine, source: str, paths: Iterable[str], scan_id: int) -> dict[str, dict]:
    """The listed documents (not parts) at these paths, keyed by path; they are marked seen by
    ``scan_id`` in the same transaction."""
    keys = {path_hash(p): p for p in paths}
    out: dict[str, dict] = {}
    hashes = list(keys)
    with engine.begin() as conn:
        for start in range(0, len(hashes), _IN):
            part = hashes[start:start + _IN]
            where = (documents.c.source == source, documents.c.path_hash.in_(part), documents.c.parent_id == "")
            rows = conn.execute(sa.select(documents).where(*where)).mappings()
            out |= {r["path"]: dict(r) for r in rows}
            conn.execute(sa.update(documents).where(*where).values(seen_scan=scan_id))
    return out


def count_documents(engine: Engine, source: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(documents).where(
            documents.c.source == source, documents.c.parent_id == "")).scalar() or 0


def _unseen(source: str, scan_id: int) -> tuple:
    return (documents.c.source == source, documents.c.parent_id == "",
            sa.func.coalesce(documents.c.seen_scan, 0) != scan_id)


def count_unseen(engine: Engine, source: str, scan_id: int) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(documents).where(*_unseen(source, scan_id))).scalar() or 0


def unseen_documents(engine: Engine, source: str, scan_id: int, batch: int = 1000) -> Iterator[list[dict]]:
    """The listed documents ``scan_id`` did not see, in pages (doc id order): after a completed
    walk, the deleted ones."""
    after = ""
    while True:
        with engine.connect() as conn:
            rows = [dict(r) for r in conn.execute(
                sa.select(documents).where(*_unseen(source, scan_id), documents.c.doc_id > after).order_by(documents.c.doc_id).limit(batch)).mappings()]
        if not rows:
            return
        yield rows
        after = rows[-1]["doc_id"]


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
