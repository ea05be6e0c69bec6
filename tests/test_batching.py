"""docsync.batching.task_groups: how a DAG run's batches become mapped tasks (issue 15)."""

from __future__ import annotations

import pytest

from docsync.batching import process_parallelism, task_groups
from docsync.config import load_settings


@pytest.mark.parametrize("batches,parallel", [(0, 2), (1, 2), (3, 1), (12, 2), (40, 2), (41, 3), (1000, 8)])
def test_every_batch_in_exactly_one_group_in_plan_order(batches, parallel):
    refs = [f"batch-{i:05d}.json" for i in range(batches)]
    groups = task_groups(refs, parallel)
    assert [ref for group in groups for ref in group] == refs
    assert all(groups) and all(len(a) >= len(b) for a, b in zip(groups, groups[1:]))  # largest first


def test_few_tasks_for_many_batches_single_batches_at_the_end():
    sizes = [len(g) for g in task_groups([str(i) for i in range(40)], 2)]
    assert sizes == [10, 8, 6, 4, 3, 3, 2, 1, 1, 1, 1]  # 11 tasks, not 40
    # the last tasks are single batches: the workers finish together
    assert sizes[-2 * 2:] == [1] * 4
    # while there are fewer batches than twice the workers, one task each (as before grouping)
    assert [len(g) for g in task_groups([str(i) for i in range(4)], 2)] == [1, 1, 1, 1]


def test_parallelism_follows_the_worker_host_unless_set(monkeypatch):
    monkeypatch.delenv("DOCSYNC_PROCESS_PARALLELISM", raising=False)
    monkeypatch.setenv("DOCSYNC_WORKERS", "3")
    assert process_parallelism(load_settings()) == 3
    monkeypatch.setenv("DOCSYNC_PROCESS_PARALLELISM", "8")  # e.g. four machines of two host workers
    assert process_parallelism(load_settings()) == 8
