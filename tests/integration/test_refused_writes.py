"""What the API server refuses shows in status, Events and a backed-off retry; the training stays recorded.

The refusals are the real server's own (a Deployment a ResourceQuota forbids: 403 from the quota
admission plugin) or the operator's (a Service or a Job of the name it needs that someone else owns).
"""

from __future__ import annotations

import pytest

from retrain_contract.api import names
from retrain_operator.core import serving
from retrain_operator.core.conditions import get_condition
from retrain_operator.core.runs import job_name

from .conftest import Scenario

pytestmark = pytest.mark.integration


def stalled(status: dict) -> dict | None:
    condition = get_condition(status.get("conditions") or [], "Stalled")
    return condition if condition and condition["status"] == "True" else None


def test_a_model_server_the_server_refuses_is_reported_and_the_training_kept(scenario: Scenario):
    # A platform team's quota: no Deployments in this namespace. The quota admission plugin refuses them.
    core, namespace = scenario.cluster.core, scenario.namespace
    core.create_namespaced_resource_quota(namespace, {"metadata": {"name": "no-deployments"},
                                                      "spec": {"hard": {"count/deployments.apps": "0"}}})
    scenario.cluster.wait(lambda: core.read_namespaced_resource_quota("no-deployments", namespace).status.hard,
                          30, "the quota controller to count usage")
    scenario.load_history()
    scenario.cluster.apply_policy(namespace, "greedy", scenario.policy_spec(serving={"replicas": 1}),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_status("greedy", stalled, "a Stalled condition", timeout=120)

    condition = stalled(status)
    assert condition["reason"] == "ServingObjectRejected"
    assert "403" in condition["message"] and "exceeded quota: no-deployments" in condition["message"]
    refused = status["applyErrors"]["serving"]
    assert refused["kind"] == "Deployment" and refused["code"] == 403 and refused["apiReason"] == "Forbidden"
    assert refused["nextAttemptAt"] > refused["lastAttemptAt"]
    # The run itself finished and is recorded, whatever happened to serving.
    assert status["lastRun"]["version"] == "v1" and status["currentModel"]["version"] == "v1"
    events = scenario.cluster.wait(lambda: [e for e in scenario.cluster.events(namespace, "greedy")
                                            if e["reason"] == "ServingObjectRejected"], 30, "the Warning Event")
    assert events[0]["type"] == "Warning" and "exceeded quota" in events[0]["message"]
    assert scenario.cluster.deployment(namespace, serving.deployment_name("greedy", serving.STABLE)) is None

    # The quota goes: the next attempt (after its back-off) succeeds and clears the condition.
    core.delete_namespaced_resource_quota("no-deployments", namespace)
    status = scenario.wait_status("greedy", lambda s: not stalled(s) and not s.get("applyErrors"),
                                  "the refusal to clear", timeout=120)
    assert get_condition(status["conditions"], "Stalled")["reason"] == "Accepted"
    scenario.cluster.wait(lambda: scenario.cluster.deployment(
        namespace, serving.deployment_name("greedy", serving.STABLE)), 30, "the model server Deployment")


def test_a_service_owned_by_someone_else_is_never_adopted(scenario: Scenario):
    service = serving.service_name("taken", serving.STABLE)
    scenario.cluster.core.create_namespaced_service(scenario.namespace, {
        "metadata": {"name": service, "labels": {"team": "web"}},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}})
    scenario.load_history()
    scenario.cluster.apply_policy(scenario.namespace, "taken", scenario.policy_spec(serving={"replicas": 1}),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_status("taken", stalled, "a Stalled condition", timeout=120)

    assert stalled(status)["reason"] == "ServiceNotOwned"
    assert status["currentModel"]["version"] == "v1"
    untouched = scenario.cluster.core.read_namespaced_service(service, scenario.namespace)
    assert untouched.spec.selector == {"app": "web"} and not untouched.metadata.owner_references


def test_a_job_owned_by_someone_else_is_never_adopted(scenario: Scenario):
    """A Job with the name the run needs, left by someone else (an orphan of a deleted policy, a person):
    the run does not claim it or its outcome; the policy says why and waits."""
    namespace, name = scenario.namespace, job_name("churn", "v1")
    scenario.cluster.batch.create_namespaced_job(namespace, {
        "metadata": {"name": name}, "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox", "command": ["true"]}]}}}})
    scenario.load_history()
    scenario.cluster.apply_policy(namespace, "churn", scenario.policy_spec(),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_status("churn", stalled, "a Stalled condition", timeout=90)

    assert stalled(status)["reason"] == "JobNotOwned"
    assert status["applyErrors"]["job"]["name"] == name
    assert not status.get("activeRun") and not status.get("currentModel")  # nothing claimed
    foreign = scenario.cluster.batch.read_namespaced_job(name, namespace)
    assert not foreign.metadata.owner_references
