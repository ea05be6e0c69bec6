"""One writer at a time per collection, across processes and machines, where nothing else
serialises the writers: a Qdrant server, written by the `process` tasks of a DAG run on every
worker (each writes its batches as soon as they are processed; issue 15).

The embedded index needs no such lock: opening it takes its own (index.open_index). The lock
lives in the state store, which every writer of a deployment shares: a PostgreSQL advisory lock
(held by a connection, so released when its process dies, SIGKILL included), or for SQLite,
whose writers share one machine, an fcntl lock on a file beside the database (released by the
kernel the same way).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from collections.abc import Iterator

    from sqlalchemy.engine import Engine


def lock_key(name: str) -> int:
    """A signed 64-bit key for ``name`` (PostgreSQL's advisory lock space), the same in every process."""
    return int.from_bytes(hashlib.sha256(f"docsync-write:{name}".encode()).digest()[:8], "big", signed=True)


@contextmanager
def writer_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the write lock of ``name`` (a collection) for the block; waits while another holds it."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": lock_key(name)})
            conn.commit()  # the lock is the session's, not the transaction's: nothing stays open
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": lock_key(name)})
                conn.commit()
        return
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or database == ":memory:":  # one process: nothing to serialise against
        yield
        return
    path = Path(f"{database}.write-{lock_key(name) & 0xFFFFFFFF:08x}.lock")
    handle = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # releases the lock
