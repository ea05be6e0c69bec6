"""What SMB errors mean, in one line for a person (NT status names and their meaning)."""

from __future__ import annotations

import errno

_STATUS_TEXT = {
    0xC0000022: "access denied",  # STATUS_ACCESS_DENIED
    0xC0000043: "in use by another program",  # STATUS_SHARING_VIOLATION
    0xC00000CC: "no such share",  # STATUS_BAD_NETWORK_NAME
    0xC0000225: "not found",  # STATUS_NOT_FOUND (also a missing share, via the DFS referral)
    0xC0000034: "not found",  # STATUS_OBJECT_NAME_NOT_FOUND
    0xC000003A: "not found",  # STATUS_OBJECT_PATH_NOT_FOUND
    0xC0000103: "not a folder",  # STATUS_NOT_A_DIRECTORY
}


def status(exc: BaseException) -> int | None:
    """The NT status code of an SMB error; None for any other error."""
    return getattr(exc, "ntstatus", None) if isinstance(exc, OSError) else None


def reason(exc: BaseException) -> str:
    """One line for a person: the NT status (and its meaning) of SMB errors, else the message."""
    code = status(exc)
    if code is not None:
        from smbprotocol.header import NtStatus

        name = next((k for k, v in vars(NtStatus).items() if k.startswith("STATUS_") and v == code), f"0x{code:08x}")
        meaning = _STATUS_TEXT.get(code) or (exc.strerror if exc.errno else "")
        return f"{name}{f', {meaning}' if meaning else ''}: {exc.filename}"
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def is_not_found(exc: BaseException) -> bool:
    """The file or folder does not exist (any of the NT "not found" statuses)."""
    return isinstance(exc, OSError) and exc.errno == errno.ENOENT
