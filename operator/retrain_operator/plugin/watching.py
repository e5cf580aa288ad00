"""`kubectl retrain status -w`: the table again whenever a policy changes, like `kubectl argo rollouts get -w`.

It follows a watch of the policies (one, or those of the namespace), not a poll, and prints a table only
when what it shows changed, so a status write that changed nothing visible prints nothing.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes

from retrain_contract.api import names

Json = dict[str, Any]
RENEW = 60  # seconds one watch request lasts before it is renewed


def _events(session: Any, name: str | None, all_namespaces: bool, version: str, seconds: int) -> Iterator[Json]:
    kwargs: dict[str, Any] = {"resource_version": version, "timeout_seconds": seconds}
    if name:
        kwargs["field_selector"] = f"metadata.name={name}"
    if all_namespaces:
        stream = kubernetes.watch.Watch().stream(session.custom.list_cluster_custom_object, names.GROUP,
                                                 names.VERSION, names.PLURAL, **kwargs)
    else:
        stream = kubernetes.watch.Watch().stream(session.custom.list_namespaced_custom_object, names.GROUP,
                                                 names.VERSION, session.namespace, names.PLURAL, **kwargs)
    yield from stream


def follow(session: Any, name: str | None, all_namespaces: bool, render: Callable[[list[Json]], str],
           timeout: float | None, write: Callable[[str], None] = print) -> int:
    """Print `render(policies)` now and at each visible change, until `timeout` seconds (None: Ctrl-C)."""
    if all_namespaces:
        listed = session.custom.list_cluster_custom_object(names.GROUP, names.VERSION, names.PLURAL,
                                                           _request_timeout=session.timeout)
    else:
        listed = session.custom.list_namespaced_custom_object(names.GROUP, names.VERSION, session.namespace,
                                                              names.PLURAL, _request_timeout=session.timeout)
    policies: dict[tuple[str, str], Json] = {
        (p["metadata"].get("namespace", ""), p["metadata"]["name"]): p for p in listed.get("items") or []
        if not name or p["metadata"]["name"] == name}
    version = (listed.get("metadata") or {}).get("resourceVersion") or ""
    deadline = None if timeout is None else time.monotonic() + timeout
    shown = ""

    def show() -> None:
        nonlocal shown
        table = render([policies[key] for key in sorted(policies)])
        if table != shown:
            write(f"{dt.datetime.now(dt.UTC):%H:%M:%S}\n{table}\n")
            shown = table

    show()
    try:
        while deadline is None or time.monotonic() < deadline:
            left = RENEW if deadline is None else max(1, min(RENEW, int(deadline - time.monotonic())))
            for event in _events(session, name, all_namespaces, version, left):
                obj = event.get("object") or {}
                meta = obj.get("metadata") or {}
                version = meta.get("resourceVersion") or version
                key = (meta.get("namespace", ""), meta.get("name", ""))
                if event.get("type") == "DELETED":
                    policies.pop(key, None)
                elif event.get("type") in ("ADDED", "MODIFIED"):
                    policies[key] = obj
                show()
                if deadline is not None and time.monotonic() >= deadline:
                    break
    except KeyboardInterrupt:
        pass
    return 0
