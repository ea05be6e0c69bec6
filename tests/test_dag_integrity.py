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
    assert set(tasks) == {"plan", "updates", "process", "write", "finalize", "reconcile", "freshness_check"}
    assert tasks["freshness_check"].upstream_task_ids == {"finalize"}
    assert tasks["freshness_check"].trigger_rule == "all_done"
    assert tasks["updates"].upstream_task_ids == {"plan"}
    # deletes and ACL-only changes are applied before any document is processed
    assert tasks["process"].upstream_task_ids == {"plan", "updates"}
    assert tasks["write"].upstream_task_ids == {"process"}
    assert tasks["write"].max_active_tis_per_dag == 1  # embedded Qdrant: one writer
    assert tasks["finalize"].upstream_task_ids == {"plan", "updates", "write"}
    assert tasks["finalize"].trigger_rule == "none_failed"
    assert [a.name for a in tasks["finalize"].outlets] == [asset]
    assert dag.max_active_runs == 1 and dag.catchup is False


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
