"""The sync pipeline as four steps the DAG tasks (and the CLI) call:

1. :func:`plan` lists the source (a stat per document), compares with the state store and
   stages batches of work; the mass-deletion guard runs here, before anything changes.
2. :func:`process_batch` reads, checks access, parses/OCRs, anonymizes, validates, chunks
   and embeds one batch, staging the (anonymized) result. It never writes Qdrant or state.
3. :func:`index_batch` writes one staged result to Qdrant, then commits the state store.
4. :func:`finalize` applies deletes, moves and ACL-only changes, and records the run.

Write order per document: upsert new points -> update kept points -> delete the
document's other points -> commit state. Point IDs are deterministic, so a run killed at
any point and re-run converges to the same index with no duplicates or orphans.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

from docsync import quarantine, state, storage
from docsync.config import Settings
from docsync.quarantine import Failure
from docsync.sources import AccessUnresolved, SourceEntry, SourceUnavailable, open_source

log = logging.getLogger(__name__)
DOC_NAMESPACE = uuid.UUID("0b7e3f0e-61a4-5d0c-8a55-4c1f2d9a7b21")


def checkpoint(name: str) -> None:
    """Fault injection for the crash tests: SIGKILL this process at a named point when
    DOCSYNC_KILL_AT names it. Costs one dict lookup otherwise."""
    if os.environ.get("DOCSYNC_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


class MassDeletionBlocked(RuntimeError):
    """Too many documents would be deleted at once: refuse and change nothing."""


class DocumentTimeout(TimeoutError):
    pass


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def new_doc_id(source: str, path: str, taken: set[str]) -> str:
    doc_id = uuid.uuid5(DOC_NAMESPACE, f"{source}:{path}").hex
    if doc_id in taken:  # a moved document kept the id derived from this path
        doc_id = uuid.uuid5(DOC_NAMESPACE, f"{source}:{path}:{len(taken)}").hex
    return doc_id


@contextlib.contextmanager
def deadline(seconds: int):
    """Per-document timeout (SIGALRM; only possible in the main thread)."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    fired = False

    def _raise(_signum, _frame):  # noqa: ANN001
        nonlocal fired
        fired = True
        raise DocumentTimeout(f"processing took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, _raise)
    # Re-fires every second after the deadline: a library that swallows one exception
    # (a broad `except Exception` around an import, say) does not swallow them all.
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if fired:  # the work finished anyway, late: still a timeout
        raise DocumentTimeout(f"processing took longer than {seconds} s")


def _entry(staged: dict) -> SourceEntry:
    """The SourceEntry of a staged work item or update (they carry asdict(entry))."""
    return SourceEntry(
        path=staged["path"],
        size=staged["size"],
        mtime_ns=staged["mtime_ns"],
        acl_fingerprint=staged["acl_fingerprint"],
        version_tag=staged.get("version_tag", ""),
    )


def _digest(source, path: str) -> str:  # noqa: ANN001
    """sha256 of a document for plan(); "" when the source reports a per-document problem
    (an exception carrying a quarantine Failure): the document is then planned as changed
    and process_batch quarantines it with that reason, instead of the whole plan failing."""
    try:
        return sha256(source.read(path))
    except Exception as exc:
        if isinstance(getattr(exc, "failure", None), Failure):
            return ""
        raise


def _version_changed(entry: SourceEntry, row: dict) -> bool:
    """The source's content version (e.g. a SharePoint quickXorHash/cTag) differs from the one
    recorded at indexing: the content may have changed even with the same size and mtime."""
    if not entry.version_tag:
        return False
    try:
        recorded = json.loads(row.get("doc_meta") or "{}").get("version_tag", "")
    except ValueError:
        return False
    return bool(recorded) and recorded != entry.version_tag


def _item(doc_id: str, entry: SourceEntry, action: str, content_hash: str = "", override: bool = False) -> dict:
    return {"doc_id": doc_id, "action": action, "content_hash": content_hash, "override": override} | asdict(entry)


# --- 1. plan ---------------------------------------------------------------------------


def plan(settings: Settings, run_id: str, root: str | None = None) -> dict:
    """Detect changes and stage the run's work. Returns references only (safe for XCom)."""
    started = time.perf_counter()
    engine = state.get_engine(settings.state_url)
    source = open_source(settings, root)
    source.check_available()
    entries = list(source.list())
    known = state.load_documents(engine, source.name)
    if not entries and known:
        raise SourceUnavailable(
            f"{source.describe()} lists no documents but {len(known)} are indexed: treated as an outage, "
            "nothing deleted. Check the mount/share. If the source was emptied on purpose, drop the "
            f"collection {settings.collection(source.name)} and the source's rows in docsync_documents by hand."
        )
    state.start_run(engine, run_id, source.name)
    reprocess = quarantine.reprocess_requests(engine, source.name)
    taken = {row["doc_id"] for row in known.values()}
    work: list[dict] = []
    updates: list[dict] = []  # ACL-only changes, touches and moves: no re-embedding
    new_entries: list[SourceEntry] = []
    unchanged = 0
    for entry in entries:
        row = known.get(entry.path)
        if row is None:
            new_entries.append(entry)
            continue
        forced = reprocess.get(row["doc_id"])
        if forced:
            work.append(_item(row["doc_id"], entry, "retry", override=forced == "released"))
        elif entry.size == row["size"] and entry.mtime_ns == row["mtime_ns"] and not _version_changed(entry, row):
            if entry.acl_fingerprint != row["acl_fingerprint"] and row["status"] == "quarantined":
                # Permissions fixed on a quarantined document: process it again in full.
                work.append(_item(row["doc_id"], entry, "modified", content_hash=row["content_hash"]))
            elif entry.acl_fingerprint != row["acl_fingerprint"]:
                updates.append({"kind": "acl", "doc_id": row["doc_id"]} | asdict(entry))
            else:
                unchanged += 1
        else:
            digest = _digest(source, entry.path)
            if digest and digest == row["content_hash"]:
                updates.append({"kind": "touch", "doc_id": row["doc_id"]} | asdict(entry))
            else:
                work.append(_item(row["doc_id"], entry, "modified", content_hash=digest))
    listed = {e.path for e in entries}
    missing = [row for path, row in known.items() if path not in listed]
    # A new path with the content of a vanished indexed document is a move: no re-embedding.
    movable = {(r["content_hash"], r["size"]): r for r in missing if r["status"] == "indexed"}
    moved: set[str] = set()
    for entry in new_entries:
        digest = ""
        if any(size == entry.size for _h, size in movable):
            digest = _digest(source, entry.path)
            row = movable.pop((digest, entry.size), None)
            if row is not None:
                moved.add(row["doc_id"])
                updates.append({"kind": "move", "doc_id": row["doc_id"], "old_path": row["path"]} | asdict(entry))
                continue
        doc_id = new_doc_id(source.name, entry.path, taken)
        taken.add(doc_id)
        work.append(_item(doc_id, entry, "new", content_hash=digest))
    deletes = [{"doc_id": r["doc_id"], "path": r["path"]} for r in missing if r["doc_id"] not in moved]
    if known and len(deletes) > settings.max_delete_fraction * len(known):
        raise MassDeletionBlocked(
            f"{source.describe()}: {len(deletes)} of {len(known)} known documents would be deleted "
            f"(limit {settings.max_delete_fraction:.0%}, DOCSYNC_MAX_DELETE_FRACTION). Nothing was changed. "
            "If the share is healthy and the deletion is intended, raise the limit for one run."
        )
    directory = storage.run_dir(settings, source.name, run_id)
    batches = [
        storage.write_json(directory / f"batch-{n:05d}.json", {"run_id": run_id, "items": work[i : i + settings.batch_size]})
        for n, i in enumerate(range(0, len(work), settings.batch_size))
    ]
    counts = {
        "seen": len(entries),
        "unchanged": unchanged,
        "new": sum(1 for w in work if w["action"] == "new"),
        "modified": sum(1 for w in work if w["action"] == "modified"),
        "retried": sum(1 for w in work if w["action"] == "retry"),
        "acl_changed": sum(1 for u in updates if u["kind"] == "acl"),
        "moved": len(moved),
        "deleted": len(deletes),
    }
    plan_ref = storage.write_json(
        storage.path(storage.plan_ref(settings, source.name, run_id)),
        {
            "run_id": run_id,
            "source": source.name,
            "root": root or settings.source_root(),
            "planned_at": state.utcnow(),
            "plan_s": round(time.perf_counter() - started, 3),
            "batches": batches,
            "updates": updates,
            "deletes": deletes,
            "counts": counts,
        },
    )
    log.info("plan %s: %s", run_id, counts)
    return {"plan": plan_ref, "batches": batches, "counts": counts}


# --- 2. process ------------------------------------------------------------------------


def _prepare(item: dict, source, settings: Settings) -> dict:  # noqa: ANN001
    """Read, check access, parse and anonymize one document (raises ParseError/AccessUnresolved)."""
    from docsync import pii
    from docsync.parse import parse_document

    if item["size"] > settings.max_file_bytes:
        raise _Failed(
            Failure(
                "detect",
                f"{item['path']} is {item['size'] / 2**20:.1f} MiB, over DOCSYNC_MAX_FILE_MB "
                f"({settings.max_file_bytes / 2**20:.0f} MiB); split it or raise the limit",
            )
        )
    data = source.read(item["path"])
    digest = sha256(data)
    try:
        allowed, denied = source.access(_entry(item))
    except AccessUnresolved as exc:
        raise _Failed(Failure("access", f"{exc}. Fix the document's permissions or ACL sidecar.")) from exc
    parsed = parse_document(data, item["path"], settings)
    del data
    texts, counts = pii.anonymize_many([b.text for b in parsed.blocks], settings)
    for block, text in zip(parsed.blocks, texts):
        block.text = text
    full_text = parsed.text
    return {
        "content_hash": digest,
        "allowed": allowed,
        "denied": denied,
        "parsed": parsed,
        "pii_counts": dict(counts),
        "pii_rescan_hits": pii.rescan(full_text),
        "text": full_text,
    }


class _Failed(Exception):
    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.reason)
        self.failure = failure


