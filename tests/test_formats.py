"""End to end: the corpus of real public files of every supported kind (tests/data/formats,
sources in its README) synced with the CLI's `run_sync`: no crash, only genuinely unreadable
files quarantined, attachments and archive members indexed as documents of their own with
the container's access, and a container's deletion removing its parts."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa

from docsync import state
from docsync.pipeline import run_sync
from tests.test_pipeline import assert_consistent, snapshot

CORPUS = Path(__file__).parent / "data" / "formats"
MAIL = "fake-email-attachment.eml"
OUTLOOK = "fake-email-attachment.msg"
ARCHIVE = "simple.zip"
# What may end up in the quarantine: nothing readable, and the reason says so. The audio must;
# the logos attached to an e-mail may (OCR finds a word in one, nothing in the other).
UNREADABLE = {
    "CantinaBand3.wav": "audio holds no text",
    "mime-attach-mp3.eml#attachment/1/sample-3s.mp3": "audio holds no text",
    "email-no-utf8-2014-03-17.111517.eml#attachment/1/google.png": "no text could be extracted",
    "email-no-utf8-2014-03-17.111517.eml#attachment/2/profilephoto.png": "no text could be extracted",
}
MUST_QUARANTINE = {"CantinaBand3.wav", "mime-attach-mp3.eml#attachment/1/sample-3s.mp3"}
ACCESS = {MAIL: ["group:finance"], OUTLOOK: ["group:finance"], ARCHIVE: ["group:legal"]}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """The corpus synced once (module scope: it parses, OCRs and embeds ~40 documents)."""
    home = tmp_path_factory.mktemp("formats-home")
    share = tmp_path_factory.mktemp("formats-share")
    for source in CORPUS.iterdir():
        if source.name == "README.md":
            continue
        shutil.copy(source, share / source.name)
        (share / f"{source.name}.acl.json").write_text(json.dumps({"allow": ACCESS.get(source.name, ["group:staff"])}))
    from docsync.config import load_settings

    with pytest.MonkeyPatch.context() as env:  # as conftest's docsync_env, for the whole module
        env.setenv("DOCSYNC_HOME", str(home))
        env.setenv("DOCSYNC_ALLOWED_ROOTS", str(share))
        for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
            env.delenv(var, raising=False)
        settings = load_settings()
        yield settings, share, run_sync(settings, root=str(share))


def _rows(settings) -> dict[str, dict]:
    engine = state.get_engine(settings.state_url)
    with engine.connect() as conn:
        return {r.path: dict(r._mapping) for r in conn.execute(sa.select(state.documents))}


def _quarantine(settings) -> dict[str, str]:
    engine = state.get_engine(settings.state_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(state.quarantine).where(state.quarantine.c.status != "resolved"))
        return {r.path: r.reason for r in rows}


def test_every_file_is_indexed_except_the_genuinely_unreadable(synced):
    settings, share, summary = synced
    quarantined = _quarantine(settings)
    assert MUST_QUARANTINE <= set(quarantined) <= set(UNREADABLE), quarantined
    for path, reason in quarantined.items():
        assert UNREADABLE[path] in reason, (path, reason)
    rows = _rows(settings)
    listed = {p.name for p in share.iterdir() if not p.name.endswith(".acl.json")}
    assert listed <= set(rows), "a listed file has no state row"
    indexed = {path for path, row in rows.items() if row["status"] == "indexed"}
    assert indexed == set(rows) - set(quarantined)
    assert summary["quarantined"] == len(quarantined)
    assert_consistent(snapshot(settings))


def test_parts_are_documents_with_the_containers_access(synced):
    settings, _share, _summary = synced
    rows = _rows(settings)
    points = snapshot(settings)["points"].values()
    for container, part, needle in [
        (MAIL, f"{MAIL}#attachment/1/fake-attachment.txt", "Hey this is a fake attachment!"),
        (OUTLOOK, f"{OUTLOOK}#attachment/1/fake-attachment.txt", "Hey this is a fake attachment!"),
        (ARCHIVE, f"{ARCHIVE}#stanley-cups.csv", "Team: Blues; Location: STL"),
        (ARCHIVE, f"{ARCHIVE}#ideas-page.html", "ideas"),
    ]:
        assert rows[part]["parent_id"] == rows[container]["doc_id"]
        payloads = [p for p in points if p["path"] == part]
        assert payloads, f"{part} has no points"
        assert all(p["allowed_principals"] == ACCESS[container] for p in payloads)
        assert all(p["parent_id"] == rows[container]["doc_id"] for p in payloads)
        assert any(needle.lower() in p["text"].lower() for p in payloads), (part, [p["text"][:200] for p in payloads])
    # the e-mail's own text: subject, headers (addresses anonymized), body
    mail_text = " ".join(p["text"] for p in points if p["path"] == MAIL)
    assert "Fake email with attachment" in mail_text and "mallori@unstructured.io" not in mail_text


def test_acl_change_and_deletion_of_a_container_reach_its_parts(synced):
    settings, share, _summary = synced
    (share / f"{MAIL}.acl.json").write_text(json.dumps({"allow": ["group:audit"]}))
    summary = run_sync(settings, root=str(share))
    assert summary["acl_updated"] == 1 and summary["chunks_embedded"] == 0
    points = snapshot(settings)["points"].values()
    family = [p for p in points if p["path"].startswith(MAIL)]
    assert len({p["path"] for p in family}) == 2
    assert all(p["allowed_principals"] == ["group:audit"] for p in family)

    (share / MAIL).unlink()
    (share / ARCHIVE).rename(share / "moved.zip")
    (share / f"{ARCHIVE}.acl.json").rename(share / "moved.zip.acl.json")
    run_sync(settings, root=str(share))
    snap = snapshot(settings)
    assert_consistent(snap)
    assert not [p for p in snap["paths"] if p.startswith(MAIL)], "a deleted e-mail's attachments stayed"
    assert not [p for p in _rows(settings) if p.startswith((MAIL, ARCHIVE))]
    assert snap["paths"]["moved.zip#stanley-cups.csv"] >= 1, "a moved archive's members follow it"

    with zipfile.ZipFile(share / "moved.zip") as archive:  # re-saved without one of its members
        kept = archive.read("stanley-cups.csv")
    with zipfile.ZipFile(share / "moved.zip", "w") as archive:
        archive.writestr("stanley-cups.csv", kept)
    summary = run_sync(settings, root=str(share))
    assert summary["modified"] == 1
    snap = snapshot(settings)
    assert_consistent(snap)
    assert sorted(p for p in snap["paths"] if p.startswith("moved.zip")) == ["moved.zip", "moved.zip#stanley-cups.csv"]
    assert "moved.zip#ideas-page.html" not in _rows(settings)
