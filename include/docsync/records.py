"""Typed records that the steps stage and pass to each other, and where they are staged.

Every record is a frozen dataclass with ``to_json``/``from_json``: plans, batches and
results are written as JSON under the run's staging directory (:class:`RunFiles`), and only
their references (strings) travel through XCom. Document text in a record is anonymized text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from docsync import storage
from docsync.errors import Failure
from docsync.sources.base import SourceEntry

if TYPE_CHECKING:
    from docsync.config import Settings


class WorkKind(StrEnum):
    """Why a document is (re-)processed in full: read, parse, anonymize, embed."""

    NEW = "new"  # docsync has not indexed this path before
    MODIFIED = "modified"  # its content changed (or its permissions were fixed while quarantined)
    # A reviewer asked for it, an earlier read failed transiently, or (WorkItem.refresh) the
    # document's processing fingerprint is stale (docsync.fingerprint).
    REPROCESS = "reprocess"
    REINDEX = "reindex"  # rebuilt into a new collection version by `docsync reindex`


class UpdateKind(StrEnum):
    """A change applied without re-embedding (before any heavy processing)."""

    ACL = "acl"  # only the access metadata changed: payload and state updated
    TOUCH = "touch"  # size/mtime changed but the content hash did not
    MOVE = "move"  # the content of a vanished indexed document appeared at a new path


class DocStatus(StrEnum):
    """What processing made of one document."""

    OK = "ok"  # ready to write
    QUARANTINED = "quarantined"  # failed a stage: no points, a quarantine entry
    DEFERRED = "deferred"  # the batch ran out of time before it: planned again next run


def _entry_json(entry: SourceEntry) -> dict:
    return {
        "path": entry.path,
        "size": entry.size,
        "mtime_ns": entry.mtime_ns,
        "acl_fingerprint": entry.acl_fingerprint,
        "version_tag": entry.version_tag,
    }


def _entry_from(value: dict) -> SourceEntry:
    return SourceEntry(
        path=value["path"],
        size=value["size"],
        mtime_ns=value["mtime_ns"],
        acl_fingerprint=value["acl_fingerprint"],
        version_tag=value.get("version_tag", ""),
    )


@dataclass(frozen=True)
class WorkItem:
    """One document to process in full."""

    doc_id: str
    entry: SourceEntry
    kind: WorkKind
    content_hash: str = ""  # known hash ("" when the plan did not need to read the file)
    override: bool = False  # a reviewer released it: document-quality checks are waived
    # Why a REPROCESS item re-processes an unchanged document: "stale" (its text fingerprint is
    # not the current one; within DOCSYNC_REPROCESS_BUDGET) or "pii" (the change is PII-stricter).
    refresh: str = ""
    parent: str = ""  # a part of a container (attachment, archive member): the listed document's id

    @property
    def path(self) -> str:
        return self.entry.path

    def to_json(self) -> dict:
        return {"doc_id": self.doc_id, "kind": str(self.kind), "content_hash": self.content_hash,
                "override": self.override, "refresh": self.refresh, "entry": _entry_json(self.entry), "parent": self.parent}

    @classmethod
    def from_json(cls, value: dict) -> WorkItem:
        return cls(value["doc_id"], _entry_from(value["entry"]), WorkKind(value["kind"]),
                   value.get("content_hash", ""), bool(value.get("override")), value.get("refresh", ""),
                   value.get("parent", ""))


@dataclass(frozen=True)
class Update:
    """A no-embed change of one indexed (or quarantined) document."""

    doc_id: str
    entry: SourceEntry  # the document as listed now
    kind: UpdateKind
    old_path: str = ""  # moves only

    def to_json(self) -> dict:
        return {"doc_id": self.doc_id, "kind": str(self.kind), "old_path": self.old_path,
                "entry": _entry_json(self.entry)}

    @classmethod
    def from_json(cls, value: dict) -> Update:
        return cls(value["doc_id"], _entry_from(value["entry"]), UpdateKind(value["kind"]), value.get("old_path", ""))


@dataclass(frozen=True)
class Delete:
    """A document that is gone from the source."""

    doc_id: str
    path: str

    def to_json(self) -> dict:
        return {"doc_id": self.doc_id, "path": self.path}

    @classmethod
    def from_json(cls, value: dict) -> Delete:
        return cls(value["doc_id"], value["path"])


@dataclass(frozen=True)
class PlanCounts:
    """What the plan found (the run summary's first numbers)."""

    seen: int = 0
    unchanged: int = 0
    new: int = 0
    modified: int = 0
    retried: int = 0  # work of kind REPROCESS asked for by a reviewer or a transient failure
    reprocess: int = 0  # unchanged documents re-processed for a stale text fingerprint (incl. urgent)
    reprocess_urgent: int = 0  # of which PII-stricter changes, outside the budget
    stale_left: int = 0  # documents on a stale text fingerprint left for later runs (budget)
    acl_changed: int = 0
    moved: int = 0
    deleted: int = 0

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, value: dict) -> PlanCounts:
        return cls(**{k: int(value.get(k, 0)) for k in cls.__dataclass_fields__})

    @property
    def changes_nothing(self) -> bool:
        """Every document unchanged and nothing deleted: the index need not even be opened."""
        return self.seen == self.unchanged and not self.deleted