def _failure_for(exc: BaseException, path: str) -> Failure:
    from docsync.parse import ParseError

    if isinstance(exc, (_Failed, ParseError)):
        return exc.failure
    if isinstance(getattr(exc, "failure", None), Failure):  # a source's per-document error (its own reason)
        return exc.failure
    if isinstance(exc, DocumentTimeout):
        return Failure("timeout", f"{path}: {exc} (DOCSYNC_DOC_TIMEOUT_S); split the document or raise the limit")
    if isinstance(exc, FileNotFoundError):
        return Failure("read", f"{path} vanished while the run was processing it; it is re-checked next run")
    if isinstance(exc, OSError):
        return Failure("read", f"cannot read {path}: {exc.strerror or exc}; check permissions on the share", repr(exc))
    return Failure("parse", f"unexpected error while processing {path}; see error and report it", f"{type(exc).__name__}: {exc}")


def process_batch(settings: Settings, batch_ref: str, root: str | None = None) -> str:
    """Process one staged batch; returns the reference of the staged result."""
    from docsync.chunk import assign_point_ids, chunk_blocks
    from docsync.embed import BackgroundEmbedder
    from docsync.validate import validate_chunks, validate_documents

    started = time.perf_counter()
    batch = storage.read_json(batch_ref)
    plan_doc = storage.read_json(str(storage.path(batch_ref).with_name("plan.json")))
    source = open_source(settings, root or plan_doc["root"], plan_doc["source"])
    engine = state.get_engine(settings.state_url)
    results: dict[str, dict] = {}
    prepared: dict[str, dict] = {}
    chunked: dict[str, list] = {}
    slots: dict[str, int] = {}  # point id -> position in the embedder's output
    embedder = BackgroundEmbedder()
    try:
        for item in batch["items"]:
            doc_id = item["doc_id"]
            base = {k: item[k] for k in ("doc_id", "path", "size", "mtime_ns", "acl_fingerprint", "action")}
            try:
                with deadline(settings.doc_timeout_s):
                    p = _prepare(item, source, settings)
                chunks = chunk_blocks(p["parsed"].blocks, settings.chunk_tokens, settings.chunk_overlap)
            except Exception as exc:  # noqa: BLE001 - one bad document never fails the batch
                failure = _failure_for(exc, item["path"])
                log.warning("quarantine %s at %s: %s", item["path"], failure.stage, failure.reason)
                results[doc_id] = base | {"status": "quarantined", "failure": asdict(failure)}
                continue
            prepared[doc_id] = p
            results[doc_id] = base | {"status": "ok"}
            chunked[doc_id] = list(zip(assign_point_ids(doc_id, chunks), chunks))
            if p["pii_rescan_hits"]:
                continue  # fail closed: PII survived anonymization, never embedded (quarantined below)
            # Embed while the next documents are prepared; chunks this document already
            # has in the index keep their vectors.
            known = state.chunk_ids(engine, [doc_id])[doc_id]
            todo = [(pid, c.text) for pid, c in chunked[doc_id] if pid not in known]
            slots.update(zip((pid for pid, _t in todo), embedder.add([t for _pid, t in todo])))
    except BaseException:
        embedder.close()
        raise

    overrides = {i["doc_id"] for i in batch["items"] if i.get("override")}
    item_tags = {i["doc_id"]: i.get("version_tag", "") for i in batch["items"]}  # see _version_changed
    doc_rows = [
        {
            "doc_id": doc_id,
            "mime": p["parsed"].mime,
            "text_length": len(p["text"].strip()),
            "replacement_ratio": p["text"].count("\ufffd") / max(len(p["text"]), 1),
            "ocr_confidence": p["parsed"].ocr_confidence,
            "allowed_count": len(p["allowed"]),
            "pii_rescan_hits": p["pii_rescan_hits"],
        }
        for doc_id, p in prepared.items()
    ]
    docs = (plan_doc["source"], batch["run_id"], storage.path(batch_ref).stem)  # GX Data Docs page of this batch
    doc_failures = validate_documents(doc_rows, settings, overrides, docs)
    chunk_rows = [
        {"point_id": pid, "doc_id": doc_id, "token_count": c.token_count, "text": c.text}
        for doc_id, pairs in chunked.items()
        if doc_id not in doc_failures
        for pid, c in pairs
    ]
    chunk_failures = validate_chunks(chunk_rows, settings, overrides, docs)

    embedded = embedder.vectors()
    vectors: list[list[float]] = []  # only the vectors of chunks that will be indexed
    for doc_id, p in prepared.items():
        result = results[doc_id]
        failure = doc_failures.get(doc_id) or chunk_failures.get(doc_id)
        meta = {
            "mime": p["parsed"].mime,
            "pages": p["parsed"].pages,
            "ocr_pages": p["parsed"].ocr_pages,
            "ocr_confidence": p["parsed"].ocr_confidence,
            "page_confidence": p["parsed"].page_confidence,
            "pii_counts": p["pii_counts"],
            "version_tag": item_tags.get(doc_id, ""),
        }
        result.update(content_hash=p["content_hash"], allowed=p["allowed"], denied=p["denied"], doc_meta=meta)
        if failure:
            result.update(status="quarantined", failure=asdict(failure), preview=p["text"][: quarantine.PREVIEW_CHARS])
            continue
        rows = []
        for pid, chunk in chunked[doc_id]:
            slot = slots.get(pid)
            rows.append(
                {
                    "point_id": pid,
                    "index": chunk.index,
                    "text": chunk.text,
                    "text_hash": chunk.text_hash,
                    "pages": chunk.pages,
                    "heading": chunk.heading,
                    "token_count": chunk.token_count,
                    "vector": None if slot is None else len(vectors),
                }
            )
            if slot is not None:
                vectors.append(embedded[slot])
        result["chunks"] = rows
    checkpoint("process:after_embed")
    directory = storage.path(batch_ref).parent
    stem = storage.path(batch_ref).stem.replace("batch", "result")
    vectors_ref = storage.write_vectors(directory / f"{stem}.npy", vectors)
    return storage.write_json(
        directory / f"{stem}.json",
        {"run_id": batch["run_id"], "source": plan_doc["source"], "vectors": vectors_ref, "documents": list(results.values()),
         "process_s": round(time.perf_counter() - started, 3)},
    )


