"""docsync.sources (local file share, ACL sidecars, POSIX principals) on a real directory."""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
from typing import TYPE_CHECKING

import pytest

from docsync.sources import AccessUnresolved, SourceEntry, SourceUnavailable, open_source
from docsync.sources.acl import SIDECAR_SUFFIX, normalize_principal, parse_sidecar
from docsync.sources.base import matches
from docsync.sources.fileshare import LocalFileShare
from docsync.sources.posix import Node, effective_access

if TYPE_CHECKING:
    from pathlib import Path

DEFAULT_EXCLUDE = ("**/.*", "**/~$*", "**/*.tmp")
OWNER = f"user:{pwd.getpwuid(os.getuid()).pw_name}"
GROUP = f"group:{grp.getgrgid(os.getgid()).gr_name}"


def write(root: Path, rel: str, data: str | bytes = "content", mode: int | None = None) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    if mode is not None:
        path.chmod(mode)
    return path


def sidecar(doc: Path, body: dict | str) -> Path:
    path = doc.with_name(doc.name + SIDECAR_SUFFIX)
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


def listing(source) -> dict[str, SourceEntry]:
    return {e.path: e for e in source.list()}


@pytest.fixture()
def tree(tmp_path) -> Path:
    root = tmp_path / "share"
    write(root, "top.txt")
    write(root, "finance/report.pdf", b"%PDF-1.4 fake")
    write(root, "finance/q1/deep/notes.md")
    sidecar(write(root, "hr/handbook.docx"), {"allow": ["group:hr"]})
    write(root, "hr/.hidden.txt")
    write(root, ".git/config")
    write(root, "drafts/~$lock.docx")
    write(root, "drafts/scratch.tmp")
    write(root, "orphan.pdf.acl.json", json.dumps({"allow": ["everyone"]}))  # sidecar without document
    return root


# --- listing ----------------------------------------------------------------------------


