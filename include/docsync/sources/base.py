"""What every source gives the pipeline: a listing with cheap change signals, bytes, and access."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Iterator, Protocol


class SourceUnavailable(RuntimeError):
    """The source root is missing, unreadable or empty: an outage, never a mass delete."""


class AccessUnresolved(ValueError):
    """The access metadata of one document cannot be determined: the document is quarantined."""


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

    def access(self, entry: SourceEntry) -> tuple[list[str], list[str]]:
        """(allowed, denied) principals; raise AccessUnresolved when unknown."""


def matches(path: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """Glob filter on a relative POSIX path; `**/x` also matches at the top level."""

    def hit(patterns: tuple[str, ...]) -> bool:
        candidates = (path, "/" + path)
        return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)

    return hit(include) and not hit(exclude)
