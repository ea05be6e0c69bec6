"""What the SharePoint export formats share: file names, the per-document record, the item
error, path and time helpers, and Microsoft's QuickXorHash."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from docsync.errors import Stage
from docsync.sources.base import SourceReadError

MANIFEST = "manifest.json"
CSV_MANIFEST = "library.csv"
CSV_OPTIONS = "export.json"
FILES_DIR = "files"
DELTAS_DIR = "deltas"  # delta exports on top of the full one: deltas/<name>/manifest.json + files/
MAX_MANIFEST_BYTES = 1 << 30
INCOMPLETE = "incomplete download; re-export it"
FOLDER_FACETS = ("folder", "root", "package", "remoteItem")  # not documents (shortcuts not followed)
SOURCE_STAGE = Stage.SOURCE  # an invalid manifest entry: quarantined, re-processed when the entry changes
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ExportItemError(SourceReadError):
    """One export entry cannot be read; carries the quarantine failure (stage + reason)."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(reason, stage=stage)


class ExportUnusable(ValueError):
    """The manifest as a whole cannot be used: the source turns it into SourceUnavailable."""


class QuickXorHash:
    """Microsoft's QuickXorHash (``file.hashes.quickXorHash``), fed in chunks: byte k is XORed
    into a 160-bit register at bit (11*k) mod 160, then the length into its top 64 bits."""

    def __init__(self) -> None:
        import numpy as np

        self._np = np
        self._columns = np.zeros(160, dtype=np.uint8)  # XOR of the bytes at each offset mod 160
        self._length = 0

    def update(self, data: bytes) -> None:
        np = self._np
        values = np.frombuffer(data, dtype=np.uint8)
        lead = self._length % 160  # where this chunk starts in the 160-byte cycle
        tail = (-(lead + len(values))) % 160
        if lead or tail:
            values = np.concatenate([np.zeros(lead, np.uint8), values, np.zeros(tail, np.uint8)])
        if len(values):
            # Bytes 160 apart land on the same bit offset: XOR them first (11*160 = 0 mod 160).
            self._columns ^= np.bitwise_xor.reduce(values.reshape(-1, 160), axis=0)
        self._length += len(data)

    def b64digest(self) -> str:
        register = 0
        for j, byte in enumerate(self._columns.tolist()):
            if byte:
                shifted = byte << ((11 * j) % 160)
                register ^= (shifted | (shifted >> 160)) & ((1 << 160) - 1)
        out = bytearray(register.to_bytes(20, "little"))
        for i, byte in enumerate(self._length.to_bytes(8, "little")):
            out[12 + i] ^= byte
        return base64.b64encode(bytes(out)).decode("ascii")


def quick_xor_hash(data: bytes) -> str:
    """QuickXorHash (base64) of ``data``."""
    qxh = QuickXorHash()
    qxh.update(data)
    return qxh.b64digest()


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp (Graph style, ``Z`` or offset; naive means UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def ns(moment: datetime) -> int:
    """Integer nanoseconds since the epoch."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def digest(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()[:32]


def invalid_path(key: str) -> str:
    """Stand-in path of an entry whose own path cannot be used (shown in quarantine)."""
    return "_invalid/" + re.sub(r"[^\w.\[\]-]", "_", key)[:200]


def safe_library_path(folder: str, name: str) -> str | None:
    """``folder/name`` when every segment is a plain name, else None (``..``, absolute, ``\\``)."""
    if not name or "/" in name or "\\" in name:
        return None
    parts = [p for p in folder.split("/") if p != ""] + [name]
    if any(p in (".", "..") or "\\" in p or "\x00" in p for p in parts):
        return None
    return "/".join(parts)


def parse_json(raw: bytes, what: str) -> object:
    """A JSON manifest file; ExportUnusable when it is not UTF-8 JSON."""
    try:
        return json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ExportUnusable(f"{what} is not UTF-8 ({exc}); re-run the export") from exc
    except json.JSONDecodeError as exc:
        raise ExportUnusable(
            f"{what} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); re-run the export"
        ) from exc


def check_export_type(value: object, what: str, expected: str = "full") -> None:
    """``what`` is the kind of export its place calls for: a full export at the top of the export
    folder, a delta only under ``deltas/`` (items missing from a delta are unchanged, not deleted,
    so a delta is usable only on top of the export it was requested from)."""
    export_type = str(value or "full").lower()
    if export_type == expected:
        return
    if export_type == "delta" and what == CSV_OPTIONS:
        raise ExportUnusable(
            f"{what} is a delta export (export_type 'delta'); a CSV export must be full, because items missing "
            "from a delta are unchanged, not deleted. Export the whole library (delta exports: Graph format only)"
        )
    if export_type == "delta":
        raise ExportUnusable(
            f"{what} is a delta export (export_type 'delta') at the top of the export folder, so its base is "
            f"unknown: items missing from a delta are unchanged, not deleted. Put a delta under "
            f"{DELTAS_DIR}/<name>/ of the full export it was requested from, or export the whole library"
        )
    if export_type == "full" and expected == "delta":
        raise ExportUnusable(
            f"{what} is a full export under {DELTAS_DIR}/; a new full export replaces the whole export folder"
        )
    raise ExportUnusable(f"{what} has unknown export_type {value!r}; use {expected!r}")


@dataclass
class Doc:
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
    download: str = ""  # where its file is in the export folder ("" = files/<path>; deltas move it)

    def fail(self, stage: str, reason: str) -> None:
        if not self.error:  # the first problem found is the one reported
            self.stage, self.error = stage, reason

    @property
    def file(self) -> str:
        """The download's path relative to the export folder."""
        return self.download or f"{FILES_DIR}/{self.path}"

    @property
    def fingerprint(self) -> str:
        if self.stage == SOURCE_STAGE:  # fixing the entry must re-process a quarantined document
            return "sp:invalid:" + digest(self.error)
        if self.access_error:
            return "sp:unresolved:" + digest(self.access_error)
        return "sp:" + digest([self.allowed, self.denied])

