"""Allowed source roots (issue 13, item 1): a run's `root` (DAG param, --root) must be the
configured root or lie inside one listed in DOCSYNC_ALLOWED_ROOTS; anything else is refused
before any connection or listing."""

from __future__ import annotations

import socket

import pytest

from docsync.config import load_settings
from docsync.sources import open_source
from docsync.sources.fileshare import LocalFileShare
from docsync.sources.smb import SmbFileShare


@pytest.fixture()
def roots(tmp_path):
    allowed = tmp_path / "allowed"
    (allowed / "sub").mkdir(parents=True)
    other = tmp_path / "other"
    other.mkdir()
    (other / "secret.txt").write_text("worker-local secret")
    return allowed, other


def fileshare(settings, root, *extra):
    return settings.with_overrides(source_kind="fileshare", fileshare_root=str(root), allowed_roots=tuple(extra))


def test_configured_root_and_its_subfolders_are_allowed(settings, roots):
    allowed, _other = roots
    s = fileshare(settings, allowed)
    assert isinstance(open_source(s), LocalFileShare)
    assert isinstance(open_source(s, str(allowed)), LocalFileShare)
    assert isinstance(open_source(s, str(allowed / "sub")), LocalFileShare)
    assert isinstance(open_source(s, str(allowed) + "/./sub/"), LocalFileShare)


@pytest.mark.parametrize("which", ["other", "dotdot", "symlink", "parent", "sibling-prefix", "url"])
def test_other_local_roots_are_refused(settings, roots, which):
    allowed, other = roots
    (allowed / "link").symlink_to(other, target_is_directory=True)
    (allowed.parent / "allowed2").mkdir()
    root = {
        "other": str(other),
        "dotdot": f"{allowed}/../other",
        "symlink": str(allowed / "link"),  # inside by name, outside in fact
        "parent": str(allowed.parent),
        "sibling-prefix": str(allowed.parent / "allowed2"),  # a string prefix is not a parent folder
        "url": "file:///etc",
    }[which]
    with pytest.raises(ValueError, match="DOCSYNC_ALLOWED_ROOTS") as info:
        open_source(fileshare(settings, allowed), root)
    assert "refused" in str(info.value)


def test_allowed_roots_come_from_the_environment(docsync_env, roots, monkeypatch):
    allowed, other = roots
    monkeypatch.delenv("DOCSYNC_ALLOWED_ROOTS")  # conftest allows the test's tmp_path
    monkeypatch.setenv("DOCSYNC_FILESHARE_ROOT", str(allowed))
    with pytest.raises(ValueError, match="DOCSYNC_ALLOWED_ROOTS"):
        open_source(load_settings(), str(other))
    monkeypatch.setenv("DOCSYNC_ALLOWED_ROOTS", f"/nonexistent/x, {other}")
    settings = load_settings()
    assert settings.source.allowed_roots == ("/nonexistent/x", str(other))
    assert isinstance(open_source(settings, str(other)), LocalFileShare)
    assert isinstance(open_source(settings, str(allowed)), LocalFileShare)  # the configured root stays allowed


def test_sharepoint_roots_are_checked_too(settings, roots):
    allowed, other = roots
    s = settings.with_overrides(source_kind="sharepoint", sharepoint_root=str(allowed), allowed_roots=())
    assert type(open_source(s)).__name__ == "SharePointExport"
    with pytest.raises(ValueError, match="DOCSYNC_SHAREPOINT_ROOT"):
        open_source(s, str(other))


@pytest.fixture()
def trap():
    """A TCP listener standing in for an attacker's SMB host: it must never be contacted."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    yield server
    server.close()


def _contacted(server: socket.socket) -> bool:
    try:
        conn, _addr = server.accept()
    except TimeoutError:
        return False
    conn.close()
    return True


def test_smb_root_of_another_host_is_refused_before_connecting(settings, trap):
    port = trap.getsockname()[1]
    s = settings.with_overrides(fileshare_root="smb://files.corp.example/docs", smb_username="svc", smb_password="pw")
    evil = f"smb://someone:hunter2@127.0.0.1:{port}/docs"
    with pytest.raises(ValueError, match="DOCSYNC_ALLOWED_ROOTS") as info:
        source = open_source(s, evil)
        source.check_available()  # what a run does next (the old code got here and logged in)
    assert "hunter2" not in str(info.value)
    assert not _contacted(trap)


@pytest.mark.parametrize(
    ("root", "ok"),
    [
        ("smb://FILES.corp.example/docs", True),  # host names are case-insensitive
        ("smb://files.corp.example/DOCS/Reports/2024", True),  # share too; a sub-folder is inside
        ("smb://files.corp.example:445/docs", True),
        ("smb://files.corp.example:4450/docs", False),
        ("smb://files.corp.example/docs2", False),
        ("smb://files.corp.example/other", False),
        ("smb://files.corp.example/docs/%2e%2e/other", False),
        ("smb://files.corp.example.evil.example/docs", False),
        ("smb://evil.example/docs", False),
    ],
)
def test_smb_roots_compare_host_share_and_path(settings, root, ok):
    s = settings.with_overrides(fileshare_root="smb://files.corp.example/docs")
    if ok:
        assert isinstance(open_source(s, root), SmbFileShare)
    else:
        with pytest.raises(ValueError, match="refused"):
            open_source(s, root)


def test_listed_smb_root_is_allowed(settings):
    s = settings.with_overrides(allowed_roots=("smb://nas.corp.example/hr/policies",))
    assert isinstance(open_source(s, "smb://nas.corp.example/HR/policies/2024"), SmbFileShare)
    with pytest.raises(ValueError, match="refused"):
        open_source(s, "smb://nas.corp.example/hr")  # the parent of an allowed root is not allowed
    with pytest.raises(ValueError, match="refused"):
        open_source(s, "smb://nas.corp.example/hr/Policies")  # path segments compare exactly
