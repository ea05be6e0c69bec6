"""A real Airflow 3 for the DAG benchmark: metadata DB on the local PostgreSQL, api-server,
scheduler, dag-processor, LocalExecutor or CeleryExecutor (Redis on 127.0.0.1:6379) workers, and
optionally the docsync worker host; each component in its own session so that its CPU time
(every process of the session, finished children included) can be read from /proc."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

from bench.common import REPO

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
HOST_WORKERS = 2  # the worker host's processes: one per core
PROCESS_POOL = "docsync_process"  # the process tasks' Airflow pool, HOST_WORKERS + 1 slots
PG_ADMIN = os.environ.get("DOCSYNC_BENCH_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS = "redis://127.0.0.1:6379/0"
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def session_cpu_s(sid: int) -> float:
    """CPU seconds of every live process of session ``sid``, with the children they reaped."""
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after "pid (comm)": state ppid pgrp session ...
            total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / TICKS


class Api:
    """Minimal Airflow 3 REST client (urllib: no extra dependency); tests/test_celery.py uses it too."""

    def __init__(self, base: str) -> None:
        self.base, self.token = base, ""

    def call(self, method: str, path: str, body: dict | None = None, expect: tuple[int, ...] = (200,)) -> dict:
        request = urllib.request.Request(f"{self.base}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, payload = exc.code, exc.read()
        if status not in expect:
            raise RuntimeError(f"{method} {path} -> {status}: {payload[:2000]!r}")
        return json.loads(payload) if payload else {}

    def login(self, username: str, password: str) -> None:
        self.token = self.call("POST", "/auth/token", {"username": username, "password": password},
                               (201,))["access_token"]


class Stack:
    """Airflow components (and the worker host) as subprocesses of one benchmark."""

    def __init__(self, work: Path, executor: str, share: Path, home: Path, host: bool, celery_workers: int = 2,
                 slots: int = 2, extra_env: dict | None = None) -> None:
        self.work, self.executor, self.host = work, executor, host
        self.celery_workers, self.slots = celery_workers, slots
        self.procs: dict[str, subprocess.Popen] = {}
        self.port, password = _free_port(), secrets.token_urlsafe(16)
        self.db = f"docsync_bench_{uuid.uuid4().hex[:8]}"
        self.db_url = PG_ADMIN.rsplit("/", 1)[0] + f"/{self.db}"
        queue = f"docsync_b_{uuid.uuid4().hex[:8]}"
        (work / "passwords.json").write_text(json.dumps({"docsync": password}))
        self.password, self.queue = password, queue
        self.socket = str(Path("/tmp") / f"dsb-{uuid.uuid4().hex[:8]}.sock")  # short: Unix socket paths
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCSYNC_", "AIRFLOW"))}
        env.update(
            PYTHONPATH=os.pathsep.join([str(REPO / "include"), str(REPO)]),
            AIRFLOW_HOME=str(work / "airflow"),
            AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=self.db_url,
            AIRFLOW__CORE__EXECUTOR=executor,
            AIRFLOW__CORE__PARALLELISM=str(slots),
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{self.port}",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.port}/execution/",
            AIRFLOW__API_AUTH__JWT_SECRET=secrets.token_hex(32),
            AIRFLOW__API__SECRET_KEY=secrets.token_hex(16),
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS="docsync:admin",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=str(work / "passwords.json"),
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="1",
            # As `make run` and docker-compose.yaml set it (Airflow's default: 1 s).
            AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME=os.environ.get("BENCH_SCHEDULER_IDLE_SLEEP", "0.25"),
            # As `make run` and docker-compose.yaml set it (Airflow's default: 5 s; see the Makefile).
            AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL=os.environ.get("BENCH_MIN_HEARTBEAT_INTERVAL", "1"),
            # A busy machine: the api-server may take more than the default 5 s to answer a task.
            AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT="60",
            DOCSYNC_HOME=str(home),
            DOCSYNC_FILESHARE_ROOT=str(share),
            DOCSYNC_FILESHARE_SCHEDULE="",
            DOCSYNC_RUN_DEADLINE_MIN="0",
            DOCSYNC_WORKER_HOST_SOCKET=self.socket if host else "off",
            DOCSYNC_PROCESS_POOL=PROCESS_POOL,
        )
        env.update(extra_env or {})
        if executor == "CeleryExecutor":
            env.update(
                AIRFLOW__CELERY__BROKER_URL=REDIS,
                AIRFLOW__CELERY__RESULT_BACKEND="db+" + self.db_url,
                AIRFLOW__OPERATORS__DEFAULT_QUEUE=queue,
                AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__GLOBAL_KEYPREFIX=f"{queue}:",
            )
        self.env = env
        self.api = Api(f"http://127.0.0.1:{self.port}")
        self.host_warmup: dict = {}
        self.execution_api_warmup_s = 0.0  # the first execution-API request, before the first run

    # --- lifecycle ---------------------------------------------------------------------------
    def _start(self, name: str, *args: str, python: bool = False) -> None:
        logs = self.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, *args] if python else [AIRFLOW, *args]
        with open(logs / f"{name}.log", "wb") as out:
            self.procs[name] = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.work)

    def log(self, name: str) -> str:
        path = self.work / "logs" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def _wait(self, what: str, probe, timeout_s: float = 300) -> object:
        deadline = time.monotonic() + timeout_s
        last = None
        while time.monotonic() < deadline:
            dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
            if dead:
                raise RuntimeError(f"{what}: components exited {dead}; logs under {self.work / 'logs'}")
            try:
                value = probe()
                if value:
                    return value
            except (OSError, RuntimeError, ValueError) as exc:
                last = exc
            time.sleep(1)
        raise RuntimeError(f"timed out waiting for {what} (last error {last}); logs under {self.work / 'logs'}")

    def start(self) -> None:
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self.db}"'))
        admin.dispose()
        migrate = subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, capture_output=True, text=True, timeout=600)
        if migrate.returncode:
            raise RuntimeError(f"airflow db migrate failed: {migrate.stdout[-2000:]}{migrate.stderr[-2000:]}")
        # As deployed (README "Pools"): one process slot more than there are host workers, so that a
        # batch already waits at the host when one is done (no idle worker between tasks); more
        # would only hold executor slots, queued ahead of finalize.
        pool = subprocess.run([AIRFLOW, "pools", "set", PROCESS_POOL, str(HOST_WORKERS + 1), "docsync process tasks"],
                              env=self.env, capture_output=True, text=True, timeout=300)
        if pool.returncode:
            raise RuntimeError(f"airflow pools set failed: {pool.stdout[-2000:]}{pool.stderr[-2000:]}")
        if self.host:
            started = time.perf_counter()
            self._start("worker-host", "-m", "docsync.cli", "worker-host", "--workers", str(HOST_WORKERS), python=True)
        self._start("api-server", "api-server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1")
        self._start("scheduler", "scheduler")
        self._start("dag-processor", "dag-processor")
        if self.executor == "CeleryExecutor":
            for k in range(self.celery_workers):
                self._start(f"celery-{k}", "celery", "worker", "--celery-hostname", f"w{k}@%h", "--queues", self.queue,
                            "--concurrency", str(max(1, self.slots // self.celery_workers)), "--skip-serve-logs", "--without-gossip", "--without-mingle")
        self._wait("the api-server", self._login, 300)
        self._wait("the DAG to be parsed", lambda: self.api.call("GET", "/api/v2/dags/fileshare_sync"), 300)
        if self.executor == "CeleryExecutor":
            self._wait("the Celery workers", lambda: all(
                " ready." in self.log(f"celery-{k}") for k in range(self.celery_workers)), 300)
        if self.host:
            from docsync.host_client import health

            report = self._wait("the worker host", lambda: (h := health(self.socket)) and h["ready"] and h, 600)
            self.host_warmup = {"warmup_wall_s": round(time.perf_counter() - started, 1),
                                "warmup_cpu_s": round(session_cpu_s(self.procs["worker-host"].pid), 1),
                                "ready_report": report}
        self._warm_execution_api()
        self.api.call("PATCH", "/api/v2/dags/fileshare_sync", {"is_paused": False})

    def _warm_execution_api(self) -> None:
        """One request to the api-server's execution API before the first run: the first request
        after its start took 3.3 s (the first task's start waited for it), later ones ~20 ms; a
        deployment pays it once per api-server start, like the host's warm-up (not timed)."""
        started = time.perf_counter()
        for path in ("/execution/health", "/execution/health/ping"):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=60) as response:
                    response.read()
            except urllib.error.URLError:
                pass  # a 4xx/5xx also reached (and warmed) the app
        self.execution_api_warmup_s = round(time.perf_counter() - started, 2)

    def _login(self) -> bool:
        self.api.login("docsync", self.password)
        return True

    def cpu_s(self) -> dict[str, float]:
        return {name: session_cpu_s(proc.pid) for name, proc in self.procs.items()}

    def stop(self) -> None:
        for proc in self.procs.values():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        import sqlalchemy as sa

        admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
        admin.dispose()
