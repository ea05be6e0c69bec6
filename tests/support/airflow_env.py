"""Run real Airflow CLI commands against an isolated AIRFLOW_HOME (SQLite or PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import REPO

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def airflow_env(airflow_home: Path, docsync_home: Path, root: Path, db_url: str | None = None, **extra: str) -> dict:
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    for key in [k for k in env if k.startswith("DOCSYNC_")]:
        env.pop(key)
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__USAGE_DATA_COLLECTION__ENABLED="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=db_url or f"sqlite:///{airflow_home / 'airflow.db'}",
        DOCSYNC_HOME=str(docsync_home),
        DOCSYNC_FILESHARE_ROOT=str(root),
        HF_HUB_OFFLINE="1",
        DO_NOT_TRACK="1",
        ORT_DISABLE_TELEMETRY="1",
        UNSTRUCTURED_DISABLE_NOTICE="1",
    )
    env.update(extra)
    return env


def run_airflow(args: list[str], env: dict, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f"airflow {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc
