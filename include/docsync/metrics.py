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
import os
import re
import sys
from collections import Counter
from datetime import timedelta
from typing import TYPE_CHECKING

from docsync import state

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.records import Plan, UpdatesReport, WriteReport

log = logging.getLogger(__name__)

STAGES = ("plan", "updates", "process", "index", "finalize")

# Lag histograms: upper bounds in seconds, from a minute to a week (Prometheus ``le``).
BUCKETS: tuple[float, ...] = (60, 300, 900, 1800, 3600, 7200, 21600, 43200, 86400, 172800, 604800)
# Histograms docsync emits (cumulative over a source's successful runs: each run stores its own
# bucket counts as metric points, the exposition sums them; see ``run_values``).
HISTOGRAMS: dict[str, str] = {
    "docsync_propagation_lag_seconds": (
        "Seconds from a change made after docsync last looked (modification, move, ACL change of a known "
        "document) to its indexing: indexed time minus the later of the source modification and the start "
        "of the previous successful scan. New documents are backlog, not lag."
    ),
    "docsync_revocation_lag_seconds": (
        "Seconds from first detecting a deletion or an ACL-only change to applying it to the index."
    ),
}
# Every Prometheus metric docsync emits: the histograms above and gauges, label ``source``
# (some have one more label).
CATALOGUE: dict[str, str] = HISTOGRAMS | {
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
    "docsync_deferred": "Documents the last run deferred to the next one (a batch ran out of its time budget).",
    "docsync_revocation_lag_max_s": "Longest seconds from detecting a deletion or ACL-only change to applying it, last run.",
    "docsync_ocr_pages": "Pages OCR'd by the last run.",
    "docsync_documents_indexed_total": "Documents of the source currently indexed.",
    "docsync_documents_quarantined_total": "Documents of the source currently quarantined.",
    "docsync_quarantine_open": "Open quarantine entries awaiting review.",
    "docsync_quarantine_oldest_age_seconds": "Seconds since the oldest open quarantine entry was first seen (0: none).",
    "docsync_backlog_documents": (
        "Changes seen but not yet indexed: documents to process (new, modified, re-processing; deferred or "
        "left by a failed run) and moves, not counting quarantined ones."
    ),
    "docsync_backlog_oldest_age_seconds": "Seconds since the oldest change of docsync_backlog_documents was first detected (0: none).",
    "docsync_revocation_backlog_documents": "Deletions and ACL-only changes seen but not yet applied to the index.",
    "docsync_revocation_backlog_oldest_age_seconds": (
        "Seconds since the oldest deletion or ACL-only change not yet applied was first detected (0: none)."
    ),
    "docsync_unfinished_runs": (
        "Runs since the last successful one that failed or were killed (a run younger than "
        "DOCSYNC_RUN_DEADLINE_MIN may still be going and is not counted)."
    ),
    "docsync_pii_entities": "PII entities anonymized by the last run, by entity type (label entity).",
    "docsync_stage_duration_s": "Seconds spent per pipeline step in the last run (label stage; summed over batches).",
    "docsync_last_success_timestamp_s": "Unix time of the last successful sync.",
    "docsync_freshness_s": "Seconds since the last successful sync (NaN: never succeeded).",
    "docsync_freshness_slo_s": "Freshness SLO in seconds (DOCSYNC_FRESHNESS_SLO_S).",
    "docsync_freshness_slo_breached": "1 when the last successful sync is older than the freshness SLO.",
}

# Metrics on no Grafana panel, on purpose (tests/test_monitoring.py: every other metric is on one).
DASHBOARD_HIDDEN: dict[str, str] = {
    "docsync_chunks": "chunks written = embedded + reused, both on the 'Chunks embedded per run' panel",
}

Sample = tuple[str, dict[str, str], float]


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


def _le(bound: float) -> str:
    return "inf" if math.isinf(bound) else f"{bound:g}"


