"""SharePoint document libraries, read from an export folder (no network access).

Layout of the export folder (the source root, ``DOCSYNC_SHAREPOINT_ROOT``)::

    manifest.json        Microsoft Graph format: {"tenant": ..., "export_type": "full",
                         "exported_at": ..., "items": [driveItem + "permissions": [...], ...]}
                         (or "value": [...])
    library.csv          or: a document-library CSV export with permission columns
    export.json          optional, CSV only: {"library_root": ..., "export_type": "full"}
    files/<library path> the downloaded content of every file item
    deltas/<name>/       optional, Graph only: delta exports on top of the full one (manifest.json
                         with "export_type": "delta" and "base_delta_link", + files/), see :mod:`.delta`

The document path is the library path (``parentReference.path`` after ``root:`` + name).
A delta export whose base is not the full export (or a delta applied on it) is refused
(``SourceUnavailable``), as is a delta export in place of the full one.

A manifest that is unusable as a whole raises ``SourceUnavailable`` (nothing is deleted).
A bad entry is still listed, and ``read()``/``content_hash()`` raise :class:`ExportItemError`
(a :class:`~docsync.errors.DocumentError` carrying its quarantine failure) or ``access()``
raises ``AccessUnresolved``, so the pipeline quarantines that document alone.

Modules: :mod:`.export` (the source), :mod:`.graph` (``manifest.json``), :mod:`.delta` (delta
exports applied on top of it), :mod:`.library_csv`
(``library.csv``), :mod:`.acl` (permissions -> principals), :mod:`.common` (shared helpers).
"""

from __future__ import annotations

from docsync.sources.sharepoint.common import (
    CSV_MANIFEST,
    CSV_OPTIONS,
    FILES_DIR,
    MANIFEST,
    ExportItemError,
    QuickXorHash,
    quick_xor_hash,
)
from docsync.sources.sharepoint.export import SharePointExport

__all__ = [
    "CSV_MANIFEST",
    "CSV_OPTIONS",
    "FILES_DIR",
    "MANIFEST",
    "ExportItemError",
    "QuickXorHash",
    "SharePointExport",
    "quick_xor_hash",
]
