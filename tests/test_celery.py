"""Scale-out: the real fileshare_sync DAG on Airflow's CeleryExecutor.

PostgreSQL holds the Airflow metadata DB and the docsync state store (separate fresh
databases), Redis is the broker. Scheduler, dag-processor, api-server and two Celery
worker processes (distinct node names, one task slot each) run as subprocesses with a
project-local AIRFLOW_HOME under tmp. The run is unpaused and triggered through the REST
API (simple auth manager token), process tasks run in the `docsync_ocr` pool, staging
goes through a file:// object storage URL. The resulting Qdrant content must equal an
embedded `run_sync` of the same corpus.

Qdrant is the embedded local mode here: every worker is on this machine and index tasks
are serialized (max_active_tis_per_dag=1 plus the lock wait in index.open_index). Workers
on several machines need a Qdrant server (DOCSYNC_QDRANT_URL), see docker-compose.yaml.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import uuid
from typing import TYPE_CHECKING, TypeVar

import pytest
import sqlalchemy as sa

from bench.airflow_stack import Api
from tests.support.airflow_env import AIRFLOW, airflow_env
from tests.support.postgres import PG_ADMIN_URL

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

T = TypeVar("T")

DAG_ID = "fileshare_sync"
REDIS = ("127.0.0.1", 6379)
WORKERS = ("w1", "w2")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_up() -> bool:
    try:
        with socket.create_connection(REDIS, timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _drop_redis_keys(prefix: str) -> None:
    """The broker keys of this test (all under its global key prefix)."""
    import redis

    client = redis.Redis(host=REDIS[0], port=REDIS[1], socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class Services:
    """Airflow components as subprocesses, each in its own process group and log file."""

    def __init__(self, env: dict, logs: Path) -> None:
        self.env, self.logs = env, logs
        self.procs: dict[str, subprocess.Popen] = {}
        logs.mkdir(parents=True, exist_ok=True)

    def start(self, name: str, *args: str) -> None:
        with open(self.logs / f"{name}.log", "wb") as out:
            self.procs[name] = subprocess.Popen(
                [AIRFLOW, *args], env=self.env, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )

    def run_once(self, name: str, *args: str, timeout_s: float = 180) -> None:
        """A command that must finish successfully (bounded), e.g. `db migrate`."""
        self.start(name, *args)
        proc = self.procs.pop(name)
        try:
            code = proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            proc.wait(10)
            raise AssertionError(f"airflow {' '.join(args)} took longer than {timeout_s} s:\n{self.log(name)[-4000:]}") from None
        assert code == 0, f"airflow {' '.join(args)} failed ({code}):\n{self.log(name)[-4000:]}"

    def check(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"Airflow components exited early: {dead}")

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self, grace_s: float = 20) -> None:
        """SIGTERM every process group, then SIGKILL what is left after ``grace_s``."""
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.procs.values():
            _signal_group(proc, signal.SIGKILL)  # also children of an exited leader
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass

    def diagnostics(self, airflow_home: Path) -> str:
        parts = [f"--- {n} (exit {p.poll()}) ---\n{self.log(n)[-6000:]}" for n, p in self.procs.items()]
        for task_log in sorted((airflow_home / "logs").rglob("*.log"))[-12:]:
            parts.append(f"--- task log {task_log.relative_to(airflow_home)} ---\n{task_log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _wait(what: str, probe: Callable[[], T], timeout_s: float, services: Services, every: float = 1.0) -> T:
    """Poll ``probe`` until it returns a truthy value; bounded, fails fast on dead services."""
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        services.check()
        try:
            value = probe()
            if value:
                return value
        except (OSError, AssertionError, ValueError, RuntimeError) as exc:  # RuntimeError: Api's HTTP errors
            last = exc
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} (last error: {last})")


def _points(qdrant_path: Path) -> dict:
    """Point ids -> payloads of the fileshare collection, without the per-write timestamp."""
    from docsync import index
    from docsync.config import load_settings

    settings = load_settings().replace(qdrant_path=qdrant_path, qdrant_url=None, qdrant_conn_id=None)
    with index.open_index(settings, wait_s=60) as client:
        return {
            str(p.id): {k: v for k, v in p.payload.items() if k != "indexed_at"}
            for p in index.scroll_all(client, "docsync_fileshare")
        }


@pytest.fixture()
def airflow_db():
    """A fresh PostgreSQL database for the Airflow metadata."""
    name = f"airflow_c_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_ADMIN_URL.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


class Reference(threading.Thread):
    """The embedded `run_sync` of the same corpus, in a thread while Airflow works."""

    def __init__(self, home: Path, root: Path) -> None:
        super().__init__(name="embedded-reference", daemon=True)
        self.home, self.root = home, root
        self.error: BaseException | None = None

    def run(self) -> None:
        from docsync.config import load_settings
        from docsync.pipeline import run_sync

        try:
            settings = load_settings().replace(home=self.home, state_url=f"sqlite:///{self.home / 'state.db'}",
                staging_dir=str(self.home / "staging"), qdrant_path=self.home / "qdrant", qdrant_url=None,
                qdrant_conn_id=None, fileshare_root=str(self.root), source_name="fileshare",
            )
            run_sync(settings, root=str(self.root))
        except BaseException as exc:  # re-raised by result()
            self.error = exc

    def result(self, timeout_s: float) -> None:
        self.join(timeout_s)
        assert not self.is_alive(), f"the embedded reference run took longer than {timeout_s} s"
        if self.error:
            raise self.error


def celery_env(tmp_path: Path, root: Path, airflow_db: str, state_url: str, port: int, queue: str) -> dict:
    """Environment of every Airflow component: CeleryExecutor on Redis, PostgreSQL, API auth."""
    return airflow_env(
        tmp_path / "airflow", tmp_path / "docsync", root, airflow_db,
        AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
        AIRFLOW__CELERY__BROKER_URL=f"redis://{REDIS[0]}:{REDIS[1]}/0",
        AIRFLOW__CELERY__RESULT_BACKEND="db+" + airflow_db,
        # the Redis is shared with other test runs: own queue and key prefix
        AIRFLOW__OPERATORS__DEFAULT_QUEUE=queue,
        AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=f"{queue}:",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),  # the same in every component
        AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="docsync:admin",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(tmp_path / "passwords.json"),
        DOCSYNC_STATE_URL=state_url,
        DOCSYNC_STAGING=f"file://{tmp_path / 'staging'}",
        DOCSYNC_BATCH_SIZE="7",  # two process batches: one per worker
        DOCSYNC_PROCESS_PARALLELISM="2",  # ... in a task each
        DOCSYNC_PROCESS_POOL="docsync_ocr",
        DOCSYNC_FILESHARE_SCHEDULE="",  # triggered only: no scheduled run on unpause
    )


def test_celery_executor_two_workers_matches_embedded_run(demo_corpus, tmp_path, pg_url, airflow_db):
    if not _redis_up():
        pytest.fail("Redis on 127.0.0.1:6379 is required (tests/services.sh starts it)")
    corpus, manifest = demo_corpus
    root = tmp_path / "share"
    shutil.copytree(corpus, root)
    port, queue, password = _free_port(), f"docsync_t_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    env = celery_env(tmp_path, root, airflow_db, pg_url, port, queue)
    (tmp_path / "passwords.json").write_text(json.dumps({"docsync": password}))
    services = Services(env, tmp_path / "service-logs")
    reference = Reference(tmp_path / "embedded", root)
    reference.start()
    try:
        services.run_once("db-migrate", "db", "migrate")
        services.start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")
        services.start("scheduler", "scheduler")
        services.start("dag-processor", "dag-processor")
        for name in WORKERS:
            services.start(f"worker-{name}", "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue,
                           "--concurrency", "1", "--skip-serve-logs", "--without-gossip", "--without-mingle")
        api = Api(f"http://127.0.0.1:{port}")
        _wait("the api-server", lambda: api.login("docsync", password) or True, 120, services)
        api.call("POST", "/api/v2/pools", {"name": "docsync_ocr", "slots": 2, "description": "OCR + embedding"}, (201,))
        _wait("the DAG to be parsed", lambda: api.call("GET", f"/api/v2/dags/{DAG_ID}"), 120, services)
        _wait("both Celery workers", lambda: all(" ready." in services.log(f"worker-{n}") for n in WORKERS), 120, services)

        api.call("PATCH", f"/api/v2/dags/{DAG_ID}", {"is_paused": False})
        run = api.call("POST", f"/api/v2/dags/{DAG_ID}/dagRuns", {"logical_date": None, "conf": {}})
        run_path = f"/api/v2/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}"

        def finished() -> str | None:
            state = api.call("GET", run_path)["state"]
            return state if state in ("success", "failed") else None

        assert _wait("the DAG run", finished, 300, services, every=2) == "success"
        tis = api.call("GET", f"{run_path}/taskInstances?limit=100")["task_instances"]
        assert {t["state"] for t in tis} == {"success"}, [(t["task_id"], t["state"]) for t in tis]
        assert {"plan", "process", "finalize", "freshness_check"} <= {t["task_id"] for t in tis}
        process = [t for t in tis if t["task_id"] == "process"]
        assert len(process) == 2 and {t["pool"] for t in process} == {"docsync_ocr"}
        assert {t["queue"] for t in tis} == {queue}
        xcom = api.call("GET", f"{run_path}/taskInstances/plan/xcomEntries/return_value")["value"]
        groups = json.loads(xcom) if isinstance(xcom, str) else xcom
        assert [len(g) for g in groups] == [1, 1]
        assert all(b.startswith(f"file://{tmp_path}/staging/") for g in groups for b in g)
        # each worker process ran tasks (one slot each, both ready before the trigger)
        received = {n: services.log(f"worker-{n}").count("Executing workload in Celery") for n in WORKERS}
        assert all(received.values()) and sum(received.values()) == len(tis), received
        reference.result(300)
    except BaseException:
        services.stop()
        print(services.diagnostics(tmp_path / "airflow"))
        reference.join(120)
        raise
    finally:
        services.stop()
        _drop_redis_keys(f"{queue}:")

    celery_points = _points(tmp_path / "docsync" / "qdrant")
    expected = {p for p, f in manifest["files"].items() if f["expect"] == "indexed"}
    assert {p["path"] for p in celery_points.values()} == expected
    assert celery_points == _points(tmp_path / "embedded" / "qdrant")