def test_listing_recurses_and_skips_sidecars(tree):
    entries = listing(LocalFileShare("share", tree, exclude=DEFAULT_EXCLUDE))
    assert set(entries) == {"top.txt", "finance/report.pdf", "finance/q1/deep/notes.md", "hr/handbook.docx"}
    assert not any(p.endswith(SIDECAR_SUFFIX) for p in entries)
    entry = entries["finance/report.pdf"]
    st = (tree / "finance/report.pdf").stat()
    assert (entry.size, entry.mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_listing_without_excludes_includes_hidden_files(tree):
    entries = listing(LocalFileShare("share", tree))
    assert {"hr/.hidden.txt", ".git/config", "drafts/~$lock.docx", "drafts/scratch.tmp"} <= set(entries)
    assert not any(p.endswith(SIDECAR_SUFFIX) for p in entries)


def test_include_and_exclude_globs(tree):
    source = LocalFileShare("share", tree, include=("**/*.pdf", "**/*.md"), exclude=("finance/q1/**",))
    assert set(listing(source)) == {"finance/report.pdf"}
    source = LocalFileShare("share", tree, include=("finance/**",), exclude=DEFAULT_EXCLUDE)
    assert set(listing(source)) == {"finance/report.pdf", "finance/q1/deep/notes.md"}
    source = LocalFileShare("share", tree, include=("*.txt",), exclude=DEFAULT_EXCLUDE)
    assert set(listing(source)) == {"top.txt"}  # fnmatch: '*' also crosses '/', hidden excluded


def test_matches_top_level_and_nested():
    assert matches("a.pdf", ("**/*.pdf",), ())
    assert matches("x/y/a.pdf", ("**/*.pdf",), ())
    assert not matches("a.pdf", ("**/*.docx",), ())
    assert not matches(".env", ("**/*",), DEFAULT_EXCLUDE)
    assert not matches("x/.cache/a.pdf", ("**/*",), DEFAULT_EXCLUDE)
    assert not matches("x/~$draft.docx", ("**/*",), DEFAULT_EXCLUDE)
    assert matches("x/report.tmp.pdf", ("**/*",), DEFAULT_EXCLUDE)


def test_symlinks_are_not_followed(tree, tmp_path):
    outside = write(tmp_path, "outside/secret.txt")
    (tree / "link.txt").symlink_to(outside)
    (tree / "linkdir").symlink_to(outside.parent, target_is_directory=True)
    entries = listing(LocalFileShare("share", tree))
    assert "link.txt" not in entries and not any(p.startswith("linkdir") for p in entries)


def test_read_and_path_escaping_root(tree, tmp_path):
    write(tmp_path, "secret.txt", "top secret")
    source = LocalFileShare("share", tree)
    assert source.read("finance/report.pdf") == b"%PDF-1.4 fake"
    for bad in ("../secret.txt", "finance/../../secret.txt", str(tmp_path / "secret.txt")):
        with pytest.raises(AccessUnresolved, match="escapes the source root"):
            source.read(bad)
    with pytest.raises(AccessUnresolved, match="escapes"):
        source.access(SourceEntry("../secret.txt", 1, 1, ""))
    (tree / "escape.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(AccessUnresolved):
        source.read("escape.txt")


def test_missing_root_is_source_unavailable(tmp_path):
    source = LocalFileShare("share", tmp_path / "not-mounted")
    with pytest.raises(SourceUnavailable, match="missing"):
        source.check_available()
    with pytest.raises(SourceUnavailable):
        list(source.list())
    write(tmp_path, "a-file")
    with pytest.raises(SourceUnavailable):
        LocalFileShare("share", tmp_path / "a-file").check_available()


def test_available_root(tree):
    LocalFileShare("share", tree).check_available()


def test_open_source_uses_settings(settings, tree):
    source = open_source(settings.with_overrides(allowed_roots=(str(tree),)), str(tree), name="docs")
    assert isinstance(source, LocalFileShare)
    assert source.name == "docs"
    assert source.exclude == settings.source.exclude_globs
    assert "hr/.hidden.txt" not in listing(source)


# --- sidecars -----------------------------------------------------------------------------


def test_sidecar_allow_deny():
    allowed, denied = parse_sidecar(json.dumps(
        {"allow": ["Group:Finance", "user:alice", " user:bob "], "deny": ["user:bob"]}).encode())
    assert allowed == ["group:finance", "user:alice"]
    assert denied == ["user:bob"]
    assert parse_sidecar(b'{"allow": ["everyone"]}') == (["everyone"], [])


def test_sidecar_ntfs_aces():
    raw = json.dumps({"aces": [
        {"principal": "CORP\\Finance", "kind": "group", "type": "allow", "rights": ["Read"]},
        {"principal": "CORP\\alice", "kind": "user", "type": "allow", "rights": ["FullControl"]},
        {"principal": "CORP\\bob", "kind": "user", "type": "allow", "rights": ["ReadAndExecute"]},
        {"principal": "CORP\\bob", "kind": "user", "type": "deny", "rights": ["Read"]},
        {"principal": "CORP\\carol", "kind": "user", "type": "allow", "rights": ["Modify"]},
        {"principal": "CORP\\auditors", "kind": "group", "type": "allow", "rights": ["Synchronize"]},
        {"principal": "Everyone", "type": "allow", "rights": ["Read"]},
        {"principal": "S-1-1-0", "type": "allow"},
    ]}).encode()
    allowed, denied = parse_sidecar(raw)
    # DOMAIN\name is canonicalised to the bare name (docsync.principals): it meets user:bob of a query.
    assert allowed == ["everyone", "group:finance", "user:alice", "user:carol"]
    assert denied == ["user:bob"]


def test_write_only_ace_does_not_grant_read():
    raw = json.dumps({"aces": [
        {"principal": "CORP\\Finance", "kind": "group", "type": "allow", "rights": ["Read"]},
        {"principal": "CORP\\Submitters", "kind": "group", "type": "allow", "rights": ["Write"]},
    ]}).encode()
    allowed, _denied = parse_sidecar(raw)
    assert allowed == ["group:finance"]


def test_ace_rights_as_string_is_not_silently_ignored():
    raw = json.dumps({"aces": [
        {"principal": "CORP\\Finance", "kind": "group", "type": "allow", "rights": ["Read"]},
        {"principal": "CORP\\mallory", "kind": "user", "type": "deny", "rights": "FullControl"},
    ]}).encode()
    try:
        _allowed, denied = parse_sidecar(raw)
    except AccessUnresolved:
        return  # rejecting the sidecar is also correct (fail closed)
    assert "user:mallory" in denied


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "not valid json"),
        (b"\xff\xfe{}", "not valid json"),
        (b"[]", "json object"),
        (b'{"allow": []}', "no one"),
        (b"{}", "no one"),
        (b'{"allow": ["user:bob"], "deny": ["user:bob"]}', "no one"),
        (b'{"allow": "group:finance"}', "must be a list"),
        (b'{"allow": ["finance"]}', "invalid principal"),
        (b'{"allow": ["role:admin"]}', "invalid principal"),
        (b'{"allow": ["user:"]}', "invalid principal"),
        (b'{"aces": []}', "no one"),
        (b'{"aces": [{"kind": "user", "rights": ["read"]}]}', "without principal"),
        (b'{"aces": [{"principal": "x", "rights": ["list"]}]}', "no one"),
    ],
)
def test_invalid_sidecars_are_access_unresolved(raw, reason):
    with pytest.raises(AccessUnresolved) as info:
        parse_sidecar(raw)
    assert reason in str(info.value).lower()


