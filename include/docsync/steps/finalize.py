"""Step 5, finalize: the run summary, its metrics and the run's GX Data Docs."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from docsync import fingerprint, metrics, records, state
from docsync.records import UpdatesReport, WriteReport

if TYPE_CHECKING:
    from collections.abc import Callable

    from docsync.config import Settings

    WarmCall = Callable[..., object]  # call(name, *args): docsync.host_client.WARM_CALLS

log = logging.getLogger(__name__)


def finalize(
    settings: Settings, plan_ref: str, write_reports: list[dict] | None = None, updates: dict | None = None,
    call: WarmCall | None = None,
) -> dict:
    """Record the run as successful with its summary; emit metrics. ``write_reports`` and
    ``updates`` are the JSON of the write and updates steps' reports (as XCom carries them).
    A run whose plan refused to write (another embedding model) is recorded as failed and
    raises :class:`docsync.fingerprint.EmbeddingChanged` with the plan's message.

    ``call(name, *args)`` runs the canary's embedding and the Data Docs build
    (:data:`docsync.host_client.WARM_CALLS`) where the models and GX are loaded already: the
    worker host (DAG) or a batch worker (CLI). Default: in this process."""
    from docsync.host_client import run_warm_call

    call = call or (lambda name, *args: run_warm_call(name, args))
    started = time.perf_counter()
    plan = records.read_plan(plan_ref)
    engine = state.get_engine(settings.state_url)
    reports = [WriteReport.from_json(r) for r in write_reports or [] if r]
    current = fingerprint.current(settings)
    summary = metrics.summarize(
        engine, plan, reports, UpdatesReport.from_json(updates), finalize_s=round(time.perf_counter() - started, 3),
        stale=state.stale_counts(engine, plan.source, current.text_id, current.embedding_id),
    )
    if plan.refused:
        state.finish_run(engine, plan.run_id, "failed", summary | {"refused": plan.refused}, metrics.flatten(summary))
        raise fingerprint.EmbeddingChanged(plan.refused)
    if summary["chunks_embedded"] or summary["indexed"]:  # the run changed the index: the canary checks it
        summary |= _canary(settings, plan.source, plan.run_id, call)
    state.finish_run(engine, plan.run_id, "success", summary, metrics.flatten(summary))
    metrics.emit(summary, settings)
    if plan.batches:  # nothing was validated otherwise (and importing GX alone takes seconds)
        call("build_data_docs", settings, plan.source, plan.run_id)  # GX Data Docs of the run's validations
    return summary


def finish(
    settings: Settings, plan_ref: str, write_reports: list[dict], updates: dict, run_id: str, cleanup: bool = True,
    call: WarmCall | None = None,
) -> dict:
    """The end of a run where nothing else follows (the CLI; the DAG's run that changed
    nothing): :func:`finalize`, reconcile when due, the run's staged files dropped (kept with
    ``cleanup=False``). The DAG's finalize task runs it too, on the worker host's writer
    (:func:`docsync.host_client.finish_with_warm_calls`)."""
    from docsync import storage
    from docsync.steps.reconcile import reconcile_if_due, touched_documents

    if cleanup and not storage.path(plan_ref).exists():
        # A retry (a finalize task killed after this returned, before Airflow recorded it): the
        # run is finished and its staged files are gone; its recorded summary is the answer.
        done = state.successful_summary(state.get_engine(settings.state_url), run_id)
        if done is not None:
            return done
    summary = finalize(settings, plan_ref, write_reports, updates, call=call)
    summary["reconcile"] = reconcile_if_due(settings, summary, touched=lambda: touched_documents(plan_ref))
    if cleanup:
        storage.cleanup_run(settings, summary["source"], run_id)
    return summary


def changes_nothing(plan_ref: str) -> bool:
    """Whether the run has nothing to process, update or delete (and no refusal to report):
    the DAG then ends it in its plan task, as the CLI does right after the plan."""
    plan = records.read_plan(plan_ref)
    return plan.counts.changes_nothing and not (plan.batches or plan.updates or plan.deletes or plan.refused)


def _canary(settings: Settings, source: str, run_id: str, call: WarmCall) -> dict:
    """The label-free retrieval canary (docsync.evaluation.canary); it reports, never fails the run."""
    from docsync.evaluation.canary import run_canary

    try:
        result = run_canary(settings, source, run_id, embed=lambda texts: call("embed_texts", texts))
    except Exception as exc:  # a canary that cannot run is a finding, not a failed sync
        log.warning("retrieval canary of run %s could not run: %s", run_id, exc)
        return {"canary_error": f"{type(exc).__name__}: {exc}"[:300]}
    if result.get("canary_misses"):
        log.warning("retrieval canary of run %s: %d of %d sampled chunks did not find their own document first: %s",
                    run_id, len(result["canary_misses"]), result["canary_samples"], result["canary_misses"])
    return result
