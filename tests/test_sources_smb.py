"""The SMB source against a real Samba server on loopback (tests/support/smb_server.py); no mocks."""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING

import pytest

from docsync.sources import AccessUnresolved, SourceUnavailable
from docsync.sources.smb import SmbFileShare
from tests.support.smb_server import port_open  # fixtures samba_server, smb_share: conftest.py

if TYPE_CHECKING:
    from pathlib import Path

ONE_SECOND = 1_000_000_000


def put(root: Path, rel: str, data: bytes | str, mtime_s: int | None = None) -> Path:
    """Write a file the share's Unix user (nobody) can read."""
    path = root / rel
    for parent in reversed(path.relative_to(root).parents):
        (root / parent).mkdir(exist_ok=True)
        (root / parent).chmod(0o755)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(0o644)
    if mtime_s is not None:
        os.utime(path, (mtime_s, mtime_s))
    return path


def put_acl(root: Path, rel: str, acl: dict) -> Path:
    return put(root, rel + ".acl.json", json.dumps(acl))


def source(smb_share, **kwargs) -> SmbFileShare:
    url, user, password, _local = smb_share
    kwargs.setdefault("username", user)
    kwargs.setdefault("password", password)
    return SmbFileShare("smbtest", url, **kwargs)


def local_mtime_ns(path: Path) -> int:
    """What SMB reports: the FILETIME, which smbprotocol truncates to microseconds."""
    return path.stat().st_mtime_ns // 1000 * 1000


def test_listing_nested_folders_sidecars_and_globs(smb_share, monkeypatch):
    import smbclient

    _url, _user, _pw, local = smb_share
    put(local, "a.txt", "alpha")
    sidecar = put_acl(local, "a.txt", {"allow": ["group:staff"]})
    put(local, "sub/b.md", "# bravo\n")
    put(local, "sub/deep/c.txt", "charlie charlie")
    put_acl(local, "sub/deep/c.txt", {"allow": ["user:carol"]})
    put(local, "sub/.hidden.txt", "hidden")
    put(local, "sub/deep/draft.tmp", "temporary")
    put(local, "logs/run.log", "not included")
    put_acl(local, "logs/orphan.txt", {"allow": ["everyone"]})  # a sidecar alone is no document

    calls = {"scandir": 0, "stat": 0}
    real_scandir = smbclient.scandir

    def counting_scandir(*args, **kwargs):  # a spy: the real call, counted
        calls["scandir"] += 1
        return real_scandir(*args, **kwargs)

    def no_stat(*_args, **_kwargs):
        calls["stat"] += 1
        raise AssertionError("listing must not stat files one by one")

    monkeypatch.setattr(smbclient, "scandir", counting_scandir)
    for name in ("stat", "lstat"):
        monkeypatch.setattr(smbclient, name, no_stat)
    monkeypatch.setattr("smbclient._os.lstat", no_stat)
    monkeypatch.setattr("smbclient._os.stat", no_stat)

    src = source(smb_share, include=("**/*.txt", "**/*.md"), exclude=("**/.*", "**/*.tmp"))
    entries = {e.path: e for e in src.list()}

    assert sorted(entries) == ["a.txt", "sub/b.md", "sub/deep/c.txt"]
    assert calls == {"scandir": 4, "stat": 0}  # root, logs, sub, sub/deep: one query each
    for rel, entry in entries.items():
        assert entry.size == (local / rel).stat().st_size
        assert entry.mtime_ns == local_mtime_ns(local / rel)
    # The sidecar's content, not its size and mtime (a copy can keep both): issue 13.
    assert entries["a.txt"].acl_fingerprint == f"smb|sha256:{hashlib.sha256(sidecar.read_bytes()).hexdigest()[:32]}"
    assert entries["sub/deep/c.txt"].acl_fingerprint.startswith("smb|")
    assert entries["sub/b.md"].acl_fingerprint == "smb|none"


def test_read_returns_the_bytes_and_refuses_escapes(smb_share):
    _url, _user, _pw, local = smb_share
    payload = os.urandom(300_000)  # larger than one SMB read
    put(local, "bin/blob.dat", payload)
    put(local, "x y/ünïcode name.txt", "spaces and accents")
    src = source(smb_share)
    assert src.read("bin/blob.dat") == payload
    assert src.read("x y/ünïcode name.txt") == b"spaces and accents"
    assert {e.path for e in src.list()} == {"bin/blob.dat", "x y/ünïcode name.txt"}
    for bad in ("../smb.conf", "bin/../../x", "/etc/passwd", "bin\\..\\..\\x", ""):
        with pytest.raises(AccessUnresolved, match="escapes"):
            src.read(bad)
    with pytest.raises(FileNotFoundError):
        src.read("bin/gone.dat")


