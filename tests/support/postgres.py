"""The local PostgreSQL the tests use (tests/services.sh starts it)."""

from __future__ import annotations

import os

PG_ADMIN_URL = os.environ.get("DOCSYNC_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/docsync_test")


def pg_available() -> bool:
    """True when PostgreSQL answers at PG_ADMIN_URL."""
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False
