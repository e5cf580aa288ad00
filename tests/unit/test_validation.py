"""Policies are validated against the generated schema, its CEL rules, and what no schema can know."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain_operator.api.spec import PolicySpec
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
