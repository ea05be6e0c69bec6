"""The label-free canary, run by ``finalize`` after a run that changed the index: sample K
documents this run indexed, one chunk of each, search with sentences of each (the stored,
anonymised chunk text: its longest sentence, widened with its neighbours to MIN_WORDS words) as
the chunk's own readers; its document must be the top hit. Why several sentences: on the demo
corpus one sentence alone missed 2 of 26 healthy chunks (a roadmap sentence is as close to the
public overview page as to the annual report); a canary must be quiet on a healthy index.

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
    from collections.abc import Callable

    from docsync.config import Settings

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_TAG = re.compile(r"<[A-Z_]+>")  # anonymisation placeholders carry no meaning to search with
MIN_WORDS = 80
MAX_WORDS = 120


def probe_sentence(text: str) -> str:
    """The chunk's longest sentence (placeholders dropped), widened with the following (then
    preceding) sentences to at least MIN_WORDS words, cut at MAX_WORDS."""
    sentences = [" ".join(_TAG.sub(" ", s).split()) for s in _SENTENCE.split(text)]
    sentences = [s for s in sentences if s]
    if not sentences:
        return ""
    first = last = max(range(len(sentences)), key=lambda i: len(sentences[i].split()))
    while sum(len(s.split()) for s in sentences[first : last + 1]) < MIN_WORDS:
        if last + 1 < len(sentences):
            last += 1
        elif first > 0:
            first -= 1
        else:
            break
    return " ".join(" ".join(sentences[first : last + 1]).split()[:MAX_WORDS])


def run_canary(settings: Settings, source: str, run_id: str, samples: int | None = None,
               embed: Callable[[list[str]], list] | None = None) -> dict:
    """``{canary_samples, canary_hits, canary_hit_rate, canary_misses}`` for the run's chunks
    (``canary_samples`` 0 and no rate when the run indexed nothing). ``embed``: the embedder
    to search with (default docsync.embed.embed_texts; finalize passes a warm process's)."""
    from docsync import index, state

    if embed is None:
        from docsync.embed import embed_texts as embed

    samples = settings.sync.canary_samples if samples is None else samples
    engine = state.get_engine(settings.state_url)
    started = state.run_started_at(engine, run_id)
    # K documents of the run, one chunk of each (seeded by the run: a re-run samples the same)
    rng = random.Random(run_id)
    docs = state.docs_indexed_since(engine, source, started) if started and samples else []
    docs = rng.sample(docs, min(samples, len(docs)))
    points = state.chunk_ids(engine, docs)
    chosen = [(rng.choice(sorted(points[d])), d) for d in docs if points[d]]
    if not chosen:
        return {"canary_samples": 0}
    collection = settings.collection(source)
    with index.open_index(settings) as client:
        records = client.retrieve(collection, ids=[pid for pid, _ in chosen], with_payload=True, with_vectors=False)
        probes = [(r.payload, probe_sentence(r.payload.get("text", ""))) for r in records]
        probes = [(payload, sentence) for payload, sentence in probes if sentence]
        vectors = embed([sentence for _, sentence in probes])
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
