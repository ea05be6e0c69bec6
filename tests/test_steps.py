"""The steps' safety properties (issue 13): bounded batches, bounded planning, unbounded paths,
owner-only files, no raw PII in previews (revocations first: the SIGKILL test of test_pipeline.py).
Real embeddings, embedded Qdrant."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from docsync import quarantine, records, state
from docsync.pipeline import run_sync
from docsync.steps.plan import plan
from tests.test_pipeline import assert_consistent, make_share, snapshot, write_doc


@pytest.fixture()
def share(tmp_path) -> Path:
    return make_share(tmp_path / "share")


def test_revocation_lag_is_reported(share, settings):
    run_sync(settings, root=str(share))
    Path(share / "team1/doc1.txt.acl.json").write_text(json.dumps({"allow": ["group:legal"]}))
    summary = run_sync(settings, root=str(share))
    assert summary["acl_updated"] == 1
    assert 0 <= summary["revocation_lag_max_s"] < 60
    assert summary["stage_s"]["updates"] > 0


def test_a_batch_defers_what_does_not_fit_its_time_budget(share, settings):
    """25 documents x 600 s per document exceeded the task's 3 h timeout: a batch now has its own
    budget; documents past it are deferred (not quarantined, not lost) and the next run takes them."""
    from docsync import pii
    from docsync.embed import get_model

    pii.get_analyzer(), get_model()  # loading models is not the documents' time
    tight = settings.replace(batch_budget_s=1e-6)  # spent before the first document is done
    summary = run_sync(tight, root=str(share))
    assert summary["deferred"] == 10 and summary["indexed"] == 0
    assert summary["quarantined"] == 0 and not quarantine.list_entries(state.get_engine(settings.state_url))
    follow_up = run_sync(settings, root=str(share))
    assert follow_up["indexed"] == summary["deferred"]
    assert_consistent(snapshot(settings))


def test_plan_never_reads_a_huge_file_whole(share, settings, tmp_path):
    """An indexed file that grows to gigabytes (sparse here) is neither read into memory nor hashed
    past DOCSYNC_MAX_FILE_MB by the plan; the process step quarantines it without reading it."""
    run_sync(settings, root=str(share))
    with open(share / "team0/doc0.txt", "r+b") as fh:
        fh.truncate(3 * 2**30)
    code = (
        "import json, re; from docsync.config import load_settings; from docsync.steps.plan import plan; "
        f"ref = plan(load_settings(), 'big-run', {str(share)!r}); "
        # VmHWM: this process's peak RSS (ru_maxrss would include the forking pytest process's)
        "peak = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); "
        "print(json.dumps({'rss_kib': peak, 'modified': ref.counts.modified}))"
    )
    env = os.environ | {"DOCSYNC_HOME": str(settings.home)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["modified"] == 1 and result["rss_kib"] < 1024 * 1024, result
    summary = run_sync(settings, root=str(share))
    [entry] = quarantine.list_entries(state.get_engine(settings.state_url))
    assert summary["quarantined"] == 1 and entry["stage"] == "detect" and "DOCSYNC_MAX_FILE_MB" in entry["reason"]


def test_paths_longer_than_2048_characters_are_indexed(tmp_path, settings, state_url):
    """PostgreSQL stored paths in VARCHAR(2048): a deeper path failed every run."""
    settings = settings.replace(state_url=state_url)
    root = make_share(tmp_path / "share", n=2)
    deep = "/".join(f"{'d' * 200}{i}" for i in range(11))  # 2,200+ characters
    write_doc(root, f"{deep}/policy.txt", ["The travel policy covers trains, hotels and per diem rates."])
    summary = run_sync(settings, root=str(root))
    assert summary["indexed"] == 3 and summary["quarantined"] == 0
    assert run_sync(settings, root=str(root))["unchanged"] == 3
    assert_consistent(snapshot(settings))


def test_state_staging_and_embedded_index_are_owner_only(share, settings):
    run_sync(settings, root=str(share), cleanup=False)
    db = Path(settings.state_url.split("///", 1)[1])
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(settings.staging_dir).stat().st_mode) == 0o700
    assert stat.S_IMODE(settings.qdrant.path.stat().st_mode) == 0o700


def test_plan_records_round_trip(share, settings):
    """What the plan stages reads back as the same typed records (the contract between tasks)."""
    ref = plan(settings, "run-records", str(share))
    staged = records.read_plan(ref.plan)
    assert staged.to_json() == records.Plan.from_json(json.loads(json.dumps(staged.to_json()))).to_json()
    assert staged.batches == ref.batches and staged.counts.new == 10
    batch = records.read_batch(ref.batches[0])
    assert batch.source == settings.source.name and batch.root == str(share)
    assert {i.kind for i in batch.items} == {records.WorkKind.NEW}


def test_the_plan_spreads_a_small_heavy_run_over_the_workers(tmp_path, settings):
    """Six scanned images (under one batch of 25) are staged as twice the batches the deployment
    processes at once, not one batch for one worker; 30 small texts stay in batches of 25."""
    heavy = tmp_path / "scans"
    for i in range(6):
        (heavy / "scans").mkdir(parents=True, exist_ok=True)
        (heavy / "scans" / f"page{i}.tif").write_bytes(os.urandom(2**20))
    parallel = settings.replace(process_parallelism=2)
    assert len(plan(parallel, "run-heavy", str(heavy)).batches) == 4
    light = tmp_path / "texts"
    for i in range(30):
        write_doc(light, f"t/doc{i}.txt", [f"Note {i} about the quarterly review."])
    assert len(plan(parallel.replace(source_name="texts"), "run-light", str(light)).batches) == 2


def test_a_document_the_state_store_refuses_is_quarantined_alone(tmp_path, settings, pg_url):
    """A per-document database error (here a real PostgreSQL trigger refusing one path) quarantines
    that document at stage index; the rest of its batch is written and the run succeeds."""
    import sqlalchemy as sa

    settings = settings.replace(state_url=pg_url)
    root = make_share(tmp_path / "share", n=4)
    write_doc(root, "team0/poison.txt", ["The retention policy keeps invoices for seven years."])
    engine = state.get_engine(pg_url)
    with engine.begin() as conn:
        conn.execute(sa.text(
            "CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN "
            "IF NEW.path LIKE '%poison%' AND NEW.status = 'indexed' THEN RAISE EXCEPTION 'refused by policy'; END IF; "
            "RETURN NEW; END $$ LANGUAGE plpgsql"
        ))
        conn.execute(sa.text(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON docsync_documents FOR EACH ROW EXECUTE FUNCTION refuse_poison()"
        ))
    summary = run_sync(settings, root=str(root))
    assert summary["indexed"] == 4 and summary["quarantined"] == 1
    [entry] = quarantine.list_entries(engine)
    assert entry["path"] == "team0/poison.txt" and entry["stage"] == "index" and "state store" in entry["reason"]
    assert_consistent(snapshot(settings))


def test_file_names_that_are_not_utf8_are_left_out_not_fatal(tmp_path, settings, caplog):
    """A legacy-encoded file name on a local share crashed the whole plan; it is now left out with a
    warning that names it (it cannot be stored, shown or searched as text)."""
    root = make_share(tmp_path / "share", n=2)
    (root / "team0").mkdir(exist_ok=True)
    os.makedirs(os.fsencode(root / "team0"), exist_ok=True)
    with open(os.fsencode(root / "team0") + b"/caf\xe9.txt", "w") as fh:
        fh.write("The travel policy covers trains, hotels and per diem rates.\n")
    with open(os.fsencode(root / "team0") + b"/caf\xe9.txt.acl.json", "w") as fh:
        fh.write(json.dumps({"allow": ["group:staff"]}))
    summary = run_sync(settings, root=str(root))
    assert summary["seen"] == 2 and summary["indexed"] == 2
    assert any("caf\\xe9.txt is not valid UTF-8" in r.getMessage() for r in caplog.records)


def test_quarantine_preview_only_when_no_pii_survived(share, settings):
    """The reviewer's preview is anonymized text, and none at all when the fail-closed re-scan
    found personal data anonymization missed (before, the raw text went into the preview)."""
    from docsync.parse import Block, ParsedDocument
    from docsync.steps.process import PreparedDocument, _preview

    text = "Contact alice.admin@corp.internal about the ticket."
    parsed = ParsedDocument(mime="text/plain", blocks=[Block(text)])

    def prepared(hits: int) -> PreparedDocument:
        return PreparedDocument("h", ["group:staff"], [], parsed, {}, hits, text)

    assert _preview(prepared(1)) == ""
    assert _preview(prepared(0)) == text
    assert _preview(None) == ""


def test_changing_principal_domains_updates_every_documents_access(tmp_path, settings, monkeypatch):
    """DOCSYNC_PRINCIPAL_DOMAINS changes how principals are spelled: the next run re-reads every
    document's access (ACL-only updates, no embedding) so the index never keeps spellings the
    query side no longer produces (a deny entry that stops matching would let access through)."""
    root = make_share(tmp_path / "share", n=3)
    write_doc(root, "team0/upn.txt", ["The hiring plan for the data team."], allow=["user:bob@corp.example"])
    run_sync(settings, root=str(root))
    before = {p["path"]: p["allowed_principals"] for p in snapshot(settings)["points"].values()}
    assert before["team0/upn.txt"] == ["user:bob@corp.example"]
    monkeypatch.setenv("DOCSYNC_PRINCIPAL_DOMAINS", "corp.example")
    summary = run_sync(settings, root=str(root))
    assert summary["acl_updated"] == 4 and summary["chunks_embedded"] == 0
    after = {p["path"]: p["allowed_principals"] for p in snapshot(settings)["points"].values()}
    assert after["team0/upn.txt"] == ["user:bob"]
    assert run_sync(settings, root=str(root))["unchanged"] == 4


def test_batches_are_cut_by_estimated_work_not_by_count():
    """Issue 14 item 3: a 600-page PDF among small texts no longer shares a batch of 25 with 24
    others while another batch holds only texts: it has a batch to itself (the heaviest, first),
    the others are balanced by estimated work, each in plan order, none over 25 documents."""
    from docsync.records import WorkItem, WorkKind
    from docsync.sources import SourceEntry
    from docsync.steps.plan import estimated_work, work_batches

    def item(i: int, path: str, size: int) -> WorkItem:
        return WorkItem(f"d{i:03d}", SourceEntry(path, size, 0, ""), WorkKind.NEW)

    work = [item(i, f"t/doc{i}.txt", 3_000) for i in range(48)]
    work[5] = item(5, "big/report.pdf", 40 * 2**20)
    work[30] = item(30, "scan/ledger.tif", 2 * 2**20)
    batches = work_batches(work, 25)
    assert len(batches) == 3 and sorted(i.doc_id for b in batches for i in b) == sorted(i.doc_id for i in work)
    assert batches[0] == (work[5],)  # the huge PDF alone, first
    for batch in batches:
        assert len(batch) <= 25 and list(batch) == sorted(batch, key=lambda i: i.doc_id)

    even = [item(i, f"t/doc{i}.md", 1_000 + 100 * (i % 7)) for i in range(100)]
    loads = [sum(estimated_work(i.entry) for i in b) for b in work_batches(even, 25)]
    fair = sum(loads) / len(loads)
    assert len(loads) == 4 and max(loads) <= fair + max(estimated_work(i.entry) for i in even)
    assert work_batches([], 25) == []


def test_heavy_work_is_spread_over_the_workers_light_work_is_not():
    """20 scanned PDFs (fewer than a batch of 25) are cut into ``spread`` batches of equal work,
    so both workers of a 2-worker deployment stay busy to the end; 10 small texts stay one batch
    (a batch has a fixed cost); ``spread`` never makes empty batches."""
    from docsync.records import WorkItem, WorkKind
    from docsync.sources import SourceEntry
    from docsync.steps.plan import work_batches

    def item(i: int, path: str, size: int) -> WorkItem:
        return WorkItem(f"d{i:03d}", SourceEntry(path, size, 0, ""), WorkKind.NEW)

    scans = [item(i, f"scan/s{i}.pdf", 2 * 2**20 + 1000 * i) for i in range(20)]
    assert work_batches(scans, 25) == [tuple(scans)]  # no spread asked: one batch, as before
    spread = work_batches(scans, 25, spread=4)
    assert [len(b) for b in spread] == [5, 5, 5, 5]
    assert sorted(i.doc_id for b in spread for i in b) == [i.doc_id for i in scans]
    texts = [item(i, f"t/doc{i}.txt", 3_000) for i in range(10)]
    assert len(work_batches(texts, 25, spread=4)) == 1
    assert len(work_batches(scans[:3], 25, spread=4)) == 3


def test_finish_retried_after_the_run_finished_returns_its_recorded_summary(share, settings):
    """finish drops the run's staged files: a finalize task killed after finish returned (before
    Airflow recorded it) is retried with a plan reference that is gone; the run is finished."""
    from docsync.steps.finalize import finish

    summary = run_sync(settings, root=str(share))
    plan_ref = records.RunFiles(settings, summary["source"], summary["run_id"]).plan
    assert not os.path.exists(plan_ref)
    again = finish(settings, plan_ref, [], {}, summary["run_id"])
    assert again["run_id"] == summary["run_id"] and again["indexed"] == summary["indexed"] > 0
    [run, *_] = state.recent_runs(state.get_engine(settings.state_url), settings.source.name)
    assert run["status"] == "success"
