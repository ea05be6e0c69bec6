"""The SharePoint export source: Graph JSON and library CSV formats, the principal mapping,
change signals, and bad exports (whole-manifest outages vs per-item quarantine), plus the
small pipeline hooks it relies on (per-document source errors, version tags)."""

from __future__ import annotations

import base64
import json
import os
import random
from datetime import UTC
from pathlib import Path

import pytest

from docsync.config import load_settings
from docsync.sources import AccessUnresolved, SourceRefused, SourceUnavailable, open_source
from docsync.sources.sharepoint import ExportItemError, SharePointExport, quick_xor_hash
from docsync.sources.sharepoint.acl import graph_principals
from tests.support.sharepoint_export import (
    DRIVE,
    GraphExport,
    grant,
    group,
    group_principal,
    link,
    site_group,
    site_group_principal,
    user,
    write_csv_export,
)

ROOT_PERMS = [
    grant(["owner"], site_group("HQ Owners", "3")),
    grant(["write"], site_group("HQ Members", "5")),
    grant(["read"], site_group("HQ Visitors", "4")),
]
# Groups are keyed by id (issue 13): the site groups 3, 5 and 4 of the library's site.
ROOT_PRINCIPALS = sorted(site_group_principal(sid) for sid in ("3", "5", "4"))
FINANCE_PERMS = [grant(["read"], group("Finance Team")), grant(["owner"], site_group("HQ Owners"))]
FINANCE_PRINCIPALS = sorted([group_principal("Finance Team"), site_group_principal("3")])


def entries(source) -> dict:
    return {e.path: e for e in source.list()}


@pytest.fixture()
def export(tmp_path) -> GraphExport:
    """A small library: inheritance from the root, a folder with broken inheritance, links."""
    exp = GraphExport(tmp_path / "export")
    exp.set_root_permissions(ROOT_PERMS)
    exp.folder("Finance", FINANCE_PERMS)
    exp.folder("Finance/Reports", FINANCE_PERMS)  # Graph lists a folder's effective (inherited) permissions
    exp.folder("General", ROOT_PERMS)
    exp.file("Finance/Reports/q1.txt", b"Quarterly numbers.\n")  # no permissions: inherits its folder
    exp.file("Finance/payroll.txt", b"Payroll.\n", [grant(["read"], user("CFO@Contoso.com"))])  # unique
    exp.file("General/welcome.md", b"# Welcome\n")  # inherits the library root
    exp.file("General/press.txt", b"Press.\n", ROOT_PERMS + [link("anonymous")])
    exp.file("General/handbook.txt", b"Handbook.\n", ROOT_PERMS[:1] + [link("organization", ("write",))])
    exp.file(
        "Projects/plan.txt",
        b"Plan.\n",
        [link("users", identities=[user("bob@contoso.com"), {"siteUser": {"loginName": "i:0#.f|membership|alice@contoso.com"}}])],
    )
    exp.write()
    return exp


# --- QuickXorHash ----------------------------------------------------------------------------


