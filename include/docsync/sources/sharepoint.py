"""SharePoint document libraries, read from an export folder (no network access).

Layout of the export folder (the source root, ``DOCSYNC_SHAREPOINT_ROOT``)::

    manifest.json        Microsoft Graph format: {"tenant": ..., "export_type": "full",
                         "items": [driveItem + "permissions": [...], ...]}  (or "value": [...])
    library.csv          or: a document-library CSV export with permission columns
    export.json          optional, CSV only: {"library_root": ..., "export_type": "full"}
    files/<library path> the downloaded content of every file item

The document path is the library path (``parentReference.path`` after ``root:`` + name).
Change signals: size and ``lastModifiedDateTime`` from the manifest, ``version_tag`` from
the quickXorHash (else cTag), ``acl_fingerprint`` = hash of the resolved principals.
Only full exports are supported: a delta export is refused (``SourceUnavailable``).

A manifest that is unusable as a whole raises ``SourceUnavailable`` (nothing is deleted).
A bad entry is still listed, and ``read()`` raises :class:`ExportItemError` (which carries
its quarantine :class:`Failure`) or ``access()`` raises ``AccessUnresolved``, so the
pipeline quarantines that document alone. Nothing outside the export folder is ever read.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator
from urllib.parse import unquote

from docsync.quarantine import Failure
from docsync.sources.base import AccessUnresolved, SourceEntry, SourceUnavailable, matches
from docsync.sources.sharepoint_acl import graph_principals, parse_time

MANIFEST = "manifest.json"
CSV_MANIFEST = "library.csv"
CSV_OPTIONS = "export.json"
FILES_DIR = "files"
MAX_MANIFEST_BYTES = 1 << 30
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
INCOMPLETE = "incomplete download; re-export it"
FOLDER_FACETS = ("folder", "root", "package", "remoteItem")  # not documents (shortcuts not followed)


class ExportItemError(OSError):
    """One export entry cannot be read; carries the quarantine failure (stage + reason)."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(errno.EIO, reason)
        self.failure = Failure(stage, reason)


def quick_xor_hash(data: bytes) -> str:
    """Microsoft's QuickXorHash (base64), as in ``file.hashes.quickXorHash``: byte k is
    XORed into a 160-bit register at bit (11*k) mod 160, then the length into its top 64 bits."""
    import numpy as np

    values = np.frombuffer(data, dtype=np.uint8)
    if len(values) % 160:
        values = np.concatenate([values, np.zeros(160 - len(values) % 160, dtype=np.uint8)])
    # Bytes 160 apart land on the same bit offset: XOR them first (11*160 = 0 mod 160).
    columns = np.bitwise_xor.reduce(values.reshape(-1, 160), axis=0).tolist() if len(values) else []
    register = 0
    for j, byte in enumerate(columns):
        if byte:
            shifted = byte << ((11 * j) % 160)
            register ^= (shifted | (shifted >> 160)) & ((1 << 160) - 1)
    out = bytearray(register.to_bytes(20, "little"))
    for i, byte in enumerate(len(data).to_bytes(8, "little")):
        out[12 + i] ^= byte
    return base64.b64encode(bytes(out)).decode("ascii")


