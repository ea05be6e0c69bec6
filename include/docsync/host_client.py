"""What a `process` task calls: hand the batch to this machine's worker host (warm processes,
models loaded: ``docsync worker-host``, :mod:`docsync.worker_host`) over its Unix socket, or
process it in this process when no host answers.

Imports only the standard library at module level: a task that hands its batch over never
loads spaCy, torch, GX or unstructured (``python -X importtime`` shows it).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from docsync.config import Settings

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5.0  # connect + authenticate; a host that cannot do this is treated as absent


class HostFailed(RuntimeError):
    """The host answered but could not process the batch (it says why)."""


def key_path(socket_path: str | Path) -> Path:
    """The host's authentication key (0600, next to the socket): only processes of the same user
    that can read it may hand batches over (messages are pickled)."""
    return Path(f"{socket_path}.key")


def connect(socket_path: str | Path, timeout_s: float = CONNECT_TIMEOUT_S):
    """An authenticated connection to the host, or None when no host answers at ``socket_path``."""
    from multiprocessing.connection import Client

    path = Path(socket_path)
    if not path.exists():
        return None
    try:
        authkey = key_path(path).read_bytes()
    except OSError:
        return None
    import socket

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout_s)  # bounds the connect and the authentication handshake
    try:
        conn = Client(str(path), family="AF_UNIX", authkey=authkey)
    except (OSError, EOFError, ValueError) as exc:  # refused, stale socket, wrong key
        log.info("no worker host at %s (%s): processing in this task", path, exc)
        return None
    finally:
        socket.setdefaulttimeout(previous)
    return conn


def health(socket_path: str | Path, timeout_s: float = CONNECT_TIMEOUT_S) -> dict | None:
    """The host's health report (workers, their RSS, batches done), or None when it does not answer."""
    conn = connect(socket_path, timeout_s)
    if conn is None:
        return None
    try:
        conn.send({"op": "health"})
        if not conn.poll(timeout_s):
            return None
        return conn.recv()
    except (OSError, EOFError):
        return None
    finally:
        conn.close()


def process_on_host(settings: Settings, batch_ref: str) -> str | None:
    """The result reference of ``batch_ref`` processed by the host; None when no host answers or
    it went away before answering (the caller then processes the batch itself: a batch is
    idempotent, its result file is written atomically under a name fixed by the plan)."""
    socket_path = settings.sync.host_socket
    if not socket_path:
        return None
    conn = connect(socket_path)
    if conn is None:
        return None
    try:
        conn.send({"op": "process", "batch_ref": batch_ref, "settings": settings, "client_pid": os.getpid()})
        reply = conn.recv()  # as long as the batch takes: the task's execution_timeout bounds it
    except (OSError, EOFError) as exc:
        log.warning("worker host at %s went away while processing %s (%s): processing it in this task",
                    socket_path, batch_ref, exc)
        return None
    finally:
        conn.close()
    if not reply.get("ok"):
        raise HostFailed(f"the worker host at {socket_path} could not process batch {batch_ref}: {reply.get('error')}. "
                         "See the host's log (docsync worker-host); the task's retry processes the batch again.")
    log.info("batch %s processed by worker host pid %s in %.1f s after %.1f s waiting for a free worker "
             "(worker %s, RSS %s MiB)", batch_ref, reply.get("host_pid"), reply.get("seconds", 0),
             reply.get("queued_s", 0), reply.get("worker_pid"), reply.get("worker_rss_mib"))
    return reply["result_ref"]


def prefetcher(settings: Settings, first: int):
    """``on_batch`` for the DAG's plan task: hands its first ``first`` batches to this machine's
    worker host as they are staged, without waiting (docsync.host_prefetch), so the host processes
    them during the rest of the plan and the hand-off to the `process` tasks, which then take
    their results. Does nothing when no host answers."""
    handed = 0

    def on_batch(batch_ref: str) -> None:
        nonlocal handed
        if handed >= first or not settings.sync.host_socket:
            return
        conn = connect(settings.sync.host_socket)
        if conn is None:
            handed = first  # no host: stop trying
            return
        try:
            conn.send({"op": "prefetch", "batch_ref": batch_ref, "settings": settings})
            if conn.poll(CONNECT_TIMEOUT_S) and conn.recv().get("ok"):
                handed += 1
        except (OSError, EOFError):
            handed = first
        finally:
            conn.close()

    return on_batch


