"""RBAC rule matching as the API server's authorizer does it, for checking a role against the
requests a client was seen making (the server's audit log)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Json = dict[str, Any]


@dataclass(frozen=True)
class Request:
    """One request as RBAC sees it: an API group, a resource (with /subresource) and a verb."""

    group: str
    resource: str
    verb: str

    @classmethod
    def of(cls, record: Any) -> Request:
        """From an audit record (controlplane.AuditRecord)."""
        resource = record.resource or ""
        if record.subresource:
            resource += f"/{record.subresource}"
        return cls(record.group or "", resource, record.verb)


def allows(rule: Json, request: Request) -> bool:
    def matches(values: Iterable[str], value: str) -> bool:
        values = list(values or [])
        return "*" in values or value in values

    return (matches(rule.get("apiGroups", []), request.group)
            and matches(rule.get("resources", []), request.resource)
            and matches(rule.get("verbs", []), request.verb))


def denied(rules: list[Json], requests: Iterable[Request]) -> list[Request]:
    """The requests no rule allows."""
    return sorted({r for r in requests if not any(allows(rule, r) for rule in rules)},
                  key=lambda r: (r.group, r.resource, r.verb))


def unused(rules: list[Json], requests: Iterable[Request]) -> list[tuple[str, str, str]]:
    """(group, resource, verb) granted by the rules but never asked for."""
    seen = set(requests)
    granted = {(group, resource, verb) for rule in rules for group in rule.get("apiGroups", [])
               for resource in rule.get("resources", []) for verb in rule.get("verbs", [])}
    return sorted(g for g in granted if not any(allows({"apiGroups": [g[0]], "resources": [g[1]],
                                                        "verbs": [g[2]]}, r) for r in seen))


def wildcards(rules: list[Json]) -> list[Json]:
    return [rule for rule in rules if "*" in (rule.get("apiGroups", []) + rule.get("resources", [])
                                              + rule.get("verbs", []))]