def test_access_from_sidecars(smb_share):
    _url, _user, _pw, local = smb_share
    put(local, "simple.txt", "one")
    put_acl(local, "simple.txt", {"allow": ["group:Finance", "user:alice", "user:bob"], "deny": ["user:bob"]})
    put(local, "ntfs/export.txt", "two")
    put_acl(
        local,
        "ntfs/export.txt",
        {
            "aces": [
                {"principal": "CORP\\Legal", "kind": "group", "type": "allow", "rights": ["ReadAndExecute"]},
                {"principal": "eve", "kind": "user", "type": "deny", "rights": ["Read"]},
            ]
        },
    )
    put(local, "broken.txt", "three")
    put(local, "broken.txt.acl.json", "{not json")
    src = source(smb_share)
    entries = {e.path: e for e in src.list()}
    assert src.access(entries["simple.txt"]) == (["group:finance", "user:alice"], ["user:bob"])
    assert src.access(entries["ntfs/export.txt"]) == (["group:legal"], ["user:eve"])  # CORP\Legal: canonical
    with pytest.raises(AccessUnresolved, match="not valid JSON"):
        src.access(entries["broken.txt"])
    # A fresh instance (as in a later DAG task) resolves access without listing first.
    assert source(smb_share).access(entries["simple.txt"])[0] == ["group:finance", "user:alice"]


def test_no_sidecar_fails_closed_unless_default_principals(smb_share):
    _url, _user, _pw, local = smb_share
    put(local, "plain.txt", "no sidecar here")
    put(local, "guarded.txt", "with sidecar")
    put_acl(local, "guarded.txt", {"allow": ["user:alice"]})

    strict = source(smb_share)
    entries = {e.path: e for e in strict.list()}
    with pytest.raises(AccessUnresolved, match="no ACL sidecar plain.txt.acl.json"):
        strict.access(entries["plain.txt"])

    lenient = source(smb_share, default_principals=("group:Staff", "everyone"))
    assert lenient.access(entries["plain.txt"]) == (["everyone", "group:staff"], [])
    assert lenient.access(entries["guarded.txt"]) == (["user:alice"], [])  # the sidecar wins

    posix = source(smb_share, acl_mode="posix")
    entry = next(e for e in posix.list() if e.path == "guarded.txt")
    assert entry.acl_fingerprint == "smb|none"
    with pytest.raises(AccessUnresolved, match="no POSIX permissions"):
        posix.access(entry)


def test_unreachable_wrong_password_and_missing_share_are_outages(smb_share, samba_server):
    url, user, password, local = smb_share
    put(local, "doc.txt", "x")
    source(smb_share).check_available()  # a good session is now pooled for this server

    wrong = source(smb_share, password="not-the-password")
    with pytest.raises(SourceUnavailable, match="login failed") as info:
        wrong.check_available()
    assert "nothing was deleted from the index" in str(info.value)
    assert "not-the-password" not in str(info.value)
    with pytest.raises(SourceUnavailable):
        list(wrong.list())

    base = url.rsplit("/", 2)[0]  # smb://127.0.0.1:<port>
    for bad_url, what in (
        (f"{base}/nosuchshare", "cannot be listed"),
        (f"{url}/no/such/folder", "cannot be listed"),
        (f"{url}/doc.txt", "cannot be listed"),  # a file, not a folder
    ):
        with pytest.raises(SourceUnavailable, match=what) as info:
            SmbFileShare("smbtest", bad_url, username=user, password=password).check_available()
        assert "nothing was deleted from the index" in str(info.value)

    closed_port = samba_server.port + 1
    while port_open(closed_port):
        closed_port += 1
    down = SmbFileShare("smbtest", f"smb://127.0.0.1:{closed_port}/docs", username=user, password=password)
    with pytest.raises(SourceUnavailable, match="cannot connect"):
        down.check_available()


