"""Measuring what a call allocates in Python (tracemalloc), for streaming checks."""

from __future__ import annotations

import tracemalloc
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def traced_peak(fn: Callable[[], T]) -> tuple[T, int]:
    """``fn()``'s result and the peak of Python memory allocated while it ran, in bytes."""
    tracemalloc.start()
    try:
        result = fn()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
