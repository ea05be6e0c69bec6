"""The Microsoft Graph format of SharePoint exports (``manifest.json``): driveItems, each with
its ``permissions`` (the ``/items/{id}/permissions`` ``value`` array).

Permissions: an item's own ``permissions`` list is complete (Graph includes inherited grants,
marked ``inheritedFrom``). An item without one inherits the list of its *parent* folder (the
root item for top-level items), which must itself carry one. When that folder is missing
from the export or has no ``permissions`` (its export failed or was skipped) the item is
unresolved: it never inherits the wider list of a folder further up.
"""

from __future__ import annotations

from urllib.parse import unquote

from docsync.sources.base import AccessUnresolved
from docsync.sources.sharepoint.acl import graph_principals
from docsync.sources.sharepoint.common import (
    FOLDER_FACETS,
    MANIFEST,
    SOURCE_STAGE,
    Doc,
    ExportUnusable,
    check_export_type,
    invalid_path,
    ns,
    parse_json,
    parse_time,
    safe_library_path,
)

_MISSING = object()


def load_graph(raw: bytes) -> list[Doc]:
    """The documents of a Graph manifest; raises ExportUnusable when it is unusable as a whole."""
    meta, items = parse_graph(raw, MANIFEST)
    return graph_docs(meta, items)


def parse_graph(raw: bytes, what: str, expected: str = "full") -> tuple[dict, list]:
    """(export metadata, driveItems) of one Graph manifest, a full export or (``expected``) a delta."""
    data = parse_json(raw, what)
    meta = data if isinstance(data, dict) else {}
    items = data if isinstance(data, list) else meta.get("items", meta.get("value"))
    if not isinstance(items, list):
        raise ExportUnusable(f"{what} must be a JSON object with an 'items' (or Graph 'value') list")
    if meta.get("@odata.nextLink"):
        raise ExportUnusable(f"{what} is one page of a paged response (@odata.nextLink); merge the pages")
    check_export_type(meta.get("export_type"), what, expected)
    return meta, items


def graph_docs(meta: dict, items: list, *, by_ids: bool = False, downloads: dict[str, str] | None = None) -> list[Doc]:
    """The documents of driveItems; ``by_ids``: place items by their parent's id first (after
    deltas, a ``parentReference.path`` may predate a folder's rename); ``downloads``: item id ->
    its file in the export folder when not ``files/<path>``."""
    tenant = meta.get("tenant") if isinstance(meta.get("tenant"), str) else None
    live = [i for i in items if not is_removed(i)]
    # Deleted entries do not name the site: one stray tombstone must not void every site group.
    site = str(meta.get("site_id") or "").strip() or _site(live)
    exported_at = parse_time(meta.get("exported_at"))
    by_id = {str(i["id"]): i for i in live if isinstance(i, dict) and i.get("id")}
    paths: dict[int, str] = {}  # memo of graph_path for parent-id walks
    # Folders (and the library root, ""): their permissions, or _MISSING when not exported.
    folders: dict[str, object] = {}
    for item in live:
        if isinstance(item, dict) and any(f in item for f in FOLDER_FACETS):
            folder, _problem = graph_path(item, by_id, paths, by_ids=by_ids)
            if folder is not None:
                perms = item.get("permissions", _MISSING)
                # Two entries for one folder that disagree: neither is trusted (fail closed).
                folders[folder] = perms if folders.get(folder, perms) == perms else _MISSING
    docs: list[Doc] = []
    for n, item in enumerate(live):
        if not isinstance(item, dict):
            docs.append(Doc(invalid_path(f"items[{n}]"), error=f"items[{n}] is not a JSON object", stage=SOURCE_STAGE,
                            placeholder=True))
            continue
        if any(f in item for f in FOLDER_FACETS):
            continue
        item_id = str(item.get("id") or "")
        path, problem = graph_path(item, by_id, paths, by_ids=by_ids)
        doc = Doc(path or invalid_path(item_id or f"items[{n}]"), item_id=item_id, placeholder=path is None,
                  download=(downloads or {}).get(item_id, ""))
        docs.append(doc)
        if problem:
            doc.fail(SOURCE_STAGE, problem)
        elif "file" not in item:
            doc.fail(SOURCE_STAGE, f"manifest entry {doc.path!r} has neither a 'file' nor a 'folder' facet")
        else:
            _fields(doc, item)
            try:
                perms = item["permissions"] if "permissions" in item else _inherited(doc.path, folders)
                doc.allowed = graph_principals(perms, tenant, exported_at, site)
            except AccessUnresolved as exc:
                doc.access_error = str(exc)
    return docs


