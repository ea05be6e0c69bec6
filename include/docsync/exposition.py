"""The metrics docsync emits (catalogue with HELP texts, histogram buckets) and the Prometheus
text exposition format: flat metric names (as stored per run) -> samples -> text. Used by
:mod:`docsync.metrics` (textfiles, ``/docsync/metrics``) and the dashboard/alert tests."""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

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
    "docsync_directory_revocation_lag_seconds": (
        "Seconds from a directory change that removed a user's principal (membership removed, account disabled, "
        "group renamed or deleted) to the directory snapshot that stopped granting it (label source: the directory)."
    ),
}
# The directory sync's gauges (docsync.directory; label source: the directory's name).
DIRECTORY_GAUGES: dict[str, str] = {
    "docsync_directory_last_success_timestamp_s": "Unix time of the last good directory snapshot (NaN: none yet).",
    "docsync_directory_snapshot_age_seconds": (
        "Seconds since the last good directory snapshot; group memberships are as old as this (NaN: none yet)."
    ),
    "docsync_directory_max_age_s": "Directory snapshot age that raises DocsyncDirectorySnapshotStale (DOCSYNC_DIRECTORY_MAX_AGE_S).",
    "docsync_directory_sync_failures": "Directory syncs that failed since the last good snapshot (directory unreachable).",
    "docsync_directory_users": "Users in the directory snapshot.",
    "docsync_directory_groups": "Groups in the directory snapshot.",
    "docsync_directory_disabled_users": "Disabled, expired or locked users in the directory snapshot (they resolve to no principals).",
}
# Every Prometheus metric docsync emits: the histograms above and gauges, label ``source``
# (some have one more label).
CATALOGUE: dict[str, str] = HISTOGRAMS | {
    "docsync_seen": "Documents listed in the source by the last run.",
    "docsync_unchanged": "Documents unchanged since the previous run.",
    "docsync_new": "New documents found by the last run.",
    "docsync_modified": "Modified documents found by the last run.",
    "docsync_retried": "Quarantined documents re-processed by the last run (retry, release, transient).",
    "docsync_reprocessed": (
        "Unchanged documents re-processed by the last run because the processing that produced them "
        "(text fingerprint: parser/OCR, PII rules, chunking, GX suites) changed."
    ),
    "docsync_reprocess_urgent": "Documents the last run re-processed outside the budget: a PII-stricter change.",
    "docsync_stale_processing_documents": (
        "Indexed documents produced by other processing than the current configuration (text or embedding "
        "fingerprint), after the last run: re-processed progressively within DOCSYNC_REPROCESS_BUDGET."
    ),
    "docsync_stale_embedding_documents": (
        "Indexed documents embedded by another model than DOCSYNC_EMBED_MODEL: syncs refuse to write until "
        "`docsync reindex` (should be 0)."
    ),
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
    # Retrieval quality: the label-free canary of the last run that changed the index (finalize) ...
    "docsync_canary_samples": "Chunks the retrieval canary of the last run sampled (chunks that run indexed).",
    "docsync_canary_hits": "Sampled chunks whose own document was the top hit for a sentence of theirs (canary).",
    "docsync_canary_hit_rate": "Share of the canary's sampled chunks that found their own document first (1.0 = healthy).",
    # ... and the last evaluation on the source's labelled set (docsync eval, the evaluation DAG).
    "docsync_eval_queries": "Queries in the source's evaluation set at its last evaluation.",
    "docsync_eval_recall_at_1": "Mean recall@1 over the labelled queries of the last evaluation (chunk ranks).",
    "docsync_eval_recall_at_5": "Mean recall@5 over the labelled queries of the last evaluation (chunk ranks).",
    "docsync_eval_recall_at_10": "Mean recall@10 over the labelled queries of the last evaluation (chunk ranks).",
    "docsync_eval_baseline_recall_at_10": (
        "Best recall@10 of a passing evaluation with the same set and search mode (NaN: none yet); the last "
        "evaluation fails when it is more than DOCSYNC_EVAL_MARGIN_POINTS below."
    ),
    "docsync_eval_mrr": "Mean reciprocal rank of the first expected document, last evaluation.",
    "docsync_eval_ndcg_at_10": "Mean nDCG@10 (binary gains, each expected document once), last evaluation.",
    "docsync_eval_passage_hit_rate": "Share of queries with an expected passage that retrieved it in the top 10 (NaN: none).",
    "docsync_eval_acl_violations": "Results of the last evaluation the searching principals may not read (must be 0).",
    "docsync_eval_stale_hits": "Results of the last evaluation from deleted documents or outdated versions (must be 0).",
    "docsync_eval_latency_p50_ms": "Median milliseconds of one search (index query) in the last evaluation.",
    "docsync_eval_latency_p95_ms": "95th percentile milliseconds of one search (index query) in the last evaluation.",
    "docsync_eval_passed": "1 when the last evaluation passed (no violations, no stale hits, recall@10 within the margin).",
} | DIRECTORY_GAUGES

# Metrics on no Grafana panel, on purpose (tests/test_monitoring.py: every other metric is on one).
DASHBOARD_HIDDEN: dict[str, str] = {
    "docsync_chunks": "chunks written = embedded + reused, both on the 'Chunks embedded per run' panel",
    "docsync_directory_last_success_timestamp_s": "for DocsyncDirectorySnapshotStale; its age is on the directory panel",
    "docsync_directory_users": "directory size, for capacity questions; see `docsync principals` for one user",
    "docsync_directory_groups": "directory size, for capacity questions",
    "docsync_directory_disabled_users": "directory size, for capacity questions",
}

Sample = tuple[str, dict[str, str], float]


def _le(bound: float) -> str:
    return "inf" if math.isinf(bound) else f"{bound:g}"


def histogram(values: list[float] | tuple[float, ...]) -> dict:
    """A Prometheus histogram of one run's observations: cumulative bucket counts (keys are the
    ``le`` bounds, "inf" last), sum and count."""
    buckets = {_le(b): sum(1 for v in values if v <= b) for b in (*BUCKETS, math.inf)}
    return {"buckets": buckets, "sum": round(float(sum(values)), 3), "count": len(values)}


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
