"""docsync.quarantine on both state backends (SQLite file and the local PostgreSQL)."""

from __future__ import annotations

import pytest

from docsync import quarantine, state
from docsync.errors import Failure


@pytest.fixture()
def engine(state_url):
    return state.get_engine(state_url)


def _record(engine, doc_id: str, stage: str = "parse", source: str = "share", **kw) -> None:
    with engine.begin() as conn:
        quarantine.record(
            conn,
            source=source,
            doc_id=doc_id,
            path=kw.pop("path", f"inbox/{doc_id}.pdf"),
            failure=kw.pop("failure", Failure(stage, f"{stage} failed for {doc_id}", "ValueError: boom")),
            **kw,
        )


def _entry(engine, doc_id: str, source: str = "share") -> dict:
    entries = [e for e in quarantine.list_entries(engine, source=source, status=None) if e["doc_id"] == doc_id]
    assert len(entries) == 1
    return entries[0]


def test_record_creates_then_refreshes_one_entry(engine):
    _record(engine, "d1", content_hash="h1", preview="first preview")
    first = _entry(engine, "d1")
    assert first["attempts"] == 1 and first["status"] == "open"
    assert (first["stage"], first["path"], first["content_hash"]) == ("parse", "inbox/d1.pdf", "h1")
    assert first["reason"] == "parse failed for d1" and first["error"] == "ValueError: boom"

    _record(engine, "d1", failure=Failure("ocr", "OCR failed", ""), path="inbox/moved.pdf", content_hash="h2")
    second = _entry(engine, "d1")
    assert second["id"] == first["id"]
    assert second["attempts"] == 2
    assert (second["stage"], second["reason"], second["path"], second["content_hash"]) == (
        "ocr", "OCR failed", "inbox/moved.pdf", "h2")
    assert state.as_utc(second["first_seen"]) == state.as_utc(first["first_seen"])
    assert state.as_utc(second["last_seen"]) >= state.as_utc(first["last_seen"])
    assert len(quarantine.list_entries(engine, status=None)) == 1


def test_same_doc_id_in_two_sources_are_separate_entries(engine):
    _record(engine, "d1", source="a")
    _record(engine, "d1", source="b")
    assert _entry(engine, "d1", "a")["id"] != _entry(engine, "d1", "b")["id"]
    assert _entry(engine, "d1", "a")["attempts"] == 1


def test_preview_and_error_are_truncated(engine):
    _record(engine, "big", failure=Failure("parse", "r", "e" * 10_000), preview="p" * 10_000)
    entry = _entry(engine, "big")
    assert len(entry["preview"]) == quarantine.PREVIEW_CHARS
    assert len(entry["error"]) == 4000


def test_preview_with_nul_character_is_stored(engine):
    _record(engine, "nul", preview="before\x00after", failure=Failure("validate", "bad\x00reason", "err\x00"))
    entry = _entry(engine, "nul")
    assert "before" in entry["preview"] and "after" in entry["preview"]


def test_list_entries_filters(engine):
    _record(engine, "p1", "parse")
    _record(engine, "o1", "ocr")
    _record(engine, "x1", "parse", source="other")
    assert {e["doc_id"] for e in quarantine.list_entries(engine)} == {"p1", "o1", "x1"}
    assert {e["doc_id"] for e in quarantine.list_entries(engine, source="share")} == {"p1", "o1"}
    assert {e["doc_id"] for e in quarantine.list_entries(engine, stage="ocr")} == {"o1"}
    assert quarantine.list_entries(engine, status="resolved") == []
    assert len(quarantine.list_entries(engine, limit=2)) == 2
    newest = quarantine.list_entries(engine)[0]
    assert newest["doc_id"] == "x1"


def test_resolve(engine):
    _record(engine, "d1")
    _record(engine, "d2")
    with engine.begin() as conn:
        quarantine.resolve(conn, "share", "d1")
        quarantine.resolve(conn, "share", "unknown")  # no entry: no-op
    assert _entry(engine, "d1")["status"] == "resolved"
    assert _entry(engine, "d2")["status"] == "open"
    # a failure after resolution opens the entry again
    _record(engine, "d1")
    assert _entry(engine, "d1")["status"] == "open" and _entry(engine, "d1")["attempts"] == 2