# --- 3. index --------------------------------------------------------------------------


def _payload(source: str, doc: dict, chunk: dict, indexed_at: str) -> dict:
    modified = datetime.fromtimestamp(doc["mtime_ns"] / 1e9, tz=timezone.utc).isoformat()
    return {
        "doc_id": doc["doc_id"],
        "source": source,
        "path": doc["path"],
        "chunk_index": chunk["index"],
        "page": chunk["pages"][0] if chunk["pages"] else None,
        "pages": chunk["pages"],
        "heading": chunk["heading"],
        "text": chunk["text"],
        "text_hash": chunk["text_hash"],
        "content_hash": doc["content_hash"],
        "mime": doc["doc_meta"]["mime"],
        "modified_at": modified,
        "indexed_at": indexed_at,
        "allowed_principals": doc["allowed"],
        "denied_principals": doc["denied"],
    }


def _doc_filter(doc_id: str, keep: list[str] | None = None):  # noqa: ANN202
    from qdrant_client import models

    must_not = [models.HasIdCondition(has_id=keep)] if keep else []
    return models.Filter(
        must=[models.FieldCondition(key="doc_id", match=models.MatchValue(value=doc_id))], must_not=must_not
    )


def _document_row(source: str, doc: dict, status: str, first_seen, indexed_at) -> dict:  # noqa: ANN001
    return {
        "doc_id": doc["doc_id"],
        "source": source,
        "path": doc["path"],
        "size": doc["size"],
        "mtime_ns": doc["mtime_ns"],
        "content_hash": doc.get("content_hash", ""),
        "acl_fingerprint": doc["acl_fingerprint"],
        "allowed": state.dumps(doc.get("allowed", [])),
        "denied": state.dumps(doc.get("denied", [])),
        "status": status,
        "chunk_count": len(doc.get("chunks", [])),
        "doc_meta": state.dumps(doc.get("doc_meta", {})),
        "first_seen": first_seen,
        "indexed_at": indexed_at,
    }


