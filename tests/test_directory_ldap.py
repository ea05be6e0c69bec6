"""The directory sync against a real OpenLDAP slapd (tests/support/slapd_server.py): StartTLS
and LDAPS with certificate verification, a bind account, paged searches, nested groups, a
cycle, a disabled user, renames and a removal that take effect within one run, the fail-closed
behaviour when the directory is unreachable, and index.search(..., user=...) on a real Qdrant."""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import replace

import pytest

from docsync import directory, index, state
from docsync.config import load_settings
from docsync.directory import DirectoryUnavailable, DirectoryUnreachable, effective_principals
from docsync.directory.ldap_reader import connection_config
from docsync.principals import canonical_principals
from tests.support.slapd_server import EXPECTED, READER_DN, READER_PW, SUFFIX, group, person


def set_connection(monkeypatch, server, tls: str = "starttls", **extra) -> None:
    """The directory's Airflow connection `corp_ldap`, as AIRFLOW_CONN_CORP_LDAP (JSON)."""
    port = server.ldaps_port if tls == "ldaps" else server.port
    monkeypatch.setenv("AIRFLOW_CONN_CORP_LDAP", json.dumps({
        "conn_type": "generic", "host": "127.0.0.1", "port": port, "login": READER_DN, "password": READER_PW,
        "extra": {"tls": tls, "ca_file": server.ca_file, "page_size": 3} | extra}))


