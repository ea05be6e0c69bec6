"""SharePoint permissions -> the docsync principal model (see docsync.sources.acl).

Microsoft Graph ``permission`` resources map as follows (only read-capable roles count:
``read``, ``write``, ``owner``; other roles such as ``restrictedView`` grant nothing):

=====================================================  ==================================
grant                                                  principal
=====================================================  ==================================
``user`` / ``siteUser`` with ``email`` (or UPN, or a  ``user:<email or upn>``
claims ``loginName`` ``i:0#.f|membership|<upn>``)
``group`` (Entra ID / Microsoft 365 group)             ``group:<displayName or id>``
``siteGroup`` (SharePoint group)                       ``group:<displayName or loginName>``
``siteUser`` ``c:0(.s|true`` (Everyone)                ``everyone``
``siteUser`` ``...spo-grid-all-users...``              ``group:org:<tenant>``
sharing link, scope ``anonymous``                      ``everyone``
sharing link, scope ``organization``                   ``group:org:<tenant>``
sharing link, scope ``users``                          its granted identities (as above)
sharing link, scope ``existingAccess``                 nothing (grants no new access)
=====================================================  ==================================

``<tenant>`` is the manifest's ``tenant`` (default ``organization``). Identities with
neither email, UPN nor a name (only an id or a display name of a user), applications and
devices grant nothing. Password-protected and expired links grant nothing (fail closed).
An item whose permissions grant read access to no known principal is unresolved: it is
quarantined, never indexed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from docsync.sources.acl import normalize_principal
from docsync.sources.base import AccessUnresolved

READ_ROLES = {"read", "write", "owner"}
EVERYONE_CLAIMS = {"c:0(.s|true", "c:0!.s|windows"}  # "Everyone" (all users incl. guests)
ORG_CLAIM = "spo-grid-all-users"  # "Everyone except external users"
DEFAULT_TENANT = "organization"


def org_principal(tenant: str | None) -> str:
    """The explicit principal of 'everyone in the organization' (organization links)."""
    return normalize_principal(f"group:org:{(tenant or DEFAULT_TENANT).strip() or DEFAULT_TENANT}")


def parse_time(value: object) -> datetime | None:
    """An ISO 8601 timestamp (Graph style, ``Z`` or offset; naive means UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _user(identity: dict, tenant: str | None) -> str | None:
    login = str(identity.get("loginName") or "").strip().lower()
    if login in EVERYONE_CLAIMS:
        return "everyone"
    if ORG_CLAIM in login:
        return org_principal(tenant)
    for key in ("email", "userPrincipalName"):
        value = str(identity.get(key) or "").strip()
        if "@" in value:
            return normalize_principal(f"user:{value}")
    # Claims login of a user: i:0#.f|membership|alice@contoso.com
    if login.startswith("i:") and "|" in login and "@" in login.rsplit("|", 1)[-1]:
        return normalize_principal(f"user:{login.rsplit('|', 1)[-1]}")
    return None


def _group(identity: dict, keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = str(identity.get(key) or "").strip()
        if value:
            return normalize_principal(f"group:{value}")
    return None


def identity_principals(identity_set: object, tenant: str | None) -> tuple[set[str], int]:
    """(principals, number of identities that could not be mapped) of one identitySet."""
    if not isinstance(identity_set, dict):
        return set(), 1
    found: set[str] = set()
    unknown = 0
    for kind, identity in identity_set.items():
        if kind.startswith("@") or not isinstance(identity, dict):
            continue
        if kind in ("user", "siteUser"):
            principal = _user(identity, tenant)
        elif kind == "group":
            principal = _group(identity, ("displayName", "id"))
        elif kind == "siteGroup":
            principal = _group(identity, ("displayName", "loginName"))
        elif kind in ("application", "device"):
            continue  # not a person who searches
        else:
            principal = None
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


def graph_principals(
    permissions: object, tenant: str | None = None, exported_at: datetime | None = None
) -> list[str]:
    """Allowed principals of a list of Graph permissions; raises AccessUnresolved when none."""
    if isinstance(permissions, dict) and isinstance(permissions.get("value"), list):
        permissions = permissions["value"]  # the raw /permissions response
    if not isinstance(permissions, list):
        raise AccessUnresolved("'permissions' is not a list of Graph permission objects")
    if not permissions:
        raise AccessUnresolved("the item has an empty permission list: no one may read it")
    allowed: set[str] = set()
    skipped = {"no read role": 0, "unknown identity": 0, "unknown shape": 0, "expired or password link": 0}
    for permission in permissions:
        if not isinstance(permission, dict):
            skipped["unknown shape"] += 1
            continue
        roles = permission.get("roles")
        if not isinstance(roles, list) or not {str(r).lower() for r in roles} & READ_ROLES:
            skipped["no read role"] += 1
            continue
        expires = parse_time(permission.get("expirationDateTime"))
        link = permission.get("link")
        if link is not None:
            scope = str(link.get("scope") or "").lower() if isinstance(link, dict) else ""
            if permission.get("hasPassword") or (expires and exported_at and expires <= exported_at):
                skipped["expired or password link"] += 1
                continue
            if scope == "anonymous":
                allowed.add("everyone")
                continue
            if scope == "organization":
                allowed.add(org_principal(tenant))
                continue
            if scope == "existingaccess":
                continue
            if scope != "users":
                skipped["unknown shape"] += 1
                continue
        grantees = _grantees(permission)
        if not grantees:
            skipped["unknown shape"] += 1
        for identity_set in grantees:
            found, unknown = identity_principals(identity_set, tenant)
            allowed |= found
            skipped["unknown identity"] += unknown
    if not allowed:
        why = ", ".join(f"{n} {what}" for what, n in skipped.items() if n) or "no grants"
        raise AccessUnresolved(
            f"none of the item's {len(permissions)} permissions grants read access to a known principal ({why}); "
            "users need an email/UPN, groups a display name"
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
