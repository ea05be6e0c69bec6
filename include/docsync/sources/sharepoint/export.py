"""The SharePoint export source: an export folder read as a document library.

Change signals: size and ``lastModifiedDateTime`` from the manifest, ``version_tag`` from
the quickXorHash (else cTag), ``acl_fingerprint`` = hash of the resolved principals. The
manifest is loaded once per source object, lazily, by whichever of ``list()``, ``read()``,
``content_hash()`` or ``access()`` comes first. Nothing outside the export folder is read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from docsync.errors import Stage
from docsync.sources.base import (
    HASH_CHUNK,
    AccessUnresolved,
    SourceEntry,
    SourceRefused,
    SourceUnavailable,
    matches,
)
from docsync.sources.sharepoint.common import (
    CSV_MANIFEST,
    CSV_OPTIONS,
    DELTAS_DIR,
    FILES_DIR,
    INCOMPLETE,
    MANIFEST,
    MAX_MANIFEST_BYTES,
    SOURCE_STAGE,
    Doc,
    ExportItemError,
    ExportUnusable,
    QuickXorHash,
    check_export_type,
    parse_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

READ = str(Stage.READ)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


class SharePointExport:
    """A SharePoint document library exported to a folder (Graph JSON or CSV)."""

    def __init__(
        self, name: str, root: str | Path, *, include: tuple[str, ...] = ("**/*",), exclude: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.include = include
        self.exclude = exclude
        self._docs: dict[str, Doc] | None = None

    def describe(self) -> str:
        return f"SharePoint export {self.name!r} at {self.root}"

    def _unavailable(self, what: str) -> SourceUnavailable:
        return SourceUnavailable(f"{self.describe()}: {what}. Nothing was deleted from the index.")

    def _refused(self, what: str) -> SourceRefused:
        return SourceRefused(f"{self.describe()}: {what}. Nothing was deleted from the index.")

    # --- files inside the export ----------------------------------------------------------

    def _inside(self, rel: str) -> Path:
        """The real path of ``rel`` in the export; raises ValueError when it leads outside
        (``..``, absolute, or a symbolic link pointing out)."""
        try:
            base = self.root.resolve()
            target = (base / rel).resolve()
        except RuntimeError as exc:  # Python 3.11 reports symlink loops so
            raise OSError(errno.ELOOP, "symbolic link loop", rel) from exc
        if not target.is_relative_to(base):
            raise ValueError(f"{rel!r} leads outside the export folder")
        return target

    @staticmethod
    def _open(path: Path, limit: int | None = None, size: int | None = None) -> int:
        """A descriptor of a regular file (never a FIFO or device), not following a link swapped
        in after _inside() checked the path; ``size``: the size the manifest states."""
        fd = os.open(path, _OPEN_FLAGS)
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
            if limit is not None and st.st_size > limit:
                raise OSError(errno.EFBIG, f"{path.name} is larger than {limit} bytes")
            if size is not None and st.st_size != size:
                raise OSError(errno.EIO, f"it has {st.st_size} bytes, the manifest says {size}: {INCOMPLETE}")
        except BaseException:
            os.close(fd)
            raise
        return fd

    @classmethod
    def _read_bytes(cls, path: Path, limit: int | None = None, size: int | None = None) -> bytes:
        with os.fdopen(cls._open(path, limit, size), "rb") as fh:
            return fh.read()

    # --- loading the manifest -------------------------------------------------------------

    def check_available(self) -> None:
        self._load()

    def _manifest_file(self) -> tuple[str, bytes]:
        if not self.root.is_dir():
            raise self._unavailable("the export folder is missing or not a directory; check DOCSYNC_SHAREPOINT_ROOT")
        present = [n for n in (MANIFEST, CSV_MANIFEST) if os.path.lexists(self.root / n)]
        if len(present) != 1:
            raise self._unavailable(
                f"expected exactly one of {MANIFEST} (Graph export) or {CSV_MANIFEST} (CSV export), "
                f"found {present or 'neither'}"
            )
        try:
            return present[0], self._read_bytes(self._inside(present[0]), limit=MAX_MANIFEST_BYTES)
        except (OSError, ValueError) as exc:
            raise self._unavailable(f"{present[0]} cannot be read ({exc})") from exc

    def _load(self) -> dict[str, Doc]:
        if self._docs is not None:
            return self._docs
        from docsync.sources.sharepoint.library_csv import load_csv

        kind, raw = self._manifest_file()
        try:
            if kind == MANIFEST:
                docs = self._graph_docs(raw)
            else:
                if self._delta_names():
                    raise ExportUnusable(f"{DELTAS_DIR}/ holds delta exports, which only the Graph format "
                                         f"({MANIFEST}) supports; export the whole library")
                docs = load_csv(raw, self._csv_options().get("library_root"))
        except ExportUnusable as exc:
            raise self._refused(str(exc)) from exc
        if docs and not (self.root / FILES_DIR).is_dir():
            raise self._unavailable(f"the manifest lists {len(docs)} files but the export has no {FILES_DIR}/ folder")
        self._docs = self._finish(docs)
        return self._docs

    def _graph_docs(self, raw: bytes) -> list[Doc]:
        """The full Graph export with the delta exports under deltas/ applied (sharepoint.delta)."""
        from docsync.sources.sharepoint import delta
        from docsync.sources.sharepoint.graph import graph_docs, parse_graph

        meta, items = parse_graph(raw, MANIFEST)
        deltas = []
        for name in self._delta_names():
            what = f"{DELTAS_DIR}/{name}/{MANIFEST}"
            try:
                delta_raw = self._read_bytes(self._inside(what), limit=MAX_MANIFEST_BYTES)
            except (OSError, ValueError) as exc:
                raise ExportUnusable(
                    f"{what} cannot be read ({exc}); write a delta into a folder whose name starts with '.' and "
                    "rename it when complete, or remove it"
                ) from exc
            deltas.append(delta.Delta(name, *parse_graph(delta_raw, what, expected="delta")))
        if not deltas:
            return graph_docs(meta, items)
        meta, items, downloads = delta.apply(
            meta, items, delta.chain(meta, deltas), lambda rel: os.path.lexists(self.root / rel)
        )
        return graph_docs(meta, items, by_ids=True, downloads=downloads)

    def _delta_names(self) -> list[str]:
        """The delta export folders (names starting with '.' are being written: skipped)."""
        if not os.path.lexists(self.root / DELTAS_DIR):
            return []
        try:
            folder = self._inside(DELTAS_DIR)
            return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        except (OSError, ValueError) as exc:
            raise ExportUnusable(f"{DELTAS_DIR}/ cannot be read ({exc})") from exc

    def _csv_options(self) -> dict:
        options: dict = {}
        if os.path.lexists(self.root / CSV_OPTIONS):
            try:
                loaded = parse_json(self._read_bytes(self._inside(CSV_OPTIONS), limit=1 << 20), CSV_OPTIONS)
            except (OSError, ValueError) as exc:
                raise self._unavailable(f"{CSV_OPTIONS} cannot be read ({exc})") from exc
            if not isinstance(loaded, dict):
                raise self._unavailable(f"{CSV_OPTIONS} must be a JSON object")
            options = loaded
        check_export_type(options.get("export_type"), CSV_OPTIONS)
        return options

    def _finish(self, docs: list[Doc]) -> dict[str, Doc]:
        """Flag duplicates and locate (stat) every file: one entry per path."""
        by_id: dict[str, list[Doc]] = {}
        for doc in docs:
            if doc.item_id:
                by_id.setdefault(doc.item_id, []).append(doc)
        for item_id, same in by_id.items():
            if len(same) > 1:
                for doc in same:
                    doc.fail(SOURCE_STAGE, f"id {item_id!r} appears {len(same)} times in the manifest; re-run the export")
        out: dict[str, Doc] = {}
        for doc in docs:
            if doc.path in out:
                first = out[doc.path]
                first.stage, first.error = "", ""
                first.fail(SOURCE_STAGE, f"several manifest entries have the path {doc.path!r}; re-run the export")
                continue
            out[doc.path] = doc
            if not doc.error:
                self._locate(doc)
        return out

    def _locate(self, doc: Doc) -> None:
        rel = doc.file
        try:
            st = self._inside(rel).stat()
        except ValueError:
            doc.fail(READ, f"{rel} is a symbolic link leading outside the export folder; it is not read")
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                doc.fail(READ, f"the export has no file {rel} for this manifest entry; re-export the item")
            else:
                doc.fail(READ, f"{rel} cannot be read ({exc.strerror or exc})")
            return
        if not stat.S_ISREG(st.st_mode):
            doc.fail(READ, f"{rel} in the export is not a regular file")
        elif not doc.manifest_size:
            doc.size = st.st_size
            # No content tag in the CSV: the download's own stat stands in for one.
            doc.version_tag = doc.version_tag or f"file:{st.st_size}:{st.st_mtime_ns}"
        elif st.st_size != doc.size:
            doc.fail(READ, f"{rel} has {st.st_size} bytes, the manifest says {doc.size}: {INCOMPLETE}")

    # --- Source interface -----------------------------------------------------------------

    def list(self) -> Iterator[SourceEntry]:
        for doc in self._load().values():
            if not doc.placeholder and not matches(doc.path, self.include, self.exclude):
                continue
            yield SourceEntry(doc.path, doc.size, doc.mtime_ns, doc.fingerprint, doc.version_tag)

    def _doc(self, path: str) -> Doc:
        try:
            docs = self._load()
        except SourceUnavailable as exc:
            raise OSError(errno.EIO, str(exc)) from exc
        doc = docs.get(path)
        if doc is None:
            raise FileNotFoundError(errno.ENOENT, f"{path} is no longer in the export manifest", path)
        return doc

    def _open_doc(self, path: str) -> tuple[Doc, int]:
        """The document's record and an open descriptor of its download; ExportItemError when
        the entry or the file is unusable."""
        doc = self._doc(path)
        if doc.error:
            raise ExportItemError(doc.stage, f"{path}: {doc.error}")
        rel = doc.file
        try:
            return doc, self._open(self._inside(rel), size=doc.size if doc.manifest_size else None)
        except ValueError as exc:
            raise ExportItemError(READ, f"{path}: {exc}; it is not read") from exc
        except OSError as exc:
            raise ExportItemError(READ, f"{path}: cannot read {rel}: {exc.strerror or exc}") from exc

    @staticmethod
    def _stale(path: str) -> ExportItemError:
        return ExportItemError(
            READ, f"{path}: content does not match the manifest's quickXorHash: corrupt or stale download; re-export it"
        )

    def read(self, path: str) -> bytes:
        doc, fd = self._open_doc(path)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read()
        if doc.quick_xor:
            qxh = QuickXorHash()
            qxh.update(data)
            if qxh.b64digest() != doc.quick_xor:
                raise self._stale(path)
        return data

    def content_hash(self, path: str) -> str:
        self._load()  # an unusable manifest is an outage (SourceUnavailable), not one bad document
        try:
            doc, fd = self._open_doc(path)
        except ExportItemError:
            raise
        except OSError as exc:  # no longer in the manifest
            raise ExportItemError(READ, f"{path}: {exc.strerror or exc}") from exc
        sha = hashlib.sha256()
        qxh = QuickXorHash() if doc.quick_xor else None
        try:
            with os.fdopen(fd, "rb") as fh:
                while block := fh.read(HASH_CHUNK):
                    sha.update(block)
                    if qxh is not None:
                        qxh.update(block)
        except OSError as exc:
            raise ExportItemError(READ, f"{path}: cannot read {doc.file}: {exc.strerror or exc}") from exc
        if qxh is not None and qxh.b64digest() != doc.quick_xor:
            raise self._stale(path)
        return sha.hexdigest()

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        try:
            doc = self._doc(entry.path)
        except OSError as exc:
            raise AccessUnresolved(f"{entry.path}: {exc.strerror or exc}") from exc
        if doc.stage == SOURCE_STAGE:
            raise AccessUnresolved(f"{entry.path}: {doc.error}")
        if doc.access_error:
            raise AccessUnresolved(f"{entry.path}: {doc.access_error}")
        return list(doc.allowed), list(doc.denied)