def index_batch(settings: Settings, result_ref: str, collection: str | None = None) -> dict:
    """Write one staged result to Qdrant, then commit it to the state store.
    ``collection``: another target than the source's alias (`docsync reindex`)."""
    from docsync import index

    started = time.perf_counter()
    result = storage.read_json(result_ref)
    source = result["source"]
    vectors = storage.read_vectors(result["vectors"])
    engine = state.get_engine(settings.state_url)
    collection = collection or settings.collection(source)
    counts: Counter = Counter()
    lags: list[float] = []
    pii_counts: Counter = Counter()
    ocr_pages = 0
    documents = result["documents"]
    with engine.connect() as conn:
        first_seen_of = dict(
            conn.execute(
                sa.select(state.documents.c.doc_id, state.documents.c.first_seen).where(
                    state.documents.c.doc_id.in_([d["doc_id"] for d in documents])
                )
            ).all()
        )
    now = state.utcnow()
    stamp = now.isoformat()
    with index.open_index(settings) as client:
        index.ensure_collection(client, collection, index.is_local(settings))
        ok_docs = []
        for doc in documents:
            if doc["status"] == "ok":
                ok_docs.append(doc)
                continue
            # Fail closed: a quarantined document has no points in the index.
            client.delete(collection, points_selector=_doc_filter(doc["doc_id"]), wait=True)
            with engine.begin() as conn:
                first_seen = first_seen_of.get(doc["doc_id"]) or now
                state.save_document(conn, _document_row(source, doc, "quarantined", first_seen, None), [])
                quarantine.record(
                    conn,
                    source=source,
                    doc_id=doc["doc_id"],
                    path=doc["path"],
                    failure=Failure(**doc["failure"]),
                    content_hash=doc.get("content_hash", ""),
                    preview=doc.get("preview", ""),
                )
            counts["quarantined"] += 1
        # The batch's documents are written together: one upsert, one state transaction.
        # Point IDs are deterministic, so a batch killed half-way is simply written again.
        reused = [c["point_id"] for doc in ok_docs for c in doc["chunks"] if c["vector"] is None]
        present = index.existing_ids(client, collection, reused)
        missing = [c for doc in ok_docs for c in doc["chunks"] if c["vector"] is None and c["point_id"] not in present]
        if missing:  # state said the point exists but it does not (drift): embed again
            from docsync.embed import embed_texts

            for c, vec in zip(missing, embed_texts([c["text"] for c in missing])):
                c["_vector"] = vec
        points = [
            (c["point_id"], c.get("_vector") or vectors[c["vector"]].tolist(), _payload(source, doc, c, stamp))
            for doc in ok_docs
            for c in doc["chunks"]
            if c["vector"] is not None or "_vector" in c
        ]
        index.upsert(client, collection, points)
        checkpoint("index:after_upsert")
        for doc in ok_docs:
            for c in doc["chunks"]:
                if c["vector"] is None and c["point_id"] in present:
                    index.set_payload(client, collection, _payload(source, doc, c, stamp), [c["point_id"]])
            if doc.get("action") != "new":  # a new document has no older points (reconcile catches strays)
                keep = [c["point_id"] for c in doc["chunks"]]
                client.delete(collection, points_selector=_doc_filter(doc["doc_id"], keep), wait=True)
        checkpoint("index:before_state_commit")
        with engine.begin() as conn:
            for doc in ok_docs:
                state.save_document(
                    conn,
                    _document_row(source, doc, "indexed", first_seen_of.get(doc["doc_id"]) or now, now),
                    [
                        {"point_id": c["point_id"], "doc_id": doc["doc_id"], "chunk_index": c["index"], "text_hash": c["text_hash"]}
                        for c in doc["chunks"]
                    ],
                )
                quarantine.resolve(conn, source, doc["doc_id"])
        for doc in ok_docs:
            chunks = doc["chunks"]
            n_reused = sum(1 for c in chunks if c["vector"] is None)
            n_missing = sum(1 for c in chunks if "_vector" in c)
            counts["indexed"] += 1
            counts["chunks"] += len(chunks)
            counts["chunks_embedded"] += len(chunks) - n_reused + n_missing
            counts["chunks_reused"] += n_reused - n_missing
            lags.append(max(0.0, now.timestamp() - doc["mtime_ns"] / 1e9))
            pii_counts.update(doc["doc_meta"]["pii_counts"])
            ocr_pages += doc["doc_meta"]["ocr_pages"]
    return {
        "counts": dict(counts), "lags": lags, "pii": dict(pii_counts), "ocr_pages": ocr_pages,
        "process_s": result.get("process_s", 0.0), "index_s": round(time.perf_counter() - started, 3),
    }


