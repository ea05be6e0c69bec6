"""Delta exports: Microsoft Graph ``delta`` changes applied on top of the last full export.

Layout (inside the export folder, so nothing outside it is read)::

    manifest.json                        the full export, with the "@odata.deltaLink" its last page returned
    files/<library path>                 its downloads
    deltas/<name>/manifest.json          {"export_type": "delta", "base_delta_link": <the link it was
                                          requested with>, "@odata.deltaLink": <the link it returned>,
                                          "items": [changed driveItems, tombstones]}
    deltas/<name>/files/<library path>   downloads of its items whose content changed

Deltas apply in the order their links chain them (full -> delta -> delta ...), never by folder
name. A delta whose base is not the link of the full export or of another delta here is refused
as a whole (``ExportUnusable``): applied to the wrong base, its deletions would be missed.

Merging follows Graph: a listed item replaces the earlier one entirely (the last occurrence in a
delta wins); a tombstone (``deleted`` facet or ``@removed``) removes it, and with a folder
everything that was below it and is not listed again. An item whose content version (size and
quickXorHash/sha, else cTag) did not change needs no new download: renames, moves and
permission-only changes read the file where the earlier export has it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from docsync.sources.sharepoint.common import DELTAS_DIR, FILES_DIR, FOLDER_FACETS, MANIFEST, ExportUnusable
from docsync.sources.sharepoint.graph import graph_path, is_removed

if TYPE_CHECKING:
    from collections.abc import Callable

BASE_LINK = "base_delta_link"  # in a delta: the deltaLink it was requested with (its base)
DELTA_LINK = "@odata.deltaLink"  # in every export: the link that continues after it
_CARRIED = ("tenant", "site_id", "exported_at")  # export metadata a newer delta overrides


@dataclass(frozen=True)
class Delta:
    """One delta export folder, ``deltas/<name>``."""

    name: str
    meta: dict
    items: list

    @property
    def where(self) -> str:
        return f"{DELTAS_DIR}/{self.name}"


def link_token(value: object) -> str:
    """The cursor a delta link carries (its ``token`` parameter), else the link as written."""
    if not isinstance(value, str) or not value.strip():
        return ""
    token = parse_qs(urlsplit(value.strip()).query).get("token")
    return token[0] if token else value.strip()


def _shown(token: str) -> str:
    return repr(token if len(token) <= 16 else token[:16] + "...")


def chain(base_meta: dict, deltas: list[Delta]) -> list[Delta]:
    """The deltas in the order they apply to the full export; ExportUnusable when one of them
    does not continue it (unknown base), two continue the same link, or a link is missing."""
    if not deltas:
        return []
    current = link_token(base_meta.get(DELTA_LINK))
    if not current:
        raise ExportUnusable(
            f"{MANIFEST} has no '{DELTA_LINK}', so the base of {', '.join(d.where for d in deltas)} is unknown "
            f"and no delta is applied. Export the whole library again with the delta link its last page "
            f"returned, or remove {DELTAS_DIR}/"
        )
    by_base: dict[str, list[Delta]] = {}
    for delta in deltas:
        base = link_token(delta.meta.get(BASE_LINK))
        if not base:
            raise ExportUnusable(
                f"{delta.where}/{MANIFEST} has no '{BASE_LINK}' (the delta link it was requested with): its base "
                "is unknown. Re-run that delta export"
            )
        if not link_token(delta.meta.get(DELTA_LINK)):
            raise ExportUnusable(
                f"{delta.where}/{MANIFEST} has no '{DELTA_LINK}': it is incomplete (the last page of a delta "
                "carries it). Merge all its pages or re-run that delta export"
            )
        by_base.setdefault(base, []).append(delta)
    ordered: list[Delta] = []
    while current in by_base:
        following = by_base.pop(current)
        if len(following) > 1:
            raise ExportUnusable(
                f"{' and '.join(d.where for d in following)} all continue the delta link {_shown(current)}: keep "
                "only the one that was requested with it, or export the whole library again"
            )
        ordered.append(following[0])
        current = link_token(following[0].meta.get(DELTA_LINK))
    if by_base:
        stray = sorted(d.where for group in by_base.values() for d in group)
        raise ExportUnusable(
            f"the base of {', '.join(stray)} is unknown: its '{BASE_LINK}' is neither the full export's "
            f"'{DELTA_LINK}' nor that of another delta here, so no delta is applied (on the wrong base its "
            "deletions would be missed). Add the deltas in between, or export the whole library again"
        )
    return ordered


def version(item: dict) -> tuple:
    """What says an item's content is unchanged: size and content hash (else cTag); () when unknown."""
    facet = item.get("file") if isinstance(item.get("file"), dict) else {}
    hashes = facet.get("hashes") if isinstance(facet.get("hashes"), dict) else {}
    tag = hashes.get("quickXorHash") or hashes.get("sha256Hash") or hashes.get("sha1Hash") or item.get("cTag")
    return (item.get("size"), str(tag)) if tag else ()


