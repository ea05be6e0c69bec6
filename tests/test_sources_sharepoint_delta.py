"""SharePoint delta exports (docsync.sources.sharepoint.delta): Graph delta changes under
deltas/<name>/ applied on top of the full export in the order their links chain them, and the
refusals (unknown base, a fork, a delta in place of the full export); then what the plan step
makes of them against the state store (new, modified, moved, ACL-only, deleted)."""

from __future__ import annotations

import json

import pytest

from docsync.config import load_settings
from docsync.sources import SourceRefused, SourceUnavailable
from docsync.sources.sharepoint import ExportItemError, SharePointExport, quick_xor_hash
from docsync.sources.sharepoint.delta import link_token
from tests.support.sharepoint_export import (
    GraphDelta,
    GraphExport,
    delta_link,
    grant,
    site_group,
    site_group_principal,
    user,
    write_csv_export,
)

ROOT_PERMS = [grant(["owner"], site_group("HQ Owners", "3")), grant(["read"], site_group("HQ Visitors", "4"))]
ROOT_PRINCIPALS = sorted(site_group_principal(s) for s in ("3", "4"))


def entries(root) -> dict:
    return {e.path: e for e in SharePointExport("sp", root).list()}


def by_name(export: GraphExport, name: str) -> dict:
    return next(v for v in export.items.values() if v.get("name") == name)


@pytest.fixture()
def export(tmp_path) -> GraphExport:
    """A full export (with the delta link its last page returned): two folders, four files."""
    exp = GraphExport(tmp_path / "export")
    exp.set_root_permissions(ROOT_PERMS)
    exp.folder("Reports", ROOT_PERMS)
    exp.folder("Archive", ROOT_PERMS)
    exp.file("Reports/q1.txt", b"Quarter one.\n")
    exp.file("Reports/q2.txt", b"Quarter two.\n")
    exp.file("Archive/2019.txt", b"Old year.\n")
    exp.file("welcome.md", b"# Welcome\n")
    exp.write(**{"@odata.deltaLink": delta_link("A")})
    return exp


def test_a_delta_applies_creates_edits_renames_deletes_and_permission_changes(export):
    before = entries(export.root)
    delta = GraphDelta(export, "0001", base="A", link="B")
    delta.file("Reports/q3.txt", b"Quarter three.\n")  # created: downloaded into the delta
    delta.edit(by_name(export, "q1.txt"), b"Quarter ONE!\n")
    delta.relist(by_name(export, "welcome.md"), name="hello.md")  # renamed: same content, no download
    delta.relist(by_name(export, "q2.txt"), permissions=[grant(["read"], user("cfo@contoso.com"))])  # ACL only
    delta.removed(by_name(export, "2019.txt")["id"])
    delta.write()

    source = SharePointExport("sp", export.root)
    after = {e.path: e for e in source.list()}
    assert set(after) == {"Reports/q1.txt", "Reports/q2.txt", "Reports/q3.txt", "hello.md"}
    assert source.read("Reports/q3.txt") == b"Quarter three.\n"
    assert source.read("Reports/q1.txt") == b"Quarter ONE!\n"
    assert after["Reports/q1.txt"].version_tag != before["Reports/q1.txt"].version_tag
    assert source.read("hello.md") == b"# Welcome\n"  # read where the full export has it
    assert after["hello.md"].version_tag == before["welcome.md"].version_tag
    old, new = before["Reports/q2.txt"], after["Reports/q2.txt"]
    assert (new.size, new.mtime_ns, new.version_tag) == (old.size, old.mtime_ns, old.version_tag)
    assert new.acl_fingerprint != old.acl_fingerprint
    assert source.access(new) == (["user:cfo@contoso.com"], [])
    assert source.access(after["Reports/q3.txt"]) == (ROOT_PRINCIPALS, [])  # inherits its folder, by id


