"""The three PATCH flavours of the Kubernetes API, with the content types that select them.

Merge patch (RFC 7386) and JSON patch (RFC 6902) come from libraries. Strategic merge patch
has no library: it is a merge patch in which some lists merge item by item on a key
(containers by name, env by name, ...) instead of being replaced. Only built-in kinds accept
it; the real server answers 415 for custom resources.
"""

from __future__ import annotations

import copy
from typing import Any

import json_merge_patch
import jsonpatch

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"

# Lists that merge by key in a strategic merge patch (field name -> merge key).
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "ports": "containerPort",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
}


class PatchError(Exception):
    """A patch that cannot apply (the server answers 422)."""


def merge_patch(target: Any, patch: Any) -> Any:
    return json_merge_patch.merge(copy.deepcopy(target), copy.deepcopy(patch))


def json_patch(target: Any, operations: Any) -> Any:
    try:
        return jsonpatch.apply_patch(copy.deepcopy(target), operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as error:
        raise PatchError(str(error)) from error


def strategic_merge_patch(target: Any, patch: Any, field: str | None = None) -> Any:
    if isinstance(patch, dict) and isinstance(target, dict):
        result = copy.deepcopy(target)
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            if value is None:
                result.pop(key, None)
            elif key in result:
                result[key] = strategic_merge_patch(result[key], value, key)
            else:
                result[key] = _strip_directives(value)
        return result
    if isinstance(patch, list) and isinstance(target, list) and field in MERGE_KEYS:
        key = MERGE_KEYS[field]
        result = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or key not in item:
                raise PatchError(f"list {field} merges on {key!r}, which an item lacks")
            index = next((i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]),
                         None)
            if item.get("$patch") == "delete":
                if index is not None:
                    result.pop(index)
            elif index is None:
                result.append(_strip_directives(item))
            else:
                result[index] = strategic_merge_patch(result[index], item, None)
        return result
    return _strip_directives(copy.deepcopy(patch))


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value
