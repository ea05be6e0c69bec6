"""Retrieval evaluations (``docsync eval``, the evaluation DAG): one row per evaluation run,
owned by this module (table ``docsync_eval_runs``), and the baseline a new run is judged by."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.state.schema import as_utc, documents, dumps, metadata, runs, utcnow

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Engine

eval_runs = sa.Table(
    "docsync_eval_runs",
    metadata,  # the shared metadata: get_engine creates this table with the others
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(128), nullable=False, index=True),
    sa.Column("run_id", sa.String(128), nullable=False),  # the Airflow run (or cli__...) that evaluated
    sa.Column("mode", sa.String(16), nullable=False),  # dense | hybrid
    sa.Column("set_sha", sa.String(64), nullable=False),  # the evaluation set's content hash
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("metrics", sa.Text, nullable=False),  # {name: number}, as exported to Prometheus
    sa.Column("report", sa.Text, nullable=False, default="{}"),  # failures and violations (paths, query ids)
)


def record_eval(engine: Engine, *, source: str, run_id: str, mode: str, set_sha: str, passed: bool,
                metrics: dict[str, float], report: dict) -> None:
    """Store one evaluation run."""
    with engine.begin() as conn:
        conn.execute(sa.insert(eval_runs).values(
            source=source, run_id=run_id, mode=mode, set_sha=set_sha, recorded_at=utcnow(), passed=passed,
            metrics=dumps(metrics), report=dumps(report),
        ))


def _row(row: sa.RowMapping) -> dict:
    return dict(row) | {"recorded_at": as_utc(row["recorded_at"]), "metrics": json.loads(row["metrics"] or "{}"),
                        "report": json.loads(row["report"] or "{}")}


def eval_history(engine: Engine, source: str, limit: int = 50) -> list[dict]:
    """A source's evaluation runs, oldest first."""
    query = (sa.select(eval_runs).where(eval_runs.c.source == source)
             .order_by(eval_runs.c.recorded_at.desc(), eval_runs.c.id.desc()).limit(limit))
    with engine.connect() as conn:
        return [_row(r) for r in reversed(conn.execute(query).mappings().all())]


def latest_eval(engine: Engine, source: str) -> dict | None:
    """The source's most recent evaluation run."""
    found = eval_history(engine, source, limit=1)
    return found[0] if found else None


def baseline_recall(engine: Engine, source: str, mode: str, set_sha: str, metric: str = "eval_recall_at_10") -> float | None:
    """The best ``metric`` of a passing run with the same set and search mode (None: no such run).
    The best, not the last: a slow decline, run by run within the margin, still ends in an alert;
    a changed set or mode starts a new baseline."""
    query = sa.select(eval_runs.c.metrics).where(
        eval_runs.c.source == source, eval_runs.c.mode == mode, eval_runs.c.set_sha == set_sha,
        eval_runs.c.passed == sa.true(),
    )
    with engine.connect() as conn:
        values = [json.loads(m).get(metric) for (m,) in conn.execute(query)]
    values = [v for v in values if isinstance(v, (int, float))]
    return max(values) if values else None


def run_started_at(engine: Engine, run_id: str) -> datetime | None:
    """When a sync run started (the canary samples documents indexed since then)."""
    with engine.connect() as conn:
        return as_utc(conn.execute(sa.select(runs.c.started_at).where(runs.c.run_id == run_id)).scalar())


def docs_indexed_since(engine: Engine, source: str, since: datetime) -> list[str]:
    """The ids of the source's documents indexed at or after ``since`` (sorted)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(documents.c.doc_id, documents.c.indexed_at)
            .where(documents.c.source == source, documents.c.status == "indexed")
        ).all()
    return sorted(r.doc_id for r in rows if r.indexed_at is not None and as_utc(r.indexed_at) >= since)
