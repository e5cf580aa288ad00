"""Bulkheads: blocking calls to one dependency queue only behind calls to that same dependency.

asyncio.to_thread shares one small pool (cpu + 4 threads) among every policy: a few S3 endpoints
that accept connections and never answer held all of it, and every other policy's Kubernetes
calls waited behind them for minutes. Here each key (an S3 endpoint and region, a policy's
metrics scrape) gets its own few threads, and every call has a deadline after which
the caller stops waiting and reports the dependency, while the thread finishes on its own,
bounded by the client's timeouts. Kubernetes calls stay on asyncio's default pool, which the
reads and checks of reconcile.py no longer use.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")

# How long a policy's reconcile waits for one storage call before it reports the endpoint.
# The bucket check is one small request (botocore gives up on it after 2 x (3 s connect | 10 s read));
# reading a version's files or counting new rows moves data, so those wait longer.
CHECK_DEADLINE = 10.0
READ_DEADLINE = 120.0
SCRAPE_DEADLINE = 30.0


class DeadlineExceeded(TimeoutError):
    """A call did not finish within its deadline; its thread may still be running."""

    def __init__(self, what: str, seconds: float):
        super().__init__(f"{what} did not answer within {seconds:g}s")
        self.what = what
        self.seconds = seconds


@dataclass
class _Compartment:
    executor: ThreadPoolExecutor
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)


class Bulkhead:
    """A few worker threads per key, made on first use and shut down once idle and old.

    Compartments still running calls are never evicted, so at most `workers` threads per key are
    ever stuck; idle ones past `max_keys` (least recently used first) or `idle_seconds` go."""

    def __init__(self, name: str, workers: int = 4, max_keys: int = 256, idle_seconds: float = 600.0):
        self.name = name
        self.workers = workers
        self.max_keys = max_keys
        self.idle_seconds = idle_seconds
        self._lock = threading.Lock()
        self._compartments: OrderedDict[Hashable, _Compartment] = OrderedDict()
        self._made = 0

    def __len__(self) -> int:
        with self._lock:
            return len(self._compartments)

    def in_flight(self, key: Hashable) -> int:
        """Calls submitted under `key` that have not finished (including ones whose caller gave up)."""
        with self._lock:
            compartment = self._compartments.get(key)
            return compartment.in_flight if compartment else 0

    def submit(self, key: Hashable, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Run `fn(*args)` on `key`'s threads; the concurrent future of it."""
        with self._lock:
            compartment = self._compartment(key)
            compartment.in_flight += 1
        try:
            future = compartment.executor.submit(fn, *args)
        except BaseException:
            self._finished(compartment)
            raise
        future.add_done_callback(lambda _: self._finished(compartment))
        return future

    async def run(self, key: Hashable, fn: Callable[..., T], *args: Any, deadline: float,
                  what: str | None = None) -> T:
        """`fn(*args)` on `key`'s threads; DeadlineExceeded once `deadline` seconds passed.

        A call still queued at the deadline is cancelled; a running one finishes in its thread."""
        future = self.submit(key, fn, *args)
        waited = asyncio.wrap_future(future)
        try:  # not wait_for: a TimeoutError `fn` raises itself (a socket's) is not the deadline
            done, _ = await asyncio.wait({waited}, timeout=deadline)
        finally:
            if not waited.done():
                future.cancel()  # now, not on the loop's next turn: a call still queued never runs
                waited.cancel()
        if not done:
            raise DeadlineExceeded(what or str(key), deadline)
        return waited.result()

    def shutdown(self) -> None:
        """Stop every compartment without waiting for running calls (tests, operator exit)."""
        with self._lock:
            compartments = list(self._compartments.values())
            self._compartments.clear()
        for compartment in compartments:
            compartment.executor.shutdown(wait=False, cancel_futures=True)

    # -- bookkeeping, under self._lock ------------------------------------------------------

    def _compartment(self, key: Hashable) -> _Compartment:
        now = time.monotonic()
        compartment = self._compartments.get(key)
        if compartment is None:
            self._evict(now)
            self._made += 1
            compartment = _Compartment(ThreadPoolExecutor(
                max_workers=self.workers, thread_name_prefix=f"{self.name}-{self._made}"))
            self._compartments[key] = compartment
        self._compartments.move_to_end(key)
        compartment.last_used = now
        return compartment

    def _evict(self, now: float) -> None:
        idle = [key for key, item in self._compartments.items() if item.in_flight == 0]
        excess = len(self._compartments) + 1 - self.max_keys
        for key in idle:  # least recently used first
            item = self._compartments[key]
            if excess > 0 or now - item.last_used > self.idle_seconds:
                del self._compartments[key]
                item.executor.shutdown(wait=False)
                excess -= 1

    def _finished(self, compartment: _Compartment) -> None:
        with self._lock:
            compartment.in_flight -= 1
            compartment.last_used = time.monotonic()


# S3: one compartment per endpoint and region (adapters/s3clients.EndpointKey), whatever the credentials:
# an endpoint that hangs hangs for everyone, so at most 4 threads per endpoint are ever stuck.
STORAGE = Bulkhead("s3", workers=4)
# Metrics scrapes (pod proxy, Prometheus): one compartment per policy.
SCRAPES = Bulkhead("scrape", workers=1)
