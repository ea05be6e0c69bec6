"""Builders of SharePoint export folders for the tests: Microsoft Graph driveItems with their
permissions (as `/drives/{id}/root/delta` and `/items/{id}/permissions` return them) plus the
downloaded files, and the library-CSV variant."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from typing import TYPE_CHECKING

from docsync.sources.sharepoint import quick_xor_hash

if TYPE_CHECKING:
    from pathlib import Path

DRIVE = "b!kXq0Sm3bAEKPvdCk8xJc1Q"
TENANT = "contoso.onmicrosoft.com"


def _id(seed: str) -> str:
    return "01" + hashlib.sha1(seed.encode()).hexdigest()[:32].upper()


def folder_id(path: str) -> str:
    """The id GraphExport gives the folder ``path`` ("" = the library root)."""
    return _id("folder:" + path) if path else _id("root")


# --- identities and permissions (Graph shapes) -------------------------------------------


def user(email: str, name: str = "") -> dict:
    """A user as Graph returns it: user + siteUser facets of the same person."""
    return {
        "user": {"id": _id(email), "displayName": name or email.split("@")[0].title(), "email": email},
        "siteUser": {"id": "11", "displayName": name or email, "email": email, "loginName": f"i:0#.f|membership|{email}"},
    }


def site_group(name: str, sid: str = "3") -> dict:
    return {"siteGroup": {"@odata.type": "#microsoft.graph.sharePointIdentity", "id": sid, "displayName": name, "loginName": name}}


def group(name: str) -> dict:
    return {"group": {"id": _id(name), "displayName": name, "email": name.lower().replace(" ", "") + "@contoso.com"}}


def group_principal(name: str) -> str:
    """The principal docsync maps ``group(name)`` to: the Entra group's id, never its name."""
    return f"group:{_id(name).lower()}"


def site_group_principal(sid: str = "3", site: str = DRIVE) -> str:
    """The principal of ``site_group(..., sid)``: its id, qualified by the library's site (or drive)."""
    return f"group:site:{site.lower()}:{sid}"


def grant(roles: list[str], identity: dict, inherited_from: str | None = None) -> dict:
    perm = {"id": _id(json.dumps([roles, identity])), "roles": roles, "grantedToV2": identity}
    if inherited_from is not None:
        perm["inheritedFrom"] = {"driveId": DRIVE, "id": _id(inherited_from), "path": f"/drives/{DRIVE}/root:{inherited_from}"}
    else:
        perm["inheritedFrom"] = {}
    return perm


def link(scope: str, roles: tuple[str, ...] = ("read",), identities: list[dict] | None = None, **extra) -> dict:
    perm = {
        "id": _id(scope + json.dumps(identities)),
        "roles": list(roles),
        "shareId": "u!" + _id(scope),
        "link": {"scope": scope, "type": "view" if roles == ("read",) else "edit", "webUrl": "https://contoso.sharepoint.com/:t:/s/x/abc"},
    } | extra
    if identities is not None:
        perm["grantedToIdentitiesV2"] = identities
    return perm


# --- the Graph export ----------------------------------------------------------------------


