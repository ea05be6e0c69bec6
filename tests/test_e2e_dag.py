"""End to end: the real fileshare_sync DAG (`airflow dags test`) over the demo corpus
(digital/scanned/mixed PDFs, DOCX, HTML, Markdown, TXT, an image, corrupt, truncated,
encrypted, empty and fake files, a document without access), on SQLite and on PostgreSQL
(Airflow metadata DB and docsync state store both)."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
import sqlalchemy as sa

from tests.support.airflow_env import AIRFLOW, airflow_env, run_airflow


def read_index(docsync_home, state_url: str | None = None) -> dict:
    from docsync import index, quarantine, state
    from docsync.config import load_settings

    settings = load_settings().with_overrides(home=docsync_home, qdrant_path=docsync_home / "qdrant")
    settings = settings.with_overrides(state_url=state_url or f"sqlite:///{docsync_home / 'state.db'}")
    engine = state.get_engine(settings.state_url)
    with index.open_index(settings) as client:
        points = {str(p.id): p.payload for p in index.scroll_all(client, "docsync_fileshare")}
    runs = state.recent_runs(engine, "fileshare")
    entries = {e["path"]: e for e in quarantine.list_entries(engine)}
    state.get_engine.cache_clear()
    engine.dispose()
    return {"points": points, "runs": runs, "quarantine": entries}


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request, tmp_path):
    """(Airflow metadata DB URL or None for SQLite, docsync state URL or None)."""
    if request.param == "sqlite":
        yield None, None
        return
    pg = request.getfixturevalue("pg_url")  # state store
    admin = sa.create_engine(pg.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    meta_db = f"airflow_t_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{meta_db}"'))
    yield pg.rsplit("/", 1)[0] + f"/{meta_db}", pg
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{meta_db}" WITH (FORCE)'))
    admin.dispose()


def test_fileshare_sync_dag_end_to_end(demo_corpus, tmp_path, backend):
    corpus, manifest = demo_corpus
    root = tmp_path / "share"
    shutil.copytree(corpus, root)
    meta_url, state_url = backend
    extra = {"DOCSYNC_STATE_URL": state_url} if state_url else {}
    env = airflow_env(tmp_path / "airflow", tmp_path / "docsync", root, meta_url, **extra)
    run_airflow(["db", "migrate"], env)
    run_airflow(["dags", "test", "fileshare_sync"], env)

    first = read_index(tmp_path / "docsync", state_url)
    points = first["points"]
    expected = {p: f for p, f in manifest["files"].items() if f["expect"] == "indexed"}
    assert {p["path"] for p in points.values()} == set(expected)
    for payload in points.values():
        assert payload["allowed_principals"] == sorted(expected[payload["path"]]["principals"])
        for key in ("doc_id", "source", "chunk_index", "content_hash", "modified_at", "indexed_at", "text"):
            assert payload.get(key) not in (None, ""), key
    blob = json.dumps(points)
    leaked = [value for value in manifest["pii"] if value in blob]
    assert leaked == [], "labeled PII reached Qdrant payloads"
    for path, phrase in manifest["phrases"].items():
        found = any(phrase.lower() in p["text"].lower() for p in points.values() if p["path"] == path)
        assert found == (path in expected), f"{path}: phrase {'missing' if path in expected else 'leaked'}"
    scanned = [p for p in points.values() if p["path"] == "hr/scans/onboarding-form-scan.pdf"]
    assert scanned and scanned[0]["page"] == 1

    bad = {p: f for p, f in manifest["files"].items() if f["expect"] == "quarantined"}
    assert set(first["quarantine"]) == set(bad)
    for path, f in bad.items():
        entry = first["quarantine"][path]
        assert entry["reason"] and entry["stage"]
        if f["reason_contains"]:
            assert f["reason_contains"] in entry["reason"].lower(), (path, entry["reason"])
        assert not any(value in entry["preview"] + entry["reason"] + entry["error"] for value in manifest["pii"])
    summary = first["runs"][0]["summary"]
    assert first["runs"][0]["status"] == "success"
    assert summary["indexed"] == len(expected) and summary["quarantined"] == len(bad)
    assert summary["ocr_pages"] >= 3 and summary["pii_entities"].get("PERSON", 0) > 0

    if state_url is None:
        output = run_airflow(["dags", "test", "fileshare_sync"], env).stdout
        # nothing changed: the run ends in its plan task, the rest of the DAG is skipped
        assert "starting task_id=plan" in output and "starting task_id=process" not in output
        assert "starting task_id=finalize" not in output
        second = read_index(tmp_path / "docsync", state_url)
        assert second["points"] == first["points"], "a second run over an unchanged share changed the index"
        again = second["runs"][0]["summary"]
        assert again["unchanged"] == len(manifest["files"])
        assert again["indexed"] == again["chunks_embedded"] == again["quarantined"] == 0
        assert {p: e["attempts"] for p, e in second["quarantine"].items()} == {p: 1 for p in bad}
    else:
        reprocess_stale_and_full_resync(root, env, tmp_path, state_url, manifest, first, len(bad))


def reprocess_stale_and_full_resync(
    root, env: dict, tmp_path, state_url: str, manifest: dict, first: dict, quarantined: int
) -> None:
    """Issue 17 through the DAG: a chunk-size change makes every indexed document stale, re-processed
    within the budget; the `full_resync` param finds a file rewritten with the same size and mtime."""
    import os

    path, phrase = "public/product-faq.md", manifest["phrases"]["public/product-faq.md"]
    file = root / path
    stat = file.stat()
    file.write_text(file.read_text().replace(phrase, phrase.upper()))  # same size
    os.utime(file, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    env = env | {"DOCSYNC_CHUNK_TOKENS": "150", "DOCSYNC_REPROCESS_BUDGET": "2"}
    run_airflow(["dags", "test", "fileshare_sync", "-c", json.dumps({"full_resync": True})], env)
    second = read_index(tmp_path / "docsync", state_url)
    summary = second["runs"][0]["summary"]
    assert second["runs"][0]["status"] == "success"
    # The full re-sync also tries the quarantined documents again (none has the hash of an indexed
    # version to compare with); they are quarantined again, as they should be.
    assert summary["modified"] == 1 + quarantined and summary["quarantined"] == quarantined, summary
    assert summary["reprocessed"] == 2, summary
    indexed = first["runs"][0]["summary"]["indexed"]
    assert summary["stale_processing_documents"] == indexed - 3, summary
    assert any(phrase.upper() in p["text"] for p in second["points"].values() if p["path"] == path)
    by_path: dict[str, set] = {}
    for payload in second["points"].values():
        by_path.setdefault(payload["path"], set()).add(payload["text_fp"])
    assert all(len(fps) == 1 for fps in by_path.values()), "a document with points of two processings"
    assert len(set().union(*by_path.values())) == 2  # the old processing and the new one, side by side


@pytest.mark.e2e
def test_a_sync_that_does_not_finish_fails_the_dag_run(tmp_path):
    """freshness_check runs whatever happened (freshness matters most when a sync fails) and is
    the run's only leaf, so it fails the run itself when finalize did not succeed: here the
    embedding changed (another backend), the plan refuses to write and finalize fails."""
    from tests.test_pipeline import make_share, write_doc

    share = make_share(tmp_path / "share", n=3)
    env = airflow_env(tmp_path / "airflow", tmp_path / "docsync", share)
    run_airflow(["db", "migrate"], env)
    run_airflow(["dags", "test", "fileshare_sync"], env)
    write_doc(share, "team0/doc0.txt", ["A changed paragraph of document zero about the budget review."])
    env["DOCSYNC_EMBED_BACKEND"] = "onnx-int8"  # another embedding fingerprint than the index's
    proc = subprocess.run([AIRFLOW, "dags", "test", "fileshare_sync"], env=env, capture_output=True, text=True,
                          timeout=900)
    out = proc.stdout + proc.stderr
    assert "docsync reindex" in out, out[-4000:]  # finalize says what to do
    assert "did not finish (its finalize task: failed)" in out, out[-4000:]
    runs = read_index(tmp_path / "docsync")["runs"]
    assert runs[0]["status"] == "failed" and runs[1]["status"] == "success"
    raw = run_airflow(["dags", "list-runs", "fileshare_sync", "-o", "json"], env).stdout
    listed = json.loads(raw[raw.index("[{"):raw.rindex("}]") + 2])  # after any log lines
    assert sorted(r["state"] for r in listed) == ["failed", "success"], listed


def test_a_run_that_only_deletes_is_finalized(tmp_path):
    """The plan task applies deletes and ACL changes itself; a run with no batch but deletes goes
    on to finalize (its summary, metrics and the collection's Asset) through one empty group."""
    from tests.test_pipeline import make_share

    share = make_share(tmp_path / "share", n=6)  # 1 of 6 deleted: under the mass-deletion guard's 20%
    paths = {f"team{i % 3}/doc{i}.txt" for i in range(6)}
    env = airflow_env(tmp_path / "airflow", tmp_path / "docsync", share)
    run_airflow(["db", "migrate"], env)
    run_airflow(["dags", "test", "fileshare_sync"], env)
    assert {p["path"] for p in read_index(tmp_path / "docsync")["points"].values()} == paths
    (share / "team1/doc1.txt").unlink()
    out = run_airflow(["dags", "test", "fileshare_sync"], env).stdout
    assert "starting task_id=finalize" in out and "starting task_id=freshness_check" in out, out[-4000:]
    after = read_index(tmp_path / "docsync")
    assert {p["path"] for p in after["points"].values()} == paths - {"team1/doc1.txt"}
    assert after["runs"][0]["status"] == "success" and after["runs"][0]["summary"]["deleted"] == 1
