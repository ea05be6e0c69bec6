"""ACL sidecars that fail closed (issue 13): NTFS ACE types as exporters write them (item 2),
and which sidecars are trusted at all (item 3) on a real local directory."""

from __future__ import annotations

import json
import os
import pwd

import pytest

from docsync.errors import AccessUnresolved, DocumentError
from docsync.sources.acl import parse_sidecar
from docsync.sources.fileshare import LocalFileShare

OWNER = f"user:{pwd.getpwuid(os.getuid()).pw_name}"
NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving files another owner needs root")


def aces(*entries: dict) -> bytes:
    return json.dumps({"aces": [{"principal": "CORP\\Finance", "kind": "group", "type": "allow", "rights": ["Read"]},
                                *entries]}).encode()


# --- item 2: ACE types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ace",
    [
        {"type": 1},  # how ConvertTo-Json writes [AccessControlType]::Deny
        {"type": "1"},
        {"type": "AccessDenied"},
        {"type": "Deny "},
        {"type": "DENY"},
        {"AccessControlType": 1},  # Get-Acl's own key
        {"AccessControlType": "Deny"},
        {"accesscontroltype": "deny"},
        {"Type": "Deny"},
    ],
)
def test_deny_spellings_deny(ace):
    allowed, denied = parse_sidecar(aces({"principal": "CORP\\bob", "kind": "user", "rights": ["Read"]} | ace))
    assert denied == ["user:bob"]
    assert "user:bob" not in allowed


@pytest.mark.parametrize("ace", [{"type": 0}, {"type": "Allow"}, {"type": "AccessAllowed"}, {"AccessControlType": 0}])
def test_allow_spellings_allow(ace):
    allowed, denied = parse_sidecar(aces({"principal": "CORP\\carol", "kind": "user", "rights": ["Read"]} | ace))
    assert allowed == ["group:finance", "user:carol"] and denied == []


@pytest.mark.parametrize(
    "ace",
    [{"type": 2}, {"type": "Audit"}, {"type": ""}, {"type": None}, {"type": True}, {"type": "allowed"}, {},
     {"type": "allow", "AccessControlType": "SystemAudit"}],
)
def test_unknown_ace_type_never_allows(ace):
    with pytest.raises(AccessUnresolved, match="type"):
        parse_sidecar(aces({"principal": "CORP\\carol", "kind": "user", "rights": ["Read"]} | ace))


def test_numeric_access_masks_are_read():
    # PowerShell 5.1 writes FileSystemRights as a number: 1179817 = ReadAndExecute, Synchronize.
    raw = aces(
        {"principal": "CORP\\bob", "kind": "user", "AccessControlType": 1, "rights": 1179817},
        {"principal": "CORP\\eve", "kind": "user", "AccessControlType": 1, "FileSystemRights": "268435456"},  # GENERIC_ALL
        {"principal": "CORP\\dave", "kind": "user", "AccessControlType": 0, "rights": 2},  # write only
    )
    assert parse_sidecar(raw) == (["group:finance"], ["user:bob", "user:eve"])


def test_deny_without_kind_denies_user_and_group():
    raw = aces({"principal": "CORP\\Contractors", "type": "Deny", "rights": "Read"})
    assert parse_sidecar(raw)[1] == ["group:contractors", "user:contractors"]


def test_deny_of_everyone_leaves_no_reader():
    with pytest.raises(AccessUnresolved, match="no one"):
        parse_sidecar(aces({"principal": "Everyone", "type": 1, "rights": "Read"}))


# --- item 3: sidecar trust (local shares) -----------------------------------------------------------


def make(root, rel: str, data: str = "secret payroll", mode: int = 0o600):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data)
    path.chmod(mode)
    return path


