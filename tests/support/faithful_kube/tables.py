"""Server-side printing: the `meta.k8s.io/v1` Table that `kubectl get` asks for.

The real API server builds the columns from a CRD's additionalPrinterColumns (Name first);
without printer columns it shows Name and Age.
"""

from __future__ import annotations

from typing import Any

import jsonpath_ng

TABLE_ACCEPT = "as=Table"
DEFAULT_COLUMNS = [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]


def wants_table(accept: str | None) -> bool:
    return bool(accept) and TABLE_ACCEPT in accept


def _value(obj: dict[str, Any], path: str) -> Any:
    expression = jsonpath_ng.parse("$" + path if path.startswith((".", "[")) else path)
    matches = [match.value for match in expression.find(obj)]
    if not matches:
        return None
    return matches[0] if len(matches) == 1 else matches


def table(objects: list[dict[str, Any]], columns: list[dict[str, Any]] | None,
          resource_version: str) -> dict[str, Any]:
    columns = columns or DEFAULT_COLUMNS
    definitions = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    definitions += [{"name": c["name"], "type": c.get("type", "string"), "format": c.get("format", ""),
                     "description": c.get("description", ""), "priority": c.get("priority", 0)} for c in columns]
    rows = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        rows.append({
            "cells": [meta.get("name"), *(_value(obj, c["jsonPath"]) for c in columns)],
            "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {
                key: meta[key] for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if key in meta}},
        })
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": definitions, "rows": rows}
