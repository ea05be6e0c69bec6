"""Step 3, process: read, check access, parse/OCR, anonymize, validate, chunk and embed one
staged batch, and stage the (anonymized) result. Never writes Qdrant or the state store.

Any exception while preparing one document quarantines that document (stage named, reason
for a person) and the batch goes on; the batch as a whole keeps inside its time budget and
defers what does not fit to the next run.

A container (e-mail, ZIP archive) is expanded here: each part the parser returns becomes a
work item of its own (``mail.eml#attachment/1/a.pdf``, id derived from the listed document's
id and the part's path inside it, ``parent`` = that id), prepared like any document with the
container's access, and staged as a DocResult next to it. A family is written or deferred as
a whole (ARCHITECTURE.md, "Containers").
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import time
import uuid
from collections import deque
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
    from docsync.parse import Child, ParsedDocument
    from docsync.sources import Source

log = logging.getLogger(__name__)
PART_NAMESPACE = uuid.UUID("5d0f4a52-8c3e-5b1a-9e7d-3c2b1a0f9e8d")
MAX_NESTING = 3  # containers inside containers expanded this deep (a ZIP in an e-mail in a ZIP)


def part_id(root_id: str, suffix: str) -> str:
    """The id of a container's part: its listed document's id and its path inside it
    (``#attachment/1/a.pdf``), so it stays the same when the container moves."""
    return uuid.uuid5(PART_NAMESPACE, f"{root_id}:{suffix}").hex


@dataclass(frozen=True)
class Part:
    """A container's part waiting in the batch's queue: what it is, where it came from."""

    child: Child
    root: WorkItem  # the listed document (the family's head)
    suffix: str  # path inside the root: "#attachment/1/a.pdf", "#inner.zip#doc.txt"
    allowed: tuple[str, ...]
    denied: tuple[str, ...]
    depth: int

    def item(self) -> WorkItem:
        entry = dataclasses.replace(self.root.entry, path=self.root.path + self.suffix, size=self.child.size)
        return WorkItem(part_id(self.root.doc_id, self.suffix), entry, self.root.kind, parent=self.root.doc_id)


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
    markup_ratio: float = 0.0  # share of the extracted text that is tags/CSS/base64 (before anonymization)


def prepare(item: WorkItem, source: Source, settings: Settings, part: Part | None = None) -> PreparedDocument:
    """Read, check access, parse and anonymize one document (raises DocumentError subclasses).
    A container's ``part`` brings its own bytes and the container's access."""
    from docsync import pii
    from docsync.parse import parse_document
    from docsync.parsers.text import markup_ratio

    if item.entry.size > settings.source.max_file_bytes:
        raise DocumentError.at(
            Stage.DETECT,
            f"{item.path} is {item.entry.size / 2**20:.1f} MiB, over DOCSYNC_MAX_FILE_MB "
            f"({settings.source.max_file_bytes / 2**20:.0f} MiB); split it or raise the limit",
        )
    if part is None:
        data = source.read(item.path)
        allowed, denied = source.access(item.entry)  # AccessUnresolved: quarantined at stage access
    else:
        data, allowed, denied = part.child.read(), part.allowed, part.denied
    digest = hashlib.sha256(data).hexdigest()
    parsed = parse_document(data, item.path, settings)
    del data
    ratio = markup_ratio(parsed.text)
    texts, counts = pii.anonymize_many([b.text for b in parsed.blocks], settings)
    for block, text in zip(parsed.blocks, texts):
        block.text = text
    full_text = parsed.text
    return PreparedDocument(
        digest, list(allowed), list(denied), parsed, counts, pii.rescan(full_text), full_text, ratio
    )


def parts_of(work: WorkItem, part: Part | None, p: PreparedDocument) -> list[Part]:
    """The parts of a prepared container, to be queued after it (none past MAX_NESTING)."""
    depth = part.depth + 1 if part else 1
    if not p.parsed.children:
        return []
    if depth > MAX_NESTING:
        log.warning("%s: containers nested deeper than %d levels are not expanded", work.path, MAX_NESTING)
        return []
    root = part.root if part else work
    prefix = part.suffix if part else ""
    return [Part(c, root, f"{prefix}#{c.name}", tuple(p.allowed), tuple(p.denied), depth) for c in p.parsed.children]


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
    from docsync.parse import warm_parsers
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
    order: list[WorkItem] = []  # every document staged, parts right after their container
    try:
        for item in batch.items:
            queue: deque[tuple[WorkItem, Part | None]] = deque([(item, None)])
            family: list[WorkItem] = []  # the listed document and its parts reached so far
            while queue:
                work, part = queue.popleft()
                if budget.exhausted():
                    _defer_family(item, family, failed, prepared, chunked)
                    break
                family.append(work)
                # lazy imports and model loads of this kind of document, never inside its deadline
                warm_parsers(settings, work.path)
                try:
                    cut_by_batch = budget.left() < settings.sync.doc_timeout_s
                    with deadline(budget.document_s()):
                        # parse_document runs parsing/OCR under the per-document memory budget (limits)
                        p = prepare(work, source, settings, part)
                    chunks = chunk_blocks(p.parsed.blocks, settings.sync.chunk_tokens, settings.sync.chunk_overlap)
                except DocumentTimeout as exc:
                    if cut_by_batch:  # the batch's budget ran out, not the document's own limit
                        _defer_family(item, family, failed, prepared, chunked)
                        break
                    failed[work.doc_id] = _quarantined(work, failure_for(exc, work.path))
                    continue
                except Exception as exc:  # one bad document never fails the batch
                    failed[work.doc_id] = _quarantined(work, failure_for(exc, work.path))
                    continue
                prepared[work.doc_id] = p
                queue.extend((q.item(), q) for q in parts_of(work, part, p))
                p.parsed.children = []  # the queue holds them now (and what they keep in memory)
                chunked[work.doc_id] = list(zip(assign_point_ids(work.doc_id, chunks), chunks))
                if p.pii_rescan_hits:
                    continue  # fail closed: PII survived anonymization, never embedded (quarantined below)
                # Embed while the next documents are prepared; chunks this document already
                # has in the index keep their vectors.
                known = state.chunk_ids(ctx.engine, [work.doc_id])[work.doc_id]
                todo = [(pid, c.text) for pid, c in chunked[work.doc_id] if pid not in known]
                slots.update(zip((pid for pid, _t in todo), embedder.add([t for _pid, t in todo])))
            order.extend(family or [item])

        items = {i.doc_id: i for i in order}
        overrides = {i.doc_id for i in order if i.override}
        doc_rows = [
            {
                "doc_id": doc_id,
                "mime": p.parsed.mime,
                "text_length": len(p.text.strip()),
                "replacement_ratio": p.text.count("\ufffd") / max(len(p.text), 1),
                "ocr_confidence": p.parsed.ocr_confidence,
                "allowed_count": len(p.allowed),
                "pii_rescan_hits": p.pii_rescan_hits,
                "markup_ratio": p.markup_ratio,
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
    ordered = tuple(results[i.doc_id] for i in order if i.doc_id in results)  # plan order, parts after their container
    result = BatchResult(batch.run_id, batch.source, batch.number, vectors_ref, ordered,
                         round(time.perf_counter() - started, 3))
    return records.write(ctx.files.result(batch.number), result)


def _defer_family(item: WorkItem, family: list[WorkItem], failed: dict, prepared: dict, chunked: dict) -> None:
    """The batch ran out of time inside ``item``'s family: the container and every part of it
    go to the next run together (a container written without some of its parts would look
    complete and never be expanded again)."""
    for work in family:
        failed.pop(work.doc_id, None)
        prepared.pop(work.doc_id, None)
        chunked.pop(work.doc_id, None)
    family.clear()
    failed[item.doc_id] = DocResult(item, DocStatus.DEFERRED)


def _quarantined(item: WorkItem, failure: Failure) -> DocResult:
    log.warning("quarantine %s at %s: %s", item.path, failure.stage, failure.reason)
    return DocResult(item, DocStatus.QUARANTINED, failure)
