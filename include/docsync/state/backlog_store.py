"""The backlog (changes seen but not yet applied to the index) and the run history the lag
and backlog metrics need: previous scan start, cumulative histogram counts, unfinished runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.state.schema import as_utc, metric_points, pending, quarantine, runs

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from sqlalchemy.engine import Engine

CONTENT = "content"  # a document to process in full (new, modified, re-processed)
REVOCATION = "revocation"  # a deletion or an ACL-only change


def replace_pending(engine: Engine, source: str, changes: dict[str, str], at: datetime) -> None:
    """The plan's view of the backlog: ``changes`` (doc id -> kind) is everything it found to
    do. Rows for changes already pending keep their first detection time; pending rows the
    plan no longer finds (the change went away, e.g. a new file deleted again) are dropped."""
    with engine.begin() as conn:
        known = {r.doc_id: r.kind for r in conn.execute(
            sa.select(pending.c.doc_id, pending.c.kind).where(pending.c.source == source))}
        gone = [d for d in known if d not in changes]
        for start in range(0, len(gone), 500):
            conn.execute(sa.delete(pending).where(pending.c.source == source, pending.c.doc_id.in_(gone[start:start + 500])))
        for doc_id, kind in changes.items():
            if doc_id in known and known[doc_id] != kind:
                conn.execute(sa.update(pending).where(pending.c.source == source, pending.c.doc_id == doc_id)
                             .values(kind=kind))
        new = [{"source": source, "doc_id": d, "kind": k, "detected_at": at} for d, k in changes.items() if d not in known]
        for start in range(0, len(new), 1000):
            conn.execute(sa.insert(pending), new[start:start + 1000])


def clear_pending(conn: sa.Connection, source: str, doc_ids: Iterable[str]) -> None:
    """These documents' changes are applied (indexed, quarantined, deleted, updated)."""
    ids = list(doc_ids)
    for start in range(0, len(ids), 500):
        conn.execute(sa.delete(pending).where(pending.c.source == source, pending.c.doc_id.in_(ids[start:start + 500])))


def pending_since(engine: Engine, source: str, doc_ids: Iterable[str]) -> dict[str, datetime]:
    """doc id -> when its pending change was first detected (those that are pending)."""
    ids = list(doc_ids)
    out: dict[str, datetime] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), 500):
            rows = conn.execute(sa.select(pending.c.doc_id, pending.c.detected_at).where(
                pending.c.source == source, pending.c.doc_id.in_(ids[start:start + 500])))
            out |= {r.doc_id: as_utc(r.detected_at) for r in rows}
    return out


def backlog(engine: Engine, source: str) -> dict[str, tuple[int, datetime | None]]:
    """kind (content, revocation) -> (pending changes, first detection of the oldest)."""
    out: dict[str, tuple[int, datetime | None]] = {CONTENT: (0, None), REVOCATION: (0, None)}
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(pending.c.kind, sa.func.count(), sa.func.min(pending.c.detected_at))
            .where(pending.c.source == source).group_by(pending.c.kind)
        ).all()
    out |= {kind: (count, as_utc(oldest)) for kind, count, oldest in rows}
    return out


def oldest_open_quarantine(engine: Engine, source: str) -> datetime | None:
    """When the oldest open quarantine entry of a source was first seen."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.min(quarantine.c.first_seen)).where(quarantine.c.source == source, quarantine.c.status == "open")
        ).scalar()
    return as_utc(value)


def previous_scan_start(engine: Engine, source: str, run_id: str) -> datetime | None:
    """``started_at`` of the newest successful run of a source other than ``run_id``: when
    docsync last looked at the source and got through with it."""
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.max(runs.c.started_at))
            .where(runs.c.source == source, runs.c.status == "success", runs.c.run_id != run_id)
        ).scalar()
    return as_utc(value)


def metric_sums(engine: Engine, source: str, prefixes: Iterable[str]) -> dict[str, float]:
    """name -> sum over every successful run of a source of the metric points whose names
    start with one of ``prefixes`` (per-run histogram counts -> cumulative counters)."""
    conditions = [metric_points.c.name.startswith(p, autoescape=True) for p in prefixes]
    if not conditions:
        return {}
    query = (
        sa.select(metric_points.c.name, sa.func.sum(metric_points.c.value))
        .join(runs, runs.c.run_id == metric_points.c.run_id)
        .where(metric_points.c.source == source, runs.c.status == "success", sa.or_(*conditions))
        .group_by(metric_points.c.name)
    )
    with engine.connect() as conn:
        return {name: float(total) for name, total in conn.execute(query)}


def unfinished_run_count(engine: Engine, source: str, started_before: datetime) -> int:
    """Runs of a source that did not succeed, started after its newest successful run and
    before ``started_before`` (a run started later may still be going)."""
    with engine.connect() as conn:
        last = conn.execute(
            sa.select(sa.func.max(runs.c.started_at)).where(runs.c.source == source, runs.c.status == "success")
        ).scalar()
        query = sa.select(runs.c.started_at).where(runs.c.source == source, runs.c.status != "success")
        if last is not None:
            query = query.where(runs.c.started_at > last)
        started = [as_utc(r.started_at) for r in conn.execute(query)]
    return sum(1 for s in started if s < started_before)
