"""Canary weights on the user's route: JSON patches for a Gateway API HTTPRoute or an Istio
VirtualService that change only the operator's backends (stable, canary, the shadow mirror) and
leave every other rule as it is; and the release that gives the route back when a policy goes."""

from __future__ import annotations

import copy
from typing import Any

Json = dict[str, Any]

# The kind of the route each spec.serving.router type moves weights on.
ROUTE_KINDS = {"gatewayAPI": "HTTPRoute", "istio": "VirtualService"}


def _is_service(backend: Json, name: str) -> bool:
    """A backendRef to the Service `name` (kind defaults to Service)."""
    return backend.get("kind", "Service") == "Service" and backend.get("name") == name


def _gateway_backends(backends: list[Json], stable: str, canary: str, weight: int, port: int) -> list[Json] | None:
    if not any(_is_service(b, stable) for b in backends):
        return None
    result = []
    template = None
    for backend in backends:
        if _is_service(backend, stable):
            template = backend
            result.append({**backend, "weight": 100 - weight})
        elif _is_service(backend, canary):
            continue  # re-added below, next to stable
        else:
            result.append(backend)
    assert template is not None
    canary_backend = {key: value for key, value in template.items() if key not in ("name", "weight", "filters")}
    canary_backend.update(name=canary, port=template.get("port", port), weight=weight)
    index = next(i for i, b in enumerate(result) if b.get("name") == stable)
    result.insert(index + 1, canary_backend)
    return result


def _is_our_mirror(item: Json, canary: str) -> bool:
    return item.get("type") == "RequestMirror" and \
        ((item.get("requestMirror") or {}).get("backendRef") or {}).get("name") == canary


def _replace(operations: list[Json], path: str, before: Any, after: Any, present: bool) -> None:
    """Guarded edit of one field: test what is there, then replace, add or remove it."""
    if present:
        operations.append({"op": "test", "path": path, "value": before})
        operations.append({"op": "replace", "path": path, "value": after} if after is not None
                          else {"op": "remove", "path": path})
    elif after is not None:
        operations.append({"op": "add", "path": path, "value": after})


def httproute_patch(route: Json, stable: str, canary: str, weight: int, port: int,
                    mirror: bool = False) -> list[Json]:
    """A JSON patch setting the weights of our two backends in every rule that sends to stable, and
    our RequestMirror filter (the shadow step) on those rules while `mirror` is on.

    One `test` of the field's current value guards each change: if someone else edited the rule
    in between, the API server answers 422 and the next reconcile starts from fresh."""
    operations: list[Json] = []
    for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        backends = rule.get("backendRefs") or []
        wanted = _gateway_backends(backends, stable, canary, weight, port)
        if wanted is None:
            continue
        if wanted != backends:
            _replace(operations, f"/spec/rules/{index}/backendRefs", backends, wanted, "backendRefs" in rule)
        filters = rule.get("filters") or []
        kept = [item for item in filters if not _is_our_mirror(item, canary)]
        if mirror:
            kept.append({"type": "RequestMirror", "requestMirror": {"backendRef": {"name": canary, "port": port}}})
        if kept != filters:
            _replace(operations, f"/spec/rules/{index}/filters", filters, kept or None, "filters" in rule)
    return operations


def httproute_weights(route: Json, stable: str, canary: str) -> list[tuple[int, int]]:
    """(stable, canary) weights per rule that sends to stable: what the route says now."""
    found = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        weights = {b.get("name"): int(b.get("weight", 1)) for b in rule.get("backendRefs") or []}
        if stable in weights:
            found.append((weights[stable], weights.get(canary, 0)))
    return found


def _host(destination: Json) -> str:
    return str(destination.get("host", "")).split(".")[0]


def virtualservice_patch(service: Json, stable: str, canary: str, weight: int, port: int,
                         mirror: bool = False) -> list[Json]:
    """The same for an Istio VirtualService: weights on `http[].route[]` destinations to our Services,
    and `mirror` to the canary during the shadow step."""
    operations: list[Json] = []
    for index, http in enumerate((service.get("spec") or {}).get("http") or []):
        routes = http.get("route") or []
        if not any(_host(r.get("destination") or {}) == stable for r in routes):
            continue
        stable_host = next(str((r.get("destination") or {}).get("host")) for r in routes
                           if _host(r.get("destination") or {}) == stable)
        ours = _host(http.get("mirror") or {}) == canary
        if mirror and "mirror" not in http:  # Istio has one mirror per route: a user's own stays
            _replace(operations, f"/spec/http/{index}/mirror", None,
                     {"host": stable_host.replace(stable, canary, 1)}, False)
        elif not mirror and ours:
            _replace(operations, f"/spec/http/{index}/mirror", http["mirror"], None, True)
        wanted = []
        for route in routes:
            host = _host(route.get("destination") or {})
            if host == canary:
                continue
            if host == stable:
                wanted.append({**route, "weight": 100 - weight})
                destination = copy.deepcopy(route.get("destination") or {})
                destination["host"] = str(destination.get("host", stable)).replace(stable, canary, 1)
                wanted.append({"destination": destination, "weight": weight})
            else:
                wanted.append(route)
        if wanted != routes:
            path = f"/spec/http/{index}/route"
            operations += [{"op": "test", "path": path, "value": routes},
                           {"op": "replace", "path": path, "value": wanted}]
    return operations


# -- letting go of a route when the policy is deleted -------------------------------------------------


def httproute_release(route: Json, stable: str, canary: str) -> list[Json]:
    """A JSON patch leaving each rule that sends to stable as the user wrote it: the canary backendRef
    and our mirror filter gone, stable at full weight. Rules we never touched stay as they are."""
    operations: list[Json] = []
    for index, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        backends = rule.get("backendRefs") or []
        if not any(_is_service(b, stable) for b in backends):
            continue
        wanted = [{**b, "weight": 100} if _is_service(b, stable) else b
                  for b in backends if not _is_service(b, canary)]
        if wanted != backends:
            _replace(operations, f"/spec/rules/{index}/backendRefs", backends, wanted, True)
        filters = rule.get("filters") or []
        kept = [item for item in filters if not _is_our_mirror(item, canary)]
        if kept != filters:
            _replace(operations, f"/spec/rules/{index}/filters", filters, kept or None, True)
    return operations


def virtualservice_release(service: Json, stable: str, canary: str) -> list[Json]:
    """The same for a VirtualService: canary destinations and our mirror gone, stable at weight 100."""
    operations: list[Json] = []
    for index, http in enumerate((service.get("spec") or {}).get("http") or []):
        routes = http.get("route") or []
        if not any(_host(r.get("destination") or {}) == stable for r in routes):
            continue
        if _host(http.get("mirror") or {}) == canary:
            _replace(operations, f"/spec/http/{index}/mirror", http["mirror"], None, True)
        wanted = [{**r, "weight": 100} if _host(r.get("destination") or {}) == stable else r
                  for r in routes if _host(r.get("destination") or {}) != canary]
        if wanted != routes:
            path = f"/spec/http/{index}/route"
            operations += [{"op": "test", "path": path, "value": routes},
                           {"op": "replace", "path": path, "value": wanted}]
    return operations
