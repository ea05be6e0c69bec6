"""Run summaries, freshness and lag metrics: stored in the state store, emitted to
StatsD through Airflow's metrics stack when running inside Airflow, and written as a
Prometheus textfile under ``$DOCSYNC_HOME/metrics`` (the plugin also serves them at
``/docsync/metrics``). :func:`check_freshness` is the freshness SLO alert."""

from __future__ import annotations

import logging
import math
import os
import sys
from collections import Counter
from typing import TYPE_CHECKING

from docsync import state

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.records import Plan, UpdatesReport, WriteReport

log = logging.getLogger(__name__)

STAGES = ("plan", "updates", "process", "index", "finalize")

# Every Prometheus metric docsync emits (all gauges, label ``source``; some have one more label).
CATALOGUE: dict[str, str] = {
    "docsync_seen": "Documents listed in the source by the last run.",
    "docsync_unchanged": "Documents unchanged since the previous run.",
    "docsync_new": "New documents found by the last run.",
    "docsync_modified": "Modified documents found by the last run.",
    "docsync_retried": "Quarantined documents re-processed by the last run (retry, release, transient).",
    "docsync_indexed": "Documents indexed by the last run.",
    "docsync_quarantined": "Documents quarantined by the last run.",
    "docsync_deleted": "Documents removed from the index by the last run.",
    "docsync_moved": "Documents moved or renamed (no re-embedding) in the last run.",
    "docsync_acl_updated": "Documents whose access metadata alone changed in the last run.",
    "docsync_chunks": "Chunks written by the last run.",
    "docsync_chunks_embedded": "Chunks embedded by the last run.",
    "docsync_chunks_reused": "Chunks whose vectors were reused by the last run.",
    "docsync_backlog": "Planned documents the last run neither indexed nor quarantined.",
    "docsync_deferred": "Documents the last run deferred to the next one (a batch ran out of its time budget).",
    "docsync_revocation_lag_max_s": "Longest seconds from detecting a deletion or ACL-only change to applying it, last run.",
    "docsync_ocr_pages": "Pages OCR'd by the last run.",
    "docsync_documents_indexed_total": "Documents of the source currently indexed.",
    "docsync_documents_quarantined_total": "Documents of the source currently quarantined.",
    "docsync_quarantine_open": "Open quarantine entries awaiting review.",
    "docsync_lag_p50_s": "Median seconds from a document's modification to its indexing, last run.",
    "docsync_lag_p95_s": "95th percentile seconds from modification to indexing, last run.",
    "docsync_lag_max_s": "Maximum seconds from modification to indexing, last run.",
    "docsync_pii_entities": "PII entities anonymized by the last run, by entity type (label entity).",
    "docsync_stage_duration_s": "Seconds spent per pipeline step in the last run (label stage; summed over batches).",
    "docsync_last_success_timestamp_s": "Unix time of the last successful sync.",
    "docsync_freshness_s": "Seconds since the last successful sync (NaN: never succeeded).",
    "docsync_freshness_slo_s": "Freshness SLO in seconds (DOCSYNC_FRESHNESS_SLO_S).",
    "docsync_freshness_slo_breached": "1 when the last successful sync is older than the freshness SLO.",
}

Sample = tuple[str, dict[str, str], float]


class FreshnessSLOBreached(RuntimeError):
    """The last successful sync of a source is older than the freshness SLO."""


def lag_stats(lags: list[float]) -> dict:
    """p50/p95/max of source-modification -> indexed lags, in seconds."""
    if not lags:
        return {}
    ordered = sorted(lags)
    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]
    return {"p50": pick(0.5), "p95": pick(0.95), "max": ordered[-1]}


def summarize(
    engine: Engine, plan: Plan, write_reports: list[WriteReport], updates: UpdatesReport, finalize_s: float = 0.0
) -> dict:
    """The run summary: what the plan found, what was written and applied, and the totals."""
    totals: Counter = Counter()
    pii: Counter = Counter()
    lags: list[float] = []
    ocr_pages = 0
    stage_s = {"plan": plan.plan_s, "updates": updates.updates_s, "process": 0.0, "index": 0.0, "finalize": finalize_s}
    for report in write_reports:
        totals.update(report.counts)
        pii.update(report.pii)
        lags += report.lags
        ocr_pages += report.ocr_pages
        stage_s["process"] += report.process_s
        stage_s["index"] += report.index_s
    counts = plan.counts
    planned = counts.new + counts.modified + counts.retried
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
        "indexed": totals["indexed"],
        "quarantined": totals["quarantined"] + applied.get("quarantined", 0),
        "deferred": totals["deferred"],
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
        "revocation_lag_max_s": max(updates.revocation_lag_s, default=0.0),
        "stage_s": {k: round(v, 3) for k, v in stage_s.items()},
        "documents_indexed_total": by_status.get("indexed", 0),
        "documents_quarantined_total": by_status.get("quarantined", 0),
        "quarantine_open": state.open_quarantine_count(engine, plan.source),
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
        elif key == "stage_s":
            out |= {f"stage_{stage}_s": float(v) for stage, v in value.items()}
    return out


