"""Step 1, plan: list the source (a stat per document), compare with the state store and stage
the run's work, streamed (docsync.walk): batches are staged while the walk goes on.
The mass-deletion and outage guards run after a completed walk, before anything is deleted."""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docsync import embedding_guard, fingerprint, records, state
from docsync.context import RunContext
from docsync.errors import DocumentError
from docsync.records import Plan, PlanCounts, UpdateKind, WorkItem, WorkKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.sources import Source, SourceEntry

log = logging.getLogger(__name__)
DOC_NAMESPACE = uuid.UUID("0b7e3f0e-61a4-5d0c-8a55-4c1f2d9a7b21")


class MassDeletionBlocked(RuntimeError):
    """Too many documents would be deleted at once: refuse and change nothing."""


@dataclass(frozen=True)
class PlanRef:
    """What the plan task returns through XCom: references only."""

    plan: str
    batches: tuple[str, ...]
    counts: PlanCounts

    def to_json(self) -> dict:
        return {"plan": self.plan, "batches": list(self.batches), "counts": self.counts.to_json()}


def new_doc_id(source: str, path: str, taken: set[str]) -> str:
    """A document's id: derived from its first path, unique within the source."""
    doc_id = uuid.uuid5(DOC_NAMESPACE, f"{source}:{path}").hex
    if doc_id in taken:  # a moved document kept the id derived from this path
        doc_id = uuid.uuid5(DOC_NAMESPACE, f"{source}:{path}:{len(taken)}").hex
    return doc_id


def content_hash(source: Source, entry: SourceEntry, max_bytes: int) -> str:
    """sha256 of a document, streamed; "" when it is over the size limit or the source reports a
    per-document problem: the document is then planned as changed and the process step
    quarantines it with the reason, instead of the whole plan failing (or reading 8 GiB)."""
    if entry.size > max_bytes:
        return ""
    try:
        return source.content_hash(entry.path)
    except DocumentError:
        return ""


def with_canonical_form(entry: SourceEntry, tag: str) -> SourceEntry:
    """The entry with ``tag``, the canonical-spelling settings (computed once per listing with
    docsync.principals.canonical_form_tag), in its access fingerprint: a change of them is an
    ACL-only update."""
    return dataclasses.replace(entry, acl_fingerprint=f"{entry.acl_fingerprint}|{tag}") if tag else entry


