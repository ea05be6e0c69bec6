"""The label-free canary, run by ``finalize`` after a run that changed the index: sample K
chunks of the documents this run indexed, search with one sentence of each (the stored,
anonymised chunk text) as the chunk's own readers; its document must be the top hit.

The search is dense only, so that keyword matching cannot hide an embedder problem. One miss in a handful catches what no per-document check sees: an embedder that broke or
changed (query and index vectors from different models), vectors written to the wrong
points, payloads or ACLs that no longer match their text. K searches and one embedding batch:
cheap next to the run it checks (DOCSYNC_CANARY_SAMPLES, default 5; 0 turns it off).
"""

from __future__ import annotations

import random
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docsync.config import Settings

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_TAG = re.compile(r"<[A-Z_]+>")  # anonymisation placeholders carry no meaning to search with
MAX_WORDS = 40


def probe_sentence(text: str) -> str:
    """The chunk's longest sentence (placeholders dropped, at most MAX_WORDS words): the part of
    the chunk most specific to it."""
    sentences = [" ".join(_TAG.sub(" ", s).split()) for s in _SENTENCE.split(text)]
    best = max(sentences, key=lambda s: len(s.split()), default="")
    return " ".join(best.split()[:MAX_WORDS])


def run_canary(settings: Settings, source: str, run_id: str, samples: int | None = None) -> dict:
    """``{canary_samples, canary_hits, canary_hit_rate, canary_misses}`` for the run's chunks
    (``canary_samples`` 0 and no rate when the run indexed nothing)."""
    from docsync import index, state
    from docsync.embed import embed_texts

    samples = settings.sync.canary_samples if samples is None else samples
    engine = state.get_engine(settings.state_url)
    started = state.run_started_at(engine, run_id)
    points = state.points_indexed_since(engine, source, started) if started and samples else []
    chosen = random.Random(run_id).sample(points, min(samples, len(points))) if points else []
    if not chosen:
        return {"canary_samples": 0}
    collection = settings.collection(source)
    with index.open_index(settings) as client:
        records = client.retrieve(collection, ids=[pid for pid, _ in chosen], with_payload=True, with_vectors=False)
        probes = [(r.payload, probe_sentence(r.payload.get("text", ""))) for r in records]
        probes = [(payload, sentence) for payload, sentence in probes if sentence]
        vectors = embed_texts([sentence for _, sentence in probes])
        hits, misses = 0, []
        for (payload, _), vector in zip(probes, vectors):
            readers = [p for p in payload.get(index.ACCESS_FIELD, []) if p not in payload.get(index.DENY_FIELD, [])]
            # dense on purpose: keyword matching (hybrid) would hide a broken or swapped embedder
            top = index.search(client, collection, vector, readers, limit=1, mode="dense")
            if top and top[0].payload.get("doc_id") == payload.get("doc_id"):
                hits += 1
            else:
                misses.append(payload.get("path"))
    # A chunk the state store records but Qdrant lacks counts as a miss; one without a sentence
    # to search with (placeholders only) is not a sample.
    misses += ["(point missing from the index)"] * (len(chosen) - len(records))
    n = hits + len(misses)
    if not n:
        return {"canary_samples": 0}
    return {"canary_samples": n, "canary_hits": hits, "canary_hit_rate": round(hits / n, 4), "canary_misses": misses}
