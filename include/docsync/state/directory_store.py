"""The directory snapshot: users, groups and their members as last read from LDAP/AD or an
LDIF export, each user's effective principals (resolved when the snapshot is stored, read by
the query side), and the snapshot's status (last success, failures, cumulative revocation lag).

A snapshot is replaced by :func:`apply_snapshot` in ONE transaction with only the rows that
changed (a full diff): a sync killed at any point leaves the last good snapshot whole, and the
next run converges. Readers never see half a snapshot."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import sqlalchemy as sa

from docsync.faults import crash_point
from docsync.state.schema import as_utc, dumps, metadata, utcnow

if TYPE_CHECKING:
    from collections.abc import Iterable

    from sqlalchemy.engine import Engine

# One row per user/group: `data` is DirectoryEntry.to_row() as JSON (the diff compares it whole).
directory_entries = sa.Table(
    "docsync_directory_entries",
    metadata,
    sa.Column("directory", sa.String(128), primary_key=True),
    sa.Column("entry_key", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(8), nullable=False),
    sa.Column("data", sa.Text, nullable=False),
)

# Every name a user is known by (canonical user principal, aliases) -> effective principals.
directory_principals = sa.Table(
    "docsync_directory_principals",
    metadata,
    sa.Column("directory", sa.String(128), primary_key=True),
    sa.Column("name", sa.String(512), primary_key=True),
    sa.Column("principals", sa.Text, nullable=False),  # JSON list; [] = known, granted nothing
)

directory_snapshots = sa.Table(
    "docsync_directory_snapshots",
    metadata,
    sa.Column("directory", sa.String(128), primary_key=True),
    sa.Column("synced_at", sa.DateTime(timezone=True)),  # when the read of the last good snapshot began
    sa.Column("attempted_at", sa.DateTime(timezone=True)),
    sa.Column("failures", sa.Integer, nullable=False, default=0),  # consecutive failed syncs
    sa.Column("last_error", sa.Text, nullable=False, default=""),
    sa.Column("form_tag", sa.String(64), nullable=False, default=""),  # principals.canonical_form_tag()
    sa.Column("stats", sa.Text, nullable=False, default="{}"),  # users, groups, disabled, high USN
    sa.Column("revocation_lag", sa.Text, nullable=False, default="{}"),  # cumulative histogram
)


def load_entries(engine: Engine, directory: str) -> dict[str, dict]:
    """entry key -> stored entry row (DirectoryEntry.to_row())."""
    query = sa.select(directory_entries.c.entry_key, directory_entries.c.data).where(
        directory_entries.c.directory == directory)
    with engine.connect() as conn:
        return {key: json.loads(data) for key, data in conn.execute(query)}


def load_principal_sets(engine: Engine, directory: str) -> dict[str, tuple[str, ...]]:
    query = sa.select(directory_principals.c.name, directory_principals.c.principals).where(
        directory_principals.c.directory == directory)
    with engine.connect() as conn:
        return {name: tuple(json.loads(p)) for name, p in conn.execute(query)}


def principals_of(engine: Engine, directory: str, name: str) -> tuple[str, ...] | None:
    """The stored effective principals of one canonical user name; None: not in the snapshot."""
    query = sa.select(directory_principals.c.principals).where(
        directory_principals.c.directory == directory, directory_principals.c.name == name)
    with engine.connect() as conn:
        value = conn.execute(query).scalar()
    return None if value is None else tuple(json.loads(value))


def snapshot_status(engine: Engine, directory: str) -> dict | None:
    """The snapshot row (synced_at None: never synced successfully), or None: never attempted."""
    with engine.connect() as conn:
        row = conn.execute(sa.select(directory_snapshots).where(directory_snapshots.c.directory == directory)).first()
    if row is None:
        return None
    out = dict(row._mapping)
    out["synced_at"], out["attempted_at"] = as_utc(out["synced_at"]), as_utc(out["attempted_at"])
    out["stats"] = json.loads(out["stats"] or "{}")
    out["revocation_lag"] = json.loads(out["revocation_lag"] or "{}")
    return out


def _upsert_status(conn: sa.Connection, directory: str, **values: object) -> None:
    done = conn.execute(sa.update(directory_snapshots).where(directory_snapshots.c.directory == directory).values(**values))
    if done.rowcount == 0:
        conn.execute(sa.insert(directory_snapshots).values(directory=directory, **values))


def record_failure(engine: Engine, directory: str, error: str) -> None:
    """A sync that could not read the directory: the snapshot is kept, the failure counted."""
    with engine.begin() as conn:
        failures = conn.execute(sa.select(directory_snapshots.c.failures).where(
            directory_snapshots.c.directory == directory)).scalar() or 0
        _upsert_status(conn, directory, attempted_at=utcnow(), failures=failures + 1, last_error=error[:2000])


def _delete(conn: sa.Connection, table: sa.Table, column: sa.Column, directory: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 500):
        conn.execute(sa.delete(table).where(table.c.directory == directory, column.in_(keys[start:start + 500])))


def apply_snapshot(
    engine: Engine,
    directory: str,
    entries: dict[str, dict],
    deleted_entries: Iterable[str],
    principal_sets: dict[str, tuple[str, ...]],
    deleted_names: Iterable[str],
    status: dict,
) -> None:
    """Store the changed entries and principal sets, drop the removed ones and mark the snapshot
    good, all in one transaction (``status``: form_tag, stats, revocation_lag, synced_at)."""
    now = utcnow()
    with engine.begin() as conn:
        # changed rows are deleted and inserted again: one statement per 500 keys, one executemany
        _delete(conn, directory_entries, directory_entries.c.entry_key, directory, [*deleted_entries, *entries])
        if entries:
            conn.execute(sa.insert(directory_entries), [
                {"directory": directory, "entry_key": key, "kind": row["kind"], "data": dumps(row)}
                for key, row in entries.items()])
        _delete(conn, directory_principals, directory_principals.c.name, directory, [*deleted_names, *principal_sets])
        if principal_sets:
            conn.execute(sa.insert(directory_principals), [
                {"directory": directory, "name": name, "principals": json.dumps(list(principals))}
                for name, principals in principal_sets.items()])
        _upsert_status(
            conn, directory, attempted_at=now, synced_at=status.get("synced_at", now), failures=0, last_error="",
            form_tag=status.get("form_tag", ""), stats=dumps(status.get("stats", {})),
            revocation_lag=dumps(status.get("revocation_lag", {})),
        )
        crash_point("directory:before_commit")  # the crash test: nothing of this snapshot may stay
