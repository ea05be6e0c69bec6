"""The cost markers applied in tests/conftest.py: the rules, and that the tests and modules
they name exist (a rename must not silently move a slow test into `make test-fast`)."""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import pytest

from tests import conftest


@pytest.mark.parametrize("module", sorted(conftest.E2E_MODULES | conftest.SERVICE_MODULES))
def test_listed_modules_exist(module: str) -> None:
    importlib.import_module(f"tests.{module}")


@pytest.mark.parametrize(("module", "name"), sorted(conftest.E2E_TESTS | conftest.SLOW_TESTS | conftest.AIRFLOW_SERVER_TESTS))
def test_listed_tests_exist(module: str, name: str) -> None:
    assert callable(getattr(importlib.import_module(f"tests.{module}"), name, None)), f"tests/{module}.py has no {name}"


def test_service_fixtures_exist(request: pytest.FixtureRequest) -> None:
    for name in conftest.SERVICE_FIXTURES:
        assert request.session._fixturemanager.getfixturedefs(name, request.node), f"no fixture {name}"


class FakeItem:
    """Just what the marking hook reads from a collected test."""

    def __init__(self, module: str, name: str, fixtures: tuple[str, ...] = (), **params: object) -> None:
        self.module = SimpleNamespace(__name__=f"tests.{module}")
        self.name = name
        self.fixturenames = list(fixtures)
        if params:
            self.callspec = SimpleNamespace(params=params)
        self.marks: set[str] = set()

    def add_marker(self, mark: pytest.MarkDecorator) -> None:
        self.marks.add(mark.name)


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (FakeItem("test_chunk", "test_windows", ("tmp_path",)), set()),
        (FakeItem("test_state", "test_runs", ("state_url",), state_url="sqlite"), set()),
        (FakeItem("test_state", "test_runs", ("state_url",), state_url="postgresql"), {"services"}),
        (FakeItem("test_anything", "test_x", ("pg_url",)), {"services"}),
        (FakeItem("test_sources_smb", "test_y", ("smb_share", "samba_server")), {"services"}),
        (FakeItem("test_e2e_dag", "test_z", backend="postgresql"), {"e2e", "services"}),
        (FakeItem("test_e2e_sharepoint", "test_z"), {"e2e"}),
        (FakeItem("test_celery", "test_w"), {"e2e", "services"}),
        (FakeItem("test_pipeline", "test_sigkill_at_any_point_then_rerun_converges"), {"e2e"}),
        (FakeItem("test_reindex", "test_reindex_builds_a_new_version_and_swaps_the_alias"), {"slow"}),
        (FakeItem("test_ui_e2e", "test_review_quarantine_in_airflow_ui"), {"e2e", "xdist_group"}),
    ],
    ids=lambda v: "" if isinstance(v, set) else f"{v.module.__name__}:{v.name}:{getattr(v, 'callspec', '')}",
)
def test_markers_follow_module_name_and_fixtures(item: FakeItem, expected: set[str]) -> None:
    conftest._mark_by_cost([item])
    assert item.marks == expected
