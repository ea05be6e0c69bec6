"""The worker host (docsync.worker_host, docsync.host_client; issue 15): batches handed over a
Unix socket to warm worker processes, the fallback when no host answers, and SIGKILL of a host
worker or of the host itself mid-batch without losing or duplicating anything. Real models,
real processes, embedded Qdrant. No timing assertions (speed: bench/dag.py)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING

import pytest

from docsync import host_client
from docsync.steps.finalize import finalize
from docsync.steps.plan import plan
from docsync.steps.updates import apply_updates
from tests.support import REPO
from tests.test_pipeline import assert_consistent, make_share, snapshot

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from docsync.config import Settings

# Tests that start worker processes that load the models (a host, its replacement): 30-60 s each
# on 2 busy cores.
slow = pytest.mark.slow


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
    """SIGTERM to the host's process group, SIGKILL after 30 s; nothing when it is gone already."""
    try:
        os.killpg(proc.pid, 15)
        proc.wait(30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)


def sync_through_host(settings: Settings, root: Path) -> dict:
    """The DAG's steps in order, its batches in one group handed over as the DAG's `process`
    task does (host_client.process_and_write: each processed on the host, written by its writer)."""
    planned = plan(settings, f"host__{time.time_ns()}", str(root))
    call = host_client.warm_caller(settings)
    updates = apply_updates(settings, planned.plan).to_json()
    reports = host_client.process_and_write(settings, planned.batches)
    return finalize(settings, planned.plan, reports, updates, call=call)


@pytest.fixture()
def short_home(tmp_path_factory) -> Path:
    """A home whose socket path stays well under the Unix limit (~100 bytes)."""
    import tempfile
    from pathlib import Path

    return Path(tempfile.mkdtemp(prefix="dsh-", dir="/tmp"))


@contextmanager
def host_killing_at(tmp_path: Path, settings: Settings, short_home: Path, kill_at: str) -> Iterator[Settings]:
    """A warm host (one worker) whose process that first reaches crash point ``kill_at`` is
    SIGKILLed there (once); yields the settings that hand work to it."""
    sock = short_home / "host.sock"
    proc = start_host(settings.home, sock, DOCSYNC_KILL_AT=kill_at, DOCSYNC_KILL_ONCE=str(tmp_path / "killed-once"))
    try:
        ready = wait_ready(sock, proc)
        # the writer is up with the workers, not started by the first write call (the plan's)
        assert ready["writer_pid"] and ready["writer_pid"] not in (proc.pid, ready["host_pid"])
        yield settings.replace(host_socket=str(sock))
        assert proc.poll() is None, "the host itself died"
    finally:
        stop(proc)


def synced_once_killed(tmp_path: Path, settings: Settings) -> tuple[dict, dict]:
    """10 documents synced through the host; the fault fired and every document is indexed
    exactly once. Returns the run summary and the host's health report."""
    summary = sync_through_host(settings, make_share(tmp_path / "share"))
    assert (tmp_path / "killed-once").exists(), "the fault was not injected"
    assert summary["indexed"] == 10 and summary["quarantined"] == 0
    assert_consistent(snapshot(settings))
    return summary, host_client.health(settings.sync.host_socket)


@slow
def test_batches_round_trip_through_the_host_and_a_killed_worker_is_replaced(tmp_path, settings, short_home):
    """Two batches through a host whose worker is SIGKILLed (once) right after embedding the
    first: the pool is replaced, the batch runs again, every document indexed exactly once; the
    health report shows the replacement and the workers' memory."""
    with host_killing_at(tmp_path, settings, short_home, "process:after_embed") as settings:
        summary, report = synced_once_killed(tmp_path, settings.replace(batch_size=5))
        assert report["batches_done"] == 2 and report["pool_replacements"] == 1
        assert all(0 < mib < report["worker_max_mib"] for mib in report["worker_rss_mib"].values())
        # the batches were written by the host's writer, finalize's canary embedding and Data
        # Docs ran on the host's warm worker ...
        assert report["calls_done"] == {"write_batch": 2, "embed_texts": 1, "build_data_docs": 1}, report
        assert summary["canary_samples"] and summary["canary_hits"] == summary["canary_samples"]
        from docsync import data_docs

        assert data_docs.index_page(settings, settings.source.name).exists()
        # ... which runs only what host_client.WARM_CALLS names
        done, _ = host_client.call_on_host(settings, "os.system", "true")
        assert not done
        assert host_client.call_on_host(settings, "embed_texts", ["a warm call"])[1][0] is not None


