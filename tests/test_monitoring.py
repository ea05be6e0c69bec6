"""Monitoring: stage durations in the run summary, the Prometheus textfiles, the freshness SLO
check (library and DAG task) and the Grafana dashboard, on a real sync."""

from __future__ import annotations

import json
import logging
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from docsync import metrics, state
from docsync.config import load_settings
from docsync.directory import sync_directory
from docsync.evaluation.evaluate import run_evaluation
from docsync.pipeline import run_sync

REPO = Path(__file__).resolve().parents[1]
DASHBOARD = REPO / "include" / "docsync" / "grafana" / "docsync-dashboard.json"
METRIC = re.compile(r"\bdocsync_[a-z0-9_]+\b")


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """One real sync of a two-document share (one with PII, one without access) in its own home."""
    tmp = tmp_path_factory.mktemp("monitoring")
    share = tmp / "share"
    share.mkdir()
    (share / "memo.txt").write_text(
        "Warehouse operations track inbound pallets and dock scheduling. "
        "Escalations go to Margaret Holloway, extension 4471.\n"
    )
    (share / "memo.txt.acl.json").write_text(json.dumps({"allow": ["group:ops"]}))
    (share / "locked.txt").write_text("Quarterly plan.\n")
    (share / "locked.txt.acl.json").write_text(json.dumps({"allow": []}))
    mp = pytest.MonkeyPatch()
    mp.setenv("DOCSYNC_HOME", str(tmp / "home"))
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH", "DOCSYNC_SOURCE_NAME"):
        mp.delenv(var, raising=False)
    settings = load_settings().with_overrides(source_name="mon", fileshare_root=str(share))
    summary = run_sync(settings, root=str(share))
    # and a directory sync (docsync.directory) from a small LDIF export: its metrics too
    (tmp / "directory.ldif").write_text(
        "dn: uid=ann,dc=x\nobjectClass: inetOrgPerson\nuid: ann\ncn: Ann\nsn: A\n\n"
        "dn: cn=ops,dc=x\nobjectClass: groupOfNames\ncn: ops\nmember: uid=ann,dc=x\n")
    sync_directory(settings.replace(directory_ldif_path=str(tmp / "directory.ldif")))
    # one retrieval evaluation, so that its metrics (docsync_eval_*) are emitted too
    (tmp / "mon.jsonl").write_text(json.dumps({"query": "dock schedule for incoming pallets", "principals": ["group:ops"],
                                               "expected_paths": ["memo.txt"]}) + "\n")
    run_evaluation(settings, "mon", tmp / "mon.jsonl")
    yield settings, summary
    mp.undo()
    state.get_engine.cache_clear()


def test_summary_has_stage_durations_and_history(synced):
    settings, summary = synced
    assert summary["indexed"] == 1 and summary["quarantined"] == 1
    assert set(summary["stage_s"]) == set(metrics.STAGES)
    assert all(v >= 0 for v in summary["stage_s"].values()) and summary["stage_s"]["process"] > 0
    [run] = metrics.history(state.get_engine(settings.state_url), "mon")
    assert run["status"] == "success"
    assert {f"stage_{s}_s" for s in metrics.STAGES} <= set(run["values"])
    assert run["values"]["pii_person"] >= 1


def test_textfiles_are_valid_exposition(synced):
    settings, summary = synced
    main = (settings.home / "metrics" / "docsync_mon.prom").read_text()
    fresh = (settings.home / "metrics" / "docsync_mon_freshness.prom").read_text()
    assert 'docsync_indexed{source="mon"} 1.0' in main
    assert 'docsync_stage_duration_s{source="mon",stage="process"}' in main
    assert 'docsync_pii_entities{entity="PERSON",source="mon"}' in main
    assert "# TYPE docsync_last_success_timestamp_s gauge" in main
    assert 'docsync_freshness_s{source="mon"} 0.0' in fresh and 'docsync_freshness_slo_breached{source="mon"} 0.0' in fresh
    assert 'docsync_backlog_documents{source="mon"} 0.0' in fresh and 'docsync_quarantine_open{source="mon"} 1.0' in fresh
    # a first load: no propagation lag, the histogram is there with no observations
    assert "# TYPE docsync_propagation_lag_seconds histogram" in main
    assert 'docsync_propagation_lag_seconds_bucket{le="+Inf",source="mon"} 0.0' in main
    assert 'docsync_propagation_lag_seconds_count{source="mon"} 0.0' in main
    names = {metrics.family(n) for n in METRIC.findall(main + fresh)}
    assert names <= set(metrics.CATALOGUE), names - set(metrics.CATALOGUE)
    assert not set(METRIC.findall(main)) & set(METRIC.findall(fresh)), "a metric family in two textfiles"


