"""Retrieval metrics over ranked chunk results (pure functions, no index, no store).

A query's result is the list of the document paths of its top chunks, best first (a document
may appear more than once: several of its chunks). Ranks are chunk ranks, because a RAG
application reads the top k chunks, not the top k documents:

- recall@k: the share of the expected documents with a chunk among the first k chunks;
- reciprocal rank: 1 / the rank of the first chunk from an expected document (0: none in the list);
- nDCG@k: binary gains, each expected document counted once, at its first chunk; the ideal
  ranks the expected documents first: IDCG = sum over i < min(|expected|, k) of 1 / log2(i + 2).

Set-level figures are means over the labelled queries (those with expected documents);
latency percentiles use the nearest-rank method.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def recall_at(expected: set[str], ranked: Sequence[str], k: int) -> float:
    if not expected:
        raise ValueError("recall needs at least one expected document")
    return len(expected & set(ranked[:k])) / len(expected)


def reciprocal_rank(expected: set[str], ranked: Sequence[str]) -> float:
    for rank, path in enumerate(ranked, start=1):
        if path in expected:
            return 1.0 / rank
    return 0.0


def ndcg_at(expected: set[str], ranked: Sequence[str], k: int) -> float:
    if not expected:
        raise ValueError("nDCG needs at least one expected document")
    found: set[str] = set()
    dcg = 0.0
    for i, path in enumerate(ranked[:k]):
        if path in expected and path not in found:
            found.add(path)
            dcg += 1.0 / math.log2(i + 2)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(len(expected), k)))
    return dcg / ideal


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else math.nan
