"""Directory groups: a user's effective principals from Active Directory / LDAP (or an LDIF
export), for the query side. Documents keep the principals their sources name; the
directory says which of them a user holds, nested groups expanded, at query time, so a
membership change takes effect without re-indexing anything.

- :func:`effective_principals` (library), ``docsync principals user:<name>`` (CLI) and
  ``index.search(..., user=...)`` answer from the last good snapshot in the state store;
- :func:`sync_directory` (the ``directory_sync`` DAG, ``docsync directory-sync``) refreshes it.

Fail closed: a user the directory does not know gets ``everyone`` only
(DOCSYNC_DIRECTORY_UNKNOWN_USER=none: nothing); a disabled or ambiguous account nothing; no
snapshot at all, or one stored under other principal settings, raises
:class:`DirectoryUnavailable` instead of guessing."""

from __future__ import annotations

from typing import TYPE_CHECKING

from docsync.directory.ldap_reader import DirectoryUnreachable, LdapConfig
from docsync.directory.sync import sync_directory, unknown_user_principals
from docsync.principals import InvalidPrincipal, canonical_form_tag, canonical_principal

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from docsync.config import Settings

__all__ = ["DirectoryUnavailable", "DirectoryUnreachable", "LdapConfig", "canonical_user", "effective_principals",
           "sync_directory"]


class DirectoryUnavailable(LookupError):
    """No usable directory snapshot: nobody's groups can be resolved (run the directory sync)."""


def canonical_user(user: str) -> str:
    """``alice``, ``user:Alice``, ``CORP\\alice``, ``alice@corp.example`` -> ``user:alice`` (the
    canonical form of docsync.principals); a group or ``everyone`` is not a user."""
    text = user.strip() if isinstance(user, str) else user
    if not isinstance(text, str) or not text:
        raise InvalidPrincipal(f"invalid user {user!r}: give a user name")
    kind = text.partition(":")[0].strip().casefold()
    principal = canonical_principal(text if kind in ("user", "group", "everyone") else f"user:{text}")
    if not principal.startswith("user:"):
        raise InvalidPrincipal(f"invalid user {user!r}: {principal} is not a user")
    return principal


def effective_principals(user: str, settings: Settings | None = None, engine: Engine | None = None) -> list[str]:
    """The user's canonical principals from the last good directory snapshot: the user, every
    group reached through nested groups, ``everyone``. [] for a disabled account; the
    DOCSYNC_DIRECTORY_UNKNOWN_USER principals for a user the directory does not know."""
    from docsync import state
    from docsync.config import load_settings

    settings = settings or load_settings()
    engine = engine or state.get_engine(settings.state_url)
    directory = settings.directory.name
    name = canonical_user(user)
    status = state.snapshot_status(engine, directory)
    if status is None or status["synced_at"] is None:
        raise DirectoryUnavailable(
            f"directory {directory!r} has no snapshot yet, so {name}'s groups are unknown: run the directory_sync "
            "DAG (or `docsync directory-sync`) and check its log")
    if status["form_tag"] != canonical_form_tag():
        raise DirectoryUnavailable(
            f"directory {directory!r} was stored under other DOCSYNC_PRINCIPAL_DOMAINS than this process has: "
            "set the same value everywhere, or run the directory sync again with the new one")
    found = state.principals_of(engine, directory, name)
    return list(unknown_user_principals(settings) if found is None else found)
