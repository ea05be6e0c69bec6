"""Run summaries, freshness, lag and backlog metrics: stored in the state store, emitted to
StatsD through Airflow's metrics stack when running inside Airflow, and written as
Prometheus textfiles under ``$DOCSYNC_HOME/metrics`` (the plugin also serves them at
``/docsync/metrics``). :func:`check_freshness` is the freshness SLO check of the DAGs;
the alerting rules are deploy/prometheus/alerts.yml.

Propagation and revocation lag are histograms (:data:`HISTOGRAMS`): each successful run
stores its own bucket counts as metric points, and the exposition sums them over the
source's runs, so that they are cumulative counters as Prometheus expects (a failed run's
observations are not counted; its changes show as backlog instead)."""

from __future__ import annotations

import logging
import math
import sys
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from docsync import state
from docsync.exposition import (
    BUCKETS,
    CATALOGUE,
    DASHBOARD_HIDDEN,
    HISTOGRAMS,
    Sample,
    family,
    histogram,
    quantile_bound,
    render,
    samples_for,
    write_textfile,
)

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.records import Plan, UpdatesReport, WriteReport

log = logging.getLogger(__name__)

# Re-exported: callers (web app, tests) know the catalogue and the format as metrics.*.
__all__ = [
    "BUCKETS", "CATALOGUE", "DASHBOARD_HIDDEN", "HISTOGRAMS", "STAGES", "FreshnessSLOBreached", "Sample",
    "check_freshness", "emit", "eval_values", "exposition", "family", "flatten", "freshness_s", "histogram", "history",
    "latest_values", "live_values", "propagation_lag", "quantile_bound", "render", "run_values", "samples_for",
    "sources", "summarize", "write_textfile",
]

STAGES = ("plan", "updates", "process", "index", "finalize")

class FreshnessSLOBreached(RuntimeError):
    """The last successful sync of a source is older than the freshness SLO."""


def propagation_lag(applied_at: float, mtime_ns: int, last_scan: datetime | None) -> float | None:
    """Seconds from a change to its indexing (``applied_at``, Unix time): from the later of the
    source modification and the start of the previous successful scan, since a change made
    before docsync last looked would have been found then. None without a previous successful
    scan: the source's initial load is still going on, which is backlog, not lag."""
    if last_scan is None:
        return None
    return max(0.0, applied_at - max(mtime_ns / 1e9, last_scan.timestamp()))


def summarize(
    engine: Engine, plan: Plan, write_reports: list[WriteReport], updates: UpdatesReport, finalize_s: float = 0.0,
    stale: dict[str, int] | None = None,
) -> dict:
    """The run summary: what the plan found, what was written and applied, and the totals.
    ``stale``: the source's documents on stale processing after the run (state.stale_counts)."""
    totals: Counter = Counter()
    pii: Counter = Counter()
    lags: list[float] = list(updates.propagation_lag_s)
    ocr_pages = 0
    stage_s = {"plan": plan.plan_s, "updates": updates.updates_s, "process": 0.0, "index": 0.0, "finalize": finalize_s}
    for report in write_reports:
        totals.update(report.counts)
        pii.update(report.pii)
        lags += report.propagation_lag_s
        ocr_pages += report.ocr_pages
        stage_s["process"] += report.process_s
        stage_s["index"] += report.index_s
    counts = plan.counts
    by_status = state.document_status_counts(engine, plan.source)
    applied = updates.applied
    return {
        "source": plan.source,
        "run_id": plan.run_id,
        "seen": counts.seen,
        "unchanged": counts.unchanged,
        "new": counts.new,
        "modified": counts.modified,
        "retried": counts.retried,
        "reprocessed": totals["reprocessed"],
        "reprocess_urgent": counts.reprocess_urgent,
        "indexed": totals["indexed"],
        "quarantined": totals["quarantined"] + applied.get("quarantined", 0),
        "deferred": totals["deferred"],
        "deleted": applied.get("deleted", 0),
        "moved": applied.get("move", 0),
        "acl_updated": applied.get("acl", 0),
        "chunks": totals["chunks"],
        "chunks_embedded": totals["chunks_embedded"],
        "chunks_reused": totals["chunks_reused"],
        "ocr_pages": ocr_pages,
        "pii_entities": dict(pii),
        "propagation_lag_seconds": histogram(lags),
        "revocation_lag_seconds": histogram(updates.revocation_lag_s),
        "revocation_lag_max_s": max(updates.revocation_lag_s, default=0.0),
        "stage_s": {k: round(v, 3) for k, v in stage_s.items()},
        "documents_indexed_total": by_status.get("indexed", 0),
        "documents_quarantined_total": by_status.get("quarantined", 0),
        "quarantine_open": state.open_quarantine_count(engine, plan.source),
        "stale_processing_documents": (stale or {}).get("stale", 0),
        "stale_embedding_documents": (stale or {}).get("stale_embedding", 0),
    }


