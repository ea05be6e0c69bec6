"""Step 5, finalize: the run summary, its metrics and the run's GX Data Docs."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from docsync import fingerprint, metrics, records, state
from docsync.records import UpdatesReport, WriteReport

if TYPE_CHECKING:
    from docsync.config import Settings


def finalize(
    settings: Settings, plan_ref: str, write_reports: list[dict] | None = None, updates: dict | None = None
) -> dict:
    """Record the run as successful with its summary; emit metrics. ``write_reports`` and
    ``updates`` are the JSON of the write and updates steps' reports (as XCom carries them).
    A run whose plan refused to write (another embedding model) is recorded as failed and
    raises :class:`docsync.fingerprint.EmbeddingChanged` with the plan's message."""
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
    state.finish_run(engine, plan.run_id, "success", summary, metrics.flatten(summary))
    metrics.emit(summary, settings)
    if plan.batches:  # nothing was validated otherwise (and importing GX alone takes seconds)
        from docsync import data_docs

        data_docs.build(settings, plan.source, plan.run_id)  # GX Data Docs of the run's validations
    return summary
