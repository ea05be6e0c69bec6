"""`docsync worker-host`: one long-lived processing host per machine. It keeps warm worker
processes (models loaded: spaCy/Presidio, the embedder, GX suites, unstructured) and processes
the batches that `process` tasks hand it over a Unix socket (:mod:`docsync.host_client`), so a
mapped task pays no model loading (issue 15). It also runs the allow-listed warm calls
(``host_client.WARM_CALLS``): finalize's canary embedding and Data Docs build on a batch worker,
the `process` tasks' writes on its one writer process (qdrant-client imported once, one write at
a time).

Safety: a batch is idempotent (its result file is written atomically under a name fixed by the
plan; nothing else is written), so any process may be SIGKILLed at any time:
- a host worker: the pool is replaced and the batches it held are run once more;
- the writer: it is replaced; the process task whose write it held writes the batch itself
  (a write is idempotent: deterministic point IDs, one state transaction);
- the host: the supervisor (``docsync worker-host``) starts a new one; a waiting task sees the
  connection close and processes its batch itself (host_client's fallback);
- the task: the host finishes the batch; the retried task's request joins it (same reference),
  as a `process` task joins a batch its plan task handed over early (docsync.host_prefetch).
Memory stays bounded: a worker is replaced as soon as it is over DOCSYNC_HOST_WORKER_MAX_MB after
a batch, and all of them after ``HOST_WORKER_BATCHES`` batches each.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import TYPE_CHECKING

from docsync.faults import crash_point
from docsync.host_client import health, key_path
from docsync.host_prefetch import Prefetched, batch_identity

if TYPE_CHECKING:
    from docsync.config import Settings

log = logging.getLogger(__name__)

WARM_TEXT = "Jane Doe (jane.doe@example.com, +1 212 555 0100) signed the renewal of the vendor contract."
ATTEMPTS = 2  # a batch whose worker died is run once more on a fresh pool, then reported as failed
# Host workers are replaced after this many batches each, and when one is over DOCSYNC_HOST_WORKER_MAX_MB
# after a batch (what bounds their memory). A replacement stalls the host while the new workers load
# their models (~20 s, ~27 CPU s for two): at the CLI's 40 batches it landed inside every other
# 1,000-document load (RSS 1.14 GB per worker, flat over 80 batches; issue 15).
HOST_WORKER_BATCHES = 400


# --- inside a host worker process --------------------------------------------------------------

_STARTED = None  # the pool's barrier: every worker warm (see Host._new_pool)


def _init_worker(threads: int, settings: Settings, host_pid: int, started) -> None:
    """A host worker: its share of the cores, exit with the host, then load every model once."""
    global _STARTED
    from docsync.pipeline import _init_worker as share_cores

    share_cores(threads)
    _STARTED = started
    threading.Thread(target=_exit_with_host, args=(host_pid,), daemon=True, name="host-watch").start()
    warm(settings)


def _exit_with_host(host_pid: int) -> None:
    """A worker whose host was SIGKILLed would otherwise wait on its queue forever (its RAM with it)."""
    while os.getppid() == host_pid:
        time.sleep(1.0)
    os._exit(0)


def warm(settings: Settings) -> None:
    """Load what ``process_batch`` loads on first use: the ~10-17 s a cold task pays."""
    from docsync import pii, validate
    from docsync.embed import embed_texts, get_tokenizer
    from docsync.parse import warm_parsers
    from docsync.steps import process  # noqa: F401

    warm_parsers(settings)
    pii.anonymize_many([WARM_TEXT], settings)
    pii.rescan(WARM_TEXT)
    get_tokenizer()
    embed_texts([WARM_TEXT])
    for suite in (validate.DOCUMENT_SUITE, validate.CHUNK_SUITE):
        validate._runtime(str(settings.sync.expectations_dir), suite, settings.ocr.min_confidence)


def _init_writer(host_pid: int) -> None:
    """The host's writer process: exits with the host; imports what a write needs, once."""
    threading.Thread(target=_exit_with_host, args=(host_pid,), daemon=True, name="host-watch").start()
    import qdrant_client  # noqa: F401  (~1.5 s with numpy: what a cold task would pay to write)

    from docsync import index  # noqa: F401
    from docsync.steps import write  # noqa: F401


def _ping() -> int:
    """Returns once every worker of the pool is warm (one ping per worker, all held at a barrier)."""
    _STARTED.wait(900)
    return os.getpid()


