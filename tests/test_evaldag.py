"""The retrieval evaluation DAGs: they parse cheaply, run after every update of their source's
collection Asset or weekly, and their task skips without a set and fails (no retry) on a bad one."""

from __future__ import annotations

import pytest

from tests.support.airflow_env import REPO


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    import os

    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow-home")))
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(str(REPO / "dags"))


@pytest.mark.parametrize("dag_id,asset", [("fileshare_retrieval_eval", "docsync_fileshare"),
                                          ("sharepoint_retrieval_eval", "docsync_sharepoint")])
def test_eval_dags_run_on_the_collection_asset_or_weekly(dagbag, dag_id, asset):
    from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable

    assert dagbag.import_errors == {}
    dag = dagbag.dags[dag_id]
    schedule = dag.timetable
    assert type(schedule).__name__ == AssetOrTimeSchedule.__name__
    assert [a.name for a in schedule.asset_condition.objects] == [asset]
    assert type(schedule.timetable).__name__ == CronTriggerTimetable.__name__
    assert schedule.timetable.expression == "0 6 * * 1"  # at least weekly: Mondays 06:00 UTC
    [task] = dag.tasks
    assert task.task_id == "evaluate" and task.retries >= 1
    assert dag.max_active_runs == 1 and dag.catchup is False and "evaluation" in dag.tags


def test_the_sync_dag_emits_the_asset_the_eval_dag_waits_for(dagbag):
    finalize = dagbag.dags["fileshare_sync"].task_dict["finalize"]
    assert [a.name for a in finalize.outlets] == ["docsync_fileshare"]


def test_eval_task_skips_without_a_set_and_fails_on_a_bad_one(dagbag, settings, monkeypatch, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    monkeypatch.setenv("DOCSYNC_EVAL_DIR", str(tmp_path / "eval"))
    evaluate = dagbag.dags["fileshare_retrieval_eval"].task_dict["evaluate"].python_callable
    with pytest.raises(AirflowSkipException, match="no evaluation set for source 'fileshare'"):
        evaluate(run_id="manual__1")
    (tmp_path / "eval").mkdir()
    (tmp_path / "eval" / "fileshare.jsonl").write_text('{"query": "q", "principals": ["finance"]}\n')
    with pytest.raises(AirflowFailException, match=r"fileshare.jsonl:1: .*invalid principal 'finance'"):
        evaluate(run_id="manual__2")
