"""Run an evaluation set against a source's collection: retrieval quality (recall@1/5/10, MRR,
nDCG@10, passage hits), safety (ACL violations, stale hits, judged against the state store,
not against the payload the search already filtered on) and search latency.

:func:`run_evaluation` is what ``docsync eval`` and the evaluation DAG call: it also compares
recall@10 with the stored baseline, records the run (``state.eval_store``) and writes the
Prometheus textfile. The metric definitions are in :mod:`docsync.evaluation.scoring`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING

from docsync.evaluation import scoring
from docsync.evaluation.eval_set import EvalSet, load_eval_set

if TYPE_CHECKING:
    from collections.abc import Callable

    from docsync.config import Settings
    from docsync.evaluation.eval_set import EvalQuery

log = logging.getLogger(__name__)

K = 10
DETAIL_LIMIT = 20  # misses, violations and stale hits listed in a report


def eval_set_path(settings: Settings, source: str) -> Path:
    """Where a source's set is kept: ``$DOCSYNC_EVAL_DIR/<source>.jsonl``."""
    return settings.sync.eval_dir / f"{source}.jsonl"


def _readable(allowed: list[str], denied: list[str], principals: set[str]) -> bool:
    return bool(set(allowed) & principals) and not set(denied) & principals


class _Judge:
    """Decides, per hit, whether it is stale or an ACL violation, from the state store's rows
    (the truth after the last sync), loaded once per evaluation."""

    def __init__(self, settings: Settings, source: str) -> None:
        from docsync import state

        engine = state.get_engine(settings.state_url)
        self.docs = {row["doc_id"]: row for row in state.load_documents(engine, source).values()}
        self.points = state.recorded_points(engine, source)

    def stale(self, point_id: str, payload: dict) -> str:
        row = self.docs.get(payload.get("doc_id", ""))
        if row is None:
            return "document deleted (not in the state store)"
        if row["status"] != "indexed":
            return f"document is {row['status']}"
        if payload.get("content_hash") != row["content_hash"]:
            return "outdated version (content hash differs from the state store's)"
        if self.points.get(point_id) != row["doc_id"]:
            return "chunk not recorded for its document (left over from an older version)"
        return ""

    def violation(self, query: EvalQuery, principals: set[str], payload: dict) -> str:
        if payload.get("path") in query.forbidden_paths:
            return "labelled forbidden for these principals"
        row = self.docs.get(payload.get("doc_id", ""))
        if row is not None and not _readable(json.loads(row["allowed"] or "[]"), json.loads(row["denied"] or "[]"),
                                             principals):
            return "the state store's ACL does not let these principals read it"
        from docsync.index import ACCESS_FIELD, DENY_FIELD

        if not _readable(payload.get(ACCESS_FIELD) or [], payload.get(DENY_FIELD) or [], principals):
            return "its payload ACL does not let these principals read it"
        return ""


def evaluate(
    settings: Settings, eval_set: EvalSet, source: str | None = None, mode: str = "dense",
    embed: Callable[[list[str]], list[list[float]]] | None = None,
) -> dict:
    """Search every query of the set as its principals; the report (see module docstring)."""
    from docsync import index
    from docsync.principals import EVERYONE, canonical_principals

    source = source or settings.source.name
    if embed is None:
        from docsync.embed import embed_texts as embed
    judge = _Judge(settings, source)
    started = time.perf_counter()
    vectors = embed([q.query for q in eval_set.queries])
    embed_ms = (time.perf_counter() - started) * 1000 / max(len(eval_set.queries), 1)
    latencies: list[float] = []
    recall: dict[int, list[float]] = {1: [], 5: [], 10: []}
    rr: list[float] = []
    ndcg: list[float] = []
    passages: list[float] = []
    by_tag: dict[str, list[float]] = {}  # recall@10 per tag
    rr_by_tag: dict[str, list[float]] = {}
    misses: list[dict] = []
    violations: list[dict] = []
    stale: list[dict] = []
    with index.open_index(settings) as client:
        collection = settings.collection(source)
        if not client.collection_exists(collection):
            raise LookupError(f"source {source!r} has no collection {collection}: run a sync first")
        for query, vector in zip(eval_set.queries, vectors):
            principals = set(canonical_principals([*query.principals, EVERYONE]))
            t0 = time.perf_counter()
            hits = index.search(client, collection, vector, list(query.principals), limit=K, mode=mode, text=query.query)
            latencies.append((time.perf_counter() - t0) * 1000)
            ranked = [h.payload.get("path", "") for h in hits]
            for hit in hits:
                if reason := judge.stale(str(hit.id), hit.payload):
                    stale.append({"id": query.id, "path": hit.payload.get("path"), "reason": reason})
                if reason := judge.violation(query, principals, hit.payload):
                    violations.append({"id": query.id, "path": hit.payload.get("path"), "reason": reason})
            if not query.labelled:
                continue
            expected = set(query.expected_paths)
            for k in recall:
                recall[k].append(scoring.recall_at(expected, ranked, k))
            rr.append(scoring.reciprocal_rank(expected, ranked))
            ndcg.append(scoring.ndcg_at(expected, ranked, K))
            for tag in query.tags:
                by_tag.setdefault(tag, []).append(recall[10][-1])
                rr_by_tag.setdefault(tag, []).append(rr[-1])
            if recall[10][-1] < 1.0:
                misses.append({"id": query.id, "query": query.query, "expected": list(query.expected_paths),
                               "got": list(dict.fromkeys(ranked))})
            if query.passage:
                wanted = " ".join(query.passage.lower().split())
                passages.append(float(any(
                    h.payload.get("path") in expected and wanted in " ".join(h.payload.get("text", "").lower().split())
                    for h in hits
                )))

    def rounded(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 4)

    return {
        "source": source, "mode": mode, "set": eval_set.path, "set_sha": eval_set.sha,
        "queries": len(eval_set.queries), "labelled": len(rr), "negatives": len(eval_set.queries) - len(rr),
        "recall_at_1": rounded(scoring.mean(recall[1])), "recall_at_5": rounded(scoring.mean(recall[5])),
        "recall_at_10": rounded(scoring.mean(recall[10])), "mrr": rounded(scoring.mean(rr)),
        "ndcg_at_10": rounded(scoring.mean(ndcg)),
        "passage_queries": len(passages), "passage_hit_rate": rounded(scoring.mean(passages)),
        "acl_violations": len(violations), "stale_hits": len(stale),
        "latency_p50_ms": rounded(scoring.percentile(latencies, 50)),
        "latency_p95_ms": rounded(scoring.percentile(latencies, 95)),
        "embed_ms_per_query": round(embed_ms, 2),
        "recall_at_10_by_tag": {t: rounded(scoring.mean(v)) for t, v in sorted(by_tag.items())},
        "mrr_by_tag": {t: rounded(scoring.mean(v)) for t, v in sorted(rr_by_tag.items())},
        "misses": misses[:DETAIL_LIMIT], "violations": violations[:DETAIL_LIMIT], "stale": stale[:DETAIL_LIMIT],
    }


