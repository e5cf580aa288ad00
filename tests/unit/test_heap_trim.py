"""The heap trimmer: found on glibc (this machine's libc), and it returns freed pages."""

from __future__ import annotations

import asyncio
import platform
from pathlib import Path

import pytest

from retrain_operator.adapters import heap_trim


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_trimming_returns_freed_heap_pages():
    trim = heap_trim.trimmer()
    assert trim is not None
    # 64 MiB in 4 KiB objects (below the mmap threshold: they live in the heap), then freed but one in 64,
    # which keeps the heap from shrinking by itself at its top.
    blocks = [bytearray(4000) for _ in range(16384)]
    kept = blocks[::64]
    del blocks
    before = _rss_kib()
    trim()
    after = _rss_kib()
    assert before - after > 32 * 1024, (before, after)
    assert len(kept) == 256


def test_a_zero_interval_never_trims():
    asyncio.run(asyncio.wait_for(heap_trim.keep_trimming(0), timeout=1))  # returns at once
