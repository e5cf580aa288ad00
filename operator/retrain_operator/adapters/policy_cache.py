"""The policies as the operator last saw them: from kopf's watch, and from the answers to its own status writes.

A reconcile reads its policy here instead of GETting it. After a status write the watch event of that
write arrives later; until it does, the written object (the API server's answer, so it also has every
change made before the write) is what the policy is, and events older than it are not taken. The event
of the operator's own write is no reason to reconcile again: `observe` says so, which is what keeps a
status write from waking its policy's loop.
"""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]
Key = tuple[str, str]


def _version(body: Json | None) -> str | None:
    return ((body or {}).get("metadata") or {}).get("resourceVersion")


class PolicyCache:
    def __init__(self) -> None:
        self._bodies: dict[Key, Json] = {}
        self._written: dict[Key, str] = {}  # resourceVersion of our last write whose event has not come yet

    def get(self, namespace: str, name: str) -> Json | None:
        """A copy: the core never changes its input, but a reconcile must not be able to change the cache."""
        body = self._bodies.get((namespace, name))
        return copy.deepcopy(body) if body is not None else None

    def observe(self, event_type: str | None, body: Json) -> bool:
        """Take a watch event; True when it is news to the policy's loop (not the echo of our own write)."""
        meta = body.get("metadata") or {}
        key = (meta.get("namespace") or "", meta.get("name") or "")
        if event_type == "DELETED":
            self.forget(*key)
            return True
        pending = self._written.get(key)
        version = _version(body)
        if pending is not None and event_type is not None and version != pending:
            # Older than what our write returned (events come in order): already known, but it may be why
            # someone expects a reconcile, so it still wakes the loop.
            return True
        self._written.pop(key, None)
        self._bodies[key] = body
        return pending is None or version != pending

    def wrote(self, namespace: str, name: str, body: Json) -> None:
        """The API server's answer to a write of ours: the policy as it now is."""
        if _version(body) is None:
            return
        self._bodies[(namespace, name)] = body
        self._written[(namespace, name)] = str(_version(body))

    def forget(self, namespace: str, name: str) -> None:
        self._bodies.pop((namespace, name), None)
        self._written.pop((namespace, name), None)

    def __len__(self) -> int:
        return len(self._bodies)
