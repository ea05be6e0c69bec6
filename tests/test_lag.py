"""Propagation lag, revocation lag and backlog (issue 19) on real syncs: a first load shows no
propagation lag but a backlog; documents modified between runs land in the histogram buckets
their lag belongs to; an ACL change shows in the revocation-lag histogram, measured from when a
(failed) run first detected it."""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from docsync import metrics, state
from docsync.pipeline import run_sync
from docsync.steps.plan import plan
from tests.test_pipeline import make_share, write_doc


@pytest.fixture()
def share(tmp_path) -> Path:
    return make_share(tmp_path / "share", n=4)


def values(settings, run_deadline_s: float = metrics.DEFAULT_RUN_DEADLINE_S) -> dict[str, float]:
    """What /docsync/metrics serves for the source, as flat names."""
    engine = state.get_engine(settings.state_url)
    return metrics.latest_values(engine, settings.source.name, settings.sync.freshness_slo_s, run_deadline_s)


def buckets(flat: dict[str, float], name: str) -> dict[str, float]:
    return {le: flat[f"{name}_bucket_le_{le}"] for le in ("60", "300", "900", "3600", "7200", "21600", "inf")}


def age_pending(settings, by: timedelta) -> None:
    """Pretend the pending changes were first detected ``by`` earlier."""
    engine = state.get_engine(settings.state_url)
    with engine.begin() as conn:
        for row in conn.execute(sa.select(state.pending.c.doc_id, state.pending.c.detected_at)).all():
            conn.execute(sa.update(state.pending).where(state.pending.c.doc_id == row.doc_id)
                         .values(detected_at=state.as_utc(row.detected_at) - by))


def test_first_load_is_backlog_then_modified_documents_fill_the_histogram(share, settings):
    source = settings.source.name
    engine = state.get_engine(settings.state_url)
    # A first run that planned and then died: its four new documents are backlog, aged from
    # when it saw them; nothing is lag.
    plan(settings, "failed__1", str(share))
    age_pending(settings, timedelta(hours=2))
    before = values(settings)
    assert before["backlog_documents"] == 4 and 7200 <= before["backlog_oldest_age_seconds"] < 7300
    assert before["revocation_backlog_documents"] == 0 and "propagation_lag_seconds_count" not in before
    assert before["unfinished_runs"] == 0  # younger than the run deadline: it may still be going
    assert values(settings, run_deadline_s=0)["unfinished_runs"] == 1

    first = run_sync(settings, root=str(share))
    assert first["new"] == 4 and first["indexed"] == 4
    assert first["propagation_lag_seconds"]["count"] == 0  # a first load is no propagation lag
    loaded = values(settings)
    assert loaded["propagation_lag_seconds_count"] == 0 and set(buckets(loaded, "propagation_lag_seconds").values()) == {0}
    assert loaded["backlog_documents"] == 0 and loaded["backlog_oldest_age_seconds"] == 0
    assert loaded["unfinished_runs"] == 0  # the failed run is older than the last success

    # The first run's scan started 90 minutes ago. doc0 changed 3 days ago, before that scan, yet
    # differs now (so the lag counts from the scan: ~5400 s); doc1 changed 10 minutes ago (~600 s).
    with engine.begin() as conn:
        conn.execute(sa.update(state.runs).where(state.runs.c.run_id == first["run_id"])
                     .values(started_at=state.utcnow() - timedelta(minutes=90)))
    now = time.time()
    for rel, mtime in (("team0/doc0.txt", now - 3 * 86400), ("team1/doc1.txt", now - 600)):
        path = write_doc(share, rel, [f"Rewritten {rel}: the vendor contract now renews every two years."])
        os.utime(path, (mtime, mtime))
    write_doc(share, "team2/new.txt", ["A brand new memo about the cafeteria menu."])  # new: not lag
    second = run_sync(settings, root=str(share))
    assert second["modified"] == 2 and second["new"] == 1
    lag = values(settings)
    assert lag["propagation_lag_seconds_count"] == 2
    assert buckets(lag, "propagation_lag_seconds") == {
        "60": 0, "300": 0, "900": 1, "3600": 1, "7200": 2, "21600": 2, "inf": 2}
    assert 5400 + 600 <= lag["propagation_lag_seconds_sum"] < 5400 + 600 + 600

    # Cumulative across runs: a third run's change adds to the same counters.
    with engine.begin() as conn:
        conn.execute(sa.update(state.runs).where(state.runs.c.run_id == second["run_id"])
                     .values(started_at=state.utcnow() - timedelta(minutes=20)))
    path = write_doc(share, "team0/doc0.txt", ["Rewritten again: renewals are now yearly."])
    os.utime(path, (now - 86400, now - 86400))
    third = run_sync(settings, root=str(share))
    assert third["propagation_lag_seconds"]["count"] == 1
    total = values(settings)
    assert total["propagation_lag_seconds_count"] == 3
    assert buckets(total, "propagation_lag_seconds") == {
        "60": 0, "300": 0, "900": 1, "3600": 2, "7200": 3, "21600": 3, "inf": 3}
    text = (settings.home / "metrics" / f"docsync_{source}.prom").read_text()
    assert f'docsync_propagation_lag_seconds_bucket{{le="3600",source="{source}"}} 2.0' in text
    assert f'docsync_propagation_lag_seconds_count{{source="{source}"}} 3.0' in text


def test_acl_change_shows_as_revocation_lag_from_first_detection(share, settings):
    source = settings.source.name
    run_sync(settings, root=str(share))
    assert values(settings)["revocation_lag_seconds_count"] == 0

    # An ACL change that a run detected and then died on: a revocation waiting, 2 hours old.
    Path(share / "team1/doc1.txt.acl.json").write_text(json.dumps({"allow": ["group:legal"]}))
    plan(settings, "failed__acl", str(share))
    age_pending(settings, timedelta(hours=2))
    waiting = values(settings)
    assert waiting["revocation_backlog_documents"] == 1 and waiting["revocation_backlog_oldest_age_seconds"] >= 7200
    assert waiting["backlog_documents"] == 0

    summary = run_sync(settings, root=str(share))
    assert summary["acl_updated"] == 1
    assert summary["revocation_lag_seconds"]["count"] == 1
    assert 7200 <= summary["revocation_lag_max_s"] < 7200 + 600  # from the failed run's detection
    applied = values(settings)
    assert applied["revocation_backlog_documents"] == 0 and applied["revocation_backlog_oldest_age_seconds"] == 0
    assert buckets(applied, "revocation_lag_seconds") == {
        "60": 0, "300": 0, "900": 0, "3600": 0, "7200": 0, "21600": 1, "inf": 1}

    # A second ACL change applied by the run that detects it: within the first bucket.
    Path(share / "team2/doc2.txt.acl.json").write_text(json.dumps({"allow": ["group:hr"]}))
    run_sync(settings, root=str(share))
    after = values(settings)
    assert after["revocation_lag_seconds_count"] == 2 and after["revocation_lag_seconds_bucket_le_60"] == 1
    text = metrics.exposition(state.get_engine(settings.state_url), settings.sync.freshness_slo_s)
    assert "# TYPE docsync_revocation_lag_seconds histogram" in text
    assert f'docsync_revocation_lag_seconds_bucket{{le="60",source="{source}"}} 1.0' in text
    assert f'docsync_revocation_lag_seconds_count{{source="{source}"}} 2.0' in text
