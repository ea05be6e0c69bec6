"""Builds the retrieval evaluation DAGs: one per source, scheduled on the source's collection
Asset (so it runs after every sync run that updated the collection) or weekly, whichever comes
first. Cheap to import: only `airflow.sdk` at module level."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from docsync.dagfactory import collection_asset

DEFAULT_ARGS = {
    "owner": "docsync",
    "retries": 1,  # an index held by a sync (embedded Qdrant) or a restarted worker; a failed judgement never retries
    "retry_delay": timedelta(minutes=2),
    "execution_timeout": timedelta(hours=1),
}


def eval_schedule(source_name: str) -> AssetOrTimeSchedule:
    """After every update of the collection's Asset, and at least on DOCSYNC_EVAL_CRON (default
    Mondays 06:00 UTC), so that a quiet source is still checked weekly."""
    cron = os.environ.get("DOCSYNC_EVAL_CRON") or "0 6 * * 1"
    return AssetOrTimeSchedule(timetable=CronTriggerTimetable(cron, timezone="UTC"),
                               assets=[collection_asset(source_name)])


def build_eval_dag(dag_id: str, *, source_name: str, doc_md: str) -> object:
    """A one-task DAG: evaluate the source's set (docsync.evaluation.evaluate.run_evaluation),
    store the run and its metrics, and fail on ACL violations, stale hits or a recall@10 drop."""

    @dag(dag_id=dag_id, schedule=eval_schedule(source_name), start_date=datetime(2026, 1, 1), catchup=False,
         max_active_runs=1, default_args=DEFAULT_ARGS, tags=["docsync", "evaluation"], doc_md=doc_md)
    def eval_dag():
        @task
        def evaluate(run_id: str | None = None) -> dict:
            from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

            from docsync.config import load_settings
            from docsync.evaluation.eval_set import EvalSetError
            from docsync.evaluation.evaluate import eval_set_path, run_evaluation

            settings = load_settings().with_overrides(source_name=source_name)
            if not eval_set_path(settings, source_name).exists():
                raise AirflowSkipException(
                    f"no evaluation set for source {source_name!r} at {eval_set_path(settings, source_name)}: "
                    "write one (README, 'Retrieval evaluation') to measure retrieval quality"
                )
            try:
                report = run_evaluation(settings, source_name, run_id=run_id)
            except EvalSetError as exc:
                raise AirflowFailException(str(exc)) from exc
            if not report["passed"]:  # the alert: a person must look (no retries)
                raise AirflowFailException(
                    f"retrieval evaluation of source {source_name!r} failed: " + "; ".join(report["failures"])
                )
            return {k: v for k, v in report.items() if k not in ("misses", "violations", "stale")}

        evaluate()

    return eval_dag()
