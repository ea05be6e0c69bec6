"""Runs, their summaries and metric points, and per-source reconcile times."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.state.schema import (
    as_utc,
    dumps,
    metric_points,
    runs,
    sources,
    utcnow,
)

if TYPE_CHECKING:

    from datetime import datetime

    from sqlalchemy.engine import Engine


def start_run(engine: Engine, run_id: str, source: str) -> None:
    with engine.begin() as conn:
        existing = conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id == run_id)).first()
        if existing is None:
            conn.execute(
                sa.insert(runs).values(run_id=run_id, source=source, started_at=utcnow(), status="running", summary="{}")
            )


def finish_run(engine: Engine, run_id: str, status: str, summary: dict, metrics: dict[str, float]) -> None:
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(sa.select(runs.c.source).where(runs.c.run_id == run_id)).first()
        source = row.source if row else summary.get("source", "")
        conn.execute(
            sa.update(runs).where(runs.c.run_id == run_id).values(finished_at=now, status=status, summary=dumps(summary))
        )
        conn.execute(sa.delete(metric_points).where(metric_points.c.run_id == run_id))
        if metrics:
            conn.execute(
                sa.insert(metric_points),
                [
                    {"run_id": run_id, "source": source, "name": k, "value": float(v), "recorded_at": now}
                    for k, v in metrics.items()
                ],
            )


def last_reconciled(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(sa.select(sources.c.last_reconciled_at).where(sources.c.source == source)).scalar()
    return as_utc(value)


def mark_reconciled(engine: Engine, source: str, at: datetime) -> None:
    with engine.begin() as conn:
        done = conn.execute(sa.update(sources).where(sources.c.source == source).values(last_reconciled_at=at))
        if done.rowcount == 0:
            conn.execute(sa.insert(sources).values(source=source, last_reconciled_at=at))


def unfinished_runs(engine: Engine, source: str, since: datetime, exclude: str = "") -> list[str]:
    """Runs of ``source`` started since ``since`` that did not succeed (killed, failed, still running)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(runs.c.run_id, runs.c.started_at)
            .where(runs.c.source == source, runs.c.status != "success", runs.c.run_id != exclude)
            .order_by(runs.c.started_at)
        ).all()
    return [r.run_id for r in rows if as_utc(r.started_at) >= since]


def last_success(engine: Engine, source: str) -> datetime | None:
    with engine.connect() as conn:
        value = conn.execute(
            sa.select(sa.func.max(runs.c.finished_at)).where(runs.c.source == source, runs.c.status == "success")
        ).scalar()
    return as_utc(value)


def successful_summary(engine: Engine, run_id: str) -> dict | None:
    """The recorded summary of ``run_id`` when it finished successfully, else None."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(runs.c.status, runs.c.summary).where(runs.c.run_id == run_id)).first()
    return json.loads(row.summary or "{}") if row is not None and row.status == "success" else None


def recent_runs(engine: Engine, source: str | None = None, limit: int = 20) -> list[dict]:
    query = sa.select(runs).order_by(runs.c.started_at.desc()).limit(limit)
    if source:
        query = query.where(runs.c.source == source)
    with engine.connect() as conn:
        return [dict(r) | {"summary": json.loads(r["summary"] or "{}")} for r in conn.execute(query).mappings()]