# --- 4. finalize -----------------------------------------------------------------------


def _apply_update(client, conn, collection: str, source, update: dict) -> str:  # noqa: ANN001
    """Apply a move / touch / ACL-only change without re-embedding; returns what happened."""
    from docsync import index

    doc_id = update["doc_id"]
    entry = _entry(update)
    row = conn.execute(sa.select(state.documents).where(state.documents.c.doc_id == doc_id)).mappings().first()
    if row is None:
        return "gone"
    values = {"path": entry.path, "size": entry.size, "mtime_ns": entry.mtime_ns}
    payload: dict = {"path": entry.path}
    if entry.version_tag:  # keep the recorded content version current (see _version_changed)
        meta = json.loads(row["doc_meta"] or "{}")
        if meta.get("version_tag") != entry.version_tag:
            values["doc_meta"] = state.dumps(meta | {"version_tag": entry.version_tag})
    if entry.acl_fingerprint != row["acl_fingerprint"] or update["kind"] == "move":
        try:
            allowed, denied = source.access(entry)
        except AccessUnresolved as exc:
            client.delete(collection, points_selector=_doc_filter(doc_id), wait=True)
            values.update(status="quarantined", chunk_count=0, acl_fingerprint=entry.acl_fingerprint)
            conn.execute(sa.update(state.documents).where(state.documents.c.doc_id == doc_id).values(**values))
            conn.execute(sa.delete(state.chunks).where(state.chunks.c.doc_id == doc_id))
            quarantine.record(
                conn,
                source=source.name,
                doc_id=doc_id,
                path=entry.path,
                failure=Failure("access", f"{exc}. Fix the document's permissions or ACL sidecar."),
                content_hash=row["content_hash"],
            )
            return "quarantined"
        payload |= {index.ACCESS_FIELD: allowed, index.DENY_FIELD: denied}
        values |= {"allowed": state.dumps(allowed), "denied": state.dumps(denied), "acl_fingerprint": entry.acl_fingerprint}
    if row["status"] == "indexed":
        client.set_payload(collection, payload=payload, points=_doc_filter(doc_id), wait=True)
    conn.execute(sa.update(state.documents).where(state.documents.c.doc_id == doc_id).values(**values))
    return update["kind"]


