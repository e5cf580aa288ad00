"""Is a policy's spec acceptable? The same answer the API server gives at admission, and more.

`schema_problems` checks the generated OpenAPI schema (with `jsonschema`) and its CEL rules
(with `cel-python`), so a cluster that did not validate (an old CRD, a test server) still gets
a clear `InvalidSpec` reason. `semantic_problems` checks what no schema can: that the cron
parses, the time zone exists, durations parse, the estimator fits the task and strategy.
Pure functions: no I/O.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import celpy
import jsonschema
from croniter import CroniterBadDateError, croniter

from retrain_contract.api.estimators import estimator_problem
from retrain_contract.api.schema import spec_schema
from retrain_contract.api.spec import parse_duration

from . import cel_lists, quantity

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
    # Kubernetes' CEL libraries the rules use (quantity, lists) on top of standard CEL.
    return environment.program(environment.compile(rule),
                               functions={**quantity.CEL_FUNCTIONS, **cel_lists.CEL_FUNCTIONS})


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


def _list_key_problems(schema: Json, value: Any, path: list[Any]) -> list[str]:
    """Duplicates in lists the schema declares `x-kubernetes-list-type: map` (by their keys) or `set`, as the
    API server reports them (JSON Schema has no word for either)."""
    problems: list[str] = []
    if isinstance(value, dict):
        for name, child_schema in (schema.get("properties") or {}).items():
            if name in value:
                problems += _list_key_problems(child_schema, value[name], [*path, name])
    elif isinstance(value, list):
        kind, keys = schema.get("x-kubernetes-list-type"), schema.get("x-kubernetes-list-map-keys") or []
        seen: set[str] = set()
        for index, item in enumerate(value):
            if kind == "map" and isinstance(item, dict):
                key = repr(tuple(item.get(k) for k in keys))
                shown = ", ".join(f"{k}: {item.get(k)!r}" for k in keys)
            elif kind == "set":
                key, shown = repr(item), repr(item)
            else:
                key = shown = ""
            if kind in ("map", "set"):
                if key in seen:
                    problems.append(f"{_path([*path, index])}: Duplicate value: {shown}")
                seen.add(key)
            if isinstance(schema.get("items"), dict):
                problems += _list_key_problems(schema["items"], item, [*path, index])
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
    if not problems:
        problems += _list_key_problems(spec_schema(), spec, [])
    if not problems:  # CEL rules assume a schema-valid object, as the API server's do
        problems += _cel_problems(spec_schema(), spec, [])
    return problems


def _fires(cron: str) -> bool:
    """Does the cron ever match a real date (`0 0 31 2 *` does not)? croniter searches 50 years ahead."""
    try:
        croniter(cron, dt.datetime(2000, 1, 1, tzinfo=dt.UTC)).get_next(dt.datetime)
    except CroniterBadDateError:
        return False
    return True


def _section(value: Any) -> Json:
    """A section as a dict: one of the wrong type is the schema's to report, not a crash here."""
    return value if isinstance(value, dict) else {}


# Durations are added to timestamps: one beyond this would overflow datetime arithmetic.
MAX_DURATION = dt.timedelta(days=365 * 1000)


def _duration_problem(where: str, value: Any) -> str | None:
    try:
        parsed = parse_duration(value)
    except Exception:
        return f"{where}: {value!r} is not a duration (e.g. 90s, 30m, 6h, 7d)"
    if parsed is not None and abs(parsed) > MAX_DURATION:
        return f"{where}: {value!r} is too long (at most 1000 years)"
    return None


def semantic_problems(spec: Json) -> list[str]:
    problems: list[str] = []
    model = _section(spec.get("model"))
    training = _section(spec.get("training"))
    triggers = _section(spec.get("triggers"))
    schedule = _section(triggers.get("schedule"))
    drift = _section(triggers.get("drift"))
    canary = _section(_section(spec.get("promotion")).get("canary"))
    if schedule.get("cron") and not croniter.is_valid(str(schedule["cron"])):
        problems.append(f"spec.triggers.schedule.cron: {schedule['cron']!r} is not a valid cron expression")
    elif schedule.get("cron") and not _fires(str(schedule["cron"])):
        problems.append(f"spec.triggers.schedule.cron: {schedule['cron']!r} never fires (no such date)")
    if schedule.get("timeZone") is not None:  # "" too: the core would read it as a zone name
        try:
            ZoneInfo(str(schedule["timeZone"]))
        except (ZoneInfoNotFoundError, ValueError):
            problems.append(f"spec.triggers.schedule.timeZone: unknown time zone {schedule['timeZone']!r}")
    durations = {
        "spec.triggers.cooldown": triggers.get("cooldown"),
        "spec.triggers.schedule.startingDeadline": schedule.get("startingDeadline"),
        "spec.training.window.duration": _section(training.get("window")).get("duration"),
        "spec.training.window.halfLife": _section(training.get("window")).get("halfLife"),
        "spec.triggers.drift.window": drift.get("window"),
        "spec.triggers.drift.interval": drift.get("interval"),
        "spec.promotion.canary.readyTimeout": canary.get("readyTimeout"),
        "spec.promotion.canary.analysis.interval": _section(canary.get("analysis")).get("interval"),
    }
    steps = canary.get("steps") if isinstance(canary.get("steps"), list) else []
    for index, step in enumerate(steps):
        durations[f"spec.promotion.canary.steps[{index}].pause.duration"] = \
            _section(_section(step).get("pause")).get("duration")
    for where, value in durations.items():
        if value is not None and (problem := _duration_problem(where, value)):
            problems.append(problem)
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
