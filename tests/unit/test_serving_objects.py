"""Serving manifests and route patches: pure, checked field by field."""

from __future__ import annotations

import copy

import jsonpatch

from retrain_contract.api import names
from retrain_contract.api.spec import PolicySpec
from retrain_operator.core import routes, serving
from retrain_operator.core.jobs import PolicyRef

REF = PolicyRef("churn", "ml", "uid-1")
SPEC = PolicySpec.from_dict({
    "model": {"estimator": "SGDClassifier", "target": "y"}, "data": {"history": "s3://data/x/"},
    "storage": {"bucket": "models", "endpoint": "http://minio:9000", "credentialsSecret": {"name": "s3"}},
    "serving": {"replicas": 3, "port": 9000, "resources": {"limits": {"nvidia.com/gpu": 1}},
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                "capture": {"uri": "s3://data/recent/", "fraction": 0.05}},
})


def test_the_model_deployment_serves_one_verified_version_with_probes_and_secrets_by_reference():
    manifest = serving.model_deployment(REF, SPEC, serving.CANARY, serving.Served("v4", "s3://models/ml/churn/v4/", 1),
                                        "trainer:1")
    assert manifest["metadata"]["name"] == "churn-model-canary"
    assert manifest["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    template = manifest["spec"]["template"]
    assert template["metadata"]["labels"][names.LABEL_MODEL_VERSION] == "v4"
    assert template["metadata"]["labels"][names.LABEL_ROLE] == "canary"
    assert manifest["spec"]["selector"]["matchLabels"] == serving.selector("churn", "canary")
    container = template["spec"]["containers"][0]
    assert container["args"][:3] == ["serve", "--model-uri", "s3://models/ml/churn/v4/"]
    assert container["args"][-4:] == ["--capture-uri", "s3://data/recent/", "--capture-fraction", "0.05"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["ports"] == [{"name": "http", "containerPort": 9000}]
    assert container["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert template["spec"]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists"}]
    secret_refs = [e for e in container["env"] if "valueFrom" in e]
    assert {e["valueFrom"]["secretKeyRef"]["name"] for e in secret_refs} == {"s3"}
    assert all("value" not in e for e in secret_refs)
    assert manifest["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_services_select_both_roles_or_one():
    shared, stable, canary = serving.services(REF, SPEC)
    assert shared["metadata"]["name"] == "churn-model" and names.LABEL_ROLE not in shared["spec"]["selector"]
    assert stable["spec"]["selector"][names.LABEL_ROLE] == "stable"
    assert canary["spec"]["selector"][names.LABEL_ROLE] == "canary"
    assert shared["spec"]["ports"][0]["port"] == 9000


def test_a_deployment_serves_its_version_only_when_fully_rolled_out():
    deployment = {"metadata": {"generation": 2}, "spec": {"replicas": 2, "template": {"metadata": {"labels": {
        names.LABEL_MODEL_VERSION: "v3"}}}}, "status": {"observedGeneration": 2, "replicas": 3,
                                                         "updatedReplicas": 2, "readyReplicas": 3}}
    assert serving.deployment_version(deployment) is None  # an old pod is still there
    deployment["status"]["replicas"] = 2
    assert serving.deployment_version(deployment) == "v3"
    deployment["status"]["observedGeneration"] = 1
    assert serving.deployment_version(deployment) is None


ROUTE = {"spec": {"parentRefs": [{"name": "gw"}], "rules": [
    {"matches": [{"path": {"type": "PathPrefix", "value": "/predict"}}],
     "filters": [{"type": "RequestHeaderModifier", "requestHeaderModifier": {"add": [{"name": "x", "value": "1"}]}}],
     "backendRefs": [{"name": "churn-model-stable", "port": 9000}]},
    {"matches": [{"path": {"type": "PathPrefix", "value": "/other"}}], "backendRefs": [{"name": "other", "port": 80}]},
]}}


def test_httproute_weights_change_only_our_backends_and_leave_the_rest_alone():
    operations = routes.httproute_patch(ROUTE, "churn-model-stable", "churn-model-canary", 20, 9000)
    patched = jsonpatch.apply_patch(copy.deepcopy(ROUTE), operations)
    first, second = patched["spec"]["rules"]
    assert first["backendRefs"] == [{"name": "churn-model-stable", "port": 9000, "weight": 80},
                                    {"name": "churn-model-canary", "port": 9000, "weight": 20}]
    assert first["matches"] == ROUTE["spec"]["rules"][0]["matches"]
    assert first["filters"] == ROUTE["spec"]["rules"][0]["filters"]
    assert second == ROUTE["spec"]["rules"][1] and patched["spec"]["parentRefs"] == [{"name": "gw"}]
    assert routes.httproute_weights(patched, "churn-model-stable", "churn-model-canary") == [(80, 20)]
    again = routes.httproute_patch(patched, "churn-model-stable", "churn-model-canary", 20, 9000)
    assert again == []  # idempotent: nothing to do
    back = jsonpatch.apply_patch(patched, routes.httproute_patch(patched, "churn-model-stable",
                                                                   "churn-model-canary", 0, 9000))
    assert routes.httproute_weights(back, "churn-model-stable", "churn-model-canary") == [(100, 0)]
    assert operations[0]["op"] == "test"  # guarded against concurrent edits


def test_virtualservice_weights_on_destinations_to_our_services():
    service = {"spec": {"hosts": ["churn"], "http": [
        {"match": [{"uri": {"prefix": "/predict"}}], "retries": {"attempts": 3},
         "route": [{"destination": {"host": "churn-model-stable.ml.svc.cluster.local", "port": {"number": 9000}}}]},
        {"route": [{"destination": {"host": "legacy"}}]}]}}
    patched = jsonpatch.apply_patch(copy.deepcopy(service), routes.virtualservice_patch(
        service, "churn-model-stable", "churn-model-canary", 30, 9000))
    first = patched["spec"]["http"][0]
    assert first["route"] == [
        {"destination": {"host": "churn-model-stable.ml.svc.cluster.local", "port": {"number": 9000}}, "weight": 70},
        {"destination": {"host": "churn-model-canary.ml.svc.cluster.local", "port": {"number": 9000}}, "weight": 30}]
    assert first["retries"] == {"attempts": 3} and patched["spec"]["http"][1] == service["spec"]["http"][1]


def test_the_shadow_step_adds_our_request_mirror_next_to_the_users_filters_and_removes_only_it():
    operations = routes.httproute_patch(ROUTE, "churn-model-stable", "churn-model-canary", 0, 9000, mirror=True)
    mirrored = jsonpatch.apply_patch(copy.deepcopy(ROUTE), operations)
    filters = mirrored["spec"]["rules"][0]["filters"]
    assert filters[0] == ROUTE["spec"]["rules"][0]["filters"][0]
    assert filters[1] == {"type": "RequestMirror",
                          "requestMirror": {"backendRef": {"name": "churn-model-canary", "port": 9000}}}
    assert "filters" not in mirrored["spec"]["rules"][1]
    live = jsonpatch.apply_patch(copy.deepcopy(mirrored), routes.httproute_patch(
        mirrored, "churn-model-stable", "churn-model-canary", 10, 9000, mirror=False))
    assert live["spec"]["rules"][0]["filters"] == ROUTE["spec"]["rules"][0]["filters"]
    bare = {"spec": {"rules": [{"backendRefs": [{"name": "churn-model-stable", "port": 9000}]}]}}
    on = jsonpatch.apply_patch(copy.deepcopy(bare), routes.httproute_patch(
        bare, "churn-model-stable", "churn-model-canary", 0, 9000, mirror=True))
    off = jsonpatch.apply_patch(copy.deepcopy(on), routes.httproute_patch(
        on, "churn-model-stable", "churn-model-canary", 0, 9000, mirror=False))
    assert "filters" not in off["spec"]["rules"][0]  # no empty list left behind


def test_the_istio_shadow_step_sets_mirror_only_where_the_user_has_none():
    service = {"spec": {"http": [
        {"route": [{"destination": {"host": "churn-model-stable"}}]},
        {"mirror": {"host": "audit"}, "route": [{"destination": {"host": "churn-model-stable"}}]}]}}
    on = jsonpatch.apply_patch(copy.deepcopy(service), routes.virtualservice_patch(
        service, "churn-model-stable", "churn-model-canary", 0, 9000, mirror=True))
    assert on["spec"]["http"][0]["mirror"] == {"host": "churn-model-canary"}
    assert on["spec"]["http"][1]["mirror"] == {"host": "audit"}
    off = jsonpatch.apply_patch(copy.deepcopy(on), routes.virtualservice_patch(
        on, "churn-model-stable", "churn-model-canary", 10, 9000, mirror=False))
    assert "mirror" not in off["spec"]["http"][0] and off["spec"]["http"][1]["mirror"] == {"host": "audit"}