def _paths(merged: dict[str, list[dict]]) -> dict[str, str]:
    """Library path of every placeable item (files and folders), parents by id first."""
    by_id = {iid: same[0] for iid, same in merged.items() if len(same) == 1}
    memo: dict[int, str] = {}
    out: dict[str, str] = {}
    for iid, item in by_id.items():
        path, _problem = graph_path(item, by_id, memo, by_ids=True)
        if path:
            out[iid] = path
    return out


def _is_file(item: dict) -> bool:
    return "file" in item and not any(f in item for f in FOLDER_FACETS)


def _cascade(merged: dict[str, list[dict]], removed: set[str], listed: dict, before: dict[str, str]) -> None:
    """Remove what was below a removed folder and is not listed again (Graph may report only
    the folder): by the paths before the delta, so items placed by path go too."""
    gone = {before[iid] for iid in removed if iid in before}
    if not gone:
        return
    for iid in [i for i in merged if i not in listed and i in before]:
        parts = before[iid].split("/")
        if any("/".join(parts[:n]) in gone for n in range(1, len(parts))):
            del merged[iid]


def apply(
    meta: dict, items: list, deltas: list[Delta], exists: Callable[[str], bool]
) -> tuple[dict, list, dict[str, str]]:
    """(export metadata, driveItems, downloads: item id -> its file in the export folder) of the
    full export with ``deltas`` (in :func:`chain` order) applied; ``exists(rel)`` tells whether
    the export folder has the file ``rel``."""
    merged: dict[str, list[dict]] = {}
    loose: list = []  # entries without an id: kept as they are (quarantined as invalid)
    for item in items:
        if isinstance(item, dict) and item.get("id") and not is_removed(item):
            merged.setdefault(str(item["id"]), []).append(item)
        elif not is_removed(item):
            loose.append(item)
    paths = _paths(merged)
    downloads = {iid: f"{FILES_DIR}/{p}" for iid, p in paths.items() if _is_file(merged[iid][0])}
    for delta in deltas:
        listed: dict[str, dict] = {}
        removed: set[str] = set()
        for item in delta.items:
            if not (isinstance(item, dict) and item.get("id")):
                loose.append(item)
                continue
            iid = str(item["id"])
            if is_removed(item):  # the last occurrence of an item in a delta wins
                removed.add(iid)
                listed.pop(iid, None)
            else:
                listed[iid] = item
                removed.discard(iid)
        earlier = {iid: version(merged[iid][0]) for iid in listed if len(merged.get(iid, ())) == 1}
        for iid in removed:
            merged.pop(iid, None)
        merged.update({iid: [item] for iid, item in listed.items()})
        _cascade(merged, removed, listed, paths)
        paths = _paths(merged)
        for iid, item in listed.items():
            if iid not in paths or not _is_file(item):
                downloads.pop(iid, None)
                continue
            own = f"{delta.where}/{FILES_DIR}/{paths[iid]}"
            unchanged = bool(earlier.get(iid)) and earlier[iid] == version(item) and iid in downloads
            if exists(own) or not unchanged:
                downloads[iid] = own  # missing: a read error naming this file at listing
        downloads = {iid: rel for iid, rel in downloads.items() if iid in merged}
        meta = meta | {key: delta.meta[key] for key in _CARRIED if key in delta.meta}
    return meta, [item for same in merged.values() for item in same] + loose, downloads