def finalize(settings: Settings, plan_ref: str, index_results: list[dict] | None = None) -> dict:
    """Deletes, moves and ACL-only updates; then the run summary and metrics."""
    from docsync import index, metrics

    started = time.perf_counter()
    plan_doc = storage.read_json(plan_ref)
    source = open_source(settings, plan_doc["root"], plan_doc["source"])
    engine = state.get_engine(settings.state_url)
    collection = settings.collection(source.name)
    applied: Counter = Counter()
    if plan_doc["updates"] or plan_doc["deletes"]:
        if plan_doc["updates"]:
            list(source.list())  # refresh the source's stat cache used by access()
        with index.open_index(settings) as client:
            index.ensure_collection(client, collection, index.is_local(settings))
            for update in plan_doc["updates"]:
                with engine.begin() as conn:
                    applied[_apply_update(client, conn, collection, source, update)] += 1
            for gone in plan_doc["deletes"]:
                client.delete(collection, points_selector=_doc_filter(gone["doc_id"]), wait=True)
                checkpoint("finalize:after_qdrant_delete")
                with engine.begin() as conn:
                    state.delete_document(conn, gone["doc_id"])
                    quarantine.resolve(conn, source.name, gone["doc_id"])
                applied["deleted"] += 1
    summary = metrics.summarize(
        engine, plan_doc, index_results or [], dict(applied), finalize_s=round(time.perf_counter() - started, 3)
    )
    state.finish_run(engine, plan_doc["run_id"], "success", summary, metrics.flatten(summary))
    metrics.emit(summary, settings)
    if plan_doc["batches"]:  # nothing was validated otherwise (and importing GX alone takes seconds)
        from docsync import data_docs

        data_docs.build(settings, plan_doc["source"], plan_doc["run_id"])  # GX Data Docs of the run's validations
    return summary


