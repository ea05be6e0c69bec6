"""Run summaries, freshness and lag metrics: stored in the state store, emitted to
StatsD through Airflow's metrics stack when running inside Airflow, and written as a
Prometheus textfile under ``$DOCSYNC_HOME/metrics``."""

from __future__ import annotations

import logging
import os
import sys
from collections import Counter
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from docsync import state
from docsync.config import Settings

log = logging.getLogger(__name__)


def lag_stats(lags: list[float]) -> dict:
    """p50/p95/max of source-modification -> indexed lags, in seconds."""
    if not lags:
        return {}
    ordered = sorted(lags)
    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return {"p50": pick(0.5), "p95": pick(0.95), "max": ordered[-1]}


def summarize(engine: Engine, plan_doc: dict, index_results: list[dict], applied: dict) -> dict:
    totals: Counter = Counter()
    pii: Counter = Counter()
    lags: list[float] = []
    ocr_pages = 0
    for result in index_results:
        totals.update(result.get("counts", {}))
        pii.update(result.get("pii", {}))
        lags += result.get("lags", [])
        ocr_pages += result.get("ocr_pages", 0)
    counts = plan_doc["counts"]
    planned = counts["new"] + counts["modified"] + counts["retried"]
    source = plan_doc["source"]
    with engine.connect() as conn:
        by_status = dict(
            conn.execute(
                sa.select(state.documents.c.status, sa.func.count())
                .where(state.documents.c.source == source)
                .group_by(state.documents.c.status)
            ).all()
        )
        open_quarantine = conn.execute(
            sa.select(sa.func.count()).where(
                state.quarantine.c.source == source, state.quarantine.c.status == "open"
            )
        ).scalar()
    return {
        "source": source,
        "run_id": plan_doc["run_id"],
        "seen": counts["seen"],
        "unchanged": counts["unchanged"],
        "new": counts["new"],
        "modified": counts["modified"],
        "retried": counts["retried"],
        "indexed": totals["indexed"],
        "quarantined": totals["quarantined"] + applied.get("quarantined", 0),
        "deleted": applied.get("deleted", 0),
        "moved": applied.get("move", 0),
        "acl_updated": applied.get("acl", 0),
        "chunks": totals["chunks"],
        "chunks_embedded": totals["chunks_embedded"],
        "chunks_reused": totals["chunks_reused"],
        "backlog": max(0, planned - totals["indexed"] - totals["quarantined"]),
        "ocr_pages": ocr_pages,
        "pii_entities": dict(pii),
        "lag_s": lag_stats(lags),
        "documents_indexed_total": by_status.get("indexed", 0),
        "documents_quarantined_total": by_status.get("quarantined", 0),
        "quarantine_open": open_quarantine,
    }


def flatten(summary: dict) -> dict[str, float]:
    """Numeric metrics of a summary as flat names (history table, StatsD, Prometheus)."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if isinstance(value, bool) or key in ("source", "run_id", "reconcile"):
            continue
        if isinstance(value, (int, float)):
            out[key] = float(value)
        elif key == "lag_s":
            out |= {f"lag_{q}_s": float(v) for q, v in value.items()}
        elif key == "pii_entities":
            out |= {f"pii_{etype.lower()}": float(v) for etype, v in value.items()}
    return out


def freshness_s(engine: Engine, source: str) -> float | None:
    """Seconds since the last successful sync of a source."""
    last = state.last_success(engine, source)
    return None if last is None else (state.utcnow() - last).total_seconds()


def emit(summary: dict, settings: Settings) -> None:
    """Send metrics to StatsD (Airflow's configured stats client) and the Prometheus textfile."""
    values = flatten(summary) | {"freshness_s": 0.0}
    source = summary["source"]
    try:
        if "airflow.sdk" not in sys.modules:  # not inside Airflow: no StatsD client configured
            raise ImportError
        from airflow.sdk.observability.stats import Stats

        for name, value in values.items():
            Stats.gauge(f"docsync.{source}.{name}", value)
    except Exception:  # noqa: BLE001 - metrics must never fail a sync; outside Airflow there is no client
        log.debug("StatsD metrics not emitted (not running inside Airflow)")
    write_textfile(settings.home / "metrics", source, values)


def write_textfile(directory: Path, source: str, values: dict[str, float]) -> Path:
    """Prometheus exposition format, one file per source (node_exporter textfile collector)."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for name, value in sorted(values.items()):
        metric = f"docsync_{name}"
        lines.append(f"# TYPE {metric} gauge")
        lines.append(f'{metric}{{source="{source}"}} {value}')
    path = directory / f"docsync_{source}.prom"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)
    return path
