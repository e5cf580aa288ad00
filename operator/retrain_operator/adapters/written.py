"""What the operator itself just wrote, until its informer has seen it.

A Job created in one reconcile may not have reached the Job informer by the next one; without this the
next decision would find the run's Job missing and fail the run (JobNotFound), or create a Deployment
again and be refused (409). An entry goes when the informer reports any event of that object, or after
a minute (the informer has seen it by then, or has stopped seeing anything and re-lists).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

Json = dict[str, Any]
Key = tuple[str, str]
TTL = 60.0


class Written:
    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic):
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._objects: dict[Key, tuple[float, Json]] = {}

    def put(self, obj: Json) -> None:
        meta = obj.get("metadata") or {}
        if meta.get("name"):
            with self._lock:
                self._objects[(meta.get("namespace") or "", meta["name"])] = (self._clock() + self._ttl, obj)

    def seen(self, namespace: str, name: str) -> None:
        with self._lock:
            self._objects.pop((namespace, name), None)

    def get(self, namespace: str, name: str) -> Json | None:
        with self._lock:
            entry = self._objects.get((namespace, name))
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._objects[(namespace, name)]
                return None
            return entry[1]

    def in_namespace(self, namespace: str) -> list[Json]:
        now = self._clock()
        with self._lock:
            return [obj for (ns, _), (expires, obj) in self._objects.items() if ns == namespace and expires > now]
