"""SMB/CIFS file shares (Windows servers, NAS, Samba), read with ``smbclient`` (smbprotocol).

The root is a URL ``smb://host[:port]/share[/sub/path]``; credentials come from
``DOCSYNC_SMB_USERNAME`` / ``DOCSYNC_SMB_PASSWORD`` (or ``smb://user:password@host/...``,
discouraged: URLs end up in logs and DAG params).

Listing costs one directory query per folder: size and last-write time come from the
directory entries themselves, never from a per-file stat. SMB has no POSIX mode bits, so
access comes from ACL sidecars (``<document>.acl.json``) or ``DOCSYNC_DEFAULT_PRINCIPALS``;
without either a document is quarantined (fail closed). NT security descriptors are not read.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
from datetime import datetime, timezone
from typing import Iterator
from urllib.parse import unquote, urlsplit

from docsync.sources.acl import SIDECAR_SUFFIX, normalize_principal, parse_sidecar
from docsync.sources.base import AccessUnresolved, SourceEntry, SourceUnavailable, matches

DEFAULT_PORT = 445
NO_SIDECAR = "smb|none"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

# smbclient keeps connections in a cache dict; sessions inside a connection are matched by
# user name only. One cache per (server, credentials) keeps a wrong password from silently
# reusing another instance's authenticated session, while the many short-lived sources of
# one run (plan, every batch, finalize) share one connection.
_POOLS: dict[tuple, dict] = {}


def _pool_key(host: str, port: int, username: str | None, password: str | None) -> tuple:
    secret = hashlib.sha256((password or "").encode()).hexdigest()
    return (host.lower(), port, username, secret)


def _reset_pool(key: tuple) -> None:
    import smbclient

    pool = _POOLS.pop(key, None)
    if pool:
        smbclient.reset_connection_cache(fail_on_error=False, connection_cache=pool)


def reset_connections() -> None:
    """Close every SMB connection opened by this module (also run at interpreter exit)."""
    for key in list(_POOLS):
        _reset_pool(key)


atexit.register(reset_connections)


def _mtime_ns(value: datetime) -> int:
    """Integer nanoseconds since the epoch (SMB FILETIMEs arrive with microsecond precision)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


_STATUS_TEXT = {
    0xC0000022: "access denied",  # STATUS_ACCESS_DENIED
    0xC0000043: "in use by another program",  # STATUS_SHARING_VIOLATION
    0xC00000CC: "no such share",  # STATUS_BAD_NETWORK_NAME
    0xC0000225: "not found",  # STATUS_NOT_FOUND (also a missing share, via the DFS referral)
    0xC0000034: "not found",  # STATUS_OBJECT_NAME_NOT_FOUND
    0xC000003A: "not found",  # STATUS_OBJECT_PATH_NOT_FOUND
    0xC0000103: "not a folder",  # STATUS_NOT_A_DIRECTORY
}


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "ntstatus", None) if isinstance(exc, OSError) else None


def _reason(exc: BaseException) -> str:
    """One line for a person: the NT status (and its meaning) of SMB errors, else the message."""
    status = _status(exc)
    if status is not None:
        from smbprotocol.header import NtStatus

        name = next((k for k, v in vars(NtStatus).items() if k.startswith("STATUS_") and v == status), f"0x{status:08x}")
        meaning = _STATUS_TEXT.get(status) or (exc.strerror if exc.errno else "")
        return f"{name}{f', {meaning}' if meaning else ''}: {exc.filename}"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def _is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno == errno.ENOENT


