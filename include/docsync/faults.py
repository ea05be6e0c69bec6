"""Fault injection for the crash tests: the named points where a run may be killed."""

from __future__ import annotations

import os
import signal


def crash_point(name: str) -> None:
    """SIGKILL this process at a named point when ``DOCSYNC_KILL_AT`` names it (the crash
    tests prove that a run killed there converges when re-run). One dict lookup otherwise."""
    if os.environ.get("DOCSYNC_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