def dashboard_metrics() -> set[str]:
    """The metric families the Grafana panels query."""
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    return {metrics.family(name) for expr in exprs for name in METRIC.findall(expr)}


def test_grafana_dashboard_uses_only_emitted_metrics(synced):
    settings, _ = synced
    dashboard = json.loads(DASHBOARD.read_text())
    emitted = set(METRIC.findall(metrics.exposition(state.get_engine(settings.state_url), settings.sync.freshness_slo_s)))
    for path in (settings.home / "metrics").glob("*.prom"):
        emitted |= set(METRIC.findall(path.read_text()))
    emitted = {metrics.family(n) for n in emitted}
    used = dashboard_metrics()
    assert used and used <= emitted, f"dashboard uses metrics docsync does not emit: {used - emitted}"
    assert {"docsync_freshness_s", "docsync_propagation_lag_seconds", "docsync_revocation_lag_seconds",
            "docsync_backlog_documents", "docsync_backlog_oldest_age_seconds", "docsync_quarantine_oldest_age_seconds",
            "docsync_unfinished_runs", "docsync_indexed", "docsync_quarantined", "docsync_deleted",
            "docsync_chunks_embedded", "docsync_ocr_pages", "docsync_pii_entities", "docsync_stage_duration_s"} <= used
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["query"] == "prometheus"
    for panel in dashboard["panels"]:
        assert panel["datasource"]["type"] == "prometheus" and panel["targets"], panel["title"]
        assert all(t["datasource"]["type"] == "prometheus" for t in panel["targets"])
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])


def test_dashboard_and_metrics_cannot_drift(synced):
    """Every metric docsync emits has a HELP text, is on a Grafana panel or listed as
    intentionally hidden (with the reason), and is defined in the README's Monitoring table;
    every metric a panel queries is one docsync emits."""
    settings, _ = synced
    text = metrics.exposition(state.get_engine(settings.state_url), settings.sync.freshness_slo_s)
    for path in (settings.home / "metrics").glob("*.prom"):
        text += path.read_text()
    emitted = {metrics.family(n) for n in METRIC.findall(text)}
    assert emitted == set(metrics.CATALOGUE), (emitted ^ set(metrics.CATALOGUE))  # nothing uncatalogued, nothing dead
    helps = dict(re.findall(r"^# HELP (\S+) (.+)$", text, re.M))
    for name in emitted:
        assert helps.get(name) == metrics.CATALOGUE[name] and len(metrics.CATALOGUE[name]) > 20, name
    on_panels = dashboard_metrics()
    hidden = set(metrics.DASHBOARD_HIDDEN)
    assert all(metrics.DASHBOARD_HIDDEN.values()), "say why a metric is hidden"
    assert not hidden & on_panels, f"listed as hidden but on a panel: {hidden & on_panels}"
    assert emitted - hidden <= on_panels, f"on no panel and not listed as hidden: {emitted - hidden - on_panels}"
    assert on_panels <= emitted, f"panels query metrics docsync does not emit: {on_panels - emitted}"
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Monitoring"):readme.index("\n## ", readme.index("## Monitoring") + 5)]
    table = {m for row in section.splitlines() if row.startswith("| `docsync_") for m in re.findall(r"`(docsync_[a-z0-9_]+)", row.split("|")[1])}
    assert table == set(metrics.CATALOGUE), f"README Monitoring table: {table ^ set(metrics.CATALOGUE)}"


def make_stale(settings, source: str, age: timedelta) -> None:
    engine = state.get_engine(settings.state_url)
    state.start_run(engine, f"old__{source}", source)
    state.finish_run(engine, f"old__{source}", "success", {"source": source}, {})
    with engine.begin() as conn:
        conn.execute(sa.update(state.runs).where(state.runs.c.run_id == f"old__{source}")
                     .values(finished_at=state.utcnow() - age))


