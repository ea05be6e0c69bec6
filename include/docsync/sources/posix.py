"""Who can read a file on a POSIX file system: its mode or POSIX ACL, and search (x)
permission on every directory from the source root down to it.

Mapping to (allowed, denied) principals, per object, following the POSIX access-check order
(owner, named users, owning and named groups, other):

- the owner: allowed if the owner entry has the bit, else denied;
- a named ACL user: allowed if its entry (under the mask) has the bit, else denied;
- the owning group and named ACL groups: allowed if the entry (under the mask) has the bit;
  a group without it is denied only when *other* has the bit (POSIX never falls through to
  *other* for a member of a matching group);
- other: ``everyone``.

A document is readable by a principal allowed to read it that every directory on the way
also allows (by name, or as ``everyone``) to search; what any of them denies is denied. This
is conservative: a user whose only way through a directory is a group membership docsync
cannot see is left out (the group itself is kept), and a user in two groups of which one
lacks the bit is denied where POSIX may allow. Never the other way round.

The POSIX ACL is read from the ``system.posix_acl_access`` extended attribute (the Linux
binary format); default ACLs (inherited by new files only) do not matter for access.
"""

from __future__ import annotations

import errno
import functools
import grp
import hashlib
import os
import pwd
import stat
import struct
from dataclasses import dataclass, field

from docsync.principals import EVERYONE, InvalidPrincipal, canonical_principal
from docsync.sources.base import AccessUnresolved

ACL_XATTR = "system.posix_acl_access"
ACL_VERSION = 2
TAG_USER_OBJ, TAG_USER, TAG_GROUP_OBJ, TAG_GROUP, TAG_MASK, TAG_OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
READ, SEARCH = 4, 1  # the r and x bits of one entry
NO_XATTR = (errno.ENODATA, errno.ENOTSUP, errno.EOPNOTSUPP, getattr(errno, "ENOATTR", errno.ENODATA))


