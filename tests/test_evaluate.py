"""docsync.evaluation.evaluate on a tiny hand-made index (embedded Qdrant, the state store,
the real embedding model): the figures, an ACL violation and stale hits caught, the baseline
and its margin, the stored runs and the exported metrics."""

from __future__ import annotations

import json
import uuid

import pytest

from docsync import index, metrics, state
from docsync.embed import embed_texts
from docsync.evaluation.eval_set import load_eval_set
from docsync.evaluation.evaluate import evaluate, judge, run_evaluation

SOURCE = "tiny"
DOCS = {  # path -> (readers, text)
    "ops/pallets.txt": (["group:ops"], "Warehouse teams track inbound pallets and schedule the loading docks."),
    "hr/leave.txt": (["group:hr"], "Parental leave lasts sixteen weeks for every employee, paid in full."),
    "pub/holidays.txt": (["everyone"], "The office is closed between Christmas and New Year."),
}
QUERIES = [
    {"id": "pallets", "query": "when are the dock slots for incoming goods", "principals": ["group:ops"],
     "expected_paths": ["ops/pallets.txt"], "passage": "loading docks"},
    {"id": "leave", "query": "how many weeks off do new parents get", "principals": ["user:hana", "group:hr"],
     "expected_paths": ["hr/leave.txt"]},
    {"id": "holidays", "query": "is the office shut at the end of December", "principals": ["user:bob"],
     "expected_paths": ["pub/holidays.txt"]},
    {"id": "leave-denied", "query": "how many weeks off do new parents get", "principals": ["group:ops"],
     "expected_paths": [], "forbidden_paths": ["hr/leave.txt"]},
]


def doc_id(path: str) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, path).hex


def point_id(path: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{path}#0"))


@pytest.fixture()
def tiny(settings, tmp_path):
    """The three documents indexed (one chunk each) and recorded in the state store, and the set."""
    settings = settings.replace(source_name=SOURCE, eval_dir=tmp_path / "eval")
    engine = state.get_engine(settings.state_url)
    now = state.utcnow()
    vectors = embed_texts([text for _, text in DOCS.values()])
    with index.open_index(settings) as client:
        index.ensure_collection(client, settings.collection(), local=True)
        index.upsert(client, settings.collection(), [
            (point_id(path), vector, {"doc_id": doc_id(path), "source": SOURCE, "path": path, "text": text,
                                      "content_hash": f"v1-{path}"} | index.access_payload(readers, []))
            for (path, (readers, text)), vector in zip(DOCS.items(), vectors)
        ])
    with engine.begin() as conn:
        for path, (readers, _) in DOCS.items():
            state.save_document(conn, state.document_row(
                source=SOURCE, doc_id=doc_id(path), path=path, size=1, mtime_ns=1, acl_fingerprint="",
                status="indexed", first_seen=now, indexed_at=now, content_hash=f"v1-{path}", allowed=readers,
                chunk_count=1), [{"point_id": point_id(path), "doc_id": doc_id(path), "chunk_index": 0, "text_hash": "h"}])
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / f"{SOURCE}.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    return settings, engine


def test_a_healthy_index_scores_full_marks_in_both_modes(tiny):
    settings, _ = tiny
    eval_set = load_eval_set(settings.sync.eval_dir / f"{SOURCE}.jsonl")
    for mode in ("dense", "hybrid"):
        report = evaluate(settings, eval_set, SOURCE, mode)
        assert (report["queries"], report["labelled"], report["negatives"]) == (4, 3, 1)
        # each reader sees at most two documents: the answer is first (dense); hybrid finds it in
        # the top two: with two candidates, RRF ties when dense and keyword ranks disagree, and
        # the embedded Edge engine breaks ties in no fixed order
        assert report["recall_at_10"] == 1.0, mode
        if mode == "dense":
            assert report["recall_at_1"] == report["mrr"] == report["ndcg_at_10"] == 1.0
        else:
            assert report["mrr"] >= 0.5
        assert report["passage_queries"] == 1 and report["passage_hit_rate"] == 1.0
        assert report["acl_violations"] == report["stale_hits"] == 0 and not report["misses"]
        assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"]


def test_acl_violation_and_stale_hits_are_caught_and_fail_the_evaluation(tiny):
    settings, engine = tiny
    with engine.begin() as conn:
        # a revocation the index never got: the state store says the holidays page is staff-only now
        state.update_document(conn, doc_id("pub/holidays.txt"), allowed=json.dumps(["group:staff"]))
        # a deleted document whose point stayed, and a document whose new version the index lacks
        state.delete_document(conn, doc_id("ops/pallets.txt"))
        state.update_document(conn, doc_id("hr/leave.txt"), content_hash="v2")
    report = run_evaluation(settings, SOURCE, mode="dense", run_id="bad")
    # every query's principals may see the holidays page per its payload, none per the state store
    assert report["acl_violations"] == 4
    assert {(v["path"], v["reason"]) for v in report["violations"]} == {
        ("pub/holidays.txt", "the state store's ACL does not let these principals read it")}
    # the deleted document comes back for the two group:ops queries, the old version for group:hr
    assert report["stale_hits"] == 3
    assert sorted((s["id"], s["reason"].split(" (")[0]) for s in report["stale"]) == [
        ("leave", "outdated version"), ("leave-denied", "document deleted"), ("pallets", "document deleted")]
    assert not report["passed"] and len(report["failures"]) == 2
    [stored] = state.eval_history(engine, SOURCE)
    assert stored["run_id"] == "bad" and not stored["passed"] and stored["metrics"]["eval_stale_hits"] == 3.0
    values = metrics.eval_values(engine, SOURCE)
    assert values["eval_acl_violations"] == 4.0 and values["eval_passed"] == 0.0
    prom = (settings.home / "metrics" / f"docsync_{SOURCE}_eval.prom").read_text()
    assert 'docsync_eval_acl_violations{source="tiny"} 4.0' in prom


def test_a_recall_drop_beyond_the_margin_from_the_baseline_fails(tiny):
    settings, engine = tiny
    first = run_evaluation(settings, SOURCE, mode="dense", run_id="good")
    assert first["passed"] and first["baseline_recall_at_10"] is None  # the first run sets the baseline
    with index.open_index(settings) as client:  # the holidays page lost its point: recall@10 2/3
        index.delete_ids(client, settings.collection(), [point_id("pub/holidays.txt")])
    second = run_evaluation(settings, SOURCE, mode="dense", run_id="worse")
    assert second["baseline_recall_at_10"] == 1.0 and second["recall_at_10"] == pytest.approx(2 / 3, abs=1e-4)
    assert not second["passed"] and "more than 5 points below the baseline" in second["failures"][0]
    assert [m["id"] for m in second["misses"]] == ["holidays"]
    assert state.baseline_recall(engine, SOURCE, "dense", second["set_sha"]) == 1.0  # a failed run is no baseline
    assert state.baseline_recall(engine, SOURCE, "hybrid", second["set_sha"]) is None  # per mode


def test_judge_margin():
    report = {"acl_violations": 0, "stale_hits": 0, "recall_at_10": 0.951}
    assert judge(report, 1.0, 5) == []
    assert judge(report | {"recall_at_10": 0.949}, 1.0, 5)
    assert judge(report, None, 5) == []
