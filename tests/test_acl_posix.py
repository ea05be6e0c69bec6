"""POSIX access of local shares (issue 13, item 4): search (x) permission on every directory
from the root down, POSIX ACLs (setfacl) on files and directories, and fingerprints that
turn a change of either into an ACL-only update. Real files, real `setfacl`."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import struct
import subprocess

import pytest

from docsync.errors import AccessUnresolved
from docsync.sources.fileshare import LocalFileShare
from docsync.sources.posix import Acl, group_principal

OWNER = f"user:{pwd.getpwuid(os.getuid()).pw_name}"
GROUP = f"group:{grp.getgrgid(os.getgid()).gr_name}"
NOBODY = "user:nobody"
NOGROUP = group_principal(65534)  # nogroup on Debian


def write(root, rel: str, mode: int = 0o644):
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("content")
    path.chmod(mode)
    return path


@pytest.fixture()
def share(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    root.chmod(0o755)
    return root


def access_of(root, rel: str, **kwargs):
    source = LocalFileShare("s", root, **kwargs)
    entries = {e.path: e for e in source.list()}
    return source.access(entries[rel])


def fingerprint(root, rel: str) -> str:
    return {e.path: e for e in LocalFileShare("s", root).list()}[rel].acl_fingerprint


def setfacl(*args) -> None:
    if shutil.which("setfacl") is None:
        pytest.skip("setfacl is not installed (apt package 'acl')")
    result = subprocess.run(["setfacl", *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0 and "Operation not supported" in result.stderr:
        pytest.skip("this file system has no POSIX ACLs")
    assert result.returncode == 0, result.stderr


# --- directories ----------------------------------------------------------------------------------


def test_world_readable_file_in_a_private_directory_is_not_for_everyone(share):
    """The reproduced bug: a 0644 file in a 0700 directory was indexed for everyone."""
    write(share, "private/salaries.txt", 0o644)
    (share / "private").chmod(0o700)
    allowed, denied = access_of(share, "private/salaries.txt")
    assert "everyone" not in allowed
    assert allowed == [OWNER] and denied == []


def test_group_only_directory_keeps_the_group(share):
    write(share, "team/deep/notes.txt", 0o644)
    (share / "team").chmod(0o750)
    assert access_of(share, "team/deep/notes.txt") == (sorted([OWNER, GROUP]), [])


def test_the_root_directory_counts_too(share):
    write(share, "open/readme.txt", 0o644)
    share.chmod(0o711)  # others may pass through the root, not list it: still everyone
    assert "everyone" in access_of(share, "open/readme.txt")[0]
    share.chmod(0o700)
    assert access_of(share, "open/readme.txt")[0] == [OWNER]


def test_directory_that_denies_its_owner_search(share):
    write(share, "odd/file.txt", 0o644)
    (share / "odd").chmod(0o055)  # the owner may not enter; group and others may
    allowed, denied = access_of(share, "odd/file.txt")
    assert OWNER in denied and OWNER not in allowed
    assert "everyone" in allowed


def test_file_mode_that_excludes_its_owner_and_group(share):
    write(share, "x.txt", 0o204)
    allowed, denied = access_of(share, "x.txt")
    assert allowed == ["everyone"] and denied == sorted([OWNER, GROUP])


def test_directory_mode_change_is_an_acl_change(share):
    write(share, "a/b/doc.txt", 0o644)
    before = fingerprint(share, "a/b/doc.txt")
    assert fingerprint(share, "a/b/doc.txt") == before
    (share / "a").chmod(0o700)
    after = fingerprint(share, "a/b/doc.txt")
    assert after != before
    share.chmod(0o750)
    assert fingerprint(share, "a/b/doc.txt") not in (before, after)


# --- POSIX ACLs -----------------------------------------------------------------------------------


def test_acl_entry_without_read_denies(share):
    """The reproduced bug: a `user:x:---` ACL entry was ignored."""
    doc = write(share, "doc.txt", 0o644)
    before = fingerprint(share, "doc.txt")
    setfacl("-m", "u:nobody:---", doc)
    allowed, denied = access_of(share, "doc.txt")
    assert NOBODY in denied and "everyone" in allowed
    assert fingerprint(share, "doc.txt") != before  # setfacl is an ACL-only change


def test_acl_grants_named_user_and_group(share):
    doc = write(share, "doc.txt", 0o600)
    setfacl("-m", "u:nobody:r--,g:65534:r--", doc)
    assert access_of(share, "doc.txt") == (sorted([OWNER, NOBODY, NOGROUP]), [])


def test_acl_mask_limits_named_entries(share):
    doc = write(share, "doc.txt", 0o600)
    setfacl("-m", "u:nobody:r--,g:65534:r--", doc)
    setfacl("-m", "m::---", doc)  # the mask removes read from every named entry and the group
    allowed, denied = access_of(share, "doc.txt")
    assert allowed == [OWNER] and NOBODY in denied


def test_group_entry_without_read_denies_its_members_even_when_others_read(share):
    doc = write(share, "doc.txt", 0o644)
    setfacl("-m", "g:65534:---", doc)
    allowed, denied = access_of(share, "doc.txt")
    assert NOGROUP in denied and "everyone" in allowed


def test_acl_on_a_directory_applies_to_everything_below(share):
    write(share, "dept/doc.txt", 0o644)
    before = fingerprint(share, "dept/doc.txt")
    setfacl("-m", "u:nobody:---", share / "dept")
    assert NOBODY in access_of(share, "dept/doc.txt")[1]
    assert fingerprint(share, "dept/doc.txt") != before
    setfacl("-m", "u:nobody:--x", share / "dept")
    assert NOBODY not in access_of(share, "dept/doc.txt")[1]


def test_acl_and_directories_combine(share):
    doc = write(share, "private/doc.txt", 0o600)
    (share / "private").chmod(0o700)
    setfacl("-m", "u:nobody:r--", doc)
    assert access_of(share, "private/doc.txt")[0] == [OWNER]  # nobody may read it, not reach it
    setfacl("-m", "u:nobody:--x", share / "private")
    assert access_of(share, "private/doc.txt")[0] == sorted([OWNER, NOBODY])


def test_sidecar_mode_ignores_posix(share):
    write(share, "private/doc.txt", 0o600)
    (share / "private").chmod(0o700)
    assert access_of(share, "private/doc.txt", acl_mode="sidecar", default_principals=("group:staff",)) == (
        ["group:staff"],
        [],
    )


# --- the binary format ----------------------------------------------------------------------------


def _acl(*entries: tuple[int, int, int], version: int = 2) -> bytes:
    return struct.pack("<I", version) + b"".join(struct.pack("<HHI", *e) for e in entries)


def test_acl_decoding():
    none = 0xFFFFFFFF
    acl = Acl.decode(_acl((1, 6, none), (2, 4, 1234), (4, 4, none), (8, 0, 99), (0x10, 4, none), (0x20, 0, none)))
    assert (acl.user_obj, acl.group_obj, acl.other, acl.mask, acl.users, acl.groups) == (6, 4, 0, 4, {1234: 4}, {99: 0})
    for bad in (
        _acl((1, 6, none), (4, 4, none), (0x20, 0, none), version=3),  # unknown version
        _acl((1, 6, none), (4, 4, none)),  # no "other"
        _acl((1, 6, none), (2, 4, 5), (4, 4, none), (0x20, 0, none)),  # named entry without a mask
        _acl((1, 6, none), (4, 4, none), (0x20, 0, none), (0x40, 4, 1)),  # unknown entry type
        b"\x02\x00\x00\x00\x01",  # truncated
    ):
        with pytest.raises(AccessUnresolved):
            Acl.decode(bad)