class SmbFileShare:
    """A folder tree on an SMB share."""

    def __init__(
        self,
        name: str,
        root_url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        include: tuple[str, ...] = ("**/*",),
        exclude: tuple[str, ...] = (),
        acl_mode: str = "sidecar_or_posix",
        default_principals: tuple[str, ...] = (),
        connection_timeout: int = 30,
    ) -> None:
        parts = urlsplit(root_url)
        if parts.scheme.lower() != "smb" or not parts.hostname:
            raise ValueError(f"not an SMB URL: {root_url!r}; use smb://host[:port]/share[/path]")
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if not segments:
            raise ValueError(f"SMB URL {root_url!r} names no share; use smb://host[:port]/share[/path]")
        if any(s in (".", "..") or "\\" in s for s in segments):
            raise ValueError(f"SMB URL {root_url!r}: '.', '..' and backslashes are not allowed in the path")
        self.name = name
        self.host = parts.hostname
        self.port = parts.port or DEFAULT_PORT
        self.share = segments[0]
        self.subpath = tuple(segments[1:])
        self.username = username if username is not None else (unquote(parts.username) if parts.username else None)
        self._password = password if password is not None else (unquote(parts.password) if parts.password else None)
        self.include = include
        self.exclude = exclude
        self.acl_mode = acl_mode
        self.default_principals = default_principals
        self.connection_timeout = connection_timeout
        self._root_unc = "\\".join([f"\\\\{self.host}", self.share, *self.subpath])
        self._pool_key = _pool_key(self.host, self.port, self.username, self._password)
        self._registered = False
        self._sidecars: dict[str, tuple[int, int]] = {}

    # --- description -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The root as a URL without credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        port = "" if self.port == DEFAULT_PORT else f":{self.port}"
        return "/".join([f"smb://{host}{port}", self.share, *self.subpath])

    def describe(self) -> str:
        user = f" as {self.username}" if self.username else ""
        return f"SMB share {self.name!r} at {self.url}{user}"

    def __repr__(self) -> str:
        return f"SmbFileShare({self.name!r}, {self.url!r}, username={self.username!r})"

    # --- connection ----------------------------------------------------------------------

    @property
    def _kwargs(self) -> dict:
        pool = _POOLS.setdefault(self._pool_key, {})
        return {
            "username": self.username,
            "password": self._password,
            "port": self.port,
            "connection_timeout": self.connection_timeout,
            "connection_cache": pool,
        }

    def _unavailable(self, what: str, exc: BaseException, hint: str) -> SourceUnavailable:
        return SourceUnavailable(
            f"{self.describe()}: {what} ({type(exc).__name__}: {_reason(exc)}). {hint}; "
            "nothing was deleted from the index."
        )

    def _connect(self) -> None:
        """Open the connection and log in, once per instance (the pool may already have it)."""
        if self._registered:
            return
        import smbclient
        from smbprotocol.exceptions import SMBAuthenticationError, SMBResponseException

        try:
            smbclient.register_session(self.host, **self._kwargs)
        except Exception as exc:  # noqa: BLE001 - transport ValueError/OSError, SMB status, spnego errors
            _reset_pool(self._pool_key)
            rejected = isinstance(exc, (SMBAuthenticationError, SMBResponseException)) or type(
                exc
            ).__module__.startswith("spnego")
            if not rejected:
                raise self._unavailable(f"cannot connect to {self.host}:{self.port}", exc, self._network_hint) from exc
            raise self._unavailable(
                "login failed",
                exc,
                "Check DOCSYNC_SMB_USERNAME / DOCSYNC_SMB_PASSWORD (DOMAIN\\user or user@domain) "
                "and that the account is not locked or expired",
            ) from exc
        self._registered = True

    def _unc(self, rel: str = "") -> str:
        return self._root_unc + ("\\" + rel.replace("/", "\\") if rel else "")

    def _safe(self, path: str) -> str:
        parts = path.replace("\\", "/").split("/")
        if not path or path.startswith(("/", "\\")) or any(p in ("", ".", "..") for p in parts):
            raise AccessUnresolved(f"path {path!r} escapes the source root")
        return "/".join(parts)

    # --- Source interface ------------------------------------------------------------------

    def check_available(self) -> None:
        import smbclient

        self._connect()
        try:
            with smbclient.scandir(self._unc(), **self._kwargs) as it:
                next(it, None)
        except Exception as exc:  # noqa: BLE001 - missing share/path, access denied, dropped connection
            folder = f" contains the folder {'/'.join(self.subpath)!r}" if self.subpath else ""
            raise self._unavailable(
                "the share or folder cannot be listed",
                exc,
                f"Check that the share {self.share!r} exists{' and' if folder else ''}{folder} and that "
                f"{self.username or 'the account'} may list it" if _status(exc) is not None else self._network_hint,
            ) from exc

    @property
    def _network_hint(self) -> str:
        return f"Check that {self.host}:{self.port} is up and reachable from this worker (DNS, firewall, port)"

    def _walk(self, unc: str, rel: str) -> Iterator[tuple[str, int, int]]:
        """(relative path, size, mtime_ns) of every file, one directory query per folder."""
        import smbclient

        try:
            with smbclient.scandir(unc, **self._kwargs) as it:
                entries = list(it)
        except Exception as exc:  # noqa: BLE001
            # A folder that cannot be listed must never look like deleted documents.
            hint = (
                f"Check that {self.username or 'the account'} may list that folder"
                if _status(exc) is not None
                else self._network_hint
            )
            raise self._unavailable(f"cannot list {rel or '/'}", exc, hint) from exc
        for entry in entries:
            info = entry.smb_info
            rel_path = f"{rel}{entry.name}"
            if entry.is_symlink():
                continue  # like the local source: links are not followed
            if entry.is_dir(follow_symlinks=False):
                if info.file_attributes & 0x400:  # FILE_ATTRIBUTE_REPARSE_POINT: junction, mount point
                    continue
                yield from self._walk(f"{unc}\\{entry.name}", rel_path + "/")
            else:
                yield rel_path, int(info.end_of_file), _mtime_ns(info.last_write_time)

    def list(self) -> Iterator[SourceEntry]:
        self._connect()
        files = list(self._walk(self._unc(), ""))
        self._sidecars = {
            rel[: -len(SIDECAR_SUFFIX)]: (size, mtime) for rel, size, mtime in files if rel.endswith(SIDECAR_SUFFIX)
        }
        for rel, size, mtime_ns in files:
            if rel.endswith(SIDECAR_SUFFIX) or not matches(rel, self.include, self.exclude):
                continue
            sidecar = self._sidecars.get(rel) if self.acl_mode != "posix" else None
            fingerprint = f"smb|{sidecar[0]}:{sidecar[1]}" if sidecar else NO_SIDECAR
            yield SourceEntry(path=rel, size=size, mtime_ns=mtime_ns, acl_fingerprint=fingerprint)

    def _read(self, rel: str) -> bytes:
        import smbclient

        self._connect()
        with smbclient.open_file(self._unc(rel), mode="rb", share_access="rwd", **self._kwargs) as fh:
            return fh.read()

    def read(self, path: str) -> bytes:
        rel = self._safe(path)
        try:
            return self._read(rel)
        except SourceUnavailable as exc:
            raise OSError(errno.EIO, str(exc)) from exc
        except OSError as exc:
            if _is_not_found(exc):
                raise FileNotFoundError(errno.ENOENT, f"{path} no longer exists on {self.url}", path) from exc
            if _status(exc) == 0xC0000022:  # STATUS_ACCESS_DENIED
                raise PermissionError(errno.EACCES, f"access denied by the SMB server ({_reason(exc)})", path) from exc
            if _status(exc) is not None:
                raise OSError(exc.errno or errno.EIO, f"SMB error ({_reason(exc)})", path) from exc
            raise
        except Exception as exc:  # noqa: BLE001 - protocol errors become read errors, not parse errors
            raise OSError(errno.EIO, f"SMB error reading {path} from {self.url}: {_reason(exc)}") from exc

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        rel = self._safe(entry.path)
        # The listing already knows whether a sidecar existed; only then is it read.
        if self.acl_mode != "posix" and entry.acl_fingerprint != NO_SIDECAR:
            try:
                raw = self._read(rel + SIDECAR_SUFFIX)
            except SourceUnavailable as exc:
                raise AccessUnresolved(f"cannot read ACL sidecar of {entry.path}: {exc}") from exc
            except Exception as exc:  # noqa: BLE001
                if not _is_not_found(exc):
                    raise AccessUnresolved(
                        f"cannot read ACL sidecar {entry.path}{SIDECAR_SUFFIX} ({_reason(exc)})"
                    ) from exc
            else:
                return parse_sidecar(raw)
        if self.default_principals:
            return sorted({normalize_principal(p) for p in self.default_principals}), []
        mode = "DOCSYNC_ACL_MODE=posix ignores sidecars and " if self.acl_mode == "posix" else ""
        raise AccessUnresolved(
            f"no ACL sidecar {entry.path.rsplit('/', 1)[-1]}{SIDECAR_SUFFIX} on {self.url}; {mode}SMB shares "
            "have no POSIX permissions to fall back on (NT ACLs are not read). Add a sidecar or set "
            "DOCSYNC_DEFAULT_PRINCIPALS"
        )
