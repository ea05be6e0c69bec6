"""Staging of intermediate data (plans, batches, results) under ``DOCSYNC_STAGING``.

Tasks exchange only the references (paths) returned here through XCom. Writes are
atomic (temp file + rename) so a killed task never leaves a half-written file behind.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from docsync.config import Settings


def safe_name(value: str) -> str:
    """Airflow run ids contain ':' and '+'; keep file names portable."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value)[:180]


def run_dir(settings: Settings, source: str, run_id: str) -> Path:
    path = Path(settings.staging_dir) / safe_name(source) / safe_name(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def plan_ref(settings: Settings, source: str, run_id: str) -> str:
    """Where :func:`docsync.pipeline.plan` staged a run's plan."""
    return str(run_dir(settings, source, run_id) / "plan.json")


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def write_json(path: Path, value: Any) -> str:
    _atomic_write(path, json.dumps(value, default=str).encode("utf-8"))
    return str(path)


def read_json(ref: str) -> Any:
    return json.loads(Path(ref).read_text(encoding="utf-8"))


def write_vectors(path: Path, vectors: list[list[float]]) -> str:
    buffer = io.BytesIO()
    array = np.asarray(vectors, dtype=np.float32)
    np.save(buffer, array if vectors else array.reshape(0, 0))
    _atomic_write(path, buffer.getvalue())
    return str(path)


def read_vectors(ref: str) -> np.ndarray:
    return np.load(ref)


def cleanup_run(settings: Settings, source: str, run_id: str) -> None:
    shutil.rmtree(run_dir(settings, source, run_id), ignore_errors=True)
