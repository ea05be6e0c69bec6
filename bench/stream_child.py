"""Child of bench.stream: one measurement in its own process (its own peak RSS).

``python -m bench.stream_child MODE --share ROOT --home HOME``; MODE is
``state`` (record an initial load of the generated share: rows only), ``nochange`` (a
no-change re-sync), ``initial`` (an initial load stopped once the first batch is processed)
or ``slice`` (the DAG's plan task with DOCSYNC_PLAN_SLICE_BATCHES, then its first batch)."""

from __future__ import annotations

import argparse
import hashlib
import os
import time

from bench.child import emit, timed

SOURCE = "fileshare"


def content(i: int) -> bytes:
    """The bytes of generated document ``i`` (bench.stream.generate writes them)."""
    return f"Document {i} of the generated share.\n".encode()


def record_state(settings, root: str) -> dict:
    """The rows an initial load of the generated share stores (as bench/replicate.py copies
    them): each listed document indexed with today's processing fingerprints, so a re-sync
    takes the real no-change path. No Qdrant points: a no-change run never opens Qdrant."""
    from docsync import fingerprint, state
    from docsync.principals import canonical_form_tag
    from docsync.sources import open_source
    from docsync.steps.plan import new_doc_id, with_canonical_form

    engine = state.get_engine(settings.state_url)
    current = fingerprint.current(settings)
    state.record_fingerprints(engine, {current.text_id: ("text", current.text),
                                       current.embedding_id: ("embedding", current.embedding)})
    tag, now, rows, n = canonical_form_tag(), state.utcnow(), [], 0
    for entry in open_source(settings, root, SOURCE).list():
        entry = with_canonical_form(entry, tag)
        i = int(entry.path.rsplit("f", 1)[-1].split(".")[0])
        rows.append(state.document_row(
            source=SOURCE, doc_id=new_doc_id(SOURCE, entry.path, set()), path=entry.path, size=entry.size,
            mtime_ns=entry.mtime_ns, acl_fingerprint=entry.acl_fingerprint, status="indexed", first_seen=now,
            indexed_at=now, content_hash=hashlib.sha256(content(i)).hexdigest(), chunk_count=1,
            allowed=["group:staff"], text_fp=current.text_id, embed_fp=current.embedding_id,
        ) | {"path_hash": state.path_hash(entry.path)})
        if len(rows) >= 5000:
            n += _insert(engine, rows)
            rows = []
    n += _insert(engine, rows)
    state.mark_reconciled(engine, SOURCE, state.utcnow())  # as after a run that wrote (replicate.py)
    return {"documents": n}


def _insert(engine, rows: list[dict]) -> int:
    import sqlalchemy as sa

    from docsync import state

    if rows:
        with engine.begin() as conn:
            conn.execute(sa.insert(state.documents), rows)
    return len(rows)


def first_batch(settings, root: str) -> dict:
    """An initial load through run_sync, stopped (like a crash) once its first batch is written."""
    from docsync import pipeline

    started = time.perf_counter()
    marks: dict = {}
    process, write = pipeline.process_batch, pipeline.write_batch

    def timed_process(s, ref):
        marks.setdefault("first_batch_staged_s", round(time.perf_counter() - started, 3))
        return process(s, ref)

    def timed_write(s, result):
        report = write(s, result)
        marks["first_batch_processed_s"] = round(time.perf_counter() - started, 3)
        marks["first_batch_report"] = report.to_json()
        raise _Stop

    pipeline.process_batch, pipeline.write_batch = timed_process, timed_write
    try:
        pipeline.run_sync(settings, root, workers=1)
    except _Stop:
        pass
    return marks


class _Stop(Exception):
    pass


def sliced(settings, root: str, batches: int) -> dict:
    """The DAG path: the plan task stops its walk at ``batches`` batches (the mapped process
    tasks need it finished), then the first batch processed and written, as its process task does."""
    from docsync.steps.plan import plan
    from docsync.steps.process import process_batch
    from docsync.steps.write import write_batch

    out: dict = {}
    started = time.perf_counter()
    with timed(out, "plan_task_"):
        planned = plan(settings, "slice-run", root, max_batches=batches)
    out["batches_staged"] = len(planned.batches)
    out["seen"] = planned.counts.seen
    with timed(out, "first_batch_tasks_"):
        write_batch(settings, process_batch(settings, planned.batches[0]))
    out["first_batch_processed_s"] = round(time.perf_counter() - started, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["state", "nochange", "initial", "slice"])
    parser.add_argument("--share", required=True, help="a directory or an smb:// URL")
    parser.add_argument("--home", required=True)
    parser.add_argument("--slice", type=int, default=4)
    args = parser.parse_args()
    os.environ["DOCSYNC_HOME"] = args.home
    os.environ["DOCSYNC_FILESHARE_ROOT"] = args.share
    os.environ["DOCSYNC_ALLOWED_ROOTS"] = args.share
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        os.environ.pop(var, None)
    import docsync
    from docsync.config import load_settings

    settings = load_settings()
    result: dict = {"docsync": docsync.__file__}
    with timed(result):
        if args.mode == "state":
            result |= record_state(settings, args.share)
        elif args.mode == "nochange":
            from docsync.pipeline import run_sync

            summary = run_sync(settings, args.share)
            result["summary"] = {k: summary.get(k) for k in ("seen", "unchanged", "new", "deleted", "indexed")}
        elif args.mode == "initial":
            result |= first_batch(settings, args.share)
        else:
            result |= sliced(settings, args.share, args.slice)
    emit(result)
    os._exit(0)  # an initial load stopped mid-walk: do not wait for its walk thread


if __name__ == "__main__":
    main()
