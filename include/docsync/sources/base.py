"""What every source gives the pipeline: a listing with cheap change signals, bytes, a streamed
content hash, and access."""

from __future__ import annotations

import fnmatch
import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from docsync.errors import AccessUnresolved, DocumentError, Failure, Stage

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "HASH_CHUNK",
    "SIDECAR_SUFFIX",
    "AccessUnresolved",
    "Source",
    "SourceEntry",
    "SourceReadError",
    "SourceUnavailable",
    "hash_stream",
    "is_sidecar_name",
    "matches",
]

SIDECAR_SUFFIX = ".acl.json"  # in any letter case: `.ACL.JSON` is a sidecar too, never a document
HASH_CHUNK = 1 << 20  # content hashes read 1 MiB at a time: never a whole file in memory


class SourceUnavailable(RuntimeError):
    """The source root is missing, unreadable or empty: an outage, never a mass delete."""


class SourceRefused(SourceUnavailable):
    """The source answered, but what it holds is refused as a whole (an unusable export
    manifest, a delta export whose base is unknown): retrying the same content cannot help, so
    the DAG fails the plan at once; the next scheduled run reads the source again."""


class SourceReadError(DocumentError, OSError):
    """One document's bytes cannot be read (stage ``read`` unless told otherwise): that
    document is quarantined, the run goes on. An OSError too, for callers that handle I/O."""

    def __init__(self, reason: str, stage: str = Stage.READ, error: str = "") -> None:
        DocumentError.__init__(self, Failure(stage, reason, error))


@dataclass(frozen=True)
class SourceEntry:
    """One document as listed by a source; listing must cost no more than a stat."""

    path: str  # relative POSIX path inside the source root
    size: int
    mtime_ns: int
    acl_fingerprint: str  # changes whenever the document's access may have changed
    version_tag: str = ""  # source-provided content version (eTag, quickXorHash), optional


class Source(Protocol):
    name: str

    def describe(self) -> str:
        """Human-readable location, for messages."""

    def check_available(self) -> None:
        """Raise SourceUnavailable when the root cannot be listed."""

    def list(self) -> Iterator[SourceEntry]:
        """All candidate documents (sidecars and excluded files left out)."""

    def read(self, path: str) -> bytes:
        """The document's bytes."""

    def content_hash(self, path: str) -> str:
        """sha256 (hex) of the document, read in chunks of :data:`HASH_CHUNK`; raises a
        :class:`~docsync.errors.DocumentError` (e.g. :class:`SourceReadError`) when this one
        document cannot be read, :class:`SourceUnavailable` when the source is down."""

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        """(allowed, denied) canonical principals of one entry, loading whatever it needs for
        that entry (no prior ``list()``); raise AccessUnresolved when unknown."""


def hash_stream(read: Callable[[int], bytes], chunk: int = HASH_CHUNK) -> str:
    """sha256 hex of everything ``read(chunk)`` returns until it returns b""."""
    digest = hashlib.sha256()
    while block := read(chunk):
        digest.update(block)
    return digest.hexdigest()


def is_sidecar_name(name: str) -> bool:
    """An ACL sidecar's file name (``<document>.acl.json``, any letter case)."""
    return name.lower().endswith(SIDECAR_SUFFIX)


def matches(path: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Glob filter on a relative POSIX path; `**/x` also matches at the top level."""

    def hit(patterns: tuple[str, ...]) -> bool:
        candidates = (path, "/" + path)
        return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)

    return hit(include) and not hit(exclude)
