"""Collection aliases and `docsync reindex` (qdrant-client local mode implements aliases
with the server's semantics: resolution in every point operation, atomic alias updates)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from docsync import index, pipeline
from docsync.cli import main as cli_main
from docsync.config import load_settings
from docsync.embed import embed_texts
from docsync.reindex import reindex, versions


@pytest.fixture()
def small(docsync_env, demo_corpus, tmp_path, monkeypatch):
    """Settings (and env, for the CLI) over a copy of the demo corpus' text documents."""
    corpus, _manifest = demo_corpus
    root = tmp_path / "share"
    shutil.copytree(corpus / "public", root / "public")
    shutil.copytree(corpus / "engineering" / "runbooks", root / "engineering" / "runbooks")
    monkeypatch.setenv("DOCSYNC_FILESHARE_ROOT", str(root))
    return load_settings()


def snapshot(settings) -> dict:
    """Point ids -> payloads without the per-write timestamp, read through the alias."""
    with index.open_index(settings) as client:
        return {
            str(p.id): {k: v for k, v in p.payload.items() if k != "indexed_at"}
            for p in index.scroll_all(client, settings.collection())
        }


def test_new_collection_is_an_alias_of_version_1(small):
    with index.open_index(small) as client:
        index.ensure_collection(client, "docsync_x", True)
        index.ensure_collection(client, "docsync_x", True)  # idempotent
        assert index.alias_target(client, "docsync_x") == "docsync_x_v1"
        assert versions(client, "docsync_x") == [1]
        assert index.alias_target(client, "docsync_x_v1") is None


def test_reindex_builds_a_new_version_and_swaps_the_alias(small, capsys):
    # an older deployment: a plain collection under the alias' name
    with index.open_index(small) as client:
        index.create_collection(client, small.collection(), True)
    pipeline.run_sync(small)
    before = snapshot(small)
    assert {p["path"] for p in before.values()} == {
        "public/company-overview.html", "public/product-faq.md", "engineering/runbooks/oncall-runbook.txt"}

    report = reindex(small)  # migrates the plain collection to alias -> v1
    assert report["collection"] == "docsync_fileshare_v1" and report["previous"] == "docsync_fileshare"
    assert report["indexed"] == 3 and report["missing_from_source"] == 0
    assert report["reconcile"] == {"orphan_points_deleted": 0, "documents_to_reindex": 0}
    assert snapshot(small) == before

    # a document vanished from the share is left out of the new version; the alias
    # swap is one update, and the previous version stays for a rollback when asked
    (Path(small.source.fileshare_root) / "public" / "product-faq.md").unlink()
    assert cli_main(["--json", "reindex", "--keep-previous"]) == 0
    with index.open_index(small) as client:
        assert versions(client, "docsync_fileshare") == [1, 2]
    out = capsys.readouterr().out
    assert '"collection": "docsync_fileshare_v2"' in out and '"missing_from_source": 1' in out
    after = snapshot(small)
    assert after == {k: v for k, v in before.items() if v["path"] != "public/product-faq.md"}

    with index.open_index(small) as client:
        assert index.alias_target(client, "docsync_fileshare") == "docsync_fileshare_v2"
        hits = index.search(client, small.collection(), embed_texts(["on-call runbook escalation"])[0],
                            ["group:engineering"], limit=10)
        assert hits and all(h.payload["path"] != "public/product-faq.md" for h in hits)
        assert {h.payload["path"] for h in index.search(client, small.collection(), embed_texts(["runbook"])[0],
                                                         ["user:nobody"], limit=10)} <= {"public/company-overview.html"}
        index.switch_alias(client, small.collection(), "docsync_fileshare_v1")  # rollback
    assert len(snapshot(small)) == len(before)
