"""Is a policy's spec acceptable? The same answer the API server gives at admission, and more.

`schema_problems` checks the generated OpenAPI schema (with `jsonschema`) and its CEL rules
(with `cel-python`), so a cluster that did not validate (an old CRD, a test server) still gets
a clear `InvalidSpec` reason. `semantic_problems` checks what no schema can: that the cron
parses, the time zone exists, durations parse, the estimator fits the task and strategy.
Pure functions: no I/O.
"""

from __future__ import annotations

import functools
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import celpy
import jsonschema
from croniter import croniter

from .estimators import estimator_problem
from .quantity import CEL_FUNCTIONS
from .schema import spec_schema
from .spec import parse_duration

Json = dict[str, Any]


def _to_json_schema(node: Any) -> Any:
    """OpenAPI v3 (Kubernetes dialect) to JSON Schema: int-or-string, nullable; other x- keys dropped."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _to_json_schema(value) for key, value in node.items()
              if not key.startswith("x-kubernetes-") and key not in {"nullable", "properties",
                                                                       "additionalProperties", "items"}}
    for key in ("properties",):
        if key in node:
            result[key] = {name: _to_json_schema(child) for name, child in node[key].items()}
    for key in ("additionalProperties", "items"):
        if key in node:
            result[key] = _to_json_schema(node[key])
    if node.get("x-kubernetes-int-or-string"):
        result.pop("type", None)
        pattern = result.pop("pattern", None)
        string: Json = {"type": "string"}
        if pattern:
            string["pattern"] = pattern
        result["anyOf"] = [{"type": "integer"}, string]
    if node.get("nullable") and "type" in result:
        result["type"] = [result["type"], "null"]
    return result


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    schema = _to_json_schema(spec_schema())
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@functools.cache
def _cel_program(rule: str) -> celpy.Runner:
    environment = celpy.Environment()
    # Kubernetes' CEL libraries the rules use (quantity) on top of standard CEL.
    return environment.program(environment.compile(rule), functions=CEL_FUNCTIONS)


def _path(parts: list[Any]) -> str:
    text = "spec"
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _cel_problems(schema: Json, value: Any, path: list[Any]) -> list[str]:
    """Evaluate each node's x-kubernetes-validations with `self` bound to that node, depth first."""
    problems: list[str] = []
    if isinstance(value, dict):
        for name, child_schema in (schema.get("properties") or {}).items():
            if name in value:
                problems += _cel_problems(child_schema, value[name], [*path, name])
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            problems += _cel_problems(schema["items"], item, [*path, index])
    for rule in schema.get("x-kubernetes-validations") or []:
        try:
            ok = _cel_program(rule["rule"]).evaluate({"self": celpy.json_to_cel(value)})
        except Exception as error:  # a rule that cannot be evaluated must not pass silently
            problems.append(f"{_path(path)}: rule {rule['rule']!r} could not be evaluated: {error}")
            continue
        if not bool(ok):
            problems.append(f"{_path(path)}: {rule['message']}")
    return problems


def with_defaults(schema: Json, value: Any) -> Any:
    """A copy with the schema's `default:` values filled in, as the API server does before validating."""
    if isinstance(value, dict) and "properties" in schema:
        result = dict(value)
        for name, child in schema["properties"].items():
            if name in result:
                result[name] = with_defaults(child, result[name])
            elif "default" in child:
                result[name] = child["default"]
        return result
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(schema["items"], item) for item in value]
    return value


def schema_problems(spec: Json) -> list[str]:
    spec = with_defaults(spec_schema(), spec)
    problems = [
        f"{_path(list(error.absolute_path))}: {error.message}"
        for error in sorted(_validator().iter_errors(spec), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if not problems:  # CEL rules assume a schema-valid object, as the API server's do
        problems += _cel_problems(spec_schema(), spec, [])
    return problems


def semantic_problems(spec: Json) -> list[str]:
    problems: list[str] = []
    model = spec.get("model") or {}
    training = spec.get("training") or {}
    triggers = spec.get("triggers") or {}
    schedule = triggers.get("schedule") or {}
    if schedule.get("cron") and not croniter.is_valid(str(schedule["cron"])):
        problems.append(f"spec.triggers.schedule.cron: {schedule['cron']!r} is not a valid cron expression")
    if schedule.get("timeZone"):
        try:
            ZoneInfo(str(schedule["timeZone"]))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"spec.triggers.schedule.timeZone: unknown time zone {schedule['timeZone']!r}")
    durations = {
        "spec.triggers.cooldown": triggers.get("cooldown"),
        "spec.triggers.schedule.startingDeadline": schedule.get("startingDeadline"),
        "spec.training.window.duration": (training.get("window") or {}).get("duration"),
        "spec.training.window.halfLife": (training.get("window") or {}).get("halfLife"),
    }
    for where, value in durations.items():
        if value is not None:
            try:
                parse_duration(value)
            except Exception:
                problems.append(f"{where}: {value!r} is not a duration (e.g. 90s, 30m, 6h, 7d)")
    if model.get("estimator"):
        problem = estimator_problem(str(model["estimator"]), str(model.get("task", "classification")),
                                    str(training.get("strategy", "full")))
        if problem:
            problems.append(f"spec.model.estimator: {problem}")
    return problems


def problems(spec: Json) -> list[str]:
    """Everything wrong with a spec, schema first; empty when the operator can act on it."""
    found = schema_problems(spec)
    for problem in semantic_problems(spec):
        if problem not in found:
            found.append(problem)
    return found
