"""docsync.state on both backends (SQLite file and the local PostgreSQL)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from docsync import state

TABLES = {
    "docsync_documents",
    "docsync_chunks",
    "docsync_runs",
    "docsync_metrics",
    "docsync_quarantine",
    "docsync_quarantine_actions",
}


@pytest.fixture()
def engine(state_url):
    return state.get_engine(state_url)


def doc_row(doc_id: str, path: str, source: str = "share", **changes) -> dict:
    row = {
        "doc_id": doc_id,
        "source": source,
        "path": path,
        "size": 1234,
        "mtime_ns": 1_768_467_600_000_000_000,
        "content_hash": "ab" * 32,
        "acl_fingerprint": "0:0:644",
        "allowed": state.dumps(["group:finance"]),
        "denied": state.dumps([]),
        "status": "indexed",
        "chunk_count": 2,
        "doc_meta": state.dumps({"mime": "application/pdf", "pages": 3}),
        "first_seen": state.utcnow(),
        "indexed_at": state.utcnow(),
    }
    row.update(changes)
    return row


def chunk_rows(doc_id: str, n: int, prefix: str | None = None) -> list[dict]:
    prefix = prefix or doc_id
    return [
        {"point_id": f"{prefix}-{i:04d}", "doc_id": doc_id, "chunk_index": i, "text_hash": f"{i:064x}"}
        for i in range(n)
    ]


def test_get_engine_creates_tables_and_is_cached(state_url):
    engine = state.get_engine(state_url)
    assert state.get_engine(state_url) is engine
    assert TABLES <= set(sa.inspect(engine).get_table_names())
    # creating tables again on an existing database is harmless
    state.metadata.create_all(engine)
    assert state.load_documents(engine, "share") == {}


def test_save_and_load_documents(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "finance/a.pdf"), chunk_rows("d1", 3))
        state.save_document(conn, doc_row("d2", "hr/b.docx", size=99), chunk_rows("d2", 1))
        state.save_document(conn, doc_row("o1", "finance/a.pdf", source="other"), [])
    docs = state.load_documents(engine, "share")
    assert set(docs) == {"finance/a.pdf", "hr/b.docx"}
    assert docs["finance/a.pdf"]["doc_id"] == "d1"
    assert docs["hr/b.docx"]["size"] == 99
    assert docs["finance/a.pdf"]["mtime_ns"] == 1_768_467_600_000_000_000  # BigInteger round trip
    assert docs["finance/a.pdf"]["allowed"] == '["group:finance"]'
    assert set(state.load_documents(engine, "other")) == {"finance/a.pdf"}
    assert state.load_documents(engine, "nope") == {}


def test_chunk_ids(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "a.pdf"), chunk_rows("d1", 3))
        state.save_document(conn, doc_row("d2", "b.pdf"), [])
    ids = state.chunk_ids(engine, ["d1", "d2", "unknown"])
    assert ids == {"d1": {"d1-0000", "d1-0001", "d1-0002"}, "d2": set(), "unknown": set()}
    assert state.chunk_ids(engine, []) == {}


def test_chunk_ids_many_documents(engine):
    with engine.begin() as conn:
        for i in range(620):  # more than one IN (...) batch of 500
            state.save_document(conn, doc_row(f"d{i}", f"p{i}.txt"), chunk_rows(f"d{i}", 1))
    ids = state.chunk_ids(engine, [f"d{i}" for i in range(620)])
    assert len(ids) == 620 and all(ids[f"d{i}"] == {f"d{i}-0000"} for i in range(620))


def test_save_document_replaces_row_and_chunks(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "a.pdf"), chunk_rows("d1", 3))
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "a.pdf", size=5, status="quarantined", chunk_count=0), [])
    docs = state.load_documents(engine, "share")
    assert docs["a.pdf"]["size"] == 5 and docs["a.pdf"]["status"] == "quarantined"
    assert state.chunk_ids(engine, ["d1"])["d1"] == set()


def test_save_document_without_chunk_rows_keeps_chunks(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "a.pdf"), chunk_rows("d1", 2))
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "moved/a.pdf"), None)
    assert set(state.load_documents(engine, "share")) == {"moved/a.pdf"}
    assert state.chunk_ids(engine, ["d1"])["d1"] == {"d1-0000", "d1-0001"}


def test_save_document_replaces_other_doc_on_same_path(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("old", "shared/report.pdf"), chunk_rows("old", 2))
    with engine.begin() as conn:  # no unique-constraint error on (source, path)
        state.save_document(conn, doc_row("new", "shared/report.pdf"), chunk_rows("new", 1))
    docs = state.load_documents(engine, "share")
    assert list(docs) == ["shared/report.pdf"]
    assert docs["shared/report.pdf"]["doc_id"] == "new"
    assert state.chunk_ids(engine, ["new"])["new"] == {"new-0000"}
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(state.documents)).scalar() == 1


def test_save_document_on_same_path_drops_replaced_docs_chunks(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("old", "shared/report.pdf"), chunk_rows("old", 2))
    with engine.begin() as conn:
        state.save_document(conn, doc_row("new", "shared/report.pdf"), chunk_rows("new", 1))
    assert state.chunk_ids(engine, ["old"])["old"] == set()


def test_delete_document(engine):
    with engine.begin() as conn:
        state.save_document(conn, doc_row("d1", "a.pdf"), chunk_rows("d1", 2))
        state.save_document(conn, doc_row("d2", "b.pdf"), chunk_rows("d2", 2))
    with engine.begin() as conn:
        state.delete_document(conn, "d1")
        state.delete_document(conn, "not-there")
    assert set(state.load_documents(engine, "share")) == {"b.pdf"}
    assert state.chunk_ids(engine, ["d1", "d2"]) == {"d1": set(), "d2": {"d2-0000", "d2-0001"}}


def test_rolled_back_transaction_leaves_no_trace(engine):
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            state.save_document(conn, doc_row("d1", "a.pdf"), chunk_rows("d1", 2))
            raise RuntimeError("crash before commit")
    assert state.load_documents(engine, "share") == {}
    assert state.chunk_ids(engine, ["d1"])["d1"] == set()


# --- runs -------------------------------------------------------------------------------


def test_runs_lifecycle(engine):
    assert state.last_success(engine, "share") is None
    assert state.recent_runs(engine) == []
    before = datetime.now(UTC) - timedelta(seconds=1)

    state.start_run(engine, "run-1", "share")
    state.start_run(engine, "run-1", "share")  # idempotent (task retries)
    runs = state.recent_runs(engine, "share")
    assert [r["run_id"] for r in runs] == ["run-1"]
    assert runs[0]["status"] == "running" and runs[0]["finished_at"] is None and runs[0]["summary"] == {}
    assert state.last_success(engine, "share") is None

    state.finish_run(engine, "run-1", "success", {"counts": {"new": 3}}, {"docs_new": 3, "lag_s": 1.5})
    last = state.last_success(engine, "share")
    assert last is not None and last.tzinfo is not None
    assert before <= last <= datetime.now(UTC) + timedelta(seconds=1)
    run = state.recent_runs(engine, "share")[0]
    assert run["status"] == "success" and run["summary"] == {"counts": {"new": 3}}

    with engine.connect() as conn:
        metrics = {r.name: (r.value, r.source) for r in conn.execute(sa.select(state.metric_points))}
    assert metrics == {"docs_new": (3.0, "share"), "lag_s": (1.5, "share")}

    # finishing again replaces the run's metrics instead of duplicating them
    state.finish_run(engine, "run-1", "success", {"counts": {"new": 3}}, {"docs_new": 4})
    with engine.connect() as conn:
        assert [(r.name, r.value) for r in conn.execute(sa.select(state.metric_points))] == [("docs_new", 4.0)]


def test_failed_runs_do_not_count_as_success(engine):
    state.start_run(engine, "ok", "share")
    state.finish_run(engine, "ok", "success", {}, {})
    first = state.last_success(engine, "share")
    time.sleep(0.01)
    state.start_run(engine, "bad", "share")
    state.finish_run(engine, "bad", "failed", {"error": "boom"}, {})
    assert state.last_success(engine, "share") == first
    time.sleep(0.01)
    state.start_run(engine, "ok2", "share")
    state.finish_run(engine, "ok2", "success", {}, {})
    assert state.last_success(engine, "share") > first


def test_recent_runs_newest_first_and_filtered(engine):
    for i, source in enumerate(["share", "other", "share", "share"]):
        state.start_run(engine, f"run-{i}", source)
        time.sleep(0.01)
    state.start_run(engine, "other-only", "other")
    assert [r["run_id"] for r in state.recent_runs(engine, "share")] == ["run-3", "run-2", "run-0"]
    assert [r["run_id"] for r in state.recent_runs(engine, "share", limit=2)] == ["run-3", "run-2"]
    assert [r["run_id"] for r in state.recent_runs(engine)][:2] == ["other-only", "run-3"]
    assert {r["run_id"] for r in state.recent_runs(engine, "other")} == {"run-1", "other-only"}
    assert state.last_success(engine, "other") is None


def test_finish_unknown_run_uses_summary_source(engine):
    state.finish_run(engine, "ghost", "success", {"source": "share"}, {"x": 1})
    with engine.connect() as conn:
        row = conn.execute(sa.select(state.metric_points)).one()
    assert (row.run_id, row.source, row.value) == ("ghost", "share", 1.0)


def test_as_utc():
    naive = datetime(2026, 1, 15, 9, 0)
    assert state.as_utc(naive) == naive.replace(tzinfo=UTC)
    aware = datetime(2026, 1, 15, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    assert state.as_utc(aware) is aware
    assert state.as_utc(None) is None


def test_parts_of_containers_are_kept_apart_from_listed_documents(engine):
    """Attachments/archive members (parent_id set): not listed by load_documents, found by
    children_of / parents_of, and a listed file named like a part never collides with it."""
    with engine.begin() as conn:
        state.save_document(conn, doc_row("zip", "a.zip"), [])
        state.save_document(conn, doc_row("member", "a.zip#b.txt", parent_id="zip"), [])
        state.save_document(conn, doc_row("odd", "a.zip#b.txt"), [])  # a real file with that name
    assert set(state.load_documents(engine, "share")) == {"a.zip", "a.zip#b.txt"}
    assert state.load_documents(engine, "share")["a.zip#b.txt"]["doc_id"] == "odd"
    with engine.connect() as conn:
        assert set(state.children_of(conn, ["zip"])) == {"member"}
    assert state.parents_of(engine, ["member", "odd", "zip"]) == {"member": "zip"}
    with engine.begin() as conn:
        state.update_document(conn, "member", path="moved.zip#b.txt")
        state.update_document(conn, "odd", path="moved.zip#b.txt")  # no collision after a move either
    with engine.connect() as conn:
        assert state.children_of(conn, ["zip"])["member"]["path"] == "moved.zip#b.txt"


def test_the_write_lock_holds_other_processes_off_until_its_holder_dies(state_url, tmp_path):
    """One writer per collection across processes (state.writer_lock: what serialises the
    process tasks' writes into a Qdrant server): a second process waits while the first holds
    it, another collection's lock is free meanwhile, and SIGKILL of the holder releases it."""
    import os
    import signal
    import subprocess
    import sys
    import threading
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    held = tmp_path / "held"
    code = (
        "import sys, time; from pathlib import Path; from docsync import state\n"
        "with state.writer_lock(state.get_engine(sys.argv[1]), 'docsync_share'):\n"
        "    Path(sys.argv[2]).touch(); time.sleep(300)\n"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(repo / "include"), str(repo)])}
    holder = subprocess.Popen([sys.executable, "-c", code, state_url, str(held)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not held.exists():
            assert holder.poll() is None and time.monotonic() < deadline, "the holder did not take the lock"
            time.sleep(0.05)
        engine = state.get_engine(state_url)
        with state.writer_lock(engine, "docsync_other"):  # another collection: not blocked
            pass
        acquired = threading.Event()

        def take() -> None:
            with state.writer_lock(engine, "docsync_share"):
                acquired.set()

        waiter = threading.Thread(target=take, daemon=True)
        waiter.start()
        assert not acquired.wait(1.5), "a second writer took a held lock"
        os.kill(holder.pid, signal.SIGKILL)
        assert acquired.wait(30), "the lock of a killed holder was not released"
        waiter.join(5)
    finally:
        holder.kill()
        holder.wait()
