"""Builds the sync DAGs. Cheap to import: only `airflow.sdk` at module level; each task
imports the pipeline when it runs, so DAG parsing never loads models or libraries."""

from __future__ import annotations

import logging
import os
import sys
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from airflow.sdk import Asset, AsyncCallback, DeadlineAlert, DeadlineReference, Param, dag, task

if TYPE_CHECKING:
    from airflow.sdk.types import RuntimeTaskInstanceProtocol

    from docsync.config import Settings

log = logging.getLogger(__name__)

DEFAULT_ARGS = {
    "owner": "docsync",
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": True,
    "execution_timeout": timedelta(hours=3),
}


def process_pool() -> str:
    """Airflow pool of the process tasks (OCR + embedding), DOCSYNC_PROCESS_POOL; create it
    with `airflow pools set docsync_ocr <slots> ...` (README, "Running in production")."""
    return os.environ.get("DOCSYNC_PROCESS_POOL") or "default_pool"


def run_deadline() -> timedelta:
    """How long a sync run may take from being queued to finishing: DOCSYNC_RUN_DEADLINE_MIN
    (default 360 minutes; read when the DAG file is parsed, as Airflow evaluates deadlines)."""
    return timedelta(minutes=float(os.environ.get("DOCSYNC_RUN_DEADLINE_MIN") or 360))


def run_deadlines(source_name: str) -> list[DeadlineAlert] | None:
    """The sync DAG's Airflow Deadline Alert: a run not finished ``run_deadline()`` after it was
    queued calls :func:`run_deadline_missed`. None with DOCSYNC_RUN_DEADLINE_MIN=0, and under
    `airflow dags test` (the DAG parsed in that command's own process): Airflow 3.3's DAG.test()
    fails a run that succeeded when its DAG has a deadline (apache/airflow#73428), and a test run
    is not a scheduled one that could be late."""
    interval = run_deadline()
    if interval <= timedelta(0) or sys.argv[1:3] == ["dags", "test"]:
        return None
    return [DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=interval,
        callback=AsyncCallback(run_deadline_missed, kwargs={"source": source_name}),
        name="docsync-run-deadline",
    )]


async def run_deadline_missed(source: str, context: dict | None = None) -> str:
    """Airflow Deadline Alert callback (run by the triggerer): a sync run did not finish within
    DOCSYNC_RUN_DEADLINE_MIN. Airflow shows the missed deadline on the run; this logs what it
    means and what to check (route the triggerer's log, or replace the callback with a notifier)."""
    run = (context or {}).get("dag_run") or {}
    deadline = (context or {}).get("deadline") or {}
    message = (
        f"docsync run deadline missed for source {source!r}: DAG {run.get('dag_id', '?')} run "
        f"{run.get('dag_run_id') or run.get('run_id') or '?'} (queued {run.get('queued_at', '?')}) had not finished "
        f"by {deadline.get('deadline_time', '?')} (DOCSYNC_RUN_DEADLINE_MIN). Changes wait in the backlog until it "
        "does: look for a task stuck in OCR or embedding, a full pool, or a source that stopped answering."
    )
    log.error(message)
    return message


def _one_run_at_a_time(dag_id: str, schedule: str | None, doc_md: str) -> dict:
    """The ``@dag`` arguments every docsync DAG shares: no backfill, and one run at a time
    (runs of one source must not interleave their plans and writes)."""
    return {"dag_id": dag_id, "schedule": schedule, "start_date": datetime(2026, 1, 1), "catchup": False,
            "max_active_runs": 1, "doc_md": doc_md}


def collection_asset(source_name: str) -> Asset:
    """The Asset a sync DAG updates; downstream DAGs can be scheduled on it."""
    return Asset(name=f"docsync_{source_name}", uri=f"qdrant://docsync/docsync_{source_name}", group="docsync")


