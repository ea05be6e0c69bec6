"""Directory groups (issue 20): resolving and storing a synthetic directory of N users in nested
groups (SQLite state store), a no-change re-sync, a 1% membership change, and the latency of
``effective_principals`` at query time. Targets: a no-change re-sync writes nothing, a
lookup stays well under a millisecond-scale budget next to a vector search (< 5 ms p95)."""

from __future__ import annotations

import random
import shutil
import time
from typing import TYPE_CHECKING

from bench.common import WORK, report, table

if TYPE_CHECKING:
    import argparse

LOOKUP_P95_TARGET_S = 0.005


def synthetic(users: int, seed: int = 7, drop: float = 0.0) -> list:
    """``users`` users in ~users/20 leaf groups, nested three levels deep (with one cycle)."""
    from docsync.directory.entries import entry_from_attributes

    rng = random.Random(seed)
    leaves = max(1, users // 20)
    mids = max(1, leaves // 10)
    tops = max(1, mids // 5)
    out = []
    members: dict[str, list[str]] = {}
    for i in range(users):
        dn = f"uid=u{i},ou=people,dc=bench"
        out.append(entry_from_attributes(dn, {"objectClass": ["inetOrgPerson"], "uid": [f"u{i}"],
                                              "entryUUID": [f"user-{i}"]}))
        for g in rng.sample(range(leaves), k=min(3, leaves)):
            if rng.random() >= drop:
                members.setdefault(f"leaf{g}", []).append(dn)
    for g in range(leaves):
        members.setdefault(f"mid{g % mids}", []).append(f"cn=leaf{g},ou=groups,dc=bench")
    for g in range(mids):
        members.setdefault(f"top{g % tops}", []).append(f"cn=mid{g},ou=groups,dc=bench")
    members.setdefault("mid0", []).append("cn=top0,ou=groups,dc=bench")  # a cycle
    for name, refs in members.items():
        out.append(entry_from_attributes(f"cn={name},ou=groups,dc=bench", {
            "objectClass": ["groupOfNames"], "cn": [name], "member": refs, "entryUUID": [f"group-{name}"]}))
    return out


def main(args: argparse.Namespace) -> None:
    from docsync import state
    from docsync.config import load_settings
    from docsync.directory import effective_principals
    from docsync.directory.graph import effective_sets
    from docsync.directory.sync import store_snapshot

    sizes = getattr(args, "directory_users", None) or [10_000, 50_000]
    rows, data = [], []
    for users in sizes:
        home = WORK / f"directory-{users}"
        shutil.rmtree(home, ignore_errors=True)
        url = f"sqlite:///{home / 'state.db'}"
        engine = state.get_engine(url)
        entries = synthetic(users)
        t = time.perf_counter()
        effective_sets(entries)
        resolve_s = time.perf_counter() - t
        timings = {}
        for label, batch in (("initial", entries), ("no change", entries), ("1% changed", synthetic(users, drop=0.01))):
            t = time.perf_counter()
            result = store_snapshot(engine, "bench", batch)
            timings[label] = (time.perf_counter() - t, result["entries_changed"], result["revocations"])
        settings = load_settings().replace(home=home, state_url=url, directory_name="bench")
        lookups = []
        for i in random.Random(1).sample(range(users), k=min(1000, users)):
            t = time.perf_counter()
            effective_principals(f"u{i}", settings, engine)
            lookups.append(time.perf_counter() - t)
        p95 = sorted(lookups)[int(len(lookups) * 0.95)]
        rows.append([users, len(entries) - users, resolve_s, *(timings[k][0] for k in timings),
                     timings["no change"][1], timings["1% changed"][2], p95 * 1000])
        data.append({"users": users, "resolve_s": resolve_s, "store": timings, "lookup_p95_s": p95})
        state.get_engine.cache_clear()
    body = table(["users", "groups", "resolve s", "initial store s", "no-change s", "1% change s",
                  "rows written, no change", "revocations, 1%", "lookup p95 ms"], rows)
    body += f"\n\nTarget: no-change re-sync writes 0 rows; lookup p95 < {LOOKUP_P95_TARGET_S * 1000:.0f} ms."
    report("directory", "Directory groups: resolve, store, look up", body, {"runs": data})