# --- reconcile -------------------------------------------------------------------------


def reconcile(settings: Settings, source_name: str | None = None) -> dict:
    """Repair drift between the state store and Qdrant.

    Points whose document is not indexed in the state store (orphans) are deleted;
    documents whose recorded points are missing from Qdrant are marked for re-processing.
    """
    from docsync import index

    source_name = source_name or settings.source_name
    engine = state.get_engine(settings.state_url)
    collection = settings.collection(source_name)
    checked_at = state.utcnow()  # runs that start after this are covered by the next check
    with engine.connect() as conn:
        indexed = {
            r.doc_id
            for r in conn.execute(
                sa.select(state.documents.c.doc_id).where(
                    state.documents.c.source == source_name, state.documents.c.status == "indexed"
                )
            )
        }
        expected = {
            r.point_id: r.doc_id
            for r in conn.execute(
                sa.select(state.chunks.c.point_id, state.chunks.c.doc_id).join(
                    state.documents, state.documents.c.doc_id == state.chunks.c.doc_id
                ).where(state.documents.c.source == source_name)
            )
        }
    orphans: list[str] = []
    seen: set[str] = set()
    with index.open_index(settings) as client:
        for record in index.scroll_all(client, collection, with_payload=["doc_id"]):
            pid = str(record.id)
            seen.add(pid)
            if (record.payload or {}).get("doc_id") not in indexed or pid not in expected:
                orphans.append(pid)
        index.delete_ids(client, collection, orphans)
    incomplete = sorted({doc for pid, doc in expected.items() if pid not in seen})
    if incomplete:
        with engine.begin() as conn:
            conn.execute(
                sa.update(state.documents)
                .where(state.documents.c.doc_id.in_(incomplete))
                .values(mtime_ns=-1, content_hash="")
            )
    state.mark_reconciled(engine, source_name, checked_at)
    report = {"orphan_points_deleted": len(orphans), "documents_to_reindex": len(incomplete)}
    if orphans or incomplete:
        log.warning("reconcile %s: %s", source_name, report)
    return report


