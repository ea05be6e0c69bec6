"""Which source roots a run may use.

A DAG run's ``root`` param (and ``--root`` of the CLI) names the folder or ``smb://`` URL to
sync. Left open, anyone allowed to trigger a DAG could make a worker log in to an SMB host of
their choice (handing it the service account's NTLM exchange) or index any directory of the
worker for ``everyone``. So a root is used only when it is, or lies inside, one of:

- the configured root of the source kind (``DOCSYNC_FILESHARE_ROOT`` /
  ``DOCSYNC_SHAREPOINT_ROOT``), always;
- a root listed in ``DOCSYNC_ALLOWED_ROOTS`` (comma-separated local paths or ``smb://`` URLs).

Local paths are compared after resolving symbolic links and ``..``; ``smb://`` URLs by host
(case-insensitive), port, share (case-insensitive) and path segments (case-sensitive, so a
case variant is refused rather than guessed); credentials in a URL are ignored. The check
runs before any connection or listing.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from docsync.config import Settings

SMB_PORT = 445


class RootNotAllowed(ValueError):
    """A run asked for a source root the operator did not allow; nothing was contacted or read."""


def _smb_key(url: str) -> tuple[str, int, str, tuple[str, ...]]:
    parts = urlsplit(url)
    if parts.scheme.lower() != "smb" or not parts.hostname:
        raise ValueError("not an smb://host/share URL")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    if not segments or any(s in (".", "..") or "\\" in s or "/" in s or "\x00" in s for s in segments):
        raise ValueError("an smb:// URL needs a share and no '.', '..' or backslashes")
    return parts.hostname.lower(), parts.port or SMB_PORT, segments[0].lower(), tuple(segments[1:])


def _local_key(path: str) -> str:
    if "\x00" in path:
        raise ValueError("a NUL character in the path")
    return os.path.realpath(os.path.expanduser(path))


def _inside(root: str, allowed: str) -> bool:
    """Whether ``root`` is ``allowed`` or lies inside it (both normalised the same way)."""
    if root.lower().startswith("smb://") != allowed.lower().startswith("smb://"):
        return False
    try:
        if root.lower().startswith("smb://"):
            host, port, share, path = _smb_key(root)
            a_host, a_port, a_share, a_path = _smb_key(allowed)
            return (host, port, share) == (a_host, a_port, a_share) and path[: len(a_path)] == a_path
        if "://" in allowed:
            return False
        real, base = _local_key(root), _local_key(allowed)
        return real == base or os.path.commonpath([real, base]) == base
    except ValueError:
        return False


def redact(root: str) -> str:
    """A root for messages: the password of an ``smb://user:password@host`` URL left out."""
    parts = urlsplit(root) if "://" in root else None
    if parts is None or parts.password is None:
        return root
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


def allowed_roots(settings: Settings) -> list[str]:
    """The configured root of the source kind, then ``DOCSYNC_ALLOWED_ROOTS``."""
    roots = [settings.source.root(), *settings.source.allowed_roots]
    return [r for r in dict.fromkeys(roots) if r]


def check_root(settings: Settings, root: str) -> None:
    """Raise :class:`RootNotAllowed` unless ``root`` is an allowed root or inside one."""
    if "://" in root and not root.lower().startswith("smb://"):
        raise RootNotAllowed(
            f"source root {redact(root)!r} refused: only local paths and smb:// URLs are sources, and only those "
            "listed in DOCSYNC_ALLOWED_ROOTS (or the configured root)"
        )
    allowed = allowed_roots(settings)
    if any(_inside(root, a) for a in allowed):
        return
    variable = "DOCSYNC_SHAREPOINT_ROOT" if settings.source.kind == "sharepoint" else "DOCSYNC_FILESHARE_ROOT"
    raise RootNotAllowed(
        f"source root {redact(root)!r} refused: it is not the configured root ({variable}) nor inside one of "
        f"DOCSYNC_ALLOWED_ROOTS (allowed now: {', '.join(redact(a) for a in allowed) or 'none'}). "
        "Ask an operator to add it to DOCSYNC_ALLOWED_ROOTS (comma-separated) on the workers; nothing was "
        "contacted or read."
    )