def test_freshness_check_alerts_when_last_success_is_older_than_slo(settings, caplog):
    settings = settings.with_overrides(freshness_slo_s=24 * 3600)
    make_stale(settings, "fresh", timedelta(hours=2))
    assert metrics.check_freshness(settings, "fresh")["breached"] is False

    make_stale(settings, "stale", timedelta(days=3))
    with caplog.at_level(logging.ERROR, logger="docsync.metrics"), \
            pytest.raises(metrics.FreshnessSLOBreached) as breach:
        metrics.check_freshness(settings, "stale")
    message = str(breach.value)
    assert "source 'stale'" in message and "3.0 days ago" in message and "DOCSYNC_FRESHNESS_SLO_S=86400" in message
    assert "sync DAG" in message and message in caplog.text
    textfile = (settings.home / "metrics" / "docsync_stale_freshness.prom").read_text()
    assert 'docsync_freshness_slo_breached{source="stale"} 1.0' in textfile
    assert float(re.search(r'docsync_freshness_s\{source="stale"\} (\S+)', textfile).group(1)) > 3 * 86400 - 60

    with pytest.raises(metrics.FreshnessSLOBreached, match="no successful sync has ever been recorded"):
        metrics.check_freshness(settings, "never")
    assert 'docsync_freshness_s{source="never"} NaN' in (settings.home / "metrics" / "docsync_never_freshness.prom").read_text()


def test_freshness_check_task_fails_the_dag_run_without_retry(settings, monkeypatch):
    """The DAG's freshness_check task turns a breach into AirflowFailException (no retries)."""
    from airflow.sdk.exceptions import AirflowFailException

    from docsync.dagfactory import build_sync_dag

    make_stale(settings, "stalesrc", timedelta(days=2))
    monkeypatch.setenv("DOCSYNC_FRESHNESS_SLO_S", "3600")
    dag = build_sync_dag("stalesrc_sync", source_name="stalesrc", schedule=None, doc_md="test")
    task = dag.get_task("freshness_check")
    assert task.trigger_rule == "all_done" and task.upstream_task_ids == {"finalize"}
    with pytest.raises(AirflowFailException, match="freshness SLO breached for source 'stalesrc'"):
        task.python_callable()
    monkeypatch.setenv("DOCSYNC_FRESHNESS_SLO_S", str(3 * 86400))
    assert task.python_callable()["breached"] is False


def test_monitoring_and_review_code_reads_the_state_store_through_named_queries():
    """metrics, the web app and its pages hold no SQL: every statement on docsync's tables is
    a named function of docsync.state (issue 12: stores own their schemas)."""
    tables = ("documents", "chunks", "runs", "metric_points", "quarantine", "quarantine_actions", "sources")
    package = REPO / "include" / "docsync"
    for module in (package / "metrics.py", package / "webapi.py", *(package / "ui").glob("*.py")):
        text = module.read_text()
        assert not re.search(r"^import sqlalchemy|^from sqlalchemy", text, re.M), f"{module.name} imports SQLAlchemy"
        used = set(re.findall(r"\bstate\.(\w+)\.c\b", text)) | {t for t in tables if f"state.{t}." in text}
        assert not used, f"{module.name} uses state tables {used}"


def test_histograms_are_well_formed_exposition():
    """What a Prometheus server reads: each lag histogram is one family of type histogram with
    cumulative buckets in order, +Inf equal to _count, a _sum, per source."""
    from prometheus_client.parser import text_string_to_metric_families

    flat = metrics.flatten({"propagation_lag_seconds": metrics.histogram([30.0, 4000.0, 9e6]),
                            "revocation_lag_seconds": metrics.histogram([5.0]),
                            "directory_revocation_lag_seconds": metrics.histogram([70.0])})
    text = metrics.render(metrics.samples_for("share", flat) + metrics.samples_for("other", flat))
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert set(families) == set(metrics.HISTOGRAMS)
    for name, fam in families.items():
        assert fam.type == "histogram" and fam.documentation == metrics.CATALOGUE[name]
        for source in ("share", "other"):
            samples = [s for s in fam.samples if s.labels["source"] == source]
            bounds = [float(s.labels["le"]) for s in samples if s.name.endswith("_bucket")]
            counts = [s.value for s in samples if s.name.endswith("_bucket")]
            assert bounds == [*metrics.BUCKETS, float("inf")] and counts == sorted(counts)
            [count] = [s.value for s in samples if s.name.endswith("_count")]
            assert counts[-1] == count and any(s.name.endswith("_sum") for s in samples)
    assert flat["propagation_lag_seconds_bucket_le_3600"] == 1 and flat["propagation_lag_seconds_bucket_le_604800"] == 2
