"""Access metadata: the principal model and the ACL sidecar format.

Principals are lower-case strings: ``user:<name>``, ``group:<name>`` or ``everyone``.
A sidecar ``<document>.acl.json`` next to a document overrides POSIX permissions::

    {"allow": ["group:finance", "user:alice"], "deny": ["user:bob"]}

or, as exported from NTFS (e.g. by a PowerShell ``Get-Acl`` script)::

    {"aces": [{"principal": "CORP\\\\Finance", "kind": "group", "type": "allow", "rights": ["read"]}]}

An ACE counts when its rights include read (``read``, ``readandexecute``, ``modify``,
``fullcontrol``). No allowed principal means no access metadata: the document is
quarantined, never indexed.
"""

from __future__ import annotations

import grp
import json
import pwd
import stat

from docsync.sources.base import AccessUnresolved

SIDECAR_SUFFIX = ".acl.json"
# Write alone does not grant read (a drop-box folder); these rights do.
READ_RIGHTS = {"read", "readdata", "readandexecute", "read_and_execute", "modify", "fullcontrol", "full_control", "genericread", "genericall"}
PRINCIPAL_KINDS = ("user", "group")


def normalize_principal(value: str) -> str:
    """Validate and lower-case one principal string."""
    principal = value.strip().lower()
    if principal == "everyone":
        return principal
    kind, sep, name = principal.partition(":")
    if not sep or kind not in PRINCIPAL_KINDS or not name.strip():
        raise AccessUnresolved(
            f"invalid principal {value!r}: use 'user:<name>', 'group:<name>' or 'everyone'"
        )
    return f"{kind}:{name.strip()}"


def parse_sidecar(raw: bytes) -> tuple[list[str], list[str]]:
    """(allowed, denied) from an ACL sidecar; raises AccessUnresolved with a reason."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AccessUnresolved(f"ACL sidecar is not valid JSON ({exc}); fix or remove the sidecar") from exc
    if not isinstance(data, dict):
        raise AccessUnresolved("ACL sidecar must be a JSON object with 'allow' or 'aces'")
    allow: list[str] = []
    deny: list[str] = []
    if "aces" in data:
        for ace in data["aces"] or []:
            if not isinstance(ace, dict) or "principal" not in ace:
                raise AccessUnresolved(f"ACL sidecar ACE without principal: {ace!r}")
            raw_rights = ace.get("rights", ["read"])
            if isinstance(raw_rights, str):  # Get-Acl exports "ReadAndExecute, Synchronize"
                raw_rights = raw_rights.split(",")
            if not isinstance(raw_rights, list):
                raise AccessUnresolved(f"ACL sidecar ACE rights must be a list or a string: {ace!r}")
            rights = {str(r).lower().replace(" ", "") for r in raw_rights}
            if not rights & READ_RIGHTS:
                continue
            kind = str(ace.get("kind", "user")).lower()
            name = str(ace["principal"])
            principal = "everyone" if name.lower() in ("everyone", "s-1-1-0") else normalize_principal(f"{kind}:{name}")
            (deny if str(ace.get("type", "allow")).lower() == "deny" else allow).append(principal)
    else:
        for key, target in (("allow", allow), ("deny", deny)):
            values = data.get(key, [])
            if not isinstance(values, list):
                raise AccessUnresolved(f"ACL sidecar '{key}' must be a list of principals")
            target.extend(normalize_principal(str(v)) for v in values)
    allowed = sorted(set(allow) - set(deny))
    if not allowed:
        raise AccessUnresolved("ACL sidecar grants read access to no one; no access metadata, not indexed")
    return allowed, sorted(set(deny))


def posix_principals(st_uid: int, st_gid: int, st_mode: int) -> list[str]:
    """Principals that can read a file according to its POSIX owner, group and mode."""
    principals: list[str] = []
    if st_mode & stat.S_IRUSR:
        try:
            principals.append(f"user:{pwd.getpwuid(st_uid).pw_name}")
        except KeyError:
            principals.append(f"user:uid-{st_uid}")
    if st_mode & stat.S_IRGRP:
        try:
            principals.append(f"group:{grp.getgrgid(st_gid).gr_name}")
        except KeyError:
            principals.append(f"group:gid-{st_gid}")
    if st_mode & stat.S_IROTH:
        principals.append("everyone")
    if not principals:
        raise AccessUnresolved("file mode grants read access to no one; no access metadata, not indexed")
    return sorted(principals)
