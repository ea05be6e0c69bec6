"""Effective principals from the membership graph: every group a user belongs to directly or
through nested groups (transitively, cycles allowed), in canonical form.

Fail closed: a disabled account resolves to nothing; a name two different user entries claim
(``CORP\\bob`` and ``OTHER\\bob`` both canonicalise to ``user:bob``) resolves to nothing rather
than to either one's groups; a member reference that names no entry is ignored."""

from __future__ import annotations

import logging
from collections import defaultdict
from typing import TYPE_CHECKING

from docsync.directory.entries import GROUP, USER
from docsync.principals import EVERYONE

if TYPE_CHECKING:
    from collections.abc import Iterable

    from docsync.directory.entries import DirectoryEntry

log = logging.getLogger(__name__)


def parents_of(entries: Iterable[DirectoryEntry]) -> dict[str, set[str]]:
    """entry key -> keys of the groups that list the entry as a member (by DN or memberUid)."""
    by_ref: dict[str, list[str]] = defaultdict(list)
    items = list(entries)
    for entry in items:
        for ref in entry.refs:
            by_ref[ref].append(entry.key)
    parents: dict[str, set[str]] = defaultdict(set)
    for group in items:
        if group.kind != GROUP:
            continue
        for ref in group.members:
            for key in by_ref.get(ref, ()):
                if key != group.key:
                    parents[key].add(group.key)
    return parents


def group_closure(start: Iterable[str], parents: dict[str, set[str]]) -> set[str]:
    """Keys of every group reachable upwards from ``start`` (not included unless reached);
    a visited set makes cycles (A in B, B in A) terminate."""
    seen: set[str] = set()
    todo = [p for key in start for p in parents.get(key, ())]
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        todo.extend(parents.get(key, set()) - seen)
    return seen


def effective_sets(entries: Iterable[DirectoryEntry]) -> dict[str, tuple[str, ...]]:
    """Every name a user is known by (canonical principal and aliases) -> the user's sorted
    effective principals: the names themselves, every group reached, ``everyone``. Disabled
    and ambiguous names map to ``()`` (known, and granted nothing)."""
    items = {e.key: e for e in entries}
    parents = parents_of(items.values())
    claims: dict[str, set[str]] = defaultdict(set)
    for entry in items.values():
        if entry.kind == USER:
            for name in (entry.principal, *entry.aliases):
                claims[name].add(entry.key)
    ambiguous = {name for name, keys in claims.items() if len(keys) > 1}
    reach: dict[str, frozenset[str]] = {}  # group key -> principals of the group and all above it

    def principals_above(group: str) -> frozenset[str]:
        if group not in reach:  # one walk per group, shared by all its members
            keys = group_closure([group], parents) | {group}
            reach[group] = frozenset(items[k].principal for k in keys)
        return reach[group]

    out: dict[str, tuple[str, ...]] = {}
    for name, keys in claims.items():
        if name in ambiguous:
            log.warning("directory: %d user entries are all %s; it resolves to no principals", len(keys), name)
            out[name] = ()
            continue
        user = items[next(iter(keys))]
        if user.disabled:
            out[name] = ()
            continue
        groups = set().union(*(principals_above(g) for g in parents.get(user.key, ())))
        # a name another entry also claims is no principal of this user (fail closed)
        out[name] = tuple(sorted({user.principal, *user.aliases, *groups, EVERYONE} - ambiguous))
    return out