@slow
def test_writer_killed_mid_write_the_task_writes_itself(tmp_path, settings, short_home):
    """A process task's writes go to the host's writer process; SIGKILL it right after an
    upsert (before the state commit): the task writes the batch itself (idempotent), the host
    starts a new writer for the next batch, and every document is indexed exactly once."""
    with host_killing_at(tmp_path, settings, short_home, "write:after_upsert") as settings:
        _, report = synced_once_killed(tmp_path, settings.replace(batch_size=4))
        assert report["calls_done"]["write_batch"] == 2, report  # 3 batches: the first written by the task


@slow
def test_the_plan_hands_its_first_batches_to_the_host_as_it_stages_them(tmp_path, settings, short_home, caplog):
    """The DAG's plan task hands its first batches to the host while it walks (host_client.prefetcher):
    the host starts them before any process task asks, and the process task takes their results
    (processed once); a batch staged again since (a retried plan) is processed again."""
    from docsync import storage

    sock = short_home / "host.sock"
    proc = start_host(settings.home, sock)
    try:
        wait_ready(sock, proc)
        settings = settings.replace(host_socket=str(sock), batch_size=4)
        planned = plan(settings, f"host__{time.time_ns()}", str(make_share(tmp_path / "share")),
                       on_batch=host_client.prefetcher(settings, 2))
        assert len(planned.batches) == 3
        early = host_client.health(sock)
        assert (early["batches_started"], early["prefetched"], early["batches_done"]) == (2, 2, 0), early
        restaged = planned.batches[1]
        storage.write_json(storage.path(restaged), storage.read_json(restaged))  # a new file, same name
        updates = apply_updates(settings, planned.plan).to_json()
        with caplog.at_level("INFO", logger="docsync.host_client"):
            reports = host_client.process_and_write(settings, planned.batches)
        # the span bench/dag.py takes from a process task's duration to get Airflow's cost of it
        assert f"{host_client.GROUP_DONE} 3 batches processed and written in " in caplog.text
        summary = finalize(settings, planned.plan, reports, updates, call=host_client.warm_caller(settings))
        report = host_client.health(sock)
        # batch 0 from its early start, batch 1 again (its file changed), batch 2 when asked for
        assert (report["batches_started"], report["batches_done"], report["prefetched"]) == (4, 3, 0), report
        assert summary["indexed"] == 10 and summary["quarantined"] == 0
        assert_consistent(snapshot(settings))
    finally:
        stop(proc)


@slow
def test_the_cli_hands_its_batches_to_a_running_host_and_falls_back_when_it_dies(tmp_path, settings, short_home):
    """`docsync sync` (run_sync) on a machine whose worker host answers: its batches and
    finalize's warm calls go to the host, no worker of its own loads the models. Then SIGKILL of
    the host right after it took the next run's first batch: that run processes its batches in
    workers of its own; every document indexed exactly once both times."""
    from docsync.pipeline import run_sync
    from tests.test_pipeline import write_doc

    sock, once = short_home / "host.sock", tmp_path / "killed-once"
    once.touch()  # the host is killed only once this file is gone (faults.crash_point)
    proc = start_host(settings.home, sock, DOCSYNC_KILL_AT="host:batch_submitted", DOCSYNC_KILL_ONCE=str(once))
    try:
        wait_ready(sock, proc)
        on_host = settings.replace(host_socket=str(sock), batch_size=5)
        share = make_share(tmp_path / "share")
        summary = run_sync(on_host, root=str(share), workers=2)
        assert summary["indexed"] == 10 and summary["quarantined"] == 0
        report = host_client.health(sock)
        assert report["batches_done"] == 2, report
        assert report["calls_done"] == {"embed_texts": 1, "build_data_docs": 1}, report
        assert_consistent(snapshot(on_host))

        once.unlink()
        for i in range(10, 14):
            write_doc(share, f"team{i % 3}/doc{i}.txt", [f"Document number {i}, added after the first sync."])
        again = run_sync(on_host, root=str(share), workers=2)
        assert once.exists() and proc.wait(30) == -9, "the host was not killed at the batch"
        assert again["indexed"] == 4 and again["quarantined"] == 0
        snap = snapshot(on_host)
        assert_consistent(snap)
        assert len(snap["paths"]) == 14
    finally:
        stop(proc)


def test_the_process_task_imports_nothing_heavy(settings):
    """What the DAG's process task imports before handing its batch over (here: no host answers,
    so it stops right there): no spaCy, torch, GX, unstructured, SQLAlchemy or Qdrant client."""
    code = (
        "import json, sys; from docsync.config import load_settings; from docsync import host_client; "
        "host_client.process_on_host(load_settings().replace(host_socket='/nonexistent/host.sock'), 'b'); "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(REPO / "include"), str(REPO)])}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    heavy = {"torch", "spacy", "presidio_analyzer", "great_expectations", "unstructured", "sentence_transformers",
             "sqlalchemy", "qdrant_client", "pandas", "numpy"}
    assert not heavy & set(json.loads(out.stdout)), out.stdout


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


