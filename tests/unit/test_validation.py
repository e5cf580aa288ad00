"""Policies are validated against the generated schema, its CEL rules, and what no schema can know."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain_contract.api.spec import PolicySpec
from retrain_operator.api.validation import problems, schema_problems

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "manifests/samples").glob("*.yaml"))
INVALID = sorted((ROOT / "tests/fixtures/invalid_policies").glob("*.yaml"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_policy_is_valid_and_parses(path: Path):
    document = yaml.safe_load(path.read_text())
    assert document["kind"] == "RetrainPolicy"
    assert problems(document["spec"]) == []
    PolicySpec.from_dict(document["spec"])


def test_there_are_samples_and_invalid_fixtures():
    assert len(SAMPLES) >= 3 and len(INVALID) >= 10


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.name)
def test_each_invalid_policy_is_rejected_with_the_expected_message(path: Path):
    text = path.read_text()
    expected = text.splitlines()[0].removeprefix("# expect:").strip()
    found = problems(yaml.safe_load(text)["spec"])
    assert any(expected in problem for problem in found), found


VALID = {"model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
         "storage": {"bucket": "models", "credentialsSecret": {"name": "s3"}}}


@pytest.mark.parametrize("training", [
    {"resources": {"limits": {"nvidia.com/gpu": 2}}},
    {"resources": {"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}}},
    {"strategy": "window", "window": {"duration": "30d", "halfLife": "7d"}},
    {"strategy": "incremental", "incremental": {"replayFraction": 0.5}},
])
def test_cel_rules_accept_what_they_should(training):
    assert schema_problems({**VALID, "training": training}) == []


def test_a_gpu_count_given_as_a_fractional_string_is_rejected_by_the_cel_rule():
    found = schema_problems({**VALID, "training": {"resources": {"limits": {"nvidia.com/gpu": "1.5"}}}})
    assert found == ["spec.training.resources: the GPU count (nvidia.com/gpu) must be a whole number"]


@pytest.mark.parametrize("extra", [
    {"storage": {"bucket": "models", "credentialsSecret": {"name": "minio.credentials"}}},
    {"serving": {"router": {"type": "gatewayAPI", "httpRoute": "churn.routes"}}},
    {"serving": {"router": {"type": "istio", "virtualService": "churn.mesh"}}},
    {"training": {"resources": {"requests": {"cpu": "500m", "memory": "1024Mi"},
                                "limits": {"cpu": 1, "memory": "1Gi"}}}},
    {"training": {"resources": {"requests": {"example.com/foo": 1}, "limits": {"example.com/foo": "1"}},
                  "nodeSelector": {"a": "b"}}},
    {"training": {"tolerations": [{"operator": "Exists"},
                                  {"key": "k", "operator": "Exists", "value": "", "effect": "NoSchedule"},
                                  {"key": "k", "effect": "NoExecute", "tolerationSeconds": 60}]}},
    {"serving": {"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1", "nvidia.com/gpu": 1}},
                 "nodeSelector": {"kubernetes.io/os": "linux"},
                 "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "serving"}]}},
])
def test_pod_fields_the_server_accepts_are_valid(extra):
    assert schema_problems({**VALID, **extra}) == []


LABEL_KEYS = ("keys must be label keys: an optional DNS subdomain prefix and '/', then a name of at most 63 letters, "
              "digits, '-', '_' or '.' (e.g. nvidia.com/gpu.present)")
RESOURCE_NAMES = ("keys must be resource names: an optional DNS subdomain prefix and '/', then a name of at most 63 "
                  "letters, digits, '-', '_' or '.' (e.g. cpu, memory, nvidia.com/gpu)")


@pytest.mark.parametrize("section", ["training", "serving"])
@pytest.mark.parametrize(("fields", "where", "message"), [
    ({"nodeSelector": {"gpu type": "a100"}}, "nodeSelector", f"nodeSelector {LABEL_KEYS}"),
    ({"nodeSelector": {"x" * 64: "a"}}, "nodeSelector", f"nodeSelector {LABEL_KEYS}"),
    ({"nodeSelector": {"a" * 254 + "/x": "a"}}, "nodeSelector", f"nodeSelector {LABEL_KEYS}"),
    ({"resources": {"requests": {"gpu count": 1}}}, "resources.requests", f"resources.requests {RESOURCE_NAMES}"),
    ({"resources": {"limits": {"a/b/c": 1}}}, "resources.limits", f"resources.limits {RESOURCE_NAMES}"),
    ({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}, "resources",
     "resources: a request must not exceed the limit of the same resource"),
    ({"resources": {"requests": {"cpu": "1001m"}, "limits": {"cpu": 1}}}, "resources",
     "resources: a request must not exceed the limit of the same resource"),
    ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "tolerations[0]",
     "tolerations: a toleration with operator Exists must not have a value"),
    ({"tolerations": [{"effect": "NoSchedule"}]}, "tolerations[0]",
     "tolerations: a toleration without a key must have operator Exists"),
    ({"tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 1}]}, "tolerations[0]",
     "tolerations: tolerationSeconds needs effect NoExecute"),
])
def test_pod_fields_the_server_refuses_break_exactly_their_rule(section, fields, where, message):
    assert schema_problems({**VALID, section: fields}) == [f"spec.{section}.{where}: {section}.{message}"]


@pytest.mark.parametrize("quantity", ["-1", -1, "1e1.5", "1" * 65])
def test_negative_and_malformed_quantities_are_refused_by_the_schema(quantity):
    found = schema_problems({**VALID, "training": {"resources": {"requests": {"cpu": quantity}}}})
    assert [problem.split(":")[0] for problem in found] == ["spec.training.resources.requests.cpu"]


def test_a_secret_name_is_a_subdomain():
    assert schema_problems({**VALID, "storage": {"bucket": "models", "credentialsSecret": {"name": "x" * 253}}}) == []
    for name in ("x" * 254, "Minio", "minio..credentials", "-minio"):
        found = schema_problems({**VALID, "storage": {"bucket": "models", "credentialsSecret": {"name": name}}})
        assert [problem.split(":")[0] for problem in found] == ["spec.storage.credentialsSecret.name"], name


def test_a_trainer_image_of_your_own_needs_no_estimator_but_may_declare_a_format():
    byo = {**VALID, "model": {"target": "churned", "format": "onnx"},
           "training": {"image": "registry.example.com/ml/onnx-trainer:1", "command": ["python", "-m", "train"]}}
    assert problems(byo) == []
    spec = PolicySpec.from_dict(byo)
    assert spec.model.estimator is None and spec.model.format == "onnx"


def test_without_a_command_of_your_own_the_estimator_is_required():
    found = schema_problems({**VALID, "model": {"target": "churned"}})
    assert found == ["spec: model.estimator is required unless training.command runs a trainer image of your own"]
    found = schema_problems({**VALID, "model": {**VALID["model"], "format": "pmml"}})
    assert len(found) == 1 and "spec.model.format" in found[0], found
