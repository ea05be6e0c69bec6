"""Access metadata of file shares: the ACL sidecar format and which sidecars are trusted.

Principals are canonical strings (:func:`docsync.principals.canonical_principal`):
``user:<name>``, ``group:<name>`` or ``everyone``. A sidecar ``<document>.acl.json`` (the
suffix in any letter case) next to a document overrides its POSIX permissions::

    {"allow": ["group:finance", "user:alice"], "deny": ["user:bob"]}

or, as exported from NTFS (e.g. by a PowerShell ``Get-Acl`` script)::

    {"aces": [{"principal": "CORP\\\\Finance", "kind": "group", "type": "allow", "rights": ["read"]}]}

An ACE counts when its rights include read (``read``, ``readandexecute``, ``modify``,
``fullcontrol``, ... or a numeric access mask with FILE_READ_DATA / GENERIC_READ /
GENERIC_ALL). Its type (key ``type`` or ``AccessControlType``, any letter case) is
``allow``/``AccessAllowed``/``0`` or ``deny``/``AccessDenied``/``1`` (how ``ConvertTo-Json``
writes ``AccessControlType.Deny``); anything else, or no type, makes the sidecar unresolved:
an unknown ACE never allows. A deny ACE without ``kind`` denies both ``user:`` and
``group:`` of that name. No allowed principal means no access metadata: the document is
quarantined, never indexed.
"""

from __future__ import annotations

import grp
import json
import pwd
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from docsync.principals import EVERYONE, InvalidPrincipal, canonical_principal
from docsync.sources.base import SIDECAR_SUFFIX, AccessUnresolved

if TYPE_CHECKING:
    import os

__all__ = [
    "MAX_SIDECAR_BYTES",
    "SIDECAR_SUFFIX",
    "TrustedOwners",
    "normalize_principal",
    "parse_sidecar",
]

MAX_SIDECAR_BYTES = 1 << 20
# Write alone does not grant read (a drop-box folder); these rights do.
READ_RIGHTS = {"read", "readdata", "readandexecute", "read_and_execute", "modify", "fullcontrol", "full_control", "genericread", "genericall"}
# Access-mask bits that include reading the data: FILE_READ_DATA, GENERIC_ALL, GENERIC_READ.
READ_MASK = 0x1 | 0x10000000 | 0x80000000
ALLOW_TYPES = {"allow", "accessallowed", "0"}
DENY_TYPES = {"deny", "accessdenied", "1"}
EVERYONE_NAMES = {"everyone", "s-1-1-0"}


def normalize_principal(value: str) -> str:
    """The canonical form of one principal; raises AccessUnresolved when it is invalid."""
    try:
        return canonical_principal(value)
    except InvalidPrincipal as exc:
        raise AccessUnresolved(str(exc)) from exc


def _reads(raw_rights: object, ace: dict) -> bool:
    """Whether an ACE's rights include reading the data."""
    if isinstance(raw_rights, bool):
        raise AccessUnresolved(f"ACL sidecar ACE rights must be a list, a string or an access mask: {ace!r}")
    if isinstance(raw_rights, int):
        return bool(raw_rights & READ_MASK)
    if isinstance(raw_rights, str):  # Get-Acl exports "ReadAndExecute, Synchronize"
        raw_rights = raw_rights.split(",")
    if not isinstance(raw_rights, list):
        raise AccessUnresolved(f"ACL sidecar ACE rights must be a list, a string or an access mask: {ace!r}")
    rights = {str(r).lower().replace(" ", "") for r in raw_rights}
    numeric = {int(r) for r in rights if r.isdigit()}
    return bool(rights & READ_RIGHTS) or any(n & READ_MASK for n in numeric)


def _ace_type(ace: dict) -> str:
    """``allow`` or ``deny``; AccessUnresolved for a missing or unknown type."""
    found = [v for k, v in ace.items() if k in ("type", "accesscontroltype")]
    if not found:
        raise AccessUnresolved(f"ACL sidecar ACE without 'type' (allow or deny): {ace!r}")
    kinds = set()
    for value in found:
        text = str(value).strip().lower() if not isinstance(value, bool) else ""
        if text in ALLOW_TYPES:
            kinds.add("allow")
        elif text in DENY_TYPES:
            kinds.add("deny")
        else:
            raise AccessUnresolved(f"ACL sidecar ACE of unknown type {value!r} (use allow or deny): {ace!r}")
    return "deny" if "deny" in kinds else "allow"


def _ace_principals(ace: dict, denying: bool) -> list[str]:
    name = str(ace["principal"]).strip()
    bare = name.rpartition("\\")[2].strip().lower()
    if bare in EVERYONE_NAMES:
        return [EVERYONE]
    if "kind" not in ace:
        # A deny must not miss a group because the exporter left its kind out.
        kinds = ("user", "group") if denying else ("user",)
    else:
        kinds = (str(ace["kind"]).strip().lower(),)
    return [normalize_principal(f"{kind}:{name}") for kind in kinds]