def _storable(path: str) -> bool:
    """A path docsync can store and show: file names that are not valid UTF-8 (a legacy
    encoding on a local/NFS share) cannot go into the state store, payloads or the quarantine.
    They are left out, with a warning that names them, until renamed (fail closed: not indexed)."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        shown = path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        log.warning("not synced: the file name %s is not valid UTF-8; rename it (convmv) to have it indexed", shown)
        return False
    return True


def version_changed(entry: SourceEntry, row: dict) -> bool:
    """The source's content version (e.g. a SharePoint quickXorHash/cTag) differs from the one
    recorded at indexing: the content may have changed even with the same size and mtime."""
    if not entry.version_tag:
        return False
    recorded = state.loads_object(row.get("doc_meta")).get("version_tag", "")
    return bool(recorded) and recorded != entry.version_tag


def seconds_per_document(engine: Engine, source: str) -> float:
    """Processing seconds per document in the source's last successful run that processed any
    (what a time budget of re-processing is converted with); 10 s when none did."""
    last = state.last_successful_run(engine, source)
    values = state.run_metrics(engine, [last["run_id"]])[last["run_id"]] if last else {}
    if values.get("indexed", 0) + values.get("quarantined", 0) <= 0:
        return 10.0
    return values.get("stage_process_s", 0.0) / (values.get("indexed", 0) + values.get("quarantined", 0))


def refresh_work(settings: Settings, ctx: RunContext, stale: list[tuple[SourceEntry, dict]],
                 current: dict) -> tuple[list[WorkItem], int]:
    """Which documents on a stale text fingerprint this run re-processes: PII-stricter changes
    first (all of them, outside the budget, with DOCSYNC_REPROCESS_URGENT), then the longest
    indexed, within DOCSYNC_REPROCESS_BUDGET. Returns (work, documents left for later runs)."""
    old = state.fingerprints_of(ctx.engine, {row["text_fp"] for _e, row in stale})
    ranked = sorted(
        ((not fingerprint.stricter_pii(old.get(row["text_fp"]), current), state.as_utc(row["indexed_at"])
          or state.utcnow(), entry, row) for entry, row in stale),
        key=lambda item: (item[0], item[1]),
    )
    budget = fingerprint.Budget.parse(settings.sync.reprocess_budget)
    limit = budget.documents_for(seconds_per_document(ctx.engine, ctx.source_name) if budget.seconds else 0.0)
    work: list[WorkItem] = []
    budgeted = 0
    for relaxed, _at, entry, row in ranked:
        urgent = not relaxed and settings.sync.reprocess_urgent
        if not urgent:
            if limit is not None and budgeted >= limit:
                break
            budgeted += 1
        work.append(WorkItem(row["doc_id"], entry, WorkKind.REPROCESS, row["content_hash"],
                             refresh="stale" if relaxed else "pii"))
    return work, len(stale) - len(work)


def rewritten(source: Source, entry: SourceEntry, row: dict, max_bytes: int) -> bool:
    """A forced full re-sync: the content changed although size and mtime did not (tools that
    rewrite files keeping both). An unreadable one counts as changed (quarantined with why)."""
    return content_hash(source, entry, max_bytes) != row["content_hash"]


# Estimated processing work of a document (issue 14 item 3): a fixed part per document (read,
# access, validation, state) plus its bytes weighted by how much work a byte of that kind is.
# A rough model, derived from the README's benchmark figures rather than fitted: plain text
# ~50 us/byte (PII + embedding), a scanned PDF page of ~200 kB ~6 s of OCR (~30 us/byte), a
# digital PDF ~15, DOCX (zipped) ~8; unknown kinds count like a PDF.
WORK_PER_DOCUMENT = 2_000  # byte-equivalents: ~0.1 s
WORK_PER_BYTE = {".txt": 1.0, ".md": 1.0, ".csv": 1.0, ".tsv": 1.0, ".json": 1.0, ".html": 0.5, ".htm": 0.5,
                 ".pdf": 0.5, ".png": 0.6, ".jpg": 0.6, ".jpeg": 0.6, ".tif": 0.6, ".tiff": 0.6,
                 ".docx": 0.2, ".pptx": 0.2, ".xlsx": 0.2}


def estimated_work(entry: SourceEntry) -> float:
    """A document's expected processing work from what the listing knows (size, extension)."""
    suffix = entry.path[entry.path.rfind("."):].lower() if "." in entry.path.rsplit("/", 1)[-1] else ""
    return WORK_PER_DOCUMENT + entry.size * WORK_PER_BYTE.get(suffix, 0.5)


# Work worth a batch of its own when a run is spread over the workers (byte-equivalents, as
# above; a one-page scan weighs ~350,000 and takes ~2 s): a batch costs ~0.5 CPU s whatever its
# size (validation, its write, on the DAG path a share of a task), so light work stays together.
MIN_SPLIT_WORK = 400_000


