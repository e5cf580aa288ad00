"""The shipped RBAC is least privilege: every request the operator makes in a full scenario is
allowed by manifests/operator/rbac.yaml, every rule there is used (but the direct reads of what the
informers hold, kept for when they cannot answer), and nothing is a wildcard.

The scenario covers each kind of request the operator makes: training Jobs, the Secret, Events,
status, serving Deployments and Services, a canary rollout analysed through the pod proxy on a
Gateway API HTTPRoute, an Istio VirtualService, and a notification (its Event listed and relabelled)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from retrain_contract.api import names
from retrain_devcluster import rbac
from retrain_operator.core import serving
from retrain_sandbox.traffic import Traffic

from ..webhook_receiver import WebhookReceiver
from .conftest import Scenario
from .test_canary_rollout import ROWS, http_route, rollout_ended, serve_v1, train_v2

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
# Reads the informers answer once they have listed (adapters/caches.py): the operator GETs these only before
# then, when a watch is refused, or to see what refused its create (409). Granted, and may go unused here.
FALLBACK_READS = {("apps", "deployments", "get"), ("", "services", "get"), (names.GROUP, names.PLURAL, "get")}


def shipped_rules() -> list[dict]:
    documents = list(yaml.safe_load_all((ROOT / "manifests/operator/rbac.yaml").read_text()))
    role = next(d for d in documents if d["kind"] == "ClusterRole")
    return role["rules"]


def test_the_operator_needs_exactly_the_shipped_rules(scenario: Scenario):
    # A canary on a Gateway API route, through analysis to the end.
    http_route(scenario, "gw")
    spec = scenario.policy_spec(serving={"replicas": 1, "router": {"type": "gatewayAPI", "httpRoute": "gw"}},
                                promotion={"canary": {"steps": [{"setWeight": 50}, {"pause": {"duration": "2s"}},
                                                                {"setWeight": 100}],
                                                      "analysis": {"interval": "2s", "minRequests": 5,
                                                                   "maxLatencyRatio": 20}}})
    serve_v1(scenario, "gw", spec)
    traffic = Traffic(scenario.cluster, scenario.namespace, "gw", ROWS, rate=30, router="gatewayAPI",
                      route="gw").start()
    try:
        train_v2(scenario, "gw")
        status = scenario.wait_status("gw", rollout_ended, "the rollout", timeout=150)
    finally:
        traffic.stop()
    assert status["rollout"]["phase"] == "Succeeded", status["rollout"].get("message")
    assert status["rollout"]["lastAnalysis"]["result"] == "Passed"  # the pod proxy was used

    # Someone edits the stable Service's selector by hand: the operator puts its own back (a patch).
    core, service = scenario.cluster.core, serving.service_name("gw", serving.STABLE)
    selector = core.read_namespaced_service(service, scenario.namespace).spec.selector
    core.patch_namespaced_service(service, scenario.namespace, {"spec": {"selector": {
        key: "hand-edited" for key in selector}}})
    scenario.cluster.wait(lambda: core.read_namespaced_service(service, scenario.namespace).spec.selector == selector,
                          60, "the operator to restore the Service's selector")

    # An Istio VirtualService gets its weights too; its policy notifies a webhook (the Event is relabelled).
    receiver = WebhookReceiver().start()
    core.create_namespaced_secret(scenario.namespace, {"metadata": {"name": "hook"},
                                                       "stringData": {"url": receiver.url("/hook")}})
    scenario.cluster.custom.create_namespaced_custom_object(
        "networking.istio.io", "v1", scenario.namespace, "virtualservices", {
            "apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "mesh"},
            "spec": {"hosts": ["mesh"], "http": [{"route": [{"destination": {"host": "mesh-model-stable"}}]}]}})
    scenario.cluster.apply_policy(scenario.namespace, "mesh", scenario.policy_spec(
        serving={"replicas": 1, "router": {"type": "istio", "virtualService": "mesh"}},
        notify=[{"name": "ops", "urlSecret": {"name": "hook"}, "categories": ["run"]}]),
        annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.cluster.wait(lambda: (scenario.cluster.custom.get_namespaced_custom_object(
        "networking.istio.io", "v1", scenario.namespace, "virtualservices", "mesh")["spec"]["http"][0]["route"][0]
        .get("weight")) == 100, 90, "the VirtualService weights")
    try:
        scenario.cluster.wait(lambda: any("notify-result" in str(e["metadata"].get("annotations")) for e in
                                          scenario.cluster.events(scenario.namespace, "mesh")), 30,
                              "a notification's Event to be closed")
    finally:
        receiver.stop()

    records = [record for record in scenario.cluster.operator_requests() if record.resource]
    # The authorizer itself refused nothing (a 403 from admission, e.g. an Event posted into a namespace a
    # test is deleting, is no RBAC matter); the audit log records every decision.
    assert [r for r in records if r.decision == "forbid"] == []
    assert {r.decision for r in records} == {"allow"}
    requests = [rbac.Request.of(record) for record in records]
    rules = shipped_rules()
    assert requests, "no operator requests were recorded"
    assert rbac.denied(rules, requests) == []
    assert set(rbac.unused(rules, requests)) <= FALLBACK_READS
    assert rbac.wildcards(rules) == []