def build_sync_dag(
    dag_id: str,
    *,
    source_name: str,
    schedule: str | None,
    doc_md: str,
    source_kind: str = "fileshare",
) -> object:
    """A TaskFlow DAG: plan (then deletes and ACL-only changes, before any processing) -> process,
    mapped over groups of batches (each batch processed, then written while the next is
    processed) -> finalize (summary, metrics, Asset, reconcile when due); freshness_check runs after finalize whatever happened and fails when the freshness
    SLO is breached or the sync did not finish. Only references travel through XCom: the plan's, the batches', the writes' reports."""
    asset = collection_asset(source_name)

    @dag(
        **_one_run_at_a_time(dag_id, schedule, doc_md),
        default_args=DEFAULT_ARGS,
        params={
            "root": Param("", type="string", description="Source root; empty means the configured default."),
            "full_resync": Param(False, type="boolean", description=(
                "Re-hash every document instead of trusting an unchanged size and mtime (shares where tools "
                "rewrite files keeping both).")),
        },
        tags=["docsync", source_kind],
        # "A run did not finish in time", where Airflow users look (the run's deadline in the UI).
        deadline=run_deadlines(source_name),
    )
    def sync_dag():
        def settings_for_run() -> Settings:  # runs inside a task, never at parse time
            from docsync.config import load_settings

            return load_settings().with_overrides(source_name=source_name, source_kind=source_kind)

        # A run with nothing to process ends in this task: the rest of the DAG is skipped (task
        # hand-offs were most of a no-change run; issue 15).
        @task.short_circuit(ignore_downstream_trigger_rules=True)
        def plan(
            params: dict | None = None, run_id: str | None = None, ti: RuntimeTaskInstanceProtocol | None = None
        ) -> list[list[str]] | None:
            """Stage the run's work, then apply its deletes and ACL-only changes, before any document
            is processed (revocations first; on the worker host's writer, or here). Returns the
            batches' references in groups (mapped over below) and pushes the plan's reference and the
            updates' report as XComs ``plan`` and ``updates`` for finalize. A run that changes
            nothing is finished here, as the CLI finishes it right after the plan: its summary,
            reconcile when due, the staged files dropped and the freshness check; it returns None,
            which skips the rest of the DAG."""
            from airflow.sdk.exceptions import AirflowFailException

            from docsync.batching import process_parallelism, task_groups
            from docsync.host_client import prefetcher, warm_caller
            from docsync.metrics import FreshnessSLOBreached, check_freshness
            from docsync.sources import SourceRefused
            from docsync.steps.plan import plan as plan_run

            params = params or {}
            settings = settings_for_run()
            # Dynamic mapping needs this task finished: with DOCSYNC_PLAN_SLICE_BATCHES the walk stops
            # once that many batches are staged (its scan stays open, nothing deleted) and the
            # next run resumes it, so an initial load starts processing within minutes.
            # The first batches go to the worker host as they are staged (one more than it runs at
            # once): it processes them while the walk goes on, their process tasks take the results.
            early = prefetcher(settings, process_parallelism(settings) + 1)
            try:
                planned = plan_run(settings, run_id, params.get("root") or None, full=bool(params.get("full_resync")),
                                   on_batch=early, max_batches=settings.sync.plan_slice_batches)
            except SourceRefused as exc:  # the same content would be refused again: no retries
                raise AirflowFailException(str(exc)) from exc
            ti.xcom_push(key="plan", value=planned.plan)
            call = warm_caller(settings)
            report = call("apply_updates", settings, planned.plan)
            ti.xcom_push(key="updates", value=report)
            if planned.batches:
                # One mapped task per group of batches, not per batch: each task costs the scheduler
                # and the executor ~1 CPU s on the cores the batches need (issue 15).
                return task_groups(planned.batches, process_parallelism(settings))
            if not call("changes_nothing", planned.plan):
                # Deletes, ACL changes or a refusal and no batch: finalize reports them (and updates
                # the collection's Asset); one empty group, whose process task does nothing.
                return [[]]
            call("finish", settings, planned.plan, [], report, run_id)
            try:
                check_freshness(settings, source_name)
            except FreshnessSLOBreached as exc:
                raise AirflowFailException(str(exc)) from exc
            return None

        # Caps concurrent OCR + embedding across all workers. The task writes each batch it
        # processed, at once: a write task per group cost the scheduler, executor and api-server
        # ~1 CPU s on the cores the batches need and held the group's batches until its last (issue 15).
        @task(pool=process_pool())
        def process(batch_refs: list[str]) -> list[dict]:
            """Hands each batch of its group to this machine's warm worker host (`docsync
            worker-host`), or processes it here when none answers; each is written (by the host's
            writer, or here) while the next is processed. Imports nothing heavy before that."""
            from docsync.host_client import process_and_write

            return process_and_write(settings_for_run(), batch_refs)

        @task(trigger_rule="none_failed", outlets=[asset])
        def finalize(plan_ref: str, updates_report: dict, write_reports: list | None = None,
                     run_id: str | None = None) -> dict:
            """The run's summary and metrics, the retrieval canary, GX Data Docs, reconcile when
            due (see steps.reconcile.reconcile_reason), then the run's staged files dropped (a
            failed run keeps them for retries): on the worker host's writer, or here."""
            from airflow.sdk.exceptions import AirflowFailException

            from docsync.fingerprint import EmbeddingChanged
            from docsync.host_client import warm_caller

            settings = settings_for_run()
            # A list of each process task's list of reports; flat lists are taken as they are
            # (Airflow 3.3 resolved a one-instance mapped task group to its lone list).
            groups = list(write_reports or [])
            reports = groups if all(isinstance(r, dict) for r in groups) else [r for g in groups for r in g or []]
            try:  # a refusal fails on the host, then again here, where it is raised
                summary = warm_caller(settings)("finish", settings, plan_ref, reports, updates_report, run_id)
            except EmbeddingChanged as exc:  # the model changed: a retry cannot help, `docsync reindex` does
                raise AirflowFailException(str(exc)) from exc
            if summary.get("canary_misses"):  # logged by the host too; said here for the task's log
                log.warning("retrieval canary: %d of %d sampled chunks did not find their own document first: %s",
                            len(summary["canary_misses"]), summary.get("canary_samples"), summary["canary_misses"])
            return summary

        # all_done: also runs when the sync failed, which is when freshness matters. It is the
        # run's only leaf, and Airflow sets a run's state from its leaves: so it fails the run
        # itself when finalize did not succeed (after reporting freshness).
        @task(trigger_rule="all_done")  # AirflowFailException below: no retries
        def freshness_check(run_id: str | None = None, ti: RuntimeTaskInstanceProtocol | None = None) -> dict:
            from airflow.sdk.exceptions import AirflowFailException

            from docsync.metrics import FreshnessSLOBreached, check_freshness

            try:
                report = check_freshness(settings_for_run(), source_name)
            except FreshnessSLOBreached as exc:
                raise AirflowFailException(str(exc)) from exc
            if ti is None:  # called outside a task run (tests): there is no run to fail
                return report
            finalized = ti.get_task_states(dag_id=ti.dag_id, task_ids=["finalize"], run_ids=[run_id])
            state = (finalized.get(run_id) or {}).get("finalize")
            if state != "success":
                raise AirflowFailException(
                    f"the sync of source {source_name!r} did not finish (its finalize task: {state}); nothing was "
                    f"lost, the next run resumes it: see the first failed task of run {run_id} for why "
                    f"(freshness now {report.get('freshness_s')} s of an SLO of {report.get('slo_s')} s)")
            return report

        groups = plan()
        plan_ref, applied = groups["plan"], groups["updates"]  # the XComs the plan task pushed under these keys
        summary = finalize(plan_ref, applied, process.expand(batch_refs=groups))
        summary >> freshness_check()

    return sync_dag()


def build_directory_dag(dag_id: str, *, schedule: str | None, doc_md: str) -> object:
    """The directory sync: one task that reads users, groups and memberships (LDAP through the
    Airflow connection DOCSYNC_DIRECTORY_CONN_ID, or the LDIF export DOCSYNC_DIRECTORY_LDIF)
    and stores the new snapshot (docsync.directory.sync_directory). A directory that cannot be
    read fails the task (retried) and keeps the last good snapshot in force."""

    @dag(
        **_one_run_at_a_time(dag_id, schedule, doc_md),
        default_args=DEFAULT_ARGS | {"execution_timeout": timedelta(minutes=30)},
        tags=["docsync", "directory"],
    )
    def directory_dag():
        @task
        def sync_directory() -> dict:
            from docsync.config import load_settings
            from docsync.directory import sync_directory as sync

            # bind credentials: the Airflow connection DOCSYNC_DIRECTORY_CONN_ID, never the DAG
            return sync(load_settings())

        sync_directory()

    return directory_dag()
