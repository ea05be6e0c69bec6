"""Shared fixtures. Real components everywhere: tesseract, Presidio + spaCy, GX,
sentence-transformers, embedded Qdrant, SQLite and the local PostgreSQL."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import pytest

from docsync.config import apply_offline_env, load_settings
from tests.support.postgres import PG_ADMIN_URL, pg_available

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

apply_offline_env()

# The Samba fixtures (samba_server, smb_share) and slapd (slapd_server) for every test module that asks.
pytest_plugins = ["tests.support.smb_server", "tests.support.slapd_server"]


@pytest.fixture()
def pg_url() -> Iterator[str]:
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
    # Tests sync folders under their own tmp_path: the operator's list of allowed roots.
    monkeypatch.setenv("DOCSYNC_ALLOWED_ROOTS", str(tmp_path))
    for var in ("DOCSYNC_STATE_URL", "DOCSYNC_QDRANT_URL", "DOCSYNC_STAGING", "DOCSYNC_QDRANT_PATH", "DOCSYNC_QDRANT_ENGINE"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture()
def settings(docsync_env):
    return load_settings()


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory) -> tuple[Path, dict]:
    """The demo corpus (generated once per session; tests copy it before changing it)."""
    from docsync.demo import generate_demo_corpus

    root = tmp_path_factory.mktemp("demo") / "corpus"
    manifest = generate_demo_corpus(root)
    return root, manifest


# --- markers by cost (registered in pytest.ini; `make test-fast` deselects all three) --------
# Applied here rather than in each file, so that a new test that uses PostgreSQL or Samba is
# marked by the fixtures it asks for. A new test may also mark itself (@pytest.mark.slow).
# tests/test_markers.py checks that every name listed here exists.

# Whole modules that start Airflow (dags test, standalone, Celery workers) or Chromium.
E2E_MODULES = {"test_e2e_dag", "test_e2e_sharepoint", "test_ui_e2e", "test_celery"}
# Single tests that run full `docsync sync` CLI processes over a corpus.
E2E_TESTS = {
    ("test_pipeline", "test_sigkill_at_any_point_then_rerun_converges"),
    ("test_egress", "test_sync_opens_no_connection_beyond_this_machine"),
}
# Fixtures that need a service process: PostgreSQL (pg_url), smbd (samba_server, smb_share), slapd.
SERVICE_FIXTURES = {"pg_url", "samba_server", "smb_share", "slapd_server"}
# Modules that talk to a service without one of those fixtures (test_celery: Redis, PostgreSQL).
SERVICE_MODULES = {"test_celery"}
# Tests without services that still take 4-40 s each on a 2-core machine (measured): deadlines
# that must expire, long OCR, whole-corpus parsing, worker or parser child processes.
SLOW_TESTS = {
    ("test_quality", "test_one_bad_page_quarantines_in_page_scope_only"),
    ("test_quality", "test_pipeline_deadline_interrupts_ocr"),
    ("test_quality", "test_pipeline_deadline_interrupts_unstructured"),
    ("test_quality", "test_sync_quarantines_the_slow_document_and_indexes_the_rest"),
    ("test_quality", "test_demo_corpus_chunks_fit_the_model"),
    ("test_reindex", "test_reindex_builds_a_new_version_and_swaps_the_alias"),
    ("test_pii_leak", "test_scanned_records_ocr_then_anonymize"),
    ("test_pipeline", "test_parallel_workers_index_the_same_points"),
    # test_limits: each parses in a child process under the real memory/pixel limits
    ("test_limits", "test_tiny_pdf_with_a_huge_page_is_refused_before_rendering"),
    ("test_limits", "test_large_page_is_rendered_smaller_not_refused"),
    ("test_limits", "test_multi_frame_tiff_decodes_one_frame_at_a_time"),
    ("test_limits", "test_tiff_frame_over_the_pixel_cap_is_refused_before_decoding"),
    ("test_limits", "test_flate_bomb_pdf_is_refused_before_pdfium_opens_it"),
    ("test_limits", "test_object_bomb_pdf_is_refused_before_pdfium_opens_it"),
    ("test_limits", "test_document_over_the_memory_budget_fails_at_limits_not_the_process"),
}


# Tests that start Airflow's servers (api-server, scheduler and the log servers beside them):
# `make test` runs the suite on several pytest-xdist workers, and these run one at a time on one
# of them (xdist group), so that two Airflow stacks never compete for a port or the machine.
AIRFLOW_SERVER_TESTS = {
    ("test_ui_e2e", "test_review_quarantine_in_airflow_ui"),
    ("test_celery", "test_celery_executor_two_workers_matches_embedded_run"),
    ("test_worker_host", "test_dag_run_under_local_executor_goes_through_the_host"),
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test `e2e`, `services` and/or `slow` from its module, name and fixtures; then
    put the modules with end-to-end tests first (stable otherwise), so that under pytest-xdist
    the longest tests start first and the short ones fill the gaps at the end."""
    _mark_by_cost(items)
    long_modules = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("e2e")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in long_modules)


def _mark_by_cost(items: list) -> None:
    for item in items:
        module_obj = getattr(item, "module", None)  # None for non-Python items
        module = module_obj.__name__.rsplit(".", 1)[-1] if module_obj else ""
        name = item.originalname if isinstance(item, pytest.Function) else item.name
        if module in E2E_MODULES or (module, name) in E2E_TESTS:
            item.add_marker(pytest.mark.e2e)
        if (module, name) in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
        params = item.callspec.params if hasattr(item, "callspec") else {}
        # Backend-parametrized fixtures (state_url, the e2e `backend`) fetch pg_url lazily.
        if (
            module in SERVICE_MODULES
            or SERVICE_FIXTURES & set(getattr(item, "fixturenames", ()))
            or "postgresql" in params.values()
        ):
            item.add_marker(pytest.mark.services)
        if (module, name) in AIRFLOW_SERVER_TESTS:
            item.add_marker(pytest.mark.xdist_group("airflow-servers"))
