"""SharePoint permissions -> canonical docsync principals (see docsync.principals).

Microsoft Graph ``permission`` resources map as follows (only read-capable roles count:
``read``, ``write``, ``owner``; other roles such as ``restrictedView`` grant nothing):

=====================================================  =========================================
grant                                                  principal
=====================================================  =========================================
``user`` / ``siteUser`` with ``email`` (or UPN, or a   ``user:<email or upn>``
claims ``loginName`` ``i:0#.f|membership|<upn>``)
``group`` (Entra ID / Microsoft 365 group)             ``group:<object id>``
``siteGroup`` (SharePoint group)                       ``group:site:<site>:<group id>``
``siteUser`` ``c:0(.s|true`` (Everyone)                ``everyone``
``siteUser`` ``c:0-.f|rolemanager|spo-grid-all-users`` ``group:org:<tenant>``
sharing link, scope ``anonymous``                      ``everyone``
sharing link, scope ``organization``                   ``group:org:<tenant>``
sharing link, scope ``users``                          its granted identities (as above)
sharing link, scope ``existingAccess``                 nothing (grants no new access)
=====================================================  =========================================

Groups are keyed by id, never by display name: names are not unique, and a group named like
another principal (``org:<tenant>``, say) must not become it. An Entra group's id is its
object id, what access tokens carry in their ``groups`` claim. SharePoint group ids are
numbers per site, so they are qualified by ``<site>``: the manifest's ``site_id``, else the
one ``parentReference.siteId`` its items name, else their one ``driveId`` (the library); with
none, or several, site groups grant nothing. ``<tenant>`` is the manifest's ``tenant``
(default ``organization``).

Fail closed: identities with neither email, UPN nor claims login (only an id or a display
name of a user), groups without a usable id, applications and devices grant nothing.
Password-protected links grant nothing. A permission with an ``expirationDateTime`` grants
only when the export states when it was taken (``exported_at``) and the expiry lies after
both that moment and now; an unreadable expiry grants nothing. An item whose permissions
grant read access to no known principal is unresolved: it is quarantined, never indexed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from docsync.principals import EVERYONE
from docsync.sources.acl import normalize_principal
from docsync.sources.base import AccessUnresolved
from docsync.sources.sharepoint.common import parse_time

READ_ROLES = {"read", "write", "owner"}
EVERYONE_CLAIMS = {"c:0(.s|true", "c:0!.s|windows"}  # "Everyone" (all users incl. guests)
ORG_CLAIM = "c:0-.f|rolemanager|spo-grid-all-users"  # "Everyone except external users" (+ /<tenant id>)
DEFAULT_TENANT = "organization"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # a plain id: GUIDs, SharePoint group numbers


def org_principal(tenant: str | None) -> str:
    """The explicit principal of 'everyone in the organization' (organization links)."""
    return normalize_principal(f"group:org:{(tenant or DEFAULT_TENANT).strip() or DEFAULT_TENANT}")


@dataclass(frozen=True)
class Scope:
    """What mapping an item's permissions needs besides the permissions themselves."""

    tenant: str | None = None
    exported_at: datetime | None = None  # None: expiring grants cannot be checked, so they grant nothing
    site: str = ""  # qualifies SharePoint group ids; "" leaves site groups unknown
    now: datetime | None = None  # for tests; default: the moment of the check


def _user(identity: dict, scope: Scope) -> str | None:
    login = str(identity.get("loginName") or "").strip().lower()
    if login in EVERYONE_CLAIMS:
        return EVERYONE
    if login.startswith(ORG_CLAIM):
        return org_principal(scope.tenant)
    for key in ("email", "userPrincipalName"):
        value = str(identity.get(key) or "").strip()
        if "@" in value:
            return normalize_principal(f"user:{value}")
    # Claims login of a user: i:0#.f|membership|alice@contoso.com
    if login.startswith("i:") and "|" in login and "@" in login.rsplit("|", 1)[-1]:
        return normalize_principal(f"user:{login.rsplit('|', 1)[-1]}")
    return None


def _plain_id(identity: dict) -> str | None:
    value = str(identity.get("id") or "").strip()
    return value if _ID.fullmatch(value) else None


