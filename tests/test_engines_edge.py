"""docsync.engines.edge: Qdrant Edge behind docsync.index (the index API itself runs against both
embedded engines in test_index.py): payload indexes, what survives a reopen, aliases as reindex
uses them, snapshots, and a SIGKILL during upserts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid

import pytest

from docsync import index
from docsync.embed import VECTOR_SIZE
from docsync.engines.edge import EdgeClient

COLLECTION = "docsync_edge"


@pytest.fixture()
def esettings(settings, tmp_path):
    return settings.replace(qdrant_path=tmp_path / "qdrant", qdrant_url=None, qdrant_conn_id=None, qdrant_engine="edge")


def pid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def unit(i: int) -> list[float]:
    vec = [0.0] * VECTOR_SIZE
    vec[i % VECTOR_SIZE] = 1.0
    return vec


def points(prefix: str, n: int, allowed: list[str]) -> list[tuple[str, list[float], dict]]:
    return [(pid(f"{prefix}{i}"), unit(i), {"doc_id": f"{prefix}-doc{i // 2}", "source": "t", "path": f"{prefix}{i}.txt",
                                           index.ACCESS_FIELD: allowed, index.DENY_FIELD: []}) for i in range(n)]


def test_collections_index_the_acl_fields_and_survive_a_reopen(esettings):
    assert not index.is_local(esettings)  # payload indexes are created
    with index.open_index(esettings) as client:
        assert isinstance(client, EdgeClient)
        index.ensure_collection(client, COLLECTION, index.is_local(esettings))
        assert set(client.get_collection(COLLECTION).payload_schema) == set(index.KEYWORD_FIELDS)
        index.upsert(client, COLLECTION, points("a", 6, ["group:finance"]) + points("b", 4, ["everyone"]))
    with index.open_index(esettings) as client:  # a new process would see the same: all of it is on disk
        assert index.alias_target(client, COLLECTION) == f"{COLLECTION}_v1"
        assert len(list(index.scroll_all(client, COLLECTION))) == 10
        assert client.get_collection(COLLECTION).points_count == 10
        hits = index.search(client, COLLECTION, unit(1), ["user:bob"], limit=10)
        assert {h.payload["doc_id"] for h in hits} == {"b-doc0", "b-doc1"}
        assert all(isinstance(h.id, str) and h.score is not None for h in hits)


def test_aliases_switch_atomically_and_collections_drop_as_reindex_does(esettings):
    with index.open_index(esettings) as client:
        index.ensure_collection(client, COLLECTION, False)
        index.upsert(client, COLLECTION, points("old", 2, ["everyone"]))
        index.create_collection(client, f"{COLLECTION}_v2", False)
        index.upsert(client, f"{COLLECTION}_v2", points("new", 3, ["everyone"]))
        index.switch_alias(client, COLLECTION, f"{COLLECTION}_v2")
        assert {r.payload["doc_id"] for r in index.scroll_all(client, COLLECTION)} == {"new-doc0", "new-doc1"}
        client.delete_collection(COLLECTION)  # an alias name: deletes nothing (as on a server)
        client.delete_collection(f"{COLLECTION}_v1")
        assert [c.name for c in client.get_collections().collections] == [f"{COLLECTION}_v2"]
        assert client.collection_exists(COLLECTION) and not client.collection_exists(f"{COLLECTION}_v1")
    assert not list(esettings.qdrant.path.glob("edge/*.tmp"))


def test_a_snapshot_restores_the_collection(esettings, tmp_path):
    with index.open_index(esettings) as client:
        index.ensure_collection(client, COLLECTION, False)
        index.upsert(client, COLLECTION, points("s", 8, ["group:hr"]))
        archive = client.snapshot(COLLECTION, tmp_path / "edge.snapshot.tar")
        index.delete_ids(client, COLLECTION, [pid("s0")])  # after the snapshot: not in it
        client.restore_snapshot("restored", archive)
        restored = {str(r.id): r.payload for r in index.scroll_all(client, "restored")}
        assert set(restored) == {pid(f"s{i}") for i in range(8)}
        assert set(client.get_collection("restored").payload_schema) == set(index.KEYWORD_FIELDS)
        with pytest.raises(ValueError, match="already exists"):
            client.restore_snapshot("restored", archive)


def test_a_sigkill_during_upserts_loses_nothing_committed(esettings):
    """A writer killed in the middle of its upserts: every batch whose upsert had returned is
    there when the index is opened again (the write-ahead log), and the lock is free."""
    writer = textwrap.dedent(f"""
        import uuid
        from docsync import index
        from docsync.config import load_settings
        settings = load_settings().replace(qdrant_path={str(esettings.qdrant.path)!r}, qdrant_url=None,
                                           qdrant_conn_id=None, qdrant_engine="edge")
        with index.open_index(settings) as client:
            index.ensure_collection(client, {COLLECTION!r}, False)
            for batch in range(10_000):
                vec = [0.0] * {VECTOR_SIZE}
                vec[batch % {VECTOR_SIZE}] = 1.0
                index.upsert(client, {COLLECTION!r}, [(str(uuid.uuid5(uuid.NAMESPACE_URL, f"k{{batch}}-{{i}}")), vec,
                             {{"doc_id": f"d{{batch}}", "allowed_principals": ["everyone"], "denied_principals": []}})
                             for i in range(64)])
                print(batch, flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", writer], stdout=subprocess.PIPE, text=True, env=os.environ)
    committed = -1
    for line in proc.stdout:
        committed = int(line)
        if committed >= 15:
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    committed = max([committed, *(int(line) for line in proc.stdout)])
    with index.open_index(esettings, wait_s=5) as client:
        ids = [str(uuid.uuid5(uuid.NAMESPACE_URL, f"k{b}-{i}")) for b in range(committed + 1) for i in range(64)]
        assert index.existing_ids(client, COLLECTION, ids) == set(ids)


def test_an_unknown_engine_is_refused(esettings):
    with pytest.raises(index.IndexUnavailable, match="DOCSYNC_QDRANT_ENGINE"):
        with index.open_index(esettings.replace(qdrant_engine="chroma")):
            pass


def test_an_index_in_local_mode_is_imported_on_first_open(esettings):
    """The upgrade: the same DOCSYNC_QDRANT_PATH held qdrant-client's local mode."""
    local = esettings.replace(qdrant_engine="local")
    with index.open_index(local) as client:
        index.ensure_collection(client, COLLECTION, index.is_local(local))
        index.upsert(client, COLLECTION, points("l", 5, ["group:legal"]))
    with index.open_index(esettings) as client:
        assert index.alias_target(client, COLLECTION) == f"{COLLECTION}_v1"
        records = {str(r.id): r.payload for r in index.scroll_all(client, COLLECTION)}
        assert records == {p: payload for p, _v, payload in points("l", 5, ["group:legal"])}
        assert set(client.get_collection(COLLECTION).payload_schema) >= set(index.KEYWORD_FIELDS)
        assert [h.payload["path"] for h in index.search(client, COLLECTION, unit(3), ["group:legal"], limit=1)] == ["l3.txt"]
        index.delete_ids(client, COLLECTION, [pid("l0")])
    with index.open_index(esettings) as client:  # imported once: later opens use the Edge data as it is
        assert len(list(index.scroll_all(client, COLLECTION))) == 4
    assert not (esettings.qdrant.path / "edge" / ".importing").exists()

