"""Local and NFS-mounted file shares."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from docsync.sources.acl import SIDECAR_SUFFIX, parse_sidecar, posix_principals
from docsync.sources.base import AccessUnresolved, SourceEntry, SourceUnavailable, matches


class LocalFileShare:
    """A directory tree; listing is one scandir/stat per entry, no reads."""

    def __init__(
        self,
        name: str,
        root: str | Path,
        *,
        include: tuple[str, ...] = ("**/*",),
        exclude: tuple[str, ...] = (),
        acl_mode: str = "sidecar_or_posix",
        default_principals: tuple[str, ...] = (),
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.include = include
        self.exclude = exclude
        self.acl_mode = acl_mode
        self.default_principals = default_principals
        self._sidecars: dict[str, os.stat_result] = {}
        self._stats: dict[str, os.stat_result] = {}

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

    def _walk(self, directory: Path, rel: str) -> Iterator[tuple[str, os.DirEntry]]:
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            # A sub-directory that cannot be listed must not look like deleted documents.
            raise SourceUnavailable(f"{self.describe()}: cannot list {rel or '.'} ({exc})") from exc
        for entry in entries:
            rel_path = f"{rel}{entry.name}"
            if entry.is_dir(follow_symlinks=False):
                yield from self._walk(Path(entry.path), rel_path + "/")
            elif entry.is_file(follow_symlinks=False):
                yield rel_path, entry

    def list(self) -> Iterator[SourceEntry]:
        files = list(self._walk(self.root, ""))
        self._sidecars = {
            rel[: -len(SIDECAR_SUFFIX)]: e.stat() for rel, e in files if rel.endswith(SIDECAR_SUFFIX)
        }
        for rel, entry in files:
            if rel.endswith(SIDECAR_SUFFIX) or not matches(rel, self.include, self.exclude):
                continue
            st = entry.stat()
            self._stats[rel] = st
            sidecar = self._sidecars.get(rel) if self.acl_mode != "posix" else None
            fingerprint = f"{st.st_uid}:{st.st_gid}:{st.st_mode & 0o777:o}"
            if sidecar is not None:
                # ctime too: `cp -p`/rsync keep size and mtime, but cannot set ctime.
                fingerprint += f"|{sidecar.st_size}:{sidecar.st_mtime_ns}:{sidecar.st_ctime_ns}"
            yield SourceEntry(path=rel, size=st.st_size, mtime_ns=st.st_mtime_ns, acl_fingerprint=fingerprint)

    def read(self, path: str) -> bytes:
        return self._resolve(path).read_bytes()

    def _resolve(self, path: str) -> Path:
        target = (self.root / path).resolve()
        if not target.is_relative_to(self.root.resolve()):
            raise AccessUnresolved(f"path {path!r} escapes the source root")
        return target

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        sidecar = self._resolve(entry.path + SIDECAR_SUFFIX)
        if self.acl_mode != "posix" and sidecar.is_file():
            return parse_sidecar(sidecar.read_bytes())
        if self.acl_mode == "sidecar":
            if self.default_principals:
                return sorted(self.default_principals), []
            raise AccessUnresolved(
                f"no ACL sidecar {Path(entry.path).name}{SIDECAR_SUFFIX} and DOCSYNC_ACL_MODE=sidecar"
            )
        st = self._stats.get(entry.path) or self._resolve(entry.path).stat()
        return posix_principals(st.st_uid, st.st_gid, st.st_mode), []
