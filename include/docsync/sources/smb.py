"""SMB/CIFS file shares (Windows servers, NAS, Samba), read with ``smbclient`` (smbprotocol).

The root is a URL ``smb://host[:port]/share[/sub/path]``; credentials come from
``DOCSYNC_SMB_USERNAME`` / ``DOCSYNC_SMB_PASSWORD`` (or ``smb://user:password@host/...``,
discouraged: URLs end up in logs and DAG params).

Listing costs one directory query per folder: size and last-write time come from the
directory entries themselves, never from a per-file stat. SMB has no POSIX mode bits, so
access comes from ACL sidecars (``<document>.acl.json``, the suffix in any letter case) or
``DOCSYNC_DEFAULT_PRINCIPALS``; without either a document is quarantined (fail closed). NT
security descriptors are not read.

Sidecars are read while listing (one small read each): the ``acl_fingerprint`` is the hash
of the sidecar's bytes, because a copy can keep size and mtime and SMB clients may set every
timestamp. A sidecar that is a link, or several sidecars for one document, quarantine it.
Limit: SMB directory entries carry no owner, so sidecars are not checked for their owner
(as local ones are): whoever may write in the share's folders decides access there.
"""

from __future__ import annotations

import atexit
import errno
import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from docsync.sources.acl import MAX_SIDECAR_BYTES, SIDECAR_SUFFIX, normalize_principal, parse_sidecar
from docsync.sources.base import (
    AccessUnresolved,
    SourceEntry,
    SourceReadError,
    SourceUnavailable,
    hash_stream,
    is_sidecar_name,
    matches,
)
from docsync.sources.smb_status import is_not_found as _is_not_found
from docsync.sources.smb_status import reason as _reason
from docsync.sources.smb_status import status as _status

if TYPE_CHECKING:
    from collections.abc import Iterator

