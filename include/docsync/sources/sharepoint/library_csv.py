"""The CSV format of SharePoint exports: a document library's "Export to CSV" (``library.csv``)
with permission columns added by the export script.

Columns (header names case-insensitive; others are ignored):

- ``Name`` - file name; ``Item Type`` - ``Item``/``File`` (documents) or ``Folder`` (skipped)
- ``Path`` - the item's folder as SharePoint exports it (``sites/Finance/Shared Documents/Reports``),
  or ``URL`` - the item's full URL; the library root (removed from both) is ``library_root``
  of ``export.json``, else the longest folder prefix common to all rows (folders included)
- ``Modified`` - ISO 8601 or ``M/D/YYYY h:mm AM/PM``; without a zone it is UTC
- ``Read Principals`` / ``Denied Principals`` (optional) - ``;``-separated ``user:<upn>``,
  ``group:<name>``, ``everyone`` (a bare ``name@domain`` is a user)
- optional: ``ID`` (duplicate check), ``Version`` (content version tag), ``Modified By``

The size comes from the downloaded file. Without ``Version`` the download's size and mtime
stand in for a content tag (a re-download is re-hashed once, never re-embedded if unchanged).
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit

from docsync.principals import EVERYONE
from docsync.sources.base import AccessUnresolved
from docsync.sources.sharepoint.acl import csv_principals
from docsync.sources.sharepoint.common import (
    CSV_MANIFEST,
    SOURCE_STAGE,
    Doc,
    ExportUnusable,
    invalid_path,
    ns,
    parse_time,
    safe_library_path,
)

REQUIRED = ("name", "modified", "item type", "read principals")
DOCUMENT_TYPES = ("item", "file", "document")
TIME_FORMATS = ("%m/%d/%Y %I:%M %p", "%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M", "%m/%d/%Y %H:%M:%S", "%m/%d/%Y")


def load_csv(raw: bytes, library_root: object = None) -> list[Doc]:
    """The documents of a library CSV; raises ExportUnusable when the CSV is unusable as a whole."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ExportUnusable(f"{CSV_MANIFEST} is not UTF-8 ({exc}); save it as 'CSV UTF-8'") from exc
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
        rows = [{k.strip().lower(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except csv.Error as exc:
        raise ExportUnusable(f"{CSV_MANIFEST} is not valid CSV ({exc})") from exc
    missing = [c for c in REQUIRED if c not in columns] + ([] if columns & {"path", "url"} else ["path (or url)"])
    if missing:
        raise ExportUnusable(f"{CSV_MANIFEST} lacks the column(s) {', '.join(missing)} (see README, 'SharePoint exports')")
    folders = [_folder(row) for row in rows]
    root = library_root.strip("/") if isinstance(library_root, str) else _common_folder(folders)
    return [
        _document(row, folder, root, line)
        for line, (row, folder) in enumerate(zip(rows, folders), start=2)  # line 1: header
        if row.get("item type", "").lower() != "folder"
    ]


def _document(row: dict, folder: str, root: str, line: int) -> Doc:
    where = f"{CSV_MANIFEST} line {line}"
    inside = not root or folder == root or folder.startswith(root + "/")
    rel = folder[len(root) :].strip("/") if inside else None
    name = row.get("name", "")
    path = safe_library_path(rel, name) if rel is not None and name else None
    doc = Doc(path or invalid_path(f"line-{line}"), item_id=row.get("id", ""), manifest_size=False)
    doc.placeholder = path is None
    if path is None:
        doc.fail(SOURCE_STAGE, f"{where}: no usable Name, or its Path is not inside the library {root!r}")
        return doc
    if row.get("item type", "").lower() not in DOCUMENT_TYPES:
        doc.fail(SOURCE_STAGE, f"{where}: unknown Item Type {row.get('item type')!r}; use Item or Folder")
        return doc
    modified = _time(row.get("modified", ""))
    if modified is None:
        doc.fail(SOURCE_STAGE, f"{where}: Modified {row.get('modified')!r} is not a date")
        return doc
    doc.mtime_ns = ns(modified)
    if row.get("version"):
        doc.version_tag = f"v:{row['version']}"
    try:
        denied = csv_principals(row.get("denied principals"), "Denied Principals")
        allowed = sorted(set(csv_principals(row.get("read principals"), "Read Principals")) - set(denied))
        if EVERYONE in denied:  # denying everyone leaves no reader
            allowed = []
        if not allowed:
            raise AccessUnresolved("'Read Principals' grants read access to no one")
        doc.allowed, doc.denied = allowed, denied
    except AccessUnresolved as exc:
        doc.access_error = f"{where}: {exc}"
    return doc


def _folder(row: dict) -> str:
    if "path" in row:
        value = row["path"]
        if value.lower().startswith(("http://", "https://")):
            value = unquote(urlsplit(value).path)
        return value.strip("/")
    url_path = unquote(urlsplit(row.get("url", "")).path).strip("/")
    return str(PurePosixPath(url_path).parent) if "/" in url_path else ""


def _common_folder(folders: list[str]) -> str:
    """Longest common folder prefix (by segment) of the rows: the library root."""
    common: list[str] = []
    for parts in zip(*[f.split("/") if f else [] for f in folders]):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return "/".join(common)


def _time(value: str) -> datetime | None:
    parsed = parse_time(value)
    if parsed is not None:
        return parsed
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(value, fmt).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None