def changes_nothing(counts: dict) -> bool:
    """A plan's counts (or a run's summary) with every document unchanged and nothing deleted."""
    return counts.get("seen", 0) == counts.get("unchanged", 0) and not counts.get("deleted", 0)


def reconcile_reason(settings: Settings, summary: dict) -> str | None:
    """Why the run that produced ``summary`` needs a full state/Qdrant check, or None.

    The check scrolls every point of the collection (in embedded mode, opening it loads them
    all), so a run that changed nothing skips it unless an earlier run may have left drift.
    """
    source_name = summary["source"]
    if settings.reconcile_interval_h <= 0:
        return "DOCSYNC_RECONCILE_INTERVAL_H=0 (every run)"
    if not changes_nothing(summary):
        return "the run changed the index"
    engine = state.get_engine(settings.state_url)
    last = state.last_reconciled(engine, source_name)
    if last is None:
        return "never reconciled"
    unfinished = state.unfinished_runs(engine, source_name, last, exclude=summary.get("run_id", ""))
    if unfinished:
        return f"run {unfinished[0]} did not finish"
    if (state.utcnow() - last).total_seconds() > settings.reconcile_interval_h * 3600:
        return f"last full check {last:%Y-%m-%d %H:%M} UTC is over DOCSYNC_RECONCILE_INTERVAL_H old"
    return None


def reconcile_if_due(settings: Settings, summary: dict) -> dict:
    """``reconcile`` when ``reconcile_reason`` says so; the report says which and why."""
    reason = reconcile_reason(settings, summary)
    if reason is None:
        return {"skipped": "no change and no unfinished run since the last full check"}
    return reconcile(settings, summary["source"]) | {"reason": reason}


# --- all in one process (CLI, tests) ---------------------------------------------------


# Worker processes are replaced after about this many batches each: RSS creeps up over thousands
# of documents in one process; a fresh one costs one model load (~10 s).
WORKER_BATCHES = 40


def _init_worker(threads: int) -> None:
    """A batch worker process: its share of the cores for torch/OpenMP (set before torch loads)."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)


def run_sync(
    settings: Settings, root: str | None = None, run_id: str | None = None, cleanup: bool = True,
    workers: int | None = None,
) -> dict:
    """plan -> process -> index -> finalize -> reconcile, from this process.

    With ``workers`` > 1 (``DOCSYNC_WORKERS``) batches are processed by that many worker
    processes at once, as the DAG's mapped ``process`` tasks are; this process indexes
    their results one at a time, in plan order (embedded Qdrant has one writer).
    """
    run_id = run_id or f"cli__{state.utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    planned = plan(settings, run_id, root)
    if changes_nothing(planned["counts"]):  # no batches, updates or deletes: Qdrant is not even opened
        return _finish_sync(settings, planned, [], run_id, cleanup)
    from docsync import index

    with index.keep_open(settings):
        return _write_sync(settings, planned, root, run_id, cleanup, workers)


def _write_sync(settings: Settings, planned: dict, root: str | None, run_id: str, cleanup: bool, workers: int | None) -> dict:
    workers = min(workers or settings.workers, len(planned["batches"]))
    if workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, (os.cpu_count() or 1) // workers)
        batches, results = planned["batches"], []
        step = WORKER_BATCHES * workers  # fresh worker processes for every slice of the run
        for start in range(0, len(batches), step):
            # Not max_tasks_per_child: on Python 3.11 the executor can hang when it replaces a worker.
            with ProcessPoolExecutor(
                workers, mp_context=multiprocessing.get_context("spawn"), initializer=_init_worker, initargs=(threads,)
            ) as pool:
                futures = [pool.submit(process_batch, settings, ref, root) for ref in batches[start : start + step]]
                results += [index_batch(settings, future.result()) for future in futures]
    else:
        results = [index_batch(settings, process_batch(settings, ref, root)) for ref in planned["batches"]]
    return _finish_sync(settings, planned, results, run_id, cleanup)


def _finish_sync(settings: Settings, planned: dict, results: list[dict], run_id: str, cleanup: bool) -> dict:
    summary = finalize(settings, planned["plan"], results)
    summary["reconcile"] = reconcile_if_due(settings, summary)
    if cleanup:
        storage.cleanup_run(settings, summary["source"], run_id)
    return summary
