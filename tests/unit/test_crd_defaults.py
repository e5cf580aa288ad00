"""Every `default` in the generated CRD is a valid value of its own schema node, as YAML renders it.

A real API server refuses a CRD whose default does not validate against its own node (old
versions said `storage.prefix ... must be of type string` for a default that was not a string).
The check runs on the YAML as it is written to manifests/crd/, so it also catches a string default
that YAML would read back as something else (`''`, `'0'`, `'true'`, `'1e3'`).
"""

from __future__ import annotations

from typing import Any

import jsonschema
import yaml

from retrain_contract.api.schema import openapi_schema
from retrain_operator.api import crd as crd_module
from retrain_operator.api.validation import _to_json_schema, problems

from .test_crd import _walk


def _rendered() -> dict[str, Any]:
    text = crd_module.render_yaml()
    return yaml.safe_load(text)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def _check(node: dict[str, Any], value: Any) -> list[str]:
    schema = _to_json_schema(node)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return [error.message for error in validator.iter_errors(value)]


def test_every_default_in_the_generated_crd_validates_against_its_own_node():
    defaults = [(path, node) for path, node in _walk(_rendered()) if "default" in node]
    assert len(defaults) > 30  # the walk reaches every section, list items and maps included
    for path, node in defaults:
        assert _check(node, node["default"]) == [], path


def test_yaml_renders_each_default_with_the_type_of_the_source():
    source = dict(_walk(openapi_schema()))
    for path, node in _walk(_rendered()):
        if "default" in node:
            expected = source[path]["default"]
            assert node["default"] == expected and type(node["default"]) is type(expected), path
    prefix = _rendered()["properties"]["spec"]["properties"]["storage"]["properties"]["prefix"]
    assert prefix["default"] == "" and isinstance(prefix["default"], str)
    assert "default: ''" in crd_module.render_yaml()


def test_the_checker_would_catch_a_wrong_default():
    assert _check({"type": "string", "maxLength": 3}, "") == []
    assert _check({"type": "string"}, None) != []
    assert _check({"type": "string", "pattern": "^[0-9]+h$"}, "1d") != []
    assert _check({"type": "integer", "minimum": 1}, 0) != []
    assert _check({"type": "string", "enum": ["a"]}, "b") != []


MINIMAL = {"model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
           "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}}}


def test_what_the_operator_cannot_shorten_is_bounded_at_admission():
    def problem(**sections: Any) -> list[str]:
        return problems({**MINIMAL, **sections})

    assert problem(training={"nodeSelector": {"nvidia.com/gpu.present": "true"},
                             "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                             "serviceAccountName": "trainer", "runtimeClassName": "nvidia"}) == []
    assert problem(training={"tolerations": [{"operator": "Exists"}, {"key": "", "operator": "Exists"}]}) == []
    assert problem(training={"nodeSelector": {"pool": "a b"}})  # not a label value
    assert problem(training={"nodeSelector": {"pool": "x" * 64}})
    assert problem(serving={"nodeSelector": {"pool": "-gpu"}})
    assert problem(training={"tolerations": [{"key": "bad key", "operator": "Exists"}]})
    assert problem(training={"tolerations": [{"key": "k", "operator": "Equal", "value": "v" * 64}]})
    assert problem(training={"serviceAccountName": "Trainer_SA"})