DEFAULT_PORT = 445
NO_SIDECAR = "smb|none"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

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
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


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
        self._folders: dict[str, list[tuple[str, bool]]] = {}  # folder -> (name, is a link), for access()

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
        except Exception as exc:  # transport ValueError/OSError, SMB status, spnego errors
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
        except Exception as exc:  # missing share/path, access denied, dropped connection
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

    def _scan(self, unc: str, rel: str) -> list:
        """The entries of one folder (one directory query); SourceUnavailable when it cannot be listed."""
        import smbclient

        try:
            with smbclient.scandir(unc, **self._kwargs) as it:
                return list(it)
        except Exception as exc:
            # A folder that cannot be listed must never look like deleted documents.
            hint = (
                f"Check that {self.username or 'the account'} may list that folder"
                if _status(exc) is not None
                else self._network_hint
            )
            raise self._unavailable(f"cannot list {rel or '/'}", exc, hint) from exc

    def _walk(self, unc: str, rel: str) -> Iterator[list[tuple[str, int, int, bool]]]:
        """Per folder, (relative path, size, mtime_ns, is a link) of its files, one directory
        query per folder, a folder's files before its sub-folders' (a listing streams: its
        first documents come after one query, not after the whole share). Links are listed
        only when their name is a sidecar's (to be refused)."""
        files, folders = [], []
        for entry in self._scan(unc, rel):
            info = entry.smb_info
            rel_path = f"{rel}{entry.name}"
            if entry.is_symlink():
                if is_sidecar_name(entry.name):
                    files.append((rel_path, 0, 0, True))
                continue  # like the local source: links are not followed
            if entry.is_dir(follow_symlinks=False):
                if info.file_attributes & 0x400:  # FILE_ATTRIBUTE_REPARSE_POINT: junction, mount point
                    continue
                folders.append((f"{unc}\\{entry.name}", rel_path + "/"))
            else:
                files.append((rel_path, int(info.end_of_file), _mtime_ns(info.last_write_time), False))
        yield files
        for sub_unc, sub_rel in folders:
            yield from self._walk(sub_unc, sub_rel)

    def _sidecar_fingerprint(self, cars: list[tuple[str, bool]]) -> str:
        """Changes whenever the sidecar's content does: its sha256 (size and mtime can be
        preserved by a copy, and SMB clients may set every timestamp)."""
        if len(cars) > 1:
            return "smb|several:" + ",".join(sorted(name for name, _link in cars))
        name, link = cars[0]
        if link:
            return f"smb|link:{name}"
        try:
            raw = self._read(name, MAX_SIDECAR_BYTES)
        except SourceUnavailable:
            raise
        except Exception as exc:
            # access() reads it again and says why; the fingerprint only has to differ.
            return f"smb|unreadable:{hashlib.sha256(_reason(exc).encode()).hexdigest()[:16]}"
        return f"smb|sha256:{hashlib.sha256(raw).hexdigest()[:32]}"

    def list(self) -> Iterator[SourceEntry]:
        self._connect()
        for files in self._walk(self._unc(), ""):  # a document's sidecar is in its folder
            sidecars: dict[str, list[tuple[str, bool]]] = {}
            for rel, _size, _mtime, link in files:
                if is_sidecar_name(rel):
                    sidecars.setdefault(rel[: -len(SIDECAR_SUFFIX)], []).append((rel, link))
            for rel, size, mtime_ns, _link in files:
                if is_sidecar_name(rel) or not matches(rel, self.include, self.exclude):
                    continue
                cars = sidecars.get(rel) if self.acl_mode != "posix" else None
                fingerprint = self._sidecar_fingerprint(cars) if cars else NO_SIDECAR
                yield SourceEntry(path=rel, size=size, mtime_ns=mtime_ns, acl_fingerprint=fingerprint)

    def _read(self, rel: str, limit: int | None = None) -> bytes:
        import smbclient

        self._connect()
        with smbclient.open_file(self._unc(rel), mode="rb", share_access="rwd", **self._kwargs) as fh:
            if limit is None:
                return fh.read()
            data = fh.read(limit + 1)
        if len(data) > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", rel)
        return data

    def _read_error(self, path: str, exc: BaseException) -> OSError:
        """The OSError that read() raises for an SMB failure on one document."""
        if isinstance(exc, SourceUnavailable):
            return OSError(errno.EIO, str(exc))
        if _is_not_found(exc):
            return FileNotFoundError(errno.ENOENT, f"{path} no longer exists on {self.url}", path)
        if _status(exc) == 0xC0000022:  # STATUS_ACCESS_DENIED
            return PermissionError(errno.EACCES, f"access denied by the SMB server ({_reason(exc)})", path)
        if _status(exc) is not None:
            return OSError(exc.errno or errno.EIO, f"SMB error ({_reason(exc)})", path)
        if isinstance(exc, OSError):
            return exc
        # Protocol errors become read errors, not parse errors.
        return OSError(errno.EIO, f"SMB error reading {path} from {self.url}: {_reason(exc)}")

    def read(self, path: str) -> bytes:
        rel = self._safe(path)
        try:
            return self._read(rel)
        except Exception as exc:
            error = self._read_error(path, exc)
            if error is exc:
                raise
            raise error from exc

    def content_hash(self, path: str) -> str:
        import smbclient

        rel = self._safe(path)
        self._connect()  # a server that is down is an outage (SourceUnavailable), not one bad document
        try:
            with smbclient.open_file(self._unc(rel), mode="rb", share_access="rwd", **self._kwargs) as fh:
                return hash_stream(fh.read)
        except Exception as exc:
            error = self._read_error(path, exc)
            raise SourceReadError(
                f"cannot read {path}: {error.strerror or error}; it is re-checked next run",
                error=f"{type(exc).__name__}: {_reason(exc)}",
            ) from exc

    def _folder_sidecars(self, rel: str) -> list[tuple[str, bool]]:
        """(relative path, is a link) of the ACL sidecars of ``rel``: one query of its folder,
        remembered for the other documents of that folder."""
        folder, _, name = rel.rpartition("/")
        if folder not in self._folders:
            unc = self._unc(folder) if folder else self._unc()
            self._folders[folder] = [(e.name, e.is_symlink()) for e in self._scan(unc, folder + "/" if folder else "")]
        prefix = f"{folder}/" if folder else ""
        return sorted(
            (prefix + n, link) for n, link in self._folders[folder] if is_sidecar_name(n) and n[: -len(SIDECAR_SUFFIX)] == name
        )

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        rel = self._safe(entry.path)
        if self.acl_mode != "posix":
            try:
                self._connect()
                cars = self._folder_sidecars(rel)
                if not cars and self.default_principals:
                    # One created since the folder was scanned must not be missed where the
                    # (usually wider) defaults would apply: try the usual name too.
                    cars = [(rel + SIDECAR_SUFFIX, False)]
            except SourceUnavailable as exc:
                raise AccessUnresolved(f"cannot look for the ACL sidecar of {entry.path}: {exc}") from exc
            if len(cars) > 1:
                names = ", ".join(c.rsplit("/", 1)[-1] for c, _link in cars)
                raise AccessUnresolved(f"several ACL sidecars for {entry.path} ({names}); keep exactly one")
            if cars:
                car, link = cars[0]
                if link:
                    raise AccessUnresolved(
                        f"ACL sidecar {car} is a symbolic link; sidecars must be regular files (links are not honoured)"
                    )
                try:
                    raw = self._read(car, MAX_SIDECAR_BYTES)
                except SourceUnavailable as exc:
                    raise AccessUnresolved(f"cannot read ACL sidecar of {entry.path}: {exc}") from exc
                except Exception as exc:
                    if not _is_not_found(exc):
                        raise AccessUnresolved(f"cannot read ACL sidecar {car} ({_reason(exc)})") from exc
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
