"""Canary rollouts end to end: the real operator, real model servers (local processes), traffic
sent by the route's weights, analysis from the servers' own metrics, S3 in SeaweedFS."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from kubernetes.client.rest import ApiException

from retrain_contract.api import names
from retrain_operator.core import rollout, serving
from retrain_operator.core.conditions import get_condition
from retrain_sandbox import dataset
from retrain_sandbox.traffic import Traffic

from .conftest import Scenario

pytestmark = pytest.mark.integration

STEPS = [{"setWeight": 30}, {"pause": {"duration": "4s"}}, {"setWeight": 70}, {"pause": {"duration": "4s"}},
         {"setWeight": 100}]
ANALYSIS = {"interval": "2s", "minRequests": 10, "maxLatencyRatio": 20}
ROWS = [{k: v for k, v in row.items() if k in dataset.FEATURES}
        for row in dataset.churn_table(200, seed=9).to_pylist()]


def http_route(scenario: Scenario, name: str) -> None:
    """What a platform team applies once: the route of the model's hostname, to the stable Service."""
    scenario.cluster.custom.create_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", {
            "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {"parentRefs": [{"name": "public-gateway"}], "hostnames": ["churn.example.com"], "rules": [
                {"matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
                 "backendRefs": [{"name": serving.service_name(name, serving.STABLE), "port": 8080}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/docs"}}],
                 "backendRefs": [{"name": "docs", "port": 80}]}]}})


def route_weights(scenario: Scenario, name: str) -> tuple[int, int]:
    route = scenario.cluster.custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", name)
    weights = {b["name"]: int(b.get("weight", 1)) for b in route["spec"]["rules"][0]["backendRefs"]}
    return (weights.get(serving.service_name(name, serving.STABLE), 0),
            weights.get(serving.service_name(name, serving.CANARY), 0))


def deployment(scenario: Scenario, policy: str, role: str) -> dict | None:
    return scenario.cluster.deployment(scenario.namespace, serving.deployment_name(policy, role))


def policy_gone(scenario: Scenario, name: str) -> bool:
    try:
        scenario.cluster.policy(scenario.namespace, name)
    except ApiException as error:
        return error.status == 404
    return False


def rollout_ended(status: dict) -> bool:
    return (status.get("rollout") or {}).get("phase") in rollout.FINAL