METRIC_KEYS = ("queries", "recall_at_1", "recall_at_5", "recall_at_10", "mrr", "ndcg_at_10", "passage_hit_rate",
               "acl_violations", "stale_hits", "latency_p50_ms", "latency_p95_ms")


def flat_metrics(report: dict) -> dict[str, float]:
    """The report's numbers as flat metric names (``eval_*``: docsync_eval_* in Prometheus); a
    figure without a value (no baseline yet, no passage labels) is NaN, so every series exists."""
    def number(value: object) -> float:
        return float(value) if isinstance(value, (int, float)) else math.nan

    out = {f"eval_{k}": number(report.get(k)) for k in METRIC_KEYS}
    out["eval_baseline_recall_at_10"] = number(report.get("baseline_recall_at_10"))
    out["eval_passed"] = float(bool(report.get("passed")))
    return out


def judge(report: dict, baseline: float | None, margin_points: float) -> list[str]:
    """Why an evaluation fails (empty: it passes): any ACL violation or stale hit, or recall@10
    more than ``margin_points`` percentage points below the baseline."""
    failures = []
    if report["acl_violations"]:
        failures.append(f"{report['acl_violations']} result(s) the searching principals may not read (ACL "
                        "violations): see 'violations'; check the source's ACLs and the updates step")
    if report["stale_hits"]:
        failures.append(f"{report['stale_hits']} result(s) from deleted documents or outdated versions (stale "
                        "hits): see 'stale'; run `docsync reconcile` and check the write/updates steps")
    recall = report.get("recall_at_10")
    if baseline is not None and recall is not None and recall < baseline - margin_points / 100:
        failures.append(f"recall@10 {recall:.3f} is more than {margin_points:g} points below the baseline "
                        f"{baseline:.3f} (DOCSYNC_EVAL_MARGIN_POINTS): see 'misses'; what changed (parser, chunking, "
                        "model, OCR)?")
    return failures


def run_evaluation(
    settings: Settings, source: str | None = None, set_path: Path | str | None = None, mode: str | None = None,
    run_id: str | None = None, record: bool = True,
) -> dict:
    """Load the set, evaluate, judge against the baseline and (``record``) store the run and
    write ``$DOCSYNC_HOME/metrics/docsync_<source>_eval.prom``. The report has ``passed`` and
    ``failures``; the caller decides what a failure does (the DAG task fails)."""
    from docsync import state
    from docsync.exposition import samples_for, write_textfile

    source = source or settings.source.name
    mode = mode or settings.sync.search_mode
    eval_set = load_eval_set(Path(set_path) if set_path else eval_set_path(settings, source))
    report = evaluate(settings, eval_set, source, mode)
    engine = state.get_engine(settings.state_url)
    baseline = state.baseline_recall(engine, source, mode, eval_set.sha)
    failures = judge(report, baseline, settings.sync.eval_margin_points)
    report |= {"baseline_recall_at_10": baseline, "margin_points": settings.sync.eval_margin_points,
               "passed": not failures, "failures": failures}
    if record:
        run_id = run_id or f"cli__{state.utcnow().strftime('%Y%m%dT%H%M%S%f')}"
        state.record_eval(engine, source=source, run_id=run_id, mode=mode, set_sha=eval_set.sha,
                          passed=not failures, metrics=flat_metrics(report),
                          report={k: report[k] for k in ("misses", "violations", "stale", "failures")})
        write_textfile(settings.home / "metrics", f"docsync_{source}_eval", samples_for(source, flat_metrics(report)))
    for failure in failures:
        log.error("docsync evaluation of source %r failed: %s", source, failure)
    return report
