"""Step 2, updates: apply the plan's deletions and no-embed updates (ACL-only changes, touches,
moves) before any document is processed, so that no processing failure can hold back a
revocation. Deletions and ACL changes go first; their lag (detected -> applied) is reported."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from docsync import index, metrics, quarantine, records, state
from docsync.context import RunContext
from docsync.errors import AccessUnresolved
from docsync.faults import crash_point
from docsync.records import Update, UpdateKind, UpdatesReport

if TYPE_CHECKING:
    import sqlalchemy as sa
    from qdrant_client import QdrantClient

    from docsync.config import Settings
    from docsync.sources import Source

# Revocations first: an ACL change may take access away; a move or touch never does.
ORDER = {UpdateKind.ACL: 0, UpdateKind.MOVE: 1, UpdateKind.TOUCH: 2}


def apply_update(client: QdrantClient, conn: sa.Connection, collection: str, source: Source, update: Update) -> str:
    """Apply a move / touch / ACL-only change without re-embedding; returns what happened."""
    entry = update.entry
    row = state.get_document(conn, update.doc_id)
    if row is None:
        return "gone"
    values: dict = {"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns}
    payload: dict = {"path": entry.path}
    if entry.version_tag:  # keep the recorded content version current (see plan.version_changed)
        meta = state.loads_object(row["doc_meta"])
        if meta.get("version_tag") != entry.version_tag:
            values["doc_meta"] = meta | {"version_tag": entry.version_tag}
    parts = state.children_of(conn, [update.doc_id])
    if entry.acl_fingerprint != row["acl_fingerprint"] or update.kind is UpdateKind.MOVE:
        try:
            allowed, denied = source.access(entry)
        except AccessUnresolved as exc:
            index.delete_doc(client, collection, update.doc_id)  # fail closed: no points, no access
            index.delete_parts(client, collection, update.doc_id)
            for doc_id, part in {update.doc_id: row, **parts}.items():
                state.unindex_document(conn, doc_id, acl_fingerprint=entry.acl_fingerprint,
                                       **(values if doc_id == update.doc_id else {}))
                quarantine.record(conn, source=source.name, doc_id=doc_id, path=part["path"],
                                  failure=exc.failure, content_hash=part["content_hash"])
            return "quarantined"
        payload |= index.access_payload(allowed, denied)
        values |= {"allowed": list(allowed), "denied": list(denied), "acl_fingerprint": entry.acl_fingerprint}
    if row["status"] == "indexed":
        index.set_document_payload(client, collection, update.doc_id, payload)
    state.update_document(conn, update.doc_id, **values)
    _update_parts(client, conn, collection, row, parts, values, payload)
    return str(update.kind)


def _update_parts(client: QdrantClient, conn: sa.Connection, collection: str, row: dict, parts: dict[str, dict],
                  values: dict, payload: dict) -> None:
    """A container's parts follow it: its access (they inherit it) and its path (theirs start
    with it: ``old.eml#attachment/1/a.pdf`` -> ``new.eml#attachment/1/a.pdf``)."""
    inherited = {k: values[k] for k in ("allowed", "denied", "acl_fingerprint") if k in values}
    access = {k: v for k, v in payload.items() if k != "path"}
    if access and parts:
        index.set_parts_payload(client, collection, row["doc_id"], access)
    moved = values["path"] != row["path"]
    for doc_id, part in parts.items():
        changes = dict(inherited)
        if moved and part["path"].startswith(row["path"] + "#"):
            changes["path"] = values["path"] + part["path"][len(row["path"]):]
            if part["status"] == "indexed":
                index.set_document_payload(client, collection, doc_id, {"path": changes["path"]})
        if changes:
            state.update_document(conn, doc_id, **changes)


def apply_updates_json(settings: Settings, plan_ref: str) -> dict:
    """:func:`apply_updates`' report as JSON (what the DAG's plan task pushes as XCom ``updates``): the worker
    host's writer runs this for the task (host_client.WARM_CALLS)."""
    return apply_updates(settings, plan_ref).to_json()


def apply_updates(settings: Settings, plan_ref: str) -> UpdatesReport:
    """Deletes, then ACL-only changes, moves and touches of one plan. Reports the revocation
    lag of each deletion and ACL-only change (first detected -> applied: a change planned by a
    failed run ages from when that run saw it) and the propagation lag of ACL changes and moves
    (see :func:`docsync.metrics.propagation_lag`)."""
    started = time.perf_counter()
    plan = records.read_plan(plan_ref)
    if not plan.updates and not plan.deletes:
        return UpdatesReport({})
    ctx = RunContext(settings, plan.source, plan.run_id)
    source = ctx.source(plan.root)
    planned = datetime.fromisoformat(plan.planned_at).timestamp()
    first_detected = {
        doc_id: at.timestamp()
        for doc_id, at in state.pending_since(
            ctx.engine, plan.source, [d.doc_id for d in plan.deletes] + [u.doc_id for u in plan.updates]
        ).items()
    }
    last_scan = state.previous_scan_start(ctx.engine, plan.source, plan.run_id)
    applied: Counter = Counter()
    lags: list[float] = []
    propagation: list[float] = []
    with index.open_index(settings) as client:
        index.ensure_collection(client, ctx.collection, index.is_local(settings))
        for gone in plan.deletes:
            index.delete_doc(client, ctx.collection, gone.doc_id)
            index.delete_parts(client, ctx.collection, gone.doc_id)  # a container's parts go with it
            crash_point("updates:after_qdrant_delete")
            with ctx.engine.begin() as conn:
                for doc_id in [gone.doc_id, *state.children_of(conn, [gone.doc_id])]:
                    state.delete_document(conn, doc_id)
                    quarantine.resolve(conn, source.name, doc_id)
                state.clear_pending(conn, source.name, [gone.doc_id])
            applied["deleted"] += 1
            lags.append(time.time() - min(planned, first_detected.get(gone.doc_id, planned)))
        for update in sorted(plan.updates, key=lambda u: ORDER[u.kind]):
            with ctx.engine.begin() as conn:
                outcome = apply_update(client, conn, ctx.collection, source, update)
                state.clear_pending(conn, source.name, [update.doc_id])
            applied[outcome] += 1
            now = time.time()
            if update.kind is UpdateKind.ACL:
                lags.append(now - min(planned, first_detected.get(update.doc_id, planned)))
            if update.kind in (UpdateKind.ACL, UpdateKind.MOVE) and outcome != "gone":
                lag = metrics.propagation_lag(now, update.entry.mtime_ns, last_scan)
                if lag is not None:
                    propagation.append(lag)
    return UpdatesReport(
        dict(applied), tuple(round(x, 3) for x in lags), round(time.perf_counter() - started, 3),
        propagation_lag_s=tuple(round(x, 3) for x in propagation),
    )