def is_removed(item: object) -> bool:
    """A tombstone: Graph's ``deleted`` facet, or ``@removed`` (deleted, or out of the export's scope)."""
    return isinstance(item, dict) and ("deleted" in item or "@removed" in item)


def _site(items: list) -> str:
    """What qualifies SharePoint group ids: the one site (else drive) all items name in their
    ``parentReference``; "" when they name none, or several (site groups then grant nothing)."""
    for key in ("siteId", "driveId"):
        found = {
            str(i["parentReference"][key]).strip()
            for i in items
            if isinstance(i, dict) and isinstance(i.get("parentReference"), dict) and i["parentReference"].get(key)
        }
        if found:
            return found.pop() if len(found) == 1 else ""
    return ""


def _inherited(path: str, folders: dict[str, object]) -> object:
    """The permissions of the item's parent folder ("" = library root); AccessUnresolved
    when the export does not have them."""
    parent = path.rpartition("/")[0]
    where = f"its folder {parent!r}" if parent else "the library root"
    perms = folders.get(parent, _MISSING)
    if parent not in folders:
        raise AccessUnresolved(
            f"the item has no 'permissions' and {where} is not in the manifest; it never inherits from "
            "folders further up. Re-export with every folder's permissions"
        )
    if perms is _MISSING:
        raise AccessUnresolved(
            f"the item has no 'permissions' and {where} has none either (its export failed, was skipped or "
            "disagrees with another entry for it); "
            "it never inherits from folders further up. Re-export with every folder's permissions"
        )
    return perms


def graph_path(item: dict, by_id: dict, memo: dict, depth: int = 0, *, by_ids: bool = False) -> tuple[str | None, str]:
    """(library path, problem) of an item: from parentReference.path, else by walking
    parentReference.id through the folders in the manifest (delta responses have no path);
    ``by_ids``: the walk first, when the parent is known."""
    if "root" in item:
        return "", ""
    if id(item) in memo:  # keyed by object: duplicate ids must not share a path
        return memo[id(item)], ""
    item_id = str(item.get("id") or "")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        return None, "manifest entry without a 'name'"
    if not item_id:
        return None, f"manifest entry {name!r} without an 'id'"
    parent = item.get("parentReference") if isinstance(item.get("parentReference"), dict) else {}
    parent_id = str(parent.get("id") or "")
    folder: str | None = None
    if isinstance(parent.get("path"), str):
        _drive, sep, rest = parent["path"].partition("root:")
        if not sep:
            return None, f"parentReference.path {parent['path']!r} of {name!r} has no 'root:' part"
        folder = unquote(rest).strip("/")
        if safe_library_path(folder, name) is None:  # unusable, whatever the parent id says
            return None, f"the path {folder + '/' + name!r} is not a plain library path ('..', '\\\\' or absolute)"
    if (folder is None or by_ids) and parent_id in by_id and depth < 64:
        folder, problem = graph_path(by_id[parent_id], by_id, memo, depth + 1, by_ids=by_ids)
        if folder is None:
            return None, f"parent folder of {name!r}: {problem}"
    elif folder is None:
        return None, f"{name!r} has neither parentReference.path nor a parent folder in the manifest"
    path = safe_library_path(folder, name)
    if path is None:
        return None, f"the path {folder + '/' + name!r} is not a plain library path ('..', '\\\\' or absolute)"
    memo[id(item)] = path
    return path, ""


def _fields(doc: Doc, item: dict) -> None:
    size = item.get("size")
    modified = parse_time(item.get("lastModifiedDateTime"))
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        doc.fail(SOURCE_STAGE, f"manifest entry {doc.path!r} has no valid 'size'")
    if modified is None:
        doc.fail(SOURCE_STAGE, f"manifest entry {doc.path!r} has no valid 'lastModifiedDateTime'")
    if doc.error:
        return
    doc.size, doc.mtime_ns = size, ns(modified)
    facet = item.get("file") if isinstance(item.get("file"), dict) else {}
    hashes = facet.get("hashes") if isinstance(facet.get("hashes"), dict) else {}
    doc.quick_xor = str(hashes.get("quickXorHash") or "")
    if doc.quick_xor:
        doc.version_tag = f"qxh:{doc.quick_xor}"
    elif hashes.get("sha256Hash") or hashes.get("sha1Hash"):
        doc.version_tag = f"sha:{hashes.get('sha256Hash') or hashes.get('sha1Hash')}"
    elif item.get("cTag"):
        doc.version_tag = f"ctag:{item['cTag']}"