@dataclass(frozen=True)
class Batch:
    """A slice of a plan's work, processed by one ``process`` task."""

    run_id: str
    source: str
    root: str
    number: int
    items: tuple[WorkItem, ...]

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "source": self.source, "root": self.root, "number": self.number,
                "items": [i.to_json() for i in self.items]}

    @classmethod
    def from_json(cls, value: dict) -> Batch:
        return cls(value["run_id"], value["source"], value["root"], int(value["number"]),
                   tuple(WorkItem.from_json(i) for i in value["items"]))


@dataclass(frozen=True)
class Plan:
    """The run's staged work: batches (by reference), updates and deletes."""

    run_id: str
    source: str
    root: str
    planned_at: str
    plan_s: float
    batches: tuple[str, ...]
    updates: tuple[Update, ...]
    deletes: tuple[Delete, ...]
    counts: PlanCounts
    # Why the run writes no points (the embedding model differs from the collection's): the
    # updates step still applies deletes and ACL changes, finalize fails the run with it.
    refused: str = ""

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "source": self.source, "root": self.root, "planned_at": self.planned_at,
                "plan_s": self.plan_s, "batches": list(self.batches), "updates": [u.to_json() for u in self.updates],
                "deletes": [d.to_json() for d in self.deletes], "counts": self.counts.to_json(),
                "refused": self.refused}

    @classmethod
    def from_json(cls, value: dict) -> Plan:
        return cls(value["run_id"], value["source"], value["root"], value["planned_at"], float(value["plan_s"]),
                   tuple(value["batches"]), tuple(Update.from_json(u) for u in value["updates"]),
                   tuple(Delete.from_json(d) for d in value["deletes"]), PlanCounts.from_json(value["counts"]),
                   value.get("refused", ""))


