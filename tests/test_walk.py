"""The streamed plan (docsync.walk, issue 18 item 2): batches are staged while the walk goes
on, deletions only after a completed walk, an interrupted walk deletes nothing and is
resumed, the plan's memory does not grow with the listing. Plans only: nothing is processed."""

from __future__ import annotations

import tracemalloc
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa

from docsync import fingerprint, records, state
from docsync.context import RunContext
from docsync.principals import canonical_form_tag
from docsync.sources import SourceEntry
from docsync.steps.plan import new_doc_id, plan, with_canonical_form


@dataclass
class GeneratedSource:
    """A source of ``n`` generated entries, listed lazily (never a list of them), that can
    fail after ``fail_after`` entries like a walk that crashes or loses its share."""

    n: int
    name: str = "fileshare"
    fail_after: int = 0
    skip: frozenset[int] = frozenset()
    listed: int = 0
    seen_at_first_batch: list[int] = field(default_factory=list)

    def entry(self, i: int) -> SourceEntry:
        return SourceEntry(f"d{i // 1000:04d}/f{i:07d}.txt", 100 + i % 7, 1_700_000_000_000_000_000 + i, "acl")

    def describe(self) -> str:
        return "generated source"

    def check_available(self) -> None:
        pass

    def list(self):
        for i in range(self.n):
            if self.fail_after and i == self.fail_after:
                raise RuntimeError("walk crashed")
            if i not in self.skip:
                self.listed += 1
                yield self.entry(i)

    def content_hash(self, path: str) -> str:
        return "h:" + path


@pytest.fixture()
def source(settings, monkeypatch) -> GeneratedSource:
    src = GeneratedSource(3000)
    monkeypatch.setattr(RunContext, "source", lambda self, root=None: src)
    return src


def record_indexed(settings, src: GeneratedSource, first: int = 0) -> None:
    """The state an initial load of ``src`` leaves (rows only: the plan never opens Qdrant)."""
    engine = state.get_engine(settings.state_url)
    current = fingerprint.current(settings)
    now = state.utcnow()
    tag = canonical_form_tag()
    rows = []
    for i in range(first, src.n):
        e = src.entry(i)
        row = state.document_row(source=src.name, doc_id=new_doc_id(src.name, e.path, set()), path=e.path, size=e.size,
                                 mtime_ns=e.mtime_ns, acl_fingerprint=with_canonical_form(e, tag).acl_fingerprint, status="indexed",
                                 first_seen=now, indexed_at=now, content_hash=src.content_hash(e.path),
                                 text_fp=current.text_id, embed_fp=current.embedding_id)
        rows.append(row | {"path_hash": state.path_hash(e.path)})
    with engine.begin() as conn:
        for start in range(0, len(rows), 1000):
            conn.execute(sa.insert(state.documents), rows[start:start + 1000])


def staged(ref) -> records.Plan:
    return records.read_plan(ref.plan)


def test_no_change_plan_stages_nothing(settings, source):
    record_indexed(settings, source)
    ref = plan(settings, "r1")
    assert (ref.counts.seen, ref.counts.unchanged, ref.batches) == (3000, 3000, ())


def test_a_crashed_walk_deletes_nothing_and_is_resumed(settings, source):
    """A walk that dies at a third of the share must not see the rest as deleted (it would have
    been 2000 deletions, blocked only by the guard); the next plan resumes its scan and a
    completed walk finds exactly the documents that are really gone."""
    record_indexed(settings, source)
    engine = state.get_engine(settings.state_url)
    source.skip = frozenset({5, 2500})  # really deleted
    source.fail_after = 1500
    with pytest.raises(RuntimeError, match="walk crashed"):
        plan(settings, "crashed")
    assert state.count_documents(engine, source.name) == 3000  # two thirds not listed, none deleted
    assert state.scan_history(engine, source.name)[0]["completed_at"] is None
    source.fail_after = 0
    ref = plan(settings, "resumed")
    (scan,) = state.scan_history(engine, source.name)
    assert (scan["scan_id"], scan["attempts"]) == (1, 2) and scan["completed_at"] is not None
    assert sorted(d.path for d in staged(ref).deletes) == [source.entry(5).path, source.entry(2500).path]
    assert ref.counts.deleted == 2


def test_deletions_only_after_a_completed_walk(settings, source):
    """A walk stopped at its slice (DOCSYNC_PLAN_SLICE_BATCHES, the DAG's initial-load mode)
    stages what it found and deletes nothing; the next plan that walks to the end does."""
    record_indexed(settings, source, first=200)  # the first 200 are new
    source.skip = frozenset({2900})
    engine = state.get_engine(settings.state_url)
    sliced = plan(settings, "slice", max_batches=2)
    assert staged(sliced).deletes == () and sliced.counts.deleted == 0
    assert 0 < sliced.counts.new <= 200 and sliced.counts.seen < 3000
    assert state.scan_history(engine, source.name)[-1]["completed_at"] is None
    ref = plan(settings, "rest")  # the first slice's work was not processed here: found again
    assert [d.path for d in staged(ref).deletes] == [source.entry(2900).path] and ref.counts.new == 200
    scans = state.scan_history(engine, source.name)
    assert [(s["scan_id"], s["attempts"], s["completed_at"] is not None) for s in scans] == [(1, 2, True)]
    again = plan(settings, "next")  # a new scan: the one before completed
    assert state.scan_history(engine, source.name)[-1]["scan_id"] == 2 and again.counts.deleted == 1


def test_a_mass_deletion_is_blocked_after_the_walk(settings, source):
    from docsync.steps.plan import MassDeletionBlocked

    record_indexed(settings, source)
    source.skip = frozenset(range(0, 3000, 2))
    with pytest.raises(MassDeletionBlocked, match="1500 of 3000 known documents would be deleted"):
        plan(settings, "blocked")


def test_the_first_batch_is_staged_long_before_the_walk_ends(settings, source):
    """An initial load hands its first batch over after one chunk of the listing."""
    source.n = 2500
    ref = plan(settings, "initial", on_batch=lambda _ref: source.seen_at_first_batch.append(source.listed))
    assert ref.counts.new == 2500 and len(ref.batches) == -(-2500 // settings.sync.batch_size)
    assert source.seen_at_first_batch[0] <= 1000  # one chunk compared with the state store


def _peak_plan_bytes(settings, n: int, run: str) -> int:
    src = GeneratedSource(n)
    RunContext.source = lambda self, root=None: src  # restored by the fixture's monkeypatch
    record_indexed(settings, src)
    tracemalloc.start()
    try:
        ref = plan(settings, run)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert ref.counts.unchanged == n
    with state.get_engine(settings.state_url).begin() as conn:
        conn.execute(sa.delete(state.documents))
    return peak


def test_plan_memory_does_not_grow_with_the_listing(settings, source):
    """A no-change plan of 4x the documents peaks at about the same Python memory: one chunk
    of the listing and of the state store at a time (the whole listing was held before)."""
    small = _peak_plan_bytes(settings, 1500, "small")
    large = _peak_plan_bytes(settings, 6000, "large")
    assert large < 1.5 * small, (small, large)
