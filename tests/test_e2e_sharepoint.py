"""End to end: the real sharepoint_sync DAG (`airflow dags test`) over a Microsoft Graph export
of a document library with permissions: nested folders, broken inheritance, sharing links, an
item with unknown identities, a missing download, a path escaping the export; then a second
export with a rename, a deletion, an item gone from the export, a permission-only change, a
same-size content edit (only the quickXorHash tells) and the missing download delivered; then a
Graph delta export on top of it (create, modify, rename, delete, permission-only change) and a
delta whose base is unknown (refused, nothing changed)."""

from __future__ import annotations

import io
import json
import subprocess

from tests.support.airflow_env import AIRFLOW, airflow_env, run_airflow
from tests.support.sharepoint_export import (
    DRIVE,
    GraphDelta,
    GraphExport,
    delta_link,
    grant,
    group,
    group_principal,
    link,
    site_group,
    site_group_principal,
    user,
)

ROOT_PERMS = [
    grant(["owner"], site_group("HQ Owners", "3")),
    grant(["write"], site_group("HQ Members", "5")),
    grant(["read"], site_group("HQ Visitors", "4")),
]
# Groups are principals by id, never by display name: site groups qualified by the library.
HQ_OWNERS = site_group_principal("3")
LEGAL = site_group_principal("9")
ROOT = sorted(site_group_principal(s) for s in ("3", "5", "4"))  # HQ Owners, Members, Visitors
FINANCE_PERMS = [grant(["read"], group("Finance Team")), grant(["owner"], site_group("HQ Owners", "3"))]
FINANCE = sorted([group_principal("Finance Team"), HQ_OWNERS])
SECRET = "zebra-cobalt-secret outside the export"
PII = "hr-helpdesk@contoso.com"


def text(*sentences: str) -> bytes:
    return ("\n\n".join(sentences) + "\n").encode()


def docx(*paragraphs: str) -> bytes:
    from docx import Document

    document = Document()
    document.add_heading("First quarter report", level=1)
    for paragraph in paragraphs:
        document.add_paragraph(paragraph)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


BUDGET = text("# Budget 2026", "Operating costs will increase by four percent next year across all regional offices.")


def build_export(tmp_path) -> GraphExport:
    exp = GraphExport(tmp_path / "export")
    exp.set_root_permissions(ROOT_PERMS)
    exp.folder("Finance", FINANCE_PERMS)  # broken inheritance
    inherited = [grant(p["roles"], p["grantedToV2"], inherited_from="/Finance") for p in FINANCE_PERMS]
    # An item without permissions inherits only its direct parent folder's list, so that folder
    # carries its (inherited) permissions as Graph lists them.
    exp.folder("Finance/Reports", inherited)
    exp.file("Finance/Reports/q1-report.docx", docx("Revenue grew in the first quarter thanks to renewals."), inherited)
    exp.file("Finance/Reports/budget.md", BUDGET)  # no permissions listed: inherits Finance/Reports
    exp.file("Finance/Payroll/salaries.txt", text("Salary bands are reviewed every spring by the compensation board."),
             [grant(["read"], user("cfo@contoso.com")), grant(["owner"], site_group("HQ Owners", "3"))])
    exp.file("HR/handbook.md", text("# Handbook", f"Questions about leave go to {PII} during office hours."),
             ROOT_PERMS + [link("organization")])
    exp.file("Public/press-release.txt", text("The company opens a new office in the harbour district."),
             ROOT_PERMS + [link("anonymous")])
    exp.file("Projects/roadmap.md", text("# Roadmap", "The migration to the new warehouse system finishes in autumn."),
             [grant(["owner"], site_group("HQ Owners", "3")), link("users", ("write",), [user("bob@contoso.com")])])
    exp.file("Projects/draft-notes.txt", text("Draft notes about the vendor selection workshop and its outcomes."), ROOT_PERMS,
             item_id="DRAFT")
    exp.file("Projects/old-plan.txt", text("An old plan for the office move that was never approved."), ROOT_PERMS, item_id="OLD")
    exp.file("Legal/contract.txt", text("The supplier contract renews automatically unless cancelled in writing."),
             [grant(["read"], site_group("Legal", "9"))], item_id="CONTRACT")
    exp.file("Misc/unknown-owner.txt", text("Notes left behind by a former employee about the archive."),
             [grant(["read"], {"user": {"displayName": "Former Employee"}})])
    exp.file("Misc/missing-download.txt", text("This file was not downloaded by the first export run."), ROOT_PERMS,
             item_id="MISSING", write=False)
    escape = exp.file("escape.txt", text(SECRET), ROOT_PERMS, item_id="ESCAPE", write=False)
    escape["parentReference"]["path"] = "/drives/x/root:/../../outside"
    escape["name"] = "secret.txt"
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_bytes(text(SECRET))
    exp.write()
    return exp


