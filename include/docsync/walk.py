"""The streamed walk of a plan (docsync.steps.plan): the listing is compared with the state
store a chunk at a time, every listed path goes into the walk's seen set (local disk), work is
staged as it is found (docsync.batching). Deletions and moves are decided after a walk
that completed: the documents it did not list. Memory holds one chunk, one staging
window and what is proportional to the changes (updates, deletions), never the whole share."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import TYPE_CHECKING

from docsync import quarantine, state
from docsync.batching import SeenSet, Spill, Stager, process_parallelism
from docsync.principals import canonical_form_tag
from docsync.records import Delete, Update, UpdateKind, WorkItem, WorkKind
from docsync.sources import SourceUnavailable
from docsync.steps.plan import (
    DOC_NAMESPACE,
    MassDeletionBlocked,
    _storable,
    content_hash,
    new_doc_id,
    rewritten,
    version_changed,
    with_canonical_form,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.context import RunContext
    from docsync.sources import Source, SourceEntry

CHUNK = 1000  # listed entries compared with the state store per query


def new_doc_ids(engine: Engine, source: str, paths: list[str]) -> dict[str, str]:
    """:func:`new_doc_id` of each path, checked against the state store (not a set of every id)."""
    ids = {p: new_doc_id(source, p, set()) for p in paths}
    taken = state.existing_doc_ids(engine, ids.values())
    for path in [p for p, i in ids.items() if i in taken]:
        n = 1  # a moved document kept the id derived from this path
        while (candidate := uuid.uuid5(DOC_NAMESPACE, f"{source}:{path}:{n}").hex) in state.existing_doc_ids(
                engine, [candidate]):
            n += 1
        ids[path] = candidate
    return ids


def chunks(entries: Iterator[SourceEntry], size: int) -> Iterator[list[SourceEntry]]:
    chunk: list[SourceEntry] = []
    for entry in entries:
        chunk.append(entry)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Walk:
    """One plan's walk: classification of each listed entry, counts, updates, deletions."""

    def __init__(self, settings: Settings, ctx: RunContext, source: Source, text_fp: str, full: bool, root: str,
                 on_batch: Callable[[str], None] | None) -> None:
        self.settings, self.ctx, self.source, self.text_fp, self.full, self.root = settings, ctx, source, text_fp, full, root
        self.engine = ctx.engine
        # Heavy work is cut into twice the batches the deployment processes at once: each worker
        # takes the next as it finishes one, so they end together.
        self.stager = Stager(ctx, root, settings.sync.batch_size, on_batch, spread=2 * process_parallelism(settings))
        self.refused = ""
        self.counts: Counter[str] = Counter()
        self.updates: list[Update] = []
        self.deletes: list[Delete] = []
        self.stale: list[tuple[SourceEntry, dict]] = []
        self.seen = 0
        self.planned_at = state.utcnow()
        self.limit = settings.source.max_file_bytes
        self.reprocess = quarantine.reprocess_requests(self.engine, source.name)
        # A reviewer's retry of an attachment or archive member re-processes its container (a
        # release waives the checks of the container itself only, not of its other parts).
        for part, parent in state.parents_of(self.engine, list(self.reprocess)).items():
            self.reprocess.pop(part)
            self.reprocess.setdefault(parent, "retry")
        self.scan_id = 0
        self._changes: dict[str, str] = {}  # this chunk's backlog (doc id -> kind)

    def stage(self, item: WorkItem) -> None:
        """Work found: counted and in the backlog; staged unless the run refuses to embed."""
        self.counts[{WorkKind.NEW: "new", WorkKind.MODIFIED: "modified"}.get(item.kind, "retried")] += 1
        self._changes[item.doc_id] = state.CONTENT
        if not self.refused:
            self.stager.add(item)

    def update(self, update: Update) -> None:
        self.updates.append(update)
        if update.kind is not UpdateKind.TOUCH:  # a touch changes nothing searchable: no backlog
            self._changes[update.doc_id] = state.REVOCATION if update.kind is UpdateKind.ACL else state.CONTENT

    def run(self, max_batches: int = 0) -> bool:
        """Walk the listing; True when it completed (deletions then decided), False when it
        stopped at ``max_batches`` staged batches (the scan stays open, nothing deleted)."""
        known = state.count_documents(self.engine, self.source.name)
        self.scan_id, resumed = state.open_scan(self.engine, self.source.name, self.ctx.run_id)
        # A new path may be a moved document once a walk completed (or with documents of a
        # docsync that kept no scans): it waits on disk for the end of the walk. An initial load
        # (also one resumed after a crash or a slice) has nothing to move: its work is staged at once.
        spill = Spill() if known and (state.completed_scans(self.engine, self.source.name) or self.scan_id == 1
                                      and not resumed) else None
        room = max_batches * self.settings.sync.batch_size
        tag = canonical_form_tag()
        seen = SeenSet()
        try:
            listing = (with_canonical_form(e, tag) for e in self.source.list() if _storable(e.path))
            for chunk in chunks(listing, CHUNK):
                self.seen += len(chunk)
                hashes = [state.path_hash(e.path) for e in chunk]
                rows = state.documents_at(self.engine, self.source.name, hashes)
                seen.add(hashes)
                new = [e for e in chunk if e.path not in rows]
                for entry in chunk:
                    if entry.path in rows:
                        self._classify(entry, rows[entry.path])
                if spill is not None:
                    for entry in new:
                        spill.add(entry)
                else:
                    self._stage_new(new)
                self._note_changes()
                # A slice is full, counting what waits in the spill (else new work could only
                # start after the whole walk, which a slice is there to avoid).
                if max_batches and len(self.stager.refs) * self.settings.sync.batch_size + (
                        spill.count if spill is not None else 0) >= room:
                    if spill is not None:  # no moves without a completed walk: new is new
                        self._stage_spill(spill, set())
                    self._note_changes()
                    return False
            if not self.seen and known:
                raise SourceUnavailable(
                    f"{self.source.describe()} lists no documents but {known} are indexed: treated as an outage, "
                    "nothing deleted. Check the mount/share. If the source was emptied on purpose, drop the "
                    f"collection {self.ctx.collection} and the source's rows in docsync_documents by hand."
                )
            moved = self._deletions(known, spill, seen)
            if spill is not None:
                self._stage_spill(spill, moved)
            self._note_changes()
            state.complete_scan(self.engine, self.source.name, self.scan_id)
            state.drop_unfound_pending(self.engine, self.source.name, self.scan_id)
            return True
        finally:
            seen.close()
            if spill is not None:
                spill.close()

    def _classify(self, entry: SourceEntry, row: dict) -> None:
        requested = self.reprocess.get(row["doc_id"])
        if requested:
            self.stage(WorkItem(row["doc_id"], entry, WorkKind.REPROCESS, override=requested == "released"))
        elif (entry.size == row["size"] and entry.mtime_ns == row["mtime_ns"] and not version_changed(entry, row)
              and not (self.full and rewritten(self.source, entry, row, self.limit))):
            if entry.acl_fingerprint != row["acl_fingerprint"] and row["status"] == "quarantined":
                # Permissions fixed on a quarantined document: process it again in full.
                self.stage(WorkItem(row["doc_id"], entry, WorkKind.MODIFIED, row["content_hash"]))
            elif entry.acl_fingerprint != row["acl_fingerprint"]:
                self.update(Update(row["doc_id"], entry, UpdateKind.ACL))
            elif row["status"] == "indexed" and row["text_fp"] != self.text_fp:
                self.stale.append((entry, row))  # produced by other processing: re-processed within the budget
            else:
                self.counts["unchanged"] += 1
        else:
            digest = content_hash(self.source, entry, self.limit)
            if digest and digest == row["content_hash"]:
                self.update(Update(row["doc_id"], entry, UpdateKind.TOUCH))
            else:
                self.stage(WorkItem(row["doc_id"], entry, WorkKind.MODIFIED, digest))

    def _stage_new(self, entries: list[SourceEntry], digests: dict[str, str] | None = None) -> None:
        ids = new_doc_ids(self.engine, self.source.name, [e.path for e in entries])
        for entry in entries:
            self.stage(WorkItem(ids[entry.path], entry, WorkKind.NEW, (digests or {}).get(entry.path, "")))

    def _stage_spill(self, spill: Spill, moved: set[str]) -> None:
        for chunk in chunks((e for e in spill if e.path not in moved), CHUNK):
            self._stage_new(chunk)
            self._note_changes()

    def _deletions(self, known: int, spill: Spill | None, seen: SeenSet) -> set[str]:
        """After a completed walk: documents it did not list are deleted, unless a new path has
        the content of one (a move: no re-embedding). Returns the moved-to paths. The guard runs
        before anything is deleted (and before loading a mass of unlisted rows)."""
        fraction = self.settings.sync.max_delete_fraction
        # Exact up to this many (moves may bring it under the guard); ids only, 100 bytes each.
        limit = max(int(fraction * known) + (spill.count if spill else 0), 100_000)
        gone = state.unseen_doc_ids(self.engine, self.source.name, seen.found, limit) if known else []
        if gone is None:
            self._blocked(f"more than {limit}", known)
        missing = state.documents_by_id(self.engine, gone) if gone else []
        movable = {(r["content_hash"], r["size"]): r for r in missing if r["status"] == "indexed"}
        sizes = {size for _h, size in movable}
        moved_ids: set[str] = set()
        moved_paths: set[str] = set()
        for entry in spill or ():
            if entry.size in sizes:
                row = movable.pop((content_hash(self.source, entry, self.limit), entry.size), None)
                if row is not None:
                    moved_ids.add(row["doc_id"])
                    moved_paths.add(entry.path)
                    self.counts["moved"] += 1
                    self.update(Update(row["doc_id"], entry, UpdateKind.MOVE, old_path=row["path"]))
        self.deletes = [Delete(r["doc_id"], r["path"]) for r in missing if r["doc_id"] not in moved_ids]
        if known and len(self.deletes) > fraction * known:
            self.updates = [u for u in self.updates if u.kind is not UpdateKind.MOVE]
            self._blocked(len(self.deletes), known)
        self._changes |= {d.doc_id: state.REVOCATION for d in self.deletes}
        return moved_paths

    def _blocked(self, deletes: int | str, known: int) -> None:
        raise MassDeletionBlocked(
            f"{self.source.describe()}: {deletes} of {known} known documents would be deleted "
            f"(limit {self.settings.sync.max_delete_fraction:.0%}, DOCSYNC_MAX_DELETE_FRACTION). Nothing was deleted; "
            "the walk's scan stays open. If the share is healthy and the deletion is intended, raise the limit for one run."
        )

    def _note_changes(self) -> None:
        if self._changes:
            state.note_pending(self.engine, self.source.name, self._changes, self.planned_at, self.scan_id)
            self._changes = {}
