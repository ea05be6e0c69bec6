"""Document sources and the factory that picks one from configuration."""

from __future__ import annotations

from docsync.config import Settings
from docsync.sources.base import AccessUnresolved, Source, SourceEntry, SourceUnavailable

__all__ = ["AccessUnresolved", "Source", "SourceEntry", "SourceUnavailable", "open_source"]


def open_source(settings: Settings, root: str | None = None, name: str | None = None) -> Source:
    """The source configured for a run: a SharePoint export folder when
    ``settings.source_kind == "sharepoint"``, else a local/NFS path or an
    ``smb://host/share/path`` URL."""
    root = root or settings.source_root()
    name = name or settings.source_name
    if settings.source_kind == "sharepoint":
        from docsync.sources.sharepoint import SharePointExport

        return SharePointExport(name, root, include=settings.include_globs, exclude=settings.exclude_globs)
    if settings.source_kind != "fileshare":
        raise ValueError(f"unknown source kind {settings.source_kind!r} (DOCSYNC_SOURCE_KIND): use fileshare or sharepoint")
    common = dict(
        include=settings.include_globs,
        exclude=settings.exclude_globs,
        acl_mode=settings.acl_mode,
        default_principals=settings.default_principals,
    )
    if root.startswith("smb://"):
        from docsync.sources.smb import SmbFileShare

        return SmbFileShare(name, root, username=settings.smb_username, password=settings.smb_password, **common)
    from docsync.sources.fileshare import LocalFileShare

    return LocalFileShare(name, root, **common)