def read_index(docsync_home) -> dict:
    from docsync import index, quarantine, state
    from docsync.config import load_settings

    settings = load_settings().with_overrides(home=docsync_home, qdrant_path=docsync_home / "qdrant")
    settings = settings.with_overrides(state_url=f"sqlite:///{docsync_home / 'state.db'}")
    engine = state.get_engine(settings.state_url)
    with index.open_index(settings) as client:
        points = {str(p.id): p.payload for p in index.scroll_all(client, "docsync_sharepoint")}
    runs = state.recent_runs(engine, "sharepoint")
    entries = {e["path"]: e for e in quarantine.list_entries(engine, source="sharepoint", status=None)}
    state.get_engine.cache_clear()
    engine.dispose()
    by_path: dict[str, dict] = {}
    for pid, payload in points.items():
        by_path.setdefault(payload["path"], {})[pid] = payload
    return {"points": points, "by_path": by_path, "runs": runs, "quarantine": entries}


def test_sharepoint_sync_dag_end_to_end(tmp_path):
    exp = build_export(tmp_path)
    env = airflow_env(tmp_path / "airflow", tmp_path / "docsync", tmp_path / "unused-fileshare",
                      DOCSYNC_SHAREPOINT_ROOT=str(exp.root))
    run_airflow(["db", "migrate"], env)
    run_airflow(["dags", "test", "sharepoint_sync"], env)

    first = read_index(tmp_path / "docsync")
    expected = {
        "Finance/Reports/q1-report.docx": FINANCE,
        "Finance/Reports/budget.md": FINANCE,
        "Finance/Payroll/salaries.txt": [HQ_OWNERS, "user:cfo@contoso.com"],
        "HR/handbook.md": ROOT + ["group:org:contoso.onmicrosoft.com"],
        "Public/press-release.txt": ["everyone"] + ROOT,
        "Projects/roadmap.md": [HQ_OWNERS, "user:bob@contoso.com"],
        "Projects/draft-notes.txt": ROOT,
        "Projects/old-plan.txt": ROOT,
        "Legal/contract.txt": [LEGAL],
    }
    assert {p: sorted(next(iter(pts.values()))["allowed_principals"]) for p, pts in first["by_path"].items()} == {
        p: sorted(v) for p, v in expected.items()
    }
    assert all(p["source"] == "sharepoint" and p["allowed_principals"] for p in first["points"].values())
    blob = json.dumps(first["points"])
    assert PII not in blob and "zebra-cobalt" not in blob
    assert any("renewals" in p["text"] for p in first["by_path"]["Finance/Reports/q1-report.docx"].values())
    quarantined = {p: (e["stage"], e["reason"]) for p, e in first["quarantine"].items()}
    assert set(quarantined) == {"Misc/unknown-owner.txt", "Misc/missing-download.txt", "_invalid/ESCAPE"}
    assert quarantined["Misc/unknown-owner.txt"][0] == "access" and "unknown identity" in quarantined["Misc/unknown-owner.txt"][1]
    assert quarantined["Misc/missing-download.txt"][0] == "read"
    assert "no file files/Misc/missing-download.txt" in quarantined["Misc/missing-download.txt"][1]
    assert quarantined["_invalid/ESCAPE"][0] == "source" and "not a plain library path" in quarantined["_invalid/ESCAPE"][1]
    summary = first["runs"][0]["summary"]
    assert first["runs"][0]["status"] == "success"
    assert (summary["indexed"], summary["quarantined"]) == (9, 3)

    # --- the next full export ------------------------------------------------------------------
    draft = exp.items["DRAFT"]
    draft["name"] = "meeting-notes.txt"  # renamed: same id and content, new path
    draft["lastModifiedDateTime"] = "2026-01-08T09:30:00Z"
    (exp.root / "files/Projects/draft-notes.txt").rename(exp.root / "files/Projects/meeting-notes.txt")
    # A delta tombstone names the library's own drive (a foreign drive id would make the site
    # ambiguous, and site groups would then grant nothing anywhere).
    exp.items["OLD"] = {"id": "OLD", "deleted": {"state": "deleted"}, "parentReference": {"driveId": DRIVE}}
    exp.remove_file("Projects/old-plan.txt")
    press = next(k for k, v in exp.items.items() if v.get("name") == "press-release.txt")
    del exp.items[press]  # simply gone from the full export
    exp.remove_file("Public/press-release.txt")
    contract = exp.items["CONTRACT"]
    contract["eTag"] = '"{contract},2"'  # permission-only change: eTag moves, cTag and content do not
    contract["permissions"].append(grant(["read"], user("counsel@contoso.com")))
    budget = next(v for v in exp.items.values() if v.get("name") == "budget.md")
    edited = BUDGET.replace(b"increase", b"decrease")  # same size, same lastModifiedDateTime
    from docsync.sources.sharepoint import quick_xor_hash

    budget["file"]["hashes"]["quickXorHash"] = quick_xor_hash(edited)
    budget["cTag"] = '"c:{budget},2"'
    (exp.root / "files/Finance/Reports/budget.md").write_bytes(edited)
    (exp.root / "files/Misc/missing-download.txt").write_bytes(text("This file was not downloaded by the first export run."))
    exp.write(**{"@odata.deltaLink": delta_link("A")})  # the link a delta export continues from
    run_airflow(["dags", "test", "sharepoint_sync"], env)

    second = read_index(tmp_path / "docsync")
    summary = second["runs"][0]["summary"]
    assert second["runs"][0]["status"] == "success"
    assert {k: summary[k] for k in ("new", "modified", "retried", "moved", "acl_updated", "deleted", "indexed", "quarantined")} == {
        "new": 0, "modified": 1, "retried": 1, "moved": 1, "acl_updated": 1, "deleted": 2, "indexed": 2, "quarantined": 0,
    }
    paths = set(second["by_path"])
    assert "Projects/meeting-notes.txt" in paths and "Projects/draft-notes.txt" not in paths
    assert not paths & {"Projects/old-plan.txt", "Public/press-release.txt"}
    # Rename and permission change: same points, no re-embedding (indexed_at untouched).
    assert set(second["by_path"]["Projects/meeting-notes.txt"]) == set(first["by_path"]["Projects/draft-notes.txt"])
    old_contract, new_contract = first["by_path"]["Legal/contract.txt"], second["by_path"]["Legal/contract.txt"]
    assert set(new_contract) == set(old_contract)
    for pid, payload in new_contract.items():
        assert payload["allowed_principals"] == sorted([LEGAL, "user:counsel@contoso.com"])
        assert payload["indexed_at"] == old_contract[pid]["indexed_at"]
    assert summary["chunks_embedded"] == 2  # the edited budget and the delivered download only
    assert any("decrease" in p["text"] for p in second["by_path"]["Finance/Reports/budget.md"].values())
    assert "Misc/missing-download.txt" in paths
    open_entries = {p for p, e in second["quarantine"].items() if e["status"] == "open"}
    assert open_entries == {"Misc/unknown-owner.txt", "_invalid/ESCAPE"}
    assert "zebra-cobalt" not in json.dumps(second["points"])

    apply_delta_exports(exp, env, tmp_path, second)


