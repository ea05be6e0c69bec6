"""Staging of intermediate data (plans, batches, results) under ``DOCSYNC_STAGING``.

``DOCSYNC_STAGING`` is a local path (the default; a shared mount such as NFS when
workers run on several machines) or an object storage URL read and written through
Airflow's ``ObjectStoragePath``: ``s3://bucket/prefix``, with the Airflow connection id
as user part (``s3://aws_default@bucket/prefix``), ``gs://``, ``abfs://`` or ``file://``.

Tasks exchange only the references (path or URL strings) returned here through XCom.
Writes are atomic (temp file + rename; one PUT on object storage) so a killed task
never leaves a half-written file behind. Staged text is anonymized text only.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from docsync.config import Settings

# A local Path, or an airflow.sdk.ObjectStoragePath (same pathlib-style API).
StagingPath = Path | Any
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def safe_name(value: str) -> str:
    """Airflow run ids contain ':' and '+'; keep file names portable."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value)[:180]


def path(ref: str) -> StagingPath:
    """The path object of a staging reference: URLs through ObjectStoragePath."""
    if _URL.match(ref):
        from airflow.sdk import ObjectStoragePath  # only when object storage is configured

        return ObjectStoragePath(ref)
    return Path(ref)


def _is_local(target: StagingPath) -> bool:
    return isinstance(target, Path) or getattr(target, "protocol", "") in ("file", "local")


def run_dir(settings: Settings, source: str, run_id: str) -> StagingPath:
    """The staging directory of one run (local staging: readable by its owner only)."""
    root = path(settings.staging_dir)
    target = root / safe_name(source) / safe_name(run_id)
    if isinstance(root, Path):
        # Staged text is anonymized, but paths and ACLs are not for every local user.
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        root.chmod(0o700)
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        target.mkdir(parents=True, exist_ok=True)
    return target


def _atomic_write(target: StagingPath, data: bytes) -> None:
    if not isinstance(target, Path):
        if not _is_local(target):  # object stores: one PUT is atomic already
            target.write_bytes(data)
            return
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
        return
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def write_json(path: StagingPath, value: Any) -> str:
    _atomic_write(path, json.dumps(value, default=str).encode("utf-8"))
    return str(path)


def read_json(ref: str) -> Any:
    return json.loads(path(ref).read_bytes().decode("utf-8"))


def write_vectors(path: StagingPath, vectors: list[list[float]]) -> str:
    buffer = io.BytesIO()
    array = np.asarray(vectors, dtype=np.float32)
    np.save(buffer, array if vectors else array.reshape(0, 0))
    _atomic_write(path, buffer.getvalue())
    return str(path)


def read_vectors(ref: str) -> np.ndarray:
    return np.load(io.BytesIO(path(ref).read_bytes()))


def cleanup_run(settings: Settings, source: str, run_id: str) -> None:
    target = run_dir(settings, source, run_id)
    if isinstance(target, Path):
        shutil.rmtree(target, ignore_errors=True)
    else:
        target.fs.rm(target.path, recursive=True)
