"""docsync.state.eval_store on SQLite and PostgreSQL: evaluation runs stored and read back in
order, the baseline (best passing run of the same set and mode), NaN figures kept."""

from __future__ import annotations

import math
import uuid

from docsync import state


def test_runs_history_and_baseline(state_url):
    engine = state.get_engine(state_url)
    source = f"src{uuid.uuid4().hex[:8]}"
    for run_id, passed, recall, mode in (("r1", True, 0.90, "dense"), ("r2", True, 0.95, "dense"),
                                         ("r3", False, 0.99, "dense"), ("r4", True, 0.97, "hybrid")):
        state.record_eval(engine, source=source, run_id=run_id, mode=mode, set_sha="s1", passed=passed,
                          metrics={"eval_recall_at_10": recall, "eval_baseline_recall_at_10": math.nan},
                          report={"misses": []})
    history = state.eval_history(engine, source)
    assert [h["run_id"] for h in history] == ["r1", "r2", "r3", "r4"]
    assert history[0]["recorded_at"].tzinfo is not None and math.isnan(history[0]["metrics"]["eval_baseline_recall_at_10"])
    assert state.latest_eval(engine, source)["run_id"] == "r4"
    assert state.baseline_recall(engine, source, "dense", "s1") == 0.95  # best passing; the failed 0.99 is no baseline
    assert state.baseline_recall(engine, source, "hybrid", "s1") == 0.97
    assert state.baseline_recall(engine, source, "dense", "other-set") is None
    assert state.latest_eval(engine, "nosuchsource") is None
