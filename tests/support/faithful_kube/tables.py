"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for.

The real API server builds the columns from a CRD's additionalPrinterColumns (Name first),
and renders `date` cells as ages ("5m", "2d3h"), as kubectl shows them; without printer columns it
shows Name and Age. Deployments, Pods and Events get the columns of the built-in printers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import jsonpath_ng

from . import events

TABLE_ACCEPT = "as=Table"
DEFAULT_COLUMNS = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rest = hours % 24
        return f"{hours // 24}d{rest}h" if rest else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = hours // 24 - 365 * (hours // 24 // 365)
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _age(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        then = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    return human_duration((dt.datetime.now(dt.UTC) - then).total_seconds())


def _ready_pods(pod: dict[str, Any]) -> str:
    containers = len(((pod.get("spec") or {}).get("containers")) or []) or 1
    ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                for c in (pod.get("status") or {}).get("conditions") or [])
    return f"{containers if ready else 0}/{containers}"


# The built-in printers' columns (kubernetes/pkg/printers/internalversion), for what the tests show.
BUILTIN: dict[tuple[str, str], list[tuple[str, str, Callable[[dict[str, Any]], Any]]]] = {
    ("apps", "deployments"): [
        ("Ready", "string", lambda o: f"{(o.get('status') or {}).get('readyReplicas', 0)}/"
                                      f"{(o.get('spec') or {}).get('replicas', 1)}"),
        ("Up-to-date", "integer", lambda o: (o.get("status") or {}).get("updatedReplicas", 0)),
        ("Available", "integer", lambda o: (o.get("status") or {}).get("availableReplicas", 0)),
    ],
    ("", "pods"): [
        ("Ready", "string", _ready_pods),
        ("Status", "string", lambda o: (o.get("status") or {}).get("phase", "Pending")),
        ("Restarts", "integer", lambda o: 0),
    ],
}


def wants_table(accept: str | None) -> bool:
    return bool(accept) and TABLE_ACCEPT in accept


def _value(obj: dict[str, Any], path: str) -> Any:
    expression = jsonpath_ng.parse("$" + path if path.startswith((".", "[")) else path)
    matches = [match.value for match in expression.find(obj)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches


def _partial(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {
        key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if key in meta}}


def table(objects: list[dict[str, Any]], columns: list[dict[str, Any]] | None,
          resource_version: str, resource: tuple[str, str] = ("", "")) -> dict[str, Any]:
    if resource in (events.CORE, events.EVENTS_V1):
        return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
                "columnDefinitions": events.table_columns(),
                "rows": [{"cells": events.table_cells(obj), "object": _partial(obj)} for obj in objects]}
    builtin = BUILTIN.get(resource, []) if not columns else []
    columns = columns or DEFAULT_COLUMNS
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    definitions += [{"name": name, "type": kind, "format": "", "description": name, "priority": 0}
                    for name, kind, _ in builtin]
    definitions += [{"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                     "description": c.get("description", ""), "priority": c.get("priority", 0)} for c in columns]
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        cells = [_age(_value(obj, c["jsonPath"])) if c.get("type") == "date" else _value(obj, c["jsonPath"])
                 for c in columns]
        rows.append({
            "cells": [meta.get("name"), *(read(obj) for _, _, read in builtin), *cells],
            "object": _partial(obj),
        })
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}