@pytest.fixture()
def share(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    return root


def only(source) -> object:
    (entry,) = [e for e in source.list()]
    return entry


@as_root
def test_sidecar_of_another_owner_is_not_trusted(share):
    """The reproduced bug: a 0600 root file with a nobody-owned sidecar was indexed for everyone."""
    make(share, "payroll.txt")
    car = make(share, "payroll.txt.acl.json", json.dumps({"allow": ["everyone"]}), 0o644)
    os.chown(car, NOBODY, NOBODY)
    source = LocalFileShare("s", share)
    with pytest.raises(AccessUnresolved, match="not by the document's owner") as info:
        source.access(only(source))
    assert isinstance(info.value, DocumentError) and info.value.failure.stage == "access"


@as_root
@pytest.mark.parametrize("trusted", ["uid:65534", "user:nobody", "gid:65534", "group:nogroup"])
def test_operator_listed_sidecar_owners_are_trusted(share, trusted):
    make(share, "payroll.txt")
    car = make(share, "payroll.txt.acl.json", json.dumps({"allow": ["group:payroll"]}), 0o644)
    os.chown(car, NOBODY, NOBODY)
    source = LocalFileShare("s", share, trusted_sidecar_owners=(trusted,))
    assert source.access(only(source)) == (["group:payroll"], [])


def test_bad_trusted_owner_setting_is_refused(share):
    with pytest.raises(ValueError, match="DOCSYNC_TRUSTED_SIDECAR_OWNERS"):
        LocalFileShare("s", share, trusted_sidecar_owners=("uid:abc",))
    with pytest.raises(ValueError, match="DOCSYNC_TRUSTED_SIDECAR_OWNERS"):
        LocalFileShare("s", share, trusted_sidecar_owners=("user:no-such-user-here",))


def test_world_writable_sidecar_is_not_trusted(share):
    make(share, "doc.txt")
    car = make(share, "doc.txt.acl.json", json.dumps({"allow": ["everyone"]}))
    car.chmod(0o666)
    source = LocalFileShare("s", share)
    with pytest.raises(AccessUnresolved, match="world-writable"):
        source.access(only(source))


def test_symlinked_sidecar_is_not_honoured_and_shows_in_the_fingerprint(share):
    """The reproduced bug: a symlinked sidecar was honoured but left out of change detection,
    so a revocation through it never reached the index."""
    make(share, "doc.txt")
    source = LocalFileShare("s", share, include=("doc.txt",))
    plain = only(source).acl_fingerprint
    policy = make(share, "public.txt.acl.json", json.dumps({"allow": ["everyone"]}), 0o644)  # another document's
    (share / "doc.txt.acl.json").symlink_to(policy.name)
    linked = only(source)
    # Listed with the link, so that adding, changing or removing it is an ACL change.
    assert linked.acl_fingerprint != plain
    with pytest.raises(AccessUnresolved, match="symbolic link"):
        source.access(linked)  # never "everyone" through a link, never the POSIX fallback either


@pytest.mark.parametrize("name", ["doc.txt.ACL.json", "doc.txt.Acl.Json", "doc.txt.ACL.JSON"])
def test_sidecar_suffix_in_any_case_is_a_sidecar_not_a_document(share, name):
    make(share, "doc.txt", mode=0o644)
    make(share, name, json.dumps({"allow": ["group:hr"]}), 0o644)
    source = LocalFileShare("s", share)
    entries = {e.path: e for e in source.list()}
    assert set(entries) == {"doc.txt"}  # never indexed as a document of its own
    assert source.access(entries["doc.txt"]) == (["group:hr"], [])  # and it decides, not the 0644 mode


def test_two_sidecars_of_one_document_are_unresolved(share):
    make(share, "doc.txt", mode=0o644)
    make(share, "doc.txt.acl.json", json.dumps({"allow": ["group:hr"]}), 0o644)
    make(share, "doc.txt.ACL.JSON", json.dumps({"allow": ["everyone"]}), 0o644)
    source = LocalFileShare("s", share)
    with pytest.raises(AccessUnresolved, match="several ACL sidecars"):
        source.access(only(source))


def test_sidecar_owner_change_changes_the_fingerprint(share):
    if os.geteuid() != 0:
        pytest.skip("chown needs root")
    make(share, "doc.txt")
    car = make(share, "doc.txt.acl.json", json.dumps({"allow": ["group:hr"]}), 0o644)
    source = LocalFileShare("s", share)
    before = only(source).acl_fingerprint
    os.chown(car, NOBODY, NOBODY)
    assert only(source).acl_fingerprint != before