def test_normalize_principal():
    assert normalize_principal(" User:Alice ") == "user:alice"
    assert normalize_principal("EVERYONE") == "everyone"
    with pytest.raises(AccessUnresolved):
        normalize_principal("group: ")


def test_access_prefers_sidecar(tree):
    source = LocalFileShare("share", tree)
    entries = listing(source)
    assert source.access(entries["hr/handbook.docx"]) == (["group:hr"], [])


@pytest.mark.parametrize(
    ("body", "match"),
    [("{broken", "(?i)not valid json"), ({"allow": []}, "no one")],
)
def test_access_with_bad_sidecar_is_unresolved(tmp_path, body, match):
    doc = write(tmp_path / "share", "doc.txt", mode=0o644)
    sidecar(doc, body)
    source = LocalFileShare("share", tmp_path / "share")
    entry = listing(source)["doc.txt"]
    with pytest.raises(AccessUnresolved, match=match):
        source.access(entry)  # never falls back to the (world-readable) POSIX mode


def test_acl_modes(tmp_path):
    root = tmp_path / "share"
    doc = write(root, "with.txt", mode=0o640)
    sidecar(doc, {"allow": ["group:finance"]})
    write(root, "without.txt", mode=0o640)

    posix = LocalFileShare("s", root, acl_mode="posix")
    entries = listing(posix)
    assert posix.access(entries["with.txt"]) == (sorted([OWNER, GROUP]), [])

    strict = LocalFileShare("s", root, acl_mode="sidecar")
    entries = listing(strict)
    assert strict.access(entries["with.txt"]) == (["group:finance"], [])
    with pytest.raises(AccessUnresolved, match="sidecar"):
        strict.access(entries["without.txt"])

    defaults = LocalFileShare("s", root, acl_mode="sidecar", default_principals=("group:staff", "group:all"))
    assert defaults.access(listing(defaults)["without.txt"]) == (["group:all", "group:staff"], [])


# --- POSIX --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (0o600, [OWNER]),
        (0o640, sorted([OWNER, GROUP])),
        (0o644, sorted(["everyone", OWNER, GROUP])),
        (0o004, ["everyone"]),  # denied: the owner and the group (see below)
        (0o200, None),
        (0o000, None),
    ],
)
def test_posix_principals_from_mode(tmp_path, mode, expected):
    write(tmp_path / "share", "doc.txt", mode=mode)
    source = LocalFileShare("share", tmp_path / "share")
    entry = listing(source)["doc.txt"]
    if expected is None:
        with pytest.raises(AccessUnresolved, match="no one"):
            source.access(entry)
    elif mode == 0o004:  # POSIX: the owner and the owning group's members may NOT read it
        assert source.access(entry) == (expected, sorted([OWNER, GROUP]))
    else:
        assert source.access(entry) == (expected, [])


def test_posix_principals_unknown_ids():
    assert effective_access(Node(987_654, 987_655, 0o640), []) == (["group:gid-987655", "user:uid-987654"], [])


# --- fingerprints ---------------------------------------------------------------------------


def _fingerprint(source, rel: str) -> str:
    return listing(source)[rel].acl_fingerprint


def test_acl_fingerprint_changes_with_mode_and_sidecar(tmp_path):
    root = tmp_path / "share"
    doc = write(root, "doc.txt", mode=0o640)
    source = LocalFileShare("share", root)
    base = _fingerprint(source, "doc.txt")
    assert _fingerprint(source, "doc.txt") == base  # stable when nothing changes

    doc.chmod(0o600)
    by_mode = _fingerprint(source, "doc.txt")
    assert by_mode != base

    car = sidecar(doc, {"allow": ["group:finance"]})
    with_sidecar = _fingerprint(source, "doc.txt")
    assert with_sidecar not in (base, by_mode)

    car.write_text(json.dumps({"allow": ["group:finance", "user:alice"]}))
    edited = _fingerprint(source, "doc.txt")
    assert edited != with_sidecar

    car.unlink()
    assert _fingerprint(source, "doc.txt") == by_mode


