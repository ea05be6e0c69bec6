"""Step 3, process: read, check access, parse/OCR, anonymize, validate, chunk and embed one
staged batch, and stage the (anonymized) result. Never writes Qdrant or the state store.

Any exception while preparing one document quarantines that document (stage named, reason
for a person) and the batch goes on; the batch as a whole keeps inside its time budget and
defers what does not fit to the next run.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docsync import fingerprint, records, state
from docsync.context import RunContext
from docsync.deadlines import BatchBudget, deadline
from docsync.errors import DocumentError, DocumentTimeout, Failure, Stage
from docsync.faults import crash_point
from docsync.quarantine import PREVIEW_CHARS
from docsync.records import BatchResult, ChunkRecord, DocMeta, DocResult, DocStatus, WorkItem

if TYPE_CHECKING:
    from collections import Counter

    from docsync.config import Settings
    from docsync.parse import ParsedDocument
    from docsync.sources import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedDocument:
    """One document read, access-checked, parsed and anonymized (not yet chunked)."""

    content_hash: str
    allowed: list[str]
    denied: list[str]
    parsed: ParsedDocument  # its blocks hold anonymized text
    pii_counts: Counter
    pii_rescan_hits: int  # > 0: PII survived anonymization (fail closed)
    text: str  # the anonymized full text


def prepare(item: WorkItem, source: Source, settings: Settings) -> PreparedDocument:
    """Read, check access, parse and anonymize one document (raises DocumentError subclasses)."""
    from docsync import pii
    from docsync.parse import parse_document

    if item.entry.size > settings.source.max_file_bytes:
        raise DocumentError.at(
            Stage.DETECT,
            f"{item.path} is {item.entry.size / 2**20:.1f} MiB, over DOCSYNC_MAX_FILE_MB "
            f"({settings.source.max_file_bytes / 2**20:.0f} MiB); split it or raise the limit",
        )
    data = source.read(item.path)
    digest = hashlib.sha256(data).hexdigest()
    allowed, denied = source.access(item.entry)  # AccessUnresolved: quarantined at stage access
    parsed = parse_document(data, item.path, settings)
    del data
    texts, counts = pii.anonymize_many([b.text for b in parsed.blocks], settings)
    for block, text in zip(parsed.blocks, texts):
        block.text = text
    full_text = parsed.text
    return PreparedDocument(digest, list(allowed), list(denied), parsed, counts, pii.rescan(full_text), full_text)


def failure_for(exc: BaseException, path: str) -> Failure:
    """The quarantine failure of an exception raised while processing ``path``."""
    if isinstance(exc, DocumentTimeout):
        return Failure(Stage.TIMEOUT, f"{path}: {exc} (DOCSYNC_DOC_TIMEOUT_S); split the document or raise the limit")
    if isinstance(exc, DocumentError):
        return exc.failure
    if isinstance(exc, FileNotFoundError):
        return Failure(Stage.READ, f"{path} vanished while the run was processing it; it is re-checked next run")
    if isinstance(exc, MemoryError):
        return Failure(Stage.LIMITS, f"{path} needs more memory than a worker has; split the document", repr(exc))
    if isinstance(exc, OSError):
        return Failure(Stage.READ, f"cannot read {path}: {exc.strerror or exc}; check permissions on the share", repr(exc))
    return Failure(Stage.PARSE, f"unexpected error while processing {path}; see error and report it",
                   f"{type(exc).__name__}: {exc}")


def _preview(prepared: PreparedDocument | None) -> str:
    """Anonymized text for the reviewer, and none at all when PII survived anonymization."""
    if prepared is None or prepared.pii_rescan_hits:
        return ""
    return prepared.text[:PREVIEW_CHARS]


def process_batch(settings: Settings, batch_ref: str) -> str:
    """Process one staged batch; returns the reference of the staged :class:`BatchResult`."""
    from docsync.chunk import assign_point_ids, chunk_blocks
    from docsync.embed import BackgroundEmbedder
    from docsync.validate import validate_chunks, validate_documents

    started = time.perf_counter()
    batch = records.read_batch(batch_ref)
    ctx = RunContext(settings, batch.source, batch.run_id)
    source = ctx.source(batch.root)
    budget = BatchBudget(settings.sync.batch_budget_s, settings.sync.doc_timeout_s)
    failed: dict[str, DocResult] = {}
    prepared: dict[str, PreparedDocument] = {}
    chunked: dict[str, list] = {}
    slots: dict[str, int] = {}  # point id -> position in the embedder's output
    embedder = BackgroundEmbedder()
    current = fingerprint.current(settings)  # recorded with each document: what produced its points
    try:
        for item in batch.items:
            if budget.exhausted():
                failed[item.doc_id] = DocResult(item, DocStatus.DEFERRED)
                continue
            try:
                cut_by_batch = budget.left() < settings.sync.doc_timeout_s
                with deadline(budget.document_s()):
                    # parse_document runs parsing/OCR under the per-document memory budget (limits)
                    p = prepare(item, source, settings)
                chunks = chunk_blocks(p.parsed.blocks, settings.sync.chunk_tokens, settings.sync.chunk_overlap)
            except DocumentTimeout as exc:
                if cut_by_batch:  # the batch's budget ran out, not the document's own limit
                    failed[item.doc_id] = DocResult(item, DocStatus.DEFERRED)
                    continue
                failed[item.doc_id] = _quarantined(item, failure_for(exc, item.path))
                continue
            except Exception as exc:  # one bad document never fails the batch
                failed[item.doc_id] = _quarantined(item, failure_for(exc, item.path))
                continue
            prepared[item.doc_id] = p
            chunked[item.doc_id] = list(zip(assign_point_ids(item.doc_id, chunks), chunks))
            if p.pii_rescan_hits:
                continue  # fail closed: PII survived anonymization, never embedded (quarantined below)
            # Embed while the next documents are prepared; chunks this document already
            # has in the index keep their vectors.
            known = state.chunk_ids(ctx.engine, [item.doc_id])[item.doc_id]
            todo = [(pid, c.text) for pid, c in chunked[item.doc_id] if pid not in known]
            slots.update(zip((pid for pid, _t in todo), embedder.add([t for _pid, t in todo])))

        items = {i.doc_id: i for i in batch.items}
        overrides = {i.doc_id for i in batch.items if i.override}
        doc_rows = [
            {
                "doc_id": doc_id,
                "mime": p.parsed.mime,
                "text_length": len(p.text.strip()),
                "replacement_ratio": p.text.count("\ufffd") / max(len(p.text), 1),
                "ocr_confidence": p.parsed.ocr_confidence,
                "allowed_count": len(p.allowed),
                "pii_rescan_hits": p.pii_rescan_hits,
            }
            for doc_id, p in prepared.items()
        ]
        doc_validation = validate_documents(doc_rows, settings, overrides)
        doc_failures = doc_validation.failures
        chunk_rows = [
            {"point_id": pid, "doc_id": doc_id, "token_count": c.token_count, "text": c.text}
            for doc_id, pairs in chunked.items()
            if doc_id not in doc_failures
            for pid, c in pairs
        ]
        chunk_validation = validate_chunks(chunk_rows, settings, overrides)
        chunk_failures = chunk_validation.failures
        embedded = embedder.vectors()
    finally:
        embedder.close()
    from docsync import data_docs

    for validation in (doc_validation, chunk_validation):  # the batch's page of the run's GX Data Docs
        data_docs.record(settings, batch.source, batch.run_id, f"batch-{batch.number:05d}", validation)

    vectors: list[list[float]] = []  # only the vectors of chunks that will be written
    results: dict[str, DocResult] = dict(failed)
    for doc_id, p in prepared.items():
        item = items[doc_id]
        meta = DocMeta(
            mime=p.parsed.mime, pages=p.parsed.pages, ocr_pages=p.parsed.ocr_pages,
            ocr_confidence=p.parsed.ocr_confidence, page_confidence=p.parsed.page_confidence,
            pii_counts=dict(p.pii_counts), version_tag=item.entry.version_tag,
        )
        common = dict(content_hash=p.content_hash, allowed=tuple(p.allowed), denied=tuple(p.denied), meta=meta,
                      text_fp=current.text_id, embed_fp=current.embedding_id)
        failure = doc_failures.get(doc_id) or chunk_failures.get(doc_id)
        if failure:
            results[doc_id] = DocResult(item, DocStatus.QUARANTINED, failure, preview=_preview(p), **common)
            continue
        rows = []
        for pid, chunk in chunked[doc_id]:
            slot = slots.get(pid)
            rows.append(ChunkRecord(
                point_id=pid, index=chunk.index, text=chunk.text, text_hash=chunk.text_hash,
                pages=tuple(chunk.pages), heading=chunk.heading, token_count=chunk.token_count,
                vector=None if slot is None else len(vectors),
            ))
            if slot is not None:
                vectors.append(embedded[slot])
        results[doc_id] = DocResult(item, DocStatus.OK, chunks=tuple(rows), **common)
    crash_point("process:after_embed")
    from docsync import storage

    vectors_ref = storage.write_vectors(storage.path(ctx.files.vectors(batch.number)), vectors)
    ordered = tuple(results[i.doc_id] for i in batch.items)  # plan order, as staged
    result = BatchResult(batch.run_id, batch.source, batch.number, vectors_ref, ordered,
                         round(time.perf_counter() - started, 3))
    return records.write(ctx.files.result(batch.number), result)


def _quarantined(item: WorkItem, failure: Failure) -> DocResult:
    log.warning("quarantine %s at %s: %s", item.path, failure.stage, failure.reason)
    return DocResult(item, DocStatus.QUARANTINED, failure)