def flatten(summary: dict) -> dict[str, float]:
    """Numeric metrics of a summary as flat names (history table, StatsD, Prometheus)."""
    out: dict[str, float] = {}
    for key, value in summary.items():
        if isinstance(value, bool) or key in ("source", "run_id", "reconcile"):
            continue
        if isinstance(value, (int, float)):
            out[key] = float(value)
        elif f"docsync_{key}" in HISTOGRAMS:
            out |= {f"{key}_bucket_le_{le}": float(n) for le, n in value["buckets"].items()}
            out |= {f"{key}_sum": float(value["sum"]), f"{key}_count": float(value["count"])}
        elif key == "pii_entities":
            out |= {f"pii_{etype.lower()}": float(v) for etype, v in value.items()}
        elif key == "stage_s":
            out |= {f"stage_{stage}_s": float(v) for stage, v in value.items()}
    return out


def freshness_s(engine: Engine, source: str) -> float | None:
    """Seconds since the last successful sync of a source."""
    last = state.last_success(engine, source)
    return None if last is None else (state.utcnow() - last).total_seconds()


def _statsd(source: str, values: dict[str, float]) -> None:
    """Gauges through Airflow's configured stats client (StatsD/OTel); no-op outside Airflow."""
    try:
        if "airflow.sdk" not in sys.modules:  # not inside Airflow: no StatsD client configured
            raise ImportError
        from airflow.sdk.observability.stats import Stats

        for name, value in values.items():
            if not math.isnan(value):
                Stats.gauge(f"docsync.{source}.{name}", value)
    except Exception:  # metrics must never fail a sync; outside Airflow there is no client
        log.debug("StatsD metrics not emitted (not running inside Airflow)")


def _freshness_values(age: float | None, slo_s: int) -> dict[str, float]:
    return {
        "freshness_s": math.nan if age is None else age,
        "freshness_slo_s": float(slo_s),
        "freshness_slo_breached": float(age is None or age > slo_s),
    }


DEFAULT_RUN_DEADLINE_S = 6 * 3600.0
# Gauges computed when they are read, not by a run (``live_values``): the freshness textfile,
# rewritten by every run's freshness_check (also after a failed run), carries them.
LIVE = ("freshness_s", "freshness_slo_s", "freshness_slo_breached", "backlog_documents", "backlog_oldest_age_seconds",
        "revocation_backlog_documents", "revocation_backlog_oldest_age_seconds", "quarantine_open",
        "quarantine_oldest_age_seconds", "unfinished_runs")


def live_values(engine: Engine, source: str, slo_s: int, run_deadline_s: float = DEFAULT_RUN_DEADLINE_S) -> dict[str, float]:
    """Freshness, backlog (count and age of the oldest change seen but not applied, revocations
    separately), open quarantine (count and oldest age) and unfinished runs, as of now."""
    now = state.utcnow()
    last = state.last_success(engine, source)

    def age(since: datetime | None) -> float:
        return 0.0 if since is None else max(0.0, (now - since).total_seconds())

    pending = state.backlog(engine, source)
    (content, content_since), (revocations, revocations_since) = pending[state.CONTENT], pending[state.REVOCATION]
    started_before = now - timedelta(seconds=run_deadline_s)
    return _freshness_values(None if last is None else age(last), slo_s) | {
        "backlog_documents": float(content),
        "backlog_oldest_age_seconds": age(content_since),
        "revocation_backlog_documents": float(revocations),
        "revocation_backlog_oldest_age_seconds": age(revocations_since),
        "quarantine_open": float(state.open_quarantine_count(engine, source)),
        "quarantine_oldest_age_seconds": age(state.oldest_open_quarantine(engine, source)),
        "unfinished_runs": float(state.unfinished_run_count(engine, source, started_before)),
    }


def run_values(engine: Engine, source: str) -> dict[str, float]:
    """The metrics of the source's last successful run, its histograms summed over all its
    successful runs (cumulative, as Prometheus expects), and the time of that run."""
    last = state.last_successful_run(engine, source)
    if last is None:
        return {}
    values = state.run_metrics(engine, [last["run_id"]])[last["run_id"]]
    values = {k: v for k, v in values.items() if k not in LIVE and family(samples_for(source, {k: v})[0][0]) in CATALOGUE}
    per_run = tuple(f"{h[len('docsync_'):]}_" for h in HISTOGRAMS)
    values = {k: v for k, v in values.items() if not k.startswith(per_run)} | state.metric_sums(engine, source, per_run)
    values["last_success_timestamp_s"] = last["finished_at"].timestamp()
    return values