# What finalize and the process task's writes may run in an already warm process (the host's workers,
# the CLI's pool): what would otherwise import GX (~4 s), load the embedder (~4-7 s) or import
# qdrant-client (~1.5 s) in a cold task.
# Requests name a function of this list only (messages are pickled; the key keeps strangers out,
# the list keeps the host from calling anything else).
WARM_CALLS = {
    "embed_texts": ("docsync.embed", "embed_texts"),
    "build_data_docs": ("docsync.data_docs", "build"),
    # A process task's writes, in the host's writer process: a task process would spend ~1.5 s
    # importing qdrant-client and numpy for a write that takes ~0.1 s (issue 15).
    "write_batch": ("docsync.steps.write", "write_batch_json"),
    # The updates and finalize tasks' work, there too: deletes and ACL changes, the run's end
    # (summary, canary, Data Docs, reconcile when due) without importing qdrant-client, SQLAlchemy
    # and GX in a cold task (~1.5-2 s each on a 1% change; issue 15).
    "apply_updates": ("docsync.steps.updates", "apply_updates_json"),
    "changes_nothing": ("docsync.steps.finalize", "changes_nothing"),
    "finish": ("docsync.host_client", "finish_with_warm_calls"),
}
# Run by the host's one writer process, not its batch workers: they write to the index (one
# writer at a time), and never wait behind a batch. "finish" hands its canary embedding and
# Data Docs build back to the host's batch workers (host_client.warm_caller from the writer).
WRITER_CALLS = frozenset({"write_batch", "apply_updates", "changes_nothing", "finish"})


def run_warm_call(name: str, args: tuple) -> object:
    """Call one function of :data:`WARM_CALLS` here (in a warm process, or as the fallback)."""
    import importlib

    module, function = WARM_CALLS[name]  # KeyError: not allowed
    return getattr(importlib.import_module(module), function)(*args)


def call_on_host(settings: Settings, name: str, *args: object) -> tuple[bool, object]:
    """``(True, value)`` of ``name(*args)`` run by a warm host worker; ``(False, None)`` when no
    host answers (the caller runs it itself)."""
    socket_path = settings.sync.host_socket
    conn = connect(socket_path) if socket_path else None
    if conn is None:
        return False, None
    try:
        conn.send({"op": "call", "name": name, "args": args})
        reply = conn.recv()
    except (OSError, EOFError) as exc:
        log.warning("worker host at %s went away during %s (%s): running it in this task", socket_path, name, exc)
        return False, None
    finally:
        conn.close()
    if not reply.get("ok"):
        log.warning("worker host at %s could not run %s (%s): running it in this task", socket_path, name,
                    reply.get("error"))
        return False, None
    return True, reply["value"]


def warm_caller(settings: Settings):
    """``call(name, *args)`` for :func:`docsync.steps.finalize.finalize`: on this machine's
    worker host when one answers, else in this process."""
    def call(name: str, *args: object) -> object:
        done, value = call_on_host(settings, name, *args)
        return value if done else run_warm_call(name, args)

    return call


def finish_with_warm_calls(settings: Settings, plan_ref: str, write_reports: list[dict], updates: dict,
                           run_id: str) -> dict:
    """:func:`docsync.steps.finalize.finish` (summary, canary, Data Docs, reconcile when due, staged
    files dropped), its canary embedding and Data Docs on this machine's worker host when one
    answers: the DAG's finalize task, on the host's writer or as its fallback in the task."""
    from docsync.steps.finalize import finish

    return finish(settings, plan_ref, write_reports, updates, run_id, call=warm_caller(settings))


GROUP_DONE = "docsync group done:"


def process_and_write(settings: Settings, batch_refs: list[str]) -> list[dict]:
    """A DAG `process` task's group of batches (docsync.batching.task_groups): each processed
    (on the worker host, or here), then written (on the host's writer, or here) while the next
    one is processed; returns the write reports in the group's order.

    The write is in the task, not a task of its own: a task costs the scheduler, the executor
    and the api-server about a CPU second on the cores the batches need, and a group's batches
    waited for its last one before any was written (issue 15). A retried task processes and
    writes its whole group again: a batch's result is a staged file replaced atomically under a
    name fixed by the plan, and writing a result again converges to the same index (write.py)."""
    import time
    from concurrent.futures import Future, ThreadPoolExecutor

    call = warm_caller(settings)
    writes: list[Future] = []
    started = time.perf_counter()
    # One writing thread: a group's batches are written in order, one at a time.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="docsync-write") as writer:
        for ref in batch_refs:
            for write in writes:
                if write.done():
                    write.result()  # a failed write fails the task now, not after the group
            result_ref = process_on_host(settings, ref)
            if result_ref is None:
                # Processed in this process: no write may run beside it (a write can embed, and
                # the embedding model's tokenizer is not safe across threads), nor after it.
                for write in writes:
                    write.result()
                from docsync.steps.process import process_batch as process_here

                result_ref = process_here(settings, ref)
                writes.append(writer.submit(call, "write_batch", settings, result_ref))
                writes[-1].result()
            else:
                writes.append(writer.submit(call, "write_batch", settings, result_ref))
        reports = [write.result() for write in writes]
    # bench/dag.py reads this line: the task's duration less this span is what Airflow costs it.
    log.info("%s %d batches processed and written in %.3f s", GROUP_DONE, len(batch_refs), time.perf_counter() - started)
    return reports
