"""The directory snapshot in the state store (docsync.state.directory_store), on SQLite and
PostgreSQL: created in an existing store, replaced by a diff in one transaction, failures
counted without touching the snapshot, revocation lag accumulated."""

from __future__ import annotations

import sqlalchemy as sa

from docsync import state
from docsync.directory.entries import entry_from_attributes
from docsync.directory.sync import store_snapshot
from docsync.principals import EVERYONE


def entries(*, alice_in_finance: bool = True, finance_name: str = "finance"):
    users = [entry_from_attributes(f"uid={u},ou=people,dc=x", {"objectClass": ["inetOrgPerson"], "uid": [u],
                                                               "entryUUID": [f"id-{u}"]}) for u in ("alice", "bob")]
    members = ["uid=bob,ou=people,dc=x"] + (["uid=alice,ou=people,dc=x"] if alice_in_finance else [])
    finance = entry_from_attributes("cn=finance,ou=groups,dc=x", {
        "objectClass": ["groupOfNames"], "cn": [finance_name], "member": members, "entryUUID": ["id-finance"],
        "modifyTimestamp": ["20261202090000Z"]})
    return [*users, finance]


def test_tables_are_added_to_an_existing_store(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as conn:  # a store created before the directory tables existed
        state.documents.create(conn)
    old.dispose()
    engine = state.get_engine(url)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"docsync_directory_entries", "docsync_directory_principals", "docsync_directory_snapshots"} <= tables
    state.get_engine.cache_clear()


def test_snapshot_diff_failures_and_revocation_lag(state_url):
    engine = state.get_engine(state_url)
    first = store_snapshot(engine, "corp", entries())
    assert (first["entries_changed"], first["names_changed"], first["revocations"]) == (3, 2, 0)
    assert state.principals_of(engine, "corp", "user:alice") == (EVERYONE, "group:finance", "user:alice")
    assert state.principals_of(engine, "corp", "user:mallory") is None
    assert store_snapshot(engine, "corp", entries())["entries_changed"] == 0  # nothing changed, nothing written

    state.record_failure(engine, "corp", "directory unreachable")
    status = state.snapshot_status(engine, "corp")
    assert status["failures"] == 1 and status["last_error"] == "directory unreachable"
    assert state.principals_of(engine, "corp", "user:alice") == (EVERYONE, "group:finance", "user:alice")

    # alice removed from the group, and the group renamed: only the group's row changes
    second = store_snapshot(engine, "corp", entries(alice_in_finance=False, finance_name="finance-2"))
    assert (second["entries_changed"], second["entries_removed"], second["revocations"]) == (1, 0, 2)
    assert state.principals_of(engine, "corp", "user:alice") == (EVERYONE, "user:alice")
    assert state.principals_of(engine, "corp", "user:bob") == (EVERYONE, "group:finance-2", "user:bob")
    status = state.snapshot_status(engine, "corp")
    assert status["failures"] == 0 and status["stats"]["users"] == 2
    assert status["revocation_lag"]["count"] == 2  # cumulative over snapshots
    # bob's entry is gone: his name is forgotten (the query side then treats him as unknown)
    third = store_snapshot(engine, "corp", [e for e in entries() if e.principal != "user:bob"])
    assert third["entries_removed"] == 1 and state.principals_of(engine, "corp", "user:bob") is None
    assert state.snapshot_status(engine, "corp")["revocation_lag"]["count"] == 3
    assert set(state.load_entries(engine, "corp")) == {"uuid:id-alice", "uuid:id-finance"}
    assert state.snapshot_status(engine, "other") is None
