"""docsync.index: embedded Qdrant (both engines, Edge and qdrant-client's local mode, at a path
under tmp_path) and real embeddings."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from docsync import index
from docsync.embed import VECTOR_SIZE, embed_texts

COLLECTION = "docsync_test"


@pytest.fixture(params=["edge", "local"])
def isettings(settings, tmp_path, request):
    return settings.replace(qdrant_path=tmp_path / "qdrant", qdrant_url=None, qdrant_conn_id=None,
                            qdrant_engine=request.param)


@pytest.fixture()
def client(isettings):
    with index.open_index(isettings) as c:
        index.ensure_collection(c, COLLECTION, index.is_local(isettings))
        yield c


def pid(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


def unit(i: int) -> list[float]:
    vec = [0.0] * VECTOR_SIZE
    vec[i % VECTOR_SIZE] = 1.0
    vec[(i * 7 + 3) % VECTOR_SIZE] += 0.5
    return vec


def payload(doc_id: str, allowed: list[str], denied: list[str] | None = None, **extra) -> dict:
    return {"doc_id": doc_id, "source": "test", "path": f"{doc_id}.txt",
            index.ACCESS_FIELD: allowed, index.DENY_FIELD: denied or []} | extra


def test_settings_are_local(isettings):
    assert index.is_local(isettings) == (isettings.qdrant.engine == "local")  # Edge indexes payloads
    assert not index.is_local(isettings.replace(qdrant_url="http://127.0.0.1:6333"))


def test_ensure_collection_is_idempotent(isettings):
    with index.open_index(isettings) as c:
        assert not c.collection_exists(COLLECTION)
        index.ensure_collection(c, COLLECTION, local=True)
        index.ensure_collection(c, COLLECTION, local=True)
        info = c.get_collection(COLLECTION)
        assert info.config.params.vectors.size == VECTOR_SIZE
        assert str(info.config.params.vectors.distance).lower().endswith("cosine")


def test_upsert_existing_ids_set_payload_delete(client):
    points = [(pid(f"a{i}"), unit(i), payload("doc-a", ["group:finance"], chunk_index=i)) for i in range(3)]
    points += [(pid(f"b{i}"), unit(10 + i), payload("doc-b", ["everyone"], chunk_index=i)) for i in range(2)]
    index.upsert(client, COLLECTION, points)
    all_ids = {p[0] for p in points}
    assert index.existing_ids(client, COLLECTION, all_ids | {pid("missing")}) == all_ids
    assert index.existing_ids(client, COLLECTION, []) == set()

    # upsert is idempotent: same ids, no duplicates
    index.upsert(client, COLLECTION, points[:2])
    assert len(list(index.scroll_all(client, COLLECTION))) == 5

    index.set_payload(client, COLLECTION, {"path": "moved/doc-a.txt", index.ACCESS_FIELD: ["group:hr"]},
                      [pid("a0"), pid("a1")])
    index.set_payload(client, COLLECTION, {"path": "never"}, [])  # no ids: no-op
    records = {str(r.id): r.payload for r in index.scroll_all(client, COLLECTION)}
    assert records[pid("a0")]["path"] == "moved/doc-a.txt"
    assert records[pid("a0")][index.ACCESS_FIELD] == ["group:hr"]
    assert records[pid("a0")]["chunk_index"] == 0  # other payload keys kept
    assert records[pid("a2")]["path"] == "doc-a.txt"
    assert "never" not in {p["path"] for p in records.values()}

    index.delete_ids(client, COLLECTION, [pid("a2"), pid("missing")])
    assert index.existing_ids(client, COLLECTION, all_ids) == all_ids - {pid("a2")}

    index.delete_doc(client, COLLECTION, "doc-a")
    remaining = {str(r.id): r.payload["doc_id"] for r in index.scroll_all(client, COLLECTION)}
    assert remaining == {pid("b0"): "doc-b", pid("b1"): "doc-b"}
    index.delete_doc(client, COLLECTION, "no-such-doc")
    assert len(remaining) == len(list(index.scroll_all(client, COLLECTION)))


def test_upsert_in_batches(client):
    n = index.UPSERT_BATCH + 40  # more than one upsert batch (local mode writes ~70 points/s)
    points = [(pid(f"bulk{i}"), unit(i), payload(f"doc{i % 7}", ["everyone"])) for i in range(n)]
    index.upsert(client, COLLECTION, points)
    ids = [p[0] for p in points]
    records = list(index.scroll_all(client, COLLECTION))
    assert len(records) == n and {str(r.id) for r in records} == set(ids)
    assert index.existing_ids(client, COLLECTION, ids) == set(ids)
    only_doc = list(index.scroll_all(client, COLLECTION, with_payload=["doc_id"]))
    assert set(only_doc[0].payload) == {"doc_id"}
    index.delete_ids(client, COLLECTION, ids[:250])
    assert {str(r.id) for r in index.scroll_all(client, COLLECTION)} == set(ids[250:])


def test_scroll_all_of_missing_collection_is_empty(client):
    assert list(index.scroll_all(client, "docsync_does_not_exist")) == []


# --- access-filtered search ---------------------------------------------------------------

DOCS = {
    "fin": (["group:finance"], []),
    "fin-not-bob": (["group:finance"], ["user:bob"]),
    "public": (["everyone"], []),
    "public-not-bob": (["everyone"], ["user:bob"]),
    "hr": (["group:hr"], []),
    "alice": (["user:alice"], []),
    "fin-hr-not-eng": (["group:finance", "group:hr"], ["group:engineering"]),
    "nobody": (["group:finance"], ["everyone"]),
}
TEXTS = {
    "fin": "quarterly revenue forecast for the finance team",
    "fin-not-bob": "budget variance analysis for the finance team",
    "public": "public product overview and company history",
    "public-not-bob": "public pricing page for the product",
    "hr": "employee onboarding checklist and benefits",
    "alice": "alice's personal notes on the roadmap",
    "fin-hr-not-eng": "salary bands shared between finance and hr",
    "nobody": "locked document that no one may read",
}


@pytest.fixture()
def searchable(client):
    names = list(DOCS)
    vectors = embed_texts([TEXTS[n] for n in names])
    index.upsert(client, COLLECTION, [
        (pid(n), vec, payload(n, DOCS[n][0], DOCS[n][1], text=TEXTS[n])) for n, vec in zip(names, vectors)
    ])
    return client


def _visible(client, principals: list[str], query: str = "finance revenue") -> set[str]:
    vector = embed_texts([query])[0]
    hits = index.search(client, COLLECTION, vector, principals, limit=50)
    return {h.payload["doc_id"] for h in hits}


@pytest.mark.parametrize(
    ("principals", "expected"),
    [
        (["user:bob", "group:finance"], {"fin", "public", "fin-hr-not-eng"}),
        (["user:carol", "group:finance"], {"fin", "fin-not-bob", "public", "public-not-bob", "fin-hr-not-eng"}),
        (["user:alice"], {"public", "public-not-bob", "alice"}),
        (["User:Alice"], {"public", "public-not-bob", "alice"}),  # principals are case-insensitive
        (["group:hr", "group:engineering"], {"public", "public-not-bob", "hr"}),
        (["user:bob"], {"public"}),
        ([], {"public", "public-not-bob"}),
    ],
)
def test_search_returns_only_readable_points(searchable, principals, expected):
    visible = _visible(searchable, principals)
    assert visible == expected
    for doc in visible:
        allowed, denied = DOCS[doc]
        wanted = {p.lower() for p in principals} | {"everyone"}
        assert wanted & set(allowed)
        assert not wanted & set(denied)
    assert "nobody" not in visible


@pytest.mark.parametrize(
    "bob",
    ["CORP\\bob", "user: bob", " USER:Bob ", "user:CORP\\BOB", "user:bo\u0062"],
)
def test_query_principals_meet_the_index_side_canonically(searchable, bob):
    """A deny entry `user:bob` must hold whatever spelling the searching side uses (the query
    side lower-cased only: `CORP\\bob` or `user: bob` read what bob is denied)."""
    principal = bob if bob.lower().startswith(("user", " user")) else f"user:{bob}"
    assert _visible(searchable, [principal, "group:finance"]) == {"fin", "public", "fin-hr-not-eng"}


def test_query_principals_in_nfd_meet_nfc(client):
    """`Zoë` typed with a combining diaeresis (NFD) is the same principal as the NFC one."""
    import unicodedata

    nfc = "user:zo\u00eb"
    vector = embed_texts(["a denied note"])[0]
    index.upsert(client, COLLECTION, [(pid("z"), vector, payload("z", ["everyone"], [nfc], text="note"))])
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfd != nfc
    assert _visible(client, [nfd]) == set()
    assert _visible(client, ["user:other"]) == {"z"}


def test_search_ranks_by_similarity(searchable):
    vector = embed_texts(["employee onboarding and benefits"])[0]
    hits = index.search(searchable, COLLECTION, vector, ["group:hr"], limit=1)
    assert [h.payload["doc_id"] for h in hits] == ["hr"]
    assert hits[0].payload["text"] == TEXTS["hr"]


def test_acl_change_by_set_payload_applies_to_search(searchable):
    assert "hr" not in _visible(searchable, ["user:dave"])
    index.set_payload(searchable, COLLECTION, {index.ACCESS_FIELD: ["user:dave"], index.DENY_FIELD: []}, [pid("hr")])
    assert "hr" in _visible(searchable, ["user:dave"])
    index.set_payload(searchable, COLLECTION, {index.DENY_FIELD: ["user:dave"]}, [pid("hr")])
    assert "hr" not in _visible(searchable, ["user:dave"])


# --- local-mode lock ------------------------------------------------------------------------


def test_open_index_waits_for_the_lock(isettings):
    opened = threading.Event()
    errors: list[BaseException] = []

    def holder():
        try:
            with index.open_index(isettings) as c:
                index.ensure_collection(c, COLLECTION, True)
                index.upsert(c, COLLECTION, [(pid("held"), unit(1), payload("held", ["everyone"]))])
                opened.set()
                time.sleep(1.0)
        except BaseException as exc:
            errors.append(exc)
            opened.set()

    thread = threading.Thread(target=holder)
    thread.start()
    assert opened.wait(30)
    start = time.monotonic()
    with index.open_index(isettings, wait_s=30) as second:
        waited = time.monotonic() - start
        assert [str(r.id) for r in index.scroll_all(second, COLLECTION)] == [pid("held")]
    thread.join(10)
    assert not errors
    assert 0.5 <= waited < 10


def test_open_index_gives_up_after_wait(isettings):
    with index.open_index(isettings):
        start = time.monotonic()
        with pytest.raises(index.IndexUnavailable, match="another docsync process|Another docsync process"):
            with index.open_index(isettings, wait_s=1):
                pass
        assert time.monotonic() - start >= 1
    with index.open_index(isettings):  # the lock was released on exit
        pass


def test_keep_open_hands_out_one_client_and_closes_it_after(isettings):
    with index.keep_open(isettings) as kept:
        with index.open_index(isettings) as first, index.open_index(isettings) as second:
            assert first is kept and second is kept
        index.ensure_collection(kept, COLLECTION, True)  # still open after the inner blocks
    with index.open_index(isettings) as fresh:  # closed on exit: the embedded lock is free again
        assert fresh is not kept


def test_scroll_documents_reads_the_documents_and_their_parts_only(client):
    """The targeted reconcile's read: points of the given documents and of their parts, in
    slices of 1,000 ids, nothing of the others."""
    index.upsert(client, COLLECTION, [
        (pid("a0"), unit(0), payload("a", ["everyone"])),
        (pid("a1"), unit(1), payload("a", ["everyone"])),
        (pid("part"), unit(2), payload("a-part", ["everyone"], parent_id="a")),
        (pid("b0"), unit(3), payload("b", ["everyone"])),
    ])
    many = {"a"} | {f"x{i}" for i in range(1500)}  # two slices of the doc id list
    found = {str(r.id) for r in index.scroll_documents(client, COLLECTION, many, with_payload=["doc_id"])}
    assert found == {pid("a0"), pid("a1"), pid("part")}
    assert list(index.scroll_documents(client, "docsync_missing", {"a"})) == []