def histogram(values: list[float] | tuple[float, ...]) -> dict:
    """A Prometheus histogram of one run's observations: cumulative bucket counts (keys are the
    ``le`` bounds, "inf" last), sum and count."""
    buckets = {_le(b): sum(1 for v in values if v <= b) for b in (*BUCKETS, math.inf)}
    return {"buckets": buckets, "sum": round(float(sum(values)), 3), "count": len(values)}


def summarize(
    engine: Engine, plan: Plan, write_reports: list[WriteReport], updates: UpdatesReport, finalize_s: float = 0.0
) -> dict:
    """The run summary: what the plan found, what was written and applied, and the totals."""
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


# --- Prometheus exposition ---------------------------------------------------------------


_BUCKET = re.compile(r"^(\w+)_bucket_le_(\w+)$")


def samples_for(source: str, values: dict[str, float]) -> list[Sample]:
    """Flat metric names -> Prometheus samples (PII types, stages and histogram bounds become labels)."""
    out: list[Sample] = []
    for name, value in values.items():
        labels = {"source": source}
        bucket = _BUCKET.match(name)
        if name.startswith("pii_"):
            metric, labels["entity"] = "docsync_pii_entities", name[4:].upper()
        elif name.startswith("stage_") and name.endswith("_s"):
            metric, labels["stage"] = "docsync_stage_duration_s", name[6:-2]
        elif bucket and f"docsync_{bucket.group(1)}" in HISTOGRAMS:
            le = bucket.group(2)
            metric, labels["le"] = f"docsync_{bucket.group(1)}_bucket", "+Inf" if le == "inf" else le
        else:
            metric = f"docsync_{name}"
        out.append((metric, labels, value))
    return out


def family(metric: str) -> str:
    """The metric family a sample belongs to (a histogram's ``_bucket``/``_sum``/``_count``
    samples belong to the histogram)."""
    for suffix in ("_bucket", "_sum", "_count"):
        if metric.endswith(suffix) and metric[: -len(suffix)] in HISTOGRAMS:
            return metric[: -len(suffix)]
    return metric


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


_SUFFIX_ORDER = {"": 0, "_bucket": 0, "_sum": 1, "_count": 2}


def _order(sample: Sample) -> tuple:
    """Within a family: by labels other than ``le``; a histogram's buckets by bound, then _sum, _count."""
    metric, labels, _ = sample
    rest = sorted((k, v) for k, v in labels.items() if k != "le")
    le = labels.get("le")
    bound = math.inf if le == "+Inf" else float(le) if le else 0.0
    return (rest, _SUFFIX_ORDER[metric[len(family(metric)):]], bound)


def render(samples: list[Sample]) -> str:
    """Prometheus text exposition format, samples grouped by metric family."""
    families: dict[str, list[Sample]] = {}
    for sample in samples:
        families.setdefault(family(sample[0]), []).append(sample)
    lines: list[str] = []
    for name in sorted(families):
        lines.append(f"# HELP {name} {CATALOGUE.get(name, 'docsync metric')}")
        lines.append(f"# TYPE {name} {'histogram' if name in HISTOGRAMS else 'gauge'}")
        for metric, labels, value in sorted(families[name], key=_order):
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


def latest_values(
    engine: Engine, source: str, slo_s: int, run_deadline_s: float = DEFAULT_RUN_DEADLINE_S
) -> dict[str, float]:
    """Metrics of the source's last successful run (histograms cumulative) and the live gauges."""
    return run_values(engine, source) | live_values(engine, source, slo_s, run_deadline_s)


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


def quantile_bound(values: dict[str, float], name: str, q: float) -> float | None:
    """The upper bound of the bucket holding the ``q`` quantile of histogram ``name`` (flat
    values, e.g. from :func:`latest_values`): "95% of changes within <bound> s". None: no
    observations; inf: beyond the largest bucket."""
    count = values.get(f"{name}_count", 0.0)
    if not count:
        return None
    for bound in (*BUCKETS, math.inf):
        if values.get(f"{name}_bucket_le_{_le(bound)}", 0.0) >= q * count:
            return bound
    return math.inf
