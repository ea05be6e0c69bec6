"""bench/batching.py (issue 14 item 3): the old count batches, idle worker time from a batch
timeline, and the generated book. No timing here: the benchmark measures."""

from __future__ import annotations

import pytest

from bench.batching import book_text, count_batches, timeline_stats, union_length


def test_count_batches_are_the_old_static_slices_in_plan_order():
    work = list(range(53))
    batches = count_batches(work, 25)
    assert [len(b) for b in batches] == [25, 25, 3]
    assert [x for b in batches for x in b] == work
    assert count_batches([], 25) == []


def test_union_length_merges_overlaps_and_gaps():
    assert union_length([(0, 10), (5, 12), (20, 25)]) == 17
    assert union_length([(3, 4), (0, 1)]) == 2
    assert union_length([]) == 0


def _batch(pid: int, start: float, end: float, work: int = 100, docs: int = 5) -> dict:
    return {"pid": pid, "start": start, "end": end, "work": work, "docs": docs}


def test_idle_worker_time_is_a_worker_without_a_batch_while_another_works():
    # worker 1: 0-10 and 10-20; worker 2: 0-60 (one heavy batch): worker 1 idles 40 s
    batches = [_batch(1, 0, 10), _batch(1, 10, 20), _batch(2, 0, 60, work=1000)]
    stats = timeline_stats(batches, workers=2)
    assert stats["idle_worker_s"] == 40 and stats["tail_s"] == 40
    assert stats["process_span_s"] == 60 and stats["busy_s"] == 80
    assert stats["work_max_over_mean"] == pytest.approx(1000 / 400, abs=0.01)
    assert stats["batch_s_min_median_max"] == [10, 10, 60] and stats["docs_min_max"] == [5, 5]


def test_balanced_workers_do_not_idle():
    batches = [_batch(1, 0, 30), _batch(2, 0, 15), _batch(2, 15, 30)]
    assert timeline_stats(batches, workers=2)["idle_worker_s"] == 0
    assert timeline_stats([], workers=2) == {"batches": 0}


def test_book_is_about_the_pages_asked_with_chapters():
    text = book_text(30)
    assert 30 * 2400 <= len(text) < 31 * 2400
    assert text.startswith("CHAPTER 1\n\n") and "CHAPTER 2\n\n" in text
    assert book_text(30) == text  # seeded: the same book every run