def freshness_s(engine: Engine, source: str) -> float | None:
    """Seconds since the last successful sync of a source."""
    last = state.last_success(engine, source)
    return None if last is None else (state.utcnow() - last).total_seconds()


# --- Prometheus exposition ---------------------------------------------------------------


def samples_for(source: str, values: dict[str, float]) -> list[Sample]:
    """Flat metric names -> Prometheus samples (PII types and stages become labels)."""
    out: list[Sample] = []
    for name, value in values.items():
        labels = {"source": source}
        if name.startswith("pii_"):
            metric, labels["entity"] = "docsync_pii_entities", name[4:].upper()
        elif name.startswith("stage_") and name.endswith("_s"):
            metric, labels["stage"] = "docsync_stage_duration_s", name[6:-2]
        else:
            metric = f"docsync_{name}"
        out.append((metric, labels, value))
    return out


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


def render(samples: list[Sample]) -> str:
    """Prometheus text exposition format, samples grouped by metric family."""
    families: dict[str, list[Sample]] = {}
    for sample in samples:
        families.setdefault(sample[0], []).append(sample)
    lines: list[str] = []
    for metric in sorted(families):
        lines.append(f"# HELP {metric} {CATALOGUE.get(metric, 'docsync metric')}")
        lines.append(f"# TYPE {metric} gauge")
        for _, labels, value in sorted(families[metric], key=lambda s: sorted(s[1].items())):
            rendered = ",".join(f'{k}="{_label(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{metric}{{{rendered}}} {_number(value)}")
    return "\n".join(lines) + "\n"


def write_textfile(directory: Path, stem: str, samples: list[Sample]) -> Path:
    """One ``.prom`` file (node_exporter textfile collector), replaced atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stem}.prom"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(render(samples))
    os.replace(tmp, path)
    return path


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


def emit(summary: dict, settings: Settings) -> None:
    """After a successful run: StatsD gauges and the Prometheus textfiles of the source."""
    source = summary["source"]
    values = flatten(summary) | {"last_success_timestamp_s": state.utcnow().timestamp()}
    fresh = _freshness_values(0.0, settings.sync.freshness_slo_s)
    _statsd(source, values | fresh)
    write_textfile(settings.home / "metrics", f"docsync_{source}", samples_for(source, values))
    write_textfile(settings.home / "metrics", f"docsync_{source}_freshness", samples_for(source, fresh))


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
    last = state.last_success(state.get_engine(settings.state_url), source)
    age = None if last is None else (state.utcnow() - last).total_seconds()
    slo = settings.sync.freshness_slo_s
    values = _freshness_values(age, slo)
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


def latest_values(engine: Engine, source: str, slo_s: int) -> dict[str, float]:
    """Metrics of the source's last successful run, with live freshness and open quarantine."""
    values: dict[str, float] = {}
    last = state.last_successful_run(engine, source)
    if last is not None:
        values = state.run_metrics(engine, [last["run_id"]])[last["run_id"]]
        values["last_success_timestamp_s"] = last["finished_at"].timestamp()
    values["quarantine_open"] = float(state.open_quarantine_count(engine, source))
    age = None if last is None else (state.utcnow() - last["finished_at"]).total_seconds()
    return values | _freshness_values(age, slo_s)


def exposition(engine: Engine, slo_s: int, only: list[str] | None = None) -> str:
    """The latest metrics of every source (or of the sources in ``only``) in Prometheus text format."""
    samples: list[Sample] = []
    for source in sources(engine) if only is None else only:
        samples += samples_for(source, latest_values(engine, source, slo_s))
    return render(samples)


def history(engine: Engine, source: str, limit: int = 50) -> list[dict]:
    """Per-run metrics of a source, oldest first: [{run_id, finished_at, status, values}]."""
    runs = state.finished_runs(engine, source, limit)
    points = state.run_metrics(engine, [r["run_id"] for r in runs])
    return [r | {"values": points[r["run_id"]]} for r in reversed(runs)]
