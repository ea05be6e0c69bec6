"""DAG integrity: the DAG files import without errors, cheaply, with retries and the
intended shape (mapped batches, one Qdrant writer, Asset outlet)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.airflow_env import REPO

HEAVY = ["torch", "sentence_transformers", "unstructured", "presidio_analyzer", "great_expectations",
         "spacy", "qdrant_client", "pytesseract", "pandas", "transformers"]


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "fileshare_sync" in dagbag.dags
    assert "sharepoint_sync" in dagbag.dags
    assert "directory_sync" in dagbag.dags


def test_every_task_retries(dagbag):
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag.dag_id}.{task.task_id} has no retries"


@pytest.mark.parametrize(
    "dag_id,asset,kind",
    [("fileshare_sync", "docsync_fileshare", "fileshare"), ("sharepoint_sync", "docsync_sharepoint", "sharepoint")],
)
def test_shape_of_sync_dags(dagbag, dag_id, asset, kind):
    dag = dagbag.dags[dag_id]
    assert kind in dag.tags
    tasks = {t.task_id: t for t in dag.tasks}
    # reconcile (when due) runs in finalize, as in the CLI: one task hand-off less per run
    # deletes and ACL-only changes are applied by the plan task, before any document is processed
    # (one task hand-off less per run than a task of their own)
    # each batch is written by the process task that processed it (no write task: a hand-off per
    # group less, and writes start with the first batch; host_client.process_and_write)
    assert set(tasks) == {"plan", "process", "finalize", "freshness_check"}
    assert tasks["freshness_check"].upstream_task_ids == {"finalize"}
    assert tasks["freshness_check"].trigger_rule == "all_done"
    # ... and it is the only leaf: Airflow sets a run's state from its leaves, so it fails the run
    # itself when finalize did not succeed (tests/test_e2e_dag.py)
    assert [t.task_id for t in dag.tasks if not t.downstream_task_ids] == ["freshness_check"]
    # a run that changes nothing ends in plan (it finalizes there), skipping everything after it
    assert tasks["plan"].ignore_downstream_trigger_rules is True
    assert tasks["process"].upstream_task_ids == {"plan"}
    # mapped over the plan's groups of batches (docsync.batching.task_groups)
    assert type(tasks["process"]).__name__.endswith("MappedOperator")
    assert tasks["finalize"].upstream_task_ids == {"plan", "process"}
    assert tasks["finalize"].trigger_rule == "none_failed"
    assert [a.name for a in tasks["finalize"].outlets] == [asset]
    assert dag.max_active_runs == 1 and dag.catchup is False


def test_shape_of_the_directory_dag(dagbag):
    """One task, retried, one run at a time; credentials come from the Airflow connection, so the
    DAG file names none (tests/test_directory_ldap.py runs its task against slapd)."""
    dag = dagbag.dags["directory_sync"]
    assert [t.task_id for t in dag.tasks] == ["sync_directory"]
    assert "directory" in dag.tags and dag.max_active_runs == 1 and dag.catchup is False
    assert dag.tasks[0].retries >= 1
    assert "password" not in (REPO / "dags" / "directory_sync.py").read_text().lower()


@pytest.mark.parametrize("dag_id", ["fileshare_sync", "sharepoint_sync"])
def test_sync_dags_have_a_run_deadline_alert(dagbag, dag_id):
    """Airflow 3 Deadline Alert: a run not finished DOCSYNC_RUN_DEADLINE_MIN after it was queued
    calls docsync's callback (run by the triggerer), which says what to check."""
    from datetime import timedelta

    from airflow.sdk import AsyncCallback, DeadlineReference

    from docsync.dagfactory import run_deadline

    [alert] = dagbag.dags[dag_id].deadline
    assert alert.reference == DeadlineReference.DAGRUN_QUEUED_AT
    assert alert.interval == run_deadline() == timedelta(minutes=360)
    assert isinstance(alert.callback, AsyncCallback)
    assert alert.callback.path == "docsync.dagfactory.run_deadline_missed"
    assert alert.callback.kwargs == {"source": dag_id.removesuffix("_sync")}


def test_run_deadline_is_configurable_and_its_callback_says_what_to_check(monkeypatch, caplog):
    import asyncio
    import logging
    from datetime import timedelta

    from docsync.dagfactory import build_sync_dag, run_deadline_missed

    monkeypatch.setenv("DOCSYNC_RUN_DEADLINE_MIN", "90")
    dag = build_sync_dag("deadline_sync", source_name="deadline", schedule=None, doc_md="test")
    assert [a.interval for a in dag.deadline] == [timedelta(minutes=90)]
    # `airflow dags test` gets no deadline (apache/airflow#73428 fails its successful run), nor does 0
    monkeypatch.setattr("sys.argv", ["airflow", "dags", "test", "deadline_sync"])
    assert not build_sync_dag("deadline_sync", source_name="deadline", schedule=None, doc_md="test").deadline
    monkeypatch.setattr("sys.argv", ["airflow", "dag-processor"])
    monkeypatch.setenv("DOCSYNC_RUN_DEADLINE_MIN", "0")
    assert not build_sync_dag("deadline_sync", source_name="deadline", schedule=None, doc_md="test").deadline
    context = {"dag_run": {"dag_id": "deadline_sync", "dag_run_id": "scheduled__1", "queued_at": "2026-01-01T00:00:00Z"},
               "deadline": {"id": "x", "deadline_time": "2026-01-01T01:30:00Z"}}
    from airflow.triggers.callback import CallbackTrigger

    async def fire() -> list:
        """As the triggerer runs a missed deadline's AsyncCallback (path, kwargs and context)."""
        trigger = CallbackTrigger(callback_path="docsync.dagfactory.run_deadline_missed",
                                  callback_kwargs={"source": "deadline", "context": context})
        return [event.payload async for event in trigger.run()]

    with caplog.at_level(logging.ERROR, logger="docsync.dagfactory"):
        events = asyncio.run(fire())
    assert events[-1]["state"] == "success", events
    message = events[-1]["body"]
    assert message == asyncio.run(run_deadline_missed("deadline", context=context))
    assert "source 'deadline'" in message and "scheduled__1" in message and "2026-01-01T01:30:00Z" in message
    assert "DOCSYNC_RUN_DEADLINE_MIN" in message and message in caplog.text


@pytest.mark.parametrize("dag_file", sorted(p.name for p in (REPO / "dags").glob("*.py")))
def test_parsing_is_cheap(dag_file, tmp_path):
    """Parsing a DAG file must not import models or processing libraries, nor do I/O."""
    code = (
        "import json, runpy, sys, time; t = time.perf_counter(); "
        f"runpy.run_path({str(REPO / 'dags' / dag_file)!r}); "
        f"print(json.dumps({{'heavy': [m for m in {HEAVY!r} if m in sys.modules], 's': time.perf_counter() - t}}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={"AIRFLOW_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