def test_resolve_keeps_dismissed(engine):
    _record(engine, "d1")
    entry_id = _entry(engine, "d1")["id"]
    quarantine.act(engine, entry_id, "dismiss", "reviewer@corp")
    with engine.begin() as conn:
        quarantine.resolve(conn, "share", "d1")
    assert _entry(engine, "d1")["status"] == "dismissed"


def test_act_retry_release_dismiss_with_audit_history(engine):
    _record(engine, "d1")
    entry_id = _entry(engine, "d1")["id"]

    updated = quarantine.act(engine, entry_id, "retry", "alice@corp")
    assert updated["status"] == "retry" and updated["id"] == entry_id
    updated = quarantine.act(engine, entry_id, "release", "bob@corp", note="scan is legible, checked by hand")
    assert updated["status"] == "released"
    updated = quarantine.act(engine, entry_id, "dismiss", "carol@corp", note="duplicate")
    assert updated["status"] == "dismissed"
    assert quarantine.get_entry(engine, entry_id)["status"] == "dismissed"

    history = quarantine.history(engine, entry_id)
    assert [(h["action"], h["actor"], h["note"]) for h in history] == [
        ("retry", "alice@corp", ""),
        ("release", "bob@corp", "scan is legible, checked by hand"),
        ("dismiss", "carol@corp", "duplicate"),
    ]
    assert all(h["quarantine_id"] == entry_id and h["at"] is not None for h in history)
    assert quarantine.history(engine, entry_id + 999) == []


@pytest.mark.parametrize("note", ["", "   "])
def test_release_without_note_raises(engine, note):
    _record(engine, "d1")
    entry_id = _entry(engine, "d1")["id"]
    with pytest.raises(ValueError, match="note"):
        quarantine.act(engine, entry_id, "release", "bob@corp", note=note)
    assert _entry(engine, "d1")["status"] == "open"
    assert quarantine.history(engine, entry_id) == []


def test_unknown_action_raises(engine):
    _record(engine, "d1")
    with pytest.raises(ValueError, match="unknown quarantine action"):
        quarantine.act(engine, _entry(engine, "d1")["id"], "delete", "bob@corp")


def test_unknown_id_raises_lookup_error(engine):
    with pytest.raises(LookupError):
        quarantine.act(engine, 424242, "retry", "bob@corp")
    assert quarantine.get_entry(engine, 424242) is None
    assert quarantine.history(engine, 424242) == []


def test_reprocess_requests(engine):
    for doc in ("retry-me", "release-me", "dismiss-me", "left-open", "resolved"):
        _record(engine, doc)
    _record(engine, "other-source", source="other")
    ids = {e["doc_id"]: e["id"] for e in quarantine.list_entries(engine, status=None)}
    quarantine.act(engine, ids["retry-me"], "retry", "alice")
    quarantine.act(engine, ids["release-me"], "release", "alice", note="ok")
    quarantine.act(engine, ids["dismiss-me"], "dismiss", "alice")
    quarantine.act(engine, ids["other-source"], "retry", "alice")
    with engine.begin() as conn:
        quarantine.resolve(conn, "share", "resolved")
    assert quarantine.reprocess_requests(engine, "share") == {"retry-me": "retry", "release-me": "released"}
    assert quarantine.reprocess_requests(engine, "other") == {"other-source": "retry"}
    assert quarantine.reprocess_requests(engine, "empty") == {}


def test_transient_read_failures_are_retried_automatically(engine):
    _record(engine, "flaky", "read")
    _record(engine, "broken", "parse")
    assert quarantine.reprocess_requests(engine, "share") == {"flaky": "retry"}
    quarantine.act(engine, _entry(engine, "flaky")["id"], "dismiss", "alice")
    assert quarantine.reprocess_requests(engine, "share") == {}