def parse_sidecar(raw: bytes) -> tuple[list[str], list[str]]:
    """(allowed, denied) from an ACL sidecar; raises AccessUnresolved with a reason."""
    try:
        data = json.loads(raw.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AccessUnresolved(f"ACL sidecar is not valid JSON ({exc}); fix or remove the sidecar") from exc
    if not isinstance(data, dict):
        raise AccessUnresolved("ACL sidecar must be a JSON object with 'allow' or 'aces'")
    allow: list[str] = []
    deny: list[str] = []
    if "aces" in data:
        aces = data["aces"] or []
        if not isinstance(aces, list):
            raise AccessUnresolved("ACL sidecar 'aces' must be a list of ACEs")
        for raw_ace in aces:
            if not isinstance(raw_ace, dict):
                raise AccessUnresolved(f"ACL sidecar ACE is not an object: {raw_ace!r}")
            ace = {str(k).strip().lower(): v for k, v in raw_ace.items()}
            if "principal" not in ace:
                raise AccessUnresolved(f"ACL sidecar ACE without principal: {raw_ace!r}")
            if not _reads(ace.get("rights", ace.get("filesystemrights", ["read"])), raw_ace):
                continue
            denying = _ace_type(ace) == "deny"
            (deny if denying else allow).extend(_ace_principals(ace, denying))
    else:
        for key, target in (("allow", allow), ("deny", deny)):
            values = data.get(key, [])
            if not isinstance(values, list):
                raise AccessUnresolved(f"ACL sidecar '{key}' must be a list of principals")
            target.extend(normalize_principal(str(v)) for v in values)
    # Denying everyone leaves no reader, whatever else is allowed.
    allowed = [] if EVERYONE in deny else sorted(set(allow) - set(deny))
    if not allowed:
        raise AccessUnresolved("ACL sidecar grants read access to no one; no access metadata, not indexed")
    return allowed, sorted(set(deny))


# --- trust ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustedOwners:
    """Who may write a document's ACL sidecar, besides the document's own owner.

    Configured by ``DOCSYNC_TRUSTED_SIDECAR_OWNERS`` (comma-separated): ``uid:<n>`` or
    ``user:<name>`` trusts sidecars owned by that user; ``gid:<n>`` or ``group:<name>`` trusts
    sidecars whose group is that group (any member can create those: list only a group of ACL
    administrators). root (uid 0) is always trusted: it could give any file any owner anyway.

    A sidecar counts only when it is a regular file (a symbolic link is never honoured), it
    is owned by the document's owner or a trusted owner, and it is not world-writable.
    Otherwise the document is quarantined at stage ``access``: it never falls back to the
    (possibly wider) POSIX permissions. Limits: a group-writable sidecar is trusted (its
    group's members are trusted as much as its owner); POSIX ACL entries on the sidecar that
    grant write to others are not inspected.
    """

    uids: frozenset[int] = frozenset({0})
    gids: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, values: tuple[str, ...] | list[str]) -> TrustedOwners:
        """From ``DOCSYNC_TRUSTED_SIDECAR_OWNERS`` entries; ValueError on an unknown entry."""
        uids, gids = {0}, set()
        for value in values:
            kind, _, name = value.strip().partition(":")
            kind, name = kind.strip().lower(), name.strip()
            try:
                if kind == "uid":
                    uids.add(int(name))
                elif kind == "gid":
                    gids.add(int(name))
                elif kind == "user":
                    uids.add(pwd.getpwnam(name).pw_uid)
                elif kind == "group":
                    gids.add(grp.getgrnam(name).gr_gid)
                else:
                    raise ValueError(kind)
            except (KeyError, ValueError) as exc:
                raise ValueError(
                    f"DOCSYNC_TRUSTED_SIDECAR_OWNERS: cannot use {value!r}; use uid:<n>, gid:<n>, "
                    "user:<name> or group:<name> (names must exist on this worker)"
                ) from exc
        return cls(frozenset(uids), frozenset(gids))

    def problem(self, sidecar: os.stat_result, document_uid: int) -> str:
        """Why a sidecar with this stat is not trusted for a document owned by
        ``document_uid``; "" when it is trusted."""
        if stat.S_ISLNK(sidecar.st_mode):
            return "is a symbolic link; sidecars must be regular files (symlinked sidecars are not honoured)"
        if not stat.S_ISREG(sidecar.st_mode):
            return "is not a regular file"
        if sidecar.st_mode & stat.S_IWOTH:
            return "is world-writable: anyone could change who may read the document"
        if sidecar.st_uid != document_uid and sidecar.st_uid not in self.uids and sidecar.st_gid not in self.gids:
            return (
                f"is owned by uid {sidecar.st_uid}, not by the document's owner (uid {document_uid}) nor by a "
                "trusted owner (DOCSYNC_TRUSTED_SIDECAR_OWNERS)"
            )
        return ""

