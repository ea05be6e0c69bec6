"""Retrieval metrics on a tiny hand-made result set with known answers (exact values)."""

from __future__ import annotations

import math

import pytest

from docsync.evaluation import scoring

# (expected documents, document paths of the ranked chunks, best first)
CASES = [
    ({"a"}, ["a", "b", "a"]),  # the answer first
    ({"a", "b"}, ["c", "a", "c", "b"]),  # two answers, at chunk ranks 2 and 4
    ({"d"}, ["c", "c"]),  # the answer missing
    ({"e"}, ["x"] * 5 + ["e"] + ["x"] * 5),  # the answer at rank 6: in the top 10, not the top 5
]


def test_per_query_values():
    assert [scoring.recall_at(e, r, 1) for e, r in CASES] == [1.0, 0.0, 0.0, 0.0]
    assert [scoring.recall_at(e, r, 5) for e, r in CASES] == [1.0, 1.0, 0.0, 0.0]
    assert [scoring.recall_at(e, r, 10) for e, r in CASES] == [1.0, 1.0, 0.0, 1.0]
    assert [scoring.reciprocal_rank(e, r) for e, r in CASES] == [1.0, 0.5, 0.0, 1 / 6]
    ndcg = [scoring.ndcg_at(e, r, 10) for e, r in CASES]
    assert ndcg[0] == 1.0  # a second chunk of the same document adds nothing
    assert ndcg[1] == pytest.approx((1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3)), abs=1e-12)
    assert ndcg[1] == pytest.approx(0.6509209298071326, abs=1e-12)
    assert ndcg[2] == 0.0
    assert ndcg[3] == pytest.approx(1 / math.log2(7), abs=1e-12)  # rank r counts 1/log2(r + 1)


def test_set_means():
    assert scoring.mean([scoring.recall_at(e, r, 10) for e, r in CASES]) == 0.75
    assert scoring.mean([scoring.reciprocal_rank(e, r) for e, r in CASES]) == pytest.approx((1 + 0.5 + 0 + 1 / 6) / 4)
    assert math.isnan(scoring.mean([]))


def test_percentiles_are_nearest_rank():
    values = [40.0, 10.0, 30.0, 20.0]
    assert scoring.percentile(values, 50) == 20.0
    assert scoring.percentile(values, 95) == 40.0
    assert scoring.percentile([7.0], 95) == 7.0
    assert math.isnan(scoring.percentile([], 50))


def test_a_query_without_expected_documents_has_no_recall():
    with pytest.raises(ValueError):
        scoring.recall_at(set(), ["a"], 10)
