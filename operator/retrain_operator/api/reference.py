"""The field reference (docs/policy-reference.md), generated from `schema.py`.

Generated rather than written so it cannot drift from what the API server enforces; a test
fails when the checked-in file and the generated one differ.
`python -m retrain_operator.api.reference --write` regenerates it.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

from retrain_contract.api import names
from retrain_contract.api.schema import Schema, spec_schema

REFERENCE_PATH = Path("docs/policy-reference.md")
_CONSTRAINTS = (("enum", "one of"), ("pattern", "pattern"), ("minimum", "≥"), ("maximum", "≤"),
                ("minLength", "min length"), ("maxLength", "max length"), ("maxItems", "max items"),
                ("maxProperties", "max entries"), ("format", "format"))


def _type(node: Schema) -> str:
    if node.get("x-kubernetes-int-or-string"):
        return "int or string"
    kind = node.get("type", "any")
    if kind == "array":
        return f"list of {_type(node.get('items', {}))}"
    if kind == "object" and "additionalProperties" in node:
        return f"map of {_type(node['additionalProperties'])}"
    return str(kind)


def _constraints(node: Schema) -> str:
    parts = []
    for key, label in _CONSTRAINTS:
        if key in node:
            value = node[key]
            shown = ", ".join(f"`{_enum_item(item)}`" for item in value) if key == "enum" else f"`{value}`"
            parts.append(f"{label} {shown}")
    return "; ".join(parts)


def _enum_item(item: object) -> str:
    """As a user writes it in YAML: a string as it is (the empty one quoted), true/false, numbers."""
    return item if isinstance(item, str) and item else json.dumps(item)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _fields(node: Schema, path: str, required: set[str]) -> Iterator[tuple[str, Schema, bool]]:
    for name, child in node.get("properties", {}).items():
        child_path = f"{path}.{name}"
        yield child_path, child, name in required
        target = child.get("items", child) if child.get("type") == "array" else child
        yield from _fields(target, child_path + ("[]" if target is not child else ""),
                           set(target.get("required", [])))


def _rules(node: Schema, path: str) -> Iterator[tuple[str, str, str]]:
    for rule in node.get("x-kubernetes-validations", []):
        yield path, rule["message"], rule["rule"]
    for name, child in node.get("properties", {}).items():
        if child.get("type") == "array":  # rules on the list itself, then on its items
            for rule in child.get("x-kubernetes-validations", []):
                yield f"{path}.{name}", rule["message"], rule["rule"]
            child = child.get("items", {})
        yield from _rules(child, f"{path}.{name}")


def render_markdown() -> str:
    spec = spec_schema()
    lines = [
        f"# {names.KIND} field reference",
        "",
        "<!-- Generated from contract/retrain_contract/api/schema.py: "
        "python -m retrain_operator.api.reference --write -->",
        "",
        f"`apiVersion: {names.GROUP}/{names.VERSION}`, `kind: {names.KIND}` "
        f"(short name{'s' if len(names.SHORT_NAMES) > 1 else ''} {', '.join(names.SHORT_NAMES)}). "
        "Every constraint below is enforced by the API server at admission and again by the "
        "operator, which marks a policy that breaks one `Invalid` instead of acting on it.",
        "",
        "| field | type | required | default | constraints | description |",
        "|---|---|---|---|---|---|",
    ]
    for path, node, required in _fields(spec, "spec", set(spec.get("required", []))):
        default = f"`{json.dumps(node['default'])}`" if "default" in node else ""
        lines.append(f"| `{path}` | {_type(node)} | {'yes' if required else ''} | {_cell(default)} | "
                     f"{_cell(_constraints(node))} | {_cell(node.get('description', ''))} |")
    lines += ["", "## Cross-field rules (CEL)", "", "| on | message | rule |", "|---|---|---|"]
    for path, message, rule in _rules(spec, "spec"):
        lines.append(f"| `{path}` | {_cell(message)} | `{_cell(rule)}` |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"write {REFERENCE_PATH} instead of printing")
    args = parser.parse_args()
    if args.write:
        REFERENCE_PATH.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE_PATH.write_text(render_markdown())
    else:
        print(render_markdown(), end="")


if __name__ == "__main__":
    main()
