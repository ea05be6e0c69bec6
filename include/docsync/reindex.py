"""Zero-downtime full re-index of one source through Qdrant collection aliases.

Readers and the sync DAGs use the alias ``docsync_<source>``. `docsync reindex` builds
``docsync_<source>_v<N+1>`` by re-processing every document the state store has indexed
(read, parse/OCR, anonymize, validate, chunk, embed), then points the alias at it in one
atomic ``update_collection_aliases`` call and drops the previous version (kept with
``keep_previous``, for a rollback with :func:`docsync.index.switch_alias`).

Pause the sync DAG of the source meanwhile: a sync that overlaps writes to the old
version; the reconcile step of the next run repairs what it missed.

This is how the embedding model changes (``DOCSYNC_EMBED_MODEL``): syncs refuse to write into a
collection of another model (docsync.embedding_guard); the new version is built with the
configured model, records its embedding fingerprint, and the alias takes it over at the swap.
Searches keep reading the previous version through the alias until then.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import TYPE_CHECKING

from docsync import fingerprint, index, records, state, storage
from docsync.context import RunContext
from docsync.faults import crash_point
from docsync.principals import canonical_form_tag
from docsync.records import Batch, WorkItem, WorkKind
from docsync.steps.plan import with_canonical_form
from docsync.steps.process import process_batch
from docsync.steps.reconcile import reconcile
from docsync.steps.write import write_batch

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from docsync.config import Settings

log = logging.getLogger(__name__)


def versions(client: QdrantClient, alias: str) -> list[int]:
    """Version numbers of the ``<alias>_v<N>`` collections that exist."""
    pattern = re.compile(rf"^{re.escape(alias)}_v(\d+)$")
    names = [c.name for c in client.get_collections().collections]
    return sorted(int(m.group(1)) for m in map(pattern.match, names) if m)


def _stage(settings: Settings, source_name: str, run_id: str, root: str | None) -> tuple[list[str], int]:
    """Stage batches of every indexed document still in the source; returns (refs, missing)."""
    ctx = RunContext(settings, source_name, run_id)
    source = ctx.source(root)
    source.check_available()
    tag = canonical_form_tag()
    entries = {e.path: with_canonical_form(e, tag) for e in source.list()}
    known = state.load_documents(ctx.engine, source_name)
    items, missing = [], 0
    for path, row in sorted(known.items()):
        if row["status"] != "indexed":
            continue
        if path not in entries:  # gone since the last sync: the next sync deletes it
            missing += 1
            continue
        items.append(WorkItem(row["doc_id"], entries[path], WorkKind.REINDEX, row["content_hash"]))
    root_used = root or settings.source.root()
    refs = [
        records.write(ctx.files.batch(n), Batch(run_id, source_name, root_used, n, tuple(items[i : i + settings.sync.batch_size])))
        for n, i in enumerate(range(0, len(items), settings.sync.batch_size))
    ]
    return refs, missing


def reindex(
    settings: Settings, source_name: str | None = None, root: str | None = None, keep_previous: bool = False
) -> dict:
    """Build a new collection version from the state store and switch the alias to it."""
    source_name = source_name or settings.source.name
    settings = settings.with_overrides(source_name=source_name)
    alias = settings.collection(source_name)
    local = index.is_local(settings)
    with index.open_index(settings) as client:
        previous = index.alias_target(client, alias)
        legacy = previous is None and client.collection_exists(alias)
        built = versions(client, alias)
        serving = next((v for v in built if f"{alias}_v{v}" == previous), None)
        for version in built:  # newer than the version the alias serves: left by a killed reindex
            if serving is not None and version > serving:
                client.delete_collection(f"{alias}_v{version}")
                state.forget_collection(state.get_engine(settings.state_url), f"{alias}_v{version}")
        target = f"{alias}_v{max(versions(client, alias), default=0) + 1}"
        index.create_collection(client, target, local)
    run_id = f"reindex__{state.utcnow().strftime('%Y%m%dT%H%M%S%f')}"
    counts: Counter = Counter()
    try:
        refs, missing = _stage(settings, source_name, run_id, root)
        for ref in refs:
            counts.update(write_batch(settings, process_batch(settings, ref), collection=target).counts)
    except BaseException:
        with index.open_index(settings) as client:  # the alias still points at the old version
            client.delete_collection(target)
        state.forget_collection(state.get_engine(settings.state_url), target)
        raise
    finally:
        storage.cleanup_run(settings, source_name, run_id)
    crash_point("reindex:before_swap")
    engine = state.get_engine(settings.state_url)
    with index.open_index(settings) as client:
        if legacy:  # a plain collection from an older deployment: replaced once by the alias
            client.delete_collection(alias)
        index.switch_alias(client, alias, target)
        # The alias now serves the new version's vectors: syncs write with this model again.
        state.set_collection_fingerprint(engine, alias, fingerprint.digest(fingerprint.embedding_fingerprint()))
        if previous and not keep_previous:
            client.delete_collection(previous)
            state.forget_collection(engine, previous)
    report = {
        "source": source_name,
        "alias": alias,
        "collection": target,
        "previous": previous or (alias if legacy else None),
        "previous_kept": bool(previous and keep_previous),
        "indexed": counts.get("indexed", 0),
        "quarantined": counts.get("quarantined", 0),
        "chunks": counts.get("chunks", 0),
        "missing_from_source": missing,
    }
    report["reconcile"] = reconcile(settings, source_name)
    log.info("reindex %s: %s", source_name, report)
    return report
