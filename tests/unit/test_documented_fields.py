"""Every field a user reads about or copies exists in the schema: the samples, the policies in the
README and docs/, and the field reference. A field the schema lacks would be pruned silently by
the API server (structural schemas drop unknown fields), so a typo would never be noticed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from retrain_contract.api.schema import spec_schema

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "manifests/samples").glob("*.yaml"))
PROSE = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPEC_KEYS = set(spec_schema()["properties"])


def unknown_fields(value: Any, schema: dict[str, Any], path: str) -> Iterator[str]:
    """Paths in `value` that `schema` has no place for."""
    if schema.get("x-kubernetes-preserve-unknown-fields") and "properties" not in schema:
        return
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if properties is not None and key in properties:
                yield from unknown_fields(item, properties[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                yield from unknown_fields(item, extra, f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                yield f"{path}.{key}"
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for index, item in enumerate(value):
            yield from unknown_fields(item, schema["items"], f"{path}[{index}]")


def yaml_blocks(text: str) -> Iterator[str]:
    yield from re.findall(r"```ya?ml\n(.*?)```", text, flags=re.S)


def documented_specs() -> Iterator[tuple[str, dict[str, Any]]]:
    """Whole policies, `spec:` blocks, and spec fragments (a block whose top keys are all spec sections)."""
    for path in PROSE:
        for number, block in enumerate(yaml_blocks(path.read_text()), 1):
            where = f"{path.relative_to(ROOT)} block {number}"
            try:
                documents = [d for d in yaml.safe_load_all(block) if isinstance(d, dict)]
            except yaml.YAMLError:
                try:  # an indented fragment of a spec
                    documents = [yaml.safe_load(_dedent(block))]
                except yaml.YAMLError as error:
                    raise AssertionError(f"{where} is not YAML: {error}") from error
            for document in documents:
                if not isinstance(document, dict):
                    continue
                if document.get("kind") == "RetrainPolicy" or set(document) == {"spec"}:
                    yield where, document.get("spec") or {}
                elif document and set(document) <= SPEC_KEYS:
                    yield where, document


def _dedent(block: str) -> str:
    lines = [line for line in block.splitlines() if line.strip()]
    indent = min(len(line) - len(line.lstrip()) for line in lines)
    return "\n".join(line[indent:] for line in lines)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_field_of_every_sample_is_in_the_schema(path: Path):
    spec = yaml.safe_load(path.read_text())["spec"]
    assert list(unknown_fields(spec, spec_schema(), "spec")) == []


def test_every_policy_in_the_readme_and_docs_uses_only_schema_fields():
    found = list(documented_specs())
    assert any(where.startswith("README.md") for where, _ in found)  # the annotated policy is checked
    problems = [f"{where}: {field}" for where, spec in found for field in unknown_fields(spec, spec_schema(), "spec")]
    assert problems == []


def test_every_field_in_the_reference_exists_in_the_schema():
    text = (ROOT / "docs/policy-reference.md").read_text()
    paths = re.findall(r"^\| `(spec(?:\.[A-Za-z0-9]+(?:\[\])?)*)` \|", text, flags=re.M)
    assert len(paths) > 100
    for path in paths:
        node = spec_schema()
        for part in path.split(".")[1:]:
            name, is_list = part.removesuffix("[]"), part.endswith("[]")
            assert name in node.get("properties", {}), path
            node = node["properties"][name]
            if is_list:
                node = node["items"]


def test_the_checker_finds_a_misspelt_field():
    assert list(unknown_fields({"triggers": {"schedul": {"cron": "0 3 * * *"}}}, spec_schema(), "spec")) == [
        "spec.triggers.schedul"]
    assert list(unknown_fields({"training": {"resources": {"limits": {"nvidia.com/gpu": 1}}}}, spec_schema(),
                               "spec")) == []


def test_every_whole_policy_in_the_readme_and_docs_is_valid():
    from retrain_operator.api.validation import problems

    whole = [(where, spec) for where, spec in documented_specs() if {"model", "data", "storage"} <= set(spec)]
    assert whole
    assert [(where, problems(spec)) for where, spec in whole if problems(spec)] == []