def emit(summary: dict, settings: Settings) -> None:
    """After a successful run (recorded by ``state.finish_run``): StatsD gauges and the
    Prometheus textfiles of the source, the same values ``/docsync/metrics`` serves."""
    source = summary["source"]
    engine = state.get_engine(settings.state_url)
    values = run_values(engine, source)
    live = live_values(engine, source, settings.sync.freshness_slo_s, settings.sync.run_deadline_min * 60)
    live |= _freshness_values(0.0, settings.sync.freshness_slo_s)  # this run just succeeded
    _statsd(source, values | live)
    write_textfile(settings.home / "metrics", f"docsync_{source}", samples_for(source, values))
    write_textfile(settings.home / "metrics", f"docsync_{source}_freshness", samples_for(source, live))


# --- freshness SLO ------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    if seconds >= 2 * 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 2 * 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 60:.0f} minutes"


def check_freshness(settings: Settings, source: str | None = None) -> dict:
    """Update the freshness gauge of a source and raise :class:`FreshnessSLOBreached` (with a
    message for the on-call person) when its last successful sync is older than the SLO."""
    source = source or settings.source.name
    engine = state.get_engine(settings.state_url)
    last = state.last_success(engine, source)
    age = None if last is None else (state.utcnow() - last).total_seconds()
    slo = settings.sync.freshness_slo_s
    values = live_values(engine, source, slo, settings.sync.run_deadline_min * 60)
    _statsd(source, values)
    write_textfile(settings.home / "metrics", f"docsync_{source}_freshness", samples_for(source, values))
    result = {
        "source": source,
        "last_success": last.isoformat() if last else None,
        "freshness_s": age,
        "slo_s": slo,
        "breached": bool(values["freshness_slo_breached"]),
    }
    if not result["breached"]:
        return result
    if last is None:
        what = "no successful sync has ever been recorded"
    else:
        what = (
            f"the last successful sync was at {last:%Y-%m-%d %H:%M:%S} UTC, {_duration(age)} ago, "
            f"older than the SLO of {_duration(slo)} (DOCSYNC_FRESHNESS_SLO_S={slo})"
        )
    message = (
        f"docsync freshness SLO breached for source {source!r}: {what}. Changed documents are not "
        "searchable yet, and deleted or re-permissioned ones may still be. Check the failed runs of "
        "this source's sync DAG (plan/finalize task logs: source unavailable, mass-deletion guard?) "
        "and fix the cause; the alert clears at the next successful sync."
    )
    log.error(message)
    raise FreshnessSLOBreached(message)


# --- latest metrics per source (plugin /metrics) ---------------------------------------


def sources(engine: Engine) -> list[str]:
    """Every source with a run or a quarantine entry."""
    return state.source_names(engine)


def eval_values(engine: Engine, source: str) -> dict[str, float]:
    """The metrics (``eval_*``) of the source's last retrieval evaluation; {} before the first."""
    latest = state.latest_eval(engine, source)
    return {k: float(v) for k, v in latest["metrics"].items()} if latest else {}


def latest_values(
    engine: Engine, source: str, slo_s: int, run_deadline_s: float = DEFAULT_RUN_DEADLINE_S
) -> dict[str, float]:
    """Metrics of the source's last successful run (histograms cumulative), the live gauges and
    the last retrieval evaluation."""
    return run_values(engine, source) | live_values(engine, source, slo_s, run_deadline_s) | eval_values(engine, source)


def exposition(
    engine: Engine, slo_s: int, only: list[str] | None = None, run_deadline_s: float = DEFAULT_RUN_DEADLINE_S
) -> str:
    """The latest metrics of every source (or of the sources in ``only``) in Prometheus text format."""
    samples: list[Sample] = []
    for source in sources(engine) if only is None else only:
        samples += samples_for(source, latest_values(engine, source, slo_s, run_deadline_s))
    return render(samples)


def history(engine: Engine, source: str, limit: int = 50) -> list[dict]:
    """Per-run metrics of a source, oldest first: [{run_id, finished_at, status, values}]."""
    runs = state.finished_runs(engine, source, limit)
    points = state.run_metrics(engine, [r["run_id"] for r in runs])
    return [r | {"values": points[r["run_id"]]} for r in reversed(runs)]
