"""The policies as the operator last saw them: from kopf's watch, and from the answers to its own status writes.

A reconcile reads its policy here instead of GETting it. After a status write the watch event of that
write arrives later; until it does, the written object (the API server's answer, so it also has every
change made before the write) is what the policy is, and events older than it are not taken. The event
of the operator's own write is no reason to reconcile again: `observe` says so, which is what keeps a
status write from waking its policy's loop.

A write's own event may come before `wrote` is told (the watch is quick, the thread slow), or never (a
write that changed nothing keeps its resourceVersion): a write whose version a watch event already had
is not waited for, and no write is waited for longer than PATIENCE, so a user's edit is never hidden.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from typing import Any

from .informer import trim

Json = dict[str, Any]
Key = tuple[str, str]
PATIENCE = 60.0  # seconds a write's event is waited for; its watch has restarted and re-listed by then


def _version(body: Json | None) -> str | None:
    return ((body or {}).get("metadata") or {}).get("resourceVersion")


class PolicyCache:
    def __init__(self, patience: float = PATIENCE, clock: Callable[[], float] = time.monotonic):
        self._patience = patience
        self._clock = clock
        self._lock = threading.Lock()
        self._bodies: dict[Key, Json] = {}
        self._seen: dict[Key, str | None] = {}  # resourceVersion of the last watch event
        self._written: dict[Key, tuple[str, float]] = {}  # our last write whose event has not come: (rv, until)

    def get(self, namespace: str, name: str) -> Json | None:
        """A copy: the core never changes its input, but a reconcile must not be able to change the cache."""
        with self._lock:
            body = self._bodies.get((namespace, name))
        return copy.deepcopy(body) if body is not None else None

    def observe(self, event_type: str | None, body: Json) -> bool:
        """Take a watch event; True when it is news to the policy's loop (not the echo of our own write)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        version = _version(body)
        with self._lock:
            if event_type == "DELETED":
                self._forget(key)
                return True
            self._seen[key] = version
            pending = self._pending(key)
            if pending is not None and event_type is not None and version != pending:
                # Older than what our write returned (events come in order): already known, but it may be why
                # someone expects a reconcile, so it still wakes the loop.
                return True
            self._written.pop(key, None)
            self._bodies[key] = trim(body)
            return pending is None or version != pending

    def wrote(self, namespace: str, name: str, body: Json) -> None:
        """The API server's answer to a write of ours: the policy as it now is."""
        version, key = _version(body), (namespace, name)
        if version is None:
            return
        with self._lock:
            if self._seen.get(key) == version:
                return  # its event came already (or the write changed nothing): the cache has it
            self._bodies[key] = trim(body)
            self._written[key] = (str(version), self._clock() + self._patience)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._forget((namespace, name))

    def _forget(self, key: Key) -> None:
        self._bodies.pop(key, None)
        self._seen.pop(key, None)
        self._written.pop(key, None)

    def _pending(self, key: Key) -> str | None:
        entry = self._written.get(key)
        if entry is None or self._clock() >= entry[1]:
            return None
        return entry[0]

    def __len__(self) -> int:
        return len(self._bodies)