def test_content_change_does_not_touch_acl_fingerprint(tmp_path):
    root = tmp_path / "share"
    doc = write(root, "doc.txt", "v1", mode=0o644)
    source = LocalFileShare("share", root)
    before = listing(source)["doc.txt"]
    doc.write_text("version two")
    after = listing(source)["doc.txt"]
    assert after.acl_fingerprint == before.acl_fingerprint
    assert (after.size, after.mtime_ns) != (before.size, before.mtime_ns)


def test_acl_fingerprint_changes_for_same_size_sidecar_with_preserved_mtime(tmp_path):
    root = tmp_path / "share"
    doc = write(root, "doc.txt", mode=0o644)
    car = sidecar(doc, {"allow": ["group:aaa"]})
    source = LocalFileShare("share", root)
    before = _fingerprint(source, "doc.txt")
    st = car.stat()
    replacement = tmp_path / "staged.acl.json"
    replacement.write_text(json.dumps({"allow": ["group:zzz"]}))  # same size, other group
    os.utime(replacement, ns=(st.st_atime_ns, st.st_mtime_ns))
    shutil.copy2(replacement, car)  # what `cp -p` / `rsync -a` do
    assert source.access(listing(source)["doc.txt"]) == (["group:zzz"], [])
    assert _fingerprint(source, "doc.txt") != before


def test_demo_corpus_sidecars(demo_corpus):
    root, manifest = demo_corpus
    source = LocalFileShare("demo", root)
    entries = listing(source)
    assert set(entries) == set(manifest["files"])
    for rel, meta in manifest["files"].items():
        if meta["principals"]:
            assert source.access(entries[rel]) == (sorted(meta["principals"]), []), rel
        else:
            with pytest.raises(AccessUnresolved):
                source.access(entries[rel])


# --- access of one entry, content hashes ------------------------------------------------------


def test_access_of_a_fresh_source_needs_no_listing(tmp_path):
    """A later task opens the source anew and asks for one entry's access: no list() first."""
    root = tmp_path / "share"
    sidecar(write(root, "hr/handbook.docx", mode=0o600), {"allow": ["group:hr"], "deny": ["user:bob"]})
    write(root, "open/readme.txt", mode=0o644)
    write(root, "private/notes.txt", mode=0o644)
    (root / "private").chmod(0o700)
    listed_source = LocalFileShare("share", root)
    entries = listing(listed_source)
    assert len(entries) == 3
    for entry in entries.values():
        assert LocalFileShare("share", root).access(entry) == listed_source.access(entry), entry.path


def test_access_reflects_the_current_permissions_not_a_listing_cache(tmp_path):
    doc = write(tmp_path / "share", "doc.txt", mode=0o644)
    source = LocalFileShare("share", tmp_path / "share")
    entry = listing(source)["doc.txt"]
    doc.chmod(0o600)  # revoked after the listing, before access is applied
    assert source.access(entry) == ([OWNER], [])


def test_content_hash_is_streamed(tmp_path):
    import hashlib

    from tests.support.memory import traced_peak

    root = tmp_path / "share"
    write(root, "small.txt", "hello")
    big = root / "big.bin"
    with big.open("wb") as fh:  # 256 MiB, sparse: cheap on disk, costly if read at once
        fh.truncate(256 * 2**20)
        fh.seek(0, os.SEEK_END)
        fh.write(b"tail")
    source = LocalFileShare("share", root)
    assert source.content_hash("small.txt") == hashlib.sha256(b"hello").hexdigest()
    expected = hashlib.sha256()
    with big.open("rb") as fh:
        while block := fh.read(2**20):
            expected.update(block)
    digest, peak = traced_peak(lambda: source.content_hash("big.bin"))
    assert digest == expected.hexdigest()
    assert peak < 8 * 2**20, peak


def test_content_hash_problems_are_document_errors(tmp_path):
    from docsync.errors import DocumentError

    root = tmp_path / "share"
    write(root, "doc.txt")
    os.mkfifo(root / "pipe.txt")
    source = LocalFileShare("share", root)
    for path, stage in (("gone.txt", "read"), ("pipe.txt", "read"), ("../outside.txt", "access")):
        with pytest.raises(DocumentError) as info:  # no hang on the FIFO
            source.content_hash(path)
        assert info.value.failure.stage == stage and path in info.value.failure.reason + str(info.value), path
