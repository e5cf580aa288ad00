"""A policy name of 63 characters (the longest label value) runs the whole story: trained, served, a
canary on a Gateway API route through analysis, promoted. Every name derived from it (Jobs,
Deployments, Services, pod labels) is hash-shortened within Kubernetes' limits."""

from __future__ import annotations

import re

import pytest

from retrain_contract.api import names
from retrain_operator.api import kubenames
from retrain_operator.core import serving
from retrain_sandbox.traffic import Traffic

from .conftest import Scenario
from .test_canary_rollout import ROWS, http_route, rollout_ended, route_weights, serve_v1, serving_policy, train_v2

pytestmark = pytest.mark.integration

NAME = "customer-churn-gradient-boosting-eu-west-production-tier1-model"
DNS_1035 = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def test_a_63_character_policy_runs_the_whole_story(scenario: Scenario):
    assert len(NAME) == 63
    http_route(scenario, NAME)
    serve_v1(scenario, NAME, serving_policy(scenario, {"type": "gatewayAPI", "httpRoute": NAME}))
    traffic = Traffic(scenario.cluster, scenario.namespace, NAME, ROWS, rate=30, router="gatewayAPI",
                      route=NAME).start()
    try:
        train_v2(scenario, NAME)
        status = scenario.wait_status(NAME, lambda s: rollout_ended(s) and s["rollout"]["version"] == "v2",
                                      "the v2 rollout", timeout=180)
    finally:
        traffic.stop()
    assert status["rollout"]["phase"] == "Succeeded", status["rollout"].get("message")
    assert status["currentModel"]["version"] == "v2" and not status.get("applyErrors")
    assert route_weights(scenario, NAME) == (100, 0)
    answered = traffic.by_version()
    assert answered.get("v1", 0) > 0 and answered.get("v2", 0) > 0, answered

    cluster, namespace = scenario.cluster, scenario.namespace
    for role in (serving.STABLE, serving.CANARY):
        service = cluster.core.read_namespaced_service(serving.service_name(NAME, role), namespace)
        assert DNS_1035.fullmatch(service.metadata.name), service.metadata.name
    objects = [*cluster.jobs(namespace), *(cluster.deployment(namespace, serving.deployment_name(NAME, role))
                                           for role in (serving.STABLE, serving.CANARY))]
    assert len(objects) == 4  # v1, v2, stable, canary
    for obj in objects:
        assert len(obj["metadata"]["name"]) <= 63
        assert obj["metadata"]["labels"][names.LABEL_POLICY] == kubenames.policy_label(NAME) == NAME


def test_a_253_character_policy_trains_and_serves(scenario: Scenario):
    """The longest name the server accepts: every derived object is hash-shortened, and the story runs."""
    name = ("a" + "-".join(["retrain"] * 40))[:252] + "z"
    assert len(name) == 253
    scenario.load_history()
    scenario.cluster.apply_policy(scenario.namespace, name, scenario.policy_spec(serving={"replicas": 1}),
                                  annotations={names.ANNOTATION_TRIGGER: "1"})
    status = scenario.wait_recorded(name, "v1", timeout=120)
    assert status["currentModel"]["version"] == "v1" and not status.get("applyErrors")
    deployment = scenario.cluster.wait(lambda: (lambda d: d if (d or {}).get("status", {}).get("readyReplicas") == 1
                                                else None)(scenario.cluster.deployment(
        scenario.namespace, serving.deployment_name(name, serving.STABLE))), 90, "the model server")
    label = deployment["metadata"]["labels"][names.LABEL_POLICY]
    assert label == kubenames.policy_label(name) and len(label) <= 63
    assert deployment["metadata"]["annotations"][names.ANNOTATION_POLICY] == name
