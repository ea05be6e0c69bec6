"""Sparse BM25-style term vectors for hybrid search, computed here (no model download).

A chunk's vector holds, per term, BM25's saturated term frequency
``tf * (k1 + 1) / (tf + k1 * (1 - b + b * len / avg_len))``; Qdrant multiplies it by the
term's inverse document frequency at query time (the collection's sparse vector is created
with ``Modifier.IDF``, see ``docsync.index``), so the IDF always matches the collection as it
is now, never a corpus snapshot. A query's vector is 1.0 per distinct term. Terms are hashed
to 32-bit ids (Qdrant's sparse indices are u32): no vocabulary to store or keep in sync, and
a collision between two terms only merges their scores.

Tokens keep codes and numbers whole ("48.2", "sev-1", "iso-27001"): keyword search matters
most on exactly those, where dense embeddings are weakest.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass

K1 = 1.2
B = 0.75
# Average chunk length in terms; chunks are ~200 model tokens (DOCSYNC_CHUNK_TOKENS), about
# 110 terms once stop words are dropped. A constant keeps a point's vector independent of the
# rest of the collection (written once, never re-weighted).
AVG_TERMS = 110.0

_TOKEN = re.compile(r"[a-z0-9]+(?:[.\-/][a-z0-9]+)*")
STOP_WORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is it its "
    "me my no not of on or our so than that the their them then there these they this those to up us was we "
    "were what when where which who whom why will with would you your".split()
)


@dataclass(frozen=True)
class SparseTerms:
    """A sparse vector as Qdrant takes it: sorted term ids and their weights."""

    indices: tuple[int, ...]
    values: tuple[float, ...]


def _stem(word: str) -> str:
    """A light suffix stripper (plural and common verb endings) so that "restarting" meets
    "restart" and "policies" meets "policy"; numbers and codes are left alone."""
    if not word.isalpha() or len(word) <= 4:
        return word
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if word.endswith(suffix) and not word.endswith("ss") and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + repl
    return word


def terms(text: str) -> list[str]:
    """The text's terms: lower-cased word/number tokens, stop words dropped, lightly stemmed."""
    return [_stem(t) for t in _TOKEN.findall(text.lower()) if t not in STOP_WORDS]


def term_id(term: str) -> int:
    """A term's 32-bit id (stable across processes and versions: a keyed-free blake2b)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "big")


def _vector(weights: dict[int, float]) -> SparseTerms:
    ordered = sorted(weights.items())
    return SparseTerms(tuple(i for i, _ in ordered), tuple(round(w, 6) for _, w in ordered))


def document_vector(text: str) -> SparseTerms:
    """A chunk's BM25 term-frequency vector (IDF is Qdrant's, at query time)."""
    found = terms(text)
    counts: Counter = Counter(term_id(t) for t in found)
    norm = K1 * (1 - B + B * len(found) / AVG_TERMS)
    return _vector({i: tf * (K1 + 1) / (tf + norm) for i, tf in counts.items()})


def query_vector(text: str) -> SparseTerms:
    """A query's vector: every distinct term once, weight 1."""
    return _vector(dict.fromkeys((term_id(t) for t in terms(text)), 1.0))
