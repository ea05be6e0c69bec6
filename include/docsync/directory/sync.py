"""The directory sync: read the whole directory (LDAP or LDIF), resolve every user's effective
principals, and store what changed as the new snapshot in one transaction (a full diff,
state.directory_store). A directory that cannot be read leaves the last good snapshot in force
and is counted; its age is a metric and DocsyncDirectorySnapshotStale alerts on it.

Revocation lag: for each user who lost a principal, the seconds from the directory change that
removed it (the changed entry's whenChanged/modifyTimestamp, not before the read of the previous
good snapshot began: a change made earlier would have been seen then) to the snapshot that
applied it. From then on the query side no longer grants it; no document is re-indexed."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

from docsync import state
from docsync.directory.graph import effective_sets
from docsync.directory.ldap_reader import DirectoryUnreachable, LdapConfig, connection_config, read_ldap
from docsync.directory.ldif_reader import LdifError, read_ldif
from docsync.exposition import histogram, samples_for, write_textfile
from docsync.principals import EVERYONE, canonical_form_tag

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy.engine import Engine

    from docsync.config import Settings
    from docsync.directory.entries import DirectoryEntry

log = logging.getLogger(__name__)
LAG = "directory_revocation_lag_seconds"


def unknown_user_principals(settings: Settings) -> tuple[str, ...]:
    """What a user the directory does not know gets (DOCSYNC_DIRECTORY_UNKNOWN_USER)."""
    return (EVERYONE,) if settings.directory.unknown_user == "everyone" else ()


def read_directory(settings: Settings, config: LdapConfig | None = None) -> list[DirectoryEntry]:
    """The whole directory: the LDIF export of DOCSYNC_DIRECTORY_LDIF, else the LDAP server
    (``config``, or the directory's Airflow connection). Raises :class:`DirectoryUnreachable`."""
    path = settings.directory.ldif_path
    if path and config is None:
        try:
            return read_ldif(Path(path))
        except (OSError, LdifError, UnicodeDecodeError) as exc:
            raise DirectoryUnreachable(f"directory export {path} could not be read: {exc}. The last good snapshot "
                                       "stays in force; replace the file with a complete export") from exc
    return read_ldap(config or connection_config(settings.directory))


def _merge_histogram(total: dict, run: dict) -> dict:
    if not total:
        return run
    return {"buckets": {le: total["buckets"].get(le, 0) + n for le, n in run["buckets"].items()},
            "sum": round(total["sum"] + run["sum"], 3), "count": total["count"] + run["count"]}


def _revocation_lags(old_rows: dict[str, dict], new_rows: dict[str, dict], old_sets: dict, new_sets: dict,
                     unknown: tuple[str, ...], now: datetime, previous: datetime | None) -> list[float]:
    """One lag per user name whose effective principals lost at least one (see module doc)."""
    if previous is None:
        return []
    from datetime import datetime as dt

    changed_at: dict[str, float] = {}  # principal of a changed/removed entry -> earliest change time
    for key in old_rows.keys() | new_rows.keys():
        old, new = old_rows.get(key), new_rows.get(key)
        if old == new:
            continue
        when = new.get("changed_at") if new else None
        at = max(dt.fromisoformat(when).timestamp(), previous.timestamp()) if when else previous.timestamp()
        for row in (old, new):
            if row:
                changed_at[row["principal"]] = min(changed_at.get(row["principal"], math.inf), at)
    lags = []
    for name, before in old_sets.items():
        lost = set(before) - set(new_sets.get(name, unknown))
        if lost:
            causes = [changed_at[p] for p in (name, *before) if p in changed_at]
            since = min(causes) if causes else previous.timestamp()
            lags.append(max(0.0, now.timestamp() - since))
    return lags


def store_snapshot(engine: Engine, directory: str, entries: list[DirectoryEntry],
                   unknown: tuple[str, ...] = (EVERYONE,), read_at: datetime | None = None) -> dict:
    """Diff ``entries`` (read from the directory at ``read_at``, default now) against the stored
    snapshot and store the changes in one transaction. The snapshot is as old as its read: a
    change made after the read started may be missing, so the next run's lags count from there."""
    now = state.utcnow()
    read_at = read_at or now
    status = state.snapshot_status(engine, directory) or {}
    stored_rows = old_rows = state.load_entries(engine, directory)
    new_rows = {e.key: e.to_row() for e in entries}
    stored_sets = old_sets = state.load_principal_sets(engine, directory)
    tag = canonical_form_tag()
    if status.get("form_tag", tag) != tag:
        old_rows, old_sets = {}, {}  # principal spellings changed: rewrite the snapshot whole
    new_sets = effective_sets(entries)
    lags = _revocation_lags(old_rows, new_rows, old_sets, new_sets, unknown, now, status.get("synced_at"))
    changed = {k: r for k, r in new_rows.items() if old_rows.get(k) != r}
    changed_sets = {n: p for n, p in new_sets.items() if old_sets.get(n) != p}
    users = [e for e in entries if e.kind == "user"]
    stats = {"users": len(users), "groups": len(entries) - len(users), "disabled_users": sum(e.disabled for e in users),
             "high_usn": max((e.usn for e in entries if e.usn is not None), default=None)}
    state.apply_snapshot(
        engine, directory, changed, stored_rows.keys() - new_rows.keys(), changed_sets,
        stored_sets.keys() - new_sets.keys(),
        {"form_tag": tag, "stats": stats, "synced_at": read_at,
         "revocation_lag": _merge_histogram(status.get("revocation_lag") or {}, histogram(lags))},
    )
    return {"directory": directory, **stats, "entries_changed": len(changed),
            "entries_removed": len(stored_rows.keys() - new_rows.keys()), "names_changed": len(changed_sets),
            "revocations": len(lags), "revocation_lag_max_s": round(max(lags, default=0.0), 3),
            "synced_at": read_at.isoformat()}


def sync_directory(settings: Settings, config: LdapConfig | None = None) -> dict:
    """Read the directory and store the new snapshot; on failure record it, keep the last good
    snapshot, write the metrics and re-raise :class:`DirectoryUnreachable`."""
    engine = state.get_engine(settings.state_url)
    name = settings.directory.name
    read_at = state.utcnow()
    try:
        entries = read_directory(settings, config)
        if not any(e.kind == "user" for e in entries):
            # A wrong base DN or filter, or an account that may read nothing, looks like an empty
            # directory: keep the last good snapshot and alert rather than forget every user.
            raise DirectoryUnreachable(
                f"directory {name!r} returned no users: check the base DN, DOCSYNC_DIRECTORY_USER_FILTER and that "
                "the bind account may read users and groups; the last good snapshot stays in force")
    except DirectoryUnreachable as exc:
        state.record_failure(engine, name, str(exc))
        emit_metrics(settings)
        log.error("directory sync of %r failed: %s", name, exc)
        raise
    report = store_snapshot(engine, name, entries, unknown_user_principals(settings), read_at)
    emit_metrics(settings)
    log.info("directory sync of %r: %s", name, report)
    return report


def metric_values(settings: Settings) -> dict[str, float]:
    """The directory's gauges and its cumulative revocation-lag histogram (flat names)."""
    status = state.snapshot_status(state.get_engine(settings.state_url), settings.directory.name) or {}
    synced = status.get("synced_at")
    age = math.nan if synced is None else max(0.0, (state.utcnow() - synced).total_seconds())
    stats = status.get("stats") or {}
    values = {
        "directory_last_success_timestamp_s": math.nan if synced is None else synced.timestamp(),
        "directory_snapshot_age_seconds": age,
        "directory_max_age_s": float(settings.directory.max_age_s),
        "directory_sync_failures": float(status.get("failures") or 0),
        "directory_users": float(stats.get("users", 0)),
        "directory_groups": float(stats.get("groups", 0)),
        "directory_disabled_users": float(stats.get("disabled_users", 0)),
    }
    lag = status.get("revocation_lag") or histogram([])
    values |= {f"{LAG}_bucket_le_{le}": float(n) for le, n in lag["buckets"].items()}
    return values | {f"{LAG}_sum": float(lag["sum"]), f"{LAG}_count": float(lag["count"])}


def emit_metrics(settings: Settings) -> None:
    """Textfile ``docsync_directory_<name>.prom`` and StatsD gauges (label source=<name>)."""
    from docsync.metrics import _statsd

    name = settings.directory.name
    values = metric_values(settings)
    _statsd(name, values)
    write_textfile(settings.home / "metrics", f"docsync_directory_{name}", samples_for(name, values))
