"""Columns in parallel threads: NumPy's sort and search and Arrow's kernels release the GIL.

Each column's accumulator is touched by one thread per batch and batches go one after the
other, so the result does not depend on scheduling. RETRAIN_DRIFT_THREADS=1 turns it off.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def threads() -> int:
    configured = os.environ.get("RETRAIN_DRIFT_THREADS")
    if configured:
        return max(1, int(configured))
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(available, 8))


@functools.cache
def _pool(size: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=size, thread_name_prefix="drift")


def each(function: Callable[[T], object], items: Sequence[T]) -> None:
    """Call `function` on every item, in parallel when there are threads to spare; re-raises errors."""
    size = threads()
    if size == 1 or len(items) < 2:
        for item in items:
            function(item)
        return
    for future in [_pool(size).submit(function, item) for item in items]:
        future.result()
