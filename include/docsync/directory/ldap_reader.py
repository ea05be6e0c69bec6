"""Users and groups from an LDAP server (Active Directory or OpenLDAP) with ``ldap3``: one
simple bind over LDAPS or StartTLS (certificate and host name verified), paged subtree
searches (AD answers at most 1,000 entries per page), AD range retrieval of large ``member``
attributes (``auto_range``), referrals not followed.

Any failure (connection, TLS, bind, a search cut off half-way) raises
:class:`DirectoryUnreachable` and nothing partial is returned: the caller keeps the last good
snapshot."""

from __future__ import annotations

import contextlib
import logging
import ssl
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from docsync.directory.entries import ATTRIBUTES, DirectoryEntry, entry_from_attributes

if TYPE_CHECKING:
    from docsync.config import DirectorySettings

log = logging.getLogger(__name__)


class DirectoryUnreachable(RuntimeError):
    """The directory could not be read (whole); the last good snapshot stays in force."""


@dataclass(frozen=True)
class LdapConfig:
    """Where and how to read; :func:`connection_config` builds it from the Airflow connection."""

    url: str  # ldap://host[:port] or ldaps://host[:port]
    base_dn: str
    bind_dn: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: str = "starttls"  # starttls | ldaps | none
    ca_file: str | None = None
    user_filter: str = "(objectClass=inetOrgPerson)"
    group_filter: str = "(objectClass=groupOfNames)"
    page_size: int = 500
    timeout_s: int = 30

    @classmethod
    def from_connection(cls, conn: object, settings: DirectorySettings) -> LdapConfig:
        """From an Airflow Connection: host, port, login (bind DN), password, and in its extra
        ``base_dn``, ``tls`` (starttls | ldaps | none), ``ca_file``, ``user_filter``,
        ``group_filter``, ``page_size``; what the extra leaves out comes from the settings."""
        extra = dict(getattr(conn, "extra_dejson", None) or {})
        tls = str(extra.get("tls") or settings.tls).strip().lower()
        if tls not in ("starttls", "ldaps", "none"):
            raise DirectoryUnreachable(f"Airflow connection {settings.conn_id!r}: extra 'tls' must be starttls, "
                                       f"ldaps or none, not {tls!r}")
        host = getattr(conn, "host", None) or ""
        port = getattr(conn, "port", None)
        url = f"{'ldaps' if tls == 'ldaps' else 'ldap'}://{host}" + (f":{port}" if port else "")
        return cls(
            url=url, tls=tls, bind_dn=getattr(conn, "login", None) or None,
            password=getattr(conn, "password", None) or None, base_dn=extra.get("base_dn") or settings.base_dn,
            ca_file=extra.get("ca_file") or settings.ca_file,
            user_filter=extra.get("user_filter") or settings.user_filter,
            group_filter=extra.get("group_filter") or settings.group_filter,
            page_size=int(extra.get("page_size") or settings.page_size),
        )

    def tls_mode(self) -> str:
        return "ldaps" if urlsplit(self.url).scheme.lower() == "ldaps" else self.tls


def connection_config(settings: DirectorySettings) -> LdapConfig:
    """The directory's Airflow connection (DOCSYNC_DIRECTORY_CONN_ID) as an :class:`LdapConfig`:
    inside a task through Airflow's API, elsewhere (the CLI) from ``AIRFLOW_CONN_<ID>`` or the
    configured secrets backend."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(settings.conn_id)
    except AirflowNotFoundException as exc:
        raise DirectoryUnreachable(
            f"no Airflow connection {settings.conn_id!r} (DOCSYNC_DIRECTORY_CONN_ID): create it with the directory's "
            "host, bind DN and password (README, 'Directory groups'), or set DOCSYNC_DIRECTORY_LDIF") from exc
    return LdapConfig.from_connection(conn, settings)


def _server(config: LdapConfig):  # -> ldap3.Server
    import ldap3

    parts = urlsplit(config.url)
    if parts.scheme.lower() not in ("ldap", "ldaps") or not parts.hostname:
        raise DirectoryUnreachable(f"directory URL {config.url!r} is not ldap://host[:port] or ldaps://host[:port]: "
                                   "set the host of the Airflow connection DOCSYNC_DIRECTORY_CONN_ID")
    mode = config.tls_mode()
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=config.ca_file) if mode != "none" else None
    port = parts.port or (636 if mode == "ldaps" else 389)
    return ldap3.Server(parts.hostname, port=port, use_ssl=mode == "ldaps", tls=tls, get_info=ldap3.NONE,
                        connect_timeout=int(config.timeout_s))


def read_ldap(config: LdapConfig) -> list[DirectoryEntry]:
    """Every user and group under ``base_dn`` matching the filters, read in pages."""
    import ldap3
    from ldap3.core.exceptions import LDAPException

    mode = config.tls_mode()
    if mode == "none" and config.password:
        log.warning("directory %s: binding without TLS (DOCSYNC_DIRECTORY_TLS=none) sends the password in clear text",
                    config.url)
    where = f"directory {config.url} (base {config.base_dn!r})"
    try:
        conn = ldap3.Connection(
            _server(config), user=config.bind_dn, password=config.password, auto_bind=ldap3.AUTO_BIND_NONE,
            read_only=True, raise_exceptions=True, receive_timeout=int(config.timeout_s), auto_referrals=False,
            auto_range=True,
        )
        try:
            conn.open()
            if mode == "starttls":
                conn.start_tls()
            if not conn.bind():
                raise DirectoryUnreachable(f"{where}: bind as {config.bind_dn!r} refused ({conn.result})")
            search = f"(|{config.user_filter}{config.group_filter})"
            entries: list[DirectoryEntry] = []
            for item in conn.extend.standard.paged_search(
                config.base_dn, search, ldap3.SUBTREE, attributes=list(ATTRIBUTES), paged_size=config.page_size,
                generator=True,
            ):
                if item.get("type") != "searchResEntry":
                    continue  # a referral to another naming context: not followed
                entry = entry_from_attributes(item["dn"], item["raw_attributes"])
                if entry is not None:
                    entries.append(entry)
        finally:
            with contextlib.suppress(Exception):  # closing a connection that failed to open
                conn.unbind()
    except DirectoryUnreachable:
        raise
    except (LDAPException, OSError, ssl.SSLError) as exc:
        raise DirectoryUnreachable(
            f"{where} could not be read: {type(exc).__name__}: {exc}. The last good snapshot stays in force; check "
            "the directory's Airflow connection (host, port, login, password; tls and ca_file in its extra, or "
            "DOCSYNC_DIRECTORY_TLS / DOCSYNC_DIRECTORY_CA_FILE) and that the directory answers"
        ) from exc
    log.info("%s: read %d users and groups", where, len(entries))
    return entries
