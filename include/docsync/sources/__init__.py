"""Document sources and the factory that picks one from configuration."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docsync.sources.base import (
    AccessUnresolved,
    Source,
    SourceEntry,
    SourceReadError,
    SourceRefused,
    SourceUnavailable,
)
from docsync.sources.roots import RootNotAllowed, check_root

if TYPE_CHECKING:
    from docsync.config import Settings

__all__ = [
    "AccessUnresolved",
    "RootNotAllowed",
    "Source",
    "SourceEntry",
    "SourceReadError",
    "SourceRefused",
    "SourceUnavailable",
    "check_root",
    "open_source",
]


def open_source(settings: Settings, root: str | None = None, name: str | None = None) -> Source:
    """The source configured for a run: a SharePoint export folder when
    ``settings.source.kind == "sharepoint"``, else a local/NFS path or an
    ``smb://host/share/path`` URL. Raises :class:`RootNotAllowed` for a root that is not
    allowed (:mod:`docsync.sources.roots`), before anything is contacted or read."""
    root = root or settings.source.root()
    name = name or settings.source.name
    if settings.source.kind not in ("fileshare", "sharepoint"):
        raise ValueError(f"unknown source kind {settings.source.kind!r} (DOCSYNC_SOURCE_KIND): use fileshare or sharepoint")
    check_root(settings, root)
    if settings.source.kind == "sharepoint":
        from docsync.sources.sharepoint import SharePointExport

        return SharePointExport(name, root, include=settings.source.include_globs, exclude=settings.source.exclude_globs)
    common = dict(
        include=settings.source.include_globs,
        exclude=settings.source.exclude_globs,
        acl_mode=settings.source.acl_mode,
        default_principals=settings.source.default_principals,
    )
    if root.lower().startswith("smb://"):
        from docsync.sources.smb import SmbFileShare

        return SmbFileShare(name, root, username=settings.source.smb_username, password=settings.source.smb_password, **common)
    from docsync.sources.fileshare import LocalFileShare

    return LocalFileShare(name, root, trusted_sidecar_owners=settings.source.trusted_sidecar_owners, **common)
