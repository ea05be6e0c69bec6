"""Incremental sync semantics of the pipeline (the functions the DAG tasks call), on real
embeddings, embedded Qdrant and both state-store backends."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from docsync import index, quarantine, state
from docsync.embed import EmbeddingCounter
from docsync.pipeline import run_sync
from docsync.sources import SourceUnavailable
from docsync.steps.plan import MassDeletionBlocked
from docsync.steps.reconcile import reconcile

TOPICS = [
    "The quarterly budget review covers cloud spending, vendor contracts and hiring plans for the data team.",
    "Our incident process starts with a page to the on-call engineer, who opens a channel and writes a timeline.",
    "Warehouse operations track inbound pallets, dock scheduling and the accuracy of cycle counts every week.",
    "The onboarding checklist includes laptop setup, security training and a meeting with the team lead.",
    "Marketing campaigns are measured by qualified leads, conversion to trial and cost per acquisition.",
]


def write_doc(root: Path, rel: str, paragraphs: list[str], allow: list[str] | None = ("group:staff",)) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n\n".join(paragraphs) + "\n")
    if allow is not None:
        Path(f"{path}.acl.json").write_text(json.dumps({"allow": list(allow)}))
    return path


def make_share(root: Path, n: int = 10) -> Path:
    for i in range(n):
        paragraphs = [f"Document number {i} of the shared drive."] + [
            f"{TOPICS[(i + k) % len(TOPICS)]} Section {k} of document {i}." for k in range(3)
        ]
        write_doc(root, f"team{i % 3}/doc{i}.txt", paragraphs)
    return root


def snapshot(settings) -> dict:
    """What is in Qdrant and in the state store, and whether they agree."""
    engine = state.get_engine(settings.state_url)
    with index.open_index(settings) as client:
        points = list(index.scroll_all(client, settings.collection()))
    with engine.connect() as conn:
        chunk_rows = conn.execute(sa.select(state.chunks.c.point_id, state.chunks.c.doc_id)).all()
        docs = {r.path: dict(r._mapping) for r in conn.execute(sa.select(state.documents))}
    return {
        "points": {str(p.id): p.payload for p in points},
        "state_points": {r.point_id for r in chunk_rows},
        "docs": docs,
        "paths": Counter(p.payload["path"] for p in points),
    }


def assert_consistent(snap: dict) -> None:
    assert set(snap["points"]) == snap["state_points"], "Qdrant and state store disagree"
    for payload in snap["points"].values():
        assert payload["allowed_principals"], "a point without access metadata"
    indexed = {path for path, d in snap["docs"].items() if d["status"] == "indexed"}
    assert set(snap["paths"]) == indexed
    for path, count in snap["paths"].items():
        assert count == snap["docs"][path]["chunk_count"], f"{path}: duplicate or missing chunks"


@pytest.fixture()
def share(tmp_path) -> Path:
    return make_share(tmp_path / "share")


def test_initial_load_then_no_change_costs_no_embedding(share, settings, state_url):
    settings = settings.replace(state_url=state_url)
    first = run_sync(settings, root=str(share))
    assert first["indexed"] == 10 and first["quarantined"] == 0
    assert first["chunks_embedded"] == first["chunks"] > 0
    before = EmbeddingCounter.texts
    second = run_sync(settings, root=str(share))
    assert second["unchanged"] == 10
    assert second["indexed"] == second["chunks_embedded"] == 0
    assert EmbeddingCounter.texts == before, "a no-change re-sync must not embed anything"
    snap = snapshot(settings)
    assert_consistent(snap)
    assert len(snap["points"]) == first["chunks"]


def test_modified_document_reembeds_only_changed_chunks(share, settings):
    big = [f"{TOPICS[k % 5]} Paragraph {k} explains the details at length. " * 6 for k in range(8)]
    path = write_doc(share, "team0/long.txt", big)
    first = run_sync(settings, root=str(share))
    doc_chunks = snapshot(settings)["paths"]["team0/long.txt"]
    assert doc_chunks >= 3
    path.write_text("\n\n".join(big + ["A brand new closing paragraph about the retention policy."]) + "\n")
    second = run_sync(settings, root=str(share))
    assert second["modified"] == 1 and second["indexed"] == 1
    assert 0 < second["chunks_embedded"] < doc_chunks
    assert second["chunks_reused"] >= doc_chunks - 1
    snap = snapshot(settings)
    assert_consistent(snap)
    texts = [p["text"] for p in snap["points"].values() if p["path"] == "team0/long.txt"]
    assert any("retention policy" in t for t in texts)
    assert first["indexed"] == 11


def test_acl_only_change_updates_payload_without_embedding(share, settings):
    run_sync(settings, root=str(share))
    Path(share / "team1/doc1.txt.acl.json").write_text(json.dumps({"allow": ["group:legal"], "deny": ["user:eve"]}))
    before = EmbeddingCounter.texts
    summary = run_sync(settings, root=str(share))
    assert summary["acl_updated"] == 1 and summary["chunks_embedded"] == 0
    assert EmbeddingCounter.texts == before
    snap = snapshot(settings)
    assert_consistent(snap)
    payloads = [p for p in snap["points"].values() if p["path"] == "team1/doc1.txt"]
    assert payloads and all(p["allowed_principals"] == ["group:legal"] for p in payloads)
    assert all(p["denied_principals"] == ["user:eve"] for p in payloads)
    with index.open_index(settings) as client:
        from docsync.embed import embed_texts

        vector = embed_texts(["quarterly budget review"])[0]
        legal = index.search(client, settings.collection(), vector, ["group:legal"], limit=20)
        eve = index.search(client, settings.collection(), vector, ["group:legal", "user:eve"], limit=20)
    assert {h.payload["path"] for h in legal} == {"team1/doc1.txt"}
    assert eve == []


def test_access_removed_quarantines_and_removes_points_then_fix_restores(share, settings):
    run_sync(settings, root=str(share))
    sidecar = share / "team2/doc2.txt.acl.json"
    sidecar.write_text(json.dumps({"allow": []}))
    summary = run_sync(settings, root=str(share))
    assert summary["quarantined"] == 1
    snap = snapshot(settings)
    assert "team2/doc2.txt" not in snap["paths"]
    assert_consistent(snap)
    entries = quarantine.list_entries(state.get_engine(settings.state_url))
    assert [(e["path"], e["stage"]) for e in entries] == [("team2/doc2.txt", "access")]
    sidecar.write_text(json.dumps({"allow": ["group:staff"]}))
    fixed = run_sync(settings, root=str(share))
    assert fixed["indexed"] == 1
    assert "team2/doc2.txt" in snapshot(settings)["paths"]
    assert quarantine.list_entries(state.get_engine(settings.state_url)) == []


def test_move_keeps_vectors_and_updates_path(share, settings):
    run_sync(settings, root=str(share))
    old = snapshot(settings)
    ids_before = {pid for pid, p in old["points"].items() if p["path"] == "team0/doc0.txt"}
    (share / "archive").mkdir()
    shutil.move(share / "team0/doc0.txt", share / "archive/doc0-renamed.txt")
    shutil.move(share / "team0/doc0.txt.acl.json", share / "archive/doc0-renamed.txt.acl.json")
    before = EmbeddingCounter.texts
    summary = run_sync(settings, root=str(share))
    assert summary["moved"] == 1 and summary["deleted"] == 0 and summary["chunks_embedded"] == 0
    assert EmbeddingCounter.texts == before
    snap = snapshot(settings)
    assert_consistent(snap)
    moved = {pid for pid, p in snap["points"].items() if p["path"] == "archive/doc0-renamed.txt"}
    assert moved == ids_before


def test_deleted_documents_are_removed(share, settings):
    run_sync(settings, root=str(share))
    (share / "team1/doc4.txt").unlink()
    summary = run_sync(settings, root=str(share))
    assert summary["deleted"] == 1
    snap = snapshot(settings)
    assert "team1/doc4.txt" not in snap["paths"] and "team1/doc4.txt" not in snap["docs"]
    assert_consistent(snap)


def test_touch_without_content_change_is_cheap(share, settings):
    run_sync(settings, root=str(share))
    os.utime(share / "team0/doc3.txt", ns=(1_800_000_000_000_000_000, 1_800_000_000_000_000_000))
    summary = run_sync(settings, root=str(share))
    assert summary["modified"] == 0 and summary["chunks_embedded"] == 0
    assert snapshot(settings)["docs"]["team0/doc3.txt"]["mtime_ns"] == 1_800_000_000_000_000_000


def test_mass_deletion_guard_changes_nothing(share, settings):
    run_sync(settings, root=str(share))
    before = snapshot(settings)
    for i in range(5):
        (share / f"team{i % 3}/doc{i}.txt").unlink()
    with pytest.raises(MassDeletionBlocked, match="5 of 10 known documents would be deleted"):
        run_sync(settings, root=str(share))
    assert snapshot(settings)["points"].keys() == before["points"].keys()
    allowed = run_sync(settings.replace(max_delete_fraction=0.6), root=str(share))
    assert allowed["deleted"] == 5


def test_vanished_or_empty_source_is_an_outage(share, settings, tmp_path):
    run_sync(settings, root=str(share))
    before = snapshot(settings)
    moved_away = tmp_path / "unmounted"
    share.rename(moved_away)
    with pytest.raises(SourceUnavailable, match="missing"):
        run_sync(settings, root=str(share))
    share.mkdir()
    with pytest.raises(SourceUnavailable, match="lists no documents"):
        run_sync(settings, root=str(share))
    assert snapshot(settings)["points"].keys() == before["points"].keys()


def test_retry_from_quarantine_reprocesses_unchanged_document(share, settings):
    settings = settings.replace(ocr_min_confidence=101)  # every OCR'd document fails validation
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("L", (1400, 300), 255)
    ImageDraw.Draw(image).text((40, 100), "Shipping schedule for the spring catalogue", fill=0,
                               font=ImageFont.load_default(size=48))
    image.save(share / "scan.png")
    Path(f"{share / 'scan.png'}.acl.json").write_text(json.dumps({"allow": ["group:ops"]}))
    first = run_sync(settings, root=str(share))
    assert first["quarantined"] == 1
    engine = state.get_engine(settings.state_url)
    [entry] = quarantine.list_entries(engine)
    assert entry["stage"] == "validate" and "OCR confidence" in entry["reason"]
    assert run_sync(settings, root=str(share))["retried"] == 0  # unchanged: not retried by itself
    quarantine.act(engine, entry["id"], "retry", actor="reviewer")
    again = run_sync(settings, root=str(share))
    assert again["retried"] == 1 and again["quarantined"] == 1
    assert quarantine.get_entry(engine, entry["id"])["attempts"] == 2
    quarantine.act(engine, entry["id"], "release", actor="reviewer", note="scan checked by hand")
    released = run_sync(settings, root=str(share))
    assert released["indexed"] == 1
    assert quarantine.get_entry(engine, entry["id"])["status"] == "resolved"
    assert [h["action"] for h in quarantine.history(engine, entry["id"])] == ["retry", "release"]


def test_reconcile_repairs_drift(share, settings):
    run_sync(settings, root=str(share))
    snap = snapshot(settings)
    victim = next(pid for pid, p in snap["points"].items() if p["path"] == "team1/doc7.txt")
    with index.open_index(settings) as client:
        index.delete_ids(client, settings.collection(), [victim])
        index.upsert(
            client,
            settings.collection(),
            [("00000000-0000-0000-0000-000000000001", [0.1] * 384, {"doc_id": "ghost", "allowed_principals": ["everyone"]})],
        )
    report = reconcile(settings)
    assert report == {"orphan_points_deleted": 1, "documents_to_reindex": 1}
    summary = run_sync(settings, root=str(share))
    assert summary["modified"] == 1 and summary["indexed"] == 1
    assert_consistent(snapshot(settings))


def test_parallel_workers_index_the_same_points(share, settings, tmp_path, monkeypatch):
    """run_sync(workers=2): batches processed in two worker processes, indexed in plan order,
    with exactly the points a sequential run produces."""
    from docsync import pipeline

    monkeypatch.setattr(pipeline, "WORKER_BATCHES", 1)  # 4 batches: two slices, fresh workers for each
    parallel = run_sync(settings.replace(batch_size=3), root=str(share), workers=2)
    assert parallel["indexed"] == 10 and parallel["quarantined"] == 0
    snap = snapshot(settings)
    assert_consistent(snap)
    home = tmp_path / "sequential-home"
    sequential = settings.replace(home=home, state_url=f"sqlite:///{home / 'state.db'}", qdrant_path=home / "qdrant",
                         staging_dir=str(home / "staging"))
    run_sync(sequential, root=str(share))
    assert set(snapshot(sequential)["points"]) == set(snap["points"])
    assert run_sync(settings, root=str(share), workers=2)["unchanged"] == 10


def test_cli_finalize_runs_the_canary_and_data_docs_in_a_batch_worker(share, settings):
    """run_sync(workers=2) from a fresh process: the canary searched and the run's GX Data Docs
    were built, yet the runner's own process never imported GX nor loaded the embedder (both
    ran in a batch worker that had them loaded; issue 15: ~8 s a CLI run no longer pays)."""
    import json
    import os
    import subprocess
    import sys

    from tests.support import REPO

    code = (
        "import json, sys; from docsync.config import load_settings; from docsync.pipeline import run_sync; "
        f"s = run_sync(load_settings(), root={str(share)!r}, workers=2); "
        "print(json.dumps({'canary': s.get('canary_samples'), 'hits': s.get('canary_hits'), "
        "'gx': 'great_expectations' in sys.modules, "
        "'embedder': any(m in sys.modules for m in ('onnxruntime', 'sentence_transformers'))}))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["canary"] and found["hits"] == found["canary"], found
    assert not found["gx"] and not found["embedder"], found
    from docsync import data_docs

    assert data_docs.index_page(settings, settings.source.name).exists()


def test_reconcile_runs_only_when_due(share, settings):
    """No-change runs skip the full check unless a run did not finish or the interval passed."""
    first = run_sync(settings, root=str(share))
    assert first["reconcile"]["reason"] == "never reconciled" and first["reconcile"]["scope"] == "full"
    assert "skipped" in run_sync(settings, root=str(share))["reconcile"]
    engine = state.get_engine(settings.state_url)
    with index.open_index(settings) as client:  # drift a no-change run does not look for
        index.upsert(client, settings.collection(),
                     [("00000000-0000-0000-0000-000000000002", [0.1] * 384, {"doc_id": "ghost"})])
    state.start_run(engine, "killed-run", settings.source.name)  # a run that never finished
    report = run_sync(settings, root=str(share))["reconcile"]
    assert report["reason"] == "run killed-run did not finish" and report["orphan_points_deleted"] == 1
    assert "skipped" in run_sync(settings, root=str(share))["reconcile"]  # checked since
    every_run = settings.replace(reconcile_interval_h=0)
    assert run_sync(every_run, root=str(share))["reconcile"]["orphan_points_deleted"] == 0
    with engine.begin() as conn:  # the last full check is older than the interval
        conn.execute(sa.delete(state.runs).where(state.runs.c.run_id == "killed-run"))
        conn.execute(sa.update(state.sources).values(last_reconciled_at=state.utcnow().replace(year=2020)))
    assert run_sync(settings, root=str(share))["reconcile"]["reason"].startswith("last full check 2020-")
    assert_consistent(snapshot(settings))


def test_a_run_that_changed_the_index_checks_only_its_documents(share, settings):
    """After the first full check, a finished run that changed the index checks the documents
    it touched and their parts, not the whole collection (drift elsewhere waits for the full
    check: an unfinished run or the interval)."""
    run_sync(settings, root=str(share))
    (share / "team1" / "doc7.txt").write_text("Revised policy text for the warehouse team, second edition.\n" * 20)
    (share / "team1" / "doc4.txt").unlink()
    ghost = "00000000-0000-0000-0000-000000000003"
    with index.open_index(settings) as client:  # drift outside this run's documents
        index.upsert(client, settings.collection(), [(ghost, [0.1] * 384, {"doc_id": "ghost", "path": "ghost.txt"})])
    report = run_sync(settings, root=str(share))["reconcile"]
    assert report["scope"] == "the run's documents" and report["reason"] == "the run changed the index"
    assert report["documents_checked"] == 2 and report["orphan_points_deleted"] == 0
    assert ghost in snapshot(settings)["points"]  # not this run's: the full check's
    engine = state.get_engine(settings.state_url)
    with engine.begin() as conn:
        conn.execute(sa.update(state.sources).values(last_reconciled_at=state.utcnow().replace(year=2020)))
    assert run_sync(settings, root=str(share))["reconcile"]["orphan_points_deleted"] == 1
    assert_consistent(snapshot(settings))


def test_reconcile_documents_repairs_the_touched_documents_and_their_parts(share, settings):
    from docsync.steps.reconcile import reconcile_documents

    run_sync(settings, root=str(share))
    snap = snapshot(settings)
    doc7 = next(p["doc_id"] for p in snap["points"].values() if p["path"] == "team1/doc7.txt")
    doc2 = next(p["doc_id"] for p in snap["points"].values() if p["path"] == "team2/doc2.txt")
    victim = next(pid for pid, p in snap["points"].items() if p["doc_id"] == doc7)
    stray_part = "00000000-0000-0000-0000-000000000004"  # a part of doc7 the state store does not know
    elsewhere = next(pid for pid, p in snap["points"].items() if p["doc_id"] == doc2)
    with index.open_index(settings) as client:
        index.delete_ids(client, settings.collection(), [victim, elsewhere])
        index.upsert(client, settings.collection(),
                     [(stray_part, [0.1] * 384, {"doc_id": f"{doc7}-gone", "parent_id": doc7})])
    report = reconcile_documents(settings, settings.source.name, {doc7})
    assert report == {"orphan_points_deleted": 1, "documents_to_reindex": 1, "documents_checked": 1}
    points = snapshot(settings)["points"]
    assert stray_part not in points
    with state.get_engine(settings.state_url).connect() as conn:
        assert state.get_document(conn, doc7)["content_hash"] == ""  # re-processed by the next run
        assert state.get_document(conn, doc2)["content_hash"] != ""  # not checked: left to the full check


KILL_POINTS = ["process:after_embed", "write:after_upsert", "write:before_state_commit", "updates:after_qdrant_delete"]


@pytest.mark.parametrize("kill_at", KILL_POINTS)
def test_sigkill_at_any_point_then_rerun_converges(share, settings, kill_at, tmp_path):
    """Kill a real `docsync sync` process with SIGKILL mid-run; the re-run must repair everything.
    Killed after its updates step, the run has already applied its deletions and ACL-only
    changes: no bad document or crashed batch can hold back a revocation."""
    run_sync(settings, root=str(share))
    write_doc(share, "team0/doc0.txt", ["Rewritten: the vendor contract now renews every two years."])
    (share / "team2/doc5.txt").unlink()
    (share / "team1/doc1.txt.acl.json").write_text(json.dumps({"allow": ["group:legal"]}))  # a revocation
    write_doc(share, "new/added.txt", ["A new policy on travel expenses and per diem rates."])
    env = os.environ | {"DOCSYNC_HOME": str(settings.home), "DOCSYNC_KILL_AT": kill_at, "DOCSYNC_BATCH_SIZE": "1"}
    cli = [sys.executable, "-m", "docsync.cli", "sync", "--root", str(share)]
    killed = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    if not kill_at.startswith("updates:"):  # killed while processing or writing
        snap = snapshot(settings)
        assert "team2/doc5.txt" not in snap["paths"]
        doc1 = [p for p in snap["points"].values() if p["path"] == "team1/doc1.txt"]
        assert doc1 and all(p["allowed_principals"] == ["group:legal"] for p in doc1)
    # The re-run in this process (its models are loaded): what it repairs is the killed run's state.
    run_sync(settings.replace(batch_size=1), root=str(share))
    snap = snapshot(settings)
    assert_consistent(snap)
    assert "team2/doc5.txt" not in snap["paths"] and "new/added.txt" in snap["paths"]
    texts = [p["text"] for p in snap["points"].values() if p["path"] == "team0/doc0.txt"]
    assert texts and all("Rewritten" in t for t in texts)
    assert all(p["allowed_principals"] == ["group:legal"] for p in snap["points"].values() if p["path"] == "team1/doc1.txt")
    assert len(snap["docs"]) == 10


def test_oversized_file_is_quarantined_without_reading(share, settings):
    settings = settings.replace(max_file_bytes=100)
    summary = run_sync(settings, root=str(share))
    assert summary["quarantined"] == 10 and summary["indexed"] == 0
    [entry, *_] = quarantine.list_entries(state.get_engine(settings.state_url))
    assert "DOCSYNC_MAX_FILE_MB" in entry["reason"] and entry["stage"] == "detect"
