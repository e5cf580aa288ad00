"""A trainer pod that cannot start (its env names a Secret that does not exist) on the real control plane:
the run says why while it waits, a Warning Event says it once, and the run goes on once the Secret exists."""

from __future__ import annotations

import base64

import kubernetes
import pytest

from retrain_contract.api import names
from retrain_operator.core.conditions import get_condition

from .conftest import Scenario

pytestmark = pytest.mark.integration


def test_a_run_whose_secret_is_missing_says_so_and_starts_once_it_exists(scenario: Scenario):
    scenario.load_history()
    ns = scenario.namespace
    pod = {"env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}]}
    spec = scenario.policy_spec(training={"strategy": "full", "backoffLimit": 0, "pod": pod})
    scenario.cluster.apply_policy(ns, "waits", spec, annotations={names.ANNOTATION_TRIGGER: "1"})

    def waiting(status: dict) -> bool:
        training = get_condition(status.get("conditions") or [], "Training") or {}
        return training.get("reason") == "PodNotStarting"
    status = scenario.wait_status("waits", waiting, "the run to say its pod does not start", timeout=60)
    problem = status["activeRun"]["podProblem"]
    assert problem["reason"] == "CreateContainerConfigError" and "hf-token" in problem["message"], problem
    assert "hf-token" in get_condition(status["conditions"], "Training")["message"]
    warnings = [e for e in scenario.cluster.events(ns, "waits") if e["reason"] == "PodNotStarting"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning" and "waits-v1" in warnings[0]["message"]

    kubernetes.client.CoreV1Api(scenario.cluster.api_client).create_namespaced_secret(ns, {
        "metadata": {"name": "hf-token"}, "data": {"token": base64.b64encode(b"hf_not_real").decode()}})
    status = scenario.wait_recorded("waits", "v1", timeout=120)
    assert status["lastRun"]["phase"] == "Succeeded", status["lastRun"]
    assert len([e for e in scenario.cluster.events(ns, "waits") if e["reason"] == "PodNotStarting"]) == 1
