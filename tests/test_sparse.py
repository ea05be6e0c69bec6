"""docsync.sparse (BM25-style term vectors) and hybrid search in embedded Qdrant (local mode):
keywords, codes and numbers found by the sparse vector, RRF fusion, the access filter applied to
both candidate lists, and collections without a sparse vector searched dense."""

from __future__ import annotations

import uuid

import pytest

from docsync import index, sparse
from docsync.embed import VECTOR_SIZE


def test_terms_keep_codes_and_numbers_and_drop_stop_words():
    assert sparse.terms("The SEV-1 incidents fell to 3; ARR was 48.2 million") == [
        "sev-1", "incident", "fell", "3", "arr", "48.2", "million"]
    assert sparse.terms("restarting workers policies") == ["restart", "worker", "policy"]


def test_vectors_are_sorted_deterministic_and_saturate():
    once = sparse.document_vector("queue queue drain")
    assert list(once.indices) == sorted(once.indices) and len(once.indices) == 2
    weights = dict(zip(once.indices, once.values))
    assert weights[sparse.term_id("queue")] > weights[sparse.term_id("drain")]
    assert weights[sparse.term_id("queue")] < 2 * weights[sparse.term_id("drain")]  # tf saturates (BM25 k1)
    assert sparse.document_vector("queue queue drain") == once
    assert sparse.term_id("queue") == 2389529192  # stable across processes and releases (stored in Qdrant)
    assert set(sparse.query_vector("drain the drain").values) == {1.0}


def unit(i: int) -> list[float]:
    vec = [0.0] * VECTOR_SIZE
    vec[i] = 1.0
    return vec


def point(name: str, dense: int, text: str, allowed: list[str]) -> tuple[str, list[float], dict]:
    return (str(uuid.uuid5(uuid.NAMESPACE_URL, name)), unit(dense),
            {"doc_id": name, "path": f"{name}.txt", "text": text,
             index.ACCESS_FIELD: allowed, index.DENY_FIELD: []})


@pytest.fixture()
def client(settings, tmp_path):
    with index.open_index(settings.replace(qdrant_path=tmp_path / "qdrant")) as c:
        index.ensure_collection(c, "docsync_hybrid", local=True)
        index.upsert(c, "docsync_hybrid", [
            point("near", 0, "general notes about the quarterly planning cycle", ["everyone"]),
            point("code", 1, "error code ZX-4471 means the dock scanner lost power", ["everyone"]),
            point("secret", 2, "error code ZX-4471 escalation list for the board", ["group:board"]),
        ])
        yield c


def test_hybrid_finds_the_keyword_match_dense_ranks_lower(client):
    query = [0.9, 0.3] + [0.0] * (VECTOR_SIZE - 2)  # dense prefers "near"
    assert index.has_sparse(client, "docsync_hybrid")
    dense = index.search(client, "docsync_hybrid", query, ["user:bob"], limit=2)
    hybrid = index.search(client, "docsync_hybrid", query, ["user:bob"], limit=2, mode="hybrid", text="ZX-4471")
    assert [h.payload["doc_id"] for h in dense] == ["near", "code"]
    assert hybrid[0].payload["doc_id"] == "code"  # ranked by both lists: fused first


def test_hybrid_applies_the_access_filter_to_both_lists(client):
    query = [0.0, 0.0, 1.0] + [0.0] * (VECTOR_SIZE - 3)  # dense and sparse both prefer "secret"
    hits = index.search(client, "docsync_hybrid", query, ["user:bob"], limit=5, mode="hybrid", text="ZX-4471 board")
    assert "secret" not in {h.payload["doc_id"] for h in hits}
    hits = index.search(client, "docsync_hybrid", query, ["group:board"], limit=1, mode="hybrid", text="ZX-4471 board")
    assert hits[0].payload["doc_id"] == "secret"


def test_collection_without_sparse_vector_is_searched_dense(client):
    from qdrant_client import models

    client.create_collection("old", vectors_config=models.VectorParams(size=VECTOR_SIZE, distance=models.Distance.COSINE))
    index.upsert(client, "old", [point("code", 1, "error code ZX-4471", ["everyone"])])  # dense only, no error
    assert not index.has_sparse(client, "old")
    hits = index.search(client, "old", unit(1), ["user:bob"], limit=1, mode="hybrid", text="ZX-4471")
    assert hits[0].payload["doc_id"] == "code"
    with pytest.raises(ValueError, match="search mode 'fuzzy'"):
        index.search(client, "old", unit(1), ["user:bob"], mode="fuzzy")
