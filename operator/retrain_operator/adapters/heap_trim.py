"""Give the heap's freed pages back to the kernel now and then (glibc's malloc_trim).

CPython frees objects into glibc's heap, which keeps the pages for reuse: after the start-up of 1,000
policies (each one's first reconcile and status write, all at once) the main heap held 175 MiB, most of
it free, and the operator's RSS stayed at 350 MiB at idle; one malloc_trim(0), called into that process,
brought it to 221 MiB (docs/scale.md). A call takes milliseconds; where libc is not glibc (musl, macOS)
there is no such call and nothing is done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

INTERVAL = 60.0


def trimmer() -> Callable[[], int] | None:
    """glibc's malloc_trim(0), or None without it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: int(trim(0))


async def keep_trimming(interval: float = INTERVAL) -> None:
    """Trim every `interval` seconds until cancelled (a task of the operator's event loop)."""
    trim = trimmer()
    if trim is None or interval <= 0:
        log.debug("no malloc_trim here (not glibc) or trimming disabled")
        return
    while True:
        await asyncio.sleep(interval)
        await asyncio.to_thread(trim)
