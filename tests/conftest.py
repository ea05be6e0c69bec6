"""Shared fixtures. Real components everywhere: tesseract, Presidio + spaCy, GX,
sentence-transformers, embedded Qdrant, SQLite and the local PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from docsync.config import apply_offline_env, load_settings

apply_offline_env()

REPO = Path(__file__).resolve().parents[1]
PG_ADMIN_URL = os.environ.get("DOCSYNC_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/docsync_test")


def pg_available() -> bool:
    try:
        import sqlalchemy as sa

        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture()
def pg_url() -> str:
    """A fresh PostgreSQL schema-isolated database URL (a new database per test)."""
    import sqlalchemy as sa

    if not pg_available():
        pytest.fail("PostgreSQL on 127.0.0.1:5432 is required (tests/services.sh starts it)")
    name = f"docsync_t_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from docsync import state

    state.get_engine.cache_clear()
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path) -> str:
    """Both state-store backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture()
def docsync_env(tmp_path, monkeypatch) -> Path:
    """An isolated DOCSYNC_HOME for one test."""
    home = tmp_path / "docsync-home"
    monkeypatch.setenv("DOCSYNC_HOME", str(home))
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture()
def settings(docsync_env):
    return load_settings()


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> tuple[Path, dict]:
    """The demo corpus (generated once per session; tests copy it before changing it)."""
    from docsync.corpus import generate_demo_corpus

    root = tmp_path_factory.mktemp("demo") / "corpus"
    manifest = generate_demo_corpus(root)
    return root, manifest