@pytest.fixture()
def corp(slapd_server, docsync_env, monkeypatch, tmp_path):
    """Settings of directory `corp`: the slapd server through the Airflow connection `corp_ldap`
    (StartTLS, read in pages of 3); the base DN from DOCSYNC_DIRECTORY_BASE_DN."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    for name, value in {"NAME": "corp", "CONN_ID": "corp_ldap", "BASE_DN": SUFFIX}.items():
        monkeypatch.setenv(f"DOCSYNC_DIRECTORY_{name}", value)
    monkeypatch.delenv("DOCSYNC_PRINCIPAL_DOMAINS", raising=False)
    set_connection(monkeypatch, slapd_server)
    return load_settings()


def resolved(settings, *users: str) -> dict[str, list[str]]:
    return {u: effective_principals(u, settings) for u in users}


def metrics_text(settings) -> str:
    return (settings.home / "metrics" / "docsync_directory_corp.prom").read_text()


def test_sync_resolves_nested_groups_a_cycle_and_a_disabled_user(corp, slapd_server):
    with pytest.raises(DirectoryUnavailable, match="no snapshot yet"):
        effective_principals("alice", corp)  # never synced: no guessing
    # the reader may see 4 entries unpaged: without pages of 3 this read fails
    unpaged = subprocess.run(["ldapsearch", "-x", "-H", slapd_server.url, "-D", READER_DN, "-w", READER_PW,
                              "-b", SUFFIX, "(objectClass=*)"], capture_output=True, text=True, timeout=30)
    assert unpaged.returncode == 4, unpaged.stderr  # sizeLimitExceeded
    report = directory.sync_directory(corp)
    assert report | {"synced_at": None} == report | {
        "users": 4, "groups": 7, "disabled_users": 1, "entries_changed": 11, "revocations": 0, "synced_at": None}
    assert resolved(corp, *EXPECTED) == EXPECTED
    # spelled any way the index side spells it; an unknown user gets `everyone` only
    assert effective_principals("CORP\\Alice", corp) == effective_principals(" User : ALICE ", corp) == EXPECTED["user:alice"]
    assert effective_principals("mallory", corp) == ["everyone"]
    assert effective_principals("mallory", corp.replace(directory_unknown_user="none")) == []
    with pytest.raises(ValueError, match="not a user"):
        effective_principals("group:finance", corp)
    text = metrics_text(corp)
    assert 'docsync_directory_users{source="corp"} 4.0' in text and 'docsync_directory_sync_failures{source="corp"} 0.0' in text
    assert "# TYPE docsync_directory_revocation_lag_seconds histogram" in text
    again = directory.sync_directory(corp)  # nothing changed: nothing written
    assert (again["entries_changed"], again["entries_removed"], again["names_changed"]) == (0, 0, 0)


def test_removal_rename_and_disable_take_effect_within_one_run(corp, slapd_server):
    directory.sync_directory(corp)
    slapd_server.modify(
        f"dn: {group('finance-emea')}\nchangetype: modify\ndelete: member\nmember: {person('alice')}\n"
        f"-\nadd: member\nmember: {person('dave')}\n\n"  # groupOfNames needs a member; dave is disabled
        f"dn: {group('sales')}\nchangetype: modrdn\nnewrdn: cn=revenue\ndeleteoldrdn: 1\n\n"
        f"dn: {person('carol')}\nchangetype: modrdn\nnewrdn: uid=caroline\ndeleteoldrdn: 1\n")
    report = directory.sync_directory(corp)
    assert report["entries_removed"] == 0  # renames keep their entryUUID: changed, not deleted and added
    assert resolved(corp, "alice", "bob", "carol", "caroline") == {
        "alice": ["everyone", "user:alice"],  # the removal propagated through finance and all-staff
        "bob": ["everyone", "group:all-staff", "group:revenue", "user:bob"],  # sales is revenue now
        "carol": ["everyone"],  # renamed away: unknown
        # refint moved caroline's member DN in cycle-a; the posixGroup still says memberUid carol
        "caroline": ["everyone", "group:cycle-a", "group:cycle-b", "user:caroline"],
    }
    assert report["revocations"] == 3  # alice, bob (group:sales), carol lost principals
    slapd_server.modify(f"dn: {person('bob')}\nchangetype: modify\nadd: objectClass\nobjectClass: shadowAccount\n-\n"
                        "add: shadowExpire\nshadowExpire: 1\n")
    assert directory.sync_directory(corp)["revocations"] == 1
    assert effective_principals("bob", corp) == []  # disabled now
    text = metrics_text(corp)
    assert 'docsync_directory_revocation_lag_seconds_count{source="corp"} 4.0' in text
    assert 'docsync_directory_revocation_lag_seconds_bucket{le="60",source="corp"} 4.0' in text


def test_ldaps_and_certificate_verification(corp, slapd_server, monkeypatch):
    set_connection(monkeypatch, slapd_server, tls="ldaps")
    assert connection_config(corp.directory).url == slapd_server.ldaps_url
    assert directory.sync_directory(corp)["users"] == 4
    wrong_ca = str(slapd_server.tmp / "other-ca.pem")
    set_connection(monkeypatch, slapd_server, ca_file=wrong_ca)
    with pytest.raises(DirectoryUnreachable, match="certificate verify failed"):
        directory.sync_directory(corp)  # StartTLS
    set_connection(monkeypatch, slapd_server, tls="ldaps", ca_file=wrong_ca)
    with pytest.raises(DirectoryUnreachable, match="certificate verify failed"):
        directory.sync_directory(corp)
    set_connection(monkeypatch, slapd_server)
    config = connection_config(corp.directory)
    with pytest.raises(DirectoryUnreachable, match="doesn't match"):  # a name the certificate does not carry
        directory.sync_directory(corp, replace(config, url=f"ldap://localhost:{slapd_server.port}"))
    with pytest.raises(DirectoryUnreachable, match="invalidCredentials"):
        directory.sync_directory(corp, replace(config, password="wrong"))
    # anonymous may read nothing here; a filter that finds no user: neither replaces the snapshot
    with pytest.raises(DirectoryUnreachable, match="noSuchObject"):
        directory.sync_directory(corp, replace(config, bind_dn=None, password=None))
    with pytest.raises(DirectoryUnreachable, match="returned no users"):
        directory.sync_directory(corp, replace(config, user_filter="(uid=nobody)"))
    assert resolved(corp, *EXPECTED) == EXPECTED
    monkeypatch.delenv("AIRFLOW_CONN_CORP_LDAP")
    with pytest.raises(DirectoryUnreachable, match="no Airflow connection 'corp_ldap'"):
        directory.sync_directory(corp)
    assert state.snapshot_status(state.get_engine(corp.state_url), "corp")["failures"] == 7


def test_unreachable_directory_keeps_the_last_snapshot_and_counts(corp, slapd_server):
    directory.sync_directory(corp)
    slapd_server.stop()
    for _ in range(2):
        with pytest.raises(DirectoryUnreachable, match="last good snapshot stays in force"):
            directory.sync_directory(corp)
    assert resolved(corp, *EXPECTED) == EXPECTED  # neither widened nor dropped
    status = state.snapshot_status(state.get_engine(corp.state_url), "corp")
    assert status["failures"] == 2 and "could not be read" in status["last_error"]
    values = directory.sync.metric_values(corp)
    assert values["directory_sync_failures"] == 2 and 0 <= values["directory_snapshot_age_seconds"] < 60
    assert not math.isnan(values["directory_last_success_timestamp_s"])
    assert 'docsync_directory_sync_failures{source="corp"} 2.0' in metrics_text(corp)


def test_search_as_a_user_uses_the_directory_without_reindexing(corp, slapd_server):
    """Points carry the principals their sources named; the user's nested groups decide."""
    from qdrant_client import QdrantClient, models

    directory.sync_directory(corp)
    client = QdrantClient(":memory:")
    client.create_collection("docs", vectors_config=models.VectorParams(size=4, distance=models.Distance.COSINE))
    docs = {"finance": (["group:CORP\\Finance"], []), "public": (["everyone"], []), "sales": (["group:sales"], []),
            "staff-not-emea": (["group:all-staff"], ["group:finance-emea"])}
    client.upsert("docs", [
        # stored as a source stores them: canonical (group:CORP\Finance is group:finance)
        models.PointStruct(id=i, vector=[1.0, 0.1 * i, 0.0, 0.0], payload={"name": name} | index.access_payload(
            canonical_principals(allow), canonical_principals(deny)))
        for i, (name, (allow, deny)) in enumerate(docs.items())
    ])

    def names(user: str) -> set[str]:
        return {h.payload["name"] for h in index.search(client, "docs", [1.0, 0.0, 0.0, 0.0], limit=10, user=user)}

    assert names("alice") == {"finance", "public"}  # staff-not-emea denies her through finance-emea
    assert names("bob") == {"public", "sales", "staff-not-emea"}
    assert names("dave") == set()  # disabled: not even public documents
    assert names("mallory") == {"public"}
    with pytest.raises(ValueError, match="not both"):
        index.search(client, "docs", [1.0, 0.0, 0.0, 0.0], ["group:sales"], user="alice")
    slapd_server.modify(f"dn: {group('finance-emea')}\nchangetype: modify\ndelete: member\nmember: {person('alice')}\n"
                        f"-\nadd: member\nmember: {person('dave')}\n")
    directory.sync_directory(corp)
    assert names("alice") == {"public"}  # the next query, no document re-indexed


def test_dag_task_binds_with_the_airflow_connection(corp, slapd_server, monkeypatch):
    """directory_sync's task reads host, bind DN, password and TLS from the Airflow connection."""
    from docsync.dagfactory import build_directory_dag

    set_connection(monkeypatch, slapd_server, tls="ldaps", base_dn=SUFFIX)
    monkeypatch.delenv("DOCSYNC_DIRECTORY_BASE_DN")
    dag = build_directory_dag("directory_sync_test", schedule=None, doc_md="test")
    report = dag.get_task("sync_directory").python_callable()
    assert report["users"] == 4 and resolved(corp, *EXPECTED) == EXPECTED
