"""Directory entries as docsync keeps them: one typed record per user or group, read from the
attributes of an LDAP entry (Active Directory or OpenLDAP) the same way whether they came from
a server (:mod:`.ldap_reader`) or an LDIF export (:mod:`.ldif_reader`).

Names become principals with :func:`docsync.principals.canonical_principal`, exactly as the
index side stores them: AD's ``sAMAccountName`` (``CORP\\Bob`` on a file's ACL is ``user:bob``),
else OpenLDAP's ``uid`` (users) or ``cn`` (groups). A user's ``userPrincipalName`` is an alias
(``bob@corp.example`` is ``user:bob`` with DOCSYNC_PRINCIPAL_DOMAINS, else kept whole)."""

from __future__ import annotations

import base64
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from docsync.principals import InvalidPrincipal, canonical_principal

log = logging.getLogger(__name__)

USER, GROUP = "user", "group"
# Attributes a reader asks for (AD and OpenLDAP spellings; a directory ignores those it lacks).
ATTRIBUTES = (
    "objectClass", "sAMAccountName", "uid", "cn", "userPrincipalName", "member", "uniqueMember", "memberUid",
    "userAccountControl", "accountExpires", "shadowExpire", "pwdAccountLockedTime", "objectGUID", "entryUUID",
    "uSNChanged", "whenChanged", "modifyTimestamp",
)
# Accounts someone logs in with: AD's `user` (not `contact`, also a person), OpenLDAP's account classes.
USER_CLASSES = frozenset({"user", "inetorgperson", "posixaccount"})
GROUP_CLASSES = frozenset({"group", "groupofnames", "groupofuniquenames", "posixgroup"})
ACCOUNTDISABLE = 0x2  # AD userAccountControl bit
_AD_NEVER = (0, 0x7FFFFFFFFFFFFFFF)  # accountExpires values meaning "never"
_AD_EPOCH = datetime(1601, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class DirectoryEntry:
    """A user or group of the directory. ``key`` is stable across renames (objectGUID/entryUUID,
    else the DN); ``members`` are references (normalised DNs, or ``uid:<name>`` from
    ``memberUid``); ``refs`` are the references by which groups name this entry."""

    key: str
    dn: str
    kind: str  # user | group
    principal: str  # canonical user:<name> / group:<name>
    aliases: tuple[str, ...] = ()  # further canonical principals of the same user (UPN)
    members: tuple[str, ...] = ()
    disabled: bool = False
    changed_at: datetime | None = None  # the directory's last modification of the entry
    usn: int | None = None  # AD uSNChanged

    @property
    def refs(self) -> tuple[str, ...]:
        uid = self.principal.partition(":")[2]
        return (self.dn, f"uid:{uid}") if self.kind == USER else (self.dn,)

    def to_row(self) -> dict:
        return {"key": self.key, "dn": self.dn, "kind": self.kind, "principal": self.principal,
                "aliases": list(self.aliases), "members": list(self.members), "disabled": self.disabled,
                "changed_at": self.changed_at.isoformat() if self.changed_at else None, "usn": self.usn}

    @classmethod
    def from_row(cls, row: dict) -> DirectoryEntry:
        changed = row.get("changed_at")
        return cls(key=row["key"], dn=row["dn"], kind=row["kind"], principal=row["principal"],
                   aliases=tuple(row.get("aliases") or ()), members=tuple(row.get("members") or ()),
                   disabled=bool(row.get("disabled")), usn=row.get("usn"),
                   changed_at=datetime.fromisoformat(changed) if changed else None)


def normalize_dn(dn: str) -> str:
    """A DN for comparison: RDNs trimmed, attribute types and values case-folded (LDAP matches
    names case-insensitively), so that ``CN=Finance, OU=Groups`` meets ``cn=finance,ou=groups``."""
    parts = []
    for rdn in _split_unescaped(dn.strip(), ","):
        avas = []
        for ava in _split_unescaped(rdn, "+"):
            attr, _, value = ava.partition("=")
            avas.append(f"{attr.strip().casefold()}={value.strip().casefold()}")
        parts.append("+".join(sorted(avas)))
    return ",".join(parts)


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == sep:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _first(attrs: dict[str, list], name: str) -> object | None:
    values = attrs.get(name.lower()) or []
    return values[0] if values else None


def _text(value: object) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _int(value: object | None) -> int | None:
    if value is None:
        return None
    try:
        return int(_text(value).strip())
    except ValueError:
        return None


def _generalized_time(value: object | None) -> datetime | None:
    """``20261202101500Z`` / ``20261202101500.0Z`` (whenChanged, modifyTimestamp) as UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = _text(value).strip().rstrip("Z").split(".")[0]
    try:
        return datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return None


def _stable_key(attrs: dict[str, list], dn: str) -> str:
    guid = _first(attrs, "objectGUID")
    if isinstance(guid, bytes) and len(guid) == 16:
        return f"guid:{uuid.UUID(bytes_le=guid)}"  # AD stores GUIDs little-endian
    if guid is not None:
        return f"guid:{_text(guid).strip('{}').lower()}"
    entry_uuid = _first(attrs, "entryUUID")
    if entry_uuid is not None:
        return f"uuid:{_text(entry_uuid).lower()}"
    return f"dn:{dn}"  # an export without operational attributes: a rename is a delete + add


def is_disabled(attrs: dict[str, list], now: datetime | None = None) -> bool:
    """A disabled, expired or locked account (AD ``userAccountControl`` ACCOUNTDISABLE or
    ``accountExpires``; OpenLDAP ``pwdAccountLockedTime`` (ppolicy) or ``shadowExpire``).
    An unreadable value counts as disabled: a user we cannot judge gets nothing."""
    now = now or datetime.now(UTC)
    if (raw := _first(attrs, "userAccountControl")) is not None:
        flags = _int(raw)
        if flags is None or flags & ACCOUNTDISABLE:
            return True
    if (raw := _first(attrs, "accountExpires")) is not None:
        ticks = _int(raw)
        if ticks is None or (ticks not in _AD_NEVER and _AD_EPOCH + timedelta(microseconds=ticks / 10) <= now):
            return True
    if _first(attrs, "pwdAccountLockedTime") is not None:
        return True  # ppolicy: locked (000001010000Z: until an administrator unlocks it)
    if (raw := _first(attrs, "shadowExpire")) is not None:
        days = _int(raw)
        if days is None or (days >= 0 and datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=days) <= now):
            return True
    return False


def _member_refs(attrs: dict[str, list]) -> set[str]:
    """member/uniqueMember DNs (uniqueMember's optional ``#'0101'B`` UID suffix dropped) and
    posixGroup ``memberUid`` names as ``uid:<canonical name>``."""
    refs = {normalize_dn(_text(v)) for v in attrs.get("member", [])}
    for value in attrs.get("uniquemember", []):
        text = _text(value)
        head, sep, tail = text.rpartition("#'")
        refs.add(normalize_dn(head if sep and tail.endswith("'B") else text))
    for value in attrs.get("memberuid", []):
        try:
            refs.add("uid:" + canonical_principal("user:" + _text(value)).partition(":")[2])
        except InvalidPrincipal:
            log.warning("memberUid %r is not a user name; left out", value)
    return refs


def entry_from_attributes(dn: str, attributes: dict[str, list]) -> DirectoryEntry | None:
    """The user or group an LDAP entry describes, or None (another kind of entry, or one
    without a usable name: logged, left out, which can only narrow access)."""
    attrs = {k.split(";", 1)[0].lower(): list(v) if isinstance(v, (list, tuple)) else [v] for k, v in attributes.items()}
    classes = {_text(c).lower() for c in attrs.get("objectclass", [])}
    if "computer" in classes:
        return None
    kind = GROUP if classes & GROUP_CLASSES else USER if classes & USER_CLASSES else None
    if kind is None:
        return None
    # a user is its login name (never its display cn); a group its account name, else its cn
    name = _first(attrs, "sAMAccountName") or (_first(attrs, "uid") if kind == USER else _first(attrs, "cn"))
    try:
        principal = canonical_principal(f"{kind}:{_text(name)}") if name is not None else None
    except InvalidPrincipal:
        principal = None
    if principal is None:
        log.warning("directory entry %s has no usable %s name; left out", dn, kind)
        return None
    aliases: tuple[str, ...] = ()
    upn = _first(attrs, "userPrincipalName") if kind == USER else None
    if upn is not None:
        try:
            alias = canonical_principal(f"user:{_text(upn)}")
        except InvalidPrincipal:
            alias = principal
        aliases = () if alias == principal else (alias,)
    members: tuple[str, ...] = ()
    if kind == GROUP:
        members = tuple(sorted(_member_refs(attrs)))
    changed = _generalized_time(_first(attrs, "whenChanged")) or _generalized_time(_first(attrs, "modifyTimestamp"))
    ndn = normalize_dn(dn)
    return DirectoryEntry(
        key=_stable_key(attrs, ndn), dn=ndn, kind=kind, principal=principal, aliases=aliases, members=members,
        disabled=kind == USER and is_disabled(attrs), changed_at=changed, usn=_int(_first(attrs, "uSNChanged")),
    )


def decode_ldif_value(raw: str, is_base64: bool) -> str | bytes:
    """An LDIF value: base64 (``attr:: ...``) decodes to text when it is UTF-8, else bytes."""
    if not is_base64:
        return raw
    data = base64.b64decode(raw)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data