def _reference_quick_xor(data: bytes) -> str:
    """Bit-by-bit transcription of Microsoft's description, to check the vectorized version."""
    register = bytearray(20)
    for k, byte in enumerate(data):
        for bit in range(8):
            if byte >> bit & 1:
                pos = (k * 11 + bit) % 160
                register[pos // 8] ^= 1 << (pos % 8)
    for i, byte in enumerate(len(data).to_bytes(8, "little")):
        register[12 + i] ^= byte
    return base64.b64encode(bytes(register)).decode()


def test_quick_xor_hash_known_vectors_and_reference():
    vectors = {  # published test vectors (rclone's quickxorhash tests)
        "": "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "Sg==": "SgAAAAAAAAAAAAAAAQAAAAAAAAA=",
        "tbQ=": "taAFAAAAAAAAAAAAAgAAAAAAAAA=",
        "2fuxhBJXtpWFe8dOfdGeHw==": "O9tHLAghgSvYohKFyMMxnNCHaHg=",
    }
    for data, expected in vectors.items():
        assert quick_xor_hash(base64.b64decode(data)) == expected
    rng = random.Random(7)
    for length in (159, 160, 161, 333, 1000):
        data = bytes(rng.randrange(256) for _ in range(length))
        assert quick_xor_hash(data) == _reference_quick_xor(data), length


# --- Graph format: listing, principals, change signals -----------------------------------------


def test_graph_export_paths_principals_and_change_signals(export):
    source = SharePointExport("sharepoint", export.root)
    source.check_available()
    listed = entries(source)
    assert set(listed) == {
        "Finance/Reports/q1.txt", "Finance/payroll.txt", "General/welcome.md", "General/press.txt",
        "General/handbook.txt", "Projects/plan.txt",
    }
    q1 = listed["Finance/Reports/q1.txt"]
    assert q1.size == len(b"Quarterly numbers.\n")
    assert q1.mtime_ns == 1767607200 * 10**9  # 2026-01-05T10:00:00Z
    assert q1.version_tag == "qxh:" + quick_xor_hash(b"Quarterly numbers.\n")
    access = {p: source.access(e) for p, e in listed.items()}
    assert access["Finance/Reports/q1.txt"] == (FINANCE_PRINCIPALS, [])
    assert access["Finance/payroll.txt"] == (["user:cfo@contoso.com"], [])
    assert access["General/welcome.md"] == (ROOT_PRINCIPALS, [])
    assert access["General/press.txt"][0] == sorted(ROOT_PRINCIPALS + ["everyone"])
    assert access["General/handbook.txt"][0] == sorted([site_group_principal("3"), "group:org:contoso.onmicrosoft.com"])
    assert access["Projects/plan.txt"][0] == ["user:alice@contoso.com", "user:bob@contoso.com"]
    assert source.read("Finance/Reports/q1.txt") == b"Quarterly numbers.\n"


def test_permission_changes_move_only_the_acl_fingerprint(export):
    before = entries(SharePointExport("sp", export.root))
    payroll = export.items[next(k for k, v in export.items.items() if v["name"] == "payroll.txt")]
    payroll["eTag"] = '"{changed},2"'  # metadata version changes, content version (cTag, hash) does not
    payroll["permissions"] = list(reversed(payroll["permissions"] + [grant(["read"], user("ceo@contoso.com"))]))
    # A role change that does not change who can read is no change for the index.
    press = next(v for v in export.items.values() if v["name"] == "press.txt")
    press["permissions"][2]["roles"] = ["write"]
    export.write()
    after = entries(SharePointExport("sp", export.root))
    old, new = before["Finance/payroll.txt"], after["Finance/payroll.txt"]
    assert (new.size, new.mtime_ns, new.version_tag) == (old.size, old.mtime_ns, old.version_tag)
    assert new.acl_fingerprint != old.acl_fingerprint
    assert after["General/press.txt"] == before["General/press.txt"]
    unchanged = set(before) - {"Finance/payroll.txt"}
    assert all(after[p] == before[p] for p in unchanged)


def test_deleted_items_folders_and_parent_id_walks(export):
    export.file("Projects/old.txt", b"Old.\n", ROOT_PERMS)["deleted"] = {"state": "deleted"}
    # A delta-style item: no parentReference.path, only the parent's id (folders in the manifest).
    folder = export.folder("Projects/Q3 Plans", ROOT_PERMS)
    folder["parentReference"] = {"driveId": DRIVE, "id": export.items["root"]["id"]}
    folder["name"] = "Q3 Plans"
    item = export.file("Q3 Plans/kickoff.txt", b"Kickoff.\n", write=False)
    item["parentReference"] = {"id": folder["id"]}
    (export.root / "files" / "Q3 Plans").mkdir(parents=True)
    (export.root / "files" / "Q3 Plans" / "kickoff.txt").write_bytes(b"Kickoff.\n")
    # Percent-encoded parent paths, as Graph returns them.
    spaced = export.file("Board Meetings/minutes 1.txt", b"Minutes.\n", ROOT_PERMS)
    spaced["parentReference"]["path"] = spaced["parentReference"]["path"].replace(" ", "%20")
    export.write()
    source = SharePointExport("sp", export.root)
    listed = entries(source)
    assert "Projects/old.txt" not in listed
    assert not any(p.endswith("Q3 Plans") or p == "Finance/Reports" for p in listed)
    assert source.read("Q3 Plans/kickoff.txt") == b"Kickoff.\n"
    assert source.access(listed["Q3 Plans/kickoff.txt"])[0] == ROOT_PRINCIPALS  # inherited by parent id
    assert source.read("Board Meetings/minutes 1.txt") == b"Minutes.\n"


def test_graph_principal_mapping_edge_cases():
    everyone = {"siteUser": {"displayName": "Everyone", "loginName": "c:0(.s|true"}}
    org = {"siteUser": {"displayName": "Everyone except external users", "loginName": "c:0-.f|rolemanager|spo-grid-all-users/abc"}}
    perms = [
        grant(["read"], everyone),
        grant(["read"], org),
        grant(["restrictedView"], user("viewer@contoso.com")),  # not read-capable
        link("existingAccess"),  # grants nothing new
        link("anonymous", hasPassword=True),  # password links: fail closed
        link("anonymous", expirationDateTime="2025-12-31T00:00:00Z"),  # expired before the export
        grant(["read"], {"application": {"id": "app", "displayName": "Backup"}}),  # not a person
        {"roles": ["read"], "grantedTo": {"user": {"email": "legacy@contoso.com"}}},  # legacy field
    ]
    from datetime import datetime

    exported = datetime(2026, 1, 10, tzinfo=UTC)
    assert graph_principals(perms, "contoso", exported) == ["everyone", "group:org:contoso", "user:legacy@contoso.com"]
    assert graph_principals([link("organization")]) == ["group:org:organization"]  # no tenant in the manifest
    assert graph_principals({"value": [grant(["read"], group("Sales"))]}) == [group_principal("Sales")]  # raw /permissions
    for bad, why in [
        ([], "empty permission list"),
        ("everyone", "not a list"),
        ([grant(["read"], {"user": {"displayName": "Someone"}})], "1 unknown identity"),
        ([grant(["restrictedView"], group("Sales"))], "1 no read role"),
        ([link("strange")], "1 unknown shape"),
        ([{"roles": ["read"]}], "1 unknown shape"),
    ]:
        with pytest.raises(AccessUnresolved, match=why):
            graph_principals(bad)


def test_unresolved_permissions_are_per_item(export):
    export.file("Misc/nobody.txt", b"Nobody.\n", [grant(["read"], {"user": {"displayName": "Former employee"}})])
    export.file("Misc/empty.txt", b"Empty.\n", [])
    export.write()
    source = SharePointExport("sp", export.root)
    listed = entries(source)
    for path, why in [("Misc/nobody.txt", "unknown identity"), ("Misc/empty.txt", "empty permission list")]:
        assert source.read(path)  # the content is fine; only access is unknown
        with pytest.raises(AccessUnresolved, match=why):
            source.access(listed[path])
        assert listed[path].acl_fingerprint.startswith("sp:unresolved:")
    # No permissions on the item's folder: unresolved, never the root's (or "everyone").
    next(v for v in export.items.values() if v["name"] == "General").pop("permissions")
    export.write()
    source = SharePointExport("sp", export.root)
    with pytest.raises(AccessUnresolved, match="has none either"):
        source.access(entries(source)["General/welcome.md"])


# --- bad exports ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content,match",
    [
        (b'{"items": [', "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"files": []}', "'items'"),
        (b'{"export_type": "delta", "items": []}', "delta export"),
        (b'{"export_type": "weekly", "items": []}', "unknown export_type"),
        (b'{"value": [], "@odata.nextLink": "https://graph.microsoft.com/v1.0/next"}', "paged"),
    ],
)
def test_unusable_manifest_is_an_outage(tmp_path, content, match):
    (tmp_path / "files").mkdir()
    (tmp_path / "manifest.json").write_bytes(content)
    with pytest.raises(SourceRefused, match=match) as info:  # its content: retrying cannot help
        SharePointExport("sp", tmp_path).check_available()
    assert "Nothing was deleted" in str(info.value)


def test_unusable_export_folder_is_an_outage(tmp_path, export):
    with pytest.raises(SourceUnavailable, match="missing") as info:
        SharePointExport("sp", tmp_path / "nope").check_available()
    assert not isinstance(info.value, SourceRefused)  # an outage: the DAG retries it
    with pytest.raises(SourceUnavailable, match="neither"):
        SharePointExport("sp", tmp_path).check_available()
    (export.root / "library.csv").write_text("Name\n")
    with pytest.raises(SourceUnavailable, match="exactly one"):
        SharePointExport("sp", export.root).check_available()
    (export.root / "library.csv").unlink()
    os.rename(export.root / "files", tmp_path / "files-elsewhere")
    with pytest.raises(SourceUnavailable, match="no files/ folder"):
        SharePointExport("sp", export.root).check_available()
    # A manifest that is a symbolic link out of the export is not read.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text('{"items": []}')
    (export.root / "manifest.json").unlink()
    (export.root / "manifest.json").symlink_to(outside / "manifest.json")
    with pytest.raises(SourceUnavailable, match="outside the export"):
        SharePointExport("sp", export.root).check_available()


def test_bad_entries_are_listed_and_quarantined_alone(export, tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_bytes(b"TOP SECRET outside the export\n")
    export.file("Misc/missing.txt", b"Never downloaded.\n", ROOT_PERMS, write=False)
    escape = export.file("x.txt", b"TOP SECRET outside the export\n", ROOT_PERMS, item_id="ESCAPE1", write=False)
    escape["parentReference"]["path"] = "/drives/x/root:/../../outside"
    escape["name"] = "secret.txt"
    export.file("Misc/no-name.txt", b"x\n", ROOT_PERMS, item_id="NONAME1")["name"] = ""
    export.file("Misc/no-date.txt", b"Dateless.\n", ROOT_PERMS).pop("lastModifiedDateTime")
    export.file("Misc/short.txt", b"Truncated download.\n", ROOT_PERMS)["size"] = 999
    export.file("Misc/stale.txt", b"Old content!\n", ROOT_PERMS)["file"]["hashes"]["quickXorHash"] = quick_xor_hash(b"New content!\n")
    export.file("Misc/dup-a.txt", b"A.\n", ROOT_PERMS, item_id="DUP1")
    export.file("Misc/dup-b.txt", b"B.\n", ROOT_PERMS, item_id="DUP2")["id"] = "DUP1"
    export.file("Misc/link.txt", b"x\n", ROOT_PERMS)
    (export.root / "files" / "Misc" / "link.txt").unlink()
    (export.root / "files" / "Misc" / "link.txt").symlink_to(secret)
    export.file("Misc/folderish.txt", b"x\n", ROOT_PERMS).pop("file")
    export.items["junk"] = "not an item"
    export.write()

    source = SharePointExport("sp", export.root)
    listed = entries(source)
    assert "General/welcome.md" in listed  # the good items are unaffected
    expected = {
        "Misc/missing.txt": ("read", "no file files/Misc/missing.txt"),
        "_invalid/ESCAPE1": ("source", "not a plain library path"),
        "_invalid/NONAME1": ("source", "without a 'name'"),
        "Misc/no-date.txt": ("source", "lastModifiedDateTime"),
        "Misc/short.txt": ("read", "incomplete download"),
        "Misc/stale.txt": ("read", "quickXorHash"),
        "Misc/dup-a.txt": ("source", "appears 2 times"),
        "Misc/dup-b.txt": ("source", "appears 2 times"),
        "Misc/link.txt": ("read", "outside the export folder"),
        "Misc/folderish.txt": ("source", "neither a 'file' nor a 'folder'"),
    }
    junk = [p for p in listed if p.startswith("_invalid/items[")]
    assert len(junk) == 1
    expected[junk[0]] = ("source", "not a JSON object")
    assert set(expected) <= set(listed)
    for path, (stage, why) in expected.items():
        with pytest.raises(ExportItemError) as info:
            source.read(path)
        assert info.value.failure.stage == stage, path
        assert why in info.value.failure.reason and path in info.value.failure.reason, info.value.failure.reason
        if stage == "source":  # an invalid entry has no trustworthy permissions either
            with pytest.raises(AccessUnresolved):
                source.access(listed[path])
        else:
            assert source.access(listed[path])[0] == ROOT_PRINCIPALS
    with pytest.raises(FileNotFoundError):
        source.read("../outside/secret.txt")  # only manifest entries are ever read


def test_duplicate_paths_and_fifo(export):
    export.file("General/welcome.md", b"# Welcome\n", item_id="OTHER")  # a second entry, same path
    export.write()
    source = SharePointExport("sp", export.root)
    with pytest.raises(ExportItemError, match="several manifest entries"):
        source.read("General/welcome.md")
    export.file("Misc/pipe.txt", b"", ROOT_PERMS, write=False)
    (export.root / "files" / "Misc").mkdir(parents=True)
    os.mkfifo(export.root / "files" / "Misc" / "pipe.txt")
    export.write()
    with pytest.raises(ExportItemError, match="not a regular file"):  # and no hang
        SharePointExport("sp", export.root).read("Misc/pipe.txt")


# --- CSV format -----------------------------------------------------------------------------------


def csv_row(name: str, folder: str, principals: str, modified: str = "1/5/2026 10:00 AM", **extra) -> dict:
    return {"Name": name, "Modified": modified, "Modified By": "Exporter", "Item Type": "Item",
            "Path": f"sites/hq/Shared Documents{'/' + folder if folder else ''}", "Read Principals": principals} | extra


def test_csv_export(tmp_path):
    rows = [
        {"Name": "Finance", "Item Type": "Folder", "Path": "sites/hq/Shared Documents", "Modified": "1/1/2026 9:00 AM"},
        csv_row("q1.txt", "Finance", "group:Finance Team; user:CFO@contoso.com", **{"Denied Principals": "user:cfo@contoso.com"}),
        csv_row("welcome.md", "", "Everyone", modified="2026-01-05T10:00:00Z"),
        csv_row("bad-principal.txt", "", "Finance Team"),
        csv_row("nobody.txt", "", ""),
        csv_row("bad-date.txt", "", "everyone", modified="yesterday"),
        csv_row("missing.txt", "", "everyone"),
    ]
    files = {"Finance/q1.txt": b"Q1.\n", "welcome.md": b"# Hi\n", "bad-principal.txt": b"x\n", "nobody.txt": b"x\n", "bad-date.txt": b"x\n"}
    root = write_csv_export(tmp_path / "csv", rows, files)
    source = SharePointExport("sp", root)
    listed = entries(source)
    assert set(listed) == {"Finance/q1.txt", "welcome.md", "bad-principal.txt", "nobody.txt", "bad-date.txt", "missing.txt"}
    q1 = listed["Finance/q1.txt"]
    assert q1.size == 4 and q1.mtime_ns == 1767607200 * 10**9
    assert q1.version_tag.startswith("file:4:")  # no Version column: the download's stat
    assert source.access(q1) == (["group:finance team"], ["user:cfo@contoso.com"])
    assert source.access(listed["welcome.md"]) == (["everyone"], [])
    assert source.read("Finance/q1.txt") == b"Q1.\n"
    with pytest.raises(AccessUnresolved, match="Read Principals.*invalid principal"):
        source.access(listed["bad-principal.txt"])
    with pytest.raises(AccessUnresolved, match="no one"):
        source.access(listed["nobody.txt"])
    with pytest.raises(ExportItemError, match="line 7: Modified 'yesterday'"):
        source.read("bad-date.txt")
    with pytest.raises(ExportItemError) as info:
        source.read("missing.txt")
    assert info.value.failure.stage == "read"


def test_csv_urls_library_root_version_and_bad_csv(tmp_path):
    columns = ["Name", "Modified", "Item Type", "URL", "Read Principals", "Version"]
    rows = [{"Name": "a.txt", "Modified": "2026-01-05 10:00", "Item Type": "Item", "Version": "3.0", "Read Principals": "everyone",
             "URL": "https://contoso.sharepoint.com/sites/hq/Shared%20Documents/Reports/a.txt"}]
    root = write_csv_export(tmp_path / "csv", rows, {"Reports/a.txt": b"A.\n"}, columns)
    # One file, no folder rows: the common prefix would swallow "Reports"; export.json says where the library is.
    (root / "export.json").write_text(json.dumps({"library_root": "sites/hq/Shared Documents"}))
    listed = entries(SharePointExport("sp", root))
    assert list(listed) == ["Reports/a.txt"] and listed["Reports/a.txt"].version_tag == "v:3.0"
    (root / "export.json").write_text(json.dumps({"export_type": "delta"}))
    with pytest.raises(SourceUnavailable, match="delta"):
        SharePointExport("sp", root).check_available()
    (root / "export.json").unlink()
    (root / "library.csv").write_text("Name,Modified\nx,1/1/2026\n")
    with pytest.raises(SourceUnavailable, match="lacks the column"):
        SharePointExport("sp", root).check_available()


# --- wiring: open_source and the pipeline hooks ------------------------------------------------------


def test_open_source_picks_the_kind(docsync_env, monkeypatch, export):
    monkeypatch.setenv("DOCSYNC_SHAREPOINT_ROOT", str(export.root))
    settings = load_settings().with_overrides(source_kind="sharepoint", source_name="sharepoint")
    source = open_source(settings)
    assert isinstance(source, SharePointExport) and source.root == Path(export.root)
    assert settings.source.root() == str(export.root) and settings.collection() == "docsync_sharepoint"
    assert type(open_source(settings.with_overrides(source_kind="fileshare"))).__name__ == "LocalFileShare"
    with pytest.raises(ValueError, match="unknown source kind"):
        open_source(settings.with_overrides(source_kind="dropbox"))


def test_plan_quarantines_bad_entries_and_uses_version_tags(docsync_env, export):
    """plan() survives unreadable entries and re-reads a document whose content version changed
    with the same size and mtime (no models needed: plan only lists and hashes)."""
    import sqlalchemy as sa

    from docsync import records, state
    from docsync.steps.plan import plan
    from docsync.steps.process import failure_for

    settings = load_settings().with_overrides(source_kind="sharepoint", source_name="sharepoint", sharepoint_root=str(export.root))
    engine = state.get_engine(settings.state_url)
    source = SharePointExport("sharepoint", export.root)
    listed = entries(source)
    from docsync import fingerprint

    current = fingerprint.current(settings)  # indexed with today's processing: nothing to re-process
    with engine.begin() as conn:  # as if indexed by an earlier run
        for n, (path, e) in enumerate(sorted(listed.items())):
            state.save_document(conn, {
                "doc_id": f"d{n}", "source": "sharepoint", "path": path, "size": e.size, "mtime_ns": e.mtime_ns,
                "content_hash": "", "acl_fingerprint": e.acl_fingerprint, "allowed": "[]", "denied": "[]",
                "status": "indexed", "chunk_count": 0, "doc_meta": json.dumps({"version_tag": e.version_tag}),
                "first_seen": state.utcnow(), "indexed_at": state.utcnow(),
                "text_fp": current.text_id, "embed_fp": current.embedding_id}, [])
    same_size = b"Quarterly Numbers.\n"  # same size and mtime, new content: only the hash tells
    q1 = next(v for v in export.items.values() if v["name"] == "q1.txt")
    q1["file"]["hashes"]["quickXorHash"] = quick_xor_hash(same_size)
    (export.root / "files" / "Finance/Reports/q1.txt").write_bytes(same_size)
    welcome = next(v for v in export.items.values() if v["name"] == "welcome.md")
    welcome["lastModifiedDateTime"] = "2026-02-01T00:00:00Z"
    export.remove_file("General/welcome.md")  # changed in the manifest, download missing
    export.write()

    planned = plan(settings, "run-1")
    counts = planned.counts
    assert counts.modified == 2 and counts.unchanged == len(listed) - 2, counts
    items = {i.path: i for ref in planned.batches for i in records.read_batch(ref).items}
    assert set(items) == {"Finance/Reports/q1.txt", "General/welcome.md"}
    assert items["General/welcome.md"].content_hash == ""  # could not be read: process quarantines it
    with pytest.raises(ExportItemError) as info:
        SharePointExport("sharepoint", export.root).read("General/welcome.md")
    failure = failure_for(info.value, "General/welcome.md")
    assert failure.stage == "read" and "no file files/General/welcome.md" in failure.reason
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(state.documents)).scalar() == len(listed)
    state.get_engine.cache_clear()


def test_symlink_loop_is_a_read_error(export):
    export.file("Misc/loop.txt", b"x\n", ROOT_PERMS, write=False)
    (export.root / "files" / "Misc").mkdir(parents=True)
    (export.root / "files" / "Misc" / "loop.txt").symlink_to(export.root / "files" / "Misc" / "loop.txt")
    export.write()
    source = SharePointExport("sp", export.root)
    assert "Misc/loop.txt" in entries(source)  # listing survives
    with pytest.raises(ExportItemError) as info:
        source.read("Misc/loop.txt")
    assert info.value.failure.stage == "read"


# --- access of one entry, content hashes ------------------------------------------------------------


def test_access_of_a_fresh_source_needs_no_listing(export):
    listed_source = SharePointExport("sp", export.root)
    listed = entries(listed_source)
    for entry in listed.values():
        assert SharePointExport("sp", export.root).access(entry) == listed_source.access(entry), entry.path


def test_content_hash_streams_and_checks_the_quick_xor_hash(export):
    import hashlib

    from docsync.errors import DocumentError
    from docsync.sources.sharepoint import QuickXorHash

    big = random.Random(3).randbytes(3 * 2**20 + 5)  # chunks of 1 MiB are not multiples of 160 bytes
    qxh = QuickXorHash()
    for start in range(0, len(big), 777_777):
        qxh.update(big[start : start + 777_777])
    assert qxh.b64digest() == quick_xor_hash(big)
    export.file("Data/big.bin", big, ROOT_PERMS)
    export.file("Data/stale.bin", b"old bytes", ROOT_PERMS)["file"]["hashes"]["quickXorHash"] = quick_xor_hash(b"new bytes")
    export.write()
    source = SharePointExport("sp", export.root)
    assert source.content_hash("Data/big.bin") == hashlib.sha256(big).hexdigest()
    assert source.content_hash("General/welcome.md") == hashlib.sha256(source.read("General/welcome.md")).hexdigest()
    for path, why in (("Data/stale.bin", "quickXorHash"), ("Nowhere/x.txt", "no longer in the export manifest")):
        with pytest.raises(ExportItemError, match=why) as info:
            source.content_hash(path)
        assert isinstance(info.value, DocumentError) and info.value.failure.stage == "read"


def test_export_item_error_is_a_document_error():
    from docsync.errors import DocumentError

    error = ExportItemError("source", "x.txt: manifest entry without a 'name'")
    assert isinstance(error, DocumentError) and isinstance(error, OSError)
    assert (error.failure.stage, error.failure.reason, str(error)) == ("source", "x.txt: manifest entry without a 'name'",
                                                                       "x.txt: manifest entry without a 'name'")
