"""One canonical principal form on the index and query sides (issue 13, item 5): Unicode NFC,
trimming, case-folding, DOMAIN\\name and UPN mapping, applied by every source."""

from __future__ import annotations

import json
import unicodedata

import pytest

from docsync.principals import InvalidPrincipal, canonical_principal, canonical_principals
from docsync.sources.acl import parse_sidecar
from docsync.sources.fileshare import LocalFileShare
from docsync.sources.sharepoint.acl import graph_principals
from tests.support.sharepoint_export import grant, user

ZOE_NFC = "user:zo\u00eb"  # precomposed e-diaeresis
ZOE_NFD = unicodedata.normalize("NFD", "user:Zo\u00eb")  # e + combining diaeresis


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("user:alice", "user:alice"),
        (" User : Carol ", "user:carol"),
        ("user: carol", "user:carol"),
        ("GROUP:Finance Team", "group:finance team"),
        ("EVERYONE", "everyone"),
        (" everyone ", "everyone"),
        (ZOE_NFD, ZOE_NFC),
        ("user:STRASSE", "user:strasse"),
        ("user:Stra\u00dfe", "user:strasse"),  # case-folding, not lower(): sharp s meets SS
        ("user:CORP\\bob", "user:bob"),
        ("group:CORP\\Finance", "group:finance"),
        ("user: CORP\\ Bob ", "user:bob"),
        ("group:org:contoso.onmicrosoft.com", "group:org:contoso.onmicrosoft.com"),
        ("user:bob@Partner.Example", "user:bob@partner.example"),  # not an own domain: kept whole
    ],
)
def test_canonical_forms(raw, canonical):
    assert canonical_principal(raw, domains=()) == canonical


def test_own_upn_domains_map_to_the_account_name(monkeypatch):
    assert canonical_principal("user:Bob@Corp.Example", domains=["corp.example"]) == "user:bob"
    assert canonical_principal("user:bob@partner.example", domains=["corp.example"]) == "user:bob@partner.example"
    # The default comes from DOCSYNC_PRINCIPAL_DOMAINS, read at each call: both sides agree.
    monkeypatch.setenv("DOCSYNC_PRINCIPAL_DOMAINS", "corp.example, @corp.onmicrosoft.com")
    assert canonical_principal("user:bob@corp.onmicrosoft.com") == "user:bob"
    assert canonical_principal("user:CORP\\bob") == canonical_principal("user:bob@corp.example") == "user:bob"
    monkeypatch.delenv("DOCSYNC_PRINCIPAL_DOMAINS")
    assert canonical_principal("user:bob@corp.example") == "user:bob@corp.example"


@pytest.mark.parametrize("raw", ["", "alice", "role:admin", "user:", "user:  ", "user:CORP\\", "user:\\bob", "user:a\nb", 7])
def test_invalid_principals(raw):
    with pytest.raises(InvalidPrincipal):
        canonical_principal(raw)


def test_canonical_principals_sorts_and_deduplicates():
    assert canonical_principals(["user:B", " user:b", "user:CORP\\b", "Everyone"], domains=()) == ["everyone", "user:b"]


# --- every source stores the canonical form (these failed on the old code) -------------------


def test_sidecar_principals_are_canonical():
    # NTFS exports name accounts DOMAIN\name; a deny for CORP\bob must meet user:bob of a query.
    raw = json.dumps({"aces": [
        {"principal": "CORP\\Finance", "kind": "group", "type": "allow", "rights": ["Read"]},
        {"principal": "CORP\\bob", "kind": "user", "type": "deny", "rights": ["Read"]},
    ]}).encode()
    assert parse_sidecar(raw) == (["group:finance"], ["user:bob"])
    simple = json.dumps({"allow": [ZOE_NFD, "group:Staff"], "deny": ["user: CORP\\Mallory"]}).encode()
    assert parse_sidecar(simple) == (["group:staff", ZOE_NFC], ["user:mallory"])


def test_default_principals_are_canonical(tmp_path):
    root = tmp_path / "share"
    root.mkdir()
    (root / "doc.txt").write_text("x")
    source = LocalFileShare("s", root, acl_mode="sidecar", default_principals=("Group:Staff", " user:CORP\\Ann "))
    (entry,) = source.list()
    assert source.access(entry) == (["group:staff", "user:ann"], [])


def test_sharepoint_principals_are_canonical():
    nfd_mail = unicodedata.normalize("NFD", "Zo\u00eb@Contoso.com")
    assert graph_principals([grant(["read"], user(nfd_mail))]) == ["user:zo\u00eb@contoso.com"]


def test_upn_domain_setting_applies_to_sources(monkeypatch):
    monkeypatch.setenv("DOCSYNC_PRINCIPAL_DOMAINS", "contoso.com")
    assert graph_principals([grant(["read"], user("Bob@contoso.com"))]) == ["user:bob"]
    assert parse_sidecar(b'{"allow": ["user:bob@contoso.com", "user:CORP\\\\carol"]}') == (["user:bob", "user:carol"], [])