def test_unlistable_subfolder_is_an_outage_not_a_deletion(smb_share, samba_server):
    if samba_server.file_user == "root":
        pytest.skip("the share is accessed as root, which can list any folder")
    _url, _user, _pw, local = smb_share
    put(local, "ok/a.txt", "a")
    put(local, "locked/b.txt", "b")
    src = source(smb_share)
    assert {e.path for e in src.list()} == {"ok/a.txt", "locked/b.txt"}
    (local / "locked").chmod(0)
    (local / "ok/a.txt").chmod(0)
    try:
        with pytest.raises(SourceUnavailable, match="cannot list locked/") as info:
            list(src.list())
        assert "nothing was deleted from the index" in str(info.value)
        with pytest.raises(PermissionError, match="access denied"):  # a read error, not a parse error
            src.read("ok/a.txt")
    finally:
        (local / "locked").chmod(0o755)
        (local / "ok/a.txt").chmod(0o644)


def test_modified_file_and_sidecar_change_the_listing(smb_share):
    _url, _user, _pw, local = smb_share
    doc = put(local, "report.txt", "version one", mtime_s=1_700_000_000)
    src = source(smb_share)
    (before,) = src.list()
    assert (before.size, before.mtime_ns, before.acl_fingerprint) == (11, 1_700_000_000 * ONE_SECOND, "smb|none")

    put(local, "report.txt", "version two, longer", mtime_s=1_700_000_100)
    (after,) = src.list()
    assert after.size == doc.stat().st_size == 19
    assert after.mtime_ns == 1_700_000_100 * ONE_SECOND

    put_acl(local, "report.txt", {"allow": ["user:alice"]})
    (with_acl,) = src.list()
    assert with_acl.acl_fingerprint != "smb|none"
    put_acl(local, "report.txt", {"allow": ["user:alice", "user:bob"]})
    (changed_acl,) = src.list()
    assert changed_acl.acl_fingerprint != with_acl.acl_fingerprint
    assert (changed_acl.size, changed_acl.mtime_ns) == (after.size, after.mtime_ns)


def test_url_parsing_and_describe_never_shows_the_password():
    src = SmbFileShare("hr", "smb://files.corp.example/HR%20Docs/policies/2024", username="CORP\\svc", password="s3cret!")
    assert (src.host, src.port, src.share, src.subpath) == ("files.corp.example", 445, "HR Docs", ("policies", "2024"))
    assert "s3cret!" not in src.describe() and "s3cret!" not in repr(src)
    assert "smb://files.corp.example/HR Docs/policies/2024" in src.describe()

    inline = SmbFileShare("x", "smb://bob:hunter2@10.0.0.5:4450/share")
    assert (inline.username, inline.port) == ("bob", 4450)
    assert "hunter2" not in inline.describe() and "hunter2" not in inline.url
    for bad in ("smb://host", "smb://host/share/../other", "http://host/share"):
        with pytest.raises(ValueError):
            SmbFileShare("x", bad)


def test_full_pipeline_over_smb(smb_share, docsync_env, monkeypatch):
    from docsync import index
    from docsync.config import load_settings
    from docsync.pipeline import run_sync

    url, user, password, local = smb_share
    docs = {
        "finance/budget.txt": (
            "The quarterly budget review covers cloud spending, vendor contracts and hiring plans.",
            ["group:finance"],
        ),
        "ops/incidents.md": (
            "# Incident process\n\nOur incident process starts with a page to the on-call engineer.",
            ["group:ops", "user:alice"],
        ),
        "handbook.txt": ("The onboarding checklist includes laptop setup and security training.", ["everyone"]),
    }
    for rel, (text, allow) in docs.items():
        put(local, rel, text + "\n")
        put_acl(local, rel, {"allow": allow})

    monkeypatch.setenv("DOCSYNC_SMB_USERNAME", user)
    monkeypatch.setenv("DOCSYNC_SMB_PASSWORD", password)
    monkeypatch.setenv("DOCSYNC_FILESHARE_ROOT", url)
    monkeypatch.setenv("DOCSYNC_SOURCE_NAME", "smbshare")
    settings = load_settings()
    assert settings.source.fileshare_root == url and settings.home == docsync_env.resolve()

    first = run_sync(settings)
    assert first["indexed"] == len(docs), first
    assert first["quarantined"] == 0
    assert first["chunks_embedded"] > 0

    with index.open_index(settings) as client:
        points = list(index.scroll_all(client, settings.collection()))
    allowed = {p.payload["path"]: p.payload["allowed_principals"] for p in points}
    assert allowed == {rel: sorted(allow) for rel, (_t, allow) in docs.items()}

    second = run_sync(settings)
    assert second["unchanged"] == len(docs), second
    assert second["chunks_embedded"] == 0
    assert second["indexed"] == 0 and second["deleted"] == 0

    # An ACL-only change (the sidecar) updates the payload without re-embedding.
    put_acl(local, "handbook.txt", {"allow": ["group:staff"]})
    third = run_sync(settings)
    assert (third["acl_updated"], third["unchanged"], third["chunks_embedded"]) == (1, len(docs) - 1, 0), third
    with index.open_index(settings) as client:
        points = list(index.scroll_all(client, settings.collection()))
    assert {p.payload["allowed_principals"][0] for p in points if p.payload["path"] == "handbook.txt"} == {"group:staff"}