def read_acl_xattr(path: str | os.PathLike) -> bytes | None:
    """The raw POSIX access ACL of ``path`` (not following a final symlink); None without one.
    Raises OSError when it exists but cannot be read."""
    try:
        # Listing first: most files have no ACL, and a failed getxattr costs twice a listxattr.
        if ACL_XATTR not in os.listxattr(path, follow_symlinks=False):
            return None
        return os.getxattr(path, ACL_XATTR, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in NO_XATTR:
            return None
        raise


@dataclass(frozen=True)
class Acl:
    """The permission entries of one file or directory (3-bit rwx values)."""

    user_obj: int
    group_obj: int
    other: int
    mask: int | None = None  # None: no ACL, nothing is masked
    users: dict[int, int] = field(default_factory=dict)  # named users: uid -> perm
    groups: dict[int, int] = field(default_factory=dict)  # named groups: gid -> perm

    @classmethod
    def from_mode(cls, mode: int) -> Acl:
        return cls((mode >> 6) & 7, (mode >> 3) & 7, mode & 7)

    @classmethod
    def decode(cls, raw: bytes) -> Acl:
        """Parse the Linux ``system.posix_acl_access`` format: a little-endian u32 version (2),
        then entries of (u16 tag, u16 perm, u32 id). Raises AccessUnresolved on anything else."""
        if len(raw) < 4 or (len(raw) - 4) % 8:
            raise AccessUnresolved(f"POSIX ACL of {len(raw)} bytes is not in the Linux format")
        (version,) = struct.unpack_from("<I", raw)
        if version != ACL_VERSION:
            raise AccessUnresolved(f"POSIX ACL version {version} is unknown (expected {ACL_VERSION})")
        single: dict[int, int] = {}
        users: dict[int, int] = {}
        groups: dict[int, int] = {}
        for tag, perm, ident in struct.iter_unpack("<HHI", raw[4:]):
            if perm & ~7:
                raise AccessUnresolved(f"POSIX ACL entry with unknown permission bits {perm:#x}")
            if tag in (TAG_USER_OBJ, TAG_GROUP_OBJ, TAG_MASK, TAG_OTHER):
                if tag in single:
                    raise AccessUnresolved(f"POSIX ACL lists entry type {tag:#x} twice")
                single[tag] = perm
            elif tag == TAG_USER:
                users[ident] = users.get(ident, 0) | perm
            elif tag == TAG_GROUP:
                groups[ident] = groups.get(ident, 0) | perm
            else:
                raise AccessUnresolved(f"POSIX ACL entry of unknown type {tag:#x}")
        missing = [t for t in (TAG_USER_OBJ, TAG_GROUP_OBJ, TAG_OTHER) if t not in single]
        if missing or ((users or groups) and TAG_MASK not in single):
            raise AccessUnresolved("POSIX ACL lacks a required entry (owner, group, other, or mask)")
        return cls(single[TAG_USER_OBJ], single[TAG_GROUP_OBJ], single[TAG_OTHER], single.get(TAG_MASK), users, groups)


@functools.lru_cache(maxsize=4096)
def user_principal(uid: int) -> str:
    """``user:<name>`` of a uid (``user:uid-<n>`` when it has no name on this worker)."""
    try:
        return canonical_principal(f"user:{pwd.getpwuid(uid).pw_name}")
    except (KeyError, InvalidPrincipal):
        return f"user:uid-{uid}"


@functools.lru_cache(maxsize=4096)
def group_principal(gid: int) -> str:
    """``group:<name>`` of a gid (``group:gid-<n>`` when it has no name on this worker)."""
    try:
        return canonical_principal(f"group:{grp.getgrgid(gid).gr_name}")
    except (KeyError, InvalidPrincipal):
        return f"group:gid-{gid}"


def grants(acl: Acl, uid: int, gid: int, bit: int) -> tuple[set[str], set[str]]:
    """(allowed, denied) principals for one permission bit of one object owned by uid:gid."""
    mask = 7 if acl.mask is None else acl.mask
    allow: set[str] = set()
    deny: set[str] = set()
    owner = user_principal(uid)
    (allow if acl.user_obj & bit else deny).add(owner)
    for named_uid, perm in acl.users.items():
        if named_uid != uid:  # the owner entry decides for the owner
            (allow if perm & mask & bit else deny).add(user_principal(named_uid))
    other = bool(acl.other & bit)
    group_perms = dict(acl.groups)
    group_perms[gid] = group_perms.get(gid, 0) | acl.group_obj
    for named_gid, perm in group_perms.items():
        if perm & mask & bit:
            allow.add(group_principal(named_gid))
        elif other:
            deny.add(group_principal(named_gid))
    if other:
        allow.add(EVERYONE)
    return allow - deny, deny


@dataclass(frozen=True)
class Node:
    """What access depends on for one file or directory: owner, mode and POSIX ACL."""

    uid: int
    gid: int
    mode: int
    acl_raw: bytes | None = None
    acl_error: str = ""  # the ACL exists but could not be read

    @classmethod
    def of(cls, path: str | os.PathLike, st: os.stat_result) -> Node:
        try:
            raw = read_acl_xattr(path)
        except OSError as exc:
            return cls(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), None, exc.strerror or str(exc))
        return cls(st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode), raw)

    def fingerprint(self) -> str:
        acl = "" if self.acl_raw is None else hashlib.sha256(self.acl_raw).hexdigest()[:16]
        return f"{self.uid}:{self.gid}:{self.mode:o}:{acl}{':err' if self.acl_error else ''}"

    def acl(self) -> Acl:
        if self.acl_error:
            raise AccessUnresolved(f"its POSIX ACL cannot be read ({self.acl_error})")
        return Acl.decode(self.acl_raw) if self.acl_raw is not None else Acl.from_mode(self.mode)

    def grants(self, bit: int) -> tuple[set[str], set[str]]:
        return grants(self.acl(), self.uid, self.gid, bit)


def chain_fingerprint(parent: str, node: Node) -> str:
    """Fingerprint of a directory's permissions together with those of every directory above it."""
    return hashlib.sha256(f"{parent}|{node.fingerprint()}".encode()).hexdigest()[:24]


def effective_access(file: Node, directories: list[Node]) -> tuple[list[str], list[str]]:
    """(allowed, denied) readers of ``file`` reached through ``directories`` (root first)."""
    allowed, denied = file.grants(READ)
    for directory in directories:
        can_search, no_search = directory.grants(SEARCH)
        denied |= no_search
        allowed = {p for p in allowed if p in can_search or EVERYONE in can_search}
    allowed -= denied
    if not allowed:
        raise AccessUnresolved(
            "file mode, POSIX ACL and directory permissions grant read access to no one; no access metadata, not indexed"
        )
    return sorted(allowed), sorted(denied)