@slow
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


@pytest.mark.e2e
def test_dag_run_under_local_executor_goes_through_the_host(tmp_path, pg_url, short_home):
    """The real fileshare_sync DAG with a real scheduler and LocalExecutor (PostgreSQL metadata
    DB, api-server, dag-processor), triggered through the REST API: every `process` task hands
    its batch to the worker host, so does `finalize` its canary and Data Docs, and the index
    holds every document exactly once."""
    import secrets

    from bench.airflow_stack import Api
    from tests.support.airflow_env import airflow_env
    from tests.test_celery import Services, _free_port, _wait
    from tests.test_e2e_dag import read_index

    share = make_share(tmp_path / "share")
    sock, port, password = short_home / "host.sock", _free_port(), secrets.token_urlsafe(16)
    meta_db = pg_url.rsplit("/", 1)[0] + "/" + pg_url.rsplit("/", 1)[1] + "_af"
    import sqlalchemy as sa

    admin = sa.create_engine(pg_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{meta_db.rsplit("/", 1)[1]}"'))
    (tmp_path / "passwords.json").write_text(json.dumps({"docsync": password}))
    env = airflow_env(
        tmp_path / "airflow", tmp_path / "docsync", share, meta_db,
        AIRFLOW__CORE__EXECUTOR="LocalExecutor", AIRFLOW__CORE__PARALLELISM="2",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="60",  # a busy 2-core machine
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32), AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="docsync:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(tmp_path / "passwords.json"),
        PYTHONPATH=os.pathsep.join([str(REPO / "include"), str(REPO)]),
        DOCSYNC_WORKER_HOST_SOCKET=str(sock), DOCSYNC_BATCH_SIZE="4", DOCSYNC_FILESHARE_SCHEDULE="",
        DOCSYNC_RUN_DEADLINE_MIN="0",
        DOCSYNC_PROCESS_PARALLELISM="1",  # 3 batches for 1 host worker: 2 tasks (2 batches, then 1)
    )
    services = Services(env, tmp_path / "service-logs")
    host = subprocess.Popen([sys.executable, "-m", "docsync.cli", "worker-host", "--workers", "1"], env=env,
                            start_new_session=True)
    try:
        services.run_once("db-migrate", "db", "migrate")
        services.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        services.start("scheduler", "scheduler")
        services.start("dag-processor", "dag-processor")
        api = Api(f"http://127.0.0.1:{port}")
        _wait("the api-server", lambda: api.login("docsync", password) or True, 180, services)
        _wait("the DAG to be parsed", lambda: api.call("GET", "/api/v2/dags/fileshare_sync"), 180, services)
        wait_ready(sock, host, warm=False)
        api.call("PATCH", "/api/v2/dags/fileshare_sync", {"is_paused": False})
        run = api.call("POST", "/api/v2/dags/fileshare_sync/dagRuns", {"logical_date": None, "conf": {}})
        run_path = f"/api/v2/dags/fileshare_sync/dagRuns/{run['dag_run_id']}"

        def finished() -> str | None:
            state = api.call("GET", run_path)["state"]
            return state if state in ("success", "failed") else None

        state = _wait("the DAG run", finished, 900, services, every=2)
        assert state == "success", services.diagnostics(tmp_path / "airflow")
        tis = api.call("GET", f"{run_path}/taskInstances?limit=100")["task_instances"]
        process_tasks = [t for t in tis if t["task_id"] == "process"]
        assert len(process_tasks) == 2 and all(t["state"] == "success" for t in process_tasks)
        groups = api.call("GET", f"{run_path}/taskInstances/plan/xcomEntries/return_value")["value"]
        assert [len(g) for g in (json.loads(groups) if isinstance(groups, str) else groups)] == [2, 1]
        report = host_client.health(sock)
        assert report["batches_done"] == 3, "a batch of a process task did not go through the host"
        # the plan task handed the first two over while it walked (one more than the host's
        # workers), and the process tasks took them: each batch was processed once
        assert (report["batches_prefetched"], report["batches_started"]) == (2, 3), report
        # so did each process task its writes, the plan task its updates and finalize its finish (on
        # the writer), and finish's canary embedding and Data Docs build (handed back to the batch
        # workers); a run with batches never asks whether it changes nothing
        assert report["calls_done"] == {"apply_updates": 1, "write_batch": 3, "finish": 1,
                                        "embed_texts": 1, "build_data_docs": 1}, report
        snap = read_index(tmp_path / "docsync")
        assert {p["path"] for p in snap["points"].values()} == {f"team{i % 3}/doc{i}.txt" for i in range(10)}
    finally:
        services.stop()
        stop(host)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{meta_db.rsplit("/", 1)[1]}" WITH (FORCE)'))
        admin.dispose()
