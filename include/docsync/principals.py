"""The one canonical form of an access principal, used on both sides of the index.

Sources canonicalise the principals they store (``allowed_principals``, ``denied_principals``)
and the search side canonicalises the principals of the person searching, with this same
function: a deny entry must match whatever spelling the other side used.

Principals are ``user:<name>``, ``group:<name>`` or ``everyone``. :func:`canonical_principal`

1. normalises Unicode to NFC (``"Zoë"`` typed as ``e`` + combining diaeresis meets ``"zoë"``);
2. trims, also around the kind prefix (``" User : Carol "`` -> ``user:carol``);
3. case-folds (Unicode-aware lower-casing: ``"STRASSE"`` and ``"straße"`` meet);
4. drops a Windows domain prefix: ``CORP\\bob`` -> ``bob``. docsync has one account namespace
   per deployment: ``user:CORP\\bob`` on the index side meets ``user:bob`` on the query side.
   The price: ``OTHER\\bob`` of a second domain in the same forest is the same principal;
5. maps a UPN or e-mail address whose domain is one of the organisation's own domains
   (``DOCSYNC_PRINCIPAL_DOMAINS``, comma-separated, e.g. ``corp.example,corp.onmicrosoft.com``)
   to the bare account name: ``bob@corp.example`` -> ``bob``, so that it meets ``CORP\\bob``
   and ``user:bob``. Addresses of any other domain keep it (``bob@partner.example`` is a
   guest, not ``bob``): without the setting, UPNs are kept whole.

Names may contain ``:`` (``group:org:contoso``); control characters, an empty name, an
unknown kind or a domain prefix without an account are invalid (:class:`InvalidPrincipal`).
"""

from __future__ import annotations

import functools
import hashlib
import os
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

EVERYONE = "everyone"
PRINCIPAL_KINDS = ("user", "group")
DOMAINS_ENV = "DOCSYNC_PRINCIPAL_DOMAINS"  # also settings.source.principal_domains


class InvalidPrincipal(ValueError):
    """A string that is not a principal docsync understands."""


@functools.lru_cache(maxsize=8)
def _parse_domains(raw: str) -> frozenset[str]:
    return frozenset(
        unicodedata.normalize("NFC", part.strip().lstrip("@").casefold()) for part in raw.split(",") if part.strip()
    )


def principal_domains() -> frozenset[str]:
    """The organisation's UPN domains, from ``DOCSYNC_PRINCIPAL_DOMAINS``.

    Read here, at each call, rather than passed in: the index side and the query side must
    not be able to disagree because one call site forgot to pass them."""
    return _parse_domains(os.environ.get(DOMAINS_ENV, ""))


def canonical_form_tag() -> str:
    """A short tag of the settings that change canonical spellings (the organisation's domains),
    "" by default: part of every document's access fingerprint, so that changing
    DOCSYNC_PRINCIPAL_DOMAINS re-reads every document's access (an ACL-only update) instead of
    leaving old spellings in the index that the query side no longer produces."""
    domains = principal_domains()
    if not domains:
        return ""
    return "pd:" + hashlib.sha256(",".join(sorted(domains)).encode("utf-8")).hexdigest()[:12]


def _fold(value: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold())


def canonical_principal(value: str, domains: Iterable[str] | None = None) -> str:
    """The canonical form of one principal (see the module docstring); raises
    :class:`InvalidPrincipal`. ``domains`` overrides ``DOCSYNC_PRINCIPAL_DOMAINS`` (tests)."""
    if not isinstance(value, str):
        raise InvalidPrincipal(f"invalid principal {value!r}: not a string")
    text = _fold(value).strip()
    if text == EVERYONE:
        return EVERYONE
    kind, sep, name = text.partition(":")
    kind, name = kind.strip(), name.strip()
    if not sep or kind not in PRINCIPAL_KINDS or not name:
        raise InvalidPrincipal(f"invalid principal {value!r}: use 'user:<name>', 'group:<name>' or 'everyone'")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise InvalidPrincipal(f"invalid principal {value!r}: control characters in the name")
    if "\\" in name:
        domain, _, account = name.partition("\\")
        account = account.strip()
        if not domain.strip() or not account or "\\" in account:
            raise InvalidPrincipal(f"invalid principal {value!r}: use DOMAIN\\name")
        name = account
    local, at, domain = name.rpartition("@")
    if at and local.strip() and domain:
        own = principal_domains() if domains is None else frozenset(_fold(d).strip().lstrip("@") for d in domains)
        if domain in own:
            name = local.strip()
    return f"{kind}:{name}"


def canonical_principals(values: Iterable[str], domains: Iterable[str] | None = None) -> list[str]:
    """Sorted, de-duplicated canonical forms of ``values`` (raises :class:`InvalidPrincipal`)."""
    fixed = None if domains is None else tuple(domains)
    return sorted({canonical_principal(v, fixed) for v in values})
