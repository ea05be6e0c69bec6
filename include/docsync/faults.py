"""Fault injection for the crash tests: the named points where a run may be killed."""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    """SIGKILL this process at a named point when ``DOCSYNC_KILL_AT`` names it (the crash
    tests prove that a run killed there converges when re-run). One dict lookup otherwise.

    With ``DOCSYNC_KILL_ONCE`` set to a file path, only the first process to get there is
    killed (it creates that file): a retry by a fresh process, e.g. a worker host's
    replacement worker, then goes through."""
    if os.environ.get("DOCSYNC_KILL_AT") != name:
        return
    once = os.environ.get("DOCSYNC_KILL_ONCE")
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)
