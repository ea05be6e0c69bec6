"""docsync.host_prefetch: the worker host's batches started before a task asked for them."""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future

from docsync import host_prefetch
from docsync.host_prefetch import Prefetched, batch_identity


def staged(path, text: str = "{}") -> str:
    """A batch file staged as docsync stages it: written aside, then renamed over the name."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return str(path)


def test_a_batch_is_taken_only_from_the_file_it_was_started_from(tmp_path):
    ref = staged(tmp_path / "batch-0.json")
    cache, future = Prefetched(4), Future()
    cache.add(ref, batch_identity(ref), future, "pool")
    assert cache.claim(ref) == (future, "pool") and len(cache) == 0
    assert cache.claim(ref) is None  # claimed once
    assert batch_identity("s3://bucket/run/batch-0.json") is None  # object storage: never prefetched
    assert batch_identity(str(tmp_path / "missing.json")) is None


def test_a_batch_staged_again_is_not_taken_and_its_early_run_cannot_outlive_the_claim(tmp_path):
    ref = staged(tmp_path / "batch-0.json")
    pending, running = Future(), Future()
    cache = Prefetched(4)
    cache.add(ref, batch_identity(ref), pending, "pool")
    staged(tmp_path / "batch-0.json")  # same name, same bytes: another file (a retried plan's)
    assert cache.claim(ref) is None and pending.cancelled()  # not started yet: cancelled
    cache.add(ref, batch_identity(ref), running, "pool")
    running.set_running_or_notify_cancel()
    staged(tmp_path / "batch-0.json")
    threading.Timer(0.2, running.set_result, ({"ok": True},)).start()
    assert cache.claim(ref) is None and running.done()  # already running: waited for


def test_unclaimed_batches_are_bounded_in_number_and_age(tmp_path, monkeypatch):
    refs = [staged(tmp_path / f"batch-{i}.json") for i in range(3)]
    cache = Prefetched(2)
    for ref in refs:
        cache.add(ref, batch_identity(ref), Future(), "pool")
    assert len(cache) == 2 and cache.claim(refs[0]) is None  # the oldest went
    monkeypatch.setattr(host_prefetch, "TTL_S", 0.0)
    cache.add(refs[0], batch_identity(refs[0]), Future(), "pool")
    assert len(cache) == 1  # the others were too old