def test_deltas_chain_by_link_not_by_name_and_tombstones_of_both_kinds(export):
    second = GraphDelta(export, "a-second", base="B", link="C", exported_at="2026-01-13T00:00:00Z")
    second.removed(by_name(export, "q2.txt")["id"], facet="deleted")
    second.file("Reports/q4.txt", b"Quarter four.\n")
    second.write()
    first = GraphDelta(export, "b-first", base="A", link="B")
    first.file("Reports/q4.txt", b"Quarter 4 draft.\n")
    first.removed(by_name(export, "q1.txt")["id"])
    first.write()
    (export.root / "deltas/.c-being-written").mkdir()  # not complete yet: skipped
    source = SharePointExport("sp", export.root)
    assert set(entries(export.root)) == {"Reports/q4.txt", "Archive/2019.txt", "welcome.md"}
    assert source.read("Reports/q4.txt") == b"Quarter four.\n"  # the later delta wins
    assert link_token(delta_link("XYZ")) == "XYZ" and link_token("opaque-cursor") == "opaque-cursor"


def test_a_removed_folder_takes_its_contents_and_a_renamed_one_moves_them(export):
    delta = GraphDelta(export, "0001", base="A", link="B")
    delta.removed(by_name(export, "Archive")["id"])  # Graph may report only the folder
    delta.relist(by_name(export, "Reports"), name="Results")  # children are not listed again
    delta.write()
    source = SharePointExport("sp", export.root)
    assert set(entries(export.root)) == {"Results/q1.txt", "Results/q2.txt", "welcome.md"}
    assert source.read("Results/q2.txt") == b"Quarter two.\n"


def test_a_parent_id_never_makes_an_escaping_path_usable(export):
    """Placed by parent id after a delta, an item whose parentReference.path escapes the library
    stays an invalid entry (as without deltas), whatever folder its parent id names."""
    escape = export.file("escape.txt", b"secret\n", ROOT_PERMS, item_id="ESCAPE", write=False)
    escape["parentReference"]["path"] = "/drives/x/root:/../../outside"
    export.write(**{"@odata.deltaLink": delta_link("A")})
    GraphDelta(export, "0001", base="A", link="B").write()
    listed = entries(export.root)
    assert "_invalid/ESCAPE" in listed and "escape.txt" not in listed
    with pytest.raises(ExportItemError, match="not a plain library path"):
        SharePointExport("sp", export.root).read("_invalid/ESCAPE")


def test_changed_content_without_its_download_is_a_read_error(export):
    delta = GraphDelta(export, "0001", base="A", link="B")
    item = delta.relist(by_name(export, "q1.txt"), size=5)
    item["file"]["hashes"]["quickXorHash"] = quick_xor_hash(b"new!\n")
    delta.write()
    with pytest.raises(ExportItemError, match="no file deltas/0001/files/Reports/q1.txt") as info:
        SharePointExport("sp", export.root).read("Reports/q1.txt")
    assert info.value.failure.stage == "read"


@pytest.mark.parametrize(
    "case,match",
    [
        ("unknown-base", "the base of deltas/0002 is unknown"),
        ("no-full-link", "has no '@odata.deltaLink', so the base of deltas/0001 is unknown"),
        ("fork", "deltas/0001 and deltas/0002 all continue the delta link 'A'"),
        ("no-base", "has no 'base_delta_link'"),
        ("no-own-link", "is incomplete"),
        ("full-under-deltas", "is a full export under deltas/"),
        ("delta-at-top", "at the top of the export folder, so its base is unknown"),
        ("no-manifest", "deltas/0002/manifest.json cannot be read"),
    ],
)
def test_a_delta_that_cannot_be_placed_is_an_outage(export, case, match):
    GraphDelta(export, "0001", base="A", link="B").write()
    second = GraphDelta(export, "0002", base={"fork": "A"}.get(case, "ZZZ-unknown"), link="C")
    manifest = export.root / "manifest.json"
    if case == "no-full-link":
        manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"@odata.deltaLink": ""}))
    elif case == "no-base":
        second.extra.pop("base_delta_link")
    elif case == "no-own-link":
        second.extra.pop("@odata.deltaLink")
    elif case == "delta-at-top":
        manifest.write_text(json.dumps(json.loads(manifest.read_text()) | {"export_type": "delta"}))
    if case == "full-under-deltas":
        GraphExport.write(second)
    elif case == "no-manifest":
        (second.root / "files").mkdir(parents=True)
    elif case not in ("no-full-link", "delta-at-top"):
        second.write()
    with pytest.raises(SourceRefused, match=match) as info:  # refused as it is: the DAG does not retry
        SharePointExport("sp", export.root).check_available()
    assert "Nothing was deleted" in str(info.value)


