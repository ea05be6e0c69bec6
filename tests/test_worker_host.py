"""The worker host (docsync.worker_host, docsync.host_client; issue 15): batches handed over a
Unix socket to warm worker processes, the fallback when no host answers, and SIGKILL of a host
worker or of the host itself mid-batch without losing or duplicating anything. Real models,
real processes, embedded Qdrant. No timing assertions (speed: bench/dag.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from docsync import host_client, index
from docsync.steps.finalize import finalize
from docsync.steps.plan import plan
from docsync.steps.updates import apply_updates
from docsync.steps.write import write_batch
from tests.support import REPO
from tests.test_pipeline import assert_consistent, make_share, snapshot

if TYPE_CHECKING:
    from pathlib import Path

    from docsync.config import Settings

# Worker processes that load the models (a host, its replacement): 30-60 s each on 2 busy cores.
pytestmark = pytest.mark.slow


def start_host(home: Path, socket_path: Path, supervised: bool = False, **env: str) -> subprocess.Popen:
    """`docsync worker-host` (supervised) or the bare host process, one warm worker."""
    full = os.environ | {"DOCSYNC_HOME": str(home), "PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)])}
    args = ["-m", "docsync.cli", "worker-host"] if supervised else ["-m", "docsync.worker_host"]
    return subprocess.Popen([sys.executable, *args, "--socket", str(socket_path), "--workers", "1"],
                            env=full | env, start_new_session=True)


def wait_ready(socket_path: Path, proc: subprocess.Popen, timeout_s: float = 300, warm: bool = True) -> dict:
    """The host's health report once it answers (and, with ``warm``, once its workers are warm)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the worker host exited with {proc.returncode}"
        report = host_client.health(socket_path)
        if report and (report["ready"] or not warm):
            return report
        time.sleep(0.5)
    raise AssertionError(f"no warm worker host at {socket_path} after {timeout_s} s")


def stop(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, 9)


def sync_through_host(settings: Settings, root: Path) -> dict:
    """The DAG's steps in order, each `process` through host_client as the DAG task does."""
    planned = plan(settings, f"host__{time.time_ns()}", str(root))
    with index.keep_open(settings):
        updates = apply_updates(settings, planned.plan).to_json()
        reports = [write_batch(settings, host_client.process_batch(settings, ref)).to_json() for ref in planned.batches]
    return finalize(settings, planned.plan, reports, updates)


@pytest.fixture()
def short_home(tmp_path_factory) -> Path:
    """A home whose socket path stays well under the Unix limit (~100 bytes)."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="dsh-", dir="/tmp"))


def test_batches_round_trip_through_the_host_and_a_killed_worker_is_replaced(tmp_path, settings, short_home):
    """Two batches through a host whose worker is SIGKILLed (once) right after embedding the
    first: the pool is replaced, the batch runs again, every document indexed exactly once; the
    health report shows the replacement and the workers' memory."""
    share = make_share(tmp_path / "share")
    sock = short_home / "host.sock"
    proc = start_host(settings.home, sock, DOCSYNC_KILL_AT="process:after_embed",
                      DOCSYNC_KILL_ONCE=str(tmp_path / "killed-once"))
    try:
        wait_ready(sock, proc)
        settings = settings.replace(host_socket=str(sock), batch_size=5)
        summary = sync_through_host(settings, share)
        assert (tmp_path / "killed-once").exists(), "the fault was not injected"
        assert summary["indexed"] == 10 and summary["quarantined"] == 0
        assert_consistent(snapshot(settings))
        report = host_client.health(sock)
        assert report["batches_done"] == 2 and report["pool_replacements"] == 1
        assert all(0 < mib < report["worker_max_mib"] for mib in report["worker_rss_mib"].values())
    finally:
        stop(proc)


def test_no_host_answering_means_processing_in_the_task(settings, short_home):
    """A stale socket (its host gone), none at all, the host switched off: no host answers and the
    task processes the batch itself (done in full when the host dies mid-batch, below)."""
    stale = short_home / "stale.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # bound, never listening: connection refused
    host_client.key_path(stale).write_bytes(b"k" * 32)
    assert host_client.process_on_host(settings.replace(host_socket=str(stale)), "unused") is None
    assert host_client.process_on_host(settings.replace(host_socket=""), "unused") is None
    assert host_client.process_on_host(settings.replace(host_socket=str(short_home / "none.sock")), "unused") is None
    assert host_client.health(stale) is None


def test_host_killed_mid_batch_task_falls_back_and_supervisor_restarts_it(tmp_path, settings, short_home):
    """SIGKILL of the host right after it took a batch: the waiting task processes the batch
    itself (nothing lost, nothing twice), and `docsync worker-host` starts a new host."""
    share = make_share(tmp_path / "share")
    sock = short_home / "host.sock"
    proc = start_host(settings.home, sock, supervised=True, DOCSYNC_KILL_AT="host:batch_submitted",
                      DOCSYNC_KILL_ONCE=str(tmp_path / "killed-once"))
    try:
        first = wait_ready(sock, proc)
        settings = settings.replace(host_socket=str(sock), batch_size=5)
        summary = sync_through_host(settings, share)
        assert (tmp_path / "killed-once").exists(), "the fault was not injected"
        assert summary["indexed"] == 10 and summary["quarantined"] == 0
        assert_consistent(snapshot(settings))
        again = wait_ready(sock, proc, warm=False)  # a new host answers (its workers may still warm up)
        assert again["host_pid"] != first["host_pid"]
    finally:
        stop(proc)