class GraphExport:
    """manifest.json ({"tenant", "export_type", "items": [driveItem + "permissions"]}) + files/."""

    def __init__(self, root: Path, tenant: str = TENANT) -> None:
        self.root = root
        self.tenant = tenant
        self.items: dict[str, dict] = {}  # id -> driveItem, in insertion order
        self.extra: dict = {}
        self.items["root"] = {"id": folder_id(""), "name": "root", "root": {}, "folder": {"childCount": 0}}

    def _parent(self, folder: str) -> dict:
        return {"driveId": DRIVE, "driveType": "documentLibrary", "id": folder_id(folder),
                "path": f"/drives/{DRIVE}/root:" + (f"/{folder}" if folder else "")}

    def set_root_permissions(self, permissions: list[dict]) -> None:
        self.items["root"]["permissions"] = permissions

    def folder(self, path: str, permissions: list[dict] | None = None) -> dict:
        parent, _, name = path.rpartition("/")
        item = {"id": folder_id(path), "name": name, "folder": {"childCount": 0}, "parentReference": self._parent(parent),
                "lastModifiedDateTime": "2026-01-02T08:00:00Z", "size": 0}
        if permissions is not None:
            item["permissions"] = permissions
        self.items[item["id"]] = item
        return item

    def file(
        self,
        path: str,
        content: bytes,
        permissions: list[dict] | None = None,
        modified: str = "2026-01-05T10:00:00Z",
        item_id: str | None = None,
        write: bool = True,
    ) -> dict:
        parent, _, name = path.rpartition("/")
        digest = hashlib.sha1(content).hexdigest()
        item = {
            "@odata.type": "#microsoft.graph.driveItem",
            "id": item_id or _id("file:" + path),
            "name": name,
            "eTag": f'"{{{digest[:8]}}},1"',
            "cTag": f'"c:{{{digest[:8]}}},1"',
            "createdDateTime": "2026-01-01T09:00:00Z",
            "lastModifiedDateTime": modified,
            "size": len(content),
            "webUrl": f"https://contoso.sharepoint.com/sites/hq/Shared%20Documents/{path}",
            "parentReference": self._parent(parent),
            "file": {"mimeType": "text/plain", "hashes": {"quickXorHash": quick_xor_hash(content)}},
            "lastModifiedBy": {"user": {"displayName": "Exporter"}},
        }
        if permissions is not None:
            item["permissions"] = permissions
        self.items[item["id"]] = item
        if write:
            target = self.root / "files" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        return item

    def remove_file(self, path: str) -> None:
        (self.root / "files" / path).unlink()

    def write(self, **extra) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "files").mkdir(exist_ok=True)
        manifest = {"tenant": self.tenant, "export_type": "full", "exported_at": "2026-01-10T00:00:00Z"} | self.extra | extra
        manifest["items"] = list(self.items.values())
        (self.root / "manifest.json").write_text(json.dumps(manifest, indent=1))
        return self.root


def delta_link(token: str) -> str:
    return f"https://graph.microsoft.com/v1.0/drives/{DRIVE}/root/delta?token={token}"


class GraphDelta(GraphExport):
    """deltas/<name>/ of an export: a Graph delta (changed driveItems placed by parent id, as
    /delta returns them, and tombstones) requested with ``base`` and returning ``link``."""

    def __init__(self, export: GraphExport, name: str, base: str, link: str, exported_at: str = "2026-01-12T00:00:00Z") -> None:
        super().__init__(export.root / "deltas" / name, export.tenant)
        self.items = {}
        self.extra = {"base_delta_link": delta_link(base), "@odata.deltaLink": delta_link(link), "exported_at": exported_at}

    def _parent(self, folder: str) -> dict:
        return {"driveId": DRIVE, "driveType": "documentLibrary", "id": folder_id(folder)}

    def relist(self, item: dict, **changes) -> dict:
        """An existing item listed again (a rename, move or permission change), without download."""
        listed = json.loads(json.dumps(item)) | changes
        listed.get("parentReference", {}).pop("path", None)
        self.items[listed["id"]] = listed
        return listed

    def edit(self, item: dict, content: bytes, modified: str = "2026-01-11T08:00:00Z") -> dict:
        """An existing item with new content, downloaded into the delta."""
        listed = self.relist(item, size=len(content), lastModifiedDateTime=modified)
        listed["file"]["hashes"]["quickXorHash"] = quick_xor_hash(content)
        listed["cTag"] = f'"c:{{{hashlib.sha1(content).hexdigest()[:8]}}},2"'
        path = self.root / "files" / self.path_of(item)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        return listed

    @staticmethod
    def path_of(item: dict) -> str:
        return item["parentReference"]["path"].partition("root:")[2].strip("/") + "/" + item["name"]

    def removed(self, item_id: str, facet: str = "@removed") -> None:
        self.items[item_id] = {"id": item_id, "parentReference": {"driveId": DRIVE},
                               facet: {"reason": "deleted"} if facet == "@removed" else {"state": "deleted"}}

    def write(self, **extra) -> Path:
        return super().write(export_type="delta", **extra)


# --- the CSV export -------------------------------------------------------------------------

CSV_COLUMNS = ["Name", "Modified", "Modified By", "Item Type", "Path", "Read Principals", "Denied Principals"]


def write_csv_export(root: Path, rows: list[dict], files: dict[str, bytes], columns: list[str] = CSV_COLUMNS) -> Path:
    """library.csv (as SharePoint's "Export to CSV" + permission columns) and files/."""
    root.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    (root / "library.csv").write_text("\ufeff" + buffer.getvalue(), encoding="utf-8")
    for rel, content in files.items():
        target = root / "files" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    (root / "files").mkdir(exist_ok=True)
    return root
