"""What a policy names outside itself (its Secrets, its route), read from the raw spec.

The operator's caches hold only the Secrets and routes some policy names, and wake a policy when one
of them changes; this is where those names come from. It reads the raw spec leniently: an invalid
policy still names what it names (its status says what is wrong with it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

SECRET = "secret"


class Ref(NamedTuple):
    kind: str  # SECRET, or a router type ("gatewayAPI", "istio")
    namespace: str
    name: str


def _name(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("name")
    return value if isinstance(value, str) and value else None


def references(namespace: str, spec: Mapping[str, Any] | None) -> frozenset[Ref]:
    spec = spec if isinstance(spec, Mapping) else {}
    found: set[Ref] = set()
    storage = spec.get("storage")
    if isinstance(storage, Mapping) and (name := _name(storage.get("credentialsSecret"))):
        found.add(Ref(SECRET, namespace, name))
    signing = spec.get("signing")
    if isinstance(signing, Mapping):
        for field in ("publicKeySecret", "privateKeySecret"):
            if name := _name(signing.get(field)):
                found.add(Ref(SECRET, namespace, name))
    notify = spec.get("notify")
    for notifier in notify if isinstance(notify, list) else ():
        if isinstance(notifier, Mapping):  # the webhook URL, and the headers (both read at each delivery)
            for field in ("urlSecret", "headersSecret"):
                if name := _name(notifier.get(field)):
                    found.add(Ref(SECRET, namespace, name))
    serving = spec.get("serving")
    router = serving.get("router") if isinstance(serving, Mapping) else None
    if isinstance(router, Mapping):
        route = {"gatewayAPI": router.get("httpRoute"), "istio": router.get("virtualService")}.get(
            str(router.get("type")))
        if isinstance(route, str) and route:
            found.add(Ref(str(router["type"]), namespace, route))
    return frozenset(found)


class ReferenceIndex:
    """Each policy's references, and for each reference the policies that name it."""

    def __init__(self) -> None:
        self._of: dict[tuple[str, str], frozenset[Ref]] = {}
        self._by: dict[Ref, set[tuple[str, str]]] = {}

    def set(self, policy: tuple[str, str], refs: frozenset[Ref]) -> frozenset[Ref]:
        """Record `policy`'s references; returns those no policy named before."""
        old = self._of.get(policy, frozenset())
        if refs == old:
            return frozenset()
        for ref in old - refs:
            holders = self._by.get(ref)
            if holders is not None:
                holders.discard(policy)
                if not holders:
                    del self._by[ref]
        new = frozenset(ref for ref in refs - old if ref not in self._by)
        for ref in refs - old:
            self._by.setdefault(ref, set()).add(policy)
        if refs:
            self._of[policy] = refs
        else:
            self._of.pop(policy, None)
        return new

    def forget(self, policy: tuple[str, str]) -> None:
        self.set(policy, frozenset())

    def policies(self, ref: Ref) -> frozenset[tuple[str, str]]:
        return frozenset(self._by.get(ref, ()))

    def __contains__(self, ref: object) -> bool:
        return ref in self._by
