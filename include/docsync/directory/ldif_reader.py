"""Users and groups from an LDIF export (RFC 2849), for sites that hand over files instead of
directory access: ``ldapsearch -LLL -E pr=500/noprompt ... '*' entryUUID modifyTimestamp``
(OpenLDAP) or ``ldifde -f export.ldf -r "(|(objectClass=user)(objectClass=group))"`` (AD).

Content records and ``changetype: add`` records (what ldifde writes) are read; any other change
record (modify, delete, modrdn) means the file is not a snapshot, and the whole file is refused:
a partial picture of the directory must not replace the last good one."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from docsync.directory.entries import DirectoryEntry, decode_ldif_value, entry_from_attributes

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


class LdifError(ValueError):
    """An LDIF file docsync cannot take as a snapshot of the directory."""


def _logical_lines(lines: Iterator[str]) -> Iterator[tuple[int, str]]:
    """(line number, unfolded line); "" separates records; comments dropped."""
    current: str | None = None
    start = 0
    for number, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        if line.startswith(" ") and current is not None:
            current += line[1:]  # folded: continues the previous line
            continue
        if current is not None:
            yield start, current
        current, start = line, number
    if current is not None:
        yield start, current


def parse_ldif(lines: Iterator[str], source: str = "LDIF") -> Iterator[tuple[str, dict[str, list]]]:
    """(dn, {attribute: [values]}) per content record."""
    dn: str | None = None
    attrs: dict[str, list] = {}
    for number, line in (*_logical_lines(lines), (0, "")):
        if line.startswith("#"):
            continue
        if line == "":
            if dn is not None:
                yield dn, attrs
            dn, attrs = None, {}
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise LdifError(f"{source}, line {number}: expected 'attribute: value', got {line[:60]!r}")
        encoded = value.startswith(":")
        if value.startswith("<"):
            raise LdifError(f"{source}, line {number}: values by URL ({name}:<) are not read; export the values inline")
        text = decode_ldif_value(value[1:].strip() if encoded else value.strip(), encoded)
        key = name.strip()
        if dn is None:
            if key.lower() == "version":
                continue
            if key.lower() != "dn":
                raise LdifError(f"{source}, line {number}: a record must start with 'dn:', got {key!r}")
            dn = text if isinstance(text, str) else base64.b64encode(text).decode()
            continue
        if key.lower() == "changetype":
            if str(text).strip().lower() != "add":
                raise LdifError(
                    f"{source}, line {number}: a '{text}' change record; docsync needs a full export of the "
                    "directory (content records or changetype: add), not a change log")
            continue
        if key.lower() == "control":
            continue
        attrs.setdefault(key, []).append(text)


def read_ldif(path: Path) -> list[DirectoryEntry]:
    """The users and groups of an LDIF export (other entries are skipped)."""
    with open(path, encoding="utf-8") as handle:
        records = list(parse_ldif(handle, source=str(path.name)))
    return [e for dn, attrs in records if (e := entry_from_attributes(dn, attrs)) is not None]