def work_batches(work: list[WorkItem], batch_size: int, spread: int = 1) -> list[tuple[WorkItem, ...]]:
    """Cut the run's work into batches by estimated work rather than by count: as many batches as
    ``batch_size`` documents each would give, and at least ``spread`` (twice the batches the
    deployment processes at once) when the work is heavy enough (``MIN_SPLIT_WORK`` each), so 20
    scanned PDFs are not one batch on one worker while the others idle; plus one for each
    document heavier than a fair share (total / batches) alone; heaviest documents first, each
    into the lightest batch that has room (at most ``batch_size`` documents), so no batch holds
    more than about a fair share. Batches come heaviest first (they start first: the run's tail
    is short); each keeps plan order."""
    if not work:
        return []
    import heapq

    weights = [estimated_work(item.entry) for item in work]
    total = sum(weights)
    count = max(-(-len(work) // batch_size), min(len(work), spread, int(total // MIN_SPLIT_WORK)))
    while True:  # a document over the fair share gets a batch of its own; the rest share the others
        heavy = sum(1 for w in weights if w > total / count)
        needed = heavy + -(-(len(work) - heavy) // batch_size)
        if needed <= count:
            break
        count = needed
    loads = [0.0] * count
    members: list[list[int]] = [[] for _ in range(count)]
    room = [(0.0, b) for b in range(count)]  # (load, batch) of the batches that can take more
    for i in sorted(range(len(work)), key=lambda i: (-weights[i], i)):
        _load, b = heapq.heappop(room)
        loads[b] += weights[i]
        members[b].append(i)
        if len(members[b]) < batch_size:
            heapq.heappush(room, (loads[b], b))
    order = sorted(range(count), key=lambda b: (-loads[b], b))
    return [tuple(work[i] for i in sorted(members[b])) for b in order]


def plan(settings: Settings, run_id: str, root: str | None = None, full: bool = False,
         on_batch: Callable[[str], None] | None = None, max_batches: int = 0) -> PlanRef:
    """Detect changes and stage the run's work, streamed: the listing is compared with the state
    store a chunk at a time and batches are staged (and handed to ``on_batch``) while the walk
    goes on; deletions are found after a completed walk (docsync.state.scan_store). Returns
    references only (safe for XCom). ``full``: re-hash every document instead of trusting an
    unchanged size and mtime. ``max_batches`` (0: no limit) ends the walk once that many batches
    are staged: the scan stays open (no deletions) and the next plan resumes it."""
    started = time.perf_counter()
    ctx = RunContext(settings, settings.source.name, run_id)
    source = ctx.source(root)
    source.check_available()
    state.start_run(ctx.engine, run_id, source.name)
    current = fingerprint.current(settings)
    state.record_fingerprints(ctx.engine, {current.text_id: ("text", current.text),
                                           current.embedding_id: ("embedding", current.embedding)})
    from docsync.walk import Walk

    walk = Walk(settings, ctx, source, current.text_id, full, root or settings.source.root(), on_batch)
    walk.refused = embedding_guard.refusal(ctx.engine, ctx.collection, current.embedding, source.name)
    complete = walk.run(max_batches)
    stale_left = 0
    if walk.stale:
        refreshed, stale_left = refresh_work(settings, ctx, walk.stale, current.text)
        walk.counts["reprocess"] = len(refreshed) if not walk.refused else 0
        walk.counts["reprocess_urgent"] = sum(1 for w in refreshed if w.refresh == "pii") if not walk.refused else 0
        for item in refreshed if not walk.refused else ():
            walk.stager.add(item)
    walk.stager.flush()
    if walk.refused:
        log.error("plan %s: %s", run_id, walk.refused)
    counts = PlanCounts(
        seen=walk.seen, unchanged=walk.counts["unchanged"] + stale_left,
        new=walk.counts["new"], modified=walk.counts["modified"], retried=walk.counts["retried"],
        reprocess=walk.counts["reprocess"], reprocess_urgent=walk.counts["reprocess_urgent"], stale_left=stale_left,
        acl_changed=sum(1 for u in walk.updates if u.kind is UpdateKind.ACL), moved=walk.counts["moved"],
        deleted=len(walk.deletes),
    )
    staged = Plan(
        run_id=run_id, source=source.name, root=walk.root, planned_at=walk.planned_at.isoformat(),
        plan_s=round(time.perf_counter() - started, 3), batches=tuple(walk.stager.refs), updates=tuple(walk.updates),
        deletes=tuple(walk.deletes), counts=counts, refused=walk.refused,
    )
    plan_ref = records.write(ctx.files.plan, staged)
    log.info("plan %s (scan %s%s): %s", run_id, walk.scan_id, "" if complete else ", walk not complete: resumed next run",
             counts.to_json())
    return PlanRef(plan_ref, tuple(walk.stager.refs), counts)