def _ns(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def _invalid_path(key: str) -> str:
    """Stand-in path of an entry whose own path cannot be used (shown in quarantine)."""
    return "_invalid/" + re.sub(r"[^\w.\[\]-]", "_", key)[:200]


def _safe_library_path(folder: str, name: str) -> str | None:
    """``folder/name`` when every segment is a plain name, else None (``..``, absolute, ``\\``)."""
    if not name or "/" in name or "\\" in name:
        return None
    parts = [p for p in folder.split("/") if p != ""] + [name]
    if any(p in (".", "..") or "\\" in p or "\x00" in p for p in parts):
        return None
    return "/".join(parts)


@dataclass
class _Doc:
    """One document of the export, as resolved at listing."""

    path: str
    item_id: str = ""
    size: int = 0
    mtime_ns: int = 0
    version_tag: str = ""
    quick_xor: str = ""
    manifest_size: bool = True  # the manifest states the size: the file must match it
    allowed: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    access_error: str = ""  # permissions unresolved: access() raises
    error: str = ""  # invalid manifest entry (stage "source") or unreadable file (stage "read")
    stage: str = ""
    placeholder: bool = False  # the entry's own path is unusable: listed under _invalid/, never filtered

    def fail(self, stage: str, reason: str) -> None:
        if not self.error:  # the first problem found is the one reported
            self.stage, self.error = stage, reason

    @property
    def fingerprint(self) -> str:
        if self.stage == "source":  # fixing the entry must re-process a quarantined document
            return "sp:invalid:" + _digest(self.error)
        if self.access_error:
            return "sp:unresolved:" + _digest(self.access_error)
        return "sp:" + _digest([self.allowed, self.denied])


class SharePointExport:
    """A SharePoint document library exported to a folder (Graph JSON or CSV)."""

    def __init__(
        self, name: str, root: str | Path, *, include: tuple[str, ...] = ("**/*",), exclude: tuple[str, ...] = ()
    ) -> None:
        self.name = name
        self.root = Path(root)
        self.include = include
        self.exclude = exclude
        self._docs: dict[str, _Doc] | None = None

    def describe(self) -> str:
        return f"SharePoint export {self.name!r} at {self.root}"

    def _unavailable(self, what: str) -> SourceUnavailable:
        return SourceUnavailable(f"{self.describe()}: {what}. Nothing was deleted from the index.")

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
    def _read_bytes(path: Path, limit: int | None = None, size: int | None = None) -> bytes:
        """Read a regular file (never a FIFO or device), without following a link swapped in
        after _inside() checked the path; ``size``: the size the manifest states."""
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, f"{path.name} is not a regular file")
            if limit is not None and st.st_size > limit:
                raise OSError(errno.EFBIG, f"{path.name} is larger than {limit} bytes")
            if size is not None and st.st_size != size:
                raise OSError(errno.EIO, f"it has {st.st_size} bytes, the manifest says {size}: {INCOMPLETE}")
            with os.fdopen(fd, "rb", closefd=False) as fh:
                return fh.read()
        finally:
            os.close(fd)

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

    def _load(self) -> dict[str, _Doc]:
        if self._docs is not None:
            return self._docs
        kind, raw = self._manifest_file()
        docs = self._load_graph(raw) if kind == MANIFEST else self._load_csv(raw)
        if docs and not (self.root / FILES_DIR).is_dir():
            raise self._unavailable(f"the manifest lists {len(docs)} files but the export has no {FILES_DIR}/ folder")
        self._docs = self._finish(docs)
        return self._docs

    def _finish(self, docs: list[_Doc]) -> dict[str, _Doc]:
        """Flag duplicates and locate (stat) every file: one entry per path."""
        by_id: dict[str, list[_Doc]] = {}
        for doc in docs:
            if doc.item_id:
                by_id.setdefault(doc.item_id, []).append(doc)
        for item_id, same in by_id.items():
            if len(same) > 1:
                for doc in same:
                    doc.fail("source", f"id {item_id!r} appears {len(same)} times in the manifest; re-run the export")
        out: dict[str, _Doc] = {}
        for doc in docs:
            if doc.path in out:
                first = out[doc.path]
                first.stage, first.error = "", ""
                first.fail("source", f"several manifest entries have the path {doc.path!r}; re-run the export")
                continue
            out[doc.path] = doc
            if not doc.error:
                self._locate(doc)
        return out

    def _locate(self, doc: _Doc) -> None:
        rel = f"{FILES_DIR}/{doc.path}"
        try:
            st = self._inside(rel).stat()
        except ValueError:
            doc.fail("read", f"{rel} is a symbolic link leading outside the export folder; it is not read")
            return
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                doc.fail("read", f"the export has no file {rel} for this manifest entry; re-export the item")
            else:
                doc.fail("read", f"{rel} cannot be read ({exc.strerror or exc})")
            return
        if not stat.S_ISREG(st.st_mode):
            doc.fail("read", f"{rel} in the export is not a regular file")
        elif not doc.manifest_size:
            doc.size = st.st_size
            # No content tag in the CSV: the download's own stat stands in for one.
            doc.version_tag = doc.version_tag or f"file:{st.st_size}:{st.st_mtime_ns}"
        elif st.st_size != doc.size:
            doc.fail("read", f"{rel} has {st.st_size} bytes, the manifest says {doc.size}: {INCOMPLETE}")

    def _parse_json(self, raw: bytes, what: str) -> object:
        try:
            return json.loads(raw.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise self._unavailable(f"{what} is not UTF-8 ({exc}); re-run the export") from exc
        except json.JSONDecodeError as exc:
            raise self._unavailable(
                f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); re-run the export"
            ) from exc

    def _check_export_type(self, value: object, what: str) -> None:
        export_type = str(value or "full").lower()
        if export_type == "delta":
            raise self._unavailable(
                f"{what} is a delta export (export_type 'delta'); only full exports are supported, because "
                "items missing from a delta are unchanged, not deleted. Export the whole library"
            )
        if export_type != "full":
            raise self._unavailable(f"{what} has unknown export_type {value!r}; use 'full'")

    # --- Graph format ---------------------------------------------------------------------

    def _load_graph(self, raw: bytes) -> list[_Doc]:
        data = self._parse_json(raw, MANIFEST)
        meta = data if isinstance(data, dict) else {}
        items = data if isinstance(data, list) else meta.get("items", meta.get("value"))
        if not isinstance(items, list):
            raise self._unavailable(f"{MANIFEST} must be a JSON object with an 'items' (or Graph 'value') list")
        if meta.get("@odata.nextLink"):
            raise self._unavailable(f"{MANIFEST} is one page of a paged response (@odata.nextLink); merge the pages")
        self._check_export_type(meta.get("export_type"), MANIFEST)
        tenant = meta.get("tenant") if isinstance(meta.get("tenant"), str) else None
        exported_at = parse_time(meta.get("exported_at"))
        live = [i for i in items if not (isinstance(i, dict) and "deleted" in i)]
        by_id = {str(i["id"]): i for i in live if isinstance(i, dict) and i.get("id")}
        paths: dict[int, str] = {}  # memo of _graph_path for parent-id walks
        # Permissions of folders (and the library root), for items that list none: inheritance.
        folder_perms: dict[str, object] = {}
        for item in live:
            if isinstance(item, dict) and "permissions" in item and any(f in item for f in FOLDER_FACETS):
                folder, _problem = self._graph_path(item, by_id, paths)
                if folder is not None:
                    folder_perms[folder] = item["permissions"]
        docs: list[_Doc] = []
        for n, item in enumerate(live):
            if not isinstance(item, dict):
                docs.append(_Doc(_invalid_path(f"items[{n}]"), error=f"items[{n}] is not a JSON object", stage="source",
                                 placeholder=True))
                continue
            if any(f in item for f in FOLDER_FACETS):
                continue
            item_id = str(item.get("id") or "")
            path, problem = self._graph_path(item, by_id, paths)
            doc = _Doc(path or _invalid_path(item_id or f"items[{n}]"), item_id=item_id, placeholder=path is None)
            docs.append(doc)
            if problem:
                doc.fail("source", problem)
            elif "file" not in item:
                doc.fail("source", f"manifest entry {doc.path!r} has neither a 'file' nor a 'folder' facet")
            else:
                self._graph_fields(doc, item)
                perms = item["permissions"] if "permissions" in item else _inherited(doc.path, folder_perms)
                try:
                    if perms is None:
                        raise AccessUnresolved("the item has no 'permissions', nor has any folder above it")
                    doc.allowed = graph_principals(perms, tenant, exported_at)
                except AccessUnresolved as exc:
                    doc.access_error = str(exc)
        return docs

    def _graph_path(self, item: dict, by_id: dict, memo: dict, depth: int = 0) -> tuple[str | None, str]:
        """(library path, problem) of an item: from parentReference.path, else by walking
        parentReference.id through the folders in the manifest (delta responses have no path)."""
        if "root" in item:
            return "", ""
        if id(item) in memo:  # keyed by object: duplicate ids must not share a path
            return memo[id(item)], ""
        item_id = str(item.get("id") or "")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            return None, "manifest entry without a 'name'"
        if not item_id:
            return None, f"manifest entry {name!r} without an 'id'"
        parent = item.get("parentReference") if isinstance(item.get("parentReference"), dict) else {}
        folder: str | None
        if isinstance(parent.get("path"), str):
            _drive, sep, rest = parent["path"].partition("root:")
            if not sep:
                return None, f"parentReference.path {parent['path']!r} of {name!r} has no 'root:' part"
            folder = unquote(rest).strip("/")
        elif str(parent.get("id") or "") in by_id and depth < 64:
            folder, problem = self._graph_path(by_id[str(parent["id"])], by_id, memo, depth + 1)
            if folder is None:
                return None, f"parent folder of {name!r}: {problem}"
        else:
            return None, f"{name!r} has neither parentReference.path nor a parent folder in the manifest"
        path = _safe_library_path(folder, name)
        if path is None:
            return None, f"the path {folder + '/' + name!r} is not a plain library path ('..', '\\\\' or absolute)"
        memo[id(item)] = path
        return path, ""

    def _graph_fields(self, doc: _Doc, item: dict) -> None:
        size = item.get("size")
        modified = parse_time(item.get("lastModifiedDateTime"))
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            doc.fail("source", f"manifest entry {doc.path!r} has no valid 'size'")
        if modified is None:
            doc.fail("source", f"manifest entry {doc.path!r} has no valid 'lastModifiedDateTime'")
        if doc.error:
            return
        doc.size, doc.mtime_ns = size, _ns(modified)
        facet = item.get("file") if isinstance(item.get("file"), dict) else {}
        hashes = facet.get("hashes") if isinstance(facet.get("hashes"), dict) else {}
        doc.quick_xor = str(hashes.get("quickXorHash") or "")
        if doc.quick_xor:
            doc.version_tag = f"qxh:{doc.quick_xor}"
        elif hashes.get("sha256Hash") or hashes.get("sha1Hash"):
            doc.version_tag = f"sha:{hashes.get('sha256Hash') or hashes.get('sha1Hash')}"
        elif item.get("cTag"):
            doc.version_tag = f"ctag:{item['cTag']}"

    def _load_csv(self, raw: bytes) -> list[_Doc]:
        from docsync.sources.sharepoint_csv import load_csv

        options: dict = {}
        if os.path.lexists(self.root / CSV_OPTIONS):
            try:
                loaded = self._parse_json(self._read_bytes(self._inside(CSV_OPTIONS), limit=1 << 20), CSV_OPTIONS)
            except (OSError, ValueError) as exc:
                raise self._unavailable(f"{CSV_OPTIONS} cannot be read ({exc})") from exc
            if not isinstance(loaded, dict):
                raise self._unavailable(f"{CSV_OPTIONS} must be a JSON object")
            options = loaded
        self._check_export_type(options.get("export_type"), CSV_OPTIONS)
        try:
            return load_csv(raw, options.get("library_root"))
        except ValueError as exc:  # the CSV as a whole is unusable
            raise self._unavailable(str(exc)) from exc

    # --- Source interface -----------------------------------------------------------------

    def list(self) -> Iterator[SourceEntry]:
        for doc in self._load().values():
            if not doc.placeholder and not matches(doc.path, self.include, self.exclude):
                continue
            yield SourceEntry(doc.path, doc.size, doc.mtime_ns, doc.fingerprint, doc.version_tag)

    def _doc(self, path: str) -> _Doc:
        try:
            docs = self._load()
        except SourceUnavailable as exc:
            raise OSError(errno.EIO, str(exc)) from exc
        doc = docs.get(path)
        if doc is None:
            raise FileNotFoundError(errno.ENOENT, f"{path} is no longer in the export manifest", path)
        return doc

    def read(self, path: str) -> bytes:
        doc = self._doc(path)
        if doc.error:
            raise ExportItemError(doc.stage, f"{path}: {doc.error}")
        rel = f"{FILES_DIR}/{doc.path}"
        try:
            data = self._read_bytes(self._inside(rel), size=doc.size if doc.manifest_size else None)
        except ValueError as exc:
            raise ExportItemError("read", f"{path}: {exc}; it is not read") from exc
        except OSError as exc:
            raise ExportItemError("read", f"{path}: cannot read {rel}: {exc.strerror or exc}") from exc
        if doc.quick_xor and quick_xor_hash(data) != doc.quick_xor:
            reason = f"{path}: content does not match the manifest's quickXorHash: corrupt or stale download; re-export it"
            raise ExportItemError("read", reason)
        return data

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        try:
            doc = self._doc(entry.path)
        except OSError as exc:
            raise AccessUnresolved(f"{entry.path}: {exc.strerror or exc}") from exc
        if doc.stage == "source":
            raise AccessUnresolved(f"{entry.path}: {doc.error}")
        if doc.access_error:
            raise AccessUnresolved(f"{entry.path}: {doc.access_error}")
        return list(doc.allowed), list(doc.denied)


def _inherited(path: str, folder_perms: dict[str, object]) -> object | None:
    """Permissions of the closest folder above ``path`` that lists them ("" = library root)."""
    parts = path.split("/")[:-1]
    for depth in range(len(parts), -1, -1):
        folder = "/".join(parts[:depth])
        if folder in folder_perms:
            return folder_perms[folder]
    return None