@dataclass(frozen=True)
class DocMeta:
    """Processing facts of a document (the state store's ``doc_meta`` JSON)."""

    mime: str = ""
    pages: int = 0
    ocr_pages: int = 0
    ocr_confidence: float | None = None
    page_confidence: dict = field(default_factory=dict)
    pii_counts: dict = field(default_factory=dict)
    version_tag: str = ""

    def to_json(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, value: dict) -> DocMeta:
        return cls(**{k: v for k, v in value.items() if k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class ChunkRecord:
    """One anonymized chunk ready to be written."""

    point_id: str
    index: int
    text: str
    text_hash: str
    pages: tuple[int, ...]
    heading: str
    token_count: int
    vector: int | None  # row in the batch's vector file; None: the point exists, keep its vector

    def to_json(self) -> dict:
        return {"point_id": self.point_id, "index": self.index, "text": self.text, "text_hash": self.text_hash,
                "pages": list(self.pages), "heading": self.heading, "token_count": self.token_count,
                "vector": self.vector}

    @classmethod
    def from_json(cls, value: dict) -> ChunkRecord:
        return cls(value["point_id"], value["index"], value["text"], value["text_hash"], tuple(value["pages"]),
                   value["heading"], value["token_count"], value["vector"])


@dataclass(frozen=True)
class DocResult:
    """What processing made of one work item."""

    item: WorkItem
    status: DocStatus
    failure: Failure | None = None
    content_hash: str = ""
    allowed: tuple[str, ...] = ()
    denied: tuple[str, ...] = ()
    meta: DocMeta | None = None
    preview: str = ""  # anonymized text, only for quarantined documents without surviving PII
    chunks: tuple[ChunkRecord, ...] = ()
    text_fp: str = ""  # the processing that produced it (docsync.fingerprint digests)
    embed_fp: str = ""

    @property
    def doc_id(self) -> str:
        return self.item.doc_id

    @property
    def path(self) -> str:
        return self.item.path

    def to_json(self) -> dict:
        return {"item": self.item.to_json(), "status": str(self.status),
                "failure": self.failure.to_json() if self.failure else None, "content_hash": self.content_hash,
                "allowed": list(self.allowed), "denied": list(self.denied),
                "meta": self.meta.to_json() if self.meta else None, "preview": self.preview,
                "chunks": [c.to_json() for c in self.chunks], "text_fp": self.text_fp, "embed_fp": self.embed_fp}

    @classmethod
    def from_json(cls, value: dict) -> DocResult:
        return cls(
            WorkItem.from_json(value["item"]), DocStatus(value["status"]),
            Failure.from_json(value["failure"]) if value.get("failure") else None, value.get("content_hash", ""),
            tuple(value.get("allowed", ())), tuple(value.get("denied", ())),
            DocMeta.from_json(value["meta"]) if value.get("meta") else None, value.get("preview", ""),
            tuple(ChunkRecord.from_json(c) for c in value.get("chunks", ())),
            value.get("text_fp", ""), value.get("embed_fp", ""),
        )


@dataclass(frozen=True)
class BatchResult:
    """A processed batch: documents plus the reference of its vector file."""

    run_id: str
    source: str
    number: int
    vectors: str
    documents: tuple[DocResult, ...]
    process_s: float

    def to_json(self) -> dict:
        return {"run_id": self.run_id, "source": self.source, "number": self.number, "vectors": self.vectors,
                "documents": [d.to_json() for d in self.documents], "process_s": self.process_s}

    @classmethod
    def from_json(cls, value: dict) -> BatchResult:
        return cls(value["run_id"], value["source"], int(value["number"]), value["vectors"],
                   tuple(DocResult.from_json(d) for d in value["documents"]), float(value.get("process_s", 0.0)))


@dataclass(frozen=True)
class WriteReport:
    """What writing one batch did (small: travels through XCom to finalize)."""

    counts: dict[str, int]
    # Per modified document: indexed minus the later of its modification and the previous
    # successful scan (docsync.metrics.propagation_lag); new documents are not in it.
    propagation_lag_s: tuple[float, ...] = ()
    pii: dict[str, int] = field(default_factory=dict)
    ocr_pages: int = 0
    process_s: float = 0.0
    index_s: float = 0.0

    def to_json(self) -> dict:
        return {"counts": dict(self.counts), "propagation_lag_s": list(self.propagation_lag_s), "pii": dict(self.pii),
                "ocr_pages": self.ocr_pages, "process_s": self.process_s, "index_s": self.index_s}

    @classmethod
    def from_json(cls, value: dict) -> WriteReport:
        return cls(dict(value.get("counts", {})), tuple(value.get("propagation_lag_s", ())), dict(value.get("pii", {})),
                   int(value.get("ocr_pages", 0)), float(value.get("process_s", 0.0)),
                   float(value.get("index_s", 0.0)))


@dataclass(frozen=True)
class UpdatesReport:
    """What applying a plan's deletes and no-embed updates did (travels to finalize)."""

    applied: dict[str, int]  # deleted / acl / touch / move / quarantined / gone
    revocation_lag_s: tuple[float, ...] = ()  # first detected -> applied, per ACL change or delete
    updates_s: float = 0.0
    propagation_lag_s: tuple[float, ...] = ()  # per ACL change or move (as WriteReport's)

    def to_json(self) -> dict:
        return {"applied": dict(self.applied), "revocation_lag_s": list(self.revocation_lag_s),
                "updates_s": self.updates_s, "propagation_lag_s": list(self.propagation_lag_s)}

    @classmethod
    def from_json(cls, value: dict | None) -> UpdatesReport:
        value = value or {}
        return cls(dict(value.get("applied", {})), tuple(value.get("revocation_lag_s", ())),
                   float(value.get("updates_s", 0.0)), tuple(value.get("propagation_lag_s", ())))


class RunFiles:
    """Where one run's records are staged: the only place that names those files."""

    def __init__(self, settings: Settings, source: str, run_id: str) -> None:
        self.directory = storage.run_dir(settings, source, run_id)

    @property
    def plan(self) -> str:
        return str(self.directory / "plan.json")

    def batch(self, number: int) -> str:
        return str(self.directory / f"batch-{number:05d}.json")

    def result(self, number: int) -> str:
        return str(self.directory / f"result-{number:05d}.json")

    def vectors(self, number: int) -> str:
        return str(self.directory / f"result-{number:05d}.npy")


def write(ref: str, record: Any) -> str:
    """Stage a record at ``ref`` (atomically); returns the reference."""
    return storage.write_json(storage.path(ref), record.to_json())


def read_plan(ref: str) -> Plan:
    return Plan.from_json(storage.read_json(ref))


def read_batch(ref: str) -> Batch:
    return Batch.from_json(storage.read_json(ref))


def read_result(ref: str) -> BatchResult:
    return BatchResult.from_json(storage.read_json(ref))
