"""Effective principals from the membership graph (docsync.directory.graph) and the reading of
directory entries (docsync.directory.entries): nesting, cycles, disabled and ambiguous accounts,
Active Directory and OpenLDAP attributes, names canonicalised as the index side does."""

from __future__ import annotations

import uuid

import pytest

from docsync.directory.entries import DirectoryEntry, entry_from_attributes, is_disabled, normalize_dn
from docsync.directory.graph import effective_sets
from docsync.principals import canonical_principal

BASE = "DC=corp,DC=example"


def ad_user(sam: str, uac: int = 512, **extra) -> DirectoryEntry:
    attrs = {"objectClass": [b"top", b"person", b"organizationalPerson", b"user"], "sAMAccountName": [sam.encode()],
             "userAccountControl": [str(uac).encode()], "objectGUID": [uuid.uuid4().bytes_le],
             "whenChanged": [b"20261201120000.0Z"], "uSNChanged": [b"4711"]} | extra
    return entry_from_attributes(f"CN={sam.title()},OU=Users,{BASE}", attrs)


def ad_group(sam: str, *members: str) -> DirectoryEntry:
    attrs = {"objectClass": ["top", "group"], "sAMAccountName": [sam], "cn": [sam],
             "member;range=0-*": list(members), "objectGUID": [uuid.uuid4().bytes_le]}
    return entry_from_attributes(f"CN={sam},OU=Groups,{BASE}", attrs)


def test_active_directory_entries_are_read_as_the_index_side_spells_them(monkeypatch):
    monkeypatch.setenv("DOCSYNC_PRINCIPAL_DOMAINS", "corp.example")
    bob = ad_user("Bob", userPrincipalName=[b"Bob@Corp.Example"])
    guest = ad_user("Gina", userPrincipalName=[b"gina@partner.example"])
    assert bob.principal == "user:bob" == canonical_principal("user:CORP\\Bob")
    assert bob.aliases == ()  # bob@corp.example is user:bob already
    assert guest.aliases == ("user:gina@partner.example",)  # a guest's address stays whole, as on the index side
    assert bob.key.startswith("guid:") and bob.usn == 4711 and bob.changed_at.year == 2026
    finance = ad_group("Finance", f"CN=Bob,OU=Users,{BASE}")
    assert finance.principal == "group:finance" == canonical_principal("group:CORP\\Finance")
    assert finance.members == (normalize_dn(f"cn=bob, ou=users,{BASE.lower()}"),)  # range retrieval, DN case


def test_disabled_expired_and_locked_accounts():
    assert ad_user("eve", uac=514).disabled  # 512 + ACCOUNTDISABLE
    assert not ad_user("eve", uac=66048).disabled  # 512 + DONT_EXPIRE_PASSWORD
    assert ad_user("eve", accountExpires=[b"116444736000000000"]).disabled  # expired in 1970
    assert not ad_user("eve", accountExpires=[b"9223372036854775807"]).disabled  # never
    assert is_disabled({"shadowexpire": [b"1"]}) and not is_disabled({"shadowexpire": [b"-1"]})
    assert is_disabled({"pwdaccountlockedtime": [b"000001010000Z"]})
    assert is_disabled({"useraccountcontrol": [b"garbage"]})  # unreadable: fail closed
    computer = entry_from_attributes(f"CN=PC1,{BASE}", {"objectClass": ["user", "computer"], "sAMAccountName": ["PC1$"]})
    assert computer is None


def test_nested_groups_cycles_and_disabled_members():
    alice, bob, dave = ad_user("alice"), ad_user("bob"), ad_user("dave", uac=514)
    emea = ad_group("finance-emea", alice.dn, dave.dn)
    finance = ad_group("finance", emea.dn)
    staff = ad_group("all-staff", finance.dn, bob.dn, "CN=Gone,OU=Users," + BASE)  # a dangling member
    cycle_a = ad_group("cycle-a", bob.dn, f"CN=cycle-b,OU=Groups,{BASE}")
    cycle_b = ad_group("cycle-b", cycle_a.dn)
    sets = effective_sets([alice, bob, dave, emea, finance, staff, cycle_a, cycle_b])
    assert sets["user:alice"] == ("everyone", "group:all-staff", "group:finance", "group:finance-emea", "user:alice")
    assert sets["user:bob"] == ("everyone", "group:all-staff", "group:cycle-a", "group:cycle-b", "user:bob")
    assert sets["user:dave"] == ()  # disabled: nothing, not even everyone


def test_a_name_two_accounts_claim_resolves_to_nothing():
    """CORP\\bob and OTHER\\bob are both user:bob (one namespace per deployment): neither's groups."""
    one, other = ad_user("bob"), entry_from_attributes(
        "uid=bob,ou=people,dc=other", {"objectClass": ["inetOrgPerson"], "uid": ["bob"], "cn": ["Bob"],
                                       "userPrincipalName": ["bob@other.example"]})
    group = ad_group("finance", one.dn)
    sets = effective_sets([one, other, group])
    assert sets["user:bob"] == ()
    assert "user:bob" not in sets["user:bob@other.example"]  # the alias does not bring the ambiguous name
    assert sets["user:bob@other.example"] == ("everyone", "user:bob@other.example")


def test_posix_groups_by_member_uid_and_unique_member():
    carol = entry_from_attributes("uid=Carol,ou=people,dc=corp", {"objectClass": ["posixAccount", "inetOrgPerson"],
                                                                  "uid": ["Carol"], "entryUUID": ["AB-12"]})
    ops = entry_from_attributes("cn=ops,ou=groups,dc=corp", {"objectClass": ["posixGroup"], "cn": ["Ops"],
                                                             "memberUid": ["carol", "bad\x00name"]})
    web = entry_from_attributes("cn=web,ou=groups,dc=corp", {"objectClass": ["groupOfUniqueNames"], "cn": ["web"],
                                                             "uniqueMember": ["UID=carol,OU=people,DC=corp#'0101'B"]})
    assert carol.key == "uuid:ab-12" and ops.members == ("uid:carol",)
    assert effective_sets([carol, ops, web])["user:carol"] == ("everyone", "group:ops", "group:web", "user:carol")


@pytest.mark.parametrize("dn", ["cn=a\\,b,ou=x", "CN = A\\,B , OU=X"])
def test_dn_normalisation_keeps_escaped_commas(dn):
    assert normalize_dn(dn) == "cn=a\\,b,ou=x"


def test_entries_round_trip_through_their_stored_form():
    entry = ad_group("finance", f"CN=Bob,OU=Users,{BASE}")
    assert DirectoryEntry.from_row(entry.to_row()) == entry