def apply_delta_exports(exp: GraphExport, env: dict, tmp_path, before: dict) -> None:
    """A delta on top of the full export above, then one whose base is unknown."""
    delta = GraphDelta(exp, "0001", base="A", link="B")
    delta.folder("Projects")  # Graph lists the folders of changed items too
    delta.file("Finance/Reports/q2-report.md", text("# Q2", "Revenue in the second quarter was flat in every region."))
    budget = next(v for v in exp.items.values() if v.get("name") == "budget.md")
    delta.edit(budget, text("# Budget 2027", "Operating costs will stay flat next year after the office consolidation."))
    delta.relist(exp.items["DRAFT"], name="minutes.txt")  # rename: no new download
    roadmap = next(v for v in exp.items.values() if v.get("name") == "roadmap.md")
    delta.relist(roadmap, permissions=roadmap["permissions"] + [grant(["read"], user("carol@contoso.com"))])
    delta.removed("CONTRACT")
    delta.write()
    run_airflow(["dags", "test", "sharepoint_sync"], env)

    third = read_index(tmp_path / "docsync")
    summary = third["runs"][0]["summary"]
    assert third["runs"][0]["status"] == "success"
    assert {k: summary[k] for k in ("new", "modified", "moved", "acl_updated", "deleted", "indexed", "quarantined")} == {
        "new": 1, "modified": 1, "moved": 1, "acl_updated": 1, "deleted": 1, "indexed": 2, "quarantined": 0,
    }
    paths = set(third["by_path"])
    assert {"Finance/Reports/q2-report.md", "Projects/minutes.txt"} <= paths
    assert not paths & {"Legal/contract.txt", "Projects/meeting-notes.txt"}
    assert set(third["by_path"]["Projects/minutes.txt"]) == set(before["by_path"]["Projects/meeting-notes.txt"])
    assert all(p["allowed_principals"] == FINANCE for p in third["by_path"]["Finance/Reports/q2-report.md"].values())
    assert any("consolidation" in p["text"] for p in third["by_path"]["Finance/Reports/budget.md"].values())
    old_roadmap, new_roadmap = before["by_path"]["Projects/roadmap.md"], third["by_path"]["Projects/roadmap.md"]
    assert set(new_roadmap) == set(old_roadmap)
    for pid, payload in new_roadmap.items():  # permission-only: payload updated, not re-embedded
        assert "user:carol@contoso.com" in payload["allowed_principals"]
        assert payload["indexed_at"] == old_roadmap[pid]["indexed_at"]

    # A delta requested from a link this export never returned: refused, nothing changes.
    unknown = GraphDelta(exp, "0002", base="NOT-OURS", link="C")
    unknown.removed(next(k for k, v in exp.items.items() if v.get("name") == "handbook.md"))
    unknown.write()
    proc = subprocess.run([AIRFLOW, "dags", "test", "sharepoint_sync"], env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    assert "the base of deltas/0002 is unknown" in out
    # refused content fails the plan at once (SourceRefused): no retries of the same export
    assert out.count("starting task_id=plan map_index=") == 1, out[-4000:]
    after = read_index(tmp_path / "docsync")
    assert after["points"] == third["points"]
    assert after["runs"][0]["summary"] == summary or after["runs"][0]["status"] != "success"