def identity_principals(identity_set: object, scope: Scope) -> tuple[set[str], int]:
    """(principals, number of identities that could not be mapped) of one identitySet."""
    if not isinstance(identity_set, dict):
        return set(), 1
    found: set[str] = set()
    unknown = 0
    for kind, identity in identity_set.items():
        if kind.startswith("@") or not isinstance(identity, dict):
            continue
        principal: str | None = None
        if kind in ("user", "siteUser"):
            principal = _user(identity, scope)
        elif kind == "group":
            group_id = _plain_id(identity)
            principal = normalize_principal(f"group:{group_id}") if group_id else None
        elif kind == "siteGroup":
            group_id = _plain_id(identity)
            if group_id and scope.site:
                principal = normalize_principal(f"group:site:{scope.site}:{group_id}")
        elif kind in ("application", "device"):
            continue  # not a person who searches
        if principal:
            found.add(principal)
        else:
            unknown += 1
    # user + siteUser often describe the same person: one unknown half is not a gap.
    return found, (0 if found else unknown)


def _grantees(permission: dict) -> list[object]:
    """The identitySets a permission grants to (V2 fields first, legacy ones as fallback)."""
    single = permission.get("grantedToV2") or permission.get("grantedTo")
    many = permission.get("grantedToIdentitiesV2") or permission.get("grantedToIdentities") or []
    return ([single] if single else []) + (list(many) if isinstance(many, list) else [many])


def _expired(permission: dict, scope: Scope) -> bool:
    """An expiring grant counts only while it is provably valid (fail closed)."""
    raw = permission.get("expirationDateTime")
    if raw is None or raw == "":
        return False
    expires = parse_time(raw)
    now = scope.now or datetime.now(UTC)
    return expires is None or scope.exported_at is None or expires <= scope.exported_at or expires <= now


def graph_principals(
    permissions: object,
    tenant: str | None = None,
    exported_at: datetime | None = None,
    site: str = "",
    now: datetime | None = None,
) -> list[str]:
    """Allowed principals of a list of Graph permissions; raises AccessUnresolved when none."""
    scope = Scope(tenant, exported_at, site, now)
    if isinstance(permissions, dict) and isinstance(permissions.get("value"), list):
        permissions = permissions["value"]  # the raw /permissions response
    if not isinstance(permissions, list):
        raise AccessUnresolved("'permissions' is not a list of Graph permission objects")
    if not permissions:
        raise AccessUnresolved("the item has an empty permission list: no one may read it")
    allowed: set[str] = set()
    skipped = {
        "no read role": 0,
        "unknown identity": 0,
        "unknown shape": 0,
        "expired, expiry unknown or password": 0,
    }
    for permission in permissions:
        if not isinstance(permission, dict):
            skipped["unknown shape"] += 1
            continue
        roles = permission.get("roles")
        if not isinstance(roles, list) or not {str(r).lower() for r in roles} & READ_ROLES:
            skipped["no read role"] += 1
            continue
        link = permission.get("link")
        if _expired(permission, scope) or (link is not None and permission.get("hasPassword")):
            skipped["expired, expiry unknown or password"] += 1
            continue
        if link is not None:
            scope_name = str(link.get("scope") or "").lower() if isinstance(link, dict) else ""
            if scope_name == "anonymous":
                allowed.add(EVERYONE)
                continue
            if scope_name == "organization":
                allowed.add(org_principal(tenant))
                continue
            if scope_name == "existingaccess":
                continue
            if scope_name != "users":
                skipped["unknown shape"] += 1
                continue
        grantees = _grantees(permission)
        if not grantees:
            skipped["unknown shape"] += 1
        for identity_set in grantees:
            found, unknown = identity_principals(identity_set, scope)
            allowed |= found
            skipped["unknown identity"] += unknown
    if not allowed:
        why = ", ".join(f"{n} {what}" for what, n in skipped.items() if n) or "no grants"
        raise AccessUnresolved(
            f"none of the item's {len(permissions)} permissions grants read access to a known principal ({why}); "
            "users need an email/UPN, groups an id"
        )
    return sorted(allowed)


def csv_principals(value: str | None, column: str) -> list[str]:
    """``;``-separated principals of a CSV permission column (``user:``, ``group:``,
    ``everyone``; a bare ``name@domain`` is a user)."""
    principals: set[str] = set()
    for raw in (value or "").split(";"):
        token = raw.strip()
        if not token:
            continue
        if ":" not in token and "@" in token:
            token = f"user:{token}"
        try:
            principals.add(normalize_principal(token))
        except AccessUnresolved as exc:
            raise AccessUnresolved(f"column {column!r}: {exc}") from exc
    return sorted(principals)
