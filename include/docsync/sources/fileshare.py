"""Local and NFS-mounted file shares.

Access of a document comes from its ACL sidecar (``<document>.acl.json``, any letter case,
trusted only as :class:`~docsync.sources.acl.TrustedOwners` says) or, without one, from POSIX:
the file's mode or POSIX ACL and search permission on every directory from the root down
(:mod:`docsync.sources.posix`). The ``acl_fingerprint`` covers everything that decides it:
the file's owner and mode, its POSIX ACL and those of the directories above it (when POSIX
decides), or the sidecar's owner, mode, size, mtime and ctime (when a sidecar decides).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from docsync.sources.acl import MAX_SIDECAR_BYTES, SIDECAR_SUFFIX, TrustedOwners, normalize_principal, parse_sidecar
from docsync.sources.base import (
    AccessUnresolved,
    SourceEntry,
    SourceReadError,
    SourceUnavailable,
    hash_stream,
    is_sidecar_name,
    matches,
)
from docsync.sources.posix import Node, chain_fingerprint, effective_access

if TYPE_CHECKING:
    from collections.abc import Iterator

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file: never a FIFO or device, never a symlink
    swapped in after the path was checked."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
    except BaseException:
        os.close(fd)
        raise
    return fd


def _sidecar_doc(name: str) -> str:
    return name[: -len(SIDECAR_SUFFIX)]


class LocalFileShare:
    """A directory tree; listing is one scandir/stat per entry (and, where POSIX decides
    access, one ACL lookup), no reads."""

    def __init__(
        self,
        name: str,
        root: str | Path,
        *,
        include: tuple[str, ...] = ("**/*",),
        exclude: tuple[str, ...] = (),
        acl_mode: str = "sidecar_or_posix",
        default_principals: tuple[str, ...] = (),
        trusted_sidecar_owners: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.include = include
        self.exclude = exclude
        self.acl_mode = acl_mode
        self.default_principals = default_principals
        self.trusted = TrustedOwners.parse(trusted_sidecar_owners)
        # Sidecar lookup in access(): the names of a directory, valid while its mtime is unchanged.
        self._names: dict[str, tuple[int, frozenset[str]]] = {}

    def describe(self) -> str:
        return f"file share {self.name!r} at {self.root}"

    def check_available(self) -> None:
        if not self.root.is_dir():
            raise SourceUnavailable(
                f"{self.describe()}: root is missing or not a directory. Check the mount; "
                "nothing was deleted from the index."
            )
        try:
            with os.scandir(self.root) as it:
                next(it, None)
        except OSError as exc:
            raise SourceUnavailable(
                f"{self.describe()}: root is not readable ({exc}). Nothing was deleted from the index."
            ) from exc

    # --- listing --------------------------------------------------------------------------

    @property
    def _posix(self) -> bool:
        return self.acl_mode != "sidecar"

    def _directory_chain(self, directory: Path, parent: str) -> str:
        """Chain fingerprint of ``directory`` (see :func:`chain_fingerprint`); "" when POSIX never decides."""
        if not self._posix:
            return ""
        return chain_fingerprint(parent, Node.of(directory, os.stat(directory)))

    def _walk(self, directory: Path, rel: str, chain: str) -> Iterator[SourceEntry]:
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            # A sub-directory that cannot be listed must not look like deleted documents.
            raise SourceUnavailable(f"{self.describe()}: cannot list {rel or '.'} ({exc})") from exc
        sidecars: dict[str, list[os.DirEntry]] = {}
        files: list[os.DirEntry] = []
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                continue
            if is_sidecar_name(entry.name):  # also symlinks: they must show, to be refused
                sidecars.setdefault(_sidecar_doc(entry.name), []).append(entry)
            elif entry.is_file(follow_symlinks=False):
                files.append(entry)
        for entry in files:
            rel_path = f"{rel}{entry.name}"
            if matches(rel_path, self.include, self.exclude):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while listing: it is gone
                yield self._entry(rel_path, entry, st, sidecars.get(entry.name, []), chain)
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                try:
                    sub_chain = self._directory_chain(Path(entry.path), chain)
                except OSError as exc:
                    raise SourceUnavailable(f"{self.describe()}: cannot stat {rel}{entry.name} ({exc})") from exc
                yield from self._walk(Path(entry.path), f"{rel}{entry.name}/", sub_chain)

    def _entry(
        self, rel: str, entry: os.DirEntry, st: os.stat_result, sidecars: list[os.DirEntry], chain: str
    ) -> SourceEntry:
        fingerprint = f"{st.st_uid}:{st.st_gid}:{stat.S_IMODE(st.st_mode):o}"
        cars = []
        for car in sorted(sidecars, key=lambda e: e.name) if self.acl_mode != "posix" else ():
            try:
                c = car.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted while listing
            # Owner and mode decide whether it is trusted; ctime too: `cp -p`/rsync keep size
            # and mtime, but cannot set ctime.
            cars.append(
                f"|{car.name[-len(SIDECAR_SUFFIX):]}:{c.st_mode:o}:{c.st_uid}:{c.st_gid}:"
                f"{c.st_size}:{c.st_mtime_ns}:{c.st_ctime_ns}"
            )
        if cars:
            fingerprint += "".join(cars)
        elif self._posix:
            fingerprint = f"{Node.of(entry.path, st).fingerprint()}|dirs:{chain}"
        return SourceEntry(path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, acl_fingerprint=fingerprint)

    def list(self) -> Iterator[SourceEntry]:
        try:
            chain = self._directory_chain(self.root, "")
        except OSError as exc:
            raise SourceUnavailable(f"{self.describe()}: root cannot be read ({exc})") from exc
        return self._walk(self.root, "", chain)

    # --- content ------------------------------------------------------------------------------

    def _resolve(self, path: str) -> Path:
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise AccessUnresolved(f"path {path!r} escapes the source root")
        return target

    def read(self, path: str) -> bytes:
        fd = _open_regular(self._resolve(path))
        with os.fdopen(fd, "rb") as fh:
            return fh.read()

    def content_hash(self, path: str) -> str:
        target = self._resolve(path)
        try:
            fd = _open_regular(target)
            with os.fdopen(fd, "rb") as fh:
                return hash_stream(fh.read)
        except FileNotFoundError as exc:
            raise SourceReadError(f"{path} vanished while the run was planning; it is re-checked next run") from exc
        except OSError as exc:
            raise SourceReadError(
                f"cannot read {path}: {exc.strerror or exc}; check permissions on the share", error=repr(exc)
            ) from exc

    # --- access -------------------------------------------------------------------------------

    def _sidecars(self, target: Path) -> list[tuple[Path, os.stat_result]]:
        """The ACL sidecars of ``target`` (any letter case), lstat-ed: normally none or one."""
        directory = target.parent
        mtime = os.stat(directory).st_mtime_ns
        cached = self._names.get(str(directory))
        if cached is None or cached[0] != mtime:
            cached = (mtime, frozenset(os.listdir(directory)))
            self._names[str(directory)] = cached
        names = {n for n in cached[1] if is_sidecar_name(n) and _sidecar_doc(n) == target.name}
        # The usual spelling is always looked up: a directory mtime can miss a change made
        # within the same clock tick, and a sidecar must never be missed.
        names.add(target.name + SIDECAR_SUFFIX)
        found: dict[tuple[int, int], tuple[Path, os.stat_result]] = {}
        for name in sorted(names):
            try:
                st = os.lstat(directory / name)
            except FileNotFoundError:
                continue
            # On a case-insensitive mount (CIFS) two spellings can name one file: count it once.
            found.setdefault((st.st_dev, st.st_ino), (directory / name, st))
        return list(found.values())

    def _read_sidecar(self, path: Path, document: os.stat_result) -> bytes:
        fd = _open_regular(path)
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            # Checked again on the open file: it may have been replaced since the lstat.
            problem = self.trusted.problem(st, document.st_uid)
            if problem:
                raise AccessUnresolved(f"ACL sidecar {path.name} {problem}")
            if st.st_size > MAX_SIDECAR_BYTES:
                raise AccessUnresolved(f"ACL sidecar {path.name} is larger than {MAX_SIDECAR_BYTES} bytes")
            return fh.read(MAX_SIDECAR_BYTES + 1)

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        target = self._resolve(entry.path)
        try:
            document = os.stat(target)
            sidecars = self._sidecars(target) if self.acl_mode != "posix" else []
        except OSError as exc:
            raise AccessUnresolved(f"cannot check the permissions of {entry.path} ({exc.strerror or exc})") from exc
        if sidecars:
            if len(sidecars) > 1:
                names = ", ".join(p.name for p, _st in sidecars)
                raise AccessUnresolved(f"several ACL sidecars for {target.name} ({names}); keep exactly one")
            path, st = sidecars[0]
            problem = self.trusted.problem(st, document.st_uid)
            if problem:
                raise AccessUnresolved(f"ACL sidecar {path.name} {problem}")
            try:
                raw = self._read_sidecar(path, document)
            except OSError as exc:
                raise AccessUnresolved(f"cannot read ACL sidecar {path.name} ({exc.strerror or exc})") from exc
            return parse_sidecar(raw)
        if self.acl_mode == "sidecar":
            if self.default_principals:
                return sorted({normalize_principal(p) for p in self.default_principals}), []
            raise AccessUnresolved(f"no ACL sidecar {target.name}{SIDECAR_SUFFIX} and DOCSYNC_ACL_MODE=sidecar")
        return effective_access(Node.of(target, document), self._directories(target))

    def _directories(self, target: Path) -> list[Node]:
        """The directories from the root down to ``target``'s parent (resolved, real paths)."""
        root = self.root.resolve()
        nodes = []
        directory = root
        for part in target.parent.relative_to(root).parts:
            nodes.append(directory)
            directory = directory / part
        nodes.append(directory)
        try:
            return [Node.of(d, os.stat(d)) for d in nodes]
        except OSError as exc:
            raise AccessUnresolved(f"cannot check the permissions of the folders above {target.name} ({exc})") from exc