def rss_mib() -> float:
    """This process's resident memory now (MiB)."""
    with open("/proc/self/statm") as fh:
        return round(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def run_batch(settings: Settings, batch_ref: str, submitted: float) -> dict:
    """One batch in a host worker: the same ``process_batch`` the task would run. ``queued_s``:
    how long it waited for a free worker (more tasks than workers), not a cost of the task."""
    from docsync.steps.process import process_batch

    queued_s = max(0.0, time.time() - submitted)
    started = time.perf_counter()
    result_ref = process_batch(settings, batch_ref)
    return {"ok": True, "result_ref": result_ref, "worker_pid": os.getpid(), "worker_rss_mib": rss_mib(),
            "seconds": round(time.perf_counter() - started, 3), "queued_s": round(queued_s, 3)}


# --- the host process --------------------------------------------------------------------------

class Host:
    """A pool of warm workers, batches deduplicated by reference, replaced when broken or grown."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings, self.workers = settings, max(1, workers)
        self.threads = max(1, (os.cpu_count() or 1) // self.workers)
        self.lock = threading.Lock()
        self.inflight: dict[str, Future] = {}
        self.worker_rss: dict[int, float] = {}
        self.batches_done = self.batches_started = self.batches_prefetched = self.pool_batches = self.pool_replacements = 0
        self.prefetched = Prefetched(4 * self.workers)  # the plan task's first batches (host_prefetch)
        self.calls_done: dict[str, int] = {}  # finalize's warm calls, by name
        self.recent: list[dict] = []  # the last batches done (number, queued, seconds): bench/dag.py reads them
        self.started = time.time()
        self.pool = self._new_pool()
        self.writer = self._new_writer()

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        started = context.Barrier(self.workers)
        pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=_init_worker,
                                   initargs=(self.threads, self.settings, os.getpid(), started))
        self.pool_batches = 0
        self.warming = [pool.submit(_ping) for _ in range(self.workers)]  # start (and warm) every worker now
        return pool

    def _new_writer(self) -> ProcessPoolExecutor:
        """One process for the process tasks' writes: one at a time (the embedded index takes one
        writer), never queued behind a batch, replaced when it dies."""
        import multiprocessing

        writer = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_init_writer,
                                     initargs=(os.getpid(),))
        # Started (and its imports done) now, not by the first write call: that is the plan task's
        # apply_updates of the first run after a start, which waited ~3 s for it (issue 15).
        self.writer_warming = writer.submit(os.getpid)
        return writer

    def ready(self) -> bool:
        return all(f.done() and not f.exception() for f in (*self.warming, self.writer_warming))

    def _writer_pid(self) -> int | None:
        """The writer's pid once it started; None before, or when its start failed (the health
        report must not raise: it is how an operator sees that the host is not ready)."""
        warming = self.writer_warming
        return warming.result() if warming.done() and warming.exception() is None else None

    def wait_ready(self, timeout_s: float | None = None) -> None:
        for future in (*self.warming, self.writer_warming):
            future.result(timeout_s)

    def _replace_pool(self, old: ProcessPoolExecutor, why: str) -> None:
        with self.lock:
            if self.pool is not old:
                return  # another thread replaced it already
            log.warning("worker host: replacing its worker processes (%s)", why)
            self.pool = self._new_pool()
            self.pool_replacements += 1
            self.worker_rss.clear()
        old.shutdown(wait=False)  # batches it still runs finish; then its workers exit

    def _submit(self, settings: Settings, batch_ref: str) -> tuple[Future, ProcessPoolExecutor]:
        with self.lock:
            future = self.inflight.get(batch_ref)
            if future is None or future.done():  # a retried task joins the batch its killed attempt handed over
                future = self.pool.submit(run_batch, settings, batch_ref, time.time())
                self.inflight[batch_ref] = future
                self.pool_batches += 1
                self.batches_started += 1
                future.add_done_callback(lambda f, ref=batch_ref: self._forget(ref, f))
            return future, self.pool

    def _forget(self, batch_ref: str, future: Future) -> None:
        with self.lock:
            if self.inflight.get(batch_ref) is future:
                del self.inflight[batch_ref]

    def process(self, settings: Settings, batch_ref: str) -> dict:
        """Run one batch on a warm worker; the reply for the task."""
        for attempt in range(1, ATTEMPTS + 1):
            early = self.prefetched.claim(batch_ref) if attempt == 1 else None
            future, pool = early or self._submit(settings, batch_ref)
            crash_point("host:batch_submitted")
            try:
                reply = future.result()
            except BrokenProcessPool:
                self._replace_pool(pool, f"a worker died while processing {batch_ref}, attempt {attempt}")
                continue
            except Exception as exc:  # process_batch itself failed (staging, state store): the task says so
                log.exception("worker host: batch %s failed", batch_ref)
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            with self.lock:
                self.batches_done += 1
                self.recent = [*self.recent[-199:], {"n": self.batches_done, "batch_ref": batch_ref,
                                                     "queued_s": reply["queued_s"], "seconds": reply["seconds"]}]
                self.worker_rss[reply["worker_pid"]] = reply["worker_rss_mib"]
                grown = reply["worker_rss_mib"] > self.settings.sync.host_worker_max_mb
                spent = self.pool_batches >= HOST_WORKER_BATCHES * self.workers
            if grown or spent:
                self._replace_pool(pool, f"worker {reply['worker_pid']} at {reply['worker_rss_mib']:.0f} MiB"
                                   if grown else f"{self.pool_batches} batches done")
            return reply | {"host_pid": os.getpid(), "attempts": attempt}
        return {"ok": False, "error": f"a host worker died {ATTEMPTS} times while processing it (out of memory? "
                                      "see the host's log and the kernel log)"}

    def prefetch(self, settings: Settings, batch_ref: str) -> dict:
        """Start a batch no task asked for yet (docsync.host_prefetch); the reply comes at once."""
        identity = batch_identity(batch_ref)
        if identity is None:
            return {"ok": False, "error": f"{batch_ref} is not a batch staged on this machine"}
        future, pool = self._submit(settings, batch_ref)
        self.prefetched.add(batch_ref, identity, future, pool)
        with self.lock:
            self.batches_prefetched += 1
        return {"ok": True}

    def call(self, name: str, args: tuple) -> dict:
        """One allow-listed function (host_client.WARM_CALLS) on a warm worker; the reply."""
        from docsync.host_client import WARM_CALLS, WRITER_CALLS, run_warm_call

        if name not in WARM_CALLS:
            return {"ok": False, "error": f"{name!r} is not a call the worker host runs"}
        writer = name in WRITER_CALLS
        with self.lock:
            pool = self.writer if writer else self.pool
        try:
            value = pool.submit(run_warm_call, name, args).result()
        except BrokenProcessPool:
            if writer:
                with self.lock:
                    if self.writer is pool:
                        log.warning("worker host: replacing its writer process (it died during %s)", name)
                        self.writer = self._new_writer()
            else:
                self._replace_pool(pool, f"a worker died during {name}")
            return {"ok": False, "error": f"a host {'writer' if writer else 'worker'} process died"}
        except Exception as exc:  # the caller runs it itself and sees the error there
            return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        with self.lock:
            self.calls_done[name] = self.calls_done.get(name, 0) + 1
        return {"ok": True, "value": value}

    def health(self) -> dict:
        with self.lock:
            return {"ok": True, "ready": self.ready(), "host_pid": os.getpid(), "workers": self.workers,
                    "host_rss_mib": rss_mib(), "worker_rss_mib": dict(self.worker_rss),
                    "worker_max_mib": self.settings.sync.host_worker_max_mb, "batches_done": self.batches_done,
                    "pool_replacements": self.pool_replacements, "inflight": sorted(self.inflight),
                    "batches_started": self.batches_started, "prefetched": len(self.prefetched),
                    "batches_prefetched": self.batches_prefetched,
                    "calls_done": dict(self.calls_done),
                    "writer_pid": self._writer_pid(),
                    "recent_batches": list(self.recent),
                    "uptime_s": round(time.time() - self.started, 1)}


def _handle(host: Host, conn, authkey: bytes) -> None:
    """One client connection: authenticate (in this thread, so a slow client holds up no one),
    then one request, one reply."""
    from multiprocessing.connection import answer_challenge, deliver_challenge

    try:
        deliver_challenge(conn, authkey)
        answer_challenge(conn, authkey)
        request = conn.recv()
        if request.get("op") == "health":
            conn.send(host.health())
        elif request.get("op") == "process":
            reply = host.process(request["settings"], request["batch_ref"])
            crash_point("host:before_reply")
            conn.send(reply)
        elif request.get("op") == "prefetch":
            conn.send(host.prefetch(request["settings"], request["batch_ref"]))
        elif request.get("op") == "call":
            conn.send(host.call(request.get("name"), tuple(request.get("args") or ())))
        else:
            conn.send({"ok": False, "error": f"unknown request {request.get('op')!r}"})
    except (OSError, EOFError) as exc:  # the task went away (killed, timed out): the batch still finishes
        log.info("worker host: a client left (%s)", exc)
    except Exception:
        log.exception("worker host: bad request")
    finally:
        conn.close()


def _write_key(path: Path) -> bytes:
    key = secrets.token_bytes(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    os.replace(tmp, path)
    return key


def _announce(host: Host, ready: threading.Event | None) -> None:
    host.wait_ready()
    log.warning("worker host ready: %s", host.health())
    if ready is not None:
        ready.set()


def serve(settings: Settings, socket_path: str, workers: int, ready: threading.Event | None = None) -> None:
    """Listen on ``socket_path`` until SIGTERM/SIGINT (the host process of ``docsync worker-host``)."""
    from multiprocessing.connection import Listener

    path = Path(socket_path)
    if len(str(path).encode()) > 100:
        raise ValueError(f"DOCSYNC_WORKER_HOST_SOCKET {path} is too long for a Unix socket (max ~100 bytes); "
                         "use a shorter path")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if health(path, timeout_s=2) is not None:
        raise RuntimeError(f"a worker host already answers at {path}; stop it first (one host per socket)")
    path.unlink(missing_ok=True)  # a stale socket of a killed host
    host = Host(settings, workers)
    authkey = _write_key(key_path(path))
    old_umask = os.umask(0o177)  # the socket is created 0600: same user only
    try:
        listener = Listener(str(path), family="AF_UNIX")
    finally:
        os.umask(old_umask)
    signal.signal(signal.SIGTERM, lambda *_: listener.close())
    log.warning("worker host pid %s listening on %s with %s workers (warming up)", os.getpid(), path, host.workers)
    # Batches are taken while the workers warm up (they wait in the pool): a task that came
    # early is served no later than if it loaded the models itself.
    threading.Thread(target=_announce, args=(host, ready), daemon=True, name="host-warmup").start()
    try:
        while True:
            try:
                conn = listener.accept()
            except OSError:  # closed by SIGTERM
                break
            threading.Thread(target=_handle, args=(host, conn, authkey), daemon=True, name="host-client").start()
    finally:
        path.unlink(missing_ok=True)
        host.pool.shutdown(wait=False, cancel_futures=True)
        host.writer.shutdown(wait=True)  # a write in progress finishes (it is short; the index lock is released)


def supervise(socket_path: str, workers: int, max_backoff_s: float = 30.0) -> int:
    """Run the host in a child process and start a new one whenever it dies (SIGKILL, OOM):
    ``docsync worker-host``. SIGTERM/SIGINT stop both."""
    stopping = threading.Event()
    child: subprocess.Popen | None = None

    def stop(*_: object) -> None:
        stopping.set()
        if child is not None and child.poll() is None:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = 1.0
    while not stopping.is_set():
        started = time.monotonic()
        child = subprocess.Popen([sys.executable, "-m", "docsync.worker_host", "--socket", socket_path,
                                  "--workers", str(workers)])
        code = child.wait()
        if stopping.is_set() or code == 0:
            return 0
        if code == 2:  # configuration error (e.g. another host answers): restarting would not help
            return code
        backoff = 1.0 if time.monotonic() - started > 60 else min(max_backoff_s, backoff * 2)
        log.error("worker host pid %s exited with %s; starting a new one in %.0f s", child.pid, code, backoff)
        stopping.wait(backoff)
    return 0


def main(argv: list[str] | None = None) -> int:
    """The host process itself (``python -m docsync.worker_host``; supervised by ``docsync worker-host``)."""
    import argparse

    from docsync.config import load_settings

    parser = argparse.ArgumentParser(prog="python -m docsync.worker_host")
    parser.add_argument("--socket")
    parser.add_argument("--workers", type=int)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    try:
        serve(settings, args.socket or settings.sync.host_socket, args.workers or settings.sync.host_workers)
    except (ValueError, RuntimeError) as exc:
        print(f"docsync worker-host: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