# --- issue 13: sidecars by content and in any letter case; access and hashes of one entry ----------


def test_sidecar_change_with_same_size_and_mtime_is_detected(smb_share):
    """The reproduced bug: a sidecar replaced with same-size content and its old mtime (`cp -p`,
    `rsync -a`, an SMB client setting timestamps) was no ACL change."""
    _url, _user, _pw, local = smb_share
    put(local, "report.txt", "quarterly report")
    put_acl(local, "report.txt", {"allow": ["group:aaa"]})
    os.utime(local / "report.txt.acl.json", (1_700_000_000, 1_700_000_000))
    src = source(smb_share)
    (before,) = src.list()
    put_acl(local, "report.txt", {"allow": ["group:zzz"]})  # same size
    os.utime(local / "report.txt.acl.json", (1_700_000_000, 1_700_000_000))
    (after,) = src.list()
    assert after.acl_fingerprint != before.acl_fingerprint
    assert src.access(after) == (["group:zzz"], [])


def test_sidecar_suffix_in_any_case_on_smb(smb_share):
    _url, _user, _pw, local = smb_share
    put(local, "doc.txt", "content")
    put(local, "doc.txt.ACL.JSON", json.dumps({"allow": ["group:hr"]}))
    put(local, "two.txt", "content")
    put(local, "two.txt.acl.json", json.dumps({"allow": ["group:hr"]}))
    put(local, "two.txt.Acl.Json", json.dumps({"allow": ["everyone"]}))
    src = source(smb_share)
    entries = {e.path: e for e in src.list()}
    assert set(entries) == {"doc.txt", "two.txt"}  # a sidecar is never a document
    assert src.access(entries["doc.txt"]) == (["group:hr"], [])
    with pytest.raises(AccessUnresolved, match="several ACL sidecars"):
        src.access(entries["two.txt"])


def test_access_of_a_fresh_source_needs_no_listing(smb_share):
    _url, _user, _pw, local = smb_share
    put(local, "a/with.txt", "one")
    put_acl(local, "a/with.txt", {"allow": ["group:Finance"], "deny": ["user:CORP\\bob"]})
    put(local, "a/without.txt", "two")
    put(local, "top.txt", "three")
    put_acl(local, "top.txt", {"allow": ["everyone"]})
    listed_source = source(smb_share, default_principals=("group:Staff",))
    entries = {e.path: e for e in listed_source.list()}
    assert len(entries) == 3
    for entry in entries.values():
        fresh = source(smb_share, default_principals=("group:Staff",))
        assert fresh.access(entry) == listed_source.access(entry), entry.path
    assert listed_source.access(entries["a/with.txt"]) == (["group:finance"], ["user:bob"])
    assert listed_source.access(entries["a/without.txt"]) == (["group:staff"], [])


def test_content_hash_is_streamed_over_smb(smb_share):
    from docsync.errors import DocumentError
    from tests.support.memory import traced_peak

    _url, _user, _pw, local = smb_share
    payload = os.urandom(12 * 2**20 + 3)
    put(local, "big.bin", payload)
    src = source(smb_share)
    src.check_available()
    digest, peak = traced_peak(lambda: src.content_hash("big.bin"))
    assert digest == hashlib.sha256(payload).hexdigest()
    assert peak < 8 * 2**20, peak
    with pytest.raises(DocumentError) as info:
        src.content_hash("gone.bin")
    assert info.value.failure.stage == "read" and "gone.bin" in info.value.failure.reason