def test_csv_exports_take_no_deltas(tmp_path):
    root = write_csv_export(tmp_path / "csv", [], {})
    (root / "deltas/0001").mkdir(parents=True)
    with pytest.raises(SourceUnavailable, match="only the Graph format"):
        SharePointExport("sp", root).check_available()
    (root / "deltas/0001").rmdir()
    (root / "export.json").write_text('{"export_type": "delta"}')
    with pytest.raises(SourceUnavailable, match="a CSV export must be full"):
        SharePointExport("sp", root).check_available()


def test_plan_applies_a_delta_as_new_modified_moved_acl_and_deleted(docsync_env, export, monkeypatch):
    """What the plan step makes of a delta (no models: plan only lists and hashes)."""
    monkeypatch.setenv("DOCSYNC_MAX_DELETE_FRACTION", "0.5")  # 1 of these 4 documents goes
    from docsync import records, state
    from docsync.records import UpdateKind
    from docsync.steps.plan import plan

    settings = load_settings().with_overrides(source_kind="sharepoint", source_name="sharepoint", sharepoint_root=str(export.root))
    engine = state.get_engine(settings.state_url)
    source = SharePointExport("sharepoint", export.root)
    with engine.begin() as conn:  # as if indexed by an earlier run
        for n, (path, e) in enumerate(sorted(entries(export.root).items())):
            state.save_document(conn, {
                "doc_id": f"d{n}", "source": "sharepoint", "path": path, "size": e.size, "mtime_ns": e.mtime_ns,
                "content_hash": source.content_hash(path), "acl_fingerprint": e.acl_fingerprint, "allowed": "[]",
                "denied": "[]", "status": "indexed", "chunk_count": 1, "doc_meta": json.dumps({"version_tag": e.version_tag}),
                "first_seen": state.utcnow(), "indexed_at": state.utcnow()}, [])
    delta = GraphDelta(export, "0001", base="A", link="B")
    delta.file("Reports/q3.txt", b"Quarter three.\n")
    delta.edit(by_name(export, "q1.txt"), b"Quarter ONE!\n")
    delta.relist(by_name(export, "welcome.md"), name="hello.md")
    delta.relist(by_name(export, "q2.txt"), permissions=[grant(["read"], user("cfo@contoso.com"))])
    delta.removed(by_name(export, "2019.txt")["id"])
    delta.write()

    planned = plan(settings, "run-delta")
    staged = records.read_plan(planned.plan)
    work = {i.path: i.kind.value for ref in planned.batches for i in records.read_batch(ref).items}
    assert work == {"Reports/q3.txt": "new", "Reports/q1.txt": "modified"}
    updates = {u.entry.path: (u.kind, u.old_path) for u in staged.updates}
    assert updates == {"hello.md": (UpdateKind.MOVE, "welcome.md"), "Reports/q2.txt": (UpdateKind.ACL, "")}
    assert [d.path for d in staged.deletes] == ["Archive/2019.txt"]
    c = planned.counts
    assert (c.new, c.modified, c.moved, c.acl_changed, c.deleted, c.unchanged) == (1, 1, 1, 1, 1, 0)
    state.get_engine.cache_clear()
