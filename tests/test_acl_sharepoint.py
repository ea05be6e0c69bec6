"""SharePoint principals that fail closed (issue 13, item 6): groups keyed by id, expiring
grants checked against the export time and now, no inheritance past a folder whose
permissions are missing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from docsync.errors import AccessUnresolved
from docsync.sources.sharepoint import SharePointExport
from docsync.sources.sharepoint.acl import graph_principals, org_principal
from tests.support.sharepoint_export import (
    TENANT,
    GraphExport,
    grant,
    group,
    group_principal,
    link,
    site_group,
    site_group_principal,
    user,
)

EXPORTED = datetime(2026, 1, 10, tzinfo=UTC)
ALICE = grant(["read"], user("alice@contoso.com"))


def principals(perms, exported_at=EXPORTED, site="site-1"):
    return graph_principals(perms, TENANT, exported_at, site)


# --- groups by id -------------------------------------------------------------------------------


def test_site_group_named_like_the_organization_is_not_the_organization():
    """The reproduced bug: a site group whose name is the org-wide principal became org-wide."""
    impostor = grant(["read"], site_group(f"org:{TENANT}", "42"))
    assert org_principal(TENANT) not in principals([impostor])
    assert principals([impostor]) == ["group:site:site-1:42"]


def test_entra_group_named_like_another_principal_is_keyed_by_id():
    for name in (f"org:{TENANT}", "everyone", "Finance"):
        assert principals([grant(["read"], group(name))]) == [group_principal(name)]


def test_groups_with_the_same_name_stay_apart():
    a, b = grant(["read"], site_group("Members", "5")), grant(["read"], site_group("Members", "6"))
    assert principals([a, b]) == ["group:site:site-1:5", "group:site:site-1:6"]


def test_groups_without_a_usable_id_grant_nothing():
    nameless = [
        grant(["read"], {"group": {"displayName": "Finance"}}),
        grant(["read"], {"group": {"id": "org:contoso", "displayName": "x"}}),
        grant(["read"], {"siteGroup": {"displayName": "HQ Visitors", "loginName": "HQ Visitors"}}),
    ]
    with pytest.raises(AccessUnresolved, match="3 unknown identity"):
        principals(nameless)
    with pytest.raises(AccessUnresolved, match="unknown identity"):
        principals([grant(["read"], site_group("HQ Visitors", "4"))], site="")  # no site: ids are ambiguous


def test_org_claim_must_be_the_claim():
    fake = {"siteUser": {"displayName": "x", "loginName": "i:0#.f|membership|spo-grid-all-users@evil.example"}}
    assert principals([grant(["read"], fake)]) == ["user:spo-grid-all-users@evil.example"]
    real = {"siteUser": {"loginName": "c:0-.f|rolemanager|spo-grid-all-users/1b2c"}}
    assert principals([grant(["read"], real)]) == [org_principal(TENANT)]


# --- expiring grants ------------------------------------------------------------------------------


def test_expiring_link_without_export_time_grants_nothing():
    """The reproduced bug: an expired anonymous link granted everyone when exported_at was absent."""
    for expiry in ("2020-01-01T00:00:00Z", "2099-01-01T00:00:00Z"):
        perms = [ALICE, link("anonymous", expirationDateTime=expiry)]
        assert principals(perms, exported_at=None) == ["user:alice@contoso.com"]


def test_expired_direct_grant_grants_nothing():
    expired = grant(["read"], user("contractor@partner.example")) | {"expirationDateTime": "2025-12-01T00:00:00Z"}
    assert principals([ALICE, expired]) == ["user:alice@contoso.com"]


def test_grant_that_expired_after_the_export_grants_nothing_now():
    since = grant(["read"], user("temp@contoso.com")) | {"expirationDateTime": "2026-02-01T00:00:00Z"}
    assert principals([ALICE, since], exported_at=datetime(2026, 1, 10, tzinfo=UTC)) == ["user:alice@contoso.com"]


def test_unreadable_expiry_grants_nothing():
    odd = link("organization", expirationDateTime="next tuesday")
    assert principals([ALICE, odd]) == ["user:alice@contoso.com"]


def test_valid_expiring_grants_still_grant():
    later = "2099-01-01T00:00:00Z"
    perms = [link("organization", expirationDateTime=later), grant(["read"], user("temp@contoso.com")) | {"expirationDateTime": later}]
    assert principals(perms) == sorted([org_principal(TENANT), "user:temp@contoso.com"])


# --- inheritance ------------------------------------------------------------------------------------


@pytest.fixture()
def export(tmp_path):
    exp = GraphExport(tmp_path / "export")
    exp.set_root_permissions([link("anonymous"), grant(["owner"], site_group("HQ Owners", "3"))])  # a wide root
    exp.folder("Board", [grant(["read"], user("chair@contoso.com"))])
    return exp


def _access(exp, path):
    source = SharePointExport("sp", exp.write())
    entries = {e.path: e for e in source.list()}
    return source.access(entries[path])


def test_folder_without_exported_permissions_does_not_inherit_from_further_up(export):
    """The reproduced bug: an item whose folder's permissions failed to export got the root's
    (here: everyone's) access."""
    export.folder("Board/Minutes")  # its permissions failed to export
    export.file("Board/Minutes/2026-01.txt", b"Minutes.\n")
    with pytest.raises(AccessUnresolved, match="has none either"):
        _access(export, "Board/Minutes/2026-01.txt")


def test_folder_missing_from_the_manifest_is_unresolved(export):
    export.file("Board/Secret/plan.txt", b"Plan.\n")
    with pytest.raises(AccessUnresolved, match="not in the manifest"):
        _access(export, "Board/Secret/plan.txt")


def test_folder_with_unusable_permissions_is_unresolved(export):
    export.folder("Board/Minutes", None)["permissions"] = None  # an exporter's marker of a failed call
    export.file("Board/Minutes/2026-01.txt", b"Minutes.\n")
    with pytest.raises(AccessUnresolved, match="not a list"):
        _access(export, "Board/Minutes/2026-01.txt")


def test_items_inherit_their_own_folder(export):
    export.file("Board/agenda.txt", b"Agenda.\n")
    export.file("welcome.txt", b"Welcome.\n")
    assert _access(export, "Board/agenda.txt") == (["user:chair@contoso.com"], [])
    assert _access(export, "welcome.txt")[0] == sorted(["everyone", site_group_principal("3")])