def watch_until_rollout_ends(scenario: Scenario, name: str, look: Callable[[], None], timeout: float = 150) -> None:
    """Call `look` every 0.2 s, to record what changes, until the rollout ends or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        look()
        if rollout_ended(scenario.status(name)):
            return
        time.sleep(0.2)


def serving_policy(scenario: Scenario, router: dict, analysis: dict | None = None) -> dict:
    return scenario.policy_spec(serving={"replicas": 1, "router": router},
                                promotion={"canary": {"steps": STEPS, "analysis": {**ANALYSIS, **(analysis or {})}}})


def serve_v1(scenario: Scenario, name: str, spec: dict) -> None:
    scenario.load_history(rows=3000)
    scenario.cluster.apply_policy(scenario.namespace, name, spec, annotations={names.ANNOTATION_TRIGGER: "1"})
    scenario.wait_recorded(name, "v1")
    wanted = spec["serving"]["replicas"]
    scenario.cluster.wait(lambda: (deployment(scenario, name, serving.STABLE) or {})
                          .get("status", {}).get("readyReplicas") == wanted, 60, "the stable model servers")


def train_v2(scenario: Scenario, name: str) -> None:
    scenario.put("churn/incoming/batch-1.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=5)))
    scenario.cluster.trigger(scenario.namespace, name, "2")


@pytest.mark.timeout(600)  # two rollouts, then a deletion mid-rollout
def test_a_canary_goes_through_every_weight_and_becomes_stable(scenario: Scenario):
    name = "canary"
    http_route(scenario, name)
    # As the server stored it: the Gateway API CRD defaults backendRefs' group, kind and weight.
    docs_rule = scenario.cluster.custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", name)["spec"]["rules"][1]
    assert docs_rule["backendRefs"][0]["name"] == "docs"
    spec = serving_policy(scenario, {"type": "gatewayAPI", "httpRoute": name})
    # A shadow step first: the canary sees mirrored copies of live requests before it gets any weight.
    spec["promotion"]["canary"].update(mirror=True, steps=[{"pause": {"duration": "3s"}}, *STEPS])
    serve_v1(scenario, name, spec)
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="gatewayAPI",
                      route=name).start()
    try:
        train_v2(scenario, name)
        seen: list[tuple[int, int]] = []
        mirrored_at: list[tuple[int, int]] = []

        def look() -> None:
            weights = route_weights(scenario, name)
            if not seen or seen[-1] != weights:
                seen.append(weights)
            rule = scenario.cluster.custom.get_namespaced_custom_object(
                "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", name)["spec"]["rules"][0]
            if any(f.get("type") == "RequestMirror" for f in rule.get("filters") or []):
                mirrored_at.append(weights)

        watch_until_rollout_ends(scenario, name, look)
    finally:
        traffic.stop()
    status = scenario.status(name)
    assert status["rollout"]["phase"] == "Succeeded", status["rollout"].get("message")
    canary_weights = [c for _, c in seen]
    assert [w for w in (30, 70, 100) if w in canary_weights] == [30, 70, 100], seen
    assert canary_weights.index(30) < canary_weights.index(70) < canary_weights.index(100)
    assert seen[-1] == (100, 0) == route_weights(scenario, name)
    assert status["currentModel"]["version"] == "v2" and status["phase"] == "Ready"
    stable = deployment(scenario, name, serving.STABLE)
    assert stable["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v2"
    assert deployment(scenario, name, serving.CANARY)["spec"]["replicas"] == 0
    route = scenario.cluster.custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", name)
    assert route["spec"]["rules"][1] == docs_rule  # not ours: untouched
    answered = traffic.by_version()
    assert answered.get("v1", 0) > 20 and answered.get("v2", 0) > 20, answered
    assert mirrored_at and all(canary == 0 for _, canary in mirrored_at)  # shadowing only before live weight
    assert traffic.mirrored.get("v2", 0) > 10, traffic.mirrored
    assert "filters" not in route["spec"]["rules"][0]  # the mirror filter went with the shadow step
    assert status["rollout"]["lastAnalysis"]["result"] == "Passed"
    reasons = [e.get("reason") for e in scenario.cluster.events(scenario.namespace, name)]
    assert "RolloutStarted" in reasons and "CanaryWeight" in reasons and "ModelPromoted" in reasons
    assert get_condition(status["conditions"], "Progressing")["reason"] == "RolloutSucceeded"

    # A second rollout starts from a clean record (status is written whole): no `finishedAt` or reason of
    # the first, and its shadow step is not skipped as if it had already gone live.
    scenario.put("churn/incoming/batch-2.parquet", dataset.to_parquet(dataset.churn_table(1500, seed=6)))
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="gatewayAPI",
                      route=name).start()
    try:
        scenario.cluster.trigger(scenario.namespace, name, "3")
        second = scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("version") == "v3",
                                      "the second rollout to start", timeout=120)["rollout"]
        assert "finishedAt" not in second and second.get("reason") != "RolloutSucceeded", second
        assert not second.get("wentLive"), second
        scenario.cluster.wait(lambda: any(f.get("type") == "RequestMirror" for f in scenario.cluster.custom
                                          .get_namespaced_custom_object("gateway.networking.k8s.io", "v1",
                                                                        scenario.namespace, "httproutes", name)
                                          ["spec"]["rules"][0].get("filters") or []),
                              60, "the second rollout's shadow step")
        scenario.cluster.wait(lambda: route_weights(scenario, name)[1] > 0, 90, "live weight on the v3 canary")
    finally:
        traffic.stop()

    # Deleted mid-rollout: the route is given back (stable only, no mirror) before the Services go.
    scenario.cluster.custom.delete_namespaced_custom_object(names.GROUP, names.VERSION, scenario.namespace,
                                                            names.PLURAL, name)
    scenario.cluster.wait(lambda: policy_gone(scenario, name), 60, "the policy to be deleted")
    route = scenario.cluster.custom.get_namespaced_custom_object(
        "gateway.networking.k8s.io", "v1", scenario.namespace, "httproutes", name)
    assert [(b["name"], b.get("weight")) for b in route["spec"]["rules"][0]["backendRefs"]] == [
        (serving.service_name(name, serving.STABLE), 100)]
    assert "filters" not in route["spec"]["rules"][0]
    assert route["spec"]["rules"][1] == docs_rule
    assert "RouteReleased" in [e.get("reason") for e in scenario.cluster.events(scenario.namespace, name)]


@pytest.fixture()
def failing_prometheus() -> Iterator[str]:
    """A Prometheus HTTP API that answers every query with 0.5 (e.g. a business error rate)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                {"metric": {}, "value": [time.time(), "0.5"]}]}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_a_failing_analysis_rolls_the_canary_back_and_the_old_model_keeps_serving(scenario: Scenario,
                                                                                  failing_prometheus: str):
    name = "rollback"
    spec = serving_policy(scenario, {"type": "replicas"}, analysis={
        "prometheusUrl": failing_prometheus,
        "prometheus": [{"name": "business-errors", "query": 'sum(rate(errors{version="{{canaryVersion}}"}[1m]))',
                        "successCondition": "result < 0.1"}]})
    serve_v1(scenario, name, spec)
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="replicas").start()
    try:
        train_v2(scenario, name)
        status = scenario.wait_status(name, rollout_ended, "the rollout to end", timeout=150)
    finally:
        traffic.stop()
    assert status["rollout"]["phase"] == "RolledBack", status["rollout"]
    assert status["rollout"]["reason"] == "AnalysisFailed"
    assert "business-errors: 0.5 (result < 0.1)" in status["rollout"]["message"]
    assert status["currentModel"]["version"] == "v1"
    assert status["history"][0]["version"] == "v2" and status["history"][0]["rejected"] == "AnalysisFailed"
    scenario.cluster.wait(lambda: deployment(scenario, name, serving.CANARY)
                          ["status"].get("replicas", 0) == 0, 30, "the canary to scale to zero")
    stable = deployment(scenario, name, serving.STABLE)
    assert stable["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v1"
    assert stable["status"]["readyReplicas"] == 1  # the stable model never stopped serving
    # The canary did get its replica share before the analysis judged it. (Whether a request reached it
    # is timing: on a real cluster the first window can be judged a fraction of a second after the weight.)
    events = scenario.cluster.events(scenario.namespace, name)
    assert any(e.get("reason") == "CanaryWeight" and "v2: canary at 30%" in e.get("message", "") for e in events)
    assert "AnalysisFailed" in [e.get("reason") for e in events]
    assert traffic.by_version().get("v1", 0) > 0


def test_without_a_mesh_the_canary_grows_by_pods_through_every_step(scenario: Scenario):
    name = "pods"
    spec = scenario.policy_spec(serving={"replicas": 2, "router": {"type": "replicas"}}, promotion={"canary": {
        "steps": [{"setWeight": 50}, {"pause": {"duration": "3s"}}, {"setWeight": 100}], "analysis": ANALYSIS}})
    serve_v1(scenario, name, spec)
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="replicas").start()
    canary_pods: list[int] = []
    try:
        train_v2(scenario, name)

        def look() -> None:
            wanted = ((deployment(scenario, name, serving.CANARY) or {})
                      .get("spec") or {}).get("replicas")
            if wanted is not None and (not canary_pods or canary_pods[-1] != wanted):
                canary_pods.append(wanted)

        watch_until_rollout_ends(scenario, name, look)
    finally:
        traffic.stop()
    status = scenario.status(name)
    assert status["rollout"]["phase"] == "Succeeded", status["rollout"].get("message")
    assert canary_pods[:2] == [1, 2] and canary_pods[-1] == 0, canary_pods  # 50 %: 1 of 2, 100 %: 2, then gone
    assert status["currentModel"]["version"] == "v2"
    stable = deployment(scenario, name, serving.STABLE)
    assert stable["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v2"
    assert stable["spec"]["replicas"] == 2
    assert traffic.by_version().get("v2", 0) > 20


def test_without_a_mesh_the_replica_ratio_splits_traffic_and_a_human_promotes(scenario: Scenario):
    name = "replicas"
    spec = scenario.policy_spec(serving={"replicas": 1, "router": {"type": "replicas"}}, promotion={"canary": {
        "steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}], "analysis": ANALYSIS}})
    serve_v1(scenario, name, spec)
    traffic = Traffic(scenario.cluster, scenario.namespace, name, ROWS, rate=40, router="replicas").start()
    try:
        train_v2(scenario, name)
        paused = scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("reason") == "AwaitingPromotion",
                                      "the rollout to wait for a human", timeout=120)
        assert paused["phase"] == "RollingOut" and paused["canary"] == "v2 50%"
        canary_pods = scenario.cluster.pods(scenario.namespace, {names.LABEL_ROLE: "canary",
                                                                 names.LABEL_POLICY: name})
        assert len(canary_pods) == 1  # one stable, one canary pod behind one Service: about half each
        scenario.cluster.wait(lambda: traffic.by_version().get("v2", 0) > 20, 30, "the canary's share")
        scenario.cluster.patch_policy(scenario.namespace, name, {"metadata": {"annotations": {
            names.ANNOTATION_PROMOTE: "2026-11-25T12:00:00Z"}}})
        status = scenario.wait_status(name, lambda s: (s.get("rollout") or {}).get("phase") == "Succeeded",
                                      "the promotion", timeout=90)
    finally:
        traffic.stop()
    assert status["currentModel"]["version"] == "v2" and status["rollout"]["reason"] == "RolloutSucceeded"
    stable = deployment(scenario, name, serving.STABLE)
    assert stable["spec"]["template"]["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v2"
    reasons = [e.get("reason") for e in scenario.cluster.events(scenario.namespace, name)]
    assert "PromotedByHand" in reasons
